/* test_cli_score_fallback.c - `aaclip score` without --model uses the bundled demo model and
 * says so where a user cannot miss it: a WARNING on stderr naming the model, "demo_model" in
 * summary.json (and the model's path there), the banner of report.html. With --model: none of
 * that. Where aaclip's data cannot be found (AACLIP_DATA_DIR naming an empty folder), no silent
 * fallback: usage error, asking for --model. The data come from the build tree's share/aaclip,
 * found from the binary's place (nothing compiled in). */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* memmem */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char g_dir[] = "/tmp/aac_test_fallback_XXXXXX";


static int contains(const char *path, const char *needle) {
    size_t n;
    char *s = tu_read_file(path, &n);
    int found = s && memmem(s, n, needle, strlen(needle)) != NULL;
    free(s);
    return found;
}

int main(void) {
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    char cmd[8192], in[1024], p[1200];
    snprintf(in, sizeof in, "%s/in", g_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp %s/testdata/sample-study/dicom/IM001[4-7].dcm '%s/'", in,
             AACLIP_SOURCE_DIR, in);
    CHECK(system(cmd) == 0, "fixture");

    /* no --model: the demo model, loudly */
    snprintf(cmd, sizeof cmd, "'%s' score '%s' -o '%s/demo' --quiet --formats png 2> '%s/demo.err'", AACLIP_EXE, in,
             g_dir, g_dir);
    CHECK(system(cmd) == 0, "score without --model failed");
    snprintf(p, sizeof p, "%s/demo.err", g_dir);
    char want[1200];
    snprintf(want, sizeof want, "WARNING: no --model given: using the bundled DEMO model (%s/share/aaclip/demo-model)",
             AACLIP_BINARY_DIR);
    CHECK(contains(p, want) && contains(p, "not for clinical use"), "stderr does not warn: see %s", p);
    snprintf(p, sizeof p, "%s/demo/summary.json", g_dir);
    json_t *s = json_load_file(p, 0, NULL);
    const char *demo = json_string_value(json_object_get(s, "demo_model"));
    const char *model = json_string_value(json_object_get(s, "model"));
    CHECK(demo && strstr(demo, "synthetic, not for clinical use"), "summary.json: demo_model %s", demo ? demo : "absent");
    CHECK(model && strstr(model, "/share/aaclip/demo-model"), "summary.json: model %s", model ? model : "absent");
    printf("without --model: stderr warns, summary.json says \"%s\" (model %s)\n", demo ? demo : "", model ? model : "");
    json_decref(s);
    snprintf(p, sizeof p, "%s/demo/report.html", g_dir);
    CHECK(contains(p, "<p class=\"warn\">DEMO MODEL"), "report.html has no demo banner");

    /* --model given: no warning, no demo_model */
    snprintf(cmd, sizeof cmd,
             "'%s' score '%s' -o '%s/given' --model '%s/testdata/demo-model' --quiet --formats png 2> '%s/given.err'",
             AACLIP_EXE, in, g_dir, AACLIP_SOURCE_DIR, g_dir);
    CHECK(system(cmd) == 0, "score with --model failed");
    snprintf(p, sizeof p, "%s/given.err", g_dir);
    CHECK(!contains(p, "DEMO"), "a warning although --model was given");
    snprintf(p, sizeof p, "%s/given/summary.json", g_dir);
    s = json_load_file(p, 0, NULL);
    CHECK(s && !json_object_get(s, "demo_model"), "summary.json flags the demo model although --model was given");
    json_decref(s);
    snprintf(p, sizeof p, "%s/given/report.html", g_dir);
    CHECK(!contains(p, "DEMO MODEL"), "report.html shows the demo banner although --model was given");

    /* no data folder to be found: refuse, do not guess */
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/empty' && AACLIP_DATA_DIR='%s/empty' ", g_dir, g_dir);
    size_t n = strlen(cmd);
    snprintf(cmd + n, sizeof cmd - n, "'%s' score '%s' -o '%s/none' --quiet 2> '%s/none.err'", AACLIP_EXE, in, g_dir,
             g_dir);
    int st = system(cmd);
    snprintf(p, sizeof p, "%s/none.err", g_dir);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2 && contains(p, "--model"),
          "without data and --model: status %d (2 and a request for --model expected)", WEXITSTATUS(st));
    if (!tu_failures) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    return tu_finish("test_cli_score_fallback");
}
