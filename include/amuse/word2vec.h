/* amuse/word2vec.h - word embeddings: vocabulary, word2vec training, the word2vec file formats,
 * similarity queries and the standard evaluations.
 *
 * Training follows Mikolov et al. (2013): skip-gram or CBOW, each with negative sampling and/or
 * hierarchical softmax over a Huffman tree, frequent-word subsampling, a linearly decaying learning
 * rate and lock-free (Hogwild) threads. Skip-gram with negative sampling shares its negatives across
 * a context window so that the update becomes small matrix products (Ji et al., HogBatch).
 *
 * Text is UTF-8. Words are separated by ASCII white space; a newline ends a sentence (context
 * windows never cross it). A code point is never split. Tokens longer than AMUSE_W2V_MAX_WORD_BYTES
 * bytes are dropped whole and counted, never truncated. Invalid UTF-8 is an error naming the byte
 * offset, unless skip_invalid is set, in which case the tokens that hold it are dropped and counted.
 *
 * fastText models (Bojanowski et al., 2017) are the same word-vectors object with subword n-gram
 * buckets attached: their .bin files load through amuse_word_vectors_load, a word outside the
 * vocabulary gets the mean of its character n-grams' vectors, and -subwords training writes them.
 *
 * Not here: quantised fastText models (.ftz), supervised fastText training, phrase detection, GPU
 * training, online vocabulary updates.
 * Every function returns AMUSE_OK or a negative status and sets amuse_last_error(); nothing prints.
 */
#ifndef AMUSE_WORD2VEC_H
#define AMUSE_WORD2VEC_H

#include "amuse/version.h" /* AMUSE_API */

#include "amuse/error.h"
#include "amuse/version.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard caps on what input can grow. */
#define AMUSE_W2V_MAX_WORD_BYTES 1024      /* a longer token is dropped (corpus) or an error (files) */
#define AMUSE_W2V_MAX_WORDS 50000000LL     /* distinct words in a corpus, rows in a vectors file */
#define AMUSE_W2V_MAX_DIM 10000            /* vector dimension */
#define AMUSE_W2V_MPI_SYNC_WORDS 100000    /* words per rank between synchronisations (MPI) */
#define AMUSE_W2V_MAX_TOKENS 4000000000LL  /* corpus tokens held as ids in memory */

/* ------------------------------------------------------------------------------- vocabulary */

/* Words with counts, looked up by a hash. Indices are dense, 0..size-1. */
struct amuse_vocab;

/* An empty vocabulary. Free with amuse_vocab_free. */
AMUSE_API int amuse_vocab_new(struct amuse_vocab **out);
AMUSE_API void amuse_vocab_free(struct amuse_vocab *v); /* NULL is fine */

AMUSE_API int64_t amuse_vocab_size(const struct amuse_vocab *v);
/* The word at index i (NUL-terminated UTF-8, owned by v), or NULL when i is out of range. */
AMUSE_API const char *amuse_vocab_word(const struct amuse_vocab *v, int64_t i);
AMUSE_API int64_t amuse_vocab_count(const struct amuse_vocab *v, int64_t i);
/* Index of word, spelled exactly so, or -1. */
AMUSE_API int64_t amuse_vocab_find(const struct amuse_vocab *v, const char *word);
/* Index of word under amuse's one case rule for queries, or -1: the word as given if the
 * vocabulary has it, else its ASCII-lower-cased form ("King" finds "king"; a vocabulary that
 * holds "King" itself finds that). Every query of the library, the `amuse words` command and
 * every route of the server looks words up this way. */
AMUSE_API int64_t amuse_vocab_lookup(const struct amuse_vocab *v, const char *word);
/* Add count to word, inserting it if new; *index (may be NULL) receives its index. The word must be
 * valid UTF-8 of 1..AMUSE_W2V_MAX_WORD_BYTES bytes without white space (AMUSE_EINVAL otherwise). */
AMUSE_API int amuse_vocab_add(struct amuse_vocab *v, const char *word, int64_t count, int64_t *index);

/* Write "word count\n" lines, in index order, atomically (temp file, fsync, rename). */
AMUSE_API int amuse_vocab_save(const struct amuse_vocab *v, const char *path);
/* Read "word count" lines (word2vec.c -save-vocab format; a trailing "\r" and blank lines are
 * accepted). Errors name the line: a missing or negative count, an over-long word, invalid UTF-8,
 * a repeated word. */
AMUSE_API int amuse_vocab_read(const char *path, struct amuse_vocab **out);

/* -------------------------------------------------------------------------------- training */

struct amuse_w2v_progress {
    double fraction;         /* 0..1 of all epochs */
    double words_per_sec;    /* corpus words per second, all threads together */
    double words_per_sec_per_thread;
    double alpha;            /* current learning rate */
    double eta_seconds;      /* estimated time left */
    double elapsed_seconds;
    int64_t words_done;      /* words processed so far (all epochs) */
};

struct amuse_w2v_options {
    int size;           /* vector dimension (word2vec.c -size, default 100) */
    int window;         /* max skip length (-window, 5) */
    double sample;      /* subsampling threshold (-sample, 1e-3; 0 disables) */
    int hs;             /* hierarchical softmax (-hs, 0) */
    int negative;       /* negative samples (-negative, 5; 0 disables) */
    int threads;        /* training threads (-threads, 12 as word2vec.c; <= 0: one per core) */
    int iter;           /* epochs (-iter, 5) */
    int min_count;      /* drop words rarer than this (-min-count, 5) */
    double alpha;       /* starting learning rate; <= 0 picks 0.05 for CBOW and subwords (fastText's
                           default), 0.025 for skip-gram */
    int cbow;           /* 1 CBOW, 0 skip-gram (-cbow, 1) */
    double min_alpha;   /* > 0: the rate falls linearly from alpha to this (gensim's min_alpha);
                           0: to alpha * 1e-4 at the end, as word2vec.c */
    uint64_t seed;      /* random seed (-seed, 1); 1 thread + same seed = bit-identical vectors */
    int chars;          /* 1: every non-space code point is a token (Chinese, Japanese) */
    int skip_invalid;   /* 1: drop tokens with invalid UTF-8 and count them, instead of failing */
    int kernel;         /* skip-gram negative sampling: 0 batched loops, 1 batched BLAS sgemm,
                           2 per-pair loops (word2vec.c order; the reference for tests) */
    int subwords;       /* 1: fastText skip-gram (negative sampling only): a word's input vector is
                           the mean of its own row and its character n-gram bucket rows (0) */
    int minn, maxn;     /* n-gram lengths in code points, '<' and '>' included (3, 6) */
    int64_t bucket;     /* n-gram hash buckets (2000000) */
    int64_t mpi_sync_words; /* under `mpirun` (the amuse command): each rank trains on its share
                           of the corpus, and the ranks add up their updates to the 4096 most
                           frequent words' rows after every this many words per rank, to every row
                           every 10 such rounds and at each epoch's end (<= 0:
                           AMUSE_W2V_MPI_SYNC_WORDS). Ignored in one process. */
    /* Called from one training thread about 10 times a second; may be NULL. */
    void (*progress)(const struct amuse_w2v_progress *p, void *ctx);
    void *progress_ctx;
};

/* word2vec.c's defaults (see each field). */
AMUSE_API void amuse_w2v_options_default(struct amuse_w2v_options *o);

/* gensim 4.2 Word2Vec's defaults, for code written against gensim (README: "gensim's Word2Vec"):
 * vector_size 100, window 5, min_count 5, sample 1e-3, negative 5, hs 0, epochs 5, seed 1 (as
 * word2vec.c's), and where they differ: sg=0 (CBOW), alpha 0.025 (word2vec.c: 0.05 for CBOW),
 * min_alpha 0.0001, workers 3. */
AMUSE_API void amuse_w2v_options_gensim(struct amuse_w2v_options *o);

/* Corpus statistics from the one pass over the training file. */
struct amuse_w2v_corpus_stats {
    int64_t tokens;          /* all tokens read */
    int64_t train_words;     /* tokens whose word is in the vocabulary */
    int64_t sentences;       /* non-empty lines */
    int64_t distinct;        /* distinct tokens before min_count */
    int64_t dropped_long;    /* tokens over AMUSE_W2V_MAX_WORD_BYTES */
    int64_t dropped_invalid; /* tokens with invalid UTF-8 (skip_invalid only) */
};

/* A corpus held in memory as word ids, read once from a file. */
struct amuse_w2v_corpus;

/* Read path once. If vocab is NULL, build the vocabulary from it (words with count >= min_count,
 * sorted by count, most frequent first; ties keep first-seen order); otherwise keep only the words
 * of vocab (for -read-vocab) and do not change it. Errors: AMUSE_ENOTFOUND / AMUSE_EIO for the
 * file, AMUSE_EFORMAT for a NUL byte ("binary file") or invalid UTF-8 at a byte offset, AMUSE_EINVAL
 * for an empty corpus or one where no word reaches min_count, AMUSE_ETOOBIG past the caps. */
AMUSE_API int amuse_w2v_corpus_read(const char *path, const struct amuse_w2v_options *o,
                          const struct amuse_vocab *vocab, struct amuse_w2v_corpus **out);
AMUSE_API void amuse_w2v_corpus_free(struct amuse_w2v_corpus *c);
/* The corpus's vocabulary (owned by c; a copy when one was given). */
AMUSE_API const struct amuse_vocab *amuse_w2v_corpus_vocab(const struct amuse_w2v_corpus *c);
AMUSE_API const struct amuse_w2v_corpus_stats *amuse_w2v_corpus_stats(const struct amuse_w2v_corpus *c);

/* Word vectors: one row per vocabulary word. */
struct amuse_word_vectors {
    struct amuse_vocab *vocab; /* row i is word i; counts are 0 when loaded from a file */
    int64_t rows;
    int dim;
    float *vectors; /* rows x dim, as trained or loaded */
    float *unit;    /* rows x dim scaled to unit length (zero rows stay zero); NULL until
                       amuse_word_vectors_normalise or the first query builds it */
    struct amuse_subwords *subwords; /* fastText n-gram buckets, or NULL (plain word2vec). When
                       set, vectors holds each word's composed vector (the mean of its own input
                       row and its n-grams' rows), as fastText's .vec files and gensim do. */
};

/* Train on a corpus. *out receives new vectors (free with amuse_word_vectors_free). The corpus is
 * not changed and can be trained on again. Errors: AMUSE_EINVAL for bad options, AMUSE_ENOMEM. */
AMUSE_API int amuse_w2v_train(const struct amuse_w2v_corpus *c, const struct amuse_w2v_options *o,
                    struct amuse_word_vectors **out);

AMUSE_API void amuse_word_vectors_free(struct amuse_word_vectors *wv); /* NULL is fine */

/* ------------------------------------------------------------------------------------ files */

enum amuse_w2v_format {
    AMUSE_W2V_TEXT = 0,   /* "<rows> <dim>\n" then "word v1 v2 ...\n" */
    AMUSE_W2V_BINARY = 1, /* "<rows> <dim>\n" then "word " + dim little-endian float32 + "\n" */
    AMUSE_W2V_FASTTEXT = 2, /* fastText's .bin model (loading only here; see amuse_fasttext_save) */
    AMUSE_W2V_AUTO = -1   /* loading only: a fastText .bin by its magic number, else look at the
                             first row */
};

/* Write the word2vec text or binary format, as word2vec.c and gensim do, atomically. Text values
 * are printed with 9 significant digits, so they read back bit-exact. */
AMUSE_API int amuse_word_vectors_save(const struct amuse_word_vectors *wv, const char *path, int format);

/* Read either format (gensim's and word2vec.c's files included: a trailing space on text rows, a
 * missing "\n" after binary rows and "\r\n" line ends are accepted). Errors, with the line or byte
 * offset: a bad header, a header that promises more rows or columns than the file holds, a row with
 * too many values, a truncated binary row, a value that is not a finite number (NaN, inf), an
 * over-long word or invalid UTF-8 in a word. The unit vectors are built. A fastText .bin model
 * (recognised by its magic number under AMUSE_W2V_AUTO, or AMUSE_W2V_FASTTEXT) is read by
 * amuse_fasttext_load without its output matrix; fastText's .vec files are the text format. */
AMUSE_API int amuse_word_vectors_load(const char *path, int format, struct amuse_word_vectors **out);

/* Build wv->unit if it is NULL. Call it once before sharing wv between threads. */
AMUSE_API int amuse_word_vectors_normalise(struct amuse_word_vectors *wv);

/* ------------------------------------------------------------------------- fastText models */

#define AMUSE_FASTTEXT_MAGIC 793712314 /* first int32 of a fastText .bin */
#define AMUSE_FASTTEXT_VERSION 12      /* the version written; 11 and 12 are read */
#define AMUSE_FASTTEXT_MAX_N 64        /* cap on maxn (code points in an n-gram) */
#define AMUSE_FASTTEXT_MAX_BUCKET 100000000LL /* cap on the bucket count */

enum { AMUSE_FASTTEXT_KEEP_OUTPUT = 1 }; /* amuse_fasttext_load: keep what amuse_fasttext_save needs */

/* Read a fastText .bin model (fastText 0.9's and gensim's save_facebook_model's): the header
 * (magic, version 11 or 12), the training arguments, the dictionary (words with counts and entry
 * types; labels of supervised models are skipped), the dense input matrix, and the output matrix
 * (skipped, its size checked, unless flags has AMUSE_FASTTEXT_KEEP_OUTPUT). Every count is checked
 * against the file size before anything is allocated. Errors name the file, the field and its byte
 * offset: AMUSE_EFORMAT (wrong magic, truncation, a count the file cannot hold, invalid UTF-8 or a
 * repeated word, a negative count, matrix shapes that disagree with the header, bytes after the
 * end), AMUSE_EUNSUPPORTED (version, quantised .ftz models), AMUSE_ETOOBIG (past the caps),
 * AMUSE_ENOTFOUND / AMUSE_EIO. *out = NULL on failure; free with amuse_word_vectors_free. */
AMUSE_API int amuse_fasttext_load(const char *path, int flags, struct amuse_word_vectors **out);

/* Write wv as a fastText .bin (version 12) atomically. wv must hold subwords with the training
 * arguments and output matrix: trained with -subwords, or loaded with AMUSE_FASTTEXT_KEEP_OUTPUT
 * (AMUSE_EINVAL otherwise). A model loaded that way is written back byte for byte. */
AMUSE_API int amuse_fasttext_save(const struct amuse_word_vectors *wv, const char *path);

/* 1 if wv has subword n-gram buckets (can compose a vector for any word), else 0. */
AMUSE_API int amuse_word_vectors_has_subwords(const struct amuse_word_vectors *wv);

/* The vector of word into out[0..dim): its row when it is in the vocabulary (*composed = 0),
 * otherwise, for a model with subwords, the mean of its n-gram vectors (*composed = 1; as fastText's
 * getWordVector and gensim's FastTextKeyedVectors; a word with no n-gram gives zeros). composed may
 * be NULL. AMUSE_ENOTFOUND for an unknown word without subwords, AMUSE_EINVAL for an empty word or
 * one longer than AMUSE_W2V_MAX_WORD_BYTES. */
AMUSE_API int amuse_word_vectors_lookup(const struct amuse_word_vectors *wv, const char *word,
                                        float *out, int *composed);

/* fastText's hash of bytes s[0..len): FNV-1a over 32 bits, each byte sign-extended (through
 * int8_t) before the xor, as fastText does. Exposed for tests. */
AMUSE_API uint32_t amuse_fasttext_hash(const char *s, size_t len);

/* The n-gram buckets of word (without the word's own row): fastText's computeSubwords over
 * "<word>", n from minn to maxn code points, the lone "<" and ">" left out, each hashed modulo
 * bucket. Writes up to cap of them, in fastText's order, into buckets; returns how many there are
 * (may exceed cap). Exposed for tests. */
AMUSE_API int64_t amuse_fasttext_ngrams(const char *word, int minn, int maxn, int64_t bucket,
                                        int64_t *buckets, int64_t cap);

/* ---------------------------------------------------------------------------------- queries */

struct amuse_w2v_hit {
    int64_t index; /* row */
    float score;   /* cosine similarity */
};

/* Cosine top-k against the mean of the unit vectors of the positive words minus those of the
 * negative words (gensim's most_similar), excluding the query words. restrict_rows > 0 only
 * considers the first restrict_rows rows (the most frequent words). Writes up to k hits, best
 * first, into hits and their number into *n. AMUSE_ENOTFOUND names a word that is not in the
 * vocabulary (a model with subwords composes it from its n-grams instead, and it excludes no row);
 * AMUSE_EINVAL when there are no positive or negative words. */
AMUSE_API int amuse_w2v_similar(struct amuse_word_vectors *wv, const char *const *positive, int n_positive,
                                const char *const *negative, int n_negative, int k, int64_t restrict_rows,
                                struct amuse_w2v_hit *hits, int *n);

/* a is to b as c is to ?: 3CosAdd, i.e. similar(positive = {b, c}, negative = {a}). */
AMUSE_API int amuse_w2v_analogy(struct amuse_word_vectors *wv, const char *a, const char *b, const char *c,
                      int k, struct amuse_w2v_hit *hits, int *n);

/* The word furthest from the mean of the words' unit vectors (gensim's doesnt_match). Words not in
 * the vocabulary are ignored; fewer than one known word is AMUSE_EINVAL. *index is the row. */
AMUSE_API int amuse_w2v_doesnt_match(struct amuse_word_vectors *wv, const char *const *words, int n,
                           int64_t *index);

/* Cosine similarity of two words (composed from n-grams when unseen, for a model with subwords). */
AMUSE_API int amuse_w2v_similarity(struct amuse_word_vectors *wv, const char *a, const char *b, float *out);

/* ------------------------------------------------------------------------------ evaluation */

struct amuse_w2v_analogy_result {
    int64_t semantic_correct, semantic_seen;   /* the first 5 sections of questions-words.txt */
    int64_t syntactic_correct, syntactic_seen; /* the other sections */
    int64_t correct, seen;                     /* all sections */
    int64_t questions;                         /* all question lines in the file */
    int64_t skipped;                           /* questions with a word outside the vocabulary */
    double semantic_accuracy, syntactic_accuracy, accuracy; /* correct / seen, 0 if none seen */
};

/* Analogy questions ("a b c d" lines under ": section" headers), case-insensitively (ASCII case),
 * against the first restrict_rows rows (<= 0: 30000, as word2vec.c's compute-accuracy). A question
 * with any word outside those rows is skipped and counted. The answer is the best 3CosAdd word other
 * than a, b and c, as gensim's evaluate_word_analogies. AMUSE_EFORMAT names the line of a question
 * that does not have 4 words. */
AMUSE_API int amuse_w2v_eval_analogies(struct amuse_word_vectors *wv, const char *path, int64_t restrict_rows,
                             struct amuse_w2v_analogy_result *out);

struct amuse_w2v_pairs_result {
    double pearson, spearman; /* between the gold scores and the cosine similarities */
    double oov_ratio;         /* percent of pairs with a word not in the vocabulary (as gensim) */
    int64_t pairs;            /* pairs used */
    int64_t oov;              /* pairs skipped as out of vocabulary */
    int64_t skipped_lines;    /* lines that are not "w1<TAB>w2<TAB>score" (gensim skips them too) */
};

/* Word-pair similarity ("#" comments, then "w1<TAB>w2<TAB>score"), case-insensitively, against the
 * first restrict_rows rows (<= 0: 300000, as gensim's evaluate_word_pairs). Spearman uses
 * tie-averaged ranks (as scipy). Fewer than 2 usable pairs is AMUSE_EINVAL. */
AMUSE_API int amuse_w2v_eval_pairs(struct amuse_word_vectors *wv, const char *path, int64_t restrict_rows,
                         struct amuse_w2v_pairs_result *out);

/* Pearson and Spearman correlation of two series (exposed for tests). NaN when undefined. */
AMUSE_API double amuse_pearson(const double *x, const double *y, int64_t n);
AMUSE_API double amuse_spearman(const double *x, const double *y, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
