/* test_backward.c - every backward kernel against a double-precision reference: central finite
 * differences of a naive double forward (nonlinear kernels) or the naive analytic product
 * (linear ones); the block backward by finite differences of a naive double block; and both
 * training stages end to end on a small random model (directional derivatives of the loss).
 * Self-contained: needs nothing from ../shared. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_train.h"
#include "kernels.h"
#include "kernels_backward.h"
#include "model.h"
#include "safetensors.h"
#include "testutil.h"
#include "train_internal.h"

/* ---------------------------------------------------------------- helpers */
static uint64_t g_rng = 12345;
static double urand(void) { /* [0, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(g_rng >> 11) * (1.0 / 9007199254740992.0);
}
static float frand(float a) { return (float)(a * (2.0 * urand() - 1.0)); }
static float *frandv(size_t n, float a) {
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = frand(a);
    return p;
}
static double *todouble(const float *x, size_t n) {
    double *d = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

static void expect_close(const char *what, const float *got, const double *ref, size_t n,
                         double tol) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = got[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    const double e = den > 0 ? sqrt(num / den) : sqrt(num);
    printf("  %-44s rel err %.3g\n", what, e);
    CHECK(e <= tol && e == e, "%s: relative error %g > %g", what, e, tol);
}

/* Central differences of f at x (modified in place and restored), into g. */
typedef double (*scalar_fn)(void *ctx);
static void fd_grad(double *x, size_t n, scalar_fn f, void *ctx, double *g) {
    for (size_t i = 0; i < n; i++) {
        const double x0 = x[i], h = 1e-5 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        const double fp = f(ctx);
        x[i] = x0 - h;
        const double fm = f(ctx);
        x[i] = x0;
        g[i] = (fp - fm) / (2 * h);
    }
}

/* ---------------------------------------------------------------- naive double forwards */
static void ln_d(const double *x, double *y, const float *w, const float *b, int n) {
    double s = 0, v = 0;
    for (int j = 0; j < n; j++) s += x[j];
    const double mu = s / n;
    for (int j = 0; j < n; j++) v += (x[j] - mu) * (x[j] - mu);
    const double inv = 1.0 / sqrt(v / n + 1e-5);
    for (int j = 0; j < n; j++) y[j] = (x[j] - mu) * inv * w[j] + (b ? b[j] : 0.0);
}
static double act_d(double x, int act) {
    if (act == 2) return x / (1 + exp(-1.702 * x));
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}
static double leaky_d(double x) { return x >= 0 ? x : 0.01 * x; }
static void softmax_d(double *x, int n, int len) {
    double m = x[0];
    for (int j = 0; j < len; j++) m = x[j] > m ? x[j] : m;
    double s = 0;
    for (int j = 0; j < len; j++) s += (x[j] = exp(x[j] - m));
    for (int j = 0; j < len; j++) x[j] /= s;
    for (int j = len; j < n; j++) x[j] = 0;
}
/* o [n x hw] = softmax(scale q k^T [causal]) v, all contiguous [n x hw]. */
static void attn_d(const double *q, const double *k, const double *v, double *o, int n, int hw,
                   double scale, int causal, int ldq, int ldo) {
    double *row = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int c = 0; c < hw; c++) s += q[i * ldq + c] * k[j * ldq + c];
            row[j] = scale * s;
        }
        softmax_d(row, n, causal ? i + 1 : n);
        for (int c = 0; c < hw; c++) {
            double s = 0;
            for (int j = 0; j < n; j++) s += row[j] * v[j * ldq + c];
            o[i * ldo + c] = s;
        }
    }
    free(row);
}
static void mix_d(const double *x, double *y, const double *A, int n, int W, double w) {
    double *a = malloc(sizeof(double) * W);
    for (int r = 0; r < n; r++) {
        const double *xr = x + r * W;
        double nx = 0, na = 0;
        for (int i = 0; i < W; i++) {
            double s = 0;
            for (int j = 0; j < W; j++) s += xr[j] * A[i * W + j];
            a[i] = leaky_d(s);
            na += a[i] * a[i];
            nx += xr[i] * xr[i];
        }
        nx = sqrt(nx), na = sqrt(na);
        for (int i = 0; i < W; i++) y[r * W + i] = w * a[i] * nx / na + (1 - w) * xr[i];
    }
    free(a);
}
static void block_d(const block_weights *bw, const double *x, double *y, int n, int W, int heads,
                    int causal, int act) {
    const int W3 = 3 * W, W4 = 4 * W, hw = W / heads;
    double *h = malloc(sizeof(double) * n * W), *qkv = malloc(sizeof(double) * n * W3);
    double *o = malloc(sizeof(double) * n * W), *x2 = malloc(sizeof(double) * n * W);
    double *u = malloc(sizeof(double) * n * W4);
    for (int r = 0; r < n; r++) ln_d(x + r * W, h + r * W, bw->ln1_w, bw->ln1_b, W);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < W3; i++) {
            double s = bw->in_b[i];
            for (int j = 0; j < W; j++) s += h[r * W + j] * bw->in_w[i * W + j];
            qkv[r * W3 + i] = s;
        }
    for (int hd = 0; hd < heads; hd++)
        attn_d(qkv + hd * hw, qkv + W + hd * hw, qkv + 2 * W + hd * hw, o + hd * hw, n, hw,
               1.0 / sqrt((double)hw), causal, W3, W);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < W; i++) {
            double s = bw->out_b[i];
            for (int j = 0; j < W; j++) s += o[r * W + j] * bw->out_w[i * W + j];
            x2[r * W + i] = x[r * W + i] + s;
        }
    for (int r = 0; r < n; r++) ln_d(x2 + r * W, h + r * W, bw->ln2_w, bw->ln2_b, W);
    for (int r = 0; r < n; r++)
        for (int i = 0; i < W4; i++) {
            double s = bw->fc_b[i];
            for (int j = 0; j < W; j++) s += h[r * W + j] * bw->fc_w[i * W + j];
            u[r * W4 + i] = act_d(s, act);
        }
    for (int r = 0; r < n; r++)
        for (int i = 0; i < W; i++) {
            double s = bw->pj_b[i];
            for (int j = 0; j < W4; j++) s += u[r * W4 + j] * bw->pj_w[i * W4 + j];
            y[r * W + i] = x2[r * W + i] + s;
        }
    free(h), free(qkv), free(o), free(x2), free(u);
}

/* ---------------------------------------------------------------- kernel tests */
static void test_linear(void) {
    const int M = 130, N = 100, K = 80; /* large enough for the threaded row split */
    float *x = frandv((size_t)M * K, 1), *W = frandv((size_t)N * K, 1), *dy = frandv((size_t)M * N, 1);
    float *dx = malloc(sizeof(float) * M * K), *dW = calloc((size_t)N * K, sizeof(float));
    double *rx = calloc((size_t)M * K, sizeof(double)), *rW = calloc((size_t)N * K, sizeof(double));
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++)
            for (int k = 0; k < K; k++) {
                rx[m * K + k] += (double)dy[m * N + n] * W[n * K + k];
                rW[n * K + k] += (double)dy[m * N + n] * x[m * K + k];
            }
    linear_backward_input(NULL, M, N, K, dy, W, dx, 0.0f);
    linear_backward_weight(NULL, M, N, K, dy, x, dW);
    expect_close("linear dX", dx, rx, (size_t)M * K, 1e-5);
    expect_close("linear dW", dW, rW, (size_t)N * K, 1e-5);
    linear_backward_weight(NULL, M, N, K, dy, x, dW); /* accumulates */
    for (size_t i = 0; i < (size_t)N * K; i++) rW[i] *= 2;
    expect_close("linear dW accumulated", dW, rW, (size_t)N * K, 1e-5);
    free(x), free(W), free(dy), free(dx), free(dW), free(rx), free(rW);
}

typedef struct ew_ctx { double *x, *r; size_t n; int kind; } ew_ctx;
static double ew_f(void *c) {
    ew_ctx *e = c;
    double s = 0;
    for (size_t i = 0; i < e->n; i++) {
        const double v = e->kind == 0 ? leaky_d(e->x[i]) : act_d(e->x[i], e->kind);
        s += e->r[i] * v;
    }
    return s;
}
static void test_elementwise(void) {
    const size_t n = 200;
    const char *names[] = {"LeakyReLU", "GELU (exact)", "QuickGELU"};
    for (int kind = 0; kind < 3; kind++) {
        float *x = frandv(n, 4), *d = frandv(n, 1);
        for (size_t i = 0; i < n; i++)
            if (fabsf(x[i]) < 1e-3f) x[i] = 0.5f; /* keep off the LeakyReLU kink */
        ew_ctx c = {todouble(x, n), todouble(d, n), n, kind};
        double *g = malloc(sizeof(double) * n);
        fd_grad(c.x, n, ew_f, &c, g);
        if (kind == 0) leaky_relu_backward(x, d, n, 0.01f);
        else if (kind == 1) gelu_backward(x, d, n);
        else quick_gelu_backward(x, d, n);
        expect_close(names[kind], d, g, n, 1e-5);
        free(x), free(d), free(c.x), free(c.r), free(g);
    }
}

typedef struct ln_ctx { double *x, *r; const float *w, *b; int rows, n; } ln_ctx;
static double ln_f(void *c) {
    ln_ctx *e = c;
    double s = 0, *y = malloc(sizeof(double) * e->n);
    for (int r = 0; r < e->rows; r++) {
        ln_d(e->x + r * e->n, y, e->w, e->b, e->n);
        for (int j = 0; j < e->n; j++) s += e->r[r * e->n + j] * y[j];
    }
    free(y);
    return s;
}
static void test_layernorm(void) {
    const int rows = 4, n = 24;
    float *x = frandv(rows * n, 2), *w = frandv(n, 1), *b = frandv(n, 1), *dy = frandv(rows * n, 1);
    for (int r = 0; r < rows * n; r++) x[r] += (float)(r % n) * 0.1f;
    ln_ctx c = {todouble(x, rows * n), todouble(dy, rows * n), w, b, rows, n};
    double *g = malloc(sizeof(double) * rows * n);
    fd_grad(c.x, rows * n, ln_f, &c, g);
    float *dx = malloc(sizeof(float) * rows * n);
    layernorm_backward(x, w, dy, dx, rows, n, n, n, n, 0);
    expect_close("LayerNorm dX", dx, g, rows * n, 1e-5);
    for (int i = 0; i < rows * n; i++) dx[i] = 1.0f;
    layernorm_backward(x, w, dy, dx, rows, n, n, n, n, 1);
    for (int i = 0; i < rows * n; i++) g[i] += 1.0;
    expect_close("LayerNorm dX accumulated", dx, g, rows * n, 1e-5);
    free(x), free(w), free(b), free(dy), free(c.x), free(c.r), free(g), free(dx);
}

typedef struct sm_ctx { double *x, *r; int rows, n; } sm_ctx;
static double sm_f(void *c) {
    sm_ctx *e = c;
    double s = 0, *y = malloc(sizeof(double) * e->n);
    for (int r = 0; r < e->rows; r++) {
        memcpy(y, e->x + r * e->n, sizeof(double) * e->n);
        softmax_d(y, e->n, e->n);
        for (int j = 0; j < e->n; j++) s += e->r[r * e->n + j] * y[j];
    }
    free(y);
    return s;
}
static void test_softmax(void) {
    const int rows = 3, n = 9;
    float *x = frandv(rows * n, 3), *dy = frandv(rows * n, 1), *P = malloc(sizeof(float) * rows * n);
    memcpy(P, x, sizeof(float) * rows * n);
    softmax_rows(P, rows, n, n, -1);
    sm_ctx c = {todouble(x, rows * n), todouble(dy, rows * n), rows, n};
    double *g = malloc(sizeof(double) * rows * n);
    fd_grad(c.x, rows * n, sm_f, &c, g);
    softmax_backward_rows(P, dy, rows, n, n);
    expect_close("softmax rows", dy, g, rows * n, 1e-5);
    free(x), free(dy), free(P), free(c.x), free(c.r), free(g);
}

typedef struct at_ctx { double *qkv, *r; int n, hw, causal; double scale; } at_ctx;
static double at_f(void *c) {
    at_ctx *e = c;
    const int n = e->n, hw = e->hw;
    double *o = malloc(sizeof(double) * n * hw), s = 0;
    attn_d(e->qkv, e->qkv + hw, e->qkv + 2 * hw, o, n, hw, e->scale, e->causal, 3 * hw, hw);
    for (int i = 0; i < n * hw; i++) s += e->r[i] * o[i];
    free(o);
    return s;
}
static void test_attention(void) {
    const int n = 7, hw = 5;
    for (int causal = 0; causal <= 1; causal++) {
        float *qkv = frandv((size_t)n * 3 * hw, 1), *dO = frandv((size_t)n * hw, 1);
        float *dqkv = malloc(sizeof(float) * n * 3 * hw), *P = malloc(sizeof(float) * attention_block_rows(n) * n),
              *dP = malloc(sizeof(float) * attention_block_rows(n) * n);
        at_ctx c = {todouble(qkv, n * 3 * hw), todouble(dO, n * hw), n, hw, causal, 0.7};
        double *g = malloc(sizeof(double) * n * 3 * hw);
        fd_grad(c.qkv, (size_t)n * 3 * hw, at_f, &c, g);
        attention_head_backward(NULL, n, hw, 0.7f, causal, qkv, qkv + hw, qkv + 2 * hw, 3 * hw, dO, hw,
                                dqkv, dqkv + hw, dqkv + 2 * hw, 3 * hw, P, dP);
        expect_close(causal ? "attention head (causal) dq,dk,dv" : "attention head dq,dk,dv", dqkv,
                     g, (size_t)n * 3 * hw, 1e-5);
        free(qkv), free(dO), free(dqkv), free(P), free(dP), free(c.qkv), free(c.r), free(g);
    }
}

typedef struct mx_ctx { double *x, *A, *r; int n, W; double w; } mx_ctx;
static double mx_f(void *c) {
    mx_ctx *e = c;
    double *y = malloc(sizeof(double) * e->n * e->W), s = 0;
    mix_d(e->x, y, e->A, e->n, e->W, e->w);
    for (int i = 0; i < e->n * e->W; i++) s += e->r[i] * y[i];
    free(y);
    return s;
}
/* Several blocks of query rows: the blocked backward against the analytic gradient in double. */
static void test_attention_blocks(void) {
    const int n = 600, hw = 4, ld = 3 * hw;
    CHECK(attention_block_rows(n) < n, "n = %d should need several blocks", n);
    const size_t tile = (size_t)attention_block_rows(n) * n;
    float *qkv = frandv((size_t)n * ld, 1), *dO = frandv((size_t)n * hw, 1);
    float *dqkv = malloc(sizeof(float) * n * ld), *P = malloc(sizeof(float) * tile),
          *dP = malloc(sizeof(float) * tile);
    double *Pd = malloc(sizeof(double) * n * n), *dS = malloc(sizeof(double) * n * n);
    double *ref = malloc(sizeof(double) * n * ld);
    const double scale = 0.7;
    for (int causal = 0; causal <= 1; causal++) {
        memset(ref, 0, sizeof(double) * n * ld);
        for (int i = 0; i < n; i++) {
            const int len = causal ? i + 1 : n;
            double mx = -1e300, sum = 0, dot = 0;
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int d = 0; d < hw; d++) s += (double)qkv[i * ld + d] * qkv[j * ld + hw + d];
                Pd[i * n + j] = j < len ? s * scale : -INFINITY;
                if (j < len) mx = fmax(mx, Pd[i * n + j]);
            }
            for (int j = 0; j < n; j++) sum += (Pd[i * n + j] = j < len ? exp(Pd[i * n + j] - mx) : 0);
            for (int j = 0; j < n; j++) {
                Pd[i * n + j] /= sum;
                double g = 0; /* dP = dO v^T */
                for (int d = 0; d < hw; d++) g += (double)dO[i * hw + d] * qkv[j * ld + 2 * hw + d];
                dS[i * n + j] = g;
                dot += Pd[i * n + j] * g;
            }
            for (int j = 0; j < n; j++) dS[i * n + j] = Pd[i * n + j] * (dS[i * n + j] - dot);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int d = 0; d < hw; d++) {
                    ref[i * ld + d] += scale * dS[i * n + j] * qkv[j * ld + hw + d];          /* dq */
                    ref[j * ld + hw + d] += scale * dS[i * n + j] * qkv[i * ld + d];          /* dk */
                    ref[j * ld + 2 * hw + d] += Pd[i * n + j] * dO[i * hw + d];               /* dv */
                }
        attention_head_backward(NULL, n, hw, (float)scale, causal, qkv, qkv + hw, qkv + 2 * hw, ld,
                                dO, hw, dqkv, dqkv + hw, dqkv + 2 * hw, ld, P, dP);
        expect_close(causal ? "attention by row blocks (causal)" : "attention by row blocks", dqkv, ref,
                     (size_t)n * ld, 1e-5);
    }
    free(qkv), free(dO), free(dqkv), free(P), free(dP), free(Pd), free(dS), free(ref);
}

static void test_adapter_mix(void) {
    const int n = 5, W = 12;
    float *x = frandv(n * W, 2), *A = frandv(W * W, 0.5f), *dy = frandv(n * W, 1);
    float *dx = malloc(sizeof(float) * n * W), *dA = calloc(W * W, sizeof(float));
    float *scr = malloc(sizeof(float) * 2 * n * W);
    mx_ctx c = {todouble(x, n * W), todouble(A, W * W), todouble(dy, n * W), n, W, 0.1};
    double *gx = malloc(sizeof(double) * n * W), *gA = malloc(sizeof(double) * W * W);
    fd_grad(c.x, n * W, mx_f, &c, gx);
    fd_grad(c.A, W * W, mx_f, &c, gA);
    adapter_mix_backward(NULL, x, n, W, A, 0.1f, dy, dx, dA, scr);
    expect_close("adapter mix dX", dx, gx, n * W, 1e-5);
    expect_close("adapter mix dA", dA, gA, W * W, 1e-5);
    /* forward agrees with the inference kernel, and dx may alias dout */
    float *y = malloc(sizeof(float) * n * W), *tmp = malloc(sizeof(float) * n * W);
    memcpy(y, x, sizeof(float) * n * W);
    adapter_mix(NULL, y, n, W, A, 0.1f, tmp);
    double *yd = malloc(sizeof(double) * n * W);
    mix_d(c.x, yd, c.A, n, W, 0.1);
    expect_close("adapter mix forward (block.c)", y, yd, n * W, 1e-6);
    memset(dA, 0, sizeof(float) * W * W);
    memcpy(tmp, dy, sizeof(float) * n * W);
    adapter_mix_backward(NULL, x, n, W, A, 0.1f, tmp, tmp, dA, scr);
    expect_close("adapter mix dX (in place)", tmp, gx, n * W, 1e-5);
    free(x), free(A), free(dy), free(dx), free(dA), free(scr), free(c.x), free(c.A), free(c.r);
    free(gx), free(gA), free(y), free(tmp), free(yd);
}

typedef struct nm_ctx { double *x, *r; int rows, n; } nm_ctx;
static double nm_f(void *c) {
    nm_ctx *e = c;
    double s = 0;
    for (int r = 0; r < e->rows; r++) {
        double q = 0;
        for (int j = 0; j < e->n; j++) q += e->x[r * e->n + j] * e->x[r * e->n + j];
        q = sqrt(q);
        for (int j = 0; j < e->n; j++) s += e->r[r * e->n + j] * e->x[r * e->n + j] / q;
    }
    return s;
}
static void test_normalize_mean_similarity(void) {
    const int rows = 6, n = 10, E = 8, Np = 20;
    float *x = frandv(rows * n, 1), *dy = frandv(rows * n, 1), *dx = malloc(sizeof(float) * rows * n);
    nm_ctx c = {todouble(x, rows * n), todouble(dy, rows * n), rows, n};
    double *g = malloc(sizeof(double) * rows * n);
    fd_grad(c.x, rows * n, nm_f, &c, g);
    l2_normalize_backward(x, dy, dx, rows, n);
    expect_close("L2 normalise", dx, g, rows * n, 1e-5);
    /* token mean: dx[r] = dmean / rows */
    double *rm = malloc(sizeof(double) * rows * n);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) rm[r * n + j] = (double)dy[j] / rows;
    token_mean_backward(dy, dx, rows, n, 0);
    expect_close("token mean", dx, rm, rows * n, 1e-6);
    /* similarity s = alpha F T: analytic */
    float *F = frandv(Np * E, 1), *T = frandv(E * 2, 1), *ds = frandv(Np * 2, 1);
    float *dF = malloc(sizeof(float) * Np * E), *dT = calloc(E * 2, sizeof(float));
    double *rF = calloc(Np * E, sizeof(double)), *rT = calloc(E * 2, sizeof(double));
    for (int t = 0; t < Np; t++)
        for (int e = 0; e < E; e++)
            for (int k = 0; k < 2; k++) {
                rF[t * E + e] += 100.0 * ds[t * 2 + k] * T[e * 2 + k];
                rT[e * 2 + k] += 100.0 * F[t * E + e] * ds[t * 2 + k];
            }
    similarity_backward(NULL, F, T, ds, Np, E, 100.0f, dF, dT, 0);
    expect_close("similarity dF", dF, rF, Np * E, 1e-5);
    expect_close("similarity dT", dT, rT, E * 2, 1e-5);
    free(x), free(dy), free(dx), free(c.x), free(c.r), free(g), free(rm);
    free(F), free(T), free(ds), free(dF), free(dT), free(rF), free(rT);
}

/* naive double bilinear (align_corners) upsampling */
static void up_d(const double *img, int G, int S, double *out) {
    for (int oy = 0; oy < S; oy++)
        for (int ox = 0; ox < S; ox++) {
            const double sy = (double)oy * (G - 1) / (S - 1), sx = (double)ox * (G - 1) / (S - 1);
            int y0 = (int)sy, x0 = (int)sx;
            if (y0 > G - 1) y0 = G - 1;
            if (x0 > G - 1) x0 = G - 1;
            const int y1 = y0 + 1 < G ? y0 + 1 : G - 1, x1 = x0 + 1 < G ? x0 + 1 : G - 1;
            const double fy = sy - y0, fx = sx - x0;
            out[oy * S + ox] = (1 - fy) * ((1 - fx) * img[y0 * G + x0] + fx * img[y0 * G + x1]) +
                               fy * ((1 - fx) * img[y1 * G + x0] + fx * img[y1 * G + x1]);
        }
}
static void test_bilinear(void) {
    const int G = 5, S = 23;
    float *img = frandv(G * G, 1), *out = malloc(sizeof(float) * S * S), *d = frandv(S * S, 1);
    float *dimg = malloc(sizeof(float) * G * G), *tmp = malloc(sizeof(float) * S * G);
    double *imgd = todouble(img, G * G), *outd = malloc(sizeof(double) * S * S);
    up_d(imgd, G, S, outd);
    bilinear_up_ac(img, G, S, out);
    expect_close("bilinear upsample (align_corners) forward", out, outd, S * S, 1e-6);
    /* the backward is the adjoint: dimg[g] = sum_o U[o, g] d[o], U by unit inputs */
    double *ref = calloc(G * G, sizeof(double)), *unit = calloc(G * G, sizeof(double));
    for (int g = 0; g < G * G; g++) {
        unit[g] = 1;
        up_d(unit, G, S, outd);
        for (int o = 0; o < S * S; o++) ref[g] += outd[o] * d[o];
        unit[g] = 0;
    }
    bilinear_up_ac_backward(d, G, S, dimg, tmp);
    expect_close("bilinear upsample (align_corners) backward", dimg, ref, G * G, 1e-5);
    free(img), free(out), free(d), free(dimg), free(tmp), free(imgd), free(outd), free(ref), free(unit);
}

/* the whole segmentation loss in double: focal + dice(normal) + dice(abnormal) of the 2-way
 * softmax of the upsampled logits, for one image of a batch of `batch` */
typedef struct sl_ctx { double *s; const float *mask; int G, S, batch; } sl_ctx;
static double seg_d(void *c) {
    sl_ctx *e = c;
    const int G = e->G, S = e->S, n = S * S;
    double *g = calloc((size_t)G * G, sizeof(double)), *u0 = malloc(sizeof(double) * n),
           *u1 = malloc(sizeof(double) * n);
    for (int t = 0; t < G * G; t++) g[t] = e->s[2 * t];
    up_d(g, G, S, u0);
    for (int t = 0; t < G * G; t++) g[t] = e->s[2 * t + 1];
    up_d(g, G, S, u1);
    double focal = 0, sq0 = 0, sq1 = 0, sy = 0, sq0y0 = 0, sq1y = 0;
    for (int i = 0; i < n; i++) {
        const double q1 = 1 / (1 + exp(u0[i] - u1[i])), q0 = 1 - q1, y = e->mask[i];
        const double pt = (y != 0 ? (1 - 1e-5) * q1 + 1e-5 * q0 : (1 - 1e-5) * q0 + 1e-5 * q1) + 1e-5;
        focal += -(1 - pt) * (1 - pt) * log(pt);
        sq0 += q0, sq1 += q1, sy += y, sq0y0 += q0 * (1 - y), sq1y += q1 * y;
    }
    free(g), free(u0), free(u1);
    const double dn = (2 * sq0y0 + 1) / (sq0 + (n - sy) + 1), da = (2 * sq1y + 1) / (sq1 + sy + 1);
    return focal / ((double)e->batch * n) + (1 - dn) / e->batch + (1 - da) / e->batch;
}
static void test_losses(void) {
    const int G = 4, S = 13, batch = 2;
    float *s = frandv(G * G * 2, 3), *mask = malloc(sizeof(float) * S * S);
    for (int i = 0; i < S * S; i++) mask[i] = (i % S > 4 && i / S < 7) ? 1.0f : 0.0f;
    sl_ctx c = {todouble(s, G * G * 2), mask, G, S, batch};
    double *g = malloc(sizeof(double) * G * G * 2);
    fd_grad(c.s, G * G * 2, seg_d, &c, g);
    seg_loss_scratch scr;
    CHECK(seg_loss_scratch_init(&scr, S, G), "scratch");
    float ds[G * G * 2];
    double parts[3];
    const double L = seg_loss_image(s, G, S, mask, batch, 1.0f, ds, parts, &scr);
    const double Lref = seg_d(&c);
    printf("  %-44s %.9f vs %.9f\n", "seg loss value", L, Lref);
    CHECK(fabs(L - Lref) <= 1e-6 * fabs(Lref), "seg loss %g vs %g", L, Lref);
    CHECK(fabs(parts[0] + parts[1] + parts[2] - L) < 1e-12, "parts");
    expect_close("seg loss (focal + 2 dice) d logits", ds, g, G * G * 2, 1e-4);
    /* all-normal mask (image without lesion) */
    for (int i = 0; i < S * S; i++) mask[i] = 0;
    fd_grad(c.s, G * G * 2, seg_d, &c, g);
    seg_loss_image(s, G, S, mask, batch, 1.0f, ds, NULL, &scr);
    expect_close("seg loss, normal image", ds, g, G * G * 2, 1e-4);
    seg_loss_scratch_free(&scr);

    /* cross-entropy */
    float logits[6] = {0.3f, -1.2f, 2.0f, 0.1f, -0.4f, -0.5f}, dl[6];
    int labels[3] = {1, 0, 0};
    double ref = 0, dref[6];
    for (int b = 0; b < 3; b++) {
        const double e0 = exp(logits[2 * b]), e1 = exp(logits[2 * b + 1]);
        ref += -log((labels[b] ? e1 : e0) / (e0 + e1)) / 3;
        dref[2 * b] = (e0 / (e0 + e1) - (labels[b] == 0)) / 3;
        dref[2 * b + 1] = (e1 / (e0 + e1) - (labels[b] == 1)) / 3;
    }
    const double ce = cross_entropy_fwd_bwd(logits, labels, 3, 2, dl);
    CHECK(fabs(ce - ref) < 1e-12, "cross-entropy %g vs %g", ce, ref);
    expect_close("cross-entropy d logits", dl, dref, 6, 1e-6);
    free(s), free(mask), free(c.s), free(g);
}

static block_weights random_block(int W) {
    block_weights b;
    const float a = 1.0f / sqrtf((float)W);
    float *w1 = frandv(W, 0.2f), *w2 = frandv(W, 0.2f);
    for (int i = 0; i < W; i++) w1[i] += 1, w2[i] += 1;
    b.ln1_w = w1, b.ln2_w = w2;
    b.ln1_b = frandv(W, 0.1f), b.ln2_b = frandv(W, 0.1f);
    b.in_w = frandv((size_t)3 * W * W, 2 * a), b.in_b = frandv(3 * W, 0.1f);
    b.out_w = frandv((size_t)W * W, a), b.out_b = frandv(W, 0.1f);
    b.fc_w = frandv((size_t)4 * W * W, a), b.fc_b = frandv(4 * W, 0.1f);
    b.pj_w = frandv((size_t)4 * W * W, 0.5f * a), b.pj_b = frandv(W, 0.1f);
    return b;
}
static void free_block(block_weights *b) {
    const float *p[] = {b->ln1_w, b->ln1_b, b->in_w, b->in_b, b->out_w, b->out_b,
                        b->ln2_w, b->ln2_b, b->fc_w, b->fc_b, b->pj_w, b->pj_b};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free((void *)p[i]);
}

typedef struct bl_ctx { const block_weights *bw; double *x, *r; int n, W, heads, causal, act; } bl_ctx;
static double bl_f(void *c) {
    bl_ctx *e = c;
    double *y = malloc(sizeof(double) * e->n * e->W), s = 0;
    block_d(e->bw, e->x, y, e->n, e->W, e->heads, e->causal, e->act);
    for (int i = 0; i < e->n * e->W; i++) s += e->r[i] * y[i];
    free(y);
    return s;
}
static void test_block(void) {
    const int n = 9, W = 16, heads = 2;
    for (int variant = 0; variant < 3; variant++) {
        const int causal = variant == 1, act = variant == 2 ? 2 : 1;
        aac_model m;
        memset(&m, 0, sizeof m);
        m.cfg.activation = act == 2 ? AAC_ACT_QUICK_GELU : AAC_ACT_GELU;
        block_weights bw = random_block(W);
        float *x = frandv(n * W, 1), *dy = frandv(n * W, 1), *dx = malloc(sizeof(float) * n * W);
        bl_ctx c = {&bw, todouble(x, n * W), todouble(dy, n * W), n, W, heads, causal, act};
        double *g = malloc(sizeof(double) * n * W), *yd = malloc(sizeof(double) * n * W);
        fd_grad(c.x, n * W, bl_f, &c, g);
        block_bw_ws ws;
        CHECK(block_bw_ws_init(&ws, n, W, 2), "ws");
        block_recompute(&m, &bw, x, n, W, heads, causal, &ws);
        block_d(&bw, c.x, yd, n, W, heads, causal, act);
        const char *names[][2] = {{"block forward (recompute)", "block backward dX"},
                                  {"block forward, causal", "block backward dX, causal"},
                                  {"block forward, QuickGELU", "block backward dX, QuickGELU"}};
        expect_close(names[variant][0], ws.y, yd, n * W, 1e-5);
        block_backward(&m, &bw, x, dy, dx, n, W, heads, causal, &ws);
        expect_close(names[variant][1], dx, g, n * W, 1e-4);
        /* recomputation reproduces the inference block bit for bit */
        if (variant == 0) {
            workspace iw;
            iw.x = NULL;
            iw.h = malloc(sizeof(float) * n * W), iw.qkv = malloc(sizeof(float) * n * 3 * W);
            iw.big = malloc(sizeof(float) * n * 4 * W), iw.tmp = malloc(sizeof(float) * n * W);
            iw.score_slots = 1, iw.scores = malloc(sizeof(float) * attention_block_rows(n) * n), iw.big_len = (size_t)n * 4 * W;
            float *xf = malloc(sizeof(float) * n * W);
            memcpy(xf, x, sizeof(float) * n * W);
            int nt = omp_get_max_threads();
            omp_set_num_threads(1);
            block_forward(&m, &bw, xf, n, W, heads, 0, &iw);
            block_recompute(&m, &bw, x, n, W, heads, 0, &ws);
            omp_set_num_threads(nt);
            CHECK(!memcmp(xf, ws.y, sizeof(float) * n * W), "recomputed block differs from block_forward");
            free(iw.h), free(iw.qkv), free(iw.big), free(iw.tmp), free(iw.scores), free(xf);
        }
        /* in place (dx aliases dy) */
        block_recompute(&m, &bw, x, n, W, heads, causal, &ws);
        block_backward(&m, &bw, x, dy, dy, n, W, heads, causal, &ws);
        expect_close("block backward in place", dy, g, n * W, 1e-4);
        block_bw_ws_free(&ws);
        free_block(&bw);
        free(x), free(dy), free(dx), free(c.x), free(c.r), free(g), free(yd);
    }
}

/* ---------------------------------------------------------------- both stages end to end */
/* A small random model (2 heads, 4 vision blocks at 56 px = 4 x 4 patches, 3 text blocks) with
 * a one-rule tokenizer. The analytic gradient of every trained tensor is checked against the
 * central difference of the loss along a random direction (float forward, so a loose bound). */
static aac_model *small_model(aac_tokenizer **tok, const char *dir) {
    aac_config c;
    memset(&c, 0, sizeof c);
    c.embed_dim = 8, c.v_width = 16, c.v_head_width = 8, c.v_layers = 4, c.patch = 14;
    c.native = 28, c.img = 56, c.t_width = 16, c.t_heads = 2, c.t_layers = 3, c.vocab = 600;
    c.text_adapt_until = 2, c.image_adapt_until = 2;
    aac_model *m;
    aac_error err;
    CHECK_OK(aac_model_random(&c, 7, &m, &err), &err);
    char path[512];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("#version: 0.2\nt h\n", f);
    fclose(f);
    CHECK_OK(aac_tokenizer_open_bpe(path, tok, &err), &err);
    return m;
}

static double batch_loss(aac_trainer *tr, const aac_train_batch *b) {
    aac_error err;
    aac_train_stats st;
    CHECK_OK(aac_train_compute_gradients(tr, b, &st, &err), &err);
    return st.loss;
}

static void direction_check(aac_trainer *tr, const aac_train_batch *b, const char *what) {
    batch_loss(tr, b);
    for (int j = 0; j < tr->n_t; j++) {
        train_tensor *x = &tr->t[j];
        if (!x->trainable) continue;
        const size_t n = (size_t)x->rows * x->cols;
        float *g = malloc(sizeof(float) * n), *w0 = malloc(sizeof(float) * n);
        float *dir = frandv(n, 1);
        memcpy(g, x->g, sizeof(float) * n);
        memcpy(w0, x->w, sizeof(float) * n);
        /* direction: the gradient (plus noise), scaled to entries of at most 1 */
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
        for (size_t i = 0; i < n; i++) dir[i] = (float)(g[i] / gmax + 0.3 * dir[i]);
        double an = 0;
        for (size_t i = 0; i < n; i++) an += (double)g[i] * dir[i];
        /* two steps: the larger one may straddle a LeakyReLU kink, the smaller one is noisier
         * (float forward); a correct gradient agrees with at least one of them */
        double fd[2];
        const float hs[2] = {5e-4f, 1e-4f};
        for (int k = 0; k < 2; k++) {
            const float h = hs[k];
            for (size_t i = 0; i < n; i++) x->w[i] = w0[i] + h * dir[i];
            const double lp = batch_loss(tr, b);
            for (size_t i = 0; i < n; i++) x->w[i] = w0[i] - h * dir[i];
            const double lm = batch_loss(tr, b);
            fd[k] = (lp - lm) / (2.0 * h);
        }
        memcpy(x->w, w0, sizeof(float) * n);
        const double e = fmin(fabs(fd[0] - an), fabs(fd[1] - an)) / fabs(an);
        printf("  %-9s %-42s %+.6f vs %+.6f, %+.6f (%.2g)\n", what, x->name, an, fd[0], fd[1], e);
        CHECK(e < 1e-2, "%s %s: directional derivative %g vs finite differences %g, %g", what, x->name,
              an, fd[0], fd[1]);
        free(g), free(w0), free(dir);
    }
}

static void test_stages(void) {
    char dir[] = "/tmp/aaclip_test_backward_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    aac_tokenizer *tok;
    aac_model *m = small_model(&tok, dir);
    const aac_config *c = aac_model_config(m);
    const int S = c->img, B = 2;
    float *images = frandv((size_t)B * 3 * S * S, 1.5f), *masks = calloc((size_t)B * S * S, sizeof(float));
    for (int y = 10; y < 30; y++)
        for (int x = 20; x < 45; x++) masks[y * S + x] = 1;
    int labels[2] = {1, 0};
    const char *desc[2] = {"thing", "thing"}, *desc2[2] = {"thing", "other"};
    aac_train_batch b = {B, images, masks, labels, desc};
    aac_error err;
    aac_trainer *tr;

    aac_train_params p2 = aac_train_default_params(2);
    CHECK_OK(aac_trainer_new(m, tok, &p2, &tr, &err), &err);
    direction_check(tr, &b, "stage 2");
    aac_trainer_free(tr);
    m->cfg.relu = 1; /* LeakyReLU after the projections */
    CHECK_OK(aac_trainer_new(m, tok, &p2, &tr, &err), &err);
    direction_check(tr, &b, "s2 relu");
    aac_trainer_free(tr);
    m->cfg.relu = 0;

    aac_train_params p1 = aac_train_default_params(1);
    CHECK_OK(aac_trainer_new(m, tok, &p1, &tr, &err), &err);
    direction_check(tr, &b, "stage 1");
    aac_trainer_free(tr);
    p1.surgery_attention = AAC_SURGERY_BATCH, p1.all_levels = 1;
    aac_train_batch b2 = {B, images, masks, labels, desc2};
    CHECK_OK(aac_trainer_new(m, tok, &p1, &tr, &err), &err);
    direction_check(tr, &b2, "s1 all/2c");
    aac_trainer_free(tr);

    /* Adam: one step from a fresh state moves every weight by lr against its gradient's sign */
    CHECK_OK(aac_trainer_new(m, tok, &p2, &tr, &err), &err);
    CHECK(fabsf(aac_train_lr(tr, 0) - 5e-4f) < 1e-12f && fabsf(aac_train_lr(tr, 15999) - 5e-4f) < 1e-12f &&
              fabsf(aac_train_lr(tr, 16000) - 2.5e-4f) < 1e-12f && fabsf(aac_train_lr(tr, 32000) - 1.25e-4f) < 1e-12f,
          "MultiStepLR schedule");
    train_tensor *x = &tr->t[tr->i_seg[0]];
    const size_t nx = (size_t)x->rows * x->cols;
    float *w0 = malloc(sizeof(float) * nx);
    memcpy(w0, x->w, sizeof(float) * nx);
    CHECK_OK(aac_train_step(tr, &b, NULL, &err), &err);
    int bad = 0;
    for (size_t i = 0; i < nx; i++)
        if (fabsf(x->g[i]) > 1e-5f && fabsf((w0[i] - x->w[i]) - 5e-4f * (x->g[i] > 0 ? 1 : -1)) > 1e-6f) bad++;
    CHECK(bad == 0, "first Adam step: %d weights not moved by lr * sign(g)", bad);
    CHECK(aac_trainer_steps(tr) == 1, "step count");
    /* checkpoint: save, resume in a second trainer, both take the same next step */
    char ck[600], d1[600], d2[600];
    snprintf(ck, sizeof ck, "%s/ckpt.safetensors", dir);
    CHECK_OK(aac_trainer_save(tr, ck, &err), &err);
    CHECK_OK(aac_train_step(tr, &b, NULL, &err), &err);
    snprintf(d1, sizeof d1, "%s/dump1.safetensors", dir);
    CHECK_OK(aac_trainer_dump(tr, d1, NULL, &err), &err);
    aac_trainer_free(tr);
    CHECK_OK(aac_trainer_new(m, tok, &p2, &tr, &err), &err);
    CHECK_OK(aac_trainer_resume(tr, ck, &err), &err);
    CHECK(aac_trainer_steps(tr) == 1, "resumed step count");
    CHECK_OK(aac_train_step(tr, &b, NULL, &err), &err);
    snprintf(d2, sizeof d2, "%s/dump2.safetensors", dir);
    CHECK_OK(aac_trainer_dump(tr, d2, NULL, &err), &err);
    aac_trainer_free(tr);
    st_file *f1, *f2;
    CHECK_OK(st_open(d1, &f1, &err), &err);
    CHECK_OK(st_open(d2, &f2, &err), &err);
    CHECK(st_count(f1) == st_count(f2) && st_count(f1) == 2 + 2 * (2 + 4 + 1), "dump entries");
    for (size_t i = 0; i < st_count(f1); i++) {
        const st_tensor *a = st_at(f1, i), *e = st_find(f2, a->name);
        CHECK(e && e->nbytes == a->nbytes && !memcmp(a->data, e->data, a->nbytes),
              "resumed training differs in %s", a->name);
    }
    CHECK(st_find(f1, "train2.loss_ce") && st_find(f1, "train2.grad.image_adapter.det_proj.fc.weight"), "dump names");
    st_close(f1), st_close(f2);
    /* the checkpoint opens as an adapters file */
    aac_model *m2;
    char clip[600];
    snprintf(clip, sizeof clip, "%s/clip.safetensors", dir);
    CHECK_OK(aac_model_save(m, clip, NULL, &err), &err);
    CHECK_OK(aac_model_open(clip, ck, NULL, &m2, &err), &err);
    CHECK(aac_model_has_adapters(m2) && aac_model_config(m2)->image_adapt_until == 2, "checkpoint as adapters");
    aac_model_free(m2);

    /* Xavier initialisation for a model without adapters: installed, seeded, given back */
    const float *saved[AAC_MAX_ADAPT];
    memcpy(saved, m->t_adapt, sizeof saved);
    const float *sv[AAC_MAX_ADAPT], *ss[AAC_MAX_LEVELS], *sa = m->t_anchor_proj, *sd = m->det_proj;
    memcpy(sv, m->v_adapt, sizeof sv);
    memcpy(ss, m->seg_proj, sizeof ss);
    memset(m->t_adapt, 0, sizeof m->t_adapt), memset(m->v_adapt, 0, sizeof m->v_adapt);
    memset(m->seg_proj, 0, sizeof m->seg_proj);
    m->t_anchor_proj = m->det_proj = NULL;
    m->has_adapters = 0;
    p1 = aac_train_default_params(1);
    CHECK(aac_trainer_new(m, tok, &p1, &tr, &err) == AAC_ERR_ARG, "no adapters needs Xavier");
    p1.init = AAC_INIT_XAVIER, p1.seed = 5;
    CHECK_OK(aac_trainer_new(m, tok, &p1, &tr, &err), &err);
    CHECK(aac_model_has_adapters(m) && m->v_adapt[1] && m->det_proj, "adapters installed");
    double s2 = 0, mx = 0;
    const train_tensor *xa = &tr->t[tr->i_tadapt[0]];
    for (int i = 0; i < xa->rows * xa->cols; i++) s2 += xa->w[i] * xa->w[i], mx = fmax(mx, fabs(xa->w[i]));
    const double bound = sqrt(6.0 / (2 * 16));
    CHECK(mx <= bound && fabs(s2 / (16 * 16) - bound * bound / 3) < 0.2 * bound * bound / 3, "Xavier-uniform range");
    float *init0 = malloc(sizeof(float) * xa->rows * xa->cols);
    memcpy(init0, xa->w, sizeof(float) * xa->rows * xa->cols);
    CHECK_OK(aac_train_step(tr, &b, NULL, &err), &err); /* a step from scratch */
    aac_trainer_free(tr);
    CHECK(!aac_model_has_adapters(m) && m->t_adapt[0] == NULL, "adapters given back");
    CHECK_OK(aac_trainer_new(m, tok, &p1, &tr, &err), &err); /* same seed, same start */
    CHECK(!memcmp(tr->t[tr->i_tadapt[0]].w, init0, sizeof(float) * 16 * 16), "seeded Xavier init");
    free(init0);
    aac_trainer_free(tr);
    CHECK(!aac_model_has_adapters(m) && m->t_adapt[0] == NULL, "adapters given back");
    memcpy(m->t_adapt, saved, sizeof saved), memcpy(m->v_adapt, sv, sizeof sv);
    memcpy(m->seg_proj, ss, sizeof ss);
    m->t_anchor_proj = sa, m->det_proj = sd, m->has_adapters = 1;

    free(w0), free(images), free(masks);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    printf("kernels\n");
    test_linear();
    test_elementwise();
    test_layernorm();
    test_softmax();
    test_attention();
    test_attention_blocks();
    test_adapter_mix();
    test_normalize_mean_similarity();
    test_bilinear();
    test_losses();
    printf("block\n");
    test_block();
    printf("training stages (small random model)\n");
    test_stages();
    return tu_finish("test_backward");
}
