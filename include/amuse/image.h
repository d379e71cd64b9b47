/* amuse/image.h - decode an image and turn it into a model's input tensor.
 *
 * Decoding is libjpeg-turbo for JPEG and stb_image for PNG, BMP and GIF. The header is checked
 * before any pixel is decoded, so an "image bomb" that declares huge dimensions is refused
 * cheaply. Conversion: alpha composited over white, to grey (ITU-R BT.601 luma) or RGB, resize to
 * the model's height and width (per axis: area averaging when shrinking, bilinear when enlarging,
 * a copy when the size is kept), scale to [0, 1]. Optionally inverted for models trained on
 * light-on-dark images: always, or per image when its background is light
 * (AMUSE_IMAGE_INVERT_AUTO). Only PNG, JPEG, BMP and GIF are accepted (recognised by their
 * signature); a GIF gives its first frame, a CMYK JPEG is converted to RGB. Failures:
 * AMUSE_EINVAL (options), AMUSE_EFORMAT (not an image, corrupt or truncated, the message naming
 * the source and the decoder's reason: a truncated JPEG is an error, never a grey-filled image;
 * so is a JPEG of more than 256 scans), AMUSE_ETOOBIG (over the caps below).
 */
#ifndef AMUSE_IMAGE_H
#define AMUSE_IMAGE_H

#include "amuse/version.h" /* AMUSE_API */

#include "amuse/error.h" /* status codes returned here */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMUSE_IMAGE_MAX_SIDE 8192
#define AMUSE_IMAGE_MAX_PIXELS (40u * 1000u * 1000u)

/* invert: AMUSE_IMAGE_INVERT_AUTO decides per image from its border. The mean of the outermost
 * ring of pixels of the converted image (all channels) is its background; above 0.5 (light),
 * the image is inverted so that it matches a model trained on light-on-dark images. A recipe
 * asks for it with "input": {"invert": "auto"} (true: always, false: never). */
#define AMUSE_IMAGE_INVERT_AUTO 2

struct amuse_image_options {
    int height, width; /* model input size */
    int channels;      /* 1 (grey) or 3 (RGB) */
    int invert;        /* 0: as is; 1: out = 1 - value (dark-on-light photos for a light-on-dark
                          model); AMUSE_IMAGE_INVERT_AUTO: 1 - value when the border is light */
    /* Budgets (0: the defaults). max_pixels: declared width x height above it -> AMUSE_ETOOBIG
     * before any pixel is decoded (default: AMUSE_IMAGE_MAX_PIXELS). max_decoder_bytes: what
     * the decoder may allocate for this image; past it the decode stops with AMUSE_ETOOBIG
     * (default: 24 bytes a declared pixel plus the file plus 1 MiB). For a JPEG, what libjpeg
     * will need (whole-image coefficients for a progressive file) is estimated from the header
     * and checked before decoding. */
    uint64_t max_pixels;
    size_t max_decoder_bytes;
};

/* The declared size of an image without decoding it: the same signature, header and cap checks
 * as amuse_image_decode (AMUSE_EFORMAT, AMUSE_ETOOBIG). *width and *height are 0 on failure. */
AMUSE_API int amuse_image_info(const void *bytes, size_t len, const char *name, int *width,
                               int *height);

/* The mean value of the outermost ring of pixels of an image (height x width x channels,
 * channels-last, values in [0, 1]): what AMUSE_IMAGE_INVERT_AUTO compares with 0.5. */
AMUSE_API float amuse_image_border_mean(const float *pixels, int height, int width, int channels);

/* The invert setting of a model's recipe ("input": {"invert": ...}): 1 for true,
 * AMUSE_IMAGE_INVERT_AUTO for "auto", 0 for false, absent or anything else. */
struct amuse_model;
AMUSE_API int amuse_image_invert_setting(const struct amuse_model *m);

/* Decode bytes (name used in messages) into out[height * width * channels], channels-last. */
AMUSE_API int amuse_image_decode(const void *bytes, size_t len, const char *name,
                       const struct amuse_image_options *opt, float *out);

/* Read a file (capped at 64 MiB) and decode it. */
AMUSE_API int amuse_image_load(const char *path, const struct amuse_image_options *opt, float *out);

#ifdef __cplusplus
}
#endif
#endif
