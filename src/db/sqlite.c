/* sqlite.c - the SQLite backend of db.h, the embedded default. One connection per handle, opened
 * in WAL mode with secure_delete on, synchronous=FULL (a committed batch survives a kill -9 or a
 * power cut) and a busy timeout (another process may hold the write lock for a moment). It does
 * not cache statements: stores keep the ones they reuse. */
#define _GNU_SOURCE
#include "db/db_internal.h"

#include "core/internal.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct lite {
    struct am__db base;
    sqlite3 *h;
};

struct lite_stmt {
    struct am__db_stmt base;
    sqlite3_stmt *h;
    int64_t changes;
};

static sqlite3 *handle(struct am__db *db) { return ((struct lite *)db)->h; }
static struct lite_stmt *lst(struct am__db_stmt *st) { return (struct lite_stmt *)st; }

static int lite_fail(struct am__db *db, int code, const char *what)
{
    /* BUSY: another connection (amuse events import, another process) held the write lock past
     * the busy timeout; the same call may succeed later. */
    int status = (code & 0xff) == SQLITE_CONSTRAINT                                ? AMUSE_EINVAL
                 : (code & 0xff) == SQLITE_NOMEM                                   ? AMUSE_ENOMEM
                 : (code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED ? AMUSE_EBUSY
                                                                                   : AMUSE_EIO;
    return am__fail(status, "database %s: %s: %s", db->name, what, sqlite3_errmsg(handle(db)));
}

static void lite_close(struct am__db *db)
{
    sqlite3_close(handle(db)); /* statements must be finalized first; sqlite3_close says so */
    free(db->name);
    free(db);
}

static int lite_exec(struct am__db *db, const char *sql)
{
    int rc = sqlite3_exec(handle(db), sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? AMUSE_OK : lite_fail(db, rc, sql);
}

static int lite_prepare(struct am__db *db, struct am__db_stmt **out, const char *sql)
{
    struct lite_stmt *s = calloc(1, sizeof *s);
    if (!s)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    s->base.db = db;
    int rc = sqlite3_prepare_v2(handle(db), sql, -1, &s->h, NULL);
    if (rc != SQLITE_OK) {
        free(s);
        return lite_fail(db, rc, sql);
    }
    *out = &s->base;
    return AMUSE_OK;
}

static int lite_bind(struct am__db_stmt *st, int i, const struct am__db_value *v)
{
    sqlite3_stmt *h = lst(st)->h;
    int rc;
    switch (v->type) {
    case AM__DB_INT64: rc = sqlite3_bind_int64(h, i, v->i); break;
    case AM__DB_DOUBLE: rc = sqlite3_bind_double(h, i, v->d); break;
    case AM__DB_TEXT:
        rc = v->len > (size_t)INT32_MAX ? SQLITE_TOOBIG
                                         : sqlite3_bind_text(h, i, v->p ? v->p : "", (int)v->len,
                                                             SQLITE_TRANSIENT);
        break;
    case AM__DB_BLOB:
        rc = v->len > (size_t)INT32_MAX ? SQLITE_TOOBIG
                                         : sqlite3_bind_blob(h, i, v->p ? v->p : "", (int)v->len,
                                                             SQLITE_TRANSIENT);
        break;
    default: rc = sqlite3_bind_null(h, i); break;
    }
    return rc == SQLITE_OK ? AMUSE_OK : lite_fail(st->db, rc, sqlite3_sql(h));
}

static int lite_param_count(struct am__db_stmt *st)
{
    return sqlite3_bind_parameter_count(lst(st)->h);
}

static const char *lite_sql(struct am__db_stmt *st) { return sqlite3_sql(lst(st)->h); }

static int lite_step(struct am__db_stmt *st)
{
    struct lite_stmt *s = lst(st);
    int rc = sqlite3_step(s->h);
    if (rc == SQLITE_ROW)
        return AM__DB_ROW;
    if (rc == SQLITE_DONE) {
        s->changes = sqlite3_changes(handle(st->db));
        return AM__DB_DONE;
    }
    /* sqlite3_step's message is only complete after a reset. */
    sqlite3_reset(s->h);
    return lite_fail(st->db, rc, sqlite3_sql(s->h));
}

static int lite_is_null(struct am__db_stmt *st, int col)
{
    return sqlite3_column_type(lst(st)->h, col) == SQLITE_NULL;
}

static int64_t lite_int64(struct am__db_stmt *st, int col)
{
    return sqlite3_column_int64(lst(st)->h, col);
}

static double lite_double(struct am__db_stmt *st, int col)
{
    return sqlite3_column_double(lst(st)->h, col);
}

static const void *lite_bytes(struct am__db_stmt *st, int col, size_t *len, int text)
{
    sqlite3_stmt *h = lst(st)->h;
    const void *p = text ? (const void *)sqlite3_column_text(h, col) : sqlite3_column_blob(h, col);
    *len = (size_t)sqlite3_column_bytes(h, col);
    return p;
}

static int64_t lite_changes(struct am__db_stmt *st) { return lst(st)->changes; }

static int lite_reset(struct am__db_stmt *st)
{
    struct lite_stmt *s = lst(st);
    sqlite3_reset(s->h);
    sqlite3_clear_bindings(s->h);
    s->changes = 0;
    return AMUSE_OK;
}

static void lite_finalize(struct am__db_stmt *st)
{
    sqlite3_finalize(lst(st)->h);
    free(st);
}

/* The WAL holds the page images of rows since deleted until a checkpoint copies the current
 * (zeroed, with secure_delete) pages back and the log is truncated. */
static int lite_purge(struct am__db *db)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(handle(db), NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc != SQLITE_OK)
        return lite_fail(db, rc, "checkpoint after a delete");
    return AMUSE_OK;
}

static const struct am__db_ops lite_ops = {
    .name = "sqlite",
    .begin_sql = "BEGIN IMMEDIATE",
    .close = lite_close,
    .exec = lite_exec,
    .prepare = lite_prepare,
    .bind = lite_bind,
    .param_count = lite_param_count,
    .sql = lite_sql,
    .step = lite_step,
    .is_null = lite_is_null,
    .int64 = lite_int64,
    .dbl = lite_double,
    .bytes = lite_bytes,
    .changes = lite_changes,
    .reset = lite_reset,
    .finalize = lite_finalize,
    .purge = lite_purge,
};

int am__db_sqlite_open(struct am__db **out, const char *path)
{
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
    struct lite *db = calloc(1, sizeof *db);
    if (!db || !(db->base.name = strdup(path))) {
        free(db);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    db->base.ops = &lite_ops;
    int rc = sqlite3_open_v2(path, &db->h,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        rc = am__fail(AMUSE_EIO, "%s: cannot open the database: %s", path,
                      db->h ? sqlite3_errmsg(db->h) : "out of memory");
        lite_close(&db->base);
        return rc;
    }
    sqlite3_busy_timeout(db->h, 5000);
    sqlite3_extended_result_codes(db->h, 1);
    /* journal_mode answers a row; the others are silent. A database that is not SQLite fails
     * here, with a message naming the file. */
    rc = lite_exec(&db->base, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                              " PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON");
    if (rc) {
        lite_close(&db->base);
        return rc;
    }
    *out = &db->base;
    return AMUSE_OK;
}
