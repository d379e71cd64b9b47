/* amuse/sentiment.h - review and comment sentiment: a tokenizer for review text, a trained linear
 * model, and a scorer that gives each text a label (negative, neutral, positive) and a score in
 * [-1, 1].
 *
 * The model (docs/ARCHITECTURE.md, "Review sentiment") is a logistic regression on three kinds of
 * features: hashed word unigrams and bigrams scaled by naive-Bayes log-count ratios (Wang and
 * Manning, 2012), the average of word vectors (word2vec) of the text's words, split by negation
 * scope, and sums of lexicon valences, plain and with the rules Hutto and Gilbert (2014) describe
 * for VADER (negation damping, degree words, "but" contrast, "!" emphasis, x / sqrt(x^2 + 15)). It
 * is trained on the polarity of human-rated snippets; the score is 2 * sigmoid(logit) - 1 and the
 * neutral band |score| <= neutral_threshold is chosen on a validation part. Because the model is
 * linear, the word vectors fold into one number per word at the end of training, so a model
 * directory needs neither the vectors nor the lexicon file.
 *
 * A model directory holds config.json (settings and what training measured), model.safetensors
 * (tensors "ngram_weights" [2^hash_bits], "dense_weights" [8], "bias" [1] and, when there are
 * words, "word_table" [words, 4]) and words.vocab (the table's words, one "word 1" line each, the
 * word2vec vocabulary format).
 *
 * Threads: a loaded model is never changed by scoring, so any number of threads may score with one
 * model at the same time. Not here: languages other than English, sarcasm, aspect-level sentiment,
 * sequence models. Every function returns AMUSE_OK or a negative status and sets
 * amuse_last_error(); nothing prints.
 */
#ifndef AMUSE_SENTIMENT_H
#define AMUSE_SENTIMENT_H

#include "amuse/error.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hard caps on what input can grow. */
#define AMUSE_SENTIMENT_MAX_TEXT_BYTES  (64 * 1024) /* one text; longer is AMUSE_ETOOBIG */
#define AMUSE_SENTIMENT_MAX_TOKEN_BYTES 64          /* longer words keep their first 64 bytes */
#define AMUSE_SENTIMENT_MAX_BATCH       100000      /* texts in one amuse_sentiment_score call */
#define AMUSE_SENTIMENT_MAX_EXAMPLES    5000000     /* snippets in one data file */
#define AMUSE_SENTIMENT_MAX_HASH_BITS   24

/* ------------------------------------------------------------------------------- tokenizer */

/* Tokens of one text: items[0..n) are NUL-terminated UTF-8 strings owned by the struct. */
struct amuse_sentiment_tokens {
    int n;
    char **items;
    char *pool; /* the strings, back to back */
};

/* Split review text into tokens:
 * - HTML entities are decoded first (&amp; &lt; &gt; &quot; &apos; &nbsp; &#NN; &#xHH;); an
 *   unknown or malformed entity stays as written;
 * - ASCII letters are lower-cased; runs of more than three equal characters are cut to three
 *   ("sooooo" -> "sooo"); a word keeps inner apostrophes ("don't"; U+2019 counts as one);
 * - emoticons are tokens of their own (":)", ":-(", ":d", ";)", ":p", "<3", ":'(", "=)", ...);
 * - "!" and "?" are tokens (one per run); other punctuation separates words;
 * - a URL becomes "<url>", an @mention "<user>", a #hashtag its word;
 * - negation scope: after a negator ("not", "no", "never", "nothing", "without", a word ending in
 *   "n't", ...) every word is prefixed "not_" up to the next . , ; : ! ? or "but".
 * Errors: AMUSE_EFORMAT "byte N: invalid UTF-8" (a NUL byte counts as invalid) with the offset
 * in text; AMUSE_ETOOBIG for more than AMUSE_SENTIMENT_MAX_TEXT_BYTES. An empty text gives zero
 * tokens. On failure *out is empty. Release with amuse_sentiment_tokens_release. */
AMUSE_API int amuse_sentiment_tokenize(const char *text, size_t len,
                                       struct amuse_sentiment_tokens *out);
AMUSE_API void amuse_sentiment_tokens_release(struct amuse_sentiment_tokens *t); /* NULL is fine */

/* ---------------------------------------------------------------------------------- scoring */

enum amuse_sentiment_label {
    AMUSE_SENTIMENT_NEGATIVE = -1,
    AMUSE_SENTIMENT_NEUTRAL = 0,
    AMUSE_SENTIMENT_POSITIVE = 1
};

/* "negative", "neutral" or "positive" ("?" for anything else). */
AMUSE_API const char *amuse_sentiment_label_name(int label);

struct amuse_sentiment_result {
    int label;   /* enum amuse_sentiment_label */
    float score; /* -1 (most negative) .. 1 (most positive) */
};

struct amuse_sentiment_model;

/* Load a model directory (config.json, model.safetensors, words.vocab when the config lists
 * words). Errors name the file and field: AMUSE_ENOTFOUND, AMUSE_EFORMAT for a corrupt or
 * inconsistent file (wrong "type", tensor shapes that disagree with the config, non-finite
 * weights), AMUSE_EUNSUPPORTED for a newer format version. *out is NULL on failure. */
AMUSE_API int amuse_sentiment_load(const char *dir, struct amuse_sentiment_model **out);
AMUSE_API void amuse_sentiment_free(struct amuse_sentiment_model *m); /* NULL is fine */

/* Write m into dir (created with its parents): model.safetensors and words.vocab first, then
 * config.json, each atomically. */
AMUSE_API int amuse_sentiment_save(const struct amuse_sentiment_model *m, const char *dir);

/* Score n texts (lens[i] bytes each; lens may be NULL for NUL-terminated texts) into out[0..n).
 * n is 1..AMUSE_SENTIMENT_MAX_BATCH. A text that is empty or only white space is AMUSE_EINVAL;
 * one over the cap AMUSE_ETOOBIG; invalid UTF-8 AMUSE_EFORMAT; each message names the text's
 * index ("text 3: byte 17: invalid UTF-8"). On failure out is unspecified. Thread-safe. */
AMUSE_API int amuse_sentiment_score(const struct amuse_sentiment_model *m, const char *const *texts,
                                    const size_t *lens, int n, struct amuse_sentiment_result *out);

/* The band |score| <= threshold that is labelled neutral. */
AMUSE_API double amuse_sentiment_neutral_threshold(const struct amuse_sentiment_model *m);

/* ---------------------------------------------------------------------------- labelled data */

/* Human-rated snippets: "id<TAB>rating<TAB>text" lines, rating in [-scale, scale]. */
struct amuse_sentiment_set {
    int64_t n;
    char **ids;
    char **texts;
    float *ratings; /* rating / scale, so in [-1, 1] */
};

/* Read a TSV file. scale > 0 is the rating scale (4 for the VADER data: -4..+4). A "\r" before
 * the newline is accepted; blank lines are skipped. Errors name the line: a missing field, a
 * rating that is not a number or is outside [-scale, scale], invalid UTF-8 (with its byte
 * offset), a text over AMUSE_SENTIMENT_MAX_TEXT_BYTES; AMUSE_EINVAL for a file without snippets.
 * On failure *set is empty. Release with amuse_sentiment_set_release. */
AMUSE_API int amuse_sentiment_set_read(const char *path, double scale,
                                       struct amuse_sentiment_set *set);
AMUSE_API void amuse_sentiment_set_release(struct amuse_sentiment_set *set); /* NULL is fine */

/* The gold class of a normalised rating: positive above 0.05, negative below -0.05. */
AMUSE_API int amuse_sentiment_gold_label(float rating);

/* The fixed split: part 0 (train, 70%), 1 (validation, 10%) or 2 (test, 20%) of snippet `id` of
 * data set `name` (the file name without directory and ".tsv"), from a hash of name, id and seed.
 * It does not depend on the order or the number of lines. */
AMUSE_API int amuse_sentiment_split_part(const char *name, const char *id, uint64_t seed);

/* ------------------------------------------------------------------------------- evaluation */

struct amuse_sentiment_eval {
    int64_t n;               /* snippets */
    int64_t confusion[3][3]; /* [gold][predicted], index label + 1: negative, neutral, positive */
    double macro_f1;         /* three classes */
    int64_t binary_n;        /* snippets whose gold class is not neutral */
    double binary_accuracy;  /* sign of the score vs gold class on those */
    double pearson;          /* Pearson r of score and rating (0 when undefined) */
};

/* Compare n predictions (labels and scores) with normalised ratings. */
AMUSE_API void amuse_sentiment_evaluate(const float *ratings,
                                        const struct amuse_sentiment_result *pred, int64_t n,
                                        struct amuse_sentiment_eval *ev);

/* --------------------------------------------------------------------------------- training */

struct amuse_sentiment_options {
    int hash_bits;              /* 2^hash_bits n-gram buckets (20) */
    int epochs;                 /* passes of AdaGrad SGD (12) */
    double learning_rate;       /* AdaGrad step of the bias, lexicon and vector weights (0.1) */
    double ngram_learning_rate; /* AdaGrad step of the n-gram weights (0.03): smaller, so that
                                   they do not drown the features that carry over to other
                                   domains */
    double l2;                  /* L2 penalty per example update (1e-6) */
    uint64_t seed;              /* shuffling (1); same data + options = the same model */
    double neutral_threshold;   /* < 0: chosen for macro-F1 on the validation set (-1) */
    const char *vectors;        /* word2vec file (text or binary) or NULL */
    const char *lexicon;        /* "word<TAB>valence" lines, valence in [-4, 4], or NULL; entries
                                   with a space or valence 0 are skipped, ASCII is lower-cased */
    const char *description;    /* stored in config.json, may be NULL */
};

AMUSE_API void amuse_sentiment_options_default(struct amuse_sentiment_options *o);

/* Train on train (snippets whose gold class is neutral are left out of the fit) and choose the
 * neutral band on valid (which may be empty: then 0.05 unless given). Errors: AMUSE_EINVAL for bad
 * options or a training set without both positive and negative snippets; file errors for the
 * vectors and lexicon (the lexicon's with its line). *out is NULL on failure. */
AMUSE_API int amuse_sentiment_train(const struct amuse_sentiment_set *train,
                                    const struct amuse_sentiment_set *valid,
                                    const struct amuse_sentiment_options *o,
                                    struct amuse_sentiment_model **out);

/* Record a named figure in the model's config.json "metrics" object (e.g. "valid_binary_accuracy");
 * a name seen before is replaced. At most 64 figures; names up to 63 bytes. */
AMUSE_API int amuse_sentiment_set_metric(struct amuse_sentiment_model *m, const char *name,
                                         double value);

#ifdef __cplusplus
}
#endif
#endif
