/* batch.c - `aaclip score` as one call: lay out the batch (plan.c), score its items in order
 * (a shard: its part) and keep summary.json/csv current after every series. Built for
 * PACS-side batch jobs: finished series are skipped, one failing series is recorded and the run
 * goes on, an abort stops after the current slice batch. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "score_internal.h"

aac_status aac_score_paths(aac_scorer *sc, const char *const *paths, int n_paths, const char *root,
                           aac_score_counts *counts, aac_error *err) {
    if (!sc || !paths || !root || !counts) return aac_fail(err, AAC_ERR_ARG, "aac_score_paths: NULL argument");
    memset(counts, 0, sizeof *counts);
    const aac_score_params *o = &sc->p;
    aac_score_batch *b = NULL;
    aac_status st = aac_score_batch_open(sc, paths, n_paths, root, &b, err);
    if (st) return st;
    const int n = aac_score_batch_count(b);
    score_progress pg = {0, 0};
    for (int k = 0; k < n; k++)
        if (aac_score_batch_mine(b, k)) pg.total += aac_score_batch_item(b, k)->slices;

    int stopped = 0;
    for (int k = 0; !st && k < n; k++) {
        if (!aac_score_batch_mine(b, k)) continue;
        if ((stopped = o->abort && o->abort(o->user))) break;
        const aac_score_item *it = aac_score_batch_item(b, k);
        aac_score_result r;
        if ((st = score_one(sc, b->scan, b->scan_index[k], it->row_index, it->is_picture ? it->name : NULL,
                            it->out_dir, &pg, &r, err)))
            break;
        stopped = r.state == AAC_SCORE_INTERRUPTED;
        aac_score_batch_set_result(b, k, &r, NULL);
        aac_score_result_free(&r);
        aac_error e2;
        if (aac_score_batch_write(b, 0, 0, &e2))
            score_log(sc, AAC_EVENT_ERROR, NULL, "cannot write summary.json/summary.csv: %s", e2.message);
        if (stopped) break;
    }
    /* a stop asked for after the last series still counts: the caller was interrupted */
    const int interrupted = stopped || (o->abort && o->abort(o->user));
    if (!st) st = aac_score_batch_write(b, 1, interrupted, err);
    aac_score_batch_counts(b, interrupted, counts);
    aac_score_batch_free(b);
    return st;
}
