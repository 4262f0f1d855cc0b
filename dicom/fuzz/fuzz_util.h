/* fuzz_util.h - what the dicom/ fuzz targets share: a private scratch folder (in /dev/shm when
 * there is one, so that each input is written to memory), writing an input as a named file,
 * a memory budget small enough for libFuzzer's RSS limit, and loading every series of a scan
 * with its invariants checked (a violated invariant aborts: libFuzzer reports it as a crash). */
#ifndef AAC_FUZZ_UTIL_H
#define AAC_FUZZ_UTIL_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aaclip_dicom.h"

static char fz_root[256]; /* fuzzer-only state: the scratch folder of this process */

static int fz_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    remove(p);
    return 0;
}

/* Empties dir (or removes it with keep_dir 0). */
static inline void fz_rm_tree(const char *dir) { nftw(dir, fz_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void fz_cleanup(void) {
    if (fz_root[0]) fz_rm_tree(fz_root);
}

/* The scratch folder, made once per process. The memory budget of the readers is set here to
 * 256 MiB (volumes larger than that are refused), well inside -rss_limit_mb=2048. */
static inline const char *fz_dir(void) {
    if (!fz_root[0]) {
        struct stat sb;
        const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0
                               ? "/dev/shm"
                               : "/tmp";
        snprintf(fz_root, sizeof fz_root, "%s/aac_fuzz_XXXXXX", base);
        if (!mkdtemp(fz_root)) abort();
        atexit(fz_cleanup);
        setenv("AACLIP_MAX_VOLUME_MB", "256", 1);
    }
    return fz_root;
}

/* Writes data to <scratch>/<name> (folders in name created); returns the path (static). */
static inline const char *fz_write(const char *name, const uint8_t *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fz_dir(), name);
    for (char *p = path + strlen(fz_root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#define FZ_ASSERT(cond)                                                                       \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* Every failure must name a file (a message that says nothing is a bug too). */
static inline void fz_check_error(aac_status st, const aac_error *e) {
    FZ_ASSERT(st != AAC_OK);
    FZ_ASSERT(e->message[0] != '\0');
}

/* Loads every series of s and checks what a loaded volume promises: the size the scan
 * announced, finite geometry, per-slice sources for DICOM, every voxel readable. */
static inline void fz_load_all(const aac_scan *s) {
    for (int i = 0; i < aac_scan_series_count(s); i++) {
        const aac_series_info *in = aac_scan_series(s, i);
        FZ_ASSERT(in != NULL);
        for (int a = 0; a < 4; a++) FZ_ASSERT(in->dim[a] >= 1);
        for (int w = 0; w < in->n_warnings; w++) FZ_ASSERT(in->warnings[w] && in->warnings[w][0]);
        aac_volume *v = NULL;
        aac_error e = {0};
        aac_status st = aac_scan_load(s, i, &v, &e);
        if (st != AAC_OK) {
            fz_check_error(st, &e);
            FZ_ASSERT(v == NULL);
            continue;
        }
        for (int a = 0; a < 4; a++) FZ_ASSERT(v->dim[a] == in->dim[a]);
        for (int a = 0; a < 3; a++) {
            FZ_ASSERT(v->spacing[a] == v->spacing[a] && v->origin[a] == v->origin[a]);
            FZ_ASSERT(v->spacing[a] - v->spacing[a] == 0 && v->origin[a] - v->origin[a] == 0); /* finite */
        }
        const size_t n = aac_volume_voxel_count(v);
        volatile float sink = 0;
        for (size_t k = 0; k < n; k++) sink += v->voxels[k];
        (void)sink;
        if (v->slice_uids) {
            const size_t ns = (size_t)v->dim[2] * v->dim[3];
            for (size_t k = 0; k < ns; k++) {
                FZ_ASSERT(v->slice_paths[k] != NULL);
                FZ_ASSERT(memchr(v->slice_uids[k], '\0', AAC_UID_LEN) != NULL);
                FZ_ASSERT(v->slice_frames[k] >= 0);
            }
        }
        aac_volume_free(v);
    }
    for (int i = 0; i < aac_scan_note_count(s); i++) {
        const char *note = aac_scan_note(s, i, NULL);
        FZ_ASSERT(note && note[0]);
    }
}

/* Scans the given paths and loads what it finds. */
static inline void fz_scan_load(const char *const *paths, int n) {
    aac_scan *s = NULL;
    aac_error e = {0};
    aac_status st = aac_scan_paths(paths, n, &s, &e);
    if (st != AAC_OK) {
        fz_check_error(st, &e);
        return;
    }
    fz_load_all(s);
    aac_scan_free(s);
}
#endif
