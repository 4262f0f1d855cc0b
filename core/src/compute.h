/* compute.h - the engine's matrix products through the selected backend (internal).
 *
 * Every product of the towers and of training goes through gemm_nt / gemm_nn / gemm_tn or
 * linear (a product with a frozen weight that the backend may have prepared). A NULL context
 * means the built-in backend (the reference), which the unit tests and contexts without a model
 * use. The block code cannot return a status from inside its loops: a failed product is recorded
 * in the context (the first one wins) and the public call that ran the pass returns it. */
#ifndef AAC_COMPUTE_H
#define AAC_COMPUTE_H
#include "aaclip_backend.h"

struct aac_compute {
    const aac_backend *be;
    void *state;
    aac_precision precision;
    int concurrent;   /* be->gemm may run on several threads at once */
    char describe[400];
    int failed;       /* a product failed since the last compute_take_error */
    aac_error err;    /* its message */
};

/* The built-in OpenBLAS backend's table (backend_openblas.c). */
const aac_backend *builtin_backend(void);
/* Makes OpenBLAS single-threaded and sets the OpenMP thread count (n <= 0: leave it).
 * Called once by the model constructors; the products are split by aaclip itself. */
void compute_threads_init(int n);

/* Looks up a usable backend table by name (the built-in one or a plugin of p). */
aac_status plugins_find(const aac_plugins *p, const char *name, const aac_backend **out,
                        aac_error *err);
/* Names of the usable backends of p, comma-separated, for messages. */
void plugins_names(const aac_plugins *p, char *buf, size_t cap);

/* C[M x N] = alpha * A[M x K] @ B[N x K]^T + beta * C (lda/ldb/ldc: row strides).
 * The weight layout of PyTorch's Linear ([out, in]) is exactly B here. */
void gemm_nt(aac_compute *cx, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
/* C[M x N] = alpha * A[M x K] @ B[K x N] + beta * C. */
void gemm_nn(aac_compute *cx, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
/* C[M x N] = alpha * A[K x M]^T @ B[K x N] + beta * C (weight gradients). */
void gemm_tn(aac_compute *cx, int M, int N, int K, float alpha, const float *A, int lda,
             const float *B, int ldb, float beta, float *C, int ldc);
/* C[M x n] = alpha * A[M x k] @ w[n x k]^T + beta * C with the frozen weight w, through the
 * backend's prepared copy `prep` when there is one (else as gemm_nt). */
void linear(aac_compute *cx, const float *w, const void *prep, int n, int k, int M, float alpha,
            const float *A, int lda, float beta, float *C, int ldc);
/* 1 when products may be issued from several threads at once. */
static inline int compute_concurrent(const aac_compute *cx) { return !cx || cx->concurrent; }

/* Records a failed product (thread-safe; the first failure is kept). */
void compute_fail(aac_compute *cx, const aac_error *e);
/* AAC_OK, or the first failure since the last call (copied into err) and clears it. */
aac_status compute_take_error(aac_compute *cx, aac_error *err);
#endif
