/* detect.c - streaming voice-command detection (TensorFlow's RecognizeCommands): a clip-long
 * window slides over the stream in fixed steps, each window is classified, the posteriors of the
 * last average_ms are averaged, and a command fires above a threshold unless any command fired
 * within the suppression period; the same command fires again only after its average has
 * dropped below the threshold (a word stays inside the sliding window for about a clip, longer
 * than any useful suppression period). It keeps only the samples it still needs (the window,
 * the averaging period and a step), so a live stream runs in bounded memory.
 *
 * It does not decode audio, resample, or run more than one model; labels starting with '_'
 * (_silence_, _unknown_) never fire. */
#include "amuse/voice.h"

#include "core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ONSET_FRAME_MS 10
#define ONSET_RANGE    0.01 /* frames within 20 dB of the window's loudest are speech */
#define ONSET_GAP_MS   100  /* quieter runs up to this long inside a word are bridged */

struct window_result {
    int64_t end; /* absolute sample index just past the window */
    float *posterior;
};

struct amuse_voice_detector {
    struct amuse_model *m;
    struct amuse_voice_detect_options o;
    struct amuse_audio_frontend *fe;
    int rate, n_labels;
    size_t clip, step, features;
    float *feat, *onset_energy;
    /* Samples [base, base + len) of the stream, in buf (capacity cap). */
    float *buf;
    size_t len, cap;
    int64_t base, fed, next_end;
    /* The last n_history window results (a ring of max_history). */
    struct window_result *history;
    float *history_data;
    int max_history, n_history, head;
    float *average;
    int last_label, rearmed;
    int64_t last_fire;  /* absolute sample of the last event, or INT64_MIN */
    int64_t last_start; /* its onset */
};

void amuse_voice_detect_defaults(struct amuse_voice_detect_options *o)
{
    o->step_ms = 50;
    o->average_ms = 300;
    o->threshold = 0.6;
    o->suppress_ms = 500;
    o->min_count = 3;
}

static int check_options(const struct amuse_voice_detect_options *o)
{
    if (!(o->step_ms >= 10 && o->step_ms <= 1000))
        return am__fail(AMUSE_EINVAL, "detector: step_ms %g is outside 10..1000", o->step_ms);
    if (!(o->average_ms >= 0 && o->average_ms <= 5000))
        return am__fail(AMUSE_EINVAL, "detector: average_ms %g is outside 0..5000", o->average_ms);
    if (!(o->threshold >= 0 && o->threshold <= 1))
        return am__fail(AMUSE_EINVAL, "detector: threshold %g is outside 0..1", o->threshold);
    if (!(o->suppress_ms >= 0 && o->suppress_ms <= 60000))
        return am__fail(AMUSE_EINVAL, "detector: suppress_ms %g is outside 0..60000",
                        o->suppress_ms);
    if (o->min_count < 1 || o->min_count > 1000)
        return am__fail(AMUSE_EINVAL, "detector: min_count %d is outside 1..1000", o->min_count);
    return AMUSE_OK;
}

void amuse_voice_detector_free(struct amuse_voice_detector *d)
{
    if (!d)
        return;
    amuse_audio_frontend_free(d->fe);
    free(d->feat);
    free(d->onset_energy);
    free(d->buf);
    free(d->history);
    free(d->history_data);
    free(d->average);
    free(d);
}

int amuse_voice_detector_new(struct amuse_model *m, const struct amuse_voice_detect_options *o,
                             struct amuse_voice_detector **out)
{
    *out = NULL;
    struct amuse_voice_detector *d = calloc(1, sizeof *d);
    if (!d)
        return am__fail(AMUSE_ENOMEM, "out of memory");
    struct amuse_audio_features_options fo;
    int rc;
    if (o)
        d->o = *o;
    else
        amuse_voice_detect_defaults(&d->o);
    if ((rc = check_options(&d->o)) || (rc = amuse_voice_model_features(m, &fo, &d->clip)) ||
        (rc = amuse_audio_frontend_new(&fo, &d->fe)))
        goto fail;
    d->m = m;
    d->rate = fo.sample_rate;
    d->n_labels = (int)amuse_shape_size(amuse_model_output_shape(m));
    if (d->n_labels < 2 || amuse_model_output_rows(m) != 1) {
        rc = am__fail(AMUSE_ESHAPE, "model '%s': a voice model outputs one row of class scores",
                      amuse_model_name(m));
        goto fail;
    }
    d->step = (size_t)llround(d->o.step_ms * d->rate / 1000.0);
    d->features = amuse_audio_frontend_frames(d->fe, d->clip) *
                  (size_t)amuse_audio_frontend_coefficients(d->fe);
    d->max_history = (int)(d->o.average_ms / d->o.step_ms) + 1;
    d->cap = d->clip + (size_t)d->max_history * d->step + d->step;
    d->feat = malloc(d->features * sizeof *d->feat);
    d->onset_energy = malloc((d->clip / 16 + 2) * sizeof *d->onset_energy);
    d->buf = malloc(d->cap * sizeof *d->buf);
    d->history = calloc((size_t)d->max_history, sizeof *d->history);
    d->history_data = malloc((size_t)d->max_history * (size_t)d->n_labels * sizeof(float));
    d->average = malloc((size_t)d->n_labels * sizeof *d->average);
    if (!d->feat || !d->onset_energy || !d->buf || !d->history || !d->history_data || !d->average) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < d->max_history; i++)
        d->history[i].posterior = d->history_data + (size_t)i * (size_t)d->n_labels;
    d->next_end = (int64_t)d->clip;
    d->last_label = -1;
    d->last_fire = INT64_MIN;
    *out = d;
    return AMUSE_OK;
fail:
    amuse_voice_detector_free(d);
    return rc;
}

double amuse_voice_detector_time(const struct amuse_voice_detector *d)
{
    return (double)d->fed / d->rate;
}

/* Where speech starts in the window ending at `end`: the 10 ms frames within 20 dB of the
 * loudest are speech, runs split by quiet gaps longer than ONSET_GAP_MS are segments, and the
 * segment with the most energy wins (halved when it touches the window's edge: a neighbouring
 * word cut off). Returns an absolute sample index. */
static int64_t onset_of(struct amuse_voice_detector *d, int64_t end)
{
    size_t frame = (size_t)(d->rate * ONSET_FRAME_MS / 1000), n = d->clip / frame;
    const float *x = d->buf + (end - (int64_t)d->clip - d->base);
    float peak = 0;
    for (size_t i = 0; i < n; i++) {
        double e = 0;
        for (size_t k = 0; k < frame; k++)
            e += (double)x[i * frame + k] * x[i * frame + k];
        d->onset_energy[i] = (float)(e / (double)frame);
        if (d->onset_energy[i] > peak)
            peak = d->onset_energy[i];
    }
    size_t gap_frames = ONSET_GAP_MS / ONSET_FRAME_MS, best_start = 0;
    double best = -1;
    for (size_t i = 0; i < n;) {
        if (!(d->onset_energy[i] >= peak * ONSET_RANGE) || peak <= 0) {
            i++;
            continue;
        }
        size_t start = i, last = i, quiet = 0;
        double sum = 0;
        for (; i < n && quiet <= gap_frames; i++) {
            if (d->onset_energy[i] >= peak * ONSET_RANGE) {
                sum += d->onset_energy[i];
                last = i;
                quiet = 0;
            } else {
                quiet++;
            }
        }
        i = last + 1;
        if (start == 0 || last == n - 1)
            sum *= 0.5;
        if (sum > best) {
            best = sum;
            best_start = start;
        }
    }
    return end - (int64_t)d->clip + (int64_t)(best_start * frame);
}

/* Classify the window ending at d->next_end and maybe fire. */
static int evaluate_window(struct amuse_voice_detector *d, struct amuse_voice_event *events,
                           int max_events, int *n_events, int *dropped)
{
    int64_t end = d->next_end;
    const float *x = d->buf + (end - (int64_t)d->clip - d->base);
    int rc = amuse_voice_clip_features(d->fe, x, d->clip, d->clip, d->feat, d->features);
    if (rc)
        return rc;
    const float *post;
    if ((rc = amuse_model_forward(d->m, d->feat, 1, 0, &post)))
        return rc;
    struct window_result *w = &d->history[d->head];
    w->end = end;
    memcpy(w->posterior, post, (size_t)d->n_labels * sizeof *post);
    d->head = (d->head + 1) % d->max_history;
    if (d->n_history < d->max_history)
        d->n_history++;
    /* Average the windows that ended within the last average_ms (this one included). */
    int64_t horizon = end - (int64_t)llround(d->o.average_ms * d->rate / 1000.0);
    int count = 0;
    for (int k = 0; k < d->n_labels; k++)
        d->average[k] = 0;
    for (int i = 0; i < d->n_history; i++) {
        const struct window_result *h = &d->history[i];
        if (h->end < horizon)
            continue;
        count++;
        for (int k = 0; k < d->n_labels; k++)
            d->average[k] += h->posterior[k];
    }
    int best = 0;
    for (int k = 0; k < d->n_labels; k++) {
        d->average[k] /= (float)count;
        if (d->average[k] > d->average[best])
            best = k;
    }
    if (d->last_label >= 0 && d->average[d->last_label] < d->o.threshold)
        d->rearmed = 1; /* the last word has faded: it may fire again */
    const char *word = amuse_model_label(d->m, best);
    if (count < d->o.min_count || d->average[best] < d->o.threshold || (word && word[0] == '_'))
        return AMUSE_OK;
    int64_t suppress = (int64_t)llround(d->o.suppress_ms * d->rate / 1000.0);
    if (d->last_fire != INT64_MIN && end - d->last_fire < suppress)
        return AMUSE_OK; /* one utterance fires once, even when the average drifts to another
                            word */
    if (best == d->last_label && !d->rearmed)
        return AMUSE_OK; /* still the same utterance: windows hold it for about a clip */
    /* The window that scored the word highest locates it. */
    const struct window_result *top = NULL;
    for (int i = 0; i < d->n_history; i++) {
        const struct window_result *h = &d->history[i];
        if (h->end >= horizon && (!top || h->posterior[best] > top->posterior[best]))
            top = h;
    }
    int64_t start = onset_of(d, top->end);
    if (best == d->last_label && llabs(start - d->last_start) < d->rate / 4)
        return AMUSE_OK; /* the same word again at the same place: one utterance */
    d->last_fire = end;
    d->last_label = best;
    d->last_start = start;
    d->rearmed = 0;
    if (*n_events >= max_events) {
        if (dropped)
            (*dropped)++;
        return AMUSE_OK;
    }
    struct amuse_voice_event *e = &events[(*n_events)++];
    e->start = (double)start / d->rate;
    e->detected = (double)end / d->rate;
    e->label = best;
    e->word = word;
    e->score = d->average[best];
    return AMUSE_OK;
}

int amuse_voice_detector_feed(struct amuse_voice_detector *d, const float *samples, size_t n,
                              struct amuse_voice_event *events, int max_events, int *n_events,
                              int *dropped)
{
    *n_events = 0;
    if (dropped)
        *dropped = 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(samples[i]))
            return am__fail(AMUSE_EINVAL,
                            "detector: sample %lld of the stream is not a finite "
                            "number",
                            (long long)(d->fed + (int64_t)i));
    while (n > 0) {
        /* Drop what no future window or onset search reads. */
        int64_t keep_from =
            d->next_end - (int64_t)d->clip - (int64_t)d->max_history * (int64_t)d->step;
        if (keep_from > d->base) {
            size_t drop = (size_t)(keep_from - d->base);
            if (drop > d->len)
                drop = d->len;
            memmove(d->buf, d->buf + drop, (d->len - drop) * sizeof *d->buf);
            d->len -= drop;
            d->base += (int64_t)drop;
        }
        size_t take = d->cap - d->len;
        if (take > n)
            take = n;
        /* Never buffer past the next window's end before evaluating it. */
        int64_t room = d->next_end - (d->base + (int64_t)d->len);
        if (room > 0 && (int64_t)take > room)
            take = (size_t)room;
        memcpy(d->buf + d->len, samples, take * sizeof *samples);
        d->len += take;
        d->fed += (int64_t)take;
        samples += take;
        n -= take;
        while (d->base + (int64_t)d->len >= d->next_end) {
            int rc = evaluate_window(d, events, max_events, n_events, dropped);
            if (rc)
                return rc;
            d->next_end += (int64_t)d->step;
        }
    }
    return AMUSE_OK;
}
