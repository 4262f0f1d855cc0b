/* test_out_report.c - the pictures people look at: the PNG montage's labels and colour bar, and
 * report.html (summary.json as a self-contained page) as aac_score_paths writes it.
 * A small synthetic study (two lesions) and a hand-written tilted CT, scored with the demo model:
 *  - montage.png has the documented size (docs/outputs.md), a caption of white text above each
 *    tile and nowhere between them, and a colour bar whose pixels are the overlay's colours for
 *    p = 1, 0.5 and 0 over mid grey, with the threshold drawn in cyan at its height;
 *  - report.html, read with Python's HTML parser (report_check.py), has one row per series with
 *    the summary's status, score and regions, the demo-model warning, and embeds each series'
 *    montage byte for byte. */
#include "out_test.h"

#include <jansson.h>
#include <png.h>

#include "aaclip_score.h"
#include "aaclip_synth.h"

typedef struct rgb_image {
    int w, h;
    uint8_t *px;
} rgb_image;

static int read_png(const char *path, rgb_image *im) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    int rc = -1;
    if (!setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
        im->w = (int)png_get_image_width(png, info), im->h = (int)png_get_image_height(png, info);
        if (png_get_color_type(png, info) == PNG_COLOR_TYPE_RGB) {
            png_bytepp rows = png_get_rows(png, info);
            im->px = malloc((size_t)im->w * im->h * 3);
            for (int y = 0; y < im->h; y++) memcpy(im->px + (size_t)y * im->w * 3, rows[y], (size_t)im->w * 3);
            rc = 0;
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    return rc;
}

static const uint8_t *px(const rgb_image *im, int x, int y) { return im->px + ((size_t)y * im->w + x) * 3; }

static int near(const uint8_t *p, int r, int g, int b) {
    return abs(p[0] - r) <= 2 && abs(p[1] - g) <= 2 && abs(p[2] - b) <= 2;
}

/* The montage of a w x h series with n slices shown in cols columns and threshold thr. */
static void check_montage(const char *path, int w, int h, int n, int cols, double thr) {
    rgb_image im = {0};
    CHECK(read_png(path, &im) == 0, "%s: not an RGB PNG", path);
    if (!im.px) return;
    const int rows = (n + cols - 1) / cols;
    int s = w < 192 ? (192 + w - 1) / w : 1;
    s = s > 8 ? 8 : s;
    const int tw = w * s, th = h * s, t = tw >= 512 ? 2 : 1, cap = 11 * t;
    const int W = cols * tw + 4 * (cols - 1) + 8 + 56 * t, H = rows * (cap + th) + 4 * (rows - 1);
    CHECK(im.w == W && im.h == H, "%s: %d x %d, %d x %d expected", path, im.w, im.h, W, H);
    if (im.w != W || im.h != H) return free(im.px);
    /* captions: white text above every tile, none in the gaps between tiles */
    for (int k = 0; k < n; k++) {
        const int x0 = (k % cols) * (tw + 4), y0 = (k / cols) * (cap + th + 4);
        int white = 0;
        for (int y = y0; y < y0 + cap; y++)
            for (int x = x0; x < x0 + tw; x++) white += near(px(&im, x, y), 255, 255, 255);
        CHECK(white > 30, "%s: tile %d has no caption (%d white pixels)", path, k, white);
    }
    for (int c = 1; c < cols; c++)
        for (int y = 0; y < H; y++)
            for (int x = c * (tw + 4) - 4; x < c * (tw + 4); x++)
                CHECK(near(px(&im, x, y), 0, 0, 0), "%s: gap pixel %d,%d not black", path, x, y);
    /* the colour bar: p = 1 at its top, 0.5 in the middle, 0 at the bottom, over grey 96 */
    const int bx = cols * tw + 4 * (cols - 1) + 8 + 6 * t, bh = H - cap;
    const uint8_t *top = px(&im, bx, cap), *mid = px(&im, bx, cap + (bh - 1) / 2), *bot = px(&im, bx, H - 1);
    /* heat(1) = white, heat(0.5) = (255, 127.5, 0); blended with alpha 0.3 + 0.5 p over 96 */
    CHECK(near(top, 223, 223, 223) && near(mid, 183, 113, 43) && near(bot, 96, 96, 96),
          "%s: colour bar %d,%d,%d / %d,%d,%d / %d,%d,%d", path, top[0], top[1], top[2], mid[0], mid[1], mid[2], bot[0],
          bot[1], bot[2]);
    const int ty = cap + (int)lround((1 - thr) * (bh - 1));
    CHECK(near(px(&im, bx, ty), 0, 255, 255), "%s: no cyan threshold mark at y %d (p %.3f)", path, ty, thr);
    int cyan_text = 0; /* its label "p>=0.26" to the right of the bar */
    for (int y = cap; y < H; y++)
        for (int x = bx + 6 * t + 2 * t; x < W; x++) cyan_text += near(px(&im, x, y), 0, 255, 255);
    CHECK(cyan_text > 20, "%s: the threshold is not labelled", path);
    printf("  %s: %d x %d, %d captions, bar ok, threshold %.3f marked\n", strrchr(path, '/') + 1, W, H, n, thr);
    free(im.px);
}

int main(void) {
    dt_need_python("numpy");
    aac_error e = {0};
    const char *bundle = DT_DEMO_MODEL;
    aac_model *m;
    aac_tokenizer *tok;
    dt_open_demo(&m, &tok);

    /* inputs: a small phantom study (8 slices of 128 x 128, two lesions) and a tilted CT */
    char study[4200], tilt[4200], root[4200], dicom_dir[4300];
    snprintf(study, sizeof study, "%s", dt_scratch("report_study"));
    snprintf(tilt, sizeof tilt, "%s", dt_scratch("report_tilt"));
    snprintf(root, sizeof root, "%s", dt_scratch("report_out"));
    aac_ct_phantom_params pp = aac_ct_phantom_default_params();
    pp.size = 128, pp.slices = 8, pp.n_lesions = 2, pp.slice_mm = 6;
    CHECK_OK(aac_write_sample_study(&pp, study, &e), &e);
    static const double zs[] = {0, 2.5, 5, 8.75, 11.25};
    const ot_ct ct = {.n = 5, .rows = 48, .cols = 64, .tilt_deg = 20, .z = zs, .ps = 0.9};
    ot_write_ct(tilt, &ct);
    snprintf(dicom_dir, sizeof dicom_dir, "%s/dicom", study);

    aac_score_params p = aac_score_default_params();
    p.formats = AAC_FORMAT_PNG | AAC_FORMAT_NIFTI;
    p.demo_model = 1;
    p.anchor_cache = 0;
    aac_scorer *sc = NULL;
    CHECK_OK(aac_scorer_open(m, tok, bundle, &p, &sc, &e), &e);
    const char *paths[2] = {dicom_dir, tilt};
    aac_score_counts counts = {0};
    CHECK_OK(aac_score_paths(sc, paths, 2, root, &counts, &e), &e);
    CHECK(counts.done == 2 && counts.failed == 0, "%d done, %d failed", counts.done, counts.failed);

    char path[4400], json[4400];
    snprintf(json, sizeof json, "%s/summary.json", root);
    json_t *sum = json_load_file(json, 0, NULL);
    const json_t *rows = json_object_get(sum, "series"), *row;
    size_t i;
    printf("montages\n");
    json_array_foreach(rows, i, row) {
        const json_t *dims = json_object_get(row, "dims");
        const int w = (int)json_integer_value(json_array_get(dims, 0)), h = (int)json_integer_value(json_array_get(dims, 1));
        const int z = (int)json_integer_value(json_array_get(dims, 2)), n = z < 6 ? z : 6;
        snprintf(path, sizeof path, "%s/montage.png", json_string_value(json_object_get(row, "output_dir")));
        check_montage(path, w, h, n, n < 3 ? n : 3, json_number_value(json_object_get(row, "threshold")));
    }
    json_decref(sum);

    printf("report.html\n");
    snprintf(path, sizeof path, "%s/report.html", root);
    CHECK(dt_run(DT_PY " '%s/report_check.py' '%s' '%s'", AACLIP_DICOM_TESTS_DIR, path, json) == 0,
          "report.html does not tell what summary.json says");
    /* the check can fail: a report from another summary does not pass */
    snprintf(path, sizeof path, "%s/other.json", root);
    CHECK(dt_run(DT_PY " -c \"import json,sys; s=json.load(open('%s')); s['series'][0]['status']='failed'; "
                 "s.pop('demo_model'); json.dump(s, open('%s','w'))\"", json, path) == 0, "edit summary");
    char report[4400];
    snprintf(report, sizeof report, "%s/report.html", root);
    CHECK(dt_run(DT_PY " '%s/report_check.py' '%s' '%s' > /dev/null", AACLIP_DICOM_TESTS_DIR, report, path) == 1,
          "report_check.py accepts a report that does not match");

    aac_scorer_free(sc);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return tu_finish("test_out_report");
}
