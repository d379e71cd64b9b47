/* text/generate.c - generators (amuse/generate.h): the inference graphs derived from a trained
 * character model, and stream slots stepped together in one batched forward pass.
 *
 * Derivation works on the config document: the trained graph's JSON is copied and edited
 * (recurrent layers made stateful, decoder input one step long, the encoder cut out as its own
 * graph), built as new models, and the trained weights copied over by name. Each slot's recurrent
 * state lives here, not in the model: before a batched forward pass the active slots' states are
 * set into rows 0..n-1 of the step model's kept state and read back after it, so batches are
 * always dense whichever slots are active.
 *
 * Prompts are read in batches too: amuse_generator_start only checks and encodes, and the next
 * step first reads every new prompt together (a language model: one batched pass per prompt
 * position through the "prime" graph, the step graph without the layers after its last
 * recurrent one, the rows sorted by prompt length so the rows still reading are always a prefix;
 * an encoder-decoder: one encoder pass for all new sources), at most AMUSE_GENERATE_PRIME_CHUNK
 * characters per prompt per step, so running streams wait at most that long for new ones.
 * Passes of few rows run on one thread (amuse_generator_set_threads): waking a second thread
 * for a one-row product costs more than it saves, and far more on a loaded machine.
 *
 * Does not: search beams, or know about HTTP (the server's batcher drives the steps).
 */
#include "amuse/generate.h"

#include "amuse/model.h"
#include "core/internal.h"
#include "nn/model_internal.h"
#include "nn/vexp.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Passes over at most this many streams compute their products row by row (matrix-vector,
 * am__sgemm_rows): for one stream 4-6 times faster than sgemm, which packs every weight matrix
 * on every call; from about 4 rows (the default poems model) to 8 (the bench's 256-unit one)
 * one sgemm catches up. */
#define ROW_PRODUCTS 4

struct slot {
    int active;
    int need_forward;       /* next_input has not been run yet */
    int64_t prime_pos;      /* language model: history[prime_pos, prime_end) is still to read */
    int64_t prime_end;
    int encode_pending;     /* encoder-decoder: the source has not been encoded yet */
    int32_t next_input;
    float *probs; /* V: the distribution the next token is drawn from */
    float *state; /* the step model's state for this stream */
    struct amuse_sampler *sampler;
    int32_t *history; /* prompt (language model) and generated ids */
    int64_t n_history, history_cap;
    char *text; /* generated text; [0, sent) handed out */
    size_t text_len, sent, text_cap;
    char stop_buf[AMUSE_GENERATE_MAX_STOPS][AMUSE_GENERATE_MAX_STOP_BYTES + 1];
    const char *stops[AMUSE_GENERATE_MAX_STOPS];
    int n_stop;
    size_t max_stop;
    int max_tokens;
    int line_length; /* line shape: the half-line length to keep, 0 for none */
    int line_at;     /* characters in the current half-line */
    struct amuse_generate_usage usage;
};

struct amuse_generator {
    enum amuse_generator_kind kind;
    char name[128];
    struct amuse_charvocab *vocab;
    int vocab_size;
    struct amuse_model *step;    /* one step, stateful (the decoder for seq2seq) */
    struct amuse_model *encoder; /* seq2seq only: source -> the state layer's final states */
    struct amuse_model *prime;   /* language model: the step graph up to its last recurrent
                                  * layer (Sequential models), or NULL: prompts use step */
    int threads;                 /* amuse_generator_set_threads; 0: automatic */
    int64_t state_size;          /* floats of the step model's state per stream */
    int64_t init_offset;         /* seq2seq: where the encoder's states go in the decoder's */
    int64_t enc_state_size;
    int enc_len;                 /* seq2seq: the encoder's T */
    int step_onehot, enc_onehot; /* input is (T, V) one-hot floats rather than (T) ids */
    int softmax_here;            /* the step graph's output softmax was taken out: run here */
    int max_tokens;
    int n_slots;
    struct slot *slots;
    uint8_t *allowed; /* V: ids the sampler may choose */
    /* Line shape (V each): 1 for a half-line mark; what may follow 0 characters of a half-line,
     * fewer than its length, and its full length. */
    uint8_t *is_mark, *at_start, *inside, *at_end;
    int line_shape, has_marks;
    float *scratch;   /* V */
    int32_t *in_ids;  /* n_slots (or enc_len) ids */
    float *in_onehot; /* n_slots * V (or enc_len * V) */
    int32_t *rows;    /* n_slots */
    int32_t *prime_rows; /* n_slots: slots reading their prompt this step */
    int64_t *prime_len;  /* n_slots: characters each reads this step */
    float *enc_state;
};

const char *amuse_finish_name(enum amuse_finish f)
{
    return f == AMUSE_FINISH_LENGTH ? "length" : f == AMUSE_FINISH_STOP ? "stop" : NULL;
}

void amuse_generate_request_defaults(struct amuse_generate_request *r)
{
    memset(r, 0, sizeof *r);
    amuse_sampling_defaults(&r->sampling);
}

/* ---- deriving the inference graphs -------------------------------------------------------- */

static cJSON *model_object(cJSON *doc)
{
    return cJSON_GetObjectItemCaseSensitive(doc, "class_name")
               ? doc
               : cJSON_GetObjectItemCaseSensitive(doc, "model");
}

static const char *spec_name(const cJSON *spec)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(spec, "name");
    if (!cJSON_IsString(n)) {
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(spec, "config");
        n = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    }
    return cJSON_IsString(n) ? n->valuestring : "";
}

static unsigned spec_flags(const cJSON *spec)
{
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(spec, "class_name");
    const struct am__layer_type *t =
        cJSON_IsString(cls) ? am__layer_type_find(cls->valuestring) : NULL;
    return t ? t->flags : 0;
}

static void set_bool(cJSON *obj, const char *key, int value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddBoolToObject(obj, key, value);
}

/* Make the time axis of an input shape one step long: batch_input_shape [null, T, ...] or
 * shape / input_shape [T, ...]. Returns 1 if a shape was found. */
static int shorten_input(cJSON *spec)
{
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(spec, "config");
    static const char *const keys[] = {"batch_input_shape", "shape", "input_shape"};
    for (int k = 0; k < 3; k++) {
        cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, keys[k]);
        int axis = k == 0 ? 1 : 0;
        if (cJSON_IsArray(s) && cJSON_GetArraySize(s) > axis) {
            cJSON_ReplaceItemInArray(s, axis, cJSON_CreateNumber(1));
            return 1;
        }
    }
    return 0;
}

static const char *ref_layer(const cJSON *ref, int *slot);
static int index_of(const cJSON *layers, const char *name);

/* Take the softmax off the graph's output layer (its activation becomes linear), so that the
 * generator computes it per row with the vectorised exp (softmax_rows): the step graph's own
 * softmax, with libm's expf per id, was the largest cost of a 16-stream step after the products.
 * Returns 1 if it did. */
static int strip_softmax(cJSON *doc)
{
    cJSON *mcfg = cJSON_GetObjectItemCaseSensitive(model_object(doc), "config");
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(mcfg, "layers"), *out = NULL;
    cJSON *outs = cJSON_GetObjectItemCaseSensitive(mcfg, "output_layers");
    if (cJSON_IsArray(outs)) {
        if (cJSON_GetArraySize(outs) != 1)
            return 0;
        int slot;
        const char *name = ref_layer(cJSON_GetArrayItem(outs, 0), &slot);
        out = cJSON_GetArrayItem(layers, index_of(layers, name));
    } else {
        out = cJSON_GetArrayItem(layers, cJSON_GetArraySize(layers) - 1);
    }
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(out, "config");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, "activation");
    if (!cJSON_IsString(act) || strcmp(act->valuestring, "softmax") != 0)
        return 0;
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "activation", cJSON_CreateString("linear"));
    return 1;
}

/* p = softmax(z) over n scores. */
static void softmax_row(const float *z, float *p, int64_t n)
{
    float max = z[0];
#pragma omp simd reduction(max : max)
    for (int64_t j = 0; j < n; j++)
        max = z[j] > max ? z[j] : max;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < n; j++) {
        p[j] = am__vexp(z[j] - max);
        sum += p[j];
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        p[j] *= inv;
}

/* Every layer with kept state made stateful. */
static void make_stateful(cJSON *layers)
{
    cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        cJSON *cfg = cJSON_GetObjectItemCaseSensitive(spec, "config");
        if ((spec_flags(spec) & AM__LAYER_HAS_STATE) && cJSON_IsObject(cfg))
            set_bool(cfg, "stateful", 1);
    }
}

static int build_from_doc(struct amuse_model **out, cJSON *doc, const char *what)
{
    char *text = cJSON_PrintUnformatted(doc);
    if (!text)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = amuse_model_from_json(out, text, strlen(text), what);
    free(text);
    return rc;
}

/* Copy every weight of dst from the weight of the same name in src. */
static int copy_weights(struct amuse_model *dst, struct amuse_model *src)
{
    for (int i = 0; i < amuse_model_weight_count(dst); i++) {
        struct amuse_tensor to, from, grad;
        const char *name = amuse_model_weight_info(dst, i, &to, &grad);
        int rc = amuse_model_find_weight(src, name, &from, &grad);
        if (rc)
            return am__fail(rc, "weight '%s' of the inference graph is not in the trained one",
                            name);
        if (amuse_shape_size(&from.shape) != amuse_shape_size(&to.shape))
            return am__fail(AMUSE_ESHAPE, "weight '%s': the trained and inference shapes differ",
                            name);
        memcpy(to.data, from.data, (size_t)amuse_shape_size(&to.shape) * sizeof(float));
    }
    return AMUSE_OK;
}

/* The input of a generator's graph: (T) int32 ids or (T, V) one-hot floats. */
static int input_form(struct amuse_generator *g, struct amuse_model *m, int index, int *onehot,
                      int *len)
{
    const struct amuse_shape *s = amuse_model_input_shape_at(m, index);
    if (amuse_model_input_dtype_at(m, index) == AMUSE_INT32 && s->ndim == 1) {
        *onehot = 0;
    } else if (s->ndim == 2 && s->dim[1] == g->vocab_size) {
        *onehot = 1;
    } else {
        return am__fail(AMUSE_EUNSUPPORTED,
                        "model '%s' is not a generator: input %d is neither (T) token ids nor "
                        "(T, %d) one-hot characters",
                        g->name, index, g->vocab_size);
    }
    *len = (int)s->dim[0];
    return AMUSE_OK;
}

/* The prime graph of a Sequential language model: its (already one-step, stateful) layers up
 * to the last recurrent one, so reading a prompt skips the output layers. Left NULL for other
 * graphs (prompts then run through the step graph). */
static int derive_prime(struct amuse_generator *g, struct amuse_model *m, cJSON *doc)
{
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(model_object(doc), "class_name");
    if (!cJSON_IsString(cls) || strcmp(cls->valuestring, "Sequential") != 0)
        return AMUSE_OK;
    cJSON *copy = cJSON_Duplicate(doc, 1);
    if (!copy)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "compile");
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(model_object(copy), "config"), "layers");
    int last = -1, i = 0;
    cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        if (spec_flags(spec) & AM__LAYER_HAS_STATE)
            last = i;
        i++;
    }
    int rc = AMUSE_OK;
    if (last >= 0 && last + 1 < cJSON_GetArraySize(layers)) {
        while (cJSON_GetArraySize(layers) > last + 1)
            cJSON_DeleteItemFromArray(layers, last + 1);
        rc = build_from_doc(&g->prime, copy, "prompt graph");
        if (!rc)
            rc = copy_weights(g->prime, m);
        if (!rc && amuse_model_state_size(g->prime) != amuse_model_state_size(g->step))
            rc = am__fail(AMUSE_EINVAL, "internal: the prompt graph's state differs");
    }
    cJSON_Delete(copy);
    return rc;
}

static int derive_lm(struct amuse_generator *g, struct amuse_model *m, cJSON *doc)
{
    int onehot = 0, len = 0;
    int rc = input_form(g, m, 0, &onehot, &len);
    if (rc)
        return rc;
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(model_object(doc), "config"), "layers");
    int found = 0;
    cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        found += shorten_input(spec);
        if (found)
            break; /* a Sequential's shape is on its first layer; one input in all */
    }
    if (!found)
        return am__fail(AMUSE_EUNSUPPORTED, "model '%s': no input shape to shorten", g->name);
    make_stateful(layers);
    g->softmax_here = strip_softmax(doc);
    if ((rc = build_from_doc(&g->step, doc, "inference graph")) || (rc = copy_weights(g->step, m)))
        return rc;
    if (amuse_model_state_size(g->step) == 0)
        return am__fail(AMUSE_EUNSUPPORTED,
                        "model '%s' is not a generator: it has no recurrent layer", g->name);
    if ((rc = derive_prime(g, m, doc)))
        return rc;
    g->step_onehot = onehot;
    g->kind = AMUSE_GENERATOR_LM;
    g->max_tokens = AMUSE_GENERATE_MAX_TOKENS;
    const char *cap = NULL;
    cJSON *gen = cJSON_GetObjectItemCaseSensitive(doc, "generation");
    cJSON *mt = cJSON_GetObjectItemCaseSensitive(gen, "max_tokens");
    if (cJSON_IsNumber(mt)) {
        if (mt->valuedouble < 1 || mt->valuedouble > AMUSE_GENERATE_MAX_TOKENS)
            cap = "generation.max_tokens";
        else
            g->max_tokens = (int)mt->valuedouble;
    }
    if (cap)
        return am__fail(AMUSE_EFORMAT, "model '%s': %s must be 1 to %d", g->name, cap,
                        AMUSE_GENERATE_MAX_TOKENS);
    return AMUSE_OK;
}

/* The refs of a functional spec's single call: inbound_nodes[0]. */
static cJSON *spec_refs(const cJSON *spec)
{
    cJSON *in = cJSON_GetObjectItemCaseSensitive(spec, "inbound_nodes");
    return cJSON_IsArray(in) ? cJSON_GetArrayItem(in, 0) : NULL;
}

static const char *ref_layer(const cJSON *ref, int *slot)
{
    const cJSON *n = cJSON_GetArrayItem(ref, 0), *s = cJSON_GetArrayItem(ref, 2);
    *slot = cJSON_IsNumber(s) ? (int)s->valuedouble : 0;
    return cJSON_IsString(n) ? n->valuestring : "";
}

static int index_of(const cJSON *layers, const char *name)
{
    int i = 0;
    const cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        if (strcmp(spec_name(spec), name) == 0)
            return i;
        i++;
    }
    return -1;
}

/* Mark `name` and everything it reads from. */
static void mark_ancestors(const cJSON *layers, const char *name, char *mark)
{
    int i = index_of(layers, name);
    if (i < 0 || mark[i])
        return;
    mark[i] = 1;
    const cJSON *ref;
    cJSON_ArrayForEach(ref, spec_refs(cJSON_GetArrayItem(layers, i)))
    {
        int slot;
        mark_ancestors(layers, ref_layer(ref, &slot), mark);
    }
}

static int not_seq2seq(const struct amuse_generator *g, const char *why)
{
    return am__fail(AMUSE_EUNSUPPORTED,
                    "model '%s' is not a generator: a two-input model must be an encoder-decoder "
                    "(a decoder recurrent layer started from an encoder recurrent layer's final "
                    "states); %s",
                    g->name, why);
}

static int derive_seq2seq(struct amuse_generator *g, struct amuse_model *m, cJSON *doc)
{
    cJSON *mcfg = cJSON_GetObjectItemCaseSensitive(model_object(doc), "config");
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(mcfg, "layers");
    int n = cJSON_GetArraySize(layers);
    if (n < 1)
        return not_seq2seq(g, "no layers");
    /* The decoder's recurrent layer: one with kept state and initial states from another. */
    int dec = -1;
    const char *enc_name = NULL;
    int i = 0;
    cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        cJSON *refs = spec_refs(spec);
        if ((spec_flags(spec) & AM__LAYER_HAS_STATE) && cJSON_GetArraySize(refs) > 1) {
            if (dec >= 0)
                return not_seq2seq(g, "more than one layer takes initial_state");
            dec = i;
            for (int k = 1; k < cJSON_GetArraySize(refs); k++) {
                int slot;
                const char *src = ref_layer(cJSON_GetArrayItem(refs, k), &slot);
                if (slot != k || (enc_name && strcmp(enc_name, src) != 0))
                    return not_seq2seq(g, "initial_state must be [h, c] of one layer, in order");
                enc_name = src;
            }
        }
        i++;
    }
    if (dec < 0)
        return not_seq2seq(g, "no layer takes initial_state");
    int enc = index_of(layers, enc_name);
    if (enc < 0 || !(spec_flags(cJSON_GetArrayItem(layers, enc)) & AM__LAYER_HAS_STATE))
        return not_seq2seq(g, "the initial states do not come from a recurrent layer");
    char *mark = calloc((size_t)n, 1);
    if (!mark)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    mark_ancestors(layers, enc_name, mark);
    /* The encoder's graph: the marked layers, output = the state layer. */
    cJSON *enc_doc = cJSON_CreateObject(), *dec_doc = cJSON_Duplicate(doc, 1);
    cJSON *emodel = cJSON_AddObjectToObject(enc_doc, "model");
    cJSON_AddStringToObject(emodel, "class_name", "Functional");
    cJSON *ecfg = cJSON_AddObjectToObject(emodel, "config");
    cJSON_AddStringToObject(ecfg, "name", "encoder");
    cJSON *elayers = cJSON_AddArrayToObject(ecfg, "layers");
    cJSON *dlayers = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(model_object(dec_doc), "config"), "layers");
    const char *enc_input = NULL, *dec_input = NULL;
    int rc = AMUSE_OK, removed = 0;
    for (i = 0; i < n; i++) {
        cJSON *s = cJSON_GetArrayItem(layers, i);
        int is_input = cJSON_GetArraySize(spec_refs(s)) == 0;
        if (mark[i]) {
            cJSON *copy = cJSON_Duplicate(s, 1);
            if (i == enc)
                set_bool(cJSON_GetObjectItemCaseSensitive(copy, "config"), "stateful", 1);
            cJSON_AddItemToArray(elayers, copy);
            if (is_input)
                enc_input = spec_name(s);
            cJSON_DeleteItemFromArray(dlayers, i - removed++);
            continue;
        }
        /* A decoder layer may read an encoder layer only as the initial state. */
        cJSON *ref;
        int k = 0;
        cJSON_ArrayForEach(ref, spec_refs(s))
        {
            int slot, j = index_of(layers, ref_layer(ref, &slot));
            if (j >= 0 && mark[j] && !(i == dec && k > 0))
                rc = not_seq2seq(g, "a decoder layer reads the encoder other than as its state");
            k++;
        }
        if (is_input)
            dec_input = spec_name(s);
    }
    free(mark);
    if (!rc && (!enc_input || !dec_input))
        rc = not_seq2seq(g, "each side needs its own InputLayer");
    if (rc)
        goto done;
    cJSON *eins = cJSON_AddArrayToObject(ecfg, "input_layers"), *r1 = cJSON_CreateArray();
    cJSON_AddItemToArray(r1, cJSON_CreateString(enc_input));
    cJSON_AddItemToArray(r1, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(r1, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(eins, r1);
    cJSON *eouts = cJSON_AddArrayToObject(ecfg, "output_layers"), *r2 = cJSON_CreateArray();
    cJSON_AddItemToArray(r2, cJSON_CreateString(enc_name));
    cJSON_AddItemToArray(r2, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(r2, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(eouts, r2);
    /* The decoder: its input one step long, its recurrent layers stateful, no initial_state. */
    cJSON *dcfg = cJSON_GetObjectItemCaseSensitive(model_object(dec_doc), "config");
    cJSON *dins = cJSON_CreateArray(), *r3 = cJSON_CreateArray();
    cJSON_AddItemToArray(r3, cJSON_CreateString(dec_input));
    cJSON_AddItemToArray(r3, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(r3, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(dins, r3);
    cJSON_ReplaceItemInObjectCaseSensitive(dcfg, "input_layers", dins);
    int dec_index = -1, j = 0;
    cJSON_ArrayForEach(spec, dlayers)
    {
        if (strcmp(spec_name(spec), dec_input) == 0)
            shorten_input(spec);
        if (strcmp(spec_name(spec), spec_name(cJSON_GetArrayItem(layers, dec))) == 0) {
            dec_index = j;
            cJSON *refs = spec_refs(spec);
            while (cJSON_GetArraySize(refs) > 1)
                cJSON_DeleteItemFromArray(refs, 1);
        }
        j++;
    }
    make_stateful(dlayers);
    g->softmax_here = strip_softmax(dec_doc);
    if ((rc = build_from_doc(&g->encoder, enc_doc, "encoder graph")) ||
        (rc = copy_weights(g->encoder, m)) ||
        (rc = build_from_doc(&g->step, dec_doc, "decoder graph")) ||
        (rc = copy_weights(g->step, m)))
        goto done;
    /* Where the decoder layer's state sits among the decoder's kept states. */
    const char *dname = spec_name(cJSON_GetArrayItem(dlayers, dec_index));
    int64_t off = 0;
    for (int l = 0; l < g->step->n_layers; l++) {
        struct am__layer *L = &g->step->layers[l];
        if (strcmp(L->name, dname) == 0)
            break;
        if (L->type->state_floats)
            off += L->type->state_floats(L);
    }
    g->init_offset = off;
    g->enc_state_size = amuse_model_state_size(g->encoder);
    int dlen = 0, elen = 0;
    if ((rc = input_form(g, g->encoder, 0, &g->enc_onehot, &elen)) ||
        (rc = input_form(g, m, amuse_model_input_index(m, dec_input), &g->step_onehot, &dlen)))
        goto done;
    if (off + g->enc_state_size > amuse_model_state_size(g->step)) {
        rc = not_seq2seq(g, "the encoder's states do not fit the decoder layer's");
        goto done;
    }
    g->enc_len = elen;
    g->max_tokens = dlen;
    g->kind = AMUSE_GENERATOR_SEQ2SEQ;
done:
    cJSON_Delete(enc_doc);
    cJSON_Delete(dec_doc);
    return rc;
}

/* ---- line shape ---------------------------------------------------------------------------- */

/* The marks that end a half-line of verse. */
static int is_line_mark(const char *text)
{
    static const char *const marks[] = {"，", "。", "？", "！", "；", "、", "\n"};
    for (size_t k = 0; k < sizeof marks / sizeof *marks; k++)
        if (strcmp(text, marks[k]) == 0)
            return 1;
    return 0;
}

static int line_masks(struct amuse_generator *g)
{
    size_t V = (size_t)g->vocab_size;
    g->is_mark = calloc(V, 1);
    g->at_start = malloc(V);
    g->inside = malloc(V);
    g->at_end = calloc(V, 1);
    if (!g->is_mark || !g->at_start || !g->inside || !g->at_end)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    memcpy(g->at_start, g->allowed, V);
    memcpy(g->inside, g->allowed, V);
    for (int32_t id = AMUSE_CHAR_RESERVED; id < g->vocab_size; id++) {
        char text[5];
        int n = amuse_charvocab_text(g->vocab, id, text);
        text[n > 0 && n < 5 ? n : 0] = '\0';
        if (!is_line_mark(text))
            continue;
        g->is_mark[id] = 1;
        g->has_marks = 1;
        g->inside[id] = 0;
        g->at_end[id] = 1;
        g->at_start[id] = strcmp(text, "\n") == 0; /* a newline may follow a mark */
    }
    g->inside[AMUSE_CHAR_EOS] = 0; /* no end in the middle of a half-line */
    g->at_end[AMUSE_CHAR_EOS] = 1;
    return AMUSE_OK;
}

/* The half-line length the prompt sets, and how far its last half-line got, in characters of
 * the prompt as written (valid UTF-8): characters the vocabulary lacks count too, since they
 * are part of the verse the prompt shows. */
static void prompt_line_shape(const char *text, size_t len, int *length, int *at)
{
    int run = 0;
    *length = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = am__utf8_decode((const unsigned char *)text + i, len - i, &cp);
        if (k <= 0)
            break; /* cannot happen: the prompt was checked */
        char one[5];
        memcpy(one, text + i, (size_t)k);
        one[k] = '\0';
        if (is_line_mark(one)) {
            if (run > 0 && *length == 0)
                *length = run;
            run = 0;
        } else {
            run++;
        }
        i += (size_t)k;
    }
    *at = run;
}

int amuse_generator_line_shape(const struct amuse_generator *g)
{
    return g->line_shape;
}

/* ---- loading ------------------------------------------------------------------------------ */

int amuse_generator_from_model(struct amuse_generator **out, struct amuse_model *m, int slots)
{
    *out = NULL;
    if (slots < 1 || slots > AMUSE_GENERATE_MAX_SLOTS)
        return am__fail(AMUSE_EINVAL, "slots: %d is outside [1, %d]", slots,
                        AMUSE_GENERATE_MAX_SLOTS);
    struct amuse_generator *g = calloc(1, sizeof *g);
    if (!g)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    snprintf(g->name, sizeof g->name, "%s", amuse_model_name(m));
    int rc;
    cJSON *doc = cJSON_Parse(amuse_model_config_json(m));
    if (!doc) {
        rc = am__fail(AMUSE_ENOMEM, "model '%s': cannot re-read its config", g->name);
        goto fail;
    }
    cJSON *voc = cJSON_GetObjectItemCaseSensitive(doc, "vocabulary");
    if (!cJSON_IsObject(voc)) {
        rc = am__fail(AMUSE_EUNSUPPORTED,
                      "model '%s' is not a generator: its config has no \"vocabulary\"", g->name);
        goto fail;
    }
    char *vtext = cJSON_PrintUnformatted(voc);
    rc = vtext ? amuse_charvocab_from_json(&g->vocab, vtext, strlen(vtext), "vocabulary")
               : am__fail(AMUSE_ENOMEM, "out of memory");
    free(vtext);
    if (rc)
        goto fail;
    g->vocab_size = amuse_charvocab_size(g->vocab);
    const struct amuse_shape *os = amuse_model_output_shape(m);
    if (os->ndim < 1 || os->dim[os->ndim - 1] != g->vocab_size) {
        rc = am__fail(AMUSE_EUNSUPPORTED,
                      "model '%s' is not a generator: its output's last axis is not the "
                      "vocabulary's %d ids",
                      g->name, g->vocab_size);
        goto fail;
    }
    int n_in = amuse_model_input_count(m);
    if (n_in == 1)
        rc = derive_lm(g, m, doc);
    else if (n_in == 2)
        rc = derive_seq2seq(g, m, doc);
    else
        rc = am__fail(AMUSE_EUNSUPPORTED, "model '%s' is not a generator: it has %d inputs",
                      g->name, n_in);
    if (rc)
        goto fail;
    const struct amuse_shape *so = amuse_model_output_shape(g->step);
    if (amuse_shape_size(so) != g->vocab_size) {
        rc = am__fail(AMUSE_EUNSUPPORTED,
                      "model '%s' is not a generator: one step does not give one distribution",
                      g->name);
        goto fail;
    }
    g->state_size = amuse_model_state_size(g->step);
    am__model_set_row_products(g->step, ROW_PRODUCTS);
    if (g->prime)
        am__model_set_row_products(g->prime, ROW_PRODUCTS);
    if (g->encoder)
        am__model_set_row_products(g->encoder, ROW_PRODUCTS);
    g->n_slots = slots;
    int64_t rows = (int64_t)slots * (g->enc_len > 1 ? g->enc_len : 1);
    g->slots = calloc((size_t)slots, sizeof *g->slots);
    g->allowed = malloc((size_t)g->vocab_size);
    g->scratch = malloc((size_t)g->vocab_size * sizeof(float));
    g->in_ids = calloc((size_t)rows, sizeof(int32_t));
    g->in_onehot = calloc((size_t)rows * (size_t)g->vocab_size, sizeof(float));
    g->rows = calloc((size_t)slots, sizeof(int32_t));
    g->prime_rows = calloc((size_t)slots, sizeof(int32_t));
    g->prime_len = calloc((size_t)slots, sizeof(int64_t));
    g->enc_state = calloc((size_t)g->enc_state_size + 1, sizeof(float));
    if (!g->slots || !g->allowed || !g->scratch || !g->in_ids || !g->in_onehot || !g->rows ||
        !g->prime_rows || !g->prime_len || !g->enc_state) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto fail;
    }
    for (int s = 0; s < slots; s++) {
        g->slots[s].probs = calloc((size_t)g->vocab_size, sizeof(float));
        g->slots[s].state = calloc((size_t)g->state_size, sizeof(float));
        if (!g->slots[s].probs || !g->slots[s].state) {
            rc = am__fail(AMUSE_ENOMEM, "out of memory");
            goto fail;
        }
    }
    memset(g->allowed, 1, (size_t)g->vocab_size);
    g->allowed[AMUSE_CHAR_PAD] = g->allowed[AMUSE_CHAR_UNK] = g->allowed[AMUSE_CHAR_BOS] = 0;
    if ((rc = line_masks(g)))
        goto fail;
    cJSON *ls = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "generation"),
                                                 "line_shape");
    if (ls && !cJSON_IsBool(ls)) {
        rc = am__fail(AMUSE_EFORMAT, "model '%s': generation.line_shape must be true or false",
                      g->name);
        goto fail;
    }
    g->line_shape = cJSON_IsTrue(ls);
    cJSON_Delete(doc);
    *out = g;
    return AMUSE_OK;
fail:
    cJSON_Delete(doc);
    amuse_generator_free(g);
    return rc;
}

int amuse_generator_load(struct amuse_generator **out, const char *dir, int slots)
{
    *out = NULL;
    struct amuse_model *m;
    int rc = amuse_model_load(&m, dir);
    if (rc)
        return rc;
    rc = amuse_generator_from_model(out, m, slots);
    amuse_model_free(m);
    return rc ? am__fail_prefix(rc, "%s", dir) : AMUSE_OK;
}

static void slot_release(struct slot *s)
{
    amuse_sampler_free(s->sampler);
    s->sampler = NULL;
    s->active = 0;
    s->need_forward = 0;
    s->prime_pos = s->prime_end = 0;
    s->encode_pending = 0;
}

void amuse_generator_free(struct amuse_generator *g)
{
    if (!g)
        return;
    for (int i = 0; g->slots && i < g->n_slots; i++) {
        slot_release(&g->slots[i]);
        free(g->slots[i].probs);
        free(g->slots[i].state);
        free(g->slots[i].history);
        free(g->slots[i].text);
    }
    free(g->slots);
    free(g->allowed);
    free(g->is_mark);
    free(g->at_start);
    free(g->inside);
    free(g->at_end);
    free(g->scratch);
    free(g->in_ids);
    free(g->in_onehot);
    free(g->rows);
    free(g->prime_rows);
    free(g->prime_len);
    free(g->enc_state);
    amuse_model_free(g->step);
    amuse_model_free(g->prime);
    amuse_model_free(g->encoder);
    amuse_charvocab_free(g->vocab);
    free(g);
}

enum amuse_generator_kind amuse_generator_kind(const struct amuse_generator *g)
{
    return g->kind;
}
int amuse_generator_slots(const struct amuse_generator *g)
{
    return g->n_slots;
}
int amuse_generator_max_tokens(const struct amuse_generator *g)
{
    return g->max_tokens;
}
const struct amuse_charvocab *amuse_generator_vocab(const struct amuse_generator *g)
{
    return g->vocab;
}
const char *amuse_generator_name(const struct amuse_generator *g)
{
    return g->name;
}

/* ---- running the graphs ------------------------------------------------------------------- */

int amuse_generator_set_threads(struct amuse_generator *g, int threads)
{
    if (threads < 0 || threads > AMUSE_GENERATE_MAX_THREADS)
        return am__fail(AMUSE_EINVAL, "threads: %d is outside [0, %d]", threads,
                        AMUSE_GENERATE_MAX_THREADS);
    g->threads = threads;
    return AMUSE_OK;
}

int amuse_generator_threads(const struct amuse_generator *g)
{
    return g->threads;
}

/* The threads a pass over `rows` streams runs on (see amuse_generator_set_threads). */
static int pass_threads(const struct amuse_generator *g, int64_t rows, int current)
{
    if (g->threads > 0)
        return g->threads;
    return rows <= AMUSE_GENERATE_SERIAL_ROWS ? 1 : current;
}

/* One forward pass of `model` on n samples of len tokens each (ids), as ids or one-hot rows, on
 * pass_threads threads of the calling thread (OpenMP's count is per thread, and the OpenMP
 * build of OpenBLAS follows it), restored afterwards. */
static int run(struct amuse_generator *g, struct amuse_model *model, int onehot, const int32_t *ids,
               int64_t n, int64_t len, const float **out)
{
    int current = omp_get_max_threads(), want = pass_threads(g, n, current);
    if (want != current)
        omp_set_num_threads(want);
    struct amuse_batch b;
    memset(&b, 0, sizeof b);
    b.n = n;
    b.n_inputs = 1;
    if (onehot) {
        int64_t V = g->vocab_size;
        memset(g->in_onehot, 0, (size_t)(n * len * V) * sizeof(float));
        for (int64_t i = 0; i < n * len; i++)
            g->in_onehot[i * V + ids[i]] = 1.0f;
        b.input[0].dtype = AMUSE_FLOAT32;
        b.input[0].shape.ndim = 2;
        b.input[0].shape.dim[0] = len;
        b.input[0].shape.dim[1] = V;
        b.input[0].f32 = g->in_onehot;
    } else {
        b.input[0].dtype = AMUSE_INT32;
        b.input[0].shape.ndim = 1;
        b.input[0].shape.dim[0] = len;
        b.input[0].i32 = (int32_t *)ids;
    }
    int rc = amuse_model_forward_batch(model, &b, 0, out);
    if (want != current)
        omp_set_num_threads(current);
    return rc;
}

/* The pending inputs of the listed slots, in one batched step. */
static int forward_slots(struct amuse_generator *g, const int32_t *list, int n)
{
    int rc;
    int32_t *ids = g->in_ids;
    for (int i = 0; i < n; i++) {
        struct slot *s = &g->slots[list[i]];
        ids[i] = s->next_input;
        if ((rc = amuse_model_state_set(g->step, i, s->state)))
            return rc;
    }
    const float *y;
    if ((rc = run(g, g->step, g->step_onehot, ids, n, 1, &y)))
        return rc;
    for (int i = 0; i < n; i++) {
        struct slot *s = &g->slots[list[i]];
        if ((rc = amuse_model_state_get(g->step, i, s->state)))
            return rc;
        if (g->softmax_here)
            softmax_row(y + (int64_t)i * g->vocab_size, s->probs, g->vocab_size);
        else
            memcpy(s->probs, y + (int64_t)i * g->vocab_size,
                   (size_t)g->vocab_size * sizeof(float));
        s->need_forward = 0;
    }
    return AMUSE_OK;
}

/* A slot whose prompt has been read: it takes part in the batched steps. */
static int ready(const struct slot *s)
{
    return s->active && !s->encode_pending && s->prime_pos >= s->prime_end;
}

/* Encode the n sources of the slots in g->prime_rows in one encoder pass, each padded to the
 * encoder's length as in training; their final states start the decoder layer. */
static int encode_slots(struct amuse_generator *g, int n)
{
    int64_t T = g->enc_len;
    int rc;
    for (int i = 0; i < n; i++) {
        const struct slot *s = &g->slots[g->prime_rows[i]];
        int32_t *src = g->in_ids + (int64_t)i * T;
        int64_t len = s->usage.prompt_tokens;
        memcpy(src, s->history, (size_t)len * sizeof(int32_t));
        for (int64_t t = len; t < T; t++)
            src[t] = AMUSE_CHAR_PAD;
        g->prime_len[i] = i;
    }
    const float *y;
    if ((rc = amuse_model_reset_states(g->encoder, g->prime_len, n)) ||
        (rc = run(g, g->encoder, g->enc_onehot, g->in_ids, n, T, &y)))
        return rc;
    for (int i = 0; i < n; i++) {
        struct slot *s = &g->slots[g->prime_rows[i]];
        if ((rc = amuse_model_state_get(g->encoder, i, g->enc_state)))
            return rc;
        memcpy(s->state + g->init_offset, g->enc_state, (size_t)g->enc_state_size * sizeof(float));
        s->encode_pending = 0;
    }
    return AMUSE_OK;
}

/* Read the new prompts (the file comment says how): every language-model slot with prompt left
 * reads up to AMUSE_GENERATE_PRIME_CHUNK more characters, all slots in the same passes; the
 * sources of new encoder-decoder slots are encoded in one pass. */
static int prime_slots(struct amuse_generator *g)
{
    int n = 0, rc;
    for (int i = 0; i < g->n_slots; i++) {
        const struct slot *s = &g->slots[i];
        if (s->active && !ready(s))
            g->prime_rows[n++] = i;
    }
    if (n == 0)
        return AMUSE_OK;
    if (g->kind == AMUSE_GENERATOR_SEQ2SEQ)
        return encode_slots(g, n);
    /* Longest first (insertion sort, stable): the rows still reading at position t are then
     * rows [0, count), and rows past count keep their state in the model untouched. */
    for (int i = 0; i < n; i++) {
        const struct slot *s = &g->slots[g->prime_rows[i]];
        int64_t left = s->prime_end - s->prime_pos;
        g->prime_len[i] = left < AMUSE_GENERATE_PRIME_CHUNK ? left : AMUSE_GENERATE_PRIME_CHUNK;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && g->prime_len[j] > g->prime_len[j - 1]; j--) {
            int64_t l = g->prime_len[j];
            g->prime_len[j] = g->prime_len[j - 1];
            g->prime_len[j - 1] = l;
            int32_t r = g->prime_rows[j];
            g->prime_rows[j] = g->prime_rows[j - 1];
            g->prime_rows[j - 1] = r;
        }
    struct amuse_model *model = g->prime ? g->prime : g->step;
    for (int i = 0; i < n; i++)
        if ((rc = amuse_model_state_set(model, i, g->slots[g->prime_rows[i]].state)))
            return rc;
    int count = n;
    for (int64_t t = 0; t < g->prime_len[0]; t++) {
        while (count > 0 && g->prime_len[count - 1] <= t)
            count--;
        for (int i = 0; i < count; i++) {
            const struct slot *s = &g->slots[g->prime_rows[i]];
            g->in_ids[i] = s->history[s->prime_pos + t];
        }
        const float *y;
        if ((rc = run(g, model, g->step_onehot, g->in_ids, count, 1, &y)))
            return rc;
    }
    for (int i = 0; i < n; i++) {
        struct slot *s = &g->slots[g->prime_rows[i]];
        if ((rc = amuse_model_state_get(model, i, s->state)))
            return rc;
        s->prime_pos += g->prime_len[i];
    }
    return AMUSE_OK;
}

/* ---- streams ------------------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return AMUSE_OK;
    void *q = realloc(*p, need * elem);
    if (!q)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    *p = q;
    *cap = need;
    return AMUSE_OK;
}

static int check_request(const struct amuse_generator *g, int slot,
                         const struct amuse_generate_request *r)
{
    if (slot < 0 || slot >= g->n_slots)
        return am__fail(AMUSE_EINVAL, "slot %d is outside [0, %d)", slot, g->n_slots);
    if (g->slots[slot].active)
        return am__fail(AMUSE_EINVAL, "slot %d is already active", slot);
    if (r->max_tokens < 0 || r->max_tokens > g->max_tokens)
        return am__fail(AMUSE_EINVAL, "max_tokens: %d is above the model's cap of %d",
                        r->max_tokens, g->max_tokens);
    int rc = amuse_sampling_check(&r->sampling);
    if (rc)
        return rc;
    if (r->line_shape != AMUSE_LINE_SHAPE_MODEL && r->line_shape != AMUSE_LINE_SHAPE_OFF &&
        r->line_shape != AMUSE_LINE_SHAPE_KEEP)
        return am__fail(AMUSE_EINVAL, "line_shape: %d is not one of model, off, keep",
                        (int)r->line_shape);
    if (r->n_stop < 0 || r->n_stop > AMUSE_GENERATE_MAX_STOPS)
        return am__fail(AMUSE_EINVAL, "stop: %d strings, at most %d", r->n_stop,
                        AMUSE_GENERATE_MAX_STOPS);
    for (int i = 0; i < r->n_stop; i++) {
        size_t len = r->stop[i] ? strlen(r->stop[i]) : 0, bad;
        if (len == 0 || len > AMUSE_GENERATE_MAX_STOP_BYTES)
            return am__fail(AMUSE_EINVAL, "stop[%d]: %zu bytes, must be 1 to %d", i, len,
                            AMUSE_GENERATE_MAX_STOP_BYTES);
        if (!am__utf8_valid(r->stop[i], len, &bad))
            return am__fail(AMUSE_EINVAL, "stop[%d]: byte %zu: invalid UTF-8", i, bad);
    }
    if (!r->prompt || r->prompt_len == 0)
        return am__fail(AMUSE_EINVAL, "prompt: empty");
    return AMUSE_OK;
}

int amuse_generator_start(struct amuse_generator *g, int slot,
                          const struct amuse_generate_request *r)
{
    int rc = check_request(g, slot, r);
    if (rc)
        return rc;
    struct slot *s = &g->slots[slot];
    int max_tokens = r->max_tokens ? r->max_tokens : g->max_tokens;
    size_t prompt_cap =
        g->kind == AMUSE_GENERATOR_SEQ2SEQ ? (size_t)g->enc_len : AMUSE_GENERATE_MAX_PROMPT;
    size_t hist_cap = (size_t)s->history_cap;
    if ((rc = grow((void **)&s->history, &hist_cap, AMUSE_GENERATE_MAX_PROMPT + (size_t)max_tokens,
                   sizeof(int32_t))) ||
        (rc = grow((void **)&s->text, &s->text_cap, 4 * (size_t)max_tokens + 1, 1)))
        return rc;
    s->history_cap = (int64_t)hist_cap;
    size_t n_ids = 0, n_unknown = 0;
    rc = amuse_charvocab_encode(g->vocab, r->prompt, r->prompt_len, AMUSE_UNKNOWN_SKIP, s->history,
                                AMUSE_GENERATE_MAX_PROMPT, &n_ids, &n_unknown);
    if (rc)
        return am__fail_prefix(rc, "prompt");
    if (n_ids == 0)
        return am__fail(AMUSE_EINVAL, "prompt: none of its %zu characters is in the vocabulary",
                        n_unknown);
    if (n_ids > prompt_cap)
        return am__fail(AMUSE_ETOOBIG, "prompt: %zu characters, the model takes at most %zu", n_ids,
                        prompt_cap);
    if ((rc = amuse_sampler_new(&s->sampler, &r->sampling, g->vocab_size)))
        return rc;
    memset(s->state, 0, (size_t)g->state_size * sizeof(float));
    if (g->kind == AMUSE_GENERATOR_LM) {
        /* All prompt characters but the last are read by the next steps (prime_slots); the
         * last one is the first input of the batched step. */
        s->prime_pos = 0;
        s->prime_end = (int64_t)n_ids - 1;
        s->next_input = s->history[n_ids - 1];
        s->n_history = (int64_t)n_ids;
    } else {
        /* The source is encoded by the next step, with the other new sources (prime_slots);
         * its final states start the decoder layer, whose first input is <s>. */
        s->encode_pending = 1;
        s->next_input = AMUSE_CHAR_BOS;
        s->n_history = 0;
    }
    s->need_forward = 1;
    s->text_len = s->sent = 0;
    s->n_stop = r->n_stop;
    s->max_stop = 0;
    for (int i = 0; i < r->n_stop; i++) {
        snprintf(s->stop_buf[i], sizeof s->stop_buf[i], "%s", r->stop[i]);
        s->stops[i] = s->stop_buf[i];
        size_t len = strlen(r->stop[i]);
        s->max_stop = len > s->max_stop ? len : s->max_stop;
    }
    s->max_tokens = max_tokens;
    s->line_length = s->line_at = 0;
    int keep = r->line_shape == AMUSE_LINE_SHAPE_KEEP ||
               (r->line_shape == AMUSE_LINE_SHAPE_MODEL && g->line_shape);
    if (keep && g->has_marks) {
        prompt_line_shape(r->prompt, r->prompt_len, &s->line_length, &s->line_at);
        if (g->kind == AMUSE_GENERATOR_SEQ2SEQ)
            s->line_at = 0; /* the reply starts a half-line of its own */
    }
    s->usage.prompt_tokens = (int)n_ids;
    s->usage.prompt_unknown = (int)n_unknown;
    s->usage.completion_tokens = 0;
    s->active = 1;
    return AMUSE_OK;
}

int amuse_generator_active(const struct amuse_generator *g, int slot)
{
    return slot >= 0 && slot < g->n_slots && g->slots[slot].active;
}

int amuse_generator_active_count(const struct amuse_generator *g)
{
    int n = 0;
    for (int i = 0; i < g->n_slots; i++)
        n += g->slots[i].active;
    return n;
}

int amuse_generator_free_slot(const struct amuse_generator *g)
{
    for (int i = 0; i < g->n_slots; i++)
        if (!g->slots[i].active)
            return i;
    return -1;
}

void amuse_generator_cancel(struct amuse_generator *g, int slot)
{
    if (!amuse_generator_active(g, slot))
        return;
    slot_release(&g->slots[slot]);
    memset(g->slots[slot].state, 0, (size_t)g->state_size * sizeof(float));
}

struct amuse_generate_usage amuse_generator_usage(const struct amuse_generator *g, int slot)
{
    struct amuse_generate_usage none = {0, 0, 0};
    return slot >= 0 && slot < g->n_slots ? g->slots[slot].usage : none;
}

const float *amuse_generator_next_probs(struct amuse_generator *g, int slot)
{
    if (!amuse_generator_active(g, slot))
        return NULL;
    while (!ready(&g->slots[slot]))
        if (prime_slots(g))
            return NULL;
    int32_t one = slot;
    if (g->slots[slot].need_forward && forward_slots(g, &one, 1))
        return NULL;
    return g->slots[slot].probs;
}

/* Sample slot s's next token and say what to hand out. */
static int advance(struct amuse_generator *g, int index, struct amuse_generate_event *ev)
{
    struct slot *s = &g->slots[index];
    memcpy(g->scratch, s->probs, (size_t)g->vocab_size * sizeof(float));
    int32_t tok;
    const uint8_t *allowed = g->allowed;
    if (s->line_length)
        allowed = s->line_at == 0                ? g->at_start
                  : s->line_at < s->line_length ? g->inside
                                                : g->at_end;
    int rc = amuse_sampler_next_probs(s->sampler, g->scratch, s->history, s->n_history, allowed,
                                      &tok);
    if (rc)
        return rc;
    s->line_at = g->is_mark[tok] ? 0 : s->line_at + 1;
    s->history[s->n_history++] = tok;
    s->usage.completion_tokens++;
    size_t from = s->sent, old_len = s->text_len;
    enum amuse_finish finish = AMUSE_FINISH_NONE;
    size_t release = s->text_len;
    if (tok == AMUSE_CHAR_EOS) {
        finish = AMUSE_FINISH_STOP;
    } else {
        s->text_len += (size_t)amuse_charvocab_text(g->vocab, tok, s->text + s->text_len);
        release = s->text_len;
        if (s->n_stop) {
            /* A stop string ending in the new bytes starts at most max_stop - 1 bytes before. */
            size_t base = old_len + 1 > s->max_stop ? old_len + 1 - s->max_stop : 0, hold = 0;
            int64_t at =
                amuse_stop_find(s->text + base, s->text_len - base, s->stops, s->n_stop, &hold);
            if (at >= 0) {
                finish = AMUSE_FINISH_STOP;
                release = base + (size_t)at;
            } else {
                release = s->text_len - hold;
            }
        }
        if (!finish && s->usage.completion_tokens >= s->max_tokens) {
            finish = AMUSE_FINISH_LENGTH;
            release = s->text_len;
        }
    }
    if (release < from)
        release = from;
    ev->slot = index;
    ev->token = tok;
    ev->line_length = s->line_length;
    ev->text = s->text + from;
    ev->len = release - from;
    ev->finish = finish;
    ev->usage = s->usage;
    s->sent = release;
    if (finish) {
        amuse_generator_cancel(g, index);
    } else {
        s->next_input = tok;
        s->need_forward = 1;
    }
    return AMUSE_OK;
}

int amuse_generator_step(struct amuse_generator *g, struct amuse_generate_event *events, int cap,
                         int *n_events)
{
    *n_events = 0;
    int active = amuse_generator_active_count(g);
    if (active == 0)
        return AMUSE_OK;
    if (!events || cap < active)
        return am__fail(AMUSE_EINVAL, "events: room for %d, %d slots are active", cap, active);
    int rc = prime_slots(g);
    if (rc)
        return rc;
    int n = 0;
    for (int i = 0; i < g->n_slots; i++)
        if (ready(&g->slots[i]) && g->slots[i].need_forward)
            g->rows[n++] = i;
    if (n && (rc = forward_slots(g, g->rows, n)))
        return rc;
    for (int i = 0; i < g->n_slots; i++) {
        if (!ready(&g->slots[i]))
            continue;
        if ((rc = advance(g, i, &events[*n_events])))
            return rc;
        (*n_events)++;
    }
    return AMUSE_OK;
}
