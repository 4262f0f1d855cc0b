/* kernels.h - the numerical building blocks of the towers (internal).
 * Shapes are row-major; "rows x cols" is written above each kernel. Matrix products go
 * through the selected backend (compute.h); everything else is a plain loop the compiler
 * vectorises. */
#ifndef AAC_KERNELS_H
#define AAC_KERNELS_H
#include <stddef.h>

#include "compute.h"

/* Multi-head attention by blocks of query rows (attention.c): out [n x heads*hw] (row stride
 * ldo), head h in columns h*hw.., = softmax(scale q k^T [+ causal mask]) v per head, where head
 * h of q, k, v [n x ...] (common row stride ld) starts at column h*hw. tiles: `slots` tiles of
 * attention_block_rows(n) x n floats (one per thread). */
int attention_block_rows(int n);
/* Query rows per block of the attention backward (kernels_backward.c): at most the forward's,
 * so the forward's tiles hold them. */
int attention_backward_block_rows(int n);
void attention_forward(aac_compute *cx, const float *q, const float *k, const float *v, int ld,
                       float *out, int ldo, int n, int heads, int hw, int causal, float scale,
                       float *tiles, int slots);
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
/* The softmax without its last pass: each row becomes exp(x - row max) (zeros where masked) and
 * inv[r] = 1 / its sum; the caller applies inv where that is cheaper (attention scales the
 * rows x hw output of the product with v instead of the rows x n probabilities). */
void softmax_rows_exp(float *x, int rows, int n, int ld, int causal_offset, float *inv);
/* The same with the portable loops only (the reference the unit tests hold the AVX-512 body to). */
void softmax_rows_exp_portable(float *x, int rows, int n, int ld, int causal_offset, float *inv);
/* Each row of x[rows x n] divided by its L2 norm (torch F.normalize, eps 1e-12). */
void l2_normalize_rows(float *x, int rows, int n);
/* L2 norm of one row. */
float l2_norm(const float *x, int n);

/* AVX-512 bodies (kernels_avx512.c), used when the CPU has AVX-512F. */
#if defined(__x86_64__) && defined(__GNUC__)
#define AAC_HAVE_AVX512 1
float softmax_row_exp_avx512(float *row, int len, int n);
#else
#define AAC_HAVE_AVX512 0
#endif

/* Vectorisable expf / erff (max relative error a few ulp), exposed for the unit tests. */
void vexp(const float *x, float *y, size_t n);
void verf(const float *x, float *y, size_t n);
#endif
