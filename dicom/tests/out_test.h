/* out_test.h - helpers for the result-writer tests (test_out_*.c): loading a series, a
 * synthetic anomaly map (Gaussian blobs placed in patient space), a CT series written here
 * byte by byte (independent of DCMTK's writer: uneven spacing and gantry tilt on demand),
 * and running dciodvfy. */
#ifndef AAC_OUT_TEST_H
#define AAC_OUT_TEST_H
#include "dicom_test.h"

#include <math.h>
#include <stdint.h>

#include "aaclip_outputs.h"

#define OT_CHECK_PY AACLIP_DICOM_TESTS_DIR "/out_check.py"

/* First series of the DICOM files under path. */
static inline aac_volume *ot_load(const char *path) {
    const char *paths[] = {path};
    aac_scan *s = NULL;
    aac_volume *v = NULL;
    aac_error e = {0};
    CHECK_OK(aac_scan_paths(paths, 1, &s, &e), &e);
    CHECK(aac_scan_series_count(s) >= 1, "%s: no series", path);
    CHECK_OK(aac_scan_load(s, 0, &v, &e), &e);
    aac_scan_free(s);
    return v;
}

/* Map for volume t of v: base + sum of Gaussian blobs (centres as fractions of the in-plane size
 * and slice index, sigma in mm), evaluated at each voxel's LPS position on its own plane. */
typedef struct ot_blob { double fx, fy, fz, sigma_mm, height; } ot_blob;

static inline float *ot_blob_map(const aac_volume *v, int t, const ot_blob *b, int nb, double base) {
    const int X = v->dim[0], Y = v->dim[1], Z = v->dim[2];
    float *m = malloc((size_t)X * Y * Z * sizeof *m);
    for (int z = 0; z < Z; z++)
        for (int y = 0; y < Y; y++)
            for (int x = 0; x < X; x++) {
                double p[3], s = base;
                /* out_voxel_lps is internal; the same formula from the public fields: */
                if (v->slice_positions) {
                    const size_t k = (size_t)t * Z + z;
                    for (int a = 0; a < 3; a++)
                        p[a] = v->slice_positions[k][a] + v->slice_orientations[k][a] * v->spacing[0] * x +
                               v->slice_orientations[k][3 + a] * v->spacing[1] * y;
                } else {
                    for (int a = 0; a < 3; a++)
                        p[a] = v->origin[a] + v->direction[a * 3] * v->spacing[0] * x +
                               v->direction[a * 3 + 1] * v->spacing[1] * y + v->direction[a * 3 + 2] * v->spacing[2] * z;
                }
                for (int i = 0; i < nb; i++) {
                    double c[3];
                    const double cx = b[i].fx * (X - 1), cy = b[i].fy * (Y - 1);
                    const int cz = (int)lround(b[i].fz * (Z - 1));
                    if (v->slice_positions) {
                        const size_t k = (size_t)t * Z + cz;
                        for (int a = 0; a < 3; a++)
                            c[a] = v->slice_positions[k][a] + v->slice_orientations[k][a] * v->spacing[0] * cx +
                                   v->slice_orientations[k][3 + a] * v->spacing[1] * cy;
                    } else {
                        for (int a = 0; a < 3; a++)
                            c[a] = v->origin[a] + v->direction[a * 3] * v->spacing[0] * cx +
                                   v->direction[a * 3 + 1] * v->spacing[1] * cy +
                                   v->direction[a * 3 + 2] * v->spacing[2] * cz;
                    }
                    const double d2 = (p[0] - c[0]) * (p[0] - c[0]) + (p[1] - c[1]) * (p[1] - c[1]) +
                                      (p[2] - c[2]) * (p[2] - c[2]);
                    s += b[i].height * exp(-d2 / (2 * b[i].sigma_mm * b[i].sigma_mm));
                }
                m[((size_t)z * Y + y) * X + x] = (float)s;
            }
    return m;
}

/* ---- a CT series written by hand: explicit VR little endian, the CT Image IOD's attributes */
typedef struct ot_buf { uint8_t *p; size_t n, cap; } ot_buf;

static inline void ot_put(ot_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 1024;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static inline void ot_u16(ot_buf *b, unsigned v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; ot_put(b, x, 2); }
static inline void ot_u32(ot_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    ot_put(b, x, 4);
}
/* One element; strings are padded to even length (UI with NUL, others with a space). */
static inline void ot_el(ot_buf *b, unsigned g, unsigned e, const char *vr, const void *val, size_t len) {
    const int pad = len & 1;
    ot_u16(b, g);
    ot_u16(b, e);
    ot_put(b, vr, 2);
    if (!strcmp(vr, "OB") || !strcmp(vr, "OW") || !strcmp(vr, "SQ") || !strcmp(vr, "UN") || !strcmp(vr, "UT")) {
        ot_u16(b, 0);
        ot_u32(b, (uint32_t)(len + pad));
    } else {
        ot_u16(b, (unsigned)(len + pad));
    }
    ot_put(b, val, len);
    if (pad) ot_put(b, !strcmp(vr, "UI") || !strcmp(vr, "OB") ? "\0" : " ", 1);
}
static inline void ot_str(ot_buf *b, unsigned g, unsigned e, const char *vr, const char *s) {
    ot_el(b, g, e, vr, s, strlen(s));
}
static inline void ot_us(ot_buf *b, unsigned g, unsigned e, unsigned v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    ot_el(b, g, e, "US", x, 2);
}

typedef struct ot_ct {
    int n, rows, cols;
    double tilt_deg;          /* gantry tilt: column direction rotated about x */
    const double *z;          /* table positions of the slices (mm), n values */
    double ps;                /* pixel spacing */
    int nt;                   /* > 1: that many temporal positions of the n slices (a 4-D series,
                                 TemporalPositionIdentifier 1..nt, 2 s apart) */
} ot_ct;

/* Writes dir/ct_NNN.dcm; values are a smooth phantom in HU (changing a little over time). */
static inline void ot_write_ct(const char *dir, const ot_ct *c) {
    const char *study = "2.25.300000000000000000000000000000000001";
    const char *series = "2.25.300000000000000000000000000000000002";
    const char *for_uid = "2.25.300000000000000000000000000000000003";
    const double t = c->tilt_deg * 3.14159265358979323846 / 180.0;
    char iop[128], tilt[32], ps[64];
    snprintf(iop, sizeof iop, "1\\0\\0\\0\\%.10f\\%.10f", cos(t), sin(t));
    snprintf(tilt, sizeof tilt, "%g", c->tilt_deg);
    snprintf(ps, sizeof ps, "%g\\%g", c->ps, c->ps);
    const int nt = c->nt > 1 ? c->nt : 1;
    for (int kk = 0; kk < c->n * nt; kk++) {
        const int k = kk % c->n, tp = kk / c->n;
        char sop[80], ipp[96], inst[16], tpos[16], path[4096];
        snprintf(sop, sizeof sop, "2.25.300000000000000000000000000000001%03d", kk);
        snprintf(ipp, sizeof ipp, "%g\\%g\\%g", -0.5 * c->ps * c->cols, -0.5 * c->ps * c->rows, c->z[k]);
        snprintf(inst, sizeof inst, "%d", kk + 1);
        snprintf(tpos, sizeof tpos, "%d", tp + 1);
        ot_buf ds = {0}, meta = {0}, file = {0};
        ot_str(&ds, 0x0008, 0x0008, "CS", "ORIGINAL\\PRIMARY\\AXIAL");
        ot_str(&ds, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2");
        ot_str(&ds, 0x0008, 0x0018, "UI", sop);
        ot_str(&ds, 0x0008, 0x0020, "DA", "20240102");
        ot_str(&ds, 0x0008, 0x0030, "TM", "101500");
        ot_str(&ds, 0x0008, 0x0050, "SH", "ACC42");
        ot_str(&ds, 0x0008, 0x0060, "CS", "CT");
        ot_str(&ds, 0x0008, 0x0070, "LO", "aaclip test phantom");
        ot_str(&ds, 0x0008, 0x0090, "PN", "");
        ot_str(&ds, 0x0008, 0x103E, "LO", "tilted uneven phantom");
        ot_str(&ds, 0x0010, 0x0010, "PN", "Phantom^Tilted");
        ot_str(&ds, 0x0010, 0x0020, "LO", "AACLIP-T1");
        ot_str(&ds, 0x0010, 0x0030, "DA", "");
        ot_str(&ds, 0x0010, 0x0040, "CS", "O");
        ot_str(&ds, 0x0018, 0x0015, "CS", "ABDOMEN");
        ot_str(&ds, 0x0018, 0x0050, "DS", "2.5");
        ot_str(&ds, 0x0018, 0x0060, "DS", "120");
        if (nt > 1) ot_str(&ds, 0x0018, 0x0080, "DS", "2000");
        ot_str(&ds, 0x0018, 0x1120, "DS", tilt);
        ot_str(&ds, 0x0020, 0x000D, "UI", study);
        ot_str(&ds, 0x0020, 0x000E, "UI", series);
        ot_str(&ds, 0x0020, 0x0010, "SH", "1");
        ot_str(&ds, 0x0020, 0x0011, "IS", "7");
        ot_str(&ds, 0x0020, 0x0013, "IS", inst);
        ot_str(&ds, 0x0020, 0x0032, "DS", ipp);
        ot_str(&ds, 0x0020, 0x0037, "DS", iop);
        ot_str(&ds, 0x0020, 0x0052, "UI", for_uid);
        if (nt > 1) ot_str(&ds, 0x0020, 0x0100, "IS", tpos);
        ot_str(&ds, 0x0020, 0x1040, "LO", "");
        ot_us(&ds, 0x0028, 0x0002, 1);
        ot_str(&ds, 0x0028, 0x0004, "CS", "MONOCHROME2");
        ot_us(&ds, 0x0028, 0x0010, (unsigned)c->rows);
        ot_us(&ds, 0x0028, 0x0011, (unsigned)c->cols);
        ot_str(&ds, 0x0028, 0x0030, "DS", ps);
        ot_us(&ds, 0x0028, 0x0100, 16);
        ot_us(&ds, 0x0028, 0x0101, 16);
        ot_us(&ds, 0x0028, 0x0102, 15);
        ot_us(&ds, 0x0028, 0x0103, 1);
        ot_str(&ds, 0x0028, 0x1050, "DS", "40");
        ot_str(&ds, 0x0028, 0x1051, "DS", "400");
        ot_str(&ds, 0x0028, 0x1052, "DS", "-1024");
        ot_str(&ds, 0x0028, 0x1053, "DS", "1");
        int16_t *px = malloc((size_t)c->rows * c->cols * 2);
        for (int y = 0; y < c->rows; y++)
            for (int x = 0; x < c->cols; x++) {
                const double dx = x - c->cols / 2.0, dy = y - c->rows / 2.0;
                const double r2 = (dx * dx + dy * dy) / (0.16 * c->cols * c->cols);
                px[y * c->cols + x] = (int16_t)(r2 < 1 ? 1024 + 40 + 30 * sin(0.2 * x + k) + 5 * tp : 24);
            }
        ot_el(&ds, 0x7FE0, 0x0010, "OW", px, (size_t)c->rows * c->cols * 2);
        free(px);
        const uint8_t version[2] = {0, 1};
        ot_buf body = {0};
        ot_el(&body, 0x0002, 0x0001, "OB", version, 2);
        ot_str(&body, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.2");
        ot_str(&body, 0x0002, 0x0003, "UI", sop);
        ot_str(&body, 0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
        ot_str(&body, 0x0002, 0x0012, "UI", "2.25.300000000000000000000000000000000009");
        uint8_t gl[4] = {(uint8_t)body.n, (uint8_t)(body.n >> 8), (uint8_t)(body.n >> 16), (uint8_t)(body.n >> 24)};
        ot_el(&meta, 0x0002, 0x0000, "UL", gl, 4);
        ot_put(&meta, body.p, body.n);
        uint8_t pre[132] = {0};
        memcpy(pre + 128, "DICM", 4);
        ot_put(&file, pre, sizeof pre);
        ot_put(&file, meta.p, meta.n);
        ot_put(&file, ds.p, ds.n);
        snprintf(path, sizeof path, "%.4000s/ct_%03d.dcm", dir, kk);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(file.p, 1, file.n, f) == file.n, "cannot write %s", path);
        if (f) fclose(f);
        free(ds.p);
        free(meta.p);
        free(body.p);
        free(file.p);
    }
}

/* The DICOM sources every DICOM writer is checked on. In the repository: five slices of the
 * sample study (testdata/sample-study: a CT written with DCMTK; two blobs, default threshold),
 * a 4-D series written here (volume 1 scored, two thresholds) and a CT written here with a 20
 * degree gantry tilt and uneven table positions; with ../shared also the real CT of
 * dcmqi/ct-3slice and the GE fMRI series of dcm_qa_nih (4-D, volume 1, two thresholds).
 * Cases 0, 1, 2 are always the first three. */
#define OT_MAX_CASES 5
typedef struct ot_case {
    char name[32];
    char src[4096];
    int t;
    ot_blob blobs[2];
    int nb;
    double thr[2];
    int nthr;
} ot_case;

/* Slices first..first+n-1 of the sample study copied into a scratch folder. */
static inline const char *ot_sample_ct(const char *name, int first, int n) {
    const char *dir = dt_scratch(name);
    for (int k = first; k < first + n; k++)
        CHECK(dt_run("cp '%s/testdata/sample-study/dicom/IM%04d.dcm' '%s/'", AACLIP_SOURCE_DIR, k, dir) == 0,
              "copy sample slice %d", k);
    return dir;
}

static inline int ot_cases(ot_case c[OT_MAX_CASES]) {
    memset(c, 0, OT_MAX_CASES * sizeof *c);
    snprintf(c[0].name, sizeof c[0].name, "sample5");
    snprintf(c[0].src, sizeof c[0].src, "%s", ot_sample_ct("sample5_src", 14, 5));
    c[0].blobs[0] = (ot_blob){0.3, 0.45, 0.5, 18, 1.0};
    c[0].blobs[1] = (ot_blob){0.7, 0.6, 0.5, 12, 0.8};
    c[0].nb = 2;
    snprintf(c[1].name, sizeof c[1].name, "gen_4d");
    snprintf(c[1].src, sizeof c[1].src, "%s", dt_scratch("gen_4d_src"));
    static const double z4[] = {0, 4, 8, 12};
    const ot_ct ct4 = {.n = 4, .rows = 40, .cols = 56, .z = z4, .ps = 1.5, .nt = 3};
    ot_write_ct(c[1].src, &ct4);
    c[1].t = 1;
    c[1].blobs[0] = (ot_blob){0.5, 0.5, 0.5, 20, 1.0};
    c[1].nb = 1;
    c[1].thr[0] = 0.3;
    c[1].thr[1] = 0.7;
    c[1].nthr = 2;
    snprintf(c[2].name, sizeof c[2].name, "gen_tilt");
    snprintf(c[2].src, sizeof c[2].src, "%s", dt_scratch("gen_tilt_src"));
    static const double zs[] = {0, 2.5, 5, 8.75, 11.25, 13.75, 20};
    const ot_ct ct = {.n = 7, .rows = 48, .cols = 64, .tilt_deg = 20, .z = zs, .ps = 0.9};
    ot_write_ct(c[2].src, &ct);
    c[2].blobs[0] = (ot_blob){0.5, 0.5, 0.5, 6, 1.0};
    c[2].nb = 1;
    int n = 3;
    const char *ct3 = tu_shared_opt("dicom/dcmqi/ct-3slice"), *nih = tu_shared_opt("dicom/dcm_qa_nih/In/20180918GE/mr_0004");
    if (ct3) {
        snprintf(c[n].name, sizeof c[n].name, "ct3");
        snprintf(c[n].src, sizeof c[n].src, "%s", ct3);
        c[n].blobs[0] = (ot_blob){0.3, 0.45, 0.5, 18, 1.0};
        c[n].blobs[1] = (ot_blob){0.7, 0.6, 0.5, 12, 0.8};
        c[n].nb = 2;
        n++;
    }
    if (nih) {
        snprintf(c[n].name, sizeof c[n].name, "nih_ge");
        snprintf(c[n].src, sizeof c[n].src, "%s", nih);
        c[n].t = 1;
        c[n].blobs[0] = (ot_blob){0.5, 0.5, 0.5, 20, 1.0};
        c[n].nb = 1;
        c[n].thr[0] = 0.3;
        c[n].thr[1] = 0.7;
        c[n].nthr = 2;
        n++;
    }
    return n;
}

/* Loads a case's source and fills r (map malloc'ed: free(r->map) and aac_volume_free). */
static inline void ot_results(const ot_case *c, aac_results *r) {
    aac_volume *v = ot_load(c->src);
    memset(r, 0, sizeof *r);
    r->source = v;
    r->t = c->t;
    r->map = ot_blob_map(v, c->t, c->blobs, c->nb, 0.1);
    r->series_score = NAN;
    r->n_thresholds = c->nthr;
    for (int i = 0; i < c->nthr; i++) r->thresholds[i] = c->thr[i];
}

static inline void ot_results_free(aac_results *r) {
    free((float *)r->map);
    aac_volume_free((aac_volume *)r->source);
}

/* Runs dciodvfy on path: fails on any "Error" line, prints the warnings; returns the number
 * of warnings (-1: dciodvfy missing, test skipped by the caller). */
static inline int ot_dciodvfy(const char *path, int *errors) {
    static char buf[1 << 20];
    if (dt_run("command -v dciodvfy >/dev/null 2>&1") != 0) return -1;
    dt_capture(buf, sizeof buf, "dciodvfy '%s'", path);
    int w = 0, e = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "Error", 5)) {
            e++;
            fprintf(stderr, "dciodvfy %s: %s\n", path, line);
        } else if (!strncmp(line, "Warning", 7)) {
            w++;
            printf("  dciodvfy warning: %s\n", line);
        }
    }
    *errors = e;
    printf("dciodvfy %s: %d errors, %d warnings\n", path, e, w);
    return w;
}
#endif
