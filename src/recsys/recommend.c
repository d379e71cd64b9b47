/* recommend.c - answering "what next for this user": scores from each algorithm, fold-in of a
 * user's items against fixed item factors, filters (seen items, a tag), content blending for
 * cold-start items, popularity-penalised re-ranking, top-k and "because you liked X".
 * It does not train (train.c) and keeps no state between calls: concurrent readers are fine. */
#define _POSIX_C_SOURCE 200809L
#include "recsys/recsys_internal.h"

#include "amuse/word2vec.h"
#include "core/blas.h"
#include "core/internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int am__rec_model_prepare(struct amuse_rec_model *m)
{
    if (m->factors == 0 || m->item_gram)
        return AMUSE_OK;
    int f = m->factors;
    m->item_gram = malloc((size_t)f * f * sizeof *m->item_gram);
    if (!m->item_gram)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    am__rec_gram(m->item_factors, m->n_items, f, m->opt.reg, m->item_gram);
    return AMUSE_OK;
}

/* Fold-in solves the same system as the direct ALS row solve (am__rec_als_row with cg_steps 0,
 * the reference the tests compare against): A = Y^T Y + reg I + sum_e c_e y_e y_e^T with
 * c_e = alpha * value_e, rhs = sum_e (1 + c_e) y_e; but the rank-n update is one GEMM,
 * (c .* Y_u)^T Y_u, over the user's gathered item rows, so a user with a long history costs a
 * fraction of a millisecond. The solve is in double (Cholesky). */
int amuse_rec_fold_in(const struct amuse_rec_model *m, const int32_t *items, const float *values,
                      int n, float *factors)
{
    if (!m->factors || !m->item_gram)
        return am__fail(AMUSE_EINVAL, "fold-in: the %s model has no factors",
                        amuse_rec_algo_name(m->opt.algo));
    if (n < 0)
        return am__fail(AMUSE_EINVAL, "fold-in: %d items", n);
    for (int e = 0; e < n; e++)
        if (items[e] < 0 || items[e] >= m->n_items)
            return am__fail(AMUSE_EINVAL, "fold-in: item index %d: the model has %lld items",
                            (int)items[e], (long long)m->n_items);
    int f = m->factors;
    size_t rows = (size_t)n * f;
    float *Y = malloc((2 * rows + (size_t)f * f + 1) * sizeof *Y);
    double *A = malloc(((size_t)f * f + f) * sizeof *A);
    if (!Y || !A) {
        free(Y);
        free(A);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    float *CY = Y + rows, *G = CY + rows;
    double *rhs = A + (size_t)f * f;
    memset(rhs, 0, (size_t)f * sizeof *rhs);
    for (int e = 0; e < n; e++) {
        double v = values ? values[e] : 1.0;
        if (m->opt.binary)
            v = 1.0;
        double c1 = m->opt.alpha * v * am__rec_ipw_weight(m, items[e]);
        const float *y = m->item_factors + (size_t)items[e] * f;
        for (int k = 0; k < f; k++) {
            Y[(size_t)e * f + k] = y[k];
            CY[(size_t)e * f + k] = (float)(c1 * y[k]);
            rhs[k] += (1 + c1) * y[k];
        }
    }
    if (n > 0) { /* on this thread alone: a product this small loses more to waking threads */
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        am__sgemm(1, 0, f, f, n, 1.0f, CY, f, Y, f, 0.0f, G, f);
        omp_set_num_threads(threads);
    }
    for (int a = 0; a < f * f; a++)
        A[a] = (double)m->item_gram[a] + (n > 0 ? (double)G[a] : 0);
    memset(factors, 0, (size_t)f * sizeof *factors);
    if (n > 0 && am__rec_cholesky_solve(A, rhs, f) == 0)
        for (int k = 0; k < f; k++)
            factors[k] = (float)rhs[k];
    free(Y);
    free(A);
    return AMUSE_OK;
}

/* The cosine of items i and j's factors (0 without factors). */
static float factor_cosine(const struct amuse_rec_model *m, int64_t i, int64_t j)
{
    if (!m->factors)
        return 0;
    const float *x = m->item_factors + (size_t)i * m->factors;
    const float *y = m->item_factors + (size_t)j * m->factors;
    double xy = 0, xx = 0, yy = 0;
    for (int k = 0; k < m->factors; k++) {
        xy += (double)x[k] * y[k];
        xx += (double)x[k] * x[k];
        yy += (double)y[k] * y[k];
    }
    return xx > 0 && yy > 0 ? (float)(xy / sqrt(xx * yy)) : 0;
}

float amuse_rec_item_similarity(const struct amuse_rec_model *m, int64_t i, int64_t j)
{
    if (i < 0 || j < 0 || i >= m->n_items || j >= m->n_items)
        return 0;
    for (int pass = 0; pass < 2; pass++) {
        int64_t a = pass ? j : i, b = pass ? i : j;
        const int32_t *ni = m->nbr_index + (size_t)a * m->neighbours;
        for (int q = 0; q < m->neighbours && ni[q] >= 0; q++)
            if (ni[q] == b)
                return m->nbr_sim[(size_t)a * m->neighbours + q];
    }
    return factor_cosine(m, i, j);
}

int amuse_rec_similar_items(const struct amuse_rec_model *m, int64_t item, int k,
                            struct amuse_rec_hit *hits, int *n)
{
    *n = 0;
    if (k < 1 || k > AMUSE_REC_MAX_K)
        return am__fail(AMUSE_EINVAL, "k = %d: must be 1..%d", k, AMUSE_REC_MAX_K);
    if (item < 0 || item >= m->n_items)
        return am__fail(AMUSE_EINVAL, "item index %lld: the model has %lld items",
                        (long long)item, (long long)m->n_items);
    const int32_t *nb = m->nbr_index + (size_t)item * m->neighbours;
    const float *ns = m->nbr_sim + (size_t)item * m->neighbours;
    int got = 0;
    for (int q = 0; q < m->neighbours && q < k && nb[q] >= 0; q++) {
        hits[got].item = nb[q];
        hits[got].score = ns[q];
        hits[got].because = item;
        got++;
    }
    *n = got;
    return AMUSE_OK;
}

/* 1 if the "a|b|c" list tags holds one of the comma-separated tags in wanted (ASCII case
 * ignored). */
static int has_tag(const char *tags, const char *wanted)
{
    for (const char *w = wanted; *w;) {
        const char *comma = strchr(w, ',');
        size_t n = comma ? (size_t)(comma - w) : strlen(w);
        for (const char *s = tags; n && s && *s;) {
            const char *bar = strchr(s, '|');
            size_t len = bar ? (size_t)(bar - s) : strlen(s);
            if (len == n && strncasecmp(s, w, n) == 0)
                return 1;
            s = bar ? bar + 1 : s + len;
        }
        w = comma ? comma + 1 : w + n;
    }
    return 0;
}

/* Collaborative scores for every item from the user's items (or the popularity for pop). */
static int score_items(const struct amuse_rec_model *m, const int32_t *items, const float *values,
                       int n, int64_t user, float *scores)
{
    int64_t ni = m->n_items;
    if (m->opt.algo == AMUSE_REC_POP) {
        memcpy(scores, m->popularity, (size_t)ni * sizeof *scores);
        return AMUSE_OK;
    }
    if (m->opt.algo == AMUSE_REC_ITEMKNN) {
        memset(scores, 0, (size_t)ni * sizeof *scores);
        for (int e = 0; e < n; e++) {
            const int32_t *nb = m->nbr_index + (size_t)items[e] * m->neighbours;
            const float *ns = m->nbr_sim + (size_t)items[e] * m->neighbours;
            for (int q = 0; q < m->neighbours && nb[q] >= 0; q++)
                scores[nb[q]] += ns[q];
        }
        return AMUSE_OK;
    }
    int f = m->factors;
    float stack[256], *x = f <= 256 ? stack : malloc((size_t)f * sizeof *x);
    if (!x)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    int rc = AMUSE_OK;
    if (user >= 0)
        memcpy(x, m->user_factors + (size_t)user * f, (size_t)f * sizeof *x);
    else
        rc = amuse_rec_fold_in(m, items, values, n, x);
    if (!rc) {
        for (int64_t j = 0; j < ni; j++) {
            const float *y = m->item_factors + (size_t)j * f;
            float s = m->item_bias ? m->item_bias[j] : 0;
            for (int k = 0; k < f; k++)
                s += x[k] * y[k];
            scores[j] = s;
        }
    }
    if (x != stack)
        free(x);
    return rc;
}

static void blend_content(const struct amuse_rec_model *m, const int32_t *items, int n,
                          double weight, float *scores)
{
    int d = m->content_dim;
    double *profile = calloc((size_t)d, sizeof *profile);
    if (!profile)
        return;
    for (int e = 0; e < n; e++)
        for (int k = 0; k < d; k++)
            profile[k] += m->content[(size_t)items[e] * d + k];
    double norm = 0, top = 0;
    for (int k = 0; k < d; k++)
        norm += profile[k] * profile[k];
    for (int64_t j = 0; j < m->n_items; j++)
        if (isfinite(scores[j]) && scores[j] > top)
            top = scores[j];
    norm = norm > 0 ? 1 / sqrt(norm) : 0;
    for (int64_t j = 0; j < m->n_items; j++) {
        if (!isfinite(scores[j]))
            continue;
        double c = 0;
        for (int k = 0; k < d; k++)
            c += profile[k] * m->content[(size_t)j * d + k];
        double w = weight / (1 + m->popularity[j]);
        double cf = top > 0 ? scores[j] / top : scores[j];
        scores[j] = (float)((1 - w) * cf + w * c * norm);
    }
    free(profile);
}

/* Fill hits[c].because with the user's item most similar to hits[c].item: by the item-kNN
 * neighbour lists first (either item in the other's list), in time linear in the user's items
 * times the neighbours, and only for a hit that no neighbour list links to the user by the cosine
 * of the factors. Only positive similarities explain. */
static int explain(const struct amuse_rec_model *m, const int32_t *items, int n,
                   struct amuse_rec_hit *hits, int got)
{
    int64_t ni = m->n_items;
    int nb = m->neighbours;
    unsigned char *mine = calloc((size_t)ni, 1);
    int32_t *slot = malloc((size_t)ni * sizeof *slot);
    float *best = calloc((size_t)got + 1, sizeof *best);
    if (!mine || !slot || !best) {
        free(mine);
        free(slot);
        free(best);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    for (int e = 0; e < n; e++)
        mine[items[e]] = 1;
    for (int64_t j = 0; j < ni; j++)
        slot[j] = -1;
    for (int c = 0; c < got; c++)
        slot[hits[c].item] = c;
    for (int c = 0; c < got; c++) { /* the hit's own neighbours that the user has */
        const int32_t *ix = m->nbr_index + (size_t)hits[c].item * nb;
        const float *sx = m->nbr_sim + (size_t)hits[c].item * nb;
        for (int q = 0; q < nb && ix[q] >= 0; q++)
            if (mine[ix[q]] && sx[q] > best[c]) {
                best[c] = sx[q];
                hits[c].because = ix[q];
            }
    }
    for (int e = 0; e < n; e++) { /* the user's items whose neighbours are hits */
        const int32_t *ix = m->nbr_index + (size_t)items[e] * nb;
        const float *sx = m->nbr_sim + (size_t)items[e] * nb;
        for (int q = 0; q < nb && ix[q] >= 0; q++) {
            int c = slot[ix[q]];
            if (c >= 0 && sx[q] > best[c]) {
                best[c] = sx[q];
                hits[c].because = items[e];
            }
        }
    }
    for (int c = 0; c < got && m->factors; c++) { /* no neighbour link: the factors' cosine */
        if (best[c] > 0)
            continue;
        for (int e = 0; e < n; e++) {
            float s = factor_cosine(m, items[e], hits[c].item);
            if (s > best[c]) {
                best[c] = s;
                hits[c].because = items[e];
            }
        }
    }
    free(mine);
    free(slot);
    free(best);
    return AMUSE_OK;
}

int amuse_rec_recommend(const struct amuse_rec_model *m, const struct amuse_rec_query *q,
                        struct amuse_rec_hit *hits, int *n_out, int *cold)
{
    *n_out = 0;
    if (cold)
        *cold = 0;
    if (q->k < 1 || q->k > AMUSE_REC_MAX_K)
        return am__fail(AMUSE_EINVAL, "k = %d: must be 1..%d", q->k, AMUSE_REC_MAX_K);
    if (q->user >= m->n_users)
        return am__fail(AMUSE_EINVAL, "user index %lld: the model has %lld users",
                        (long long)q->user, (long long)m->n_users);
    if (q->tag && !m->meta)
        return am__fail(AMUSE_EINVAL, "tag filter '%s': the model has no item data", q->tag);
    if (!(q->debias >= 0 && q->debias <= 10))
        return am__fail(AMUSE_EINVAL, "debias %g: must be in [0, 10]", q->debias);
    const int32_t *items = q->items;
    const float *values = q->values;
    int n = q->n_items;
    if (q->user >= 0) {
        int64_t lo = m->seen->indptr[q->user];
        items = m->seen->indices + lo;
        values = m->seen->values + lo;
        n = (int)(m->seen->indptr[q->user + 1] - lo);
    }
    for (int e = 0; e < n; e++)
        if (items[e] < 0 || items[e] >= m->n_items)
            return am__fail(AMUSE_EINVAL, "item index %d: the model has %lld items",
                            (int)items[e], (long long)m->n_items);
    int64_t ni = m->n_items;
    int n_cand = q->debias > 0 ? (q->k * 5 > 100 ? q->k * 5 : 100) : q->k;
    float *scores = malloc((size_t)ni * sizeof *scores);
    int32_t *cand = malloc((size_t)n_cand * sizeof *cand);
    if (!scores || !cand) {
        free(scores);
        free(cand);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    int rc;
    if (n == 0) {
        if (cold)
            *cold = 1;
        memcpy(scores, m->popularity, (size_t)ni * sizeof *scores);
        rc = AMUSE_OK;
    } else {
        rc = score_items(m, items, values, n, q->user, scores);
    }
    if (rc)
        goto out;
    if (q->filter_seen)
        for (int e = 0; e < n; e++)
            scores[items[e]] = -INFINITY;
    if (q->tag)
        for (int64_t j = 0; j < ni; j++)
            if (!m->meta->tags[j] || !has_tag(m->meta->tags[j], q->tag))
                scores[j] = -INFINITY;
    if (q->content_weight > 0 && m->content && n > 0)
        blend_content(m, items, n, q->content_weight, scores);
    int got = am__rec_top_k(scores, ni, n_cand, cand);
    if (q->debias > 0 && got > 0) {
        float hi = scores[cand[0]], lo = scores[cand[got - 1]];
        double maxpop = 0;
        for (int64_t j = 0; j < ni; j++)
            if (m->popularity[j] > maxpop)
                maxpop = m->popularity[j];
        float *re = malloc((size_t)got * sizeof *re);
        int32_t *order = malloc((size_t)got * sizeof *order);
        if (!re || !order) {
            free(re);
            free(order);
            rc = am__fail(AMUSE_ENOMEM, "out of memory");
            goto out;
        }
        for (int c = 0; c < got; c++) {
            double norm = hi > lo ? (scores[cand[c]] - lo) / (hi - lo) : 1;
            double pen = maxpop > 0 ? log1p(m->popularity[cand[c]]) / log1p(maxpop) : 0;
            re[c] = (float)(norm - q->debias * pen);
        }
        int kept = am__rec_top_k(re, got, q->k, order);
        for (int c = 0; c < kept; c++) { /* report the re-ranked score */
            float r = re[order[c]];
            order[c] = cand[order[c]];
            scores[order[c]] = r;
        }
        memcpy(cand, order, (size_t)kept * sizeof *cand);
        got = kept;
        free(re);
        free(order);
    }
    if (got > q->k)
        got = q->k;
    for (int c = 0; c < got; c++) {
        hits[c].item = cand[c];
        hits[c].score = scores[cand[c]];
        hits[c].because = -1;
    }
    if (q->explain && n > 0)
        rc = explain(m, items, n, hits, got);
    if (!rc)
        *n_out = got;
out:
    free(scores);
    free(cand);
    return rc;
}
