/* recommend_routes.c - the routes of a recommender model (kind_recommender.c):
 *
 *   GET /v1/recommendations?model=&user=&k=10&filter_seen=true&tags=Comedy,Drama&liked=&debias=0
 *        the user's top k, each with id, title, tags, score and a short explanation ("because
 *        you liked X", from item-item similarity). The user's history (item, weight) is looked
 *        up by user_history(): the training history, plus the newest events in the tenant's
 *        event store (POST /v1/events), and folded in at request time (amuse_rec_fold_in,
 *        through amuse_rec_recommend), so new events count without retraining. A user deleted
 *        since the model was trained (DELETE /v1/users/{user}) keeps no training history. A
 *        user with no history gets the popular items and "cold_start": true. liked=ID,ID adds
 *        likes for this request only (each weighs the largest value seen in training).
 *   GET /v1/items/{id}/similar?model=&k=10    the item's nearest neighbours (item-kNN cosine)
 *   GET /v1/models/{model}/users?limit=20     the model's most active users (for pickers)
 *
 * k is 1..MAX_K; a larger k is capped and the reply says so ("k_requested", "warning"). Lookups
 * of ids happen on the HTTP thread (the model is read-only); the scoring runs as a task on the
 * model's worker like every other model's math. Errors use OpenAI's shape (these are /v1 paths).
 * Not here: storing events, users or items (the event store), training.
 */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/word2vec.h"
#include "recsys/events_store.h"
#include "text/utf8.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define MAX_K 100            /* recommendations or similar items per request (larger: capped) */
#define DEFAULT_K 10
#define HISTORY_MAX 4096     /* a user's events folded in per request (the first ones) */
#define MAX_LIKED 100        /* liked= items per request */
#define MAX_TAGS_BYTES 256   /* tags= */
#define MAX_ID_BYTES 1024    /* user and item ids (AMUSE_REC's id rule) */
#define MAX_USERS_LISTED AM__REC_TOP_USERS
#define TITLE_IN_EXPLANATION 160 /* bytes of a title quoted in an explanation */

/* ------------------------------------------------------------------------ helpers */

static const char *arg(struct am__request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* ?k= : 1..MAX_K, larger asks capped (*requested keeps the ask); -1 after a 400. */
static int parse_k(struct am__request *r, long long *requested)
{
    const char *text = arg(r, "k");
    *requested = DEFAULT_K;
    if (!text)
        return DEFAULT_K;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!text[0] || *end || v < 1) {
        am__reply_error(r, 400, "k must be a whole number of at least 1 (at most %d are "
                        "returned), not '%.32s'", MAX_K, text);
        return -1;
    }
    *requested = errno == ERANGE ? LLONG_MAX : v;
    return v > MAX_K ? MAX_K : (int)v;
}

/* ?name=true|false|1|0 (absent: def); -1 after a 400. */
static int parse_bool(struct am__request *r, const char *name, int def)
{
    const char *text = arg(r, name);
    if (!text)
        return def;
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
        return 1;
    if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
        return 0;
    am__reply_error(r, 400, "%s must be true or false, not '%.32s'", name, text);
    return -1;
}

/* 1 if the query argument name's text is UTF-8; else 0 after a 400 naming the byte. */
static int utf8_arg(struct am__request *r, const char *name, const char *text)
{
    size_t bad;
    if (am__utf8_valid(text, strlen(text), &bad))
        return 1;
    am__reply_error(r, 400, "%s: not UTF-8 (byte %zu)", name, bad);
    return 0;
}

/* An id from the query: 1..MAX_ID_BYTES bytes of UTF-8. NULL after a 400. */
static const char *parse_id(struct am__request *r, const char *name, const char *what)
{
    const char *v = arg(r, name);
    if (!v || !v[0]) {
        am__reply_error(r, 400, "%s: give the %s's id (?%s=...)", name, what, name);
        return NULL;
    }
    if (strlen(v) > MAX_ID_BYTES) {
        am__reply_error(r, 400, "%s: an id is at most %d bytes", name, MAX_ID_BYTES);
        return NULL;
    }
    return utf8_arg(r, name, v) ? v : NULL;
}

static const char *item_title(const struct amuse_rec_model *rec, int64_t i)
{
    return rec->meta && rec->meta->title[i] ? rec->meta->title[i] : NULL;
}

/* {"id": ..., "title": ..., "tags": [...]} members (without braces) of item i. */
static void put_item(struct am__buf *b, const struct amuse_rec_model *rec, int64_t i)
{
    const char *title = item_title(rec, i);
    const char *tags = rec->meta ? rec->meta->tags[i] : NULL;
    am__buf_puts(b, "\"id\": ");
    am__buf_json_string(b, amuse_vocab_word(rec->items, i));
    am__buf_puts(b, ", \"title\": ");
    if (title)
        am__buf_json_string(b, title);
    else
        am__buf_puts(b, "null");
    am__buf_puts(b, ", \"tags\": [");
    for (const char *s = tags; s && *s;) {
        const char *bar = strchr(s, '|');
        size_t len = bar ? (size_t)(bar - s) : strlen(s);
        char tag[128];
        snprintf(tag, sizeof tag, "%.*s", (int)am__utf8_prefix(s, len, sizeof tag - 1), s);
        if (s != tags)
            am__buf_puts(b, ", ");
        am__buf_json_string(b, tag);
        s = bar ? bar + 1 : s + len;
    }
    am__buf_puts(b, "]");
}

/* ------------------------------------------------------------------------ history */

/* The user's recent history as (item index, weight) pairs for fold-in, at most max of them, into
 * items/values; *n receives how many (0 for a user without history: cold start). This is the
 * one place that knows where history lives. Until the event store is merged it is the model's
 * own training interactions (the first max of them in item order: the model keeps no times);
 * then it lists the request's tenant's events for this user from the store and maps their item
 * ids through rec->items (items the model does not know are skipped). */
static int user_history(const struct am__request *r, const struct am__recommender *rs,
                        const char *user, int32_t *items, float *values, int max, int *n)
{
    *n = 0;
    struct am__events_store *es = r->server->events;
    const char *tenant = am__request_tenant(r);
    /* Deleted since the model was trained: its factors and training history for the user are
     * stale and must not be used; only events stored after the delete count. */
    int deleted = 0;
    int rc = es ? am__events_user_deleted_after(es, tenant, user, rs->trained_at, &deleted) : 0;
    if (rc)
        return rc;
    int64_t u = deleted ? -1 : amuse_vocab_find(rs->rec->users, user);
    if (u >= 0) {
        const struct amuse_rec_csr *seen = rs->rec->seen;
        int64_t lo = seen->indptr[u], count = seen->indptr[u + 1] - lo;
        if (count > max)
            count = max;
        memcpy(items, seen->indices + lo, (size_t)count * sizeof *items);
        memcpy(values, seen->values + lo, (size_t)count * sizeof *values);
        *n = (int)count;
    }
    if (!es)
        return AMUSE_OK;
    /* The newest stored events, so what happened since training counts. An item both here and
     * in the training history keeps the larger weight (a model trained on the store sees its
     * events twice); items the model does not know are skipped. */
    struct am__event_list l = {0};
    rc = am__events_user_events(es, tenant, user, AM__EVENTS_MAX_LIST, 0, 0, 0, &l);
    if (rc == AMUSE_ENOTFOUND)
        return AMUSE_OK;
    if (rc)
        return rc;
    for (int e = 0; e < l.n; e++) {
        const struct am__event_row *row = &l.rows[e];
        int64_t item = amuse_vocab_find(rs->rec->items, row->item);
        if (item < 0)
            continue;
        float w = row->has_value ? (float)row->value : 1.0f;
        if (row->type == AM__EVENT_LIKE && !row->has_value)
            w = rs->like_value;
        if (!(w > 0))
            continue;
        int k = 0;
        while (k < *n && items[k] != (int32_t)item)
            k++;
        if (k < *n) {
            if (w > values[k])
                values[k] = w;
        } else if (*n < max) {
            items[*n] = (int32_t)item;
            values[(*n)++] = w;
        }
    }
    am__event_list_release(&l);
    return AMUSE_OK;
}

/* ------------------------------------------------------------------ recommendations */

/* One request's query and answer, owned by its job (task_arg). */
struct rec_task {
    struct amuse_rec_query q;
    int n_history, n_liked;
    int status; /* the library's verdict on the query (a client's fault: 400) */
    char error[256];
    int n, cold;
    char tags[MAX_TAGS_BYTES + 1];
    int32_t items[HISTORY_MAX + MAX_LIKED];
    float values[HISTORY_MAX + MAX_LIKED];
    struct amuse_rec_hit hits[MAX_K];
};

static void rec_task_run(const struct am__model *m, struct am__job *j)
{
    const struct am__recommender *rs = m->state;
    struct rec_task *t = j->task_arg;
    t->status = amuse_rec_recommend(rs->rec, &t->q, t->hits, &t->n, &t->cold);
    if (t->status == AMUSE_ENOMEM) { /* the server's fault: the job fails (500) */
        j->status = t->status;
        snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
    } else if (t->status) {
        snprintf(t->error, sizeof t->error, "%s", amuse_last_error());
    }
}

/* liked=ID,ID,... into t (after the history): a liked item weighs rs->like_value, or keeps its
 * larger history weight. -1 after a 400. */
static int add_liked(struct am__request *r, const struct am__model *m, struct rec_task *t,
                     const char *list)
{
    const struct am__recommender *rs = m->state;
    int n = t->q.n_items;
    for (const char *s = list; *s;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char id[MAX_ID_BYTES + 1];
        if (len == 0 || len > MAX_ID_BYTES) {
            am__reply_error(r, 400, "liked: give item ids separated by commas (an empty or "
                            "over-long id at byte %d)", (int)(s - list));
            return -1;
        }
        if (t->n_liked == MAX_LIKED) {
            am__reply_error(r, 400, "liked: at most %d items", MAX_LIKED);
            return -1;
        }
        memcpy(id, s, len);
        id[len] = '\0';
        int64_t i = amuse_vocab_find(rs->rec->items, id);
        if (i < 0) {
            am__reply_error(r, 400, "liked: item '%.128s' is not in model '%s'", id, m->name);
            return -1;
        }
        int e = 0;
        while (e < n && t->items[e] != (int32_t)i)
            e++;
        if (e == n) {
            t->items[n] = (int32_t)i;
            t->values[n++] = rs->like_value;
        } else if (t->values[e] < rs->like_value) {
            t->values[e] = rs->like_value;
        }
        t->n_liked++;
        s = comma ? comma + 1 : s + len;
    }
    t->q.n_items = n;
    return 0;
}

void am__handle_recommendations(struct am__request *r)
{
    struct am__model *m = NULL;
    struct am__job *job = NULL;
    struct rec_task *t = NULL;
    long long requested;
    int k = parse_k(r, &requested);
    int filter_seen = k < 0 ? -1 : parse_bool(r, "filter_seen", 1);
    if (filter_seen < 0)
        return;
    const char *user = parse_id(r, "user", "user");
    if (!user)
        return;
    const char *tags = arg(r, "tags"), *liked = arg(r, "liked"), *debias_text = arg(r, "debias");
    if (tags && (!tags[0] || strlen(tags) > MAX_TAGS_BYTES)) {
        am__reply_error(r, 400, "tags: give 1 to %d bytes of comma-separated tags",
                        MAX_TAGS_BYTES);
        return;
    }
    if ((tags && !utf8_arg(r, "tags", tags)) || (liked && !utf8_arg(r, "liked", liked)))
        return;
    double debias = 0;
    if (debias_text) {
        char *end;
        debias = strtod(debias_text, &end);
        if (!debias_text[0] || *end || !(debias >= 0 && debias <= 10)) {
            am__reply_error(r, 400, "debias must be a number from 0 to 10, not '%.32s'",
                            debias_text);
            return;
        }
    }
    if (!(m = am__route_model(r, arg(r, "model"), AM__NEED_RECOMMENDER)))
        return;
    const struct am__recommender *rs = m->state;
    if (!(t = calloc(1, sizeof *t)) || !(job = am__job_new())) {
        free(t);
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    int rc = user_history(r, rs, user, t->items, t->values, HISTORY_MAX, &t->n_history);
    if (rc) {
        free(t);
        am__reply_status(r, rc, 500);
        goto out;
    }
    t->q.user = -1; /* always the history, folded in */
    t->q.items = t->items;
    t->q.values = t->values;
    t->q.n_items = t->n_history;
    if (liked && add_liked(r, m, t, liked) < 0) {
        free(t);
        goto out;
    }
    t->q.k = k;
    t->q.filter_seen = filter_seen;
    t->q.explain = 1;
    t->q.debias = debias;
    if (tags) {
        snprintf(t->tags, sizeof t->tags, "%s", tags);
        t->q.tag = t->tags;
    }
    job->samples = 1;
    job->task = rec_task_run;
    job->task_arg = t; /* the job owns it now */
    if (am__run_job(r, m, job) != 0)
        goto out;
    if (t->status) {
        am__reply_error(r, 400, "%s", t->error);
        goto out;
    }
    const struct amuse_rec_model *rec = rs->rec;
    struct am__buf *b = &r->out;
    r->status = 200;
    r->items = t->n;
    am__buf_puts(b, "{\"object\": \"list\", \"model\": ");
    am__buf_json_string(b, m->name);
    am__buf_puts(b, ", \"user\": ");
    am__buf_json_string(b, user);
    am__buf_printf(b, ", \"cold_start\": %s, \"history\": %d, \"liked\": %d, \"k\": %d",
                   t->cold ? "true" : "false", t->n_history, t->n_liked, k);
    if (requested > k)
        am__buf_printf(b, ", \"k_requested\": %lld, \"warning\": \"k capped at %d\"", requested,
                       MAX_K);
    am__buf_printf(b, ", \"filter_seen\": %s, \"tags\": ", filter_seen ? "true" : "false");
    if (tags)
        am__buf_json_string(b, tags);
    else
        am__buf_puts(b, "null");
    am__buf_puts(b, ", \"data\": [");
    for (int c = 0; c < t->n; c++) {
        const struct amuse_rec_hit *h = &t->hits[c];
        am__buf_puts(b, c ? ", {" : "{");
        put_item(b, rec, h->item);
        am__buf_puts(b, ", \"score\": ");
        am__buf_float(b, h->score);
        am__buf_puts(b, ", \"because\": ");
        char why[TITLE_IN_EXPLANATION + 64];
        if (h->because >= 0) {
            am__buf_puts(b, "{");
            put_item(b, rec, h->because);
            am__buf_puts(b, "}");
            const char *name = item_title(rec, h->because);
            if (!name)
                name = amuse_vocab_word(rec->items, h->because);
            snprintf(why, sizeof why, "because you liked %.*s",
                     (int)am__utf8_prefix(name, strlen(name), TITLE_IN_EXPLANATION), name);
        } else {
            am__buf_puts(b, "null");
            snprintf(why, sizeof why, "%s",
                     t->cold ? "popular with everyone (we do not know you yet)"
                             : "matches your taste");
        }
        am__buf_puts(b, ", \"explanation\": ");
        am__buf_json_string(b, why);
        am__buf_puts(b, "}");
    }
    am__buf_puts(b, "]}");
out:
    am__job_unref(job);
    am__model_release(r->server->repo, m);
}

/* ------------------------------------------------------------------- similar items */

struct similar_task {
    int64_t item;
    int k, n;
    struct amuse_rec_hit hits[MAX_K];
};

static void similar_task_run(const struct am__model *m, struct am__job *j)
{
    const struct am__recommender *rs = m->state;
    struct similar_task *t = j->task_arg;
    int rc = amuse_rec_similar_items(rs->rec, t->item, t->k, t->hits, &t->n);
    if (rc) { /* the item and k were checked: this is the server's fault */
        j->status = rc;
        snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
    }
}

void am__handle_items_similar(struct am__request *r)
{
    long long requested;
    int k = parse_k(r, &requested);
    if (k < 0)
        return;
    const char *id = am__request_param(r, "id");
    struct am__model *m = am__route_model(r, arg(r, "model"), AM__NEED_RECOMMENDER);
    if (!m)
        return;
    const struct am__recommender *rs = m->state;
    struct am__job *job = NULL;
    struct similar_task *t = NULL;
    int64_t item = id ? amuse_vocab_find(rs->rec->items, id) : -1;
    if (item < 0) {
        am__reply_error(r, 404, "item '%.128s' is not in model '%s'", id ? id : "", m->name);
        goto out;
    }
    if (!(t = calloc(1, sizeof *t)) || !(job = am__job_new())) {
        free(t);
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    t->item = item;
    t->k = k;
    job->samples = 1;
    job->task = similar_task_run;
    job->task_arg = t;
    if (am__run_job(r, m, job) != 0)
        goto out;
    struct am__buf *b = &r->out;
    r->status = 200;
    r->items = t->n;
    am__buf_puts(b, "{\"object\": \"list\", \"model\": ");
    am__buf_json_string(b, m->name);
    am__buf_puts(b, ", \"item\": {");
    put_item(b, rs->rec, item);
    am__buf_printf(b, "}, \"k\": %d", k);
    if (requested > k)
        am__buf_printf(b, ", \"k_requested\": %lld, \"warning\": \"k capped at %d\"", requested,
                       MAX_K);
    am__buf_puts(b, ", \"data\": [");
    for (int c = 0; c < t->n; c++) {
        am__buf_puts(b, c ? ", {" : "{");
        put_item(b, rs->rec, t->hits[c].item);
        am__buf_puts(b, ", \"score\": ");
        am__buf_float(b, t->hits[c].score);
        am__buf_puts(b, "}");
    }
    am__buf_puts(b, "]}");
out:
    am__job_unref(job);
    am__model_release(r->server->repo, m);
}

/* ------------------------------------------------------------------------- users */

void am__handle_model_users(struct am__request *r)
{
    const char *text = arg(r, "limit");
    long limit = 20;
    if (text) {
        char *end;
        limit = strtol(text, &end, 10);
        if (!text[0] || *end || limit < 1 || limit > MAX_USERS_LISTED) {
            am__reply_error(r, 400, "limit must be a whole number from 1 to %d, not '%.32s'",
                            MAX_USERS_LISTED, text);
            return;
        }
    }
    struct am__model *m = am__route_model(r, r->param_model, AM__NEED_RECOMMENDER);
    if (!m)
        return;
    const struct am__recommender *rs = m->state;
    const struct amuse_rec_csr *seen = rs->rec->seen;
    int n = rs->n_top_users < limit ? rs->n_top_users : (int)limit;
    struct am__buf *b = &r->out;
    r->status = 200;
    r->items = n;
    am__buf_puts(b, "{\"object\": \"list\", \"model\": ");
    am__buf_json_string(b, m->name);
    am__buf_puts(b, ", \"data\": [");
    for (int i = 0; i < n; i++) {
        int64_t u = rs->top_users[i];
        am__buf_puts(b, i ? ", {\"id\": " : "{\"id\": ");
        am__buf_json_string(b, amuse_vocab_word(rs->rec->users, u));
        am__buf_printf(b, ", \"events\": %lld}",
                       (long long)(seen->indptr[u + 1] - seen->indptr[u]));
    }
    am__buf_puts(b, "]}");
    am__model_release(r->server->repo, m);
}
