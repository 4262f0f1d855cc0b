/* slice_map.c - the clinical rules between a volume's slices and the model's square maps: which
 * slices are not worth scoring (outside the body), how a map goes back to the slice's size and
 * onto the volume grid. */
#include <stddef.h>

#include "score_internal.h"

void map_to_slice(const float *src, int S, float *dst, int w, int h) {
    const double sx = (double)S / w, sy = (double)S / h;
    for (int r = 0; r < h; r++) {
        double fy = (r + 0.5) * sy - 0.5;
        if (fy < 0) fy = 0;
        int y0 = (int)fy;
        if (y0 > S - 1) y0 = S - 1;
        const int y1 = y0 + 1 < S ? y0 + 1 : S - 1;
        const float wy = (float)(fy - y0);
        for (int c = 0; c < w; c++) {
            double fx = (c + 0.5) * sx - 0.5;
            if (fx < 0) fx = 0;
            int x0 = (int)fx;
            if (x0 > S - 1) x0 = S - 1;
            const int x1 = x0 + 1 < S ? x0 + 1 : S - 1;
            const float wx = (float)(fx - x0);
            const float top = src[y0 * S + x0] * (1 - wx) + src[y0 * S + x1] * wx;
            const float bot = src[y1 * S + x0] * (1 - wx) + src[y1 * S + x1] * wx;
            dst[(size_t)r * w + c] = top * (1 - wy) + bot * wy;
        }
    }
}

void place_slice(const aac_volume *v, int axis, int index, const float *slice, float *map) {
    const size_t nx = (size_t)v->dim[0], ny = (size_t)v->dim[1], nz = (size_t)v->dim[2];
    int w, h;
    aac_volume_slice_size(v, axis, &w, &h);
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            size_t x, y, z;
            if (axis == 2) x = (size_t)c, y = (size_t)r, z = (size_t)index;
            else if (axis == 1) x = (size_t)c, y = (size_t)index, z = nz - 1 - (size_t)r;
            else x = (size_t)index, y = (size_t)c, z = nz - 1 - (size_t)r;
            map[(z * ny + y) * nx + x] = slice[(size_t)r * w + c];
        }
}

/* Cheap to test on the 8-bit slice the model would see, and safe: any tissue in the window
 * counts. */
int air_only(const uint8_t *px, size_t n) {
    size_t lit = 0;
    for (size_t i = 0; i < n; i++) lit += px[i] > 16;
    return lit * 200 < n; /* under 0.5 % of the pixels */
}
