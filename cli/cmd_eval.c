/* cmd_eval.c - aaclip eval: pixel and image AUROC / AP of a model bundle on a JSON-lines test
 * set, with the reference's protocol (aaclip_eval.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aaclip.h"
#include "aaclip_data.h"
#include "aaclip_eval.h"
#include "cli.h"
#include "cmd_train.h"
#include "fsutil.h"
#include "progress.h"

static void eval_help(void) {
    printf("usage: aaclip eval --model BUNDLE --data test.jsonl [--json FILE] [--csv FILE]\n"
           "                   [--domain medical|industrial] [--calibrate] [model options]\n"
           "\n"
           "Runs the adapted model on every line of the dataset and reports, per class and as the\n"
           "mean over classes, pixel AUROC / AP (every pixel of the run-size maps against the nearest-\n"
           "resized masks) and image AUROC / AP. As the reference: each class is one test set whose\n"
           "maps and detection scores are min-max normalised over the set; the image score is the\n"
           "map maximum (medical) or 0.5 map maximum + 0.5 detection score (industrial). Ties count\n"
           "as in scikit-learn. Values undefined for a class (no lesion, or no normal image) show '-'.\n"
           "Pixel F1-max: the best F1 (Dice) of lesion pixels over thresholds on the normalised map.\n"
           "Region F1-max: lesion-wise detection as `aaclip score` reports regions, over thresholds\n"
           "t = 0.01 .. 1 of the normalised map: a region (8-connected pixels >= t) is true when its\n"
           "centroid lies in a lesion of the mask; precision = true / all regions, recall = lesions\n"
           "with a true region / lesions. Lesions smaller than one patch of the model's grid at the\n"
           "run size are below the map's resolution and not counted.\n"
           "\n"
           "  --data FILE        JSON lines {image_path, label, class_name, mask_path}\n"
           "  --json FILE        results as JSON (fractions in 0..1, null when undefined)\n"
           "  --csv FILE         results as CSV, one row per class and a mean row\n"
           "  --domain D         medical or industrial for every class (default: the bundle's class\n"
           "                     table, else its default domain)\n"
           "  --calibrate        store the set's normalisation (raw map minimum and maximum), the\n"
           "                     region F1-max threshold and the pixel F1-max threshold in the\n"
           "                     bundle's model.json: `aaclip score` then maps every study to\n"
           "                     probabilities the same way, reports regions at the first and\n"
           "                     segments at both (the data must hold one class, with lesion masks)\n"
           "\n");
    model_opts_help();
}

static json_t *num_or_null(double v) { return isnan(v) ? json_null() : json_real(v); }

static json_t *class_json(const aac_eval_class *c) {
    json_t *o = json_object();
    json_object_set_new(o, "class", json_string(c->name));
    json_object_set_new(o, "domain", json_string(c->domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical"));
    json_object_set_new(o, "images", json_integer(c->n_images));
    json_object_set_new(o, "anomalous_images", json_integer(c->n_anomalous));
    json_object_set_new(o, "pixels", json_integer(c->n_pixels));
    json_object_set_new(o, "lesion_pixels", json_integer(c->n_lesion_pixels));
    json_object_set_new(o, "pixel_auroc", num_or_null(c->pixel_auroc));
    json_object_set_new(o, "pixel_ap", num_or_null(c->pixel_ap));
    json_object_set_new(o, "image_auroc", num_or_null(c->image_auroc));
    json_object_set_new(o, "image_ap", num_or_null(c->image_ap));
    json_object_set_new(o, "pixel_f1_max", num_or_null(c->pixel_f1_max));
    json_object_set_new(o, "pixel_f1_threshold", num_or_null(c->pixel_f1_threshold));
    json_object_set_new(o, "lesions", json_integer(c->n_lesions));
    json_object_set_new(o, "region_f1_max", num_or_null(c->region_f1_max));
    json_object_set_new(o, "region_threshold", num_or_null(c->region_threshold));
    json_object_set_new(o, "region_precision", num_or_null(c->region_precision));
    json_object_set_new(o, "region_recall", num_or_null(c->region_recall));
    json_object_set_new(o, "regions", json_integer(c->n_regions));
    json_object_set_new(o, "map_low", num_or_null(c->map_low));
    json_object_set_new(o, "map_high", num_or_null(c->map_high));
    return o;
}

/* text to path atomically; prints the problem */
static int write_atomic(const char *path, const char *text) {
    aac_error err;
    if (fs_write_atomic(path, text, strlen(text), &err) == AAC_OK) return 0;
    fprintf(stderr, "aaclip: %s\n", err.message);
    return -1;
}

static void fmt_pct(double v, char *buf, size_t cap) {
    if (isnan(v)) snprintf(buf, cap, "-");
    else snprintf(buf, cap, "%.2f", 100 * v);
}

static void print_row(const aac_eval_class *c) {
    char v[6][32];
    fmt_pct(c->pixel_auroc, v[0], 32), fmt_pct(c->pixel_ap, v[1], 32);
    fmt_pct(c->image_auroc, v[2], 32), fmt_pct(c->image_ap, v[3], 32), fmt_pct(c->pixel_f1_max, v[4], 32);
    fmt_pct(c->region_f1_max, v[5], 32);
    printf("%-24s %-10s %6d %9d %12s %9s %9s %9s %12s %9s\n", c->name,
           strcmp(c->name, "mean") ? (c->domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical") : "",
           c->n_images, c->n_anomalous, v[0], v[1], v[4], v[5], v[2], v[3]);
}

static int csv_row(char **buf, size_t *len, const aac_eval_class *c) {
    char line[900], v[9][40];
    const double x[9] = {c->pixel_auroc,   c->pixel_ap,      c->image_auroc,      c->image_ap,     c->pixel_f1_max,
                         c->region_f1_max, c->region_precision, c->region_recall, c->region_threshold};
    for (int k = 0; k < 9; k++) {
        if (isnan(x[k])) v[k][0] = 0;
        else snprintf(v[k], sizeof v[k], "%.10f", x[k]);
    }
    /* class names are quoted (they may hold commas) */
    char name[300];
    size_t q = 0;
    name[q++] = '"';
    for (const char *p = c->name; *p && q < sizeof name - 3; p++) {
        if (*p == '"') name[q++] = '"';
        name[q++] = *p;
    }
    name[q++] = '"', name[q] = 0;
    const int n = snprintf(line, sizeof line, "%s,%s,%d,%d,%lld,%lld,%s,%s,%s,%s,%s,%lld,%s,%s,%s,%s,%lld\n", name,
                           strcmp(c->name, "mean") ? (c->domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical") : "",
                           c->n_images, c->n_anomalous, (long long)c->n_pixels, (long long)c->n_lesion_pixels, v[0],
                           v[1], v[2], v[3], v[4], (long long)c->n_lesions, v[5], v[6], v[7], v[8],
                           (long long)c->n_regions);
    char *p = realloc(*buf, *len + (size_t)n + 1);
    if (!p) return -1;
    memcpy(p + *len, line, (size_t)n + 1);
    *buf = p, *len += (size_t)n;
    return 0;
}

/* --calibrate: the one class's normalisation and F1-max threshold into the bundle. */
static int store_calibration(const char *bundle, const char *data, const char *class_text, aac_domain domain,
                             const aac_eval_class *cls, int ncls) {
    if (ncls != 1) {
        fprintf(stderr, "aaclip eval: --calibrate needs a set of one class (this one has %d); calibrate on each "
                        "class's own set\n", ncls);
        return -1;
    }
    const aac_eval_class *c = &cls[0];
    if (isnan(c->pixel_f1_max) || !(c->pixel_f1_threshold > 0) || !(c->map_high > c->map_low)) {
        fprintf(stderr, "aaclip eval: cannot calibrate on %s: %s\n", data,
                isnan(c->pixel_f1_max) ? "no lesion pixels (masks needed)"
                : !(c->map_high > c->map_low) ? "every map value is the same"
                                              : "the best threshold flags every pixel (the map does not separate lesions)");
        return -1;
    }
    /* The threshold was chosen on float32 (x - min) / (max - min); one float step lower keeps the
     * pixel that set it above it when score computes p in double. Without a lesion large enough
     * for the region metric, regions are reported at the pixel threshold. */
    const int has_region = c->region_threshold > 0;
    aac_calibration cal = {.map_low = c->map_low, .map_high = c->map_high,
                           .threshold = nextafterf((float)c->pixel_f1_threshold, 0.0f),
                           .pixel_f1 = c->pixel_f1_max, .images = c->n_images};
    cal.region_threshold = has_region ? nextafterf((float)c->region_threshold, 0.0f) : cal.threshold;
    cal.region_f1 = has_region ? c->region_f1_max : NAN;
    if (strlen(class_text) >= sizeof cal.class_text || strlen(data) >= sizeof cal.data) {
        fprintf(stderr, "aaclip eval: --calibrate: the class description or the data path is too long to store\n");
        return -1;
    }
    snprintf(cal.class_name, sizeof cal.class_name, "%s", c->name);
    snprintf(cal.class_text, sizeof cal.class_text, "%s", class_text);
    cal.domain = domain;
    snprintf(cal.data, sizeof cal.data, "%s", data);
    aac_error err = {0};
    if (aac_bundle_set_calibration(bundle, &cal, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        return -1;
    }
    char region[160];
    if (has_region)
        snprintf(region, sizeof region, "region threshold %.2f (region F1 %.2f)", c->region_threshold,
                 100 * cal.region_f1);
    else
        snprintf(region, sizeof region, "no region threshold (no region centred in a lesion: regions at the pixel one)");
    printf("calibration stored in %s/model.json: raw map %.6g..%.6g -> probability 0..1, %s, pixel threshold %.4f "
           "(pixel F1 %.2f) on %d images\n",
           bundle, cal.map_low, cal.map_high, region, cal.threshold, 100 * cal.pixel_f1, cal.images);
    printf("(for the class description \"%s\", %s domain: `aaclip score` applies it when run with those)\n",
           cal.class_text, domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical");
    return 0;
}

typedef struct anchor { char *desc; float *T; } anchor;

int cmd_eval(int argc, char **argv) {
    model_opts mo;
    memset(&mo, 0, sizeof mo);
    mo.params = aac_model_default_params();
    const char *data = NULL, *json_path = NULL, *csv_path = NULL;
    int domain_set = 0, calibrate = 0;
    aac_domain domain = AAC_DOMAIN_MEDICAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = model_opts_parse(&mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            eval_help();
            return 0;
        }
        if (!strcmp(a, "--calibrate")) {
            calibrate = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "aaclip eval: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--csv")) csv_path = v;
        else if (!strcmp(a, "--domain")) {
            domain_set = 1;
            if (!strcmp(v, "medical")) domain = AAC_DOMAIN_MEDICAL;
            else if (!strcmp(v, "industrial")) domain = AAC_DOMAIN_INDUSTRIAL;
            else {
                fprintf(stderr, "aaclip eval: --domain expects medical or industrial, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "aaclip eval: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!mo.bundle || !data) {
        fprintf(stderr, "aaclip eval: --model BUNDLE and --data FILE are required\n");
        return 2;
    }
    /* the raw map's range depends on every setting of the model: a calibration holds for the
     * bundle as `aaclip score` opens it, so nothing may override it */
    if (calibrate && (mo.tokenizer || mo.params.image_size || mo.params.vision_head_width || mo.params.text_heads ||
                      mo.params.activation != AAC_ACT_DEFAULT)) {
        fprintf(stderr, "aaclip eval: --calibrate measures the bundle as stored: no --tokenizer, --image-size, "
                        "--vision-head-width, --text-heads or --activation with it\n");
        return 2;
    }
    if (mo.clip || mo.adapters) {
        fprintf(stderr, "aaclip eval: give the model as a bundle (--model; aaclip model import makes one)\n");
        return 2;
    }
    set_threads(mo.params.n_threads);

    aac_error err = {0};
    aac_bundle *b = NULL;
    aac_dataset *ds = NULL;
    aac_model *m = NULL;
    aac_tokenizer *tok = NULL;
    aac_eval *ev = NULL;
    aac_vision_out vo;
    memset(&vo, 0, sizeof vo);
    float *input = NULL, *map = NULL;
    uint8_t *mask = NULL;
    anchor *anchors = NULL;
    int n_anchors = 0, rc = 1;
    char *csv = NULL, *js = NULL;
    if (aac_bundle_open(mo.bundle, &b, &err) || aac_dataset_open(data, &ds, &err) || aac_eval_new(&ev, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        goto done;
    }
    if (model_opts_open(&mo, &m, &tok)) goto done;
    if (!aac_model_has_adapters(m)) {
        fprintf(stderr, "aaclip: %s has no AA-CLIP adapters (eval runs the adapted model)\n", mo.bundle);
        goto done;
    }
    const aac_config *c = aac_model_config(m);
    const int S = c->img, G = aac_model_grid(m), E = c->embed_dim, n = aac_dataset_count(ds);
    /* one patch at the run size: the map cannot resolve a smaller lesion */
    const int patch_px = (S + G - 1) / G;
    if (aac_eval_set_min_lesion_pixels(ev, (int64_t)patch_px * patch_px, &err)) goto fail;
    input = malloc(sizeof(float) * 3 * (size_t)S * S);
    map = malloc(sizeof(float) * (size_t)S * S);
    mask = malloc((size_t)S * S);
    vo.det_token = malloc(sizeof(float) * E);
    int ok = input && map && mask && vo.det_token;
    for (int k = 0; k < c->n_levels; k++) ok &= (vo.seg_tokens[k] = malloc(sizeof(float) * (size_t)G * G * E)) != NULL;
    if (!ok) {
        fprintf(stderr, "aaclip: out of memory\n");
        goto done;
    }
    progress pg;
    progress_start(&pg, "eval", n);
    for (int i = 0; i < n; i++) {
        const aac_sample *x = aac_dataset_sample(ds, i);
        aac_domain dom;
        const char *desc = aac_bundle_describe_class(b, NULL, x->class_name, &dom);
        if (domain_set) dom = domain;
        const float *T = NULL;
        for (int k = 0; k < n_anchors && !T; k++)
            if (!strcmp(anchors[k].desc, desc)) T = anchors[k].T;
        if (!T) { /* anchors depend only on the description: once each */
            anchor *p = realloc(anchors, sizeof *p * (n_anchors + 1));
            if (!p) goto oom;
            anchors = p;
            anchors[n_anchors].desc = strdup(desc);
            anchors[n_anchors].T = malloc(sizeof(float) * 2 * E);
            if (!anchors[n_anchors].desc || !anchors[n_anchors].T) {
                free(anchors[n_anchors].desc), free(anchors[n_anchors].T);
                goto oom;
            }
            n_anchors++;
            if (aac_text_anchors(m, tok, desc, 1, anchors[n_anchors - 1].T, &err)) goto fail;
            T = anchors[n_anchors - 1].T;
        }
        float score;
        if (aac_dataset_load(ds, i, S, NULL, 0, input, NULL, mask, &err) ||
            aac_encode_image(m, input, 1, &vo, &err) || aac_anomaly_maps(m, &vo, T, dom, NULL, map, &score, &err) ||
            aac_eval_add(ev, x->class_name, dom, map, mask, S, S, score, x->label, &err))
            goto fail;
        char info[64];
        snprintf(info, sizeof info, "images");
        progress_update(&pg, i + 1, info);
    }
    progress_finish(&pg, NULL);
    const aac_eval_class *cls;
    int ncls;
    aac_eval_class mean;
    if (aac_eval_compute(ev, &cls, &ncls, &mean, &err)) goto fail;

    printf("%-24s %-10s %6s %9s %12s %9s %9s %9s %12s %9s\n", "class", "domain", "images", "anomalous", "pixel AUROC",
           "pixel AP", "pixel F1", "region F1", "image AUROC", "image AP");
    for (int k = 0; k < ncls; k++) print_row(&cls[k]);
    if (ncls > 1) print_row(&mean);

    if (json_path) {
        json_t *root = json_object(), *arr = json_array();
        json_object_set_new(root, "model", json_string(mo.bundle));
        json_object_set_new(root, "data", json_string(data));
        json_object_set_new(root, "image_size", json_integer(S));
        for (int k = 0; k < ncls; k++) json_array_append_new(arr, class_json(&cls[k]));
        json_object_set_new(root, "classes", arr);
        json_object_set_new(root, "mean", class_json(&mean));
        js = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
        json_decref(root);
        if (!js) goto oom;
        const size_t l = strlen(js);
        char *p = realloc(js, l + 2);
        if (!p) goto oom;
        js = p;
        memcpy(js + l, "\n", 2);
        if (write_atomic(json_path, js)) goto done;
    }
    if (csv_path) {
        const char *head = "class,domain,images,anomalous_images,pixels,lesion_pixels,pixel_auroc,pixel_ap,"
                           "image_auroc,image_ap,pixel_f1_max,lesions,region_f1_max,region_precision,region_recall,"
                           "region_threshold,regions\n";
        size_t len = strlen(head);
        if (!(csv = strdup(head))) goto oom;
        for (int k = 0; k < ncls; k++)
            if (csv_row(&csv, &len, &cls[k])) goto oom;
        if (csv_row(&csv, &len, &mean)) goto oom;
        if (write_atomic(csv_path, csv)) goto done;
    }
    if (calibrate && store_calibration(mo.bundle, data, anchors[0].desc, cls[0].domain, cls, ncls)) goto done;
    rc = 0;
    goto done;
oom:
    fprintf(stderr, "aaclip: out of memory\n");
    goto done;
fail:
    fprintf(stderr, "\naaclip: %s\n", err.message);
done:
    for (int k = 0; k < n_anchors; k++) free(anchors[k].desc), free(anchors[k].T);
    free(anchors);
    for (int k = 0; k < AAC_MAX_LEVELS; k++) free(vo.seg_tokens[k]);
    free(vo.det_token);
    free(input), free(map), free(mask), free(csv), free(js);
    aac_eval_free(ev);
    aac_model_free(m);
    aac_tokenizer_free(tok);
    aac_dataset_free(ds);
    aac_bundle_free(b);
    return rc;
}
