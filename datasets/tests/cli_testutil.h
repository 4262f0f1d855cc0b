/* cli_testutil.h - running bin/aaclip from the data/ tests. */
#ifndef AAC_CLI_TESTUTIL_H
#define AAC_CLI_TESTUTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char g_dir[512]; /* the test's scratch folder */

static inline const char *P(const char *name) {
    static char buf[8][1024];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 1024, "%s/%s", g_dir, name);
    return p;
}

/* runs aaclip with args; stdout+stderr to DIR/log.txt; returns the exit status */
static inline int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s' 2>&1", AACLIP_EXE, args, P("log.txt"));
    int rc = system(cmd);
    rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    if (rc) {
        char show[1200];
        snprintf(show, sizeof show, "tail -5 '%s'", P("log.txt"));
        printf("  [exit %d] %s\n", rc, args);
        if (system(show) != 0) printf("  (no log)\n");
    }
    return rc;
}

static inline int log_has(const char *s) {
    FILE *f = fopen(P("log.txt"), "r");
    if (!f) return 0;
    char buf[65536];
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strstr(buf, s) != NULL;
}

static inline int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

#endif
