/* block.c - one pre-norm transformer block and the AA-CLIP adapter mixing. */
#include <math.h>

#include "kernels.h"
#include "model.h"

void block_forward(const aac_model *m, const block_weights *bw, float *x, int n, int width,
                   int heads, int causal, workspace *ws) {
    const int W = width, W3 = 3 * width, hw = width / heads;
    float *h = ws->h, *qkv = ws->qkv, *big = ws->big;
    aac_compute *cx = m->cx;

    /* x = x + out_proj(attention(LN1(x))) */
    layernorm(x, h, bw->ln1_w, bw->ln1_b, n, W, W, W);
    linear(cx, bw->in_w, bw->in_p, W3, W, n, 1.0f, h, W, 0.0f, qkv, W3);
    bias_act(qkv, bw->in_b, n, W3, 0);
    /* heads side by side into h */
    attention_forward(cx, qkv, qkv + W, qkv + 2 * W, W3, h, W, n, heads, hw, causal,
                      1.0f / sqrtf((float)hw), ws->scores, ws->score_slots);
    linear(cx, bw->out_w, bw->out_p, W, W, n, 1.0f, h, W, 1.0f, x, W);
    bias_act(x, bw->out_b, n, W, 0);

    /* x = x + c_proj(act(c_fc(LN2(x)))) */
    layernorm(x, h, bw->ln2_w, bw->ln2_b, n, W, W, W);
    linear(cx, bw->fc_w, bw->fc_p, 4 * W, W, n, 1.0f, h, W, 0.0f, big, 4 * W);
    bias_act(big, bw->fc_b, n, 4 * W, m->cfg.activation == AAC_ACT_QUICK_GELU ? 2 : 1);
    linear(cx, bw->pj_w, bw->pj_p, W, 4 * W, n, 1.0f, big, 4 * W, 1.0f, x, W);
    bias_act(x, bw->pj_b, n, W, 0);
}

void adapter_mix(aac_compute *cx, float *x, int n, int width, const float *A, float weight,
                 float *tmp) {
    gemm_nt(cx, n, width, width, 1.0f, x, width, A, width, 0.0f, tmp, width);
#pragma omp parallel for schedule(static) if ((size_t)n * width > 65536)
    for (int r = 0; r < n; r++) {
        float *xr = x + (size_t)r * width, *ar = tmp + (size_t)r * width;
        leaky_relu(ar, (size_t)width, 0.01f);
        /* rescale the adapter output to the token's own norm before mixing */
        const float s = weight * l2_norm(xr, width) / l2_norm(ar, width);
        for (int j = 0; j < width; j++) xr[j] = s * ar[j] + (1.0f - weight) * xr[j];
    }
}
