/* word2vec_io.c - the word2vec vector files, text and binary, as word2vec.c and gensim write them:
 * header "<rows> <dim>\n"; text rows "word v1 ... vdim\n"; binary rows "word " + dim little-endian
 * float32 + "\n". Writing is atomic (temp file, fsync, rename). Reading is strict about anything
 * that would give wrong vectors (short rows, lying headers, truncation, NaN) and lenient about
 * white space. It does not read gensim's native pickle format or compressed files. */
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

/* ---------------------------------------------------------------------------------- save */

int amuse_word_vectors_save(const struct amuse_word_vectors *wv, const char *path, int format)
{
    struct am__atomic_file af;
    if (format != AMUSE_W2V_TEXT && format != AMUSE_W2V_BINARY)
        return am__fail(AMUSE_EINVAL, "%s: format must be text or binary", path);
    int rc = am__atomic_open(&af, path);
    if (rc != AMUSE_OK)
        return rc;
    int d = wv->dim;
    fprintf(af.f, "%lld %d\n", (long long)wv->rows, d);
    for (int64_t i = 0; i < wv->rows; i++) {
        const float *row = wv->vectors + (size_t)i * d;
        fputs(amuse_vocab_word(wv->vocab, i), af.f);
        if (format == AMUSE_W2V_BINARY) {
            fputc(' ', af.f);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            for (int k = 0; k < d; k++) {
                uint32_t u;
                memcpy(&u, row + k, 4);
                u = __builtin_bswap32(u);
                fwrite(&u, 4, 1, af.f);
            }
#else
            fwrite(row, sizeof(float), (size_t)d, af.f);
#endif
        } else {
            for (int k = 0; k < d; k++)
                fprintf(af.f, " %.9g", (double)row[k]);
        }
        fputc('\n', af.f);
        if (ferror(af.f))
            break;
    }
    return am__atomic_commit(&af);
}

/* ---------------------------------------------------------------------------------- load */

struct reader {
    FILE *f;
    const char *path;
    uint64_t offset; /* of the next byte */
    int64_t line;    /* 1-based line of the next byte (text format) */
};

static int next_byte(struct reader *r)
{
    int c = getc_unlocked(r->f);
    if (c != EOF) {
        r->offset++;
        if (c == '\n')
            r->line++;
    }
    return c;
}

static int is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Read a word: skip white space (newlines too), then bytes up to a space or tab. */
static int read_word(struct reader *r, char *word, int64_t row)
{
    int c;
    size_t n = 0, bad;
    do
        c = next_byte(r);
    while (c != EOF && (is_blank(c) || c == '\n'));
    uint64_t start = r->offset - 1;
    if (c == EOF)
        return am__fail(AMUSE_EFORMAT,
                        "%s: the header promises more rows than the file holds: it ends after %lld "
                        "rows",
                        r->path, (long long)row);
    while (c != EOF && c != ' ' && c != '\t' && c != '\n') {
        if (c == '\0')
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: NUL byte in the word of row %lld",
                            r->path, (unsigned long long)(r->offset - 1), (long long)row + 1);
        if (n == AMUSE_W2V_MAX_WORD_BYTES)
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: row %lld: word longer than %d bytes",
                            r->path, (unsigned long long)start, (long long)row + 1,
                            AMUSE_W2V_MAX_WORD_BYTES);
        word[n++] = (char)c;
        c = next_byte(r);
    }
    word[n] = '\0';
    if (c != ' ' && c != '\t')
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: row %lld ('%s'): no vector after the word",
                        r->path, (unsigned long long)start, (long long)row + 1, word);
    if (n && word[n - 1] == '\r')
        word[--n] = '\0';
    if (!am__utf8_valid(word, n, &bad))
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: invalid UTF-8 in the word of row %lld",
                        r->path, (unsigned long long)(start + bad), (long long)row + 1);
    return AMUSE_OK;
}

/* Text row values after the word, up to and including the newline. */
static int read_text_values(struct reader *r, float *out, int dim, int64_t row, const char *word)
{
    char num[128];
    int k = 0;
    int64_t line = r->line;
    for (;;) {
        int c;
        do
            c = next_byte(r);
        while (c != EOF && is_blank(c));
        if (c == EOF || c == '\n')
            break;
        size_t n = 0;
        while (c != EOF && !is_blank(c) && c != '\n') {
            if (n + 1 >= sizeof num)
                return am__fail(AMUSE_EFORMAT, "%s: line %lld: value %d is not a number", r->path,
                                (long long)line, k + 1);
            num[n++] = (char)c;
            c = next_byte(r);
        }
        num[n] = '\0';
        if (k == dim)
            return am__fail(AMUSE_EFORMAT, "%s: line %lld ('%s'): more than the %d values the "
                            "header promises", r->path, (long long)line, word, dim);
        char *end;
        errno = 0;
        float v = strtof(num, &end);
        if (end == num || *end != '\0')
            return am__fail(AMUSE_EFORMAT, "%s: line %lld ('%s'): value %d, '%s', is not a number",
                            r->path, (long long)line, word, k + 1, num);
        if (!isfinite(v))
            return am__fail(AMUSE_EFORMAT, "%s: line %lld ('%s'): value %d, '%s', is not a finite "
                            "number", r->path, (long long)line, word, k + 1, num);
        out[k++] = v;
        if (c == EOF || c == '\n')
            break;
    }
    if (k < dim)
        return am__fail(AMUSE_EFORMAT, "%s: line %lld ('%s'): %d values, the header promises %d",
                        r->path, (long long)line, word, k, dim);
    (void)row;
    return AMUSE_OK;
}

static int read_binary_values(struct reader *r, float *out, int dim, int64_t row, const char *word)
{
    uint64_t start = r->offset;
    size_t got = fread(out, sizeof(float), (size_t)dim, r->f);
    r->offset += got * sizeof(float);
    if (got != (size_t)dim)
        return am__fail(AMUSE_EFORMAT, "%s: byte %llu: row %lld ('%s') is truncated: %zu of %d "
                        "values before the end of the file", r->path, (unsigned long long)start,
                        (long long)row + 1, word, got, dim);
    for (int k = 0; k < dim; k++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        uint32_t u;
        memcpy(&u, out + k, 4);
        u = __builtin_bswap32(u);
        memcpy(out + k, &u, 4);
#endif
        if (!isfinite(out[k]))
            return am__fail(AMUSE_EFORMAT, "%s: byte %llu: row %lld ('%s'), value %d is not a "
                            "finite number", r->path, (unsigned long long)(start + 4 * (uint64_t)k),
                            (long long)row + 1, word, k + 1);
    }
    int c = getc(r->f); /* the row's "\n" is optional (some writers omit it) */
    if (c == '\n')
        r->offset++;
    else if (c != EOF)
        ungetc(c, r->f);
    return AMUSE_OK;
}

/* Text if the first row is a word, then number-like tokens (dim of them, or at least 2, so that the
 * text parser can report a wrong count), then a newline. A binary row practically never passes:
 * its raw float bytes would have to be digits, signs and dots around a space and a newline byte.
 * AMUSE_W2V_TEXT / AMUSE_W2V_BINARY skip the guess. */
static int looks_like_text(FILE *f, long long dim)
{
    long pos = ftell(f);
    int c, seen_space = 0, ok = 1, in_token = 0, n = 0;
    long long tokens = 0;
    while ((c = getc(f)) != EOF && n < 1 << 20) {
        n++;
        if (!seen_space) {
            if (c == ' ')
                seen_space = 1;
            else if (c == '\n')
                ok = 0;
            if (!ok)
                break;
            continue;
        }
        if (c == '\n')
            break;
        if (c == ' ' || c == '\t' || c == '\r') {
            in_token = 0;
            continue;
        }
        if (!strchr("0123456789+-.eEnNaAiIfFtTyY", c)) {
            ok = 0;
            break;
        }
        if (!in_token)
            tokens++;
        in_token = 1;
    }
    fseek(f, pos, SEEK_SET);
    return ok && c == '\n' && (tokens == dim || tokens >= 2);
}

/* 1 if path starts with fastText's magic number (a .bin model), else 0 (errors come later). */
static int is_fasttext(const char *path)
{
    unsigned char b[4];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t got = fread(b, 1, 4, f);
    fclose(f);
    uint32_t m = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return got == 4 && m == (uint32_t)AMUSE_FASTTEXT_MAGIC;
}

int amuse_word_vectors_load(const char *path, int format, struct amuse_word_vectors **out)
{
    struct reader r = {NULL, path, 0, 1};
    struct amuse_word_vectors *wv = NULL;
    char header[128];
    int rc;
    *out = NULL;
    if (format == AMUSE_W2V_FASTTEXT || (format == AMUSE_W2V_AUTO && is_fasttext(path)))
        return amuse_fasttext_load(path, 0, out);
    char *word = malloc(AMUSE_W2V_MAX_WORD_BYTES + 1);
    if (!word)
        return am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
    r.f = fopen(path, "rb");
    if (!r.f) {
        rc = am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s", path,
                      strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fileno(r.f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = am__fail(AMUSE_EIO, "%s: not a regular file", path);
        goto out;
    }
    size_t hl = 0;
    int c;
    while ((c = next_byte(&r)) != EOF && c != '\n') {
        if (hl + 1 >= sizeof header) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line 1: header is not '<rows> <dim>'", path);
            goto out;
        }
        header[hl++] = (char)c;
    }
    header[hl] = '\0';
    long long rows, dim;
    char extra;
    if (c != '\n' || sscanf(header, "%lld %lld %c", &rows, &dim, &extra) != 2) {
        rc = am__fail(AMUSE_EFORMAT, "%s: line 1: header is not '<rows> <dim>'%s", path,
                      hl == 0 ? " (empty file)" : "");
        goto out;
    }
    if (rows < 1 || rows > AMUSE_W2V_MAX_WORDS || dim < 1 || dim > AMUSE_W2V_MAX_DIM) {
        rc = am__fail(AMUSE_EFORMAT, "%s: line 1: header '%s': rows must be 1..%lld and dim "
                      "1..%d", path, header, AMUSE_W2V_MAX_WORDS, AMUSE_W2V_MAX_DIM);
        goto out;
    }
    if (format == AMUSE_W2V_AUTO)
        format = looks_like_text(r.f, dim) ? AMUSE_W2V_TEXT : AMUSE_W2V_BINARY;
    /* Each row needs at least 2 bytes per value ("0 ") or 4 (binary): a header that promises
     * more than the file can hold fails now, before any allocation. */
    uint64_t need = (uint64_t)rows * (uint64_t)dim * (format == AMUSE_W2V_BINARY ? 4 : 2);
    if (need > (uint64_t)st.st_size) {
        rc = am__fail(AMUSE_EFORMAT, "%s: the header promises %lld rows of %lld values, more than "
                      "the file's %lld bytes can hold", path, rows, dim, (long long)st.st_size);
        goto out;
    }
    wv = calloc(1, sizeof *wv);
    if (!wv || amuse_vocab_new(&wv->vocab) != AMUSE_OK)
        goto nomem;
    wv->rows = rows;
    wv->dim = (int)dim;
    wv->vectors = am__calloc_aligned((size_t)rows * (size_t)dim, sizeof(float));
    if (!wv->vectors)
        goto nomem;
    for (int64_t i = 0; i < rows; i++) {
        if ((rc = read_word(&r, word, i)) != AMUSE_OK)
            goto out;
        float *row = wv->vectors + (size_t)i * (size_t)dim;
        rc = format == AMUSE_W2V_BINARY ? read_binary_values(&r, row, (int)dim, i, word)
                                        : read_text_values(&r, row, (int)dim, i, word);
        if (rc != AMUSE_OK)
            goto out;
        /* A repeated word would make lookups ambiguous: refuse it. */
        int64_t at = am__vocab_find_len(wv->vocab, word, strlen(word));
        if (at >= 0) {
            rc = am__fail(AMUSE_EFORMAT, "%s: row %lld: word '%s' repeats row %lld", path,
                          (long long)i + 1, word, (long long)at + 1);
            goto out;
        }
        if ((rc = am__vocab_add_len(wv->vocab, word, strlen(word), 0, NULL)) != AMUSE_OK)
            goto out;
    }
    /* Anything but white space after the promised rows means the header undercounts. */
    while ((c = next_byte(&r)) != EOF && (is_blank(c) || c == '\n'))
        ;
    if (c != EOF) {
        rc = am__fail(AMUSE_EFORMAT, "%s: byte %llu: data after the %lld rows the header promises",
                      path, (unsigned long long)(r.offset - 1), rows);
        goto out;
    }
    if ((rc = amuse_word_vectors_normalise(wv)) != AMUSE_OK)
        goto out;
    *out = wv;
    wv = NULL;
    rc = AMUSE_OK;
    goto out;
nomem:
    rc = am__fail(AMUSE_ENOMEM, "%s: out of memory for %lld x %lld vectors", path, rows, dim);
out:
    if (r.f)
        fclose(r.f);
    free(word);
    amuse_word_vectors_free(wv);
    return rc;
}
