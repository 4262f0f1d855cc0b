/* mosaic.c - Siemens mosaic: one stored frame holds N slices as tiles of an m x m grid
 * (m = ceil(sqrt(N))). Each tile becomes a frame with its own position, as dcm2niix does:
 * ImagePositionPatient refers to the top-left of the whole mosaic, so it is moved to the top
 * left of a tile, then slice k lies k * spacing along the CSA SliceNormalVector. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

int mosaic_expand(aac_scan *s, int fi, int first_frame) {
    const dcm_file *f = &s->files[fi];
    const int n = f->mosaic_images;
    int m = (int)ceil(sqrt((double)n));
    if (m < 1 || f->rows % m || f->cols % m || f->spp != 1) return -1;
    const int r = f->rows / m, c = f->cols / m;
    const int count = s->n_frames - first_frame;
    dcm_frame *mos = malloc((size_t)count * sizeof *mos);
    if (!mos) return -1;
    memcpy(mos, s->frames + first_frame, (size_t)count * sizeof *mos);
    s->n_frames = first_frame;
    double dz = f->slice_spacing > 0 ? f->slice_spacing : f->slice_thickness;
    if (!(dz > 0)) dz = 1.0;
    for (int k = 0; k < count; k++) {
        const dcm_frame *src = &mos[k];
        const double *row = src->iop, *col = src->iop + 3;
        double nrm[3] = {row[1] * col[2] - row[2] * col[1], row[2] * col[0] - row[0] * col[2],
                         row[0] * col[1] - row[1] * col[0]};
        if (f->has_csa_normal) memcpy(nrm, f->csa_normal, sizeof nrm);
        double p0[3];
        for (int a = 0; a < 3; a++)
            p0[a] = src->ipp[a] + row[a] * src->ps[1] * (f->cols - c) / 2.0 +
                    col[a] * src->ps[0] * (f->rows - r) / 2.0;
        for (int t = 0; t < n; t++) {
            dcm_frame fr = *src;
            fr.tile = t;
            fr.rows = r;
            fr.cols = c;
            for (int a = 0; a < 3; a++) fr.ipp[a] = p0[a] + t * dz * nrm[a];
            if (scan_add_frame(s, &fr)) {
                free(mos);
                return -1;
            }
        }
    }
    free(mos);
    return 0;
}
