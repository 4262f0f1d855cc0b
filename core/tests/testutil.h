/* testutil.h - tiny assertion helpers shared by the test programs. */
#ifndef AAC_TESTUTIL_H
#define AAC_TESTUTIL_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int tu_failures;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                \
            tu_failures++;                                                        \
        }                                                                         \
    } while (0)

#define CHECK_OK(st, err)                                                          \
    do {                                                                           \
        aac_status st_ = (st);                                                     \
        if (st_ != AAC_OK) {                                                       \
            fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #st,      \
                    aac_status_name(st_), (err)->message);                         \
            exit(1);                                                               \
        }                                                                          \
    } while (0)

/* Whole file, malloc'ed (NULL when it cannot be opened); *len its size. */
static inline char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(n > 0 ? (size_t)n : 1);
    *len = b ? fread(b, 1, n > 0 ? (size_t)n : 0, f) : 0;
    fclose(f);
    return b;
}

/* Copies a file byte for byte (a CHECK fails when either side cannot be opened). */
static inline void tu_copy_file(const char *from, const char *to) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b, "copy %s -> %s", from, to);
    char buf[65536];
    size_t n;
    while (a && b && (n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    if (a) fclose(a);
    if (b) fclose(b);
}

/* Path inside ../shared, or exit 77 (skipped) with a clear message when it is absent. */
static inline const char *tu_shared(const char *rel) {
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 4096, "%s/%s", AACLIP_SHARED_DIR, rel);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        printf("SKIP: %s not found (the ../shared ground-truth folder is absent)\n", p);
        exit(77);
    }
    return p;
}

/* ||a - b|| / ||b|| in double. */
static inline double tu_rel_err(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline double tu_max_abs(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

static inline int tu_finish(const char *name) {
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, tu_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}
#endif
