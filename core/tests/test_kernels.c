/* test_kernels.c - every kernel against a plain double-precision reference. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "model.h"
#include "testutil.h"

static uint64_t g_seed = 12345;
static float frand(void) { /* uniform [-1, 1) */
    g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_seed >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rnd(size_t n, float a) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = a * frand();
    return p;
}

static void ref_gemm_nt(int M, int N, int K, const float *A, const float *B, double *C) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[i * K + k] * B[j * K + k];
            C[i * N + j] = s;
        }
}

static double max_rel_vs(const float *a, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - ref[i]) * (a[i] - ref[i]);
        den += ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static void test_gemm(void) {
    const int M = 37, N = 29, K = 53;
    float *A = rnd(M * K, 1), *B = rnd(N * K, 1), *C = rnd(M * N, 1), *Bt = malloc(sizeof(float) * K * N);
    double *R = malloc(sizeof(double) * M * N);
    for (int j = 0; j < N; j++)
        for (int k = 0; k < K; k++) Bt[k * N + j] = B[j * K + k];
    ref_gemm_nt(M, N, K, A, B, R);
    float *C0 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * N; i++) C0[i] = C[i];
    gemm_nt(NULL, M, N, K, 2.0f, A, K, B, K, 1.0f, C, N);
    double worst = 0;
    for (int i = 0; i < M * N; i++) worst = fmax(worst, fabs(C[i] - (2 * R[i] + C0[i])));
    CHECK(worst < 1e-4, "gemm_nt max err %g", worst);
    gemm_nn(NULL, M, N, K, 1.0f, A, K, Bt, N, 0.0f, C, N);
    CHECK(max_rel_vs(C, R, M * N) < 1e-6, "gemm_nn rel err %g", max_rel_vs(C, R, M * N));
    free(A), free(B), free(C), free(Bt), free(R), free(C0);
}

static void test_elementwise(void) {
    const size_t n = 20000;
    float *x = rnd(n, 12), *y = malloc(n * sizeof *y), *z = malloc(n * sizeof *z);
    for (size_t i = 0; i < 10; i++) x[i] = (float)i * -10.0f; /* deep tails */
    x[10] = 100.0f, x[11] = -100.0f, x[12] = 0.0f;

    vexp(x, y, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double r = exp((double)x[i]);
        if (r > 1e-30 && r < 1e30) worst = fmax(worst, fabs(y[i] - r) / r);
    }
    CHECK(worst < 4e-7, "vexp max rel err %g", worst);

    verf(x, y, n);
    worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(y[i] - erf((double)x[i])));
    CHECK(worst < 4e-7, "verf max abs err %g", worst);

    for (size_t i = 0; i < n; i++) y[i] = x[i] * 0.5f; /* typical activations */
    for (size_t i = 0; i < n; i++) z[i] = y[i];
    gelu_exact(z, n);
    worst = 0;
    for (size_t i = 0; i < n; i++) {
        double v = y[i], r = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        worst = fmax(worst, fabs(z[i] - r) / fmax(1.0, fabs(r)));
    }
    CHECK(worst < 1e-6, "gelu_exact max err %g", worst);

    for (size_t i = 0; i < n; i++) z[i] = y[i];
    quick_gelu(z, n);
    worst = 0;
    for (size_t i = 0; i < n; i++) {
        double v = y[i], r = v / (1 + exp(-1.702 * v));
        worst = fmax(worst, fabs(z[i] - r) / fmax(1.0, fabs(r)));
    }
    CHECK(worst < 1e-6, "quick_gelu max err %g", worst);

    /* bias_act with act=1 equals bias then gelu */
    const int rows = 7, cols = 33;
    float *b = rnd(cols, 1), *u = rnd(rows * cols, 3), *w = malloc(sizeof(float) * rows * cols);
    for (int i = 0; i < rows * cols; i++) w[i] = u[i] + b[i % cols];
    gelu_exact(w, rows * cols);
    bias_act(u, b, rows, cols, 1);
    CHECK(tu_max_abs(u, w, rows * cols) == 0, "bias_act(gelu) differs from bias + gelu");

    for (size_t i = 0; i < n; i++) z[i] = y[i];
    leaky_relu(z, n, 0.01f);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += z[i] != (y[i] >= 0 ? y[i] : y[i] * 0.01f);
    CHECK(bad == 0, "leaky_relu: %d wrong", bad);
    free(x), free(y), free(z), free(b), free(u), free(w);
}

static void test_layernorm_softmax_norm(void) {
    const int rows = 9, n = 70;
    float *x = rnd(rows * n, 5), *w = rnd(n, 1), *b = rnd(n, 1), *y = malloc(sizeof(float) * rows * n);
    for (int i = 0; i < rows * n; i++) x[i] += 3.0f; /* offset mean: catches one-pass variance */
    layernorm(x, y, w, b, rows, n, n, n);
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < n; j++) m += x[r * n + j];
        m /= n;
        for (int j = 0; j < n; j++) v += (x[r * n + j] - m) * (x[r * n + j] - m);
        v /= n;
        for (int j = 0; j < n; j++) {
            double ref = (x[r * n + j] - m) / sqrt(v + 1e-5) * w[j] + b[j];
            worst = fmax(worst, fabs(y[r * n + j] - ref));
        }
    }
    CHECK(worst < 2e-6, "layernorm max err %g", worst);

    for (int causal = -1; causal <= 0; causal++) {
        float *s = rnd(rows * n, 20);
        double *ref = malloc(sizeof(double) * rows * n);
        for (int r = 0; r < rows; r++) {
            int len = causal < 0 ? n : r + 1;
            double mx = -1e300, sum = 0;
            for (int j = 0; j < len; j++) mx = fmax(mx, s[r * n + j]);
            for (int j = 0; j < len; j++) sum += exp(s[r * n + j] - mx);
            for (int j = 0; j < n; j++) ref[r * n + j] = j < len ? exp(s[r * n + j] - mx) / sum : 0;
        }
        softmax_rows(s, rows, n, n, causal);
        worst = 0;
        for (int i = 0; i < rows * n; i++) worst = fmax(worst, fabs(s[i] - ref[i]));
        CHECK(worst < 1e-6, "softmax (causal %d) max err %g", causal, worst);
        free(s), free(ref);
    }

    /* The softmax without its division, through the CPU's best body and the portable one:
     * lengths around the 16/32/64-wide steps (masked tails), causal rows, and a spread that
     * underflows (exp of -200 is 0 in float). */
    const int lens[] = {1, 15, 16, 17, 33, 64, 70, 100, 1370};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int m = 5, len = lens[li];
        for (int causal = -1; causal <= 0; causal++)
            for (int path = 0; path < 2; path++) {
                float *s = rnd((size_t)m * len, 200), inv[5];
                double worst_rel = 0;
                double *ref = malloc(sizeof(double) * m * len);
                for (int r = 0; r < m; r++) {
                    const int keys = causal < 0 || r + 1 > len ? len : r + 1;
                    double mx = -1e300, sum = 0;
                    for (int j = 0; j < keys; j++) mx = fmax(mx, s[r * len + j]);
                    /* from the float difference the kernel sees: at a spread of 200 its rounding
                     * alone moves exp by up to 8e-6 relative */
                    for (int j = 0; j < keys; j++) sum += exp((float)(s[r * len + j] - (float)mx));
                    for (int j = 0; j < len; j++)
                        ref[r * len + j] = j < keys ? exp((float)(s[r * len + j] - (float)mx)) / sum : 0;
                }
                if (path) softmax_rows_exp_portable(s, m, len, len, causal, inv);
                else softmax_rows_exp(s, m, len, len, causal, inv);
                int zeros_ok = 1;
                for (int r = 0; r < m; r++)
                    for (int j = 0; j < len; j++) {
                        const double got = (double)s[r * len + j] * inv[r], want = ref[r * len + j];
                        if (want == 0) zeros_ok &= s[r * len + j] == 0.0f;
                        else if (want > 1e-30) worst_rel = fmax(worst_rel, fabs(got - want) / want);
                    }
                CHECK(zeros_ok, "softmax_rows_exp (%s, len %d, causal %d): masked entries not 0",
                      path ? "portable" : "best", len, causal);
                CHECK(worst_rel < 2e-6, "softmax_rows_exp (%s, len %d, causal %d): max rel err %g",
                      path ? "portable" : "best", len, causal, worst_rel);
                free(s), free(ref);
            }
    }

    l2_normalize_rows(x, rows, n);
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int j = 0; j < n; j++) s += (double)x[r * n + j] * x[r * n + j];
        CHECK(fabs(sqrt(s) - 1) < 1e-6, "row %d norm %g", r, sqrt(s));
    }
    free(x), free(w), free(b), free(y);
}

/* Naive double reference of one pre-norm block (GELU) and the adapter mixing. */
static void ref_ln(const double *x, double *y, const float *w, const float *b, int n, int W) {
    for (int r = 0; r < n; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < W; j++) m += x[r * W + j];
        m /= W;
        for (int j = 0; j < W; j++) v += (x[r * W + j] - m) * (x[r * W + j] - m);
        v /= W;
        for (int j = 0; j < W; j++) y[r * W + j] = (x[r * W + j] - m) / sqrt(v + 1e-5) * w[j] + b[j];
    }
}
static void ref_linear(const double *x, const float *w, const float *b, int n, int in, int out,
                       double *y) {
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
            y[r * out + o] = s;
        }
}

static void ref_block(const block_weights *bw, double *x, int n, int W, int heads, int causal) {
    const int hw = W / heads;
    double *h = calloc((size_t)n * W, 8), *qkv = calloc((size_t)n * 3 * W, 8),
           *att = calloc((size_t)n * W, 8), *t = calloc((size_t)n * 4 * W, 8), *p = calloc(n, 8);
    ref_ln(x, h, bw->ln1_w, bw->ln1_b, n, W);
    ref_linear(h, bw->in_w, bw->in_b, n, W, 3 * W, qkv);
    for (int hd = 0; hd < heads; hd++)
        for (int i = 0; i < n; i++) {
            double mx = -1e300, sum = 0;
            int len = causal ? i + 1 : n;
            for (int j = 0; j < len; j++) {
                double s = 0;
                for (int d = 0; d < hw; d++)
                    s += qkv[i * 3 * W + hd * hw + d] * qkv[j * 3 * W + W + hd * hw + d];
                p[j] = s / sqrt((double)hw);
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < len; j++) sum += (p[j] = exp(p[j] - mx));
            for (int d = 0; d < hw; d++) {
                double o = 0;
                for (int j = 0; j < len; j++) o += p[j] / sum * qkv[j * 3 * W + 2 * W + hd * hw + d];
                att[i * W + hd * hw + d] = o;
            }
        }
    ref_linear(att, bw->out_w, bw->out_b, n, W, W, h);
    for (int i = 0; i < n * W; i++) x[i] += h[i];
    ref_ln(x, h, bw->ln2_w, bw->ln2_b, n, W);
    ref_linear(h, bw->fc_w, bw->fc_b, n, W, 4 * W, t);
    for (int i = 0; i < n * 4 * W; i++) t[i] = 0.5 * t[i] * (1 + erf(t[i] / sqrt(2.0)));
    ref_linear(t, bw->pj_w, bw->pj_b, n, 4 * W, W, h);
    for (int i = 0; i < n * W; i++) x[i] += h[i];
    free(h), free(qkv), free(att), free(t), free(p);
}

static void test_block_and_adapter(void) {
    const int n = 23, W = 32, heads = 4;
    block_weights bw = {
        .ln1_w = rnd(W, 1), .ln1_b = rnd(W, 0.1f), .in_w = rnd(3 * W * W, 0.2f),
        .in_b = rnd(3 * W, 0.1f), .out_w = rnd(W * W, 0.2f), .out_b = rnd(W, 0.1f),
        .ln2_w = rnd(W, 1), .ln2_b = rnd(W, 0.1f), .fc_w = rnd(4 * W * W, 0.2f),
        .fc_b = rnd(4 * W, 0.1f), .pj_w = rnd(4 * W * W, 0.1f), .pj_b = rnd(W, 0.1f)};
    aac_model m = {0};
    m.cfg.activation = AAC_ACT_GELU;
    workspace ws = {.x = NULL, .h = malloc(sizeof(float) * n * W), .qkv = malloc(sizeof(float) * n * 3 * W),
                    .big = malloc(sizeof(float) * n * 4 * W), .tmp = malloc(sizeof(float) * n * W),
                    .scores = malloc(sizeof(float) * attention_block_rows(n) * n * omp_get_max_threads()),
                    .score_slots = omp_get_max_threads()};
    for (int causal = 0; causal <= 1; causal++) {
        float *x = rnd(n * W, 1);
        double *xr = malloc(sizeof(double) * n * W);
        for (int i = 0; i < n * W; i++) xr[i] = x[i];
        block_forward(&m, &bw, x, n, W, heads, causal, &ws);
        ref_block(&bw, xr, n, W, heads, causal);
        double e = max_rel_vs(x, xr, n * W);
        CHECK(e < 1e-5, "block_forward (causal %d) rel err %g", causal, e);

        /* adapter: x = w * a * |x| / |a| + (1 - w) * x, a = LeakyReLU(x A^T) */
        float *A = rnd(W * W, 0.3f);
        for (int i = 0; i < n * W; i++) xr[i] = x[i];
        adapter_mix(NULL, x, n, W, A, 0.1f, ws.tmp);
        double *a = malloc(sizeof(double) * W);
        double worst = 0;
        for (int r = 0; r < n; r++) {
            double nx = 0, na = 0;
            for (int o = 0; o < W; o++) {
                double s = 0;
                for (int i = 0; i < W; i++) s += xr[r * W + i] * A[o * W + i];
                a[o] = s >= 0 ? s : 0.01 * s;
                na += a[o] * a[o];
                nx += xr[r * W + o] * xr[r * W + o];
            }
            for (int o = 0; o < W; o++) {
                double ref = 0.1 * a[o] * sqrt(nx) / sqrt(na) + 0.9 * xr[r * W + o];
                worst = fmax(worst, fabs(x[r * W + o] - ref));
            }
        }
        CHECK(worst < 1e-5, "adapter_mix max err %g", worst);
        free(x), free(xr), free(A), free(a);
    }
    free((void *)bw.ln1_w), free((void *)bw.ln1_b), free((void *)bw.in_w), free((void *)bw.in_b);
    free((void *)bw.out_w), free((void *)bw.out_b), free((void *)bw.ln2_w), free((void *)bw.ln2_b);
    free((void *)bw.fc_w), free((void *)bw.fc_b), free((void *)bw.pj_w), free((void *)bw.pj_b);
    free(ws.h), free(ws.qkv), free(ws.big), free(ws.tmp), free(ws.scores);
}

/* Attention long enough for several query-row blocks, against double precision, and the same
 * bits with 1 and 2 threads. */
static void test_attention_blocks(void) {
    const int n = 1300, heads = 2, hw = 8, W = heads * hw, W3 = 3 * W;
    CHECK(attention_block_rows(n) < n / 2, "n = %d should need several blocks (rows %d)", n,
          attention_block_rows(n));
    float *qkv = rnd((size_t)n * W3, 1.5f), *o1 = malloc(sizeof(float) * n * W);
    float *o2 = malloc(sizeof(float) * n * W);
    const int slots = 2;
    float *tiles = malloc(sizeof(float) * slots * attention_block_rows(n) * n);
    double *p = malloc(sizeof(double) * n), *ref = malloc(sizeof(double) * n * W);
    const double scale = 1.0 / sqrt((double)hw);
    for (int causal = 0; causal <= 1; causal++) {
        for (int hd = 0; hd < heads; hd++)
            for (int i = 0; i < n; i++) {
                const int len = causal ? i + 1 : n;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < len; j++) {
                    double s = 0;
                    for (int d = 0; d < hw; d++)
                        s += (double)qkv[i * W3 + hd * hw + d] * qkv[j * W3 + W + hd * hw + d];
                    p[j] = s * scale;
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j < len; j++) sum += (p[j] = exp(p[j] - mx));
                for (int d = 0; d < hw; d++) {
                    double s = 0;
                    for (int j = 0; j < len; j++) s += p[j] / sum * qkv[j * W3 + 2 * W + hd * hw + d];
                    ref[i * W + hd * hw + d] = s;
                }
            }
        const int nt = omp_get_max_threads();
        omp_set_num_threads(1);
        attention_forward(NULL, qkv, qkv + W, qkv + 2 * W, W3, o1, W, n, heads, hw, causal,
                          (float)scale, tiles, slots);
        omp_set_num_threads(2);
        attention_forward(NULL, qkv, qkv + W, qkv + 2 * W, W3, o2, W, n, heads, hw, causal,
                          (float)scale, tiles, slots);
        omp_set_num_threads(nt);
        const double e = max_rel_vs(o1, ref, (size_t)n * W);
        CHECK(e < 1e-6, "blocked attention (causal %d, n %d) rel err %g", causal, n, e);
        CHECK(!memcmp(o1, o2, sizeof(float) * n * W), "blocked attention differs between 1 and 2 threads");
    }
    free(qkv), free(o1), free(o2), free(tiles), free(p), free(ref);
}

int main(void) {
    test_gemm();
    test_attention_blocks();
    test_elementwise();
    test_layernorm_softmax_norm();
    test_block_and_adapter();
    return tu_finish("test_kernels");
}
