/* block_backward.c - backward pass of a frozen pre-norm transformer block by recomputation.
 *
 * Training keeps only each block's input residual stream; the backward pass of block i
 * recomputes that block's internals from its input (block_recompute) and then runs the
 * backward (block_backward). The attention probabilities are recomputed per head inside the
 * backward, so no n x n matrix outlives its head. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kernels_backward.h"
#include "train_internal.h"

int block_bw_ws_init(block_bw_ws *ws, int n, int W, int slots) {
    memset(ws, 0, sizeof *ws);
    const size_t nw = (size_t)n * W;
    ws->n_cap = n;
    ws->w_cap = W;
    ws->slots = slots > 0 ? slots : 1;
    float *p = malloc(sizeof(float) * (18 * nw + 2 * (size_t)ws->slots * n * n));
    if (!p) return 0;
    ws->h = p;
    ws->qkv = ws->h + nw;
    ws->x2 = ws->qkv + 3 * nw;
    ws->u = ws->x2 + nw;
    ws->g = ws->u + 4 * nw;
    ws->y = ws->g + 4 * nw;
    ws->dqkv = ws->y + nw;
    ws->dtmp = ws->dqkv + 3 * nw;
    ws->P = ws->dtmp + nw;
    ws->dP = ws->P + (size_t)ws->slots * n * n;
    return 1;
}

void block_bw_ws_free(block_bw_ws *ws) {
    free(ws->h);
    memset(ws, 0, sizeof *ws);
}

static int head_threads(const block_bw_ws *ws, int heads) {
    int nt = omp_get_max_threads();
    nt = nt < ws->slots ? nt : ws->slots;
    return nt < heads ? nt : heads;
}

void block_recompute(const aac_model *m, const block_weights *bw, const float *x, int n, int W,
                     int heads, int causal, block_bw_ws *ws) {
    const int W3 = 3 * W, W4 = 4 * W, hw = W / heads;
    const float scale = 1.0f / sqrtf((float)hw);
    layernorm(x, ws->h, bw->ln1_w, bw->ln1_b, n, W, W, W);
    gemm_nt(n, W3, W, 1.0f, ws->h, W, bw->in_w, W, 0.0f, ws->qkv, W3);
    bias_act(ws->qkv, bw->in_b, n, W3, 0);
    const int nt = head_threads(ws, heads);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int hd = 0; hd < heads; hd++) {
        float *sc = ws->P + (size_t)omp_get_thread_num() * n * n;
        const float *q = ws->qkv + hd * hw, *k = q + W, *v = q + 2 * W;
        gemm_nt(n, n, hw, scale, q, W3, k, W3, 0.0f, sc, n);
        softmax_rows(sc, n, n, n, causal ? 0 : -1);
        gemm_nn(n, hw, n, 1.0f, sc, n, v, W3, 0.0f, ws->dtmp + hd * hw, W);
    }
    memcpy(ws->x2, x, sizeof(float) * (size_t)n * W);
    gemm_nt(n, W, W, 1.0f, ws->dtmp, W, bw->out_w, W, 1.0f, ws->x2, W);
    bias_act(ws->x2, bw->out_b, n, W, 0);

    layernorm(ws->x2, ws->h, bw->ln2_w, bw->ln2_b, n, W, W, W);
    gemm_nt(n, W4, W, 1.0f, ws->h, W, bw->fc_w, W, 0.0f, ws->u, W4);
    bias_act(ws->u, bw->fc_b, n, W4, 0);
    memcpy(ws->g, ws->u, sizeof(float) * (size_t)n * W4);
    if (m->cfg.activation == AAC_ACT_QUICK_GELU)
        quick_gelu(ws->g, (size_t)n * W4);
    else
        gelu_exact(ws->g, (size_t)n * W4);
    memcpy(ws->y, ws->x2, sizeof(float) * (size_t)n * W);
    gemm_nt(n, W, W4, 1.0f, ws->g, W4, bw->pj_w, W4, 1.0f, ws->y, W);
    bias_act(ws->y, bw->pj_b, n, W, 0);
}

void block_backward(const aac_model *m, const block_weights *bw, const float *x, const float *dy,
                    float *dx, int n, int W, int heads, int causal, block_bw_ws *ws) {
    const int W3 = 3 * W, W4 = 4 * W, hw = W / heads;
    const float scale = 1.0f / sqrtf((float)hw);
    if (dx != dy) memcpy(dx, dy, sizeof(float) * (size_t)n * W);
    /* MLP branch: y = x2 + act(LN2(x2) Wfc^T + bfc) Wpj^T + bpj */
    gemm_nn(n, W4, W, 1.0f, dx, W, bw->pj_w, W4, 0.0f, ws->g, W4); /* dact = dy Wpj */
    if (m->cfg.activation == AAC_ACT_QUICK_GELU)
        quick_gelu_backward(ws->u, ws->g, (size_t)n * W4);
    else
        gelu_backward(ws->u, ws->g, (size_t)n * W4);
    gemm_nn(n, W, W4, 1.0f, ws->g, W4, bw->fc_w, W, 0.0f, ws->dtmp, W); /* dLN2 = du Wfc */
    layernorm_backward(ws->x2, bw->ln2_w, ws->dtmp, dx, n, W, W, W, W, 1); /* dx2 */
    /* attention branch: x2 = x + attn(LN1(x)) Wout^T + bout */
    gemm_nn(n, W, W, 1.0f, dx, W, bw->out_w, W, 0.0f, ws->dtmp, W); /* d(attention output) */
    const int nt = head_threads(ws, heads);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int hd = 0; hd < heads; hd++) {
        const size_t slot = (size_t)omp_get_thread_num() * n * n;
        const float *q = ws->qkv + hd * hw;
        float *dq = ws->dqkv + hd * hw;
        attention_head_backward(n, hw, scale, causal, q, q + W, q + 2 * W, W3, ws->dtmp + hd * hw,
                                W, dq, dq + W, dq + 2 * W, W3, ws->P + slot, ws->dP + slot);
    }
    /* the in_proj bias has no input gradient; dLN1 = dqkv Win */
    gemm_nn(n, W, W3, 1.0f, ws->dqkv, W3, bw->in_w, W, 0.0f, ws->dtmp, W);
    layernorm_backward(x, bw->ln1_w, ws->dtmp, dx, n, W, W, W, W, 1);
}
