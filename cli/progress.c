/* progress.c - progress bar (TTY: one line redrawn on stderr) or plain lines (otherwise). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

double progress_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_time(double s, char *buf, size_t cap) {
    if (s < 0) s = 0;
    const long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

void progress_start(progress *p, const char *what, int64_t total) {
    p->what = what;
    p->total = total > 0 ? total : 1;
    p->done = 0;
    p->t0 = p->last_print = progress_now();
    p->tty = isatty(fileno(stderr));
    p->every = p->total >= 20 ? p->total / 20 : 1;
}

void progress_update(progress *p, int64_t done, const char *info) {
    const int64_t before = p->done;
    p->done = done;
    const double now = progress_now(), el = now - p->t0;
    const double eta = done > 0 ? el / (double)done * (double)(p->total - done) : 0;
    char e1[32], e2[32];
    fmt_time(el, e1, sizeof e1);
    fmt_time(eta, e2, sizeof e2);
    if (p->tty) {
        if (now - p->last_print < 0.2 && done < p->total) return;
        p->last_print = now;
        char bar[31];
        const int fill = (int)(30 * done / p->total);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld %s  %s elapsed, ETA %s\033[K", p->what, bar, (long long)done,
                (long long)p->total, info ? info : "", e1, e2);
        fflush(stderr);
    } else if (done / p->every != before / p->every || done == p->total) {
        fprintf(stderr, "%s: %lld/%lld %s (%s elapsed, ETA %s)\n", p->what, (long long)done, (long long)p->total,
                info ? info : "", e1, e2);
    }
}

void progress_finish(progress *p, const char *info) {
    char e1[32];
    fmt_time(progress_now() - p->t0, e1, sizeof e1);
    if (p->tty) fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s: done, %lld/%lld in %s%s%s\n", p->what, (long long)p->done, (long long)p->total, e1,
            info ? ", " : "", info ? info : "");
}
