/* amuse/charvocab.h - a character (Unicode code point) vocabulary for text models.
 *
 * Ids 0..3 are reserved: AMUSE_CHAR_PAD (padding, masked out by Embedding(mask_zero=True)),
 * AMUSE_CHAR_UNK (a character the vocabulary lacks), AMUSE_CHAR_BOS and AMUSE_CHAR_EOS (start and
 * end of a sequence, for seq2seq targets). Ids from 4 on are code points, most frequent first (ties:
 * lower code point first), so the same text always gives the same ids. Every code point is a token,
 * including space, tab and newline (a poem's line breaks are what a model learns to place); other
 * control characters (U+0000..U+001F except tab and newline, U+007F) and the BOM U+FEFF are never
 * tokens: building skips them and encoding treats them as unknown.
 *
 * In a model's config.json the vocabulary is the object
 *     "vocabulary": {"type": "chars", "reserved": ["<pad>", "<unk>", "<s>", "</s>"],
 *                    "tokens": ["e", " ", "t", ...]}
 * where tokens[i] has id 4 + i. Not here: subword or word vocabularies, normalisation (NFC) and
 * case folding: text is taken code point by code point as it is.
 */
#ifndef AMUSE_CHARVOCAB_H
#define AMUSE_CHARVOCAB_H

#include "amuse/error.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { AMUSE_CHAR_PAD = 0, AMUSE_CHAR_UNK = 1, AMUSE_CHAR_BOS = 2, AMUSE_CHAR_EOS = 3,
       AMUSE_CHAR_RESERVED = 4 };

#define AMUSE_CHARVOCAB_MAX_TOKENS 65536 /* reserved ids included */

struct amuse_charvocab;

/* Count the code points of texts[0..n) (lens[i] bytes each, UTF-8) and keep those seen at least
 * min_count times (>= 1), at most max_size ids in all (reserved included; 0 means the cap
 * AMUSE_CHARVOCAB_MAX_TOKENS). `source` names the texts in messages. Errors: AMUSE_EFORMAT for
 * invalid UTF-8 ("<source>: byte N: invalid UTF-8", N counted from the start of texts[0] as if
 * the texts were one), AMUSE_EINVAL for bad arguments, AMUSE_ENOMEM. *out is NULL on failure. */
AMUSE_API int amuse_charvocab_build(struct amuse_charvocab **out, const char *const *texts,
                                    const size_t *lens, int n, int min_count, int max_size,
                                    const char *source);

/* Parse the config object described above (JSON text). Errors name the key and index at fault
 * (AMUSE_EFORMAT): a token that is not exactly one code point, a duplicate, a control character,
 * reserved names other than the four above, more than AMUSE_CHARVOCAB_MAX_TOKENS. */
AMUSE_API int amuse_charvocab_from_json(struct amuse_charvocab **out, const char *json,
                                        size_t len, const char *source);

/* The config object as JSON text (malloc'd, NUL-terminated; the caller frees it with free()). */
AMUSE_API int amuse_charvocab_to_json(const struct amuse_charvocab *v, char **json);

AMUSE_API void amuse_charvocab_free(struct amuse_charvocab *v);

/* Number of ids, reserved included. */
AMUSE_API int amuse_charvocab_size(const struct amuse_charvocab *v);

/* The id of a code point, or AMUSE_CHAR_UNK. */
AMUSE_API int32_t amuse_charvocab_id(const struct amuse_charvocab *v, uint32_t code_point);

/* The UTF-8 bytes of an id into out (at least 5 bytes; NUL-terminated); returns their count:
 * 0 for the reserved ids and for ids out of range. */
AMUSE_API int amuse_charvocab_text(const struct amuse_charvocab *v, int32_t id, char out[5]);

/* What encoding does with a character the vocabulary lacks. */
enum amuse_unknown_chars {
    AMUSE_UNKNOWN_AS_UNK,  /* becomes AMUSE_CHAR_UNK */
    AMUSE_UNKNOWN_SKIP,    /* dropped (counted in *n_unknown) */
    AMUSE_UNKNOWN_FAIL     /* AMUSE_EINVAL naming the character and its byte offset */
};

/* Encode UTF-8 text into at most cap ids. *n_ids receives how many were written; n_unknown (may
 * be NULL) how many characters the vocabulary lacked. Errors: AMUSE_EFORMAT for invalid UTF-8
 * (with the byte offset), AMUSE_ETOOBIG when the text needs more than cap ids, AMUSE_EINVAL under
 * AMUSE_UNKNOWN_FAIL. */
AMUSE_API int amuse_charvocab_encode(const struct amuse_charvocab *v, const char *text, size_t len,
                                     enum amuse_unknown_chars unknown, int32_t *ids, size_t cap,
                                     size_t *n_ids, size_t *n_unknown);

#ifdef __cplusplus
}
#endif
#endif
