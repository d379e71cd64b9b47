/* fuzz_image.c - libFuzzer harness for image decoding. The first byte picks the options (output
 * size, grey or RGB, inversion) so resizing both ways is exercised; the rest is the image. */
#include "amuse/image.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const int sides[4] = {1, 7, 28, 64};
    struct amuse_image_options opt = {
        .height = sides[data[0] & 3],
        .width = sides[(data[0] >> 2) & 3],
        .channels = (data[0] & 16) ? 3 : 1,
        .invert = (data[0] & 32) != 0,
    };
    float *out = malloc((size_t)opt.height * (size_t)opt.width * (size_t)opt.channels *
                        sizeof(float));
    if (!out)
        return 0;
    if (amuse_image_decode(data + 1, size - 1, "fuzz", &opt, out) == 0) {
        for (int i = 0; i < opt.height * opt.width * opt.channels; i++)
            if (!(out[i] >= 0.0f && out[i] <= 1.0f))
                abort(); /* outputs are always in [0, 1] */
    }
    free(out);
    return 0;
}
