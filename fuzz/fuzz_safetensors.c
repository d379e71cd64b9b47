/* fuzz_safetensors.c - libFuzzer harness for the safetensors parser: parse any bytes, and when
 * they parse, look up every tensor and metadata key and convert what can be converted. */
#include "amuse/error.h"
#include "amuse/safetensors.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct amuse_safetensors st;
    if (amuse_safetensors_parse(&st, data, size, "fuzz") != AMUSE_OK)
        return 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const struct amuse_st_tensor *t = &st.tensors[i];
        if (amuse_safetensors_find(&st, t->name) == NULL)
            abort(); /* every parsed tensor must be found by its name */
        uint64_t count = (t->end - t->begin) / (uint64_t)t->dtype_size;
        if (count > ((uint64_t)1 << 24))
            continue;
        float *out = malloc((size_t)count * sizeof(float) + 1);
        if (out) {
            (void)amuse_safetensors_to_f32(t, out);
            free(out);
        }
    }
    for (int i = 0; i < st.n_metadata; i++)
        if (amuse_safetensors_metadata(&st, st.metadata_keys[i]) == NULL)
            abort();
    amuse_safetensors_release(&st);
    return 0;
}
