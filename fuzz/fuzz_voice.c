/* fuzz_voice.c - libFuzzer harness for voice manifests as amuse_voice_load_dataset reads them
 * (amuse train and amuse eval on a voice model): the input is written to a manifest.csv in a
 * private temporary directory and loaded with two labels and the train,validation split list.
 * The directory holds tone.wav, a link to the committed tone fixture, so rows naming it decode
 * and the success path is covered too. It does not fuzz the WAV decoder (fuzz_audio does). */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, symlink */

#include "amuse/voice.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], path[96];

static void remove_dir(void)
{
    char link[96];
    snprintf(link, sizeof link, "%s/tone.wav", dir);
    unlink(link);
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/amuse-fuzz-voice.XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(path, sizeof path, "%s/tone.wav", dir);
        if (symlink(AMUSE_SOURCE_DIR "/tests/fixtures/audio/tone16k.wav", path) != 0)
            abort();
        snprintf(path, sizeof path, "%s/manifest.csv", dir);
        atexit(remove_dir);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    static const char *const labels[] = {"beep", "_silence_"};
    struct amuse_voice_data_options o = {0};
    amuse_audio_features_defaults(&o.features);
    o.labels = labels;
    o.n_labels = 2;
    o.split = "train,validation";
    o.limit = 4; /* decoding is fuzz_audio's job: a few clips cover the loader */
    struct amuse_dataset d;
    if (amuse_voice_load_dataset(&d, path, &o) == AMUSE_OK) {
        if (d.n < 1 || d.n > 4 || d.input[0].shape.dim[0] != 98)
            abort();
        amuse_dataset_release(&d);
    }
    unlink(path);
    return 0;
}
