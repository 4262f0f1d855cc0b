/* cmd_sample.c - `aaclip make-sample-study`: the synthetic CT study with planted lesions that
 * testdata/sample-study holds (dicom/synth/sample_study.c does the work). */
#include <stdio.h>
#include <string.h>

#include "aaclip_synth.h"
#include "cli.h"
#include "cmd_sample.h"

static void sample_help(void) {
    aac_ct_phantom_params d = aac_ct_phantom_default_params();
    printf("usage: aaclip make-sample-study -o DIR [--seed N] [--size N] [--slices N] [--lesions N] [--gap MM]\n"
           "                                [--enhanced]\n"
           "\n"
           "Writes a synthetic abdominal CT (not patient data) as a real DICOM CT series, with\n"
           "lesions planted in the liver and their ground truth:\n"
           "  DIR/dicom/IM0001.dcm ...   CT Image Storage, one file per slice (score this folder)\n"
           "  DIR/lesions.json           lesion centres and radii (LPS mm), HU, voxel counts, UIDs\n"
           "  DIR/lesion_mask.nii.gz     label volume on the same grid (0 background, k = lesion k)\n"
           "The same options give byte-identical files (UIDs derive from them, dates are fixed).\n"
           "\n"
           "  -o, --output DIR   output folder (created; existing files of the same names replaced)\n"
           "  --seed N           anatomy noise and lesion placement (default %llu)\n"
           "  --size N           rows = columns, 32..2048 (default %d); field of view %g mm\n"
           "  --slices N         slices of %g mm, 1..2000 (default %d)\n"
           "  --lesions N        lesions, 0..%d (default %d)\n"
           "  --gap MM           least distance between lesions, 0..100 mm (default %g)\n"
           "  --enhanced         one Enhanced CT multi-frame object, DIR/dicom/enhanced_ct.dcm, instead\n"
           "                     of one file per slice (same phantom, its own UIDs)\n",
           (unsigned long long)d.seed, d.size, d.fov_mm, d.slice_mm, d.slices, AAC_CT_PHANTOM_MAX_LESIONS,
           d.n_lesions, d.lesion_gap_mm);
}

int cmd_make_sample_study(int argc, char **argv) {
    aac_ct_phantom_params p = aac_ct_phantom_default_params();
    const char *out = NULL;
    int enhanced = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            sample_help();
            return 0;
        }
        if (!strcmp(a, "--enhanced")) {
            enhanced = 1;
            continue;
        }
        int n = 0;
        if (!v) {
            fprintf(stderr, "aaclip make-sample-study: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &n)) return 2;
            p.seed = (uint64_t)n;
        } else if (!strcmp(a, "--size")) {
            if (parse_int(a, v, 32, 2048, &p.size)) return 2;
        } else if (!strcmp(a, "--slices")) {
            if (parse_int(a, v, 1, 2000, &p.slices)) return 2;
        } else if (!strcmp(a, "--lesions")) {
            if (parse_int(a, v, 0, AAC_CT_PHANTOM_MAX_LESIONS, &p.n_lesions)) return 2;
        } else if (!strcmp(a, "--gap")) {
            if (parse_int(a, v, 0, 100, &n)) return 2;
            p.lesion_gap_mm = n;
        } else {
            fprintf(stderr, "aaclip make-sample-study: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "aaclip make-sample-study: -o DIR is required (see --help)\n");
        return 2;
    }
    aac_error err = {0};
    if ((enhanced ? aac_write_sample_study_enhanced : aac_write_sample_study)(&p, out, &err) != AAC_OK) {
        fprintf(stderr, "aaclip make-sample-study: %s\n", err.message);
        return 1;
    }
    printf("wrote a synthetic CT study (%d x %d x %d, %d lesions, seed %llu%s) to %s/: dicom/, lesions.json, "
           "lesion_mask.nii.gz\n",
           p.size, p.size, p.slices, p.n_lesions, (unsigned long long)p.seed, enhanced ? ", enhanced CT" : "", out);
    return 0;
}
