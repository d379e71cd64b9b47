/* test_serve.c - the server's parts on their own: the JSON depth pre-check, V2 request decoding
 * and its messages, route matching, the OpenAI error shape, metrics histogram buckets, the dynamic
 * batcher (batches form, a full queue is refused, a deadline cancels queued work, partial results
 * reach the waiter in order), the key store (hash-only storage, verification, revocation, the salt
 * surviving a reopen), and the per-key token bucket and usage counters. The whole server over HTTP
 * is tests/cli_serve.sh.
 *
 * With AMUSE_TEST_DB_URL set (a postgres:// url; ctest's test_serve_postgres starts a throwaway
 * cluster for it), the key-store tests run against that database instead of a SQLite file, each
 * on emptied tables, and the tests that use no database are left out. */
#define _GNU_SOURCE
#include "test.h"

#include "amuse/serve.h"
#include "db/db.h"
#include "serve/serve_internal.h"
#include "serve/test_control.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ json / v2 / router */

TEST(json_precheck)
{
    ASSERT_OK(am__json_precheck("[[[]]]", 6, 3));
    ASSERT_FAILS(am__json_precheck("[[[[]]]]", 8, 3), AMUSE_EFORMAT, "deeper than 3 levels (byte 3)");
    /* brackets and escaped quotes inside strings do not count */
    const char *s = "{\"a\": \"[[[[\\\"[[[[\"}";
    ASSERT_OK(am__json_precheck(s, strlen(s), 2));
    /* \u0000 would cut the string; an escaped backslash before "u0000" is just text */
    const char *nul = "{\"text\": \"great\\u0000 and more\"}";
    ASSERT_FAILS(am__json_precheck(nul, strlen(nul), 4), AMUSE_EFORMAT,
                 "may not contain \\u0000 (byte 15)");
    const char *text = "{\"text\": \"C:\\\\u0000 \\u0001\"}";
    ASSERT_OK(am__json_precheck(text, strlen(text), 4));
}

TEST(v2_parse_messages)
{
    struct am__v2_request req;
    const char *ok = "{\"id\": \"x\", \"inputs\": [{\"name\": \"input\", \"shape\": [1, 2], "
                     "\"datatype\": \"FP32\", \"data\": [[1, 2]]}], \"outputs\": [{\"name\": \"label\"}]}";
    ASSERT_OK(am__v2_parse(ok, strlen(ok), 32, &req));
    ASSERT_STR_EQ(req.id, "x");
    ASSERT_EQ_INT(req.n_inputs, 1);
    ASSERT_EQ_INT(req.inputs[0].shape[1], 2);
    ASSERT_EQ_INT(req.inputs[0].datatype, AM__DT_FP32);
    ASSERT_EQ_INT(req.n_outputs, 1);
    am__v2_request_release(&req);

    const struct {
        const char *body, *needle;
    } bad[] = {
        {"{\"inputs\": []}", "inputs must be a non-empty array"},
        {"{\"inputs\": [{\"name\": 1}]}", "inputs[0].name must be a string"},
        {"{\"inputs\": [{\"name\": \"a\", \"shape\": [-1], \"datatype\": \"FP32\", \"data\": []}]}",
         "inputs[0].shape[0] must be an integer"},
        {"{\"inputs\": [{\"name\": \"a\", \"shape\": [1], \"datatype\": \"FP16\", \"data\": []}]}",
         "inputs[0].datatype 'FP16' is not supported"},
        {"{\"inputs\": [{\"name\": \"a\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": 3}]}",
         "inputs[0].data must be an array"},
        {"{\"id\": 7, \"inputs\": []}", "id must be a string"},
        {"[1, 2]", "must be a JSON object"},
        {"{\"inputs\": [", "truncated"},
        {"{\"inputs\" 3}", "invalid JSON at byte"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_FAILS(am__v2_parse(bad[i].body, strlen(bad[i].body), 32, &req), AMUSE_EFORMAT,
                     bad[i].needle);
        am__v2_request_release(&req);
    }
}

static const char *or_null(const char *s)
{
    return s ? s : "(null)";
}

/* The playground's routes: public, GET only, {path} takes the rest of the path; and which paths
 * below the web root may be served (the files themselves: tests/cli_playground.sh). */
TEST(static_routes)
{
    struct am__request r;
    int matched, n_static = 0;
    memset(&r, 0, sizeof r);
    const struct am__route *rt = am__route_match("GET", "/", &r, &matched);
    ASSERT_TRUE(rt && rt->handler == am__handle_static && rt->scope == 0);
    rt = am__route_match("GET", "/web/img/icons/a.svg", &r, &matched);
    ASSERT_TRUE(rt && rt->handler == am__handle_static && rt->scope == 0);
    ASSERT_TRUE(am__route_match("POST", "/web/app.js", &r, &matched) == NULL);
    ASSERT_EQ_INT(matched, 1);
    ASSERT_TRUE(am__route_match("GET", "/web/", &r, &matched) == NULL);
    ASSERT_EQ_INT(matched, 0);
    ASSERT_TRUE(am__route_match("GET", "/web", &r, &matched) == NULL);
    ASSERT_TRUE(am__route_match("GET", "/index.html", &r, &matched) == NULL);
    for (int i = 0; am__routes[i].method; i++)
        if (am__routes[i].handler == am__handle_static) {
            n_static++;
            ASSERT_TRUE(am__routes[i].scope == 0 && strcmp(am__routes[i].method, "GET") == 0);
        }
    ASSERT_EQ_INT(n_static, 2);

    ASSERT_STR_EQ(or_null(am__static_path_type("index.html")), "text/html; charset=utf-8");
    ASSERT_STR_EQ(or_null(am__static_path_type("app.js")), "text/javascript; charset=utf-8");
    ASSERT_STR_EQ(or_null(am__static_path_type("img/a.b.png")), "image/png");
    ASSERT_STR_EQ(or_null(am__static_path_type("x/y/z.svg")), "image/svg+xml");
    ASSERT_STR_EQ(or_null(am__static_path_type("data.json")), "application/json");
    ASSERT_STR_EQ(or_null(am__static_path_type("style.css")), "text/css; charset=utf-8");
    static const char *const refused[] = {
        "", "/etc/passwd.js", "../x.js", "a/../x.js", "a/..", "./x.js", ".hidden.js",
        "a/.git/config.json", "a//b.js", "a/", "x.txt", "x", "x.", "x.JS", "x.js.bak",
        "a\\..\\b.js", "a\tb.js", "a\x7f.js", "dir.js/", NULL,
    };
    for (int i = 0; refused[i]; i++)
        ASSERT_TRUE(am__static_path_type(refused[i]) == NULL);
    char long_path[600];
    memset(long_path, 'a', sizeof long_path);
    memcpy(long_path + sizeof long_path - 4, ".js", 4);
    ASSERT_TRUE(am__static_path_type(long_path) == NULL);
}

TEST(route_matching)
{
    struct am__request r;
    int matched;
    memset(&r, 0, sizeof r);
    const struct am__route *rt =
        am__route_match("POST", "/v2/models/fashion/versions/3/infer", &r, &matched);
    ASSERT_TRUE(rt && rt->handler == am__handle_infer);
    ASSERT_STR_EQ(r.param_model, "fashion");
    ASSERT_STR_EQ(r.param_version, "3");
    ASSERT_TRUE(am__route_match("GET", "/v2/models/fashion/infer", &r, &matched) == NULL);
    ASSERT_EQ_INT(matched, 1); /* the path exists: 405, not 404 */
    ASSERT_TRUE(am__route_match("GET", "/v2/models//ready", &r, &matched) == NULL);
    ASSERT_EQ_INT(matched, 0);
    ASSERT_TRUE(am__route_match("GET", "/v2/health/live/", &r, &matched) == NULL);
    rt = am__route_match("GET", "/v2/health/live", &r, &matched);
    ASSERT_TRUE(rt && rt->scope == 0);
    /* only the health routes are public (and the playground's files: test static_routes) */
    int public_routes = 0;
    const char *method, *path;
    for (int i = 0; (path = amuse_server_route(i, &method)); i++)
        if (am__routes[i].scope == 0 && am__routes[i].handler != am__handle_static) {
            public_routes++;
            ASSERT_TRUE(strncmp(path, "/v2/health/", 11) == 0);
        }
    ASSERT_EQ_INT(public_routes, 2);
    /* Captures are named: a user's id is r's "user", and no model or version is set. */
    rt = am__route_match("DELETE", "/v1/users/ana-7", &r, &matched);
    ASSERT_TRUE(rt && rt->handler == am__handle_user_delete && rt->scope == AMUSE_SCOPE_ADMIN);
    ASSERT_STR_EQ(am__request_param(&r, "user"), "ana-7");
    ASSERT_TRUE(am__request_param(&r, "model") == NULL);
    ASSERT_TRUE(r.param_model == NULL && r.param_version == NULL);
    rt = am__route_match("GET", "/v1/items/m42", &r, &matched);
    ASSERT_TRUE(rt && rt->handler == am__handle_item_get);
    ASSERT_STR_EQ(am__request_param(&r, "item"), "m42");
    ASSERT_TRUE(am__route_match("GET", "/v1/users/ana-7", &r, &matched) == NULL);
    ASSERT_EQ_INT(matched, 1); /* DELETE only: 405 */
    /* every route that names a user needs the tenant's admin key */
    for (int i = 0; (path = amuse_server_route(i, &method)); i++)
        if (strstr(path, "{user}"))
            ASSERT_EQ_INT(am__routes[i].scope, AMUSE_SCOPE_ADMIN);
    rt = am__route_match("POST", "/v1/audio/transcriptions", &r, &matched);
    ASSERT_TRUE(rt && rt->handler == am__handle_audio_transcriptions &&
                rt->scope == AMUSE_SCOPE_INFER);
}

/* The kind table picks a voice model by its features recipe, never by a name. */
TEST(voice_kind_claims)
{
    cJSON *voice = cJSON_Parse("{\"input\": {\"type\": \"audio\"}, \"features\": {}}");
    cJSON *image = cJSON_Parse("{\"input\": {\"type\": \"image\"}}");
    cJSON *odd = cJSON_Parse("{\"features\": 3}");
    ASSERT_TRUE(am__model_kind_find(voice) == &am__kind_voice);
    ASSERT_TRUE(am__kind_voice.flags & AM__KIND_VOICE);
    ASSERT_TRUE(am__model_kind_find(image) == &am__kind_network);
    ASSERT_TRUE(am__model_kind_find(odd) == &am__kind_network); /* not an object: not claimed */
    ASSERT_TRUE(!(am__kind_network.flags & AM__KIND_VOICE));
    cJSON_Delete(voice);
    cJSON_Delete(image);
    cJSON_Delete(odd);
}

TEST(openai_error_shape)
{
    ASSERT_TRUE(am__openai_path("/v1/models"));
    ASSERT_TRUE(am__openai_path("/v1"));
    ASSERT_TRUE(!am__openai_path("/v10/models"));
    ASSERT_TRUE(!am__openai_path("/v2/models"));
    struct am__buf b = {0};
    am__openai_error(&b, 401, "no \"key\"");
    ASSERT_STR_EQ(b.data, "{\"error\": {\"message\": \"no \\\"key\\\"\", \"type\": "
                          "\"authentication_error\", \"param\": null, \"code\": "
                          "\"invalid_api_key\"}}");
    am__buf_release(&b);
    am__openai_error(&b, 422, "x");
    ASSERT_CONTAINS(b.data, "\"type\": \"invalid_request_error\"");
    am__buf_release(&b);
    am__openai_error(&b, 502, "x");
    ASSERT_CONTAINS(b.data, "\"type\": \"server_error\"");
    am__buf_release(&b);
    /* the error shape follows the path */
    struct am__request r;
    memset(&r, 0, sizeof r);
    r.url = "/v1/embeddings";
    am__reply_error(&r, 400, "input must be a string");
    ASSERT_CONTAINS(r.out.data, "\"code\": \"invalid_request\"");
    r.url = "/v2/models/m/infer";
    am__reply_error(&r, 400, "bad");
    ASSERT_STR_EQ(r.out.data, "{\"error\": \"bad\"}");
    am__buf_release(&r.out);
}

TEST(metrics_histogram_buckets)
{
    struct am__hist_batch h;
    memset(&h, 0, sizeof h);
    am__hist_batch_add(&h, 1);   /* le 1 */
    am__hist_batch_add(&h, 2);   /* le 2 */
    am__hist_batch_add(&h, 3);   /* le 4 */
    am__hist_batch_add(&h, 512); /* le 512 */
    am__hist_batch_add(&h, 513); /* +Inf */
    ASSERT_EQ_INT((int)h.counts[0], 1);
    ASSERT_EQ_INT((int)h.counts[1], 1);
    ASSERT_EQ_INT((int)h.counts[2], 1);
    ASSERT_EQ_INT((int)h.counts[AM__BATCH_BUCKETS - 1], 1);
    ASSERT_EQ_INT((int)h.counts[AM__BATCH_BUCKETS], 1);
    ASSERT_NEAR(h.sum, 1031, 1e-9);
    /* request series are capped: past the cap, new models count as "(other)" */
    struct am__metrics *m;
    ASSERT_OK(am__metrics_new(&m));
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "model%d", i);
        am__metrics_request(m, "GET", "/v2/models/{model}", name, 404, 0.001);
    }
    am__metrics_free(m);
}

/* ------------------------------------------------------------------ CORS allowlist */

static void cors_clear(struct amuse_server *s)
{
    for (int i = 0; i < s->n_cors; i++)
        free(s->cors[i]);
    free(s->cors);
    s->cors = NULL;
    s->n_cors = 0;
}

TEST(cors_allowlist_parse)
{
    struct amuse_server s;
    memset(&s, 0, sizeof s);
    ASSERT_OK(am__cors_parse(&s, " https://a.example ,http://localhost:3000,, http://[::1]:8080 "));
    ASSERT_EQ_INT(s.n_cors, 3);
    ASSERT_TRUE(strcmp(s.cors[0], "https://a.example") == 0);
    ASSERT_TRUE(strcmp(s.cors[1], "http://localhost:3000") == 0);
    ASSERT_TRUE(strcmp(s.cors[2], "http://[::1]:8080") == 0);
    cors_clear(&s);
    static const char *const bad[] = {"a.example", "https://a.example/", "https://a.example/app",
                                      "ftp://a.example", "*", "https://", "https://a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_FAILS(am__cors_parse(&s, bad[i]), AMUSE_EINVAL, "is not an origin");
        cors_clear(&s);
    }
    ASSERT_FAILS(am__cors_parse(&s, " , "), AMUSE_EINVAL, "no origin given");
    cors_clear(&s);
}

/* ------------------------------------------------------------------ batcher */

struct recorder {
    pthread_mutex_t lock;
    int batches, largest;
};

/* Doubles each job's input; records batch sizes. */
static void run_double(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    struct recorder *rec = ctx;
    pthread_mutex_lock(&rec->lock);
    rec->batches++;
    if (samples > rec->largest)
        rec->largest = (int)samples;
    pthread_mutex_unlock(&rec->lock);
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < jobs[i]->samples; k++)
            jobs[i]->output[k] = 2 * jobs[i]->input[k];
}

/* A gate the worker stops at before each batch, until the test opens it: the test decides when a
 * batch runs, so no test sleeps or races a busy machine. entered counts batches that reached the
 * gate; every wait is bounded (30 s) and fails the test rather than hang. */
struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int entered, open;
    struct recorder rec;
    void (*then)(void *ctx, struct am__job **jobs, int n, int64_t samples);
};

static void gate_init(struct gate *g, void (*then)(void *, struct am__job **, int, int64_t))
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->entered = g->open = 0;
    g->rec = (struct recorder){PTHREAD_MUTEX_INITIALIZER, 0, 0};
    g->then = then;
}

static void run_gated(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    struct gate *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->entered++;
    pthread_cond_broadcast(&g->cond);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
    g->then(g->then == run_double ? (void *)&g->rec : NULL, jobs, n, samples);
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

/* 1 once at least k batches reached the gate, 0 after 30 s. */
static int gate_wait_entered(struct gate *g, int k)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&g->lock);
    int rc = 0;
    while (g->entered < k && rc == 0)
        rc = pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    int ok = g->entered >= k;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

static void gate_destroy(struct gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

/* 1 once the batcher has exactly k jobs queued, 0 after 30 s (polls its statistics). */
static int wait_queued(struct am__batcher *b, int k)
{
    for (int i = 0; i < 30000; i++) {
        struct am__batch_stats st;
        am__batcher_stats(b, &st);
        if (st.queued == k)
            return 1;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

struct client {
    struct am__batcher *b;
    float value;
    int status, wait;
    float result;
};

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct am__job *j = am__job_new();
    j->samples = 1;
    j->input = malloc(sizeof(float));
    j->output = malloc(sizeof(float));
    j->input[0] = c->value;
    c->status = am__batcher_submit(c->b, j);
    if (c->status == AMUSE_OK) {
        c->wait = am__job_wait(j, am__now() + 30);
        c->result = j->output[0];
    }
    am__job_unref(j);
    return NULL;
}

TEST(batcher_forms_batches)
{
    /* The first client's job holds the worker at the gate while the 15 others queue up; opened,
     * the worker takes them 8 at a time. */
    struct gate g;
    gate_init(&g, run_double);
    struct am__batcher_options o = {8, 200000, 64, 0}; /* wait up to 200 ms to fill 8 */
    struct am__batcher *b;
    ASSERT_OK(am__batcher_start(&b, &o, run_gated, &g, "double"));
    enum { N = 16 };
    pthread_t t[N];
    struct client c[N];
    for (int i = 0; i < N; i++) {
        c[i] = (struct client){b, (float)i, -99, -99, 0};
        pthread_create(&t[i], NULL, client_main, &c[i]);
        if (i == 0)
            ASSERT_TRUE(gate_wait_entered(&g, 1));
    }
    ASSERT_TRUE(wait_queued(b, N - 1));
    gate_open(&g);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ_INT(c[i].status, AMUSE_OK);
        ASSERT_EQ_INT(c[i].wait, 0);
        ASSERT_NEAR(c[i].result, 2.0 * i, 0);
    }
    struct am__batch_stats st;
    am__batcher_stats(b, &st);
    ASSERT_EQ_INT(st.requests, N);
    am__batcher_stop(b);
    ASSERT_EQ_INT(g.rec.largest, 8);
    ASSERT_EQ_INT(g.rec.batches, 3); /* 1, then 8 and 7 */
    gate_destroy(&g);
}

TEST(batcher_full_queue_and_timeout)
{
    /* one sample per batch, one queued job; j[0] is held at the gate until the test opens it */
    struct gate g;
    gate_init(&g, run_double);
    struct am__batcher_options o = {1, 0, 1, 0};
    struct am__batcher *b;
    ASSERT_OK(am__batcher_start(&b, &o, run_gated, &g, "slow"));
    struct am__job *j[3];
    for (int i = 0; i < 3; i++) {
        j[i] = am__job_new();
        j[i]->samples = 1;
        j[i]->input = calloc(1, sizeof(float));
        j[i]->output = calloc(1, sizeof(float));
    }
    ASSERT_OK(am__batcher_submit(b, j[0]));
    ASSERT_TRUE(gate_wait_entered(&g, 1)); /* the worker took j[0]: the queue is empty again */
    ASSERT_OK(am__batcher_submit(b, j[1]));
    ASSERT_FAILS(am__batcher_submit(b, j[2]), AMUSE_ETOOBIG, "queue full");
    /* j[1] waits behind j[0], which cannot finish: a 50 ms deadline cancels it while queued */
    ASSERT_EQ_INT(am__job_wait(j[1], am__now() + 0.05), -1);
    gate_open(&g);
    ASSERT_EQ_INT(am__job_wait(j[0], am__now() + 30), 0);
    struct am__batch_stats st;
    am__batcher_stats(b, &st);
    ASSERT_EQ_INT(st.timed_out, 1);
    ASSERT_EQ_INT(st.rejected_full, 1);
    ASSERT_EQ_INT(st.queued, 0);
    for (int i = 0; i < 3; i++)
        am__job_unref(j[i]);
    am__batcher_stop(b);
    ASSERT_EQ_INT(g.rec.batches, 1); /* the cancelled job never ran */
    gate_destroy(&g);
}

TEST(batcher_wait_slices_and_cancel)
{
    struct gate g;
    gate_init(&g, run_double);
    struct am__batcher_options o = {1, 0, 8, 0}; /* one sample per batch */
    struct am__batcher *b;
    ASSERT_OK(am__batcher_start(&b, &o, run_gated, &g, "slow"));
    struct am__job *j[3];
    for (int i = 0; i < 3; i++) {
        j[i] = am__job_new();
        j[i]->samples = 1;
        j[i]->input = calloc(1, sizeof(float));
        j[i]->output = calloc(1, sizeof(float));
    }
    ASSERT_OK(am__batcher_submit(b, j[0]));
    ASSERT_TRUE(gate_wait_entered(&g, 1)); /* the worker holds j[0] at the gate */
    ASSERT_OK(am__batcher_submit(b, j[1]));
    ASSERT_OK(am__batcher_submit(b, j[2]));
    /* a slice ends before the deadline: 2, and the job is left queued */
    ASSERT_EQ_INT(am__job_wait_until(j[1], am__now() + 30, am__now() + 0.02), 2);
    struct am__batch_stats st;
    am__batcher_stats(b, &st);
    ASSERT_EQ_INT(st.queued, 2);
    ASSERT_EQ_INT(st.timed_out, 0);
    /* its client went away: cancelled, out of the queue; cancelling twice counts once */
    am__job_cancel(j[1]);
    am__job_cancel(j[1]);
    /* a running job's cancellation discards its result */
    am__job_cancel(j[0]);
    gate_open(&g);
    ASSERT_EQ_INT(am__job_wait(j[2], am__now() + 30), 0);
    am__batcher_stats(b, &st);
    ASSERT_EQ_INT(st.cancelled, 2);
    ASSERT_EQ_INT(st.queued, 0);
    for (int i = 0; i < 3; i++)
        am__job_unref(j[i]);
    am__batcher_stop(b);
    ASSERT_EQ_INT(g.rec.batches, 2); /* j[0] and j[2]; j[1] never ran */
    gate_destroy(&g);
}

/* A generator: emits three chunks, then finishes. */
static void run_generate(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    (void)ctx;
    (void)samples;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            char piece[16];
            snprintf(piece, sizeof piece, "tok%d", k);
            am__job_emit(jobs[i], piece, strlen(piece) + 1);
        }
}

/* Continuous batching: a job that sets `more` runs again with the next call, queued jobs join
 * it between calls, a job cancelled while it runs is handed to run once more (to free what it
 * holds) and then leaves. The run function records each call's job count, emits the call's
 * number to every job, and returns only when the test allows (so joins are deterministic). */
struct stepper {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int allowed, calls, sizes[16], cancelled_seen;
};

static void run_steps(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    struct stepper *s = ctx;
    (void)samples;
    pthread_mutex_lock(&s->lock);
    int call = s->calls++;
    s->sizes[call] = n;
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < n; i++) {
        int *left = jobs[i]->task_arg;
        if (am__job_cancelled(jobs[i])) {
            pthread_mutex_lock(&s->lock);
            s->cancelled_seen++;
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        char piece[8];
        snprintf(piece, sizeof piece, "%d", call);
        am__job_emit(jobs[i], piece, strlen(piece) + 1);
        jobs[i]->more = --*left > 0;
    }
    pthread_mutex_lock(&s->lock);
    while (s->allowed <= call)
        pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
}

static void allow_call(struct stepper *s)
{
    pthread_mutex_lock(&s->lock);
    s->allowed++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static struct am__job *steps_job(struct am__batcher *b, int steps)
{
    struct am__job *j = am__job_new();
    j->samples = 1;
    int *left = malloc(sizeof *left);
    *left = steps;
    j->task_arg = left;
    ASSERT_OK(am__batcher_submit(b, j));
    return j;
}

/* The next chunk of j (waiting for it), as an int. */
static int next_piece(struct am__job *j)
{
    struct am__chunk *c;
    while (!(c = am__job_next_chunk(j)))
        ASSERT_TRUE(am__job_wait(j, am__now() + 10) >= 0);
    int v = atoi(c->data);
    free(c);
    return v;
}

TEST(batcher_continuous)
{
    struct stepper s = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, {0}, 0};
    struct am__batcher_options o = {4, 0, 8, 0};
    struct am__batcher *b;
    ASSERT_OK(am__batcher_start(&b, &o, run_steps, &s, "steps"));
    struct am__job *a = steps_job(b, 3);
    ASSERT_EQ_INT(next_piece(a), 0);   /* call 0: a alone */
    struct am__job *bb = steps_job(b, 2); /* queued while call 0 runs */
    allow_call(&s);
    ASSERT_EQ_INT(next_piece(a), 1);   /* call 1: a carried, bb joined */
    ASSERT_EQ_INT(next_piece(bb), 1);
    struct am__job *c = steps_job(b, 10);
    allow_call(&s);
    ASSERT_EQ_INT(next_piece(a), 2);   /* call 2: a's last, bb's last, c joined */
    ASSERT_EQ_INT(next_piece(bb), 2);
    ASSERT_EQ_INT(next_piece(c), 2);
    am__job_cancel(c);                 /* c's client goes away while it runs */
    allow_call(&s);
    ASSERT_EQ_INT(am__job_wait(a, am__now() + 10), 0);
    ASSERT_EQ_INT(am__job_wait(bb, am__now() + 10), 0);
    allow_call(&s);                    /* call 3: c, cancelled, leaves */
    ASSERT_EQ_INT(am__job_wait(c, am__now() + 10), 0);
    ASSERT_TRUE(am__job_next_chunk(a) == NULL && am__job_next_chunk(bb) == NULL);
    am__job_unref(a); /* before the batcher goes: a job's lock is its batcher's */
    am__job_unref(bb);
    am__job_unref(c);
    am__batcher_stop(b);
    ASSERT_EQ_INT(s.calls, 4);
    ASSERT_EQ_INT(s.sizes[0], 1);
    ASSERT_EQ_INT(s.sizes[1], 2);
    ASSERT_EQ_INT(s.sizes[2], 3);
    ASSERT_EQ_INT(s.sizes[3], 1);
    ASSERT_EQ_INT(s.cancelled_seen, 1);
}

TEST(batcher_partial_results)
{
    struct am__batcher_options o = {4, 0, 4, 0};
    struct am__batcher *b;
    ASSERT_OK(am__batcher_start(&b, &o, run_generate, NULL, "gen"));
    struct am__job *j = am__job_new();
    j->samples = 1;
    ASSERT_OK(am__batcher_submit(b, j));
    int got = 0, w;
    while ((w = am__job_wait(j, am__now() + 10)) == 1) {
        struct am__chunk *c;
        while ((c = am__job_next_chunk(j))) {
            char want[16];
            snprintf(want, sizeof want, "tok%d", got++);
            ASSERT_STR_EQ(c->data, want);
            free(c);
        }
    }
    ASSERT_EQ_INT(w, 0);
    struct am__chunk *c;
    while ((c = am__job_next_chunk(j))) { /* chunks that came with the finish */
        char want[16];
        snprintf(want, sizeof want, "tok%d", got++);
        ASSERT_STR_EQ(c->data, want);
        free(c);
    }
    ASSERT_EQ_INT(got, 3);
    am__job_unref(j);
    am__batcher_stop(b);
}

/* ------------------------------------------------------------------ key store */

static const char *test_db_url(void)
{
    const char *u = getenv("AMUSE_TEST_DB_URL");
    return u && *u ? u : NULL;
}

/* The database a key-store test opens: the SQLite file at path, or AMUSE_TEST_DB_URL with the
 * key store's tables dropped, so every test starts from an empty store. */
static const char *store_db(const char *path)
{
    const char *u = test_db_url();
    if (!u)
        return path;
    struct am__db *db = NULL;
    int version = 0;
    ASSERT_OK(am__db_open(&db, u));
    ASSERT_OK(am__db_version(db, "keys", &version)); /* makes schema_versions if missing */
    ASSERT_OK(am__db_exec(db, "DROP TABLE IF EXISTS api_keys; DROP TABLE IF EXISTS usage;"
                              " DROP TABLE IF EXISTS usage_daily; DROP TABLE IF EXISTS meta;"
                              " DELETE FROM schema_versions WHERE component = 'keys'"));
    am__db_close(db);
    return u;
}

TEST(keystore)
{
    char path[] = "/tmp/amuse-test-keys-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    unlink(path);
    struct amuse_keystore *ks;
    const char *db_url = store_db(path);
    ASSERT_OK(amuse_keystore_open(&ks, db_url));
    char admin[AMUSE_KEY_TOKEN_MAX], infer[AMUSE_KEY_TOKEN_MAX];
    struct amuse_key_info a, i, got;
    ASSERT_OK(amuse_keystore_create(ks, "default", AMUSE_SCOPE_ADMIN, admin, &a));
    ASSERT_OK(amuse_keystore_create(ks, "acme", AMUSE_SCOPE_INFER, infer, &i));
    ASSERT_TRUE(strncmp(admin, "amuse_", 6) == 0 && strlen(admin) == 62);
    char scratch[AMUSE_KEY_TOKEN_MAX];
    ASSERT_FAILS(amuse_keystore_create(ks, "bad tenant", AMUSE_SCOPE_INFER, scratch, NULL),
                 AMUSE_EINVAL, "tenant 'bad tenant'");
    ASSERT_OK(amuse_keystore_verify(ks, infer, strlen(infer), &got));
    ASSERT_STR_EQ(got.tenant, "acme");
    ASSERT_EQ_INT(got.scope, AMUSE_SCOPE_INFER);
    char wrong[AMUSE_KEY_TOKEN_MAX];
    memcpy(wrong, infer, sizeof wrong);
    wrong[30] = wrong[30] == 'A' ? 'B' : 'A';
    ASSERT_FAILS(amuse_keystore_verify(ks, wrong, strlen(wrong), NULL), AMUSE_ENOTFOUND, "wrong secret");
    ASSERT_FAILS(amuse_keystore_verify(ks, "Bearer", 6, NULL), AMUSE_ENOTFOUND, "not an amuse key");
    int64_t n;
    ASSERT_OK(amuse_keystore_active_count(ks, &n));
    ASSERT_EQ_INT(n, 2);
    ASSERT_OK(amuse_keystore_revoke(ks, i.id));
    ASSERT_FAILS(amuse_keystore_revoke(ks, i.id), AMUSE_EINVAL, "already revoked");
    ASSERT_FAILS(amuse_keystore_revoke(ks, "000000000000"), AMUSE_ENOTFOUND, "no API key");
    ASSERT_FAILS(amuse_keystore_verify(ks, infer, strlen(infer), NULL), AMUSE_ENOTFOUND, "revoked");
    amuse_keystore_close(ks);

    /* The salt persists: the admin key still verifies after a reopen. */
    ASSERT_OK(amuse_keystore_open(&ks, db_url));
    ASSERT_OK(amuse_keystore_verify(ks, admin, strlen(admin), &got));
    struct amuse_key_info *keys;
    ASSERT_OK(amuse_keystore_list(ks, &keys, &n));
    ASSERT_EQ_INT(n, 2);
    ASSERT_STR_EQ(keys[0].id, a.id);
    ASSERT_TRUE(keys[1].revoked != 0);
    free(keys);
    amuse_keystore_close(ks);

    if (test_db_url())
        return; /* the file scan below is SQLite's */
    /* The database never holds a token. */
    FILE *f = fopen(path, "rb");
    ASSERT_TRUE(f != NULL);
    static char db[1 << 20];
    size_t len = fread(db, 1, sizeof db, f);
    fclose(f);
    ASSERT_TRUE(memmem(db, len, admin + 19, 20) == NULL);
    char side[sizeof path + 8];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

TEST(rate_limit_and_usage)
{
    char path[] = "/tmp/amuse-test-usage-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    unlink(path);
    struct amuse_keystore *ks;
    ASSERT_OK(amuse_keystore_open(&ks, store_db(path)));
    char token[AMUSE_KEY_TOKEN_MAX];
    struct amuse_key_info k;
    ASSERT_OK(amuse_keystore_create(ks, "acme", AMUSE_SCOPE_INFER, token, &k));
    struct am__usage *u;
    ASSERT_OK(am__usage_new(&u, ks, 3600, NULL));
    int retry;
    /* The clock is an input: t is what the bucket sees, whatever the machine is doing. */
    double t = 1000;
    /* burst 2 at 1 a second: two pass, the third waits a second */
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t, &retry), 1);
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t, &retry), 1);
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t + 0.5, &retry), 0);
    ASSERT_EQ_INT(retry, 1);
    ASSERT_EQ_INT(am__rate_take_at(u, "0123456789ab", 1, 2, t + 0.5, &retry), 1); /* own bucket */
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 0, 0, t + 0.5, &retry), 1);           /* off */
    /* half a token came back by t + 0.5; the other half by t + 1: one passes, the next waits */
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t + 1.0, &retry), 1);
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t + 1.0, &retry), 0);
    /* a long pause refills to the burst, never beyond it */
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t + 100, &retry), 1);
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t + 100, &retry), 1);
    ASSERT_EQ_INT(am__rate_take_at(u, k.id, 1, 2, t + 100, &retry), 0);
    /* Retry-After rounds up to whole seconds: at 1 a second with no token, 1 s; at 4 a second
     * (a quarter second), still 1 */
    ASSERT_EQ_INT(retry, 1);
    ASSERT_EQ_INT(am__rate_take_at(u, "fedcba987654", 4, 1, t, &retry), 1);
    ASSERT_EQ_INT(am__rate_take_at(u, "fedcba987654", 4, 1, t, &retry), 0);
    ASSERT_EQ_INT(retry, 1);
    ASSERT_EQ_INT(am__rate_take_at(u, "fedcba987654", 4, 1, t + 0.25, &retry), 1);
    /* the test-control switch freezes the clock the server's requests read */
    ASSERT_OK(amuse_test_control(AMUSE_TESTCTRL_FREEZE_RATE_CLOCK, 1));
    double frozen = am__rate_clock();
    ASSERT_TRUE(am__rate_clock() == frozen);
    ASSERT_OK(amuse_test_control(AMUSE_TESTCTRL_FREEZE_RATE_CLOCK, 0));
    ASSERT_TRUE(am__rate_clock() >= frozen);
    ASSERT_FAILS(amuse_test_control(999), AMUSE_EINVAL, "unknown op 999");
    ASSERT_OK(amuse_test_control(AMUSE_TESTCTRL_BATCH_SLEEP_MS, 250));
    ASSERT_EQ_INT(am__test_batch_sleep_ms(), 250);
    ASSERT_FAILS(amuse_test_control(AMUSE_TESTCTRL_BATCH_SLEEP_MS, 60001), AMUSE_EINVAL,
                 "not 0 to 60000");
    ASSERT_EQ_INT(am__test_batch_sleep_ms(), 250);
    ASSERT_OK(amuse_test_control(AMUSE_TESTCTRL_BATCH_SLEEP_MS, 0));
    /* many keys: the table grows */
    char id[16];
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "%012d", i);
        am__usage_add(u, id, 0);
    }
    am__usage_add(u, k.id, 5);
    am__usage_add(u, k.id, 2);
    ASSERT_OK(am__usage_flush(u));
    am__usage_add(u, k.id, 1);
    am__usage_free(u); /* flushes the last request */
    struct amuse_key_info *keys;
    int64_t n;
    ASSERT_OK(amuse_keystore_list(ks, &keys, &n));
    ASSERT_EQ_INT((int)n, 1);
    ASSERT_EQ_INT((int)keys[0].requests, 3);
    ASSERT_EQ_INT((int)keys[0].items, 8);
    free(keys);
    amuse_keystore_close(ks);
    unlink(path);
    char side[sizeof path + 8];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* Daily quotas with the time handed in: a key's and a tenant's counts are separate, a new UTC day
 * starts again, and the counts survive a restart (flushed, then read back by a new table). */
TEST(daily_quotas)
{
    char path[] = "/tmp/amuse-test-quota-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    unlink(path);
    struct amuse_keystore *ks;
    ASSERT_OK(amuse_keystore_open(&ks, store_db(path)));
    struct am__usage *keys, *tenants;
    ASSERT_OK(am__usage_new(&keys, ks, 3600, NULL));
    ASSERT_OK(am__usage_new_tenants(&tenants, ks, 3600, NULL));
    const int64_t noon = 20000 * 86400LL + 43200; /* a day's noon, UTC */
    int retry;
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 2, noon, &retry), 1);
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 2, noon + 1, &retry), 1);
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 2, noon + 2, &retry), 0);
    ASSERT_EQ_INT(retry, 43198); /* until midnight */
    ASSERT_EQ_INT(am__quota_take(keys, "bbbbbbbbbbbb", 2, noon, &retry), 1); /* its own count */
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 0, noon, &retry), 1); /* no quota */
    /* a tenant named like a key id is another subject */
    ASSERT_EQ_INT(am__quota_take(tenants, "aaaaaaaaaaaa", 1, noon, &retry), 1);
    ASSERT_EQ_INT(am__quota_take(tenants, "aaaaaaaaaaaa", 1, noon, &retry), 0);
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 2, noon + 43200, &retry), 1); /* next day */
    am__usage_free(keys);
    am__usage_free(tenants);
    /* a restart the same day: the next day's one request is remembered */
    ASSERT_OK(am__usage_new(&keys, ks, 3600, NULL));
    ASSERT_OK(am__usage_new_tenants(&tenants, ks, 3600, NULL));
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 2, noon + 43300, &retry), 1);
    ASSERT_EQ_INT(am__quota_take(keys, "aaaaaaaaaaaa", 2, noon + 43300, &retry), 0);
    ASSERT_EQ_INT(am__quota_take(tenants, "aaaaaaaaaaaa", 1, noon + 5, &retry), 0);
    ASSERT_EQ_INT(am__quota_take(tenants, "bbbbbbbbbbbb", 1, noon + 5, &retry), 1);
    am__usage_free(keys);
    am__usage_free(tenants);
    struct amuse_key_info *list;
    int64_t n;
    ASSERT_OK(amuse_keystore_list(ks, &list, &n)); /* daily counts are not key usage rows */
    ASSERT_EQ_INT((int)n, 0);
    free(list);
    amuse_keystore_close(ks);
    unlink(path);
    char side[sizeof path + 8];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* Two servers on one database (two replicas): a key made by one verifies on the other, a revoke
 * through either is refused by both at the next request (no cache), usage totals add up, and a
 * daily quota is shared: each replica sees the other's requests at its next flush or, at the
 * latest, one flush interval later (the documented bound). Times are handed in. */
TEST(shared_store_between_replicas)
{
    char path[] = "/tmp/amuse-test-shared-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    unlink(path);
    const char *db_url = store_db(path);
    struct amuse_keystore *a, *b;
    ASSERT_OK(amuse_keystore_open(&a, db_url));
    ASSERT_OK(amuse_keystore_open(&b, db_url));
    char token[AMUSE_KEY_TOKEN_MAX], other[AMUSE_KEY_TOKEN_MAX];
    struct amuse_key_info k, o, got;
    ASSERT_OK(amuse_keystore_create(a, "acme", AMUSE_SCOPE_INFER, token, &k));
    ASSERT_OK(amuse_keystore_create(b, "acme", AMUSE_SCOPE_INFER, other, &o));
    ASSERT_OK(amuse_keystore_verify(b, token, strlen(token), &got));
    ASSERT_STR_EQ(got.id, k.id);
    ASSERT_OK(amuse_keystore_verify(a, other, strlen(other), &got));
    ASSERT_OK(amuse_keystore_revoke(b, k.id));
    ASSERT_FAILS(amuse_keystore_verify(a, token, strlen(token), NULL), AMUSE_ENOTFOUND, "revoked");
    ASSERT_FAILS(amuse_keystore_verify(b, token, strlen(token), NULL), AMUSE_ENOTFOUND, "revoked");
    ASSERT_FAILS(amuse_keystore_revoke(a, k.id), AMUSE_EINVAL, "already revoked");

    /* Daily quota of 5 for key o, flush interval 60 s. */
    struct am__usage *ua, *ub;
    ASSERT_OK(am__usage_new(&ua, a, 60, NULL));
    ASSERT_OK(am__usage_new(&ub, b, 60, NULL));
    const int64_t t = 20000 * 86400LL + 3600;
    int retry;
    ASSERT_EQ_INT(am__quota_take(ub, o.id, 5, t, &retry), 1);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(am__quota_take(ua, o.id, 5, t, &retry), 1);
    ASSERT_OK(am__usage_flush(ua)); /* the database: 3 */
    ASSERT_OK(am__usage_flush(ub)); /* 4, and b learns it from its flush */
    ASSERT_EQ_INT(am__quota_take(ub, o.id, 5, t + 1, &retry), 1);
    ASSERT_EQ_INT(am__quota_take(ub, o.id, 5, t + 1, &retry), 0);
    /* a flushed before b: it knows 3 and admits one more than the shared quota allows... */
    ASSERT_EQ_INT(am__quota_take(ua, o.id, 5, t + 1, &retry), 1);
    /* ...until its flush interval has passed and it reads the database again: 4 flushed + its
     * own unflushed one = 5, so it refuses, though b's last request is not flushed yet. */
    ASSERT_EQ_INT(am__quota_take(ua, o.id, 5, t + 61, &retry), 0);
    ASSERT_OK(am__usage_flush(ua));
    ASSERT_OK(am__usage_flush(ub));
    int64_t daily = 0;
    char subject[32];
    snprintf(subject, sizeof subject, "k:%s", o.id);
    ASSERT_OK(am__keystore_daily(a, subject, t / 86400, &daily));
    ASSERT_EQ_INT((int)daily, 6);

    /* Usage totals from both replicas add up in the one table. */
    am__usage_add(ua, o.id, 2);
    am__usage_add(ub, o.id, 3);
    am__usage_add(ub, o.id, 4);
    am__usage_free(ua);
    am__usage_free(ub); /* each flushes what it has */
    struct amuse_key_info *keys;
    int64_t n;
    ASSERT_OK(amuse_keystore_list(a, &keys, &n));
    ASSERT_EQ_INT((int)n, 2);
    ASSERT_STR_EQ(keys[0].id, k.id); /* creation order */
    ASSERT_EQ_INT((int)keys[1].requests, 3);
    ASSERT_EQ_INT((int)keys[1].items, 9);
    free(keys);
    amuse_keystore_close(a);
    amuse_keystore_close(b);
    unlink(path);
    char side[sizeof path + 8];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* The key cache of a replica on a shared database: a key revoked through another store is still
 * trusted until the cached row is max_age old, and refused from then on; a revoke through the
 * store itself is seen at once. The clock is handed in. */
static double fake_now;
static double fake_clock(void) { return fake_now; }

TEST(key_cache_bounds_revocation)
{
    char path[] = "/tmp/amuse-test-cache-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    unlink(path);
    const char *db_url = store_db(path);
    struct amuse_keystore *a, *b;
    ASSERT_OK(amuse_keystore_open(&a, db_url));
    ASSERT_OK(amuse_keystore_open(&b, db_url));
    am__keystore_set_cache(b, 5, fake_clock);
    char t1[AMUSE_KEY_TOKEN_MAX], t2[AMUSE_KEY_TOKEN_MAX];
    struct amuse_key_info k1, k2;
    ASSERT_OK(amuse_keystore_create(a, "acme", AMUSE_SCOPE_INFER, t1, &k1));
    ASSERT_OK(amuse_keystore_create(a, "acme", AMUSE_SCOPE_INFER, t2, &k2));
    fake_now = 100;
    ASSERT_OK(amuse_keystore_verify(b, t1, strlen(t1), NULL)); /* read, and kept */
    ASSERT_OK(amuse_keystore_verify(b, t2, strlen(t2), NULL));
    ASSERT_OK(amuse_keystore_revoke(a, k1.id)); /* elsewhere */
    fake_now = 104.9;
    ASSERT_OK(amuse_keystore_verify(b, t1, strlen(t1), NULL)); /* within the bound: trusted */
    ASSERT_FAILS(amuse_keystore_verify(a, t1, strlen(t1), NULL), AMUSE_ENOTFOUND, "revoked");
    fake_now = 105;
    ASSERT_FAILS(amuse_keystore_verify(b, t1, strlen(t1), NULL), AMUSE_ENOTFOUND, "revoked");
    /* the refusal is cached too, and a wrong secret for a cached key is still wrong */
    ASSERT_FAILS(amuse_keystore_verify(b, t1, strlen(t1), NULL), AMUSE_ENOTFOUND, "revoked");
    char wrong[AMUSE_KEY_TOKEN_MAX];
    memcpy(wrong, t2, sizeof wrong);
    wrong[30] = wrong[30] == 'A' ? 'B' : 'A';
    ASSERT_FAILS(amuse_keystore_verify(b, wrong, strlen(wrong), NULL), AMUSE_ENOTFOUND,
                 "wrong secret");
    /* revoked through b itself: at once, whatever the cache holds */
    ASSERT_OK(amuse_keystore_revoke(b, k2.id));
    ASSERT_FAILS(amuse_keystore_verify(b, t2, strlen(t2), NULL), AMUSE_ENOTFOUND, "revoked");
    /* off again: every verification reads the table */
    am__keystore_set_cache(b, 0, NULL);
    ASSERT_FAILS(amuse_keystore_verify(b, t1, strlen(t1), NULL), AMUSE_ENOTFOUND, "revoked");
    amuse_keystore_close(a);
    amuse_keystore_close(b);
    unlink(path);
    char side[sizeof path + 8];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

/* A model's tenants file: names one a line, comments and blanks ignored; no file is public; a
 * bad name fails naming the file and line. */
TEST(tenants_file)
{
    char dir[] = "/tmp/amuse-test-tenants-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    struct am__tenants *t = NULL;
    ASSERT_OK(am__tenants_load(dir, &t));
    ASSERT_TRUE(t == NULL); /* public */
    ASSERT_EQ_INT(am__tenants_allow(t, "anyone"), 1);
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/tenants", dir);
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs("# owners\n\nacme\n  beta.eu  # the EU arm\r\n", f);
    fclose(f);
    ASSERT_OK(am__tenants_load(dir, &t));
    ASSERT_TRUE(t != NULL);
    ASSERT_EQ_INT(am__tenants_allow(t, "acme"), 1);
    ASSERT_EQ_INT(am__tenants_allow(t, "beta.eu"), 1);
    ASSERT_EQ_INT(am__tenants_allow(t, "beta"), 0);
    ASSERT_EQ_INT(am__tenants_allow(t, ""), 0);
    am__tenants_free(t);
    f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    fputs("acme\n\nnot a name\n", f);
    fclose(f);
    t = NULL;
    int rc = am__tenants_load(dir, &t);
    ASSERT_EQ_INT(rc, AMUSE_EFORMAT);
    ASSERT_TRUE(t == NULL);
    ASSERT_TRUE(strstr(amuse_last_error(), "tenants: line 3: 'not a name' is not a tenant name") !=
                NULL);
    unlink(path);
    rmdir(dir);
}

/* A job carrying its own task: the run function calls it, as the word-vector worker does. */
static void run_tasks(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    (void)ctx;
    (void)samples;
    for (int i = 0; i < n; i++)
        if (jobs[i]->task)
            jobs[i]->task(NULL, jobs[i]);
}

static void fill_task(const struct am__model *m, struct am__job *j)
{
    (void)m;
    memset(j->task_arg, 0x5a, 64); /* writes the job's own memory, even after the waiter left */
}

TEST(batcher_task_outlives_its_waiter)
{
    /* the worker holds the batch at the gate: the waiter gives up after 50 ms while the job is
     * running, drops its reference and leaves; then the gate opens and the task still writes
     * task_arg, which must belong to the job (ASan would report a use after free otherwise, and
     * a leak if the job did not free it) */
    struct gate g;
    gate_init(&g, run_tasks);
    struct am__batcher_options o = {4, 0, 8, 0};
    struct am__batcher *b;
    ASSERT_OK(am__batcher_start(&b, &o, run_gated, &g, "tasks"));
    struct am__job *j = am__job_new();
    ASSERT_TRUE(j != NULL);
    j->samples = 1;
    j->task = fill_task;
    j->task_arg = malloc(64);
    ASSERT_OK(am__batcher_submit(b, j));
    ASSERT_TRUE(gate_wait_entered(&g, 1)); /* the worker took it */
    ASSERT_EQ_INT(am__job_wait(j, am__now() + 0.05), -1);
    am__job_unref(j);
    gate_open(&g);
    am__batcher_stop(b); /* the batch finishes; the worker frees the job */
    gate_destroy(&g);
    /* and one that finishes normally */
    ASSERT_OK(am__batcher_start(&b, &o, run_tasks, NULL, "tasks"));
    j = am__job_new();
    j->samples = 1;
    j->task = fill_task;
    j->task_arg = calloc(1, 64);
    ASSERT_OK(am__batcher_submit(b, j));
    ASSERT_EQ_INT(am__job_wait(j, am__now() + 30), 0);
    ASSERT_EQ_INT(((unsigned char *)j->task_arg)[63], 0x5a);
    am__job_unref(j);
    am__batcher_stop(b);
}

int main(void)
{
    if (test_db_url()) { /* the store tests only, against that database */
        printf("database: %s\n", test_db_url());
        RUN(keystore);
        RUN(rate_limit_and_usage);
        RUN(daily_quotas);
        RUN(shared_store_between_replicas);
        RUN(key_cache_bounds_revocation);
        return test_summary();
    }
    RUN(json_precheck);
    RUN(v2_parse_messages);
    RUN(route_matching);
    RUN(voice_kind_claims);
    RUN(openai_error_shape);
    RUN(metrics_histogram_buckets);
    RUN(cors_allowlist_parse);
    RUN(batcher_forms_batches);
    RUN(batcher_full_queue_and_timeout);
    RUN(batcher_wait_slices_and_cancel);
    RUN(static_routes);
    RUN(batcher_partial_results);
    RUN(batcher_continuous);
    RUN(batcher_task_outlives_its_waiter);
    RUN(keystore);
    RUN(rate_limit_and_usage);
    RUN(daily_quotas);
    RUN(shared_store_between_replicas);
    RUN(key_cache_bounds_revocation);
    RUN(tenants_file);
    return test_summary();
}
