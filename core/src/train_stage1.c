/* train_stage1.c - loss and gradients of AA-CLIP's stage 1: the text adapters (blocks
 * 0..until-1 of the text tower) and the anchor projection B, against image features of the
 * frozen surgery tower.
 *
 *   T_c = [normalize(mean_s normalize(e_s))]_{normal, abnormal},  e_s = LeakyReLU(ln_final(eot_s) B^T)
 *   loss = seg(100 f @ T) [last level only, as the reference; all levels as an option]
 *          + text_norm_weight * (mean_b t_normal . t_abnormal)^2
 *
 * The image side is frozen, so the loss is differentiated to dL/dT_c first; each class's 16
 * prompt sentences are then run again, one at a time, keeping the residual stream at the
 * input of every text block, and back-propagated from their end-of-text row (rows after it do
 * not exist: the mask is causal). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "train_internal.h"

/* Adapted text forward of one sentence. streams [(L + 1) x n x Wt] (may be NULL: not kept,
 * then x [n x Wt] is the running stream); lnf [Wt], zpre [E], e [E]. Returns n = eot + 1. */
static int text_forward(aac_model *m, const int32_t *ids, float *streams, float *x, float *lnf,
                        float *zpre, float *e) {
    const aac_config *c = &m->cfg;
    const int Wt = c->t_width, E = c->embed_dim, L = c->t_layers;
    int eot = 0;
    for (int i = 0; i < c->context; i++)
        if (ids[i] > ids[eot]) eot = i;
    const int n = eot + 1;
    const size_t nw = (size_t)n * Wt;
    float *cur = streams ? streams : x;
    for (int i = 0; i < n; i++) {
        const float *te = m->tok_emb + (size_t)ids[i] * Wt, *pe = m->t_pos + (size_t)i * Wt;
        for (int j = 0; j < Wt; j++) cur[(size_t)i * Wt + j] = te[j] + pe[j];
    }
    for (int i = 0; i < L; i++) {
        if (streams) {
            memcpy(cur + nw, cur, sizeof(float) * nw);
            cur += nw;
        }
        block_forward(m, &m->tblocks[i], cur, n, Wt, c->t_heads, 1, &m->ws);
        if (i < c->text_adapt_until)
            adapter_mix(m->cx, cur, n, Wt, m->t_adapt[i], c->text_adapt_weight, m->ws.tmp);
    }
    layernorm(cur + (size_t)eot * Wt, lnf, m->ln_final_w, m->ln_final_b, 1, Wt, Wt, Wt);
    gemm_nt(m->cx, 1, E, Wt, 1.0f, lnf, Wt, m->t_anchor_proj, Wt, 0.0f, zpre, E);
    memcpy(e, zpre, sizeof(float) * E);
    leaky_relu(e, (size_t)E, 0.01f);
    return n;
}

/* Back-propagates dT [E x 2] of description desc into the text adapters and B. */
static aac_status text_backward(aac_trainer *t, const char *desc, const float *dT, aac_error *err) {
    aac_model *m = t->m;
    const aac_config *c = &m->cfg;
    const int Wt = c->t_width, E = c->embed_dim, L = c->t_layers, ctx = c->context;
    const int until = c->text_adapt_until;
    const size_t cw = (size_t)ctx * Wt;
    /* per sentence: e, zpre, lnf; then streams, dX and mixing scratch for one sentence */
    float *mem = malloc(sizeof(float) * (16 * (2 * (size_t)E + Wt) + (size_t)(L + 1) * cw + 3 * cw +
                                         6 * (size_t)E + Wt));
    if (!mem) return aac_fail(err, AAC_ERR_NOMEM, "out of memory for the text backward pass");
    float *es = mem, *zs = es + 16 * (size_t)E, *lnfs = zs + 16 * (size_t)E;
    float *streams = lnfs + 16 * (size_t)Wt, *dX = streams + (size_t)(L + 1) * cw;
    float *mixscr = dX + cw, *mvec = mixscr + 2 * cw, *tv = mvec + E, *dm = tv + E, *du = dm + E;
    float *de = du + E, *dlnf = de + 2 * (size_t)E;
    int32_t ids[16][AAC_CONTEXT_LENGTH];
    aac_status s = AAC_OK;
    for (int j = 0; j < 16 && !s; j++) {
        s = prompt_ids(t->tok, desc, j, ids[j], err);
        if (!s) text_forward(m, ids[j], NULL, streams, lnfs + (size_t)j * Wt, zs + (size_t)j * E, es + (size_t)j * E);
    }
    if (s) {
        free(mem);
        return s;
    }
    train_tensor *Bp = &t->t[t->i_anchor];
    for (int g = 0; g < 2; g++) {
        const int j0 = g ? 6 : 0, ng = g ? 10 : 6;
        /* m = mean of the normalised sentence embeddings (text.c's arithmetic), t = normalize(m) */
        memset(mvec, 0, sizeof(float) * E);
        for (int j = j0; j < j0 + ng; j++) {
            float u[4096];
            memcpy(u, es + (size_t)j * E, sizeof(float) * E);
            l2_normalize_rows(u, 1, E);
            for (int k = 0; k < E; k++) mvec[k] += u[k];
        }
        for (int k = 0; k < E; k++) mvec[k] /= (float)ng;
        for (int k = 0; k < E; k++) tv[k] = dT[k * 2 + g];
        l2_normalize_backward(mvec, tv, dm, 1, E);
        for (int k = 0; k < E; k++) du[k] = dm[k] / (float)ng;
        for (int j = j0; j < j0 + ng; j++) {
            const float *e = es + (size_t)j * E, *z = zs + (size_t)j * E, *lnf = lnfs + (size_t)j * Wt;
            l2_normalize_backward(e, du, de, 1, E);
            leaky_relu_backward(z, de, (size_t)E, 0.01f);
            /* e = LeakyReLU(lnf B^T): dB += dz lnf^T, dlnf = dz B */
            for (int k = 0; k < E; k++)
                for (int i = 0; i < Wt; i++) Bp->g[(size_t)k * Wt + i] += de[k] * lnf[i];
            linear_backward_input(m->cx, 1, E, Wt, de, Bp->w, dlnf, 0.0f);
            if (until == 0) continue;
            /* the tower: keep every block's input, back-propagate from the eot row */
            float lnf2[4096], z2[4096], e2[4096];
            const int n = text_forward(m, ids[j], streams, NULL, lnf2, z2, e2);
            const size_t nw = (size_t)n * Wt;
            memset(dX, 0, sizeof(float) * nw);
            layernorm_backward(streams + (size_t)L * nw + (size_t)(n - 1) * Wt, m->ln_final_w, dlnf,
                               dX + (size_t)(n - 1) * Wt, 1, Wt, Wt, Wt, Wt, 0);
            for (int i = L - 1; i >= 0; i--) {
                const float *in = streams + (size_t)i * nw;
                block_recompute(m, &m->tblocks[i], in, n, Wt, c->t_heads, 1, &t->bw);
                if (i < until) {
                    train_tensor *A = &t->t[t->i_tadapt[i]];
                    adapter_mix_backward(m->cx, t->bw.y, n, Wt, A->w, c->text_adapt_weight, dX, dX, A->g,
                                         mixscr);
                    if (i == 0) break;
                }
                block_backward(m, &m->tblocks[i], in, dX, dX, n, Wt, c->t_heads, 1, &t->bw);
            }
        }
    }
    free(mem);
    return AAC_OK;
}

aac_status train_stage1_gradients(aac_trainer *t, const aac_train_batch *b, aac_train_stats *st,
                                  aac_error *err) {
    aac_model *m = t->m;
    const aac_config *c = &m->cfg;
    const int E = c->embed_dim, G = m->grid, Np = G * G, S = c->img, B = b->n;
    if (E > 4096 || c->t_width > 4096)
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "embedding or text width too large");
    if (B > 64) return aac_fail(err, AAC_ERR_ARG, "batch of %d images is too large (max 64)", B);
    /* classes of the batch and their current anchors */
    int cls_of[64], n_cls = 0;
    const char *descs[64];
    for (int i = 0; i < B; i++) {
        int k = 0;
        while (k < n_cls && strcmp(descs[k], b->descriptions[i])) k++;
        if (k == n_cls) descs[n_cls++] = b->descriptions[i];
        cls_of[i] = k;
    }
    const size_t fsz = (size_t)B * Np * E;
    int n_feat = 0;
    for (int k = 0; k < c->n_levels; k++) n_feat += t->p.all_levels || k == c->n_levels - 1;
    float *mem = malloc(sizeof(float) * (4 * (size_t)n_cls * E + (size_t)B * E + n_feat * fsz +
                                         4 * (size_t)Np + (size_t)S * S));
    if (!mem) return aac_fail(err, AAC_ERR_NOMEM, "out of memory for the stage-1 features");
    float *T = mem, *dT = T + 2 * (size_t)n_cls * E, *cls = dT + 2 * (size_t)n_cls * E;
    float *fbuf = cls + (size_t)B * E, *s = fbuf + n_feat * fsz, *ds = s + 2 * (size_t)Np;
    float *zero_mask = ds + 2 * (size_t)Np;
    memset(zero_mask, 0, sizeof(float) * S * S);
    memset(dT, 0, sizeof(float) * 2 * n_cls * E);
    aac_status rs = AAC_OK;
    for (int k = 0; k < n_cls && !rs; k++)
        rs = aac_text_anchors(m, t->tok, descs[k], 1, T + (size_t)k * 2 * E, err);
    /* frozen image side: normalised plain embedding + surgery level features */
    for (int i = 0; i < B && !rs; i++) {
        aac_vision_out vo;
        memset(&vo, 0, sizeof vo);
        vo.cls_embed = cls + (size_t)i * E;
        rs = aac_encode_image(m, b->images + (size_t)i * 3 * S * S, 0, &vo, err);
    }
    if (rs) {
        free(mem);
        return rs;
    }
    l2_normalize_rows(cls, B, E);
    float *feats[AAC_MAX_LEVELS] = {0};
    for (int k = 0, f = 0; k < c->n_levels; k++)
        if (t->p.all_levels || k == c->n_levels - 1) feats[k] = fbuf + (size_t)f++ * fsz;
    rs = surgery_features(m, b->images, B, t->p.surgery_attention == AAC_SURGERY_BATCH,
                          t->p.surgery_layers, cls, feats, err);
    if (rs) {
        free(mem);
        return rs;
    }
    /* seg loss and dL/dT */
    for (int k = 0; k < c->n_levels; k++) {
        if (!feats[k]) continue;
        for (int i = 0; i < B; i++) {
            const float *f = feats[k] + (size_t)i * Np * E, *Ti = T + (size_t)cls_of[i] * 2 * E;
            const float *mask = b->masks ? b->masks + (size_t)i * S * S : zero_mask;
            gemm_nn(m->cx, Np, 2, E, 100.0f, f, E, Ti, 2, 0.0f, s, 2);
            double parts[3];
            st->loss_seg += seg_loss_image(s, G, S, mask, B, 1.0f, ds, parts, &t->seg);
            st->focal += parts[0], st->dice_normal += parts[1], st->dice_abnormal += parts[2];
            similarity_backward(m->cx, f, Ti, ds, Np, E, 100.0f, NULL, dT + (size_t)cls_of[i] * 2 * E, 0);
        }
    }
    /* orthogonality: w * (mean_b t_n . t_a)^2 */
    double mo = 0;
    for (int i = 0; i < B; i++) {
        const float *Ti = T + (size_t)cls_of[i] * 2 * E;
        for (int e = 0; e < E; e++) mo += (double)Ti[e * 2] * Ti[e * 2 + 1];
    }
    mo /= B;
    const double w = t->p.text_norm_weight;
    st->loss_orth = w * mo * mo;
    for (int i = 0; i < B; i++) {
        const float *Ti = T + (size_t)cls_of[i] * 2 * E;
        float *dTi = dT + (size_t)cls_of[i] * 2 * E;
        const float coef = (float)(2.0 * w * mo / B);
        for (int e = 0; e < E; e++) {
            dTi[e * 2] += coef * Ti[e * 2 + 1];
            dTi[e * 2 + 1] += coef * Ti[e * 2];
        }
    }
    st->loss = st->loss_seg + st->loss_orth;
    for (int k = 0; k < n_cls && !rs; k++) rs = text_backward(t, descs[k], dT + (size_t)k * 2 * E, err);
    free(mem);
    return rs;
}
