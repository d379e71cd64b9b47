/* amuse/audio.h - read sound into 16 kHz mono samples, and turn samples into log-mel or MFCC
 * features (the front end of the voice-command models).
 *
 * Reading is libsndfile (from memory, a file or a file descriptor), limited to the formats a
 * voice app meets: WAV (PCM 8/16/24/32-bit, 32/64-bit float, WAVE_FORMAT_EXTENSIBLE, RF64),
 * FLAC and Ogg/Vorbis, plus headerless 16-bit little-endian PCM when asked for (what
 * `arecord -f S16_LE` writes). The format is recognised from its signature before libsndfile
 * sees a byte, so its other parsers (AIFF, AU, CAF, ...) are never reached; an Ogg file must be
 * one logical stream (chained or multiplexed files are refused). Channels are averaged
 * to mono, and the result is resampled to the target rate (16 kHz unless asked otherwise) with
 * libsamplerate.
 *
 * Caps: the input's byte size is checked before anything is parsed, and the duration before any
 * sample is decoded (from the header's frame count and rate); where the header does not know the
 * length (a FLAC stream without a total), the cap is enforced while reading. A WAV whose RIFF and
 * data sizes claim more than the file holds (what `espeak-ng --stdout` writes: it cannot seek
 * back to fix them) reads as the frames really present, as does a truncated WAV.
 *
 * A silent file is not an error here: silence is a sound the voice models classify
 * (`amuse audio info` says "silent"); only a file with no sample at all is "empty".
 *
 * Samples: NaN or infinite samples (possible only in float files) are rejected with
 * AMUSE_EFORMAT naming the time of the first one; finite samples beyond [-1, 1] are clipped
 * to it.
 *
 * Failures (amuse_last_error() names the source and, where it applies, the byte offset or
 * time): AMUSE_EFORMAT (not audio, corrupt, empty: no sample at all, NaN), AMUSE_EUNSUPPORTED (a
 * format or codec outside the list above, e.g. IMA ADPCM WAV, Ogg/Opus or a chained Ogg),
 * AMUSE_ETOOBIG (over a cap), AMUSE_EINVAL (options), AMUSE_EIO / AMUSE_ENOTFOUND (files),
 * AMUSE_ENOMEM.
 */
#ifndef AMUSE_AUDIO_H
#define AMUSE_AUDIO_H

#include "amuse/error.h"   /* status codes returned here */
#include "amuse/version.h" /* AMUSE_API */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_AUDIO_RATE         16000              /* default target sample rate */
#define AMUSE_AUDIO_MAX_BYTES    ((size_t)64 << 20) /* default input size cap */
#define AMUSE_AUDIO_MAX_SECONDS  600.0              /* default duration cap (10 minutes) */
#define AMUSE_AUDIO_MAX_CHANNELS 16
#define AMUSE_AUDIO_MIN_RATE     1000 /* accepted source rates, Hz */
#define AMUSE_AUDIO_MAX_RATE     384000

struct amuse_audio_options {
    int target_rate;    /* output rate in Hz; 0 = AMUSE_AUDIO_RATE */
    size_t max_bytes;   /* input size cap; 0 = AMUSE_AUDIO_MAX_BYTES */
    double max_seconds; /* duration cap (of the source); 0 = AMUSE_AUDIO_MAX_SECONDS */
    /* Headerless input: raw_rate > 0 reads the bytes as signed 16-bit little-endian PCM at
     * raw_rate Hz with raw_channels (0 = 1) interleaved channels. A trailing partial frame
     * (a stream cut mid-sample) is dropped. */
    int raw_rate, raw_channels;
};

/* What the source was, before conversion. */
struct amuse_audio_source {
    char container[16]; /* "WAV", "WAVEX", "RF64", "FLAC", "Ogg", "raw" */
    char codec[24];     /* "PCM 16-bit", "PCM 8-bit unsigned", "float 32-bit", "FLAC 16-bit",
                           "Vorbis", ... */
    int sample_rate;    /* Hz */
    int channels;
    int64_t frames; /* frames actually decoded (per channel) */
};

/* Decoded sound: mono, at rate Hz, values in [-1, 1]. */
struct amuse_audio {
    float *samples;
    size_t count;
    int rate;
    struct amuse_audio_source source;
};

/* Decode bytes (name is used in messages). opt may be NULL for the defaults. On success *out
 * holds malloc'd samples the caller releases with amuse_audio_release; on failure *out is
 * zeroed (samples NULL). */
AMUSE_API int amuse_audio_decode(const void *bytes, size_t len, const char *name,
                                 const struct amuse_audio_options *opt, struct amuse_audio *out);

/* Read a regular file (its size checked against max_bytes first) and decode it. */
AMUSE_API int amuse_audio_load(const char *path, const struct amuse_audio_options *opt,
                               struct amuse_audio *out);

/* Read a file descriptor to its end (a pipe, standard input), at most max_bytes: more is
 * AMUSE_ETOOBIG without reading on. Then decode as amuse_audio_decode. The descriptor is not
 * closed. */
AMUSE_API int amuse_audio_read_fd(int fd, const char *name, const struct amuse_audio_options *opt,
                                  struct amuse_audio *out);

/* Free the samples and zero *a. NULL and a zeroed struct are fine. */
AMUSE_API void amuse_audio_release(struct amuse_audio *a);

/* Seconds of a decoded sound. */
AMUSE_API double amuse_audio_seconds(const struct amuse_audio *a);

/* ---------------------------------------------------------------- features
 *
 * The default is the front end of TensorFlow's speech_commands example (its "mfcc" preprocessing,
 * which uses tf.raw_ops.AudioSpectrogram and Mfcc): frames of 30 ms (480 samples at 16 kHz) every
 * 10 ms, no padding (frames = 1 + (n - window) / stride, so 98 for one second); each frame
 * multiplied by a periodic Hann window w[i] = 0.5 - 0.5 cos(2 pi i / window), zero-padded to
 * the FFT size (the next power of two: 512) and transformed with KissFFT's real FFT; the
 * magnitude |X[k]| of bins 0..fft/2 (or the power |X[k]|^2 when spectrum is "power") goes
 * through 40 triangular mel filters. The mel scale is HTK's, mel(f) = 2595 log10(1 + f / 700)
 * (= 1127 ln(1 + f / 700)); the filters' edges and centres are mel_bands + 2 points equally
 * spaced in mel from lower_hz = 20 to upper_hz = 4000, and a bin at frequency k * rate / fft
 * gets the triangle's height there (peak 1, no area normalisation). Each filter output x becomes
 * log(max(x, log_floor)) with the natural log and log_floor = 1e-12: that is the log-mel
 * spectrogram. MFCC applies a DCT-II to each log-mel frame and keeps the first mfcc
 * coefficients: c[k] = sqrt(2 / M) sum_m logmel[m] cos(pi k (m + 0.5) / M), M = mel_bands
 * (the same scale for every k, as TensorFlow's MfccDct). speech_commands keeps 40.
 *
 * Output is frames x coefficients, row-major (one frame per row): coefficients = mfcc when
 * mfcc > 0, else mel_bands.
 */

#define AMUSE_AUDIO_MAX_FFT 8192
#define AMUSE_AUDIO_MAX_MEL 256

struct amuse_audio_features_options {
    int sample_rate;  /* Hz of the samples given (16000) */
    double window_ms; /* 30 */
    double stride_ms; /* 10 */
    int fft_size;     /* 0 = the next power of two >= the window (512); else a power of two */
    int mel_bands;    /* 40 */
    double lower_hz;  /* 20 */
    double upper_hz;  /* 4000 (at most sample_rate / 2) */
    double log_floor; /* 1e-12 */
    int power;        /* 0: magnitude |X| (default, as TensorFlow's Mfcc); 1: power |X|^2 */
    int mfcc;         /* 0: log-mel output; 1..mel_bands: that many DCT coefficients (40) */
};

/* The defaults above (MFCC with 40 coefficients). */
AMUSE_API void amuse_audio_features_defaults(struct amuse_audio_features_options *o);

/* Fill *o from a JSON object (a recipe's "features"), starting from the defaults. Keys:
 * "type" ("mfcc" or "log_mel"), "sample_rate", "window_ms", "stride_ms", "fft_size",
 * "mel_bands", "lower_hz", "upper_hz", "log_floor", "spectrum" ("magnitude" or "power"),
 * "mfcc" (coefficient count; implies type mfcc). Absent keys keep their default. An unknown key,
 * a wrong type or an out-of-range value is AMUSE_EINVAL with "<where>: key '<key>': ..." in the
 * message; malformed JSON is AMUSE_EFORMAT with the byte offset. On failure *o holds the
 * defaults. */
AMUSE_API int amuse_audio_features_parse(const char *json, size_t len, const char *where,
                                         struct amuse_audio_features_options *o);

/* Check the options' ranges and that they agree with each other (AMUSE_EINVAL naming the key). */
AMUSE_API int amuse_audio_features_check(const struct amuse_audio_features_options *o);

/* A front end: the window, the FFT plan, the mel filters and the DCT, computed once. Not safe to
 * use from two threads at once (KissFFT's real transform has scratch space in its plan): make
 * one per thread; each is a few tens of KB. */
struct amuse_audio_frontend;

/* Create a front end for checked options. *out = NULL on failure. */
AMUSE_API int amuse_audio_frontend_new(const struct amuse_audio_features_options *o,
                                       struct amuse_audio_frontend **out);
AMUSE_API void amuse_audio_frontend_free(struct amuse_audio_frontend *fe);

/* Frames that n samples give (0 when n is shorter than one window), and coefficients per frame. */
AMUSE_API size_t amuse_audio_frontend_frames(const struct amuse_audio_frontend *fe, size_t n);
AMUSE_API int amuse_audio_frontend_coefficients(const struct amuse_audio_frontend *fe);

/* Window and stride in samples. */
AMUSE_API int amuse_audio_frontend_window(const struct amuse_audio_frontend *fe);
AMUSE_API int amuse_audio_frontend_stride(const struct amuse_audio_frontend *fe);

/* Compute the features of n samples into out, which holds out_count floats; at least
 * frames(n) * coefficients. AMUSE_EINVAL when out is too small; zero frames is not an error
 * (*frames = 0). *frames may be NULL. */
AMUSE_API int amuse_audio_frontend_compute(struct amuse_audio_frontend *fe, const float *samples,
                                           size_t n, float *out, size_t out_count, size_t *frames);

#ifdef __cplusplus
}
#endif
#endif
