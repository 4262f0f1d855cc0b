/* aaclip.h - public API of libaaclip, the AA-CLIP inference core.
 *
 * Conventions (SQLite/libcurl style): every call returns an aac_status; on failure the
 * aac_error passed in (may be NULL) receives the code and a message naming the file,
 * tensor or argument at fault. Handles are opaque; there is no global mutable state.
 * All tensors are float32, row-major, in the shapes written above each function.
 *
 * One 8-bit slice through the engine (error checks shortened; every call returns a status):
 *
 *   aac_error err;
 *   aac_model *m;
 *   aac_tokenizer *tok;
 *   aac_model_params mp = aac_model_default_params();
 *   if (aac_model_open_bundle("aaclip-vitl14-336-visa", &mp, &m, &tok, &err))
 *       fprintf(stderr, "%s\n", err.message);
 *   const aac_config *c = aac_model_config(m);
 *   const int S = c->img, E = c->embed_dim, Np = aac_model_grid(m) * aac_model_grid(m);
 *   float *T = malloc(sizeof(float) * 2 * E);               // anchors: normal, abnormal
 *   aac_text_anchors(m, tok, "liver", 1, T, &err);          // once per class text
 *   float *input = malloc(sizeof(float) * 3 * S * S), *map = malloc(sizeof(float) * S * S);
 *   aac_preprocess_grey(pixels, w, h, S, input, &err);      // uint8_t pixels[h * w]
 *   aac_vision_out v = {0};
 *   for (int k = 0; k < c->n_levels; k++) v.seg_tokens[k] = malloc(sizeof(float) * Np * E);
 *   v.det_token = malloc(sizeof(float) * E);
 *   float det;
 *   aac_encode_image(m, input, 1, &v, &err);
 *   aac_anomaly_maps(m, &v, T, AAC_DOMAIN_MEDICAL, NULL, map, &det, &err);  // map [S x S]
 *   ...
 *   aac_tokenizer_free(tok);
 *   aac_model_free(m);
 *
 * Whole studies (DICOM series, NIfTI/NRRD volumes) and result files: aaclip_score.h.
 * Build against the installed library with `pkg-config --cflags --libs aaclip` or CMake's
 * `find_package(aaclip)` + `target_link_libraries(app aaclip::aaclip)` (docs/examples/).
 */
#ifndef AACLIP_H
#define AACLIP_H

#include <stddef.h>
#include <stdint.h>

#include "aaclip_version.h" /* AAC_VERSION_STRING, _MAJOR, _MINOR, _PATCH: from CMake's project() */

#ifdef __cplusplus
extern "C" {
#endif

#define AAC_CONTEXT_LENGTH 77
#define AAC_MAX_LEVELS 8

typedef enum aac_status {
    AAC_OK = 0,
    AAC_ERR_ARG,         /* invalid argument from the caller */
    AAC_ERR_IO,          /* a file could not be opened, read, mapped or written */
    AAC_ERR_FORMAT,      /* a file is malformed (truncated, bad JSON, bad offsets, ...) */
    AAC_ERR_MISSING,     /* a required tensor or key is absent */
    AAC_ERR_SHAPE,       /* a tensor has the wrong dtype or shape */
    AAC_ERR_NOMEM,       /* allocation failed */
    AAC_ERR_UNSUPPORTED, /* valid input that this build cannot handle */
    AAC_ERR_INTERRUPTED  /* the caller's abort callback asked to stop */
} aac_status;

typedef struct aac_error {
    aac_status code;
    char message[512];
} aac_error;

/* The library's version (AAC_VERSION_STRING of the build; may differ from the header used). */
const char *aac_version(void);
const char *aac_status_name(aac_status s);

/* <aaclip's data folder>/<name> into out (cap bytes): the files an installation ships, e.g.
 * "bpe_simple_vocab_16e6.txt.gz" (CLIP's tokenizer), "demo-model" (a synthetic demonstration
 * bundle, not for clinical use), "sample-study". The folder is $AACLIP_DATA_DIR when set, else
 * <prefix>/share/aaclip of the installation holding the running program or libaaclip, found
 * from their place on disk (no build-time path). AAC_ERR_MISSING naming where it looked. */
aac_status aac_data_path(const char *name, char *out, size_t cap, aac_error *err);

/* ---------------------------------------------------------------- tokenizer */
typedef struct aac_tokenizer aac_tokenizer;

/* OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip or plain text merge list). */
aac_status aac_tokenizer_open_bpe(const char *path, aac_tokenizer **out, aac_error *err);
/* Hugging Face vocab.json + merges.txt. */
aac_status aac_tokenizer_open_hf(const char *vocab_json, const char *merges_txt,
                                 aac_tokenizer **out, aac_error *err);
/* ids[AAC_CONTEXT_LENGTH]: <sot> tokens <eot>, zero-padded; cut to 77 with <eot> last. */
aac_status aac_tokenizer_encode(const aac_tokenizer *tok, const char *text,
                                int32_t ids[AAC_CONTEXT_LENGTH], aac_error *err);
void aac_tokenizer_free(aac_tokenizer *tok);

/* ---------------------------------------------------------------- model */
typedef enum aac_activation {
    AAC_ACT_DEFAULT = 0, /* from the file's metadata, else GELU (AA-CLIP builds CLIP with GELU) */
    AAC_ACT_GELU,
    AAC_ACT_QUICK_GELU
} aac_activation;

typedef enum aac_domain { AAC_DOMAIN_MEDICAL = 0, AAC_DOMAIN_INDUSTRIAL = 1 } aac_domain;

/* Hyper-parameters of a CLIP + AA-CLIP model. Zero means "not set". */
typedef struct aac_config {
    int embed_dim;      /* E */
    int v_width;        /* W_v */
    int v_head_width;   /* vision head width (64 in OpenAI models) */
    int v_layers;
    int patch;          /* P */
    int native;         /* native input size (grid of the stored position embedding * P) */
    int t_width;        /* W_t */
    int t_heads;
    int t_layers;
    int vocab;
    int context;
    int img;            /* run size S */
    aac_activation activation;
    /* AA-CLIP adapter options */
    int text_adapt_until;   /* 3 */
    int image_adapt_until;  /* 6 */
    float text_adapt_weight;  /* 0.1 */
    float image_adapt_weight; /* 0.1 */
    int n_levels;             /* 4 */
    int levels[AAC_MAX_LEVELS]; /* 1-based block numbers: 6, 12, 18, 24 */
    int relu;                 /* LeakyReLU after seg/det projections (off in published runs) */
} aac_config;

/* Precision of the weight products. bf16: the vision tower's attention out-projection and MLP
 * products take bfloat16 weights and activations (float32 accumulation); the q/k/v projection,
 * attention, patch embedding, text tower, norms and maps stay float32. Needs a backend with
 * bf16 products (the built-in one has none). */
typedef enum aac_precision { AAC_PRECISION_F32 = 0, AAC_PRECISION_BF16 = 1 } aac_precision;

/* Compute-backend plugins found on disk (aaclip_backend.h). */
typedef struct aac_plugins aac_plugins;

typedef struct aac_model_params {
    int vision_head_width; /* override, 0 = metadata or 64 */
    int text_heads;        /* override, 0 = metadata or t_width/64 */
    int image_size;        /* run size override, 0 = metadata or 518 */
    aac_activation activation;
    int n_threads;         /* 0 = library default */
    /* Compute backend: NULL or "auto" = the fastest backend exact enough for `precision`,
     * measured on the model's own product shapes (models too small for the choice to matter
     * keep the built-in one); "openblas" = the built-in reference; else a plugin's name. */
    const char *backend;
    aac_precision precision;    /* AAC_PRECISION_F32 by default */
    const aac_plugins *plugins; /* where plugins come from; NULL: the default search path */
} aac_model_params;

aac_model_params aac_model_default_params(void);

typedef struct aac_model aac_model;

/* Opens a CLIP backbone (open_clip/OpenAI names, safetensors) and, optionally, AA-CLIP adapters
 * (aaclip_adapters.safetensors names). adapters_path may be NULL for plain CLIP. */
aac_status aac_model_open(const char *clip_path, const char *adapters_path,
                          const aac_model_params *params, aac_model **out, aac_error *err);
/* A model with random weights of the given shape (benchmarks, tests). */
aac_status aac_model_random(const aac_config *cfg, uint64_t seed, aac_model **out, aac_error *err);
/* Writes the model in the canonical layout: clip_path gets the backbone (open_clip names,
 * __metadata__ config), adapters_path the AA-CLIP adapters; either may be NULL. Atomic. */
aac_status aac_model_save(const aac_model *m, const char *clip_path, const char *adapters_path,
                          aac_error *err);
void aac_model_free(aac_model *m);
const aac_config *aac_model_config(const aac_model *m);
int aac_model_has_adapters(const aac_model *m);
int aac_model_grid(const aac_model *m); /* G = S / P */

/* Switches the model's compute backend (name and precision as in aac_model_params; p NULL: the
 * default plugin search path). Weights are prepared for the new backend; on failure the model
 * keeps the backend it had. */
aac_status aac_model_set_backend(aac_model *m, const aac_plugins *p, const char *backend,
                                 aac_precision precision, aac_error *err);
/* The backend in use, one line: name, precision, kernels, and how `auto` chose it. */
const char *aac_model_backend(const aac_model *m);
/* Its name ("openblas", a plugin's) and precision. */
const char *aac_model_backend_name(const aac_model *m);
aac_precision aac_model_precision(const aac_model *m);
/* "f32" or "bf16"; aac_precision_parse returns -1 for anything else. */
const char *aac_precision_name(aac_precision p);
int aac_precision_parse(const char *s, aac_precision *out);

/* Position embedding after resizing to the run grid: out [(G*G+1) * W_v]. */
aac_status aac_model_pos_embed(const aac_model *m, const float **out, aac_error *err);

/* ---------------------------------------------------------------- model bundles */
/* A model bundle is a directory: model.json (format, every hyper-parameter, preprocessing,
 * default domain, class descriptions, provenance), clip.safetensors (canonical open_clip
 * names), adapters.safetensors (AA-CLIP adapters, absent for plain CLIP) and the tokenizer
 * files. See docs/bundle.md. */
#define AAC_BUNDLE_FORMAT "aaclip-model-bundle"
#define AAC_BUNDLE_VERSION 1

typedef struct aac_import_params {
    const char *tokenizer;         /* bpe_simple_vocab_16e6.txt(.gz), vocab.json (merges.txt beside
                                      it) or a folder holding either; NULL: from the sources */
    const char *default_tokenizer; /* used when neither `tokenizer` nor a source gives one */
    int epoch;                     /* AA-CLIP checkpoint folder: image_adapter_<epoch>.pth;
                                      0 = the highest epoch present */
    int force;                     /* replace an existing bundle */
    int vision_head_width;         /* overrides for what a source does not state; 0 = unset */
    int text_heads;
    int image_size;                /* run size S */
    aac_activation activation;
} aac_import_params;

aac_import_params aac_import_default_params(void);

/* Builds the bundle out_dir from sources, any mix of: Hugging Face CLIPModel folders
 * (config.json + model.safetensors, sharded safetensors or pytorch_model.bin), safetensors
 * with open_clip, Hugging Face or aaclip adapter names, PyTorch zip checkpoints (torch.save
 * state dicts, TorchScript archives such as OpenAI's ViT-L-14-336px.pt, AA-CLIP's
 * text_adapter.pth / image_adapter_<N>.pth), AA-CLIP checkpoint folders and other bundles.
 * Exactly one CLIP backbone; adapters optional. Built in out_dir.tmp.<pid>, then renamed. */
aac_status aac_import_bundle(const char *const *sources, int n_sources, const aac_import_params *p,
                             const char *out_dir, aac_error *err);

typedef struct aac_bundle aac_bundle;

/* Reads and checks dir/model.json (format, version, config, files present). */
aac_status aac_bundle_open(const char *dir, aac_bundle **out, aac_error *err);
void aac_bundle_free(aac_bundle *b);
/* Configuration as model.json states it. */
const aac_config *aac_bundle_config(const aac_bundle *b);
int aac_bundle_has_adapters(const aac_bundle *b);
aac_domain aac_bundle_default_domain(const aac_bundle *b);
/* model.json as stored (for display). */
const char *aac_bundle_json(const aac_bundle *b);
/* Class description and domain for a dataset class name (dataset may be NULL: any dataset);
 * an unknown class gives its own name and the bundle's default domain. domain may be NULL. */
const char *aac_bundle_describe_class(const aac_bundle *b, const char *dataset, const char *class_name,
                                      aac_domain *domain);
/* Calibration of the raw anomaly map, measured on a labelled set by `aaclip eval --calibrate`
 * and stored in model.json: the reference's set-level min-max normalisation frozen as a fixed
 * mapping p = clamp((raw - map_low) / (map_high - map_low), 0, 1), so that probabilities and
 * thresholds mean the same in every study, the threshold on p of the best pixel F1 (Dice) on
 * that set and the threshold of its best lesion-wise detection F1 (regions centred in lesions,
 * aaclip_eval.h), where `aaclip score` reports regions. Valid only for the weights it was
 * measured with (training writes a bundle without one). */
typedef struct aac_calibration {
    double map_low, map_high;  /* map_high > map_low */
    double threshold;          /* in (0, 1] */
    double pixel_f1;           /* F1 reached at threshold on the calibration set */
    double region_threshold;   /* in (0, 1]; read without one, or written as 0 or NaN: threshold */
    double region_f1;          /* lesion-wise F1 reached there (NaN: not measured) */
    int images;                /* images of the calibration set */
    char class_name[128];      /* the set's class */
    char class_text[256];      /* its description in the prompts and the domain (map blur): */
    aac_domain domain;         /* the raw map depends on both */
    char data[1024];           /* the dataset file, as given */
} aac_calibration;

/* 1 and *out filled when the bundle carries a calibration, else 0 (out may be NULL). A malformed
 * "calibration" makes aac_bundle_open fail, naming model.json. */
int aac_bundle_calibration(const aac_bundle *b, aac_calibration *out);
/* Stores c in dir/model.json (replacing one present); the file is rewritten to a temporary
 * name and renamed. */
aac_status aac_bundle_set_calibration(const char *dir, const aac_calibration *c, aac_error *err);

/* Opens the bundle's model (params override model.json as they override metadata) and, when
 * tok != NULL, its tokenizer. */
aac_status aac_bundle_load(const aac_bundle *b, const aac_model_params *params, aac_model **model,
                           aac_tokenizer **tok, aac_error *err);
/* aac_bundle_open + aac_bundle_load + aac_bundle_free. tok may be NULL. */
aac_status aac_model_open_bundle(const char *dir, const aac_model_params *params, aac_model **model,
                                 aac_tokenizer **tok, aac_error *err);

/* ---------------------------------------------------------------- text */
/* Per-sentence text embedding [E], unnormalised. adapted=1: AA-CLIP text adapters + B
 * projection with LeakyReLU; adapted=0: plain CLIP with text_projection. */
aac_status aac_encode_text(aac_model *m, const int32_t ids[AAC_CONTEXT_LENGTH], int adapted,
                           float *out, aac_error *err);
/* Anomaly-aware anchors T [E x 2] (row-major: T[e*2+0] normal, T[e*2+1] abnormal) for a class
 * description, with the prompt ensemble. */
aac_status aac_text_anchors(aac_model *m, const aac_tokenizer *tok, const char *description,
                            int adapted, float *T, aac_error *err);

/* ---------------------------------------------------------------- image */
/* Pillow-exact bicubic resize of an 8-bit image with `channels` interleaved channels. */
aac_status aac_resize_u8(const uint8_t *src, int sw, int sh, int channels,
                         uint8_t *dst, int dw, int dh, aac_error *err);
/* 8-bit grey [h*w] -> model input [3*S*S] (resize + /255 + CLIP mean/std). */
aac_status aac_preprocess_grey(const uint8_t *grey, int w, int h, int S, float *out, aac_error *err);
/* 8-bit RGB interleaved [h*w*3] -> model input [3*S*S]. */
aac_status aac_preprocess_rgb(const uint8_t *rgb, int w, int h, int S, float *out, aac_error *err);

/* Results of the adapted vision tower for one image. Buffers are owned by the caller. */
typedef struct aac_vision_out {
    float *seg_tokens[AAC_MAX_LEVELS]; /* each [Np * E], F_k (L2-normalised), may be NULL */
    float *det_token;                  /* [E], d (mean of normalised tokens), may be NULL */
    float *cls_embed;                  /* [E], plain CLIP image embedding (no adapters), may be NULL */
    float *patch_proj;                 /* [Np * E], plain ln_post(patches) @ proj, may be NULL */
} aac_vision_out;

/* image [3*S*S] normalised. adapted=1 runs the AA-CLIP vision adapters (seg/det outputs);
 * adapted=0 runs plain CLIP (cls_embed, patch_proj). */
aac_status aac_encode_image(aac_model *m, const float *image, int adapted,
                            aac_vision_out *out, aac_error *err);

/* Maps. level_maps[k] [S*S] may be NULL; sum [S*S]; *score_det = (d.T_abn + 1) / 2. */
aac_status aac_anomaly_maps(aac_model *m, const aac_vision_out *v, const float *T,
                            aac_domain domain, float **level_maps, float *sum,
                            float *score_det, aac_error *err);
/* The reference's image-level score from a map's maximum and score_det: the maximum (medical),
 * or their mean (industrial). */
float aac_image_score(aac_domain domain, float map_max, float score_det);

#ifdef __cplusplus
}
#endif
#endif
