/* test_golden.c - the library against the tensors of the official PyTorch implementation
 * (../shared/golden/tiny, tolerances from its README; without ../shared the reduced set in the
 * repository, where large tensors are compared at their sampled positions: golden_ref.h). */
#include <stdlib.h>
#include <string.h>

#include "aaclip.h"
#include "golden_ref.h"
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

/* Trace tap: compares every residual-stream step of image 0 with the golden debug tensors (the
 * reduced set keeps a few of them, sampled). */
static int g_traced;
static void trace_cb(void *ctx, const char *name, const float *data, int rows, int cols) {
    (void)ctx;
    const st_tensor *t = st_find(g_gold, name);
    if (!t) return; /* the reference recorded adapted steps only where adapters exist */
    float *ref = gold(name, NULL);
    const int64_t dims[2] = {rows, cols};
    size_t n = 0;
    float *got = gr_pick(g_gold, name, data, 2, dims, &n);
    CHECK(got != NULL, "%s: %d x %d values do not fit golden %lld", name, rows, cols, (long long)t->numel);
    if (got) expect_rel(name, got, ref, n, 1e-4);
    free(ref), free(got);
    g_traced++;
}

/* Golden tensors of the residual-stream trace present in the reference set. */
static int count_traces(void) {
    int n = 0;
    for (size_t i = 0; i < st_count(g_gold); i++) {
        const char *name = st_at(g_gold, i)->name;
        n += !strncmp(name, "visual.block", 12) || !strcmp(name, "visual.embed") || !strcmp(name, "visual.ln_pre");
    }
    return n;
}

/* A whole result against golden `name`, at the positions the reference holds. */
static void expect_picked(const char *name, const float *full, int ndim, const int64_t *dims, double tol, int abs_err);

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

static void expect_picked(const char *name, const float *full, int ndim, const int64_t *dims, double tol, int abs_err) {
    size_t n = 0, nr = 0;
    float *got = gr_pick(g_gold, name, full, ndim, dims, &n), *ref = gold(name, &nr);
    CHECK(got && n == nr, "%s: shape does not fit the golden tensor", name);
    char what[96];
    snprintf(what, sizeof what, "%s%s", name, gr_sampled(g_gold, name) ? " (sampled)" : "");
    if (got && n == nr) (abs_err ? expect_abs : expect_rel)(what, got, ref, n, tol);
    free(got), free(ref);
}

int main(void) {
    const int full = tu_golden_full();
    printf("golden set: %s\n", full ? "../shared/golden/tiny (full)" : "reduced copy from the repository");
    aac_error err;
    CHECK_OK(st_open(tu_golden("golden.safetensors"), &g_gold, &err), &err);
    aac_model *m;
    CHECK_OK(aac_model_open(tu_golden("clip_openclip.safetensors"), tu_golden("aaclip_adapters.safetensors"), NULL, &m,
                            &err),
             &err);
    aac_tokenizer *tok;
    CHECK_OK(aac_tokenizer_open_bpe(TU_BPE_PATH, &tok, &err), &err);
    const aac_config *c = aac_model_config(m);
    const int S = c->img, E = c->embed_dim, G = aac_model_grid(m), Np = G * G;
    CHECK(S == 518 && E == 24 && G == 37 && c->v_layers == 24 && c->t_heads == 2, "config");

    /* preprocessing: image.input of both images (whole or sampled) */
    size_t n;
    float *raw = gold("image.raw_u8", &n);
    const int B = 2, H = 512;
    const size_t in_sz = (size_t)3 * S * S;
    uint8_t *u8 = malloc((size_t)H * H);
    float *pre = malloc(sizeof(float) * B * in_sz);
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < H * H; i++) u8[i] = (uint8_t)raw[(size_t)b * H * H + i];
        CHECK_OK(aac_preprocess_grey(u8, H, H, S, pre + b * in_sz, &err), &err);
    }
    const int64_t in_dims[4] = {B, 3, S, S};
    expect_picked("image.input", pre, 4, in_dims, 1e-6, 1);
    /* the engine runs on the reference's input when it is whole, else on ours (equal to 1e-6) */
    float *input = gr_sampled(g_gold, "image.input") ? pre : gold("image.input", NULL);

    const float *pe;
    CHECK_OK(aac_model_pos_embed(m, &pe, &err), &err);
    const int64_t pe_dims[2] = {Np + 1, c->v_width};
    expect_picked("pos_embed_resized", pe, 2, pe_dims, 1e-4, 0);

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

    /* vision: adapted features, maps and scores; plain embeddings; both images' results are
     * gathered [B, ...] and compared with the golden batch tensors */
    float *det_ref = gold("visual.det_token", NULL), *score_ref = gold("score.det", NULL);
    float *cls_ref = gold("plain.cls_embed", NULL);
    float *seg[4], *lvl[4], *med = malloc(sizeof(float) * B * S * S), *ind = malloc(sizeof(float) * B * S * S);
    float *pp = malloc(sizeof(float) * B * Np * E);
    for (int k = 0; k < 4; k++) seg[k] = malloc(sizeof(float) * B * Np * E), lvl[k] = malloc(sizeof(float) * B * S * S);
    aac_vision_out v = {0};
    v.det_token = malloc(sizeof(float) * E);
    v.cls_embed = malloc(sizeof(float) * E);
    const int expect_traces = count_traces();
    for (int b = 0; b < B; b++) {
        printf("image %d\n", b);
        const float *img = input + (size_t)b * in_sz;
        for (int k = 0; k < 4; k++) v.seg_tokens[k] = seg[k] + (size_t)b * Np * E;
        if (b == 0) m->trace = trace_cb; /* the debug tensors are image 0's */
        CHECK_OK(aac_encode_image(m, img, 1, &v, &err), &err);
        m->trace = NULL;
        if (b == 0)
            CHECK(g_traced == expect_traces && (!full || g_traced == 2 + 24 + 6),
                  "traced %d residual-stream steps, the reference holds %d", g_traced, expect_traces);
        expect_rel("visual.det_token", v.det_token, det_ref + b * E, E, 1e-4);
        float score, *lv[4];
        for (int k = 0; k < 4; k++) lv[k] = lvl[k] + (size_t)b * S * S;
        CHECK_OK(aac_anomaly_maps(m, &v, T[0][1], AAC_DOMAIN_MEDICAL, lv, med + (size_t)b * S * S, &score, &err), &err);
        expect_abs("score.det", &score, score_ref + b, 1, 1e-5);
        CHECK_OK(aac_anomaly_maps(m, &v, T[0][1], AAC_DOMAIN_INDUSTRIAL, NULL, ind + (size_t)b * S * S, NULL, &err),
                 &err);
        aac_vision_out plain = {.cls_embed = v.cls_embed, .patch_proj = pp + (size_t)b * Np * E};
        CHECK_OK(aac_encode_image(m, img, 0, &plain, &err), &err);
        expect_rel("plain.cls_embed", v.cls_embed, cls_ref + b * E, E, 1e-4);
    }
    printf("both images\n");
    const int64_t tok_dims[3] = {B, Np, E}, map_dims[4] = {B, 1, S, S}, sum_dims[3] = {B, S, S};
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "visual.seg_tokens.%d", k);
        expect_picked(name, seg[k], 3, tok_dims, 1e-4, 0);
        snprintf(name, sizeof name, "map.Medical.level%d", k);
        expect_picked(name, lvl[k], 4, map_dims, 1e-3, 1);
    }
    expect_picked("map.Medical.sum", med, 3, sum_dims, 1e-3, 1);
    expect_picked("map.Industrial.sum", ind, 3, sum_dims, 1e-3, 1);
    expect_picked("plain.patch_proj.24", pp, 3, tok_dims, 1e-4, 0);

    for (int k = 0; k < 4; k++) free(seg[k]), free(lvl[k]);
    free(v.det_token), free(v.cls_embed), free(pp), free(med), free(ind);
    free(det_ref), free(score_ref), free(cls_ref);
    if (input != pre) free(input);
    free(raw), free(u8), free(pre), free(toks), free(plain_ref), free(adapt_ref);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    st_close(g_gold);
    return tu_finish("test_golden");
}
