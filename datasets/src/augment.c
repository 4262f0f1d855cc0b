/* augment.c - the spec's training augmentations on 8-bit images, image and mask together,
 * from a seed alone (so a resumed run draws what an uninterrupted one would). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "error.h"

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t aac_seed_mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t s = seed;
    uint64_t h = splitmix64(&s);
    s = h ^ (a * 0xd1b54a32d192ed03ULL);
    h = splitmix64(&s);
    s = h ^ (b * 0xabc98388fb8fac03ULL);
    h = splitmix64(&s);
    s = h ^ (c * 0x8cb92ba72f3d8dd7ULL);
    return splitmix64(&s);
}

/* uniform in [0, 1) */
static double uni(uint64_t *s) { return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0); }

aac_augment aac_augment_default(int stage) {
    aac_augment a = {.rotate_deg = 30, .rotate_p = 0.5f, .translate = 0.15f, .translate_p = 0.5f,
                     .hflip_p = 0.5f, .vflip_p = 0.5f};
    if (stage == 2) a.brightness = a.contrast = a.saturation = 0.5f, a.jitter_p = 0.7f;
    return a;
}

static uint8_t clamp_u8(double v) { return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5); }

/* PIL's "L" conversion: (299 R + 587 G + 114 B) / 1000, rounded */
static double luma(const uint8_t *p, int ch) {
    return ch == 1 ? p[0] : (p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000;
}

/* out = f * img + (1 - f) * ref, ref per pixel (grey) or constant */
static void blend(aac_image *im, double f, const double *ref_px, double ref_c) {
    const size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        const double r = ref_px ? ref_px[i] : ref_c;
        for (int c = 0; c < im->channels; c++) {
            uint8_t *p = &im->px[i * im->channels + c];
            *p = clamp_u8(f * *p + (1 - f) * r);
        }
    }
}

static aac_status jitter(const aac_augment *a, uint64_t *rng, aac_image *im, aac_error *err) {
    const size_t n = (size_t)im->w * im->h;
    /* draws happen whether or not a jitter applies, so the geometry draws do not depend on it */
    const double pb = uni(rng), fb = 1 - a->brightness + 2 * a->brightness * uni(rng);
    const double pc = uni(rng), fc = 1 - a->contrast + 2 * a->contrast * uni(rng);
    const double ps = uni(rng), fs = 1 - a->saturation + 2 * a->saturation * uni(rng);
    if (a->brightness > 0 && pb < a->jitter_p) blend(im, fb, NULL, 0);
    if (a->contrast > 0 && pc < a->jitter_p) {
        double mean = 0;
        for (size_t i = 0; i < n; i++) mean += luma(&im->px[i * im->channels], im->channels);
        blend(im, fc, NULL, floor(mean / (double)n + 0.5));
    }
    if (a->saturation > 0 && ps < a->jitter_p && im->channels == 3) { /* identity on grey */
        double *g = malloc(sizeof(double) * n);
        if (!g) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) g[i] = luma(&im->px[i * 3], 3);
        blend(im, fs, g, 0);
        free(g);
    }
    return AAC_OK;
}

/* One nearest-neighbour inverse mapping for image and mask: output pixel -> source pixel. */
static aac_status warp(aac_image *im, const double inv[6], aac_error *err) {
    const int w = im->w, h = im->h, ch = im->channels;
    uint8_t *dst = calloc((size_t)w * h * ch, 1);
    if (!dst) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double sx = inv[0] * x + inv[1] * y + inv[2], sy = inv[3] * x + inv[4] * y + inv[5];
            const long ix = lround(sx), iy = lround(sy);
            if (ix < 0 || iy < 0 || ix >= w || iy >= h) continue; /* fill 0 */
            memcpy(&dst[((size_t)y * w + x) * ch], &im->px[((size_t)iy * w + ix) * ch], (size_t)ch);
        }
    free(im->px);
    im->px = dst;
    return AAC_OK;
}

aac_status aac_augment_apply(const aac_augment *a, uint64_t seed, aac_image *img, aac_image *mask, aac_error *err) {
    if (!a || !img || !img->px) return aac_fail(err, AAC_ERR_ARG, "aac_augment_apply: NULL argument");
    if (mask && mask->px && (mask->w != img->w || mask->h != img->h))
        return aac_fail(err, AAC_ERR_ARG, "aac_augment_apply: mask %d x %d, image %d x %d", mask->w, mask->h,
                        img->w, img->h);
    uint64_t rng = seed;
    /* fixed number of draws, in a fixed order */
    const double pr = uni(&rng), ang = (2 * uni(&rng) - 1) * a->rotate_deg;
    const double pt = uni(&rng), tx = (2 * uni(&rng) - 1) * a->translate * img->w,
                 ty = (2 * uni(&rng) - 1) * a->translate * img->h;
    const double ph = uni(&rng), pv = uni(&rng);
    const int rot = pr < a->rotate_p && ang != 0, tr = pt < a->translate_p, hf = ph < a->hflip_p, vf = pv < a->vflip_p;
    aac_status s = AAC_OK;
    if (a->jitter_p > 0) s = jitter(a, &rng, img, err);
    if (s || !(rot || tr || hf || vf)) return s;
    /* forward: rotate about the centre, translate, flip; inverse maps output to source */
    const double cx = (img->w - 1) / 2.0, cy = (img->h - 1) / 2.0;
    const double th = rot ? ang * 3.14159265358979323846 / 180.0 : 0, c = cos(th), sn = sin(th);
    const double dx = tr ? tx : 0, dy = tr ? ty : 0;
    /* output (x, y): unflip -> (u, v); untranslate -> (u - dx, v - dy); unrotate about c */
    const double fx = hf ? -1 : 1, ox = hf ? img->w - 1 : 0, fy = vf ? -1 : 1, oy = vf ? img->h - 1 : 0;
    /* p = (fx x + ox - dx - cx, fy y + oy - dy - cy); src = R(-th) p + c */
    const double px0 = ox - dx - cx, py0 = oy - dy - cy;
    const double inv[6] = {c * fx, sn * fy, c * px0 + sn * py0 + cx, -sn * fx, c * fy, -sn * px0 + c * py0 + cy};
    s = warp(img, inv, err);
    if (!s && mask && mask->px) s = warp(mask, inv, err);
    return s;
}
