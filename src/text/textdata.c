/* text/textdata.c - character datasets from UTF-8 files and text recipes (amuse/textdata.h).
 *
 * Files are read whole and validated once; windows and pairs are cut from id streams made by the
 * character vocabulary's encoder. A text recipe's model config is edited (input lengths,
 * vocabulary-sized axes) before the model is built, so the graph always matches its data.
 * Does not tokenize words, shuffle (fit does), or stream files larger than memory.
 */
#include "amuse/textdata.h"

#include "amuse/model.h"
#include "core/internal.h"
#include "nn/layer.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

int amuse_text_read(const char *path, char **text, size_t *len)
{
    int rc = am__read_file(path, AMUSE_TEXT_MAX_BYTES, text, len);
    if (rc)
        return rc;
    const char *nul = memchr(*text, 0, *len);
    size_t bad = 0;
    if (nul)
        rc = am__fail(AMUSE_EFORMAT, "%s: byte %zu: NUL byte (not a text file)", path,
                      (size_t)(nul - *text));
    else if (!am__utf8_valid(*text, *len, &bad))
        rc = am__fail(AMUSE_EFORMAT, "%s: byte %zu: invalid UTF-8", path, bad);
    if (rc) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return rc;
}

/* ---- arrays ------------------------------------------------------------------------------- */

static int alloc_seq(struct amuse_array *a, int onehot, int64_t T, int64_t V, int64_t n)
{
    int64_t dims[2] = {T, V};
    struct amuse_shape s;
    amuse_shape_make(&s, onehot ? 2 : 1, dims);
    if (n * amuse_shape_size(&s) > AMUSE_TEXT_MAX_ELEMENTS)
        return am__fail(AMUSE_ETOOBIG, "%lld samples of %lld values are over the cap of %lld",
                        (long long)n, (long long)amuse_shape_size(&s),
                        (long long)AMUSE_TEXT_MAX_ELEMENTS);
    return amuse_array_alloc(a, NULL, onehot ? AMUSE_FLOAT32 : AMUSE_INT32, &s, n);
}

/* Step t of sample i of a (T) or (T, V) array. */
static void put(struct amuse_array *a, int64_t i, int64_t t, int32_t id)
{
    if (a->dtype == AMUSE_INT32) {
        a->i32[i * a->shape.dim[0] + t] = id;
    } else {
        int64_t V = a->shape.dim[1];
        a->f32[(i * a->shape.dim[0] + t) * V + id] = 1.0f;
    }
}

/* ---- language model ----------------------------------------------------------------------- */

int amuse_text_lm_dataset(struct amuse_dataset *d, const struct amuse_charvocab *v,
                          const char *text, size_t len, const char *source, int T, int stride,
                          const struct amuse_text_layout *layout)
{
    memset(d, 0, sizeof *d);
    if (T < 1 || T > AMUSE_TEXT_MAX_SEQ || stride < 1 || stride > T)
        return am__fail(AMUSE_EINVAL, "%s: seq_length %d must be 1 to %d, stride 1 to it", source,
                        T, AMUSE_TEXT_MAX_SEQ);
    int32_t *ids = malloc((len + 1) * sizeof(int32_t));
    if (!ids)
        return am__fail(AMUSE_ENOMEM, "%s: out of memory", source);
    size_t n_ids = 0;
    int rc = amuse_charvocab_encode(v, text, len, AMUSE_UNKNOWN_AS_UNK, ids, len + 1, &n_ids, NULL);
    if (rc) {
        free(ids);
        return am__fail_prefix(rc, "%s", source);
    }
    if (n_ids < (size_t)T + 1) {
        free(ids);
        return am__fail(AMUSE_EINVAL, "%s: %zu characters, too short for one window of %d + 1",
                        source, n_ids, T);
    }
    int64_t n = (int64_t)(n_ids - 1 - (size_t)T) / stride + 1;
    int64_t V = amuse_charvocab_size(v);
    if ((rc = alloc_seq(&d->input[0], layout->onehot[0], T, V, n)) ||
        (rc = alloc_seq(&d->target, !layout->sparse_targets, T, V, n)))
        goto fail;
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < T; t++) {
            put(&d->input[0], i, t, ids[i * stride + t]);
            put(&d->target, i, t, ids[i * stride + t + 1]);
        }
    d->n = n;
    d->n_inputs = 1;
    d->n_classes = (int)V;
    free(ids);
    return AMUSE_OK;
fail:
    free(ids);
    amuse_dataset_release(d);
    return am__fail_prefix(rc, "%s", source);
}

/* ---- pairs -------------------------------------------------------------------------------- */

/* The next non-blank line: [*a, *b) source, [*c, *e) target. Returns 1, 0 at the end, or an
 * error for a line without exactly one TAB. */
static int next_pair(const char *text, size_t len, size_t *pos, int64_t *line, const char *source,
                     const char **a, const char **b, const char **c, const char **e)
{
    while (*pos < len) {
        const char *s = text + *pos;
        const char *nl = memchr(s, '\n', len - *pos);
        size_t n = nl ? (size_t)(nl - s) : len - *pos;
        size_t at = *pos;
        *pos += n + (nl ? 1 : 0);
        (*line)++;
        if (n && s[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        const char *tab = memchr(s, '\t', n);
        if (!tab || memchr(tab + 1, '\t', n - (size_t)(tab + 1 - s)))
            return am__fail(AMUSE_EFORMAT,
                            "%s: line %lld (byte %zu): expected one TAB between source and "
                            "target, found %s",
                            source, (long long)*line, at, tab ? "more" : "none");
        *a = s;
        *b = tab;
        *c = tab + 1;
        *e = s + n;
        return 1;
    }
    return 0;
}

static int count_chars(const char *s, const char *e)
{
    int n = 0;
    for (; s < e; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int amuse_text_pairs_lengths(const char *text, size_t len, const char *source, int *source_max,
                             int *target_max)
{
    size_t pos = 0;
    int64_t line = 0;
    const char *a, *b, *c, *e;
    int rc;
    *source_max = *target_max = 0;
    while ((rc = next_pair(text, len, &pos, &line, source, &a, &b, &c, &e)) == 1) {
        int ns = count_chars(a, b), nt = count_chars(c, e);
        *source_max = ns > *source_max ? ns : *source_max;
        *target_max = nt > *target_max ? nt : *target_max;
    }
    return rc;
}

int amuse_text_pairs_dataset(struct amuse_dataset *d, const struct amuse_charvocab *v,
                             const char *text, size_t len, const char *source, int source_len,
                             int target_len, int64_t max_pairs,
                             const struct amuse_text_layout *layout, int64_t *skipped)
{
    memset(d, 0, sizeof *d);
    if (skipped)
        *skipped = 0;
    if (source_len < 1 || source_len > AMUSE_TEXT_MAX_SEQ || target_len < 2 ||
        target_len > AMUSE_TEXT_MAX_SEQ)
        return am__fail(AMUSE_EINVAL,
                        "%s: source_length %d must be 1 to %d, target_length %d 2 to %d", source,
                        source_len, AMUSE_TEXT_MAX_SEQ, target_len, AMUSE_TEXT_MAX_SEQ);
    size_t bad;
    if (!am__utf8_valid(text, len, &bad))
        return am__fail(AMUSE_EFORMAT, "%s: byte %zu: invalid UTF-8", source, bad);
    /* Count the pairs that fit, then fill. */
    size_t pos = 0;
    int64_t line = 0, n = 0, skip = 0;
    const char *a, *b, *c, *e;
    int rc;
    while ((rc = next_pair(text, len, &pos, &line, source, &a, &b, &c, &e)) == 1) {
        if (count_chars(a, b) > source_len || count_chars(c, e) + 1 > target_len)
            skip++;
        else if (!max_pairs || n < max_pairs)
            n++;
    }
    if (rc < 0)
        return rc;
    if (n == 0)
        return am__fail(AMUSE_EINVAL, "%s: no pair fits source_length %d and target_length %d",
                        source, source_len, target_len);
    int64_t V = amuse_charvocab_size(v);
    if ((rc = alloc_seq(&d->input[0], layout->onehot[0], source_len, V, n)) ||
        (rc = alloc_seq(&d->input[1], layout->onehot[1], target_len, V, n)) ||
        (rc = alloc_seq(&d->target, !layout->sparse_targets, target_len, V, n)))
        goto fail;
    d->weight = am__calloc_aligned((size_t)(n * target_len), sizeof(float));
    int32_t *ids = malloc((size_t)AMUSE_TEXT_MAX_SEQ * 4 * sizeof(int32_t));
    if (!d->weight || !ids) {
        free(ids);
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto fail;
    }
    pos = 0;
    line = 0;
    int64_t i = 0;
    while (i < n && next_pair(text, len, &pos, &line, source, &a, &b, &c, &e) == 1) {
        size_t ns, nt;
        if (count_chars(a, b) > source_len || count_chars(c, e) + 1 > target_len)
            continue;
        amuse_charvocab_encode(v, a, (size_t)(b - a), AMUSE_UNKNOWN_AS_UNK, ids, AMUSE_TEXT_MAX_SEQ,
                               &ns, NULL);
        for (int64_t t = 0; t < source_len; t++)
            put(&d->input[0], i, t, t < (int64_t)ns ? ids[t] : AMUSE_CHAR_PAD);
        amuse_charvocab_encode(v, c, (size_t)(e - c), AMUSE_UNKNOWN_AS_UNK, ids, AMUSE_TEXT_MAX_SEQ,
                               &nt, NULL);
        for (int64_t t = 0; t < target_len; t++) {
            int32_t in = t == 0 ? AMUSE_CHAR_BOS : t <= (int64_t)nt ? ids[t - 1] : AMUSE_CHAR_PAD;
            int32_t out = t < (int64_t)nt    ? ids[t]
                          : t == (int64_t)nt ? AMUSE_CHAR_EOS
                                             : AMUSE_CHAR_PAD;
            put(&d->input[1], i, t, in);
            put(&d->target, i, t, out);
            d->weight[i * target_len + t] = t <= (int64_t)nt ? 1.0f : 0.0f;
        }
        i++;
    }
    free(ids);
    d->n = n;
    d->n_inputs = 2;
    d->n_classes = (int)V;
    if (skipped)
        *skipped = skip;
    return AMUSE_OK;
fail:
    amuse_dataset_release(d);
    return am__fail_prefix(rc, "%s", source);
}

/* ---- text recipes ------------------------------------------------------------------------- */

static int data_int(const cJSON *data, const char *key, int lo, int hi, int fallback, int *out,
                    const char *where)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(data, key);
    if (!j) {
        *out = fallback;
        return AMUSE_OK;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble < lo || j->valuedouble > hi ||
        j->valuedouble != (double)(int)j->valuedouble)
        return am__fail(AMUSE_EFORMAT, "%s: data.%s must be an integer from %d to %d", where, key,
                        lo, hi);
    *out = (int)j->valuedouble;
    return AMUSE_OK;
}

static void set_number(cJSON *obj, const char *key, double value)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    cJSON_AddNumberToObject(obj, key, value);
}

/* Set input k's shape: [null, T] ids or [null, T, V] one-hot (a float input). */
static void set_input_shape(cJSON *spec, int T, int V, int *onehot)
{
    cJSON *cfg = cJSON_GetObjectItemCaseSensitive(spec, "config");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(cfg, "dtype");
    *onehot = !(cJSON_IsString(dtype) && strcmp(dtype->valuestring, "int32") == 0);
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "shape");
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "input_shape");
    cJSON *s = cJSON_CreateArray();
    cJSON_AddItemToArray(s, cJSON_CreateNull());
    cJSON_AddItemToArray(s, cJSON_CreateNumber(T));
    if (*onehot)
        cJSON_AddItemToArray(s, cJSON_CreateNumber(V));
    cJSON_DeleteItemFromObjectCaseSensitive(cfg, "batch_input_shape");
    cJSON_AddItemToObject(cfg, "batch_input_shape", s);
}

static cJSON *layer_named(cJSON *layers, const char *name)
{
    cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(spec, "name");
        if (!cJSON_IsString(n))
            n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(spec, "config"),
                                                 "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return spec;
    }
    return NULL;
}

/* Edit the model config for the data: input lengths, one-hot widths, Embedding input_dim and
 * the output layer's units. lengths[k]: T of input k (in input_layers order). */
static int fit_config(cJSON *doc, const int *lengths, int n_inputs, int V,
                      struct amuse_text_layout *layout, const char *where)
{
    cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    cJSON *mcfg = cJSON_GetObjectItemCaseSensitive(model, "config");
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(mcfg, "layers");
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(model, "class_name");
    if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 2 || !cJSON_IsString(cls))
        return am__fail(AMUSE_EFORMAT, "%s: a text recipe needs model.config.layers", where);
    cJSON *out_spec = NULL;
    if (strcmp(cls->valuestring, "Sequential") == 0) {
        if (n_inputs != 1)
            return am__fail(AMUSE_EFORMAT, "%s: task 'pairs' needs a Functional model", where);
        set_input_shape(cJSON_GetArrayItem(layers, 0), lengths[0], V, &layout->onehot[0]);
        out_spec = cJSON_GetArrayItem(layers, cJSON_GetArraySize(layers) - 1);
    } else {
        cJSON *ins = cJSON_GetObjectItemCaseSensitive(mcfg, "input_layers");
        cJSON *outs = cJSON_GetObjectItemCaseSensitive(mcfg, "output_layers");
        if (cJSON_GetArraySize(ins) != n_inputs)
            return am__fail(AMUSE_EFORMAT, "%s: the task needs a model with %d input(s)", where,
                            n_inputs);
        for (int k = 0; k < n_inputs; k++) {
            const cJSON *name = cJSON_GetArrayItem(cJSON_GetArrayItem(ins, k), 0);
            cJSON *spec = cJSON_IsString(name) ? layer_named(layers, name->valuestring) : NULL;
            if (!spec)
                return am__fail(AMUSE_EFORMAT, "%s: input_layers[%d] names no layer", where, k);
            set_input_shape(spec, lengths[k], V, &layout->onehot[k]);
        }
        const cJSON *name = cJSON_GetArrayItem(cJSON_GetArrayItem(outs, 0), 0);
        out_spec = cJSON_IsString(name) ? layer_named(layers, name->valuestring) : NULL;
    }
    cJSON *ocfg = cJSON_GetObjectItemCaseSensitive(out_spec, "config");
    if (!cJSON_GetObjectItemCaseSensitive(ocfg, "units"))
        return am__fail(AMUSE_EFORMAT, "%s: the output layer must be a Dense with 'units'", where);
    set_number(ocfg, "units", V);
    cJSON *spec;
    cJSON_ArrayForEach(spec, layers)
    {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(spec, "class_name");
        const struct am__layer_type *t =
            cJSON_IsString(c) ? am__layer_type_find(c->valuestring) : NULL;
        if (t && (t->flags & AM__LAYER_TAKES_IDS))
            set_number(cJSON_GetObjectItemCaseSensitive(spec, "config"), "input_dim", V);
    }
    const cJSON *loss =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "compile"), "loss");
    layout->sparse_targets =
        !(cJSON_IsString(loss) && strcmp(loss->valuestring, "categorical_crossentropy") == 0);
    return AMUSE_OK;
}

int amuse_text_recipe_load(struct amuse_model **out, struct amuse_dataset *d,
                           const char *recipe_path, int64_t limit)
{
    *out = NULL;
    memset(d, 0, sizeof *d);
    char *json = NULL, *text = NULL, *vjson = NULL, *patched = NULL;
    size_t json_len, len;
    struct amuse_charvocab *v = NULL;
    cJSON *doc = NULL;
    int rc = am__read_file(recipe_path, (size_t)1 << 20, &json, &json_len);
    if (rc)
        return rc;
    doc = cJSON_ParseWithLength(json, json_len);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(data, "text");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(data, "task");
    if (!doc) {
        rc = am__fail(AMUSE_EFORMAT, "%s: not valid JSON", recipe_path);
        goto out;
    }
    if (!cJSON_IsString(path)) {
        rc = am__fail(AMUSE_ENOTFOUND, "%s: no data.text", recipe_path);
        goto out;
    }
    int is_lm = cJSON_IsString(task) && strcmp(task->valuestring, "lm") == 0;
    int is_pairs = cJSON_IsString(task) && strcmp(task->valuestring, "pairs") == 0;
    if (!is_lm && !is_pairs) {
        rc = am__fail(AMUSE_EFORMAT, "%s: data.task must be \"lm\" or \"pairs\"", recipe_path);
        goto out;
    }
    int T = 0, stride = 0, min_count = 0, max_size = 0, src_len = 0, tgt_len = 0, max_pairs = 0;
    if ((rc = data_int(data, "seq_length", 1, AMUSE_TEXT_MAX_SEQ, 64, &T, recipe_path)) ||
        (rc = data_int(data, "stride", 1, AMUSE_TEXT_MAX_SEQ, T, &stride, recipe_path)) ||
        (rc = data_int(data, "min_count", 1, 1 << 30, 1, &min_count, recipe_path)) ||
        (rc = data_int(data, "max_size", 0, AMUSE_CHARVOCAB_MAX_TOKENS, 0, &max_size,
                       recipe_path)) ||
        (rc = data_int(data, "source_length", 0, AMUSE_TEXT_MAX_SEQ, 0, &src_len, recipe_path)) ||
        (rc = data_int(data, "target_length", 0, AMUSE_TEXT_MAX_SEQ, 0, &tgt_len, recipe_path)) ||
        (rc = data_int(data, "max_pairs", 0, 1 << 30, 0, &max_pairs, recipe_path)))
        goto out;
    if ((rc = amuse_text_read(path->valuestring, &text, &len)))
        goto out;
    const char *t0 = text;
    if ((rc = amuse_charvocab_build(&v, &t0, &len, 1, min_count, max_size, path->valuestring)))
        goto out;
    int V = amuse_charvocab_size(v);
    struct amuse_text_layout layout = {{0, 0}, 1};
    if (is_lm) {
        int lengths[1] = {T};
        if ((rc = fit_config(doc, lengths, 1, V, &layout, recipe_path)))
            goto out;
    } else {
        int smax, tmax;
        if ((rc = amuse_text_pairs_lengths(text, len, path->valuestring, &smax, &tmax)))
            goto out;
        if (!src_len)
            src_len = smax < AMUSE_TEXT_MAX_SEQ ? smax : AMUSE_TEXT_MAX_SEQ;
        if (!tgt_len)
            tgt_len = tmax + 1 < AMUSE_TEXT_MAX_SEQ ? tmax + 1 : AMUSE_TEXT_MAX_SEQ;
        int lengths[2] = {src_len, tgt_len};
        if ((rc = fit_config(doc, lengths, 2, V, &layout, recipe_path)))
            goto out;
    }
    if ((rc = amuse_charvocab_to_json(v, &vjson)))
        goto out;
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "vocabulary");
    patched = cJSON_PrintUnformatted(doc);
    if (!patched) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = amuse_model_from_json(out, patched, strlen(patched), recipe_path)) ||
        (rc = amuse_model_config_set(*out, "vocabulary", vjson)))
        goto out;
    if (is_lm)
        rc = amuse_text_lm_dataset(d, v, text, len, path->valuestring, T, stride, &layout);
    else
        rc = amuse_text_pairs_dataset(d, v, text, len, path->valuestring, src_len, tgt_len,
                                      max_pairs, &layout, NULL);
    if (!rc && limit > 0 && limit < d->n)
        rc = amuse_dataset_slice(d, d, 0, limit);
out:
    if (rc) {
        amuse_model_free(*out);
        *out = NULL;
        amuse_dataset_release(d);
    }
    free(json);
    free(text);
    free(vjson);
    free(patched);
    cJSON_Delete(doc);
    amuse_charvocab_free(v);
    return rc;
}
