/* amuse/sampling.h - choosing the next token from a model's scores, and stop strings.
 *
 * A sampler turns one row of scores over a vocabulary into one token id. The pipeline, in order:
 *   1. repetition penalty: for each distinct token among the last `repetition_window` tokens of the
 *      history, a positive score is divided by `repetition_penalty` and a negative one multiplied by
 *      it (the CTRL paper's rule, as llama.cpp and Hugging Face apply it);
 *   2. temperature 0: the highest score wins (ties: the lowest id), and steps 3-6 are skipped;
 *   3. top-k: keep the k highest scores (ties at the boundary: lower ids first);
 *   4. probabilities: softmax(score / temperature) over what is kept;
 *   5. top-p (nucleus): keep the smallest set of most probable tokens whose mass reaches top_p;
 *   6. min-p: drop tokens whose probability is below min_p times the most probable one's;
 *   then draw from what is left, renormalised, with the sampler's own xoshiro256** stream.
 * Every filter keeps at least the most probable token, so a draw always succeeds. Same seed, same
 * scores, same history: same tokens, on every machine.
 *
 * Scores are logits or log-probabilities (softmax makes them the same). A model whose last layer
 * is a softmax gives probabilities: pass them through amuse_sampler_log_probs first.
 *
 * Not here: beam search, grammar constraints, and anything that knows what a token means (stop
 * strings are matched on the decoded text by amuse_stop_find below).
 */
#ifndef AMUSE_SAMPLING_H
#define AMUSE_SAMPLING_H

#include "amuse/error.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct amuse_sampling {
    float temperature;        /* >= 0; 0 is greedy. Default 1 */
    int top_k;                /* >= 0; 0 keeps every token. Default 0 */
    float top_p;              /* (0, 1]; 1 keeps every token. Default 1 */
    float min_p;              /* [0, 1); 0 keeps every token. Default 0 */
    float repetition_penalty; /* >= 1 (1 is off); at most 10. Default 1 */
    int repetition_window;    /* how many of the last tokens the penalty looks at, >= 0. Default 64 */
    uint64_t seed;            /* the draw's random stream. Default 0 */
};

/* The defaults above. */
AMUSE_API void amuse_sampling_defaults(struct amuse_sampling *s);

/* 0 when every field is in its range; otherwise AMUSE_EINVAL with a message naming the field and
 * its allowed range (e.g. "top_p: 1.5 is outside (0, 1]"). NaN is never in range. */
AMUSE_API int amuse_sampling_check(const struct amuse_sampling *s);

struct amuse_sampler;

/* A sampler for a vocabulary of vocab_size tokens (1 to 16,777,216), seeded from s->seed.
 * Errors: AMUSE_EINVAL (amuse_sampling_check's, or the vocabulary size), AMUSE_ENOMEM.
 * *out is NULL on failure. Free with amuse_sampler_free. One sampler per stream: not thread-safe. */
AMUSE_API int amuse_sampler_new(struct amuse_sampler **out, const struct amuse_sampling *s,
                                int vocab_size);
AMUSE_API void amuse_sampler_free(struct amuse_sampler *sm);

/* Restart the random stream from a seed (a new request on a reused sampler). */
AMUSE_API void amuse_sampler_reseed(struct amuse_sampler *sm, uint64_t seed);

/* Choose the next token from scores[vocab_size] (not modified). history holds the tokens so far
 * (prompt and generated, oldest first; NULL when n_history is 0) for the repetition penalty.
 * `allowed`, when not NULL, has vocab_size bytes: only tokens whose byte is non-zero can be chosen
 * (padding and reserved ids, for instance); AMUSE_EINVAL if it allows none.
 * Scores that are NaN are never chosen; AMUSE_EINVAL if no score is usable. */
AMUSE_API int amuse_sampler_next(struct amuse_sampler *sm, const float *scores,
                                 const int32_t *history, int64_t n_history,
                                 const uint8_t *allowed, int32_t *token);

/* The same choice from probabilities (a softmax output) instead of scores. With settings that
 * leave the distribution as it is (temperature 1; no top-k, top-p, min-p or repetition penalty)
 * the draw reads the probabilities directly, one pass with no log or exp per id; it takes the
 * same random number as amuse_sampler_next on their logs, so the tokens are the same up to float
 * rounding. Other settings: probs is turned into log-probabilities in place and passed to
 * amuse_sampler_next. Errors as amuse_sampler_next's. */
AMUSE_API int amuse_sampler_next_probs(struct amuse_sampler *sm, float *probs,
                                       const int32_t *history, int64_t n_history,
                                       const uint8_t *allowed, int32_t *token);

/* In place: p -> log(max(p, 1e-30)) for n probabilities. */
AMUSE_API void amuse_sampler_log_probs(float *p, int64_t n);

/* ---- stop strings ------------------------------------------------------------------------- */

/* Where the first stop string occurs in text[0..len), as a byte offset, or -1 if none does.
 * Stop strings that are NULL or empty are ignored.
 * *hold, when not NULL, receives how many bytes at the end of text could still become the start
 * of a stop string as more text arrives (0 when a stop was found): a streaming caller sends
 * text[0..len - *hold) now and keeps the rest back, so a client never sees part of a stop. */
AMUSE_API int64_t amuse_stop_find(const char *text, size_t len, const char *const *stops,
                                  int n_stops, size_t *hold);

#ifdef __cplusplus
}
#endif
#endif
