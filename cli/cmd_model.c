/* cmd_model.c - `aaclip model import|info`: building model bundles from the weights users
 * download (Hugging Face folders, OpenAI/open_clip .pt, AA-CLIP checkpoints) and showing them. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void model_help(void) {
    printf("usage: aaclip model import SRC... -o BUNDLE [--tokenizer FILE] [--epoch N] [--force]\n"
           "                   [--vision-head-width N] [--text-heads N] [--image-size S]\n"
           "                   [--activation gelu|quick_gelu]\n"
           "       aaclip model info BUNDLE [--json]\n"
           "\n"
           "import builds a model bundle (a folder: model.json, clip.safetensors,\n"
           "adapters.safetensors, tokenizer) from any mix of:\n"
           "  - a Hugging Face CLIPModel folder (config.json + model.safetensors, sharded\n"
           "    safetensors + index, or pytorch_model.bin; its vocab.json + merges.txt)\n"
           "  - .safetensors with open_clip, Hugging Face or aaclip adapter names\n"
           "  - .pt/.pth/.bin PyTorch zips: state dicts, TorchScript (OpenAI's ViT-L-14-336px.pt,\n"
           "    fp16), AA-CLIP's text_adapter.pth and image_adapter_<N>.pth\n"
           "  - an AA-CLIP checkpoint folder (text_adapter.pth + image_adapter_<N>.pth)\n"
           "  - another bundle\n"
           "with exactly one CLIP backbone. Nothing is executed from the pickles.\n"
           "\n"
           "  -o, --output BUNDLE      the bundle folder to create (built aside, then renamed)\n"
           "  --force                  replace an existing bundle\n"
           "  --tokenizer FILE         bpe_simple_vocab_16e6.txt.gz, or vocab.json with merges.txt\n"
           "                           beside it (default: the source's, else the shipped one)\n"
           "  --epoch N                checkpoint folders: use image_adapter_N.pth (default: the\n"
           "                           highest epoch present)\n"
           "  --vision-head-width N    for sources that do not state the heads (.pt files):\n"
           "  --text-heads N           default head width 64 (OpenAI CLIP); the tiny test model\n"
           "                           needs --vision-head-width 16 --text-heads 2\n"
           "  --image-size S           run size (default: stated by the source, else 518)\n"
           "  --activation A           gelu or quick_gelu (default: gelu when AA-CLIP adapters are\n"
           "                           in the bundle, as AA-CLIP runs CLIP; else the source's,\n"
           "                           else quick_gelu)\n"
           "\n"
           "info prints the bundle's configuration, tokenizer, sources and where each setting\n"
           "came from; --json prints model.json itself.\n");
}

static const char *act_name(aac_activation a) { return a == AAC_ACT_QUICK_GELU ? "quick_gelu" : "gelu"; }

/* Human-readable summary of a bundle. */
static int print_info(const char *dir, int as_json) {
    aac_error err = {0};
    aac_bundle *b;
    if (aac_bundle_open(dir, &b, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        return 1;
    }
    if (as_json) {
        fputs(aac_bundle_json(b), stdout);
        aac_bundle_free(b);
        return 0;
    }
    const aac_config *c = aac_bundle_config(b);
    json_t *root = json_loads(aac_bundle_json(b), 0, NULL);
    const char *producer = json_string_value(json_object_get(root, "producer"));
    printf("bundle      %s (%s version %lld, %s)\n", dir, AAC_BUNDLE_FORMAT,
           (long long)json_integer_value(json_object_get(root, "version")), producer ? producer : "?");
    printf("vision      width %d, %d blocks, %d heads of %d, patch %d, native %d (grid %d)\n", c->v_width,
           c->v_layers, c->v_width / c->v_head_width, c->v_head_width, c->patch, c->native, c->native / c->patch);
    printf("text        width %d, %d blocks, %d heads, vocab %d, context %d\n", c->t_width, c->t_layers,
           c->t_heads, c->vocab, c->context);
    printf("embedding   %d\n", c->embed_dim);
    printf("run size    %d (grid %d)\n", c->img, c->img / c->patch);
    printf("activation  %s\n", act_name(c->activation));
    if (aac_bundle_has_adapters(b)) {
        printf("adapters    text %d + anchor projection, image %d, levels", c->text_adapt_until,
               c->image_adapt_until);
        for (int k = 0; k < c->n_levels; k++) printf(" %d", c->levels[k]);
        printf(", weights %g/%g, relu %s\n", c->text_adapt_weight, c->image_adapt_weight, c->relu ? "on" : "off");
    } else {
        printf("adapters    none (plain CLIP)\n");
    }
    json_t *tok = json_object_get(json_object_get(root, "files"), "tokenizer");
    if (json_object_get(tok, "bpe")) printf("tokenizer   %s\n", json_string_value(json_object_get(tok, "bpe")));
    else printf("tokenizer   vocab.json + merges.txt\n");
    printf("domain      %s (default); %zu datasets with class descriptions\n",
           aac_bundle_default_domain(b) == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical",
           json_array_size(json_object_get(root, "datasets")));
    size_t i;
    json_t *v;
    printf("sources\n");
    json_array_foreach(json_object_get(root, "sources"), i, v) {
        json_t *ep = json_object_get(v, "epoch");
        printf("  %s  (%s; %s", json_string_value(json_object_get(v, "path")),
               json_string_value(json_object_get(v, "kind")), json_string_value(json_object_get(v, "roles")));
        if (json_is_integer(ep)) printf("; epoch %lld", (long long)json_integer_value(ep));
        printf(")\n");
    }
    const char *key;
    printf("settled\n");
    json_object_foreach(json_object_get(root, "settled"), key, v)
        printf("  %-13s %s\n", key, json_string_value(v) ? json_string_value(v) : "?");
    json_decref(root);
    aac_bundle_free(b);
    return 0;
}

static int cmd_import(int argc, char **argv) {
    aac_import_params p = aac_import_default_params();
    const char *out = NULL;
    const char **srcs = calloc((size_t)argc, sizeof *srcs);
    int n = 0, v;
    if (!srcs) return fprintf(stderr, "aaclip: out of memory\n"), 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            model_help();
            free(srcs);
            return 0;
        } else if (!strcmp(a, "--force")) {
            p.force = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--tokenizer") ||
                   !strcmp(a, "--activation")) {
            if (!val) goto missing;
            i++;
            if (a[1] == 'o' || !strcmp(a, "--output")) out = val;
            else if (!strcmp(a, "--tokenizer")) p.tokenizer = val;
            else if (!strcmp(val, "gelu")) p.activation = AAC_ACT_GELU;
            else if (!strcmp(val, "quick_gelu")) p.activation = AAC_ACT_QUICK_GELU;
            else {
                fprintf(stderr, "aaclip: --activation expects gelu or quick_gelu, got '%s'\n", val);
                goto usage;
            }
        } else if (!strcmp(a, "--epoch") || !strcmp(a, "--vision-head-width") || !strcmp(a, "--text-heads") ||
                   !strcmp(a, "--image-size")) {
            if (parse_int(a, val, !strcmp(a, "--epoch") ? 0 : 1, 1 << 20, &v)) goto usage;
            i++;
            if (!strcmp(a, "--epoch")) p.epoch = v;
            else if (!strcmp(a, "--vision-head-width")) p.vision_head_width = v;
            else if (!strcmp(a, "--text-heads")) p.text_heads = v;
            else p.image_size = v;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "aaclip model import: unknown option '%s' (see --help)\n", a);
            goto usage;
        } else {
            srcs[n++] = a;
        }
    }
    if (!n || !out) {
        fprintf(stderr, "aaclip model import: give at least one SRC and -o BUNDLE (see --help)\n");
        goto usage;
    }
    p.default_tokenizer = default_tokenizer_path();
    aac_error err = {0};
    if (aac_import_bundle(srcs, n, &p, out, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        free(srcs);
        return 1;
    }
    free(srcs);
    fprintf(stderr, "aaclip: wrote model bundle %s\n", out);
    return print_info(out, 0);
missing:
    fprintf(stderr, "aaclip model import: %s needs a value\n", argv[argc - 1]);
usage:
    free(srcs);
    return 2;
}

static int cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            model_help();
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            as_json = 1;
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "aaclip model info: unexpected '%s' (see --help)\n", argv[i]);
            return 2;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) {
        fprintf(stderr, "aaclip model info: give the BUNDLE folder\n");
        return 2;
    }
    return print_info(dir, as_json);
}

int cmd_model(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "aaclip model: give a subcommand: import or info (see --help)\n");
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        model_help();
        return 0;
    }
    if (!strcmp(sub, "import")) return cmd_import(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return cmd_info(argc - 1, argv + 1);
    fprintf(stderr, "aaclip model: unknown subcommand '%s' (import or info)\n", sub);
    return 2;
}
