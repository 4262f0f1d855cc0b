/* train_internal.h - training internals shared by block_backward.c, surgery.c, train.c and
 * the two stages (internal). */
#ifndef AAC_TRAIN_INTERNAL_H
#define AAC_TRAIN_INTERNAL_H
#include <stdint.h>

#include "aaclip_train.h"
#include "kernels_backward.h"
#include "model.h"

/* ---------------------------------------------------------------- block backward */
/* Scratch of one block's recomputation and backward pass: about 18 n W floats plus two
 * attention tiles (attention_block_rows(n) x n) per thread (ViT-L/14 at 518, 2 threads:
 * ~112 MB). The block internals live here between block_recompute and block_backward. */
typedef struct block_bw_ws {
    int n_cap, w_cap, slots;
    float *h;    /* [n x W] LN1 / LN2 output */
    float *qkv;  /* [n x 3W] */
    float *x2;   /* [n x W] residual stream after the attention branch */
    float *u;    /* [n x 4W] MLP pre-activation */
    float *g;    /* [n x 4W] activation, then its gradient */
    float *y;    /* [n x W] block output */
    float *dqkv; /* [n x 3W] */
    float *dtmp; /* [n x W] attention output, then gradients */
    float *P, *dP; /* [slots x attention_block_rows(n) x n] */
} block_bw_ws;

int block_bw_ws_init(block_bw_ws *ws, int n, int W, int slots);
void block_bw_ws_free(block_bw_ws *ws);
/* Recomputes block bw on input x [n x W] (not modified), keeping what the backward needs;
 * ws->y receives the block output (the same numbers block_forward produces). */
void block_recompute(const aac_model *m, const block_weights *bw, const float *x, int n, int W,
                     int heads, int causal, block_bw_ws *ws);
/* dx = dL/dx from dy = dL/d(block output), with the internals of block_recompute on the same
 * x. Frozen weights: no weight gradients. dx may alias dy. */
void block_backward(const aac_model *m, const block_weights *bw, const float *x, const float *dy,
                    float *dx, int n, int W, int heads, int causal, block_bw_ws *ws);

/* ---------------------------------------------------------------- surgery tower */
/* Stage-1 image features of the frozen surgery tower: the top `vv_layers` blocks use V-V
 * attention, across the tokens of each image (batch_attention = 0) or, as the reference
 * does, across the images of the batch at each token position (batch_attention = 1).
 * feats[k] (may be NULL) [B x Np x E] = normalize(ln_post(level tokens) @ proj) + cls[b]
 * where cls [B x E] is added as given (NULL: nothing added). images [B x 3 x S x S]. */
aac_status surgery_features(aac_model *m, const float *images, int B, int batch_attention,
                            int vv_layers, const float *cls, float **feats, aac_error *err);

/* ---------------------------------------------------------------- vision helpers */
/* x [N x W] = ln_pre(class/patch embedding + position embedding) of image [3 x S x S];
 * cols: Np x 3 P P floats. */
void train_vision_embed(const aac_model *m, const float *image, float *x, float *cols);

/* ---------------------------------------------------------------- trainer */
typedef struct train_tensor {
    char name[96];       /* aaclip_adapters.safetensors name */
    int rows, cols;
    int trainable;
    float *w, *g, *m, *v; /* value, gradient, Adam first and second moments */
    const float **slot;  /* the model pointer this tensor is installed in */
    const float *orig;   /* that pointer's value before the trainer installed its copy */
} train_tensor;

typedef struct anchor_cache {
    char *desc;
    float *T; /* [E x 2] */
} anchor_cache;

struct aac_trainer {
    aac_model *m;
    const aac_tokenizer *tok;
    aac_train_params p;
    train_tensor *t;
    int n_t;
    int installed_adapters;  /* the model had none: the trainer created them all */
    int64_t step;            /* optimizer steps taken */
    aac_train_stats last;
    anchor_cache *anchors;   /* stage 2: fixed anchors per class description */
    int n_anchors;
    /* indices into t[] */
    int i_vadapt[AAC_MAX_ADAPT], i_seg[AAC_MAX_LEVELS], i_det;
    int i_tadapt[AAC_MAX_ADAPT], i_anchor;
    block_bw_ws bw;
    seg_loss_scratch seg;
};

/* Anchors [E x 2] of description for stage 2 (computed once with the current text adapters). */
aac_status train_anchors_cached(aac_trainer *t, const char *desc, const float **T, aac_error *err);
/* Stage bodies: zero the gradients are already zeroed; fill t->t[].g and the stats. */
aac_status train_stage2_gradients(aac_trainer *t, const aac_train_batch *b, aac_train_stats *st,
                                  aac_error *err);
aac_status train_stage1_gradients(aac_trainer *t, const aac_train_batch *b, aac_train_stats *st,
                                  aac_error *err);
#endif
