/* options.c - option parsing shared by the subcommands. */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Files of aaclip's installation (share/aaclip beside the program, or $AACLIP_DATA_DIR; the
 * build tree has the same layout), found at run time: nothing of the build is compiled in. */
static const char *data_path(const char *name, char *buf, size_t cap) {
    return aac_data_path(name, buf, cap, NULL) == AAC_OK ? buf : NULL;
}
const char *default_tokenizer_path(void) {
    static char path[4096];
    return data_path("bpe_simple_vocab_16e6.txt.gz", path, sizeof path);
}
const char *default_demo_model_path(void) {
    static char path[4096];
    return data_path("demo-model", path, sizeof path);
}

int model_opts_overridden(const model_opts *o) {
    return o->tokenizer || o->params.image_size || o->params.vision_head_width || o->params.text_heads ||
           o->params.activation != AAC_ACT_DEFAULT;
}

int parse_int(const char *opt, const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "aaclip: %s expects an integer in %d..%d, got '%s'\n", opt, lo, hi,
                s ? s : "(nothing)");
        return -1;
    }
    *out = (int)v;
    return 0;
}

void set_threads(int n) {
    if (n > 0) omp_set_num_threads(n); /* the model splits work itself; OpenBLAS runs 1 thread */
}

int backend_opts_parse(aac_model_params *p, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (strcmp(a, "--backend") && strcmp(a, "--precision")) return 0;
    if (!v) {
        fprintf(stderr, "aaclip: %s needs a value\n", a);
        return -1;
    }
    if (!strcmp(a, "--backend")) {
        p->backend = v;
    } else if (aac_precision_parse(v, &p->precision)) {
        fprintf(stderr, "aaclip: --precision expects f32 or bf16, got '%s'\n", v);
        return -1;
    }
    (*i)++;
    return 1;
}

void backend_opts_help(void) {
    printf("  --backend NAME|auto      compute backend: openblas (built-in, the reference), a\n"
           "                           plugin (aaclip plugins lists them), or auto (default: the\n"
           "                           fastest exact enough for --precision, timed on the model)\n"
           "  --precision f32|bf16     precision of the weight products (default f32); bf16 needs\n"
           "                           a backend with bf16 products (onednn)\n");
}

int model_opts_parse(model_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    int n;
    const int b = backend_opts_parse(&o->params, argc, argv, i);
    if (b) return b;
    if (!strcmp(a, "--clip") || !strcmp(a, "--adapters") || !strcmp(a, "--tokenizer") ||
        !strcmp(a, "--activation") || !strcmp(a, "--model")) {
        if (!v) {
            fprintf(stderr, "aaclip: %s needs a value\n", a);
            return -1;
        }
        if (!strcmp(a, "--clip")) o->clip = v;
        else if (!strcmp(a, "--model")) o->bundle = v;
        else if (!strcmp(a, "--adapters")) o->adapters = v;
        else if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(v, "gelu")) o->params.activation = AAC_ACT_GELU;
        else if (!strcmp(v, "quick_gelu")) o->params.activation = AAC_ACT_QUICK_GELU;
        else {
            fprintf(stderr, "aaclip: --activation expects gelu or quick_gelu, got '%s'\n", v);
            return -1;
        }
        (*i)++;
        return 1;
    }
    if (!strcmp(a, "--vision-head-width") || !strcmp(a, "--text-heads") ||
        !strcmp(a, "--image-size") || !strcmp(a, "--threads")) {
        if (parse_int(a, v, 1, 8192, &n)) return -1;
        if (!strcmp(a, "--vision-head-width")) o->params.vision_head_width = n;
        else if (!strcmp(a, "--text-heads")) o->params.text_heads = n;
        else if (!strcmp(a, "--image-size")) o->params.image_size = n;
        else o->params.n_threads = n;
        (*i)++;
        return 1;
    }
    return 0;
}

void model_opts_help(void) {
    printf("model options:\n"
           "  --model BUNDLE           model bundle folder (aaclip model import); instead of\n"
           "                           --clip/--adapters, its tokenizer unless --tokenizer\n"
           "  --clip FILE              CLIP backbone, safetensors (open_clip/OpenAI names)\n"
           "  --adapters FILE          AA-CLIP adapters, safetensors (text_adapter.*, image_adapter.*)\n"
           "  --tokenizer FILE         bpe_simple_vocab_16e6.txt.gz (default: the bundle's, else\n"
           "                           the copy shipped with aaclip)\n"
           "  --vision-head-width N    vision attention head width (default: metadata, else 64)\n"
           "  --text-heads N           text attention heads (default: metadata, else width/64)\n"
           "  --image-size S           run size in pixels (default: metadata, else 518)\n"
           "  --activation gelu|quick_gelu  MLP activation (default: metadata, else gelu)\n"
           "  --threads N              compute threads (default: all cores)\n");
    backend_opts_help();
}

int model_opts_check(const model_opts *o, const char *cmd, int need_adapters) {
    if (o->bundle && (o->clip || o->adapters)) {
        fprintf(stderr, "aaclip %s: --model excludes --clip and --adapters\n", cmd);
        return -1;
    }
    if (!o->bundle && (!o->clip || (need_adapters && !o->adapters))) {
        fprintf(stderr, "aaclip %s: give --model BUNDLE, or --clip%s\n", cmd,
                need_adapters ? " and --adapters" : "");
        return -1;
    }
    return 0;
}

int model_opts_open(const model_opts *o, aac_model **m, aac_tokenizer **tok) {
    aac_error err = {0};
    *m = NULL;
    if (tok) *tok = NULL;
    aac_status s;
    if (o->bundle)
        s = aac_model_open_bundle(o->bundle, &o->params, m, o->tokenizer ? NULL : tok, &err);
    else
        s = aac_model_open(o->clip, o->adapters, &o->params, m, &err);
    if (!s && tok && (!o->bundle || o->tokenizer)) {
        char path[4096]; /* the shipped tokenizer; the error says where it was looked for */
        if (!o->tokenizer) s = aac_data_path("bpe_simple_vocab_16e6.txt.gz", path, sizeof path, &err);
        if (!s) s = aac_tokenizer_open_bpe(o->tokenizer ? o->tokenizer : path, tok, &err);
    }
    if (s) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        aac_model_free(*m);
        *m = NULL;
        return -1;
    }
    return 0;
}
