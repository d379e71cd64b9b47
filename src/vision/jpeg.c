/* jpeg.c - decode JPEG files with libjpeg-turbo's libjpeg API, for image.c (image_internal.h).
 *
 * libjpeg-turbo validates its input and is fuzzed continuously upstream; stb_image's JPEG decoder
 * kept needing pre-walks of the file to stay clear of its undefined behaviour, and the last one
 * found (a shift by 32 in the entropy-coded data) could not be walked around.
 *
 * Errors never leave through libjpeg's default handler (which prints and exits): error_exit
 * longjmps back here and libjpeg's own message becomes the reason of an AMUSE_EFORMAT naming the
 * file; nothing is printed. libjpeg goes on after a "corrupt data" warning, filling what it could
 * not decode with grey; here every warning is an error except the few that say nothing about the
 * pixels: extraneous bytes between segments (some cameras and editors write them; the image data
 * is intact), an unknown Adobe transform code or JFIF revision, and a bad ICC marker (colour
 * profiles are ignored anyway). So a truncated upload (JWRN_JPEG_EOF, also when only the final
 * EOI marker is missing), a damaged scan (bad Huffman code, premature end of a data segment, a
 * lost restart marker) and an inconsistent progression all fail clearly.
 *
 * Cost bounds, all before the first pixel is decoded: the header's size against the caller's
 * pixel budget (am__image_check_dimensions); what libjpeg will need (our output buffer, the
 * whole-image coefficient arrays of progressive and multi-scan files, row buffers; estimated from
 * the header, conservatively) against the decoder memory cap (am__image_decoder_cap), which is also
 * libjpeg's max_memory_to_use; and a progress monitor that stops a file after AM__JPEG_MAX_SCANS
 * scans (thousands of tiny progressive scans cost CPU without end; libjpeg-turbo's own tools use
 * a similar limit).
 *
 * Output is 8-bit grey or RGB; CMYK and YCCK files are converted to RGB (inverted as Adobe writes
 * them when an Adobe marker is present). It does not apply colour profiles, EXIF orientation, or
 * DCT scaling, and does not decode 12-bit or lossless JPEGs (libjpeg62-turbo refuses them).
 */
#include "vision/image_internal.h"

#include "amuse/error.h"
#include "core/internal.h"

#include <limits.h>
#include <setjmp.h>
#include <stdio.h> /* FILE, which jpeglib.h uses */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

enum failure { FAILED_NOT, FAILED_FORMAT, FAILED_MEMORY, FAILED_SCANS };

/* One decode: libjpeg's state, our error handling and the result. */
struct job {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr err;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    enum failure failure;
    char message[JMSG_LENGTH_MAX];
    int header_read; /* jpeg_read_header returned: the size is known and was checked */

    const unsigned char *bytes;
    size_t len;
    const char *name;
    uint64_t max_pixels;
    size_t max_decoder_bytes, cap;

    unsigned char *pixels, *row; /* the result; a CMYK row before conversion */
    int components;
};

/* ---------------------------------------------------------------- libjpeg's hooks */

static void fail(struct job *j, enum failure why)
{
    j->failure = why;
    longjmp(j->jump, 1);
}

static void error_exit(j_common_ptr c)
{
    struct job *j = c->client_data;
    (*c->err->format_message)(c, j->message);
    int code = c->err->msg_code;
    fail(j, code == JERR_OUT_OF_MEMORY || code == JERR_NO_BACKING_STORE ? FAILED_MEMORY
                                                                        : FAILED_FORMAT);
}

/* Level -1: a warning (corrupt data); 0 and up: trace messages, ignored. */
static void emit_message(j_common_ptr c, int level)
{
    if (level >= 0)
        return;
    switch (c->err->msg_code) {
    case JWRN_EXTRANEOUS_DATA:
    case JWRN_ADOBE_XFORM:
    case JWRN_JFIF_MAJOR:
    case JWRN_BOGUS_ICC:
        return; /* nothing wrong with the pixels (see the file comment) */
    default:
        error_exit(c);
    }
}

static void output_message(j_common_ptr c)
{
    (void)c; /* never print: the library reports through am__fail only */
}

static void progress_monitor(j_common_ptr c)
{
    if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > AM__JPEG_MAX_SCANS)
        fail(c->client_data, FAILED_SCANS);
}

/* ---------------------------------------------------------------- steps */

static int read_header(struct job *j)
{
    jpeg_create_decompress(&j->cinfo);
    j->cinfo.progress = &j->progress;
    jpeg_mem_src(&j->cinfo, j->bytes, (unsigned long)j->len);
    jpeg_read_header(&j->cinfo, TRUE);
    j->header_read = 1;
    return am__image_check_dimensions(j->name, "JPEG", j->cinfo.image_width, j->cinfo.image_height,
                                      j->max_pixels);
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* What decoding will allocate, ours and libjpeg's, from the header (read up to the first scan, so
 * the components' block counts are known). Whole-image coefficient arrays (a 64-coefficient block
 * of 2-byte values per 8 x 8 block, padded to whole MCUs) exist only when the file has more than
 * one scan; libjpeg's row buffers are counted generously: two iMCU rows (8 x v_samp sample rows)
 * per component where libjpeg keeps 1.25 (its context rows), and two rows a sample row of the
 * tallest component at four bytes a pixel for upsampling and colour. Not more: the default cap
 * (24 bytes a pixel plus 1 MiB) must still fit a legitimate 8192 x 1 image. */
static size_t memory_need(const struct jpeg_decompress_struct *c, int out_components)
{
    size_t w = c->image_width, h = c->image_height;
    size_t need = w * h * (size_t)out_components + w * 4 + ((size_t)256 << 10);
    int whole_image = c->progressive_mode || c->comps_in_scan < c->num_components;
    for (int i = 0; i < c->num_components; i++) {
        const jpeg_component_info *ci = &c->comp_info[i];
        size_t wb = round_up(ci->width_in_blocks, (size_t)ci->h_samp_factor);
        size_t hb = round_up(ci->height_in_blocks, (size_t)ci->v_samp_factor);
        if (whole_image)
            need += wb * hb * sizeof(JBLOCK);
        need += wb * DCTSIZE * (size_t)ci->v_samp_factor * DCTSIZE * 2;
    }
    return need + w * (size_t)c->max_v_samp_factor * 4 * 2;
}

/* C, M, Y, K (inverted as Adobe writes them, or not) to R, G, B. */
static void cmyk_to_rgb(const unsigned char *in, unsigned char *out, size_t n, int inverted)
{
    for (size_t i = 0; i < n; i++, in += 4, out += 3) {
        unsigned k = inverted ? in[3] : 255u - in[3];
        for (int c = 0; c < 3; c++) {
            unsigned v = inverted ? in[c] : 255u - in[c];
            out[c] = (unsigned char)((v * k + 127) / 255);
        }
    }
}

static int decode_all(struct job *j)
{
    struct jpeg_decompress_struct *c = &j->cinfo;
    int rc = read_header(j);
    if (rc != AMUSE_OK)
        return rc;
    int cmyk = 0;
    switch (c->jpeg_color_space) {
    case JCS_GRAYSCALE:
        c->out_color_space = JCS_GRAYSCALE;
        j->components = 1;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        c->out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK; we make RGB */
        j->components = 3;
        cmyk = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        c->out_color_space = JCS_RGB;
        j->components = 3;
        break;
    default:
        return am__fail(AMUSE_EFORMAT,
                        "%s: JPEG has %d colour components of unknown meaning (grey, YCbCr, RGB, "
                        "CMYK and YCCK are decoded)",
                        j->name, c->num_components);
    }
    size_t w = c->image_width, h = c->image_height, out_bytes = w * h * (size_t)j->components;
    size_t need = memory_need(c, j->components);
    j->cap = am__image_decoder_cap(j->max_decoder_bytes, (int)w, (int)h, j->len);
    if (need > j->cap)
        return am__fail(AMUSE_ETOOBIG,
                        "%s: decoding this %sJPEG (%zu x %zu) needs %zu bytes of memory, more "
                        "than the decoder's cap of %zu",
                        j->name, c->progressive_mode ? "progressive " : "", w, h, need, j->cap);
    size_t libjpeg_share = j->cap - out_bytes;
    c->mem->max_memory_to_use = libjpeg_share > LONG_MAX ? LONG_MAX : (long)libjpeg_share;

    jpeg_start_decompress(c);
    if (c->output_width != w || c->output_height != h ||
        c->output_components != (cmyk ? 4 : j->components)) /* defensive */
        return am__fail(AMUSE_EFORMAT, "%s: JPEG decodes to %u x %u x %d, header said %zu x %zu",
                        j->name, c->output_width, c->output_height, c->output_components, w, h);
    j->pixels = malloc(out_bytes);
    j->row = cmyk ? malloc(w * 4) : NULL;
    if (!j->pixels || (cmyk && !j->row))
        return am__fail(AMUSE_ENOMEM, "%s: out of memory for %zu x %zu pixels", j->name, w, h);
    while (c->output_scanline < h) {
        size_t y = c->output_scanline;
        unsigned char *dst = j->pixels + y * w * (size_t)j->components;
        JSAMPROW row = cmyk ? j->row : dst;
        if (jpeg_read_scanlines(c, &row, 1) != 1) /* defensive: memory sources do not suspend */
            return am__fail(AMUSE_EFORMAT, "%s: JPEG stopped at row %zu of %zu", j->name, y, h);
        if (cmyk)
            cmyk_to_rgb(j->row, dst, w, c->saw_Adobe_marker);
    }
    jpeg_finish_decompress(c); /* reads up to EOI: a file cut after the last row still fails */
    return AMUSE_OK;
}

/* Runs a step with libjpeg's errors caught; the status of the step or of what stopped it. */
static int guarded(struct job *j, int (*step)(struct job *))
{
    if (setjmp(j->jump) == 0)
        return step(j);
    struct jpeg_decompress_struct *c = &j->cinfo;
    if (!j->header_read && c->image_width > 0 && c->image_height > 0) {
        /* The frame header was read before the error: an over-budget size is the answer,
         * whatever else is wrong with the file (a bomb need not be a valid JPEG). */
        int rc = am__image_check_dimensions(j->name, "JPEG", c->image_width, c->image_height,
                                            j->max_pixels);
        if (rc != AMUSE_OK)
            return rc;
    }
    switch (j->failure) {
    case FAILED_SCANS:
        return am__fail(AMUSE_EFORMAT, "%s: JPEG has more than %d scans (at most %d decoded)",
                        j->name, AM__JPEG_MAX_SCANS, AM__JPEG_MAX_SCANS);
    case FAILED_MEMORY:
        return am__fail(AMUSE_ETOOBIG,
                        "%s: decoding this JPEG (%u x %u) needs more than %zu bytes of memory "
                        "(the decoder's cap): %s",
                        j->name, c->image_width, c->image_height, j->cap, j->message);
    default:
        return am__fail(AMUSE_EFORMAT, "%s: cannot decode JPEG: %s", j->name, j->message);
    }
}

static void job_init(struct job *j, const void *bytes, size_t len, const char *name,
                     uint64_t max_pixels, size_t max_decoder_bytes)
{
    memset(j, 0, sizeof *j);
    j->bytes = bytes;
    j->len = len;
    j->name = name;
    j->max_pixels = max_pixels;
    j->max_decoder_bytes = max_decoder_bytes;
    j->cinfo.err = jpeg_std_error(&j->err);
    j->err.error_exit = error_exit;
    j->err.emit_message = emit_message;
    j->err.output_message = output_message;
    j->cinfo.client_data = j; /* kept by jpeg_create_decompress */
    j->progress.progress_monitor = progress_monitor;
}

/* ---------------------------------------------------------------- entry points */

int am__jpeg_info(const void *bytes, size_t len, const char *name, uint64_t max_pixels, int *w,
                  int *h)
{
    struct job j;
    job_init(&j, bytes, len, name, max_pixels, 0);
    int rc = guarded(&j, read_header);
    if (rc == AMUSE_OK) {
        *w = (int)j.cinfo.image_width;
        *h = (int)j.cinfo.image_height;
    }
    jpeg_destroy_decompress(&j.cinfo); /* also when create itself failed: mem is NULL then */
    return rc;
}

int am__jpeg_decode(const void *bytes, size_t len, const char *name, uint64_t max_pixels,
                    size_t max_decoder_bytes, unsigned char **pixels, int *w, int *h,
                    int *components)
{
    struct job j;
    job_init(&j, bytes, len, name, max_pixels, max_decoder_bytes);
    *pixels = NULL;
    int rc = guarded(&j, decode_all);
    if (rc == AMUSE_OK) {
        *pixels = j.pixels;
        j.pixels = NULL;
        *w = (int)j.cinfo.image_width;
        *h = (int)j.cinfo.image_height;
        *components = j.components;
    }
    jpeg_destroy_decompress(&j.cinfo);
    free(j.row);
    free(j.pixels);
    return rc;
}
