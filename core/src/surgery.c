/* surgery.c - the frozen "surgery" vision tower that gives AA-CLIP's stage 1 its image features.
 *
 * The top `vv_layers` blocks (19 of ViT-L's 24: blocks 5..23) replace self-attention by V-V
 * attention: queries and keys are both the value projection, softmax(v v^T / sqrt(hw)) v, then
 * out_proj; the MLP half is unchanged. The reference hands its V-V module a (tokens, batch, C)
 * tensor that the module reads as (batch, tokens, C), so it attends across the images of the
 * batch at each token position; batch_attention = 1 reproduces that, 0 (the default of the
 * trainer) attends across the tokens of each image as intended. Level tokens become
 * normalize(ln_post(tokens) @ proj) + cls (the normalised plain image embedding), not
 * re-normalised. No gradient flows here: the features are inputs of the text-adapter loss. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "train_internal.h"

/* One V-V block on the gB residual streams xs[j] [N x W] (each updated in place). v, o:
 * gB x N x W scratch. */
static void vv_block(aac_model *m, const block_weights *bw, float *const *xs, int gB,
                     int batch_attention, float *v, float *o) {
    const int W = m->cfg.v_width, G = m->grid, N = G * G + 1, heads = m->v_heads, hw = W / heads;
    const size_t nw = (size_t)N * W;
    const float scale = 1.0f / sqrtf((float)hw);
    workspace *ws = &m->ws;
    for (int j = 0; j < gB; j++) {
        /* v = LN1(x) Wv^T + bv (rows 2W..3W of in_proj); q and k are not used */
        layernorm(xs[j], ws->h, bw->ln1_w, bw->ln1_b, N, W, W, W);
        gemm_nt(m->cx, N, W, W, 1.0f, ws->h, W, bw->in_w + 2 * (size_t)W * W, W, 0.0f, v + j * nw, W);
        bias_act(v + j * nw, bw->in_b + 2 * W, N, W, 0);
    }
    if (!batch_attention) {
        /* softmax(v v^T / sqrt(hw)) v per head */
        for (int j = 0; j < gB; j++)
            attention_forward(m->cx, v + j * nw, v + j * nw, v + j * nw, W, o + j * nw, W, N, heads,
                              hw, 0, scale, ws->scores, ws->score_slots);
    } else {
        /* at each token position and head: a gB x gB attention among the images */
#pragma omp parallel for schedule(static) if ((size_t)N * gB * gB * W > 65536)
        for (int t = 0; t < N; t++) {
            float sc[64];
            for (int hd = 0; hd < heads; hd++) {
                for (int a = 0; a < gB; a++) {
                    const float *va = v + a * nw + (size_t)t * W + hd * hw;
                    float mx = -INFINITY;
                    for (int c = 0; c < gB; c++) {
                        const float *vc = v + c * nw + (size_t)t * W + hd * hw;
                        float s = 0;
                        for (int i = 0; i < hw; i++) s += va[i] * vc[i];
                        sc[c] = s * scale;
                        mx = sc[c] > mx ? sc[c] : mx;
                    }
                    float sum = 0;
                    for (int c = 0; c < gB; c++) sum += (sc[c] = expf(sc[c] - mx));
                    float *oa = o + a * nw + (size_t)t * W + hd * hw;
                    for (int i = 0; i < hw; i++) oa[i] = 0;
                    for (int c = 0; c < gB; c++) {
                        const float p = sc[c] / sum;
                        const float *vc = v + c * nw + (size_t)t * W + hd * hw;
                        for (int i = 0; i < hw; i++) oa[i] += p * vc[i];
                    }
                }
            }
        }
    }
    const int act = m->cfg.activation == AAC_ACT_QUICK_GELU ? 2 : 1;
    for (int j = 0; j < gB; j++) {
        float *x = xs[j];
        linear(m->cx, bw->out_w, bw->out_p, W, W, N, 1.0f, o + j * nw, W, 1.0f, x, W);
        bias_act(x, bw->out_b, N, W, 0);
        layernorm(x, ws->h, bw->ln2_w, bw->ln2_b, N, W, W, W);
        linear(m->cx, bw->fc_w, bw->fc_p, 4 * W, W, N, 1.0f, ws->h, W, 0.0f, ws->big, 4 * W);
        bias_act(ws->big, bw->fc_b, N, 4 * W, act);
        linear(m->cx, bw->pj_w, bw->pj_p, W, 4 * W, N, 1.0f, ws->big, 4 * W, 1.0f, x, W);
        bias_act(x, bw->pj_b, N, W, 0);
    }
}

aac_status surgery_features(aac_model *m, const float *images, int B, int batch_attention,
                            int vv_layers, const float *cls, float **feats, aac_error *err) {
    const aac_config *c = &m->cfg;
    const int W = c->v_width, E = c->embed_dim, G = m->grid, Np = G * G, N = Np + 1, S = c->img;
    const int L = c->v_layers;
    if (batch_attention && B > 64)
        return aac_fail(err, AAC_ERR_ARG, "batch V-V attention over %d images (max 64)", B);
    if (vv_layers > L) vv_layers = L;
    if (vv_layers < 0) vv_layers = 0;
    const int first_vv = L - vv_layers;
    int top = 0;
    for (int k = 0; k < c->n_levels; k++)
        if (feats[k] && c->levels[k] > top) top = c->levels[k];
    const int group = batch_attention ? B : 1;
    const size_t nw = (size_t)N * W;
    float *mem = malloc(sizeof(float) * (3 * (size_t)group * nw + (size_t)Np * W));
    float **xs = malloc(sizeof(float *) * group);
    if (!mem || !xs) {
        free(mem), free(xs);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory for the surgery tower");
    }
    float *v = mem + (size_t)group * nw, *o = v + (size_t)group * nw, *lnout = o + (size_t)group * nw;
    for (int j = 0; j < group; j++) xs[j] = mem + (size_t)j * nw;
    for (int g0 = 0; g0 < B; g0 += group) {
        const int gB = B - g0 < group ? B - g0 : group;
        for (int j = 0; j < gB; j++)
            train_vision_embed(m, images + (size_t)(g0 + j) * 3 * S * S, xs[j], m->ws.big);
        for (int i = 0; i < top; i++) {
            if (i < first_vv)
                for (int j = 0; j < gB; j++)
                    block_forward(m, &m->vblocks[i], xs[j], N, W, m->v_heads, 0, &m->ws);
            else
                vv_block(m, &m->vblocks[i], xs, gB, batch_attention, v, o);
            for (int k = 0; k < c->n_levels; k++) {
                if (c->levels[k] != i + 1 || !feats[k]) continue;
                for (int j = 0; j < gB; j++) {
                    float *f = feats[k] + (size_t)(g0 + j) * Np * E;
                    layernorm(xs[j] + W, lnout, m->ln_post_w, m->ln_post_b, Np, W, W, W);
                    gemm_nn(m->cx, Np, E, W, 1.0f, lnout, W, m->v_proj, E, 0.0f, f, E);
                    l2_normalize_rows(f, Np, E);
                    if (cls)
                        for (int r = 0; r < Np; r++)
                            for (int e = 0; e < E; e++) f[(size_t)r * E + e] += cls[(size_t)(g0 + j) * E + e];
                }
            }
        }
    }
    free(mem);
    free(xs);
    return compute_take_error(m->cx, err);
}

aac_status aac_surgery_features(aac_model *m, const float *images, int n,
                                aac_surgery_attention mode, int surgery_layers, float **feats,
                                aac_error *err) {
    if (!m || !images || !feats || n < 1)
        return aac_fail(err, AAC_ERR_ARG, "aac_surgery_features: NULL argument or empty batch");
    const int E = m->cfg.embed_dim, S = m->cfg.img;
    float *cls = malloc(sizeof(float) * (size_t)n * E);
    if (!cls) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    for (int b = 0; b < n; b++) {
        aac_vision_out vo;
        memset(&vo, 0, sizeof vo);
        vo.cls_embed = cls + (size_t)b * E;
        aac_status s = aac_encode_image(m, images + (size_t)b * 3 * S * S, 0, &vo, err);
        if (s) {
            free(cls);
            return s;
        }
    }
    l2_normalize_rows(cls, n, E);
    aac_status s = surgery_features(m, images, n, mode == AAC_SURGERY_BATCH,
                                    surgery_layers > 0 ? surgery_layers : 19, cls, feats, err);
    free(cls);
    return s;
}
