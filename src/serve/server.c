/* server.c - the server's life: options and their defaults, start (key store, repository, HTTP),
 * graceful drain (the repository poller stops first), and teardown in reverse order. Signals are
 * the caller's business (the amuse command waits for SIGTERM/SIGINT and calls amuse_server_drain).
 */
#define _GNU_SOURCE
#include "serve/serve_internal.h"
#include "recsys/events_store.h"
#include "serve/test_control.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

void amuse_serve_options_default(struct amuse_serve_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8000;
    o->repository = "repository";
    o->database = "amuse.db";
    o->threads = 4;
    o->max_body_bytes = (size_t)16 << 20;
    o->max_buffered_bytes = (size_t)256 << 20;
    o->max_connections = 256;
    o->max_connections_per_client = 64;
    o->connection_timeout_s = 30;
    o->header_timeout_s = 10;
    o->body_timeout_s = 60;
    o->max_request_pixels = (size_t)16 << 20;
    o->max_json_depth = 32;
    o->max_batch_size = 32;
    o->max_queue_delay_us = 2000;
    o->max_queue_size = 256;
    o->request_timeout_ms = 10000;
    o->drain_timeout_ms = 10000;
    o->usage_flush_s = 60;
    o->poll_interval_s = 5;
    o->key_cache_ms = -1;
}

/* An origin as browsers send it: http or https, a host (letters, digits, '.', '-', or a [v6]
 * literal) and an optional port; no path, no trailing '/'. */
static int origin_ok(const char *s, size_t n)
{
    size_t k;
    if (n > 7 && strncmp(s, "http://", 7) == 0)
        k = 7;
    else if (n > 8 && strncmp(s, "https://", 8) == 0)
        k = 8;
    else
        return 0;
    if (n - k > 253 + 7)
        return 0;
    for (; k < n; k++) {
        char c = s[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return 0;
    }
    return 1;
}

int am__cors_parse(struct amuse_server *s, const char *list)
{
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t n = (size_t)(end - p);
        while (n && p[n - 1] == ' ')
            n--;
        if (!origin_ok(p, n))
            return am__fail(AMUSE_EINVAL,
                            "cors_origins: '%.*s' is not an origin like https://app.example or "
                            "http://localhost:3000 (scheme, host, optional port; no path)",
                            (int)(n > 200 ? 200 : n), p);
        if (s->n_cors == AM__CORS_MAX_ORIGINS)
            return am__fail(AMUSE_EINVAL, "cors_origins: more than %d origins",
                            AM__CORS_MAX_ORIGINS);
        if (!s->cors && !(s->cors = calloc(AM__CORS_MAX_ORIGINS, sizeof *s->cors)))
            return am__fail(AMUSE_ENOMEM, "out of memory");
        if (!(s->cors[s->n_cors] = strndup(p, n)))
            return am__fail(AMUSE_ENOMEM, "out of memory");
        s->n_cors++;
        p = end;
    }
    if (s->n_cors == 0)
        return am__fail(AMUSE_EINVAL, "cors_origins: no origin given");
    return AMUSE_OK;
}

static int check_options(const struct amuse_serve_options *o)
{
#define RANGE(field, lo, hi)                                                                       \
    if ((long long)o->field < (lo) || (long long)o->field > (hi))                                  \
        return am__fail(AMUSE_EINVAL, #field " %lld is outside [%lld, %lld]",                      \
                        (long long)o->field, (long long)(lo), (long long)(hi));
    RANGE(port, 0, 65535)
    RANGE(threads, 1, 1024)
    RANGE(max_body_bytes, 1024, 1LL << 30)
    RANGE(max_buffered_bytes, 1024, 1LL << 40)
    RANGE(max_connections, 1, 100000)
    RANGE(max_connections_per_client, 1, 100000)
    RANGE(connection_timeout_s, 1, 3600)
    RANGE(header_timeout_s, 1, 3600)
    RANGE(body_timeout_s, 1, 3600)
    RANGE(max_request_pixels, 1, 1LL << 40)
    RANGE(max_image_pixels, 0, 40000000)
    RANGE(max_json_depth, 2, 1000)
    RANGE(max_batch_size, 1, 4096)
    RANGE(max_queue_delay_us, 0, 10000000)
    RANGE(max_queue_size, 1, 1000000)
    RANGE(request_timeout_ms, 1, 3600000)
    RANGE(drain_timeout_ms, 0, 3600000)
    RANGE(rate_limit_rps, 0, 1000000)
    RANGE(rate_limit_burst, 0, 1000000)
    RANGE(tenant_rate_limit_rps, 0, 1000000)
    RANGE(tenant_rate_limit_burst, 0, 1000000)
    RANGE(quota_requests_per_day, 0, 2000000000)
    RANGE(tenant_quota_requests_per_day, 0, 2000000000)
    RANGE(usage_flush_s, 1, 86400)
    RANGE(model_threads, 0, 1024)
    RANGE(poll_interval_s, 0, 86400)
    RANGE(key_cache_ms, -1, 3600000)
#undef RANGE
    if (!o->host || !o->repository || !o->database)
        return am__fail(AMUSE_EINVAL, "host, repository and database must be set");
    return AMUSE_OK;
}

int amuse_server_start(struct amuse_server **out, const struct amuse_serve_options *o,
                       char *first_admin_key)
{
    *out = NULL;
    if (first_admin_key)
        first_admin_key[0] = '\0';
    int rc = check_options(o);
    if (rc)
        return rc;
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    memset(&addr, 0, sizeof addr);
    int ipv6 = 0;
    if (inet_pton(AF_INET, o->host, &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, o->host, &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons((uint16_t)o->port);
        ipv6 = 1;
    } else {
        return am__fail(AMUSE_EINVAL, "host '%s' is not an IPv4 or IPv6 address", o->host);
    }

    struct amuse_server *s = calloc(1, sizeof *s);
    if (!s)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    s->opt = *o;
    s->host = strdup(o->host);
    s->repository_dir = strdup(o->repository);
    s->database_path = strdup(o->database);
    if (!s->host || !s->repository_dir || !s->database_path) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto fail;
    }
    s->opt.host = s->host;
    s->opt.repository = s->repository_dir;
    if (o->sentiment_model && !(s->sentiment_model = strdup(o->sentiment_model))) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto fail;
    }
    s->opt.sentiment_model = s->sentiment_model;
    s->opt.database = s->database_path;
    s->log.fn = o->log;
    s->log.ctx = o->log_ctx;

    if (o->cors_origins && (rc = am__cors_parse(s, o->cors_origins)))
        goto fail;
    if (!o->tls_cert != !o->tls_key) {
        rc = am__fail(AMUSE_EINVAL, "tls_cert and tls_key go together: give both, or neither "
                                    "for plain HTTP");
        goto fail;
    }
    if (o->tls_cert) {
        size_t len;
        if ((rc = am__read_file(o->tls_cert, AM__TLS_FILE_MAX, &s->tls_cert_pem, &len)) ||
            (rc = am__read_file(o->tls_key, AM__TLS_FILE_MAX, &s->tls_key_pem, &s->tls_key_len)))
            goto fail;
    }
    s->opt.tls_cert = s->opt.tls_key = NULL; /* the texts are read; the paths are the caller's */
    s->opt.cors_origins = NULL; /* the parsed list is s->cors */
    rc = am__metrics_new(&s->metrics);
    if (rc)
        goto fail;
    rc = amuse_keystore_open(&s->keys, s->database_path);
    if (rc)
        goto fail;
    {
        int ms = o->key_cache_ms;
        if (ms < 0)
            ms = strcmp(am__keystore_backend(s->keys), "postgres") == 0 ? 1000 : 0;
        am__keystore_set_cache(s->keys, ms / 1000.0, NULL);
    }
    rc = am__events_open(&s->events, s->database_path);
    if (rc)
        goto fail;
    rc = am__usage_new(&s->usage, s->keys, o->usage_flush_s, &s->log);
    if (rc)
        goto fail;
    rc = am__usage_new_tenants(&s->tenant_usage, s->keys, o->usage_flush_s, &s->log);
    if (rc)
        goto fail;
    int64_t active = 0;
    rc = amuse_keystore_active_count(s->keys, &active);
    if (rc)
        goto fail;
    if (active == 0 && first_admin_key) {
        struct amuse_key_info info;
        rc = amuse_keystore_create(s->keys, "default", AMUSE_SCOPE_ADMIN, first_admin_key, &info);
        if (rc)
            goto fail;
    }

    struct am__batcher_options bo = {o->max_batch_size, o->max_queue_delay_us, o->max_queue_size,
                                     am__test_batch_sleep_ms()};
    rc = am__repository_open(&s->repo, s->repository_dir, &bo, o->model_threads, &s->log);
    if (rc)
        goto fail;
    rc = am__static_open(s);
    if (rc)
        goto fail;
    rc = am__decoders_start(s);
    if (rc)
        goto fail;
    rc = am__http_start(s, &addr.sa, ipv6);
    if (rc)
        goto fail;
    rc = am__repository_poll_start(s->repo, o->poll_interval_s);
    if (rc)
        goto fail;
    atomic_store(&s->ready, 1);
    am__logf(&s->log, "listening on http%s://%s%s%s:%d/ (%d models, %d decode threads)",
             s->tls_cert_pem ? "s" : "", ipv6 ? "[" : "", s->host, ipv6 ? "]" : "", s->port,
             am__repository_count(s->repo), o->threads);
    *out = s;
    return AMUSE_OK;
fail:
    amuse_server_free(s);
    return rc;
}

int amuse_server_port(const struct amuse_server *s)
{
    return s->port;
}

int amuse_server_drain(struct amuse_server *s)
{
    atomic_store(&s->ready, 0);
    am__repository_poll_stop(s->repo); /* no reload starts while draining */
    am__http_quiesce(s);
    double deadline = am__now() + s->opt.drain_timeout_ms * 1e-3;
    int left;
    while ((left = atomic_load(&s->in_flight)) > 0 && am__now() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return left;
}

void amuse_server_free(struct amuse_server *s)
{
    if (!s)
        return;
    am__http_stop(s);           /* no handler runs after this */
    am__decoders_stop(s);       /* no handler waits for them any more */
    am__usage_free(s->usage);   /* the last usage figures go to the database */
    am__usage_free(s->tenant_usage);
    am__repository_free(s->repo); /* batchers finish their queues, then the models go */
    am__events_close(s->events);
    amuse_keystore_close(s->keys);
    am__metrics_free(s->metrics);
    free(s->host);
    free(s->repository_dir);
    free(s->database_path);
    free(s->sentiment_model);
    free(s->web_root);
    free(s->tls_cert_pem);
    if (s->tls_key_pem)
        sodium_memzero(s->tls_key_pem, s->tls_key_len);
    free(s->tls_key_pem);
    for (int i = 0; i < s->n_cors; i++)
        free(s->cors[i]);
    free(s->cors);
    free(s);
}
