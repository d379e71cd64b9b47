/* safetensors.c - parse, validate and write the safetensors format (amuse/safetensors.h).
 *
 * The parser checks everything the specification requires: the header length against the file
 * and AMUSE_SAFETENSORS_MAX_HEADER, the header is UTF-8 JSON that starts with '{', every entry's
 * dtype/shape/data_offsets, byte lengths against shapes, and that the tensors tile the data
 * buffer exactly (no overlap, no hole, nothing after the last tensor). Messages name the tensor,
 * the field and the byte offset.
 *
 * It does not memory-map files (the whole file is read) and it converts only float dtypes
 * (F32, F16, BF16, F64) to float32. The writer writes F32 tensors only, with the header padded
 * with spaces to a multiple of 8 bytes as the reference implementation does.
 */
#define _POSIX_C_SOURCE 200809L
#include "amuse/safetensors.h"
#include "core/internal.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METADATA_KEY "__metadata__"
#define DEFAULT_MAX_FILE ((size_t)4 << 30)

/* ---------------------------------------------------------------- dtypes */

static const struct {
    const char *name;
    int size;
} dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

static int dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return dtypes[i].size;
    return 0;
}

/* ---------------------------------------------------------------- small helpers */

static uint64_t read_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Offset of the first byte that is not valid UTF-8, or len if all of it is (text/utf8.c's
 * validator, the library's one). */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t bad;
    return am__utf8_valid((const char *)s, len, &bad) ? len : bad;
}

/* A JSON number that is a non-negative integer exactly representable in a double. */
static int json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != floor(d))
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns the first name that occurs twice among n names, or NULL. Sorts a copy of the pointers. */
static const char *first_duplicate(const char *const *names, size_t n, int *oom)
{
    *oom = 0;
    if (n < 2)
        return NULL;
    const char **sorted = malloc(n * sizeof *sorted);
    if (!sorted) {
        *oom = 1;
        return NULL;
    }
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_strings);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            dup = sorted[i];
    free(sorted);
    return dup;
}

/* ---------------------------------------------------------------- reader */

struct order {
    uint64_t begin, end;
    size_t index; /* position in the header, to keep the sort stable */
};

static int compare_order(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Fill one tensor from its header entry. Messages do not name the file; the caller adds it. */
static int parse_entry(struct amuse_st_tensor *t, const cJSON *entry, uint64_t buffer_size)
{
    const char *name = t->name;
    if (!cJSON_IsObject(entry))
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': entry is not a JSON object", name);

    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!dtype)
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': missing field 'dtype'", name);
    if (!cJSON_IsString(dtype))
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': field 'dtype' is not a string", name);
    if (!shape)
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': missing field 'shape'", name);
    if (!cJSON_IsArray(shape))
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': field 'shape' is not an array", name);
    if (!offsets)
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': missing field 'data_offsets'", name);
    if (!cJSON_IsArray(offsets))
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': field 'data_offsets' is not an array",
                        name);

    int size = dtype_size(dtype->valuestring);
    if (size == 0)
        return am__fail(AMUSE_EUNSUPPORTED, "tensor '%.200s': unknown dtype '%.32s'", name,
                        dtype->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype->valuestring);
    t->dtype_size = size;

    int ndim = cJSON_GetArraySize(shape);
    if (ndim > AMUSE_MAX_DIMS)
        return am__fail(AMUSE_ETOOBIG, "tensor '%.200s': shape has %d dimensions (at most %d)",
                        name, ndim, AMUSE_MAX_DIMS);
    uint64_t count = 1;
    int overflow = 0, d = 0;
    const cJSON *dim;
    t->shape.ndim = ndim;
    cJSON_ArrayForEach(dim, shape)
    {
        uint64_t v;
        if (!json_uint(dim, &v))
            return am__fail(AMUSE_EFORMAT,
                            "tensor '%.200s': shape[%d] is not a non-negative integer", name, d);
        t->shape.dim[d++] = (int64_t)v;
        if (v != 0 && count > UINT64_MAX / v)
            overflow = 1;
        else
            count *= v;
    }
    if (count == 0)
        overflow = 0; /* a zero dimension makes the product 0 whatever came before */
    if (!overflow && count > UINT64_MAX / (uint64_t)size)
        overflow = 1;

    uint64_t begin, end;
    if (cJSON_GetArraySize(offsets) != 2)
        return am__fail(AMUSE_EFORMAT, "tensor '%.200s': data_offsets has %d values, not 2", name,
                        cJSON_GetArraySize(offsets));
    if (!json_uint(offsets->child, &begin) || !json_uint(offsets->child->next, &end))
        return am__fail(AMUSE_EFORMAT,
                        "tensor '%.200s': data_offsets are not non-negative integers", name);
    if (end < begin)
        return am__fail(AMUSE_EFORMAT,
                        "tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64 ") end before begin",
                        name, begin, end);
    if (end > buffer_size)
        return am__fail(AMUSE_EFORMAT,
                        "tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                        ") run past the end of the %" PRIu64 "-byte data buffer",
                        name, begin, end, buffer_size);
    if (overflow || count * (uint64_t)size != end - begin)
        return am__fail(AMUSE_EFORMAT,
                        "tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64 ") hold %" PRIu64
                        " bytes but shape and dtype %s need %s%" PRIu64,
                        name, begin, end, end - begin, t->dtype, overflow ? "more than " : "",
                        overflow ? UINT64_MAX : count * (uint64_t)size);
    t->begin = begin;
    t->end = end;
    return AMUSE_OK;
}

static int parse_metadata(struct amuse_safetensors *st, const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return am__fail(AMUSE_EFORMAT, "'" METADATA_KEY "' is not a JSON object");
    int n = cJSON_GetArraySize(meta);
    st->metadata_keys = calloc((size_t)n + 1, sizeof(char *));
    st->metadata_values = calloc((size_t)n + 1, sizeof(char *));
    if (!st->metadata_keys || !st->metadata_values)
        return am__fail(AMUSE_ENOMEM, "out of memory for %d metadata entries", n);
    const cJSON *item;
    cJSON_ArrayForEach(item, meta)
    {
        if (!cJSON_IsString(item))
            return am__fail(AMUSE_EFORMAT, "metadata '%.200s': value is not a string",
                            item->string);
        int i = st->n_metadata;
        st->metadata_keys[i] = strdup(item->string);
        st->metadata_values[i] = strdup(item->valuestring);
        if (!st->metadata_keys[i] || !st->metadata_values[i]) {
            free(st->metadata_keys[i]);
            free(st->metadata_values[i]);
            st->metadata_keys[i] = st->metadata_values[i] = NULL;
            return am__fail(AMUSE_ENOMEM, "out of memory for metadata");
        }
        st->n_metadata++;
    }
    int oom;
    const char *dup = first_duplicate((const char *const *)st->metadata_keys,
                                      (size_t)st->n_metadata, &oom);
    if (oom)
        return am__fail(AMUSE_ENOMEM, "out of memory checking metadata keys");
    if (dup)
        return am__fail(AMUSE_EFORMAT, "metadata key '%.200s' appears twice", dup);
    return AMUSE_OK;
}

/* Parse a file image whose buffer st takes over (it is freed on failure too). Messages do not
 * name the source; the public functions put it in front. */
static int parse_owned(struct amuse_safetensors *st, char *bytes, size_t len)
{
    int rc = AMUSE_OK;
    char *header = NULL;
    cJSON *root = NULL;
    struct order *order = NULL;
    struct amuse_st_tensor *tensors = NULL;
    const char **names = NULL;
    size_t n_tensors = 0;

    memset(st, 0, sizeof *st);
    st->bytes = bytes;
    st->len = len;

    if (len < 8) {
        rc = am__fail(AMUSE_EFORMAT, "file is %zu bytes, shorter than the 8-byte header length",
                      len);
        goto fail;
    }
    uint64_t header_len = read_le64((const unsigned char *)bytes);
    if (header_len > AMUSE_SAFETENSORS_MAX_HEADER) {
        rc = am__fail(AMUSE_ETOOBIG,
                      "byte 0: header length %" PRIu64 " is over the limit of %u bytes",
                      header_len, (unsigned)AMUSE_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    if (header_len > len - 8) {
        rc = am__fail(AMUSE_EFORMAT,
                      "byte 0: header length %" PRIu64 " runs past the end of the %zu-byte file",
                      header_len, len);
        goto fail;
    }
    if (header_len == 0 || bytes[8] != '{') {
        rc = am__fail(AMUSE_EFORMAT, "byte 8: header does not start with '{'");
        goto fail;
    }
    size_t hlen = (size_t)header_len;
    size_t bad = utf8_invalid_at((const unsigned char *)bytes + 8, hlen);
    if (bad < hlen) {
        rc = am__fail(AMUSE_EFORMAT, "byte %zu: header is not valid UTF-8", 8 + bad);
        goto fail;
    }
    const char *nul = memchr(bytes + 8, '\0', hlen);
    if (nul) {
        rc = am__fail(AMUSE_EFORMAT, "byte %zu: header is not valid JSON (NUL byte)",
                      (size_t)(nul - bytes));
        goto fail;
    }
    header = malloc(hlen + 1);
    if (!header) {
        rc = am__fail(AMUSE_ENOMEM, "cannot allocate the %zu-byte header", hlen);
        goto fail;
    }
    memcpy(header, bytes + 8, hlen);
    header[hlen] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithOpts(header, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - header) : 0;
        rc = am__fail(AMUSE_EFORMAT, "header is not valid JSON (parser stopped at byte %zu)",
                      8 + at);
        goto fail;
    }
    for (const char *p = end; *p; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = am__fail(AMUSE_EFORMAT, "byte %zu: unexpected data after the header's JSON",
                          8 + (size_t)(p - header));
            goto fail;
        }
    }
    if (!cJSON_IsObject(root)) {
        rc = am__fail(AMUSE_EFORMAT, "byte 8: header is not a JSON object");
        goto fail;
    }

    uint64_t buffer_size = (uint64_t)(len - 8 - hlen);
    size_t n_items = (size_t)cJSON_GetArraySize(root);
    tensors = calloc(n_items + 1, sizeof *tensors);
    order = calloc(n_items + 1, sizeof *order);
    names = calloc(n_items + 1, sizeof *names);
    if (!tensors || !order || !names) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory for %zu header entries", n_items);
        goto fail;
    }
    const cJSON *meta = NULL;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        if (strcmp(item->string, METADATA_KEY) == 0) {
            if (meta) {
                rc = am__fail(AMUSE_EFORMAT, "'" METADATA_KEY "' appears twice");
                goto fail;
            }
            meta = item;
            continue;
        }
        struct amuse_st_tensor *t = &tensors[n_tensors];
        t->name = strdup(item->string);
        if (!t->name) {
            rc = am__fail(AMUSE_ENOMEM, "out of memory for tensor names");
            goto fail;
        }
        names[n_tensors] = t->name;
        n_tensors++;
        rc = parse_entry(t, item, buffer_size);
        if (rc != AMUSE_OK)
            goto fail;
        order[n_tensors - 1] = (struct order){t->begin, t->end, n_tensors - 1};
    }
    int oom;
    const char *dup = first_duplicate(names, n_tensors, &oom);
    if (oom || dup) {
        rc = oom ? am__fail(AMUSE_ENOMEM, "out of memory checking tensor names")
                 : am__fail(AMUSE_EFORMAT, "tensor '%.200s' appears twice", dup);
        goto fail;
    }

    /* The tensors, sorted by offset, must tile [0, buffer_size) exactly. */
    qsort(order, n_tensors, sizeof *order, compare_order);
    uint64_t covered = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const struct amuse_st_tensor *t = &tensors[order[i].index];
        if (t->begin < covered) {
            const struct amuse_st_tensor *prev = &tensors[order[i - 1].index];
            rc = am__fail(AMUSE_EFORMAT,
                          "tensor '%.200s': data_offsets [%" PRIu64 ", %" PRIu64
                          ") overlap tensor '%.200s' [%" PRIu64 ", %" PRIu64 ")",
                          t->name, t->begin, t->end, prev->name, prev->begin, prev->end);
            goto fail;
        }
        if (t->begin > covered) {
            rc = am__fail(AMUSE_EFORMAT,
                          "data buffer bytes [%" PRIu64 ", %" PRIu64
                          ") (file bytes [%" PRIu64 ", %" PRIu64
                          ")) belong to no tensor (hole before tensor '%.200s')",
                          covered, t->begin, covered + 8 + hlen, t->begin + 8 + hlen, t->name);
            goto fail;
        }
        covered = t->end;
    }
    if (covered != buffer_size) {
        rc = am__fail(AMUSE_EFORMAT,
                      "data buffer bytes [%" PRIu64 ", %" PRIu64 ") (file bytes [%" PRIu64
                      ", %zu)) after the last tensor belong to no tensor",
                      covered, buffer_size, covered + 8 + hlen, len);
        goto fail;
    }

    if (meta) {
        rc = parse_metadata(st, meta);
        if (rc != AMUSE_OK)
            goto fail;
    }

    /* Keep the tensors in the order of their data offsets. */
    st->tensors = calloc(n_tensors + 1, sizeof *st->tensors);
    if (!st->tensors) {
        rc = am__fail(AMUSE_ENOMEM, "out of memory for %zu tensors", n_tensors);
        goto fail;
    }
    const char *data = bytes + 8 + hlen;
    for (size_t i = 0; i < n_tensors; i++) {
        st->tensors[i] = tensors[order[i].index];
        st->tensors[i].data = data + st->tensors[i].begin;
    }
    st->n_tensors = (int)n_tensors;
    free(tensors);
    tensors = NULL;
    goto out;

fail:
    for (size_t i = 0; i < n_tensors; i++)
        free(tensors[i].name);
    free(tensors);
    tensors = NULL;
    amuse_safetensors_release(st);
out:
    free(names);
    free(order);
    cJSON_Delete(root);
    free(header);
    return rc;
}

int amuse_safetensors_parse(struct amuse_safetensors *st, const void *bytes, size_t len,
                            const char *source)
{
    memset(st, 0, sizeof *st);
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return am__fail(AMUSE_ENOMEM, "%s: cannot allocate %zu bytes", source, len);
    if (len)
        memcpy(copy, bytes, len);
    int rc = parse_owned(st, copy, len);
    if (rc != AMUSE_OK)
        am__fail_prefix(rc, "%s", source);
    return rc;
}

int amuse_safetensors_load(struct amuse_safetensors *st, const char *path, size_t max_bytes)
{
    memset(st, 0, sizeof *st);
    char *bytes;
    size_t len;
    int rc = am__read_file(path, max_bytes ? max_bytes : DEFAULT_MAX_FILE, &bytes, &len);
    if (rc != AMUSE_OK)
        return rc; /* the message already names the file */
    rc = parse_owned(st, bytes, len);
    if (rc != AMUSE_OK)
        am__fail_prefix(rc, "%s", path);
    return rc;
}

const struct amuse_st_tensor *amuse_safetensors_find(const struct amuse_safetensors *st,
                                                     const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

const char *amuse_safetensors_metadata(const struct amuse_safetensors *st, const char *key)
{
    for (int i = 0; i < st->n_metadata; i++)
        if (strcmp(st->metadata_keys[i], key) == 0)
            return st->metadata_values[i];
    return NULL;
}

void amuse_safetensors_release(struct amuse_safetensors *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    if (st->metadata_keys || st->metadata_values) {
        for (int i = 0; i < st->n_metadata; i++) {
            free(st->metadata_keys[i]);
            free(st->metadata_values[i]);
        }
    }
    free(st->metadata_keys);
    free(st->metadata_values);
    free(st->bytes);
    memset(st, 0, sizeof *st);
}

/* ---------------------------------------------------------------- conversion */

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t mant = h & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13); /* inf, or NaN keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13); /* rebias 15 -> 127 */
    } else {
        /* Zero or subnormal: mant * 2^-24 is exact in float32. */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float f64_to_f32(double d)
{
    /* Out-of-range conversions are undefined in C; round them to infinity ourselves. */
    if (d > FLT_MAX)
        return d >= 0x1.ffffffp+127 ? INFINITY : FLT_MAX;
    if (d < -FLT_MAX)
        return d <= -0x1.ffffffp+127 ? -INFINITY : -FLT_MAX;
    return (float)d;
}

int amuse_safetensors_to_f32(const struct amuse_st_tensor *t, float *out)
{
    uint64_t n = (t->end - t->begin) / (uint64_t)(t->dtype_size > 0 ? t->dtype_size : 1);
    const unsigned char *p = t->data;
    if (strcmp(t->dtype, "F32") == 0) {
        for (uint64_t i = 0; i < n; i++, p += 4) {
            uint32_t b = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                         (uint32_t)p[3] << 24;
            memcpy(&out[i], &b, 4);
        }
    } else if (strcmp(t->dtype, "F16") == 0) {
        for (uint64_t i = 0; i < n; i++, p += 2)
            out[i] = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    } else if (strcmp(t->dtype, "BF16") == 0) {
        for (uint64_t i = 0; i < n; i++, p += 2) {
            uint32_t b = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
            memcpy(&out[i], &b, 4);
        }
    } else if (strcmp(t->dtype, "F64") == 0) {
        for (uint64_t i = 0; i < n; i++, p += 8) {
            uint64_t b = read_le64(p);
            double d;
            memcpy(&d, &b, 8);
            out[i] = f64_to_f32(d);
        }
    } else {
        return am__fail(AMUSE_EUNSUPPORTED,
                        "tensor '%.200s': cannot convert dtype %s to float32 (F32, F16, BF16 and "
                        "F64 can be)",
                        t->name, t->dtype);
    }
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- writer */

static int check_string(const char *s, const char *what, int index)
{
    if (!s)
        return am__fail(AMUSE_EINVAL, "%s %d is NULL", what, index);
    size_t n = strlen(s);
    if (utf8_invalid_at((const unsigned char *)s, n) != n)
        return am__fail(AMUSE_EINVAL, "%s %d is not valid UTF-8", what, index);
    return AMUSE_OK;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

int amuse_safetensors_write(const char *path, const struct amuse_st_entry *entries, int n,
                            const char *const *metadata_keys, const char *const *metadata_values,
                            int n_metadata)
{
    struct am__buf h = {.max = AMUSE_SAFETENSORS_MAX_HEADER};
    unsigned char *file = NULL;
    const char **names = NULL;
    uint64_t *sizes = NULL;
    int rc = AMUSE_OK;

    if (n < 0 || n_metadata < 0 || (n > 0 && !entries) ||
        (n_metadata > 0 && (!metadata_keys || !metadata_values))) {
        rc = am__fail(AMUSE_EINVAL, "%s: invalid tensor or metadata list", path);
        goto out;
    }
    names = calloc((size_t)n + (size_t)n_metadata + 1, sizeof *names);
    sizes = calloc((size_t)n + 1, sizeof *sizes);
    if (!names || !sizes) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const struct amuse_st_entry *e = &entries[i];
        if ((rc = check_string(e->name, "tensor name", i)) != AMUSE_OK)
            goto out_prefix;
        if (strcmp(e->name, METADATA_KEY) == 0) {
            rc = am__fail(AMUSE_EINVAL, "tensor %d may not be named '" METADATA_KEY "'", i);
            goto out_prefix;
        }
        if (e->shape.ndim < 0 || e->shape.ndim > AMUSE_MAX_DIMS) {
            rc = am__fail(AMUSE_EINVAL, "tensor '%.200s': shape has %d dimensions", e->name,
                          e->shape.ndim);
            goto out_prefix;
        }
        for (int d = 0; d < e->shape.ndim; d++) {
            if (e->shape.dim[d] < 0) {
                rc = am__fail(AMUSE_EINVAL, "tensor '%.200s': shape[%d] is negative", e->name, d);
                goto out_prefix;
            }
        }
        int64_t count = amuse_shape_size(&e->shape);
        if (count < 0) {
            rc = am__fail(AMUSE_ETOOBIG, "tensor '%.200s': shape is too large", e->name);
            goto out_prefix;
        }
        if (count > 0 && !e->data) {
            rc = am__fail(AMUSE_EINVAL, "tensor '%.200s': data is NULL", e->name);
            goto out_prefix;
        }
        sizes[i] = (uint64_t)count * 4;
        names[i] = e->name;
    }
    int oom;
    const char *dup = first_duplicate(names, (size_t)n, &oom);
    if (oom || dup) {
        rc = oom ? am__fail(AMUSE_ENOMEM, "out of memory")
                 : am__fail(AMUSE_EINVAL, "tensor name '%.200s' appears twice", dup);
        goto out_prefix;
    }
    for (int i = 0; i < n_metadata; i++) {
        if ((rc = check_string(metadata_keys[i], "metadata key", i)) != AMUSE_OK ||
            (rc = check_string(metadata_values[i], "metadata value", i)) != AMUSE_OK)
            goto out_prefix;
        names[i] = metadata_keys[i];
    }
    dup = first_duplicate(names, (size_t)n_metadata, &oom);
    if (oom || dup) {
        rc = oom ? am__fail(AMUSE_ENOMEM, "out of memory")
                 : am__fail(AMUSE_EINVAL, "metadata key '%.200s' appears twice", dup);
        goto out_prefix;
    }

    /* Header: metadata first, then the tensors in the given order with contiguous offsets. */
    am__buf_puts(&h, "{");
    if (n_metadata > 0) {
        am__buf_puts(&h, "\"" METADATA_KEY "\":{");
        for (int i = 0; i < n_metadata; i++) {
            if (i)
                am__buf_puts(&h, ",");
            am__buf_json_string(&h, metadata_keys[i]);
            am__buf_puts(&h, ":");
            am__buf_json_string(&h, metadata_values[i]);
        }
        am__buf_puts(&h, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        char num[32];
        if (i || n_metadata > 0)
            am__buf_puts(&h, ",");
        am__buf_json_string(&h, entries[i].name);
        am__buf_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < entries[i].shape.ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", entries[i].shape.dim[d]);
            am__buf_puts(&h, num);
        }
        snprintf(num, sizeof num, "%" PRIu64, offset);
        am__buf_puts(&h, "],\"data_offsets\":[");
        am__buf_puts(&h, num);
        offset += sizes[i];
        snprintf(num, sizeof num, ",%" PRIu64 "]}", offset);
        am__buf_puts(&h, num);
    }
    am__buf_puts(&h, "}");
    while (!h.failed && h.len % 8 != 0)
        am__buf_puts(&h, " ");
    if (h.failed) {
        rc = h.failed == AMUSE_ETOOBIG
                 ? am__fail(AMUSE_ETOOBIG, "header is over the limit of %u bytes",
                            (unsigned)AMUSE_SAFETENSORS_MAX_HEADER)
                 : am__fail(AMUSE_ENOMEM, "out of memory building the header");
        goto out_prefix;
    }
    if (offset > (uint64_t)SIZE_MAX - 8 - h.len) {
        rc = am__fail(AMUSE_ETOOBIG, "%" PRIu64 " bytes of tensor data is too large", offset);
        goto out_prefix;
    }

    size_t total = 8 + h.len + (size_t)offset;
    file = malloc(total);
    if (!file) {
        rc = am__fail(AMUSE_ENOMEM, "cannot allocate %zu bytes", total);
        goto out_prefix;
    }
    uint64_t hl = h.len;
    for (int i = 0; i < 8; i++)
        file[i] = (unsigned char)(hl >> (8 * i));
    memcpy(file + 8, h.data, h.len);
    unsigned char *p = file + 8 + h.len;
    for (int i = 0; i < n; i++) {
        uint64_t count = sizes[i] / 4;
        for (uint64_t k = 0; k < count; k++, p += 4) {
            uint32_t bits;
            memcpy(&bits, &entries[i].data[k], 4);
            put_le32(p, bits);
        }
    }
    rc = am__write_file_atomic(path, file, total);
    goto out;

out_prefix:
    am__fail_prefix(rc, "%s", path);
out:
    free(file);
    free(sizes);
    free(names);
    am__buf_release(&h);
    return rc;
}
