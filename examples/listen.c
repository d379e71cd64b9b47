/* listen.c - voice commands in-process: decode a sound file, feed its samples to the streaming
 * detector 0.1 s at a time (as a game would from its audio callback), print each command.
 * Build against an installed amuse:
 *
 *     cc listen.c $(pkg-config --cflags --libs amuse) -o listen
 *     ./listen models/default/voice-dscnn/1 tests/fixtures/audio/commands.wav
 *
 * It does not open a microphone: hand amuse_voice_detector_feed whatever samples you capture
 * (mono, 16 kHz, floats in [-1, 1]).
 */
#include <amuse/audio.h>
#include <amuse/error.h>
#include <amuse/model.h>
#include <amuse/voice.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s <voice-model-dir> <sound-file>\n", argv[0]);
        return 2;
    }
    struct amuse_model *m = NULL;
    struct amuse_voice_detector *det = NULL;
    struct amuse_audio a = {0};
    int status = 1;
    if (amuse_model_load(&m, argv[1]) != AMUSE_OK ||
        amuse_voice_detector_new(m, NULL, &det) != AMUSE_OK ||
        amuse_audio_load(argv[2], NULL, &a) != AMUSE_OK) {
        fprintf(stderr, "%s\n", amuse_last_error());
        goto out;
    }
    float silence[8000] = {0}; /* 0.5 s after the end, so a last command still fires */
    for (size_t at = 0; at <= a.count; at += 1600) {
        const float *x = at < a.count ? a.samples + at : silence;
        size_t n = at < a.count ? (a.count - at < 1600 ? a.count - at : 1600) : 8000;
        struct amuse_voice_event ev[8];
        int n_ev;
        if (amuse_voice_detector_feed(det, x, n, ev, 8, &n_ev, NULL) != AMUSE_OK) {
            fprintf(stderr, "%s\n", amuse_last_error());
            goto out;
        }
        for (int i = 0; i < n_ev; i++)
            printf("%.2f %s %.2f\n", ev[i].start, ev[i].word, ev[i].score);
    }
    status = 0;
out:
    amuse_audio_release(&a);
    amuse_voice_detector_free(det);
    amuse_model_free(m);
    return status;
}
