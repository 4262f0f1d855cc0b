/* cmd_bench.c - `aaclip bench`: per-slice time of the adapted vision tower + maps on random
 * weights, against cblas_sgemm running the same matrix shapes in the same process. The ratio
 * (efficiency) is what to compare across machines; absolute rates vary with the host. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One matrix product of the per-slice work: C[M x N] = A[M x K] B, repeated `count` times. */
typedef struct gemm_shape { int M, N, K, count, b_trans; } gemm_shape;

/* The GEMMs of one adapted vision pass + maps, in the order the engine issues them. */
static int slice_gemms(const aac_config *c, gemm_shape *g, int cap) {
    const int G = c->img / c->patch, Np = G * G, N = Np + 1, W = c->v_width, E = c->embed_dim;
    const int hw = c->v_head_width, heads = W / hw, P3 = 3 * c->patch * c->patch;
    int n = 0;
#define PUSH(m_, n_, k_, cnt, bt) \
    if (n < cap) g[n++] = (gemm_shape){m_, n_, k_, cnt, bt};
    PUSH(Np, W, P3, 1, 1)                               /* patch embedding */
    PUSH(N, 3 * W, W, c->v_layers, 1)                   /* qkv */
    PUSH(N, N, hw, c->v_layers * heads, 1)              /* scores */
    PUSH(N, hw, N, c->v_layers * heads, 0)              /* weighted values */
    PUSH(N, W, W, c->v_layers, 1)                       /* out_proj */
    PUSH(N, 4 * W, W, c->v_layers, 1)                   /* c_fc */
    PUSH(N, W, 4 * W, c->v_layers, 1)                   /* c_proj */
    PUSH(N, W, W, c->image_adapt_until, 1)              /* adapters */
    PUSH(Np, E, W, c->n_levels + 1, 1)                  /* seg and det projections */
    PUSH(Np, 2, E, c->n_levels, 0)                      /* similarity to the anchors */
#undef PUSH
    return n;
}

static double gemm_flops(const gemm_shape *g, int n) {
    double f = 0;
    for (int i = 0; i < n; i++) f += 2.0 * g[i].M * g[i].N * g[i].K * g[i].count;
    return f;
}

/* Runs the GEMM sequence once through cblas_sgemm; returns seconds. */
static double time_gemms(const gemm_shape *g, int n, float *A, float *B, float *C) {
    double t0 = now();
    for (int i = 0; i < n; i++)
        for (int r = 0; r < g[i].count; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, g[i].b_trans ? CblasTrans : CblasNoTrans,
                        g[i].M, g[i].N, g[i].K, 1.0f, A, g[i].K, B,
                        g[i].b_trans ? g[i].K : g[i].N, 0.0f, C, g[i].N);
    return now() - t0;
}

/* Bytes of float32 weights of the model (backbone + adapters), for the memory budget. */
static double weight_bytes(const aac_config *c) {
    const double W = c->v_width, Wt = c->t_width, E = c->embed_dim, P = c->patch;
    const double g0 = (double)c->native / c->patch;
    double n = W * 3 * P * P + W + (g0 * g0 + 1) * W + 4 * W + W * E;
    n += c->v_layers * (12 * W * W + 13 * W);
    n += (double)c->vocab * Wt + c->context * Wt + c->t_layers * (12 * Wt * Wt + 13 * Wt) + 2 * Wt + Wt * E;
    n += c->text_adapt_until * Wt * Wt + E * Wt + c->image_adapt_until * W * W + (c->n_levels + 1) * E * W;
    return 4 * n;
}

static void bench_help(void) {
    printf("usage: aaclip bench [--config vit-l-14-336|vit-b-16|tiny] [--size S] [--threads N]\n"
           "                    [--reps N]\n"
           "\n"
           "Times the full per-slice inference (adapted vision tower, level features, maps) on\n"
           "random weights, then the same cblas_sgemm calls alone, and prints one summary line:\n"
           "bench: config=... size=... threads=... s_per_slice=... gflops=... sgemm_gflops=...\n"
           "       efficiency=... peak_rss_mib=...\n");
}

static int config_by_name(const char *name, aac_config *c) {
    memset(c, 0, sizeof *c);
    if (!strcmp(name, "vit-l-14-336")) {
        *c = (aac_config){.embed_dim = 768, .v_width = 1024, .v_head_width = 64, .v_layers = 24,
                          .patch = 14, .native = 336, .t_width = 768, .t_heads = 12,
                          .t_layers = 12, .img = 518};
    } else if (!strcmp(name, "vit-b-16")) {
        *c = (aac_config){.embed_dim = 512, .v_width = 768, .v_head_width = 64, .v_layers = 12,
                          .patch = 16, .native = 224, .t_width = 512, .t_heads = 8,
                          .t_layers = 12, .img = 512};
    } else if (!strcmp(name, "tiny")) { /* the shape of the golden test model */
        *c = (aac_config){.embed_dim = 24, .v_width = 48, .v_head_width = 16, .v_layers = 24,
                          .patch = 14, .native = 336, .t_width = 32, .t_heads = 2,
                          .t_layers = 12, .img = 518};
    } else {
        return -1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *cfg_name = "vit-l-14-336";
    int size = 0, threads = 0, reps = 3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            bench_help();
            return 0;
        } else if (v && !strcmp(a, "--config")) cfg_name = argv[++i];
        else if (!strcmp(a, "--size")) {
            if (parse_int(a, v, 14, 4096, &size)) return 2;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(a, v, 1, 1024, &threads)) return 2;
            i++;
        } else if (!strcmp(a, "--reps")) {
            if (parse_int(a, v, 1, 1000, &reps)) return 2;
            i++;
        } else {
            fprintf(stderr, "aaclip bench: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
    }
    aac_config c;
    if (config_by_name(cfg_name, &c)) {
        fprintf(stderr, "aaclip bench: unknown --config '%s' (vit-l-14-336, vit-b-16, tiny)\n", cfg_name);
        return 2;
    }
    if (size) c.img = size;
    set_threads(threads);
    if (!threads) threads = omp_get_max_threads();

    aac_error err = {0};
    aac_model *m = NULL;
    if (aac_model_random(&c, 42, &m, &err)) {
        fprintf(stderr, "aaclip bench: %s\n", err.message);
        return 1;
    }
    const aac_config *mc = aac_model_config(m);
    const int S = mc->img, G = aac_model_grid(m), Np = G * G, E = mc->embed_dim;
    float *img = malloc(sizeof(float) * 3 * (size_t)S * S);
    float *sum = malloc(sizeof(float) * (size_t)S * S);
    float T[2 * 1024];
    aac_vision_out v = {.det_token = malloc(sizeof(float) * E)};
    for (int k = 0; k < mc->n_levels; k++) v.seg_tokens[k] = malloc(sizeof(float) * (size_t)Np * E);
    uint64_t s = 7;
    for (size_t i = 0; i < 3 * (size_t)S * S; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        img[i] = (float)((s >> 40) * (1.0 / 8388608.0)) - 1.0f;
    }
    for (int e = 0; e < 2 * E && e < 2048; e++) T[e] = (e % 3 == 0 ? 0.1f : -0.05f);

    /* warm-up (page faults, OpenBLAS buffers), then the timed passes */
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        if (aac_encode_image(m, img, 1, &v, &err) ||
            aac_anomaly_maps(m, &v, T, AAC_DOMAIN_MEDICAL, NULL, sum, NULL, &err)) {
            fprintf(stderr, "aaclip bench: %s\n", err.message);
            return 1;
        }
        double t = now() - t0;
        if (r > 0 && t < best) best = t;
    }

    gemm_shape g[16];
    int ng = slice_gemms(mc, g, 16);
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < ng; i++) {
        size_t a = (size_t)g[i].M * g[i].K, b = (size_t)g[i].K * g[i].N, cc = (size_t)g[i].M * g[i].N;
        maxa = a > maxa ? a : maxa, maxb = b > maxb ? b : maxb, maxc = cc > maxc ? cc : maxc;
    }
    float *A = calloc(maxa, sizeof(float)), *B = calloc(maxb, sizeof(float)), *C = calloc(maxc, sizeof(float));
    for (size_t i = 0; i < maxa; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < maxb; i++) B[i] = (float)(i % 5) * 0.1f;
    /* the reference: OpenBLAS threading itself over the same calls */
    openblas_set_num_threads(threads);
    double best_g = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t = time_gemms(g, ng, A, B, C);
        if (r > 0 && t < best_g) best_g = t;
    }
    openblas_set_num_threads(1);
    const double flops = gemm_flops(g, ng);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double wmib = weight_bytes(mc) / 1048576.0, rss = ru.ru_maxrss / 1024.0;
    printf("memory: weights_mib=%.0f peak_rss_mib=%.0f above_weights_mib=%.0f\n", wmib, rss, rss - wmib);
    printf("bench: config=%s size=%d threads=%d s_per_slice=%.3f gflops=%.1f sgemm_gflops=%.1f "
           "efficiency=%.3f peak_rss_mib=%.0f\n",
           cfg_name, S, threads, best, flops / best * 1e-9, flops / best_g * 1e-9, best_g / best,
           ru.ru_maxrss / 1024.0);
    free(A), free(B), free(C), free(img), free(sum), free(v.det_token);
    for (int k = 0; k < mc->n_levels; k++) free(v.seg_tokens[k]);
    aac_model_free(m);
    return 0;
}
