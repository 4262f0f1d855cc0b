/* test_backend_golden.c - the golden comparison (../shared/golden/tiny) through every backend
 * found on the default plugin search path (the build tree's plugins), at every precision it
 * has. float32: the tolerances of golden/README.md (features and anchors 1e-4 relative, maps
 * 1e-3 max abs, scores 1e-5). bf16 (the README's reduced-precision rule): features and maps
 * within 1e-2 relative norm and the same ranking of the images by detection score. The built-in
 * backend at f32 is test_golden's; it runs here too as the baseline of the list. Without
 * ../shared: the reduced set in the repository (testutil.h: tu_golden, golden_ref.h). */
#include <stdlib.h>
#include <string.h>

#include "aaclip.h"
#include "aaclip_backend.h"
#include "golden_ref.h"
#include "safetensors.h"
#include "testutil.h"

static st_file *g_gold;

static float *gold(const char *name) {
    const st_tensor *t = st_find(g_gold, name);
    if (!t) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        exit(1);
    }
    float *p = malloc(sizeof(float) * (t->numel ? t->numel : 1));
    aac_error err;
    CHECK_OK(st_read_f32(g_gold, name, 0, NULL, p, &err), &err);
    return p;
}

typedef struct tol { double feat, map_abs, map_rel, score; int bf16; } tol;

static void expect(const char *tag, const char *what, double e, double limit) {
    printf("  %-22s %-28s %.3g (limit %.3g)\n", tag, what, e, limit);
    CHECK(e <= limit && e == e, "%s %s: %g > %g", tag, what, e, limit);
}

/* `got` (full, shape dims) against golden tensor `name` at the positions it holds (all of them in
 * the full set, the sampled ones in the reduced set): relative norm error, or max abs when abs. */
static double compare(const char *name, const float *got, int ndim, const int64_t *dims, int abs) {
    size_t n = 0;
    float *picked = gr_pick(g_gold, name, got, ndim, dims, &n), *ref = gold(name);
    CHECK(picked != NULL, "%s: shape differs from the golden tensor", name);
    const double e = !picked ? 1e30 : abs ? tu_max_abs(picked, ref, n) : tu_rel_err(picked, ref, n);
    free(picked), free(ref);
    return e;
}

/* One backend at one precision through the whole golden set. */
static void run_backend(const char *name, aac_precision prec, const char *clip, const char *ad,
                        const aac_tokenizer *tok, const aac_plugins *p, const float *input) {
    char tag[64];
    snprintf(tag, sizeof tag, "%s %s", name, aac_precision_name(prec));
    const tol t = prec == AAC_PRECISION_F32 ? (tol){1e-4, 1e-3, -1, 1e-5, 0} : (tol){1e-2, -1, 1e-2, -1, 1};
    aac_model_params mp = aac_model_default_params();
    mp.backend = name;
    mp.precision = prec;
    mp.plugins = p;
    aac_model *m;
    aac_error err;
    CHECK_OK(aac_model_open(clip, ad, &mp, &m, &err), &err);
    printf("%s\n", aac_model_backend(m));
    const aac_config *c = aac_model_config(m);
    const int S = c->img, E = c->embed_dim, G = aac_model_grid(m), Np = G * G, B = 2;

    float T[48], *Tref = gold("text.scan.adapted");
    CHECK_OK(aac_text_anchors(m, tok, "scan", 1, T, &err), &err);
    expect(tag, "text.scan.adapted", tu_rel_err(T, Tref, 2 * (size_t)E), t.feat);

    /* both images into full buffers [B, ...], compared where the reference holds values */
    float *seg[4], *det = malloc(sizeof(float) * B * E), *cls = malloc(sizeof(float) * B * E);
    float *sum = malloc(sizeof(float) * B * S * S), score[2];
    for (int k = 0; k < 4; k++) seg[k] = malloc(sizeof(float) * B * Np * E);
    aac_vision_out v = {0};
    for (int b = 0; b < B; b++) {
        const float *img = input + (size_t)b * 3 * S * S;
        for (int k = 0; k < 4; k++) v.seg_tokens[k] = seg[k] + (size_t)b * Np * E;
        v.det_token = det + b * E;
        v.cls_embed = cls + b * E;
        CHECK_OK(aac_encode_image(m, img, 1, &v, &err), &err);
        /* maps with the golden anchors, so that they judge the vision path alone */
        CHECK_OK(aac_anomaly_maps(m, &v, Tref, AAC_DOMAIN_MEDICAL, NULL, sum + (size_t)b * S * S, &score[b], &err),
                 &err);
        CHECK_OK(aac_encode_image(m, img, 0, &v, &err), &err);
    }
    const int64_t tok_dims[3] = {B, Np, E}, vec_dims[2] = {B, E}, map_dims[3] = {B, S, S};
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        char name_k[64];
        snprintf(name_k, sizeof name_k, "visual.seg_tokens.%d", k);
        const double e = compare(name_k, seg[k], 3, tok_dims, 0);
        worst = e > worst ? e : worst;
    }
    expect(tag, "seg_tokens (worst level)", worst, t.feat);
    expect(tag, "det_token", compare("visual.det_token", det, 2, vec_dims, 0), t.feat);
    if (t.map_abs >= 0)
        expect(tag, "map.Medical.sum max abs", compare("map.Medical.sum", sum, 3, map_dims, 1), t.map_abs);
    else
        expect(tag, "map.Medical.sum rel", compare("map.Medical.sum", sum, 3, map_dims, 0), t.map_rel);
    float *score_ref = gold("score.det");
    if (t.score >= 0) expect(tag, "score.det", tu_max_abs(score, score_ref, 2), t.score);
    expect(tag, "plain.cls_embed", compare("plain.cls_embed", cls, 2, vec_dims, 0), t.feat);
    /* the ranking of the images by detection score is the reference's */
    printf("  %-22s score.det %.6f %.6f (reference %.6f %.6f)\n", tag, score[0], score[1], score_ref[0],
           score_ref[1]);
    CHECK((score[0] > score[1]) == (score_ref[0] > score_ref[1]), "%s: image ranking by score differs", tag);
    for (int k = 0; k < 4; k++) free(seg[k]);
    free(det), free(cls), free(sum), free(score_ref), free(Tref);
    aac_model_free(m);
}

int main(void) {
    printf("golden set: %s\n", tu_golden_full() ? "../shared/golden/tiny (full)" : "reduced copy from the repository");
    const char *clip = tu_golden("clip_openclip.safetensors"), *ad = tu_golden("aaclip_adapters.safetensors");
    aac_error err;
    CHECK_OK(st_open(tu_golden("golden.safetensors"), &g_gold, &err), &err);
    aac_tokenizer *tok;
    CHECK_OK(aac_tokenizer_open_bpe(TU_BPE_PATH, &tok, &err), &err);
    aac_model *m0;
    CHECK_OK(aac_model_open(clip, ad, NULL, &m0, &err), &err);
    float *input = gr_input(g_gold, aac_model_config(m0)->img);
    aac_model_free(m0);
    CHECK(input != NULL, "golden input images");
    if (!input) return tu_finish("test_backend_golden");
    aac_plugins *p;
    CHECK_OK(aac_plugins_open(NULL, &p, &err), &err);
    int runs = 0;
    aac_backend_desc d;
    for (int i = 0; aac_plugins_get(p, i, &d); i++) {
        if (d.refused || !d.name) {
            printf("skipping %s: %s\n", d.path, d.refused ? d.refused : "?");
            continue;
        }
        for (int pr = 0; pr <= 1; pr++) {
            const aac_precision prec = pr ? AAC_PRECISION_BF16 : AAC_PRECISION_F32;
            if (!(d.caps & (pr ? AAC_BACKEND_CAP_BF16 : AAC_BACKEND_CAP_F32))) continue;
            /* a backend may lack a precision on this CPU: that is reported, not a failure */
            aac_compute *cx;
            if (aac_compute_open(p, d.name, prec, 0, &cx, &err)) {
                printf("%s %s not available here: %s\n", d.name, aac_precision_name(prec), err.message);
                continue;
            }
            aac_compute_free(cx);
            run_backend(d.name, prec, clip, ad, tok, p, input);
            runs++;
        }
    }
    printf("%d backend/precision combinations checked\n", runs);
    CHECK(runs >= 1, "no backend ran");
    aac_plugins_free(p);
    aac_tokenizer_free(tok);
    free(input);
    st_close(g_gold);
    return tu_finish("test_backend_golden");
}
