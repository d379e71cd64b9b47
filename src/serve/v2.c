/* v2.c - the KServe V2 inference protocol's JSON: decoding a request into a job (tensors the
 * model can take) and encoding the reply and the model metadata. Every error names the field at
 * fault ("inputs[0].shape [1,28,28,1] needs 784 values, data has 783") and is a client error.
 *
 * Network models take one input, "input": FP32 with shape [batch, <the model's input shape>]
 * (or [batch, input size]), data flat or nested in row-major order; image models also take BYTES
 * of shape [batch], each element a base64-encoded PNG/JPEG/BMP/GIF (KServe's JSON carries BYTES
 * as strings). Outputs: "probabilities" FP32 [batch, classes], and "label" BYTES [batch] (the
 * top class) when asked for. Word vectors take BYTES "words" [n] and give FP32 "vectors" [n, dim].
 * Images are only base64-decoded and size-checked here; decode.c decodes them on its pool.
 * The binary tensor extension (KServe/Triton): with an Inference-Header-Content-Length header the
 * body is that many bytes of JSON, then the tensors' bytes in input order; an input with
 * "parameters": {"binary_data_size": n} takes its n bytes from there instead of "data" (FP32:
 * little-endian floats, row-major; BYTES: each element a 4-byte little-endian length and its
 * bytes - raw image bytes, not base64). The sizes must add up to exactly the bytes after the JSON.
 * Replies stay JSON.
 * Not here: binary outputs, the other V2 datatypes, per-request parameters. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/image.h"
#include "amuse/model.h"
#include "amuse/word2vec.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS_PER_REQUEST 1024
#define MAX_DIM_VALUE ((int64_t)1 << 31)

/* "[1,28,28,1]" for messages */
const char *am__v2_shape_text(const int64_t *shape, int ndim, char *buf, size_t size)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < ndim && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%lld", i ? "," : "",
                                (long long)shape[i]);
    if (off < size)
        snprintf(buf + off, size - off, "]");
    return buf;
}

void am__v2_request_release(struct am__v2_request *req)
{
    cJSON_Delete(req->doc);
    memset(req, 0, sizeof *req);
}

static int parse_tensor(const cJSON *t, int index, struct am__v2_tensor *out,
                        const unsigned char *binary, size_t binary_len, size_t *binary_used)
{
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(t))
        return am__fail(AMUSE_EFORMAT, "inputs[%d] must be an object", index);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "datatype");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    if (!cJSON_IsString(name))
        return am__fail(AMUSE_EFORMAT, "inputs[%d].name must be a string", index);
    out->name = name->valuestring;
    if (!cJSON_IsArray(shape))
        return am__fail(AMUSE_EFORMAT, "inputs[%d].shape must be an array of integers", index);
    int nd = cJSON_GetArraySize(shape);
    if (nd < 1 || nd > AM__V2_MAX_DIMS)
        return am__fail(AMUSE_EFORMAT, "inputs[%d].shape has %d dimensions; 1 to %d allowed",
                        index, nd, AM__V2_MAX_DIMS);
    int k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
    {
        double v = cJSON_IsNumber(d) ? d->valuedouble : -1;
        if (!cJSON_IsNumber(d) || v < 0 || v > (double)MAX_DIM_VALUE || v != (double)(int64_t)v)
            return am__fail(AMUSE_EFORMAT,
                            "inputs[%d].shape[%d] must be an integer between 0 and 2^31", index,
                            k);
        out->shape[k++] = (int64_t)v;
    }
    out->ndim = nd;
    if (!cJSON_IsString(dt))
        return am__fail(AMUSE_EFORMAT, "inputs[%d].datatype must be a string such as \"FP32\"",
                        index);
    if (strcmp(dt->valuestring, "FP32") == 0)
        out->datatype = AM__DT_FP32;
    else if (strcmp(dt->valuestring, "BYTES") == 0)
        out->datatype = AM__DT_BYTES;
    else
        return am__fail(AMUSE_EFORMAT,
                        "inputs[%d].datatype '%.32s' is not supported; use FP32 or BYTES", index,
                        dt->valuestring);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "parameters");
    const cJSON *bsize = cJSON_IsObject(params)
                             ? cJSON_GetObjectItemCaseSensitive(params, "binary_data_size")
                             : NULL;
    if (bsize) {
        double v = cJSON_IsNumber(bsize) ? bsize->valuedouble : -1;
        if (!binary)
            return am__fail(AMUSE_EFORMAT, "inputs[%d].parameters.binary_data_size needs the "
                                           "Inference-Header-Content-Length header",
                            index);
        if (!(v >= 0 && v <= (double)(binary_len - *binary_used)) || v != (double)(size_t)v)
            return am__fail(AMUSE_EFORMAT,
                            "inputs[%d].parameters.binary_data_size must be a whole number of "
                            "bytes within the %zu binary bytes left",
                            index, binary_len - *binary_used);
        if (data)
            return am__fail(AMUSE_EFORMAT, "inputs[%d] has both data and binary_data_size",
                            index);
        out->binary = binary + *binary_used;
        out->binary_len = (size_t)v;
        *binary_used += (size_t)v;
        return AMUSE_OK;
    }
    if (!cJSON_IsArray(data))
        return am__fail(AMUSE_EFORMAT, "inputs[%d].data must be an array", index);
    out->data = (cJSON *)data;
    return AMUSE_OK;
}

int am__v2_parse(const char *body, size_t len, int max_depth, struct am__v2_request *req)
{
    return am__v2_parse_binary(body, len, -1, max_depth, req);
}

int am__v2_parse_binary(const char *body, size_t len, long long header_len, int max_depth,
                        struct am__v2_request *req)
{
    memset(req, 0, sizeof *req);
    size_t json_len = len;
    const unsigned char *binary = NULL; /* the extension's tensor bytes, when in use */
    if (header_len >= 0) {
        if ((unsigned long long)header_len > len)
            return am__fail(AMUSE_EFORMAT, "Inference-Header-Content-Length %lld is more than "
                                           "the %zu-byte body",
                            header_len, len);
        json_len = (size_t)header_len;
        binary = (const unsigned char *)body + json_len;
    }
    size_t binary_len = len - json_len, binary_used = 0;
    /* One JSON body parser for every route: empty, too deep, truncated, not an object. */
    int rc = am__json_parse_object(body, json_len, max_depth, &req->doc);
    if (rc)
        return rc;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req->doc, "id");
    if (id && !cJSON_IsString(id))
        return am__fail(AMUSE_EFORMAT, "id must be a string");
    req->id = id ? id->valuestring : NULL;
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(req->doc, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) < 1)
        return am__fail(AMUSE_EFORMAT, "inputs must be a non-empty array");
    if (cJSON_GetArraySize(inputs) > AM__V2_MAX_TENSORS)
        return am__fail(AMUSE_EFORMAT, "inputs has %d tensors; at most %d", 
                        cJSON_GetArraySize(inputs), AM__V2_MAX_TENSORS);
    const cJSON *t;
    cJSON_ArrayForEach(t, inputs)
    {
        rc = parse_tensor(t, req->n_inputs, &req->inputs[req->n_inputs],
                          binary, binary_len, &binary_used);
        if (rc)
            return rc;
        req->n_inputs++;
    }
    if (binary_used != binary_len)
        return am__fail(AMUSE_EFORMAT, "the inputs' binary_data_size add up to %zu bytes; %zu "
                                       "follow the JSON header",
                        binary_used, binary_len);
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(req->doc, "outputs");
    if (outputs) {
        if (!cJSON_IsArray(outputs) || cJSON_GetArraySize(outputs) > AM__V2_MAX_TENSORS)
            return am__fail(AMUSE_EFORMAT, "outputs must be an array of at most %d objects",
                            AM__V2_MAX_TENSORS);
        const cJSON *o;
        cJSON_ArrayForEach(o, outputs)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
            if (!cJSON_IsString(name))
                return am__fail(AMUSE_EFORMAT, "outputs[%d].name must be a string",
                                req->n_outputs);
            req->outputs[req->n_outputs++] = name->valuestring;
        }
    }
    return AMUSE_OK;
}

/* ------------------------------------------------------------------ requests into jobs */

/* Count the numbers in a (possibly nested) data array; -1 and a message at a non-number. */
static int64_t flat_count(const cJSON *a, int index, int64_t *seen)
{
    int64_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (cJSON_IsArray(e)) {
            int64_t k = flat_count(e, index, seen);
            if (k < 0)
                return -1;
            n += k;
        } else if (cJSON_IsNumber(e)) {
            if (!(fabs(e->valuedouble) <= FLT_MAX)) {
                am__fail(AMUSE_EFORMAT, "inputs[%d].data[%lld] = %g is outside the FP32 range",
                         index, (long long)*seen, e->valuedouble);
                return -1;
            }
            n++;
            (*seen)++;
        } else {
            am__fail(AMUSE_EFORMAT, "inputs[%d].data[%lld] is not a number", index,
                     (long long)*seen);
            return -1;
        }
    }
    return n;
}

static void flat_fill(const cJSON *a, float *out, int64_t *k)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (cJSON_IsArray(e))
            flat_fill(e, out, k);
        else
            out[(*k)++] = (float)e->valuedouble;
    }
}

/* The n elements of a BYTES tensor: pointers to their bytes (into the request; not copied) and
 * their lengths. JSON: strings; binary: 4-byte little-endian lengths, each then its bytes, which
 * must use up the tensor's bytes exactly. Messages name the element. */
static int bytes_elements(const struct am__v2_tensor *t, int64_t n, const unsigned char **p,
                          size_t *len)
{
    char got[160];
    if (t->binary) {
        size_t at = 0;
        for (int64_t i = 0; i < n; i++) {
            if (t->binary_len - at < 4)
                return am__fail(AMUSE_ESHAPE, "inputs[0] binary data ends before element %lld's "
                                              "length (shape %s)",
                                (long long)i, am__v2_shape_text(t->shape, t->ndim, got, sizeof got));
            const unsigned char *b = t->binary + at;
            size_t k = (size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16 | (size_t)b[3] << 24;
            at += 4;
            if (k > t->binary_len - at)
                return am__fail(AMUSE_EFORMAT, "inputs[0] binary element %lld says %zu bytes; "
                                               "%zu are left",
                                (long long)i, k, t->binary_len - at);
            p[i] = t->binary + at;
            len[i] = k;
            at += k;
        }
        if (at != t->binary_len)
            return am__fail(AMUSE_ESHAPE, "inputs[0] binary data has %zu bytes after its %lld "
                                          "elements",
                            t->binary_len - at, (long long)n);
        return AMUSE_OK;
    }
    if (cJSON_GetArraySize(t->data) != n)
        return am__fail(AMUSE_ESHAPE, "inputs[0].shape %s needs %lld elements, data has %d",
                        am__v2_shape_text(t->shape, t->ndim, got, sizeof got), (long long)n,
                        cJSON_GetArraySize(t->data));
    int64_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, t->data)
    {
        if (!cJSON_IsString(e))
            return am__fail(AMUSE_EFORMAT, "inputs[0].data[%lld] must be a string", (long long)i);
        p[i] = (const unsigned char *)e->valuestring;
        len[i] = strlen(e->valuestring);
        i++;
    }
    return AMUSE_OK;
}

int am__v2_input_fp32(const struct am__model *m, const struct am__v2_tensor *t, struct am__job *j)
{
    char got[160], want[160];
    int64_t want_shape[AM__V2_MAX_DIMS + 1];
    want_shape[0] = -1;
    for (int i = 0; i < m->input_shape.ndim; i++)
        want_shape[i + 1] = m->input_shape.dim[i];
    int match = t->ndim == m->input_shape.ndim + 1;
    for (int i = 0; match && i < m->input_shape.ndim; i++)
        match = t->shape[i + 1] == m->input_shape.dim[i];
    int flat = t->ndim == 2 && t->shape[1] == m->input_size;
    if (!match && !flat)
        return am__fail(AMUSE_ESHAPE,
                        "inputs[0].shape %s does not match model '%s': expected %s (or [-1,%lld])",
                        am__v2_shape_text(t->shape, t->ndim, got, sizeof got), m->name,
                        am__v2_shape_text(want_shape, m->input_shape.ndim + 1, want, sizeof want),
                        (long long)m->input_size);
    int64_t batch = t->shape[0];
    if (batch < 1 || batch > m->max_batch_size)
        return am__fail(AMUSE_ETOOBIG, "inputs[0].shape: batch %lld is outside 1..%d "
                                       "(max_batch_size)",
                        (long long)batch, m->max_batch_size);
    j->samples = batch;
    return am__v2_fp32_values(t, batch * m->input_size, &j->input);
}

int am__v2_fp32_values(const struct am__v2_tensor *t, int64_t count, float **out)
{
    char got[160];
    *out = NULL;
    if (t->binary) { /* little-endian floats, as many as the shape says */
        if (t->binary_len != (size_t)count * 4)
            return am__fail(AMUSE_ESHAPE, "inputs[0].shape %s needs %lld FP32 values (%lld "
                                          "bytes); binary_data_size is %zu",
                            am__v2_shape_text(t->shape, t->ndim, got, sizeof got),
                            (long long)count, (long long)count * 4, t->binary_len);
        float *v = malloc((size_t)count * sizeof(float));
        if (!v)
            return am__fail(AMUSE_ENOMEM, "out of memory");
        for (int64_t k = 0; k < count; k++) {
            const unsigned char *b = t->binary + k * 4;
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
            memcpy(&v[k], &u, sizeof v[k]);
            if (!isfinite(v[k])) {
                free(v);
                return am__fail(AMUSE_EFORMAT, "inputs[0] binary value %lld is not finite",
                                (long long)k);
            }
        }
        *out = v;
        return AMUSE_OK;
    }
    int64_t seen = 0, n = flat_count(t->data, 0, &seen);
    if (n < 0)
        return AMUSE_EFORMAT;
    if (n != count)
        return am__fail(AMUSE_ESHAPE, "inputs[0].shape %s needs %lld values, data has %lld",
                        am__v2_shape_text(t->shape, t->ndim, got, sizeof got), (long long)count,
                        (long long)n);
    float *v = malloc((size_t)n * sizeof(float));
    if (!v)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int64_t k = 0;
    flat_fill(t->data, v, &k);
    *out = v;
    return AMUSE_OK;
}

/* Base64-decode the images and make the job that decodes them (decode.c): the header checks and
 * pixel budgets happen here, the pixels later on the decode pool. */
int am__v2_input_images(const struct amuse_server *s, const struct am__model *m,
                        const struct am__v2_tensor *t, struct am__job *j)
{
    char got[160];
    if (!m->image)
        return am__fail(AMUSE_EFORMAT, "inputs[0].datatype BYTES: model '%s' is not an image "
                                       "model; send FP32",
                        m->name);
    if (!(t->ndim == 1 || (t->ndim == 2 && t->shape[1] == 1)))
        return am__fail(AMUSE_ESHAPE, "inputs[0].shape %s: BYTES images need shape [batch]",
                        am__v2_shape_text(t->shape, t->ndim, got, sizeof got));
    int64_t batch = t->shape[0];
    if (batch < 1 || batch > m->max_batch_size)
        return am__fail(AMUSE_ETOOBIG, "inputs[0].shape: batch %lld is outside 1..%d "
                                       "(max_batch_size)",
                        (long long)batch, m->max_batch_size);
    const unsigned char **images = calloc((size_t)batch, sizeof *images);
    size_t *lens = calloc((size_t)batch, sizeof *lens);
    unsigned char **decoded = NULL;
    int rc = AMUSE_OK;
    if (!images || !lens) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = am__v2_bytes(t, batch, images, lens, &decoded)) != AMUSE_OK)
        goto out;
    j->samples = batch;
    rc = am__decode_job_new(s, m, images, lens, (int)batch, "inputs[0].data", &j->decode);
out:
    am__v2_bytes_free(decoded, batch);
    free(images);
    free(lens);
    return rc;
}

int am__v2_bytes(const struct am__v2_tensor *t, int64_t n, const unsigned char **p, size_t *len,
                 unsigned char ***decoded)
{
    *decoded = NULL;
    int rc = bytes_elements(t, n, p, len);
    if (rc || t->binary)
        return rc;
    /* JSON carries BYTES as base64 */
    unsigned char **d = calloc((size_t)n, sizeof *d);
    if (!d)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    *decoded = d;
    for (int64_t i = 0; i < n; i++) {
        size_t b64 = len[i];
        if (!(d[i] = malloc(b64 / 4 * 3 + 3)))
            return am__fail(AMUSE_ENOMEM, "out of memory");
        if (sodium_base642bin(d[i], b64 / 4 * 3 + 3, (const char *)p[i], b64, " \t\r\n",
                              &len[i], NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
            return am__fail(AMUSE_EFORMAT, "inputs[0].data[%lld] is not valid base64",
                            (long long)i);
        p[i] = d[i];
    }
    return AMUSE_OK;
}

void am__v2_bytes_free(unsigned char **decoded, int64_t n)
{
    for (int64_t k = 0; decoded && k < n; k++)
        free(decoded[k]);
    free(decoded);
}

int am__v2_input_words(const struct am__model *m, const struct am__v2_tensor *t, struct am__job *j)
{
    char got[160];
    if (strcmp(t->name, "words") != 0)
        return am__fail(AMUSE_EFORMAT, "inputs[0].name '%.64s': model '%s' has one input, 'words'",
                        t->name, m->name);
    if (t->datatype != AM__DT_BYTES)
        return am__fail(AMUSE_EFORMAT, "inputs[0].datatype: model '%s' takes BYTES words",
                        m->name);
    if (t->ndim != 1)
        return am__fail(AMUSE_ESHAPE, "inputs[0].shape %s: words need shape [n]",
                        am__v2_shape_text(t->shape, t->ndim, got, sizeof got));
    int64_t n = t->shape[0];
    if (n < 1 || n > MAX_WORDS_PER_REQUEST)
        return am__fail(AMUSE_ETOOBIG, "inputs[0].shape: %lld words; 1 to %d per request",
                        (long long)n, MAX_WORDS_PER_REQUEST);
    j->samples = n;
    j->rows = malloc((size_t)n * sizeof *j->rows);
    const unsigned char **words = malloc((size_t)n * sizeof *words);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    int rc = AMUSE_OK;
    if (!j->rows || !words || !lens) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = bytes_elements(t, n, words, lens)) != AMUSE_OK)
        goto out;
    for (int64_t i = 0; i < n; i++) {
        char word[AMUSE_W2V_MAX_WORD_BYTES + 1];
        int64_t row = -1;
        if (lens[i] <= AMUSE_W2V_MAX_WORD_BYTES && !memchr(words[i], '\0', lens[i])) {
            memcpy(word, words[i], lens[i]);
            word[lens[i]] = '\0';
            row = amuse_vocab_lookup(m->wv->vocab, word);
        }
        if (row < 0) {
            rc = am__fail(AMUSE_ENOTFOUND,
                          "inputs[0].data[%lld]: '%.*s' is not in the vocabulary of model '%s'",
                          (long long)i, (int)(lens[i] < 64 ? lens[i] : 64),
                          (const char *)words[i], m->name);
            goto out;
        }
        j->rows[i] = row;
    }
out:
    free(words);
    free(lens);
    return rc;
}

/* ------------------------------------------------------------- dispatch by kind */

int am__v2_output_known(const struct am__model *m, const char *name)
{
    for (const char *const *o = m->kind->v2_outputs; o && *o; o++)
        if (strcmp(*o, name) == 0)
            return 1;
    return 0;
}

int am__v2_build_job(const struct amuse_server *s, const struct am__model *m,
                     const struct am__v2_request *req, struct am__job *job)
{
    if (!m->kind->v2_input)
        return am__fail(AMUSE_EUNSUPPORTED, "model '%s' is a %s model and takes no tensors%s",
                        m->name, m->kind->name, m->kind->v2_hint);
    if (req->n_inputs != 1)
        return am__fail(AMUSE_EFORMAT, "inputs has %d tensors; model '%s' takes one",
                        req->n_inputs, m->name);
    for (int i = 0; i < req->n_outputs; i++)
        if (!am__v2_output_known(m, req->outputs[i])) {
            char names[128] = "";
            size_t off = 0;
            for (const char *const *o = m->kind->v2_outputs; o && *o && off < sizeof names; o++)
                off += (size_t)snprintf(names + off, sizeof names - off, "%s'%s'",
                                        o == m->kind->v2_outputs ? "" : o[1] ? ", " : " and ",
                                        *o);
            return am__fail(AMUSE_EFORMAT, "outputs[%d].name '%.64s': model '%s' has %s", i,
                            req->outputs[i], m->name, names);
        }
    int rc = m->kind->v2_input(s, m, &req->inputs[0], job);
    if (rc)
        return rc;
    job->output = malloc((size_t)(job->samples * m->output_size) * sizeof(float));
    if (!job->output)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    return AMUSE_OK;
}

/* ------------------------------------------------------------------ encoding */

int am__v2_wants(const struct am__v2_request *req, const char *name, int by_default)
{
    if (req->n_outputs == 0)
        return by_default;
    for (int i = 0; i < req->n_outputs; i++)
        if (strcmp(req->outputs[i], name) == 0)
            return 1;
    return 0;
}

void am__v2_encode_fp32(struct am__buf *b, const char *name, const float *v, int64_t rows,
                        int64_t cols)
{
    am__buf_printf(b, "{\"name\": \"%s\", \"datatype\": \"FP32\", \"shape\": [%lld, %lld], "
                      "\"data\": [",
                   name, (long long)rows, (long long)cols);
    for (int64_t i = 0; i < rows * cols; i++) {
        if (i)
            am__buf_add(b, ",", 1);
        am__buf_float(b, v[i]);
    }
    am__buf_puts(b, "]}");
}

void am__v2_encode_reply(const struct am__model *m, const struct am__v2_request *req,
                         const struct am__job *job, struct am__buf *b)
{
    am__buf_puts(b, "{");
    if (req->id) {
        am__buf_puts(b, "\"id\": ");
        am__buf_json_string(b, req->id);
        am__buf_puts(b, ", ");
    }
    am__buf_puts(b, "\"model_name\": ");
    am__buf_json_string(b, m->name);
    am__buf_printf(b, ", \"model_version\": \"%lld\", \"outputs\": [", (long long)m->version);
    m->kind->v2_encode_outputs(m, req, job, b);
    am__buf_puts(b, "]}");
}

void am__v2_encode_metadata(const struct am__model *m, struct am__buf *b)
{
    am__buf_puts(b, "{\"name\": ");
    am__buf_json_string(b, m->name);
    am__buf_printf(b, ", \"versions\": [\"%lld\"], \"platform\": \"amuse\", ", (long long)m->version);
    if (m->kind->v2_encode_tensors)
        m->kind->v2_encode_tensors(m, b);
    else
        am__buf_puts(b, "\"inputs\": [], \"outputs\": []");
    am__buf_puts(b, "}");
}
