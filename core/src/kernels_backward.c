/* kernels_backward.c - gradients of the AA-CLIP operations (see kernels_backward.h). */
#include "kernels_backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

void linear_backward_input(aac_compute *cx, int M, int N, int K, const float *dy, const float *W,
                           float *dx, float beta) {
    gemm_nn(cx, M, K, N, 1.0f, dy, N, W, K, beta, dx, K);
}

void linear_backward_weight(aac_compute *cx, int M, int N, int K, const float *dy, const float *x,
                            float *dW) {
    gemm_tn(cx, N, K, M, 1.0f, dy, N, x, K, 1.0f, dW, K);
}

void leaky_relu_backward(const float *x_pre, float *d, size_t n, float slope) {
    for (size_t i = 0; i < n; i++)
        if (!(x_pre[i] > 0.0f)) d[i] *= slope;
}

void gelu_backward(const float *u, float *d, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float x = u[i];
        const float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
        const float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
        d[i] *= cdf + x * pdf;
    }
}

void quick_gelu_backward(const float *u, float *d, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float x = u[i];
        const float s = 1.0f / (1.0f + expf(-1.702f * x));
        d[i] *= s + 1.702f * x * s * (1.0f - s);
    }
}

void layernorm_backward(const float *x, const float *w, const float *dy, float *dx, int rows,
                        int n, int ld_x, int ld_dy, int ld_dx, int accumulate) {
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ld_x, *gr = dy + (size_t)r * ld_dy;
        float *dr = dx + (size_t)r * ld_dx;
        double s = 0;
        for (int j = 0; j < n; j++) s += xr[j];
        const double mean = s / n;
        double v = 0;
        for (int j = 0; j < n; j++) {
            const double d = xr[j] - mean;
            v += d * d;
        }
        const double inv = 1.0 / sqrt(v / n + 1e-5);
        double a = 0, b = 0;
        for (int j = 0; j < n; j++) {
            const double g = (double)gr[j] * w[j];
            a += g;
            b += g * (xr[j] - mean) * inv;
        }
        a /= n;
        b /= n;
        for (int j = 0; j < n; j++) {
            const double g = (double)gr[j] * w[j], xh = (xr[j] - mean) * inv;
            const float val = (float)(inv * (g - a - xh * b));
            dr[j] = accumulate ? dr[j] + val : val;
        }
    }
}

void softmax_backward_rows(const float *P, float *dP, int rows, int n, int ld) {
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        const float *p = P + (size_t)r * ld;
        float *d = dP + (size_t)r * ld;
        double dot = 0;
        for (int j = 0; j < n; j++) dot += (double)p[j] * d[j];
        const float fd = (float)dot;
        for (int j = 0; j < n; j++) d[j] = p[j] * (d[j] - fd);
    }
}

void attention_head_backward(aac_compute *cx, int n, int hw, float scale, int causal,
                             const float *q, const float *k, const float *v, int ldq,
                             const float *dO, int ldo, float *dq, float *dk, float *dv, int ldd,
                             float *P, float *dP) {
    /* by blocks of query rows b (tiles P_b, dP_b of rows x keys): dv and dk sum the blocks'
     * contributions in block order */
    const int rows = attention_backward_block_rows(n);
    for (int r0 = 0; r0 < n; r0 += rows) {
        const int m = n - r0 < rows ? n - r0 : rows, keys = causal ? r0 + m : n;
        const float *qb = q + (size_t)r0 * ldq, *dOb = dO + (size_t)r0 * ldo;
        const float first = r0 == 0 ? 0.0f : 1.0f;
        if (causal && r0 > 0) { /* keys this block does not reach got nothing yet: zero them */
            for (int j = r0; j < r0 + m && j < n; j++)
                for (int d = 0; d < hw; d++) dv[(size_t)j * ldd + d] = dk[(size_t)j * ldd + d] = 0.0f;
        }
        gemm_nt(cx, m, keys, hw, scale, qb, ldq, k, ldq, 0.0f, P, keys);
        softmax_rows(P, m, keys, keys, causal ? r0 : -1);
        gemm_nt(cx, m, keys, hw, 1.0f, dOb, ldo, v, ldq, 0.0f, dP, keys);   /* dP_b = dO_b v^T */
        gemm_tn(cx, keys, hw, m, 1.0f, P, keys, dOb, ldo, first, dv, ldd);  /* dv += P_b^T dO_b */
        softmax_backward_rows(P, dP, m, keys, keys);                         /* dS_b */
        gemm_nn(cx, m, hw, keys, scale, dP, keys, k, ldq, 0.0f, dq + (size_t)r0 * ldd, ldd); /* dq_b */
        gemm_tn(cx, keys, hw, m, scale, dP, keys, qb, ldq, first, dk, ldd); /* dk += scale dS_b^T q_b */
    }
}

void adapter_mix_backward(aac_compute *cx, const float *x, int n, int width, const float *A, float weight,
                          const float *dout, float *dx, float *dA, float *scratch) {
    const int W = width;
    float *pre = scratch, *da = scratch + (size_t)n * W;
    gemm_nt(cx, n, W, W, 1.0f, x, W, A, W, 0.0f, pre, W);
#pragma omp parallel for schedule(static) if ((size_t)n * W > 65536)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * W, *pr = pre + (size_t)r * W, *g = dout + (size_t)r * W;
        float *dar = da + (size_t)r * W, *dxr = dx + (size_t)r * W;
        double sx = 0, sa = 0, ga = 0;
        for (int j = 0; j < W; j++) {
            const double a = pr[j] >= 0.0f ? pr[j] : pr[j] * 0.01f;
            sx += (double)xr[j] * xr[j];
            sa += a * a;
            ga += (double)g[j] * a;
        }
        const double nx = sqrt(sx), na = sqrt(sa);
        if (!(na > 0) || !(nx > 0)) { /* degenerate token: only the (1-w) x path */
            for (int j = 0; j < W; j++) {
                dxr[j] = (1.0f - weight) * g[j];
                dar[j] = 0.0f;
            }
            continue;
        }
        const double rr = nx / na, dr = weight * ga;
        const double ca = dr * nx / (na * na * na), cx = dr / (na * nx);
        for (int j = 0; j < W; j++) {
            const double a = pr[j] >= 0.0f ? pr[j] : pr[j] * 0.01f;
            double d = weight * rr * g[j] - ca * a;
            if (!(pr[j] > 0.0f)) d *= 0.01;
            dar[j] = (float)d;
            dxr[j] = (float)((1.0 - weight) * g[j] + cx * xr[j]);
        }
    }
    gemm_tn(cx, W, W, n, 1.0f, da, W, x, W, 1.0f, dA, W); /* dA += da_pre^T x */
    gemm_nn(cx, n, W, W, 1.0f, da, W, A, W, 1.0f, dx, W); /* dx += da_pre A */
}

void l2_normalize_backward(const float *x, const float *dy, float *dx, int rows, int n) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n, *g = dy + (size_t)r * n;
        float *d = dx + (size_t)r * n;
        double s = 0;
        for (int j = 0; j < n; j++) s += (double)xr[j] * xr[j];
        const double nrm = sqrt(s);
        if (!(nrm > 1e-12)) {
            for (int j = 0; j < n; j++) d[j] = (float)(g[j] / 1e-12);
            continue;
        }
        double dot = 0;
        for (int j = 0; j < n; j++) dot += (double)xr[j] * g[j];
        const double c = dot / (nrm * nrm);
        for (int j = 0; j < n; j++) d[j] = (float)((g[j] - xr[j] * c) / nrm);
    }
}

void token_mean_backward(const float *dmean, float *dx, int rows, int n, int accumulate) {
    const float inv = 1.0f / (float)rows;
    for (int r = 0; r < rows; r++) {
        float *d = dx + (size_t)r * n;
        for (int j = 0; j < n; j++) d[j] = accumulate ? d[j] + dmean[j] * inv : dmean[j] * inv;
    }
}

void similarity_backward(aac_compute *cx, const float *F, const float *T, const float *ds, int Np, int E,
                         float alpha, float *dF, float *dT, int accumulate) {
    if (dF) gemm_nt(cx, Np, E, 2, alpha, ds, 2, T, 2, accumulate ? 1.0f : 0.0f, dF, E);
    if (dT) gemm_tn(cx, E, 2, Np, alpha, F, E, ds, 2, 1.0f, dT, 2);
}

/* Source index and weights of output index o (PyTorch's align_corners=True arithmetic). */
static inline void src_index(int o, float scale, int G, int *i0, int *i1, float *l1) {
    const float s = scale * (float)o;
    int a = (int)s;
    if (a > G - 1) a = G - 1;
    *i0 = a;
    *i1 = a + 1 < G ? a + 1 : G - 1;
    *l1 = s - (float)a;
}

void bilinear_up_ac(const float *img, int G, int S, float *out) {
    const float scale = S > 1 ? (float)(G - 1) / (float)(S - 1) : 0.0f;
    for (int oy = 0; oy < S; oy++) {
        int y0, y1, x0, x1;
        float fy, fx;
        src_index(oy, scale, G, &y0, &y1, &fy);
        const float gy = 1.0f - fy;
        for (int ox = 0; ox < S; ox++) {
            src_index(ox, scale, G, &x0, &x1, &fx);
            const float gx = 1.0f - fx;
            out[(size_t)oy * S + ox] = gy * (gx * img[y0 * G + x0] + fx * img[y0 * G + x1]) +
                                       fy * (gx * img[y1 * G + x0] + fx * img[y1 * G + x1]);
        }
    }
}

void bilinear_up_ac_backward(const float *dout, int G, int S, float *dimg, float *tmp) {
    const float scale = S > 1 ? (float)(G - 1) / (float)(S - 1) : 0.0f;
    /* columns first: tmp[oy][gx] = sum_ox wx(ox, gx) dout[oy][ox] */
    memset(tmp, 0, sizeof(float) * (size_t)S * G);
    for (int oy = 0; oy < S; oy++) {
        float *t = tmp + (size_t)oy * G;
        const float *d = dout + (size_t)oy * S;
        for (int ox = 0; ox < S; ox++) {
            int x0, x1;
            float fx;
            src_index(ox, scale, G, &x0, &x1, &fx);
            t[x0] += (1.0f - fx) * d[ox];
            t[x1] += fx * d[ox];
        }
    }
    memset(dimg, 0, sizeof(float) * (size_t)G * G);
    for (int oy = 0; oy < S; oy++) {
        int y0, y1;
        float fy;
        src_index(oy, scale, G, &y0, &y1, &fy);
        const float *t = tmp + (size_t)oy * G;
        for (int gx = 0; gx < G; gx++) {
            dimg[y0 * G + gx] += (1.0f - fy) * t[gx];
            dimg[y1 * G + gx] += fy * t[gx];
        }
    }
}

void softmax2(const double *u0, const double *u1, double *q0, double *q1, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const double m = u0[i] > u1[i] ? u0[i] : u1[i];
        const double e0 = exp(u0[i] - m), e1 = exp(u1[i] - m), s = e0 + e1;
        q0[i] = e0 / s;
        q1[i] = e1 / s;
    }
}

void softmax2_backward(const double *q0, const double *q1, const double *dq0, const double *dq1,
                       double *du0, double *du1, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const double dot = q0[i] * dq0[i] + q1[i] * dq1[i];
        const double a = q0[i] * (dq0[i] - dot), b = q1[i] * (dq1[i] - dot);
        du0[i] = a;
        du1[i] = b;
    }
}

double focal_loss_fwd_bwd(const double *q0, const double *q1, const float *target, size_t n,
                          size_t total, double *dq0, double *dq1) {
    const double smooth = 1e-5, hi = 1.0 - 1e-5, inv = 1.0 / (double)total;
    double loss = 0;
    for (size_t i = 0; i < n; i++) {
        const int t = (long)target[i] != 0; /* torch: target.long() as the class index */
        const double qt = t ? q1[i] : q0[i], qo = t ? q0[i] : q1[i];
        const double pt = hi * qt + smooth * qo + smooth, lp = log(pt), om = 1.0 - pt;
        loss += -om * om * lp;
        if (dq0) {
            const double dpt = (2.0 * om * lp - om * om / pt) * inv;
            double *dt = t ? dq1 : dq0, *dother = t ? dq0 : dq1;
            dt[i] += hi * dpt;
            dother[i] += smooth * dpt;
        }
    }
    return loss * inv;
}

double dice_loss_fwd_bwd(const double *q, const float *mask, int invert, size_t n, int batch,
                         double *dq) {
    double sq = 0, sy = 0, sqy = 0;
    for (size_t i = 0; i < n; i++) {
        const double y = invert ? 1.0 - mask[i] : mask[i];
        sq += q[i];
        sy += y;
        sqy += q[i] * y;
    }
    const double num = 2.0 * sqy + 1.0, den = sq + sy + 1.0;
    if (dq) {
        const double c = -1.0 / ((double)batch * den * den);
        for (size_t i = 0; i < n; i++) {
            const double y = invert ? 1.0 - mask[i] : mask[i];
            dq[i] += c * (2.0 * y * den - num);
        }
    }
    return (1.0 - num / den) / batch;
}

double cross_entropy_fwd_bwd(const float *logits, const int *labels, int B, int C, float *dlogits) {
    double loss = 0;
    for (int b = 0; b < B; b++) {
        const float *l = logits + (size_t)b * C;
        double m = l[0];
        for (int c = 1; c < C; c++) m = l[c] > m ? l[c] : m;
        double s = 0;
        for (int c = 0; c < C; c++) s += exp(l[c] - m);
        const double lse = m + log(s);
        loss += lse - l[labels[b]];
        if (dlogits)
            for (int c = 0; c < C; c++)
                dlogits[(size_t)b * C + c] =
                    (float)((exp(l[c] - lse) - (c == labels[b] ? 1.0 : 0.0)) / B);
    }
    return loss / B;
}

int seg_loss_scratch_init(seg_loss_scratch *s, int S, int G) {
    memset(s, 0, sizeof *s);
    const size_t n = (size_t)S * S;
    s->S = S;
    s->G = G;
    s->u0 = malloc(sizeof(double) * n * 6);
    s->up = malloc(sizeof(float) * (2 * n + (size_t)S * G + (size_t)G * G));
    if (!s->u0 || !s->up) {
        seg_loss_scratch_free(s);
        return 0;
    }
    s->u1 = s->u0 + n;
    s->q0 = s->u1 + n;
    s->q1 = s->q0 + n;
    s->d0 = s->q1 + n;
    s->d1 = s->d0 + n;
    s->dup = s->up + n;
    s->tmp = s->dup + n;
    s->grid = s->tmp + (size_t)S * G;
    return 1;
}

void seg_loss_scratch_free(seg_loss_scratch *s) {
    free(s->u0);
    free(s->up);
    memset(s, 0, sizeof *s);
}

double seg_loss_image(const float *s, int G, int S, const float *mask, int batch, float weight,
                      float *ds, double parts[3], seg_loss_scratch *scr) {
    const size_t n = (size_t)S * S;
    const int Np = G * G;
    float *grid = scr->grid;
    for (int c = 0; c < 2; c++) {
        for (int t = 0; t < Np; t++) grid[t] = s[2 * t + c];
        bilinear_up_ac(grid, G, S, scr->up);
        double *u = c ? scr->u1 : scr->u0;
        for (size_t i = 0; i < n; i++) u[i] = scr->up[i];
    }
    softmax2(scr->u0, scr->u1, scr->q0, scr->q1, n);
    double *d0 = ds ? scr->d0 : NULL, *d1 = ds ? scr->d1 : NULL;
    if (ds) {
        memset(d0, 0, sizeof(double) * n);
        memset(d1, 0, sizeof(double) * n);
    }
    const double focal = focal_loss_fwd_bwd(scr->q0, scr->q1, mask, n, (size_t)batch * n, d0, d1);
    const double dn = dice_loss_fwd_bwd(scr->q0, mask, 1, n, batch, d0);
    const double da = dice_loss_fwd_bwd(scr->q1, mask, 0, n, batch, d1);
    if (parts) {
        parts[0] = focal;
        parts[1] = dn;
        parts[2] = da;
    }
    if (ds) {
        softmax2_backward(scr->q0, scr->q1, d0, d1, scr->u0, scr->u1, n);
        for (int c = 0; c < 2; c++) {
            const double *du = c ? scr->u1 : scr->u0;
            for (size_t i = 0; i < n; i++) scr->dup[i] = (float)(weight * du[i]);
            bilinear_up_ac_backward(scr->dup, G, S, grid, scr->tmp);
            for (int t = 0; t < Np; t++) ds[2 * t + c] = grid[t];
        }
    }
    return focal + dn + da;
}
