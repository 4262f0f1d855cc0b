/* block_backward.c - backward pass of a frozen pre-norm transformer block by recomputation.
 *
 * Training keeps only each block's input residual stream; the backward pass of block i
 * recomputes that block's internals from its input (block_recompute) and then runs the
 * backward (block_backward). The attention probabilities are recomputed by blocks of query
 * rows inside the backward, so no n x n matrix is ever stored. */
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
    const size_t tile = (size_t)attention_block_rows(n) * n;
    float *p = malloc(sizeof(float) * (18 * nw + 2 * (size_t)ws->slots * tile));
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
    ws->dP = ws->P + (size_t)ws->slots * tile;
    return 1;
}

void block_bw_ws_free(block_bw_ws *ws) {
    free(ws->h);
    memset(ws, 0, sizeof *ws);
}

static int head_threads(const aac_compute *cx, const block_bw_ws *ws, int heads) {
    int nt = compute_concurrent(cx) ? omp_get_max_threads() : 1;
    nt = nt < ws->slots ? nt : ws->slots;
    return nt < heads ? nt : heads;
}

void block_recompute(const aac_model *m, const block_weights *bw, const float *x, int n, int W,
                     int heads, int causal, block_bw_ws *ws) {
    const int W3 = 3 * W, W4 = 4 * W, hw = W / heads;
    aac_compute *cx = m->cx;
    layernorm(x, ws->h, bw->ln1_w, bw->ln1_b, n, W, W, W);
    linear(cx, bw->in_w, bw->in_p, W3, W, n, 1.0f, ws->h, W, 0.0f, ws->qkv, W3);
    bias_act(ws->qkv, bw->in_b, n, W3, 0);
    attention_forward(cx, ws->qkv, ws->qkv + W, ws->qkv + 2 * W, W3, ws->dtmp, W, n, heads, hw,
                      causal, 1.0f / sqrtf((float)hw), ws->P, ws->slots);
    memcpy(ws->x2, x, sizeof(float) * (size_t)n * W);
    linear(cx, bw->out_w, bw->out_p, W, W, n, 1.0f, ws->dtmp, W, 1.0f, ws->x2, W);
    bias_act(ws->x2, bw->out_b, n, W, 0);

    layernorm(ws->x2, ws->h, bw->ln2_w, bw->ln2_b, n, W, W, W);
    linear(cx, bw->fc_w, bw->fc_p, W4, W, n, 1.0f, ws->h, W, 0.0f, ws->u, W4);
    bias_act(ws->u, bw->fc_b, n, W4, 0);
    memcpy(ws->g, ws->u, sizeof(float) * (size_t)n * W4);
    if (m->cfg.activation == AAC_ACT_QUICK_GELU)
        quick_gelu(ws->g, (size_t)n * W4);
    else
        gelu_exact(ws->g, (size_t)n * W4);
    memcpy(ws->y, ws->x2, sizeof(float) * (size_t)n * W);
    linear(cx, bw->pj_w, bw->pj_p, W, W4, n, 1.0f, ws->g, W4, 1.0f, ws->y, W);
    bias_act(ws->y, bw->pj_b, n, W, 0);
}

void block_backward(const aac_model *m, const block_weights *bw, const float *x, const float *dy,
                    float *dx, int n, int W, int heads, int causal, block_bw_ws *ws) {
    const int W3 = 3 * W, W4 = 4 * W, hw = W / heads;
    const float scale = 1.0f / sqrtf((float)hw);
    aac_compute *cx = m->cx;
    if (dx != dy) memcpy(dx, dy, sizeof(float) * (size_t)n * W);
    /* MLP branch: y = x2 + act(LN2(x2) Wfc^T + bfc) Wpj^T + bpj */
    gemm_nn(cx, n, W4, W, 1.0f, dx, W, bw->pj_w, W4, 0.0f, ws->g, W4); /* dact = dy Wpj */
    if (m->cfg.activation == AAC_ACT_QUICK_GELU)
        quick_gelu_backward(ws->u, ws->g, (size_t)n * W4);
    else
        gelu_backward(ws->u, ws->g, (size_t)n * W4);
    gemm_nn(cx, n, W, W4, 1.0f, ws->g, W4, bw->fc_w, W, 0.0f, ws->dtmp, W); /* dLN2 = du Wfc */
    layernorm_backward(ws->x2, bw->ln2_w, ws->dtmp, dx, n, W, W, W, W, 1); /* dx2 */
    /* attention branch: x2 = x + attn(LN1(x)) Wout^T + bout */
    gemm_nn(cx, n, W, W, 1.0f, dx, W, bw->out_w, W, 0.0f, ws->dtmp, W); /* d(attention output) */
    const int nt = head_threads(cx, ws, heads);
    const size_t tile = (size_t)attention_block_rows(n) * n;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int hd = 0; hd < heads; hd++) {
        const size_t slot = (size_t)omp_get_thread_num() * tile;
        const float *q = ws->qkv + hd * hw;
        float *dq = ws->dqkv + hd * hw;
        attention_head_backward(cx, n, hw, scale, causal, q, q + W, q + 2 * W, W3, ws->dtmp + hd * hw,
                                W, dq, dq + W, dq + 2 * W, W3, ws->P + slot, ws->dP + slot);
    }
    /* the in_proj bias has no input gradient; dLN1 = dqkv Win */
    gemm_nn(cx, n, W, W3, 1.0f, ws->dqkv, W3, bw->in_w, W, 0.0f, ws->dtmp, W);
    layernorm_backward(x, bw->ln1_w, ws->dtmp, dx, n, W, W, W, W, 1);
}
