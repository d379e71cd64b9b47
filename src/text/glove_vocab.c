/* glove_vocab.c - GloVe's vocab_count stage (word counts sorted by frequency, ties in byte order)
 * and the options' defaults. Tokenising is utf8.c's and the word table is vocab.c's; this file
 * only orders and cuts. It does not write files (amuse_vocab_save does). */
#define _POSIX_C_SOURCE 200809L
#include "text/glove_internal.h"
#include "text/word2vec_internal.h"

#include "core/internal.h"
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

void amuse_glove_options_default(struct amuse_glove_options *o)
{
    memset(o, 0, sizeof *o);
    o->min_count = 1;
    o->max_vocab = 0;
    o->window_size = 15;
    o->symmetric = 1;
    o->distance_weighting = 1;
    o->memory = 4.0;
    o->vector_size = 50;
    o->iter = 25;
    o->threads = 8;
    o->eta = 0.05;
    o->alpha = 0.75;
    o->x_max = 100.0;
    o->grad_clip = 100.0;
    o->model = 2;
    o->seed = 1;
}

struct counted_word {
    int64_t count;
    const char *word;
};

static int by_count_then_bytes(const void *pa, const void *pb)
{
    const struct counted_word *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return strcmp(a->word, b->word);
}

int amuse_glove_vocab_count(const char *corpus_path, const struct amuse_glove_options *o,
                            struct amuse_vocab **out, int64_t *tokens)
{
    struct am__token_reader r;
    struct amuse_vocab *all = NULL, *kept = NULL;
    struct counted_word *order = NULL;
    int64_t n_tokens = 0;
    int rc;
    *out = NULL;
    if (o->min_count < 0 || o->max_vocab < 0)
        return am__fail(AMUSE_EINVAL, "min-count and max-vocab must be >= 0");
    if ((rc = am__token_reader_open(&r, corpus_path, o->chars, o->skip_invalid)) != AMUSE_OK)
        return rc;
    if ((rc = amuse_vocab_new(&all)) != AMUSE_OK)
        goto out;
    for (;;) {
        int t = am__token_next(&r);
        if (t < 0) {
            rc = t;
            goto out;
        }
        if (t == AM__TOKEN_EOF)
            break;
        if (t != AM__TOKEN_WORD)
            continue;
        n_tokens++;
        if ((rc = am__vocab_add_len(all, r.word, r.word_len, 1, NULL)) != AMUSE_OK) {
            am__fail_prefix(rc, "%s", corpus_path);
            goto out;
        }
    }
    if (n_tokens == 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: empty corpus: no words", corpus_path);
        goto out;
    }
    order = malloc((size_t)all->size * sizeof *order);
    if (!order) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory sorting the vocabulary", corpus_path);
        goto out;
    }
    for (int64_t i = 0; i < all->size; i++)
        order[i] = (struct counted_word){all->count[i], all->pool + all->offset[i]};
    qsort(order, (size_t)all->size, sizeof *order, by_count_then_bytes);
    if ((rc = amuse_vocab_new(&kept)) != AMUSE_OK)
        goto out;
    for (int64_t j = 0; j < all->size; j++) {
        if (order[j].count < o->min_count || (o->max_vocab > 0 && j >= o->max_vocab))
            break;
        const char *w = order[j].word;
        if ((rc = am__vocab_add_len(kept, w, strlen(w), order[j].count, NULL)) != AMUSE_OK)
            goto out;
    }
    if (kept->size == 0) {
        rc = am__fail(AMUSE_EINVAL, "%s: no word occurs at least min-count %lld times", corpus_path,
                      (long long)o->min_count);
        goto out;
    }
    if (tokens)
        *tokens = n_tokens;
    *out = kept;
    kept = NULL;
    rc = AMUSE_OK;
out:
    am__token_reader_close(&r);
    amuse_vocab_free(all);
    amuse_vocab_free(kept);
    free(order);
    return rc;
}
