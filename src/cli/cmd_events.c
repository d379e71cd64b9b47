/* cmd_events.c - `amuse events import|items`: load a file of user events (CSV with a header, or
 * JSON lines) or of items into one tenant's data in the server's database (the same --db as
 * `amuse serve`; the server may be running). A file goes in as one transaction: all of it, or
 * nothing when any line is wrong, and the error names file:line and the field. Reviews are
 * scored with --sentiment-model DIR when given. It does not talk to a server over HTTP (POST
 * /v1/events does that) and does not train (`amuse recommend train --db` reads what it loads). */
#define _GNU_SOURCE
#include "cli/cli.h"

#include "amuse/error.h"
#include "amuse/sentiment.h"
#include "core/internal.h"
#include "recsys/events_store.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILE_BYTES ((size_t)2 << 30)
#define MAX_ROWS 50000000
#define MAX_COLUMNS 8

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amuse events <import|items> --tenant T [options] FILE\n\n"
            "Load user data into a tenant of the server's database, in one transaction.\n\n"
            "  import FILE   events: CSV with a header naming user,item,type and optionally\n"
            "                value,timestamp,text (any order), or JSON lines\n"
            "                {\"user\", \"item\", \"type\", \"value\", \"text\", \"timestamp\"}\n"
            "  items FILE    items: CSV with a header naming id and optionally title,tags,text\n"
            "                (tags separated by '|'), or JSON lines {\"id\", \"title\", \"tags\",\n"
            "                \"text\"}; a field left out keeps what is stored\n\n"
            "options:\n"
            "  --tenant T               the tenant whose data this is (required)\n"
            "  --db PATH                the server's database (default: $AMUSE_DB, else\n"
            "                           ${XDG_DATA_HOME:-~/.local/share}/amuse/amuse.db)\n"
            "  --sentiment-model DIR    import: score reviews with this sentiment model\n"
            "  --again                  import: store the file's events even if this file was\n"
            "                           imported into the tenant before (by default that is\n"
            "                           seen from its contents, and nothing is done)\n"
            "  -h, --help               this help\n\n"
            "The rules are the server's (docs/serve.md): types play, view, like, rating (value\n"
            "0.5..5), review (text); timestamps in Unix seconds, not in the future (empty: now);\n"
            "events about undeclared items create the item without metadata. A file is .jsonl\n"
            "(or .ndjson) for JSON lines, anything else CSV. CSV fields may be quoted (\"a, b\",\n"
            "\"\" for a quote) but may not span lines.\n");
}

/* ------------------------------------------------------------------------ reading lines */

struct line_reader {
    char *text, *at, *end;
    long line;
};

/* The next line, NUL-terminated in place (CR LF accepted), or NULL at the end. */
static char *next_line(struct line_reader *lr)
{
    if (lr->at >= lr->end)
        return NULL;
    char *s = lr->at, *nl = memchr(s, '\n', (size_t)(lr->end - s));
    char *stop = nl ? nl : lr->end;
    lr->at = stop + 1;
    if (stop > s && stop[-1] == '\r')
        stop--;
    *stop = '\0';
    lr->line++;
    return s;
}

static int blank(const char *s)
{
    return s[strspn(s, " \t")] == '\0';
}

/* The header's columns mapped to the names wanted: col[k] is the field index of names[k], or -1.
 * Required names are marked with a leading '!'. */
static int csv_header(const char *path, char *line, const char *const *names, int n_names,
                      int *col, int *n_fields)
{
    char *fields[MAX_COLUMNS];
    const char *why = NULL;
    int n = am__events_csv_split(line, fields, MAX_COLUMNS, &why);
    if (n < 0)
        return cli_error("%s:1: %s", path, why);
    for (int k = 0; k < n_names; k++)
        col[k] = -1;
    for (int i = 0; i < n; i++) {
        char *f = fields[i];
        f += strspn(f, " ");
        f[strcspn(f, " ")] = '\0';
        int k;
        for (k = 0; k < n_names; k++)
            if (strcmp(f, names[k] + (names[k][0] == '!')) == 0)
                break;
        if (k == n_names) {
            fprintf(stderr, "amuse: %s:1: unknown column '%s' (the columns are", path, f);
            for (k = 0; k < n_names; k++)
                fprintf(stderr, "%s %s", k ? "," : "", names[k] + (names[k][0] == '!'));
            fprintf(stderr, ")\n");
            return 1;
        }
        if (col[k] >= 0)
            return cli_error("%s:1: column '%s' appears twice", path, f);
        col[k] = i;
    }
    for (int k = 0; k < n_names; k++)
        if (names[k][0] == '!' && col[k] < 0)
            return cli_error("%s:1: the header has no '%s' column (a header line is required)",
                             path, names[k] + 1);
    *n_fields = n;
    return 0;
}

static int is_jsonl(const char *path)
{
    size_t n = strlen(path);
    return (n > 6 && strcmp(path + n - 6, ".jsonl") == 0) ||
           (n > 7 && strcmp(path + n - 7, ".ndjson") == 0);
}

/* Rows kept while a file is read: parsed JSON documents stay alive because events point into
 * them. */
struct rows {
    long *lines; /* file line of each row */
    cJSON **docs;
    long n, cap, n_docs, cap_docs;
};

static int rows_grow(struct rows *r, size_t item_size, void **items)
{
    if (r->n < r->cap)
        return 0;
    if (r->n >= MAX_ROWS)
        return cli_error("more than %d rows in one file; split it", MAX_ROWS);
    long cap = r->cap ? r->cap * 2 : 1024;
    void *p = realloc(*items, (size_t)cap * item_size);
    long *l = realloc(r->lines, (size_t)cap * sizeof *l);
    if (p)
        *items = p;
    if (l)
        r->lines = l;
    if (!p || !l)
        return cli_error("out of memory for %ld rows", cap);
    r->cap = cap;
    return 0;
}

static int keep_doc(struct rows *r, cJSON *doc)
{
    if (r->n_docs == r->cap_docs) {
        long cap = r->cap_docs ? r->cap_docs * 2 : 1024;
        cJSON **p = realloc(r->docs, (size_t)cap * sizeof *p);
        if (!p) {
            cJSON_Delete(doc);
            return cli_error("out of memory");
        }
        r->docs = p;
        r->cap_docs = cap;
    }
    r->docs[r->n_docs++] = doc;
    return 0;
}

static void rows_release(struct rows *r)
{
    for (long i = 0; i < r->n_docs; i++)
        cJSON_Delete(r->docs[i]);
    free(r->docs);
    free(r->lines);
}

/* One JSON line as an object, kept in r; NULL after the error is printed. */
static cJSON *json_line(const char *path, long line, const char *s, struct rows *r)
{
    cJSON *doc = NULL;
    if (am__json_parse_object(s, strlen(s), 32, &doc)) {
        cli_error("%s:%ld: %s", path, line, amuse_last_error());
        return NULL;
    }
    if (keep_doc(r, doc))
        return NULL;
    return doc;
}

/* A whole-string number for a CSV field. */
static int csv_double(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return *s && !*end ? 0 : -1;
}

static int csv_int64(const char *s, int64_t *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    *v = x;
    return *s && !*end ? 0 : -1;
}

/* ------------------------------------------------------------------------------ import */

static const char *const event_columns[] = {"!user", "!item", "!type", "value", "timestamp",
                                            "text"};

static int read_events(const char *path, struct line_reader *lr, struct rows *r,
                       struct am__event **out)
{
    struct am__event *ev = NULL;
    int col[6], n_fields = 0, json = is_jsonl(path), rc = 1;
    char *s;
    if (!json) {
        while ((s = next_line(lr)) && blank(s))
            ;
        if (!s) {
            *out = NULL;
            return cli_error("%s: no header line (user,item,type,...)", path);
        }
        if (csv_header(path, s, event_columns, 6, col, &n_fields))
            return 1;
    }
    while ((s = next_line(lr))) {
        if (blank(s))
            continue;
        if (rows_grow(r, sizeof *ev, (void **)&ev))
            goto out;
        struct am__event *e = &ev[r->n];
        memset(e, 0, sizeof *e);
        r->lines[r->n] = lr->line;
        if (json) {
            cJSON *doc = json_line(path, lr->line, s, r);
            if (!doc)
                goto out;
            if (am__event_from_json(doc, e)) {
                cli_error("%s:%ld: %s", path, lr->line, amuse_last_error());
                goto out;
            }
        } else {
            char *f[MAX_COLUMNS];
            const char *why = NULL;
            int n = am__events_csv_split(s, f, n_fields, &why);
            if (n < 0) {
                cli_error("%s:%ld: %s", path, lr->line, why);
                goto out;
            }
            if (n != n_fields) {
                cli_error("%s:%ld: %d fields, the header names %d", path, lr->line, n, n_fields);
                goto out;
            }
            e->user = f[col[0]];
            e->item = f[col[1]];
            if ((e->type = am__event_type_parse(f[col[2]])) < 0) {
                cli_error("%s:%ld: type: '%.64s' is not play, view, like, rating or review",
                          path, lr->line, f[col[2]]);
                goto out;
            }
            if (col[3] >= 0 && *f[col[3]]) {
                e->has_value = 1;
                if (csv_double(f[col[3]], &e->value)) {
                    cli_error("%s:%ld: value: '%.64s' is not a number", path, lr->line,
                              f[col[3]]);
                    goto out;
                }
            }
            if (col[4] >= 0 && *f[col[4]]) {
                e->has_time = 1;
                if (csv_int64(f[col[4]], &e->time)) {
                    cli_error("%s:%ld: timestamp: '%.64s' is not an integer (Unix seconds)",
                              path, lr->line, f[col[4]]);
                    goto out;
                }
            }
            if (col[5] >= 0 && *f[col[5]]) {
                e->text = f[col[5]];
                e->text_len = strlen(e->text);
            }
        }
        r->n++;
    }
    rc = 0;
out:
    *out = ev;
    return rc;
}

/* Score the reviews among ev with the model in dir. */
static int score(const char *dir, struct am__event *ev, long n, const long *lines,
                 const char *path, long *scored)
{
    struct amuse_sentiment_model *m = NULL;
    int st = amuse_sentiment_load(dir, &m);
    if (st)
        return cli_fail(st, "cannot load the sentiment model");
    const char *text[1];
    size_t len[1];
    struct amuse_sentiment_result res[1];
    for (long i = 0; i < n; i++) {
        if (ev[i].type != AM__EVENT_REVIEW)
            continue;
        text[0] = ev[i].text;
        len[0] = ev[i].text_len;
        if ((st = amuse_sentiment_score(m, text, len, 1, res))) {
            amuse_sentiment_free(m);
            return cli_error("%s:%ld: text: %s", path, lines[i], amuse_last_error());
        }
        ev[i].has_sentiment = 1;
        ev[i].sentiment = res[0].score;
        (*scored)++;
    }
    amuse_sentiment_free(m);
    return 0;
}

/* The batch a file's events are stored under: "import_" and 16 hex digits of a BLAKE2b hash of
 * its bytes, so importing the same file again is seen (and skipped) whatever its name; with
 * --again, 16 random hex digits more, a batch of its own. */
static void import_batch(const char *text, size_t len, int again, char batch[48])
{
    unsigned char h[8], extra[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)text, len, NULL, 0);
    memcpy(batch, "import_", 8);
    sodium_bin2hex(batch + 7, 17, h, sizeof h);
    if (again) {
        randombytes_buf(extra, sizeof extra);
        batch[23] = '_';
        sodium_bin2hex(batch + 24, 17, extra, sizeof extra);
    }
}

static int run_import(const char *db, const char *tenant, const char *path,
                      const char *sentiment_dir, int again)
{
    struct line_reader lr = {0};
    struct rows r = {0};
    struct am__event *ev = NULL;
    struct am__events_store *es = NULL;
    int status = 1;
    size_t len = 0;
    int st = am__read_file(path, MAX_FILE_BYTES, &lr.text, &len);
    if (st)
        return cli_fail(st, "cannot read the events");
    lr.at = lr.text;
    lr.end = lr.text + len;
    if (read_events(path, &lr, &r, &ev))
        goto out;
    if (r.n == 0) {
        cli_error("%s: no events", path);
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    long reviews = 0, scored = 0;
    for (long i = 0; i < r.n; i++) {
        if (am__event_check(&ev[i], now)) {
            cli_error("%s:%ld: %s", path, r.lines[i], amuse_last_error());
            goto out;
        }
        reviews += ev[i].type == AM__EVENT_REVIEW;
    }
    if (sentiment_dir && reviews && score(sentiment_dir, ev, r.n, r.lines, path, &scored))
        goto out;
    if (r.n > (long)INT32_MAX) {
        cli_error("%s: too many events for one transaction", path);
        goto out;
    }
    if ((st = am__events_open(&es, db))) {
        cli_fail(st, "cannot open the database");
        goto out;
    }
    char batch[48];
    import_batch(lr.text, len, again, batch);
    int64_t stored = 0;
    if ((st = am__events_batch_count(es, tenant, batch, &stored))) {
        cli_fail(st, "cannot read the database");
        goto out;
    }
    if (stored > 0) {
        printf("%s: already imported into tenant %s as batch %s (%lld events stored); nothing "
               "done (--again imports it once more)\n",
               path, tenant, batch, (long long)stored);
        status = 0;
        goto out;
    }
    int64_t created = 0;
    if ((st = am__events_add(es, tenant, ev, (int)r.n, batch, now, NULL, NULL, &created))) {
        cli_fail(st, "cannot store the events (nothing was stored)");
        goto out;
    }
    printf("%s: %ld events (%ld reviews, %ld scored) for tenant %s, batch %s; %lld new items "
           "without metadata\n",
           path, r.n, reviews, scored, tenant, batch, (long long)created);
    status = 0;
out:
    am__events_close(es);
    free(ev);
    rows_release(&r);
    free(lr.text);
    return status;
}

/* ------------------------------------------------------------------------------- items */

static const char *const item_columns[] = {"!id", "title", "tags", "text"};

static int run_items(const char *db, const char *tenant, const char *path)
{
    struct line_reader lr = {0};
    struct rows r = {0};
    struct am__item *items = NULL;
    struct am__events_store *es = NULL;
    char **tag_bufs = NULL;
    int status = 1, json = is_jsonl(path), col[4], n_fields = 0;
    size_t len = 0;
    int st = am__read_file(path, MAX_FILE_BYTES, &lr.text, &len);
    if (st)
        return cli_fail(st, "cannot read the items");
    lr.at = lr.text;
    lr.end = lr.text + len;
    char *s;
    if (!json) {
        while ((s = next_line(&lr)) && blank(s))
            ;
        if (!s) {
            cli_error("%s: no header line (id,title,tags,text)", path);
            goto out;
        }
        if (csv_header(path, s, item_columns, 4, col, &n_fields))
            goto out;
    }
    while ((s = next_line(&lr))) {
        if (blank(s))
            continue;
        long before = r.cap;
        if (rows_grow(&r, sizeof *items, (void **)&items))
            goto out;
        if (r.cap != before) {
            char **p = realloc(tag_bufs, (size_t)r.cap * sizeof *p);
            if (!p) {
                cli_error("out of memory");
                goto out;
            }
            memset(p + before, 0, (size_t)(r.cap - before) * sizeof *p);
            tag_bufs = p;
        }
        struct am__item *it = &items[r.n];
        memset(it, 0, sizeof *it);
        r.lines[r.n] = lr.line;
        if (json) {
            cJSON *doc = json_line(path, lr.line, s, &r);
            if (!doc)
                goto out;
            if (!(tag_bufs[r.n] = malloc(AM__EVENTS_MAX_META + 1))) {
                cli_error("out of memory");
                goto out;
            }
            if (am__item_from_json(doc, it, tag_bufs[r.n])) {
                cli_error("%s:%ld: %s", path, lr.line, amuse_last_error());
                goto out;
            }
        } else {
            char *f[MAX_COLUMNS];
            const char *why = NULL;
            int n = am__events_csv_split(s, f, n_fields, &why);
            if (n < 0 || n != n_fields) {
                if (n >= 0)
                    cli_error("%s:%ld: %d fields, the header names %d", path, lr.line, n,
                              n_fields);
                else
                    cli_error("%s:%ld: %s", path, lr.line, why);
                goto out;
            }
            it->id = f[col[0]];
            it->title = col[1] >= 0 && *f[col[1]] ? f[col[1]] : NULL;
            it->tags = col[2] >= 0 && *f[col[2]] ? f[col[2]] : NULL;
            it->text = col[3] >= 0 && *f[col[3]] ? f[col[3]] : NULL;
            if (am__item_check(it)) {
                cli_error("%s:%ld: %s", path, lr.line, amuse_last_error());
                goto out;
            }
        }
        r.n++;
    }
    if (r.n == 0) {
        cli_error("%s: no items", path);
        goto out;
    }
    if ((st = am__events_open(&es, db))) {
        cli_fail(st, "cannot open the database");
        goto out;
    }
    int64_t created = 0, updated = 0;
    if ((st = am__events_put_items(es, tenant, items, (int)r.n, (int64_t)time(NULL), &created,
                                   &updated))) {
        cli_fail(st, "cannot store the items (nothing was stored)");
        goto out;
    }
    printf("%s: %ld items for tenant %s: %lld new, %lld updated\n", path, r.n, tenant,
           (long long)created, (long long)updated);
    status = 0;
out:
    am__events_close(es);
    for (long i = 0; tag_bufs && i < r.cap; i++)
        free(tag_bufs[i]);
    free(tag_bufs);
    free(items);
    rows_release(&r);
    free(lr.text);
    return status;
}

/* ------------------------------------------------------------------------------ dispatch */

int cmd_events(int argc, char **argv)
{
    if (argc < 2 || cli_wants_help(argc, argv)) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1], *tenant = NULL, *file = NULL, *sentiment = NULL;
    int again = 0;
    char db[4096];
    cli_default_database(db, sizeof db);
    if (strcmp(sub, "import") != 0 && strcmp(sub, "items") != 0) {
        cli_error("events: unknown subcommand '%s' (import, items)", sub);
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--again") == 0 && strcmp(sub, "import") == 0) {
            again = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (file)
                return cli_error("one file at a time ('%s' and '%s')", file, a), 2;
            file = a;
            continue;
        }
        if (i + 1 >= argc)
            return cli_error("%s: missing value", a), 2;
        const char *v = argv[++i];
        if (strcmp(a, "--tenant") == 0)
            tenant = v;
        else if (strcmp(a, "--db") == 0)
            snprintf(db, sizeof db, "%s", v);
        else if (strcmp(a, "--sentiment-model") == 0 && strcmp(sub, "import") == 0)
            sentiment = v;
        else
            return cli_error("unknown option '%s' (amuse events --help)", a), 2;
    }
    if (!tenant || !file)
        return cli_error("events %s needs --tenant T and a FILE (amuse events --help)", sub), 2;
    size_t tl = strlen(tenant);
    if (tl == 0 || tl > 64 || strspn(tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789._-") != tl)
        return cli_error("--tenant: '%s' is not a tenant name (1 to 64 of A-Z a-z 0-9 . _ -)",
                         tenant),
               2;
    return strcmp(sub, "import") == 0 ? run_import(db, tenant, file, sentiment, again)
                                      : run_items(db, tenant, file);
}
