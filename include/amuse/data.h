/* amuse/data.h - labelled datasets in memory, and the readers that fill them.
 *
 * A dataset is n samples of one float32 shape (channels-last for images), with an int32 class
 * label per sample. Readers: IDX files (the MNIST format, optionally gzip-compressed, read through
 * zlib) and images (PNG/JPEG/BMP/GIF through stb_image, in amuse/image.h).
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

/* x and labels are allocated by the library (aligned memory: amuse_dataset_init or a loader) and
 * freed by amuse_dataset_release; never malloc or free them yourself. A caller that builds a
 * dataset calls amuse_dataset_init, then fills x and labels. */
struct amuse_dataset {
    int64_t n;                      /* number of samples */
    struct amuse_shape sample;      /* shape of one sample, e.g. (28, 28, 1) */
    float *x;                       /* n * size(sample) floats, owned */
    int32_t *labels;                /* n labels in [0, n_classes), owned; NULL if unlabelled */
    int n_classes;
};

/* Allocate a zero-filled dataset of n samples (0 to AMUSE_DATASET_MAX_FLOATS floats in all) of
 * shape `sample`; with n_classes > 0 (at most 65536) also n labels, all 0. Release it with
 * amuse_dataset_release. AMUSE_EINVAL for a bad n, shape or n_classes, AMUSE_ETOOBIG past the
 * cap, AMUSE_ENOMEM; *d is zeroed on failure. */
#define AMUSE_DATASET_MAX_FLOATS ((int64_t)1 << 34)
AMUSE_API int amuse_dataset_init(struct amuse_dataset *d, int64_t n,
                                 const struct amuse_shape *sample, int n_classes);

AMUSE_API void amuse_dataset_release(struct amuse_dataset *d);

/* Keep samples [begin, end) of src in dst (copies). dst may be src itself, which then keeps only
 * the slice; any other dst is overwritten, so it must not hold data still to be released.
 * AMUSE_EINVAL if the range is not within [0, src->n]. */
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

/* Load an image IDX (n, h, w) and a label IDX (n) into a dataset of shape (h, w, 1), pixels
 * scaled to [0, 1] (pixel / 255). Counts must agree (AMUSE_ESHAPE otherwise) and every label in
 * the file must be < n_classes (AMUSE_EFORMAT naming the sample; n_classes is 1 to 256, else
 * AMUSE_EINVAL). limit > 0 keeps only the first `limit` samples. */
AMUSE_API int amuse_dataset_load_idx(struct amuse_dataset *d, const char *images_path,
                           const char *labels_path, int n_classes, int64_t limit);

#ifdef __cplusplus
}
#endif
#endif
