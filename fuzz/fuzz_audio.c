/* fuzz_audio.c - libFuzzer harness for the audio reader and the feature front end. The first
 * byte picks the options (raw PCM or a container, its rate and channels, the target rate, a
 * short duration cap so a run stays fast); the rest is the input. Whatever decodes must be
 * finite samples in [-1, 1], and its features must be finite. */
#include "amuse/audio.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int rates[4] = {8000, 16000, 22050, 48000};
    struct amuse_audio_options o = {
        .target_rate = (data[0] & 64) ? 8000 : 16000,
        .max_seconds = 4,
        .raw_rate = (data[0] & 1) ? rates[(data[0] >> 1) & 3] : 0,
        .raw_channels = 1 + ((data[0] >> 3) & 3),
    };
    struct amuse_audio a;
    if (amuse_audio_decode(data + 1, size - 1, "fuzz", &o, &a) != AMUSE_OK) {
        if (a.samples != NULL || a.count != 0)
            abort(); /* failures leave *out zeroed */
        return 0;
    }
    if (a.count == 0 || a.rate != o.target_rate || a.count > (size_t)(4.1 * a.rate) + 4096)
        abort();
    for (size_t i = 0; i < a.count; i++)
        if (!(a.samples[i] >= -1.0f && a.samples[i] <= 1.0f))
            abort();
    struct amuse_audio_features_options fo;
    amuse_audio_features_defaults(&fo);
    fo.sample_rate = a.rate;
    struct amuse_audio_frontend *fe = NULL;
    if (amuse_audio_frontend_new(&fo, &fe) == AMUSE_OK) {
        size_t n = amuse_audio_frontend_frames(fe, a.count) *
                   (size_t)amuse_audio_frontend_coefficients(fe);
        float *f = malloc(n ? n * sizeof *f : 1);
        if (f && amuse_audio_frontend_compute(fe, a.samples, a.count, f, n, NULL) == AMUSE_OK)
            for (size_t i = 0; i < n; i++)
                if (!isfinite(f[i]))
                    abort();
        free(f);
        amuse_audio_frontend_free(fe);
    }
    amuse_audio_release(&a);
    return 0;
}
