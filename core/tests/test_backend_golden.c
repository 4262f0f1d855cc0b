/* test_backend_golden.c - the golden comparison (../shared/golden/tiny) through every backend
 * found on the default plugin search path (the build tree's plugins), at every precision it
 * has. float32: the tolerances of golden/README.md (features and anchors 1e-4 relative, maps
 * 1e-3 max abs, scores 1e-5). bf16 (the README's reduced-precision rule): features and maps
 * within 1e-2 relative norm and the same ranking of the images by detection score. The built-in
 * backend at f32 is test_golden's; it runs here too as the baseline of the list. */
#include <stdlib.h>
#include <string.h>

#include "aaclip.h"
#include "aaclip_backend.h"
#include "safetensors.h"
#include "testutil.h"

static st_file *g_gold;

static float *gold(const char *name) {
    const st_tensor *t = st_find(g_gold, name);
    if (!t) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        exit(1);
    }
    float *p = malloc(sizeof(float) * t->numel);
    aac_error err;
    CHECK_OK(st_read_f32(g_gold, name, 0, NULL, p, &err), &err);
    return p;
}

typedef struct tol { double feat, map_abs, map_rel, score; int bf16; } tol;

static void expect(const char *tag, const char *what, double e, double limit) {
    printf("  %-22s %-28s %.3g (limit %.3g)\n", tag, what, e, limit);
    CHECK(e <= limit && e == e, "%s %s: %g > %g", tag, what, e, limit);
}

/* One backend at one precision through the whole golden set. */
static void run_backend(const char *name, aac_precision prec, const char *clip, const char *ad,
                        const aac_tokenizer *tok, const aac_plugins *p) {
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
    const int S = c->img, E = c->embed_dim, G = aac_model_grid(m), Np = G * G;

    float T[48], *Tref = gold("text.scan.adapted");
    CHECK_OK(aac_text_anchors(m, tok, "scan", 1, T, &err), &err);
    expect(tag, "text.scan.adapted", tu_rel_err(T, Tref, 2 * (size_t)E), t.feat);

    float *input = gold("image.input"), *det_ref = gold("visual.det_token"), *score_ref = gold("score.det");
    float *sum_ref = gold("map.Medical.sum"), *cls_ref = gold("plain.cls_embed");
    aac_vision_out v = {0};
    for (int k = 0; k < 4; k++) v.seg_tokens[k] = malloc(sizeof(float) * Np * E);
    v.det_token = malloc(sizeof(float) * E);
    v.cls_embed = malloc(sizeof(float) * E);
    float *sum = malloc(sizeof(float) * S * S), score[2];
    for (int b = 0; b < 2; b++) {
        const float *img = input + (size_t)b * 3 * S * S;
        CHECK_OK(aac_encode_image(m, img, 1, &v, &err), &err);
        double worst = 0;
        for (int k = 0; k < 4; k++) {
            char name_k[64];
            snprintf(name_k, sizeof name_k, "visual.seg_tokens.%d", k);
            float *ref = gold(name_k);
            const double e = tu_rel_err(v.seg_tokens[k], ref + (size_t)b * Np * E, (size_t)Np * E);
            worst = e > worst ? e : worst;
            free(ref);
        }
        expect(tag, b ? "seg_tokens (image 1)" : "seg_tokens (image 0)", worst, t.feat);
        expect(tag, "det_token", tu_rel_err(v.det_token, det_ref + b * E, E), t.feat);
        /* maps with the golden anchors, so that they judge the vision path alone */
        CHECK_OK(aac_anomaly_maps(m, &v, Tref, AAC_DOMAIN_MEDICAL, NULL, sum, &score[b], &err), &err);
        if (t.map_abs >= 0)
            expect(tag, "map.Medical.sum max abs", tu_max_abs(sum, sum_ref + (size_t)b * S * S, (size_t)S * S), t.map_abs);
        else
            expect(tag, "map.Medical.sum rel", tu_rel_err(sum, sum_ref + (size_t)b * S * S, (size_t)S * S), t.map_rel);
        if (t.score >= 0) expect(tag, "score.det", tu_max_abs(&score[b], score_ref + b, 1), t.score);
        CHECK_OK(aac_encode_image(m, img, 0, &v, &err), &err);
        expect(tag, "plain.cls_embed", tu_rel_err(v.cls_embed, cls_ref + b * E, E), t.feat);
    }
    /* the ranking of the images by detection score is the reference's */
    printf("  %-22s score.det %.6f %.6f (reference %.6f %.6f)\n", tag, score[0], score[1], score_ref[0],
           score_ref[1]);
    CHECK((score[0] > score[1]) == (score_ref[0] > score_ref[1]), "%s: image ranking by score differs", tag);
    for (int k = 0; k < 4; k++) free(v.seg_tokens[k]);
    free(v.det_token), free(v.cls_embed), free(sum), free(input), free(det_ref), free(score_ref);
    free(sum_ref), free(cls_ref), free(Tref);
    aac_model_free(m);
}

int main(void) {
    const char *gold_path = tu_shared("golden/tiny/golden.safetensors");
    const char *clip = tu_shared("golden/tiny/clip_openclip.safetensors");
    const char *ad = tu_shared("golden/tiny/aaclip_adapters.safetensors");
    const char *bpe = tu_shared("vocab/bpe_simple_vocab_16e6.txt.gz");
    aac_error err;
    CHECK_OK(st_open(gold_path, &g_gold, &err), &err);
    aac_tokenizer *tok;
    CHECK_OK(aac_tokenizer_open_bpe(bpe, &tok, &err), &err);
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
            run_backend(d.name, prec, clip, ad, tok, p);
            runs++;
        }
    }
    printf("%d backend/precision combinations checked\n", runs);
    CHECK(runs >= 1, "no backend ran");
    aac_plugins_free(p);
    aac_tokenizer_free(tok);
    st_close(g_gold);
    return tu_finish("test_backend_golden");
}
