/* test_score.c - the scoring pipeline as a library (aaclip_score.h): one series into its final
 * folder, skip and force, abort, progress, formats, pictures, the summary, and the batch call.
 * Model: the bundled demo model; data: a small phantom study written by aac_write_sample_study. */
#include "dicom_test.h"

#include <jansson.h>
#include <math.h>

#include "aaclip_score.h"
#include "aaclip_synth.h"

typedef struct recorder {
    int64_t last_done, last_total, calls, backwards;
    int events[8];
    int abort_after; /* abort callback answers 1 from its n-th call on (0: never) */
    int abort_calls;
} recorder;

static void on_log(void *u, aac_score_event ev, const char *series, const char *msg) {
    (void)series, (void)msg;
    recorder *r = u;
    if ((unsigned)ev < 8) r->events[ev]++;
}
static void on_progress(void *u, int64_t done, int64_t total) {
    recorder *r = u;
    r->backwards += done < r->last_done;
    r->last_done = done, r->last_total = total, r->calls++;
}
static int on_abort(void *u) {
    recorder *r = u;
    return r->abort_after && ++r->abort_calls >= r->abort_after;
}

static json_t *load_json(const char *path) { return json_load_file(path, 0, NULL); }

static int count_files(const char *dir, const char *suffix) {
    char out[256];
    dt_capture(out, sizeof out, "find '%s' -name '*%s' | wc -l", dir, suffix);
    return atoi(out);
}

int main(void) {
    aac_error e = {0};
    const char *bundle = DT_DEMO_MODEL;
    aac_model *m;
    aac_tokenizer *tok;
    dt_open_demo(&m, &tok);

    /* a small study: 12 slices of 128 x 128, two lesions */
    const char *study = dt_scratch("score_study");
    aac_ct_phantom_params pp = aac_ct_phantom_default_params();
    pp.size = 128, pp.slices = 12, pp.n_lesions = 2, pp.fov_mm = 307.2, pp.slice_mm = 6;
    CHECK_OK(aac_write_sample_study(&pp, study, &e), &e);
    char dicom_dir[4200];
    snprintf(dicom_dir, sizeof dicom_dir, "%s/dicom", study);
    const char *paths[1] = {dicom_dir};
    aac_scan *scan = NULL;
    CHECK_OK(aac_scan_paths(paths, 1, &scan, &e), &e);
    CHECK(aac_scan_series_count(scan) == 1, "series: %d", aac_scan_series_count(scan));

    /* formats: names, implied formats, errors */
    int mask = 0;
    CHECK_OK(aac_score_formats_parse("sr,png", &mask, &e), &e);
    CHECK(mask == (AAC_FORMAT_SR | AAC_FORMAT_SEG | AAC_FORMAT_PNG), "sr,png -> %d", mask);
    CHECK_OK(aac_score_formats_parse("scene", &mask, &e), &e);
    CHECK(mask == (AAC_FORMAT_SCENE | AAC_FORMAT_NRRD), "scene -> %d", mask);
    CHECK(aac_score_formats_parse("seg,xyz", &mask, &e) == AAC_ERR_ARG && strstr(e.message, "xyz"), "%s", e.message);
    CHECK(aac_score_formats_parse("", &mask, &e) == AAC_ERR_ARG, "empty format list accepted");

    /* bad thresholds are refused at open */
    aac_score_params bad = aac_score_default_params();
    bad.n_thresholds = 1, bad.thresholds[0] = 1.5;
    aac_scorer *sc = NULL;
    CHECK(aac_scorer_open(m, tok, bundle, &bad, &sc, &e) == AAC_ERR_ARG && !sc, "threshold 1.5 accepted");

    recorder rec = {0};
    aac_score_params p = aac_score_default_params();
    p.log = on_log, p.progress = on_progress, p.abort = on_abort, p.user = &rec;
    p.batch_slices = 2;
    CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);
    const aac_score_params *rp = aac_scorer_params(sc);
    /* the demo bundle is calibrated: its class text, domain and two thresholds apply */
    CHECK(aac_scorer_calibrated(sc) == 1, "demo bundle not calibrated");
    CHECK(rp->class_text && rp->class_text[0] && rp->domain == AAC_DOMAIN_MEDICAL, "resolved class/domain");
    CHECK(rp->n_thresholds >= 1 && rp->thresholds[0] > 0 && rp->thresholds[0] <= 1, "thresholds resolved");
    CHECK(rec.events[AAC_EVENT_CALIBRATION] == 1 && rec.events[AAC_EVENT_ANCHORS] == 1, "open events %d %d",
          rec.events[AAC_EVENT_CALIBRATION], rec.events[AAC_EVENT_ANCHORS]);

    /* one series into its final folder */
    const char *root = dt_scratch("score_out");
    char dir[4200];
    aac_score_series_dir(root, aac_scan_series(scan, 0), dir, sizeof dir);
    CHECK(strncmp(dir, root, strlen(root)) == 0 && strstr(dir, aac_scan_series(scan, 0)->series_uid), "dir %s", dir);
    aac_score_result r;
    CHECK_OK(aac_score_series(sc, scan, 0, dir, &r, &e), &e);
    CHECK(r.state == AAC_SCORE_DONE, "state %d: %s", r.state, r.error);
    CHECK(isfinite(r.series_score), "series score %g", r.series_score); /* raw: any sign */
    CHECK(rec.last_done == 12 && rec.last_total == 12 && !rec.backwards, "progress %lld/%lld",
          (long long)rec.last_done, (long long)rec.last_total);
    char path[4400];
    snprintf(path, sizeof path, "%s/result.json", dir);
    json_t *res = load_json(path);
    json_error_t je;
    json_t *row = json_loads(r.row_json, 0, &je);
    CHECK(res && row && json_equal(res, row), "result.json differs from the returned row");
    CHECK(res && !strcmp(json_string_value(json_object_get(res, "status")), "done"), "status");
    CHECK(res && json_integer_value(json_object_get(res, "slices_scored")) +
                         json_integer_value(json_object_get(res, "slices_skipped_air")) == 12,
          "slices do not add up");
    CHECK(res && json_integer_value(json_object_get(res, "regions")) == r.regions, "regions");
    CHECK(fabs(json_number_value(json_object_get(res, "series_score")) - r.series_score) < 1e-12, "score");
    json_decref(res), json_decref(row);
    CHECK(count_files(dir, ".dcm") == 4, "DICOM objects: %d", count_files(dir, ".dcm"));
    CHECK(count_files(root, ".tmp*") == 0, "temporary files left");
    const double first_score = r.series_score;
    aac_score_result_free(&r);

    /* complete results are skipped, force redoes them with the same numbers */
    CHECK_OK(aac_score_series(sc, scan, 0, dir, &r, &e), &e);
    CHECK(r.state == AAC_SCORE_SKIPPED && r.series_score == first_score, "skip: %d %g", r.state, r.series_score);
    CHECK(rec.events[AAC_EVENT_SKIP] == 1, "skip event");
    aac_score_result_free(&r);
    aac_scorer_free(sc);

    /* abort after the first slice batch: interrupted, the old results stay, nothing half-written */
    p.force = 1;
    rec.abort_after = 2, rec.abort_calls = 0;
    CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);
    CHECK_OK(aac_score_series(sc, scan, 0, dir, &r, &e), &e);
    CHECK(r.state == AAC_SCORE_INTERRUPTED, "abort: state %d", r.state);
    CHECK(count_files(root, ".tmp*") == 0 && count_files(dir, "result.json") == 1, "abort left a mess");
    aac_score_result_free(&r);
    aac_scorer_free(sc);

    /* formats: PNG and NIfTI only, one threshold given, no calibration */
    rec.abort_after = 0;
    p.formats = AAC_FORMAT_PNG | AAC_FORMAT_NIFTI;
    p.use_calibration = 0;
    p.n_thresholds = 1, p.thresholds[0] = 0.7;
    CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);
    CHECK(!aac_scorer_calibrated(sc), "calibration not turned off");
    CHECK_OK(aac_score_series(sc, scan, 0, dir, &r, &e), &e);
    CHECK(r.state == AAC_SCORE_DONE && r.threshold == 0.7, "formats run: %d %g", r.state, r.threshold);
    CHECK(count_files(dir, ".dcm") == 0 && count_files(dir, "montage.png") == 1 && count_files(dir, ".nrrd") == 3 &&
              count_files(dir, ".mrml") == 0,
          "formats: dcm %d png %d", count_files(dir, ".dcm"), count_files(dir, "montage.png"));
    aac_score_result_free(&r);

    /* a failure is a state, with the reason; the scan goes on being usable */
    CHECK_OK(aac_score_picture(sc, AACLIP_SOURCE_DIR "/testdata/README.md", dir, &r, &e), &e);
    CHECK(r.state == AAC_SCORE_FAILED && strstr(r.error, "README.md"), "picture of text: %d %s", r.state, r.error);
    aac_score_result_free(&r);

    /* a picture: an RGB PNG, scored in colour into its own folder */
    aac_image im;
    CHECK_OK(aac_image_alloc(&im, 64, 48, 3, "picture", &e), &e);
    for (int i = 0; i < 64 * 48 * 3; i++) im.px[i] = (uint8_t)(i * 7 % 251);
    char png[4400], pdir[4400];
    snprintf(png, sizeof png, "%s/pic.png", study);
    CHECK_OK(aac_image_write_png(png, &im, &e), &e);
    aac_image_release(&im);
    aac_score_picture_dir(root, png, pdir, sizeof pdir);
    CHECK_OK(aac_score_picture(sc, png, pdir, &r, &e), &e);
    CHECK(r.state == AAC_SCORE_DONE, "picture: %s", r.error);
    CHECK(count_files(pdir, "montage.png") == 1, "picture montage");
    aac_score_result_free(&r);

    /* the summary of hand-made rows */
    aac_summary *sum = NULL;
    CHECK_OK(aac_summary_new(sc, &sum, &e), &e);
    CHECK_OK(aac_score_series(sc, scan, 0, dir, &r, &e), &e); /* forced: scored again */
    CHECK_OK(aac_summary_add_row(sum, r.row_json, &e), &e);
    CHECK(aac_summary_add_row(sum, "not json", &e) == AAC_ERR_ARG, "bad row accepted");
    CHECK_OK(aac_summary_add_note(sum, "warning", "x.dcm: truncated", &e), &e);
    aac_score_counts c = {.done = 1};
    aac_summary_set_counts(sum, &c);
    const char *sroot = dt_scratch("score_summary");
    CHECK_OK(aac_summary_write(sum, sroot, &e), &e);
    snprintf(path, sizeof path, "%s/summary.json", sroot);
    json_t *s = load_json(path);
    CHECK(s && json_array_size(json_object_get(s, "series")) == 1 &&
              json_array_size(json_object_get(s, "skipped_files")) == 1 &&
              json_integer_value(json_object_get(json_object_get(s, "counts"), "done")) == 1,
          "summary.json content");
    json_decref(s);
    snprintf(path, sizeof path, "%s/summary.csv", sroot);
    size_t len;
    char *csv = tu_read_file(path, &len);
    CHECK(csv && !strncmp(csv, "status,patient_id,", 18) && strstr(csv, "\n\"done\",\"AACLIP-SAMPLE\",") && strstr(csv, ",0.7,"), "csv: %s",
          csv ? csv : "(none)");
    free(csv);
    aac_summary_free(sum);
    aac_score_result_free(&r);
    aac_scorer_free(sc);

    /* the batch: the study folder (series + lesion mask volume + picture: pictures next to
     * series are skipped under AUTO) into a fresh root */
    p = aac_score_default_params();
    p.user = &rec, p.log = on_log;
    memset(&rec, 0, sizeof rec);
    CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);
    const char *broot = dt_scratch("score_batch");
    const char *bpaths[1] = {study};
    aac_score_counts bc;
    CHECK_OK(aac_score_paths(sc, bpaths, 1, broot, &bc, &e), &e);
    CHECK(bc.done == 2 && bc.failed == 0 && bc.skipped == 0 && !bc.interrupted, "batch counts %d %d %d", bc.done,
          bc.failed, bc.skipped);
    snprintf(path, sizeof path, "%s/summary.json", broot);
    s = load_json(path);
    json_t *notes = s ? json_object_get(s, "skipped_files") : NULL;
    int pic_note = 0;
    for (size_t i = 0; i < json_array_size(notes); i++)
        pic_note += strstr(json_string_value(json_object_get(json_array_get(notes, i), "note")), "pic.png") != NULL;
    CHECK(pic_note == 1, "picture next to series not noted as skipped");
    CHECK(s && json_array_size(json_object_get(s, "series")) == 2, "batch rows");
    json_decref(s);
    CHECK_OK(aac_score_paths(sc, bpaths, 1, broot, &bc, &e), &e);
    CHECK(bc.done == 0 && bc.skipped == 2, "rerun: %d done %d skipped", bc.done, bc.skipped);
    aac_scorer_free(sc);

    aac_scan_free(scan);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    if (tu_failures) {
        printf("test_score: %d check(s) failed\n", tu_failures);
        return 1;
    }
    printf("test_score: all checks passed\n");
    return 0;
}
