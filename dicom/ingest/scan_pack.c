/* scan_pack.c - one series of a scan as bytes, and back: what another process of the same run
 * (an MPI rank) needs to load it exactly as the scanning process would, without scanning the
 * inputs again: its files' headers, its frames, its layout and its warnings.
 *
 * The structs travel as they are in memory (pointers replaced by strings); the header records
 * their sizes and the byte order, and bytes from another build are refused, not converted.
 * Unpacking checks every count, index and frame geometry, so that loading the series cannot
 * read or write outside its buffers whatever the bytes say. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ingest.h"

static const char MAGIC[8] = "AACSER1";
enum { BYTE_ORDER_MARK = 0x01020304, MAX_COUNT = 1 << 24 };

typedef struct pack_head {
    char magic[8];
    uint32_t order_mark;
    uint32_t size_file, size_frame, size_info;
    int32_t index;           /* the series' index in the scanning process */
    int32_t n_files, n_frames, n_series_frames, n_slots, n_warnings;
    int32_t has_volume;
} pack_head;

/* ---------------------------------------------------------------- writing */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int failed;
} wbuf;

static void put(wbuf *b, const void *data, size_t len) {
    if (b->failed) return;
    if (b->n + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + len) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, data, len);
    b->n += len;
}

static void put_str(wbuf *b, const char *s) {
    const uint32_t len = s ? (uint32_t)strlen(s) : 0;
    put(b, &len, sizeof len);
    if (len) put(b, s, len);
}

aac_status aac_scan_pack(const aac_scan *s, int i, void **out, size_t *out_len, aac_error *err) {
    if (!s || !out || !out_len || i < 0 || i >= s->n_series)
        return aac_fail(err, AAC_ERR_ARG, "aac_scan_pack: no series %d", i);
    *out = NULL, *out_len = 0;
    const dcm_series *ser = &s->series[i];
    const int n_slots = ser->volume_path ? 0 : ser->info.dim[2] * ser->info.dim[3];
    /* the frames the series uses (its list and its layout), renumbered in scan order, and the
     * files they come from */
    int *frame_map = malloc(sizeof(int) * (size_t)(s->n_frames ? s->n_frames : 1));
    int *file_map = malloc(sizeof(int) * (size_t)(s->n_files ? s->n_files : 1));
    if (!frame_map || !file_map) {
        free(frame_map), free(file_map);
        return aac_fail(err, AAC_ERR_NOMEM, "aac_scan_pack: out of memory");
    }
    for (int k = 0; k < s->n_frames; k++) frame_map[k] = -1;
    for (int k = 0; k < s->n_files; k++) file_map[k] = -1;
    for (int k = 0; k < ser->n_frames; k++) frame_map[ser->frames[k]] = 0;
    for (int k = 0; k < n_slots; k++) frame_map[ser->order[k]] = 0;
    int n_frames = 0, n_files = 0;
    for (int k = 0; k < s->n_frames; k++)
        if (frame_map[k] == 0) {
            frame_map[k] = n_frames++;
            if (file_map[s->frames[k].file] < 0) file_map[s->frames[k].file] = 0;
        }
    for (int k = 0; k < s->n_files; k++)
        if (file_map[k] == 0) file_map[k] = n_files++;

    pack_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof h.magic);
    h.order_mark = BYTE_ORDER_MARK;
    h.size_file = sizeof(dcm_file), h.size_frame = sizeof(dcm_frame), h.size_info = sizeof(aac_series_info);
    h.index = i, h.n_files = n_files, h.n_frames = n_frames, h.n_series_frames = ser->n_frames;
    h.n_slots = n_slots, h.n_warnings = ser->warnings.n, h.has_volume = ser->volume_path != NULL;
    wbuf b = {0};
    put(&b, &h, sizeof h);
    aac_series_info info = ser->info;
    info.first_file = NULL, info.warnings = NULL;
    put(&b, &info, sizeof info);
    put(&b, ser->origin, sizeof ser->origin);
    put(&b, ser->spacing, sizeof ser->spacing);
    put(&b, ser->direction, sizeof ser->direction);
    put(&b, &ser->t_spacing, sizeof ser->t_spacing);
    for (int k = 0; k < ser->n_frames; k++) put(&b, &frame_map[ser->frames[k]], sizeof(int));
    for (int k = 0; k < n_slots; k++) put(&b, &frame_map[ser->order[k]], sizeof(int));
    for (int k = 0; k < s->n_frames; k++)
        if (frame_map[k] >= 0) {
            dcm_frame fr = s->frames[k];
            fr.file = file_map[fr.file];
            put(&b, &fr, sizeof fr);
        }
    for (int k = 0; k < s->n_files; k++)
        if (file_map[k] >= 0) {
            dcm_file f = s->files[k];
            f.path = NULL;
            put(&b, &f, sizeof f);
            put_str(&b, s->files[k].path);
        }
    for (int k = 0; k < ser->warnings.n; k++) put_str(&b, ser->warnings.items[k]);
    if (ser->volume_path) put_str(&b, ser->volume_path);
    free(frame_map), free(file_map);
    if (b.failed) {
        free(b.p);
        return aac_fail(err, AAC_ERR_NOMEM, "aac_scan_pack: out of memory");
    }
    *out = b.p, *out_len = b.n;
    return AAC_OK;
}

/* ---------------------------------------------------------------- reading */

typedef struct rbuf {
    const unsigned char *p;
    size_t n, at;
} rbuf;

static int get(rbuf *b, void *dst, size_t len) {
    if (len > b->n - b->at) return -1;
    memcpy(dst, b->p + b->at, len);
    b->at += len;
    return 0;
}

static char *get_str(rbuf *b) {
    uint32_t len;
    if (get(b, &len, sizeof len) || len > b->n - b->at) return NULL;
    char *s = malloc((size_t)len + 1);
    if (s) {
        memcpy(s, b->p + b->at, len);
        s[len] = '\0';
        b->at += len;
    }
    return s;
}

#define TERM(field) ((field)[sizeof(field) - 1] = '\0')

static void term_info(aac_series_info *in) {
    TERM(in->series_uid), TERM(in->study_uid), TERM(in->patient_id), TERM(in->modality), TERM(in->body_part);
    TERM(in->series_description), TERM(in->manufacturer), TERM(in->transfer_syntax), TERM(in->image_type);
}

static void term_file(dcm_file *f) {
    TERM(f->ts_uid), TERM(f->sop_class), TERM(f->sop_uid), TERM(f->series_uid), TERM(f->study_uid);
    TERM(f->for_uid), TERM(f->patient_id), TERM(f->series_desc), TERM(f->study_desc), TERM(f->manufacturer);
    TERM(f->image_type), TERM(f->modality), TERM(f->body_part), TERM(f->photometric), TERM(f->acquisition_time);
}

/* A file's pixel layout as the loader relies on it, checked as dcm_read_header checks it:
 * sizes in range whose product fits, consistent bit depths, a mosaic count that is one. */
static int file_ok(const dcm_file *f) {
    if (f->rows < 1 || f->cols < 1 || f->rows > 65535 || f->cols > 65535 || f->n_frames < 1 ||
        (f->spp != 1 && f->spp != 3) || f->mosaic_images < 0 || f->mosaic_images > 65535)
        return 0;
    if (f->bits_alloc != 8 && f->bits_alloc != 16 && f->bits_alloc != 32) return 0;
    if (f->bits_stored < 1 || f->bits_stored > f->bits_alloc || f->high_bit < f->bits_stored - 1 ||
        f->high_bit >= f->bits_alloc)
        return 0;
    const double n = (double)f->n_frames * f->rows * f->cols * f->spp;
    return n * 4 < (double)SIZE_MAX && n < 4e9;
}

/* A frame the layout places: inside its file, the series' slice size. */
static int frame_ok(const dcm_frame *fr, const dcm_file *f, const int dim[4]) {
    if (fr->rows != dim[1] || fr->cols != dim[0] || fr->frame < 0 || fr->frame >= f->n_frames) return 0;
    if (fr->tile < 0) return fr->rows <= f->rows && fr->cols <= f->cols;
    if (fr->tile >= f->mosaic_images) return 0;
    const int m = (int)ceil(sqrt((double)f->mosaic_images));
    return (fr->tile / m + 1) * fr->rows <= f->rows && (fr->tile % m + 1) * fr->cols <= f->cols;
}

static aac_status bad(aac_scan *s, aac_error *err, const char *why) {
    aac_scan_free(s);
    return aac_fail(err, AAC_ERR_FORMAT, "packed series: %s", why);
}

aac_status aac_scan_unpack(const void *data, size_t len, aac_scan **out, int *index, aac_error *err) {
    if (!data || !out) return aac_fail(err, AAC_ERR_ARG, "aac_scan_unpack: NULL argument");
    *out = NULL;
    rbuf b = {data, len, 0};
    pack_head h;
    if (get(&b, &h, sizeof h) || memcmp(h.magic, MAGIC, sizeof h.magic))
        return aac_fail(err, AAC_ERR_FORMAT, "packed series: not a packed series (%zu bytes)", len);
    if (h.order_mark != BYTE_ORDER_MARK || h.size_file != sizeof(dcm_file) || h.size_frame != sizeof(dcm_frame) ||
        h.size_info != sizeof(aac_series_info))
        return aac_fail(err, AAC_ERR_FORMAT, "packed series: written by a different build of aaclip (struct layout "
                                             "or byte order differs); every process of a run must run the same build");
    if (h.n_files < 0 || h.n_frames < 0 || h.n_series_frames < 0 || h.n_slots < 0 || h.n_warnings < 0 ||
        h.n_files > MAX_COUNT || h.n_frames > MAX_COUNT || h.n_series_frames > MAX_COUNT || h.n_slots > MAX_COUNT ||
        h.n_warnings > MAX_COUNT || (h.has_volume != 0 && h.has_volume != 1))
        return aac_fail(err, AAC_ERR_FORMAT, "packed series: counts out of range");
    aac_scan *s = calloc(1, sizeof *s);
    dcm_series *ser = s ? (s->series = calloc(1, sizeof *s->series)) : NULL;
    if (!ser) {
        aac_scan_free(s);
        return aac_fail(err, AAC_ERR_NOMEM, "aac_scan_unpack: out of memory");
    }
    s->n_series = 1;
    if (get(&b, &ser->info, sizeof ser->info) || get(&b, ser->origin, sizeof ser->origin) ||
        get(&b, ser->spacing, sizeof ser->spacing) || get(&b, ser->direction, sizeof ser->direction) ||
        get(&b, &ser->t_spacing, sizeof ser->t_spacing))
        return bad(s, err, "truncated");
    aac_series_info *in = &ser->info;
    in->first_file = NULL, in->warnings = NULL, in->n_warnings = 0;
    term_info(in);
    for (int a = 0; a < 4; a++)
        if (in->dim[a] < 1 || in->dim[a] > MAX_COUNT) return bad(s, err, "bad dimensions");
    if (!h.has_volume && ((int64_t)in->dim[2] * in->dim[3] != h.n_slots || !h.n_slots || !h.n_files))
        return bad(s, err, "layout does not match the dimensions");
    /* each list no longer than the bytes that remain could hold: no allocation from a lie */
    if ((size_t)h.n_series_frames + (size_t)h.n_slots > (len - b.at) / sizeof(int) ||
        (size_t)h.n_frames > (len - b.at) / sizeof(dcm_frame) || (size_t)h.n_files > (len - b.at) / sizeof(dcm_file))
        return bad(s, err, "truncated");
    ser->frames = malloc(sizeof(int) * (size_t)(h.n_series_frames ? h.n_series_frames : 1));
    ser->order = malloc(sizeof(int) * (size_t)(h.n_slots ? h.n_slots : 1));
    s->frames = malloc(sizeof(dcm_frame) * (size_t)(h.n_frames ? h.n_frames : 1));
    s->files = calloc((size_t)(h.n_files ? h.n_files : 1), sizeof(dcm_file));
    if (!ser->frames || !ser->order || !s->frames || !s->files) {
        aac_scan_free(s);
        return aac_fail(err, AAC_ERR_NOMEM, "aac_scan_unpack: out of memory");
    }
    ser->n_frames = h.n_series_frames;
    if (get(&b, ser->frames, sizeof(int) * (size_t)h.n_series_frames) ||
        get(&b, ser->order, sizeof(int) * (size_t)h.n_slots) ||
        get(&b, s->frames, sizeof(dcm_frame) * (size_t)h.n_frames))
        return bad(s, err, "truncated");
    s->n_frames = s->cap_frames = h.n_frames;
    for (int k = 0; k < h.n_series_frames; k++)
        if (ser->frames[k] < 0 || ser->frames[k] >= h.n_frames) return bad(s, err, "frame index out of range");
    for (int k = 0; k < h.n_slots; k++)
        if (ser->order[k] < 0 || ser->order[k] >= h.n_frames) return bad(s, err, "frame index out of range");
    for (int k = 0; k < h.n_frames; k++) {
        TERM(s->frames[k].frame_type);
        if (s->frames[k].file < 0 || s->frames[k].file >= h.n_files) return bad(s, err, "file index out of range");
    }
    for (int k = 0; k < h.n_files; k++) {
        dcm_file *f = &s->files[k];
        if (get(&b, f, sizeof *f)) return bad(s, err, "truncated");
        f->path = NULL;
        s->n_files = s->cap_files = k + 1;
        term_file(f);
        if (!(f->path = get_str(&b))) return bad(s, err, "truncated file name");
        if (!f->path[0] || !file_ok(f)) return bad(s, err, "file header out of range");
    }
    for (int k = 0; k < h.n_slots; k++) {
        const dcm_frame *fr = &s->frames[ser->order[k]];
        if (!frame_ok(fr, &s->files[fr->file], in->dim)) return bad(s, err, "frame geometry out of range");
    }
    for (int k = 0; k < h.n_warnings; k++) {
        char *w = get_str(&b);
        if (!w || strlist_addf(&ser->warnings, 1, "%s", w)) {
            free(w);
            return bad(s, err, "truncated warning");
        }
        free(w);
    }
    if (h.has_volume) {
        /* one string owned by the scan's volume file list, as aac_scan_paths keeps it */
        if (!(s->volume_files = calloc(1, sizeof(char *)))) return bad(s, err, "out of memory");
        s->n_volume_files = s->cap_volume_files = 1;
        if (!(s->volume_files[0] = get_str(&b)) || !s->volume_files[0][0])
            return bad(s, err, "truncated volume file name");
        ser->volume_path = s->volume_files[0];
        in->first_file = ser->volume_path;
    } else {
        in->first_file = s->files[s->frames[ser->order[0]].file].path;
    }
    if (b.at != len) return bad(s, err, "trailing bytes");
    in->warnings = ser->warnings.items;
    in->n_warnings = ser->warnings.n;
    if (index) *index = h.index;
    *out = s;
    return AAC_OK;
}
