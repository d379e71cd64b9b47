/* db.h - the one SQL interface the server's stores are written against: SQLite, the embedded
 * default (sqlite.c), and PostgreSQL for several replicas sharing one database (a second backend
 * behind the same calls). Stores (the key table, user events) hold their own SQL and never
 * include sqlite3.h or libpq-fe.h.
 *
 * SQL is written once, portable to both:
 *   - placeholders are `?` or `?N` (a backend that numbers them, as PostgreSQL's $1, rewrites
 *     them); a parameter is typed by where it stands, so one used twice must stand where the
 *     same type is expected both times, and one alone in a SELECT list is text;
 *   - upserts are `INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING`;
 *   - column types come from the set INTEGER (64-bit), REAL, TEXT and BLOB; a backend whose types
 *     differ translates them in migrations (PostgreSQL: BIGINT, DOUBLE PRECISION, TEXT, BYTEA).
 * It does not pool connections or share one between threads: a handle is used by one thread at a
 * time, so a store keeps a mutex around its calls (a transaction included).
 *
 * Errors: every call returns 0 (AMUSE_OK) or a negative AMUSE_E* status with a message naming the
 * database and what failed (amuse_last_error). AMUSE_EIO for the database refusing; a constraint
 * violation is AMUSE_EINVAL so a store can map it to "duplicate" or "unknown". */
#ifndef AMUSE_DB_H
#define AMUSE_DB_H

#include <stddef.h>
#include <stdint.h>

struct am__db;
struct am__db_stmt;

/* Open `url`: "postgres://..." or "postgresql://..." selects PostgreSQL (AMUSE_EUNSUPPORTED when
 * built without it); anything else is a SQLite file path, created with its parent directory if
 * missing, in WAL mode with secure_delete on (deleted rows are overwritten with zeros, so a scan
 * of the file does not find them) and a busy timeout, so another process (amuse keys, amuse
 * events) may write while the server reads. *out = NULL on failure. */
int am__db_open(struct am__db **out, const char *url);
void am__db_close(struct am__db *db); /* NULL is fine */

/* The backends this build has: "sqlite" or "sqlite, postgres" (amuse --version says it). */
const char *am__db_backends(void);

/* "sqlite" or "postgres". */
const char *am__db_backend(const struct am__db *db);
/* The url it was opened with, for messages (a PostgreSQL password is not kept in it). */
const char *am__db_name(const struct am__db *db);

/* A url as messages may show it: a postgres:// url without its password (neither the
 * user:password@ form nor a password= parameter); a SQLite path as it is. Malloc'd; NULL when
 * out of memory. */
char *am__db_redact(const char *url);

/* Run SQL without parameters or results: one statement or several separated by ';'. */
int am__db_exec(struct am__db *db, const char *sql);

/* Transactions. begin takes the write lock at once (SQLite's BEGIN IMMEDIATE), so a transaction
 * that reads before it writes cannot fail half-way on a lock. */
int am__db_begin(struct am__db *db);
int am__db_commit(struct am__db *db);
int am__db_rollback(struct am__db *db); /* safe to call when no transaction is open */

/* Prepared statements. Parameters are numbered from 1, result columns from 0. A statement may be
 * kept and reused: reset clears its bindings and results. Text is bound and returned with its
 * length (bytes, not NUL-terminated on the way in; NUL-terminated on the way out). */
int am__db_prepare(struct am__db *db, struct am__db_stmt **out, const char *sql);
int am__db_bind_int64(struct am__db_stmt *st, int i, int64_t v);
int am__db_bind_double(struct am__db_stmt *st, int i, double v);
int am__db_bind_text(struct am__db_stmt *st, int i, const char *s, size_t len);
int am__db_bind_blob(struct am__db_stmt *st, int i, const void *p, size_t len);
int am__db_bind_null(struct am__db_stmt *st, int i);

enum { AM__DB_DONE = 0, AM__DB_ROW = 1 };
/* Run the statement (first call) or advance to its next row: AM__DB_ROW while a row is ready,
 * then AM__DB_DONE, or a negative status. */
int am__db_step(struct am__db_stmt *st);
int am__db_is_null(struct am__db_stmt *st, int col);
int64_t am__db_int64(struct am__db_stmt *st, int col);
double am__db_double(struct am__db_stmt *st, int col);
/* Valid until the next step, reset or finalize; "" for NULL. len may be NULL. */
const char *am__db_text(struct am__db_stmt *st, int col, size_t *len);
const void *am__db_blob(struct am__db_stmt *st, int col, size_t *len);
/* Rows changed by the statement's last run (INSERT, UPDATE, DELETE). */
int64_t am__db_changes(struct am__db_stmt *st);
int am__db_reset(struct am__db_stmt *st);
void am__db_finalize(struct am__db_stmt *st); /* NULL is fine */

/* Statements with their parameters bound from a format, one character per parameter in order
 * (parameter i+1 is fmt[i]), each taking its arguments from the variable list:
 *   't'  text: const char * (NUL-terminated)
 *   'T'  text with a length: const char *, size_t (the bytes may hold NUL)
 *   'b'  blob: const void *, size_t
 *   'i'  int64_t (pass an int64_t: cast an int, a size_t or a literal)
 *   'd'  double
 *   'D'  a double or NULL: const double * (NULL binds SQL NULL)
 *   'n'  SQL NULL (takes no argument)
 * For 't', 'T' and 'b' a NULL pointer binds SQL NULL. The format must bind every parameter the
 * statement has (the largest ?N), no more and no fewer.
 *
 * am__db_query prepares `sql` and binds it. On any failure (the SQL refused, an unknown format
 * character, a count that does not match, a bind refused) the statement is finalized, *st = NULL,
 * and the message names the database and the SQL: AMUSE_EINVAL for a format at fault. */
int am__db_query(struct am__db *db, struct am__db_stmt **st, const char *sql, const char *fmt, ...);
/* Reset a kept statement (as am__db_reset) and bind it from `fmt` as am__db_query does. On
 * failure the statement stays the caller's, to reset again or finalize. */
int am__db_bindf(struct am__db_stmt *st, const char *fmt, ...);

/* Run a statement whose rows (a RETURNING row) are not read: AMUSE_OK after its first step
 * whether that gave a row or finished, else the step's status. *changes (may be NULL): the rows
 * it changed. */
int am__db_run(struct am__db_stmt *st, int64_t *changes);
/* Step a statement whose rows are read in a loop: 1 while a row is ready; 0 at the end (*rc left
 * as is) or when the step failed (*rc its status). So `while (!rc && am__db_next(st, &rc))`
 * reads every row and stops at the first error, the loop body's included. */
int am__db_next(struct am__db_stmt *st, int *rc);
/* Step once for a single int64: the first column of the first row into *v, *found (may be NULL)
 * 1; no row: *v untouched, *found 0, AMUSE_OK. A failed step returns its status. */
int am__db_one_int(struct am__db_stmt *st, int64_t *v, int *found);
/* A malloc'd NUL-terminated copy of a text column (its bytes as stored, NULs included: the
 * length is am__db_text's). NULL for SQL NULL and when out of memory: a caller that must tell
 * them apart asks am__db_is_null. The caller frees it. */
char *am__db_text_dup(struct am__db_stmt *st, int col);

/* After deleting personal data: make what was deleted unrecoverable from the database's files.
 * SQLite: secure_delete already zeroes freed pages in the main file, but the write-ahead log still
 * holds the old page images until a checkpoint, so this checkpoints and truncates the WAL
 * (waiting for readers up to the busy timeout; AMUSE_EBUSY if they never let go). A backend with
 * nothing to do (PostgreSQL: VACUUM is the operator's) returns AMUSE_OK. Outside transactions. */
int am__db_purge(struct am__db *db);

/* Schema migrations, one list per component ("keys", "events"), applied in order in one
 * transaction each. A table schema_versions (component, version) records where each component
 * is; a database newer than the code is refused with a message saying so. Migration SQL uses
 * the portable types above. */
struct am__db_migration {
    int version; /* 1, 2, 3... */
    const char *sql;
};
int am__db_migrate(struct am__db *db, const char *component, const struct am__db_migration *m,
                   int n);
/* The component's current version (0: none yet). */
int am__db_version(struct am__db *db, const char *component, int *version);

#endif
