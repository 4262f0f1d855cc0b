/* maps.c - anomaly maps and the detection score from level features and text anchors. */
#include <math.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "model.h"

/* Mirror index without repeating the edge (numpy/torch "reflect"); n > 1. */
static int reflect(int i, int n) {
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/* Separable Gaussian blur of img [G x G] in place, kernel radius r, tmp [G x G]. */
static void gaussian_blur(float *img, int G, int r, float sigma, float *tmp) {
    float k[16];
    double sum = 0;
    for (int i = -r; i <= r; i++) sum += exp(-(double)i * i / (2.0 * sigma * sigma));
    for (int i = -r; i <= r; i++) k[i + r] = (float)(exp(-(double)i * i / (2.0 * sigma * sigma)) / sum);
    for (int y = 0; y < G; y++)
        for (int x = 0; x < G; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) acc += k[i + r] * img[y * G + reflect(x + i, G)];
            tmp[y * G + x] = acc;
        }
    for (int y = 0; y < G; y++)
        for (int x = 0; x < G; x++) {
            float acc = 0;
            for (int i = -r; i <= r; i++) acc += k[i + r] * tmp[reflect(y + i, G) * G + x];
            img[y * G + x] = acc;
        }
}

/* Bilinear resize [G x G] -> [S x S], align_corners=True; out += result when accumulate. */
static void bilinear_up(const float *img, int G, int S, float *out, int accumulate) {
    const float scale = S > 1 ? (float)(G - 1) / (float)(S - 1) : 0.0f;
#pragma omp parallel for schedule(static) if ((size_t)S * S > 65536)
    for (int oy = 0; oy < S; oy++) {
        const float sy = scale * oy;
        int y0 = (int)sy;
        if (y0 > G - 1) y0 = G - 1;
        const int y1 = y0 + 1 < G ? y0 + 1 : G - 1;
        const float fy = sy - y0, gy = 1.0f - fy;
        float *row = out + (size_t)oy * S;
        for (int ox = 0; ox < S; ox++) {
            const float sx = scale * ox;
            int x0 = (int)sx;
            if (x0 > G - 1) x0 = G - 1;
            const int x1 = x0 + 1 < G ? x0 + 1 : G - 1;
            const float fx = sx - x0, gx = 1.0f - fx;
            const float v = gy * (gx * img[y0 * G + x0] + fx * img[y0 * G + x1]) +
                            fy * (gx * img[y1 * G + x0] + fx * img[y1 * G + x1]);
            row[ox] = accumulate ? row[ox] + v : v;
        }
    }
}

aac_status aac_anomaly_maps(aac_model *m, const aac_vision_out *v, const float *T,
                            aac_domain domain, float **level_maps, float *sum, float *score_det,
                            aac_error *err) {
    if (!m || !v || !T) return aac_fail(err, AAC_ERR_ARG, "aac_anomaly_maps: NULL argument");
    const aac_config *c = &m->cfg;
    const int G = m->grid, Np = G * G, E = c->embed_dim, S = c->img;
    const int r = domain == AAC_DOMAIN_INDUSTRIAL ? 3 : 4;
    const float sigma = domain == AAC_DOMAIN_INDUSTRIAL ? 1.0f : 1.5f;
    if (G <= r) return aac_fail(err, AAC_ERR_UNSUPPORTED, "patch grid %d too small for the blur", G);
    /* scratch from the model workspace: [Np x 2] | [G x G] | [G x G] fits in N x W (W >= 4) */
    float *sim = m->ws.tmp, *grid = sim + 2 * (size_t)Np, *tmp = grid + Np;
    for (int k = 0; k < c->n_levels; k++) {
        if (!v->seg_tokens[k]) return aac_fail(err, AAC_ERR_ARG, "level %d features are missing", k);
        gemm_nn(m->cx, Np, 2, E, 100.0f, v->seg_tokens[k], E, T, 2, 0.0f, sim, 2);
        for (int t = 0; t < Np; t++) grid[t] = (sim[2 * t + 1] + 1.0f - sim[2 * t]) / 2.0f;
        gaussian_blur(grid, G, r, sigma, tmp);
        if (level_maps && level_maps[k]) bilinear_up(grid, G, S, level_maps[k], 0);
        if (sum) bilinear_up(grid, G, S, sum, k > 0);
    }
    aac_status s = compute_take_error(m->cx, err);
    if (s) return s;
    if (score_det) {
        if (!v->det_token) return aac_fail(err, AAC_ERR_ARG, "detection vector is missing");
        float p = 0;
        for (int e = 0; e < E; e++) p += v->det_token[e] * T[e * 2 + 1];
        *score_det = (p + 1.0f) / 2.0f;
    }
    return AAC_OK;
}

float aac_image_score(aac_domain domain, float map_max, float score_det) {
    return domain == AAC_DOMAIN_INDUSTRIAL ? 0.5f * map_max + 0.5f * score_det : map_max;
}
