/* test_cli_plugins.c - `aaclip plugins` lists the built-in backend, the plugins of the search
 * path and the broken ones with the reason (test backends of core/tests/plugins and a file that
 * is not a shared object); --backend / --precision reach the model of a command, and a missing
 * or unusable backend is an error naming it, exit status 1, never a crash. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tu_run.h"


int main(void) {
    static char out[65536];
    char cmd[4096], dir[] = "/tmp/aac_test_cli_plugins_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char garbage[300];
    snprintf(garbage, sizeof garbage, "%s/garbage.so", dir);
    FILE *f = fopen(garbage, "w");
    if (f) fputs("not a shared object\n", f), fclose(f);

    /* the default search path: the built-in backend at least, with its kernels */
    int rc = tu_run(AACLIP_EXE " plugins", out, sizeof out);
    CHECK(rc == 0 && strstr(out, "search path:") && strstr(out, "openblas built-in") &&
              strstr(out, "f32   OpenBLAS") && strstr(out, "usable"),
          "plugins (%d): %s", rc, out);
    /* AACLIP_PLUGIN_PATH first: good, bad and garbage */
    snprintf(cmd, sizeof cmd, "AACLIP_PLUGIN_PATH=%s/test-plugins/good:%s/test-plugins/bad:%s " AACLIP_EXE " plugins",
             AACLIP_BINARY_DIR, AACLIP_BINARY_DIR, dir);
    rc = tu_run(cmd, out, sizeof out);
    printf("%s", out);
    CHECK(rc == 0, "plugins with AACLIP_PLUGIN_PATH (%d)", rc);
    CHECK(strstr(out, "  naive    test backend 1") && strstr(out, "bf16  plain loops, bf16 weight products"),
          "naive plugin not listed as usable");
    const char *why[] = {"built for backend ABI version 999", "no aaclip_backend_entry function",
                         "returned nothing", "required function missing: gemm",
                         "backend 'naive' was already found earlier", "garbage.so", "cannot be loaded",
                         "this test backend never starts"};
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
        CHECK(strstr(out, why[i]) != NULL, "'%s' not in the listing", why[i]);
    /* --path instead of the environment */
    snprintf(cmd, sizeof cmd, AACLIP_EXE " plugins --path %s/test-plugins/bad", AACLIP_BINARY_DIR);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 0 && strstr(out, "abi999.so") && strstr(out, "refused"), "plugins --path (%d): %s", rc, out);
    CHECK(tu_run(AACLIP_EXE " plugins --bogus", out, sizeof out) == 2 && strstr(out, "--bogus"), "bad option: %s", out);

    /* an installed layout: <prefix>/bin/aaclip finds <prefix>/lib/aaclip/plugins, before the build tree */
    snprintf(cmd, sizeof cmd,
             "mkdir -p %s/prefix/bin %s/prefix/lib/aaclip/plugins && cp " AACLIP_EXE " %s/prefix/bin/aaclip && "
             "cp %s/test-plugins/good/naive.so %s/prefix/lib/aaclip/plugins/",
             dir, dir, dir, AACLIP_BINARY_DIR, dir);
    CHECK(system(cmd) == 0, "install layout: %s", cmd);
    snprintf(cmd, sizeof cmd, "env -u AACLIP_PLUGIN_PATH %s/prefix/bin/aaclip plugins", dir);
    rc = tu_run(cmd, out, sizeof out);
    char want[600];
    snprintf(want, sizeof want, "search path:\n  %s/prefix/lib/aaclip/plugins\n", dir);
    CHECK(rc == 0 && strstr(out, want) && strstr(out, "prefix/lib/aaclip/plugins/naive.so"),
          "installed layout (%d): %s", rc, out);

    /* a command opening a model: missing, refused and failing backends are errors naming them */
    const char *model = AACLIP_SOURCE_DIR "/testdata/demo-model";
    snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --model %s --input %s/in --output %s/out --backend nope", model,
             dir, dir);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "backend 'nope' not found (available: openblas"), "dump --backend nope (%d): %s",
          rc, out);
    snprintf(cmd, sizeof cmd, AACLIP_EXE " dump --model %s --input %s/in --output %s/out --backend openblas "
             "--precision bf16", model, dir, dir);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "'openblas' has no bf16 products"), "dump built-in bf16 (%d): %s", rc, out);
    /* the options reach the model: the naive plugin is the one the error names next */
    snprintf(cmd, sizeof cmd, "AACLIP_PLUGIN_PATH=%s/test-plugins/good " AACLIP_EXE
             " dump --model %s --input %s/in --output %s/out --backend naive --precision bf16",
             AACLIP_BINARY_DIR, model, dir, dir);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "/in") && !strstr(out, "backend"), "dump via naive (%d): %s", rc, out);
    snprintf(cmd, sizeof cmd,
             "AACLIP_PLUGIN_PATH=%s/test-plugins/bad " AACLIP_EXE " bench --config tiny --reps 1 --backend abi999",
             AACLIP_BINARY_DIR);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "backend 'abi999' not found") && strstr(out, "refused"),
          "refused plugin selected (%d): %s", rc, out);
    snprintf(cmd, sizeof cmd,
             "AACLIP_PLUGIN_PATH=%s/test-plugins/bad " AACLIP_EXE " bench --config tiny --reps 1 --backend failcreate",
             AACLIP_BINARY_DIR);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "backend 'failcreate'") && strstr(out, "never starts"),
          "failing backend (%d): %s", rc, out);
    snprintf(cmd, sizeof cmd,
             "AACLIP_PLUGIN_PATH=%s/test-plugins/bad " AACLIP_EXE " bench --config tiny --reps 1 --backend failgemm",
             AACLIP_BINARY_DIR);
    rc = tu_run(cmd, out, sizeof out);
    CHECK(rc == 1 && strstr(out, "backend 'failgemm'") && strstr(out, "refused on purpose"),
          "backend failing mid-pass (%d): %s", rc, out);
    CHECK(tu_run(AACLIP_EXE " bench --config tiny --precision half", out, sizeof out) == 2 &&
              strstr(out, "--precision expects f32 or bf16"),
          "bad precision: %s", out);
    unlink(garbage);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return tu_finish("test_cli_plugins");
}
