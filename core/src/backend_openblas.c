/* backend_openblas.c - the built-in backend: cblas_sgemm under aaclip's own threading, and
 * the check that OpenBLAS runs kernels that fit the CPU.
 *
 * aaclip runs OpenBLAS single-threaded and splits each product by rows over its own OpenMP
 * threads: one thread pool, no spinning BLAS workers fighting the elementwise kernels for
 * cores, and every output row computed by the same kernel call shape whatever the thread
 * count (OpenBLAS blocks over K identically for any M), so results do not depend on it. */
#define _GNU_SOURCE
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "compute.h"
#include "error.h"

/* Not in every cblas.h. */
char *openblas_get_corename(void);
char *openblas_get_config(void);

#define RESTART_ENV "AACLIP_OPENBLAS_RESTARTED"    /* set for the restarted process: the old core */
#define USER_CORE_ENV "AACLIP_OPENBLAS_USER_CORETYPE" /* ... and the OPENBLAS_CORETYPE it had */
#define KEEP_ENV "AACLIP_KEEP_OPENBLAS_CORETYPE"     /* 1: never override OPENBLAS_CORETYPE */

static void gemm_rows(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt <= 1 || M < 64 || (double)M * N * K < 1e6) {
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* chunks of whole 16-row panels so every thread runs full microkernel tiles */
    const int panels = (M + 15) / 16;
#pragma omp parallel num_threads(nt)
    {
        const int t = omp_get_thread_num(), n = omp_get_num_threads();
        const int p0 = panels * t / n, p1 = panels * (t + 1) / n;
        const int r0 = p0 * 16, r1 = p1 * 16 < M ? p1 * 16 : M;
        /* row r of C is row r of A, or column r of A when A is transposed */
        const float *Ar = ta == CblasTrans ? A + r0 : A + (size_t)r0 * lda;
        if (r1 > r0)
            cblas_sgemm(CblasRowMajor, ta, tb, r1 - r0, N, K, alpha, Ar, lda, B, ldb, beta,
                        C + (size_t)r0 * ldc, ldc);
    }
}

void compute_threads_init(int n) {
    openblas_set_num_threads(1);
    if (n > 0) omp_set_num_threads(n);
}

/* ---------------------------------------------------------------- kernel check */

enum { ISA_SSE = 0, ISA_AVX, ISA_AVX2, ISA_AVX512, ISA_AVX512_BF16 };
static const char *const k_isa_names[] = {"sse", "avx", "avx2", "avx512", "avx512-bf16"};

/* What the CPU and the OS (saved register state) support. */
static int cpu_isa(int *amd) {
    *amd = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return ISA_SSE;
    const unsigned max_leaf = a;
    *amd = b == 0x68747541u; /* "Auth"enticAMD */
    __get_cpuid(1, &a, &b, &c, &d);
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return ISA_SSE;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 0x6) != 0x6) return ISA_SSE; /* the OS does not save YMM state */
    if (max_leaf < 7) return ISA_AVX;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, cd = (b >> 28) & 1,
              bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    if (!avx2 || !fma) return ISA_AVX;
    if (!(f && dq && cd && bw && vl) || (xlo & 0xe6) != 0xe6) return ISA_AVX2;
    __cpuid_count(7, 1, a, b, c, d);
    return (a >> 5) & 1 ? ISA_AVX512_BF16 : ISA_AVX512;
#else
    return ISA_SSE;
#endif
}

/* ISA class of OpenBLAS's single-precision GEMM kernels per core name (-1: unknown name,
 * left alone). Cooperlake and SapphireRapids run the SkylakeX sgemm kernels. */
static int core_isa(const char *core) {
    static const struct { const char *name; int isa; } k[] = {
        {"SapphireRapids", ISA_AVX512}, {"Cooperlake", ISA_AVX512}, {"SkylakeX", ISA_AVX512},
        {"Haswell", ISA_AVX2}, {"Zen", ISA_AVX2}, {"SandyBridge", ISA_AVX}, {"Bulldozer", ISA_AVX},
        {"Piledriver", ISA_AVX}, {"Steamroller", ISA_AVX}, {"Excavator", ISA_AVX},
        {"Prescott", ISA_SSE}, {"Core2", ISA_SSE}, {"Penryn", ISA_SSE}, {"Dunnington", ISA_SSE},
        {"Nehalem", ISA_SSE}, {"Atom", ISA_SSE}, {"Opteron", ISA_SSE}, {"Opteron_SSE3", ISA_SSE},
        {"Barcelona", ISA_SSE}, {"Bobcat", ISA_SSE}, {"Nano", ISA_SSE}, {"Katmai", ISA_SSE},
        {"Coppermine", ISA_SSE}, {"Northwood", ISA_SSE}, {"Banias", ISA_SSE}, {"Athlon", ISA_SSE}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strcasecmp(core, k[i].name)) return k[i].isa;
    return -1;
}

void aac_blas_kernels_query(aac_blas_kernels *out) {
    memset(out, 0, sizeof *out);
    const char *core = openblas_get_corename(), *cfg = openblas_get_config();
    snprintf(out->core, sizeof out->core, "%s", core ? core : "unknown");
    snprintf(out->config, sizeof out->config, "%s", cfg ? cfg : "");
    int amd;
    const int isa = cpu_isa(&amd);
    snprintf(out->cpu_isa, sizeof out->cpu_isa, "%s", k_isa_names[isa]);
    const int have = core_isa(out->core);
    const int want = isa > ISA_AVX512 ? ISA_AVX512 : isa; /* bf16 adds nothing to sgemm */
    out->below_cpu = have >= 0 && have < want;
    if (out->below_cpu) {
        const char *best = isa == ISA_AVX512_BF16 ? "Cooperlake"
                           : isa == ISA_AVX512    ? "SkylakeX"
                           : isa == ISA_AVX2      ? (amd ? "Zen" : "Haswell")
                                                  : "SandyBridge";
        snprintf(out->best_core, sizeof out->best_core, "%s", best);
    }
    const char *keep = getenv(KEEP_ENV), *from = getenv(RESTART_ENV);
    out->can_switch = strstr(out->config, "DYNAMIC_ARCH") && !from &&
                      !(getenv("OPENBLAS_CORETYPE") && keep && !strcmp(keep, "1"));
    if (from) snprintf(out->restarted_from, sizeof out->restarted_from, "%s", from);
}

void aac_blas_kernels_describe(const aac_blas_kernels *k, char *buf, size_t cap) {
    char ver[32] = "";
    /* openblas_get_config(): "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..." */
    if (!strncmp(k->config, "OpenBLAS ", 9)) sscanf(k->config + 9, "%31s", ver);
    int n = snprintf(buf, cap, "OpenBLAS %s %s kernels (CPU: %s", ver[0] ? ver : "?", k->core, k->cpu_isa);
    if (n < 0 || (size_t)n >= cap) return;
    if (k->restarted_from[0])
        n += snprintf(buf + n, cap - n, "; restarted from %s", k->restarted_from);
    else if (k->below_cpu)
        n += snprintf(buf + n, cap - n, "; below the CPU, %s would fit", k->best_core);
    if (n > 0 && (size_t)n < cap) snprintf(buf + n, cap - n, ")");
}

void aac_blas_kernels_fix(char **argv, char *note, size_t note_cap) {
    if (note && note_cap) note[0] = '\0';
    aac_blas_kernels k;
    aac_blas_kernels_query(&k);
    if (k.restarted_from[0]) {
        const char *user = getenv(USER_CORE_ENV), *now = getenv("OPENBLAS_CORETYPE");
        if (!note) return;
        if (k.below_cpu)
            snprintf(note, note_cap, "OpenBLAS still runs its %s kernels on this CPU (%s) after a restart "
                     "with OPENBLAS_CORETYPE=%s", k.core, k.cpu_isa, now ? now : "");
        else if (user)
            snprintf(note, note_cap, "OPENBLAS_CORETYPE=%s in the environment selects OpenBLAS's %s kernels, "
                     "below this CPU (%s): restarted with OPENBLAS_CORETYPE=%s (%s=1 keeps the "
                     "environment's)", user, k.restarted_from, k.cpu_isa, now ? now : "", KEEP_ENV);
        else
            snprintf(note, note_cap, "OpenBLAS chose its %s kernels on this CPU (%s): restarted with "
                     "OPENBLAS_CORETYPE=%s (set it yourself to skip the restart)", k.restarted_from,
                     k.cpu_isa, now ? now : "");
        return;
    }
    if (!k.below_cpu) return;
    if (!k.can_switch || !argv) {
        if (note)
            snprintf(note, note_cap, "OpenBLAS runs its %s kernels on a CPU with %s (%s): its products "
                     "run at a fraction of the CPU's speed", k.core, k.cpu_isa,
                     !strstr(k.config, "DYNAMIC_ARCH") ? "not a DYNAMIC_ARCH build"
                     : getenv(KEEP_ENV) ? KEEP_ENV " is set" : "no restart asked");
        return;
    }
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (user) setenv(USER_CORE_ENV, user, 1);
    setenv("OPENBLAS_CORETYPE", k.best_core, 1);
    setenv(RESTART_ENV, k.core, 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* still here: the restart failed; run on as we are */
    if (user) setenv("OPENBLAS_CORETYPE", user, 1);
    else unsetenv("OPENBLAS_CORETYPE");
    unsetenv(RESTART_ENV);
    unsetenv(USER_CORE_ENV);
    if (note)
        snprintf(note, note_cap, "OpenBLAS runs its %s kernels on a CPU with %s; restarting with "
                 "OPENBLAS_CORETYPE=%s failed", k.core, k.cpu_isa, k.best_core);
}

/* ---------------------------------------------------------------- the backend table */

typedef struct builtin_state { char kernels[256]; } builtin_state;

static aac_status bi_create(const aac_backend_options *opt, void **state, aac_error *err) {
    (void)opt;
    builtin_state *s = calloc(1, sizeof *s);
    if (!s) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    openblas_set_num_threads(1);
    aac_blas_kernels k;
    aac_blas_kernels_query(&k);
    aac_blas_kernels_describe(&k, s->kernels, sizeof s->kernels);
    *state = s;
    return AAC_OK;
}

static void bi_destroy(void *state) { free(state); }

static const char *bi_kernels(void *state) {
    return state ? ((builtin_state *)state)->kernels : "OpenBLAS";
}

static aac_status bi_gemm(void *state, int ta, int tb, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc, aac_error *err) {
    (void)state, (void)err;
    gemm_rows(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
    return AAC_OK;
}

static const aac_backend k_builtin = {
    .abi_version = AAC_BACKEND_ABI_VERSION,
    .struct_size = sizeof(aac_backend),
    .name = AAC_BACKEND_BUILTIN,
    .version = "built-in (OpenBLAS cblas_sgemm)",
    .caps = AAC_BACKEND_CAP_F32 | AAC_BACKEND_CAP_CONCURRENT | AAC_BACKEND_CAP_THREAD_INVARIANT,
    .create = bi_create,
    .destroy = bi_destroy,
    .kernels = bi_kernels,
    .gemm = bi_gemm,
};

const aac_backend *builtin_backend(void) { return &k_builtin; }
