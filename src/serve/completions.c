/* completions.c - text generation over HTTP: OpenAI's POST /v1/completions and
 * /v1/chat/completions, and KServe's generate extension POST /v2/models/{model}/generate and
 * .../generate_stream, unstreamed (one JSON reply) or streamed as server-sent events.
 *
 * A request becomes one job on the generator's batcher (kind_generator.c) with n choices; the
 * worker emits a START piece once the choices have their slots and then one piece per token. The
 * handler waits for START (or the job's failure: a 400 naming the field) before it answers, so
 * a stream is only opened for a request that runs. Streams: `data: {chunk}\n\n` per token with
 * text (OpenAI's chunk objects), the last chunk of each choice with its finish_reason, with
 * stream_options.include_usage a chunk with "choices": [] and the usage, then `data: [DONE]`.
 * KServe's stream sends {"model_name", "model_version", "text_output"} events and no [DONE].
 * A failure after the stream opened is an `data: {"error": {...}}` event. The libmicrohttpd
 * reader blocks on its job between tokens (thread per connection) and looks at the client's
 * socket every AM__CLIENT_CHECK_S: a client that went away has its job cancelled, and the
 * generator frees its slots at the next step.
 *
 * Chat messages become the prompt as follows. A language model continues text, so its prompt is
 * every message's content in order, each followed by a newline (roles are not written: the
 * models are trained on plain text); the reply is what the model writes next. An encoder-decoder
 * maps one text to another, so its prompt is the last "user" message's content alone.
 *
 * Defaults: max_tokens 16 for /v1/completions (OpenAI's), else 256, either at most the model's
 * cap; seed random when absent; temperature 1; top_p 1; n 1. Limits: n <= AM__GEN_MAX_N and the model's
 * slots, 4 stop strings of 1..64 bytes, 64 chat messages.
 * Not here: logprobs, echo, best_of, suffix, presence/frequency penalties (refused as 400 when
 * set, rather than ignored), tools and function calling. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MESSAGES       64
#define CLIENT_CHECK_S     0.025
#define DEFAULT_MAX_TOKENS 256

#define FMT_COMPLETION AM__GEN_COMPLETION
#define FMT_CHAT       AM__GEN_CHAT
#define FMT_KSERVE     AM__GEN_KSERVE

/* ------------------------------------------------------------------ the request */

#define params am__gen_params

static const cJSON *field(const cJSON *doc, const cJSON *params, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    if ((!v || cJSON_IsNull(v)) && params)
        v = cJSON_GetObjectItemCaseSensitive(params, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A whole number field in lo..hi (absent: def); -1 after an error reply. */
static int int_field(struct am__request *r, const cJSON *v, const char *name, int def, int lo,
                     int hi, const char *why_hi)
{
    if (!v)
        return def;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble)) {
        am__reply_error(r, 400, "%s must be a whole number", name);
        return -1;
    }
    if (v->valuedouble < lo || v->valuedouble > hi) {
        am__reply_error(r, 400, "%s: %.0f is outside %d..%d%s", name, v->valuedouble, lo, hi,
                        why_hi);
        return -1;
    }
    return (int)v->valuedouble;
}

/* The prompt text: UTF-8, non-empty. Takes text (len bytes) into p->prompt. */
static int set_prompt(struct am__request *r, struct params *p, const char *what, const char *text,
                      size_t len)
{
    size_t bad;
    if (len == 0) {
        am__reply_error(r, 400, "%s is empty; give some text to start from", what);
        return -1;
    }
    if (len > (size_t)AMUSE_GENERATE_MAX_PROMPT * 4) {
        am__reply_error(r, 400, "%s: %zu bytes; at most %d characters", what, len,
                        AMUSE_GENERATE_MAX_PROMPT);
        return -1;
    }
    if (!am__utf8_valid(text, len, &bad)) {
        am__reply_error(r, 400, "%s: invalid UTF-8 at byte %zu", what, bad);
        return -1;
    }
    if (!(p->prompt = malloc(len + 1))) {
        am__reply_error(r, 500, "out of memory");
        return -1;
    }
    memcpy(p->prompt, text, len);
    p->prompt[len] = '\0';
    p->prompt_len = len;
    return 0;
}

/* Chat messages -> the prompt (the rule is in the file's comment). */
static int chat_prompt(struct am__request *r, struct params *p, const cJSON *messages,
                       int seq2seq)
{
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) < 1) {
        am__reply_error(r, 400, "messages must be a non-empty array of {role, content}");
        return -1;
    }
    int count = cJSON_GetArraySize(messages);
    if (count > MAX_MESSAGES) {
        am__reply_error(r, 400, "messages: %d; at most %d", count, MAX_MESSAGES);
        return -1;
    }
    struct am__buf text = {0};
    const char *last_user = NULL;
    int i = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, messages)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsObject(msg) || !cJSON_IsString(role)) {
            am__reply_error(r, 400, "messages[%d] must be an object with a string role", i);
            goto fail;
        }
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
            strcmp(role->valuestring, "assistant") && strcmp(role->valuestring, "developer")) {
            am__reply_error(r, 400, "messages[%d].role '%.32s': one of system, developer, user, "
                                    "assistant",
                            i, role->valuestring);
            goto fail;
        }
        if (!cJSON_IsString(content)) {
            am__reply_error(r, 400, "messages[%d].content must be a string", i);
            goto fail;
        }
        am__buf_puts(&text, content->valuestring);
        am__buf_puts(&text, "\n");
        if (strcmp(role->valuestring, "user") == 0)
            last_user = content->valuestring;
        i++;
    }
    if (text.failed) {
        am__reply_error(r, 500, "out of memory");
        goto fail;
    }
    int rc;
    if (seq2seq) {
        if (!last_user) {
            am__reply_error(r, 400, "messages: an encoder-decoder model answers the last user "
                                    "message, and there is none");
            goto fail;
        }
        rc = set_prompt(r, p, "messages (the last user message)", last_user, strlen(last_user));
    } else {
        size_t len = text.len;
        /* messages that are all empty give only newlines: nothing to start from */
        if (strspn(text.data, "\n") == len)
            len = 0;
        rc = set_prompt(r, p, "messages (their content)", text.data, len);
    }
    am__buf_release(&text);
    return rc;
fail:
    am__buf_release(&text);
    return -1;
}

/* Every field but the prompt; -1 after an error reply. */
static int parse_params(struct am__request *r, const cJSON *doc, int format, int cap,
                        int slots, struct params *p)
{
    const cJSON *params =
        format == FMT_KSERVE ? cJSON_GetObjectItemCaseSensitive(doc, "parameters") : NULL;
    if (params && !cJSON_IsObject(params)) {
        am__reply_error(r, 400, "parameters must be an object");
        return -1;
    }
    static const char *const unsupported[] = {"logprobs", "echo", "best_of", "suffix",
                                              "presence_penalty", "frequency_penalty",
                                              "logit_bias", "tools", "functions", NULL};
    for (int i = 0; unsupported[i]; i++) {
        const cJSON *v = field(doc, params, unsupported[i]);
        if (v && !cJSON_IsFalse(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0)) {
            am__reply_error(r, 400, "%s is not supported by amuse's generators", unsupported[i]);
            return -1;
        }
    }
    char why[96];
    snprintf(why, sizeof why, " (the model's cap)");
    int def = format == FMT_COMPLETION ? 16 : DEFAULT_MAX_TOKENS;
    if (def > cap)
        def = cap; /* a model whose cap is below the default (found by fuzz_completions) */
    const cJSON *mt = field(doc, params, "max_tokens");
    if (!mt && format == FMT_CHAT)
        mt = field(doc, params, "max_completion_tokens");
    if ((p->max_tokens = int_field(r, mt, "max_tokens", def, 1, cap, why)) < 0)
        return -1;
    int n_cap = slots < AM__GEN_MAX_N ? slots : AM__GEN_MAX_N;
    if (format == FMT_KSERVE)
        n_cap = 1; /* KServe's reply has one text_output */
    snprintf(why, sizeof why, " (choices per request)");
    if ((p->n = int_field(r, field(doc, params, "n"), "n", 1, 1, n_cap, why)) < 0)
        return -1;
    const cJSON *v = field(doc, params, "temperature");
    p->temperature = 1;
    if (v) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 2)) {
            am__reply_error(r, 400, "temperature must be a number in [0, 2] (0 is greedy)");
            return -1;
        }
        p->temperature = (float)v->valuedouble;
    }
    v = field(doc, params, "top_p");
    p->top_p = 1;
    if (v) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= 1)) {
            am__reply_error(r, 400, "top_p must be a number in (0, 1]");
            return -1;
        }
        p->top_p = (float)v->valuedouble;
    }
    v = field(doc, params, "seed");
    if (v) {
        if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            fabs(v->valuedouble) > 9007199254740992.0) {
            am__reply_error(r, 400, "seed must be a whole number");
            return -1;
        }
        p->seed = (uint64_t)(int64_t)v->valuedouble;
    } else {
        randombytes_buf(&p->seed, sizeof p->seed);
    }
    v = field(doc, params, "stop");
    if (v) {
        const cJSON *one = v;
        int count = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
        if (!cJSON_IsString(v) && !cJSON_IsArray(v)) {
            am__reply_error(r, 400, "stop must be a string or an array of strings");
            return -1;
        }
        if (count > AMUSE_GENERATE_MAX_STOPS) {
            am__reply_error(r, 400, "stop: %d strings; at most %d", count,
                            AMUSE_GENERATE_MAX_STOPS);
            return -1;
        }
        int i = 0;
        if (cJSON_IsArray(v))
            one = v->child;
        for (; one && i < count; one = cJSON_IsArray(v) ? one->next : NULL, i++) {
            size_t len = cJSON_IsString(one) ? strlen(one->valuestring) : 0, bad;
            if (!cJSON_IsString(one) || len < 1 || len > AMUSE_GENERATE_MAX_STOP_BYTES) {
                am__reply_error(r, 400, "stop[%d] must be a string of 1 to %d bytes", i,
                                AMUSE_GENERATE_MAX_STOP_BYTES);
                return -1;
            }
            if (!am__utf8_valid(one->valuestring, len, &bad)) {
                am__reply_error(r, 400, "stop[%d]: invalid UTF-8 at byte %zu", i, bad);
                return -1;
            }
            p->stops[p->n_stop++] = one->valuestring;
        }
    }
    v = field(doc, params, "stream");
    if (v && !cJSON_IsBool(v)) {
        am__reply_error(r, 400, "stream must be true or false");
        return -1;
    }
    p->stream = cJSON_IsTrue(v);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(doc, "stream_options");
    if (so && !cJSON_IsNull(so)) {
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
        if (!cJSON_IsObject(so) || (iu && !cJSON_IsBool(iu))) {
            am__reply_error(r, 400, "stream_options must be {\"include_usage\": true|false}");
            return -1;
        }
        p->include_usage = cJSON_IsTrue(iu);
    }
    return 0;
}

int am__gen_parse(struct am__request *r, const cJSON *doc, enum am__gen_format format, int cap,
                  int slots, int seq2seq, struct am__gen_params *p)
{
    memset(p, 0, sizeof *p);
    if (parse_params(r, doc, (int)format, cap, slots, p))
        return -1;
    if (format == FMT_CHAT)
        return chat_prompt(r, p, cJSON_GetObjectItemCaseSensitive(doc, "messages"), seq2seq);
    const char *what = format == FMT_KSERVE ? "text_input" : "prompt";
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(doc, what);
    if (cJSON_IsArray(pr) && cJSON_GetArraySize(pr) == 1)
        pr = pr->child; /* OpenAI's list of prompts, with one in it */
    if (!cJSON_IsString(pr)) {
        am__reply_error(r, 400, "%s must be a string%s", what,
                        cJSON_IsArray(pr) ? " (one prompt per request; n gives several "
                                            "completions)"
                                          : "");
        return -1;
    }
    return set_prompt(r, p, what, pr->valuestring, strlen(pr->valuestring));
}

void am__gen_params_release(struct am__gen_params *p)
{
    free(p->prompt);
    p->prompt = NULL;
}

/* The job's request: one allocation (the job frees task_arg with free()). */
static struct am__gen_request *gen_request_new(const struct params *p)
{
    size_t size = sizeof(struct am__gen_request) + p->prompt_len + 1;
    for (int i = 0; i < p->n_stop; i++)
        size += strlen(p->stops[i]) + 1;
    struct am__gen_request *gr = calloc(1, size);
    if (!gr)
        return NULL;
    amuse_generate_request_defaults(&gr->req);
    char *at = gr->buf;
    memcpy(at, p->prompt, p->prompt_len + 1);
    gr->req.prompt = at;
    gr->req.prompt_len = p->prompt_len;
    at += p->prompt_len + 1;
    for (int i = 0; i < p->n_stop; i++) {
        size_t len = strlen(p->stops[i]);
        memcpy(at, p->stops[i], len + 1);
        gr->stops[i] = at;
        at += len + 1;
    }
    gr->req.stop = gr->stops;
    gr->req.n_stop = p->n_stop;
    gr->req.max_tokens = p->max_tokens;
    gr->req.sampling.temperature = p->temperature;
    gr->req.sampling.top_p = p->top_p;
    gr->req.sampling.seed = p->seed;
    gr->n = p->n;
    return gr;
}

/* ------------------------------------------------------------------ the reply */

struct gen {
    int format, stream, include_usage, n;
    struct am__job *job;
    struct am__model *m;
    struct am__repository *repo;
    struct MHD_Connection *conn;
    char id[48];
    long long created;
    double timeout_s, deadline;
    int prompt_tokens, completion_tokens[AM__GEN_MAX_N];
    int finish[AM__GEN_MAX_N];
    int role_sent[AM__GEN_MAX_N];
    struct am__buf text[AM__GEN_MAX_N]; /* unstreamed: each choice's text */
    struct am__buf out;                 /* streamed: SSE bytes not yet handed out */
    size_t off;
    int ended;
    int started; /* START came: the choices have their slots */
};

static void gen_free(void *cls)
{
    struct gen *g = cls;
    if (!g)
        return;
    if (g->job) {
        am__job_cancel(g->job); /* not done: the generator frees its slots at the next step */
        am__job_unref(g->job);
    }
    if (g->m)
        am__model_release(g->repo, g->m);
    for (int i = 0; i < AM__GEN_MAX_N; i++)
        am__buf_release(&g->text[i]);
    am__buf_release(&g->out);
    free(g);
}

static int total_completion(const struct gen *g)
{
    int t = 0;
    for (int i = 0; i < g->n; i++)
        t += g->completion_tokens[i];
    return t;
}

static void usage_json(struct am__buf *b, const struct gen *g)
{
    int c = total_completion(g);
    am__buf_printf(b, "{\"prompt_tokens\": %d, \"completion_tokens\": %d, \"total_tokens\": %d}",
                   g->prompt_tokens, c, g->prompt_tokens + c);
}

/* text[0..len) as a JSON string */
static void json_text(struct am__buf *b, const char *text, size_t len)
{
    char small[256];
    char *s = len < sizeof small ? small : malloc(len + 1);
    if (!s) {
        b->failed = 1;
        return;
    }
    memcpy(s, text, len);
    s[len] = '\0';
    am__buf_json_string(b, s);
    if (s != small)
        free(s);
}

/* The start of one streamed chunk object, up to and including "choices": [ */
static void chunk_head(struct gen *g, struct am__buf *b)
{
    if (g->format == FMT_KSERVE) {
        am__buf_puts(b, "data: {\"model_name\": ");
        am__buf_json_string(b, g->m->name);
        am__buf_printf(b, ", \"model_version\": \"%lld\"", (long long)g->m->version);
        return;
    }
    am__buf_printf(b, "data: {\"id\": \"%s\", \"object\": \"%s\", \"created\": %lld, \"model\": ",
                   g->id, g->format == FMT_CHAT ? "chat.completion.chunk" : "text_completion",
                   g->created);
    am__buf_json_string(b, g->m->name);
    am__buf_puts(b, ", \"choices\": [");
}

static const char *finish_name(int f)
{
    const char *s = amuse_finish_name((enum amuse_finish)f);
    return s ? s : "stop";
}

/* One piece from the worker: into the SSE bytes (streamed) or the choice's text. */
static void take_piece(struct gen *g, const struct am__gen_piece *p)
{
    if (p->type == AM__PIECE_START) {
        g->prompt_tokens = p->prompt_tokens;
        g->started = 1;
        return;
    }
    if (p->index < 0 || p->index >= g->n)
        return;
    g->completion_tokens[p->index] = p->completion_tokens;
    if (p->finish)
        g->finish[p->index] = p->finish;
    if (!g->stream) {
        am__buf_add(&g->text[p->index], p->text, p->len);
        return;
    }
    if (p->len == 0 && !p->finish && !(g->format == FMT_CHAT && !g->role_sent[p->index]))
        return; /* held back for a possible stop string: nothing to say yet */
    struct am__buf *b = &g->out;
    chunk_head(g, b);
    if (g->format == FMT_KSERVE) {
        am__buf_puts(b, ", \"text_output\": ");
        json_text(b, p->text, p->len);
        if (p->finish) {
            am__buf_printf(b, ", \"finish_reason\": \"%s\", \"usage\": ", finish_name(p->finish));
            usage_json(b, g);
        }
        am__buf_puts(b, "}\n\n");
        return;
    }
    am__buf_printf(b, "{\"index\": %d, ", p->index);
    if (g->format == FMT_CHAT) {
        am__buf_puts(b, "\"delta\": {");
        if (!g->role_sent[p->index]) {
            am__buf_puts(b, "\"role\": \"assistant\", ");
            g->role_sent[p->index] = 1;
        }
        am__buf_puts(b, "\"content\": ");
        json_text(b, p->text, p->len);
        am__buf_puts(b, "}, ");
    } else {
        am__buf_puts(b, "\"text\": ");
        json_text(b, p->text, p->len);
        am__buf_puts(b, ", ");
    }
    if (p->finish)
        am__buf_printf(b, "\"logprobs\": null, \"finish_reason\": \"%s\"}]",
                       finish_name(p->finish));
    else
        am__buf_puts(b, "\"logprobs\": null, \"finish_reason\": null}]");
    if (g->include_usage)
        am__buf_puts(b, ", \"usage\": null");
    am__buf_puts(b, "}\n\n");
}

/* The end of a stream: usage and [DONE] (OpenAI), or an error event. */
static void stream_end(struct gen *g, const char *error)
{
    struct am__buf *b = &g->out;
    if (error) {
        am__buf_puts(b, "data: ");
        if (g->format == FMT_KSERVE) {
            am__buf_puts(b, "{\"error\": ");
            am__buf_json_string(b, error);
            am__buf_puts(b, "}");
        } else {
            am__openai_error(b, 500, error);
        }
        am__buf_puts(b, "\n\n");
    } else if (g->format != FMT_KSERVE) {
        if (g->include_usage) {
            chunk_head(g, b);
            am__buf_puts(b, "], \"usage\": ");
            usage_json(b, g);
            am__buf_puts(b, "}\n\n");
        }
        am__buf_puts(b, "data: [DONE]\n\n");
    }
    g->ended = 1;
}

/* Take what the job has: 1 when something came or the job is done (*done set), 0 when the wait
 * slice passed, -1 when the deadline passed (the job is cancelled). */
static int pull(struct gen *g, int *done)
{
    struct am__chunk *c = am__job_next_chunk(g->job);
    if (!c) {
        int w = am__job_wait_until(g->job, g->deadline, am__now() + CLIENT_CHECK_S);
        if (w < 0)
            return -1;
        if (w == 2)
            return 0;
        c = am__job_next_chunk(g->job);
        if (!c) {
            *done = w == 0;
            return 1;
        }
    }
    take_piece(g, (const struct am__gen_piece *)c->data);
    free(c);
    g->deadline = am__now() + g->timeout_s; /* progress: the timeout restarts */
    return 1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct gen *g = cls;
    (void)pos;
    for (;;) {
        if (g->off < g->out.len) {
            size_t n = g->out.len - g->off < max ? g->out.len - g->off : max;
            memcpy(buf, g->out.data + g->off, n);
            g->off += n;
            return (ssize_t)n;
        }
        g->out.len = 0;
        g->off = 0;
        if (g->out.failed)
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (g->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        int done = 0, w = pull(g, &done);
        if (w < 0) {
            stream_end(g, "no token within request_timeout_ms; the generation was stopped");
        } else if (w == 0) {
            if (am__connection_gone(g->conn))
                return MHD_CONTENT_READER_END_WITH_ERROR; /* gen_free cancels the job */
        } else if (done) {
            stream_end(g, g->job->status ? (g->job->error[0] ? g->job->error : "failed") : NULL);
        }
    }
}

/* The unstreamed reply, all choices done. */
static void encode_reply(struct gen *g, struct am__buf *b)
{
    if (g->format == FMT_KSERVE) {
        am__buf_puts(b, "{\"model_name\": ");
        am__buf_json_string(b, g->m->name);
        am__buf_printf(b, ", \"model_version\": \"%lld\", \"text_output\": ",
                       (long long)g->m->version);
        json_text(b, g->text[0].data ? g->text[0].data : "", g->text[0].len);
        am__buf_printf(b, ", \"finish_reason\": \"%s\", \"usage\": ", finish_name(g->finish[0]));
        usage_json(b, g);
        am__buf_puts(b, "}");
        return;
    }
    int chat = g->format == FMT_CHAT;
    am__buf_printf(b, "{\"id\": \"%s\", \"object\": \"%s\", \"created\": %lld, \"model\": ", g->id,
                   chat ? "chat.completion" : "text_completion", g->created);
    am__buf_json_string(b, g->m->name);
    am__buf_puts(b, ", \"choices\": [");
    for (int i = 0; i < g->n; i++) {
        am__buf_printf(b, "%s{\"index\": %d, ", i ? ", " : "", i);
        if (chat)
            am__buf_puts(b, "\"message\": {\"role\": \"assistant\", \"content\": ");
        else
            am__buf_puts(b, "\"text\": ");
        json_text(b, g->text[i].data ? g->text[i].data : "", g->text[i].len);
        am__buf_printf(b, "%s, \"logprobs\": null, \"finish_reason\": \"%s\"}", chat ? "}" : "",
                       finish_name(g->finish[i]));
    }
    am__buf_puts(b, "], \"usage\": ");
    usage_json(b, g);
    am__buf_puts(b, "}");
}

/* Wait until the job started (1), or is done (0: unstreamed, or it failed), replying on
 * failure (-1). */
static int wait_job(struct am__request *r, struct gen *g, int until_done)
{
    for (;;) {
        int done = 0, w = pull(g, &done);
        if (w < 0) {
            am__reply_error(r, 504, "model '%s': no token within %d ms (request_timeout_ms); "
                                    "the generation was stopped",
                            g->m->name, r->server->opt.request_timeout_ms);
            return -1;
        }
        if (w == 0) {
            if (am__client_gone(r)) {
                am__job_cancel(g->job);
                am__reply_error(r, 499, "model '%s': the client closed the connection; the "
                                        "generation was stopped",
                                g->m->name);
                return -1;
            }
            continue;
        }
        if (done) {
            if (g->job->status) {
                int st = g->job->status;
                am__reply_error(r, st == AMUSE_ENOMEM || st == AMUSE_EIO ? 500 : 400, "%s",
                                g->job->error[0] ? g->job->error : amuse_strerror(st));
                return -1;
            }
            return 0;
        }
        if (!until_done && g->started)
            return 1;
    }
}

static void handle_generate(struct am__request *r, int format)
{
    struct amuse_server *s = r->server;
    cJSON *doc = NULL;
    struct params p;
    memset(&p, 0, sizeof p);
    struct gen *g = calloc(1, sizeof *g);
    if (!g) {
        am__reply_error(r, 500, "out of memory");
        return;
    }
    g->format = format;
    g->repo = s->repo;
    g->conn = r->conn;
    g->timeout_s = s->opt.request_timeout_ms * 1e-3;
    int rc = am__json_parse_object(r->body ? r->body : "", r->len, s->opt.max_json_depth, &doc);
    if (rc) {
        am__reply_status(r, rc, rc == AMUSE_ENOMEM ? 500 : 400);
        goto out;
    }
    const char *name = r->param_model;
    if (format != FMT_KSERVE) {
        const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
        name = cJSON_IsString(model) ? model->valuestring : NULL;
    }
    if (!(g->m = am__route_model(r, name, AM__NEED_GENERATOR)))
        goto out;
    int cap = 0, seq2seq = 0;
    if (am__generator_limits(g->m, &cap, &seq2seq)) { /* defensive: the kind loads its state */
        am__reply_error(r, 500, "model '%s' has no generator loaded", g->m->name);
        goto out;
    }
    if (am__gen_parse(r, doc, (enum am__gen_format)format, cap, g->m->max_batch_size, seq2seq,
                      &p))
        goto out;
    if (format == FMT_KSERVE)
        p.stream = r->route && strstr(r->route->pattern, "generate_stream") != NULL;
    g->stream = p.stream;
    g->include_usage = p.include_usage;
    g->n = p.n;
    g->created = (long long)time(NULL);
    unsigned char rnd[12];
    randombytes_buf(rnd, sizeof rnd);
    int off = snprintf(g->id, sizeof g->id, "%s", format == FMT_CHAT ? "chatcmpl-" : "cmpl-");
    for (size_t i = 0; i < sizeof rnd; i++)
        off += snprintf(g->id + off, sizeof g->id - (size_t)off, "%02x", rnd[i]);

    g->job = am__job_new();
    struct am__gen_request *gr = g->job ? gen_request_new(&p) : NULL;
    if (!gr) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    g->job->samples = p.n;
    g->job->task_arg = gr;
    rc = am__batcher_submit(g->m->batcher, g->job);
    if (rc) {
        r->retry_after = 1;
        am__reply_status(r, rc, 503);
        goto out;
    }
    g->deadline = r->start + g->timeout_s;
    if (wait_job(r, g, !g->stream) < 0)
        goto out;
    r->status = 200;
    r->items = p.n;
    if (g->stream) {
        r->stream = stream_read;
        r->stream_cls = g;
        r->stream_free = gen_free;
        g = NULL; /* http.c's now */
        goto out;
    }
    encode_reply(g, &r->out);
out:
    am__gen_params_release(&p);
    cJSON_Delete(doc);
    gen_free(g);
}

void am__handle_completions(struct am__request *r)
{
    handle_generate(r, FMT_COMPLETION);
}

void am__handle_chat_completions(struct am__request *r)
{
    handle_generate(r, FMT_CHAT);
}

void am__handle_generate(struct am__request *r)
{
    handle_generate(r, FMT_KSERVE);
}
