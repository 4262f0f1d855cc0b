/* vision.c - the CLIP vision tower with AA-CLIP's residual adapters and level features. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "model.h"

/* Patch embedding as one GEMM: im2col rows [Np x 3PP] (channel, row, column order, as the
 * conv weight [W, 3, P, P] is laid out) times conv1^T, written to x rows 1..Np. */
static void patch_embed(const aac_model *m, const float *image, float *x, float *cols) {
    const int P = m->cfg.patch, S = m->cfg.img, G = m->grid, W = m->cfg.v_width;
    const int K = 3 * P * P;
    for (int t = 0; t < G * G; t++) {
        const int gy = t / G, gx = t % G;
        float *col = cols + (size_t)t * K;
        for (int c = 0; c < 3; c++)
            for (int py = 0; py < P; py++) {
                const float *src = image + ((size_t)c * S + (size_t)gy * P + py) * S + (size_t)gx * P;
                memcpy(col + (c * P + py) * P, src, sizeof(float) * P);
            }
    }
    linear(m->cx, m->conv1_w, m->conv1_p, W, K, G * G, 1.0f, cols, K, 0.0f, x + W, W);
}

/* out [n x E] = normalize?(ln_post(tokens) @ proj) with proj either [E, W] ("nt") or [W, E]. */
static void project_tokens(const aac_model *m, const float *tokens, int n, const float *proj,
                           int proj_is_out_in, int relu, int normalize, float *ln_buf,
                           float *out) {
    const int W = m->cfg.v_width, E = m->cfg.embed_dim;
    layernorm(tokens, ln_buf, m->ln_post_w, m->ln_post_b, n, W, W, W);
    if (proj_is_out_in)
        gemm_nt(m->cx, n, E, W, 1.0f, ln_buf, W, proj, W, 0.0f, out, E);
    else
        gemm_nn(m->cx, n, E, W, 1.0f, ln_buf, W, proj, E, 0.0f, out, E);
    if (relu) leaky_relu(out, (size_t)n * E, 0.01f);
    if (normalize) l2_normalize_rows(out, n, E);
}

static void trace_block(const aac_model *m, int i, const char *what, const float *x, int n, int w) {
    char name[64];
    snprintf(name, sizeof name, "visual.block%02d.%s", i, what);
    m->trace(m->trace_ctx, name, x, n, w);
}

aac_status aac_encode_image(aac_model *m, const float *image, int adapted, aac_vision_out *out,
                            aac_error *err) {
    if (!m || !image || !out) return aac_fail(err, AAC_ERR_ARG, "aac_encode_image: NULL argument");
    if (adapted && !m->has_adapters)
        return aac_fail(err, AAC_ERR_ARG, "the model has no AA-CLIP adapters loaded");
    const aac_config *c = &m->cfg;
    const int W = c->v_width, E = c->embed_dim, G = m->grid, Np = G * G, N = Np + 1;
    workspace *ws = &m->ws;
    float *x = ws->x;
    compute_take_error(m->cx, NULL); /* a failure of an earlier pass was reported there */

    patch_embed(m, image, x, ws->big);
    memcpy(x, m->class_emb, sizeof(float) * W);
    for (size_t i = 0; i < (size_t)N * W; i++) x[i] += m->v_pos[i];
    if (m->trace) m->trace(m->trace_ctx, "visual.embed", x, N, W);
    layernorm(x, x, m->ln_pre_w, m->ln_pre_b, N, W, W, W);
    if (m->trace) m->trace(m->trace_ctx, "visual.ln_pre", x, N, W);

    int level = 0;
    for (int i = 0; i < c->v_layers; i++) {
        block_forward(m, &m->vblocks[i], x, N, W, m->v_heads, 0, ws);
        if (m->trace) trace_block(m, i, "out", x, N, W);
        if (adapted && i < c->image_adapt_until) {
            adapter_mix(m->cx, x, N, W, m->v_adapt[i], c->image_adapt_weight, ws->tmp);
            if (m->trace) trace_block(m, i, "adapted", x, N, W);
        }
        if (!adapted) continue;
        while (level < c->n_levels && c->levels[level] == i + 1) {
            /* F_k = normalize(ln_post(patch tokens) @ S_k^T) */
            if (out->seg_tokens[level])
                project_tokens(m, x + W, Np, m->seg_proj[level], 1, c->relu, 1, ws->tmp,
                               out->seg_tokens[level]);
            level++;
        }
    }
    if (adapted) {
        if (out->det_token) {
            /* d = mean over tokens of normalize(ln_post(last tokens) @ D^T), not re-normalised */
            float *proj = ws->qkv; /* [Np x E] fits: qkv holds N x 3W and E <= 3W is checked */
            project_tokens(m, x + W, Np, m->det_proj, 1, c->relu, 1, ws->tmp, proj);
            for (int e = 0; e < E; e++) {
                double s = 0;
                for (int t = 0; t < Np; t++) s += proj[(size_t)t * E + e];
                out->det_token[e] = (float)(s / Np);
            }
        }
    } else {
        if (out->cls_embed) project_tokens(m, x, 1, m->v_proj, 0, 0, 0, ws->tmp, out->cls_embed);
        if (out->patch_proj) project_tokens(m, x + W, Np, m->v_proj, 0, 0, 0, ws->tmp, out->patch_proj);
    }
    return compute_take_error(m->cx, err);
}
