/* model.c - building an aac_model from safetensors files: configuration (metadata, inferred
 * from shapes, overridden by the caller), weight binding with shape checks, workspace sizing. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_backend.h"
#include "error.h"
#include "kernels.h"
#include "model.h"
#include "resize.h"

aac_model_params aac_model_default_params(void) {
    aac_model_params p;
    memset(&p, 0, sizeof p);
    p.activation = AAC_ACT_DEFAULT;
    return p;
}

const aac_config *aac_model_config(const aac_model *m) { return &m->cfg; }
int aac_model_has_adapters(const aac_model *m) { return m->has_adapters; }
int aac_model_grid(const aac_model *m) { return m->grid; }

aac_status aac_model_pos_embed(const aac_model *m, const float **out, aac_error *err) {
    if (!m || !out) return aac_fail(err, AAC_ERR_ARG, "aac_model_pos_embed: NULL argument");
    *out = m->v_pos;
    return AAC_OK;
}

/* Records a heap tensor so aac_model_free releases it. */
static aac_status own(aac_model *m, float *p, aac_error *err) {
    if (!p) return aac_fail(err, AAC_ERR_NOMEM, "out of memory while loading the model");
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        float **o = realloc(m->owned, cap * sizeof *o);
        if (!o) {
            free(p);
            return aac_fail(err, AAC_ERR_NOMEM, "out of memory while loading the model");
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return AAC_OK;
}

static float *alloc_owned(aac_model *m, size_t n, aac_error *err) {
    float *p = calloc(n ? n : 1, sizeof(float));
    return own(m, p, err) == AAC_OK ? p : NULL;
}

/* Binds tensor `name` with the given shape (dims <= 0 end the shape list). */
static aac_status bind(aac_model *m, const st_file *f, const char *name, const float **dst,
                       int64_t d0, int64_t d1, int64_t d2, int64_t d3, aac_error *err) {
    int64_t shape[4] = {d0, d1, d2, d3};
    int nd = 0;
    while (nd < 4 && shape[nd] > 0) nd++;
    float *owned = NULL;
    aac_status s = st_get_f32(f, name, nd, shape, dst, &owned, err);
    if (s == AAC_OK && owned) s = own(m, owned, err);
    return s;
}

/* Number of blocks: the first N for which `<prefix>N.ln_1.weight` is absent. */
static int count_blocks(const st_file *f, const char *prefix) {
    char name[256];
    int n = 0;
    for (;;) {
        snprintf(name, sizeof name, "%s%d.ln_1.weight", prefix, n);
        if (!st_find(f, name)) return n;
        n++;
    }
}

static int count_keys(const st_file *f, const char *fmt) {
    char name[256];
    int n = 0;
    for (;;) {
        snprintf(name, sizeof name, fmt, n);
        if (!st_find(f, name)) return n;
        n++;
    }
}

/* Reads __metadata__["config"] (a JSON object of integers) into cfg. */
static aac_status read_config_metadata(const st_file *f, aac_config *cfg, aac_error *err) {
    const char *js = st_metadata(f, "config");
    if (!js) return AAC_OK;
    json_error_t je;
    json_t *root = json_loads(js, 0, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: __metadata__ \"config\" is not a JSON object",
                        st_path(f));
    }
    struct { const char *key; int *dst; } keys[] = {
        {"embed_dim", &cfg->embed_dim}, {"v_width", &cfg->v_width},
        {"v_head_width", &cfg->v_head_width}, {"v_layers", &cfg->v_layers},
        {"patch", &cfg->patch}, {"native", &cfg->native}, {"t_width", &cfg->t_width},
        {"t_heads", &cfg->t_heads}, {"t_layers", &cfg->t_layers}, {"img", &cfg->img},
        {"vocab", &cfg->vocab}, {"context", &cfg->context},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(root, keys[i].key);
        if (!v) continue;
        if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 1 << 20) {
            json_decref(root);
            return aac_fail(err, AAC_ERR_FORMAT,
                            "%s: __metadata__ config key \"%s\" is not a positive integer",
                            st_path(f), keys[i].key);
        }
        *keys[i].dst = (int)json_integer_value(v);
    }
    json_decref(root);
    const char *act = st_metadata(f, "activation");
    if (act && cfg->activation == AAC_ACT_DEFAULT) {
        if (!strcmp(act, "gelu")) cfg->activation = AAC_ACT_GELU;
        else if (!strcmp(act, "quick_gelu")) cfg->activation = AAC_ACT_QUICK_GELU;
        else
            return aac_fail(err, AAC_ERR_FORMAT, "%s: unknown activation \"%s\" in metadata",
                            st_path(f), act);
    }
    return AAC_OK;
}

static aac_status bind_block(aac_model *m, const st_file *f, const char *prefix, int i, int W,
                             block_weights *b, aac_error *err) {
    char n[256];
    aac_status s = AAC_OK;
#define B(field, suffix, d0, d1)                                    \
    snprintf(n, sizeof n, "%s%d.%s", prefix, i, suffix);            \
    if ((s = bind(m, f, n, &b->field, d0, d1, 0, 0, err)) != AAC_OK) \
        return s;
    B(ln1_w, "ln_1.weight", W, 0) B(ln1_b, "ln_1.bias", W, 0)
    B(in_w, "attn.in_proj_weight", 3 * W, W) B(in_b, "attn.in_proj_bias", 3 * W, 0)
    B(out_w, "attn.out_proj.weight", W, W) B(out_b, "attn.out_proj.bias", W, 0)
    B(ln2_w, "ln_2.weight", W, 0) B(ln2_b, "ln_2.bias", W, 0)
    B(fc_w, "mlp.c_fc.weight", 4 * W, W) B(fc_b, "mlp.c_fc.bias", 4 * W, 0)
    B(pj_w, "mlp.c_proj.weight", W, 4 * W) B(pj_b, "mlp.c_proj.bias", W, 0)
#undef B
    return s;
}

/* Shape of a tensor that must exist, for inferring the configuration. */
static aac_status need(const st_file *f, const char *name, int ndim, const st_tensor **t,
                       aac_error *err) {
    *t = st_find(f, name);
    if (!*t) return aac_fail(err, AAC_ERR_MISSING, "%s: tensor '%s' not found", st_path(f), name);
    if ((*t)->ndim != ndim)
        return aac_fail(err, AAC_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected %d",
                        st_path(f), name, (*t)->ndim, ndim);
    return AAC_OK;
}

/* Fills the zero fields of cfg from tensor shapes, then applies defaults and checks. */
static aac_status infer_config(const st_file *f, aac_config *cfg, aac_error *err) {
    const st_tensor *t;
    aac_status s;
    if ((s = need(f, "visual.conv1.weight", 4, &t, err))) return s;
    if (!cfg->v_width) cfg->v_width = (int)t->shape[0];
    if (!cfg->patch) cfg->patch = (int)t->shape[2];
    if ((s = need(f, "visual.proj", 2, &t, err))) return s;
    if (!cfg->embed_dim) cfg->embed_dim = (int)t->shape[1];
    if ((s = need(f, "visual.positional_embedding", 2, &t, err))) return s;
    int g0 = (int)lround(sqrt((double)(t->shape[0] - 1)));
    if ((int64_t)g0 * g0 + 1 != t->shape[0])
        return aac_fail(err, AAC_ERR_SHAPE,
                        "%s: visual.positional_embedding has %lld rows, not a square grid + 1",
                        st_path(f), (long long)t->shape[0]);
    if (!cfg->native) cfg->native = g0 * cfg->patch;
    if ((s = need(f, "token_embedding.weight", 2, &t, err))) return s;
    if (!cfg->vocab) cfg->vocab = (int)t->shape[0];
    if (!cfg->t_width) cfg->t_width = (int)t->shape[1];
    if ((s = need(f, "positional_embedding", 2, &t, err))) return s;
    if (!cfg->context) cfg->context = (int)t->shape[0];
    if (!cfg->v_layers) cfg->v_layers = count_blocks(f, "visual.transformer.resblocks.");
    if (!cfg->t_layers) cfg->t_layers = count_blocks(f, "transformer.resblocks.");
    if (!cfg->v_head_width) cfg->v_head_width = 64;
    if (!cfg->t_heads) cfg->t_heads = cfg->t_width / 64 > 0 ? cfg->t_width / 64 : 1;
    if (!cfg->img) cfg->img = 518;
    if (cfg->activation == AAC_ACT_DEFAULT) cfg->activation = AAC_ACT_GELU;

    if (cfg->v_layers < 1 || cfg->t_layers < 1)
        return aac_fail(err, AAC_ERR_MISSING, "%s: no transformer blocks found", st_path(f));
    if (cfg->embed_dim > 3 * cfg->v_width || cfg->v_width < 4)
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: embedding size %d with vision width %d is not supported",
                        st_path(f), cfg->embed_dim, cfg->v_width);
    if (cfg->v_width % cfg->v_head_width)
        return aac_fail(err, AAC_ERR_SHAPE, "%s: vision width %d is not a multiple of head width %d",
                        st_path(f), cfg->v_width, cfg->v_head_width);
    if (cfg->t_width % cfg->t_heads)
        return aac_fail(err, AAC_ERR_SHAPE, "%s: text width %d is not divisible by %d heads",
                        st_path(f), cfg->t_width, cfg->t_heads);
    if (cfg->context != AAC_CONTEXT_LENGTH)
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: text context %d (only %d supported)",
                        st_path(f), cfg->context, AAC_CONTEXT_LENGTH);
    if (cfg->img < cfg->patch || cfg->img > 8192)
        return aac_fail(err, AAC_ERR_ARG, "image size %d is out of range for patch %d", cfg->img,
                        cfg->patch);
    if (cfg->native != g0 * cfg->patch)
        return aac_fail(err, AAC_ERR_SHAPE,
                        "%s: config native %d does not match the position embedding grid %d x %d",
                        st_path(f), cfg->native, g0, cfg->patch);
    return AAC_OK;
}

static void default_levels(aac_config *cfg) {
    /* AA-CLIP takes features after blocks 6, 12, 18, 24 of ViT-L; for other depths, quarters. */
    cfg->n_levels = 4;
    for (int k = 0; k < 4; k++) cfg->levels[k] = cfg->v_layers * (k + 1) / 4;
}

static aac_status adapter_metadata(const st_file *f, aac_config *cfg, aac_error *err) {
    const char *v;
    if ((v = st_metadata(f, "text_adapt_weight"))) cfg->text_adapt_weight = strtof(v, NULL);
    if ((v = st_metadata(f, "image_adapt_weight"))) cfg->image_adapt_weight = strtof(v, NULL);
    if ((v = st_metadata(f, "levels"))) {
        json_error_t je;
        json_t *arr = json_loads(v, 0, &je);
        if (!json_is_array(arr) || json_array_size(arr) < 1 ||
            json_array_size(arr) > AAC_MAX_LEVELS) {
            json_decref(arr);
            return aac_fail(err, AAC_ERR_FORMAT, "%s: __metadata__ \"levels\" is not a list of 1..%d integers",
                            st_path(f), AAC_MAX_LEVELS);
        }
        cfg->n_levels = (int)json_array_size(arr);
        for (int k = 0; k < cfg->n_levels; k++) {
            json_t *e = json_array_get(arr, k);
            int lv = json_is_integer(e) ? (int)json_integer_value(e) : 0;
            if (lv < 1 || lv > cfg->v_layers) {
                json_decref(arr);
                return aac_fail(err, AAC_ERR_FORMAT, "%s: level %d is outside 1..%d", st_path(f),
                                lv, cfg->v_layers);
            }
            cfg->levels[k] = lv;
        }
        json_decref(arr);
    }
    return AAC_OK;
}

/* Binds the AA-CLIP adapters (aaclip_adapters.safetensors names). */
static aac_status bind_adapters(aac_model *m, const st_file *f, aac_error *err) {
    aac_config *c = &m->cfg;
    const int Wt = c->t_width, Wv = c->v_width, E = c->embed_dim;
    char n[256];
    aac_status s;
    int nt = count_keys(f, "text_adapter.%d.fc.0.weight");
    int nv = count_keys(f, "image_adapter.layer_adapters.%d.fc.0.weight");
    if (nt < 1)
        return aac_fail(err, AAC_ERR_MISSING, "%s: tensor 'text_adapter.0.fc.0.weight' not found",
                        st_path(f));
    if (nt - 1 > AAC_MAX_ADAPT || nv > AAC_MAX_ADAPT || nv > c->v_layers || nt - 1 > c->t_layers)
        return aac_fail(err, AAC_ERR_SHAPE, "%s: more adapters (%d text, %d image) than blocks",
                        st_path(f), nt - 1, nv);
    c->text_adapt_until = nt - 1; /* the last text adapter is the anchor projection B */
    c->image_adapt_until = nv;
    c->relu = st_find(f, "image_adapter.seg_proj.0.fc.0.weight") != NULL;
    if ((s = adapter_metadata(f, c, err))) return s;
    for (int i = 0; i < nt - 1; i++) {
        snprintf(n, sizeof n, "text_adapter.%d.fc.0.weight", i);
        if ((s = bind(m, f, n, &m->t_adapt[i], Wt, Wt, 0, 0, err))) return s;
    }
    snprintf(n, sizeof n, "text_adapter.%d.fc.0.weight", nt - 1);
    if ((s = bind(m, f, n, &m->t_anchor_proj, E, Wt, 0, 0, err))) return s;
    for (int i = 0; i < nv; i++) {
        snprintf(n, sizeof n, "image_adapter.layer_adapters.%d.fc.0.weight", i);
        if ((s = bind(m, f, n, &m->v_adapt[i], Wv, Wv, 0, 0, err))) return s;
    }
    const char *fc = c->relu ? "fc.0.weight" : "fc.weight";
    for (int k = 0; k < c->n_levels; k++) {
        snprintf(n, sizeof n, "image_adapter.seg_proj.%d.%s", k, fc);
        if ((s = bind(m, f, n, &m->seg_proj[k], E, Wv, 0, 0, err))) return s;
    }
    snprintf(n, sizeof n, "image_adapter.det_proj.%s", fc);
    if ((s = bind(m, f, n, &m->det_proj, E, Wv, 0, 0, err))) return s;
    m->has_adapters = 1;
    return AAC_OK;
}

static aac_status bind_backbone(aac_model *m, const st_file *f, aac_error *err) {
    const aac_config *c = &m->cfg;
    const int W = c->v_width, Wt = c->t_width, E = c->embed_dim, P = c->patch;
    const int g0 = c->native / P;
    aac_status s;
    if ((s = bind(m, f, "visual.conv1.weight", &m->conv1_w, W, 3, P, P, err)) ||
        (s = bind(m, f, "visual.class_embedding", &m->class_emb, W, 0, 0, 0, err)) ||
        (s = bind(m, f, "visual.positional_embedding", &m->v_pos0, g0 * g0 + 1, W, 0, 0, err)) ||
        (s = bind(m, f, "visual.ln_pre.weight", &m->ln_pre_w, W, 0, 0, 0, err)) ||
        (s = bind(m, f, "visual.ln_pre.bias", &m->ln_pre_b, W, 0, 0, 0, err)) ||
        (s = bind(m, f, "visual.ln_post.weight", &m->ln_post_w, W, 0, 0, 0, err)) ||
        (s = bind(m, f, "visual.ln_post.bias", &m->ln_post_b, W, 0, 0, 0, err)) ||
        (s = bind(m, f, "visual.proj", &m->v_proj, W, E, 0, 0, err)) ||
        (s = bind(m, f, "token_embedding.weight", &m->tok_emb, c->vocab, Wt, 0, 0, err)) ||
        (s = bind(m, f, "positional_embedding", &m->t_pos, c->context, Wt, 0, 0, err)) ||
        (s = bind(m, f, "ln_final.weight", &m->ln_final_w, Wt, 0, 0, 0, err)) ||
        (s = bind(m, f, "ln_final.bias", &m->ln_final_b, Wt, 0, 0, 0, err)) ||
        (s = bind(m, f, "text_projection", &m->text_proj, Wt, E, 0, 0, err)))
        return s;
    for (int i = 0; i < c->v_layers; i++)
        if ((s = bind_block(m, f, "visual.transformer.resblocks.", i, W, &m->vblocks[i], err)))
            return s;
    for (int i = 0; i < c->t_layers; i++)
        if ((s = bind_block(m, f, "transformer.resblocks.", i, Wt, &m->tblocks[i], err)))
            return s;
    return AAC_OK;
}

/* Allocates block tables, the resized position embedding and the workspace for cfg. */
static aac_status prepare(aac_model *m, aac_error *err) {
    aac_config *c = &m->cfg;
    m->grid = c->img / c->patch;
    m->grid0 = c->native / c->patch;
    m->v_heads = c->v_width / c->v_head_width;
    if (!m->vblocks) m->vblocks = calloc((size_t)c->v_layers, sizeof *m->vblocks);
    if (!m->tblocks) m->tblocks = calloc((size_t)c->t_layers, sizeof *m->tblocks);
    if (!m->vblocks || !m->tblocks) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (c->n_levels == 0) default_levels(c);
    if (c->text_adapt_weight == 0) c->text_adapt_weight = 0.1f;
    if (c->image_adapt_weight == 0) c->image_adapt_weight = 0.1f;

    const size_t G = (size_t)m->grid, N = G * G + 1, W = (size_t)c->v_width;
    const size_t Nt = (size_t)c->context, Wt = (size_t)c->t_width;
    const size_t P3 = 3 * (size_t)c->patch * c->patch;
    size_t xw = N * W > Nt * Wt ? N * W : Nt * Wt;
    size_t big = N * 4 * W;
    if ((N - 1) * P3 > big) big = (N - 1) * P3;
    if (Nt * 4 * Wt > big) big = Nt * 4 * Wt;
    if (!(m->ws.x = alloc_owned(m, xw, err)) || !(m->ws.h = alloc_owned(m, xw, err)) ||
        !(m->ws.tmp = alloc_owned(m, xw, err)) || !(m->ws.qkv = alloc_owned(m, 3 * xw, err)) ||
        !(m->ws.big = alloc_owned(m, big, err)))
        return AAC_ERR_NOMEM;
    /* one attention score tile per thread, for the longer of the two towers' tiles */
    const size_t tv = (size_t)attention_block_rows((int)N) * N;
    const size_t tt = (size_t)attention_block_rows((int)Nt) * Nt;
    m->ws.score_slots = omp_get_max_threads();
    if (!(m->ws.scores = alloc_owned(m, (size_t)m->ws.score_slots * (tv > tt ? tv : tt), err)))
        return AAC_ERR_NOMEM;
    m->ws.big_len = big;
    return AAC_OK;
}

static aac_status finish_pos_embed(aac_model *m, aac_error *err) {
    const size_t G = (size_t)m->grid;
    if (!(m->v_pos = alloc_owned(m, (G * G + 1) * m->cfg.v_width, err))) return AAC_ERR_NOMEM;
    return resize_pos_embed(m->v_pos0, m->cfg.v_width, m->grid0, m->grid, m->v_pos, err);
}

aac_status aac_model_open(const char *clip_path, const char *adapters_path,
                          const aac_model_params *params, aac_model **out, aac_error *err) {
    if (!clip_path || !out) return aac_fail(err, AAC_ERR_ARG, "aac_model_open: NULL argument");
    *out = NULL;
    aac_model_params p = params ? *params : aac_model_default_params();
    aac_model *m = calloc(1, sizeof *m);
    if (!m) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    compute_threads_init(p.n_threads);
    aac_status s;
    aac_config *c = &m->cfg;
    if ((s = st_open(clip_path, &m->clip_file, err))) goto fail;
    if ((s = read_config_metadata(m->clip_file, c, err))) goto fail;
    /* caller overrides win over metadata and inference */
    if (p.vision_head_width > 0) c->v_head_width = p.vision_head_width;
    if (p.text_heads > 0) c->t_heads = p.text_heads;
    if (p.image_size > 0) c->img = p.image_size;
    if (p.activation != AAC_ACT_DEFAULT) c->activation = p.activation;
    if ((s = infer_config(m->clip_file, c, err))) goto fail;
    if (adapters_path) {
        if ((s = st_open(adapters_path, &m->adapter_file, err))) goto fail;
    }
    if ((s = prepare(m, err))) goto fail;
    if ((s = bind_backbone(m, m->clip_file, err))) goto fail;
    if (m->adapter_file && (s = bind_adapters(m, m->adapter_file, err))) goto fail;
    if ((s = finish_pos_embed(m, err))) goto fail;
    if ((s = aac_model_set_backend(m, p.plugins, p.backend, p.precision, err))) goto fail;
    *out = m;
    return AAC_OK;
fail:
    aac_model_free(m);
    return s;
}

void aac_model_free(aac_model *m) {
    if (!m) return;
    model_release_backend(m);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->vblocks);
    free(m->tblocks);
    st_close(m->clip_file);
    st_close(m->adapter_file);
    free(m);
}

/* ---- random weights (benchmarks and self-contained tests) ---- */

typedef struct rng { uint64_t s; } rng;

static uint64_t rng_next(rng *r) { /* splitmix64: small, seedable, good enough for weights */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-a, a]. */
static const float *rand_tensor(aac_model *m, rng *r, size_t n, float a, aac_error *err) {
    float *p = alloc_owned(m, n, err);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = a * (2.0f * (float)((rng_next(r) >> 40) * (1.0 / 16777216.0)) - 1.0f);
    return p;
}

static const float *const_tensor(aac_model *m, size_t n, float v, aac_error *err) {
    float *p = alloc_owned(m, n, err);
    if (p)
        for (size_t i = 0; i < n; i++) p[i] = v;
    return p;
}

static aac_status random_block(aac_model *m, rng *r, int W, block_weights *b, aac_error *err) {
    const float aw = 1.0f / sqrtf((float)W), a4 = 1.0f / sqrtf(4.0f * W);
    if (!(b->ln1_w = const_tensor(m, W, 1, err)) || !(b->ln1_b = const_tensor(m, W, 0, err)) ||
        !(b->ln2_w = const_tensor(m, W, 1, err)) || !(b->ln2_b = const_tensor(m, W, 0, err)) ||
        !(b->in_w = rand_tensor(m, r, 3 * (size_t)W * W, aw, err)) ||
        !(b->in_b = const_tensor(m, 3 * (size_t)W, 0, err)) ||
        !(b->out_w = rand_tensor(m, r, (size_t)W * W, aw, err)) ||
        !(b->out_b = const_tensor(m, W, 0, err)) ||
        !(b->fc_w = rand_tensor(m, r, 4 * (size_t)W * W, aw, err)) ||
        !(b->fc_b = const_tensor(m, 4 * (size_t)W, 0, err)) ||
        !(b->pj_w = rand_tensor(m, r, 4 * (size_t)W * W, a4, err)) ||
        !(b->pj_b = const_tensor(m, W, 0, err)))
        return AAC_ERR_NOMEM;
    return AAC_OK;
}

aac_status aac_model_random(const aac_config *cfg, uint64_t seed, aac_model **out, aac_error *err) {
    if (!cfg || !out) return aac_fail(err, AAC_ERR_ARG, "aac_model_random: NULL argument");
    *out = NULL;
    aac_model *m = calloc(1, sizeof *m);
    if (!m) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    m->cfg = *cfg;
    compute_threads_init(0);
    aac_config *c = &m->cfg;
    if (!c->vocab) c->vocab = 49408;
    if (!c->context) c->context = AAC_CONTEXT_LENGTH;
    if (c->activation == AAC_ACT_DEFAULT) c->activation = AAC_ACT_GELU;
    if (!c->text_adapt_until) c->text_adapt_until = c->t_layers < 3 ? c->t_layers : 3;
    if (!c->image_adapt_until) c->image_adapt_until = c->v_layers < 6 ? c->v_layers : 6;
    aac_status s = AAC_ERR_ARG;
    if (c->v_width < 4 || c->embed_dim > 3 * c->v_width || c->v_head_width <= 0 || c->v_width % c->v_head_width || c->patch <= 0 ||
        c->native % c->patch || c->img < c->patch || c->t_width <= 0 || c->t_heads <= 0 ||
        c->t_width % c->t_heads || c->embed_dim <= 0 || c->v_layers <= 0 || c->t_layers <= 0 ||
        c->image_adapt_until > c->v_layers || c->text_adapt_until > c->t_layers ||
        c->image_adapt_until > AAC_MAX_ADAPT || c->text_adapt_until > AAC_MAX_ADAPT ||
        c->context != AAC_CONTEXT_LENGTH) {
        aac_fail(err, AAC_ERR_ARG, "aac_model_random: inconsistent configuration");
        goto fail;
    }
    if ((s = prepare(m, err))) goto fail;
    rng r = {seed};
    const int W = c->v_width, Wt = c->t_width, E = c->embed_dim, P = c->patch, g0 = m->grid0;
    s = AAC_ERR_NOMEM;
    if (!(m->conv1_w = rand_tensor(m, &r, (size_t)W * 3 * P * P, 1.0f / sqrtf(3.0f * P * P), err)) ||
        !(m->class_emb = rand_tensor(m, &r, W, 0.5f, err)) ||
        !(m->v_pos0 = rand_tensor(m, &r, ((size_t)g0 * g0 + 1) * W, 0.1f, err)) ||
        !(m->ln_pre_w = const_tensor(m, W, 1, err)) || !(m->ln_pre_b = const_tensor(m, W, 0, err)) ||
        !(m->ln_post_w = const_tensor(m, W, 1, err)) ||
        !(m->ln_post_b = const_tensor(m, W, 0, err)) ||
        !(m->v_proj = rand_tensor(m, &r, (size_t)W * E, 1.0f / sqrtf((float)W), err)) ||
        !(m->tok_emb = rand_tensor(m, &r, (size_t)c->vocab * Wt, 0.05f, err)) ||
        !(m->t_pos = rand_tensor(m, &r, (size_t)c->context * Wt, 0.01f, err)) ||
        !(m->ln_final_w = const_tensor(m, Wt, 1, err)) ||
        !(m->ln_final_b = const_tensor(m, Wt, 0, err)) ||
        !(m->text_proj = rand_tensor(m, &r, (size_t)Wt * E, 1.0f / sqrtf((float)Wt), err)))
        goto fail;
    for (int i = 0; i < c->v_layers; i++)
        if ((s = random_block(m, &r, W, &m->vblocks[i], err))) goto fail;
    for (int i = 0; i < c->t_layers; i++)
        if ((s = random_block(m, &r, Wt, &m->tblocks[i], err))) goto fail;
    /* adapters: Xavier-uniform, as AA-CLIP initialises them */
    s = AAC_ERR_NOMEM;
    const float xv = sqrtf(6.0f / (2.0f * W)), xt = sqrtf(6.0f / (2.0f * Wt));
    const float xe = sqrtf(6.0f / (float)(W + E)), xte = sqrtf(6.0f / (float)(Wt + E));
    for (int i = 0; i < c->text_adapt_until; i++)
        if (!(m->t_adapt[i] = rand_tensor(m, &r, (size_t)Wt * Wt, xt, err))) goto fail;
    if (!(m->t_anchor_proj = rand_tensor(m, &r, (size_t)E * Wt, xte, err))) goto fail;
    for (int i = 0; i < c->image_adapt_until; i++)
        if (!(m->v_adapt[i] = rand_tensor(m, &r, (size_t)W * W, xv, err))) goto fail;
    for (int k = 0; k < c->n_levels; k++)
        if (!(m->seg_proj[k] = rand_tensor(m, &r, (size_t)E * W, xe, err))) goto fail;
    if (!(m->det_proj = rand_tensor(m, &r, (size_t)E * W, xe, err))) goto fail;
    m->has_adapters = 1;
    if ((s = finish_pos_embed(m, err))) goto fail;
    /* random models start on the reference backend; aac_model_set_backend switches */
    if ((s = aac_model_set_backend(m, NULL, AAC_BACKEND_BUILTIN, AAC_PRECISION_F32, err))) goto fail;
    *out = m;
    return AAC_OK;
fail:
    aac_model_free(m);
    return s;
}
