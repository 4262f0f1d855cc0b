/* test_cli_score_mpi.c - `mpirun --oversubscribe -np 3 aaclip score` equals the single-process
 * run (compare_runs.py: the same rows in the same order, the same folders, the maps byte for
 * byte), with a failing series reported failed and the run going on (exit 1 as alone); one
 * rank killed (SIGKILL) on its first series under --enable-recovery: the run completes and the
 * summary is still the single-process one; a rerun skips every finished series.
 * Batch: the sample study, two generated phantom studies (each with its mask volume), a colour
 * picture (--pictures always), the corrupt-series fixtures when pydicom is there, and the
 * Siemens half of ../shared's dcm_qa_nih (mosaics, 4-D) when present. Demo model, one thread
 * per rank as in the reference (maps are bit-identical at equal thread counts).
 * MPI stays on this machine: shared memory (vader) and loopback; every run is bounded by
 * timeout(1). Skipped (77) when aaclip was built without MPI. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tu_run.h"

static char g_dir[] = "/tmp/aac_test_mpi_XXXXXX";


static json_t *counts_of(const char *out) {
    char p[600];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *s = json_load_file(p, 0, NULL), *c = json_deep_copy(json_object_get(s, "counts"));
    json_decref(s);
    return c;
}

int main(void) {
#ifndef AACLIP_MPIEXEC
    printf("SKIP: aaclip was built without MPI (Debian: libopenmpi-dev openmpi-bin)\n");
    return 77;
#else
    if (access(AACLIP_MPIEXEC, X_OK)) {
        printf("SKIP: %s not found (Debian: openmpi-bin)\n", AACLIP_MPIEXEC);
        return 77;
    }
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    char in[8192] = "", out[600];
    /* the batch */
    for (int s = 1; s <= 2; s++) {
        CHECK(tu_sh("%s make-sample-study -o %s/ph%d --seed %d --size 96 --slices 10 --lesions 1 >/dev/null", AACLIP_EXE,
                 g_dir, s, 40 + s) == 0, "make-sample-study %d", s);
        snprintf(in + strlen(in), sizeof in - strlen(in), " %s/ph%d", g_dir, s);
    }
    CHECK(tu_sh("/usr/bin/python3 %s/make_rgb_png.py %s/photo.png", AACLIP_TEST_SOURCE_DIR, g_dir) == 0, "picture");
    snprintf(in + strlen(in), sizeof in - strlen(in), " %s/photo.png %s/testdata/sample-study/dicom", g_dir,
             AACLIP_SOURCE_DIR);
    int expect_rc = 0;
    if (tu_sh("/usr/bin/python3 -c 'import pydicom' 2>/dev/null") == 0 &&
        tu_sh("/usr/bin/python3 %s/gen_score_fixtures.py %s/fixtures", AACLIP_TEST_SOURCE_DIR, g_dir) == 0) {
        snprintf(in + strlen(in), sizeof in - strlen(in), " %s/fixtures", g_dir);
        expect_rc = 1; /* study C cannot be decoded: failed, the run goes on, exit 1 */
    } else {
        printf("note: no python3-pydicom: the batch has no failing series\n");
    }
    struct stat sb;
    if (stat(AACLIP_SHARED_DIR "/dicom/dcm_qa_nih/In/20180918Si", &sb) == 0)
        snprintf(in + strlen(in), sizeof in - strlen(in), " " AACLIP_SHARED_DIR "/dicom/dcm_qa_nih/In/20180918Si");
    else
        printf("note: ../shared/dicom/dcm_qa_nih absent: generated series only\n");
    char opts[1024];
    snprintf(opts, sizeof opts, "--model %s/testdata/demo-model --threads 1 --pictures always --quiet", AACLIP_SOURCE_DIR);
    /* Open MPI on this machine only: shared memory between ranks, loopback for the launcher */
    char mpi[1024];
    snprintf(mpi, sizeof mpi,
             "env OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_oob_tcp_if_include=lo "
             "OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_hwloc_base_binding_policy=none timeout -k 10 600 %s%s --oversubscribe",
             AACLIP_MPIEXEC, getuid() == 0 ? " --allow-run-as-root" : "");

    /* the reference: one process */
    char ref[600];
    snprintf(ref, sizeof ref, "%s/ref", g_dir);
    int rc = tu_sh("timeout -k 10 600 %s score %s -o %s %s", AACLIP_EXE, in, ref, opts);
    CHECK(rc == expect_rc, "single process: exit %d, expected %d", rc, expect_rc);

    /* 3 ranks */
    snprintf(out, sizeof out, "%s/mpi", g_dir);
    rc = tu_sh("%s -np 3 %s score %s -o %s %s 2>%s/mpi.log", mpi, AACLIP_EXE, in, out, opts, g_dir);
    CHECK(rc == expect_rc, "mpirun -np 3: exit %d, expected %d", rc, expect_rc);
    CHECK(tu_sh("/usr/bin/python3 %s/compare_runs.py %s %s", AACLIP_TEST_SOURCE_DIR, ref, out) == 0,
          "mpirun -np 3 differs from one process");
    char p[700];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *s = json_load_file(p, 0, NULL);
    int ranks_seen[3] = {0};
    for (size_t i = 0; i < json_array_size(json_object_get(s, "series")); i++) {
        json_t *row = json_array_get(json_object_get(s, "series"), i);
        const json_int_t r = json_integer_value(json_object_get(row, "rank"));
        CHECK(json_is_integer(json_object_get(row, "rank")) && r >= 0 && r < 3 && json_object_get(row, "host"),
              "row %zu does not say where it was scored", i);
        if (r >= 0 && r < 3) ranks_seen[r]++;
    }
    json_decref(s);
    printf("series scored per rank: %d, %d, %d\n", ranks_seen[0], ranks_seen[1], ranks_seen[2]);
    CHECK(tu_sh("ls -a %s | grep -q aaclip-mpi", out) != 0, "the run's marker file was left behind");

    /* rank 2 dies (SIGKILL) on its first series: it goes to another rank, the run completes
     * (with the fault injection on, rank 0 hands out the first series once every rank is
     * ready, so rank 2 gets one whatever the machine's load) */
    snprintf(out, sizeof out, "%s/kill", g_dir);
    rc = tu_sh("AACLIP_TEST_KILL_RANK=2 %s --enable-recovery -np 3 %s score %s -o %s %s --rank-timeout 60 2>%s/kill.log",
            mpi, AACLIP_EXE, in, out, opts, g_dir);
    /* under --enable-recovery Open MPI 4's mpirun exits 0 whatever the ranks say: the summary
     * is the outcome */
    CHECK(rc == 0, "mpirun --enable-recovery: exit %d", rc);
    CHECK(tu_sh("grep -q 'rank 2 (.*) died' %s/kill.log && grep -q 'handed to another rank (rank 2 died on it)' %s/kill.log",
             g_dir, g_dir) == 0, "the death of rank 2 and the hand-over are not in the log");
    CHECK(tu_sh("/usr/bin/python3 %s/compare_runs.py %s %s", AACLIP_TEST_SOURCE_DIR, ref, out) == 0,
          "the run with a killed rank differs from one process");

    /* a rerun skips what is finished (the failing series fails again) */
    snprintf(out, sizeof out, "%s/mpi", g_dir);
    rc = tu_sh("%s -np 3 %s score %s -o %s %s 2>/dev/null", mpi, AACLIP_EXE, in, out, opts);
    CHECK(rc == expect_rc, "rerun: exit %d", rc);
    json_t *c0 = counts_of(ref), *c1 = counts_of(out);
    CHECK(c0 && c1 && json_integer_value(json_object_get(c1, "skipped")) == json_integer_value(json_object_get(c0, "done")) &&
              json_integer_value(json_object_get(c1, "done")) == 0 &&
              json_integer_value(json_object_get(c1, "failed")) == json_integer_value(json_object_get(c0, "failed")),
          "rerun: not every finished series skipped");
    json_decref(c0), json_decref(c1);

    if (!tu_failures) tu_sh("rm -rf %s", g_dir);
    return tu_finish("test_cli_score_mpi");
#endif
}
