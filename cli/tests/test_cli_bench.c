/* test_cli_bench.c - `aaclip bench` on the tiny shape: the report's structure and arithmetic,
 * never its speed. The work per slice (gflop) is recomputed here from the model shape; every
 * derived number (GFLOP/s, efficiency, ratio to the best GEMM) must equal what the printed raw
 * seconds give, to the printed precision; the best GEMM must be the fastest gemm line at the
 * run's precision. Nothing here depends on timing or machine load. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"
#include "tu_run.h"


/* value of "key=" in line (up to the next space), or NAN */
static double num(const char *line, const char *key) {
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

static void str(const char *line, const char *key, char *out, size_t cap) {
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    const char *p = strstr(line, k);
    out[0] = '\0';
    if (p) snprintf(out, cap, "%.*s", (int)strcspn(p + strlen(k), " \n"), p + strlen(k));
}

/* a printed with %.6g equals b to its 6 significant digits */
static int same6(double a, double b) { return fabs(a - b) <= 1e-5 * fabs(b) && a == a; }

/* The matrix work of one adapted slice of the tiny model (golden shape: E 24, W 48, 3 heads
 * of 16, 24 blocks, patch 14, 518 px, adapters on 6 blocks, 4 levels), derived here. */
static double tiny_gflop(void) {
    const double E = 24, W = 48, hw = 16, H = 3, L = 24, P = 14, G = 37, Np = G * G, N = Np + 1;
    double f = Np * W * 3 * P * P;                                   /* patch embedding */
    f += L * (N * 3 * W * W + H * N * N * hw * 2 + N * W * W + 2 * N * 4 * W * W); /* blocks */
    f += 6 * N * W * W + 5 * Np * E * W + 4 * Np * 2 * E;            /* adapters, projections, maps */
    return 2 * f * 1e-9;
}

int main(void) {
    static char buf[65536];
    int rc = tu_run(AACLIP_EXE " bench --config tiny --reps 1 --threads 2", buf, sizeof buf);
    CHECK(rc == 0, "bench failed (%d): %s", rc, buf);
    const char *cpu = strstr(buf, "cpu: "), *kern = strstr(buf, "kernels: OpenBLAS "),
               *eng = strstr(buf, "engine: ");
    CHECK(cpu && kern && eng, "cpu / kernels / engine lines missing: %s", buf);
    const char *line = strstr(buf, "bench: config=tiny size=518 threads=2 backend=openblas precision=f32 ");
    CHECK(line != NULL, "summary line missing: %s", buf);
    if (line) {
        const double s = num(line, "s_per_slice"), gflop = num(line, "gflop"), gflops = num(line, "gflops");
        const double bs = num(line, "best_gemm_seconds"), bg = num(line, "best_gemm_gflops");
        const double eff = num(line, "efficiency"), vs = num(line, "vs_best_gemm"), rss = num(line, "peak_rss_mib");
        char best[64], best_s[64];
        str(line, "best_gemm", best, sizeof best);
        str(line, "best_gemm_seconds", best_s, sizeof best_s);
        printf("  s_per_slice %g, gflop %.9g (expected %.9g), best %s %g s\n", s, gflop, tiny_gflop(), best, bs);
        CHECK(s > 0 && bs > 0 && rss > 1, "values: %s", line);
        CHECK(fabs(gflop - tiny_gflop()) <= 1e-8 * tiny_gflop(), "gflop %.9g, expected %.9g", gflop, tiny_gflop());
        CHECK(same6(gflops, gflop / s), "gflops %g is not gflop / s_per_slice %g", gflops, gflop / s);
        CHECK(same6(bg, gflop / bs), "best_gemm_gflops %g is not gflop / best_gemm_seconds %g", bg, gflop / bs);
        CHECK(same6(eff, bs / s), "efficiency %g is not best_gemm_seconds / s_per_slice %g", eff, bs / s);
        CHECK(same6(vs, s / bs), "vs_best_gemm %g is not s_per_slice / best_gemm_seconds %g", vs, s / bs);
        /* every gemm line: its own arithmetic; the best is the fastest f32 one, printed alike */
        int n_gemm = 0, found_best = 0;
        double fastest = 1e300;
        for (const char *g = strstr(buf, "gemm: backend="); g; g = strstr(g + 1, "gemm: backend=")) {
            if (g > buf && g[-1] != '\n') continue;
            char l[1024], name[64], prec[16], secs[64];
            snprintf(l, sizeof l, "%.*s", (int)strcspn(g, "\n"), g); /* this line only */
            str(l, "backend", name, sizeof name);
            str(l, "precision", prec, sizeof prec);
            str(l, "seconds", secs, sizeof secs);
            if (!secs[0]) continue; /* "unavailable: why" */
            const double t = strtod(secs, NULL);
            n_gemm++;
            CHECK(t > 0 && same6(num(l, "gflops"), gflop / t), "gemm line arithmetic: %s", l);
            if (!strcmp(prec, "f32") && t < fastest) fastest = t;
            char want[96];
            snprintf(want, sizeof want, "%s/%s", name, prec);
            if (!strcmp(want, best) && !strcmp(secs, best_s)) found_best = 1;
        }
        CHECK(n_gemm >= 1, "no gemm lines: %s", buf);
        CHECK(found_best, "best_gemm %s %s is not one of the gemm lines", best, best_s);
        CHECK(fastest == bs, "best_gemm_seconds %.9g is not the fastest f32 gemm line %.9g", bs, fastest);
        CHECK(strstr(buf, "gemm: backend=openblas precision=f32 seconds=") != NULL, "built-in gemm line missing");
    }
    /* usage and selection errors */
    rc = tu_run(AACLIP_EXE " bench --config nope", buf, sizeof buf);
    CHECK(rc == 2 && strstr(buf, "nope"), "bad config accepted (%d): %s", rc, buf);
    rc = tu_run(AACLIP_EXE " bench --config tiny --precision f16", buf, sizeof buf);
    CHECK(rc == 2 && strstr(buf, "--precision expects f32 or bf16"), "bad precision (%d): %s", rc, buf);
    rc = tu_run(AACLIP_EXE " bench --config tiny --backend nope", buf, sizeof buf);
    CHECK(rc == 1 && strstr(buf, "backend 'nope' not found") && strstr(buf, "openblas"),
          "unknown backend (%d): %s", rc, buf);
    rc = tu_run(AACLIP_EXE " bench --config tiny --backend openblas --precision bf16", buf, sizeof buf);
    CHECK(rc == 1 && strstr(buf, "'openblas' has no bf16 products"), "built-in bf16 (%d): %s", rc, buf);
    return tu_finish("test_cli_bench");
}
