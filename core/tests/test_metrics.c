/* test_metrics.c - ROC AUC / average precision and the evaluation protocol against
 * scikit-learn: the test builds fixtures (heavy ties, signed zeros, one class, large sets, several
 * classes of both domains, lesion-wise detection on blob maps), core/tests/metrics_ref.py computes the expected values with
 * sklearn.metrics and numpy float32, and the C results must agree to 1e-12. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip_eval.h"
#include "testutil.h"

static uint64_t g_rng = 12345;
static double urand(void) {
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

#define MAX_CASES 16
typedef struct bcase { size_t n; float *s; uint8_t *l; } bcase;

static int close_or_nan(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-12;
}

int main(void) {
    char fix[512], exp_path[512], script[1024], cmd[4096];
    snprintf(fix, sizeof fix, "%s/metrics_fixture_%d.txt", AACLIP_BINARY_DIR, (int)getpid());
    snprintf(exp_path, sizeof exp_path, "%s/metrics_expected_%d.txt", AACLIP_BINARY_DIR, (int)getpid());
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash ? slash + 1 : script, sizeof script - (slash ? (size_t)(slash + 1 - script) : 0),
             "metrics_ref.py");

    /* ---- binary cases */
    bcase c[MAX_CASES];
    int nc = 0;
    const size_t sizes[] = {1, 2, 7, 50, 1000, 1000, 1000, 200000, 20, 30, 5};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        bcase *b = &c[nc++];
        b->n = sizes[k];
        b->s = malloc(sizeof(float) * b->n);
        b->l = malloc(b->n);
        for (size_t i = 0; i < b->n; i++) {
            const int lab = urand() < (k == 7 ? 0.02 : 0.3);
            double v = urand() + (lab ? 0.4 : 0.0);
            if (k == 4 || k == 7) v = floor(v * 8) / 8;         /* heavy ties */
            if (k == 5) v = floor(v * 3) / 3 - 0.5;              /* few levels around 0 */
            if (k == 6) v = (float)(v * 1e-3) - 5e-4;            /* tiny values */
            if (k == 8) v = (i % 2) ? 0.0 : -0.0;                /* signed zeros: all tied */
            b->s[i] = (float)v;
            b->l[i] = (uint8_t)lab;
        }
        if (k == 9) memset(b->l, 0, b->n); /* no positive */
        if (k == 10) memset(b->l, 1, b->n); /* no negative */
        if (k == 1) b->l[0] = 1, b->l[1] = 0;
    }

    /* ---- protocol: 3 classes (2 medical, 1 industrial), small maps with ties */
    enum { NIMG = 36, NPIX = 64 };
    static float maps[NIMG][NPIX];
    static uint8_t masks[NIMG][NPIX];
    float det[NIMG];
    int lab[NIMG];
    const char *cls[NIMG];
    aac_domain dom[NIMG];
    for (int i = 0; i < NIMG; i++) {
        cls[i] = i % 3 == 0 ? "Brain" : i % 3 == 1 ? "bottle" : "Liver";
        dom[i] = i % 3 == 1 ? AAC_DOMAIN_INDUSTRIAL : AAC_DOMAIN_MEDICAL;
        lab[i] = urand() < 0.5;
        det[i] = (float)(urand() * 0.4 + 0.4 + 0.1 * lab[i]);
        for (int p = 0; p < NPIX; p++) {
            masks[i][p] = lab[i] && p % 8 > 3 && p / 8 > 4;
            double v = 3.0 + urand() * 2 + (masks[i][p] ? 0.25 : 0);
            maps[i][p] = (float)(i % 2 ? floor(v * 16) / 16 : v);
        }
    }

    /* ---- lesion-wise detection: smooth maps of bright blobs, lesions (disks) under some blobs,
     * lesions no blob marks, blobs on no lesion, lesions below the minimum size, normal images */
    enum { RIMG = 14, RW = 48, RH = 40, RMIN = 12 };
    static float rmaps[RIMG][RW * RH];
    static uint8_t rmasks[RIMG][RW * RH];
    for (int i = 0; i < RIMG; i++) {
        for (int p = 0; p < RW * RH; p++) rmaps[i][p] = (float)(urand() * 0.3);
        const int nb = 1 + (int)(urand() * 4);
        for (int b = 0; b < nb; b++) {
            const double cx = 4 + urand() * (RW - 8), cy = 4 + urand() * (RH - 8), r = 1 + urand() * 5;
            const double amp = 0.5 + urand() * 2;
            const int lesion = i % 4 != 3 && urand() < 0.7, marked = urand() < 0.75;
            for (int y = 0; y < RH; y++)
                for (int x = 0; x < RW; x++) {
                    const double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                    if (marked) rmaps[i][y * RW + x] += (float)(amp * exp(-d2 / (2 * r * r)));
                    if (lesion && d2 <= r * r) rmasks[i][y * RW + x] = 1;
                }
        }
    }
    rmaps[5][3] = 9.0f; /* one hot pixel: a false region at most thresholds */

    FILE *f = fopen(fix, "w");
    CHECK(f != NULL, "cannot write %s", fix);
    if (!f) return 1;
    for (int k = 0; k < nc; k++) {
        fprintf(f, "B %zu\n", c[k].n);
        for (size_t i = 0; i < c[k].n; i++) fprintf(f, "%.9g %d\n", c[k].s[i], c[k].l[i]);
    }
    fprintf(f, "P %d\n", NIMG);
    for (int i = 0; i < NIMG; i++) {
        fprintf(f, "%s %d %d %.9g %d\n", cls[i], (int)dom[i], NPIX, det[i], lab[i]);
        for (int p = 0; p < NPIX; p++) fprintf(f, "%.9g %d\n", maps[i][p], masks[i][p]);
    }
    fprintf(f, "R %d %d\n", RIMG, RMIN);
    for (int i = 0; i < RIMG; i++) {
        fprintf(f, "%d %d\n", RW, RH);
        for (int p = 0; p < RW * RH; p++) fprintf(f, "%.9g %d\n", rmaps[i][p], rmasks[i][p]);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", script, fix, exp_path);
    int rc = system(cmd);
    CHECK(rc == 0, "%s failed (python3-sklearn installed? tools/install-deps.sh)", cmd);
    FILE *e = rc == 0 ? fopen(exp_path, "r") : NULL;
    if (!e) return tu_finish("test_metrics");

    aac_error err;
    for (int k = 0; k < nc; k++) {
        double ea, ep, a, p;
        char ba[64], bp[64];
        CHECK(fscanf(e, "%63s %63s", ba, bp) == 2, "expected line %d", k);
        ea = strtod(ba, NULL), ep = strtod(bp, NULL);
        CHECK_OK(aac_binary_metrics(c[k].s, c[k].l, c[k].n, &a, &p, &err), &err);
        printf("  case %2d n=%-7zu auroc %.15f (sklearn %.15f)  ap %.15f (sklearn %.15f)\n", k, c[k].n, a, ea, p, ep);
        CHECK(close_or_nan(a, ea), "case %d auroc %.17g vs %.17g", k, a, ea);
        CHECK(close_or_nan(p, ep), "case %d ap %.17g vs %.17g", k, p, ep);
    }

    aac_eval *ev;
    CHECK_OK(aac_eval_new(&ev, &err), &err);
    for (int i = 0; i < NIMG; i++)
        CHECK_OK(aac_eval_add(ev, cls[i], dom[i], maps[i], masks[i], 8, NPIX / 8, det[i], lab[i], &err), &err);
    CHECK(aac_eval_add(ev, "Brain", AAC_DOMAIN_INDUSTRIAL, maps[0], NULL, 8, NPIX / 8, 0.5f, 0, &err) == AAC_ERR_ARG,
          "a class with two domains is refused");
    const aac_eval_class *res;
    int ncls;
    aac_eval_class mean;
    CHECK_OK(aac_eval_compute(ev, &res, &ncls, &mean, &err), &err);
    CHECK(ncls == 3, "3 classes, got %d", ncls);
    double sum[4] = {0};
    for (int k = 0; k < ncls && k < 3; k++) {
        char name[128], b[8][64];
        CHECK(fscanf(e, "%127s %63s %63s %63s %63s %63s %63s %63s %63s", name, b[0], b[1], b[2], b[3], b[4], b[5],
                     b[6], b[7]) == 9,
              "protocol line");
        const double want[4] = {strtod(b[0], NULL), strtod(b[1], NULL), strtod(b[2], NULL), strtod(b[3], NULL)};
        const double got[4] = {res[k].pixel_auroc, res[k].pixel_ap, res[k].image_auroc, res[k].image_ap};
        printf("  %-8s pixel %.12f %.12f image %.12f %.12f (sklearn %.12f %.12f %.12f %.12f)\n", res[k].name,
               got[0], got[1], got[2], got[3], want[0], want[1], want[2], want[3]);
        CHECK(!strcmp(name, res[k].name), "class order %s vs %s", res[k].name, name);
        for (int q = 0; q < 4; q++) {
            CHECK(close_or_nan(got[q], want[q]), "%s metric %d: %.17g vs %.17g", name, q, got[q], want[q]);
            sum[q] += got[q];
        }
        /* F1-max and its threshold (a normalised float32 map value: equal, not just close) */
        const double f1 = strtod(b[4], NULL), thr = strtod(b[5], NULL);
        printf("  %-8s F1-max %.12f at %.9g (numpy %.12f at %.9g), raw range %g..%g\n", res[k].name,
               res[k].pixel_f1_max, res[k].pixel_f1_threshold, f1, thr, res[k].map_low, res[k].map_high);
        CHECK(close_or_nan(res[k].pixel_f1_max, f1), "%s F1-max %.17g vs %.17g", name, res[k].pixel_f1_max, f1);
        CHECK((isnan(thr) && isnan(res[k].pixel_f1_threshold)) || (float)res[k].pixel_f1_threshold == (float)thr,
              "%s F1 threshold %.9g vs %.9g", name, res[k].pixel_f1_threshold, thr);
        CHECK((float)res[k].map_low == strtof(b[6], NULL) && (float)res[k].map_high == strtof(b[7], NULL),
              "%s raw range %.9g..%.9g vs %s..%s", name, res[k].map_low, res[k].map_high, b[6], b[7]);
    }
    CHECK(fabs(mean.pixel_auroc - sum[0] / 3) < 1e-15 && fabs(mean.image_ap - sum[3] / 3) < 1e-15, "mean");
    CHECK(mean.n_images == NIMG && mean.n_pixels == NIMG * NPIX, "mean counts");
    /* computing twice gives the same numbers; adding after computing is refused */
    const aac_eval_class first = res[0], *res2;
    CHECK_OK(aac_eval_compute(ev, &res2, &ncls, NULL, &err), &err);
    CHECK(res2[0].pixel_auroc == first.pixel_auroc && res2[0].image_ap == first.image_ap, "recompute");
    CHECK(aac_eval_add(ev, "Brain", AAC_DOMAIN_MEDICAL, maps[0], NULL, 8, NPIX / 8, 0.5f, 0, &err) == AAC_ERR_ARG,
          "add after compute is refused");
    aac_eval_free(ev);

    /* lesion-wise detection against scipy.ndimage (same quantisation, levels and rule) */
    CHECK_OK(aac_eval_new(&ev, &err), &err);
    CHECK(aac_eval_set_min_lesion_pixels(ev, -1, &err) == AAC_ERR_ARG, "negative minimum refused");
    CHECK_OK(aac_eval_set_min_lesion_pixels(ev, RMIN, &err), &err);
    for (int i = 0; i < RIMG; i++) {
        int any = 0;
        for (int p = 0; p < RW * RH; p++) any |= rmasks[i][p];
        CHECK_OK(aac_eval_add(ev, "Liver", AAC_DOMAIN_MEDICAL, rmaps[i], i % 2 ? rmasks[i] : (any ? rmasks[i] : NULL), RW,
                              RH, 0.5f, any, &err),
                 &err);
    }
    CHECK_OK(aac_eval_compute(ev, &res, &ncls, NULL, &err), &err);
    {
        char b[6][64];
        CHECK(fscanf(e, "%63s %63s %63s %63s %63s %63s", b[0], b[1], b[2], b[3], b[4], b[5]) == 6, "region line");
        const double f1 = strtod(b[0], NULL), thr = strtod(b[1], NULL), pr = strtod(b[2], NULL),
                     rc2 = strtod(b[3], NULL);
        const long long les = strtoll(b[4], NULL, 10), nreg = strtoll(b[5], NULL, 10);
        printf("  region F1 %.12f at %.2f (P %.4f R %.4f, %lld lesions, %lld regions); scipy %.12f at %.2f "
               "(P %.4f R %.4f, %lld, %lld)\n",
               res[0].region_f1_max, res[0].region_threshold, res[0].region_precision, res[0].region_recall,
               (long long)res[0].n_lesions, (long long)res[0].n_regions, f1, thr, pr, rc2, les, nreg);
        CHECK(res[0].n_lesions == les && res[0].n_regions == nreg, "lesion / region counts");
        CHECK((float)res[0].region_threshold == (float)thr, "region threshold %.9g vs %.9g", res[0].region_threshold, thr);
        CHECK(close_or_nan(res[0].region_f1_max, f1) && close_or_nan(res[0].region_precision, pr) &&
                  close_or_nan(res[0].region_recall, rc2),
              "region F1 / precision / recall");
        CHECK(res[0].region_f1_max > 0.3 && res[0].region_f1_max < 1, "a fixture with misses and false regions");
    }
    aac_eval_free(ev);

    /* A hand-made case: one lesion found by one region, one lesion no region reaches, one false
     * region, one lesion below the minimum size with a region on it (counted neither way). */
    {
        enum { W = 12, H = 8 };
        float m[W * H] = {0};
        uint8_t k[W * H] = {0};
        for (int y = 1; y <= 2; y++)
            for (int x = 1; x <= 2; x++) m[y * W + x] = 1.0f, k[y * W + x] = 1; /* found (4 px) */
        for (int y = 5; y <= 6; y++)
            for (int x = 1; x <= 2; x++) k[y * W + x] = 1; /* missed (4 px) */
        m[2 * W + 9] = 1.0f;                              /* false region */
        m[6 * W + 9] = 1.0f, k[6 * W + 9] = 1;            /* 1-px lesion: below the minimum */
        CHECK_OK(aac_eval_new(&ev, &err), &err);
        CHECK_OK(aac_eval_set_min_lesion_pixels(ev, 2, &err), &err);
        CHECK_OK(aac_eval_add(ev, "x", AAC_DOMAIN_MEDICAL, m, k, W, H, 0.0f, 1, &err), &err);
        CHECK_OK(aac_eval_compute(ev, &res, &ncls, NULL, &err), &err);
        /* every threshold sees the same 3 regions: P = 1/2, R = 1/2, F1 = 1/2 at t = 1 */
        CHECK(res[0].n_lesions == 2 && res[0].n_regions == 2 && res[0].region_threshold == 1.0 &&
                  fabs(res[0].region_f1_max - 0.5) < 1e-15 && fabs(res[0].region_precision - 0.5) < 1e-15 &&
                  fabs(res[0].region_recall - 0.5) < 1e-15,
              "hand case: lesions %lld regions %lld t %g F1 %g P %g R %g", (long long)res[0].n_lesions,
              (long long)res[0].n_regions, res[0].region_threshold, res[0].region_f1_max, res[0].region_precision,
              res[0].region_recall);
        aac_eval_free(ev);
        /* no region ever centred in a lesion: F1 0, no threshold */
        k[6 * W + 9] = 0;
        for (int y = 1; y <= 2; y++)
            for (int x = 1; x <= 2; x++) k[y * W + x] = 0;
        CHECK_OK(aac_eval_new(&ev, &err), &err);
        CHECK_OK(aac_eval_add(ev, "x", AAC_DOMAIN_MEDICAL, m, k, W, H, 0.0f, 1, &err), &err);
        CHECK_OK(aac_eval_compute(ev, &res, &ncls, NULL, &err), &err);
        CHECK(res[0].region_f1_max == 0 && isnan(res[0].region_threshold) && res[0].n_lesions == 1,
              "no true region: F1 %g, threshold %g", res[0].region_f1_max, res[0].region_threshold);
        aac_eval_free(ev);
        /* non-finite map values are refused */
        m[0] = INFINITY;
        CHECK_OK(aac_eval_new(&ev, &err), &err);
        CHECK(aac_eval_add(ev, "x", AAC_DOMAIN_MEDICAL, m, k, W, H, 0.0f, 1, &err) == AAC_ERR_ARG, "inf refused");
        aac_eval_free(ev);
        m[0] = 0;
        /* without lesions the metric is undefined */
        CHECK_OK(aac_eval_new(&ev, &err), &err);
        CHECK_OK(aac_eval_add(ev, "x", AAC_DOMAIN_MEDICAL, m, NULL, W, H, 0.0f, 0, &err), &err);
        CHECK_OK(aac_eval_compute(ev, &res, &ncls, NULL, &err), &err);
        CHECK(isnan(res[0].region_f1_max) && isnan(res[0].region_threshold) && res[0].n_lesions == 0,
              "no lesion: region metric undefined");
        aac_eval_free(ev);
    }

    /* NaN scores are refused */
    float nanv[2] = {0.5f, NAN};
    uint8_t l2[2] = {0, 1};
    double a, p;
    CHECK(aac_binary_metrics(nanv, l2, 2, &a, &p, &err) == AAC_ERR_ARG, "NaN refused");

    fclose(e);
    unlink(fix), unlink(exp_path);
    for (int k = 0; k < nc; k++) free(c[k].s), free(c[k].l);
    return tu_finish("test_metrics");
}
