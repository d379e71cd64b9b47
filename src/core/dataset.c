/* dataset.c - the lifetime of struct amuse_dataset: release and slice.
 * The readers that fill a dataset live elsewhere (vision/idx.c); nothing here reads files. */
#include "amuse/data.h"
#include "core/internal.h"

#include <inttypes.h>
#include <string.h>

void amuse_dataset_release(struct amuse_dataset *d)
{
    if (!d)
        return;
    am__free(d->x);
    am__free(d->labels);
    memset(d, 0, sizeof *d);
}

int amuse_dataset_init(struct amuse_dataset *d, int64_t n, const struct amuse_shape *sample,
                       int n_classes)
{
    memset(d, 0, sizeof *d);
    int64_t per = sample ? amuse_shape_size(sample) : -1;
    if (n < 0 || per < 1 || n_classes < 0 || n_classes > 65536)
        return am__fail(AMUSE_EINVAL,
                        "dataset of %" PRId64 " samples of %" PRId64 " values, %d classes", n,
                        per, n_classes);
    if (n > 0 && per > AMUSE_DATASET_MAX_FLOATS / n)
        return am__fail(AMUSE_ETOOBIG, "dataset of %" PRId64 " x %" PRId64
                                       " floats is over the cap of %" PRId64,
                        n, per, (int64_t)AMUSE_DATASET_MAX_FLOATS);
    size_t count = n > 0 ? (size_t)(n * per) : 1;
    d->x = am__calloc_aligned(count, sizeof(float));
    if (n_classes > 0)
        d->labels = am__calloc_aligned(n > 0 ? (size_t)n : 1, sizeof(int32_t));
    if (!d->x || (n_classes > 0 && !d->labels)) {
        amuse_dataset_release(d);
        return am__fail(AMUSE_ENOMEM, "dataset of %" PRId64 " samples: out of memory", n);
    }
    d->n = n;
    d->sample = *sample;
    d->n_classes = n_classes;
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
    int64_t per = amuse_shape_size(&src->sample);
    if (per < 0)
        return am__fail(AMUSE_ETOOBIG, "dataset sample shape overflows");
    int64_t n = end - begin;
    tmp.x = am__calloc_aligned((size_t)(n * per), sizeof(float));
    if (src->labels)
        tmp.labels = am__calloc_aligned((size_t)n, sizeof(int32_t));
    if (!tmp.x || (src->labels && !tmp.labels)) {
        amuse_dataset_release(&tmp);
        return am__fail(AMUSE_ENOMEM, "cannot allocate a slice of %" PRId64 " samples", n);
    }
    if (n * per > 0)
        memcpy(tmp.x, src->x + begin * per, (size_t)(n * per) * sizeof(float));
    if (src->labels && n > 0)
        memcpy(tmp.labels, src->labels + begin, (size_t)n * sizeof(int32_t));
    tmp.n = n;
    tmp.sample = src->sample;
    tmp.n_classes = src->n_classes;
    if (dst == src)
        amuse_dataset_release(dst);
    *dst = tmp;
    return AMUSE_OK;
}
