/* test_backend.c - backends for the plugin tests, one source compiled several ways:
 *   (no define)       "naive": plain loops in double, prepared weights (a transposed copy,
 *                     rounded to bf16 at bf16), f32 and bf16 - a second, independent backend
 *   TB_BAD_ABI        a table of ABI version 999
 *   TB_NULL_ENTRY     the entry function returns NULL
 *   TB_NO_ENTRY       no entry function at all
 *   TB_NO_GEMM        gemm missing from the table
 *   TB_FAIL_CREATE    create fails ("failcreate")
 *   TB_FAIL_GEMM      every product fails after the first 20 ("failgemm")
 *   TB_NAME           overrides the name (a duplicate of "naive") */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_backend.h"

#define EXPORT __attribute__((visibility("default")))

#ifndef TB_NAME
#if defined(TB_FAIL_CREATE)
#define TB_NAME "failcreate"
#elif defined(TB_FAIL_GEMM)
#define TB_NAME "failgemm"
#else
#define TB_NAME "naive"
#endif
#endif

typedef struct tb_state { aac_precision precision; long calls; } tb_state;
typedef struct tb_weight { float *wt; const float *w; int n, k; aac_precision precision; } tb_weight; /* wt [k x n] */

static float round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

static aac_status tb_create(const aac_backend_options *opt, void **state, aac_error *err) {
#ifdef TB_FAIL_CREATE
    (void)opt, (void)state;
    snprintf(err->message, sizeof err->message, "this test backend never starts");
    err->code = AAC_ERR_UNSUPPORTED;
    return AAC_ERR_UNSUPPORTED;
#else
    (void)err;
    tb_state *s = calloc(1, sizeof *s);
    if (!s) return AAC_ERR_NOMEM;
    s->precision = opt->precision;
    *state = s;
    return AAC_OK;
#endif
}

static void tb_destroy(void *state) { free(state); }
static const char *tb_kernels(void *state) {
    return ((tb_state *)state)->precision == AAC_PRECISION_BF16 ? "plain loops, bf16 weight products"
                                                                : "plain loops";
}

static aac_status tb_gemm(void *state, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc, aac_error *err) {
    tb_state *s = state;
#ifdef TB_FAIL_GEMM
    long c;
#pragma omp atomic capture
    c = ++s->calls;
    if (c > 20) {
        snprintf(err->message, sizeof err->message, "product %d x %d x %d refused on purpose", M, N, K);
        err->code = AAC_ERR_UNSUPPORTED;
        return AAC_ERR_UNSUPPORTED;
    }
#else
    (void)s, (void)err;
#endif
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                       (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta != 0.0f ? beta * (double)*c : 0.0));
        }
    return AAC_OK;
}

static aac_status tb_prepare(void *state, const float *w, int n, int k, int m_rows,
                             aac_precision precision, void **handle, aac_error *err) {
    (void)m_rows, (void)err, (void)state;
    tb_weight *h = malloc(sizeof *h);
    if (!h || !(h->wt = malloc(sizeof(float) * (size_t)n * k))) {
        free(h);
        return AAC_ERR_NOMEM;
    }
    h->w = w, h->n = n, h->k = k, h->precision = precision;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            const float v = w[(size_t)i * k + j];
            h->wt[(size_t)j * n + i] = precision == AAC_PRECISION_BF16 ? round_bf16(v) : v;
        }
    *handle = h;
    return AAC_OK;
}

static void tb_release(void *state, void *handle) {
    (void)state;
    tb_weight *h = handle;
    free(h->wt);
    free(h);
}

static aac_status tb_linear(void *state, const void *handle, int M, const float *A, int lda,
                            float alpha, float beta, float *C, int ldc, aac_error *err) {
    const tb_weight *h = handle;
    if (h->precision != AAC_PRECISION_BF16)
        return tb_gemm(state, 0, 0, M, h->n, h->k, alpha, A, lda, h->wt, h->n, beta, C, ldc, err);
    float *a = malloc(sizeof(float) * (size_t)M * h->k);
    if (!a) return AAC_ERR_NOMEM;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < h->k; j++) a[(size_t)i * h->k + j] = round_bf16(A[(size_t)i * lda + j]);
    aac_status r = tb_gemm(state, 0, 0, M, h->n, h->k, alpha, a, h->k, h->wt, h->n, beta, C, ldc, err);
    free(a);
    return r;
}

static const aac_backend k_table = {
#ifdef TB_BAD_ABI
    .abi_version = 999,
#else
    .abi_version = AAC_BACKEND_ABI_VERSION,
#endif
    .struct_size = sizeof(aac_backend),
    .name = TB_NAME,
    .version = "test backend 1",
    .caps = AAC_BACKEND_CAP_F32 | AAC_BACKEND_CAP_BF16 | AAC_BACKEND_CAP_PREPARED |
            AAC_BACKEND_CAP_THREAD_INVARIANT | AAC_BACKEND_CAP_CONCURRENT,
    .create = tb_create,
    .destroy = tb_destroy,
    .kernels = tb_kernels,
#ifndef TB_NO_GEMM
    .gemm = tb_gemm,
#endif
    .prepare_weight = tb_prepare,
    .release_weight = tb_release,
    .linear = tb_linear,
};

#ifndef TB_NO_ENTRY
EXPORT const aac_backend *aaclip_backend_entry(uint32_t host_abi_version) {
#ifdef TB_NULL_ENTRY
    (void)host_abi_version;
    return k_table.name ? NULL : &k_table;
#else
    (void)host_abi_version; /* answers with its table whatever is asked: the host checks it */
    return &k_table;
#endif
}
#else
EXPORT const aac_backend *some_other_function(void) { return &k_table; }
#endif
