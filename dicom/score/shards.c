/* shards.c - job arrays: which shard scores which item (largest first to the least loaded
 * shard: depends on the inputs only, balanced by slices), and the merge of the shards'
 * summaries (root/shards/K-of-N/) into root/summary.json in batch order. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "score_internal.h"

/* ---------------------------------------------------------------- the split */

typedef struct by_size {
    int64_t slices;
    int index;
} by_size;

static int cmp_by_size(const void *pa, const void *pb) {
    const by_size *a = pa, *b = pb;
    if (a->slices != b->slices) return a->slices > b->slices ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

int *shards_split(const aac_score_batch *b, int n) {
    int *shard = malloc(sizeof *shard * (size_t)(b->n_items + 1));
    by_size *s = malloc(sizeof *s * (size_t)(b->n_items + 1));
    int64_t *load = calloc((size_t)n, sizeof *load);
    if (shard && s && load) {
        for (int i = 0; i < b->n_items; i++) s[i] = (by_size){b->items[i].slices, i};
        qsort(s, (size_t)b->n_items, sizeof *s, cmp_by_size);
        for (int i = 0; i < b->n_items; i++) {
            int best = 0;
            for (int j = 1; j < n; j++)
                if (load[j] < load[best]) best = j;
            load[best] += s[i].slices;
            shard[s[i].index] = best + 1;
        }
    } else {
        free(shard);
        shard = NULL;
    }
    free(s), free(load);
    return shard;
}

int aac_score_batch_shard_of(const aac_score_batch *b, int k, int n) {
    if (!b || k < 0 || k >= b->n_items || n < 1) return 0;
    if (b->split && n == b->shards) return b->split[k];
    int *split = shards_split(b, n);
    const int shard = split ? split[k] : 0;
    free(split);
    return shard;
}

/* ---------------------------------------------------------------- merging */

static json_t *load_json(const char *root, int k, int n, const char *name) {
    char p[4400];
    snprintf(p, sizeof p, "%s/shards/%d-of-%d/%s", root, k, n, name);
    return json_load_file(p, 0, NULL);
}

/* The split N of root/shards (folders K-of-N); 0 when there is none, -1 (message in err) when
 * there are several. */
static int find_split(const char *root, aac_error *err) {
    char p[4200];
    snprintf(p, sizeof p, "%s/shards", root);
    DIR *d = opendir(p);
    if (!d) return 0;
    int n = 0, other = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        int k, m, used = 0;
        if (sscanf(de->d_name, "%d-of-%d%n", &k, &m, &used) != 2 || de->d_name[used] || k < 1 || k > m) continue;
        if (!n) n = m;
        else if (m != n) other = m;
    }
    closedir(d);
    if (other) {
        aac_fail(err, AAC_ERR_FORMAT, "%s holds shards of two splits (into %d and %d parts): remove the folders of the "
                 "old split", p, n < other ? n : other, n < other ? other : n);
        return -1;
    }
    return n;
}

static int status_is(json_t *row, const char *prefix) {
    const char *s = json_string_value(json_object_get(row, "status"));
    return s && !strncmp(s, prefix, strlen(prefix));
}

aac_status aac_score_merge_shards(const char *root, aac_score_counts *counts, int *complete, aac_error *err) {
    if (!root || !counts) return aac_fail(err, AAC_ERR_ARG, "aac_score_merge_shards: NULL argument");
    memset(counts, 0, sizeof *counts);
    if (complete) *complete = 0;
    const int n = find_split(root, err);
    if (n < 0) return AAC_ERR_FORMAT;
    if (n == 0) return aac_fail(err, AAC_ERR_MISSING, "%s/shards: no shard summaries (aaclip score ... --shard K/N "
                                "writes them)", root);
    /* the layout: every shard wrote the same one (batch.json); they must agree */
    json_t *plan = NULL, **sums = calloc((size_t)n, sizeof *sums);
    const char *digest = NULL;
    aac_status st = sums ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    for (int k = 1; !st && k <= n; k++) {
        json_t *p = load_json(root, k, n, "batch.json");
        const char *d = json_string_value(json_object_get(p, "digest"));
        if (p && d && !digest) plan = p, digest = d;
        else if (p && d && strcmp(d, digest))
            st = aac_fail(err, AAC_ERR_FORMAT, "%s/shards/%d-of-%d was scored from other inputs than the other shards "
                          "(layout %s, not %s): run every shard on the same PATHs and options", root, k, n, d, digest);
        if (p != plan) json_decref(p);
        json_t *s = st ? NULL : load_json(root, k, n, "summary.json");
        json_t *bt = json_object_get(s, "batch");
        if (s && (!json_is_string(json_object_get(bt, "digest")) ||
                  strcmp(json_string_value(json_object_get(bt, "digest")), digest ? digest : "") ||
                  json_integer_value(json_object_get(bt, "shard")) != k))
            st = aac_fail(err, AAC_ERR_FORMAT, "%s/shards/%d-of-%d/summary.json does not belong to this split (another "
                          "run's?)", root, k, n);
        sums[k - 1] = s;
    }
    json_t *items = json_object_get(plan, "items");
    int first = -1;
    for (int k = 0; !st && k < n && first < 0; k++)
        if (sums[k]) first = k;
    if (!st && (!json_is_array(items) || first < 0))
        st = aac_fail(err, AAC_ERR_MISSING, "%s/shards: no shard has written a summary yet", root);
    const size_t n_items = json_array_size(items);
    json_t **rows = st ? NULL : calloc(n_items + 1, sizeof *rows);
    if (!st && !rows) st = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    int all_final = 1, interrupted = 0;
    for (int k = 0; !st && k < n; k++) {
        json_t *c = json_object_get(sums[k], "counts");
        all_final &= c != NULL;
        interrupted |= json_is_true(json_object_get(c, "interrupted"));
        json_t *order = json_object_get(json_object_get(sums[k], "batch"), "rows");
        json_t *srows = json_object_get(sums[k], "series");
        if (sums[k] && json_array_size(order) != json_array_size(srows)) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s/shards/%d-of-%d/summary.json: rows and their batch indices differ",
                          root, k + 1, n);
            break;
        }
        for (size_t i = 0; i < json_array_size(order); i++) {
            const json_int_t idx = json_integer_value(json_array_get(order, i));
            if (idx < 0 || (size_t)idx >= n_items ||
                json_integer_value(json_object_get(json_array_get(items, (size_t)idx), "shard")) != k + 1) {
                st = aac_fail(err, AAC_ERR_FORMAT, "%s/shards/%d-of-%d/summary.json: row for item %lld, which is not "
                              "this shard's", root, k + 1, n, (long long)idx);
                break;
            }
            rows[idx] = json_array_get(srows, i);
        }
    }
    aac_summary *sum = NULL;
    if (!st) st = summary_from_header(sums[first], &sum, err);
    if (!st) {
        json_object_del(sum->root, "batch");
        json_t *note;
        size_t i;
        json_array_foreach(json_object_get(sums[first], "skipped_files"), i, note)
            json_array_append(sum->notes, note);
        json_t *missing = json_array();
        for (int k = 0; k < n; k++)
            if (!json_object_get(sums[k], "counts")) json_array_append_new(missing, json_integer(k + 1));
        int absent = 0;
        for (size_t j = 0; j < n_items; j++) {
            json_t *row = rows[j];
            if (row) {
                json_array_append(sum->rows, row);
                counts->done += status_is(row, "done");
                counts->skipped += status_is(row, "skipped");
                counts->failed += status_is(row, "failed");
                interrupted |= status_is(row, "interrupted");
                continue;
            }
            /* its shard has not written it: say so, and which shard to run again */
            json_t *it = json_array_get(items, j), *r = json_deep_copy(it);
            const int k = (int)json_integer_value(json_object_get(it, "shard"));
            char why[300];
            snprintf(why, sizeof why, "not scored: shard %d of %d has not finished (run aaclip score with --shard %d/%d "
                     "again, then aaclip summary merge)", k, n, k, n);
            json_object_del(r, "index"), json_object_del(r, "slices"), json_object_del(r, "shard");
            json_object_set_new(r, "status", json_string("not scored"));
            json_object_set_new(r, "error", json_string(why));
            json_array_append_new(sum->rows, r);
            counts->failed++;
            absent++;
        }
        json_object_set_new(sum->root, "merged", json_pack("{s:i, s:s, s:o}", "shards", n, "digest", digest,
                                                           "unfinished_shards", missing));
        counts->interrupted = interrupted != 0;
        aac_summary_set_counts(sum, counts);
        st = aac_summary_write(sum, root, err);
        if (complete) *complete = all_final && !absent;
    }
    aac_summary_free(sum);
    free(rows);
    for (int k = 0; sums && k < n; k++) json_decref(sums[k]);
    free(sums);
    json_decref(plan);
    return st;
}

void shards_merge_if_complete(const aac_score_batch *b) {
    int unfinished = 0;
    for (int k = 1; k <= b->shards; k++) {
        json_t *s = load_json(b->root, k, b->shards, "summary.json");
        json_t *bt = json_object_get(s, "batch");
        unfinished += !json_object_get(s, "counts") ||
                      strcmp(json_string_value(json_object_get(bt, "digest")) ? json_string_value(json_object_get(bt, "digest")) : "",
                             b->digest);
        json_decref(s);
    }
    if (unfinished) {
        score_log(b->sc, AAC_EVENT_NOTE, NULL, "shard %d of %d finished (summary in %s); %d other shard%s still to "
                  "finish: the last one writes %s/summary.json, or run aaclip summary merge %s", b->shard, b->shards,
                  b->summary_root, unfinished, unfinished == 1 ? "" : "s", b->root, b->root);
        return;
    }
    aac_score_counts c;
    int complete = 0;
    aac_error e;
    if (aac_score_merge_shards(b->root, &c, &complete, &e))
        score_log(b->sc, AAC_EVENT_ERROR, NULL, "merging the shard summaries: %s", e.message);
    else
        score_log(b->sc, AAC_EVENT_NOTE, NULL, "all %d shards finished: %s/summary.json merged (%d done, %d skipped, "
                  "%d failed)", b->shards, b->root, c.done, c.skipped, c.failed);
}
