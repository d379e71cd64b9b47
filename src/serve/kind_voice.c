/* kind_voice.c - the voice-command model kind: a network model directory whose config has a
 * "features" recipe (amuse/voice.h), served on sound rather than on feature tensors.
 *
 * Audio work is split the way images are: the HTTP thread only base64-decodes and checks sizes;
 * a job on decode.c's pool decodes the sound (amuse_audio_decode, its byte and duration caps
 * checked before a sample is decoded), converts it to mono at the features' rate and computes
 * the features of each clip with the model's own recipe; the model's worker then runs the
 * network on the features in ordinary dynamic batches. A recording longer than one clip (the
 * transcription route only) keeps its samples instead, and the worker runs streaming detection
 * over it as a task (amuse_voice_detector), like a word query.
 *
 * KServe V2: input "input", BYTES [batch] (each element one sound file: WAV, FLAC or Ogg/Vorbis,
 * base64 in JSON or raw with the binary extension) or FP32 [batch, n] (n <= one clip of samples
 * at the features' rate, values in [-1, 1], zero-padded to the clip); each element is one clip,
 * and a file longer than the clip is a 413 that points to /v1/audio/transcriptions. Outputs as
 * the network kind: "probabilities" [batch, classes] and "label".
 * Not here: the /v1/audio/transcriptions handler (transcriptions.c), microphones, languages. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/audio.h"
#include "amuse/model.h"
#include "amuse/runtime.h"
#include "amuse/voice.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the kind */

static int voice_claims(const struct cJSON *cfg)
{
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cfg, "features"));
}

static int voice_load(struct am__model *m, const struct cJSON *cfg, const char *cfg_path)
{
    struct am__voice *v = calloc(1, sizeof *v);
    if (!v)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    m->state = v;
    int rc = am__kind_network.load(m, cfg, cfg_path);
    if (rc)
        return rc;
    m->image = 0; /* (frames, coefficients, 1) looks like a grey image; it is not one */
    if ((rc = amuse_voice_model_features(m->net, &v->features, &v->clip_samples)))
        return rc;
    amuse_voice_detect_defaults(&v->detect);
    return AMUSE_OK;
}

static void voice_release(struct am__model *m)
{
    free(m->state);
    m->state = NULL;
    am__kind_network.release(m);
}

/* Tasks (streaming detection) one by one; each run of feature rows between them as one batch
 * (the usual case: all of them). */
static void voice_run(void *ctx, struct am__job **jobs, int n, int64_t samples)
{
    (void)samples;
    struct am__model *m = ctx;
    /* OpenMP's thread count is per thread: a task may run before the network's first batch. */
    static _Thread_local int threads_set;
    if (m->model_threads > 0 && !threads_set) {
        amuse_set_threads(m->model_threads);
        threads_set = 1;
    }
    for (int i = 0; i < n;) {
        if (jobs[i]->task) {
            jobs[i]->task(m, jobs[i]);
            i++;
            continue;
        }
        int k = i;
        int64_t rows = 0;
        for (; k < n && !jobs[k]->task; k++)
            rows += jobs[k]->samples;
        am__kind_network.run(ctx, jobs + i, k - i, rows);
        i = k;
    }
}

/* ------------------------------------------------------------------ decoding (decode pool) */

/* What an audio decode job carries (its task_arg, one block): the files (or FP32 rows) back to
 * back after the offsets. */
struct audio_work {
    struct amuse_audio_options ao;
    struct amuse_audio_features_options fo;
    size_t clip_samples;
    int64_t input_size;
    int n;
    int raw;       /* items are little FP32 rows of samples, not files */
    int keep_long; /* one file longer than a clip keeps its samples (transcription) */
    char names[48];
    struct am__voice_decoded result;
    size_t offset[]; /* n + 1 offsets into the bytes that follow */
};

static unsigned char *work_bytes(struct audio_work *w)
{
    return (unsigned char *)(w->offset + w->n + 1);
}

static void item_name(const struct audio_work *w, int i, char *buf, size_t size)
{
    if (w->n == 1 && strchr(w->names, '[') == NULL)
        snprintf(buf, size, "%s", w->names);
    else
        snprintf(buf, size, "%s[%d]", w->names, i);
}

/* Decode pool side: each item to samples, then to the features of one clip in j->input (or,
 * for a long recording with keep_long, its samples in j->input). */
static void audio_task(const struct am__model *unused, struct am__job *j)
{
    (void)unused;
    struct audio_work *w = j->task_arg;
    struct amuse_audio_frontend *fe = NULL;
    struct amuse_audio a = {0};
    int rc = amuse_audio_frontend_new(&w->fo, &fe);
    for (int i = 0; !rc && i < w->n; i++) {
        if (am__job_cancelled(j))
            break;
        char name[64];
        item_name(w, i, name, sizeof name);
        const unsigned char *bytes = work_bytes(w) + w->offset[i];
        size_t len = w->offset[i + 1] - w->offset[i];
        const float *x;
        size_t count;
        if (w->raw) {
            x = (const float *)(const void *)bytes;
            count = len / sizeof(float);
        } else {
            if ((rc = amuse_audio_decode(bytes, len, name, &w->ao, &a))) {
                if (rc == AMUSE_ETOOBIG && !w->keep_long) {
                    char why[200];
                    snprintf(why, sizeof why, "%s", amuse_last_error());
                    am__fail(rc, "%s (one clip per element; POST /v1/audio/transcriptions finds "
                                 "the commands in a longer recording)",
                             why);
                }
                break;
            }
            x = a.samples;
            count = a.count;
            w->result.seconds = amuse_audio_seconds(&a);
            w->result.source = a.source;
        }
        /* A clip and a little more (the resampler's rounding) is still one clip. */
        if (w->keep_long && count > w->clip_samples + w->clip_samples / 50) {
            free(j->input);
            j->input = a.samples; /* the job owns them now */
            a.samples = NULL;
            w->result.long_clip = 1;
            w->result.count = count;
        } else {
            w->result.count = count;
            rc = amuse_voice_clip_features(fe, x, count, w->clip_samples,
                                           j->input + (int64_t)i * w->input_size,
                                           (size_t)w->input_size);
            if (rc) {
                char why[200];
                snprintf(why, sizeof why, "%s", amuse_last_error());
                am__fail(rc, "%s: %s", name, why);
            }
        }
        amuse_audio_release(&a);
    }
    amuse_audio_release(&a);
    amuse_audio_frontend_free(fe);
    if (rc) {
        j->status = rc;
        snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
    }
}

int am__voice_decode_job_new(const struct amuse_server *s, const struct am__model *m,
                             const unsigned char *const *items, const size_t *lens, int n,
                             int raw, int keep_long, const char *names, struct am__job **out)
{
    *out = NULL;
    const struct am__voice *v = m->state;
    if (!(m->kind->flags & AM__KIND_VOICE) || !v)
        return am__fail(AMUSE_EINVAL, "model '%s' is not a voice model", m->name);
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += lens[i];
    struct am__job *j = am__job_new();
    struct audio_work *w = malloc(sizeof *w + (size_t)(n + 1) * sizeof(size_t) + bytes);
    float *input = malloc((size_t)n * (size_t)m->input_size * sizeof(float));
    if (!j || !w || !input) {
        am__job_unref(j);
        free(w);
        free(input);
        return am__fail(AMUSE_ENOMEM, "out of memory for %d sounds", n);
    }
    memset(w, 0, sizeof *w);
    w->ao.target_rate = v->features.sample_rate;
    w->ao.max_bytes = s->opt.max_body_bytes;
    w->ao.max_seconds = keep_long ? AM__VOICE_MAX_SECONDS
                                  : (double)v->clip_samples / v->features.sample_rate + 0.02;
    w->fo = v->features;
    w->clip_samples = v->clip_samples;
    w->input_size = m->input_size;
    w->n = n;
    w->raw = raw;
    w->keep_long = keep_long && n == 1 && !raw;
    snprintf(w->names, sizeof w->names, "%s", names);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        w->offset[i] = at;
        memcpy(work_bytes(w) + at, items[i], lens[i]);
        at += lens[i];
    }
    w->offset[n] = at;
    j->samples = 1; /* one unit of work for the pool, whatever n is */
    j->input = input;
    j->task = audio_task;
    j->task_arg = w;
    *out = j;
    return AMUSE_OK;
}

const struct am__voice_decoded *am__voice_decoded(const struct am__job *d)
{
    return &((const struct audio_work *)d->task_arg)->result;
}

/* ------------------------------------------------------------------ KServe V2 */

static int voice_v2_input(const struct amuse_server *s, const struct am__model *m,
                          const struct am__v2_tensor *t, struct am__job *j)
{
    const struct am__voice *v = m->state;
    char got[160];
    if (strcmp(t->name, "input") != 0)
        return am__fail(AMUSE_EFORMAT, "inputs[0].name '%.64s': model '%s' has one input, 'input'",
                        t->name, m->name);
    int64_t batch = t->ndim >= 1 ? t->shape[0] : 0;
    if (batch < 1 || batch > m->max_batch_size)
        return am__fail(AMUSE_ETOOBIG, "inputs[0].shape: batch %lld is outside 1..%d "
                                       "(max_batch_size)",
                        (long long)batch, m->max_batch_size);
    const unsigned char **items = calloc((size_t)batch, sizeof *items);
    size_t *lens = calloc((size_t)batch, sizeof *lens);
    unsigned char **decoded = NULL;
    float *samples = NULL;
    int rc = AMUSE_OK, raw = t->datatype == AM__DT_FP32;
    if (!items || !lens) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto out;
    }
    if (raw) {
        int64_t k = t->ndim == 2 ? t->shape[1] : 0;
        if (k < 1 || k > (int64_t)v->clip_samples) {
            rc = am__fail(AMUSE_ESHAPE,
                          "inputs[0].shape %s: model '%s' takes FP32 samples as [batch, n] with "
                          "n from 1 to %zu (one %g ms clip at %d Hz), or BYTES sound files",
                          am__v2_shape_text(t->shape, t->ndim, got, sizeof got), m->name,
                          v->clip_samples, 1000.0 * (double)v->clip_samples /
                                               v->features.sample_rate,
                          v->features.sample_rate);
            goto out;
        }
        if ((rc = am__v2_fp32_values(t, batch * k, &samples)))
            goto out;
        for (int64_t i = 0; i < batch; i++) {
            items[i] = (const unsigned char *)(samples + i * k);
            lens[i] = (size_t)k * sizeof(float);
        }
    } else {
        if (!(t->ndim == 1 || (t->ndim == 2 && t->shape[1] == 1))) {
            rc = am__fail(AMUSE_ESHAPE, "inputs[0].shape %s: BYTES sound files need shape "
                                        "[batch]",
                          am__v2_shape_text(t->shape, t->ndim, got, sizeof got));
            goto out;
        }
        if ((rc = am__v2_bytes(t, batch, items, lens, &decoded)))
            goto out;
    }
    j->samples = batch;
    rc = am__voice_decode_job_new(s, m, items, lens, (int)batch, raw, 0, "inputs[0].data",
                                  &j->decode);
out:
    am__v2_bytes_free(decoded, batch);
    free(samples);
    free(items);
    free(lens);
    return rc;
}

static void voice_v2_tensors(const struct am__model *m, struct am__buf *b)
{
    const struct am__voice *v = m->state;
    am__buf_printf(b,
                   "\"inputs\": [{\"name\": \"input\", \"datatype\": \"BYTES\", \"shape\": [-1], "
                   "\"parameters\": {\"content\": \"sound files: WAV, FLAC or Ogg/Vorbis, one "
                   "clip each\", \"clip_ms\": %g, \"sample_rate\": %d, \"also_accepts\": "
                   "\"FP32 [-1, n]: n <= %zu samples at %d Hz in [-1, 1]\"}}], ",
                   1000.0 * (double)v->clip_samples / v->features.sample_rate,
                   v->features.sample_rate, v->clip_samples, v->features.sample_rate);
    am__buf_printf(b, "\"outputs\": [{\"name\": \"probabilities\", \"datatype\": \"FP32\", "
                      "\"shape\": [-1, %lld], \"parameters\": {\"labels\": [",
                   (long long)m->output_size);
    for (int k = 0; k < m->output_size; k++) {
        const char *label = amuse_model_label(m->net, k);
        if (k)
            am__buf_add(b, ", ", 2);
        am__buf_json_string(b, label ? label : "");
    }
    am__buf_puts(b, "]}}, {\"name\": \"label\", \"datatype\": \"BYTES\", \"shape\": [-1]}]");
}

static const char *const voice_outputs[] = {"probabilities", "label", NULL};

/* encode_outputs is the network kind's: the same outputs from the same rows */
static void voice_v2_outputs(const struct am__model *m, const struct am__v2_request *req,
                             const struct am__job *job, struct am__buf *b)
{
    am__kind_network.v2_encode_outputs(m, req, job, b);
}

const struct am__model_kind am__kind_voice = {
    .name = "voice",
    .config_type = NULL,
    .claims = voice_claims,
    .flags = AM__KIND_VOICE,
    .load = voice_load,
    .release = voice_release,
    .run = voice_run,
    .v2_input = voice_v2_input,
    .v2_outputs = voice_outputs,
    .v2_encode_outputs = voice_v2_outputs,
    .v2_encode_tensors = voice_v2_tensors,
};
