/* batch.c - `aaclip score` as one call: scan the paths, score every series and then every
 * picture into the results root, keep summary.json/csv current after every series. Built for
 * PACS-side batch jobs: finished series are skipped, one failing series is recorded and the run
 * goes on, an abort stops after the current slice batch. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

aac_status aac_score_paths(aac_scorer *sc, const char *const *paths, int n_paths, const char *root,
                           aac_score_counts *counts, aac_error *err) {
    if (!sc || !paths || !root || !counts) return aac_fail(err, AAC_ERR_ARG, "aac_score_paths: NULL argument");
    memset(counts, 0, sizeof *counts);
    const aac_score_params *o = &sc->p;
    if (fs_mkdirs(root)) return aac_fail(err, AAC_ERR_IO, "%s: cannot create the folder", root);
    aac_scan *scan = NULL;
    aac_summary *sum = NULL;
    aac_status st = aac_scan_paths((const char **)paths, n_paths, &scan, err);
    if (!st) st = aac_summary_new(sc, &sum, err);
    if (st) {
        aac_scan_free(scan);
        return st;
    }
    for (int i = 0; i < aac_scan_note_count(scan); i++) {
        aac_note_level lv;
        const char *n = aac_scan_note(scan, i, &lv);
        aac_summary_add_note(sum, lv == AAC_NOTE_WARNING ? "warning" : "skipped", n, NULL);
        if (lv == AAC_NOTE_WARNING) score_log(sc, AAC_EVENT_WARNING, NULL, "%s", n);
    }

    /* The series first, then the pictures. Left out, with a note: whatever lies in the root,
     * and pictures next to series unless pictures = always (viewer icons on a patient CD). */
    const int ns = aac_scan_series_count(scan), ni = aac_scan_image_count(scan);
    char *root_real = realpath(root, NULL);
    unsigned char *skip = calloc((size_t)(ns + ni) + 1, 1);
    if (!skip) st = aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    int n_inputs = 0;
    for (int i = 0; skip && i < ns; i++)
        if (!(skip[i] = inside(root_real, aac_scan_series(scan, i)->first_file))) n_inputs++;
    for (int i = 0; skip && i < ni; i++) {
        const char *p = aac_scan_image(scan, i);
        const char *why = inside(root_real, p)                 ? "inside the output folder"
                          : o->pictures == AAC_PICTURES_NEVER ? "picture (--pictures never)"
                          : o->pictures == AAC_PICTURES_AUTO && n_inputs
                              ? "picture next to DICOM or volume series (--pictures always scores it)"
                              : NULL;
        if (!why) continue;
        skip[ns + i] = 1;
        note(sum, p, why);
    }
    for (int i = 0; skip && i < ns; i++)
        if (skip[i]) note(sum, aac_scan_series(scan, i)->first_file, "inside the output folder");
    score_progress pg = {0, 0};
    for (int i = 0; skip && i < ns; i++) {
        const aac_series_info *si = aac_scan_series(scan, i);
        if (!skip[i] && matches_filter(o->series_filter, si)) pg.total += (int64_t)si->dim[2] * si->dim[3];
    }
    for (int i = 0; skip && i < ni; i++)
        pg.total += !skip[ns + i] && (!o->series_filter || strstr(aac_scan_image(scan, i), o->series_filter));

    int stopped = 0;
    for (int i = 0; !st && i < ns + ni; i++) {
        if ((stopped = o->abort && o->abort(o->user))) break;
        const aac_series_info *si = i < ns ? aac_scan_series(scan, i) : NULL;
        const char *pic = i < ns ? NULL : aac_scan_image(scan, i - ns);
        if (skip[i] || (si ? !matches_filter(o->series_filter, si) : o->series_filter && !strstr(pic, o->series_filter)))
            continue;
        char dir[4096];
        if (si) aac_score_series_dir(root, si, dir, sizeof dir);
        else aac_score_picture_dir(root, pic, dir, sizeof dir);
        aac_score_result r;
        if ((st = score_one(sc, scan, si ? i : -1, i, pic, dir, &pg, &r, err))) break;
        counts->done += r.state == AAC_SCORE_DONE;
        counts->skipped += r.state == AAC_SCORE_SKIPPED;
        counts->failed += r.state == AAC_SCORE_FAILED;
        stopped = r.state == AAC_SCORE_INTERRUPTED;
        aac_summary_add_row(sum, r.row_json, NULL);
        aac_score_result_free(&r);
        aac_error e2;
        if (aac_summary_write(sum, root, &e2))
            score_log(sc, AAC_EVENT_ERROR, NULL, "cannot write summary.json/summary.csv: %s", e2.message);
        if (stopped) break;
    }
    /* a stop asked for after the last series still counts: the caller was interrupted */
    counts->interrupted = stopped || (o->abort && o->abort(o->user));
    aac_summary_set_counts(sum, counts);
    if (!st) st = aac_summary_write(sum, root, err);
    aac_summary_free(sum);
    free(skip), free(root_real);
    aac_scan_free(scan);
    return st;
}
