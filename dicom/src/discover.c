/* discover.c - walking folders, recognising DICOM by content, and the aac_scan handle. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "error.h"
#include "ingest.h"

enum { MAX_DEPTH = 32 };

int scan_add_frame(aac_scan *s, const dcm_frame *fr) {
    if (s->n_frames == s->cap_frames) {
        int cap = s->cap_frames ? 2 * s->cap_frames : 256;
        dcm_frame *p = realloc(s->frames, (size_t)cap * sizeof *p);
        if (!p) return -1;
        s->frames = p;
        s->cap_frames = cap;
    }
    s->frames[s->n_frames++] = *fr;
    return 0;
}

/* DICOM Part 10 ("DICM" after the 128-byte preamble), or a bare dataset whose first element
 * is in group 0002 or 0008 (little or big endian), as old scanners and some PACS write. The
 * test keeps text files, images and archives away from the parser. */
static int looks_like_dicom(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[132];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    if (n == 132 && !memcmp(b + 128, "DICM", 4)) return 1;
    if (n < 8) return 0;
    unsigned g_le = b[0] | b[1] << 8, g_be = b[1] | b[0] << 8;
    unsigned e_le = b[2] | b[3] << 8, e_be = b[3] | b[2] << 8;
    return ((g_le == 0x0002 || g_le == 0x0008) && e_le < 0x0100) ||
           ((g_be == 0x0002 || g_be == 0x0008) && e_be < 0x0100);
}

static int has_dicom_name(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot && (!strcasecmp(dot, ".dcm") || !strcasecmp(dot, ".dicom") || !strcasecmp(dot, ".ima"));
}

static void scan_file(aac_scan *s, const char *path) {
    if (aac_is_volume_file(path)) {
        if (s->n_volume_files == s->cap_volume_files) {
            int cap = s->cap_volume_files ? 2 * s->cap_volume_files : 8;
            char **p = realloc(s->volume_files, (size_t)cap * sizeof *p);
            if (!p) {
                strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: out of memory, skipped", path);
                return;
            }
            s->volume_files = p;
            s->cap_volume_files = cap;
        }
        if ((s->volume_files[s->n_volume_files] = strdup(path))) s->n_volume_files++;
        return;
    }
    if (!looks_like_dicom(path)) {
        /* A README is expected in a study folder; a .dcm that is not DICOM is worth a warning. */
        if (has_dicom_name(path))
            strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: named like DICOM but not DICOM (no DICM marker "
                                                      "or DICOM header), skipped", path);
        else
            strlist_addf(&s->notes, AAC_NOTE_DEBUG, "%s: not DICOM, skipped", path);
        return;
    }
    aac_error e = {0};
    aac_status st = dcm_read_header(s, path, &e);
    if (st == AAC_OK) return;
    strlist_addf(&s->notes, st == AAC_ERR_MISSING ? AAC_NOTE_DEBUG : AAC_NOTE_WARNING, "%s", e.message);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries in name order, so series and notes come out the same on every file system. */
static void scan_dir(aac_scan *s, const char *dir, int depth) {
    if (depth > MAX_DEPTH) {
        strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: folders nested too deep, not searched", dir);
        return;
    }
    DIR *d = opendir(dir);
    if (!d) {
        strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: cannot open folder (%s)", dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue; /* ., .., hidden files */
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) break;
            names = p;
        }
        if (!(names[n] = strdup(de->d_name))) break;
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *p = malloc(len);
        if (p) {
            snprintf(p, len, "%s/%s", dir, names[i]);
            struct stat sb;
            /* lstat: symbolic links to folders are not followed (no cycles); links to files are. */
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) scan_dir(s, p, depth + 1);
            else if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) scan_file(s, p);
            free(p);
        }
        free(names[i]);
    }
    free(names);
}

aac_status aac_scan_paths(const char *const *paths, int n_paths, aac_scan **out, aac_error *err) {
    if (!out || (n_paths > 0 && !paths)) return aac_fail(err, AAC_ERR_ARG, "aac_scan_paths: no paths");
    *out = NULL;
    for (int i = 0; i < n_paths; i++) {
        struct stat sb;
        if (!paths[i] || stat(paths[i], &sb) != 0)
            return aac_fail(err, AAC_ERR_IO, "%s: %s", paths[i] ? paths[i] : "(null)", strerror(errno));
    }
    aac_scan *s = calloc(1, sizeof *s);
    if (!s) return aac_fail(err, AAC_ERR_NOMEM, "aac_scan_paths: out of memory");
    for (int i = 0; i < n_paths; i++) {
        struct stat sb;
        stat(paths[i], &sb);
        if (S_ISDIR(sb.st_mode)) scan_dir(s, paths[i], 0);
        else scan_file(s, paths[i]);
    }
    aac_status st = series_build(s, err);
    if (st != AAC_OK) {
        aac_scan_free(s);
        return st;
    }
    *out = s;
    return AAC_OK;
}

int aac_scan_series_count(const aac_scan *s) { return s ? s->n_series : 0; }

const aac_series_info *aac_scan_series(const aac_scan *s, int i) {
    return s && i >= 0 && i < s->n_series ? &s->series[i].info : NULL;
}

int aac_scan_note_count(const aac_scan *s) { return s ? s->notes.n : 0; }

const char *aac_scan_note(const aac_scan *s, int i, aac_note_level *level) {
    if (!s || i < 0 || i >= s->notes.n) return NULL;
    if (level) *level = (aac_note_level)s->notes.levels[i];
    return s->notes.items[i];
}

void aac_scan_free(aac_scan *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) free(s->files[i].path);
    for (int i = 0; i < s->n_volume_files; i++) free(s->volume_files[i]);
    free(s->volume_files);
    for (int i = 0; i < s->n_series; i++) {
        dcm_series *ser = &s->series[i];
        free(ser->frames);
        free(ser->order);
        strlist_free(&ser->warnings);
    }
    free(s->series);
    free(s->files);
    free(s->frames);
    strlist_free(&s->notes);
    free(s);
}
