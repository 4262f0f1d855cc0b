/* test_model.c - model construction without ../shared: random weights, save/load round trip,
 * thread-count independence, configuration overrides and malformed model files. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip.h"
#include "safetensors.h"
#include "testutil.h"
#include "st_testutil.h"

static const aac_config k_small = {.embed_dim = 16, .v_width = 32, .v_head_width = 16,
                                   .v_layers = 4, .patch = 8, .native = 32, .t_width = 32,
                                   .t_heads = 2, .t_layers = 2, .img = 48};

typedef struct outputs {
    float *seg[4], *det, *sum, *cls, score;
} outputs;

static void run(aac_model *m, const float *img, outputs *o) {
    const aac_config *c = aac_model_config(m);
    const int G = aac_model_grid(m), Np = G * G, E = c->embed_dim, S = c->img;
    aac_vision_out v = {0};
    for (int k = 0; k < c->n_levels; k++) v.seg_tokens[k] = o->seg[k] = malloc(sizeof(float) * Np * E);
    v.det_token = o->det = malloc(sizeof(float) * E);
    o->sum = malloc(sizeof(float) * S * S);
    o->cls = malloc(sizeof(float) * E);
    float T[32];
    for (int e = 0; e < 2 * E; e++) T[e] = (e % 3 ? 0.2f : -0.1f);
    aac_error err;
    CHECK_OK(aac_encode_image(m, img, 1, &v, &err), &err);
    CHECK_OK(aac_anomaly_maps(m, &v, T, AAC_DOMAIN_MEDICAL, NULL, o->sum, &o->score, &err), &err);
    aac_vision_out p = {.cls_embed = o->cls};
    CHECK_OK(aac_encode_image(m, img, 0, &p, &err), &err);
}

static int same(const outputs *a, const outputs *b, const aac_model *m) {
    const aac_config *c = aac_model_config(m);
    const int G = aac_model_grid(m), Np = G * G, E = c->embed_dim, S = c->img;
    int ok = a->score == b->score && !memcmp(a->det, b->det, sizeof(float) * E) &&
             !memcmp(a->sum, b->sum, sizeof(float) * S * S) && !memcmp(a->cls, b->cls, sizeof(float) * E);
    for (int k = 0; k < c->n_levels; k++) ok &= !memcmp(a->seg[k], b->seg[k], sizeof(float) * Np * E);
    return ok;
}

static void free_out(outputs *o) {
    for (int k = 0; k < 4; k++) free(o->seg[k]);
    free(o->det), free(o->sum), free(o->cls);
    memset(o, 0, sizeof *o);
}

static double outputs_rel_err(const outputs *a, const outputs *b, const aac_model *m) {
    const aac_config *c = aac_model_config(m);
    const int G = aac_model_grid(m), Np = G * G, E = c->embed_dim;
    double worst = 0;
    for (int k = 0; k < c->n_levels; k++) {
        double e = tu_rel_err(a->seg[k], b->seg[k], (size_t)Np * E);
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* Copies src to dst leaving out tensor `drop` and giving tensor `reshape` a wrong shape. */
static void rewrite(const char *src, const char *dst, const char *drop, const char *reshape,
                    const char *bad_config) {
    aac_error err;
    st_file *f;
    CHECK_OK(st_open(src, &f, &err), &err);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        int nd = t->ndim;
        if (reshape && !strcmp(t->name, reshape)) { /* same bytes, transposed-looking shape */
            int64_t tmp = shape[0];
            shape[0] = shape[1], shape[1] = tmp;
        }
        CHECK_OK(st_writer_add(w, t->name, t->dtype, nd, shape, t->data, &err), &err);
    }
    const char *cfg = bad_config ? bad_config : st_metadata(f, "config");
    if (cfg) CHECK_OK(st_writer_set_metadata(w, "config", cfg, &err), &err);
    CHECK_OK(st_writer_save(w, dst, &err), &err);
    st_writer_free(w);
    st_close(f);
}

int main(void) {
    char dir[] = "/tmp/aac_test_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char clip[256], ad[256], bad[256];
    snprintf(clip, sizeof clip, "%s/clip.safetensors", dir);
    snprintf(ad, sizeof ad, "%s/adapters.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);

    aac_error err;
    aac_model *m;
    CHECK_OK(aac_model_random(&k_small, 3, &m, &err), &err);
    const aac_config *c = aac_model_config(m);
    CHECK(aac_model_grid(m) == 6 && c->n_levels == 4 && c->levels[3] == 4, "grid/levels");
    const int S = c->img;
    float *img = malloc(sizeof(float) * 3 * S * S);
    for (int i = 0; i < 3 * S * S; i++) img[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;

    /* thread count does not change any output bit */
    outputs o1 = {0}, o2 = {0}, o3 = {0};
    omp_set_num_threads(1);
    run(m, img, &o1);
    omp_set_num_threads(2);
    run(m, img, &o2);
    CHECK(same(&o1, &o2, m), "outputs differ between 1 and 2 threads");
    for (int i = 0; i < S * S; i++) CHECK(o1.sum[i] == o1.sum[i], "NaN in map");

    /* save, reopen: the same numbers */
    CHECK_OK(aac_model_save(m, clip, ad, &err), &err);
    aac_model *m2;
    CHECK_OK(aac_model_open(clip, ad, NULL, &m2, &err), &err);
    const aac_config *c2 = aac_model_config(m2);
    CHECK(c2->v_layers == 4 && c2->t_layers == 2 && c2->v_head_width == 16 && c2->t_heads == 2 &&
              c2->img == 48 && c2->native == 32 && c2->text_adapt_until == 2 &&
              c2->image_adapt_until == 4 && c2->n_levels == 4 && !c2->relu,
          "reloaded config differs");
    run(m2, img, &o3);
    CHECK(same(&o1, &o3, m), "reloaded model gives different outputs");
    free_out(&o3);

    /* a single image encoded twice in a row gives identical results (workspace reuse) */
    run(m2, img, &o3);
    CHECK(same(&o1, &o3, m), "second pass differs");
    free_out(&o3);
    aac_model_free(m2);

    /* reduced-precision weight files load (converted to float32) and stay close */
    for (int half = 0; half <= 1; half++) {
        tu_write_reduced(clip, bad, half);
        char bad_ad[300];
        snprintf(bad_ad, sizeof bad_ad, "%s.ad", bad);
        tu_write_reduced(ad, bad_ad, half);
        CHECK_OK(aac_model_open(bad, bad_ad, NULL, &m2, &err), &err);
        run(m2, img, &o3);
        double e = outputs_rel_err(&o1, &o3, m);
        printf("  %s weights: seg features rel err %.3g\n", half ? "F16" : "BF16", e);
        CHECK(e < (half ? 5e-3 : 3e-2) && e > 0, "%s weights: rel err %g", half ? "F16" : "BF16", e);
        free_out(&o3);
        aac_model_free(m2);
        unlink(bad_ad);
    }

    /* overrides: run size and head count */
    aac_model_params p = aac_model_default_params();
    p.image_size = 64;
    p.text_heads = 4;
    p.activation = AAC_ACT_QUICK_GELU;
    CHECK_OK(aac_model_open(clip, ad, &p, &m2, &err), &err);
    CHECK(aac_model_grid(m2) == 8 && aac_model_config(m2)->t_heads == 4 &&
              aac_model_config(m2)->activation == AAC_ACT_QUICK_GELU,
          "overrides not applied");
    aac_model_free(m2);
    p = aac_model_default_params();
    p.vision_head_width = 12; /* 32 is not a multiple of 12 */
    CHECK(aac_model_open(clip, ad, &p, &m2, &err) == AAC_ERR_SHAPE && strstr(err.message, clip),
          "bad head width accepted: %s", err.message);

    /* malformed model files: the message names the file and the tensor */
    rewrite(clip, bad, "visual.ln_post.bias", NULL, NULL);
    CHECK(aac_model_open(bad, ad, NULL, &m2, &err) == AAC_ERR_MISSING &&
              strstr(err.message, bad) && strstr(err.message, "visual.ln_post.bias"),
          "missing tensor: %s", err.message);
    rewrite(clip, bad, NULL, "transformer.resblocks.1.mlp.c_fc.weight", NULL);
    CHECK(aac_model_open(bad, ad, NULL, &m2, &err) == AAC_ERR_SHAPE &&
              strstr(err.message, "transformer.resblocks.1.mlp.c_fc.weight"),
          "wrong shape: %s", err.message);
    rewrite(clip, bad, NULL, NULL, "{\"v_width\": \"wide\"}");
    CHECK(aac_model_open(bad, ad, NULL, &m2, &err) == AAC_ERR_FORMAT && strstr(err.message, "v_width"),
          "bad config: %s", err.message);
    rewrite(ad, bad, "image_adapter.det_proj.fc.weight", NULL, NULL);
    CHECK(aac_model_open(clip, bad, NULL, &m2, &err) == AAC_ERR_MISSING &&
              strstr(err.message, "image_adapter.det_proj.fc.weight"),
          "missing adapter: %s", err.message);
    rewrite(ad, bad, NULL, "image_adapter.seg_proj.2.fc.weight", NULL);
    CHECK(aac_model_open(clip, bad, NULL, &m2, &err) == AAC_ERR_SHAPE &&
              strstr(err.message, "image_adapter.seg_proj.2.fc.weight"),
          "wrong adapter shape: %s", err.message);
    CHECK(aac_model_open("/nonexistent/clip.safetensors", NULL, NULL, &m2, &err) == AAC_ERR_IO &&
              strstr(err.message, "/nonexistent/clip.safetensors"),
          "missing file: %s", err.message);
    /* adapted inference without adapters is an error, not garbage */
    CHECK_OK(aac_model_open(clip, NULL, NULL, &m2, &err), &err);
    aac_vision_out v = {0};
    CHECK(aac_encode_image(m2, img, 1, &v, &err) == AAC_ERR_ARG, "adapted run without adapters");
    aac_model_free(m2);

    free_out(&o1), free_out(&o2);
    free(img);
    aac_model_free(m);
    unlink(clip), unlink(ad), unlink(bad), rmdir(dir);
    return tu_finish("test_model");
}
