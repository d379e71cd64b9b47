/* fasttext_subwords.c - fastText's character n-grams: the hash (FNV-1a with fastText's sign
 * extension of each byte), the n-grams of "<word>" counted in code points, and vectors composed
 * from them for words outside the vocabulary. Not here: the .bin file format (fasttext_io.c) or
 * training (word2vec_train.c). */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

uint32_t amuse_fasttext_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint32_t)(int32_t)(int8_t)s[i]; /* fastText xors the sign-extended byte */
        h *= 16777619u;
    }
    return h;
}

static int is_continuation(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

int64_t amuse_fasttext_ngrams(const char *word, int minn, int maxn, int64_t bucket,
                              int64_t *buckets, int64_t cap)
{
    size_t wl = strlen(word);
    if (maxn < 1 || bucket < 1 || minn > maxn || wl > AMUSE_W2V_MAX_WORD_BYTES)
        return 0;
    char b[AMUSE_W2V_MAX_WORD_BYTES + 3];
    b[0] = '<';
    memcpy(b + 1, word, wl);
    b[wl + 1] = '>';
    size_t len = wl + 2;
    int64_t n_out = 0;
    for (size_t i = 0; i < len; i++) {
        if (is_continuation((unsigned char)b[i]))
            continue;
        size_t j = i;
        for (int n = 1; j < len && n <= maxn; n++) {
            j++; /* take one code point: a lead byte and its continuation bytes */
            while (j < len && is_continuation((unsigned char)b[j]))
                j++;
            if (n >= minn && !(n == 1 && (i == 0 || j == len))) {
                if (n_out < cap)
                    buckets[n_out] = (int64_t)(amuse_fasttext_hash(b + i, j - i) % (uint64_t)bucket);
                n_out++;
            }
        }
    }
    return n_out;
}

void am__subwords_free(struct amuse_subwords *s)
{
    if (!s)
        return;
    am__free(s->input);
    free(s->prune_hash);
    free(s->prune_row);
    am__free(s->output);
    free(s);
}

int64_t am__subwords_row(const struct amuse_subwords *s, int64_t h)
{
    if (s->n_prune < 0)
        return h;
    int64_t lo = 0, hi = s->n_prune; /* binary search in the sorted pruneidx */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s->prune_hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_prune && s->prune_hash[lo] == h ? s->prune_row[lo] : -1;
}

/* Sum the n-gram rows of word into acc (which the caller zeroed); *used receives how many were
 * added. AMUSE_ENOMEM only for very long words (more n-grams than the stack buffer holds). */
static int add_ngrams(const struct amuse_word_vectors *wv, const char *word, float *acc,
                      int64_t *used)
{
    const struct amuse_subwords *s = wv->subwords;
    int64_t stack[512], *buckets = stack;
    int64_t total = amuse_fasttext_ngrams(word, s->args.minn, s->args.maxn, s->args.bucket, stack,
                                          512);
    *used = 0;
    if (total > 512) {
        buckets = malloc((size_t)total * sizeof *buckets);
        if (!buckets)
            return am__fail(AMUSE_ENOMEM, "out of memory for the n-grams of a %zu-byte word",
                            strlen(word));
        amuse_fasttext_ngrams(word, s->args.minn, s->args.maxn, s->args.bucket, buckets, total);
    }
    int d = wv->dim;
    for (int64_t g = 0; g < total; g++) {
        int64_t row = am__subwords_row(s, buckets[g]);
        if (row < 0)
            continue;
        const float *v = s->input + (size_t)(wv->rows + row) * d;
        for (int k = 0; k < d; k++)
            acc[k] += v[k];
        (*used)++;
    }
    if (buckets != stack)
        free(buckets);
    return AMUSE_OK;
}

int am__subwords_compose_vocab(struct amuse_word_vectors *wv)
{
    int d = wv->dim;
    for (int64_t i = 0; i < wv->rows; i++) {
        float *v = wv->vectors + (size_t)i * d;
        memcpy(v, wv->subwords->input + (size_t)i * d, (size_t)d * sizeof *v);
        int64_t used;
        int rc = add_ngrams(wv, amuse_vocab_word(wv->vocab, i), v, &used);
        if (rc != AMUSE_OK)
            return rc;
        float n = (float)(used + 1); /* divide, as gensim does, for the same rounding */
        for (int k = 0; k < d; k++)
            v[k] /= n;
    }
    return AMUSE_OK;
}

int amuse_word_vectors_has_subwords(const struct amuse_word_vectors *wv)
{
    return wv && wv->subwords ? 1 : 0;
}

int amuse_word_vectors_lookup(const struct amuse_word_vectors *wv, const char *word, float *out,
                              int *composed)
{
    size_t len = strlen(word);
    int d = wv->dim;
    if (composed)
        *composed = 0;
    if (len == 0 || len > AMUSE_W2V_MAX_WORD_BYTES)
        return am__fail(AMUSE_EINVAL, "a word must have 1..%d bytes", AMUSE_W2V_MAX_WORD_BYTES);
    int64_t at = amuse_vocab_lookup(wv->vocab, word);
    if (at >= 0) {
        memcpy(out, wv->vectors + (size_t)at * d, (size_t)d * sizeof *out);
        return AMUSE_OK;
    }
    if (!wv->subwords)
        return am__fail(AMUSE_ENOTFOUND, "word '%.64s' is not in the vocabulary", word);
    memset(out, 0, (size_t)d * sizeof *out);
    int64_t used;
    int rc = add_ngrams(wv, word, out, &used);
    if (rc != AMUSE_OK)
        return rc;
    if (used > 0) {
        float n = (float)used;
        for (int k = 0; k < d; k++)
            out[k] /= n;
    }
    if (composed)
        *composed = 1;
    return AMUSE_OK;
}
