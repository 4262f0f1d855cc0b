/* test_dicom_dup.c - duplicates and gantry tilt (fixtures from gen_fixtures.py "dup"): a copied
 * file is read once with a warning naming both files; a slice present twice under different
 * SOP Instance UIDs is a "duplicate slice" warning naming the files, not a second time point,
 * while a GE-style 4-D series (one acquisition time, no temporal position) stays 4-D; a tilted
 * stack is a warning with its angle and is not resampled; an oblique stack along its normal
 * is not called tilted. */
#include "dicom_test.h"

#include "aaclip_dicom.h"

static int find_series(const aac_scan *s, const char *desc) {
    for (int i = 0; i < aac_scan_series_count(s); i++)
        if (!strcmp(aac_scan_series(s, i)->series_description, desc)) return i;
    return -1;
}

static aac_volume *load(const aac_scan *s, const char *desc) {
    const int i = find_series(s, desc);
    CHECK(i >= 0, "series '%s' not found", desc);
    if (i < 0) return NULL;
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_load(s, i, &v, &e), &e);
    return v;
}

/* Number of the volume's warnings containing all of a, b, c (NULL = any). */
static int count_warnings(const aac_volume *v, const char *a, const char *b, const char *c) {
    int n = 0;
    for (int i = 0; v && i < v->n_warnings; i++)
        if (strstr(v->warnings[i], a) && (!b || strstr(v->warnings[i], b)) && (!c || strstr(v->warnings[i], c))) n++;
    return n;
}

static void print_warnings(const aac_volume *v) {
    for (int i = 0; v && i < v->n_warnings; i++) printf("  %s: %s\n", v->series_description, v->warnings[i]);
}

static void check_copied(const aac_scan *s) {
    const int i = find_series(s, "copied");
    CHECK(i >= 0 && aac_scan_series(s, i)->n_files == 4, "copied: %d files, expected 4 (the copy read once)",
          i >= 0 ? aac_scan_series(s, i)->n_files : -1);
    aac_volume *v = load(s, "copied");
    if (!v) return;
    print_warnings(v);
    CHECK(v->dim[2] == 4 && v->dim[3] == 1, "copied: %d x %d slices, expected 4 x 1", v->dim[2], v->dim[3]);
    CHECK(count_warnings(v, "duplicate instance", "/dup/copied_2.dcm", "/dup/copy/copied_2.dcm") == 1,
          "copied: no duplicate-instance warning naming both files");
    CHECK(count_warnings(v, "duplicate slice", NULL, NULL) == 0, "copied: the copy also counted as a duplicate slice");
    CHECK(v->n_warnings == 1, "copied: %d warnings, expected 1", v->n_warnings);
    for (int z = 0; z < v->dim[2]; z++)
        CHECK(v->voxels[(size_t)z * 64] == z && strstr(v->slice_paths[z], "/dup/copied_"),
              "copied slice %d = %g from %s", z, v->voxels[(size_t)z * 64], v->slice_paths[z]);
    aac_volume_free(v);
}

static void check_resent(const aac_scan *s) {
    aac_volume *v = load(s, "resent");
    if (!v) return;
    print_warnings(v);
    CHECK(v->dim[2] == 3 && v->dim[3] == 1, "resent: %d x %d, expected 3 slices and no second time point", v->dim[2],
          v->dim[3]);
    for (int z = 0; z < 3; z++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "/dup/resent_a_%d.dcm", z);
        snprintf(b, sizeof b, "/dup/resent_b_%d.dcm", z);
        CHECK(count_warnings(v, "duplicate slice", a, b) == 1, "resent: no duplicate-slice warning naming %s and %s",
              a + 5, b + 5);
        if (z < v->dim[2])
            CHECK(v->voxels[(size_t)z * 64] == 10 + z, "resent slice %d = %g, expected the first (%d)", z,
                  v->voxels[(size_t)z * 64], 10 + z);
    }
    aac_volume_free(v);
}

static void check_ge4d(const aac_scan *s) {
    aac_volume *v = load(s, "ge4d");
    if (!v) return;
    print_warnings(v);
    CHECK(v->dim[2] == 3 && v->dim[3] == 2 && v->n_warnings == 0,
          "ge4d: %d x %d with %d warnings, expected 3 x 2, none", v->dim[2], v->dim[3], v->n_warnings);
    for (int t = 0; t < v->dim[3]; t++)
        for (int z = 0; z < v->dim[2]; z++)
            CHECK(v->voxels[(size_t)(t * 3 + z) * 64] == 100 * t + z, "ge4d t%d z%d = %g", t, z,
                  v->voxels[(size_t)(t * 3 + z) * 64]);
    aac_volume_free(v);
}

static void check_tilt(const aac_scan *s) {
    aac_volume *v = load(s, "tilt");
    if (v) {
        print_warnings(v);
        CHECK(count_warnings(v, "gantry tilt", "15.00 degrees", NULL) == 1,
              "tilt: no warning with the 15 degree angle");
        CHECK(v->dim[2] == 5 && v->n_warnings == 1, "tilt: %d slices, %d warnings", v->dim[2], v->n_warnings);
        /* Not resampled: slice k holds file k's values, and its own position is kept. */
        for (int z = 0; z < v->dim[2]; z++) {
            CHECK(v->voxels[(size_t)z * 64] == z, "tilt slice %d = %g", z, v->voxels[(size_t)z * 64]);
            CHECK(v->slice_positions[z][2] == 3.0 * z && v->slice_positions[z][1] == -20, "tilt slice %d position",
                  z);
        }
    }
    aac_volume_free(v);
    v = load(s, "oblique");
    if (v) {
        print_warnings(v);
        CHECK(v->dim[2] == 4 && v->n_warnings == 0, "oblique along its normal: %d slices, %d warnings", v->dim[2],
              v->n_warnings);
        CHECK(fabs(v->spacing[2] - 2.5) < 1e-3, "oblique spacing %g", v->spacing[2]);
    }
    aac_volume_free(v);
}

int main(void) {
    dt_need_python("pydicom, numpy");
    const char *dir = dt_scratch("dup");
    CHECK(dt_run(DT_PY " '%s/gen_fixtures.py' '%s' dup", AACLIP_DICOM_TESTS_DIR, dir) == 0, "fixtures not generated");
    char path[4096];
    snprintf(path, sizeof path, "%s/dup", dir);
    const char *paths[] = {path};
    aac_scan *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    if (s) {
        CHECK(aac_scan_series_count(s) == 5, "%d series, expected 5", aac_scan_series_count(s));
        check_copied(s);
        check_resent(s);
        check_ge4d(s);
        check_tilt(s);
    }
    aac_scan_free(s);

    char buf[16384];
    int st = dt_capture(buf, sizeof buf, "'%s' info '%s'", AACLIP_INGEST_EXE, path);
    CHECK(st == 0 && strstr(buf, "gantry tilt") && strstr(buf, "duplicate slice") && strstr(buf, "duplicate instance"),
          "info does not show the warnings: %s", buf);
    return tu_finish("test_dicom_dup");
}
