/* amuse/generate.h - text generation from a trained character model, token by token, for many
 * streams at once.
 *
 * A generator is loaded from a model directory whose config.json carries a "vocabulary"
 * (amuse/charvocab.h). Two kinds of trained graphs are generators:
 *   - a language model (one token-id or one-hot input of T steps; its output's last axis is the
 *     vocabulary): the library derives the inference graph from the trained one, with the same
 *     weights, its recurrent layers made stateful and its input one time step long;
 *   - an encoder-decoder (two inputs; a recurrent layer of the decoder takes its initial_state
 *     from the final states of a recurrent layer of the encoder, as in Keras's lstm_seq2seq): the
 *     library derives the encoder (input -> that layer's final states) and the one-step decoder,
 *     as the Keras example does by hand. Its source is padded to the encoder's T as in training.
 * Anything else is refused with AMUSE_EUNSUPPORTED ("not a generator").
 *
 * Streams live in slots 0 .. slots-1. amuse_generator_start gives a free slot a prompt (checked
 * and encoded at once). amuse_generator_step first reads the prompts of the slots started since
 * the last step, all together (for a language model: the prompts' characters run through the
 * recurrent state, one batched pass per character position, at most AMUSE_GENERATE_PRIME_CHUNK
 * characters of each prompt per step; for an encoder-decoder: the prompts are the sources, encoded
 * in one batched pass), then advances EVERY slot whose prompt has been read by one token in one
 * batched forward pass (continuous batching: slots join with start and leave when they finish or
 * with amuse_generator_cancel, between steps). So streams already running wait for new prompts at
 * most one chunk per step, and N new prompts cost far less than N times one. Each slot samples
 * with its own amuse_sampler (its own seed), so a stream's text does not depend on which other
 * streams share the step: same model, prompt and seed, same text. One caveat: a pass over at
 * most 4 streams computes its products row by row (matrix-vector: one stream runs 4-6 times
 * faster so), a wider one as one matrix product, and the two round differently in the last bit;
 * that changes a draw only when the random number falls within that rounding of the boundary
 * between two tokens. A stream run alone, or always with at most 3 others (or always with more),
 * gets exactly the same text.
 *
 * Line shape (for verse): with it on, the length of the prompt's first half-line (the characters,
 * known to the vocabulary or not, before the first of ， 。 ？ ！ ； 、 or a newline that follows
 * some text) is kept for every half-line written: the sampler may not end a half-line (with one
 * of those marks or the end token) before it has that many characters, must end it when it has,
 * and may not start one with a mark (a newline may start one). The model still chooses which mark and which
 * characters; a prompt without such a half-line, or a vocabulary without the marks, leaves the
 * stream free. Off by default; a model's config turns it on with "generation": {"line_shape":
 * true} (the Chinese poem and couplet defaults do), and a request can override it.
 *
 * Threads: a pass over few streams runs on ONE thread by default, whatever amuse_set_threads says
 * (amuse_generator_set_threads): for the products of one-step passes, waking and waiting for more
 * threads costs more than it gives, and on a loaded machine far more.
 *
 * Prompt characters the vocabulary lacks are SKIPPED and counted (prompt_unknown in the usage);
 * a prompt with no known character at all is AMUSE_EINVAL, as is an empty prompt.
 *
 * Stop conditions: max_tokens (finish "length"), the end token </s> or a stop string (finish
 * "stop"). Text is held back while it could still become the start of a stop string, so the
 * text handed out never contains any part of a stop string; the stop string itself is not sent.
 *
 * Threads: a generator is NOT thread-safe. Use it from one thread at a time (the server's batcher
 * thread); different generators may run on different threads.
 *
 * Not here: beam search, word or subword vocabularies, saving a stream's state.
 */
#ifndef AMUSE_GENERATE_H
#define AMUSE_GENERATE_H

#include "amuse/charvocab.h"
#include "amuse/error.h"
#include "amuse/sampling.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_GENERATE_MAX_SLOTS      1024 /* slots per generator */
#define AMUSE_GENERATE_MAX_PROMPT     4096 /* characters of a prompt */
#define AMUSE_GENERATE_MAX_TOKENS     4096 /* a language model's cap on max_tokens (default) */
#define AMUSE_GENERATE_MAX_STOPS      4    /* stop strings per stream (OpenAI's limit) */
#define AMUSE_GENERATE_MAX_STOP_BYTES 64   /* bytes of one stop string */
#define AMUSE_GENERATE_PRIME_CHUNK    64   /* prompt characters a slot reads per step */
#define AMUSE_GENERATE_SERIAL_ROWS    64   /* automatic threads: passes over at most this many
                                            * streams run on one thread */
#define AMUSE_GENERATE_MAX_THREADS    1024 /* amuse_generator_set_threads */

enum amuse_generator_kind {
    AMUSE_GENERATOR_LM = 1,     /* character language model: the prompt is continued */
    AMUSE_GENERATOR_SEQ2SEQ = 2 /* encoder-decoder: the prompt is the source, the reply is new */
};

enum amuse_finish {
    AMUSE_FINISH_NONE = 0,   /* the stream goes on */
    AMUSE_FINISH_LENGTH = 1, /* max_tokens reached ("length") */
    AMUSE_FINISH_STOP = 2    /* the end token or a stop string ("stop") */
};

/* "length", "stop", or NULL for AMUSE_FINISH_NONE (OpenAI's finish_reason). */
AMUSE_API const char *amuse_finish_name(enum amuse_finish f);

struct amuse_generator;

/* Load a generator from a model directory (config.json with a "vocabulary", model.safetensors),
 * with `slots` stream slots (1 to AMUSE_GENERATE_MAX_SLOTS). Errors: those of amuse_model_load;
 * AMUSE_EUNSUPPORTED naming why the model is not a generator (no vocabulary, output width not the
 * vocabulary's size, a graph of neither kind); AMUSE_EINVAL for slots; AMUSE_ENOMEM.
 * *out is NULL on failure. Free with amuse_generator_free. */
AMUSE_API int amuse_generator_load(struct amuse_generator **out, const char *dir, int slots);

/* The same from a model in memory (e.g. just trained; its config must carry the vocabulary). The
 * weights are copied: m stays the caller's, unchanged, and may be freed at once. */
struct amuse_model;
AMUSE_API int amuse_generator_from_model(struct amuse_generator **out, struct amuse_model *m,
                                         int slots);

AMUSE_API void amuse_generator_free(struct amuse_generator *g);

AMUSE_API enum amuse_generator_kind amuse_generator_kind(const struct amuse_generator *g);
AMUSE_API int amuse_generator_slots(const struct amuse_generator *g);
/* The model's cap on max_tokens: for a language model the config's "generation": {"max_tokens"}
 * (default AMUSE_GENERATE_MAX_TOKENS); for an encoder-decoder the decoder's trained length. */
AMUSE_API int amuse_generator_max_tokens(const struct amuse_generator *g);
/* The vocabulary (owned by the generator). */
AMUSE_API const struct amuse_charvocab *amuse_generator_vocab(const struct amuse_generator *g);
/* The model's name (config "name"). */
AMUSE_API const char *amuse_generator_name(const struct amuse_generator *g);
/* 1 if the model's config keeps line shapes by default ("generation": {"line_shape": true}). */
AMUSE_API int amuse_generator_line_shape(const struct amuse_generator *g);

/* Threads for this generator's forward passes, on the thread that calls step (the count is
 * set for the pass and restored after it; other threads are not affected). threads > 0: every
 * pass uses that many. 0 (the default, automatic): passes over at most
 * AMUSE_GENERATE_SERIAL_ROWS streams use one thread, wider ones the calling thread's count
 * (amuse_set_threads). AMUSE_EINVAL for threads outside [0, AMUSE_GENERATE_MAX_THREADS]. */
AMUSE_API int amuse_generator_set_threads(struct amuse_generator *g, int threads);
/* The value set by amuse_generator_set_threads (0: automatic). */
AMUSE_API int amuse_generator_threads(const struct amuse_generator *g);

/* ---- streams ------------------------------------------------------------------------------ */

enum amuse_line_shape {
    AMUSE_LINE_SHAPE_MODEL = 0, /* the model's config decides (the default) */
    AMUSE_LINE_SHAPE_OFF = 1,   /* free: the model writes lines of any length */
    AMUSE_LINE_SHAPE_KEEP = 2   /* keep the prompt's first half-line length (above) */
};

struct amuse_generate_request {
    const char *prompt; /* UTF-8, prompt_len bytes (need not be NUL-terminated) */
    size_t prompt_len;
    int max_tokens; /* 1 .. amuse_generator_max_tokens; 0: that cap. Default 0 */
    struct amuse_sampling sampling;
    const char *const *stop; /* n_stop stop strings (UTF-8, 1 .. AMUSE_GENERATE_MAX_STOP_BYTES
                              * bytes each), at most AMUSE_GENERATE_MAX_STOPS */
    int n_stop;
    enum amuse_line_shape line_shape; /* default AMUSE_LINE_SHAPE_MODEL */
};

/* Defaults: no prompt, max_tokens 0, amuse_sampling_defaults, no stop strings, the model's line
 * shape. */
AMUSE_API void amuse_generate_request_defaults(struct amuse_generate_request *r);

/* Token counts for usage reports. */
struct amuse_generate_usage {
    int prompt_tokens;     /* prompt characters in the vocabulary (those the model read) */
    int prompt_unknown;    /* prompt characters skipped (not in the vocabulary) */
    int completion_tokens; /* tokens sampled so far (the end token included) */
};

/* Give free slot `slot` the request r and make it active. The prompt is checked and encoded now
 * and read by the next step (for a language model, all its characters but the last one, which
 * is the slot's first input to the batched step).
 * Errors (AMUSE_EINVAL, the message naming the field): slot out of range or already active,
 * empty prompt or no known character, a prompt over AMUSE_GENERATE_MAX_PROMPT characters (an
 * encoder-decoder: over its encoder's length; AMUSE_ETOOBIG), max_tokens outside
 * [0, amuse_generator_max_tokens], sampling fields out of range (amuse_sampling_check), too
 * many, empty, too long or invalid stop strings; AMUSE_EFORMAT for invalid UTF-8 in the prompt
 * (with its byte offset); AMUSE_ENOMEM. On failure the slot stays free. */
AMUSE_API int amuse_generator_start(struct amuse_generator *g, int slot,
                                    const struct amuse_generate_request *r);

/* 1 if the slot holds an active stream, else 0 (also for a slot out of range). */
AMUSE_API int amuse_generator_active(const struct amuse_generator *g, int slot);
/* The number of active slots. */
AMUSE_API int amuse_generator_active_count(const struct amuse_generator *g);
/* The lowest free slot, or -1 when all are active. */
AMUSE_API int amuse_generator_free_slot(const struct amuse_generator *g);

/* Free a slot now (a client went away): its state is reset and it can be started again. A free
 * or out-of-range slot is left alone. */
AMUSE_API void amuse_generator_cancel(struct amuse_generator *g, int slot);

/* Usage of an active slot, or of the stream that last finished in it (zeros if none ran). */
AMUSE_API struct amuse_generate_usage amuse_generator_usage(const struct amuse_generator *g,
                                                            int slot);

/* What one step did to one slot. */
struct amuse_generate_event {
    int slot;
    int32_t token;    /* the id sampled this step */
    int line_length;  /* the half-line length kept for this stream (line shape), or 0 */
    const char *text; /* UTF-8 bytes to hand out now (may be empty while text is held
                       * back for a possible stop string); owned by the generator, valid
                       * until the next step, start or cancel on it. Not NUL-terminated */
    size_t len;
    enum amuse_finish finish; /* != NONE: the stream ended with this step and its slot is free */
    struct amuse_generate_usage usage;
};

/* Read the prompts of newly started slots (see the top of this file), then advance every slot
 * whose prompt has been read by one token: one batched forward pass over the slots that need
 * one, then a sample per slot. Writes one event per slot that sampled (in slot order) into
 * events[0 .. cap), *n_events receiving how many; a slot still reading a prompt longer than
 * AMUSE_GENERATE_PRIME_CHUNK characters has no event this step (so *n_events may be less than
 * the active count); slots that finish are freed (state reset).
 * cap must be at least amuse_generator_active_count (AMUSE_EINVAL otherwise). With no active
 * slot, *n_events = 0 and nothing runs. Errors: AMUSE_EINVAL, AMUSE_ENOMEM, the model's. */
AMUSE_API int amuse_generator_step(struct amuse_generator *g, struct amuse_generate_event *events,
                                   int cap, int *n_events);

/* The probabilities the slot's next token will be sampled from (vocabulary-size floats, after
 * the model, before the sampler), computing them now if the slot needs a forward pass (reading
 * its prompt first if it has not been read: that also reads the other new slots' prompts). For
 * tests and tools: the step itself runs the slot alone. NULL for a free slot or on error. */
AMUSE_API const float *amuse_generator_next_probs(struct amuse_generator *g, int slot);

#ifdef __cplusplus
}
#endif
#endif
