/* handlers.c - one function per route. Each is glue: look the model up, decode the request
 * (v2.c), hand the work to the model's batcher and wait for it with the request's deadline,
 * encode the reply. Status codes: 400 for anything wrong with the request (the message names the
 * field), 404 for an unknown model or version, 503 when the model's queue is full (Retry-After)
 * or the server is shutting down, 504 when the deadline passes (the work is discarded), 500 when
 * the model itself fails. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/runtime.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* How often a request waiting for its model looks whether its client is still there. */
#define AM__CLIENT_CHECK_S 0.025

void am__handle_live(struct am__request *r)
{
    r->status = 200;
    am__buf_puts(&r->out, "{\"live\": true}");
}

void am__handle_ready(struct am__request *r)
{
    int ready = atomic_load(&r->server->ready);
    r->status = ready ? 200 : 503;
    am__buf_puts(&r->out, ready ? "{\"ready\": true}" : "{\"ready\": false}");
}

void am__handle_server_metadata(struct am__request *r)
{
    r->status = 200;
    am__buf_puts(&r->out, "{\"name\": \"amuse\", \"version\": ");
    am__buf_json_string(&r->out, amuse_version());
    am__buf_puts(&r->out, ", \"extensions\": [\"model_repository\", \"statistics\"]}");
}

/* The model named in the path, at the version named in the path if any; NULL after a 404 reply. */
static struct am__model *path_model(struct am__request *r)
{
    struct am__repository *repo = r->server->repo;
    snprintf(r->log_model, sizeof r->log_model, "%s", r->param_model);
    struct am__model *m = am__repository_get(repo, r->param_model);
    if (!m) {
        am__reply_error(r, 404, "model '%s' is not loaded", r->param_model);
        return NULL;
    }
    if (r->param_version) {
        char *end;
        long long v = strtoll(r->param_version, &end, 10);
        if (*end || v != m->version) {
            am__reply_error(r, 404, "model '%s' has no version '%s' loaded (serving %lld)",
                            m->name, r->param_version, (long long)m->version);
            am__model_release(repo, m);
            return NULL;
        }
    }
    return m;
}

void am__handle_model_metadata(struct am__request *r)
{
    struct am__model *m = path_model(r);
    if (!m)
        return;
    r->status = 200;
    am__v2_encode_metadata(m, &r->out);
    am__model_release(r->server->repo, m);
}

void am__handle_model_ready(struct am__request *r)
{
    struct am__model *m = path_model(r);
    if (!m)
        return;
    r->status = 200;
    am__buf_puts(&r->out, "{\"name\": ");
    am__buf_json_string(&r->out, m->name);
    am__buf_printf(&r->out, ", \"version\": \"%lld\", \"ready\": true}", (long long)m->version);
    am__model_release(r->server->repo, m);
}

int am__run_job(struct am__request *r, const struct am__model *m, struct am__job *job)
{
    struct amuse_server *s = r->server;
    int rc = am__batcher_submit(m->batcher, job);
    if (rc) {
        r->retry_after = 1;
        am__reply_status(r, rc, 503);
        return -1;
    }
    double deadline = r->start + s->opt.request_timeout_ms * 1e-3;
    int w;
    /* Wait in slices, looking at the client's socket between them: a client that went away has
     * its job cancelled (dropped from the queue, or its result discarded). */
    while ((w = am__job_wait_until(job, deadline, am__now() + AM__CLIENT_CHECK_S)) > 0) {
        if (w == 1) { /* partial results: none for these models */
            free(am__job_next_chunk(job));
        } else if (am__client_gone(r)) {
            am__job_cancel(job);
            am__reply_error(r, 499, "model '%s': the client closed the connection; the work was "
                                    "dropped",
                            m->name);
            return -1;
        }
    }
    if (w < 0) {
        am__reply_error(r, 504, "model '%s': no result within %d ms (request_timeout_ms); the "
                                "work was discarded",
                        m->name, s->opt.request_timeout_ms);
        return -1;
    }
    if (job->status) {
        am__reply_error(r, 500, "model '%s' failed: %s", m->name,
                        job->error[0] ? job->error : amuse_strerror(job->status));
        return -1;
    }
    r->batch_size = job->batch_samples;
    return 0;
}

void am__handle_infer(struct am__request *r)
{
    struct amuse_server *s = r->server;
    struct am__model *m = path_model(r);
    if (!m)
        return;
    struct am__v2_request req;
    struct am__job *job = NULL;
    int rc = am__v2_parse(r->body ? r->body : "", r->len, s->opt.max_json_depth, &req);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    job = am__job_new();
    if (!job) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    rc = am__v2_build_job(m, &req, job);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    if (am__run_job(r, m, job))
        goto out;
    r->status = 200;
    r->items = job->samples;
    am__v2_encode_reply(m, &req, job, &r->out);
out:
    am__job_unref(job);
    am__v2_request_release(&req);
    am__model_release(s->repo, m);
}

void am__handle_model_stats(struct am__request *r)
{
    struct am__model *m = path_model(r);
    if (!m)
        return;
    struct am__batch_stats st;
    am__batcher_stats(m->batcher, &st);
    r->status = 200;
    am__buf_puts(&r->out, "{\"model_stats\": [{\"name\": ");
    am__buf_json_string(&r->out, m->name);
    am__buf_printf(&r->out,
                   ", \"version\": \"%lld\", \"request_count\": %lld, \"inference_count\": %lld, "
                   "\"execution_count\": %lld, \"max_batch_size_seen\": %d, "
                   "\"rejected_queue_full\": %lld, \"timed_out\": %lld, \"cancelled\": %lld, "
                   "\"queue_depth\": %d}]}",
                   (long long)m->version, (long long)st.requests, (long long)st.samples,
                   (long long)st.batches, st.max_batch_samples, (long long)st.rejected_full,
                   (long long)st.timed_out, (long long)st.cancelled, st.queued);
    am__model_release(r->server->repo, m);
}

void am__handle_repository_index(struct am__request *r)
{
    r->status = 200;
    am__repository_index_json(r->server->repo, &r->out);
}

void am__handle_repository_load(struct am__request *r)
{
    snprintf(r->log_model, sizeof r->log_model, "%s", r->param_model);
    int64_t version = 0;
    int rc = am__repository_load(r->server->repo, r->param_model, &version);
    if (rc) {
        am__reply_status(r, rc, rc == AMUSE_ENOTFOUND ? 404 : 400);
        return;
    }
    r->status = 200;
    am__buf_puts(&r->out, "{\"name\": ");
    am__buf_json_string(&r->out, r->param_model);
    am__buf_printf(&r->out, ", \"version\": \"%lld\", \"loaded\": true}", (long long)version);
}
