/* test_out_sr.c - TID 1500 Measurement Report for the three DICOM sources of out_test.h:
 * dciodvfy reports no errors, dsrdump reads it, pydicom reads it, and its volumetric groups
 * are exactly the connected components (scipy, same connectivity) of each level of the label
 * map written beside it: count, referenced segment, volume, maximum and mean score, centroid.
 * Also the region finder itself on small hand-made masks (6 vs 26 connectivity, volumes). */
#include "out_test.h"

static void run_case(const ot_case *c, int connectivity) {
    aac_results r;
    ot_results(c, &r);
    aac_output_params p = aac_output_default_params();
    p.model_hash = "sha256:0123456789abcdef";
    p.connectivity = connectivity;
    char name[64], seg[4096], sr[4096], labels[4096], map[4096];
    snprintf(name, sizeof name, "sr_%s_%d", c->name, connectivity);
    const char *out = dt_scratch(name);
    snprintf(seg, sizeof seg, "%s/seg_binary.dcm", out);
    snprintf(sr, sizeof sr, "%s/sr.dcm", out);
    snprintf(labels, sizeof labels, "%s/label_map.nii.gz", out);
    snprintf(map, sizeof map, "%s/anomaly_map.nii.gz", out);
    aac_error e = {0};
    CHECK_OK(aac_write_seg(&r, &p, NULL, seg, &e), &e);
    CHECK_OK(aac_write_sr(&r, &p, seg, sr, &e), &e);
    CHECK_OK(aac_write_images(&r, out, &e), &e);
    int errors = 0;
    if (ot_dciodvfy(sr, &errors) >= 0) CHECK(errors == 0, "%s: dciodvfy reports %d errors", sr, errors);
    static char buf[1 << 20];
    int st = dt_capture(buf, sizeof buf, "dsrdump '%s'", sr);
    CHECK(st == 0 && strstr(buf, "Imaging Measurement Report") && strstr(buf, "Referenced Segment"),
          "%s: dsrdump exited %d:\n%.2000s", sr, st, buf);
    CHECK(dt_run(DT_PY " '%s' read '%s'", OT_CHECK_PY, sr) == 0, "%s: pydicom cannot read it", sr);
    CHECK(dt_run(DT_PY " '%s' sr-regions '%s' '%s' '%s' %d '%s'", OT_CHECK_PY, sr, labels, map, connectivity,
                 c->src) == 0,
          "%s: measurement groups differ from the label map's components on the source planes", sr);
    /* On a regular grid the NIfTI affine gives the same regions (not so with gantry tilt). */
    if (strcmp(c->name, "gen_tilt"))
        CHECK(dt_run(DT_PY " '%s' sr-regions '%s' '%s' '%s' %d", OT_CHECK_PY, sr, labels, map, connectivity) == 0,
              "%s: measurement groups differ from the label map's components in NIfTI geometry", sr);
    /* A SEG that is not the binary one of these results is refused. */
    char prob[4096];
    snprintf(prob, sizeof prob, "%s/seg_probability.dcm", out);
    CHECK_OK(aac_write_seg(&r, &p, prob, NULL, &e), &e);
    CHECK(aac_write_sr(&r, &p, prob, sr, &e) == AAC_ERR_ARG && strstr(e.message, "seg_probability.dcm"),
          "probability SEG accepted: %s", e.message);
    ot_results_free(&r);
}

/* A 6 x 5 x 3 volume with hand-placed voxels: diagonal neighbours join only with 26. */
static void check_regions(void) {
    aac_volume v = {.dim = {6, 5, 3, 1}, .spacing = {0.5, 2, 3}, .direction = {1, 0, 0, 0, 1, 0, 0, 0, 1},
                    .origin = {10, 20, 30}};
    float map[6 * 5 * 3] = {0};
    const int on[][3] = {{0, 0, 0}, {1, 1, 0}, {1, 1, 1}, {4, 3, 2}, {5, 3, 2}, {5, 4, 2}};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) map[(on[i][2] * 5 + on[i][1]) * 6 + on[i][0]] = 1.0f + i;
    aac_results r = {.source = &v, .map = map, .low = 0, .high = 1, .series_score = NAN};
    aac_region *g = NULL;
    int n = 0;
    aac_error e = {0};
    CHECK_OK(aac_regions(&r, 1, 26, &g, &n, &e), &e);
    CHECK(n == 2 && g[0].n_voxels == 3 && g[1].n_voxels == 3, "26-connectivity: %d regions", n);
    if (n == 2) {
        CHECK(fabs(g[0].volume_mm3 - 9.0) < 1e-12, "volume %g (3 voxels of 3 mm3)", g[0].volume_mm3);
        CHECK(g[0].max_score == 3.0 && fabs(g[0].mean_score - 2.0) < 1e-12, "scores %g %g", g[0].max_score,
              g[0].mean_score);
        const double cx = 10 + 0.5 * (0 + 1 + 1) / 3.0, cy = 20 + 2 * (0 + 1 + 1) / 3.0, cz = 30 + 3 * (0 + 0 + 1) / 3.0;
        CHECK(fabs(g[0].centroid[0] - cx) < 1e-12 && fabs(g[0].centroid[1] - cy) < 1e-12 &&
                  fabs(g[0].centroid[2] - cz) < 1e-12,
              "centroid %g %g %g", g[0].centroid[0], g[0].centroid[1], g[0].centroid[2]);
        CHECK(g[1].first[0] == 4 && g[1].last[0] == 5 && g[1].first[1] == 3 && g[1].last[1] == 4, "bounding box");
    }
    free(g);
    CHECK_OK(aac_regions(&r, 1, 6, &g, &n, &e), &e);
    CHECK(n == 3, "6-connectivity: %d regions (voxel (0,0,0) is only diagonal to (1,1,0))", n);
    free(g);
    CHECK(aac_regions(&r, 2, 6, &g, &n, &e) == AAC_ERR_ARG, "level 2 of one threshold accepted");
    CHECK(aac_regions(&r, 1, 8, &g, &n, &e) == AAC_ERR_ARG, "connectivity 8 accepted");
}

/* A flat map: no region at any threshold; the SEG masks are empty, the SR has no volumetric
 * group and is still valid. */
static void check_flat(const ot_case *c) {
    aac_results r;
    ot_results(c, &r);
    const size_t n = (size_t)r.source->dim[0] * r.source->dim[1] * r.source->dim[2];
    for (size_t i = 0; i < n; i++) ((float *)r.map)[i] = 0.25f;
    aac_output_params p = aac_output_default_params();
    const char *out = dt_scratch("sr_flat");
    char seg[4096], sr[4096], labels[4096], map[4096];
    snprintf(seg, sizeof seg, "%s/seg_binary.dcm", out);
    snprintf(sr, sizeof sr, "%s/sr.dcm", out);
    snprintf(labels, sizeof labels, "%s/label_map.nii.gz", out);
    snprintf(map, sizeof map, "%s/anomaly_map.nii.gz", out);
    aac_error e = {0};
    CHECK_OK(aac_write_seg(&r, &p, NULL, seg, &e), &e);
    CHECK_OK(aac_write_sr(&r, &p, seg, sr, &e), &e);
    CHECK_OK(aac_write_images(&r, out, &e), &e);
    int errors = 0;
    if (ot_dciodvfy(seg, &errors) >= 0) CHECK(errors == 0, "%s: dciodvfy reports %d errors", seg, errors);
    if (ot_dciodvfy(sr, &errors) >= 0) CHECK(errors == 0, "%s: dciodvfy reports %d errors", sr, errors);
    CHECK(dt_run(DT_PY " '%s' sr-regions '%s' '%s' '%s' 26 '%s'", OT_CHECK_PY, sr, labels, map, c->src) == 0,
          "%s: a flat map has regions", sr);
    ot_results_free(&r);
}

int main(void) {
    dt_need_python("pydicom, nibabel, scipy, numpy");
    if (dt_run("command -v dsrdump >/dev/null 2>&1") != 0) {
        printf("SKIP: dsrdump (Debian dcmtk) is not installed\n");
        return 77;
    }
    check_regions();
    ot_case cases[OT_MAX_CASES];
    const int n = ot_cases(cases);
    for (int i = 0; i < n; i++) run_case(&cases[i], 26);
    run_case(&cases[0], 6);
    check_flat(&cases[2]);
    return tu_finish("test_out_sr");
}
