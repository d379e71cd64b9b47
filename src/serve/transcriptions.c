/* transcriptions.c - POST /v1/audio/transcriptions in OpenAI's shape, for voice-command models:
 * a multipart/form-data upload (the one form parser, am__form_parse) with the fields
 *
 *   file             the recording: WAV, FLAC or Ogg/Vorbis, any rate, mono or stereo
 *   model            a voice model's name (or ?model= in the query string)
 *   response_format  json (default) | text | verbose_json
 *   temperature, language, prompt   accepted and ignored (a command model has no use for them)
 *
 * and the answer: json {"text": "jump fire"} (the commands heard, in order, joined by spaces;
 * "" when none), text the same text as text/plain, verbose_json {"task": "transcribe",
 * "model", "duration", "text", "events": [{"start", "detected", "word", "score"}], "label",
 * "score"} (docs/serve.md). A recording of up to one clip (the model's clip_ms, plus 20 ms) is
 * classified once: its top label is reported as "label" (also "_silence_" or "_unknown_") and is
 * the text when it is a command scoring at least the detector's threshold. A longer one goes
 * through streaming detection (amuse_voice_detector, with half a second of silence after it so a
 * command at the very end is heard), up to AM__VOICE_MAX_SECONDS.
 *
 * The bytes are decoded on decode.c's pool (caps checked by the decoder before a sample is
 * decoded: 413), the network runs on the model's worker: a short clip as one row of an ordinary
 * batch, a long recording as a detection task. Errors are OpenAI's shape (a /v1 path).
 * Not here: translations, streaming uploads, timestamps finer than the detector's. */
#define _GNU_SOURCE
#include "serve/serve_internal.h"

#include "amuse/model.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { FORMAT_JSON, FORMAT_TEXT, FORMAT_VERBOSE };

/* Streaming detection, on the model's worker (the job's task). */
struct detect_work {
    size_t count; /* samples in the job's input */
    int n_events, dropped;
    struct amuse_voice_event events[AM__VOICE_MAX_EVENTS];
};

static void detect_feed(struct amuse_voice_detector *det, struct detect_work *w, const float *x,
                        size_t n, int *rc)
{
    int got = 0, dropped = 0;
    *rc = amuse_voice_detector_feed(det, x, n, w->events + w->n_events,
                                    AM__VOICE_MAX_EVENTS - w->n_events, &got, &dropped);
    w->n_events += got;
    w->dropped += dropped;
}

static void detect_task(const struct am__model *m, struct am__job *j)
{
    struct detect_work *w = j->task_arg;
    const struct am__voice *v = m->state;
    struct amuse_voice_detector *det = NULL;
    int rc = amuse_voice_detector_new(m->net, &v->detect, &det);
    size_t step = (size_t)v->features.sample_rate / 10; /* feed 100 ms at a time */
    for (size_t at = 0; !rc && at < w->count; at += step) {
        if (am__job_cancelled(j)) /* the waiter left: stop early */
            break;
        detect_feed(det, w, j->input + at, w->count - at < step ? w->count - at : step, &rc);
    }
    /* Half a second of silence after the end, so a last command gets its averaged windows. */
    float zeros[1600] = {0};
    for (size_t at = 0; !rc && at < (size_t)v->features.sample_rate / 2; at += 1600)
        detect_feed(det, w, zeros, 1600, &rc);
    amuse_voice_detector_free(det);
    if (rc) {
        j->status = rc;
        snprintf(j->error, sizeof j->error, "%s", amuse_last_error());
    }
}

static void put_event(struct am__buf *b, int first, double start, double detected,
                      const char *word, float score)
{
    am__buf_printf(b, "%s{\"start\": %.3f, \"detected\": %.3f, \"word\": ", first ? "" : ", ",
                   start, detected);
    am__buf_json_string(b, word);
    am__buf_puts(b, ", \"score\": ");
    am__buf_float(b, score);
    am__buf_puts(b, "}");
}

static void reply(struct am__request *r, const struct am__model *m, int format,
                  const struct am__voice_decoded *dec, const struct am__job *job)
{
    const struct am__voice *v = m->state;
    struct am__buf text = {0}, events = {0};
    int n_events = 0, dropped = 0;
    const char *label = NULL;
    float score = 0;
    if (dec->long_clip) {
        const struct detect_work *w = job->task_arg;
        for (int i = 0; i < w->n_events; i++) {
            const struct amuse_voice_event *e = &w->events[i];
            if (i)
                am__buf_puts(&text, " ");
            am__buf_puts(&text, e->word);
            put_event(&events, i == 0, e->start, e->detected, e->word, e->score);
        }
        n_events = w->n_events;
        dropped = w->dropped;
    } else {
        int best = 0;
        for (int k = 1; k < m->output_size; k++)
            if (job->output[k] > job->output[best])
                best = k;
        label = amuse_model_label(m->net, best);
        if (!label)
            label = "";
        score = job->output[best];
        if (label[0] && label[0] != '_' && score >= v->detect.threshold) {
            am__buf_puts(&text, label);
            put_event(&events, 1, 0.0, dec->seconds, label, score);
            n_events = 1;
        }
    }
    if (text.failed || events.failed) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    r->status = 200;
    r->items = 1;
    if (format == FORMAT_TEXT) {
        r->content_type = "text/plain; charset=utf-8";
        if (text.len)
            am__buf_add(&r->out, text.data, text.len);
        am__buf_puts(&r->out, "\n");
        goto out;
    }
    am__buf_puts(&r->out, "{");
    if (format == FORMAT_VERBOSE) {
        am__buf_puts(&r->out, "\"task\": \"transcribe\", \"model\": ");
        am__buf_json_string(&r->out, m->name);
        am__buf_printf(&r->out, ", \"duration\": %.3f, ", dec->seconds);
    }
    am__buf_puts(&r->out, "\"text\": ");
    am__buf_json_string(&r->out, text.len ? text.data : "");
    if (format == FORMAT_VERBOSE) {
        am__buf_puts(&r->out, ", \"events\": [");
        if (n_events)
            am__buf_add(&r->out, events.data, events.len);
        am__buf_puts(&r->out, "]");
        if (label) {
            am__buf_puts(&r->out, ", \"label\": ");
            am__buf_json_string(&r->out, label);
            am__buf_puts(&r->out, ", \"score\": ");
            am__buf_float(&r->out, score);
        }
        if (dropped)
            am__buf_printf(&r->out, ", \"dropped\": %d", dropped);
    }
    am__buf_puts(&r->out, "}");
out:
    am__buf_release(&text);
    am__buf_release(&events);
}

void am__handle_audio_transcriptions(struct am__request *r)
{
    static const char *const file_fields[] = {"file", NULL};
    struct am__form f;
    memset(&f, 0, sizeof f);
    f.file_fields = file_fields;
    f.fields[0] = "model";
    f.fields[1] = "response_format";
    struct am__model *m = NULL;
    struct am__job *d = NULL, *job = NULL;
    const char *ctype =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
        am__reply_error(r, 415,
                        "Content-Type must be multipart/form-data with a 'file' field (the "
                        "recording) and a 'model' field, not '%.64s'",
                        ctype ? ctype : "(none)");
        goto out;
    }
    if (am__form_parse(r, &f))
        goto out;
    const char *format_text = am__form_value(&f, "response_format");
    int format = FORMAT_JSON;
    if (format_text && strcmp(format_text, "text") == 0)
        format = FORMAT_TEXT;
    else if (format_text && strcmp(format_text, "verbose_json") == 0)
        format = FORMAT_VERBOSE;
    else if (format_text && strcmp(format_text, "json") != 0) {
        am__reply_error(r, 400, "response_format '%.32s' is not supported: use json, text or "
                                "verbose_json",
                        format_text);
        goto out;
    }
    if (!f.has_file) {
        am__reply_error(r, 400, "file: the form has no 'file' field (the recording to "
                                "transcribe: WAV, FLAC or Ogg/Vorbis)");
        goto out;
    }
    if (f.file.len == 0) {
        am__reply_error(r, 400, "file: the uploaded file is empty (0 bytes)");
        goto out;
    }
    const char *model = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "model");
    if (!model)
        model = am__form_value(&f, "model");
    if (!(m = am__route_model(r, model, AM__NEED_VOICE)))
        goto out;
    const unsigned char *bytes = (const unsigned char *)f.file.data;
    int rc = am__voice_decode_job_new(r->server, m, &bytes, &f.file.len, 1, 0, 1, "file", &d);
    am__buf_release(&f.file); /* the job has its copy */
    if (rc) {
        am__reply_status(r, rc, 400);
        goto out;
    }
    if (am__run_decode(r, m, d))
        goto out;
    const struct am__voice_decoded *dec = am__voice_decoded(d);
    if (!(job = am__job_new())) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    job->samples = 1;
    job->input = d->input; /* the pool is done with it */
    d->input = NULL;
    if (dec->long_clip) {
        struct detect_work *w = calloc(1, sizeof *w);
        if (!w) {
            am__reply_error(r, 500, "out of memory");
            goto out;
        }
        w->count = dec->count;
        job->task = detect_task;
        job->task_arg = w;
    } else if (!(job->output = malloc((size_t)m->output_size * sizeof(float)))) {
        am__reply_error(r, 500, "out of memory");
        goto out;
    }
    if (am__run_job(r, m, job))
        goto out;
    reply(r, m, format, dec, job);
out:
    am__job_unref(job);
    am__job_unref(d);
    if (m)
        am__model_release(r->server->repo, m);
    am__buf_release(&f.file);
}
