/* test_out_bench.c (label slow) - time and size of every result for a 512 x 512 x 120 CT
 * written here: SEG (probability + one mask), Parametric Map, SR, images, scene, montage.
 * Prints the numbers docs/outputs.md quotes; fails only if a writer fails. */
#include "out_test.h"

#include <sys/resource.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static double mib(const char *dir, const char *name) {
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0 ? sb.st_size / 1048576.0 : -1;
}

int main(void) {
    enum { N = 120 };
    double zs[N];
    for (int i = 0; i < N; i++) zs[i] = 1.25 * i;
    const char *src = dt_scratch("bench_src");
    const ot_ct ct = {.n = N, .rows = 512, .cols = 512, .tilt_deg = 0, .z = zs, .ps = 0.78};
    ot_write_ct(src, &ct);
    double t0 = now_s();
    aac_volume *v = ot_load(src);
    const double t_load = now_s() - t0;
    const ot_blob b[] = {{0.35, 0.4, 0.5, 15, 1.0}, {0.7, 0.6, 0.3, 10, 0.8}};
    aac_results r = {.source = v, .map = ot_blob_map(v, 0, b, 2, 0.1), .series_score = NAN};
    aac_output_params p = aac_output_default_params();
    p.model_hash = "sha256:bench";
    const char *out = dt_scratch("bench_out");
    char a[4096], c[4096];
    aac_error e = {0};
    double t[6];
    snprintf(a, sizeof a, "%s/seg_probability.dcm", out);
    snprintf(c, sizeof c, "%s/seg_binary.dcm", out);
    t0 = now_s();
    CHECK_OK(aac_write_seg(&r, &p, a, c, &e), &e);
    t[0] = now_s() - t0;
    snprintf(a, sizeof a, "%s/pmap.dcm", out);
    t0 = now_s();
    CHECK_OK(aac_write_pmap(&r, &p, a, &e), &e);
    t[1] = now_s() - t0;
    snprintf(a, sizeof a, "%s/sr.dcm", out);
    t0 = now_s();
    CHECK_OK(aac_write_sr(&r, &p, c, a, &e), &e);
    t[2] = now_s() - t0;
    t0 = now_s();
    CHECK_OK(aac_write_images(&r, out, &e), &e);
    t[3] = now_s() - t0;
    t0 = now_s();
    CHECK_OK(aac_write_scene(&r, out, &e), &e);
    t[4] = now_s() - t0;
    snprintf(a, sizeof a, "%s/montage.png", out);
    t0 = now_s();
    CHECK_OK(aac_write_png_montage(&r, &p, a, &e), &e);
    t[5] = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("512 x 512 x %d CT: load %.2f s\n", N, t_load);
    printf("  SEG (probability + 1 mask) %.2f s, %.1f + %.1f MiB\n", t[0], mib(out, "seg_probability.dcm"),
           mib(out, "seg_binary.dcm"));
    printf("  Parametric Map %.2f s, %.1f MiB\n", t[1], mib(out, "pmap.dcm"));
    printf("  SR %.2f s, %.2f MiB\n", t[2], mib(out, "sr.dcm"));
    printf("  images (2 NIfTI + 3 NRRD, compressed) %.2f s, %.1f MiB\n", t[3],
           mib(out, "anomaly_map.nii.gz") + mib(out, "anomaly_map.nrrd") + mib(out, "label_map.nii.gz") +
               mib(out, "label_map.nrrd") + mib(out, "input.nrrd"));
    printf("  scene %.3f s; montage %.2f s, %.2f MiB\n", t[4], t[5], mib(out, "montage.png"));
    printf("  peak RSS %.0f MiB\n", ru.ru_maxrss / 1024.0);
    free((float *)r.map);
    aac_volume_free(v);
    return tu_finish("test_out_bench");
}
