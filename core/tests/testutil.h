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

/* The ground-truth folder (../shared): $AACLIP_SHARED_DIR when set (a run "as a clone without
 * ../shared" points it at an empty folder), else the one configured. */
static inline const char *tu_shared_dir(void) {
    const char *e = getenv("AACLIP_SHARED_DIR");
    return e && e[0] ? e : AACLIP_SHARED_DIR;
}

/* Path inside ../shared, or NULL when it is absent (the larger extra cases: a test runs its
 * in-repository cases anyway and says what it left out). */
static inline const char *tu_shared_opt(const char *rel) {
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, 4096, "%s/%s", tu_shared_dir(), rel);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        printf("note: %s absent (no ../shared): its extra cases are not run\n", p);
        return NULL;
    }
    return p;
}

/* Path inside ../shared, or exit 77 (skipped) when it is absent. Tests of the project do not
 * use it any more (a clone without ../shared runs every test); kept for tests on their way in. */
static inline const char *tu_shared(const char *rel) {
    const char *p = tu_shared_opt(rel);
    if (!p) {
        printf("SKIP: %s/%s not found (the ../shared ground-truth folder is absent)\n", tu_shared_dir(), rel);
        exit(77);
    }
    return p;
}

#ifdef AACLIP_GOLDEN_MINI_DIR
/* The golden reference set of the official PyTorch implementation: ../shared/golden/tiny (the
 * full set) when present, else the reduced copy kept in the repository (testdata/
 * golden-mini.tar.xz, unpacked into the build tree; tools/make-golden-mini.py): the same files,
 * the text embedding's unused rows zeroed, golden.safetensors with large tensors sampled
 * (golden_ref.h compares at the sampled positions). `file` is relative to golden/tiny. */
static inline int tu_golden_full(void) {
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/golden/tiny/golden.safetensors", tu_shared_dir());
    return stat(p, &sb) == 0;
}
static inline const char *tu_golden(const char *file) {
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ & 7];
    if (tu_golden_full()) snprintf(p, 4096, "%s/golden/tiny/%s", tu_shared_dir(), file);
    else snprintf(p, 4096, "%s/%s", AACLIP_GOLDEN_MINI_DIR, file);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        fprintf(stderr, "golden reference file %s is missing\n", p);
        exit(1);
    }
    return p;
}
/* The tokenizer's merge list shipped in the repository (identical to ../shared/vocab's). */
#define TU_BPE_PATH AACLIP_SOURCE_DIR "/core/data/bpe_simple_vocab_16e6.txt.gz"
#endif

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
