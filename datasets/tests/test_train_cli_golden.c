/* test_train_cli_golden.c - the golden tiny model as a bundle, the golden slices as PNG + JSON
 * lines, one `aaclip train` step of each stage (--no-augment --no-shuffle, stage 1 with
 * --surgery-attention batch) whose --dump equals the golden train1.* / train2.* tensors: the same
 * names, and values within 1e-3 (relative, per tensor). */
#define _POSIX_C_SOURCE 200809L
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_data.h"
#include "safetensors.h"
#include "testutil.h"
#include "cli_testutil.h"

static double rel_err_tensor(st_file *a, st_file *g, const char *name) {
    const st_tensor *ta = st_find(a, name), *tg = st_find(g, name);
    if (!ta || !tg || ta->numel != tg->numel) return 1e9;
    float *x = malloc(sizeof(float) * ta->numel), *y = malloc(sizeof(float) * ta->numel);
    aac_error err;
    double e = 1e9;
    if (!st_read_f32(a, name, 0, NULL, x, &err) && !st_read_f32(g, name, 0, NULL, y, &err))
        e = tu_rel_err(x, y, (size_t)ta->numel);
    free(x), free(y);
    return e;
}

static void test_golden(void) {
    /* ../shared/golden/tiny, else the reduced set in the repository (the slices, masks and every
     * training tensor are whole there) */
    const char *gold_path = tu_golden("golden.safetensors");
    const char *clip = tu_golden("clip_openclip.safetensors");
    const char *ad = tu_golden("aaclip_adapters.safetensors");
    const char *bpe = TU_BPE_PATH;
    printf("golden step through the command line\n");
    aac_error err;
    aac_import_params ip = aac_import_default_params();
    ip.tokenizer = bpe;
    ip.vision_head_width = 16;
    ip.text_heads = 2;
    const char *src[2] = {clip, ad};
    CHECK_OK(aac_import_bundle(src, 2, &ip, P("gold_bundle"), &err), &err);
    st_file *g;
    CHECK_OK(st_open(gold_path, &g, &err), &err);
    const st_tensor *raw = st_find(g, "image.raw_u8"), *mraw = st_find(g, "image.mask_u8");
    const int H = (int)raw->shape[1], W = (int)raw->shape[2];
    int32_t lab[2];
    memcpy(lab, st_find(g, "train2.label")->data, sizeof lab);
    FILE *js = fopen(P("golden.jsonl"), "w");
    for (int b = 0; b < 2; b++) {
        aac_image im = {W, H, 1, (uint8_t *)raw->data + (size_t)b * W * H};
        aac_image mk = {W, H, 1, (uint8_t *)mraw->data + (size_t)b * W * H};
        char name[64], mname[64];
        snprintf(name, sizeof name, "g%d.png", b);
        snprintf(mname, sizeof mname, "gm%d.png", b);
        CHECK_OK(aac_image_write_png(P(name), &im, &err), &err);
        CHECK_OK(aac_image_write_png(P(mname), &mk, &err), &err);
        /* class "Brain": the built-in table gives the description "scan" */
        fprintf(js, "{\"image_path\": \"%s\", \"label\": %d, \"class_name\": \"Brain\", \"mask_path\": \"%s\"}\n", name,
                lab[b], mname);
    }
    fclose(js);
    const char *common = "--no-augment --no-shuffle --batch-size 2 --max-steps 1 --threads 2";
    char a[4096];
    snprintf(a, sizeof a, "train --model '%s' --data '%s' -o '%s' --stage 2 %s --dump '%s'", P("gold_bundle"),
             P("golden.jsonl"), P("gout2"), common, P("d2.safetensors"));
    CHECK(run(a) == 0, "golden stage 2");
    snprintf(a, sizeof a, "train --model '%s' --data '%s' -o '%s' --stage 1 --surgery-attention batch %s --dump '%s'",
             P("gold_bundle"), P("golden.jsonl"), P("gout1"), common, P("d1.safetensors"));
    CHECK(run(a) == 0, "golden stage 1");
    st_file *d[2] = {NULL, NULL};
    CHECK_OK(st_open(P("d1.safetensors"), &d[0], &err), &err);
    CHECK_OK(st_open(P("d2.safetensors"), &d[1], &err), &err);
    /* every dumped tensor has its golden twin within 1e-3 ... */
    int n_dump = 0;
    double worst = 0;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < st_count(d[k]); i++) {
            const char *name = st_at(d[k], i)->name;
            const double e = rel_err_tensor(d[k], g, name);
            if (e > worst) worst = e;
            CHECK(e <= 1e-3, "%s: relative error %g", name, e);
            n_dump++;
        }
    /* ... and every golden train tensor (but the label input) was dumped */
    int n_gold = 0;
    for (size_t i = 0; i < st_count(g); i++) {
        const char *name = st_at(g, i)->name;
        if ((strncmp(name, "train1.", 7) && strncmp(name, "train2.", 7)) || !strcmp(name, "train2.label")) continue;
        n_gold++;
        CHECK(st_find(d[name[5] == '1' ? 0 : 1], name) != NULL, "golden %s not dumped", name);
    }
    printf("  %d dumped tensors = %d golden train tensors; worst relative error %.3g\n", n_dump, n_gold, worst);
    CHECK(n_dump == n_gold, "same names");
    st_close(d[0]), st_close(d[1]);
    st_close(g);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/test_train_cli_golden_%d", AACLIP_BINARY_DIR, (int)getpid());
    mkdir(g_dir, 0755);
    test_golden();
    int rc = tu_finish("test_train_cli_golden");
    if (!rc) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    return rc;
}
