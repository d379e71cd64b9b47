/* word2vec_eval.c - the standard word-vector evaluations: analogy questions (questions-words.txt,
 * as word2vec.c's compute-accuracy and gensim's evaluate_word_analogies score them) and word-pair
 * similarity (WordSim-353, as gensim's evaluate_word_pairs), plus Pearson and Spearman.
 * Case folding is ASCII only; there is no 3CosMul and no dummy4unknown. */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "core/blas.h"
#include "core/internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANALOGY_BATCH 128
#define ANALOGY_TOPN 5
#define SEMANTIC_SECTIONS 5
#define MAX_EVAL_LINE 65536

/* ------------------------------------------------------------------- case-folded lookup */

static void fold(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

/* A map from upper-cased word to the lowest row among the first rows (stored as the count). */
static int folded_vocab(const struct amuse_word_vectors *wv, int64_t rows, struct amuse_vocab **out)
{
    struct amuse_vocab *m;
    char buf[AMUSE_W2V_MAX_WORD_BYTES + 1];
    int rc = amuse_vocab_new(&m);
    if (rc != AMUSE_OK)
        return rc;
    for (int64_t i = 0; i < rows; i++) {
        const char *w = amuse_vocab_word(wv->vocab, i);
        size_t len = strlen(w);
        if (len > AMUSE_W2V_MAX_WORD_BYTES)
            continue;
        memcpy(buf, w, len + 1);
        fold(buf);
        int64_t before = m->size, at;
        if ((rc = am__vocab_add_len(m, buf, len, 0, &at)) != AMUSE_OK) {
            amuse_vocab_free(m);
            return rc;
        }
        if (m->size > before)
            m->count[at] = i;
    }
    *out = m;
    return AMUSE_OK;
}

static int64_t folded_find(const struct amuse_vocab *m, char *word)
{
    fold(word);
    int64_t at = am__vocab_find_len(m, word, strlen(word));
    return at < 0 ? -1 : m->count[at];
}

/* ---------------------------------------------------------------------------- analogies */

struct question {
    int64_t row[4];
    int semantic;
};

static void score_batch(struct amuse_word_vectors *wv, const struct amuse_vocab *m,
                        const struct question *q, int n, int64_t rows, float *query, float *scores,
                        struct amuse_w2v_analogy_result *res)
{
    int d = wv->dim;
    for (int i = 0; i < n; i++) {
        const float *a = wv->unit + (size_t)q[i].row[0] * d, *b = wv->unit + (size_t)q[i].row[1] * d,
                    *c = wv->unit + (size_t)q[i].row[2] * d;
        float *x = query + (size_t)i * d;
        for (int j = 0; j < d; j++)
            x[j] = b[j] + c[j] - a[j]; /* 3CosAdd; the norm does not change the ranking */
    }
    am__sgemm(0, 1, n, (int)rows, d, 1.0f, query, d, wv->unit, d, 0.0f, scores, (int)rows);
    char folded[AMUSE_W2V_MAX_WORD_BYTES + 1];
    for (int i = 0; i < n; i++) {
        struct amuse_w2v_hit hits[ANALOGY_TOPN];
        int got = am__w2v_top_k(scores + (size_t)i * rows, rows, q[i].row, 3, ANALOGY_TOPN, hits);
        int64_t predicted = -1;
        for (int h = 0; h < got; h++) {
            /* As gensim: skip a hit whose folded form is one of the question words. */
            snprintf(folded, sizeof folded, "%s", amuse_vocab_word(wv->vocab, hits[h].index));
            int64_t canon = folded_find(m, folded);
            predicted = canon;
            if (canon != q[i].row[0] && canon != q[i].row[1] && canon != q[i].row[2])
                break;
        }
        int ok = predicted == q[i].row[3];
        res->correct += ok;
        res->seen++;
        if (q[i].semantic) {
            res->semantic_correct += ok;
            res->semantic_seen++;
        } else {
            res->syntactic_correct += ok;
            res->syntactic_seen++;
        }
    }
}

/* What both evaluators start with: open the test file, normalise the vectors, and build the
 * case-folded lookup over the first `rows` words (restrict_rows, else default_rows, at most all).
 * On failure nothing is left open. */
static int eval_begin(struct amuse_word_vectors *wv, const char *path, int64_t restrict_rows,
                      int64_t default_rows, FILE **f, int64_t *rows, struct amuse_vocab **m)
{
    *m = NULL;
    *f = fopen(path, "rb");
    if (!*f)
        return am__fail(errno == ENOENT ? AMUSE_ENOTFOUND : AMUSE_EIO, "%s: cannot open: %s", path,
                        strerror(errno));
    *rows = restrict_rows > 0 ? restrict_rows : default_rows;
    if (*rows > wv->rows)
        *rows = wv->rows;
    int rc = amuse_word_vectors_normalise(wv);
    if (rc == AMUSE_OK)
        rc = folded_vocab(wv, *rows, m);
    if (rc != AMUSE_OK) {
        fclose(*f);
        *f = NULL;
    }
    return rc;
}

int amuse_w2v_eval_analogies(struct amuse_word_vectors *wv, const char *path, int64_t restrict_rows,
                             struct amuse_w2v_analogy_result *out)
{
    struct amuse_vocab *m = NULL;
    struct question *batch = NULL;
    float *query = NULL, *scores = NULL;
    char *line = NULL;
    size_t cap = 0;
    int rc, n = 0, section = -1;
    int64_t lineno = 0;
    memset(out, 0, sizeof *out);
    FILE *f;
    int64_t rows = 0;
    if ((rc = eval_begin(wv, path, restrict_rows, 30000, &f, &rows, &m)) != AMUSE_OK)
        return rc;
    batch = malloc(ANALOGY_BATCH * sizeof *batch);
    query = malloc((size_t)ANALOGY_BATCH * wv->dim * sizeof *query);
    scores = malloc((size_t)ANALOGY_BATCH * (size_t)rows * sizeof *scores);
    if (!batch || !query || !scores) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (got > MAX_EVAL_LINE || memchr(line, '\0', (size_t)got)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: not a text line", path, (long long)lineno);
            goto out;
        }
        char *save, *tok = strtok_r(line, " \t\r\n", &save);
        if (!tok)
            continue;
        if (tok[0] == ':') {
            section++;
            continue;
        }
        char *w[4] = {tok, NULL, NULL, NULL};
        int k = 1;
        while (k < 5 && (tok = strtok_r(NULL, " \t\r\n", &save)))
            if (k < 4)
                w[k++] = tok;
            else
                k = 5;
        if (k != 4) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: a question needs 4 words", path,
                          (long long)lineno);
            goto out;
        }
        out->questions++;
        struct question q = {{0}, section < SEMANTIC_SECTIONS};
        int known = 1;
        for (int i = 0; i < 4; i++)
            if ((q.row[i] = folded_find(m, w[i])) < 0)
                known = 0;
        if (!known) {
            out->skipped++;
            continue;
        }
        batch[n++] = q;
        if (n == ANALOGY_BATCH) {
            score_batch(wv, m, batch, n, rows, query, scores, out);
            n = 0;
        }
    }
    if (n)
        score_batch(wv, m, batch, n, rows, query, scores, out);
    if (ferror(f)) {
        rc = am__fail(AMUSE_EIO, "%s: read error", path);
        goto out;
    }
    out->accuracy = out->seen ? (double)out->correct / (double)out->seen : 0;
    out->semantic_accuracy =
        out->semantic_seen ? (double)out->semantic_correct / (double)out->semantic_seen : 0;
    out->syntactic_accuracy =
        out->syntactic_seen ? (double)out->syntactic_correct / (double)out->syntactic_seen : 0;
    rc = AMUSE_OK;
out:
    fclose(f);
    free(line);
    free(batch);
    free(query);
    free(scores);
    amuse_vocab_free(m);
    return rc;
}

/* ------------------------------------------------------------------------- correlations */

double amuse_pearson(const double *x, const double *y, int64_t n)
{
    if (n < 2)
        return NAN;
    double mx = 0, my = 0;
    for (int64_t i = 0; i < n; i++)
        mx += x[i], my += y[i];
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (int64_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx == 0 || syy == 0)
        return NAN;
    return sxy / sqrt(sxx * syy);
}

struct ranked_value {
    double v;
    int64_t i;
};

static int by_value(const void *pa, const void *pb)
{
    const struct ranked_value *a = pa, *b = pb;
    return (a->v > b->v) - (a->v < b->v);
}

/* Ranks 1..n, ties get the average of the ranks they span (scipy's rankdata 'average'). */
static int rank(const double *x, int64_t n, double *r)
{
    struct ranked_value *t = malloc((size_t)n * sizeof *t);
    if (!t)
        return -1;
    for (int64_t i = 0; i < n; i++)
        t[i] = (struct ranked_value){x[i], i};
    qsort(t, (size_t)n, sizeof *t, by_value);
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j + 1 < n && t[j + 1].v == t[i].v)
            j++;
        double avg = (double)(i + j) / 2.0 + 1.0;
        for (int64_t k = i; k <= j; k++)
            r[t[k].i] = avg;
        i = j + 1;
    }
    free(t);
    return 0;
}

double amuse_spearman(const double *x, const double *y, int64_t n)
{
    if (n < 2)
        return NAN;
    double *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
    double r = NAN;
    if (rx && ry && rank(x, n, rx) == 0 && rank(y, n, ry) == 0)
        r = amuse_pearson(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

/* -------------------------------------------------------------------------------- pairs */

int amuse_w2v_eval_pairs(struct amuse_word_vectors *wv, const char *path, int64_t restrict_rows,
                         struct amuse_w2v_pairs_result *out)
{
    struct amuse_vocab *m = NULL;
    double *gold = NULL, *model = NULL;
    int64_t n = 0, cap_pairs = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    int rc;
    memset(out, 0, sizeof *out);
    FILE *f;
    int64_t rows = 0;
    if ((rc = eval_begin(wv, path, restrict_rows, 300000, &f, &rows, &m)) != AMUSE_OK)
        return rc;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (got > MAX_EVAL_LINE || memchr(line, '\0', (size_t)got)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: not a text line", path, (long long)lineno);
            goto out;
        }
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || !t2 || strchr(t2 + 1, '\t')) {
            out->skipped_lines++;
            continue;
        }
        *t1 = *t2 = '\0';
        char *end;
        errno = 0;
        double sim = strtod(t2 + 1, &end);
        while (*end == ' ' || *end == '\n' || *end == '\r')
            end++;
        if (end == t2 + 1 || *end != '\0' || errno) {
            out->skipped_lines++;
            continue;
        }
        int64_t a = folded_find(m, line), b = folded_find(m, t1 + 1);
        if (a < 0 || b < 0) {
            out->oov++;
            continue;
        }
        if (n == cap_pairs) {
            cap_pairs = cap_pairs ? cap_pairs * 2 : 512;
            double *g2 = realloc(gold, (size_t)cap_pairs * sizeof *g2);
            if (g2)
                gold = g2;
            double *m2 = realloc(model, (size_t)cap_pairs * sizeof *m2);
            if (m2)
                model = m2;
            if (!g2 || !m2) {
                rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
                goto out;
            }
        }
        const float *ua = wv->unit + (size_t)a * wv->dim, *ub = wv->unit + (size_t)b * wv->dim;
        float s = 0;
        for (int j = 0; j < wv->dim; j++)
            s += ua[j] * ub[j];
        gold[n] = sim;
        model[n] = s;
        n++;
    }
    if (n < 2) {
        rc = am__fail(AMUSE_EINVAL, "%s: fewer than 2 pairs with both words in the vocabulary "
                      "(%lld out of vocabulary)", path, (long long)out->oov);
        goto out;
    }
    out->pairs = n;
    out->pearson = amuse_pearson(gold, model, n);
    out->spearman = amuse_spearman(gold, model, n);
    out->oov_ratio = 100.0 * (double)out->oov / (double)(n + out->oov);
    rc = AMUSE_OK;
out:
    fclose(f);
    free(line);
    free(gold);
    free(model);
    amuse_vocab_free(m);
    return rc;
}
