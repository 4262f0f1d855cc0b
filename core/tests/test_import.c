/* test_import.c - importing weights into model bundles. First without ../shared: a small random
 * model saved canonically and re-written under Hugging Face names (one file and two shards),
 * checked bit for bit after import; bundle round trip; the activation and heads rules; every
 * malformed-source error names the file and the tensor or key. Then the golden sources
 * (state dict .pt, TorchScript fp16, HF folder, AA-CLIP .pth pair and checkpoint folder) of
 * ../shared/golden/tiny, else of the reduced copy in the repository. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aaclip.h"
#include "safetensors.h"
#include "testutil.h"
#include "st_testutil.h"

static const aac_config k_small = {.embed_dim = 16, .v_width = 32, .v_head_width = 16,
                                   .v_layers = 4, .patch = 8, .native = 32, .t_width = 32,
                                   .t_heads = 2, .t_layers = 2, .img = 48};

static char g_tmp[] = "/tmp/aac_test_import_XXXXXX";
static char g_tok[1024];

/* Paths stay valid for the whole run (the pool is never recycled). */
static const char *tmp_path(const char *rel) {
    static char buf[512][256];
    static int slot;
    if (slot == 512) {
        fprintf(stderr, "tmp_path: pool exhausted\n");
        exit(1);
    }
    char *p = buf[slot++];
    snprintf(p, sizeof buf[0], "%s/%s", g_tmp, rel);
    return p;
}

/* Removes a tree under the temp folder (files and one level of sub-folders are enough here). */
static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static int compare_files(const char *got_path, const char *ref_path, int half) {
    aac_error err;
    st_file *got, *ref;
    CHECK_OK(st_open(got_path, &got, &err), &err);
    CHECK_OK(st_open(ref_path, &ref, &err), &err);
    int n = 0, bad = 0;
    for (size_t i = 0; i < st_count(ref); i++) {
        const st_tensor *r = st_at(ref, i), *g = st_find(got, r->name);
        if (!strcmp(r->name, "logit_scale")) continue;
        if (!g) {
            CHECK(0, "%s: tensor %s missing (reference %s)", got_path, r->name, ref_path);
            continue;
        }
        int same_shape = g->ndim == r->ndim && g->dtype == ST_F32;
        for (int d = 0; same_shape && d < r->ndim; d++) same_shape = g->shape[d] == r->shape[d];
        CHECK(same_shape, "%s: %s has another shape or is not F32", got_path, r->name);
        if (!same_shape) continue;
        float *a = malloc(sizeof(float) * r->numel), *b = malloc(sizeof(float) * r->numel);
        CHECK_OK(st_read_f32(got, r->name, 0, NULL, a, &err), &err);
        CHECK_OK(st_read_f32(ref, r->name, 0, NULL, b, &err), &err);
        int64_t diff = 0;
        for (int64_t k = 0; k < r->numel; k++) {
            float want = half ? st_half_to_float(tu_f32_to_f16(b[k])) : b[k];
            if (memcmp(&a[k], &want, 4)) diff++;
        }
        if (diff && bad++ < 5) CHECK(0, "%s: %s differs in %lld of %lld values", got_path, r->name,
                                     (long long)diff, (long long)r->numel);
        free(a), free(b);
        n++;
    }
    CHECK(n > 0, "nothing compared in %s", ref_path);
    st_close(got), st_close(ref);
    return n;
}

/* ------------------------------------------------------------------ a Hugging Face copy */

static const struct { const char *canon, *hf; } k_top[] = {
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
    {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
    {"ln_final.weight", "text_model.final_layer_norm.weight"},
    {"ln_final.bias", "text_model.final_layer_norm.bias"},
};
static const struct { const char *canon, *hf; } k_blk[] = {
    {"ln_1.weight", "layer_norm1.weight"}, {"ln_1.bias", "layer_norm1.bias"},
    {"ln_2.weight", "layer_norm2.weight"}, {"ln_2.bias", "layer_norm2.bias"},
    {"attn.out_proj.weight", "self_attn.out_proj.weight"}, {"attn.out_proj.bias", "self_attn.out_proj.bias"},
    {"mlp.c_fc.weight", "mlp.fc1.weight"}, {"mlp.c_fc.bias", "mlp.fc1.bias"},
    {"mlp.c_proj.weight", "mlp.fc2.weight"}, {"mlp.c_proj.bias", "mlp.fc2.bias"},
};

typedef struct hf_writer {
    st_writer *w[2];
    int shards, next;
    const char *skip; /* an HF name to leave out */
    char index[65536];
    size_t ilen;
} hf_writer;

static void hf_add(hf_writer *h, const char *name, int nd, const int64_t *shape, const float *data) {
    if (h->skip && !strcmp(name, h->skip)) return;
    aac_error err;
    int s = h->shards > 1 ? h->next++ % 2 : 0;
    CHECK_OK(st_writer_add(h->w[s], name, ST_F32, nd, shape, data, &err), &err);
    h->ilen += (size_t)snprintf(h->index + h->ilen, sizeof h->index - h->ilen, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"",
                                h->ilen ? ", " : "", name, s + 1);
}

/* Writes dir/ as a Hugging Face CLIPModel folder holding the weights of canonical file clip. */
static void write_hf(const char *clip, const char *dir, const char *config_json, int shards, const char *skip) {
    aac_error err;
    st_file *f;
    CHECK_OK(st_open(clip, &f, &err), &err);
    mkdir(dir, 0755);
    hf_writer h = {.shards = shards, .skip = skip};
    h.w[0] = st_writer_new(), h.w[1] = st_writer_new();
    char name[256];
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        float *v = malloc(sizeof(float) * t->numel);
        CHECK_OK(st_read_f32(f, t->name, 0, NULL, v, &err), &err);
        const char *hf = NULL;
        for (size_t k = 0; k < sizeof k_top / sizeof k_top[0]; k++)
            if (!strcmp(t->name, k_top[k].canon)) hf = k_top[k].hf;
        int n, used = 0;
        const char *tower = NULL, *rest = NULL;
        if (sscanf(t->name, "visual.transformer.resblocks.%d.%n", &n, &used) == 1 && used)
            tower = "vision_model", rest = t->name + used;
        else if (sscanf(t->name, "transformer.resblocks.%d.%n", &n, &used) == 1 && used)
            tower = "text_model", rest = t->name + used;
        if (hf) {
            hf_add(&h, hf, t->ndim, t->shape, v);
        } else if (!strcmp(t->name, "visual.proj") || !strcmp(t->name, "text_projection")) {
            const int64_t r = t->shape[0], c = t->shape[1], sh[2] = {c, r};
            float *tr = malloc(sizeof(float) * t->numel);
            for (int64_t a = 0; a < r; a++)
                for (int64_t b = 0; b < c; b++) tr[b * r + a] = v[a * c + b];
            hf_add(&h, t->name[0] == 'v' ? "visual_projection.weight" : "text_projection.weight", 2, sh, tr);
            free(tr);
        } else if (tower && !strncmp(rest, "attn.in_proj_", 13)) {
            const int bias = !strcmp(rest, "attn.in_proj_bias"); /* q, k, v rows -> three tensors */
            const int64_t W = t->shape[0] / 3, sh[2] = {W, bias ? 0 : t->shape[1]};
            const size_t part = (size_t)(W * (bias ? 1 : t->shape[1]));
            const char *qkv[3] = {"q_proj", "k_proj", "v_proj"};
            for (int j = 0; j < 3; j++) {
                snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s.%s", tower, n, qkv[j],
                         bias ? "bias" : "weight");
                hf_add(&h, name, bias ? 1 : 2, sh, v + j * part);
            }
        } else if (tower) {
            for (size_t k = 0; k < sizeof k_blk / sizeof k_blk[0]; k++)
                if (!strcmp(rest, k_blk[k].canon)) {
                    snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", tower, n, k_blk[k].hf);
                    hf_add(&h, name, t->ndim, t->shape, v);
                }
        } else {
            hf_add(&h, t->name, t->ndim, t->shape, v); /* logit_scale */
        }
        free(v);
    }
    /* older transformers keep an integer position_ids buffer: must be ignored */
    int64_t sh[2] = {1, 5}, idv[5] = {0, 1, 2, 3, 4};
    CHECK_OK(st_writer_add(h.w[0], "vision_model.embeddings.position_ids", ST_I64, 2, sh, idv, &err), &err);
    char path[1024];
    if (shards > 1) {
        for (int s = 0; s < 2; s++) {
            snprintf(path, sizeof path, "%s/model-0000%d-of-00002.safetensors", dir, s + 1);
            CHECK_OK(st_writer_save(h.w[s], path, &err), &err);
        }
        char *idx = malloc(sizeof h.index + 256);
        snprintf(idx, sizeof h.index + 256, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {%s}}", h.index);
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        write_text(path, idx);
        free(idx);
    } else {
        CHECK_OK(st_writer_set_metadata(h.w[0], "format", "pt", &err), &err);
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        CHECK_OK(st_writer_save(h.w[0], path, &err), &err);
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, config_json);
    st_writer_free(h.w[0]), st_writer_free(h.w[1]);
    st_close(f);
}

static const char *k_hf_config =
    "{\"architectures\": [\"CLIPModel\"], \"model_type\": \"clip\", \"projection_dim\": 16,\n"
    " \"text_config\": {\"hidden_size\": 32, \"intermediate_size\": 128, \"num_attention_heads\": 2,\n"
    "   \"num_hidden_layers\": 2, \"max_position_embeddings\": 77, \"vocab_size\": 49408, \"hidden_act\": \"quick_gelu\"},\n"
    " \"vision_config\": {\"hidden_size\": 32, \"intermediate_size\": 128, \"num_attention_heads\": 2,\n"
    "   \"num_hidden_layers\": 4, \"image_size\": 32, \"patch_size\": 8, \"hidden_act\": \"quick_gelu\"}}\n";

/* Imports sources into tmp/<out>; returns the status and leaves the message in err. */
static aac_status import(const char **srcs, int n, const aac_import_params *p, const char *out, aac_error *err) {
    aac_import_params q = p ? *p : aac_import_default_params();
    if (!q.default_tokenizer) q.default_tokenizer = g_tok;
    return aac_import_bundle(srcs, n, &q, tmp_path(out), err);
}

static void expect_fail(aac_status s, const aac_error *err, aac_status code, const char *a, const char *b,
                        const char *what) {
    CHECK(s == code, "%s: status %s, expected %s (%s)", what, aac_status_name(s), aac_status_name(code),
          err->message);
    CHECK(!a || strstr(err->message, a), "%s: message lacks '%s': %s", what, a, err->message);
    CHECK(!b || strstr(err->message, b), "%s: message lacks '%s': %s", what, b, err->message);
    printf("  %-32s -> %s\n", what, err->message);
}

/* Runs the adapted and plain towers; returns a checksum-free copy of the outputs. */
static void run_model(aac_model *m, float *seg, float *cls, float *score) {
    const aac_config *c = aac_model_config(m);
    const int S = c->img, G = aac_model_grid(m), E = c->embed_dim;
    float *img = malloc(sizeof(float) * 3 * S * S), *sum = malloc(sizeof(float) * S * S);
    for (int i = 0; i < 3 * S * S; i++) img[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    float T[64];
    for (int e = 0; e < 2 * E; e++) T[e] = (e % 3 ? 0.2f : -0.1f);
    aac_vision_out v = {.det_token = cls + E};
    for (int k = 0; k < c->n_levels; k++) v.seg_tokens[k] = seg + (size_t)k * G * G * E;
    aac_error err;
    CHECK_OK(aac_encode_image(m, img, 1, &v, &err), &err);
    CHECK_OK(aac_anomaly_maps(m, &v, T, AAC_DOMAIN_MEDICAL, NULL, sum, score, &err), &err);
    aac_vision_out p = {.cls_embed = cls};
    CHECK_OK(aac_encode_image(m, img, 0, &p, &err), &err);
    free(img), free(sum);
}

static void self_contained(void) {
    aac_error err;
    aac_model *m;
    CHECK_OK(aac_model_random(&k_small, 7, &m, &err), &err);
    const char *clip = tmp_path("clip.safetensors"), *ad = tmp_path("adapters.safetensors");
    CHECK_OK(aac_model_save(m, clip, ad, &err), &err);

    /* canonical safetensors -> bundle: bit-exact, and the bundle runs exactly like the files */
    const char *s1[] = {clip, ad};
    CHECK_OK(import(s1, 2, NULL, "canon", &err), &err);
    compare_files(tmp_path("canon/clip.safetensors"), clip, 0);
    compare_files(tmp_path("canon/adapters.safetensors"), ad, 0);
    aac_model *mb;
    aac_tokenizer *tok;
    CHECK_OK(aac_model_open_bundle(tmp_path("canon"), NULL, &mb, &tok, &err), &err);
    CHECK(tok != NULL, "bundle tokenizer");
    const aac_config *cb = aac_model_config(mb);
    CHECK(cb->v_head_width == 16 && cb->t_heads == 2 && cb->img == 48 && cb->activation == AAC_ACT_GELU &&
              cb->n_levels == 4 && cb->levels[3] == 4 && cb->text_adapt_until == 2,
          "bundle config: hw %d th %d img %d act %d", cb->v_head_width, cb->t_heads, cb->img, cb->activation);
    const size_t NE = 4 * 36 * 16;
    float *seg_a = calloc(NE, 4), *seg_b = calloc(NE, 4), cls_a[32], cls_b[32], sa, sb;
    run_model(m, seg_a, cls_a, &sa);
    run_model(mb, seg_b, cls_b, &sb);
    CHECK(sa == sb && !memcmp(seg_a, seg_b, NE * 4) && !memcmp(cls_a, cls_b, sizeof cls_a),
          "bundle model differs from the original");
    int32_t ids[AAC_CONTEXT_LENGTH];
    CHECK_OK(aac_tokenizer_encode(tok, "a photo", ids, &err), &err);
    CHECK(ids[0] == 49406, "tokenizer of the bundle");
    aac_tokenizer_free(tok);
    aac_model_free(mb);

    /* bundle info */
    aac_bundle *b;
    CHECK_OK(aac_bundle_open(tmp_path("canon"), &b, &err), &err);
    CHECK(aac_bundle_has_adapters(b) && aac_bundle_config(b)->embed_dim == 16, "bundle config");
    aac_domain d;
    const char *desc = aac_bundle_describe_class(b, NULL, "bottle", &d);
    CHECK(!strcmp(desc, "dark bottle") && d == AAC_DOMAIN_INDUSTRIAL, "bottle: %s", desc);
    desc = aac_bundle_describe_class(b, "Brain", "Brain", &d);
    CHECK(!strcmp(desc, "scan") && d == AAC_DOMAIN_MEDICAL, "Brain: %s", desc);
    desc = aac_bundle_describe_class(b, "Kvasir", "Kvasir", &d); /* dataset named Colon_Kvasir */
    CHECK(!strcmp(desc, "Kvasir") && d == AAC_DOMAIN_MEDICAL, "unknown dataset: %s", desc);
    desc = aac_bundle_describe_class(b, NULL, "CVC-300", &d);
    CHECK(!strcmp(desc, "colon endoscopy image"), "CVC-300: %s", desc);
    desc = aac_bundle_describe_class(b, NULL, "spleen", &d);
    CHECK(!strcmp(desc, "spleen") && d == AAC_DOMAIN_MEDICAL, "unknown class: %s", desc);
    CHECK(strstr(aac_bundle_json(b), "\"sources\"") && strstr(aac_bundle_json(b), "\"text_adapt_weight\": 0.1,"),
          "model.json: %.300s", aac_bundle_json(b));
    aac_bundle_free(b);

    /* an existing bundle is kept unless force; a non-bundle folder is never replaced */
    aac_status s = import(s1, 2, NULL, "canon", &err);
    expect_fail(s, &err, AAC_ERR_ARG, "--force", NULL, "existing bundle");
    aac_import_params p = aac_import_default_params();
    p.force = 1;
    p.activation = AAC_ACT_QUICK_GELU; /* --activation wins over the adapters rule */
    CHECK_OK(import(s1, 2, &p, "canon", &err), &err);
    CHECK_OK(aac_bundle_open(tmp_path("canon"), &b, &err), &err);
    CHECK(aac_bundle_config(b)->activation == AAC_ACT_QUICK_GELU, "--activation override");
    aac_bundle_free(b);
    mkdir(tmp_path("notabundle"), 0755);
    write_text(tmp_path("notabundle/keep.txt"), "user data");
    s = import(s1, 2, &p, "notabundle", &err);
    expect_fail(s, &err, AAC_ERR_ARG, "not a model bundle", NULL, "non-bundle folder");
    CHECK(access(tmp_path("notabundle/keep.txt"), F_OK) == 0, "user file removed");

    /* a bundle as a source, with another run size */
    const char *s2[] = {tmp_path("canon")};
    p = aac_import_default_params();
    p.image_size = 64;
    CHECK_OK(import(s2, 1, &p, "canon64", &err), &err);
    compare_files(tmp_path("canon64/clip.safetensors"), clip, 0);
    CHECK_OK(aac_bundle_open(tmp_path("canon64"), &b, &err), &err);
    CHECK(aac_bundle_config(b)->img == 64 && aac_bundle_config(b)->activation == AAC_ACT_GELU, "re-import");
    aac_bundle_free(b);

    /* Hugging Face copies: one file, two shards; q/k/v packed, projections transposed */
    write_hf(clip, tmp_path("hf"), k_hf_config, 1, NULL);
    const char *s3[] = {tmp_path("hf"), ad};
    CHECK_OK(import(s3, 2, NULL, "from_hf", &err), &err);
    compare_files(tmp_path("from_hf/clip.safetensors"), clip, 0);
    CHECK_OK(aac_bundle_open(tmp_path("from_hf"), &b, &err), &err);
    CHECK(aac_bundle_config(b)->activation == AAC_ACT_GELU && aac_bundle_config(b)->v_head_width == 16,
          "HF + adapters: gelu, head width from config.json");
    aac_bundle_free(b);
    const char *s4[] = {tmp_path("hf")};
    CHECK_OK(import(s4, 1, NULL, "hf_plain", &err), &err);
    CHECK_OK(aac_bundle_open(tmp_path("hf_plain"), &b, &err), &err);
    CHECK(aac_bundle_config(b)->activation == AAC_ACT_QUICK_GELU && !aac_bundle_has_adapters(b),
          "HF alone: its quick_gelu");
    aac_bundle_free(b);
    write_hf(clip, tmp_path("hf2"), k_hf_config, 2, NULL);
    const char *s5[] = {tmp_path("hf2"), ad};
    CHECK_OK(import(s5, 2, NULL, "from_hf2", &err), &err);
    compare_files(tmp_path("from_hf2/clip.safetensors"), clip, 0);
    /* a lone HF-named safetensors file takes config.json from beside it */
    const char *s6[] = {tmp_path("hf/model.safetensors"), ad};
    CHECK_OK(import(s6, 2, NULL, "from_hf_file", &err), &err);
    compare_files(tmp_path("from_hf_file/clip.safetensors"), clip, 0);

    /* malformed sources: the file and the tensor or key are named */
    unlink(tmp_path("hf2/model-00002-of-00002.safetensors"));
    s = import(s5, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "model-00002-of-00002.safetensors", "index.json", "missing shard");
    const char *gone = "text_model.encoder.layers.1.self_attn.k_proj.weight";
    write_hf(clip, tmp_path("hf3"), k_hf_config, 1, gone);
    const char *s7[] = {tmp_path("hf3"), ad};
    s = import(s7, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, gone, "hf3/model.safetensors", "missing tensor");
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "%s", k_hf_config);
    char *heads = strstr(strstr(cfg, "vision_config"), "\"num_attention_heads\": 2,");
    memset(heads, ' ', strlen("\"num_attention_heads\": 2,"));
    write_text(tmp_path("hf/config.json"), cfg);
    s = import(s3, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_SHAPE, "--vision-head-width", "config.json", "config without vision heads");
    p = aac_import_default_params();
    p.vision_head_width = 16;
    CHECK_OK(import(s3, 2, &p, "hf_override", &err), &err);
    write_text(tmp_path("hf/config.json"), "{\"model_type\": \"clip\", \"text_config\": {}}");
    s = import(s3, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "vision_config", "config.json", "config without vision_config");
    snprintf(cfg, sizeof cfg, "%s", k_hf_config);
    memcpy(strstr(cfg, "\"hidden_size\": 32"), "\"hidden_size\": 64", 17);
    write_text(tmp_path("hf/config.json"), cfg);
    s = import(s3, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_SHAPE, "hidden_size", "config.json", "config disagreeing with shapes");
    write_text(tmp_path("hf/config.json"), k_hf_config);
    CHECK(access(tmp_path("bad"), F_OK) != 0, "a failed import left a bundle behind");

    /* canonical file without metadata and widths not multiple of 64: heads must be given */
    st_file *f;
    CHECK_OK(st_open(clip, &f, &err), &err);
    st_writer *w = st_writer_new();
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (strcmp(t->name, "visual.ln_post.bias"))
            CHECK_OK(st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err), &err);
    }
    CHECK_OK(st_writer_save(w, tmp_path("nometa.safetensors"), &err), &err);
    st_writer_free(w);
    st_close(f);
    const char *s8[] = {tmp_path("nometa.safetensors"), ad};
    p = aac_import_default_params();
    s = import(s8, 2, &p, "bad", &err);
    expect_fail(s, &err, AAC_ERR_ARG, "--vision-head-width", "nometa.safetensors", "no heads stated");
    p.vision_head_width = 16, p.text_heads = 2;
    s = import(s8, 2, &p, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "visual.ln_post.bias", "nometa.safetensors", "missing tensor");

    /* adapters: relu from the key layout; text without image is an error */
    aac_config rc = k_small;
    rc.relu = 1;
    aac_model *mr;
    CHECK_OK(aac_model_random(&rc, 9, &mr, &err), &err);
    CHECK_OK(aac_model_save(mr, tmp_path("clip_r.safetensors"), tmp_path("ad_r.safetensors"), &err), &err);
    aac_model_free(mr);
    const char *s9[] = {tmp_path("clip_r.safetensors"), tmp_path("ad_r.safetensors")};
    CHECK_OK(import(s9, 2, NULL, "relu", &err), &err);
    CHECK_OK(aac_bundle_open(tmp_path("relu"), &b, &err), &err);
    CHECK(aac_bundle_config(b)->relu == 1, "relu from fc.0.weight");
    aac_bundle_free(b);
    compare_files(tmp_path("relu/adapters.safetensors"), tmp_path("ad_r.safetensors"), 0);
    const char *s10[] = {clip, clip};
    s = import(s10, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_ARG, "second CLIP backbone", NULL, "two backbones");
    const char *s11[] = {ad};
    s = import(s11, 1, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "no CLIP backbone", NULL, "adapters only");
    write_text(tmp_path("junk.bin"), "this is not a model");
    const char *s12[] = {tmp_path("junk.bin")};
    s = import(s12, 1, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_FORMAT, "junk.bin", NULL, "junk file");

    /* F16 canonical weights are converted: equal to the half-rounded values */
    tu_write_reduced(clip, tmp_path("clip16.safetensors"), 1);
    const char *s13[] = {tmp_path("clip16.safetensors"), ad};
    CHECK_OK(import(s13, 2, NULL, "f16", &err), &err);
    compare_files(tmp_path("f16/clip.safetensors"), clip, 1);

    /* bundle reading errors */
    write_text(tmp_path("canon/model.json"), "{\"format\": \"aaclip-model-bundle\", \"version\": 99}");
    s = aac_bundle_open(tmp_path("canon"), &b, &err);
    expect_fail(s, &err, AAC_ERR_UNSUPPORTED, "version 99", "model.json", "newer bundle");
    write_text(tmp_path("canon/model.json"), "{\"format\": \"something\"}");
    s = aac_bundle_open(tmp_path("canon"), &b, &err);
    expect_fail(s, &err, AAC_ERR_FORMAT, "format", "model.json", "wrong format");
    unlink(tmp_path("from_hf/clip.safetensors"));
    s = aac_bundle_open(tmp_path("from_hf"), &b, &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "clip.safetensors", "model.json", "missing weights");
    s = aac_bundle_open(tmp_path("nothing_here"), &b, &err);
    CHECK(s == AAC_ERR_IO, "missing bundle: %s", err.message);

    free(seg_a), free(seg_b);
    aac_model_free(m);
}

/* ------------------------------------------------------------------ golden sources */

static void golden(void) {
    /* ../shared/golden/tiny, else the reduced copy in the repository (the same files, the text
     * embedding's unused rows zeroed in every container alike) */
    const char *gclip = tu_golden("clip_openclip.safetensors");
    const char *gad = tu_golden("aaclip_adapters.safetensors");
    const char *sd = tu_golden("clip_openclip_state_dict.pt");
    const char *ts = tu_golden("clip_torchscript_fp16.pt");
    const char *hf = tu_golden("hf");
    const char *tpth = tu_golden("text_adapter.pth");
    const char *ipth = tu_golden("image_adapter_15.pth");
    aac_error err;
    aac_import_params p = aac_import_default_params();
    p.vision_head_width = 16, p.text_heads = 2;

    const char *a[] = {sd, tpth, ipth};
    CHECK_OK(import(a, 3, &p, "g_sd", &err), &err);
    printf("  state dict .pt: %d tensors equal\n", compare_files(tmp_path("g_sd/clip.safetensors"), gclip, 0));
    printf("  adapter .pth:   %d tensors equal\n", compare_files(tmp_path("g_sd/adapters.safetensors"), gad, 0));

    const char *b[] = {ts, gad};
    CHECK_OK(import(b, 2, &p, "g_ts", &err), &err);
    printf("  TorchScript fp16: %d tensors equal after half rounding\n",
           compare_files(tmp_path("g_ts/clip.safetensors"), gclip, 1));
    aac_import_params none = aac_import_default_params();
    aac_status s = import(b, 2, &none, "bad", &err);
    expect_fail(s, &err, AAC_ERR_ARG, "--vision-head-width", "clip_torchscript_fp16.pt", "TorchScript heads");

    const char *c[] = {hf, tpth, ipth};
    CHECK_OK(import(c, 3, NULL, "g_hf", &err), &err);
    printf("  HF folder: %d tensors equal\n", compare_files(tmp_path("g_hf/clip.safetensors"), gclip, 0));
    aac_bundle *bd;
    CHECK_OK(aac_bundle_open(tmp_path("g_hf"), &bd, &err), &err);
    const aac_config *cfg = aac_bundle_config(bd);
    CHECK(cfg->activation == AAC_ACT_GELU && cfg->v_head_width == 16 && cfg->t_heads == 2 && cfg->img == 518 &&
              cfg->native == 336 && cfg->text_adapt_until == 3 && cfg->image_adapt_until == 6 && !cfg->relu &&
              cfg->levels[0] == 6 && cfg->levels[3] == 24,
          "golden HF config");
    CHECK(strstr(aac_bundle_json(bd), "\"vocab\": \"vocab.json\""), "HF tokenizer copied");
    aac_bundle_free(bd);

    /* AA-CLIP checkpoint folder: the highest epoch by default, --epoch picks another */
    mkdir(tmp_path("ckpt"), 0755);
    tu_copy_file(tpth, tmp_path("ckpt/text_adapter.pth"));
    tu_copy_file(ipth, tmp_path("ckpt/image_adapter_15.pth"));
    tu_copy_file(ipth, tmp_path("ckpt/image_adapter_3.pth"));
    const char *d[] = {gclip, tmp_path("ckpt")};
    CHECK_OK(import(d, 2, NULL, "g_ckpt", &err), &err);
    compare_files(tmp_path("g_ckpt/adapters.safetensors"), gad, 0);
    CHECK_OK(aac_bundle_open(tmp_path("g_ckpt"), &bd, &err), &err);
    CHECK(strstr(aac_bundle_json(bd), "image_adapter_15.pth") && !strstr(aac_bundle_json(bd), "image_adapter_3.pth"),
          "default epoch is the highest (15, not 3 by name order)");
    aac_bundle_free(bd);
    p = aac_import_default_params();
    p.epoch = 3;
    CHECK_OK(import(d, 2, &p, "g_ckpt3", &err), &err);
    CHECK_OK(aac_bundle_open(tmp_path("g_ckpt3"), &bd, &err), &err);
    CHECK(strstr(aac_bundle_json(bd), "image_adapter_3.pth"), "--epoch 3");
    aac_bundle_free(bd);
    p.epoch = 7;
    s = import(d, 2, &p, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "image_adapter_7.pth", "15", "missing epoch");
    unlink(tmp_path("ckpt/text_adapter.pth"));
    p.epoch = 0;
    const char *e[] = {gclip, tmp_path("ckpt")};
    s = import(e, 2, &p, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "text_adapter.pth", "ckpt", "checkpoint without text adapter");
    /* the text checkpoint alone: image adapters missing */
    const char *f[] = {gclip, tpth};
    s = import(f, 2, NULL, "bad", &err);
    expect_fail(s, &err, AAC_ERR_MISSING, "image", "text_adapter.pth", "text adapters only");
}

int main(void) {
    CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp");
    /* the shipped tokenizer, found from this file's place in the source tree */
    snprintf(g_tok, sizeof g_tok, "%s", __FILE__);
    char *slash = strrchr(g_tok, '/');
    if (slash) slash[1] = '\0';
    else g_tok[0] = '\0';
    strncat(g_tok, "../data/bpe_simple_vocab_16e6.txt.gz", sizeof g_tok - strlen(g_tok) - 1);
    self_contained();
    golden();
    rm_tree(g_tmp);
    return tu_finish("test_import");
}
