/* domain.c - routes for app developers who do not want tensors:
 *
 *   POST /v1/images/classify  an image in, the top-k labels with probabilities out. The image
 *                             is a multipart/form-data field "file" (or "image"), parsed with
 *                             libmicrohttpd's post processor, or the whole body with an
 *                             "image/..." Content-Type. model and top_k come from the query
 *                             string or from form fields. The form parser (am__form_parse) is
 *                             the one every upload route uses (/v1/audio/transcriptions too).
 *   GET  /v1/words/similar    ?model=&word=&k= : the k nearest words by cosine
 *   POST /v1/words/analogy    {"model", "positive": [..], "negative": [..], "k"} or
 *                             {"model", "a", "b", "c", "k"} (a is to b as c is to ?)
 *
 * Ownership follows the V2 route: the HTTP thread decodes (image decoding, word lookups in the
 * immutable vocabulary, so an unknown word is a 400 naming its field) and encodes; the model's
 * worker runs the math. Classification is an ordinary batched job; a word query is a job with a
 * task (serve_internal.h) that runs amuse_w2v_similar on the worker, over the unit vectors built
 * at load, so a query over a large vocabulary never occupies an HTTP thread and counts in the
 * model's statistics and queue limits like any other request. Words are looked up by the one
 * case rule (amuse_vocab_lookup: as given, else lower-cased; the English vectors are lower-case).
 * A fastText model (with subwords) accepts a word outside its vocabulary: the worker composes it
 * (lower-cased) from its character n-grams, and the reply lists such words in "subword". Errors
 * use OpenAI's shape (they are /v1 paths). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/image.h"
#include "amuse/model.h"
#include "amuse/word2vec.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_K           100
#define MAX_QUERY_WORDS 16
#define DEFAULT_K       10
#define DEFAULT_TOP_K   5

/* ------------------------------------------------------------------------ helpers */

/* A whole number in lo..hi from text (NULL: def). -1 after an error reply naming field. */
static int parse_count(struct am__request *r, const char *field, const char *text, int def, int lo,
                       int hi)
{
    if (!text)
        return def;
    char *end;
    long v = strtol(text, &end, 10);
    if (!text[0] || *end || v < lo || v > hi) {
        am__reply_error(r, 400, "%s must be a whole number from %d to %d, not '%.32s'", field, lo,
                        hi, text);
        return -1;
    }
    return (int)v;
}

/* ------------------------------------------------------------------------ words */

#define SUBWORD_POOL 8192 /* bytes for the words a query composes from n-grams */

struct word_query {
    const char *positive[MAX_QUERY_WORDS], *negative[MAX_QUERY_WORDS]; /* the vocabulary's, or
                                                                          in pool */
    int n_positive, n_negative, k;
    const char *subword[2 * MAX_QUERY_WORDS]; /* the words composed from n-grams (in pool) */
    int n_subword;
    char pool[SUBWORD_POOL];
    size_t pool_used;
    int n;
    struct amuse_w2v_hit hits[MAX_K];
};

/* Worker side. */
static void word_query_task(const struct am__model *m, struct am__job *j)
{
    struct word_query *q = j->task_arg;
    int rc = amuse_w2v_similar(m->wv, q->positive, q->n_positive, q->negative, q->n_negative, q->k,
                               0, q->hits, &q->n);
    if (rc) {
        j->status = rc;
        snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
    }
}

/* The vocabulary's spelling of word (as given, else lower-cased); for a model with subwords, an
 * unknown word lower-cased into q's pool (listed in q->subword); or NULL after a 400. */
static const char *vocab_word(struct am__request *r, const struct am__model *m,
                              struct word_query *q, const char *field, const char *word)
{
    int64_t row = amuse_vocab_lookup(m->wv->vocab, word);
    size_t len = strlen(word);
    if (row < 0 && amuse_word_vectors_has_subwords(m->wv) && len <= AMUSE_W2V_MAX_WORD_BYTES &&
        len > 0) {
        char lower[AMUSE_W2V_MAX_WORD_BYTES + 1];
        size_t i = 0;
        for (; word[i]; i++)
            lower[i] = (word[i] >= 'A' && word[i] <= 'Z') ? (char)(word[i] | 0x20) : word[i];
        lower[i] = '\0';
        if (q->pool_used + len + 1 > SUBWORD_POOL) {
            am__reply_error(r, 400, "%s: the words outside the vocabulary are longer than %d "
                            "bytes together", field, SUBWORD_POOL);
            return NULL;
        }
        char *copy = q->pool + q->pool_used;
        memcpy(copy, lower, len + 1);
        q->pool_used += len + 1;
        q->subword[q->n_subword++] = copy;
        return copy;
    }
    if (row < 0) {
        am__reply_error(r, 400, "%s: '%.64s' is not in the vocabulary of model '%s'", field, word,
                        m->name);
        return NULL;
    }
    return amuse_vocab_word(m->wv->vocab, row);
}

/* Run q on m's worker and reply {"model", "query", "results": [{"word", "score"}]}. */
static void run_word_query(struct am__request *r, const struct am__model *m, struct word_query *q)
{
    struct am__job *job = am__job_new();
    if (!job) {
        free(q);
        am__reply_error(r, 500, "out of memory");
        return;
    }
    job->samples = 1;
    job->task = word_query_task;
    job->task_arg = q; /* the job owns it now */
    if (am__run_job(r, m, job) == 0) {
        r->status = 200;
        r->items = 1;
        am__buf_puts(&r->out, "{\"model\": ");
        am__buf_json_string(&r->out, m->name);
        am__buf_puts(&r->out, ", \"positive\": [");
        for (int i = 0; i < q->n_positive; i++) {
            if (i)
                am__buf_puts(&r->out, ", ");
            am__buf_json_string(&r->out, q->positive[i]);
        }
        am__buf_puts(&r->out, "], \"negative\": [");
        for (int i = 0; i < q->n_negative; i++) {
            if (i)
                am__buf_puts(&r->out, ", ");
            am__buf_json_string(&r->out, q->negative[i]);
        }
        am__buf_puts(&r->out, "], ");
        if (amuse_word_vectors_has_subwords(m->wv)) {
            am__buf_puts(&r->out, "\"subword\": [");
            for (int i = 0; i < q->n_subword; i++) {
                if (i)
                    am__buf_puts(&r->out, ", ");
                am__buf_json_string(&r->out, q->subword[i]);
            }
            am__buf_puts(&r->out, "], ");
        }
        am__buf_puts(&r->out, "\"results\": [");
        for (int i = 0; i < q->n; i++) {
            am__buf_puts(&r->out, i ? ", {\"word\": " : "{\"word\": ");
            am__buf_json_string(&r->out, amuse_vocab_word(m->wv->vocab, q->hits[i].index));
            am__buf_puts(&r->out, ", \"score\": ");
            am__buf_float(&r->out, q->hits[i].score);
            am__buf_puts(&r->out, "}");
        }
        am__buf_puts(&r->out, "]}");
    }
    am__job_unref(job);
}

void am__handle_words_similar(struct am__request *r)
{
    const char *model = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "model");
    const char *word = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "word");
    const char *k_text = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "k");
    int k = parse_count(r, "k", k_text, DEFAULT_K, 1, MAX_K);
    if (k < 0)
        return;
    if (!word || !word[0]) {
        am__reply_error(r, 400, "word: give the word to look up (?word=...)");
        return;
    }
    struct am__model *m = am__route_model(r, model, AM__NEED_WORDS);
    if (!m)
        return;
    struct word_query *q = calloc(1, sizeof *q);
    if (!q) {
        am__reply_error(r, 500, "out of memory");
    } else if (!(q->positive[0] = vocab_word(r, m, q, "word", word))) {
        free(q);
    } else {
        q->n_positive = 1;
        q->k = k;
        run_word_query(r, m, q);
    }
    am__model_release(r->server->repo, m);
}

/* Words of a JSON array field into out[]; -1 after a 400. A missing field is 0 words. */
static int word_list(struct am__request *r, const struct am__model *m, struct word_query *q,
                     const cJSON *doc, const char *field, const char **out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, field);
    if (!a || cJSON_IsNull(a))
        return 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) > MAX_QUERY_WORDS) {
        am__reply_error(r, 400, "%s must be an array of at most %d words", field, MAX_QUERY_WORDS);
        return -1;
    }
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        char name[48];
        snprintf(name, sizeof name, "%s[%d]", field, n);
        if (!cJSON_IsString(e)) {
            am__reply_error(r, 400, "%s must be a string", name);
            return -1;
        }
        if (!(out[n] = vocab_word(r, m, q, name, e->valuestring)))
            return -1;
        n++;
    }
    return n;
}

void am__handle_words_analogy(struct am__request *r)
{
    cJSON *doc = NULL;
    struct am__model *m = NULL;
    struct word_query *q = NULL;
    int rc =
        am__json_parse_object(r->body ? r->body : "", r->len, r->server->opt.max_json_depth, &doc);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    const cJSON *kj = cJSON_GetObjectItemCaseSensitive(doc, "k");
    int k = DEFAULT_K;
    if (kj) {
        /* range first: converting 1e19 to int would be undefined */
        if (!cJSON_IsNumber(kj) || !(kj->valuedouble >= 1 && kj->valuedouble <= MAX_K) ||
            kj->valuedouble != (double)(int)kj->valuedouble) {
            am__reply_error(r, 400, "k must be a whole number from 1 to %d", MAX_K);
            goto out;
        }
        k = kj->valueint;
    }
    m = am__route_model(r, cJSON_IsString(model) ? model->valuestring : NULL, AM__NEED_WORDS);
    if (!m)
        goto out;
    q = calloc(1, sizeof *q);
    if (!q) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    q->k = k;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, "a");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "b");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "c");
    if (a || b || c) { /* a : b :: c : ?  =  positive {b, c}, negative {a} */
        const char *names[3] = {"a", "b", "c"};
        const cJSON *abc[3] = {a, b, c};
        const char *words[3];
        for (int i = 0; i < 3; i++) {
            if (!cJSON_IsString(abc[i])) {
                am__reply_error(r, 400,
                                "%s must be a word (give a, b and c: a is to b as c is "
                                "to ?)",
                                names[i]);
                goto out;
            }
            if (!(words[i] = vocab_word(r, m, q, names[i], abc[i]->valuestring)))
                goto out;
        }
        q->positive[0] = words[1];
        q->positive[1] = words[2];
        q->negative[0] = words[0];
        q->n_positive = 2;
        q->n_negative = 1;
    } else {
        if ((q->n_positive = word_list(r, m, q, doc, "positive", q->positive)) < 0 ||
            (q->n_negative = word_list(r, m, q, doc, "negative", q->negative)) < 0)
            goto out;
        if (q->n_positive + q->n_negative == 0) {
            am__reply_error(r, 400,
                            "positive: give at least one word (positive/negative "
                            "arrays, or a, b and c)");
            goto out;
        }
    }
    run_word_query(r, m, q);
    q = NULL;
out:
    free(q);
    if (m)
        am__model_release(r->server->repo, m);
    cJSON_Delete(doc);
}

/* ------------------------------------------------------------------------ images */

/* The multipart/form-data parser of the upload routes (libmicrohttpd's post processor): the
 * file field's bytes and the text fields the caller names. */
static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    struct am__form *f = cls;
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    if (!key) /* a part without a name */
        return MHD_YES;
    for (const char *const *n = f->file_fields; *n; n++)
        if (strcmp(key, *n) == 0) {
            f->has_file = 1;
            am__buf_add(&f->file, data, size);
            return f->file.failed ? MHD_NO : MHD_YES;
        }
    for (int i = 0; i < AM__FORM_FIELDS && f->fields[i]; i++)
        if (strcmp(key, f->fields[i]) == 0) {
            if (off + size >= sizeof f->values[i]) {
                f->too_long = f->fields[i];
            } else {
                if (size) /* an empty field comes with data NULL */
                    memcpy(f->values[i] + off, data, size);
                f->values[i][off + size] = '\0';
                f->present |= 1u << i;
            }
            break;
        }
    return MHD_YES;
}

int am__form_parse(struct am__request *r, struct am__form *f)
{
    struct MHD_PostProcessor *pp = MHD_create_post_processor(r->conn, 16384, form_field, f);
    if (!pp) {
        am__reply_error(r, 400,
                        "multipart/form-data body without a usable boundary parameter "
                        "in Content-Type");
        return -1;
    }
    enum MHD_Result ok = MHD_post_process(pp, r->body ? r->body : "", r->len);
    enum MHD_Result complete = MHD_destroy_post_processor(pp);
    if (f->file.failed) {
        am__reply_error(r, 500, "out of memory");
        return -1;
    }
    if (ok != MHD_YES || complete != MHD_YES) {
        am__reply_error(r, 400,
                        "malformed or truncated multipart/form-data body (%zu bytes "
                        "read)",
                        r->len);
        return -1;
    }
    if (f->too_long) {
        am__reply_error(r, 400, "form field %s is too long (at most %zu bytes)", f->too_long,
                        sizeof f->values[0] - 1);
        return -1;
    }
    return 0;
}

const char *am__form_value(const struct am__form *f, const char *name)
{
    for (int i = 0; i < AM__FORM_FIELDS && f->fields[i]; i++)
        if (strcmp(f->fields[i], name) == 0)
            return (f->present & (1u << i)) && f->values[i][0] ? f->values[i] : NULL;
    return NULL;
}

void am__handle_images_classify(struct am__request *r)
{
    const char *ctype =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    static const char *const file_fields[] = {"file", "image", NULL};
    struct am__form f;
    memset(&f, 0, sizeof f);
    f.file_fields = file_fields;
    f.fields[0] = "model";
    f.fields[1] = "top_k";
    const unsigned char *image = NULL;
    size_t image_len = 0;
    struct am__model *m = NULL;
    struct am__job *job = NULL;
    int *order = NULL;
    if (ctype && strncasecmp(ctype, "multipart/form-data", 19) == 0) {
        if (am__form_parse(r, &f))
            goto out;
        if (!f.has_file || f.file.len == 0) {
            am__reply_error(r, 400,
                            "file: the form has no (or an empty) 'file' field with the image");
            goto out;
        }
        image = (const unsigned char *)f.file.data;
        image_len = f.file.len;
    } else if (ctype && strncasecmp(ctype, "image/", 6) == 0) {
        if (r->len == 0) {
            am__reply_error(r, 400, "empty body; send the image's bytes");
            goto out;
        }
        image = (const unsigned char *)r->body;
        image_len = r->len;
    } else {
        am__reply_error(r, 415,
                        "Content-Type must be multipart/form-data (with a 'file' field) "
                        "or image/* (the raw image), not '%.64s'",
                        ctype ? ctype : "(none)");
        goto out;
    }
    const char *model = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "model");
    const char *top_k = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "top_k");
    if (!model)
        model = am__form_value(&f, "model");
    if (!top_k)
        top_k = am__form_value(&f, "top_k");
    int k = parse_count(r, "top_k", top_k, DEFAULT_TOP_K, 1, 1000);
    if (k < 0)
        goto out;
    m = am__route_model(r, model, AM__NEED_IMAGES);
    if (!m)
        goto out;
    if (k > m->output_size)
        k = (int)m->output_size;
    job = am__job_new();
    if (!job) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    job->samples = 1;
    job->output = malloc((size_t)m->output_size * sizeof(float));
    order = malloc((size_t)m->output_size * sizeof *order);
    if (!job->output || !order) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    /* The header checks and budgets now; the pixels on the decode pool, in am__run_job. */
    int rc = am__decode_job_new(r->server, m, &image, &image_len, 1, "file", &job->decode);
    if (rc) {
        am__reply_status(r, rc, rc == AMUSE_ETOOBIG ? 413 : 400);
        goto out;
    }
    if (am__run_job(r, m, job))
        goto out;
    /* top k by probability: a partial selection sort, k is small */
    const float *p = job->output;
    for (int i = 0; i < m->output_size; i++)
        order[i] = i;
    for (int i = 0; i < k; i++) {
        int best = i;
        for (int j = i + 1; j < m->output_size; j++)
            if (p[order[j]] > p[order[best]])
                best = j;
        int t = order[i];
        order[i] = order[best];
        order[best] = t;
    }
    r->status = 200;
    r->items = 1;
    am__buf_puts(&r->out, "{\"model\": ");
    am__buf_json_string(&r->out, m->name);
    am__buf_printf(&r->out, ", \"version\": \"%lld\", \"labels\": [", (long long)m->version);
    for (int i = 0; i < k; i++) {
        const char *label = amuse_model_label(m->net, order[i]);
        char fallback[24];
        if (!label) {
            snprintf(fallback, sizeof fallback, "%d", order[i]);
            label = fallback;
        }
        am__buf_puts(&r->out, i ? ", {\"label\": " : "{\"label\": ");
        am__buf_json_string(&r->out, label);
        am__buf_puts(&r->out, ", \"probability\": ");
        am__buf_float(&r->out, p[order[i]]);
        am__buf_puts(&r->out, "}");
    }
    am__buf_puts(&r->out, "]}");
out:
    free(order);
    am__job_unref(job);
    if (m)
        am__model_release(r->server->repo, m);
    am__buf_release(&f.file);
}
