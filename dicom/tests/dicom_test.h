/* dicom_test.h - helpers shared by the dicom/ test programs: running commands and Debian's
 * python (nibabel/pydicom) for fixtures and reference comparisons. */
#ifndef AAC_DICOM_TEST_H
#define AAC_DICOM_TEST_H
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "aaclip.h"
#include "testutil.h"

/* The bundled demo model, the scoring tests' model. */
#define DT_DEMO_MODEL AACLIP_SOURCE_DIR "/testdata/demo-model"

/* Opens the demo model with 2 compute threads (a failed check leaves *m and *tok NULL). */
static inline void dt_open_demo(aac_model **m, aac_tokenizer **tok) {
    aac_error e = {0};
    aac_model_params mp = aac_model_default_params();
    mp.n_threads = 2;
    *m = NULL, *tok = NULL;
    CHECK_OK(aac_model_open_bundle(DT_DEMO_MODEL, &mp, m, tok, &e), &e);
}

#define DT_PY "/usr/bin/python3"

/* Runs a shell command; returns its exit status (or -1). Output goes to the test log. */
static inline int dt_run(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(stdout);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs a command and captures up to cap-1 bytes of its stdout+stderr. */
static inline int dt_capture(char *buf, size_t cap, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    int st = pclose(p);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Exits 77 (skipped) when Debian's python lacks a module the test needs. */
static inline void dt_need_python(const char *modules) {
    if (dt_run(DT_PY " -c 'import %s' >/dev/null 2>&1", modules) != 0) {
        printf("SKIP: " DT_PY " cannot import %s (apt-get install python3-nibabel python3-pydicom)\n", modules);
        exit(77);
    }
}

/* Fresh scratch folder under the build tree. */
static inline const char *dt_scratch(const char *name) {
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ & 3];
    /* one folder per test program: tests run in parallel and may use the same case names */
    snprintf(p, 4096, "%s/dicom_test_out/%s/%s", AACLIP_BINARY_DIR, AACLIP_TEST_NAME, name);
    dt_run("rm -rf '%s' && mkdir -p '%s'", p, p);
    return p;
}
#endif
