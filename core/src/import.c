/* import.c - CLIP and AA-CLIP weights as the ecosystem publishes them, mapped to the canonical
 * layout: Hugging Face CLIPModel folders and safetensors (separate q/k/v, transposed
 * projections), open_clip/OpenAI safetensors, torch.save and TorchScript zips (OpenAI's fp16
 * release), AA-CLIP adapter checkpoints and checkpoint folders, other bundles. Every source is
 * recognised by its content (folder files, zip magic, tensor names), never by its name alone. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"
#include "import.h"
#include "torch_archive.h"

#define MAX_SHARDS 256
#define MAX_FILES 512
#define DEFAULT_HEAD_WIDTH 64 /* OpenAI CLIP: every head is 64 wide */
#define DEFAULT_RUN_SIZE 518  /* AA-CLIP's img_size */
#define HF_VISION_HEADS 12    /* CLIPVisionConfig / CLIPTextConfig defaults: what transformers */
#define HF_TEXT_HEADS 8       /* runs when config.json leaves num_attention_heads out */

/* One tensor of a source, whatever the container. */
typedef struct tview {
    const char *file;
    st_dtype dtype;
    int ndim;
    const int64_t *shape;
    int64_t numel;
    const void *data;
} tview;

typedef struct sfile {
    char *path;
    st_file *st;
    ta_archive *ta;
} sfile;

/* Files that together hold one set of names (the shards of a Hugging Face model), all under a
 * common key prefix ("" or e.g. "state_dict.module."). */
typedef struct tset {
    sfile *files[MAX_SHARDS];
    int n;
    char prefix[128];
    char label[1024]; /* what the user named, for messages */
} tset;

/* What a source states about the configuration; 0 = not stated. */
typedef struct stated {
    int embed_dim, v_width, v_layers, patch, native, t_width, t_layers, vocab, context, img;
    int v_heads, v_head_width, t_heads, v_mlp, t_mlp;
    int v_heads_dflt, t_heads_dflt; /* heads are transformers' defaults (config.json omits them) */
    aac_activation act;
    char from[1024]; /* the file stating them */
} stated;

typedef struct backbone {
    int present, hf;
    tset set;
    stated st;
    int archive; /* a PyTorch zip: TorchScript modules may keep attention attributes */
} backbone;

typedef struct adapter_part {
    int present;
    tset set;
} adapter_part;

typedef struct ctx {
    const aac_import_params *p;
    aac_error *err;
    sfile *files[MAX_FILES];
    int n_files;
    backbone bb;
    adapter_part text, image;
    char *tok_bpe, *tok_vocab, *tok_merges;
    json_t *sources, *settled;
} ctx;

/* ------------------------------------------------------------------ small helpers */

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int starts_with(const char *s, const char *prefix) {
    return !strncmp(s, prefix, strlen(prefix));
}

static void fmt_shape(char *buf, size_t cap, int nd, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < nd && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* Replaces *dst by a copy of s (tokenizer candidates). */
static int set_str(char **dst, const char *s) {
    free(*dst);
    *dst = s ? strdup(s) : NULL;
    return !s || *dst;
}

/* ------------------------------------------------------------------ source files */

static size_t sf_count(const sfile *f) { return f->st ? st_count(f->st) : ta_count(f->ta); }

static const char *sf_name(const sfile *f, size_t i) {
    return f->st ? st_at(f->st, i)->name : ta_at(f->ta, i)->name;
}

static int sf_find(const sfile *f, const char *name, tview *v) {
    v->file = f->path;
    if (f->st) {
        const st_tensor *t = st_find(f->st, name);
        if (!t) return 0;
        v->dtype = t->dtype, v->ndim = t->ndim, v->shape = t->shape, v->numel = t->numel;
        v->data = t->data;
        return 1;
    }
    const ta_tensor *t = ta_find(f->ta, name);
    if (!t) return 0;
    v->dtype = t->dtype, v->ndim = t->ndim, v->shape = t->shape, v->numel = t->numel;
    v->data = t->data;
    return 1;
}

static int tset_find(const tset *s, const char *name, tview *v) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    for (int i = 0; i < s->n; i++)
        if (sf_find(s->files[i], full, v)) return 1;
    return 0;
}

static const char *tset_scalar(const tset *s, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    for (int i = 0; i < s->n; i++)
        if (s->files[i]->ta) {
            const char *v = ta_scalar(s->files[i]->ta, full);
            if (v) return v;
        }
    return NULL;
}

/* Opens a safetensors file or a PyTorch zip, told apart by the first bytes. */
static aac_status open_file(ctx *c, const char *path, sfile **out) {
    for (int i = 0; i < c->n_files; i++)
        if (!strcmp(c->files[i]->path, path)) {
            *out = c->files[i];
            return AAC_OK;
        }
    if (c->n_files == MAX_FILES)
        return aac_fail(c->err, AAC_ERR_UNSUPPORTED, "%s: too many source files", path);
    unsigned char head[9] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return aac_fail(c->err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    sfile *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
    }
    aac_status s;
    if (got >= 4 && !memcmp(head, "PK\003\004", 4))
        s = ta_open(path, NULL, &f->ta, c->err);
    else if (got == 9 && head[8] == '{')
        s = st_open(path, &f->st, c->err);
    else
        s = aac_fail(c->err, AAC_ERR_FORMAT,
                     "%s: neither a safetensors file nor a PyTorch zip archive (.pt/.pth/.bin)", path);
    if (s) {
        free(f->path);
        free(f);
        return s;
    }
    c->files[c->n_files++] = f;
    *out = f;
    return AAC_OK;
}

/* Key prefix under which `name` occurs as a whole dotted suffix in f; 0 if it does not. */
static int find_prefix(const sfile *f, const char *name, char *prefix, size_t cap) {
    size_t nl = strlen(name);
    for (size_t i = 0, n = sf_count(f); i < n; i++) {
        const char *k = sf_name(f, i);
        size_t kl = strlen(k);
        if (kl >= nl && !strcmp(k + kl - nl, name) && (kl == nl || k[kl - nl - 1] == '.') &&
            kl - nl < cap) {
            memcpy(prefix, k, kl - nl);
            prefix[kl - nl] = '\0';
            return 1;
        }
    }
    return 0;
}

static int has_key_prefix(const sfile *f, const char *prefix) {
    for (size_t i = 0, n = sf_count(f); i < n; i++)
        if (starts_with(sf_name(f, i), prefix)) return 1;
    return 0;
}

static aac_status add_source(ctx *c, const char *path, const char *kind, const char *roles,
                             int epoch) {
    json_t *o = json_pack("{s:s, s:s, s:s}", "path", path, "kind", kind, "roles", roles);
    if (o && epoch > 0) json_object_set_new(o, "epoch", json_integer(epoch));
    if (!o || json_array_append_new(c->sources, o))
        return aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
    return AAC_OK;
}

/* ------------------------------------------------------------------ configuration stated by sources */

/* Optional positive integer `key` of obj into *dst; a present but malformed value is an error. */
static aac_status json_int(ctx *c, json_t *obj, const char *key, const char *where, int *dst) {
    json_t *v = json_object_get(obj, key);
    if (!v) return AAC_OK;
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 1 << 24)
        return aac_fail(c->err, AAC_ERR_FORMAT, "%s: \"%s%s\" is not a positive integer", c->bb.st.from,
                        where, key);
    *dst = (int)json_integer_value(v);
    return AAC_OK;
}

static aac_status parse_act(ctx *c, const char *name, const char *where, aac_activation *act) {
    if (!strcmp(name, "quick_gelu")) *act = AAC_ACT_QUICK_GELU;
    else if (!strcmp(name, "gelu")) *act = AAC_ACT_GELU;
    else
        return aac_fail(c->err, AAC_ERR_UNSUPPORTED,
                        "%s: %s activation \"%s\" is not supported (gelu or quick_gelu)", c->bb.st.from,
                        where, name);
    return AAC_OK;
}

/* Hugging Face CLIPModel config.json: widths, heads, depths, sizes, activation. */
static aac_status read_hf_config(ctx *c, const char *path) {
    stated *st = &c->bb.st;
    snprintf(st->from, sizeof st->from, "%s", path);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return aac_fail(c->err, AAC_ERR_FORMAT, "%s: not a JSON object (line %d: %s)", path, je.line,
                        je.text);
    }
    aac_status s = AAC_OK;
    json_t *mt = json_object_get(root, "model_type");
    json_t *vc = json_object_get(root, "vision_config");
    json_t *tc = json_object_get(root, "text_config");
    if (!vc) vc = json_object_get(root, "vision_config_dict"); /* older transformers */
    if (!tc) tc = json_object_get(root, "text_config_dict");
    if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "clip"))) {
        s = aac_fail(c->err, AAC_ERR_UNSUPPORTED, "%s: model_type \"%s\" is not a CLIPModel", path,
                     json_is_string(mt) ? json_string_value(mt) : "?");
        goto done;
    }
    if (!json_is_object(vc) || !json_is_object(tc)) {
        s = aac_fail(c->err, AAC_ERR_MISSING, "%s: key \"%s\" missing (not a CLIPModel config)", path,
                     json_is_object(vc) ? "text_config" : "vision_config");
        goto done;
    }
    if ((s = json_int(c, root, "projection_dim", "", &st->embed_dim)) ||
        (s = json_int(c, vc, "hidden_size", "vision_config.", &st->v_width)) ||
        (s = json_int(c, vc, "num_hidden_layers", "vision_config.", &st->v_layers)) ||
        (s = json_int(c, vc, "num_attention_heads", "vision_config.", &st->v_heads)) ||
        (s = json_int(c, vc, "patch_size", "vision_config.", &st->patch)) ||
        (s = json_int(c, vc, "image_size", "vision_config.", &st->native)) ||
        (s = json_int(c, vc, "intermediate_size", "vision_config.", &st->v_mlp)) ||
        (s = json_int(c, tc, "hidden_size", "text_config.", &st->t_width)) ||
        (s = json_int(c, tc, "num_hidden_layers", "text_config.", &st->t_layers)) ||
        (s = json_int(c, tc, "num_attention_heads", "text_config.", &st->t_heads)) ||
        (s = json_int(c, tc, "max_position_embeddings", "text_config.", &st->context)) ||
        (s = json_int(c, tc, "vocab_size", "text_config.", &st->vocab)) ||
        (s = json_int(c, tc, "intermediate_size", "text_config.", &st->t_mlp)))
        goto done;
    if (!st->v_heads) st->v_heads = HF_VISION_HEADS, st->v_heads_dflt = 1;
    if (!st->t_heads) st->t_heads = HF_TEXT_HEADS, st->t_heads_dflt = 1;
    /* transformers' CLIP defaults to quick_gelu when hidden_act is left out */
    aac_activation va = AAC_ACT_QUICK_GELU, ta = AAC_ACT_QUICK_GELU;
    json_t *a = json_object_get(vc, "hidden_act");
    if (a && (s = parse_act(c, json_is_string(a) ? json_string_value(a) : "?", "vision_config.hidden_act", &va)))
        goto done;
    a = json_object_get(tc, "hidden_act");
    if (a && (s = parse_act(c, json_is_string(a) ? json_string_value(a) : "?", "text_config.hidden_act", &ta)))
        goto done;
    if (va != ta) {
        s = aac_fail(c->err, AAC_ERR_UNSUPPORTED,
                     "%s: the vision and text towers use different activations (one model-wide "
                     "activation is supported)", path);
        goto done;
    }
    st->act = va;
done:
    json_decref(root);
    return s;
}

/* __metadata__ of a canonical safetensors backbone (what aac_model_save writes). */
static aac_status read_canon_metadata(ctx *c, const st_file *f) {
    stated *st = &c->bb.st;
    snprintf(st->from, sizeof st->from, "%s", st_path(f));
    const char *js = st_metadata(f, "config");
    if (js) {
        json_error_t je;
        json_t *root = json_loads(js, 0, &je);
        if (!json_is_object(root)) {
            json_decref(root);
            return aac_fail(c->err, AAC_ERR_FORMAT, "%s: __metadata__ \"config\" is not a JSON object",
                            st_path(f));
        }
        struct { const char *key; int *dst; } keys[] = {
            {"embed_dim", &st->embed_dim}, {"v_width", &st->v_width},
            {"v_head_width", &st->v_head_width}, {"v_layers", &st->v_layers},
            {"patch", &st->patch}, {"native", &st->native}, {"t_width", &st->t_width},
            {"t_heads", &st->t_heads}, {"t_layers", &st->t_layers}, {"img", &st->img},
            {"vocab", &st->vocab}, {"context", &st->context},
        };
        aac_status s = AAC_OK;
        for (size_t i = 0; !s && i < sizeof keys / sizeof keys[0]; i++)
            s = json_int(c, root, keys[i].key, "__metadata__ config.", keys[i].dst);
        json_decref(root);
        if (s) return s;
    }
    const char *act = st_metadata(f, "activation");
    if (act) return parse_act(c, act, "__metadata__", &st->act);
    return AAC_OK;
}

/* ------------------------------------------------------------------ classifying sources */

/* Registers what file f holds: a backbone (open_clip or Hugging Face names) and/or adapter
 * parts. want: "" anything, "text"/"image" only that adapter part (checkpoint folders). */
static aac_status classify(ctx *c, sfile *f, const char *label, const char *want, int epoch,
                           const char *kind_override) {
    char prefix[128];
    const char *kind = kind_override;
    char roles[64] = "";
    int any = 0;
    if (!*want && (find_prefix(f, "visual.conv1.weight", prefix, sizeof prefix) ||
                   find_prefix(f, "vision_model.embeddings.patch_embedding.weight", prefix,
                               sizeof prefix))) {
        int hf = !find_prefix(f, "visual.conv1.weight", prefix, sizeof prefix);
        if (hf) find_prefix(f, "vision_model.embeddings.patch_embedding.weight", prefix, sizeof prefix);
        if (c->bb.present)
            return aac_fail(c->err, AAC_ERR_ARG, "%s: a second CLIP backbone (the first is %s)", label,
                            c->bb.set.label);
        c->bb.present = 1;
        c->bb.hf = hf;
        c->bb.set.files[0] = f;
        c->bb.set.n = 1;
        snprintf(c->bb.set.prefix, sizeof c->bb.set.prefix, "%s", prefix);
        snprintf(c->bb.set.label, sizeof c->bb.set.label, "%s", label);
        c->bb.archive = f->ta != NULL;
        if (!kind) kind = hf ? (f->st ? "safetensors (Hugging Face names)" : "torch.save (Hugging Face names)")
                     : f->st ? "safetensors (open_clip names)"
                     : !strcmp(ta_kind(f->ta), "torchscript") ? "TorchScript archive"
                                                              : "torch.save state dict";
        strcat(roles, "clip");
        any = 1;
        aac_status s;
        if (!hf && f->st && (s = read_canon_metadata(c, f->st))) return s;
    }
    const char *parts[2] = {"text", "image"};
    for (int k = 0; k < 2; k++) {
        if (*want && strcmp(want, parts[k])) continue;
        adapter_part *ap = k ? &c->image : &c->text;
        if (!has_key_prefix(f, k ? "image_adapter." : "text_adapter.")) continue;
        if (ap->present)
            return aac_fail(c->err, AAC_ERR_ARG, "%s: %s adapters given twice (also in %s)", label,
                            parts[k], ap->set.label);
        ap->present = 1;
        ap->set.files[0] = f;
        ap->set.n = 1;
        snprintf(ap->set.label, sizeof ap->set.label, "%s", f->path);
        if (!kind) kind = f->st ? "safetensors (aaclip adapter names)" : "AA-CLIP adapter checkpoint";
        strcat(roles, *roles ? "," : "");
        strcat(roles, k ? "image_adapter" : "text_adapter");
        any = 1;
    }
    if (!any) {
        if (*want)
            return aac_fail(c->err, AAC_ERR_MISSING, "%s: no %s_adapter.* tensors (not an AA-CLIP %s "
                            "adapter checkpoint)", f->path, want, want);
        return aac_fail(c->err, AAC_ERR_MISSING,
                        "%s: no CLIP or AA-CLIP tensors (expected visual.conv1.weight, "
                        "vision_model.embeddings.patch_embedding.weight, text_adapter.* or "
                        "image_adapter.*)", f->path);
    }
    if (epoch <= 0 && f->ta) {
        const char *e = ta_scalar(f->ta, "epoch");
        if (e) epoch = atoi(e);
    }
    return add_source(c, label, kind, roles, epoch);
}

/* model.safetensors.index.json / pytorch_model.bin.index.json: opens every shard named in
 * the weight map into the backbone set. */
static aac_status open_shards(ctx *c, const char *dir, const char *index, tset *set) {
    json_error_t je;
    json_t *root = json_load_file(index, 0, &je);
    json_t *wm = root ? json_object_get(root, "weight_map") : NULL;
    if (!json_is_object(wm)) {
        json_decref(root);
        return aac_fail(c->err, AAC_ERR_FORMAT, "%s: no \"weight_map\" object", index);
    }
    aac_status s = AAC_OK;
    const char *key;
    json_t *v;
    json_object_foreach(wm, key, v) {
        const char *shard = json_string_value(v);
        if (!shard || strchr(shard, '/')) {
            s = aac_fail(c->err, AAC_ERR_FORMAT, "%s: weight_map[\"%s\"] is not a file name", index, key);
            break;
        }
        char *path = fs_join(dir, shard);
        if (!path) {
            s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
            break;
        }
        int seen = 0;
        for (int i = 0; i < set->n && !seen; i++) seen = !strcmp(set->files[i]->path, path);
        if (!seen && !is_file(path))
            s = aac_fail(c->err, AAC_ERR_MISSING, "%s: shard '%s' (holding '%s') not found", index, shard, key);
        else if (!seen && set->n == MAX_SHARDS)
            s = aac_fail(c->err, AAC_ERR_UNSUPPORTED, "%s: more than %d shards", index, MAX_SHARDS);
        else if (!seen && !(s = open_file(c, path, &set->files[set->n])))
            set->n++;
        free(path);
        if (s) break;
    }
    json_decref(root);
    return s;
}

/* Hugging Face CLIPModel folder. */
static aac_status open_hf_folder(ctx *c, const char *dir) {
    char *cfg = fs_join(dir, "config.json");
    aac_status s = cfg ? AAC_OK : aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
    const char *weights[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                             "pytorch_model.bin.index.json"};
    char *w = NULL;
    int wi = -1;
    for (int i = 0; !s && i < 4 && wi < 0; i++) {
        free(w);
        if (!(w = fs_join(dir, weights[i]))) s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
        else if (is_file(w)) wi = i;
    }
    if (!s && wi < 0)
        s = aac_fail(c->err, AAC_ERR_MISSING,
                     "%s: Hugging Face folder without weights (model.safetensors, "
                     "model.safetensors.index.json + shards, or pytorch_model.bin)", dir);
    if (!s && c->bb.present)
        s = aac_fail(c->err, AAC_ERR_ARG, "%s: a second CLIP backbone (the first is %s)", dir, c->bb.set.label);
    tset set = {.n = 0};
    if (!s && (wi == 0 || wi == 2)) {
        if (!(s = open_file(c, w, &set.files[0]))) set.n = 1;
    } else if (!s) {
        s = open_shards(c, dir, w, &set);
    }
    int found = 0;
    for (int i = 0; !s && i < set.n && !found; i++)
        found = find_prefix(set.files[i], "vision_model.embeddings.patch_embedding.weight", set.prefix,
                            sizeof set.prefix);
    if (!s && !found)
        s = aac_fail(c->err, AAC_ERR_MISSING, "%s: tensor 'vision_model.embeddings.patch_embedding.weight' "
                     "not found (not a Hugging Face CLIPModel)", wi == 1 || wi == 3 ? dir : w);
    if (!s) {
        snprintf(set.label, sizeof set.label, "%s", wi == 1 || wi == 3 ? dir : w);
        c->bb.present = 1;
        c->bb.hf = 1;
        c->bb.set = set;
        s = read_hf_config(c, cfg);
    }
    if (!s && !c->tok_vocab) { /* the folder's tokenizer, unless another source gave one */
        char *v = fs_join(dir, "vocab.json"), *m = fs_join(dir, "merges.txt");
        if (v && m && is_file(v) && is_file(m)) {
            c->tok_vocab = v, c->tok_merges = m;
            v = m = NULL;
        }
        free(v), free(m);
    }
    if (!s) s = add_source(c, dir, "Hugging Face CLIPModel folder", "clip", 0);
    free(cfg), free(w);
    return s;
}

/* Highest N (or the requested one) of image_adapter_<N>.pth in dir; -1 if none. */
static int pick_epoch(const char *dir, int want, char *avail, size_t cap) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int best = -1;
    size_t len = 0;
    avail[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d))) {
        int n, used = 0;
        if (sscanf(e->d_name, "image_adapter_%d.pth%n", &n, &used) == 1 && used == (int)strlen(e->d_name) &&
            n >= 0) {
            if (len < cap) len += (size_t)snprintf(avail + len, cap - len, "%s%d", len ? ", " : "", n);
            if (want > 0 ? n == want : n > best) best = n;
        }
    }
    closedir(d);
    return best;
}

/* AA-CLIP's save_path: text_adapter.pth + image_adapter_<N>.pth (and image_adapter.pth). */
static aac_status open_ckpt_folder(ctx *c, const char *dir) {
    char avail[512], name[64];
    int ep = pick_epoch(dir, c->p->epoch, avail, sizeof avail);
    aac_status s = AAC_OK;
    if (c->p->epoch > 0 && ep < 0)
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: image_adapter_%d.pth not found (epochs present: %s)",
                        dir, c->p->epoch, *avail ? avail : "none");
    if (ep >= 0) snprintf(name, sizeof name, "image_adapter_%d.pth", ep);
    else snprintf(name, sizeof name, "image_adapter.pth"); /* only the latest state was kept */
    char *t = fs_join(dir, "text_adapter.pth"), *i = fs_join(dir, name);
    sfile *f;
    if (!t || !i) s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
    else if (!is_file(t))
        s = aac_fail(c->err, AAC_ERR_MISSING, "%s: text_adapter.pth not found (AA-CLIP's stage 1 writes it)", dir);
    else if (!is_file(i))
        s = aac_fail(c->err, AAC_ERR_MISSING,
                     "%s: no image_adapter_<N>.pth or image_adapter.pth (AA-CLIP's stage 2 writes them)", dir);
    if (!s && !(s = open_file(c, t, &f))) s = classify(c, f, t, "text", 0, "AA-CLIP text adapter checkpoint");
    if (!s && !(s = open_file(c, i, &f)))
        s = classify(c, f, i, "image", ep, "AA-CLIP image adapter checkpoint");
    free(t), free(i);
    return s;
}

/* A bundle used as a source (re-import with other overrides or another tokenizer). */
static aac_status open_bundle_folder(ctx *c, const char *dir) {
    const char *names[] = {"clip.safetensors", "adapters.safetensors"};
    aac_status s = AAC_OK;
    for (int k = 0; k < 2 && !s; k++) {
        char *p = fs_join(dir, names[k]);
        sfile *f;
        if (!p) s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
        else if (k == 0 && !is_file(p)) s = aac_fail(c->err, AAC_ERR_MISSING, "%s: clip.safetensors not found", dir);
        else if (is_file(p) && !(s = open_file(c, p, &f))) s = classify(c, f, p, "", 0, "model bundle");
        free(p);
    }
    if (s || c->tok_bpe || c->tok_vocab) return s;
    const char *bpe[] = {"bpe_simple_vocab_16e6.txt.gz", "bpe_simple_vocab_16e6.txt"};
    for (int k = 0; k < 2 && !c->tok_bpe; k++) {
        char *p = fs_join(dir, bpe[k]);
        if (p && is_file(p)) c->tok_bpe = p;
        else free(p);
    }
    char *v = fs_join(dir, "vocab.json"), *m = fs_join(dir, "merges.txt");
    if (!c->tok_bpe && v && m && is_file(v) && is_file(m)) c->tok_vocab = v, c->tok_merges = m, v = m = NULL;
    free(v), free(m);
    return AAC_OK;
}

static aac_status open_source(ctx *c, const char *src) {
    if (is_dir(src)) {
        char *j = fs_join(src, "config.json"), *b = fs_join(src, "model.json");
        char avail[8];
        int hf = j && is_file(j), bundle = b && is_file(b);
        free(j), free(b);
        char *tp = fs_join(src, "text_adapter.pth");
        int ckpt = (tp && is_file(tp)) || pick_epoch(src, 0, avail, sizeof avail) >= 0;
        free(tp);
        if (!ckpt) {
            char *ip = fs_join(src, "image_adapter.pth");
            ckpt = ip && is_file(ip);
            free(ip);
        }
        aac_status s = AAC_OK;
        if (bundle) return open_bundle_folder(c, src);
        if (hf) s = open_hf_folder(c, src);
        if (!s && ckpt) s = open_ckpt_folder(c, src);
        if (!s && !hf && !ckpt)
            s = aac_fail(c->err, AAC_ERR_FORMAT,
                         "%s: neither a Hugging Face CLIP folder (config.json), an AA-CLIP checkpoint "
                         "folder (text_adapter.pth, image_adapter_<N>.pth) nor a model bundle (model.json)",
                         src);
        return s;
    }
    if (!is_file(src)) return aac_fail(c->err, AAC_ERR_IO, "%s: no such file or folder", src);
    sfile *f;
    aac_status s = open_file(c, src, &f);
    if (s) return s;
    int had_bb = c->bb.present;
    if ((s = classify(c, f, src, "", 0, NULL))) return s;
    if (!had_bb && c->bb.present && c->bb.hf) { /* a lone HF-named file: config.json beside it */
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", src);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        char *cfg = fs_join(dir, "config.json");
        if (cfg && is_file(cfg)) s = read_hf_config(c, cfg);
        free(cfg);
    }
    return s;
}

/* ------------------------------------------------------------------ settling the configuration */

typedef struct names {
    const char *conv, *proj, *vpos, *tok, *tpos, *vblock, *tblock, *ln1;
} names;

static const names k_canon = {"visual.conv1.weight", "visual.proj", "visual.positional_embedding",
                              "token_embedding.weight", "positional_embedding",
                              "visual.transformer.resblocks.", "transformer.resblocks.", "ln_1.weight"};
static const names k_hf = {"vision_model.embeddings.patch_embedding.weight", "visual_projection.weight",
                           "vision_model.embeddings.position_embedding.weight",
                           "text_model.embeddings.token_embedding.weight",
                           "text_model.embeddings.position_embedding.weight",
                           "vision_model.encoder.layers.", "text_model.encoder.layers.",
                           "layer_norm1.weight"};

static aac_status need(ctx *c, const char *name, int nd, tview *v) {
    const tset *s = &c->bb.set;
    if (!tset_find(s, name, v))
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: tensor '%s%s' not found", s->label, s->prefix, name);
    if (v->ndim != nd)
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: tensor '%s%s' has %d dimensions, expected %d", v->file,
                        s->prefix, name, v->ndim, nd);
    return AAC_OK;
}

static int count_blocks(const tset *s, const char *prefix, const char *leaf) {
    char name[256];
    tview v;
    int n = 0;
    for (;;) {
        snprintf(name, sizeof name, "%s%d.%s", prefix, n, leaf);
        if (!tset_find(s, name, &v)) return n;
        n++;
    }
}

static aac_status note(ctx *c, const char *key, const char *fmt, ...) AAC_PRINTF(3, 4);
static aac_status note(ctx *c, const char *key, const char *fmt, ...) {
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (json_object_set_new(c->settled, key, json_string(buf)))
        return aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
    return AAC_OK;
}

/* A value the source states must agree with the tensors. */
static aac_status agree(ctx *c, const char *what, int stated_v, int shape_v) {
    if (stated_v && stated_v != shape_v)
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: %s is %d but the tensors of %s give %d", c->bb.st.from,
                        what, stated_v, c->bb.set.label, shape_v);
    return AAC_OK;
}

/* Scalar attribute of a TorchScript attention module, if the archive keeps one. */
static int ts_int(const ctx *c, const char *block_prefix, const char *attr) {
    char name[256];
    snprintf(name, sizeof name, "%s0.attn.%s", block_prefix, attr);
    const char *v = tset_scalar(&c->bb.set, name);
    return v ? atoi(v) : 0;
}

static aac_status settle_heads(ctx *c, aac_config *cfg) {
    const stated *st = &c->bb.st;
    const int W = cfg->v_width, Wt = cfg->t_width;
    const char *src = *st->from ? st->from : c->bb.set.label;
    aac_status s;
    int hw = 0, th = 0, ts;
    if (c->p->vision_head_width > 0) {
        hw = c->p->vision_head_width;
        s = note(c, "v_head_width", "--vision-head-width %d", hw);
    } else if (st->v_head_width) {
        hw = st->v_head_width;
        s = note(c, "v_head_width", "stated by %s", src);
    } else if (st->v_heads) {
        if (W % st->v_heads)
            return aac_fail(c->err, AAC_ERR_SHAPE,
                            "%s: vision_config.num_attention_heads %s%d does not divide the vision width %d: "
                            "give --vision-head-width N", src,
                            st->v_heads_dflt ? "is not stated and the default " : "", st->v_heads, W);
        hw = W / st->v_heads;
        s = note(c, "v_head_width", "%d heads %s %s", st->v_heads,
                 st->v_heads_dflt ? "(transformers' default: not stated in)" : "stated by", src);
    } else if (c->bb.archive && ((ts = ts_int(c, "visual.transformer.resblocks.", "head_dim")) > 0 ||
                                ((ts = ts_int(c, "visual.transformer.resblocks.", "num_heads")) > 0 &&
                                 W % ts == 0 && (ts = W / ts)))) {
        hw = ts;
        s = note(c, "v_head_width", "attention module attributes of %s", c->bb.set.label);
    } else if (W % DEFAULT_HEAD_WIDTH == 0) {
        hw = DEFAULT_HEAD_WIDTH;
        s = note(c, "v_head_width", "assumed %d (OpenAI CLIP; %s does not state it, see "
                 "--vision-head-width)", hw, c->bb.set.label);
    } else {
        return aac_fail(c->err, AAC_ERR_ARG,
                        "%s does not state the vision attention heads and the vision width %d is not a "
                        "multiple of %d (the OpenAI head width): give --vision-head-width N, N dividing %d",
                        c->bb.set.label, W, DEFAULT_HEAD_WIDTH, W);
    }
    if (s) return s;
    if (W % hw)
        return aac_fail(c->err, AAC_ERR_ARG, "vision head width %d does not divide the vision width %d of %s", hw,
                        W, c->bb.set.label);
    if (c->p->text_heads > 0) {
        th = c->p->text_heads;
        s = note(c, "t_heads", "--text-heads %d", th);
    } else if (st->t_heads) {
        th = st->t_heads;
        if (Wt % th)
            return aac_fail(c->err, AAC_ERR_SHAPE, "%s: %s %s%d does not divide the text width %d: give "
                            "--text-heads N", src, c->bb.hf ? "text_config.num_attention_heads" : "t_heads",
                            st->t_heads_dflt ? "is not stated and the default " : "", th, Wt);
        s = note(c, "t_heads", "%s %s", st->t_heads_dflt ? "transformers' default 8: not stated in" : "stated by",
                 src);
    } else if (c->bb.archive && (ts = ts_int(c, "transformer.resblocks.", "num_heads")) > 0) {
        th = ts;
        s = note(c, "t_heads", "attention module attributes of %s", c->bb.set.label);
    } else if (Wt % DEFAULT_HEAD_WIDTH == 0) {
        th = Wt / DEFAULT_HEAD_WIDTH;
        s = note(c, "t_heads", "assumed width / %d (OpenAI CLIP; %s does not state it, see --text-heads)",
                 DEFAULT_HEAD_WIDTH, c->bb.set.label);
    } else {
        return aac_fail(c->err, AAC_ERR_ARG,
                        "%s does not state the text attention heads and the text width %d is not a multiple "
                        "of %d (the OpenAI head width): give --text-heads N, N dividing %d",
                        c->bb.set.label, Wt, DEFAULT_HEAD_WIDTH, Wt);
    }
    if (s) return s;
    if (Wt % th)
        return aac_fail(c->err, AAC_ERR_ARG, "%d text heads do not divide the text width %d of %s", th, Wt,
                        c->bb.set.label);
    cfg->v_head_width = hw;
    cfg->t_heads = th;
    return AAC_OK;
}

static aac_status settle_backbone(ctx *c, aac_config *cfg) {
    const names *nm = c->bb.hf ? &k_hf : &k_canon;
    const stated *st = &c->bb.st;
    tview v;
    aac_status s;
    if ((s = need(c, nm->conv, 4, &v))) return s;
    cfg->v_width = (int)v.shape[0];
    cfg->patch = (int)v.shape[2];
    if (v.shape[1] != 3 || v.shape[2] != v.shape[3])
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: tensor '%s%s' is not [W, 3, P, P]", v.file, c->bb.set.prefix,
                        nm->conv);
    if ((s = need(c, nm->proj, 2, &v))) return s;
    cfg->embed_dim = (int)v.shape[c->bb.hf ? 0 : 1];
    if ((s = need(c, nm->vpos, 2, &v))) return s;
    int g0 = 0;
    while ((int64_t)(g0 + 1) * (g0 + 1) + 1 <= v.shape[0]) g0++;
    if ((int64_t)g0 * g0 + 1 != v.shape[0])
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: tensor '%s%s' has %lld rows, not a square grid + 1", v.file,
                        c->bb.set.prefix, nm->vpos, (long long)v.shape[0]);
    cfg->native = g0 * cfg->patch;
    if ((s = need(c, nm->tok, 2, &v))) return s;
    cfg->vocab = (int)v.shape[0];
    cfg->t_width = (int)v.shape[1];
    if ((s = need(c, nm->tpos, 2, &v))) return s;
    cfg->context = (int)v.shape[0];
    cfg->v_layers = count_blocks(&c->bb.set, nm->vblock, nm->ln1);
    cfg->t_layers = count_blocks(&c->bb.set, nm->tblock, nm->ln1);
    if (cfg->v_layers < 1 || cfg->t_layers < 1)
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: tensor '%s%s0.%s' not found (no %s blocks)", c->bb.set.label,
                        c->bb.set.prefix, cfg->v_layers < 1 ? nm->vblock : nm->tblock, nm->ln1,
                        cfg->v_layers < 1 ? "vision" : "text");
    if (cfg->v_layers > 1024 || cfg->t_layers > 1024)
        return aac_fail(c->err, AAC_ERR_UNSUPPORTED, "%s: more than 1024 blocks", c->bb.set.label);
    const int hf = c->bb.hf;
    if ((s = agree(c, hf ? "projection_dim" : "embed_dim", st->embed_dim, cfg->embed_dim)) ||
        (s = agree(c, hf ? "vision_config.hidden_size" : "v_width", st->v_width, cfg->v_width)) ||
        (s = agree(c, hf ? "vision_config.num_hidden_layers" : "v_layers", st->v_layers, cfg->v_layers)) ||
        (s = agree(c, hf ? "vision_config.patch_size" : "patch", st->patch, cfg->patch)) ||
        (s = agree(c, hf ? "vision_config.image_size" : "native", st->native, cfg->native)) ||
        (s = agree(c, hf ? "text_config.hidden_size" : "t_width", st->t_width, cfg->t_width)) ||
        (s = agree(c, hf ? "text_config.num_hidden_layers" : "t_layers", st->t_layers, cfg->t_layers)) ||
        (s = agree(c, hf ? "text_config.vocab_size" : "vocab", st->vocab, cfg->vocab)) ||
        (s = agree(c, hf ? "text_config.max_position_embeddings" : "context", st->context, cfg->context)) ||
        (s = agree(c, "vision_config.intermediate_size", st->v_mlp, 4 * cfg->v_width)) ||
        (s = agree(c, "text_config.intermediate_size", st->t_mlp, 4 * cfg->t_width)))
        return s;
    if (cfg->context != AAC_CONTEXT_LENGTH)
        return aac_fail(c->err, AAC_ERR_UNSUPPORTED, "%s: text context %d (only %d supported)", c->bb.set.label,
                        cfg->context, AAC_CONTEXT_LENGTH);
    if ((s = settle_heads(c, cfg))) return s;
    if (c->p->image_size > 0) {
        cfg->img = c->p->image_size;
        s = note(c, "img", "--image-size %d", cfg->img);
    } else if (st->img) {
        cfg->img = st->img;
        s = note(c, "img", "stated by %s", st->from);
    } else {
        cfg->img = DEFAULT_RUN_SIZE;
        s = note(c, "img", "default %d (AA-CLIP's run size; the native size is %d)", cfg->img, cfg->native);
    }
    if (s) return s;
    if (cfg->img < cfg->patch || cfg->img > 8192)
        return aac_fail(c->err, AAC_ERR_ARG, "image size %d is out of range for patch %d", cfg->img, cfg->patch);
    return AAC_OK;
}

/* The activation rule (docs/bundle.md): --activation, else GELU when AA-CLIP adapters are in the
 * bundle (AA-CLIP builds CLIP with quick_gelu=False), else what the source states, else
 * QuickGELU (OpenAI's and Hugging Face's CLIP). */
static aac_status settle_activation(ctx *c, aac_config *cfg) {
    const stated *st = &c->bb.st;
    if (c->p->activation != AAC_ACT_DEFAULT) {
        cfg->activation = c->p->activation;
        return note(c, "activation", "--activation");
    }
    if (c->text.present || c->image.present) {
        cfg->activation = AAC_ACT_GELU;
        return note(c, "activation", "AA-CLIP adapters in the bundle: AA-CLIP builds CLIP with exact GELU "
                    "(quick_gelu=False) whatever the source says");
    }
    if (st->act != AAC_ACT_DEFAULT) {
        cfg->activation = st->act;
        return note(c, "activation", "stated by %s", st->from);
    }
    cfg->activation = AAC_ACT_QUICK_GELU;
    return note(c, "activation", "QuickGELU: %s states none (OpenAI CLIP)", c->bb.set.label);
}

/* ------------------------------------------------------------------ tensors */

static aac_status convert(ctx *c, const tview *v, const char *name, float *dst) {
    const unsigned char *p = v->data;
    switch (v->dtype) {
    case ST_F32: memcpy(dst, p, sizeof(float) * (size_t)v->numel); break;
    case ST_F16:
    case ST_BF16:
        for (int64_t i = 0; i < v->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = v->dtype == ST_F16 ? st_half_to_float(h) : st_bf16_to_float(h);
        }
        break;
    case ST_F64:
        for (int64_t i = 0; i < v->numel; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default:
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: tensor '%s' has dtype %s, expected a floating type", v->file,
                        name, st_dtype_name(v->dtype));
    }
    return AAC_OK;
}

/* Source tensor `name` of set s, checked against shape, as float32 into dst. */
static aac_status fetch(ctx *c, const tset *s, const char *name, int nd, const int64_t *shape, float *dst) {
    tview v;
    char full[512];
    snprintf(full, sizeof full, "%s%s", s->prefix, name);
    if (!tset_find(s, name, &v))
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: tensor '%s' not found", s->label, full);
    int ok = v.ndim == nd;
    for (int i = 0; ok && i < nd; i++) ok = v.shape[i] == shape[i];
    if (!ok) {
        char a[128], b[128];
        fmt_shape(a, sizeof a, v.ndim, v.shape);
        fmt_shape(b, sizeof b, nd, shape);
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", v.file, full, a, b);
    }
    return convert(c, &v, full, dst);
}

/* Hugging Face source of one canonical tensor: the name, and whether it is stored transposed. */
static const struct { const char *canon, *hf; int transpose; } k_hf_top[] = {
    {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight", 0},
    {"visual.class_embedding", "vision_model.embeddings.class_embedding", 0},
    {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight", 0},
    {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight", 0},
    {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias", 0},
    {"visual.ln_post.weight", "vision_model.post_layernorm.weight", 0},
    {"visual.ln_post.bias", "vision_model.post_layernorm.bias", 0},
    {"visual.proj", "visual_projection.weight", 1},
    {"token_embedding.weight", "text_model.embeddings.token_embedding.weight", 0},
    {"positional_embedding", "text_model.embeddings.position_embedding.weight", 0},
    {"ln_final.weight", "text_model.final_layer_norm.weight", 0},
    {"ln_final.bias", "text_model.final_layer_norm.bias", 0},
    {"text_projection", "text_projection.weight", 1},
};

static const struct { const char *canon, *hf; } k_hf_block[] = {
    {"ln_1.weight", "layer_norm1.weight"}, {"ln_1.bias", "layer_norm1.bias"},
    {"ln_2.weight", "layer_norm2.weight"}, {"ln_2.bias", "layer_norm2.bias"},
    {"attn.out_proj.weight", "self_attn.out_proj.weight"}, {"attn.out_proj.bias", "self_attn.out_proj.bias"},
    {"mlp.c_fc.weight", "mlp.fc1.weight"}, {"mlp.c_fc.bias", "mlp.fc1.bias"},
    {"mlp.c_proj.weight", "mlp.fc2.weight"}, {"mlp.c_proj.bias", "mlp.fc2.bias"},
};

/* Canonical tensor from Hugging Face names: renamed, q/k/v packed into in_proj, projections
 * transposed ([E, W] -> [W, E]). */
static aac_status fetch_hf(ctx *c, const char *canon, int nd, const int64_t *shape, float *dst) {
    const tset *s = &c->bb.set;
    for (size_t i = 0; i < sizeof k_hf_top / sizeof k_hf_top[0]; i++) {
        if (strcmp(canon, k_hf_top[i].canon)) continue;
        if (!k_hf_top[i].transpose) return fetch(c, s, k_hf_top[i].hf, nd, shape, dst);
        const int64_t r = shape[0], k = shape[1], ts[2] = {k, r};
        float *tmp = malloc(sizeof(float) * (size_t)(r * k));
        if (!tmp) return aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
        aac_status st = fetch(c, s, k_hf_top[i].hf, 2, ts, tmp);
        for (int64_t a = 0; !st && a < r; a++)
            for (int64_t b = 0; b < k; b++) dst[a * k + b] = tmp[b * r + a];
        free(tmp);
        return st;
    }
    int n, used = 0;
    const char *rest, *tower;
    if (sscanf(canon, "visual.transformer.resblocks.%d.%n", &n, &used) == 1 && used) {
        rest = canon + used, tower = "vision_model";
    } else if (sscanf(canon, "transformer.resblocks.%d.%n", &n, &used) == 1 && used) {
        rest = canon + used, tower = "text_model";
    } else {
        return aac_fail(c->err, AAC_ERR_ARG, "no Hugging Face name for '%s'", canon);
    }
    char name[256];
    for (size_t i = 0; i < sizeof k_hf_block / sizeof k_hf_block[0]; i++)
        if (!strcmp(rest, k_hf_block[i].canon)) {
            snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", tower, n, k_hf_block[i].hf);
            return fetch(c, s, name, nd, shape, dst);
        }
    int bias = !strcmp(rest, "attn.in_proj_bias");
    if (!bias && strcmp(rest, "attn.in_proj_weight"))
        return aac_fail(c->err, AAC_ERR_ARG, "no Hugging Face name for '%s'", canon);
    const int64_t part[2] = {shape[0] / 3, bias ? 0 : shape[1]};
    const size_t stride = (size_t)(part[0] * (bias ? 1 : part[1]));
    const char *qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int j = 0; j < 3; j++) {
        snprintf(name, sizeof name, "%s.encoder.layers.%d.self_attn.%s.%s", tower, n, qkv[j],
                 bias ? "bias" : "weight");
        aac_status st = fetch(c, s, name, bias ? 1 : 2, part, dst + j * stride);
        if (st) return st;
    }
    return AAC_OK;
}

typedef struct emitter {
    ctx *c;
    st_writer *w;
    int from_adapters; /* 0 backbone, 1 text part, 2 image part */
    aac_status s;
} emitter;

static void put(emitter *e, const char *canon, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (e->s) return;
    int64_t shape[4] = {d0, d1, d2, d3};
    int nd = 0;
    while (nd < 4 && shape[nd] > 0) nd++;
    size_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= (size_t)shape[i];
    float *buf = malloc(sizeof(float) * numel);
    if (!buf) {
        e->s = aac_fail(e->c->err, AAC_ERR_NOMEM, "out of memory for tensor '%s'", canon);
        return;
    }
    ctx *c = e->c;
    if (e->from_adapters)
        e->s = fetch(c, e->from_adapters == 1 ? &c->text.set : &c->image.set, canon, nd, shape, buf);
    else if (c->bb.hf)
        e->s = fetch_hf(c, canon, nd, shape, buf);
    else
        e->s = fetch(c, &c->bb.set, canon, nd, shape, buf);
    if (!e->s) e->s = st_writer_add(e->w, canon, ST_F32, nd, shape, buf, c->err);
    free(buf); /* the writer keeps its own copy: one tensor converted at a time */
}

static void put_block(emitter *e, const char *prefix, int i, int W) {
    char n[256];
#define P(suffix, d0, d1)                                  \
    snprintf(n, sizeof n, "%s%d.%s", prefix, i, suffix); \
    put(e, n, d0, d1, 0, 0);
    P("ln_1.weight", W, 0) P("ln_1.bias", W, 0)
    P("attn.in_proj_weight", 3 * W, W) P("attn.in_proj_bias", 3 * W, 0)
    P("attn.out_proj.weight", W, W) P("attn.out_proj.bias", W, 0)
    P("ln_2.weight", W, 0) P("ln_2.bias", W, 0)
    P("mlp.c_fc.weight", 4 * W, W) P("mlp.c_fc.bias", 4 * W, 0)
    P("mlp.c_proj.weight", W, 4 * W) P("mlp.c_proj.bias", W, 0)
#undef P
}

static aac_status emit_backbone(ctx *c, const aac_config *cfg, st_writer *w) {
    const int W = cfg->v_width, Wt = cfg->t_width, E = cfg->embed_dim, P = cfg->patch, g0 = cfg->native / P;
    emitter e = {c, w, 0, AAC_OK};
    put(&e, "visual.conv1.weight", W, 3, P, P);
    put(&e, "visual.class_embedding", W, 0, 0, 0);
    put(&e, "visual.positional_embedding", (int64_t)g0 * g0 + 1, W, 0, 0);
    put(&e, "visual.ln_pre.weight", W, 0, 0, 0);
    put(&e, "visual.ln_pre.bias", W, 0, 0, 0);
    for (int i = 0; i < cfg->v_layers; i++) put_block(&e, "visual.transformer.resblocks.", i, W);
    put(&e, "visual.ln_post.weight", W, 0, 0, 0);
    put(&e, "visual.ln_post.bias", W, 0, 0, 0);
    put(&e, "visual.proj", W, E, 0, 0);
    put(&e, "token_embedding.weight", cfg->vocab, Wt, 0, 0);
    put(&e, "positional_embedding", cfg->context, Wt, 0, 0);
    for (int i = 0; i < cfg->t_layers; i++) put_block(&e, "transformer.resblocks.", i, Wt);
    put(&e, "ln_final.weight", Wt, 0, 0, 0);
    put(&e, "ln_final.bias", Wt, 0, 0, 0);
    put(&e, "text_projection", Wt, E, 0, 0);
    if (e.s) return e.s;
    char js[512];
    snprintf(js, sizeof js,
             "{\"embed_dim\": %d, \"v_width\": %d, \"v_head_width\": %d, \"v_layers\": %d, "
             "\"patch\": %d, \"native\": %d, \"t_width\": %d, \"t_heads\": %d, \"t_layers\": %d, "
             "\"img\": %d, \"vocab\": %d, \"context\": %d}",
             E, W, cfg->v_head_width, cfg->v_layers, P, cfg->native, Wt, cfg->t_heads, cfg->t_layers,
             cfg->img, cfg->vocab, cfg->context);
    aac_status s;
    if ((s = st_writer_set_metadata(w, "format", "open_clip state_dict", c->err)) ||
        (s = st_writer_set_metadata(w, "config", js, c->err)) ||
        (s = st_writer_set_metadata(w, "activation",
                                    cfg->activation == AAC_ACT_QUICK_GELU ? "quick_gelu" : "gelu", c->err)))
        return s;
    return AAC_OK;
}

static int count_keys(const tset *s, const char *fmt) {
    char name[256];
    tview v;
    int n = 0;
    while (n < 1024) {
        snprintf(name, sizeof name, fmt, n);
        if (!tset_find(s, name, &v)) break;
        n++;
    }
    return n;
}

/* Metadata value of an adapter part that is a safetensors file (aaclip_adapters.safetensors). */
static const char *part_meta(const adapter_part *ap, const char *key) {
    return ap->set.files[0]->st ? st_metadata(ap->set.files[0]->st, key) : NULL;
}

/* Every tensor under `prefix` in the part must have been used: another adapter design
 * (extra modules) must not be half-read. */
static aac_status all_used(ctx *c, const adapter_part *ap, const char *prefix) {
    const sfile *f = ap->set.files[0];
    for (size_t i = 0, n = sf_count(f); i < n; i++) {
        const char *k = sf_name(f, i);
        if (!starts_with(k, prefix)) continue;
        int used = 0, idx, len = 0;
        if (sscanf(k, "text_adapter.%d.fc.0.weight%n", &idx, &len) == 1 && !k[len]) used = 1;
        else if (sscanf(k, "image_adapter.layer_adapters.%d.fc.0.weight%n", &idx, &len) == 1 && !k[len]) used = 1;
        else if (sscanf(k, "image_adapter.seg_proj.%d.fc.%n", &idx, &len) == 1 &&
                 (!strcmp(k + len, "weight") || !strcmp(k + len, "0.weight")))
            used = 1;
        else if (!strcmp(k, "image_adapter.det_proj.fc.weight") || !strcmp(k, "image_adapter.det_proj.fc.0.weight"))
            used = 1;
        if (!used)
            return aac_fail(c->err, AAC_ERR_UNSUPPORTED,
                            "%s: unexpected adapter tensor '%s' (not the AA-CLIP adapter layout)", f->path, k);
    }
    return AAC_OK;
}

static aac_status emit_adapters(ctx *c, aac_config *cfg, st_writer *w) {
    if (!c->text.present || !c->image.present)
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: %s adapters given without %s adapters (AA-CLIP needs both: "
                        "text_adapter.pth and image_adapter_<N>.pth)",
                        c->text.present ? c->text.set.label : c->image.set.label,
                        c->text.present ? "text" : "image", c->text.present ? "image" : "text");
    const int W = cfg->v_width, Wt = cfg->t_width, E = cfg->embed_dim;
    const tset *ts = &c->text.set, *is = &c->image.set;
    int nt = count_keys(ts, "text_adapter.%d.fc.0.weight");
    int nv = count_keys(is, "image_adapter.layer_adapters.%d.fc.0.weight");
    int ns0 = count_keys(is, "image_adapter.seg_proj.%d.fc.0.weight");
    int ns1 = count_keys(is, "image_adapter.seg_proj.%d.fc.weight");
    tview v;
    int det0 = tset_find(is, "image_adapter.det_proj.fc.0.weight", &v);
    int det1 = tset_find(is, "image_adapter.det_proj.fc.weight", &v);
    aac_status s;
    if ((s = all_used(c, &c->text, "text_adapter.")) || (s = all_used(c, &c->image, "image_adapter.")))
        return s;
    if (nt < 1)
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: tensor 'text_adapter.0.fc.0.weight' not found", ts->label);
    if ((ns0 && ns1) || (ns0 && det1) || (ns1 && det0) || (det0 && det1))
        return aac_fail(c->err, AAC_ERR_FORMAT, "%s: seg_proj/det_proj mix fc.weight and fc.0.weight (relu on "
                        "and off)", is->label);
    if (!ns0 && !ns1)
        return aac_fail(c->err, AAC_ERR_MISSING, "%s: tensor 'image_adapter.seg_proj.0.fc.weight' not found",
                        is->label);
    cfg->relu = ns0 > 0 || det0; /* fc.0.weight: LeakyReLU follows (train.py --relu) */
    const int ns = ns0 + ns1;
    if (nt - 1 > 32 || nv > 32 || nt - 1 > cfg->t_layers || nv > cfg->v_layers || ns > AAC_MAX_LEVELS)
        return aac_fail(c->err, AAC_ERR_SHAPE, "%s: %d text adapters, %d image adapters, %d levels: more than "
                        "the model has blocks for", is->label, nt - 1, nv, ns);
    cfg->text_adapt_until = nt - 1;
    cfg->image_adapt_until = nv;
    cfg->n_levels = ns;
    for (int k = 0; k < ns; k++) cfg->levels[k] = cfg->v_layers * (k + 1) / ns; /* 6/12/18/24 for 4 of 24 */
    cfg->text_adapt_weight = cfg->image_adapt_weight = 0.1f;                    /* train.py defaults */
    const char *lv = part_meta(&c->image, "levels"), *tw = part_meta(&c->text, "text_adapt_weight");
    const char *iw = part_meta(&c->image, "image_adapt_weight");
    if (tw) cfg->text_adapt_weight = strtof(tw, NULL);
    if (iw) cfg->image_adapt_weight = strtof(iw, NULL);
    if (lv) {
        json_error_t je;
        json_t *arr = json_loads(lv, 0, &je);
        int ok = json_is_array(arr) && (int)json_array_size(arr) == ns;
        for (int k = 0; ok && k < ns; k++) {
            json_t *x = json_array_get(arr, (size_t)k);
            ok = json_is_integer(x) && json_integer_value(x) >= 1 && json_integer_value(x) <= cfg->v_layers;
            if (ok) cfg->levels[k] = (int)json_integer_value(x);
        }
        json_decref(arr);
        if (!ok)
            return aac_fail(c->err, AAC_ERR_FORMAT, "%s: __metadata__ \"levels\" is not a list of %d block numbers "
                            "in 1..%d", is->label, ns, cfg->v_layers);
    }
    s = lv ? note(c, "levels", "stated by %s", is->label)
           : note(c, "levels", "%d evenly spaced (one per seg_proj; AA-CLIP: 6, 12, 18, 24 of 24 blocks)", ns);
    if (s) return s;
    emitter et = {c, w, 1, AAC_OK}, ei = {c, w, 2, AAC_OK};
    char n[128];
    for (int i = 0; i < nt - 1; i++) {
        snprintf(n, sizeof n, "text_adapter.%d.fc.0.weight", i);
        put(&et, n, Wt, Wt, 0, 0);
    }
    snprintf(n, sizeof n, "text_adapter.%d.fc.0.weight", nt - 1);
    put(&et, n, E, Wt, 0, 0);
    for (int i = 0; i < nv; i++) {
        snprintf(n, sizeof n, "image_adapter.layer_adapters.%d.fc.0.weight", i);
        put(&ei, n, W, W, 0, 0);
    }
    const char *fc = cfg->relu ? "fc.0.weight" : "fc.weight";
    for (int k = 0; k < ns; k++) {
        snprintf(n, sizeof n, "image_adapter.seg_proj.%d.%s", k, fc);
        put(&ei, n, E, W, 0, 0);
    }
    snprintf(n, sizeof n, "image_adapter.det_proj.%s", fc);
    put(&ei, n, E, W, 0, 0);
    if (et.s || ei.s) return et.s ? et.s : ei.s;
    char levels[128], a[32], b[32], tu[16], iu[16];
    int len = snprintf(levels, sizeof levels, "[");
    for (int k = 0; k < ns; k++)
        len += snprintf(levels + len, sizeof levels - (size_t)len, "%s%d", k ? ", " : "", cfg->levels[k]);
    snprintf(levels + len, sizeof levels - (size_t)len, "]");
    snprintf(a, sizeof a, "%.9g", cfg->text_adapt_weight);
    snprintf(b, sizeof b, "%.9g", cfg->image_adapt_weight);
    snprintf(tu, sizeof tu, "%d", cfg->text_adapt_until);
    snprintf(iu, sizeof iu, "%d", cfg->image_adapt_until);
    if ((s = st_writer_set_metadata(w, "format", "AA-CLIP adapter state_dicts", c->err)) ||
        (s = st_writer_set_metadata(w, "levels", levels, c->err)) ||
        (s = st_writer_set_metadata(w, "relu", cfg->relu ? "true" : "false", c->err)) ||
        (s = st_writer_set_metadata(w, "text_adapt_weight", a, c->err)) ||
        (s = st_writer_set_metadata(w, "image_adapt_weight", b, c->err)) ||
        (s = st_writer_set_metadata(w, "text_adapt_until", tu, c->err)) ||
        (s = st_writer_set_metadata(w, "image_adapt_until", iu, c->err)))
        return s;
    return AAC_OK;
}

/* ------------------------------------------------------------------ tokenizer */

/* --tokenizer: a merge list, vocab.json (merges.txt beside it) or a folder holding either. */
static aac_status settle_tokenizer(ctx *c, imp_result *r) {
    const char *t = c->p->tokenizer;
    aac_status s = AAC_OK;
    if (t) {
        free(c->tok_bpe), free(c->tok_vocab), free(c->tok_merges);
        c->tok_bpe = c->tok_vocab = c->tok_merges = NULL;
        if (is_dir(t)) {
            char *v = fs_join(t, "vocab.json"), *m = fs_join(t, "merges.txt");
            char *g = fs_join(t, "bpe_simple_vocab_16e6.txt.gz");
            if (v && m && is_file(v) && is_file(m)) c->tok_vocab = v, c->tok_merges = m, v = m = NULL;
            else if (g && is_file(g)) c->tok_bpe = g, g = NULL;
            else s = aac_fail(c->err, AAC_ERR_MISSING, "%s: no vocab.json + merges.txt or "
                              "bpe_simple_vocab_16e6.txt.gz in this folder", t);
            free(v), free(m), free(g);
        } else if (!is_file(t)) {
            s = aac_fail(c->err, AAC_ERR_IO, "%s: tokenizer file not found", t);
        } else if (fs_ends_with(t, ".json")) {
            char dir[1024];
            snprintf(dir, sizeof dir, "%s", t);
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0';
            else snprintf(dir, sizeof dir, ".");
            char *m = fs_join(dir, "merges.txt");
            if (m && is_file(m)) {
                c->tok_merges = m;
                if (!set_str(&c->tok_vocab, t)) s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
            } else {
                free(m);
                s = aac_fail(c->err, AAC_ERR_MISSING, "%s: merges.txt not found beside this vocab.json", t);
            }
        } else if (!set_str(&c->tok_bpe, t)) {
            s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
        }
        if (!s) s = note(c, "tokenizer", "--tokenizer %s", t);
    } else if (c->tok_bpe || c->tok_vocab) {
        s = note(c, "tokenizer", "from the sources: %s", c->tok_bpe ? c->tok_bpe : c->tok_vocab);
    } else if (c->p->default_tokenizer) {
        if (!set_str(&c->tok_bpe, c->p->default_tokenizer)) s = aac_fail(c->err, AAC_ERR_NOMEM, "out of memory");
        else s = note(c, "tokenizer", "default: %s", c->p->default_tokenizer);
    } else {
        s = aac_fail(c->err, AAC_ERR_MISSING, "no tokenizer among the sources: give one "
                     "(bpe_simple_vocab_16e6.txt.gz or vocab.json + merges.txt)");
    }
    if (!s) {
        r->tok_bpe = c->tok_bpe, r->tok_vocab = c->tok_vocab, r->tok_merges = c->tok_merges;
        c->tok_bpe = c->tok_vocab = c->tok_merges = NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ entry */

void imp_result_free(imp_result *r) {
    if (!r) return;
    st_writer_free(r->clip);
    st_writer_free(r->adapters);
    free(r->tok_bpe), free(r->tok_vocab), free(r->tok_merges);
    json_decref(r->sources);
    json_decref(r->settled);
    memset(r, 0, sizeof *r);
}

aac_status imp_collect(const char *const *sources, int n, const aac_import_params *p, imp_result *r,
                       aac_error *err) {
    if (!sources || n < 1 || !p || !r) return aac_fail(err, AAC_ERR_ARG, "import: no sources given");
    memset(r, 0, sizeof *r);
    ctx *c = calloc(1, sizeof *c);
    if (!c) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    c->p = p;
    c->err = err;
    c->sources = json_array();
    c->settled = json_object();
    aac_status s = c->sources && c->settled ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n; i++) {
        if (!sources[i]) s = aac_fail(err, AAC_ERR_ARG, "import: source %d is NULL", i);
        else s = open_source(c, sources[i]);
    }
    if (!s && !c->bb.present)
        s = aac_fail(err, AAC_ERR_MISSING, "no CLIP backbone among the sources (a Hugging Face folder, "
                     "a .pt/.bin/.safetensors with visual.* or vision_model.* tensors)");
    aac_config *cfg = &r->cfg;
    if (!s) s = settle_backbone(c, cfg);
    if (!s) s = settle_activation(c, cfg);
    if (!s && !(r->clip = st_writer_new())) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s) s = emit_backbone(c, cfg, r->clip);
    if (!s && (c->text.present || c->image.present)) {
        if (!(r->adapters = st_writer_new())) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        else s = emit_adapters(c, cfg, r->adapters);
    }
    if (!s) s = settle_tokenizer(c, r);
    if (!s) {
        r->sources = c->sources, r->settled = c->settled;
        c->sources = c->settled = NULL;
    }
    for (int i = 0; i < c->n_files; i++) {
        st_close(c->files[i]->st);
        ta_close(c->files[i]->ta);
        free(c->files[i]->path);
        free(c->files[i]);
    }
    free(c->tok_bpe), free(c->tok_vocab), free(c->tok_merges);
    json_decref(c->sources);
    json_decref(c->settled);
    free(c);
    if (s) imp_result_free(r);
    return s;
}
