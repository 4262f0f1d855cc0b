/* onednn_backend.c - the "onednn" compute backend: oneDNN (Debian libdnnl-dev 2.6, v2 C API).
 *
 * Products with frozen weights (the vision tower) run as oneDNN matmul primitives on a copy of
 * the weight made once at model load, in the blocked layout (and, at bf16, the data type) the
 * primitive asked for: brgemm kernels for the CPU's best ISA (avx512_core, avx512_core_bf16,
 * AMX where present; oneDNN decides and kernels() reports it). At bf16 the activations are
 * rounded to bfloat16 before each such product; accumulation and outputs stay float32. Every
 * other product (attention, adapters, training) runs in float32 through dnnl_sgemm, which is
 * safe to call from several threads (inside an OpenMP region it runs single-threaded).
 *
 * The plugin links libdnnl only; it never calls libaaclip (it fills aac_error itself). */
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "aaclip_backend.h"

#if defined(__GNUC__)
#define DN_EXPORT __attribute__((visibility("default")))
#define DN_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DN_EXPORT
#define DN_PRINTF(a, b)
#endif

#define DN_STR_(x) #x
#define DN_STR(x) DN_STR_(x)
#define DN_MAX_SHAPES 8 /* primitives kept per prepared weight (row counts x strides x beta) */

typedef struct dn_state {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    aac_precision precision;
    pthread_mutex_t lock;  /* linear: the stream, the primitive caches, the bf16 buffer */
    uint16_t *abuf;        /* activations rounded to bf16 */
    size_t abuf_cap;
    char kernels[320];
} dn_state;

typedef struct dn_prim {
    int M, lda, ldc, beta;
    dnnl_primitive_t prim; /* NULL: this shape falls back to dnnl_sgemm */
} dn_prim;

typedef struct dn_weight {
    const float *w; /* the caller's float32 weight [n x k] (fallback) */
    int n, k;
    aac_precision precision;
    dnnl_memory_desc_t md; /* layout of the prepared copy */
    dnnl_memory_t mem;
    dn_prim shapes[DN_MAX_SHAPES];
    int n_shapes;
} dn_weight;

static aac_status fail(aac_error *err, aac_status code, const char *fmt, ...) DN_PRINTF(3, 4);
static aac_status fail(aac_error *err, aac_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

#define DN_TRY(call, what)                                                                 \
    do {                                                                                   \
        dnnl_status_t st_ = (call);                                                        \
        if (st_ != dnnl_success) {                                                         \
            s = fail(err, st_ == dnnl_out_of_memory ? AAC_ERR_NOMEM : AAC_ERR_UNSUPPORTED, \
                     "oneDNN %s: %s", what, dnnl_status2str(st_));                         \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch ((int)isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
    }
}

static dnnl_data_type_t dtype(aac_precision p) { return p == AAC_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32; }

/* Primitive descriptor of C[M x n] (+)= A[M x k] W with W given as wmd (or "any"). */
static dnnl_status_t matmul_pd(dn_state *st, aac_precision prec, int M, int n, int k, int lda,
                               int ldc, int beta, const dnnl_memory_desc_t *wmd,
                               dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t a, w, c;
    dnnl_dims_t da = {M, k}, sa = {prec == AAC_PRECISION_BF16 ? k : lda, 1};
    dnnl_dims_t dw = {k, n}, dc = {M, n}, sc = {ldc, 1};
    dnnl_status_t r;
    if ((r = dnnl_memory_desc_init_by_strides(&a, 2, da, dtype(prec), sa)) ||
        (r = dnnl_memory_desc_init_by_strides(&c, 2, dc, dnnl_f32, sc)))
        return r;
    if (wmd) w = *wmd;
    else if ((r = dnnl_memory_desc_init_by_tag(&w, 2, dw, dtype(prec), dnnl_format_tag_any)))
        return r;
    dnnl_matmul_desc_t md;
    if ((r = dnnl_matmul_desc_init(&md, &a, &w, NULL, &c))) return r;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (!(r = dnnl_primitive_attr_create(&attr)) && beta) {
        if (!(r = dnnl_post_ops_create(&po)) && !(r = dnnl_post_ops_append_sum(po, 1.0f)))
            r = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (!r) r = dnnl_primitive_desc_create(pd, &md, attr, st->eng, NULL);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return r;
}

static const char *impl_of(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return "?";
    return impl;
}

/* ---------------------------------------------------------------- instance */

static aac_status dn_create(const aac_backend_options *opt, void **state, aac_error *err) {
    aac_status s = AAC_OK;
    dnnl_primitive_desc_t pd = NULL;
    dn_state *st = calloc(1, sizeof *st);
    if (!st) return fail(err, AAC_ERR_NOMEM, "out of memory");
    st->precision = opt->precision;
    pthread_mutex_init(&st->lock, NULL);
    DN_TRY(dnnl_engine_create(&st->eng, dnnl_cpu, 0), "engine");
    DN_TRY(dnnl_stream_create(&st->stream, st->eng, dnnl_stream_default_flags), "stream");
    /* which matmul implementation this CPU gets at this precision (also proves it has one) */
    DN_TRY(matmul_pd(st, st->precision, 512, 1024, 1024, 1024, 1024, 0, NULL, &pd),
           "matmul for this CPU and precision");
    const char *impl = impl_of(pd);
    if (!strncmp(impl, "ref", 3)) {
        s = fail(err, AAC_ERR_UNSUPPORTED, "oneDNN has only its reference (slow) %s matmul on this CPU",
                 st->precision == AAC_PRECISION_BF16 ? "bf16" : "f32");
        goto done;
    }
    const dnnl_version_t *v = dnnl_version();
    snprintf(st->kernels, sizeof st->kernels,
             "oneDNN %d.%d.%d, ISA %s: matmul %s on %s blocked weights; other products dnnl_sgemm f32",
             v->major, v->minor, v->patch, isa_name(dnnl_get_effective_cpu_isa()), impl,
             st->precision == AAC_PRECISION_BF16 ? "bf16" : "f32");
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (s) {
        if (st->stream) dnnl_stream_destroy(st->stream);
        if (st->eng) dnnl_engine_destroy(st->eng);
        pthread_mutex_destroy(&st->lock);
        free(st);
        return s;
    }
    *state = st;
    return AAC_OK;
}

static void dn_destroy(void *state) {
    dn_state *st = state;
    if (!st) return;
    dnnl_stream_destroy(st->stream);
    dnnl_engine_destroy(st->eng);
    pthread_mutex_destroy(&st->lock);
    free(st->abuf);
    free(st);
}

static const char *dn_kernels(void *state) { return ((dn_state *)state)->kernels; }

/* ---------------------------------------------------------------- products */

static aac_status dn_gemm(void *state, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc, aac_error *err) {
    (void)state;
    /* oneDNN's sgemm takes row-major matrices (unlike BLAS) */
    dnnl_status_t r = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb,
                                 beta, C, ldc);
    if (r != dnnl_success)
        return fail(err, AAC_ERR_UNSUPPORTED, "oneDNN sgemm %d x %d x %d: %s", M, N, K, dnnl_status2str(r));
    return AAC_OK;
}

static aac_status dn_prepare(void *state, const float *w, int n, int k, int m_rows,
                             aac_precision precision, void **handle, aac_error *err) {
    dn_state *st = state;
    aac_status s = AAC_OK;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t src = NULL;
    dn_weight *h = calloc(1, sizeof *h);
    *handle = NULL;
    if (!h) return fail(err, AAC_ERR_NOMEM, "out of memory");
    h->w = w, h->n = n, h->k = k, h->precision = precision;
    if (m_rows < 1) m_rows = 1;
    /* the layout the primitive wants for m_rows rows of A */
    DN_TRY(matmul_pd(st, precision, m_rows, n, k, k, n, 0, NULL, &pd), "matmul");
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!want) {
        s = fail(err, AAC_ERR_UNSUPPORTED, "oneDNN matmul: no weights layout");
        goto done;
    }
    h->md = *want;
    /* w [n x k] row-major is the K x N weight in "ba" order; reorder (and convert) it once */
    dnnl_memory_desc_t plain;
    dnnl_dims_t dw = {k, n};
    DN_TRY(dnnl_memory_desc_init_by_tag(&plain, 2, dw, dnnl_f32, dnnl_ba), "weights");
    DN_TRY(dnnl_memory_create(&src, &plain, st->eng, (void *)w), "weights");
    DN_TRY(dnnl_memory_create(&h->mem, &h->md, st->eng, DNNL_MEMORY_ALLOCATE), "weight copy");
    DN_TRY(dnnl_reorder_primitive_desc_create(&rpd, &plain, st->eng, &h->md, st->eng, NULL), "reorder");
    DN_TRY(dnnl_primitive_create(&reorder, rpd), "reorder");
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, h->mem}};
    pthread_mutex_lock(&st->lock);
    dnnl_status_t r = dnnl_primitive_execute(reorder, st->stream, 2, args);
    if (r == dnnl_success) r = dnnl_stream_wait(st->stream);
    pthread_mutex_unlock(&st->lock);
    DN_TRY(r, "reorder");
done:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (src) dnnl_memory_destroy(src);
    if (s) {
        if (h->mem) dnnl_memory_destroy(h->mem);
        free(h);
        return s;
    }
    *handle = h;
    return AAC_OK;
}

static void dn_release(void *state, void *handle) {
    (void)state;
    dn_weight *h = handle;
    if (!h) return;
    for (int i = 0; i < h->n_shapes; i++)
        if (h->shapes[i].prim) dnnl_primitive_destroy(h->shapes[i].prim);
    dnnl_memory_destroy(h->mem);
    free(h);
}

/* The primitive for this call shape (created on first use; NULL: use dnnl_sgemm). */
static dnnl_primitive_t shape_prim(dn_state *st, dn_weight *h, int M, int lda, int ldc, int beta) {
    for (int i = 0; i < h->n_shapes; i++) {
        const dn_prim *p = &h->shapes[i];
        if (p->M == M && p->lda == lda && p->ldc == ldc && p->beta == beta) return p->prim;
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    if (matmul_pd(st, h->precision, M, h->n, h->k, lda, ldc, beta, &h->md, &pd) == dnnl_success) {
        /* a reference implementation would be far slower than sgemm on the float weights */
        if (strncmp(impl_of(pd), "ref", 3) != 0 && dnnl_primitive_create(&prim, pd) != dnnl_success)
            prim = NULL;
        dnnl_primitive_desc_destroy(pd);
    }
    if (h->n_shapes < DN_MAX_SHAPES) h->shapes[h->n_shapes++] = (dn_prim){M, lda, ldc, beta, prim};
    else if (prim) { /* cache full: odd shapes are rare; run this one without keeping it */
        dnnl_primitive_destroy(prim);
        prim = NULL;
    }
    return prim;
}

/* src [M x k] (row stride lda) rounded to bf16 into st->abuf [M x k] (nearest even). */
static int to_bf16(dn_state *st, const float *src, int M, int k, int lda) {
    const size_t need = (size_t)M * k;
    if (need > st->abuf_cap) {
        uint16_t *b = realloc(st->abuf, need * sizeof *b);
        if (!b) return 0;
        st->abuf = b, st->abuf_cap = need;
    }
    uint16_t *dst = st->abuf;
#pragma omp parallel for schedule(static) if (need > 65536)
    for (int r = 0; r < M; r++) {
        const float *s = src + (size_t)r * lda;
        uint16_t *d = dst + (size_t)r * k;
        for (int j = 0; j < k; j++) {
            uint32_t u;
            memcpy(&u, &s[j], 4);
            d[j] = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x40) /* quiet NaN */
                                                   : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
    }
    return 1;
}

static aac_status dn_linear(void *state, const void *handle, int M, const float *A, int lda,
                            float alpha, float beta, float *C, int ldc, aac_error *err) {
    dn_state *st = state;
    dn_weight *h = (dn_weight *)handle;
    if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f))
        return dn_gemm(st, 0, 1, M, h->n, h->k, alpha, A, lda, h->w, h->k, beta, C, ldc, err);
    aac_status s = AAC_OK;
    dnnl_memory_t ma = NULL, mc = NULL;
    pthread_mutex_lock(&st->lock);
    dnnl_primitive_t prim = shape_prim(st, h, M, lda, ldc, beta != 0.0f);
    if (!prim) {
        pthread_mutex_unlock(&st->lock);
        return dn_gemm(st, 0, 1, M, h->n, h->k, alpha, A, lda, h->w, h->k, beta, C, ldc, err);
    }
    const void *a = A;
    if (h->precision == AAC_PRECISION_BF16) {
        if (!to_bf16(st, A, M, h->k, lda)) {
            s = fail(err, AAC_ERR_NOMEM, "out of memory");
            goto done;
        }
        a = st->abuf;
    }
    const_dnnl_primitive_desc_t pd;
    DN_TRY(dnnl_primitive_get_primitive_desc(prim, &pd), "matmul");
    DN_TRY(dnnl_memory_create(&ma, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), st->eng,
                              (void *)a), "matmul source");
    DN_TRY(dnnl_memory_create(&mc, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), st->eng, C),
           "matmul destination");
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, h->mem}, {DNNL_ARG_DST, mc}};
    DN_TRY(dnnl_primitive_execute(prim, st->stream, 3, args), "matmul");
    DN_TRY(dnnl_stream_wait(st->stream), "matmul");
done:
    pthread_mutex_unlock(&st->lock);
    if (ma) dnnl_memory_destroy(ma);
    if (mc) dnnl_memory_destroy(mc);
    return s;
}

/* ---------------------------------------------------------------- entry */

static const aac_backend k_onednn = {
    .abi_version = AAC_BACKEND_ABI_VERSION,
    .struct_size = sizeof(aac_backend),
    .name = "onednn",
    .version = "aaclip-onednn 1 (built with oneDNN " DN_STR(DNNL_VERSION_MAJOR) "." DN_STR(
        DNNL_VERSION_MINOR) "." DN_STR(DNNL_VERSION_PATCH) ")",
    .caps = AAC_BACKEND_CAP_F32 | AAC_BACKEND_CAP_BF16 | AAC_BACKEND_CAP_PREPARED | AAC_BACKEND_CAP_CONCURRENT,
    .create = dn_create,
    .destroy = dn_destroy,
    .kernels = dn_kernels,
    .gemm = dn_gemm,
    .prepare_weight = dn_prepare,
    .release_weight = dn_release,
    .linear = dn_linear,
};

DN_EXPORT const aac_backend *aaclip_backend_entry(uint32_t host_abi_version) {
    return host_abi_version == AAC_BACKEND_ABI_VERSION ? &k_onednn : NULL;
}
