/* bench_train.c - seconds per training step of both AA-CLIP stages on a model with random
 * weights (aac_model_random): ViT-L/14-336 at 518, batch 2 by default.
 *   aaclip-bench-train [--config vit-l-14-336|tiny] [--size S] [--batch N] [--steps N]
 *                      [--stage 1|2|both] [--threads N] [--backend NAME|auto] [--precision f32|bf16]
 * The first stage-2 step includes the anchors (16 prompts through the text tower); reported
 * apart from the following steps. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "aaclip.h"
#include "aaclip_backend.h"
#include "aaclip_train.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int run_stage(aac_model *m, const aac_tokenizer *tok, int stage, int B, int steps) {
    const aac_config *c = aac_model_config(m);
    const size_t S = (size_t)c->img;
    float *img = malloc(sizeof(float) * B * 3 * S * S), *mask = calloc((size_t)B * S * S, sizeof(float));
    int *lab = calloc((size_t)B, sizeof(int));
    const char **desc = malloc(sizeof(char *) * B);
    if (!img || !mask || !lab || !desc) return 1;
    uint64_t r = 7;
    for (size_t i = 0; i < (size_t)B * 3 * S * S; i++) {
        r = r * 6364136223846793005ULL + 1;
        img[i] = (float)((r >> 40) / 16777216.0 * 4 - 2);
    }
    for (int b = 0; b < B; b++) {
        desc[b] = "scan";
        lab[b] = b == 0;
        if (b == 0)
            for (size_t y = S / 3; y < S / 2; y++)
                for (size_t x = S / 3; x < S / 2; x++) mask[y * S + x] = 1;
    }
    aac_train_params p = aac_train_default_params(stage);
    aac_trainer *t;
    aac_error err;
    if (aac_trainer_new(m, tok, &p, &t, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    aac_train_batch batch = {B, img, mask, lab, desc};
    for (int s = 0; s < steps; s++) {
        aac_train_stats st;
        double t0 = now();
        if (aac_train_step(t, &batch, &st, &err)) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("stage %d step %d: %.2f s (batch %d, loss %.4f, peak RSS %.0f MiB)\n", stage, s + 1, now() - t0, B,
               st.loss, ru.ru_maxrss / 1024.0);
        fflush(stdout);
    }
    aac_trainer_free(t);
    free(img), free(mask), free(lab), free(desc);
    return 0;
}

int main(int argc, char **argv) {
    aac_config c = {.embed_dim = 768, .v_width = 1024, .v_head_width = 64, .v_layers = 24, .patch = 14,
                    .native = 336, .t_width = 768, .t_heads = 12, .t_layers = 12, .img = 518, .n_levels = 4,
                    .levels = {6, 12, 18, 24}};
    int B = 2, steps = 2, threads = 0;
    const char *stage = "2", *backend = "openblas";
    aac_precision prec = AAC_PRECISION_F32;
    char note[512];
    aac_blas_kernels_fix(argv, note, sizeof note); /* the kernels aaclip itself would run */
    if (note[0]) fprintf(stderr, "%s\n", note);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--config") && !strcmp(argv[i + 1], "tiny"))
            c = (aac_config){.embed_dim = 24, .v_width = 48, .v_head_width = 16, .v_layers = 24, .patch = 14,
                             .native = 336, .t_width = 32, .t_heads = 2, .t_layers = 12, .img = 518, .n_levels = 4,
                             .levels = {6, 12, 18, 24}};
        else if (!strcmp(argv[i], "--size")) c.img = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) B = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stage")) stage = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backend")) backend = argv[i + 1];
        else if (!strcmp(argv[i], "--precision") && aac_precision_parse(argv[i + 1], &prec)) return 2;
    }
    if (threads > 0) omp_set_num_threads(threads);
    aac_error err;
    aac_model *m;
    aac_tokenizer *tok;
    double t0 = now();
    char bpe[4096]; /* the shipped tokenizer, found from this program's place */
    if (aac_model_random(&c, 1, &m, &err) || aac_model_set_backend(m, NULL, backend, prec, &err) ||
        aac_data_path("bpe_simple_vocab_16e6.txt.gz", bpe, sizeof bpe, &err) || aac_tokenizer_open_bpe(bpe, &tok, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    printf("model: W_v %d, %d blocks, patch %d, run size %d (grid %d), %d threads; random weights in %.1f s\n",
           c.v_width, c.v_layers, c.patch, c.img, aac_model_grid(m), omp_get_max_threads(), now() - t0);
    printf("backend: %s\n", aac_model_backend(m));
    int rc = 0;
    if (strcmp(stage, "1")) rc |= run_stage(m, tok, 2, B, steps);
    if (strcmp(stage, "2")) rc |= run_stage(m, tok, 1, B, steps);
    aac_tokenizer_free(tok);
    aac_model_free(m);
    return rc;
}
