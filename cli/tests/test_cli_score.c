/* test_cli_score.c - `aaclip score` as a PACS-side batch job: a folder of studies with one
 * corrupt series (the others complete, the failure is recorded, exit 1), a second run skips
 * finished series, SIGTERM stops cleanly, a SIGKILLed run leaves nothing that looks complete
 * and the next run finishes it. Fixtures: cli/tests/gen_score_fixtures.py (python3-pydicom);
 * model: a small random model made here, imported as a bundle. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aaclip.h"
#include "testutil.h"

static char g_dir[] = "/tmp/aac_test_score_XXXXXX";

static int sh(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *cmd) {
    FILE *p = popen(cmd, "r");
    int n = 0, c;
    while ((c = fgetc(p)) != EOF) n += c == '\n';
    pclose(p);
    return n;
}

static json_t *load_summary(const char *out) {
    char p[512];
    snprintf(p, sizeof p, "%s/summary.json", out);
    json_t *j = json_load_file(p, 0, NULL);
    CHECK(j != NULL, "cannot read %s", p);
    return j;
}

/* Number of rows with the given status (prefix match); the row of patient `pid` in *row. */
static int rows_with(json_t *s, const char *status, const char *pid, json_t **row) {
    json_t *r;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(s, "series"), i, r) {
        const char *st = json_string_value(json_object_get(r, "status"));
        if (st && !strncmp(st, status, strlen(status))) n++;
        if (pid && row && !strcmp(json_string_value(json_object_get(r, "patient_id")), pid)) *row = r;
    }
    return n;
}

/* Starts `aaclip score` in the background, waits until a series is being written (a .tmp.
 * folder exists), then sends sig; returns the exit status. */
static int run_and_signal(const char *args, const char *out, int sig) {
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "exec %s %s >/dev/null 2>&1", AACLIP_EXE, args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    char find[600];
    snprintf(find, sizeof find, "find %s -maxdepth 3 -type d -name '*.tmp*' 2>/dev/null", out);
    int seen = 0;
    for (int i = 0; i < 6000 && !seen; i++) { /* up to 60 s */
        seen = count_lines(find) > 0;
        if (!seen) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    CHECK(seen, "no series in progress was seen");
    kill(pid, sig);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(void) {
    if (access("/usr/bin/python3", X_OK) || sh("/usr/bin/python3 -c 'import pydicom' 2>/dev/null")) {
        printf("SKIP: /usr/bin/python3 with pydicom is needed to make the DICOM fixtures\n");
        return 77;
    }
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    char cmd[4096], studies[256], out[256], bundle[256], clip[256], ad[256];
    snprintf(studies, sizeof studies, "%s/studies", g_dir);
    snprintf(out, sizeof out, "%s/out", g_dir);
    snprintf(bundle, sizeof bundle, "%s/model", g_dir);
    snprintf(clip, sizeof clip, "%s/clip.safetensors", g_dir);
    snprintf(ad, sizeof ad, "%s/adapters.safetensors", g_dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/gen_score_fixtures.py %s", AACLIP_TEST_SOURCE_DIR, studies);
    CHECK(sh(cmd) == 0, "fixture generation failed");

    /* a small random model, as a bundle */
    const aac_config cfg = {.embed_dim = 16, .v_width = 32, .v_head_width = 16, .v_layers = 4, .patch = 8,
                            .native = 32, .t_width = 32, .t_heads = 2, .t_layers = 2, .img = 64};
    aac_model *m;
    aac_error err;
    CHECK_OK(aac_model_random(&cfg, 11, &m, &err), &err);
    CHECK_OK(aac_model_save(m, clip, ad, &err), &err);
    aac_model_free(m);
    const char *src[2] = {clip, ad};
    aac_import_params ip = aac_import_default_params();
    ip.tokenizer = AACLIP_DATA_DIR "/bpe_simple_vocab_16e6.txt.gz";
    CHECK_OK(aac_import_bundle(src, 2, &ip, bundle, &err), &err);

    /* 1: two good studies and one whose pixel data cannot be decoded */
    snprintf(cmd, sizeof cmd, "%s score %s -o %s --model %s --quiet 2>%s/log1", AACLIP_EXE, studies, out, bundle, g_dir);
    CHECK(sh(cmd) == 1, "first run: exit status is not 1 (one series failed)");
    json_t *s = load_summary(out), *a = NULL, *c = NULL;
    CHECK(rows_with(s, "done", "PAT-A", &a) == 2, "first run: 2 series done expected");
    CHECK(rows_with(s, "failed", "PAT-C", &c) == 1, "first run: 1 failure expected");
    if (c) {
        const char *e = json_string_value(json_object_get(c, "error"));
        CHECK(e && strstr(e, "c0.dcm") && strstr(e, "JPEG Lossless"), "failure message: %s", e ? e : "(none)");
    }
    if (a) {
        CHECK(json_integer_value(json_object_get(a, "slices_scored")) == 3 &&
                  json_integer_value(json_object_get(a, "slices_skipped_air")) == 1,
              "study A: 3 slices scored and the air-only slice skipped expected");
        const char *dir = json_string_value(json_object_get(a, "output_dir"));
        const char *need[] = {"seg_probability.dcm", "seg_binary.dcm", "pmap.dcm", "sr.dcm", "anomaly_map.nii.gz",
                              "label_map.nrrd", "input.nrrd", "scene.mrml", "montage.png", "result.json"};
        for (size_t k = 0; k < sizeof need / sizeof need[0]; k++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, need[k]);
            CHECK(access(p, F_OK) == 0, "missing output %s", p);
        }
    }
    char *notes = json_dumps(json_object_get(s, "skipped_files"), 0);
    CHECK(notes && strstr(notes, "README.txt"), "the non-DICOM file is not reported: %s", notes ? notes : "");
    free(notes);
    json_decref(s);
    snprintf(cmd, sizeof cmd, "%s/summary.csv", out);
    FILE *f = fopen(cmd, "r");
    int lines = 0, ch;
    while (f && (ch = fgetc(f)) != EOF) lines += ch == '\n';
    if (f) fclose(f);
    CHECK(lines == 4, "summary.csv: %d lines, expected a header and 3 rows", lines);

    /* 2: the same run again skips the finished series */
    snprintf(cmd, sizeof cmd, "%s score %s -o %s --model %s --quiet 2>/dev/null", AACLIP_EXE, studies, out, bundle);
    CHECK(sh(cmd) == 1, "second run: exit status is not 1");
    s = load_summary(out);
    CHECK(rows_with(s, "skipped", NULL, NULL) == 2 && rows_with(s, "failed", NULL, NULL) == 1,
          "second run: 2 skipped and 1 failed expected");
    json_decref(s);

    /* 3: SIGTERM during a forced redo stops cleanly: no temporary folders, old results kept */
    snprintf(cmd, sizeof cmd, "score %s -o %s --model %s --force --batch-slices 1", studies, out, bundle);
    int rc = run_and_signal(cmd, out, SIGTERM);
    CHECK(rc == 1, "SIGTERM: exit status %d, expected 1", rc);
    s = load_summary(out);
    CHECK(json_is_true(json_object_get(json_object_get(s, "counts"), "interrupted")), "summary does not say interrupted");
    json_decref(s);
    snprintf(cmd, sizeof cmd, "find %s -name '*.tmp*'", out);
    CHECK(count_lines(cmd) == 0, "temporary files left after SIGTERM");
    snprintf(cmd, sizeof cmd, "find %s -name result.json", out);
    CHECK(count_lines(cmd) == 2, "completed results lost after SIGTERM");

    /* 4: SIGKILL on a fresh output: nothing looks complete; the next run completes it */
    char out2[300];
    snprintf(out2, sizeof out2, "%s/out2", g_dir);
    snprintf(cmd, sizeof cmd, "score %s -o %s --model %s --batch-slices 1", studies, out2, bundle);
    rc = run_and_signal(cmd, out2, SIGKILL);
    CHECK(rc == 128 + SIGKILL, "SIGKILL: status %d", rc);
    snprintf(cmd, sizeof cmd, "find %s -name result.json", out2);
    const int complete_before = count_lines(cmd);
    snprintf(cmd, sizeof cmd, "find %s -name '*.tmp*' -type d", out2);
    CHECK(count_lines(cmd) >= 1, "the killed run left no trace of the series in progress");
    snprintf(cmd, sizeof cmd, "%s score %s -o %s --model %s --quiet 2>/dev/null", AACLIP_EXE, studies, out2, bundle);
    CHECK(sh(cmd) == 1, "run after SIGKILL: exit status is not 1");
    snprintf(cmd, sizeof cmd, "find %s -name result.json", out2);
    CHECK(count_lines(cmd) == 2 && complete_before < 2, "run after SIGKILL: %d complete series (before: %d)",
          count_lines(cmd), complete_before);
    snprintf(cmd, sizeof cmd, "find %s -name '*.tmp*'", out2);
    CHECK(count_lines(cmd) == 0, "temporary folders left after the completing run");

    /* usage errors */
    snprintf(cmd, sizeof cmd, "%s score %s 2>/dev/null", AACLIP_EXE, studies);
    CHECK(sh(cmd) == 2, "missing -o accepted");
    snprintf(cmd, sizeof cmd, "%s score %s -o %s --formats seg,xyz 2>/dev/null", AACLIP_EXE, studies, out);
    CHECK(sh(cmd) == 2, "bad --formats accepted");

    if (!tu_failures) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
        sh(cmd);
    }
    return tu_finish("test_cli_score");
}
