/* cmd_audio.c - `amuse audio info|features FILE`: look at a sound as amuse reads it (format,
 * rate, channels, duration once converted to 16 kHz mono) and at the features a voice model
 * sees. FILE "-" is standard input. It does not play, record or write audio. */
#include "cli/cli.h"

#include "amuse/audio.h"
#include "amuse/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: amuse audio info FILE [--raw RATE] [--channels N]\n"
            "       amuse audio features FILE [--mfcc N | --log-mel] [--config JSON] [--json]\n"
            "                                 [--raw RATE] [--channels N]\n\n"
            "info      the source's container, codec, rate, channels and frames, and the\n"
            "          duration and sample count after conversion to 16 kHz mono\n"
            "features  the front end's output, one frame per line (30 ms windows every 10 ms):\n"
            "          MFCC (40 coefficients by default, as TensorFlow's speech_commands) or\n"
            "          the 40-band log-mel spectrogram\n\n"
            "FILE      WAV (PCM 8/16/24/32-bit, float, WAVE_FORMAT_EXTENSIBLE), FLAC or\n"
            "          Ogg/Vorbis; '-' reads standard input\n"
            "--raw RATE     the input is headerless signed 16-bit little-endian PCM at RATE Hz\n"
            "               (arecord -f S16_LE -r 16000 | amuse audio info - --raw 16000)\n"
            "--channels N   interleaved channels of raw input (default 1)\n"
            "--mfcc N       keep N DCT coefficients (1-40)\n"
            "--log-mel      the log-mel spectrogram instead of MFCC\n"
            "--config JSON  front-end settings as a recipe's \"features\" object, e.g.\n"
            "               '{\"window_ms\": 25, \"mel_bands\": 64, \"upper_hz\": 8000}'\n"
            "--json         one JSON object: settings, frames, coefficients, values\n");
}

static int load(const char *path, const struct amuse_audio_options *o, struct amuse_audio *a)
{
    int rc = strcmp(path, "-") == 0 ? amuse_audio_read_fd(STDIN_FILENO, "stdin", o, a)
                                    : amuse_audio_load(path, o, a);
    return rc ? cli_fail(rc, strcmp(path, "-") == 0 ? "stdin" : path) : 0;
}

static int audio_info(const char *path, const struct amuse_audio_options *o)
{
    struct amuse_audio a;
    if (load(path, o, &a))
        return 1;
    printf("file        %s\n", strcmp(path, "-") == 0 ? "(standard input)" : path);
    printf("format      %s, %s\n", a.source.container, a.source.codec);
    printf("source      %d Hz, %d channel%s, %lld frames (%.3f s)\n", a.source.sample_rate,
           a.source.channels, a.source.channels == 1 ? "" : "s", (long long)a.source.frames,
           (double)a.source.frames / a.source.sample_rate);
    printf("converted   %d Hz mono, %zu samples (%.3f s)\n", a.rate, a.count,
           amuse_audio_seconds(&a));
    double peak = 0, sum = 0;
    for (size_t i = 0; i < a.count; i++) {
        double v = a.samples[i] < 0 ? -a.samples[i] : a.samples[i];
        peak = v > peak ? v : peak;
        sum += (double)a.samples[i] * a.samples[i];
    }
    double rms = a.count ? sqrt(sum / (double)a.count) : 0;
    if (peak > 0)
        printf("level       peak %.1f dBFS, RMS %.1f dBFS\n", 20 * log10(peak), 20 * log10(rms));
    else
        printf("level       silent (every sample is 0)\n");
    amuse_audio_release(&a);
    return 0;
}

static int audio_features(const char *path, const struct amuse_audio_options *ao,
                          const struct amuse_audio_features_options *fo, int json)
{
    struct amuse_audio a;
    if (load(path, ao, &a))
        return 1;
    struct amuse_audio_frontend *fe = NULL;
    float *out = NULL;
    int rc = amuse_audio_frontend_new(fo, &fe);
    if (rc) {
        amuse_audio_release(&a);
        return cli_fail(rc, "features");
    }
    size_t frames = amuse_audio_frontend_frames(fe, a.count);
    int c = amuse_audio_frontend_coefficients(fe);
    out = malloc((frames ? frames : 1) * (size_t)c * sizeof *out);
    if (!out ||
        amuse_audio_frontend_compute(fe, a.samples, a.count, out, frames * (size_t)c, &frames)) {
        free(out);
        amuse_audio_frontend_free(fe);
        amuse_audio_release(&a);
        return cli_error("%s: cannot compute features: %s", path,
                         out ? amuse_last_error() : "out of memory");
    }
    const char *kind = fo->mfcc > 0 ? "mfcc" : "log_mel";
    if (json) {
        printf("{\"file\":");
        cli_json_string(stdout, path);
        printf(",\"features\":{\"type\":\"%s\",\"sample_rate\":%d,\"window_ms\":%g,"
               "\"stride_ms\":%g,\"fft_size\":%d,\"mel_bands\":%d,\"lower_hz\":%g,"
               "\"upper_hz\":%g,\"log_floor\":%g,\"spectrum\":\"%s\",\"mfcc\":%d},"
               "\"frames\":%zu,\"coefficients\":%d,\"values\":[",
               kind, fo->sample_rate, fo->window_ms, fo->stride_ms, fo->fft_size, fo->mel_bands,
               fo->lower_hz, fo->upper_hz, fo->log_floor, fo->power ? "power" : "magnitude",
               fo->mfcc, frames, c);
        for (size_t f = 0; f < frames; f++) {
            printf("%s[", f ? "," : "");
            for (int k = 0; k < c; k++)
                printf("%s%.6g", k ? "," : "", out[f * (size_t)c + (size_t)k] + 0.0f); /* no -0 */
            printf("]");
        }
        printf("]}\n");
    } else {
        printf("# %s: %zu frames x %d %s coefficients (window %d, stride %d samples at %d Hz)\n",
               path, frames, c, fo->mfcc > 0 ? "MFCC" : "log-mel", amuse_audio_frontend_window(fe),
               amuse_audio_frontend_stride(fe), fo->sample_rate);
        for (size_t f = 0; f < frames; f++)
            for (int k = 0; k < c; k++)
                printf("%.4f%c", out[f * (size_t)c + (size_t)k] + 0.0f, k + 1 < c ? ' ' : '\n');
    }
    free(out);
    amuse_audio_frontend_free(fe);
    amuse_audio_release(&a);
    return 0;
}

int cmd_audio(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3 || (strcmp(argv[1], "info") != 0 && strcmp(argv[1], "features") != 0)) {
        usage(stderr);
        return 2;
    }
    int features = strcmp(argv[1], "features") == 0;
    const char *path = argv[2];
    struct amuse_audio_options ao = {0};
    struct amuse_audio_features_options fo;
    amuse_audio_features_defaults(&fo);
    int json = 0, log_mel = 0;
    long long mfcc = -1;
    const char *config = NULL;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        int has_value = i + 1 < argc;
        if (strcmp(a, "--raw") == 0 && has_value) {
            if (cli_parse_int(a, argv[++i], AMUSE_AUDIO_MIN_RATE, AMUSE_AUDIO_MAX_RATE, &v))
                return 2;
            ao.raw_rate = (int)v;
        } else if (strcmp(a, "--channels") == 0 && has_value) {
            if (cli_parse_int(a, argv[++i], 1, AMUSE_AUDIO_MAX_CHANNELS, &v))
                return 2;
            ao.raw_channels = (int)v;
        } else if (features && strcmp(a, "--mfcc") == 0 && has_value) {
            if (cli_parse_int(a, argv[++i], 1, AMUSE_AUDIO_MAX_MEL, &mfcc))
                return 2;
        } else if (features && strcmp(a, "--log-mel") == 0) {
            log_mel = 1;
        } else if (features && strcmp(a, "--config") == 0 && has_value) {
            config = argv[++i];
        } else if (features && strcmp(a, "--json") == 0) {
            json = 1;
        } else {
            cli_error("audio %s: unknown option or missing value: %s", argv[1], a);
            return 2;
        }
    }
    if (ao.raw_channels && !ao.raw_rate)
        return cli_error("audio: --channels applies to raw input only (give --raw RATE)"), 2;
    if (!features)
        return audio_info(path, &ao);
    if (config) {
        int rc = amuse_audio_features_parse(config, strlen(config), "--config", &fo);
        if (rc)
            return cli_fail(rc, "--config");
    }
    if (log_mel && mfcc >= 0)
        return cli_error("audio features: --mfcc and --log-mel exclude each other"), 2;
    if (log_mel)
        fo.mfcc = 0;
    if (mfcc >= 0)
        fo.mfcc = (int)mfcc;
    int rc = amuse_audio_features_check(&fo);
    if (rc)
        return cli_fail(rc, "features");
    ao.target_rate = fo.sample_rate;
    return audio_features(path, &ao, &fo, json);
}
