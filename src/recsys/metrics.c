/* metrics.c - accuracy (precision, recall, nDCG, MAP at k) and popularity-bias figures
 * (catalogue coverage, Gini of exposure, ARP, APLT, novelty) of top-k lists against a test
 * matrix. Definitions are in include/amuse/recsys.h. It does not produce the lists. */
#define _POSIX_C_SOURCE 200809L
#include "recsys/recsys_internal.h"

#include "core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int by_float_desc(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a < b) - (a > b);
}

static int in_row(const struct amuse_rec_csr *m, int64_t r, int32_t j)
{
    int64_t lo = m->indptr[r], hi = m->indptr[r + 1];
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (m->indices[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->indptr[r + 1] && m->indices[lo] == j;
}

int amuse_rec_evaluate(const int32_t *recs, int k, const struct amuse_rec_csr *truth,
                       const float *popularity, int64_t n_items, int64_t n_train_users,
                       struct amuse_rec_metrics *out)
{
    memset(out, 0, sizeof *out);
    if (k < 1 || k > AMUSE_REC_MAX_K)
        return am__fail(AMUSE_EINVAL, "k = %d: must be 1..%d", k, AMUSE_REC_MAX_K);
    if (n_items < 1 || truth->cols > n_items)
        return am__fail(AMUSE_EINVAL, "metrics: %lld items, test matrix has %lld columns",
                        (long long)n_items, (long long)truth->cols);
    int64_t *exposure = calloc((size_t)n_items, sizeof *exposure);
    float *sorted = malloc((size_t)n_items * sizeof *sorted);
    if (!exposure || !sorted) {
        free(exposure);
        free(sorted);
        return am__fail(AMUSE_ENOMEM, "out of memory");
    }
    /* The short head: the most popular items that together hold 20% of the training events. */
    double total = 0, head_cut = INFINITY;
    for (int64_t i = 0; i < n_items; i++) {
        sorted[i] = popularity[i];
        total += popularity[i];
    }
    qsort(sorted, (size_t)n_items, sizeof *sorted, by_float_desc);
    for (int64_t i = 0, acc = 0; i < n_items && total > 0; i++) {
        acc += (int64_t)sorted[i];
        if ((double)acc >= 0.2 * total) {
            head_cut = sorted[i]; /* items at least this popular are the head */
            break;
        }
    }
    double sp = 0, sr = 0, sn = 0, sm = 0, sarp = 0, saplt = 0, snov = 0;
    int64_t users = 0, nov_count = 0;
    for (int64_t u = 0; u < truth->rows; u++) {
        int64_t rel = truth->indptr[u + 1] - truth->indptr[u];
        if (rel == 0)
            continue;
        const int32_t *r = recs + (size_t)u * k;
        double hits = 0, dcg = 0, idcg = 0, ap = 0, pop = 0, tail = 0;
        int listed = 0;
        for (int q = 0; q < k; q++) {
            if (r[q] < 0 || r[q] >= n_items)
                continue;
            listed++;
            exposure[r[q]]++;
            pop += popularity[r[q]];
            if (popularity[r[q]] < head_cut)
                tail++;
            snov += -log2((popularity[r[q]] > 1 ? popularity[r[q]] : 1) /
                          (double)(n_train_users > 0 ? n_train_users : 1));
            nov_count++;
            if (in_row(truth, u, r[q])) {
                hits++;
                dcg += 1 / log2(q + 2.0);
                ap += hits / (q + 1);
            }
        }
        int64_t ideal = rel < k ? rel : k;
        for (int64_t q = 0; q < ideal; q++)
            idcg += 1 / log2((double)q + 2.0);
        sp += hits / k;
        sr += hits / (double)rel;
        sn += dcg / idcg;
        sm += ap / (double)ideal;
        sarp += listed ? pop / listed : 0;
        saplt += listed ? tail / listed : 0;
        users++;
    }
    if (users > 0) {
        out->precision = sp / users;
        out->recall = sr / users;
        out->ndcg = sn / users;
        out->map = sm / users;
        out->arp = sarp / users;
        out->aplt = saplt / users;
    }
    out->novelty = nov_count ? snov / nov_count : 0;
    out->users = users;
    /* Coverage and the Gini index of exposure over the whole catalogue. */
    int64_t covered = 0, exposed = 0;
    for (int64_t i = 0; i < n_items; i++) {
        covered += exposure[i] > 0;
        exposed += exposure[i];
        sorted[i] = (float)exposure[i];
    }
    out->coverage = (double)covered / (double)n_items;
    qsort(sorted, (size_t)n_items, sizeof *sorted, by_float_desc);
    double g = 0;
    for (int64_t i = 0; i < n_items; i++) { /* ascending rank = n_items - i */
        double rank = (double)(n_items - i);
        g += (2 * rank - (double)n_items - 1) * sorted[i];
    }
    out->gini = exposed > 0 ? g / ((double)n_items * (double)exposed) : 0;
    free(exposure);
    free(sorted);
    return AMUSE_OK;
}
