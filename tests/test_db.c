/* test_db.c - the SQL interface of src/db (db.h) on a real database: a SQLite file in a temporary
 * directory, or the database named by AMUSE_TEST_DB_URL (a postgres:// url) when that is set, so
 * the same checks run against every backend. */
#include "db/db.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

static char dir[] = "/tmp/amuse-test-db-XXXXXX";
static char path[256];

static const char *url(void)
{
    const char *u = getenv("AMUSE_TEST_DB_URL");
    return u && *u ? u : path;
}

static int is_sqlite(void) { return url() == path; }

static const struct am__db_migration migrations[] = {
    {1, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL,"
        " data BLOB)"},
    {2, "ALTER TABLE t ADD COLUMN note TEXT"},
};

static struct am__db *open_fresh(void)
{
    struct am__db *db = NULL;
    ASSERT_OK(am__db_open(&db, url()));
    ASSERT_OK(am__db_exec(db, "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS schema_versions"));
    return db;
}

/* A fresh database with the table `name` made anew by `ddl` in the portable types (a migration
 * of the component "test-<name>"). */
static struct am__db *open_with_table(const char *name, const char *ddl)
{
    struct am__db *db = open_fresh();
    char sql[64], component[32];
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", name);
    snprintf(component, sizeof component, "test-%s", name);
    ASSERT_OK(am__db_exec(db, sql));
    const struct am__db_migration m[] = {{1, ddl}};
    ASSERT_OK(am__db_migrate(db, component, m, 1));
    return db;
}

TEST(migrations_apply_once_and_refuse_newer)
{
    struct am__db *db = open_fresh();
    int v = -1;
    ASSERT_OK(am__db_version(db, "test", &v));
    ASSERT_EQ_INT(v, 0);
    ASSERT_OK(am__db_migrate(db, "test", migrations, 1));
    ASSERT_OK(am__db_version(db, "test", &v));
    ASSERT_EQ_INT(v, 1);
    /* Reopening and migrating again applies only what is new (ALTER TABLE would fail twice). */
    am__db_close(db);
    ASSERT_OK(am__db_open(&db, url()));
    ASSERT_OK(am__db_migrate(db, "test", migrations, 2));
    ASSERT_OK(am__db_migrate(db, "test", migrations, 2));
    ASSERT_OK(am__db_version(db, "test", &v));
    ASSERT_EQ_INT(v, 2);
    /* An older amuse (it knows one version) refuses the newer database instead of using it. */
    ASSERT_FAILS(am__db_migrate(db, "test", migrations, 1), AMUSE_EUNSUPPORTED,
                 "schema is version 2, and this amuse knows up to 1");
    /* A list out of order is a programming error, caught before anything runs. */
    const struct am__db_migration bad[] = {{2, "SELECT 1"}};
    ASSERT_FAILS(am__db_migrate(db, "other", bad, 1), AMUSE_EINVAL, "has version 2, not 1");
    am__db_close(db);
}

TEST(values_round_trip)
{
    struct am__db *db = open_fresh();
    ASSERT_OK(am__db_migrate(db, "test", migrations, 2));
    struct am__db_stmt *ins = NULL, *sel = NULL;
    ASSERT_OK(am__db_prepare(db, &ins,
                             "INSERT INTO t (id, name, score, data, note) VALUES (?, ?, ?, ?, ?)"));
    const unsigned char blob[] = {0, 1, 2, 255, 0};
    const char *name = "caf\xc3\xa9 \xe6\xb1\x9f"; /* UTF-8 survives */
    ASSERT_OK(am__db_bind_int64(ins, 1, INT64_C(9007199254740993)));
    ASSERT_OK(am__db_bind_text(ins, 2, name, strlen(name)));
    ASSERT_OK(am__db_bind_double(ins, 3, -0.25));
    ASSERT_OK(am__db_bind_blob(ins, 4, blob, sizeof blob));
    ASSERT_OK(am__db_bind_null(ins, 5));
    ASSERT_EQ_INT(am__db_step(ins), AM__DB_DONE);
    ASSERT_EQ_INT(am__db_changes(ins), 1);
    /* Reuse after reset; a text bound with a length stops there. */
    ASSERT_OK(am__db_reset(ins));
    ASSERT_OK(am__db_bind_int64(ins, 1, 2));
    ASSERT_OK(am__db_bind_text(ins, 2, "second-and-more", 6));
    ASSERT_OK(am__db_bind_null(ins, 3));
    ASSERT_OK(am__db_bind_null(ins, 4));
    ASSERT_OK(am__db_bind_text(ins, 5, "n", 1));
    ASSERT_EQ_INT(am__db_step(ins), AM__DB_DONE);

    ASSERT_OK(am__db_prepare(db, &sel, "SELECT id, name, score, data, note FROM t ORDER BY id"));
    ASSERT_EQ_INT(am__db_step(sel), AM__DB_ROW);
    ASSERT_EQ_INT(am__db_int64(sel, 0), 2);
    size_t len = 0;
    ASSERT_STR_EQ(am__db_text(sel, 1, &len), "second");
    ASSERT_EQ_INT(len, 6);
    ASSERT_TRUE(am__db_is_null(sel, 2));
    ASSERT_STR_EQ(am__db_text(sel, 3, NULL), "");
    ASSERT_EQ_INT(am__db_step(sel), AM__DB_ROW);
    ASSERT_TRUE(am__db_int64(sel, 0) == INT64_C(9007199254740993));
    ASSERT_STR_EQ(am__db_text(sel, 1, NULL), name);
    ASSERT_NEAR(am__db_double(sel, 2), -0.25, 0);
    const unsigned char *got = am__db_blob(sel, 3, &len);
    ASSERT_EQ_INT(len, sizeof blob);
    ASSERT_TRUE(memcmp(got, blob, sizeof blob) == 0);
    ASSERT_TRUE(am__db_is_null(sel, 4));
    ASSERT_EQ_INT(am__db_step(sel), AM__DB_DONE);
    am__db_finalize(sel);

    /* A constraint violation is AMUSE_EINVAL and names the statement. */
    ASSERT_OK(am__db_reset(ins));
    ASSERT_OK(am__db_bind_int64(ins, 1, 3));
    ASSERT_OK(am__db_bind_text(ins, 2, "second", 6));
    for (int i = 3; i <= 5; i++)
        ASSERT_OK(am__db_bind_null(ins, i));
    ASSERT_FAILS(am__db_step(ins), AMUSE_EINVAL, "INSERT INTO t");
    am__db_finalize(ins);
    am__db_close(db);
}

static int64_t count_rows(struct am__db *db)
{
    struct am__db_stmt *st = NULL;
    ASSERT_OK(am__db_prepare(db, &st, "SELECT COUNT(*) FROM t"));
    ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
    int64_t n = am__db_int64(st, 0);
    am__db_finalize(st);
    return n;
}

TEST(rollback_leaves_nothing)
{
    struct am__db *db = open_fresh();
    ASSERT_OK(am__db_migrate(db, "test", migrations, 2));
    ASSERT_OK(am__db_begin(db));
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id, name) VALUES (1, 'a'); "
                              "INSERT INTO t (id, name) VALUES (2, 'b')"));
    ASSERT_OK(am__db_rollback(db));
    ASSERT_EQ_INT(count_rows(db), 0);
    ASSERT_OK(am__db_rollback(db)); /* nothing open: fine */
    ASSERT_OK(am__db_begin(db));
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id, name) VALUES (1, 'a')"));
    ASSERT_OK(am__db_commit(db));
    ASSERT_EQ_INT(count_rows(db), 1);
    /* Upserts are written once, for every backend. */
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id, name) VALUES (1, 'z') ON CONFLICT (id)"
                              " DO UPDATE SET name = excluded.name"));
    struct am__db_stmt *st = NULL;
    ASSERT_OK(am__db_prepare(db, &st, "SELECT name FROM t WHERE id = ?"));
    ASSERT_OK(am__db_bind_int64(st, 1, 1));
    ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
    ASSERT_STR_EQ(am__db_text(st, 0, NULL), "z");
    am__db_finalize(st);
    am__db_close(db);
}

/* A write lock held by another connection past the busy timeout is AMUSE_EBUSY (the server
 * answers 503 with Retry-After), not an I/O error; once it is let go the same write works.
 * SQLite only: PostgreSQL waits for its lock without a timeout. Takes the 5 s busy timeout. */
TEST(a_held_write_lock_is_busy)
{
    if (!is_sqlite())
        return;
    struct am__db *holder = open_fresh(), *writer = NULL;
    ASSERT_OK(am__db_migrate(holder, "test", migrations, 2));
    ASSERT_OK(am__db_open(&writer, url()));
    ASSERT_OK(am__db_begin(holder));
    ASSERT_OK(am__db_exec(holder, "INSERT INTO t (id, name) VALUES (1, 'held')"));
    ASSERT_FAILS(am__db_exec(writer, "INSERT INTO t (id, name) VALUES (2, 'waits')"), AMUSE_EBUSY,
                 "database is locked");
    ASSERT_FAILS(am__db_begin(writer), AMUSE_EBUSY, "locked");
    ASSERT_OK(am__db_commit(holder));
    ASSERT_OK(am__db_exec(writer, "INSERT INTO t (id, name) VALUES (2, 'waits')"));
    ASSERT_EQ_INT(count_rows(writer), 2);
    am__db_close(writer);
    am__db_close(holder);
}

static int file_contains(const char *file, const char *needle)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f), k = strlen(needle);
    fclose(f);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, needle, k) == 0)
            return 1;
    return 0;
}

/* secure_delete: a deleted row's text is overwritten in the file, not just unlinked. */
TEST(deleted_rows_leave_no_trace_in_the_file)
{
    if (!is_sqlite()) {
        printf("     (file scan is SQLite's; %s is not a file)\n", url());
        return;
    }
    struct am__db *db = open_fresh();
    ASSERT_OK(am__db_migrate(db, "test", migrations, 2));
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id, name, note) VALUES (1, 'keep',"
                              " 'ordinary words'), (2, 'gone', 'zebra-marmalade-secret')"));
    ASSERT_OK(am__db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    ASSERT_TRUE(file_contains(path, "zebra-marmalade-secret"));
    ASSERT_OK(am__db_exec(db, "DELETE FROM t WHERE id = 2"));
    ASSERT_OK(am__db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"));
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    ASSERT_TRUE(!file_contains(path, "zebra-marmalade-secret"));
    ASSERT_TRUE(!file_contains(wal, "zebra-marmalade-secret"));
    ASSERT_TRUE(file_contains(path, "ordinary words"));
    am__db_close(db);
}

/* Placeholders: `?` inside a literal is text, `?N` may repeat and come in any order, and the
 * portable types of migration DDL are translated outside literals only (PostgreSQL). */
TEST(placeholders_and_portable_ddl)
{
    struct am__db *db = open_with_table(
        "u", "CREATE TABLE u (id INTEGER PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'INTEGER BLOB',"
             " weight REAL, raw BLOB, n INTEGER)");
    struct am__db_stmt *st = NULL;
    /* No id given: the INTEGER PRIMARY KEY assigns one, on both backends. */
    ASSERT_OK(am__db_prepare(db, &st, "INSERT INTO u (weight, n, raw) VALUES (?2, ?1, ?)"));
    ASSERT_OK(am__db_bind_int64(st, 1, INT64_C(-4611686018427387904)));
    ASSERT_OK(am__db_bind_double(st, 2, 1e-300));
    const unsigned char zeros[3] = {0, 0, 0};
    ASSERT_OK(am__db_bind_blob(st, 3, zeros, sizeof zeros));
    ASSERT_EQ_INT(am__db_step(st), AM__DB_DONE);
    am__db_finalize(st);
    ASSERT_OK(am__db_prepare(db, &st, "SELECT id, kind, weight, n, raw, '?' FROM u -- ?\n"
                                      " WHERE n = ?1 AND ? = 'it''s' /* ? */"));
    ASSERT_OK(am__db_bind_int64(st, 1, INT64_C(-4611686018427387904)));
    ASSERT_OK(am__db_bind_text(st, 2, "it's", 4)); /* the bare ? after ?1 is number 2 */
    ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
    ASSERT_TRUE(am__db_int64(st, 0) >= 1);
    ASSERT_STR_EQ(am__db_text(st, 1, NULL), "INTEGER BLOB");
    ASSERT_NEAR(am__db_double(st, 2), 1e-300, 1e-310);
    ASSERT_TRUE(am__db_int64(st, 3) == INT64_C(-4611686018427387904));
    size_t len = 9;
    const unsigned char *raw = am__db_blob(st, 4, &len);
    ASSERT_EQ_INT(len, 3);
    ASSERT_TRUE(raw && memcmp(raw, zeros, 3) == 0);
    ASSERT_STR_EQ(am__db_text(st, 5, NULL), "?");
    ASSERT_EQ_INT(am__db_step(st), AM__DB_DONE);
    /* Binding a parameter the statement does not have is refused, not ignored. */
    ASSERT_OK(am__db_reset(st));
    ASSERT_TRUE(am__db_bind_int64(st, 3, 1) < 0);
    am__db_finalize(st);
    ASSERT_OK(am__db_exec(db, "DROP TABLE u"));
    am__db_close(db);
}

/* ------------------------------------------------------------- statements bound from a format */

/* A table with a column per format character. */
static struct am__db *open_formats(void)
{
    return open_with_table("f", "CREATE TABLE f (k INTEGER NOT NULL, t TEXT, tl TEXT, b BLOB,"
                                " d REAL, dp REAL, dn REAL, n TEXT, tn TEXT, bn BLOB)");
}

static const char insert_f[] =
    "INSERT INTO f (k, t, tl, b, d, dp, dn, n, tn, bn) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/* Each format character stores what it was given, and NULL where it says so: int64 extremes,
 * UTF-8 text, text cut at its length, a blob with NUL bytes, doubles by value and by pointer. */
TEST(format_characters_round_trip)
{
    struct am__db *db = open_formats();
    struct am__db_stmt *st = NULL;
    const char *word = "caf\xc3\xa9 \xe6\xb1\x9f";
    const char *longer = "kept-and-cut-here";
    const unsigned char blob[] = {0, 'a', 0, 0xff, 0};
    const double third = 1.0 / 3.0;
    int64_t changes = 0;
    ASSERT_OK(am__db_query(db, &st, insert_f, "itTbdDDntb", INT64_MAX, word, longer, (size_t)12,
                           blob, sizeof blob, -2.5e-300, &third, (const double *)NULL,
                           (const char *)NULL, (const void *)NULL, (size_t)0));
    ASSERT_OK(am__db_run(st, &changes));
    ASSERT_EQ_INT(changes, 1);
    /* The kept statement again: bindf resets it first, and binds every parameter anew. */
    ASSERT_OK(am__db_bindf(st, "itTbdDDntb", INT64_MIN, "", "x", (size_t)0, blob, (size_t)1, 1e300,
                           (const double *)NULL, &third, "not null", blob, (size_t)2));
    ASSERT_OK(am__db_run(st, &changes));
    ASSERT_EQ_INT(changes, 1);
    am__db_finalize(st);

    const char *cols = "SELECT k, t, tl, b, d, dp, dn, n, tn, bn FROM f WHERE k = ?";
    ASSERT_OK(am__db_query(db, &st, cols, "i", INT64_MAX));
    ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
    ASSERT_TRUE(am__db_int64(st, 0) == INT64_MAX);
    ASSERT_STR_EQ(am__db_text(st, 1, NULL), word);
    char *cut = am__db_text_dup(st, 2);
    ASSERT_STR_EQ(cut, "kept-and-cut");
    free(cut);
    size_t len = 0;
    const unsigned char *got = am__db_blob(st, 3, &len);
    ASSERT_EQ_INT(len, sizeof blob);
    ASSERT_TRUE(got && memcmp(got, blob, sizeof blob) == 0);
    ASSERT_TRUE(am__db_double(st, 4) == -2.5e-300);
    ASSERT_TRUE(am__db_double(st, 5) == third);
    for (int col = 6; col <= 9; col++) /* D NULL, n, t NULL, b NULL */
        if (!am__db_is_null(st, col))
            TEST_FAIL("column %d is not NULL", col);
    ASSERT_TRUE(am__db_text_dup(st, 8) == NULL); /* SQL NULL, not "" */
    ASSERT_EQ_INT(am__db_step(st), AM__DB_DONE);
    am__db_finalize(st);

    ASSERT_OK(am__db_query(db, &st, cols, "i", INT64_MIN));
    ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
    ASSERT_TRUE(am__db_int64(st, 0) == INT64_MIN);
    ASSERT_TRUE(!am__db_is_null(st, 1) && !am__db_is_null(st, 2)); /* "" and a 0-byte cut */
    char *empty = am__db_text_dup(st, 2);
    ASSERT_STR_EQ(empty, "");
    free(empty);
    got = am__db_blob(st, 3, &len);
    ASSERT_EQ_INT(len, 1);
    ASSERT_TRUE(got && got[0] == 0);
    ASSERT_TRUE(am__db_double(st, 4) == 1e300);
    ASSERT_TRUE(am__db_is_null(st, 5));
    ASSERT_TRUE(am__db_double(st, 6) == third);
    ASSERT_STR_EQ(am__db_text(st, 8, NULL), "not null");
    ASSERT_EQ_INT(am__db_step(st), AM__DB_DONE);
    am__db_finalize(st);

    /* one_int: a row, and no row (*v untouched, found 0). */
    int64_t v = 42;
    int found = -1;
    ASSERT_OK(am__db_query(db, &st, "SELECT COUNT(*) FROM f WHERE k < ?", "i", INT64_C(0)));
    ASSERT_OK(am__db_one_int(st, &v, &found));
    ASSERT_EQ_INT(v, 1);
    ASSERT_EQ_INT(found, 1);
    am__db_finalize(st);
    v = 42;
    ASSERT_OK(am__db_query(db, &st, "SELECT k FROM f WHERE t = ?", "t", "nobody"));
    ASSERT_OK(am__db_one_int(st, &v, &found));
    ASSERT_EQ_INT(v, 42);
    ASSERT_EQ_INT(found, 0);
    am__db_finalize(st);
    /* next: every row, then 0 with rc untouched; a step that fails, 0 with its status. */
    int rc = AMUSE_OK, rows = 0;
    int64_t seen[3] = {0, 0, 0};
    ASSERT_OK(am__db_query(db, &st, "SELECT k FROM f ORDER BY k", ""));
    while (!rc && am__db_next(st, &rc))
        seen[rows < 2 ? rows++ : 2] = am__db_int64(st, 0); /* seen[2]: a row too many */
    ASSERT_OK(rc);
    ASSERT_EQ_INT(rows, 2);
    ASSERT_TRUE(seen[0] == INT64_MIN && seen[1] == INT64_MAX && seen[2] == 0);
    am__db_finalize(st);
    ASSERT_OK(am__db_query(db, &st, "INSERT INTO f (k) VALUES (?)", "n")); /* k is NOT NULL */
    amuse_clear_error();
    ASSERT_EQ_INT(am__db_next(st, &rc), 0);
    ASSERT_EQ_INT(rc, AMUSE_EINVAL);
    ASSERT_CONTAINS(amuse_last_error(), "INSERT INTO f");
    am__db_finalize(st);
    /* run's changes count what the statement changed. */
    ASSERT_OK(am__db_query(db, &st, "DELETE FROM f WHERE k > ?", "i", INT64_MIN));
    ASSERT_OK(am__db_run(st, &changes));
    ASSERT_EQ_INT(changes, 1);
    am__db_finalize(st);
    ASSERT_OK(am__db_exec(db, "DROP TABLE f"));
    am__db_close(db);
}

/* A format at fault is refused before anything is bound or run, names the character or the
 * counts and the SQL, and leaves no statement behind (ASan counts the leaks). */
TEST(format_errors_are_named)
{
    struct am__db *db = open_formats();
    struct am__db_stmt *st = (struct am__db_stmt *)1;
    const char *sql = "SELECT k FROM f WHERE k = ? AND t = ?";
    ASSERT_FAILS(am__db_query(db, &st, sql, "ix", INT64_C(1), "a"), AMUSE_EINVAL,
                 "parameter 2: 'x' is not a format character (one of tTbidDn)");
    ASSERT_CONTAINS(amuse_last_error(), "SELECT k FROM f WHERE k = ");
    ASSERT_TRUE(st == NULL);
    ASSERT_FAILS(am__db_query(db, &st, sql, "\x01t", INT64_C(1), "a"), AMUSE_EINVAL,
                 "parameter 1: byte 0x01 is not a format character");
    ASSERT_TRUE(st == NULL);
    /* Too few, too many, some for a statement that has none. */
    ASSERT_FAILS(am__db_query(db, &st, sql, "i", INT64_C(1)), AMUSE_EINVAL,
                 "parameters: the statement has 2, the format \"i\" binds 1");
    ASSERT_TRUE(st == NULL);
    ASSERT_FAILS(am__db_query(db, &st, sql, "itt", INT64_C(1), "a", "b"), AMUSE_EINVAL,
                 "parameters: the statement has 2, the format \"itt\" binds 3");
    ASSERT_TRUE(st == NULL);
    ASSERT_FAILS(am__db_query(db, &st, "SELECT COUNT(*) FROM f", "n"), AMUSE_EINVAL,
                 "the statement has 0, the format \"n\" binds 1: SELECT COUNT(*) FROM f");
    ASSERT_TRUE(st == NULL);
    /* SQL the database refuses: its own message, no statement (PostgreSQL prepares on the
     * server at the first step, so there the step refuses it). */
    if (is_sqlite()) {
        ASSERT_FAILS(am__db_query(db, &st, "SELEC k FROM f WHERE k = ?", "i", INT64_C(1)),
                     AMUSE_EIO, "SELEC");
        ASSERT_TRUE(st == NULL);
    }
    /* A kept statement with a wrong format stays the caller's, and works bound right. */
    ASSERT_OK(am__db_query(db, &st, insert_f, "innnnnnnnn", INT64_C(7)));
    ASSERT_FAILS(am__db_bindf(st, "i", INT64_C(8)), AMUSE_EINVAL, "the statement has 10");
    ASSERT_FAILS(am__db_bindf(st, "innnnnnnn?", INT64_C(8)), AMUSE_EINVAL, "'?'");
    ASSERT_OK(am__db_bindf(st, "innnnnnnnn", INT64_C(8)));
    ASSERT_OK(am__db_run(st, NULL));
    am__db_finalize(st);
    int64_t n = 0;
    ASSERT_OK(am__db_query(db, &st, "SELECT COUNT(*) FROM f WHERE k = ?", "i", INT64_C(8)));
    ASSERT_OK(am__db_one_int(st, &n, NULL));
    ASSERT_EQ_INT(n, 1);
    am__db_finalize(st);
    ASSERT_OK(am__db_exec(db, "DROP TABLE f"));
    am__db_close(db);
}

/* PostgreSQL only: the password never reaches a message, a connection the server drops is made
 * again once (a statement outside a transaction just runs), a drop inside a transaction says
 * the transaction is gone, and a reconnect the server refuses is a clear error. */
static int64_t backend_pid(struct am__db *db)
{
    struct am__db_stmt *st = NULL;
    ASSERT_OK(am__db_prepare(db, &st, "SELECT pg_backend_pid()"));
    int step = am__db_step(st);
    if (step != AM__DB_ROW)
        TEST_FAIL("pg_backend_pid: %s", amuse_last_error());
    int64_t pid = am__db_int64(st, 0);
    am__db_finalize(st);
    return pid;
}

static void terminate(struct am__db *admin, int64_t pid)
{
    struct am__db_stmt *st = NULL;
    ASSERT_OK(am__db_prepare(admin, &st, "SELECT pg_terminate_backend(?)"));
    ASSERT_OK(am__db_bind_int64(st, 1, pid));
    ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
    ASSERT_EQ_INT(am__db_int64(st, 0), 1);
    am__db_finalize(st);
    /* pg_terminate_backend only signals: wait (bounded) until the backend is gone. */
    for (int i = 0; i < 1000; i++) {
        ASSERT_OK(am__db_prepare(admin, &st, "SELECT count(*) FROM pg_stat_activity WHERE pid = ?"));
        ASSERT_OK(am__db_bind_int64(st, 1, pid));
        ASSERT_EQ_INT(am__db_step(st), AM__DB_ROW);
        int64_t n = am__db_int64(st, 0);
        am__db_finalize(st);
        if (n == 0)
            return;
        usleep(10000);
    }
    TEST_FAIL("backend %lld still running", (long long)pid);
}

TEST(postgres_password_and_reconnect)
{
    if (is_sqlite()) {
        printf("     (PostgreSQL only)\n");
        return;
    }
    /* postgresql://amuse@/amuse?... -> postgresql://amuse:hunter2@/amuse?...&password=hunter3 */
    char secret[1024];
    const char *at = strchr(url(), '@');
    ASSERT_TRUE(at != NULL);
    snprintf(secret, sizeof secret, "%.*s:hunter2%s&password=hunter3", (int)(at - url()), url(),
             at);
    struct am__db *db = NULL, *admin = NULL;
    ASSERT_OK(am__db_open(&db, secret)); /* trust authentication ignores the password */
    ASSERT_TRUE(strstr(am__db_name(db), "hunter") == NULL);
    ASSERT_CONTAINS(am__db_name(db), "amuse@/amuse?host=");
    ASSERT_STR_EQ(am__db_backend(db), "postgres");
    ASSERT_FAILS(am__db_exec(db, "SELEC nothing"), AMUSE_EIO, "syntax error");
    ASSERT_TRUE(strstr(amuse_last_error(), "hunter") == NULL);
    /* The admin connection is to the maintenance database: a database cannot refuse
     * connections while the session saying so is connected to it. */
    char admin_url[1024];
    const char *db_part = strstr(url(), "/amuse?");
    ASSERT_TRUE(db_part != NULL);
    snprintf(admin_url, sizeof admin_url, "%.*s/postgres%s", (int)(db_part - url()), url(),
             db_part + 6);
    ASSERT_OK(am__db_open(&admin, admin_url));
    ASSERT_OK(am__db_exec(db, "DROP TABLE IF EXISTS t; CREATE TABLE t (id BIGINT PRIMARY KEY)"));

    terminate(admin, backend_pid(db));
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id) VALUES (1)")); /* reconnected, ran once */
    ASSERT_EQ_INT(count_rows(db), 1);

    ASSERT_OK(am__db_begin(db));
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id) VALUES (2)"));
    terminate(admin, backend_pid(db));
    ASSERT_FAILS(am__db_exec(db, "INSERT INTO t (id) VALUES (3)"), AMUSE_EIO,
                 "lost inside a transaction");
    /* What follows in the lost transaction fails too, rather than committing on its own on the
     * new connection, and so does the commit. */
    ASSERT_FAILS(am__db_exec(db, "INSERT INTO t (id) VALUES (4)"), AMUSE_EIO,
                 "lost inside a transaction");
    ASSERT_FAILS(am__db_commit(db), AMUSE_EIO, "lost inside a transaction");
    ASSERT_EQ_INT(count_rows(db), 1); /* neither 2, 3 nor 4 */
    ASSERT_OK(am__db_begin(db)); /* and the connection is usable again */
    ASSERT_OK(am__db_exec(db, "INSERT INTO t (id) VALUES (5)"));
    ASSERT_OK(am__db_commit(db));
    ASSERT_EQ_INT(count_rows(db), 2);

    /* The server refuses the reconnect: the error says the connection is gone and why. */
    ASSERT_OK(am__db_exec(admin, "ALTER DATABASE amuse ALLOW_CONNECTIONS false"));
    terminate(admin, backend_pid(db));
    ASSERT_FAILS(am__db_exec(db, "SELECT 1"), AMUSE_EIO, "reconnecting failed");
    ASSERT_TRUE(strstr(amuse_last_error(), "hunter") == NULL);
    ASSERT_OK(am__db_exec(admin, "ALTER DATABASE amuse ALLOW_CONNECTIONS true"));
    ASSERT_OK(am__db_exec(db, "SELECT 1")); /* and the next call connects again */
    ASSERT_EQ_INT(count_rows(db), 2);
    ASSERT_OK(am__db_exec(db, "DROP TABLE t"));
    am__db_close(admin);
    am__db_close(db);

    /* A server that is not there: named without the password. */
    char nowhere[1200];
    snprintf(nowhere, sizeof nowhere, "postgresql://amuse:hunter2@/amuse?host=%s/no-such&port=1",
             dir);
    ASSERT_FAILS(am__db_open(&db, nowhere), AMUSE_EIO, "cannot connect");
    ASSERT_TRUE(db == NULL);
    ASSERT_TRUE(strstr(amuse_last_error(), "hunter") == NULL);
}

TEST(bad_files_and_urls_are_named)
{
    if (!is_sqlite())
        return;
    char junk[300];
    snprintf(junk, sizeof junk, "%s/junk.db", dir);
    FILE *f = fopen(junk, "wb");
    ASSERT_TRUE(f != NULL);
    for (int i = 0; i < 4096; i++)
        fputc("not a database "[i % 15], f);
    fclose(f);
    struct am__db *db = NULL;
    ASSERT_FAILS(am__db_open(&db, junk), AMUSE_EIO, "junk.db");
    ASSERT_TRUE(db == NULL);
    ASSERT_FAILS(am__db_open(&db, ""), AMUSE_EINVAL, "no path");
    ASSERT_OK(am__db_open(&db, path));
    ASSERT_FAILS(am__db_exec(db, "SELEC nothing"), AMUSE_EIO, "SELEC nothing");
    am__db_close(db);
}

int main(void)
{
    if (!mkdtemp(dir))
        return perror("mkdtemp"), 1;
    snprintf(path, sizeof path, "%s/nested/amuse.db", dir);
    printf("database: %s\n", url());
    RUN(migrations_apply_once_and_refuse_newer);
    RUN(values_round_trip);
    RUN(rollback_leaves_nothing);
    RUN(a_held_write_lock_is_busy);
    RUN(deleted_rows_leave_no_trace_in_the_file);
    RUN(bad_files_and_urls_are_named);
    RUN(placeholders_and_portable_ddl);
    RUN(format_characters_round_trip);
    RUN(format_errors_are_named);
    RUN(postgres_password_and_reconnect);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_summary();
}
