/* test_synth.c - the synthetic CT study: a fresh `aaclip make-sample-study` (the library call
 * behind it) matches testdata/sample-study byte for byte; read back through the scanner it has
 * the phantom's grid, voxels and lesions; dciodvfy finds no errors; the writer keeps an
 * arbitrary (oblique) geometry and refuses what it cannot write. */
#include "dicom_test.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>

#include "aaclip_synth.h"

#define SAMPLE_DIR AACLIP_DICOM_TESTS_DIR "/../../testdata/sample-study"

/* Sorted relative paths of the regular files under dir (recursive). */
static int list_files(const char *root, const char *rel, char names[][256], int n, int cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return n;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[256], full[4352];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >= (int)sizeof sub ||
            snprintf(full, sizeof full, "%s/%s", root, sub) >= (int)sizeof full)
            continue;
        struct stat sb;
        if (stat(full, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) n = list_files(root, sub, names, n, cap);
        else if (n < cap) snprintf(names[n++], 256, "%s", sub);
    }
    closedir(d);
    return n;
}
static int cmp_name(const void *a, const void *b) { return strcmp(a, b); }

/* Every file of the shipped study, byte for byte, and no file more or less. */
static void compare_with_shipped(const char *fresh) {
    static char a[256][256], b[256][256];
    const int na = list_files(SAMPLE_DIR, "", a, 0, 256), nb = list_files(fresh, "", b, 0, 256);
    qsort(a, (size_t)na, sizeof a[0], cmp_name);
    qsort(b, (size_t)nb, sizeof b[0], cmp_name);
    CHECK(na == 34 && nb == 34, "%d files shipped in %s, %d regenerated (expected 32 slices + 2)", na, SAMPLE_DIR, nb);
    int differ = 0;
    for (int i = 0; i < na && i < nb; i++) {
        char pa[4352], pb[4352];
        if (snprintf(pa, sizeof pa, "%s/%s", SAMPLE_DIR, a[i]) >= (int)sizeof pa ||
            snprintf(pb, sizeof pb, "%s/%s", fresh, b[i]) >= (int)sizeof pb)
            continue;
        size_t la = 0, lb = 0;
        char *ba = tu_read_file(pa, &la), *bb = tu_read_file(pb, &lb);
        const int same = !strcmp(a[i], b[i]) && ba && bb && la == lb && !memcmp(ba, bb, la);
        if (!same && differ++ < 5) fprintf(stderr, "differs: %s (%zu bytes) vs %s (%zu bytes)\n", pa, la, pb, lb);
        free(ba);
        free(bb);
    }
    CHECK(differ == 0,
          "%d files of testdata/sample-study differ from a fresh study; regenerate it with "
          "`aaclip make-sample-study -o testdata/sample-study` (testdata/README.md)",
          differ);
}

/* Mean of the loaded volume over the voxels of lesion k's inner half (by the label volume and
 * distance), and how many voxels that was. */
static double lesion_mean(const aac_volume *v, const aac_volume *labels, const aac_ct_lesion *l, int *count) {
    double sum = 0;
    int n = 0;
    for (int k = 0; k < v->dim[2]; k++)
        for (int j = 0; j < v->dim[1]; j++)
            for (int i = 0; i < v->dim[0]; i++) {
                const size_t idx = ((size_t)k * v->dim[1] + j) * v->dim[0] + i;
                if (labels->voxels[idx] != l->label) continue;
                const double p[3] = {v->origin[0] + i * v->spacing[0], v->origin[1] + j * v->spacing[1],
                                     v->origin[2] + k * v->spacing[2]};
                double d = 0;
                for (int a = 0; a < 3; a++) {
                    const double u = (p[a] - l->centre[a]) / l->radius[a];
                    d += u * u;
                }
                if (d > 0.25) continue;
                sum += v->voxels[idx];
                n++;
            }
    *count = n;
    return n ? sum / n : NAN;
}

/* Mean over an in-plane square of side 2r+1 voxels around the voxel nearest an LPS point; fails
 * the test when a lesion label falls inside (the point must be background). */
static double patch_mean(const aac_volume *v, const aac_volume *labels, double x, double y, double z, int r) {
    const int ci = (int)lround((x - v->origin[0]) / v->spacing[0]);
    const int cj = (int)lround((y - v->origin[1]) / v->spacing[1]), k = (int)lround((z - v->origin[2]) / v->spacing[2]);
    double sum = 0;
    int n = 0, lesion = 0;
    for (int j = cj - r; j <= cj + r; j++)
        for (int i = ci - r; i <= ci + r; i++) {
            const size_t idx = ((size_t)k * v->dim[1] + j) * v->dim[0] + i;
            lesion |= labels->voxels[idx] != 0;
            sum += v->voxels[idx];
            n++;
        }
    CHECK(!lesion, "patch at (%g, %g, %g) touches a lesion", x, y, z);
    return sum / n;
}

/* Largest difference in origin + spacing (mm) or direction between two grids. */
static double geo_diff(const aac_volume *a, const aac_volume *b) {
    double d = 0;
    for (int i = 0; i < 3; i++) d = fmax(d, fabs(a->origin[i] - b->origin[i]) + fabs(a->spacing[i] - b->spacing[i]));
    for (int i = 0; i < 9; i++) d = fmax(d, fabs(a->direction[i] - b->direction[i]));
    return d;
}

static void check_dciodvfy(const char *path) {
    static char buf[1 << 16];
    if (dt_run("command -v dciodvfy >/dev/null 2>&1") != 0) {
        printf("dciodvfy not installed (Debian: dicom3tools): %s not verified\n", path);
        return;
    }
    dt_capture(buf, sizeof buf, "dciodvfy '%s'", path);
    int errors = 0, warnings = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "Error", 5)) errors++, fprintf(stderr, "dciodvfy %s: %s\n", path, line);
        else if (!strncmp(line, "Warning", 7)) warnings++, printf("  dciodvfy: %s\n", line);
    }
    printf("dciodvfy %s: %d errors, %d warnings\n", path, errors, warnings);
    CHECK(errors == 0, "%s: dciodvfy reports %d errors", path, errors);
}

static void check_loaded(const char *dicom_dir, const aac_ct_phantom *ph) {
    aac_scan *s = NULL;
    aac_error e = {0};
    const char *paths[1] = {dicom_dir};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    CHECK(aac_scan_series_count(s) == 1 && aac_scan_note_count(s) == 0, "%d series, %d notes in %s",
          aac_scan_series_count(s), aac_scan_note_count(s), dicom_dir);
    const aac_series_info *info = aac_scan_series(s, 0);
    CHECK(!strcmp(info->modality, "CT") && !strcmp(info->body_part, "ABDOMEN") &&
              !strcmp(info->manufacturer, "aaclip synthetic") && info->n_files == 32 && info->n_warnings == 0,
          "series: %s %s '%s', %d files, %d warnings", info->modality, info->body_part, info->manufacturer,
          info->n_files, info->n_warnings);
    aac_volume *v = NULL;
    CHECK_OK(aac_scan_load(s, 0, &v, &e), &e);
    const aac_volume *ref = ph->ct;
    CHECK(v->dim[0] == 256 && v->dim[1] == 256 && v->dim[2] == 32 && v->dim[3] == 1, "dim %d x %d x %d x %d",
          v->dim[0], v->dim[1], v->dim[2], v->dim[3]);
    const double geo = geo_diff(v, ref);
    CHECK(geo < 1e-9 && fabs(v->spacing[0] - 1.2) < 1e-12 && fabs(v->spacing[2] - 3.0) < 1e-12 &&
              fabs(v->slice_thickness - 3.0) < 1e-12,
          "geometry differs from the phantom by %g (spacing %g %g %g)", geo, v->spacing[0], v->spacing[1],
          v->spacing[2]);
    CHECK(fabs(v->slice_positions[31][2] - 46.5) < 1e-12 && fabs(v->slice_positions[0][0] + 153.0) < 1e-12,
          "slice positions %g, %g", v->slice_positions[0][0], v->slice_positions[31][2]);
    if (v->dim[0] == 256 && v->dim[1] == 256 && v->dim[2] == 32) {
        CHECK(tu_max_abs(v->voxels, ref->voxels, aac_volume_voxel_count(ref)) == 0, "HU differ from the phantom");
        for (int i = 0; i < ph->n_lesions; i++) {
            const aac_ct_lesion *l = &ph->lesions[i];
            int n = 0;
            const double m = lesion_mean(v, ph->labels, l, &n);
            printf("lesion %d (%s, %g HU, radii %g %g %g mm): %d inner voxels, mean %.1f HU\n", l->label, l->kind,
                   l->hu, l->radius[0], l->radius[1], l->radius[2], n, m);
            CHECK(n >= 20 && fabs(m - l->hu) < 3, "lesion %d: mean %g HU over %d voxels, planted %g", l->label, m, n,
                  l->hu);
            const size_t c = ((size_t)l->centre_voxel[2] * 256 + l->centre_voxel[1]) * 256 + l->centre_voxel[0];
            CHECK(ph->labels->voxels[c] == l->label && fabs(v->voxels[c] - l->hu) < 45,
                  "lesion %d: centre voxel label %g, %g HU", l->label, ph->labels->voxels[c], v->voxels[c]);
        }
        /* Points of the phantom's anatomy: a corner, the right lobe, the vertebral body's ring. */
        const double air = patch_mean(v, ph->labels, -145, -145, 0, 4);
        const double liver = patch_mean(v, ph->labels, -100, 0, 0, 3), bone = patch_mean(v, ph->labels, 0, 40.6, 15, 0);
        printf("background: air %.1f HU, liver %.1f HU, vertebral cortex %.1f HU\n", air, liver, bone);
        CHECK(fabs(air + 1000) < 5 && fabs(liver - 60) < 5 && bone > 400, "air %g, liver %g, bone %g HU", air, liver,
              bone);
    }
    aac_volume_free(v);
    aac_scan_free(s);
}

static void check_mask(const char *path, const aac_ct_phantom *ph) {
    aac_volume *m = NULL;
    aac_error e = {0};
    CHECK_OK(aac_volume_read(path, &m, &e), &e);
    const aac_volume *ref = ph->labels;
    const double geo = geo_diff(m, ref);
    CHECK(m->dim[0] == ref->dim[0] && m->dim[1] == ref->dim[1] && m->dim[2] == ref->dim[2] && geo < 1e-4,
          "%s: %d x %d x %d, geometry off by %g", path, m->dim[0], m->dim[1], m->dim[2], geo);
    if (aac_volume_voxel_count(m) == aac_volume_voxel_count(ref))
        CHECK(tu_max_abs(m->voxels, ref->voxels, aac_volume_voxel_count(ref)) == 0, "%s: labels differ", path);
    aac_volume_free(m);
}

/* An oblique grid (rotated 30 degrees about S, then tilted) survives the round trip. */
static void check_oblique(void) {
    const char *dir = dt_scratch("synth_oblique");
    aac_volume v;
    memset(&v, 0, sizeof v);
    float vox[40 * 30 * 5];
    for (int i = 0; i < 40 * 30 * 5; i++) vox[i] = (float)((i * 37) % 3000 - 1000);
    v.voxels = vox;
    v.dim[0] = 40, v.dim[1] = 30, v.dim[2] = 5, v.dim[3] = 1;
    v.spacing[0] = 0.7, v.spacing[1] = 0.8, v.spacing[2] = 2.5;
    v.origin[0] = 10.25, v.origin[1] = -20.5, v.origin[2] = 100;
    const double c = sqrt(3) / 2, s = 0.5, ct = cos(0.2), sn = sin(0.2);
    /* Rz(30) * Rx(0.2): columns are the axes. */
    const double D[9] = {c, -s * ct, s * sn, s, c * ct, -c * sn, 0, sn, ct};
    memcpy(v.direction, D, sizeof D);
    snprintf(v.source, sizeof v.source, "oblique test volume");
    aac_error e = {0};
    aac_ct_params p = aac_ct_default_params();
    p.uid_seed = 77;
    CHECK_OK(aac_write_ct_series(&v, &p, dir, &e), &e);
    aac_scan *sc = NULL;
    const char *paths[1] = {dir};
    CHECK_OK(aac_scan_paths(paths, 1, &sc, &e), &e);
    aac_volume *r = NULL;
    CHECK_OK(aac_scan_load(sc, 0, &r, &e), &e);
    const double geo = geo_diff(r, &v);
    CHECK(r->dim[0] == 40 && r->dim[1] == 30 && r->dim[2] == 5 && geo < 1e-6,
          "oblique: %d x %d x %d, geometry off by %g", r->dim[0], r->dim[1], r->dim[2], geo);
    if (r->dim[0] == 40 && r->dim[1] == 30 && r->dim[2] == 5)
        CHECK(tu_max_abs(r->voxels, vox, 40 * 30 * 5) == 0, "oblique: values differ");
    char uid[AAC_UID_LEN];
    aac_synth_uid(77, "series", 0, uid);
    CHECK(!strcmp(r->series_uid, uid), "series UID %s, expected %s", r->series_uid, uid);
    aac_volume_free(r);
    aac_scan_free(sc);

    /* Refusals: a leftover slice of a longer series, a 4-D volume, a left-handed grid. */
    CHECK(dt_run("touch '%s/IM0006.dcm'", dir) == 0, "touch");
    aac_status st = aac_write_ct_series(&v, &p, dir, &e);
    CHECK(st == AAC_ERR_ARG && strstr(e.message, "IM0006.dcm"), "leftover slice: %s", e.message);
    v.dim[3] = 2;
    st = aac_write_ct_series(&v, &p, dt_scratch("synth_refuse"), &e);
    CHECK(st == AAC_ERR_ARG && strstr(e.message, "3-D"), "4-D volume: %s", e.message);
    v.dim[3] = 1;
    for (int a = 0; a < 3; a++) v.direction[a * 3 + 2] = -D[a * 3 + 2];
    st = aac_write_ct_series(&v, &p, dt_scratch("synth_refuse"), &e);
    CHECK(st == AAC_ERR_ARG && strstr(e.message, "right-handed"), "left-handed grid: %s", e.message);
}

static void check_uids(void) {
    char a[AAC_UID_LEN], b[AAC_UID_LEN], c[AAC_UID_LEN];
    aac_synth_uid(1, "instance", 3, a);
    aac_synth_uid(1, "instance", 3, b);
    aac_synth_uid(1, "instance", 4, c);
    int digits = 1;
    for (const char *p = a + 5; *p; p++) digits &= *p >= '0' && *p <= '9';
    CHECK(!strncmp(a, "2.25.", 5) && a[5] != '0' && digits && strlen(a) <= 44 && !strcmp(a, b) && strcmp(a, c),
          "UIDs %s %s %s", a, b, c);
}

/* The enhanced variant: the same voxels and planes as the series, frame by frame, a valid
 * object, byte-identical when written again, and its own UIDs. */
static void check_enhanced(void) {
    aac_ct_phantom_params p = aac_ct_phantom_default_params();
    p.size = 64, p.slices = 10, p.n_lesions = 1;
    char a[4096], b[4096], c[4096], f1[4200], f2[4200];
    snprintf(a, sizeof a, "%s", dt_scratch("synth_enh_a"));
    snprintf(b, sizeof b, "%s", dt_scratch("synth_enh_b"));
    snprintf(c, sizeof c, "%s", dt_scratch("synth_enh_series"));
    aac_error e = {0};
    CHECK_OK(aac_write_sample_study_enhanced(&p, a, &e), &e);
    CHECK_OK(aac_write_sample_study_enhanced(&p, b, &e), &e);
    CHECK_OK(aac_write_sample_study(&p, c, &e), &e);
    snprintf(f1, sizeof f1, "%s/dicom/enhanced_ct.dcm", a);
    snprintf(f2, sizeof f2, "%s/dicom/enhanced_ct.dcm", b);
    CHECK(dt_run("cmp -s '%s' '%s'", f1, f2) == 0, "two writes of the enhanced CT differ");
    check_dciodvfy(f1);
    snprintf(f1, sizeof f1, "%s/dicom", a);
    snprintf(f2, sizeof f2, "%s/dicom", c);
    const char *pa[1] = {f1}, *pc[1] = {f2};
    aac_scan *sa = NULL, *sc = NULL;
    aac_volume *va = NULL, *vc = NULL;
    CHECK_OK(aac_scan_paths(pa, 1, &sa, &e), &e);
    CHECK_OK(aac_scan_paths(pc, 1, &sc, &e), &e);
    CHECK_OK(aac_scan_load(sa, 0, &va, &e), &e);
    CHECK_OK(aac_scan_load(sc, 0, &vc, &e), &e);
    CHECK(!memcmp(va->dim, vc->dim, sizeof va->dim) && geo_diff(va, vc) == 0, "enhanced grid differs from the series");
    if (!memcmp(va->dim, vc->dim, sizeof va->dim)) {
        CHECK(tu_max_abs(va->voxels, vc->voxels, aac_volume_voxel_count(va)) == 0, "enhanced voxels differ");
        for (int z = 0; z < va->dim[2]; z++)
            CHECK(va->slice_frames[z] == z + 1 && !memcmp(va->slice_positions[z], vc->slice_positions[z], 3 * sizeof(double)),
                  "frame %d: frame number %d or plane differs", z, va->slice_frames[z]);
    }
    CHECK(strcmp(va->series_uid, vc->series_uid) && strcmp(va->study_uid, vc->study_uid) &&
              strcmp(va->slice_uids[0], vc->slice_uids[0]),
          "the enhanced variant shares UIDs with the series");
    aac_volume_free(va);
    aac_volume_free(vc);
    aac_scan_free(sa);
    aac_scan_free(sc);
}

int main(void) {
    aac_error e = {0};
    check_uids();

    aac_ct_phantom *ph = NULL;
    CHECK_OK(aac_ct_phantom_make(NULL, &ph, &e), &e);
    CHECK(ph->n_lesions == 4, "%d lesions", ph->n_lesions);

    const char *fresh = dt_scratch("synth_sample");
    CHECK_OK(aac_write_sample_study(NULL, fresh, &e), &e);
    compare_with_shipped(fresh);

    char path[4096];
    snprintf(path, sizeof path, "%s/dicom", fresh);
    check_loaded(path, ph);
    snprintf(path, sizeof path, "%s/lesion_mask.nii.gz", fresh);
    check_mask(path, ph);
    snprintf(path, sizeof path, "%s/dicom/IM0001.dcm", fresh);
    check_dciodvfy(path);
    snprintf(path, sizeof path, "%s/dicom/IM0017.dcm", fresh);
    check_dciodvfy(path);
    /* A second run over the same folder replaces the files with identical ones. */
    CHECK_OK(aac_write_sample_study(NULL, fresh, &e), &e);
    compare_with_shipped(fresh);

    aac_ct_phantom_params tight = aac_ct_phantom_default_params();
    tight.slices = 2;
    aac_ct_phantom *none = NULL;
    const aac_status st = aac_ct_phantom_make(&tight, &none, &e);
    CHECK(st == AAC_ERR_ARG && !none && strstr(e.message, "no room"), "2 slices: %s", e.message);
    aac_ct_phantom_free(ph);

    /* hyperdense_every 2: lesions 2 and 4 bright, 1 and 3 dark; every pair at least the gap apart */
    aac_ct_phantom_params mixed = aac_ct_phantom_default_params();
    mixed.hyperdense_every = 2;
    CHECK_OK(aac_ct_phantom_make(&mixed, &ph, &e), &e);
    for (int k = 0; k < ph->n_lesions; k++) {
        const aac_ct_lesion *l = &ph->lesions[k];
        const int bright = k % 2 == 1;
        CHECK(!strcmp(l->kind, bright ? "hyperdense" : "hypodense") && (bright ? l->hu >= 110 : l->hu <= 10),
              "lesion %d: %s, %g HU", k + 1, l->kind, l->hu);
        for (int j = 0; j < k; j++) {
            const aac_ct_lesion *o = &ph->lesions[j];
            double d2 = 0, ra = 0, rb = 0;
            for (int a = 0; a < 3; a++) {
                d2 += (l->centre[a] - o->centre[a]) * (l->centre[a] - o->centre[a]);
                ra = l->radius[a] > ra ? l->radius[a] : ra, rb = o->radius[a] > rb ? o->radius[a] : rb;
            }
            CHECK(sqrt(d2) - ra - rb >= mixed.lesion_gap_mm - 1e-9, "lesions %d and %d closer than the gap", j + 1, k + 1);
        }
    }
    aac_ct_phantom_free(ph);

    check_oblique();
    check_enhanced();
    return tu_finish("test_synth");
}
