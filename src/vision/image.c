/* image.c - decode an image and turn it into a model's input (amuse/image.h). PNG, BMP and GIF
 * are decoded here with stb_image; JPEG with libjpeg-turbo in jpeg.c (stb_image's JPEG decoder
 * kept showing undefined behaviour under fuzzing).
 *
 * Order of work: recognise the format from its signature (PNG, JPEG, BMP and GIF only: formats
 * without a signature, such as TGA, would let any bytes pass for an image), read the declared
 * dimensions from the header (our own few lines per format, then stbi_info_from_memory; for a
 * JPEG, libjpeg's jpeg_read_header) and refuse oversized images before a pixel is decoded, decode
 * to 8-bit pixels (RGBA from stb_image, grey or RGB from libjpeg), composite alpha over white,
 * convert to grey (BT.601 luma) or RGB, resize, scale to [0, 1], invert if asked (always, or when
 * the border is light: AMUSE_IMAGE_INVERT_AUTO).
 *
 * Resizing is separable and per axis: area averaging (each output pixel is the coverage-weighted
 * mean of the input pixels under it) where the axis shrinks, bilinear interpolation (pixel
 * centres aligned, edges clamped) where it grows, and a plain copy where it keeps its size.
 * Values are averaged as stored (sRGB-encoded), without linearising gamma.
 *
 * Decoding cost is bounded twice: by the caller's pixel budget (opt->max_pixels, checked on the
 * declared dimensions before decoding) and by a cap on what the decoder may allocate
 * (am__image_decoder_cap; over it the decode fails as AMUSE_ETOOBIG, not as corrupt). For stb_image
 * the cap is enforced by its allocation hooks, counted per thread; stb_image is compiled here
 * (static, PNG/BMP/GIF only) so that the hooks are ours. For JPEG, jpeg.c estimates libjpeg's need
 * from the header and refuses before decoding.
 *
 * It does not handle animation (a GIF gives its first frame), colour profiles or EXIF rotation.
 */
#include "amuse/image.h"
#include "amuse/model.h"
#include "core/internal.h"
#include "vision/image_internal.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- stb_image, with our allocator */

/* What the decoder on this thread may still allocate; cap 0: no decode in progress (no limit). */
static _Thread_local struct {
    size_t used, cap;
    int over;
} decoder_memory;

/* Each block carries its size in front, so realloc and free can account for it. */
#define BLOCK_HEADER 16

static void *decoder_malloc(size_t n)
{
    if (decoder_memory.cap &&
        (n > decoder_memory.cap || decoder_memory.used > decoder_memory.cap - n)) {
        decoder_memory.over = 1;
        return NULL;
    }
    unsigned char *p = malloc(n + BLOCK_HEADER);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    decoder_memory.used += n;
    return p + BLOCK_HEADER;
}

static void decoder_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - BLOCK_HEADER;
    size_t n;
    memcpy(&n, p, sizeof n);
    decoder_memory.used -= n < decoder_memory.used ? n : decoder_memory.used;
    free(p);
}

static void *decoder_realloc(void *q, size_t n)
{
    if (!q)
        return decoder_malloc(n);
    size_t old;
    memcpy(&old, (unsigned char *)q - BLOCK_HEADER, sizeof old);
    void *p = decoder_malloc(n);
    if (!p)
        return NULL;
    memcpy(p, q, old < n ? old : n);
    decoder_free(q);
    return p;
}

#define STBI_MALLOC(n) decoder_malloc(n)
#define STBI_REALLOC(p, n) decoder_realloc(p, n)
#define STBI_FREE(p) decoder_free(p)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop
/* Debian's stb_image declares stbi_set_unpremultiply_on_load_thread without defining it when
 * STB_IMAGE_STATIC is set; GCC reports that at the end of the file, past the pop above. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define MAX_FILE_BYTES ((size_t)64 << 20)

/* ---------------------------------------------------------------- format */

static const char *sniff_format(const unsigned char *p, size_t len)
{
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return "PNG";
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return "JPEG";
    if (len >= 2 && p[0] == 'B' && p[1] == 'M')
        return "BMP";
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return "GIF";
    return NULL;
}

/* Read the declared width and height from the header ourselves: stb_image's own info call
 * refuses very large images with a reason that later decoders overwrite ("unknown image type"),
 * so it cannot tell a bomb from garbage. Returns 1 when the header holds the dimensions. */
static uint32_t be16(const unsigned char *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
    return be16(p) << 16 | be16(p + 2);
}

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const unsigned char *p)
{
    return le16(p + 2) << 16 | le16(p);
}

/* stb_image appends each IDAT chunk to a buffer it allocates on the first non-empty one, and
 * reads an empty first IDAT into a NULL pointer (undefined behaviour, found by fuzz_multipart).
 * Encoders never write one, so it is refused rather than worked around. Walks the chunks up to
 * the first IDAT; a truncated or lying chunk list is left to stb_image, which refuses it. */
static int png_check_chunks(const unsigned char *p, size_t len, const char *name)
{
    for (size_t pos = 8; pos + 8 <= len;) {
        uint64_t n = be32(p + pos);
        if (memcmp(p + pos + 4, "IDAT", 4) == 0) {
            if (n == 0)
                return am__fail(AMUSE_EFORMAT,
                                "%s: PNG's first IDAT chunk (byte %zu) is empty", name, pos);
            return AMUSE_OK;
        }
        if (n > len - pos - 8)
            return AMUSE_OK;
        pos += 12 + (size_t)n;
    }
    return AMUSE_OK;
}

static int header_dimensions(const char *format, const unsigned char *p, size_t len,
                             uint64_t *w, uint64_t *h)
{
    if (strcmp(format, "PNG") == 0) {
        if (len < 24 || memcmp(p + 12, "IHDR", 4) != 0)
            return 0;
        *w = be32(p + 16);
        *h = be32(p + 20);
        return 1;
    }
    if (strcmp(format, "GIF") == 0) {
        if (len < 10)
            return 0;
        *w = le16(p + 6);
        *h = le16(p + 8);
        return 1;
    }
    if (strcmp(format, "BMP") == 0) {
        if (len < 26)
            return 0;
        if (le32(p + 14) == 12) { /* OS/2 core header: 16-bit sizes */
            *w = le16(p + 18);
            *h = le16(p + 20);
            return 1;
        }
        int64_t sw = (int32_t)le32(p + 18), sh = (int32_t)le32(p + 22); /* height < 0: top-down */
        *w = (uint64_t)(sw < 0 ? -sw : sw);
        *h = (uint64_t)(sh < 0 ? -sh : sh);
        return 1;
    }
    return 0; /* JPEG: libjpeg reads its header (jpeg.c) */
}

static const unsigned char *p_bytes(const void *p)
{
    return p;
}

int am__image_check_dimensions(const char *name, const char *format, uint64_t w, uint64_t h,
                               uint64_t max_pixels)
{
    if (w > AMUSE_IMAGE_MAX_SIDE || h > AMUSE_IMAGE_MAX_SIDE)
        return am__fail(AMUSE_ETOOBIG,
                        "%s: %s declares %" PRIu64 " x %" PRIu64 " pixels (at most %d a side)",
                        name, format, w, h, AMUSE_IMAGE_MAX_SIDE);
    if (w * h > AMUSE_IMAGE_MAX_PIXELS)
        return am__fail(AMUSE_ETOOBIG,
                        "%s: %s declares %" PRIu64 " x %" PRIu64 " pixels (at most %u in all)",
                        name, format, w, h, (unsigned)AMUSE_IMAGE_MAX_PIXELS);
    if (max_pixels && w * h > max_pixels)
        return am__fail(AMUSE_ETOOBIG,
                        "%s: %s declares %" PRIu64 " x %" PRIu64 " pixels; at most %" PRIu64
                        " here (send a smaller image)",
                        name, format, w, h, max_pixels);
    return AMUSE_OK;
}

size_t am__image_decoder_cap(size_t max_decoder_bytes, int w, int h, size_t len)
{
    /* 24 bytes a pixel: a 16-bit RGBA PNG holds its inflated rows, its 16-bit pixels and the
     * 8-bit ones at once. */
    if (max_decoder_bytes)
        return max_decoder_bytes;
    return (size_t)w * (size_t)h * 24 + len + ((size_t)1 << 20);
}

/* ---------------------------------------------------------------- resampling */

/* Weights that map n_in samples onto n_out: output i is sum_k weight[first[i] + k] *
 * in[src[first[i] + k]] for k < count[i]. */
struct taps {
    int *first, *count, *src;
    float *weight;
};

static void taps_release(struct taps *t)
{
    free(t->first);
    free(t->count);
    free(t->src);
    free(t->weight);
}

static int taps_make(struct taps *t, int n_in, int n_out)
{
    /* Area averaging touches at most ceil(n_in / n_out) + 1 inputs per output; bilinear 2. */
    size_t per = (size_t)(n_in / n_out) + 2;
    size_t total = per * (size_t)n_out;
    memset(t, 0, sizeof *t);
    t->first = malloc((size_t)n_out * sizeof(int));
    t->count = malloc((size_t)n_out * sizeof(int));
    t->src = malloc(total * sizeof(int));
    t->weight = malloc(total * sizeof(float));
    if (!t->first || !t->count || !t->src || !t->weight) {
        taps_release(t);
        return AMUSE_ENOMEM;
    }
    size_t at = 0;
    double scale = (double)n_in / n_out;
    for (int i = 0; i < n_out; i++) {
        t->first[i] = (int)at;
        if (n_in == n_out) {
            t->src[at] = i;
            t->weight[at++] = 1.0f;
        } else if (n_in > n_out) {
            double a = i * scale, b = (i + 1) * scale;
            int j0 = (int)floor(a), j1 = (int)ceil(b);
            if (j1 > n_in)
                j1 = n_in;
            for (int j = j0; j < j1; j++) {
                double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
                if (hi > lo && at < total) {
                    t->src[at] = j;
                    t->weight[at++] = (float)((hi - lo) / scale);
                }
            }
        } else {
            double x = (i + 0.5) * scale - 0.5;
            int j = (int)floor(x);
            float f = (float)(x - j);
            int j0 = j < 0 ? 0 : j, j1 = j + 1 > n_in - 1 ? n_in - 1 : j + 1;
            t->src[at] = j0;
            t->weight[at++] = 1.0f - f;
            t->src[at] = j1;
            t->weight[at++] = f;
        }
        t->count[i] = (int)at - t->first[i];
    }
    return AMUSE_OK;
}

/* ---------------------------------------------------------------- conversion */

/* Channel c (0..2) of pixel p of an RGBA image, alpha composited over white, in [0, 1]. */
static float over_white(const unsigned char *p, int c)
{
    float a = p[3] / 255.0f;
    return (p[c] / 255.0f) * a + (1.0f - a);
}

/* Channel c (0..2) of a pixel of `comp` 8-bit components: 1 (grey, from libjpeg), 3 (RGB, from
 * libjpeg) or 4 (RGBA, from stb_image), in [0, 1]. */
static float channel_value(const unsigned char *p, int comp, int c)
{
    if (comp == 1)
        return p[0] / 255.0f;
    if (comp == 3)
        return p[c] / 255.0f;
    return over_white(p, c);
}

/* Output channel c of a pixel: the channel itself (channels 3), or BT.601 luma (channels 1). */
static float pixel_value(const unsigned char *p, int comp, int channels, int c)
{
    if (channels == 3)
        return channel_value(p, comp, c);
    if (comp == 1)
        return p[0] / 255.0f;
    return 0.299f * channel_value(p, comp, 0) + 0.587f * channel_value(p, comp, 1) +
           0.114f * channel_value(p, comp, 2);
}

static int check_options(const struct amuse_image_options *opt, const char *name)
{
    if (!opt || opt->height < 1 || opt->width < 1 || opt->height > AMUSE_IMAGE_MAX_SIDE ||
        opt->width > AMUSE_IMAGE_MAX_SIDE)
        return am__fail(AMUSE_EINVAL, "%s: output size must be 1 to %d pixels a side", name,
                        AMUSE_IMAGE_MAX_SIDE);
    if (opt->channels != 1 && opt->channels != 3)
        return am__fail(AMUSE_EINVAL, "%s: %d channels asked for; 1 (grey) or 3 (RGB) allowed",
                        name, opt->channels);
    if (opt->invert != 0 && opt->invert != 1 && opt->invert != AMUSE_IMAGE_INVERT_AUTO)
        return am__fail(AMUSE_EINVAL, "%s: invert is %d; 0, 1 or AMUSE_IMAGE_INVERT_AUTO allowed",
                        name, opt->invert);
    return AMUSE_OK;
}

int amuse_image_invert_setting(const struct amuse_model *m)
{
    const char *s = amuse_model_config_string(m, "input", "invert");
    if (s && strcmp(s, "auto") == 0)
        return AMUSE_IMAGE_INVERT_AUTO;
    return amuse_model_config_bool(m, "input", "invert", 0);
}

float amuse_image_border_mean(const float *pixels, int height, int width, int channels)
{
    double sum = 0;
    int64_t n = 0;
    for (int y = 0; y < height; y++) {
        int edge_row = y == 0 || y == height - 1;
        for (int x = 0; x < width; x++) {
            if (!edge_row && x != 0 && x != width - 1)
                continue;
            for (int c = 0; c < channels; c++)
                sum += pixels[((size_t)y * width + x) * channels + c];
            n += channels;
        }
    }
    return n ? (float)(sum / (double)n) : 0.0f;
}

/* The checks before decoding: signature, declared size against the caps (and max_pixels, 0: none),
 * a truncated BMP, stb_image's view of the header (libjpeg's for a JPEG). *format, *w and *h
 * receive what was found. */
static int probe(const void *bytes, size_t len, const char *name, uint64_t max_pixels,
                 const char **format_out, int *w_out, int *h_out)
{
    int w, h, comp, rc;
    if (len > INT_MAX)
        return am__fail(AMUSE_ETOOBIG, "%s: %zu bytes is too large to decode", name, len);
    const char *format = sniff_format(bytes, len);
    if (!format)
        return am__fail(AMUSE_EFORMAT, "%s: not a PNG, JPEG, BMP or GIF image (unknown signature)",
                        name);
    if (strcmp(format, "JPEG") == 0) {
        if ((rc = am__jpeg_info(bytes, len, name, max_pixels, &w, &h)) != AMUSE_OK)
            return rc;
        *format_out = format;
        *w_out = w;
        *h_out = h;
        return AMUSE_OK;
    }
    uint64_t hw = 0, hh = 0;
    if (header_dimensions(format, bytes, len, &hw, &hh) &&
        (rc = am__image_check_dimensions(name, format, hw, hh, max_pixels)) != AMUSE_OK)
        return rc;
    /* stb_image reads missing BMP bytes as zeros, header included, so a 25-byte BMP could
     * stand for 22 million pixels; the whole header must be there, and an uncompressed BMP
     * (the OS/2 core header's always is) must hold the pixel data its header declares. */
    const unsigned char *b = p_bytes(bytes);
    uint32_t bmp_header = strcmp(format, "BMP") == 0 && len >= 18 ? le32(b + 14) : 0;
    if (strcmp(format, "BMP") == 0 && len < 14 + (uint64_t)(bmp_header == 12 ? 12 : 40))
        return am__fail(AMUSE_EFORMAT, "%s: BMP header is truncated (%zu bytes)", name, len);
    if (strcmp(format, "BMP") == 0 &&
        (bmp_header == 12 || le32(b + 30) == 0 || le32(b + 30) == 3)) {
        uint64_t bpp = bmp_header == 12 ? le16(b + 24) : le16(b + 28), offset = le32(b + 10);
        uint64_t need = offset + (hw * bpp + 31) / 32 * 4 * hh;
        if (len < need)
            return am__fail(AMUSE_EFORMAT,
                            "%s: BMP is truncated: %" PRIu64 " x %" PRIu64 " at %" PRIu64
                            " bits per pixel need %" PRIu64 " bytes, the file has %zu",
                            name, hw, hh, bpp, need, len);
    }
    if (strcmp(format, "PNG") == 0 && (rc = png_check_chunks(p_bytes(bytes), len, name)))
        return rc;
    /* Then stb_image's view of the header, which must agree with the caps too. */
    if (!stbi_info_from_memory(bytes, (int)len, &w, &h, &comp))
        return am__fail(AMUSE_EFORMAT, "%s: unreadable %s header: %s", name, format,
                        stbi_failure_reason());
    if (w < 1 || h < 1)
        return am__fail(AMUSE_EFORMAT, "%s: %s declares %d x %d pixels", name, format, w, h);
    if ((rc = am__image_check_dimensions(name, format, (uint64_t)w, (uint64_t)h, max_pixels)) !=
        AMUSE_OK)
        return rc;
    *format_out = format;
    *w_out = w;
    *h_out = h;
    return AMUSE_OK;
}

int amuse_image_info(const void *bytes, size_t len, const char *name, int *width, int *height)
{
    const char *format;
    *width = *height = 0;
    return probe(bytes, len, name, 0, &format, width, height);
}

/* stb_image's decode of a PNG, BMP or GIF to RGBA, its allocations capped at cap bytes. */
static int stb_decode(const void *bytes, size_t len, const char *name, const char *format, int w,
                      int h, size_t cap, unsigned char **rgba)
{
    decoder_memory.used = 0;
    decoder_memory.over = 0;
    decoder_memory.cap = cap;
    int dw, dh, dcomp;
    *rgba = stbi_load_from_memory(bytes, (int)len, &dw, &dh, &dcomp, 4);
    int over = decoder_memory.over;
    decoder_memory.cap = 0; /* what follows (and stbi_image_free) is not counted */
    if (!*rgba) {
        if (over)
            return am__fail(AMUSE_ETOOBIG,
                            "%s: decoding this %s (%d x %d) needs more than %zu "
                            "bytes of memory (the decoder's cap)",
                            name, format, w, h, cap);
        return am__fail(AMUSE_EFORMAT, "%s: cannot decode %s: %s", name, format,
                        stbi_failure_reason());
    }
    if (dw != w || dh != h) /* defensive: stb decoded a different size than it announced */
        return am__fail(AMUSE_EFORMAT, "%s: %s decoded to %d x %d, header said %d x %d", name,
                        format, dw, dh, w, h);
    return AMUSE_OK;
}

int amuse_image_decode(const void *bytes, size_t len, const char *name,
                       const struct amuse_image_options *opt, float *out)
{
    unsigned char *pixels = NULL; /* comp 8-bit components a pixel: see channel_value */
    float *rows = NULL;
    struct taps tx = {0}, ty = {0};
    const char *format;
    int w, h, comp = 4, rc, from_stb = 0;

    if ((rc = check_options(opt, name)) != AMUSE_OK)
        return rc;
    if ((rc = probe(bytes, len, name, opt->max_pixels, &format, &w, &h)) != AMUSE_OK)
        return rc;
    if (strcmp(format, "JPEG") == 0) {
        int dw, dh;
        rc = am__jpeg_decode(bytes, len, name, opt->max_pixels, opt->max_decoder_bytes, &pixels,
                             &dw, &dh, &comp);
        if (rc == AMUSE_OK && (dw != w || dh != h)) /* defensive: the same header read twice */
            rc = am__fail(AMUSE_EFORMAT, "%s: JPEG decoded to %d x %d, header said %d x %d", name,
                          dw, dh, w, h);
    } else {
        from_stb = 1;
        rc = stb_decode(bytes, len, name, format, w, h,
                        am__image_decoder_cap(opt->max_decoder_bytes, w, h, len), &pixels);
    }
    if (rc != AMUSE_OK)
        goto out;

    int C = opt->channels, W = opt->width, H = opt->height;
    if (taps_make(&tx, w, W) != AMUSE_OK || taps_make(&ty, h, H) != AMUSE_OK) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory for resampling", name);
        goto out;
    }
    /* Horizontal pass: h rows of W pixels, read straight from the decoded bytes. */
    rows = malloc((size_t)h * (size_t)W * (size_t)C * sizeof(float));
    if (!rows) {
        rc = am__fail(AMUSE_ENOMEM, "%s: out of memory for resampling", name);
        goto out;
    }
    for (int y = 0; y < h; y++) {
        const unsigned char *line = pixels + (size_t)y * (size_t)w * (size_t)comp;
        float *dst = rows + (size_t)y * (size_t)W * (size_t)C;
        for (int x = 0; x < W; x++) {
            for (int c = 0; c < C; c++) {
                float s = 0;
                for (int k = 0; k < tx.count[x]; k++) {
                    int t = tx.first[x] + k;
                    const unsigned char *p = line + (size_t)tx.src[t] * (size_t)comp;
                    s += tx.weight[t] * pixel_value(p, comp, C, c);
                }
                dst[(size_t)x * C + c] = s;
            }
        }
    }
    /* Vertical pass into out, then clamp against rounding, and invert if asked. */
    for (int y = 0; y < H; y++) {
        for (size_t i = 0; i < (size_t)W * C; i++) {
            float s = 0;
            for (int k = 0; k < ty.count[y]; k++) {
                int t = ty.first[y] + k;
                s += ty.weight[t] * rows[(size_t)ty.src[t] * (size_t)W * C + i];
            }
            s = s < 0.0f ? 0.0f : s > 1.0f ? 1.0f : s;
            out[(size_t)y * W * C + i] = opt->invert == 1 ? 1.0f - s : s;
        }
    }
    if (opt->invert == AMUSE_IMAGE_INVERT_AUTO && amuse_image_border_mean(out, H, W, C) > 0.5f)
        for (size_t i = 0; i < (size_t)H * W * C; i++)
            out[i] = 1.0f - out[i];
    rc = AMUSE_OK;
out:
    free(rows);
    taps_release(&ty);
    taps_release(&tx);
    if (from_stb)
        stbi_image_free(pixels);
    else
        free(pixels);
    return rc;
}

int amuse_image_load(const char *path, const struct amuse_image_options *opt, float *out)
{
    char *bytes;
    size_t len;
    int rc = check_options(opt, path);
    if (rc != AMUSE_OK)
        return rc;
    if ((rc = am__read_file(path, MAX_FILE_BYTES, &bytes, &len)) != AMUSE_OK)
        return rc;
    rc = amuse_image_decode(bytes, len, path, opt, out);
    free(bytes);
    return rc;
}
