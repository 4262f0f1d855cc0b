/* test_cli_score_enhanced.c - `aaclip score` on enhanced multi-frame sources.
 *
 * Generated (plain clone): the sample-study phantom written twice, as one Enhanced CT object
 * (make-sample-study --enhanced) and as a classic series. The enhanced source is valid
 * (dciodvfy), loads frame by frame to the same voxels and geometry as the series, scores, and
 * its SEG (probability and binary), Parametric Map and SR are valid (dciodvfy: no errors),
 * reference the source instance and frame of every slice (DCMTK reading the SEG back; pydicom:
 * every reference resolves, every frame lies on its source frame's plane) and hold the same
 * pixels as the classic series' objects.
 * Shared (../shared/dicom/dcm_qa_enh, when present): the Philips field map and the Siemens XA10
 * series all score, and every object they give is valid and references resolvable frames. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aaclip_outputs.h"
#include "testutil.h"
#include "tu_run.h"

#define PY "/usr/bin/python3"
#define CHECK_PY AACLIP_SOURCE_DIR "/dicom/tests/out_check.py"
#define DEMO AACLIP_SOURCE_DIR "/testdata/demo-model"

static char g_dir[] = "/tmp/aac_test_enh_XXXXXX";


static int have_dciodvfy(void) { return tu_sh("command -v dciodvfy >/dev/null 2>&1") == 0; }

/* dciodvfy errors in path (its warnings are printed, errors fail the check). */
static int dciodvfy_errors(const char *path) {
    char cmd[4200], line[2048];
    snprintf(cmd, sizeof cmd, "dciodvfy '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    int e = 0;
    while (p && fgets(line, sizeof line, p))
        if (!strncmp(line, "Error", 5)) {
            e++;
            fprintf(stderr, "dciodvfy %s: %s", path, line);
        }
    if (p) pclose(p);
    return e;
}

/* Folders holding seg_binary.dcm under out, one per line in buf; returns their number. */
static int result_dirs(const char *out, char dirs[][1024], int cap) {
    char cmd[1200], line[1000];
    snprintf(cmd, sizeof cmd, "find '%s' -name seg_binary.dcm -printf '%%h\\n' | sort", out);
    FILE *p = popen(cmd, "r");
    int n = 0;
    while (p && n < cap && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = '\0';
        snprintf(dirs[n++], 1024, "%s", line);
    }
    if (p) pclose(p);
    return n;
}

/* The four objects of one result folder: valid, every reference resolvable against src. */
static void check_objects(const char *dir, const char *src) {
    static const char *const names[] = {"seg_probability.dcm", "seg_binary.dcm", "pmap.dcm", "sr.dcm"};
    for (int i = 0; i < 4; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        CHECK(access(p, R_OK) == 0, "missing %s", p);
        if (have_dciodvfy()) CHECK(dciodvfy_errors(p) == 0, "%s: dciodvfy reports errors", p);
    }
    CHECK(tu_sh(PY " " CHECK_PY " result-dir '%s' '%s'", dir, src) == 0,
          "%s: references do not resolve or frames lie off their source planes", dir);
    CHECK(tu_sh("dsrdump '%s/sr.dcm' >/dev/null", dir) == 0, "%s/sr.dcm: dsrdump cannot read it", dir);
}

static aac_volume *load_one(const char *dir) {
    const char *paths[] = {dir};
    aac_scan *s = NULL;
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    CHECK(aac_scan_series_count(s) == 1, "%s: %d series", dir, aac_scan_series_count(s));
    CHECK_OK(aac_scan_load(s, 0, &v, &e), &e);
    aac_scan_free(s);
    return v;
}

static void test_generated(void) {
    char enh[512], cls[512], out_e[512], out_c[512];
    snprintf(enh, sizeof enh, "%s/enhanced", g_dir);
    snprintf(cls, sizeof cls, "%s/classic", g_dir);
    snprintf(out_e, sizeof out_e, "%s/out_enhanced", g_dir);
    snprintf(out_c, sizeof out_c, "%s/out_classic", g_dir);
    const char *opts = "--size 96 --slices 12 --lesions 2 --gap 10";
    CHECK(tu_sh("%s make-sample-study -o %s %s --enhanced >/dev/null", AACLIP_EXE, enh, opts) == 0, "make enhanced");
    CHECK(tu_sh("%s make-sample-study -o %s %s >/dev/null", AACLIP_EXE, cls, opts) == 0, "make classic");
    char src[600];
    snprintf(src, sizeof src, "%s/dicom/enhanced_ct.dcm", enh);
    if (have_dciodvfy()) CHECK(dciodvfy_errors(src) == 0, "the generated Enhanced CT is not valid");

    /* Frame by frame, the same volume as the classic series. */
    snprintf(src, sizeof src, "%s/dicom", enh);
    aac_volume *a = load_one(src);
    snprintf(src, sizeof src, "%s/dicom", cls);
    aac_volume *b = load_one(src);
    CHECK(a->dim[0] == 96 && a->dim[1] == 96 && a->dim[2] == 12 && a->dim[3] == 1 &&
              !memcmp(a->dim, b->dim, sizeof a->dim),
          "enhanced %d x %d x %d, classic %d x %d x %d", a->dim[0], a->dim[1], a->dim[2], b->dim[0], b->dim[1],
          b->dim[2]);
    if (!memcmp(a->dim, b->dim, sizeof a->dim)) {
        CHECK(!memcmp(a->voxels, b->voxels, aac_volume_voxel_count(a) * sizeof(float)), "voxels differ");
        for (int z = 0; z < a->dim[2]; z++) {
            CHECK(a->slice_frames[z] == z + 1 && !strcmp(a->slice_uids[z], a->slice_uids[0]),
                  "slice %d: frame %d of %s", z, a->slice_frames[z], a->slice_uids[z]);
            CHECK(!memcmp(a->slice_positions[z], b->slice_positions[z], 3 * sizeof(double)) &&
                      !memcmp(a->slice_orientations[z], b->slice_orientations[z], 6 * sizeof(double)),
                  "slice %d: plane differs from the classic series", z);
        }
        for (int i = 0; i < 3; i++)
            CHECK(a->spacing[i] == b->spacing[i] && a->origin[i] == b->origin[i], "geometry differs on axis %d", i);
    }

    CHECK(tu_sh("%s score %s/dicom -o %s --model %s --quiet", AACLIP_EXE, enh, out_e, DEMO) == 0, "score enhanced");
    CHECK(tu_sh("%s score %s/dicom -o %s --model %s --quiet", AACLIP_EXE, cls, out_c, DEMO) == 0, "score classic");
    char de[4][1024], dc[4][1024];
    CHECK(result_dirs(out_e, de, 4) == 1 && result_dirs(out_c, dc, 4) == 1, "one result folder each expected");
    snprintf(src, sizeof src, "%s/dicom", enh);
    check_objects(de[0], src);

    /* DCMTK reads the SEG back: every frame references its slice's frame of the one instance. */
    char seg[1200];
    snprintf(seg, sizeof seg, "%s/seg_binary.dcm", de[0]);
    aac_seg *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_seg_read(seg, &s, &e), &e);
    CHECK(s->n_frames % a->dim[2] == 0 && s->n_frames > 0, "%d frames for %d slices", s->n_frames, a->dim[2]);
    for (int f = 0; f < s->n_frames; f++) {
        const int z = f % a->dim[2];
        CHECK(s->frames[f].source_frame == z + 1 && !strcmp(s->frames[f].source_uid, a->slice_uids[z]) &&
                  !strcmp(s->frames[f].source_sop_class, "1.2.840.10008.5.1.4.1.1.2.1"),
              "SEG frame %d references frame %d of %s (%s)", f + 1, s->frames[f].source_frame, s->frames[f].source_uid,
              s->frames[f].source_sop_class);
    }
    aac_seg_free(s);

    /* The same phantom gives the same results, whatever the source layout. */
    static const char *const same[] = {"seg_probability.dcm", "seg_binary.dcm", "pmap.dcm"};
    for (int i = 0; i < 3; i++)
        CHECK(tu_sh(PY " " CHECK_PY " same-pixels '%s/%s' '%s/%s'", de[0], same[i], dc[0], same[i]) == 0,
              "%s differs between the enhanced and the classic source", same[i]);
    aac_volume_free(a);
    aac_volume_free(b);
}

static void test_shared(void) {
    char out[512];
    const char *in = tu_shared_opt("dicom/dcm_qa_enh/In");
    if (!in) return;
    snprintf(out, sizeof out, "%s/out_qa_enh", g_dir);
    CHECK(tu_sh("%s score %s -o %s --model %s --quiet", AACLIP_EXE, in, out, DEMO) == 0, "score dcm_qa_enh");
    char p[600];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *j = json_load_file(p, 0, NULL);
    CHECK(j != NULL, "no %s", p);
    if (j) {
        json_t *r;
        size_t i;
        int done = 0;
        json_array_foreach(json_object_get(j, "series"), i, r) done += !strcmp(json_string_value(json_object_get(r, "status")), "done");
        CHECK(done == 3 && json_array_size(json_object_get(j, "series")) == 3,
              "dcm_qa_enh: %d of %zu series done (Philips magnitude and phase, Siemens XA10)", done,
              json_array_size(json_object_get(j, "series")));
        json_decref(j);
    }
    char dirs[64][1024];
    const int n = result_dirs(out, dirs, 64);
    CHECK(n == 6, "%d result folders (Philips magnitude and phase, 4 XA10 volumes expected)", n);
    /* Every Philips part; of the XA10 series one volume (the others differ only in t). */
    for (int i = 0; i < n; i++)
        if (!strstr(dirs[i], "/vol") || strstr(dirs[i], "/vol000")) check_objects(dirs[i], in);
}

int main(void) {
    if (tu_sh(PY " -c 'import pydicom, numpy' 2>/dev/null") != 0) {
        printf("SKIP: " PY " with pydicom and numpy is needed for the independent checks\n");
        return 77;
    }
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    test_generated();
    test_shared();
    if (!tu_failures) tu_sh("rm -rf %s", g_dir);
    return tu_finish("test_cli_score_enhanced");
}
