/* geometry.c - what a header's geometry must be before it is used: finite, not absurd (beyond
 * a kilometre; spacings from a nanometre), orientation vectors of about unit length and about orthogonal. A value that
 * fails is treated as absent (the series then says so), never carried into sorting, spacing
 * or the volume's affine, where one huge or degenerate number makes every position infinite. */
#include <math.h>

#include "ingest.h"

static const double MAX_MM = 1e6; /* 1 km: beyond any patient, table or field of view */

int geom_position_ok(const double p[3]) {
    for (int a = 0; a < 3; a++)
        if (!isfinite(p[a]) || fabs(p[a]) > MAX_MM) return 0;
    return 1;
}

int geom_spacing_ok(double s) { return isfinite(s) && s >= 1e-6 && s <= MAX_MM; /* 1 nm .. 1 km */ }

int geom_direction_ok(const double v[3]) {
    if (!isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2])) return 0;
    const double n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    return n > 0.9 && n < 1.1;
}

int geom_orientation_ok(const double iop[6]) {
    if (!geom_direction_ok(iop) || !geom_direction_ok(iop + 3)) return 0;
    const double dot = iop[0] * iop[3] + iop[1] * iop[4] + iop[2] * iop[5];
    return fabs(dot) < 0.1; /* scanners round to 5 or 6 digits; a real plane is never this skewed */
}
