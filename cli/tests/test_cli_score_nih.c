/* test_cli_score_nih.c - `aaclip score` on studies as scanners export them, with the demo model:
 * every series is scored, each 3-D volume of a 4-D series gets its outputs, and the non-DICOM
 * files inside series folders are reported, not scored.
 * In the repository: eight slices of the sample study (CT) and a 4-D MR series of 3 positions x
 * 4 volumes (gen_scanner_like.py), each folder with a README-Series.txt. With ../shared also the
 * real scanner data of dcm_qa_nih (GE and Siemens MR, 4-D EPI, README files inside the series
 * folders). */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static int run(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Scores in into dir/out and checks: n_series all done, n_volumes 3-D volumes with outputs,
 * one SEG per volume, the README files reported. */
static void check_scoring(const char *what, const char *in, const char *dir, int n_series, int n_volumes) {
    char cmd[4096], p[4200];
    printf("%s\n", what);
    snprintf(cmd, sizeof cmd, "%s score '%s' -o '%s/out' --model %s/testdata/demo-model --quiet --formats seg,sr,nifti",
             AACLIP_EXE, in, dir, AACLIP_SOURCE_DIR);
    CHECK(run(cmd) == 0, "%s: score failed", what);
    snprintf(p, sizeof p, "%s/out/summary.json", dir);
    json_t *s = json_load_file(p, 0, NULL);
    CHECK(s != NULL, "%s: no summary", what);
    if (s) {
        json_t *rows = json_object_get(s, "series"), *r;
        size_t i;
        int done = 0, volumes = 0;
        json_array_foreach(rows, i, r) {
            done += !strcmp(json_string_value(json_object_get(r, "status")), "done");
            volumes += (int)json_array_size(json_object_get(r, "volumes"));
            CHECK(json_integer_value(json_object_get(r, "slices_scored")) +
                          json_integer_value(json_object_get(r, "slices_skipped_air")) > 0,
                  "%s: series %zu scored no slice", what, i);
        }
        printf("  %zu series, %d done, %d 3-D volumes\n", json_array_size(rows), done, volumes);
        CHECK((int)json_array_size(rows) == n_series && done == n_series, "%s: %zu series, %d done (%d expected)",
              what, json_array_size(rows), done, n_series);
        CHECK(volumes == n_volumes, "%s: %d 3-D volumes scored, %d expected", what, volumes, n_volumes);
        char *notes = json_dumps(json_object_get(s, "skipped_files"), 0);
        CHECK(notes && strstr(notes, "README-Series.txt"), "%s: the README files are not reported as skipped", what);
        free(notes);
        json_decref(s);
    }
    snprintf(cmd, sizeof cmd, "find '%s/out' -name seg_binary.dcm | wc -l | grep -qx %d", dir, n_volumes);
    CHECK(run(cmd) == 0, "%s: not one SEG per 3-D volume", what);
}

int main(void) {
    char dir[] = "/tmp/aac_test_nih_XXXXXX", cmd[16384], in[1024];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/ct' && cp %s/testdata/sample-study/dicom/IM001[2-9].dcm '%s/ct/' && "
             "echo 'CT, 8 slices' > '%s/ct/README-Series.txt' && /usr/bin/python3 %s/gen_scanner_like.py '%s'",
             in, AACLIP_SOURCE_DIR, in, in, AACLIP_TEST_SOURCE_DIR, in);
    CHECK(run(cmd) == 0, "fixtures");
    check_scoring("a CT and a 4-D MR series exported with README files", in, dir, 2, 1 + 4);

    const char *nih = tu_shared_opt("dicom/dcm_qa_nih/In");
    if (nih) {
        char dir2[1024];
        snprintf(dir2, sizeof dir2, "%s/nih", dir);
        snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir2);
        CHECK(run(cmd) == 0, "mkdir");
        /* GE: 4 series x 10 volumes; Siemens: 4 mosaic series x 2 volumes */
        check_scoring("dcm_qa_nih (GE and Siemens 4-D EPI)", nih, dir2, 8, 4 * 10 + 4 * 2);
    }
    if (!tu_failures) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    return tu_finish("test_cli_score_nih");
}
