/* out_common.c - what the result writers share: parameters, the resolved probability mapping
 * and label map, 2.25 UIDs, DS numbers, slice geometry on the source planes. */
#define _DEFAULT_SOURCE /* getrandom, fsync */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "error.h"
#include "outputs.h"

aac_output_params aac_output_default_params(void) {
    aac_output_params p;
    memset(&p, 0, sizeof p);
    p.connectivity = 26;
    p.montage_slices = 6;
    p.montage_columns = 3;
    return p;
}

void aac_results_range(const aac_results *r, double *low, double *high) {
    double lo = r->low, hi = r->high;
    if (!(lo < hi)) {
        const aac_volume *v = r->source;
        const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
        lo = INFINITY;
        hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            const double s = r->map[i];
            if (s < lo) lo = s; /* NaN compares false: skipped */
            if (s > hi) hi = s;
        }
        if (!(lo <= hi)) lo = hi = 0.0; /* no finite value */
    }
    *low = lo;
    *high = hi;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int aac_results_thresholds(const aac_results *r, double out[AAC_MAX_THRESHOLDS]) {
    int n = r->n_thresholds;
    if (n <= 0) {
        out[0] = AAC_DEFAULT_THRESHOLD;
        return 1;
    }
    if (n > AAC_MAX_THRESHOLDS) n = AAC_MAX_THRESHOLDS;
    memcpy(out, r->thresholds, (size_t)n * sizeof *out);
    qsort(out, (size_t)n, sizeof *out, cmp_double);
    return n;
}

aac_status aac_results_labels(const aac_results *r, uint8_t *out, aac_error *err) {
    aac_status st = out_check(r, 0, "label map", err);
    if (st != AAC_OK) return st;
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_results_labels: no output buffer");
    double lo, hi, thr[AAC_MAX_THRESHOLDS];
    aac_results_range(r, &lo, &hi);
    const int nt = aac_results_thresholds(r, thr);
    const aac_volume *v = r->source;
    const size_t n = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    for (size_t i = 0; i < n; i++) {
        const double p = out_prob(r->map[i], lo, hi);
        uint8_t k = 0;
        while (k < nt && p >= thr[k]) k++;
        out[i] = k;
    }
    return AAC_OK;
}

aac_status out_check(const aac_results *r, int need_dicom, const char *what, aac_error *err) {
    if (!r || !r->source || !r->map)
        return aac_fail(err, AAC_ERR_ARG, "%s: no results (source volume and map are required)", what);
    const aac_volume *v = r->source;
    if (v->dim[0] < 1 || v->dim[1] < 1 || v->dim[2] < 1 || v->dim[3] < 1)
        return aac_fail(err, AAC_ERR_ARG, "%s: %s has no voxels", what, v->source);
    if (r->t < 0 || r->t >= v->dim[3])
        return aac_fail(err, AAC_ERR_ARG, "%s: volume %d of %s does not exist (%d volumes)", what, r->t,
                        v->source, v->dim[3]);
    if (r->n_thresholds < 0 || r->n_thresholds > AAC_MAX_THRESHOLDS)
        return aac_fail(err, AAC_ERR_ARG, "%s: %d thresholds (at most %d)", what, r->n_thresholds,
                        AAC_MAX_THRESHOLDS);
    for (int i = 0; i < r->n_thresholds; i++)
        if (!(r->thresholds[i] > 0.0 && r->thresholds[i] <= 1.0))
            return aac_fail(err, AAC_ERR_ARG, "%s: threshold %g is not a probability in (0, 1]", what,
                            r->thresholds[i]);
    if (need_dicom) {
        if (!v->slice_uids || !v->slice_paths || !v->slice_sop_classes || !v->slice_positions ||
            !v->slice_orientations)
            return aac_fail(err, AAC_ERR_UNSUPPORTED,
                            "%s: DICOM objects need a DICOM input; %s is a volume file (images, scene and "
                            "PNG montage can still be written)",
                            what, v->source);
        if (v->dim[0] > 65535 || v->dim[1] > 65535)
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %d x %d slices do not fit DICOM rows/columns", what,
                            v->dim[0], v->dim[1]);
        /* Objects that reference their source need what identifies it (a derived UID would name
         * an instance or series that does not exist). */
        if (!v->series_uid[0])
            return aac_fail(err, AAC_ERR_UNSUPPORTED,
                            "%s: %s has no Series Instance UID: objects referencing it cannot be written", what,
                            v->source);
        for (int z = 0; z < v->dim[2]; z++) {
            const size_t s = out_slot(r, z);
            if (!v->slice_uids[s][0] || !v->slice_sop_classes[s][0])
                return aac_fail(err, AAC_ERR_UNSUPPORTED,
                                "%s: %s (slice %d) has no SOP Instance or Class UID: objects referencing it cannot "
                                "be written",
                                what, v->slice_paths[s] ? v->slice_paths[s] : v->source, z);
        }
    }
    return AAC_OK;
}

/* ---------------------------------------------------------------- UIDs and numbers */

void out_uid_from_bytes(const uint8_t b[16], char out[AAC_UID_LEN]) {
    /* 128-bit big-endian number to decimal: repeated division of 32-bit limbs by 10. */
    uint32_t limb[4];
    for (int i = 0; i < 4; i++)
        limb[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    char digits[40];
    int nd = 0;
    for (;;) {
        uint64_t rem = 0;
        int zero = 1;
        for (int i = 0; i < 4; i++) {
            const uint64_t cur = rem << 32 | limb[i];
            limb[i] = (uint32_t)(cur / 10);
            rem = cur % 10;
            zero &= limb[i] == 0;
        }
        digits[nd++] = (char)('0' + rem);
        if (zero) break;
    }
    int k = snprintf(out, AAC_UID_LEN, "2.25.");
    while (nd > 0) out[k++] = digits[--nd];
    out[k] = '\0';
}

aac_status out_uid(char out[AAC_UID_LEN], aac_error *err) {
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return aac_fail(err, AAC_ERR_IO, "cannot draw random bits for a UID: %s", strerror(errno));
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40); /* UUID version 4 (random), RFC 4122 variant */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    out_uid_from_bytes(b, out);
    return AAC_OK;
}

/* FNV-1a from a basis, then a splitmix64 finaliser. */
static uint64_t hash64(const char *a, const char *b, uint64_t h) {
    for (const char *p = a; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001B3ull;
    h = (h ^ '/') * 0x100000001B3ull;
    for (const char *p = b; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001B3ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
}

void out_uid_derived(const char *key, const char *role, char out[AAC_UID_LEN]) {
    const uint64_t hi = hash64(key ? key : "", role ? role : "", 0xCBF29CE484222325ull);
    const uint64_t lo = hash64(key ? key : "", role ? role : "", 0x84222325CBF29CE4ull ^ hi);
    uint8_t b[16];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hi >> (56 - 8 * i)), b[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x80); /* UUID version 8 (custom), RFC 9562 variant */
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    out_uid_from_bytes(b, out);
}

void out_ds(double v, char out[17]) {
    if (v == 0.0 || !isfinite(v)) { /* -0 and non-finite (never expected) as 0 */
        strcpy(out, "0");
        return;
    }
    char buf[64];
    int best = -1;
    for (int prec = 1; prec <= 17; prec++) {
        int n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (n > 16) break;
        best = prec;
        if (strtod(buf, NULL) == v) break;
    }
    if (best < 1) best = 1; /* cannot happen for |v| < 1e100 */
    snprintf(buf, sizeof buf, "%.*g", best, v);
    memcpy(out, buf, 16);
    out[16] = '\0';
}

/* ---------------------------------------------------------------- geometry */

void out_voxel_lps(const aac_results *r, double x, double y, int z, double out[3]) {
    const aac_volume *v = r->source;
    if (v->slice_positions && v->slice_orientations) {
        const size_t s = out_slot(r, z);
        const double *P = v->slice_positions[s], *o = v->slice_orientations[s];
        for (int a = 0; a < 3; a++) out[a] = P[a] + o[a] * v->spacing[0] * x + o[3 + a] * v->spacing[1] * y;
        return;
    }
    for (int a = 0; a < 3; a++)
        out[a] = v->origin[a] + v->direction[a * 3] * v->spacing[0] * x +
                 v->direction[a * 3 + 1] * v->spacing[1] * y + v->direction[a * 3 + 2] * v->spacing[2] * z;
}

/* Position of slice z along its normal. */
static double slice_depth(const aac_results *r, int z) {
    const aac_volume *v = r->source;
    const size_t s = out_slot(r, z);
    const double *o = v->slice_orientations[s], *P = v->slice_positions[s];
    const double n[3] = {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
    return n[0] * P[0] + n[1] * P[1] + n[2] * P[2];
}

double out_slice_spacing(const aac_results *r, int z) {
    const aac_volume *v = r->source;
    const int nz = v->dim[2];
    if (!v->slice_positions || !v->slice_orientations || nz < 2)
        return nz < 2 && v->slice_thickness > 0 ? v->slice_thickness : v->spacing[2];
    const double d = slice_depth(r, z);
    double sum = 0;
    int n = 0;
    if (z > 0) sum += fabs(d - slice_depth(r, z - 1)), n++;
    if (z + 1 < nz) sum += fabs(slice_depth(r, z + 1) - d), n++;
    return sum / n;
}

int out_series_number(const aac_results *r, const aac_output_params *p, int k) {
    int base = p && p->series_number > 0 ? p->series_number : 0;
    if (!base) base = (r->source->series_number > 0 ? r->source->series_number : 0) + 1000;
    return base + k;
}

void out_slice_max(const aac_results *r, float *out) {
    const aac_volume *v = r->source;
    const size_t plane = (size_t)v->dim[0] * v->dim[1];
    for (int z = 0; z < v->dim[2]; z++) {
        const float *m = r->map + (size_t)z * plane;
        float mx = -INFINITY;
        for (size_t i = 0; i < plane; i++)
            if (m[i] > mx) mx = m[i];
        out[z] = isfinite(mx) ? mx : 0.0f;
    }
}

void out_mapping_text(const aac_results *r, char *buf, size_t cap) {
    double lo, hi;
    aac_results_range(r, &lo, &hi);
    snprintf(buf, cap,
             "probability p = clamp((s - %.9g) / (%.9g - %.9g), 0, 1) of the raw AA-CLIP anomaly score s%s",
             lo, hi, lo, r->low < r->high ? "" : " (bounds: minimum and maximum of this map)");
}
