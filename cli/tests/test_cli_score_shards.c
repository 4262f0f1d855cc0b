/* test_cli_score_shards.c - job arrays: `aaclip score --shard 1/2` and `--shard 2/2` into one
 * OUTDIR equal the single-process run (compare_runs.py: rows in the same order, the same
 * folders, maps byte for byte); the last shard merges by itself, `aaclip summary merge` gives
 * the same; before the second shard has run, merge lists its series as "not scored" and exits
 * 1; the split does not depend on the run (shards rerun skip their own series); bad --shard
 * values are usage errors. Batch: generated phantom studies with their mask volumes and a
 * picture; demo model, one thread. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tu_run.h"

static char g_dir[] = "/tmp/aac_test_shards_XXXXXX";


static int count_status(const char *out, const char *status) {
    char p[600];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *s = json_load_file(p, 0, NULL);
    int n = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(s, "series")); i++)
        n += !strcmp(json_string_value(json_object_get(json_array_get(json_object_get(s, "series"), i), "status")),
                     status);
    json_decref(s);
    return n;
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    char in[4096] = "", opts[1024], ref[600], out[600];
    const int slices[3] = {4, 7, 10};
    for (int s = 0; s < 3; s++) {
        CHECK(tu_sh("%s make-sample-study -o %s/ph%d --seed %d --size 64 --slices %d --lesions 0 >/dev/null", AACLIP_EXE,
                 g_dir, s, 60 + s, slices[s]) == 0, "make-sample-study %d", s);
        snprintf(in + strlen(in), sizeof in - strlen(in), " %s/ph%d", g_dir, s);
    }
    CHECK(tu_sh("/usr/bin/python3 %s/make_rgb_png.py %s/photo.png", AACLIP_TEST_SOURCE_DIR, g_dir) == 0, "picture");
    snprintf(in + strlen(in), sizeof in - strlen(in), " %s/photo.png", g_dir);
    snprintf(opts, sizeof opts, "--model %s/testdata/demo-model --threads 1 --pictures always --quiet", AACLIP_SOURCE_DIR);
    snprintf(ref, sizeof ref, "%s/ref", g_dir);
    snprintf(out, sizeof out, "%s/array", g_dir);
    CHECK(tu_sh("timeout -k 10 600 %s score %s -o %s %s", AACLIP_EXE, in, ref, opts) == 0, "single process");

    /* shard 1 of 2: its own summary; no combined one yet; merge shows shard 2's as not scored */
    CHECK(tu_sh("timeout -k 10 600 %s score %s -o %s %s --shard 1/2", AACLIP_EXE, in, out, opts) == 0, "shard 1/2");
    char p[700];
    snprintf(p, sizeof p, "%s/summary.json", out);
    CHECK(access(p, F_OK) != 0, "a combined summary before shard 2 ran");
    snprintf(p, sizeof p, "%s/shards/1-of-2/summary.json", out);
    CHECK(access(p, F_OK) == 0, "no summary of shard 1");
    CHECK(tu_sh("%s summary merge %s --quiet", AACLIP_EXE, out) == 1, "merge with a shard missing: exit status not 1");
    const int missing = count_status(out, "not scored"), first = count_status(out, "done");
    CHECK(missing >= 1 && first >= 1 && missing + first == 7, "after shard 1: %d done, %d not scored (7 series)", first,
          missing);

    /* shard 2 of 2: the last one merges; the result is the single-process run */
    CHECK(tu_sh("timeout -k 10 600 %s score %s -o %s %s --shard 2/2", AACLIP_EXE, in, out, opts) == 0, "shard 2/2");
    CHECK(tu_sh("/usr/bin/python3 %s/compare_runs.py %s %s", AACLIP_TEST_SOURCE_DIR, ref, out) == 0,
          "shards 1/2 + 2/2 differ from one process");
    CHECK(count_status(out, "done") == 7, "merged: not 7 series done");
    CHECK(tu_sh("%s summary merge %s --quiet", AACLIP_EXE, out) == 0, "summary merge: exit status");
    CHECK(tu_sh("/usr/bin/python3 %s/compare_runs.py %s %s", AACLIP_TEST_SOURCE_DIR, ref, out) == 0,
          "aaclip summary merge differs from one process");

    /* the split is a property of the inputs: rerunning shard 2 finds its series done */
    CHECK(tu_sh("timeout -k 10 600 %s score %s -o %s %s --shard 2/2", AACLIP_EXE, in, out, opts) == 0, "rerun shard 2/2");
    snprintf(p, sizeof p, "%s/shards/2-of-2", out);
    CHECK(count_status(p, "skipped (already done)") == 7 - first && count_status(p, "done") == 0,
          "rerun of shard 2: its series are not all skipped");

    /* usage errors */
    const char *bad[] = {"0/2", "3/2", "1/0", "x", "1/2/3", "-1/2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(tu_sh("%s score %s -o %s --shard %s 2>/dev/null", AACLIP_EXE, in, out, bad[i]) == 2, "--shard %s accepted",
              bad[i]);
    CHECK(tu_sh("%s summary merge %s/nothing --quiet 2>/dev/null", AACLIP_EXE, g_dir) == 2, "merge of nothing");
    CHECK(tu_sh("%s summary 2>/dev/null", AACLIP_EXE) == 2, "summary without merge");

    if (!tu_failures) tu_sh("rm -rf %s", g_dir);
    return tu_finish("test_cli_score_shards");
}
