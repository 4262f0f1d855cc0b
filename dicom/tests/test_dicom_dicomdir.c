/* test_dicom_dicomdir.c - media with a DICOMDIR (pydicom's FileSet, via gen_fixtures.py): the
 * files it lists are found through it although their names have no extension, live in nested
 * folders and differ in case from the upper-case file IDs; files it does not list are still
 * found by the walk; no file is read twice; a listed file that is gone, a file ID leaving the
 * DICOMDIR's folder and a broken DICOMDIR are warnings naming the DICOMDIR, and the images
 * beside it still load. */
#include "dicom_test.h"

#include "aaclip_dicom.h"

static aac_scan *scan(const char *path) {
    const char *paths[] = {path};
    aac_scan *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    return s;
}

static int find_series(const aac_scan *s, const char *desc) {
    for (int i = 0; i < aac_scan_series_count(s); i++)
        if (!strcmp(aac_scan_series(s, i)->series_description, desc)) return i;
    return -1;
}

/* The first note containing both texts (any level), or NULL. */
static const char *note_with(const aac_scan *s, const char *a, const char *b, aac_note_level *lv) {
    for (int i = 0; i < aac_scan_note_count(s); i++) {
        const char *n = aac_scan_note(s, i, lv);
        if (strstr(n, a) && strstr(n, b)) return n;
    }
    return NULL;
}

static int any_warning(const aac_scan *s, int i, const char *text) {
    const aac_series_info *in = aac_scan_series(s, i);
    for (int k = 0; in && k < in->n_warnings; k++)
        if (strstr(in->warnings[k], text)) return 1;
    return 0;
}

/* "media ct": 4 slices at z = 0, 2, 4, 6 mm, voxel (x, y) of slice k = 10 k + x. */
static void check_media_ct(const aac_scan *s) {
    const int i = find_series(s, "media ct");
    CHECK(i >= 0, "series listed by the DICOMDIR not found");
    if (i < 0) return;
    const aac_series_info *in = aac_scan_series(s, i);
    CHECK(in->n_files == 4 && in->n_warnings == 0, "media ct: %d files, %d warnings (expected 4, 0)", in->n_files,
          in->n_warnings);
    CHECK(!any_warning(s, i, "duplicate"), "a file listed by the DICOMDIR was read twice");
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_load(s, i, &v, &e), &e);
    if (!v) return;
    CHECK(v->dim[0] == 12 && v->dim[1] == 10 && v->dim[2] == 4 && v->dim[3] == 1, "media ct dims %d %d %d %d",
          v->dim[0], v->dim[1], v->dim[2], v->dim[3]);
    CHECK(fabs(v->spacing[2] - 2.0) < 1e-9 && v->origin[2] == 0, "media ct spacing %g origin %g", v->spacing[2],
          v->origin[2]);
    for (int z = 0; z < v->dim[2]; z++) {
        const float *sl = v->voxels + (size_t)z * 120;
        CHECK(sl[0] == 10 * z && sl[5 * 12 + 7] == 10 * z + 7, "media ct slice %d: %g %g", z, sl[0], sl[67]);
        CHECK(v->slice_paths && strstr(v->slice_paths[z], "/Pt000000/st000000/se000000/im00000"),
              "slice %d not read from the lower/mixed-case file: %s", z, v->slice_paths ? v->slice_paths[z] : "");
    }
    aac_volume_free(v);
}

static void check_media(const char *dir) {
    char media[4096], dicomdir[4096];
    snprintf(media, sizeof media, "%s/media", dir);
    snprintf(dicomdir, sizeof dicomdir, "%s/media/DICOMDIR", dir);

    /* The folder: DICOMDIR first, then the walk for what it does not list. */
    aac_scan *s = scan(media);
    if (!s) return;
    CHECK(aac_scan_series_count(s) == 2, "%d series in media/, expected 2 (media ct, media extra)",
          aac_scan_series_count(s));
    check_media_ct(s);
    const int x = find_series(s, "media extra");
    CHECK(x >= 0 && aac_scan_series(s, x)->n_files == 2 && aac_scan_series(s, x)->dim[2] == 2,
          "files not listed by the DICOMDIR (extra/deeper/im1, im2) not found by the walk");
    aac_note_level lv = AAC_NOTE_DEBUG;
    const char *n = note_with(s, "/media/DICOMDIR", "SE000001\\IM000000", &lv);
    CHECK(n && lv == AAC_NOTE_WARNING && strstr(n, "does not exist"), "no warning for the listed file that is gone: %s",
          n ? n : "(none)");
    n = note_with(s, "/media/DICOMDIR", "lists 5 files, 4 found", &lv);
    CHECK(n && lv == AAC_NOTE_DEBUG, "no debug note saying what the DICOMDIR gave");
    for (int i = 0; i < aac_scan_note_count(s); i++) {
        const char *m = aac_scan_note(s, i, &lv);
        CHECK(!strstr(m, "/Pt000000/") && !strstr(m, "/extra/"), "an image file got a note: %s", m);
    }
    aac_scan_free(s);

    /* The DICOMDIR itself: the files it lists, nothing else. */
    s = scan(dicomdir);
    if (s) {
        CHECK(aac_scan_series_count(s) == 1 && find_series(s, "media ct") >= 0,
              "DICOMDIR named on its own: %d series, expected media ct only", aac_scan_series_count(s));
        check_media_ct(s);
    }
    aac_scan_free(s);

    /* Given twice (and as folder and index): still one read per file. */
    const char *both[] = {media, dicomdir, media};
    aac_error e = {0};
    s = NULL;
    CHECK_OK(aac_scan_paths(both, 3, &s, &e), &e);
    if (s) {
        CHECK(aac_scan_series_count(s) == 2, "paths given twice: %d series", aac_scan_series_count(s));
        check_media_ct(s);
    }
    aac_scan_free(s);
}

static void check_broken(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/media_broken", dir);
    aac_scan *s = scan(path);
    if (!s) return;
    aac_note_level lv = AAC_NOTE_DEBUG;
    const char *n = note_with(s, "/media_broken/DICOMDIR", "DICOMDIR cannot be parsed", &lv);
    CHECK(n && lv == AAC_NOTE_WARNING, "garbage DICOMDIR: no warning naming it");
    n = note_with(s, "/notdir/DICOMDIR", "no directory records", &lv);
    CHECK(n && lv == AAC_NOTE_WARNING, "image named DICOMDIR: no warning naming it");
    const int b = find_series(s, "broken media");
    CHECK(b >= 0 && aac_scan_series(s, b)->n_files == 2, "images beside a broken DICOMDIR not found by the walk");
    if (b >= 0) {
        aac_volume *v = NULL;
        aac_error e = {0};
        CHECK_OK(aac_scan_load(s, b, &v, &e), &e);
        if (v) CHECK(v->dim[2] == 2 && v->voxels[64] == 1, "broken media: %d slices, slice 1 = %g", v->dim[2],
                     v->voxels[64]);
        aac_volume_free(v);
    }
    CHECK(find_series(s, "notdir") >= 0, "image under a non-index DICOMDIR not found");
    aac_scan_free(s);
}

/* File IDs leaving the DICOMDIR's folder ("..") or with an empty component are refused; the
 * file outside is still found once, by the walk. */
static void check_hostile(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/media_hostile", dir);
    aac_scan *s = scan(path);
    if (!s) return;
    aac_note_level lv = AAC_NOTE_DEBUG;
    const char *n = note_with(s, "/inner/DICOMDIR", "..\\OUTSIDE, which is not a valid file ID", &lv);
    CHECK(n && lv == AAC_NOTE_WARNING, "a file ID with '..' was not refused");
    n = note_with(s, "/inner/DICOMDIR", "A\\\\B, which is not a valid file ID", &lv);
    CHECK(n && lv == AAC_NOTE_WARNING, "a file ID with an empty component was not refused");
    const int o = find_series(s, "outside"), i = find_series(s, "inner");
    CHECK(o >= 0 && aac_scan_series(s, o)->n_files == 1 && aac_scan_series(s, o)->n_warnings == 0,
          "the file outside the DICOMDIR's folder is not found once by the walk");
    CHECK(i >= 0 && aac_scan_series(s, i)->n_files == 2, "files beside the hostile DICOMDIR not found");
    aac_scan_free(s);
}

static void check_cli(const char *dir) {
    char buf[16384];
    int st = dt_capture(buf, sizeof buf, "'%s' info '%s/media'", AACLIP_INGEST_EXE, dir);
    CHECK(st == 0 && strstr(buf, "media ct") && strstr(buf, "media extra") && strstr(buf, "DICOMDIR lists"),
          "info on media/: %d %s", st, buf);
    const char *out = dt_scratch("dicomdir_convert");
    st = dt_capture(buf, sizeof buf, "'%s' convert '%s/media/DICOMDIR' -o '%s/ct.nii.gz'", AACLIP_INGEST_EXE, dir, out);
    CHECK(st == 0 && dt_run("test -s '%s/ct.nii.gz'", out) == 0, "convert of a DICOMDIR: %d %s", st, buf);
}

int main(void) {
    dt_need_python("pydicom, pydicom.fileset, numpy");
    const char *dir = dt_scratch("dicomdir");
    CHECK(dt_run(DT_PY " '%s/gen_fixtures.py' '%s' dicomdir", AACLIP_DICOM_TESTS_DIR, dir) == 0,
          "fixtures not generated");
    check_media(dir);
    check_broken(dir);
    check_hostile(dir);
    check_cli(dir);
    return tu_finish("test_dicom_dicomdir");
}
