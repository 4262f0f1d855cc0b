/* cmd_phantoms.c - aaclip make-phantoms: synthetic CT-like slices with lesions and their
 * dataset file (the demo model's training and test data). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaclip_data.h"
#include "cli.h"
#include "cmd_train.h"

static void phantoms_help(void) {
    printf("usage: aaclip make-phantoms -o DIR [--count N] [--seed N] [--size S] [--anomalous F]\n"
           "                            [--class NAME] [--jsonl NAME]\n"
           "\n"
           "Writes N synthetic CT-like axial slices (PNG, S x S grey) to DIR/images, the masks of the\n"
           "anomalous ones to DIR/masks, and DIR/data.jsonl in the AA-CLIP dataset format. Slice i\n"
           "depends only on (seed, i). A test pattern for the pipeline, not anatomy.\n"
           "\n"
           "  -o, --output DIR   output folder (created)\n"
           "  --count N          number of slices (default 100)\n"
           "  --seed N           seed (default 1)\n"
           "  --size S           side in pixels (default 256)\n"
           "  --anomalous F      fraction with lesions, spread evenly (default 0.5)\n"
           "  --class NAME       class_name of every line (default phantom)\n"
           "  --jsonl NAME       name of the dataset file in DIR (default data.jsonl)\n");
}

int cmd_make_phantoms(int argc, char **argv) {
    const char *out = NULL, *cls = "phantom", *jsonl = "data.jsonl";
    int count = 100, seed = 1, size = 256;
    double anomalous = 0.5;
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
        else if (!strcmp(a, "--class")) cls = v;
        else if (!strcmp(a, "--jsonl")) jsonl = v;
        else if (!strcmp(a, "--count")) {
            if (parse_int(a, v, 1, 10000000, &count)) return 2;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &seed)) return 2;
        } else if (!strcmp(a, "--size")) {
            if (parse_int(a, v, 32, 4096, &size)) return 2;
        } else if (!strcmp(a, "--anomalous")) {
            char *end;
            anomalous = strtod(v, &end);
            if (*end || end == v || !(anomalous >= 0 && anomalous <= 1)) {
                fprintf(stderr, "aaclip make-phantoms: --anomalous expects a number in 0..1, got '%s'\n", v);
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
    aac_error err = {0};
    if (aac_phantom_dataset_write(out, jsonl, count, (uint64_t)seed, size, anomalous, cls, &err)) {
        fprintf(stderr, "aaclip: %s\n", err.message);
        return 1;
    }
    printf("wrote %d phantoms (%s) to %s/%s\n", count, cls, out, jsonl);
    return 0;
}
