/* text/sentiment_model.c - the sentiment model: features of a tokenized text, scoring, the model
 * directory (config.json + model.safetensors + words.vocab), the fixed data split and the
 * evaluation figures. Training is in sentiment_train.c; the tokenizer in sentiment_tokenize.c.
 * It does not batch texts into matrices: a text's features are a few dozen sparse lookups. */
#define _POSIX_C_SOURCE 200809L
#include "text/sentiment_internal.h"

#include "amuse/safetensors.h"
#include "core/internal.h"
#include "text/utf8.h"
#include "text/word2vec_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_BYTES  (1u << 20)
#define WEIGHTS_MAX_BYTES ((size_t)1 << 30)

/* ------------------------------------------------------------------------------- features */

static uint64_t fnv_update(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

/* Degree modifiers (an English list of our own): the valence of the next word is raised or
 * lowered by one step, as Hutto and Gilbert (2014) describe for VADER's heuristics. */
static const char *const boosters[] = {
    "absolutely", "amazingly",  "awfully",       "completely", "deeply",       "enormously",
    "entirely",   "especially", "exceptionally", "extremely",  "fully",        "greatly",
    "highly",     "hugely",     "incredibly",    "intensely",  "most",         "particularly",
    "purely",     "really",     "remarkably",    "so",         "such",         "super",
    "thoroughly", "totally",    "tremendously",  "truly",      "unbelievably", "utterly",
    "very",       "too",        "way",           "real",       "damn",         "freaking",
};
static const char *const dampeners[] = {
    "almost",   "barely",   "hardly",   "less",   "little", "marginally", "occasionally", "partly",
    "scarcely", "slightly", "somewhat", "fairly", "rather", "kinda",      "sorta",        "mildly",
};

/* +1 booster, -1 dampener, 0 neither (w without its "not_" prefix). */
static int degree(const char *w)
{
    if (strncmp(w, "not_", 4) == 0)
        w += 4;
    for (size_t k = 0; k < sizeof boosters / sizeof boosters[0]; k++)
        if (strcmp(w, boosters[k]) == 0)
            return 1;
    for (size_t k = 0; k < sizeof dampeners / sizeof dampeners[0]; k++)
        if (strcmp(w, dampeners[k]) == 0)
            return -1;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void am__sent_features(const struct amuse_sentiment_model *m,
                       const struct amuse_sentiment_tokens *t, struct am__sent_features *f)
{
    uint32_t mask = (1u << m->hash_bits) - 1;
    int nb = 0, nrows = 0, last_but = -1, bangs = 0;
    float plain = 0, neg = 0, pos_count = 0, neg_count = 0;
    double rule = 0; /* valences (-4..4) with negation, degree and "but" rules */
    for (int i = 0; i < t->n; i++) {
        if (strcmp(t->items[i], "but") == 0)
            last_but = i;
        bangs += strcmp(t->items[i], "!") == 0;
    }
    f->n_plain = f->n_neg = 0;
    f->proj_plain = f->proj_neg = 0;
    for (int i = 0; i < t->n; i++) {
        const char *w = t->items[i];
        size_t len = strlen(w);
        uint64_t h = fnv_update(FNV_BASIS, "1", 1);
        f->buckets[nb++] = (uint32_t)(fnv_update(h, w, len) & mask);
        if (i > 0) {
            const char *p = t->items[i - 1];
            h = fnv_update(fnv_update(FNV_BASIS, "2", 1), p, strlen(p));
            h = fnv_update(h, "\x1f", 1);
            f->buckets[nb++] = (uint32_t)(fnv_update(h, w, len) & mask);
        }
        if (!m->words)
            continue;
        int negated = len > 4 && memcmp(w, "not_", 4) == 0;
        const char *base = negated ? w + 4 : w;
        int64_t row = am__vocab_find_len(m->words, base, negated ? len - 4 : len);
        if (row < 0)
            continue;
        const float *r = m->table + row * AM__SENT_TABLE;
        float v = r[AM__SENT_VALENCE];
        if (v != 0) {
            double rv = 4.0 * v;
            for (int back = 1; back <= 2 && i - back >= 0; back++) {
                int d = degree(t->items[i - back]);
                rv += d * (rv > 0 ? 1 : -1) * 0.3 * (back == 1 ? 1.0 : 0.95);
            }
            if (negated)
                rv *= -0.74;
            if (last_but >= 0)
                rv *= i < last_but ? 0.5 : 1.5;
            rule += rv;
            if (negated)
                neg += v;
            else
                plain += v;
            if ((v > 0) != negated)
                pos_count += 1;
            else
                neg_count += 1;
        }
        if (r[AM__SENT_HAS_VECTOR] != 0) {
            if (negated) {
                f->n_neg++;
                f->proj_neg += r[AM__SENT_PROJ_NEG];
            } else {
                f->n_plain++;
                f->proj_plain += r[AM__SENT_PROJ_PLAIN];
            }
            if (f->rows)
                f->rows[nrows++] = negated ? -(row + 1) : row;
        }
    }
    qsort(f->buckets, (size_t)nb, sizeof *f->buckets, cmp_u32);
    int u = 0;
    for (int i = 0; i < nb; i++)
        if (u == 0 || f->buckets[u - 1] != f->buckets[i])
            f->buckets[u++] = f->buckets[i];
    f->n_buckets = u;
    float rn = 1.0f / sqrtf((float)(t->n > 0 ? t->n : 1));
    f->lex[0] = plain;
    f->lex[1] = neg;
    f->lex[2] = plain * rn;
    f->lex[3] = neg * rn;
    f->lex[4] = pos_count;
    f->lex[5] = neg_count;
    if (rule != 0)
        rule += (rule > 0 ? 1 : -1) * 0.3 * (bangs < 4 ? bangs : 4);
    f->lex[6] = (float)(rule / sqrt(rule * rule + 15)); /* normalised to (-1, 1) */
    f->lex[7] = (float)rule;
}

double am__sent_logit(const struct amuse_sentiment_model *m, const struct am__sent_features *f)
{
    double z = m->bias;
    for (int i = 0; i < f->n_buckets; i++)
        z += m->ngram[f->buckets[i]];
    for (int k = 0; k < AM__SENT_DENSE; k++)
        z += (double)m->dense[k] * f->lex[k];
    if (f->n_plain)
        z += f->proj_plain / f->n_plain;
    if (f->n_neg)
        z += f->proj_neg / f->n_neg;
    return z;
}

/* ------------------------------------------------------------------------------- scoring */

const char *amuse_sentiment_label_name(int label)
{
    switch (label) {
    case AMUSE_SENTIMENT_NEGATIVE:
        return "negative";
    case AMUSE_SENTIMENT_NEUTRAL:
        return "neutral";
    case AMUSE_SENTIMENT_POSITIVE:
        return "positive";
    default:
        return "?";
    }
}

double amuse_sentiment_neutral_threshold(const struct amuse_sentiment_model *m)
{
    return m->neutral_threshold;
}

static int only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = am__utf8_decode((const unsigned char *)s + i, len - i, &c);
        if (k <= 0 || !am__utf8_is_space(c))
            return 0;
        i += (size_t)k;
    }
    return 1;
}

int amuse_sentiment_score(const struct amuse_sentiment_model *m, const char *const *texts,
                          const size_t *lens, int n, struct amuse_sentiment_result *out)
{
    if (!m || !texts || !out || n < 1 || n > AMUSE_SENTIMENT_MAX_BATCH)
        return am__fail(AMUSE_EINVAL, "sentiment: give 1..%d texts (got %d)",
                        AMUSE_SENTIMENT_MAX_BATCH, n);
    for (int i = 0; i < n; i++) {
        if (!texts[i])
            return am__fail(AMUSE_EINVAL, "text %d: NULL", i);
        size_t len = lens ? lens[i] : strnlen(texts[i], AMUSE_SENTIMENT_MAX_TEXT_BYTES + 1);
        if (len > AMUSE_SENTIMENT_MAX_TEXT_BYTES)
            return am__fail(AMUSE_ETOOBIG, "text %d: %s%zu bytes is over the cap of %d bytes", i,
                            lens ? "" : "more than ",
                            lens ? len : (size_t)AMUSE_SENTIMENT_MAX_TEXT_BYTES,
                            AMUSE_SENTIMENT_MAX_TEXT_BYTES);
        struct amuse_sentiment_tokens t;
        int st = amuse_sentiment_tokenize(texts[i], len, &t);
        if (st != AMUSE_OK)
            return am__fail_prefix(st, "text %d", i);
        if (only_space(texts[i], len)) {
            amuse_sentiment_tokens_release(&t);
            return am__fail(AMUSE_EINVAL, "text %d: empty text", i);
        }
        struct am__sent_features f = {0};
        f.buckets = malloc((2 * (size_t)t.n + 1) * sizeof *f.buckets);
        if (!f.buckets) {
            amuse_sentiment_tokens_release(&t);
            return am__fail(AMUSE_ENOMEM, "text %d: out of memory", i);
        }
        am__sent_features(m, &t, &f);
        double z = am__sent_logit(m, &f);
        free(f.buckets);
        amuse_sentiment_tokens_release(&t);
        double s = tanh(z / 2); /* 2 * sigmoid(z) - 1 */
        out[i].score = (float)s;
        out[i].label = s > m->neutral_threshold    ? AMUSE_SENTIMENT_POSITIVE
                       : s < -m->neutral_threshold ? AMUSE_SENTIMENT_NEGATIVE
                                                   : AMUSE_SENTIMENT_NEUTRAL;
    }
    return AMUSE_OK;
}

/* --------------------------------------------------------------------------- model memory */

int am__sent_model_new(int hash_bits, struct amuse_sentiment_model **out)
{
    *out = NULL;
    if (hash_bits < 4 || hash_bits > AMUSE_SENTIMENT_MAX_HASH_BITS)
        return am__fail(AMUSE_EINVAL, "hash_bits %d is not in 4..%d", hash_bits,
                        AMUSE_SENTIMENT_MAX_HASH_BITS);
    struct amuse_sentiment_model *m = calloc(1, sizeof *m);
    if (m)
        m->ngram = calloc((size_t)1 << hash_bits, sizeof *m->ngram);
    if (!m || !m->ngram) {
        free(m);
        return am__fail(AMUSE_ENOMEM, "sentiment model: out of memory");
    }
    m->hash_bits = hash_bits;
    m->neutral_threshold = 0.05;
    *out = m;
    return AMUSE_OK;
}

void amuse_sentiment_free(struct amuse_sentiment_model *m)
{
    if (!m)
        return;
    free(m->ngram);
    free(m->table);
    amuse_vocab_free(m->words);
    free(m->description);
    free(m);
}

int amuse_sentiment_set_metric(struct amuse_sentiment_model *m, const char *name, double value)
{
    if (!m || !name || !*name || strlen(name) >= sizeof m->metric_names[0])
        return am__fail(AMUSE_EINVAL, "metric name must be 1..63 bytes");
    int i = 0;
    while (i < m->n_metrics && strcmp(m->metric_names[i], name) != 0)
        i++;
    if (i == AM__SENT_MAX_METRICS)
        return am__fail(AMUSE_ETOOBIG, "more than %d metrics", AM__SENT_MAX_METRICS);
    if (i == m->n_metrics) {
        snprintf(m->metric_names[i], sizeof m->metric_names[i], "%s", name);
        m->n_metrics++;
    }
    m->metric_values[i] = value;
    return AMUSE_OK;
}

/* ------------------------------------------------------------------------- model directory */

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int amuse_sentiment_save(const struct amuse_sentiment_model *m, const char *dir)
{
    int st = AMUSE_OK;
    char *cfg_path = join(dir, "config.json"), *w_path = join(dir, "model.safetensors");
    char *v_path = join(dir, "words.vocab"), *text = NULL;
    cJSON *doc = NULL;
    if (!cfg_path || !w_path || !v_path) {
        st = am__fail(AMUSE_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    if ((st = am__mkdir_p(dir)) != AMUSE_OK)
        goto out;
    int64_t words = m->words ? amuse_vocab_size(m->words) : 0;
    struct amuse_st_entry e[4];
    int ne = 0;
    e[ne].name = "ngram_weights";
    e[ne].shape.ndim = 1;
    e[ne].shape.dim[0] = (int64_t)1 << m->hash_bits;
    e[ne++].data = m->ngram;
    e[ne].name = "dense_weights";
    e[ne].shape.ndim = 1;
    e[ne].shape.dim[0] = AM__SENT_DENSE;
    e[ne++].data = m->dense;
    e[ne].name = "bias";
    e[ne].shape.ndim = 1;
    e[ne].shape.dim[0] = 1;
    e[ne++].data = &m->bias;
    if (words > 0) {
        e[ne].name = "word_table";
        e[ne].shape.ndim = 2;
        e[ne].shape.dim[0] = words;
        e[ne].shape.dim[1] = AM__SENT_TABLE;
        e[ne++].data = m->table;
    }
    const char *mk[] = {"format"}, *mv[] = {"amuse-sentiment"};
    if ((st = amuse_safetensors_write(w_path, e, ne, mk, mv, 1)) != AMUSE_OK)
        goto out;
    if (words > 0 && (st = amuse_vocab_save(m->words, v_path)) != AMUSE_OK)
        goto out;
    doc = cJSON_CreateObject();
    cJSON *metrics = cJSON_CreateObject();
    if (!doc || !metrics) {
        cJSON_Delete(metrics);
        st = am__fail(AMUSE_ENOMEM, "%s: out of memory", cfg_path);
        goto out;
    }
    cJSON_AddStringToObject(doc, "type", "sentiment");
    cJSON_AddNumberToObject(doc, "format", AM__SENT_FORMAT);
    if (m->description)
        cJSON_AddStringToObject(doc, "description", m->description);
    cJSON_AddNumberToObject(doc, "hash_bits", m->hash_bits);
    cJSON_AddNumberToObject(doc, "words", (double)words);
    cJSON_AddNumberToObject(doc, "neutral_threshold", m->neutral_threshold);
    cJSON_AddStringToObject(doc, "labels", "negative, neutral, positive");
    for (int i = 0; i < m->n_metrics; i++)
        cJSON_AddNumberToObject(metrics, m->metric_names[i], m->metric_values[i]);
    cJSON_AddItemToObject(doc, "metrics", metrics);
    text = cJSON_Print(doc);
    if (!text) {
        st = am__fail(AMUSE_ENOMEM, "%s: out of memory", cfg_path);
        goto out;
    }
    size_t tl = strlen(text);
    text[tl] = '\n'; /* in place of the NUL: the file ends with a newline */
    st = am__write_file_atomic(cfg_path, text, tl + 1);
    text[tl] = '\0';
out:
    cJSON_Delete(doc);
    free(text);
    free(cfg_path);
    free(w_path);
    free(v_path);
    return st;
}

static int tensor_f32(const struct amuse_safetensors *st, const char *path, const char *name,
                      int64_t d0, int64_t d1, float *dst)
{
    const struct amuse_st_tensor *t = amuse_safetensors_find(st, name);
    if (!t)
        return am__fail(AMUSE_EFORMAT, "%s: tensor '%s' is missing", path, name);
    int want_nd = d1 > 0 ? 2 : 1;
    if (strcmp(t->dtype, "F32") != 0 || t->shape.ndim != want_nd || t->shape.dim[0] != d0 ||
        (d1 > 0 && t->shape.dim[1] != d1)) {
        char shape[64];
        if (d1 > 0)
            snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)d0, (long long)d1);
        else
            snprintf(shape, sizeof shape, "[%lld]", (long long)d0);
        return am__fail(AMUSE_EFORMAT,
                        "%s: tensor '%s' must be F32 of shape %s as the config "
                        "says",
                        path, name, shape);
    }
    int64_t n = d0 * (d1 > 0 ? d1 : 1);
    memcpy(dst, t->data, (size_t)n * sizeof *dst);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i]))
            return am__fail(AMUSE_EFORMAT, "%s: tensor '%s': element %lld is not finite", path,
                            name, (long long)i);
    return AMUSE_OK;
}

int amuse_sentiment_load(const char *dir, struct amuse_sentiment_model **out)
{
    *out = NULL;
    struct amuse_sentiment_model *m = NULL;
    struct amuse_safetensors st = {0};
    char *cfg_path = join(dir, "config.json"), *w_path = join(dir, "model.safetensors");
    char *v_path = join(dir, "words.vocab"), *json = NULL;
    cJSON *doc = NULL;
    size_t len;
    int rc;
    if (!cfg_path || !w_path || !v_path) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", dir);
        goto out;
    }
    if ((rc = am__read_file(cfg_path, CONFIG_MAX_BYTES, &json, &len)) != AMUSE_OK)
        goto out;
    const char *end = NULL;
    doc = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!doc || !cJSON_IsObject(doc)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: invalid JSON near byte %ld", cfg_path,
                      end ? (long)(end - json) : 0L);
        goto out;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(doc, "format");
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(doc, "hash_bits");
    const cJSON *words = cJSON_GetObjectItemCaseSensitive(doc, "words");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(doc, "neutral_threshold");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(doc, "description");
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(doc, "metrics");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "sentiment") != 0) {
        rc = am__fail(AMUSE_EFORMAT, "%s: \"type\" must be \"sentiment\"", cfg_path);
        goto out;
    }
    if (!cJSON_IsNumber(format) || format->valuedouble != AM__SENT_FORMAT) {
        rc = am__fail(cJSON_IsNumber(format) && format->valuedouble > AM__SENT_FORMAT
                          ? AMUSE_EUNSUPPORTED
                          : AMUSE_EFORMAT,
                      "%s: \"format\" must be %d", cfg_path, AM__SENT_FORMAT);
        goto out;
    }
    if (!cJSON_IsNumber(bits) || bits->valuedouble != (int)bits->valuedouble ||
        bits->valuedouble < 4 || bits->valuedouble > AMUSE_SENTIMENT_MAX_HASH_BITS) {
        rc = am__fail(AMUSE_EFORMAT, "%s: \"hash_bits\" must be an integer in 4..%d", cfg_path,
                      AMUSE_SENTIMENT_MAX_HASH_BITS);
        goto out;
    }
    if (!cJSON_IsNumber(words) || words->valuedouble != (double)(int64_t)words->valuedouble ||
        words->valuedouble < 0 || words->valuedouble > AMUSE_W2V_MAX_WORDS) {
        rc = am__fail(AMUSE_EFORMAT, "%s: \"words\" must be an integer in 0..%lld", cfg_path,
                      (long long)AMUSE_W2V_MAX_WORDS);
        goto out;
    }
    if (!cJSON_IsNumber(thr) || !(thr->valuedouble >= 0 && thr->valuedouble < 1)) {
        rc = am__fail(AMUSE_EFORMAT, "%s: \"neutral_threshold\" must be a number in [0, 1)",
                      cfg_path);
        goto out;
    }
    if ((rc = am__sent_model_new((int)bits->valuedouble, &m)) != AMUSE_OK)
        goto out;
    m->neutral_threshold = thr->valuedouble;
    if (cJSON_IsString(desc) && !(m->description = strdup(desc->valuestring))) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", cfg_path);
        goto out;
    }
    if (cJSON_IsObject(metrics)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, metrics)
        {
            if (cJSON_IsNumber(it) && it->string &&
                amuse_sentiment_set_metric(m, it->string, it->valuedouble) != AMUSE_OK) {
                rc = am__fail_prefix(AMUSE_EFORMAT, "%s: \"metrics\"", cfg_path);
                goto out;
            }
        }
    }
    if ((rc = amuse_safetensors_load(&st, w_path, WEIGHTS_MAX_BYTES)) != AMUSE_OK)
        goto out;
    int64_t nw = (int64_t)words->valuedouble;
    if ((rc = tensor_f32(&st, w_path, "ngram_weights", (int64_t)1 << m->hash_bits, 0, m->ngram)) ||
        (rc = tensor_f32(&st, w_path, "dense_weights", AM__SENT_DENSE, 0, m->dense)) ||
        (rc = tensor_f32(&st, w_path, "bias", 1, 0, &m->bias)))
        goto out;
    if (nw > 0) {
        if (!(m->table = malloc((size_t)nw * AM__SENT_TABLE * sizeof *m->table))) {
            rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", w_path);
            goto out;
        }
        if ((rc = tensor_f32(&st, w_path, "word_table", nw, AM__SENT_TABLE, m->table)) != AMUSE_OK)
            goto out;
        if ((rc = amuse_vocab_read(v_path, &m->words)) != AMUSE_OK)
            goto out;
        if (amuse_vocab_size(m->words) != nw) {
            rc = am__fail(AMUSE_EFORMAT, "%s: %lld words, but config.json says %lld", v_path,
                          (long long)amuse_vocab_size(m->words), (long long)nw);
            goto out;
        }
    } else if (amuse_safetensors_find(&st, "word_table")) {
        rc = am__fail(AMUSE_EFORMAT, "%s: tensor 'word_table' present but config.json says 0 words",
                      w_path);
        goto out;
    }
    *out = m;
    m = NULL;
out:
    amuse_sentiment_free(m);
    amuse_safetensors_release(&st);
    cJSON_Delete(doc);
    free(json);
    free(cfg_path);
    free(w_path);
    free(v_path);
    return rc;
}

/* ---------------------------------------------------------------------- split, evaluation */

int amuse_sentiment_gold_label(float rating)
{
    return rating > 0.05f    ? AMUSE_SENTIMENT_POSITIVE
           : rating < -0.05f ? AMUSE_SENTIMENT_NEGATIVE
                             : AMUSE_SENTIMENT_NEUTRAL;
}

int amuse_sentiment_split_part(const char *name, const char *id, uint64_t seed)
{
    char s[32];
    int n = snprintf(s, sizeof s, "%llu:", (unsigned long long)seed);
    uint64_t h = fnv_update(FNV_BASIS, s, (size_t)n);
    h = fnv_update(h, name, strlen(name));
    h = fnv_update(h, "\t", 1);
    h = fnv_update(h, id, strlen(id));
    /* Finish with a mixer (splitmix64) so that the low digits are well spread. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    unsigned b = (unsigned)(h % 10);
    return b < 7 ? 0 : b < 8 ? 1 : 2;
}

void amuse_sentiment_evaluate(const float *ratings, const struct amuse_sentiment_result *pred,
                              int64_t n, struct amuse_sentiment_eval *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->n = n;
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        int g = amuse_sentiment_gold_label(ratings[i]);
        int p = pred[i].label;
        if (p < -1 || p > 1)
            p = 0;
        ev->confusion[g + 1][p + 1]++;
        if (g != AMUSE_SENTIMENT_NEUTRAL) {
            ev->binary_n++;
            correct += (pred[i].score > 0) == (g > 0);
        }
        double x = pred[i].score, y = ratings[i];
        sx += x;
        sy += y;
        sxx += x * x;
        syy += y * y;
        sxy += x * y;
    }
    double f1 = 0;
    for (int c = 0; c < 3; c++) {
        int64_t tp = ev->confusion[c][c], gold = 0, predicted = 0;
        for (int k = 0; k < 3; k++) {
            gold += ev->confusion[c][k];
            predicted += ev->confusion[k][c];
        }
        if (gold + predicted > 0)
            f1 += 2.0 * (double)tp / (double)(gold + predicted);
    }
    ev->macro_f1 = f1 / 3;
    ev->binary_accuracy = ev->binary_n ? (double)correct / (double)ev->binary_n : 0;
    if (n > 1) {
        double cov = sxy - sx * sy / (double)n, vx = sxx - sx * sx / (double)n,
               vy = syy - sy * sy / (double)n;
        ev->pearson = vx > 0 && vy > 0 ? cov / sqrt(vx * vy) : 0;
    }
}
