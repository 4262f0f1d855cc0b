/* test_normalise.c - 8-bit slices: CT windows (presets, body part default, explicit C/W), robust
 * percentiles against a sorted reference, slicing along each axis, acquisition-plane choice,
 * and the hand-over to the core's preprocessing. */
#include <stdlib.h>

#include "aaclip_dicom.h"
#include "testutil.h"

static aac_volume *make_volume(int nx, int ny, int nz, const char *modality, const char *body_part) {
    aac_volume *v = calloc(1, sizeof *v);
    v->dim[0] = nx, v->dim[1] = ny, v->dim[2] = nz, v->dim[3] = 1;
    v->voxels = calloc((size_t)nx * ny * nz, sizeof(float));
    v->spacing[0] = v->spacing[1] = v->spacing[2] = 1;
    v->direction[0] = v->direction[4] = v->direction[8] = 1;
    snprintf(v->modality, sizeof v->modality, "%s", modality);
    snprintf(v->body_part, sizeof v->body_part, "%s", body_part);
    return v;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(void) {
    aac_error e = {0};
    double c, w;
    CHECK(aac_window_preset("lung", &c, &w, &e) == AAC_OK && c == -600 && w == 1500, "lung preset");
    CHECK(aac_window_preset("Brain", &c, &w, &e) == AAC_OK && c == 40 && w == 80, "brain preset");
    CHECK(aac_window_preset("liver", &c, &w, &e) == AAC_OK, "liver preset");
    CHECK(aac_window_preset("nope", &c, &w, &e) == AAC_ERR_ARG && strstr(e.message, "subdural"), "unknown: %s", e.message);

    /* CT head: brain window by default; 0 -> 0, 40 -> 128, 80 -> 255, clamps outside. */
    aac_volume *ct = make_volume(4, 3, 2, "CT", "HEAD");
    float vals[] = {-1000, 0, 20, 40, 60, 80, 3000, NAN};
    for (int i = 0; i < 8; i++) ct->voxels[i] = vals[i];
    ct->slice_uids = calloc(2, sizeof *ct->slice_uids); /* marks it as DICOM: acquisition axis z */
    aac_norm_params p = aac_norm_default_params();
    aac_norm n;
    CHECK_OK(aac_volume_norm(ct, 0, &p, &n, &e), &e);
    CHECK(n.low == 0 && n.high == 80 && n.axis == 2 && strstr(n.method, "brain"), "CT head: %s %g..%g axis %d",
          n.method, n.low, n.high, n.axis);
    uint8_t out[64];
    CHECK_OK(aac_volume_slice_u8(ct, &n, 0, 0, out, &e), &e);
    uint8_t want[] = {0, 0, 64, 128, 191, 255, 255, 0};
    for (int i = 0; i < 8; i++) CHECK(out[i] == want[i], "CT pixel %d: %d, want %d", i, out[i], want[i]);
    snprintf(ct->body_part, sizeof ct->body_part, "KNEE");
    CHECK_OK(aac_volume_norm(ct, 0, &p, &n, &e), &e);
    CHECK(strstr(n.method, "abdomen") && n.low == -160 && n.high == 240, "default abdomen: %s", n.method);
    p.width = 400;
    p.center = 50;
    CHECK_OK(aac_volume_norm(ct, 0, &p, &n, &e), &e);
    CHECK(n.low == -150 && n.high == 250 && strstr(n.method, "C50 W400"), "explicit window: %s", n.method);
    p = aac_norm_default_params();
    p.preset = "bone";
    CHECK_OK(aac_volume_norm(ct, 0, &p, &n, &e), &e);
    CHECK(n.low == -500 && n.high == 1300, "bone preset: %g %g", n.low, n.high);
    p.preset = "bogus";
    CHECK(aac_volume_norm(ct, 0, &p, &n, &e) == AAC_ERR_ARG, "bogus preset accepted");

    /* MR: percentiles 0.5 / 99.5 of the volume, checked against a full sort. */
    aac_volume *mr = make_volume(37, 23, 11, "MR", "");
    const size_t nv = 37 * 23 * 11;
    unsigned seed = 1;
    for (size_t i = 0; i < nv; i++) {
        seed = seed * 1664525u + 1013904223u;
        mr->voxels[i] = (float)((seed >> 8) % 5000) * 0.25f - (i % 7 == 0 ? 300.0f : 0.0f);
    }
    float *sorted = malloc(nv * sizeof *sorted);
    memcpy(sorted, mr->voxels, nv * sizeof *sorted);
    qsort(sorted, nv, sizeof *sorted, cmp_float);
    p = aac_norm_default_params();
    CHECK_OK(aac_volume_norm(mr, 0, &p, &n, &e), &e);
    double pos = 0.005 * (nv - 1), f = pos - floor(pos);
    double lo = sorted[(size_t)pos] * (1 - f) + sorted[(size_t)pos + 1] * f;
    pos = 0.995 * (nv - 1), f = pos - floor(pos);
    double hi = sorted[(size_t)pos] * (1 - f) + sorted[(size_t)pos + 1] * f;
    CHECK(fabs(n.low - lo) < 1e-4 && fabs(n.high - hi) < 1e-4 && strstr(n.method, "percentile 0.5/99.5"),
          "percentiles %g %g, sorted reference %g %g (%s)", n.low, n.high, lo, hi, n.method);
    p.p_low = 2, p.p_high = 98;
    CHECK_OK(aac_volume_norm(mr, 0, &p, &n, &e), &e);
    CHECK(n.low > lo && n.high < hi, "2/98 percentiles should be inside 0.5/99.5");
    p.p_low = 50, p.p_high = 10;
    CHECK(aac_volume_norm(mr, 0, &p, &n, &e) == AAC_ERR_ARG, "bad percentiles accepted");
    free(sorted);

    /* Axes: slices across x are dim1 wide and dim2 high, z upwards; the coarse axis of a
     * volume file is its acquisition plane. */
    aac_volume *g = make_volume(4, 3, 2, "MR", "");
    for (int z = 0; z < 2; z++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++) g->voxels[(z * 3 + y) * 4 + x] = (float)(100 * z + 10 * y + x);
    aac_norm lin = {.low = 0, .high = 255, .axis = 0};
    int sw, sh;
    aac_volume_slice_size(g, 0, &sw, &sh);
    CHECK(sw == 3 && sh == 2 && aac_volume_slice_count(g, 0) == 4, "axis 0 slice size %d x %d", sw, sh);
    CHECK_OK(aac_volume_slice_u8(g, &lin, 0, 2, out, &e), &e);
    CHECK(out[0] == 102 && out[2] == 122 && out[3] == 2 && out[5] == 22, "axis 0 slice: %d %d %d %d", out[0],
          out[2], out[3], out[5]);
    lin.axis = 1;
    CHECK_OK(aac_volume_slice_u8(g, &lin, 0, 1, out, &e), &e);
    CHECK(out[0] == 110 && out[3] == 113 && out[4] == 10, "axis 1 slice: %d %d %d", out[0], out[3], out[4]);
    CHECK(aac_volume_slice_u8(g, &lin, 0, 3, out, &e) == AAC_ERR_ARG, "slice out of range accepted");
    g->spacing[0] = 5;
    p = aac_norm_default_params();
    CHECK_OK(aac_volume_norm(g, 0, &p, &n, &e), &e);
    CHECK(n.axis == 0, "coarse x spacing should make axis 0 the acquisition plane (got %d)", n.axis);
    p.axis = 1;
    CHECK_OK(aac_volume_norm(g, 0, &p, &n, &e), &e);
    CHECK(n.axis == 1, "chosen axis ignored");

    /* The core takes the 8-bit slice from here. */
    CHECK_OK(aac_volume_norm(mr, 0, NULL, &n, &e), &e);
    uint8_t *sl = malloc(37 * 23);
    float *img = malloc(3 * 32 * 32 * sizeof *img);
    CHECK_OK(aac_volume_slice_u8(mr, &n, 0, 5, sl, &e), &e);
    CHECK_OK(aac_preprocess_grey(sl, 37, 23, 32, img, &e), &e);
    free(sl);
    free(img);
    aac_volume_free(ct);
    aac_volume_free(mr);
    aac_volume_free(g);
    return tu_finish("test_normalise");
}
