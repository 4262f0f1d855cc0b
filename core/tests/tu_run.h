/* tu_run.h - running a command line from a test (POSIX popen; include after defining
 * _POSIX_C_SOURCE). */
#ifndef AAC_TU_RUN_H
#define AAC_TU_RUN_H
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Runs the printf-formatted command line through the shell, its output going to the test's own;
 * the exit status, or -1 when it could not run, did not exit, or was too long. */
static inline int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int tu_sh(const char *fmt, ...) {
    char cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof cmd) return -1;
    fflush(stdout);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
#endif
