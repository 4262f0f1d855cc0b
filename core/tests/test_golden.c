/* test_golden.c - the library against the tensors of the official PyTorch implementation
 * (../shared/golden/tiny, tolerances from its README). */
#include <stdlib.h>
#include <string.h>

#include "aaclip.h"
#include "model.h"
#include "safetensors.h"
#include "testutil.h"

static st_file *g_gold;

/* Golden tensor as float (owned copy), element count in *n. */
static float *gold(const char *name, size_t *n) {
    const st_tensor *t = st_find(g_gold, name);
    if (!t) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        exit(1);
    }
    float *p = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    if (t->dtype == ST_U8) { /* pixels and masks */
        for (int64_t i = 0; i < t->numel; i++) p[i] = ((const uint8_t *)t->data)[i];
    } else if (t->dtype == ST_I32) { /* token ids, labels (may be unaligned in the mapping) */
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

static void expect_rel(const char *what, const float *got, const float *ref, size_t n, double tol);

/* Trace tap: compares every residual-stream step of image 0 with the golden debug tensors. */
static int g_traced;
static void trace_cb(void *ctx, const char *name, const float *data, int rows, int cols) {
    (void)ctx;
    const st_tensor *t = st_find(g_gold, name);
    if (!t) return; /* the reference recorded adapted steps only where adapters exist */
    float *ref = gold(name, NULL);
    CHECK(t->numel == (int64_t)rows * cols, "%s: %d x %d values, golden %lld", name, rows, cols,
          (long long)t->numel);
    if (t->numel == (int64_t)rows * cols) expect_rel(name, data, ref, (size_t)rows * cols, 1e-4);
    free(ref);
    g_traced++;
}

static void expect_rel(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double e = tu_rel_err(got, ref, n);
    printf("  %-40s rel err %.3g\n", what, e);
    CHECK(e <= tol, "%s: relative error %g > %g", what, e, tol);
}

static void expect_abs(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double e = tu_max_abs(got, ref, n);
    printf("  %-40s max abs err %.3g\n", what, e);
    CHECK(e <= tol, "%s: max abs error %g > %g", what, e, tol);
}

int main(void) {
    const char *gold_path = tu_shared("golden/tiny/golden.safetensors");
    const char *clip_path = tu_shared("golden/tiny/clip_openclip.safetensors");
    const char *ad_path = tu_shared("golden/tiny/aaclip_adapters.safetensors");
    const char *bpe_path = tu_shared("vocab/bpe_simple_vocab_16e6.txt.gz");
    aac_error err;
    CHECK_OK(st_open(gold_path, &g_gold, &err), &err);
    aac_model *m;
    CHECK_OK(aac_model_open(clip_path, ad_path, NULL, &m, &err), &err);
    aac_tokenizer *tok;
    CHECK_OK(aac_tokenizer_open_bpe(bpe_path, &tok, &err), &err);
    const aac_config *c = aac_model_config(m);
    const int S = c->img, E = c->embed_dim, G = aac_model_grid(m), Np = G * G;
    CHECK(S == 518 && E == 24 && G == 37 && c->v_layers == 24 && c->t_heads == 2, "config");

    /* preprocessing */
    size_t n;
    float *raw = gold("image.raw_u8", &n);
    float *input = gold("image.input", NULL);
    const int B = 2, H = 512;
    uint8_t *u8 = malloc((size_t)H * H);
    float *pre = malloc(sizeof(float) * 3 * S * S);
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < H * H; i++) u8[i] = (uint8_t)raw[(size_t)b * H * H + i];
        CHECK_OK(aac_preprocess_grey(u8, H, H, S, pre, &err), &err);
        expect_abs("image.input", pre, input + (size_t)b * 3 * S * S, (size_t)3 * S * S, 1e-6);
    }

    const float *pe;
    CHECK_OK(aac_model_pos_embed(m, &pe, &err), &err);
    float *pe_ref = gold("pos_embed_resized", &n);
    expect_rel("pos_embed_resized", pe, pe_ref, n, 1e-4);

    /* text tower on the golden token ids */
    float *toks = gold("text.sentences.tokens", NULL);
    float *plain_ref = gold("text.sentences.plain_encode_text", NULL);
    float *adapt_ref = gold("text.sentences.adapted_encode_text", NULL);
    float emb[2 * 24];
    for (int adapted = 0; adapted <= 1; adapted++) {
        for (int s = 0; s < 2; s++) {
            int32_t ids[AAC_CONTEXT_LENGTH];
            for (int i = 0; i < AAC_CONTEXT_LENGTH; i++) ids[i] = (int32_t)toks[s * AAC_CONTEXT_LENGTH + i];
            CHECK_OK(aac_encode_text(m, ids, adapted, emb + s * E, &err), &err);
        }
        expect_rel(adapted ? "text.sentences.adapted_encode_text" : "text.sentences.plain_encode_text",
                   emb, adapted ? adapt_ref : plain_ref, 2 * (size_t)E, 1e-4);
    }

    /* anchors, plain and adapted, for the three golden classes */
    const char *classes[][2] = {{"scan", "scan"},
                                {"dark_bottle", "dark bottle"},
                                {"oval_white_pill_with_sma",
                                 "oval white pill with small red speckles and the letters 'FF' engraved"}};
    float T[3][2][24 * 2];
    for (int k = 0; k < 3; k++)
        for (int adapted = 0; adapted <= 1; adapted++) {
            char name[128];
            snprintf(name, sizeof name, "text.%s.%s", classes[k][0], adapted ? "adapted" : "plain");
            CHECK_OK(aac_text_anchors(m, tok, classes[k][1], adapted, T[k][adapted], &err), &err);
            float *ref = gold(name, NULL);
            expect_rel(name, T[k][adapted], ref, 2 * (size_t)E, 1e-4);
            free(ref);
        }

    /* vision: adapted features, maps and scores; plain embeddings */
    float *seg_ref[4], *lvl_ref[4];
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "visual.seg_tokens.%d", k);
        seg_ref[k] = gold(name, NULL);
        snprintf(name, sizeof name, "map.Medical.level%d", k);
        lvl_ref[k] = gold(name, NULL);
    }
    float *det_ref = gold("visual.det_token", NULL), *score_ref = gold("score.det", NULL);
    float *med_ref = gold("map.Medical.sum", NULL), *ind_ref = gold("map.Industrial.sum", NULL);
    float *cls_ref = gold("plain.cls_embed", NULL), *pp_ref = gold("plain.patch_proj.24", NULL);
    aac_vision_out v = {0};
    for (int k = 0; k < 4; k++) v.seg_tokens[k] = malloc(sizeof(float) * Np * E);
    v.det_token = malloc(sizeof(float) * E);
    v.cls_embed = malloc(sizeof(float) * E);
    v.patch_proj = malloc(sizeof(float) * Np * E);
    float *lv[4], *sum = malloc(sizeof(float) * S * S);
    for (int k = 0; k < 4; k++) lv[k] = malloc(sizeof(float) * S * S);
    for (int b = 0; b < B; b++) {
        printf("image %d\n", b);
        const float *img = input + (size_t)b * 3 * S * S;
        if (b == 0) m->trace = trace_cb; /* the debug tensors are image 0's */
        CHECK_OK(aac_encode_image(m, img, 1, &v, &err), &err);
        m->trace = NULL;
        if (b == 0) CHECK(g_traced == 2 + 24 + 6, "traced %d residual-stream steps, expected 32", g_traced);
        for (int k = 0; k < 4; k++) {
            char what[64];
            snprintf(what, sizeof what, "visual.seg_tokens.%d", k);
            expect_rel(what, v.seg_tokens[k], seg_ref[k] + (size_t)b * Np * E, (size_t)Np * E, 1e-4);
        }
        expect_rel("visual.det_token", v.det_token, det_ref + b * E, E, 1e-4);
        float score;
        CHECK_OK(aac_anomaly_maps(m, &v, T[0][1], AAC_DOMAIN_MEDICAL, lv, sum, &score, &err), &err);
        for (int k = 0; k < 4; k++) {
            char what[64];
            snprintf(what, sizeof what, "map.Medical.level%d", k);
            expect_abs(what, lv[k], lvl_ref[k] + (size_t)b * S * S, (size_t)S * S, 1e-3);
        }
        expect_abs("map.Medical.sum", sum, med_ref + (size_t)b * S * S, (size_t)S * S, 1e-3);
        expect_abs("score.det", &score, score_ref + b, 1, 1e-5);
        CHECK_OK(aac_anomaly_maps(m, &v, T[0][1], AAC_DOMAIN_INDUSTRIAL, NULL, sum, NULL, &err), &err);
        expect_abs("map.Industrial.sum", sum, ind_ref + (size_t)b * S * S, (size_t)S * S, 1e-3);

        CHECK_OK(aac_encode_image(m, img, 0, &v, &err), &err);
        expect_rel("plain.cls_embed", v.cls_embed, cls_ref + b * E, E, 1e-4);
        expect_rel("plain.patch_proj.24", v.patch_proj, pp_ref + (size_t)b * Np * E, (size_t)Np * E, 1e-4);
    }

    for (int k = 0; k < 4; k++) free(v.seg_tokens[k]), free(lv[k]), free(seg_ref[k]), free(lvl_ref[k]);
    free(v.det_token), free(v.cls_embed), free(v.patch_proj), free(sum);
    free(det_ref), free(score_ref), free(med_ref), free(ind_ref), free(cls_ref), free(pp_ref);
    free(raw), free(input), free(u8), free(pre), free(pe_ref), free(toks), free(plain_ref), free(adapt_ref);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    st_close(g_gold);
    return tu_finish("test_golden");
}
