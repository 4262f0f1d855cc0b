/* plan.c - a batch laid out as items (aac_score_batch): what aac_score_paths scores, in its
 * order, with the rules that leave inputs out (inside the results folder, pictures next to
 * series, the series filter) in one place for the single-process run, job-array shards and MPI
 * ranks alike. Rows come back in any order and are written in item order. */
#define _XOPEN_SOURCE 700 /* realpath, gethostname */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"
#include "score_internal.h"

/* 1 when path lies in the folder whose real path is dir_real (results of an earlier run when
 * the results root is inside an input: never inputs). */
static int inside(const char *dir_real, const char *path) {
    if (!dir_real) return 0;
    char *r = realpath(path, NULL);
    const size_t n = strlen(dir_real);
    const int in = r && !strncmp(r, dir_real, n) && (r[n] == '/' || r[n] == 0);
    free(r);
    return in;
}

static int matches_filter(const char *filter, const aac_series_info *si) {
    if (!filter) return 1;
    return strstr(si->series_uid, filter) || strstr(si->series_description, filter) ||
           strstr(si->modality, filter) || strstr(si->first_file, filter);
}

static void note(aac_summary *sum, const char *path, const char *why) {
    char text[4400];
    snprintf(text, sizeof text, "%.4000s: %s, skipped", path, why);
    aac_summary_add_note(sum, "skipped", text, NULL);
}

void aac_score_batch_free(aac_score_batch *b) {
    if (!b) return;
    for (int k = 0; k < b->n_items; k++) {
        free((char *)b->items[k].out_dir);
        if (b->pre_rows) json_decref(b->pre_rows[k]);
        if (b->rows) json_decref(b->rows[k]);
    }
    free(b->items), free(b->scan_index), free(b->pre_rows), free(b->rows), free(b->states), free(b->mine), free(b->split);
    aac_summary_free(b->sum);
    aac_scan_free(b->scan);
    free(b->root), free(b->summary_root);
    free(b);
}

/* FNV-1a, 64 bits, continued from h. */
static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

const char *batch_rel_dir(const aac_score_batch *b, int k) {
    const char *d = b->items[k].out_dir;
    const size_t n = strlen(b->root);
    return !strncmp(d, b->root, n) && d[n] == '/' ? d + n + 1 : d;
}

static aac_status add_item(aac_score_batch *b, int scan_index, int row_index, const char *pic, aac_error *err) {
    const aac_series_info *si = pic ? NULL : aac_scan_series(b->scan, scan_index);
    char dir[4096];
    if (si) aac_score_series_dir(b->root, si, dir, sizeof dir);
    else aac_score_picture_dir(b->root, pic, dir, sizeof dir);
    const int k = b->n_items++; /* counted first: aac_score_batch_free frees what was filled */
    aac_score_item *it = &b->items[k];
    it->index = k, it->row_index = row_index, it->is_picture = pic != NULL;
    it->slices = si ? (int64_t)si->dim[2] * si->dim[3] : 1;
    it->name = si ? (si->series_uid[0] ? si->series_uid : si->first_file) : pic;
    b->scan_index[k] = si ? scan_index : -1;
    if (!(it->out_dir = strdup(dir)) || !(b->pre_rows[k] = summary_row_new(si, pic, dir)))
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    return AAC_OK;
}

aac_status aac_score_batch_open(const aac_scorer *sc, const char *const *paths, int n_paths, const char *root,
                                aac_score_batch **out, aac_error *err) {
    if (!sc || !paths || !root || !out) return aac_fail(err, AAC_ERR_ARG, "aac_score_batch_open: NULL argument");
    *out = NULL;
    const aac_score_params *o = &sc->p;
    if (o->shard < 0 || o->shards < 0 || o->shard > o->shards || (o->shards && !o->shard))
        return aac_fail(err, AAC_ERR_ARG, "shard %d of %d: give 1 <= K <= N", o->shard, o->shards);
    if (fs_mkdirs(root)) return aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder", root);
    aac_score_batch *b = calloc(1, sizeof *b);
    if (!b) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    b->sc = sc, b->shard = o->shard, b->shards = o->shards;
    aac_status st = (b->root = strdup(root)) ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!st) st = aac_scan_paths((const char **)paths, n_paths, &b->scan, err);
    if (!st) st = aac_summary_new(sc, &b->sum, err);
    if (st) {
        aac_score_batch_free(b);
        return st;
    }
    aac_scan *scan = b->scan;
    for (int i = 0; i < aac_scan_note_count(scan); i++) {
        aac_note_level lv;
        const char *n = aac_scan_note(scan, i, &lv);
        aac_summary_add_note(b->sum, lv == AAC_NOTE_WARNING ? "warning" : "skipped", n, NULL);
        if (lv == AAC_NOTE_WARNING) score_log(sc, AAC_EVENT_WARNING, NULL, "%s", n);
    }

    /* The series first, then the pictures. Left out, with a note: whatever lies in the root,
     * and pictures next to series unless pictures = always (viewer icons on a patient CD). */
    const int ns = aac_scan_series_count(scan), ni = aac_scan_image_count(scan);
    char *root_real = realpath(root, NULL);
    unsigned char *skip = calloc((size_t)(ns + ni) + 1, 1);
    const size_t cap = (size_t)(ns + ni) + 1;
    b->items = calloc(cap, sizeof *b->items);
    b->scan_index = calloc(cap, sizeof *b->scan_index);
    b->pre_rows = calloc(cap, sizeof *b->pre_rows);
    b->rows = calloc(cap, sizeof *b->rows);
    b->states = calloc(cap, sizeof *b->states);
    b->mine = calloc(cap, 1);
    if (!skip || !b->items || !b->scan_index || !b->pre_rows || !b->rows || !b->states || !b->mine)
        st = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    int n_inputs = 0;
    for (int i = 0; !st && i < ns; i++)
        if (!(skip[i] = inside(root_real, aac_scan_series(scan, i)->first_file))) n_inputs++;
    for (int i = 0; !st && i < ni; i++) {
        const char *p = aac_scan_image(scan, i);
        const char *why = inside(root_real, p)                 ? "inside the output folder"
                          : o->pictures == AAC_PICTURES_NEVER ? "picture (--pictures never)"
                          : o->pictures == AAC_PICTURES_AUTO && n_inputs
                              ? "picture next to DICOM or volume series (--pictures always scores it)"
                              : NULL;
        if (!why) continue;
        skip[ns + i] = 1;
        note(b->sum, p, why);
    }
    for (int i = 0; !st && i < ns; i++)
        if (skip[i]) note(b->sum, aac_scan_series(scan, i)->first_file, "inside the output folder");
    for (int i = 0; !st && i < ns + ni; i++) {
        const aac_series_info *si = i < ns ? aac_scan_series(scan, i) : NULL;
        const char *pic = i < ns ? NULL : aac_scan_image(scan, i - ns);
        if (skip[i] || (si ? !matches_filter(o->series_filter, si) : o->series_filter && !strstr(pic, o->series_filter)))
            continue;
        st = add_item(b, si ? i : -1, i, pic, err);
    }
    free(skip), free(root_real);

    /* the digest: what each item is, independent of how root is spelt */
    uint64_t h = 0xcbf29ce484222325ull;
    for (int k = 0; !st && k < b->n_items; k++) {
        const aac_score_item *it = &b->items[k];
        const char *src = json_string_value(json_object_get(b->pre_rows[k], "source"));
        const char *rel = batch_rel_dir(b, k);
        h = fnv(h, src, strlen(src) + 1);
        h = fnv(h, rel, strlen(rel) + 1);
        h = fnv(h, &it->slices, sizeof it->slices);
    }
    snprintf(b->digest, sizeof b->digest, "%016llx", (unsigned long long)h);

    if (!st && b->shards && !(b->split = shards_split(b, b->shards))) st = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    for (int k = 0; !st && k < b->n_items; k++) b->mine[k] = !b->shards || b->split[k] == b->shard;
    char sroot[4200];
    if (b->shards) snprintf(sroot, sizeof sroot, "%s/shards/%d-of-%d", root, b->shard, b->shards);
    else snprintf(sroot, sizeof sroot, "%s", root);
    if (!st && !(b->summary_root = strdup(sroot))) st = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    if (!st && b->shards && fs_mkdirs(sroot)) st = aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder", sroot);
    if (!st && b->shards) {
        /* the layout every shard agrees on, for the merge: written once per shard run */
        json_t *items = json_array();
        for (int k = 0; k < b->n_items; k++) {
            json_t *e = json_deep_copy(b->pre_rows[k]);
            json_object_set_new(e, "index", json_integer(k));
            json_object_set_new(e, "slices", json_integer(b->items[k].slices));
            json_object_set_new(e, "shard", json_integer(b->split[k]));
            json_array_append_new(items, e);
        }
        json_t *plan = json_pack("{s:s, s:i, s:i, s:o}", "digest", b->digest, "shard", b->shard, "shards", b->shards,
                                 "items", items);
        char *js = plan ? json_dumps(plan, JSON_INDENT(1)) : NULL;
        snprintf(sroot, sizeof sroot, "%s/batch.json", b->summary_root);
        st = js ? fs_write_atomic(sroot, js, strlen(js), err) : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
        free(js);
        json_decref(plan);
    }
    if (st) {
        aac_score_batch_free(b);
        return st;
    }
    *out = b;
    return AAC_OK;
}

int aac_score_batch_count(const aac_score_batch *b) { return b ? b->n_items : 0; }

const aac_score_item *aac_score_batch_item(const aac_score_batch *b, int k) {
    return b && k >= 0 && k < b->n_items ? &b->items[k] : NULL;
}

int aac_score_batch_mine(const aac_score_batch *b, int k) { return b && k >= 0 && k < b->n_items && b->mine[k]; }

const char *aac_score_batch_digest(const aac_score_batch *b) { return b ? b->digest : ""; }

/* ---------------------------------------------------------------- scoring an item */

aac_status aac_score_batch_score(aac_scorer *sc, const aac_score_batch *b, int k, aac_score_result *r,
                                 aac_error *err) {
    if (!sc || !b || !r || k < 0 || k >= b->n_items) return aac_fail(err, AAC_ERR_ARG, "aac_score_batch_score: no item %d", k);
    const aac_score_item *it = &b->items[k];
    score_progress pg = {.done = 0, .total = it->slices};
    return score_one(sc, b->scan, b->scan_index[k], it->row_index, it->is_picture ? it->name : NULL, it->out_dir, &pg,
                     r, err);
}

/* Packed item: magic, row index, kind, then the results folder, then the picture's path or the
 * packed series (aac_scan_pack). */
static const char ITEM_MAGIC[8] = "AACITM1";

typedef struct item_head {
    char magic[8];
    int32_t row_index, is_picture;
    uint32_t dir_len, body_len;
} item_head;

aac_status aac_score_batch_pack(const aac_score_batch *b, int k, void **buf, size_t *len, aac_error *err) {
    if (!b || !buf || !len || k < 0 || k >= b->n_items) return aac_fail(err, AAC_ERR_ARG, "aac_score_batch_pack: no item %d", k);
    *buf = NULL, *len = 0;
    const aac_score_item *it = &b->items[k];
    void *body = NULL;
    size_t body_len = 0;
    if (it->is_picture) {
        body_len = strlen(it->name);
    } else {
        aac_status st = aac_scan_pack(b->scan, b->scan_index[k], &body, &body_len, err);
        if (st) return st;
    }
    item_head h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, ITEM_MAGIC, sizeof h.magic);
    h.row_index = it->row_index, h.is_picture = it->is_picture;
    h.dir_len = (uint32_t)strlen(it->out_dir), h.body_len = (uint32_t)body_len;
    unsigned char *p = malloc(sizeof h + h.dir_len + body_len);
    if (!p) {
        free(body);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, it->out_dir, h.dir_len);
    memcpy(p + sizeof h + h.dir_len, it->is_picture ? (const void *)it->name : body, body_len);
    free(body);
    *buf = p, *len = sizeof h + h.dir_len + body_len;
    return AAC_OK;
}

aac_status aac_score_packed(aac_scorer *sc, const void *buf, size_t len, aac_score_result *r, aac_error *err) {
    if (!sc || !buf || !r) return aac_fail(err, AAC_ERR_ARG, "aac_score_packed: NULL argument");
    item_head h;
    if (len < sizeof h) return aac_fail(err, AAC_ERR_FORMAT, "packed item: %zu bytes, too short", len);
    memcpy(&h, buf, sizeof h);
    if (memcmp(h.magic, ITEM_MAGIC, sizeof h.magic) || (h.is_picture != 0 && h.is_picture != 1) || h.row_index < 0 ||
        !h.dir_len || h.dir_len >= 4096 || (size_t)h.dir_len + h.body_len != len - sizeof h ||
        (h.is_picture && (!h.body_len || h.body_len >= 4096)))
        return aac_fail(err, AAC_ERR_FORMAT, "packed item: not a packed item, or damaged (%zu bytes)", len);
    const char *p = (const char *)buf + sizeof h;
    char dir[4096], pic[4096];
    memcpy(dir, p, h.dir_len);
    dir[h.dir_len] = '\0';
    aac_scan *scan = NULL;
    aac_status st;
    score_progress pg = {.done = 0, .total = 1};
    if (h.is_picture) {
        memcpy(pic, p + h.dir_len, h.body_len);
        pic[h.body_len] = '\0';
        if (strlen(pic) != h.body_len || strlen(dir) != h.dir_len)
            return aac_fail(err, AAC_ERR_FORMAT, "packed item: damaged path");
        return score_one(sc, NULL, -1, h.row_index, pic, dir, &pg, r, err);
    }
    if (strlen(dir) != h.dir_len) return aac_fail(err, AAC_ERR_FORMAT, "packed item: damaged path");
    if ((st = aac_scan_unpack(p + h.dir_len, h.body_len, &scan, NULL, err))) return st;
    const aac_series_info *si = aac_scan_series(scan, 0);
    pg.total = (int64_t)si->dim[2] * si->dim[3];
    st = score_one(sc, scan, 0, h.row_index, NULL, dir, &pg, r, err);
    aac_scan_free(scan);
    return st;
}

/* ---------------------------------------------------------------- results and the summary */

aac_status aac_score_batch_set_result(aac_score_batch *b, int k, const aac_score_result *r, aac_error *err) {
    if (!b || !r || k < 0 || k >= b->n_items) return aac_fail(err, AAC_ERR_ARG, "aac_score_batch_set_result: no item %d", k);
    json_error_t je;
    json_t *row = r->row_json ? json_loads(r->row_json, 0, &je) : NULL;
    if (!json_is_object(row)) {
        json_decref(row);
        return aac_fail(err, AAC_ERR_ARG, "item %d: the result's row is not a JSON object", k);
    }
    if (b->shards) {
        /* where it was scored: this shard, this machine */
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        char shard[32];
        snprintf(shard, sizeof shard, "%d/%d", b->shard, b->shards);
        json_object_set_new(row, "shard", json_string(shard));
        json_object_set_new(row, "host", json_string(host));
    }
    json_decref(b->rows[k]);
    b->rows[k] = row;
    b->states[k] = r->state;
    return AAC_OK;
}

aac_status aac_score_batch_set_failed(aac_score_batch *b, int k, const char *why, aac_error *err) {
    if (!b || !why || k < 0 || k >= b->n_items) return aac_fail(err, AAC_ERR_ARG, "aac_score_batch_set_failed: no item %d", k);
    json_t *row = json_deep_copy(b->pre_rows[k]);
    if (!row) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    json_object_set_new(row, "series_index", json_integer(b->items[k].row_index));
    json_object_set_new(row, "status", json_string("failed"));
    json_object_set_new(row, "error", json_string(why));
    json_decref(b->rows[k]);
    b->rows[k] = row;
    b->states[k] = AAC_SCORE_FAILED;
    score_log(b->sc, AAC_EVENT_ERROR, b->items[k].name, "%s", why);
    return AAC_OK;
}

void aac_score_batch_counts(const aac_score_batch *b, int interrupted, aac_score_counts *c) {
    memset(c, 0, sizeof *c);
    for (int k = 0; b && k < b->n_items; k++) {
        if (!b->rows[k]) continue;
        c->done += b->states[k] == AAC_SCORE_DONE;
        c->skipped += b->states[k] == AAC_SCORE_SKIPPED;
        c->failed += b->states[k] == AAC_SCORE_FAILED;
        interrupted |= b->states[k] == AAC_SCORE_INTERRUPTED;
    }
    c->interrupted = interrupted != 0;
}

aac_status aac_score_batch_write(aac_score_batch *b, int final, int interrupted, aac_error *err) {
    if (!b) return aac_fail(err, AAC_ERR_ARG, "aac_score_batch_write: NULL argument");
    json_array_clear(b->sum->rows);
    json_t *order = json_array();
    for (int k = 0; k < b->n_items; k++)
        if (b->rows[k]) {
            json_array_append(b->sum->rows, b->rows[k]);
            json_array_append_new(order, json_integer(k));
        }
    if (b->shards)
        json_object_set_new(b->sum->root, "batch", json_pack("{s:s, s:i, s:i, s:o}", "digest", b->digest, "shard",
                                                             b->shard, "shards", b->shards, "rows", order));
    else
        json_decref(order);
    if (final) {
        aac_score_counts c;
        aac_score_batch_counts(b, interrupted, &c);
        aac_summary_set_counts(b->sum, &c);
    } else {
        json_object_del(b->sum->root, "counts");
    }
    aac_status st = aac_summary_write(b->sum, b->summary_root, err);
    if (!st && final && b->shards) shards_merge_if_complete(b);
    return st;
}
