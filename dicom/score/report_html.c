/* report_html.c - report.html beside summary.json: the same run for people who would rather look
 * than read JSON. One self-contained file (styles inline, montages embedded as data: URIs): the
 * model and its warnings, a table of every series (status, score, regions), and per series its
 * montage and its regions. Written atomically with the summary, by every driver that writes one. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fsutil.h"
#include "score_internal.h"

enum {
    MAX_EMBEDDED = 24,            /* montages embedded; later series link to their file */
    MAX_MONTAGE_BYTES = 16 << 20, /* a larger file is linked, not embedded */
    MAX_REGION_ROWS = 50          /* regions listed per series */
};

static void put_escaped(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *str(const json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void put_number(FILE *f, const json_t *v, const char *fmt) {
    if (json_is_number(v)) fprintf(f, fmt, json_number_value(v));
    else fputs("&ndash;", f);
}

/* The file as a data: URI (base64), or 0 when it cannot be read or is too large. */
static int put_data_uri(FILE *f, const char *path) {
    FILE *in = fopen(path, "rb");
    if (!in) return 0;
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = n > 0 && n <= MAX_MONTAGE_BYTES ? malloc((size_t)n) : NULL;
    int ok = buf && fread(buf, 1, (size_t)n, in) == (size_t)n;
    fclose(in);
    if (!ok) {
        free(buf);
        return 0;
    }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputs("data:image/png;base64,", f);
    for (long i = 0; i < n; i += 3) {
        const unsigned v = (unsigned)buf[i] << 16 | (i + 1 < n ? (unsigned)buf[i + 1] << 8 : 0) |
                           (i + 2 < n ? buf[i + 2] : 0);
        fputc(b64[v >> 18 & 63], f);
        fputc(b64[v >> 12 & 63], f);
        fputc(i + 1 < n ? b64[v >> 6 & 63] : '=', f);
        fputc(i + 2 < n ? b64[v & 63] : '=', f);
    }
    free(buf);
    return 1;
}

/* The series' montage: <out>/montage.png, else the first volume's of a 4-D series. */
static int montage_path(const json_t *row, char *out, size_t cap) {
    const char *dir = str(row, "output_dir");
    const char *cand[] = {"montage.png", "vol000/montage.png"};
    for (int i = 0; i < 2 && dir[0]; i++) {
        snprintf(out, cap, "%s/%s", dir, cand[i]);
        if (fs_exists(out)) return 1;
    }
    return 0;
}

static void put_series_row(FILE *f, const json_t *row, size_t i) {
    const char *status = str(row, "status");
    fprintf(f, "<tr class=\"%s\"><td><a href=\"#s%zu\">%zu</a></td><td>", !strcmp(status, "done") ? "ok" : "bad", i,
            i + 1);
    put_escaped(f, str(row, "patient_id"));
    fputs("</td><td>", f);
    put_escaped(f, str(row, "description"));
    fputs(" <span class=\"dim\">", f);
    put_escaped(f, str(row, "modality"));
    fputs("</span></td><td>", f);
    put_escaped(f, status);
    fputs("</td><td class=\"n\">", f);
    put_number(f, json_object_get(row, "slices_scored"), "%.0f");
    fputs("</td><td class=\"n\">", f);
    put_number(f, json_object_get(row, "series_score"), "%.4g");
    fputs("</td><td class=\"n\">", f);
    put_number(f, json_object_get(row, "top_slice"), "%.0f");
    fputs("</td><td class=\"n\">", f);
    put_number(f, json_object_get(row, "regions"), "%.0f");
    fputs("</td><td class=\"n\">", f);
    const json_t *vol = json_object_get(row, "regions_volume_mm3");
    if (json_is_number(vol)) fprintf(f, "%.2f", json_number_value(vol) / 1000.0);
    else fputs("&ndash;", f);
    fputs("</td><td class=\"n\">", f);
    put_number(f, json_object_get(row, "threshold"), "%.3g");
    fputs("</td></tr>\n", f);
}

static void put_series_detail(FILE *f, const json_t *row, size_t i, int *embedded) {
    fprintf(f, "<section id=\"s%zu\"><h3>%zu. ", i, i + 1);
    put_escaped(f, str(row, "description"));
    fputs("</h3>\n<p class=\"dim\">", f);
    put_escaped(f, str(row, "series_uid")[0] ? str(row, "series_uid") : str(row, "source"));
    fputs("<br>", f);
    put_escaped(f, str(row, "probability"));
    fputs("<br>results: ", f);
    put_escaped(f, str(row, "output_dir"));
    fputs("</p>\n", f);
    const char *error = str(row, "error"), *note = str(row, "note");
    if (error[0]) {
        fputs("<p class=\"warn\">", f);
        put_escaped(f, error);
        fputs("</p>\n", f);
    }
    if (note[0]) {
        fputs("<p class=\"dim\">", f);
        put_escaped(f, note);
        fputs("</p>\n", f);
    }
    char png[4400];
    if (montage_path(row, png, sizeof png)) {
        fputs("<img alt=\"montage: the highest-scoring slices\" src=\"", f);
        if (*embedded < MAX_EMBEDDED && put_data_uri(f, png)) {
            (*embedded)++;
        } else {
            fputs("file://", f);
            put_escaped(f, png);
        }
        fputs("\">\n", f);
    }
    const json_t *regions = json_object_get(row, "region_list");
    if (json_array_size(regions)) {
        fputs("<table><tr><th>region</th><th>volume (ml)</th><th>voxels</th><th>max score</th><th>mean score</th>"
              "<th>centroid L, P, S (mm)</th></tr>\n",
              f);
        size_t k;
        const json_t *g;
        json_array_foreach(regions, k, g) {
            if (k >= MAX_REGION_ROWS) {
                fprintf(f, "<tr><td colspan=\"6\">&hellip; %zu more in summary.json</td></tr>\n",
                        json_array_size(regions) - k);
                break;
            }
            const json_t *c = json_object_get(g, "centroid_mm");
            fprintf(f, "<tr><td class=\"n\">%zu</td><td class=\"n\">%.2f</td><td class=\"n\">%lld</td>"
                       "<td class=\"n\">%.4g</td><td class=\"n\">%.4g</td><td class=\"n\">%.1f, %.1f, %.1f</td></tr>\n",
                    k + 1, json_number_value(json_object_get(g, "volume_mm3")) / 1000.0,
                    (long long)json_integer_value(json_object_get(g, "voxels")),
                    json_number_value(json_object_get(g, "max_score")), json_number_value(json_object_get(g, "mean_score")),
                    json_number_value(json_array_get(c, 0)), json_number_value(json_array_get(c, 1)),
                    json_number_value(json_array_get(c, 2)));
        }
        fputs("</table>\n", f);
    }
    fputs("</section>\n", f);
}

aac_status summary_write_html(const json_t *root, const char *dir, aac_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>aaclip report</title>\n"
          "<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
          "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}td.n{text-align:right;"
          "font-variant-numeric:tabular-nums}tr.bad td{background:#fde}.warn{background:#c00;color:#fff;"
          "padding:.5em;font-weight:bold}.dim{color:#666;font-size:90%}img{max-width:100%;display:block;"
          "margin:.5em 0}section{border-top:1px solid #ccc;margin-top:1em}</style></head><body>\n"
          "<h1>aaclip report</h1>\n",
          f);
    const char *demo = str(root, "demo_model");
    if (demo[0]) {
        fputs("<p class=\"warn\">DEMO MODEL: ", f);
        put_escaped(f, demo);
        fputs(". These maps and scores mean nothing clinically.</p>\n", f);
    }
    fputs("<table>", f);
    const char *keys[][2] = {{"model", "model"}, {"class_text", "class text"}, {"domain", "domain"},
                             {"aaclip_version", "aaclip"}};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        fprintf(f, "<tr><th>%s</th><td>", keys[k][1]);
        put_escaped(f, str(root, keys[k][0]));
        fputs("</td></tr>", f);
    }
    const json_t *counts = json_object_get(root, "counts");
    if (counts)
        fprintf(f, "<tr><th>series</th><td>%lld done, %lld skipped (already done), %lld failed%s</td></tr>",
                (long long)json_integer_value(json_object_get(counts, "done")),
                (long long)json_integer_value(json_object_get(counts, "skipped")),
                (long long)json_integer_value(json_object_get(counts, "failed")),
                json_is_true(json_object_get(counts, "interrupted")) ? ", interrupted" : "");
    fputs("</table>\n<h2>Series</h2>\n<table><tr><th>#</th><th>patient</th><th>series</th><th>status</th>"
          "<th>slices</th><th>score</th><th>top slice</th><th>regions</th><th>volume (ml)</th><th>threshold</th></tr>\n",
          f);
    const json_t *rows = json_object_get(root, "series"), *row;
    size_t i;
    json_array_foreach(rows, i, row) put_series_row(f, row, i);
    fputs("</table>\n<p class=\"dim\">Scores are raw (see each series' probability mapping); regions are connected "
          "voxels at the threshold, centroids in DICOM patient coordinates (LPS).</p>\n",
          f);
    int embedded = 0;
    json_array_foreach(rows, i, row) put_series_detail(f, row, i, &embedded);
    const json_t *notes = json_object_get(root, "skipped_files");
    if (json_array_size(notes)) {
        fputs("<h2>Files not scored</h2>\n<ul>\n", f);
        const json_t *n;
        json_array_foreach(notes, i, n) {
            fputs("<li>", f);
            put_escaped(f, str(n, "note"));
            fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
    }
    fputs("</body></html>\n", f);
    if (fclose(f) != 0) {
        free(buf);
        return aac_fail(err, AAC_ERR_NOMEM, "out of memory");
    }
    char path[4200];
    snprintf(path, sizeof path, "%.4000s/report.html", dir);
    aac_status st = fs_write_atomic(path, buf, len, err);
    free(buf);
    return st;
}
