/* discover.c - walking folders (DICOMDIR first where a folder has one), recognising DICOM by
 * content (inside gzip too: *.dcm.gz), and the aac_scan handle. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "error.h"
#include "fsutil.h"
#include "ingest.h"

enum { MAX_DEPTH = 32, MAX_NAMED_MISSING = 5 };

/* One aac_scan_paths call: the scan being filled and the files already scanned, by device and
 * inode, so that a file listed by a DICOMDIR, reached again by the walk, linked or given twice
 * is read once. Open addressing, power-of-two capacity. */
typedef struct file_key {
    dev_t dev;
    ino_t ino;
    int used;
} file_key;

typedef struct walk {
    aac_scan *s;
    file_key *seen;
    size_t n_seen, cap_seen;
} walk;

static size_t key_hash(dev_t dev, ino_t ino, size_t mask) {
    uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ h >> 29) & mask;
}

/* 1 when the file was not seen before (and is now), 0 when it was. Out of memory: 1, so a
 * file may be read twice (the duplicate-instance check then keeps one) but none is lost. */
static int walk_mark(walk *w, const struct stat *sb) {
    if (2 * (w->n_seen + 1) > w->cap_seen) {
        size_t cap = w->cap_seen ? 2 * w->cap_seen : 256;
        file_key *t = calloc(cap, sizeof *t);
        if (!t) return 1;
        for (size_t i = 0; i < w->cap_seen; i++)
            if (w->seen[i].used) {
                size_t j = key_hash(w->seen[i].dev, w->seen[i].ino, cap - 1);
                while (t[j].used) j = (j + 1) & (cap - 1);
                t[j] = w->seen[i];
            }
        free(w->seen);
        w->seen = t;
        w->cap_seen = cap;
    }
    size_t j = key_hash(sb->st_dev, sb->st_ino, w->cap_seen - 1);
    for (; w->seen[j].used; j = (j + 1) & (w->cap_seen - 1))
        if (w->seen[j].dev == sb->st_dev && w->seen[j].ino == sb->st_ino) return 0;
    w->seen[j] = (file_key){sb->st_dev, sb->st_ino, 1};
    w->n_seen++;
    return 1;
}

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
static int looks_like_dicom(const unsigned char *b, size_t n) {
    if (n >= 132 && !memcmp(b + 128, "DICM", 4)) return 1;
    if (n < 8) return 0;
    unsigned g_le = b[0] | b[1] << 8, g_be = b[1] | b[0] << 8;
    unsigned e_le = b[2] | b[3] << 8, e_be = b[3] | b[2] << 8;
    return ((g_le == 0x0002 || g_le == 0x0008) && e_le < 0x0100) ||
           ((g_be == 0x0002 || g_be == 0x0008) && e_be < 0x0100);
}

/* .dcm, .dicom, .ima, also with .gz after it. */
static int has_dicom_name(const char *path) {
    static const char *const ext[] = {".dcm", ".dicom", ".ima"};
    size_t n = strlen(path);
    if (n > 3 && !strcasecmp(path + n - 3, ".gz")) n -= 3;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        const size_t m = strlen(ext[i]);
        if (n >= m && !strncasecmp(path + n - m, ext[i], m)) return 1;
    }
    return 0;
}

/* Appends a copy of path to a list of paths; a note when memory runs out. */
static void add_path(aac_scan *s, char ***list, int *n, int *cap, const char *path) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 8;
        char **p = realloc(*list, (size_t)c * sizeof *p);
        if (!p) {
            strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: out of memory, skipped", path);
            return;
        }
        *list = p;
        *cap = c;
    }
    if (((*list)[*n] = strdup(path))) (*n)++;
}

static void scan_file(walk *w, const char *path, const struct stat *sb) {
    aac_scan *s = w->s;
    if (!walk_mark(w, sb)) return;
    if (aac_is_volume_file(path)) {
        add_path(s, &s->volume_files, &s->n_volume_files, &s->cap_volume_files, path);
        return;
    }
    /* the first bytes, read once, tell DICOM, pictures and the rest apart */
    unsigned char head[132];
    size_t n_head = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        n_head = fread(head, 1, sizeof head, f);
        fclose(f);
    }
    /* gzip-compressed DICOM (*.dcm.gz): judged by what it inflates to */
    const int gz = gz_magic(head, n_head);
    if (gz) n_head = gz_peek(path, head, sizeof head);
    if (!looks_like_dicom(head, n_head)) {
        if (aac_picture_kind(head, n_head)) {
            add_path(s, &s->image_files, &s->n_image_files, &s->cap_image_files, path);
            return;
        }
        /* A README is expected in a study folder; a .dcm that is not DICOM is worth a warning. */
        if (has_dicom_name(path))
            strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: named like DICOM but not DICOM (no DICM marker "
                                                      "or DICOM header%s), skipped", path,
                         gz ? " in what the gzip stream inflates to" : "");
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

/* The entry of dir matching name: exactly, in lower case, else ignoring case (the first in
 * byte order, so the choice does not depend on the file system). Media carry upper-case file
 * IDs but are often copied or mounted with lower-case names. NULL when none. */
static char *match_entry(const char *dir, const char *name) {
    struct stat sb;
    char *p = fs_join(dir, name);
    if (!p || lstat(p, &sb) == 0) return p;
    free(p);
    char lower[256];
    size_t n = strlen(name);
    if (n >= sizeof lower) return NULL;
    for (size_t i = 0; i <= n; i++) lower[i] = (char)tolower((unsigned char)name[i]);
    if ((p = fs_join(dir, lower)) && lstat(p, &sb) == 0) return p;
    free(p);
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char best[256] = "";
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strcasecmp(de->d_name, name) && (!best[0] || strcmp(de->d_name, best) < 0) &&
            strlen(de->d_name) < sizeof best)
            strcpy(best, de->d_name);
    closedir(d);
    return best[0] ? fs_join(dir, best) : NULL;
}

/* The next component of a ReferencedFileID ("PT0\ST0\IM0": DICOM's separator, CS padding)
 * into comp; returns where the one after starts, or NULL at the end. *ok = 0 for an empty, ".",
 * ".." or too long component or one with '/': a DICOMDIR names files of its own folder tree. */
static const char *id_component(const char *p, char comp[256], int *ok) {
    const char *end = strchr(p, '\\');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while (len && p[len - 1] == ' ') len--;
    while (len && *p == ' ') {
        p++;
        len--;
    }
    *ok = len > 0 && len < 256;
    if (*ok) {
        memcpy(comp, p, len);
        comp[len] = '\0';
        *ok = strcmp(comp, ".") && strcmp(comp, "..") && !strchr(comp, '/');
    }
    return end ? end + 1 : NULL;
}

/* A ReferencedFileID as a regular file under dir, or NULL with *why set. */
static char *resolve_file_id(const char *dir, const char *id, const char **why) {
    char comp[256];
    int ok = 1, parts = 0;
    for (const char *p = id; p && ok; parts++) p = id_component(p, comp, &ok);
    if (!ok || parts > MAX_DEPTH) {
        *why = "is not a valid file ID";
        return NULL;
    }
    char *cur = strdup(dir);
    for (const char *p = id; p && cur;) {
        p = id_component(p, comp, &ok);
        char *next = match_entry(cur, comp);
        free(cur);
        cur = next;
    }
    struct stat sb;
    if (!cur) *why = "does not exist";
    else if (stat(cur, &sb) != 0 || !S_ISREG(sb.st_mode)) *why = "is not a regular file";
    else return cur;
    free(cur);
    return NULL;
}

/* Scans the files a DICOMDIR lists, before the walk of its folder reaches them (the walk then
 * skips them, and finds whatever the DICOMDIR does not list). A DICOMDIR that cannot be used
 * is a warning: the walk still finds its files. */
static void scan_dicomdir(walk *w, const char *dir, const char *path, const struct stat *sb) {
    aac_scan *s = w->s;
    if (!walk_mark(w, sb)) return;
    strlist ids = {0};
    aac_error e = {0};
    if (dcm_read_dicomdir(path, &ids, &e) != AAC_OK) {
        strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s; its folder is searched file by file", e.message);
        strlist_free(&ids);
        return;
    }
    int found = 0, missing = 0;
    for (int i = 0; i < ids.n; i++) {
        const char *why = NULL;
        char *file = resolve_file_id(dir, ids.items[i], &why);
        struct stat fsb;
        if (file && stat(file, &fsb) == 0) {
            scan_file(w, file, &fsb);
            found++;
        } else if (++missing <= MAX_NAMED_MISSING) {
            strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: DICOMDIR lists %s, which %s", path, ids.items[i],
                         why ? why : "cannot be read");
        }
        free(file);
    }
    if (missing > MAX_NAMED_MISSING)
        strlist_addf(&s->notes, AAC_NOTE_WARNING, "%s: %d more files the DICOMDIR lists are missing", path,
                     missing - MAX_NAMED_MISSING);
    strlist_addf(&s->notes, AAC_NOTE_DEBUG, "%s: DICOMDIR lists %d files, %d found", path, ids.n, found);
    strlist_free(&ids);
}

static int is_dicomdir_name(const char *path) {
    const char *base = strrchr(path, '/');
    return !strcasecmp(base ? base + 1 : path, "DICOMDIR");
}

/* Entries in name order, so series and notes come out the same on every file system. */
static void scan_dir(walk *w, const char *dir, int depth) {
    aac_scan *s = w->s;
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
        struct stat sb;
        char *p = is_dicomdir_name(names[i]) ? fs_join(dir, names[i]) : NULL;
        if (p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) scan_dicomdir(w, dir, p, &sb);
        free(p);
    }
    for (size_t i = 0; i < n; i++) {
        char *p = fs_join(dir, names[i]);
        if (p) {
            struct stat sb;
            /* lstat: symbolic links to folders are not followed (no cycles); links to files are. */
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) scan_dir(w, p, depth + 1);
            else if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) scan_file(w, p, &sb);
            free(p);
        }
        free(names[i]);
    }
    free(names);
}

/* A DICOMDIR named on the command line stands for the files it lists, not for its folder. */
static void scan_path(walk *w, const char *path, const struct stat *sb) {
    if (S_ISDIR(sb->st_mode)) {
        scan_dir(w, path, 0);
    } else if (is_dicomdir_name(path)) {
        char *dir = strdup(path);
        if (!dir) {
            strlist_addf(&w->s->notes, AAC_NOTE_WARNING, "%s: out of memory, skipped", path);
            return;
        }
        char *slash = strrchr(dir, '/');
        if (!slash) strcpy(dir, ".");
        else if (slash == dir) dir[1] = '\0';
        else *slash = '\0';
        scan_dicomdir(w, dir, path, sb);
        free(dir);
    } else {
        scan_file(w, path, sb);
    }
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
    walk w = {.s = s};
    for (int i = 0; i < n_paths; i++) {
        struct stat sb;
        if (stat(paths[i], &sb) == 0) scan_path(&w, paths[i], &sb);
    }
    free(w.seen);
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

int aac_scan_image_count(const aac_scan *s) { return s ? s->n_image_files : 0; }

const char *aac_scan_image(const aac_scan *s, int i) {
    return s && i >= 0 && i < s->n_image_files ? s->image_files[i] : NULL;
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
    for (int i = 0; i < s->n_image_files; i++) free(s->image_files[i]);
    free(s->image_files);
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
