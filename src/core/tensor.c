/* tensor.c - shapes and owned/viewed float32 buffers. No math lives here. */
#include "amuse/tensor.h"
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

int amuse_shape_make(struct amuse_shape *s, int ndim, const int64_t *dims)
{
    memset(s, 0, sizeof *s);
    if (ndim < 0 || ndim > AMUSE_MAX_DIMS)
        return am__fail(AMUSE_EINVAL, "shape has %d dimensions (at most %d)", ndim, AMUSE_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return am__fail(AMUSE_EINVAL, "shape dimension %d is negative (%lld)", i,
                            (long long)dims[i]);
        s->dim[i] = dims[i];
    }
    s->ndim = ndim;
    return AMUSE_OK;
}

int64_t amuse_shape_size(const struct amuse_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] != 0 && n > (INT64_MAX / 4) / s->dim[i])
            return -1;
        n *= s->dim[i];
    }
    return n;
}

int amuse_shape_equal(const struct amuse_shape *a, const struct amuse_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i])
            return 0;
    return 1;
}

char *amuse_shape_format(const struct amuse_shape *s, int with_batch, char *buf, size_t len)
{
    size_t at = 0;
    int first = 1;
    if (len == 0)
        return buf;
    buf[0] = '\0';
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w = snprintf(buf + at, len - at, __VA_ARGS__);                                         \
        if (w < 0 || (size_t)w >= len - at)                                                        \
            return buf;                                                                            \
        at += (size_t)w;                                                                           \
    } while (0)
    PUT("(");
    if (with_batch) {
        PUT("None");
        first = 0;
    }
    for (int i = 0; i < s->ndim; i++) {
        PUT("%s%lld", first ? "" : ", ", (long long)s->dim[i]);
        first = 0;
    }
    if (s->ndim == 1 && !with_batch)
        PUT(",");
    PUT(")");
#undef PUT
    return buf;
}

int amuse_tensor_init(struct amuse_tensor *t, const struct amuse_shape *s)
{
    memset(t, 0, sizeof *t);
    int64_t n = amuse_shape_size(s);
    if (n < 0)
        return am__fail(AMUSE_ETOOBIG, "tensor shape overflows");
    t->data = am__calloc_aligned(n ? (size_t)n : 1, sizeof(float));
    if (!t->data)
        return am__fail(AMUSE_ENOMEM, "cannot allocate a tensor of %lld floats", (long long)n);
    t->shape = *s;
    t->size = n;
    t->owns = 1;
    return AMUSE_OK;
}

void amuse_tensor_view(struct amuse_tensor *t, float *data, const struct amuse_shape *s)
{
    t->data = data;
    t->shape = *s;
    t->size = amuse_shape_size(s);
    t->owns = 0;
}

void amuse_tensor_release(struct amuse_tensor *t)
{
    if (!t)
        return;
    if (t->owns)
        am__free(t->data);
    memset(t, 0, sizeof *t);
}
