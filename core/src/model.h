/* model.h - the aac_model structure shared by the tower and map code (internal). */
#ifndef AAC_MODEL_H
#define AAC_MODEL_H
#include "aaclip.h"
#include "compute.h"
#include "safetensors.h"

#define AAC_MAX_ADAPT 32

/* One pre-norm residual block, PyTorch layouts ([out, in] weights). */
typedef struct block_weights {
    const float *ln1_w, *ln1_b;
    const float *in_w, *in_b;   /* [3W, W], [3W]: q, k, v rows */
    const float *out_w, *out_b; /* [W, W], [W] */
    const float *ln2_w, *ln2_b;
    const float *fc_w, *fc_b;   /* [4W, W], [4W] */
    const float *pj_w, *pj_b;   /* [W, 4W], [W] */
    /* the backend's prepared copies of in_w, out_w, fc_w, pj_w (NULL: not prepared) */
    void *in_p, *out_p, *fc_p, *pj_p;
} block_weights;

/* Scratch memory for one tower pass, sized at load for the larger tower and reused. */
typedef struct workspace {
    float *x;      /* [N x W] residual stream */
    float *h;      /* [N x W] normed input / attention output */
    float *qkv;    /* [N x 3W] */
    float *big;    /* [max(N x 4W, Np x 3PP)] MLP hidden, im2col */
    float *tmp;    /* [N x W] adapter output, projections */
    float *scores; /* [score_slots x attention_block_rows(N) x N] attention score tiles, one
                      per thread */
    int score_slots;
    size_t big_len;
} workspace;

struct aac_model {
    aac_config cfg;
    int grid;       /* G = img / patch */
    int grid0;      /* native grid of the stored position embedding */
    int v_heads;
    st_file *clip_file, *adapter_file; /* mappings that weights may point into */
    float **owned;  /* converted or generated tensors to free */
    size_t n_owned, cap_owned;

    /* vision */
    const float *conv1_w;   /* [W, 3, P, P] */
    const float *class_emb; /* [W] */
    const float *v_pos0;    /* [(g0*g0+1) x W] as stored */
    float *v_pos;           /* [(G*G+1) x W] resized to the run grid */
    const float *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b;
    const float *v_proj;    /* [W, E] */
    block_weights *vblocks;

    /* text */
    const float *tok_emb;   /* [vocab, Wt] */
    const float *t_pos;     /* [context, Wt] */
    const float *ln_final_w, *ln_final_b;
    const float *text_proj; /* [Wt, E] */
    block_weights *tblocks;

    /* AA-CLIP adapters ([out, in], no bias) */
    int has_adapters;
    const float *t_adapt[AAC_MAX_ADAPT]; /* [Wt, Wt] */
    const float *t_anchor_proj;          /* B [E, Wt] */
    const float *v_adapt[AAC_MAX_ADAPT]; /* [W, W] */
    const float *seg_proj[AAC_MAX_LEVELS]; /* [E, W] */
    const float *det_proj;                 /* [E, W] */

    workspace ws;

    /* compute backend (never NULL once the model is built) and how it was chosen */
    aac_compute *cx;
    void *conv1_p;        /* prepared patch-embedding weight [W x 3PP] */
    char backend_line[768];

    /* Debug tap (tests, reference comparisons): called with the residual stream of image
     * passes after each step ("visual.embed", "visual.ln_pre", "visual.blockNN.out",
     * "visual.blockNN.adapted"), rows x cols floats. NULL when unused. */
    void (*trace)(void *ctx, const char *name, const float *data, int rows, int cols);
    void *trace_ctx;
};

/* AA-CLIP's prompt ensemble: sentence j of a class description, 0..5 the normal states and
 * 6..15 the abnormal ones (each state in the templates "{}." and "a photo of {}."). */
#define AAC_N_PROMPTS 16
#define AAC_N_NORMAL_PROMPTS 6
aac_status prompt_ids(const aac_tokenizer *tok, const char *description, int j,
                      int32_t ids[AAC_CONTEXT_LENGTH], aac_error *err);

/* Releases the prepared weights and the compute backend (model_backend.c). */
void model_release_backend(aac_model *m);

/* Runs one residual block on x [n x W] in place (ws supplies scratch). causal: text mask. */
void block_forward(const aac_model *m, const block_weights *bw, float *x, int n, int width,
                   int heads, int causal, workspace *ws);
/* AA-CLIP residual adapter mixing on x [n x W] in place: x = w * a * |x|/|a| + (1-w) * x,
 * a = LeakyReLU(x @ A^T). tmp [n x W] scratch. */
void adapter_mix(aac_compute *cx, float *x, int n, int width, const float *A, float weight,
                 float *tmp);
#endif
