/* train.c - the trainer: trained tensors installed in the model, Adam with the step schedule,
 * Xavier initialisation, checkpoints (save / resume) and the golden-layout dump. The loss and
 * gradient computations are in train_stage1.c and train_stage2.c. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "safetensors.h"
#include "train_internal.h"

aac_train_params aac_train_default_params(int stage) {
    aac_train_params p;
    memset(&p, 0, sizeof p);
    p.stage = stage;
    p.lr = stage == 1 ? 1e-5f : 5e-4f;
    p.beta1 = 0.5f;
    p.beta2 = 0.999f;
    p.eps = 1e-8f;
    if (stage == 2) {
        p.n_milestones = 2;
        p.milestones[0] = 16000;
        p.milestones[1] = 32000;
    }
    p.lr_gamma = 0.5f;
    p.text_norm_weight = 0.1f;
    p.all_levels = 0;
    p.surgery_attention = AAC_SURGERY_TOKENS;
    p.surgery_layers = 19;
    p.init = AAC_INIT_MODEL;
    p.seed = 111;
    return p;
}

float aac_train_lr(const aac_trainer *t, int64_t step) {
    /* torch MultiStepLR: lr0 * gamma ^ (number of milestones <= completed steps) */
    float lr = t->p.lr;
    for (int i = 0; i < t->p.n_milestones; i++)
        if (step >= t->p.milestones[i]) lr *= t->p.lr_gamma;
    return lr;
}

int64_t aac_trainer_steps(const aac_trainer *t) { return t->step; }

/* splitmix64 + uniform floats, for the Xavier initialisation. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void xavier(float *w, int rows, int cols, uint64_t *s) {
    const double a = sqrt(6.0 / (double)(rows + cols)); /* fan_in = cols, fan_out = rows */
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        w[i] = (float)(a * (2.0 * ((rng_next(s) >> 11) * (1.0 / 9007199254740992.0)) - 1.0));
}

static const float *tensor_value(const train_tensor *x) { return x->w ? x->w : *x->slot; }

static int add_tensor(aac_trainer *t, const char *name, int rows, int cols, const float **slot,
                      int trainable) {
    train_tensor *x = &t->t[t->n_t];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    x->rows = rows;
    x->cols = cols;
    x->slot = slot;
    x->orig = *slot;
    x->trainable = trainable;
    return t->n_t++;
}

void aac_trainer_free(aac_trainer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_t; i++) {
        train_tensor *x = &t->t[i];
        if (x->w) *x->slot = x->orig; /* give the model its own tensor back */
        free(x->w);
        free(x->g);
        free(x->m);
        free(x->v);
    }
    if (t->installed_adapters) t->m->has_adapters = 0;
    for (int i = 0; i < t->n_anchors; i++) free(t->anchors[i].desc), free(t->anchors[i].T);
    free(t->anchors);
    free(t->t);
    block_bw_ws_free(&t->bw);
    seg_loss_scratch_free(&t->seg);
    free(t);
}

aac_status aac_trainer_new(aac_model *m, const aac_tokenizer *tok, const aac_train_params *p,
                           aac_trainer **out, aac_error *err) {
    if (!m || !tok || !p || !out) return aac_fail(err, AAC_ERR_ARG, "aac_trainer_new: NULL argument");
    *out = NULL;
    if (p->stage != 1 && p->stage != 2)
        return aac_fail(err, AAC_ERR_ARG, "training stage must be 1 or 2, not %d", p->stage);
    if (!(p->lr > 0) || !(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) ||
        !(p->eps > 0) || p->n_milestones < 0 || p->n_milestones > AAC_MAX_MILESTONES)
        return aac_fail(err, AAC_ERR_ARG, "invalid optimizer settings (lr %g, betas %g %g, eps %g)",
                        p->lr, p->beta1, p->beta2, p->eps);
    if (!m->has_adapters && p->init != AAC_INIT_XAVIER)
        return aac_fail(err, AAC_ERR_ARG,
                        "the model has no AA-CLIP adapters: train from a Xavier initialisation");
    aac_config *c = &m->cfg;
    aac_trainer *t = calloc(1, sizeof *t);
    if (!t) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    t->m = m;
    t->tok = tok;
    t->p = *p;
    if (t->p.surgery_layers <= 0) t->p.surgery_layers = 19;
    if (!m->has_adapters) {
        t->installed_adapters = 1;
        if (!c->text_adapt_until) c->text_adapt_until = c->t_layers < 3 ? c->t_layers : 3;
        if (!c->image_adapt_until) c->image_adapt_until = c->v_layers < 6 ? c->v_layers : 6;
    }
    const int Wt = c->t_width, Wv = c->v_width, E = c->embed_dim;
    t->t = calloc((size_t)c->text_adapt_until + 1 + c->image_adapt_until + c->n_levels + 1,
                  sizeof *t->t);
    if (!t->t) {
        aac_trainer_free(t);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    char name[96];
    const int s1 = p->stage == 1, s2 = p->stage == 2;
    for (int i = 0; i < c->text_adapt_until; i++) {
        snprintf(name, sizeof name, "text_adapter.%d.fc.0.weight", i);
        t->i_tadapt[i] = add_tensor(t, name, Wt, Wt, &m->t_adapt[i], s1);
    }
    snprintf(name, sizeof name, "text_adapter.%d.fc.0.weight", c->text_adapt_until);
    t->i_anchor = add_tensor(t, name, E, Wt, &m->t_anchor_proj, s1);
    for (int i = 0; i < c->image_adapt_until; i++) {
        snprintf(name, sizeof name, "image_adapter.layer_adapters.%d.fc.0.weight", i);
        t->i_vadapt[i] = add_tensor(t, name, Wv, Wv, &m->v_adapt[i], s2);
    }
    const char *fc = c->relu ? "fc.0.weight" : "fc.weight";
    for (int k = 0; k < c->n_levels; k++) {
        snprintf(name, sizeof name, "image_adapter.seg_proj.%d.%s", k, fc);
        t->i_seg[k] = add_tensor(t, name, E, Wv, &m->seg_proj[k], s2);
    }
    snprintf(name, sizeof name, "image_adapter.det_proj.%s", fc);
    t->i_det = add_tensor(t, name, E, Wv, &m->det_proj, s2);

    uint64_t seed = p->seed;
    for (int i = 0; i < t->n_t; i++) {
        train_tensor *x = &t->t[i];
        const size_t n = (size_t)x->rows * x->cols;
        if (!x->trainable && !t->installed_adapters) continue;
        if (!(x->w = malloc(sizeof(float) * n))) goto nomem;
        if (p->init == AAC_INIT_XAVIER)
            xavier(x->w, x->rows, x->cols, &seed);
        else
            memcpy(x->w, *x->slot, sizeof(float) * n);
        if (x->trainable && (!(x->g = calloc(n, sizeof(float))) || !(x->m = calloc(n, sizeof(float))) ||
                             !(x->v = calloc(n, sizeof(float)))))
            goto nomem;
        *x->slot = x->w;
    }
    if (t->installed_adapters) m->has_adapters = 1;

    /* scratch: block backward of the trained tower, the seg loss at the run size */
    const int G = m->grid, N = G * G + 1;
    const int slots = omp_get_max_threads();
    if (p->stage == 2 ? !block_bw_ws_init(&t->bw, N, Wv, slots)
                      : !block_bw_ws_init(&t->bw, c->context, Wt, slots))
        goto nomem;
    if (!seg_loss_scratch_init(&t->seg, c->img, G)) goto nomem;
    *out = t;
    return AAC_OK;
nomem:
    aac_trainer_free(t);
    return aac_fail(err, AAC_ERR_NOMEM, "out of memory allocating the trainer");
}

aac_status train_anchors_cached(aac_trainer *t, const char *desc, const float **T, aac_error *err) {
    for (int i = 0; i < t->n_anchors; i++)
        if (!strcmp(t->anchors[i].desc, desc)) {
            *T = t->anchors[i].T;
            return AAC_OK;
        }
    anchor_cache *a = realloc(t->anchors, sizeof *a * (t->n_anchors + 1));
    if (!a) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    t->anchors = a;
    anchor_cache *e = &a[t->n_anchors];
    e->desc = strdup(desc);
    e->T = malloc(sizeof(float) * 2 * t->m->cfg.embed_dim);
    if (!e->desc || !e->T) {
        free(e->desc), free(e->T);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    aac_status s = aac_text_anchors(t->m, t->tok, desc, 1, e->T, err);
    if (s) {
        free(e->desc), free(e->T);
        return s;
    }
    t->n_anchors++;
    *T = e->T;
    return AAC_OK;
}

void train_vision_embed(const aac_model *m, const float *image, float *x, float *cols) {
    const int P = m->cfg.patch, S = m->cfg.img, G = m->grid, W = m->cfg.v_width;
    const int K = 3 * P * P, N = G * G + 1;
    for (int t = 0; t < G * G; t++) {
        const int gy = t / G, gx = t % G;
        float *col = cols + (size_t)t * K;
        for (int c = 0; c < 3; c++)
            for (int py = 0; py < P; py++)
                memcpy(col + (c * P + py) * P,
                       image + ((size_t)c * S + (size_t)gy * P + py) * S + (size_t)gx * P,
                       sizeof(float) * P);
    }
    linear(m->cx, m->conv1_w, m->conv1_p, W, K, G * G, 1.0f, cols, K, 0.0f, x + W, W);
    memcpy(x, m->class_emb, sizeof(float) * W);
    for (size_t i = 0; i < (size_t)N * W; i++) x[i] += m->v_pos[i];
    layernorm(x, x, m->ln_pre_w, m->ln_pre_b, N, W, W, W);
}

aac_status aac_train_compute_gradients(aac_trainer *t, const aac_train_batch *b,
                                       aac_train_stats *stats, aac_error *err) {
    if (!t || !b || !b->images || !b->descriptions || b->n < 1)
        return aac_fail(err, AAC_ERR_ARG, "aac_train_compute_gradients: empty or NULL batch");
    for (int i = 0; i < b->n; i++)
        if (!b->descriptions[i])
            return aac_fail(err, AAC_ERR_ARG, "image %d of the batch has no class description", i);
    for (int i = 0; i < t->n_t; i++)
        if (t->t[i].g) memset(t->t[i].g, 0, sizeof(float) * t->t[i].rows * t->t[i].cols);
    aac_train_stats st;
    memset(&st, 0, sizeof st);
    compute_take_error(t->m->cx, NULL);
    aac_status s = t->p.stage == 1 ? train_stage1_gradients(t, b, &st, err)
                                   : train_stage2_gradients(t, b, &st, err);
    if (!s) s = compute_take_error(t->m->cx, err); /* a failed product of the backend */
    if (s) return s;
    st.step = t->step;
    st.lr = aac_train_lr(t, t->step);
    t->last = st;
    if (stats) *stats = st;
    return AAC_OK;
}

aac_status aac_train_apply(aac_trainer *t, aac_error *err) {
    if (!t) return aac_fail(err, AAC_ERR_ARG, "aac_train_apply: NULL trainer");
    /* torch.optim.Adam (no weight decay, no amsgrad), single-tensor arithmetic */
    const float lr = aac_train_lr(t, t->step);
    t->step++;
    const float b1 = t->p.beta1, b2 = t->p.beta2, eps = t->p.eps;
    const double bc1 = 1.0 - pow((double)b1, (double)t->step);
    const double bc2 = 1.0 - pow((double)b2, (double)t->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float a1 = 1.0f - b1, a2 = 1.0f - b2;
    for (int i = 0; i < t->n_t; i++) {
        train_tensor *x = &t->t[i];
        if (!x->trainable) continue;
        const size_t n = (size_t)x->rows * x->cols;
        for (size_t j = 0; j < n; j++) {
            const float g = x->g[j];
            x->m[j] = x->m[j] * b1 + g * a1;
            x->v[j] = x->v[j] * b2 + a2 * g * g;
            const float denom = sqrtf(x->v[j]) / bc2_sqrt + eps;
            x->w[j] += -step_size * (x->m[j] / denom);
        }
    }
    return AAC_OK;
}

aac_status aac_train_step(aac_trainer *t, const aac_train_batch *b, aac_train_stats *stats,
                          aac_error *err) {
    aac_status s = aac_train_compute_gradients(t, b, stats, err);
    return s ? s : aac_train_apply(t, err);
}

int aac_trainer_tensor_count(const aac_trainer *t) {
    int n = 0;
    for (int i = 0; i < t->n_t; i++) n += t->t[i].trainable;
    return n;
}

aac_status aac_trainer_tensor(const aac_trainer *t, int i, aac_train_tensor *out, aac_error *err) {
    if (!t || !out) return aac_fail(err, AAC_ERR_ARG, "aac_trainer_tensor: NULL argument");
    for (int j = 0; j < t->n_t; j++) {
        if (!t->t[j].trainable) continue;
        if (i-- == 0) {
            const train_tensor *x = &t->t[j];
            out->name = x->name;
            out->rows = x->rows;
            out->cols = x->cols;
            out->value = x->w;
            out->grad = x->g;
            out->exp_avg = x->m;
            out->exp_avg_sq = x->v;
            return AAC_OK;
        }
    }
    return aac_fail(err, AAC_ERR_ARG, "trained tensor index out of range");
}

aac_status aac_trainer_save(const aac_trainer *t, const char *path, aac_error *err) {
    if (!t || !path) return aac_fail(err, AAC_ERR_ARG, "aac_trainer_save: NULL argument");
    st_writer *w = st_writer_new();
    if (!w) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    aac_status s = AAC_OK;
    char name[160], buf[256];
    for (int i = 0; i < t->n_t && !s; i++) {
        const train_tensor *x = &t->t[i];
        const int64_t shape[2] = {x->rows, x->cols};
        s = st_writer_add(w, x->name, ST_F32, 2, shape, tensor_value(x), err);
        if (!s && x->trainable) {
            snprintf(name, sizeof name, "optimizer.%s.exp_avg", x->name);
            s = st_writer_add(w, name, ST_F32, 2, shape, x->m, err);
            snprintf(name, sizeof name, "optimizer.%s.exp_avg_sq", x->name);
            if (!s) s = st_writer_add(w, name, ST_F32, 2, shape, x->v, err);
        }
    }
    const aac_config *c = &t->m->cfg;
    if (!s) {
        snprintf(buf, sizeof buf, "%lld", (long long)t->step);
        s = st_writer_set_metadata(w, "step", buf, err);
    }
    if (!s) {
        snprintf(buf, sizeof buf, "%d", t->p.stage);
        s = st_writer_set_metadata(w, "stage", buf, err);
    }
    if (!s) {
        snprintf(buf, sizeof buf, "%.9g", c->text_adapt_weight);
        s = st_writer_set_metadata(w, "text_adapt_weight", buf, err);
    }
    if (!s) {
        snprintf(buf, sizeof buf, "%.9g", c->image_adapt_weight);
        s = st_writer_set_metadata(w, "image_adapt_weight", buf, err);
    }
    if (!s) {
        int n = snprintf(buf, sizeof buf, "[");
        for (int k = 0; k < c->n_levels; k++)
            n += snprintf(buf + n, sizeof buf - n, "%s%d", k ? ", " : "", c->levels[k]);
        snprintf(buf + n, sizeof buf - n, "]");
        s = st_writer_set_metadata(w, "levels", buf, err);
    }
    if (!s) {
        snprintf(buf, sizeof buf,
                 "{\"lr\": %.9g, \"betas\": [%.9g, %.9g], \"eps\": %.9g, \"milestones\": [", t->p.lr,
                 t->p.beta1, t->p.beta2, t->p.eps);
        for (int i = 0; i < t->p.n_milestones; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%d", i ? ", " : "",
                     t->p.milestones[i]);
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "], \"gamma\": %.9g}", t->p.lr_gamma);
        s = st_writer_set_metadata(w, "optimizer", buf, err);
    }
    if (!s) s = st_writer_save(w, path, err);
    st_writer_free(w);
    return s;
}

aac_status aac_trainer_resume(aac_trainer *t, const char *path, aac_error *err) {
    if (!t || !path) return aac_fail(err, AAC_ERR_ARG, "aac_trainer_resume: NULL argument");
    st_file *f;
    aac_status s = st_open(path, &f, err);
    if (s) return s;
    char name[160];
    for (int i = 0; i < t->n_t && !s; i++) {
        train_tensor *x = &t->t[i];
        if (!x->trainable) continue;
        const int64_t shape[2] = {x->rows, x->cols};
        s = st_read_f32(f, x->name, 2, shape, x->w, err);
        snprintf(name, sizeof name, "optimizer.%s.exp_avg", x->name);
        if (!s) s = st_read_f32(f, name, 2, shape, x->m, err);
        snprintf(name, sizeof name, "optimizer.%s.exp_avg_sq", x->name);
        if (!s) s = st_read_f32(f, name, 2, shape, x->v, err);
    }
    if (!s) {
        const char *v = st_metadata(f, "step");
        char *end = NULL;
        long long step = v ? strtoll(v, &end, 10) : -1;
        if (!v || *end || step < 0)
            s = aac_fail(err, AAC_ERR_FORMAT, "%s: no valid \"step\" in __metadata__", path);
        else
            t->step = step;
    }
    st_close(f);
    return s;
}

aac_status aac_trainer_dump(const aac_trainer *t, const char *path, const char *prefix,
                            aac_error *err) {
    if (!t || !path) return aac_fail(err, AAC_ERR_ARG, "aac_trainer_dump: NULL argument");
    if (!prefix) prefix = t->p.stage == 1 ? "train1" : "train2";
    st_writer *w = st_writer_new();
    if (!w) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    char name[256];
    const int64_t one = 1;
    float v = (float)t->last.loss;
    snprintf(name, sizeof name, "%s.loss", prefix);
    aac_status s = st_writer_add(w, name, ST_F32, 1, &one, &v, err);
    if (!s && t->p.stage == 2) {
        float ce = (float)t->last.loss_ce;
        snprintf(name, sizeof name, "%s.loss_ce", prefix);
        s = st_writer_add(w, name, ST_F32, 1, &one, &ce, err);
    }
    for (int i = 0; i < t->n_t && !s; i++) {
        const train_tensor *x = &t->t[i];
        if (!x->trainable) continue;
        const int64_t shape[2] = {x->rows, x->cols};
        snprintf(name, sizeof name, "%s.grad.%s", prefix, x->name);
        s = st_writer_add(w, name, ST_F32, 2, shape, x->g, err);
        snprintf(name, sizeof name, "%s.after.%s", prefix, x->name);
        if (!s) s = st_writer_add(w, name, ST_F32, 2, shape, x->w, err);
    }
    if (!s) s = st_writer_save(w, path, err);
    st_writer_free(w);
    return s;
}
