/* train.c - training the recommenders: popularity, item-kNN neighbour lists, implicit ALS
 * (conjugate gradient per row as `implicit` does, and the direct dense solve as the reference),
 * and BPR by Hogwild SGD. Also the small dense helpers they share (Gram matrix, Cholesky, top-k).
 * Under MPI (the amuse command under mpirun), ALS splits users and items across ranks and gathers
 * the factors after each half-iteration; every rank holds the whole event matrix.
 * It does not score users (recommend.c) or read files (data.c, model_io.c). */
#define _POSIX_C_SOURCE 200809L
#include "recsys/recsys_internal.h"

#include "amuse/rng.h"
#include "amuse/runtime.h"
#include "amuse/word2vec.h"
#include "core/blas.h"
#include "core/internal.h"
#include "core/mpi.h"
#include "text/word2vec_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *amuse_rec_algo_name(int algo)
{
    static const char *const names[] = {"pop", "itemknn", "als", "bpr"};
    return algo >= 0 && algo < 4 ? names[algo] : NULL;
}

int amuse_rec_algo_parse(const char *name)
{
    for (int a = 0; a < 4; a++)
        if (name && strcmp(name, amuse_rec_algo_name(a)) == 0)
            return a;
    return -1;
}

void amuse_rec_options_default(struct amuse_rec_options *o, int algo)
{
    memset(o, 0, sizeof *o);
    o->algo = algo;
    o->factors = 64;
    o->iters = algo == AMUSE_REC_BPR ? 100 : 15;
    o->reg = algo == AMUSE_REC_BPR ? 0.01 : 0.1;
    o->alpha = 10;
    o->solver = AMUSE_REC_SOLVER_CG;
    o->cg_steps = 3;
    o->learning_rate = 0.05;
    o->neighbours = 100;
    o->shrink = 10;
    o->binary = 0;
    o->seed = 1;
}

/* ---------------------------------------------------------------------------- dense helpers */

void am__rec_gram(const float *Y, int64_t rows, int f, double reg, float *out)
{
    if (rows > 0)
        am__sgemm(1, 0, f, f, (int)rows, 1.0f, Y, f, Y, f, 0.0f, out, f);
    else
        memset(out, 0, (size_t)f * (size_t)f * sizeof *out);
    for (int a = 0; a < f; a++)
        out[a * f + a] += (float)reg;
}

int am__rec_cholesky_solve(double *A, double *b, int f)
{
    for (int j = 0; j < f; j++) {
        double s = A[j * f + j];
        for (int k = 0; k < j; k++)
            s -= A[j * f + k] * A[j * f + k];
        if (!(s > 0))
            return -1;
        double d = sqrt(s);
        A[j * f + j] = d;
        for (int i = j + 1; i < f; i++) {
            double t = A[i * f + j];
            for (int k = 0; k < j; k++)
                t -= A[i * f + k] * A[j * f + k];
            A[i * f + j] = t / d;
        }
    }
    for (int i = 0; i < f; i++) { /* L y = b */
        double t = b[i];
        for (int k = 0; k < i; k++)
            t -= A[i * f + k] * b[k];
        b[i] = t / A[i * f + i];
    }
    for (int i = f - 1; i >= 0; i--) { /* L^T x = y */
        double t = b[i];
        for (int k = i + 1; k < f; k++)
            t -= A[k * f + i] * b[k];
        b[i] = t / A[i * f + i];
    }
    return 0;
}

static float dot(const float *a, const float *b, int f)
{
    float s = 0;
    for (int k = 0; k < f; k++)
        s += a[k] * b[k];
    return s;
}

static void matvec(const float *M, const float *x, int f, float *out)
{
    for (int a = 0; a < f; a++)
        out[a] = dot(M + (size_t)a * f, x, f);
}

/* scratch: at least f * f + 4 * f doubles (direct) / 3 * f floats (CG); callers pass the
 * larger, as doubles. */
void am__rec_als_row(float *x, const float *B, const float *gram, int f, const int32_t *idx,
                     const float *val, int64_t n, double alpha, int cg_steps, float *scratch)
{
    if (n == 0) {
        memset(x, 0, (size_t)f * sizeof *x);
        return;
    }
    if (cg_steps <= 0) { /* the reference: A = gram + sum (c - 1) b b^T, rhs = sum c b */
        double *A = (double *)(void *)scratch, *rhs = A + (size_t)f * f;
        for (int a = 0; a < f * f; a++)
            A[a] = gram[a];
        memset(rhs, 0, (size_t)f * sizeof *rhs);
        for (int64_t e = 0; e < n; e++) {
            const float *b = B + (size_t)idx[e] * f;
            double c1 = alpha * val[e];
            for (int a = 0; a < f; a++) {
                rhs[a] += (1 + c1) * b[a];
                for (int c = 0; c < f; c++)
                    A[a * f + c] += c1 * b[a] * b[c];
            }
        }
        if (am__rec_cholesky_solve(A, rhs, f) == 0)
            for (int a = 0; a < f; a++)
                x[a] = (float)rhs[a];
        return;
    }
    float *r = scratch, *p = r + f, *Ap = p + f;
    matvec(gram, x, f, r);
    for (int a = 0; a < f; a++)
        r[a] = -r[a];
    for (int64_t e = 0; e < n; e++) {
        const float *b = B + (size_t)idx[e] * f;
        float c1 = (float)(alpha * val[e]);
        float t = (1 + c1) - c1 * dot(b, x, f);
        for (int a = 0; a < f; a++)
            r[a] += t * b[a];
    }
    memcpy(p, r, (size_t)f * sizeof *p);
    float rs_old = dot(r, r, f);
    for (int it = 0; it < cg_steps && rs_old > 1e-20f; it++) {
        matvec(gram, p, f, Ap);
        for (int64_t e = 0; e < n; e++) {
            const float *b = B + (size_t)idx[e] * f;
            float t = (float)(alpha * val[e]) * dot(b, p, f);
            for (int a = 0; a < f; a++)
                Ap[a] += t * b[a];
        }
        float pAp = dot(p, Ap, f);
        if (!(pAp > 0))
            break;
        float step = rs_old / pAp;
        for (int a = 0; a < f; a++) {
            x[a] += step * p[a];
            r[a] -= step * Ap[a];
        }
        float rs_new = dot(r, r, f);
        for (int a = 0; a < f; a++)
            p[a] = r[a] + (rs_new / rs_old) * p[a];
        rs_old = rs_new;
    }
}

/* Rows [lo, hi) of one half-iteration (the whole of it on one rank, a share under MPI). */
static int als_half_rows(float *A, const float *B, int64_t b_rows, int f,
                         const struct amuse_rec_csr *M, int64_t lo_row, int64_t hi_row,
                         double alpha, double reg, int solver, int cg_steps)
{
    if (f < 1 || f > AMUSE_REC_MAX_FACTORS)
        return am__fail(AMUSE_EINVAL, "factors %d: must be 1..%d", f, AMUSE_REC_MAX_FACTORS);
    if (M->cols != b_rows)
        return am__fail(AMUSE_ESHAPE, "ALS: matrix has %lld columns, factors %lld rows",
                        (long long)M->cols, (long long)b_rows);
    float *gram = malloc((size_t)f * f * sizeof *gram);
    int threads = amuse_get_threads();
    size_t per = ((size_t)f * f + 4 * (size_t)f) * 2; /* floats: room for the doubles */
    float *scratch = malloc(per * (size_t)threads * sizeof *scratch);
    if (!gram || !scratch) {
        free(gram);
        free(scratch);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    am__rec_gram(B, b_rows, f, reg, gram);
    int steps = solver == AMUSE_REC_SOLVER_DIRECT ? 0 : (cg_steps > 0 ? cg_steps : 3);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (int64_t r = lo_row; r < hi_row; r++) {
        int64_t lo = M->indptr[r];
        am__rec_als_row(A + (size_t)r * f, B, gram, f, M->indices + lo, M->values + lo,
                        M->indptr[r + 1] - lo, alpha, steps,
                        scratch + per * (size_t)omp_get_thread_num());
    }
    free(gram);
    free(scratch);
    return AMUSE_OK;
}

int amuse_rec_als_half(float *A, const float *B, int64_t b_rows, int f,
                       const struct amuse_rec_csr *M, double alpha, double reg, int solver,
                       int cg_steps)
{
    return als_half_rows(A, B, b_rows, f, M, 0, M->rows, alpha, reg, solver, cg_steps);
}

/* A half-iteration across MPI ranks: each solves its share of A's rows (core/mpi.h's split), then
 * the shares are gathered so every rank holds all of A for the next half. One rank: the same as
 * amuse_rec_als_half. */
static int als_half_ranks(float *A, const float *B, int64_t b_rows, int f,
                          const struct amuse_rec_csr *M, double alpha, double reg, int solver,
                          int cg_steps)
{
    int ranks = am__mpi_size(), rank = am__mpi_rank();
    int rc = als_half_rows(A, B, b_rows, f, M, am__mpi_share(M->rows, rank, ranks),
                           am__mpi_share(M->rows, rank + 1, ranks), alpha, reg, solver, cg_steps);
    if (rc == AMUSE_OK && ranks > 1)
        rc = am__mpi_allgather_rows(A, M->rows, f);
    return rc;
}

/* ------------------------------------------------------------------------------------ top-k */

static void sift_down(float *hs, int32_t *hi, int n, int at)
{
    for (;;) {
        int l = 2 * at + 1, m = at;
        /* a min-heap by score; among equal scores the larger index is "smaller" (dropped first) */
        if (l < n && (hs[l] < hs[m] || (hs[l] == hs[m] && hi[l] > hi[m])))
            m = l;
        if (l + 1 < n && (hs[l + 1] < hs[m] || (hs[l + 1] == hs[m] && hi[l + 1] > hi[m])))
            m = l + 1;
        if (m == at)
            return;
        float ts = hs[m];
        hs[m] = hs[at];
        hs[at] = ts;
        int32_t ti = hi[m];
        hi[m] = hi[at];
        hi[at] = ti;
        at = m;
    }
}

int am__rec_top_k(const float *scores, int64_t n, int k, int32_t *out)
{
    if (k <= 0)
        return 0;
    float *hs = malloc((size_t)k * sizeof *hs);
    int32_t *hi = malloc((size_t)k * sizeof *hi);
    if (!hs || !hi) {
        free(hs);
        free(hi);
        return 0;
    }
    int m = 0;
    for (int64_t j = 0; j < n; j++) {
        float s = scores[j];
        if (s == -INFINITY || s != s)
            continue;
        if (m < k) {
            hs[m] = s;
            hi[m] = (int32_t)j;
            m++;
            for (int at = m - 1; at > 0;) { /* sift up */
                int parent = (at - 1) / 2;
                if (hs[at] < hs[parent] || (hs[at] == hs[parent] && hi[at] > hi[parent])) {
                    float ts = hs[at];
                    hs[at] = hs[parent];
                    hs[parent] = ts;
                    int32_t ti = hi[at];
                    hi[at] = hi[parent];
                    hi[parent] = ti;
                    at = parent;
                } else {
                    break;
                }
            }
        } else if (s > hs[0]) {
            hs[0] = s;
            hi[0] = (int32_t)j;
            sift_down(hs, hi, m, 0);
        }
    }
    int total = m;
    while (m > 0) { /* pop the smallest to the back: best first */
        out[m - 1] = hi[0];
        m--;
        hs[0] = hs[m];
        hi[0] = hi[m];
        sift_down(hs, hi, m, 0);
    }
    free(hs);
    free(hi);
    return total;
}

/* ---------------------------------------------------------------------------------- item-kNN */

struct sim_entry {
    int32_t item;
    float sim;
};

static int by_sim(const void *pa, const void *pb)
{
    const struct sim_entry *a = pa, *b = pb;
    if (a->sim != b->sim)
        return a->sim > b->sim ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

static int item_neighbours(const struct amuse_rec_csr *ui, const struct amuse_rec_csr *iu,
                           int neighbours, double shrink, int32_t *nbr_index, float *nbr_sim)
{
    int64_t ni = iu->rows;
    int threads = amuse_get_threads();
    float *acc = calloc((size_t)ni * (size_t)threads, sizeof *acc);
    int32_t *touched = malloc((size_t)ni * (size_t)threads * sizeof *touched);
    struct sim_entry *ent = malloc((size_t)ni * (size_t)threads * sizeof *ent);
    if (!acc || !touched || !ent) {
        free(acc);
        free(touched);
        free(ent);
        return am__fail(AMUSE_ENOMEM, "out of memory for item-kNN");
    }
#pragma omp parallel for schedule(dynamic, 32) num_threads(threads)
    for (int64_t i = 0; i < ni; i++) {
        int t = omp_get_thread_num();
        float *a = acc + (size_t)t * ni;
        int32_t *tl = touched + (size_t)t * ni;
        struct sim_entry *en = ent + (size_t)t * ni;
        int64_t nt = 0;
        for (int64_t e = iu->indptr[i]; e < iu->indptr[i + 1]; e++) {
            int64_t u = iu->indices[e];
            for (int64_t g = ui->indptr[u]; g < ui->indptr[u + 1]; g++) {
                int32_t j = ui->indices[g];
                if (a[j] == 0)
                    tl[nt++] = j;
                a[j] += 1;
            }
        }
        double ci = (double)(iu->indptr[i + 1] - iu->indptr[i]);
        int64_t ne = 0;
        for (int64_t q = 0; q < nt; q++) {
            int32_t j = tl[q];
            double cj = (double)(iu->indptr[j + 1] - iu->indptr[j]);
            if (j != i)
                en[ne++] = (struct sim_entry){j, (float)(a[j] / (sqrt(ci * cj) + shrink))};
            a[j] = 0;
        }
        qsort(en, (size_t)ne, sizeof *en, by_sim);
        for (int q = 0; q < neighbours; q++) {
            nbr_index[(size_t)i * neighbours + q] = q < ne ? en[q].item : -1;
            nbr_sim[(size_t)i * neighbours + q] = q < ne ? en[q].sim : 0;
        }
    }
    free(acc);
    free(touched);
    free(ent);
    return AMUSE_OK;
}

/* --------------------------------------------------------------------------------------- BPR */

static int has_item(const struct amuse_rec_csr *m, int64_t u, int32_t j)
{
    int64_t lo = m->indptr[u], hi = m->indptr[u + 1];
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (m->indices[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->indptr[u + 1] && m->indices[lo] == j;
}

static int train_bpr(struct amuse_rec_model *m, const struct amuse_rec_options *o)
{
    const struct amuse_rec_csr *ui = m->seen;
    int f = m->factors;
    int32_t *row_of = malloc(((size_t)ui->nnz + 1) * sizeof *row_of);
    if (!row_of)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    for (int64_t u = 0; u < ui->rows; u++)
        for (int64_t e = ui->indptr[u]; e < ui->indptr[u + 1]; e++)
            row_of[e] = (int32_t)u;
    struct amuse_rng init;
    amuse_rng_seed(&init, o->seed);
    for (int64_t a = 0; a < m->n_users * f; a++)
        m->user_factors[a] = (amuse_rng_uniform(&init) - 0.5f) / (float)f;
    for (int64_t a = 0; a < m->n_items * f; a++)
        m->item_factors[a] = (amuse_rng_uniform(&init) - 0.5f) / (float)f;
    int threads = amuse_get_threads();
    float lr = (float)o->learning_rate, reg = (float)o->reg;
    float *X = m->user_factors, *Y = m->item_factors, *bias = m->item_bias;
    for (int epoch = 0; epoch < o->iters && ui->nnz > 0; epoch++) {
#pragma omp parallel num_threads(threads)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            struct amuse_rng rng;
            amuse_rng_seed(&rng, o->seed * 1000003u + (uint64_t)epoch * 7919u + (uint64_t)t);
            int64_t samples = ui->nnz / nt + (t < ui->nnz % nt);
            for (int64_t s = 0; s < samples; s++) {
                int64_t e = (int64_t)amuse_rng_below(&rng, (uint64_t)ui->nnz);
                int64_t u = row_of[e];
                int32_t i = ui->indices[e], j = -1;
                int64_t seen = ui->indptr[u + 1] - ui->indptr[u];
                if (seen >= m->n_items)
                    continue;
                for (int tries = 0; tries < 32; tries++) {
                    j = (int32_t)amuse_rng_below(&rng, (uint64_t)m->n_items);
                    if (!has_item(ui, u, j))
                        break;
                    j = -1;
                }
                if (j < 0)
                    continue;
                float *xu = X + (size_t)u * f, *yi = Y + (size_t)i * f, *yj = Y + (size_t)j * f;
                float x = bias[i] - bias[j];
                for (int k = 0; k < f; k++)
                    x += xu[k] * (yi[k] - yj[k]);
                float z = 1.0f / (1.0f + expf(x));
                for (int k = 0; k < f; k++) {
                    float xuk = xu[k], yik = yi[k], yjk = yj[k];
                    xu[k] += lr * (z * (yik - yjk) - reg * xuk);
                    yi[k] += lr * (z * xuk - reg * yik);
                    yj[k] += lr * (-z * xuk - reg * yjk);
                }
                bias[i] += lr * (z - reg * bias[i]);
                bias[j] += lr * (-z - reg * bias[j]);
            }
        }
    }
    free(row_of);
    return AMUSE_OK;
}

/* --------------------------------------------------------------------------------------- ALS */

float am__rec_ipw_weight(const struct amuse_rec_model *m, int64_t item)
{
    if (!(m->opt.ipw > 0) || m->popularity[item] <= 0)
        return 1.0f;
    return (float)pow(m->mean_popularity / m->popularity[item], m->opt.ipw);
}

static int train_als(struct amuse_rec_model *m, const struct amuse_rec_options *o,
                     struct amuse_rec_csr *iu)
{
    int f = m->factors;
    struct amuse_rng rng;
    amuse_rng_seed(&rng, o->seed);
    for (int64_t a = 0; a < m->n_users * f; a++)
        m->user_factors[a] = 0.01f * amuse_rng_normal(&rng);
    for (int64_t a = 0; a < m->n_items * f; a++)
        m->item_factors[a] = 0.01f * amuse_rng_normal(&rng);
    /* Inverse-propensity weights change the training values only: the user rows get a copy. */
    struct amuse_rec_csr ui = *m->seen;
    float *weighted = NULL;
    if (o->ipw > 0) {
        weighted = malloc(((size_t)ui.nnz + 1) * sizeof *weighted);
        if (!weighted)
            return am__fail(AMUSE_ENOMEM, "out of memory");
        for (int64_t e = 0; e < ui.nnz; e++)
            weighted[e] = ui.values[e] * am__rec_ipw_weight(m, ui.indices[e]);
        ui.values = weighted;
        for (int64_t i = 0; i < iu->rows; i++)
            for (int64_t e = iu->indptr[i]; e < iu->indptr[i + 1]; e++)
                iu->values[e] *= am__rec_ipw_weight(m, i);
    }
    double t0 = now_seconds();
    for (int it = 0; it < o->iters; it++) {
        int rc = als_half_ranks(m->user_factors, m->item_factors, m->n_items, f, &ui, o->alpha,
                                o->reg, o->solver, o->cg_steps);
        if (!rc)
            rc = als_half_ranks(m->item_factors, m->user_factors, m->n_users, f, iu, o->alpha,
                                o->reg, o->solver, o->cg_steps);
        if (rc) {
            free(weighted);
            return rc;
        }
    }
    m->seconds_per_iter = o->iters > 0 ? (now_seconds() - t0) / o->iters : 0;
    free(weighted);
    return AMUSE_OK;
}

/* ------------------------------------------------------------------------------------ model */

void am__rec_items_free(struct amuse_rec_items *it, int64_t n)
{
    if (!it)
        return;
    for (int64_t i = 0; i < n; i++) {
        if (it->title)
            free(it->title[i]);
        if (it->tags)
            free(it->tags[i]);
    }
    free(it->title);
    free(it->tags);
    free(it);
}

void amuse_rec_model_free(struct amuse_rec_model *m)
{
    if (!m)
        return;
    amuse_vocab_free(m->users);
    amuse_vocab_free(m->items);
    free(m->user_factors);
    free(m->item_factors);
    free(m->item_bias);
    free(m->item_gram);
    free(m->popularity);
    free(m->nbr_index);
    free(m->nbr_sim);
    amuse_rec_csr_free(m->seen);
    am__rec_items_free(m->meta, m->n_items);
    free(m->content);
    free(m);
}

static int check_options(const struct amuse_rec_options *o)
{
    if (!amuse_rec_algo_name(o->algo))
        return am__fail(AMUSE_EINVAL, "algorithm %d: unknown", o->algo);
    if (o->factors < 1 || o->factors > AMUSE_REC_MAX_FACTORS)
        return am__fail(AMUSE_EINVAL, "factors %d: must be 1..%d", o->factors,
                        AMUSE_REC_MAX_FACTORS);
    if (o->iters < 0 || o->iters > 100000)
        return am__fail(AMUSE_EINVAL, "iterations %d: must be 0..100000", o->iters);
    if (!(o->reg >= 0) || !(o->alpha >= 0) || !(o->shrink >= 0) || !(o->learning_rate > 0) ||
        !(o->ipw >= 0 && o->ipw <= 2))
        return am__fail(AMUSE_EINVAL, "reg, alpha and shrink must be >= 0, learning rate > 0, "
                        "ipw in [0, 2]");
    if (o->neighbours < 1 || o->neighbours > 10000)
        return am__fail(AMUSE_EINVAL, "neighbours %d: must be 1..10000", o->neighbours);
    if (o->cg_steps < 0 || o->cg_steps > 1000)
        return am__fail(AMUSE_EINVAL, "cg steps %d: must be 0..1000", o->cg_steps);
    return AMUSE_OK;
}

int amuse_rec_train(const struct amuse_rec_data *d, const struct amuse_rec_options *o,
                    struct amuse_rec_model **out)
{
    *out = NULL;
    int rc = check_options(o);
    if (rc)
        return rc;
    if (!d || d->n == 0)
        return am__fail(AMUSE_EINVAL, "no training events");
    double t0 = now_seconds();
    struct amuse_rec_csr *iu = NULL;
    struct amuse_rec_model *m = calloc(1, sizeof *m);
    if (!m)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    m->opt = *o;
    if ((rc = am__vocab_clone(d->users, &m->users)) || (rc = am__vocab_clone(d->items, &m->items)))
        goto out;
    m->n_users = amuse_vocab_size(d->users);
    m->n_items = amuse_vocab_size(d->items);
    if ((rc = amuse_rec_csr_build(d, 0, &m->seen)) || (rc = amuse_rec_csr_build(d, 1, &iu)))
        goto out;
    if (o->binary) {
        for (int64_t e = 0; e < m->seen->nnz; e++)
            m->seen->values[e] = 1;
        for (int64_t e = 0; e < iu->nnz; e++)
            iu->values[e] = 1;
    }
    m->neighbours = o->neighbours;
    m->popularity = malloc((size_t)m->n_items * sizeof *m->popularity);
    m->nbr_index = malloc((size_t)m->n_items * m->neighbours * sizeof *m->nbr_index);
    m->nbr_sim = malloc((size_t)m->n_items * m->neighbours * sizeof *m->nbr_sim);
    if (!m->popularity || !m->nbr_index || !m->nbr_sim) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < m->n_items; i++) {
        m->popularity[i] = (float)(iu->indptr[i + 1] - iu->indptr[i]);
        m->mean_popularity += m->popularity[i] / (double)m->n_items;
    }
    /* Neighbours serve item-kNN and every model's explanations. */
    if ((rc = item_neighbours(m->seen, iu, m->neighbours, o->shrink, m->nbr_index, m->nbr_sim)))
        goto out;
    if (o->algo == AMUSE_REC_ALS || o->algo == AMUSE_REC_BPR) {
        m->factors = o->factors;
        m->user_factors = calloc((size_t)m->n_users * m->factors, sizeof *m->user_factors);
        m->item_factors = calloc((size_t)m->n_items * m->factors, sizeof *m->item_factors);
        if (o->algo == AMUSE_REC_BPR)
            m->item_bias = calloc((size_t)m->n_items, sizeof *m->item_bias);
        if (!m->user_factors || !m->item_factors || (o->algo == AMUSE_REC_BPR && !m->item_bias)) {
            rc = am__fail(AMUSE_ENOMEM, "out of memory for %lld + %lld factor rows",
                          (long long)m->n_users, (long long)m->n_items);
            goto out;
        }
        double t1 = now_seconds();
        rc = o->algo == AMUSE_REC_ALS ? train_als(m, o, iu) : train_bpr(m, o);
        if (rc)
            goto out;
        if (o->algo == AMUSE_REC_BPR && o->iters > 0)
            m->seconds_per_iter = (now_seconds() - t1) / o->iters;
    }
    if ((rc = am__rec_model_prepare(m)))
        goto out;
    m->train_seconds = now_seconds() - t0;
out:
    amuse_rec_csr_free(iu);
    if (rc) {
        amuse_rec_model_free(m);
        return rc;
    }
    *out = m;
    return AMUSE_OK;
}
