/* fasttext_io.c - fastText's .bin model files, as fastText 0.9 and gensim's save_facebook_model
 * write them: magic and version, the training arguments, the dictionary (words, counts, entry
 * types, pruneidx), the dense input matrix and the output matrix. Every count is checked against
 * what is left of the file before anything is allocated, and errors name the field and its byte
 * offset. Writing is atomic. Not here: quantised models (.ftz: refused), the .vec text files
 * (that is word2vec_io.c's text format), supervised prediction. */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MIN_ENTRY_BYTES 11 /* a 1-byte word, its NUL, an int64 count and the type byte */

/* ---------------------------------------------------------------------------------- read */

struct bin_reader {
    FILE *f;
    const char *path;
    uint64_t offset; /* of the next byte */
    uint64_t size;   /* of the file */
};

static uint64_t left(const struct bin_reader *r)
{
    return r->size - r->offset;
}

static int read_bytes(struct bin_reader *r, void *dst, size_t n, const char *field)
{
    if (n > left(r) || fread(dst, 1, n, r->f) != n)
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: %s: the file ends %s (truncated)", r->path,
                        (unsigned long long)r->offset, field,
                        left(r) ? "inside it" : "before it");
    r->offset += n;
    return AMUSE_OK;
}

static int read_i32(struct bin_reader *r, int32_t *v, const char *field)
{
    unsigned char b[4];
    int rc = read_bytes(r, b, 4, field);
    if (rc == AMUSE_OK)
        *v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                       (uint32_t)b[3] << 24);
    return rc;
}

static int read_i64(struct bin_reader *r, int64_t *v, const char *field)
{
    unsigned char b[8];
    int rc = read_bytes(r, b, 8, field);
    if (rc == AMUSE_OK) {
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | b[i];
        *v = (int64_t)u;
    }
    return rc;
}

static int read_f64(struct bin_reader *r, double *v, const char *field)
{
    int64_t u;
    int rc = read_i64(r, &u, field);
    if (rc == AMUSE_OK)
        memcpy(v, &u, 8);
    return rc;
}

/* rows x cols little-endian float32, finite, into dst. */
static int read_floats(struct bin_reader *r, float *dst, int64_t rows, int64_t cols,
                       const char *field)
{
    uint64_t start = r->offset;
    size_t n = (size_t)rows * (size_t)cols;
    int rc = read_bytes(r, dst, n * sizeof *dst, field);
    if (rc != AMUSE_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        uint32_t u;
        memcpy(&u, dst + i, 4);
        u = __builtin_bswap32(u);
        memcpy(dst + i, &u, 4);
#endif
        if (!isfinite(dst[i]))
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: %s: row %lld, value %lld is not a "
                            "finite number", r->path, (unsigned long long)(start + 4 * (uint64_t)i),
                            field, (long long)(i / (size_t)cols), (long long)(i % (size_t)cols));
    }
    return AMUSE_OK;
}

static int fail_at(const struct bin_reader *r, uint64_t at, int status, const char *field,
                   const char *what)
{
    return am__fail(status, "%s: byte %llu: %s: %s", r->path, (unsigned long long)at, field, what);
}

static int read_args(struct bin_reader *r, struct am__fasttext_args *a)
{
    int32_t *f[] = {&a->dim, &a->ws, &a->epoch, &a->min_count, &a->neg, &a->word_ngrams,
                    &a->loss, &a->model, &a->bucket, &a->minn, &a->maxn, &a->lr_update_rate};
    static const char *const names[] = {"args.dim", "args.ws", "args.epoch", "args.minCount",
                                        "args.neg", "args.wordNgrams", "args.loss", "args.model",
                                        "args.bucket", "args.minn", "args.maxn",
                                        "args.lrUpdateRate"};
    for (int i = 0; i < 12; i++) {
        int rc = read_i32(r, f[i], names[i]);
        if (rc != AMUSE_OK)
            return rc;
    }
    int rc = read_f64(r, &a->t, "args.t");
    if (rc != AMUSE_OK)
        return rc;
    uint64_t at = 8; /* the args block starts after magic and version */
    if (a->dim < 1 || a->dim > AMUSE_W2V_MAX_DIM)
        return fail_at(r, at, a->dim < 1 ? AMUSE_EFORMAT : AMUSE_ETOOBIG, "args.dim",
                       "must be 1..10000");
    if (a->bucket < 0 || a->bucket > AMUSE_FASTTEXT_MAX_BUCKET)
        return fail_at(r, at + 32, a->bucket < 0 ? AMUSE_EFORMAT : AMUSE_ETOOBIG, "args.bucket",
                       "must be 0..100000000");
    if (a->maxn < 0 || a->maxn > AMUSE_FASTTEXT_MAX_N || (a->maxn > 0 && a->minn < 1) ||
        a->minn > a->maxn)
        return fail_at(r, at + 36, AMUSE_EFORMAT, "args.minn/maxn",
                       "need maxn 0 (no subwords) or 1 <= minn <= maxn <= 64");
    if (a->model < 1 || a->model > 3 || a->loss < 1 || a->loss > 4)
        return fail_at(r, at + 24, AMUSE_EFORMAT, "args.loss/model", "unknown loss or model");
    return AMUSE_OK;
}

/* One dictionary entry: a NUL-terminated word, an int64 count, an int8 type. */
static int read_entry(struct bin_reader *r, char *word, int64_t i, int64_t *count, int8_t *type)
{
    uint64_t start = r->offset;
    size_t n = 0, bad;
    for (;;) {
        int c = getc(r->f);
        if (c == EOF)
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld: the file ends "
                            "inside the word (truncated)", r->path,
                            (unsigned long long)r->offset, (long long)i);
        r->offset++;
        if (c == 0)
            break;
        if (n == AMUSE_W2V_MAX_WORD_BYTES)
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld: word longer than "
                            "%d bytes", r->path, (unsigned long long)start, (long long)i,
                            AMUSE_W2V_MAX_WORD_BYTES);
        word[n++] = (char)c;
    }
    word[n] = '\0';
    if (n == 0)
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld: empty word",
                        r->path, (unsigned long long)start, (long long)i);
    if (!am__utf8_valid(word, n, &bad))
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld: invalid UTF-8 in "
                        "the word", r->path, (unsigned long long)(start + bad), (long long)i);
    for (size_t k = 0; k < n; k++)
        if (word[k] == ' ' || word[k] == '\t' || word[k] == '\n' || word[k] == '\r' ||
            word[k] == '\v' || word[k] == '\f')
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld: white space in "
                            "the word", r->path, (unsigned long long)(start + k), (long long)i);
    uint64_t at = r->offset;
    int rc = read_i64(r, count, "dictionary entry count");
    if (rc == AMUSE_OK && *count < 0)
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld ('%s'): negative "
                        "count %lld", r->path, (unsigned long long)at, (long long)i, word,
                        (long long)*count);
    if (rc == AMUSE_OK)
        rc = read_bytes(r, type, 1, "dictionary entry type");
    return rc;
}

static int read_dictionary(struct bin_reader *r, struct amuse_word_vectors *wv,
                           struct amuse_subwords *s)
{
    int32_t size, nwords, nlabels;
    int64_t prune_size;
    int rc;
    uint64_t at = r->offset;
    if ((rc = read_i32(r, &size, "dictionary.size")) || (rc = read_i32(r, &nwords, "dictionary.nwords")) ||
        (rc = read_i32(r, &nlabels, "dictionary.nlabels")) ||
        (rc = read_i64(r, &s->ntokens, "dictionary.ntokens")) ||
        (rc = read_i64(r, &prune_size, "dictionary.pruneidx_size")))
        return rc;
    if (size < 1 || nwords < 1 || nlabels < 0 || (int64_t)nwords + nlabels != size)
        return fail_at(r, at, AMUSE_EFORMAT, "dictionary.size",
                       "need size = nwords + nlabels with at least one word");
    if (size > AMUSE_W2V_MAX_WORDS)
        return fail_at(r, at, AMUSE_ETOOBIG, "dictionary.size", "more words than amuse reads");
    if ((uint64_t)size * MIN_ENTRY_BYTES > left(r))
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary.size: %d entries need at least "
                        "%llu bytes, the file has %llu left", r->path, (unsigned long long)at,
                        size, (unsigned long long)size * MIN_ENTRY_BYTES,
                        (unsigned long long)left(r));
    if (s->ntokens < 0)
        return fail_at(r, at + 12, AMUSE_EFORMAT, "dictionary.ntokens", "negative");
    if (prune_size < -1 || (prune_size > 0 && (uint64_t)prune_size > left(r) / 8))
        return fail_at(r, at + 20, AMUSE_EFORMAT, "dictionary.pruneidx_size",
                       "must be -1 or a count of pairs the file can hold");
    char *word = malloc(AMUSE_W2V_MAX_WORD_BYTES + 1);
    if (!word)
        return am__fail(AMUSE_ENOMEM, "%s: out of memory", r->path);
    for (int64_t i = 0; i < size; i++) {
        int64_t count;
        int8_t type;
        uint64_t start = r->offset;
        if ((rc = read_entry(r, word, i, &count, &type)) != AMUSE_OK)
            break;
        if (type != (i < nwords ? 0 : 1)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld ('%s'): type %d, "
                          "expected %d (words first, then labels)", r->path,
                          (unsigned long long)(r->offset - 1), (long long)i, word, type,
                          i < nwords ? 0 : 1);
            break;
        }
        if (i >= nwords)
            continue; /* labels of supervised models: not word vectors */
        if (am__vocab_find_len(wv->vocab, word, strlen(word)) >= 0) {
            rc = am__fail(AMUSE_EFORMAT, "%s: byte %llu: dictionary entry %lld: word '%s' repeats",
                          r->path, (unsigned long long)start, (long long)i, word);
            break;
        }
        if ((rc = am__vocab_add_len(wv->vocab, word, strlen(word), count, NULL)) != AMUSE_OK)
            break;
    }
    free(word);
    if (rc != AMUSE_OK)
        return rc;
    wv->rows = nwords;
    s->nlabels = nlabels;
    s->n_prune = prune_size;
    if (prune_size > 0 && (uint64_t)prune_size > left(r) / 8) /* what the entries left */
        return fail_at(r, at + 20, AMUSE_EFORMAT, "dictionary.pruneidx_size",
                       "more pairs than the rest of the file can hold");
    if (prune_size > 0) {
        s->prune_hash = malloc((size_t)prune_size * sizeof *s->prune_hash);
        s->prune_row = malloc((size_t)prune_size * sizeof *s->prune_row);
        if (!s->prune_hash || !s->prune_row)
            return am__fail(AMUSE_ENOMEM, "%s: out of memory for pruneidx", r->path);
        for (int64_t i = 0; i < prune_size; i++) {
            int32_t h, row;
            uint64_t pat = r->offset;
            if ((rc = read_i32(r, &h, "dictionary.pruneidx")) ||
                (rc = read_i32(r, &row, "dictionary.pruneidx")))
                return rc;
            if (h < 0 || h >= s->args.bucket || row < 0 || (i > 0 && h <= s->prune_hash[i - 1]))
                return fail_at(r, pat, AMUSE_EFORMAT, "dictionary.pruneidx",
                               "pairs must be increasing buckets below args.bucket with rows >= 0");
            s->prune_hash[i] = h;
            s->prune_row[i] = row;
        }
    }
    return AMUSE_OK;
}

static int read_matrix_shape(struct bin_reader *r, const char *what, int64_t *m, int64_t *n)
{
    char field[64];
    snprintf(field, sizeof field, "%s quantisation flag", what);
    uint8_t quant;
    uint64_t at = r->offset;
    int rc = read_bytes(r, &quant, 1, field);
    if (rc != AMUSE_OK)
        return rc;
    if (quant != 0)
        return am__fail(quant == 1 ? AMUSE_EUNSUPPORTED : AMUSE_EFORMAT,
                        "%s: byte %llu: %s: %s", r->path, (unsigned long long)at, field,
                        quant == 1 ? "a quantised model (.ftz) is not supported; use the full .bin"
                                   : "must be 0 or 1");
    snprintf(field, sizeof field, "%s matrix shape", what);
    at = r->offset;
    if ((rc = read_i64(r, m, field)) || (rc = read_i64(r, n, field)))
        return rc;
    if (*m < 0 || *n < 1 || *n > AMUSE_W2V_MAX_DIM ||
        (uint64_t)*m > left(r) / 4 / (uint64_t)*n)
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: %s: %lld x %lld float32 does not fit in the "
                        "%llu bytes left", r->path, (unsigned long long)at, field, (long long)*m,
                        (long long)*n, (unsigned long long)left(r));
    return AMUSE_OK;
}

int amuse_fasttext_load(const char *path, int flags, struct amuse_word_vectors **out)
{
    struct bin_reader r = {NULL, path, 0, 0};
    struct amuse_word_vectors *wv = NULL;
    struct amuse_subwords *s = NULL;
    int rc;
    *out = NULL;
    r.f = fopen(path, "rb");
    if (!r.f)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
    struct stat st;
    if (fstat(fileno(r.f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = am__fail(AMUSE_EIO, "%s: not a regular file", path);
        goto out;
    }
    r.size = (uint64_t)st.st_size;
    wv = calloc(1, sizeof *wv);
    if (!wv || !(s = wv->subwords = calloc(1, sizeof *s)) ||
        amuse_vocab_new(&wv->vocab) != AMUSE_OK)
        goto nomem;
    int32_t magic;
    if ((rc = read_i32(&r, &magic, "magic")) != AMUSE_OK)
        goto out;
    if (magic != AMUSE_FASTTEXT_MAGIC) {
        rc = am__fail(AMUSE_EFORMAT, "%s: byte 0: magic: %d, not fastText's %d (not a fastText "
                      ".bin model)", path, magic, AMUSE_FASTTEXT_MAGIC);
        goto out;
    }
    if ((rc = read_i32(&r, &s->version, "version")) != AMUSE_OK)
        goto out;
    if (s->version != 11 && s->version != 12) {
        rc = am__fail(AMUSE_EUNSUPPORTED, "%s: byte 4: version: %d, amuse reads fastText versions "
                      "11 and 12", path, s->version);
        goto out;
    }
    if ((rc = read_args(&r, &s->args)) != AMUSE_OK)
        goto out;
    if (s->version == 11 && s->args.model == 3)
        s->args.maxn = 0; /* as fastText: version 11 supervised models have no subwords */
    if ((rc = read_dictionary(&r, wv, s)) != AMUSE_OK)
        goto out;
    wv->dim = s->args.dim;
    int64_t m, n;
    uint64_t at = r.offset + 1;
    if ((rc = read_matrix_shape(&r, "input", &m, &n)) != AMUSE_OK)
        goto out;
    s->ngram_rows = m - wv->rows;
    int64_t max_row = -1;
    for (int64_t i = 0; i < s->n_prune; i++)
        max_row = s->prune_row[i] > max_row ? s->prune_row[i] : max_row;
    if (n != wv->dim || s->ngram_rows < 0 ||
        (s->n_prune < 0 ? s->ngram_rows != s->args.bucket : max_row >= s->ngram_rows)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: byte %llu: input matrix shape: %lld x %lld, the header "
                      "says %lld words + %s %d columns", path, (unsigned long long)at,
                      (long long)m, (long long)n, (long long)wv->rows,
                      s->n_prune < 0 ? "args.bucket n-grams," : "the pruned n-grams,", wv->dim);
        goto out;
    }
    if (!(s->input = am__calloc_aligned((size_t)m * (size_t)n, sizeof(float))) ||
        !(wv->vectors = am__calloc_aligned((size_t)wv->rows * (size_t)n, sizeof(float))))
        goto nomem;
    if ((rc = read_floats(&r, s->input, m, n, "input matrix")) != AMUSE_OK)
        goto out;
    at = r.offset + 1;
    int64_t om, on;
    if ((rc = read_matrix_shape(&r, "output", &om, &on)) != AMUSE_OK)
        goto out;
    if (on != n || (uint64_t)om * (uint64_t)on * 4 != left(&r)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: byte %llu: output matrix shape: %lld x %lld float32 is "
                      "%s than the %llu bytes left", path, (unsigned long long)at, (long long)om,
                      (long long)on, (uint64_t)om * (uint64_t)on * 4 < left(&r) ? "less" : "other",
                      (unsigned long long)left(&r));
        goto out;
    }
    if ((flags & AMUSE_FASTTEXT_KEEP_OUTPUT) && s->nlabels == 0 && s->n_prune < 0) {
        if (!(s->output = am__calloc_aligned((size_t)om * (size_t)on, sizeof(float))))
            goto nomem;
        if ((rc = read_floats(&r, s->output, om, on, "output matrix")) != AMUSE_OK)
            goto out;
        s->output_rows = om;
        s->output_cols = on;
        s->keep = 1;
    }
    if ((rc = am__subwords_compose_vocab(wv)) != AMUSE_OK ||
        (rc = amuse_word_vectors_normalise(wv)) != AMUSE_OK)
        goto out;
    *out = wv;
    wv = NULL;
    rc = AMUSE_OK;
    goto out;
nomem:
    rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
out:
    amuse_word_vectors_free(wv); /* and its subwords */
    fclose(r.f);
    return rc;
}

/* --------------------------------------------------------------------------------- write */

static void put_i32(FILE *f, int32_t v)
{
    uint32_t u = (uint32_t)v;
    unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    fwrite(b, 1, 4, f);
}

static void put_i64(FILE *f, int64_t v)
{
    uint64_t u = (uint64_t)v;
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    fwrite(b, 1, 8, f);
}

static void put_matrix(FILE *f, const float *m, int64_t rows, int64_t cols)
{
    fputc(0, f); /* not quantised */
    put_i64(f, rows);
    put_i64(f, cols);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        uint32_t u;
        memcpy(&u, m + i, 4);
        put_i32(f, (int32_t)u);
    }
#else
    fwrite(m, sizeof *m, (size_t)rows * (size_t)cols, f);
#endif
}

int amuse_fasttext_save(const struct amuse_word_vectors *wv, const char *path)
{
    const struct amuse_subwords *s = wv->subwords;
    if (!s || !s->keep || !s->output)
        return am__fail(AMUSE_EINVAL, "%s: these vectors have no fastText model to write (train "
                        "with -subwords 1, or load with AMUSE_FASTTEXT_KEEP_OUTPUT)", path);
    struct am__atomic_file af;
    int rc = am__atomic_open(&af, path);
    if (rc != AMUSE_OK)
        return rc;
    FILE *f = af.f;
    const struct am__fasttext_args *a = &s->args;
    put_i32(f, AMUSE_FASTTEXT_MAGIC);
    put_i32(f, AMUSE_FASTTEXT_VERSION);
    int32_t fields[] = {a->dim, a->ws, a->epoch, a->min_count, a->neg, a->word_ngrams,
                        a->loss, a->model, a->bucket, a->minn, a->maxn, a->lr_update_rate};
    for (int i = 0; i < 12; i++)
        put_i32(f, fields[i]);
    int64_t t;
    memcpy(&t, &a->t, 8);
    put_i64(f, t);
    put_i32(f, (int32_t)wv->rows); /* size */
    put_i32(f, (int32_t)wv->rows); /* nwords */
    put_i32(f, 0);                 /* nlabels */
    put_i64(f, s->ntokens);
    put_i64(f, -1); /* no pruneidx */
    for (int64_t i = 0; i < wv->rows; i++) {
        const char *w = amuse_vocab_word(wv->vocab, i);
        fwrite(w, 1, strlen(w) + 1, f);
        put_i64(f, amuse_vocab_count(wv->vocab, i));
        fputc(0, f); /* a word, not a label */
    }
    put_matrix(f, s->input, wv->rows + s->ngram_rows, wv->dim);
    put_matrix(f, s->output, s->output_rows, s->output_cols);
    return am__atomic_commit(&af);
}
