/* region_metrics.c - lesion-wise detection over all thresholds of the grid in one sweep per
 * image: pixels enter a union-find from the highest level down, so the regions of every
 * threshold are the union-find's roots after that level's pixels are in (a component tree built
 * bottom-up), and each level costs only its new pixels plus its current roots. */
#include "region_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void region_scratch_free(region_scratch *s) {
    free(s->buf), free(s->sums);
    memset(s, 0, sizeof *s);
}

static int32_t find(int32_t *parent, int32_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

/* Per-pixel working arrays, carved from the scratch. */
typedef struct sweep {
    int32_t *parent, *gt, *order, *roots, *root_pos, *lesion_size, *stamp;
    int64_t *n, *sx, *sy;
    int32_t nroots;
} sweep;

/* Merges the components of a and b (union by size), keeping the region sums on the root and
 * the list of roots current. */
static void unite(sweep *w, int32_t a, int32_t b) {
    int32_t ra = find(w->parent, a), rb = find(w->parent, b);
    if (ra == rb) return;
    if (w->n[ra] < w->n[rb]) {
        const int32_t t = ra;
        ra = rb, rb = t;
    }
    w->parent[rb] = ra;
    w->n[ra] += w->n[rb], w->sx[ra] += w->sx[rb], w->sy[ra] += w->sy[rb];
    const int32_t p = w->root_pos[rb], last = w->roots[--w->nroots];
    w->roots[p] = last, w->root_pos[last] = p;
}

/* Lesions: components of the mask (8-neighbours), ids 1..n in gt[], sizes in lesion_size[id]. */
static int32_t label_lesions(sweep *w, const uint8_t *mask, int width, int height) {
    const size_t npix = (size_t)width * (size_t)height;
    memset(w->gt, 0, npix * sizeof *w->gt);
    if (!mask) return 0;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            const int32_t i = y * width + x;
            if (!mask[i]) continue;
            w->parent[i] = i;
            /* the neighbours already visited: left, and the three above */
            const int nb[4][2] = {{-1, 0}, {-1, -1}, {0, -1}, {1, -1}};
            for (int k = 0; k < 4; k++) {
                const int xx = x + nb[k][0], yy = y + nb[k][1];
                if (xx < 0 || xx >= width || yy < 0 || !mask[yy * width + xx]) continue;
                const int32_t ra = find(w->parent, i), rb = find(w->parent, yy * width + xx);
                if (ra != rb) w->parent[ra > rb ? ra : rb] = ra > rb ? rb : ra;
            }
        }
    int32_t n = 0;
    for (size_t i = 0; i < npix; i++) {
        if (!mask[i]) continue;
        const int32_t r = find(w->parent, (int32_t)i); /* roots come first in scan order */
        if (r == (int32_t)i) w->gt[i] = ++n, w->lesion_size[n] = 0;
        else w->gt[i] = w->gt[r];
        w->lesion_size[w->gt[i]]++;
    }
    return n;
}

int region_counts_add(region_counts *c, region_scratch *s, const uint8_t *level, const uint8_t *mask, int width,
                      int height, int64_t min_lesion_pixels) {
    const size_t npix = (size_t)width * (size_t)height;
    if (npix > s->npix) {
        int32_t *buf = realloc(s->buf, (npix * 7 + 2) * sizeof *buf);
        if (!buf) return -1;
        s->buf = buf;
        int64_t *sums = realloc(s->sums, npix * 3 * sizeof *sums);
        if (!sums) return -1;
        s->sums = sums, s->npix = npix;
    }
    sweep w = {.parent = s->buf, .gt = s->buf + npix, .order = s->buf + 2 * npix, .roots = s->buf + 3 * npix,
               .root_pos = s->buf + 4 * npix, .lesion_size = s->buf + 5 * npix, .stamp = s->buf + 6 * npix + 1,
               .n = s->sums, .sx = s->sums + npix, .sy = s->sums + 2 * npix};
    /* lesion_size and stamp are indexed by lesion id, 1..n <= npix: npix + 1 entries each */
    const int32_t n_lesions = label_lesions(&w, mask, width, height);
    for (int32_t g = 1; g <= n_lesions; g++) {
        c->lesions += w.lesion_size[g] >= min_lesion_pixels;
        w.stamp[g] = -1;
    }

    /* pixels ordered by level, highest first (counting sort) */
    size_t start[AAC_REGION_LEVELS + 2] = {0};
    for (size_t i = 0; i < npix; i++) start[AAC_REGION_LEVELS - level[i] + 1]++;
    for (int k = 1; k <= AAC_REGION_LEVELS + 1; k++) start[k] += start[k - 1];
    for (size_t i = 0; i < npix; i++) w.order[start[AAC_REGION_LEVELS - level[i]]++] = (int32_t)i;
    /* start[j] is now the end of the run of level AAC_REGION_LEVELS - j */

    for (size_t i = 0; i < npix; i++) w.parent[i] = -1;
    w.nroots = 0;
    size_t next = 0;
    for (int k = AAC_REGION_LEVELS; k >= 1; k--) {
        const size_t end = start[AAC_REGION_LEVELS - k];
        for (; next < end; next++) {
            const int32_t i = w.order[next], x = i % width, y = i / width;
            w.parent[i] = i, w.n[i] = 1, w.sx[i] = x, w.sy[i] = y;
            w.root_pos[i] = w.nroots, w.roots[w.nroots++] = i;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    const int xx = x + dx, yy = y + dy;
                    if ((dx || dy) && xx >= 0 && xx < width && yy >= 0 && yy < height && w.parent[yy * width + xx] >= 0)
                        unite(&w, i, yy * width + xx);
                }
        }
        for (int32_t r = 0; r < w.nroots; r++) {
            const int32_t root = w.roots[r];
            const double cnt = (double)w.n[root];
            const int cx = (int)floor((double)w.sx[root] / cnt + 0.5), cy = (int)floor((double)w.sy[root] / cnt + 0.5);
            const int32_t g = w.gt[cy * width + cx];
            if (!g) {
                c->false_regions[k]++;
            } else if (w.lesion_size[g] >= min_lesion_pixels) {
                c->true_regions[k]++;
                if (w.stamp[g] != k) w.stamp[g] = k, c->found[k]++;
            }
        }
    }
    return 0;
}

int region_best_level(const region_counts *c, double *f1, double *precision, double *recall) {
    int best = 0;
    double bf = NAN, bp = NAN, br = NAN;
    if (c->lesions > 0) {
        bf = -1;
        for (int k = AAC_REGION_LEVELS; k >= 1; k--) {
            const int64_t all = c->true_regions[k] + c->false_regions[k];
            const double p = all ? (double)c->true_regions[k] / (double)all : 0.0;
            const double r = (double)c->found[k] / (double)c->lesions;
            const double f = p + r > 0 ? 2.0 * p * r / (p + r) : 0.0;
            if (f > bf) bf = f, bp = p, br = r, best = k;
        }
        if (bf <= 0) best = 0, bf = 0, bp = br = NAN; /* no region ever centred in a lesion */
    }
    if (f1) *f1 = bf;
    if (precision) *precision = bp;
    if (recall) *recall = br;
    return best;
}
