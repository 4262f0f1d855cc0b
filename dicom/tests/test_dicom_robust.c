/* test_dicom_robust.c - hostile and awkward inputs, made by gen_fixtures.py (pydicom): each bad
 * file gives a warning naming it, the good series of the same folder still load with the
 * values that were written; truncations and byte flips of a valid file never crash. */
#include "dicom_test.h"

#include "aaclip_dicom.h"

static const aac_series_info *find_series(const aac_scan *s, const char *desc) {
    for (int i = 0; i < aac_scan_series_count(s); i++)
        if (!strcmp(aac_scan_series(s, i)->series_description, desc)) return aac_scan_series(s, i);
    return NULL;
}

static aac_volume *load_desc(const aac_scan *s, const char *desc) {
    for (int i = 0; i < aac_scan_series_count(s); i++)
        if (!strcmp(aac_scan_series(s, i)->series_description, desc)) {
            aac_volume *v = NULL;
            aac_error e = {0};
            aac_status st = aac_scan_load(s, i, &v, &e);
            CHECK(st == AAC_OK, "series '%s' does not load: %s", desc, e.message);
            return v;
        }
    CHECK(0, "series '%s' not found", desc);
    return NULL;
}

static int has_warning(const aac_volume *v, const char *text) {
    for (int i = 0; v && i < v->n_warnings; i++)
        if (strstr(v->warnings[i], text)) return 1;
    return 0;
}

/* The note about `file` (warning level expected), or NULL. */
static const char *note_for(const aac_scan *s, const char *file, aac_note_level *lv) {
    for (int i = 0; i < aac_scan_note_count(s); i++) {
        const char *n = aac_scan_note(s, i, lv);
        if (strstr(n, file)) return n;
    }
    return NULL;
}

static double slice_sum(const aac_volume *v, int z) {
    double sum = 0;
    const size_t plane = (size_t)v->dim[0] * v->dim[1];
    for (size_t i = 0; i < plane; i++) sum += v->voxels[(size_t)z * plane + i];
    return sum;
}

static void check_bad_files(const aac_scan *s) {
    static const struct {
        const char *file, *says;
    } bad[] = {
        {"/garbage.dcm", "not DICOM"},
        {"/dicm_garbage.dcm", "truncated or corrupt"},
        {"/trunc_1.dcm", "truncated or corrupt"},
        {"/nopixel.dcm", "without pixel data"},
        {"/mpeg.dcm", "1.2.840.10008.1.2.4.100"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        aac_note_level lv = AAC_NOTE_DEBUG;
        const char *n = note_for(s, bad[i].file, &lv);
        CHECK(n != NULL, "no note names %s", bad[i].file);
        if (n) {
            CHECK(lv == AAC_NOTE_WARNING, "%s is only a debug note: %s", bad[i].file, n);
            CHECK(strstr(n, bad[i].says) != NULL, "note for %s does not say '%s': %s", bad[i].file, bad[i].says, n);
        }
    }
    aac_note_level lv = AAC_NOTE_WARNING;
    const char *n = note_for(s, "/notes.txt", &lv);
    CHECK(n && lv == AAC_NOTE_DEBUG, "notes.txt should be a quiet debug note");
}

static void check_values(const aac_scan *s, const char *dir) {
    /* A: signed with intercept; B: 12 bits stored under junk high bits, slope 2, z=2 missing. */
    char path[4096];
    snprintf(path, sizeof path, "%s/values.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "no %s", path);
    aac_volume *a = load_desc(s, "ct a"), *b = load_desc(s, "ct b");
    char which;
    int k;
    double sum;
    while (f && a && b && fscanf(f, " %c %d %lf", &which, &k, &sum) == 3) {
        const aac_volume *v = which == 'A' ? a : b;
        int z = which == 'A' ? k : (k > 2 ? k - 1 : k);
        CHECK(fabs(slice_sum(v, z) - sum) < 1e-3 * fabs(sum) + 1, "%c slice %d: sum %.1f, written %.1f", which, k,
              slice_sum(v, z), sum);
    }
    if (f) fclose(f);
    if (a) {
        CHECK(a->dim[0] == 32 && a->dim[1] == 24 && a->dim[2] == 5 && a->dim[3] == 1, "A dims %d %d %d", a->dim[0],
              a->dim[1], a->dim[2]);
        CHECK(fabs(a->spacing[0] - 0.7) < 1e-9 && fabs(a->spacing[1] - 0.8) < 1e-9 && fabs(a->spacing[2] - 2.5) < 1e-9,
              "A spacing %g %g %g", a->spacing[0], a->spacing[1], a->spacing[2]);
        CHECK(a->origin[0] == -10 && a->origin[1] == -20 && a->origin[2] == 0, "A origin");
        CHECK(a->slice_uids && a->slice_uids[0][0] && strcmp(a->slice_uids[0], a->slice_uids[1]), "A slice UIDs");
        CHECK(!strcmp(a->modality, "CT") && !strcmp(a->body_part, "ABDOMEN"), "A modality/body part");
        CHECK(a->n_warnings == 0, "A should have no warnings (%d)", a->n_warnings);
    }
    if (b) CHECK(has_warning(b, "missing slice"), "B: no missing-slice warning");
    aac_volume_free(a);
    aac_volume_free(b);

    aac_volume *t = load_desc(s, "trunc");
    if (t) CHECK(t->dim[2] == 2 && has_warning(t, "missing slice"), "trunc: %d slices, warned %d", t->dim[2],
                 has_warning(t, "missing slice"));
    aac_volume_free(t);

    aac_volume *one = load_desc(s, "single");
    if (one) {
        CHECK(one->dim[0] == 16 && one->dim[1] == 20 && one->dim[2] == 1, "single dims");
        CHECK(one->voxels[5 * 16 + 3] == 5 * 16 + 3, "single voxel %g", one->voxels[5 * 16 + 3]);
    }
    aac_volume_free(one);

    aac_volume *m1 = load_desc(s, "mono1");
    if (m1) CHECK(m1->voxels[0] == 245 && m1->voxels[64] == 235 && has_warning(m1, "MONOCHROME1"),
                  "MONOCHROME1 not inverted: %g %g", m1->voxels[0], m1->voxels[64]);
    aac_volume_free(m1);

    aac_volume *rgb = load_desc(s, "rgb");
    if (rgb) CHECK(fabs(rgb->voxels[7] - 124.2) < 1e-3 && has_warning(rgb, "grey"), "planar RGB luma %g", rgb->voxels[7]);
    aac_volume_free(rgb);

    aac_volume *fm = load_desc(s, "fmri");
    if (fm) {
        CHECK(fm->dim[2] == 3 && fm->dim[3] == 2 && fabs(fm->t_spacing - 2.0) < 1e-9, "fmri dims %d x %d, TR %g",
              fm->dim[2], fm->dim[3], fm->t_spacing);
        for (int tt = 0; tt < fm->dim[3]; tt++)
            for (int z = 0; z < fm->dim[2]; z++)
                CHECK(fm->voxels[(size_t)(tt * 3 + z) * 64] == 100 * tt + z, "fmri t%d z%d = %g", tt, z,
                      fm->voxels[(size_t)(tt * 3 + z) * 64]);
    }
    aac_volume_free(fm);
}

static void check_cli(const char *dir) {
    char buf[16384];
    const char *out = dt_scratch("robust_convert");
    int st = dt_capture(buf, sizeof buf, "'%s' convert '%s/study' -o '%s'", AACLIP_INGEST_EXE, dir, out);
    CHECK(st == 0, "convert exited %d: %s", st, buf);
    CHECK(strstr(buf, "mpeg.dcm") && strstr(buf, "trunc_1.dcm") && strstr(buf, "garbage.dcm") &&
              strstr(buf, "nopixel.dcm"),
          "convert does not name every bad file: %s", buf);
    int files = dt_run("test $(ls '%s' | wc -l) -eq 7", out);
    CHECK(files == 0, "convert should write 7 series: %s", buf);
    st = dt_capture(buf, sizeof buf, "'%s' info --json '%s/study'", AACLIP_INGEST_EXE, dir);
    CHECK(st == 0 && strstr(buf, "\"series\"") && strstr(buf, "\"notes\"") && strstr(buf, "fmri"), "info --json: %s", buf);
    st = dt_capture(buf, sizeof buf, "'%s' info '%s/nowhere'", AACLIP_INGEST_EXE, dir);
    CHECK(st == 1 && strstr(buf, "nowhere"), "missing input: %d %s", st, buf);
    st = dt_capture(buf, sizeof buf, "'%s' convert --help", AACLIP_INGEST_EXE);
    CHECK(st == 0 && strstr(buf, "usage: aaclip convert"), "convert --help");
    st = dt_capture(buf, sizeof buf, "'%s' info --help", AACLIP_INGEST_EXE);
    CHECK(st == 0 && strstr(buf, "usage: aaclip info"), "info --help");
}

/* Every truncation length class and many single-byte corruptions of a valid file: no crash,
 * and whatever loads has the size its header promised. */
static void check_mutations(const char *dir) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/study/ct_a_0.dcm", dir);
    snprintf(dst, sizeof dst, "%s/mutant.dcm", dir);
    FILE *f = fopen(src, "rb");
    CHECK(f != NULL, "no %s", src);
    if (!f) return;
    static unsigned char data[1 << 16];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    unsigned seed = 12345;
    for (int trial = 0; trial < 160; trial++) {
        size_t len = n;
        unsigned char saved = 0;
        size_t pos = 0;
        if (trial < 80) len = (size_t)trial * n / 80; /* truncations */
        else {
            seed = seed * 1103515245u + 12345u;
            pos = 128 + (seed >> 8) % (n > 700 ? 700 : n - 128); /* header bytes */
            saved = data[pos];
            data[pos] ^= (unsigned char)(1 + (seed >> 4) % 255);
        }
        FILE *o = fopen(dst, "wb");
        fwrite(data, 1, len, o);
        fclose(o);
        if (trial >= 80) data[pos] = saved;
        const char *paths[] = {dst};
        aac_scan *s = NULL;
        aac_error e = {0};
        CHECK(aac_scan_paths(paths, 1, &s, &e) == AAC_OK, "scan of a mutant failed: %s", e.message);
        for (int i = 0; s && i < aac_scan_series_count(s); i++) {
            aac_volume *v = NULL;
            if (aac_scan_load(s, i, &v, &e) == AAC_OK) {
                const aac_series_info *in = aac_scan_series(s, i);
                CHECK(v->dim[0] == in->dim[0] && v->dim[1] == in->dim[1], "mutant size changed");
                aac_volume_free(v);
            } else {
                CHECK(strstr(e.message, "mutant.dcm") != NULL, "error does not name the file: %s", e.message);
            }
        }
        aac_scan_free(s);
    }
}

int main(void) {
    dt_need_python("pydicom, numpy");
    const char *dir = dt_scratch("robust");
    CHECK(dt_run(DT_PY " '%s/gen_fixtures.py' '%s'", AACLIP_DICOM_TESTS_DIR, dir) == 0, "fixtures not generated");
    char study[4096];
    snprintf(study, sizeof study, "%s/study", dir);
    const char *paths[] = {study};
    aac_scan *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    CHECK(aac_scan_series_count(s) == 7, "%d series, expected 7", aac_scan_series_count(s));
    CHECK(find_series(s, "ct a") && find_series(s, "ct b"), "two series mixed in one folder not separated");
    check_bad_files(s);
    check_values(s, dir);
    aac_scan_free(s);

    const char *missing[] = {"/nonexistent/folder"};
    CHECK(aac_scan_paths(missing, 1, &s, &e) == AAC_ERR_IO && strstr(e.message, "/nonexistent/folder"),
          "missing path: %s", e.message);
    check_cli(dir);
    check_mutations(dir);
    return tu_finish("test_dicom_robust");
}
