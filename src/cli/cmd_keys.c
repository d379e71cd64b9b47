/* cmd_keys.c - `amuse keys create|list|revoke`: manage the server's API keys in its SQLite
 * database (the same --db / AMUSE_DB as `amuse serve`). A new key is printed once, to stdout,
 * and never stored in clear. Changes take effect on a running server at its next request. */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/serve.h"
#include "db/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amuse keys <create|list|tenants|revoke> [options]\n\n"
            "Manage the API keys of `amuse serve`.\n\n"
            "  create --tenant T --scope infer|admin   make a key; it is printed once, to stdout\n"
            "  list [--json]                           every key: id, tenant, scope, created, "
            "revoked\n"
            "  tenants [--json]                        usage per tenant: keys, requests, items\n"
            "  revoke ID                               the key stops working at once\n\n"
            "options:\n"
            "  --db PATH     key database: a SQLite file (default: $AMUSE_DB, else\n"
            "                ${XDG_DATA_HOME:-~/.local/share}/amuse/amuse.db), or a\n"
            "                postgres://... url shared by several `amuse serve` replicas\n"
            "  -h, --help    this help\n\n"
            "Scopes: 'infer' may call the inference and metadata routes; 'admin' may also call the\n"
            "repository and statistics routes. Send a key as 'Authorization: Bearer <key>'.\n");
}

static void iso_time(int64_t t, char *buf, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int by_tenant(const void *a, const void *b)
{
    return strcmp(((const struct amuse_key_info *)a)->tenant,
                  ((const struct amuse_key_info *)b)->tenant);
}

/* Usage summed per tenant (as last flushed by the server): keys, active keys, requests, items. */
static int list_tenants(struct amuse_keystore *ks, int json)
{
    struct amuse_key_info *keys;
    int64_t n;
    int rc = amuse_keystore_list(ks, &keys, &n);
    if (rc)
        return cli_fail(rc, "cannot list keys");
    qsort(keys, (size_t)n, sizeof *keys, by_tenant);
    if (!json)
        printf("%-20s  %5s  %6s  %10s  %10s\n", "TENANT", "KEYS", "ACTIVE", "REQUESTS", "ITEMS");
    for (int64_t i = 0; i < n;) {
        int64_t j = i, active = 0, requests = 0, items = 0;
        for (; j < n && strcmp(keys[j].tenant, keys[i].tenant) == 0; j++) {
            active += keys[j].revoked == 0;
            requests += keys[j].requests;
            items += keys[j].items;
        }
        if (json) {
            printf("{\"tenant\": ");
            cli_json_string(stdout, keys[i].tenant);
            printf(", \"keys\": %lld, \"active\": %lld, \"requests\": %lld, \"items\": %lld}\n",
                   (long long)(j - i), (long long)active, (long long)requests, (long long)items);
        } else {
            printf("%-20s  %5lld  %6lld  %10lld  %10lld\n", keys[i].tenant, (long long)(j - i),
                   (long long)active, (long long)requests, (long long)items);
        }
        i = j;
    }
    free(keys);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1], *tenant = NULL, *scope_name = NULL, *id = NULL;
    char db[4096];
    cli_default_database(db, sizeof db);
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--db") == 0 || strcmp(a, "--tenant") == 0 || strcmp(a, "--scope") == 0) {
            if (i + 1 >= argc)
                return cli_error("%s: missing value", a), 2;
            const char *v = argv[++i];
            if (strcmp(a, "--db") == 0)
                snprintf(db, sizeof db, "%s", v);
            else if (strcmp(a, "--tenant") == 0)
                tenant = v;
            else
                scope_name = v;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (a[0] == '-') {
            cli_error("unknown option '%s'", a);
            usage(stderr);
            return 2;
        } else if (!id) {
            id = a;
        } else {
            return cli_error("unexpected argument '%s'", a), 2;
        }
    }
    int scope = 0;
    if (strcmp(action, "create") == 0) {
        if (!tenant || !scope_name)
            return cli_error("keys create needs --tenant T and --scope infer|admin"), 2;
        scope = amuse_key_scope_parse(scope_name);
        if (!scope)
            return cli_error("--scope: '%s' is not 'infer' or 'admin'", scope_name), 2;
    } else if (strcmp(action, "revoke") == 0) {
        if (!id)
            return cli_error("keys revoke needs a key id (see 'amuse keys list')"), 2;
    } else if (strcmp(action, "list") != 0 && strcmp(action, "tenants") != 0) {
        cli_error("unknown keys action '%s'", action);
        usage(stderr);
        return 2;
    }

    /* Messages name the database without a PostgreSQL password. */
    char shown[sizeof db];
    char *redacted = am__db_redact(db);
    snprintf(shown, sizeof shown, "%s", redacted ? redacted : "the key database");
    free(redacted);
    struct amuse_keystore *ks;
    int rc = amuse_keystore_open(&ks, db);
    if (rc)
        return cli_fail(rc, shown);
    int status = 0;
    if (strcmp(action, "create") == 0) {
        char token[AMUSE_KEY_TOKEN_MAX];
        struct amuse_key_info info;
        rc = amuse_keystore_create(ks, tenant, scope, token, &info);
        if (rc) {
            status = cli_fail(rc, "cannot create key");
        } else {
            printf("%s\n", token);
            fprintf(stderr, "amuse: created key %s (tenant %s, scope %s) in %s; it is shown only "
                            "once\n",
                    info.id, info.tenant, amuse_key_scope_name(info.scope), shown);
        }
    } else if (strcmp(action, "revoke") == 0) {
        rc = amuse_keystore_revoke(ks, id);
        if (rc)
            status = cli_fail(rc, "cannot revoke");
        else
            fprintf(stderr, "amuse: key %s revoked\n", id);
    } else if (strcmp(action, "tenants") == 0) {
        status = list_tenants(ks, json);
    } else {
        struct amuse_key_info *keys;
        int64_t n;
        rc = amuse_keystore_list(ks, &keys, &n);
        if (rc) {
            status = cli_fail(rc, "cannot list keys");
        } else {
            if (!json)
                printf("%-12s  %-20s  %-5s  %-20s  %-20s  %10s  %10s\n", "ID", "TENANT", "SCOPE",
                       "CREATED", "REVOKED", "REQUESTS", "ITEMS");
            for (int64_t i = 0; i < n; i++) {
                char created[32], revoked[32] = "-";
                iso_time(keys[i].created, created, sizeof created);
                if (keys[i].revoked)
                    iso_time(keys[i].revoked, revoked, sizeof revoked);
                if (json) {
                    printf("{\"id\": \"%s\", \"tenant\": ", keys[i].id);
                    cli_json_string(stdout, keys[i].tenant);
                    printf(", \"scope\": \"%s\", \"created\": \"%s\", \"revoked\": %s%s%s, "
                           "\"requests\": %lld, \"items\": %lld}\n",
                           amuse_key_scope_name(keys[i].scope), created,
                           keys[i].revoked ? "\"" : "", keys[i].revoked ? revoked : "null",
                           keys[i].revoked ? "\"" : "", (long long)keys[i].requests,
                           (long long)keys[i].items);
                } else {
                    printf("%-12s  %-20s  %-5s  %-20s  %-20s  %10lld  %10lld\n", keys[i].id,
                           keys[i].tenant, amuse_key_scope_name(keys[i].scope), created, revoked,
                           (long long)keys[i].requests, (long long)keys[i].items);
                }
            }
            free(keys);
        }
    }
    amuse_keystore_close(ks);
    return status;
}
