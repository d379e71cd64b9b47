/* glove_train.c - GloVe's training stage and the whole pipeline.
 *
 * AdaGrad on sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 with lock-free (Hogwild) OpenMP
 * threads, each taking a fixed slice of the shuffled pairs every iteration, as the reference tool
 * does. Updates follow the reference: gradient components clipped to +-grad_clip, scaled by eta
 * and divided by the root of the summed squared gradients (which start at 1); the biases take the
 * unscaled weighted error. Parameters are float (the reference uses double), a word's vector,
 * bias and their squared gradients are one cache-aligned row, and log X and f(X) are computed
 * once per pair instead of once per pair and iteration.
 *
 * Not here: counting (glove_cooccur.c), record files (glove_files.c), writing vectors
 * (word2vec_io.c). */
#define _POSIX_C_SOURCE 200809L
#include "text/glove_internal.h"
#include "text/word2vec_internal.h"

#include "amuse/rng.h"
#include "core/internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void am__glove_pair_from_record(struct am__glove_pair *p, const struct amuse_glove_record *r,
                                double x_max, double alpha)
{
    p->word = r->word1 - 1;
    p->context = r->word2 - 1;
    p->log_value = (float)log(r->value);
    p->weight = r->value > x_max ? 1.0f : (float)pow(r->value / x_max, alpha);
}

static int check_options(const struct amuse_glove_options *o)
{
    if (o->vector_size < 1 || o->vector_size > AMUSE_W2V_MAX_DIM)
        return am__fail(AMUSE_EINVAL, "-vector-size must be 1..%d", AMUSE_W2V_MAX_DIM);
    if (o->iter < 1 || o->iter > 1000000)
        return am__fail(AMUSE_EINVAL, "-iter must be 1..1000000");
    if (!(o->eta > 0) || !(o->x_max > 0) || !(o->alpha >= 0) || !(o->grad_clip > 0) ||
        !isfinite(o->eta) || !isfinite(o->x_max) || !isfinite(o->alpha) || !isfinite(o->grad_clip))
        return am__fail(AMUSE_EINVAL, "-eta, -x-max and -grad-clip must be > 0, -alpha >= 0");
    if (o->model < 0 || o->model > 2)
        return am__fail(AMUSE_EINVAL, "-model must be 0, 1 or 2");
    return AMUSE_OK;
}

/* One pass over pairs[from, to); returns the summed weighted squared error. */
static double train_slice(float *W, const struct am__glove_pair *pairs, int64_t from, int64_t to,
                          int dim, int64_t stride, int64_t V, float eta, float clip)
{
    double cost = 0;
    for (int64_t i = from; i < to; i++) {
        const struct am__glove_pair *p = &pairs[i];
        float *restrict w1 = W + (int64_t)p->word * 2 * stride;
        float *restrict w2 = W + (V + p->context) * 2 * stride;
        float *restrict g1 = w1 + stride, *restrict g2 = w2 + stride;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int k = 0; k < dim; k++)
            dot += w1[k] * w2[k];
        float diff = dot + w1[dim] + w2[dim] - p->log_value;
        float fdiff = p->weight * diff;
        if (!isfinite(fdiff))
            continue; /* as the reference: skip a pair whose error overflowed */
        cost += 0.5 * (double)fdiff * diff;
#pragma omp simd
        for (int k = 0; k < dim; k++) {
            float t1 = fdiff * w2[k], t2 = fdiff * w1[k];
            t1 = (t1 > clip ? clip : t1 < -clip ? -clip : t1) * eta;
            t2 = (t2 > clip ? clip : t2 < -clip ? -clip : t2) * eta;
            float u1 = t1 / sqrtf(g1[k]), u2 = t2 / sqrtf(g2[k]);
            g1[k] += t1 * t1;
            g2[k] += t2 * t2;
            w1[k] -= u1;
            w2[k] -= u2;
        }
        w1[dim] -= fdiff / sqrtf(g1[dim]);
        w2[dim] -= fdiff / sqrtf(g2[dim]);
        g1[dim] += fdiff * fdiff;
        g2[dim] += fdiff * fdiff;
    }
    return cost;
}

int am__glove_train_pairs(const struct amuse_vocab *vocab, const struct am__glove_pair *pairs,
                          int64_t n, const struct amuse_glove_options *o,
                          struct amuse_word_vectors **out, struct amuse_glove_stats *stats)
{
    struct amuse_word_vectors *wv = NULL;
    float *W = NULL;
    double *cost = NULL;
    int rc;
    *out = NULL;
    if ((rc = check_options(o)) != AMUSE_OK)
        return rc;
    if (n < 1)
        return am__fail(AMUSE_EINVAL, "glove: no co-occurrence records to train on");
    const int64_t V = amuse_vocab_size(vocab);
    const int dim = o->vector_size;
    const int64_t stride = ((int64_t)dim + 1 + 15) / 16 * 16; /* floats: vector + bias, aligned */
    int threads = o->threads > 0 ? o->threads : omp_get_num_procs();
    /* Row r: the vector and bias at W + 2 r stride, their squared gradients right after. */
    W = am__calloc_aligned((size_t)(2 * V) * 2 * (size_t)stride, sizeof *W);
    cost = calloc((size_t)threads, sizeof *cost);
    if (!W || !cost) {
        rc = am__fail(AMUSE_ENOMEM, "glove: out of memory for %lld words of %d dimensions",
                      (long long)V, dim);
        goto out;
    }
    struct amuse_rng rng;
    amuse_rng_seed(&rng, o->seed ? o->seed : 1);
    for (int64_t r = 0; r < 2 * V; r++) {
        float *w = W + r * 2 * stride;
        for (int k = 0; k <= dim; k++) {
            w[k] = (amuse_rng_uniform(&rng) - 0.5f) / (float)dim;
            w[stride + k] = 1.0f;
        }
    }
    double start = omp_get_wtime();
    int failed = 0;
    const float eta = (float)o->eta, clip = (float)o->grad_clip;
#pragma omp parallel num_threads(threads)
    {
        int t = omp_get_thread_num(), T = omp_get_num_threads();
        int64_t from = n * t / T, to = n * (t + 1) / T;
        for (int it = 0; it < o->iter; it++) {
            cost[t] = train_slice(W, pairs, from, to, dim, stride, V, eta, clip);
#pragma omp barrier
#pragma omp master
            {
                double total = 0;
                for (int i = 0; i < T; i++)
                    total += cost[i];
                if (stats)
                    stats->final_cost = total / (double)n;
                if (!isfinite(total))
                    failed = 1;
                if (o->progress) {
                    struct amuse_glove_progress p = {it + 1, o->iter, total / (double)n,
                                                     omp_get_wtime() - start};
                    o->progress(&p, o->progress_ctx);
                }
            }
#pragma omp barrier
        }
    }
    if (failed) {
        rc = am__fail(AMUSE_EINVAL, "glove: the cost is not finite (try a smaller -eta)");
        goto out;
    }

    /* The output vectors, as -model says. */
    int out_dim = o->model == 0 ? 2 * (dim + 1) : dim;
    wv = calloc(1, sizeof *wv);
    if (!wv || (rc = am__vocab_clone(vocab, &wv->vocab)) != AMUSE_OK) {
        rc = am__fail(AMUSE_ENOMEM, "glove: out of memory");
        goto out;
    }
    wv->rows = V;
    wv->dim = out_dim;
    wv->vectors = am__calloc_aligned((size_t)V * (size_t)out_dim, sizeof *wv->vectors);
    if (!wv->vectors) {
        rc = am__fail(AMUSE_ENOMEM, "glove: out of memory");
        goto out;
    }
    for (int64_t i = 0; i < V; i++) {
        const float *w = W + i * 2 * stride, *c = W + (V + i) * 2 * stride;
        float *v = wv->vectors + i * out_dim;
        if (o->model == 0) {
            memcpy(v, w, (size_t)(dim + 1) * sizeof *v);
            memcpy(v + dim + 1, c, (size_t)(dim + 1) * sizeof *v);
        } else {
            for (int k = 0; k < dim; k++)
                v[k] = o->model == 2 ? w[k] + c[k] : w[k];
        }
    }
    *out = wv;
    wv = NULL;
    rc = AMUSE_OK;
out:
    amuse_word_vectors_free(wv);
    am__free(W);
    free(cost);
    return rc;
}

int amuse_glove_train(const struct amuse_vocab *vocab, const struct amuse_glove_record *records,
                      int64_t n, const struct amuse_glove_options *o,
                      struct amuse_word_vectors **out, struct amuse_glove_stats *stats)
{
    *out = NULL;
    int rc = check_options(o);
    if (rc != AMUSE_OK)
        return rc;
    if (n < 1)
        return am__fail(AMUSE_EINVAL, "glove: no co-occurrence records to train on");
    int64_t V = amuse_vocab_size(vocab);
    struct am__glove_pair *pairs = malloc((size_t)n * sizeof *pairs);
    if (!pairs)
        return am__fail(AMUSE_ENOMEM, "glove: out of memory for %lld records", (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if ((rc = am__glove_check_record(&records[i], V, "co-occurrences",
                                         (uint64_t)i * sizeof *records)) != AMUSE_OK) {
            free(pairs);
            return rc;
        }
        am__glove_pair_from_record(&pairs[i], &records[i], o->x_max, o->alpha);
    }
    double t0 = omp_get_wtime();
    rc = am__glove_train_pairs(vocab, pairs, n, o, out, stats);
    if (stats)
        stats->seconds_train = omp_get_wtime() - t0;
    free(pairs);
    return rc;
}

/* ----------------------------------------------------------------------------- the pipeline */

struct pair_array {
    struct am__glove_pair *p;
    int64_t n, cap;
    double x_max, alpha;
};

static int append_pairs(void *ctx, const struct amuse_glove_record *r, size_t n)
{
    struct pair_array *a = ctx;
    if (a->n + (int64_t)n > a->cap) {
        if (a->n + (int64_t)n > AM__GLOVE_MAX_RECORDS)
            return am__fail(AMUSE_ETOOBIG, "more than %lld co-occurrence records",
                            AM__GLOVE_MAX_RECORDS);
        int64_t cap = a->cap ? a->cap + a->cap / 2 : (1 << 20);
        if (cap < a->n + (int64_t)n)
            cap = a->n + (int64_t)n;
        struct am__glove_pair *p = realloc(a->p, (size_t)cap * sizeof *p);
        if (!p)
            return am__fail(AMUSE_ENOMEM, "out of memory at %lld co-occurrence records",
                            (long long)a->n);
        a->p = p;
        a->cap = cap;
    }
    for (size_t i = 0; i < n; i++)
        am__glove_pair_from_record(&a->p[a->n++], &r[i], a->x_max, a->alpha);
    return AMUSE_OK;
}

int amuse_glove_pipeline(const char *corpus_path, const struct amuse_glove_options *o,
                         struct amuse_vocab **vocab_out, struct amuse_word_vectors **out,
                         struct amuse_glove_stats *stats)
{
    struct amuse_glove_stats st;
    struct amuse_vocab *vocab = NULL;
    struct pair_array a = {NULL, 0, 0, o->x_max, o->alpha};
    int rc;
    memset(&st, 0, sizeof st);
    *out = NULL;
    if (vocab_out)
        *vocab_out = NULL;
    if ((rc = check_options(o)) != AMUSE_OK)
        return rc;
    double t0 = omp_get_wtime();
    if ((rc = amuse_glove_vocab_count(corpus_path, o, &vocab, NULL)) != AMUSE_OK)
        goto out;
    double t1 = omp_get_wtime();
    if ((rc = amuse_glove_cooccur(corpus_path, vocab, o, append_pairs, &a, &st)) != AMUSE_OK)
        goto out;
    double t2 = omp_get_wtime();
    struct amuse_rng rng;
    amuse_rng_seed(&rng, (o->seed ? o->seed : 1) ^ 0x5eed5eedULL);
    for (int64_t i = a.n; i > 1; i--) {
        int64_t j = (int64_t)amuse_rng_below(&rng, (uint64_t)i);
        struct am__glove_pair t = a.p[i - 1];
        a.p[i - 1] = a.p[j];
        a.p[j] = t;
    }
    double t3 = omp_get_wtime();
    if ((rc = am__glove_train_pairs(vocab, a.p, a.n, o, out, &st)) != AMUSE_OK)
        goto out;
    double t4 = omp_get_wtime();
    st.seconds_vocab = t1 - t0;
    st.seconds_cooccur = t2 - t1;
    st.seconds_shuffle = t3 - t2;
    st.seconds_train = t4 - t3;
    if (stats)
        *stats = st;
    if (vocab_out) {
        *vocab_out = vocab;
        vocab = NULL;
    }
out:
    free(a.p);
    amuse_vocab_free(vocab);
    return rc;
}
