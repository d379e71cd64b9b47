/* amuse/tensor.h - dense float32 tensors with a shape.
 *
 * A tensor is row-major (C order) float32 data plus up to AMUSE_MAX_DIMS dimensions. Tensors either
 * own their data (amuse_tensor_init) or view memory owned elsewhere (amuse_tensor_view), for
 * example a slice of a model's parameter block. Nothing here does math: layers live in the engine
 * (src/nn, internal), reached through amuse/model.h.
 */
#ifndef AMUSE_TENSOR_H
#define AMUSE_TENSOR_H

#include "amuse/version.h" /* AMUSE_API */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_MAX_DIMS 8

struct amuse_shape {
    int ndim;
    int64_t dim[AMUSE_MAX_DIMS];
};

struct amuse_tensor {
    float *data;
    struct amuse_shape shape;
    int64_t size; /* product of the dimensions */
    int owns;     /* 1 if amuse_tensor_release frees data */
};

/* Build a shape from ndim dimensions. Returns AMUSE_EINVAL if ndim is out of range or a dimension
 * is negative. */
AMUSE_API int amuse_shape_make(struct amuse_shape *s, int ndim, const int64_t *dims);

/* Number of elements (1 for a 0-d shape). Returns -1 on overflow past INT64_MAX / 4. */
AMUSE_API int64_t amuse_shape_size(const struct amuse_shape *s);

/* 1 if equal. */
AMUSE_API int amuse_shape_equal(const struct amuse_shape *a, const struct amuse_shape *b);

/* Format as "(None, 26, 26, 32)" when with_batch is set, else "(26, 26, 32)". Returns buf. */
AMUSE_API char *amuse_shape_format(const struct amuse_shape *s, int with_batch, char *buf, size_t len);

/* Allocate a zero-filled tensor. Returns AMUSE_ENOMEM or AMUSE_EINVAL; t is left empty on error. */
AMUSE_API int amuse_tensor_init(struct amuse_tensor *t, const struct amuse_shape *s);

/* Point t at data owned by someone else. */
AMUSE_API void amuse_tensor_view(struct amuse_tensor *t, float *data, const struct amuse_shape *s);

/* Free owned data and reset t to empty. Accepts NULL and empty tensors. */
AMUSE_API void amuse_tensor_release(struct amuse_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
