/* kernels.h - the numerical building blocks of the towers (internal).
 * Shapes are row-major; "rows x cols" is written above each kernel. Matrix products go
 * through cblas_sgemm only (gemm_nt); everything else is a plain loop the compiler vectorises. */
#ifndef AAC_KERNELS_H
#define AAC_KERNELS_H
#include <stddef.h>

/* C[M x N] = alpha * A[M x K] @ B[N x K]^T + beta * C (lda/ldb/ldc: row strides).
 * The weight layout of PyTorch's Linear ([out, in]) is exactly B here. */
void gemm_nt(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc);
/* C[M x N] = alpha * A[M x K] @ B[K x N] + beta * C. */
void gemm_nn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc);

/* C[M x N] = alpha * A[K x M]^T @ B[K x N] + beta * C (weight gradients). */
void gemm_tn(int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc);
/* Makes OpenBLAS single-threaded and sets the OpenMP thread count (n <= 0: leave it).
 * Called once by the model constructors; the products are split by aaclip itself. */
void compute_threads_init(int n);
/* x[rows x n] += bias[n] (row broadcast). */
void add_bias(float *x, const float *bias, int rows, int n);
/* y[rows x n] = LayerNorm(x) * w + b, eps 1e-5 (y may equal x). */
void layernorm(const float *x, float *y, const float *w, const float *b, int rows, int n, int ld_x,
               int ld_y);
/* x[rows x n] = act(x + bias) in one pass; act 0 = none, 1 = exact GELU, 2 = QuickGELU. */
void bias_act(float *x, const float *bias, int rows, int n, int act);
/* In place, n elements. */
void gelu_exact(float *x, size_t n);
void quick_gelu(float *x, size_t n);
void leaky_relu(float *x, size_t n, float slope);
/* Row-wise softmax of x[rows x n] with row stride ld. causal_offset >= 0 masks columns
 * j > i + causal_offset in row i; pass -1 for no mask. */
void softmax_rows(float *x, int rows, int n, int ld, int causal_offset);
/* Each row of x[rows x n] divided by its L2 norm (torch F.normalize, eps 1e-12). */
void l2_normalize_rows(float *x, int rows, int n);
/* L2 norm of one row. */
float l2_norm(const float *x, int n);

/* Vectorisable expf / erff (max relative error a few ulp), exposed for the unit tests. */
void vexp(const float *x, float *y, size_t n);
void verf(const float *x, float *y, size_t n);
#endif
