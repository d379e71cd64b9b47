/* core/blas.h - the one place the library calls BLAS, plus a naive reference for tests.
 * Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T. */
#ifndef AMUSE_CORE_BLAS_H
#define AMUSE_CORE_BLAS_H

void am__sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/* C = alpha * A * B + beta * C (neither transposed) as m matrix-vector products when m <= rows,
 * else am__sgemm. sgemm packs B on every call, which for one row costs 4-6 times the product
 * itself (bench: 1 x 256 x 2,726 in 650 us against 100 us for sgemv); a few rows are faster one
 * by one. Each row's result then depends only on that row, not on m. rows 0: always sgemm. */
void am__sgemm_rows(int rows, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc);

/* Triple loop, accumulating in double. Slow and obviously right. */
void am__sgemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);

#endif
