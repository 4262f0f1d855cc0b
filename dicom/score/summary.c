/* summary.c - the summary of a run (summary.json with one row per series, summary.csv, and
 * report.html from report_html.c) and where each series' results go. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "score_internal.h"

json_t *summary_row_new(const aac_series_info *si, const char *pic, const char *out_dir) {
    const char *base = pic ? strrchr(pic, '/') : NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "patient_id", si ? si->patient_id : "", "study_uid",
                     si ? si->study_uid : "", "series_uid", si ? si->series_uid : "", "modality",
                     si ? si->modality : "picture", "description",
                     si ? si->series_description : base ? base + 1 : pic, "source", si ? si->first_file : pic,
                     "output_dir", out_dir);
}

aac_status aac_summary_new(const aac_scorer *sc, aac_summary **out, aac_error *err) {
    if (!sc || !out) return aac_fail(err, AAC_ERR_ARG, "aac_summary_new: NULL argument");
    aac_summary *s = calloc(1, sizeof *s);
    const aac_score_params *p = &sc->p;
    if (s)
        s->root = json_pack("{s:s, s:s, s:s, s:s}", "aaclip_version", aac_version(), "model", p->model_name,
                            "class_text", p->class_text, "domain",
                            p->domain == AAC_DOMAIN_INDUSTRIAL ? "industrial" : "medical");
    if (s && s->root && p->demo_model)
        json_object_set_new(s->root, "demo_model", json_string("synthetic, not for clinical use: the bundled demo "
                                                               "model was used because no --model was given"));
    if (s && s->root) {
        json_object_set_new(s->root, "series", s->rows = json_array());
        json_object_set_new(s->root, "skipped_files", s->notes = json_array());
    }
    if (!s || !s->root || !s->rows || !s->notes) {
        aac_summary_free(s);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return AAC_OK;
}

aac_status summary_from_header(const json_t *hdr, aac_summary **out, aac_error *err) {
    aac_summary *s = calloc(1, sizeof *s);
    if (s && (s->root = json_object())) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)hdr, k, v)
            if (strcmp(k, "series") && strcmp(k, "skipped_files") && strcmp(k, "counts"))
                json_object_set_new(s->root, k, json_deep_copy(v));
        json_object_set_new(s->root, "series", s->rows = json_array());
        json_object_set_new(s->root, "skipped_files", s->notes = json_array());
    }
    if (!s || !s->root || !s->rows || !s->notes) {
        aac_summary_free(s);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    *out = s;
    return AAC_OK;
}

void aac_summary_free(aac_summary *s) {
    if (!s) return;
    json_decref(s->root);
    free(s);
}

aac_status aac_summary_add_row(aac_summary *s, const char *row_json, aac_error *err) {
    json_error_t je;
    json_t *row = s && row_json ? json_loads(row_json, 0, &je) : NULL;
    if (!row) return aac_fail(err, AAC_ERR_ARG, "aac_summary_add_row: not a JSON row");
    json_array_append_new(s->rows, row);
    return AAC_OK;
}

aac_status aac_summary_add_note(aac_summary *s, const char *level, const char *note, aac_error *err) {
    json_t *n = s && level && note ? json_pack("{s:s, s:s}", "level", level, "note", note) : NULL;
    if (!n) return aac_fail(err, AAC_ERR_ARG, "aac_summary_add_note: bad argument");
    json_array_append_new(s->notes, n);
    return AAC_OK;
}

void aac_summary_set_counts(aac_summary *s, const aac_score_counts *c) {
    if (!s || !c) return;
    json_object_set_new(s->root, "counts", json_pack("{s:i, s:i, s:i, s:b}", "done", c->done, "failed", c->failed,
                                                     "skipped", c->skipped, "interrupted", c->interrupted != 0));
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

aac_status aac_summary_write(const aac_summary *s, const char *root, aac_error *err) {
    if (!s || !root) return aac_fail(err, AAC_ERR_ARG, "aac_summary_write: NULL argument");
    char path[4200];
    char *js = json_dumps(s->root, JSON_INDENT(2));
    snprintf(path, sizeof path, "%s/summary.json", root);
    aac_status st = js ? fs_write_atomic(path, js, strlen(js), err) : aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    free(js);
    if (st) return st;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    const size_t nc = sizeof csv_cols / sizeof csv_cols[0];
    for (size_t c = 0; c < nc; c++) fprintf(f, "%s%s", c ? "," : "", csv_cols[c]);
    fprintf(f, ",load_s,score_s,write_s\n");
    json_t *row;
    size_t i;
    json_array_foreach(s->rows, i, row) {
        for (size_t c = 0; c < nc; c++) {
            if (c) fputc(',', f);
            csv_field(f, json_object_get(row, csv_cols[c]));
        }
        json_t *sec = json_object_get(row, "seconds");
        fprintf(f, ",%.3f,%.3f,%.3f\n", json_real_value(json_object_get(sec, "load")),
                json_real_value(json_object_get(sec, "score")), json_real_value(json_object_get(sec, "write")));
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/summary.csv", root);
    st = fs_write_atomic(path, buf, len, err);
    free(buf);
    /* report.html: the same for people who look rather than read */
    return st ? st : summary_write_html(s->root, root, err);
}

/* ---------------------------------------------------------------- result folders */

/* root/<kind>/<end of the path, sanitised>-<hash of all of it>: the file name survives, and
 * paths that sanitise alike ("a/b_c.png", "a_b/c.png") or files of one name in different
 * folders (good/000.png, broken/000.png; two studies' mask.nii.gz) never share a folder. */
static void path_dir(const char *root, const char *kind, const char *path, char *out, size_t cap) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
    while (path[0] == '.' && path[1] == '/') path += 2;
    while (path[0] == '/') path++;
    const size_t n = strlen(path);
    char name[160];
    fs_sanitize(n > 150 ? path + n - 150 : path, name, sizeof name);
    snprintf(out, cap, "%s/%s/%s-%08x", root, kind, name, h);
}

void aac_score_series_dir(const char *root, const aac_series_info *si, char *out, size_t cap) {
    char pat[80], study[80], ser[200];
    if (si->series_uid[0] && si->study_uid[0]) {
        fs_sanitize(si->patient_id[0] ? si->patient_id : "unknown", pat, sizeof pat);
        fs_sanitize(si->study_uid, study, sizeof study);
        fs_sanitize(si->series_uid, ser, sizeof ser);
        if (si->part > 0) {
            size_t n = strlen(ser);
            snprintf(ser + n, sizeof ser - n, "_part%d", si->part);
        }
        snprintf(out, cap, "%s/%s/%s/%s", root, pat, study, ser);
    } else {
        path_dir(root, "volumes", si->first_file, out, cap); /* volume files have no UIDs */
    }
}

void aac_score_picture_dir(const char *root, const char *path, char *out, size_t cap) {
    path_dir(root, "images", path, out, cap);
}
