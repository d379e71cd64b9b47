/* test_image.c - image decoding and conversion. Fixtures are made here with stb_image_write
 * (shipped in Debian's libstb): a real Fashion-MNIST t10k image as PNG must decode back to its
 * pixels; known colours check BT.601 luma, alpha over white, resizing and inversion; and text,
 * a truncated PNG and PNG headers declaring huge sizes ("image bombs") must be refused. */
#include "amuse/data.h"
#include "amuse/image.h"
#include "test.h"

#include <stb/stb_image_write.h>
#include <stdint.h>
#include <stdio.h> /* FILE, which jpeglib.h uses */
#include <jpeglib.h>
#include <unistd.h>
#include <zlib.h>

struct membuf {
    unsigned char *p;
    size_t len;
};

static void append(void *ctx, void *data, int size)
{
    struct membuf *m = ctx;
    m->p = realloc(m->p, m->len + (size_t)size);
    if (!m->p)
        abort();
    memcpy(m->p + m->len, data, (size_t)size);
    m->len += (size_t)size;
}

static struct membuf png_of(const unsigned char *pixels, int w, int h, int comp)
{
    struct membuf m = {0};
    if (!stbi_write_png_to_func(append, &m, w, h, comp, pixels, w * comp))
        abort();
    return m;
}

/* A PNG signature and IHDR chunk (with a correct CRC) declaring w x h, then IEND: no pixels. */
static struct membuf png_header_only(uint32_t w, uint32_t h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int i = 0; i < 4; i++) {
        ihdr[8 + i] = (unsigned char)(w >> (24 - 8 * i));
        ihdr[12 + i] = (unsigned char)(h >> (24 - 8 * i));
    }
    ihdr[16] = 8; /* bit depth */
    ihdr[17] = 2; /* colour type RGB; compression, filter, interlace stay 0 */
    uLong crc = crc32(0L, ihdr + 4, 17);
    for (int i = 0; i < 4; i++)
        ihdr[21 + i] = (unsigned char)(crc >> (24 - 8 * i));
    static const unsigned char iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    struct membuf m = {0};
    append(&m, (void *)sig, 8);
    append(&m, ihdr, 25);
    append(&m, (void *)iend, 12);
    return m;
}

TEST(real_t10k_image_round_trips_through_png)
{
    struct amuse_idx images;
    ASSERT_OK(amuse_idx_read("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                             &images));
    const unsigned char *digit = images.data + 784 * 3; /* sample 3, a trouser (label 1) */
    struct membuf png = png_of(digit, 28, 28, 1);
    struct amuse_image_options opt = {28, 28, 1, 0, 0, 0};
    float out[784], inv[784];
    ASSERT_OK(amuse_image_decode(png.p, png.len, "digit.png", &opt, out));
    opt.invert = 1;
    ASSERT_OK(amuse_image_decode(png.p, png.len, "digit.png", &opt, inv));
    int nonzero = 0;
    for (int i = 0; i < 784; i++) {
        ASSERT_NEAR(out[i], digit[i] / 255.0, 1.0 / 255.0);
        ASSERT_NEAR(inv[i], 1.0 - digit[i] / 255.0, 1.0 / 255.0);
        nonzero += digit[i] != 0;
    }
    ASSERT_TRUE(nonzero > 100); /* the sample is a real picture, not blank */

    /* Through a file too, and as RGB (grey replicated). */
    char path[256];
    snprintf(path, sizeof path, "/tmp/amuse_test_%ld_digit.png", (long)getpid());
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f && fwrite(png.p, 1, png.len, f) == png.len && fclose(f) == 0);
    float rgb[784 * 3];
    struct amuse_image_options opt3 = {28, 28, 3, 0, 0, 0};
    ASSERT_OK(amuse_image_load(path, &opt3, rgb));
    for (int i = 0; i < 784; i++)
        for (int c = 0; c < 3; c++)
            ASSERT_NEAR(rgb[3 * i + c], digit[i] / 255.0, 1.0 / 255.0);
    /* Shrunk to 14 x 14: each output is the mean of a 2 x 2 block. */
    struct amuse_image_options half = {14, 14, 1, 0, 0, 0};
    float small[196];
    ASSERT_OK(amuse_image_load(path, &half, small));
    for (int y = 0; y < 14; y++)
        for (int x = 0; x < 14; x++) {
            const unsigned char *p = digit + 2 * y * 28 + 2 * x;
            double mean = (p[0] + p[1] + p[28] + p[29]) / (4 * 255.0);
            ASSERT_NEAR(small[y * 14 + x], mean, 1e-5);
        }
    unlink(path);
    ASSERT_FAILS(amuse_image_load(path, &opt, out), AMUSE_ENOTFOUND, path);
    free(png.p);
    amuse_idx_release(&images);
}

TEST(invert_auto_follows_the_background)
{
    /* The first 100 t10k images, as they are (dark background) and inverted (light background,
     * a dark garment): "auto" must hand the model the dark-background form both times. */
    struct amuse_idx images;
    ASSERT_OK(amuse_idx_read("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                             &images));
    struct amuse_image_options plain = {28, 28, 1, 0, 0, 0},
                               autoinv = {28, 28, 1, AMUSE_IMAGE_INVERT_AUTO, 0, 0};
    unsigned char flipped[784];
    float want[784], got[784];
    for (int k = 0; k < 100; k++) {
        const unsigned char *px = images.data + 784 * k;
        for (int i = 0; i < 784; i++)
            flipped[i] = (unsigned char)(255 - px[i]);
        struct membuf dark = png_of(px, 28, 28, 1), light = png_of(flipped, 28, 28, 1);
        ASSERT_OK(amuse_image_decode(dark.p, dark.len, "dark.png", &plain, want));
        ASSERT_TRUE(amuse_image_border_mean(want, 28, 28, 1) < 0.5f);
        ASSERT_OK(amuse_image_decode(dark.p, dark.len, "dark.png", &autoinv, got));
        for (int i = 0; i < 784; i++)
            ASSERT_NEAR(got[i], want[i], 0);
        ASSERT_OK(amuse_image_decode(light.p, light.len, "light.png", &autoinv, got));
        for (int i = 0; i < 784; i++)
            ASSERT_NEAR(got[i], want[i], 1e-6);
        free(dark.p);
        free(light.p);
    }
    amuse_idx_release(&images);
    /* The border is the outermost ring, every channel: 3 x 3 RGB, centre ignored. */
    float px[27];
    for (int i = 0; i < 27; i++)
        px[i] = 1.0f;
    for (int c = 0; c < 3; c++)
        px[4 * 3 + c] = 0.0f;  /* the centre pixel */
    px[0] = 0.0f;              /* one channel of a corner */
    ASSERT_NEAR(amuse_image_border_mean(px, 3, 3, 3), 23.0 / 24.0, 1e-6);
    ASSERT_NEAR(amuse_image_border_mean(px, 1, 1, 3), 2.0 / 3.0, 1e-6);
    /* Anything else than 0, 1 and AUTO is refused. */
    unsigned char grey[4] = {0, 0, 0, 0};
    struct membuf tiny = png_of(grey, 2, 2, 1);
    struct amuse_image_options bad = {2, 2, 1, 7, 0, 0};
    ASSERT_FAILS(amuse_image_decode(tiny.p, tiny.len, "tiny.png", &bad, got), AMUSE_EINVAL,
                 "invert is 7");
    free(tiny.p);
}

TEST(colour_alpha_and_resizing)
{
    /* 2 x 1 RGBA: opaque red, fully transparent black. */
    const unsigned char px[8] = {255, 0, 0, 255, 0, 0, 0, 0};
    struct membuf png = png_of(px, 2, 1, 4);
    struct amuse_image_options grey = {1, 2, 1, 0, 0, 0}, rgb = {1, 2, 3, 0, 0, 0};
    float out[6];
    ASSERT_OK(amuse_image_decode(png.p, png.len, "rgba.png", &grey, out));
    ASSERT_NEAR(out[0], 0.299, 1e-6);
    ASSERT_NEAR(out[1], 1.0, 1e-6); /* transparent over white is white */
    ASSERT_OK(amuse_image_decode(png.p, png.len, "rgba.png", &rgb, out));
    ASSERT_NEAR(out[0], 1.0, 1e-6);
    ASSERT_NEAR(out[1], 0.0, 1e-6);
    ASSERT_NEAR(out[2], 0.0, 1e-6);
    ASSERT_NEAR(out[3], 1.0, 1e-6);
    ASSERT_NEAR(out[4], 1.0, 1e-6);
    ASSERT_NEAR(out[5], 1.0, 1e-6);
    free(png.p);

    /* Half-transparent black over white, and pure green/blue luma weights. */
    const unsigned char px2[12] = {0, 0, 0, 128, 0, 255, 0, 255, 0, 0, 255, 255};
    png = png_of(px2, 3, 1, 4);
    struct amuse_image_options g3 = {1, 3, 1, 0, 0, 0};
    ASSERT_OK(amuse_image_decode(png.p, png.len, "px2.png", &g3, out));
    ASSERT_NEAR(out[0], 1.0 - 128.0 / 255.0, 1e-6);
    ASSERT_NEAR(out[1], 0.587, 1e-6);
    ASSERT_NEAR(out[2], 0.114, 1e-6);
    free(png.p);

    /* Enlarging 1 x 2 (black, white) to 1 x 4 is bilinear with aligned pixel centres:
     * sources at x = -0.25, 0.25, 0.75, 1.25 -> 0, 0.25, 0.75, 1 after clamping. */
    const unsigned char bw[2] = {0, 255};
    png = png_of(bw, 2, 1, 1);
    struct amuse_image_options wide = {1, 4, 1, 0, 0, 0};
    ASSERT_OK(amuse_image_decode(png.p, png.len, "bw.png", &wide, out));
    ASSERT_NEAR(out[0], 0.0, 1e-6);
    ASSERT_NEAR(out[1], 0.25, 1e-6);
    ASSERT_NEAR(out[2], 0.75, 1e-6);
    ASSERT_NEAR(out[3], 1.0, 1e-6);
    /* Shrinking 2 -> 1 averages; 3 -> 2 weighs the middle pixel half to each side. */
    struct amuse_image_options one = {1, 1, 1, 0, 0, 0};
    ASSERT_OK(amuse_image_decode(png.p, png.len, "bw.png", &one, out));
    ASSERT_NEAR(out[0], 0.5, 1e-6);
    free(png.p);
    const unsigned char three[3] = {0, 255, 255};
    png = png_of(three, 3, 1, 1);
    struct amuse_image_options two = {1, 2, 1, 0, 0, 0};
    ASSERT_OK(amuse_image_decode(png.p, png.len, "three.png", &two, out));
    ASSERT_NEAR(out[0], 1.0 / 3.0, 1e-6);
    ASSERT_NEAR(out[1], 1.0, 1e-6);
    free(png.p);
}

TEST(bmp_decodes_too)
{
    const unsigned char px[6] = {10, 20, 30, 200, 100, 50};
    char path[256];
    snprintf(path, sizeof path, "/tmp/amuse_test_%ld_px.bmp", (long)getpid());
    ASSERT_TRUE(stbi_write_bmp(path, 2, 1, 3, px));
    struct amuse_image_options rgb = {1, 2, 3, 0, 0, 0};
    float out[6];
    ASSERT_OK(amuse_image_load(path, &rgb, out));
    for (int i = 0; i < 6; i++)
        ASSERT_NEAR(out[i], px[i] / 255.0, 1e-6);
    unlink(path);
}

TEST(refuses_non_images_truncation_and_bombs)
{
    struct amuse_image_options opt = {28, 28, 1, 0, 0, 0};
    float out[784];
    const char *text = "this is not an image, it is a sentence\n";
    ASSERT_FAILS(amuse_image_decode(text, strlen(text), "notes.txt", &opt, out), AMUSE_EFORMAT,
                 "notes.txt: not a PNG, JPEG, BMP or GIF image");
    ASSERT_FAILS(amuse_image_decode("", 0, "empty", &opt, out), AMUSE_EFORMAT, "empty");

    unsigned char px[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        px[i] = (unsigned char)(i * 7);
    struct membuf png = png_of(px, 64, 64, 1);
    /* Header intact, pixel data cut: stb's reason is in the message. */
    ASSERT_FAILS(amuse_image_decode(png.p, png.len / 2, "cut.png", &opt, out), AMUSE_EFORMAT,
                 "cut.png: cannot decode PNG: ");
    /* Cut inside the header. */
    ASSERT_FAILS(amuse_image_decode(png.p, 20, "cut.png", &opt, out), AMUSE_EFORMAT,
                 "cut.png: unreadable PNG header");
    free(png.p);

    /* Declared sizes beyond the caps are refused from the header alone (no pixel data exists:
     * a decoder that tried would fail with AMUSE_EFORMAT instead). */
    png = png_header_only(100000, 100000);
    ASSERT_FAILS(amuse_image_decode(png.p, png.len, "bomb.png", &opt, out), AMUSE_ETOOBIG,
                 "bomb.png: PNG declares 100000 x 100000 pixels");
    free(png.p);
    png = png_header_only(8193, 1);
    ASSERT_FAILS(amuse_image_decode(png.p, png.len, "wide.png", &opt, out), AMUSE_ETOOBIG,
                 "8193 x 1");
    free(png.p);
    png = png_header_only(7000, 7000); /* each side fine, 49 million pixels is not */
    ASSERT_FAILS(amuse_image_decode(png.p, png.len, "many.png", &opt, out), AMUSE_ETOOBIG,
                 "at most 40000000 in all");
    free(png.p);
    /* The same for JPEG (a baseline frame header declaring 65000 x 65000 after an APP0
     * segment) and BMP (a top-down bitmap, negative height, 3 x 100000). */
    const unsigned char jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 'J',  'F',  0xFF, 0xC0,
                                  0x00, 0x11, 0x08, 0xFD, 0xE8, 0xFD, 0xE8, 0x03, 0x01, 0x22,
                                  0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9};
    ASSERT_FAILS(amuse_image_decode(jpeg, sizeof jpeg, "bomb.jpg", &opt, out), AMUSE_ETOOBIG,
                 "bomb.jpg: JPEG declares 65000 x 65000 pixels");
    unsigned char bmp[54] = {'B', 'M', [14] = 40, [18] = 3, [22] = 0x60, 0x79, 0xFE, 0xFF,
                             [26] = 1, [28] = 24};
    ASSERT_FAILS(amuse_image_decode(bmp, sizeof bmp, "bomb.bmp", &opt, out), AMUSE_ETOOBIG,
                 "bomb.bmp: BMP declares 3 x 100000 pixels");
    /* Within the caps, but a 54-byte BMP may not stand for 36 million pixels (stb_image would
     * decode the missing pixels as black). */
    bmp[18] = 0x70, bmp[19] = 0x17, bmp[22] = 0x70, bmp[23] = 0x17, bmp[24] = 0, bmp[25] = 0;
    bmp[10] = 54;
    ASSERT_FAILS(amuse_image_decode(bmp, sizeof bmp, "short.bmp", &opt, out), AMUSE_EFORMAT,
                 "short.bmp: BMP is truncated: 6000 x 6000 at 24 bits per pixel need 108000054 "
                 "bytes, the file has 54");
    /* The OS/2 core header (12 bytes, 16-bit sizes) too, and a header cut short (stb_image would
     * read the missing bytes as zeros): a 25-byte file declaring 6661 x 3405 took 4 s (fuzzing). */
    unsigned char core[26] = {'B', 'M', [10] = 26, [14] = 12, [18] = 0x05, 0x1A, 0x4D, 0x0D,
                              [22] = 1, [24] = 8};
    ASSERT_FAILS(amuse_image_decode(core, sizeof core, "core.bmp", &opt, out), AMUSE_EFORMAT,
                 "core.bmp: BMP is truncated: 6661 x 3405 at 8 bits per pixel need 22690946 "
                 "bytes, the file has 26");
    ASSERT_FAILS(amuse_image_decode(core, 25, "cut.bmp", &opt, out), AMUSE_EFORMAT,
                 "cut.bmp: BMP header is truncated (25 bytes)");
    png = png_header_only(100, 100); /* within the caps: now it is the missing data */
    ASSERT_FAILS(amuse_image_decode(png.p, png.len, "nodata.png", &opt, out), AMUSE_EFORMAT,
                 "nodata.png: cannot decode PNG");
    free(png.p);

    struct amuse_image_options bad = {0, 28, 1, 0, 0, 0};
    ASSERT_FAILS(amuse_image_decode(text, 4, "x", &bad, out), AMUSE_EINVAL, "output size");
    bad = (struct amuse_image_options){28, 28, 2, 0, 0, 0};
    ASSERT_FAILS(amuse_image_decode(text, 4, "x", &bad, out), AMUSE_EINVAL, "2 channels");
}

/* The caller's budgets: declared pixels over max_pixels are refused before decoding (from the
 * header alone), a decoder memory cap too small for the image stops the decode as AMUSE_ETOOBIG
 * (not as a corrupt image), and amuse_image_info reads the size without decoding. */
/* A JPEG made with libjpeg's compressor from `comp` 8-bit components a pixel (1 grey, 3 RGB,
 * 4 CMYK, written with an Adobe marker), at quality 95. scans/n_scans: a progression script
 * (NULL: baseline); progressive 1: libjpeg's standard progression. */
static struct membuf jpeg_of(const unsigned char *px, int w, int h, int comp, int progressive,
                             const jpeg_scan_info *scans, int n_scans)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    unsigned char *buf = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comp;
    c.in_color_space = comp == 1 ? JCS_GRAYSCALE : comp == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    if (scans) {
        c.scan_info = scans;
        c.num_scans = n_scans;
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * (size_t)w * (size_t)comp;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    struct membuf m = {0};
    append(&m, buf, (int)size);
    free(buf);
    return m;
}

/* A smooth 32 x 32 RGB picture (JPEG keeps it within a few levels) and its grey version. */
static void smooth_picture(unsigned char rgb[32 * 32 * 3], unsigned char grey[32 * 32])
{
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            unsigned char *p = rgb + (y * 32 + x) * 3;
            p[0] = (unsigned char)(40 + x * 5);
            p[1] = (unsigned char)(200 - y * 4);
            p[2] = (unsigned char)(90 + (x + y) * 2);
            grey[y * 32 + x] = (unsigned char)(30 + x * 3 + y * 2);
        }
}

/* JPEG is decoded by libjpeg-turbo: baseline and progressive, colour and grey files come back
 * close to the pixels they were made from (JPEG is lossy: within 6 levels here, at quality 95
 * on a smooth picture; measured at most 4 levels for colour, whose chroma is subsampled, and 1
 * for grey). */
TEST(jpeg_decodes_baseline_progressive_and_grey)
{
    unsigned char rgb[32 * 32 * 3], grey[32 * 32];
    smooth_picture(rgb, grey);
    struct amuse_image_options opt = {32, 32, 3, 0, 0, 0};
    float out[32 * 32 * 3];
    for (int progressive = 0; progressive <= 1; progressive++) {
        struct membuf m = jpeg_of(rgb, 32, 32, 3, progressive, NULL, 0);
        ASSERT_OK(amuse_image_decode(m.p, m.len, "rgb.jpg", &opt, out));
        for (int i = 0; i < 32 * 32 * 3; i++)
            ASSERT_NEAR(out[i], rgb[i] / 255.0, 6.0 / 255.0);
        int w = 0, h = 0;
        ASSERT_OK(amuse_image_info(m.p, m.len, "rgb.jpg", &w, &h));
        ASSERT_EQ_INT(w, 32);
        ASSERT_EQ_INT(h, 32);
        free(m.p);
    }
    /* A grey file: one component, as grey and as RGB (replicated). */
    struct membuf m = jpeg_of(grey, 32, 32, 1, 0, NULL, 0);
    ASSERT_OK(amuse_image_decode(m.p, m.len, "grey.jpg", &opt, out));
    for (int i = 0; i < 32 * 32 * 3; i++)
        ASSERT_NEAR(out[i], grey[i / 3] / 255.0, 6.0 / 255.0);
    opt.channels = 1;
    ASSERT_OK(amuse_image_decode(m.p, m.len, "grey.jpg", &opt, out));
    for (int i = 0; i < 32 * 32; i++)
        ASSERT_NEAR(out[i], grey[i] / 255.0, 6.0 / 255.0);
    free(m.p);
}

/* Adobe CMYK JPEGs (inverted CMYK) are converted to RGB: four 8 x 8 quadrants, red, green, blue
 * and 50% black, come back as those colours. */
TEST(jpeg_cmyk_is_converted_to_rgb)
{
    /* Inverted as Adobe writes them: 255 is no ink. */
    static const unsigned char ink[4][4] = {
        {255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 127}};
    static const float rgb[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.5f, 0.5f, 0.5f}};
    unsigned char px[16 * 16 * 4];
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            memcpy(px + (y * 16 + x) * 4, ink[(y / 8) * 2 + x / 8], 4);
    struct membuf m = jpeg_of(px, 16, 16, 4, 0, NULL, 0);
    struct amuse_image_options opt = {2, 2, 3, 0, 0, 0}; /* one output pixel a quadrant */
    float out[2 * 2 * 3];
    ASSERT_OK(amuse_image_decode(m.p, m.len, "cmyk.jpg", &opt, out));
    for (int q = 0; q < 4; q++)
        for (int c = 0; c < 3; c++)
            ASSERT_NEAR(out[q * 3 + c], rgb[q][c], 0.03);
    free(m.p);
}

/* What libjpeg would only warn about is an error here: a truncated file, whether cut in the
 * middle of its data or just before its final EOI marker, fails naming the file, instead of
 * decoding with grey where the data ran out. */
TEST(jpeg_truncated_or_corrupt_fails_clearly)
{
    unsigned char rgb[32 * 32 * 3], grey[32 * 32];
    smooth_picture(rgb, grey);
    struct amuse_image_options opt = {28, 28, 1, 0, 0, 0};
    float out[784];
    for (int progressive = 0; progressive <= 1; progressive++) {
        struct membuf m = jpeg_of(rgb, 32, 32, 3, progressive, NULL, 0);
        ASSERT_FAILS(amuse_image_decode(m.p, m.len * 3 / 4, "cut.jpg", &opt, out), AMUSE_EFORMAT,
                     "cut.jpg: cannot decode JPEG: Premature end of JPEG file");
        ASSERT_FAILS(amuse_image_decode(m.p, m.len - 2, "noeoi.jpg", &opt, out), AMUSE_EFORMAT,
                     "noeoi.jpg: cannot decode JPEG: Premature end of JPEG file");
        ASSERT_OK(amuse_image_decode(m.p, m.len, "whole.jpg", &opt, out));
        free(m.p);
    }
    /* The header alone cut short: amuse_image_info fails too. */
    struct membuf m = jpeg_of(rgb, 32, 32, 3, 0, NULL, 0);
    int w = 1, h = 1;
    ASSERT_FAILS(amuse_image_info(m.p, 40, "head.jpg", &w, &h), AMUSE_EFORMAT,
                 "head.jpg: cannot decode JPEG: Premature end of JPEG file");
    ASSERT_EQ_INT(w, 0);
    /* A Huffman table whose code counts over-fill the code space (stb_image needed a pre-walk
     * for these): libjpeg refuses it. */
    size_t dht = 0;
    for (size_t i = 2; i + 1 < m.len && !dht; i++)
        if (m.p[i] == 0xFF && m.p[i + 1] == 0xC4)
            dht = i;
    ASSERT_TRUE(dht > 0);
    for (int i = 0; i < 16; i++) /* table class/id at dht+4, its 16 counts after */
        m.p[dht + 5 + i] = 17;
    ASSERT_FAILS(amuse_image_decode(m.p, m.len, "bad.jpg", &opt, out), AMUSE_EFORMAT,
                 "bad.jpg: cannot decode JPEG: Bogus Huffman table definition");
    free(m.p);
    /* A scan before any frame header, and a frame whose tables were never defined. */
    static const unsigned char late[] = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0xD9};
    ASSERT_FAILS(amuse_image_decode(late, sizeof late, "late.jpg", &opt, out), AMUSE_EFORMAT,
                 "late.jpg: cannot decode JPEG: Invalid JPEG file structure: SOS before SOF");
    static const unsigned char notables[] = {
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 8, 0,    8, 0,  8, 1,    1,    0x11,
        0,    0xFF, 0xDA, 0x00, 0x08, 1,    1, 0x00, 0, 63, 0, 0x12, 0xFF, 0xD9};
    ASSERT_FAILS(amuse_image_decode(notables, sizeof notables, "notables.jpg", &opt, out),
                 AMUSE_EFORMAT,
                 "notables.jpg: cannot decode JPEG: Quantization table 0x00 was not defined");
}

/* Cost bounds: a progressive file with more than AM__JPEG_MAX_SCANS (256) scans stops with a
 * clear error (each scan walks the whole image); one with a handful decodes. A file whose
 * decoding needs more memory than the cap (a progressive file keeps every coefficient) is
 * AMUSE_ETOOBIG before decoding. */
TEST(jpeg_scan_limit_and_memory_cap)
{
    unsigned char rgb[32 * 32 * 3], grey[32 * 32];
    smooth_picture(rgb, grey);
    /* 316 scans: DC, then every AC coefficient alone at 4 bits of approximation, refined 4
     * times (a valid progression libjpeg itself writes and reads). */
    jpeg_scan_info scans[1 + 63 * 5];
    int n = 0;
    scans[n++] = (jpeg_scan_info){1, {0}, 0, 0, 0, 0};
    for (int k = 1; k <= 63; k++)
        scans[n++] = (jpeg_scan_info){1, {0}, k, k, 0, 4};
    for (int al = 3; al >= 0; al--)
        for (int k = 1; k <= 63; k++)
            scans[n++] = (jpeg_scan_info){1, {0}, k, k, al + 1, al};
    struct membuf m = jpeg_of(grey, 32, 32, 1, 0, scans, n);
    struct amuse_image_options opt = {28, 28, 1, 0, 0, 0};
    float out[784];
    ASSERT_FAILS(amuse_image_decode(m.p, m.len, "scans.jpg", &opt, out), AMUSE_EFORMAT,
                 "scans.jpg: JPEG has more than 256 scans");
    free(m.p);
    m = jpeg_of(grey, 32, 32, 1, 0, scans, 64); /* DC and 63 first AC scans: fine */
    ASSERT_OK(amuse_image_decode(m.p, m.len, "64scans.jpg", &opt, out));
    free(m.p);

    /* 32 x 32 RGB: 48 blocks of coefficients (6 KiB) for a progressive file, none for a
     * baseline one; a cap that fits the baseline decode but not the progressive one. */
    struct membuf base = jpeg_of(rgb, 32, 32, 3, 0, NULL, 0);
    struct membuf prog = jpeg_of(rgb, 32, 32, 3, 1, NULL, 0);
    opt.max_decoder_bytes = 1000;
    ASSERT_FAILS(amuse_image_decode(base.p, base.len, "base.jpg", &opt, out), AMUSE_ETOOBIG,
                 "base.jpg: decoding this JPEG (32 x 32) needs");
    ASSERT_FAILS(amuse_image_decode(prog.p, prog.len, "prog.jpg", &opt, out), AMUSE_ETOOBIG,
                 "prog.jpg: decoding this progressive JPEG (32 x 32) needs");
    ASSERT_CONTAINS(amuse_last_error(), "more than the decoder's cap of 1000");
    opt.max_decoder_bytes = 0; /* the default cap fits both */
    ASSERT_OK(amuse_image_decode(base.p, base.len, "base.jpg", &opt, out));
    ASSERT_OK(amuse_image_decode(prog.p, prog.len, "prog.jpg", &opt, out));
    /* The estimate is not so generous that the default cap refuses a legitimate wide, short
     * image (8192 x 1, 4:2:0 chroma: row buffers dominate, the cap is about 1.2 MB). */
    static unsigned char wide[8192 * 3];
    for (int i = 0; i < 8192 * 3; i++)
        wide[i] = (unsigned char)(i / 3 % 200);
    struct membuf strip = jpeg_of(wide, 8192, 1, 3, 0, NULL, 0);
    struct amuse_image_options strip_opt = {1, 64, 3, 0, 0, 0};
    float strip_out[64 * 3];
    ASSERT_OK(amuse_image_decode(strip.p, strip.len, "strip.jpg", &strip_opt, strip_out));
    free(strip.p);
    /* The pixel budget is checked on the header, before anything else. */
    opt.max_pixels = 32 * 32 - 1;
    ASSERT_FAILS(amuse_image_decode(prog.p, prog.len, "prog.jpg", &opt, out), AMUSE_ETOOBIG,
                 "prog.jpg: JPEG declares 32 x 32 pixels; at most 1023 here");
    free(base.p);
    free(prog.p);
}

/* stb_image reads an empty first IDAT into a NULL buffer: refused before it is decoded. */
TEST(png_empty_first_idat_is_refused)
{
    struct amuse_image_options opt = {28, 28, 1, 0, 0, 0};
    float out[784];
    unsigned char px1[4] = {1, 2, 3, 4};
    struct membuf png = png_of(px1, 2, 2, 1);
    struct membuf bad = {0};
    append(&bad, png.p, 33); /* signature and IHDR */
    append(&bad, (void *)"\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);
    append(&bad, png.p + 33, (int)(png.len - 33));
    ASSERT_FAILS(amuse_image_decode(bad.p, bad.len, "empty.png", &opt, out), AMUSE_EFORMAT,
                 "empty.png: PNG's first IDAT chunk (byte 33) is empty");
    ASSERT_OK(amuse_image_decode(png.p, png.len, "ok.png", &opt, out));
    free(png.p);
    free(bad.p);
}

TEST(pixel_budget_and_decoder_memory_cap)
{
    unsigned char px[64 * 48];
    for (int i = 0; i < 64 * 48; i++)
        px[i] = (unsigned char)(i * 5);
    struct membuf png = png_of(px, 64, 48, 1);
    int w = 0, h = 0;
    ASSERT_OK(amuse_image_info(png.p, png.len, "a.png", &w, &h));
    ASSERT_EQ_INT(w, 64);
    ASSERT_EQ_INT(h, 48);
    float out[784];
    struct amuse_image_options opt = {28, 28, 1, 0, 64 * 48, 0};
    ASSERT_OK(amuse_image_decode(png.p, png.len, "a.png", &opt, out)); /* exactly the budget */
    opt.max_pixels = 64 * 48 - 1;
    ASSERT_FAILS(amuse_image_decode(png.p, png.len, "a.png", &opt, out), AMUSE_ETOOBIG,
                 "a.png: PNG declares 64 x 48 pixels; at most 3071 here");
    opt.max_pixels = 0;
    opt.max_decoder_bytes = 1000; /* far less than 64 x 48 RGBA */
    ASSERT_FAILS(amuse_image_decode(png.p, png.len, "a.png", &opt, out), AMUSE_ETOOBIG,
                 "a.png: decoding this PNG (64 x 48) needs more than 1000 bytes of memory");
    opt.max_decoder_bytes = 0; /* the default cap fits a normal image */
    ASSERT_OK(amuse_image_decode(png.p, png.len, "a.png", &opt, out));
    free(png.p);
    png = png_header_only(100000, 100000);
    ASSERT_FAILS(amuse_image_info(png.p, png.len, "bomb.png", &w, &h), AMUSE_ETOOBIG,
                 "bomb.png: PNG declares 100000 x 100000 pixels");
    ASSERT_EQ_INT(w, 0);
    free(png.p);
    ASSERT_FAILS(amuse_image_info("GIF", 3, "short", &w, &h), AMUSE_EFORMAT, "short");
}

int main(void)
{
    RUN(real_t10k_image_round_trips_through_png);
    RUN(invert_auto_follows_the_background);
    RUN(colour_alpha_and_resizing);
    RUN(bmp_decodes_too);
    RUN(refuses_non_images_truncation_and_bombs);
    RUN(pixel_budget_and_decoder_memory_cap);
    RUN(jpeg_decodes_baseline_progressive_and_grey);
    RUN(jpeg_cmyk_is_converted_to_rgb);
    RUN(jpeg_truncated_or_corrupt_fails_clearly);
    RUN(jpeg_scan_limit_and_memory_cap);
    RUN(png_empty_first_idat_is_refused);
    return test_summary();
}
