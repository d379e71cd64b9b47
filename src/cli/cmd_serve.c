/* cmd_serve.c - `amuse serve`: gather the options (defaults < JSON config file < AMUSE_*
 * environment < flags), start the server, print the first admin key if the key table was empty,
 * then wait for SIGTERM/SIGINT and shut down gracefully: readiness false, stop accepting, drain
 * in-flight requests (bounded by --drain-timeout-ms), exit 0. Every option is one row of the
 * table below, so --help, the environment and the config file can never disagree. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/runtime.h"
#include "amuse/serve.h"
#include "db/db.h"
#include "serve/test_control.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <malloc.h> /* mallopt, M_MMAP_THRESHOLD (glibc) */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONFIG_FILE_BYTES (1 << 20)

/* OPT_TEST: a testing aid, not a server option: its value goes to amuse_test_control (offset
 * holds the AMUSE_TESTCTRL_* op), so the struct the library documents has no test hooks. */
enum { OPT_STRING, OPT_INT, OPT_SIZE, OPT_TEST };
static int test_values[8]; /* by AMUSE_TESTCTRL_* op */

struct option_row {
    const char *flag; /* --flag; the environment variable is AMUSE_<FLAG> and the config key
                         <flag> with '-' as '_' */
    int type;
    size_t offset; /* in struct amuse_serve_options */
    long long lo, hi;
    const char *help;
};

#define OFF(field) offsetof(struct amuse_serve_options, field)
static const struct option_row rows[] = {
    {"host", OPT_STRING, OFF(host), 0, 0, "address to listen on (IPv4 or IPv6 literal)"},
    {"port", OPT_INT, OFF(port), 0, 65535, "TCP port; 0 picks a free one"},
    {"repository", OPT_STRING, OFF(repository), 0, 0,
     "model repository: <dir>/<model>/<version>/"},
    {"db", OPT_STRING, OFF(database), 0, 0,
     "database of API keys and user data (users, items, events): a SQLite file, or\n"
     "                           postgres://... shared by replicas"},
    {"sentiment-model", OPT_STRING, OFF(sentiment_model), 0, 0,
     "sentiment model that scores review events (unset: the first one the\n"
     "                           posting key may use; none: reviews stored unscored)"},
    {"web-root", OPT_STRING, OFF(web_root), 0, 0,
     "the playground's files, served at / and /web/ without a key\n"
     "                           (default: the first of <exe dir>/../share/amuse/web and\n"
     "                           <exe dir>/../web that holds an index.html; 'off': none)"},
    {"threads", OPT_INT, OFF(threads), 1, 1024,
     "image decoding threads (HTTP takes a thread per connection)"},
    {"model-threads", OPT_INT, OFF(model_threads), 0, 1024,
     "OpenMP/BLAS threads per model worker (0: all cores)"},
    {"max-body-bytes", OPT_SIZE, OFF(max_body_bytes), 1024, 1LL << 30,
     "request body cap; larger bodies get 413"},
    {"max-buffered-bytes", OPT_SIZE, OFF(max_buffered_bytes), 1024, 1LL << 40,
     "request bodies held at once, all connections together; past it 503"},
    {"max-connections", OPT_INT, OFF(max_connections), 1, 100000,
     "open connections at once (16 more are kept for /v2/health/*)"},
    {"max-connections-per-client", OPT_INT, OFF(max_connections_per_client), 1, 100000,
     "open connections from one client address"},
    {"connection-timeout", OPT_INT, OFF(connection_timeout_s), 1, 3600,
     "seconds an idle or stalled connection is kept"},
    {"header-timeout", OPT_INT, OFF(header_timeout_s), 1, 3600,
     "seconds from connecting (or the previous reply) to the end of the headers"},
    {"body-timeout", OPT_INT, OFF(body_timeout_s), 1, 3600,
     "seconds from the end of the headers to the end of the body (then 408)"},
    {"max-request-pixels", OPT_SIZE, OFF(max_request_pixels), 1, 1LL << 40,
     "declared pixels of all images in one request; more get 413"},
    {"max-image-pixels", OPT_SIZE, OFF(max_image_pixels), 0, 40000000,
     "declared pixels of one image, any model (0: 256 x the model's input, >= 4 Mi)"},
    {"max-json-depth", OPT_INT, OFF(max_json_depth), 2, 1000,
     "JSON nesting cap, checked before parsing (400)"},
    {"max-batch-size", OPT_INT, OFF(max_batch_size), 1, 4096,
     "samples per model call; also the largest batch one request may send"},
    {"max-queue-delay-us", OPT_INT, OFF(max_queue_delay_us), 0, 10000000,
     "microseconds a batch waits to fill"},
    {"max-queue-size", OPT_INT, OFF(max_queue_size), 1, 1000000,
     "requests queued per model; more get 503 + Retry-After"},
    {"request-timeout-ms", OPT_INT, OFF(request_timeout_ms), 1, 3600000,
     "time to answer an inference request; later gets 504"},
    {"drain-timeout-ms", OPT_INT, OFF(drain_timeout_ms), 0, 3600000,
     "bound on draining in-flight requests at SIGTERM/SIGINT"},
    {"debug-batch-sleep-ms", OPT_TEST, AMUSE_TESTCTRL_BATCH_SLEEP_MS, 0, 60000,
     "testing aid: sleep before every batch (0: off)"},
    {"debug-events-pause", OPT_TEST, AMUSE_TESTCTRL_EVENTS_PAUSE, 0, 1,
     "testing aid: 1 stops every events batch half-way inside its transaction"},
    {"rate-limit-rps", OPT_INT, OFF(rate_limit_rps), 0, 1000000,
     "requests per second per API key (token bucket; 0: no limit) -> 429"},
    {"rate-limit-burst", OPT_INT, OFF(rate_limit_burst), 0, 1000000,
     "requests a key may make at once before the rate applies (0: the rate)"},
    {"tenant-rate-limit-rps", OPT_INT, OFF(tenant_rate_limit_rps), 0, 1000000,
     "requests per second per tenant, all its keys together (0: no limit) -> 429"},
    {"tenant-rate-limit-burst", OPT_INT, OFF(tenant_rate_limit_burst), 0, 1000000,
     "requests a tenant may make at once before its rate applies (0: the rate)"},
    {"quota-requests-per-day", OPT_INT, OFF(quota_requests_per_day), 0, 2000000000,
     "requests per UTC day per API key (0: no quota) -> 429"},
    {"tenant-quota-requests-per-day", OPT_INT, OFF(tenant_quota_requests_per_day), 0,
     2000000000, "requests per UTC day per tenant, all its keys together (0: no quota)"},
    {"usage-flush-s", OPT_INT, OFF(usage_flush_s), 1, 86400,
     "seconds between writes of per-key usage counters to the database"},
    {"key-cache-ms", OPT_INT, OFF(key_cache_ms), -1, 3600000,
     "trust a key looked up this long: a key revoked elsewhere is refused\n"
     "                           within it (-1: 1000 on PostgreSQL, 0 on SQLite)"},
    {"cors-origins", OPT_STRING, OFF(cors_origins), 0, 0,
     "CORS allowlist: comma-separated origins (https://app.example,...);\n"
     "                           unset: no CORS headers at all"},
    {"tls-cert", OPT_STRING, OFF(tls_cert), 0, 0,
     "PEM certificate (chain): serve HTTPS (with --tls-key; unset: HTTP)"},
    {"tls-key", OPT_STRING, OFF(tls_key), 0, 0, "PEM private key of --tls-cert"},
    {"poll-interval-s", OPT_INT, OFF(poll_interval_s), 0, 86400,
     "seconds between scans of the repository for new or changed versions\n"
     "                           (loaded in the background, swapped in atomically; 0: off)"},
    {NULL, 0, 0, 0, 0, NULL},
};

static void usage(FILE *out, const struct amuse_serve_options *def)
{
    fprintf(out, "usage: amuse serve [options]\n\n"
                 "Serve every model of a repository over HTTP: the KServe V2 protocol, API keys\n"
                 "on every route but /v2/health/*, dynamic batching per model. docs/serve.md has\n"
                 "the details; docs/openapi.yaml describes the routes.\n\noptions (flag, "
                 "environment variable, default):\n");
    for (const struct option_row *r = rows; r->flag; r++) {
        char env[64], dflt[256];
        snprintf(env, sizeof env, "AMUSE_");
        for (size_t i = 0, k = 6; r->flag[i] && k + 1 < sizeof env; i++, k++) {
            char c = r->flag[i];
            env[k] = c == '-' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            env[k + 1] = '\0';
        }
        const char *p = (const char *)def + r->offset;
        if (r->type == OPT_STRING && !*(const char *const *)(const void *)p)
            snprintf(dflt, sizeof dflt, "%s", r->offset == OFF(web_root) ? "none found" : "off");
        else if (r->type == OPT_STRING)
            snprintf(dflt, sizeof dflt, "%s", *(const char *const *)(const void *)p);
        else if (r->type == OPT_TEST)
            snprintf(dflt, sizeof dflt, "0");
        else if (r->type == OPT_INT)
            snprintf(dflt, sizeof dflt, "%d", *(const int *)(const void *)p);
        else
            snprintf(dflt, sizeof dflt, "%zu", *(const size_t *)(const void *)p);
        fprintf(out, "  --%-22s %s\n  %-24s %s (default %s)\n", r->flag, r->help, "", env, dflt);
    }
    fprintf(out,
            "  --config FILE            JSON object of the options above, keys with '_'\n"
            "                           (e.g. {\"port\": 8000, \"max_batch_size\": 16});\n"
            "                           AMUSE_CONFIG. Precedence: flags > environment > file.\n"
            "  --no-access-log          no JSON access-log lines on stderr (AMUSE_ACCESS_LOG=0)\n"
            "  --routes                 print the routing table and exit\n"
            "  --test-freeze-rate-clock testing aid: the rate limiter's clock stands still, so\n"
            "                           no token ever comes back (deterministic 429s)\n"
            "  -h, --help               this help\n\n"
            "On the first start with no API key in the database, an admin key is created and\n"
            "printed once on stderr. More keys: 'amuse keys create --tenant T --scope infer'.\n"
            "SIGTERM/SIGINT: readiness turns false, no new connections, in-flight requests\n"
            "finish (up to --drain-timeout-ms), exit 0.\n");
}

/* Strings set from the config file, environment or flags must outlive the parse. */
static char *owned[64];
static int n_owned;

static int set_value(struct amuse_serve_options *o, const struct option_row *r, const char *text,
                     const char *origin)
{
    char *p = (char *)o + r->offset;
    if (r->type == OPT_STRING) {
        if (!*text)
            return cli_error("%s: empty value", origin);
        char *copy = strdup(text);
        if (!copy || n_owned == 64)
            return cli_error("out of memory");
        owned[n_owned++] = copy;
        *(const char **)(void *)p = copy;
        return 0;
    }
    long long v;
    if (cli_parse_int(origin, text, r->lo, r->hi, &v))
        return 1;
    if (r->type == OPT_TEST)
        test_values[r->offset] = (int)v;
    else if (r->type == OPT_INT)
        *(int *)(void *)p = (int)v;
    else
        *(size_t *)(void *)p = (size_t)v;
    return 0;
}

static int apply_config_file(struct amuse_serve_options *o, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_error("%s: cannot open config file", path);
    char *text = malloc(MAX_CONFIG_FILE_BYTES + 1);
    size_t len = text ? fread(text, 1, MAX_CONFIG_FILE_BYTES + 1, f) : 0;
    fclose(f);
    if (!text)
        return cli_error("out of memory");
    if (len > MAX_CONFIG_FILE_BYTES) {
        free(text);
        return cli_error("%s: config file over %d bytes", path, MAX_CONFIG_FILE_BYTES);
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!cJSON_IsObject(doc)) {
        long at = end ? (long)(end - text) : 0;
        cJSON_Delete(doc);
        free(text);
        return cli_error("%s: not a JSON object (error near byte %ld)", path, at);
    }
    int status = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, doc)
    {
        const struct option_row *r;
        char key[64];
        for (r = rows; r->flag; r++) {
            snprintf(key, sizeof key, "%s", r->flag);
            for (char *c = key; *c; c++)
                if (*c == '-')
                    *c = '_';
            if (strcmp(key, item->string) == 0 ||
                (strcmp(r->flag, "db") == 0 && strcmp(item->string, "database") == 0))
                break;
        }
        char origin[300], num[64];
        snprintf(origin, sizeof origin, "%s: \"%s\"", path, item->string);
        if (!r->flag) {
            status = cli_error("%s: unknown option \"%s\"", path, item->string);
            break;
        }
        const char *value;
        if (r->type == OPT_STRING) {
            if (!cJSON_IsString(item)) {
                status = cli_error("%s must be a string", origin);
                break;
            }
            value = item->valuestring;
        } else {
            if (!cJSON_IsNumber(item)) {
                status = cli_error("%s must be a number", origin);
                break;
            }
            snprintf(num, sizeof num, "%.0f", item->valuedouble);
            value = num;
        }
        if ((status = set_value(o, r, value, origin)))
            break;
    }
    cJSON_Delete(doc);
    free(text);
    return status;
}

/* The playground's default web root, found relative to this executable (so an installed or
 * moved tree, and a build directory inside the source tree, both find their files): the first of
 * <exe dir>/../share/amuse/web and <exe dir>/../web that holds index.html, as a real path; NULL
 * if neither does. */
static const char *default_web_root(char *buf, size_t size)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    static const char *const candidates[] = {"../share/amuse/web", "../web"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        char dir[4096 + 64], index[4096 + 128];
        snprintf(dir, sizeof dir, "%s/%s", exe, candidates[i]);
        snprintf(index, sizeof index, "%s/index.html", dir);
        if (access(index, R_OK) == 0 && realpath(dir, buf) && strlen(buf) < size)
            return buf;
    }
    return NULL;
}

static void log_line(void *ctx, const char *line)
{
    int access = line[0] == '{';
    if (access && !*(int *)ctx)
        return;
    fprintf(stderr, access ? "%s\n" : "amuse: %s\n", line);
}

/* Model weights and activations are large blocks, and a reload frees one version's after the
 * next is loaded. glibc maps a large block on its own and unmaps it when freed, but each such
 * free also raises the size it maps at (up to 32 MB), so the next version's blocks came from the
 * heaps of the connection threads, where freed memory stays: resident memory grew by about 8 MB
 * per reload under traffic (bench/serve.sh --soak: 143 -> 276 MB in 15 reloads). A fixed
 * threshold keeps every block over 1 MiB mapped on its own, returned to the system when freed. */
static void keep_large_blocks_mapped(void)
{
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

int cmd_serve(int argc, char **argv)
{
    struct amuse_serve_options o, def;
    amuse_serve_options_default(&o);
    char db[4096];
    cli_default_database(db, sizeof db);
    o.database = db;
    char web[PATH_MAX];
    o.web_root = default_web_root(web, sizeof web);
    def = o;
    int access_log = 1, status = 1;
    const char *config = getenv("AMUSE_CONFIG");
    const char *e = getenv("AMUSE_ACCESS_LOG");
    if (e && strcmp(e, "0") == 0)
        access_log = 0;

    /* Pass 1: help, routes, config file. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout, &def);
            return 0;
        }
        if (strcmp(argv[i], "--routes") == 0) {
            const char *method, *path;
            for (int k = 0; (path = amuse_server_route(k, &method)); k++)
                printf("%s %s\n", method, path);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
    }
    if (config && apply_config_file(&o, config))
        goto out;
    /* Pass 2: environment. */
    for (const struct option_row *r = rows; r->flag; r++) {
        char env[64];
        snprintf(env, sizeof env, "AMUSE_");
        for (size_t i = 0, k = 6; r->flag[i] && k + 1 < sizeof env; i++, k++) {
            char c = r->flag[i];
            env[k] = c == '-' ? '_' : (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
            env[k + 1] = '\0';
        }
        const char *v = getenv(env);
        if (v && set_value(&o, r, v, env))
            goto out;
    }
    /* Pass 3: flags. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--no-access-log") == 0) {
            access_log = 0;
            continue;
        }
        if (strcmp(a, "--test-freeze-rate-clock") == 0) {
            amuse_test_control(AMUSE_TESTCTRL_FREEZE_RATE_CLOCK, 1);
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            cli_error("unexpected argument '%s'", a);
            usage(stderr, &def);
            status = 2;
            goto out;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const char *value = eq ? eq + 1 : NULL;
        if (nlen == 6 && strncmp(name, "config", 6) == 0) {
            if (!eq)
                i++;
            continue;
        }
        const struct option_row *r;
        for (r = rows; r->flag; r++)
            if (strlen(r->flag) == nlen && strncmp(r->flag, name, nlen) == 0)
                break;
        if (!r->flag) {
            cli_error("unknown option '%s'", a);
            usage(stderr, &def);
            status = 2;
            goto out;
        }
        if (!value) {
            if (i + 1 >= argc) {
                cli_error("--%s: missing value", r->flag);
                status = 2;
                goto out;
            }
            value = argv[++i];
        }
        char origin[80];
        snprintf(origin, sizeof origin, "--%s", r->flag);
        if (set_value(&o, r, value, origin)) {
            status = 2;
            goto out;
        }
    }
    o.log = log_line;
    o.log_ctx = &access_log;
    amuse_test_control(AMUSE_TESTCTRL_BATCH_SLEEP_MS, test_values[AMUSE_TESTCTRL_BATCH_SLEEP_MS]);
    amuse_test_control(AMUSE_TESTCTRL_EVENTS_PAUSE, test_values[AMUSE_TESTCTRL_EVENTS_PAUSE]);

    /* Signals go to this thread only: block them before any server thread exists. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (o.model_threads > 0)
        amuse_set_threads(o.model_threads);
    keep_large_blocks_mapped();

    /* --web-root off (or empty): no playground; GET / answers 404 saying so. */
    if (o.web_root && (!o.web_root[0] || strcmp(o.web_root, "off") == 0))
        o.web_root = NULL;

    struct amuse_server *s;
    char first_key[AMUSE_KEY_TOKEN_MAX];
    int rc = amuse_server_start(&s, &o, first_key);
    if (rc) {
        cli_fail(rc, "cannot start the server");
        if (strstr(amuse_last_error(), "cannot listen on"))
            fprintf(stderr, "amuse: choose another port with --port N or AMUSE_PORT=N (0 picks a "
                            "free one), or stop what is listening on %d\n",
                    o.port);
        goto out;
    }
    char *db_shown = first_key[0] ? am__db_redact(o.database) : NULL;
    if (first_key[0])
        fprintf(stderr,
                "amuse: the key database %s had no API key, so an admin key was created.\n"
                "amuse: it is shown only this once; keep it:\n\n    %s\n\n"
                "amuse: send it as 'Authorization: Bearer <key>'; make more with "
                "'amuse keys create'.\n",
                db_shown ? db_shown : "(out of memory)", first_key);
    free(db_shown);
    fprintf(stderr, "amuse: ready; SIGTERM or Ctrl-C stops\n");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "amuse: %s: draining (up to %d ms)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            o.drain_timeout_ms);
    int left = amuse_server_drain(s);
    if (left)
        fprintf(stderr, "amuse: %d requests still running after %d ms; closing them\n", left,
                o.drain_timeout_ms);
    amuse_server_free(s);
    fprintf(stderr, "amuse: stopped\n");
    status = 0;
out:
    for (int i = 0; i < n_owned; i++)
        free(owned[i]);
    n_owned = 0;
    return status;
}
