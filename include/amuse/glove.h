/* amuse/glove.h - GloVe word vectors (Pennington, Socher and Manning, 2014): the vocabulary count,
 * the co-occurrence count in bounded memory, the shuffle and AdaGrad training, as stages that read
 * and write the reference tool's files (vocab_count, cooccur, shuffle, glove), and one call that
 * runs the whole pipeline without the intermediate files.
 *
 * Files, as the reference tool's:
 *  - vocabulary: "word count\n" lines, most frequent first, ties in byte order of the words
 *    (amuse_vocab_read reads it; a repeated word or invalid UTF-8 is an error naming the line);
 *  - co-occurrences: a stream of struct amuse_glove_record (16 bytes each, native byte order,
 *    words as 1-based lines of the vocabulary file).
 * The trained vectors are written in the word2vec text or binary format (amuse/word2vec.h), which
 * every other amuse command reads.
 *
 * Text is tokenised as for word2vec (amuse/word2vec.h): white space separates words, a newline
 * ends a context (windows never cross it), invalid UTF-8 is an error with its byte offset unless
 * skip_invalid is set, and chars = 1 makes every code point a word.
 *
 * Not here: the reference's checkpoints, -load-init-param, -save-gradsq and its "<unk>" row.
 * Every function returns AMUSE_OK or a negative status and sets amuse_last_error(); nothing prints.
 */
#ifndef AMUSE_GLOVE_H
#define AMUSE_GLOVE_H

#include "amuse/error.h"
#include "amuse/version.h"
#include "amuse/word2vec.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One co-occurrence: the reference's CREC, the unit of its cooccur/shuffle/glove files. */
struct amuse_glove_record {
    int32_t word1; /* 1-based line of the vocabulary file (the word) */
    int32_t word2; /* 1-based line of the vocabulary file (the context word) */
    double value;  /* weighted count, > 0 */
};

/* Timings and sizes of a run, for reports and benchmarks. */
struct amuse_glove_stats {
    int64_t tokens;      /* corpus tokens read by the co-occurrence count */
    int64_t vocab_size;  /* words kept */
    int64_t records;     /* distinct (word, context) pairs */
    int64_t runs;        /* sorted runs spilled to temporary files */
    int64_t dense_cells; /* cells of the in-memory table for frequent pairs */
    double seconds_vocab, seconds_cooccur, seconds_shuffle, seconds_train;
    double final_cost; /* mean weighted squared error of the last iteration */
};

struct amuse_glove_progress {
    int iter; /* iterations done, 1..iterations */
    int iterations;
    double cost; /* mean weighted squared error of that iteration */
    double elapsed_seconds;
};

struct amuse_glove_options {
    /* vocab_count */
    int64_t min_count; /* drop words rarer than this (-min-count, 1 as vocab_count) */
    int64_t max_vocab; /* keep at most this many words (-max-vocab, 0: no limit) */
    int chars;         /* 1: every non-space code point is a word */
    int skip_invalid;  /* 1: drop words with invalid UTF-8 instead of failing */
    /* cooccur */
    int window_size;         /* context words on each side (-window-size, 15) */
    int symmetric;           /* 1: left and right context, 0: left only (-symmetric, 1) */
    int distance_weighting;  /* 1: a pair at distance d counts 1/d, 0: counts 1 (1) */
    double memory;           /* soft limit in GB for counting and shuffling (-memory, 4.0) */
    int64_t max_product;     /* pairs whose rank product is below this go to the in-memory table
                                (-max-product; 0: derived from memory) */
    int64_t overflow_length; /* records per sorted run before it is spilled (-overflow-length;
                                0: derived from memory) */
    const char
        *temp_prefix; /* temporary files are "<prefix>_XXXXXX" (-overflow-file; NULL:
                         $TMPDIR/amuse-glove or /tmp/amuse-glove); they are unlinked as
                         soon as they are created, so nothing is left behind, even on error */
    /* glove */
    int vector_size;  /* dimension (-vector-size, 50) */
    int iter;         /* passes over the co-occurrences (-iter, 25) */
    int threads;      /* training threads (-threads, 8; <= 0: one per core); counting uses
                         as many, but no more than there are cores */
    double eta;       /* initial AdaGrad learning rate (-eta, 0.05) */
    double alpha;     /* exponent of the weighting function (-alpha, 0.75) */
    double x_max;     /* cutoff of the weighting function (-x-max, 100) */
    double grad_clip; /* gradient components are clipped to +-this (-grad-clip, 100) */
    int model;        /* output: 0 W, bias, W~, bias~ side by side; 1 W; 2 W + W~ (2) */
    uint64_t seed;    /* random seed for initialisation and shuffle (-seed; 0 picks 1) */
    /* Called after each iteration from the calling thread; may be NULL. */
    void (*progress)(const struct amuse_glove_progress *p, void *ctx);
    void *progress_ctx;
};

/* The reference tool's defaults (see each field). */
AMUSE_API void amuse_glove_options_default(struct amuse_glove_options *o);

/* ----------------------------------------------------------------------------- the stages */

/* vocab_count: count the words of corpus_path (a file; "/dev/stdin" reads standard input), keep
 * those with count >= min_count, at most max_vocab of them, sorted by count, most frequent first,
 * ties in byte order. *out is a new vocabulary (free with amuse_vocab_free); *tokens (may be NULL)
 * receives the number of tokens read. Errors as amuse_w2v_corpus_read's (file, invalid UTF-8 at a
 * byte offset, NUL byte), and AMUSE_EINVAL when no word is left. */
AMUSE_API int amuse_glove_vocab_count(const char *corpus_path, const struct amuse_glove_options *o,
                                      struct amuse_vocab **out, int64_t *tokens);

/* Receives co-occurrence records in batches; returns AMUSE_OK or a negative status that stops
 * the count (and is returned by it). */
typedef int (*amuse_glove_sink)(void *ctx, const struct amuse_glove_record *records, size_t n);

/* cooccur: count the weighted co-occurrences of the words of vocab in corpus_path (words outside
 * it are skipped and do not count for distances), within window_size words, in bounded memory:
 * frequent pairs in a table in memory, the others in runs sorted and summed in memory, spilled to
 * temporary files and merged. Every (word1, word2) pair is delivered exactly once, word1 < word2
 * pairs in increasing order, each followed by its mirror (word2, word1) when symmetric; a left-
 * only count is in increasing (word1, word2) order. Counts are summed in double precision.
 * Errors: those of the corpus file, AMUSE_EINVAL for bad options or a memory limit too small to
 * hold one run (the message says how much is needed), AMUSE_EIO for the temporary files (which
 * are gone either way). stats (may be NULL) receives tokens, records, runs and dense_cells. */
AMUSE_API int amuse_glove_cooccur(const char *corpus_path, const struct amuse_vocab *vocab,
                                  const struct amuse_glove_options *o, amuse_glove_sink sink,
                                  void *sink_ctx, struct amuse_glove_stats *stats);

/* shuffle: copy the records of `in` to `out` in a random order (seed), holding at most `memory`
 * GB at once: a larger input is shuffled in chunks spilled to temporary files, then merged by
 * drawing each record from a chunk chosen at random in proportion to what it has left. The input
 * is checked as it is read: AMUSE_EFORMAT names the byte offset of a truncated record, of a word
 * outside 1..vocab_size (when vocab_size > 0) or of a value that is not a positive finite number.
 * in_name names `in` in messages. */
AMUSE_API int amuse_glove_shuffle(FILE *in, const char *in_name, FILE *out,
                                  const struct amuse_glove_options *o, int64_t vocab_size);

/* Read a co-occurrence file into memory (*out: malloc'd, free with free(); *n records), checked
 * as amuse_glove_shuffle checks its input; the file size is checked before allocating. */
AMUSE_API int amuse_glove_records_read(const char *path, int64_t vocab_size,
                                       struct amuse_glove_record **out, int64_t *n);

/* glove: train on records (in the given order, which should be shuffled) with AdaGrad and lock-
 * free (Hogwild) threads, minimising sum f(X) (w.w~ + b + b~ - log X)^2. *out receives vectors for
 * the words of vocab, as `model` says (free with amuse_word_vectors_free). With threads = 1 and the
 * same seed, the vectors are the same bits every run. Errors: AMUSE_EINVAL for bad options, a word
 * outside the vocabulary, a value that is not positive or no records; AMUSE_ENOMEM. */
AMUSE_API int amuse_glove_train(const struct amuse_vocab *vocab,
                                const struct amuse_glove_record *records, int64_t n,
                                const struct amuse_glove_options *o,
                                struct amuse_word_vectors **out, struct amuse_glove_stats *stats);

/* ---------------------------------------------------------------------- the whole pipeline */

/* vocab_count, cooccur, shuffle and glove on corpus_path, without intermediate files: the
 * co-occurrences go from the count straight into memory (16 bytes a pair) and are shuffled there.
 * *vocab_out (may be NULL) receives the vocabulary; *out the vectors. stats (may be NULL) receives
 * the timings of each stage. Errors: those of the stages. */
AMUSE_API int amuse_glove_pipeline(const char *corpus_path, const struct amuse_glove_options *o,
                                   struct amuse_vocab **vocab_out, struct amuse_word_vectors **out,
                                   struct amuse_glove_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
