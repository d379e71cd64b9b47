/* fuzz_file.h - for harnesses whose parser reads a path: the input, less its first byte (which
 * each harness uses to choose options), written to a private temporary file named after the
 * harness and the process. Header-only, included by one harness per program. */
#ifndef AMUSE_FUZZ_FILE_H
#define AMUSE_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

/* The file's path, or NULL when it could not be written (the harness then skips the input). */
static const char *fuzz_input_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[96];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/amuse-fuzz-%s-%ld", name, (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) {
        fclose(f);
        return NULL;
    }
    return fclose(f) == 0 ? path : NULL;
}

#endif
