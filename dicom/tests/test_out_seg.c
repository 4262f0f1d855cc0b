/* test_out_seg.c - DICOM Segmentation for three sources: the real CT of dcmqi/ct-3slice, the
 * GE fMRI series of dcm_qa_nih (4-D: the second volume is scored) and a CT series written here
 * with gantry tilt and uneven slice spacing. For each: dciodvfy reports no errors, the SEG read
 * back through DCMTK (aac_seg_read) has the expected frames, pixels, planes and references, and
 * pydicom finds every frame on the plane of the source instance it references. Also: a failed
 * write leaves nothing behind, a rerun replaces the files, volume files are refused clearly. */
#include "out_test.h"

#include <dirent.h>

/* Counts directory entries other than . and .. */
static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

static void check_seg(const char *path, const aac_results *r, int fractional, const char *src_dir) {
    const aac_volume *v = r->source;
    const int X = v->dim[0], Y = v->dim[1], Z = v->dim[2];
    int errors = 0;
    if (ot_dciodvfy(path, &errors) >= 0) CHECK(errors == 0, "%s: dciodvfy reports %d errors", path, errors);
    aac_seg *s = NULL;
    aac_error e = {0};
    CHECK_OK(aac_seg_read(path, &s, &e), &e);
    double thr[AAC_MAX_THRESHOLDS], lo, hi;
    const int nt = aac_results_thresholds(r, thr);
    aac_results_range(r, &lo, &hi);
    const int nseg = fractional ? 1 : nt;
    CHECK(s->fractional == fractional && s->n_segments == nseg && s->n_frames == nseg * Z && s->rows == Y &&
              s->cols == X,
          "%s: type %d, %d segments, %d frames of %d x %d", path, s->fractional, s->n_segments, s->n_frames, s->cols,
          s->rows);
    CHECK(!fractional || s->max_fractional == 255, "%s: MaximumFractionalValue %d", path, s->max_fractional);
    CHECK(!strcmp(s->frame_of_reference_uid, v->frame_of_reference_uid) && !strcmp(s->study_uid, v->study_uid),
          "%s: frame of reference %s / study %s differ from the source", path, s->frame_of_reference_uid, s->study_uid);
    CHECK(strcmp(s->series_uid, v->series_uid) && s->series_number != v->series_number,
          "%s: series uid/number collide with the source", path);
    CHECK(fabs(s->pixel_spacing[0] - v->spacing[1]) < 1e-9 && fabs(s->pixel_spacing[1] - v->spacing[0]) < 1e-9,
          "%s: pixel spacing %g\\%g", path, s->pixel_spacing[0], s->pixel_spacing[1]);
    size_t bad_px = 0, bad_plane = 0, bad_ref = 0;
    const size_t plane = (size_t)X * Y;
    for (int f = 0; f < s->n_frames && s->n_frames == nseg * Z; f++) {
        const aac_seg_frame *fr = &s->frames[f];
        const int k = f / Z, z = f % Z; /* written segment by segment, slices in order */
        const size_t slot = (size_t)r->t * Z + z;
        if (fr->segment != k + 1) bad_ref++;
        for (int a = 0; a < 3; a++)
            if (fr->position[a] != v->slice_positions[slot][a]) bad_plane++;
        for (int a = 0; a < 6; a++)
            if (fr->orientation[a] != v->slice_orientations[slot][a]) bad_plane++;
        if (strcmp(fr->source_uid, v->slice_uids[slot]) || strcmp(fr->source_sop_class, v->slice_sop_classes[slot]) ||
            fr->source_frame != v->slice_frames[slot])
            bad_ref++;
        for (size_t i = 0; i < plane; i++) {
            double p = (r->map[z * plane + i] - lo) / (hi - lo);
            p = p < 0 ? 0 : p > 1 ? 1 : p;
            const int want = fractional ? (int)lrint(255 * p) : p >= thr[k];
            if (s->pixels[f * plane + i] != want) bad_px++;
        }
    }
    CHECK(bad_px == 0 && bad_plane == 0 && bad_ref == 0,
          "%s: %zu pixels, %zu plane values, %zu references differ from what was written", path, bad_px, bad_plane,
          bad_ref);
    aac_seg_free(s);
    CHECK(dt_run(DT_PY " '%s' seg-sources '%s' '%s'", OT_CHECK_PY, path, src_dir) == 0,
          "%s: pydicom finds frames off their source planes", path);
    CHECK(dt_run(DT_PY " '%s' read '%s'", OT_CHECK_PY, path) == 0, "%s: pydicom cannot read it", path);
}

static void run_case(const ot_case *c) {
    aac_results r;
    ot_results(c, &r);
    CHECK(r.source->slice_paths && r.source->slice_positions, "%s: no per-slice sources", c->name);
    aac_output_params p = aac_output_default_params();
    p.model_hash = "sha256:0123456789abcdef";
    char name[64];
    snprintf(name, sizeof name, "seg_%.50s", c->name);
    const char *out = dt_scratch(name);
    char prob[4096], bin[4096];
    snprintf(prob, sizeof prob, "%s/seg_probability.dcm", out);
    snprintf(bin, sizeof bin, "%s/seg_binary.dcm", out);
    aac_error e = {0};
    CHECK_OK(aac_write_seg(&r, &p, prob, bin, &e), &e);
    CHECK(entries(out) == 2, "%s: %d files in the output folder (temporaries left?)", name, entries(out));
    check_seg(prob, &r, 1, c->src);
    check_seg(bin, &r, 0, c->src);
    /* Rerun: replaced in place, new instance UIDs, still two files. */
    aac_seg *a = NULL, *b = NULL;
    CHECK_OK(aac_seg_read(bin, &a, &e), &e);
    CHECK_OK(aac_write_seg(&r, &p, prob, bin, &e), &e);
    CHECK_OK(aac_seg_read(bin, &b, &e), &e);
    CHECK(strcmp(a->sop_uid, b->sop_uid) && entries(out) == 2, "%s: rerun did not replace the SEG", name);
    aac_seg_free(a);
    aac_seg_free(b);
    ot_results_free(&r);
}

static void check_failures(void) {
    aac_volume *v = ot_load(ot_sample_ct("seg_fail_src", 14, 3));
    float *map = ot_blob_map(v, 0, &(ot_blob){0.5, 0.5, 0.5, 20, 1}, 1, 0);
    aac_results r = {.source = v, .map = map, .series_score = NAN};
    aac_output_params p = aac_output_default_params();
    aac_error e = {0};
    /* A folder that does not exist: an error naming the file, nothing written. */
    const char *out = dt_scratch("seg_fail");
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/missing/seg.dcm", out);
    CHECK(aac_write_seg(&r, &p, bad, NULL, &e) == AAC_ERR_IO && strstr(e.message, "seg.dcm"),
          "missing folder: %s", e.message);
    CHECK(entries(out) == 0, "a failed write left %d files", entries(out));
    /* A threshold that is not a probability. */
    r.n_thresholds = 1;
    r.thresholds[0] = 1.5;
    snprintf(bad, sizeof bad, "%s/seg.dcm", out);
    CHECK(aac_write_seg(&r, &p, NULL, bad, &e) == AAC_ERR_ARG && strstr(e.message, "1.5"), "threshold: %s",
          e.message);
    CHECK(entries(out) == 0, "a refused write left %d files", entries(out));
    free(map);
    aac_volume_free(v);
    /* Volume files cannot carry DICOM objects. */
    aac_volume *nv = NULL;
    char nii[4096];
    snprintf(nii, sizeof nii, "%s/ct.nii.gz", out);
    v = ot_load(ot_sample_ct("seg_fail_src2", 14, 3));
    CHECK_OK(aac_volume_write_nifti(v, nii, &e), &e);
    CHECK_OK(aac_volume_read(nii, &nv, &e), &e);
    map = ot_blob_map(nv, 0, &(ot_blob){0.5, 0.5, 0.5, 20, 1}, 1, 0);
    aac_results rn = {.source = nv, .map = map, .series_score = NAN};
    CHECK(aac_write_seg(&rn, &p, bad, NULL, &e) == AAC_ERR_UNSUPPORTED && strstr(e.message, "need a DICOM input"),
          "volume file: %s", e.message);
    free(map);
    aac_volume_free(nv);
    aac_volume_free(v);
}

int main(void) {
    dt_need_python("pydicom, numpy");
    ot_case cases[OT_MAX_CASES];
    const int n = ot_cases(cases);
    for (int i = 0; i < n; i++) run_case(&cases[i]);
    check_failures();
    return tu_finish("test_out_seg");
}
