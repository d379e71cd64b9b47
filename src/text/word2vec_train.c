/* word2vec_train.c - word2vec training: skip-gram and CBOW, each with negative sampling and/or
 * hierarchical softmax, frequent-word subsampling, linear learning-rate decay and lock-free
 * (Hogwild) OpenMP threads over an in-memory id stream.
 *
 * Skip-gram with negative sampling is batched as in HogBatch (Ji et al., 2016): the context words
 * of one centre word share the centre word and one set of negatives, so the update is three small
 * matrix products (scores = C O^T, dC = G O, dO = G^T C) done with SIMD loops or with sgemm.
 * Negatives come from a Walker/Vose alias table over count^0.75 (V entries, not a 1e8 table).
 * Under MPI the ranks split the id stream and combine their updates every -mpi-sync words.
 * Not here: reading text (word2vec_corpus.c), files (word2vec_io.c), queries.
 */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "amuse/rng.h"
#include "core/blas.h"
#include "core/internal.h"
#include "core/mpi.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SENTENCE 10000   /* longer sentences are trained in pieces (as gensim does) */
#define MAX_CODE_LENGTH 64   /* Huffman depth bound: counts are < 2^63 */
#define SIGMOID_BOUND 6.0f   /* beyond it the gradient is the saturated value (as word2vec.c) */
#define SIGMOID_TABLE 1024
#define ALPHA_UPDATE_WORDS 10000

void amuse_w2v_options_default(struct amuse_w2v_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = 100;
    o->window = 5;
    o->sample = 1e-3;
    o->hs = 0;
    o->negative = 5;
    o->threads = 12;
    o->iter = 5;
    o->min_count = 5;
    o->alpha = 0; /* 0.05 for CBOW, 0.025 for skip-gram */
    o->cbow = 1;
    o->seed = 1;
    o->minn = 3;
    o->maxn = 6;
    o->bucket = 2000000;
}

void amuse_w2v_options_gensim(struct amuse_w2v_options *o)
{
    amuse_w2v_options_default(o);
    o->cbow = 1;          /* sg=0 */
    o->alpha = 0.025;     /* word2vec.c: 0.05 for CBOW */
    o->min_alpha = 0.0001;
    o->threads = 3;       /* workers=3 */
}

void amuse_word_vectors_free(struct amuse_word_vectors *wv)
{
    if (!wv)
        return;
    amuse_vocab_free(wv->vocab);
    am__free(wv->vectors);
    am__free(wv->unit);
    am__subwords_free(wv->subwords);
    free(wv);
}

/* ------------------------------------------------------------------------ shared state */

struct huffman {
    uint8_t *code;    /* per word, MAX_CODE_LENGTH bits (0/1), root first */
    int32_t *point;   /* per word, MAX_CODE_LENGTH inner-node rows, root first */
    uint8_t *length;  /* per word */
};

struct trainer {
    const struct amuse_w2v_corpus *c;
    struct amuse_w2v_options o;
    int64_t V;
    int dim;
    float *syn0, *syn1, *syn1neg; /* with subwords, syn0 has V word rows then bucket n-gram rows */
    int32_t *sub_rows;  /* subwords: each word's input rows (its own, then its n-grams') ... */
    int64_t *sub_off;   /* ... word w's are sub_rows[sub_off[w] .. sub_off[w + 1]) */
    uint64_t *keep;       /* subsampling: keep a word when a 32-bit random < keep[w] */
    uint32_t *alias_prob; /* alias table: column i keeps i when a 32-bit random < prob */
    int32_t *alias;
    struct huffman hs;
    float sigmoid[SIGMOID_TABLE + 1];
    double start_alpha;
    int64_t total_words;  /* iter * train_words */
    int64_t words_done;   /* shared, atomically updated */
    int ranks;            /* MPI ranks training together (1: this process alone) */
    double start; /* am__now() when training began */
    int threads;
};

static double seconds_since(const double *t0)
{
    return am__now() - *t0;
}

/* A per-thread generator: splitmix64 over a Weyl sequence (fast, 64-bit output). */
static inline uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline int32_t sample_negative(const struct trainer *t, uint64_t *rs)
{
    uint64_t r = next_random(rs);
    uint32_t col = (uint32_t)(((r >> 32) * (uint64_t)t->V) >> 32);
    return (uint32_t)r < t->alias_prob[col] ? (int32_t)col : t->alias[col];
}

static inline float gradient(const struct trainer *t, float score, float label, float alpha)
{
    if (score >= SIGMOID_BOUND)
        return (label - 1.0f) * alpha;
    if (score <= -SIGMOID_BOUND)
        return label * alpha;
    int i = (int)((score + SIGMOID_BOUND) * (SIGMOID_TABLE / (2 * SIGMOID_BOUND)));
    return (label - t->sigmoid[i]) * alpha;
}

static inline float dot(const float *restrict a, const float *restrict b, int n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline void axpy(float a, const float *restrict x, float *restrict y, int n)
{
#pragma omp simd
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* ----------------------------------------------------------------------- tables */

static int build_alias(struct trainer *t)
{
    int64_t V = t->V;
    double *p = malloc((size_t)V * sizeof *p);
    int32_t *small = malloc((size_t)V * sizeof *small), *large = malloc((size_t)V * sizeof *large);
    t->alias_prob = malloc((size_t)V * sizeof *t->alias_prob);
    t->alias = malloc((size_t)V * sizeof *t->alias);
    int rc = AMUSE_OK;
    if (!p || !small || !large || !t->alias_prob || !t->alias) {
        rc = am__fail(AMUSE_ENOMEM, "word2vec: out of memory for the sampling table");
        goto out;
    }
    double total = 0;
    for (int64_t i = 0; i < V; i++)
        total += pow((double)t->c->vocab->count[i], 0.75);
    int64_t ns = 0, nl = 0;
    for (int64_t i = 0; i < V; i++) {
        p[i] = total > 0 ? pow((double)t->c->vocab->count[i], 0.75) * (double)V / total : 1.0;
        if (p[i] < 1.0)
            small[ns++] = (int32_t)i;
        else
            large[nl++] = (int32_t)i;
    }
    /* Vose: pair each under-full column with an over-full donor. */
    while (ns && nl) {
        int32_t s = small[--ns], l = large[nl - 1];
        t->alias_prob[s] = (uint32_t)fmin(p[s] * 4294967296.0, 4294967295.0);
        t->alias[s] = l;
        p[l] -= 1.0 - p[s];
        if (p[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    while (nl) {
        int32_t l = large[--nl];
        t->alias_prob[l] = UINT32_MAX;
        t->alias[l] = l;
    }
    while (ns) { /* rounding leftovers */
        int32_t s = small[--ns];
        t->alias_prob[s] = UINT32_MAX;
        t->alias[s] = s;
    }
out:
    free(p);
    free(small);
    free(large);
    return rc;
}

/* Huffman tree over the counts (sorted descending), built with two queues: leaves from the rare
 * end and inner nodes in creation order. Inner node j (0..V-2) is row j of syn1. */
static int build_huffman(struct trainer *t)
{
    int64_t V = t->V;
    int rc = AMUSE_OK;
    int64_t *count = malloc((size_t)(2 * V) * sizeof *count);
    int64_t *parent = malloc((size_t)(2 * V) * sizeof *parent);
    uint8_t *bit = calloc((size_t)(2 * V), 1);
    t->hs.code = malloc((size_t)V * MAX_CODE_LENGTH);
    t->hs.point = malloc((size_t)V * MAX_CODE_LENGTH * sizeof *t->hs.point);
    t->hs.length = calloc((size_t)V, 1);
    if (!count || !parent || !bit || !t->hs.code || !t->hs.point || !t->hs.length) {
        rc = am__fail(AMUSE_ENOMEM, "word2vec: out of memory for the Huffman tree");
        goto out;
    }
    for (int64_t i = 0; i < V; i++)
        count[i] = t->c->vocab->count[i] > 0 ? t->c->vocab->count[i] : 1;
    for (int64_t i = V; i < 2 * V; i++)
        count[i] = INT64_MAX;
    int64_t leaf = V - 1, inner = V;
    for (int64_t a = 0; a + 1 < V; a++) {
        int64_t m[2];
        for (int k = 0; k < 2; k++) {
            if (leaf >= 0 && count[leaf] < count[inner])
                m[k] = leaf--;
            else
                m[k] = inner++;
        }
        count[V + a] = count[m[0]] + count[m[1]];
        parent[m[0]] = parent[m[1]] = V + a;
        bit[m[1]] = 1;
    }
    int64_t root = 2 * V - 2;
    for (int64_t w = 0; w < V; w++) {
        uint8_t codes[MAX_CODE_LENGTH];
        int64_t points[MAX_CODE_LENGTH];
        int n = 0;
        for (int64_t node = w; node != root && V > 1; node = parent[node]) {
            if (n == MAX_CODE_LENGTH) {
                rc = am__fail(AMUSE_ETOOBIG, "word2vec: Huffman code longer than %d",
                              MAX_CODE_LENGTH);
                goto out;
            }
            codes[n] = bit[node];
            points[n] = parent[node] - V;
            n++;
        }
        t->hs.length[w] = (uint8_t)n;
        for (int k = 0; k < n; k++) { /* root first */
            t->hs.code[w * MAX_CODE_LENGTH + k] = codes[n - 1 - k];
            t->hs.point[w * MAX_CODE_LENGTH + k] = (int32_t)points[n - 1 - k];
        }
    }
out:
    free(count);
    free(parent);
    free(bit);
    return rc;
}

/* ---------------------------------------------------------------------------- kernels */

struct scratch {
    float *neu1, *neu1e;     /* dim */
    float *ctx_rows;         /* 2*window x dim (BLAS kernel: gathered context rows) */
    float *out_rows;         /* (negative+1) x dim (BLAS kernel: gathered output rows) */
    float *grad_ctx;         /* 2*window x dim */
    float *grad_out;         /* (negative+1) x dim (BLAS kernel) */
    float *g;                /* 2*window x (negative+1) */
    int32_t *ctx, *out;
};

/* Hierarchical softmax for one input vector l1 against word w's path; accumulates into neu1e. */
static void hs_update(struct trainer *t, const float *l1, int32_t w, float alpha, float *neu1e)
{
    int d = t->dim;
    const uint8_t *code = t->hs.code + (size_t)w * MAX_CODE_LENGTH;
    const int32_t *point = t->hs.point + (size_t)w * MAX_CODE_LENGTH;
    for (int k = 0; k < t->hs.length[w]; k++) {
        float *l2 = t->syn1 + (size_t)point[k] * d;
        float f = dot(l1, l2, d);
        if (f <= -SIGMOID_BOUND || f >= SIGMOID_BOUND)
            continue; /* saturated: no gradient (as word2vec.c) */
        float g = gradient(t, f, 1.0f - (float)code[k], alpha);
        axpy(g, l2, neu1e, d);
        axpy(g, l1, l2, d);
    }
}

/* Negative sampling for one input vector l1 with target w and fresh negatives; into neu1e. */
static void ns_update(struct trainer *t, const float *l1, int32_t w, float alpha, float *neu1e,
                      uint64_t *rs)
{
    int d = t->dim;
    for (int k = 0; k <= t->o.negative; k++) {
        int32_t target = w;
        float label = 1.0f;
        if (k > 0) {
            target = sample_negative(t, rs);
            if (target == w)
                continue;
            label = 0.0f;
        }
        float *l2 = t->syn1neg + (size_t)target * d;
        float g = gradient(t, dot(l1, l2, d), label, alpha);
        axpy(g, l2, neu1e, d);
        axpy(g, l1, l2, d);
    }
}

/* Skip-gram negative sampling for one centre word: nc context rows share out[0] (the centre
 * word, label 1) and out[1..no) (negatives, label 0). */
static void sg_batch_loops(struct trainer *t, struct scratch *s, int nc, int no, float alpha)
{
    int d = t->dim;
    float *syn0 = t->syn0, *syn1neg = t->syn1neg;
    for (int j = 0; j < nc; j++) {
        const float *cj = syn0 + (size_t)s->ctx[j] * d;
        for (int k = 0; k < no; k++)
            s->g[j * no + k] = gradient(t, dot(cj, syn1neg + (size_t)s->out[k] * d, d),
                                        k == 0 ? 1.0f : 0.0f, alpha);
    }
    /* dC = G O, from the old output rows. */
    for (int j = 0; j < nc; j++) {
        float *gc = s->grad_ctx + (size_t)j * d;
        memset(gc, 0, (size_t)d * sizeof *gc);
        for (int k = 0; k < no; k++)
            axpy(s->g[j * no + k], syn1neg + (size_t)s->out[k] * d, gc, d);
    }
    /* O += G^T C, from the old context rows. */
    for (int k = 0; k < no; k++) {
        float *ok = syn1neg + (size_t)s->out[k] * d;
        for (int j = 0; j < nc; j++)
            axpy(s->g[j * no + k], syn0 + (size_t)s->ctx[j] * d, ok, d);
    }
    for (int j = 0; j < nc; j++)
        axpy(1.0f, s->grad_ctx + (size_t)j * d, syn0 + (size_t)s->ctx[j] * d, d);
}

/* The same update through sgemm on gathered rows. */
static void sg_batch_blas(struct trainer *t, struct scratch *s, int nc, int no, float alpha)
{
    int d = t->dim;
    for (int j = 0; j < nc; j++)
        memcpy(s->ctx_rows + (size_t)j * d, t->syn0 + (size_t)s->ctx[j] * d, (size_t)d * 4);
    for (int k = 0; k < no; k++)
        memcpy(s->out_rows + (size_t)k * d, t->syn1neg + (size_t)s->out[k] * d, (size_t)d * 4);
    am__sgemm(0, 1, nc, no, d, 1.0f, s->ctx_rows, d, s->out_rows, d, 0.0f, s->g, no);
    for (int j = 0; j < nc; j++)
        for (int k = 0; k < no; k++)
            s->g[j * no + k] = gradient(t, s->g[j * no + k], k == 0 ? 1.0f : 0.0f, alpha);
    am__sgemm(0, 0, nc, d, no, 1.0f, s->g, no, s->out_rows, d, 0.0f, s->grad_ctx, d);
    am__sgemm(1, 0, no, d, nc, 1.0f, s->g, no, s->ctx_rows, d, 0.0f, s->grad_out, d);
    for (int k = 0; k < no; k++)
        axpy(1.0f, s->grad_out + (size_t)k * d, t->syn1neg + (size_t)s->out[k] * d, d);
    for (int j = 0; j < nc; j++)
        axpy(1.0f, s->grad_ctx + (size_t)j * d, t->syn0 + (size_t)s->ctx[j] * d, d);
}

/* fastText skip-gram for one centre word w: its input vector h is the mean of its rows (own and
 * n-grams'); every context word is a target. The summed input gradient goes to each of those rows
 * once, after the window (fastText applies it after each target, recomputing h). With kernel 2
 * each target draws its own negatives (fastText's order); otherwise one set of negatives serves
 * the whole window, as in the batched word2vec kernel: h is the same for every target, so a
 * shared negative's nc identical updates are one update of nc times the gradient. */
static void subword_update(struct trainer *t, struct scratch *s, int32_t w, int nc, float alpha,
                           uint64_t *rs)
{
    int d = t->dim;
    const int32_t *rows = t->sub_rows + t->sub_off[w];
    int nr = (int)(t->sub_off[w + 1] - t->sub_off[w]);
    float *h = s->neu1, *grad = s->neu1e;
    memset(h, 0, (size_t)d * sizeof *h);
    memset(grad, 0, (size_t)d * sizeof *grad);
    for (int r = 0; r < nr; r++)
        axpy(1.0f, t->syn0 + (size_t)rows[r] * d, h, d);
    float inv = 1.0f / (float)nr;
    for (int k = 0; k < d; k++)
        h[k] *= inv;
    if (t->o.kernel == 2) {
        for (int j = 0; j < nc; j++)
            ns_update(t, h, s->ctx[j], alpha, grad, rs);
    } else {
        for (int j = 0; j < nc; j++) {
            float *o = t->syn1neg + (size_t)s->ctx[j] * d;
            float g = gradient(t, dot(h, o, d), 1.0f, alpha);
            axpy(g, o, grad, d);
            axpy(g, h, o, d);
        }
        for (int k = 0; k < t->o.negative; k++) {
            int32_t neg = sample_negative(t, rs);
            int clash = 0;
            for (int j = 0; j < nc; j++)
                clash |= neg == s->ctx[j];
            if (clash)
                continue;
            float *o = t->syn1neg + (size_t)neg * d;
            float g = (float)nc * gradient(t, dot(h, o, d), 0.0f, alpha);
            axpy(g, o, grad, d);
            axpy(g, h, o, d);
        }
    }
    for (int r = 0; r < nr; r++)
        axpy(1.0f, grad, t->syn0 + (size_t)rows[r] * d, d);
}

static void train_sentence(struct trainer *t, struct scratch *s, const int32_t *sen, int n,
                           float alpha, uint64_t *rs)
{
    int d = t->dim, win = t->o.window;
    for (int i = 0; i < n; i++) {
        int32_t w = sen[i];
        int b = (int)(next_random(rs) % (uint64_t)win); /* shrink the window by b */
        int lo = i - (win - b), hi = i + (win - b);
        if (lo < 0)
            lo = 0;
        if (hi > n - 1)
            hi = n - 1;
        int nc = 0;
        for (int j = lo; j <= hi; j++)
            if (j != i)
                s->ctx[nc++] = sen[j];
        if (nc == 0)
            continue;
        if (t->o.subwords) {
            subword_update(t, s, w, nc, alpha, rs);
            continue;
        }
        if (t->o.cbow) {
            memset(s->neu1, 0, (size_t)d * sizeof *s->neu1);
            memset(s->neu1e, 0, (size_t)d * sizeof *s->neu1e);
            for (int j = 0; j < nc; j++)
                axpy(1.0f, t->syn0 + (size_t)s->ctx[j] * d, s->neu1, d);
            float inv = 1.0f / (float)nc;
            for (int k = 0; k < d; k++)
                s->neu1[k] *= inv;
            if (t->o.hs)
                hs_update(t, s->neu1, w, alpha, s->neu1e);
            if (t->o.negative > 0)
                ns_update(t, s->neu1, w, alpha, s->neu1e, rs);
            for (int j = 0; j < nc; j++)
                axpy(1.0f, s->neu1e, t->syn0 + (size_t)s->ctx[j] * d, d);
            continue;
        }
        if (t->o.hs) {
            for (int j = 0; j < nc; j++) {
                float *l1 = t->syn0 + (size_t)s->ctx[j] * d;
                memset(s->neu1e, 0, (size_t)d * sizeof *s->neu1e);
                hs_update(t, l1, w, alpha, s->neu1e);
                axpy(1.0f, s->neu1e, l1, d);
            }
        }
        if (t->o.negative > 0) {
            if (t->o.kernel == 2) { /* per pair, fresh negatives: word2vec.c's order */
                for (int j = 0; j < nc; j++) {
                    float *l1 = t->syn0 + (size_t)s->ctx[j] * d;
                    memset(s->neu1e, 0, (size_t)d * sizeof *s->neu1e);
                    ns_update(t, l1, w, alpha, s->neu1e, rs);
                    axpy(1.0f, s->neu1e, l1, d);
                }
                continue;
            }
            int no = 1;
            s->out[0] = w;
            for (int k = 0; k < t->o.negative; k++) {
                int32_t neg = sample_negative(t, rs);
                for (int tries = 0; neg == w && tries < 8 && t->V > 1; tries++)
                    neg = sample_negative(t, rs);
                if (neg != w)
                    s->out[no++] = neg;
            }
            if (t->o.kernel == 1)
                sg_batch_blas(t, s, nc, no, alpha);
            else
                sg_batch_loops(t, s, nc, no, alpha);
        }
    }
}

/* -------------------------------------------------------------------------- subwords */

/* Each word's input rows: its own, then V + bucket of each of its n-grams (fastText's order). */
static int build_subword_rows(struct trainer *t)
{
    int64_t V = t->V, total = 0, cap = 0;
    const int64_t max_ngrams = (int64_t)(AMUSE_W2V_MAX_WORD_BYTES + 2) * AMUSE_FASTTEXT_MAX_N;
    int64_t *buckets = malloc((size_t)max_ngrams * sizeof *buckets);
    t->sub_off = malloc((size_t)(V + 1) * sizeof *t->sub_off);
    if (!t->sub_off || !buckets) {
        free(buckets);
        return am__fail(AMUSE_ENOMEM, "subwords: out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {
        total = 0;
        for (int64_t w = 0; w < V; w++) {
            int64_t n = amuse_fasttext_ngrams(t->c->vocab->pool + t->c->vocab->offset[w],
                                              t->o.minn, t->o.maxn, t->o.bucket, buckets,
                                              max_ngrams);
            t->sub_off[w] = total;
            if (pass == 1) {
                t->sub_rows[total] = (int32_t)w;
                for (int64_t g = 0; g < n; g++)
                    t->sub_rows[total + 1 + g] = (int32_t)(V + buckets[g]);
            }
            total += 1 + n;
        }
        t->sub_off[V] = total;
        if (pass == 0) {
            cap = total;
            t->sub_rows = malloc((size_t)cap * sizeof *t->sub_rows);
            if (!t->sub_rows) {
                free(buckets);
                return am__fail(AMUSE_ENOMEM, "subwords: out of memory for %lld n-grams",
                                (long long)cap);
            }
        }
    }
    free(buckets);
    return AMUSE_OK;
}

/* Hand the input and output matrices to wv as a fastText model and compose its word vectors. */
static int attach_subwords(struct trainer *t, struct amuse_word_vectors *wv)
{
    struct amuse_subwords *s = calloc(1, sizeof *s);
    if (!s)
        return am__fail(AMUSE_ENOMEM, "subwords: out of memory");
    struct am__fasttext_args a = {t->dim, t->o.window, t->o.iter, t->o.min_count, t->o.negative,
                                  1, 2 /* ns */, 2 /* skip-gram */, (int32_t)t->o.bucket,
                                  t->o.minn, t->o.maxn, 100, t->o.sample};
    s->args = a;
    s->version = AMUSE_FASTTEXT_VERSION;
    s->ntokens = t->c->stats.tokens;
    s->ngram_rows = t->o.bucket;
    s->n_prune = -1;
    s->input = t->syn0;
    s->output = t->syn1neg;
    s->output_rows = t->V;
    s->output_cols = t->dim;
    s->keep = 1;
    t->syn0 = t->syn1neg = NULL;
    wv->subwords = s;
    return am__subwords_compose_vocab(wv);
}

/* ---------------------------------------------------------------------------- driver */

static double current_alpha(const struct trainer *t, int64_t done)
{
    double progress = (double)done / (double)(t->total_words + 1);
    if (t->o.min_alpha > 0) /* gensim: linear from alpha to min_alpha */
        return t->start_alpha - (t->start_alpha - t->o.min_alpha) * (progress < 1 ? progress : 1);
    double a = t->start_alpha * (1.0 - progress);
    return a < t->start_alpha * 1e-4 ? t->start_alpha * 1e-4 : a;
}

static void report(struct trainer *t, int64_t done, double alpha)
{
    struct amuse_w2v_progress p;
    p.elapsed_seconds = seconds_since(&t->start);
    p.words_done = done * t->ranks; /* every rank is as far through its share */
    p.fraction = t->total_words ? (double)done / (double)t->total_words : 1.0;
    if (p.fraction > 1.0)
        p.fraction = 1.0;
    p.words_per_sec = p.elapsed_seconds > 0 ? (double)p.words_done / p.elapsed_seconds : 0;
    p.words_per_sec_per_thread = p.words_per_sec / (t->threads * t->ranks);
    p.alpha = alpha;
    p.eta_seconds = p.words_per_sec > 0
                        ? (double)(t->total_words - done) * t->ranks / p.words_per_sec
                        : 0;
    if (p.eta_seconds < 0)
        p.eta_seconds = 0;
    t->o.progress(&p, t->o.progress_ctx);
}

/* One training thread's state, kept across passes (and, under MPI, across averaging rounds). */
struct worker {
    struct scratch s;
    int32_t *sen;
    uint64_t rs;         /* this thread's random state */
    int64_t local;       /* words read since the last update of t->words_done */
    double alpha, last_report;
};

static void worker_free(struct worker *w)
{
    free(w->sen);
    am__free(w->s.neu1);
    am__free(w->s.neu1e);
    am__free(w->s.ctx_rows);
    am__free(w->s.out_rows);
    am__free(w->s.grad_ctx);
    am__free(w->s.grad_out);
    am__free(w->s.g);
    free(w->s.ctx);
    free(w->s.out);
    memset(w, 0, sizeof *w);
}

static int worker_init(struct trainer *t, struct worker *w, uint64_t seed)
{
    int d = t->dim, win = t->o.window, no = t->o.negative + 1;
    memset(w, 0, sizeof *w);
    w->sen = malloc(MAX_SENTENCE * sizeof *w->sen);
    w->s.neu1 = am__calloc_aligned((size_t)d, sizeof(float));
    w->s.neu1e = am__calloc_aligned((size_t)d, sizeof(float));
    w->s.ctx_rows = am__calloc_aligned((size_t)(2 * win) * d, sizeof(float));
    w->s.out_rows = am__calloc_aligned((size_t)no * d, sizeof(float));
    w->s.grad_ctx = am__calloc_aligned((size_t)(2 * win) * d, sizeof(float));
    w->s.grad_out = am__calloc_aligned((size_t)no * d, sizeof(float));
    w->s.g = am__calloc_aligned((size_t)(2 * win) * no, sizeof(float));
    w->s.ctx = malloc((size_t)(2 * win) * sizeof *w->s.ctx);
    w->s.out = malloc((size_t)no * sizeof *w->s.out);
    w->rs = seed;
    w->alpha = t->start_alpha;
    if (!w->sen || !w->s.neu1 || !w->s.neu1e || !w->s.ctx_rows || !w->s.out_rows ||
        !w->s.grad_ctx || !w->s.grad_out || !w->s.g || !w->s.ctx || !w->s.out) {
        worker_free(w);
        return AMUSE_ENOMEM;
    }
    return AMUSE_OK;
}

/* One pass of thread tid over ids[begin, end). */
static void worker_run(struct trainer *t, struct worker *w, int tid, int64_t begin, int64_t end)
{
    const int32_t *ids = t->c->ids;
    int64_t i = begin;
    while (i < end) {
        int n = 0;
        int64_t raw = 0;
        for (; i < end && n < MAX_SENTENCE; i++) {
            int32_t word = ids[i];
            if (word < 0) {
                i++;
                break;
            }
            raw++;
            if ((next_random(&w->rs) & 0xffffffffULL) < t->keep[word])
                w->sen[n++] = word;
        }
        train_sentence(t, &w->s, w->sen, n, (float)w->alpha, &w->rs);
        w->local += raw;
        if (w->local >= ALPHA_UPDATE_WORDS) {
            int64_t done;
#pragma omp atomic capture
            done = t->words_done += w->local;
            w->local = 0;
            w->alpha = current_alpha(t, done);
            if (tid == 0 && t->o.progress) {
                double now = seconds_since(&t->start);
                if (now - w->last_report >= 0.1) {
                    w->last_report = now;
                    report(t, done, w->alpha);
                }
            }
        }
    }
}

static void worker_flush(struct trainer *t, struct worker *w)
{
#pragma omp atomic
    t->words_done += w->local;
    w->local = 0;
}

/* Thread tid trains on ids[begin, end) for every epoch. Returns 0 or AMUSE_ENOMEM. */
static int train_thread(struct trainer *t, int tid, uint64_t seed)
{
    int64_t n_ids = t->c->n_ids;
    int64_t begin = n_ids * tid / t->threads, end = n_ids * (tid + 1) / t->threads;
    struct worker w;
    if (worker_init(t, &w, seed) != AMUSE_OK)
        return AMUSE_ENOMEM;
    for (int epoch = 0; epoch < t->o.iter; epoch++)
        worker_run(t, &w, tid, begin, end);
    worker_flush(t, &w);
    worker_free(&w);
    return AMUSE_OK;
}

/* ------------------------------------------------------------------------ across MPI ranks
 * Each rank trains on its own share of the id stream (ids[n*r/N, n*(r+1)/N)) with its own random
 * streams, and the ranks combine their models as they go, as pWord2Vec's multi-node mode and the
 * distributed SGNS papers do. Plain averaging would count each rank's progress 1/N, so what is
 * combined is the updates: each rank's change since the last synchronisation is summed into the
 * common model, which is how Hogwild threads on one machine combine theirs, only less often.
 * Frequent words change most, so their rows (the first AMUSE_W2V_MPI_HOT_ROWS: the vocabulary
 * is sorted by count) are combined every `mpi_sync_words` words per rank, and the whole model
 * every AMUSE_W2V_MPI_FULL_EVERY such rounds and at the end of every epoch. Between
 * synchronisations the rank's own threads run Hogwild as on one machine. The learning rate
 * follows the rank's progress through its share, which every rank makes at the same pace. */

#define AMUSE_W2V_MPI_HOT_ROWS 4096
#define AMUSE_W2V_MPI_FULL_EVERY 10

/* Rows [0, rows) of dim floats: model += sum over ranks of (model - base); then base = model. */
static int combine_matrix(float *m, float *base, size_t cells)
{
    if (!m)
        return AMUSE_OK;
    for (size_t i = 0; i < cells; i++)
        m[i] -= base[i];
    int rc = am__mpi_allreduce_sum_float(m, (int64_t)cells);
    for (size_t i = 0; rc == AMUSE_OK && i < cells; i++) {
        m[i] += base[i];
        base[i] = m[i];
    }
    return rc;
}

struct rank_sync {
    float *base0, *base1neg, *base1; /* the matrices at the last synchronisation */
};

/* Combine the first `rows` rows of every matrix (the vocabulary is sorted by count, so the
 * first rows are the most frequent words). */
static int combine_rows(struct trainer *t, struct rank_sync *rs, int64_t rows)
{
    size_t cells = (size_t)rows * (size_t)t->dim;
    int rc = combine_matrix(t->syn0, rs->base0, cells);
    if (!rc)
        rc = combine_matrix(t->syn1neg, rs->base1neg, cells);
    if (!rc)
        rc = combine_matrix(t->syn1, rs->base1, cells);
    return rc;
}

static int train_ranks(struct trainer *t, const uint64_t *seeds)
{
    int ranks = am__mpi_size(), rank = am__mpi_rank();
    int64_t lo = am__mpi_share(t->c->n_ids, rank, ranks);
    int64_t hi = am__mpi_share(t->c->n_ids, rank + 1, ranks);
    int64_t sync = t->o.mpi_sync_words > 0 ? t->o.mpi_sync_words : AMUSE_W2V_MPI_SYNC_WORDS;
    size_t cells = (size_t)t->V * (size_t)t->dim;
    int64_t hot = t->V < AMUSE_W2V_MPI_HOT_ROWS ? t->V : AMUSE_W2V_MPI_HOT_ROWS;
    struct rank_sync rs = {NULL, NULL, NULL};
    int threads = t->threads, rc = AMUSE_OK;
    struct worker *w = calloc((size_t)threads, sizeof *w);
    rs.base0 = am__calloc_aligned(cells, sizeof(float));
    rs.base1neg = t->syn1neg ? am__calloc_aligned(cells, sizeof(float)) : NULL;
    rs.base1 = t->syn1 ? am__calloc_aligned(cells, sizeof(float)) : NULL;
    if (!w || !rs.base0 || (t->syn1neg && !rs.base1neg) || (t->syn1 && !rs.base1))
        rc = AMUSE_ENOMEM;
    for (int i = 0; i < threads && rc == AMUSE_OK; i++)
        rc = worker_init(t, &w[i], seeds[i]);
    if (rc == AMUSE_OK) {
        memcpy(rs.base0, t->syn0, cells * sizeof(float));
        if (t->syn1neg)
            memcpy(rs.base1neg, t->syn1neg, cells * sizeof(float));
        if (t->syn1)
            memcpy(rs.base1, t->syn1, cells * sizeof(float));
    }
    /* Every rank must join every synchronisation: the rounds per epoch are the most any rank
     * has (shares differ by at most one id); a rank with fewer joins with an empty round. */
    int64_t rounds = 0;
    for (int r = 0; r < ranks; r++) {
        int64_t n = am__mpi_share(t->c->n_ids, r + 1, ranks) - am__mpi_share(t->c->n_ids, r, ranks);
        if ((n + sync - 1) / sync > rounds)
            rounds = (n + sync - 1) / sync;
    }
    for (int epoch = 0; epoch < t->o.iter && rc == AMUSE_OK; epoch++) {
        for (int64_t k = 0; k < rounds && rc == AMUSE_OK; k++) {
            int64_t at = lo + k * sync < hi ? lo + k * sync : hi;
            int64_t end = hi - at < sync ? hi : at + sync;
#pragma omp parallel for schedule(static, 1) num_threads(threads)
            for (int tid = 0; tid < threads; tid++)
                worker_run(t, &w[tid], tid, at + (end - at) * tid / threads,
                           at + (end - at) * (tid + 1) / threads);
            int full = k == rounds - 1 || (k + 1) % AMUSE_W2V_MPI_FULL_EVERY == 0;
            rc = combine_rows(t, &rs, full ? t->V : hot);
        }
    }
    for (int i = 0; w && i < threads; i++) {
        worker_flush(t, &w[i]);
        worker_free(&w[i]);
    }
    free(w);
    am__free(rs.base0);
    am__free(rs.base1neg);
    am__free(rs.base1);
    return rc;
}

int amuse_w2v_train(const struct amuse_w2v_corpus *c, const struct amuse_w2v_options *o,
                    struct amuse_word_vectors **out)
{
    struct trainer t;
    struct amuse_word_vectors *wv = NULL;
    int rc = AMUSE_OK;
    *out = NULL;
    memset(&t, 0, sizeof t);
    if (o->size < 1 || o->size > AMUSE_W2V_MAX_DIM)
        return am__fail(AMUSE_EINVAL, "size %d: must be 1..%d", o->size, AMUSE_W2V_MAX_DIM);
    if (o->window < 1 || o->window > 1000)
        return am__fail(AMUSE_EINVAL, "window %d: must be 1..1000", o->window);
    if (o->negative < 0 || o->negative > 1000)
        return am__fail(AMUSE_EINVAL, "negative %d: must be 0..1000", o->negative);
    if (!o->hs && o->negative == 0)
        return am__fail(AMUSE_EINVAL, "nothing to train: -hs 0 and -negative 0");
    if (o->iter < 1)
        return am__fail(AMUSE_EINVAL, "iter %d: must be >= 1", o->iter);
    if (!(o->sample >= 0))
        return am__fail(AMUSE_EINVAL, "sample %g: must be >= 0", o->sample);
    if (o->kernel < 0 || o->kernel > 2)
        return am__fail(AMUSE_EINVAL, "kernel %d: must be 0, 1 or 2", o->kernel);
    if (o->subwords && (o->cbow || o->hs || o->negative < 1))
        return am__fail(AMUSE_EINVAL, "subwords: only skip-gram with negative sampling is trained "
                        "(-cbow 0 -hs 0 -negative N)");
    if (o->subwords && (o->minn < 1 || o->minn > o->maxn || o->maxn > AMUSE_FASTTEXT_MAX_N))
        return am__fail(AMUSE_EINVAL, "subwords: need 1 <= minn (%d) <= maxn (%d) <= %d", o->minn,
                        o->maxn, AMUSE_FASTTEXT_MAX_N);
    if (o->subwords && (o->bucket < 1 || o->bucket > AMUSE_FASTTEXT_MAX_BUCKET))
        return am__fail(AMUSE_EINVAL, "subwords: bucket %lld must be 1..%lld",
                        (long long)o->bucket, AMUSE_FASTTEXT_MAX_BUCKET);
    t.c = c;
    t.o = *o;
    t.V = c->vocab->size;
    t.dim = o->size;
    t.threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    if (t.threads > 512)
        t.threads = 512;
    /* fastText's skip-gram learns at 0.05 by default, word2vec.c's at 0.025. */
    t.start_alpha = o->alpha > 0 ? o->alpha : (o->cbow || o->subwords ? 0.05 : 0.025);
    t.total_words = (int64_t)o->iter * c->stats.train_words;
    t.ranks = am__mpi_size();
    if (t.ranks > 1) {
        if (o->subwords)
            return am__fail(AMUSE_EUNSUPPORTED, "word2vec: -subwords is not trained across MPI "
                            "ranks (its n-gram buckets would be averaged at every round)");
        /* The learning rate follows this rank's progress through its share of the ids. */
        int64_t lo = am__mpi_share(c->n_ids, am__mpi_rank(), t.ranks);
        int64_t hi = am__mpi_share(c->n_ids, am__mpi_rank() + 1, t.ranks), words = 0;
        for (int64_t i = lo; i < hi; i++)
            words += c->ids[i] >= 0;
        t.total_words = (int64_t)o->iter * words;
    }
    for (int i = 0; i <= SIGMOID_TABLE; i++) {
        double x = ((double)i / SIGMOID_TABLE * 2 - 1) * SIGMOID_BOUND;
        t.sigmoid[i] = (float)(1.0 / (1.0 + exp(-x)));
    }

    wv = calloc(1, sizeof *wv);
    if (!wv)
        goto nomem;
    if ((rc = am__vocab_clone(c->vocab, &wv->vocab)) != AMUSE_OK)
        goto fail;
    wv->rows = t.V;
    wv->dim = t.dim;
    size_t cells = (size_t)t.V * (size_t)t.dim;
    size_t in_cells = (size_t)(t.V + (o->subwords ? o->bucket : 0)) * (size_t)t.dim;
    wv->vectors = am__calloc_aligned(cells, sizeof(float));
    t.syn0 = o->subwords ? am__calloc_aligned(in_cells, sizeof(float)) : wv->vectors;
    if (!wv->vectors || !t.syn0)
        goto nomem;
    if (o->subwords && (rc = build_subword_rows(&t)) != AMUSE_OK)
        goto fail;
    if (o->negative > 0 && !(t.syn1neg = am__calloc_aligned(cells, sizeof(float))))
        goto nomem;
    if (o->hs && !(t.syn1 = am__calloc_aligned(cells, sizeof(float))))
        goto nomem;
    t.keep = malloc((size_t)t.V * sizeof *t.keep);
    if (!t.keep)
        goto nomem;
    double threshold = o->sample * (double)c->stats.train_words;
    for (int64_t w = 0; w < t.V; w++) {
        double f = (double)c->vocab->count[w], keep = 1.0;
        if (o->sample > 0 && f > 0)
            keep = (sqrt(f / threshold) + 1.0) * threshold / f; /* Mikolov's word2vec formula */
        t.keep[w] = keep >= 1.0 ? (1ULL << 32) : (uint64_t)(keep * 4294967296.0);
    }
    if (o->negative > 0 && (rc = build_alias(&t)) != AMUSE_OK)
        goto fail;
    if (o->hs && (rc = build_huffman(&t)) != AMUSE_OK)
        goto fail;

    /* Input vectors uniform in [-0.5, 0.5) / dim, output vectors zero (as word2vec.c); with
     * subwords in [-1, 1) / dim, as fastText and gensim's FastText. */
    float init_scale = o->subwords ? 2.0f : 1.0f;
    struct amuse_rng rng;
    amuse_rng_seed(&rng, o->seed);
    for (size_t i = 0; i < in_cells; i++)
        t.syn0[i] = init_scale * (amuse_rng_uniform(&rng) - 0.5f) / (float)t.dim;
    uint64_t seeds[512];
    for (int i = 0; i < t.threads; i++) /* ranks share the initial vectors, not the streams */
        seeds[i] = amuse_rng_next(&rng) ^ ((uint64_t)am__mpi_rank() * 0x9e3779b97f4a7c15ULL);

    t.start = am__now();
    if (t.ranks > 1) {
        if ((rc = train_ranks(&t, seeds)) == AMUSE_ENOMEM)
            goto nomem;
        if (rc)
            goto fail;
        if (o->progress)
            report(&t, t.words_done, current_alpha(&t, t.words_done));
        *out = wv;
        wv = NULL;
        goto out;
    }
    int failed = 0;
#pragma omp parallel num_threads(t.threads) reduction(| : failed)
    {
        int tid = omp_get_thread_num();
        if (omp_get_num_threads() != t.threads) {
            /* The runtime gave fewer threads than asked: split the work by what we got. */
#pragma omp single
            t.threads = omp_get_num_threads();
        }
        if (train_thread(&t, tid, seeds[tid]) != AMUSE_OK)
            failed = 1;
    }
    if (failed)
        goto nomem;
    if (o->progress)
        report(&t, t.words_done, current_alpha(&t, t.words_done));
    if (o->subwords && (rc = attach_subwords(&t, wv)) != AMUSE_OK)
        goto fail;
    *out = wv;
    wv = NULL;
    goto out;
nomem:
    rc = am__fail(AMUSE_ENOMEM, "word2vec: out of memory (vocabulary %lld, size %d)",
                  (long long)t.V, t.dim);
fail:
out:
    amuse_word_vectors_free(wv);
    if (o->subwords)
        am__free(t.syn0); /* NULL once the model owns it */
    free(t.sub_rows);
    free(t.sub_off);
    am__free(t.syn1neg);
    am__free(t.syn1);
    free(t.keep);
    free(t.alias_prob);
    free(t.alias);
    free(t.hs.code);
    free(t.hs.point);
    free(t.hs.length);
    return rc;
}
