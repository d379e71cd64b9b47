/* amuse/voice.h - voice commands: data sets of feature clips for training, and streaming
 * detection of commands in a long recording or a live stream (TensorFlow's RecognizeCommands).
 *
 * A voice model is an amuse model whose config has "input": {"type": "audio", "clip_ms": 1000},
 * a "features" object (amuse/audio.h: amuse_audio_features_parse) and "labels"; its input is
 * the features of one clip, frames x coefficients (any input shape with that many values, e.g.
 * (49, 20) or (49, 20, 1)). Labels that start with '_' (_silence_, _unknown_) are not
 * commands: the detector never reports them.
 *
 * What this header does not do: decode files (amuse/audio.h), record from a microphone, or
 * recognise anything beyond the model's fixed words.
 */
#ifndef AMUSE_VOICE_H
#define AMUSE_VOICE_H

#include "amuse/audio.h"
#include "amuse/data.h"
#include "amuse/model.h"
#include "amuse/version.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_VOICE_MAX_CLIPS    1000000             /* clips per data set */
#define AMUSE_VOICE_MAX_MANIFEST ((size_t)256 << 20) /* manifest.csv size cap */
#define AMUSE_VOICE_MAX_CLIP_MS  10000               /* longest clip_ms a recipe may ask */

/* The features recipe of a voice model and its clip length in samples (at the features'
 * sample rate). AMUSE_EINVAL naming the key when the config has no "features" object, a bad
 * one, or a clip_ms outside 100..AMUSE_VOICE_MAX_CLIP_MS; AMUSE_ESHAPE when the model's input
 * does not hold exactly frames x coefficients floats. */
AMUSE_API int amuse_voice_model_features(const struct amuse_model *m,
                                         struct amuse_audio_features_options *features,
                                         size_t *clip_samples);

/* The features of one clip: samples are cut or zero-padded at the end to clip_samples, then
 * go through the front end. out holds out_count >= frames(clip_samples) x coefficients floats
 * (AMUSE_EINVAL otherwise). NaN or infinite samples are AMUSE_EINVAL. */
AMUSE_API int amuse_voice_clip_features(struct amuse_audio_frontend *fe, const float *samples,
                                        size_t n, size_t clip_samples, float *out,
                                        size_t out_count);

struct amuse_voice_data_options {
    const char *split; /* manifest rows whose split column is this; NULL: all. A comma-separated
                        * list ("train,validation") loads each split in turn, in that order */
    const char *const *labels; /* class names, in class-id order */
    int n_labels;
    struct amuse_audio_features_options features;
    size_t clip_samples; /* 0 = one second at the features' rate */
    int64_t limit;       /* > 0: keep the first `limit` clips */
};

/* Load clips into a dataset with one float input (frames, coefficients) and int32 class ids.
 * path is a manifest CSV (header path,label,... then one clip a row; path relative to the
 * manifest's directory; a voice,split,... column set as data/make_voice.sh writes), or a
 * directory: its manifest.csv, or else DIR/<label>/ *.wav for each label (split ignored).
 * A label not in the list, a missing or unreadable clip, or a malformed row is an error naming
 * the file and line (AMUSE_EFORMAT, or the decoder's status); no clips at all is
 * AMUSE_ENOTFOUND. On failure d is empty. */
AMUSE_API int amuse_voice_load_dataset(struct amuse_dataset *d, const char *path,
                                       const struct amuse_voice_data_options *o);

/* ---------------------------------------------------------------- streaming detection
 *
 * A window of clip_samples slides over the stream in steps of step_ms; each window is
 * classified; the posteriors of the windows of the last average_ms are averaged; the best
 * label of the average fires when it is a command (no leading '_'), its averaged score is at
 * least threshold, at least min_count windows were averaged, suppress_ms have passed since the
 * last event, and, if it is the last event's label, that label's average has dropped below the
 * threshold since and its onset is at least 250 ms from the last event's (so one utterance
 * fires once however long the window holds it). An event's start
 * is the onset of speech in the window that scored the word highest: the first 10 ms frame, going
 * back from the loudest frame, of the run of frames within 20 dB of it (gaps up to 100 ms bridged).
 * Times count from the first sample fed, in seconds.
 */

struct amuse_voice_event {
    double start;     /* seconds from the start of the stream */
    double detected;  /* seconds: the end of the window at which it fired */
    int label;        /* class id */
    const char *word; /* the model's label; owned by the model */
    float score;      /* averaged posterior */
};

struct amuse_voice_detect_options {
    double step_ms;     /* 20..1000, default 50 */
    double average_ms;  /* default 300 */
    double threshold;   /* 0..1, default 0.6 */
    double suppress_ms; /* default 500 */
    int min_count;      /* default 3 */
};

AMUSE_API void amuse_voice_detect_defaults(struct amuse_voice_detect_options *o);

struct amuse_voice_detector;

/* A detector for a built voice model (amuse_voice_model_features must accept it); the model is
 * borrowed and must outlive the detector, and is used by it alone while it feeds. o may be NULL
 * for the defaults; out-of-range options are AMUSE_EINVAL naming the field. *out = NULL on
 * failure. */
AMUSE_API int amuse_voice_detector_new(struct amuse_model *m,
                                       const struct amuse_voice_detect_options *o,
                                       struct amuse_voice_detector **out);
AMUSE_API void amuse_voice_detector_free(struct amuse_voice_detector *d);

/* Feed n samples (mono, the features' rate, values in [-1, 1]; NaN is AMUSE_EINVAL). Events that
 * fire are written to events (at most max_events; more are dropped and counted in *dropped,
 * which may be NULL) and *n_events says how many. Any number of samples per call; the stream's
 * memory is bounded (about two clips). */
AMUSE_API int amuse_voice_detector_feed(struct amuse_voice_detector *d, const float *samples,
                                        size_t n, struct amuse_voice_event *events, int max_events,
                                        int *n_events, int *dropped);

/* Seconds of stream fed so far. */
AMUSE_API double amuse_voice_detector_time(const struct amuse_voice_detector *d);

#ifdef __cplusplus
}
#endif
#endif
