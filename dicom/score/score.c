/* score.c - the scorer (model, anchors, calibration, buffers) and one series or picture from
 * its source to a complete results folder: slices normalised, air-only slices skipped, the
 * engine's maps placed back on the source grid, outputs written into a temporary folder with
 * result.json last, then renamed into place. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "score_internal.h"

enum { MAX_LISTED_REGIONS = 1000 };

/* ---------------------------------------------------------------- parameters */

aac_score_params aac_score_default_params(void) {
    aac_score_params p;
    memset(&p, 0, sizeof p);
    p.domain = -1;
    p.norm = aac_norm_default_params();
    p.formats = AAC_FORMAT_ALL;
    p.use_calibration = 1;
    p.batch_slices = 8;
    p.pictures = AAC_PICTURES_AUTO;
    p.anchor_cache = 1;
    return p;
}

aac_status aac_score_formats_parse(const char *list, int *mask, aac_error *err) {
    static const struct { const char *name; int bits; } k[] = {
        {"seg", AAC_FORMAT_SEG},
        {"pmap", AAC_FORMAT_PMAP},
        {"sr", AAC_FORMAT_SR | AAC_FORMAT_SEG},           /* the SR references the SEG */
        {"nifti", AAC_FORMAT_NIFTI},
        {"nrrd", AAC_FORMAT_NRRD},
        {"scene", AAC_FORMAT_SCENE | AAC_FORMAT_NRRD},    /* the scene points at the NRRDs */
        {"png", AAC_FORMAT_PNG},
        {"all", AAC_FORMAT_ALL},
    };
    int f = 0;
    for (const char *p = list ? list : ""; *p;) {
        const char *end = strchr(p, ',');
        const size_t n = end ? (size_t)(end - p) : strlen(p);
        size_t i = 0;
        while (i < sizeof k / sizeof k[0] && !(strlen(k[i].name) == n && !strncmp(k[i].name, p, n))) i++;
        if (i == sizeof k / sizeof k[0])
            return aac_fail(err, AAC_ERR_ARG, "unknown format '%.*s' (seg, pmap, sr, nifti, nrrd, scene, png, all)",
                            (int)(n > 64 ? 64 : n), p);
        f |= k[i].bits;
        p += n + (end != NULL);
    }
    if (!f) return aac_fail(err, AAC_ERR_ARG, "no output format given (seg, pmap, sr, nifti, nrrd, scene, png, all)");
    *mask = f;
    return AAC_OK;
}

const char *aac_score_event_name(aac_score_event e) {
    static const char *const names[] = {"note", "warning", "calibration", "anchors", "skip", "done", "error"};
    return (unsigned)e < sizeof names / sizeof names[0] ? names[e] : "event";
}

void score_log(const aac_scorer *sc, aac_score_event ev, const char *series, const char *fmt, ...) {
    if (!sc->p.log) return;
    char msg[4600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sc->p.log(sc->p.user, ev, series, msg);
}

/* ---------------------------------------------------------------- the scorer */

static const char *domain_name(int d) { return d == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical"; }

/* Class text, domain, calibration and thresholds as they apply to this run. */
static aac_status resolve(aac_scorer *sc, const char *bundle_dir, aac_error *err) {
    aac_score_params *p = &sc->p;
    int has_cal = 0, bundle_domain = AAC_DOMAIN_MEDICAL;
    if (bundle_dir) {
        aac_bundle *b;
        aac_status s = aac_bundle_open(bundle_dir, &b, err);
        if (s) return s;
        has_cal = aac_bundle_calibration(b, &sc->cal);
        bundle_domain = aac_bundle_default_domain(b);
        aac_bundle_free(b);
    }
    /* Defaults (class text, domain) come from the calibration when the bundle has one, else
     * "scan" and the bundle's default domain; use_calibration = 0 only turns the mapping off. */
    if (p->domain != AAC_DOMAIN_MEDICAL && p->domain != AAC_DOMAIN_INDUSTRIAL)
        p->domain = has_cal ? (int)sc->cal.domain : bundle_domain;
    if (!p->class_text) p->class_text = has_cal ? sc->cal.class_text : "scan";
    if (!(sc->class_text = strdup(p->class_text))) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    p->class_text = sc->class_text;
    for (int i = 0; i < p->n_thresholds; i++)
        if (!(p->thresholds[i] > 0 && p->thresholds[i] <= 1))
            return aac_fail(err, AAC_ERR_ARG, "threshold %g is not in (0, 1]", p->thresholds[i]);
    if (p->n_thresholds < 0 || p->n_thresholds > AAC_MAX_THRESHOLDS)
        return aac_fail(err, AAC_ERR_ARG, "%d thresholds (at most %d)", p->n_thresholds, AAC_MAX_THRESHOLDS);
    /* ascending, as the label maps count them: regions are taken at the lowest given */
    for (int i = 1; i < p->n_thresholds; i++)
        for (int j = i; j > 0 && p->thresholds[j] < p->thresholds[j - 1]; j--) {
            const double t = p->thresholds[j];
            p->thresholds[j] = p->thresholds[j - 1], p->thresholds[j - 1] = t;
        }
    sc->region_level = 1;
    sc->calibrated = has_cal && p->use_calibration;
    if (sc->calibrated && (strcmp(p->class_text, sc->cal.class_text) || p->domain != (int)sc->cal.domain ||
                           p->model_overridden)) {
        if (p->model_overridden)
            score_log(sc, AAC_EVENT_NOTE, NULL, "the bundle's calibration holds for the bundle as stored, not with "
                      "model overrides: probabilities from each volume's own range");
        else
            score_log(sc, AAC_EVENT_NOTE, NULL, "the bundle's calibration is for \"%.256s\" (%s), not \"%.256s\" (%s): "
                      "probabilities from each volume's own range", sc->cal.class_text,
                      domain_name(sc->cal.domain), p->class_text, domain_name(p->domain));
        sc->calibrated = 0;
    } else if (sc->calibrated) {
        /* regions at the lesion-wise threshold, segments at both */
        if (!p->n_thresholds) {
            const double r = sc->cal.region_threshold, t = sc->cal.threshold;
            p->thresholds[0] = r < t ? r : t, p->thresholds[1] = r < t ? t : r;
            p->n_thresholds = r == t ? 1 : 2;
            sc->region_level = r > t ? 2 : 1;
        }
        score_log(sc, AAC_EVENT_CALIBRATION, NULL, "calibrated probabilities (class %.128s of %.1000s), region "
                  "threshold %.4f, pixel threshold %.4f", sc->cal.class_name, sc->cal.data, sc->cal.region_threshold,
                  sc->cal.threshold);
    }
    return AAC_OK;
}

aac_status aac_scorer_open(aac_model *m, const aac_tokenizer *tok, const char *bundle_dir,
                           const aac_score_params *params, aac_scorer **out, aac_error *err) {
    if (!m || !tok || !out) return aac_fail(err, AAC_ERR_ARG, "aac_scorer_open: NULL argument");
    *out = NULL;
    aac_scorer *sc = calloc(1, sizeof *sc);
    if (!sc) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    sc->m = m, sc->tok = tok;
    sc->p = params ? *params : aac_score_default_params();
    if (sc->p.batch_slices < 1) sc->p.batch_slices = 1;
    const aac_config *c = aac_model_config(m);
    sc->S = c->img, sc->E = c->embed_dim, sc->Np = aac_model_grid(m) * aac_model_grid(m);
    aac_status s = resolve(sc, bundle_dir, err);
    const char *name = sc->p.model_name ? sc->p.model_name : bundle_dir ? bundle_dir : "";
    if (!s && !(sc->model_name = strdup(name))) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s) sc->p.model_name = sc->model_name;
    if (!s && sc->p.demo_model)
        score_log(sc, AAC_EVENT_NOTE, NULL, "demo model: synthetic, not for clinical use (%s; give --model for a "
                  "real one)", sc->model_name);

    /* what identifies the model for the anchor cache: its weight files */
    char f1[4200], f2[4200];
    const char *bundle_files[2] = {f1, f2};
    const char *const *files = sc->p.model_files;
    int n_files = sc->p.n_model_files;
    if (!files && bundle_dir) {
        snprintf(f1, sizeof f1, "%s/clip.safetensors", bundle_dir);
        snprintf(f2, sizeof f2, "%s/adapters.safetensors", bundle_dir);
        files = bundle_files, n_files = 2;
    }
    if (!s && !(sc->T = malloc(sizeof(float) * 2 * (size_t)sc->E))) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    int cached = 0;
    if (!s) {
        aac_error e2 = {0};
        s = sc->p.anchor_cache && files ? anchors_cached(m, tok, files, n_files, sc->p.class_text, sc->T, &cached, &e2)
                                        : aac_text_anchors(m, tok, sc->p.class_text, 1, sc->T, &e2);
        if (s) {
            s = aac_fail(err, s, "anchors for \"%.200s\": %s", sc->p.class_text, e2.message);
        } else {
            score_log(sc, AAC_EVENT_ANCHORS, NULL, cached ? "text anchors from the cache" : "text anchors computed");
        }
    }
    for (int k = 0; !s && k < c->n_levels; k++)
        if (!(sc->v.seg_tokens[k] = malloc(sizeof(float) * (size_t)sc->Np * sc->E)))
            s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!s) {
        sc->v.det_token = malloc(sizeof(float) * (size_t)sc->E);
        sc->input = malloc(sizeof(float) * 3 * (size_t)sc->S * sc->S);
        sc->map_s = malloc(sizeof(float) * (size_t)sc->S * sc->S);
        if (!sc->v.det_token || !sc->input || !sc->map_s) s = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    if (s) {
        aac_scorer_free(sc);
        return s;
    }
    *out = sc;
    return AAC_OK;
}

void aac_scorer_free(aac_scorer *sc) {
    if (!sc) return;
    for (int k = 0; k < AAC_MAX_LEVELS; k++) free(sc->v.seg_tokens[k]);
    free(sc->v.det_token), free(sc->input), free(sc->map_s), free(sc->T);
    free(sc->class_text), free(sc->model_name);
    free(sc);
}

const aac_score_params *aac_scorer_params(const aac_scorer *sc) { return sc ? &sc->p : NULL; }

void aac_scorer_set_yield(aac_scorer *sc, void (*yield)(void *user), void *user) {
    if (sc) sc->yield = yield, sc->yield_user = user;
}
int aac_scorer_region_level(const aac_scorer *sc) { return sc ? sc->region_level - 1 : 0; }
int aac_scorer_calibrated(const aac_scorer *sc) { return sc ? sc->calibrated : 0; }

void aac_score_result_free(aac_score_result *r) {
    if (!r) return;
    free(r->row_json);
    r->row_json = NULL;
}

/* ---------------------------------------------------------------- one 3-D volume */

/* The check points of a series: the host's yield first (it may wait), then the abort. */
static int should_abort(const aac_scorer *sc) {
    if (sc->yield) sc->yield(sc->yield_user);
    return sc->p.abort && sc->p.abort(sc->p.user);
}

static void report_progress(const aac_scorer *sc, const score_progress *pg) {
    if (sc->p.progress && pg) sc->p.progress(sc->p.user, pg->done, pg->total);
}

/* Scores 3-D volume t of v: fills map [nz ny nx] and the per-slice scores. Returns 1 when
 * interrupted, -1 on engine error (message in err). */
static int score_volume(aac_scorer *sc, const aac_volume *v, const aac_image *pic, int t, const aac_norm *norm,
                        float *map, float *slice_scores, int *n_scored, int *n_skipped, score_progress *pg,
                        aac_error *err) {
    const aac_score_params *o = &sc->p;
    const int axis = norm->axis, n = aac_volume_slice_count(v, axis);
    int w, h;
    aac_volume_slice_size(v, axis, &w, &h);
    uint8_t *u8 = malloc((size_t)w * h);
    float *slice = malloc(sizeof(float) * (size_t)w * h);
    int rc = 0;
    float min_scored = INFINITY;
    unsigned char *skipped = calloc((size_t)n, 1);
    if (!u8 || !slice || !skipped) {
        rc = -1;
        aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (i % o->batch_slices == 0 && should_abort(sc)) {
            rc = 1;
            goto done;
        }
        if (aac_volume_slice_u8(v, norm, t, i, u8, err)) {
            rc = -1;
            goto done;
        }
        if (!pic && !o->all_slices && air_only(u8, (size_t)w * h)) {
            skipped[i] = 1;
            slice_scores[i] = NAN;
            (*n_skipped)++;
        } else {
            float det;
            /* a colour picture goes in in colour; everything else as the grey slice */
            if ((pic && pic->channels == 3 ? aac_preprocess_rgb(pic->px, w, h, sc->S, sc->input, err)
                                           : aac_preprocess_grey(u8, w, h, sc->S, sc->input, err)) ||
                aac_encode_image(sc->m, sc->input, 1, &sc->v, err) ||
                aac_anomaly_maps(sc->m, &sc->v, sc->T, (aac_domain)o->domain, NULL, sc->map_s, &det, err)) {
                rc = -1;
                goto done;
            }
            map_to_slice(sc->map_s, sc->S, slice, w, h);
            float mx = -INFINITY, mn = INFINITY;
            for (size_t k = 0; k < (size_t)w * h; k++) {
                mx = slice[k] > mx ? slice[k] : mx;
                mn = slice[k] < mn ? slice[k] : mn;
            }
            min_scored = mn < min_scored ? mn : min_scored;
            slice_scores[i] = aac_image_score((aac_domain)o->domain, mx, det);
            place_slice(v, axis, i, slice, map);
            (*n_scored)++;
        }
        pg->done++;
        if ((i + 1) % o->batch_slices == 0) report_progress(sc, pg);
    }
    /* slices not scored carry the lowest score seen, so they never look anomalous */
    if (!isfinite(min_scored)) min_scored = 0;
    for (int i = 0; i < n; i++) {
        if (!skipped[i]) continue;
        for (size_t k = 0; k < (size_t)w * h; k++) slice[k] = min_scored;
        place_slice(v, axis, i, slice, map);
    }
done:
    free(u8), free(slice), free(skipped);
    return rc;
}

/* Volume t of v normalised and scored (score_volume), and *res made ready for the writers and
 * aac_regions: the map, the per-slice scores (slices across z), the volume's score, thresholds
 * and the probability mapping (the bundle's calibration, else the map's own range). scores
 * holds at least max(dim[0..2]) values. Returns 0, 1 when interrupted, -1 on error (err). */
static int score_volume_results(aac_scorer *sc, const aac_volume *v, const aac_image *pic, int t, float *map,
                                float *scores, aac_norm *norm, aac_results *res, int *n_scored, int *n_skipped,
                                score_progress *pg, aac_error *err) {
    const aac_score_params *o = &sc->p;
    *norm = (aac_norm){.low = 0, .high = 255, .axis = 2, .method = "8-bit picture as stored"};
    if (!pic && aac_volume_norm(v, t, &o->norm, norm, err)) return -1;
    int r = score_volume(sc, v, pic, t, norm, map, scores, n_scored, n_skipped, pg, err);
    if (r) return r;
    double vol_score = -INFINITY;
    const int n = aac_volume_slice_count(v, norm->axis);
    for (int i = 0; i < n; i++)
        if (isfinite(scores[i]) && scores[i] > vol_score) vol_score = scores[i];
    *res = (aac_results){.source = v, .t = t, .map = map, .series_score = vol_score,
                         .slice_scores = norm->axis == 2 ? scores : NULL, .n_thresholds = o->n_thresholds};
    memcpy(res->thresholds, o->thresholds, sizeof res->thresholds);
    if (sc->calibrated) res->low = sc->cal.map_low, res->high = sc->cal.map_high;
    return 0;
}

aac_status aac_score_volume(aac_scorer *sc, const aac_volume *v, int t, float *map, float *slice_scores,
                            aac_results *res, aac_norm *norm, aac_error *err) {
    if (!sc || !v || !v->voxels || !map || !res)
        return aac_fail(err, AAC_ERR_ARG, "aac_score_volume: NULL argument");
    if (t < 0 || t >= v->dim[3])
        return aac_fail(err, AAC_ERR_ARG, "aac_score_volume: volume %d of %d in %.900s", t, v->dim[3], v->source);
    int most = v->dim[0] > v->dim[1] ? v->dim[0] : v->dim[1];
    most = most > v->dim[2] ? most : v->dim[2];
    float *scores = slice_scores ? slice_scores : malloc(sizeof(float) * (size_t)most);
    if (!scores) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    score_progress pg = {.done = 0, .total = aac_volume_slice_count(v, 2)};
    aac_norm used;
    int scored = 0, skipped = 0;
    aac_error e2 = {0};
    int r = score_volume_results(sc, v, NULL, t, map, scores, &used, res, &scored, &skipped, &pg, &e2);
    if (!slice_scores) free(scores), res->slice_scores = NULL;
    if (norm) *norm = used;
    if (r > 0) return aac_fail(err, AAC_ERR_INTERRUPTED, "%.900s: interrupted", v->source);
    if (r < 0) return aac_fail(err, e2.code ? e2.code : AAC_ERR_IO, "%s", e2.message);
    report_progress(sc, &pg);
    return AAC_OK;
}

/* ---------------------------------------------------------------- outputs */

/* The requested formats of one scored volume into dir, listed in files. */
static aac_status write_outputs(const aac_results *r, const aac_output_params *op, const char *dir, int formats,
                                int is_dicom, json_t *files, aac_error *err) {
    char a[4200], b[4200];
    aac_status s;
#define ADD(name) json_array_append_new(files, json_string(name))
    if (formats & (AAC_FORMAT_NIFTI | AAC_FORMAT_NRRD | AAC_FORMAT_SCENE)) {
        if ((s = aac_write_images(r, dir, err))) return s;
        ADD("anomaly_map.nii.gz"), ADD("label_map.nii.gz"), ADD("anomaly_map.nrrd"), ADD("label_map.nrrd");
        ADD("input.nrrd");
    }
    if (formats & AAC_FORMAT_SCENE) {
        if ((s = aac_write_scene(r, dir, err))) return s;
        ADD("scene.mrml");
    }
    if (formats & AAC_FORMAT_PNG) {
        snprintf(a, sizeof a, "%s/montage.png", dir);
        if ((s = aac_write_png_montage(r, op, a, err))) return s;
        ADD("montage.png");
    }
    if (is_dicom && (formats & (AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR))) {
        snprintf(a, sizeof a, "%s/seg_probability.dcm", dir);
        snprintf(b, sizeof b, "%s/seg_binary.dcm", dir);
        if ((formats & AAC_FORMAT_SEG) && (s = aac_write_seg(r, op, a, b, err))) return s;
        if (formats & AAC_FORMAT_SEG) ADD("seg_probability.dcm"), ADD("seg_binary.dcm");
        if (formats & AAC_FORMAT_PMAP) {
            snprintf(a, sizeof a, "%s/pmap.dcm", dir);
            if ((s = aac_write_pmap(r, op, a, err))) return s;
            ADD("pmap.dcm");
        }
        if (formats & AAC_FORMAT_SR) {
            snprintf(a, sizeof a, "%s/sr.dcm", dir);
            if ((s = aac_write_sr(r, op, b, a, err))) return s;
            ADD("sr.dcm");
        }
    }
#undef ADD
    return AAC_OK;
}

/* A picture as a one-slice volume (grey = ITU-R 601 luma, as Pillow's "L"; 1 mm pixels) for
 * the outputs; the model still sees its colours. */
static aac_status picture_volume(const aac_image *im, const char *path, aac_volume **out, aac_error *err) {
    aac_volume *v = calloc(1, sizeof *v);
    const size_t n = (size_t)im->w * im->h;
    if (!v || !(v->voxels = malloc(sizeof(float) * n))) {
        free(v);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = im->px + i * im->channels;
        v->voxels[i] = im->channels == 3 ? (float)((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000) : p[0];
    }
    v->dim[0] = im->w, v->dim[1] = im->h, v->dim[2] = v->dim[3] = 1;
    v->spacing[0] = v->spacing[1] = v->spacing[2] = 1;
    v->direction[0] = v->direction[4] = v->direction[8] = 1;
    v->series_number = -1;
    snprintf(v->source, sizeof v->source, "%s", path);
    *out = v;
    return AAC_OK;
}

static void row_set_str(json_t *row, const char *k, const char *v) {
    json_object_set_new(row, k, json_string(v ? v : ""));
}

/* ---------------------------------------------------------------- one series */

/* Scores series idx of scan, or the picture at pic_path, into dir (a fresh temporary folder),
 * filling row. Returns 0 ok, 1 interrupted, -1 failed (msg says why). */
static int score_into(aac_scorer *sc, const aac_scan *scan, int idx, const char *pic_path, const char *dir,
                      json_t *row, score_progress *pg, char *msg, size_t msg_cap) {
    const aac_score_params *o = &sc->p;
    aac_error err = {0};
    aac_volume *v = NULL;
    aac_image pic = {0};
    double t0 = score_now();
    if (pic_path ? aac_picture_read(pic_path, &pic, &err) || picture_volume(&pic, pic_path, &v, &err)
                 : aac_scan_load(scan, idx, &v, &err) != AAC_OK) {
        snprintf(msg, msg_cap, "%s", err.message);
        aac_image_release(&pic);
        return -1;
    }
    double t_load = score_now() - t0;
    const size_t nvox = (size_t)v->dim[0] * v->dim[1] * v->dim[2];
    float *map = malloc(sizeof(float) * nvox);
    float *scores = NULL; /* per slice of the current 3-D volume */
    int rc = 0, scored = 0, skipped = 0, top_slice = -1, n_regions = 0;
    double series_score = -INFINITY, region_mm3 = 0, t_score = 0, t_write = 0;
    json_t *files = json_array(), *volumes = json_array(), *region_list = json_array();
    if (!map) {
        snprintf(msg, msg_cap, "out of memory");
        rc = -1;
        goto done;
    }
    int most = v->dim[0] > v->dim[1] ? v->dim[0] : v->dim[1];
    most = most > v->dim[2] ? most : v->dim[2];
    if (!(scores = malloc(sizeof(float) * (size_t)most))) {
        snprintf(msg, msg_cap, "out of memory");
        rc = -1;
    }
    for (int t = 0; t < v->dim[3] && rc == 0; t++) {
        aac_norm norm;
        aac_results res;
        double ts = score_now();
        int r = score_volume_results(sc, v, pic_path ? &pic : NULL, t, map, scores, &norm, &res, &scored, &skipped,
                                     pg, &err);
        t_score += score_now() - ts;
        if (r) {
            if (r < 0) snprintf(msg, msg_cap, "%s", err.message);
            rc = r;
            break;
        }
        const int n = aac_volume_slice_count(v, norm.axis);
        const double vol_score = res.series_score;
        int vol_top = -1;
        for (int i = 0; i < n && vol_top < 0; i++)
            if (scores[i] == vol_score) vol_top = i;
        if (vol_score > series_score) series_score = vol_score, top_slice = vol_top;

        /* outputs of this 3-D volume: in dir itself for 3-D series, dir/volNNN for 4-D */
        char vdir[4096];
        if (v->dim[3] > 1) {
            snprintf(vdir, sizeof vdir, "%.4000s/vol%03d", dir, t);
            if (mkdir(vdir, 0755) && errno != EEXIST) {
                snprintf(msg, msg_cap, "%.900s: %s", vdir, strerror(errno));
                rc = -1;
                break;
            }
        } else {
            snprintf(vdir, sizeof vdir, "%.4000s", dir);
        }
        aac_output_params op = aac_output_default_params();
        op.model_name = o->model_name[0] ? o->model_name : NULL;
        if (should_abort(sc)) { /* one more check point: the writing is the disk-heavy part */
            rc = 1;
            break;
        }
        double tw = score_now();
        if (write_outputs(&res, &op, vdir, o->formats, v->slice_paths != NULL, files, &err)) {
            snprintf(msg, msg_cap, "%s", err.message);
            rc = -1;
            break;
        }
        if (!v->slice_paths && (o->formats & (AAC_FORMAT_SEG | AAC_FORMAT_PMAP | AAC_FORMAT_SR)) && t == 0) {
            char note[1200];
            snprintf(note, sizeof note, "DICOM objects (SEG, Parametric Map, SR) need DICOM input; %.1000s is a %s",
                     v->source, pic_path ? "picture" : "volume file");
            json_object_set_new(row, "note", json_string(note));
            score_log(sc, AAC_EVENT_NOTE, NULL, "%s", note);
        }
        aac_region *regions = NULL;
        int nr = 0;
        if (!aac_regions(&res, sc->region_level, op.connectivity, &regions, &nr, &err)) {
            n_regions += nr;
            for (int k = 0; k < nr; k++) {
                const aac_region *g = &regions[k];
                region_mm3 += g->volume_mm3;
                if (json_array_size(region_list) < MAX_LISTED_REGIONS)
                    json_array_append_new(region_list,
                                          json_pack("{s:i, s:[f,f,f], s:f, s:I, s:f, s:f}", "t", t, "centroid_mm",
                                                    g->centroid[0], g->centroid[1], g->centroid[2], "volume_mm3",
                                                    g->volume_mm3, "voxels", (json_int_t)g->n_voxels, "max_score",
                                                    g->max_score, "mean_score", g->mean_score));
            }
            free(regions);
        }
        t_write += score_now() - tw;
        json_array_append_new(volumes, json_pack("{s:i, s:s, s:f, s:i}", "t", t, "normalisation", norm.method, "score",
                                                 vol_score, "top_slice", vol_top));
    }
done:
    json_object_set_new(row, "slices_scored", json_integer(scored));
    json_object_set_new(row, "slices_skipped_air", json_integer(skipped));
    json_object_set_new(row, "series_score", isfinite(series_score) ? json_real(series_score) : json_null());
    row_set_str(row, "series_score_definition",
                o->domain == AAC_DOMAIN_INDUSTRIAL
                    ? "max over slices of 0.5 * max(anomaly map) + 0.5 * detection score (raw, not set-normalised)"
                    : "max over slices of max(anomaly map) (raw, not set-normalised)");
    json_object_set_new(row, "top_slice", json_integer(top_slice));
    char mapping[1400];
    if (sc->calibrated)
        snprintf(mapping, sizeof mapping,
                 "calibrated: p = clamp((raw - %.9g) / (%.9g - %.9g), 0, 1), from class %.128s of %.1000s",
                 sc->cal.map_low, sc->cal.map_high, sc->cal.map_low, sc->cal.class_name, sc->cal.data);
    else
        snprintf(mapping, sizeof mapping, "per volume: p = (raw - volume minimum) / (volume maximum - volume minimum)");
    row_set_str(row, "probability", mapping);
    json_object_set_new(row, "threshold",
                        json_real(o->n_thresholds ? o->thresholds[sc->region_level - 1] : AAC_DEFAULT_THRESHOLD));
    json_object_set_new(row, "regions", json_integer(n_regions));
    json_object_set_new(row, "regions_volume_mm3", json_real(region_mm3));
    /* regions of the region threshold, in scan order (LPS mm; pictures: pixels) */
    json_object_set_new(row, "region_list", region_list);
    json_object_set_new(row, "volumes", volumes);
    json_object_set_new(row, "files", files);
    json_object_set_new(row, "seconds", json_pack("{s:f, s:f, s:f}", "load", t_load, "score", t_score, "write", t_write));
    if (v) {
        json_object_set_new(row, "dims", json_pack("[i,i,i,i]", v->dim[0], v->dim[1], v->dim[2], v->dim[3]));
        json_t *warn = json_array();
        for (int k = 0; k < v->n_warnings; k++) json_array_append_new(warn, json_string(v->warnings[k]));
        json_object_set_new(row, "warnings", warn);
    }
    free(map), free(scores);
    aac_volume_free(v);
    aac_image_release(&pic);
    return rc;
}

/* Removes what a killed run left: <dir>.tmp.<pid> folders never renamed into place. */
static void remove_stale_tmp(const char *dir) {
    char parent[4200], prefix[512];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (!slash) return;
    *slash = '\0';
    snprintf(prefix, sizeof prefix, "%s.tmp.", slash + 1);
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix))) continue;
        char p[4700];
        snprintf(p, sizeof p, "%s/%s", parent, de->d_name);
        fs_remove_tree(p);
    }
    closedir(d);
}

double score_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

aac_status score_one(aac_scorer *sc, const aac_scan *scan, int idx, int row_index, const char *pic,
                     const char *dir, score_progress *pg, aac_score_result *r, aac_error *err) {
    memset(r, 0, sizeof *r);
    r->series_score = NAN;
    const aac_series_info *si = pic ? NULL : aac_scan_series(scan, idx);
    if (!pic && !si) return aac_fail(err, AAC_ERR_ARG, "aac_score_series: no series %d in the scan", idx);
    if (!dir || !dir[0]) return aac_fail(err, AAC_ERR_ARG, "aac_score_series: no output folder");
    const int64_t n_slices = si ? (int64_t)si->dim[2] * si->dim[3] : 1;
    const char *name = si && si->series_uid[0] ? si->series_uid : si ? si->first_file : pic;
    json_t *row = summary_row_new(si, pic, dir);
    if (!row) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    char marker[4200], tmp[4200], msg[1024] = "";
    snprintf(marker, sizeof marker, "%.4000s/result.json", dir);
    int rc;
    if (!sc->p.force && fs_exists(marker)) {
        /* complete results from an earlier run: keep them, report them */
        json_t *old = json_load_file(marker, 0, NULL);
        if (old) json_object_update(row, old), json_decref(old);
        row_set_str(row, "status", "skipped (already done)");
        r->state = AAC_SCORE_SKIPPED;
        pg->done += n_slices;
        score_log(sc, AAC_EVENT_SKIP, name, "already done");
        goto out;
    }
    remove_stale_tmp(dir);
    snprintf(tmp, sizeof tmp, "%.4000s.tmp.%ld", dir, (long)getpid());
    if (fs_mkdirs(tmp)) {
        snprintf(msg, sizeof msg, "%.900s: %s", tmp, strerror(errno));
        rc = -1;
    } else {
        if (row_index >= 0) json_object_set_new(row, "series_index", json_integer(row_index));
        rc = score_into(sc, scan, idx, pic, tmp, row, pg, msg, sizeof msg);
    }
    if (rc == 0) {
        row_set_str(row, "status", "done");
        row_set_str(row, "error", "");
        char *js = json_dumps(row, JSON_INDENT(2));
        aac_error e2;
        snprintf(marker, sizeof marker, "%.4100s/result.json", tmp);
        /* result.json goes in last; then the whole folder appears under its final name */
        if (!js || fs_write_atomic(marker, js, strlen(js), &e2) || fs_replace_dir(tmp, dir, &e2)) {
            snprintf(msg, sizeof msg, "results not put in place: %s", js ? e2.message : "out of memory");
            rc = -1;
        }
        free(js);
    }
    if (rc != 0) {
        fs_remove_tree(tmp);
        row_set_str(row, "status", rc > 0 ? "interrupted" : "failed");
        row_set_str(row, "error", rc > 0 ? "interrupted by a signal; no results written" : msg);
        r->state = rc > 0 ? AAC_SCORE_INTERRUPTED : AAC_SCORE_FAILED;
        snprintf(r->error, sizeof r->error, "%s", rc > 0 ? "interrupted" : msg);
        if (rc < 0) score_log(sc, AAC_EVENT_ERROR, name, "%s", msg);
    } else {
        r->state = AAC_SCORE_DONE;
    }
out:;
    json_t *ss = json_object_get(row, "series_score");
    r->series_score = json_is_number(ss) ? json_number_value(ss) : NAN;
    r->regions = (int)json_integer_value(json_object_get(row, "regions"));
    r->regions_volume = json_number_value(json_object_get(row, "regions_volume_mm3"));
    r->threshold = json_number_value(json_object_get(row, "threshold"));
    if (r->state == AAC_SCORE_DONE)
        score_log(sc, AAC_EVENT_DONE, name, "%d region%s (%.1f %s) at p >= %.3g, score %.4g -> %.4000s", r->regions,
                  r->regions == 1 ? "" : "s", pic ? r->regions_volume : r->regions_volume / 1000.0, pic ? "pixels" : "ml",
                  r->threshold, r->series_score, dir);
    r->row_json = json_dumps(row, JSON_INDENT(2));
    json_decref(row);
    report_progress(sc, pg);
    return r->row_json ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
}

aac_status aac_score_series(aac_scorer *sc, const aac_scan *scan, int i, const char *out_dir, aac_score_result *r,
                            aac_error *err) {
    if (!sc || !scan || !r) return aac_fail(err, AAC_ERR_ARG, "aac_score_series: NULL argument");
    const aac_series_info *si = aac_scan_series(scan, i);
    score_progress pg = {.done = 0, .total = si ? (int64_t)si->dim[2] * si->dim[3] : 0};
    return score_one(sc, scan, i, i, NULL, out_dir, &pg, r, err);
}

aac_status aac_score_picture(aac_scorer *sc, const char *path, const char *out_dir, aac_score_result *r,
                             aac_error *err) {
    if (!sc || !path || !r) return aac_fail(err, AAC_ERR_ARG, "aac_score_picture: NULL argument");
    score_progress pg = {.done = 0, .total = 1};
    return score_one(sc, NULL, -1, -1, path, out_dir, &pg, r, err);
}
