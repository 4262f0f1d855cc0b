/* phantom.c - synthetic CT-like axial slices with lesions, deterministic from a seed: the data
 * the demo model is trained and evaluated on. Not anatomy: a body ellipse with a fat ring,
 * liver, spleen, kidneys, aorta, spine and bowel gas, Gaussian noise, and (in anomalous slices)
 * 1-3 bright or dark lesions inside the liver, spleen or kidneys, with their masks. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_internal.h"
#include "error.h"

typedef struct prng { uint64_t s; } prng;
static double pr_uni(prng *r) { /* [0, 1) */
    r->s = aac_seed_mix(r->s, 1, 2, 3);
    return (double)(r->s >> 11) * (1.0 / 9007199254740992.0);
}
static double pr_range(prng *r, double lo, double hi) { return lo + (hi - lo) * pr_uni(r); }
static double pr_gauss(prng *r) {
    const double u = pr_uni(r) + 1e-12, v = pr_uni(r);
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct ellipse { double cx, cy, ax, ay, th; } ellipse;

/* signed "radius" of (x, y): < 1 inside */
static double ell_r(const ellipse *e, double x, double y) {
    const double c = cos(e->th), s = sin(e->th), dx = x - e->cx, dy = y - e->cy;
    const double u = (c * dx + s * dy) / e->ax, v = (-s * dx + c * dy) / e->ay;
    return sqrt(u * u + v * v);
}

/* paints value inside e with a soft edge about `soft` pixels wide; returns nothing */
static void paint(float *img, int S, const ellipse *e, double value, double soft) {
    const double rmax = (e->ax > e->ay ? e->ax : e->ay) + 2 * soft + 1;
    int x0 = (int)floor(e->cx - rmax), x1 = (int)ceil(e->cx + rmax), y0 = (int)floor(e->cy - rmax),
        y1 = (int)ceil(e->cy + rmax);
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > S - 1) x1 = S - 1;
    if (y1 > S - 1) y1 = S - 1;
    const double amin = e->ax < e->ay ? e->ax : e->ay;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) {
            const double d = (ell_r(e, x, y) - 1) * amin; /* ~ pixels outside the border */
            double w = 0.5 - d / (2 * soft);
            if (w <= 0) continue;
            if (w > 1) w = 1;
            float *p = &img[(size_t)y * S + x];
            *p = (float)((1 - w) * *p + w * value);
        }
}

aac_status aac_phantom_slice(uint64_t seed, int S, int lesions, aac_image *img, aac_image *mask, aac_error *err) {
    if (!img || S < 32 || S > 4096) return aac_fail(err, AAC_ERR_ARG, "aac_phantom_slice: size %d (32..4096)", S);
    memset(img, 0, sizeof *img);
    if (mask) memset(mask, 0, sizeof *mask);
    float *f = calloc((size_t)S * S, sizeof *f);
    aac_status s = f ? image_alloc(img, S, S, 1, "phantom", err) : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s && mask) s = image_alloc(mask, S, S, 1, "phantom mask", err);
    if (s) {
        free(f);
        aac_image_release(img);
        return s;
    }
    if (mask) memset(mask->px, 0, (size_t)S * S);
    prng r = {seed};
    const double j = 0.02 * S;
#define E(cx, cy, ax, ay, th) \
    (ellipse) { (cx) * S + pr_range(&r, -j, j), (cy) * S + pr_range(&r, -j, j), (ax) * S, (ay) * S, (th) }
    const double bw = pr_range(&r, 0.37, 0.43), bh = pr_range(&r, 0.27, 0.33);
    ellipse body = E(0.5, 0.52, bw, bh, pr_range(&r, -0.05, 0.05));
    ellipse inner = body;
    inner.ax *= pr_range(&r, 0.86, 0.92), inner.ay *= pr_range(&r, 0.84, 0.9);
    ellipse organs[5] = {
        E(0.37, 0.46, pr_range(&r, 0.14, 0.18), pr_range(&r, 0.11, 0.14), pr_range(&r, -0.4, 0.4)), /* liver */
        E(0.68, 0.43, pr_range(&r, 0.05, 0.08), pr_range(&r, 0.05, 0.07), pr_range(&r, -0.5, 0.5)),  /* spleen */
        E(0.38, 0.64, 0.045, 0.07, pr_range(&r, -0.3, 0.3)),                                          /* kidneys */
        E(0.62, 0.64, 0.045, 0.07, pr_range(&r, -0.3, 0.3)),
        E(0.53, 0.58, 0.022, 0.022, 0),                                                               /* aorta */
    };
    const double organ_v[5] = {pr_range(&r, 128, 142), pr_range(&r, 120, 134), 150, 150, pr_range(&r, 155, 170)};
    ellipse spine = E(0.5, 0.72, 0.05, 0.045, 0), marrow = spine;
    marrow.ax *= 0.6, marrow.ay *= 0.6;
#undef E
    paint(f, S, &body, pr_range(&r, 60, 80), 1.0);           /* fat */
    paint(f, S, &inner, pr_range(&r, 100, 115), 1.5);        /* soft tissue */
    for (int k = 0; k < 5; k++) paint(f, S, &organs[k], organ_v[k], 1.5);
    paint(f, S, &spine, 230, 1.0);
    paint(f, S, &marrow, 175, 1.0);
    const int gas = (int)pr_range(&r, 1, 4); /* bowel gas in the lower middle */
    for (int g = 0; g < gas; g++) {
        ellipse e = {pr_range(&r, 0.45, 0.6) * S, pr_range(&r, 0.45, 0.55) * S, pr_range(&r, 0.01, 0.025) * S,
                     pr_range(&r, 0.01, 0.02) * S, pr_range(&r, 0, 3)};
        paint(f, S, &e, 15, 1.0);
    }
    if (lesions) {
        const int n = 1 + (int)pr_range(&r, 0, 3);
        for (int k = 0; k < n; k++) {
            const int host = pr_uni(&r) < 0.7 ? 0 : (int)pr_range(&r, 1, 4); /* liver mostly */
            const ellipse *o = &organs[host];
            const double rad = pr_range(&r, 0.0, 0.55), ang = pr_range(&r, 0, 6.283185307179586);
            const double scale = host == 0 ? pr_range(&r, 0.045, 0.085) : pr_range(&r, 0.03, 0.05);
            ellipse l = {o->cx + rad * o->ax * cos(ang), o->cy + rad * o->ay * sin(ang), scale * S,
                         scale * S * pr_range(&r, 0.7, 1.0), pr_range(&r, 0, 3)};
            const double delta = (pr_uni(&r) < 0.5 ? -1 : 1) * pr_range(&r, 45, 70);
            paint(f, S, &l, organ_v[host] + delta, 1.2);
            if (mask)
                for (int y = 0; y < S; y++)
                    for (int x = 0; x < S; x++)
                        if (ell_r(&l, x, y) < 1) mask->px[(size_t)y * S + x] = 255;
        }
    }
    const double sigma = pr_range(&r, 3, 6);
    for (size_t i = 0; i < (size_t)S * S; i++) {
        double v = f[i] + (f[i] > 5 ? sigma * pr_gauss(&r) : 1.5 * pr_gauss(&r));
        img->px[i] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5);
    }
    free(f);
    return AAC_OK;
}

/* mkdir -p */
static int make_dir(const char *p) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *q = buf + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *q = '/';
        }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

aac_status aac_phantom_dataset_write(const char *dir, const char *jsonl_name, int n, uint64_t seed, int S,
                              double anomalous, const char *class_name, aac_error *err) {
    if (!dir || !jsonl_name || n <= 0 || !class_name || anomalous < 0 || anomalous > 1)
        return aac_fail(err, AAC_ERR_ARG, "aac_phantom_dataset_write: bad argument");
    for (const char *c = class_name; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
            return aac_fail(err, AAC_ERR_ARG, "class name '%s': quotes, backslashes and control characters "
                            "are not allowed", class_name);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/images", dir);
    if (make_dir(dir) || make_dir(path)) return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/masks", dir);
    if (make_dir(path)) return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", dir, jsonl_name);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *js = fopen(tmp, "w");
    if (!js) return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    aac_status s = AAC_OK;
    /* exactly round(n * anomalous) anomalous slices, spread evenly */
    for (int i = 0; i < n && !s; i++) {
        const int lesion = (int)floor((i + 1) * anomalous + 0.5) > (int)floor(i * anomalous + 0.5);
        aac_image img, mask;
        s = aac_phantom_slice(aac_seed_mix(seed, 0x9a7, (uint64_t)i, 0), S, lesion, &img, &mask, err);
        if (s) break;
        char rel_img[64], rel_mask[64], full[4096];
        snprintf(rel_img, sizeof rel_img, "images/%05d.png", i);
        snprintf(rel_mask, sizeof rel_mask, "masks/%05d.png", i);
        snprintf(full, sizeof full, "%s/%s", dir, rel_img);
        s = aac_image_write_png(full, &img, err);
        if (!s && lesion) {
            snprintf(full, sizeof full, "%s/%s", dir, rel_mask);
            s = aac_image_write_png(full, &mask, err);
        }
        if (!s)
            fprintf(js, "{\"image_path\": \"%s\", \"label\": %d, \"class_name\": \"%s\", \"mask_path\": \"%s\"}\n",
                    rel_img, lesion, class_name, lesion ? rel_mask : "");
        aac_image_release(&img);
        aac_image_release(&mask);
    }
    const int ok = fflush(js) == 0 && fsync(fileno(js)) == 0;
    if (fclose(js) != 0 || !ok) s = s ? s : aac_fail(err, AAC_ERR_IO, "%s: cannot write", tmp);
    if (!s && rename(tmp, path) != 0) s = aac_fail(err, AAC_ERR_IO, "%s: cannot rename: %s", path, strerror(errno));
    if (s) unlink(tmp);
    return s;
}
