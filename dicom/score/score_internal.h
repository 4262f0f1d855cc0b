/* score_internal.h - what the scoring pipeline's files share (internal). */
#ifndef AAC_SCORE_INTERNAL_H
#define AAC_SCORE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "aaclip_score.h"

/* ---------------------------------------------------------------- anchor_cache.c */
/* T [E x 2] for `description`: read from the cache when an entry for this model (identified
 * by its weight files' paths, sizes and modification times) and description exists, else
 * computed with aac_text_anchors and stored. The cache lives in $AACLIP_CACHE_DIR, else
 * $XDG_CACHE_HOME/aaclip, else ~/.cache/aaclip; when it cannot be used, anchors are just
 * computed. *from_cache tells which happened (may be NULL). */
aac_status anchors_cached(aac_model *m, const aac_tokenizer *tok, const char *const *model_files,
                          int n_files, const char *description, float *T, int *from_cache,
                          aac_error *err);

/* ---------------------------------------------------------------- slice_map.c */
/* Bilinear (half-pixel centres) resize of the S x S map to the slice's w x h. */
void map_to_slice(const float *src, int S, float *dst, int w, int h);
/* Writes slice `index` across `axis` back into the volume map [nz ny nx] at the place
 * aac_volume_slice_u8 read it from. */
void place_slice(const aac_volume *v, int axis, int index, const float *slice, float *map);
/* 1 when the 8-bit slice is outside the body: under 0.5 % of its pixels above the display
 * floor (16). */
int air_only(const uint8_t *px, size_t n);

/* ---------------------------------------------------------------- score.c */
struct aac_scorer {
    aac_model *m;
    const aac_tokenizer *tok;
    aac_score_params p;        /* resolved */
    char *class_text;          /* owned copy behind p.class_text */
    char *model_name;          /* owned copy behind p.model_name */
    int region_level;          /* regions at thresholds[region_level - 1] */
    int S, E, Np;
    float *T;                  /* [E x 2] anchors */
    aac_vision_out v;
    float *input, *map_s;      /* [3 S S], [S S] */
    int calibrated;
    aac_calibration cal;
    void (*yield)(void *user);  /* aac_scorer_set_yield */
    void *yield_user;
};

/* Slices of the batch (or of the one series) done so far, and in all. */
typedef struct score_progress {
    int64_t done, total;
} score_progress;

/* Seconds on a monotonic clock. */
double score_now(void);
/* A series of scan (pic NULL) or the picture pic into dir (its final name); row_index (>= 0)
 * is recorded as "series_index". The result's row and state as aac_score_series says. */
aac_status score_one(aac_scorer *sc, const aac_scan *scan, int idx, int row_index, const char *pic,
                     const char *dir, score_progress *pg, aac_score_result *r, aac_error *err);
/* Log through the params' callback (no-op without one). */
void score_log(const aac_scorer *sc, aac_score_event ev, const char *series, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------- summary.c */
struct aac_summary {
    json_t *root;   /* {aaclip_version, model, class_text, domain, [demo_model], series, skipped_files, [counts]} */
    json_t *rows;   /* borrowed from root */
    json_t *notes;  /* borrowed from root */
};

/* The row of a series before scoring: who it is and where its results go. */
json_t *summary_row_new(const aac_series_info *si, const char *picture, const char *out_dir);

/* ---------------------------------------------------------------- report_html.c */
/* dir/report.html from the summary's JSON (root as summary.json holds it), atomically. */
aac_status summary_write_html(const json_t *root, const char *dir, aac_error *err);
/* A summary whose header (everything but series, skipped_files, counts) is a copy of hdr's:
 * for merging summaries written elsewhere. */
aac_status summary_from_header(const json_t *hdr, aac_summary **out, aac_error *err);

/* ---------------------------------------------------------------- plan.c, shards.c */
struct aac_score_batch {
    const aac_scorer *sc;
    char *root;                /* as given */
    char *summary_root;        /* root, or root/shards/K-of-N */
    aac_scan *scan;
    int n_items;
    aac_score_item *items;
    int *scan_index;           /* per item: series index in scan, -1 for pictures */
    json_t **pre_rows;         /* per item: its row before scoring (summary_row_new) */
    json_t **rows;             /* per item: its result row, NULL until one comes */
    aac_score_state *states;
    unsigned char *mine;       /* per item: in this shard */
    int shard, shards;
    int *split;                /* per item: its shard (1..shards), with shards */
    char digest[17];
    aac_summary *sum;          /* header and notes; rows filled in item order when written */
};

/* Per item, its shard (1..n) in a split into n parts (malloc'ed; NULL out of memory). */
int *shards_split(const aac_score_batch *b, int n);
/* Item k's result folder relative to the batch root (its out_dir without the root prefix). */
const char *batch_rel_dir(const aac_score_batch *b, int k);
/* Shard summaries: when every shard of the split has written its final summary, merges them
 * into root/summary.json (logs what it did); a no-op otherwise. */
void shards_merge_if_complete(const aac_score_batch *b);
#endif
