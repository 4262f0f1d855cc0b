/* png_montage.c - a quick look at a scored volume: the slices with the highest maximum score,
 * side by side (highest first, row by row), the input in grey under the probability in heat
 * colours (from p = 0.1, more opaque as p grows) and the first threshold's mask outlined in
 * cyan. RGB PNG through libpng. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "outputs.h"

enum { GAP = 4 };

typedef struct ranked { float score; int z; } ranked;

static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return (a->z > b->z) - (a->z < b->z);
}

/* One tile: grey slice, heat overlay, mask outline. rgb points at the tile's corner. */
static void draw_tile(const uint8_t *grey, const float *map, const uint8_t *labels, int w, int h, double lo,
                      double hi, double thr, uint8_t *rgb, size_t stride) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const size_t i = (size_t)y * w + x;
            double c[3] = {grey[i], grey[i], grey[i]};
            const double p = out_prob(map[i], lo, hi);
            if (p >= 0.1) {
                const double heat[3] = {255 * fmin(1, 3 * p), 255 * fmin(1, fmax(0, 3 * p - 1)),
                                        255 * fmin(1, fmax(0, 3 * p - 2))};
                const double a = 0.3 + 0.5 * p;
                for (int k = 0; k < 3; k++) c[k] = (1 - a) * c[k] + a * heat[k];
            }
            if (out_prob(map[i], lo, hi) >= thr) {
                const int edge = x == 0 || y == 0 || x == w - 1 || y == h - 1 || !labels[i - 1] || !labels[i + 1] ||
                                 !labels[i - w] || !labels[i + w];
                if (edge) c[0] = 0, c[1] = 255, c[2] = 255;
            }
            uint8_t *o = rgb + (size_t)y * stride + 3 * (size_t)x;
            for (int k = 0; k < 3; k++) o[k] = (uint8_t)lround(c[k]);
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
    const size_t W = (size_t)cols * w + (size_t)(cols - 1) * GAP, H = (size_t)rows_n * h + (size_t)(rows_n - 1) * GAP;
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
        const size_t x0 = (size_t)(k % cols) * (w + GAP), y0 = (size_t)(k / cols) * (h + GAP);
        draw_tile(grey, r->map + z * plane, labels + z * plane, w, h, lo, hi, thr[0], rgb + (y0 * W + x0) * 3, W * 3);
    }
    st = save_png(path, rgb, (int)W, (int)H, err);
done:
    free(rank);
    free(smax);
    free(rgb);
    free(grey);
    free(labels);
    return st;
}
