/* amuse/data.h - datasets in memory, the batches cut from them, and the readers that fill them.
 *
 * A dataset is n samples of k named input arrays (float32 values or int32 token ids, each with
 * its own per-sample shape) and one target array: int32 class ids, one per row of the model's
 * output (the output's shape without its last axis: () for a classifier, (T) for a sequence
 * model whose output is (T, V)), or float32 one-hot/soft targets of the output's full shape. An
 * optional weight per target row (0 = a masked step) joins any mask the model computes. Readers:
 * IDX files (the MNIST format, optionally gzip-compressed, read through zlib) and images
 * (PNG/JPEG/BMP/GIF through stb_image, in amuse/image.h). Text datasets come later; nothing here
 * tokenizes.
 */
#ifndef AMUSE_DATA_H
#define AMUSE_DATA_H

#include "amuse/version.h" /* AMUSE_API */

#include "amuse/error.h" /* status codes returned here */
#include "amuse/tensor.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_MAX_INPUTS 4 /* input arrays per dataset or batch (and InputLayers per model) */

enum amuse_dtype { AMUSE_FLOAT32 = 0, AMUSE_INT32 = 1 };

/* One array of n samples. Exactly one of f32 / i32 is set, as dtype says. */
struct amuse_array {
    char name[64];            /* the InputLayer it feeds; "" feeds inputs by position */
    enum amuse_dtype dtype;
    struct amuse_shape shape; /* one sample, e.g. (28, 28, 1) or (T) ids */
    float *f32;               /* n * size(shape) values */
    int32_t *i32;
};

/* A dataset owns its arrays: they are allocated by the library (amuse_array_alloc or a loader,
 * aligned memory) and freed by amuse_dataset_release; never malloc or free them yourself. A caller
 * that builds a dataset zeroes the struct, sets n, n_inputs and n_classes, and allocates each
 * array with amuse_array_alloc before filling it. */
struct amuse_dataset {
    int64_t n;                                /* number of samples */
    int n_inputs;                             /* 1 to AMUSE_MAX_INPUTS */
    struct amuse_array input[AMUSE_MAX_INPUTS];
    struct amuse_array target;                /* dtype 0 with no data: unlabelled */
    float *weight;                            /* n * rows(target) per-row weights, or NULL */
    int n_classes;                            /* for int32 targets: ids are in [0, n_classes) */
};

/* A batch is the same thing for `n` samples without owning anything: the arrays point into
 * memory the caller keeps alive for the call (fit gathers one from a dataset). */
struct amuse_batch {
    int64_t n;
    int n_inputs;
    struct amuse_array input[AMUSE_MAX_INPUTS];
    struct amuse_array target;
    const float *weight;
};

/* Bytes of one element and elements of one sample of an array. */
AMUSE_API size_t amuse_array_elem_size(const struct amuse_array *a);
AMUSE_API int64_t amuse_array_sample_size(const struct amuse_array *a);
/* Rows of the target per sample: size(target shape) for int32 ids, size / last axis for floats. */
AMUSE_API int64_t amuse_dataset_target_rows(const struct amuse_array *target);

/* Allocate array `a` (zeroed) for n samples of `shape`; name may be NULL. AMUSE_ENOMEM,
 * AMUSE_ETOOBIG (over 2^31 elements). a is overwritten (it must not hold data). */
AMUSE_API int amuse_array_alloc(struct amuse_array *a, const char *name, enum amuse_dtype dtype,
                                const struct amuse_shape *shape, int64_t n);

AMUSE_API void amuse_dataset_release(struct amuse_dataset *d);

/* Keep samples [begin, end) of src in dst (copies every array). dst may be src itself, which then
 * keeps only the slice; any other dst is overwritten, so it must not hold data still to be
 * released. AMUSE_EINVAL if the range is not within [0, src->n]. */
AMUSE_API int amuse_dataset_slice(struct amuse_dataset *dst, const struct amuse_dataset *src, int64_t begin,
                                  int64_t end);

/* ---- IDX ---------------------------------------------------------------------------------- */

#define AMUSE_IDX_MAX_BYTES ((size_t)1 << 31) /* decompressed payload cap: 2 GiB */

/* An IDX file: magic 0x00 0x00 <type> <ndim>, ndim big-endian uint32 dimensions, then data.
 * Only type 0x08 (unsigned byte) is needed by the datasets amuse reads; the others are
 * rejected with AMUSE_EUNSUPPORTED. */
struct amuse_idx {
    struct amuse_shape shape;
    uint8_t *data; /* product(shape) bytes, owned */
};

/* Read an IDX file, gzip-compressed or not (detected from the gzip magic 1f 8b; concatenated
 * gzip members are one stream). Errors name the file and the byte offset, saying whether it
 * counts in the file, the compressed or the decompressed stream: bad magic, unknown type, 0 or
 * more than AMUSE_MAX_DIMS dimensions, truncated data, trailing bytes, corrupt or truncated gzip
 * (AMUSE_EFORMAT); other known IDX types (AMUSE_EUNSUPPORTED); data over AMUSE_IDX_MAX_BYTES
 * (AMUSE_ETOOBIG). */
AMUSE_API int amuse_idx_read(const char *path, struct amuse_idx *idx);
AMUSE_API void amuse_idx_release(struct amuse_idx *idx);

/* Load an image IDX (n, h, w) and a label IDX (n) into a dataset with one float input of shape
 * (h, w, 1), pixels scaled to [0, 1] (pixel / 255), and int32 targets of shape (). Counts must agree (AMUSE_ESHAPE otherwise) and every label in
 * the file must be < n_classes (AMUSE_EFORMAT naming the sample; n_classes is 1 to 256, else
 * AMUSE_EINVAL). limit > 0 keeps only the first `limit` samples. */
AMUSE_API int amuse_dataset_load_idx(struct amuse_dataset *d, const char *images_path,
                                     const char *labels_path, int n_classes, int64_t limit);

#ifdef __cplusplus
}
#endif
#endif
