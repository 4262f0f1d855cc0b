/* model_save.c - writing a model back out in the canonical safetensors layout: open_clip
 * names + __metadata__ config for the backbone, aaclip_adapters names for the adapters. */
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "model.h"

typedef struct saver {
    st_writer *w;
    aac_error *err;
    aac_status s;
} saver;

/* Adds one float tensor; after the first failure it does nothing (status kept in sv->s). */
static void put(saver *sv, const char *name, const float *data, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3) {
    if (sv->s) return;
    int64_t shape[4] = {d0, d1, d2, d3};
    int nd = 0;
    while (nd < 4 && shape[nd] > 0) nd++;
    sv->s = st_writer_add(sv->w, name, ST_F32, nd, shape, data, sv->err);
}

static void put_block(saver *sv, const char *prefix, int i, int W, const block_weights *b) {
    char n[256];
#define P(field, suffix, d0, d1)                          \
    snprintf(n, sizeof n, "%s%d.%s", prefix, i, suffix); \
    put(sv, n, b->field, d0, d1, 0, 0);
    P(ln1_w, "ln_1.weight", W, 0) P(ln1_b, "ln_1.bias", W, 0)
    P(in_w, "attn.in_proj_weight", 3 * W, W) P(in_b, "attn.in_proj_bias", 3 * W, 0)
    P(out_w, "attn.out_proj.weight", W, W) P(out_b, "attn.out_proj.bias", W, 0)
    P(ln2_w, "ln_2.weight", W, 0) P(ln2_b, "ln_2.bias", W, 0)
    P(fc_w, "mlp.c_fc.weight", 4 * W, W) P(fc_b, "mlp.c_fc.bias", 4 * W, 0)
    P(pj_w, "mlp.c_proj.weight", W, 4 * W) P(pj_b, "mlp.c_proj.bias", W, 0)
#undef P
}

static aac_status save_backbone(const aac_model *m, const char *path, aac_error *err) {
    const aac_config *c = &m->cfg;
    const int W = c->v_width, Wt = c->t_width, E = c->embed_dim, P = c->patch, g0 = m->grid0;
    saver sv = {st_writer_new(), err, AAC_OK};
    if (!sv.w) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    put(&sv, "visual.conv1.weight", m->conv1_w, W, 3, P, P);
    put(&sv, "visual.class_embedding", m->class_emb, W, 0, 0, 0);
    put(&sv, "visual.positional_embedding", m->v_pos0, (int64_t)g0 * g0 + 1, W, 0, 0);
    put(&sv, "visual.ln_pre.weight", m->ln_pre_w, W, 0, 0, 0);
    put(&sv, "visual.ln_pre.bias", m->ln_pre_b, W, 0, 0, 0);
    for (int i = 0; i < c->v_layers; i++) put_block(&sv, "visual.transformer.resblocks.", i, W, &m->vblocks[i]);
    put(&sv, "visual.ln_post.weight", m->ln_post_w, W, 0, 0, 0);
    put(&sv, "visual.ln_post.bias", m->ln_post_b, W, 0, 0, 0);
    put(&sv, "visual.proj", m->v_proj, W, E, 0, 0);
    put(&sv, "token_embedding.weight", m->tok_emb, c->vocab, Wt, 0, 0);
    put(&sv, "positional_embedding", m->t_pos, c->context, Wt, 0, 0);
    for (int i = 0; i < c->t_layers; i++) put_block(&sv, "transformer.resblocks.", i, Wt, &m->tblocks[i]);
    put(&sv, "ln_final.weight", m->ln_final_w, Wt, 0, 0, 0);
    put(&sv, "ln_final.bias", m->ln_final_b, Wt, 0, 0, 0);
    put(&sv, "text_projection", m->text_proj, Wt, E, 0, 0);
    char cfg[512];
    snprintf(cfg, sizeof cfg,
             "{\"embed_dim\": %d, \"v_width\": %d, \"v_head_width\": %d, \"v_layers\": %d, "
             "\"patch\": %d, \"native\": %d, \"t_width\": %d, \"t_heads\": %d, \"t_layers\": %d, "
             "\"img\": %d}",
             E, W, c->v_head_width, c->v_layers, P, c->native, Wt, c->t_heads, c->t_layers, c->img);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "format", "open_clip state_dict", err);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "config", cfg, err);
    if (!sv.s)
        sv.s = st_writer_set_metadata(sv.w, "activation",
                                      c->activation == AAC_ACT_QUICK_GELU ? "quick_gelu" : "gelu", err);
    if (!sv.s) sv.s = st_writer_save(sv.w, path, err);
    st_writer_free(sv.w);
    return sv.s;
}

static aac_status save_adapters(const aac_model *m, const char *path, aac_error *err) {
    const aac_config *c = &m->cfg;
    const int W = c->v_width, Wt = c->t_width, E = c->embed_dim;
    saver sv = {st_writer_new(), err, AAC_OK};
    if (!sv.w) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    char n[128], v[128];
    for (int i = 0; i < c->text_adapt_until; i++) {
        snprintf(n, sizeof n, "text_adapter.%d.fc.0.weight", i);
        put(&sv, n, m->t_adapt[i], Wt, Wt, 0, 0);
    }
    snprintf(n, sizeof n, "text_adapter.%d.fc.0.weight", c->text_adapt_until);
    put(&sv, n, m->t_anchor_proj, E, Wt, 0, 0);
    for (int i = 0; i < c->image_adapt_until; i++) {
        snprintf(n, sizeof n, "image_adapter.layer_adapters.%d.fc.0.weight", i);
        put(&sv, n, m->v_adapt[i], W, W, 0, 0);
    }
    const char *fc = c->relu ? "fc.0.weight" : "fc.weight";
    for (int k = 0; k < c->n_levels; k++) {
        snprintf(n, sizeof n, "image_adapter.seg_proj.%d.%s", k, fc);
        put(&sv, n, m->seg_proj[k], E, W, 0, 0);
    }
    snprintf(n, sizeof n, "image_adapter.det_proj.%s", fc);
    put(&sv, n, m->det_proj, E, W, 0, 0);
    int len = snprintf(v, sizeof v, "[");
    for (int k = 0; k < c->n_levels; k++)
        len += snprintf(v + len, sizeof v - (size_t)len, "%s%d", k ? ", " : "", c->levels[k]);
    snprintf(v + len, sizeof v - (size_t)len, "]");
    char tw[32], iw[32];
    snprintf(tw, sizeof tw, "%.9g", c->text_adapt_weight);
    snprintf(iw, sizeof iw, "%.9g", c->image_adapt_weight);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "format", "AA-CLIP adapter state_dicts", err);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "levels", v, err);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "relu", c->relu ? "true" : "false", err);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "text_adapt_weight", tw, err);
    if (!sv.s) sv.s = st_writer_set_metadata(sv.w, "image_adapt_weight", iw, err);
    if (!sv.s) sv.s = st_writer_save(sv.w, path, err);
    st_writer_free(sv.w);
    return sv.s;
}

aac_status aac_model_save(const aac_model *m, const char *clip_path, const char *adapters_path,
                          aac_error *err) {
    if (!m || (!clip_path && !adapters_path))
        return aac_fail(err, AAC_ERR_ARG, "aac_model_save: nothing to write");
    if (adapters_path && !m->has_adapters)
        return aac_fail(err, AAC_ERR_ARG, "aac_model_save: the model has no adapters");
    aac_status s = AAC_OK;
    if (clip_path && (s = save_backbone(m, clip_path, err))) return s;
    if (adapters_path) s = save_adapters(m, adapters_path, err);
    return s;
}
