/* store.c - the SQLite key table behind amuse_keystore_*: schema, the per-database salt, and the
 * rows (id, tenant, scope, hash, created, revoked). Token format, hashing and the constant-time
 * check live in auth.c; this file never sees a key in clear except to pass it to auth.c.
 * One connection, serialised by a mutex: a lookup by primary key takes microseconds, and reading
 * the table on every request means `amuse keys revoke` in another process takes effect at once. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "core/internal.h"

#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct amuse_keystore {
    sqlite3 *db;
    pthread_mutex_t lock;
    unsigned char salt[AM__SALT_BYTES];
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);"
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
    "  PRIMARY KEY (subject, day));";

static int db_fail(struct amuse_keystore *ks, const char *what)
{
    return am__fail(AMUSE_EIO, "key database: %s: %s", what, sqlite3_errmsg(ks->db));
}

/* The salt: read it, or make and store one in the same transaction that created the schema. */
static int load_salt(struct amuse_keystore *ks)
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    if (sqlite3_exec(ks->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(ks, "begin");
    if (sqlite3_exec(ks->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(ks, "create tables");
        goto out;
    }
    if (sqlite3_prepare_v2(ks->db, "SELECT value FROM meta WHERE name = 'salt'", -1, &st, NULL)) {
        rc = db_fail(ks, "read salt");
        goto out;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 0) != AM__SALT_BYTES) {
            rc = am__fail(AMUSE_EFORMAT, "key database: meta.salt is %d bytes, expected %d",
                          sqlite3_column_bytes(st, 0), AM__SALT_BYTES);
            goto out;
        }
        memcpy(ks->salt, sqlite3_column_blob(st, 0), AM__SALT_BYTES);
    } else if (step == SQLITE_DONE) {
        sqlite3_finalize(st);
        st = NULL;
        randombytes_buf(ks->salt, sizeof ks->salt);
        if (sqlite3_prepare_v2(ks->db, "INSERT INTO meta (name, value) VALUES ('salt', ?)", -1,
                               &st, NULL) ||
            sqlite3_bind_blob(st, 1, ks->salt, sizeof ks->salt, SQLITE_STATIC) ||
            sqlite3_step(st) != SQLITE_DONE) {
            rc = db_fail(ks, "store salt");
            goto out;
        }
    } else {
        rc = db_fail(ks, "read salt");
    }
out:
    sqlite3_finalize(st);
    sqlite3_exec(ks->db, rc ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL);
    return rc;
}

int amuse_keystore_open(struct amuse_keystore **out, const char *path)
{
    *out = NULL;
    if (!path || !*path)
        return am__fail(AMUSE_EINVAL, "key database: no path given");
    if (sodium_init() < 0)
        return am__fail(AMUSE_EIO, "libsodium failed to initialise");
    /* Create the parent directory, so a default under ~/.local/share works on a fresh machine. */
    char *dir = strdup(path);
    if (!dir)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = am__mkdir_p(dir);
        if (rc) {
            free(dir);
            return rc;
        }
    }
    free(dir);
    struct amuse_keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    pthread_mutex_init(&ks->lock, NULL);
    if (sqlite3_open_v2(path, &ks->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        int rc = am__fail(AMUSE_EIO, "%s: cannot open key database: %s", path,
                          ks->db ? sqlite3_errmsg(ks->db) : "out of memory");
        amuse_keystore_close(ks);
        return rc;
    }
    /* Another process (amuse keys) may write while the server reads: wait instead of failing. */
    sqlite3_busy_timeout(ks->db, 5000);
    sqlite3_exec(ks->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    int rc = load_salt(ks);
    if (rc) {
        am__fail_prefix(rc, "%s", path);
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
    sqlite3_close(ks->db);
    pthread_mutex_destroy(&ks->lock);
    sodium_memzero(ks->salt, sizeof ks->salt);
    free(ks);
}

const unsigned char *am__keystore_salt(const struct amuse_keystore *ks)
{
    return ks->salt;
}

static void row_to_info(sqlite3_stmt *st, struct amuse_key_info *info)
{
    memset(info, 0, sizeof *info);
    const char *id = (const char *)sqlite3_column_text(st, 0);
    const char *tenant = (const char *)sqlite3_column_text(st, 1);
    const char *scope = (const char *)sqlite3_column_text(st, 2);
    snprintf(info->id, sizeof info->id, "%s", id ? id : "");
    snprintf(info->tenant, sizeof info->tenant, "%s", tenant ? tenant : "");
    info->scope = amuse_key_scope_parse(scope ? scope : "");
    info->created = sqlite3_column_int64(st, 3);
    info->revoked = sqlite3_column_int64(st, 4);
}

int am__keystore_insert(struct amuse_keystore *ks, const struct amuse_key_info *info,
                        const unsigned char hash[AM__HASH_BYTES])
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db,
                           "INSERT INTO api_keys (id, tenant, scope, hash, created, revoked) "
                           "VALUES (?, ?, ?, ?, ?, 0)",
                           -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, info->id, -1, SQLITE_STATIC) ||
        sqlite3_bind_text(st, 2, info->tenant, -1, SQLITE_STATIC) ||
        sqlite3_bind_text(st, 3, amuse_key_scope_name(info->scope), -1, SQLITE_STATIC) ||
        sqlite3_bind_blob(st, 4, hash, AM__HASH_BYTES, SQLITE_STATIC) ||
        sqlite3_bind_int64(st, 5, info->created) || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ks, "insert key");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int am__keystore_lookup(struct amuse_keystore *ks, const char *id, struct amuse_key_info *info,
                        unsigned char hash[AM__HASH_BYTES])
{
    sqlite3_stmt *st = NULL;
    int rc;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT id, tenant, scope, created, revoked, hash FROM api_keys "
                           "WHERE id = ?",
                           -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC)) {
        rc = db_fail(ks, "look up key");
        goto out;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = am__fail(AMUSE_ENOTFOUND, "API key %s: no such key", id);
    } else if (step != SQLITE_ROW) {
        rc = db_fail(ks, "look up key");
    } else if (sqlite3_column_bytes(st, 5) != AM__HASH_BYTES) {
        rc = am__fail(AMUSE_EFORMAT, "API key %s: stored hash has the wrong size", id);
    } else {
        row_to_info(st, info);
        memcpy(hash, sqlite3_column_blob(st, 5), AM__HASH_BYTES);
        rc = AMUSE_OK;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int amuse_keystore_revoke(struct amuse_keystore *ks, const char *id)
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db, "SELECT revoked FROM api_keys WHERE id = ?", -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC)) {
        rc = db_fail(ks, "revoke key");
        goto out;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_DONE) {
        rc = am__fail(AMUSE_ENOTFOUND, "no API key with id '%s'", id);
        goto out;
    }
    if (step != SQLITE_ROW) {
        rc = db_fail(ks, "revoke key");
        goto out;
    }
    if (sqlite3_column_int64(st, 0) != 0) {
        rc = am__fail(AMUSE_EINVAL, "API key '%s' is already revoked", id);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(ks->db, "UPDATE api_keys SET revoked = ? WHERE id = ?", -1, &st, NULL) ||
        sqlite3_bind_int64(st, 1, (int64_t)time(NULL)) ||
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC) || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ks, "revoke key");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int amuse_keystore_list(struct amuse_keystore *ks, struct amuse_key_info **keys, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    struct amuse_key_info *v = NULL;
    int64_t count = 0, cap = 0;
    *keys = NULL;
    *n = 0;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT k.id, k.tenant, k.scope, k.created, k.revoked, "
                           "coalesce(u.requests, 0), coalesce(u.items, 0) FROM api_keys k "
                           "LEFT JOIN usage u ON u.key_id = k.id ORDER BY k.created, k.rowid",
                           -1, &st, NULL)) {
        rc = db_fail(ks, "list keys");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            int64_t ncap = cap ? cap * 2 : 16;
            struct amuse_key_info *nv = realloc(v, (size_t)ncap * sizeof *nv);
            if (!nv) {
                rc = am__fail(AMUSE_ENOMEM, "out of memory");
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        row_to_info(st, &v[count]);
        v[count].requests = sqlite3_column_int64(st, 5);
        v[count].items = sqlite3_column_int64(st, 6);
        count++;
    }
    if (step != SQLITE_DONE)
        rc = db_fail(ks, "list keys");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
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
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db,
                           "INSERT INTO usage (key_id, requests, items, updated) "
                           "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_id) DO UPDATE SET "
                           "requests = requests + ?2, items = items + ?3, updated = ?4",
                           -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT) ||
        sqlite3_bind_int64(st, 2, requests) || sqlite3_bind_int64(st, 3, items) ||
        sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL)) || sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ks, "record key usage");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int am__keystore_add_daily(struct amuse_keystore *ks, const char *subject, int64_t day,
                           int64_t requests)
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db,
                           "INSERT INTO usage_daily (subject, day, requests) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT (subject, day) DO UPDATE SET requests = requests + ?3",
                           -1, &st, NULL) ||
        sqlite3_bind_text(st, 1, subject, -1, SQLITE_TRANSIENT) ||
        sqlite3_bind_int64(st, 2, day) || sqlite3_bind_int64(st, 3, requests) ||
        sqlite3_step(st) != SQLITE_DONE)
        rc = db_fail(ks, "record daily usage");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int am__keystore_daily(struct amuse_keystore *ks, const char *subject, int64_t day,
                       int64_t *requests)
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    *requests = 0;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db,
                           "SELECT requests FROM usage_daily WHERE subject = ?1 AND day = ?2", -1,
                           &st, NULL) ||
        sqlite3_bind_text(st, 1, subject, -1, SQLITE_TRANSIENT) || sqlite3_bind_int64(st, 2, day)) {
        rc = db_fail(ks, "read daily usage");
    } else {
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW)
            *requests = sqlite3_column_int64(st, 0);
        else if (step != SQLITE_DONE)
            rc = db_fail(ks, "read daily usage");
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}

int amuse_keystore_active_count(struct amuse_keystore *ks, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int rc = AMUSE_OK;
    pthread_mutex_lock(&ks->lock);
    if (sqlite3_prepare_v2(ks->db, "SELECT count(*) FROM api_keys WHERE revoked = 0", -1, &st,
                           NULL) ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = db_fail(ks, "count keys");
    else
        *n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&ks->lock);
    return rc;
}
