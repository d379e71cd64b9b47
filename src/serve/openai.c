/* openai.c - the OpenAI-compatible routes, so that OpenAI's client libraries work unchanged given
 * a base URL (http://host:port/v1) and an amuse key:
 *
 *   GET  /v1/models      every served model, in OpenAI's list format
 *   POST /v1/embeddings  {"model", "input": string | [strings], "encoding_format"?, "dimensions"?}
 *                        for word-vector models
 *
 * Embedding rule. Each input string is tokenised the way data/make_corpus.sh prepares the
 * English corpus the default vectors are trained on: every byte that is not an ASCII letter is a
 * separator, so a token is a maximal run of [A-Za-z] ("Don't stop!" -> "Don", "t", "stop"),
 * looked up by the one case rule (amuse_vocab_lookup: as written, else lower-cased, so "Don" finds
 * "don"). Tokens not in the model's vocabulary are skipped. The embedding is the
 * arithmetic mean of the known tokens' vectors as stored in the model (the same vectors the V2
 * route returns); it is NOT scaled to unit length. An input with no known token is a 400 naming
 * the input. usage.prompt_tokens (= total_tokens) counts every token, known or not.
 * A fastText model (with subwords) skips no token: an unseen one counts with the vector composed
 * from its character n-grams (amuse_word_vectors_lookup, on the HTTP thread: a few dozen row
 * additions), and each embedding lists those tokens in "subword".
 *
 * The vector lookups go through the model's batcher like a V2 request (one job per request, one
 * row per known token), so queue limits, timeouts and statistics apply; the HTTP thread only
 * averages the returned rows while encoding. encoding_format "base64" (what the official clients
 * ask for by default) answers each vector as base64 of little-endian float32s.
 *
 * Errors on /v1/... use OpenAI's {"error": {"message", "type", "param", "code"}} (http.c calls
 * am__openai_error for any error on these paths, auth failures included).
 * Not here: chat/completions (needs a generating model), token-id inputs. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/word2vec.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUTS             2048 /* strings per request (OpenAI's own limit) */
#define MAX_TOKENS_PER_REQUEST 8192 /* known tokens in all inputs together */

int am__openai_path(const char *url)
{
    return url && strncmp(url, "/v1", 3) == 0 && (url[3] == '\0' || url[3] == '/');
}

void am__openai_error(struct am__buf *b, int status, const char *message)
{
    const char *type, *code;
    switch (status) {
    case 401:
        type = "authentication_error";
        code = "invalid_api_key";
        break;
    case 403:
        type = "permission_error";
        code = "insufficient_permissions";
        break;
    case 404:
        type = "invalid_request_error";
        code = "not_found";
        break;
    case 405:
        type = "invalid_request_error";
        code = "method_not_allowed";
        break;
    case 413:
        type = "invalid_request_error";
        code = "request_too_large";
        break;
    case 429:
        type = "rate_limit_error";
        code = "rate_limit_exceeded";
        break;
    case 503:
        type = "server_error";
        code = "service_unavailable";
        break;
    case 504:
        type = "server_error";
        code = "timeout";
        break;
    default:
        type = status >= 500 ? "server_error" : "invalid_request_error";
        code = status >= 500 ? "server_error" : "invalid_request";
        break;
    }
    am__buf_puts(b, "{\"error\": {\"message\": ");
    am__buf_json_string(b, message);
    am__buf_printf(b, ", \"type\": \"%s\", \"param\": null, \"code\": \"%s\"}}", type, code);
}

/* One model in OpenAI's model object shape. */
static void model_object(struct am__buf *b, const struct am__model *m)
{
    am__buf_puts(b, "{\"id\": ");
    am__buf_json_string(b, m->name);
    am__buf_printf(b, ", \"object\": \"model\", \"created\": %lld, \"owned_by\": \"amuse\"}",
                   (long long)m->created);
}

void am__handle_openai_model(struct am__request *r)
{
    struct am__model *m = am__route_model(r, r->param_model, AM__NEED_ANY);
    if (!m)
        return;
    r->status = 200;
    model_object(&r->out, m);
    am__model_release(r->server->repo, m);
}

void am__handle_openai_models(struct am__request *r)
{
    struct am__repository *repo = r->server->repo;
    char **names = NULL;
    int n = 0;
    if (am__repository_names(repo, &names, &n)) {
        am__reply_status(r, AMUSE_ENOMEM, 500);
        return;
    }
    r->status = 200;
    am__buf_puts(&r->out, "{\"object\": \"list\", \"data\": [");
    int first = 1;
    for (int i = 0; i < n; i++) {
        struct am__model *m = am__repository_get(repo, names[i]);
        if (m && !am__request_may_use(r, m)) { /* outside the key's tenant walls */
            am__model_release(repo, m);
            m = NULL;
        }
        if (m) { /* unloaded since the snapshot: leave it out */
            if (!first)
                am__buf_puts(&r->out, ", ");
            model_object(&r->out, m);
            first = 0;
            am__model_release(repo, m);
        }
        free(names[i]);
    }
    free(names);
    am__buf_puts(&r->out, "]}");
}

/* The next token of s from *pos: a run of ASCII letters, copied into word (which holds
 * AMUSE_W2V_MAX_WORD_BYTES + 1). Returns its length (0 at the end); *too_long is set when the
 * run was longer than the buffer (the token cannot be in any vocabulary). */
size_t am__openai_token(const char *s, size_t *pos, char *word, int *too_long)
{
    size_t i = *pos, n = 0;
    *too_long = 0;
    while (s[i] && !((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')) {
        if (n < AMUSE_W2V_MAX_WORD_BYTES)
            word[n] = s[i];
        else
            *too_long = 1;
        n++;
        i++;
    }
    *pos = i;
    word[n < AMUSE_W2V_MAX_WORD_BYTES ? n : AMUSE_W2V_MAX_WORD_BYTES] = '\0';
    return n;
}

struct embed_input {
    const char *text;
    int64_t first_row, known; /* the job's rows [first_row, first_row + known) */
    int64_t composed;         /* tokens composed from n-grams (models with subwords) ... */
    float *composed_sum;      /* ... the sum of their vectors (dim, then dim of scratch) */
    struct am__buf subword;   /* ... and their names, as JSON strings separated by ", " */
};

static void free_inputs(struct embed_input *in, int n)
{
    for (int i = 0; in && i < n; i++) {
        free(in[i].composed_sum);
        am__buf_release(&in[i].subword);
    }
    free(in);
}

/* Add the vector composed from word's n-grams to in's sum. */
static int add_composed(const struct am__model *m, struct embed_input *in, const char *word)
{
    int dim = m->wv->dim;
    if (!in->composed_sum && !(in->composed_sum = calloc((size_t)dim * 2, sizeof(float))))
        return am__fail(AMUSE_ENOMEM, "out of memory");
    float *v = in->composed_sum + dim; /* scratch after the sum */
    int rc = amuse_word_vectors_lookup(m->wv, word, v, NULL);
    if (rc)
        return rc;
    for (int k = 0; k < dim; k++)
        in->composed_sum[k] += v[k];
    if (in->composed++)
        am__buf_puts(&in->subword, ", ");
    am__buf_json_string(&in->subword, word);
    return AMUSE_OK;
}

/* Fill the job with the rows of every input's known tokens. */
static int build_rows(const struct am__model *m, struct embed_input *in, int n_in,
                      struct am__job *job, int64_t *tokens)
{
    char word[AMUSE_W2V_MAX_WORD_BYTES + 1];
    int64_t cap = 64, used = 0, composed = 0;
    *tokens = 0;
    job->rows = malloc((size_t)cap * sizeof *job->rows);
    if (!job->rows)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    for (int i = 0; i < n_in; i++) {
        size_t pos = 0;
        int too_long;
        in[i].first_row = used;
        while (am__openai_token(in[i].text, &pos, word, &too_long) > 0) {
            (*tokens)++;
            int64_t row = too_long ? -1 : amuse_vocab_lookup(m->wv->vocab, word);
            if (row < 0 && !too_long && amuse_word_vectors_has_subwords(m->wv)) {
                if (used + composed == MAX_TOKENS_PER_REQUEST)
                    return am__fail(AMUSE_ETOOBIG, "input: more than %d tokens in one request; "
                                    "split it", MAX_TOKENS_PER_REQUEST);
                int rc = add_composed(m, &in[i], word);
                if (rc)
                    return rc;
                composed++;
                continue;
            }
            if (row < 0)
                continue;
            if (used + composed == MAX_TOKENS_PER_REQUEST)
                return am__fail(AMUSE_ETOOBIG,
                                "input: more than %d known tokens in one "
                                "request; split it",
                                MAX_TOKENS_PER_REQUEST);
            if (used == cap) {
                cap *= 2;
                int64_t *p = realloc(job->rows, (size_t)cap * sizeof *p);
                if (!p)
                    return am__fail(AMUSE_ENOMEM, "out of memory");
                job->rows = p;
            }
            job->rows[used++] = row;
        }
        in[i].known = used - in[i].first_row;
        if (in[i].known == 0 && in[i].composed == 0) {
            char where[32] = "input";
            if (n_in > 1)
                snprintf(where, sizeof where, "input[%d]", i);
            return am__fail(AMUSE_ENOTFOUND,
                            "%s: no word of the text is in the vocabulary of model '%s' "
                            "(tokens are runs of ASCII letters, looked up as written, "
                            "else lower-cased)",
                            where, m->name);
        }
    }
    job->samples = used;
    return AMUSE_OK;
}

/* Collect input: a string or a non-empty array of strings. */
static int parse_inputs(const cJSON *input, struct embed_input **out, int *n)
{
    *out = NULL;
    *n = 0;
    if (cJSON_IsString(input)) {
        *out = calloc(1, sizeof **out);
        if (!*out)
            return am__fail(AMUSE_ENOMEM, "out of memory");
        (*out)[0].text = input->valuestring;
        *n = 1;
        return AMUSE_OK;
    }
    if (!cJSON_IsArray(input))
        return am__fail(AMUSE_EFORMAT, "input must be a string or an array of strings");
    int count = cJSON_GetArraySize(input);
    if (count < 1 || count > MAX_INPUTS)
        return am__fail(AMUSE_EFORMAT, "input has %d strings; 1 to %d allowed", count, MAX_INPUTS);
    *out = calloc((size_t)count, sizeof **out);
    if (!*out)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, input)
    {
        if (!cJSON_IsString(e))
            return am__fail(AMUSE_EFORMAT,
                            "input[%d] must be a string (token-id inputs are not supported)", i);
        (*out)[i++].text = e->valuestring;
    }
    *n = count;
    return AMUSE_OK;
}

static void encode_embedding(struct am__buf *b, const float *v, int dim, int base64)
{
    if (!base64) {
        am__buf_add(b, "[", 1);
        for (int k = 0; k < dim; k++) {
            if (k)
                am__buf_add(b, ",", 1);
            am__buf_float(b, v[k]);
        }
        am__buf_add(b, "]", 1);
        return;
    }
    /* little-endian float32 bytes, as the clients decode them */
    size_t nbytes = (size_t)dim * 4;
    unsigned char *raw = malloc(nbytes);
    size_t b64len = sodium_base64_encoded_len(nbytes, sodium_base64_VARIANT_ORIGINAL);
    char *text = malloc(b64len);
    if (!raw || !text) {
        b->failed = 1;
    } else {
        for (int k = 0; k < dim; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            for (int byte = 0; byte < 4; byte++)
                raw[(size_t)k * 4 + (size_t)byte] = (unsigned char)(u >> (8 * byte));
        }
        sodium_bin2base64(text, b64len, raw, nbytes, sodium_base64_VARIANT_ORIGINAL);
        am__buf_json_string(b, text);
    }
    free(raw);
    free(text);
}

void am__handle_openai_embeddings(struct am__request *r)
{
    struct amuse_server *s = r->server;
    cJSON *doc = NULL;
    struct am__model *m = NULL;
    struct am__job *job = NULL;
    struct embed_input *in = NULL;
    float *mean = NULL;
    int n_in = 0;
    int rc = am__json_parse_object(r->body ? r->body : "", r->len, s->opt.max_json_depth, &doc);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(doc, "encoding_format");
    int base64 = 0;
    if (fmt && !cJSON_IsNull(fmt)) {
        if (cJSON_IsString(fmt) && strcmp(fmt->valuestring, "base64") == 0) {
            base64 = 1;
        } else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "float") != 0) {
            am__reply_error(r, 400, "encoding_format must be \"float\" or \"base64\"");
            goto out;
        }
    }
    m = am__route_model(r, cJSON_IsString(model) ? model->valuestring : NULL, AM__NEED_WORDS);
    if (!m)
        goto out;
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(doc, "dimensions");
    if (dims && !cJSON_IsNull(dims) &&
        (!cJSON_IsNumber(dims) || dims->valuedouble != (double)m->output_size)) {
        am__reply_error(r, 400,
                        "dimensions: model '%s' gives %lld-dimensional vectors and "
                        "cannot shorten them",
                        m->name, (long long)m->output_size);
        goto out;
    }
    rc = parse_inputs(cJSON_GetObjectItemCaseSensitive(doc, "input"), &in, &n_in);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    job = am__job_new();
    if (!job) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    int64_t tokens = 0;
    rc = build_rows(m, in, n_in, job, &tokens);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    const int dim = (int)m->output_size;
    job->output = malloc((size_t)(job->samples ? job->samples : 1) * (size_t)dim * sizeof(float));
    mean = malloc((size_t)dim * sizeof *mean);
    if (!job->output || !mean) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    if (job->samples > 0 && am__run_job(r, m, job)) /* none: every token was composed */
        goto out;
    r->status = 200;
    r->items = n_in;
    am__buf_puts(&r->out, "{\"object\": \"list\", \"data\": [");
    for (int i = 0; i < n_in; i++) {
        for (int k = 0; k < dim; k++) {
            double sum = in[i].composed_sum ? in[i].composed_sum[k] : 0;
            for (int64_t t = 0; t < in[i].known; t++)
                sum += job->output[(in[i].first_row + t) * dim + k];
            mean[k] = (float)(sum / (double)(in[i].known + in[i].composed));
        }
        am__buf_printf(&r->out, "%s{\"object\": \"embedding\", \"index\": %d, \"embedding\": ",
                       i ? ", " : "", i);
        encode_embedding(&r->out, mean, dim, base64);
        if (amuse_word_vectors_has_subwords(m->wv)) {
            am__buf_puts(&r->out, ", \"subword\": [");
            if (in[i].subword.len)
                am__buf_add(&r->out, in[i].subword.data, in[i].subword.len);
            am__buf_puts(&r->out, "]");
        }
        am__buf_puts(&r->out, "}");
    }
    am__buf_puts(&r->out, "], \"model\": ");
    am__buf_json_string(&r->out, m->name);
    am__buf_printf(&r->out, ", \"usage\": {\"prompt_tokens\": %lld, \"total_tokens\": %lld}}",
                   (long long)tokens, (long long)tokens);
out:
    free(mean);
    free_inputs(in, n_in);
    am__job_unref(job);
    if (m)
        am__model_release(s->repo, m);
    cJSON_Delete(doc);
}
