/* test_slicer.c - aaclip-slicer as 3D Slicer uses it.
 *  1. The --xml description: an independent structural check (check_cli_xml.py) always, and
 *     Slicer's own parser (../shared/slicer/bin/slicer-cli-check) when ../shared is there; both
 *     must also refuse broken descriptions (a dashed long flag, an unknown element).
 *  2. The run Slicer makes: the sample study saved as NRRD the way Slicer saves a volume
 *     (slicer_nrrd.py, numpy), parameters as flags, NRRD paths for the outputs, no model (the
 *     demo model, said on stderr and in the report). The outputs have the input's geometry (read
 *     back with numpy), equal `aaclip score` on the same file voxel for voxel, the return
 *     parameters and the regions table equal its summary.json, and the four regions lie in the
 *     four planted lesions (lesions.json).
 *  3. A rotated, anisotropic volume with a fixed threshold: geometry kept, maps equal to
 *     `aaclip score`; bad input and bad arguments fail with the file named. */
#define _GNU_SOURCE /* memmem */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aaclip_dicom.h"
#include "testutil.h"

#define PY "/usr/bin/python3"
static char g_dir[] = "/tmp/aac_test_slicer_XXXXXX";

/* Runs a shell command (printf-style); returns its exit status (-1 when it did not exit). */
static int run(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *P(const char *name) {
    static char buf[8][1024];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 1024, "%s/%s", g_dir, name);
    return p;
}

static int contains(const char *path, const char *needle) {
    size_t n;
    char *s = tu_read_file(path, &n);
    int found = s && memmem(s, n, needle, strlen(needle)) != NULL;
    free(s);
    return found;
}

/* "name = value" from Slicer's return-parameter file. */
static double return_param(const char *path, const char *name) {
    FILE *f = fopen(path, "r");
    char line[8192];
    double v = NAN;
    size_t k = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, k) && !strncmp(line + k, " = ", 3)) v = strtod(line + k + 3, NULL);
    if (f) fclose(f);
    return v;
}

/* Largest |a - b| over two volumes of the same grid; INFINITY when they cannot be compared. */
static double max_diff(const char *a, const char *b) {
    aac_volume *va = NULL, *vb = NULL;
    aac_error e;
    double m = INFINITY;
    if (!aac_volume_read(a, &va, &e) && !aac_volume_read(b, &vb, &e) &&
        aac_volume_voxel_count(va) == aac_volume_voxel_count(vb)) {
        m = 0;
        for (size_t i = 0; i < aac_volume_voxel_count(va); i++) m = fmax(m, fabs((double)va->voxels[i] - vb->voxels[i]));
    } else {
        fprintf(stderr, "cannot compare %s and %s: %s\n", a, b, e.message);
    }
    aac_volume_free(va);
    aac_volume_free(vb);
    return m;
}

static void check_description(void) {
    printf("the --xml description\n");
    CHECK(run("'%s' --xml > '%s'", AACLIP_SLICER_EXE, P("module.xml")) == 0, "--xml failed");
    FILE *f = fopen(P("module.xml"), "r");
    char first[128] = "";
    if (f && !fgets(first, sizeof first, f)) first[0] = '\0';
    if (f) fclose(f);
    CHECK(!strcmp(first, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"), "first line: %s", first);
    CHECK(run(PY " '%s/check_cli_xml.py' '%s'", AACLIP_SLICER_TESTS_DIR, P("module.xml")) == 0, "structural check");
    /* broken descriptions must be refused (the checks can fail) */
    CHECK(run("sed 's/--classText/--class-text/' '%s' > '%s' && sed 's|<label>Threads<|<bogus/><label>Threads<|' '%s' "
              "> '%s'", P("module.xml"), P("bad_flag.xml"), P("module.xml"), P("bad_element.xml")) == 0, "sed");
    CHECK(run(PY " '%s/check_cli_xml.py' '%s' >/dev/null", AACLIP_SLICER_TESTS_DIR, P("bad_flag.xml")) == 1 &&
              run(PY " '%s/check_cli_xml.py' '%s' >/dev/null", AACLIP_SLICER_TESTS_DIR, P("bad_element.xml")) == 1,
          "the structural check accepts broken descriptions");
    const char *parser = tu_shared_opt("slicer/bin/slicer-cli-check");
    if (parser && access(parser, X_OK) == 0) {
        CHECK(run("'%s' '%s' > '%s'", parser, P("module.xml"), P("parsed.txt")) == 0, "Slicer's parser refuses it");
        CHECK(contains(P("parsed.txt"), "Name: regionsTable") && contains(P("parsed.txt"), "Channel: output"),
              "Slicer's parser did not see the outputs");
        CHECK(run("'%s' '%s' >/dev/null 2>&1", parser, P("bad_flag.xml")) == 1 &&
                  run("'%s' '%s' >/dev/null 2>&1", parser, P("bad_element.xml")) == 1,
              "Slicer's parser accepts broken descriptions");
        printf("  Slicer's ModuleDescriptionParser: accepted (and refuses the two broken copies)\n");
    } else {
        printf("  note: Slicer's parser (../shared/slicer/bin) is not here; the structural check stands in for it\n");
    }
}

/* Every region of the table lies inside a different planted lesion (LPS ellipsoids). */
static void check_regions_in_lesions(const char *table) {
    json_t *les = json_load_file(AACLIP_SOURCE_DIR "/testdata/sample-study/lesions.json", 0, NULL);
    json_t *list = json_object_get(les, "lesions");
    CHECK(json_array_size(list) == 4, "lesions.json");
    FILE *f = fopen(table, "r");
    char line[1024];
    int rows = 0, hit[8] = {0};
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "region", 6)) continue;
        int id;
        size_t vox;
        double vol, mx, mean, c[3];
        if (sscanf(line, "%d %zu %lf %lf %lf %lf %lf %lf", &id, &vox, &vol, &mx, &mean, &c[0], &c[1], &c[2]) != 8) {
            CHECK(0, "table line: %s", line);
            continue;
        }
        rows++;
        int inside = -1;
        for (size_t k = 0; k < json_array_size(list); k++) {
            json_t *l = json_array_get(list, k), *ctr = json_object_get(l, "centre_mm"), *rad = json_object_get(l, "radii_mm");
            double d = 0;
            for (int a = 0; a < 3; a++) {
                double t = (c[a] - json_number_value(json_array_get(ctr, a))) / json_number_value(json_array_get(rad, a));
                d += t * t;
            }
            if (d < 1) inside = (int)k;
        }
        CHECK(inside >= 0, "region %d (centroid %.1f %.1f %.1f LPS) lies in no planted lesion", id, c[0], c[1], c[2]);
        if (inside >= 0) hit[inside]++;
    }
    if (f) fclose(f);
    CHECK(rows == 4 && hit[0] == 1 && hit[1] == 1 && hit[2] == 1 && hit[3] == 1,
          "%d regions; lesions hit %d %d %d %d times (one each expected)", rows, hit[0], hit[1], hit[2], hit[3]);
    json_decref(les);
}

/* root/summary.json's first series' results folder + "/" + name (volume files go to
 * volumes/<path>-<hash>: the folder name is the pipeline's to choose). */
static const char *result_file(const char *root, const char *name) {
    static char buf[2][4600];
    static int slot;
    char *out = buf[slot++ & 1], path[4200];
    snprintf(path, sizeof path, "%s/summary.json", root);
    json_t *sum = json_load_file(path, 0, NULL);
    const char *dir = json_string_value(json_object_get(json_array_get(json_object_get(sum, "series"), 0), "output_dir"));
    snprintf(out, sizeof buf[0], "%s/%s", dir ? dir : "(no summary)", name);
    json_decref(sum);
    return out;
}

static void check_sample_study(void) {
    printf("the sample study, run as Slicer runs the module\n");
    CHECK(run(PY " '%s/slicer_nrrd.py' from-dicom '%s/testdata/sample-study/dicom' '%s'", AACLIP_SLICER_TESTS_DIR,
              AACLIP_SOURCE_DIR, P("input.nrrd")) == 0, "writing the input NRRD");
    /* no --model: the demo model, loudly */
    int st = run("cd '%s' && '%s' --classText scan --domain medical --window abdomen --threshold 0 --threads 2 "
                 "--regionsTable '%s' --returnparameterfile '%s' '%s' '%s' '%s' > '%s' 2> '%s'", g_dir,
                 AACLIP_SLICER_EXE, P("regions.tsv"), P("return.txt"), P("input.nrrd"), P("anomaly.nrrd"),
                 P("labels.nrrd"), P("stdout.txt"), P("stderr.txt"));
    CHECK(st == 0, "aaclip-slicer exited %d (see %s)", st, P("stderr.txt"));
    CHECK(contains(P("stderr.txt"), "DEMO model") && contains(P("return.txt"), "report = DEMO MODEL"),
          "the demo model is not announced on stderr and in the report");
    CHECK(contains(P("stdout.txt"), "<filter-progress>1.0000</filter-progress>") &&
              contains(P("stdout.txt"), "<filter-end>"), "no progress for Slicer");
    CHECK(run(PY " '%s/slicer_nrrd.py' same-geometry '%s' '%s' && " PY " '%s/slicer_nrrd.py' same-geometry '%s' '%s'",
              AACLIP_SLICER_TESTS_DIR, P("input.nrrd"), P("anomaly.nrrd"), AACLIP_SLICER_TESTS_DIR, P("input.nrrd"),
              P("labels.nrrd")) == 0, "the outputs are not on the input grid");

    /* the same file through `aaclip score` (the pipeline's volume-file path) */
    st = run("'%s' score '%s' -o '%s' --class-text scan --domain medical --window abdomen --formats nrrd --quiet "
             "--threads 2 2>/dev/null", AACLIP_EXE, P("input.nrrd"), P("ref"));
    CHECK(st == 0, "aaclip score exited %d", st);
    double dm = max_diff(P("anomaly.nrrd"), result_file(P("ref"), "anomaly_map.nrrd"));
    double dl = max_diff(P("labels.nrrd"), result_file(P("ref"), "label_map.nrrd"));
    printf("  anomaly map vs aaclip score: max |diff| %g; label map: %g\n", dm, dl);
    CHECK(dm == 0 && dl == 0, "the module's maps differ from aaclip score's (%g, %g)", dm, dl);
    json_t *sum = json_load_file(P("ref/summary.json"), 0, NULL);
    json_t *row = json_array_get(json_object_get(sum, "series"), 0);
    const double score = json_number_value(json_object_get(row, "series_score"));
    const double got = return_param(P("return.txt"), "seriesScore");
    const int regions = (int)json_integer_value(json_object_get(row, "regions"));
    printf("  series score %.7g (aaclip score %.7g), %g regions (%d), %.2f ml, threshold %g\n", got, score,
           return_param(P("return.txt"), "regionCount"), regions, return_param(P("return.txt"), "regionsVolume"),
           return_param(P("return.txt"), "usedThreshold"));
    CHECK(fabs(got - score) <= 1e-6 * fabs(score), "series score %.9g, aaclip score %.9g", got, score);
    CHECK(return_param(P("return.txt"), "regionCount") == regions && regions == 4, "regions %g vs %d",
          return_param(P("return.txt"), "regionCount"), regions);
    CHECK(fabs(return_param(P("return.txt"), "regionsVolume") * 1000 -
               json_number_value(json_object_get(row, "regions_volume_mm3"))) < 1, "regions volume");
    CHECK(fabs(return_param(P("return.txt"), "usedThreshold") - json_number_value(json_object_get(row, "threshold"))) <
              1e-6, "threshold");
    json_decref(sum);
    check_regions_in_lesions(P("regions.tsv"));
}

static void check_oblique_and_errors(void) {
    printf("a rotated anisotropic volume, a fixed threshold, and errors\n");
    CHECK(run(PY " '%s/slicer_nrrd.py' oblique '%s'", AACLIP_SLICER_TESTS_DIR, P("oblique.nrrd")) == 0, "oblique");
    const char *model = AACLIP_SOURCE_DIR "/testdata/demo-model";
    int st = run("'%s' --model '%s' --threshold 0.5 --allSlices --window 40/400 '%s' '%s' '%s' > /dev/null 2> '%s'",
                 AACLIP_SLICER_EXE, model, P("oblique.nrrd"), P("ob_map.nrrd"), P("ob_labels.nii.gz"), P("ob_err.txt"));
    CHECK(st == 0, "oblique run exited %d", st);
    size_t n;
    char *err = tu_read_file(P("ob_err.txt"), &n);
    CHECK(err && n == 0, "a run with a model writes nothing to stderr (Slicer would call it failed): %.200s",
          err ? err : "");
    free(err);
    CHECK(run(PY " '%s/slicer_nrrd.py' same-geometry '%s' '%s' > /dev/null", AACLIP_SLICER_TESTS_DIR,
              P("oblique.nrrd"), P("ob_map.nrrd")) == 0, "oblique map geometry");
    aac_volume *in = NULL, *lab = NULL;
    aac_error e;
    CHECK_OK(aac_volume_read(P("oblique.nrrd"), &in, &e), &e);
    CHECK_OK(aac_volume_read(P("ob_labels.nii.gz"), &lab, &e), &e);
    double worst = 0;
    for (int i = 0; i < 9; i++) worst = fmax(worst, fabs(in->direction[i] - lab->direction[i]));
    for (int i = 0; i < 3; i++)
        worst = fmax(worst, fmax(fabs(in->origin[i] - lab->origin[i]), fabs(in->spacing[i] - lab->spacing[i])));
    CHECK(worst < 1e-4, "NIfTI label map geometry differs by %g", worst);
    size_t ones = 0, bad = 0;
    for (size_t i = 0; i < aac_volume_voxel_count(lab); i++) ones += lab->voxels[i] == 1, bad += lab->voxels[i] > 1;
    CHECK(bad == 0, "labels above 1 with one threshold");
    printf("  oblique: geometry kept (%.2g), %zu voxels at p >= 0.5\n", worst, ones);
    aac_volume_free(in), aac_volume_free(lab);
    st = run("'%s' score '%s' -o '%s' --model '%s' --threshold 0.5 --all-slices --window 40/400 --formats nrrd --quiet "
             "2>/dev/null", AACLIP_EXE, P("oblique.nrrd"), P("ob_ref"), model);
    CHECK(st == 0 && max_diff(P("ob_map.nrrd"), result_file(P("ob_ref"), "anomaly_map.nrrd")) == 0,
          "oblique map differs from aaclip score's");

    st = run("'%s' --model '%s' '%s' '%s' '%s' > /dev/null 2> '%s'", AACLIP_SLICER_EXE, model, P("missing.nrrd"),
             P("m.nrrd"), P("l.nrrd"), P("e1.txt"));
    CHECK(st == 1 && contains(P("e1.txt"), "missing.nrrd"), "missing input: status %d", st);
    st = run("'%s' --threshold 2 a b c > /dev/null 2> '%s'", AACLIP_SLICER_EXE, P("e2.txt"));
    CHECK(st == 2 && contains(P("e2.txt"), "--threshold"), "bad threshold: status %d", st);
    st = run("'%s' --model '%s' '%s' '%s' '%s' > /dev/null 2> '%s'", AACLIP_SLICER_EXE, model, P("oblique.nrrd"),
             P("m.png"), P("l.nrrd"), P("e3.txt"));
    CHECK(st == 1 && contains(P("e3.txt"), "m.png"), "unsupported output name: status %d", st);
    st = run("'%s' --model '%s/nothing' '%s' '%s' '%s' > /dev/null 2> '%s'", AACLIP_SLICER_EXE, g_dir,
             P("oblique.nrrd"), P("m.nrrd"), P("l.nrrd"), P("e4.txt"));
    CHECK(st == 1 && contains(P("e4.txt"), "nothing"), "missing bundle: status %d", st);
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    check_description();
    check_sample_study();
    check_oblique_and_errors();
    if (!tu_failures) run("rm -rf '%s'", g_dir);
    return tu_finish("test_slicer");
}
