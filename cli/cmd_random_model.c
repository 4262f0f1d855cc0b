/* cmd_random_model.c - aaclip random-model: a CLIP-shaped backbone with weights drawn from a
 * seed (aac_model_random), as a plain bundle (no adapters) to train adapters on: the demo
 * model's backbone, and small models for tests and benchmarks. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip.h"
#include "cli.h"
#include "cmd_train.h"

/* "demo": the shipped demo model's backbone (small enough for git and for training on two
 * cores in minutes); "tiny": the golden test model's shape; the real shapes for benchmarks. */
static int random_config(const char *name, aac_config *c) {
    memset(c, 0, sizeof *c);
    if (!strcmp(name, "demo"))
        *c = (aac_config){.embed_dim = 32, .v_width = 64, .v_head_width = 16, .v_layers = 8, .patch = 16,
                          .native = 224, .t_width = 16, .t_heads = 1, .t_layers = 4, .img = 224};
    else if (!strcmp(name, "test"))
        *c = (aac_config){.embed_dim = 16, .v_width = 32, .v_head_width = 16, .v_layers = 4, .patch = 16,
                          .native = 112, .t_width = 16, .t_heads = 1, .t_layers = 3, .img = 112};
    else if (!strcmp(name, "tiny"))
        *c = (aac_config){.embed_dim = 24, .v_width = 48, .v_head_width = 16, .v_layers = 24, .patch = 14,
                          .native = 336, .t_width = 32, .t_heads = 2, .t_layers = 12, .img = 518};
    else if (!strcmp(name, "vit-l-14-336"))
        *c = (aac_config){.embed_dim = 768, .v_width = 1024, .v_head_width = 64, .v_layers = 24, .patch = 14,
                          .native = 336, .t_width = 768, .t_heads = 12, .t_layers = 12, .img = 518};
    else
        return -1;
    c->n_levels = 4; /* evenly spaced, as AA-CLIP's 6/12/18/24 of 24 */
    for (int k = 0; k < 4; k++) c->levels[k] = c->v_layers * (k + 1) / 4;
    return 0;
}

static void random_help(void) {
    printf("usage: aaclip random-model -o BUNDLE [--config demo|test|tiny|vit-l-14-336] [--seed N]\n"
           "                           [--image-size S] [--force]\n"
           "\n"
           "Writes a model bundle whose CLIP backbone has random weights drawn from the seed\n"
           "(deterministic), without adapters: train them with aaclip train. Random weights know\n"
           "nothing about images; the bundle exists to exercise the pipeline.\n"
           "  demo          E 32, vision width 64 (4 heads), 8 blocks, patch 16, 224 px (grid 14),\n"
           "                text width 16 (1 head), 4 blocks; levels 2/4/6/8 (the demo model's\n"
           "                backbone, which runs it with --image-size 448: grid 28)\n"
           "  test          E 16, vision width 32, 4 blocks, patch 16, 112 px; text 16 x 3 blocks\n"
           "  tiny          the golden test model's shape (518 px)\n"
           "  vit-l-14-336  OpenAI ViT-L/14-336 at 518 px\n");
}

int cmd_random_model(int argc, char **argv) {
    const char *out = NULL, *cfg_name = "demo";
    int seed = 1, size = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            random_help();
            return 0;
        } else if (!strcmp(a, "--force")) force = 1;
        else if (v && (!strcmp(a, "-o") || !strcmp(a, "--output"))) out = argv[++i];
        else if (v && !strcmp(a, "--config")) cfg_name = argv[++i];
        else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &seed)) return 2;
            i++;
        } else if (!strcmp(a, "--image-size")) {
            if (parse_int(a, v, 14, 4096, &size)) return 2;
            i++;
        } else {
            fprintf(stderr, "aaclip random-model: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
    }
    aac_config c;
    if (!out || random_config(cfg_name, &c)) {
        fprintf(stderr, "aaclip random-model: -o BUNDLE is required; --config is demo, test, tiny or vit-l-14-336\n");
        return 2;
    }
    if (size) c.img = size;
    aac_error err = {0};
    aac_model *m = NULL;
    char clip[4200];
    snprintf(clip, sizeof clip, "%s.clip.%d.safetensors", out, (int)getpid());
    aac_import_params ip = aac_import_default_params();
    ip.default_tokenizer = default_tokenizer_path();
    ip.force = force;
    ip.vision_head_width = c.v_head_width;
    ip.text_heads = c.t_heads;
    ip.image_size = c.img;
    ip.activation = AAC_ACT_GELU;
    const char *src[1] = {clip};
    int rc = 1;
    if (aac_model_random(&c, (uint64_t)seed, &m, &err) || aac_model_save(m, clip, NULL, &err) ||
        aac_import_bundle(src, 1, &ip, out, &err))
        fprintf(stderr, "aaclip: %s\n", err.message);
    else {
        printf("random %s backbone (seed %d) in %s\n", cfg_name, seed, out);
        rc = 0;
    }
    unlink(clip);
    aac_model_free(m);
    return rc;
}
