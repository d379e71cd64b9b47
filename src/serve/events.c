/* events.c - the routes of user data: POST /v1/events (a batch of plays, views, likes, ratings
 * and reviews, all or nothing, idempotent with an Idempotency-Key), POST /v1/items (upserts),
 * GET /v1/items/{item} (with its review count and mean sentiment), and for the tenant's admin
 * key GET /v1/users/{user}/events (paged), GET /v1/users/{user}/export (the access request) and
 * DELETE /v1/users/{user} (delete-my-data). Every call passes the key's tenant to the store
 * (recsys/events_store.h), so a key reaches only its tenant's rows, and an id of another tenant
 * is answered 404 like one that does not exist.
 *
 * Reviews are scored when they are stored, by the server's sentiment model (--sentiment-model,
 * else the first sentiment model by name that the key may use; none: stored unscored), on that
 * model's worker before the batch's transaction opens. Status codes: 400 for a body that is not
 * the documented shape (the message names the field and index), 422 for an event that breaks a
 * rule (rating range, future timestamp, invalid UTF-8 in text), 413 over the batch cap, 409 for
 * an Idempotency-Key reused with another body, 404 for an unknown user or item.
 * Not here: recommendations (the recommender routes read the same store), request logging
 * (http.c logs the route pattern for paths naming a user; bodies are never logged). */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "recsys/events_store.h"
#include "serve/test_control.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A store failure: 404 for what the tenant does not have, 400 for a bad id, 413 for an export
 * over its cap, else the server's. */
static void reply_store(struct am__request *r, int rc)
{
    am__reply_status(r, rc, rc == AMUSE_ENOTFOUND ? 404
                            : rc == AMUSE_EINVAL  ? 400
                            : rc == AMUSE_ETOOBIG ? 413
                                                  : 500);
}

static struct am__events_store *store_of(struct am__request *r)
{
    return r->server->events;
}

/* ------------------------------------------------------------------------ review scoring */

/* The sentiment model for this request's reviews (reference held), or NULL: none configured or
 * usable, and the reviews are stored unscored. */
static struct am__model *sentiment_model(struct am__request *r)
{
    struct amuse_server *s = r->server;
    char log_model[sizeof r->log_model];
    memcpy(log_model, r->log_model, sizeof log_model);
    struct am__model *m = NULL;
    if (s->opt.sentiment_model) {
        m = am__request_model(r, s->opt.sentiment_model);
        if (m && !(m->kind->flags & AM__KIND_SENTIMENT)) {
            am__model_release(s->repo, m);
            m = NULL;
        }
    } else {
        char **names = NULL;
        int n = 0;
        if (am__repository_names(s->repo, &names, &n) == 0) {
            const char *best = NULL;
            for (int i = 0; i < n; i++) {
                struct am__model *c = am__repository_get(s->repo, names[i]);
                if (!c)
                    continue;
                if ((c->kind->flags & AM__KIND_SENTIMENT) && am__request_may_use(r, c) &&
                    (!best || strcmp(names[i], best) < 0))
                    best = names[i];
                am__model_release(s->repo, c);
            }
            if (best)
                m = am__request_model(r, best);
            for (int i = 0; i < n; i++)
                free(names[i]);
            free(names);
        }
    }
    if (!m) /* the access log names a model only when one ran */
        memcpy(r->log_model, log_model, sizeof log_model);
    return m;
}

/* Score the reviews among ev[0..n): 0 (scored, or no model: unscored) with *scored counted, or
 * -1 with the error reply set. */
static int score_reviews(struct am__request *r, struct am__event *ev, int n, int *scored)
{
    *scored = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        k += ev[i].type == AM__EVENT_REVIEW;
    if (k == 0)
        return 0;
    struct am__model *m = sentiment_model(r);
    if (!m)
        return 0;
    const char **texts = malloc((size_t)k * sizeof *texts);
    size_t *lens = malloc((size_t)k * sizeof *lens);
    float *scores = malloc((size_t)k * sizeof *scores);
    int rc = -1;
    if (!texts || !lens || !scores) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    for (int i = 0, j = 0; i < n; i++)
        if (ev[i].type == AM__EVENT_REVIEW) {
            texts[j] = ev[i].text;
            lens[j++] = ev[i].text_len;
        }
    if (am__sentiment_score_texts(r, m, texts, lens, k, scores))
        goto out;
    for (int i = 0, j = 0; i < n; i++)
        if (ev[i].type == AM__EVENT_REVIEW) {
            ev[i].has_sentiment = 1;
            ev[i].sentiment = scores[j++];
        }
    *scored = k;
    rc = 0;
out:
    free(texts);
    free(lens);
    free(scores);
    am__model_release(r->server->repo, m);
    return rc;
}

/* --------------------------------------------------------------------------- POST /v1/events */

/* AMUSE_TESTCTRL_EVENTS_PAUSE: stop inside the transaction until the test kills the process. */
static int pause_mid_batch(void *ctx)
{
    struct amuse_server *s = ctx;
    am__logf(&s->log, "events: paused inside a batch");
    for (;;) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* The Idempotency-Key header: NULL when absent; 1..128 visible ASCII characters, else a 400. */
static int idempotency_key(struct am__request *r, const char **key)
{
    *key = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!*key)
        return 0;
    size_t n = strlen(*key);
    int ok = n >= 1 && n <= AM__EVENTS_MAX_IDEMPOTENCY_KEY;
    for (size_t i = 0; ok && i < n; i++)
        ok = (*key)[i] > 0x20 && (*key)[i] < 0x7f;
    if (!ok) {
        am__reply_error(r, 400, "Idempotency-Key: 1 to %d visible ASCII characters",
                        AM__EVENTS_MAX_IDEMPOTENCY_KEY);
        return -1;
    }
    return 0;
}

static const char *const replayed_headers[] = {"Idempotent-Replayed", "true", NULL};

/* The body {"<field>": [1..AM__EVENTS_MAX_BATCH entries]} and nothing else: the list's length,
 * or -1 with the reply sent (*doc, when set, is the caller's to free). */
static int batch_list(struct am__request *r, const char *body, const char *field,
                      const char *noun, const char *holder, cJSON **doc, const cJSON **list)
{
    int rc = am__json_parse_object(body, r->len, r->server->opt.max_json_depth, doc);
    if (rc) {
        am__reply_status(r, rc, 400);
        return -1;
    }
    for (const cJSON *f = (*doc)->child; f; f = f->next) {
        if (strcmp(f->string, field) == 0) {
            *list = f;
        } else {
            am__reply_error(r, 400, "%.64s: unknown field (the body is {\"%s\": [...]})",
                            f->string, field);
            return -1;
        }
    }
    int n = cJSON_IsArray(*list) ? cJSON_GetArraySize(*list) : -1;
    if (n < 1) {
        am__reply_error(r, 400, "%s: give a list of 1 to %d %s", field, AM__EVENTS_MAX_BATCH,
                        noun);
        return -1;
    }
    if (n > AM__EVENTS_MAX_BATCH) {
        am__reply_error(r, 413, "%s: %d %s, more than the %d %s may hold; split them", field, n,
                        noun, AM__EVENTS_MAX_BATCH, holder);
        return -1;
    }
    return n;
}

/* A key seen before: replay the first reply for the same body, 409 for another. 1 when the
 * reply is set, 0 when the key is new, -1 after an error reply. */
static int replay(struct am__request *r, const char *tenant, const char *key,
                  const unsigned char hash[32], int64_t now)
{
    unsigned char stored[32];
    int found = 0, status = 0;
    struct am__buf reply = {0};
    int rc = am__events_idempotency_get(store_of(r), tenant, key, now, &found, stored, &status,
                                        &reply);
    if (rc) {
        am__buf_release(&reply);
        reply_store(r, rc);
        return -1;
    }
    if (!found)
        return 0;
    if (sodium_memcmp(stored, hash, 32) != 0) {
        am__buf_release(&reply);
        am__reply_error(r, 409, "Idempotency-Key '%s' was used with a different body in the last "
                                "%d hours; use a new key for a new batch",
                        key, AM__EVENTS_IDEMPOTENCY_S / 3600);
        return 1;
    }
    am__buf_release(&r->out);
    r->out = reply;
    r->status = status;
    r->headers = replayed_headers;
    return 1;
}

void am__handle_events_post(struct am__request *r)
{
    const char *tenant = am__request_tenant(r), *key = NULL;
    cJSON *doc = NULL;
    struct am__event *ev = NULL;
    unsigned char hash[32];
    int64_t now = (int64_t)time(NULL);
    if (idempotency_key(r, &key))
        return;
    const char *body = r->body ? r->body : "";
    crypto_generichash(hash, sizeof hash, (const unsigned char *)body, r->len, NULL, 0);
    if (key && replay(r, tenant, key, hash, now))
        return;
    const cJSON *list = NULL;
    int rc, n = batch_list(r, body, "events", "events", "one batch", &doc, &list);
    if (n < 0)
        goto out;
    if (!(ev = calloc((size_t)n, sizeof *ev))) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        if (!cJSON_IsObject(e)) {
            am__reply_error(r, 400, "events[%d]: must be an object", i);
            goto out;
        }
        if ((rc = am__event_from_json(e, &ev[i]))) {
            am__reply_error(r, 400, "events[%d].%s", i, amuse_last_error());
            goto out;
        }
        if ((rc = am__event_check(&ev[i], now))) {
            am__reply_error(r, 422, "events[%d].%s", i, amuse_last_error());
            goto out;
        }
    }
    int scored = 0, reviews = 0;
    for (i = 0; i < n; i++)
        reviews += ev[i].type == AM__EVENT_REVIEW;
    if (score_reviews(r, ev, n, &scored))
        goto out;

    unsigned char id[8];
    char batch[20];
    randombytes_buf(id, sizeof id);
    snprintf(batch, sizeof batch, "b_");
    sodium_bin2hex(batch + 2, sizeof batch - 2, id, sizeof id);
    struct am__buf reply = {0};
    am__buf_printf(&reply,
                   "{\"object\": \"events.batch\", \"batch\": \"%s\", \"accepted\": %d, "
                   "\"reviews\": %d, \"reviews_scored\": %d}",
                   batch, n, reviews, scored);
    if (reply.failed) {
        am__buf_release(&reply);
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    struct am__idempotency idem = {key, {0}, 200, reply.data};
    memcpy(idem.hash, hash, sizeof hash);
    struct am__events_hook hook = {pause_mid_batch, r->server};
    rc = am__events_add(store_of(r), tenant, ev, n, batch, now, key ? &idem : NULL,
                        am__test_events_pause() ? &hook : NULL, NULL);
    if (rc == 1) { /* a twin with the same key committed first: answer as it did */
        am__buf_release(&reply);
        if (replay(r, tenant, key, hash, now) == 0)
            am__reply_error(r, 409, "Idempotency-Key '%s' is in use; retry", key);
        goto out;
    }
    if (rc) {
        am__buf_release(&reply);
        reply_store(r, rc);
        goto out;
    }
    am__buf_release(&r->out);
    r->out = reply;
    r->status = 200;
    r->items = n;
out:
    free(ev);
    cJSON_Delete(doc);
}

/* ---------------------------------------------------------------------------- POST /v1/items */

void am__handle_items_post(struct am__request *r)
{
    cJSON *doc = NULL;
    struct am__item *items = NULL;
    char *tags = NULL;
    const char *body = r->body ? r->body : "";
    const cJSON *list = NULL;
    int rc, n = batch_list(r, body, "items", "items", "one request", &doc, &list);
    if (n < 0)
        goto out;
    /* Joined tag lists are never longer than their strings in the body, plus the separators;
     * one item's worth of slack covers the last one's cap check. */
    size_t arena = r->len + 2 * (size_t)n + AM__EVENTS_MAX_META + 1, used = 0;
    if (!(items = calloc((size_t)n, sizeof *items)) || !(tags = malloc(arena))) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        if (!cJSON_IsObject(e)) {
            am__reply_error(r, 400, "items[%d]: must be an object", i);
            goto out;
        }
        if ((rc = am__item_from_json(e, &items[i], tags + used))) {
            am__reply_error(r, 400, "items[%d].%s", i, amuse_last_error());
            goto out;
        }
        if (items[i].tags == tags + used)
            used += strlen(items[i].tags) + 1;
    }
    int64_t created = 0, updated = 0;
    rc = am__events_put_items(store_of(r), am__request_tenant(r), items, n, (int64_t)time(NULL),
                              &created, &updated);
    if (rc) {
        reply_store(r, rc);
        goto out;
    }
    r->status = 200;
    r->items = n;
    am__buf_printf(&r->out,
                   "{\"object\": \"items.upsert\", \"created\": %" PRId64 ", \"updated\": %" PRId64
                   "}",
                   created, updated);
out:
    free(tags);
    free(items);
    cJSON_Delete(doc);
}

/* ------------------------------------------------------------------------ GET /v1/items/{item} */

static void json_string_or_null(struct am__buf *b, const char *s)
{
    if (s)
        am__buf_json_string(b, s);
    else
        am__buf_puts(b, "null");
}

void am__handle_item_get(struct am__request *r)
{
    struct am__item_info it;
    const char *id = am__request_param(r, "item");
    int rc = am__events_get_item(store_of(r), am__request_tenant(r), id, &it);
    if (rc) {
        reply_store(r, rc);
        return;
    }
    struct am__buf *b = &r->out;
    r->status = 200;
    am__buf_puts(b, "{\"object\": \"item\", \"id\": ");
    am__buf_json_string(b, it.id);
    am__buf_puts(b, ", \"title\": ");
    json_string_or_null(b, it.title);
    am__buf_puts(b, ", \"tags\": [");
    if (it.tags && *it.tags) {
        int first = 1;
        for (char *p = it.tags, *bar; p; p = bar ? bar + 1 : NULL) {
            bar = strchr(p, '|');
            if (bar)
                *bar = '\0';
            am__buf_puts(b, first ? "" : ", ");
            am__buf_json_string(b, p);
            first = 0;
        }
    }
    am__buf_puts(b, "], \"text\": ");
    json_string_or_null(b, it.text);
    am__buf_printf(b,
                   ", \"created\": %" PRId64 ", \"updated\": %" PRId64 ", \"events\": %" PRId64
                   ", \"reviews\": {\"count\": %" PRId64 ", \"scored\": %" PRId64
                   ", \"sentiment_mean\": ",
                   it.created, it.updated, it.events, it.reviews, it.scored_reviews);
    if (it.scored_reviews)
        am__buf_float(b, (float)it.sentiment_mean);
    else
        am__buf_puts(b, "null");
    am__buf_puts(b, "}}");
    am__item_info_release(&it);
}

/* ------------------------------------------------------------------- the /v1/users/{user} routes */

/* A query argument as an integer in [lo, hi]: 0 and *v (left as is when absent), or -1 after a
 * 400 naming it. */
static int query_int(struct am__request *r, const char *name, long long lo, long long hi,
                     long long *v)
{
    const char *s = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!s)
        return 0;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x < lo || x > hi) {
        am__reply_error(r, 400, "%s: '%.32s' is not an integer from %lld to %lld", name, s, lo,
                        hi);
        return -1;
    }
    *v = x;
    return 0;
}

void am__handle_user_events(struct am__request *r)
{
    const char *user = am__request_param(r, "user");
    long long limit = 100;
    if (query_int(r, "limit", 1, AM__EVENTS_MAX_LIST, &limit))
        return;
    /* The cursor is the previous page's "next": "<timestamp>.<seq>" of its last row. */
    const char *before = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "before");
    long long bt = 0, bs = 0;
    if (before) {
        int used = 0;
        if (sscanf(before, "%lld.%lld%n", &bt, &bs, &used) != 2 || before[used] || bt < 0 ||
            bs < 0) {
            am__reply_error(r, 400, "before: '%.40s' is not a cursor (give the previous page's "
                                    "\"next\")",
                            before);
            return;
        }
    }
    struct am__event_list l;
    int rc = am__events_user_events(store_of(r), am__request_tenant(r), user, (int)limit,
                                    before != NULL, bt, bs, &l);
    if (rc) {
        reply_store(r, rc);
        return;
    }
    struct am__buf *b = &r->out;
    r->status = 200;
    r->items = l.n;
    am__buf_puts(b, "{\"object\": \"list\", \"user\": ");
    am__buf_json_string(b, user);
    am__buf_puts(b, ", \"data\": [");
    for (int i = 0; i < l.n; i++) {
        am__buf_puts(b, i ? ", " : "");
        am__event_row_json(b, &l.rows[i]);
    }
    am__buf_puts(b, "], \"next\": ");
    if (l.more)
        am__buf_printf(b, "\"%" PRId64 ".%" PRId64 "\"}", l.rows[l.n - 1].time,
                       l.rows[l.n - 1].seq);
    else
        am__buf_puts(b, "null}");
    am__event_list_release(&l);
}

void am__handle_user_export(struct am__request *r)
{
    const char *user = am__request_param(r, "user");
    struct am__buf b = {0};
    int rc = am__events_export_user(store_of(r), am__request_tenant(r), user, &b);
    if (rc) {
        am__buf_release(&b);
        reply_store(r, rc);
        return;
    }
    am__buf_release(&r->out);
    r->out = b;
    r->status = 200;
}

void am__handle_user_delete(struct am__request *r)
{
    const char *user = am__request_param(r, "user");
    struct am__delete_counts c;
    int rc = am__events_delete_user(store_of(r), am__request_tenant(r), user,
                                    (int64_t)time(NULL), &c);
    if (rc) {
        reply_store(r, rc);
        return;
    }
    r->status = 200;
    am__buf_puts(&r->out, "{\"object\": \"user.deleted\", \"user\": ");
    am__buf_json_string(&r->out, user);
    am__buf_printf(&r->out,
                   ", \"deleted\": {\"events\": %" PRId64 ", \"reviews\": %" PRId64
                   ", \"profile\": %" PRId64 "}}",
                   c.events, c.reviews, c.profile);
}
