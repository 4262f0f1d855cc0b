/* ct_phantom.c - deterministic synthetic abdominal CT with lesions planted in the liver.
 *
 * Reproducibility across machines is the point (the sample study in testdata/ is compared
 * byte for byte with a fresh one): random numbers come from splitmix64, lesion parameters are
 * integers (tenths of mm, whole HU), the noise is a sum of uniforms (no log/cos from libm),
 * and shapes are tested with plain products and sums, which IEEE arithmetic rounds the same
 * everywhere (C11 without extensions: no FMA contraction). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_synth.h"
#include "error.h"

aac_ct_phantom_params aac_ct_phantom_default_params(void) {
    aac_ct_phantom_params p = {.seed = 1, .size = 256, .slices = 32, .n_lesions = 4,
                            .fov_mm = 307.2, .slice_mm = 3.0, .noise_hu = 10.0, .lesion_gap_mm = 25.0};
    return p;
}

/* Tissues, painted in this order (later ones win). */
enum { T_AIR, T_FAT, T_MUSCLE, T_SOFT, T_LIVER, T_SPLEEN, T_STOMACH, T_GAS, T_PERIRENAL, T_KIDNEY,
       T_AORTA, T_IVC, T_CORTEX, T_CANCELLOUS, T_CSF, T_DISC, T_LESION, T_COUNT };
static const short kHU[T_COUNT] = {-1000, -100, 50, 40, 60, 45, 15, -1000, -90, 30,
                                   45, 40, 700, 220, 15, 80, 0};

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static int rand_int(uint64_t *s, int lo, int hi) { /* inclusive; bias below 2^-40 */
    return lo + (int)((splitmix64(s) >> 11) % (uint64_t)(hi - lo + 1));
}

/* Squared normalised distance from an ellipsoid's centre (<= 1: inside). */
static double ell3(double x, double y, double z, double cx, double cy, double cz, double a, double b, double c) {
    const double u = (x - cx) / a, v = (y - cy) / b, w = (z - cz) / c;
    return u * u + v * v + w * w;
}
static double ell2(double x, double y, double cx, double cy, double a, double b) {
    const double u = (x - cx) / a, v = (y - cy) / b;
    return u * u + v * v;
}

/* Anatomy at one point (LPS mm; x to the patient's left, y posterior, z superior). Sizes are
 * those of a slim adult; the organs are clipped to the abdominal cavity. */
static int tissue_at(double x, double y, double z) {
    if (ell2(x, y, 0, 0, 140, 105) > 1) return T_AIR;
    int t = T_FAT; /* subcutaneous fat: the outer 14 mm */
    if (ell2(x, y, 0, 0, 126, 91) <= 1) t = T_MUSCLE; /* abdominal wall: the next 8 mm */
    const int cavity = ell2(x, y, 0, 0, 118, 83) <= 1;
    if (cavity) {
        t = T_SOFT;
        if (ell3(x, y, z, -55, -5, 25, 80, 70, 85) <= 1) t = T_LIVER; /* patient's right */
        if (ell3(x, y, z, 80, 40, 35, 30, 25, 45) <= 1) t = T_SPLEEN;
        if (ell3(x, y, z, 45, -35, 40, 40, 30, 35) <= 1) t = y < -55 ? T_GAS : T_STOMACH; /* gas rises anteriorly */
        for (int side = -1; side <= 1; side += 2) {
            if (ell3(x, y, z, side * 62, 45, -25, 32, 27, 52) <= 1) t = T_PERIRENAL;
            if (ell3(x, y, z, side * 62, 45, -25, 25, 20, 45) <= 1) t = T_KIDNEY;
        }
        if (ell2(x, y, 15, 30, 10, 10) <= 1) t = T_AORTA;
        if (ell2(x, y, -20, 28, 11, 8) <= 1) t = T_IVC;
    }
    if (ell2(x, y, 0, 0, 126, 91) <= 1)
        for (int side = -1; side <= 1; side += 2)
            if (ell2(x, y, side * 30, 75, 18, 14) <= 1) t = T_MUSCLE; /* paraspinal muscles */
    /* Vertebra: body (cortical ring, cancellous core) every 30 mm with a 6 mm disc, arch
     * around the canal, spinous process. */
    const double zz = z - 30.0 * floor(z / 30.0);
    const double body = ell2(x, y, 0, 55, 16, 16);
    if (body <= 1) t = zz < 6 ? T_DISC : body <= (13.0 / 16) * (13.0 / 16) ? T_CANCELLOUS : T_CORTEX;
    const double canal = ell2(x, y, 0, 79, 12, 12);
    if (canal <= 1) t = canal <= (7.0 / 12) * (7.0 / 12) ? T_CSF : T_CORTEX;
    if (ell2(x, y, 0, 93, 4, 8) <= 1) t = T_CORTEX;
    return t;
}

static aac_volume *new_volume(const aac_ct_phantom_params *p, const char *what) {
    aac_volume *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    const size_t n = (size_t)p->size * p->size * p->slices;
    v->voxels = calloc(n, sizeof *v->voxels);
    if (!v->voxels) {
        free(v);
        return NULL;
    }
    v->dim[0] = v->dim[1] = p->size;
    v->dim[2] = p->slices;
    v->dim[3] = 1;
    const double s = p->fov_mm / p->size;
    v->spacing[0] = v->spacing[1] = s;
    v->spacing[2] = p->slice_mm;
    v->origin[0] = v->origin[1] = -p->fov_mm / 2 + s / 2; /* the field of view centred on 0 */
    v->origin[2] = -(p->slices - 1) * p->slice_mm / 2;
    v->direction[0] = v->direction[4] = v->direction[8] = 1;
    v->slice_thickness = p->slice_mm;
    v->series_number = -1;
    snprintf(v->modality, sizeof v->modality, "%s", what[0] == 'C' ? "CT" : "");
    snprintf(v->body_part, sizeof v->body_part, "ABDOMEN");
    snprintf(v->manufacturer, sizeof v->manufacturer, "aaclip synthetic");
    snprintf(v->source, sizeof v->source, "synthetic phantom (%s, seed %llu)", what, (unsigned long long)p->seed);
    return v;
}

/* Voxel range [lo, hi] covering centre +- r along axis a; 0 when it leaves the volume. */
static int axis_range(const aac_volume *v, int a, double c, double r, int *lo, int *hi) {
    const double f0 = (c - r - v->origin[a]) / v->spacing[a], f1 = (c + r - v->origin[a]) / v->spacing[a];
    *lo = (int)ceil(f0);
    *hi = (int)floor(f1);
    return f0 >= 0 && f1 <= v->dim[a] - 1;
}

/* Visits the voxels of an ellipsoid (semi-axes r + grow); returns 0 when it leaves the volume,
 * else the number of voxels for which visit() returned 1 (visit NULL: all of them). */
typedef int (*visit_fn)(void *ctx, size_t i);
static long for_ellipsoid(const aac_volume *v, const double c[3], const double r[3], double grow, visit_fn visit,
                          void *ctx) {
    int lo[3], hi[3];
    for (int a = 0; a < 3; a++)
        if (!axis_range(v, a, c[a], r[a] + grow, &lo[a], &hi[a])) return 0;
    long n = 0;
    for (int k = lo[2]; k <= hi[2]; k++)
        for (int j = lo[1]; j <= hi[1]; j++)
            for (int i = lo[0]; i <= hi[0]; i++) {
                const double x = v->origin[0] + i * v->spacing[0], y = v->origin[1] + j * v->spacing[1],
                             z = v->origin[2] + k * v->spacing[2];
                if (ell3(x, y, z, c[0], c[1], c[2], r[0] + grow, r[1] + grow, r[2] + grow) > 1) continue;
                const size_t idx = ((size_t)k * v->dim[1] + j) * v->dim[0] + i;
                n += visit ? visit(ctx, idx) : 1;
            }
    return n;
}

typedef struct paint_ctx {
    unsigned char *tissue;
    short *hu;
    float *labels;
    int label, value;
} paint_ctx;
static int is_liver(void *ctx, size_t i) { return ((paint_ctx *)ctx)->tissue[i] == T_LIVER; }
static int paint(void *ctx, size_t i) {
    paint_ctx *c = ctx;
    c->tissue[i] = T_LESION;
    c->hu[i] = (short)c->value;
    c->labels[i] = (float)c->label;
    return 1;
}

/* Gap between two lesions' bounding spheres, in mm (plain arithmetic, reproducible). */
static int far_apart(const double c[3], const double r[3], const aac_ct_lesion *o, double gap) {
    const double dx = c[0] - o->centre[0], dy = c[1] - o->centre[1], dz = c[2] - o->centre[2];
    double ra = r[0] > r[1] ? r[0] : r[1], rb = o->radius[0] > o->radius[1] ? o->radius[0] : o->radius[1];
    ra = ra > r[2] ? ra : r[2];
    rb = rb > o->radius[2] ? rb : o->radius[2];
    const double need = ra + rb + gap;
    return dx * dx + dy * dy + dz * dz >= need * need;
}

/* Lesion k: a free spot in the liver, 3 mm clear of its edge and lesion_gap_mm clear of the
 * earlier lesions (each stays a finding of its own), found by rejection sampling over the liver's
 * bounding box; the lesion shrinks by a fifth after every 500 misses (thin slabs, crowded
 * livers) down to 3 mm semi-axes. */
static aac_status place_lesion(const aac_ct_phantom_params *p, uint64_t *rng, int k, paint_ctx *pc, const aac_volume *v,
                               const aac_ct_lesion *prev, aac_ct_lesion *out, aac_error *err) {
    const int hyper = p->hyperdense_every > 0 && (k + 1) % p->hyperdense_every == 0;
    const int r10 = rand_int(rng, 100, 200);
    int axis10[3]; /* semi-axes in tenths of mm */
    for (int a = 0; a < 3; a++) axis10[a] = (r10 * rand_int(rng, 80, 120) + 50) / 100;
    const int value = hyper ? rand_int(rng, 110, 130) : rand_int(rng, -10, 10);
    for (int attempt = 1;; attempt++) {
        const double r[3] = {axis10[0] / 10.0, axis10[1] / 10.0, axis10[2] / 10.0};
        double c[3] = {rand_int(rng, -1350, 250) / 10.0, rand_int(rng, -750, 650) / 10.0,
                       rand_int(rng, -600, 1100) / 10.0};
        int apart = 1;
        for (int j = 0; j < k && apart; j++) apart = far_apart(c, r, &prev[j], p->lesion_gap_mm);
        const long need = apart ? for_ellipsoid(v, c, r, 3.0, NULL, NULL) : 0;
        if (need > 0 && for_ellipsoid(v, c, r, 3.0, is_liver, pc) == need) {
            pc->label = k + 1;
            pc->value = value;
            memset(out, 0, sizeof *out);
            out->label = k + 1;
            snprintf(out->organ, sizeof out->organ, "liver");
            snprintf(out->kind, sizeof out->kind, "%s", hyper ? "hyperdense" : "hypodense");
            memcpy(out->centre, c, sizeof c);
            memcpy(out->radius, r, sizeof r);
            out->hu = value;
            for (int a = 0; a < 3; a++)
                out->centre_voxel[a] = (int)floor((c[a] - v->origin[a]) / v->spacing[a] + 0.5);
            out->voxels = (int)for_ellipsoid(v, c, r, 0.0, paint, pc);
            return AAC_OK;
        }
        if (attempt % 500 == 0) {
            if (axis10[0] * 4 / 5 < 30 || axis10[1] * 4 / 5 < 30 || axis10[2] * 4 / 5 < 30) break;
            for (int a = 0; a < 3; a++) axis10[a] = axis10[a] * 4 / 5;
        }
    }
    return aac_fail(err, AAC_ERR_ARG,
                    "synthetic phantom (seed %llu, %d slices of %g mm): no room for lesion %d of %d in the liver "
                    "(use fewer lesions or more slices)",
                    (unsigned long long)p->seed, p->slices, p->slice_mm, k + 1, p->n_lesions);
}

/* In-plane [1 2 1] x [1 2 1] / 16 blur of slice k (edges replicated): a soft-tissue kernel's
 * partial-volume edges. Integer sums, so exact. */
static void blur_slice(const short *hu, int X, int Y, int *tmp, double *out) {
    for (int j = 0; j < Y; j++)
        for (int i = 0; i < X; i++) {
            const short *row = hu + (size_t)j * X;
            tmp[(size_t)j * X + i] = row[i > 0 ? i - 1 : 0] + 2 * row[i] + row[i < X - 1 ? i + 1 : X - 1];
        }
    for (int j = 0; j < Y; j++)
        for (int i = 0; i < X; i++) {
            const int *up = tmp + (size_t)(j > 0 ? j - 1 : 0) * X, *dn = tmp + (size_t)(j < Y - 1 ? j + 1 : Y - 1) * X;
            out[(size_t)j * X + i] = (up[i] + 2 * tmp[(size_t)j * X + i] + dn[i]) / 16.0;
        }
}

static aac_status check_params(const aac_ct_phantom_params *p, aac_error *err) {
    if (p->size < 32 || p->size > 2048)
        return aac_fail(err, AAC_ERR_ARG, "synthetic phantom: size %d outside 32..2048", p->size);
    if (p->slices < 1 || p->slices > 2000)
        return aac_fail(err, AAC_ERR_ARG, "synthetic phantom: %d slices outside 1..2000", p->slices);
    if (p->n_lesions < 0 || p->n_lesions > AAC_CT_PHANTOM_MAX_LESIONS)
        return aac_fail(err, AAC_ERR_ARG, "synthetic phantom: %d lesions outside 0..%d", p->n_lesions,
                        AAC_CT_PHANTOM_MAX_LESIONS);
    if (!(p->fov_mm >= 300 && p->fov_mm <= 1000) || !(p->slice_mm > 0 && p->slice_mm <= 20) ||
        !(p->noise_hu >= 0 && p->noise_hu <= 500) || !(p->lesion_gap_mm >= 0 && p->lesion_gap_mm <= 100))
        return aac_fail(err, AAC_ERR_ARG,
                        "synthetic phantom: field of view %g mm (300..1000), slice %g mm (0..20], noise %g HU "
                        "(0..500) or lesion gap %g mm (0..100) out of range",
                        p->fov_mm, p->slice_mm, p->noise_hu, p->lesion_gap_mm);
    return AAC_OK;
}

aac_status aac_ct_phantom_make(const aac_ct_phantom_params *params, aac_ct_phantom **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "aac_ct_phantom_make: no output");
    *out = NULL;
    const aac_ct_phantom_params p = params ? *params : aac_ct_phantom_default_params();
    aac_status st = check_params(&p, err);
    if (st != AAC_OK) return st;
    const int X = p.size, Y = p.size, Z = p.slices;
    const size_t plane = (size_t)X * Y, n = plane * Z;
    aac_ct_phantom *ph = calloc(1, sizeof *ph);
    unsigned char *tissue = malloc(n);
    short *hu = malloc(n * sizeof *hu);
    int *tmp = malloc(plane * sizeof *tmp);
    double *blurred = malloc(plane * sizeof *blurred);
    if (ph) {
        ph->ct = new_volume(&p, "CT");
        ph->labels = new_volume(&p, "lesion labels");
        ph->lesions = calloc((size_t)(p.n_lesions > 0 ? p.n_lesions : 1), sizeof *ph->lesions);
    }
    if (!ph || !tissue || !hu || !tmp || !blurred || !ph->ct || !ph->labels || !ph->lesions) {
        st = aac_fail(err, AAC_ERR_NOMEM, "synthetic phantom: no memory for %d x %d x %d voxels", X, Y, Z);
        goto done;
    }
    const aac_volume *v = ph->ct;
    for (int k = 0; k < Z; k++)
        for (int j = 0; j < Y; j++)
            for (int i = 0; i < X; i++) {
                const size_t idx = ((size_t)k * Y + j) * X + i;
                tissue[idx] = (unsigned char)tissue_at(v->origin[0] + i * v->spacing[0],
                                                       v->origin[1] + j * v->spacing[1],
                                                       v->origin[2] + k * v->spacing[2]);
                hu[idx] = kHU[tissue[idx]];
            }
    /* Separate streams: the lesions do not move when the noise level changes. */
    uint64_t rng_lesions = p.seed ^ 0x6C6573696F6E73ull, rng_noise = p.seed ^ 0x6E6F697365ull;
    paint_ctx pc = {tissue, hu, ph->labels->voxels, 0, 0};
    for (int k = 0; k < p.n_lesions; k++) {
        if ((st = place_lesion(&p, &rng_lesions, k, &pc, v, ph->lesions, &ph->lesions[k], err)) != AAC_OK) goto done;
        ph->n_lesions = k + 1;
    }
    /* Noise: a sum of 8 uniform 16-bit integers (Irwin-Hall, close to Gaussian), scaled to sd. */
    const double unit = sqrt((65536.0 * 65536.0 - 1.0) * 8.0 / 12.0), mean = 8 * 65535.0 / 2;
    for (int k = 0; k < Z; k++) {
        blur_slice(hu + (size_t)k * plane, X, Y, tmp, blurred);
        float *dst = ph->ct->voxels + (size_t)k * plane;
        for (size_t i = 0; i < plane; i++) {
            uint64_t a = splitmix64(&rng_noise), b = splitmix64(&rng_noise);
            uint32_t s = 0;
            for (int q = 0; q < 4; q++)
                s += (uint32_t)((a >> (16 * q)) & 0xFFFF) + (uint32_t)((b >> (16 * q)) & 0xFFFF);
            double val = floor(blurred[i] + (s - mean) / unit * p.noise_hu + 0.5);
            dst[i] = (float)(val < -1024 ? -1024 : val > 3071 ? 3071 : val);
        }
    }
done:
    free(tissue);
    free(hu);
    free(tmp);
    free(blurred);
    if (st != AAC_OK) {
        aac_ct_phantom_free(ph);
        return st;
    }
    *out = ph;
    return AAC_OK;
}

void aac_ct_phantom_free(aac_ct_phantom *ph) {
    if (!ph) return;
    aac_volume_free(ph->ct);
    aac_volume_free(ph->labels);
    free(ph->lesions);
    free(ph);
}
