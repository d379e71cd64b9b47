/* events_store.c - the per-tenant store of users, items and events behind events_store.h: the
 * rules an event must follow, its JSON form, the schema (component "events") and the calls, all
 * through db.h so SQLite and PostgreSQL run the same SQL. One connection, one mutex.
 * It does not speak HTTP, score reviews or train: callers do. */
#define _GNU_SOURCE
#include "recsys/events_store.h"

#include "amuse/recsys.h"
#include "core/internal.h"
#include "db/db.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 32
#define HASH_BYTES 32
#define MAX_EXPORT_BYTES ((size_t)256 << 20)

struct am__events_store {
    struct am__db *db;
    pthread_mutex_t lock;
    unsigned char salt[SALT_BYTES];
};

/* ------------------------------------------------------------------------------ the rules */

static const char *const type_names[AM__EVENT_TYPES] = {"play", "view", "like", "rating",
                                                        "review"};

const char *am__event_type_name(int type)
{
    return type >= 0 && type < AM__EVENT_TYPES ? type_names[type] : "?";
}

int am__event_type_parse(const char *s)
{
    for (int t = 0; t < AM__EVENT_TYPES; t++)
        if (strcmp(s, type_names[t]) == 0)
            return t;
    return -1;
}

/* An id: 1..AM__EVENTS_MAX_ID bytes of UTF-8, no white space, no control characters. */
static int id_check(const char *field, const char *id)
{
    if (!id || !*id)
        return am__fail(AMUSE_EINVAL, "%s: missing (a non-empty string)", field);
    size_t len = strlen(id), bad;
    if (len > AM__EVENTS_MAX_ID)
        return am__fail(AMUSE_EINVAL, "%s: %zu bytes, more than %d", field, len,
                        AM__EVENTS_MAX_ID);
    if (!am__utf8_valid(id, len, &bad))
        return am__fail(AMUSE_EINVAL, "%s: invalid UTF-8 at byte %zu", field, bad);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= ' ' || c == 0x7f)
            return am__fail(AMUSE_EINVAL, "%s: white space or a control character at byte %zu "
                                          "(ids have none)",
                            field, i);
    }
    return AMUSE_OK;
}

static int text_check(const char *field, const char *s, size_t len, size_t max)
{
    size_t bad;
    if (len > max)
        return am__fail(AMUSE_EINVAL, "%s: %zu bytes, more than %zu", field, len, max);
    if (memchr(s, '\0', len))
        return am__fail(AMUSE_EINVAL, "%s: holds a NUL character", field);
    if (!am__utf8_valid(s, len, &bad))
        return am__fail(AMUSE_EINVAL, "%s: invalid UTF-8 at byte %zu", field, bad);
    return AMUSE_OK;
}

int am__event_check(struct am__event *e, int64_t now)
{
    int rc;
    if ((rc = id_check("user", e->user)) || (rc = id_check("item", e->item)))
        return rc;
    if (e->type < 0 || e->type >= AM__EVENT_TYPES)
        return am__fail(AMUSE_EINVAL, "type: expected play, view, like, rating or review");
    if (e->has_value && !isfinite(e->value))
        return am__fail(AMUSE_EINVAL, "value: not a finite number");
    int rated = e->type == AM__EVENT_RATING || e->type == AM__EVENT_REVIEW;
    if (e->type == AM__EVENT_RATING && !e->has_value)
        return am__fail(AMUSE_EINVAL, "value: a rating needs a value (%g..%g)",
                        AM__EVENTS_RATING_MIN, AM__EVENTS_RATING_MAX);
    if (rated && e->has_value &&
        (e->value < AM__EVENTS_RATING_MIN || e->value > AM__EVENTS_RATING_MAX))
        return am__fail(AMUSE_EINVAL, "value: rating %g is outside %g..%g", e->value,
                        AM__EVENTS_RATING_MIN, AM__EVENTS_RATING_MAX);
    if (!rated && e->has_value && (e->value <= 0 || e->value > AM__EVENTS_MAX_VALUE))
        return am__fail(AMUSE_EINVAL, "value: %g is outside (0, %g] for a %s", e->value,
                        AM__EVENTS_MAX_VALUE, type_names[e->type]);
    if (!rated && !e->has_value) {
        e->has_value = 1;
        e->value = 1;
    }
    if (e->type == AM__EVENT_REVIEW) {
        if (!e->text || e->text_len == 0)
            return am__fail(AMUSE_EINVAL, "text: a review needs its text");
        if ((rc = text_check("text", e->text, e->text_len, AM__EVENTS_MAX_TEXT)))
            return rc;
    } else if (e->text) {
        return am__fail(AMUSE_EINVAL, "text: only review events carry text");
    }
    if (!e->has_time) {
        e->has_time = 1;
        e->time = now;
    }
    if (e->time < 0)
        return am__fail(AMUSE_EINVAL, "timestamp: %" PRId64 " is before 1970", e->time);
    if (e->time > now + AM__EVENTS_MAX_SKEW_S)
        return am__fail(AMUSE_EINVAL,
                        "timestamp: %" PRId64 " is %" PRId64 " s in the future (at most %d s of "
                        "clock skew is accepted)",
                        e->time, e->time - now, AM__EVENTS_MAX_SKEW_S);
    if (e->has_sentiment && !(e->sentiment >= -1 && e->sentiment <= 1))
        return am__fail(AMUSE_EINVAL, "sentiment: %g is outside -1..1", e->sentiment);
    return AMUSE_OK;
}

int am__event_from_json(const cJSON *o, struct am__event *e)
{
    memset(e, 0, sizeof *e);
    e->type = -1;
    if (!cJSON_IsObject(o))
        return am__fail(AMUSE_EINVAL, "not an object");
    for (const cJSON *f = o->child; f; f = f->next) {
        const char *k = f->string;
        if (strcmp(k, "user") == 0 || strcmp(k, "item") == 0) {
            if (!cJSON_IsString(f))
                return am__fail(AMUSE_EINVAL, "%s: must be a string", k);
            if (k[0] == 'u')
                e->user = f->valuestring;
            else
                e->item = f->valuestring;
        } else if (strcmp(k, "type") == 0) {
            if (!cJSON_IsString(f))
                return am__fail(AMUSE_EINVAL, "type: must be a string");
            if ((e->type = am__event_type_parse(f->valuestring)) < 0)
                return am__fail(AMUSE_EINVAL,
                                "type: '%.64s' is not play, view, like, rating or review",
                                f->valuestring);
        } else if (strcmp(k, "value") == 0) {
            if (cJSON_IsNull(f))
                continue;
            if (!cJSON_IsNumber(f))
                return am__fail(AMUSE_EINVAL, "value: must be a number");
            e->has_value = 1;
            e->value = f->valuedouble;
        } else if (strcmp(k, "text") == 0) {
            if (cJSON_IsNull(f))
                continue;
            if (!cJSON_IsString(f))
                return am__fail(AMUSE_EINVAL, "text: must be a string");
            e->text = f->valuestring;
            e->text_len = strlen(f->valuestring);
        } else if (strcmp(k, "timestamp") == 0) {
            if (cJSON_IsNull(f))
                continue;
            double t = f->valuedouble;
            if (!cJSON_IsNumber(f) || t != floor(t) || fabs(t) > 9e15)
                return am__fail(AMUSE_EINVAL, "timestamp: must be an integer (Unix seconds)");
            e->has_time = 1;
            e->time = (int64_t)t;
        } else {
            return am__fail(AMUSE_EINVAL,
                            "%.64s: unknown field (an event has user, item, type, value, text, "
                            "timestamp)",
                            k);
        }
    }
    if (!e->user)
        return am__fail(AMUSE_EINVAL, "user: missing (a non-empty string)");
    if (!e->item)
        return am__fail(AMUSE_EINVAL, "item: missing (a non-empty string)");
    if (e->type < 0)
        return am__fail(AMUSE_EINVAL, "type: missing (play, view, like, rating or review)");
    return AMUSE_OK;
}

int am__item_check(const struct am__item *it)
{
    int rc = id_check("id", it->id);
    if (!rc && it->title)
        rc = text_check("title", it->title, strlen(it->title), AM__EVENTS_MAX_META);
    if (!rc && it->text)
        rc = text_check("text", it->text, strlen(it->text), AM__EVENTS_MAX_META);
    if (!rc && it->tags) {
        rc = text_check("tags", it->tags, strlen(it->tags), AM__EVENTS_MAX_META);
        if (!rc && strpbrk(it->tags, "\t\r\n"))
            rc = am__fail(AMUSE_EINVAL, "tags: hold a tab or a line break");
    }
    if (!rc && it->title && strpbrk(it->title, "\t\r\n"))
        rc = am__fail(AMUSE_EINVAL, "title: holds a tab or a line break");
    return rc;
}

int am__item_from_json(const cJSON *o, struct am__item *it, char *tags_buf)
{
    memset(it, 0, sizeof *it);
    if (!cJSON_IsObject(o))
        return am__fail(AMUSE_EINVAL, "not an object");
    for (const cJSON *f = o->child; f; f = f->next) {
        const char *k = f->string;
        if (strcmp(k, "tags") == 0 && cJSON_IsArray(f)) {
            size_t at = 0;
            int i = 0;
            for (const cJSON *t = f->child; t; t = t->next, i++) {
                if (!cJSON_IsString(t) || !t->valuestring[0])
                    return am__fail(AMUSE_EINVAL, "tags[%d]: must be a non-empty string", i);
                size_t n = strlen(t->valuestring);
                if (strchr(t->valuestring, '|'))
                    return am__fail(AMUSE_EINVAL, "tags[%d]: holds '|' (the tag separator)", i);
                if (at + n + 1 > AM__EVENTS_MAX_META)
                    return am__fail(AMUSE_EINVAL, "tags: more than %d bytes together",
                                    AM__EVENTS_MAX_META);
                if (at)
                    tags_buf[at++] = '|';
                memcpy(tags_buf + at, t->valuestring, n);
                at += n;
            }
            tags_buf[at] = '\0';
            it->tags = tags_buf;
            continue;
        }
        const char **slot = strcmp(k, "id") == 0      ? &it->id
                            : strcmp(k, "title") == 0 ? &it->title
                            : strcmp(k, "tags") == 0  ? &it->tags
                            : strcmp(k, "text") == 0  ? &it->text
                                                      : NULL;
        if (!slot)
            return am__fail(AMUSE_EINVAL,
                            "%.64s: unknown field (an item has id, title, tags, text)", k);
        if (cJSON_IsNull(f) && slot != &it->id)
            continue;
        if (!cJSON_IsString(f))
            return am__fail(AMUSE_EINVAL, "%s: must be a string%s", k,
                            slot == &it->tags ? " or a list of strings" : "");
        *slot = f->valuestring;
    }
    if (!it->id)
        return am__fail(AMUSE_EINVAL, "id: missing (a non-empty string)");
    return am__item_check(it);
}

int am__events_csv_split(char *s, char **fields, int max, const char **why)
{
    int n = 0;
    for (;;) {
        if (n == max) {
            *why = "more fields than the header names";
            return -1;
        }
        if (*s == '"') {
            char *w = s, *r = s + 1;
            fields[n++] = w;
            for (;;) {
                if (!*r) {
                    *why = "a quoted field is not closed on its line";
                    return -1;
                }
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            if (*r != ',' && *r) {
                *why = "text after a closing quote";
                return -1;
            }
            int more = *r == ',';
            *w = '\0';
            if (!more)
                return n;
            s = r + 1;
        } else {
            fields[n++] = s;
            char *c = strchr(s, ',');
            if (!c)
                return n;
            *c = '\0';
            s = c + 1;
        }
    }
}

/* ------------------------------------------------------------------------------ the schema */

static const struct am__db_migration migrations[] = {
    {1, "CREATE TABLE ev_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE ev_counters (tenant TEXT PRIMARY KEY, next_seq INTEGER NOT NULL);"
        "CREATE TABLE ev_items ("
        "  tenant TEXT NOT NULL, id TEXT NOT NULL, title TEXT, tags TEXT, text TEXT,"
        "  created INTEGER NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (tenant, id));"
        "CREATE TABLE ev_users ("
        "  tenant TEXT NOT NULL, id TEXT NOT NULL, created INTEGER NOT NULL,"
        "  PRIMARY KEY (tenant, id));"
        "CREATE TABLE ev_events ("
        "  tenant TEXT NOT NULL, seq INTEGER NOT NULL, user_id TEXT NOT NULL,"
        "  item TEXT NOT NULL, type TEXT NOT NULL, value REAL, text TEXT, sentiment REAL,"
        "  ts INTEGER NOT NULL, batch TEXT NOT NULL, PRIMARY KEY (tenant, seq));"
        "CREATE INDEX ev_events_user ON ev_events (tenant, user_id, ts, seq);"
        "CREATE INDEX ev_events_item ON ev_events (tenant, item, type);"
        "CREATE TABLE ev_idempotency ("
        "  tenant TEXT NOT NULL, key TEXT NOT NULL, request_hash BLOB NOT NULL,"
        "  status INTEGER NOT NULL, reply TEXT NOT NULL, created INTEGER NOT NULL,"
        "  PRIMARY KEY (tenant, key));"
        "CREATE INDEX ev_idempotency_created ON ev_idempotency (created);"
        "CREATE TABLE ev_deleted_users ("
        "  tenant TEXT NOT NULL, user_hash BLOB NOT NULL, deleted INTEGER NOT NULL,"
        "  PRIMARY KEY (tenant, user_hash))"},
};

/* ------------------------------------------------------------------------------ helpers */

static void user_hash(const struct am__events_store *es, const char *tenant, const char *user,
                      unsigned char out[HASH_BYTES])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, es->salt, SALT_BYTES, HASH_BYTES);
    crypto_generichash_update(&h, (const unsigned char *)tenant, strlen(tenant) + 1);
    crypto_generichash_update(&h, (const unsigned char *)user, strlen(user));
    crypto_generichash_final(&h, out, HASH_BYTES);
}

/* ------------------------------------------------------------------------------ open, close */

static int load_salt(struct am__events_store *es)
{
    struct am__db_stmt *st = NULL;
    unsigned char fresh[SALT_BYTES];
    randombytes_buf(fresh, sizeof fresh);
    int rc = am__db_begin(es->db);
    if (rc)
        return rc;
    /* The first opener stores its salt; every later one (and a racing one) reads that. */
    rc = am__db_query(
        es->db, &st,
        "INSERT INTO ev_meta (name, value) VALUES ('salt', ?) ON CONFLICT (name) DO NOTHING", "b",
        fresh, sizeof fresh);
    if (!rc)
        rc = am__db_run(st, NULL);
    am__db_finalize(st);
    st = NULL;
    if (!rc)
        rc = am__db_query(es->db, &st, "SELECT value FROM ev_meta WHERE name = 'salt'", "");
    if (!rc) {
        int step = am__db_step(st);
        size_t len = 0;
        const void *p = step == AM__DB_ROW ? am__db_blob(st, 0, &len) : NULL;
        if (step < 0)
            rc = step;
        else if (!p || len != SALT_BYTES)
            rc = am__fail(AMUSE_EFORMAT, "events store: the stored salt is %zu bytes, not %d", len,
                          SALT_BYTES);
        else
            memcpy(es->salt, p, SALT_BYTES);
    }
    am__db_finalize(st);
    sodium_memzero(fresh, sizeof fresh);
    if (rc) {
        am__db_rollback(es->db);
        return rc;
    }
    return am__db_commit(es->db);
}

int am__events_open(struct am__events_store **out, const char *url)
{
    *out = NULL;
    if (sodium_init() < 0)
        return am__fail(AMUSE_EIO, "libsodium failed to initialise");
    struct am__events_store *es = calloc(1, sizeof *es);
    if (!es)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    pthread_mutex_init(&es->lock, NULL);
    int rc = am__db_open(&es->db, url);
    if (!rc)
        rc = am__db_migrate(es->db, "events", migrations,
                            (int)(sizeof migrations / sizeof migrations[0]));
    if (!rc)
        rc = load_salt(es);
    if (rc) {
        am__events_close(es);
        return rc;
    }
    *out = es;
    return AMUSE_OK;
}

void am__events_close(struct am__events_store *es)
{
    if (!es)
        return;
    am__db_close(es->db);
    sodium_memzero(es->salt, sizeof es->salt);
    pthread_mutex_destroy(&es->lock);
    free(es);
}

/* ----------------------------------------------------------------------------- writing */

/* Make sure the user and item rows exist (ins_user, ins_item: the two upserts, prepared once per
 * batch); *item_new 1 when the item was created here. */
static int ensure_rows(struct am__db_stmt *ins_user, struct am__db_stmt *ins_item,
                       const char *tenant, const struct am__event *e, int64_t now, int *item_new)
{
    int64_t changes = 0;
    int rc;
    if ((rc = am__db_bindf(ins_user, "tti", tenant, e->user, now)) ||
        (rc = am__db_run(ins_user, NULL)) ||
        (rc = am__db_bindf(ins_item, "ttii", tenant, e->item, now, now)) ||
        (rc = am__db_run(ins_item, &changes)))
        return rc;
    *item_new = changes > 0;
    return AMUSE_OK;
}

int am__events_add(struct am__events_store *es, const char *tenant, const struct am__event *ev,
                   int n, const char *batch, int64_t now, const struct am__idempotency *idem,
                   const struct am__events_hook *hook, int64_t *items_created)
{
    struct am__db_stmt *st = NULL, *ins_user = NULL, *ins_item = NULL;
    int64_t created = 0, first_seq = 0;
    int rc, duplicate = 0;
    if (items_created)
        *items_created = 0;
    pthread_mutex_lock(&es->lock);
    if ((rc = am__db_begin(es->db)))
        goto out;
    if (idem) {
        int64_t changes = 0;
        /* Forget keys past their time, then claim this one; a key already claimed (a retry, or
         * a racing twin) writes nothing. */
        rc =
            am__db_query(es->db, &st, "DELETE FROM ev_idempotency WHERE tenant = ? AND created < ?",
                         "ti", tenant, now - AM__EVENTS_IDEMPOTENCY_S);
        if (!rc)
            rc = am__db_run(st, NULL);
        am__db_finalize(st);
        st = NULL;
        if (!rc)
            rc = am__db_query(
                es->db, &st,
                "INSERT INTO ev_idempotency (tenant, key, request_hash, status, reply, "
                "created) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, key) DO NOTHING",
                "ttbiti", tenant, idem->key, idem->hash, (size_t)32, (int64_t)idem->status,
                idem->reply, now);
        if (!rc)
            rc = am__db_run(st, &changes);
        am__db_finalize(st);
        st = NULL;
        if (!rc && changes == 0) {
            duplicate = 1;
            goto out;
        }
        if (rc)
            goto out;
    }
    /* Reserve n sequence numbers: the counter row is locked until commit, so concurrent batches
     * of one tenant (PostgreSQL replicas) never share a number. */
    rc = am__db_query(
        es->db, &st,
        "INSERT INTO ev_counters (tenant, next_seq) VALUES (?, ?) ON CONFLICT (tenant) "
        "DO UPDATE SET next_seq = ev_counters.next_seq + ?",
        "tii", tenant, (int64_t)n + 1, (int64_t)n);
    if (!rc)
        rc = am__db_run(st, NULL);
    am__db_finalize(st);
    st = NULL;
    if (!rc)
        rc = am__db_query(es->db, &st, "SELECT next_seq FROM ev_counters WHERE tenant = ?", "t",
                          tenant);
    if (!rc)
        rc = am__db_one_int(st, &first_seq, NULL);
    am__db_finalize(st);
    st = NULL;
    if (rc)
        goto out;
    first_seq -= n;
    if ((rc = am__db_prepare(es->db, &st,
                             "INSERT INTO ev_events (tenant, seq, user_id, item, type, value, "
                             "text, sentiment, ts, batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")) ||
        (rc = am__db_prepare(es->db, &ins_user,
                             "INSERT INTO ev_users (tenant, id, created) VALUES (?, ?, ?) "
                             "ON CONFLICT (tenant, id) DO NOTHING")) ||
        (rc = am__db_prepare(es->db, &ins_item,
                             "INSERT INTO ev_items (tenant, id, created, updated) VALUES (?, ?, ?, "
                             "?) ON CONFLICT (tenant, id) DO NOTHING")))
        goto out;
    for (int i = 0; i < n; i++) {
        const struct am__event *e = &ev[i];
        int item_new = 0;
        if (hook && hook->mid_batch && i == n / 2 && n > 1 && hook->mid_batch(hook->ctx)) {
            rc = am__fail(AMUSE_EIO, "events: the batch was stopped half-way (test hook)");
            goto out;
        }
        if ((rc = ensure_rows(ins_user, ins_item, tenant, e, now, &item_new)))
            goto out;
        created += item_new;
        if ((rc = am__db_bindf(st, "titttDTDit", tenant, first_seq + i, e->user, e->item,
                               type_names[e->type], e->has_value ? &e->value : NULL, e->text,
                               e->text_len, e->has_sentiment ? &e->sentiment : NULL, e->time,
                               batch)) ||
            (rc = am__db_run(st, NULL)))
            goto out;
    }
out:
    am__db_finalize(st);
    am__db_finalize(ins_user);
    am__db_finalize(ins_item);
    if (rc || duplicate)
        am__db_rollback(es->db);
    else
        rc = am__db_commit(es->db);
    pthread_mutex_unlock(&es->lock);
    if (!rc && items_created)
        *items_created = created;
    return rc ? rc : duplicate;
}

int am__events_idempotency_get(struct am__events_store *es, const char *tenant, const char *key,
                               int64_t now, int *found, unsigned char hash[32], int *status,
                               struct am__buf *reply)
{
    struct am__db_stmt *st = NULL;
    *found = 0;
    pthread_mutex_lock(&es->lock);
    int rc = am__db_query(es->db, &st,
                          "SELECT request_hash, status, reply FROM ev_idempotency "
                          "WHERE tenant = ? AND key = ? AND created >= ?",
                          "tti", tenant, key, now - AM__EVENTS_IDEMPOTENCY_S);
    if (!rc && am__db_next(st, &rc)) {
        size_t len = 0;
        const void *p = am__db_blob(st, 0, &len);
        if (len != 32) {
            rc = am__fail(AMUSE_EFORMAT, "events store: an idempotency hash is %zu bytes", len);
        } else {
            memcpy(hash, p, 32);
            *status = (int)am__db_int64(st, 1);
            const char *text = am__db_text(st, 2, &len);
            am__buf_add(reply, text, len);
            *found = 1;
        }
    }
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    return rc;
}

int am__events_put_items(struct am__events_store *es, const char *tenant,
                         const struct am__item *items, int n, int64_t now, int64_t *created,
                         int64_t *updated)
{
    struct am__db_stmt *sel = NULL, *up = NULL;
    int64_t c = 0, u = 0;
    pthread_mutex_lock(&es->lock);
    int rc = am__db_begin(es->db);
    if (!rc)
        rc = am__db_prepare(es->db, &sel, "SELECT 1 FROM ev_items WHERE tenant = ? AND id = ?");
    if (!rc)
        rc = am__db_prepare(
            es->db, &up,
            "INSERT INTO ev_items (tenant, id, title, tags, text, created, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, id) DO UPDATE SET "
            "title = COALESCE(excluded.title, ev_items.title), "
            "tags = COALESCE(excluded.tags, ev_items.tags), "
            "text = COALESCE(excluded.text, ev_items.text), updated = excluded.updated");
    for (int i = 0; !rc && i < n; i++) {
        const struct am__item *it = &items[i];
        int64_t one = 0;
        int found = 0;
        if ((rc = am__db_bindf(sel, "tt", tenant, it->id)) ||
            (rc = am__db_one_int(sel, &one, &found)) ||
            (rc = am__db_bindf(up, "tttttii", tenant, it->id, it->title, it->tags, it->text, now,
                               now)) ||
            (rc = am__db_run(up, NULL)))
            break;
        if (found)
            u++;
        else
            c++;
    }
    am__db_finalize(sel);
    am__db_finalize(up);
    if (rc)
        am__db_rollback(es->db);
    else
        rc = am__db_commit(es->db);
    pthread_mutex_unlock(&es->lock);
    if (created)
        *created = rc ? 0 : c;
    if (updated)
        *updated = rc ? 0 : u;
    return rc;
}

/* ----------------------------------------------------------------------------- reading */

void am__item_info_release(struct am__item_info *it)
{
    if (!it)
        return;
    free(it->id);
    free(it->title);
    free(it->tags);
    free(it->text);
    memset(it, 0, sizeof *it);
}

int am__events_get_item(struct am__events_store *es, const char *tenant, const char *id,
                        struct am__item_info *out)
{
    struct am__db_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&es->lock);
    int rc = am__db_query(es->db, &st,
                          "SELECT id, title, tags, text, created, updated FROM ev_items "
                          "WHERE tenant = ? AND id = ?",
                          "tt", tenant, id);
    if (!rc && am__db_next(st, &rc)) {
        out->id = am__db_text_dup(st, 0);
        out->title = am__db_text_dup(st, 1);
        out->tags = am__db_text_dup(st, 2);
        out->text = am__db_text_dup(st, 3);
        out->created = am__db_int64(st, 4);
        out->updated = am__db_int64(st, 5);
        if (!out->id)
            rc = am__fail(AMUSE_ENOMEM, "out of memory");
    } else if (!rc) {
        rc = am__fail(AMUSE_ENOTFOUND, "no item '%.256s'", id);
    }
    am__db_finalize(st);
    st = NULL;
    if (!rc)
        rc = am__db_query(
            es->db, &st,
            "SELECT COUNT(*), "
            "SUM(CASE WHEN type = 'review' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN type = 'review' AND sentiment IS NOT NULL THEN 1 ELSE 0 END), "
            "AVG(CASE WHEN type = 'review' THEN sentiment END) "
            "FROM ev_events WHERE tenant = ? AND item = ?",
            "tt", tenant, id);
    if (!rc && am__db_next(st, &rc)) {
        out->events = am__db_int64(st, 0);
        out->reviews = am__db_is_null(st, 1) ? 0 : am__db_int64(st, 1);
        out->scored_reviews = am__db_is_null(st, 2) ? 0 : am__db_int64(st, 2);
        out->sentiment_mean = am__db_is_null(st, 3) ? 0 : am__db_double(st, 3);
    }
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    if (rc)
        am__item_info_release(out);
    return rc;
}

void am__event_list_release(struct am__event_list *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++) {
        free(l->rows[i].item);
        free(l->rows[i].text);
        free(l->rows[i].batch);
    }
    free(l->rows);
    memset(l, 0, sizeof *l);
}

/* Columns: seq, ts, type, value, sentiment, item, text, batch. */
#define ROW_COLUMNS "seq, ts, type, value, sentiment, item, text, batch"

static int fill_row(struct am__db_stmt *st, struct am__event_row *r)
{
    memset(r, 0, sizeof *r);
    r->seq = am__db_int64(st, 0);
    r->time = am__db_int64(st, 1);
    r->type = am__event_type_parse(am__db_text(st, 2, NULL));
    r->has_value = !am__db_is_null(st, 3);
    r->value = r->has_value ? am__db_double(st, 3) : 0;
    r->has_sentiment = !am__db_is_null(st, 4);
    r->sentiment = r->has_sentiment ? am__db_double(st, 4) : 0;
    r->item = am__db_text_dup(st, 5);
    r->text = am__db_text_dup(st, 6);
    r->batch = am__db_text_dup(st, 7);
    if (!r->item || !r->batch || (!am__db_is_null(st, 6) && !r->text))
        return am__fail(AMUSE_ENOMEM, "out of memory");
    return AMUSE_OK;
}

static int user_exists(struct am__events_store *es, const char *tenant, const char *user,
                       int64_t *created)
{
    struct am__db_stmt *st = NULL;
    int found = 0;
    int64_t c = 0;
    int rc = am__db_query(es->db, &st, "SELECT created FROM ev_users WHERE tenant = ? AND id = ?",
                          "tt", tenant, user);
    if (!rc)
        rc = am__db_one_int(st, &c, &found);
    am__db_finalize(st);
    if (!rc && !found)
        rc = am__fail(AMUSE_ENOTFOUND, "no user '%.256s'", user);
    if (created)
        *created = c;
    return rc;
}

int am__events_user_events(struct am__events_store *es, const char *tenant, const char *user,
                           int limit, int has_cursor, int64_t before_time, int64_t before_seq,
                           struct am__event_list *out)
{
    struct am__db_stmt *st = NULL;
    memset(out, 0, sizeof *out);
    if (limit < 1 || limit > AM__EVENTS_MAX_LIST)
        return am__fail(AMUSE_EINVAL, "limit: %d is outside 1..%d", limit, AM__EVENTS_MAX_LIST);
    if (!(out->rows = calloc((size_t)limit, sizeof *out->rows)))
        return am__fail(AMUSE_ENOMEM, "out of memory");
    pthread_mutex_lock(&es->lock);
    int rc = user_exists(es, tenant, user, NULL);
    if (!rc && has_cursor)
        rc = am__db_query(
            es->db, &st,
            "SELECT " ROW_COLUMNS " FROM ev_events WHERE tenant = ? AND user_id = ? AND "
            "(ts < ? OR (ts = ? AND seq < ?)) ORDER BY ts DESC, seq DESC LIMIT ?",
            "ttiiii", tenant, user, before_time, before_time, before_seq, (int64_t)limit + 1);
    else if (!rc)
        rc = am__db_query(es->db, &st,
                          "SELECT " ROW_COLUMNS " FROM ev_events WHERE tenant = ? AND user_id = ? "
                          "ORDER BY ts DESC, seq DESC LIMIT ?",
                          "tti", tenant, user, (int64_t)limit + 1);
    while (!rc && am__db_next(st, &rc)) {
        if (out->n == limit) {
            out->more = 1;
            break;
        }
        rc = fill_row(st, &out->rows[out->n++]);
    }
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    if (rc)
        am__event_list_release(out);
    return rc;
}

int am__events_delete_user(struct am__events_store *es, const char *tenant, const char *user,
                           int64_t now, struct am__delete_counts *out)
{
    struct am__db_stmt *st = NULL;
    unsigned char hash[HASH_BYTES];
    memset(out, 0, sizeof *out);
    user_hash(es, tenant, user, hash);
    pthread_mutex_lock(&es->lock);
    int rc = am__db_begin(es->db);
    if (!rc)
        rc = am__db_query(es->db, &st,
                          "SELECT COUNT(*) FROM ev_events WHERE tenant = ? AND user_id = ? AND "
                          "type = 'review'",
                          "tt", tenant, user);
    if (!rc)
        rc = am__db_one_int(st, &out->reviews, NULL);
    am__db_finalize(st);
    st = NULL;
    if (!rc)
        rc = am__db_query(es->db, &st, "DELETE FROM ev_events WHERE tenant = ? AND user_id = ?",
                          "tt", tenant, user);
    if (!rc)
        rc = am__db_run(st, &out->events);
    am__db_finalize(st);
    st = NULL;
    if (!rc)
        rc = am__db_query(es->db, &st, "DELETE FROM ev_users WHERE tenant = ? AND id = ?", "tt",
                          tenant, user);
    if (!rc)
        rc = am__db_run(st, &out->profile);
    am__db_finalize(st);
    st = NULL;
    /* Recorded even when nothing was stored: a model trained from a file may hold the user's
     * factors, and the recommender must forget them all the same. */
    int nothing = out->events == 0 && out->profile == 0;
    if (!rc)
        rc = am__db_query(
            es->db, &st,
            "INSERT INTO ev_deleted_users (tenant, user_hash, deleted) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant, user_hash) DO UPDATE SET deleted = excluded.deleted",
            "tbi", tenant, hash, (size_t)HASH_BYTES, now);
    if (!rc)
        rc = am__db_run(st, NULL);
    am__db_finalize(st);
    if (rc)
        am__db_rollback(es->db);
    else
        rc = am__db_commit(es->db);
    int committed = rc == AMUSE_OK;
    /* The rows are gone once committed. The purge runs after every delete, one that found
     * nothing included: a purge that failed (readers held the log past the busy timeout:
     * AMUSE_EBUSY) says so, and the caller's retry of the delete, which then finds nothing,
     * is what purges the pages. */
    if (committed && (rc = am__db_purge(es->db)))
        am__fail_prefix(rc, "user '%.256s' deleted, but the freed pages are not yet purged from "
                            "the database's files (retry the delete to purge them)",
                        user);
    else if (committed && nothing)
        rc = am__fail(AMUSE_ENOTFOUND,
                      "no user '%.256s' in the store (the id is marked deleted all the same, so "
                      "trained recommenders forget it)",
                      user);
    pthread_mutex_unlock(&es->lock);
    if (!committed)
        memset(out, 0, sizeof *out);
    return rc;
}

int am__events_user_deleted_after(struct am__events_store *es, const char *tenant,
                                  const char *user, int64_t since, int *deleted)
{
    struct am__db_stmt *st = NULL;
    unsigned char hash[HASH_BYTES];
    int64_t when = 0;
    int found = 0;
    *deleted = 0;
    user_hash(es, tenant, user, hash);
    pthread_mutex_lock(&es->lock);
    int rc = am__db_query(es->db, &st,
                          "SELECT deleted FROM ev_deleted_users WHERE tenant = ? AND user_hash = ?",
                          "tb", tenant, hash, (size_t)HASH_BYTES);
    if (!rc)
        rc = am__db_one_int(st, &when, &found);
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    if (!rc)
        *deleted = found && when >= since;
    return rc;
}

int am__events_batch_count(struct am__events_store *es, const char *tenant, const char *batch,
                           int64_t *n)
{
    struct am__db_stmt *st = NULL;
    *n = 0;
    pthread_mutex_lock(&es->lock);
    int rc = am__db_query(es->db, &st,
                          "SELECT COUNT(*) FROM ev_events WHERE tenant = ? AND batch = ?", "tt",
                          tenant, batch);
    if (!rc)
        rc = am__db_one_int(st, n, NULL);
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    return rc;
}

static void event_json(struct am__buf *b, const struct am__event_row *r)
{
    am__buf_puts(b, "{\"item\": ");
    am__buf_json_string(b, r->item);
    am__buf_printf(b, ", \"type\": \"%s\"", am__event_type_name(r->type));
    if (r->has_value) {
        am__buf_puts(b, ", \"value\": ");
        am__buf_float(b, (float)r->value);
    }
    if (r->text) {
        am__buf_puts(b, ", \"text\": ");
        am__buf_json_string(b, r->text);
    }
    if (r->has_sentiment) {
        am__buf_puts(b, ", \"sentiment\": ");
        am__buf_float(b, (float)r->sentiment);
    }
    am__buf_printf(b, ", \"timestamp\": %" PRId64 ", \"seq\": %" PRId64 ", \"batch\": ", r->time,
                   r->seq);
    am__buf_json_string(b, r->batch);
    am__buf_puts(b, "}");
}

void am__event_row_json(struct am__buf *b, const struct am__event_row *r)
{
    event_json(b, r);
}

int am__events_export_user(struct am__events_store *es, const char *tenant, const char *user,
                           struct am__buf *out)
{
    struct am__db_stmt *st = NULL;
    int64_t created = 0;
    pthread_mutex_lock(&es->lock);
    int rc = user_exists(es, tenant, user, &created);
    if (!rc)
        rc = am__db_query(es->db, &st,
                          "SELECT " ROW_COLUMNS " FROM ev_events WHERE tenant = ? AND user_id = ? "
                          "ORDER BY ts, seq",
                          "tt", tenant, user);
    if (!rc) {
        am__buf_puts(out, "{\"object\": \"user_export\", \"user\": {\"id\": ");
        am__buf_json_string(out, user);
        am__buf_printf(out, ", \"created\": %" PRId64 "}, \"events\": [", created);
    }
    for (int i = 0; !rc && am__db_next(st, &rc); i++) {
        struct am__event_row row;
        rc = fill_row(st, &row);
        if (!rc) {
            am__buf_puts(out, i ? ", " : "");
            event_json(out, &row);
            if (out->len > MAX_EXPORT_BYTES)
                rc = am__fail(AMUSE_ETOOBIG, "the export is over %zu bytes", MAX_EXPORT_BYTES);
        }
        free(row.item);
        free(row.text);
        free(row.batch);
    }
    if (!rc)
        am__buf_puts(out, "]}");
    if (!rc && out->failed)
        rc = am__fail(out->failed, "the export does not fit in memory");
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    return rc;
}

int am__events_read_tenant(struct am__events_store *es, const char *tenant,
                           struct amuse_rec_data **out)
{
    struct am__db_stmt *st = NULL;
    struct amuse_rec_data *d = NULL;
    *out = NULL;
    int rc = amuse_rec_data_new(&d);
    if (rc)
        return rc;
    pthread_mutex_lock(&es->lock);
    rc = am__db_query(
        es->db, &st,
        "SELECT user_id, item, type, value, ts FROM ev_events WHERE tenant = ? ORDER BY seq", "t",
        tenant);
    while (!rc && am__db_next(st, &rc)) {
        double v = am__db_is_null(st, 3) ? 1.0 : am__db_double(st, 3);
        rc = amuse_rec_data_add(d, am__db_text(st, 0, NULL), am__db_text(st, 1, NULL), (float)v,
                                am__db_int64(st, 4));
    }
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    if (!rc && d->n == 0)
        rc = am__fail(AMUSE_ENOTFOUND, "tenant '%s' has no events", tenant);
    if (rc) {
        amuse_rec_data_free(d);
        return rc;
    }
    *out = d;
    return AMUSE_OK;
}

int am__events_items_tsv(struct am__events_store *es, const char *tenant, struct am__buf *out,
                         int64_t *n)
{
    struct am__db_stmt *st = NULL;
    *n = 0;
    pthread_mutex_lock(&es->lock);
    int rc = am__db_query(es->db, &st,
                          "SELECT id, title, tags FROM ev_items WHERE tenant = ? AND "
                          "(title IS NOT NULL OR tags IS NOT NULL) ORDER BY id",
                          "t", tenant);
    while (!rc && am__db_next(st, &rc)) {
        am__buf_printf(out, "%s\t%s\t%s\n", am__db_text(st, 0, NULL), am__db_text(st, 1, NULL),
                       am__db_text(st, 2, NULL));
        (*n)++;
    }
    am__db_finalize(st);
    pthread_mutex_unlock(&es->lock);
    if (!rc && out->failed)
        rc = am__fail(out->failed, "the items file does not fit in memory");
    return rc;
}
