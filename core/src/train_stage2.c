/* train_stage2.c - loss and gradients of AA-CLIP's stage 2: vision adapters (blocks
 * 0..until-1), seg projections and the det projection, against fixed anchors T.
 *
 *   loss = CE(d @ T, label) + sum_k [focal + dice(Q_normal, 1 - mask) + dice(Q_abnormal, mask)]
 *
 * with Q the 2-way softmax of the bilinear (align_corners) upsampled 100 F_k @ T. The images of
 * a batch only meet in the means of the losses, so each image runs forward and backward on
 * its own: the forward keeps the residual stream at the input of every block (one N x W
 * buffer per block), the backward walks the blocks top-down, adding each level's gradient where
 * its tokens were taken and recomputing every block from its saved input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "train_internal.h"

typedef struct s2_buf {
    float *streams; /* [(top + 1) x N x W] */
    float *dx;      /* [N x W] */
    float *lnout, *dln; /* [Np x W] */
    float *zpre, *z, *F; /* [Np x E] */
    float *s, *ds;  /* [Np x 2] */
    float *mixscr;  /* [2 x N x W] */
    float *zero_mask; /* [S x S] */
} s2_buf;

/* One level (k) of one image: seg loss, dS_k, and dL/dtokens added into dtok [Np x W]. With
 * det != NULL also the detection branch (CE against label, scaled 1/B), dD. */
static double level_backward(aac_trainer *t, s2_buf *bf, const float *tok, float *dtok, int k,
                             const float *T, const float *mask, int B, int label, int det,
                             aac_train_stats *st) {
    aac_model *m = t->m;
    const aac_config *c = &m->cfg;
    const int W = c->v_width, E = c->embed_dim, G = m->grid, Np = G * G, S = c->img;
    layernorm(tok, bf->lnout, m->ln_post_w, m->ln_post_b, Np, W, W, W);
    train_tensor *P = det ? &t->t[t->i_det] : &t->t[t->i_seg[k]];
    /* z = [LeakyReLU](ln_post(tok) @ P^T), F = normalize(z) */
    gemm_nt(m->cx, Np, E, W, 1.0f, bf->lnout, W, P->w, W, 0.0f, bf->z, E);
    if (c->relu) {
        memcpy(bf->zpre, bf->z, sizeof(float) * Np * E);
        leaky_relu(bf->z, (size_t)Np * E, 0.01f);
    }
    memcpy(bf->F, bf->z, sizeof(float) * Np * E);
    l2_normalize_rows(bf->F, Np, E);
    double loss;
    if (!det) {
        gemm_nn(m->cx, Np, 2, E, 100.0f, bf->F, E, T, 2, 0.0f, bf->s, 2);
        double parts[3];
        loss = seg_loss_image(bf->s, G, S, mask, B, 1.0f, bf->ds, parts, &t->seg);
        st->focal += parts[0], st->dice_normal += parts[1], st->dice_abnormal += parts[2];
        similarity_backward(m->cx, bf->F, T, bf->ds, Np, E, 100.0f, bf->F, NULL, 0); /* dF over F */
    } else {
        /* d = mean_t F_t (not re-normalised), logits d @ T (no temperature) */
        float d[4096], logits[2], dl[2], dd[4096];
        for (int e = 0; e < E; e++) {
            double s = 0;
            for (int r = 0; r < Np; r++) s += bf->F[(size_t)r * E + e];
            d[e] = (float)(s / Np);
        }
        for (int j = 0; j < 2; j++) {
            float s = 0;
            for (int e = 0; e < E; e++) s += d[e] * T[e * 2 + j];
            logits[j] = s;
        }
        loss = cross_entropy_fwd_bwd(logits, &label, 1, 2, dl) / B;
        for (int e = 0; e < E; e++) dd[e] = (dl[0] * T[e * 2] + dl[1] * T[e * 2 + 1]) / B;
        token_mean_backward(dd, bf->F, Np, E, 0); /* dF over F */
    }
    l2_normalize_backward(bf->z, bf->F, bf->F, Np, E); /* dz */
    if (c->relu) leaky_relu_backward(bf->zpre, bf->F, (size_t)Np * E, 0.01f);
    linear_backward_weight(m->cx, Np, E, W, bf->F, bf->lnout, P->g);
    linear_backward_input(m->cx, Np, E, W, bf->F, P->w, bf->dln, 0.0f);
    layernorm_backward(tok, m->ln_post_w, bf->dln, dtok, Np, W, W, W, W, 1);
    return loss;
}

aac_status train_stage2_gradients(aac_trainer *t, const aac_train_batch *b, aac_train_stats *st,
                                  aac_error *err) {
    aac_model *m = t->m;
    const aac_config *c = &m->cfg;
    const int W = c->v_width, E = c->embed_dim, G = m->grid, Np = G * G, N = Np + 1, S = c->img;
    const int until = c->image_adapt_until, B = b->n, heads = m->v_heads;
    if (E > 4096) return aac_fail(err, AAC_ERR_UNSUPPORTED, "embedding size %d too large", E);
    int top = 0;
    for (int k = 0; k < c->n_levels; k++) {
        if (k && c->levels[k] <= c->levels[k - 1])
            return aac_fail(err, AAC_ERR_UNSUPPORTED, "levels must be increasing");
        top = c->levels[k] > top ? c->levels[k] : top;
    }
    const float *T[64];
    if (B > 64) return aac_fail(err, AAC_ERR_ARG, "batch of %d images is too large (max 64)", B);
    for (int i = 0; i < B; i++) {
        aac_status s = train_anchors_cached(t, b->descriptions[i], &T[i], err);
        if (s) return s;
    }
    const size_t nw = (size_t)N * W, pw = (size_t)Np * W, pe = (size_t)Np * E;
    s2_buf bf;
    float *mem = malloc(sizeof(float) * ((size_t)(top + 1) * nw + nw + 2 * pw + 3 * pe +
                                         4 * (size_t)Np + 2 * nw + (size_t)S * S));
    if (!mem) return aac_fail(err, AAC_ERR_NOMEM, "out of memory for the stage-2 activations");
    bf.streams = mem;
    bf.dx = bf.streams + (size_t)(top + 1) * nw;
    bf.lnout = bf.dx + nw;
    bf.dln = bf.lnout + pw;
    bf.zpre = bf.dln + pw;
    bf.z = bf.zpre + pe;
    bf.F = bf.z + pe;
    bf.s = bf.F + pe;
    bf.ds = bf.s + 2 * (size_t)Np;
    bf.mixscr = bf.ds + 2 * (size_t)Np;
    bf.zero_mask = bf.mixscr + 2 * nw;
    memset(bf.zero_mask, 0, sizeof(float) * S * S);

    for (int bi = 0; bi < B; bi++) {
        const float *image = b->images + (size_t)bi * 3 * S * S;
        const float *mask = b->masks ? b->masks + (size_t)bi * S * S : bf.zero_mask;
        int label;
        if (b->labels) {
            label = b->labels[bi];
            if (label != 0 && label != 1) {
                free(mem);
                return aac_fail(err, AAC_ERR_ARG, "label of image %d is %d (0 or 1 expected)", bi, label);
            }
        } else {
            label = 0;
            for (size_t i = 0; i < (size_t)S * S && !label; i++) label = mask[i] != 0.0f;
        }
        /* forward, keeping the input of every block */
        train_vision_embed(m, image, bf.streams, m->ws.big);
        for (int i = 0; i < top; i++) {
            float *x = bf.streams + (size_t)(i + 1) * nw;
            memcpy(x, x - nw, sizeof(float) * nw);
            block_forward(m, &m->vblocks[i], x, N, W, heads, 0, &m->ws);
            if (i < until) adapter_mix(m->cx, x, N, W, t->t[t->i_vadapt[i]].w, c->image_adapt_weight, m->ws.tmp);
        }
        /* backward, top-down */
        memset(bf.dx, 0, sizeof(float) * nw);
        for (int i = top - 1; i >= 0; i--) {
            const float *out = bf.streams + (size_t)(i + 1) * nw;
            for (int k = 0; k < c->n_levels; k++) {
                if (c->levels[k] != i + 1) continue;
                st->loss_seg += level_backward(t, &bf, out + W, bf.dx + W, k, T[bi], mask, B, label, 0, st);
                if (k == c->n_levels - 1)
                    st->loss_ce += level_backward(t, &bf, out + W, bf.dx + W, k, T[bi], mask, B, label, 1, st);
            }
            if (until == 0) continue; /* only the projections learn */
            const float *in = bf.streams + (size_t)i * nw;
            if (i < until) {
                block_recompute(m, &m->vblocks[i], in, N, W, heads, 0, &t->bw);
                train_tensor *A = &t->t[t->i_vadapt[i]];
                adapter_mix_backward(m->cx, t->bw.y, N, W, A->w, c->image_adapt_weight, bf.dx, bf.dx, A->g,
                                     bf.mixscr);
                if (i == 0) break; /* nothing trainable below block 0 */
            } else {
                block_recompute(m, &m->vblocks[i], in, N, W, heads, 0, &t->bw);
            }
            block_backward(m, &m->vblocks[i], in, bf.dx, bf.dx, N, W, heads, 0, &t->bw);
        }
    }
    st->loss = st->loss_ce + st->loss_seg;
    free(mem);
    return compute_take_error(m->cx, err);
}
