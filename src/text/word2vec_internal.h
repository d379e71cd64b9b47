/* text/word2vec_internal.h - the layouts behind amuse/word2vec.h's opaque types, shared by the
 * vocabulary, corpus, training, file and query sources. Not installed. */
#ifndef AMUSE_TEXT_WORD2VEC_INTERNAL_H
#define AMUSE_TEXT_WORD2VEC_INTERNAL_H

#include "amuse/word2vec.h"

#include <stddef.h>
#include <stdint.h>

struct amuse_vocab {
    int64_t size, cap;
    char *pool; /* all words, each NUL-terminated */
    size_t pool_len, pool_cap;
    size_t *offset;  /* word i starts at pool + offset[i] */
    int64_t *count;
    int64_t *slots;  /* open addressing, linear probing: word index or -1 */
    size_t slot_mask; /* slot count - 1 (a power of two) */
};

/* Index of word[0..len) or -1; the hash of the word is computed here. */
int64_t am__vocab_find_len(const struct amuse_vocab *v, const char *word, size_t len);
/* Add count to word[0..len) (no validation: the tokenizer already did it). */
int am__vocab_add_len(struct amuse_vocab *v, const char *word, size_t len, int64_t count,
                      int64_t *index);
/* Sort by count, most frequent first, ties in index order, and drop words below min_count.
 * remap (size: old size, may be NULL) receives each old index's new index or -1. */
int am__vocab_sort_prune(struct amuse_vocab *v, int64_t min_count, int32_t *remap);
/* A deep copy. */
int am__vocab_clone(const struct amuse_vocab *v, struct amuse_vocab **out);

struct amuse_w2v_corpus {
    struct amuse_vocab *vocab;
    int32_t *ids;   /* word ids; -1 marks a sentence end */
    int64_t n_ids;  /* entries in ids, sentence ends included */
    struct amuse_w2v_corpus_stats stats;
};

/* The k best of scores[0..rows) whose index is not in exclude[0..n_exclude), best first (ties:
 * lower index first), into hits. Returns how many (< k only when rows run out). */
int am__w2v_top_k(const float *scores, int64_t rows, const int64_t *exclude, int n_exclude, int k,
                  struct amuse_w2v_hit *hits);

#endif
