/* http.c - the libmicrohttpd glue: one am__request per HTTP request, the body accumulated up to
 * max_body_bytes (a larger Content-Length, or a body that grows past the cap, is answered 413 at
 * once), routing, the API-key check (default deny), the handler, the response, and one JSON
 * access-log line per request (method, path (a route naming a user: its pattern), status,
 * duration, model, key id prefix; never the payload). Handlers only decode/encode: model math is the batchers', image decoding the decode
 * pool's (decode.c).
 *
 * Defences (issue 8): everything a request is refused for is decided on its headers, before a
 * byte of body is read - route, key (401), rate (429), scope (403), Content-Length (400 when
 * repeated with different values, not a number, or sent with chunked encoding; 413 over the cap),
 * so a keyless client can hold no more than libmicrohttpd's per-connection buffer
 * (CONNECTION_MEMORY_LIMIT) on each of its connections. Bodies of authenticated requests all
 * together stay under max_buffered_bytes (503). libmicrohttpd runs one thread per connection, so
 * a slow request holds only its own connection; the connection limit has HEALTH_RESERVE more
 * slots than max_connections, and past max_connections only the health routes are answered
 * (503 for the rest); one client address may hold max_connections_per_client. A reaper thread
 * closes connections whose headers took longer than header_timeout_s from connecting (or from the
 * end of the previous request plus the idle timeout), or whose body takes longer than
 * body_timeout_s (a body still arriving then gets 408). Strict client mode: HTTP/1.1 without Host
 * and spaces in the URL are refused by libmicrohttpd itself. With tls_cert/tls_key the daemon
 * speaks HTTPS (libmicrohttpd's GnuTLS), the PEM texts read by server.c.
 * Error bodies take OpenAI's shape on /v1/... paths (openai.c), KServe's elsewhere.
 * Multipart bodies are parsed by the route that takes them (domain.c), from the whole body.
 * Every authenticated request takes a token from its key's bucket and from its tenant's, and a
 * unit of their daily quotas (ratelimit.c; 429 when any is used up), and is counted in the key's
 * and the tenant's usage.
 * am__client_gone lets a handler waiting for its job notice that the client closed the connection.
 * CORS (only with an allowlist): a preflight OPTIONS from an allowed origin is answered 204
 * before the key check; any other reply to an allowed origin carries Access-Control-Allow-Origin
 * and Vary: Origin. Other origins, and every origin without an allowlist, get no CORS header.
 * Streamed replies (SSE, completions.c): a handler that sets r->stream gets a
 * libmicrohttpd callback response; the reader blocks on its job (one thread per connection, so
 * blocking holds only that connection's thread) and sees a client that left through
 * am__connection_gone. */
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

int am__client_gone(struct am__request *r)
{
    return am__connection_gone(r->conn);
}

int am__connection_gone(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
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
    if (r->stream) { /* SSE: the reader blocks on its job; one thread per connection */
        struct MHD_Response *resp = MHD_create_response_from_callback(
            MHD_SIZE_UNKNOWN, 4096, r->stream, r->stream_cls, r->stream_free);
        r->stream = NULL;
        if (!resp) {
            r->stream_free(r->stream_cls);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        if (r->cors_origin) {
            MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
            MHD_add_response_header(resp, "Vary", "Origin");
        }
        enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
        MHD_destroy_response(resp);
        return ok;
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

/* The key from "Authorization: Bearer <key>", checked against the store: 1 valid, 0 missing,
 * unknown or revoked, -1 the store could not answer (a shared database down or unreachable:
 * the caller answers 503, so a balancer or client retries rather than taking the key for bad). */
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
    int rc = amuse_keystore_verify(r->server->keys, h, len, &r->key);
    if (rc == AMUSE_EIO) {
        am__logf(&r->server->log, "cannot check an API key: %s", amuse_last_error());
        return -1;
    }
    if (rc != AMUSE_OK)
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

/* Count the Content-Length headers and whether they agree (libmicrohttpd keeps the first). */
struct length_headers {
    int n, differ, invalid;
    const char *first;
};

static enum MHD_Result count_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct length_headers *l = cls;
    (void)kind;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) != 0)
        return MHD_YES;
    if (!value || !value[0] || strspn(value, "0123456789") != strlen(value) || strlen(value) > 18)
        l->invalid = 1;
    if (l->n++ == 0)
        l->first = value;
    else if (!l->first || !value || strcmp(l->first, value) != 0)
        l->differ = 1;
    return MHD_YES;
}

/* Decide on the headers alone. Returns 1 when the handler is to run once the body is in;
 * 0 when the reply is already set (an error, or an allowed CORS preflight). */
static int admit(struct am__request *r)
{
    struct amuse_server *s = r->server;
    /* A CORS preflight from an allowed origin: answered for any path without a key (the browser
     * sends none), revealing nothing; the real request that follows needs its key as usual. */
    if (r->cors_origin && strcmp(r->method, "OPTIONS") == 0 &&
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method")) {
        r->preflight = 1;
        r->status = 204;
        return 0;
    }
    struct length_headers lh = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_length, &lh);
    if (lh.invalid || lh.differ) {
        am__reply_error(r, 400, "Content-Length must be one decimal number (%s)",
                        lh.differ ? "two different values were sent" : "not a number");
        return 0;
    }
    const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (te && lh.n) {
        am__reply_error(r, 400, "Content-Length and Transfer-Encoding together are refused");
        return 0;
    }
    if (lh.n && strtoull(lh.first, NULL, 10) > s->opt.max_body_bytes) {
        r->too_big = 1;
        am__reply_error(r, 413, "body of %s bytes is over the %zu-byte limit (max_body_bytes)",
                        lh.first, s->opt.max_body_bytes);
    }
    int path_matched;
    r->route = am__route_match(r->method, r->url, r, &path_matched);
    const struct am__route *rt = r->route;
    if (r->too_big && ((rt && rt->scope == 0) || authenticate(r) == 1))
        return 0; /* the 413 above; anything else needing a key gets 401 first without one */
    if (rt && rt->scope == 0) {
        if (atomic_load(&s->connections) > s->opt.max_connections &&
            rt->handler != am__handle_live && rt->handler != am__handle_ready) {
            r->retry_after = 1;
            am__reply_error(r, 503, "the server is at its connection limit (max_connections)");
            return 0;
        }
        return 1;
    }
    /* Default deny: without a valid key nothing else is revealed, not even whether a path exists. */
    int auth = authenticate(r);
    if (auth < 0) {
        r->retry_after = 1;
        am__reply_error(r, 503, "the key database is unavailable; retry");
        return 0;
    }
    if (!auth) {
        am__reply_error(r, 401, "missing, unknown or revoked API key (send 'Authorization: Bearer "
                                "<key>')");
        return 0;
    }
    if (atomic_load(&s->connections) > s->opt.max_connections) {
        r->retry_after = 1;
        am__reply_error(r, 503, "the server is at its connection limit (max_connections)");
        return 0;
    }
    if (!rt) {
        if (path_matched)
            am__reply_error(r, 405, "%s is not allowed on %s", r->method, r->url);
        else
            am__reply_error(r, 404, "no route for %s %s", r->method, r->url);
        return 0;
    }
    int retry_after;
    if (!am__rate_take(s->usage, r->key.id, s->opt.rate_limit_rps, s->opt.rate_limit_burst,
                       &retry_after)) {
        r->retry_after = retry_after;
        am__reply_error(r, 429, "key %s is over its rate limit of %d requests a second (burst "
                                "%d); retry after %d s",
                        r->key.id, s->opt.rate_limit_rps,
                        s->opt.rate_limit_burst > 0 ? s->opt.rate_limit_burst
                                                    : s->opt.rate_limit_rps,
                        retry_after);
        return 0;
    }
    if (!am__rate_take(s->tenant_usage, r->key.tenant, s->opt.tenant_rate_limit_rps,
                       s->opt.tenant_rate_limit_burst, &retry_after)) {
        r->retry_after = retry_after;
        am__reply_error(r, 429, "tenant %s is over its rate limit of %d requests a second "
                                "(tenant_rate_limit_rps); retry after %d s",
                        r->key.tenant, s->opt.tenant_rate_limit_rps, retry_after);
        return 0;
    }
    int64_t now_s = (int64_t)time(NULL);
    if (!am__quota_take(s->usage, r->key.id, s->opt.quota_requests_per_day, now_s,
                        &retry_after)) {
        r->retry_after = retry_after;
        am__reply_error(r, 429, "key %s has made its %d requests for today (UTC; "
                                "quota_requests_per_day); retry after %d s",
                        r->key.id, s->opt.quota_requests_per_day, retry_after);
        return 0;
    }
    if (!am__quota_take(s->tenant_usage, r->key.tenant, s->opt.tenant_quota_requests_per_day,
                        now_s, &retry_after)) {
        r->retry_after = retry_after;
        am__reply_error(r, 429, "tenant %s has made its %d requests for today (UTC; "
                                "tenant_quota_requests_per_day); retry after %d s",
                        r->key.tenant, s->opt.tenant_quota_requests_per_day, retry_after);
        return 0;
    }
    if (rt->scope == AMUSE_SCOPE_ADMIN && r->key.scope != AMUSE_SCOPE_ADMIN) {
        am__reply_error(r, 403, "this route needs an admin key; key %s has scope '%s'", r->key.id,
                        amuse_key_scope_name(r->key.scope));
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ connection deadlines */

/* One open connection, for the reaper: the socket and when its current phase must be over. */
struct am__conn {
    struct am__conn *prev, *next;
    int fd;
    double deadline; /* CLOCK_MONOTONIC seconds; 0: none (a handler is at work) */
};

static void conn_deadline(struct am__request *r, double deadline)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (!ci || !ci->socket_context)
        return;
    struct am__conn *c = ci->socket_context;
    pthread_mutex_lock(&r->server->conns_lock);
    c->deadline = deadline;
    pthread_mutex_unlock(&r->server->conns_lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct amuse_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&s->connections, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct am__conn *c = calloc(1, sizeof *c);
        *socket_context = c;
        if (!c || !ci)
            return; /* not reaped: the idle timeout still applies */
        c->fd = ci->connect_fd;
        c->deadline = am__now() + s->opt.header_timeout_s;
        pthread_mutex_lock(&s->conns_lock);
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        pthread_mutex_unlock(&s->conns_lock);
        return;
    }
    /* Closed: off the list before libmicrohttpd closes the socket, so the reaper never touches
     * a descriptor that may have been reused. */
    atomic_fetch_sub(&s->connections, 1);
    struct am__conn *c = *socket_context;
    *socket_context = NULL;
    if (!c)
        return;
    pthread_mutex_lock(&s->conns_lock);
    if (c->prev || c->next || s->conns == c) {
        if (c->prev)
            c->prev->next = c->next;
        else if (s->conns == c)
            s->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    pthread_mutex_unlock(&s->conns_lock);
    free(c);
}

/* How often the reaper looks; a deadline is kept to within this. */
#define REAPER_PERIOD_S 0.2

static void *reaper_main(void *arg)
{
    struct amuse_server *s = arg;
    pthread_mutex_lock(&s->conns_lock);
    while (!s->reaper_stop) {
        double now = am__now();
        for (struct am__conn *c = s->conns; c; c = c->next) {
            if (c->deadline > 0 && now > c->deadline) {
                /* Wakes the connection's thread, which then closes it. */
                shutdown(c->fd, SHUT_RDWR);
                c->deadline = 0;
                atomic_fetch_add(&s->reaped, 1);
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double until = ts.tv_sec + ts.tv_nsec * 1e-9 + REAPER_PERIOD_S;
        ts.tv_sec = (time_t)until;
        ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&s->reaper_wake, &s->conns_lock, &ts);
    }
    pthread_mutex_unlock(&s->conns_lock);
    return NULL;
}

/* ------------------------------------------------------------------ requests */

/* Discard the body already held and release its share of the buffered budget. */
static void drop_body(struct am__request *r)
{
    atomic_fetch_sub(&r->server->buffered, r->cap);
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
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
        r->body_deadline = r->start + s->opt.body_timeout_s;
        conn_deadline(r, r->body_deadline + 1.0); /* the reaper closes a body that stalls */
        if (!admit(r)) {
            r->replied = 1;
            return send_reply(r);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->replied)
            return MHD_YES; /* the reply is already queued; the rest is discarded */
        if (am__now() > r->body_deadline) {
            r->replied = 1;
            drop_body(r);
            am__reply_error(r, 408, "the body took longer than %d s (body_timeout_s)",
                            s->opt.body_timeout_s);
            return send_reply(r);
        }
        if (r->too_big)
            return MHD_YES; /* discarded; the 413 goes out at the end of the body */
        if (n > s->opt.max_body_bytes - r->len) {
            /* A body without Content-Length (chunked) grew past the cap. libmicrohttpd cannot
             * send a reply queued in the middle of a chunked upload (the client saw only EOF), so
             * the rest is read and thrown away - bounded by body_timeout_s, holding no memory -
             * and the 413 is queued once the body has ended. */
            r->too_big = 1;
            drop_body(r);
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1)
                cap *= 2;
            size_t held = atomic_fetch_add(&s->buffered, cap - r->cap) + (cap - r->cap);
            char *p = held <= s->opt.max_buffered_bytes ? realloc(r->body, cap) : NULL;
            if (!p) {
                atomic_fetch_sub(&s->buffered, cap - r->cap);
                r->replied = 1;
                drop_body(r);
                r->retry_after = 1;
                am__reply_error(r, 503, "too many request bodies are held at once "
                                        "(max_buffered_bytes); retry");
                return send_reply(r);
            }
            r->body = p;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->replied)
        return MHD_YES;
    if (r->too_big) {
        r->replied = 1;
        am__reply_error(r, 413, "body is over the %zu-byte limit (max_body_bytes)",
                        s->opt.max_body_bytes);
        return send_reply(r);
    }
    conn_deadline(r, 0); /* the handler's time is bounded by request_timeout_ms */
    r->route->handler(r);
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
    if (r->has_key && s->tenant_usage)
        am__usage_add(s->tenant_usage, r->key.tenant, r->status == 200 ? r->items : 0);
    int matched;
    const struct am__route *rt = am__route_match(r->method, r->url, NULL, &matched);
    if (s->metrics)
        am__metrics_request(s->metrics, r->method, rt ? rt->pattern : "other", r->log_model,
                            r->status, ms * 1e-3);
    if (s->log.fn) {
        struct am__buf line = {0};
        time_t now = time(NULL);
        struct tm tm;
        char ts[32];
        gmtime_r(&now, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        am__buf_printf(&line, "{\"ts\": \"%s\", \"method\": ", ts);
        am__buf_json_string(&line, r->method);
        /* A path that names a person (/v1/users/{user}/...) is logged as its pattern: the
         * access log never holds a user id, and never a body or query string. */
        am__buf_puts(&line, ", \"path\": ");
        am__buf_json_string(&line, rt && strstr(rt->pattern, "{user}") ? rt->pattern : r->url);
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
    /* A next request on this connection: idle time, then its headers. */
    conn_deadline(r, am__now() + s->opt.connection_timeout_s + s->opt.header_timeout_s);
    drop_body(r);
    am__buf_release(&r->out);
    if (r->stream) /* a stream set up but never handed to libmicrohttpd */
        r->stream_free(r->stream_cls);
    free(r);
    atomic_fetch_sub(&s->in_flight, 1);
}

/* Percent-decoding of paths and query arguments, except that a path or argument holding "%00" is
 * left as sent: a NUL would cut the C string short ("words-en%00x" naming "words-en"). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    if (strstr(s, "%00"))
        return strlen(s);
    return MHD_http_unescape(s);
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

/* Connections kept beyond max_connections for the health routes. */
#define HEALTH_RESERVE 16

int am__http_start(struct amuse_server *s, const struct sockaddr *addr, int ipv6)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    pthread_mutex_init(&s->conns_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->reaper_wake, &ca);
    pthread_condattr_destroy(&ca);
    s->http_locks = 1;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return am__fail(AMUSE_ENOMEM, "cannot start the connection reaper thread");
    s->reaper_started = 1;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem},
        {MHD_OPTION_END, 0, NULL},
    };
    if (s->tls_cert_pem) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return am__fail(AMUSE_EUNSUPPORTED, "this libmicrohttpd was built without TLS; run "
                                                "behind a TLS proxy (docs/serve.md)");
        flags |= MHD_USE_TLS;
    }
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_ARRAY, s->tls_cert_pem ? tls : tls + 2,
        MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)s->opt.max_connections + HEALTH_RESERVE, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)s->opt.max_connections_per_client, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)s->opt.connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)AM__CONNECTION_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        s, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!s->daemon && s->tls_cert_pem)
        return am__fail(AMUSE_EINVAL, "cannot start HTTPS on %s port %d: is the port free, and "
                                      "are tls_cert and tls_key a PEM certificate and its key?",
                        s->opt.host, s->opt.port);
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
    if (s->reaper_started) {
        pthread_mutex_lock(&s->conns_lock);
        s->reaper_stop = 1;
        pthread_cond_signal(&s->reaper_wake);
        pthread_mutex_unlock(&s->conns_lock);
        pthread_join(s->reaper, NULL);
        s->reaper_started = 0;
    }
    if (s->http_locks) {
        pthread_mutex_destroy(&s->conns_lock);
        pthread_cond_destroy(&s->reaper_wake);
        s->http_locks = 0;
    }
}
