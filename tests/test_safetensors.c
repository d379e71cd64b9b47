/* test_safetensors.c - the safetensors reader and writer: a bit-exact round trip with metadata,
 * every malformed-file case the reader must refuse (status and message), and the F16/BF16/F64
 * conversions against hand-computed values. The independent Python reader is a separate test
 * (safetensors_independent_reader). */
#include "amuse/safetensors.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

/* Build a file image: 8-byte little-endian length, the header text as given, then data. */
static char *make_file(const char *header, const void *data, size_t data_len, size_t *len)
{
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    char *buf = malloc(*len + 1);
    if (!buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, header, hl);
    if (data_len)
        memcpy(buf + 8 + hl, data, data_len);
    return buf;
}

/* Parse a header + data and return the status; the message stays in amuse_last_error(). */
static int parse_header(const char *header, size_t data_len)
{
    static const unsigned char zeros[256];
    size_t len;
    char *buf = make_file(header, zeros, data_len, &len);
    struct amuse_safetensors st;
    int rc = amuse_safetensors_parse(&st, buf, len, "t.safetensors");
    if (rc == AMUSE_OK)
        amuse_safetensors_release(&st);
    else if (st.bytes || st.tensors || st.n_tensors) /* failure must leave st empty */
        rc = 12345;
    free(buf);
    return rc;
}

static void temp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/tmp/amuse_test_%ld_%s", (long)getpid(), name);
}

TEST(round_trip_is_bit_exact_with_metadata)
{
    char path[256];
    temp_path(path, sizeof path, "rt.safetensors");
    float a[6] = {1.0f, -0.0f, 3.5e-42f /* subnormal */, INFINITY, -2.25f, 1e30f};
    uint32_t nan_bits = 0x7fc01234u;
    memcpy(&a[3], &nan_bits, 4); /* a NaN with a payload must survive */
    float b[3] = {0.1f, 0.2f, 0.3f};
    struct amuse_st_entry e[3] = {
        {"dense/kernel", {2, {2, 3}}, a},
        {"dense/bias", {1, {3}}, b},
        {"empty", {2, {0, 4}}, NULL},
    };
    const char *keys[] = {"format", "quote\"d"};
    const char *values[] = {"pt", "line\nbreak \xc3\xa9"};
    ASSERT_OK(amuse_safetensors_write(path, e, 3, keys, values, 2));

    struct amuse_safetensors st;
    ASSERT_OK(amuse_safetensors_load(&st, path, 0));
    ASSERT_EQ_INT(st.n_tensors, 3);
    /* Header length is a multiple of 8 and the metadata comes first. */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | (unsigned char)st.bytes[i];
    ASSERT_EQ_INT(hl % 8, 0);
    ASSERT_TRUE(strncmp(st.bytes + 8, "{\"__metadata__\":", 16) == 0);
    ASSERT_EQ_INT(st.len, 8 + hl + 36);
    /* Tensors come back in the order of their offsets, which is the written order. */
    ASSERT_STR_EQ(st.tensors[0].name, "dense/kernel");
    ASSERT_STR_EQ(st.tensors[1].name, "dense/bias");
    const struct amuse_st_tensor *k = amuse_safetensors_find(&st, "dense/kernel");
    ASSERT_TRUE(k != NULL);
    ASSERT_STR_EQ(k->dtype, "F32");
    ASSERT_EQ_INT(k->shape.ndim, 2);
    ASSERT_EQ_INT(k->shape.dim[1], 3);
    ASSERT_EQ_INT(k->begin, 0);
    ASSERT_EQ_INT(k->end, 24);
    float out[6];
    ASSERT_OK(amuse_safetensors_to_f32(k, out));
    ASSERT_TRUE(memcmp(out, a, sizeof a) == 0);
    const struct amuse_st_tensor *bias = amuse_safetensors_find(&st, "dense/bias");
    ASSERT_OK(amuse_safetensors_to_f32(bias, out));
    ASSERT_TRUE(memcmp(out, b, sizeof b) == 0);
    const struct amuse_st_tensor *empty = amuse_safetensors_find(&st, "empty");
    ASSERT_TRUE(empty != NULL);
    ASSERT_EQ_INT(empty->begin, 36);
    ASSERT_EQ_INT(empty->end, 36);
    ASSERT_TRUE(amuse_safetensors_find(&st, "missing") == NULL);
    ASSERT_STR_EQ(amuse_safetensors_metadata(&st, "format"), "pt");
    ASSERT_STR_EQ(amuse_safetensors_metadata(&st, "quote\"d"), "line\nbreak \xc3\xa9");
    ASSERT_TRUE(amuse_safetensors_metadata(&st, "absent") == NULL);

    /* Parsing the same bytes from memory gives the same result. */
    struct amuse_safetensors st2;
    ASSERT_OK(amuse_safetensors_parse(&st2, st.bytes, st.len, "copy"));
    ASSERT_EQ_INT(st2.n_tensors, 3);
    ASSERT_EQ_INT(st2.n_metadata, 2);
    amuse_safetensors_release(&st2);
    amuse_safetensors_release(&st);
    amuse_safetensors_release(&st); /* releasing twice is harmless */
    unlink(path);
}

TEST(writer_refuses_bad_names)
{
    char path[256];
    temp_path(path, sizeof path, "bad.safetensors");
    float v[1] = {1};
    struct amuse_st_entry dup[2] = {{"w", {1, {1}}, v}, {"w", {1, {1}}, v}};
    ASSERT_FAILS(amuse_safetensors_write(path, dup, 2, NULL, NULL, 0), AMUSE_EINVAL, "'w'");
    struct amuse_st_entry meta[1] = {{"__metadata__", {1, {1}}, v}};
    ASSERT_FAILS(amuse_safetensors_write(path, meta, 1, NULL, NULL, 0), AMUSE_EINVAL,
                 "__metadata__");
    const char *keys[] = {"k", "k"}, *values[] = {"a", "b"};
    ASSERT_FAILS(amuse_safetensors_write(path, NULL, 0, keys, values, 2), AMUSE_EINVAL, "'k'");
    ASSERT_TRUE(access(path, F_OK) != 0); /* nothing was written */
}

TEST(valid_files_in_any_offset_order)
{
    /* Offsets need not follow header order; zero-size tensors may sit anywhere. */
    ASSERT_OK(parse_header("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                           "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                           "\"z\":{\"dtype\":\"I64\",\"shape\":[0,3],\"data_offsets\":[4,4]}}  ",
                           8));
    ASSERT_OK(parse_header("{}", 0));
    ASSERT_OK(parse_header("{\"__metadata__\":{}}", 0));
    /* A scalar (shape []) holds one element. */
    ASSERT_OK(parse_header("{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8));
}

TEST(malformed_files_are_refused_with_the_place)
{
    struct amuse_safetensors st;
    ASSERT_FAILS(amuse_safetensors_parse(&st, "1234567", 7, "short.st"), AMUSE_EFORMAT,
                 "short.st: file is 7 bytes");

    /* Header length beyond the file, and beyond the cap. */
    unsigned char hdr[16] = {0xff, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    ASSERT_FAILS(amuse_safetensors_parse(&st, hdr, 10, "x"), AMUSE_EFORMAT, "header length 255");
    unsigned char big[16] = {0, 0, 0, 0x10, 0, 0, 0, 0}; /* 256 MiB */
    ASSERT_FAILS(amuse_safetensors_parse(&st, big, 16, "x"), AMUSE_ETOOBIG, "over the limit");
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80}; /* 2^63 */
    ASSERT_FAILS(amuse_safetensors_parse(&st, huge, 16, "x"), AMUSE_ETOOBIG, "over the limit");

    ASSERT_EQ_INT(parse_header(" {}", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "does not start with '{'");
    ASSERT_EQ_INT(parse_header("", 0), AMUSE_EFORMAT);
    ASSERT_EQ_INT(parse_header("{\"a\":", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "t.safetensors: header is not valid JSON (parser stopped at byte 13)");
    ASSERT_EQ_INT(parse_header("{} x", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "byte 11: unexpected data after");
    ASSERT_EQ_INT(parse_header("{\"\xff\":1}", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "byte 10: header is not valid UTF-8");
    ASSERT_EQ_INT(parse_header("[1]", 0), AMUSE_EFORMAT);

#define ENTRY(body) "{\"w\":{" body "}}"
    ASSERT_EQ_INT(parse_header("{\"w\":3}", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': entry is not a JSON object");
    ASSERT_EQ_INT(parse_header(ENTRY("\"shape\":[1],\"data_offsets\":[0,4]"), 4), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': missing field 'dtype'");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]"), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': field 'dtype' is not a string");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"data_offsets\":[0,4]"), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': missing field 'shape'");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]"), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': field 'shape' is not an array");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[1]"), 4), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': missing field 'data_offsets'");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0\""), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': field 'data_offsets' is not an array");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]"), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': shape[0] is not a non-negative integer");
    ASSERT_EQ_INT(
        parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,4]"), 4),
        AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': shape[1] is not a non-negative integer");
    ASSERT_EQ_INT(
        parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]"), 8),
        AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': data_offsets has 3 values");
    ASSERT_EQ_INT(
        parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]"), 4),
        AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': data_offsets are not non-negative");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F4\",\"shape\":[1],\"data_offsets\":[0,4]"), 4),
                  AMUSE_EUNSUPPORTED);
    ASSERT_CONTAINS(amuse_last_error(), "t.safetensors: tensor 'w': unknown dtype 'F4'");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]"), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': data_offsets [4, 0) end before begin");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]"), 4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': data_offsets [0, 4) hold 4 bytes but shape "
                                        "and dtype F32 need 8");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[9007199254740992,"
                                     "9007199254740992],\"data_offsets\":[0,4]"),
                               4),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "need more than");
    ASSERT_EQ_INT(parse_header(ENTRY("\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]"), 8),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': data_offsets [0, 12) run past the end of "
                                        "the 8-byte data buffer");
    ASSERT_EQ_INT(parse_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                               "\"data_offsets\":[0,4]}}",
                               4),
                  AMUSE_ETOOBIG);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'w': shape has 9 dimensions");
#undef ENTRY

    /* Overlap, hole, trailing data, duplicate names. */
    ASSERT_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                               12),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(),
                    "tensor 'b': data_offsets [4, 12) overlap tensor 'a' [0, 8)");
    ASSERT_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                               12),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "data buffer bytes [4, 8)");
    ASSERT_CONTAINS(amuse_last_error(), "hole before tensor 'b'");
    ASSERT_EQ_INT(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                               8),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "data buffer bytes [0, 4)");
    const char *trail = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    ASSERT_EQ_INT(parse_header(trail, 6), AMUSE_EFORMAT);
    /* 4 covered bytes, 6 in the buffer: file bytes [8 + header + 4, 8 + header + 6). */
    char expect[128];
    snprintf(expect, sizeof expect, "data buffer bytes [4, 6) (file bytes [%zu, %zu)) after",
             8 + strlen(trail) + 4, 8 + strlen(trail) + 6);
    ASSERT_CONTAINS(amuse_last_error(), expect);
    ASSERT_EQ_INT(parse_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                               "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                               2),
                  AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "tensor 'a' appears twice");

    /* Metadata must be an object of strings. */
    ASSERT_EQ_INT(parse_header("{\"__metadata__\":{\"epochs\":3}}", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "metadata 'epochs': value is not a string");
    ASSERT_EQ_INT(parse_header("{\"__metadata__\":[]}", 0), AMUSE_EFORMAT);
    ASSERT_CONTAINS(amuse_last_error(), "'__metadata__' is not a JSON object");
}

TEST(load_names_the_file)
{
    char path[256];
    temp_path(path, sizeof path, "broken.safetensors");
    FILE *f = fopen(path, "wb");
    ASSERT_TRUE(f != NULL);
    fwrite("\x02\0\0\0\0\0\0\0{x", 1, 10, f);
    fclose(f);
    struct amuse_safetensors st;
    char expect[400];
    snprintf(expect, sizeof expect, "%s: header is not valid JSON (parser stopped at byte", path);
    ASSERT_FAILS(amuse_safetensors_load(&st, path, 0), AMUSE_EFORMAT, expect);
    ASSERT_FAILS(amuse_safetensors_load(&st, path, 4), AMUSE_ETOOBIG, path);
    unlink(path);
    ASSERT_FAILS(amuse_safetensors_load(&st, path, 0), AMUSE_ENOTFOUND, path);
}

static float bits_to_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

TEST(half_precision_conversions)
{
    /* F16 test values, little-endian, with their exact float values. */
    static const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                   0x8000, 0x7C00, 0xFC00, 0x3555, 0x7E00, 0x8001};
    const float want[] = {1.0f,
                          -2.0f,
                          65504.0f,
                          0x1p-24f,            /* smallest subnormal */
                          1023.0f * 0x1p-24f,  /* largest subnormal */
                          0x1p-14f,            /* smallest normal */
                          -0.0f,
                          INFINITY,
                          -INFINITY,
                          0.333251953125f,
                          NAN,
                          -0x1p-24f};
    const int n = (int)(sizeof f16 / sizeof f16[0]);
    unsigned char data[64];
    for (int i = 0; i < n; i++) {
        data[2 * i] = (unsigned char)(f16[i] & 0xff);
        data[2 * i + 1] = (unsigned char)(f16[i] >> 8);
    }
    char header[128];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]}}", n, 2 * n);
    size_t len;
    char *buf = make_file(header, data, (size_t)(2 * n), &len);
    struct amuse_safetensors st;
    ASSERT_OK(amuse_safetensors_parse(&st, buf, len, "f16"));
    float out[16];
    ASSERT_OK(amuse_safetensors_to_f32(&st.tensors[0], out));
    for (int i = 0; i < n; i++) {
        if (isnan(want[i])) {
            ASSERT_TRUE(isnan(out[i]));
        } else {
            ASSERT_TRUE(out[i] == want[i]);
            ASSERT_EQ_INT(signbit(out[i]) != 0, signbit(want[i]) != 0);
        }
    }
    amuse_safetensors_release(&st);
    free(buf);

    /* BF16 is the top half of a float32. */
    static const uint16_t bf16[] = {0x3F80, 0x4049, 0xFF80, 0x0001, 0xC2F7};
    const float bwant[] = {1.0f, 3.140625f, -INFINITY, bits_to_float(0x00010000u), -123.5f};
    for (int i = 0; i < 5; i++) {
        data[2 * i] = (unsigned char)(bf16[i] & 0xff);
        data[2 * i + 1] = (unsigned char)(bf16[i] >> 8);
    }
    buf = make_file("{\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[0,10]}}", data,
                    10, &len);
    ASSERT_OK(amuse_safetensors_parse(&st, buf, len, "bf16"));
    ASSERT_OK(amuse_safetensors_to_f32(&st.tensors[0], out));
    for (int i = 0; i < 5; i++)
        ASSERT_TRUE(out[i] == bwant[i]);
    amuse_safetensors_release(&st);
    free(buf);

    /* F64: rounded to nearest float; out of range becomes infinity, not undefined behaviour. */
    const double dv[3] = {0.1, -1e300, 1e-300};
    for (int i = 0; i < 3; i++) {
        uint64_t b;
        memcpy(&b, &dv[i], 8);
        for (int k = 0; k < 8; k++)
            data[8 * i + k] = (unsigned char)(b >> (8 * k));
    }
    buf = make_file("{\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]}}", data,
                    24, &len);
    ASSERT_OK(amuse_safetensors_parse(&st, buf, len, "f64"));
    ASSERT_OK(amuse_safetensors_to_f32(&st.tensors[0], out));
    ASSERT_TRUE(out[0] == 0.1f);
    ASSERT_TRUE(out[1] == -INFINITY);
    ASSERT_TRUE(out[2] == 0.0f);
    amuse_safetensors_release(&st);
    free(buf);

    /* Integer tensors are not converted. */
    buf = make_file("{\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", data, 4,
                    &len);
    ASSERT_OK(amuse_safetensors_parse(&st, buf, len, "i32"));
    ASSERT_FAILS(amuse_safetensors_to_f32(&st.tensors[0], out), AMUSE_EUNSUPPORTED, "'i'");
    amuse_safetensors_release(&st);
    free(buf);
}

int main(void)
{
    RUN(round_trip_is_bit_exact_with_metadata);
    RUN(writer_refuses_bad_names);
    RUN(valid_files_in_any_offset_order);
    RUN(malformed_files_are_refused_with_the_place);
    RUN(load_names_the_file);
    RUN(half_precision_conversions);
    return test_summary();
}
