/* store.c - the key table behind amuse_keystore_*, on the SQL interface of src/db: SQLite (the
 * default, a file) or PostgreSQL (postgres://..., shared by several server replicas). Schema (as
 * migrations of the "keys" component), the per-database salt, and the rows (id, tenant, scope,
 * hash, created, revoked), key usage totals and daily-quota counts. Token format, hashing and the
 * constant-time check live in auth.c; this file never sees a key in clear except to pass it to
 * auth.c. One connection for SQLite, a few for PostgreSQL, each serialised by a mutex (with
 * PostgreSQL's server-side prepared statements, db/postgres.c). A lookup by primary key is one
 * indexed read: microseconds in SQLite, which is read on every request, so `amuse keys revoke`
 * in another process takes effect at the next request; a round trip in PostgreSQL, so a server
 * may keep the rows it read for a bounded time (am__keystore_set_cache; the server's
 * key_cache_ms), and a key revoked elsewhere is refused within that bound. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "core/internal.h"
#include "db/db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A few connections, each used by one thread at a time: with PostgreSQL a key lookup is a round
 * trip, and one connection would make every request wait for the others' (SQLite answers in
 * microseconds from memory: one is enough). */
enum { POSTGRES_CONNECTIONS = 4 };

struct conn {
    struct am__db *db;
    pthread_mutex_t lock;
};

/* The key cache (off unless set): direct-mapped by a hash of the id, so it is bounded and a
 * collision just replaces the older row. It holds rows as read, revoked ones included. */
enum { KEY_CACHE_SLOTS = 4096 };
struct cached_key {
    struct amuse_key_info info; /* info.id[0] == 0: empty */
    unsigned char hash[AM__HASH_BYTES];
    double at; /* clock seconds when read */
};

struct amuse_keystore {
    struct conn conns[POSTGRES_CONNECTIONS];
    int n;
    atomic_uint next; /* where the next caller starts looking for a free connection */
    unsigned char salt[AM__SALT_BYTES];
    pthread_mutex_t cache_lock;
    struct cached_key *cache; /* [KEY_CACHE_SLOTS] while max_age > 0 */
    double cache_max_age;
    double (*clock)(void);
};

/* A free connection if one is, else the next in turn (waiting for it); release unlocks. */
static struct conn *acquire(struct amuse_keystore *ks)
{
    unsigned start = atomic_fetch_add(&ks->next, 1);
    for (int i = 0; i < ks->n; i++) {
        struct conn *c = &ks->conns[(start + (unsigned)i) % (unsigned)ks->n];
        if (pthread_mutex_trylock(&c->lock) == 0)
            return c;
    }
    struct conn *c = &ks->conns[start % (unsigned)ks->n];
    pthread_mutex_lock(&c->lock);
    return c;
}

static void release(struct conn *c) { pthread_mutex_unlock(&c->lock); }

/* Version 1 is the schema of the SQLite-only store (IF NOT EXISTS: a database made before
 * migrations existed takes it as is); version 2 orders keys made in the same second. */
static const struct am__db_migration migrations[] = {
    {1, "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
        "CREATE TABLE IF NOT EXISTS api_keys ("
        "  id TEXT PRIMARY KEY,"
        "  tenant TEXT NOT NULL,"
        "  scope TEXT NOT NULL CHECK (scope IN ('infer', 'admin')),"
        "  hash BLOB NOT NULL,"
        "  created INTEGER NOT NULL,"
        "  revoked INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE IF NOT EXISTS usage ("
        "  key_id TEXT PRIMARY KEY,"
        "  requests INTEGER NOT NULL DEFAULT 0,"
        "  items INTEGER NOT NULL DEFAULT 0,"
        "  updated INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE IF NOT EXISTS usage_daily ("
        "  subject TEXT NOT NULL,"
        "  day INTEGER NOT NULL,"
        "  requests INTEGER NOT NULL DEFAULT 0,"
        "  PRIMARY KEY (subject, day))"},
    {2, "ALTER TABLE api_keys ADD COLUMN serial INTEGER NOT NULL DEFAULT 0"},
};

/* The salt: read it, or make and store one, in one write transaction (two servers opening a new
 * database at once agree on one salt). */
static int load_salt(struct amuse_keystore *ks, struct am__db *db)
{
    struct am__db_stmt *st = NULL;
    int rc = am__db_begin(db);
    if (rc)
        return rc;
    if ((rc = am__db_query(db, &st, "SELECT value FROM meta WHERE name = 'salt'", "")))
        goto out;
    int step = am__db_step(st);
    if (step == AM__DB_ROW) {
        size_t len = 0;
        const void *v = am__db_blob(st, 0, &len);
        if (len != AM__SALT_BYTES || !v) {
            rc = am__fail(AMUSE_EFORMAT, "key database: meta.salt is %zu bytes, expected %d",
                          len, AM__SALT_BYTES);
            goto out;
        }
        memcpy(ks->salt, v, AM__SALT_BYTES);
    } else if (step == AM__DB_DONE) {
        am__db_finalize(st);
        st = NULL;
        randombytes_buf(ks->salt, sizeof ks->salt);
        rc = am__db_query(db, &st, "INSERT INTO meta (name, value) VALUES ('salt', ?)", "b",
                          ks->salt, sizeof ks->salt);
        if (rc == AMUSE_OK)
            rc = am__db_run(st, NULL);
    } else {
        rc = step;
    }
out:
    am__db_finalize(st);
    if (rc == AMUSE_OK)
        return am__db_commit(db);
    am__db_rollback(db);
    return rc;
}

int amuse_keystore_open(struct amuse_keystore **out, const char *path)
{
    *out = NULL;
    if (!path || !*path)
        return am__fail(AMUSE_EINVAL, "key database: no path given");
    if (sodium_init() < 0)
        return am__fail(AMUSE_EIO, "libsodium failed to initialise");
    struct amuse_keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    for (int i = 0; i < POSTGRES_CONNECTIONS; i++)
        pthread_mutex_init(&ks->conns[i].lock, NULL);
    pthread_mutex_init(&ks->cache_lock, NULL);
    ks->clock = am__now;
    ks->n = 1;
    struct am__db *db = NULL;
    int rc = am__db_open(&ks->conns[0].db, path);
    if (rc == AMUSE_OK) {
        db = ks->conns[0].db;
        rc = am__db_migrate(db, "keys", migrations,
                            (int)(sizeof migrations / sizeof migrations[0]));
    }
    if (rc == AMUSE_OK)
        rc = load_salt(ks, db);
    if (rc == AMUSE_OK && strcmp(am__db_backend(db), "postgres") == 0)
        for (; rc == AMUSE_OK && ks->n < POSTGRES_CONNECTIONS; ks->n++)
            rc = am__db_open(&ks->conns[ks->n].db, path);
    if (rc) {
        if (db) /* the url without a password */
            am__fail_prefix(rc, "key database %s", am__db_name(db));
        amuse_keystore_close(ks);
        return rc;
    }
    *out = ks;
    return AMUSE_OK;
}

void amuse_keystore_close(struct amuse_keystore *ks)
{
    if (!ks)
        return;
    for (int i = 0; i < POSTGRES_CONNECTIONS; i++) {
        am__db_close(ks->conns[i].db);
        pthread_mutex_destroy(&ks->conns[i].lock);
    }
    pthread_mutex_destroy(&ks->cache_lock);
    if (ks->cache)
        sodium_memzero(ks->cache, KEY_CACHE_SLOTS * sizeof *ks->cache);
    free(ks->cache);
    sodium_memzero(ks->salt, sizeof ks->salt);
    free(ks);
}

const unsigned char *am__keystore_salt(const struct amuse_keystore *ks)
{
    return ks->salt;
}

const char *am__keystore_backend(const struct amuse_keystore *ks)
{
    return am__db_backend(ks->conns[0].db);
}

static int lookup_row(struct amuse_keystore *ks, const char *id, struct amuse_key_info *info,
                      unsigned char hash[AM__HASH_BYTES]);

void am__keystore_set_cache(struct amuse_keystore *ks, double max_age_s, double (*clock)(void))
{
    pthread_mutex_lock(&ks->cache_lock);
    ks->clock = clock ? clock : am__now;
    if (max_age_s > 0 && !ks->cache)
        ks->cache = calloc(KEY_CACHE_SLOTS, sizeof *ks->cache);
    ks->cache_max_age = ks->cache ? max_age_s : 0; /* out of memory: no cache */
    for (size_t i = 0; ks->cache && i < KEY_CACHE_SLOTS; i++)
        ks->cache[i].info.id[0] = '\0';
    pthread_mutex_unlock(&ks->cache_lock);
}

static struct cached_key *cache_slot(struct amuse_keystore *ks, const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return &ks->cache[h % KEY_CACHE_SLOTS];
}

/* Columns id, tenant, scope, created, revoked from 0. */
static void row_to_info(struct am__db_stmt *st, struct amuse_key_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->id, sizeof info->id, "%s", am__db_text(st, 0, NULL));
    snprintf(info->tenant, sizeof info->tenant, "%s", am__db_text(st, 1, NULL));
    info->scope = amuse_key_scope_parse(am__db_text(st, 2, NULL));
    info->created = am__db_int64(st, 3);
    info->revoked = am__db_int64(st, 4);
}

int am__keystore_insert(struct amuse_keystore *ks, const struct amuse_key_info *info,
                        const unsigned char hash[AM__HASH_BYTES])
{
    struct am__db_stmt *st = NULL;
    struct conn *c = acquire(ks);
    int rc = am__db_query(c->db, &st,
                          "INSERT INTO api_keys (id, tenant, scope, hash, created, revoked, "
                          "serial) VALUES (?, ?, ?, ?, ?, 0, "
                          "(SELECT coalesce(max(serial), 0) + 1 FROM api_keys))",
                          "tttbi", info->id, info->tenant, amuse_key_scope_name(info->scope), hash,
                          (size_t)AM__HASH_BYTES, info->created);
    if (rc == AMUSE_OK)
        rc = am__db_run(st, NULL);
    am__db_finalize(st);
    release(c);
    return rc ? am__fail_prefix(rc, "insert key") : AMUSE_OK;
}

int am__keystore_lookup(struct amuse_keystore *ks, const char *id, struct amuse_key_info *info,
                        unsigned char hash[AM__HASH_BYTES])
{
    pthread_mutex_lock(&ks->cache_lock);
    if (ks->cache_max_age > 0) {
        struct cached_key *k = cache_slot(ks, id);
        if (strcmp(k->info.id, id) == 0 && ks->clock() - k->at < ks->cache_max_age) {
            *info = k->info;
            memcpy(hash, k->hash, AM__HASH_BYTES);
            pthread_mutex_unlock(&ks->cache_lock);
            return AMUSE_OK;
        }
    }
    pthread_mutex_unlock(&ks->cache_lock);
    int rc = lookup_row(ks, id, info, hash);
    pthread_mutex_lock(&ks->cache_lock);
    if (rc == AMUSE_OK && ks->cache_max_age > 0) {
        struct cached_key *k = cache_slot(ks, id);
        k->info = *info;
        memcpy(k->hash, hash, AM__HASH_BYTES);
        k->at = ks->clock();
    }
    pthread_mutex_unlock(&ks->cache_lock);
    return rc;
}

/* The key's row from the database. */
static int lookup_row(struct amuse_keystore *ks, const char *id, struct amuse_key_info *info,
                      unsigned char hash[AM__HASH_BYTES])
{
    struct am__db_stmt *st = NULL;
    struct conn *c = acquire(ks);
    int rc = am__db_query(c->db, &st,
                          "SELECT id, tenant, scope, created, revoked, hash FROM api_keys "
                          "WHERE id = ?",
                          "t", id);
    if (rc == AMUSE_OK) {
        int step = am__db_step(st);
        size_t len = 0;
        const void *h = step == AM__DB_ROW ? am__db_blob(st, 5, &len) : NULL;
        if (step == AM__DB_DONE) {
            rc = am__fail(AMUSE_ENOTFOUND, "API key %s: no such key", id);
        } else if (step != AM__DB_ROW) {
            rc = am__fail_prefix(step, "look up key");
        } else if (len != AM__HASH_BYTES || !h) {
            rc = am__fail(AMUSE_EFORMAT, "API key %s: stored hash has the wrong size", id);
        } else {
            row_to_info(st, info);
            memcpy(hash, h, AM__HASH_BYTES);
        }
    }
    am__db_finalize(st);
    release(c);
    return rc;
}

int amuse_keystore_revoke(struct amuse_keystore *ks, const char *id)
{
    pthread_mutex_lock(&ks->cache_lock); /* this process sees its own revoke at once */
    if (ks->cache) {
        struct cached_key *k = cache_slot(ks, id);
        if (strcmp(k->info.id, id) == 0)
            k->info.id[0] = '\0';
    }
    pthread_mutex_unlock(&ks->cache_lock);
    struct am__db_stmt *st = NULL;
    int64_t changed = 0, revoked = 0;
    int found = 0;
    struct conn *c = acquire(ks);
    /* One statement: revoked only if it is not yet, so two revokes at once cannot both win. */
    int rc =
        am__db_query(c->db, &st, "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked = 0",
                     "it", (int64_t)time(NULL), id);
    if (rc == AMUSE_OK)
        rc = am__db_run(st, &changed);
    am__db_finalize(st);
    st = NULL;
    if (rc == AMUSE_OK && changed == 0) { /* why not: no such key, or revoked already */
        rc = am__db_query(c->db, &st, "SELECT revoked FROM api_keys WHERE id = ?", "t", id);
        if (rc == AMUSE_OK)
            rc = am__db_one_int(st, &revoked, &found);
        if (rc == AMUSE_OK)
            rc = found ? am__fail(AMUSE_EINVAL, "API key '%s' is already revoked", id)
                       : am__fail(AMUSE_ENOTFOUND, "no API key with id '%s'", id);
    }
    am__db_finalize(st);
    release(c);
    return rc;
}

int amuse_keystore_list(struct amuse_keystore *ks, struct amuse_key_info **keys, int64_t *n)
{
    struct am__db_stmt *st = NULL;
    struct amuse_key_info *v = NULL;
    int64_t count = 0, cap = 0;
    *keys = NULL;
    *n = 0;
    struct conn *c = acquire(ks);
    int rc = am__db_query(c->db, &st,
                          "SELECT k.id, k.tenant, k.scope, k.created, k.revoked, "
                          "coalesce(u.requests, 0), coalesce(u.items, 0) FROM api_keys k "
                          "LEFT JOIN usage u ON u.key_id = k.id "
                          "ORDER BY k.created, k.serial, k.id",
                          "");
    int step = rc;
    while (rc == AMUSE_OK && (step = am__db_step(st)) == AM__DB_ROW) {
        if (count == cap) {
            int64_t ncap = cap ? cap * 2 : 16;
            struct amuse_key_info *nv = realloc(v, (size_t)ncap * sizeof *nv);
            if (!nv) {
                rc = am__fail(AMUSE_ENOMEM, "out of memory");
                break;
            }
            v = nv;
            cap = ncap;
        }
        row_to_info(st, &v[count]);
        v[count].requests = am__db_int64(st, 5);
        v[count].items = am__db_int64(st, 6);
        count++;
    }
    if (rc == AMUSE_OK && step != AM__DB_DONE)
        rc = am__fail_prefix(step, "list keys");
    am__db_finalize(st);
    release(c);
    if (rc) {
        free(v);
        return rc;
    }
    *keys = v;
    *n = count;
    return AMUSE_OK;
}

int amuse_keystore_add_usage(struct amuse_keystore *ks, const char *id, int64_t requests,
                             int64_t items)
{
    struct am__db_stmt *st = NULL;
    struct conn *c = acquire(ks);
    /* One upsert: the database adds under its row lock, so replicas flushing the same key at
     * once both count. */
    int rc = am__db_query(c->db, &st,
                          "INSERT INTO usage (key_id, requests, items, updated) "
                          "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_id) DO UPDATE SET "
                          "requests = usage.requests + ?2, items = usage.items + ?3, "
                          "updated = ?4",
                          "tiii", id, requests, items, (int64_t)time(NULL));
    if (rc == AMUSE_OK)
        rc = am__db_run(st, NULL);
    am__db_finalize(st);
    release(c);
    return rc ? am__fail_prefix(rc, "record key usage") : AMUSE_OK;
}

int am__keystore_add_daily(struct amuse_keystore *ks, const char *subject, int64_t day,
                           int64_t requests, int64_t *total)
{
    struct am__db_stmt *st = NULL;
    int64_t sum = 0;
    int found = 0;
    struct conn *c = acquire(ks);
    int rc = am__db_query(c->db, &st,
                          "INSERT INTO usage_daily (subject, day, requests) VALUES (?1, ?2, ?3) "
                          "ON CONFLICT (subject, day) DO UPDATE SET "
                          "requests = usage_daily.requests + ?3 RETURNING requests",
                          "tii", subject, day, requests);
    if (rc == AMUSE_OK)
        rc = am__db_one_int(st, &sum, &found);
    if (rc == AMUSE_OK && !found)
        rc = am__fail(AMUSE_EIO, "no count came back");
    if (rc == AMUSE_OK && total)
        *total = sum;
    am__db_finalize(st);
    release(c);
    return rc ? am__fail_prefix(rc, "record daily usage") : AMUSE_OK;
}

int am__keystore_daily(struct amuse_keystore *ks, const char *subject, int64_t day,
                       int64_t *requests)
{
    struct am__db_stmt *st = NULL;
    *requests = 0;
    struct conn *c = acquire(ks);
    int rc =
        am__db_query(c->db, &st, "SELECT requests FROM usage_daily WHERE subject = ? AND day = ?",
                     "ti", subject, day);
    if (rc == AMUSE_OK)
        rc = am__db_one_int(st, requests, NULL);
    am__db_finalize(st);
    release(c);
    return rc ? am__fail_prefix(rc, "read daily usage") : AMUSE_OK;
}

int amuse_keystore_active_count(struct amuse_keystore *ks, int64_t *n)
{
    struct am__db_stmt *st = NULL;
    int found = 0;
    struct conn *c = acquire(ks);
    int rc = am__db_query(c->db, &st, "SELECT count(*) FROM api_keys WHERE revoked = 0", "");
    if (rc == AMUSE_OK)
        rc = am__db_one_int(st, n, &found);
    if (rc == AMUSE_OK && !found)
        rc = am__fail(AMUSE_EIO, "no count came back");
    am__db_finalize(st);
    release(c);
    return rc ? am__fail_prefix(rc, "count keys") : AMUSE_OK;
}
