/* cmd_bench.c - `aaclip bench`: per-slice time of the adapted vision tower + maps on random
 * weights, against the matrix products alone: every product shape of one slice, each run whole
 * through every available backend (at the precision the engine would use for it), in the same
 * process. Ratios against the best of them are what to compare across machines; absolute
 * rates vary with the host and its load. Raw seconds are printed in full so that every printed
 * ratio can be checked against them. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "aaclip_backend.h"
#include "cli.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* How the engine issues a product (model_backend.c): with a prepared frozen weight, at float32
 * or at the run's precision, or as a plain product of activations / unprepared weights. */
typedef enum { PROD_GEMM, PROD_WEIGHT_F32, PROD_WEIGHT } prod_kind;

/* One matrix product of the per-slice work: C[M x N] = A[M x K] op(B), `count` times. */
typedef struct gemm_shape { int M, N, K, count, b_trans; prod_kind kind; const char *what; } gemm_shape;

/* The products of one adapted vision pass + maps, in the order the engine issues them. */
static int slice_gemms(const aac_config *c, gemm_shape *g, int cap) {
    const int G = c->img / c->patch, Np = G * G, N = Np + 1, W = c->v_width, E = c->embed_dim;
    const int hw = c->v_head_width, heads = W / hw, P3 = 3 * c->patch * c->patch;
    const int levels = c->n_levels ? c->n_levels : 4;
    const int adapt = c->image_adapt_until ? c->image_adapt_until : (c->v_layers < 6 ? c->v_layers : 6);
    int n = 0;
#define PUSH(m_, n_, k_, cnt, bt, kind, what) \
    if (n < cap) g[n++] = (gemm_shape){m_, n_, k_, cnt, bt, kind, what};
    PUSH(Np, W, P3, 1, 1, PROD_WEIGHT_F32, "patch embedding")
    PUSH(N, 3 * W, W, c->v_layers, 1, PROD_WEIGHT_F32, "qkv")
    PUSH(N, N, hw, c->v_layers * heads, 1, PROD_GEMM, "attention scores")
    PUSH(N, hw, N, c->v_layers * heads, 0, PROD_GEMM, "attention values")
    PUSH(N, W, W, c->v_layers, 1, PROD_WEIGHT, "out-projection")
    PUSH(N, 4 * W, W, c->v_layers, 1, PROD_WEIGHT, "MLP c_fc")
    PUSH(N, W, 4 * W, c->v_layers, 1, PROD_WEIGHT, "MLP c_proj")
    PUSH(N, W, W, adapt, 1, PROD_GEMM, "adapters")
    PUSH(Np, E, W, levels + 1, 1, PROD_GEMM, "seg/det projections")
    PUSH(Np, 2, E, levels, 0, PROD_GEMM, "similarity")
#undef PUSH
    return n;
}

static double gemm_flops(const gemm_shape *g, int n) {
    double f = 0;
    for (int i = 0; i < n; i++) f += 2.0 * g[i].M * g[i].N * g[i].K * g[i].count;
    return f;
}

/* Seconds of the whole sequence on one backend instance: each shape timed alone (warm-up,
 * then the best of `reps` calls) times its count. < 0 when the backend failed (err says why). */
static double time_sequence(aac_compute *cx, const gemm_shape *g, int ng, int reps, const float *A,
                            const float *B, float *C, aac_error *err) {
    const aac_backend *be = aac_compute_backend(cx);
    void *st = aac_compute_state(cx);
    double total = 0;
    for (int i = 0; i < ng; i++) {
        const gemm_shape *s = &g[i];
        void *h = NULL;
        if (s->kind != PROD_GEMM && be->prepare_weight) {
            const aac_precision pr = s->kind == PROD_WEIGHT ? aac_compute_precision(cx) : AAC_PRECISION_F32;
            if (be->prepare_weight(st, B, s->N, s->K, s->M, pr, &h, err)) return -1;
        }
        double best = 1e30;
        for (int r = 0; r <= reps; r++) {
            const double t0 = now();
            aac_status rc = h ? be->linear(st, h, s->M, A, s->K, 1.0f, 0.0f, C, s->N, err)
                              : be->gemm(st, 0, s->b_trans, s->M, s->N, s->K, 1.0f, A, s->K, B,
                                         s->b_trans ? s->K : s->N, 0.0f, C, s->N, err);
            const double t = now() - t0;
            if (rc) {
                if (h) be->release_weight(st, h);
                return -1;
            }
            if (r > 0 && t < best) best = t;
        }
        if (h) be->release_weight(st, h);
        total += best * s->count;
    }
    return total;
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

/* "model name" of /proc/cpuinfo with family and model numbers. */
static void cpu_model(char *buf, size_t cap) {
    char name[160] = "unknown", line[512];
    int family = -1, model = -1;
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        if (!strncmp(line, "model name", 10) && !strcmp(name, "unknown")) {
            snprintf(name, sizeof name, "%s", colon + 2);
            name[strcspn(name, "\n")] = '\0';
        } else if (!strncmp(line, "cpu family", 10) && family < 0) {
            family = atoi(colon + 1);
        } else if (!strncmp(line, "model\t", 6) && model < 0) {
            model = atoi(colon + 1);
        }
        if (line[0] == '\n' && family >= 0) break; /* first processor only */
    }
    if (f) fclose(f);
    snprintf(buf, cap, "%s (family %d, model %d)", name, family, model);
}

static void bench_help(void) {
    printf("usage: aaclip bench [--config vit-l-14-336|vit-b-16|tiny] [--size S] [--threads N]\n"
           "                    [--reps N] [--backend NAME|auto] [--precision f32|bf16]\n"
           "\n"
           "Times the full per-slice inference (adapted vision tower, level features, maps) on\n"
           "random weights with the selected backend, then every matrix product shape of that\n"
           "work alone on each available backend (each shape whole, best of --reps, times its\n"
           "count), and prints:\n"
           "  cpu: ..., kernels: ... (the OpenBLAS kernel set), engine: ... (backend in use)\n"
           "  gemm: backend=... precision=... seconds=... gflops=... (one line per backend)\n"
           "  bench: config=... s_per_slice=... gflop=... gflops=... best_gemm=... \n"
           "         best_gemm_seconds=... best_gemm_gflops=... efficiency=... vs_best_gemm=...\n"
           "efficiency = best_gemm_seconds / s_per_slice (1.0: the slice costs no more than its\n"
           "products on the fastest backend at the same precision); vs_best_gemm is its inverse.\n"
           "\n");
    backend_opts_help();
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
    aac_model_params bp = aac_model_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const int b = backend_opts_parse(&bp, argc, argv, &i);
        if (b < 0) return 2;
        if (b) continue;
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
    aac_plugins *plugins = NULL;
    if (aac_plugins_open(NULL, &plugins, &err) || aac_model_random(&c, 42, &m, &err) ||
        aac_model_set_backend(m, plugins, bp.backend, bp.precision, &err)) {
        fprintf(stderr, "aaclip bench: %s\n", err.message);
        aac_model_free(m);
        aac_plugins_free(plugins);
        return 1;
    }
    char cpu[256], kern[320];
    cpu_model(cpu, sizeof cpu);
    aac_blas_kernels bk;
    aac_blas_kernels_query(&bk);
    aac_blas_kernels_describe(&bk, kern, sizeof kern);
    printf("cpu: %s, %d threads\nkernels: %s\nengine: %s\n", cpu, threads, kern, aac_model_backend(m));
    fflush(stdout);

    const aac_config *mc = aac_model_config(m);
    const int S = mc->img, G = aac_model_grid(m), Np = G * G, E = mc->embed_dim;
    float *img = malloc(sizeof(float) * 3 * (size_t)S * S);
    float *sum = malloc(sizeof(float) * (size_t)S * S);
    float *T = malloc(sizeof(float) * 2 * (size_t)E);
    aac_vision_out v = {.det_token = malloc(sizeof(float) * E)};
    for (int k = 0; k < mc->n_levels; k++) v.seg_tokens[k] = malloc(sizeof(float) * (size_t)Np * E);
    uint64_t s = 7;
    for (size_t i = 0; i < 3 * (size_t)S * S; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        img[i] = (float)((s >> 40) * (1.0 / 8388608.0)) - 1.0f;
    }
    for (int e = 0; e < 2 * E; e++) T[e] = (e % 3 == 0 ? 0.1f : -0.05f);

    /* warm-up (page faults, buffers), then the timed passes */
    double best = 1e30;
    int rc = 1;
    for (int r = 0; r <= reps; r++) {
        double t0 = now();
        if (aac_encode_image(m, img, 1, &v, &err) ||
            aac_anomaly_maps(m, &v, T, AAC_DOMAIN_MEDICAL, NULL, sum, NULL, &err)) {
            fprintf(stderr, "aaclip bench: %s\n", err.message);
            goto done;
        }
        double t = now() - t0;
        if (r > 0 && t < best) best = t;
    }

    /* the same products alone, on every backend and precision there is */
    gemm_shape g[16];
    const int ng = slice_gemms(mc, g, 16);
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < ng; i++) {
        size_t a = (size_t)g[i].M * g[i].K, b = (size_t)g[i].K * g[i].N, cc = (size_t)g[i].M * g[i].N;
        maxa = a > maxa ? a : maxa, maxb = b > maxb ? b : maxb, maxc = cc > maxc ? cc : maxc;
    }
    float *A = malloc(sizeof(float) * maxa), *B = malloc(sizeof(float) * maxb), *C = malloc(sizeof(float) * maxc);
    for (size_t i = 0; i < maxa; i++) A[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (size_t i = 0; i < maxb; i++) B[i] = (float)(i % 5) * 0.1f - 0.2f;
    const double flops = gemm_flops(g, ng);
    const aac_precision prec = aac_model_precision(m);
    double best_g = -1;
    char best_name[64] = "";
    aac_backend_desc d;
    for (int i = 0; aac_plugins_get(plugins, i, &d); i++) {
        if (d.refused || !d.name) continue;
        for (int pr = 0; pr <= 1; pr++) {
            const aac_precision p = pr ? AAC_PRECISION_BF16 : AAC_PRECISION_F32;
            if (!(d.caps & (pr ? AAC_BACKEND_CAP_BF16 : AAC_BACKEND_CAP_F32))) continue;
            aac_compute *cx = NULL;
            aac_error e = {0};
            double t = -1;
            if (aac_compute_open(plugins, d.name, p, threads, &cx, &e) == AAC_OK)
                t = time_sequence(cx, g, ng, reps, A, B, C, &e);
            if (t > 0) {
                printf("gemm: backend=%s precision=%s seconds=%.9g gflops=%.6g kernels=\"%s\"\n", d.name,
                       aac_precision_name(p), t, flops / t * 1e-9,
                       aac_compute_backend(cx)->kernels(aac_compute_state(cx)));
                if (p == prec && (best_g < 0 || t < best_g)) {
                    best_g = t;
                    snprintf(best_name, sizeof best_name, "%s/%s", d.name, aac_precision_name(p));
                }
            } else {
                printf("gemm: backend=%s precision=%s unavailable: %s\n", d.name, aac_precision_name(p), e.message);
            }
            aac_compute_free(cx);
            fflush(stdout);
        }
    }
    free(A), free(B), free(C);
    if (best_g <= 0) {
        fprintf(stderr, "aaclip bench: no backend ran the products at %s\n", aac_precision_name(prec));
        goto done;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double wmib = weight_bytes(mc) / 1048576.0, rss = ru.ru_maxrss / 1024.0;
    printf("memory: weights_mib=%.0f peak_rss_mib=%.0f above_weights_mib=%.0f\n", wmib, rss, rss - wmib);
    printf("bench: config=%s size=%d threads=%d backend=%s precision=%s s_per_slice=%.9g gflop=%.9g "
           "gflops=%.6g best_gemm=%s best_gemm_seconds=%.9g best_gemm_gflops=%.6g efficiency=%.6g "
           "vs_best_gemm=%.6g peak_rss_mib=%.0f\n",
           cfg_name, S, threads, aac_model_backend_name(m), aac_precision_name(prec), best,
           flops * 1e-9, flops / best * 1e-9, best_name, best_g, flops / best_g * 1e-9, best_g / best,
           best / best_g, rss);
    rc = 0;
done:
    free(img), free(sum), free(T), free(v.det_token);
    for (int k = 0; k < mc->n_levels; k++) free(v.seg_tokens[k]);
    aac_model_free(m);
    aac_plugins_free(plugins);
    return rc;
}
