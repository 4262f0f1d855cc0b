/* test_cli_score_demo.c - the acceptance run of `aaclip score`: the sample study
 * (testdata/sample-study) scored with the demo model (testdata/demo-model): every reported
 * region's centroid lies inside a lesion of lesions.json, every lesion has one, regions are at
 * the calibrated region threshold, and every format is written. Also: the bundle's
 * calibration (used by default, not applied to another class text, --no-calibration, stored by
 * `eval --calibrate`, a malformed one refused naming model.json), and PNG pictures as inputs
 * next to a corrupt JPEG that fails alone, OUTDIR inside the input, pictures next to series. */
#define _GNU_SOURCE /* memmem */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define SAMPLE AACLIP_SOURCE_DIR "/testdata/sample-study"
#define DEMO AACLIP_SOURCE_DIR "/testdata/demo-model"

static char g_dir[] = "/tmp/aac_test_demo_XXXXXX";

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static json_t *first_row(const char *out) {
    char p[600];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *s = json_load_file(p, 0, NULL);
    CHECK(s != NULL, "cannot read %s", p);
    json_t *row = json_incref(json_array_get(json_object_get(s, "series"), 0));
    json_decref(s);
    return row;
}

static int starts(json_t *row, const char *key, const char *prefix) {
    const char *v = json_string_value(json_object_get(row, key));
    return v && !strncmp(v, prefix, strlen(prefix));
}

static int file_has(const char *path, const char *text) {
    size_t n;
    char *b = tu_read_file(path, &n);
    int found = b && memmem(b, n, text, strlen(text)) != NULL;
    free(b);
    return found;
}

/* Inside the lesion's ellipsoid (axis-aligned, LPS mm)? */
static int inside(json_t *lesion, const double c[3]) {
    json_t *ctr = json_object_get(lesion, "centre_mm"), *rad = json_object_get(lesion, "radii_mm");
    double q = 0;
    for (int a = 0; a < 3; a++) {
        const double d = (c[a] - json_number_value(json_array_get(ctr, a))) / json_number_value(json_array_get(rad, a));
        q += d * d;
    }
    return q <= 1;
}

static void test_sample_study(void) {
    char cmd[4096], out[600];
    printf("sample study with the demo model\n");
    snprintf(out, sizeof out, "%s/out", g_dir);
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s --model %s --quiet", AACLIP_EXE, SAMPLE, out, DEMO);
    CHECK(sh(cmd) == 0, "score the sample study");
    json_t *row = first_row(out), *les = json_load_file(SAMPLE "/lesions.json", 0, NULL);
    CHECK(row && les, "summary and lesions.json");
    if (!row || !les) return;
    CHECK(starts(row, "status", "done"), "series done");
    CHECK(starts(row, "probability", "calibrated"), "the demo bundle's calibration is used: %s",
          json_string_value(json_object_get(row, "probability")));
    /* every format */
    const char *need[] = {"seg_probability.dcm", "seg_binary.dcm", "pmap.dcm", "sr.dcm", "anomaly_map.nii.gz",
                          "label_map.nii.gz", "anomaly_map.nrrd", "label_map.nrrd", "input.nrrd", "scene.mrml",
                          "montage.png", "result.json"};
    const char *dir = json_string_value(json_object_get(row, "output_dir"));
    for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, need[k]);
        CHECK(access(p, F_OK) == 0, "missing output %s", p);
    }
    /* the regions are the lesions */
    json_t *regions = json_object_get(row, "region_list"), *lesions = json_object_get(les, "lesions");
    const size_t nr = json_array_size(regions), nl = json_array_size(lesions);
    int found[16] = {0}, stray = 0;
    CHECK(nr >= 1 && nl >= 1 && nl <= 16, "%zu regions, %zu lesions", nr, nl);
    for (size_t i = 0; i < nr; i++) {
        json_t *c = json_object_get(json_array_get(regions, i), "centroid_mm");
        const double x[3] = {json_number_value(json_array_get(c, 0)), json_number_value(json_array_get(c, 1)),
                             json_number_value(json_array_get(c, 2))};
        int hit = 0;
        for (size_t l = 0; l < nl && l < 16; l++)
            if (inside(json_array_get(lesions, l), x)) found[l] = hit = 1;
        printf("  region %zu at (%.1f, %.1f, %.1f) mm, %.0f mm3: %s\n", i, x[0], x[1], x[2],
               json_number_value(json_object_get(json_array_get(regions, i), "volume_mm3")),
               hit ? "inside a lesion" : "NOT in a lesion");
        stray += !hit;
    }
    int n_found = 0;
    for (size_t l = 0; l < nl && l < 16; l++) n_found += found[l];
    /* Every lesion has a region centred in it and no region lies elsewhere (measured with the
     * shipped demo model; docs/validation-training.md). */
    printf("  %d of %zu lesions found, %d regions outside every lesion\n", n_found, nl, stray);
    CHECK(stray == 0, "%d of %zu regions lie outside every lesion", stray, nr);
    CHECK(n_found == (int)nl, "%d of %zu lesions found", n_found, nl);
    /* regions at the calibrated lesion-wise threshold, below the pixel one */
    json_t *model = json_load_file(DEMO "/model.json", 0, NULL);
    json_t *cal = json_object_get(model, "calibration");
    const double rt = json_number_value(json_object_get(cal, "region_threshold")),
                 pt = json_number_value(json_object_get(cal, "threshold")),
                 st = json_number_value(json_object_get(row, "threshold"));
    printf("  summary threshold %.4f (calibration: region %.4f, pixel %.4f)\n", st, rt, pt);
    CHECK(rt > 0 && rt < pt && st == rt, "regions at the region threshold %g (pixel %g), summary %g", rt, pt, st);
    json_decref(model);
    json_decref(row), json_decref(les);

    /* without the calibration, or for another class text: each volume's own range */
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s/nocal --model %s --quiet --no-calibration --formats nifti",
             AACLIP_EXE, SAMPLE, g_dir, DEMO);
    CHECK(sh(cmd) == 0, "--no-calibration");
    snprintf(out, sizeof out, "%s/nocal", g_dir);
    row = first_row(out);
    CHECK(row && starts(row, "probability", "per volume"), "--no-calibration: per-volume probabilities");
    json_decref(row);
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s/other --model %s --formats nifti --class-text 'liver lesion' 2>%s/log",
             AACLIP_EXE, SAMPLE, g_dir, DEMO, g_dir);
    CHECK(sh(cmd) == 0, "another class text");
    snprintf(out, sizeof out, "%s/other", g_dir);
    row = first_row(out);
    CHECK(row && starts(row, "probability", "per volume"), "another class text: the calibration does not apply");
    json_decref(row);
    snprintf(out, sizeof out, "%s/log", g_dir);
    CHECK(file_has(out, "calibration is for \"scan\""), "the log says why the calibration is not used");
}

static void test_calibrate(void) {
    char cmd[4096], p[600], p2[600];
    printf("eval --calibrate\n");
    snprintf(cmd, sizeof cmd,
             "cp -r %s %s/model && %s make-phantoms -o %s/ph --volumes 1 --slices 8 --size 128 --lesions 2-2 "
             "--class Liver >/dev/null",
             DEMO, g_dir, AACLIP_EXE, g_dir);
    CHECK(sh(cmd) == 0, "copy the demo model, make phantoms");
    snprintf(p, sizeof p, "%s/model/model.json", g_dir);
    json_t *j = json_load_file(p, 0, NULL);
    json_object_del(j, "calibration");
    json_dump_file(j, p, JSON_INDENT(2));
    json_decref(j);
    snprintf(cmd, sizeof cmd, "%s eval --model %s/model --data %s/ph/data.jsonl --calibrate >%s/cal.log 2>&1",
             AACLIP_EXE, g_dir, g_dir, g_dir);
    CHECK(sh(cmd) == 0, "eval --calibrate");
    j = json_load_file(p, 0, NULL);
    json_t *c = json_object_get(j, "calibration");
    const double lo = json_number_value(json_object_get(c, "map_low")), hi = json_number_value(json_object_get(c, "map_high")),
                 t = json_number_value(json_object_get(c, "threshold"));
    CHECK(c && hi > lo && t > 0 && t <= 1 && !strcmp(json_string_value(json_object_get(c, "class_text")), "scan") &&
              !strcmp(json_string_value(json_object_get(c, "class")), "Liver") &&
              json_integer_value(json_object_get(c, "images")) == 8,
          "stored calibration (%g..%g, threshold %g)", lo, hi, t);
    const double rt = json_number_value(json_object_get(c, "region_threshold"));
    CHECK(rt > 0 && rt <= 1 && json_is_number(json_object_get(c, "region_f1")), "stored region threshold %g", rt);
    /* a calibration without a region threshold (an older bundle) reports regions at the pixel one */
    json_object_del(c, "region_threshold");
    json_dump_file(j, p, JSON_INDENT(2));
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s/old --model %s/model --quiet --formats nifti", AACLIP_EXE,
             SAMPLE, g_dir, g_dir);
    CHECK(sh(cmd) == 0, "score with a calibration without region threshold");
    snprintf(p2, sizeof p2, "%s/old", g_dir);
    json_t *row = first_row(p2);
    CHECK(row && json_number_value(json_object_get(row, "threshold")) == t, "regions at the pixel threshold %g", t);
    json_decref(row);
    /* a region threshold above the pixel one: regions (and the summary) still use it */
    const double high = t + (1 - t) / 4;
    json_object_set_new(c, "region_threshold", json_real(high));
    json_dump_file(j, p, JSON_INDENT(2));
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s/high --model %s/model --quiet --formats nifti", AACLIP_EXE,
             SAMPLE, g_dir, g_dir);
    CHECK(sh(cmd) == 0, "score with a region threshold above the pixel one");
    snprintf(p2, sizeof p2, "%s/high", g_dir);
    row = first_row(p2);
    CHECK(row && json_number_value(json_object_get(row, "threshold")) == high, "regions at the region threshold %g",
          high);
    json_decref(row);
    /* malformed: refused, naming model.json */
    json_object_set_new(c, "region_threshold", json_real(0.0));
    json_dump_file(j, p, JSON_INDENT(2));
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s/bad0 --model %s/model --quiet 2>%s/bad0.log", AACLIP_EXE,
             SAMPLE, g_dir, g_dir, g_dir);
    CHECK(sh(cmd) == 1, "a region threshold of 0 fails the run");
    snprintf(p2, sizeof p2, "%s/bad0.log", g_dir);
    CHECK(file_has(p2, "model.json") && file_has(p2, "region_threshold"), "the error names the region threshold");
    json_object_del(c, "region_threshold");
    json_object_set_new(c, "threshold", json_real(2.0));
    json_dump_file(j, p, JSON_INDENT(2));
    json_decref(j);
    snprintf(cmd, sizeof cmd, "%s score %s/dicom -o %s/bad --model %s/model --quiet 2>%s/bad.log", AACLIP_EXE, SAMPLE,
             g_dir, g_dir, g_dir);
    CHECK(sh(cmd) == 1, "a malformed calibration fails the run");
    snprintf(p, sizeof p, "%s/bad.log", g_dir);
    CHECK(file_has(p, "model.json") && file_has(p, "threshold"), "the error names model.json and the threshold");
    /* two classes cannot be one calibration */
    snprintf(cmd, sizeof cmd,
             "sed '1s/\"Liver\"/\"Brain\"/' %s/ph/data.jsonl > %s/ph/two.jsonl && "
             "%s eval --model %s --data %s/ph/two.jsonl --calibrate >/dev/null 2>%s/two.log",
             g_dir, g_dir, AACLIP_EXE, DEMO, g_dir, g_dir);
    CHECK(sh(cmd) == 1, "--calibrate on two classes is refused");
    snprintf(p, sizeof p, "%s/two.log", g_dir);
    CHECK(file_has(p, "one class"), "the refusal says why");
}

static void test_pictures(void) {
    char cmd[4096], out[600];
    printf("pictures\n");
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/pics/good %s/pics/bad && cp %s/ph/images/v0000_z003.png %s/pics/good/000.png && "
             "cp %s/ph/images/v0000_z004.png %s/pics/bad/000.png && "
             "printf '\\377\\330\\377\\340garbage' > %s/pics/bad/broken.jpg",
             g_dir, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir);
    CHECK(sh(cmd) == 0, "picture folder");
    /* an RGB picture, not square */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/make_rgb_png.py %s/pics/bad/rgb.png", AACLIP_TEST_SOURCE_DIR, g_dir);
    CHECK(sh(cmd) == 0, "RGB picture");
    snprintf(out, sizeof out, "%s/picout", g_dir);
    snprintf(cmd, sizeof cmd, "cd %s && %s score pics -o %s --model %s --quiet 2>/dev/null", g_dir, AACLIP_EXE, out, DEMO);
    CHECK(sh(cmd) == 1, "a corrupt picture makes the exit status 1");
    char p[700];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *s = json_load_file(p, 0, NULL), *r;
    size_t i;
    int done = 0, failed = 0;
    json_array_foreach(json_object_get(s, "series"), i, r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        CHECK(!strcmp(json_string_value(json_object_get(r, "modality")), "picture"), "row %zu is a picture", i);
        if (!strcmp(st, "done")) {
            done++;
            const char *dir = json_string_value(json_object_get(r, "output_dir"));
            CHECK(strstr(dir, "/images/pics_") != NULL, "picture folder %s", dir);
            char f[1200];
            snprintf(f, sizeof f, "%s/montage.png", dir);
            CHECK(access(f, F_OK) == 0, "%s", f);
            snprintf(f, sizeof f, "%s/anomaly_map.nii.gz", dir);
            CHECK(access(f, F_OK) == 0, "%s", f);
            json_t *d = json_object_get(r, "dims");
            const int rgb = strstr(dir, "rgb.png") != NULL, w = (int)json_integer_value(json_array_get(d, 0)),
                      h = (int)json_integer_value(json_array_get(d, 1));
            CHECK(rgb ? w == 120 && h == 90 : w == 128 && h == 128, "%s: %d x %d", dir, w, h);
            CHECK(json_integer_value(json_array_get(d, 2)) == 1, "a picture is one slice");
        } else {
            failed++;
            const char *e = json_string_value(json_object_get(r, "error"));
            CHECK(e && strstr(e, "broken.jpg"), "the failure names the file: %s", e ? e : "(none)");
        }
    }
    CHECK(done == 3 && failed == 1, "3 pictures done, 1 failed (%d, %d)", done, failed);
    json_decref(s);

    /* OUTDIR inside the PATH: a second run does not take the first run's results for input */
    for (int run = 0; run < 2; run++) {
        snprintf(cmd, sizeof cmd, "cd %s && %s score pics/good -o pics/good/out --model %s --quiet --formats png", g_dir,
                 AACLIP_EXE, DEMO);
        CHECK(sh(cmd) == 0, "score into a folder inside the input (run %d)", run + 1);
    }
    snprintf(p, sizeof p, "%s/pics/good/out/summary.json", g_dir);
    s = json_load_file(p, 0, NULL);
    CHECK(json_array_size(json_object_get(s, "series")) == 1, "one picture, not the montage of the first run (%zu rows)",
          json_array_size(json_object_get(s, "series")));
    json_decref(s);

    /* next to a DICOM series, pictures are left out unless --pictures always */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/cd && cp -r %s/dicom %s/cd/ && cp %s/pics/bad/rgb.png %s/cd/icon.png", g_dir,
             SAMPLE, g_dir, g_dir, g_dir);
    CHECK(sh(cmd) == 0, "a 'patient CD'");
    for (int always = 0; always < 2; always++) {
        snprintf(cmd, sizeof cmd, "%s score %s/cd -o %s/cdout%d --model %s --quiet --formats nifti%s", AACLIP_EXE, g_dir,
                 g_dir, always, DEMO, always ? " --pictures always" : "");
        CHECK(sh(cmd) == 0, "score the CD (%d)", always);
        snprintf(p, sizeof p, "%s/cdout%d/summary.json", g_dir, always);
        s = json_load_file(p, 0, NULL);
        char *notes = json_dumps(json_object_get(s, "skipped_files"), 0);
        const size_t rows = json_array_size(json_object_get(s, "series"));
        CHECK(always ? rows == 2 : rows == 1 && notes && strstr(notes, "icon.png: picture next to DICOM"),
              "--pictures %s: %zu rows, notes %s", always ? "always" : "auto", rows, notes ? notes : "");
        free(notes);
        json_decref(s);
    }
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    setenv("AACLIP_CACHE_DIR", g_dir, 1); /* the anchor cache stays in the test folder */
    test_sample_study();
    test_calibrate();
    test_pictures();
    if (!tu_failures) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        sh(cmd);
    }
    return tu_finish("test_cli_score_demo");
}
