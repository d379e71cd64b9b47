/* fuzz_train_state.c - libFuzzer harness for the training-state file a resumed fit reads
 * (nn/train_state.c): the safetensors image plus every metadata field, the tensors checked against
 * a small fixed model (Dense 4 -> 3, Dropout, Dense 3 -> 2, Adam), the shuffle replay and the
 * history list. The first input byte picks the resuming run's options: bit 0 restore_best_weights,
 * bit 1 a ReduceLROnPlateau callback, bit 2 shuffling. The rest is written to a private directory
 * as training_state.safetensors. It does not train. */
#define _POSIX_C_SOURCE 200809L
#include "amuse/model.h"
#include "amuse/rng.h"
#include "core/internal.h"
#include "nn/model_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAMPLES    8
#define MAX_EPOCHS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *model_json =
    "{\"name\": \"fuzz\", \"model\": {\"class_name\": \"Sequential\", \"config\": {\"layers\": ["
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4]}},"
    "{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\": \"tanh\"}},"
    "{\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.5}},"
    "{\"class_name\": \"Dense\", \"config\": {\"units\": 2, \"activation\": \"softmax\"}}]}},"
    "\"compile\": {\"optimizer\": \"adam\", \"loss\": \"sparse_categorical_crossentropy\"}}";

static char dir[96], path[160];

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct amuse_model *m;
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/amuse-fuzz-train_state-%ld", (long)getpid());
        if (am__mkdir_p(dir) != AMUSE_OK)
            abort();
        atexit(remove_dir);
        snprintf(path, sizeof path, "%s/%s", dir, AMUSE_TRAINING_STATE_FILE);
        if (amuse_model_from_json(&m, model_json, strlen(model_json), "fuzz") != AMUSE_OK ||
            amuse_model_init_weights(m, 1) != AMUSE_OK)
            abort();
    }
    if (size < 1)
        return 0;
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int wrote = fwrite(data + 1, 1, size - 1, f) == size - 1;
    if (fclose(f) != 0 || !wrote)
        return 0;
    float *best = (data[0] & 1) ? calloc((size_t)amuse_model_param_count(m), sizeof(float)) : NULL;
    struct amuse_epoch_log *history = calloc(MAX_EPOCHS, sizeof *history);
    int64_t idx[SAMPLES];
    for (int i = 0; i < SAMPLES; i++)
        idx[i] = i;
    struct am__fit_state want, got;
    memset(&want, 0, sizeof want);
    want.train_samples = SAMPLES;
    want.seed = 1;
    want.monitor = "loss"; /* no validation data */
    want.plateau = (data[0] >> 1) & 1;
    want.best_weights = best;
    amuse_rng_seed(&want.shuffle, want.seed ^ 0x73687566666c65ULL);
    if (history && ((data[0] & 1) == 0 || best) &&
        am__train_state_load(m, dir, &want, MAX_EPOCHS, idx, (data[0] >> 2) & 1, &got, history) ==
            AMUSE_OK) {
        /* A state that loads must describe a run that can go on, and write back. */
        if (got.epoch < 1 || got.epoch >= MAX_EPOCHS)
            abort();
        (void)am__train_state_save(m, dir, &got, history);
    }
    free(history);
    free(best);
    unlink(path);
    return 0;
}
