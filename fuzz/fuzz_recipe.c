/* fuzz_recipe.c - libFuzzer harness for training recipes as `amuse train` and `amuse predict`
 * read them: the model config (amuse_model_from_json, as fuzz_model_config), then the sections
 * only recipes carry - fit settings, the data paths of the "data" section, the "input" options
 * and the labels - through the same accessors the CLI uses. Nothing is trained or read from disk
 * (paths are only looked up). */
#include "amuse/model.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct amuse_model *m;
    if (amuse_model_from_json(&m, (const char *)data, size, "recipe") != AMUSE_OK)
        return 0;
    struct amuse_fit_options opt;
    (void)amuse_model_fit_options(m, &opt);
    static const char *const keys[] = {"format", "train_images", "train_labels", "test_images",
                                       "test_labels", "path", "vectors"};
    size_t total = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = amuse_model_config_string(m, "data", keys[i]);
        total += v ? strlen(v) : 0;
    }
    total += (size_t)amuse_model_config_bool(m, "input", "invert", 0);
    const char *color = amuse_model_config_string(m, "input", "color");
    total += color ? strlen(color) : 0;
    int64_t classes = amuse_shape_size(amuse_model_output_shape(m));
    for (int64_t k = 0; k < classes && k < 100000; k++) {
        const char *label = amuse_model_label(m, (int)k);
        total += label ? strlen(label) : 0;
    }
    (void)amuse_model_name(m);
    amuse_model_free(m);
    return total == (size_t)-1; /* keep the reads */
}
