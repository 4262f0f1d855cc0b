/* normalise.c - volumes to the 8-bit slices the model sees: CT by window, other modalities by
 * robust percentiles of the 3-D volume; slices across a chosen index axis. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "ingest.h"

/* Common radiology windows (centre / width, HU). */
static const struct {
    const char *name;
    double center, width;
} k_windows[] = {
    {"brain", 40, 80},   {"subdural", 75, 215}, {"abdomen", 40, 400},
    {"liver", 60, 160},  {"lung", -600, 1500},  {"bone", 400, 1800},
};

aac_norm_params aac_norm_default_params(void) {
    aac_norm_params p;
    memset(&p, 0, sizeof p);
    p.mode = AAC_NORM_AUTO;
    p.p_low = 0.5;
    p.p_high = 99.5;
    p.axis = -1;
    return p;
}

aac_status aac_window_preset(const char *name, double *center, double *width, aac_error *err) {
    for (size_t i = 0; name && i < sizeof k_windows / sizeof k_windows[0]; i++)
        if (!strcasecmp(name, k_windows[i].name)) {
            *center = k_windows[i].center;
            *width = k_windows[i].width;
            return AAC_OK;
        }
    return aac_fail(err, AAC_ERR_ARG, "unknown window '%s' (brain, subdural, abdomen, liver, lung, bone)",
                    name ? name : "");
}

/* Body part -> preset; abdomen when nothing fits. */
static const char *preset_for_body_part(const char *bp) {
    if (!strcasecmp(bp, "HEAD") || !strcasecmp(bp, "BRAIN") || !strcasecmp(bp, "SKULL")) return "brain";
    if (!strcasecmp(bp, "CHEST") || !strcasecmp(bp, "LUNG") || !strcasecmp(bp, "THORAX")) return "lung";
    if (!strcasecmp(bp, "LIVER")) return "liver";
    return "abdomen";
}

/* Acquisition plane: for DICOM z is the slice axis; for other files the coarsest axis (thick
 * slices are how acquisitions show), z when all are equal. */
static int acquisition_axis(const aac_volume *v) {
    if (v->slice_uids) return 2;
    int a = 2;
    for (int i = 0; i < 2; i++)
        if (v->spacing[i] > v->spacing[a] * 1.001 && v->dim[i] > 1) a = i;
    return a;
}

/* k-th smallest of c[0..m) (quickselect, median-of-three pivots: O(m), a CT volume has 1e8
 * values and a full sort would dominate load time). Reorders c. */
static float select_kth(float *c, size_t m, size_t k) {
    size_t lo = 0, hi = m - 1;
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        float a = c[lo], b = c[mid], d = c[hi];
        float pivot = a < b ? (b < d ? b : (a < d ? d : a)) : (a < d ? a : (b < d ? d : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (c[i] < pivot) i++;
            while (c[j] > pivot) j--;
            if (i <= j) {
                float t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return c[k];
    }
    return c[k];
}

/* Percentile p (0..100) of the finite values, linear between order statistics. */
static aac_status percentiles(const float *x, size_t n, double pl, double ph, double *lo, double *hi,
                              aac_error *err) {
    float *c = malloc(n * sizeof *c);
    if (!c) return aac_fail(err, AAC_ERR_NOMEM, "percentiles: out of memory for %zu values", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) c[m++] = x[i];
    if (!m) {
        free(c);
        *lo = 0;
        *hi = 1;
        return AAC_OK;
    }
    double q[2] = {pl, ph}, r[2];
    for (int k = 0; k < 2; k++) {
        double pos = q[k] / 100.0 * (double)(m - 1);
        size_t i = (size_t)floor(pos);
        double f = pos - (double)i;
        double a = select_kth(c, m, i);
        /* after selecting i, the (i+1)-th smallest is the minimum of the upper part */
        double b = a;
        if (i + 1 < m && f > 0) {
            b = c[i + 1];
            for (size_t j = i + 2; j < m; j++)
                if (c[j] < b) b = c[j];
        }
        r[k] = a * (1 - f) + b * f;
    }
    free(c);
    *lo = r[0];
    *hi = r[1];
    return AAC_OK;
}

aac_status aac_volume_norm(const aac_volume *v, int t, const aac_norm_params *p, aac_norm *out, aac_error *err) {
    if (!v || !out || t < 0 || t >= v->dim[3]) return aac_fail(err, AAC_ERR_ARG, "aac_volume_norm: no volume %d", t);
    aac_norm_params d = aac_norm_default_params();
    if (!p) p = &d;
    if (p->axis < -1 || p->axis > 2) return aac_fail(err, AAC_ERR_ARG, "axis %d (use -1, 0, 1 or 2)", p->axis);
    memset(out, 0, sizeof *out);
    out->axis = p->axis < 0 ? acquisition_axis(v) : p->axis;
    int window = p->mode == AAC_NORM_WINDOW || (p->mode == AAC_NORM_AUTO && !strcmp(v->modality, "CT"));
    if (p->mode == AAC_NORM_AUTO && (p->width > 0 || p->preset)) window = 1;
    if (window) {
        double c = 0, w = 0;
        if (p->width > 0) {
            c = p->center;
            w = p->width;
            snprintf(out->method, sizeof out->method, "window C%g W%g", c, w);
        } else {
            const char *name = p->preset ? p->preset : preset_for_body_part(v->body_part);
            aac_status st = aac_window_preset(name, &c, &w, err);
            if (st != AAC_OK) return st;
            snprintf(out->method, sizeof out->method, "window %s C%g W%g", name, c, w);
        }
        out->low = c - w / 2;
        out->high = c + w / 2;
        return AAC_OK;
    }
    if (!(p->p_low >= 0 && p->p_high <= 100 && p->p_low < p->p_high))
        return aac_fail(err, AAC_ERR_ARG, "percentiles %g/%g (need 0 <= low < high <= 100)", p->p_low, p->p_high);
    const size_t n3 = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    aac_status st = percentiles(v->voxels + (size_t)t * n3, n3, p->p_low, p->p_high, &out->low, &out->high, err);
    if (st != AAC_OK) return st;
    snprintf(out->method, sizeof out->method, "percentile %g/%g", p->p_low, p->p_high);
    return AAC_OK;
}

int aac_volume_slice_count(const aac_volume *v, int axis) {
    return v && axis >= 0 && axis <= 2 ? v->dim[axis] : 0;
}

void aac_volume_slice_size(const aac_volume *v, int axis, int *w, int *h) {
    *w = axis == 0 ? v->dim[1] : v->dim[0];
    *h = axis == 2 ? v->dim[1] : v->dim[2];
}

aac_status aac_volume_slice_u8(const aac_volume *v, const aac_norm *n, int t, int index, uint8_t *out,
                               aac_error *err) {
    if (!v || !n || !out || t < 0 || t >= v->dim[3] || n->axis < 0 || n->axis > 2 || index < 0 ||
        index >= v->dim[n->axis])
        return aac_fail(err, AAC_ERR_ARG, "aac_volume_slice_u8: slice %d of axis %d, volume %d out of range",
                        index, n ? n->axis : -1, t);
    const size_t nx = (size_t)v->dim[0], ny = (size_t)v->dim[1], nz = (size_t)v->dim[2];
    const float *vol = v->voxels + (size_t)t * nx * ny * nz;
    const double lo = n->low, scale = n->high > n->low ? 255.0 / (n->high - n->low) : 0;
    int w, h;
    aac_volume_slice_size(v, n->axis, &w, &h);
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            size_t x, y, z;
            if (n->axis == 2) x = (size_t)c, y = (size_t)r, z = (size_t)index;
            else if (n->axis == 1) x = (size_t)c, y = (size_t)index, z = nz - 1 - (size_t)r;
            else x = (size_t)index, y = (size_t)c, z = nz - 1 - (size_t)r;
            double g = ((double)vol[(z * ny + y) * nx + x] - lo) * scale;
            if (!(g > 0)) g = 0; /* also NaN */
            if (g > 255) g = 255;
            out[(size_t)r * w + c] = (uint8_t)lrint(g);
        }
    return AAC_OK;
}
