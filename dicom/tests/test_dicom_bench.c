/* test_dicom_bench.c - load time and peak memory for a 512 x 512 x 300 CT series (300 files,
 * generated once with gen_fixtures.py and kept in the build tree). Prints one line:
 * dicom_bench: slices=300 scan_s=... load_s=... peak_rss_after_load_mib=... percentile_s=...
 *              peak_rss_mib=... volume_mib=...
 * Label "slow": not part of the sanitizer run. */
#include "dicom_test.h"

#include <sys/resource.h>
#include <time.h>

#include "aaclip_dicom.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    dt_need_python("pydicom, numpy");
    char dir[4096], series[4200];
    snprintf(dir, sizeof dir, "%s/dicom_test_out/" AACLIP_TEST_NAME "/bench", AACLIP_BINARY_DIR);
    snprintf(series, sizeof series, "%s/ct512", dir);
    if (dt_run("test $(ls '%s' 2>/dev/null | wc -l) -eq 300", series) != 0)
        CHECK(dt_run("mkdir -p '%s' && " DT_PY " '%s/gen_fixtures.py' '%s' bench", dir, AACLIP_DICOM_TESTS_DIR, dir) == 0,
              "bench series not generated");
    const char *paths[] = {series};
    aac_scan *s = NULL;
    aac_error e = {0};
    double t0 = now();
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    double t1 = now();
    aac_volume *v = NULL;
    CHECK_OK(aac_scan_load(s, 0, &v, &e), &e);
    double t2 = now();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double rss_load = ru.ru_maxrss / 1024.0;
    CHECK(v->dim[0] == 512 && v->dim[1] == 512 && v->dim[2] == 300 && v->n_warnings == 0, "bench volume %d x %d x %d",
          v->dim[0], v->dim[1], v->dim[2]);
    CHECK(v->voxels[0] == -1000 && v->voxels[256 * 512 + 256] == 40, "bench HU %g %g", v->voxels[0],
          v->voxels[256 * 512 + 256]);
    aac_norm n;
    aac_norm_params p = aac_norm_default_params();
    p.mode = AAC_NORM_PERCENTILE;
    CHECK_OK(aac_volume_norm(v, 0, &p, &n, &e), &e);
    double t3 = now();
    getrusage(RUSAGE_SELF, &ru);
    printf("dicom_bench: slices=%d scan_s=%.3f load_s=%.3f peak_rss_after_load_mib=%.1f percentile_s=%.3f "
           "peak_rss_mib=%.1f volume_mib=%.1f\n",
           v->dim[2], t1 - t0, t2 - t1, rss_load, t3 - t2, ru.ru_maxrss / 1024.0,
           aac_volume_voxel_count(v) * sizeof(float) / 1048576.0);
    aac_volume_free(v);
    aac_scan_free(s);
    return tu_finish("test_dicom_bench");
}
