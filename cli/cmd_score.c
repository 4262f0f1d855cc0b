/* cmd_score.c - `aaclip score`: study folders in, per-series anomaly maps, scores and clinical
 * objects out, with a summary. Built for PACS-side batch jobs: finished series are skipped, a
 * series' results appear all at once (built in a temporary folder, then renamed), one failing
 * series is recorded and the run goes on, SIGINT/SIGTERM stop after the current slice batch. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aaclip_data.h"
#include "aaclip_outputs.h"
#include "anchor_cache.h"
#include "cli.h"
#include "error.h"
#include "fsutil.h"
#include "progress.h"

/* The one piece of process state: set by the signal handler, read between slice batches. */
static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

enum { MAX_LISTED_REGIONS = 1000 };
enum { PICTURES_AUTO = 0, PICTURES_ALWAYS, PICTURES_NEVER };
enum { F_SEG = 1, F_PMAP = 2, F_SR = 4, F_NIFTI = 8, F_NRRD = 16, F_SCENE = 32, F_PNG = 64, F_ALL = 127 };

typedef struct score_opts {
    model_opts mo;
    const char *out_dir, *class_text, *series_filter;
    aac_domain domain;
    int domain_set, formats, batch_slices, json, quiet, force, all_slices, no_calibration, pictures;
    aac_norm_params norm;
    int n_thresholds;
    double thresholds[AAC_MAX_THRESHOLDS]; /* ascending */
    int region_level;                      /* regions at thresholds[region_level - 1] */
} score_opts;

/* What one scored 3-D volume needs from the engine. */
typedef struct engine {
    aac_model *m;
    aac_tokenizer *tok;
    float T[2 * 4096];
    int S, E, Np;
    aac_vision_out v;
    float *input, *map_s; /* [3 S S], [S S] */
    int calibrated;       /* the bundle's calibration maps raw scores to probabilities */
    aac_calibration cal;
} engine;

static void score_help(void) {
    printf("usage: aaclip score PATH... -o OUTDIR [--model BUNDLE] [--class-text TEXT]\n"
           "                    [--domain medical|industrial] [--window PRESET|C/W] [--threshold T]...\n"
           "                    [--series-filter TEXT] [--threads N] [--batch-slices N]\n"
           "                    [--formats seg,pmap,sr,nifti,nrrd,scene,png] [--all-slices] [--force]\n"
           "                    [--no-calibration] [--pictures auto|always|never] [--json] [--quiet]\n"
           "\n"
           "Scores every image series found under PATH (study folders, folders of studies, DICOM\n"
           "files, NIfTI/NRRD/MetaImage volumes) and every PNG/JPEG picture (in colour). Results go\n"
           "to OUTDIR/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/ (volume files:\n"
           "OUTDIR/volumes/<name>/, pictures: OUTDIR/images/<path>/) with summary.json and\n"
           "summary.csv in OUTDIR. A series whose results are complete is skipped (--force redoes\n"
           "it). Exit status: 0 all series done, 1 some failed or the run was interrupted, 2 usage.\n"
           "\n"
           "  --class-text TEXT   class description in the prompts (default: the one the bundle's\n"
           "                      calibration was measured with, else \"scan\")\n"
           "  --domain D          medical or industrial: map blur and image score rule (default:\n"
           "                      the bundle's default domain)\n"
           "  --window W          CT window preset (brain, subdural, abdomen, liver, lung, bone) or\n"
           "                      C/W in HU; default from the body part, else abdomen. Other\n"
           "                      modalities use the 0.5/99.5 percentiles of each volume.\n"
           "  --threshold T       probability threshold of a binary segment, in (0,1]; repeatable\n"
           "                      (default: the bundle's calibrated region and pixel thresholds,\n"
           "                      regions at the region one; else 0.5); given thresholds: regions\n"
           "                      and the summary use the lowest\n"
           "  --no-calibration    probabilities from each volume's own map range even when the\n"
           "                      bundle is calibrated (aaclip eval --calibrate); every volume then\n"
           "                      has a region at its maximum\n"
           "  --pictures P        PNG/JPEG files: auto (default) scores them when the PATHs hold no\n"
           "                      DICOM or volume series (a photo folder) and lists them as skipped\n"
           "                      next to series (viewer icons on a patient CD); always; never\n"
           "  --series-filter S   only series whose UID, description or modality contains S\n"
           "  --batch-slices N    slices between interruption checks and progress updates (8)\n"
           "  --formats LIST      outputs to write (default all)\n"
           "  --all-slices        score slices outside the body too (default: air-only slices\n"
           "                      are skipped and reported)\n"
           "  --force             redo series that already have complete results\n"
           "  --json              log one JSON object per line on stderr\n"
           "  --quiet             no progress output\n"
           "\n");
    model_opts_help();
}

static int parse_formats(const char *s, int *out) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    int f = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "seg")) f |= F_SEG;
        else if (!strcmp(tok, "pmap")) f |= F_PMAP;
        else if (!strcmp(tok, "sr")) f |= F_SR | F_SEG; /* the SR references the SEG */
        else if (!strcmp(tok, "nifti")) f |= F_NIFTI;
        else if (!strcmp(tok, "nrrd")) f |= F_NRRD;
        else if (!strcmp(tok, "scene")) f |= F_SCENE | F_NRRD; /* the scene points at the NRRDs */
        else if (!strcmp(tok, "png")) f |= F_PNG;
        else if (!strcmp(tok, "all")) f |= F_ALL;
        else {
            fprintf(stderr, "aaclip score: unknown format '%s' (seg, pmap, sr, nifti, nrrd, scene, png)\n", tok);
            return -1;
        }
    }
    *out = f;
    return 0;
}

static int parse_window(const char *s, aac_norm_params *np) {
    char *end;
    double c = strtod(s, &end);
    if (end != s && *end == '/') {
        double w = strtod(end + 1, &end);
        if (*end || !(w > 0)) {
            fprintf(stderr, "aaclip score: --window expects PRESET or C/W with W > 0, got '%s'\n", s);
            return -1;
        }
        np->mode = AAC_NORM_WINDOW, np->center = c, np->width = w;
        return 0;
    }
    double cc, ww;
    aac_error err;
    if (aac_window_preset(s, &cc, &ww, &err)) {
        fprintf(stderr, "aaclip score: %s\n", err.message);
        return -1;
    }
    np->mode = AAC_NORM_WINDOW, np->preset = s;
    return 0;
}

static int parse_args(int argc, char **argv, score_opts *o, const char ***paths, int *n_paths) {
    *paths = calloc((size_t)argc, sizeof **paths);
    *n_paths = 0;
    for (int i = 1; i < argc; i++) {
        int r = model_opts_parse(&o->mo, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            score_help();
            return 0;
        } else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "--force")) o->force = 1;
        else if (!strcmp(a, "--all-slices")) o->all_slices = 1;
        else if (!strcmp(a, "--no-calibration")) o->no_calibration = 1;
        else if (!strcmp(a, "--pictures") && v) {
            i++;
            if (!strcmp(v, "auto")) o->pictures = PICTURES_AUTO;
            else if (!strcmp(v, "always")) o->pictures = PICTURES_ALWAYS;
            else if (!strcmp(v, "never")) o->pictures = PICTURES_NEVER;
            else return fprintf(stderr, "aaclip score: --pictures expects auto, always or never\n"), 2;
        }
        else if (a[0] == '-' && !v) {
            fprintf(stderr, "aaclip score: %s needs a value (see --help)\n", a);
            return 2;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out_dir = argv[++i];
        else if (!strcmp(a, "--class-text")) o->class_text = argv[++i];
        else if (!strcmp(a, "--series-filter")) o->series_filter = argv[++i];
        else if (!strcmp(a, "--domain")) {
            i++;
            o->domain_set = 1;
            if (!strcmp(v, "medical")) o->domain = AAC_DOMAIN_MEDICAL;
            else if (!strcmp(v, "industrial")) o->domain = AAC_DOMAIN_INDUSTRIAL;
            else return fprintf(stderr, "aaclip score: --domain expects medical or industrial\n"), 2;
        } else if (!strcmp(a, "--window")) {
            if (parse_window(argv[++i], &o->norm)) return 2;
        } else if (!strcmp(a, "--threshold")) {
            char *end;
            double t = strtod(argv[++i], &end);
            if (*end || !(t > 0 && t <= 1) || o->n_thresholds == AAC_MAX_THRESHOLDS) {
                fprintf(stderr, "aaclip score: --threshold expects a value in (0,1] (at most %d), got '%s'\n",
                        AAC_MAX_THRESHOLDS, argv[i]);
                return 2;
            }
            o->thresholds[o->n_thresholds++] = t;
        } else if (!strcmp(a, "--batch-slices")) {
            if (parse_int(a, argv[++i], 1, 4096, &o->batch_slices)) return 2;
        } else if (!strcmp(a, "--formats")) {
            if (parse_formats(argv[++i], &o->formats)) return 2;
        } else if (a[0] == '-') {
            fprintf(stderr, "aaclip score: unknown option '%s' (see --help)\n", a);
            return 2;
        } else {
            (*paths)[(*n_paths)++] = a;
        }
    }
    if (!*n_paths || !o->out_dir) {
        fprintf(stderr, "aaclip score: give at least one PATH and -o OUTDIR (see --help)\n");
        return 2;
    }
    /* ascending, as the label maps count them: regions are taken at the lowest given */
    for (int i = 1; i < o->n_thresholds; i++)
        for (int j = i; j > 0 && o->thresholds[j] < o->thresholds[j - 1]; j--) {
            const double t = o->thresholds[j];
            o->thresholds[j] = o->thresholds[j - 1], o->thresholds[j - 1] = t;
        }
    return -1; /* go on */
}

/* Log line: plain text, or one JSON object per line with --json. */
static void log_event(const score_opts *o, const char *event, const char *series, const char *msg) {
    if (o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s}", "event", event, "series", series ? series : "",
                              "message", msg ? msg : "");
        char *s = json_dumps(j, JSON_COMPACT);
        if (s) fprintf(stderr, "%s\n", s);
        free(s);
        json_decref(j);
    } else if (!o->quiet || !strcmp(event, "error")) {
        fprintf(stderr, "aaclip: %s%s%s\n", series ? series : "", series ? ": " : "", msg ? msg : event);
    }
}

/* Bilinear (half-pixel centres) resize of the S x S map to the slice's w x h. */
static void map_to_slice(const float *src, int S, float *dst, int w, int h) {
    const double sx = (double)S / w, sy = (double)S / h;
    for (int r = 0; r < h; r++) {
        double fy = (r + 0.5) * sy - 0.5;
        if (fy < 0) fy = 0;
        int y0 = (int)fy;
        if (y0 > S - 1) y0 = S - 1;
        const int y1 = y0 + 1 < S ? y0 + 1 : S - 1;
        const float wy = (float)(fy - y0);
        for (int c = 0; c < w; c++) {
            double fx = (c + 0.5) * sx - 0.5;
            if (fx < 0) fx = 0;
            int x0 = (int)fx;
            if (x0 > S - 1) x0 = S - 1;
            const int x1 = x0 + 1 < S ? x0 + 1 : S - 1;
            const float wx = (float)(fx - x0);
            const float top = src[y0 * S + x0] * (1 - wx) + src[y0 * S + x1] * wx;
            const float bot = src[y1 * S + x0] * (1 - wx) + src[y1 * S + x1] * wx;
            dst[(size_t)r * w + c] = top * (1 - wy) + bot * wy;
        }
    }
}

/* Writes a slice back into the volume map at the place aac_volume_slice_u8 read it from. */
static void place_slice(const aac_volume *v, int axis, int index, const float *slice, float *map) {
    const size_t nx = (size_t)v->dim[0], ny = (size_t)v->dim[1], nz = (size_t)v->dim[2];
    int w, h;
    aac_volume_slice_size(v, axis, &w, &h);
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            size_t x, y, z;
            if (axis == 2) x = (size_t)c, y = (size_t)r, z = (size_t)index;
            else if (axis == 1) x = (size_t)c, y = (size_t)index, z = nz - 1 - (size_t)r;
            else x = (size_t)index, y = (size_t)c, z = nz - 1 - (size_t)r;
            map[(z * ny + y) * nx + x] = slice[(size_t)r * w + c];
        }
}

/* A slice is "outside the body" when almost nothing is above the display floor: cheap to
 * test on the 8-bit slice the model would see, and safe (any tissue in the window counts). */
static int air_only(const uint8_t *px, size_t n) {
    size_t lit = 0;
    for (size_t i = 0; i < n; i++) lit += px[i] > 16;
    return lit * 200 < n; /* under 0.5 % of the pixels */
}

typedef struct series_row {
    json_t *row; /* the summary row, also written as result.json in the series folder */
} series_row;

static void row_set_str(json_t *row, const char *k, const char *v) { json_object_set_new(row, k, json_string(v ? v : "")); }

/* Scores 3-D volume t of v: fills map [nz ny nx] and the per-slice scores. Returns 1 when
 * interrupted, -1 on engine error (message in err). */
static int score_volume(engine *e, const score_opts *o, const aac_volume *v, const aac_image *pic, int t,
                        const aac_norm *norm, float *map, float *slice_scores, int *n_scored, int *n_skipped,
                        progress *pg, int64_t *done, aac_error *err) {
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
        if (g_stop && i % o->batch_slices == 0) {
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
            if ((pic && pic->channels == 3 ? aac_preprocess_rgb(pic->px, w, h, e->S, e->input, err)
                                           : aac_preprocess_grey(u8, w, h, e->S, e->input, err)) ||
                aac_encode_image(e->m, e->input, 1, &e->v, err) ||
                aac_anomaly_maps(e->m, &e->v, e->T, o->domain, NULL, e->map_s, &det, err)) {
                rc = -1;
                goto done;
            }
            map_to_slice(e->map_s, e->S, slice, w, h);
            float mx = -INFINITY, mn = INFINITY;
            for (size_t k = 0; k < (size_t)w * h; k++) {
                mx = slice[k] > mx ? slice[k] : mx;
                mn = slice[k] < mn ? slice[k] : mn;
            }
            min_scored = mn < min_scored ? mn : min_scored;
            /* the reference's image score: map maximum (medical), or its mean with the
             * detection score (industrial) */
            slice_scores[i] = o->domain == AAC_DOMAIN_INDUSTRIAL ? 0.5f * mx + 0.5f * det : mx;
            place_slice(v, axis, i, slice, map);
            (*n_scored)++;
        }
        (*done)++;
        if (pg && (i + 1) % o->batch_slices == 0) progress_update(pg, *done, NULL);
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

/* Writes the requested outputs of one scored volume into dir and lists them in files. */
static aac_status write_outputs(const aac_results *r, const aac_output_params *op, const char *dir,
                                int formats, int is_dicom, json_t *files, aac_error *err) {
    char a[4200], b[4200];
    aac_status s;
#define ADD(name) json_array_append_new(files, json_string(name))
    if (formats & (F_NIFTI | F_NRRD | F_SCENE)) {
        if ((s = aac_write_images(r, dir, err))) return s;
        ADD("anomaly_map.nii.gz"), ADD("label_map.nii.gz"), ADD("anomaly_map.nrrd"), ADD("label_map.nrrd");
        ADD("input.nrrd");
    }
    if (formats & F_SCENE) {
        if ((s = aac_write_scene(r, dir, err))) return s;
        ADD("scene.mrml");
    }
    if (formats & F_PNG) {
        snprintf(a, sizeof a, "%s/montage.png", dir);
        if ((s = aac_write_png_montage(r, op, a, err))) return s;
        ADD("montage.png");
    }
    if (is_dicom && (formats & (F_SEG | F_PMAP | F_SR))) {
        snprintf(a, sizeof a, "%s/seg_probability.dcm", dir);
        snprintf(b, sizeof b, "%s/seg_binary.dcm", dir);
        if ((formats & F_SEG) && (s = aac_write_seg(r, op, a, b, err))) return s;
        if (formats & F_SEG) ADD("seg_probability.dcm"), ADD("seg_binary.dcm");
        if (formats & F_PMAP) {
            snprintf(a, sizeof a, "%s/pmap.dcm", dir);
            if ((s = aac_write_pmap(r, op, a, err))) return s;
            ADD("pmap.dcm");
        }
        if (formats & F_SR) {
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

/* Scores one series of the scan, or the picture at pic_path, into dir (a fresh temporary
 * folder). Returns 0 ok, 1 interrupted, -1 failed. */
static int score_series(engine *e, const score_opts *o, const aac_scan *scan, int idx, const char *pic_path,
                        const char *dir, json_t *row, progress *pg, int64_t *done, char *msg, size_t msg_cap) {
    aac_error err = {0};
    aac_volume *v = NULL;
    aac_image pic = {0};
    double t0 = progress_now();
    if (pic_path ? aac_image_read(pic_path, &pic, &err) || picture_volume(&pic, pic_path, &v, &err)
                 : aac_scan_load(scan, idx, &v, &err) != AAC_OK) {
        snprintf(msg, msg_cap, "%s", err.message);
        aac_image_release(&pic);
        return -1;
    }
    double t_load = progress_now() - t0;
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
    for (int t = 0; t < v->dim[3] && rc == 0; t++) {
        aac_norm norm = {.low = 0, .high = 255, .axis = 2, .method = "8-bit picture as stored"};
        if (!pic_path && aac_volume_norm(v, t, &o->norm, &norm, &err)) {
            snprintf(msg, msg_cap, "%s", err.message);
            rc = -1;
            break;
        }
        const int n = aac_volume_slice_count(v, norm.axis);
        float *sl = realloc(scores, sizeof(float) * (size_t)(n > v->dim[2] ? n : v->dim[2]));
        if (!sl) {
            snprintf(msg, msg_cap, "out of memory");
            rc = -1;
            break;
        }
        scores = sl;
        double ts = progress_now();
        int r = score_volume(e, o, v, pic_path ? &pic : NULL, t, &norm, map, scores, &scored, &skipped, pg, done, &err);
        t_score += progress_now() - ts;
        if (r) {
            if (r < 0) snprintf(msg, msg_cap, "%s", err.message);
            rc = r;
            break;
        }
        double vol_score = -INFINITY;
        int vol_top = -1;
        for (int i = 0; i < n; i++)
            if (isfinite(scores[i]) && scores[i] > vol_score) vol_score = scores[i], vol_top = i;
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
        aac_results res = {.source = v, .t = t, .map = map, .series_score = vol_score,
                           .slice_scores = norm.axis == 2 ? scores : NULL,
                           .n_thresholds = o->n_thresholds};
        memcpy(res.thresholds, o->thresholds, sizeof res.thresholds);
        if (e->calibrated) res.low = e->cal.map_low, res.high = e->cal.map_high;
        aac_output_params op = aac_output_default_params();
        op.model_name = o->mo.bundle;
        double tw = progress_now();
        if (write_outputs(&res, &op, vdir, o->formats, v->slice_paths != NULL, files, &err)) {
            snprintf(msg, msg_cap, "%s", err.message);
            rc = -1;
            break;
        }
        if (!v->slice_paths && (o->formats & (F_SEG | F_PMAP | F_SR)) && t == 0) {
            char note[1200];
            snprintf(note, sizeof note, "DICOM objects (SEG, Parametric Map, SR) need DICOM input; %.1000s is a %s",
                     v->source, pic_path ? "picture" : "volume file");
            json_object_set_new(row, "note", json_string(note));
            log_event(o, "note", NULL, note);
        }
        aac_region *regions = NULL;
        int nr = 0;
        if (!aac_regions(&res, o->region_level, op.connectivity, &regions, &nr, &err)) {
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
        t_write += progress_now() - tw;
        json_array_append_new(volumes, json_pack("{s:i, s:s, s:f, s:i}", "t", t, "normalisation",
                                                 norm.method, "score", vol_score, "top_slice", vol_top));
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
    if (e->calibrated)
        snprintf(mapping, sizeof mapping,
                 "calibrated: p = clamp((raw - %.9g) / (%.9g - %.9g), 0, 1), from class %.128s of %.1000s", e->cal.map_low,
                 e->cal.map_high, e->cal.map_low, e->cal.class_name, e->cal.data);
    else
        snprintf(mapping, sizeof mapping, "per volume: p = (raw - volume minimum) / (volume maximum - volume minimum)");
    row_set_str(row, "probability", mapping);
    json_object_set_new(row, "threshold",
                        json_real(o->n_thresholds ? o->thresholds[o->region_level - 1] : AAC_DEFAULT_THRESHOLD));
    json_object_set_new(row, "regions", json_integer(n_regions));
    json_object_set_new(row, "regions_volume_mm3", json_real(region_mm3));
    /* regions of the region threshold, in scan order (LPS mm; pictures: pixels) */
    json_object_set_new(row, "region_list", region_list);
    json_object_set_new(row, "volumes", volumes);
    json_object_set_new(row, "files", files);
    json_object_set_new(row, "seconds", json_pack("{s:f, s:f, s:f}", "load", t_load, "score", t_score,
                                                  "write", t_write));
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

/* OUTDIR/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>[_partK], sanitised. Volume files
 * have no UIDs: they go to OUTDIR/volumes/<file name>. */
static void series_dir(const score_opts *o, const aac_series_info *si, char *out, size_t cap) {
    char pat[80], study[80], ser[200];
    if (si->series_uid[0] && si->study_uid[0]) {
        fs_sanitize(si->patient_id[0] ? si->patient_id : "unknown", pat, sizeof pat);
        fs_sanitize(si->study_uid, study, sizeof study);
        fs_sanitize(si->series_uid, ser, sizeof ser);
        if (si->part > 0) {
            size_t n = strlen(ser);
            snprintf(ser + n, sizeof ser - n, "_part%d", si->part);
        }
        snprintf(out, cap, "%s/%s/%s/%s", o->out_dir, pat, study, ser);
    } else {
        const char *base = strrchr(si->first_file, '/');
        fs_sanitize(base ? base + 1 : si->first_file, ser, sizeof ser);
        snprintf(out, cap, "%s/volumes/%s", o->out_dir, ser);
    }
}

/* Pictures (PNG/JPEG) go to OUTDIR/images/<path as given, sanitised>: the path keeps apart
 * same-named files of different folders (good/000.png, broken/000.png). */
static void picture_dir(const score_opts *o, const char *path, char *out, size_t cap) {
    /* The end of the path (the file name survives), plus a hash of all of it: paths that
     * sanitise alike ("a/b_c.png", "a_b/c.png") never share a folder. */
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    while (path[0] == '.' && path[1] == '/') path += 2;
    while (path[0] == '/') path++;
    const size_t n = strlen(path);
    char name[160];
    fs_sanitize(n > 150 ? path + n - 150 : path, name, sizeof name);
    snprintf(out, cap, "%s/images/%s-%08x", o->out_dir, name, h);
}

/* 1 when path lies in the folder whose real path is dir_real (results of an earlier run
 * when OUTDIR is inside a PATH: never inputs). */
static int inside(const char *dir_real, const char *path) {
    if (!dir_real) return 0;
    char *r = realpath(path, NULL);
    const size_t n = strlen(dir_real);
    const int in = r && !strncmp(r, dir_real, n) && (r[n] == '/' || r[n] == 0);
    free(r);
    return in;
}

static int matches_filter(const score_opts *o, const aac_series_info *si) {
    if (!o->series_filter) return 1;
    return strstr(si->series_uid, o->series_filter) || strstr(si->series_description, o->series_filter) ||
           strstr(si->modality, o->series_filter) || strstr(si->first_file, o->series_filter);
}

/* Removes what a killed run left: <dir>.tmp.<pid> folders never renamed into place. */
static void remove_stale_tmp(const char *dir) {
    char parent[4096], prefix[512];
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

static const char *csv_cols[] = {"status", "patient_id", "study_uid", "series_uid", "modality",
                                 "description", "slices_scored", "slices_skipped_air", "series_score",
                                 "top_slice", "threshold", "regions", "regions_volume_mm3", "output_dir", "error"};

static void csv_field(FILE *f, json_t *v) {
    if (json_is_string(v)) {
        fputc('"', f);
        for (const char *p = json_string_value(v); *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p == '\n' ? ' ' : *p, f);
        }
        fputc('"', f);
    } else if (json_is_integer(v)) {
        fprintf(f, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%.6g", json_real_value(v));
    }
}

/* summary.json and summary.csv, both atomically. */
static int write_summary(const score_opts *o, json_t *summary) {
    char path[4200];
    char *js = json_dumps(summary, JSON_INDENT(2));
    snprintf(path, sizeof path, "%s/summary.json", o->out_dir);
    int rc = js && fs_write_atomic(path, js, strlen(js), NULL) == AAC_OK ? 0 : -1;
    free(js);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return -1;
    const size_t nc = sizeof csv_cols / sizeof csv_cols[0];
    for (size_t c = 0; c < nc; c++) fprintf(f, "%s%s", c ? "," : "", csv_cols[c]);
    fprintf(f, ",load_s,score_s,write_s\n");
    json_t *rows = json_object_get(summary, "series"), *row;
    size_t i;
    json_array_foreach(rows, i, row) {
        for (size_t c = 0; c < nc; c++) {
            if (c) fputc(',', f);
            csv_field(f, json_object_get(row, csv_cols[c]));
        }
        json_t *sec = json_object_get(row, "seconds");
        fprintf(f, ",%.3f,%.3f,%.3f\n", json_real_value(json_object_get(sec, "load")),
                json_real_value(json_object_get(sec, "score")), json_real_value(json_object_get(sec, "write")));
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/summary.csv", o->out_dir);
    if (fs_write_atomic(path, buf, len, NULL)) rc = -1;
    free(buf);
    return rc;
}

static int open_engine(engine *e, score_opts *o) {
    if (model_opts_open(&o->mo, &e->m, &e->tok)) return -1;
    const aac_config *c = aac_model_config(e->m);
    e->S = c->img, e->E = c->embed_dim, e->Np = aac_model_grid(e->m) * aac_model_grid(e->m);
    aac_error err = {0};
    /* The bundle's default domain and calibration; the calibration holds only for the class
     * description and domain it was measured with. */
    /* Defaults (class text, domain) come from the calibration when the bundle has one, else
     * "scan" and the bundle's default domain; --no-calibration only turns the mapping off. */
    aac_bundle *b = NULL;
    int has_cal = 0;
    if (o->mo.bundle) {
        if (aac_bundle_open(o->mo.bundle, &b, &err)) {
            fprintf(stderr, "aaclip score: %s\n", err.message);
            return -1;
        }
        has_cal = aac_bundle_calibration(b, &e->cal);
        if (!o->domain_set) o->domain = has_cal ? e->cal.domain : aac_bundle_default_domain(b);
        aac_bundle_free(b);
    }
    if (!o->class_text) o->class_text = has_cal ? e->cal.class_text : "scan";
    const int overridden = o->mo.tokenizer || o->mo.params.image_size || o->mo.params.vision_head_width ||
                           o->mo.params.text_heads || o->mo.params.activation != AAC_ACT_DEFAULT;
    e->calibrated = has_cal && !o->no_calibration;
    char msg[1400];
    if (e->calibrated && (strcmp(o->class_text, e->cal.class_text) || o->domain != e->cal.domain || overridden)) {
        if (overridden)
            snprintf(msg, sizeof msg, "the bundle's calibration holds for the bundle as stored, not with model "
                     "overrides: probabilities from each volume's own range");
        else
            snprintf(msg, sizeof msg, "the bundle's calibration is for \"%.256s\" (%s), not \"%.256s\" (%s): "
                     "probabilities from each volume's own range", e->cal.class_text,
                     e->cal.domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical", o->class_text,
                     o->domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical");
        log_event(o, "note", NULL, msg);
        e->calibrated = 0;
    } else if (e->calibrated) {
        /* regions at the lesion-wise threshold, segments at both */
        if (!o->n_thresholds) {
            const double r = e->cal.region_threshold, p = e->cal.threshold;
            o->thresholds[0] = r < p ? r : p, o->thresholds[1] = r < p ? p : r;
            o->n_thresholds = r == p ? 1 : 2;
            o->region_level = r > p ? 2 : 1;
        }
        snprintf(msg, sizeof msg, "calibrated probabilities (class %.128s of %.1000s), region threshold %.4f, pixel "
                 "threshold %.4f", e->cal.class_name, e->cal.data, e->cal.region_threshold, e->cal.threshold);
        log_event(o, "calibration", NULL, msg);
    }
    /* what identifies the model for the anchor cache: its weight files */
    char f1[4200], f2[4200];
    const char *files[2] = {f1, f2};
    if (o->mo.bundle) {
        snprintf(f1, sizeof f1, "%s/clip.safetensors", o->mo.bundle);
        snprintf(f2, sizeof f2, "%s/adapters.safetensors", o->mo.bundle);
    } else {
        snprintf(f1, sizeof f1, "%s", o->mo.clip);
        snprintf(f2, sizeof f2, "%s", o->mo.adapters);
    }
    int cached = 0;
    if (e->E > 4096 || anchors_cached(e->m, e->tok, files, 2, o->class_text, e->T, &cached, &err)) {
        fprintf(stderr, "aaclip score: anchors for \"%s\": %s\n", o->class_text, err.message);
        return -1;
    }
    log_event(o, "anchors", NULL, cached ? "text anchors from the cache" : "text anchors computed");
    for (int k = 0; k < c->n_levels; k++)
        if (!(e->v.seg_tokens[k] = malloc(sizeof(float) * (size_t)e->Np * e->E))) return -1;
    e->v.det_token = malloc(sizeof(float) * (size_t)e->E);
    e->input = malloc(sizeof(float) * 3 * (size_t)e->S * e->S);
    e->map_s = malloc(sizeof(float) * (size_t)e->S * e->S);
    return e->v.det_token && e->input && e->map_s ? 0 : -1;
}

static void close_engine(engine *e) {
    for (int k = 0; k < AAC_MAX_LEVELS; k++) free(e->v.seg_tokens[k]);
    free(e->v.det_token), free(e->input), free(e->map_s);
    aac_tokenizer_free(e->tok);
    aac_model_free(e->m);
}

int cmd_score(int argc, char **argv) {
    score_opts o = {.mo = {.params = aac_model_default_params()}, .region_level = 1,
                    .formats = F_ALL, .batch_slices = 8, .norm = aac_norm_default_params()};
    const char **paths;
    int n_paths;
    int r = parse_args(argc, argv, &o, &paths, &n_paths);
    if (r >= 0) {
        free(paths);
        return r;
    }
    if (!o.mo.bundle && !o.mo.clip && fs_exists(AACLIP_DEMO_MODEL)) o.mo.bundle = AACLIP_DEMO_MODEL;
    if (model_opts_check(&o.mo, "score", 1)) {
        free(paths);
        return 2;
    }
    set_threads(o.mo.params.n_threads);
    if (fs_mkdirs(o.out_dir)) {
        fprintf(stderr, "aaclip score: cannot create %s: %s\n", o.out_dir, strerror(errno));
        free(paths);
        return 1;
    }

    engine e = {0};
    aac_scan *scan = NULL;
    aac_error err = {0};
    int exit_code = 0;
    if (open_engine(&e, &o)) {
        close_engine(&e);
        free(paths);
        return 1;
    }
    if (aac_scan_paths(paths, n_paths, &scan, &err)) {
        fprintf(stderr, "aaclip score: %s\n", err.message);
        close_engine(&e);
        free(paths);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    json_t *summary = json_pack("{s:s, s:s, s:s, s:s}", "aaclip_version", aac_version(), "model",
                                o.mo.bundle ? o.mo.bundle : o.mo.clip, "class_text", o.class_text, "domain",
                                o.domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical");
    json_t *rows = json_array(), *notes = json_array();
    json_object_set_new(summary, "series", rows);
    for (int i = 0; i < aac_scan_note_count(scan); i++) {
        aac_note_level lv;
        const char *n = aac_scan_note(scan, i, &lv);
        json_array_append_new(notes, json_pack("{s:s, s:s}", "level", lv == AAC_NOTE_WARNING ? "warning" : "skipped",
                                               "note", n));
        if (lv == AAC_NOTE_WARNING) log_event(&o, "warning", NULL, n);
    }
    json_object_set_new(summary, "skipped_files", notes);

    /* The series first, then the pictures. Left out, with a note: whatever lies in OUTDIR, and
     * pictures next to series unless --pictures always (viewer icons on a patient CD). */
    const int ns = aac_scan_series_count(scan), ni = aac_scan_image_count(scan);
    char *out_real = realpath(o.out_dir, NULL);
    unsigned char *skip = calloc((size_t)(ns + ni) + 1, 1);
    if (!skip) {
        fprintf(stderr, "aaclip score: out of memory\n");
        exit_code = 1;
    }
    int n_inputs = 0;
    for (int i = 0; skip && i < ns; i++)
        if (!(skip[i] = inside(out_real, aac_scan_series(scan, i)->first_file))) n_inputs++;
    for (int i = 0; skip && i < ni; i++) {
        const char *p = aac_scan_image(scan, i);
        const char *why = inside(out_real, p) ? "inside the output folder"
                          : o.pictures == PICTURES_NEVER ? "picture (--pictures never)"
                          : o.pictures == PICTURES_AUTO && n_inputs ? "picture next to DICOM or volume series (--pictures always scores it)"
                                                                    : NULL;
        if (!why) continue;
        skip[ns + i] = 1;
        char note[4400];
        snprintf(note, sizeof note, "%.4000s: %s, skipped", p, why);
        json_array_append_new(notes, json_pack("{s:s, s:s}", "level", "skipped", "note", note));
    }
    for (int i = 0; skip && i < ns; i++)
        if (skip[i]) {
            char note[4400];
            snprintf(note, sizeof note, "%.4000s: inside the output folder, skipped", aac_scan_series(scan, i)->first_file);
            json_array_append_new(notes, json_pack("{s:s, s:s}", "level", "skipped", "note", note));
        }
    int64_t total = 0, done = 0;
    for (int i = 0; skip && i < ns; i++) {
        const aac_series_info *si = aac_scan_series(scan, i);
        if (!skip[i] && matches_filter(&o, si)) total += (int64_t)si->dim[2] * si->dim[3];
    }
    for (int i = 0; skip && i < ni; i++)
        total += !skip[ns + i] && (!o.series_filter || strstr(aac_scan_image(scan, i), o.series_filter));
    progress pg;
    progress *pgp = o.quiet || o.json ? NULL : &pg;
    if (pgp) progress_start(pgp, "score", total);

    int n_ok = 0, n_failed = 0, n_skipped = 0;
    for (int i = 0; skip && i < ns + ni && !g_stop; i++) {
        const aac_series_info *si = i < ns ? aac_scan_series(scan, i) : NULL;
        const char *pic = i < ns ? NULL : aac_scan_image(scan, i - ns);
        if (skip[i] || (si ? !matches_filter(&o, si) : o.series_filter && !strstr(pic, o.series_filter))) continue;
        const int64_t n_slices = si ? (int64_t)si->dim[2] * si->dim[3] : 1;
        char dir[4096], tmp[4200], marker[4200], msg[1024] = "";
        if (si) series_dir(&o, si, dir, sizeof dir);
        else picture_dir(&o, pic, dir, sizeof dir);
        snprintf(marker, sizeof marker, "%.4000s/result.json", dir);
        const char *base = pic ? strrchr(pic, '/') : NULL;
        json_t *row = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "patient_id", si ? si->patient_id : "",
                                "study_uid", si ? si->study_uid : "", "series_uid", si ? si->series_uid : "",
                                "modality", si ? si->modality : "picture", "description",
                                si ? si->series_description : base ? base + 1 : pic, "source",
                                si ? si->first_file : pic, "output_dir", dir);
        if (!o.force && fs_exists(marker)) {
            /* complete results from an earlier run: keep them, report them */
            json_t *old = json_load_file(marker, 0, NULL);
            if (old) json_object_update(row, old), json_decref(old);
            row_set_str(row, "status", "skipped (already done)");
            json_array_append_new(rows, row);
            n_skipped++;
            done += n_slices;
            log_event(&o, "skip", si && si->series_uid[0] ? si->series_uid : si ? si->first_file : pic, "already done");
            continue;
        }
        remove_stale_tmp(dir);
        snprintf(tmp, sizeof tmp, "%.4000s.tmp.%ld", dir, (long)getpid());
        if (fs_mkdirs(tmp)) {
            snprintf(msg, sizeof msg, "%.900s: %s", tmp, strerror(errno));
            r = -1;
        } else {
            json_object_set_new(row, "series_index", json_integer(i));
            r = score_series(&e, &o, scan, i, pic, tmp, row, pgp, &done, msg, sizeof msg);
        }
        if (r == 0) {
            row_set_str(row, "status", "done");
            row_set_str(row, "error", "");
            char *js = json_dumps(row, JSON_INDENT(2));
            char old[4300];
            snprintf(marker, sizeof marker, "%.4100s/result.json", tmp);
            snprintf(old, sizeof old, "%.4000s.old.%ld", dir, (long)getpid());
            /* result.json goes in last; then the whole folder appears under its final name */
            if (!js || fs_write_atomic(marker, js, strlen(js), NULL) ||
                (fs_exists(dir) && rename(dir, old)) || rename(tmp, dir)) {
                snprintf(msg, sizeof msg, "%.900s: cannot move results into place: %s", dir, strerror(errno));
                r = -1;
            }
            fs_remove_tree(old);
            free(js);
        }
        if (r != 0) {
            fs_remove_tree(tmp);
            row_set_str(row, "status", r > 0 ? "interrupted" : "failed");
            row_set_str(row, "error", r > 0 ? "interrupted by a signal; no results written" : msg);
        }
        const char *name = si && si->series_uid[0] ? si->series_uid : si ? si->first_file : pic;
        if (r == 0) {
            char done_msg[4400];
            const double size = json_number_value(json_object_get(row, "regions_volume_mm3"));
            snprintf(done_msg, sizeof done_msg, "%lld region%s (%.1f %s) at p >= %.3g, score %.4g -> %.4000s",
                     (long long)json_integer_value(json_object_get(row, "regions")),
                     json_integer_value(json_object_get(row, "regions")) == 1 ? "" : "s",
                     pic ? size : size / 1000.0, pic ? "pixels" : "ml",
                     json_number_value(json_object_get(row, "threshold")),
                     json_number_value(json_object_get(row, "series_score")), dir);
            n_ok++, log_event(&o, "done", name, done_msg);
        }
        else if (r < 0) n_failed++, log_event(&o, "error", name, msg);
        json_array_append_new(rows, row);
        if (pgp) progress_update(pgp, done, NULL);
        if (write_summary(&o, summary)) log_event(&o, "error", NULL, "cannot write summary.json/summary.csv");
    }
    if (pgp) progress_finish(pgp, NULL);
    json_object_set_new(summary, "counts", json_pack("{s:i, s:i, s:i, s:b}", "done", n_ok, "failed", n_failed,
                                                     "skipped", n_skipped, "interrupted", g_stop != 0));
    if (write_summary(&o, summary)) {
        fprintf(stderr, "aaclip score: cannot write the summary in %s\n", o.out_dir);
        exit_code = 1;
    }
    if (!o.quiet)
        fprintf(stderr, "aaclip: %d series scored, %d skipped (already done), %d failed%s; summary: %s/summary.json\n",
                n_ok, n_skipped, n_failed, g_stop ? ", interrupted" : "", o.out_dir);
    if (n_failed || g_stop) exit_code = 1;
    json_decref(summary);
    free(skip), free(out_real);
    aac_scan_free(scan);
    close_engine(&e);
    free(paths);
    return exit_code;
}
