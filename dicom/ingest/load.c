/* load.c - decoding one laid-out series into an aac_volume: file by file (each file is read
 * once, whatever its number of frames or tiles), rescaled per frame into float32. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest.h"

typedef struct slot_ref { int file, slot; } slot_ref;

static int cmp_slot(const void *pa, const void *pb) {
    const slot_ref *a = pa, *b = pb;
    if (a->file != b->file) return (a->file > b->file) - (a->file < b->file);
    return (a->slot > b->slot) - (a->slot < b->slot);
}

/* One 2-D frame (or mosaic tile) of decoded stored values into dst [rows * cols]. Colour
 * becomes its Rec. 601 luma: computed from RGB, or Y itself for Y, Cb, Cr samples (y_grey). */
static void copy_frame(const dcm_file *f, const dcm_frame *fr, const int32_t *buf, int y_grey, float *dst) {
    const size_t plane = (size_t)f->rows * f->cols * f->spp;
    const int32_t *src = buf + (size_t)fr->frame * plane;
    int r0 = 0, c0 = 0;
    if (fr->tile >= 0) {
        int m = (int)ceil(sqrt((double)f->mosaic_images));
        r0 = (fr->tile / m) * fr->rows;
        c0 = (fr->tile % m) * fr->cols;
    }
    /* MONOCHROME1: low values are bright. Invert the stored value over its range so that, as
     * for every other image, larger means brighter; the rescale then applies as usual. */
    const int mono1 = !strcmp(f->photometric, "MONOCHROME1");
    const double top = f->pixel_rep ? -1.0 : ldexp(1.0, f->bits_stored) - 1.0;
    for (int y = 0; y < fr->rows; y++) {
        const int32_t *row = src + ((size_t)(r0 + y) * f->cols + c0) * f->spp;
        float *out = dst + (size_t)y * fr->cols;
        for (int x = 0; x < fr->cols; x++) {
            double v;
            if (f->spp == 3 && y_grey) v = row[3 * x];
            else if (f->spp == 3) /* colour to luma (Rec. 601), the model sees grey */
                v = 0.299 * row[3 * x] + 0.587 * row[3 * x + 1] + 0.114 * row[3 * x + 2];
            else
                v = row[x];
            if (f->pixel_rep == 0 && f->bits_stored == 32) v = (double)(uint32_t)row[x];
            if (mono1) v = top - v;
            out[x] = (float)(v * fr->slope + fr->intercept);
        }
    }
}

/* The plane of slot `slot` as its frame states it; the laid-out grid where it does not. */
static void slice_plane(aac_volume *v, const dcm_frame *fr, int slot) {
    const int z = slot % v->dim[2];
    for (int a = 0; a < 3; a++) {
        v->slice_positions[slot][a] =
            fr->has_ipp ? fr->ipp[a] : v->origin[a] + v->direction[a * 3 + 2] * v->spacing[2] * z;
        v->slice_orientations[slot][a] = fr->has_iop ? fr->iop[a] : v->direction[a * 3];
        v->slice_orientations[slot][3 + a] = fr->has_iop ? fr->iop[3 + a] : v->direction[a * 3 + 1];
    }
}

static void fill_meta(aac_volume *v, const dcm_series *ser, const dcm_file *f) {
    memcpy(v->dim, ser->info.dim, sizeof v->dim);
    memcpy(v->origin, ser->origin, sizeof v->origin);
    memcpy(v->spacing, ser->spacing, sizeof v->spacing);
    memcpy(v->direction, ser->direction, sizeof v->direction);
    v->t_spacing = ser->t_spacing;
    memcpy(v->modality, f->modality, sizeof v->modality);
    memcpy(v->body_part, f->body_part, sizeof v->body_part);
    memcpy(v->series_uid, f->series_uid, sizeof v->series_uid);
    memcpy(v->study_uid, f->study_uid, sizeof v->study_uid);
    memcpy(v->frame_of_reference_uid, f->for_uid, sizeof v->frame_of_reference_uid);
    memcpy(v->patient_id, f->patient_id, sizeof v->patient_id);
    memcpy(v->series_description, f->series_desc, sizeof v->series_description);
    memcpy(v->study_description, f->study_desc, sizeof v->study_description);
    memcpy(v->manufacturer, f->manufacturer, sizeof v->manufacturer);
    memcpy(v->transfer_syntax, f->ts_uid, sizeof v->transfer_syntax);
    v->series_number = f->series_number;
    copy_trim(v->source, sizeof v->source, f->path);
}

aac_status aac_scan_load(const aac_scan *s, int i, aac_volume **out, aac_error *err) {
    if (!s || !out || i < 0 || i >= s->n_series)
        return aac_fail(err, AAC_ERR_ARG, "aac_scan_load: no series %d", i);
    *out = NULL;
    const dcm_series *ser = &s->series[i];
    if (ser->volume_path) return aac_volume_read(ser->volume_path, out, err);
    const int *d = ser->info.dim;
    const size_t nslots = (size_t)d[2] * d[3], plane = (size_t)d[0] * d[1];
    const dcm_file *rf = &s->files[s->frames[ser->order[0]].file];
    if (plane && nslots > SIZE_MAX / sizeof(float) / plane)
        return aac_fail(err, AAC_ERR_NOMEM, "%s: series too large", rf->path);
    /* Compressed pixel data can promise any size: refuse before allocating what the headers
     * promise (the voxels, and the largest file's decoded values twice: raw and unpacked). */
    double most = 0; /* in double: frames x rows x columns x bytes can pass 2^64 */
    for (int k = 0; k < ser->n_frames; k++) {
        const dcm_file *f = &s->files[s->frames[ser->frames[k]].file];
        const double need = (double)f->n_frames * f->rows * f->cols * f->spp * (sizeof(int32_t) + f->bits_alloc / 8);
        if (need > most) most = need;
    }
    const double budget = (double)vol_memory_budget(), want = (double)nslots * plane * sizeof(float) + most;
    if (want > budget)
        return aac_fail(err, AAC_ERR_NOMEM,
                        "%s: a %d x %d x %d x %d series needs %.0f MiB to decode, more than the memory budget of "
                        "%.0f MiB (half the physical memory; AACLIP_MAX_VOLUME_MB sets it)",
                        rf->path, d[0], d[1], d[2], d[3], want / 1048576.0, budget / 1048576.0);
    aac_volume *v = calloc(1, sizeof *v);
    slot_ref *refs = malloc(nslots * sizeof *refs);
    strlist warn = {0};
    aac_status st = AAC_OK;
    int32_t *buf = NULL;
    size_t buf_n = 0;
    if (!v || !refs || !(v->voxels = malloc(nslots * plane * sizeof(float))) ||
        !(v->slice_uids = calloc(nslots, sizeof *v->slice_uids)) ||
        !(v->slice_frames = calloc(nslots, sizeof *v->slice_frames)) ||
        !(v->slice_paths = calloc(nslots, sizeof *v->slice_paths)) ||
        !(v->slice_sop_classes = calloc(nslots, sizeof *v->slice_sop_classes)) ||
        !(v->slice_positions = calloc(nslots, sizeof *v->slice_positions)) ||
        !(v->slice_orientations = calloc(nslots, sizeof *v->slice_orientations))) {
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory for a %d x %d x %d x %d volume", rf->path,
                      d[0], d[1], d[2], d[3]);
        goto done;
    }
    fill_meta(v, ser, rf);
    v->slice_thickness = s->frames[ser->order[0]].thickness; /* per-frame groups win */
    for (int w = 0; w < ser->warnings.n; w++) strlist_addf(&warn, 1, "%s", ser->warnings.items[w]);
    for (size_t k = 0; k < nslots; k++) {
        refs[k].file = s->frames[ser->order[k]].file;
        refs[k].slot = (int)k;
    }
    qsort(refs, nslots, sizeof *refs, cmp_slot);
    int colour = 0, mono1 = 0;
    for (size_t k = 0; k < nslots && st == AAC_OK;) {
        const dcm_file *f = &s->files[refs[k].file];
        const size_t need = (size_t)f->n_frames * f->rows * f->cols * f->spp;
        if (need > buf_n) {
            free(buf);
            buf_n = 0;
            if (!(buf = malloc(need * sizeof *buf))) {
                st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory decoding", f->path);
                break;
            }
            buf_n = need;
        }
        int y_grey = 0;
        st = dcm_read_pixels(f, buf, &y_grey, err);
        for (; k < nslots && refs[k].file == (int)(f - s->files) && st == AAC_OK; k++) {
            const int slot = refs[k].slot;
            const dcm_frame *fr = &s->frames[ser->order[slot]];
            copy_frame(f, fr, buf, y_grey, v->voxels + (size_t)slot * plane);
            memcpy(v->slice_uids[slot], f->sop_uid, AAC_UID_LEN);
            v->slice_frames[slot] = f->n_frames > 1 || f->enhanced ? fr->frame + 1 : 0;
            if (!(v->slice_paths[slot] = strdup(f->path))) {
                st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", f->path);
                break;
            }
            memcpy(v->slice_sop_classes[slot], f->sop_class, AAC_UID_LEN);
            slice_plane(v, fr, slot);
        }
        colour |= f->spp == 3;
        mono1 |= !strcmp(f->photometric, "MONOCHROME1");
    }
    if (st != AAC_OK) goto done;
    if (colour) strlist_addf(&warn, 1, "colour images converted to grey (Rec. 601 luma)");
    if (mono1) strlist_addf(&warn, 1, "MONOCHROME1: stored values inverted so that larger means brighter");
    if (strlist_copy(&warn, &v->warnings, &v->n_warnings))
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", rf->path);
done:
    free(buf);
    free(refs);
    strlist_free(&warn);
    if (st != AAC_OK) {
        aac_volume_free(v);
        return st;
    }
    *out = v;
    return AAC_OK;
}
