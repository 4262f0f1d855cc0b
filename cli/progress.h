/* progress.h - a progress bar with ETA on a terminal, plain lines otherwise (logs, CI). */
#ifndef AAC_PROGRESS_H
#define AAC_PROGRESS_H
#include <stdint.h>

typedef struct progress {
    const char *what;    /* "stage 2", "eval" */
    int64_t total, done;
    double t0, last_print;
    int tty;
    int64_t every;       /* plain mode: a line every `every` units */
} progress;

void progress_start(progress *p, const char *what, int64_t total);
/* done units so far; info is appended (loss, epoch, ...). */
void progress_update(progress *p, int64_t done, const char *info);
/* ends the bar's line; prints the elapsed time. */
void progress_finish(progress *p, const char *info);
double progress_now(void);
#endif
