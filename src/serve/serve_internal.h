/* serve/serve_internal.h - what the server's files share (am__ prefix, not installed).
 *
 *   http.c        libmicrohttpd glue: body accumulation with a hard cap, auth, dispatch, access log
 *   router.c      the routing table and path matching
 *   handlers.c    the V2 routes' handlers (the others live with their protocol: openai.c,
 *                 domain.c, metrics.c, static.c): decode, hand to the model's batcher, encode
 *   v2.c          KServe V2 JSON: request decoding into tensors, response encoding
 *   domain.c      /v1/images/classify and /v1/words/{similar,analogy}: no tensors, for app developers;
 *                 the one multipart/form-data parser (am__form_parse)
 *   transcriptions.c  /v1/audio/transcriptions (OpenAI's shape) for voice models
 *   ratelimit.c   per-key token bucket (429) and usage counters flushed to SQLite
 *   metrics.c     GET /metrics: Prometheus text format
 *   histogram.c   the fixed-bucket histograms the batchers fill and /metrics renders
 *   reply.c       error replies (KServe or OpenAI shape) and status -> HTTP mapping
 *   openai.c      OpenAI-compatible routes (/v1/models, /v1/embeddings) and their error format
 *   completions.c text generation: OpenAI completions and chat, KServe generate; SSE streams
 *   log.c         the log hook (JSON bodies are parsed by core/json.c)
 *   repository.c  <repo>/<model>/<version>/ loading, versions, reload with an atomic swap
 *   kind_*.c      the model kinds (network, word vectors, generator, sentiment, voice,
 *                 recommender): load, run,
 *                 V2 tensors
 *   recommend_routes.c  /v1/recommendations, /v1/items/{id}/similar: a recommender's routes
 *   batcher.c     per-model bounded queue + worker thread forming dynamic batches
 *   static.c      the playground's files from the web root (GET /, GET /web/...)
 *   auth.c        key tokens, keyed hashing, constant-time verification
 *   store.c       the key table, on src/db (SQLite or PostgreSQL)
 *   server.c      options, start, drain, free
 *   test_control.c amuse_test_control: the switches tests use (test_control.h)
 */
#ifndef AMUSE_SERVE_INTERNAL_H
#define AMUSE_SERVE_INTERNAL_H

#include "amuse/audio.h"
#include "amuse/generate.h"
#include "amuse/recsys.h"
#include "amuse/serve.h"
#include "amuse/voice.h"
#include "amuse/tensor.h"
#include "core/internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AM__SALT_BYTES 32
#define AM__HASH_BYTES 32

/* ------------------------------------------------------------------ store.c / auth.c */

const unsigned char *am__keystore_salt(const struct amuse_keystore *ks);
const char *am__keystore_backend(const struct amuse_keystore *ks); /* "sqlite", "postgres" */
/* Trust a looked-up key row for max_age_s seconds of clock (NULL: am__now) before reading it
 * again (0: read every time, the default). A revoke through this store drops it at once. */
void am__keystore_set_cache(struct amuse_keystore *ks, double max_age_s, double (*clock)(void));
int am__keystore_insert(struct amuse_keystore *ks, const struct amuse_key_info *info,
                        const unsigned char hash[AM__HASH_BYTES]);
int am__keystore_lookup(struct amuse_keystore *ks, const char *id, struct amuse_key_info *info,
                        unsigned char hash[AM__HASH_BYTES]);
/* Requests per subject ("k:<key id>", "t:<tenant>") and UTC day (days since 1970): added to at
 * each usage flush, read when a quota first meets the subject on a day. */
/* Add requests to the subject's count for the day; *total (may be NULL) is the count after it,
 * with what other processes (replicas) added. */
int am__keystore_add_daily(struct amuse_keystore *ks, const char *subject, int64_t day,
                           int64_t requests, int64_t *total);
int am__keystore_daily(struct amuse_keystore *ks, const char *subject, int64_t day,
                       int64_t *requests);

/* ------------------------------------------------------------------------------- log */

struct am__log {
    void (*fn)(void *ctx, const char *line);
    void *ctx;
};
void am__logf(const struct am__log *log, const char *fmt, ...) AM__PRINTF(2, 3);

/* -------------------------------------------------------------------------- batcher.c */

/* A unit of work handed from an HTTP thread to a model's worker. The worker fills `output` (or
 * sets `status`/`error`) and finishes the job; a generating model (later: text over SSE) instead
 * calls am__job_emit for each partial result before finishing, and the HTTP side drains them with
 * am__job_next_chunk. A job is reference counted: the submitter holds one reference and the queue
 * another; whoever drops the last frees it. All fields after `next` are guarded by the batcher's
 * lock once the job is submitted. */
struct am__chunk {
    struct am__chunk *next;
    size_t len;
    char data[]; /* len bytes */
};

struct am__model;
struct am__job {
    /* input, set before submit; read-only for the worker */
    int64_t samples;    /* batch rows this job contributes */
    float *input;       /* samples x input size (network models) */
    int64_t *rows;      /* samples row indices (word vectors) */
    /* output, written by the worker */
    float *output;      /* samples x output size, allocated by the submitter */
    int status;         /* AMUSE_OK or the failure; error holds the message */
    char error[256];
    int batch_samples;  /* samples in the batch this job ran in */
    double queued_s, run_s; /* seconds queued and running */
    /* other work on the model's worker (word queries): when set, the model's run function calls
     * task(model, job) for this job instead of its usual step; task_arg is the job's (freed with
     * it, so a waiter that gave up cannot leave the worker a dangling pointer) */
    void (*task)(const struct am__model *m, struct am__job *j);
    void *task_arg;
    /* images still to decode (decode.c): am__run_job runs this job on the decode pool first and
     * takes its input from it; dropped (unref) with the job */
    struct am__job *decode;
    /* continuous batching: the run function sets it on a job that is not finished (the worker
     * runs the job again with the next batch; it clears the flag first) */
    int more;
    /* internal */
    struct am__job *next;
    struct am__batcher *owner;
    int refs;
    int state; /* AM__JOB_QUEUED, _RUNNING, _DONE */
    int cancelled;
    double t_submit, t_start;
    struct am__chunk *chunks, **chunks_tail;
    pthread_cond_t changed;
};
enum { AM__JOB_NEW, AM__JOB_QUEUED, AM__JOB_RUNNING, AM__JOB_DONE };

/* Runs one batch on the worker thread: jobs[0..n) with `samples` rows in all. Sets each job's
 * output (or status/error), or sets its `more` to run it again with the next batch (continuous
 * batching; batcher.c). A job can be cancelled meanwhile (am__job_cancelled): its result is
 * discarded. */
typedef void (*am__run_batch)(void *ctx, struct am__job **jobs, int n, int64_t samples);

struct am__batcher_options {
    int max_batch_size;     /* samples */
    int max_queue_delay_us; /* how long the first job of a batch waits for company */
    int max_queue_size;     /* queued jobs (not counting the running batch) */
    int debug_sleep_ms;     /* sleep before each batch (tests: AMUSE_TESTCTRL_BATCH_SLEEP_MS) */
};

/* Histogram bucket bounds for /metrics (histogram.c): seconds, and batch sizes in samples. */
#define AM__TIME_BUCKETS 14
#define AM__BATCH_BUCKETS 10
extern const double am__time_bounds[AM__TIME_BUCKETS];
extern const double am__batch_bounds[AM__BATCH_BUCKETS];
/* A histogram: counts[i] observations <= bounds[i] and > bounds[i-1], counts[n] above the last. */
struct am__hist_time {
    int64_t counts[AM__TIME_BUCKETS + 1];
    double sum;
};
struct am__hist_batch {
    int64_t counts[AM__BATCH_BUCKETS + 1];
    double sum;
};
void am__hist_time_add(struct am__hist_time *h, double v);
void am__hist_batch_add(struct am__hist_batch *h, double v);

struct am__batch_stats {
    int64_t requests, batches, samples; /* completed */
    int64_t rejected_full, timed_out;
    int64_t cancelled;                  /* given up by their waiter: the client went away */
    int max_batch_samples;              /* largest batch so far */
    int queued;                         /* now */
    int running;                        /* jobs in the batch running now */
    struct am__hist_time queue_time;    /* per job: seconds from submit to its batch starting */
    struct am__hist_batch batch_size;   /* per batch: samples */
};

struct am__batcher;

int am__batcher_start(struct am__batcher **out, const struct am__batcher_options *o,
                      am__run_batch run, void *ctx, const char *name);
/* Finish what is queued, stop the worker and free. NULL is fine. */
void am__batcher_stop(struct am__batcher *b);
void am__batcher_stats(struct am__batcher *b, struct am__batch_stats *s);
int am__batcher_queued(struct am__batcher *b); /* jobs waiting now */

struct am__job *am__job_new(void); /* one reference, for the caller */
void am__job_unref(struct am__job *j);
/* Queue a job. AMUSE_ETOOBIG when the queue is full (answer 503), AMUSE_EINVAL after stop. */
int am__batcher_submit(struct am__batcher *b, struct am__job *j);
/* Wait until the job is done or has a partial result, or until deadline (CLOCK_MONOTONIC
 * seconds). Returns 0 when done, 1 when a chunk is waiting (streaming), -1 when the deadline
 * passed: the job is then cancelled (dropped from the queue, or its result discarded). */
int am__job_wait(struct am__job *j, double deadline);
/* The same, but also returns 2 at `wake` (before deadline) with the job left as it is, so the
 * waiter can look around (is its client still there?) and wait again. */
int am__job_wait_until(struct am__job *j, double deadline, double wake);
/* Give up on a job that is not done: a queued job leaves the queue, a running one's result is
 * discarded; counted in the stats' `cancelled`. The caller still unrefs its reference. */
void am__job_cancel(struct am__job *j);
/* Worker side: 1 once the waiter has given up on j (long tasks stop early). */
int am__job_cancelled(struct am__job *j);
/* Worker side of streaming: append a partial result and wake the waiter. */
int am__job_emit(struct am__job *j, const void *data, size_t len);
/* HTTP side: take the oldest partial result (caller frees), or NULL. */
struct am__chunk *am__job_next_chunk(struct am__job *j);


/* ----------------------------------------------------------------------- repository.c */

struct amuse_model;
struct amuse_word_vectors;
struct am__model;
struct am__v2_request;
struct am__v2_tensor;
struct cJSON;

/* A model kind: what a version directory holds and what the server can do with it, as a table of
 * functions (the way layer types are a table in the engine). The repository picks the kind from
 * config.json's "type" (am__model_kind_find), calls its load, starts a batcher with its run and
 * calls its release when the version is freed; v2.c, domain.c and openai.c ask the table, never
 * the kind's name. Kinds live in kind_<name>.c. */
enum {
    AM__KIND_WORDS = 1 << 0,    /* word vectors: /v1/words/..., /v1/embeddings */
    AM__KIND_GENERATE = 1 << 1, /* text generation: /v1/completions, .../generate */
    AM__KIND_SENTIMENT = 1 << 2, /* review sentiment: /v1/text/sentiment */
    AM__KIND_VOICE = 1 << 3,     /* voice commands (m->state: struct am__voice):
                                    /v1/audio/transcriptions, sound in V2 */
    AM__KIND_RECOMMEND = 1 << 4, /* recommender: /v1/recommendations, /v1/items/{id}/similar */
    AM__KIND_NO_QUEUE_DELAY = 1 << 5, /* jobs gain nothing from company: a batch never waits to
                                         fill (max_queue_delay_us 0), it takes what is queued */
};
struct am__model_kind {
    const char *name;        /* "network", "word2vec", ... (messages, metadata) */
    const char *config_type; /* config.json "type" that selects it; NULL: see claims */
    int (*claims)(const struct cJSON *cfg); /* or 1 when the config is this kind's (NULL: no) */
    unsigned flags;          /* AM__KIND_* */
    /* Fill m (input/output sizes, the kind's state) from its directory m->dir. cfg is the parsed
     * config.json, cfg_path its path for messages. Errors are the library's, via am__fail. */
    int (*load)(struct am__model *m, const struct cJSON *cfg, const char *cfg_path);
    void (*release)(struct am__model *m); /* free what load made (after the batcher stopped) */
    am__run_batch run;                    /* the batcher's run function; ctx is the model */
    /* KServe V2 tensors (v2.c): v2_input is NULL for a kind that takes none (v2_hint, appended to
     * the 400, says what to use instead). v2_input fills the job from the request's one input;
     * v2_outputs names the outputs (NULL-terminated); v2_encode_outputs appends them to the
     * reply's "outputs" array; v2_encode_tensors appends "inputs": [...], "outputs": [...]
     * (and "parameters"; NULL: empty lists) for the model metadata. */
    int (*v2_input)(const struct amuse_server *s, const struct am__model *m,
                    const struct am__v2_tensor *t, struct am__job *job);
    const char *const *v2_outputs;
    const char *v2_hint;
    void (*v2_encode_outputs)(const struct am__model *m, const struct am__v2_request *req,
                              const struct am__job *job, struct am__buf *b);
    void (*v2_encode_tensors)(const struct am__model *m, struct am__buf *b);
    /* Streaming kinds, for /metrics: slots generating now, slots freed because their client
     * went away, tokens generated (NULL: none). */
    void (*stream_figures)(const struct am__model *m, int64_t *active, int64_t *freed,
                           int64_t *tokens);
    /* More for the admin stats route (GET /v2/models/{model}/stats): appends ", \"key\": value"
     * members to the model's entry (NULL: nothing more). */
    void (*stats_json)(const struct am__model *m, struct am__buf *b);
    /* Quality figures measured when the model was made (a recommender's eval.json), shown by
     * /metrics as amuse_model_evaluation{model, figure}: fills up to max static names and their
     * values, returns how many (NULL, or 0: none). */
    int (*evaluation)(const struct am__model *m, const char **figures, double *values, int max);
};
extern const struct am__model_kind am__kind_network;      /* kind_network.c */
extern const struct am__model_kind am__kind_word_vectors; /* kind_vectors.c */
extern const struct am__model_kind am__kind_generator;    /* kind_generator.c */
extern const struct am__model_kind am__kind_sentiment;    /* kind_sentiment.c */
extern const struct am__model_kind am__kind_voice;        /* kind_voice.c */
extern const struct am__model_kind am__kind_recommender;  /* kind_recommender.c */
/* The kind of a parsed config.json: the one its "type" names, else the first that claims it,
 * else the default (network). */
const struct am__model_kind *am__model_kind_find(const struct cJSON *cfg);
/* Worker side, for run functions: every job fails with status and amuse_last_error(). */
void am__jobs_fail(struct am__job **jobs, int n, int status);

struct am__model {
    char *name;
    int64_t version;
    int64_t created; /* Unix seconds when this version was loaded (OpenAI's "created") */
    char *dir;
    const struct am__model_kind *kind;
    void *state;                    /* the kind's own (generator: its generator) */
    struct amuse_model *net;        /* network models: used only on the batcher's worker */
    struct amuse_word_vectors *wv;  /* word vectors: read-only once loaded */
    struct amuse_shape input_shape; /* one sample */
    int64_t input_size, output_size;
    struct am__tenants *tenants;    /* who may use it (tenant.c); NULL: every tenant */
    int image;                      /* input is h x w x 1|3: BYTES images accepted */
    int image_invert;
    struct am__batcher *batcher;
    float *batch_input;             /* worker scratch: max_batch_size x input_size */
    int max_batch_size;
    int model_threads;
    int refs; /* guarded by the repository lock */
    int retired; /* no longer in the repository: freed at refs == 0 */
};

struct am__repository;

/* model_threads > 0: OpenMP/BLAS threads each model's worker uses (0: the process default). */
int am__repository_open(struct am__repository **out, const char *dir,
                        const struct am__batcher_options *bo, int model_threads,
                        const struct am__log *log);
void am__repository_free(struct am__repository *r);
/* A model by name with a reference held (release with am__model_release), or NULL. */
struct am__model *am__repository_get(struct am__repository *r, const char *name);
void am__model_release(struct am__repository *r, struct am__model *m);
/* Names of the served models (a snapshot; free each and the array). */
int am__repository_names(struct am__repository *r, char ***names, int *n);
/* Everything on disk, for the index route: appends a JSON array of {name, version, state,
 * reason} to b. */
void am__repository_index_json(struct am__repository *r, struct am__buf *b);
/* Load a model's newest loadable version from disk and swap it in; the old one finishes what it
 * has queued. AMUSE_ENOTFOUND if the directory is missing; the error message says why nothing
 * could be loaded (the old version keeps serving). *version receives the version now served. */
int am__repository_load(struct am__repository *r, const char *name, int64_t *version);
int am__repository_count(struct am__repository *r);
/* Hot reload by polling: a thread scans the repository every interval_s seconds and reloads a
 * model whose directory changed (and stayed unchanged for one more scan), or loads one that
 * appeared. interval_s <= 0: no thread. Stop joins the thread (after a load in progress); safe to
 * call twice, and am__repository_free calls it. */
int am__repository_poll_start(struct am__repository *r, int interval_s);
void am__repository_poll_stop(struct am__repository *r);

/* ------------------------------------------------------------------- kind_generator.c */

/* A generation job's request (the job's task_arg: ONE allocation, freed with the job): the
 * library's request (prompt and stop strings point into buf), n choices (the job's samples).
 * started/active are the worker's. */
struct am__gen_request {
    struct amuse_generate_request req;
    int n;
    int started, active;
    const char *stops[AMUSE_GENERATE_MAX_STOPS];
    char buf[]; /* the prompt, then each stop string, NUL-terminated */
};
/* What the worker emits to a generation job (am__job_emit): AM__PIECE_START once its choices are
 * started (the HTTP side can answer 200 now; usage has the prompt's counts), then one
 * AM__PIECE_TEXT per token and choice (text may be empty while held back for a stop string;
 * finish != 0 on the choice's last). */
enum { AM__PIECE_START = 1, AM__PIECE_TEXT = 2 };
struct am__gen_piece {
    int index; /* the choice; -1 for START */
    int type;
    int finish; /* enum amuse_finish */
    int prompt_tokens, prompt_unknown, completion_tokens;
    size_t len;
    char text[]; /* len bytes of UTF-8 */
};
/* A generator's cap on max_tokens and whether it is an encoder-decoder (immutable after load, so
 * any thread may ask); AMUSE_EINVAL if m is not a generator. */
int am__generator_limits(const struct am__model *m, int *max_tokens, int *seq2seq);

/* ------------------------------------------------------------------- completions.c */

struct am__request;
/* The body formats of the generation routes. */
enum am__gen_format {
    AM__GEN_COMPLETION, /* POST /v1/completions */
    AM__GEN_CHAT,       /* POST /v1/chat/completions */
    AM__GEN_KSERVE      /* POST /v2/models/{model}/generate[_stream] */
};
#define AM__GEN_MAX_N 16 /* choices per request */
/* A generation request's fields, as read from its body. */
struct am__gen_params {
    int max_tokens, n, stream, include_usage, n_stop;
    float temperature, top_p;
    uint64_t seed;
    const char *stops[AMUSE_GENERATE_MAX_STOPS]; /* point into the parsed body */
    char *prompt;                                /* malloc'ed, NUL-terminated */
    size_t prompt_len;
};
/* Read the generation fields of a body (doc: its JSON object) for a generator whose max_tokens
 * cap is `cap`, with `slots` slots, an encoder-decoder or not: the prompt (or the chat messages
 * turned into one), sampling, stop strings, n, stream and stream_options; p zeroed first. 0, or
 * -1 after an error reply on r (400 naming the field; 500 out of memory). A client's body never
 * gets past this with a prompt that is empty, over AMUSE_GENERATE_MAX_PROMPT * 4 bytes or not
 * UTF-8, or a field outside its documented range. am__gen_params_release frees p->prompt. */
int am__gen_parse(struct am__request *r, const struct cJSON *doc, enum am__gen_format format,
                  int cap, int slots, int seq2seq, struct am__gen_params *p);
void am__gen_params_release(struct am__gen_params *p);

/* ------------------------------------------------------------------ kind_recommender.c */

/* A recommender version's state (m->state): the trained model (amuse/recsys.h; read-only once
 * loaded, so the worker may answer from it while HTTP threads look ids up), the training-time
 * evaluation when the directory has eval.json, and what the routes need precomputed. */
struct amuse_rec_model;
#define AM__REC_TOP_USERS 100 /* users listed for pickers (GET /v1/models/{model}/users) */
struct am__recommender {
    struct amuse_rec_model *rec;
    float like_value;      /* what a like weighs in fold-in: the largest training value */
    int64_t trained_at;    /* model.safetensors' modification time (s): a user deleted since
                              then has stale factors and training history here */
    int has_eval;
    struct amuse_rec_eval eval;
    int64_t top_users[AM__REC_TOP_USERS]; /* user indices by events, most first */
    int n_top_users;
};

/* ------------------------------------------------------------------------------- v2.c */

#define AM__V2_MAX_DIMS 8

enum { AM__DT_FP32 = 1, AM__DT_BYTES = 2 };

struct cJSON;

struct am__v2_tensor {
    const char *name;
    int64_t shape[AM__V2_MAX_DIMS];
    int ndim;
    int datatype;
    struct cJSON *data; /* the "data" array (owned by the request's document); NULL when... */
    const unsigned char *binary; /* ...the tensor's bytes follow the JSON (binary extension) */
    size_t binary_len;
};

#define AM__V2_MAX_TENSORS 16

struct am__v2_request {
    struct cJSON *doc;
    const char *id; /* NULL if absent */
    struct am__v2_tensor inputs[AM__V2_MAX_TENSORS];
    int n_inputs;
    const char *outputs[AM__V2_MAX_TENSORS]; /* requested output names */
    int n_outputs;                           /* 0: the default outputs */
};

/* Parse and check the envelope (depth cap, JSON, field types). Messages name the field. */
int am__v2_parse(const char *body, size_t len, int max_depth, struct am__v2_request *req);
/* The same with the binary tensor extension: header_len >= 0 (Inference-Header-Content-Length)
 * is the JSON's length; the rest of the body holds the tensors that give binary_data_size. */
int am__v2_parse_binary(const char *body, size_t len, long long header_len, int max_depth,
                        struct am__v2_request *req);
void am__v2_request_release(struct am__v2_request *req);
/* Turn the request into a job for model m (samples, input floats or word rows, output buffer). */
int am__v2_build_job(const struct amuse_server *s, const struct am__model *m,
                     const struct am__v2_request *req, struct am__job *job);
/* The reply for a finished job. */
void am__v2_encode_reply(const struct am__model *m, const struct am__v2_request *req,
                         const struct am__job *job, struct am__buf *b);
/* Model metadata: {name, versions, platform, inputs, outputs}. */
void am__v2_encode_metadata(const struct am__model *m, struct am__buf *b);
/* The output names a model offers, for checking requests. */
int am__v2_output_known(const struct am__model *m, const char *name);
/* For the kinds' v2_input: a network model's FP32 "input", an image model's BYTES images (decoded
 * later on the decode pool), word vectors' BYTES "words"; and for their encoders: 1 if the
 * request asks for output `name` (or asks for none and by_default), an FP32 [rows, cols] output. */
int am__v2_input_fp32(const struct am__model *m, const struct am__v2_tensor *t, struct am__job *j);
int am__v2_input_images(const struct amuse_server *s, const struct am__model *m,
                        const struct am__v2_tensor *t, struct am__job *j);
int am__v2_input_words(const struct am__model *m, const struct am__v2_tensor *t, struct am__job *j);
int am__v2_wants(const struct am__v2_request *req, const char *name, int by_default);
/* The n elements of a BYTES tensor (files): p[i] and len[i] point into the request for binary
 * tensors, or into *decoded (base64-decoded copies, NULL for binary) for JSON ones; free those
 * with am__v2_bytes_free(*decoded, n) whether or not it failed. Messages name the element. */
int am__v2_bytes(const struct am__v2_tensor *t, int64_t n, const unsigned char **p, size_t *len,
                 unsigned char ***decoded);
void am__v2_bytes_free(unsigned char **decoded, int64_t n);
/* The count values of an FP32 tensor (its shape already checked by the caller) into *out
 * (malloc'ed; NULL on failure): binary values must be finite, JSON ones numbers. */
int am__v2_fp32_values(const struct am__v2_tensor *t, int64_t count, float **out);
/* The text after "shape" in messages: "[2, 3]". */
const char *am__v2_shape_text(const int64_t *shape, int ndim, char *buf, size_t size);
void am__v2_encode_fp32(struct am__buf *b, const char *name, const float *v, int64_t rows,
                        int64_t cols);

/* ---------------------------------------------------------------------- http / router */

struct MHD_Connection;

#define AM__MAX_CAPTURES 2 /* {name} segments in one route pattern */

struct am__request {
    struct amuse_server *server;
    struct MHD_Connection *conn;
    const char *method, *url;
    char *body;
    size_t len, cap;
    int too_big;
    int replied;             /* the reply was decided on the headers (or mid-body); no handler */
    double body_deadline;    /* CLOCK_MONOTONIC seconds: 408 for body bytes after it */
    const struct am__route *route; /* set on the headers when the handler is to run */
    /* Path captures, in pattern order: {name} segments (router.c). param_model and
     * param_version point at the {model} and {version} ones (NULL if absent); any other name
     * is read with am__request_param. */
    const char *param_model, *param_version;
    int n_params;
    const char *param_name[AM__MAX_CAPTURES]; /* "model", "id", ... (into the route table) */
    size_t param_name_len[AM__MAX_CAPTURES];
    char param_buf[AM__MAX_CAPTURES][256];
    struct amuse_key_info key;
    int has_key;
    double start;
    /* the response */
    int status;
    struct am__buf out;
    const char *const *headers; /* NULL, or more headers: name, value, ..., NULL */
    int retry_after;         /* > 0: Retry-After header */
    int batch_size;          /* > 0: X-Amuse-Batch-Size header */
    char log_model[128];     /* model named in the access log */
    const char *content_type; /* NULL: application/json */
    int64_t items;            /* samples, inputs or queries served (usage counters) */
    const char *cors_origin;  /* the request's Origin when it is allowed (CORS headers added) */
    int preflight;            /* an allowed CORS preflight: 204 with the Allow-* headers */
    /* A streamed reply (text/event-stream): when set, the body comes from stream(stream_cls,
     * pos, buf, max) (libmicrohttpd's content reader: bytes written, or MHD_CONTENT_READER_END_*)
     * and stream_free(stream_cls) runs once the connection is done with it (http.c owns it from
     * the handler's return; always called, also when the reply cannot be queued). */
    ssize_t (*stream)(void *cls, uint64_t pos, char *buf, size_t max);
    void *stream_cls;
    void (*stream_free)(void *cls);
};

typedef void (*am__handler)(struct am__request *r);

struct am__route {
    const char *method;
    const char *pattern; /* segments; a {name} segment matches one segment (at most
                            AM__MAX_CAPTURES per pattern), a last {path} the rest */
    int scope;           /* 0: public; else the scope needed */
    am__handler handler;
};

extern const struct am__route am__routes[];
/* The value of the path capture {name} of the matched route, or NULL. */
const char *am__request_param(const struct am__request *r, const char *name);
/* Find the route for method + path. *path_matched is set if some route has this path (for 405). */
const struct am__route *am__route_match(const char *method, const char *path,
                                        struct am__request *r, int *path_matched);

/* Set an error reply: {"error": "..."} (KServe V2 and the admin routes), or on /v1/... paths
 * OpenAI's {"error": {"message", "type", "param", "code"}} with type and code from the status. */
void am__reply_error(struct am__request *r, int status, const char *fmt, ...) AM__PRINTF(3, 4);
/* 1 when the request's client has closed its connection (or it failed): a peek at the socket,
 * without blocking. A half-close (shutdown of the client's sending side) counts as gone. */
int am__client_gone(struct am__request *r);
int am__connection_gone(struct MHD_Connection *conn); /* the same, for a connection */
/* Reply http_status with amuse_last_error(), except that AMUSE_ENOMEM is always 500: callers pass
 * the status for the client's fault (400, 404, ...) and never map ENOMEM themselves. */
void am__reply_status(struct am__request *r, int status, int http_status);

/* handlers.c */
void am__handle_live(struct am__request *r);
void am__handle_ready(struct am__request *r);
void am__handle_server_metadata(struct am__request *r);
void am__handle_model_metadata(struct am__request *r);
void am__handle_model_ready(struct am__request *r);
void am__handle_infer(struct am__request *r);
void am__handle_model_stats(struct am__request *r);
void am__handle_repository_index(struct am__request *r);
void am__handle_repository_load(struct am__request *r);
/* kind_sentiment.c: POST /v1/text/sentiment */
void am__handle_text_sentiment(struct am__request *r);
/* kind_sentiment.c: score n texts with sentiment model m on its worker, under the request's
 * deadline: 0 and scores[i] in -1..1, or -1 with the error reply set (400 naming the text for a
 * text the model refuses, 503/504/500 as am__run_job). */
int am__sentiment_score_texts(struct am__request *r, const struct am__model *m,
                              const char *const *texts, const size_t *lens, int n, float *scores);

/* events.c: user data (src/recsys/events_store.h behind it): POST /v1/events, POST /v1/items,
 * GET /v1/items/{item}, GET /v1/users/{user}/events, GET /v1/users/{user}/export,
 * DELETE /v1/users/{user} */
void am__handle_events_post(struct am__request *r);
void am__handle_items_post(struct am__request *r);
void am__handle_item_get(struct am__request *r);
void am__handle_user_events(struct am__request *r);
void am__handle_user_export(struct am__request *r);
void am__handle_user_delete(struct am__request *r);

/* recommend_routes.c: GET /v1/recommendations, /v1/items/{id}/similar, /v1/models/{model}/users */
void am__handle_recommendations(struct am__request *r);
void am__handle_items_similar(struct am__request *r);
void am__handle_model_users(struct am__request *r);

/* handlers.c: submit job to m's batcher and wait for it until the request's deadline. 0 when it
 * finished well (r->batch_size set); otherwise the error reply is set (503, 504, 500). */
int am__run_job(struct am__request *r, const struct am__model *m, struct am__job *job);

/* tenant.c: who may see and use a model. <repo>/<model>/tenants lists the tenants that own a
 * model, one a line ('#' comments and blank lines ignored); without the file the model is public.
 * Admin keys see every model. A model a key may not use is answered exactly as one that does not
 * exist (404), so names do not leak. */
struct am__tenants;
#define AM__TENANTS_MAX 1024
/* Read <model_dir>/tenants: *out NULL when there is none (public); AMUSE_EFORMAT naming the file
 * and line for a bad tenant name. */
int am__tenants_load(const char *model_dir, struct am__tenants **out);
void am__tenants_free(struct am__tenants *t);
int am__tenants_allow(const struct am__tenants *t, const char *tenant);
/* The tenant of the request's key ("" before authentication): where per-tenant data lives. */
const char *am__request_tenant(const struct am__request *r);
/* The model by name if the request's key may use it (reference held; release with
 * am__model_release), else NULL; r->log_model names it only when it is returned. */
struct am__model *am__request_model(struct am__request *r, const char *name);
/* 1 if the request's key may use m. */
int am__request_may_use(const struct am__request *r, const struct am__model *m);
/* What a route needs the model it names to be (am__route_model). */
enum am__need {
    AM__NEED_ANY,         /* any model (GET /v1/models/{model}) */
    AM__NEED_WORDS,       /* word vectors (AM__KIND_WORDS) */
    AM__NEED_IMAGES,      /* a network whose input is an image (m->image) */
    AM__NEED_GENERATOR,   /* a text generator (AM__KIND_GENERATE) */
    AM__NEED_SENTIMENT,   /* AM__KIND_SENTIMENT */
    AM__NEED_VOICE,       /* AM__KIND_VOICE */
    AM__NEED_RECOMMENDER, /* AM__KIND_RECOMMEND */
};
/* The one way a route turns the model name it was given into a model: the model (reference
 * held; release with am__model_release) when it is loaded, the key's tenant may use it and it is
 * what `need` asks for; else NULL, with the error reply already set (OpenAI's shape on /v1
 * paths, KServe's elsewhere), the same words on every route:
 *   400 "'model' is missing: name a voice model (GET /v1/models lists the models)"
 *       when name is NULL or "";
 *   404 "model 'X' is not loaded (GET /v1/models lists the models)" when no model of that name
 *       is loaded or the key's tenant may not use it (the same bytes either way, so names do
 *       not leak; the tenant check comes before the kind check);
 *   400 "model 'X' is a word2vec model, not a voice model (POST /v1/audio/transcriptions needs
 *       one...)" when it is the wrong kind: its kind, the kind wanted and the route. */
struct am__model *am__route_model(struct am__request *r, const char *name, enum am__need need);
/* tenant names are 1..AMUSE_TENANT_MAX of [A-Za-z0-9._-] (auth.c) */
int am__tenant_ok(const char *t);

/* decode.c: image decoding off the HTTP threads. A pool of opt.threads decode workers (each an
 * am__batcher of one job at a time). am__decode_job_new checks the images' declared sizes (cheap:
 * headers only) against the model's pixel budget per image and opt.max_request_pixels across
 * them (AMUSE_ETOOBIG, answer 413; AMUSE_EFORMAT for what is not an image, 400) and makes a job
 * that decodes them all into its input (n x the model's input size); am__run_job runs it before
 * the model's job, under the same deadline and cancellation. names: "inputs[0].data" gives
 * "inputs[0].data[3]" in messages; with n == 1 and no index wanted, pass "file" and n 1. */
int am__decoders_start(struct amuse_server *s);
void am__decoders_stop(struct amuse_server *s);
uint64_t am__model_pixel_budget(const struct amuse_server *s, const struct am__model *m);
int am__decode_job_new(const struct amuse_server *s, const struct am__model *m,
                       const unsigned char *const *images, const size_t *lens, int n,
                       const char *names, struct am__job **out);
/* handlers.c: run d (a decode job) on the decode pool and wait for it under the request's
 * deadline; 0 when it finished well, else the error reply is set (413 over a cap, 400 for bad
 * input, 503 queue full, 504, 499). am__run_job calls it for job->decode. */
int am__run_decode(struct am__request *r, const struct am__model *m, struct am__job *d);
/* Queue j on the least busy decode worker; as am__batcher_submit. */
int am__decode_submit(struct amuse_server *s, struct am__job *j);

/* kind_voice.c: a voice model's state (immutable after load). */
struct am__voice {
    struct amuse_audio_features_options features; /* the model's recipe */
    size_t clip_samples;                          /* one clip, at features.sample_rate */
    struct amuse_voice_detect_options detect;     /* the detector's defaults */
};
/* The longest recording /v1/audio/transcriptions takes (the duration cap handed to the decoder,
 * checked from the header before a sample is decoded): detection runs about 20 windows a second
 * of sound on the model's worker. */
#define AM__VOICE_MAX_SECONDS 120.0
/* The most events one transcription reports (more are counted in "dropped"). */
#define AM__VOICE_MAX_EVENTS 256
/* A job for the decode pool (submit it with am__run_decode) that turns n sounds into the model's
 * features, one clip each, in its input (n x input size): files (raw 0: WAV/FLAC/Ogg, decoded
 * with the byte cap max_body_bytes and a duration cap of one clip, or AM__VOICE_MAX_SECONDS with
 * keep_long) or rows of FP32 samples at the features' rate (raw 1; each at most one clip). With
 * keep_long and n == 1, a recording longer than one clip keeps its samples in the input instead
 * (am__voice_decoded says which). names as am__decode_job_new's. */
int am__voice_decode_job_new(const struct amuse_server *s, const struct am__model *m,
                             const unsigned char *const *items, const size_t *lens, int n,
                             int raw, int keep_long, const char *names, struct am__job **out);
/* What a finished decode job found (of its last item). */
struct am__voice_decoded {
    double seconds;                  /* duration of the source */
    struct amuse_audio_source source;
    size_t count;                    /* samples at the features' rate */
    int long_clip;                   /* the input holds count samples, not features */
};
const struct am__voice_decoded *am__voice_decoded(const struct am__job *d);
/* transcriptions.c: POST /v1/audio/transcriptions */
void am__handle_audio_transcriptions(struct am__request *r);

/* domain.c: the one multipart/form-data parser of the upload routes. The caller zeroes f and
 * names the fields that carry the file (file_fields, NULL-terminated: their bytes go to f->file,
 * capped like any am__buf) and up to AM__FORM_FIELDS text fields it wants (fields[], NULL after
 * the last); other fields are skipped. -1 after an error reply (400 for a malformed body or a
 * text field over its buffer, 500 out of memory); whether a file came is the caller's to check
 * (has_file, file.len); it releases f->file with am__buf_release. */
#define AM__FORM_FIELDS 8
struct am__form {
    const char *const *file_fields;
    const char *fields[AM__FORM_FIELDS];
    struct am__buf file;
    int has_file;
    /* internal */
    char values[AM__FORM_FIELDS][129];
    unsigned present;
    const char *too_long;
};
int am__form_parse(struct am__request *r, struct am__form *f);
/* The value of text field name, or NULL when it was absent or empty. */
const char *am__form_value(const struct am__form *f, const char *name);
void am__handle_images_classify(struct am__request *r);
void am__handle_words_similar(struct am__request *r);
void am__handle_words_analogy(struct am__request *r);

/* completions.c: POST /v1/completions, /v1/chat/completions, /v2/models/{model}/generate and
 * .../generate_stream (the route's pattern says which) */
void am__handle_completions(struct am__request *r);
void am__handle_chat_completions(struct am__request *r);
void am__handle_generate(struct am__request *r);

/* metrics.c: request counters and latency histograms, rendered with the batchers' figures */
struct am__metrics;
int am__metrics_new(struct am__metrics **out);
void am__metrics_free(struct am__metrics *m);
/* One finished request; endpoint is a route pattern (or "other"), model may be "". */
void am__metrics_request(struct am__metrics *m, const char *method, const char *endpoint,
                         const char *model, int status, double seconds);
void am__handle_metrics(struct am__request *r);

/* ratelimit.c: per-key token buckets and usage counters (flushed to the key store) */
struct am__usage;
int am__usage_new(struct am__usage **out, struct amuse_keystore *ks, int flush_s,
                  const struct am__log *log);
void am__usage_free(struct am__usage *u); /* stops the flush thread, then flushes once more */
/* 1: go ahead; 0: over the limit, *retry_after seconds until a token is back. rps 0: always 1. */
int am__rate_take(struct am__usage *u, const char *id, int rps, int burst, int *retry_after);
/* The same at a given time (seconds on any monotonic scale): tests hand it the clock. */
int am__rate_take_at(struct am__usage *u, const char *id, int rps, int burst, double now,
                     int *retry_after);
void am__usage_add(struct am__usage *u, const char *id, int64_t items);
/* The per-tenant table: buckets, counters in memory, daily counts flushed to ks (NULL: none). */
int am__usage_new_tenants(struct am__usage **out, struct amuse_keystore *ks, int flush_s,
                          const struct am__log *log);
/* Daily quota: 1 and the request counted when id has made fewer than limit requests on the UTC
 * day of now_s (Unix seconds; today's count is read from the database the first time id is seen
 * that day); 0 when it has not, *retry_after the seconds until the next UTC day. limit 0: 1. */
int am__quota_take(struct am__usage *u, const char *id, int64_t limit, int64_t now_s,
                   int *retry_after);
struct am__usage_row {
    char id[AMUSE_TENANT_MAX + 1];
    int64_t requests, items;
};
/* A snapshot of every entry since start (*rows malloc'ed, free it). */
int am__usage_rows(struct am__usage *u, struct am__usage_row **rows, size_t *n);
int am__usage_flush(struct am__usage *u);

/* openai.c */
int am__openai_path(const char *url); /* 1 for /v1 and /v1/... */
void am__openai_error(struct am__buf *b, int status, const char *message);
/* The embeddings tokenizer: the next run of ASCII letters in s from *pos, lower-cased into word
 * (AMUSE_W2V_MAX_WORD_BYTES + 1 bytes); returns its length, 0 at the end. *too_long is set when
 * the run did not fit (word then holds its start). */
size_t am__openai_token(const char *s, size_t *pos, char *word, int *too_long);
void am__handle_openai_models(struct am__request *r);
void am__handle_openai_model(struct am__request *r); /* GET /v1/models/{model}: models.retrieve */
void am__handle_openai_embeddings(struct am__request *r);

/* ---------------------------------------------------------------------------- server */

struct amuse_server {
    struct amuse_serve_options opt;
    char *host, *repository_dir, *database_path, *sentiment_model; /* owned copies */
    struct am__log log;
    struct amuse_keystore *keys;
    /* user data: users, items, events (recsys/events_store.h), in the same database as the
     * keys; shared by the events routes and the recommender's fold-in */
    struct am__events_store *events;
    struct am__repository *repo;
    char *web_root; /* resolved (realpath) playground directory; NULL: none */
    char *tls_cert_pem, *tls_key_pem; /* the PEM texts when serving HTTPS; NULL: plain HTTP */
    size_t tls_key_len;
    struct MHD_Daemon *daemon;
    int port;
    _Atomic int ready;
    _Atomic int in_flight; /* requests between their first byte and their completion */
    struct am__metrics *metrics;
    struct am__usage *usage;
    struct am__usage *tenant_usage; /* per tenant: rate limit and counters, in memory */
    char **cors; /* allowed origins (owned); n_cors 0: CORS off */
    int n_cors;
    /* http.c: open connections (for their header/body deadlines), the reaper thread that
     * closes those past them, and the bytes of request bodies held now */
    _Atomic int connections;
    _Atomic size_t buffered;
    _Atomic long reaped;
    pthread_mutex_t conns_lock;
    pthread_cond_t reaper_wake;
    struct am__conn *conns;
    pthread_t reaper;
    int reaper_started, reaper_stop, http_locks;
    struct am__batcher **decoders; /* decode.c: n_decoders image decode workers */
    int n_decoders;
    _Atomic unsigned decode_next;
};

/* server.c: split and check a CORS allowlist ("scheme://host[:port]" items, commas between,
 * spaces around them ignored) into s->cors. AMUSE_EINVAL naming the bad item. */
#define AM__CORS_MAX_ORIGINS 64
int am__cors_parse(struct amuse_server *s, const char *list);

/* Largest TLS certificate or key file read. */
#define AM__TLS_FILE_MAX ((size_t)1 << 20)

/* What libmicrohttpd may hold per connection (headers and body chunks in flight). */
#define AM__CONNECTION_MEMORY (32 * 1024)

struct sockaddr;
int am__http_start(struct amuse_server *s, const struct sockaddr *addr, int ipv6);
void am__http_quiesce(struct amuse_server *s);
void am__http_stop(struct amuse_server *s);

/* static.c: resolve opt.web_root (if set) into web_root, AMUSE_ENOTFOUND if it is not a
 * directory; the handler of GET / and GET /web/{path}; the Content-Type for a path below the web
 * root that may be served, or NULL (exposed for the unit tests). */
int am__static_open(struct amuse_server *s);
void am__handle_static(struct am__request *r);
const char *am__static_path_type(const char *rel);

#endif
