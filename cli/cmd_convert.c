/* cmd_convert.c - `aaclip convert INPUT... -o OUT`: every series found to NIfTI, with the voxel
 * values, voxel order and affine dcm2niix would write (aac_series_info.nifti_axes: the volume
 * is reordered as it is written). One bad file or series is reported and skipped; the others
 * are still written. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aaclip_dicom.h"
#include "cmd_ingest.h"
#include "fsutil.h"

static void convert_help(void) {
    printf("usage: aaclip convert INPUT... -o OUT [--gz] [--verbose]\n"
           "\n"
           "Converts the image series in the INPUT files and folders (searched recursively;\n"
           "DICOM recognised by content, also gzip-compressed *.dcm.gz, and .nii/.nrrd/.mha\n"
           "volumes) to NIfTI, in dcm2niix's voxel order and affine (rows flipped; 3-D\n"
           "acquisitions turned to the nearest orthogonal orientation).\n"
           "  -o OUT      a .nii or .nii.gz file when the input holds one series; otherwise a\n"
           "              folder (created) with one file per series, named\n"
           "              <series number>_<description>[_part<k>].nii\n"
           "  --gz        write .nii.gz files in the folder (default .nii)\n"
           "  --verbose   also list the files skipped as not images\n"
           "Exit status: 0 when every series was written, 1 when some could not be.\n");
}

/* <number>_<description>[_part<k>] with only [A-Za-z0-9._-]. */
static void series_name(const aac_series_info *in, int index, char *out, size_t cap) {
    char desc[AAC_LO_LEN * 2];
    size_t k = 0;
    for (const char *p = in->series_description; *p && k + 1 < sizeof desc; p++)
        desc[k++] = (isalnum((unsigned char)*p) || *p == '.' || *p == '-') ? *p : '_';
    desc[k] = '\0';
    char num[32];
    if (in->series_number >= 0) snprintf(num, sizeof num, "%d", in->series_number);
    else snprintf(num, sizeof num, "s%03d", index + 1);
    if (in->part) snprintf(out, cap, "%s_%s_part%d", num, k ? desc : "series", in->part);
    else snprintf(out, cap, "%s_%s", num, k ? desc : "series");
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

int cmd_convert(int argc, char **argv) {
    const char *out = NULL;
    int gz = 0, verbose = 0, n_in = 0;
    const char **inputs = (const char **)argv; /* reuses argv slots: inputs never outnumber argc */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            convert_help();
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (++i >= argc) {
                fprintf(stderr, "aaclip convert: %s needs a value\n", argv[i - 1]);
                return 2;
            }
            out = argv[i];
        } else if (!strcmp(argv[i], "--gz")) gz = 1;
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) verbose = 1;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "aaclip convert: unknown option '%s'\n", argv[i]);
            return 2;
        } else inputs[n_in++] = argv[i];
    }
    if (!n_in || !out) {
        fprintf(stderr, "aaclip convert: need INPUT... and -o OUT (see aaclip convert --help)\n");
        return 2;
    }
    aac_scan *s = NULL;
    aac_error err = {0};
    if (aac_scan_paths(inputs, n_in, &s, &err) != AAC_OK) {
        fprintf(stderr, "aaclip convert: %s\n", err.message);
        return 1;
    }
    int failed = 0;
    for (int i = 0; i < aac_scan_note_count(s); i++) {
        aac_note_level lv;
        const char *msg = aac_scan_note(s, i, &lv);
        if (lv == AAC_NOTE_WARNING) {
            fprintf(stderr, "warning: %s\n", msg);
        } else if (verbose) fprintf(stderr, "skipped: %s\n", msg);
    }
    const int n = aac_scan_series_count(s);
    const int to_file = n == 1 && (fs_ends_with(out, ".nii") || fs_ends_with(out, ".nii.gz"));
    if (n == 0) {
        fprintf(stderr, "aaclip convert: no image series found\n");
        aac_scan_free(s);
        return 1;
    }
    if (!to_file) {
        if (fs_ends_with(out, ".nii") || fs_ends_with(out, ".nii.gz")) {
            fprintf(stderr, "aaclip convert: %d series found: -o must name a folder, not %s\n", n, out);
            aac_scan_free(s);
            return 2;
        }
        if (mkdir(out, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "aaclip convert: cannot create folder %s: %s\n", out, strerror(errno));
            aac_scan_free(s);
            return 1;
        }
    }
    for (int i = 0; i < n; i++) {
        const aac_series_info *in = aac_scan_series(s, i);
        char path[4096];
        if (to_file) {
            snprintf(path, sizeof path, "%s", out);
        } else {
            char name[256];
            series_name(in, i, name, sizeof name);
            snprintf(path, sizeof path, "%s/%s%s", out, name, gz ? ".nii.gz" : ".nii");
            for (int k = 2; file_exists(path) && k < 1000; k++) /* never overwrite a sibling */
                snprintf(path, sizeof path, "%s/%s_%d%s", out, name, k, gz ? ".nii.gz" : ".nii");
        }
        aac_volume *v = NULL;
        if (aac_scan_load(s, i, &v, &err) != AAC_OK) {
            fprintf(stderr, "error: series %d (%s): %s\n", in->series_number, in->series_uid, err.message);
            failed++;
            continue;
        }
        for (int k = 0; k < v->n_warnings; k++)
            fprintf(stderr, "warning: series %d (%s): %s\n", in->series_number, v->source, v->warnings[k]);
        /* dcm2niix's statement of the grid (its slice spacing and anchor), in its voxel order */
        aac_volume w = *v;
        if (in->nifti_spacing[0] > 0) {
            memcpy(w.origin, in->nifti_origin, sizeof w.origin);
            memcpy(w.spacing, in->nifti_spacing, sizeof w.spacing);
        }
        if (aac_volume_write_nifti_axes(&w, in->nifti_axes, path, &err) != AAC_OK) {
            fprintf(stderr, "error: %s\n", err.message);
            failed++;
        } else {
            printf("wrote %s (%d x %d x %d", path, v->dim[0], v->dim[1], v->dim[2]);
            if (v->dim[3] > 1) printf(" x %d", v->dim[3]);
            printf(")\n");
        }
        aac_volume_free(v);
    }
    aac_scan_free(s);
    return failed ? 1 : 0;
}
