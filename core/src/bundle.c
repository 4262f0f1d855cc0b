/* bundle.c - model bundles: a directory with model.json (every hyper-parameter, preprocessing,
 * default domain, class descriptions, provenance), clip.safetensors, adapters.safetensors and
 * the tokenizer files. Writing builds the whole directory under a temporary name, proves it
 * loads, then renames it into place; reading checks model.json against the weights. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "import.h"

#define JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9))

/* ------------------------------------------------------------------ built-in class table */

/* Spec appendix: the text inserted into the prompts for each class of the reference datasets
 * and the domain that picks the blur and the image-score rule. */
typedef struct class_desc { const char *name, *description; } class_desc;
typedef struct dataset_desc {
    const char *name;
    aac_domain domain;
    class_desc classes[16];
} dataset_desc;

static const dataset_desc k_datasets[] = {
    {"Brain", AAC_DOMAIN_MEDICAL, {{"Brain", "scan"}}},
    {"Liver", AAC_DOMAIN_MEDICAL, {{"Liver", "scan"}}},
    {"Retina", AAC_DOMAIN_MEDICAL, {{"Retina", "scan"}}},
    {"MVTec", AAC_DOMAIN_INDUSTRIAL,
     {{"bottle", "dark bottle"}, {"cable", "top view of three cables"},
      {"capsule", "black and orange capsule"}, {"carpet", "gray carpet"}, {"grid", "metal or plastic mesh"},
      {"hazelnut", "single brown hazelnut"}, {"leather", "brown leather"},
      {"metal_nut", "metal nut which has four notched edges"},
      {"pill", "oval white pill with small red speckles and the letters 'FF' engraved"}, {"screw", "screw"},
      {"tile", "speckled tile surface"}, {"transistor", "a three-legged transistor placed vertically"},
      {"toothbrush", "toothbrush head"}, {"wood", "wood surface"}, {"zipper", "a black zipper"}}},
    {"VisA", AAC_DOMAIN_INDUSTRIAL,
     {{"candle", "candle"}, {"pcb3", "infrared sensor pcb module"}, {"capsules", "capsules"},
      {"pipe_fryum", "pipe-shaped fryum"}, {"pcb4", "battery charging pcb module"},
      {"macaroni2", "scattered yellow macaroni"}, {"pcb2", "integrated circuits board"},
      {"chewinggum", "chewing gum"}, {"macaroni1", "orange macaroni"}, {"cashew", "cashew nut"},
      {"fryum", "wheel-shaped fryum snack"}, {"pcb1", "dual ultrasonic distance sensor pcb module"}}},
    {"Colon_clinicDB", AAC_DOMAIN_MEDICAL, {{"Colon_clinicDB", "colon endoscopy image"}}},
    {"Colon_colonDB", AAC_DOMAIN_MEDICAL, {{"Colon_colonDB", "colon endoscopy image"}}},
    {"Colon_cvc300", AAC_DOMAIN_MEDICAL, {{"CVC-300", "colon endoscopy image"}}},
    {"Colon_Kvasir", AAC_DOMAIN_MEDICAL, {{"Kvasir", "colon endoscopy image"}}},
    {"MPDD", AAC_DOMAIN_INDUSTRIAL,
     {{"connector", "metal clamps with black adjustment knobs"}, {"tubes", "scattered metal objects"},
      {"metal_plate", "blue rectangular metal plate with a notch on one side"},
      {"bracket_white", "white, elongated triangular metal bracket with a smooth, matte finish"},
      {"bracket_brown", "brown L-shaped metal bracket with smooth, glossy finish and multiple mounting "
                        "holes along its arms"},
      {"bracket_black", "black ornamental metal bracket with spiral design attached to a rectangular frame"}}},
    {"BTAD", AAC_DOMAIN_INDUSTRIAL,
     {{"01", "Bright concentric rings in neon yellow and blue tones against a dark blue background, "
             "resembling a stylized wave or energy field radiating outward."},
      {"02", "vertical fabric lines in warm, dusty pink and beige tones"},
      {"03", "oval concentric circular rings in gradient shades of blue and white"}}},
};

/* CLIP preprocessing (spec section 1). */
static const double k_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double k_std[3] = {0.26862954, 0.26130258, 0.27577711};

static const char *domain_name(aac_domain d) { return d == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical"; }

static int parse_domain(const char *s, aac_domain *d) {
    if (s && !strcasecmp(s, "medical")) *d = AAC_DOMAIN_MEDICAL;
    else if (s && !strcasecmp(s, "industrial")) *d = AAC_DOMAIN_INDUSTRIAL;
    else return 0;
    return 1;
}

/* ------------------------------------------------------------------ file helpers */

static aac_status copy_file(const char *from, const char *to, aac_error *err) {
    FILE *in = fopen(from, "rb");
    if (!in) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", to, strerror(errno));
    }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
    ok = ok && !ferror(in) && fflush(out) == 0 && fsync(fileno(out)) == 0;
    fclose(in);
    if (fclose(out) != 0) ok = 0;
    if (!ok) return aac_fail(err, AAC_ERR_IO, "%s: cannot copy to %s: %s", from, to, strerror(errno));
    return AAC_OK;
}

static int is_gzip(const char *path) {
    unsigned char m[2] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(m, 1, 2, f);
    fclose(f);
    return n == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

/* 1: empty folder, 0: has entries, -1: cannot read. */
static int dir_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty;
}

/* ------------------------------------------------------------------ model.json */

/* The shortest decimal that reads back as the same float: 0.1f is written 0.1, not 0.100000001. */
static double clean_real(float v) {
    char b[32];
    for (int prec = 6; prec < 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtof(b, NULL) == v) return strtod(b, NULL);
    }
    snprintf(b, sizeof b, "%.9g", v);
    return strtod(b, NULL);
}

static json_t *config_json(const aac_config *c, int adapters) {
    json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s}",
                          "embed_dim", c->embed_dim, "v_width", c->v_width, "v_head_width", c->v_head_width,
                          "v_layers", c->v_layers, "patch", c->patch, "native", c->native, "t_width",
                          c->t_width, "t_heads", c->t_heads, "t_layers", c->t_layers, "vocab", c->vocab,
                          "context", c->context, "img", c->img, "activation",
                          c->activation == AAC_ACT_QUICK_GELU ? "quick_gelu" : "gelu");
    if (!o) return NULL;
    if (!adapters) {
        json_object_set_new(o, "adapters", json_null());
        return o;
    }
    json_t *lv = json_array();
    for (int k = 0; lv && k < c->n_levels; k++) json_array_append_new(lv, json_integer(c->levels[k]));
    json_t *a = lv ? json_pack("{s:i, s:i, s:f, s:f, s:o, s:b}", "text_adapt_until", c->text_adapt_until,
                               "image_adapt_until", c->image_adapt_until, "text_adapt_weight",
                               clean_real(c->text_adapt_weight), "image_adapt_weight",
                               clean_real(c->image_adapt_weight), "levels", lv, "relu", c->relu)
                   : NULL;
    if (!a || json_object_set_new(o, "adapters", a)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *datasets_json(void) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < sizeof k_datasets / sizeof k_datasets[0]; i++) {
        const dataset_desc *d = &k_datasets[i];
        json_t *cls = json_object();
        for (int k = 0; cls && k < 16 && d->classes[k].name; k++)
            json_object_set_new(cls, d->classes[k].name, json_string(d->classes[k].description));
        json_t *o = cls ? json_pack("{s:s, s:s, s:o}", "name", d->name, "domain", domain_name(d->domain),
                                    "classes", cls)
                        : NULL;
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static aac_status write_json(json_t *root, const char *path, aac_error *err) {
    char *text = json_dumps(root, JSON_FLAGS);
    if (!text) return aac_fail(err, AAC_ERR_NOMEM, "%s: cannot serialise", path);
    FILE *f = fopen(path, "wb");
    int ok = f && fputs(text, f) >= 0 && fputc('\n', f) != EOF && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (f && fclose(f) != 0) ok = 0;
    free(text);
    if (!ok) return aac_fail(err, AAC_ERR_IO, "%s: cannot write: %s", path, strerror(e));
    return AAC_OK;
}

static aac_status write_model_json(const char *dir, const imp_result *r, const aac_config *c, int adapters,
                                   const char *tok_bpe_name, aac_error *err) {
    json_t *cfg = config_json(c, adapters);
    json_t *pre = json_pack("{s:i, s:s, s:s, s:[f,f,f], s:[f,f,f]}", "image_size", c->img, "resample",
                            "bicubic (Pillow, 8-bit, then /255)", "grey", "replicated to 3 channels", "mean",
                            k_mean[0], k_mean[1], k_mean[2], "std", k_std[0], k_std[1], k_std[2]);
    json_t *tok = tok_bpe_name ? json_pack("{s:s}", "bpe", tok_bpe_name)
                               : json_pack("{s:s, s:s}", "vocab", "vocab.json", "merges", "merges.txt");
    json_t *files = tok ? json_pack("{s:s, s:o}", "clip", "clip.safetensors", "tokenizer", tok) : NULL;
    /* json_pack takes the "o" references even when it fails */
    if (files && adapters) json_object_set_new(files, "adapters", json_string("adapters.safetensors"));
    json_t *ds = datasets_json();
    json_t *root = cfg && pre && files && ds
                       ? json_pack("{s:s, s:i, s:s, s:o, s:o, s:s, s:o, s:o, s:O, s:O}", "format",
                                   AAC_BUNDLE_FORMAT, "version", AAC_BUNDLE_VERSION, "producer",
                                   "aaclip " AAC_VERSION_STRING, "config", cfg, "preprocessing", pre,
                                   "default_domain", "medical", "datasets", ds, "files", files, "settled",
                                   r->settled, "sources", r->sources)
                       : NULL;
    if (!root) {
        if (!(cfg && pre && files && ds)) json_decref(cfg), json_decref(pre), json_decref(files), json_decref(ds);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    char *path = fs_join(dir, "model.json");
    aac_status s = path ? write_json(root, path, err) : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    free(path);
    json_decref(root);
    return s;
}

/* ------------------------------------------------------------------ import */

aac_import_params aac_import_default_params(void) {
    aac_import_params p;
    memset(&p, 0, sizeof p);
    p.activation = AAC_ACT_DEFAULT;
    return p;
}

/* Writes everything into tmp and proves that it loads. */
static aac_status build(const imp_result *r, const char *tmp, aac_error *err) {
    char *clip = fs_join(tmp, "clip.safetensors"), *ad = fs_join(tmp, "adapters.safetensors");
    char *bpe = NULL, *voc = NULL, *mer = NULL;
    const char *bpe_name = NULL;
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    aac_status s = clip && ad ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s) s = st_writer_save(r->clip, clip, err);
    if (!s && r->adapters) s = st_writer_save(r->adapters, ad, err);
    if (!s && r->tok_bpe) {
        bpe_name = is_gzip(r->tok_bpe) ? "bpe_simple_vocab_16e6.txt.gz" : "bpe_simple_vocab_16e6.txt";
        if (!(bpe = fs_join(tmp, bpe_name))) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        else if (!(s = copy_file(r->tok_bpe, bpe, err))) s = aac_tokenizer_open_bpe(bpe, &tok, err);
    } else if (!s) {
        voc = fs_join(tmp, "vocab.json"), mer = fs_join(tmp, "merges.txt");
        if (!voc || !mer) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        if (!s) s = copy_file(r->tok_vocab, voc, err);
        if (!s) s = copy_file(r->tok_merges, mer, err);
        if (!s) s = aac_tokenizer_open_hf(voc, mer, &tok, err);
    }
    /* the loader binds and shape-checks every tensor once more; its config goes to model.json */
    if (!s) s = aac_model_open(clip, r->adapters ? ad : NULL, NULL, &m, err);
    if (!s) s = write_model_json(tmp, r, aac_model_config(m), r->adapters != NULL, bpe_name, err);
    if (!s && fs_sync_dir(tmp) != 0)
        s = aac_fail(err, AAC_ERR_IO, "%s: cannot sync: %s", tmp, strerror(errno));
    aac_model_free(m);
    aac_tokenizer_free(tok);
    free(clip), free(ad), free(bpe), free(voc), free(mer);
    return s;
}

aac_status aac_import_bundle(const char *const *sources, int n_sources, const aac_import_params *params,
                             const char *out_dir, aac_error *err) {
    if (!sources || n_sources < 1 || !out_dir || !*out_dir)
        return aac_fail(err, AAC_ERR_ARG, "aac_import_bundle: no sources or no output folder");
    aac_import_params p = params ? *params : aac_import_default_params();
    char out[4096];
    snprintf(out, sizeof out, "%s", out_dir);
    for (size_t l = strlen(out); l > 1 && out[l - 1] == '/'; l--) out[l - 1] = '\0';
    struct stat sb;
    if (stat(out, &sb) == 0) {
        char *mj = fs_join(out, "model.json");
        int bundle = mj && stat(mj, &sb) == 0;
        int empty = dir_empty(out) == 1;
        free(mj);
        if (!empty && !bundle)
            return aac_fail(err, AAC_ERR_ARG, "%s exists and is not a model bundle; refusing to replace it", out);
        if (bundle && !p.force)
            return aac_fail(err, AAC_ERR_ARG, "%s: a model bundle already exists (use --force to replace it)", out);
    }
    imp_result r;
    aac_status s = imp_collect(sources, n_sources, &p, &r, err);
    if (s) return s;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    if (mkdir(tmp, 0755) != 0) {
        s = aac_fail(err, AAC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        imp_result_free(&r);
        return s;
    }
    s = build(&r, tmp, err);
    imp_result_free(&r);
    if (!s) s = fs_replace_dir(tmp, out, err); /* the old bundle stays until the new one is in place */
    if (s) fs_remove_tree(tmp);
    return s;
}

/* ------------------------------------------------------------------ reading */

struct aac_bundle {
    char *dir;
    char *text; /* model.json as stored */
    json_t *root;
    aac_config cfg;
    int has_adapters;
    aac_domain domain;
    char *clip, *adapters, *tok_bpe, *tok_vocab, *tok_merges;
    int has_calibration;
    aac_calibration cal;
};

void aac_bundle_free(aac_bundle *b) {
    if (!b) return;
    free(b->dir), free(b->text);
    json_decref(b->root);
    free(b->clip), free(b->adapters), free(b->tok_bpe), free(b->tok_vocab), free(b->tok_merges);
    free(b);
}

const aac_config *aac_bundle_config(const aac_bundle *b) { return &b->cfg; }
int aac_bundle_has_adapters(const aac_bundle *b) { return b->has_adapters; }
aac_domain aac_bundle_default_domain(const aac_bundle *b) { return b->domain; }
const char *aac_bundle_json(const aac_bundle *b) { return b->text; }

static aac_status read_text(const char *path, char **out, aac_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    size_t n;
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            char *t = cap < (64u << 20) ? realloc(s, cap *= 2) : NULL;
            if (!t) free(s);
            s = t;
        }
    }
    fclose(f);
    if (!s) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory or larger than 64 MiB", path);
    s[len] = '\0';
    *out = s;
    return AAC_OK;
}

static aac_status get_int(const char *path, json_t *obj, const char *where, const char *key, int *dst,
                          aac_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return aac_fail(err, AAC_ERR_MISSING, "%s: key \"%s%s\" missing", path, where, key);
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 1 << 24)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: \"%s%s\" is not a positive integer", path, where, key);
    *dst = (int)json_integer_value(v);
    return AAC_OK;
}

/* A file named in model.json: a plain name inside the bundle that exists. */
static aac_status bundle_file(const aac_bundle *b, const char *path, json_t *v, const char *key, char **out,
                              aac_error *err) {
    const char *name = json_string_value(v);
    if (!name) return aac_fail(err, AAC_ERR_MISSING, "%s: key \"%s\" missing or not a string", path, key);
    if (!*name || strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: \"%s\" must name a file inside the bundle", path, key);
    if (!(*out = fs_join(b->dir, name))) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    struct stat sb;
    if (stat(*out, &sb) != 0)
        return aac_fail(err, AAC_ERR_MISSING, "%s: file '%s' (\"%s\") not found in the bundle", path, name, key);
    return AAC_OK;
}

static aac_status parse_config(const char *path, json_t *cj, aac_config *c, int *has_adapters, aac_error *err) {
    if (!json_is_object(cj)) return aac_fail(err, AAC_ERR_MISSING, "%s: key \"config\" missing", path);
    struct { const char *key; int *dst; } keys[] = {
        {"embed_dim", &c->embed_dim}, {"v_width", &c->v_width}, {"v_head_width", &c->v_head_width},
        {"v_layers", &c->v_layers}, {"patch", &c->patch}, {"native", &c->native},
        {"t_width", &c->t_width}, {"t_heads", &c->t_heads}, {"t_layers", &c->t_layers},
        {"vocab", &c->vocab}, {"context", &c->context}, {"img", &c->img},
    };
    aac_status s;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((s = get_int(path, cj, "config.", keys[i].key, keys[i].dst, err))) return s;
    const char *act = json_string_value(json_object_get(cj, "activation"));
    if (act && !strcmp(act, "gelu")) c->activation = AAC_ACT_GELU;
    else if (act && !strcmp(act, "quick_gelu")) c->activation = AAC_ACT_QUICK_GELU;
    else return aac_fail(err, AAC_ERR_FORMAT, "%s: \"config.activation\" must be \"gelu\" or \"quick_gelu\"", path);
    json_t *a = json_object_get(cj, "adapters");
    *has_adapters = json_is_object(a);
    if (!*has_adapters) {
        if (a && !json_is_null(a))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: \"config.adapters\" must be an object or null", path);
        return AAC_OK;
    }
    if ((s = get_int(path, a, "config.adapters.", "text_adapt_until", &c->text_adapt_until, err)) ||
        (s = get_int(path, a, "config.adapters.", "image_adapt_until", &c->image_adapt_until, err)))
        return s;
    json_t *tw = json_object_get(a, "text_adapt_weight"), *iw = json_object_get(a, "image_adapt_weight");
    json_t *lv = json_object_get(a, "levels"), *relu = json_object_get(a, "relu");
    if (!json_is_number(tw) || !json_is_number(iw) || !json_is_boolean(relu) || !json_is_array(lv) ||
        json_array_size(lv) < 1 || json_array_size(lv) > AAC_MAX_LEVELS)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: \"config.adapters\" needs numbers text_adapt_weight and "
                        "image_adapt_weight, boolean relu and a list of 1..%d levels", path, AAC_MAX_LEVELS);
    c->text_adapt_weight = (float)json_number_value(tw);
    c->image_adapt_weight = (float)json_number_value(iw);
    c->relu = json_is_true(relu);
    c->n_levels = (int)json_array_size(lv);
    for (int k = 0; k < c->n_levels; k++) {
        json_t *x = json_array_get(lv, (size_t)k);
        if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > c->v_layers)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: config.adapters.levels[%d] is not a block number 1..%d",
                            path, k, c->v_layers);
        c->levels[k] = (int)json_integer_value(x);
    }
    return AAC_OK;
}

static aac_status parse_calibration(const char *path, json_t *c, aac_calibration *out, aac_error *err) {
    memset(out, 0, sizeof *out);
    json_t *lo = json_object_get(c, "map_low"), *hi = json_object_get(c, "map_high"),
           *t = json_object_get(c, "threshold");
    if (!json_is_object(c) || !json_is_number(lo) || !json_is_number(hi) || !json_is_number(t))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: \"calibration\" needs numbers map_low, map_high and threshold", path);
    out->map_low = json_number_value(lo);
    out->map_high = json_number_value(hi);
    out->threshold = json_number_value(t);
    if (!(out->map_high > out->map_low) || !isfinite(out->map_high) || !isfinite(out->map_low) ||
        !(out->threshold > 0 && out->threshold <= 1))
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: calibration needs map_high > map_low (finite) and a threshold in (0, 1], got %g, %g, %g",
                        path, out->map_low, out->map_high, out->threshold);
    json_t *f1 = json_object_get(c, "pixel_f1");
    out->pixel_f1 = json_is_number(f1) ? json_number_value(f1) : NAN;
    /* region threshold: optional (a calibration without one reports regions at the pixel threshold) */
    json_t *rt = json_object_get(c, "region_threshold"), *rf = json_object_get(c, "region_f1");
    out->region_threshold = out->threshold;
    if (rt && !(json_is_number(rt) && json_number_value(rt) > 0 && json_number_value(rt) <= 1))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: calibration \"region_threshold\" must be a number in (0, 1]", path);
    if (rt) out->region_threshold = json_number_value(rt);
    out->region_f1 = json_is_number(rf) ? json_number_value(rf) : NAN;
    out->images = (int)json_integer_value(json_object_get(c, "images"));
    const char *cls = json_string_value(json_object_get(c, "class")), *data = json_string_value(json_object_get(c, "data"));
    const char *text = json_string_value(json_object_get(c, "class_text"));
    if (!text || !*text)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: calibration needs \"class_text\", the class description it was measured with",
                        path);
    snprintf(out->class_name, sizeof out->class_name, "%s", cls ? cls : "");
    snprintf(out->class_text, sizeof out->class_text, "%s", text);
    json_t *dom = json_object_get(c, "domain");
    out->domain = AAC_DOMAIN_MEDICAL;
    if (dom && !parse_domain(json_string_value(dom), &out->domain))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: calibration \"domain\" must be \"medical\" or \"industrial\"", path);
    snprintf(out->data, sizeof out->data, "%s", data ? data : "");
    return AAC_OK;
}

int aac_bundle_calibration(const aac_bundle *b, aac_calibration *out) {
    if (!b || !b->has_calibration) return 0;
    if (out) *out = b->cal;
    return 1;
}

aac_status aac_bundle_set_calibration(const char *dir, const aac_calibration *c, aac_error *err) {
    if (!dir || !c) return aac_fail(err, AAC_ERR_ARG, "aac_bundle_set_calibration: NULL argument");
    if (!(c->map_high > c->map_low) || !(c->threshold > 0 && c->threshold <= 1) || c->region_threshold > 1)
        return aac_fail(err, AAC_ERR_ARG,
                        "calibration: map_high %g must exceed map_low %g, thresholds %g and %g in (0, 1]", c->map_high,
                        c->map_low, c->threshold, c->region_threshold);
    /* no region threshold (0 or NaN, as a caller unaware of it leaves it): regions at threshold */
    const double region_t = c->region_threshold > 0 ? c->region_threshold : c->threshold;
    if (!c->class_text[0]) return aac_fail(err, AAC_ERR_ARG, "calibration: no class description");
    aac_bundle *b;
    aac_status s = aac_bundle_open(dir, &b, err); /* a valid bundle before and after */
    if (s) return s;
    json_t *cj = json_pack("{s:f, s:f, s:f, s:o, s:f, s:o, s:i, s:s, s:s, s:s, s:s, s:s}", "map_low", c->map_low,
                           "map_high", c->map_high, "threshold", c->threshold, "pixel_f1",
                           isfinite(c->pixel_f1) ? json_real(c->pixel_f1) : json_null(), "region_threshold",
                           region_t, "region_f1",
                           isfinite(c->region_f1) ? json_real(c->region_f1) : json_null(), "images", c->images, "class",
                           c->class_name, "class_text", c->class_text, "domain", domain_name(c->domain), "data", c->data,
                           "mapping",
                           "p = clamp((raw - map_low) / (map_high - map_low), 0, 1)");
    char *path = fs_join(dir, "model.json"), tmp[4200];
    if (!cj) s = aac_fail(err, AAC_ERR_ARG, "calibration: the class, class text or data path is not valid UTF-8");
    else if (!path) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s) {
        json_object_set_new(b->root, "calibration", cj);
        cj = NULL;
        s = fs_tmp_path(path, tmp, sizeof tmp, err);
        if (!s && (s = write_json(b->root, tmp, err))) fs_discard(tmp);
        if (!s) s = fs_commit(tmp, path, err);
    }
    json_decref(cj);
    free(path);
    aac_bundle_free(b);
    return s;
}

aac_status aac_bundle_open(const char *dir, aac_bundle **out, aac_error *err) {
    if (!dir || !out) return aac_fail(err, AAC_ERR_ARG, "aac_bundle_open: NULL argument");
    *out = NULL;
    aac_bundle *b = calloc(1, sizeof *b);
    if (!b || !(b->dir = strdup(dir))) {
        free(b);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    char *path = fs_join(dir, "model.json");
    aac_status s = AAC_OK;
    struct stat sb;
    if (!path) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    else if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        s = aac_fail(err, AAC_ERR_IO, "%s: not a folder (a model bundle is a folder with model.json)", dir);
    else if (stat(path, &sb) != 0)
        s = aac_fail(err, AAC_ERR_MISSING, "%s: model.json not found (not a model bundle; build one with "
                     "'aaclip model import')", dir);
    else
        s = read_text(path, &b->text, err);
    json_error_t je;
    if (!s && !(b->root = json_loads(b->text, 0, &je)))
        s = aac_fail(err, AAC_ERR_FORMAT, "%s: line %d: %s", path, je.line, je.text);
    json_t *r = b->root;
    const char *fmt = s ? NULL : json_string_value(json_object_get(r, "format"));
    json_t *ver = s ? NULL : json_object_get(r, "version");
    if (!s && (!fmt || strcmp(fmt, AAC_BUNDLE_FORMAT)))
        s = aac_fail(err, AAC_ERR_FORMAT, "%s: \"format\" is not \"%s\"", path, AAC_BUNDLE_FORMAT);
    else if (!s && !json_is_integer(ver))
        s = aac_fail(err, AAC_ERR_FORMAT, "%s: \"version\" missing or not an integer", path);
    else if (!s && (json_integer_value(ver) < 1 || json_integer_value(ver) > AAC_BUNDLE_VERSION))
        s = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: bundle version %lld (this aaclip reads up to %d)", path,
                     (long long)json_integer_value(ver), AAC_BUNDLE_VERSION);
    if (!s) s = parse_config(path, json_object_get(r, "config"), &b->cfg, &b->has_adapters, err);
    if (!s) {
        json_t *d = json_object_get(r, "default_domain");
        b->domain = AAC_DOMAIN_MEDICAL;
        if (d && !parse_domain(json_string_value(d), &b->domain))
            s = aac_fail(err, AAC_ERR_FORMAT, "%s: \"default_domain\" must be \"medical\" or \"industrial\"", path);
    }
    json_t *files = s ? NULL : json_object_get(r, "files");
    if (!s && !json_is_object(files)) s = aac_fail(err, AAC_ERR_MISSING, "%s: key \"files\" missing", path);
    if (!s) s = bundle_file(b, path, json_object_get(files, "clip"), "files.clip", &b->clip, err);
    if (!s && b->has_adapters)
        s = bundle_file(b, path, json_object_get(files, "adapters"), "files.adapters", &b->adapters, err);
    json_t *tok = s ? NULL : json_object_get(files, "tokenizer");
    if (!s && !json_is_object(tok)) s = aac_fail(err, AAC_ERR_MISSING, "%s: key \"files.tokenizer\" missing", path);
    if (!s && json_object_get(tok, "bpe"))
        s = bundle_file(b, path, json_object_get(tok, "bpe"), "files.tokenizer.bpe", &b->tok_bpe, err);
    else if (!s) {
        s = bundle_file(b, path, json_object_get(tok, "vocab"), "files.tokenizer.vocab", &b->tok_vocab, err);
        if (!s)
            s = bundle_file(b, path, json_object_get(tok, "merges"), "files.tokenizer.merges", &b->tok_merges,
                            err);
    }
    if (!s && json_object_get(r, "calibration")) {
        s = parse_calibration(path, json_object_get(r, "calibration"), &b->cal, err);
        b->has_calibration = !s;
    }
    json_t *ds = s ? NULL : json_object_get(r, "datasets");
    if (!s && ds && !json_is_array(ds)) s = aac_fail(err, AAC_ERR_FORMAT, "%s: \"datasets\" is not a list", path);
    free(path);
    if (s) {
        aac_bundle_free(b);
        return s;
    }
    *out = b;
    return AAC_OK;
}

const char *aac_bundle_describe_class(const aac_bundle *b, const char *dataset, const char *class_name,
                                      aac_domain *domain) {
    if (domain) *domain = b ? b->domain : AAC_DOMAIN_MEDICAL;
    if (!b || !class_name) return class_name;
    json_t *ds = json_object_get(b->root, "datasets");
    size_t i;
    json_t *d;
    json_array_foreach(ds, i, d) {
        const char *name = json_string_value(json_object_get(d, "name"));
        if (dataset && (!name || strcasecmp(name, dataset))) continue;
        const char *desc = json_string_value(json_object_get(json_object_get(d, "classes"), class_name));
        if (!desc) continue;
        aac_domain dom;
        if (domain && parse_domain(json_string_value(json_object_get(d, "domain")), &dom)) *domain = dom;
        return desc;
    }
    return class_name;
}

/* model.json and the weights must describe the same model. */
static aac_status check_same(const aac_bundle *b, const aac_config *want, const aac_config *got, aac_error *err) {
    struct { const char *key; int a, b; } ints[] = {
        {"embed_dim", want->embed_dim, got->embed_dim}, {"v_width", want->v_width, got->v_width},
        {"v_layers", want->v_layers, got->v_layers}, {"patch", want->patch, got->patch},
        {"native", want->native, got->native}, {"t_width", want->t_width, got->t_width},
        {"t_layers", want->t_layers, got->t_layers}, {"vocab", want->vocab, got->vocab},
        {"context", want->context, got->context},
        {"adapters.text_adapt_until", want->text_adapt_until, got->text_adapt_until},
        {"adapters.image_adapt_until", want->image_adapt_until, got->image_adapt_until},
        {"adapters.relu", want->relu, got->relu}, {"adapters.levels (count)", want->n_levels, got->n_levels},
    };
    const int n = b->has_adapters ? (int)(sizeof ints / sizeof ints[0]) : 9;
    for (int i = 0; i < n; i++)
        if (ints[i].a != ints[i].b)
            return aac_fail(err, AAC_ERR_FORMAT, "%s/model.json: config.%s is %d but the weights give %d", b->dir,
                            ints[i].key, ints[i].a, ints[i].b);
    if (!b->has_adapters) return AAC_OK;
    for (int k = 0; k < want->n_levels; k++)
        if (want->levels[k] != got->levels[k])
            return aac_fail(err, AAC_ERR_FORMAT, "%s/model.json: config.adapters.levels[%d] is %d but "
                            "adapters.safetensors says %d", b->dir, k, want->levels[k], got->levels[k]);
    if (fabsf(want->text_adapt_weight - got->text_adapt_weight) > 1e-6f ||
        fabsf(want->image_adapt_weight - got->image_adapt_weight) > 1e-6f)
        return aac_fail(err, AAC_ERR_FORMAT, "%s/model.json: adapter weights differ from adapters.safetensors",
                        b->dir);
    return AAC_OK;
}

aac_status aac_bundle_load(const aac_bundle *b, const aac_model_params *params, aac_model **model,
                           aac_tokenizer **tok, aac_error *err) {
    if (!b || !model) return aac_fail(err, AAC_ERR_ARG, "aac_bundle_load: NULL argument");
    *model = NULL;
    if (tok) *tok = NULL;
    aac_model_params p = params ? *params : aac_model_default_params();
    /* model.json plays the part of the metadata: the caller's overrides still win */
    if (p.vision_head_width <= 0) p.vision_head_width = b->cfg.v_head_width;
    if (p.text_heads <= 0) p.text_heads = b->cfg.t_heads;
    if (p.image_size <= 0) p.image_size = b->cfg.img;
    if (p.activation == AAC_ACT_DEFAULT) p.activation = b->cfg.activation;
    aac_status s = aac_model_open(b->clip, b->adapters, &p, model, err);
    if (!s) s = check_same(b, &b->cfg, aac_model_config(*model), err);
    if (!s && tok)
        s = b->tok_bpe ? aac_tokenizer_open_bpe(b->tok_bpe, tok, err)
                       : aac_tokenizer_open_hf(b->tok_vocab, b->tok_merges, tok, err);
    if (s) {
        aac_model_free(*model);
        *model = NULL;
    }
    return s;
}

aac_status aac_model_open_bundle(const char *dir, const aac_model_params *params, aac_model **model,
                                 aac_tokenizer **tok, aac_error *err) {
    aac_bundle *b;
    aac_status s = aac_bundle_open(dir, &b, err);
    if (s) return s;
    s = aac_bundle_load(b, params, model, tok, err);
    aac_bundle_free(b);
    return s;
}
