/* fuzz_volume.h - the body of the NIfTI, NRRD and MetaImage fuzz targets: the input becomes
 * <scratch>/vol/in<ext> next to two data files a detached header may name (data.raw: 4 KiB of
 * bytes; data.zraw: the same zlib-compressed), then goes through the header check
 * (volume_check.c) and ITK (itk_io.cpp), directly and through a scan. Whatever loads must be
 * what the header check let through: at least one voxel, finite positive spacing, finite
 * origin, an orthonormal direction. */
#ifndef AAC_FUZZ_VOLUME_H
#define AAC_FUZZ_VOLUME_H
#include <math.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "ingest.h"

static void fz_volume_fixture(void) {
    static int done; /* fuzzer-only state: the data files are written once */
    if (done) return;
    uint8_t raw[4096];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (uint8_t)(i * 7 + (i >> 8));
    fz_write("vol/data.raw", raw, sizeof raw);
    uint8_t z[8192];
    uLongf zn = sizeof z;
    if (compress(z, &zn, raw, sizeof raw) != Z_OK) abort();
    fz_write("vol/data.zraw", z, zn);
    done = 1;
}

static void fz_check_volume(const aac_volume *v) {
    for (int a = 0; a < 4; a++) FZ_ASSERT(v->dim[a] >= 1);
    for (int a = 0; a < 3; a++) {
        FZ_ASSERT(isfinite(v->spacing[a]) && v->spacing[a] > 0);
        FZ_ASSERT(isfinite(v->origin[a]));
        double n = 0;
        for (int r = 0; r < 3; r++) {
            FZ_ASSERT(isfinite(v->direction[r * 3 + a]));
            n += v->direction[r * 3 + a] * v->direction[r * 3 + a];
        }
        FZ_ASSERT(fabs(n - 1) < 1e-3);
        for (int b = a + 1; b < 3; b++) {
            double dot = 0;
            for (int r = 0; r < 3; r++) dot += v->direction[r * 3 + a] * v->direction[r * 3 + b];
            FZ_ASSERT(fabs(dot) < 2e-3);
        }
    }
    const size_t n = aac_volume_voxel_count(v);
    volatile float sink = 0;
    for (size_t k = 0; k < n; k++) sink += v->voxels[k];
    (void)sink;
}

static int fz_volume_input(const char *ext, const uint8_t *data, size_t size) {
    fz_volume_fixture();
    char name[64];
    snprintf(name, sizeof name, "vol/in%s", ext);
    const char *path = fz_write(name, data, size);
    aac_volume *v = NULL;
    aac_error e = {0};
    aac_status st = aac_volume_read(path, &v, &e);
    if (st == AAC_OK) {
        fz_check_volume(v);
        aac_volume_free(v);
    } else {
        fz_check_error(st, &e);
        FZ_ASSERT(v == NULL);
    }
    const char *paths[] = {path};
    fz_scan_load(paths, 1);
    return 0;
}
#endif
