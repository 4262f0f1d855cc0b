/* fuzz_csa.c - libFuzzer target for the Siemens CSA header parser (csa.c) and the mosaic
 * split (mosaic.c). The input is a CSA header (CSA1 or "SV10" CSA2) after a 12-byte prefix
 * that describes the image holding it: rows, columns, frames, samples per pixel, spacing and
 * orientation. Whatever csa_parse returns, mosaic_expand must either refuse or give tiles that
 * lie inside the stored frame, as load.c's copy relies on. */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv in fuzz_util.h */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ingest.h"

static const double kIop[4][6] = {
    {1, 0, 0, 0, 1, 0}, {1, 0, 0, 0, 0, -1}, {0, 1, 0, 0, 0, -1}, {0.9, 0.1, 0.3, -0.2, 0.8, 0.4}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 12) return 0;
    const uint8_t *h = data;
    data += 12;
    size -= 12;
    int n_mosaic = 0, has_normal = 0;
    double normal[3] = {0, 0, 0};
    csa_parse(data, size, &n_mosaic, &has_normal, normal);
    FZ_ASSERT(n_mosaic >= 0 && n_mosaic < 4096);
    if (n_mosaic == 0) return 0;

    aac_scan s;
    memset(&s, 0, sizeof s);
    dcm_file f;
    memset(&f, 0, sizeof f);
    f.rows = 1 + (h[0] | h[1] << 8) % 2048;
    f.cols = 1 + (h[2] | h[3] << 8) % 2048;
    f.n_frames = 1 + h[4] % 4;
    f.spp = h[5] & 1 ? 3 : 1;
    f.slice_spacing = (h[6] & 0x7F) / 16.0;
    f.slice_thickness = (h[7] & 0x7F) / 8.0;
    f.mosaic_images = n_mosaic;
    f.has_csa_normal = has_normal;
    memcpy(f.csa_normal, normal, sizeof normal);
    s.files = &f;
    s.n_files = 1;
    for (int k = 0; k < f.n_frames; k++) {
        dcm_frame fr;
        memset(&fr, 0, sizeof fr);
        fr.frame = k;
        fr.tile = -1;
        fr.rows = f.rows;
        fr.cols = f.cols;
        fr.has_ipp = fr.has_iop = fr.has_ps = 1;
        memcpy(fr.iop, kIop[h[8] % 4], sizeof fr.iop);
        fr.ipp[0] = (int8_t)h[9];
        fr.ipp[1] = (int8_t)h[10];
        fr.ipp[2] = k;
        fr.ps[0] = fr.ps[1] = 0.5 + (h[11] % 8) / 4.0;
        if (scan_add_frame(&s, &fr)) abort();
    }
    if (mosaic_expand(&s, 0, 0) == 0) {
        const int m = (int)ceil(sqrt((double)n_mosaic));
        FZ_ASSERT(s.n_frames == f.n_frames * n_mosaic);
        for (int i = 0; i < s.n_frames; i++) {
            const dcm_frame *t = &s.frames[i];
            FZ_ASSERT(t->tile >= 0 && t->tile < n_mosaic && t->frame >= 0 && t->frame < f.n_frames);
            const int r0 = (t->tile / m) * t->rows, c0 = (t->tile % m) * t->cols;
            FZ_ASSERT(t->rows >= 1 && t->cols >= 1 && r0 + t->rows <= f.rows && c0 + t->cols <= f.cols);
        }
    }
    free(s.frames);
    return 0;
}
