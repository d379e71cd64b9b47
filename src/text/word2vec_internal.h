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
/* fastText's training arguments, as its .bin header stores them (model: 1 cbow, 2 skip-gram,
 * 3 supervised; loss: 1 hs, 2 ns, 3 softmax, 4 one-vs-all). */
struct am__fasttext_args {
    int32_t dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, minn, maxn;
    int32_t lr_update_rate;
    double t;
};

/* The subword half of a fastText model. input is the whole input matrix: the words' own rows
 * (0..wv->rows) and then the n-gram rows; wv->vectors holds the composed word vectors. */
struct amuse_subwords {
    struct am__fasttext_args args;
    int32_t version;
    int32_t nlabels;     /* label entries skipped (supervised models) */
    int64_t ntokens;
    int64_t ngram_rows;  /* input rows after the words: bucket, or the pruned count */
    float *input;        /* (wv->rows + ngram_rows) x dim */
    int64_t *prune_hash; /* pruneidx: sorted n-gram buckets ... */
    int32_t *prune_row;  /* ... and their rows (0-based after the words); n_prune of them */
    int64_t n_prune;     /* -1: no pruneidx (the usual case) */
    /* Only what amuse_fasttext_save needs (trained models, AMUSE_FASTTEXT_KEEP_OUTPUT): */
    int keep;            /* 1 when the rest is filled in (never for models with labels) */
    float *output;       /* output_rows x output_cols */
    int64_t output_rows, output_cols;
};

void am__subwords_free(struct amuse_subwords *s);
/* The input row (0-based after the words) of n-gram bucket h, or -1 when pruned away. */
int64_t am__subwords_row(const struct amuse_subwords *s, int64_t h);
/* Fill wv->vectors with the composed vectors (mean of each word's input row and n-gram rows). */
int am__subwords_compose_vocab(struct amuse_word_vectors *wv);

int am__w2v_top_k(const float *scores, int64_t rows, const int64_t *exclude, int n_exclude, int k,
                  struct amuse_w2v_hit *hits);

#endif
