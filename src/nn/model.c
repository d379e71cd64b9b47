/* model.c - a model is a small graph of layers built from a Keras-style config.
 *
 * "Sequential" configs become a chain; "Functional" (Keras "Model") configs name each layer's
 * inbound tensors. Either way the result is a topologically ordered list of nodes, each reading
 * (node, output slot) pairs, so multi-input layers and layers with several outputs (the LSTM
 * states of an encoder-decoder) fit without special cases. This file builds the graph, owns the
 * memory blocks, and runs forward and backward. Losses and optimizers are in compile.c, the epoch
 * loop in fit.c, files in model_io.c. */
#define _POSIX_C_SOURCE 200809L
#include "nn/model_internal.h"

#include "amuse/rng.h"
#include "core/internal.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 1024
#define MAX_BATCH_FLOATS ((int64_t)1 << 31) /* activations + workspaces of one batch: 8 GiB */

/* ---------------------------------------------------------------- graph construction */

static int find_layer(const struct amuse_model *m, int upto, const char *name)
{
    for (int i = 0; i < upto; i++)
        if (strcmp(m->layers[i].name, name) == 0)
            return i;
    return -1;
}

/* Create node i from a {"class_name", "config"} object. */
static int make_layer(struct amuse_model *m, int i, const cJSON *spec, const char *where)
{
    struct am__layer *l = &m->layers[i];
    memset(l, 0, sizeof *l);
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(spec, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(spec, "config");
    if (!cJSON_IsString(cls))
        return am__fail(AMUSE_EFORMAT, "%s: layer %d: missing string 'class_name'", where, i);
    if (cfg && !cJSON_IsObject(cfg))
        return am__fail(AMUSE_EFORMAT, "%s: layer %d (%s): 'config' must be an object", where, i,
                        cls->valuestring);
    l->type = am__layer_type_find(cls->valuestring);
    if (!l->type) {
        char known[512];
        return am__fail(AMUSE_EUNSUPPORTED, "%s: layer %d: unknown layer class '%s' (known: %s)",
                        where, i, cls->valuestring, am__layer_type_names(known, sizeof known));
    }
    if (l->type->config_size && !(l->cfg = calloc(1, l->type->config_size)))
        return am__fail(AMUSE_ENOMEM, "out of memory");
    const cJSON *name = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "name") : NULL;
    if (!name)
        name = cJSON_GetObjectItemCaseSensitive(spec, "name");
    if (name && !cJSON_IsString(name))
        return am__fail(AMUSE_EFORMAT, "%s: layer %d: 'name' must be a string", where, i);
    if (name) {
        if (strlen(name->valuestring) == 0 || strlen(name->valuestring) >= sizeof l->name ||
            strchr(name->valuestring, '/'))
            return am__fail(AMUSE_EFORMAT,
                            "%s: layer %d: name must be 1-63 characters without '/'", where, i);
        snprintf(l->name, sizeof l->name, "%s", name->valuestring);
    } else {
        /* Keras default names: conv2d, conv2d_1, conv2d_2, ... */
        int k = 0;
        for (int j = 0; j < i; j++)
            k += m->layers[j].type == l->type;
        if (k == 0)
            snprintf(l->name, sizeof l->name, "%s", l->type->base_name);
        else
            snprintf(l->name, sizeof l->name, "%s_%d", l->type->base_name, k);
    }
    if (find_layer(m, i, l->name) >= 0)
        return am__fail(AMUSE_EFORMAT, "%s: layer %d: duplicate layer name '%s'", where, i,
                        l->name);
    l->n_outputs = 1;
    static const cJSON empty = {0};
    int rc = l->type->configure(l, cfg ? cfg : &empty);
    if (rc)
        return am__fail_prefix(rc, "%s: layer %d", where, i);
    return AMUSE_OK;
}

/* Keras lets the first layer of a Sequential carry the input shape itself. */
static int implicit_input(struct amuse_model *m, const cJSON *first, const char *where)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(first, "config");
    const cJSON *shape = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "batch_input_shape") : NULL;
    cJSON *spec = cJSON_CreateObject(), *icfg = cJSON_AddObjectToObject(spec, "config");
    cJSON_AddStringToObject(spec, "class_name", "InputLayer");
    if (shape)
        cJSON_AddItemToObject(icfg, "batch_input_shape", cJSON_Duplicate(shape, 1));
    else if (cfg && (shape = cJSON_GetObjectItemCaseSensitive(cfg, "input_shape")))
        cJSON_AddItemToObject(icfg, "shape", cJSON_Duplicate(shape, 1));
    else {
        cJSON_Delete(spec);
        return am__fail(AMUSE_EFORMAT,
                        "%s: the first layer must be an InputLayer or carry "
                        "'batch_input_shape' / 'input_shape'",
                        where);
    }
    int rc = make_layer(m, 0, spec, where);
    cJSON_Delete(spec);
    return rc;
}

static int build_sequential(struct amuse_model *m, const cJSON *cfg, const char *where)
{
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return am__fail(AMUSE_EFORMAT, "%s: model.config.layers must be a non-empty list", where);
    int n = cJSON_GetArraySize(layers);
    if (n > MAX_LAYERS)
        return am__fail(AMUSE_ETOOBIG, "%s: %d layers (at most %d)", where, n, MAX_LAYERS);
    const cJSON *first = cJSON_GetArrayItem(layers, 0);
    const cJSON *first_cls = cJSON_GetObjectItemCaseSensitive(first, "class_name");
    int has_input = cJSON_IsString(first_cls) && strcmp(first_cls->valuestring, "InputLayer") == 0;
    m->n_layers = n + !has_input;
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc, at = 0;
    if (!has_input) {
        if ((rc = implicit_input(m, first, where)))
            return rc;
        at = 1;
    }
    const cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        if ((rc = make_layer(m, at, spec, where)))
            return rc;
        if (at > 0) {
            if (m->layers[at].type == &am__input_layer)
                return am__fail(AMUSE_EFORMAT, "%s: layer %d: InputLayer must come first", where,
                                at);
            m->layers[at].n_inputs = 1;
            m->layers[at].input[0] = (struct am__node_ref){at - 1, 0};
        }
        at++;
    }
    m->sequential = 1;
    m->n_inputs = 1;
    m->input_nodes[0] = 0;
    m->output = (struct am__node_ref){m->n_layers - 1, 0};
    return AMUSE_OK;
}

/* Parse a Keras tensor reference: ["name", node_index, tensor_index, {...}] or ["name", 0, 0]. */
static int parse_ref(struct amuse_model *m, int upto, const cJSON *ref, struct am__node_ref *out,
                     const char *where, const char *layer)
{
    const cJSON *name = cJSON_GetArrayItem(ref, 0), *slot = cJSON_GetArrayItem(ref, 2);
    if (!cJSON_IsArray(ref) || !cJSON_IsString(name))
        return am__fail(AMUSE_EFORMAT, "%s: layer '%s': inbound reference must be [name, 0, 0]",
                        where, layer);
    int node = find_layer(m, upto, name->valuestring);
    if (node < 0)
        return am__fail(AMUSE_ENOTFOUND,
                        "%s: layer '%s': inbound layer '%s' is not defined before it", where,
                        layer, name->valuestring);
    int s = cJSON_IsNumber(slot) ? (int)slot->valuedouble : 0;
    if (s < 0 || s >= m->layers[node].n_outputs)
        return am__fail(AMUSE_EFORMAT, "%s: layer '%s': layer '%s' has no output %d", where, layer,
                        name->valuestring, s);
    *out = (struct am__node_ref){node, s};
    return AMUSE_OK;
}

static int build_functional(struct amuse_model *m, const cJSON *cfg, const char *where)
{
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) == 0)
        return am__fail(AMUSE_EFORMAT, "%s: model.config.layers must be a non-empty list", where);
    int n = cJSON_GetArraySize(layers), rc, i = 0;
    if (n > MAX_LAYERS)
        return am__fail(AMUSE_ETOOBIG, "%s: %d layers (at most %d)", where, n, MAX_LAYERS);
    m->n_layers = n;
    m->layers = calloc((size_t)n, sizeof *m->layers);
    if (!m->layers)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    const cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        if ((rc = make_layer(m, i, spec, where)))
            return rc;
        struct am__layer *l = &m->layers[i];
        const cJSON *inbound = cJSON_GetObjectItemCaseSensitive(spec, "inbound_nodes");
        if (l->type == &am__input_layer) {
            if (m->n_inputs >= AM__MAX_IO)
                return am__fail(AMUSE_ETOOBIG, "%s: more than %d InputLayers", where, AM__MAX_IO);
            m->input_nodes[m->n_inputs++] = i;
        } else {
            /* Keras: inbound_nodes = [ [ref, ref, ...] ] (one call of the layer). */
            const cJSON *call = cJSON_GetArrayItem(inbound, 0);
            if (!cJSON_IsArray(inbound) || cJSON_GetArraySize(inbound) != 1 ||
                !cJSON_IsArray(call) || cJSON_GetArraySize(call) < 1)
                return am__fail(AMUSE_EFORMAT,
                                "%s: layer '%s': 'inbound_nodes' must be [[[name, 0, 0], ...]] "
                                "(each layer is called once)",
                                where, l->name);
            if (cJSON_GetArraySize(call) > AM__MAX_IO)
                return am__fail(AMUSE_ETOOBIG, "%s: layer '%s': more than %d inputs", where,
                                l->name, AM__MAX_IO);
            const cJSON *ref;
            cJSON_ArrayForEach(ref, call)
            {
                if ((rc = parse_ref(m, i, ref, &l->input[l->n_inputs], where, l->name)))
                    return rc;
                l->n_inputs++;
            }
        }
        i++;
    }
    if (m->n_inputs == 0)
        return am__fail(AMUSE_EFORMAT, "%s: the model has no InputLayer", where);
    /* Keras's input_layers fixes the order the inputs are fed in. */
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(cfg, "input_layers");
    if (ins) {
        if (!cJSON_IsArray(ins) || cJSON_GetArraySize(ins) != m->n_inputs)
            return am__fail(AMUSE_EFORMAT, "%s: 'input_layers' must list each of the %d InputLayers",
                            where, m->n_inputs);
        int k = 0;
        const cJSON *ref;
        cJSON_ArrayForEach(ref, ins)
        {
            struct am__node_ref r;
            if ((rc = parse_ref(m, n, ref, &r, where, "input_layers")))
                return rc;
            if (m->layers[r.node].type != &am__input_layer)
                return am__fail(AMUSE_EFORMAT, "%s: input_layers[%d] '%s' is not an InputLayer",
                                where, k, m->layers[r.node].name);
            m->input_nodes[k++] = r.node;
        }
    }
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(cfg, "output_layers");
    if (outs) {
        if (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) != 1)
            return am__fail(AMUSE_EUNSUPPORTED, "%s: 'output_layers' must name exactly one output",
                            where);
        const cJSON *ref = cJSON_GetArrayItem(outs, 0);
        if (cJSON_IsArray(ref) && cJSON_IsArray(cJSON_GetArrayItem(ref, 0)))
            ref = cJSON_GetArrayItem(ref, 0);
        if ((rc = parse_ref(m, n, ref, &m->output, where, "output_layers")))
            return rc;
    } else {
        m->output = (struct am__node_ref){n - 1, 0};
    }
    return AMUSE_OK;
}

/* Shapes flow forward; weights are declared; then the blocks are allocated. */
/* Which BatchNormalization layers fold into the layer before them at inference: the producer's
 * type allows it (AM__LAYER_FOLDS_BATCHNORM), its activation is linear, the normalisation is
 * its only consumer and it is not the model's output. */
static int plan_folds(struct amuse_model *m)
{
    size_t n = (size_t)(m->n_layers > 0 ? m->n_layers : 1);
    m->fold_bn = malloc(n * sizeof *m->fold_bn);
    m->folded_into = malloc(n * sizeof *m->folded_into);
    m->fold_offset = calloc(n, sizeof *m->fold_offset);
    if (!m->fold_bn || !m->folded_into || !m->fold_offset)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_layers; i++)
        m->fold_bn[i] = m->folded_into[i] = -1;
    int64_t floats = 0;
    m->n_folds = 0;
    for (int j = 0; j < m->n_layers; j++) {
        struct am__layer *bn = &m->layers[j];
        if (bn->type != &am__batchnorm_layer || bn->n_inputs != 1 || bn->input[0].slot != 0 ||
            m->fused_into[j] >= 0)
            continue;
        int i = bn->input[0].node, consumers = 0;
        struct am__layer *p = &m->layers[i];
        if (!(p->type->flags & AM__LAYER_FOLDS_BATCHNORM) || p->n_outputs != 1 ||
            !p->type->output_activation || p->type->output_activation(p) != AM__ACT_LINEAR ||
            m->output.node == i || m->fold_bn[i] >= 0)
            continue;
        for (int k = 0; k < m->n_layers; k++)
            for (int q = 0; q < m->layers[k].n_inputs; q++)
                consumers += m->layers[k].input[q].node == i;
        if (consumers != 1)
            continue;
        const struct amuse_shape *s = &p->out_shape[0];
        m->fold_bn[i] = j;
        m->folded_into[j] = i;
        m->fold_offset[i] = floats;
        floats += (amuse_shape_size(&p->w[0].shape) + s->dim[s->ndim - 1] + 15) & ~(int64_t)15;
        m->n_folds++;
    }
    m->fold_buf = am__calloc_aligned((size_t)floats + 1, sizeof(float));
    if (!m->fold_buf)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    return AMUSE_OK;
}

static int build_shapes_and_blocks(struct amuse_model *m)
{
    int rc;
    m->n_params = 0;
    m->n_weight_refs = 0;
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_inputs; k++) {
            l->in_shape[k] = m->layers[l->input[k].node].out_shape[l->input[k].slot];
            l->in_dtype[k] = m->layers[l->input[k].node].out_dtype[l->input[k].slot];
            if (l->in_dtype[k] == AMUSE_INT32 && !(l->type->flags & AM__LAYER_TAKES_IDS))
                return am__layer_fail(l, AMUSE_ESHAPE,
                                      "input %d holds int32 token ids; only an Embedding reads "
                                      "them (put one first)",
                                      k);
        }
        if ((rc = l->type->build(l)))
            return rc;
        for (int k = 0; k < l->n_outputs; k++)
            if (amuse_shape_size(&l->out_shape[k]) < 0 ||
                amuse_shape_size(&l->out_shape[k]) > ((int64_t)1 << 28))
                return am__layer_fail(l, AMUSE_ETOOBIG, "output is too large");
        for (int k = 0; k < l->n_weights; k++) {
            m->n_weight_refs++;
            if (l->w[k].frozen)
                continue; /* placed after every trainable weight, below */
            l->w[k].offset = m->n_params;
            m->n_params += amuse_shape_size(&l->w[k].shape);
            if (m->n_params > ((int64_t)1 << 31))
                return am__layer_fail(l, AMUSE_ETOOBIG, "more than 2^31 parameters");
        }
    }
    m->n_trainable = m->n_params;
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_weights; k++) {
            if (!l->w[k].frozen)
                continue;
            l->w[k].offset = m->n_params;
            m->n_params += amuse_shape_size(&l->w[k].shape);
            if (m->n_params > ((int64_t)1 << 31))
                return am__layer_fail(l, AMUSE_ETOOBIG, "more than 2^31 parameters");
        }
    }
    /* Fuse a per-sample layer into its producer's forward when it is the producer's only
     * consumer and the producer can run epilogues (Conv2D -> MaxPooling2D): the pooling then
     * reads each chunk of convolution output while it is still in cache. */
    m->fused_into = malloc((size_t)m->n_layers * sizeof *m->fused_into);
    if (!m->fused_into)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    for (int j = 0; j < m->n_layers; j++) {
        struct am__layer *l = &m->layers[j];
        m->fused_into[j] = -1;
        if (!l->type->per_sample || l->n_inputs != 1 || l->input[0].slot != 0)
            continue;
        int producer = l->input[0].node, consumers = 0;
        for (int k = 0; k < m->n_layers; k++)
            for (int q = 0; q < m->layers[k].n_inputs; q++)
                consumers += m->layers[k].input[q].node == producer;
        if (consumers == 1 && m->layers[producer].type->runs_epilogue &&
            !(m->output.node == producer))
            m->fused_into[j] = producer;
    }
    if ((rc = plan_folds(m)))
        return rc;
    /* Step masks flow forward from the layers that make them through those that pass them. */
    size_t n_nodes = (size_t)(m->n_layers > 0 ? m->n_layers : 1);
    m->mask_src = malloc(n_nodes * sizeof *m->mask_src);
    m->mask_offset = calloc(n_nodes, sizeof *m->mask_offset);
    if (!m->mask_src || !m->mask_offset)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        m->mask_src[i] = -1;
        if (l->makes_mask)
            m->mask_src[i] = i;
        else if (((l->type->flags & AM__LAYER_PASSES_MASK) || l->passes_mask) &&
                 l->n_inputs >= 1 && l->input[0].slot == 0)
            m->mask_src[i] = m->mask_src[l->input[0].node];
    }
    m->weight_refs = calloc((size_t)m->n_weight_refs + 1, sizeof *m->weight_refs);
    m->params = am__calloc_aligned((size_t)m->n_params + 1, sizeof(float));
    m->grads = am__calloc_aligned((size_t)m->n_params + 1, sizeof(float));
    /* Optimizer state: two slots per parameter covers every optimizer we have (Adam: m, v). */
    m->opt_state = am__calloc_aligned(2 * (size_t)m->n_params + 1, sizeof(float));
    if (!m->weight_refs || !m->params || !m->grads || !m->opt_state)
        return am__fail(AMUSE_ENOMEM, "cannot allocate %lld parameters", (long long)m->n_params);
    int r = 0;
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_weights; k++, r++) {
            l->w[k].value = m->params + l->w[k].offset;
            l->w[k].grad = m->grads + l->w[k].offset;
            m->weight_refs[r].layer = i;
            m->weight_refs[r].index = k;
            snprintf(m->weight_refs[r].name, sizeof m->weight_refs[r].name, "%s/%s", l->name,
                     l->w[k].name);
        }
    }
    return AMUSE_OK;
}

static int read_labels(struct amuse_model *m, const char *where)
{
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(m->doc, "labels");
    if (!labels)
        return AMUSE_OK;
    if (!cJSON_IsArray(labels))
        return am__fail(AMUSE_EFORMAT, "%s: 'labels' must be a list of strings", where);
    int n = cJSON_GetArraySize(labels), i = 0;
    m->labels = calloc((size_t)n + 1, sizeof *m->labels);
    if (!m->labels)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    const cJSON *v;
    cJSON_ArrayForEach(v, labels)
    {
        if (!cJSON_IsString(v))
            return am__fail(AMUSE_EFORMAT, "%s: labels[%d] must be a string", where, i);
        if (!(m->labels[i++] = strdup(v->valuestring)))
            return am__fail(AMUSE_ENOMEM, "out of memory");
        m->n_labels = i;
    }
    int64_t classes = amuse_shape_size(&m->layers[m->output.node].out_shape[m->output.slot]);
    if (n != classes)
        return am__fail(AMUSE_ESHAPE, "%s: %d labels but the model has %lld outputs", where, n,
                        (long long)classes);
    return AMUSE_OK;
}

int amuse_model_from_json(struct amuse_model **out, const char *json, size_t len,
                          const char *source)
{
    *out = NULL;
    const char *where = source ? source : "config";
    struct amuse_model *m = calloc(1, sizeof *m);
    if (!m)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc;
    const char *end = NULL;
    m->doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!m->doc) {
        rc = am__fail(AMUSE_EFORMAT, "%s: invalid JSON at byte %td", where,
                      end ? end - json : (ptrdiff_t)0);
        goto fail;
    }
    if (!cJSON_IsObject(m->doc)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: the config must be a JSON object", where);
        goto fail;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m->doc, "name");
    snprintf(m->name, sizeof m->name, "%s", cJSON_IsString(name) ? name->valuestring : "model");
    /* A Keras model.to_json() document is itself the model. */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(m->doc, "class_name")
                             ? m->doc
                             : cJSON_GetObjectItemCaseSensitive(m->doc, "model");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(model, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(model, "config");
    if (!cJSON_IsObject(model) || !cJSON_IsString(cls) || !cJSON_IsObject(cfg)) {
        rc = am__fail(AMUSE_EFORMAT,
                      "%s: missing 'model' object with string 'class_name' and object 'config'",
                      where);
        goto fail;
    }
    if (strcmp(cls->valuestring, "Sequential") == 0)
        rc = build_sequential(m, cfg, where);
    else if (strcmp(cls->valuestring, "Functional") == 0 || strcmp(cls->valuestring, "Model") == 0)
        rc = build_functional(m, cfg, where);
    else
        rc = am__fail(AMUSE_EUNSUPPORTED,
                      "%s: model.class_name '%s' (known: Sequential, Functional, Model)", where,
                      cls->valuestring);
    if (rc)
        goto fail;
    if ((rc = build_shapes_and_blocks(m)))
        goto fail_prefix;
    if ((rc = read_labels(m, where)))
        goto fail;
    const char *profile = getenv("AMUSE_PROFILE");
    if (profile && *profile && strcmp(profile, "0") != 0) {
        m->layer_seconds = calloc((size_t)m->n_layers, sizeof *m->layer_seconds);
        m->profile = m->layer_seconds != NULL;
    }
    const cJSON *compile = cJSON_GetObjectItemCaseSensitive(m->doc, "compile");
    if ((rc = am__compile_from_json(m, compile)))
        goto fail_prefix;
    *out = m;
    return AMUSE_OK;
fail_prefix:
    if (strncmp(amuse_last_error(), where, strlen(where)) != 0)
        am__fail_prefix(rc, "%s", where);
fail:
    amuse_model_free(m);
    return rc;
}

int amuse_model_from_file(struct amuse_model **out, const char *config_path)
{
    char *text;
    size_t len;
    *out = NULL;
    int rc = am__read_file(config_path, 16u << 20, &text, &len);
    if (rc)
        return rc;
    rc = amuse_model_from_json(out, text, len, config_path);
    free(text);
    return rc;
}

/* Where the time went, per layer (AMUSE_PROFILE=1), to stderr. */
static void print_profile(const struct amuse_model *m)
{
    double total = 0;
    for (int i = 0; i < m->n_layers; i++)
        total += m->layer_seconds[i][0] + m->layer_seconds[i][1];
    if (total <= 0)
        return;
    fprintf(stderr, "amuse profile of '%s': seconds per layer (forward / backward, %% of %.2fs)\n",
            m->name, total);
    for (int i = 0; i < m->n_layers; i++) {
        const double *t = m->layer_seconds[i];
        if (m->fused_into[i] >= 0)
            fprintf(stderr, "  %-24s %-14s forward runs inside %s; backward %8.3f\n",
                    m->layers[i].name, m->layers[i].type->class_name,
                    m->layers[m->fused_into[i]].name, t[1]);
        else if (t[0] + t[1] > 0)
            fprintf(stderr, "  %-24s %-14s %8.3f %8.3f  %5.1f%%\n", m->layers[i].name,
                    m->layers[i].type->class_name, t[0], t[1], 100 * (t[0] + t[1]) / total);
    }
}

void amuse_model_free(struct amuse_model *m)
{
    if (!m)
        return;
    if (m->profile)
        print_profile(m);
    free(m->layer_seconds);
    free(m->fused_into);
    free(m->fold_bn);
    free(m->folded_into);
    free(m->fold_offset);
    am__free(m->fold_buf);
    free(m->mask_src);
    free(m->mask_offset);
    am__free(m->masks);
    am__free(m->row_weight);
    cJSON_Delete(m->doc);
    free(m->config_text);
    for (int i = 0; m->layers && i < m->n_layers; i++) {
        if (m->layers[i].type && m->layers[i].type->release && m->layers[i].cfg)
            m->layers[i].type->release(&m->layers[i]);
        free(m->layers[i].cfg);
    }
    free(m->layers);
    for (int i = 0; i < m->n_labels; i++)
        free(m->labels[i]);
    free(m->labels);
    free(m->weight_refs);
    am__free(m->params);
    am__free(m->grads);
    am__free(m->opt_state);
    am__free(m->acts);
    am__free(m->act_grads);
    free(m->act_offset);
    am__free(m->work);
    free(m->work_offset);
    free(m);
}

/* ---------------------------------------------------------------- weights */

int amuse_model_init_weights(struct amuse_model *m, uint64_t seed)
{
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_weights; k++)
            am__weight_init(&l->w[k], &rng);
        /* Distinct dropout streams per layer, derived from the seed. */
        amuse_rng_seed(&l->rng, seed * 0x9e3779b97f4a7c15ULL + (uint64_t)i + 1);
    }
    memset(m->opt_state, 0, 2 * (size_t)m->n_params * sizeof(float));
    m->opt.iterations = 0;
    return AMUSE_OK;
}

int amuse_model_weight_count(const struct amuse_model *m)
{
    return m->n_weight_refs;
}

const char *amuse_model_weight_info(struct amuse_model *m, int index, struct amuse_tensor *value,
                                    struct amuse_tensor *grad)
{
    if (index < 0 || index >= m->n_weight_refs)
        return NULL;
    const struct am__weight_ref *r = &m->weight_refs[index];
    struct am__weight *w = &m->layers[r->layer].w[r->index];
    if (value)
        amuse_tensor_view(value, w->value, &w->shape);
    if (grad)
        amuse_tensor_view(grad, w->grad, &w->shape);
    return r->name;
}

int amuse_model_find_weight(struct amuse_model *m, const char *name, struct amuse_tensor *value,
                            struct amuse_tensor *grad)
{
    for (int i = 0; i < m->n_weight_refs; i++)
        if (strcmp(m->weight_refs[i].name, name) == 0) {
            amuse_model_weight_info(m, i, value, grad);
            return AMUSE_OK;
        }
    return am__fail(AMUSE_ENOTFOUND, "model '%s' has no weight '%s'", m->name, name);
}

void amuse_model_zero_grad(struct amuse_model *m)
{
    memset(m->grads, 0, (size_t)m->n_params * sizeof(float));
}

/* ---------------------------------------------------------------- introspection */

const char *amuse_model_name(const struct amuse_model *m)
{
    return m->name;
}

const struct amuse_shape *amuse_model_input_shape(const struct amuse_model *m)
{
    return &m->layers[m->input_nodes[0]].out_shape[0];
}

const struct amuse_shape *amuse_model_output_shape(const struct amuse_model *m)
{
    return &m->layers[m->output.node].out_shape[m->output.slot];
}

int64_t amuse_model_param_count(const struct amuse_model *m)
{
    return m->n_params;
}

const char *amuse_model_label(const struct amuse_model *m, int index)
{
    if (!m->labels || index < 0 || index >= m->n_labels)
        return NULL;
    return m->labels[index];
}

const char *amuse_model_config_string(const struct amuse_model *m, const char *section,
                                      const char *key)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(m->doc, section);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int amuse_model_config_bool(const struct amuse_model *m, const char *section, const char *key,
                            int fallback)
{
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(m->doc, section);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sec, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

int amuse_model_config_set(struct amuse_model *m, const char *key, const char *json)
{
    cJSON *v = cJSON_Parse(json);
    if (!v)
        return am__fail(AMUSE_EFORMAT, "config value for '%s' is not valid JSON", key);
    if (cJSON_GetObjectItemCaseSensitive(m->doc, key))
        cJSON_ReplaceItemInObjectCaseSensitive(m->doc, key, v);
    else
        cJSON_AddItemToObject(m->doc, key, v);
    return AMUSE_OK;
}

const char *amuse_model_config_json(const struct amuse_model *m)
{
    struct amuse_model *mm = (struct amuse_model *)m;
    free(mm->config_text);
    mm->config_text = cJSON_Print(m->doc);
    return mm->config_text ? mm->config_text : "";
}

/* ---------------------------------------------------------------- running the graph */

void am__run_epilogue(const struct am__call *c, const float *producer_out, int64_t b0,
                      int64_t nb)
{
    const struct am__layer *e = c->epilogue;
    struct am__call sub = *c->epilogue_call;
    int64_t in_per = amuse_shape_size(&e->in_shape[0]);
    int64_t out_per = amuse_shape_size(&e->out_shape[0]);
    size_t work_per = e->type->workspace(e, 1);
    sub.batch = nb;
    sub.in[0] = producer_out + b0 * in_per;
    sub.out[0] = c->epilogue_call->out[0] + b0 * out_per;
    sub.work = (unsigned char *)c->epilogue_call->work + (size_t)b0 * work_per;
    sub.epilogue = NULL;
    e->type->forward((struct am__layer *)e, &sub);
}

void am__model_set_row_products(struct amuse_model *m, int rows)
{
    m->row_products = rows > 0 ? rows : 0;
}

int am__model_reserve(struct amuse_model *m, int64_t batch)
{
    /* Some workspaces are per thread: more threads mean new sizes; fewer fit in the old ones
     * (a generator's one-thread passes between wider ones must not reallocate each time). */
    if (batch <= m->batch_cap && omp_get_max_threads() <= m->reserved_threads)
        return AMUSE_OK;
    if (batch < m->batch_cap)
        batch = m->batch_cap;
    am__free(m->acts);
    am__free(m->act_grads);
    am__free(m->work);
    am__free(m->masks);
    am__free(m->row_weight);
    m->acts = m->act_grads = m->masks = m->row_weight = NULL;
    m->work = NULL;
    m->batch_cap = 0;
    if (!m->act_offset) {
        m->act_offset = calloc((size_t)m->n_layers, sizeof *m->act_offset);
        m->work_offset = calloc((size_t)m->n_layers, sizeof *m->work_offset);
        if (!m->act_offset || !m->work_offset)
            return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    int64_t floats = 0;
    size_t work = 0;
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_outputs; k++) {
            if (k == 0 && l->type->alias_input) {
                /* Sharing the gradient buffer is right even with other consumers: every
                 * contribution to d(input) is summed into the same floats. */
                m->act_offset[i][0] = m->act_offset[l->input[0].node][l->input[0].slot];
                continue;
            }
            m->act_offset[i][k] = floats;
            floats += (batch * amuse_shape_size(&l->out_shape[k]) + 15) & ~(int64_t)15;
        }
        m->work_offset[i] = work;
        work += (l->type->workspace(l, batch) + 63) & ~(size_t)63;
        if (floats > MAX_BATCH_FLOATS || work > (size_t)MAX_BATCH_FLOATS * 4)
            return am__fail(AMUSE_ETOOBIG,
                            "a batch of %lld needs more than 8 GiB of activations; use a smaller "
                            "batch size",
                            (long long)batch);
    }
    int64_t mask_floats = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].makes_mask) {
            const struct amuse_shape *s0 = &m->layers[i].out_shape[0];
            m->mask_offset[i] = mask_floats;
            mask_floats += batch * amuse_shape_size(s0) / s0->dim[s0->ndim - 1];
        }
    m->acts = am__calloc_aligned((size_t)floats, sizeof(float));
    m->act_grads = am__calloc_aligned((size_t)floats, sizeof(float));
    m->work = am__calloc_aligned(work, 1);
    m->masks = am__calloc_aligned((size_t)mask_floats + 1, sizeof(float));
    m->row_weight = am__calloc_aligned((size_t)(batch * am__output_rows(m)) + 1, sizeof(float));
    if (!m->acts || !m->act_grads || !m->work || !m->masks || !m->row_weight)
        return am__fail(AMUSE_ENOMEM, "cannot allocate activations for a batch of %lld",
                        (long long)batch);
    m->batch_cap = batch;
    m->reserved_threads = omp_get_max_threads();
    return AMUSE_OK;
}

static void setup_call(struct amuse_model *m, int i, int64_t batch, int training,
                       struct am__call *c)
{
    struct am__layer *l = &m->layers[i];
    memset(c, 0, sizeof *c);
    c->batch = batch;
    c->training = training;
    c->row_products = training ? 0 : m->row_products;
    for (int k = 0; k < l->n_inputs; k++) {
        c->in[k] = am__act(m, l->input[k]);
        /* Inputs fed by the model input, and token ids, need no gradient. */
        c->din[k] = m->layers[l->input[k].node].type == &am__input_layer ||
                            l->in_dtype[k] == AMUSE_INT32
                        ? NULL
                        : am__act_grad(m, l->input[k]);
        int src = l->input[k].slot == 0 ? m->mask_src[l->input[k].node] : -1;
        c->mask_in[k] = src >= 0 ? m->masks + m->mask_offset[src] : NULL;
    }
    if (l->makes_mask)
        c->mask_out = m->masks + m->mask_offset[i];
    for (int k = 0; k < l->n_outputs; k++) {
        struct am__node_ref r = {i, k};
        c->out[k] = am__act(m, r);
        c->dout[k] = am__act_grad(m, r);
    }
    c->work = m->work + m->work_offset[i];
}

int amuse_model_input_count(const struct amuse_model *m)
{
    return m->n_inputs;
}

const struct amuse_shape *amuse_model_input_shape_at(const struct amuse_model *m, int index)
{
    if (index < 0 || index >= m->n_inputs)
        return NULL;
    return &m->layers[m->input_nodes[index]].out_shape[0];
}

enum amuse_dtype amuse_model_input_dtype_at(const struct amuse_model *m, int index)
{
    if (index < 0 || index >= m->n_inputs)
        return AMUSE_FLOAT32;
    return m->layers[m->input_nodes[index]].out_dtype[0];
}

int amuse_model_input_index(const struct amuse_model *m, const char *name)
{
    for (int k = 0; k < m->n_inputs; k++)
        if (strcmp(m->layers[m->input_nodes[k]].name, name) == 0)
            return k;
    return am__fail(AMUSE_ENOTFOUND, "model '%s' has no input named '%s'", m->name, name);
}

/* Copy `batch` samples into input k, converting between float values and int32 ids. */
static int feed_input(struct amuse_model *m, int k, enum amuse_dtype dtype, const void *data,
                      int64_t batch)
{
    int64_t n = batch * amuse_shape_size(amuse_model_input_shape_at(m, k));
    float *dst = am__act(m, (struct am__node_ref){m->input_nodes[k], 0});
    enum amuse_dtype want = amuse_model_input_dtype_at(m, k);
    if (!data)
        return am__fail(AMUSE_EINVAL, "model '%s': input %d has no data", m->name, k);
    if (dtype == want) {
        memcpy(dst, data, (size_t)n * 4);
    } else if (want == AMUSE_INT32) {
        const float *x = data;
        int32_t *ids = (int32_t *)(void *)dst;
        for (int64_t i = 0; i < n; i++) {
            if (!(x[i] >= 0.0f && x[i] < 2147483520.0f) || x[i] != floorf(x[i]))
                return am__fail(AMUSE_EINVAL, "model '%s': input %d value %lld is %g, not an id",
                                m->name, k, (long long)i, (double)x[i]);
            ids[i] = (int32_t)lrintf(x[i]);
        }
    } else {
        const int32_t *ids = data;
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)ids[i];
    }
    return AMUSE_OK;
}

static int run_forward(struct amuse_model *m, int64_t batch, int training, const float **out);

int amuse_model_forward_inputs(struct amuse_model *m, const float *const *xs, int n_inputs,
                               int64_t batch, int training, const float **out)
{
    if (batch < 1)
        return am__fail(AMUSE_EINVAL, "batch size must be at least 1 (got %lld)",
                        (long long)batch);
    if (n_inputs != m->n_inputs)
        return am__fail(AMUSE_EINVAL, "model '%s' takes %d inputs, got %d", m->name, m->n_inputs,
                        n_inputs);
    int rc = am__model_reserve(m, batch);
    if (rc)
        return rc;
    for (int k = 0; k < n_inputs; k++)
        if ((rc = feed_input(m, k, AMUSE_FLOAT32, xs[k], batch)))
            return rc;
    return run_forward(m, batch, training, out);
}

/* The model input a batch array feeds: by name, else by position. */
static int array_input(struct amuse_model *m, const struct amuse_array *a, int position)
{
    if (a->name[0])
        return amuse_model_input_index(m, a->name);
    if (position >= m->n_inputs)
        return am__fail(AMUSE_EINVAL, "model '%s' takes %d inputs, got more", m->name,
                        m->n_inputs);
    return position;
}

int amuse_model_forward_batch(struct amuse_model *m, const struct amuse_batch *b, int training,
                              const float **out)
{
    if (b->n < 1)
        return am__fail(AMUSE_EINVAL, "batch size must be at least 1 (got %lld)", (long long)b->n);
    if (b->n_inputs != m->n_inputs)
        return am__fail(AMUSE_EINVAL, "model '%s' takes %d inputs, the batch has %d", m->name,
                        m->n_inputs, b->n_inputs);
    int rc = am__model_reserve(m, b->n), fed[AM__MAX_IO] = {0};
    if (rc)
        return rc;
    for (int j = 0; j < b->n_inputs; j++) {
        const struct amuse_array *a = &b->input[j];
        int k = array_input(m, a, j);
        if (k < 0)
            return k;
        if (fed[k]++)
            return am__fail(AMUSE_EINVAL, "model '%s': input %d is fed twice", m->name, k);
        if (!amuse_shape_equal(&a->shape, amuse_model_input_shape_at(m, k))) {
            char x[96], y[96];
            return am__fail(AMUSE_ESHAPE, "model '%s': input '%s' takes %s, the batch has %s",
                            m->name, m->layers[m->input_nodes[k]].name,
                            amuse_shape_format(amuse_model_input_shape_at(m, k), 0, x, sizeof x),
                            amuse_shape_format(&a->shape, 0, y, sizeof y));
        }
        if ((rc = feed_input(m, k, a->dtype,
                             a->dtype == AMUSE_INT32 ? (const void *)a->i32 : (const void *)a->f32,
                             b->n)))
            return rc;
    }
    return run_forward(m, b->n, training, out);
}

static int run_forward(struct amuse_model *m, int64_t batch, int training, const float **out)
{
    int fold = !training && !m->fold_off && m->n_folds > 0;
    for (int i = 0; i < m->n_layers; i++) {
        m->layers[i].forward_training = training;
        if (m->layers[i].type == &am__input_layer || m->fused_into[i] >= 0 ||
            (fold && m->folded_into[i] >= 0))
            continue;
        struct am__call c, epilogue_call;
        setup_call(m, i, batch, training, &c);
        if (fold && m->fold_bn[i] >= 0) {
            struct am__layer *p = &m->layers[i];
            const struct amuse_shape *s = &p->out_shape[0];
            const struct am__weight *bias = am__layer_weight(p, "bias");
            int64_t ks = amuse_shape_size(&p->w[0].shape);
            float *fk = m->fold_buf + m->fold_offset[i];
            am__batchnorm_fold(&m->layers[m->fold_bn[i]], p->w[0].value,
                               bias ? bias->value : NULL, ks, s->dim[s->ndim - 1], fk, fk + ks);
            c.fold_kernel = fk;
            c.fold_bias = fk + ks;
            c.out[0] = am__act(m, (struct am__node_ref){m->fold_bn[i], 0});
        }
        for (int j = i + 1; j < m->n_layers; j++)
            if (m->fused_into[j] == i) {
                setup_call(m, j, batch, training, &epilogue_call);
                c.epilogue = &m->layers[j];
                c.epilogue_call = &epilogue_call;
            }
        if (m->layers[i].type->check) {
            int rc = m->layers[i].type->check(&m->layers[i], &c);
            if (rc) {
                m->last_batch = 0; /* no loss or backward on a failed pass */
                return rc;
            }
        }
        double t0 = m->profile ? omp_get_wtime() : 0;
        m->layers[i].type->forward(&m->layers[i], &c);
        if (m->profile)
            m->layer_seconds[i][0] += omp_get_wtime() - t0;
    }
    m->last_batch = batch;
    m->have_loss_grad = 0;
    m->last_folded = fold;
    if (out)
        *out = am__act(m, m->output);
    return AMUSE_OK;
}

int amuse_model_forward(struct amuse_model *m, const float *x, int64_t batch, int training,
                        const float **out)
{
    return amuse_model_forward_inputs(m, &x, 1, batch, training, out);
}

int amuse_model_backward(struct amuse_model *m)
{
    if (!m->have_loss_grad)
        return am__fail(AMUSE_EINVAL, "backward needs a forward pass and a loss first");
    int64_t batch = m->last_batch;
    /* An inference pass folded BatchNormalization away: run those pairs as written, so that
     * their outputs and workspaces are what their backward reads. */
    for (int i = 0; m->last_folded && i < m->n_layers; i++)
        if (m->fold_bn[i] >= 0) {
            struct am__call c;
            setup_call(m, i, batch, 0, &c);
            m->layers[i].type->forward(&m->layers[i], &c);
            setup_call(m, m->fold_bn[i], batch, 0, &c);
            m->layers[m->fold_bn[i]].type->forward(&m->layers[m->fold_bn[i]], &c);
        }
    m->last_folded = 0;
    /* Zero every activation gradient except the output's, which the loss just wrote. */
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        for (int k = 0; k < l->n_outputs; k++)
            if (m->act_offset[i][k] != m->act_offset[m->output.node][m->output.slot])
                memset(am__act_grad(m, (struct am__node_ref){i, k}), 0,
                       (size_t)(batch * amuse_shape_size(&l->out_shape[k])) * sizeof(float));
    }
    for (int i = m->n_layers - 1; i >= 0; i--) {
        if (m->layers[i].type == &am__input_layer)
            continue;
        struct am__call c;
        setup_call(m, i, batch, 1, &c);
        double t0 = m->profile ? omp_get_wtime() : 0;
        m->layers[i].type->backward(&m->layers[i], &c);
        if (m->profile)
            m->layer_seconds[i][1] += omp_get_wtime() - t0;
    }
    return AMUSE_OK;
}

int64_t am__output_rows(const struct amuse_model *m)
{
    const struct amuse_shape *s = amuse_model_output_shape(m);
    int64_t last = s->ndim ? s->dim[s->ndim - 1] : 1;
    return last > 0 ? amuse_shape_size(s) / last : 0;
}

int64_t am__output_width(const struct amuse_model *m)
{
    const struct amuse_shape *s = amuse_model_output_shape(m);
    return s->ndim ? s->dim[s->ndim - 1] : 1;
}

int64_t amuse_model_output_rows(const struct amuse_model *m)
{
    return am__output_rows(m);
}

const float *am__output_mask(struct amuse_model *m)
{
    int src = m->output.slot == 0 ? m->mask_src[m->output.node] : -1;
    return src >= 0 && m->last_batch > 0 ? m->masks + m->mask_offset[src] : NULL;
}

int amuse_model_loss_weighted(struct amuse_model *m, const float *targets, const int32_t *labels,
                              const float *weights, float *loss)
{
    if (m->last_batch < 1)
        return am__fail(AMUSE_EINVAL, "loss needs a forward pass first");
    if (m->loss == AM__LOSS_NONE)
        return am__fail(AMUSE_EINVAL, "model '%s' has no loss: compile it first", m->name);
    if (!targets && !labels)
        return am__fail(AMUSE_EINVAL, "loss needs targets or labels");
    int64_t width = am__output_width(m), rows = m->last_batch * am__output_rows(m);
    if (labels)
        for (int64_t i = 0; i < rows; i++)
            if (labels[i] < 0 || (labels[i] >= width && m->loss != AM__LOSS_BINARY_CROSSENTROPY))
                return am__fail(AMUSE_EINVAL, "label %d of row %lld is outside [0, %lld)",
                                labels[i], (long long)i, (long long)width);
    /* The output's step mask (padding) joins the caller's weights. */
    const float *mask = am__output_mask(m), *w = weights;
    if (mask) {
        for (int64_t i = 0; i < rows; i++)
            m->row_weight[i] = mask[i] * (weights ? weights[i] : 1.0f);
        w = m->row_weight;
    }
    struct am__layer *last = &m->layers[m->output.node];
    int fused = (last->type->flags & AM__LAYER_FUSES_SOFTMAX_LOSS) && m->output.slot == 0 &&
                last->type->output_activation &&
                last->type->output_activation(last) == AM__ACT_SOFTMAX &&
                (m->loss == AM__LOSS_CATEGORICAL_CROSSENTROPY ||
                 m->loss == AM__LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    last->fused_loss_grad = fused;
    *loss = am__loss_forward(m, am__act(m, m->output), targets, labels, w, rows, width,
                             am__act_grad(m, m->output), fused);
    m->have_loss_grad = 1;
    return AMUSE_OK;
}

int amuse_model_loss(struct amuse_model *m, const float *targets, const int32_t *labels,
                     float *loss)
{
    return amuse_model_loss_weighted(m, targets, labels, NULL, loss);
}

int amuse_model_loss_batch(struct amuse_model *m, const struct amuse_batch *b, float *loss)
{
    if (b->n != m->last_batch)
        return am__fail(AMUSE_EINVAL, "loss: the batch has %lld samples, the forward pass had %lld",
                        (long long)b->n, (long long)m->last_batch);
    const struct amuse_array *t = &b->target;
    int64_t want = t->dtype == AMUSE_INT32 ? am__output_rows(m)
                                           : amuse_shape_size(amuse_model_output_shape(m));
    if (amuse_shape_size(&t->shape) != want) {
        char x[96], y[96];
        return am__fail(AMUSE_ESHAPE, "model '%s' outputs %s; %s targets of shape %s do not fit",
                        m->name, amuse_shape_format(amuse_model_output_shape(m), 0, x, sizeof x),
                        t->dtype == AMUSE_INT32 ? "int32" : "float",
                        amuse_shape_format(&t->shape, 0, y, sizeof y));
    }
    return amuse_model_loss_weighted(m, t->dtype == AMUSE_INT32 ? NULL : t->f32,
                                     t->dtype == AMUSE_INT32 ? t->i32 : NULL, b->weight, loss);
}

int amuse_model_step(struct amuse_model *m)
{
    am__optimizer_update(m);
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- kept recurrent state */

int64_t amuse_model_state_size(const struct amuse_model *m)
{
    int64_t n = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type->flags & AM__LAYER_HAS_STATE)
            n += m->layers[i].type->state_floats(&m->layers[i]);
    return n;
}

static int state_access(struct amuse_model *m, int64_t row, float *buf, int get)
{
    if (row < 0 || row >= AMUSE_MAX_STATE_ROWS)
        return am__fail(AMUSE_EINVAL, "model '%s': state row %lld is outside [0, %d)", m->name,
                        (long long)row, AMUSE_MAX_STATE_ROWS);
    if (amuse_model_state_size(m) == 0)
        return am__fail(AMUSE_EINVAL, "model '%s' has no stateful layer", m->name);
    int64_t at = 0;
    for (int i = 0; i < m->n_layers; i++) {
        struct am__layer *l = &m->layers[i];
        int64_t n = l->type->flags & AM__LAYER_HAS_STATE ? l->type->state_floats(l) : 0;
        if (n == 0)
            continue;
        int rc = l->type->state_access(l, row, buf + at, get);
        if (rc)
            return rc;
        at += n;
    }
    return AMUSE_OK;
}

int amuse_model_state_get(struct amuse_model *m, int64_t row, float *out)
{
    return state_access(m, row, out, 1);
}

int amuse_model_state_set(struct amuse_model *m, int64_t row, const float *in)
{
    return state_access(m, row, (float *)in, 0);
}

int amuse_model_reset_states(struct amuse_model *m, const int64_t *rows, int n_rows)
{
    int64_t per = amuse_model_state_size(m);
    if (per == 0)
        return AMUSE_OK;
    float *zeros = calloc((size_t)per, sizeof(float));
    if (!zeros)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = AMUSE_OK;
    if (rows) {
        for (int k = 0; k < n_rows && rc == AMUSE_OK; k++)
            rc = state_access(m, rows[k], zeros, 0);
    } else {
        for (int i = 0; i < m->n_layers; i++)
            if ((m->layers[i].type->flags & AM__LAYER_HAS_STATE) && m->layers[i].type->release)
                m->layers[i].type->release(&m->layers[i]);
    }
    free(zeros);
    return rc;
}

int amuse_model_set_stateful(struct amuse_model *m, int on)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type->flags & AM__LAYER_HAS_STATE) {
            /* Check every layer before changing any. */
            if (on && m->layers[i].n_inputs > 1)
                return m->layers[i].type->set_stateful(&m->layers[i], 1);
            n++;
        }
    if (n == 0)
        return am__fail(AMUSE_EINVAL, "model '%s' has no recurrent layer", m->name);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type->flags & AM__LAYER_HAS_STATE) {
            int rc = m->layers[i].type->set_stateful(&m->layers[i], on != 0);
            if (rc)
                return rc;
        }
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- new input shapes */

int amuse_model_set_input_shape(struct amuse_model *m, int index, const struct amuse_shape *shape)
{
    if (index < 0 || index >= m->n_inputs)
        return am__fail(AMUSE_EINVAL, "model '%s' has no input %d", m->name, index);
    if (shape->ndim < 1 || shape->ndim > AMUSE_MAX_DIMS - 1 || amuse_shape_size(shape) < 1)
        return am__fail(AMUSE_EINVAL, "model '%s': an input shape needs 1 to %d positive axes",
                        m->name, AMUSE_MAX_DIMS - 1);
    struct am__layer *saved = malloc((size_t)m->n_layers * sizeof *saved);
    if (!saved)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    memcpy(saved, m->layers, (size_t)m->n_layers * sizeof *saved);
    m->layers[m->input_nodes[index]].out_shape[0] = *shape;
    int rc = AMUSE_OK;
    for (int i = 0; i < m->n_layers && rc == AMUSE_OK; i++) {
        struct am__layer *l = &m->layers[i];
        if (l->type == &am__input_layer)
            continue;
        for (int k = 0; k < l->n_inputs; k++)
            l->in_shape[k] = m->layers[l->input[k].node].out_shape[l->input[k].slot];
        l->n_weights = 0;
        l->makes_mask = l->passes_mask = 0;
        if ((rc = l->type->build(l)))
            break;
        for (int k = 0; k < l->n_outputs && rc == AMUSE_OK; k++)
            if (amuse_shape_size(&l->out_shape[k]) < 0 ||
                amuse_shape_size(&l->out_shape[k]) > ((int64_t)1 << 28))
                rc = am__layer_fail(l, AMUSE_ETOOBIG, "output is too large");
        /* The weights must come out as they were: same names, same shapes, same memory. */
        if (rc == AMUSE_OK && l->n_weights != saved[i].n_weights)
            rc = am__layer_fail(l, AMUSE_ESHAPE, "the new input shape changes its weights");
        for (int k = 0; k < l->n_weights && rc == AMUSE_OK; k++) {
            const struct am__weight *was = &saved[i].w[k];
            if (strcmp(l->w[k].name, was->name) != 0 ||
                !amuse_shape_equal(&l->w[k].shape, &was->shape)) {
                char a[96], b[96];
                rc = am__layer_fail(l, AMUSE_ESHAPE,
                                    "the new input shape would make weight '%s' %s instead of %s",
                                    was->name, amuse_shape_format(&l->w[k].shape, 0, a, sizeof a),
                                    amuse_shape_format(&was->shape, 0, b, sizeof b));
                break;
            }
            l->w[k] = *was;
        }
    }
    if (rc) {
        memcpy(m->layers, saved, (size_t)m->n_layers * sizeof *saved);
        free(saved);
        return rc;
    }
    free(saved);
    /* Activations, masks and workspaces are re-sized by the next forward pass. */
    m->batch_cap = 0;
    m->last_batch = 0;
    m->have_loss_grad = 0;
    return AMUSE_OK;
}
