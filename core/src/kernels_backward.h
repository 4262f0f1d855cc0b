/* kernels_backward.h - gradients of the operations between the AA-CLIP adapters and the losses
 * (internal). Conventions follow kernels.h: row-major, "rows x cols" above each kernel,
 * PyTorch weight layout [out, in], products through the backend (compute.h; NULL: the built-in
 * one). Unless stated otherwise
 * a kernel writes (not accumulates) its input gradient; weight gradients are accumulated
 * (+=) so several images or tokens add into one buffer. Frozen weights get no gradient.
 *
 * The scalar losses are evaluated and differentiated in double (their sums run over
 * hundreds of thousands of pixels); everything that touches the towers is float32. */
#ifndef AAC_KERNELS_BACKWARD_H
#define AAC_KERNELS_BACKWARD_H
#include <stddef.h>

#include "compute.h"


/* ---- linear layer without bias: y[M x N] = x[M x K] @ W[N x K]^T ---- */
/* dx[M x K] = dy @ W (beta = 0) or dx += dy @ W (beta = 1). */
void linear_backward_input(aac_compute *cx, int M, int N, int K, const float *dy, const float *W,
                           float *dx, float beta);
/* dW[N x K] += dy^T @ x. */
void linear_backward_weight(aac_compute *cx, int M, int N, int K, const float *dy, const float *x,
                            float *dW);

/* d[n] *= (x_pre > 0 ? 1 : slope): LeakyReLU (torch's backward: the slope at 0). */
void leaky_relu_backward(const float *x_pre, float *d, size_t n, float slope);
/* d[n] *= GELU'(u) (exact: Phi(u) + u phi(u)); QuickGELU: d *= s + 1.702 u s (1 - s). */
void gelu_backward(const float *u, float *d, size_t n);
void quick_gelu_backward(const float *u, float *d, size_t n);

/* LayerNorm with frozen weight w (eps 1e-5), input gradient only:
 * dx[rows x n] (=, or += when accumulate) from dy = dL/d(LN(x)). Statistics in double. */
void layernorm_backward(const float *x, const float *w, const float *dy, float *dx, int rows,
                        int n, int ld_x, int ld_dy, int ld_dx, int accumulate);

/* Row softmax, in place on dP: dS = P * (dP - sum_j P dP) (rows x n, row stride ld). */
void softmax_backward_rows(const float *P, float *dP, int rows, int n, int ld);

/* One attention head: o = softmax(scale q k^T [+ causal mask]) v with q, k, v, o [n x hw] at
 * row strides ldq (q, k, v share it) and ldo. From dO it writes dq, dk, dv (row stride ldd).
 * P, dP: attention_block_rows(n) x n scratch each (the probabilities are recomputed by blocks
 * of query rows). */
void attention_head_backward(aac_compute *cx, int n, int hw, float scale, int causal,
                             const float *q, const float *k, const float *v, int ldq,
                             const float *dO, int ldo, float *dq, float *dk, float *dv, int ldd,
                             float *P, float *dP);

/* AA-CLIP residual adapter mixing out = w * a * |x|/|a| + (1-w) x, a = LeakyReLU(x A^T)
 * (slope 0.01) on x [n x W]: dx = dL/dx from dout, dA [W x W] += dL/dA. scratch: 2 n W
 * floats. dx may alias dout. */
void adapter_mix_backward(aac_compute *cx, const float *x, int n, int width, const float *A, float weight,
                          const float *dout, float *dx, float *dA, float *scratch);

/* torch F.normalize(x, dim=-1) (eps 1e-12) on rows x n: y = x / max(|x|, eps);
 * dx = (dy - y (y . dy)) / |x| (dx = dy / eps below eps). dx may alias dy. */
void l2_normalize_backward(const float *x, const float *dy, float *dx, int rows, int n);

/* mean over rows of x [rows x n] -> [n]: dx[r] = dmean / rows (=, or += when accumulate). */
void token_mean_backward(const float *dmean, float *dx, int rows, int n, int accumulate);

/* Similarity s[Np x 2] = alpha * F[Np x E] @ T[E x 2]: dF = alpha ds T^T (= or += when
 * accumulate; dF may be NULL) and dT += alpha F^T ds (dT may be NULL). */
void similarity_backward(aac_compute *cx, const float *F, const float *T, const float *ds, int Np, int E,
                         float alpha, float *dF, float *dT, int accumulate);

/* Bilinear resize img [G x G] -> out [S x S] with align_corners=True (PyTorch arithmetic:
 * src = dst * (G-1)/(S-1) in float); the backward scatters dout [S x S] into dimg [G x G]
 * (= dimg, not +=). tmp: S * G floats. */
void bilinear_up_ac(const float *img, int G, int S, float *out);
void bilinear_up_ac_backward(const float *dout, int G, int S, float *dimg, float *tmp);

/* 2-way softmax per pixel: Q[c] = exp(u_c) / (exp(u_0) + exp(u_1)) in double, planes [2][n]
 * (double). dU from dQ (planes of n): du_c = Q_c (dq_c - Q_0 dq_0 - Q_1 dq_1). */
void softmax2(const double *u0, const double *u1, double *q0, double *q1, size_t n);
void softmax2_backward(const double *q0, const double *q1, const double *dq0, const double *dq1,
                       double *du0, double *du1, size_t n);

/* Focal loss of AA-CLIP (gamma 2, alpha 1, one-hot target clamped to [1e-5, 1-1e-5],
 * pt = sum(onehot * Q) + 1e-5, -(1 - pt)^2 log pt) for n pixels of one image, whose mean is
 * taken over `total` pixels (all images of the batch): returns this image's share of the loss
 * and adds its gradient to dq0, dq1 (may be NULL for the loss only). target: 0/1 mask. */
double focal_loss_fwd_bwd(const double *q0, const double *q1, const float *target, size_t n,
                          size_t total, double *dq0, double *dq1);
/* Dice loss (smooth 1) 1 - mean_batch((2 sum(q y) + 1) / (sum q + sum y + 1)) with y the mask
 * (invert = 0) or 1 - mask (invert = 1): returns this image's share (1 - r) / batch and adds
 * the gradient to dq (may be NULL). */
double dice_loss_fwd_bwd(const double *q, const float *mask, int invert, size_t n, int batch,
                         double *dq);
/* Cross-entropy of logits [B x C] against labels, mean over the batch; dlogits (may be NULL)
 * receives the gradient (=). */
double cross_entropy_fwd_bwd(const float *logits, const int *labels, int B, int C, float *dlogits);

/* The segmentation loss of one image for one level: logits s [Np x 2] (grid G x G, token
 * t = row t / G, column t % G) are upsampled (bilinear, align_corners) to S x S, softmaxed over
 * the 2 channels and scored against mask [S x S] (0/1) with focal + dice(normal, 1 - mask) +
 * dice(abnormal, mask); `batch` images share the mean. Returns this image's share of the loss
 * (the parts in parts[3] = focal, dice normal, dice abnormal when non-NULL) and writes
 * ds = dL/ds [Np x 2] scaled by `weight` (ds may be NULL). */
typedef struct seg_loss_scratch {
    double *u0, *u1, *q0, *q1, *d0, *d1; /* [S x S] each */
    float *up, *dup, *tmp, *grid;        /* [S x S], [S x S], [S x G], [G x G] */
    int S, G;
} seg_loss_scratch;
int seg_loss_scratch_init(seg_loss_scratch *s, int S, int G);
void seg_loss_scratch_free(seg_loss_scratch *s);
double seg_loss_image(const float *s, int G, int S, const float *mask, int batch, float weight,
                      float *ds, double parts[3], seg_loss_scratch *scr);
#endif
