/* st_write_sample.c - writes a small safetensors file with amuse's writer, for the independent
 * Python reader (tests/tools/safetensors_check.py) to check. Not a test by itself: the ctest
 * test safetensors_independent_reader runs this and then the reader with the expected values. */
#include "amuse/error.h"
#include "amuse/safetensors.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: st_write_sample FILE\n");
        return 2;
    }
    /* 0.1 is not exact in binary; 1e-45 is the smallest subnormal; -0 keeps its sign. */
    static const float kernel[6] = {1.5f, -2.25f, 0.1f, 3.4028234663852886e38f, 1e-45f, -0.0f};
    static const float bias[3] = {0.5f, -1.0f, 1024.0f};
    struct amuse_st_entry e[3] = {
        {"dense/kernel", {2, {2, 3}}, kernel},
        {"dense/bias", {1, {3}}, bias},
        {"empty", {1, {0}}, NULL},
    };
    const char *keys[] = {"format", "note"};
    const char *values[] = {"pt", "written by amuse \"st_write_sample\""};
    int rc = amuse_safetensors_write(argv[1], e, 3, keys, values, 2);
    if (rc != AMUSE_OK) {
        fprintf(stderr, "st_write_sample: %s (%s)\n", amuse_strerror(rc), amuse_last_error());
        return 1;
    }
    return 0;
}
