/* test_cli_model.c - `aaclip model import|info` and `--model` end to end: every golden source kind
 * imported into a bundle, `model info` on it, `aaclip dump --model` reproducing the golden maps
 * (the golden set of ../shared, else the reduced one in the repository, compared at its sampled
 * positions); usage errors exit 2, input errors exit 1 with a message naming the problem. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aaclip.h"
#include "golden_ref.h"
#include "safetensors.h"
#include "testutil.h"
#include "tu_run.h"
#include "st_testutil.h"


static float *read_all(st_file *f, const char *name, int64_t *n) {
    const st_tensor *t = st_find(f, name);
    CHECK(t != NULL, "%s: tensor %s missing", st_path(f), name);
    if (!t) return NULL;
    float *x = malloc(sizeof(float) * t->numel);
    aac_error err;
    CHECK_OK(st_read_f32(f, name, 0, NULL, x, &err), &err);
    *n = t->numel;
    return x;
}

/* mode 0: max abs, 1: relative; returns the error (at the positions `gold` holds). */
static double err_of(st_file *out, st_file *gold, const char *name, const char *gname, int rel) {
    int64_t na = 0, nb = 0;
    float *a = read_all(out, name, &na), *b = read_all(gold, gname, &nb);
    const st_tensor *t = st_find(out, name);
    size_t n = 0;
    float *x = a && t ? gr_pick(gold, gname, a, t->ndim, t->shape, &n) : NULL;
    double e = 1e30;
    if (x && b && (int64_t)n == nb) e = rel ? tu_rel_err(x, b, n) : tu_max_abs(x, b, n);
    CHECK(x && (int64_t)n == nb, "%s: %lld values do not fit golden %lld", name, (long long)na, (long long)nb);
    free(a), free(b), free(x);
    return e;
}

/* Full-precision sources: the golden tolerances. */
static void check_golden(const char *what, const char *res, st_file *gold) {
    aac_error err;
    st_file *o;
    CHECK_OK(st_open(res, &o, &err), &err);
    double e_map = err_of(o, gold, "map.Medical.sum", "map.Medical.sum", 0);
    double e_score = err_of(o, gold, "score.det", "score.det", 0);
    double e_anchor = err_of(o, gold, "text.anchors", "text.scan.adapted", 1);
    double e_seg = 0;
    for (int k = 0; k < 4; k++) {
        char n[64];
        snprintf(n, sizeof n, "visual.seg_tokens.%d", k);
        double e = err_of(o, gold, n, n, 1);
        if (e > e_seg) e_seg = e;
    }
    printf("  %-26s map.sum max abs %.3g  score max abs %.3g  seg rel %.3g  anchors rel %.3g\n", what, e_map,
           e_score, e_seg, e_anchor);
    CHECK(e_map <= 1e-3 && e_score <= 1e-5 && e_seg <= 1e-4 && e_anchor <= 1e-4, "%s: outside the golden tolerances",
          what);
    st_close(o);
}

/* fp16 weights: the reduced-precision criterion (maps rel <= 1e-2, same ranking of the images),
 * and bit-identical to the same weights rounded to fp16 from the canonical file. */
static void check_half(const char *what, const char *res, const char *res_ref, st_file *gold) {
    aac_error err;
    st_file *o, *r;
    CHECK_OK(st_open(res, &o, &err), &err);
    CHECK_OK(st_open(res_ref, &r, &err), &err);
    double e_map = err_of(o, gold, "map.Medical.sum", "map.Medical.sum", 1);
    double e_score = err_of(o, gold, "score.det", "score.det", 0);
    double same = 0;
    const char *names[] = {"map.Medical.sum", "score.det", "visual.seg_tokens.0", "text.anchors", "plain.cls_embed"};
    for (int i = 0; i < 5; i++) {
        double e = err_of(o, r, names[i], names[i], 0);
        if (e > same) same = e;
    }
    int64_t n1, n2;
    float *s = read_all(o, "score.det", &n1), *g = read_all(gold, "score.det", &n2);
    int ranked = s && g && n1 == 2 && n2 == 2 && ((s[0] > s[1]) == (g[0] > g[1]));
    printf("  %-26s map.sum rel %.3g  score max abs %.3g  same ranking %s  vs fp16-rounded canonical %.3g\n",
           what, e_map, e_score, ranked ? "yes" : "no", same);
    CHECK(e_map <= 1e-2 && ranked, "%s: outside the reduced-precision tolerance", what);
    CHECK(same == 0, "%s: differs from the fp16-rounded canonical weights (%g)", what, same);
    free(s), free(g);
    st_close(o), st_close(r);
}

int main(void) {
    static char out[65536];
    char cmd[8192];
    /* usage errors: no golden files needed */
    CHECK(tu_run(AACLIP_EXE " model", out, sizeof out) == 2 && strstr(out, "import"), "no subcommand: %s", out);
    CHECK(tu_run(AACLIP_EXE " model frob", out, sizeof out) == 2 && strstr(out, "frob"), "bad subcommand: %s", out);
    CHECK(tu_run(AACLIP_EXE " model import x.pt", out, sizeof out) == 2 && strstr(out, "-o BUNDLE"), "no -o: %s", out);
    CHECK(tu_run(AACLIP_EXE " model import x.pt -o b --epoch abc", out, sizeof out) == 2 && strstr(out, "--epoch"),
          "bad epoch: %s", out);
    CHECK(tu_run(AACLIP_EXE " model import x.pt -o b --activation relu", out, sizeof out) == 2 &&
              strstr(out, "--activation"), "bad activation: %s", out);
    CHECK(tu_run(AACLIP_EXE " model import x.pt -o b --bogus", out, sizeof out) == 2 && strstr(out, "--bogus"),
          "unknown option: %s", out);
    CHECK(tu_run(AACLIP_EXE " model info", out, sizeof out) == 2, "info without bundle: %s", out);
    CHECK(tu_run(AACLIP_EXE " model --help", out, sizeof out) == 0 && strstr(out, "--vision-head-width") &&
              strstr(out, "--epoch"), "help: %s", out);
    CHECK(tu_run(AACLIP_EXE " model import --help", out, sizeof out) == 0 && strstr(out, "image_adapter_<N>.pth"),
          "import help: %s", out);
    CHECK(tu_run(AACLIP_EXE " --help", out, sizeof out) == 0 && strstr(out, "model"), "main usage: %s", out);
    CHECK(tu_run(AACLIP_EXE " dump --help", out, sizeof out) == 0 && strstr(out, "--model BUNDLE"), "dump help: %s", out);
    CHECK(tu_run(AACLIP_EXE " dump --model b --clip c --adapters a --input i --output o", out, sizeof out) == 2 &&
              strstr(out, "excludes"), "--model with --clip: %s", out);
    CHECK(tu_run(AACLIP_EXE " model info /nonexistent/bundle", out, sizeof out) == 1 &&
              strstr(out, "/nonexistent/bundle"), "info of a missing bundle: %s", out);
    CHECK(tu_run(AACLIP_EXE " model import /nonexistent/x.pt -o /tmp/aac_never", out, sizeof out) == 1 &&
              strstr(out, "/nonexistent/x.pt"), "missing source: %s", out);
    if (tu_failures) return tu_finish("test_cli_model");

    const char *g_golden = tu_golden("golden.safetensors");
    const char *g_clip = tu_golden("clip_openclip.safetensors");
    const char *g_ad = tu_golden("aaclip_adapters.safetensors");
    const char *g_sd = tu_golden("clip_openclip_state_dict.pt");
    const char *g_ts = tu_golden("clip_torchscript_fp16.pt");
    const char *g_hf = tu_golden("hf");
    const char *g_tp = tu_golden("text_adapter.pth");
    const char *g_ip = tu_golden("image_adapter_15.pth");
    char dir[] = "/tmp/aac_test_cli_model_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    /* dump's input: the golden 8-bit slices (dump preprocesses them) */
    char gold_path[512];
    snprintf(gold_path, sizeof gold_path, "%s/raw.safetensors", dir);
    {
        aac_error e;
        st_file *g;
        CHECK_OK(st_open(g_golden, &g, &e), &e);
        const st_tensor *raw = st_find(g, "image.raw_u8");
        st_writer *w = st_writer_new();
        CHECK_OK(st_writer_add(w, "image.raw_u8", ST_U8, raw->ndim, raw->shape, raw->data, &e), &e);
        CHECK_OK(st_writer_save(w, gold_path, &e), &e);
        st_writer_free(w);
        st_close(g);
    }
    char ckpt[512], clip16[512];
    snprintf(ckpt, sizeof ckpt, "%s/ckpt", dir);
    mkdir(ckpt, 0755);
    snprintf(cmd, sizeof cmd, "%s/text_adapter.pth", ckpt);
    tu_copy_file(g_tp, cmd);
    snprintf(cmd, sizeof cmd, "%s/image_adapter_15.pth", ckpt);
    tu_copy_file(g_ip, cmd);
    snprintf(clip16, sizeof clip16, "%s/clip16.safetensors", dir);
    tu_write_reduced(g_clip, clip16, 1);

    const char *heads = "--vision-head-width 16 --text-heads 2";
    struct { const char *name, *srcs, *opts; int half; } cases[] = {
        {"canonical+safetensors", "", "", 0},
        {"hf-folder", "", "", 0},
        {"state-dict+pth", "", "", 0},
        {"torchscript-fp16+pth", "", "", 1},
        {"canonical+ckpt-folder", "", "", 0},
        {"fp16-canonical", "", "", 2},
    };
    char srcs[6][2048];
    snprintf(srcs[0], sizeof srcs[0], "%s %s", g_clip, g_ad);
    snprintf(srcs[1], sizeof srcs[1], "%s %s", g_hf, g_ad);
    snprintf(srcs[2], sizeof srcs[2], "%s %s %s", g_sd, g_tp, g_ip);
    snprintf(srcs[3], sizeof srcs[3], "%s %s %s", g_ts, g_tp, g_ip);
    snprintf(srcs[4], sizeof srcs[4], "%s %s", g_clip, ckpt);
    snprintf(srcs[5], sizeof srcs[5], "%s %s", clip16, g_ad);
    for (int i = 0; i < 6; i++) {
        cases[i].srcs = srcs[i];
        cases[i].opts = (i == 2 || i == 3) ? heads : "";
    }

    aac_error err;
    st_file *gold;
    CHECK_OK(st_open(g_golden, &gold, &err), &err);
    char res[6][512], bundle[512];
    for (int i = 0; i < 6; i++) {
        snprintf(bundle, sizeof bundle, "%s/%s", dir, cases[i].name);
        snprintf(res[i], sizeof res[i], "%s/%s.out.safetensors", dir, cases[i].name);
        snprintf(cmd, sizeof cmd, AACLIP_EXE " model import %s -o %s %s", cases[i].srcs, bundle, cases[i].opts);
        int rc = tu_run(cmd, out, sizeof out);
        CHECK(rc == 0 && strstr(out, "3 heads of 16") && strstr(out, "activation  gelu"), "import %s (%d): %s",
              cases[i].name, rc, out);
        snprintf(cmd, sizeof cmd, AACLIP_EXE " model info %s", bundle);
        CHECK(tu_run(cmd, out, sizeof out) == 0 && strstr(out, "levels 6 12 18 24"), "info %s: %s", cases[i].name, out);
        snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --model %s --input %s --output %s", bundle, gold_path, res[i]);
        rc = tu_run(cmd, out, sizeof out);
        CHECK(rc == 0, "dump --model %s (%d): %s", cases[i].name, rc, out);
        if (rc) continue;
        if (cases[i].half == 0) check_golden(cases[i].name, res[i], gold);
    }
    check_half(cases[3].name, res[3], res[5], gold);

    /* info --json is model.json; the bundle's HF tokenizer was copied */
    snprintf(cmd, sizeof cmd, AACLIP_EXE " model info --json %s/hf-folder", dir);
    CHECK(tu_run(cmd, out, sizeof out) == 0 && strstr(out, "\"format\": \"aaclip-model-bundle\"") &&
              strstr(out, "\"merges\": \"merges.txt\""), "info --json: %.400s", out);
    /* an existing bundle needs --force */
    snprintf(cmd, sizeof cmd, AACLIP_EXE " model import %s -o %s/hf-folder", srcs[1], dir);
    CHECK(tu_run(cmd, out, sizeof out) == 1 && strstr(out, "--force"), "overwrite without --force: %s", out);
    snprintf(cmd, sizeof cmd, AACLIP_EXE " model import %s -o %s/hf-folder --force --tokenizer %s/vocab.json",
             g_ad, dir, g_hf);
    CHECK(tu_run(cmd, out, sizeof out) == 1 && strstr(out, "no CLIP backbone"), "adapters only: %s", out);
    snprintf(cmd, sizeof cmd, AACLIP_EXE " model import %s -o %s/hf-folder --force", srcs[1], dir);
    CHECK(tu_run(cmd, out, sizeof out) == 0, "--force: %s", out);
    /* the .pt sources do not state the heads: the message says what to give */
    snprintf(cmd, sizeof cmd, AACLIP_EXE " model import %s -o %s/ts2", srcs[3], dir);
    CHECK(tu_run(cmd, out, sizeof out) == 1 && strstr(out, "--vision-head-width") &&
              strstr(out, "clip_torchscript_fp16.pt"), "heads not stated: %s", out);
    /* a plain CLIP bundle cannot run dump */
    snprintf(cmd, sizeof cmd, AACLIP_EXE " model import %s -o %s/plain", g_hf, dir);
    CHECK(tu_run(cmd, out, sizeof out) == 0 && strstr(out, "activation  quick_gelu") && strstr(out, "none (plain CLIP)"),
          "plain HF: %s", out);
    snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --model %s/plain --input %s --output %s/x.safetensors", dir,
             gold_path, dir);
    CHECK(tu_run(cmd, out, sizeof out) == 1 && strstr(out, "no AA-CLIP adapters"), "plain dump: %s", out);

    st_close(gold);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return tu_finish("test_cli_model");
}
