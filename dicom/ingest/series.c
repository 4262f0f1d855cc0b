/* series.c - frames into series, and each series' geometry: copies of an instance read once,
 * grouping by SeriesInstanceUID (split where size, orientation, spacing, echo or image type
 * differ), sorting along the slice normal, temporal positions as a 4th axis, and warnings for
 * duplicate instances and slices, missing and unevenly spaced slices and gantry tilt. Nothing
 * is interpolated or resampled. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest.h"

enum { MAX_SERIES = 4096, MAX_NAMED = 5 /* files named per kind of warning and series */ };
static const double POS_TOL = 0.01;  /* mm: frames closer than this along the normal coincide */
static const double ECHO_TOL = 1e-3; /* ms: echo times further apart are different echoes */
/* Gantry tilt: the stack leaves the normal by more than this angle and this distance. Both, so
 * that rounded positions of a few thin slices do not look tilted. */
static const double TILT_MIN_DEG = 0.1, TILT_MIN_MM = 0.02;

typedef struct group {
    int rep;          /* frame whose attributes define the group */
    int *idx;
    int n, cap;
} group;

static int push(group *g, int v) {
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 16;
        int *p = realloc(g->idx, (size_t)cap * sizeof *p);
        if (!p) return -1;
        g->idx = p;
        g->cap = cap;
    }
    g->idx[g->n++] = v;
    return 0;
}

/* Why frame b does not belong with frame a, or NULL when it does. */
static const char *split_reason(const aac_scan *s, const dcm_frame *a, const dcm_frame *b, int same_uid_only) {
    const dcm_file *fa = &s->files[a->file], *fb = &s->files[b->file];
    if (strcmp(fa->series_uid, fb->series_uid) || strcmp(fa->study_uid, fb->study_uid)) return "uid";
    if (fa->series_number != fb->series_number) return "series number";
    if (same_uid_only) return NULL;
    if (a->rows != b->rows || a->cols != b->cols || fa->spp != fb->spp) return "image size";
    if (a->echo_number != b->echo_number) return "echo";
    /* Echoes without EchoNumbers (enhanced multi-echo with per-frame EffectiveEchoTime only) are
     * told apart by their echo time, as dcm2niix does. */
    if (fabs(a->echo_time - b->echo_time) > ECHO_TOL) return "echo time";
    if (strcmp(a->frame_type, b->frame_type)) return "image type";
    /* Derived images (DERIVED, diffusion ADC / trace / FA maps) and isotropic diffusion images
     * are not volumes of the acquired series (dcm2niix keeps them out of a DWI series too). */
    if (a->derived != b->derived) return "derived (DERIVED, ADC, trace or FA) images";
    if (a->isotropic != b->isotropic) return "isotropic diffusion (trace) images";
    if (a->has_iop != b->has_iop) return "orientation";
    if (a->has_iop)
        for (int i = 0; i < 6; i++)
            if (fabs(a->iop[i] - b->iop[i]) > 1e-3) return "orientation";
    if (a->has_ps != b->has_ps) return "pixel spacing";
    if (a->has_ps)
        for (int i = 0; i < 2; i++)
            if (fabs(a->ps[i] - b->ps[i]) > 1e-3 * fabs(a->ps[i]) + 1e-6) return "pixel spacing";
    return NULL;
}

typedef struct sort_key {
    double d;
    int temporal, instance, acquisition, frame, tile, idx, file;
    const char *acq_time;
} sort_key;

static int cmp_int(int a, int b) { return (a > b) - (a < b); }

/* Time order among frames at one position: temporal index, instance, acquisition, frame, tile;
 * frames equal in all of these are adjacent (same_image). */
static int cmp_time(const sort_key *a, const sort_key *b) {
    int c;
    if ((c = cmp_int(a->temporal, b->temporal))) return c;
    if ((c = cmp_int(a->instance, b->instance))) return c;
    if ((c = cmp_int(a->acquisition, b->acquisition))) return c;
    if ((c = strcmp(a->acq_time, b->acq_time))) return c;
    if ((c = cmp_int(a->frame, b->frame))) return c;
    if ((c = cmp_int(a->tile, b->tile))) return c;
    return cmp_int(a->idx, b->idx);
}

/* Two frames at one position from different files that nothing tells apart in time: the same
 * slice twice (re-sent or re-exported under new UIDs), not a second time point. Instance
 * numbers are part of the test because GE, for one, writes the same acquisition time and
 * number and no temporal position for every volume of a 4-D series; frames of one file are
 * never duplicates of each other (the file says what they are). */
static int same_image(const sort_key *a, const sort_key *b) {
    return a->file != b->file && a->temporal == b->temporal && a->instance == b->instance &&
           a->acquisition == b->acquisition && !strcmp(a->acq_time, b->acq_time) && a->frame == b->frame &&
           a->tile == b->tile;
}

static int cmp_time_v(const void *a, const void *b) { return cmp_time(a, b); }

/* Exact position order (a tolerance here would not be a consistent ordering for qsort);
 * coinciding positions are clustered afterwards and each cluster put in time order. */
static int cmp_pos(const void *pa, const void *pb) {
    const sort_key *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return cmp_time(a, b);
}

static void normalise3(double v[3]) {
    double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    if (n > 0)
        for (int i = 0; i < 3; i++) v[i] /= n;
}

/* Orthonormal row, column and normal from ImageOrientationPatient (Gram-Schmidt). */
static void axes_from_iop(const double iop[6], double row[3], double col[3], double nrm[3]) {
    memcpy(row, iop, 3 * sizeof *row);
    memcpy(col, iop + 3, 3 * sizeof *col);
    normalise3(row);
    double dot = row[0] * col[0] + row[1] * col[1] + row[2] * col[2];
    for (int i = 0; i < 3; i++) col[i] -= dot * row[i];
    normalise3(col);
    nrm[0] = row[1] * col[2] - row[2] * col[1];
    nrm[1] = row[2] * col[0] - row[0] * col[2];
    nrm[2] = row[0] * col[1] - row[1] * col[0];
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int missing_warned(const dcm_series *ser) {
    for (int i = 0; i < ser->warnings.n; i++)
        if (strstr(ser->warnings.items[i], "missing slice")) return 1;
    return 0;
}

static int cmp_int_v(const void *a, const void *b) { return cmp_int(*(const int *)a, *(const int *)b); }

/* Within each position cluster (time-sorted), keeps the first of frames that are the same image
 * (same_image) and warns naming the files; compacts k and start, and drops the frames from
 * ser->frames so that the file count is of files used. */
static aac_status drop_duplicate_slices(const aac_scan *s, dcm_series *ser, sort_key *k, int *start, int nz) {
    int m = 0, n_dup = 0, cap = 0, *dropped = NULL;
    for (int z = 0; z < nz; z++) {
        const int a = start[z], b = start[z + 1];
        start[z] = m;
        for (int i = a; i < b; i++) {
            if (i > a && same_image(&k[m - 1], &k[i])) {
                char when[64] = "";
                if (k[i].temporal) snprintf(when, sizeof when, ", temporal position %d", k[i].temporal);
                if (++n_dup <= MAX_NAMED)
                    strlist_addf(&ser->warnings, 1,
                                 "duplicate slice: %s and %s are different instances of one slice (%.4g mm "
                                 "along the normal, instance number %d%s); kept the first, not a time point",
                                 s->files[k[m - 1].file].path, s->files[k[i].file].path, k[i].d, k[i].instance,
                                 when);
                if (n_dup > cap) {
                    cap = cap ? 2 * cap : 16;
                    int *p = realloc(dropped, (size_t)cap * sizeof *p);
                    if (!p) {
                        free(dropped);
                        return AAC_ERR_NOMEM;
                    }
                    dropped = p;
                }
                dropped[n_dup - 1] = k[i].idx;
                continue;
            }
            k[m++] = k[i];
        }
    }
    start[nz] = m;
    if (n_dup > MAX_NAMED)
        strlist_addf(&ser->warnings, 1, "duplicate slice: %d more images repeat a slice already present; "
                                        "kept the first of each", n_dup - MAX_NAMED);
    if (n_dup) {
        qsort(dropped, (size_t)n_dup, sizeof *dropped, cmp_int_v);
        int w = 0;
        for (int i = 0; i < ser->n_frames; i++)
            if (!bsearch(&ser->frames[i], dropped, (size_t)n_dup, sizeof *dropped, cmp_int_v))
                ser->frames[w++] = ser->frames[i];
        ser->n_frames = w;
    }
    free(dropped);
    return AAC_OK;
}

/* Gantry tilt: the line from the first to the last slice position leaves the normal of
 * ImageOrientationPatient. The volume keeps its geometry along the normal (the spec: never
 * resample silently), so say by how much it is off; each slice's own plane stays exact. */
static void warn_tilt(dcm_series *ser, const dcm_frame *first, const dcm_frame *last, const double nrm[3]) {
    double d[3], along = 0, side = 0;
    for (int i = 0; i < 3; i++) {
        d[i] = last->ipp[i] - first->ipp[i];
        along += d[i] * nrm[i];
    }
    for (int i = 0; i < 3; i++) side += (d[i] - along * nrm[i]) * (d[i] - along * nrm[i]);
    side = sqrt(side);
    const double deg = atan2(side, fabs(along)) * 180.0 / 3.14159265358979323846;
    if (deg > TILT_MIN_DEG && side > TILT_MIN_MM)
        strlist_addf(&ser->warnings, 1,
                     "gantry tilt: slices are stacked %.2f degrees off the slice normal (%.3g mm sideways "
                     "over %.4g mm); not resampled: the volume's grid follows the normal, so the last slice "
                     "lies %.3g mm from its grid position (each slice keeps its own position)",
                     deg, side, fabs(along), side);
}

/* Instance numbers of the scan's images (copies left out), sorted by study and series UID then
 * number: what a series holds, whichever part its images went to. */
typedef struct inst_ref {
    const dcm_file *f;
} inst_ref;

typedef struct inst_index {
    inst_ref *r;
    size_t n;
} inst_index;

static int cmp_series_of(const dcm_file *a, const dcm_file *b) {
    int c = strcmp(a->study_uid, b->study_uid);
    return c ? c : strcmp(a->series_uid, b->series_uid);
}

static int cmp_inst(const void *pa, const void *pb) {
    const inst_ref *a = pa, *b = pb;
    int c = cmp_series_of(a->f, b->f);
    return c ? c : cmp_int(a->f->instance_number, b->f->instance_number);
}

/* How many of the numbers lo, lo + stride, ... hi no image of rf's series holds. */
static int instances_absent(const inst_index *ix, const dcm_file *rf, int lo, int hi, int stride) {
    size_t a = 0, b = ix->n; /* first entry of the series */
    while (a < b) {
        size_t m = (a + b) / 2;
        if (cmp_series_of(ix->r[m].f, rf) < 0) a = m + 1;
        else b = m;
    }
    int held = 0, last = lo - 1;
    for (size_t i = a; i < ix->n && !cmp_series_of(ix->r[i].f, rf); i++) {
        const int in = ix->r[i].f->instance_number;
        if (in >= lo && in <= hi && in != last && (in - lo) % stride == 0) held++;
        last = in;
    }
    return (hi - lo) / stride + 1 - held;
}

static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

/* dcm2niix's statement of the same grid (aac_series_info.nifti_origin / nifti_spacing): for a
 * stack of single-frame images it takes the slice spacing as the distance between the first two
 * images in instance order and places the stack from the first one; ours fits all slices. The
 * two differ by the rounding of the positions (0.0001 mm a slice adds up over a long stack).
 * Slot `lowest` holds the image of lowest instance number. */
static void nifti_geometry(const aac_scan *s, dcm_series *ser, int lowest, const double nrm[3]) {
    aac_series_info *in = &ser->info;
    const int nz = in->dim[2], n = nz * in->dim[3];
    memcpy(in->nifti_origin, ser->origin, sizeof in->nifti_origin);
    memcpy(in->nifti_spacing, ser->spacing, sizeof in->nifti_spacing);
    const dcm_frame *a = &s->frames[ser->order[lowest]];
    if (nz < 2 || !a->has_ipp || a->tile >= 0 || s->files[a->file].n_frames != 1) return;
    int second = -1; /* the next instance number */
    const int ia = s->files[a->file].instance_number;
    for (int q = 0; q < n; q++) {
        const int iq = s->files[s->frames[ser->order[q]].file].instance_number;
        if (q != lowest && iq >= ia &&
            (second < 0 || iq < s->files[s->frames[ser->order[second]].file].instance_number))
            second = q;
    }
    if (second < 0) return;
    const dcm_frame *b = &s->frames[ser->order[second]];
    double d = 0;
    for (int i = 0; i < 3; i++) d += (b->ipp[i] - a->ipp[i]) * (b->ipp[i] - a->ipp[i]);
    d = sqrt(d);
    if (!b->has_ipp || !(d > POS_TOL) || fabs(d - ser->spacing[2]) > 0.01 * ser->spacing[2]) return;
    in->nifti_spacing[2] = d;
    for (int i = 0; i < 3; i++) in->nifti_origin[i] = a->ipp[i] - (lowest % nz) * d * nrm[i];
}

/* Lays out one series: order[], dims, origin, spacing, direction, dcm2niix's order and warnings. */
static aac_status layout(aac_scan *s, dcm_series *ser, const inst_index *ix, aac_error *err) {
    const int n = ser->n_frames;
    const dcm_frame *rep = &s->frames[ser->frames[0]];
    const dcm_file *rf = &s->files[rep->file];
    sort_key *k = malloc((size_t)n * sizeof *k);
    if (!k) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", rf->path);
    int geometry = 1;
    for (int i = 0; i < n; i++) {
        const dcm_frame *f = &s->frames[ser->frames[i]];
        if (!f->has_ipp || !f->has_iop) geometry = 0;
    }
    double row[3] = {1, 0, 0}, col[3] = {0, 1, 0}, nrm[3] = {0, 0, 1};
    if (geometry) axes_from_iop(rep->iop, row, col, nrm);
    for (int i = 0; i < n; i++) {
        const dcm_frame *f = &s->frames[ser->frames[i]];
        k[i].d = geometry ? f->ipp[0] * nrm[0] + f->ipp[1] * nrm[1] + f->ipp[2] * nrm[2] : 0;
        k[i].temporal = f->temporal;
        k[i].instance = s->files[f->file].instance_number;
        k[i].acquisition = s->files[f->file].acquisition_number;
        k[i].acq_time = s->files[f->file].acquisition_time;
        k[i].file = f->file;
        k[i].frame = f->frame;
        k[i].tile = f->tile;
        k[i].idx = ser->frames[i];
    }
    if (!geometry) {
        /* Without positions, instance order is the only order there is: one slice per frame. */
        for (int i = 0; i < n; i++) k[i].d = i;
        qsort(k, (size_t)n, sizeof *k, cmp_time_v);
        for (int i = 0; i < n; i++) k[i].d = i;
        strlist_addf(&ser->warnings, 1, "no ImagePositionPatient/ImageOrientationPatient: slices ordered "
                                        "by instance number, identity orientation");
    } else {
        qsort(k, (size_t)n, sizeof *k, cmp_pos);
    }

    /* Clusters of coinciding positions. */
    int nz = 0, *start = malloc(((size_t)n + 1) * sizeof *start);
    if (!start) {
        free(k);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", rf->path);
    }
    for (int i = 0; i < n; i++)
        if (i == 0 || fabs(k[i].d - k[start[nz - 1]].d) > POS_TOL) start[nz++] = i;
    start[nz] = n;
    for (int z = 0; z < nz; z++) qsort(k + start[z], (size_t)(start[z + 1] - start[z]), sizeof *k, cmp_time_v);
    if (geometry && drop_duplicate_slices(s, ser, k, start, nz) != AAC_OK) {
        free(k);
        free(start);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", rf->path);
    }
    int cmin = n, cmax = 0;
    for (int z = 0; z < nz; z++) {
        int c = start[z + 1] - start[z];
        if (c < cmin) cmin = c;
        if (c > cmax) cmax = c;
    }
    int nt = cmin == cmax ? cmax : 1;
    if (cmin != cmax) {
        int z = 0;
        while (start[z + 1] - start[z] != cmax) z++;
        strlist_addf(&ser->warnings, 1,
                     "duplicate slices: positions hold %d to %d images (%s and %s at %.4g mm); kept the "
                     "first (in time order) at each of the %d positions",
                     cmin, cmax, s->files[k[start[z]].file].path, s->files[k[start[z] + 1].file].path,
                     k[start[z]].d, nz);
    }
    ser->order = malloc((size_t)nz * nt * sizeof *ser->order);
    if (!ser->order) {
        free(k);
        free(start);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", rf->path);
    }
    for (int z = 0; z < nz; z++)
        for (int t = 0; t < nt; t++) ser->order[t * nz + z] = k[start[z] + t].idx;

    /* Spacing along the normal: regular -> (last - first) / (nz - 1); otherwise the median gap,
     * with a warning (the volume is then only approximately placed). */
    double dz = rf->slice_spacing > 0 ? rf->slice_spacing : (rep->thickness > 0 ? rep->thickness : 1.0);
    if (geometry && nz > 1) {
        double *gap = malloc((size_t)(nz - 1) * sizeof *gap), *sorted = malloc((size_t)(nz - 1) * sizeof *gap);
        if (!gap || !sorted) {
            free(gap);
            free(sorted);
            free(k);
            free(start);
            return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", rf->path);
        }
        for (int z = 0; z + 1 < nz; z++) sorted[z] = gap[z] = k[start[z + 1]].d - k[start[z]].d;
        qsort(sorted, (size_t)(nz - 1), sizeof *sorted, cmp_double);
        const double med = sorted[(nz - 1) / 2], lo = sorted[0], hi = sorted[nz - 2];
        const double tol = fmax(0.01, 0.02 * med);
        int missing = 0;
        for (int z = 0; z + 1 < nz; z++)
            if (gap[z] > 1.5 * med) {
                missing++;
                if (missing <= 3)
                    strlist_addf(&ser->warnings, 1,
                                 "missing slice(s): gap of %.3g mm between slices %d and %d (usual spacing "
                                 "%.3g mm, about %d slice(s) absent)",
                                 gap[z], z, z + 1, med, (int)lround(gap[z] / med) - 1);
            }
        if (!missing && hi - lo > tol)
            strlist_addf(&ser->warnings, 1, "unevenly spaced slices: gaps from %.4g to %.4g mm", lo, hi);
        dz = (missing || hi - lo > tol) ? med : (k[start[nz - 1]].d - k[start[0]].d) / (nz - 1);
        free(gap);
        free(sorted);
        warn_tilt(ser, &s->frames[k[start[0]].idx], &s->frames[k[start[nz - 1]].idx], nrm);
    }
    /* Two slices left of three show no gap; instance numbers still tell (single-frame files).
     * Completeness is judged for this volume: numbers held by other images of the series
     * (magnitude and phase, echoes or types split into parts, interleaved) are not missing, and
     * in a part, only numbers on its own stride (1, 3, 5, ... when two parts interleave) are
     * its to miss (a phase image lost from between two magnitudes is not the magnitude's). */
    if (cmax == 1 && nz > 1) {
        int lo = 0, hi = 0, ok = 1, stride = 0;
        for (int z = 0; z < nz && ok; z++) {
            const dcm_frame *f = &s->frames[ser->order[z]];
            const int in = s->files[f->file].instance_number;
            if (in <= 0 || f->tile >= 0 || s->files[f->file].n_frames != 1) ok = 0;
            if (z == 0 || in < lo) lo = in;
            if (z == 0 || in > hi) hi = in;
        }
        for (int z = 0; z < nz && ok; z++)
            stride = gcd(stride, abs(s->files[s->frames[ser->order[z]].file].instance_number - lo));
        if (!ser->info.part || stride < 1) stride = 1;
        const int absent = ok && (hi - lo) / stride + 1 > nz ? instances_absent(ix, rf, lo, hi, stride) : 0;
        if (absent > 0 && !missing_warned(ser))
            strlist_addf(&ser->warnings, 1,
                         "missing slice(s): instance numbers run from %d to %d but %d images are present (%d "
                         "number(s) held by no image of the series)",
                         lo, hi, nz, absent);
    }
    const dcm_frame *first = &s->frames[ser->order[0]];
    for (int i = 0; i < 3; i++) {
        ser->origin[i] = geometry ? first->ipp[i] : 0;
        ser->direction[i * 3 + 0] = row[i];
        ser->direction[i * 3 + 1] = col[i];
        ser->direction[i * 3 + 2] = nrm[i];
    }
    ser->spacing[0] = rep->has_ps ? rep->ps[1] : 1.0;
    ser->spacing[1] = rep->has_ps ? rep->ps[0] : 1.0;
    ser->spacing[2] = dz;
    if (!rep->has_ps) strlist_addf(&ser->warnings, 1, "no PixelSpacing: 1 mm assumed");
    ser->t_spacing = nt > 1 && rf->repetition_time > 0 ? rf->repetition_time / 1000.0 : 0;
    aac_series_info *in = &ser->info;
    in->dim[0] = rep->cols;
    in->dim[1] = rep->rows;
    in->dim[2] = nz;
    in->dim[3] = nt;
    memcpy(in->spacing, ser->spacing, sizeof in->spacing);
    /* dcm2niix's voxel order (nifti_order.c): mosaic tiles along the CSA normal; 3-D non-EPI
     * single volumes turned, or left as stored when their slices are uneven (a gap more than
     * 10% off the first: its isSliceEquidistant). */
    int even = 1;
    for (int z = 1; geometry && z + 1 < nz; z++) {
        const double g0 = k[start[1]].d - k[start[0]].d, g = k[start[z + 1]].d - k[start[z]].d;
        if (fabs(g - g0) > 0.1 * fabs(g0)) even = 0;
    }
    const int acq_3d = rf->mr_3d && !rf->epi && nt == 1 && nz > 1;
    int z_rev = rf->mosaic_images > 0 && rf->has_csa_normal &&
                rf->csa_normal[0] * nrm[0] + rf->csa_normal[1] * nrm[1] + rf->csa_normal[2] * nrm[2] < 0;
    /* Siemens: the first image (lowest instance number) with ProtocolSliceNumber > 1 makes
     * dcm2niix reverse its stack: a mosaic's tiles, or a classic stack's instance order (which
     * runs along our normal when that image is in the lower half) */
    int lowest = 0;
    for (int q = 1; q < nz * nt; q++)
        if (s->files[s->frames[ser->order[q]].file].instance_number <
            s->files[s->frames[ser->order[lowest]].file].instance_number)
            lowest = q;
    if (s->files[s->frames[ser->order[lowest]].file].csa_slice > 1)
        z_rev = rf->mosaic_images > 0 ? !z_rev : (lowest % nz) < nz / 2.0;
    nifti_order(ser->origin, ser->direction, ser->spacing, in->dim, acq_3d, even, z_rev, in->nifti_axes);
    nifti_geometry(s, ser, lowest, nrm);
    free(k);
    free(start);
    return AAC_OK;
}

static int cmp_series(const void *pa, const void *pb) {
    const dcm_series *a = pa, *b = pb;
    int c = strcmp(a->info.study_uid, b->info.study_uid);
    if (c) return c;
    if ((c = cmp_int(a->info.series_number, b->info.series_number))) return c;
    if ((c = strcmp(a->info.series_uid, b->info.series_uid))) return c;
    return cmp_int(a->info.part, b->info.part);
}

static void fill_info(const aac_scan *s, dcm_series *ser, int part) {
    const dcm_frame *rep = &s->frames[ser->frames[0]];
    const dcm_file *f = &s->files[rep->file];
    aac_series_info *in = &ser->info;
    memcpy(in->series_uid, f->series_uid, sizeof in->series_uid);
    memcpy(in->study_uid, f->study_uid, sizeof in->study_uid);
    memcpy(in->patient_id, f->patient_id, sizeof in->patient_id);
    memcpy(in->modality, f->modality, sizeof in->modality);
    memcpy(in->body_part, f->body_part, sizeof in->body_part);
    memcpy(in->series_description, f->series_desc, sizeof in->series_description);
    memcpy(in->manufacturer, f->manufacturer, sizeof in->manufacturer);
    memcpy(in->transfer_syntax, f->ts_uid, sizeof in->transfer_syntax);
    memcpy(in->image_type, rep->frame_type, sizeof in->image_type);
    in->series_number = f->series_number;
    in->echo_number = rep->echo_number;
    in->part = part;
}

/* Files used: distinct ones (frames of one file are adjacent in scan order). */
static int count_files(const aac_scan *s, const dcm_series *ser) {
    int nf = 0, last = -1;
    for (int i = 0; i < ser->n_frames; i++) {
        int fi = s->frames[ser->frames[i]].file;
        if (fi != last) nf++;
        last = fi;
    }
    return nf;
}

typedef struct uid_ref {
    const dcm_file *f;
    int file;
} uid_ref;

/* SOP Instance UID, then series, instance number and scan order: candidates for being copies
 * of each other are adjacent. */
static int cmp_uid_ref(const void *pa, const void *pb) {
    const uid_ref *a = pa, *b = pb;
    int c = strcmp(a->f->sop_uid, b->f->sop_uid);
    if (c) return c;
    if ((c = strcmp(a->f->study_uid, b->f->study_uid))) return c;
    if ((c = strcmp(a->f->series_uid, b->f->series_uid))) return c;
    if ((c = cmp_int(a->f->instance_number, b->f->instance_number))) return c;
    return cmp_int(a->file, b->file);
}

/* Frames of each file: they are contiguous in the scan (one file's header appends them). */
typedef struct file_frames {
    int first, n;
} file_frames;

/* 1 when files a and b (same SOP Instance UID) are one image: the same series (UID and number),
 * instance number, size, pixel encoding and frames at the same positions. Anything less is two
 * images that share a UID. */
static int same_instance(const aac_scan *s, const file_frames *ff, int a, int b) {
    const dcm_file *fa = &s->files[a], *fb = &s->files[b];
    if (strcmp(fa->study_uid, fb->study_uid) || strcmp(fa->series_uid, fb->series_uid) ||
        fa->series_number != fb->series_number || fa->instance_number != fb->instance_number ||
        fa->bits_stored != fb->bits_stored || fa->pixel_rep != fb->pixel_rep || fa->spp != fb->spp ||
        ff[a].n != ff[b].n || ff[a].n == 0)
        return 0;
    for (int k = 0; k < ff[a].n; k++) {
        const dcm_frame *x = &s->frames[ff[a].first + k], *y = &s->frames[ff[b].first + k];
        if (x->rows != y->rows || x->cols != y->cols || x->has_ipp != y->has_ipp || x->temporal != y->temporal)
            return 0;
        for (int i = 0; x->has_ipp && i < 3; i++)
            if (fabs(x->ipp[i] - y->ipp[i]) > POS_TOL) return 0;
    }
    return 1;
}

/* Copies and clashes of SOP Instance UIDs. A file holding the same image as an earlier one
 * (same_instance: a copy) is read once: copy_of[f] is the file kept, -1 for the rest, and
 * next_copy[] chains each kept file's copies in scan order, from copy_head[kept]. Different
 * images under one UID (anonymisers, phantom exports) are all kept: clash[f] names another
 * kept file with f's UID, -1 when none. The arrays are allocated here. */
static aac_status find_copies(const aac_scan *s, int **copy_of, int **copy_head, int **next_copy, int **clash) {
    const size_t n = (size_t)s->n_files, cap = n ? n : 1;
    *copy_of = malloc(cap * sizeof **copy_of);
    *copy_head = malloc(cap * sizeof **copy_head);
    *next_copy = malloc(cap * sizeof **next_copy);
    *clash = malloc(cap * sizeof **clash);
    uid_ref *r = malloc(cap * sizeof *r);
    file_frames *ff = calloc(cap, sizeof *ff);
    int *tail = malloc(cap * sizeof *tail);
    if (!*copy_of || !*copy_head || !*next_copy || !*clash || !r || !ff || !tail) {
        free(r), free(ff), free(tail);
        return AAC_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) (*copy_of)[i] = (*copy_head)[i] = (*next_copy)[i] = (*clash)[i] = tail[i] = -1;
    for (int i = s->n_frames - 1; i >= 0; i--) {
        ff[s->frames[i].file].first = i;
        ff[s->frames[i].file].n++;
    }
    /* Only files with frames: one kept without (a mosaic that did not fit) must not hide a copy. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (s->files[i].sop_uid[0] && ff[i].n) r[m++] = (uid_ref){&s->files[i], (int)i};
    qsort(r, m, sizeof *r, cmp_uid_ref);
    for (size_t a = 0, b; a < m; a = b) { /* runs of one UID */
        for (b = a + 1; b < m && !strcmp(r[b].f->sop_uid, r[a].f->sop_uid); b++) {}
        if (b == a + 1) continue;
        int first_kept = -1;
        for (size_t i = a; i < b; i++) {
            const int fi = r[i].file;
            int orig = -1; /* the earliest kept file (scan order) holding the same image */
            for (size_t j = a; j < b; j++) {
                const int fj = r[j].file;
                if (fj < fi && (*copy_of)[fj] < 0 && same_instance(s, ff, fj, fi) && (orig < 0 || fj < orig)) orig = fj;
            }
            if (orig >= 0 && (*copy_of)[fi] < 0) {
                (*copy_of)[fi] = orig;
                if (tail[orig] < 0) (*copy_head)[orig] = fi;
                else (*next_copy)[tail[orig]] = fi;
                tail[orig] = fi;
            }
        }
        /* copies are chained in scan order: the sort put one UID's files of one instance in it */
        for (size_t i = a; i < b; i++) {
            const int fi = r[i].file;
            if ((*copy_of)[fi] >= 0) continue;
            if (first_kept < 0) first_kept = fi;
            else {
                (*clash)[fi] = first_kept;
                if ((*clash)[first_kept] < 0) (*clash)[first_kept] = fi;
            }
        }
    }
    free(r), free(ff), free(tail);
    return AAC_OK;
}

/* One warning per copy of this series' files, naming both; one per clash (different images
 * under one SOP Instance UID), naming both and their series. */
static void warn_copies(const aac_scan *s, dcm_series *ser, const int *copy_head, const int *next_copy,
                        const int *clash) {
    int n = 0, n_clash = 0, last = -1;
    for (int i = 0; i < ser->n_frames; i++) {
        const int fi = s->frames[ser->frames[i]].file;
        if (fi == last) continue;
        last = fi;
        for (int c = copy_head[fi]; c >= 0; c = next_copy[c])
            if (++n <= MAX_NAMED)
                strlist_addf(&ser->warnings, 1,
                             "duplicate instance: %s and %s hold the same SOP Instance UID %s; read once, "
                             "from the first",
                             s->files[fi].path, s->files[c].path, s->files[fi].sop_uid);
        const int c = clash[fi];
        int pair_seen = 0; /* both files in this series: say it once */
        for (int k = 0; c >= 0 && c < fi && k < ser->n_frames && !pair_seen; k++)
            pair_seen = s->frames[ser->frames[k]].file == c;
        if (c >= 0 && !pair_seen && ++n_clash <= MAX_NAMED) {
            const dcm_file *a = &s->files[fi], *b = &s->files[c];
            if (strcmp(a->series_uid, b->series_uid) || a->series_number != b->series_number)
                strlist_addf(&ser->warnings, 1,
                             "SOP Instance UID clash: %s and %s (series %d %s and %d %s) are different images with "
                             "the same SOP Instance UID %s; both kept, but results that reference it are ambiguous",
                             a->path, b->path, a->series_number, a->series_uid, b->series_number, b->series_uid,
                             a->sop_uid);
            else
                strlist_addf(&ser->warnings, 1,
                             "SOP Instance UID clash: %s and %s are different images of this series (instance "
                             "numbers %d and %d) with the same SOP Instance UID %s; both kept, but results that "
                             "reference it are ambiguous",
                             a->path, b->path, a->instance_number, b->instance_number, a->sop_uid);
        }
    }
    if (n > MAX_NAMED)
        strlist_addf(&ser->warnings, 1, "duplicate instance: %d more files are copies of instances already read",
                     n - MAX_NAMED);
    if (n_clash > MAX_NAMED)
        strlist_addf(&ser->warnings, 1, "SOP Instance UID clash: %d more images share a UID with another image",
                     n_clash - MAX_NAMED);
}

/* Echo number of group j when its images carry none but parts of its series differ in echo
 * time: the rank of its echo time among them (1 = shortest), 0 when they do not differ. */
static int echo_rank(const aac_scan *s, const group *g, int ng, int j) {
    const dcm_frame *rj = &s->frames[g[j].rep];
    if (!(rj->echo_time > 0)) return 0;
    int shorter = 0, other = 0;
    for (int q = 0; q < ng; q++) {
        const dcm_frame *rq = &s->frames[g[q].rep];
        if (split_reason(s, rq, rj, 1) || !(rq->echo_time > 0) || fabs(rq->echo_time - rj->echo_time) <= ECHO_TOL)
            continue;
        other = 1;
        /* distinct shorter times: count each once, at its first group */
        int seen = 0;
        for (int p = 0; p < q && !seen; p++) {
            const dcm_frame *rp = &s->frames[g[p].rep];
            seen = !split_reason(s, rp, rj, 1) && fabs(rp->echo_time - rq->echo_time) <= ECHO_TOL;
        }
        if (!seen && rq->echo_time < rj->echo_time) shorter++;
    }
    return other ? shorter + 1 : 0;
}

aac_status series_build(aac_scan *s, aac_error *err) {
    group *g = NULL;
    int ng = 0, capg = 0;
    int *copy_of = NULL, *copy_head = NULL, *next_copy = NULL, *clash = NULL;
    aac_status st = AAC_OK;
    inst_index ix = {0};
    if (find_copies(s, &copy_of, &copy_head, &next_copy, &clash) != AAC_OK ||
        !(ix.r = malloc(((size_t)s->n_files + 1) * sizeof *ix.r)))
        st = aac_fail(err, AAC_ERR_NOMEM, "out of memory grouping series");
    for (int i = 0; i < s->n_frames && st == AAC_OK; i++) /* files with frames, once each */
        if (copy_of[s->frames[i].file] < 0 && (i == 0 || s->frames[i - 1].file != s->frames[i].file))
            ix.r[ix.n++].f = &s->files[s->frames[i].file];
    if (st == AAC_OK) qsort(ix.r, ix.n, sizeof *ix.r, cmp_inst);
    for (int i = 0; i < s->n_frames && st == AAC_OK; i++) {
        if (copy_of[s->frames[i].file] >= 0) continue; /* read once: the first file holding it */
        int j = ng - 1; /* most frames join the group of the frame before: try it first */
        if (j < 0 || split_reason(s, &s->frames[g[j].rep], &s->frames[i], 0)) {
            for (j = 0; j < ng; j++)
                if (!split_reason(s, &s->frames[g[j].rep], &s->frames[i], 0)) break;
        }
        if (j == ng) {
            if (ng == MAX_SERIES) {
                st = aac_fail(err, AAC_ERR_UNSUPPORTED, "more than %d series in one scan", MAX_SERIES);
                break;
            }
            if (ng == capg) {
                capg = capg ? 2 * capg : 16;
                group *p = realloc(g, (size_t)capg * sizeof *p);
                if (!p) {
                    st = aac_fail(err, AAC_ERR_NOMEM, "out of memory grouping series");
                    break;
                }
                g = p;
            }
            memset(&g[ng], 0, sizeof g[ng]);
            g[ng].rep = i;
            ng++;
        }
        if (push(&g[j], i)) st = aac_fail(err, AAC_ERR_NOMEM, "out of memory grouping series");
    }
    if (st == AAC_OK && (ng || s->n_volume_files)) {
        s->series = calloc((size_t)ng + (size_t)s->n_volume_files, sizeof *s->series);
        if (!s->series) st = aac_fail(err, AAC_ERR_NOMEM, "out of memory grouping series");
    }
    for (int j = 0; j < ng && st == AAC_OK; j++) {
        dcm_series *ser = &s->series[s->n_series++];
        ser->frames = g[j].idx;
        ser->n_frames = g[j].n;
        g[j].idx = NULL;
        /* Parts of one SeriesInstanceUID: number them and say why they were split. */
        int part = 0, first = -1, count = 0;
        for (int q = 0; q < ng; q++)
            if (!split_reason(s, &s->frames[g[q].rep], &s->frames[g[j].rep], 1)) {
                if (first < 0) first = q;
                if (q <= j) part++;
                count++;
            }
        fill_info(s, ser, count > 1 ? part : 0);
        if (count > 1 && !ser->info.echo_number) ser->info.echo_number = echo_rank(s, g, ng, j);
        if (count > 1 && first != j)
            strlist_addf(&ser->warnings, 1, "SeriesInstanceUID split: this part differs from part 1 in %s",
                         split_reason(s, &s->frames[g[first].rep], &s->frames[g[j].rep], 0));
        warn_copies(s, ser, copy_head, next_copy, clash);
        st = layout(s, ser, &ix, err);
        if (st != AAC_OK) break;
        ser->info.n_files = count_files(s, ser);
        ser->info.first_file = s->files[s->frames[ser->order[0]].file].path;
        ser->info.warnings = ser->warnings.items;
        ser->info.n_warnings = ser->warnings.n;
    }
    for (int j = 0; j < ng; j++) free(g[j].idx);
    free(g);
    free(copy_of);
    free(copy_head);
    free(next_copy);
    free(clash);
    free(ix.r);
    if (st == AAC_OK && s->n_series > 1) {
        qsort(s->series, (size_t)s->n_series, sizeof *s->series, cmp_series);
        /* qsort moved the structs; the info's pointers into them are still valid (heap). */
    }
    /* Volume files follow the DICOM series, in walk order; one that ITK cannot read is a note. */
    for (int i = 0; i < s->n_volume_files && st == AAC_OK && s->series; i++) {
        dcm_series *ser = &s->series[s->n_series];
        memset(ser, 0, sizeof *ser);
        aac_error e = {0};
        if (itk_read_info(s->volume_files[i], &ser->info, &e) != AAC_OK) {
            strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s", e.message);
            continue;
        }
        ser->volume_path = s->volume_files[i];
        ser->info.first_file = ser->volume_path;
        ser->info.n_files = 1;
        for (int a = 0; a < 3; a++) ser->info.nifti_axes[a] = a + 1;
        /* nifti_origin / nifti_spacing unused for volume files (convert writes them as read) */
        ser->info.series_number = -1;
        s->n_series++;
    }
    return st;
}
