/* handlers.c - one function per route. Each is glue: look the model up, decode the request
 * (v2.c), hand the work to the model's batcher and wait for it with the request's deadline,
 * encode the reply. Status codes: 400 for anything wrong with the request (the message names the
 * field), 404 for an unknown model or version, 503 when the model's queue is full (Retry-After)
 * or the server is shutting down, 504 when the deadline passes (the work is discarded), 500 when
 * the model itself fails. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/runtime.h"

#include <microhttpd.h>
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
    am__buf_puts(&r->out, ", \"extensions\": [\"model_repository\", \"statistics\", "
                          "\"binary_tensor_data\"]}");
}

/* The model named in the path, at the version named in the path if any; NULL after a 404 reply
 * (am__route_model's for a model that is not loaded or not the key's tenant's). */
static struct am__model *path_model(struct am__request *r)
{
    struct am__repository *repo = r->server->repo;
    struct am__model *m = am__route_model(r, r->param_model, AM__NEED_ANY);
    if (!m)
        return NULL;
    if (r->param_version) {
        /* Digits only, no sign, no leading zero: "01" and "+1" name no version. */
        const char *v = r->param_version;
        int canonical = v[0] && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 18 &&
                        (v[0] != '0' || !v[1]);
        if (!canonical || strtoll(v, NULL, 10) != m->version) {
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

/* Wait for a submitted job until the request's deadline, looking at the client's socket between
 * slices: a client that went away has its job cancelled (dropped from the queue, or its result
 * discarded). 0 when the job is done; otherwise the error reply is set (499, 504). */
static int await_job(struct am__request *r, struct am__job *job, const char *what,
                     const char *name)
{
    struct amuse_server *s = r->server;
    double deadline = r->start + s->opt.request_timeout_ms * 1e-3;
    int w;
    while ((w = am__job_wait_until(job, deadline, am__now() + AM__CLIENT_CHECK_S)) > 0) {
        if (w == 1) { /* partial results: none for these models */
            free(am__job_next_chunk(job));
        } else if (am__client_gone(r)) {
            am__job_cancel(job);
            am__reply_error(r, 499, "%s '%s': the client closed the connection; the work was "
                                    "dropped",
                            what, name);
            return -1;
        }
    }
    if (w < 0) {
        am__reply_error(r, 504, "%s '%s': no result within %d ms (request_timeout_ms); the "
                                "work was discarded",
                        what, name, s->opt.request_timeout_ms);
        return -1;
    }
    return 0;
}

int am__run_decode(struct am__request *r, const struct am__model *m, struct am__job *d)
{
    int rc = am__decode_submit(r->server, d);
    if (rc) {
        r->retry_after = 1;
        am__reply_status(r, rc, 503);
        return -1;
    }
    if (await_job(r, d, "input for model", m->name))
        return -1;
    if (d->status) {
        am__reply_error(r, d->status == AMUSE_ETOOBIG ? 413 : d->status == AMUSE_ENOMEM ? 500
                                                                                       : 400,
                        "%s", d->error[0] ? d->error : amuse_strerror(d->status));
        return -1;
    }
    return 0;
}

/* The images (or sounds) of job->decode, decoded on the decode pool into job->input. */
static int run_decode(struct am__request *r, const struct am__model *m, struct am__job *job)
{
    struct am__job *d = job->decode;
    if (am__run_decode(r, m, d))
        return -1;
    free(job->input);
    job->input = d->input; /* the pool is done with it */
    d->input = NULL;
    return 0;
}

int am__run_job(struct am__request *r, const struct am__model *m, struct am__job *job)
{
    if (job->decode && run_decode(r, m, job))
        return -1;
    int rc = am__batcher_submit(m->batcher, job);
    if (rc) {
        r->retry_after = 1;
        am__reply_status(r, rc, 503);
        return -1;
    }
    if (await_job(r, job, "model", m->name))
        return -1;
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
    /* The binary tensor extension: the JSON is this many bytes, the tensors' bytes follow. */
    const char *ihcl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                   "Inference-Header-Content-Length");
    long long header_len = -1;
    if (ihcl) {
        size_t digits = strspn(ihcl, "0123456789");
        if (digits == 0 || ihcl[digits] || digits > 18) {
            memset(&req, 0, sizeof req);
            am__reply_error(r, 400, "Inference-Header-Content-Length must be a decimal number of "
                                    "bytes");
            goto out;
        }
        header_len = strtoll(ihcl, NULL, 10);
    }
    int rc = am__v2_parse_binary(r->body ? r->body : "", r->len, header_len,
                                 s->opt.max_json_depth, &req);
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    job = am__job_new();
    if (!job) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    rc = am__v2_build_job(s, m, &req, job);
    if (rc) {
        am__reply_status(r, rc, rc == AMUSE_ETOOBIG ? 413 : 400);
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
                   "\"queue_depth\": %d",
                   (long long)m->version, (long long)st.requests, (long long)st.samples,
                   (long long)st.batches, st.max_batch_samples, (long long)st.rejected_full,
                   (long long)st.timed_out, (long long)st.cancelled, st.queued);
    if (m->kind->stats_json)
        m->kind->stats_json(m, &r->out);
    am__buf_puts(&r->out, "}]}");
    am__model_release(r->server->repo, m);
}

void am__handle_repository_index(struct am__request *r)
{
    r->status = 200;
    am__repository_index_json(r->server->repo, &r->out);
}

void am__handle_repository_load(struct am__request *r)
{
    int64_t version = 0;
    int rc = am__repository_load(r->server->repo, r->param_model, &version);
    if (rc) {
        am__reply_status(r, rc, rc == AMUSE_ENOTFOUND ? 404 : 400);
        return;
    }
    snprintf(r->log_model, sizeof r->log_model, "%s", r->param_model); /* it exists */
    r->status = 200;
    am__buf_puts(&r->out, "{\"name\": ");
    am__buf_json_string(&r->out, r->param_model);
    am__buf_printf(&r->out, ", \"version\": \"%lld\", \"loaded\": true}", (long long)version);
}
