/* cmd_info.c - `aaclip info INPUT... [--json]`: what a folder of DICOM (or volume files) holds,
 * series by series, from the headers alone (no pixel is decoded). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "aaclip_dicom.h"
#include "cmd_ingest.h"

static void info_help(void) {
    printf("usage: aaclip info INPUT... [--json] [--verbose]\n"
           "\n"
           "Lists the image series found in the INPUT files and folders (searched recursively;\n"
           "DICOM is recognised by content, NIfTI/NRRD/MetaImage by name): UIDs, modality,\n"
           "description, size, spacing, transfer syntax and problems. Files that could not be\n"
           "used are listed as notes; PNG/JPEG pictures are counted (listed with --verbose);\n"
           "--verbose also lists the files skipped as not images.\n"
           "  --json      one JSON object {\"series\": [...], \"pictures\": [...], \"notes\": [...]} on stdout\n");
}

static json_t *series_json(const aac_series_info *in) {
    json_t *o = json_object();
    json_object_set_new(o, "series_uid", json_string(in->series_uid));
    json_object_set_new(o, "study_uid", json_string(in->study_uid));
    json_object_set_new(o, "patient_id", json_string(in->patient_id));
    json_object_set_new(o, "series_number", json_integer(in->series_number));
    json_object_set_new(o, "part", json_integer(in->part));
    json_object_set_new(o, "modality", json_string(in->modality));
    json_object_set_new(o, "body_part", json_string(in->body_part));
    json_object_set_new(o, "description", json_string(in->series_description));
    json_object_set_new(o, "manufacturer", json_string(in->manufacturer));
    json_object_set_new(o, "image_type", json_string(in->image_type));
    json_object_set_new(o, "echo_number", json_integer(in->echo_number));
    json_object_set_new(o, "transfer_syntax", json_string(in->transfer_syntax));
    json_object_set_new(o, "transfer_syntax_name", json_string(aac_transfer_syntax_name(in->transfer_syntax)));
    json_t *dim = json_array(), *sp = json_array(), *w = json_array();
    for (int a = 0; a < 4; a++) json_array_append_new(dim, json_integer(in->dim[a]));
    for (int a = 0; a < 3; a++) json_array_append_new(sp, json_real(in->spacing[a]));
    for (int k = 0; k < in->n_warnings; k++) json_array_append_new(w, json_string(in->warnings[k]));
    json_object_set_new(o, "size", dim);
    json_object_set_new(o, "spacing", sp);
    json_t *ax = json_array();
    for (int a = 0; a < 3; a++) json_array_append_new(ax, json_integer(in->nifti_axes[a]));
    json_object_set_new(o, "nifti_axes", ax);
    json_object_set_new(o, "files", json_integer(in->n_files));
    json_object_set_new(o, "first_file", json_string(in->first_file ? in->first_file : ""));
    json_object_set_new(o, "problems", w);
    return o;
}

static void series_text(int i, int n, const aac_series_info *in) {
    printf("series %d/%d: #%d \"%s\" %s%s%s", i + 1, n, in->series_number, in->series_description,
           in->modality[0] ? in->modality : "-", in->manufacturer[0] ? " " : "", in->manufacturer);
    if (in->part) printf(" (part %d)", in->part);
    printf("\n  series uid: %s\n  study uid:  %s\n  patient id: %s\n", in->series_uid, in->study_uid,
           in->patient_id);
    printf("  size: %d x %d x %d", in->dim[0], in->dim[1], in->dim[2]);
    if (in->dim[3] > 1) printf(" x %d volumes", in->dim[3]);
    printf(", spacing %.4g x %.4g x %.4g mm\n", in->spacing[0], in->spacing[1], in->spacing[2]);
    printf("  transfer syntax: %s (%s)\n", in->transfer_syntax, aac_transfer_syntax_name(in->transfer_syntax));
    if (in->image_type[0] || in->echo_number) printf("  image type: %s, echo %d\n", in->image_type, in->echo_number);
    printf("  files: %d, first %s\n", in->n_files, in->first_file ? in->first_file : "-");
    for (int k = 0; k < in->n_warnings; k++) printf("  problem: %s\n", in->warnings[k]);
}

int cmd_info(int argc, char **argv) {
    int json = 0, verbose = 0, n_in = 0;
    const char **inputs = (const char **)argv; /* reuses argv slots: inputs never outnumber argc */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            info_help();
            return 0;
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) verbose = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "aaclip info: unknown option '%s'\n", argv[i]);
            return 2;
        } else inputs[n_in++] = argv[i];
    }
    if (!n_in) {
        fprintf(stderr, "aaclip info: no INPUT given (see aaclip info --help)\n");
        return 2;
    }
    aac_scan *s = NULL;
    aac_error err = {0};
    if (aac_scan_paths(inputs, n_in, &s, &err) != AAC_OK) {
        fprintf(stderr, "aaclip info: %s\n", err.message);
        return 1;
    }
    const int n = aac_scan_series_count(s), nn = aac_scan_note_count(s), np = aac_scan_image_count(s);
    if (json) {
        json_t *root = json_object(), *arr = json_array(), *notes = json_array(), *pics = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, series_json(aac_scan_series(s, i)));
        for (int i = 0; i < np; i++) json_array_append_new(pics, json_string(aac_scan_image(s, i)));
        for (int i = 0; i < nn; i++) {
            aac_note_level lv;
            const char *msg = aac_scan_note(s, i, &lv);
            if (lv == AAC_NOTE_DEBUG && !verbose) continue;
            json_t *o = json_object();
            json_object_set_new(o, "level", json_string(lv == AAC_NOTE_DEBUG ? "debug" : "warning"));
            json_object_set_new(o, "message", json_string(msg));
            json_array_append_new(notes, o);
        }
        json_object_set_new(root, "series", arr);
        json_object_set_new(root, "pictures", pics);
        json_object_set_new(root, "notes", notes);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(root);
    } else {
        for (int i = 0; i < n; i++) series_text(i, n, aac_scan_series(s, i));
        for (int i = 0; i < nn; i++) {
            aac_note_level lv;
            const char *msg = aac_scan_note(s, i, &lv);
            if (lv == AAC_NOTE_WARNING) printf("warning: %s\n", msg);
            else if (verbose) printf("skipped: %s\n", msg);
        }
        if (np) printf("%d picture%s (PNG/JPEG), scored one by one by `aaclip score`%s\n", np, np == 1 ? "" : "s",
                       verbose ? ":" : "");
        for (int i = 0; verbose && i < np; i++) printf("  %s\n", aac_scan_image(s, i));
        if (!n && !np) printf("no image series found\n");
    }
    aac_scan_free(s);
    return n || np ? 0 : 1;
}
