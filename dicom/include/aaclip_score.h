/* aaclip_score.h - the scoring pipeline: a series (or a volume file, or a picture) in; its
 * slices normalised, scored by the engine, the maps placed back on the source grid; every
 * result format written into one folder that appears all at once; a summary row out.
 * `aaclip score`, `aaclip serve` and batch workers share exactly this implementation; the
 * command line only parses options and prints.
 *
 *   aac_score_params p = aac_score_default_params();
 *   p.class_text = "liver";                   // everything else: defaults or the bundle's
 *   aac_scorer *sc;
 *   if (aac_scorer_open(model, tok, "aaclip-vitl", &p, &sc, &err)) ...  // anchors, calibration
 *   aac_score_counts counts;
 *   aac_score_paths(sc, paths, n, "results", &counts, &err);         // a batch + summary.json
 *   // or one series at a time:
 *   aac_score_result r;
 *   aac_score_series(sc, scan, i, "results/P/STUDY/SERIES", &r, &err);
 *   aac_score_result_free(&r);
 *   // or a volume in memory, no files (aac_score_volume), e.g. for a viewer's plug-in:
 *   aac_score_volume(sc, volume, 0, map, NULL, &res, NULL, &err);   // then aac_regions(&res, ...)
 *   aac_scorer_free(sc);
 *
 * Same conventions as aaclip.h: every call returns an aac_status and fills the aac_error passed
 * in (may be NULL); nothing prints; no global state. A scorer runs on one thread at a time (it
 * owns the model's workspace); the engine's own threads come from aac_model_params.
 */
#ifndef AACLIP_SCORE_H
#define AACLIP_SCORE_H

#include <stdint.h>

#include "aaclip.h"
#include "aaclip_dicom.h"
#include "aaclip_outputs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- parameters */
typedef enum aac_score_format {
    AAC_FORMAT_SEG = 1,    /* seg_probability.dcm + seg_binary.dcm (DICOM sources) */
    AAC_FORMAT_PMAP = 2,   /* pmap.dcm (DICOM sources) */
    AAC_FORMAT_SR = 4,     /* sr.dcm (DICOM sources; references the binary SEG) */
    AAC_FORMAT_NIFTI = 8,  /* anomaly_map / label_map .nii.gz */
    AAC_FORMAT_NRRD = 16,  /* anomaly_map / label_map / input .nrrd */
    AAC_FORMAT_SCENE = 32, /* scene.mrml (over the NRRD files) */
    AAC_FORMAT_PNG = 64,   /* montage.png */
    AAC_FORMAT_ALL = 127
} aac_score_format;

/* "seg,pmap,sr,nifti,nrrd,scene,png,all" -> mask, adding what a format needs (sr: seg; scene:
 * nrrd). AAC_ERR_ARG naming the unknown name. */
aac_status aac_score_formats_parse(const char *list, int *mask, aac_error *err);

typedef enum aac_score_pictures {
    AAC_PICTURES_AUTO = 0,   /* scored when the inputs hold no DICOM or volume series */
    AAC_PICTURES_ALWAYS = 1,
    AAC_PICTURES_NEVER = 2
} aac_score_pictures;

/* What a scorer tells as it works, for a log. `series` names the series (UID, else its first
 * file) or is NULL for the run as a whole. */
typedef enum aac_score_event {
    AAC_EVENT_NOTE = 0,        /* something the user should know (calibration not applicable, ...) */
    AAC_EVENT_WARNING = 1,     /* an input file that could not be used */
    AAC_EVENT_CALIBRATION = 2, /* the bundle's calibration is applied */
    AAC_EVENT_ANCHORS = 3,     /* text anchors computed or read from the cache */
    AAC_EVENT_SKIP = 4,        /* a series whose results are complete */
    AAC_EVENT_DONE = 5,        /* a series scored and its results in place */
    AAC_EVENT_ERROR = 6        /* a series failed; the batch goes on */
} aac_score_event;

/* "note", "warning", "calibration", "anchors", "skip", "done", "error". */
const char *aac_score_event_name(aac_score_event e);

typedef struct aac_score_params {
    const char *class_text;    /* NULL: the calibration's class text, else "scan" */
    int domain;                /* AAC_DOMAIN_*, or -1 (default): the calibration's, else the bundle's */
    aac_norm_params norm;      /* slices: CT window / percentiles (aac_norm_default_params) */
    int formats;               /* AAC_FORMAT_* mask (default AAC_FORMAT_ALL) */
    int all_slices;            /* 0 (default): air-only slices are skipped and reported */
    int use_calibration;       /* 1 (default): the bundle's calibration when it applies */
    int n_thresholds;          /* 0 (default): the calibration's region and pixel thresholds, else
                                  AAC_DEFAULT_THRESHOLD; given: regions at the lowest */
    double thresholds[AAC_MAX_THRESHOLDS]; /* probability thresholds in (0, 1] */
    int batch_slices;          /* slices between abort checks and progress calls (default 8) */
    int force;                 /* 1: redo series whose results are complete (default 0) */
    aac_score_pictures pictures; /* PNG/JPEG in aac_score_paths (default AAC_PICTURES_AUTO) */
    const char *series_filter; /* aac_score_paths: only series whose UID, description, modality
                                  or first file contains this (NULL: all) */
    int shard, shards;         /* aac_score_paths: 1 <= shard <= shards scores only that part of
                                  the batch (aac_score_batch_shard_of); 0, 0 (default): all */
    /* The model as recorded in summaries and objects, and what identifies it for the anchor
     * cache. With a bundle (aac_scorer_open's bundle_dir) both default to the bundle. */
    const char *model_name;    /* NULL: the bundle folder */
    const char *const *model_files; /* weight files; NULL: the bundle's */
    int n_model_files;
    int model_overridden;      /* the caller changed the model (tokenizer, image size, ...): a
                                  calibration measured on the bundle as stored does not hold */
    int demo_model;            /* 1: the model is the bundled synthetic demo: said loudly in
                                  summaries and logs */
    int anchor_cache;          /* 1 (default): text anchors cached on disk (AACLIP_CACHE_DIR, else
                                  $XDG_CACHE_HOME/aaclip, else ~/.cache/aaclip) */
    /* Callbacks (each may be NULL), all called on the scoring thread with `user`. */
    void (*log)(void *user, aac_score_event ev, const char *series, const char *message);
    void (*progress)(void *user, int64_t slices_done, int64_t slices_total); /* of the batch */
    int (*abort)(void *user);  /* nonzero: stop at the next slice batch or before the outputs
                                  are written (the series in work is reported interrupted and
                                  leaves no results) */
    void *user;
} aac_score_params;

aac_score_params aac_score_default_params(void);

/* ---------------------------------------------------------------- the scorer */
typedef struct aac_scorer aac_scorer;

/* A scorer for model m with tokenizer tok (both borrowed: they outlive the scorer). bundle_dir
 * (may be NULL) is the bundle m was opened from: its default domain and calibration. Resolves
 * class text, domain, thresholds and calibration, and computes (or reads) the text anchors. */
aac_status aac_scorer_open(aac_model *m, const aac_tokenizer *tok, const char *bundle_dir,
                           const aac_score_params *p, aac_scorer **out, aac_error *err);
void aac_scorer_free(aac_scorer *sc);
/* The parameters as resolved (class text, domain, thresholds filled in). */
const aac_score_params *aac_scorer_params(const aac_scorer *sc);
/* A callback the scorer calls at its check points (between slice batches and before a volume's
 * outputs are written, where it also asks params.abort), which may wait: for a host that lends
 * the CPU and the disk to more urgent work (the DICOM node, while instances arrive). */
void aac_scorer_set_yield(aac_scorer *sc, void (*yield)(void *user), void *user);
/* Index of the threshold regions are reported at (0-based into params->thresholds). */
int aac_scorer_region_level(const aac_scorer *sc);
/* 1 when the bundle's calibration is applied (fixed probabilities), 0 when each volume's own
 * map range is. */
int aac_scorer_calibrated(const aac_scorer *sc);

/* ---------------------------------------------------------------- one series */
typedef enum aac_score_state {
    AAC_SCORE_DONE = 0,        /* scored, results in place */
    AAC_SCORE_SKIPPED = 1,     /* complete results were there already (params.force = 0) */
    AAC_SCORE_FAILED = 2,      /* error says why; nothing left in the folder from this attempt */
    AAC_SCORE_INTERRUPTED = 3  /* the abort callback asked to stop; no results written */
} aac_score_state;

typedef struct aac_score_result {
    aac_score_state state;
    char *row_json;            /* the summary row (also the folder's result.json), malloc'ed */
    double series_score;       /* raw; NaN when nothing was scored */
    int regions;               /* at the region threshold */
    double regions_volume;     /* mm^3 (pictures: pixels) */
    double threshold;          /* the region threshold */
    char error[1024];          /* FAILED: why */
} aac_score_result;

void aac_score_result_free(aac_score_result *r);

/* Scores series i of scan into out_dir (its final name: everything is built in a temporary
 * folder beside it, result.json last, then renamed into place, replacing an older one).
 * Returns AAC_OK whatever happened to the series (see r->state); an error only for bad
 * arguments or memory. */
aac_status aac_score_series(aac_scorer *sc, const aac_scan *scan, int i, const char *out_dir,
                            aac_score_result *r, aac_error *err);
/* The same for a PNG/JPEG picture (scored in colour). */
aac_status aac_score_picture(aac_scorer *sc, const char *path, const char *out_dir, aac_score_result *r,
                             aac_error *err);

/* ---------------------------------------------------------------- one volume in memory */
/* Volume t (0 for 3-D) of v, loaded by the caller (aac_volume_read, aac_scan_load), scored the
 * way aac_score_series scores a series, without writing anything: for programs that write
 * their own files (the 3D Slicer module) or keep the map in memory.
 *   map           [dim[2] * dim[1] * dim[0]], the caller's: raw anomaly scores on v's grid
 *                 (air-only slices that were skipped carry the lowest score seen)
 *   slice_scores  the caller's, at least max(dim[0], dim[1], dim[2]) values, or NULL: the image
 *                 score of each slice along the normalisation axis, NaN where skipped
 *   res           filled for aac_regions and the aac_write_* functions: source v, t, map, the
 *                 volume's score (max over slices), per-slice scores (axial slicing), the
 *                 thresholds, and the probability mapping (the bundle's calibration, else the
 *                 map's own range); it points into v, map and slice_scores
 *   norm          (may be NULL) the 8-bit mapping used
 * AAC_ERR_INTERRUPTED when params.abort asked to stop. Progress is reported in slices of v. */
aac_status aac_score_volume(aac_scorer *sc, const aac_volume *v, int t, float *map, float *slice_scores,
                            aac_results *res, aac_norm *norm, aac_error *err);

/* Where results go under a root: root/<PatientID>/<StudyUID>/<SeriesUID>[_partK] (sanitised),
 * volume files root/volumes/<path>-<hash>, pictures root/images/<path>-<hash> (the end of the
 * path as given, sanitised, and a hash of all of it: same-named files never share a folder). */
void aac_score_series_dir(const char *root, const aac_series_info *si, char *out, size_t cap);
void aac_score_picture_dir(const char *root, const char *path, char *out, size_t cap);

/* ---------------------------------------------------------------- a batch */
typedef struct aac_score_counts {
    int done, skipped, failed;
    int interrupted;           /* the abort callback stopped the batch */
} aac_score_counts;

/* `aaclip score`: scans the paths (aac_scan_paths), scores every series and then every
 * picture (params.pictures) into root, leaving out what lies inside root; rewrites
 * root/summary.json, summary.csv and report.html atomically after every series. Fails only when the
 * paths cannot be scanned or the summary cannot be written; failed series are counted. */
aac_status aac_score_paths(aac_scorer *sc, const char *const *paths, int n_paths, const char *root,
                           aac_score_counts *counts, aac_error *err);

/* ---------------------------------------------------------------- a batch in parts */
/* The batch aac_score_paths scores (aac_score_paths runs on it), laid out as items for drivers
 * that hand them out themselves: MPI ranks, job-array shards. Items are the scan's series and
 * then its pictures, left out and filtered exactly as aac_score_paths does, in that order; rows
 * may come back in any order and the summary keeps item order, so it is the same whoever scored
 * what. Other processes score an item from its packed bytes without scanning the inputs. */
typedef struct aac_score_batch aac_score_batch;

typedef struct aac_score_item {
    int index;              /* k: position in the batch, the summary's row order */
    int row_index;          /* the row's "series_index": scan series index, pictures after */
    int is_picture;
    int64_t slices;         /* what scoring it costs: slices of all volumes (a picture: 1) */
    const char *name;       /* series UID, else its first file; the picture's path */
    const char *out_dir;    /* its results folder (aac_score_series_dir / _picture_dir) */
} aac_score_item;

/* Scans the paths and lays out the batch into root (created), with the scan's notes in its
 * summary. sc (borrowed, outlives the batch) gives the filter, the pictures rule and the
 * summary's header; params.shard/shards make it that shard's part (its summary then goes to
 * root/shards/K-of-N/). Fails as aac_score_paths does. */
aac_status aac_score_batch_open(const aac_scorer *sc, const char *const *paths, int n_paths, const char *root,
                                aac_score_batch **out, aac_error *err);
void aac_score_batch_free(aac_score_batch *b);
int aac_score_batch_count(const aac_score_batch *b);
const aac_score_item *aac_score_batch_item(const aac_score_batch *b, int k);
/* 1 when item k belongs to this process's shard (always 1 without shards). */
int aac_score_batch_mine(const aac_score_batch *b, int k);
/* 16 hex digits over the items (sources, result folders below root, sizes): equal in every
 * process that laid out the same inputs, whatever root was called there. */
const char *aac_score_batch_digest(const aac_score_batch *b);
/* The shard (1..n) item k belongs to in a split into n: largest items first, each to the
 * least loaded shard by slices (ties: the lower shard), so the split depends on the inputs
 * only (stable across runs and machines) and balances slices. 0 for a bad k or n. */
int aac_score_batch_shard_of(const aac_score_batch *b, int k, int n);

/* Scores item k in this process (aac_score_series / aac_score_picture with its row index). */
aac_status aac_score_batch_score(aac_scorer *sc, const aac_score_batch *b, int k, aac_score_result *r,
                                 aac_error *err);
/* Item k as bytes (malloc'ed) for a process of the same build with a scorer opened the same
 * way, which scores it with aac_score_packed: same folder, same row, no scan. */
aac_status aac_score_batch_pack(const aac_score_batch *b, int k, void **buf, size_t *len, aac_error *err);
aac_status aac_score_packed(aac_scorer *sc, const void *buf, size_t len, aac_score_result *r, aac_error *err);

/* Item k's result (its row copied; replaces an earlier one). */
aac_status aac_score_batch_set_result(aac_score_batch *b, int k, const aac_score_result *r, aac_error *err);
/* Item k failed without a row of its own (the process scoring it died): a failed row naming
 * the series and saying why. */
aac_status aac_score_batch_set_failed(aac_score_batch *b, int k, const char *why, aac_error *err);
/* Counts of the results so far; interrupted as given. */
void aac_score_batch_counts(const aac_score_batch *b, int interrupted, aac_score_counts *c);
/* summary.json / summary.csv (a shard's: root/shards/K-of-N/) with the rows so far in item
 * order, atomically; final adds the counts. */
aac_status aac_score_batch_write(aac_score_batch *b, int final, int interrupted, aac_error *err);

/* Job arrays: the summaries of root/shards/K-of-N/ (one split N) into root/summary.json and
 * summary.csv, rows in batch order. An item whose shard has not written its row yet gets a
 * row with status "not scored" naming the shard to run again, and counts as failed; *complete
 * says whether every shard has finished (all rows present). AAC_ERR_MISSING when there is no
 * shard summary, AAC_ERR_FORMAT when they disagree (other inputs, other splits). */
aac_status aac_score_merge_shards(const char *root, aac_score_counts *counts, int *complete, aac_error *err);

/* ---------------------------------------------------------------- summaries */
/* summary.json ({aaclip_version, model, class_text, domain, series: [rows], skipped_files,
 * counts}) and summary.csv, as aac_score_paths writes them; for drivers that hand out series
 * themselves (MPI, job arrays). */
typedef struct aac_summary aac_summary;

aac_status aac_summary_new(const aac_scorer *sc, aac_summary **out, aac_error *err);
void aac_summary_free(aac_summary *s);
/* A copy of a row (aac_score_result.row_json). */
aac_status aac_summary_add_row(aac_summary *s, const char *row_json, aac_error *err);
/* level "warning" or "skipped". */
aac_status aac_summary_add_note(aac_summary *s, const char *level, const char *note, aac_error *err);
void aac_summary_set_counts(aac_summary *s, const aac_score_counts *c);
/* root/summary.json, root/summary.csv and root/report.html (a self-contained page: the run, a
 * table of the series, each series' montage embedded and its regions), each atomically. */
aac_status aac_summary_write(const aac_summary *s, const char *root, aac_error *err);

#ifdef __cplusplus
}
#endif
#endif
