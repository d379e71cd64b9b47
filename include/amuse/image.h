/* amuse/image.h - decode an image and turn it into a model's input tensor.
 *
 * Decoding is stb_image. The header is checked before any pixel is
 * decoded, so an "image bomb" that declares huge dimensions is refused cheaply. Conversion:
 * alpha composited over white, to grey (ITU-R BT.601 luma) or RGB, resize to the model's height
 * and width (per axis: area averaging when shrinking, bilinear when enlarging, a copy when the
 * size is kept), scale to [0, 1]. Optionally inverted for models trained on light-on-dark images.
 * Only PNG, JPEG, BMP and GIF are accepted (recognised by their signature); a GIF gives its first
 * frame. Failures: AMUSE_EINVAL (options), AMUSE_EFORMAT (not an image, corrupt or truncated; the
 * message names the source and stb_image's reason), AMUSE_ETOOBIG (over the caps below).
 */
#ifndef AMUSE_IMAGE_H
#define AMUSE_IMAGE_H

#include "amuse/error.h" /* status codes returned here */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_IMAGE_MAX_SIDE 8192
#define AMUSE_IMAGE_MAX_PIXELS (40u * 1000u * 1000u)

struct amuse_image_options {
    int height, width; /* model input size */
    int channels;      /* 1 (grey) or 3 (RGB) */
    int invert;        /* 1: out = 1 - value (dark-on-light photos for a light-on-dark model) */
    /* Budgets (0: the defaults). max_pixels: declared width x height above it -> AMUSE_ETOOBIG
     * before any pixel is decoded (default: AMUSE_IMAGE_MAX_PIXELS). max_decoder_bytes: what
     * stb_image may allocate for this image; past it the decode stops with AMUSE_ETOOBIG
     * (default: 24 bytes a declared pixel plus the file plus 1 MiB). */
    uint64_t max_pixels;
    size_t max_decoder_bytes;
};

/* The declared size of an image without decoding it: the same signature, header and cap checks
 * as amuse_image_decode (AMUSE_EFORMAT, AMUSE_ETOOBIG). *width and *height are 0 on failure. */
int amuse_image_info(const void *bytes, size_t len, const char *name, int *width, int *height);

/* Decode bytes (name used in messages) into out[height * width * channels], channels-last. */
int amuse_image_decode(const void *bytes, size_t len, const char *name,
                       const struct amuse_image_options *opt, float *out);

/* Read a file (capped at 64 MiB) and decode it. */
int amuse_image_load(const char *path, const struct amuse_image_options *opt, float *out);

#ifdef __cplusplus
}
#endif
#endif
