/* tu_run.h - running a command line from a test (POSIX popen; include after defining
 * _POSIX_C_SOURCE). */
#ifndef AAC_TU_RUN_H
#define AAC_TU_RUN_H
#include <stdio.h>
#include <sys/wait.h>

/* Runs cmd through the shell with stderr joined to stdout; the output (truncated to cap - 1
 * bytes) into out; the exit status, or -1 when it could not run or did not exit. */
static inline int tu_run(const char *cmd, char *out, size_t cap) {
    char full[16384];
    if (snprintf(full, sizeof full, "%s 2>&1", cmd) >= (int)sizeof full) return -1;
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif
