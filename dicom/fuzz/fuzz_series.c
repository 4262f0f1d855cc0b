/* fuzz_series.c - libFuzzer target for grouping and geometry (series.c) without DCMTK: the
 * input is read as a description of up to 8 files and 48 frames (UIDs drawn from small sets
 * so that copies, splits and shared positions are common; positions and orientations either
 * on a grid or any finite double, as dcm_header.cpp lets through). series_build must either
 * fail with a message or lay out series whose slots all hold frames of the series, with the
 * announced dimensions and finite geometry. */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ingest.h"

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned u8(reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static double any_double(reader *r) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | u8(r);
    double d;
    memcpy(&d, &u, sizeof d);
    return isfinite(d) ? d : 0.0; /* the header wrapper keeps only finite values */
}

static const double kIop[5][6] = {{1, 0, 0, 0, 1, 0},     {1, 0, 0, 0, 0, -1},        {0, 1, 0, 0, 0, -1},
                                  {1, 0, 0, 0, 0.966, 0.259}, {0.9, 0.1, 0.3, -0.2, 0.8, 0.4}};
static const char *const kTypes[3] = {"", "M\\ND", "P\\ND"};
static const char *const kTimes[3] = {"", "101010", "101011.5"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    reader r = {data, size};
    aac_scan *s = calloc(1, sizeof *s);
    if (!s) abort();
    const int n_files = 1 + (int)(u8(&r) % 8);
    s->files = calloc((size_t)n_files, sizeof *s->files);
    if (!s->files) abort();
    for (int i = 0; i < n_files; i++) {
        dcm_file *f = &s->files[i];
        const unsigned a = u8(&r), b = u8(&r), c = u8(&r);
        char path[32];
        snprintf(path, sizeof path, "f%d.dcm", i);
        f->path = strdup(path);
        snprintf(f->sop_uid, sizeof f->sop_uid, "1.2.3.%u", a % 6);
        snprintf(f->series_uid, sizeof f->series_uid, "1.2.4.%u", (a >> 3) % 3);
        snprintf(f->study_uid, sizeof f->study_uid, "1.2.5.%u", (a >> 5) % 2);
        f->series_number = (int)(b % 3) - 1;
        f->instance_number = (int8_t)u8(&r);
        f->acquisition_number = (int)((b >> 2) % 3);
        snprintf(f->acquisition_time, sizeof f->acquisition_time, "%s", kTimes[(b >> 4) % 3]);
        f->n_frames = 1 + (int)(c % 4);
        f->enhanced = (c >> 2) & 1;
        f->rows = f->cols = 8;
        f->spp = 1;
        f->bits_alloc = f->bits_stored = 16;
        f->high_bit = 15;
        f->slice_spacing = (c >> 3) % 4 == 0 ? any_double(&r) : (c >> 3) % 4;
        f->slice_thickness = (c >> 5) % 3;
        f->repetition_time = (c >> 7) ? 2000 : 0;
        if (!geom_spacing_ok(f->slice_spacing)) f->slice_spacing = 0;
        s->n_files++;
        for (int k = 0; k < f->n_frames && s->n_frames < 48; k++) {
            dcm_frame fr;
            memset(&fr, 0, sizeof fr);
            const unsigned m = u8(&r), g = u8(&r);
            fr.file = i;
            fr.frame = k;
            fr.tile = -1;
            fr.rows = m & 1 ? 8 : 16;
            fr.cols = 8;
            fr.has_ipp = (m >> 1 & 3) != 0;
            fr.has_iop = (m >> 3 & 3) != 0;
            fr.has_ps = (m >> 5 & 1) == 0;
            if ((m >> 1 & 3) == 3) {
                for (int a2 = 0; a2 < 3; a2++) fr.ipp[a2] = any_double(&r);
            } else {
                fr.ipp[0] = (int8_t)u8(&r) * 0.5;
                fr.ipp[1] = (int8_t)u8(&r) * 0.5;
                fr.ipp[2] = (int8_t)g * 0.25;
            }
            if ((m >> 3 & 3) == 3) {
                for (int a2 = 0; a2 < 6; a2++) fr.iop[a2] = any_double(&r);
            } else {
                memcpy(fr.iop, kIop[(m >> 3 & 3) + (g & 1) * 2], sizeof fr.iop);
            }
            fr.ps[0] = fr.ps[1] = (m >> 6) == 3 ? any_double(&r) : 0.5 + (m >> 6);
            /* what dcm_header.cpp keeps */
            fr.has_ipp = fr.has_ipp && geom_position_ok(fr.ipp);
            fr.has_iop = fr.has_iop && geom_orientation_ok(fr.iop);
            fr.has_ps = fr.has_ps && geom_spacing_ok(fr.ps[0]);
            fr.slope = 1;
            fr.temporal = (int)(g >> 1) % 4;
            fr.echo_number = (int)(g >> 3) % 3;
            snprintf(fr.frame_type, sizeof fr.frame_type, "%s", kTypes[(g >> 5) % 3]);
            fr.thickness = (g >> 7) ? 2.5 : 0;
            if (scan_add_frame(s, &fr)) abort();
        }
    }
    aac_error e = {0};
    aac_status st = series_build(s, &e);
    if (st != AAC_OK) {
        fz_check_error(st, &e);
    } else {
        for (int i = 0; i < s->n_series; i++) {
            const dcm_series *ser = &s->series[i];
            const int *d = ser->info.dim;
            for (int a = 0; a < 4; a++) FZ_ASSERT(d[a] >= 1);
            FZ_ASSERT(ser->n_frames >= 1 && ser->order != NULL);
            FZ_ASSERT(ser->info.n_files >= 1 && ser->info.first_file != NULL);
            FZ_ASSERT((long long)d[2] * d[3] <= ser->n_frames);
            for (int k = 0; k < d[2] * d[3]; k++) {
                const int fi = ser->order[k];
                FZ_ASSERT(fi >= 0 && fi < s->n_frames);
                int found = 0;
                for (int q = 0; q < ser->n_frames && !found; q++) found = ser->frames[q] == fi;
                FZ_ASSERT(found);
                FZ_ASSERT(s->frames[fi].rows == d[1] && s->frames[fi].cols == d[0]);
            }
            for (int a = 0; a < 3; a++) {
                FZ_ASSERT(isfinite(ser->spacing[a]) && ser->spacing[a] > 0 && isfinite(ser->origin[a]));
                FZ_ASSERT(isfinite(ser->direction[3 * a]) && isfinite(ser->direction[3 * a + 1]) &&
                          isfinite(ser->direction[3 * a + 2]));
            }
            for (int w = 0; w < ser->warnings.n; w++) FZ_ASSERT(ser->warnings.items[w][0]);
        }
    }
    aac_scan_free(s);
    return 0;
}
