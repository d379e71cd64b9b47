/* test_image.c - image decoding and conversion. Fixtures are made here with stb_image_write
 * (shipped in Debian's libstb): a real Fashion-MNIST t10k image as PNG must decode back to its
 * pixels; known colours check BT.601 luma, alpha over white, resizing and inversion; and text,
 * a truncated PNG and PNG headers declaring huge sizes ("image bombs") must be refused. */
#include "amuse/data.h"
#include "amuse/image.h"
#include "test.h"

#include <stb/stb_image_write.h>
#include <stdint.h>
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
/* Debian's stb_image writes past its Huffman tables when a DHT's code counts sum over 256 (found
 * by fuzz_image): amuse checks every DHT first. A real JPEG still decodes; the same file with one
 * table's counts raised is refused with the byte offset, and so is a table after the first scan. */
TEST(jpeg_huffman_tables_are_checked_before_decoding)
{
    unsigned char px[32 * 32 * 3];
    for (int i = 0; i < 32 * 32 * 3; i++)
        px[i] = (unsigned char)(i * 13);
    struct membuf jpg = {0};
    ASSERT_TRUE(stbi_write_jpg_to_func(append, &jpg, 32, 32, 3, px, 90));
    struct amuse_image_options opt = {28, 28, 1, 0, 0, 0};
    float out[784];
    ASSERT_OK(amuse_image_decode(jpg.p, jpg.len, "real.jpg", &opt, out));
    size_t dht = 0;
    for (size_t i = 2; i + 1 < jpg.len && !dht; i++)
        if (jpg.p[i] == 0xFF && jpg.p[i + 1] == 0xC4)
            dht = i;
    ASSERT_TRUE(dht > 0);
    for (int i = 0; i < 16; i++) /* table class/id at dht+4, its 16 counts after */
        jpg.p[dht + 5 + i] = 17;
    ASSERT_FAILS(amuse_image_decode(jpg.p, jpg.len, "bad.jpg", &opt, out), AMUSE_EFORMAT,
                 "bad.jpg: JPEG Huffman table at byte");
    ASSERT_FAILS(amuse_image_decode(jpg.p, jpg.len, "bad.jpg", &opt, out), AMUSE_EFORMAT,
                 "has more codes of length 1 or less than the code space holds");
    free(jpg.p);

    /* SOI, a scan (its entropy bytes hold a stuffed FF 00 and a restart marker), then a DHT. */
    struct membuf m = {0};
    static const unsigned char head[] = {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02,
                                         0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56};
    append(&m, (void *)head, sizeof head);
    unsigned char seg[4 + 17 + 300] = {0xFF, 0xC4, (4 + 17 + 300 - 2) >> 8,
                                       (4 + 17 + 300 - 2) & 0xFF, 0x10};
    seg[5 + 8] = 255; /* 255 codes of length 9 fit; one more does not */
    seg[5 + 15] = 1;
    append(&m, seg, sizeof seg);
    ASSERT_FAILS(amuse_image_decode(m.p, m.len, "late.jpg", &opt, out), AMUSE_EFORMAT,
                 "declares 256 codes (at most 255)");
    /* In a scan, 0xFF 0xFF ... 0x00 is one stuffed byte, not a marker: the DHT after it is read. */
    m.len = 2;
    static const unsigned char scan[] = {0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0xFF, 0xFF,
                                         0x00, 0x34, 0xFF, 0xFF};
    append(&m, (void *)scan, sizeof scan);
    append(&m, seg, sizeof seg);
    ASSERT_FAILS(amuse_image_decode(m.p, m.len, "stuffed.jpg", &opt, out), AMUSE_EFORMAT,
                 "stuffed.jpg: JPEG Huffman table at byte 18 declares 256 codes");
    /* Garbage between segments: stb_image skips it looking for the next marker, so must we. */
    m.len = 2;
    append(&m, (void *)"\xFF\xE0\x00\x04JFLLLLLLLL", 14);
    append(&m, seg, sizeof seg);
    ASSERT_FAILS(amuse_image_decode(m.p, m.len, "padded.jpg", &opt, out), AMUSE_EFORMAT,
                 "padded.jpg: JPEG Huffman table at byte 20 declares 256 codes");
    /* Two codes of length 1 fill the code space: one more of any length over-fills it. */
    memset(seg + 5, 0, 16);
    seg[5 + 0] = 2;
    seg[5 + 15] = 1;
    m.len = 16;
    append(&m, seg, sizeof seg);
    ASSERT_FAILS(amuse_image_decode(m.p, m.len, "full.jpg", &opt, out), AMUSE_EFORMAT,
                 "has more codes of length 16 or less than the code space holds");
    free(m.p);

    /* An empty first IDAT is refused before stb_image reads it into a NULL buffer. */
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
    RUN(jpeg_huffman_tables_are_checked_before_decoding);
    return test_summary();
}
