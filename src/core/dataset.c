/* dataset.c - the lifetime of struct amuse_dataset and its arrays: allocate, release, slice.
 * The readers that fill a dataset live elsewhere (vision/idx.c); nothing here reads files. */
#include "amuse/data.h"
#include "core/internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

size_t amuse_array_elem_size(const struct amuse_array *a)
{
    return a->dtype == AMUSE_INT32 ? sizeof(int32_t) : sizeof(float);
}

int64_t amuse_array_sample_size(const struct amuse_array *a)
{
    return amuse_shape_size(&a->shape);
}

int64_t amuse_dataset_target_rows(const struct amuse_array *t)
{
    int64_t size = amuse_shape_size(&t->shape);
    if (t->dtype == AMUSE_INT32 || t->shape.ndim == 0)
        return size;
    int64_t last = t->shape.dim[t->shape.ndim - 1];
    return last > 0 ? size / last : 0;
}

static void *array_data(const struct amuse_array *a)
{
    return a->dtype == AMUSE_INT32 ? (void *)a->i32 : (void *)a->f32;
}

int amuse_array_alloc(struct amuse_array *a, const char *name, enum amuse_dtype dtype,
                      const struct amuse_shape *shape, int64_t n)
{
    memset(a, 0, sizeof *a);
    int64_t per = amuse_shape_size(shape);
    if (per < 0 || n < 0 || (per > 0 && n > ((int64_t)1 << 31) / per))
        return am__fail(AMUSE_ETOOBIG, "an array of %" PRId64 " samples is over 2^31 elements", n);
    snprintf(a->name, sizeof a->name, "%s", name ? name : "");
    a->dtype = dtype;
    a->shape = *shape;
    void *p = am__calloc_aligned((size_t)(n * per) + 1, dtype == AMUSE_INT32 ? 4 : sizeof(float));
    if (!p)
        return am__fail(AMUSE_ENOMEM, "cannot allocate %" PRId64 " samples", n);
    if (dtype == AMUSE_INT32)
        a->i32 = p;
    else
        a->f32 = p;
    return AMUSE_OK;
}

static void array_release(struct amuse_array *a)
{
    am__free(a->f32);
    am__free(a->i32);
    memset(a, 0, sizeof *a);
}

void amuse_dataset_release(struct amuse_dataset *d)
{
    if (!d)
        return;
    for (int k = 0; k < AMUSE_MAX_INPUTS; k++)
        array_release(&d->input[k]);
    array_release(&d->target);
    am__free(d->weight);
    memset(d, 0, sizeof *d);
}

/* Copy samples [begin, begin + n) of src into a new array dst. */
static int array_slice(struct amuse_array *dst, const struct amuse_array *src, int64_t begin,
                       int64_t n)
{
    if (!array_data(src)) {
        *dst = *src;
        return AMUSE_OK;
    }
    int rc = amuse_array_alloc(dst, src->name, src->dtype, &src->shape, n);
    if (rc)
        return rc;
    size_t per = (size_t)amuse_array_sample_size(src) * amuse_array_elem_size(src);
    if (n > 0 && per > 0)
        memcpy(array_data(dst), (const char *)array_data(src) + (size_t)begin * per,
               (size_t)n * per);
    return AMUSE_OK;
}

/* dst may be src itself (it then keeps only the slice); otherwise dst is overwritten and must not
 * hold data that still needs releasing. */
int amuse_dataset_slice(struct amuse_dataset *dst, const struct amuse_dataset *src, int64_t begin,
                        int64_t end)
{
    struct amuse_dataset tmp;
    memset(&tmp, 0, sizeof tmp);
    if (begin < 0 || end < begin || end > src->n)
        return am__fail(AMUSE_EINVAL, "slice [%" PRId64 ", %" PRId64 ") of a %" PRId64
                                      "-sample dataset",
                        begin, end, src->n);
    if (src->n_inputs < 0 || src->n_inputs > AMUSE_MAX_INPUTS)
        return am__fail(AMUSE_EINVAL, "dataset has %d inputs", src->n_inputs);
    int64_t n = end - begin;
    int rc = AMUSE_OK;
    for (int k = 0; k < src->n_inputs && rc == AMUSE_OK; k++)
        rc = array_slice(&tmp.input[k], &src->input[k], begin, n);
    if (rc == AMUSE_OK)
        rc = array_slice(&tmp.target, &src->target, begin, n);
    if (rc == AMUSE_OK && src->weight) {
        int64_t rows = amuse_dataset_target_rows(&src->target);
        tmp.weight = am__calloc_aligned((size_t)(n * rows) + 1, sizeof(float));
        if (!tmp.weight)
            rc = am__fail(AMUSE_ENOMEM, "cannot allocate a slice of %" PRId64 " samples", n);
        else if (n * rows > 0)
            memcpy(tmp.weight, src->weight + begin * rows, (size_t)(n * rows) * sizeof(float));
    }
    if (rc) {
        amuse_dataset_release(&tmp);
        return rc;
    }
    tmp.n = n;
    tmp.n_inputs = src->n_inputs;
    tmp.n_classes = src->n_classes;
    if (dst == src)
        amuse_dataset_release(dst);
    *dst = tmp;
    return AMUSE_OK;
}
