/* nifti_order.c - the voxel order dcm2niix writes, relative to the volume's own layout (x along
 * the rows, y down the columns, z up the slice normal), so that `convert` can write the same
 * array and affine (aac_series_info.nifti_axes). Ported from dcm2niix (nii_dicom_batch.cpp
 * saveDcm2NiiCore, nii_ortho.cpp nii_setOrtho):
 *  - rows are flipped (its default isFlipY): the first stored row is the last image row;
 *  - slices run along the normal (it flips a stack stored the other way), except Siemens mosaics,
 *    whose tiles keep their order along the CSA SliceNormalVector; a Siemens series whose first
 *    image (lowest instance number) has CSA ProtocolSliceNumber > 1 is reversed on top of that
 *    (a classic stack then runs against its instance order);
 *  - a 3-D (MRAcquisitionType 3D), non-EPI, single-volume series is not row-flipped: it is
 *    turned into the orthogonal orientation nearest to its RAS space (isRotate3DAcq: an axis
 *    permutation and flips picked by the sform, as nii_setOrtho does), or left as stored when
 *    its slices are uneven (a gap more than 10% off the first).
 * The comparison in nii_setOrtho is in float there and in double here: the two can only differ
 * for a plane exactly 45 degrees between two axes. */
#include <math.h>
#include <string.h>

#include "ingest.h"

/* sform (RAS, 3 x 4) of the volume as laid out: LPS to RAS negates x and y. */
static void sform_ras(const double origin[3], const double dir[9], const double spacing[3], double s[3][4]) {
    for (int r = 0; r < 3; r++) {
        const double sign = r < 2 ? -1.0 : 1.0;
        for (int c = 0; c < 3; c++) s[r][c] = sign * dir[r * 3 + c] * spacing[c];
        s[r][3] = sign * origin[r];
    }
}

/* nii_ortho.cpp isMat44Canonical: diagonal positive, all else exactly zero. */
static int canonical(double s[3][4]) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if ((i == j && s[i][j] <= 0) || (i != j && s[i][j] != 0)) return 0;
    return 1;
}

/* nii_ortho.cpp minCornerFlip: of the 8 corners, the one closest to the minimum of all corner
 * coordinates (the left-posterior-inferior one); its flips along each axis. */
static void min_corner_flip(double s[3][4], const int dim[3], int flip[3]) {
    double corner[8][3], mn[3];
    for (int i = 0; i < 8; i++) {
        const double v[3] = {(i & 1) ? dim[0] - 1 : 0, (i & 2) ? dim[1] - 1 : 0, (i & 4) ? dim[2] - 1 : 0};
        for (int r = 0; r < 3; r++) corner[i][r] = s[r][0] * v[0] + s[r][1] * v[1] + s[r][2] * v[2] + s[r][3];
    }
    memcpy(mn, corner[0], sizeof mn);
    for (int i = 1; i < 8; i++)
        for (int r = 0; r < 3; r++)
            if (corner[i][r] < mn[r]) mn[r] = corner[i][r];
    int best = 0;
    double best_d = INFINITY;
    for (int i = 0; i < 8; i++) {
        double d = 0;
        for (int r = 0; r < 3; r++) d += (corner[i][r] - mn[r]) * (corner[i][r] - mn[r]);
        d = sqrt(d);
        if (d < best_d) best_d = d, best = i;
    }
    for (int a = 0; a < 3; a++) flip[a] = (best >> a & 1) ? -1 : 1;
}

/* nii_ortho.cpp getBestOrient + setOrientVec: of the 6 permutations (with the corner's flips),
 * the one with the largest sum of s[i][j] * m[j][i]; axes[j] = +-(i + 1) where m[i][j] != 0. */
static void best_orient(double s[3][4], const int f[3], int axes[3]) {
    static const int perm[6][3][3] = {
        {{1, 0, 0}, {0, 2, 0}, {0, 0, 3}}, {{1, 0, 0}, {0, 0, 2}, {0, 3, 0}}, {{0, 1, 0}, {2, 0, 0}, {0, 0, 3}},
        {{0, 1, 0}, {0, 0, 2}, {3, 0, 0}}, {{0, 0, 1}, {2, 0, 0}, {0, 3, 0}}, {{0, 0, 1}, {0, 2, 0}, {3, 0, 0}}};
    double best = 0;
    int pick = -1;
    double m[3][3];
    for (int p = 0; p < 6; p++) {
        /* entry k (1..3) of the pattern carries flip k: LOAD_MAT33 with flipVec.v[k - 1] */
        double sum = 0;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                const int k = perm[p][i][j];
                m[i][j] = k ? f[k - 1] : 0;
            }
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) sum += s[i][j] * m[j][i];
        if (sum > best) best = sum, pick = p;
    }
    if (pick < 0) { /* nothing positive: dcm2niix leaves the result undefined; keep the layout */
        for (int a = 0; a < 3; a++) axes[a] = a + 1;
        return;
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            const int k = perm[pick][i][j];
            if (k) axes[j] = f[k - 1] > 0 ? i + 1 : -(i + 1);
        }
}

void nifti_order(const double origin[3], const double dir[9], const double spacing[3], const int dim[3],
                 int acq_3d, int even, int z_reversed, int axes[3]) {
    axes[0] = 1;
    axes[1] = -2;
    axes[2] = z_reversed ? -3 : 3;
    if (!acq_3d) return;
    /* no row flip: a 3-D acquisition is turned, or left as stored when uneven; the turn starts
     * from the stored order (slices reversed where dcm2niix reverses them) */
    axes[1] = 2;
    double s[3][4], o[3], d[9];
    memcpy(o, origin, sizeof o);
    memcpy(d, dir, sizeof d);
    if (z_reversed)
        for (int r = 0; r < 3; r++) {
            o[r] += dir[r * 3 + 2] * spacing[2] * (dim[2] - 1);
            d[r * 3 + 2] = -dir[r * 3 + 2];
        }
    sform_ras(o, d, spacing, s);
    if (!even || canonical(s)) return;
    int flip[3], turn[3];
    min_corner_flip(s, dim, flip);
    best_orient(s, flip, turn);
    /* written axis a is start axis |turn[a]|, and start axis k is the layout's axes[k] */
    const int start[3] = {axes[0], axes[1], axes[2]};
    for (int a = 0; a < 3; a++) {
        const int k = (turn[a] < 0 ? -turn[a] : turn[a]) - 1;
        axes[a] = turn[a] < 0 ? -start[k] : start[k];
    }
}
