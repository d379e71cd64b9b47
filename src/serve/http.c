/* http.c - the libmicrohttpd glue: one am__request per HTTP request, the body accumulated up to
 * max_body_bytes (a larger Content-Length, or a body that grows past the cap, is answered 413 at
 * once), routing, the API-key check (default deny), the handler, the response, and one JSON
 * access-log line per request (method, path, status, duration, model, key id prefix; never the
 * payload). Handlers run on MHD's pool threads and only decode/encode: model math is the batchers'.
 * Error bodies take OpenAI's shape on /v1/... paths (openai.c), KServe's elsewhere.
 * Multipart bodies are parsed by the route that takes them (domain.c), from the whole body.
 * Every authenticated request takes a token from its key's bucket (ratelimit.c; 429 when empty)
 * and is counted in the key's usage.
 * am__client_gone lets a handler waiting for its job notice that the client closed the connection.
 * CORS (only with an allowlist): a preflight OPTIONS from an allowed origin is answered 204
 * before the key check; any other reply to an allowed origin carries Access-Control-Allow-Origin
 * and Vary: Origin. Other origins, and every origin without an allowlist, get no CORS header.
 * Not here: streamed (SSE) responses - a later phase adds them here around the same request
 * object. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <microhttpd.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void am__reply_error(struct am__request *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    am__buf_release(&r->out);
    r->status = status;
    if (am__openai_path(r->url)) {
        am__openai_error(&r->out, status, msg);
        return;
    }
    am__buf_puts(&r->out, "{\"error\": ");
    am__buf_json_string(&r->out, msg);
    am__buf_puts(&r->out, "}");
}

int am__client_gone(struct am__request *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci || ci->connect_fd == MHD_INVALID_SOCKET)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
        return 1;
    if (!(p.revents & (POLLIN | POLLRDHUP)))
        return 0;
    /* Readable: the end of the stream (the peer closed), or bytes of a pipelined request. */
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0;
}

void am__reply_status(struct am__request *r, int status, int http_status)
{
    if (status == AMUSE_ENOMEM) /* the one place: running out of memory is never the client's */
        http_status = 500;
    const char *msg = amuse_last_error();
    am__reply_error(r, http_status, "%s", msg[0] ? msg : amuse_strerror(status));
}

static enum MHD_Result send_reply(struct am__request *r)
{
    if (r->out.failed) {
        am__buf_release(&r->out);
        r->status = 500;
        am__buf_puts(&r->out, "{\"error\": \"out of memory while encoding the reply\"}");
    }
    if (r->status == 0) {
        r->status = 500;
        am__buf_puts(&r->out, "{\"error\": \"no reply\"}");
    }
    /* MHD frees the body (MHD_RESPMEM_MUST_FREE) once sent. */
    size_t len = r->out.len;
    char *data = r->out.data;
    if (!data) {
        data = strdup("");
        len = 0;
    }
    memset(&r->out, 0, sizeof r->out);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(data);
        return MHD_NO;
    }
    if (r->status != 204) /* no content, no type */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "application/json");
    char num[32];
    if (r->retry_after > 0) {
        snprintf(num, sizeof num, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, num);
    }
    if (r->batch_size > 0) {
        snprintf(num, sizeof num, "%d", r->batch_size);
        MHD_add_response_header(resp, "X-Amuse-Batch-Size", num);
    }
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (r->status == 405) {
        const char *allow = NULL;
        for (const struct am__route *rt = am__routes; rt->method; rt++) {
            struct am__request probe;
            int matched = 0;
            memset(&probe, 0, sizeof probe);
            if (am__route_match(rt->method, r->url, &probe, &matched) == rt) {
                allow = rt->method;
                break;
            }
        }
        if (allow)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    }
    for (const char *const *h = r->headers; h && h[0] && h[1]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    if (r->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        if (r->preflight) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        } else {
            MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                    "Retry-After, X-Amuse-Batch-Size");
        }
    }
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* The key from "Authorization: Bearer <key>", checked against the store. */
static int authenticate(struct am__request *r)
{
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h)
        return 0;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    size_t len = strlen(h);
    while (len && h[len - 1] == ' ')
        len--;
    if (amuse_keystore_verify(r->server->keys, h, len, &r->key) != AMUSE_OK)
        return 0;
    r->has_key = 1;
    return 1;
}

/* The request's Origin if the allowlist has it (ASCII case-insensitive), else NULL. */
static const char *allowed_origin(struct am__request *r)
{
    const struct amuse_server *s = r->server;
    if (s->n_cors == 0)
        return NULL;
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return NULL;
    for (int i = 0; i < s->n_cors; i++)
        if (strcasecmp(origin, s->cors[i]) == 0)
            return origin;
    return NULL;
}

static void dispatch(struct am__request *r)
{
    /* A CORS preflight from an allowed origin: answered for any path without a key (the browser
     * sends none), revealing nothing; the real request that follows needs its key as usual. */
    if (r->cors_origin && strcmp(r->method, "OPTIONS") == 0 &&
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method")) {
        r->preflight = 1;
        r->status = 204;
        return;
    }
    int path_matched;
    const struct am__route *rt = am__route_match(r->method, r->url, r, &path_matched);
    if (rt && rt->scope == 0) {
        rt->handler(r);
        return;
    }
    /* Default deny: without a valid key nothing else is revealed, not even whether a path exists. */
    if (!authenticate(r)) {
        am__reply_error(r, 401, "missing, unknown or revoked API key (send 'Authorization: Bearer "
                                "<key>')");
        return;
    }
    if (!rt) {
        if (path_matched)
            am__reply_error(r, 405, "%s is not allowed on %s", r->method, r->url);
        else
            am__reply_error(r, 404, "no route for %s %s", r->method, r->url);
        return;
    }
    int retry_after;
    if (!am__rate_take(r->server->usage, r->key.id, r->server->opt.rate_limit_rps,
                       r->server->opt.rate_limit_burst, &retry_after)) {
        r->retry_after = retry_after;
        am__reply_error(r, 429, "key %s is over its rate limit of %d requests a second (burst "
                                "%d); retry after %d s",
                        r->key.id, r->server->opt.rate_limit_rps,
                        r->server->opt.rate_limit_burst > 0 ? r->server->opt.rate_limit_burst
                                                            : r->server->opt.rate_limit_rps,
                        retry_after);
        return;
    }
    if (rt->scope == AMUSE_SCOPE_ADMIN && r->key.scope != AMUSE_SCOPE_ADMIN) {
        am__reply_error(r, 403, "this route needs an admin key; key %s has scope '%s'", r->key.id,
                        amuse_key_scope_name(r->key.scope));
        return;
    }
    rt->handler(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct amuse_server *s = cls;
    struct am__request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->server = s;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->start = am__now();
        r->cors_origin = allowed_origin(r); /* before any reply, 413 included */
        atomic_fetch_add(&s->in_flight, 1);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > s->opt.max_body_bytes) {
            r->too_big = 1;
            am__reply_error(r, 413, "body of %s bytes is over the %zu-byte limit "
                                    "(max_body_bytes)",
                            cl, s->opt.max_body_bytes);
            return send_reply(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_big)
            return MHD_YES; /* 413 already queued; the rest is discarded */
        if (n > s->opt.max_body_bytes - r->len) {
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            am__reply_error(r, 413, "body is over the %zu-byte limit (max_body_bytes)",
                            s->opt.max_body_bytes);
            return send_reply(r);
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *p = realloc(r->body, cap);
            if (!p)
                return MHD_NO;
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->too_big)
        return MHD_YES;
    dispatch(r);
    return send_reply(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct amuse_server *s = cls;
    struct am__request *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    double ms = (am__now() - r->start) * 1e3;
    if (r->has_key && s->usage)
        am__usage_add(s->usage, r->key.id, r->status == 200 ? r->items : 0);
    if (s->metrics) {
        int matched;
        const struct am__route *rt = am__route_match(r->method, r->url, NULL, &matched);
        am__metrics_request(s->metrics, r->method, rt ? rt->pattern : "other", r->log_model,
                            r->status, ms * 1e-3);
    }
    if (s->log.fn) {
        struct am__buf line = {0};
        time_t now = time(NULL);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        am__buf_printf(&line, "{\"ts\": \"%s\", \"method\": ", ts);
        am__buf_json_string(&line, r->method);
        am__buf_puts(&line, ", \"path\": ");
        am__buf_json_string(&line, r->url);
        am__buf_printf(&line, ", \"status\": %d, \"duration_ms\": %.3f", r->status, ms);
        if (r->log_model[0]) {
            am__buf_puts(&line, ", \"model\": ");
            am__buf_json_string(&line, r->log_model);
        }
        if (r->has_key)
            am__buf_printf(&line, ", \"key\": \"%.6s\"", r->key.id);
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
            am__buf_puts(&line, ", \"aborted\": true");
        am__buf_puts(&line, "}");
        if (!line.failed)
            s->log.fn(s->log.ctx, line.data);
        am__buf_release(&line);
    }
    free(r->body);
    am__buf_release(&r->out);
    free(r);
    atomic_fetch_sub(&s->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct amuse_server *s = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* "Failed to bind to port 0" names the port field of MHD's options, not the address asked
     * for; am__http_start reports the failure with the real host and port instead. */
    if (strncmp(line, "Failed to bind to port", 22) == 0)
        return;
    am__logf(&s->log, "http: %s", line);
}

int am__http_start(struct amuse_server *s, const struct sockaddr *addr, int ipv6)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->opt.threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->opt.max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->opt.connection_timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    if (!s->daemon)
        return am__fail(AMUSE_EIO, "cannot listen on %s port %d (in use, or not an address "
                                   "of this machine?)",
                        s->opt.host, s->opt.port);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->opt.port;
    return AMUSE_OK;
}

/* Stop listening; connections already open stay. */
void am__http_quiesce(struct amuse_server *s)
{
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

void am__http_stop(struct amuse_server *s)
{
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
