/* test_idx.c - IDX files and datasets: the real Fashion-MNIST t10k files (facts of the dataset
 * computed once with Python's gzip module), truncated and corrupt gzip, lying dimensions, bad
 * headers, label checks, and dataset slicing. */
#include "amuse/data.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

#define FASHION "/usr/share/datasets/fashion-mnist/"
#define T10K_IMAGES FASHION "t10k-images-idx3-ubyte.gz"
#define T10K_LABELS FASHION "t10k-labels-idx1-ubyte.gz"
#define TRAIN_LABELS FASHION "train-labels-idx1-ubyte.gz"

static void temp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/tmp/amuse_test_%ld_%s", (long)getpid(), name);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        abort();
}

static void write_gzip(const char *path, const void *p, size_t n)
{
    gzFile g = gzopen(path, "wb");
    if (!g || gzwrite(g, p, (unsigned)n) != (int)n || gzclose(g) != Z_OK)
        abort();
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    if (!p || fread(p, 1, *n, f) != *n)
        abort();
    fclose(f);
    return p;
}

TEST(reads_the_real_t10k_files)
{
    struct amuse_idx labels, images;
    ASSERT_OK(amuse_idx_read(T10K_LABELS, &labels));
    ASSERT_EQ_INT(labels.shape.ndim, 1);
    ASSERT_EQ_INT(labels.shape.dim[0], 10000);
    const int first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++)
        ASSERT_EQ_INT(labels.data[i], first[i]);
    int counts[10] = {0};
    for (int i = 0; i < 10000; i++) {
        ASSERT_TRUE(labels.data[i] < 10);
        counts[labels.data[i]]++;
    }
    for (int c = 0; c < 10; c++)
        ASSERT_EQ_INT(counts[c], 1000); /* t10k is balanced: 1000 per class */
    amuse_idx_release(&labels);

    ASSERT_OK(amuse_idx_read(T10K_IMAGES, &images));
    ASSERT_EQ_INT(images.shape.ndim, 3);
    ASSERT_EQ_INT(images.shape.dim[0], 10000);
    ASSERT_EQ_INT(images.shape.dim[1], 28);
    ASSERT_EQ_INT(images.shape.dim[2], 28);
    long long first_sum = 0, total = 0;
    int lo = 255, hi = 0;
    for (size_t i = 0; i < (size_t)10000 * 784; i++) {
        total += images.data[i];
        if (images.data[i] < lo)
            lo = images.data[i];
        if (images.data[i] > hi)
            hi = images.data[i];
        if (i < 784)
            first_sum += images.data[i];
    }
    ASSERT_EQ_INT(first_sum, 33456);
    ASSERT_EQ_INT(total, 573469082);
    ASSERT_EQ_INT(lo, 0);
    ASSERT_EQ_INT(hi, 255);
    ASSERT_EQ_INT(images.data[(size_t)784 * 9999 + 14 * 28 + 14], 132);
    amuse_idx_release(&images);
    amuse_idx_release(&images); /* twice is harmless */
}

TEST(dataset_from_t10k_and_slices)
{
    struct amuse_dataset d, s;
    ASSERT_OK(amuse_dataset_load_idx(&d, T10K_IMAGES, T10K_LABELS, 10, 0));
    ASSERT_EQ_INT(d.n, 10000);
    ASSERT_EQ_INT(d.input[0].shape.ndim, 3);
    ASSERT_EQ_INT(d.input[0].shape.dim[0], 28);
    ASSERT_EQ_INT(d.input[0].shape.dim[1], 28);
    ASSERT_EQ_INT(d.input[0].shape.dim[2], 1);
    ASSERT_EQ_INT(d.n_classes, 10);
    double sum = 0;
    float lo = 1, hi = 0;
    for (size_t i = 0; i < 784; i++) {
        sum += d.input[0].f32[i];
        lo = d.input[0].f32[i] < lo ? d.input[0].f32[i] : lo;
        hi = d.input[0].f32[i] > hi ? d.input[0].f32[i] : hi;
    }
    ASSERT_NEAR(sum, 33456.0 / 255.0, 1e-3);
    ASSERT_TRUE(lo == 0.0f);
    ASSERT_TRUE(hi <= 1.0f);
    ASSERT_NEAR(d.input[0].f32[(size_t)784 * 9999 + 14 * 28 + 14], 132.0 / 255.0, 1e-7);
    ASSERT_EQ_INT(d.target.i32[0], 9);

    ASSERT_OK(amuse_dataset_slice(&s, &d, 2, 5));
    ASSERT_EQ_INT(s.n, 3);
    ASSERT_EQ_INT(s.target.i32[0], 1);
    ASSERT_EQ_INT(s.target.i32[2], 6);
    ASSERT_TRUE(memcmp(s.input[0].f32, d.input[0].f32 + 2 * 784, 3 * 784 * sizeof(float)) == 0);
    amuse_dataset_release(&s);
    ASSERT_FAILS(amuse_dataset_slice(&s, &d, 5, 10001), AMUSE_EINVAL, "10000-sample");
    /* Slicing in place keeps only the slice. */
    ASSERT_OK(amuse_dataset_slice(&d, &d, 9998, 10000));
    ASSERT_EQ_INT(d.n, 2);
    amuse_dataset_release(&d);

    ASSERT_OK(amuse_dataset_load_idx(&d, T10K_IMAGES, T10K_LABELS, 10, 7));
    ASSERT_EQ_INT(d.n, 7);
    ASSERT_EQ_INT(d.target.i32[6], 4);
    amuse_dataset_release(&d);
    amuse_dataset_release(NULL);
}

TEST(dataset_refuses_mismatches)
{
    struct amuse_dataset d;
    ASSERT_FAILS(amuse_dataset_load_idx(&d, T10K_IMAGES, TRAIN_LABELS, 10, 0), AMUSE_ESHAPE,
                 "10000 images but " TRAIN_LABELS " has 60000 labels");
    ASSERT_TRUE(d.input[0].f32 == NULL && d.n == 0);
    ASSERT_FAILS(amuse_dataset_load_idx(&d, T10K_IMAGES, T10K_LABELS, 5, 0), AMUSE_EFORMAT,
                 T10K_LABELS ": sample 0 (data byte 8): label 9 is not below n_classes 5");
    ASSERT_FAILS(amuse_dataset_load_idx(&d, T10K_LABELS, T10K_LABELS, 10, 0), AMUSE_EFORMAT,
                 "images must have 3 dimensions");
    ASSERT_FAILS(amuse_dataset_load_idx(&d, T10K_IMAGES, "/nonexistent/labels", 10, 0),
                 AMUSE_ENOTFOUND, "/nonexistent/labels");
}

TEST(truncated_and_corrupt_gzip)
{
    size_t n;
    unsigned char *gz = read_bytes(T10K_LABELS, &n);
    char path[256];
    struct amuse_idx idx;

    temp_path(path, sizeof path, "truncated.gz");
    write_bytes(path, gz, n / 2);
    char expect[400];
    snprintf(expect, sizeof expect, "%s: gzip stream is truncated: it ends at compressed byte %zu",
             path, n / 2);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, expect);
    ASSERT_TRUE(idx.data == NULL);
    /* Cut off only the 8-byte trailer (CRC and size): still truncated. */
    write_bytes(path, gz, n - 8);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "truncated");
    unlink(path);

    temp_path(path, sizeof path, "corrupt.gz");
    unsigned char *bad = malloc(n);
    memcpy(bad, gz, n);
    for (size_t i = n / 2; i < n / 2 + 16; i++)
        bad[i] ^= 0x5a;
    write_bytes(path, bad, n);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "corrupt gzip data near compressed");
    /* A wrong CRC alone is corruption too. */
    memcpy(bad, gz, n);
    bad[n - 8] ^= 1;
    write_bytes(path, bad, n);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "corrupt gzip");
    /* Garbage after the stream. */
    unsigned char *longer = malloc(n + 3);
    memcpy(longer, gz, n);
    memcpy(longer + n, "abc", 3);
    write_bytes(path, longer, n + 3);
    snprintf(expect, sizeof expect, "compressed byte %zu: 3 bytes of trailing data", n);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, expect);
    /* Two concatenated members are one valid gzip file: labels twice would have trailing data
     * for the IDX parser, so that is what must be reported. */
    unsigned char *twice = malloc(2 * n);
    memcpy(twice, gz, n);
    memcpy(twice + n, gz, n);
    write_bytes(path, twice, 2 * n);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT,
                 "decompressed byte 10008: 10008 trailing bytes after the data");
    unlink(path);
    free(twice);
    free(longer);
    free(bad);
    free(gz);
}

TEST(lying_headers)
{
    char path[256];
    struct amuse_idx idx;
    temp_path(path, sizeof path, "lying.idx");
    /* Declares 3 bytes of data, holds 2. */
    unsigned char one[] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 7};
    write_bytes(path, one, sizeof one);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT,
                 "file byte 10: truncated: the dimensions declare 3 data bytes from byte 8, but "
                 "only 2 are there");
    /* The same, gzip-compressed: offsets are in the decompressed stream. */
    temp_path(path, sizeof path, "lying.idx.gz");
    write_gzip(path, one, sizeof one);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "decompressed byte 10: truncated");
    unlink(path);
    temp_path(path, sizeof path, "lying.idx");
    /* Declares 1 byte, holds 2. */
    one[7] = 1;
    write_bytes(path, one, sizeof one);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "file byte 9: 1 trailing bytes");
    /* Declares 2^32-1 x 2^32-1: over the cap before anything is allocated. */
    unsigned char huge[] = {0, 0, 8, 2, 0, 1, 0, 0, 0, 1, 0, 0}; /* 65536 x 65536 */
    write_bytes(path, huge, sizeof huge);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_ETOOBIG,
                 "file byte 8: dimension 1 makes the data larger than 2147483648 bytes");
    /* Header cut inside the dimensions. */
    write_bytes(path, huge, 9);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "truncated in the dimensions");
    unsigned char magic[] = {1, 0, 8, 1, 0, 0, 0, 0};
    write_bytes(path, magic, sizeof magic);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "byte 0: bad magic 01 00 08 01");
    unsigned char f32[] = {0, 0, 0x0D, 1, 0, 0, 0, 0};
    write_bytes(path, f32, sizeof f32);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EUNSUPPORTED, "byte 2: IDX type 0x0d (float32)");
    f32[2] = 0x07;
    write_bytes(path, f32, sizeof f32);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "unknown IDX type 0x07");
    unsigned char nodim[] = {0, 0, 8, 0};
    write_bytes(path, nodim, sizeof nodim);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "byte 3: IDX file has 0 dimensions");
    nodim[3] = 9;
    write_bytes(path, nodim, sizeof nodim);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_ETOOBIG, "9 dimensions");
    write_bytes(path, nodim, 3);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_EFORMAT, "too short");
    /* A valid empty file: shape (0). */
    unsigned char empty[] = {0, 0, 8, 1, 0, 0, 0, 0};
    write_bytes(path, empty, sizeof empty);
    ASSERT_OK(amuse_idx_read(path, &idx));
    ASSERT_EQ_INT(idx.shape.dim[0], 0);
    amuse_idx_release(&idx);
    unlink(path);
    ASSERT_FAILS(amuse_idx_read(path, &idx), AMUSE_ENOTFOUND, path);
}

int main(void)
{
    RUN(reads_the_real_t10k_files);
    RUN(dataset_from_t10k_and_slices);
    RUN(dataset_refuses_mismatches);
    RUN(truncated_and_corrupt_gzip);
    RUN(lying_headers);
    return test_summary();
}
