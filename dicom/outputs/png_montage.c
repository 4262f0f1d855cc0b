/* png_montage.c - a quick look at a scored volume: the slices with the highest maximum score,
 * side by side (highest first, row by row), the input in grey under the probability in heat
 * colours (from p = 0.1, more opaque as p grows) and the first threshold's mask outlined in
 * cyan. Each tile is labelled above (slice index z, as in summary.json's top_slice; its score;
 * the threshold outlined) and a colour bar on the right gives the probability scale with the
 * threshold marked. Slices narrower than MIN_TILE pixels are enlarged (nearest neighbour) so the
 * labels fit. Text comes from a built-in 5 x 7 font (font5x7.c). RGB PNG through libpng. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "outputs.h"

enum { GAP = 4, MIN_TILE = 192 };

static const uint8_t k_white[3] = {255, 255, 255}, k_cyan[3] = {0, 255, 255}, k_grey[3] = {160, 160, 160};

/* The overlay's colour for probability p over a background grey value g. */
static void heat_over(double p, double g, double c[3]) {
    c[0] = c[1] = c[2] = g;
    if (p < 0.1) return;
    const double heat[3] = {255 * fmin(1, 3 * p), 255 * fmin(1, fmax(0, 3 * p - 1)), 255 * fmin(1, fmax(0, 3 * p - 2))};
    const double a = 0.3 + 0.5 * p;
    for (int k = 0; k < 3; k++) c[k] = (1 - a) * c[k] + a * heat[k];
}

typedef struct ranked { float score; int z; } ranked;

static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return (a->z > b->z) - (a->z < b->z);
}

/* One tile: grey slice, heat overlay, mask outline, enlarged s times. rgb points at the tile's
 * corner. */
static void draw_tile(const uint8_t *grey, const float *map, const uint8_t *labels, int w, int h, int s, double lo,
                      double hi, double thr, uint8_t *rgb, size_t stride) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            const double p = out_prob(map[i], lo, hi);
            double c[3];
            heat_over(p, grey[i], c);
            if (p >= thr) {
                const int edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !labels[i - 1] || !labels[i + 1] ||
                                 !labels[i - w] || !labels[i + w];
                if (edge) c[0] = 0, c[1] = 255, c[2] = 255;
            }
            for (int dy = 0; dy < s; dy++)
                for (int dx = 0; dx < s; dx++) {
                    uint8_t *o = rgb + (size_t)(y * s + dy) * stride + 3 * (size_t)(x * s + dx);
                    for (int k = 0; k < 3; k++) o[k] = (uint8_t)lround(c[k]);
                }
        }
}

/* The probability scale: p from 1 (top) to 0 (bottom) over mid grey as the tiles show it, ticks
 * at 1, 0.5, 0.1 (where the overlay starts) and 0, and the outlined threshold in cyan. */
static void draw_colour_bar(uint8_t *rgb, size_t stride, int W, int H, int x0, int y0, int bw, int bh, double thr,
                            int ts) {
    for (int y = 0; y < bh; y++) {
        const double p = bh > 1 ? 1.0 - (double)y / (bh - 1) : 1.0;
        double c[3];
        heat_over(p, 96, c);
        for (int x = 0; x < bw; x++) {
            uint8_t *o = rgb + (size_t)(y0 + y) * stride + 3 * (size_t)(x0 + x);
            for (int k = 0; k < 3; k++) o[k] = (uint8_t)lround(c[k]);
        }
    }
    static const double ticks[] = {1.0, 0.5, 0.1, 0.0};
    static const char *const names[] = {"1", "0.5", "0.1", "0"};
    const int tx = x0 + bw + 2 * ts;
    for (int i = 0; i < 4; i++) {
        const int y = y0 + (int)lround((1.0 - ticks[i]) * (bh - 1));
        for (int x = bw; x < bw + ts + 1; x++) {
            uint8_t *o = rgb + (size_t)y * stride + 3 * (size_t)(x0 + x);
            o[0] = o[1] = o[2] = 255;
        }
        int ty = y - FONT_H * ts / 2;
        ty = ty < y0 ? y0 : ty > y0 + bh - FONT_H * ts ? y0 + bh - FONT_H * ts : ty;
        font_draw(rgb, stride, W, H, tx, ty, names[i], ts, k_grey);
    }
    if (thr > 0 && thr <= 1) {
        const int y = y0 + (int)lround((1.0 - thr) * (bh - 1));
        for (int x = -ts; x < bw + ts; x++)
            for (int d = 0; d < ts; d++) {
                const int yy = y + d;
                if (yy >= y0 + bh || x0 + x < 0) continue;
                uint8_t *o = rgb + (size_t)yy * stride + 3 * (size_t)(x0 + x);
                o[0] = 0, o[1] = 255, o[2] = 255;
            }
        char t[32];
        snprintf(t, sizeof t, "p>=%.2f", thr);
        int ty = y - FONT_H * ts - ts;
        if (ty < y0) ty = y + 2 * ts;
        font_draw(rgb, stride, W, H, tx, ty, t, ts, k_cyan);
    }
}

static aac_status save_png(const char *path, const uint8_t *rgb, int W, int H, aac_error *err) {
    char tmp[4096];
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st != AAC_OK) return st;
    FILE *f = fopen(tmp, "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *rows = malloc((size_t)H * sizeof *rows);
    /* volatile: read after a longjmp back from libpng. */
    volatile int ok = f && png && info && rows;
    if (ok && setjmp(png_jmpbuf(png))) ok = 0;
    if (ok) {
        for (int y = 0; y < H; y++) rows[y] = (png_bytep)(rgb + (size_t)y * W * 3);
        png_init_io(png, f);
        png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        png_write_image(png, rows);
        png_write_end(png, NULL);
    }
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    free(rows);
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write the PNG", path);
    }
    return fs_commit(tmp, path, err);
}

aac_status aac_write_png_montage(const aac_results *r, const aac_output_params *p, const char *path, aac_error *err) {
    aac_status st = out_check(r, 0, "PNG montage", err);
    if (st != AAC_OK) return st;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "aac_write_png_montage: no path");
    const aac_volume *v = r->source;
    const int w = v->dim[0], h = v->dim[1], Z = v->dim[2];
    int n = p && p->montage_slices > 0 ? p->montage_slices : 6;
    if (n > Z) n = Z;
    int cols = p && p->montage_columns > 0 ? p->montage_columns : 3;
    if (cols > n) cols = n;
    const int rows_n = (n + cols - 1) / cols;
    /* layout: tiles enlarged to MIN_TILE wide, a caption line above each, the bar on the right */
    int s = w < MIN_TILE ? (MIN_TILE + w - 1) / w : 1;
    if (s > 8) s = 8;
    const int tw = w * s, th = h * s, ts = tw >= 512 ? 2 : 1;
    const int cap_h = (FONT_H + 4) * ts, bar_w = 12 * ts;
    const int label_w = font_text_width("p>=0.00", ts) + 3 * ts;
    const size_t tiles_w = (size_t)cols * tw + (size_t)(cols - 1) * GAP;
    const size_t W = tiles_w + 2 * GAP + (size_t)bar_w + (size_t)label_w;
    const size_t H = (size_t)rows_n * (cap_h + th) + (size_t)(rows_n - 1) * GAP;
    if (W > 65535 || H > 65535) return aac_fail(err, AAC_ERR_ARG, "%s: montage of %zu x %zu pixels is too large", path, W, H);

    aac_norm_params np = aac_norm_default_params();
    np.axis = 2;
    aac_norm norm;
    if ((st = aac_volume_norm(v, r->t, &np, &norm, err)) != AAC_OK) return st;
    double lo, hi, thr[AAC_MAX_THRESHOLDS];
    aac_results_range(r, &lo, &hi);
    aac_results_thresholds(r, thr);
    const size_t plane = (size_t)w * h;
    ranked *rank = malloc((size_t)Z * sizeof *rank);
    float *smax = malloc((size_t)Z * sizeof *smax);
    uint8_t *rgb = calloc(W * H * 3, 1), *grey = malloc(plane), *labels = malloc(plane * Z);
    if (!rank || !smax || !rgb || !grey || !labels) {
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((st = aac_results_labels(r, labels, err)) != AAC_OK) goto done;
    out_slice_max(r, smax);
    for (int z = 0; z < Z; z++) rank[z] = (ranked){smax[z], z};
    qsort(rank, (size_t)Z, sizeof *rank, by_score);
    for (int k = 0; k < n; k++) {
        const int z = rank[k].z;
        if ((st = aac_volume_slice_u8(v, &norm, r->t, z, grey, err)) != AAC_OK) goto done;
        const size_t x0 = (size_t)(k % cols) * (tw + GAP), y0 = (size_t)(k / cols) * (cap_h + th + GAP);
        draw_tile(grey, r->map + z * plane, labels + z * plane, w, h, s, lo, hi, thr[0],
                  rgb + ((y0 + cap_h) * W + x0) * 3, W * 3);
        /* caption: the slice index, its score (the image score when given, else the map's maximum) */
        char cap[96];
        const int scored = r->slice_scores && isfinite(r->slice_scores[z]);
        snprintf(cap, sizeof cap, "z %d  %s %.4g  p>=%.2f", z, scored ? "score" : "max",
                 scored ? r->slice_scores[z] : smax[z], thr[0]);
        if (font_text_width(cap, ts) > tw) snprintf(cap, sizeof cap, "z %d %.3g", z, scored ? r->slice_scores[z] : smax[z]);
        font_draw(rgb, W * 3, (int)(x0 + tw), (int)H, (int)x0 + ts, (int)y0 + 2 * ts, cap, ts, k_white);
    }
    draw_colour_bar(rgb, W * 3, (int)W, (int)H, (int)(tiles_w + 2 * GAP), cap_h, bar_w, (int)H - cap_h, thr[0], ts);
    st = save_png(path, rgb, (int)W, (int)H, err);
done:
    free(rank);
    free(smax);
    free(rgb);
    free(grey);
    free(labels);
    return st;
}
