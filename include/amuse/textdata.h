/* amuse/textdata.h - datasets from UTF-8 text files, for character models, and text recipes.
 *
 * Two tasks:
 *   - "lm": a language-model dataset. The text becomes one stream of character ids; sample i is
 *     the window ids[i*stride .. i*stride + T) and its targets the same window shifted by one.
 *   - "pairs": `source<TAB>target` lines (blank lines skipped) for an encoder-decoder with
 *     teacher forcing: the encoder input is the source's ids; the decoder input is <s> followed
 *     by the target's ids; the decoder's targets are the target's ids followed by </s>. Shorter
 *     sequences are padded with id 0 (AMUSE_CHAR_PAD), and the padded target steps have weight
 *     0 (masked out of loss and accuracy). Pairs longer than the lengths asked for are skipped
 *     and counted.
 * An input is token ids (int32, shape (T)) or one-hot characters (float32, (T, V), padding the
 * one-hot of id 0), as the model's InputLayer says. Targets are int32 ids, or one-hot floats for
 * a model compiled with categorical (not sparse) cross-entropy.
 *
 * Errors name the file and the byte offset (and, for pairs, the line): invalid UTF-8, a NUL byte,
 * a line without a TAB or with more than one.
 *
 * A text recipe is a model recipe (amuse/model.h) whose "data" section names a text file:
 *     "data": {"text": "data/text/poems-zh.txt", "task": "lm", "seq_length": 64,
 *              "stride": 64, "min_count": 1, "max_size": 0}
 *     "data": {"text": "data/text/lines-en.tsv", "task": "pairs", "source_length": 0,
 *              "target_length": 0, "max_pairs": 0, ...}
 * (lengths 0: the longest in the data, at most AMUSE_TEXT_MAX_SEQ). Loading it builds the
 * vocabulary (amuse/charvocab.h) from the file, then SETS in the model config what the data
 * decides: the time axis of each InputLayer (and the last axis of one-hot inputs: the
 * vocabulary size), every Embedding's input_dim, and the units of the output layer (the
 * vocabulary size). The vocabulary is stored in the config, so it is saved with the model.
 *
 * Not here: word or subword tokens, streaming corpora larger than memory (files are read whole,
 * up to AMUSE_TEXT_MAX_BYTES).
 */
#ifndef AMUSE_TEXTDATA_H
#define AMUSE_TEXTDATA_H

#include "amuse/charvocab.h"
#include "amuse/data.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_TEXT_MAX_BYTES    ((size_t)256 << 20) /* a corpus file */
#define AMUSE_TEXT_MAX_SEQ      1024                /* T of a window or a pair side */
#define AMUSE_TEXT_MAX_ELEMENTS ((int64_t)1 << 28)  /* floats or ids in one dataset array */

/* Read a UTF-8 text file whole (NUL-terminated; *len excludes the NUL). Errors: AMUSE_ENOTFOUND,
 * AMUSE_EIO, AMUSE_ETOOBIG (over AMUSE_TEXT_MAX_BYTES), AMUSE_EFORMAT ("<path>: byte N: invalid
 * UTF-8" or "... NUL byte"). *text is NULL on failure; the caller frees it with free(). */
AMUSE_API int amuse_text_read(const char *path, char **text, size_t *len);

/* Shapes of a text dataset's arrays. */
struct amuse_text_layout {
    int onehot[2];      /* input k is (T, V) one-hot floats, else (T) int32 ids */
    int sparse_targets; /* int32 target ids; else one-hot float targets */
};

/* A language-model dataset: windows of T (1 .. AMUSE_TEXT_MAX_SEQ) characters every `stride`
 * (1 .. T) characters; targets shifted by one. Characters outside v become AMUSE_CHAR_UNK.
 * `source` names the text in messages. Errors: AMUSE_EINVAL (T, stride, a text too short for
 * one window), AMUSE_EFORMAT (invalid UTF-8, with the byte offset), AMUSE_ETOOBIG,
 * AMUSE_ENOMEM. d is overwritten (it must not hold data); release with amuse_dataset_release. */
AMUSE_API int amuse_text_lm_dataset(struct amuse_dataset *d, const struct amuse_charvocab *v,
                                    const char *text, size_t len, const char *source, int T,
                                    int stride, const struct amuse_text_layout *layout);

/* The longest source and target (in characters) of a pair file's text, checking its lines. */
AMUSE_API int amuse_text_pairs_lengths(const char *text, size_t len, const char *source,
                                       int *source_max, int *target_max);

/* A pair dataset with encoder inputs of source_len steps and decoder inputs and targets of
 * target_len steps (target characters + 1, for <s> / </s>); at most max_pairs pairs (0: all).
 * *skipped (may be NULL) receives how many pairs were too long. Inputs are named as the model's
 * InputLayers are fed by position. Errors as above, and AMUSE_EINVAL when no pair fits. */
AMUSE_API int amuse_text_pairs_dataset(struct amuse_dataset *d, const struct amuse_charvocab *v,
                                       const char *text, size_t len, const char *source,
                                       int source_len, int target_len, int64_t max_pairs,
                                       const struct amuse_text_layout *layout, int64_t *skipped);

/* Build an untrained model and its training set from a text recipe (above). limit > 0 keeps the
 * first `limit` samples. Errors name the recipe and key at fault ("data.task must be ...") or
 * the corpus file and byte offset; AMUSE_ENOTFOUND if the recipe has no data.text.
 * *out is NULL on failure and d left empty. */
struct amuse_model;
AMUSE_API int amuse_text_recipe_load(struct amuse_model **out, struct amuse_dataset *d,
                                     const char *recipe_path, int64_t limit);

#ifdef __cplusplus
}
#endif
#endif
