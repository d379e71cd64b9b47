/* tenant.c - tenant walls: which models a request's key may see and use, and the one reply a
 * route gives for the model it names. A model directory (<repo>/<model>/) may hold a `tenants`
 * file naming the tenants that own the model, one a line; without it the model is public. The
 * file is read with each version load (so a change reaches the server with the next reload, like
 * any other change in the directory). Admin keys see every model. Every route that names a model
 * goes through am__request_model (the /v1 routes and generate through am__route_model, which
 * adds the missing-name, not-loaded and wrong-kind replies), and the listing routes through
 * am__request_may_use, so a model outside a key's walls is answered like a missing one (404) and
 * never listed.
 * Not here: per-tenant rate limits and counters (http.c and ratelimit.c: a second usage table
 * keyed by tenant); what a route does with its model once it has it. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TENANTS_FILE_BYTES (256u << 10)

struct am__tenants {
    int n;
    char names[][AMUSE_TENANT_MAX + 1];
};

int am__tenants_load(const char *model_dir, struct am__tenants **out)
{
    *out = NULL;
    char *path = NULL, *text = NULL;
    size_t len = 0;
    int rc;
    if (asprintf(&path, "%s/tenants", model_dir) < 0)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    FILE *probe = fopen(path, "rb");
    if (!probe) { /* no file: public */
        free(path);
        return AMUSE_OK;
    }
    fclose(probe);
    rc = am__read_file(path, MAX_TENANTS_FILE_BYTES, &text, &len);
    if (rc)
        goto out;
    struct am__tenants *t = calloc(1, sizeof *t + AM__TENANTS_MAX * sizeof t->names[0]);
    if (!t) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    int line = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        line++;
        char *hash = memchr(p, '#', (size_t)(stop - p));
        char *e = hash ? hash : stop;
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\r'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (e > p) {
            char name[AMUSE_TENANT_MAX + 2];
            size_t n = (size_t)(e - p);
            snprintf(name, sizeof name, "%.*s", (int)(n < sizeof name - 1 ? n : sizeof name - 1),
                     p);
            if (n > AMUSE_TENANT_MAX || memchr(p, '\0', n) || !am__tenant_ok(name)) {
                rc = am__fail(AMUSE_EFORMAT,
                              "%s: line %d: '%.64s' is not a tenant name (1 to %d of "
                              "A-Z a-z 0-9 . _ -)",
                              path, line, name, AMUSE_TENANT_MAX);
                free(t);
                goto out;
            }
            if (t->n == AM__TENANTS_MAX) {
                rc = am__fail(AMUSE_ETOOBIG, "%s: line %d: more than %d tenants", path, line,
                              AM__TENANTS_MAX);
                free(t);
                goto out;
            }
            memcpy(t->names[t->n++], name, strlen(name) + 1);
        }
        p = stop + 1;
    }
    *out = t;
out:
    free(text);
    free(path);
    return rc;
}

void am__tenants_free(struct am__tenants *t)
{
    free(t);
}

int am__tenants_allow(const struct am__tenants *t, const char *tenant)
{
    if (!t)
        return 1;
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->names[i], tenant) == 0)
            return 1;
    return 0;
}

const char *am__request_tenant(const struct am__request *r)
{
    return r->has_key ? r->key.tenant : "";
}

int am__request_may_use(const struct am__request *r, const struct am__model *m)
{
    if (r->has_key && r->key.scope == AMUSE_SCOPE_ADMIN)
        return 1;
    return am__tenants_allow(m->tenants, am__request_tenant(r));
}

struct am__model *am__request_model(struct am__request *r, const char *name)
{
    struct am__model *m = am__repository_get(r->server->repo, name);
    if (!m)
        return NULL;
    if (!am__request_may_use(r, m)) {
        am__model_release(r->server->repo, m);
        return NULL;
    }
    /* Only models that exist get a metrics series and a log name of their own. */
    snprintf(r->log_model, sizeof r->log_model, "%s", m->name);
    return m;
}

/* ------------------------------------------------------------------------ a route's model */

/* What each am__need accepts, and how the replies name it. */
static const struct {
    unsigned flags;   /* AM__KIND_* the model's kind must have (0: any) */
    int image;        /* 1: the model's input must be an image */
    const char *noun; /* "a voice model" */
    const char *more; /* said after "needs one" (or "") */
} needs[] = {
    [AM__NEED_ANY] = {0, 0, "a model", ""},
    [AM__NEED_WORDS] = {AM__KIND_WORDS, 0, "a word-vector model", ""},
    [AM__NEED_IMAGES] = {0, 1, "an image classifier", ": a network whose input is an image"},
    [AM__NEED_GENERATOR] = {AM__KIND_GENERATE, 0, "a text generator", ""},
    [AM__NEED_SENTIMENT] = {AM__KIND_SENTIMENT, 0, "a sentiment model", ""},
    [AM__NEED_VOICE] = {AM__KIND_VOICE, 0, "a voice model",
                        ": a config with a \"features\" recipe, like models/default/voice-dscnn"},
    [AM__NEED_RECOMMENDER] = {AM__KIND_RECOMMEND, 0, "a recommender", ""},
};

struct am__model *am__route_model(struct am__request *r, const char *name, enum am__need need)
{
    assert((unsigned)need < sizeof needs / sizeof needs[0]);
    if (!name || !name[0]) {
        am__reply_error(r, 400, "'model' is missing: name %s (GET /v1/models lists the models)",
                        needs[need].noun);
        return NULL;
    }
    struct am__model *m = am__request_model(r, name);
    if (!m) { /* not loaded, or outside the key's walls: one reply for both */
        am__reply_error(r, 404, "model '%.128s' is not loaded (GET /v1/models lists the models)",
                        name);
        return NULL;
    }
    if ((m->kind->flags & needs[need].flags) == needs[need].flags &&
        (!needs[need].image || m->image))
        return m;
    /* The route's pattern, not its URL: the reply quotes nothing more of the request. */
    am__reply_error(r, 400, "model '%s' is a %s model, not %s (%s %s needs one%s)", m->name,
                    m->kind->name, needs[need].noun, r->method ? r->method : "",
                    r->route ? r->route->pattern : "this route", needs[need].more);
    am__model_release(r->server->repo, m);
    return NULL;
}
