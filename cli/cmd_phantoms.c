/* cmd_phantoms.c - aaclip make-phantoms: slices of synthetic CT phantoms with lesions and their
 * dataset file (the demo model's training and test data). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_data.h"
#include "aaclip_synth.h"
#include "cli.h"
#include "cmd_train.h"

static void phantoms_help(void) {
    const aac_phantom_set_params d = aac_phantom_set_default_params();
    const aac_ct_phantom_params ct = aac_ct_phantom_default_params();
    printf("usage: aaclip make-phantoms -o DIR [--volumes N] [--seed N] [--size S] [--slices Z]\n"
           "                            [--lesions MIN-MAX] [--gap MM] [--noise HU] [--class NAME] [--jsonl NAME]\n"
           "\n"
           "Writes a training or test set cut from synthetic abdominal CT volumes (the anatomy of the\n"
           "sample study, `aaclip make-sample-study`, with other lesions): every axial slice of N\n"
           "phantoms as an 8-bit PNG in the abdomen window (what `aaclip score` feeds the model) to\n"
           "DIR/images, the masks of the slices that cut a lesion to DIR/masks, and DIR/data.jsonl in\n"
           "the AA-CLIP dataset format. Volume i depends only on (seed, i). Not anatomy to learn\n"
           "medicine from: data to exercise and test the pipeline.\n"
           "\n"
           "  -o, --output DIR   output folder (created)\n"
           "  --volumes N        number of phantom volumes (default %d)\n"
           "  --seed N           seed (default %llu)\n"
           "  --size S           rows = columns (default %d; field of view %g mm)\n"
           "  --slices Z         slices of %g mm per volume (default %d)\n"
           "  --lesions MIN-MAX  liver lesions per volume (default %d-%d; at most %d)\n"
           "  --gap MM           least distance between lesions (default %g)\n"
           "  --noise HU         noise standard deviation (default %g)\n"
           "  --class NAME       class_name of every line (default %s)\n"
           "  --jsonl NAME       name of the dataset file in DIR (default %s)\n",
           d.volumes, (unsigned long long)d.seed, d.size, ct.fov_mm, ct.slice_mm, d.slices, d.min_lesions,
           d.max_lesions, AAC_CT_PHANTOM_MAX_LESIONS, d.lesion_gap_mm, d.noise_hu, d.class_name, d.jsonl_name);
}

int cmd_make_phantoms(int argc, char **argv) {
    const char *out = NULL;
    aac_phantom_set_params p = aac_phantom_set_default_params();
    int seed = (int)p.seed;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            phantoms_help();
            return 0;
        }
        if (!v) {
            fprintf(stderr, "aaclip make-phantoms: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
        else if (!strcmp(a, "--class")) p.class_name = v;
        else if (!strcmp(a, "--jsonl")) p.jsonl_name = v;
        else if (!strcmp(a, "--volumes")) {
            if (parse_int(a, v, 1, 100000, &p.volumes)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &seed)) return 2;
        } else if (!strcmp(a, "--size")) {
            if (parse_int(a, v, 32, 2048, &p.size)) return 2;
        } else if (!strcmp(a, "--slices")) {
            if (parse_int(a, v, 1, 2000, &p.slices)) return 2;
        } else if (!strcmp(a, "--lesions")) {
            int lo, hi, used = 0;
            if (sscanf(v, "%d-%d%n", &lo, &hi, &used) != 2 || v[used] || lo < 0 || hi < lo ||
                hi > AAC_CT_PHANTOM_MAX_LESIONS) {
                fprintf(stderr, "aaclip make-phantoms: --lesions expects MIN-MAX within 0-%d, got '%s'\n",
                        AAC_CT_PHANTOM_MAX_LESIONS, v);
                return 2;
            }
            p.min_lesions = lo, p.max_lesions = hi;
        } else if (!strcmp(a, "--gap")) {
            int g;
            if (parse_int(a, v, 0, 100, &g)) return 2;
            p.lesion_gap_mm = g;
        } else if (!strcmp(a, "--noise")) {
            char *end;
            p.noise_hu = strtod(v, &end);
            if (*end || end == v || !(p.noise_hu >= 0 && p.noise_hu <= 500)) {
                fprintf(stderr, "aaclip make-phantoms: --noise expects HU in 0..500, got '%s'\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "aaclip make-phantoms: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "aaclip make-phantoms: -o DIR is required\n");
        return 2;
    }
    p.seed = (uint64_t)seed;
    aac_error err = {0};
    int n = 0, anomalous = 0;
    if (aac_phantom_dataset_write(out, &p, &n, &anomalous, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        return 1;
    }
    printf("wrote %d slices of %d phantoms (%d with lesions, class %s) to %s/%s\n", n, p.volumes, anomalous,
           p.class_name, out, p.jsonl_name);
    return 0;
}
