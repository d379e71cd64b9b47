/* amuse/safetensors.h - read and write the safetensors format exactly as specified.
 *
 * Layout: 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the data buffer; offsets are relative to the start of the buffer. A valid file's tensors
 * cover the buffer exactly: no holes, no overlap, end of last == buffer size, and each tensor's
 * byte length equals product(shape) * sizeof(dtype).
 *
 * The reader validates all of that and reports the offending tensor, field or byte offset. It
 * knows every dtype in the spec (BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 F64 I64
 * U64); an unknown dtype is AMUSE_EUNSUPPORTED. The writer writes F32 tensors.
 */
#ifndef AMUSE_SAFETENSORS_H
#define AMUSE_SAFETENSORS_H

#include "amuse/version.h" /* AMUSE_API */

#include "amuse/error.h" /* status codes returned here */
#include "amuse/tensor.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_SAFETENSORS_MAX_HEADER (100u << 20) /* 100 MB, as the reference implementation */

struct amuse_st_tensor {
    char *name;
    char dtype[8];       /* "F32", "F16", ... */
    int dtype_size;      /* bytes per element */
    struct amuse_shape shape;
    uint64_t begin, end; /* data_offsets, relative to the data buffer */
    const void *data;    /* points into the file image held by struct amuse_safetensors */
};

struct amuse_safetensors {
    char *bytes; /* whole file, owned */
    size_t len;
    int n_tensors;
    struct amuse_st_tensor *tensors; /* in file order of their data offsets */
    int n_metadata;
    char **metadata_keys, **metadata_values;
};

/* Parse and validate a file image. `source` names it in error messages. On success st owns a copy
 * of the bytes. On failure st is left empty and amuse_last_error() names the problem. */
AMUSE_API int amuse_safetensors_parse(struct amuse_safetensors *st, const void *bytes, size_t len,
                            const char *source);

/* Read and parse a file (at most max_bytes; 0 means 4 GiB). */
AMUSE_API int amuse_safetensors_load(struct amuse_safetensors *st, const char *path, size_t max_bytes);

/* Look up a tensor or a metadata value by name; NULL if absent. */
AMUSE_API const struct amuse_st_tensor *amuse_safetensors_find(const struct amuse_safetensors *st,
                                                     const char *name);
AMUSE_API const char *amuse_safetensors_metadata(const struct amuse_safetensors *st, const char *key);

/* Copy a tensor into float32 (F32 as is; F16, BF16 and F64 converted). `out` holds
 * product(shape) floats. Other dtypes: AMUSE_EUNSUPPORTED. */
AMUSE_API int amuse_safetensors_to_f32(const struct amuse_st_tensor *t, float *out);

AMUSE_API void amuse_safetensors_release(struct amuse_safetensors *st);

/* One F32 tensor to write. */
struct amuse_st_entry {
    const char *name;
    struct amuse_shape shape;
    const float *data;
};

/* Write tensors (in the given order) and metadata pairs atomically: temp file, fsync, rename.
 * Names must be unique and not "__metadata__". */
AMUSE_API int amuse_safetensors_write(const char *path, const struct amuse_st_entry *entries, int n,
                            const char *const *metadata_keys, const char *const *metadata_values,
                            int n_metadata);

#ifdef __cplusplus
}
#endif
#endif
