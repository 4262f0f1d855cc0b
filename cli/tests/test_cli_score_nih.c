/* test_cli_score_nih.c - `aaclip score` on real scanner data (../shared/dicom/dcm_qa_nih: GE and
 * Siemens MR, 4-D EPI, README files inside the series folders) with the demo model: every
 * series is scored, each 3-D volume gets its outputs, and the non-DICOM files are reported. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

int main(void) {
    const char *in = tu_shared("dicom/dcm_qa_nih/In");
    char dir[] = "/tmp/aac_test_nih_XXXXXX", cmd[4096], p[4200];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(cmd, sizeof cmd, "%s score %s -o %s/out --model %s/testdata/demo-model --quiet --formats seg,sr,nifti",
             AACLIP_EXE, in, dir, AACLIP_SOURCE_DIR);
    int st = system(cmd);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "score on dcm_qa_nih failed (status %d)", st);
    snprintf(p, sizeof p, "%s/out/summary.json", dir);
    json_t *s = json_load_file(p, 0, NULL);
    CHECK(s != NULL, "no summary");
    if (s) {
        json_t *rows = json_object_get(s, "series"), *r;
        size_t i;
        int done = 0, volumes = 0;
        json_array_foreach(rows, i, r) {
            done += !strcmp(json_string_value(json_object_get(r, "status")), "done");
            volumes += (int)json_array_size(json_object_get(r, "volumes"));
            CHECK(json_integer_value(json_object_get(r, "slices_scored")) +
                          json_integer_value(json_object_get(r, "slices_skipped_air")) > 0,
                  "series %zu scored no slice", i);
        }
        CHECK(json_array_size(rows) == 8 && done == 8, "%zu series, %d done (8 expected)", json_array_size(rows), done);
        CHECK(volumes == 4 * 10 + 4 * 2, "%d 3-D volumes scored, 48 expected (4 x 10 GE, 4 x 2 Siemens)", volumes);
        char *notes = json_dumps(json_object_get(s, "skipped_files"), 0);
        CHECK(notes && strstr(notes, "README-Series.txt"), "the README files are not reported as skipped");
        free(notes);
        json_decref(s);
    }
    snprintf(cmd, sizeof cmd, "find %s/out -name seg_binary.dcm | wc -l | grep -qx 48", dir);
    CHECK(system(cmd) == 0, "not one SEG per 3-D volume");
    if (!tu_failures) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    return tu_finish("test_cli_score_nih");
}
