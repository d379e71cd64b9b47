/* kind_generator.c - the generator model kind: a character model directory whose config.json has
 * a "vocabulary" (amuse/generate.h), served with continuous batching. The model's slots are its
 * batcher's max_batch_size; a job is one request with `samples` = n choices, each in a slot of
 * its own. Every call of the run function is one step: cancelled jobs free their slots (the
 * client went away), new jobs are started in free slots, then ONE amuse_generator_step (which
 * first reads the new prompts together) advances every active slot by a token, and each event
 * goes to its job as a piece (am__job_emit). A job with choices still generating sets `more`,
 * so the batcher runs it again with the next step while new jobs join between steps.
 * Not here: HTTP shapes (completions.c), sampling and stop strings (the library's). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/generate.h"
#include "amuse/runtime.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gen_state {
    struct amuse_generator *g;
    int slots, max_tokens;
    enum amuse_generator_kind kind;
    struct am__job **owner; /* the job each slot works for (worker only) */
    int *choice;            /* its choice index */
    struct amuse_generate_event *events;
    _Atomic int64_t active;    /* slots generating now */
    _Atomic int64_t freed;     /* slots freed because their client went away */
    _Atomic int64_t tokens;    /* tokens generated */
};

static int generator_load(struct am__model *m, const struct cJSON *cfg, const char *cfg_path)
{
    (void)cfg;
    (void)cfg_path;
    struct gen_state *st = calloc(1, sizeof *st);
    if (!st)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    m->state = st;
    int rc = amuse_generator_load(&st->g, m->dir, m->max_batch_size);
    if (rc)
        return rc;
    st->slots = m->max_batch_size;
    st->max_tokens = amuse_generator_max_tokens(st->g);
    st->kind = amuse_generator_kind(st->g);
    st->owner = calloc((size_t)st->slots, sizeof *st->owner);
    st->choice = calloc((size_t)st->slots, sizeof *st->choice);
    st->events = calloc((size_t)st->slots, sizeof *st->events);
    if (!st->owner || !st->choice || !st->events)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    m->input_shape.ndim = 0;
    m->input_size = 1;
    m->output_size = amuse_charvocab_size(amuse_generator_vocab(st->g));
    return AMUSE_OK;
}

static void generator_release(struct am__model *m)
{
    struct gen_state *st = m->state;
    if (!st)
        return;
    amuse_generator_free(st->g);
    free(st->owner);
    free(st->choice);
    free(st->events);
    free(st);
    m->state = NULL;
}

int am__generator_limits(const struct am__model *m, int *max_tokens, int *seq2seq)
{
    const struct gen_state *st = m->state;
    if (!(m->kind->flags & AM__KIND_GENERATE) || !st)
        return AMUSE_EINVAL;
    *max_tokens = st->max_tokens;
    *seq2seq = st->kind == AMUSE_GENERATOR_SEQ2SEQ;
    return AMUSE_OK;
}

static void emit(struct am__job *j, int index, int type, int finish,
                 const struct amuse_generate_usage *usage, const char *text, size_t len)
{
    char buf[sizeof(struct am__gen_piece) + 256];
    struct am__gen_piece *p = (struct am__gen_piece *)buf;
    struct am__gen_piece *big = NULL;
    if (len > 256) {
        if (!(big = malloc(sizeof *big + len)))
            return; /* out of memory: the waiter times out rather than the worker failing */
        p = big;
    }
    memset(p, 0, sizeof *p);
    p->index = index;
    p->type = type;
    p->finish = finish;
    if (usage) {
        p->prompt_tokens = usage->prompt_tokens;
        p->prompt_unknown = usage->prompt_unknown;
        p->completion_tokens = usage->completion_tokens;
    }
    p->len = len;
    if (len)
        memcpy(p->text, text, len);
    am__job_emit(j, p, sizeof *p + len);
    free(big);
}

/* Free every slot j holds (cancel: counted as freed by a disconnect). */
static void drop_slots(struct gen_state *st, struct am__job *j, int disconnected)
{
    for (int s = 0; s < st->slots; s++) {
        if (st->owner[s] != j)
            continue;
        amuse_generator_cancel(st->g, s);
        st->owner[s] = NULL;
        atomic_fetch_sub(&st->active, 1);
        if (disconnected)
            atomic_fetch_add(&st->freed, 1);
    }
    struct am__gen_request *gr = j->task_arg;
    gr->active = 0;
}

/* Prime the job's choices into free slots; 0 or the failure (its slots freed again). */
static int start_job(struct gen_state *st, struct am__job *j)
{
    struct am__gen_request *gr = j->task_arg;
    gr->started = 1;
    for (int c = 0; c < gr->n; c++) {
        int slot = amuse_generator_free_slot(st->g);
        if (slot < 0) { /* cannot happen: the batcher admits at most `slots` samples */
            drop_slots(st, j, 0);
            return am__fail(AMUSE_EINVAL, "internal: no free generator slot");
        }
        struct amuse_generate_request req = gr->req;
        req.sampling.seed = gr->req.sampling.seed + (uint64_t)c; /* choices differ */
        int rc = amuse_generator_start(st->g, slot, &req);
        if (rc) {
            drop_slots(st, j, 0);
            return rc;
        }
        st->owner[slot] = j;
        st->choice[slot] = c;
        atomic_fetch_add(&st->active, 1);
        gr->active++;
    }
    struct amuse_generate_usage u = amuse_generator_usage(st->g, 0);
    for (int s = 0; s < st->slots; s++)
        if (st->owner[s] == j) {
            u = amuse_generator_usage(st->g, s);
            break;
        }
    emit(j, -1, AM__PIECE_START, 0, &u, NULL, 0);
    return AMUSE_OK;
}

static void generator_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    struct am__model *m = ctx;
    struct gen_state *st = m->state;
    (void)samples;
    static _Thread_local int threads_set;
    if (m->model_threads > 0 && !threads_set) {
        amuse_set_threads(m->model_threads);
        threads_set = 1;
    }
    for (int i = 0; i < n; i++) {
        struct am__job *j = jobs[i];
        struct am__gen_request *gr = j->task_arg;
        if (am__job_cancelled(j)) { /* the client went away: its slots are free from this step */
            drop_slots(st, j, gr->started);
            continue;
        }
        if (!gr->started) {
            int rc = start_job(st, j);
            if (rc)
                am__jobs_fail(&j, 1, rc);
        }
    }
    int n_events = 0;
    if (amuse_generator_active_count(st->g) > 0) {
        int rc = amuse_generator_step(st->g, st->events, st->slots, &n_events);
        if (rc) {
            for (int i = 0; i < n; i++) {
                struct am__gen_request *gr = jobs[i]->task_arg;
                if (gr->active > 0) {
                    drop_slots(st, jobs[i], 0);
                    am__jobs_fail(&jobs[i], 1, rc);
                }
            }
            return;
        }
    }
    for (int e = 0; e < n_events; e++) {
        const struct amuse_generate_event *ev = &st->events[e];
        struct am__job *j = st->owner[ev->slot];
        if (!j)
            continue;
        atomic_fetch_add(&st->tokens, 1);
        emit(j, st->choice[ev->slot], AM__PIECE_TEXT, (int)ev->finish, &ev->usage, ev->text,
             ev->len);
        if (ev->finish != AMUSE_FINISH_NONE) {
            st->owner[ev->slot] = NULL;
            atomic_fetch_sub(&st->active, 1);
            struct am__gen_request *gr = j->task_arg;
            gr->active--;
        }
    }
    for (int i = 0; i < n; i++) {
        struct am__gen_request *gr = jobs[i]->task_arg;
        jobs[i]->more = gr->active > 0;
    }
}

static void generator_figures(const struct am__model *m, int64_t *active, int64_t *freed,
                              int64_t *tokens)
{
    struct gen_state *st = m->state;
    *active = atomic_load(&st->active);
    *freed = atomic_load(&st->freed);
    *tokens = atomic_load(&st->tokens);
}

/* KServe's generate extension names its tensors text_input and text_output (as Triton does). */
static void generator_v2_tensors(const struct am__model *m, struct am__buf *b)
{
    const struct gen_state *st = m->state;
    am__buf_printf(b, "\"inputs\": [{\"name\": \"text_input\", \"datatype\": \"BYTES\", "
                      "\"shape\": [1]}], \"outputs\": [{\"name\": \"text_output\", "
                      "\"datatype\": \"BYTES\", \"shape\": [1]}], \"parameters\": "
                      "{\"generator\": \"%s\", \"max_tokens\": %d, \"slots\": %d, "
                      "\"vocabulary_size\": %lld}",
                   st->kind == AMUSE_GENERATOR_SEQ2SEQ ? "seq2seq" : "language model",
                   st->max_tokens, st->slots, (long long)m->output_size);
}

static int generator_claims(const struct cJSON *cfg)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "vocabulary");
    return v && !cJSON_IsNull(v);
}

const struct am__model_kind am__kind_generator = {
    .name = "generator",
    .claims = generator_claims,
    .flags = AM__KIND_GENERATE,
    .load = generator_load,
    .release = generator_release,
    .run = generator_run,
    .v2_hint = "; use POST /v2/models/{model}/generate or /v1/completions",
    .v2_encode_tensors = generator_v2_tensors,
    .stream_figures = generator_figures,
};
