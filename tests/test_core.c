/* test_core.c - tensors, shapes, the RNG, the GEMM wrapper against its reference, errors, files. */
#include "amuse/data.h"
#include "amuse/error.h"
#include "amuse/rng.h"
#include "amuse/runtime.h"
#include "amuse/tensor.h"
#include "core/blas.h"
#include "core/internal.h"
#include "test.h"

#include <unistd.h>

TEST(shape_size_and_format)
{
    struct amuse_shape s;
    int64_t dims[] = {26, 26, 32};
    char buf[64];
    ASSERT_OK(amuse_shape_make(&s, 3, dims));
    ASSERT_EQ_INT(amuse_shape_size(&s), 26 * 26 * 32);
    ASSERT_STR_EQ(amuse_shape_format(&s, 1, buf, sizeof buf), "(None, 26, 26, 32)");
    ASSERT_STR_EQ(amuse_shape_format(&s, 0, buf, sizeof buf), "(26, 26, 32)");
    int64_t bad[] = {-1};
    ASSERT_FAILS(amuse_shape_make(&s, 1, bad), AMUSE_EINVAL, "negative");
    int64_t huge[] = {INT64_MAX / 2, 4};
    ASSERT_OK(amuse_shape_make(&s, 2, huge));
    ASSERT_EQ_INT(amuse_shape_size(&s), -1);
}

TEST(rng_is_deterministic_and_uniform)
{
    struct amuse_rng a, b;
    amuse_rng_seed(&a, 42);
    amuse_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++)
        ASSERT_EQ_INT(amuse_rng_next(&a), amuse_rng_next(&b));
    amuse_rng_seed(&b, 43);
    ASSERT_TRUE(amuse_rng_next(&a) != amuse_rng_next(&b));
    /* Mean and variance of 100k uniforms and normals. */
    double s = 0, s2 = 0, ns = 0, ns2 = 0;
    int n = 100000, counts[7] = {0};
    for (int i = 0; i < n; i++) {
        float u = amuse_rng_uniform(&a);
        ASSERT_TRUE(u >= 0.0f && u < 1.0f);
        s += u;
        s2 += u * u;
        float g = amuse_rng_normal(&a);
        ns += g;
        ns2 += g * g;
        counts[amuse_rng_below(&a, 7)]++;
    }
    ASSERT_NEAR(s / n, 0.5, 0.01);
    ASSERT_NEAR(s2 / n - 0.25, 1.0 / 12.0, 0.01);
    ASSERT_NEAR(ns / n, 0.0, 0.02);
    ASSERT_NEAR(ns2 / n, 1.0, 0.02);
    for (int i = 0; i < 7; i++)
        ASSERT_NEAR(counts[i] / (double)n, 1.0 / 7.0, 0.01);
}

TEST(shuffle_is_a_permutation)
{
    struct amuse_rng r;
    amuse_rng_seed(&r, 7);
    int64_t idx[1000];
    int seen[1000] = {0};
    for (int i = 0; i < 1000; i++)
        idx[i] = i;
    amuse_rng_shuffle(&r, idx, 1000);
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 1000; i++)
        ASSERT_EQ_INT(seen[i], 1);
    ASSERT_TRUE(moved > 900);
}

TEST(sgemm_matches_reference_in_all_transpositions)
{
    struct amuse_rng r;
    amuse_rng_seed(&r, 1);
    enum { M = 37, N = 29, K = 53 };
    static float a[M * K], b[K * N], c1[M * N], c2[M * N];
    for (int i = 0; i < M * K; i++)
        a[i] = amuse_rng_normal(&r);
    for (int i = 0; i < K * N; i++)
        b[i] = amuse_rng_normal(&r);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            for (int i = 0; i < M * N; i++)
                c1[i] = c2[i] = amuse_rng_normal(&r);
            int lda = ta ? M : K, ldb = tb ? K : N;
            am__sgemm(ta, tb, M, N, K, 0.5f, a, lda, b, ldb, 0.25f, c1, N);
            am__sgemm_reference(ta, tb, M, N, K, 0.5f, a, lda, b, ldb, 0.25f, c2, N);
            for (int i = 0; i < M * N; i++)
                ASSERT_NEAR(c1[i], c2[i], 1e-4 * (1 + fabs(c2[i])));
        }
}

/* Row by row (am__sgemm_rows): the reference's result for every m on either side of the
 * switch, with strided rows as the recurrent layers pass them; and a row's result is the same
 * bits whatever m is, as long as the products stay row by row. */
TEST(sgemm_rows_matches_reference_and_rows_do_not_mix)
{
    struct amuse_rng r;
    amuse_rng_seed(&r, 2);
    enum { M = 6, N = 45, K = 33, LDA = K + 7, LDC = N + 5 };
    static float a[M * LDA], b[K * N], c1[M * LDC], c2[M * LDC], one[LDC];
    for (int i = 0; i < M * LDA; i++)
        a[i] = amuse_rng_normal(&r);
    for (int i = 0; i < K * N; i++)
        b[i] = amuse_rng_normal(&r);
    for (int m = 1; m <= M; m++)
        for (int beta = 0; beta < 2; beta++) {
            for (int i = 0; i < M * LDC; i++)
                c1[i] = c2[i] = amuse_rng_normal(&r);
            am__sgemm_rows(4, m, N, K, 0.5f, a, LDA, b, N, (float)beta, c1, LDC);
            am__sgemm_reference(0, 0, m, N, K, 0.5f, a, LDA, b, N, (float)beta, c2, LDC);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < N; j++) {
                    double want = c2[i * LDC + j];
                    ASSERT_NEAR(c1[i * LDC + j], want, 1e-4 * (1 + fabs(want)));
                }
        }
    am__sgemm_rows(4, 4, N, K, 1.0f, a, LDA, b, N, 0.0f, c1, LDC);
    am__sgemm_rows(4, 1, N, K, 1.0f, a + 3 * LDA, LDA, b, N, 0.0f, one, LDC);
    ASSERT_TRUE(memcmp(one, c1 + 3 * LDC, N * sizeof(float)) == 0);
}

TEST(errors_have_names_and_messages)
{
    ASSERT_STR_EQ(amuse_strerror(AMUSE_OK), "success");
    ASSERT_STR_EQ(amuse_strerror(AMUSE_EFORMAT), "malformed input");
    ASSERT_STR_EQ(amuse_strerror(AMUSE_EBUSY), "busy; retry later");
    ASSERT_STR_EQ(amuse_strerror(-999), "unknown error");
    ASSERT_EQ_INT(am__fail(AMUSE_EFORMAT, "byte %d is bad", 12), AMUSE_EFORMAT);
    am__fail_prefix(AMUSE_EFORMAT, "%s", "file.bin");
    ASSERT_STR_EQ(amuse_last_error(), "file.bin: byte 12 is bad");
}

TEST(atomic_write_replaces_whole_file)
{
    char path[] = "/tmp/amuse-test-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_TRUE(fd >= 0);
    close(fd);
    ASSERT_OK(am__write_file_atomic(path, "hello", 5));
    char *data;
    size_t len;
    ASSERT_OK(am__read_file(path, 100, &data, &len));
    ASSERT_EQ_INT(len, 5);
    ASSERT_STR_EQ(data, "hello");
    free(data);
    ASSERT_FAILS(am__read_file(path, 3, &data, &len), AMUSE_ETOOBIG, "over the limit");
    unlink(path);
    ASSERT_FAILS(am__read_file(path, 100, &data, &len), AMUSE_ENOTFOUND, path);
    ASSERT_FAILS(am__write_file_atomic("/nonexistent-dir/x", "a", 1), AMUSE_EIO, "cannot create");
}

TEST(dataset_built_by_the_caller)
{
    struct amuse_shape sample, none;
    int64_t dims[3] = {2, 3, 1};
    ASSERT_OK(amuse_shape_make(&sample, 3, dims));
    ASSERT_OK(amuse_shape_make(&none, 0, dims));
    struct amuse_dataset d = {0};
    d.n = 4;
    d.n_inputs = 1;
    d.n_classes = 10;
    ASSERT_OK(amuse_array_alloc(&d.input[0], "pixels", AMUSE_FLOAT32, &sample, 4));
    ASSERT_OK(amuse_array_alloc(&d.target, NULL, AMUSE_INT32, &none, 4));
    ASSERT_STR_EQ(d.input[0].name, "pixels");
    for (int i = 0; i < 24; i++) {
        ASSERT_NEAR(d.input[0].f32[i], 0, 0); /* zero-filled */
        d.input[0].f32[i] = (float)i;
    }
    for (int i = 0; i < 4; i++)
        d.target.i32[i] = 9 - i;
    struct amuse_dataset part;
    ASSERT_OK(amuse_dataset_slice(&part, &d, 1, 3));
    ASSERT_EQ_INT(part.n, 2);
    ASSERT_NEAR(part.input[0].f32[0], 6, 0);
    ASSERT_EQ_INT(part.target.i32[1], 7);
    amuse_dataset_release(&part);
    amuse_dataset_release(&d);
    ASSERT_TRUE(d.input[0].f32 == NULL && d.target.i32 == NULL && d.n == 0);
    struct amuse_array a;
    ASSERT_OK(amuse_array_alloc(&a, NULL, AMUSE_INT32, &sample, 0)); /* empty is fine */
    ASSERT_TRUE(a.i32 != NULL && a.f32 == NULL);
    struct amuse_dataset holder = {0};
    holder.target = a;
    amuse_dataset_release(&holder);
    ASSERT_FAILS(amuse_array_alloc(&a, NULL, AMUSE_FLOAT32, &sample, (int64_t)1 << 40), AMUSE_ETOOBIG,
                 "over 2^31 elements");
    ASSERT_TRUE(a.f32 == NULL);
}

TEST(buffer_escaper_and_clock)
{
    struct am__buf b = {0};
    am__buf_json_string(&b, "a\"b\\c\n\x01\xc3\xa9");
    ASSERT_STR_EQ(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\xc3\xa9\"");
    am__buf_printf(&b, " %d", 42);
    am__buf_float(&b, 0.1f);
    ASSERT_CONTAINS(b.data, " 420.100000001");
    ASSERT_EQ_INT(b.failed, 0);
    am__buf_release(&b);
    /* a cap: an append past it fails the buffer once and for all, saying ETOOBIG */
    struct am__buf c = {.max = 8};
    am__buf_puts(&c, "12345678");
    ASSERT_EQ_INT(c.failed, 0);
    am__buf_puts(&c, "9");
    ASSERT_EQ_INT(c.failed, AMUSE_ETOOBIG);
    am__buf_puts(&c, "");
    ASSERT_STR_EQ(c.data, "12345678");
    am__buf_release(&c);
    double t0 = am__now(), t1 = am__now();
    ASSERT_TRUE(t0 > 0 && t1 >= t0);
}

TEST(blas_coretype_recommendation)
{
    const char *avx512 = "avx512f avx512bw avx512vl avx512dq avx2 fma";
    ASSERT_STR_EQ(amuse_blas_recommended_coretype("Prescott", avx512), "SkylakeX");
    ASSERT_STR_EQ(amuse_blas_recommended_coretype("Prescott", "avx2 fma"), "Haswell");
    ASSERT_TRUE(amuse_blas_recommended_coretype("Prescott", "sse3") == NULL);
    ASSERT_TRUE(amuse_blas_recommended_coretype("Zen", avx512) == NULL);
    ASSERT_TRUE(amuse_blas_recommended_coretype("SkylakeX", avx512) == NULL);
    /* A partial AVX-512 set is not enough for the SkylakeX kernels. */
    ASSERT_STR_EQ(amuse_blas_recommended_coretype("Prescott", "avx512f avx2 fma"), "Haswell");
    ASSERT_TRUE(amuse_blas_core() != NULL);
}

int main(void)
{
    RUN(shape_size_and_format);
    RUN(rng_is_deterministic_and_uniform);
    RUN(shuffle_is_a_permutation);
    RUN(sgemm_matches_reference_in_all_transpositions);
    RUN(sgemm_rows_matches_reference_and_rows_do_not_mix);
    RUN(errors_have_names_and_messages);
    RUN(atomic_write_replaces_whole_file);
    RUN(dataset_built_by_the_caller);
    RUN(buffer_escaper_and_clock);
    RUN(blas_coretype_recommendation);
    return test_summary();
}
