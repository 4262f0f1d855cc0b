/* aaclip_train.h - training the AA-CLIP adapters (both stages), gradient-exact with the
 * reference implementation. Same conventions as aaclip.h: aac_status + aac_error, opaque
 * handles, float32 row-major buffers owned by the caller.
 *
 * A trainer is attached to a model: it owns float copies of the adapter tensors and installs
 * them in the model for its lifetime, so every aaclip.h call on that model (aac_encode_image,
 * aac_text_anchors, aac_model_save, ...) sees the parameters being trained. aac_trainer_free
 * restores the model's own tensors; save the trained adapters (aac_trainer_save or
 * aac_model_save) before freeing the trainer. One trainer per model at a time; the trainer
 * uses the model's workspace, so calls on one model must not run concurrently.
 *
 * Stage 1 trains the text adapters (the per-block adapters and the anchor projection B)
 * against features of a frozen "surgery" copy of the vision tower; stage 2 trains the vision
 * adapters and the seg/det projections against fixed anchors. Only adapters learn: CLIP stays
 * frozen. Memory is bounded: one residual stream per block is kept and each block is
 * recomputed during the backward pass. */
#ifndef AACLIP_TRAIN_H
#define AACLIP_TRAIN_H

#include "aaclip.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aac_surgery_attention {
    AAC_SURGERY_TOKENS = 0, /* V-V attention across the tokens of each image (intended) */
    AAC_SURGERY_BATCH = 1   /* across the images of the batch at each token (reference quirk) */
} aac_surgery_attention;

typedef enum aac_train_init {
    AAC_INIT_MODEL = 0,  /* start from the model's adapters (the model must have them) */
    AAC_INIT_XAVIER = 1  /* Xavier-uniform from `seed` for the trained tensors; when the model
                            has no adapters, for all of them */
} aac_train_init;

#define AAC_MAX_MILESTONES 8

typedef struct aac_train_params {
    int stage;                  /* 1: text adapters, 2: vision adapters + projections */
    float lr;                   /* 1e-5 (stage 1), 5e-4 (stage 2) */
    float beta1, beta2, eps;    /* Adam: 0.5, 0.999, 1e-8 (torch.optim.Adam, no weight decay) */
    int n_milestones;           /* lr *= lr_gamma after each milestone step (MultiStepLR): */
    int milestones[AAC_MAX_MILESTONES]; /* stage 2: 16000, 32000; stage 1: none */
    float lr_gamma;             /* 0.5 */
    float text_norm_weight;     /* stage 1: weight of (mean t_normal . t_abnormal)^2, 0.1 */
    int all_levels;             /* stage 1: seg loss summed over all levels (the reference
                                   keeps only the last level's; 0 reproduces it) */
    aac_surgery_attention surgery_attention; /* stage 1 feature extractor, default TOKENS */
    int surgery_layers;         /* V-V blocks at the top of the surgery tower: 19 */
    aac_train_init init;
    uint64_t seed;              /* for AAC_INIT_XAVIER */
} aac_train_params;

/* Defaults of the reference (spec section 3) for stage 1 or 2. */
aac_train_params aac_train_default_params(int stage);

typedef struct aac_trainer aac_trainer;

/* tok is needed for the prompts (anchors); both must outlive the trainer. Stage 2 computes
 * the anchors of each class description once, at its first use, with the model's text
 * adapters (the stage-1 result), and keeps them fixed. */
aac_status aac_trainer_new(aac_model *m, const aac_tokenizer *tok, const aac_train_params *p,
                           aac_trainer **out, aac_error *err);
void aac_trainer_free(aac_trainer *t);

/* One batch. images [n x 3 x S x S] (normalised model input), masks [n x S x S] with values
 * 0/1 (NULL: all normal), labels [n] 0/1 (stage 2; NULL: 1 where the mask has a lesion),
 * descriptions [n]: the class description inserted in the prompts ("scan" for medical
 * classes). */
typedef struct aac_train_batch {
    int n;
    const float *images;
    const float *masks;
    const int *labels;
    const char *const *descriptions;
} aac_train_batch;

typedef struct aac_train_stats {
    double loss;      /* the total the reference back-propagates */
    double loss_ce;   /* stage 2: cross-entropy of d @ T */
    double loss_seg;  /* sum of the seg losses that count */
    double loss_orth; /* stage 1: text_norm_weight * (mean t_n . t_a)^2 */
    double focal, dice_normal, dice_abnormal; /* parts of loss_seg */
    int64_t step;     /* optimizer steps taken so far */
    float lr;         /* learning rate of the next (or last computed) step */
} aac_train_stats;

/* Loss and gradients of the batch (gradients overwritten, parameters unchanged). */
aac_status aac_train_compute_gradients(aac_trainer *t, const aac_train_batch *b,
                                       aac_train_stats *stats, aac_error *err);
/* One Adam step with the current gradients and the scheduled learning rate. */
aac_status aac_train_apply(aac_trainer *t, aac_error *err);
/* compute_gradients + apply. stats may be NULL. */
aac_status aac_train_step(aac_trainer *t, const aac_train_batch *b, aac_train_stats *stats,
                          aac_error *err);
/* Learning rate of optimizer step number step+1 (after `step` steps). */
float aac_train_lr(const aac_trainer *t, int64_t step);
int64_t aac_trainer_steps(const aac_trainer *t);

/* Trained tensors, in a fixed order; names as in aaclip_adapters.safetensors
 * ("image_adapter.layer_adapters.0.fc.0.weight", "text_adapter.3.fc.0.weight", ...). */
typedef struct aac_train_tensor {
    const char *name;
    int rows, cols;
    const float *value, *grad, *exp_avg, *exp_avg_sq;
} aac_train_tensor;
int aac_trainer_tensor_count(const aac_trainer *t);
aac_status aac_trainer_tensor(const aac_trainer *t, int i, aac_train_tensor *out, aac_error *err);

/* Writes every adapter tensor of the model (trained and not) under the adapter names, the
 * Adam moments as "optimizer.<name>.exp_avg" / ".exp_avg_sq", and the step, stage and
 * learning-rate settings in __metadata__. Atomic. The file opens with aac_model_open as an
 * adapters file (the optimizer entries are ignored there). */
aac_status aac_trainer_save(const aac_trainer *t, const char *path, aac_error *err);
/* Resumes from aac_trainer_save's file: parameter values, moments and step count. */
aac_status aac_trainer_resume(aac_trainer *t, const char *path, aac_error *err);
/* Writes the last step in the golden layout: `<prefix>.loss` [1] (and `<prefix>.loss_ce` in
 * stage 2), `<prefix>.grad.<name>` (gradients of the last aac_train_compute_gradients) and
 * `<prefix>.after.<name>` (current values). prefix NULL: "train1" / "train2". */
aac_status aac_trainer_dump(const aac_trainer *t, const char *path, const char *prefix,
                            aac_error *err);

/* Stage-1 image features (frozen surgery tower), exposed for checks: feats[k] (may be NULL)
 * [n x Np x E] = normalize(ln_post(level k tokens) @ proj) + normalize(plain image
 * embedding). images [n x 3 x S x S]. */
aac_status aac_surgery_features(aac_model *m, const float *images, int n,
                                aac_surgery_attention mode, int surgery_layers, float **feats,
                                aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
