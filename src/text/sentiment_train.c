/* text/sentiment_train.c - labelled snippets (TSV) and training of the sentiment model:
 * naive-Bayes log-count ratios over hashed n-grams (Wang and Manning, 2012), then a logistic
 * regression by AdaGrad SGD on those scaled n-grams, the lexicon sums and the averaged word
 * vectors (the n-grams with a smaller step, so that the many rare n-grams of the training domains
 * do not drown the lexicon and vector features that carry over to other domains); then the vectors
 * are folded into one projection per word and the neutral band is chosen on the validation set.
 * Single-threaded and deterministic for a seed. It does not search hyper-parameters: the defaults
 * are fixed and the validation set only places the neutral band. */
#define _POSIX_C_SOURCE 200809L
#include "text/sentiment_internal.h"

#include "amuse/rng.h"
#include "core/internal.h"
#include "text/utf8.h"
#include "text/word2vec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SET_MAX_BYTES     ((size_t)1 << 30)
#define LEXICON_MAX_BYTES ((size_t)64 << 20)

/* ------------------------------------------------------------------------------ data files */

void amuse_sentiment_set_release(struct amuse_sentiment_set *set)
{
    if (!set)
        return;
    for (int64_t i = 0; i < set->n; i++) {
        free(set->ids[i]);
        free(set->texts[i]);
    }
    free(set->ids);
    free(set->texts);
    free(set->ratings);
    memset(set, 0, sizeof *set);
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int amuse_sentiment_set_read(const char *path, double scale, struct amuse_sentiment_set *set)
{
    memset(set, 0, sizeof *set);
    if (!(scale > 0))
        return am__fail(AMUSE_EINVAL, "%s: rating scale must be > 0", path);
    char *data = NULL;
    size_t len;
    int rc = am__read_file(path, SET_MAX_BYTES, &data, &len);
    if (rc != AMUSE_OK)
        return rc;
    int64_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    if (lines > AMUSE_SENTIMENT_MAX_EXAMPLES) {
        free(data);
        return am__fail(AMUSE_ETOOBIG, "%s: more than %d lines", path,
                        AMUSE_SENTIMENT_MAX_EXAMPLES);
    }
    set->ids = calloc((size_t)lines, sizeof *set->ids);
    set->texts = calloc((size_t)lines, sizeof *set->texts);
    set->ratings = calloc((size_t)lines, sizeof *set->ratings);
    if (!set->ids || !set->texts || !set->ratings) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    int64_t lineno = 0;
    for (size_t pos = 0; pos < len;) {
        lineno++;
        char *line = data + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        size_t start = pos;
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        size_t bad;
        if (!am__utf8_valid(line, n, &bad) || memchr(line, '\0', n)) {
            if (am__utf8_valid(line, n, &bad))
                bad = (size_t)((char *)memchr(line, '\0', n) - line);
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: byte %zu: invalid UTF-8", path,
                          (long long)lineno, start + bad);
            goto fail;
        }
        char *t1 = memchr(line, '\t', n);
        char *t2 = t1 ? memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - line)) : NULL;
        if (!t1 || !t2 || t1 == line) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: expected id<TAB>rating<TAB>text", path,
                          (long long)lineno);
            goto fail;
        }
        char num[64];
        size_t nl2 = (size_t)(t2 - t1 - 1);
        char *endp = NULL;
        double r = 0;
        if (nl2 > 0 && nl2 < sizeof num) {
            memcpy(num, t1 + 1, nl2);
            num[nl2] = '\0';
            r = strtod(num, &endp);
        }
        if (!endp || *endp != '\0' || !(r >= -scale && r <= scale)) {
            rc = am__fail(AMUSE_EFORMAT,
                          "%s: line %lld: rating '%.*s' is not a number in "
                          "[%g, %g]",
                          path, (long long)lineno, (int)(nl2 < 40 ? nl2 : 40), t1 + 1, -scale,
                          scale);
            goto fail;
        }
        size_t tl = n - (size_t)(t2 + 1 - line);
        if (tl > AMUSE_SENTIMENT_MAX_TEXT_BYTES) {
            rc = am__fail(AMUSE_ETOOBIG, "%s: line %lld: text of %zu bytes is over the cap of %d",
                          path, (long long)lineno, tl, AMUSE_SENTIMENT_MAX_TEXT_BYTES);
            goto fail;
        }
        int64_t k = set->n;
        set->ids[k] = dup_n(line, (size_t)(t1 - line));
        set->texts[k] = dup_n(t2 + 1, tl);
        set->ratings[k] = (float)(r / scale);
        set->n++;
        if (!set->ids[k] || !set->texts[k]) {
            rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
    }
    free(data);
    if (set->n == 0) {
        amuse_sentiment_set_release(set);
        return am__fail(AMUSE_EINVAL, "%s: no snippets", path);
    }
    return AMUSE_OK;
fail:
    free(data);
    amuse_sentiment_set_release(set);
    return rc;
}

/* ---------------------------------------------------------------------------- word table */

/* Add the lexicon's words with their valences (column AM__SENT_VALENCE / 4). */
static int read_lexicon(const char *path, struct amuse_vocab *words, float **valence, int64_t *cap)
{
    char *data = NULL;
    size_t len;
    int rc = am__read_file(path, LEXICON_MAX_BYTES, &data, &len);
    if (rc != AMUSE_OK)
        return rc;
    int64_t lineno = 0;
    for (size_t pos = 0; pos < len;) {
        lineno++;
        char *line = data + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n && line[n - 1] == '\r')
            n--;
        if (n == 0 || line[0] == '#')
            continue;
        line[n] = '\0';
        char *tab = strchr(line, '\t');
        size_t bad;
        char *endp = NULL;
        double v = tab ? strtod(tab + 1, &endp) : 0;
        if (!tab || endp == tab + 1 || (*endp != '\0' && *endp != '\t') || !(v >= -4 && v <= 4)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: expected word<TAB>valence in [-4, 4]",
                          path, (long long)lineno);
            goto out;
        }
        size_t wl = (size_t)(tab - line);
        if (!am__utf8_valid(line, wl, &bad)) {
            rc = am__fail(AMUSE_EFORMAT, "%s: line %lld: byte %zu: invalid UTF-8", path,
                          (long long)lineno, bad);
            goto out;
        }
        for (size_t i = 0; i < wl; i++)
            if (line[i] >= 'A' && line[i] <= 'Z')
                line[i] = (char)(line[i] - 'A' + 'a');
        /* Entries the tokenizer can never produce as one token (phrases) are skipped. */
        int skip = wl == 0 || wl > AMUSE_SENTIMENT_MAX_TOKEN_BYTES || v == 0;
        for (size_t i = 0; i < wl && !skip; i++)
            skip = line[i] == ' ';
        if (skip || am__vocab_find_len(words, line, wl) >= 0)
            continue;
        int64_t idx;
        if ((rc = am__vocab_add_len(words, line, wl, 1, &idx)) != AMUSE_OK)
            goto out;
        if (idx >= *cap) {
            int64_t nc = *cap * 2 + 1024;
            float *p = realloc(*valence, (size_t)nc * sizeof *p);
            if (!p) {
                rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            *valence = p;
            *cap = nc;
        }
        (*valence)[idx] = (float)(v / 4);
    }
out:
    free(data);
    return rc;
}

/* ---------------------------------------------------------------------------------- training */

void amuse_sentiment_options_default(struct amuse_sentiment_options *o)
{
    memset(o, 0, sizeof *o);
    o->hash_bits = 20;
    o->epochs = 12;
    o->learning_rate = 0.1;
    o->ngram_learning_rate = 0.03;
    o->l2 = 1e-6;
    o->seed = 1;
    o->neutral_threshold = -1;
}

/* Features of a whole set, with the dense part (2 * dim averaged vectors, then the lexicon). */
struct featset {
    int64_t n;
    int64_t *start; /* buckets of example i: bucket[start[i] .. start[i + 1]) */
    uint32_t *bucket;
    float *dense; /* n x ndense */
    int ndense;
};

static void featset_release(struct featset *fs)
{
    free(fs->start);
    free(fs->bucket);
    free(fs->dense);
}

static int featurise(const struct amuse_sentiment_model *m, const struct amuse_sentiment_set *set,
                     const struct amuse_word_vectors *wv, const int64_t *vec_row,
                     struct featset *fs)
{
    int dim = wv ? wv->dim : 0;
    fs->n = set->n;
    fs->ndense = 2 * dim + AM__SENT_DENSE;
    fs->start = calloc((size_t)set->n + 1, sizeof *fs->start);
    fs->dense = calloc((size_t)set->n * (size_t)fs->ndense, sizeof *fs->dense);
    size_t cap = 1 << 16;
    fs->bucket = malloc(cap * sizeof *fs->bucket);
    if (!fs->start || !fs->dense || !fs->bucket)
        return am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
    for (int64_t i = 0; i < set->n; i++) {
        struct amuse_sentiment_tokens t;
        int rc = amuse_sentiment_tokenize(set->texts[i], strlen(set->texts[i]), &t);
        if (rc != AMUSE_OK)
            return am__fail_prefix(rc, "snippet '%s'", set->ids[i]);
        size_t need = (size_t)fs->start[i] + 2 * (size_t)t.n + 1;
        if (need > cap) {
            while (cap < need)
                cap *= 2;
            uint32_t *p = realloc(fs->bucket, cap * sizeof *p);
            if (!p) {
                amuse_sentiment_tokens_release(&t);
                return am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
            }
            fs->bucket = p;
        }
        struct am__sent_features f = {0};
        f.buckets = fs->bucket + fs->start[i];
        f.rows = malloc(((size_t)t.n + 1) * sizeof *f.rows);
        if (!f.rows) {
            amuse_sentiment_tokens_release(&t);
            return am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
        }
        am__sent_features(m, &t, &f);
        fs->start[i + 1] = fs->start[i] + f.n_buckets;
        float *d = fs->dense + i * fs->ndense;
        int nrows = f.n_plain + f.n_neg;
        for (int k = 0; k < nrows && wv; k++) {
            int64_t r = f.rows[k];
            int neg = r < 0;
            const float *v = wv->unit + vec_row[neg ? -r - 1 : r] * dim;
            float w = 1.0f / (float)(neg ? f.n_neg : f.n_plain);
            float *dst = d + (neg ? dim : 0);
            for (int j = 0; j < dim; j++)
                dst[j] += w * v[j];
        }
        memcpy(d + 2 * dim, f.lex, sizeof f.lex);
        free(f.rows);
        amuse_sentiment_tokens_release(&t);
    }
    return AMUSE_OK;
}

static double sigmoid(double z)
{
    return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
}

/* Macro-F1 on valid for each candidate band; returns the best threshold. */
static double choose_threshold(const struct amuse_sentiment_model *m,
                               const struct amuse_sentiment_set *valid, double *best_f1)
{
    struct amuse_sentiment_result *pred = calloc((size_t)valid->n, sizeof *pred);
    double best = 0.05;
    *best_f1 = -1;
    if (!pred)
        return best;
    if (amuse_sentiment_score(m, (const char *const *)valid->texts, NULL, (int)valid->n, pred)) {
        free(pred);
        return best;
    }
    for (int k = 0; k <= 90; k += 2) {
        double t = k / 100.0;
        for (int64_t i = 0; i < valid->n; i++)
            pred[i].label = pred[i].score > t ? 1 : pred[i].score < -t ? -1 : 0;
        struct amuse_sentiment_eval ev;
        amuse_sentiment_evaluate(valid->ratings, pred, valid->n, &ev);
        if (ev.macro_f1 > *best_f1 + 1e-12) {
            *best_f1 = ev.macro_f1;
            best = t;
        }
    }
    free(pred);
    return best;
}

int amuse_sentiment_train(const struct amuse_sentiment_set *train,
                          const struct amuse_sentiment_set *valid,
                          const struct amuse_sentiment_options *o,
                          struct amuse_sentiment_model **out)
{
    *out = NULL;
    struct amuse_sentiment_model *m = NULL;
    struct amuse_word_vectors *wv = NULL;
    struct featset fs = {0};
    float *valence = NULL, *r = NULL, *w = NULL, *u = NULL, *gw = NULL, *gu = NULL;
    int64_t *vec_row = NULL, *order = NULL, cap = 0;
    int rc;
    if (!train || train->n < 2 || o->epochs < 1 || o->epochs > 1000 || !(o->learning_rate > 0) ||
        !(o->ngram_learning_rate > 0) || !(o->l2 >= 0) || o->neutral_threshold >= 1)
        return am__fail(AMUSE_EINVAL,
                        "sentiment training: need at least 2 snippets, epochs "
                        "1..1000, learning rates > 0, l2 >= 0, neutral_threshold < 1");
    if (valid && valid->n > AMUSE_SENTIMENT_MAX_BATCH)
        return am__fail(AMUSE_ETOOBIG, "sentiment training: more than %d validation snippets",
                        AMUSE_SENTIMENT_MAX_BATCH);
    if ((rc = am__sent_model_new(o->hash_bits, &m)) != AMUSE_OK)
        return rc;
    if (o->description && !(m->description = strdup(o->description))) {
        rc = am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
        goto out;
    }
    /* The word table: lexicon words first, then the vectors' words. */
    if (o->lexicon || o->vectors) {
        if ((rc = amuse_vocab_new(&m->words)) != AMUSE_OK)
            goto out;
    }
    if (o->lexicon && (rc = read_lexicon(o->lexicon, m->words, &valence, &cap)) != AMUSE_OK)
        goto out;
    int64_t n_lex = m->words ? amuse_vocab_size(m->words) : 0;
    if (o->vectors) {
        if ((rc = amuse_word_vectors_load(o->vectors, AMUSE_W2V_AUTO, &wv)) != AMUSE_OK)
            goto out;
        for (int64_t i = 0; i < wv->rows; i++) {
            const char *word = amuse_vocab_word(wv->vocab, i);
            if (strlen(word) <= AMUSE_SENTIMENT_MAX_TOKEN_BYTES &&
                (rc = amuse_vocab_add(m->words, word, 1, NULL)) != AMUSE_OK)
                goto out;
        }
    }
    int64_t nw = m->words ? amuse_vocab_size(m->words) : 0;
    if (nw > 0) {
        m->table = calloc((size_t)nw * AM__SENT_TABLE, sizeof *m->table);
        vec_row = malloc((size_t)nw * sizeof *vec_row);
        if (!m->table || !vec_row) {
            rc = am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
            goto out;
        }
        for (int64_t i = 0; i < nw; i++) {
            vec_row[i] = wv ? amuse_vocab_find(wv->vocab, amuse_vocab_word(m->words, i)) : -1;
            m->table[i * AM__SENT_TABLE + AM__SENT_HAS_VECTOR] = vec_row[i] >= 0;
            m->table[i * AM__SENT_TABLE + AM__SENT_VALENCE] = i < n_lex ? valence[i] : 0;
        }
    }
    if ((rc = featurise(m, train, wv, vec_row, &fs)) != AMUSE_OK)
        goto out;
    /* Naive-Bayes log-count ratios over the polar training snippets (add-one smoothing). */
    size_t nb = (size_t)1 << m->hash_bits;
    r = malloc(nb * sizeof *r);
    double *p = calloc(2 * nb, sizeof *p), *q = p ? p + nb : NULL;
    order = malloc((size_t)train->n * sizeof *order);
    if (!r || !p || !order) {
        free(p);
        rc = am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
        goto out;
    }
    int64_t n_pol = 0, n_pos = 0;
    for (int64_t i = 0; i < train->n; i++) {
        int g = amuse_sentiment_gold_label(train->ratings[i]);
        if (g == 0)
            continue;
        order[n_pol++] = i;
        n_pos += g > 0;
        double *acc = g > 0 ? p : q;
        for (int64_t k = fs.start[i]; k < fs.start[i + 1]; k++)
            acc[fs.bucket[k]] += 1;
    }
    if (n_pos == 0 || n_pos == n_pol) {
        free(p);
        rc = am__fail(AMUSE_EINVAL,
                      "sentiment training: the training set needs both positive "
                      "and negative snippets (%lld positive of %lld)",
                      (long long)n_pos, (long long)n_pol);
        goto out;
    }
    double sp = 0, sq = 0;
    for (size_t b = 0; b < nb; b++) {
        sp += p[b] + 1;
        sq += q[b] + 1;
    }
    for (size_t b = 0; b < nb; b++)
        r[b] = (float)log(((p[b] + 1) / sp) / ((q[b] + 1) / sq));
    free(p);
    /* Logistic regression, AdaGrad SGD. */
    int nd = fs.ndense;
    w = calloc(nb, sizeof *w);
    gw = calloc(nb, sizeof *gw);
    u = calloc((size_t)nd + 1, sizeof *u); /* u[nd] is the bias */
    gu = calloc((size_t)nd + 1, sizeof *gu);
    if (!w || !gw || !u || !gu) {
        rc = am__fail(AMUSE_ENOMEM, "sentiment training: out of memory");
        goto out;
    }
    struct amuse_rng rng;
    amuse_rng_seed(&rng, o->seed);
    const float lr = (float)o->learning_rate, nlr = (float)o->ngram_learning_rate;
    const float l2 = (float)o->l2, eps = 1e-8f;
    for (int ep = 0; ep < o->epochs; ep++) {
        amuse_rng_shuffle(&rng, order, n_pol);
        for (int64_t k = 0; k < n_pol; k++) {
            int64_t i = order[k];
            const float *d = fs.dense + i * nd;
            double z = u[nd];
            for (int64_t j = fs.start[i]; j < fs.start[i + 1]; j++)
                z += w[fs.bucket[j]] * r[fs.bucket[j]];
            for (int j = 0; j < nd; j++)
                z += u[j] * d[j];
            double y = train->ratings[i] > 0 ? 1 : -1;
            float g = (float)(-y * sigmoid(-y * z)); /* d softplus(-y z) / dz */
            for (int64_t j = fs.start[i]; j < fs.start[i + 1]; j++) {
                uint32_t b = fs.bucket[j];
                float gr = g * r[b] + l2 * w[b];
                gw[b] += gr * gr;
                w[b] -= nlr * gr / (sqrtf(gw[b]) + eps);
            }
            for (int j = 0; j < nd; j++) {
                float gr = g * d[j] + l2 * u[j];
                gu[j] += gr * gr;
                u[j] -= lr * gr / (sqrtf(gu[j]) + eps);
            }
            gu[nd] += g * g;
            u[nd] -= lr * g / (sqrtf(gu[nd]) + eps);
        }
    }
    /* Fold: n-gram weights times ratios; word vectors into two projections per word. */
    for (size_t b = 0; b < nb; b++)
        m->ngram[b] = w[b] * r[b];
    int dim = wv ? wv->dim : 0;
    for (int k = 0; k < AM__SENT_DENSE; k++)
        m->dense[k] = u[2 * dim + k];
    m->bias = u[nd];
    for (int64_t i = 0; i < nw; i++) {
        if (vec_row[i] < 0)
            continue;
        const float *v = wv->unit + vec_row[i] * dim;
        double a = 0, c = 0;
        for (int j = 0; j < dim; j++) {
            a += (double)v[j] * u[j];
            c += (double)v[j] * u[dim + j];
        }
        m->table[i * AM__SENT_TABLE + AM__SENT_PROJ_PLAIN] = (float)a;
        m->table[i * AM__SENT_TABLE + AM__SENT_PROJ_NEG] = (float)c;
    }
    if (o->neutral_threshold >= 0) {
        m->neutral_threshold = o->neutral_threshold;
    } else if (valid && valid->n > 0) {
        double f1;
        m->neutral_threshold = choose_threshold(m, valid, &f1);
    }
    amuse_sentiment_set_metric(m, "train_snippets", (double)train->n);
    amuse_sentiment_set_metric(m, "train_polar_snippets", (double)n_pol);
    amuse_sentiment_set_metric(m, "lexicon_words", (double)n_lex);
    amuse_sentiment_set_metric(m, "vector_dim", (double)dim);
    *out = m;
    m = NULL;
out:
    amuse_sentiment_free(m);
    amuse_word_vectors_free(wv);
    featset_release(&fs);
    free(valence);
    free(vec_row);
    free(order);
    free(r);
    free(w);
    free(gw);
    free(u);
    free(gu);
    return rc;
}
