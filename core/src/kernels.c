#include "kernels.h"

/* Hot elementwise kernels are compiled for AVX-512, AVX2 and the baseline; the loader picks
 * the best the CPU has (GCC target_clones). Sanitizer builds keep the single baseline copy. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define AAC_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AAC_SIMD_CLONES
#endif

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

void add_bias(float *x, const float *bias, int rows, int n) {
#pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * n;
        for (int j = 0; j < n; j++) row[j] += bias[j];
    }
}

/* Sums in double with four accumulators (a fixed order, so reproducible): one accumulator
 * would wait for each addition's latency, four cycles per element. */
static inline double sum_d(const float *x, int n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 4 <= n; j += 4) s0 += x[j], s1 += x[j + 1], s2 += x[j + 2], s3 += x[j + 3];
    for (; j < n; j++) s0 += x[j];
    return (s0 + s1) + (s2 + s3);
}

/* sum of (x - c)^2 */
static inline double sumsq_d(const float *x, int n, double c) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const double d0 = x[j] - c, d1 = x[j + 1] - c, d2 = x[j + 2] - c, d3 = x[j + 3] - c;
        s0 += d0 * d0, s1 += d1 * d1, s2 += d2 * d2, s3 += d3 * d3;
    }
    for (; j < n; j++) s0 += (x[j] - c) * (x[j] - c);
    return (s0 + s1) + (s2 + s3);
}

AAC_SIMD_CLONES
void layernorm(const float *x, float *y, const float *w, const float *b, int rows, int n, int ld_x,
               int ld_y) {
#pragma omp parallel for schedule(static) if (rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * ld_x;
        float *yr = y + (size_t)r * ld_y;
        /* Two passes in double: the mean/variance of a 1024-wide row in float loses digits
         * that the 1e-4 feature tolerance cannot spare after 24 blocks. */
        const double mean = sum_d(xr, n) / n;
        const double v = sumsq_d(xr, n, mean);
        const float inv = (float)(1.0 / sqrt(v / n + 1e-5));
        const float m = (float)mean;
        for (int j = 0; j < n; j++) yr[j] = (xr[j] - m) * inv * w[j] + b[j];
    }
}

/* expf: exp(x) = 2^k * exp(r), r = x - k ln2 in [-ln2/2, ln2/2], degree-6 polynomial for
 * exp(r) (Cephes coefficients), 2^k built in the exponent bits. Branch-free so it vectorises. */
static inline float exp_scalar(float x) {
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447504f ? -87.3365447504f : x;
    const float fk = nearbyintf(x * 1.44269504088896341f);
    float r = x - fk * 0.693359375f;
    r = r - fk * -2.12194440e-4f;
    float p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    const int32_t k = (int32_t)fk;
    /* 2^k for k in [-126, 127] is exact in the exponent field. */
    union { int32_t i; float f; } u = {.i = (k + 127) << 23};
    return p * u.f;
}

void vexp(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = exp_scalar(x[i]);
}

/* erf: odd/even rational minimax approximation on [-4, 4] (outside, erf is +-1 in float);
 * the form used by Eigen and XLA, max error about 2 ulp. */
static inline float erf_scalar(float x) {
    x = x > 4.0f ? 4.0f : x;
    x = x < -4.0f ? -4.0f : x;
    const float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    p = p * x;
    float q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return p / q;
}

void verf(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = erf_scalar(x[i]);
}

void gelu_exact(float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + erf_scalar(v * 0.70710678118654752f));
    }
}

void quick_gelu(float *x, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        x[i] = v / (1.0f + exp_scalar(-1.702f * v));
    }
}

AAC_SIMD_CLONES
void bias_act(float *x, const float *bias, int rows, int n, int act) {
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * n;
        if (act == 1) {
            for (int j = 0; j < n; j++) {
                const float v = row[j] + bias[j];
                row[j] = 0.5f * v * (1.0f + erf_scalar(v * 0.70710678118654752f));
            }
        } else if (act == 2) {
            for (int j = 0; j < n; j++) {
                const float v = row[j] + bias[j];
                row[j] = v / (1.0f + exp_scalar(-1.702f * v));
            }
        } else {
            for (int j = 0; j < n; j++) row[j] += bias[j];
        }
    }
}

void leaky_relu(float *x, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] >= 0.0f ? x[i] : x[i] * slope;
}

/* One row: max, then exp and sum; returns 1 / sum. omp simd lets the reductions vectorise (in
 * a fixed lane order, so the result is reproducible on a given machine). */
AAC_SIMD_CLONES
static float softmax_row_exp(float *row, int len, int n) {
    float mx = row[0];
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < len; j++) mx = row[j] > mx ? row[j] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < len; j++) {
        const float e = exp_scalar(row[j] - mx);
        row[j] = e;
        sum += e;
    }
    for (int j = len; j < n; j++) row[j] = 0.0f;
    return 1.0f / sum;
}

typedef float (*row_exp_fn)(float *row, int len, int n);

static row_exp_fn best_row_exp(void) {
#if AAC_HAVE_AVX512
    if (__builtin_cpu_supports("avx512f")) return softmax_row_exp_avx512;
#endif
    return softmax_row_exp;
}

/* inv NULL: normalise each row in place; else leave exp(x - max) and store 1 / sum. */
static void rows_exp(row_exp_fn f, float *x, int rows, int n, int ld, int causal_offset, float *inv) {
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        int len = n;
        if (causal_offset >= 0 && r + causal_offset + 1 < n) len = r + causal_offset + 1;
        float *row = x + (size_t)r * ld;
        const float s = f(row, len, n);
        if (inv) {
            inv[r] = s;
        } else {
#pragma omp simd
            for (int j = 0; j < len; j++) row[j] *= s;
        }
    }
}

void softmax_rows(float *x, int rows, int n, int ld, int causal_offset) {
    rows_exp(best_row_exp(), x, rows, n, ld, causal_offset, NULL);
}

void softmax_rows_exp(float *x, int rows, int n, int ld, int causal_offset, float *inv) {
    rows_exp(best_row_exp(), x, rows, n, ld, causal_offset, inv);
}

void softmax_rows_exp_portable(float *x, int rows, int n, int ld, int causal_offset, float *inv) {
    rows_exp(softmax_row_exp, x, rows, n, ld, causal_offset, inv);
}

float l2_norm(const float *x, int n) { return (float)sqrt(sumsq_d(x, n, 0.0)); }

void l2_normalize_rows(float *x, int rows, int n) {
#pragma omp parallel for schedule(static) if ((size_t)rows * n > 65536)
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * n;
        float nrm = l2_norm(row, n);
        const float inv = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
        for (int j = 0; j < n; j++) row[j] *= inv;
    }
}
