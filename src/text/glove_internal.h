/* text/glove_internal.h - what the GloVe sources share: temporary files that vanish on close, the
 * record checks, and the compact training record. Not installed. */
#ifndef AMUSE_TEXT_GLOVE_INTERNAL_H
#define AMUSE_TEXT_GLOVE_INTERNAL_H

#include "amuse/glove.h"

#include <stdint.h>
#include <stdio.h>

/* Caps. */
#define AM__GLOVE_MAX_WINDOW    1000
#define AM__GLOVE_MAX_MEMORY_GB 1024.0
#define AM__GLOVE_MAX_RECORDS   4000000000LL /* co-occurrence records held in memory */

/* A temporary file "<prefix>_XXXXXX" opened for reading and writing and unlinked at once, so it
 * disappears when closed or when the process dies. prefix NULL: $TMPDIR/amuse-glove. */
int am__glove_temp_file(const char *prefix, FILE **out);

/* Check one record read at byte offset off of name: words in 1..vocab_size (vocab_size > 0) and a
 * positive finite value. */
int am__glove_check_record(const struct amuse_glove_record *r, int64_t vocab_size, const char *name,
                           uint64_t off);

/* A training record: 0-based word rows, log of the count and its weight f(X), precomputed. */
struct am__glove_pair {
    int32_t word, context;
    float log_value, weight;
};

/* Fill p from r (1-based words) with the weighting function f(x) = min(1, (x / x_max)^alpha). */
void am__glove_pair_from_record(struct am__glove_pair *p, const struct amuse_glove_record *r,
                                double x_max, double alpha);

/* Train on pairs (in order; shuffled by the caller). */
int am__glove_train_pairs(const struct amuse_vocab *vocab, const struct am__glove_pair *pairs,
                          int64_t n, const struct amuse_glove_options *o,
                          struct amuse_word_vectors **out, struct amuse_glove_stats *stats);

#endif
