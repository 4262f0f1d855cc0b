/* test_volume_io.c - volumes through ITK and geometry checked against independent readers:
 * NIfTI files load with the dims, LPS affine and voxel sum nibabel reports, and our NIfTI writer
 * reproduces them (compare_nifti.py): files nibabel writes here (oblique with scaling, 4-D with
 * sform only and a flipped axis, LAS with qform only) and, with ../shared, real ones (stroke MR,
 * TotalSegmentator CT/MR/labels); CT slices load in Hounsfield units equal to pydicom's (the
 * sample study; with ../shared also the dcmqi 3-slice CT); NRRD (LPS and RAS space, written here;
 * with ../shared Slicer's liver_seg.nrrd) and MetaImage files load with their header's geometry. */
#include "out_test.h" /* ot_sample_ct */

#include "aaclip_dicom.h"

/* Parses volume_facts.py nifti output and compares it with v. */
static void check_against_nibabel(const char *path, const aac_volume *v) {
    char buf[4096];
    int st = dt_capture(buf, sizeof buf, DT_PY " '%s/volume_facts.py' nifti '%s'", AACLIP_DICOM_TESTS_DIR, path);
    CHECK(st == 0, "nibabel cannot read %s: %s", path, buf);
    int d[4];
    double A[12], sum;
    const char *p = strstr(buf, "dims"), *q = strstr(buf, "lps"), *r = strstr(buf, "sum");
    CHECK(p && q && r && sscanf(p, "dims %d %d %d %d", &d[0], &d[1], &d[2], &d[3]) == 4 &&
              sscanf(q, "lps %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &A[0], &A[1], &A[2], &A[3], &A[4],
                     &A[5], &A[6], &A[7], &A[8], &A[9], &A[10], &A[11]) == 12 &&
              sscanf(r, "sum %lf", &sum) == 1,
          "cannot parse nibabel facts: %s", buf);
    for (int a = 0; a < 4; a++) CHECK(v->dim[a] == d[a], "%s: dim %d is %d, nibabel %d", path, a, v->dim[a], d[a]);
    double worst = 0;
    for (int row = 0; row < 3; row++) {
        for (int c = 0; c < 3; c++) {
            double ours = v->direction[row * 3 + c] * v->spacing[c];
            worst = fmax(worst, fabs(ours - A[row * 4 + c]));
        }
        worst = fmax(worst, fabs(v->origin[row] - A[row * 4 + 3]));
    }
    CHECK(worst < 1e-3, "%s: affine differs from nibabel's by %g mm", path, worst);
    double s = 0;
    for (size_t i = 0; i < aac_volume_voxel_count(v); i++) s += v->voxels[i];
    CHECK(fabs(s - sum) <= 1e-6 * fabs(sum) + 1e-3, "%s: voxel sum %.17g, nibabel %.17g", path, s, sum);
}

static void check_nifti_file(const char *path) {
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_volume_read(path, &v, &e), &e);
    CHECK(v->slice_uids == NULL && v->series_number == -1, "%s: volume files have no source UIDs", path);
    check_against_nibabel(path, v);
    /* Round trip through our writer: same values and affine as the original (world space). */
    const char *out = dt_scratch("nifti_roundtrip");
    char dst[4096];
    snprintf(dst, sizeof dst, "%s/copy.nii.gz", out);
    CHECK_OK(aac_volume_write_nifti(v, dst, &e), &e);
    CHECK(dt_run(DT_PY " '%s/compare_nifti.py' '%s' '%s' >/dev/null", AACLIP_DICOM_TESTS_DIR, out, path) == 0,
          "%s: written copy differs", path);
    aac_volume_free(v);
}

static void check_nifti(const char *rel) {
    const char *path = tu_shared_opt(rel);
    if (path) check_nifti_file(path);
}

/* NIfTI variants written by nibabel: scaling, rotation, 4-D, sform-only, qform-only, LAS. */
static void check_written_nifti(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", dt_scratch("nifti_written"));
    CHECK(dt_run(DT_PY " '%s/volume_facts.py' write-nifti '%s'", AACLIP_DICOM_TESTS_DIR, dir) == 0, "nibabel writer");
    const char *names[] = {"oblique_scaled.nii.gz", "flipped_4d.nii", "mask_las.nii.gz"};
    for (int i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        check_nifti_file(path);
    }
}

static void check_ct_hu(const char *dir, int nx, int ny, int nz) {
    const char *paths[] = {dir};
    aac_scan *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    CHECK(aac_scan_series_count(s) == 1, "ct-3slice: %d series", aac_scan_series_count(s));
    aac_volume *v = NULL;
    CHECK_OK(aac_scan_load(s, 0, &v, &e), &e);
    CHECK(!strcmp(v->modality, "CT") && v->dim[0] == nx && v->dim[1] == ny && v->dim[2] == nz,
          "%s: %s %d x %d x %d", dir, v->modality, v->dim[0], v->dim[1], v->dim[2]);
    char buf[4096];
    CHECK(dt_capture(buf, sizeof buf, DT_PY " '%s/volume_facts.py' dicom '%s'", AACLIP_DICOM_TESTS_DIR, dir) == 0,
          "pydicom: %s", buf);
    const char *p = buf;
    const size_t plane = (size_t)nx * ny;
    for (int z = 0; z < v->dim[2]; z++) {
        double zz, sum, lo, hi;
        int used = 0;
        CHECK(sscanf(p, "%lf %lf %lf %lf%n", &zz, &sum, &lo, &hi, &used) == 4, "parse: %s", p);
        p += used;
        double s2 = 0, mn = 1e30, mx = -1e30;
        for (size_t i = 0; i < plane; i++) {
            double x = v->voxels[z * plane + i];
            s2 += x;
            mn = fmin(mn, x);
            mx = fmax(mx, x);
        }
        CHECK(fabs(s2 - sum) < 1e-6 * fabs(sum) && mn == lo && mx == hi,
              "ct-3slice slice %d: HU sum/min/max %.0f %.0f %.0f, pydicom %.0f %.0f %.0f", z, s2, mn, mx, sum, lo, hi);
        double pos = v->origin[0] * v->direction[2] + v->origin[1] * v->direction[5] + v->origin[2] * v->direction[8] +
                     z * v->spacing[2];
        CHECK(fabs(pos - zz) < 1e-3, "ct-3slice slice %d at %.4f, pydicom %.4f", z, pos, zz);
    }
    aac_volume_free(v);
    aac_scan_free(s);
}

/* NRRD written here by hand, in LPS and in RAS space: the reader must give LPS geometry. */
static void check_nrrd_written(void) {
    const char *dir = dt_scratch("nrrd_written");
    for (int ras = 0; ras <= 1; ras++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/tiny_%s.nrrd", dir, ras ? "ras" : "lps");
        FILE *f = fopen(path, "wb");
        /* index axis 0 along +y (LPS), axis 1 along -x, axis 2 along +z; RAS states x and y negated */
        fprintf(f, "NRRD0004\ntype: short\ndimension: 3\nspace: %s\nsizes: 4 3 2\n"
                   "space directions: (0,%s1.5,0) (%s2,0,0) (0,0,3)\nkinds: domain domain domain\nendian: little\n"
                   "encoding: raw\nspace origin: (%s10,%s20,30)\n\n",
                ras ? "right-anterior-superior" : "left-posterior-superior", ras ? "-" : "", ras ? "" : "-",
                ras ? "-" : "", ras ? "-" : "");
        for (short i = 0; i < 24; i++) fwrite(&i, sizeof i, 1, f);
        fclose(f);
        aac_volume *v = NULL;
        aac_error e = {0};
        CHECK_OK(aac_volume_read(path, &v, &e), &e);
        CHECK(v->dim[0] == 4 && v->dim[1] == 3 && v->dim[2] == 2 && v->voxels[23] == 23 && v->voxels[5] == 5,
              "%s: dims/values", path);
        CHECK(fabs(v->origin[0] - 10) < 1e-9 && fabs(v->origin[1] - 20) < 1e-9 && fabs(v->origin[2] - 30) < 1e-9,
              "%s: origin %g %g %g (LPS 10 20 30)", path, v->origin[0], v->origin[1], v->origin[2]);
        CHECK(fabs(v->spacing[0] - 1.5) < 1e-9 && fabs(v->spacing[1] - 2) < 1e-9 && fabs(v->spacing[2] - 3) < 1e-9,
              "%s: spacing %g %g %g", path, v->spacing[0], v->spacing[1], v->spacing[2]);
        CHECK(fabs(v->direction[1 * 3 + 0] - 1) < 1e-9 && fabs(v->direction[0 * 3 + 1] + 1) < 1e-9 &&
                  fabs(v->direction[2 * 3 + 2] - 1) < 1e-9,
              "%s: direction %g %g %g / %g %g %g / %g %g %g", path, v->direction[0], v->direction[1], v->direction[2],
              v->direction[3], v->direction[4], v->direction[5], v->direction[6], v->direction[7], v->direction[8]);
        aac_volume_free(v);
    }
}

static void check_nrrd(void) {
    const char *path = tu_shared_opt("dicom/dcmqi/liver_seg.nrrd");
    if (!path) return;
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_volume_read(path, &v, &e), &e);
    /* Header: sizes 512 512 3, spacing 0.810547, origin (-235.2, -226.8, -128.69), LPS. */
    CHECK(v->dim[0] == 512 && v->dim[1] == 512 && v->dim[2] == 3 && v->dim[3] == 1, "nrrd dims");
    CHECK(fabs(v->spacing[0] - 0.810547) < 1e-6 && fabs(v->spacing[2] - 1) < 1e-9, "nrrd spacing");
    CHECK(fabs(v->origin[0] + 235.2) < 1e-6 && fabs(v->origin[1] + 226.8) < 1e-6 && fabs(v->origin[2] + 128.69) < 1e-6,
          "nrrd origin %g %g %g", v->origin[0], v->origin[1], v->origin[2]);
    size_t ones = 0;
    for (size_t i = 0; i < aac_volume_voxel_count(v); i++) ones += v->voxels[i] == 1;
    CHECK(ones > 1000, "liver mask has %zu voxels", ones);
    aac_volume_free(v);
}

static void check_metaimage(void) {
    const char *dir = dt_scratch("mha");
    char path[4096];
    snprintf(path, sizeof path, "%s/tiny.mha", dir);
    FILE *f = fopen(path, "wb");
    fprintf(f, "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
               "TransformMatrix = 0 1 0 -1 0 0 0 0 1\nOffset = 10 20 30\nElementSpacing = 0.5 2 3\n"
               "DimSize = 4 3 2\nElementType = MET_SHORT\nElementDataFile = LOCAL\n");
    for (short i = 0; i < 24; i++) fwrite(&i, sizeof i, 1, f);
    fclose(f);
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_volume_read(path, &v, &e), &e);
    CHECK(v->dim[0] == 4 && v->dim[1] == 3 && v->dim[2] == 2 && v->voxels[23] == 23, "mha dims/values");
    CHECK(v->origin[0] == 10 && v->origin[1] == 20 && v->origin[2] == 30 && v->spacing[0] == 0.5 && v->spacing[1] == 2,
          "mha geometry");
    /* MetaImage's TransformMatrix is written column by column: axis 0 points along +y. */
    CHECK(fabs(v->direction[1 * 3 + 0] - 1) < 1e-9 && fabs(v->direction[0 * 3 + 1] + 1) < 1e-9,
          "mha direction %g %g %g / %g %g %g / %g %g %g", v->direction[0], v->direction[1], v->direction[2],
          v->direction[3], v->direction[4], v->direction[5], v->direction[6], v->direction[7], v->direction[8]);
    aac_volume_free(v);
    CHECK(aac_volume_read("/nonexistent.nii.gz", &v, &e) != AAC_OK && strstr(e.message, "/nonexistent.nii.gz"),
          "missing file: %s", e.message);
    snprintf(path, sizeof path, "%s/garbage.nii", dir);
    f = fopen(path, "wb");
    fprintf(f, "this is not a NIfTI file at all, but it has the name of one");
    fclose(f);
    CHECK(aac_volume_read(path, &v, &e) != AAC_OK && strstr(e.message, "garbage.nii"), "garbage nii: %s", e.message);
}

int main(void) {
    dt_need_python("nibabel, pydicom, numpy");
    check_written_nifti();
    check_nifti("nifti/stroke/FLAIR.nii.gz");
    check_nifti("nifti/stroke/T1.nii.gz");
    check_nifti("nifti/stroke/T2.nii.gz");
    check_nifti("nifti/totalseg/example_ct_sm.nii.gz");
    check_nifti("nifti/totalseg/example_mr_sm.nii.gz");
    check_nifti("nifti/totalseg/example_seg.nii.gz");
    check_ct_hu(ot_sample_ct("volume_io_sample", 14, 4), 256, 256, 4);
    const char *ct3 = tu_shared_opt("dicom/dcmqi/ct-3slice");
    if (ct3) check_ct_hu(ct3, 512, 512, 3);
    check_nrrd_written();
    check_nrrd();
    check_metaimage();
    return tu_finish("test_volume_io");
}
