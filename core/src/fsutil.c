/* fsutil.c - folders, paths and atomic files for every layer. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE /* getrandom */
#ifdef __linux__
#define _GNU_SOURCE /* sync_file_range */
#endif
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

int fs_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int fs_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fs_ends_with(const char *s, const char *suffix) {
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

char *fs_join(const char *dir, const char *name) {
    const size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int fs_mkdirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return errno = ENAMETOOLONG, -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return -1;
    return 0;
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

int fs_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    return nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS);
}

void fs_sanitize(const char *src, char *dst, size_t cap) {
    size_t n = 0;
    for (const char *p = src ? src : ""; *p && n + 1 < cap; p++) {
        const char c = *p;
        const int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '-';
        dst[n++] = ok ? c : '_';
    }
    dst[n] = '\0';
    if (n == 0 || !strcmp(dst, ".") || !strcmp(dst, "..")) snprintf(dst, cap, "unknown");
}

/* ---------------------------------------------------------------- atomic files */

aac_status fs_tmp_path(const char *final, char *tmp, size_t cap, aac_error *err) {
    const char *slash = strrchr(final, '/');
    const char *base = slash ? slash + 1 : final;
    const size_t dir_len = (size_t)(base - final);
    const char *ext = base[0] ? strchr(base + 1, '.') : NULL;
    if (!ext) ext = base + strlen(base);
    for (int attempt = 0; attempt < 16; attempt++) {
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd = (uint32_t)attempt * 2654435761u;
        int n = snprintf(tmp, cap, "%.*s.%.*s.tmp-%ld-%08x%s", (int)dir_len, final, (int)(ext - base), base,
                         (long)getpid(), (unsigned)rnd, ext);
        if (n < 0 || (size_t)n >= cap) return aac_fail(err, AAC_ERR_ARG, "%s: path too long", final);
        /* 0666 & ~umask: the result gets the permissions of any new file. */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return AAC_OK;
        }
        if (errno != EEXIST)
            return aac_fail(err, AAC_ERR_IO, "%s: cannot create a file in its folder: %s", final, strerror(errno));
    }
    return aac_fail(err, AAC_ERR_IO, "%s: no free temporary name", final);
}

void fs_discard(const char *tmp) {
    if (tmp && tmp[0]) unlink(tmp);
}

static void parent_of(const char *path, char *out, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(out, cap, ".");
    else if (slash == path) snprintf(out, cap, "/");
    else snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

int fs_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    const int r = fsync(fd);
    close(fd);
    return r;
}

void fs_start_writeback(int fd) {
#ifdef __linux__
    (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); /* advisory: fsync still decides */
#else
    (void)fd;
#endif
}

static aac_status commit(const char *tmp, const char *final, int flush, int sync_parent, aac_error *err) {
    if (flush) {
        const int fd = open(tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0) {
            const int e = errno;
            if (fd >= 0) close(fd);
            fs_discard(tmp);
            return aac_fail(err, AAC_ERR_IO, "%s: cannot flush %s: %s", final, tmp, strerror(e));
        }
        close(fd);
    }
    if (rename(tmp, final) != 0) {
        const int e = errno;
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot rename the finished file into place: %s", final, strerror(e));
    }
    if (!sync_parent) return AAC_OK;
    char parent[4096];
    parent_of(final, parent, sizeof parent);
    fs_sync_dir(parent); /* best effort: some file systems refuse fsync on folders */
    return AAC_OK;
}

aac_status fs_commit(const char *tmp, const char *final, aac_error *err) { return commit(tmp, final, 1, 1, err); }

aac_status fs_commit_nosync(const char *tmp, const char *final, aac_error *err) {
    return commit(tmp, final, 1, 0, err);
}

aac_status fs_commit_flushed(const char *tmp, const char *final, aac_error *err) {
    return commit(tmp, final, 0, 0, err);
}

aac_status fs_write_atomic(const char *path, const void *data, size_t len, aac_error *err) {
    char tmp[4200];
    aac_status s = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (s) return s;
    int fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC);
    size_t off = 0;
    while (fd >= 0 && off < len) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        off += (size_t)w;
    }
    const int e = errno;
    if (fd < 0 || off < len || close(fd) != 0) {
        fs_discard(tmp);
        return aac_fail(err, AAC_ERR_IO, "%s: cannot write: %s", path, strerror(fd < 0 || off < len ? e : errno));
    }
    return fs_commit(tmp, path, err);
}

aac_status fs_replace_dir(const char *tmp_dir, const char *final_dir, aac_error *err) {
    char old[4200];
    if (snprintf(old, sizeof old, "%s.old.%ld", final_dir, (long)getpid()) >= (int)sizeof old)
        return aac_fail(err, AAC_ERR_ARG, "%s: path too long", final_dir);
    fs_remove_tree(old);
    const int had = fs_exists(final_dir);
    if (had && rename(final_dir, old) != 0)
        return aac_fail(err, AAC_ERR_IO, "%s: cannot move the old folder aside: %s", final_dir, strerror(errno));
    if (rename(tmp_dir, final_dir) != 0) {
        const int e = errno;
        if (had) rename(old, final_dir); /* put the old folder back */
        return aac_fail(err, AAC_ERR_IO, "%s: cannot rename %s into place: %s", final_dir, tmp_dir, strerror(e));
    }
    if (had) fs_remove_tree(old);
    char parent[4096];
    parent_of(final_dir, parent, sizeof parent);
    fs_sync_dir(parent);
    return AAC_OK;
}
