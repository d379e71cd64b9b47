/* core/blas.h - the one place the library calls BLAS, plus a naive reference for tests.
 * Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T. */
#ifndef AMUSE_CORE_BLAS_H
#define AMUSE_CORE_BLAS_H

void am__sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc);

/* Triple loop, accumulating in double. Slow and obviously right. */
void am__sgemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);

#endif
