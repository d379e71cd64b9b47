/* fuzz_idx.c - libFuzzer harness for the IDX parser (plain and gzip), through the same
 * am__idx_parse that amuse_idx_read uses. */
#include "amuse/error.h"
#include "vision/idx_internal.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct amuse_idx idx;
    if (am__idx_parse(data, size, "fuzz", &idx) != AMUSE_OK)
        return 0;
    /* A parsed file's shape must account for exactly the bytes it holds. */
    int64_t n = amuse_shape_size(&idx.shape);
    if (n < 0 || idx.data == NULL)
        abort();
    if (n > 0) { /* both ends of the data are really there (ASan checks the reads) */
        volatile uint8_t first = idx.data[0], last = idx.data[n - 1];
        (void)first;
        (void)last;
    }
    amuse_idx_release(&idx);
    return 0;
}
