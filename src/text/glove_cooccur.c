/* glove_cooccur.c - GloVe's cooccur stage: weighted word-word co-occurrence counts in bounded
 * memory, on several threads.
 *
 * The corpus is read in blocks of word ids (the last window_size ids of a block stay as the left
 * context of the next). Each thread takes a slice of a block. A pair whose rank product is small
 * (frequent words) is added to the thread's table in memory; the others are appended to the
 * thread's buffer, which, when full, is radix-sorted by (word1, word2), summed and spilled to a
 * temporary file as a sorted run. At the end the tables are summed and merged with the runs and
 * the last buffers through a heap. With symmetric context a pair is counted once under
 * (min, max), which halves the work, and delivered in both orders.
 *
 * Not here: tokenising (utf8.c), the vocabulary (glove_vocab.c), shuffling and training. */
#define _POSIX_C_SOURCE 200809L
#include "text/glove_internal.h"
#include "text/word2vec_internal.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_TOKENS    (1 << 20)
#define MAX_FANIN       64          /* runs merged at once; more are first merged into one */
#define MIN_RUN_RECORDS (1 << 16)   /* the smallest sorted run per thread */
#define DENSE_MAX_BYTES (64u << 20) /* per thread: larger tables stop fitting in the caches */
#define RADIX_BITS      11
#define READ_BATCH      4096
#define SINK_BATCH      8192

struct pair {
    uint64_t key; /* (word1 << key_bits) | word2, 1-based */
    double value;
};

struct counter {
    const struct amuse_glove_options *o;
    int64_t V;
    int key_bits, sym, window, threads;
    double inv_distance[AM__GLOVE_MAX_WINDOW + 1];
    /* the table of frequent pairs: cell (a, b) = table[off[a] + b] when b <= last[a] */
    int32_t *last;
    int64_t *off;
    int64_t cells;
    double **table; /* one per thread */
    /* sorted runs */
    int64_t cap;
    struct pair **buf, **tmp;
    int64_t *len;
    FILE **runs;
    int n_runs, runs_cap;
    struct pair *batches; /* read buffers of the runs being merged */
    int64_t spilled;
};

/* ----------------------------------------------------------------------------- sorted runs */

static void radix_sort(struct pair *a, struct pair *tmp, int64_t n, int bits)
{
    enum { B = 1 << RADIX_BITS, passes_max = (64 + RADIX_BITS - 1) / RADIX_BITS };
    int passes = (bits + RADIX_BITS - 1) / RADIX_BITS;
    int64_t count[passes_max][B];
    memset(count, 0, sizeof count);
    for (int64_t i = 0; i < n; i++)
        for (int p = 0; p < passes; p++)
            count[p][(a[i].key >> (p * RADIX_BITS)) & (B - 1)]++;
    struct pair *src = a, *dst = tmp;
    for (int p = 0; p < passes; p++) {
        int64_t sum = 0;
        for (int d = 0; d < B; d++) {
            int64_t c = count[p][d];
            count[p][d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++)
            dst[count[p][(src[i].key >> (p * RADIX_BITS)) & (B - 1)]++] = src[i];
        struct pair *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof *a);
}

/* Sort and sum equal keys in place; returns the new length. */
static int64_t sort_and_sum(struct pair *a, struct pair *tmp, int64_t n, int bits)
{
    if (n == 0)
        return 0;
    radix_sort(a, tmp, n, bits);
    int64_t w = 0;
    for (int64_t i = 1; i < n; i++) {
        if (a[i].key == a[w].key)
            a[w].value += a[i].value;
        else
            a[++w] = a[i];
    }
    return w + 1;
}

static int write_pairs(FILE *f, const struct pair *p, int64_t n)
{
    if (n && fwrite(p, sizeof *p, (size_t)n, f) != (size_t)n)
        return am__fail(AMUSE_EIO, "temporary file: write error: %s", strerror(errno));
    return AMUSE_OK;
}

static int add_run(struct counter *c, FILE *f)
{
    if (c->n_runs == c->runs_cap) {
        int cap = c->runs_cap ? c->runs_cap * 2 : 16;
        FILE **r = realloc(c->runs, (size_t)cap * sizeof *r);
        if (!r)
            return am__fail(AMUSE_ENOMEM, "cooccur: out of memory");
        c->runs = r;
        c->runs_cap = cap;
    }
    c->runs[c->n_runs++] = f;
    c->spilled++;
    return AMUSE_OK;
}

/* Sort thread t's buffer, sum it and write it to a new temporary file. */
static int spill(struct counter *c, int t)
{
    FILE *f = NULL;
    int64_t n = sort_and_sum(c->buf[t], c->tmp[t], c->len[t], 2 * c->key_bits);
    c->len[t] = 0;
    int rc = am__glove_temp_file(c->o->temp_prefix, &f);
    if (rc == AMUSE_OK)
        rc = write_pairs(f, c->buf[t], n);
    if (rc == AMUSE_OK) {
#pragma omp critical
        rc = add_run(c, f);
    }
    if (rc != AMUSE_OK && f)
        fclose(f);
    return rc;
}

/* ------------------------------------------------------------------------------------ merge */

struct merge_source {
    int kind; /* 0 file, 1 memory, 2 table */
    FILE *f;
    const struct pair *mem;
    int64_t len, pos;
    struct pair *batch;
    int64_t row, col; /* table position */
    uint64_t key;
    double value;
};

/* Advance s; returns 1 with s->key/value set, 0 at the end, or a negative status. */
static int source_next(const struct counter *c, struct merge_source *s)
{
    if (s->kind == 2) {
        const double *table = c->table[0];
        for (;;) {
            if (s->col > c->last[s->row]) {
                if (++s->row > c->V || c->last[s->row] == 0)
                    return 0;
                s->col = c->sym ? s->row : 1;
                continue;
            }
            double v = table[c->off[s->row] + s->col];
            s->col++;
            if (v != 0) {
                s->key = ((uint64_t)s->row << c->key_bits) | (uint64_t)(s->col - 1);
                s->value = v;
                return 1;
            }
        }
    }
    if (s->pos == s->len) {
        if (s->kind == 1)
            return 0;
        size_t got = fread(s->batch, sizeof *s->batch, READ_BATCH, s->f);
        if (got == 0)
            return ferror(s->f) ? am__fail(AMUSE_EIO, "temporary file: read error") : 0;
        s->mem = s->batch;
        s->len = (int64_t)got;
        s->pos = 0;
    }
    s->key = s->mem[s->pos].key;
    s->value = s->mem[s->pos].value;
    s->pos++;
    return 1;
}

typedef int (*emit_fn)(void *ctx, uint64_t key, double value);

static void heap_down(struct merge_source **h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && h[l]->key < h[m]->key)
            m = l;
        if (l + 1 < n && h[l + 1]->key < h[m]->key)
            m = l + 1;
        if (m == i)
            return;
        struct merge_source *t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Merge sources (each sorted by key) into emit, summing equal keys. */
static int merge(const struct counter *c, struct merge_source *src, int n, emit_fn emit, void *ctx)
{
    int rc = AMUSE_OK, live = 0;
    struct merge_source **heap = malloc((size_t)(n ? n : 1) * sizeof *heap);
    if (!heap)
        return am__fail(AMUSE_ENOMEM, "cooccur: out of memory merging");
    for (int i = 0; i < n; i++) {
        if (src[i].kind == 0 && fseek(src[i].f, 0, SEEK_SET) != 0) {
            rc = am__fail(AMUSE_EIO, "temporary file: %s", strerror(errno));
            goto out;
        }
        int r = source_next(c, &src[i]);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (r)
            heap[live++] = &src[i];
    }
    for (int i = live / 2 - 1; i >= 0; i--)
        heap_down(heap, live, i);
    int have = 0;
    uint64_t key = 0;
    double value = 0;
    while (live > 0) {
        struct merge_source *s = heap[0];
        if (have && s->key == key) {
            value += s->value;
        } else {
            if (have && (rc = emit(ctx, key, value)) != AMUSE_OK)
                goto out;
            key = s->key;
            value = s->value;
            have = 1;
        }
        int r = source_next(c, s);
        if (r < 0) {
            rc = r;
            goto out;
        }
        if (!r)
            heap[0] = heap[--live];
        heap_down(heap, live, 0);
    }
    if (have)
        rc = emit(ctx, key, value);
out:
    free(heap);
    return rc;
}

struct run_writer {
    FILE *f;
    struct pair buf[READ_BATCH];
    int n;
};

static int emit_to_run(void *ctx, uint64_t key, double value)
{
    struct run_writer *w = ctx;
    w->buf[w->n++] = (struct pair){key, value};
    if (w->n == READ_BATCH) {
        w->n = 0;
        return write_pairs(w->f, w->buf, READ_BATCH);
    }
    return AMUSE_OK;
}

static int open_sources(struct counter *c, struct merge_source **out, int extra)
{
    struct merge_source *s = calloc((size_t)(c->n_runs + extra), sizeof *s);
    struct pair *batches =
        malloc((size_t)(c->n_runs ? c->n_runs : 1) * READ_BATCH * sizeof *batches);
    if (!s || !batches) {
        free(s);
        free(batches);
        return am__fail(AMUSE_ENOMEM, "cooccur: out of memory merging %d runs", c->n_runs);
    }
    for (int i = 0; i < c->n_runs; i++) {
        s[i].kind = 0;
        s[i].f = c->runs[i];
        s[i].batch = batches + (size_t)i * READ_BATCH;
    }
    c->batches = batches;
    *out = s;
    return AMUSE_OK;
}

static void close_sources(struct counter *c, struct merge_source *s)
{
    free(c->batches);
    c->batches = NULL;
    free(s);
}

/* Replace all runs by one. */
static int merge_runs(struct counter *c)
{
    struct merge_source *s = NULL;
    struct run_writer *w = malloc(sizeof *w);
    int rc = w ? open_sources(c, &s, 0) : am__fail(AMUSE_ENOMEM, "cooccur: out of memory");
    if (rc == AMUSE_OK)
        rc = am__glove_temp_file(c->o->temp_prefix, &w->f);
    if (rc == AMUSE_OK) {
        w->n = 0;
        rc = merge(c, s, c->n_runs, emit_to_run, w);
        if (rc == AMUSE_OK)
            rc = write_pairs(w->f, w->buf, w->n);
        if (rc == AMUSE_OK) {
            for (int i = 0; i < c->n_runs; i++)
                fclose(c->runs[i]);
            c->runs[0] = w->f;
            c->n_runs = 1;
        } else {
            fclose(w->f);
        }
    }
    close_sources(c, s);
    free(w);
    return rc;
}

/* --------------------------------------------------------------------------------- counting */

/* Count the pairs whose right word is at positions [from, to) of ids. */
static int count_slice(struct counter *c, int t, const int32_t *ids, int64_t from, int64_t to)
{
    double *table = c->table ? c->table[t] : NULL;
    const int32_t *last = c->last;
    const int64_t *off = c->off;
    const int window = c->window, sym = c->sym, kb = c->key_bits;
    struct pair *buf = c->buf[t];
    int64_t len = c->len[t];
    for (int64_t i = from; i < to; i++) {
        if (ids[i] < 0)
            continue;
        if (len + window > c->cap) {
            c->len[t] = len;
            int rc = spill(c, t);
            if (rc != AMUSE_OK)
                return rc;
            len = 0;
        }
        uint32_t target = (uint32_t)ids[i] + 1;
        for (int d = 1; d <= window && i - d >= 0; d++) {
            int32_t ctx = ids[i - d];
            if (ctx < 0)
                break;
            uint32_t a = (uint32_t)ctx + 1, b = target;
            if (sym && a > b) {
                a = b;
                b = (uint32_t)ctx + 1;
            }
            double w = c->inv_distance[d];
            if ((int32_t)b <= last[a])
                table[off[a] + b] += w;
            else
                buf[len++] = (struct pair){((uint64_t)a << kb) | b, w};
        }
    }
    c->len[t] = len;
    return AMUSE_OK;
}

static int count_block(struct counter *c, const int32_t *ids, int64_t pre, int64_t n)
{
    int failed = AMUSE_OK;
#pragma omp parallel num_threads(c->threads)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t from = pre + n * t / T, to = pre + n * (t + 1) / T;
        int rc = count_slice(c, t, ids, from, to);
        if (rc != AMUSE_OK) {
#pragma omp critical
            failed = rc;
        }
    }
    if (failed == AMUSE_OK && c->n_runs > MAX_FANIN)
        failed = merge_runs(c);
    return failed;
}

/* ------------------------------------------------------------------------------------ setup */

static int64_t table_cells(int64_t V, int sym, int64_t max_product, int32_t *last, int64_t *off)
{
    int64_t cells = 0;
    for (int64_t a = 1; a <= V; a++) {
        int64_t first = sym ? a : 1, hi = max_product > 0 ? (max_product - 1) / a : 0;
        if (hi > V)
            hi = V;
        if (hi < first) {
            if (last)
                for (; a <= V; a++)
                    last[a] = 0;
            break;
        }
        if (last) {
            last[a] = (int32_t)hi;
            off[a] = cells - first;
        }
        cells += hi - first + 1;
    }
    return cells;
}

static int setup(struct counter *c, const struct amuse_vocab *vocab,
                 const struct amuse_glove_options *o)
{
    memset(c, 0, sizeof *c);
    c->o = o;
    c->V = amuse_vocab_size(vocab);
    c->sym = o->symmetric != 0;
    c->window = o->window_size;
    c->threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    if (c->threads > omp_get_num_procs()) /* more only divides the memory, never the work */
        c->threads = omp_get_num_procs();
    if (c->window < 1 || c->window > AM__GLOVE_MAX_WINDOW)
        return am__fail(AMUSE_EINVAL, "-window-size must be 1..%d", AM__GLOVE_MAX_WINDOW);
    if (!(o->memory > 0) || o->memory > AM__GLOVE_MAX_MEMORY_GB)
        return am__fail(AMUSE_EINVAL, "-memory must be in (0, %g] GB", AM__GLOVE_MAX_MEMORY_GB);
    if (c->V < 1 || c->V > INT32_MAX - 1)
        return am__fail(AMUSE_EINVAL, "cooccur: vocabulary of %lld words", (long long)c->V);
    if (o->max_product < 0 || o->overflow_length < 0)
        return am__fail(AMUSE_EINVAL, "-max-product and -overflow-length must be >= 0");
    while ((1LL << c->key_bits) <= c->V)
        c->key_bits++;
    for (int d = 1; d <= c->window; d++)
        c->inv_distance[d] = o->distance_weighting ? 1.0 / d : 1.0;

    double budget = o->memory * 1073741824.0;
    double fixed = (double)(BLOCK_TOKENS + c->window) * sizeof(int32_t) +
                   (double)(c->V + 1) * (sizeof(int32_t) + sizeof(int64_t));
    /* The table of frequent pairs: a quarter of the budget, and no more than the caches favour. */
    int64_t P = o->max_product;
    if (P == 0) {
        double table_budget = budget / 4 / c->threads;
        if (table_budget > DENSE_MAX_BYTES)
            table_budget = DENSE_MAX_BYTES;
        int64_t lo = 0, hi = (int64_t)1 << 40;
        while (lo < hi) { /* the largest product whose table fits */
            int64_t mid = lo + (hi - lo + 1) / 2;
            if ((double)table_cells(c->V, c->sym, mid, NULL, NULL) * sizeof(double) <= table_budget)
                lo = mid;
            else
                hi = mid - 1;
        }
        P = lo;
    }
    c->cells = table_cells(c->V, c->sym, P, NULL, NULL);
    double table_bytes = (double)c->cells * sizeof(double) * c->threads;
    double left = budget - fixed - table_bytes;
    int64_t cap = o->overflow_length;
    if (cap > 0 && cap < MIN_RUN_RECORDS)
        return am__fail(AMUSE_EINVAL, "-overflow-length must be at least %d records",
                        MIN_RUN_RECORDS);
    if (cap == 0)
        cap = left > 0 ? (int64_t)(left / c->threads / (2 * sizeof(struct pair))) : 0;
    if (cap < MIN_RUN_RECORDS || (o->overflow_length == 0 && left <= 0))
        return am__fail(
            AMUSE_EINVAL,
            "-memory %g GB is too small to hold one run: counting with %d threads needs "
            "at least %.0f MB (%.0f MB for the table of frequent pairs, %d records "
            "per sorted run and thread)",
            o->memory, c->threads,
            (fixed + table_bytes + (double)MIN_RUN_RECORDS * c->threads * 2 * sizeof(struct pair)) /
                    1048576.0 +
                0.5,
            table_bytes / 1048576.0, MIN_RUN_RECORDS);
    if ((double)cap * c->threads * 2 * sizeof(struct pair) > 1e15)
        return am__fail(AMUSE_EINVAL, "-overflow-length %lld is too large", (long long)cap);
    c->cap = cap;
    c->last = calloc((size_t)c->V + 2, sizeof *c->last);
    c->off = calloc((size_t)c->V + 2, sizeof *c->off);
    c->buf = calloc((size_t)c->threads, sizeof *c->buf);
    c->tmp = calloc((size_t)c->threads, sizeof *c->tmp);
    c->len = calloc((size_t)c->threads, sizeof *c->len);
    c->table = c->cells ? calloc((size_t)c->threads, sizeof *c->table) : NULL;
    if (!c->last || !c->off || !c->buf || !c->tmp || !c->len || (c->cells && !c->table))
        return am__fail(AMUSE_ENOMEM, "cooccur: out of memory");
    table_cells(c->V, c->sym, P, c->last, c->off);
    for (int t = 0; t < c->threads; t++) {
        c->buf[t] = malloc((size_t)cap * sizeof(struct pair));
        c->tmp[t] = malloc((size_t)cap * sizeof(struct pair));
        if (c->cells)
            c->table[t] = calloc((size_t)c->cells, sizeof(double));
        if (!c->buf[t] || !c->tmp[t] || (c->cells && !c->table[t]))
            return am__fail(AMUSE_ENOMEM, "cooccur: out of memory for %lld-record runs",
                            (long long)cap);
    }
    return AMUSE_OK;
}

static void release(struct counter *c)
{
    for (int t = 0; t < c->threads; t++) {
        if (c->buf)
            free(c->buf[t]);
        if (c->tmp)
            free(c->tmp[t]);
        if (c->table)
            free(c->table[t]);
    }
    for (int i = 0; i < c->n_runs; i++)
        fclose(c->runs[i]);
    free(c->runs);
    free(c->buf);
    free(c->tmp);
    free(c->len);
    free(c->table);
    free(c->last);
    free(c->off);
}

/* --------------------------------------------------------------------------- the final sink */

struct final_sink {
    const struct counter *c;
    amuse_glove_sink sink;
    void *ctx;
    struct amuse_glove_record batch[SINK_BATCH];
    size_t n;
    int64_t records;
};

static int final_push(struct final_sink *f, uint32_t a, uint32_t b, double v)
{
    f->batch[f->n++] = (struct amuse_glove_record){(int32_t)a, (int32_t)b, v};
    f->records++;
    if (f->n == SINK_BATCH) {
        f->n = 0;
        return f->sink(f->ctx, f->batch, SINK_BATCH);
    }
    return AMUSE_OK;
}

static int emit_final(void *ctx, uint64_t key, double value)
{
    struct final_sink *f = ctx;
    uint32_t kb = (uint32_t)f->c->key_bits;
    uint32_t a = (uint32_t)(key >> kb), b = (uint32_t)(key & ((1ULL << kb) - 1));
    if (!f->c->sym)
        return final_push(f, a, b, value);
    if (a == b)
        return final_push(f, a, a, 2 * value);
    int rc = final_push(f, a, b, value);
    return rc == AMUSE_OK ? final_push(f, b, a, value) : rc;
}

/* --------------------------------------------------------------------------------- the stage */

int amuse_glove_cooccur(const char *corpus_path, const struct amuse_vocab *vocab,
                        const struct amuse_glove_options *o, amuse_glove_sink sink, void *sink_ctx,
                        struct amuse_glove_stats *stats)
{
    struct counter c;
    struct am__token_reader r;
    struct merge_source *src = NULL;
    struct final_sink *fs = NULL;
    int32_t *ids = NULL;
    int64_t tokens = 0;
    int rc, reader_open = 0;
    if ((rc = setup(&c, vocab, o)) != AMUSE_OK)
        goto out;
    if ((rc = am__token_reader_open(&r, corpus_path, o->chars, o->skip_invalid)) != AMUSE_OK)
        goto out;
    reader_open = 1;
    ids = malloc((size_t)(BLOCK_TOKENS + c.window) * sizeof *ids);
    if (!ids) {
        rc = am__fail(AMUSE_ENOMEM, "cooccur: out of memory");
        goto out;
    }
    int64_t pre = 0, n = 0;
    for (int eof = 0; !eof;) {
        int t = am__token_next(&r);
        if (t < 0) {
            rc = t;
            goto out;
        }
        if (t == AM__TOKEN_EOF) {
            eof = 1;
        } else if (t == AM__TOKEN_EOL) {
            if (pre + n > 0 && ids[pre + n - 1] >= 0)
                ids[pre + n++] = -1;
        } else {
            tokens++;
            int64_t id = am__vocab_find_len(vocab, r.word, r.word_len);
            if (id >= 0)
                ids[pre + n++] = (int32_t)id;
        }
        if (n == BLOCK_TOKENS || (eof && n > 0)) {
            if ((rc = count_block(&c, ids, pre, n)) != AMUSE_OK)
                goto out;
            int64_t keep = pre + n < c.window ? pre + n : c.window;
            memmove(ids, ids + pre + n - keep, (size_t)keep * sizeof *ids);
            pre = keep;
            n = 0;
        }
    }
    free(ids);
    ids = NULL;
    am__token_reader_close(&r);
    reader_open = 0;

    /* Sum the tables into the first, then merge it with the runs and the last buffers. */
    if (c.cells) {
        double *t0 = c.table[0];
        for (int t = 1; t < c.threads; t++) {
            const double *tt = c.table[t];
#pragma omp parallel for num_threads(c.threads) schedule(static)
            for (int64_t i = 0; i < c.cells; i++)
                t0[i] += tt[i];
            free(c.table[t]);
            c.table[t] = NULL;
        }
    }
    if ((rc = open_sources(&c, &src, c.threads + 1)) != AMUSE_OK)
        goto out;
    int ns = c.n_runs;
#pragma omp parallel for num_threads(c.threads) schedule(static, 1)
    for (int t = 0; t < c.threads; t++)
        c.len[t] = sort_and_sum(c.buf[t], c.tmp[t], c.len[t], 2 * c.key_bits);
    for (int t = 0; t < c.threads; t++) {
        free(c.tmp[t]);
        c.tmp[t] = NULL;
        src[ns].kind = 1;
        src[ns].mem = c.buf[t];
        src[ns].len = c.len[t];
        ns++;
    }
    if (c.cells) {
        src[ns].kind = 2;
        src[ns].row = 1;
        src[ns].col = 1;
        ns++;
    }
    fs = malloc(sizeof *fs);
    if (!fs) {
        rc = am__fail(AMUSE_ENOMEM, "cooccur: out of memory");
        goto out;
    }
    fs->c = &c;
    fs->sink = sink;
    fs->ctx = sink_ctx;
    fs->n = 0;
    fs->records = 0;
    if ((rc = merge(&c, src, ns, emit_final, fs)) != AMUSE_OK)
        goto out;
    if (fs->n && (rc = sink(sink_ctx, fs->batch, fs->n)) != AMUSE_OK)
        goto out;
    if (stats) {
        stats->tokens = tokens;
        stats->vocab_size = c.V;
        stats->records = fs->records;
        stats->runs = c.spilled;
        stats->dense_cells = c.cells;
    }
out:
    if (reader_open)
        am__token_reader_close(&r);
    free(ids);
    free(fs);
    close_sources(&c, src);
    release(&c);
    return rc;
}
