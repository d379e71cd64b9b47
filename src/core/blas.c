/* blas.c - matrix products through OpenBLAS cblas_sgemm, and the naive reference kept for tests. */
#include "core/blas.h"

#include <cblas.h>

void am__sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void am__sgemm_rows(int rows, int m, int n, int k, float alpha, const float *a, int lda,
                    const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m > rows) {
        am__sgemm(0, 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    for (int i = 0; i < m; i++) /* y_i = B^T x_i: B is (k, n) row-major */
        cblas_sgemv(CblasRowMajor, CblasTrans, k, n, alpha, b, ldb, a + (size_t)i * lda, 1, beta,
                    c + (size_t)i * ldc, 1);
}

void am__sgemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++) {
                double x = trans_a ? a[p * lda + i] : a[i * lda + p];
                double y = trans_b ? b[j * ldb + p] : b[p * ldb + j];
                acc += x * y;
            }
            double prev = beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)(alpha * acc + prev);
        }
}
