/* test_train_golden.c - one training step of each AA-CLIP stage against the official PyTorch
 * implementation (../shared/golden/tiny): stage-1 surgery features, losses, every gradient and
 * every parameter after one Adam step. Tolerances from the golden README: features 1e-4,
 * gradients and the Adam step 1e-3 (relative, per tensor).
 *
 * The golden step inputs: image.input [2,3,518,518] (image 0 with a lesion, image 1 without),
 * image.mask [2,1,518,518], labels train2.label = (1, 0), class "scan" for both images (anchors
 * from the golden adapters), starting from aaclip_adapters.safetensors with a fresh optimizer.
 * Without ../shared: the reduced set in the repository (testutil.h: tu_golden); its image.input
 * is sampled, so the step runs on our preprocessing of image.raw_u8 (equal to image.input within
 * 1e-6, test_golden/test_resize) and the surgery features are compared where sampled.
 * Run through every float32 backend found on the default plugin path. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_backend.h"
#include "aaclip_train.h"
#include "golden_ref.h"
#include "model.h"
#include "safetensors.h"
#include "testutil.h"

static st_file *g_gold;

static float *gold(const char *name, size_t *n) {
    const st_tensor *t = st_find(g_gold, name);
    if (!t) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        exit(1);
    }
    float *p = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    if (t->dtype == ST_U8) { /* masks in the reduced set (exactly 0/1) */
        for (int64_t i = 0; i < t->numel; i++) p[i] = ((const uint8_t *)t->data)[i];
    } else if (t->dtype == ST_I32) {
        for (int64_t i = 0; i < t->numel; i++) {
            int32_t v;
            memcpy(&v, (const char *)t->data + 4 * i, 4);
            p[i] = (float)v;
        }
    } else {
        aac_error err;
        CHECK_OK(st_read_f32(g_gold, name, 0, NULL, p, &err), &err);
    }
    if (n) *n = (size_t)t->numel;
    return p;
}

static double expect_rel(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double e = tu_rel_err(got, ref, n);
    printf("  %-58s rel err %.3g\n", what, e);
    CHECK(e <= tol, "%s: relative error %g > %g", what, e, tol);
    return e;
}

/* loss, every gradient, every updated tensor of one step against <prefix>.* */
static void check_step(aac_trainer *tr, const aac_train_batch *batch, const char *prefix) {
    aac_error err;
    aac_train_stats st;
    CHECK_OK(aac_train_compute_gradients(tr, batch, &st, &err), &err);
    char name[256];
    snprintf(name, sizeof name, "%s.loss", prefix);
    float *ref = gold(name, NULL), got = (float)st.loss;
    printf("  %s = %.7f (golden %.7f; seg %.7f = focal %.7f + dice %.7f + %.7f, ce %.7f, orth %.3g)\n",
           name, st.loss, ref[0], st.loss_seg, st.focal, st.dice_normal, st.dice_abnormal, st.loss_ce,
           st.loss_orth);
    expect_rel(name, &got, ref, 1, 1e-3);
    free(ref);
    if (!strcmp(prefix, "train2")) {
        ref = gold("train2.loss_ce", NULL);
        got = (float)st.loss_ce;
        expect_rel("train2.loss_ce", &got, ref, 1, 1e-3);
        free(ref);
    }
    const int n = aac_trainer_tensor_count(tr);
    for (int i = 0; i < n; i++) {
        aac_train_tensor x;
        CHECK_OK(aac_trainer_tensor(tr, i, &x, &err), &err);
        snprintf(name, sizeof name, "%s.grad.%s", prefix, x.name);
        size_t cnt;
        ref = gold(name, &cnt);
        CHECK(cnt == (size_t)x.rows * x.cols, "%s: size", name);
        expect_rel(name, x.grad, ref, cnt, 1e-3);
        free(ref);
    }
    CHECK_OK(aac_train_apply(tr, &err), &err);
    for (int i = 0; i < n; i++) {
        aac_train_tensor x;
        CHECK_OK(aac_trainer_tensor(tr, i, &x, &err), &err);
        snprintf(name, sizeof name, "%s.after.%s", prefix, x.name);
        size_t cnt;
        ref = gold(name, &cnt);
        expect_rel(name, x.value, ref, cnt, 1e-3);
        free(ref);
    }
    /* the dump (golden names) holds the same tensors */
    char path[256];
    snprintf(path, sizeof path, "%s/%s_dump_%d.safetensors", AACLIP_BINARY_DIR, prefix, (int)getpid());
    CHECK_OK(aac_trainer_dump(tr, path, NULL, &err), &err);
    st_file *f;
    CHECK_OK(st_open(path, &f, &err), &err);
    int matched = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *a = st_at(f, i), *g = st_find(g_gold, a->name);
        CHECK(g && g->numel == a->numel, "dump entry %s has no golden counterpart", a->name);
        if (!g || g->numel != a->numel) continue;
        float *got = malloc(sizeof(float) * a->numel);
        CHECK_OK(st_read_f32(f, a->name, 0, NULL, got, &err), &err);
        ref = gold(a->name, NULL);
        matched += tu_rel_err(got, ref, (size_t)a->numel) <= 1e-3;
        free(got), free(ref);
    }
    printf("  dump: %d of %zu tensors within 1e-3 of the golden entries of the same name\n", matched, st_count(f));
    CHECK(matched == (int)st_count(f) && matched == 2 * n + 1 + !strcmp(prefix, "train2"), "dump");
    st_close(f);
    unlink(path);
}

/* Surgery features and one step of each stage on the model's current backend. */
static void check_backend(aac_model *m, const aac_tokenizer *tok) {
    aac_error err;
    const aac_config *c = aac_model_config(m);
    const int E = c->embed_dim, G = aac_model_grid(m), Np = G * G, B = 2, S = c->img;
    float *images = gr_input(g_gold, S), *masks = gold("image.mask", NULL);
    CHECK(images != NULL, "golden input images");
    if (!images) {
        free(masks);
        return;
    }
    float *labf = gold("train2.label", NULL);
    int labels[2] = {(int)labf[0], (int)labf[1]};
    const char *desc[2] = {"scan", "scan"};
    aac_train_batch batch = {B, images, masks, labels, desc};

    /* stage-1 features of the surgery tower, both attention modes */
    printf("surgery features\n");
    float *feats[AAC_MAX_LEVELS] = {0};
    for (int k = 0; k < c->n_levels; k++) feats[k] = malloc(sizeof(float) * B * Np * E);
    const int64_t dims[3] = {B, Np, E};
    for (int mode = 1; mode >= 0; mode--) {
        CHECK_OK(aac_surgery_features(m, images, B, mode ? AAC_SURGERY_BATCH : AAC_SURGERY_TOKENS, 19,
                                      feats, &err),
                 &err);
        for (int k = 0; k < c->n_levels; k++) {
            char name[96];
            snprintf(name, sizeof name, "%s.patch_features.%d", mode ? "surgery" : "surgery_tokenwise", k);
            size_t n = 0;
            float *ref = gold(name, NULL), *got = gr_pick(g_gold, name, feats[k], 3, dims, &n);
            CHECK(got != NULL, "%s: shape", name);
            if (got) expect_rel(name, got, ref, n, 1e-4);
            free(ref), free(got);
        }
    }
    for (int k = 0; k < c->n_levels; k++) free(feats[k]);

    printf("stage 2\n");
    aac_train_params p2 = aac_train_default_params(2);
    aac_trainer *tr;
    CHECK_OK(aac_trainer_new(m, tok, &p2, &tr, &err), &err);
    check_step(tr, &batch, "train2");
    aac_trainer_free(tr);

    printf("stage 1 (reference batch-axis V-V attention)\n");
    aac_train_params p1 = aac_train_default_params(1);
    p1.surgery_attention = AAC_SURGERY_BATCH;
    CHECK_OK(aac_trainer_new(m, tok, &p1, &tr, &err), &err);
    check_step(tr, &batch, "train1");
    aac_trainer_free(tr);
    free(images), free(masks), free(labf);
}

int main(void) {
    printf("golden set: %s\n", tu_golden_full() ? "../shared/golden/tiny (full)" : "reduced copy from the repository");
    aac_error err;
    CHECK_OK(st_open(tu_golden("golden.safetensors"), &g_gold, &err), &err);
    aac_model *m;
    CHECK_OK(aac_model_open(tu_golden("clip_openclip.safetensors"), tu_golden("aaclip_adapters.safetensors"), NULL, &m,
                            &err),
             &err);
    aac_tokenizer *tok;
    CHECK_OK(aac_tokenizer_open_bpe(TU_BPE_PATH, &tok, &err), &err);
    const aac_config *c = aac_model_config(m);
    CHECK(c->img == 518 && aac_model_grid(m) == 37, "config");
    /* every float32 backend on the default plugin path, the built-in one first */
    aac_plugins *p;
    CHECK_OK(aac_plugins_open(NULL, &p, &err), &err);
    aac_backend_desc d;
    for (int i = 0; aac_plugins_get(p, i, &d); i++) {
        if (d.refused || !d.name || !(d.caps & AAC_BACKEND_CAP_F32)) continue;
        if (aac_model_set_backend(m, p, d.name, AAC_PRECISION_F32, &err)) {
            printf("%s not available here: %s\n", d.name, err.message);
            continue;
        }
        printf("== %s\n", aac_model_backend(m));
        check_backend(m, tok);
    }
    aac_plugins_free(p);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    st_close(g_gold);
    return tu_finish("test_train_golden");
}
