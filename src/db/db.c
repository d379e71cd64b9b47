/* db.c - the backend-independent half of db.h: choosing the backend from the url, dispatch,
 * transactions, statements bound from a format (am__db_query) with their step helpers, and
 * schema migrations. The SQL each store runs lives with that store. */
#include "db/db_internal.h"

#include "core/internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_postgres_url(const char *url)
{
    return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

int am__db_open(struct am__db **out, const char *url)
{
    *out = NULL;
    if (!url || !*url)
        return am__fail(AMUSE_EINVAL, "database: no path or url given");
    if (is_postgres_url(url))
        return am__db_postgres_open(out, url);
    return am__db_sqlite_open(out, url);
}

char *am__db_redact(const char *url)
{
    size_t n = strlen(url);
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    if (!is_postgres_url(url)) {
        memcpy(out, url, n + 1);
        return out;
    }
    /* postgres://user:secret@host/db?password=x&a=b -> postgres://user@host/db?a=b */
    const char *auth = strstr(url, "://") + 3;
    size_t auth_len = strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *p = auth; p < auth + auth_len; p++)
        if (*p == '@')
            at = p;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    const char *p = url;
    if (colon) {
        memcpy(o, url, (size_t)(colon - url));
        o += colon - url;
        p = at;
    }
    const char *query = strchr(auth + auth_len, '?');
    const char *end = query ? query : url + n;
    memcpy(o, p, (size_t)(end - p));
    o += end - p;
    char sep = '?';
    for (p = query ? query + 1 : end; *p;) { /* every parameter but password=... */
        size_t k = strcspn(p, "&");
        if (!(k >= 9 && strncasecmp(p, "password=", 9) == 0)) {
            *o++ = sep;
            memcpy(o, p, k);
            o += k;
            sep = '&';
        }
        p += k;
        if (*p == '&')
            p++;
    }
    *o = '\0';
    return out;
}

void am__db_close(struct am__db *db)
{
    if (db)
        db->ops->close(db);
}

const char *am__db_backends(void)
{
#ifdef AMUSE_HAVE_POSTGRES
    return "sqlite, postgres";
#else
    return "sqlite";
#endif
}

const char *am__db_backend(const struct am__db *db) { return db->ops->name; }
const char *am__db_name(const struct am__db *db) { return db->name; }

int am__db_exec(struct am__db *db, const char *sql) { return db->ops->exec(db, sql); }

int am__db_purge(struct am__db *db)
{
    if (db->in_transaction)
        return am__fail(AMUSE_EINVAL, "database %s: purge inside a transaction", db->name);
    return db->ops->purge ? db->ops->purge(db) : AMUSE_OK;
}

int am__db_begin(struct am__db *db)
{
    int rc = db->ops->exec(db, db->ops->begin_sql);
    if (rc == AMUSE_OK)
        db->in_transaction = 1;
    return rc;
}

int am__db_commit(struct am__db *db)
{
    int rc = db->ops->exec(db, "COMMIT");
    if (rc == AMUSE_OK)
        db->in_transaction = 0;
    else
        am__db_rollback(db); /* keep the message of the failed commit */
    return rc;
}

int am__db_rollback(struct am__db *db)
{
    if (!db->in_transaction)
        return AMUSE_OK;
    db->in_transaction = 0;
    /* Keep the error that made the caller roll back: amuse_last_error is what it reports. */
    char saved[512];
    snprintf(saved, sizeof saved, "%s", amuse_last_error());
    int rc = db->ops->exec(db, "ROLLBACK");
    if (saved[0])
        am__fail(AMUSE_EIO, "%s", saved);
    return rc;
}

int am__db_prepare(struct am__db *db, struct am__db_stmt **out, const char *sql)
{
    *out = NULL;
    return db->ops->prepare(db, out, sql);
}

static int bind(struct am__db_stmt *st, int i, struct am__db_value v)
{
    if (i < 1)
        return am__fail(AMUSE_EINVAL, "database %s: parameter %d (they count from 1)",
                        st->db->name, i);
    return st->db->ops->bind(st, i, &v);
}

int am__db_bind_int64(struct am__db_stmt *st, int i, int64_t v)
{
    return bind(st, i, (struct am__db_value){.type = AM__DB_INT64, .i = v});
}

int am__db_bind_double(struct am__db_stmt *st, int i, double v)
{
    return bind(st, i, (struct am__db_value){.type = AM__DB_DOUBLE, .d = v});
}

int am__db_bind_text(struct am__db_stmt *st, int i, const char *s, size_t len)
{
    return bind(st, i, (struct am__db_value){.type = AM__DB_TEXT, .p = s, .len = len});
}

int am__db_bind_blob(struct am__db_stmt *st, int i, const void *p, size_t len)
{
    return bind(st, i, (struct am__db_value){.type = AM__DB_BLOB, .p = p, .len = len});
}

int am__db_bind_null(struct am__db_stmt *st, int i)
{
    return bind(st, i, (struct am__db_value){.type = AM__DB_NULL});
}

int am__db_step(struct am__db_stmt *st) { return st->db->ops->step(st); }
int am__db_is_null(struct am__db_stmt *st, int col) { return st->db->ops->is_null(st, col); }
int64_t am__db_int64(struct am__db_stmt *st, int col) { return st->db->ops->int64(st, col); }
double am__db_double(struct am__db_stmt *st, int col) { return st->db->ops->dbl(st, col); }

const char *am__db_text(struct am__db_stmt *st, int col, size_t *len)
{
    size_t n = 0;
    const char *s = st->db->ops->bytes(st, col, &n, 1);
    if (len)
        *len = s ? n : 0;
    return s ? s : "";
}

const void *am__db_blob(struct am__db_stmt *st, int col, size_t *len)
{
    size_t n = 0;
    const void *p = st->db->ops->bytes(st, col, &n, 0);
    if (len)
        *len = p ? n : 0;
    return p;
}

int64_t am__db_changes(struct am__db_stmt *st) { return st->db->ops->changes(st); }
int am__db_reset(struct am__db_stmt *st) { return st->db->ops->reset(st); }

void am__db_finalize(struct am__db_stmt *st)
{
    if (st)
        st->db->ops->finalize(st);
}

/* ------------------------------------------------------------------------------------------ */

static const char format_chars[] = "tTbidDn";

/* Bind every parameter of `st` from `fmt` (db.h); the characters and their count are checked
 * before anything is bound. */
static int bind_format(struct am__db_stmt *st, const char *fmt, va_list ap)
{
    size_t n = strlen(fmt);
    for (size_t k = 0; k < n; k++) {
        if (strchr(format_chars, fmt[k]))
            continue;
        char what[16];
        unsigned char c = (unsigned char)fmt[k];
        if (isprint(c))
            snprintf(what, sizeof what, "'%c'", c);
        else
            snprintf(what, sizeof what, "byte 0x%02x", c);
        return am__fail(AMUSE_EINVAL,
                        "database %s: parameter %zu: %s is not a format character (one of %s): "
                        "%s",
                        st->db->name, k + 1, what, format_chars, st->db->ops->sql(st));
    }
    int have = st->db->ops->param_count(st);
    if (n != (size_t)have)
        return am__fail(AMUSE_EINVAL,
                        "database %s: parameters: the statement has %d, the format \"%.32s\" "
                        "binds %zu: %s",
                        st->db->name, have, fmt, n, st->db->ops->sql(st));
    int rc = AMUSE_OK;
    for (size_t k = 0; rc == AMUSE_OK && k < n; k++) {
        struct am__db_value v = {.type = AM__DB_NULL};
        switch (fmt[k]) {
        case 't':
            v.p = va_arg(ap, const char *);
            v.len = v.p ? strlen(v.p) : 0;
            v.type = v.p ? AM__DB_TEXT : AM__DB_NULL;
            break;
        case 'T':
        case 'b':
            v.p = va_arg(ap, const void *);
            v.len = va_arg(ap, size_t);
            v.type = !v.p ? AM__DB_NULL : fmt[k] == 'T' ? AM__DB_TEXT : AM__DB_BLOB;
            break;
        case 'i':
            v.type = AM__DB_INT64;
            v.i = va_arg(ap, int64_t);
            break;
        case 'd':
            v.type = AM__DB_DOUBLE;
            v.d = va_arg(ap, double);
            break;
        case 'D': {
            const double *d = va_arg(ap, const double *);
            if (d) {
                v.type = AM__DB_DOUBLE;
                v.d = *d;
            }
            break;
        }
        default: /* 'n' */
            break;
        }
        rc = st->db->ops->bind(st, (int)k + 1, &v);
    }
    return rc;
}

int am__db_query(struct am__db *db, struct am__db_stmt **st, const char *sql, const char *fmt, ...)
{
    int rc = am__db_prepare(db, st, sql);
    if (rc)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    rc = bind_format(*st, fmt, ap);
    va_end(ap);
    if (rc) {
        am__db_finalize(*st);
        *st = NULL;
    }
    return rc;
}

int am__db_bindf(struct am__db_stmt *st, const char *fmt, ...)
{
    int rc = am__db_reset(st);
    if (rc)
        return rc;
    va_list ap;
    va_start(ap, fmt);
    rc = bind_format(st, fmt, ap);
    va_end(ap);
    return rc;
}

int am__db_run(struct am__db_stmt *st, int64_t *changes)
{
    int rc = am__db_step(st);
    if (rc < 0)
        return rc;
    if (changes)
        *changes = am__db_changes(st);
    return AMUSE_OK;
}

int am__db_next(struct am__db_stmt *st, int *rc)
{
    int step = am__db_step(st);
    if (step < 0)
        *rc = step;
    return step == AM__DB_ROW;
}

int am__db_one_int(struct am__db_stmt *st, int64_t *v, int *found)
{
    int rc = am__db_step(st);
    if (found)
        *found = rc == AM__DB_ROW;
    if (rc == AM__DB_ROW)
        *v = am__db_int64(st, 0);
    return rc < 0 ? rc : AMUSE_OK;
}

char *am__db_text_dup(struct am__db_stmt *st, int col)
{
    if (am__db_is_null(st, col))
        return NULL;
    size_t len;
    const char *s = am__db_text(st, col, &len);
    char *p = malloc(len + 1);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\0';
    }
    return p;
}

/* ------------------------------------------------------------------------------------------ */

static const char versions_table[] =
    "CREATE TABLE IF NOT EXISTS schema_versions ("
    "  component TEXT PRIMARY KEY,"
    "  version INTEGER NOT NULL)";

static int read_version(struct am__db *db, const char *component, int *version)
{
    struct am__db_stmt *st = NULL;
    int64_t v = 0;
    int rc = am__db_query(db, &st, "SELECT version FROM schema_versions WHERE component = ?", "t",
                          component);
    if (rc == AMUSE_OK)
        rc = am__db_one_int(st, &v, NULL);
    am__db_finalize(st);
    *version = (int)v;
    return rc;
}

int am__db_version(struct am__db *db, const char *component, int *version)
{
    int rc = am__db_exec(db, versions_table);
    return rc ? rc : read_version(db, component, version);
}

static int apply(struct am__db *db, const char *component, const struct am__db_migration *m)
{
    struct am__db_stmt *st = NULL;
    int rc;
    if (db->ops->ddl) {
        char *sql = db->ops->ddl(m->sql);
        rc = sql ? am__db_exec(db, sql) : am__fail(AMUSE_ENOMEM, "out of memory");
        free(sql);
    } else {
        rc = am__db_exec(db, m->sql);
    }
    if (rc)
        return am__fail_prefix(rc, "database %s: %s schema version %d", db->name, component,
                               m->version);
    rc = am__db_query(db, &st,
                      "INSERT INTO schema_versions (component, version) VALUES (?, ?)"
                      " ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                      "ti", component, (int64_t)m->version);
    if (rc == AMUSE_OK)
        rc = am__db_run(st, NULL);
    am__db_finalize(st);
    return rc;
}

int am__db_migrate(struct am__db *db, const char *component, const struct am__db_migration *m,
                   int n)
{
    for (int k = 0; k < n; k++)
        if (m[k].version != k + 1)
            return am__fail(AMUSE_EINVAL, "%s migrations: entry %d has version %d, not %d",
                            component, k, m[k].version, k + 1);
    /* One transaction per migration; the version is read again inside it, so two processes
     * opening a new database at once apply each migration once. The versions table is created
     * inside it too: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a second
     * process running it at the same moment, and the write lock of begin orders the two. */
    int rc = AMUSE_OK;
    for (int k = 0; rc == AMUSE_OK && k < n; k++) {
        int have = 0;
        if ((rc = am__db_begin(db)))
            break;
        rc = am__db_exec(db, versions_table);
        if (rc == AMUSE_OK)
            rc = read_version(db, component, &have);
        if (rc == AMUSE_OK && have > n)
            rc = am__fail(AMUSE_EUNSUPPORTED,
                          "database %s: the %s schema is version %d, and this amuse knows up to "
                          "%d: use a newer amuse with this database",
                          db->name, component, have, n);
        if (rc == AMUSE_OK && have < m[k].version)
            rc = apply(db, component, &m[k]);
        if (rc == AMUSE_OK)
            rc = am__db_commit(db);
        else
            am__db_rollback(db);
    }
    return rc;
}

#ifndef AMUSE_HAVE_POSTGRES
int am__db_postgres_open(struct am__db **out, const char *url)
{
    (void)url;
    *out = NULL;
    return am__fail(AMUSE_EUNSUPPORTED,
                    "database: this amuse was built without PostgreSQL (install libpq-dev and "
                    "rebuild), so a postgres:// url cannot be used");
}
#endif
