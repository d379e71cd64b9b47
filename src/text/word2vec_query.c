/* word2vec_query.c - similarity queries over unit-length word vectors: most similar (cosine
 * top-k), 3CosAdd analogies, doesn't-match and pair similarity, as gensim's KeyedVectors does them.
 * One sgemv scores every row; a bounded min-heap keeps the top k. Read-only once wv->unit exists,
 * so concurrent queries are safe after amuse_word_vectors_normalise. A word outside the vocabulary
 * of a fastText model is composed from its n-grams (and, having no row, excludes none from the
 * answers). No approximate search. */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "core/internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QUERY_WORDS 1024
#define MAX_TOP_K 100000

int amuse_word_vectors_normalise(struct amuse_word_vectors *wv)
{
    if (wv->unit)
        return AMUSE_OK;
    int d = wv->dim;
    float *u = am__calloc_aligned((size_t)wv->rows * (size_t)d, sizeof(float));
    if (!u)
        return am__fail(AMUSE_ENOMEM, "word vectors: out of memory for unit vectors");
    for (int64_t i = 0; i < wv->rows; i++) {
        const float *v = wv->vectors + (size_t)i * d;
        double s = 0;
        for (int k = 0; k < d; k++)
            s += (double)v[k] * v[k];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int k = 0; k < d; k++)
                u[(size_t)i * d + k] = v[k] * inv;
        }
    }
    wv->unit = u;
    return AMUSE_OK;
}

static int lookup(const struct amuse_word_vectors *wv, const char *word, int64_t *index)
{
    *index = amuse_vocab_lookup(wv->vocab, word);
    if (*index < 0)
        return am__fail(AMUSE_ENOTFOUND, "word '%s' is not in the vocabulary", word);
    return AMUSE_OK;
}

/* The unit vector of word into u[0..dim): its row's, or, for a model with subwords, one composed
 * from its n-grams (*index = -1 then). */
static int unit_vector(const struct amuse_word_vectors *wv, const char *word, float *u,
                       int64_t *index)
{
    *index = amuse_vocab_lookup(wv->vocab, word);
    int d = wv->dim;
    if (*index >= 0) {
        memcpy(u, wv->unit + (size_t)*index * d, (size_t)d * sizeof *u);
        return AMUSE_OK;
    }
    if (!wv->subwords)
        return lookup(wv, word, index);
    int rc = amuse_word_vectors_lookup(wv, word, u, NULL);
    if (rc != AMUSE_OK)
        return rc;
    double s = 0;
    for (int k = 0; k < d; k++)
        s += (double)u[k] * u[k];
    if (s > 0)
        for (int k = 0; k < d; k++)
            u[k] = (float)(u[k] / sqrt(s));
    return AMUSE_OK;
}

/* ------------------------------------------------------------------------------- top k */

/* Min-heap on score (ties: the larger index is "smaller", so lower indices win). */
static int worse(const struct amuse_w2v_hit *a, const struct amuse_w2v_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->index > b->index);
}

static void sift_down(struct amuse_w2v_hit *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(&h[l], &h[m]))
            m = l;
        if (r < n && worse(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct amuse_w2v_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void sift_up(struct amuse_w2v_hit *h, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!worse(&h[i], &h[p]))
            return;
        struct amuse_w2v_hit t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

int am__w2v_top_k(const float *scores, int64_t rows, const int64_t *exclude, int n_exclude, int k,
                 struct amuse_w2v_hit *hits)
{
    int n = 0;
    for (int64_t i = 0; i < rows; i++) {
        float s = scores[i];
        if (n == k && !(s > hits[0].score))
            continue;
        int skip = 0;
        for (int e = 0; e < n_exclude; e++)
            skip |= exclude[e] == i;
        if (skip)
            continue;
        struct amuse_w2v_hit h = {i, s};
        if (n < k) {
            hits[n] = h;
            sift_up(hits, n++);
        } else {
            hits[0] = h;
            sift_down(hits, n, 0);
        }
    }
    /* Heap sort: repeatedly move the worst to the end, leaving best first. */
    for (int m = n; m > 1; m--) {
        struct amuse_w2v_hit t = hits[0];
        hits[0] = hits[m - 1];
        hits[m - 1] = t;
        sift_down(hits, m - 1, 0);
    }
    return n;
}

/* ---------------------------------------------------------------------------- queries */

int amuse_w2v_similar(struct amuse_word_vectors *wv, const char *const *positive, int n_positive,
                      const char *const *negative, int n_negative, int k, int64_t restrict_rows,
                      struct amuse_w2v_hit *hits, int *n)
{
    int rc;
    int64_t *ex = NULL;
    float *q = NULL, *u = NULL, *scores = NULL;
    *n = 0;
    if (n_positive < 0 || n_negative < 0 || n_positive + n_negative == 0)
        return am__fail(AMUSE_EINVAL, "similar: no words given");
    if (n_positive + n_negative > MAX_QUERY_WORDS)
        return am__fail(AMUSE_ETOOBIG, "similar: more than %d words", MAX_QUERY_WORDS);
    if (k < 1 || k > MAX_TOP_K)
        return am__fail(AMUSE_EINVAL, "similar: k %d must be 1..%d", k, MAX_TOP_K);
    if ((rc = amuse_word_vectors_normalise(wv)) != AMUSE_OK)
        return rc;
    int64_t rows = restrict_rows > 0 && restrict_rows < wv->rows ? restrict_rows : wv->rows;
    int d = wv->dim, ne = n_positive + n_negative;
    ex = malloc((size_t)ne * sizeof *ex);
    q = calloc((size_t)d, sizeof *q);
    u = malloc((size_t)d * sizeof *u);
    scores = malloc((size_t)rows * sizeof *scores);
    if (!ex || !q || !u || !scores) {
        rc = am__fail(AMUSE_ENOMEM, "similar: out of memory");
        goto out;
    }
    for (int i = 0; i < ne; i++) {
        const char *w = i < n_positive ? positive[i] : negative[i - n_positive];
        if ((rc = unit_vector(wv, w, u, &ex[i])) != AMUSE_OK)
            goto out;
        float sign = i < n_positive ? 1.0f : -1.0f;
        for (int j = 0; j < d; j++)
            q[j] += sign * u[j];
    }
    double norm = 0;
    for (int j = 0; j < d; j++)
        norm += (double)q[j] * q[j];
    if (norm > 0)
        for (int j = 0; j < d; j++)
            q[j] = (float)(q[j] / sqrt(norm));
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, d, 1.0f, wv->unit, d, q, 1, 0.0f, scores, 1);
    *n = am__w2v_top_k(scores, rows, ex, ne, k, hits);
    rc = AMUSE_OK;
out:
    free(ex);
    free(q);
    free(u);
    free(scores);
    return rc;
}

int amuse_w2v_analogy(struct amuse_word_vectors *wv, const char *a, const char *b, const char *c,
                      int k, struct amuse_w2v_hit *hits, int *n)
{
    const char *pos[2] = {b, c}, *neg[1] = {a};
    return amuse_w2v_similar(wv, pos, 2, neg, 1, k, 0, hits, n);
}

int amuse_w2v_doesnt_match(struct amuse_word_vectors *wv, const char *const *words, int n,
                           int64_t *index)
{
    int rc, used = 0;
    if (n < 1 || n > MAX_QUERY_WORDS)
        return am__fail(AMUSE_EINVAL, "doesnt-match: give 1..%d words", MAX_QUERY_WORDS);
    if ((rc = amuse_word_vectors_normalise(wv)) != AMUSE_OK)
        return rc;
    int d = wv->dim;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    float *mean = calloc((size_t)d, sizeof *mean);
    if (!idx || !mean) {
        rc = am__fail(AMUSE_ENOMEM, "doesnt-match: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int64_t at = amuse_vocab_lookup(wv->vocab, words[i]);
        if (at < 0)
            continue; /* gensim ignores unknown words here */
        idx[used++] = at;
        const float *u = wv->unit + (size_t)at * d;
        for (int j = 0; j < d; j++)
            mean[j] += u[j];
    }
    if (used == 0) {
        rc = am__fail(AMUSE_EINVAL, "doesnt-match: none of the words is in the vocabulary");
        goto out;
    }
    double norm = 0;
    for (int j = 0; j < d; j++)
        norm += (double)mean[j] * mean[j];
    float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
    float best = INFINITY;
    for (int i = 0; i < used; i++) {
        const float *u = wv->unit + (size_t)idx[i] * d;
        float s = 0;
        for (int j = 0; j < d; j++)
            s += u[j] * mean[j] * inv;
        if (s < best) {
            best = s;
            *index = idx[i];
        }
    }
    rc = AMUSE_OK;
out:
    free(idx);
    free(mean);
    return rc;
}

int amuse_w2v_similarity(struct amuse_word_vectors *wv, const char *a, const char *b, float *out)
{
    int64_t ia, ib;
    int rc;
    float *ua = malloc((size_t)wv->dim * 2 * sizeof *ua), *ub = ua + wv->dim;
    if (!ua)
        return am__fail(AMUSE_ENOMEM, "similarity: out of memory");
    if ((rc = amuse_word_vectors_normalise(wv)) == AMUSE_OK &&
        (rc = unit_vector(wv, a, ua, &ia)) == AMUSE_OK &&
        (rc = unit_vector(wv, b, ub, &ib)) == AMUSE_OK) {
        double s = 0;
        for (int j = 0; j < wv->dim; j++)
            s += (double)ua[j] * ub[j];
        *out = (float)s;
    }
    free(ua);
    return rc;
}
