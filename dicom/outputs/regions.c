/* regions.c - connected components of a binary segment (label map >= level) with their size,
 * scores and centroid. Breadth-first flood fill in scan order, so components are numbered by
 * their first voxel (z, y, x) and the numbering is reproducible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "outputs.h"

typedef struct queue {
    size_t *v;
    size_t head, tail, cap;
} queue;

static int push(queue *q, size_t i) {
    if (q->tail == q->cap) {
        if (q->head > 0) { /* reuse the consumed front before growing */
            memmove(q->v, q->v + q->head, (q->tail - q->head) * sizeof *q->v);
            q->tail -= q->head;
            q->head = 0;
        } else {
            size_t cap = q->cap ? 2 * q->cap : 4096;
            size_t *p = realloc(q->v, cap * sizeof *p);
            if (!p) return -1;
            q->v = p;
            q->cap = cap;
        }
    }
    q->v[q->tail++] = i;
    return 0;
}

static int add_region(aac_region **out, int *n, int *cap) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        aac_region *p = realloc(*out, (size_t)c * sizeof *p);
        if (!p) return -1;
        *out = p;
        *cap = c;
    }
    memset(&(*out)[*n], 0, sizeof **out);
    (*n)++;
    return 0;
}

aac_status aac_regions(const aac_results *r, int level, int connectivity, aac_region **out, int *n,
                       aac_error *err) {
    if (!out || !n) return aac_fail(err, AAC_ERR_ARG, "aac_regions: no output");
    *out = NULL;
    *n = 0;
    aac_status st = out_check(r, 0, "regions", err);
    if (st != AAC_OK) return st;
    if (connectivity != 6 && connectivity != 26)
        return aac_fail(err, AAC_ERR_ARG, "regions: connectivity %d (6 or 26)", connectivity);
    double thr[AAC_MAX_THRESHOLDS];
    const int nt = aac_results_thresholds(r, thr);
    if (level < 1 || level > nt)
        return aac_fail(err, AAC_ERR_ARG, "regions: level %d (the label map has levels 1..%d)", level, nt);
    const aac_volume *v = r->source;
    const int X = v->dim[0], Y = v->dim[1], Z = v->dim[2];
    const size_t plane = (size_t)X * Y, total = plane * Z;
    uint8_t *lab = malloc(total);
    double *dz = malloc((size_t)Z * sizeof *dz);
    queue q = {0};
    int cap = 0;
    if (!lab || !dz) {
        st = aac_fail(err, AAC_ERR_NOMEM, "regions of %s: out of memory", v->source);
        goto done;
    }
    if ((st = aac_results_labels(r, lab, err)) != AAC_OK) goto done;
    for (int z = 0; z < Z; z++) dz[z] = out_slice_spacing(r, z);
    const double area = v->spacing[0] * v->spacing[1];
    for (size_t seed = 0; seed < total; seed++) {
        if (lab[seed] < level) continue;
        if (add_region(out, n, &cap)) {
            st = aac_fail(err, AAC_ERR_NOMEM, "regions of %s: out of memory", v->source);
            goto done;
        }
        aac_region *g = &(*out)[*n - 1];
        double sum_score = 0, c[3] = {0, 0, 0};
        g->max_score = -INFINITY;
        for (int a = 0; a < 3; a++) g->first[a] = 1 << 30, g->last[a] = -1;
        lab[seed] = 0; /* visited voxels leave the mask */
        q.head = q.tail = 0;
        if (push(&q, seed)) {
            st = aac_fail(err, AAC_ERR_NOMEM, "regions of %s: out of memory", v->source);
            goto done;
        }
        while (q.head < q.tail) {
            const size_t i = q.v[q.head++];
            const int z = (int)(i / plane), y = (int)(i % plane / X), x = (int)(i % X);
            const int idx[3] = {x, y, z};
            const double s = r->map[i];
            double p[3];
            out_voxel_lps(r, x, y, z, p);
            g->n_voxels++;
            g->volume_mm3 += area * dz[z];
            sum_score += s;
            if (s > g->max_score) g->max_score = s;
            for (int a = 0; a < 3; a++) {
                c[a] += p[a];
                if (idx[a] < g->first[a]) g->first[a] = idx[a];
                if (idx[a] > g->last[a]) g->last[a] = idx[a];
            }
            for (int dzz = -1; dzz <= 1; dzz++)
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        const int m = abs(dx) + abs(dy) + abs(dzz);
                        if (m == 0 || (connectivity == 6 && m != 1)) continue;
                        const int xx = x + dx, yy = y + dy, zz = z + dzz;
                        if (xx < 0 || yy < 0 || zz < 0 || xx >= X || yy >= Y || zz >= Z) continue;
                        const size_t j = (size_t)zz * plane + (size_t)yy * X + xx;
                        if (lab[j] < level) continue;
                        lab[j] = 0;
                        if (push(&q, j)) {
                            st = aac_fail(err, AAC_ERR_NOMEM, "regions of %s: out of memory", v->source);
                            goto done;
                        }
                    }
        }
        g->mean_score = sum_score / (double)g->n_voxels;
        for (int a = 0; a < 3; a++) g->centroid[a] = c[a] / (double)g->n_voxels;
    }
done:
    free(q.v);
    free(dz);
    free(lab);
    if (st != AAC_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return st;
}
