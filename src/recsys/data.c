/* data.c - recommender events: the (user, item, value, time) list with its id maps, the events
 * file reader and writer, per-user random and time splits, and the CSR matrices built from them.
 * It does not train or score (train.c, recommend.c) and does not store events for a server. */
#define _POSIX_C_SOURCE 200809L
#include "recsys/recsys_internal.h"

#include "amuse/rng.h"
#include "amuse/word2vec.h"
#include "core/internal.h"
#include "text/word2vec_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void amuse_rec_read_options_default(struct amuse_rec_read_options *o)
{
    o->min_value = -1e9;
    o->max_value = 1e9;
    o->value_missing_ok = 0;
}

int amuse_rec_data_new(struct amuse_rec_data **out)
{
    *out = NULL;
    struct amuse_rec_data *d = calloc(1, sizeof *d);
    if (!d)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = amuse_vocab_new(&d->users);
    if (!rc)
        rc = amuse_vocab_new(&d->items);
    if (rc) {
        amuse_rec_data_free(d);
        return rc;
    }
    *out = d;
    return AMUSE_OK;
}

void amuse_rec_data_free(struct amuse_rec_data *d)
{
    if (!d)
        return;
    amuse_vocab_free(d->users);
    amuse_vocab_free(d->items);
    free(d->user);
    free(d->item);
    free(d->value);
    free(d->time);
    free(d);
}

static int reserve(struct amuse_rec_data *d, int64_t need)
{
    if (need <= d->capacity)
        return AMUSE_OK;
    if (need > AMUSE_REC_MAX_EVENTS)
        return am__fail(AMUSE_ETOOBIG, "more than %lld events", (long long)AMUSE_REC_MAX_EVENTS);
    int64_t cap = d->capacity ? d->capacity * 2 : 1024;
    if (cap < need)
        cap = need;
    int32_t *u = realloc(d->user, (size_t)cap * sizeof *u);
    if (u)
        d->user = u;
    int32_t *i = realloc(d->item, (size_t)cap * sizeof *i);
    if (i)
        d->item = i;
    float *v = realloc(d->value, (size_t)cap * sizeof *v);
    if (v)
        d->value = v;
    int64_t *t = realloc(d->time, (size_t)cap * sizeof *t);
    if (t)
        d->time = t;
    if (!u || !i || !v || !t)
        return am__fail(AMUSE_ENOMEM, "out of memory for %lld events", (long long)cap);
    d->capacity = cap;
    return AMUSE_OK;
}

static int add_index(struct amuse_rec_data *d, int32_t u, int32_t i, float value, int64_t time)
{
    int rc = reserve(d, d->n + 1);
    if (rc)
        return rc;
    d->user[d->n] = u;
    d->item[d->n] = i;
    d->value[d->n] = value;
    d->time[d->n] = time;
    d->n++;
    return AMUSE_OK;
}

static int add_id(struct amuse_vocab *v, const char *id, size_t len, long long cap,
                  const char *what, int32_t *index)
{
    int64_t k = am__vocab_find_len(v, id, len);
    if (k < 0) {
        if (amuse_vocab_size(v) >= cap)
            return am__fail(AMUSE_ETOOBIG, "more than %lld %ss", cap, what);
        int rc = amuse_vocab_add(v, id, 1, &k); /* checks UTF-8 and white space */
        if (rc)
            return am__fail_prefix(rc, "%s id", what);
    } else {
        am__vocab_add_len(v, id, len, 1, NULL);
    }
    *index = (int32_t)k;
    return AMUSE_OK;
}

int amuse_rec_data_add(struct amuse_rec_data *d, const char *user, const char *item, float value,
                       int64_t time)
{
    if (!d || !user || !item)
        return am__fail(AMUSE_EINVAL, "rec_data_add: NULL argument");
    if (!isfinite(value))
        return am__fail(AMUSE_EINVAL, "value is not a finite number");
    int32_t u = -1, i = -1;
    int rc = add_id(d->users, user, strlen(user), AMUSE_REC_MAX_USERS, "user", &u);
    if (!rc)
        rc = add_id(d->items, item, strlen(item), AMUSE_REC_MAX_ITEMS, "item", &i);
    if (!rc)
        rc = add_index(d, u, i, value, time);
    return rc;
}

/* ------------------------------------------------------------------------------- reading */

int am__rec_split_fields(char *s, char *end, char sep, char **fields, int max)
{
    if (end > s && end[-1] == '\r')
        end--;
    *end = '\0';
    int n = 0;
    while (n < max) {
        fields[n++] = s;
        char *p = memchr(s, sep, (size_t)(end - s));
        if (!p)
            break;
        *p = '\0';
        s = p + 1;
    }
    return n;
}

static int parse_double(const char *s, double *out)
{
    if (!*s)
        return -1;
    char *e;
    errno = 0;
    *out = strtod(s, &e);
    while (*e == ' ')
        e++;
    return (*e || errno == ERANGE || !isfinite(*out)) ? -1 : 0;
}

static int parse_time(const char *s, int64_t *out)
{
    if (!*s) {
        *out = 0;
        return 0;
    }
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (*e == '.') /* "1260759144.0" from some exports */
        for (e++; *e >= '0' && *e <= '9'; e++)
            ;
    while (*e == ' ')
        e++;
    if (*e || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

int amuse_rec_data_read(const char *path, const struct amuse_rec_read_options *o,
                        struct amuse_rec_data **out)
{
    *out = NULL;
    struct amuse_rec_read_options def;
    if (!o) {
        amuse_rec_read_options_default(&def);
        o = &def;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = am__read_file(path, AM__REC_MAX_FILE, &text, &len);
    if (rc)
        return rc;
    struct amuse_rec_data *d = NULL;
    if ((rc = amuse_rec_data_new(&d)))
        goto out;
    char sep = 0;
    int64_t line = 0;
    int data_lines = 0;
    for (char *s = text, *end; s < text + len; s = end + 1) {
        line++;
        end = memchr(s, '\n', (size_t)(text + len - s));
        if (!end)
            end = text + len;
        if (end - s > AMUSE_REC_MAX_LINE) {
            rc = am__fail(AMUSE_ETOOBIG, "%s:%lld: line longer than %d bytes", path,
                          (long long)line, AMUSE_REC_MAX_LINE);
            goto out;
        }
        if (s == end || *s == '#' || (end - s == 1 && *s == '\r'))
            continue;
        if (!sep)
            sep = memchr(s, '\t', (size_t)(end - s)) ? '\t' : ',';
        char *f[5] = {0};
        int nf = am__rec_split_fields(s, end, sep, f, 5);
        data_lines++;
        double value = 1;
        int64_t time = 0;
        if (nf < 2 || (nf < 3 && !o->value_missing_ok)) {
            const char *sn = sep == '\t' ? "<TAB>" : ",";
            rc = am__fail(AMUSE_EFORMAT, "%s:%lld: expected user%sitem%svalue[%stimestamp], got "
                          "%d field%s", path, (long long)line, sn, sn, sn, nf, nf == 1 ? "" : "s");
            goto out;
        }
        if (nf > 4) {
            rc = am__fail(AMUSE_EFORMAT, "%s:%lld: more than 4 fields", path, (long long)line);
            goto out;
        }
        if (nf >= 3 && parse_double(f[2], &value)) {
            if (data_lines == 1)
                continue; /* a header line */
            rc = am__fail(AMUSE_EFORMAT, "%s:%lld: value '%.40s' is not a number", path,
                          (long long)line, f[2]);
            goto out;
        }
        if (value < o->min_value || value > o->max_value) {
            rc = am__fail(AMUSE_EINVAL, "%s:%lld: value %g is outside [%g, %g]", path,
                          (long long)line, value, o->min_value, o->max_value);
            goto out;
        }
        if (nf == 4 && parse_time(f[3], &time)) {
            rc = am__fail(AMUSE_EFORMAT, "%s:%lld: timestamp '%.40s' is not an integer", path,
                          (long long)line, f[3]);
            goto out;
        }
        if ((rc = amuse_rec_data_add(d, f[0], f[1], (float)value, time))) {
            rc = am__fail_prefix(rc, "%s:%lld", path, (long long)line);
            goto out;
        }
    }
    if (d->n == 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: no events", path);
        goto out;
    }
    *out = d;
    d = NULL;
out:
    amuse_rec_data_free(d);
    free(text);
    return rc;
}

int amuse_rec_data_write(const struct amuse_rec_data *d, const char *path)
{
    struct am__atomic_file af;
    int rc = am__atomic_open(&af, path);
    if (rc)
        return rc;
    for (int64_t e = 0; e < d->n; e++)
        fprintf(af.f, "%s\t%s\t%.9g\t%" PRId64 "\n", amuse_vocab_word(d->users, d->user[e]),
                amuse_vocab_word(d->items, d->item[e]), (double)d->value[e], d->time[e]);
    rc = am__atomic_commit(&af);
    if (rc)
        am__atomic_abort(&af);
    return rc;
}

/* --------------------------------------------------------------------------------- splits */

static int64_t *events_by_user(const struct amuse_rec_data *d, int64_t n_users, int64_t **start)
{
    int64_t *st = calloc((size_t)n_users + 1, sizeof *st);
    int64_t *order = malloc(((size_t)d->n + 1) * sizeof *order);
    if (!st || !order) {
        free(st);
        free(order);
        return NULL;
    }
    for (int64_t e = 0; e < d->n; e++)
        st[d->user[e] + 1]++;
    for (int64_t u = 0; u < n_users; u++)
        st[u + 1] += st[u];
    int64_t *fill = malloc(((size_t)n_users + 1) * sizeof *fill);
    if (!fill) {
        free(st);
        free(order);
        return NULL;
    }
    memcpy(fill, st, (size_t)n_users * sizeof *fill);
    for (int64_t e = 0; e < d->n; e++)
        order[fill[d->user[e]]++] = e;
    free(fill);
    *start = st;
    return order;
}

struct timed_event {
    int64_t time, event;
};

static int by_time(const void *pa, const void *pb)
{
    const struct timed_event *a = pa, *b = pb;
    if (a->time != b->time)
        return a->time < b->time ? -1 : 1;
    return (a->event > b->event) - (a->event < b->event);
}

static int copy_maps(const struct amuse_rec_data *d, struct amuse_rec_data **out)
{
    *out = NULL;
    struct amuse_rec_data *c = calloc(1, sizeof *c);
    if (!c)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = am__vocab_clone(d->users, &c->users);
    if (!rc)
        rc = am__vocab_clone(d->items, &c->items);
    if (rc) {
        amuse_rec_data_free(c);
        return rc;
    }
    *out = c;
    return AMUSE_OK;
}

int amuse_rec_split(const struct amuse_rec_data *d, int kind, double fraction, uint64_t seed,
                    struct amuse_rec_data **train, struct amuse_rec_data **test)
{
    *train = *test = NULL;
    if (!(fraction > 0 && fraction < 1))
        return am__fail(AMUSE_EINVAL, "split fraction %g: must be in (0, 1)", fraction);
    if (kind != AMUSE_REC_SPLIT_RANDOM && kind != AMUSE_REC_SPLIT_TIME)
        return am__fail(AMUSE_EINVAL, "split kind %d: must be random or time", kind);
    int64_t n_users = amuse_vocab_size(d->users), *start = NULL;
    struct amuse_rec_data *tr = NULL, *te = NULL;
    int64_t *order = events_by_user(d, n_users, &start);
    if (!order)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = copy_maps(d, &tr);
    if (!rc)
        rc = copy_maps(d, &te);
    struct amuse_rec_data *parts[2] = {tr, te};
    for (int p = 0; p < 2 && !rc; p++)
        rc = reserve(parts[p], d->n / 2 + 1);
    struct amuse_rng rng;
    amuse_rng_seed(&rng, seed);
    struct timed_event *te_buf = NULL;
    if (!rc && kind == AMUSE_REC_SPLIT_TIME &&
        !(te_buf = malloc(((size_t)d->n + 1) * sizeof *te_buf)))
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
    for (int64_t u = 0; u < n_users && !rc; u++) {
        int64_t *ev = order + start[u], n = start[u + 1] - start[u];
        if (kind == AMUSE_REC_SPLIT_RANDOM) {
            amuse_rng_shuffle(&rng, ev, n);
        } else { /* by time, then file order */
            for (int64_t j = 0; j < n; j++)
                te_buf[j] = (struct timed_event){d->time[ev[j]], ev[j]};
            qsort(te_buf, (size_t)n, sizeof *te_buf, by_time);
            for (int64_t j = 0; j < n; j++)
                ev[j] = te_buf[j].event;
        }
        int64_t n_train = (int64_t)floor(fraction * (double)n + 0.5);
        if (n_train < 1)
            n_train = 1;
        for (int64_t j = 0; j < n && !rc; j++) {
            int64_t e = ev[j];
            rc = add_index(j < n_train ? tr : te, d->user[e], d->item[e], d->value[e], d->time[e]);
        }
    }
    free(te_buf);
    free(order);
    free(start);
    if (rc) {
        amuse_rec_data_free(tr);
        amuse_rec_data_free(te);
        return rc;
    }
    *train = tr;
    *test = te;
    return AMUSE_OK;
}

int amuse_rec_data_reindex(const struct amuse_rec_data *d, const struct amuse_rec_data *ref,
                           struct amuse_rec_data **out, int64_t *dropped)
{
    *out = NULL;
    if (dropped)
        *dropped = 0;
    struct amuse_rec_data *c = NULL;
    int rc = ref ? copy_maps(ref, &c) : amuse_rec_data_new(&c);
    if (!rc)
        rc = reserve(c, d->n + 1);
    for (int64_t e = 0; e < d->n && !rc; e++) {
        const char *u = amuse_vocab_word(d->users, d->user[e]);
        const char *i = amuse_vocab_word(d->items, d->item[e]);
        if (!ref) {
            rc = amuse_rec_data_add(c, u, i, d->value[e], d->time[e]);
            continue;
        }
        int64_t ru = amuse_vocab_find(c->users, u), ri = amuse_vocab_find(c->items, i);
        if (ru < 0 || ri < 0) {
            if (dropped)
                (*dropped)++;
            continue;
        }
        rc = add_index(c, (int32_t)ru, (int32_t)ri, d->value[e], d->time[e]);
    }
    if (rc) {
        amuse_rec_data_free(c);
        return rc;
    }
    *out = c;
    return AMUSE_OK;
}

/* ------------------------------------------------------------------------------------ CSR */

void amuse_rec_csr_free(struct amuse_rec_csr *m)
{
    if (!m)
        return;
    free(m->indptr);
    free(m->indices);
    free(m->values);
    free(m->times);
    free(m);
}

int amuse_rec_csr_build(const struct amuse_rec_data *d, int transpose, struct amuse_rec_csr **out)
{
    *out = NULL;
    int64_t nu = amuse_vocab_size(d->users), ni = amuse_vocab_size(d->items);
    const int32_t *row = transpose ? d->item : d->user, *col = transpose ? d->user : d->item;
    struct amuse_rec_csr *m = calloc(1, sizeof *m);
    if (!m)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    m->rows = transpose ? ni : nu;
    m->cols = transpose ? nu : ni;
    size_t cap = (size_t)d->n + 1;
    m->indptr = calloc((size_t)m->rows + 1, sizeof *m->indptr);
    m->indices = malloc(cap * sizeof *m->indices);
    m->values = malloc(cap * sizeof *m->values);
    m->times = malloc(cap * sizeof *m->times);
    int64_t *fill = malloc(((size_t)m->rows + 1) * sizeof *fill);
    if (!m->indptr || !m->indices || !m->values || !m->times || !fill) {
        free(fill);
        amuse_rec_csr_free(m);
        return am__fail(AMUSE_ENOMEM, "out of memory for a %lld x %lld matrix",
                        (long long)m->rows, (long long)m->cols);
    }
    /* Counting sort by column first, then a stable pass into rows: rows come out sorted. */
    int64_t *col_start = calloc((size_t)m->cols + 1, sizeof *col_start);
    int64_t *by_col = malloc(cap * sizeof *by_col);
    if (!col_start || !by_col) {
        free(col_start);
        free(by_col);
        free(fill);
        amuse_rec_csr_free(m);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    for (int64_t e = 0; e < d->n; e++) {
        m->indptr[row[e] + 1]++;
        col_start[col[e] + 1]++;
    }
    for (int64_t r = 0; r < m->rows; r++)
        m->indptr[r + 1] += m->indptr[r];
    for (int64_t c = 0; c < m->cols; c++)
        col_start[c + 1] += col_start[c];
    for (int64_t e = 0; e < d->n; e++)
        by_col[col_start[col[e]]++] = e;
    free(col_start);
    memcpy(fill, m->indptr, (size_t)m->rows * sizeof *fill);
    for (int64_t k = 0; k < d->n; k++) {
        int64_t e = by_col[k], at = fill[row[e]]++;
        m->indices[at] = col[e];
        m->values[at] = d->value[e];
        m->times[at] = d->time[e];
    }
    free(by_col);
    free(fill);
    /* Merge repeated (row, column) pairs in place: values add up, the latest time stays. */
    int64_t w = 0;
    for (int64_t r = 0; r < m->rows; r++) {
        int64_t lo = m->indptr[r], hi = m->indptr[r + 1];
        int64_t row_start = w;
        for (int64_t a = lo; a < hi; a++) {
            if (w > row_start && m->indices[w - 1] == m->indices[a]) {
                m->values[w - 1] += m->values[a];
                if (m->times[a] > m->times[w - 1])
                    m->times[w - 1] = m->times[a];
                continue;
            }
            m->indices[w] = m->indices[a];
            m->values[w] = m->values[a];
            m->times[w] = m->times[a];
            w++;
        }
        m->indptr[r] = row_start;
    }
    m->indptr[m->rows] = w;
    m->nnz = w;
    *out = m;
    return AMUSE_OK;
}
