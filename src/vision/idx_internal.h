/* vision/idx_internal.h - the in-memory IDX parser, shared by amuse_idx_read and the fuzzer. */
#ifndef AMUSE_VISION_IDX_INTERNAL_H
#define AMUSE_VISION_IDX_INTERNAL_H

#include "amuse/data.h"

#include <stddef.h>

/* Parse an IDX image held in memory, gzip-compressed or not (gzip is detected from the magic
 * 1f 8b). `name` starts every error message. On failure idx is left empty. This is the only IDX
 * parser: amuse_idx_read reads the file and calls it. */
int am__idx_parse(const void *bytes, size_t len, const char *name, struct amuse_idx *idx);

#endif
