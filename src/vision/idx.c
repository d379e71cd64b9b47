/* idx.c - read IDX files (the MNIST format), plain or gzip-compressed, and load an image/label
 * pair of them into a dataset.
 *
 * One parser (am__idx_parse) works on bytes in memory; the file reader and the fuzzer both call
 * it. gzip is inflated with zlib into a buffer that grows up to AMUSE_IDX_MAX_BYTES, so a small
 * "zip bomb" cannot take more memory than that. Concatenated gzip members are accepted, as gzip
 * itself does; anything else after the stream is an error.
 *
 * Only the unsigned-byte type (0x08) is read; the other IDX types are recognised and refused as
 * unsupported. Nothing here memory-maps or streams: the whole payload is held in memory.
 */
#include "vision/idx_internal.h"
#include "amuse/data.h"
#include "core/internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---------------------------------------------------------------- gzip */

static int is_gzip(const unsigned char *p, size_t len)
{
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

/* Inflate a whole gzip file (one or more members) into *out, at most AMUSE_IDX_MAX_BYTES. */
static int gunzip(const unsigned char *in, size_t len, const char *name, unsigned char **out,
                  size_t *out_len)
{
    z_stream z;
    unsigned char *buf = NULL;
    size_t cap = len < ((size_t)1 << 20) ? (size_t)1 << 16 : len * 2, used = 0;
    int rc = AMUSE_OK;

    *out = NULL;
    *out_len = 0;
    if (cap > AMUSE_IDX_MAX_BYTES)
        cap = AMUSE_IDX_MAX_BYTES;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return am__fail(AMUSE_ENOMEM, "%s: cannot start zlib", name);
    buf = malloc(cap);
    if (!buf) {
        rc = am__fail(AMUSE_ENOMEM, "%s: cannot allocate %zu bytes", name, cap);
        goto out;
    }
    size_t in_pos = 0;
    for (;;) {
        if (used == cap) {
            if (cap >= AMUSE_IDX_MAX_BYTES) {
                rc = am__fail(AMUSE_ETOOBIG, "%s: decompresses to more than %zu bytes", name,
                              (size_t)AMUSE_IDX_MAX_BYTES);
                goto out;
            }
            size_t grown = cap > AMUSE_IDX_MAX_BYTES / 2 ? AMUSE_IDX_MAX_BYTES : cap * 2;
            unsigned char *p = realloc(buf, grown);
            if (!p) {
                rc = am__fail(AMUSE_ENOMEM, "%s: cannot allocate %zu bytes", name, grown);
                goto out;
            }
            buf = p;
            cap = grown;
        }
        size_t in_chunk = len - in_pos > (1u << 30) ? (1u << 30) : len - in_pos;
        size_t out_chunk = cap - used > (1u << 30) ? (1u << 30) : cap - used;
        z.next_in = (Bytef *)(uintptr_t)(in + in_pos);
        z.avail_in = (uInt)in_chunk;
        z.next_out = buf + used;
        z.avail_out = (uInt)out_chunk;
        int zr = inflate(&z, Z_NO_FLUSH);
        in_pos += in_chunk - z.avail_in;
        used += out_chunk - z.avail_out;
        if (zr == Z_STREAM_END) {
            if (in_pos == len)
                break;
            if (!is_gzip(in + in_pos, len - in_pos)) {
                rc = am__fail(AMUSE_EFORMAT,
                              "%s: compressed byte %zu: %zu bytes of trailing data after the "
                              "gzip stream",
                              name, in_pos, len - in_pos);
                goto out;
            }
            if (inflateReset(&z) != Z_OK) {
                rc = am__fail(AMUSE_EFORMAT, "%s: compressed byte %zu: cannot restart zlib",
                              name, in_pos);
                goto out;
            }
            continue;
        }
        if (zr == Z_OK)
            continue;
        if (zr == Z_BUF_ERROR && z.avail_out == 0)
            continue; /* output full: grow and go on */
        if (zr == Z_BUF_ERROR && in_pos == len) {
            rc = am__fail(AMUSE_EFORMAT,
                          "%s: gzip stream is truncated: it ends at compressed byte %zu after "
                          "%zu decompressed bytes",
                          name, len, used);
            goto out;
        }
        if (zr == Z_MEM_ERROR) {
            rc = am__fail(AMUSE_ENOMEM, "%s: zlib ran out of memory", name);
            goto out;
        }
        rc = am__fail(AMUSE_EFORMAT, "%s: corrupt gzip data near compressed byte %zu: %s", name,
                      in_pos, z.msg ? z.msg : "inflate failed");
        goto out;
    }
    *out = buf;
    *out_len = used;
    buf = NULL;
out:
    inflateEnd(&z);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- IDX */

static uint32_t read_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

/* Parse uncompressed IDX bytes. `what` says whether offsets are in the file or the
 * decompressed stream. */
static int parse_raw(const unsigned char *p, size_t len, const char *name, const char *what,
                     struct amuse_idx *idx)
{
    if (len < 4)
        return am__fail(AMUSE_EFORMAT, "%s: %s byte %zu: truncated: %zu bytes is too short for "
                                       "the 4-byte IDX magic",
                        name, what, len, len);
    if (p[0] != 0 || p[1] != 0)
        return am__fail(AMUSE_EFORMAT,
                        "%s: %s byte 0: bad magic %02x %02x %02x %02x (an IDX file starts with "
                        "00 00 <type> <ndim>)",
                        name, what, p[0], p[1], p[2], p[3]);
    const char *type = idx_type_name(p[2]);
    if (!type)
        return am__fail(AMUSE_EFORMAT, "%s: %s byte 2: unknown IDX type 0x%02x", name, what,
                        p[2]);
    if (p[2] != 0x08)
        return am__fail(AMUSE_EUNSUPPORTED,
                        "%s: %s byte 2: IDX type 0x%02x (%s) is not supported, only 0x08 "
                        "(unsigned byte)",
                        name, what, p[2], type);
    int ndim = p[3];
    if (ndim == 0)
        return am__fail(AMUSE_EFORMAT, "%s: %s byte 3: IDX file has 0 dimensions", name, what);
    if (ndim > AMUSE_MAX_DIMS)
        return am__fail(AMUSE_ETOOBIG, "%s: %s byte 3: IDX file has %d dimensions (at most %d)",
                        name, what, ndim, AMUSE_MAX_DIMS);
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < header)
        return am__fail(AMUSE_EFORMAT,
                        "%s: %s byte %zu: truncated in the dimensions (%d dimensions need %zu "
                        "header bytes)",
                        name, what, len, ndim, header);
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = read_be32(p + 4 + 4 * i);
        idx->shape.dim[i] = d;
        count *= d; /* cannot overflow: checked against the cap at each step */
        if (count > AMUSE_IDX_MAX_BYTES) {
            memset(idx, 0, sizeof *idx);
            return am__fail(AMUSE_ETOOBIG,
                            "%s: %s byte %d: dimension %d makes the data larger than %zu bytes",
                            name, what, 4 + 4 * i, i, (size_t)AMUSE_IDX_MAX_BYTES);
        }
    }
    idx->shape.ndim = ndim;
    size_t data = len - header;
    if (data < count) {
        memset(idx, 0, sizeof *idx);
        return am__fail(AMUSE_EFORMAT,
                        "%s: %s byte %zu: truncated: the dimensions declare %" PRIu64
                        " data bytes from byte %zu, but only %zu are there",
                        name, what, len, count, header, data);
    }
    if (data > count) {
        memset(idx, 0, sizeof *idx);
        return am__fail(AMUSE_EFORMAT,
                        "%s: %s byte %" PRIu64 ": %" PRIu64 " trailing bytes after the data",
                        name, what, header + count, data - count);
    }
    idx->data = malloc(count ? count : 1);
    if (!idx->data) {
        memset(idx, 0, sizeof *idx);
        return am__fail(AMUSE_ENOMEM, "%s: cannot allocate %" PRIu64 " bytes", name, count);
    }
    if (count)
        memcpy(idx->data, p + header, count);
    return AMUSE_OK;
}

int am__idx_parse(const void *bytes, size_t len, const char *name, struct amuse_idx *idx)
{
    memset(idx, 0, sizeof *idx);
    if (!is_gzip(bytes, len))
        return parse_raw(bytes, len, name, "file", idx);
    unsigned char *raw;
    size_t raw_len;
    int rc = gunzip(bytes, len, name, &raw, &raw_len);
    if (rc != AMUSE_OK)
        return rc;
    rc = parse_raw(raw, raw_len, name, "decompressed", idx);
    free(raw);
    return rc;
}

int amuse_idx_read(const char *path, struct amuse_idx *idx)
{
    memset(idx, 0, sizeof *idx);
    char *bytes;
    size_t len;
    /* A plain file is at most the payload cap plus the largest header. */
    int rc = am__read_file(path, AMUSE_IDX_MAX_BYTES + 4 + 4 * AMUSE_MAX_DIMS, &bytes, &len);
    if (rc != AMUSE_OK)
        return rc;
    rc = am__idx_parse(bytes, len, path, idx);
    free(bytes);
    return rc;
}

void amuse_idx_release(struct amuse_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* ---------------------------------------------------------------- dataset */

int amuse_dataset_load_idx(struct amuse_dataset *d, const char *images_path,
                           const char *labels_path, int n_classes, int64_t limit)
{
    struct amuse_idx images = {0}, labels = {0};
    int rc;
    memset(d, 0, sizeof *d);
    if (n_classes < 1 || n_classes > 256)
        return am__fail(AMUSE_EINVAL, "n_classes is %d; byte labels allow 1 to 256", n_classes);
    if ((rc = amuse_idx_read(images_path, &images)) != AMUSE_OK)
        goto out;
    if ((rc = amuse_idx_read(labels_path, &labels)) != AMUSE_OK)
        goto out;
    if (images.shape.ndim != 3) {
        rc = am__fail(AMUSE_EFORMAT, "%s: images must have 3 dimensions (n, height, width), not %d",
                      images_path, images.shape.ndim);
        goto out;
    }
    if (labels.shape.ndim != 1) {
        rc = am__fail(AMUSE_EFORMAT, "%s: labels must have 1 dimension, not %d", labels_path,
                      labels.shape.ndim);
        goto out;
    }
    int64_t n = images.shape.dim[0];
    if (labels.shape.dim[0] != n) {
        rc = am__fail(AMUSE_ESHAPE, "%s has %" PRId64 " images but %s has %" PRId64 " labels",
                      images_path, n, labels_path, labels.shape.dim[0]);
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        if (labels.data[i] >= n_classes) {
            rc = am__fail(AMUSE_EFORMAT,
                          "%s: sample %" PRId64 " (data byte %" PRId64 "): label %d is not below "
                          "n_classes %d",
                          labels_path, i, i + 8, labels.data[i], n_classes);
            goto out;
        }
    }
    if (limit > 0 && limit < n)
        n = limit;
    int64_t h = images.shape.dim[1], w = images.shape.dim[2];
    size_t pixels = (size_t)(h * w); /* h * w * n <= AMUSE_IDX_MAX_BYTES: no overflow */
    int64_t dims[3] = {h, w, 1};
    struct amuse_shape sample, scalar = {0};
    amuse_shape_make(&sample, 3, dims);
    if ((rc = amuse_array_alloc(&d->input[0], NULL, AMUSE_FLOAT32, &sample, n)) ||
        (rc = amuse_array_alloc(&d->target, NULL, AMUSE_INT32, &scalar, n)))
        goto out;
    for (size_t i = 0; i < (size_t)n * pixels; i++)
        d->input[0].f32[i] = (float)images.data[i] / 255.0f;
    for (int64_t i = 0; i < n; i++)
        d->target.i32[i] = labels.data[i];
    d->n = n;
    d->n_inputs = 1;
    d->n_classes = n_classes;
out:
    if (rc != AMUSE_OK)
        amuse_dataset_release(d);
    amuse_idx_release(&labels);
    amuse_idx_release(&images);
    return rc;
}
