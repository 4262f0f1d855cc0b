/* test_dicom_classes.c - inputs that used to be grouped or read wrongly, made by gen_classes.py
 * (pydicom), each checked for the series it must give, their values and their warnings:
 *  - SOP Instance UIDs shared by different images (across two series, within one): all kept,
 *    a "SOP Instance UID clash" warning naming both files;
 *  - echoes without EchoNumbers (enhanced per-frame EffectiveEchoTime; classic EchoTime with
 *    interleaved instance numbers): one part per echo, numbered by echo time;
 *  - magnitude and phase interleaved in one series: no false "missing slice" warning, a real
 *    gap still warned where it is;
 *  - a derived trace and a Philips isotropic image inside a DWI series: kept out of it;
 *  - a GE B0map series: its Hz field map and its magnitude apart;
 *  - Deflated Explicit VR Little Endian and gzipped files (*.dcm.gz) equal to the plain file;
 *    native YBR_FULL_422 / YBR_FULL give Y as grey; refusals name the photometric
 *    interpretation or the gzip problem;
 *  - outputs (SEG, Parametric Map, SR) written on a gzipped source;
 *  - with ../shared: a gzipped and a deflated copy of dcm_qa_ts 1.dcm and a gzipped JPEG 2000
 *    (9.dcm) converted equal to dcm2niix's Ref strictly (compare_nifti.py). */
#include "out_test.h"

static const aac_series_info *info_of(const aac_scan *s, const char *desc, int part) {
    for (int i = 0; i < aac_scan_series_count(s); i++) {
        const aac_series_info *in = aac_scan_series(s, i);
        if (!strcmp(in->series_description, desc) && in->part == part) return in;
    }
    return NULL;
}

static aac_volume *load_part(const aac_scan *s, const char *desc, int part) {
    for (int i = 0; i < aac_scan_series_count(s); i++) {
        const aac_series_info *in = aac_scan_series(s, i);
        if (!strcmp(in->series_description, desc) && in->part == part) {
            aac_volume *v = NULL;
            aac_error e = {0};
            CHECK_OK(aac_scan_load(s, i, &v, &e), &e);
            return v;
        }
    }
    CHECK(0, "series '%s' part %d not found", desc, part);
    return NULL;
}

static aac_scan *scan_dir(const char *root, const char *sub) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, sub);
    const char *paths[] = {path};
    aac_scan *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    return s;
}

static int count_warnings(const aac_volume *v, const char *a, const char *b) {
    int n = 0;
    for (int i = 0; v && i < v->n_warnings; i++)
        if (strstr(v->warnings[i], a) && (!b || strstr(v->warnings[i], b))) n++;
    return n;
}

static void print_warnings(const aac_volume *v) {
    for (int i = 0; v && i < v->n_warnings; i++) printf("  %s: %s\n", v->series_description, v->warnings[i]);
}

/* Every voxel of volume t equals what gen_classes.py wrote, 1000 + 100 z + 10 row + column +
 * offset (x = column, y = row in our layout), plus the rescale shift. */
static int values_ok(const aac_volume *v, int t, double offset, double slope_shift) {
    for (int z = 0; z < v->dim[2]; z++)
        for (int y = 0; y < v->dim[1]; y++)
            for (int x = 0; x < v->dim[0]; x++) {
                const double want = 1000 + 100 * z + 10 * y + x + offset + slope_shift;
                if (v->voxels[(((size_t)t * v->dim[2] + z) * v->dim[1] + y) * v->dim[0] + x] != want) return 0;
            }
    return 1;
}

static void check_clash(const char *root) {
    aac_scan *s = scan_dir(root, "clash");
    CHECK(aac_scan_series_count(s) == 3, "clash: %d series, expected 3 (none dropped)", aac_scan_series_count(s));
    static const char *const desc[] = {"clash a", "clash b", "clash in"};
    for (int k = 0; k < 3; k++) {
        aac_volume *v = load_part(s, desc[k], 0);
        if (!v) continue;
        print_warnings(v);
        const int nz = k < 2 ? 3 : 4;
        CHECK(v->dim[2] == nz && v->dim[3] == 1, "%s: %d x %d slices, expected %d", desc[k], v->dim[2], v->dim[3], nz);
        CHECK(values_ok(v, 0, k == 1 ? 5000 : 0, 0), "%s: values differ from the files", desc[k]);
        if (k < 2) {
            for (int z = 0; z < 3; z++) {
                char a[64], b[64];
                snprintf(a, sizeof a, "clash_a_%d.dcm", z);
                snprintf(b, sizeof b, "clash_b_%d.dcm", z);
                CHECK(count_warnings(v, "SOP Instance UID clash", a) == 1 && count_warnings(v, a, b) == 1,
                      "%s: no clash warning naming %s and %s", desc[k], a, b);
            }
            CHECK(v->n_warnings == 3, "%s: %d warnings, expected 3", desc[k], v->n_warnings);
        } else {
            CHECK(count_warnings(v, "SOP Instance UID clash", "clash_in_1.dcm") == 1 &&
                      count_warnings(v, "clash_in_1.dcm", "clash_in_2.dcm") == 1 && v->n_warnings == 1,
                  "clash in: expected one clash warning naming slices 1 and 2 (%d warnings)", v->n_warnings);
        }
        aac_volume_free(v);
    }
    aac_scan_free(s);
}

/* Parts 1..n of desc: each an echo (numbered), nz slices, offset 3000 per echo, no warning but
 * the split itself (and no "missing slice"). */
static void check_echoes(const char *root, const char *sub, const char *desc, int n, int nz) {
    aac_scan *s = scan_dir(root, sub);
    CHECK(aac_scan_series_count(s) == n, "%s: %d series, expected %d echoes", sub, aac_scan_series_count(s), n);
    for (int e = 1; e <= n; e++) {
        const aac_series_info *in = info_of(s, desc, e);
        CHECK(in && in->echo_number == e, "%s part %d: echo number %d, expected %d", sub, e, in ? in->echo_number : -1,
              e);
        aac_volume *v = load_part(s, desc, e);
        if (!v) continue;
        print_warnings(v);
        CHECK(v->dim[2] == nz && v->dim[3] == 1, "%s echo %d: %d x %d, expected %d slices, one volume", sub, e,
              v->dim[2], v->dim[3], nz);
        CHECK(values_ok(v, 0, 3000.0 * (e - 1), 0), "%s echo %d: values are not that echo's", sub, e);
        CHECK(count_warnings(v, "missing slice", NULL) == 0, "%s echo %d: false missing-slice warning", sub, e);
        CHECK(v->n_warnings == (e > 1 ? 1 : 0) && (e == 1 || count_warnings(v, "echo time", NULL) == 1),
              "%s echo %d: %d warnings, expected only the split by echo time", sub, e, v->n_warnings);
        aac_volume_free(v);
    }
    aac_scan_free(s);
}

static void check_magphase(const char *root) {
    aac_scan *s = scan_dir(root, "magphase");
    CHECK(aac_scan_series_count(s) == 2, "magphase: %d series, expected magnitude and phase",
          aac_scan_series_count(s));
    for (int p = 1; p <= 2; p++) {
        aac_volume *v = load_part(s, "magphase", p);
        if (!v) continue;
        print_warnings(v);
        CHECK(v->dim[2] == 5 && values_ok(v, 0, 4000.0 * (p - 1), 0), "magphase part %d: %d slices or values", p,
              v->dim[2]);
        CHECK(count_warnings(v, "missing slice", NULL) == 0, "magphase part %d: false missing-slice warning", p);
        aac_volume_free(v);
    }
    aac_scan_free(s);
    /* the phase image of slice 2 left out: the phase part says so, the magnitude part does not */
    s = scan_dir(root, "magphase_gap");
    aac_volume *m = load_part(s, "magphase_gap", 1), *ph = load_part(s, "magphase_gap", 2);
    print_warnings(m);
    print_warnings(ph);
    CHECK(m && m->dim[2] == 5 && count_warnings(m, "missing slice", NULL) == 0,
          "magphase_gap: the complete magnitude volume is said to miss slices");
    CHECK(ph && ph->dim[2] == 4 && count_warnings(ph, "missing slice", NULL) == 1,
          "magphase_gap: the phase volume's gap is not warned once");
    aac_volume_free(m);
    aac_volume_free(ph);
    aac_scan_free(s);
}

static void check_dwi(const char *root) {
    aac_scan *s = scan_dir(root, "dwi");
    aac_volume *d = load_part(s, "dwi", 1), *tr = load_part(s, "dwi", 2);
    print_warnings(tr);
    if (d) {
        CHECK(d->dim[2] == 4 && d->dim[3] == 3, "dwi: %d x %d, expected 4 slices x 3 volumes (no trace)", d->dim[2],
              d->dim[3]);
        for (int t = 0; t < d->dim[3]; t++) CHECK(values_ok(d, t, 2000.0 * t, 0), "dwi volume %d values", t);
    }
    CHECK(tr && tr->dim[2] == 4 && tr->dim[3] == 1 && values_ok(tr, 0, 9000, 0) &&
              count_warnings(tr, "differs from part 1 in derived", NULL) == 1,
          "dwi: the derived trace is not its own part");
    aac_volume_free(d);
    aac_volume_free(tr);
    aac_scan_free(s);
    s = scan_dir(root, "dwi_philips");
    d = load_part(s, "dwi philips", 1);
    tr = load_part(s, "dwi philips", 2);
    print_warnings(tr);
    CHECK(d && d->dim[3] == 3 && values_ok(d, 2, 4000, 0), "dwi philips: the acquired volumes are not 3");
    CHECK(tr && tr->dim[3] == 1 && values_ok(tr, 0, 6000, 0) && count_warnings(tr, "isotropic", NULL) == 1,
          "dwi philips: the isotropic image is not its own part");
    aac_volume_free(d);
    aac_volume_free(tr);
    aac_scan_free(s);
}

/* GE B0map: the field map in Hz (first volume) and the magnitude are two parts, not 2 volumes. */
static void check_ge_b0map(const char *root) {
    aac_scan *s = scan_dir(root, "ge_b0map");
    const aac_series_info *hz = info_of(s, "ge b0map", 1), *mag = info_of(s, "ge b0map", 2);
    CHECK(aac_scan_series_count(s) == 2 && hz && mag && strstr(hz->image_type, "B0MAP_HZ") &&
              !strstr(mag->image_type, "B0MAP_HZ"),
          "ge b0map: expected the Hz map and the magnitude apart (%d series)", aac_scan_series_count(s));
    aac_volume *a = load_part(s, "ge b0map", 1), *b = load_part(s, "ge b0map", 2);
    CHECK(a && a->dim[2] == 4 && a->dim[3] == 1 && values_ok(a, 0, 0, 0), "ge b0map: the Hz map");
    CHECK(b && b->dim[2] == 4 && b->dim[3] == 1 && values_ok(b, 0, 7000, 0), "ge b0map: the magnitude");
    aac_volume_free(a);
    aac_volume_free(b);
    aac_scan_free(s);
}

/* The CT written plain, deflated and gzipped loads alike (HU = stored - 1024). */
static void check_encodings(const char *root) {
    static const char *const sub[] = {"enc/deflate", "enc/gz"};
    for (int k = 0; k < 2; k++) {
        aac_scan *s = scan_dir(root, sub[k]);
        for (int i = 0; s && i < aac_scan_note_count(s); i++) printf("  note: %s\n", aac_scan_note(s, i, NULL));
        CHECK(aac_scan_series_count(s) == 1 && aac_scan_note_count(s) == 0, "%s: %d series, %d notes", sub[k],
              aac_scan_series_count(s), aac_scan_note_count(s));
        aac_volume *v = load_part(s, "enc", 0);
        CHECK(v && v->dim[2] == 3 && values_ok(v, 0, 0, -1024), "%s: values differ from the plain file", sub[k]);
        if (v && k == 1) CHECK(strstr(v->slice_paths[0], ".dcm.gz") != NULL, "gz: slice paths name the .gz file");
        aac_volume_free(v);
        aac_scan_free(s);
    }
    /* colour: grey is Y for YBR_FULL_422 and YBR_FULL, the luma of RGB */
    char path[4096];
    snprintf(path, sizeof path, "%s/enc/ybr_y.txt", root);
    FILE *f = fopen(path, "r");
    long ysum = -1;
    CHECK(f && fscanf(f, "%ld", &ysum) == 1, "no %s", path);
    if (f) fclose(f);
    aac_scan *s = scan_dir(root, "enc");
    static const char *const col[] = {"ybr422", "ybr_full", "rgb"};
    for (int k = 0; k < 3; k++) {
        aac_volume *v = load_part(s, col[k], 0);
        if (!v) continue;
        double sum = 0;
        for (size_t i = 0; i < aac_volume_voxel_count(v); i++) sum += v->voxels[i];
        /* Y was rounded from the luma of RGB: each pixel within 0.5 */
        const double tol = k < 2 ? 1e-6 : 0.5 * (double)aac_volume_voxel_count(v);
        CHECK(fabs(sum - (double)ysum) <= tol && count_warnings(v, "grey", NULL) == 1,
              "%s: grey sums to %.3f, Y to %ld", col[k], sum, ysum);
        aac_volume_free(v);
    }
    /* refusals say why */
    static const struct {
        const char *file, *says;
    } bad[] = {
        {"/palette.dcm", "PALETTE COLOR"},
        {"/hsv.dcm", "PhotometricInterpretation HSV"},
        {"/partial.dcm", "YBR_PARTIAL_420 in uncompressed"},
        {"/bad.dcm.gz", "gzip"},
        {"/text.dcm.gz", "named like DICOM but not DICOM"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *n = NULL;
        aac_note_level lv = AAC_NOTE_DEBUG;
        for (int k = 0; s && k < aac_scan_note_count(s) && !n; k++)
            if (strstr(aac_scan_note(s, k, &lv), bad[i].file)) n = aac_scan_note(s, k, &lv);
        CHECK(n && lv == AAC_NOTE_WARNING && strstr(n, bad[i].says), "%s: note does not say '%s': %s", bad[i].file,
              bad[i].says, n ? n : "(none)");
        if (n) printf("  %s\n", n);
    }
    aac_scan_free(s);
}

/* SEG, Parametric Map and SR need the source's headers: from a gzipped series too. */
static void check_outputs_on_gz(const char *root) {
    char path[4096];
    snprintf(path, sizeof path, "%s/enc/gz", root);
    aac_volume *v = ot_load(path);
    if (!v) return;
    const size_t n = aac_volume_voxel_count(v);
    float *map = malloc(n * sizeof *map);
    for (size_t i = 0; i < n; i++) map[i] = (float)(i % 97) / 96.0f;
    aac_results r = {.source = v, .t = 0, .map = map, .low = 0, .high = 1, .series_score = NAN};
    aac_output_params p = aac_output_default_params();
    const char *out = dt_scratch("classes_gz_outputs");
    char note[256] = "";
    aac_error e = {0};
    CHECK_OK(aac_write_outputs(&r, &p, out, note, sizeof note, &e), &e);
    static const char *const objs[] = {"seg_binary.dcm", "seg_probability.dcm", "pmap.dcm", "sr.dcm"};
    for (size_t k = 0; k < sizeof objs / sizeof objs[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", out, objs[k]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "no %s written on a gzipped source", path);
        if (f) fclose(f);
        int errors = 0;
        if (f && ot_dciodvfy(path, &errors) >= 0) CHECK(errors == 0, "%s: dciodvfy reports %d errors", path, errors);
    }
    free(map);
    aac_volume_free(v);
}

/* gzipped and deflated copies of shared files equal dcm2niix's Ref strictly. */
static void check_shared(const char *root, const char *ts) {
    static const struct {
        const char *file;
        int ref;
    } cases[] = {{"1.dcm.gz", 1}, {"1_deflated.dcm", 1}, {"9.dcm.gz", 9}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "classes_shared_%zu", i);
        const char *out = dt_scratch(name);
        int st = dt_run("'%s' convert '%s/shared/%s' -o '%s/' > '%s.log' 2>&1", AACLIP_INGEST_EXE, root, cases[i].file,
                        out, out);
        CHECK(st == 0, "%s: convert exited %d (see %s.log)", cases[i].file, st, out);
        st = dt_run(DT_PY " '%s/compare_nifti.py' '%s' '%s/Ref/%d.nii'", AACLIP_DICOM_TESTS_DIR, out, ts, cases[i].ref);
        CHECK(st == 0, "%s: differs from dcm2niix's Ref/%d.nii", cases[i].file, cases[i].ref);
    }
}

int main(void) {
    dt_need_python("pydicom, numpy");
    static char root[2048]; /* dt_scratch's buffers are reused */
    snprintf(root, sizeof root, "%s", dt_scratch("classes"));
    /* The shared gzip/deflate cases when ../shared is there ($AACLIP_SHARED_DIR at run time). */
    static char shared_dicom[4096];
    const char *ts = tu_shared_opt("dicom/dcm_qa_ts");
    if (ts) snprintf(shared_dicom, sizeof shared_dicom, "%s/dicom", tu_shared_dir());
    CHECK(dt_run(DT_PY " '%s/gen_classes.py' '%s' '%s'", AACLIP_DICOM_TESTS_DIR, root, shared_dicom) == 0,
          "fixtures not generated");
    check_clash(root);
    check_echoes(root, "echo_enh", "me enh", 3, 4);
    check_echoes(root, "echo_cls", "me cls", 2, 5);
    check_magphase(root);
    check_dwi(root);
    check_ge_b0map(root);
    check_encodings(root);
    check_outputs_on_gz(root);
    if (ts) check_shared(root, ts);

    /* the CLI reads gzipped series too */
    char buf[16384];
    const char *out = dt_scratch("classes_gz_convert");
    int st = dt_capture(buf, sizeof buf, "'%s' convert '%s/enc/gz' -o '%s/'", AACLIP_INGEST_EXE, root, out);
    CHECK(st == 0 && strstr(buf, "wrote"), "convert of a gzipped series: %s", buf);
    st = dt_capture(buf, sizeof buf, "'%s' info '%s/enc/gz'", AACLIP_INGEST_EXE, root);
    CHECK(st == 0 && strstr(buf, "\"enc\"") && strstr(buf, "files: 3"), "info of a gzipped series: %s", buf);
    return tu_finish("test_dicom_classes");
}
