/* text/sampling.c - the next-token sampler (amuse/sampling.h) and stop-string matching.
 *
 * One pass copies the scores and applies the repetition penalty; the filters then work on a list
 * of candidate ids. Sorting happens only when top-p needs an order (top-k uses a heap of k), so the
 * common "temperature only" case is two linear passes over the vocabulary. Does not know about
 * models or text: the caller hands it scores and token ids.
 */
#include "amuse/sampling.h"

#include "core/internal.h"
#include "amuse/rng.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AM__SAMPLER_MAX_VOCAB (1 << 24)

struct amuse_sampler {
    struct amuse_sampling s;
    struct amuse_rng rng;
    int vocab;
    float *work;     /* vocab scores after the penalty, then probabilities of candidates */
    int32_t *cand;   /* candidate ids */
    uint32_t *stamp; /* repetition de-duplication: stamp[id] == epoch when already penalised */
    uint32_t epoch;
};

void amuse_sampling_defaults(struct amuse_sampling *s)
{
    memset(s, 0, sizeof *s);
    s->temperature = 1.0f;
    s->top_p = 1.0f;
    s->repetition_penalty = 1.0f;
    s->repetition_window = 64;
}

int amuse_sampling_check(const struct amuse_sampling *s)
{
    /* Written so that NaN fails every test. */
    if (!(s->temperature >= 0.0f && s->temperature <= 100.0f))
        return am__fail(AMUSE_EINVAL, "temperature: %g is outside [0, 100]", (double)s->temperature);
    if (s->top_k < 0)
        return am__fail(AMUSE_EINVAL, "top_k: %d is negative", s->top_k);
    if (!(s->top_p > 0.0f && s->top_p <= 1.0f))
        return am__fail(AMUSE_EINVAL, "top_p: %g is outside (0, 1]", (double)s->top_p);
    if (!(s->min_p >= 0.0f && s->min_p < 1.0f))
        return am__fail(AMUSE_EINVAL, "min_p: %g is outside [0, 1)", (double)s->min_p);
    if (!(s->repetition_penalty >= 1.0f && s->repetition_penalty <= 10.0f))
        return am__fail(AMUSE_EINVAL, "repetition_penalty: %g is outside [1, 10]",
                        (double)s->repetition_penalty);
    if (s->repetition_window < 0)
        return am__fail(AMUSE_EINVAL, "repetition_window: %d is negative", s->repetition_window);
    return 0;
}

int amuse_sampler_new(struct amuse_sampler **out, const struct amuse_sampling *s, int vocab_size)
{
    *out = NULL;
    int st = amuse_sampling_check(s);
    if (st)
        return st;
    if (vocab_size < 1 || vocab_size > AM__SAMPLER_MAX_VOCAB)
        return am__fail(AMUSE_EINVAL, "sampler: vocabulary size %d is outside [1, %d]", vocab_size,
                        AM__SAMPLER_MAX_VOCAB);
    struct amuse_sampler *sm = calloc(1, sizeof *sm);
    if (!sm)
        return am__fail(AMUSE_ENOMEM, "sampler: out of memory");
    sm->s = *s;
    sm->vocab = vocab_size;
    sm->work = malloc((size_t)vocab_size * sizeof *sm->work);
    sm->cand = malloc((size_t)vocab_size * sizeof *sm->cand);
    sm->stamp = calloc((size_t)vocab_size, sizeof *sm->stamp);
    if (!sm->work || !sm->cand || !sm->stamp) {
        amuse_sampler_free(sm);
        return am__fail(AMUSE_ENOMEM, "sampler: out of memory for %d tokens", vocab_size);
    }
    amuse_rng_seed(&sm->rng, s->seed);
    *out = sm;
    return 0;
}

void amuse_sampler_free(struct amuse_sampler *sm)
{
    if (!sm)
        return;
    free(sm->work);
    free(sm->cand);
    free(sm->stamp);
    free(sm);
}

void amuse_sampler_reseed(struct amuse_sampler *sm, uint64_t seed)
{
    sm->s.seed = seed;
    amuse_rng_seed(&sm->rng, seed);
}

void amuse_sampler_log_probs(float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        p[i] = logf(p[i] > 1e-30f ? p[i] : 1e-30f);
}

/* ---------------------------------------------------------------- ordering helpers */

/* a ranks before b: higher score, then lower id. */
static int ranks_before(const float *w, int32_t a, int32_t b)
{
    return w[a] > w[b] || (w[a] == w[b] && a < b);
}

/* Min-heap (by rank: the root is the worst kept candidate) of the best k ids. */
static void heap_sift_down(const float *w, int32_t *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, worst = i;
        if (l < n && ranks_before(w, h[worst], h[l]))
            worst = l;
        if (r < n && ranks_before(w, h[worst], h[r]))
            worst = r;
        if (worst == i)
            return;
        int32_t t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* Keep the k best of cand[0..n) in cand[0..k), in no particular order. */
static int keep_top_k(const float *w, int32_t *cand, int n, int k)
{
    if (k <= 0 || k >= n)
        return n;
    for (int i = k / 2 - 1; i >= 0; i--)
        heap_sift_down(w, cand, k, i);
    for (int i = k; i < n; i++) {
        if (ranks_before(w, cand[i], cand[0])) {
            cand[0] = cand[i];
            heap_sift_down(w, cand, k, 0);
        }
    }
    return k;
}

/* qsort takes no context argument: the scores it ranks by, for this thread. */
static _Thread_local const float *tl_sort_scores;

static int by_rank(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (ranks_before(tl_sort_scores, a, b))
        return -1;
    return ranks_before(tl_sort_scores, b, a) ? 1 : 0;
}

/* ---------------------------------------------------------------- the pipeline */

int amuse_sampler_next(struct amuse_sampler *sm, const float *scores, const int32_t *history,
                       int64_t n_history, const uint8_t *allowed, int32_t *token)
{
    const int V = sm->vocab;
    float *w = sm->work;
    memcpy(w, scores, (size_t)V * sizeof *w);

    /* 1. Repetition penalty, once per distinct recent token. */
    if (sm->s.repetition_penalty != 1.0f && n_history > 0 && sm->s.repetition_window > 0) {
        if (++sm->epoch == 0) { /* wrapped: clear the stamps */
            memset(sm->stamp, 0, (size_t)V * sizeof *sm->stamp);
            sm->epoch = 1;
        }
        int64_t from = n_history > sm->s.repetition_window ? n_history - sm->s.repetition_window : 0;
        for (int64_t i = from; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= V || sm->stamp[t] == sm->epoch)
                continue;
            sm->stamp[t] = sm->epoch;
            w[t] = w[t] > 0 ? w[t] / sm->s.repetition_penalty : w[t] * sm->s.repetition_penalty;
        }
    }

    /* Candidates: allowed, usable scores. */
    int n = 0;
    int32_t best = -1;
    for (int32_t i = 0; i < V; i++) {
        if ((allowed && !allowed[i]) || isnan(w[i]))
            continue;
        sm->cand[n++] = i;
        if (best < 0 || w[i] > w[best])
            best = i;
    }
    if (n == 0)
        return am__fail(AMUSE_EINVAL, "sampler: no token can be chosen (every score is NaN or "
                                      "every token is excluded)");
    /* 2. Greedy. A +inf score also wins outright: softmax would be NaN. */
    if (sm->s.temperature == 0.0f || isinf(w[best])) {
        *token = best;
        return 0;
    }

    /* 3. top-k. */
    n = keep_top_k(w, sm->cand, n, sm->s.top_k);

    /* 5 needs the candidates in rank order. */
    int sorted = 0;
    if (sm->s.top_p < 1.0f && n > 1) {
        tl_sort_scores = w;
        qsort(sm->cand, (size_t)n, sizeof *sm->cand, by_rank);
        sorted = 1;
    }

    /* 4. Probabilities (unnormalised, the best is exp(0) = 1), stored over the scores. */
    const float top = w[best];
    const float inv_t = 1.0f / sm->s.temperature;
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        int32_t t = sm->cand[i];
        float p = isinf(w[t]) ? 0.0f : expf((w[t] - top) * inv_t); /* -inf -> 0 */
        w[t] = p;
        total += p;
    }

    /* 5. top-p: the shortest rank-ordered prefix whose mass reaches top_p. */
    if (sorted) {
        double need = (double)sm->s.top_p * total, mass = 0.0;
        int keep = 0;
        while (keep < n) {
            mass += w[sm->cand[keep++]];
            if (mass >= need)
                break;
        }
        n = keep;
        total = mass;
    }

    /* 6. min-p, relative to the best token's probability (1 here). */
    if (sm->s.min_p > 0.0f) {
        int keep = 0;
        double mass = 0.0;
        for (int i = 0; i < n; i++) {
            int32_t t = sm->cand[i];
            if (w[t] >= sm->s.min_p || t == best) {
                sm->cand[keep++] = t;
                mass += w[t];
            }
        }
        n = keep;
        total = mass;
    }

    /* Draw: 53 random bits. */
    double u = (double)(amuse_rng_next(&sm->rng) >> 11) * (1.0 / 9007199254740992.0) * total;
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        acc += w[sm->cand[i]];
        if (u < acc) {
            *token = sm->cand[i];
            return 0;
        }
    }
    /* Rounding left u at the very top: the last candidate with any mass. */
    for (int i = n - 1; i >= 0; i--) {
        if (w[sm->cand[i]] > 0.0f) {
            *token = sm->cand[i];
            return 0;
        }
    }
    *token = best;
    return 0;
}

int amuse_sampler_next_probs(struct amuse_sampler *sm, float *probs, const int32_t *history,
                             int64_t n_history, const uint8_t *allowed, int32_t *token)
{
    const struct amuse_sampling *s = &sm->s;
    int plain = s->temperature == 1.0f && (s->top_k <= 0 || s->top_k >= sm->vocab) &&
                s->top_p >= 1.0f && s->min_p <= 0.0f &&
                (s->repetition_penalty == 1.0f || s->repetition_window <= 0 || n_history == 0);
    double total = 0.0;
    if (plain)
        for (int32_t i = 0; i < sm->vocab; i++)
            if ((!allowed || allowed[i]) && probs[i] > 0.0f) /* NaN fails the test */
                total += probs[i];
    if (!plain || !(total > 0.0) || isinf(total)) {
        amuse_sampler_log_probs(probs, sm->vocab);
        return amuse_sampler_next(sm, probs, history, n_history, allowed, token);
    }
    double u = (double)(amuse_rng_next(&sm->rng) >> 11) * (1.0 / 9007199254740992.0) * total;
    double acc = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < sm->vocab; i++) {
        if ((allowed && !allowed[i]) || !(probs[i] > 0.0f))
            continue;
        acc += probs[i];
        last = i;
        if (u < acc) {
            *token = i;
            return 0;
        }
    }
    *token = last; /* rounding left u at the very top */
    return 0;
}

/* ---------------------------------------------------------------- stop strings */

int64_t amuse_stop_find(const char *text, size_t len, const char *const *stops, int n_stops,
                        size_t *hold)
{
    int64_t first = -1;
    size_t keep = 0;
    for (int s = 0; s < n_stops; s++) {
        const char *stop = stops[s];
        size_t m = stop ? strlen(stop) : 0;
        if (m == 0)
            continue;
        /* A full occurrence, earliest first. */
        for (size_t i = 0; i + m <= len; i++) {
            if (first >= 0 && (int64_t)i >= first)
                break;
            if (text[i] == stop[0] && memcmp(text + i, stop, m) == 0) {
                first = (int64_t)i;
                break;
            }
        }
        /* The longest proper prefix of the stop that ends the text. */
        size_t k = m - 1 < len ? m - 1 : len;
        for (; k > keep; k--) {
            if (memcmp(text + len - k, stop, k) == 0) {
                keep = k;
                break;
            }
        }
    }
    if (hold)
        *hold = first >= 0 ? 0 : keep;
    return first;
}
