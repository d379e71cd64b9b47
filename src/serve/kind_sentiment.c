/* kind_sentiment.c - the review-sentiment model kind and its route, POST /v1/text/sentiment.
 *
 * A sentiment model directory (config.json {"type": "sentiment", ...}, model.safetensors,
 * words.vocab; amuse/sentiment.h) loads read-only. The route takes
 *     {"model": "sentiment-en", "input": "text" or ["text", ...]}
 * and answers
 *     {"object": "list", "model": ..., "data": [{"index": 0, "label": "positive", "score": 0.93}]}
 * with label negative|neutral|positive and score in [-1, 1]. The texts are copied into the job,
 * scored on the model's worker (so a burst of long texts queues like any other model math, under
 * the request's deadline) and never logged. Not here: scoring review events as they arrive and
 * per-item sentiment, which belong to the personalisation store.
 */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/sentiment.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXTS 256                 /* texts per request */
#define MAX_TOTAL_BYTES (1024 * 1024) /* their bytes together (each text has the library's cap) */

/* ------------------------------------------------------------------ the kind */

static int sentiment_load(struct am__model *m, const struct cJSON *cfg, const char *cfg_path)
{
    (void)cfg;
    (void)cfg_path;
    struct amuse_sentiment_model *sm = NULL;
    int rc = amuse_sentiment_load(m->dir, &sm);
    if (rc)
        return rc;
    m->state = sm;
    m->input_shape.ndim = 0;
    m->input_size = 1;
    m->output_size = 2; /* label, score */
    return AMUSE_OK;
}

static void sentiment_release(struct am__model *m)
{
    amuse_sentiment_free(m->state);
    m->state = NULL;
}

/* Every job of this kind is a scoring task (below). */
static void sentiment_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    const struct am__model *m = ctx;
    (void)samples;
    for (int i = 0; i < n; i++)
        if (jobs[i]->task)
            jobs[i]->task(m, jobs[i]);
}

const struct am__model_kind am__kind_sentiment = {
    .name = "sentiment",
    .config_type = "sentiment",
    .flags = AM__KIND_SENTIMENT,
    .load = sentiment_load,
    .release = sentiment_release,
    .run = sentiment_run,
    .v2_hint = "; use POST /v1/text/sentiment",
};

/* ------------------------------------------------------------------ the route */

/* One request's texts and results, in one allocation that the job owns (task_arg). */
struct scoring {
    int n;
    int status;      /* the library's verdict on the texts (a client's fault: answered 400/413) */
    char error[256];
    const char **texts;
    size_t *lens;
    struct amuse_sentiment_result *results;
    char bytes[]; /* the texts, NUL-terminated one after another */
};

static void scoring_task(const struct am__model *m, struct am__job *j)
{
    struct scoring *sc = j->task_arg;
    sc->status = amuse_sentiment_score(m->state, sc->texts, sc->lens, sc->n, sc->results);
    if (sc->status == AMUSE_ENOMEM) { /* the server's fault: the job fails (500) */
        j->status = sc->status;
        snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
    } else if (sc->status) {
        snprintf(sc->error, sizeof sc->error, "%s", amuse_last_error());
    }
}

/* The texts of "input" (a string or a list of strings) copied into a new scoring, or NULL after
 * an error reply. */
static struct scoring *scoring_from(struct am__request *r, const cJSON *input)
{
    const cJSON *one = cJSON_IsString(input) ? input : NULL;
    int n = one ? 1 : cJSON_IsArray(input) ? cJSON_GetArraySize(input) : -1;
    if (n < 1 || n > MAX_TEXTS) {
        am__reply_error(r, n > MAX_TEXTS ? 413 : 400,
                        "input: give a string or a list of 1 to %d strings", MAX_TEXTS);
        return NULL;
    }
    size_t total = 0;
    int i = 0;
    for (const cJSON *e = one ? one : input->child; e; e = one ? NULL : e->next, i++) {
        if (!cJSON_IsString(e)) {
            am__reply_error(r, 400, "input[%d]: must be a string", i);
            return NULL;
        }
        total += strlen(e->valuestring) + 1;
        if (total > MAX_TOTAL_BYTES) {
            am__reply_error(r, 413, "input: more than %d bytes of text in one request; split it",
                            MAX_TOTAL_BYTES);
            return NULL;
        }
    }
    size_t head = sizeof(struct scoring), ptrs = (size_t)n * sizeof(const char *),
           lens = (size_t)n * sizeof(size_t),
           results = (size_t)n * sizeof(struct amuse_sentiment_result);
    struct scoring *sc = malloc(head + total + ptrs + lens + results + 16);
    if (!sc) {
        am__reply_error(r, 500, "out of memory");
        return NULL;
    }
    /* Layout: header, texts, then the aligned arrays. */
    char *arrays = sc->bytes + ((total + 15) & ~(size_t)15);
    sc->n = n;
    sc->status = 0;
    sc->error[0] = '\0';
    sc->texts = (const char **)(void *)arrays;
    sc->lens = (size_t *)(void *)(arrays + ptrs);
    sc->results = (struct amuse_sentiment_result *)(void *)(arrays + ptrs + lens);
    char *at = sc->bytes;
    i = 0;
    for (const cJSON *e = one ? one : input->child; e; e = one ? NULL : e->next, i++) {
        size_t len = strlen(e->valuestring);
        memcpy(at, e->valuestring, len + 1);
        sc->texts[i] = at;
        sc->lens[i] = len;
        at += len + 1;
    }
    return sc;
}

void am__handle_text_sentiment(struct am__request *r)
{
    cJSON *doc = NULL;
    struct am__model *m = NULL;
    struct scoring *sc = NULL;
    struct am__job *job = NULL;
    int rc =
        am__json_parse_object(r->body ? r->body : "", r->len, r->server->opt.max_json_depth, &doc);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    if (!(m = am__route_model(r, cJSON_IsString(model) ? model->valuestring : NULL,
                              AM__NEED_SENTIMENT)))
        goto out;
    if (!(sc = scoring_from(r, cJSON_GetObjectItemCaseSensitive(doc, "input"))))
        goto out;
    if (!(job = am__job_new())) {
        free(sc);
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    job->samples = sc->n;
    job->task = scoring_task;
    job->task_arg = sc; /* the job owns it now */
    if (am__run_job(r, m, job) != 0)
        goto out;
    if (sc->status) { /* the library names the text and byte: "text 2: byte 7: invalid UTF-8" */
        am__reply_error(r, sc->status == AMUSE_ETOOBIG ? 413 : 400, "input: %s", sc->error);
        goto out;
    }
    r->status = 200;
    r->items = sc->n;
    am__buf_puts(&r->out, "{\"object\": \"list\", \"model\": ");
    am__buf_json_string(&r->out, m->name);
    am__buf_puts(&r->out, ", \"data\": [");
    for (int i = 0; i < sc->n; i++) {
        am__buf_printf(&r->out, "%s{\"index\": %d, \"label\": ", i ? ", " : "", i);
        am__buf_json_string(&r->out, amuse_sentiment_label_name(sc->results[i].label));
        am__buf_puts(&r->out, ", \"score\": ");
        am__buf_float(&r->out, sc->results[i].score);
        am__buf_puts(&r->out, "}");
    }
    am__buf_puts(&r->out, "]}");
out:
    am__job_unref(job);
    if (m)
        am__model_release(r->server->repo, m);
    cJSON_Delete(doc);
}

int am__sentiment_score_texts(struct am__request *r, const struct am__model *m,
                              const char *const *texts, const size_t *lens, int n, float *scores)
{
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += lens[i] + 1;
    size_t head = sizeof(struct scoring), ptrs = (size_t)n * sizeof(const char *),
           lsz = (size_t)n * sizeof(size_t),
           results = (size_t)n * sizeof(struct amuse_sentiment_result);
    struct scoring *sc = malloc(head + total + ptrs + lsz + results + 16);
    if (!sc) {
        am__reply_error(r, 500, "out of memory");
        return -1;
    }
    char *arrays = sc->bytes + ((total + 15) & ~(size_t)15);
    sc->n = n;
    sc->status = 0;
    sc->error[0] = '\0';
    sc->texts = (const char **)(void *)arrays;
    sc->lens = (size_t *)(void *)(arrays + ptrs);
    sc->results = (struct amuse_sentiment_result *)(void *)(arrays + ptrs + lsz);
    char *at = sc->bytes;
    for (int i = 0; i < n; i++) { /* copied: the job may outlive a request that gave up */
        memcpy(at, texts[i], lens[i]);
        at[lens[i]] = '\0';
        sc->texts[i] = at;
        sc->lens[i] = lens[i];
        at += lens[i] + 1;
    }
    struct am__job *job = am__job_new();
    if (!job) {
        free(sc);
        am__reply_error(r, 500, "out of memory");
        return -1;
    }
    job->samples = n;
    job->task = scoring_task;
    job->task_arg = sc; /* the job owns it now */
    int rc = -1;
    if (am__run_job(r, m, job) == 0) {
        if (sc->status) {
            am__reply_error(r, sc->status == AMUSE_ETOOBIG ? 413 : 400, "review text: %s",
                            sc->error);
        } else {
            for (int i = 0; i < n; i++)
                scores[i] = sc->results[i].score;
            rc = 0;
        }
    }
    am__job_unref(job);
    return rc;
}
