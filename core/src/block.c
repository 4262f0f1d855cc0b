/* block.c - one pre-norm transformer block and the AA-CLIP adapter mixing. */
#include <math.h>
#include <omp.h>

#include "kernels.h"
#include "model.h"

void block_forward(const aac_model *m, const block_weights *bw, float *x, int n, int width,
                   int heads, int causal, workspace *ws) {
    const int W = width, W3 = 3 * width, hw = width / heads;
    float *h = ws->h, *qkv = ws->qkv, *big = ws->big;

    /* x = x + out_proj(attention(LN1(x))) */
    layernorm(x, h, bw->ln1_w, bw->ln1_b, n, W, W, W);
    gemm_nt(n, W3, W, 1.0f, h, W, bw->in_w, W, 0.0f, qkv, W3);
    bias_act(qkv, bw->in_b, n, W3, 0);
    const float scale = 1.0f / sqrtf((float)hw);
    /* heads in parallel, each with its own score buffer and single-threaded products */
    int nt = omp_get_max_threads();
    nt = nt < ws->score_slots ? nt : ws->score_slots;
    nt = nt < heads ? nt : heads;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int hd = 0; hd < heads; hd++) {
        float *sc = ws->scores + (size_t)omp_get_thread_num() * n * n;
        const float *q = qkv + hd * hw, *k = qkv + W + hd * hw, *v = qkv + 2 * W + hd * hw;
        gemm_nt(n, n, hw, scale, q, W3, k, W3, 0.0f, sc, n); /* scores [n x n] */
        softmax_rows(sc, n, n, n, causal ? 0 : -1);
        gemm_nn(n, hw, n, 1.0f, sc, n, v, W3, 0.0f, h + hd * hw, W); /* heads side by side */
    }
    gemm_nt(n, W, W, 1.0f, h, W, bw->out_w, W, 1.0f, x, W);
    bias_act(x, bw->out_b, n, W, 0);

    /* x = x + c_proj(act(c_fc(LN2(x)))) */
    layernorm(x, h, bw->ln2_w, bw->ln2_b, n, W, W, W);
    gemm_nt(n, 4 * W, W, 1.0f, h, W, bw->fc_w, W, 0.0f, big, 4 * W);
    bias_act(big, bw->fc_b, n, 4 * W, m->cfg.activation == AAC_ACT_QUICK_GELU ? 2 : 1);
    gemm_nt(n, W, 4 * W, 1.0f, big, 4 * W, bw->pj_w, 4 * W, 1.0f, x, W);
    bias_act(x, bw->pj_b, n, W, 0);
}

void adapter_mix(float *x, int n, int width, const float *A, float weight, float *tmp) {
    gemm_nt(n, width, width, 1.0f, x, width, A, width, 0.0f, tmp, width);
    leaky_relu(tmp, (size_t)n * width, 0.01f);
    for (int r = 0; r < n; r++) {
        float *xr = x + (size_t)r * width;
        const float *ar = tmp + (size_t)r * width;
        /* rescale the adapter output to the token's own norm before mixing */
        const float s = weight * l2_norm(xr, width) / l2_norm(ar, width);
        for (int j = 0; j < width; j++) xr[j] = s * ar[j] + (1.0f - weight) * xr[j];
    }
}
