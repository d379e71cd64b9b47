/* text/sentiment_internal.h - what the sentiment model's files share: the model struct and the
 * per-text features (n-gram buckets, lexicon sums, word-vector rows). Internal (am__ prefix). */
#ifndef AMUSE_TEXT_SENTIMENT_INTERNAL_H
#define AMUSE_TEXT_SENTIMENT_INTERNAL_H

#include "amuse/sentiment.h"
#include "amuse/word2vec.h"

#include <stdint.h>

#define AM__SENT_FORMAT      1 /* config.json "format" */
#define AM__SENT_DENSE       8 /* lexicon features */
#define AM__SENT_TABLE       4 /* word_table columns */
#define AM__SENT_MAX_METRICS 64

/* word_table columns */
enum {
    AM__SENT_PROJ_PLAIN = 0,
    AM__SENT_PROJ_NEG = 1,
    AM__SENT_HAS_VECTOR = 2,
    AM__SENT_VALENCE = 3
};

struct amuse_sentiment_model {
    int hash_bits;
    float *ngram; /* 2^hash_bits weights, naive-Bayes ratios folded in */
    float dense[AM__SENT_DENSE];
    float bias;
    double neutral_threshold;
    struct amuse_vocab *words; /* rows of table; NULL when there are none */
    float *table;              /* words x AM__SENT_TABLE */
    char *description;
    int n_metrics;
    char metric_names[AM__SENT_MAX_METRICS][64];
    double metric_values[AM__SENT_MAX_METRICS];
};

/* The features of one tokenized text. */
struct am__sent_features {
    uint32_t *buckets; /* sorted, unique; room for 2 * tokens (caller's buffer) */
    int n_buckets;
    float lex[AM__SENT_DENSE];
    int n_plain, n_neg;         /* words with a vector outside / inside a negation scope */
    float proj_plain, proj_neg; /* sums of their projections (table columns 0 and 1) */
    int64_t *rows;              /* optional (training): table row of each word with a vector,
                                   negated ones as -(row + 1); room for tokens */
};

/* Fill f from tokens with m's hash size and word table (m->words may be NULL). */
void am__sent_features(const struct amuse_sentiment_model *m,
                       const struct amuse_sentiment_tokens *t, struct am__sent_features *f);

/* The logit of features f under m. */
double am__sent_logit(const struct amuse_sentiment_model *m, const struct am__sent_features *f);

/* A model with zero weights and 2^hash_bits buckets (words and table are left NULL). */
int am__sent_model_new(int hash_bits, struct amuse_sentiment_model **out);

#endif
