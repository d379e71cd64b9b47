/* db_internal.h - what a database backend implements (sqlite.c; a PostgreSQL backend next to it).
 * db.c dispatches the calls of db.h through a table of functions, as layers and model kinds do,
 * and keeps what is the same for every backend (transactions, migrations, argument checks). */
#ifndef AMUSE_DB_INTERNAL_H
#define AMUSE_DB_INTERNAL_H

#include "db/db.h"

enum am__db_type { AM__DB_NULL, AM__DB_INT64, AM__DB_DOUBLE, AM__DB_TEXT, AM__DB_BLOB };

struct am__db_value {
    enum am__db_type type;
    int64_t i;
    double d;
    const void *p; /* TEXT or BLOB bytes, copied by the backend when bound */
    size_t len;
};

struct am__db_ops {
    const char *name;       /* "sqlite", "postgres" */
    const char *begin_sql;  /* the statement that opens a write transaction */
    /* Migration DDL written in the portable types -> this backend's (malloc'd; NULL: out of
     * memory). NULL when the portable types are the backend's own (SQLite). */
    char *(*ddl)(const char *sql);
    void (*close)(struct am__db *db);
    int (*exec)(struct am__db *db, const char *sql);
    int (*prepare)(struct am__db *db, struct am__db_stmt **out, const char *sql);
    int (*bind)(struct am__db_stmt *st, int i, const struct am__db_value *v);
    int (*param_count)(struct am__db_stmt *st); /* the largest parameter number in the SQL */
    const char *(*sql)(struct am__db_stmt *st); /* the statement's text, for messages */
    int (*step)(struct am__db_stmt *st);
    int (*is_null)(struct am__db_stmt *st, int col);
    int64_t (*int64)(struct am__db_stmt *st, int col);
    double (*dbl)(struct am__db_stmt *st, int col);
    const void *(*bytes)(struct am__db_stmt *st, int col, size_t *len, int text);
    int64_t (*changes)(struct am__db_stmt *st);
    int (*reset)(struct am__db_stmt *st);
    void (*finalize)(struct am__db_stmt *st);
    int (*purge)(struct am__db *db); /* am__db_purge; NULL: nothing to do */
};

/* The first member of every backend's connection and statement structs. */
struct am__db {
    const struct am__db_ops *ops;
    char *name;
    int in_transaction;
};
struct am__db_stmt {
    struct am__db *db;
};

/* Backends: open `url` (already known to be theirs) into *out. */
int am__db_sqlite_open(struct am__db **out, const char *path);
int am__db_postgres_open(struct am__db **out, const char *url);

#endif
