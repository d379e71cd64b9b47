/* test_audio.c - the audio reader and the feature front end (amuse/audio.h).
 *
 * Fixtures: tests/fixtures/audio, made by make_fixtures.sh (espeak-ng + sox) and, for the
 * features, tests/golden/make_audio_features.py (NumPy). Damaged inputs (truncated, lying sizes,
 * NaN samples, wrong fields) are derived here from those bytes, next to their assertions.
 */
#include "amuse/audio.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#define AUDIO_DIR AMUSE_FIXTURES "/audio/"

/* ---------------------------------------------------------------- helpers */

struct bytes {
    unsigned char *p;
    size_t n;
};

static struct bytes read_fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, AUDIO_DIR "%s", name);
    struct bytes b = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        TEST_FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    b.n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc(b.n + 1);
    if (!b.p || fread(b.p, 1, b.n, f) != b.n)
        TEST_FAIL("cannot read %s", path);
    fclose(f);
    return b;
}

/* Offset of the first byte of the WAV's data chunk (after "data" and its size). */
static size_t wav_data_offset(const struct bytes *b)
{
    for (size_t i = 12; i + 8 <= b->n; i++)
        if (memcmp(b->p + i, "data", 4) == 0)
            return i + 8;
    TEST_FAIL("no data chunk");
    return 0;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static struct amuse_audio load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, AUDIO_DIR "%s", name);
    struct amuse_audio a;
    int rc = amuse_audio_load(path, NULL, &a);
    if (rc)
        TEST_FAIL("%s: %s (%s)", name, amuse_strerror(rc), amuse_last_error());
    return a;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static double rms(const float *a, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * a[i];
    return sqrt(s / (double)(n ? n : 1));
}

/* ---------------------------------------------------------------- formats */

TEST(reference_clip)
{
    struct amuse_audio a = load("speech16k.wav");
    ASSERT_EQ_INT(a.rate, 16000);
    ASSERT_EQ_INT(a.count, 8480); /* 0.53 s */
    ASSERT_STR_EQ(a.source.container, "WAV");
    ASSERT_STR_EQ(a.source.codec, "PCM 16-bit");
    ASSERT_EQ_INT(a.source.sample_rate, 16000);
    ASSERT_EQ_INT(a.source.channels, 1);
    ASSERT_EQ_INT(a.source.frames, 8480);
    ASSERT_NEAR(amuse_audio_seconds(&a), 0.53, 1e-9);
    /* Speech, not silence; the padding is digital silence. */
    ASSERT_TRUE(rms(a.samples, a.count) > 0.02);
    ASSERT_NEAR(max_abs_diff(a.samples, a.samples + 1, 700), 0, 0); /* first 44 ms are zeros */
    /* Values are the 16-bit samples / 32768. */
    struct bytes b = read_fixture("speech16k.wav");
    size_t off = wav_data_offset(&b);
    for (size_t i = 0; i < a.count; i += 97) {
        int16_t s = (int16_t)(b.p[off + 2 * i] | b.p[off + 2 * i + 1] << 8);
        ASSERT_NEAR(a.samples[i], s / 32768.0, 0);
    }
    free(b.p);
    amuse_audio_release(&a);
    amuse_audio_release(&a); /* twice is fine */
    amuse_audio_release(NULL);
}

/* Every encoding of the same clip decodes to the same samples (within its precision). */
TEST(encodings_agree)
{
    static const struct {
        const char *file, *container, *codec;
        double tolerance;
    } cases[] = {
        {"speech_pcm24.wav", "WAV", "PCM 24-bit", 1e-7},
        {"speech_pcm32.wav", "WAV", "PCM 32-bit", 1e-7},
        {"speech_float.wav", "WAV", "float 32-bit", 1e-7},
        {"speech_extensible.wav", "WAVEX", "PCM 24-bit", 1e-7},
        {"speech.flac", "FLAC", "FLAC 16-bit", 1e-7},
        {"speech_u8.wav", "WAV", "PCM 8-bit unsigned", 1.0 / 128 + 1e-6},
    };
    struct amuse_audio ref = load("speech16k.wav");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct amuse_audio a = load(cases[i].file);
        ASSERT_STR_EQ(a.source.container, cases[i].container);
        ASSERT_STR_EQ(a.source.codec, cases[i].codec);
        ASSERT_EQ_INT(a.count, ref.count);
        ASSERT_NEAR(max_abs_diff(a.samples, ref.samples, a.count), 0, cases[i].tolerance);
        amuse_audio_release(&a);
    }
    amuse_audio_release(&ref);
}

TEST(ogg_vorbis)
{
    struct amuse_audio ref = load("speech16k.wav");
    struct amuse_audio a = load("speech.ogg");
    ASSERT_STR_EQ(a.source.container, "Ogg");
    ASSERT_STR_EQ(a.source.codec, "Vorbis");
    ASSERT_EQ_INT(a.count, ref.count);
    /* Lossy: the error is small next to the signal (about -20 dB or better at quality 3). */
    float *err = malloc(a.count * sizeof *err);
    for (size_t i = 0; i < a.count; i++)
        err[i] = a.samples[i] - ref.samples[i];
    ASSERT_TRUE(rms(err, a.count) < 0.1 * rms(ref.samples, ref.count));
    free(err);
    amuse_audio_release(&a);
    amuse_audio_release(&ref);
}

/* espeak-ng --stdout cannot seek back, so its RIFF and data sizes say ~2 GB. */
TEST(espeak_stdout_sizes_lie)
{
    struct bytes b = read_fixture("espeak_stdout.wav");
    size_t off = wav_data_offset(&b);
    uint32_t declared =
        b.p[off - 4] | b.p[off - 3] << 8 | b.p[off - 2] << 16 | (uint32_t)b.p[off - 1] << 24;
    ASSERT_TRUE(declared > 0x70000000u); /* the fixture really lies */
    struct amuse_audio a;
    ASSERT_OK(amuse_audio_decode(b.p, b.n, "espeak", NULL, &a));
    ASSERT_EQ_INT(a.source.sample_rate, 22050);
    ASSERT_EQ_INT(a.source.frames, (int64_t)(b.n - off) / 2); /* the frames really there */
    ASSERT_NEAR((double)a.count, (double)a.source.frames * 16000 / 22050, 2);
    ASSERT_TRUE(rms(a.samples, a.count) > 0.02);
    amuse_audio_release(&a);
    free(b.p);
}

TEST(stereo_is_averaged)
{
    struct amuse_audio ref = load("speech16k.wav");
    struct amuse_audio a = load("stereo16k.wav"); /* left: the clip; right: silence */
    ASSERT_EQ_INT(a.source.channels, 2);
    ASSERT_EQ_INT(a.count, ref.count);
    for (size_t i = 0; i < a.count; i++)
        ASSERT_NEAR(a.samples[i], 0.5 * ref.samples[i], 1e-7);
    amuse_audio_release(&a);
    amuse_audio_release(&ref);
}

/* 8 kHz and 48 kHz stereo tones come out as the same tone made at 16 kHz. */
TEST(resampled_to_16k)
{
    struct amuse_audio ref = load("tone16k.wav");
    const char *files[] = {"tone8k.wav", "tone48k_stereo.wav"};
    const int rates[] = {8000, 48000};
    for (int f = 0; f < 2; f++) {
        struct amuse_audio a = load(files[f]);
        ASSERT_EQ_INT(a.source.sample_rate, rates[f]);
        ASSERT_EQ_INT(a.rate, 16000);
        ASSERT_NEAR((double)a.count, (double)ref.count, 1);
        /* Away from the ends (where the converter's filter sees the edge), sample by sample:
         * 16-bit quantisation at both rates plus the converter's error. */
        size_t n = a.count < ref.count ? a.count : ref.count;
        double err = max_abs_diff(a.samples + 320, ref.samples + 320, n - 640);
        ASSERT_TRUE(rms(ref.samples, ref.count) > 0.1);
        if (err > 2e-3)
            TEST_FAIL("%s: max error %g after resampling", files[f], err);
        amuse_audio_release(&a);
    }
    amuse_audio_release(&ref);
}

TEST(target_rate_option)
{
    struct amuse_audio_options o = {.target_rate = 8000};
    char path[] = AUDIO_DIR "speech16k.wav";
    struct amuse_audio a;
    ASSERT_OK(amuse_audio_load(path, &o, &a));
    ASSERT_EQ_INT(a.rate, 8000);
    ASSERT_NEAR((double)a.count, 4240, 1);
    amuse_audio_release(&a);
    o.target_rate = 100;
    ASSERT_FAILS(amuse_audio_load(path, &o, &a), AMUSE_EINVAL, "target rate 100 Hz");
    ASSERT_TRUE(a.samples == NULL);
}

/* ---------------------------------------------------------------- raw PCM */

TEST(raw_pcm)
{
    struct amuse_audio ref = load("speech16k.wav");
    struct bytes b = read_fixture("speech16k.wav");
    size_t off = wav_data_offset(&b);
    struct amuse_audio_options o = {.raw_rate = 16000};
    struct amuse_audio a;
    ASSERT_OK(amuse_audio_decode(b.p + off, b.n - off, "stdin", &o, &a));
    ASSERT_STR_EQ(a.source.container, "raw");
    ASSERT_EQ_INT(a.count, ref.count);
    ASSERT_NEAR(max_abs_diff(a.samples, ref.samples, a.count), 0, 0);
    amuse_audio_release(&a);
    /* A stream cut mid-sample: the partial frame is dropped. */
    ASSERT_OK(amuse_audio_decode(b.p + off, b.n - off - 1, "stdin", &o, &a));
    ASSERT_EQ_INT(a.count, ref.count - 1);
    amuse_audio_release(&a);
    /* Two interleaved channels at 8 kHz: half the frames, averaged pairs, then doubled rate. */
    o.raw_rate = 8000;
    o.raw_channels = 2;
    ASSERT_OK(amuse_audio_decode(b.p + off, b.n - off, "stdin", &o, &a));
    ASSERT_EQ_INT(a.source.frames, ref.count / 2);
    ASSERT_NEAR((double)a.count, (double)ref.count, 1);
    amuse_audio_release(&a);
    /* RIFF bytes read as raw are just numbers: no signature check in raw mode. */
    o.raw_channels = 1;
    ASSERT_FAILS(amuse_audio_decode(b.p, 1, "stdin", &o, &a), AMUSE_EFORMAT, "empty");
    /* One frame at 16 kHz is no sample at 8 kHz. */
    struct amuse_audio_options to8k = {.raw_rate = 16000, .target_rate = 8000};
    ASSERT_FAILS(amuse_audio_decode(b.p + off, 2, "stdin", &to8k, &a), AMUSE_EFORMAT,
                 "too short: 1 frames at 16000 Hz give no sample at 8000 Hz");
    o.raw_rate = 5;
    ASSERT_FAILS(amuse_audio_decode(b.p, b.n, "stdin", &o, &a), AMUSE_EINVAL, "raw rate 5 Hz");
    free(b.p);
    amuse_audio_release(&ref);
}

/* ---------------------------------------------------------------- bad input */

/* One Ogg page holding one packet (< 255 bytes), with the page CRC (polynomial 0x04c11db7,
 * as the Ogg spec says) so that libogg accepts it. Returns the page length. */
static size_t ogg_page(unsigned char *out, int bos, uint32_t serial, const void *packet, size_t n)
{
    memset(out, 0, 28);
    memcpy(out, "OggS", 4);
    out[5] = bos ? 0x02 : 0;
    put_le32(out + 14, serial);
    out[26] = 1;
    out[27] = (unsigned char)n;
    memcpy(out + 28, packet, n);
    uint32_t crc = 0;
    for (size_t i = 0; i < 28 + n; i++) {
        crc ^= (uint32_t)out[i] << 24;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x80000000u ? (crc << 1) ^ 0x04c11db7u : crc << 1;
    }
    put_le32(out + 22, crc);
    return 28 + n;
}

TEST(not_audio)
{
    struct amuse_audio a;
    const char text[] = "this is a text file, not a sound";
    ASSERT_FAILS(amuse_audio_decode(text, sizeof text - 1, "notes.txt", NULL, &a), AMUSE_EFORMAT,
                 "notes.txt: not audio");
    ASSERT_TRUE(a.samples == NULL && a.count == 0);
    ASSERT_FAILS(amuse_audio_decode("", 0, "empty.wav", NULL, &a), AMUSE_EFORMAT,
                 "empty.wav: empty (0 bytes)");
    const unsigned char mp3[] = {'I', 'D', '3', 4, 0, 0, 0, 0, 0, 0};
    ASSERT_FAILS(amuse_audio_decode(mp3, sizeof mp3, "song.mp3", NULL, &a), AMUSE_EUNSUPPORTED,
                 "MP3 is not supported");
    const unsigned char aiff[] = "FORM\0\0\0\x20"
                                 "AIFFCOMM";
    ASSERT_FAILS(amuse_audio_decode(aiff, sizeof aiff, "x.aiff", NULL, &a), AMUSE_EUNSUPPORTED,
                 "AIFF");
    ASSERT_FAILS(amuse_audio_load(AUDIO_DIR "missing.wav", NULL, &a), AMUSE_ENOTFOUND,
                 "missing.wav");
}

TEST(unsupported_codec)
{
    struct amuse_audio a;
    /* Two Ogg files back to back: a chained stream. */
    struct bytes b = read_fixture("speech.ogg");
    unsigned char *two = malloc(2 * b.n);
    memcpy(two, b.p, b.n);
    memcpy(two + b.n, b.p, b.n);
    ASSERT_FAILS(amuse_audio_decode(two, 2 * b.n, "chained.ogg", NULL, &a), AMUSE_EUNSUPPORTED,
                 "chained.ogg: Ogg: byte");
    /* Garbage between pages. */
    memset(two + b.n, 'x', 40);
    ASSERT_FAILS(amuse_audio_decode(two, 2 * b.n, "junk.ogg", NULL, &a), AMUSE_EFORMAT,
                 "expected a page (OggS)");
    free(two);
    free(b.p);
    /* Ogg/Opus, and an Ogg whose first packet is not Vorbis at all. */
    unsigned char page[300];
    const unsigned char opus[19] = "OpusHead\x01\x01\x38\x01\x80\x3e\0\0\0\0";
    size_t n = ogg_page(page, 1, 7, opus, sizeof opus);
    ASSERT_FAILS(amuse_audio_decode(page, n, "voice.opus", NULL, &a), AMUSE_EUNSUPPORTED,
                 "voice.opus: unsupported codec Opus in Ogg");
    n = ogg_page(page, 1, 7, "\x80theora", 7);
    ASSERT_FAILS(amuse_audio_decode(page, n, "video.ogv", NULL, &a), AMUSE_EUNSUPPORTED,
                 "the first packet is not a Vorbis header");
    /* A Vorbis file cut after its first header page. */
    struct bytes v = read_fixture("speech.ogg");
    size_t first = 27 + v.p[26] + v.p[27]; /* one segment in the identification page */
    ASSERT_FAILS(amuse_audio_decode(v.p, first, "cut.ogg", NULL, &a), AMUSE_EFORMAT,
                 "cut.ogg: Ogg: ends after 1 of the 3 Vorbis headers");
    free(v.p);
    ASSERT_FAILS(amuse_audio_load(AUDIO_DIR "speech_adpcm.wav", NULL, &a), AMUSE_EUNSUPPORTED,
                 "unsupported codec IMA ADPCM");
}

TEST(truncated)
{
    struct amuse_audio ref = load("speech16k.wav");
    struct bytes b = read_fixture("speech16k.wav");
    struct amuse_audio a;
    /* Cut inside the header. */
    for (size_t n = 4; n < 44; n += 7)
        ASSERT_FAILS(amuse_audio_decode(b.p, n, "cut.wav", NULL, &a), AMUSE_EFORMAT, "cut.wav");
    /* Header only, data size 0: empty. */
    unsigned char hdr[44];
    memcpy(hdr, b.p, 44);
    put_le32(hdr + 40, 0);
    put_le32(hdr + 4, 36);
    ASSERT_FAILS(amuse_audio_decode(hdr, 44, "header.wav", NULL, &a), AMUSE_EFORMAT, "empty");
    /* Cut in the middle of the data: the frames present, as with espeak's sizes. */
    ASSERT_OK(amuse_audio_decode(b.p, 44 + 2000, "half.wav", NULL, &a));
    ASSERT_EQ_INT(a.count, 1000);
    ASSERT_NEAR(max_abs_diff(a.samples, ref.samples, 1000), 0, 0);
    amuse_audio_release(&a);
    /* FLAC and Ogg cut in half: the frames that decode, or a clear error; never a crash. */
    const char *compressed[] = {"speech.flac", "speech.ogg"};
    for (int i = 0; i < 2; i++) {
        struct bytes c = read_fixture(compressed[i]);
        for (size_t n = 1; n < c.n; n = n * 2 + 3) {
            amuse_clear_error();
            int rc = amuse_audio_decode(c.p, n, compressed[i], NULL, &a);
            if (rc == AMUSE_OK) {
                ASSERT_TRUE(a.count <= ref.count);
                amuse_audio_release(&a);
            } else {
                ASSERT_TRUE(rc == AMUSE_EFORMAT);
                ASSERT_CONTAINS(amuse_last_error(), compressed[i]);
                ASSERT_TRUE(a.samples == NULL);
            }
        }
        free(c.p);
    }
    free(b.p);
    amuse_audio_release(&ref);
}

/* Silence is a sound (the models learn a _silence_ class): it decodes, to zeros. */
TEST(silent_file_decodes)
{
    struct bytes b = read_fixture("speech16k.wav");
    size_t off = wav_data_offset(&b);
    memset(b.p + off, 0, b.n - off);
    struct amuse_audio a;
    ASSERT_OK(amuse_audio_decode(b.p, b.n, "silent.wav", NULL, &a));
    ASSERT_EQ_INT(a.count, 8480);
    ASSERT_NEAR(rms(a.samples, a.count), 0, 0);
    amuse_audio_release(&a);
    free(b.p);
}

TEST(lying_fields)
{
    struct bytes b = read_fixture("speech16k.wav");
    unsigned char *p = malloc(b.n);
    struct amuse_audio a;
    /* Zero channels, zero rate, a 2 MHz rate, 300 channels. */
    memcpy(p, b.p, b.n);
    put_le16(p + 22, 0);
    ASSERT_FAILS(amuse_audio_decode(p, b.n, "ch0.wav", NULL, &a), AMUSE_EFORMAT, "ch0.wav");
    memcpy(p, b.p, b.n);
    put_le32(p + 24, 0);
    ASSERT_FAILS(amuse_audio_decode(p, b.n, "rate0.wav", NULL, &a), AMUSE_EFORMAT, "rate0.wav");
    memcpy(p, b.p, b.n);
    put_le32(p + 24, 2000000);
    put_le32(p + 28, 4000000);
    ASSERT_FAILS(amuse_audio_decode(p, b.n, "fast.wav", NULL, &a), AMUSE_EUNSUPPORTED,
                 "sample rate 2000000 Hz");
    memcpy(p, b.p, b.n);
    put_le16(p + 22, 300);
    put_le16(p + 32, 600);
    put_le32(p + 28, 16000 * 600);
    amuse_clear_error();
    int rc = amuse_audio_decode(p, b.n, "many.wav", NULL, &a);
    ASSERT_TRUE(rc == AMUSE_EFORMAT || rc == AMUSE_EUNSUPPORTED);
    ASSERT_CONTAINS(amuse_last_error(), "many.wav");
    /* A RIFF that is not WAVE. */
    memcpy(p, b.p, b.n);
    memcpy(p + 8, "AVI ", 4);
    ASSERT_FAILS(amuse_audio_decode(p, b.n, "movie.avi", NULL, &a), AMUSE_EUNSUPPORTED, "not WAVE");
    free(p);
    free(b.p);
}

TEST(caps_before_decoding)
{
    char path[] = AUDIO_DIR "speech16k.wav";
    struct amuse_audio a;
    struct amuse_audio_options o = {.max_bytes = 1000};
    ASSERT_FAILS(amuse_audio_load(path, &o, &a), AMUSE_ETOOBIG, "over the limit of 1000");
    o = (struct amuse_audio_options){.max_seconds = 0.25};
    ASSERT_FAILS(amuse_audio_load(path, &o, &a), AMUSE_ETOOBIG, "0.5 s (8480 frames at 16000 Hz)");
    /* Raw input has no header: its length is the byte count. */
    struct bytes b = read_fixture("speech16k.wav");
    o = (struct amuse_audio_options){.max_seconds = 0.25, .raw_rate = 16000};
    ASSERT_FAILS(amuse_audio_decode(b.p, b.n, "stdin", &o, &a), AMUSE_ETOOBIG,
                 "over the limit of 0.25 s");
    /* The duration claimed by the header counts, not the bytes: a WAV at 1000 Hz claiming the
     * same data is 8.5 s. */
    put_le32(b.p + 24, 1000);
    put_le32(b.p + 28, 2000);
    o = (struct amuse_audio_options){.max_seconds = 5};
    ASSERT_FAILS(amuse_audio_decode(b.p, b.n, "slow.wav", &o, &a), AMUSE_ETOOBIG,
                 "slow.wav: 8.5 s");
    free(b.p);
}

/* Float WAV with a NaN or infinity: rejected with the time; out of range: clipped. */
TEST(nan_and_range)
{
    struct bytes b = read_fixture("speech_float.wav");
    size_t off = wav_data_offset(&b);
    struct amuse_audio a;
    float v = NAN;
    memcpy(b.p + off + 4 * 4000, &v, 4);
    ASSERT_FAILS(amuse_audio_decode(b.p, b.n, "nan.wav", NULL, &a), AMUSE_EFORMAT,
                 "nan.wav: sample NaN at 0.250 s (frame 4000, channel 0)");
    v = -INFINITY;
    memcpy(b.p + off + 4 * 4000, &v, 4);
    ASSERT_FAILS(amuse_audio_decode(b.p, b.n, "inf.wav", NULL, &a), AMUSE_EFORMAT,
                 "sample infinite at 0.250 s");
    v = 3.5f;
    memcpy(b.p + off + 4 * 4000, &v, 4);
    v = -1e30f;
    memcpy(b.p + off + 4 * 4001, &v, 4);
    ASSERT_OK(amuse_audio_decode(b.p, b.n, "loud.wav", NULL, &a));
    ASSERT_NEAR(a.samples[4000], 1.0, 0);
    ASSERT_NEAR(a.samples[4001], -1.0, 0);
    amuse_audio_release(&a);
    free(b.p);
}

TEST(read_fd)
{
    int fd = open(AUDIO_DIR "speech.flac", O_RDONLY);
    ASSERT_TRUE(fd >= 0);
    struct amuse_audio a;
    ASSERT_OK(amuse_audio_read_fd(fd, "stdin", NULL, &a));
    ASSERT_EQ_INT(a.count, 8480);
    amuse_audio_release(&a);
    ASSERT_TRUE(lseek(fd, 0, SEEK_SET) == 0);
    struct amuse_audio_options o = {.max_bytes = 4096};
    ASSERT_FAILS(amuse_audio_read_fd(fd, "stdin", &o, &a), AMUSE_ETOOBIG,
                 "stdin: more than 4096 bytes");
    close(fd);
    /* A pipe that ends at once. */
    int p[2];
    ASSERT_TRUE(pipe(p) == 0);
    close(p[1]);
    ASSERT_FAILS(amuse_audio_read_fd(p[0], "stdin", NULL, &a), AMUSE_EFORMAT, "stdin: empty");
    close(p[0]);
}

/* ---------------------------------------------------------------- features */

static cJSON *load_reference(void)
{
    struct bytes b = read_fixture("speech16k_features.json");
    cJSON *doc = cJSON_ParseWithLength((const char *)b.p, b.n);
    free(b.p);
    if (!doc)
        TEST_FAIL("speech16k_features.json: invalid JSON");
    return doc;
}

/* The NumPy reference (float64) against ours (float32 FFT and sums). Tolerance: |ours - ref| <=
 * 1e-3 * (1 + |ref| / 100), i.e. 1e-3 absolute on log-mel values (natural log) and MFCCs of
 * ordinary size, and 1e-5 relative on the large MFCC 0 of near-silent frames. Measured:
 * about 5e-5 at worst (printed below). */
TEST(features_match_numpy)
{
    struct amuse_audio clip = load("speech16k.wav");
    cJSON *doc = load_reference();
    ASSERT_EQ_INT(cJSON_GetObjectItem(doc, "samples")->valueint, clip.count);
    const cJSON *c;
    int cases = 0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "cases"))
    {
        const char *name = cJSON_GetObjectItem(c, "name")->valuestring;
        char *opt_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "features"));
        struct amuse_audio_features_options o;
        ASSERT_OK(amuse_audio_features_parse(opt_json, strlen(opt_json), name, &o));
        free(opt_json);
        struct amuse_audio_frontend *fe;
        ASSERT_OK(amuse_audio_frontend_new(&o, &fe));
        int frames = cJSON_GetObjectItem(c, "frames")->valueint;
        int coefficients = cJSON_GetObjectItem(c, "coefficients")->valueint;
        ASSERT_EQ_INT(amuse_audio_frontend_frames(fe, clip.count), frames);
        ASSERT_EQ_INT(amuse_audio_frontend_coefficients(fe), coefficients);
        size_t n = (size_t)frames * (size_t)coefficients;
        float *out = malloc(n * sizeof *out);
        size_t got = 0;
        ASSERT_OK(amuse_audio_frontend_compute(fe, clip.samples, clip.count, out, n, &got));
        ASSERT_EQ_INT(got, frames);
        const cJSON *values = cJSON_GetObjectItem(c, "values");
        ASSERT_EQ_INT(cJSON_GetArraySize(values), n);
        double worst = 0;
        size_t worst_at = 0, i = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, values)
        {
            double d = fabs(out[i] - v->valuedouble) / (1.0 + 0.01 * fabs(v->valuedouble));
            if (d > worst) {
                worst = d;
                worst_at = i;
            }
            i++;
        }
        printf("     %s: %d x %d, worst difference %.2g at frame %zu coefficient %zu\n", name,
               frames, coefficients, worst, worst_at / (size_t)coefficients,
               worst_at % (size_t)coefficients);
        if (worst > 1e-3)
            TEST_FAIL("%s: frame %zu coefficient %zu: %g vs reference %g", name,
                      worst_at / (size_t)coefficients, worst_at % (size_t)coefficients,
                      out[worst_at], cJSON_GetArrayItem(values, (int)worst_at)->valuedouble);
        free(out);
        amuse_audio_frontend_free(fe);
        cases++;
    }
    ASSERT_EQ_INT(cases, 3);
    cJSON_Delete(doc);
    amuse_audio_release(&clip);
}

TEST(features_defaults_and_frames)
{
    struct amuse_audio_features_options o;
    amuse_audio_features_defaults(&o);
    ASSERT_OK(amuse_audio_features_check(&o));
    struct amuse_audio_frontend *fe;
    ASSERT_OK(amuse_audio_frontend_new(&o, &fe));
    ASSERT_EQ_INT(amuse_audio_frontend_window(fe), 480);
    ASSERT_EQ_INT(amuse_audio_frontend_stride(fe), 160);
    ASSERT_EQ_INT(amuse_audio_frontend_frames(fe, 16000), 98); /* speech_commands' 98 x 40 */
    ASSERT_EQ_INT(amuse_audio_frontend_coefficients(fe), 40);
    ASSERT_EQ_INT(amuse_audio_frontend_frames(fe, 479), 0);
    ASSERT_EQ_INT(amuse_audio_frontend_frames(fe, 480), 1);
    ASSERT_EQ_INT(amuse_audio_frontend_frames(fe, 639), 1);
    ASSERT_EQ_INT(amuse_audio_frontend_frames(fe, 640), 2);
    float x[640] = {0}, out[80];
    size_t frames = 99;
    ASSERT_OK(amuse_audio_frontend_compute(fe, x, 100, out, 80, &frames));
    ASSERT_EQ_INT(frames, 0);
    ASSERT_FAILS(amuse_audio_frontend_compute(fe, x, 640, out, 79, &frames), AMUSE_EINVAL,
                 "2 frames x 40 coefficients");
    /* Silence: every band at the floor, so MFCC 0 = sqrt(2/40) * 40 * log(1e-12), the rest 0. */
    ASSERT_OK(amuse_audio_frontend_compute(fe, x, 640, out, 80, &frames));
    ASSERT_NEAR(out[0], sqrt(2.0 / 40) * 40 * log(1e-12), 1e-3);
    for (int k = 1; k < 40; k++)
        ASSERT_NEAR(out[k], 0, 1e-3);
    amuse_audio_frontend_free(fe);
    amuse_audio_frontend_free(NULL);
}

/* Independent of the reference: a 1 kHz tone peaks in the band centred nearest 1 kHz. */
TEST(features_tone_peaks_in_its_band)
{
    struct amuse_audio_features_options o;
    ASSERT_OK(amuse_audio_features_parse("{\"type\": \"log_mel\"}", 19, "t", &o));
    ASSERT_EQ_INT(o.mfcc, 0);
    struct amuse_audio_frontend *fe;
    ASSERT_OK(amuse_audio_frontend_new(&o, &fe));
    float x[480], out[40];
    for (int i = 0; i < 480; i++)
        x[i] = 0.5f * (float)sin(2 * 3.14159265358979 * 1000.0 * i / 16000.0);
    ASSERT_OK(amuse_audio_frontend_compute(fe, x, 480, out, 40, NULL));
    int best = 0;
    for (int m = 1; m < 40; m++)
        if (out[m] > out[best])
            best = m;
    /* Centres: mel points 1..40 of 42 equally spaced from mel(20) to mel(4000). */
    double lo = 2595 * log10(1 + 20 / 700.0), hi = 2595 * log10(1 + 4000 / 700.0);
    int expect = 0;
    double nearest = 1e9;
    for (int m = 0; m < 40; m++) {
        double centre = 700 * (pow(10, (lo + (hi - lo) * (m + 1) / 41) / 2595) - 1);
        if (fabs(centre - 1000) < nearest) {
            nearest = fabs(centre - 1000);
            expect = m;
        }
    }
    ASSERT_EQ_INT(best, expect);
    amuse_audio_frontend_free(fe);
}

TEST(features_json_errors)
{
    struct amuse_audio_features_options o;
#define PARSE(s) amuse_audio_features_parse(s, strlen(s), "recipe.json: features", &o)
    ASSERT_FAILS(PARSE("{\"windw_ms\": 25}"), AMUSE_EINVAL,
                 "recipe.json: features: unknown key 'windw_ms'");
    ASSERT_EQ_INT(o.mel_bands, 40); /* the defaults on failure */
    ASSERT_FAILS(PARSE("{\"window_ms\": \"30\"}"), AMUSE_EINVAL,
                 "key 'window_ms': expected a number");
    ASSERT_FAILS(PARSE("{\"mel_bands\": 40.5}"), AMUSE_EINVAL,
                 "key 'mel_bands': expected an integer");
    ASSERT_FAILS(PARSE("{\"fft_size\": 500}"), AMUSE_EINVAL,
                 "recipe.json: features: key 'fft_size': 500 must be a power of two");
    ASSERT_FAILS(PARSE("{\"fft_size\": 256}"), AMUSE_EINVAL, "key 'fft_size'");
    ASSERT_FAILS(PARSE("{\"upper_hz\": 9000}"), AMUSE_EINVAL, "key 'upper_hz'");
    ASSERT_FAILS(PARSE("{\"type\": \"spectrogram\"}"), AMUSE_EINVAL,
                 "key 'type': unknown value 'spectrogram'");
    ASSERT_FAILS(PARSE("{\"spectrum\": 2}"), AMUSE_EINVAL, "key 'spectrum': expected a string");
    ASSERT_FAILS(PARSE("{\"mfcc\": 41}"), AMUSE_EINVAL, "key 'mfcc': 41 is outside");
    ASSERT_FAILS(PARSE("{\"type\": \"log_mel\", \"mfcc\": 13}"), AMUSE_EINVAL, "key 'mfcc'");
    ASSERT_FAILS(PARSE("{\"type\": \"mfcc\", \"mfcc\": 0}"), AMUSE_EINVAL, "key 'mfcc'");
    ASSERT_FAILS(PARSE("{\"log_floor\": 0}"), AMUSE_EINVAL, "key 'log_floor'");
    ASSERT_FAILS(PARSE("{\"window_ms\": 0.5}"), AMUSE_EINVAL, "key 'window_ms'");
    ASSERT_FAILS(PARSE("{\"stride_ms\": -1}"), AMUSE_EINVAL, "key 'stride_ms'");
    ASSERT_FAILS(PARSE("{\"mfcc\": 13,}"), AMUSE_EFORMAT, "recipe.json: features: invalid JSON");
    ASSERT_FAILS(PARSE("[1]"), AMUSE_EFORMAT, "must be a JSON object");
    /* Good: fewer bands alone keep every band as a coefficient; MFCC count given explicitly. */
    ASSERT_OK(PARSE("{\"mel_bands\": 20}"));
    ASSERT_EQ_INT(o.mfcc, 20);
    ASSERT_OK(PARSE("{\"sample_rate\": 8000, \"upper_hz\": 4000, \"mfcc\": 13, "
                    "\"spectrum\": \"power\"}"));
    ASSERT_EQ_INT(o.sample_rate, 8000);
    ASSERT_EQ_INT(o.mfcc, 13);
    ASSERT_EQ_INT(o.power, 1);
#undef PARSE
}

int main(void)
{
    RUN(reference_clip);
    RUN(encodings_agree);
    RUN(ogg_vorbis);
    RUN(espeak_stdout_sizes_lie);
    RUN(stereo_is_averaged);
    RUN(resampled_to_16k);
    RUN(target_rate_option);
    RUN(raw_pcm);
    RUN(not_audio);
    RUN(unsupported_codec);
    RUN(truncated);
    RUN(silent_file_decodes);
    RUN(lying_fields);
    RUN(caps_before_decoding);
    RUN(nan_and_range);
    RUN(read_fd);
    RUN(features_match_numpy);
    RUN(features_defaults_and_frames);
    RUN(features_tone_peaks_in_its_band);
    RUN(features_json_errors);
    return test_summary();
}
