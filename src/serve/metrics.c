/* metrics.c - GET /metrics (admin scope) in the Prometheus text exposition format (0.0.4):
 *
 *   amuse_requests_total{model,endpoint,method,status}     counter, every finished HTTP request
 *   amuse_request_duration_seconds{endpoint}               histogram, first byte to reply queued
 *   amuse_queue_time_seconds{model}                        histogram, submit to batch start
 *   amuse_batch_size{model}                                histogram, samples per model call
 *   amuse_queue_depth{model}                               gauge, jobs waiting now
 *   amuse_tenant_requests_total{tenant}, ..._items_total   counter, per tenant of the key
 *   amuse_models_loaded                                    gauge
 *
 * endpoint is the route pattern ("/v2/models/{model}/infer"), never the raw path, so labels stay
 * few. The model label is set only for a model that exists and the key may use (tenant.c), so
 * made-up names all count under model=""; series are capped at MAX_SERIES and the
 * rest count under model="(other)" (amuse_requests_uncounted_total if even those run out), so
 * requests naming random models cannot grow memory without bound. The request figures live here
 * (one mutex, taken once per request); the queue and batch figures are each model's batcher's
 * (counted under the batcher's lock), so they restart when a new version is swapped in, which
 * Prometheus treats as a counter reset. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SERIES    1024
#define MAX_ENDPOINTS 64
#define OTHER_ROOM    256

struct series {
    char model[128];
    const char *endpoint, *method; /* static strings: route patterns and method names */
    int status;
    int64_t count;
};

struct am__metrics {
    pthread_mutex_t lock;
    struct series *series;
    int n_series;
    struct {
        const char *endpoint;
        struct am__hist_time h;
    } latency[MAX_ENDPOINTS];
    int n_latency;
    int64_t dropped; /* requests not counted: every series slot taken */
};

int am__metrics_new(struct am__metrics **out)
{
    struct am__metrics *m = calloc(1, sizeof *m);
    if (m)
        m->series = calloc(MAX_SERIES, sizeof *m->series);
    if (!m || !m->series) {
        free(m);
        *out = NULL;
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return AMUSE_OK;
}

void am__metrics_free(struct am__metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->series);
    free(m);
}

/* A method name with static storage (the request's own string dies with the request). */
static const char *static_method(const char *method)
{
    static const char *const known[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "other";
}

static struct series *find_series(struct am__metrics *m, const char *model, const char *endpoint,
                                  const char *method, int status, int room)
{
    for (int i = 0; i < m->n_series; i++) {
        struct series *s = &m->series[i];
        if (s->status == status && s->endpoint == endpoint && s->method == method &&
            strcmp(s->model, model) == 0)
            return s;
    }
    if (m->n_series >= room)
        return NULL;
    struct series *s = &m->series[m->n_series++];
    snprintf(s->model, sizeof s->model, "%s", model);
    s->endpoint = endpoint;
    s->method = method;
    s->status = status;
    return s;
}

void am__metrics_request(struct am__metrics *m, const char *method, const char *endpoint,
                         const char *model, int status, double seconds)
{
    method = static_method(method);
    pthread_mutex_lock(&m->lock);
    /* new model names stop getting their own series OTHER_ROOM slots before the end; those
     * slots hold the "(other)" series, one per endpoint, method and status */
    struct series *hit = find_series(m, model, endpoint, method, status, MAX_SERIES - OTHER_ROOM);
    if (!hit)
        hit = find_series(m, "(other)", endpoint, method, status, MAX_SERIES);
    if (hit)
        hit->count++;
    else
        m->dropped++;
    int e = 0;
    while (e < m->n_latency && m->latency[e].endpoint != endpoint)
        e++;
    if (e == m->n_latency && e < MAX_ENDPOINTS) {
        m->latency[e].endpoint = endpoint;
        m->n_latency++;
    }
    if (e < MAX_ENDPOINTS)
        am__hist_time_add(&m->latency[e].h, seconds);
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------------ rendering */

static void label_value(struct am__buf *b, const char *v)
{
    am__buf_add(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"')
            am__buf_add(b, "\\", 1);
        if (*p == '\n')
            am__buf_add(b, "\\n", 2);
        else
            am__buf_add(b, p, 1);
    }
    am__buf_add(b, "\"", 1);
}

static void help(struct am__buf *b, const char *name, const char *type, const char *text)
{
    am__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* name_bucket{label="value",le=...} lines, then _sum and _count. */
static void histogram(struct am__buf *b, const char *name, const char *label, const char *value,
                      const int64_t *counts, const double *bounds, int n, double sum)
{
    int64_t cumulative = 0;
    for (int i = 0; i <= n; i++) {
        cumulative += counts[i];
        am__buf_printf(b, "%s_bucket{%s=", name, label);
        label_value(b, value);
        if (i < n)
            am__buf_printf(b, ",le=\"%g\"} %lld\n", bounds[i], (long long)cumulative);
        else
            am__buf_printf(b, ",le=\"+Inf\"} %lld\n", (long long)cumulative);
    }
    am__buf_printf(b, "%s_sum{%s=", name, label);
    label_value(b, value);
    am__buf_printf(b, "} %.9g\n%s_count{%s=", sum, name, label);
    label_value(b, value);
    am__buf_printf(b, "} %lld\n", (long long)cumulative);
}

#define MAX_FIGURES 16
struct model_stats {
    char *name;
    struct am__batch_stats st;
    int streams; /* a streaming kind: the figures below are its */
    int64_t active, freed, tokens;
    int n_figures; /* the kind's evaluation figures */
    const char *figures[MAX_FIGURES];
    double values[MAX_FIGURES];
};

void am__handle_metrics(struct am__request *r)
{
    struct amuse_server *s = r->server;
    struct am__metrics *m = s->metrics;
    struct am__buf *b = &r->out;

    /* the models' figures first, without holding our lock */
    char **names = NULL;
    int n = 0;
    if (am__repository_names(s->repo, &names, &n)) {
        am__reply_status(r, AMUSE_ENOMEM, 500);
        return;
    }
    struct model_stats *ms = calloc((size_t)n + 1, sizeof *ms);
    int n_ms = 0;
    for (int i = 0; i < n; i++) {
        struct am__model *model = ms ? am__repository_get(s->repo, names[i]) : NULL;
        if (model) {
            ms[n_ms].name = names[i];
            names[i] = NULL;
            am__batcher_stats(model->batcher, &ms[n_ms].st);
            if (model->kind->stream_figures) {
                ms[n_ms].streams = 1;
                model->kind->stream_figures(model, &ms[n_ms].active, &ms[n_ms].freed,
                                            &ms[n_ms].tokens);
            }
            if (model->kind->evaluation)
                ms[n_ms].n_figures = model->kind->evaluation(model, ms[n_ms].figures,
                                                             ms[n_ms].values, MAX_FIGURES);
            n_ms++;
            am__model_release(s->repo, model);
        }
        free(names[i]);
    }
    free(names);
    if (!ms) {
        am__reply_status(r, AMUSE_ENOMEM, 500);
        return;
    }

    help(b, "amuse_requests_total", "counter",
         "HTTP requests by model, endpoint (route pattern), method and status.");
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->n_series; i++) {
        const struct series *x = &m->series[i];
        if (!x->count)
            continue;
        am__buf_puts(b, "amuse_requests_total{model=");
        label_value(b, x->model);
        am__buf_puts(b, ",endpoint=");
        label_value(b, x->endpoint);
        am__buf_printf(b, ",method=\"%s\",status=\"%d\"} %lld\n", x->method, x->status,
                       (long long)x->count);
    }
    help(b, "amuse_requests_uncounted_total", "counter",
         "Requests left out of amuse_requests_total because its series cap was reached.");
    am__buf_printf(b, "amuse_requests_uncounted_total %lld\n", (long long)m->dropped);
    help(b, "amuse_request_duration_seconds", "histogram",
         "Seconds from a request's first byte to its reply, by endpoint.");
    for (int i = 0; i < m->n_latency; i++)
        histogram(b, "amuse_request_duration_seconds", "endpoint", m->latency[i].endpoint,
                  m->latency[i].h.counts, am__time_bounds, AM__TIME_BUCKETS, m->latency[i].h.sum);
    pthread_mutex_unlock(&m->lock);

    help(b, "amuse_queue_time_seconds", "histogram",
         "Seconds a job waited in its model's queue before its batch started.");
    for (int i = 0; i < n_ms; i++)
        histogram(b, "amuse_queue_time_seconds", "model", ms[i].name, ms[i].st.queue_time.counts,
                  am__time_bounds, AM__TIME_BUCKETS, ms[i].st.queue_time.sum);
    help(b, "amuse_batch_size", "histogram", "Samples per model call (dynamic batches).");
    for (int i = 0; i < n_ms; i++)
        histogram(b, "amuse_batch_size", "model", ms[i].name, ms[i].st.batch_size.counts,
                  am__batch_bounds, AM__BATCH_BUCKETS, ms[i].st.batch_size.sum);
    help(b, "amuse_queue_depth", "gauge", "Jobs waiting in each model's queue now.");
    for (int i = 0; i < n_ms; i++) {
        am__buf_puts(b, "amuse_queue_depth{model=");
        label_value(b, ms[i].name);
        am__buf_printf(b, "} %d\n", ms[i].st.queued);
    }
    help(b, "amuse_requests_cancelled_total", "counter",
         "Requests whose client closed the connection while they waited for the model; their "
         "work was dropped (counted per loaded version: a reload starts again at 0).");
    for (int i = 0; i < n_ms; i++) {
        am__buf_puts(b, "amuse_requests_cancelled_total{model=");
        label_value(b, ms[i].name);
        am__buf_printf(b, "} %lld\n", (long long)ms[i].st.cancelled);
    }
    help(b, "amuse_generate_active_streams", "gauge",
         "Generations (choices) in a generator's slots now, all advancing in one batched step "
         "per token.");
    for (int i = 0; i < n_ms; i++)
        if (ms[i].streams) {
            am__buf_puts(b, "amuse_generate_active_streams{model=");
            label_value(b, ms[i].name);
            am__buf_printf(b, "} %lld\n", (long long)ms[i].active);
        }
    help(b, "amuse_generate_slots_freed_by_disconnect_total", "counter",
         "Generator slots freed at the next step because their client went away (per loaded "
         "version).");
    for (int i = 0; i < n_ms; i++)
        if (ms[i].streams) {
            am__buf_puts(b, "amuse_generate_slots_freed_by_disconnect_total{model=");
            label_value(b, ms[i].name);
            am__buf_printf(b, "} %lld\n", (long long)ms[i].freed);
        }
    help(b, "amuse_generate_tokens_total", "counter",
         "Tokens generated (per loaded version).");
    for (int i = 0; i < n_ms; i++)
        if (ms[i].streams) {
            am__buf_puts(b, "amuse_generate_tokens_total{model=");
            label_value(b, ms[i].name);
            am__buf_printf(b, "} %lld\n", (long long)ms[i].tokens);
        }
    help(b, "amuse_model_evaluation", "gauge",
         "Quality figures measured when the model was made, by figure (a recommender's "
         "eval.json: accuracy at k and the popularity-bias figures gini, arp, aplt, novelty).");
    for (int i = 0; i < n_ms; i++)
        for (int k = 0; k < ms[i].n_figures; k++) {
            am__buf_puts(b, "amuse_model_evaluation{model=");
            label_value(b, ms[i].name);
            am__buf_printf(b, ",figure=\"%s\"} %.9g\n", ms[i].figures[k], ms[i].values[k]);
        }
    struct am__usage_row *rows = NULL;
    size_t n_rows = 0;
    if (s->tenant_usage && am__usage_rows(s->tenant_usage, &rows, &n_rows) == AMUSE_OK) {
        help(b, "amuse_tenant_requests_total", "counter",
             "Authenticated requests by the tenant of their key, since start.");
        for (size_t i = 0; i < n_rows; i++) {
            am__buf_puts(b, "amuse_tenant_requests_total{tenant=");
            label_value(b, rows[i].id);
            am__buf_printf(b, "} %lld\n", (long long)rows[i].requests);
        }
        help(b, "amuse_tenant_items_total", "counter",
             "Samples, inputs or queries served to each tenant (successful replies), since "
             "start.");
        for (size_t i = 0; i < n_rows; i++) {
            am__buf_puts(b, "amuse_tenant_items_total{tenant=");
            label_value(b, rows[i].id);
            am__buf_printf(b, "} %lld\n", (long long)rows[i].items);
        }
        free(rows);
    }
    help(b, "amuse_models_loaded", "gauge", "Models being served.");
    am__buf_printf(b, "amuse_models_loaded %d\n", am__repository_count(s->repo));
    for (int i = 0; i < n_ms; i++)
        free(ms[i].name);
    free(ms);
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
