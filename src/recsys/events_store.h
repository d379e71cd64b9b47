/* recsys/events_store.h - the per-tenant store of users, items and their events (plays, views,
 * likes, ratings, reviews) that the server's /v1/events, /v1/items and /v1/users routes, `amuse
 * events import` and `amuse recommend train --db` share. Internal (am__ prefix, not installed).
 *
 * Everything goes through the SQL interface of db/db.h (SQLite file or PostgreSQL url), schema
 * component "events". Every call takes the tenant, and every query has the tenant in its WHERE:
 * one tenant never reads or writes another's rows. A store is one connection guarded by its own
 * mutex, so server threads share it.
 *
 * The rules (docs/serve.md repeats them for clients):
 *   - ids (users, items): 1..AM__EVENTS_MAX_ID bytes of UTF-8 without white space or control
 *     characters (the recommender's id rule);
 *   - types: play, view, like, rating, review. rating needs a value in
 *     [AM__EVENTS_RATING_MIN, AM__EVENTS_RATING_MAX]; review needs text (UTF-8, at most
 *     AM__EVENTS_MAX_TEXT bytes) and may carry a rating value; play/view/like take an optional
 *     value in (0, AM__EVENTS_MAX_VALUE] (default 1: a count or a weight); only reviews carry text;
 *   - timestamps are Unix seconds, 0..now + AM__EVENTS_MAX_SKEW_S (missing: now);
 *   - an event about an item never declared through POST /v1/items is accepted, and the item is
 *     created with no metadata (a later upsert fills it in): events often arrive before the
 *     catalogue sync does, and refusing them would lose data;
 *   - users exist from their first event; DELETE removes their events, reviews and profile in
 *     one transaction and keeps only a keyed hash of the id (BLAKE2b with the store's salt) with
 *     the time, so "was this user deleted after the model was trained?" can be answered while a
 *     scan of the database finds neither the id nor the review text (secure_delete, then
 *     am__db_purge).
 * Not here: HTTP (src/serve/events.c), sentiment scoring (the caller scores reviews and passes
 * the score in), training (src/recsys/train.c). */
#ifndef AMUSE_RECSYS_EVENTS_STORE_H
#define AMUSE_RECSYS_EVENTS_STORE_H

#include <stddef.h>
#include <stdint.h>

struct am__buf;
struct amuse_rec_data;
struct cJSON;

#define AM__EVENTS_MAX_ID 256            /* bytes in a user or item id */
#define AM__EVENTS_MAX_TEXT (64 * 1024)  /* bytes of review text (the sentiment model's cap) */
#define AM__EVENTS_MAX_META (16 * 1024)  /* bytes of an item's title, tags or text each */
#define AM__EVENTS_MAX_BATCH 1000        /* events (or items) in one POST */
#define AM__EVENTS_MAX_SKEW_S 300        /* how far in the future a timestamp may be */
#define AM__EVENTS_RATING_MIN 0.5
#define AM__EVENTS_RATING_MAX 5.0
#define AM__EVENTS_MAX_VALUE 1e6         /* play/view/like values */
#define AM__EVENTS_MAX_LIST 1000         /* events in one page of a user's events */
#define AM__EVENTS_IDEMPOTENCY_S 86400   /* idempotency keys are kept this long */
#define AM__EVENTS_MAX_IDEMPOTENCY_KEY 128

enum am__event_type {
    AM__EVENT_PLAY = 0,
    AM__EVENT_VIEW,
    AM__EVENT_LIKE,
    AM__EVENT_RATING,
    AM__EVENT_REVIEW,
    AM__EVENT_TYPES
};
const char *am__event_type_name(int type); /* "play", ...; "?" out of range */
int am__event_type_parse(const char *s);   /* the type, or -1 */

/* One event on its way in. Strings are the caller's (NUL-terminated; text by length). */
struct am__event {
    const char *user, *item;
    int type;
    int has_value;
    double value;
    const char *text; /* review text, or NULL */
    size_t text_len;
    int has_time;
    int64_t time; /* Unix seconds */
    int has_sentiment;
    double sentiment; /* -1..1, set by the caller for scored reviews */
};

/* Check an event against the rules above and fill its defaults (value 1 for play/view/like, time
 * now). AMUSE_EINVAL with a message that starts with the field at fault ("value: rating 7 is
 * outside 0.5..5", "text: invalid UTF-8 at byte 12"). */
int am__event_check(struct am__event *e, int64_t now);

/* Fill e from a JSON object {user, item, type, value?, text?, timestamp?} (the POST /v1/events
 * element and the JSON lines of `amuse events import`); strings point into o. Unknown fields,
 * wrong types and non-integer timestamps are AMUSE_EINVAL naming the field. Does not check the
 * rules (am__event_check does). */
int am__event_from_json(const struct cJSON *o, struct am__event *e);

/* An item upsert: id required; a NULL field keeps what is stored. tags are '|'-separated. */
struct am__item {
    const char *id, *title, *tags, *text;
};
/* Fill it from {id, title?, tags? (list of strings or "a|b"), text?}; tags from a list are
 * joined into tags_buf (AM__EVENTS_MAX_META + 1 bytes). Checks ids, UTF-8, sizes and that a tag
 * holds no '|', tab or newline; AMUSE_EINVAL naming the field. */
int am__item_from_json(const struct cJSON *o, struct am__item *it, char *tags_buf);
int am__item_check(const struct am__item *it);

/* One CSV line of an import file, split in place into at most max fields: a quoted field is
 * unquoted ("" is a quote) and may hold commas but not line breaks. Returns the number of
 * fields, or -1 with *why set (an unclosed quote, text after a closing quote, more than max). */
int am__events_csv_split(char *line, char **fields, int max, const char **why);

struct am__events_store;

/* Open the database at url (db.h: a SQLite path or a postgres:// url), bring the "events" schema
 * up to date and load (or make) the store's salt. *out NULL on failure. */
int am__events_open(struct am__events_store **out, const char *url);
void am__events_close(struct am__events_store *es); /* NULL is fine */

/* What a finished batch replays to a retry carrying the same Idempotency-Key. */
struct am__idempotency {
    const char *key;
    unsigned char hash[32]; /* BLAKE2b-256 of the request body */
    int status;             /* the HTTP status answered */
    const char *reply;      /* the body answered */
};

/* Test hook: called once inside the transaction of am__events_add, after half the events are
 * written (the server's kill -9 test stops there); a non-zero return aborts the batch there
 * (AMUSE_EIO, rolled back), as a failure of the database would. */
struct am__events_hook {
    int (*mid_batch)(void *ctx);
    void *ctx;
};

/* Add n checked events (am__event_check) in one transaction: all of them or none. Users and
 * undeclared items are created as needed (*items_created counts the latter; may be NULL). batch
 * names the batch (stored with each event). idem (may be NULL) is recorded in the same
 * transaction; when its key is already recorded for the tenant nothing is written and the call
 * returns 1 (the caller looks the first reply up). hook may be NULL. */
int am__events_add(struct am__events_store *es, const char *tenant, const struct am__event *ev,
                   int n, const char *batch, int64_t now, const struct am__idempotency *idem,
                   const struct am__events_hook *hook, int64_t *items_created);

/* The recorded reply of an idempotency key younger than AM__EVENTS_IDEMPOTENCY_S: *found 1 with
 * its hash, status and reply (appended to reply); *found 0 when there is none. */
int am__events_idempotency_get(struct am__events_store *es, const char *tenant, const char *key,
                               int64_t now, int *found, unsigned char hash[32], int *status,
                               struct am__buf *reply);

/* Upsert n checked items in one transaction; *created and *updated count them. */
int am__events_put_items(struct am__events_store *es, const char *tenant,
                         const struct am__item *items, int n, int64_t now, int64_t *created,
                         int64_t *updated);

/* An item with what its events say. Strings are malloc'ed (NULL when unset); release frees. */
struct am__item_info {
    char *id, *title, *tags, *text;
    int64_t created, updated;
    int64_t events, reviews, scored_reviews;
    double sentiment_mean; /* over scored reviews; 0 when none */
};
/* AMUSE_ENOTFOUND (no message a client could use to probe other tenants) when the tenant has no
 * such item. */
int am__events_get_item(struct am__events_store *es, const char *tenant, const char *id,
                        struct am__item_info *out);
void am__item_info_release(struct am__item_info *it);

/* A user's events, newest first (by timestamp, then arrival). */
struct am__event_row {
    int64_t seq; /* arrival order within the tenant */
    int64_t time;
    int type;
    int has_value, has_sentiment;
    double value, sentiment;
    char *item, *text, *batch; /* text NULL unless a review */
};
struct am__event_list {
    int n;
    struct am__event_row *rows;
    int more; /* 1 when older events follow the last row */
};
void am__event_list_release(struct am__event_list *l);
/* One row as {"item", "type", "value"?, "text"?, "sentiment"?, "timestamp", "seq", "batch"}. */
void am__event_row_json(struct am__buf *b, const struct am__event_row *r);

/* At most limit (1..AM__EVENTS_MAX_LIST) events of user, newest first, strictly older than the
 * cursor (before_time, before_seq) when has_cursor (the last row of the previous page).
 * AMUSE_ENOTFOUND when the tenant has no such user. The recommender's fold-in reads the newest
 * events with this call. */
int am__events_user_events(struct am__events_store *es, const char *tenant, const char *user,
                           int limit, int has_cursor, int64_t before_time, int64_t before_seq,
                           struct am__event_list *out);

/* How many of the tenant's stored events carry this batch name (0: none, or all deleted). */
int am__events_batch_count(struct am__events_store *es, const char *tenant, const char *batch,
                           int64_t *n);

/* What a delete removed. */
struct am__delete_counts {
    int64_t events, reviews, profile;
};
/* Remove the user's events (reviews included) and profile in one transaction, record the
 * deletion as a keyed hash with `now`, then make the freed pages unrecoverable (am__db_purge).
 * AMUSE_ENOTFOUND when the tenant has no such user and no events of it; the deletion is
 * recorded all the same, since a model trained from a file may hold the user's factors. The purge
 * runs after every delete: AMUSE_EBUSY when readers kept it from finishing (the rows are gone,
 * *out says what went; deleting again, which then finds nothing, purges). */
int am__events_delete_user(struct am__events_store *es, const char *tenant, const char *user,
                           int64_t now, struct am__delete_counts *out);

/* *deleted = 1 when user was deleted at a time >= since (the time a model was trained: its
 * factors for the user are stale and must not be used), else 0. */
int am__events_user_deleted_after(struct am__events_store *es, const char *tenant,
                                  const char *user, int64_t since, int *deleted);

/* All of a user's data as one JSON object (the access request): {"object": "user_export",
 * "user": {"id", "created"}, "events": [...every event, oldest first...]}, appended to out.
 * AMUSE_ENOTFOUND when the tenant has no such user. */
int am__events_export_user(struct am__events_store *es, const char *tenant, const char *user,
                           struct am__buf *out);

/* Every event of the tenant as recommender data (amuse/recsys.h), in arrival order: a rating or
 * a review's rating gives its value; play/view/like their value; a review without a rating 1.
 * Items and users in first-seen order. *out NULL on failure; AMUSE_ENOTFOUND for a tenant with no
 * events. */
int am__events_read_tenant(struct am__events_store *es, const char *tenant,
                           struct amuse_rec_data **out);

/* The tenant's items with metadata as the recommender's items file ("id\ttitle\ttags" lines),
 * appended to out (for `amuse recommend train --db`). *n counts them. */
int am__events_items_tsv(struct am__events_store *es, const char *tenant, struct am__buf *out,
                         int64_t *n);

#endif
