/* batcher.c - dynamic batching for one model: a bounded FIFO of jobs and one worker thread that
 * takes the oldest job, waits up to max_queue_delay_us (from that job's arrival) for more to fill
 * a batch of max_batch_size samples, runs the batch through the model's run function, and wakes
 * each waiting HTTP thread. A full queue is refused at once (the caller answers 503); a waiter
 * whose deadline passes cancels its job: a queued job leaves the queue, a running one has its
 * result discarded. Jobs are reference counted, so neither side frees what the other still uses.
 * Partial results (am__job_emit) are the hook for streaming generators: a generating model emits
 * chunks from its run function and the HTTP side forwards them as they come.
 * Continuous batching: a run function that sets a job's `more` keeps it running; the worker then
 * calls run again at once with the jobs still running first and any queued jobs that fit after
 * them (no waiting for company while some are running), so streams join and leave between steps.
 * A job cancelled while it runs stays in the list until its run function lets it go (so a
 * generator can free its slot).
 * A waiter can also give up before its deadline (am__job_cancel: its client went away), with the
 * same effect. Not here: priorities, per-tenant fairness, watching the client's socket (the HTTP
 * side does that between the time slices of am__job_wait_until). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct am__batcher {
    struct am__batcher_options opt;
    am__run_batch run;
    void *ctx;
    char name[128];
    pthread_mutex_t lock;
    pthread_cond_t work; /* the worker waits here for jobs */
    struct am__job *head, *tail;
    int queued;
    int stopping;
    pthread_t thread;
    struct am__batch_stats stats;
    struct am__job **jobs; /* max_batch_size slots for the batch being formed */
    int running;           /* jobs in the batch being run now (continuous: still generating) */
};

static void make_cond(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

/* Wait on c until the monotonic time `deadline` (seconds); returns ETIMEDOUT when it passed. */
static int wait_until(pthread_cond_t *c, pthread_mutex_t *m, double deadline)
{
    double whole = floor(deadline);
    struct timespec ts = {(time_t)whole, (long)((deadline - whole) * 1e9)};
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    return pthread_cond_timedwait(c, m, &ts);
}

/* ------------------------------------------------------------------------------ jobs */

struct am__job *am__job_new(void)
{
    struct am__job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->refs = 1;
    j->state = AM__JOB_NEW;
    j->chunks_tail = &j->chunks;
    make_cond(&j->changed);
    return j;
}

static void job_free(struct am__job *j)
{
    pthread_cond_destroy(&j->changed);
    free(j->input);
    free(j->rows);
    free(j->output);
    free(j->task_arg);
    am__job_unref(j->decode); /* another batcher's job: its own lock */
    while (j->chunks) {
        struct am__chunk *c = j->chunks;
        j->chunks = c->next;
        free(c);
    }
    free(j);
}

/* Drop a reference with the owner's lock held; returns 1 if the caller must free the job. */
static int job_unref_locked(struct am__job *j)
{
    return --j->refs == 0;
}

void am__job_unref(struct am__job *j)
{
    if (!j)
        return;
    struct am__batcher *b = j->owner;
    int last;
    if (b) {
        pthread_mutex_lock(&b->lock);
        last = job_unref_locked(j);
        pthread_mutex_unlock(&b->lock);
    } else {
        last = job_unref_locked(j);
    }
    if (last)
        job_free(j);
}

int am__batcher_submit(struct am__batcher *b, struct am__job *j)
{
    if (j->state != AM__JOB_NEW || j->samples < 1)
        return am__fail(AMUSE_EINVAL, "internal: job submitted twice or empty");
    pthread_mutex_lock(&b->lock);
    if (b->stopping) {
        pthread_mutex_unlock(&b->lock);
        return am__fail(AMUSE_EINVAL, "model '%s' is shutting down", b->name);
    }
    if (b->queued >= b->opt.max_queue_size) {
        b->stats.rejected_full++;
        pthread_mutex_unlock(&b->lock);
        return am__fail(AMUSE_ETOOBIG, "model '%s': queue full (%d requests waiting)", b->name,
                        b->opt.max_queue_size);
    }
    j->owner = b;
    j->refs++; /* the queue's reference */
    j->state = AM__JOB_QUEUED;
    j->t_submit = am__now();
    j->next = NULL;
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    b->queued++;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
    return AMUSE_OK;
}

/* Remove a queued job from the list (lock held). */
static void unlink_job(struct am__batcher *b, struct am__job *j)
{
    struct am__job *prev = NULL;
    for (struct am__job *p = b->head; p; prev = p, p = p->next) {
        if (p != j)
            continue;
        if (prev)
            prev->next = p->next;
        else
            b->head = p->next;
        if (b->tail == p)
            b->tail = prev;
        b->queued--;
        return;
    }
}

/* Cancel a job that is not done (lock held): a queued job leaves the queue; a running one has its
 * result discarded by the worker. Returns 1 when the queue's reference was the last (never, while
 * the caller holds its own). */
static int cancel_locked(struct am__batcher *b, struct am__job *j)
{
    j->cancelled = 1;
    if (j->state == AM__JOB_QUEUED) {
        unlink_job(b, j);
        j->state = AM__JOB_DONE;
        return job_unref_locked(j); /* the queue's reference */
    }
    return 0;
}

int am__job_wait_until(struct am__job *j, double deadline, double wake)
{
    struct am__batcher *b = j->owner;
    int result = 0, last = 0;
    if (wake > deadline)
        wake = deadline;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        if (j->chunks) {
            result = 1;
            break;
        }
        if (j->state == AM__JOB_DONE) {
            result = 0;
            break;
        }
        if (wait_until(&j->changed, &b->lock, wake) != ETIMEDOUT || j->state == AM__JOB_DONE ||
            j->chunks)
            continue;
        double now = am__now();
        if (now >= deadline) {
            b->stats.timed_out++;
            last = cancel_locked(b, j);
            result = -1;
            break;
        }
        if (now >= wake) {
            result = 2;
            break;
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (last) /* cannot happen: the caller still holds its own reference */
        job_free(j);
    return result;
}

int am__job_wait(struct am__job *j, double deadline)
{
    return am__job_wait_until(j, deadline, deadline);
}

void am__job_cancel(struct am__job *j)
{
    struct am__batcher *b = j->owner;
    int last = 0;
    pthread_mutex_lock(&b->lock);
    if (j->state != AM__JOB_DONE && !j->cancelled) {
        b->stats.cancelled++;
        last = cancel_locked(b, j);
    }
    pthread_mutex_unlock(&b->lock);
    if (last) /* cannot happen: the caller still holds its own reference */
        job_free(j);
}

int am__job_cancelled(struct am__job *j)
{
    struct am__batcher *b = j->owner;
    if (!b)
        return 0;
    pthread_mutex_lock(&b->lock);
    int c = j->cancelled;
    pthread_mutex_unlock(&b->lock);
    return c;
}

int am__job_emit(struct am__job *j, const void *data, size_t len)
{
    struct am__chunk *c = malloc(sizeof *c + len);
    if (!c)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    c->next = NULL;
    c->len = len;
    memcpy(c->data, data, len);
    struct am__batcher *b = j->owner;
    pthread_mutex_lock(&b->lock);
    if (j->cancelled) { /* nobody is listening any more */
        pthread_mutex_unlock(&b->lock);
        free(c);
        return AMUSE_OK;
    }
    *j->chunks_tail = c;
    j->chunks_tail = &c->next;
    pthread_cond_broadcast(&j->changed);
    pthread_mutex_unlock(&b->lock);
    return AMUSE_OK;
}

struct am__chunk *am__job_next_chunk(struct am__job *j)
{
    struct am__batcher *b = j->owner;
    pthread_mutex_lock(&b->lock);
    struct am__chunk *c = j->chunks;
    if (c) {
        j->chunks = c->next;
        if (!j->chunks)
            j->chunks_tail = &j->chunks;
    }
    pthread_mutex_unlock(&b->lock);
    return c;
}

/* --------------------------------------------------------------------------- worker */

static void *worker_main(void *arg)
{
    struct am__batcher *b = arg;
    const int max_batch = b->opt.max_batch_size;
    int n_carried = 0;         /* jobs still running from the last call (j->more): b->jobs[0..) */
    int64_t carried_samples = 0;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->head && !b->stopping && n_carried == 0)
            pthread_cond_wait(&b->work, &b->lock);
        if (!b->head && n_carried == 0)
            break; /* stopping, and everything queued is done */
        /* Let the batch fill: until it is full or the oldest job has waited long enough. Jobs
         * already running (continuous batching) never wait for company. */
        double deadline = b->head ? b->head->t_submit + b->opt.max_queue_delay_us * 1e-6 : 0;
        while (n_carried == 0 && b->head && !b->stopping) {
            int64_t waiting = 0;
            for (struct am__job *p = b->head; p && waiting < max_batch; p = p->next)
                waiting += p->samples;
            if (waiting >= max_batch || am__now() >= deadline)
                break;
            wait_until(&b->work, &b->lock, deadline);
        }
        if (!b->head && n_carried == 0)
            continue; /* every waiting job timed out */
        int n = n_carried;
        int64_t samples = carried_samples;
        double now = am__now();
        while (b->head && n < max_batch &&
               (n == 0 || samples + b->head->samples <= max_batch)) {
            struct am__job *j = b->head;
            b->head = j->next;
            if (!b->head)
                b->tail = NULL;
            b->queued--;
            j->next = NULL;
            j->state = AM__JOB_RUNNING;
            j->t_start = now;
            j->queued_s = now - j->t_submit;
            am__hist_time_add(&b->stats.queue_time, j->queued_s);
            samples += j->samples;
            b->jobs[n++] = j;
        }
        b->running = n;
        pthread_mutex_unlock(&b->lock);

        if (b->opt.debug_sleep_ms > 0) {
            struct timespec ts = {b->opt.debug_sleep_ms / 1000,
                                  (long)(b->opt.debug_sleep_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        b->run(b->ctx, b->jobs, n, samples);
        double end = am__now();

        pthread_mutex_lock(&b->lock);
        b->stats.batches++;
        b->stats.samples += samples;
        am__hist_batch_add(&b->stats.batch_size, (double)samples);
        if (samples > b->stats.max_batch_samples)
            b->stats.max_batch_samples = (int)samples;
        n_carried = 0;
        carried_samples = 0;
        for (int i = 0; i < n; i++) {
            struct am__job *j = b->jobs[i];
            b->jobs[i] = NULL;
            if (j->more) { /* not finished: runs again in the next call, ahead of new jobs */
                j->more = 0;
                b->jobs[n_carried++] = j;
                carried_samples += j->samples;
                continue;
            }
            j->batch_samples = (int)samples;
            j->run_s = end - j->t_start;
            j->state = AM__JOB_DONE;
            if (!j->cancelled)
                b->stats.requests++;
            pthread_cond_broadcast(&j->changed);
            if (job_unref_locked(j)) { /* the waiter gave up and left: free it here */
                pthread_mutex_unlock(&b->lock);
                job_free(j);
                pthread_mutex_lock(&b->lock);
            }
        }
        b->running = n_carried;
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

int am__batcher_start(struct am__batcher **out, const struct am__batcher_options *o,
                      am__run_batch run, void *ctx, const char *name)
{
    *out = NULL;
    if (o->max_batch_size < 1 || o->max_queue_size < 1 || o->max_queue_delay_us < 0)
        return am__fail(AMUSE_EINVAL, "batcher: max_batch_size and max_queue_size must be >= 1, "
                                      "max_queue_delay_us >= 0");
    struct am__batcher *b = calloc(1, sizeof *b);
    if (!b)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    b->jobs = calloc((size_t)o->max_batch_size, sizeof *b->jobs);
    if (!b->jobs) {
        free(b);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    b->opt = *o;
    b->run = run;
    b->ctx = ctx;
    snprintf(b->name, sizeof b->name, "%s", name);
    pthread_mutex_init(&b->lock, NULL);
    make_cond(&b->work);
    if (pthread_create(&b->thread, NULL, worker_main, b) != 0) {
        pthread_cond_destroy(&b->work);
        pthread_mutex_destroy(&b->lock);
        free(b->jobs);
        free(b);
        return am__fail(AMUSE_EIO, "batcher for '%s': cannot start a thread", name);
    }
    *out = b;
    return AMUSE_OK;
}

void am__batcher_stop(struct am__batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = 1;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->work);
    pthread_mutex_destroy(&b->lock);
    free(b->jobs);
    free(b);
}

int am__batcher_queued(struct am__batcher *b)
{
    pthread_mutex_lock(&b->lock);
    int n = b->queued;
    pthread_mutex_unlock(&b->lock);
    return n;
}

void am__batcher_stats(struct am__batcher *b, struct am__batch_stats *s)
{
    pthread_mutex_lock(&b->lock);
    *s = b->stats;
    s->queued = b->queued;
    s->running = b->running;
    pthread_mutex_unlock(&b->lock);
}
