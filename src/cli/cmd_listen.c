/* cmd_listen.c - `amuse listen MODEL FILE|-`: voice commands in a recording or a live stream,
 * one line per command with its start time and score (amuse/voice.h's detector). A file, or a
 * WAV on standard input, is decoded whole; headerless 16-bit PCM on standard input is streamed,
 * so `arecord -f S16_LE -r 16000 | amuse listen MODEL -` prints commands as they are spoken.
 * It does not record audio itself or play anything. */
#include "cli/cli.h"

#include "amuse/audio.h"
#include "amuse/error.h"
#include "amuse/voice.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_EVENTS 64

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: amuse listen MODEL FILE|- [--threshold P] [--step-ms MS] [--average-ms MS]\n"
        "                    [--suppress-ms MS] [--min-count N] [--raw RATE] [--json]\n\n"
        "Print the voice commands heard in FILE, one line each: start time (seconds),\n"
        "word, score. MODEL is a trained voice model directory (models/default/voice-dscnn/1).\n"
        "A 1 s window slides in steps; the scores of the last --average-ms are averaged, and\n"
        "a command fires when its average reaches --threshold, once per --suppress-ms.\n\n"
        "FILE          WAV, FLAC or Ogg/Vorbis, converted to 16 kHz mono\n"
        "-             standard input: a WAV (read to its end), or else headerless signed\n"
        "              16-bit little-endian mono PCM, streamed (arecord -f S16_LE -r 16000)\n"
        "--raw RATE    the rate of headerless standard input (default 16000)\n"
        "--threshold P averaged score a command needs (default 0.6)\n"
        "--step-ms MS  window step, 10-1000 (default 50)\n"
        "--average-ms MS  averaging period (default 300)\n"
        "--suppress-ms MS quiet period after a command (default 500)\n"
        "--min-count N windows averaged before anything fires (default 3)\n"
        "--json        one JSON object per line: start, detected, word, score\n");
}

struct listen {
    struct amuse_voice_detector *det;
    int json, count;
};

static int feed(struct listen *l, const float *x, size_t n)
{
    struct amuse_voice_event ev[MAX_EVENTS];
    int n_ev = 0, dropped = 0;
    int rc = amuse_voice_detector_feed(l->det, x, n, ev, MAX_EVENTS, &n_ev, &dropped);
    if (rc)
        return cli_fail(rc, "listen");
    for (int i = 0; i < n_ev; i++) {
        if (l->json)
            printf("{\"start\": %.3f, \"detected\": %.3f, \"word\": \"%s\", \"score\": %.4f}\n",
                   ev[i].start, ev[i].detected, ev[i].word, ev[i].score);
        else
            printf("%8.2f s  %-10s %.2f\n", ev[i].start, ev[i].word, ev[i].score);
        l->count++;
    }
    fflush(stdout);
    return 0;
}

/* Trailing silence, so a command at the very end still gets its averaged windows. */
static int finish(struct listen *l, int rate)
{
    float zeros[1600] = {0};
    for (int i = 0; i < rate / 2; i += 1600)
        if (feed(l, zeros, 1600))
            return 1;
    return 0;
}

/* Headerless 16-bit PCM from standard input, `have` bytes already read into head. */
static int stream_raw(struct listen *l, const unsigned char *head, size_t have, int rate)
{
    unsigned char bytes[3200 + 2];
    float x[1601];
    size_t len = have;
    memcpy(bytes, head, have);
    for (;;) {
        ssize_t r = read(STDIN_FILENO, bytes + len, sizeof bytes - 2 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return cli_error("stdin: %s", strerror(errno));
        len += (size_t)r;
        size_t n = len / 2;
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(int16_t)(bytes[2 * i] | bytes[2 * i + 1] << 8) / 32768.0f;
        if (n && feed(l, x, n))
            return 1;
        memmove(bytes, bytes + 2 * n, len - 2 * n);
        len -= 2 * n;
        if (r == 0)
            break;
    }
    return finish(l, rate);
}

int cmd_listen(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    struct amuse_voice_detect_options o;
    amuse_voice_detect_defaults(&o);
    struct listen l = {0};
    long long raw_rate = 16000;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        double *target = strcmp(a, "--threshold") == 0     ? &o.threshold
                         : strcmp(a, "--step-ms") == 0     ? &o.step_ms
                         : strcmp(a, "--average-ms") == 0  ? &o.average_ms
                         : strcmp(a, "--suppress-ms") == 0 ? &o.suppress_ms
                                                           : NULL;
        long long v;
        if (target && i + 1 < argc) {
            char *end;
            *target = strtod(argv[++i], &end);
            if (*end || end == argv[i])
                return cli_error("listen: %s needs a number, got '%s'", a, argv[i]), 2;
        } else if (strcmp(a, "--min-count") == 0 && i + 1 < argc) {
            if (cli_parse_int(a, argv[++i], 1, 1000, &v))
                return 2;
            o.min_count = (int)v;
        } else if (strcmp(a, "--raw") == 0 && i + 1 < argc) {
            if (cli_parse_int(a, argv[++i], AMUSE_AUDIO_MIN_RATE, AMUSE_AUDIO_MAX_RATE, &raw_rate))
                return 2;
        } else if (strcmp(a, "--json") == 0) {
            l.json = 1;
        } else {
            cli_error("listen: unknown option or missing value: %s", a);
            return 2;
        }
    }
    const char *path = argv[2];
    struct amuse_model *m = NULL;
    struct amuse_audio a = {0};
    struct amuse_audio_features_options fo;
    size_t clip;
    int status = 1, rc;
    if (cli_open_model(argv[1], 0, &m))
        goto out;
    if ((rc = amuse_voice_model_features(m, &fo, &clip)) ||
        (rc = amuse_voice_detector_new(m, &o, &l.det))) {
        cli_fail(rc, argv[1]);
        goto out;
    }
    struct amuse_audio_options ao = {.target_rate = fo.sample_rate};
    if (strcmp(path, "-") == 0) {
        unsigned char head[4];
        size_t have = 0;
        while (have < 4) {
            ssize_t r = read(STDIN_FILENO, head + have, 4 - have);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            have += (size_t)r;
        }
        if (have == 4 && memcmp(head, "RIFF", 4) == 0) {
            /* A WAV: the decoder reads the rest (its size fields may lie, as a stream's do). */
            struct amuse_audio_options wo = ao;
            wo.max_bytes = AMUSE_AUDIO_MAX_BYTES;
            size_t cap = 1 << 16, len = 4;
            unsigned char *bytes = malloc(cap);
            if (!bytes)
                goto out;
            memcpy(bytes, head, 4);
            for (;;) {
                if (len == cap) {
                    if (cap > wo.max_bytes) {
                        free(bytes);
                        cli_error("stdin: more than %zu bytes", wo.max_bytes);
                        goto out;
                    }
                    unsigned char *nb = realloc(bytes, cap * 2);
                    if (!nb) {
                        free(bytes);
                        goto out;
                    }
                    bytes = nb;
                    cap *= 2;
                }
                ssize_t r = read(STDIN_FILENO, bytes + len, cap - len);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                len += (size_t)r;
            }
            rc = amuse_audio_decode(bytes, len, "stdin", &wo, &a);
            free(bytes);
            if (rc) {
                cli_fail(rc, "stdin");
                goto out;
            }
        } else {
            if (raw_rate != fo.sample_rate) {
                cli_error("listen: raw input at %lld Hz; the model needs %d Hz (resample with "
                          "sox, or give a WAV)",
                          raw_rate, fo.sample_rate);
                goto out;
            }
            status = stream_raw(&l, head, have, fo.sample_rate);
            goto out;
        }
    } else if ((rc = amuse_audio_load(path, &ao, &a))) {
        cli_fail(rc, path);
        goto out;
    }
    for (size_t at = 0; at < a.count; at += 1600) {
        size_t n = a.count - at < 1600 ? a.count - at : 1600;
        if (feed(&l, a.samples + at, n))
            goto out;
    }
    if (finish(&l, fo.sample_rate))
        goto out;
    status = 0;
out:
    amuse_audio_release(&a);
    amuse_voice_detector_free(l.det);
    amuse_model_free(m);
    return status;
}
