/* vision/image_internal.h - what image.c and jpeg.c share: the one dimension check, the one
 * decoder memory budget, and the JPEG decoder (libjpeg-turbo) that image.c calls for JPEG files.
 * PNG, BMP and GIF stay in image.c (stb_image); nothing here converts or resizes pixels. */
#ifndef AMUSE_VISION_IMAGE_INTERNAL_H
#define AMUSE_VISION_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* AMUSE_OK, or AMUSE_ETOOBIG naming `name`, `format` and the declared w x h when they are over
 * AMUSE_IMAGE_MAX_SIDE, AMUSE_IMAGE_MAX_PIXELS or max_pixels (0: no caller budget). */
int am__image_check_dimensions(const char *name, const char *format, uint64_t w, uint64_t h,
                               uint64_t max_pixels);

/* What a decoder may use for a w x h image read from len bytes: max_decoder_bytes when it is not
 * 0, else the default (24 bytes a declared pixel, plus the file, plus 1 MiB). */
size_t am__image_decoder_cap(size_t max_decoder_bytes, int w, int h, size_t len);

/* The declared size of a JPEG: its header (up to the first scan) read by libjpeg and checked with
 * am__image_check_dimensions(max_pixels). AMUSE_EFORMAT for a corrupt or truncated header,
 * AMUSE_ETOOBIG for an over-budget size (even when the rest of the header is broken). */
int am__jpeg_info(const void *bytes, size_t len, const char *name, uint64_t max_pixels, int *w,
                  int *h);

/* Decode a JPEG to 8-bit pixels: *components 1 (greyscale files) or 3 (RGB; YCbCr, RGB, CMYK and
 * YCCK files), rows top to bottom, no padding. Before any pixel is decoded, the header's size is
 * checked against max_pixels and libjpeg's memory need against am__image_decoder_cap(). The caller
 * frees *pixels; on failure *pixels is NULL. Errors: AMUSE_EFORMAT (corrupt, truncated, more than
 * AM__JPEG_MAX_SCANS scans, unsupported colour space), AMUSE_ETOOBIG, AMUSE_ENOMEM. */
#define AM__JPEG_MAX_SCANS 256
int am__jpeg_decode(const void *bytes, size_t len, const char *name, uint64_t max_pixels,
                    size_t max_decoder_bytes, unsigned char **pixels, int *w, int *h,
                    int *components);

#endif
