/* fuzz_model_config.c - libFuzzer harness for model configs: JSON parsing, graph construction,
 * every layer's configure/build, compile and fit settings, through amuse_model_from_json. A
 * config that builds must also survive a one-sample forward pass when it is small. */
#include "amuse/model.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct amuse_model *m;
    if (amuse_model_from_json(&m, (const char *)data, size, "fuzz") != AMUSE_OK)
        return 0;
    struct amuse_fit_options opt;
    (void)amuse_model_fit_options(m, &opt);
    int64_t in = amuse_shape_size(amuse_model_input_shape(m));
    if (amuse_model_input_count(m) == 1 && in > 0 && in <= 4096 &&
        amuse_model_param_count(m) <= (1 << 20)) {
        float *x = calloc((size_t)in, sizeof(float));
        const float *out;
        if (x && amuse_model_init_weights(m, 1) == AMUSE_OK)
            (void)amuse_model_forward(m, x, 1, 0, &out);
        free(x);
    }
    amuse_model_free(m);
    return 0;
}
