/* test_plugins.c - the plugin loader and backend selection, with the test backends of
 * core/tests/plugins (a correct "naive" one and deliberately broken ones) and a file that is
 * not a shared object: every bad plugin is listed with the reason, never loaded as a backend,
 * and the built-in backend keeps working; a backend that fails mid-pass makes the call fail
 * with its message; results through another backend match the built-in one. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_backend.h"
#include "testutil.h"

static const aac_config k_small = {.embed_dim = 16, .v_width = 32, .v_head_width = 16,
                                   .v_layers = 4, .patch = 8, .native = 32, .t_width = 32,
                                   .t_heads = 2, .t_layers = 2, .img = 48};

typedef struct run_out { float *seg0, *det, *sum, text[16]; } run_out;

static aac_status run(aac_model *m, const float *img, run_out *o, aac_error *err) {
    const aac_config *c = aac_model_config(m);
    const int G = aac_model_grid(m), Np = G * G, E = c->embed_dim, S = c->img;
    aac_vision_out v = {0};
    float *seg[4];
    for (int k = 0; k < 4; k++) v.seg_tokens[k] = seg[k] = malloc(sizeof(float) * Np * E);
    v.det_token = o->det = malloc(sizeof(float) * E);
    o->sum = malloc(sizeof(float) * S * S);
    o->seg0 = seg[0];
    float T[32];
    for (int e = 0; e < 2 * E; e++) T[e] = (e % 3 ? 0.2f : -0.1f);
    int32_t ids[AAC_CONTEXT_LENGTH] = {49406, 320, 1125, 269, 49407};
    aac_status s = aac_encode_image(m, img, 1, &v, err);
    if (!s) s = aac_anomaly_maps(m, &v, T, AAC_DOMAIN_MEDICAL, NULL, o->sum, NULL, err);
    if (!s) s = aac_encode_text(m, ids, 1, o->text, err);
    for (int k = 1; k < 4; k++) free(seg[k]);
    return s;
}

static void free_out(run_out *o) { free(o->seg0), free(o->det), free(o->sum); }

static const aac_backend_desc *find(const aac_plugins *p, const char *file, aac_backend_desc *d) {
    for (int i = 0; aac_plugins_get(p, i, d); i++)
        if (d->path && strstr(d->path, file)) return d;
    return NULL;
}

static void expect_refused(const aac_plugins *p, const char *file, const char *why) {
    aac_backend_desc d;
    const aac_backend_desc *e = find(p, file, &d);
    CHECK(e != NULL, "%s not listed", file);
    if (!e) return;
    printf("  %-16s refused: %s\n", file, e->refused ? e->refused : "(usable)");
    CHECK(e->refused && strstr(e->refused, why), "%s: refusal '%s' does not say '%s'", file,
          e->refused ? e->refused : "(none)", why);
}

int main(void) {
    char tmp[] = "/tmp/aac_test_plugins_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    char garbage[300], path[1200];
    snprintf(garbage, sizeof garbage, "%s/garbage.so", tmp);
    FILE *f = fopen(garbage, "w");
    CHECK(f != NULL, "write %s", garbage);
    if (f) fputs("this is not an ELF shared object\n", f), fclose(f);
    snprintf(path, sizeof path, "%s/good:%s/bad:%s:/nonexistent/dir", AACLIP_TEST_PLUGIN_DIR,
             AACLIP_TEST_PLUGIN_DIR, tmp);

    aac_error err;
    aac_plugins *p;
    CHECK_OK(aac_plugins_open(path, &p, &err), &err);
    aac_backend_desc d;
    CHECK(aac_plugins_get(p, 0, &d) && !strcmp(d.name, "openblas") && !d.path && !d.refused,
          "entry 0 is not the built-in backend");
    const aac_backend_desc *naive = find(p, "good/naive.so", &d);
    CHECK(naive && !naive->refused && !strcmp(naive->name, "naive") &&
              (naive->caps & AAC_BACKEND_CAP_BF16),
          "naive plugin not usable: %s", naive && naive->refused ? naive->refused : "not found");
    expect_refused(p, "abi999.so", "built for backend ABI version 999, aaclip speaks version 1");
    expect_refused(p, "nullentry.so", "returned nothing");
    expect_refused(p, "noentry.so", "no aaclip_backend_entry function");
    expect_refused(p, "nogemm.so", "required function missing: gemm");
    expect_refused(p, "naive_again.so", "backend 'naive' was already found earlier");
    expect_refused(p, "garbage.so", "cannot be loaded");
    char caps[128];
    aac_backend_caps_string(AAC_BACKEND_CAP_F32 | AAC_BACKEND_CAP_BF16, caps, sizeof caps);
    CHECK(!strcmp(caps, "f32,bf16"), "caps string '%s'", caps);

    /* instances: unknown names, refused plugins, failing create, missing precision */
    aac_compute *cx = NULL;
    aac_status s = aac_compute_open(p, "nope", AAC_PRECISION_F32, 1, &cx, &err);
    CHECK(s == AAC_ERR_MISSING && strstr(err.message, "'nope' not found") &&
              strstr(err.message, "openblas, naive"),
          "unknown backend: %s", err.message);
    s = aac_compute_open(p, "failcreate", AAC_PRECISION_F32, 1, &cx, &err);
    CHECK(s && strstr(err.message, "failcreate") && strstr(err.message, "never starts"),
          "failing create: %s", err.message);
    s = aac_compute_open(p, "openblas", AAC_PRECISION_BF16, 1, &cx, &err);
    CHECK(s == AAC_ERR_UNSUPPORTED && strstr(err.message, "no bf16"), "built-in bf16: %s", err.message);
    CHECK_OK(aac_compute_open(p, "naive", AAC_PRECISION_BF16, 1, &cx, &err), &err);
    CHECK(strstr(aac_compute_describe(cx), "naive bf16: plain loops"), "describe: %s", aac_compute_describe(cx));
    aac_compute_free(cx);

    /* the same model through the built-in and the naive backend */
    aac_model *m;
    CHECK_OK(aac_model_random(&k_small, 5, &m, &err), &err);
    CHECK(!strncmp(aac_model_backend(m), "openblas f32", 12), "random model backend: %s", aac_model_backend(m));
    const int S = k_small.img, G = aac_model_grid(m), Np = G * G, E = k_small.embed_dim;
    float *img = malloc(sizeof(float) * 3 * S * S);
    for (int i = 0; i < 3 * S * S; i++) img[i] = (float)((i * 7919) % 255) / 127.0f - 1.0f;
    run_out ref, o;
    CHECK_OK(run(m, img, &ref, &err), &err);
    CHECK_OK(aac_model_set_backend(m, p, "naive", AAC_PRECISION_F32, &err), &err);
    CHECK_OK(run(m, img, &o, &err), &err);
    double e1 = tu_rel_err(o.seg0, ref.seg0, (size_t)Np * E), e2 = tu_rel_err(o.text, ref.text, E);
    printf("  naive f32 against the built-in: features %.3g, text %.3g\n", e1, e2);
    CHECK(e1 < 1e-5 && e2 < 1e-5, "naive f32 differs: %g %g", e1, e2);
    free_out(&o);
    CHECK_OK(aac_model_set_backend(m, p, "naive", AAC_PRECISION_BF16, &err), &err);
    CHECK_OK(run(m, img, &o, &err), &err);
    e1 = tu_rel_err(o.seg0, ref.seg0, (size_t)Np * E);
    printf("  naive bf16 against the built-in f32: features %.3g\n", e1);
    CHECK(e1 < 1e-2 && e1 > 1e-5, "naive bf16: rel err %g (rounded, yet close)", e1);
    free_out(&o);

    /* a backend that fails mid-pass: the call fails naming it, nothing crashes */
    CHECK_OK(aac_model_set_backend(m, p, "failgemm", AAC_PRECISION_F32, &err), &err);
    s = run(m, img, &o, &err);
    CHECK(s == AAC_ERR_UNSUPPORTED && strstr(err.message, "backend 'failgemm'") &&
              strstr(err.message, "refused on purpose"),
          "failing products: %s", err.message);
    free_out(&o);
    /* switching fails: the model keeps the backend it had */
    CHECK_OK(aac_model_set_backend(m, p, "openblas", AAC_PRECISION_F32, &err), &err);
    char before[800];
    snprintf(before, sizeof before, "%s", aac_model_backend(m));
    s = aac_model_set_backend(m, p, "failcreate", AAC_PRECISION_F32, &err);
    CHECK(s && strstr(err.message, "never starts"), "failcreate accepted: %s", err.message);
    s = aac_model_set_backend(m, p, "abi999", AAC_PRECISION_F32, &err);
    CHECK(s == AAC_ERR_MISSING && strstr(err.message, "'abi999' not found"), "abi999: %s", err.message);
    CHECK(!strcmp(before, aac_model_backend(m)), "backend changed after a failed switch");
    CHECK_OK(run(m, img, &o, &err), &err);
    CHECK(!memcmp(o.seg0, ref.seg0, sizeof(float) * Np * E) && !memcmp(o.sum, ref.sum, sizeof(float) * S * S),
          "the built-in backend gives other bits after the switches");
    free_out(&o);
    /* auto keeps the reference for a model this small */
    CHECK_OK(aac_model_set_backend(m, p, "auto", AAC_PRECISION_BF16, &err), &err);
    CHECK(strstr(aac_model_backend(m), "openblas f32") && strstr(aac_model_backend(m), "auto"),
          "auto on a small model: %s", aac_model_backend(m));

    /* auto on a model large enough to time: the built-in backend beats plain loops */
    const aac_config k_wide = {.embed_dim = 32, .v_width = 256, .v_head_width = 64, .v_layers = 1,
                               .patch = 8, .native = 64, .t_width = 32, .t_heads = 2, .t_layers = 1,
                               .img = 248};
    aac_model *mw;
    aac_plugins *good;
    snprintf(path, sizeof path, "%s/good", AACLIP_TEST_PLUGIN_DIR);
    CHECK_OK(aac_plugins_open(path, &good, &err), &err);
    CHECK_OK(aac_model_random(&k_wide, 9, &mw, &err), &err);
    CHECK_OK(aac_model_set_backend(mw, good, "auto", AAC_PRECISION_F32, &err), &err);
    const char *line = aac_model_backend(mw);
    printf("  %s\n", line);
    CHECK(strstr(line, "auto, 962 x 1024 x 256 product: openblas f32 ") && strstr(line, "naive f32 ") &&
              strncmp(line, "naive", 5) != 0 && strcmp(aac_model_backend_name(mw), "naive") != 0,
          "auto between the built-in and plain loops: %s", line);
    aac_model_free(mw);
    aac_plugins_free(good);

    /* AACLIP_PLUGIN_PATH is the default search path; a named plugin found through it */
    char env[600];
    snprintf(env, sizeof env, "%s/good", AACLIP_TEST_PLUGIN_DIR);
    setenv("AACLIP_PLUGIN_PATH", env, 1);
    CHECK_OK(aac_model_set_backend(m, NULL, "naive", AAC_PRECISION_F32, &err), &err);
    CHECK(!strncmp(aac_model_backend(m), "naive f32", 9), "via AACLIP_PLUGIN_PATH: %s", aac_model_backend(m));
    /* and a model opened with params naming it */
    char clip[300];
    snprintf(clip, sizeof clip, "%s/clip.safetensors", tmp);
    CHECK_OK(aac_model_save(m, clip, NULL, &err), &err);
    aac_model_params mp = aac_model_default_params();
    mp.backend = "naive";
    aac_model *m2;
    CHECK_OK(aac_model_open(clip, NULL, &mp, &m2, &err), &err);
    CHECK(!strncmp(aac_model_backend(m2), "naive f32", 9), "opened with backend naive: %s", aac_model_backend(m2));
    aac_model_free(m2);
    mp.backend = "nothere";
    s = aac_model_open(clip, NULL, &mp, &m2, &err);
    CHECK(s == AAC_ERR_MISSING && strstr(err.message, "'nothere' not found"), "open with a missing backend: %s",
          err.message);
    unsetenv("AACLIP_PLUGIN_PATH");

    free_out(&ref);
    free(img);
    aac_model_free(m);
    aac_plugins_free(p);
    unlink(clip);
    unlink(garbage);
    rmdir(tmp);
    return tu_finish("test_plugins");
}
