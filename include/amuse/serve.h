/* amuse/serve.h - the model server (KServe V2 over HTTP) and its API-key store.
 *
 * The server loads every model of a repository directory (<repo>/<model>/<version>/), answers the
 * KServe V2 REST protocol (JSON, and the binary tensor extension) with libmicrohttpd, one thread
 * per connection, and hands inference to one dynamic batcher per model: HTTP threads parse and
 * encode, a pool of decode workers decodes images, a worker thread per model runs the model math.
 * A key sees only public models and its tenant's (a `tenants` file in the model's directory).
 * Requests are refused on their headers where they can be (401, 403, 404, 413, 429) before any
 * body is read; headers and bodies have total deadlines; connections are limited in all and per
 * client address, with slots kept for the health routes. HTTPS with tls_cert/tls_key.
 * Every route except GET /v2/health/... and the playground's files (GET /, GET /web/...) needs
 * an API key ("Authorization: Bearer <key>"); keys live in SQLite, stored only
 * as keyed BLAKE2b hashes. docs/serve.md describes the routes, the repository layout and the
 * options; docs/openapi.yaml is the API description.
 *
 * GET /v1/models and POST /v1/embeddings answer the OpenAI API (errors in its shape on /v1/...);
 * /v1/images/classify (multipart or raw image) and /v1/words/{similar,analogy} need no tensors.
 * GET /metrics (admin) is in the Prometheus text format.
 * User data lives in the same database, walled by tenant: POST /v1/events (all-or-nothing,
 * idempotent batches; reviews scored by a sentiment model as they are stored), POST /v1/items,
 * GET /v1/items/{item}, and for the tenant's admin key GET /v1/users/{user}/events and /export
 * and DELETE /v1/users/{user} (docs/serve.md, "User data").
 * Per-key and per-tenant token buckets and daily quotas answer 429; per-key usage counters and
 * the daily counts are flushed to the key database.
 * The repository is polled for new or changed versions (poll_interval_s) and reloaded on demand
 * through the admin route. CORS is off unless an allowlist of origins is given: preflight requests
 * (OPTIONS) from those origins are answered without a key, and their other requests (which still
 * need one) get Access-Control-Allow-Origin. Not here (yet): SSE streaming.
 *
 * The library never prints: log lines (start-up, broken model versions, the JSON access log) go to
 * the options' log callback. Every function returns AMUSE_OK or a negative status and sets
 * amuse_last_error().
 */
#ifndef AMUSE_SERVE_H
#define AMUSE_SERVE_H

#include "amuse/version.h" /* AMUSE_API */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------- key store */

/* A key as given to clients: "amuse_<id>_<secret>", id 12 hex digits, secret 43 base64url chars. */
#define AMUSE_KEY_TOKEN_MAX 80
#define AMUSE_KEY_ID_LEN 12
#define AMUSE_TENANT_MAX 64

enum amuse_key_scope { AMUSE_SCOPE_INFER = 1, AMUSE_SCOPE_ADMIN = 2 };

struct amuse_key_info {
    char id[AMUSE_KEY_ID_LEN + 1];
    char tenant[AMUSE_TENANT_MAX + 1];
    int scope;       /* enum amuse_key_scope */
    int64_t created; /* Unix seconds */
    int64_t revoked; /* Unix seconds, 0 while the key is valid */
    int64_t requests, items; /* usage as last flushed by a server (amuse_keystore_list only) */
};

struct amuse_keystore;

/* Open (creating if needed, with its parent directory) a SQLite key database at path, or, when
 * path is a "postgres://" or "postgresql://" url, the key tables in that PostgreSQL database
 * (created if missing; AMUSE_EUNSUPPORTED when amuse was built without PostgreSQL), which several
 * servers may share. The database holds a random 32-byte salt made on creation; a key is stored
 * as BLAKE2b-256(key = salt, message = the whole token), never in clear. The store is safe to
 * share between threads; it reads the table on every verification, so a revocation from any
 * process is seen by the next request. Error messages name a url without its password. */
AMUSE_API int amuse_keystore_open(struct amuse_keystore **out, const char *path);
AMUSE_API void amuse_keystore_close(struct amuse_keystore *ks); /* NULL is fine */

/* Make a new key. tenant: 1..AMUSE_TENANT_MAX bytes of [A-Za-z0-9._-]. token receives the key
 * (the only time it exists in clear); info (may be NULL) its record. */
AMUSE_API int amuse_keystore_create(struct amuse_keystore *ks, const char *tenant, int scope,
                          char token[AMUSE_KEY_TOKEN_MAX], struct amuse_key_info *info);

/* Check a presented token: AMUSE_OK and *info for a valid key; AMUSE_ENOTFOUND for a malformed,
 * unknown or revoked one (the message says which, for logs; clients only ever see 401). The hash
 * comparison is constant-time. */
AMUSE_API int amuse_keystore_verify(struct amuse_keystore *ks, const char *token, size_t len,
                          struct amuse_key_info *info);

/* Revoke by id: AMUSE_ENOTFOUND if there is no such key, AMUSE_EINVAL if already revoked. */
AMUSE_API int amuse_keystore_revoke(struct amuse_keystore *ks, const char *id);

/* All keys, oldest first. *keys is malloc'ed (free it); *n its length. */
AMUSE_API int amuse_keystore_list(struct amuse_keystore *ks, struct amuse_key_info **keys, int64_t *n);

/* Add to a key's persisted usage counters (requests made, items processed: samples, inputs or
 * queries). A key id with no key row is accepted (the key may have been deleted meanwhile). */
AMUSE_API int amuse_keystore_add_usage(struct amuse_keystore *ks, const char *id, int64_t requests,
                             int64_t items);

/* Number of keys that are not revoked. */
AMUSE_API int amuse_keystore_active_count(struct amuse_keystore *ks, int64_t *n);

AMUSE_API const char *amuse_key_scope_name(int scope); /* "infer", "admin" */
AMUSE_API int amuse_key_scope_parse(const char *name); /* the scope, or 0 */

/* ---------------------------------------------------------------------------------- server */

struct amuse_serve_options {
    const char *host;         /* listen address (default "127.0.0.1"; IPv4 or IPv6 literal) */
    int port;                 /* 0 picks a free port (amuse_server_port says which); default 8000 */
    const char *repository;   /* model repository directory */
    const char *database;     /* the database of keys and user data (users, items, events): a
                                 SQLite file path (or a postgres:// url where supported) */
    const char *web_root;     /* the playground: GET / is <web_root>/index.html, GET /web/<path>
                                 the files below it, without a key; NULL (default): none */
    int threads;              /* image decoding threads (default 4); HTTP takes one thread per
                                 connection, so a slow request never holds up another */
    size_t max_body_bytes;    /* request body cap -> 413 (default 16 MiB) */
    size_t max_buffered_bytes; /* all request bodies held at once, across connections; a body
                                  that would pass it -> 503 (default 256 MiB) */
    int max_connections;      /* open connections at once (default 256); 16 more are kept for
                                 the health routes, which alone are answered past the limit */
    int max_connections_per_client; /* from one client address (default 64) */
    int connection_timeout_s; /* idle connection timeout (default 30) */
    int header_timeout_s;     /* a request's headers must be complete this long after the
                                 connection opened (or after the previous reply plus
                                 connection_timeout_s), or the connection is closed (default 10) */
    int body_timeout_s;       /* and its body this long after the headers (default 60) -> 408 */
    size_t max_request_pixels; /* images in one request, declared pixels in all (default 16 Mi);
                                  each image also within its model's budget -> 413 */
    size_t max_image_pixels;   /* each image's budget for every model (at most 40 M); 0 (the
                                  default): per model, 256 x its input pixels, at least 4 Mi */
    int max_json_depth;       /* nesting cap, checked before parsing -> 400 (default 32) */
    /* dynamic batching, per model */
    int max_batch_size;      /* samples per model call (default 32); also the per-request cap */
    int max_queue_delay_us;  /* how long a batch waits to fill (default 2000) */
    int max_queue_size;      /* queued requests per model before 503 (default 256) */
    int request_timeout_ms;  /* queue + run time before 504 (default 10000) */
    int drain_timeout_ms;    /* bound on draining in-flight requests at shutdown (default 10000) */
    int model_threads;       /* OpenMP/BLAS threads for model math (0: leave as is) */
    /* per-key token bucket: rate_limit_rps tokens a second, at most rate_limit_burst saved
     * (0: rate_limit_rps); over it -> 429 with Retry-After. 0 rps: no limit (the default) */
    int rate_limit_rps;
    int rate_limit_burst;
    /* the same per tenant, across all its keys, so one tenant cannot starve another (0: off) */
    int tenant_rate_limit_rps;
    int tenant_rate_limit_burst;
    /* daily quotas: requests a key, and a tenant with all its keys, may make per UTC day; past
       them -> 429 with Retry-After until midnight UTC. Counted in the key database, so a
       restart keeps them. 0: no quota (the default) */
    int quota_requests_per_day;
    int tenant_quota_requests_per_day;
    int usage_flush_s; /* per-key usage counters are written to the database this often
                          (default 60) and at shutdown */
    const char *cors_origins; /* CORS allowlist: comma-separated origins ("https://a.example,
                                 http://localhost:3000"); NULL (default): CORS off, no
                                 Access-Control-* headers at all */
    /* HTTPS: PEM files of the certificate (chain) and its private key, both or neither
       (NULL: plain HTTP). libmicrohttpd's TLS is GnuTLS; docs/serve.md shows nginx in front as
       the alternative. */
    const char *tls_cert;
    const char *tls_key;
    int poll_interval_s; /* scan the repository this often and load new or changed versions in
                            the background, swapping them in atomically (default 5; 0: off) */
    /* How long a server may trust a key it has looked up before reading it again: a key
       revoked elsewhere (another process, another replica) is refused within this bound.
       -1 (default): 1000 with a PostgreSQL database (a lookup is a round trip there), 0 with
       SQLite (read on every request). */
    int key_cache_ms;
    /* The sentiment model that scores review events as they are stored (POST /v1/events); the
       tenant must be allowed to use it. NULL (default): the first model of kind sentiment, by
       name, that the posting key may use; none: reviews are stored unscored. */
    const char *sentiment_model;
    /* Log lines (no trailing newline); NULL discards them. Called from any thread. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
};

AMUSE_API void amuse_serve_options_default(struct amuse_serve_options *o);

struct amuse_server;

/* Open the key store, load the repository (a broken version is logged and skipped; a model with no
 * loadable version is logged and left out) and start listening. If the key store has no active
 * key, one admin key (tenant "default") is created and written to *first_admin_key (a buffer of
 * AMUSE_KEY_TOKEN_MAX; left "" otherwise; may be NULL to never create one). */
AMUSE_API int amuse_server_start(struct amuse_server **out, const struct amuse_serve_options *o,
                       char *first_admin_key);

/* The port actually listened on. */
AMUSE_API int amuse_server_port(const struct amuse_server *s);

/* Graceful stop: readiness turns false, the listening socket closes (no new connections), then
 * wait up to drain_timeout_ms for in-flight requests to finish. Returns the number of requests
 * still in flight when it gave up (0: drained). Call amuse_server_free afterwards. */
AMUSE_API int amuse_server_drain(struct amuse_server *s);

/* Stop the HTTP threads and the batchers, free the models and close the key store. NULL is fine. */
AMUSE_API void amuse_server_free(struct amuse_server *s);

#ifdef __cplusplus
}
#endif
#endif
