/* test_cli_dump.c - `aaclip dump` end to end: golden inputs in, golden outputs expected (the
 * golden set of ../shared, else the reduced one in the repository, compared at its sampled
 * positions); usage and input errors give exit status 2 / 1 with a message naming the problem. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aaclip.h"
#include "golden_ref.h"
#include "safetensors.h"
#include "testutil.h"
#include "tu_run.h"


static void compare(st_file *out, st_file *gold, const char *name, const char *gold_name, int abs_tol,
                    double tol) {
    const st_tensor *a = st_find(out, name), *b = st_find(gold, gold_name);
    CHECK(a && b, "tensor %s missing", name);
    if (!a || !b) return;
    float *full = malloc(sizeof(float) * a->numel), *y = malloc(sizeof(float) * b->numel);
    aac_error err;
    CHECK_OK(st_read_f32(out, name, 0, NULL, full, &err), &err);
    CHECK_OK(st_read_f32(gold, gold_name, 0, NULL, y, &err), &err);
    size_t n = 0; /* the reduced golden set holds large tensors sampled */
    float *x = gr_pick(gold, gold_name, full, a->ndim, a->shape, &n);
    CHECK(x && n == (size_t)b->numel, "%s: %lld elements do not fit golden %lld", name, (long long)a->numel,
          (long long)b->numel);
    if (x && n == (size_t)b->numel) {
        double e = abs_tol ? tu_max_abs(x, y, n) : tu_rel_err(x, y, n);
        printf("  %-28s %s %.3g%s\n", name, abs_tol ? "max abs" : "rel", e, gr_sampled(gold, gold_name) ? " (sampled)" : "");
        CHECK(e <= tol, "%s: error %g > %g", name, e, tol);
    }
    free(x), free(y), free(full);
}

int main(void) {
    char out[16384], cmd[4096];
    /* usage errors do not need the golden files */
    CHECK(tu_run(AACLIP_EXE " dump --clip x", out, sizeof out) == 2 && strstr(out, "required"),
          "missing options: %s", out);
    CHECK(tu_run(AACLIP_EXE " dump --domain space", out, sizeof out) == 2 && strstr(out, "--domain"),
          "bad domain: %s", out);
    CHECK(tu_run(AACLIP_EXE " nonsense", out, sizeof out) == 2 && strstr(out, "nonsense"), "bad command");
    CHECK(tu_run(AACLIP_EXE " dump --help", out, sizeof out) == 0 && strstr(out, "map.<Domain>.sum"),
          "help: %s", out);

    const char *gold_path = tu_golden("golden.safetensors");
    const char *clip = tu_golden("clip_openclip.safetensors");
    const char *ad = tu_golden("aaclip_adapters.safetensors");
    char dir[] = "/tmp/aac_test_dump_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char in_raw[300], in_float[300], res[300], res_i[300];
    snprintf(in_raw, sizeof in_raw, "%s/raw.safetensors", dir);
    snprintf(in_float, sizeof in_float, "%s/float.safetensors", dir);
    snprintf(res, sizeof res, "%s/out.safetensors", dir);
    snprintf(res_i, sizeof res_i, "%s/out_ind.safetensors", dir);

    /* an input holding only the 8-bit slices: dump must preprocess them itself */
    aac_error err;
    st_file *gold;
    CHECK_OK(st_open(gold_path, &gold, &err), &err);
    const st_tensor *raw = st_find(gold, "image.raw_u8");
    st_writer *w = st_writer_new();
    CHECK_OK(st_writer_add(w, "image.raw_u8", ST_U8, raw->ndim, raw->shape, raw->data, &err), &err);
    CHECK_OK(st_writer_save(w, in_raw, &err), &err);
    st_writer_free(w);

    snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --clip %s --adapters %s --input %s --output %s",
             clip, ad, in_raw, res);
    int rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 0, "dump failed (%d): %s", rc, out);
    st_file *o;
    CHECK_OK(st_open(res, &o, &err), &err);
    compare(o, gold, "image.input", "image.input", 1, 1e-6);
    compare(o, gold, "pos_embed_resized", "pos_embed_resized", 0, 1e-4);
    compare(o, gold, "text.anchors", "text.scan.adapted", 0, 1e-4);
    for (int k = 0; k < 4; k++) {
        char n[64], m[64];
        snprintf(n, sizeof n, "visual.seg_tokens.%d", k);
        compare(o, gold, n, n, 0, 1e-4);
        snprintf(m, sizeof m, "map.Medical.level%d", k);
        compare(o, gold, m, m, 1, 1e-3);
    }
    compare(o, gold, "visual.det_token", "visual.det_token", 0, 1e-4);
    compare(o, gold, "map.Medical.sum", "map.Medical.sum", 1, 1e-3);
    compare(o, gold, "score.det", "score.det", 1, 1e-5);
    compare(o, gold, "plain.cls_embed", "plain.cls_embed", 0, 1e-4);
    /* a float image.input as input: the golden one when whole, else the one just checked */
    const char *float_input = gold_path;
    if (gr_sampled(gold, "image.input")) {
        const st_tensor *t = st_find(o, "image.input");
        w = st_writer_new();
        CHECK_OK(st_writer_add(w, "image.input", t->dtype, t->ndim, t->shape, t->data, &err), &err);
        CHECK_OK(st_writer_save(w, in_float, &err), &err);
        st_writer_free(w);
        float_input = in_float;
    }
    st_close(o);

    /* float image.input as input, industrial domain, 1 thread */
    snprintf(cmd, sizeof cmd,
             AACLIP_EXE " dump --clip %s --adapters %s --input %s --output %s --domain industrial"
                        " --threads 1",
             clip, ad, float_input, res_i);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 0, "dump (industrial) failed (%d): %s", rc, out);
    CHECK_OK(st_open(res_i, &o, &err), &err);
    CHECK(!st_find(o, "image.input"), "image.input written although it was given");
    compare(o, gold, "map.Industrial.sum", "map.Industrial.sum", 1, 1e-3);
    st_close(o);

    /* through the oneDNN plugin at bf16 when it was built: --backend / --precision end to end,
     * judged by the reduced-precision rule (1e-2 relative) */
    char plugin[512];
    snprintf(plugin, sizeof plugin, "%s/lib/aaclip/plugins/onednn/aaclip_onednn.so", AACLIP_BINARY_DIR);
    if (access(plugin, F_OK) == 0) {
        snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --clip %s --adapters %s --input %s --output %s --backend onednn"
                                  " --precision bf16", clip, ad, float_input, res_i);
        rc = tu_run(cmd, out, sizeof out);
        if (rc != 0 && strstr(out, "backend 'onednn' (bf16)")) { /* no bf16 matmul on this CPU */
            printf("  onednn bf16 not available on this CPU: %s\n", out);
        } else {
            CHECK(rc == 0, "dump --backend onednn --precision bf16 failed (%d): %s", rc, out);
            CHECK_OK(st_open(res_i, &o, &err), &err);
            for (int k = 0; k < 4; k++) {
                char n[64];
                snprintf(n, sizeof n, "visual.seg_tokens.%d", k);
                compare(o, gold, n, n, 0, 1e-2);
            }
            compare(o, gold, "map.Medical.sum", "map.Medical.sum", 0, 1e-2);
            st_close(o);
        }
    } else {
        printf("  onednn plugin not built: bf16 dump skipped\n");
    }

    /* input errors: exit 1, message names the file */
    snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --clip %s --adapters %s --input %s --output %s/x",
             clip, ad, clip, dir);
    CHECK(tu_run(cmd, out, sizeof out) == 1 && strstr(out, "image.raw_u8") && strstr(out, clip),
          "input without images: %s", out);
    snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --clip %s --adapters %s --input %s --output %s/x",
             ad, ad, in_raw, dir);
    CHECK(tu_run(cmd, out, sizeof out) == 1 && strstr(out, ad), "adapters as clip: %s", out);
    CHECK(access(res, F_OK) == 0, "output missing");

    st_close(gold);
    unlink(in_raw), unlink(in_float), unlink(res), unlink(res_i), rmdir(dir);
    return tu_finish("test_cli_dump");
}
