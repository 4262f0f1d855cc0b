/* compute.c - backend instances and the product wrappers the engine calls. */
#include "compute.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

const char *aac_precision_name(aac_precision p) { return p == AAC_PRECISION_BF16 ? "bf16" : "f32"; }

int aac_precision_parse(const char *s, aac_precision *out) {
    if (s && !strcmp(s, "f32")) *out = AAC_PRECISION_F32;
    else if (s && !strcmp(s, "bf16")) *out = AAC_PRECISION_BF16;
    else return -1;
    return 0;
}

void aac_backend_caps_string(uint32_t caps, char *buf, size_t cap) {
    static const struct { uint32_t bit; const char *name; } k[] = {
        {AAC_BACKEND_CAP_F32, "f32"}, {AAC_BACKEND_CAP_BF16, "bf16"},
        {AAC_BACKEND_CAP_PREPARED, "prepared-weights"}, {AAC_BACKEND_CAP_CONCURRENT, "concurrent"},
        {AAC_BACKEND_CAP_THREAD_INVARIANT, "thread-invariant"}};
    size_t n = 0;
    if (cap) buf[0] = '\0';
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (caps & k[i].bit) {
            int w = snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? "," : "", k[i].name);
            if (w > 0) n += (size_t)w;
        }
    if (n == 0 && cap) snprintf(buf, cap, "none");
}

aac_status aac_compute_open(const aac_plugins *p, const char *name, aac_precision precision,
                            int n_threads, aac_compute **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_compute_open: NULL argument");
    *out = NULL;
    if (!name) name = AAC_BACKEND_BUILTIN;
    const aac_backend *be;
    aac_status s = plugins_find(p, name, &be, err);
    if (s) return s;
    const uint32_t need = precision == AAC_PRECISION_BF16 ? AAC_BACKEND_CAP_BF16 : AAC_BACKEND_CAP_F32;
    if (!(be->caps & need)) {
        char caps[128];
        aac_backend_caps_string(be->caps, caps, sizeof caps);
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "backend '%s' has no %s products (capabilities: %s)",
                        be->name, aac_precision_name(precision), caps);
    }
    aac_compute *c = calloc(1, sizeof *c);
    if (!c) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    aac_backend_options opt = {sizeof opt, precision, n_threads > 0 ? n_threads : omp_get_max_threads()};
    aac_error e = {0};
    if ((s = be->create(&opt, &c->state, &e)) != AAC_OK) {
        free(c);
        return aac_fail(err, s ? s : AAC_ERR_UNSUPPORTED, "backend '%s' (%s): %s", be->name,
                        aac_precision_name(precision), e.message[0] ? e.message : "cannot start");
    }
    c->be = be;
    c->precision = precision;
    c->concurrent = (be->caps & AAC_BACKEND_CAP_CONCURRENT) != 0;
    const char *k = be->kernels(c->state);
    snprintf(c->describe, sizeof c->describe, "%s %s: %s", be->name, aac_precision_name(precision),
             k ? k : "?");
    *out = c;
    return AAC_OK;
}

void aac_compute_free(aac_compute *c) {
    if (!c) return;
    c->be->destroy(c->state);
    free(c);
}

const aac_backend *aac_compute_backend(const aac_compute *c) { return c ? c->be : builtin_backend(); }
void *aac_compute_state(const aac_compute *c) { return c ? c->state : NULL; }
aac_precision aac_compute_precision(const aac_compute *c) { return c ? c->precision : AAC_PRECISION_F32; }
const char *aac_compute_describe(const aac_compute *c) { return c ? c->describe : AAC_BACKEND_BUILTIN; }

void compute_fail(aac_compute *cx, const aac_error *e) {
    if (!cx) return;
#pragma omp critical(aac_compute_fail)
    if (!cx->failed) {
        cx->failed = 1;
        cx->err.code = e->code ? e->code : AAC_ERR_UNSUPPORTED;
        snprintf(cx->err.message, sizeof cx->err.message, "backend '%.31s': %.400s", cx->be->name,
                 e->message);
    }
}

aac_status compute_take_error(aac_compute *cx, aac_error *err) {
    if (!cx || !cx->failed) return AAC_OK;
    cx->failed = 0;
    return aac_fail(err, cx->err.code, "%s", cx->err.message);
}

static void product(aac_compute *cx, int ta, int tb, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const aac_backend *be = cx ? cx->be : builtin_backend();
    aac_error e;
    e.code = AAC_OK;
    e.message[0] = '\0';
    if (be->gemm(cx ? cx->state : NULL, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &e))
        compute_fail(cx, &e);
}

void gemm_nt(aac_compute *cx, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    product(cx, 0, 1, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_nn(aac_compute *cx, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    product(cx, 0, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gemm_tn(aac_compute *cx, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc) {
    product(cx, 1, 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void linear(aac_compute *cx, const float *w, const void *prep, int n, int k, int M, float alpha,
            const float *A, int lda, float beta, float *C, int ldc) {
    if (!prep || !cx || !cx->be->linear) {
        product(cx, 0, 1, M, n, k, alpha, A, lda, w, k, beta, C, ldc);
        return;
    }
    if (M <= 0) return;
    aac_error e;
    e.code = AAC_OK;
    e.message[0] = '\0';
    if (cx->be->linear(cx->state, prep, M, A, lda, alpha, beta, C, ldc, &e)) compute_fail(cx, &e);
}
