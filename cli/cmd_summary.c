/* cmd_summary.c - `aaclip summary merge OUTDIR`: the summaries that `aaclip score --shard K/N`
 * tasks wrote (OUTDIR/shards/K-of-N/) into OUTDIR/summary.json and summary.csv, rows in batch
 * order, as one process would have written them (aac_score_merge_shards). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void summary_help(void) {
    printf("usage: aaclip summary merge OUTDIR [--quiet]\n"
           "\n"
           "Merges the shard summaries of a job array (aaclip score ... --shard K/N -o OUTDIR) into\n"
           "OUTDIR/summary.json and OUTDIR/summary.csv, rows in the order one process would have\n"
           "written them. A series whose shard has not written its row yet is listed with status\n"
           "\"not scored\" and the shard to run again. The last shard to finish merges by itself;\n"
           "run this when a shard failed or to look at a run in progress.\n"
           "Exit status: 0 every shard finished and every series done or already done, 1 some\n"
           "series failed or are not scored, 2 usage or no shard summaries.\n");
}

int cmd_summary(int argc, char **argv) {
    const char *root = NULL;
    int quiet = 0, merge = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            summary_help();
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!merge && !strcmp(a, "merge")) {
            merge = 1;
        } else if (merge && !root && a[0] != '-') {
            root = a;
        } else {
            fprintf(stderr, "aaclip summary: unexpected '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!merge || !root) {
        fprintf(stderr, "aaclip summary: give merge OUTDIR (see --help)\n");
        return 2;
    }
    aac_score_counts c;
    int complete = 0;
    aac_error err = {0};
    aac_status st = aac_score_merge_shards(root, &c, &complete, &err);
    if (st) {
        fprintf(stderr, "aaclip summary merge: %s\n", err.message);
        return st == AAC_ERR_MISSING ? 2 : 1;
    }
    if (!quiet)
        fprintf(stderr, "aaclip: %s/summary.json: %d series done, %d skipped (already done), %d failed or not scored%s%s\n",
                root, c.done, c.skipped, c.failed, c.interrupted ? ", interrupted" : "",
                complete ? "" : "; some shards have not finished (see the rows \"not scored\")");
    return complete && !c.failed && !c.interrupted ? 0 : 1;
}
