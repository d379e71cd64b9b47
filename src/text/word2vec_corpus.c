/* word2vec_corpus.c - read a training file once into an integer id stream and its vocabulary.
 * Tokenising is utf8.c's job; this file counts, prunes by min_count, sorts by frequency and
 * rewrites the stream to the final ids. It does not subsample (training does that per epoch). */
#define _POSIX_C_SOURCE 200809L
#include "text/word2vec_internal.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

struct id_stream {
    int32_t *ids;
    int64_t n, cap;
};

static int push_id(struct id_stream *s, int32_t id, const char *path)
{
    if (s->n == s->cap) {
        if (s->cap >= AMUSE_W2V_MAX_TOKENS)
            return am__fail(AMUSE_ETOOBIG, "%s: more than %lld tokens", path,
                            AMUSE_W2V_MAX_TOKENS);
        int64_t cap = s->cap ? s->cap + s->cap / 2 : (1 << 20);
        int32_t *ids = realloc(s->ids, (size_t)cap * sizeof *ids);
        if (!ids)
            return am__fail(AMUSE_ENOMEM, "%s: out of memory at %lld tokens", path, (long long)s->n);
        s->ids = ids;
        s->cap = cap;
    }
    s->ids[s->n++] = id;
    return AMUSE_OK;
}

int amuse_w2v_corpus_read(const char *path, const struct amuse_w2v_options *o,
                          const struct amuse_vocab *vocab, struct amuse_w2v_corpus **out)
{
    struct am__token_reader r;
    struct amuse_w2v_corpus *c = NULL;
    struct id_stream s = {0};
    int32_t *remap = NULL;
    int rc, words_in_sentence = 0;
    *out = NULL;
    if (o->min_count < 0)
        return am__fail(AMUSE_EINVAL, "min-count must be >= 0");
    if ((rc = am__token_reader_open(&r, path, o->chars, o->skip_invalid)) != AMUSE_OK)
        return rc;
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if (vocab) {
        if ((rc = am__vocab_clone(vocab, &c->vocab)) != AMUSE_OK)
            goto out;
        if ((rc = am__vocab_sort_prune(c->vocab, o->min_count, NULL)) != AMUSE_OK)
            goto out;
        if (c->vocab->size == 0) {
            rc = am__fail(AMUSE_EINVAL, "vocabulary: no word has a count of at least min-count %d",
                          o->min_count);
            goto out;
        }
    } else if ((rc = amuse_vocab_new(&c->vocab)) != AMUSE_OK) {
        goto out;
    }

    /* One pass: every token becomes an id (a provisional one when the vocabulary is built here). */
    for (;;) {
        int t = am__token_next(&r);
        if (t < 0) {
            rc = t;
            goto out;
        }
        if (t == AM__TOKEN_EOF)
            break;
        if (t == AM__TOKEN_EOL) {
            if (words_in_sentence && (rc = push_id(&s, -1, path)) != AMUSE_OK)
                goto out;
            if (words_in_sentence)
                c->stats.sentences++;
            words_in_sentence = 0;
            continue;
        }
        c->stats.tokens++;
        int64_t id;
        if (vocab) {
            id = am__vocab_find_len(c->vocab, r.word, r.word_len);
            if (id < 0)
                continue;
        } else if ((rc = am__vocab_add_len(c->vocab, r.word, r.word_len, 1, &id)) != AMUSE_OK) {
            am__fail_prefix(rc, "%s", path);
            goto out;
        }
        if ((rc = push_id(&s, (int32_t)id, path)) != AMUSE_OK)
            goto out;
        words_in_sentence++;
    }
    if (words_in_sentence) {
        c->stats.sentences++;
        if ((rc = push_id(&s, -1, path)) != AMUSE_OK)
            goto out;
    }
    c->stats.dropped_long = r.dropped_long;
    c->stats.dropped_invalid = r.dropped_invalid;
    if (c->stats.tokens == 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: empty corpus: no words", path);
        goto out;
    }

    if (!vocab) {
        c->stats.distinct = c->vocab->size;
        int64_t best = 0, best_count = 0;
        for (int64_t i = 0; i < c->vocab->size; i++)
            if (c->vocab->count[i] > best_count)
                best = i, best_count = c->vocab->count[i];
        remap = malloc((size_t)c->vocab->size * sizeof *remap);
        if (!remap) {
            rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
            goto out;
        }
        char top[64];
        snprintf(top, sizeof top, "%.*s", (int)am__utf8_prefix(amuse_vocab_word(c->vocab, best),
                 strlen(amuse_vocab_word(c->vocab, best)), 40), amuse_vocab_word(c->vocab, best));
        if ((rc = am__vocab_sort_prune(c->vocab, o->min_count, remap)) != AMUSE_OK)
            goto out;
        if (c->vocab->size == 0) {
            rc = am__fail(AMUSE_EINVAL,
                          "%s: no word occurs at least min-count %d times (the most frequent, "
                          "'%s', occurs %lld times)",
                          path, o->min_count, top, (long long)best_count);
            goto out;
        }
    }
    /* Final ids; drop pruned words and the sentence ends they leave empty. */
    int64_t w = 0, words = 0;
    for (int64_t i = 0; i < s.n; i++) {
        int32_t id = s.ids[i];
        if (id >= 0 && remap)
            id = remap[id];
        if (id == -1 && s.ids[i] >= 0)
            continue; /* a pruned word */
        if (id < 0 && (w == 0 || s.ids[w - 1] < 0))
            continue; /* an empty sentence */
        s.ids[w++] = id;
        words += id >= 0;
    }
    c->stats.train_words = words;
    c->n_ids = w;
    c->ids = realloc(s.ids, (size_t)(w ? w : 1) * sizeof *c->ids);
    if (!c->ids)
        c->ids = s.ids;
    s.ids = NULL;
    *out = c;
    c = NULL;
    rc = AMUSE_OK;
out:
    am__token_reader_close(&r);
    free(remap);
    free(s.ids);
    amuse_w2v_corpus_free(c);
    return rc;
}

void amuse_w2v_corpus_free(struct amuse_w2v_corpus *c)
{
    if (!c)
        return;
    amuse_vocab_free(c->vocab);
    free(c->ids);
    free(c);
}

const struct amuse_vocab *amuse_w2v_corpus_vocab(const struct amuse_w2v_corpus *c)
{
    return c->vocab;
}

const struct amuse_w2v_corpus_stats *amuse_w2v_corpus_stats(const struct amuse_w2v_corpus *c)
{
    return &c->stats;
}
