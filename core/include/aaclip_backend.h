/* aaclip_backend.h - compute backends: the plugin ABI, and choosing one.
 *
 * A backend does the engine's matrix products (inference and training). The built-in backend
 * "openblas" (cblas_sgemm, single-threaded OpenBLAS under aaclip's own row-panel split) is the
 * default and the reference every other backend is checked against. Other backends are shared
 * objects (plugins) that export one C function,
 *
 *     const aac_backend *aaclip_backend_entry(uint32_t host_abi_version);
 *
 * returning a static table built for AAC_BACKEND_ABI_VERSION (a plugin may support several
 * versions and answer the one asked for, or return NULL). The host refuses a table of another
 * ABI version, a table smaller than it needs, a bad name or a missing required function, and
 * says why (`aaclip plugins`). Plugins must not call into libaaclip: they fill aac_error
 * themselves (code + message; the struct is in aaclip.h). See docs/plugins.md.
 *
 * Conventions of every product: float32 row-major matrices with explicit row strides
 * (lda, ldb, ldc >= the row length), C = alpha * op(A) op(B) + beta * C, beta 0 or 1 in the
 * engine's calls, and when beta == 0 C is written without being read (it may hold NaN).
 */
#ifndef AACLIP_BACKEND_H
#define AACLIP_BACKEND_H

#include <stdint.h>

#include "aaclip.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the table below. Any change to aac_backend or aac_backend_options that an
 * existing plugin would misread bumps it; added capability bits do not. */
#define AAC_BACKEND_ABI_VERSION 1u
#define AAC_BACKEND_ENTRY_SYMBOL "aaclip_backend_entry"
#define AAC_BACKEND_BUILTIN "openblas"

/* Capabilities. */
#define AAC_BACKEND_CAP_F32 (1u << 0)        /* float32 products, float32 accumulation */
#define AAC_BACKEND_CAP_BF16 (1u << 1)       /* bfloat16 inputs of weight products, float32
                                                accumulation and outputs */
#define AAC_BACKEND_CAP_PREPARED (1u << 2)   /* prepare_weight keeps its own copy of weights
                                                (reordered, converted) made once at load */
#define AAC_BACKEND_CAP_CONCURRENT (1u << 3) /* gemm may be called from several OpenMP threads
                                                at once (it then runs single-threaded); without
                                                it the engine calls gemm from one thread only */
#define AAC_BACKEND_CAP_THREAD_INVARIANT (1u << 4) /* results do not depend on the thread count */

typedef struct aac_backend_options {
    uint32_t struct_size;   /* sizeof(aac_backend_options) as the host knows it */
    aac_precision precision;
    int n_threads;          /* the engine's OpenMP threads (the backend may use fewer) */
} aac_backend_options;

typedef struct aac_backend {
    uint32_t abi_version;   /* AAC_BACKEND_ABI_VERSION the table was built for */
    uint32_t struct_size;   /* sizeof(aac_backend) of the plugin */
    const char *name;       /* 1-31 of [a-z0-9_-], unique; --backend NAME selects it */
    const char *version;    /* of the plugin and of the library it wraps, one line */
    uint32_t caps;          /* AAC_BACKEND_CAP_* */

    /* An instance for one precision (a backend without AAC_BACKEND_CAP_BF16 is never asked for
     * bf16). Required. */
    aac_status (*create)(const aac_backend_options *opt, void **state, aac_error *err);
    void (*destroy)(void *state); /* required */
    /* The kernel set the instance runs, one line (library, ISA, implementation). Required. */
    const char *(*kernels)(void *state);

    /* C[M x N] = alpha op(A) op(B) + beta C; op(A) [M x K] is A [M x K] or, with trans_a,
     * A [K x M]; op(B) [K x N] is B [K x N] or, with trans_b, B [N x K]. Products of two
     * activations (attention) and of weights that were not prepared come here, always in
     * float32 whatever the precision. Required. */
    aac_status (*gemm)(void *state, int trans_a, int trans_b, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb, float beta, float *C,
                       int ldc, aac_error *err);

    /* Weight preparation (all three of prepare_weight, release_weight and linear, or none).
     * prepare_weight makes the backend's copy of a frozen weight w [n x k] (PyTorch Linear
     * layout [out, in]) for products with about m_rows rows of A, at `precision` (never below
     * the instance's: a bf16 instance is also asked for f32 weights, where the engine keeps
     * float32); *handle = NULL means "not prepared, use gemm". w stays valid and unchanged
     * while the handle lives. release_weight frees it. */
    aac_status (*prepare_weight)(void *state, const float *w, int n, int k, int m_rows,
                                 aac_precision precision, void **handle, aac_error *err);
    void (*release_weight)(void *state, void *handle);
    /* C[M x n] = alpha A[M x k] w^T + beta C with a prepared weight, at the weight's precision
     * (bf16: A rounded to bfloat16, float32 accumulation); any M (the backend falls back on
     * its own when M is not the prepared shape). Called from one thread at a time. */
    aac_status (*linear)(void *state, const void *handle, int M, const float *A, int lda,
                         float alpha, float beta, float *C, int ldc, aac_error *err);
} aac_backend;

typedef const aac_backend *(*aac_backend_entry_fn)(uint32_t host_abi_version);

/* ---------------------------------------------------------------- host side */

/* Plugins found on disk. Search order: the folders of search_path (colon-separated; NULL means
 * $AACLIP_PLUGIN_PATH), then <prefix>/lib/aaclip/plugins of the running executable
 * (<prefix>/bin/aaclip), then the build tree's plugins/ folder. In each folder the *.so files
 * and those of its immediate subfolders are tried. A file that cannot be used is kept in the
 * list with the reason; a later plugin with a name already taken is refused. Never fails
 * because of a plugin (only for memory). */
aac_status aac_plugins_open(const char *search_path, aac_plugins **out, aac_error *err);
void aac_plugins_free(aac_plugins *p);

typedef struct aac_backend_desc {
    const char *name;     /* NULL when the file was refused before its table could be read */
    const char *version;
    const char *path;     /* the shared object; NULL for the built-in backend */
    uint32_t caps;
    const char *refused;  /* why it cannot be used, or NULL */
} aac_backend_desc;

/* Entry i of the list: 0 is the built-in backend, then every file tried, in search order.
 * Returns 0 past the end. The strings live as long as p. p may be NULL (built-in only). */
int aac_plugins_get(const aac_plugins *p, int i, aac_backend_desc *out);
/* The folders searched, in order (NULL past the end). */
const char *aac_plugins_dir(const aac_plugins *p, int i);
/* "f32,bf16,prepared-weights,..." for a capability set. */
void aac_backend_caps_string(uint32_t caps, char *buf, size_t cap);

/* A backend instance ("compute"): `name` of the built-in backend or of a usable plugin of p
 * (p may be NULL: built-in only) at a precision, for n_threads (0: the OpenMP default). An
 * unknown name, a refused plugin or a precision the backend lacks is an error naming it. */
typedef struct aac_compute aac_compute;
aac_status aac_compute_open(const aac_plugins *p, const char *name, aac_precision precision,
                            int n_threads, aac_compute **out, aac_error *err);
void aac_compute_free(aac_compute *c);
const aac_backend *aac_compute_backend(const aac_compute *c);
void *aac_compute_state(const aac_compute *c);
aac_precision aac_compute_precision(const aac_compute *c);
/* One line: backend name, precision and its kernels(). */
const char *aac_compute_describe(const aac_compute *c);

/* ---------------------------------------------------------------- OpenBLAS kernels */

/* Which OpenBLAS kernel set runs here and whether the CPU could do better. Debian's OpenBLAS
 * 0.3.21 picks generic or older kernels on CPUs it does not know (Prescott on recent Intel
 * Xeons, Haswell on AMD Zen 5): half or less of the speed. */
typedef struct aac_blas_kernels {
    char core[32];        /* openblas_get_corename(): "SkylakeX", "Haswell", "Prescott", ... */
    char config[160];     /* openblas_get_config() */
    char cpu_isa[32];     /* best the CPU has: "avx512-bf16", "avx512", "avx2", "avx", "sse" */
    char best_core[32];   /* the core set to use for that ISA ("" when core is already right) */
    int below_cpu;        /* core is of a lower ISA class than the CPU supports */
    int can_switch;       /* DYNAMIC_ARCH build, not restarted yet, and no
                             AACLIP_KEEP_OPENBLAS_CORETYPE=1 next to an OPENBLAS_CORETYPE */
    char restarted_from[32]; /* when this process was restarted to fix it: the core it had */
} aac_blas_kernels;

void aac_blas_kernels_query(aac_blas_kernels *out);
/* For programs, first thing in main (before threads or OpenBLAS calls): when OpenBLAS runs
 * kernels below the CPU (its own choice, or an OPENBLAS_CORETYPE in the environment, unless
 * AACLIP_KEEP_OPENBLAS_CORETYPE=1), sets OPENBLAS_CORETYPE to the right core and re-executes
 * the program with the same arguments (OpenBLAS picks its kernels when it is loaded, so only a
 * new process can change them). Returns when nothing had to be done, when the restart failed,
 * and in the restarted process; *note (may be NULL) then says what was done or why not, or is
 * empty. After a restart, aac_blas_kernels_query reports restarted_from. */
void aac_blas_kernels_fix(char **argv, char *note, size_t note_cap);
/* "OpenBLAS 0.3.21 Cooperlake kernels (CPU: avx512-bf16; restarted from Haswell)". */
void aac_blas_kernels_describe(const aac_blas_kernels *k, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
