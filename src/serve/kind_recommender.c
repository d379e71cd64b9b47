/* kind_recommender.c - the recommender model kind: a directory written by `amuse recommend
 * train` (config.json {"type": "recommender", "algo": ...}, model.safetensors, users.txt,
 * items.txt, item_meta.tsv and eval.json; amuse/recsys.h) loads read-only, hot-reloads and obeys
 * the model's tenants file through the repository like every other kind. Its jobs are tasks that
 * recommend_routes.c builds (the recommendation math runs on the model's worker); the admin stats
 * route shows the accuracy and popularity-bias figures of eval.json.
 * Not here: the routes (recommend_routes.c), training, and user events (the event store).
 */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/runtime.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The AM__REC_TOP_USERS users with the most events, most first (ties: lower index first). */
static void pick_top_users(struct am__recommender *rs)
{
    const struct amuse_rec_csr *seen = rs->rec->seen;
#define EVENTS(u) (seen->indptr[(u) + 1] - seen->indptr[(u)])
    int n = 0;
    for (int64_t u = 0; u < seen->rows; u++) {
        int64_t c = EVENTS(u);
        int at;
        if (c == 0)
            continue;
        if (n < AM__REC_TOP_USERS)
            at = n++;
        else if (c > EVENTS(rs->top_users[n - 1]))
            at = n - 1; /* the last one drops out */
        else
            continue;
        for (; at > 0 && EVENTS(rs->top_users[at - 1]) < c; at--)
            rs->top_users[at] = rs->top_users[at - 1];
        rs->top_users[at] = u;
    }
#undef EVENTS
    rs->n_top_users = n;
}

static int recommender_load(struct am__model *m, const struct cJSON *cfg, const char *cfg_path)
{
    (void)cfg;
    (void)cfg_path;
    struct am__recommender *rs = calloc(1, sizeof *rs);
    if (!rs)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = amuse_rec_model_load(m->dir, &rs->rec);
    if (rc)
        goto fail;
    rc = amuse_rec_eval_load(m->dir, &rs->eval);
    if (rc && rc != AMUSE_ENOTFOUND) /* a broken eval.json is as wrong as a broken model */
        goto fail;
    rs->has_eval = rc == AMUSE_OK;
    rc = AMUSE_OK;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/model.safetensors", m->dir);
    rs->trained_at = stat(path, &st) == 0 ? (int64_t)st.st_mtime : 0;
    rs->like_value = 1;
    for (int64_t e = 0; e < rs->rec->seen->nnz; e++)
        if (rs->rec->seen->values[e] > rs->like_value)
            rs->like_value = rs->rec->seen->values[e];
    pick_top_users(rs);
    m->state = rs;
    m->input_shape.ndim = 0;
    m->input_size = 1;
    m->output_size = 1;
    return AMUSE_OK;
fail:
    amuse_rec_model_free(rs->rec);
    free(rs);
    return rc;
}

static void recommender_release(struct am__model *m)
{
    struct am__recommender *rs = m->state;
    if (rs)
        amuse_rec_model_free(rs->rec);
    free(rs);
    m->state = NULL;
}

/* Every job of this kind is a task (recommend_routes.c). The jobs of a batch are independent
 * readers of the model, so they run side by side on the worker's OpenMP threads. */
static void recommender_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    const struct am__model *m = ctx;
    (void)samples;
    /* OpenMP's thread count is per thread: set it on this worker before its first batch. */
    static _Thread_local int threads_set;
    if (m->model_threads > 0 && !threads_set) {
        amuse_set_threads(m->model_threads);
        threads_set = 1;
    }
#pragma omp parallel for schedule(dynamic, 1) if (n > 1)
    for (int i = 0; i < n; i++)
        if (jobs[i]->task)
            jobs[i]->task(m, jobs[i]);
}

/* "recommender": {algo, users, items, events, factors, "evaluation": eval.json or null} */
static void recommender_stats(const struct am__model *m, struct am__buf *b)
{
    const struct am__recommender *rs = m->state;
    const struct amuse_rec_model *rec = rs->rec;
    am__buf_puts(b, ", \"recommender\": {\"algo\": ");
    am__buf_json_string(b, amuse_rec_algo_name(rec->opt.algo));
    am__buf_printf(b, ", \"users\": %lld, \"items\": %lld, \"events\": %lld, \"factors\": %d, "
                   "\"evaluation\": ",
                   (long long)rec->n_users, (long long)rec->n_items, (long long)rec->seen->nnz,
                   rec->factors);
    if (!rs->has_eval) {
        am__buf_puts(b, "null}");
        return;
    }
    const struct amuse_rec_eval *e = &rs->eval;
    const struct amuse_rec_metrics *x = &e->metrics;
    am__buf_puts(b, "{\"split\": ");
    am__buf_json_string(b, e->split);
    am__buf_printf(b, ", \"fraction\": %g, \"seed\": %llu, \"k\": %d, \"users\": %lld",
                   e->fraction, (unsigned long long)e->seed, e->k, (long long)x->users);
    const char *names[] = {"precision", "recall", "ndcg", "map", "coverage",
                           "gini", "arp", "aplt", "novelty"};
    const double values[] = {x->precision, x->recall, x->ndcg, x->map, x->coverage,
                             x->gini, x->arp, x->aplt, x->novelty};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        am__buf_printf(b, ", \"%s\": ", names[i]);
        am__buf_float(b, (float)values[i]);
    }
    am__buf_puts(b, "}}");
}

/* eval.json's figures for /metrics: accuracy at k and the popularity-bias figures. */
static int recommender_evaluation(const struct am__model *m, const char **figures, double *values,
                                  int max)
{
    const struct am__recommender *rs = m->state;
    if (!rs->has_eval)
        return 0;
    const struct amuse_rec_metrics *x = &rs->eval.metrics;
    const char *names[] = {"k",      "precision_at_k", "recall_at_k", "ndcg_at_k",
                           "map_at_k", "coverage_at_k", "gini",       "arp",
                           "aplt",   "novelty"};
    const double v[] = {rs->eval.k, x->precision, x->recall, x->ndcg, x->map,
                        x->coverage, x->gini, x->arp, x->aplt, x->novelty};
    int n = 0;
    for (size_t i = 0; i < sizeof v / sizeof v[0] && n < max; i++, n++) {
        figures[n] = names[i];
        values[n] = v[i];
    }
    return n;
}

/* V2 model metadata: no tensors; what it is, for clients that list models (the playground). */
static void recommender_tensors(const struct am__model *m, struct am__buf *b)
{
    const struct am__recommender *rs = m->state;
    am__buf_puts(b, "\"inputs\": [], \"outputs\": [], \"parameters\": {\"kind\": \"recommender\", "
                    "\"algo\": ");
    am__buf_json_string(b, amuse_rec_algo_name(rs->rec->opt.algo));
    am__buf_printf(b, ", \"users\": %lld, \"items\": %lld}", (long long)rs->rec->n_users,
                   (long long)rs->rec->n_items);
}

const struct am__model_kind am__kind_recommender = {
    .name = "recommender",
    .config_type = "recommender",
    .flags = AM__KIND_RECOMMEND | AM__KIND_NO_QUEUE_DELAY,
    .load = recommender_load,
    .release = recommender_release,
    .run = recommender_run,
    .v2_hint = "; use GET /v1/recommendations or GET /v1/items/{id}/similar",
    .v2_encode_tensors = recommender_tensors,
    .stats_json = recommender_stats,
    .evaluation = recommender_evaluation,
};
