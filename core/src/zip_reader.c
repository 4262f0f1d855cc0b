/* zip_reader.c - read-only zip access over libzip with our own entry validation.
 *
 * ZIP_CHECKCONS is not used: some writers (PyTorch's own miniz-based one among them) produce
 * archives it rejects. Instead every directory entry is checked here, and each member's size
 * and CRC are verified when it is read. */
#define _POSIX_C_SOURCE 200809L
#include "zip_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "error.h"

struct zr_archive {
    char *path;
    zip_t *za;
    size_t n;
    char **names;
    uint64_t *sizes;
    uint64_t *index;  /* libzip index of entry i */
    size_t *by_name;  /* entry indices sorted by name, for zr_find */
};

/* Copy of a member name fit for an error message: control bytes become '?', long names are
 * cut, so a hostile name cannot forge terminal output or swallow the message. */
static const char *printable(const char *s, char *buf, size_t cap) {
    size_t k = 0;
    for (; s[k] && k + 4 < cap; k++) {
        unsigned char c = (unsigned char)s[k];
        buf[k] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[k]) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* A safe member name is relative and has no ".." component; both separators count because
 * some extractors treat '\' as one. */
static int name_is_safe(const char *s) {
    if (!s[0] || s[0] == '/' || s[0] == '\\') return 0;
    if (((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z') && s[1] == ':') return 0; /* C:... */
    const char *p = s;
    for (;;) {
        size_t len = strcspn(p, "/\\");
        if (len == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!p[len]) return 1;
        p += len + 1;
    }
}

static const char *zip_code_str(int code, char *buf, size_t cap) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    snprintf(buf, cap, "%s", zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return buf;
}

/* Merge sort of entry indices by name (qsort has no context argument in C11). */
static void sort_by_name(size_t *idx, size_t *tmp, size_t n, char **names) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_by_name(idx, tmp, h, names);
    sort_by_name(idx + h, tmp, n - h, names);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = strcmp(names[idx[i]], names[idx[j]]) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static aac_status check_entries(zr_archive *z, uint64_t max_member, aac_error *err) {
    const char *p = z->path;
    char pb[160];
    zip_int64_t cnt = zip_get_num_entries(z->za, 0);
    if (cnt < 0) return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot count zip entries", p);
    size_t n = (size_t)cnt;
    z->names = calloc(n ? n : 1, sizeof *z->names);
    z->sizes = calloc(n ? n : 1, sizeof *z->sizes);
    z->index = calloc(n ? n : 1, sizeof *z->index);
    z->by_name = calloc(n ? n : 1, sizeof *z->by_name);
    size_t *tmp = calloc(n ? n : 1, sizeof *tmp);
    if (!z->names || !z->sizes || !z->index || !z->by_name || !tmp) {
        free(tmp);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading the zip directory", p);
    }
    aac_status st = AAC_OK;
    for (size_t i = 0; i < n; i++) {
        zip_stat_t sb;
        zip_stat_init(&sb);
        if (zip_stat_index(z->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &sb) != 0 ||
            !(sb.valid & ZIP_STAT_NAME) || !(sb.valid & ZIP_STAT_SIZE) || !sb.name) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: zip entry %zu has an unreadable directory record",
                          p, i);
            break;
        }
        if (!(z->names[z->n] = strdup(sb.name))) {
            st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading the zip directory", p);
            break;
        }
        const char *nm = z->names[z->n];
        z->sizes[z->n] = sb.size;
        z->index[z->n] = (uint64_t)i;
        z->by_name[z->n] = z->n;
        z->n++;
        if (!name_is_safe(nm)) {
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: zip member '%s' has an unsafe name (absolute path or '..' "
                          "component; zip-slip)", p, printable(nm, pb, sizeof pb));
            break;
        }
        if ((sb.valid & ZIP_STAT_ENCRYPTION_METHOD) && sb.encryption_method != ZIP_EM_NONE) {
            st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: zip member '%s' is encrypted", p,
                          printable(nm, pb, sizeof pb));
            break;
        }
        if (!(sb.valid & ZIP_STAT_COMP_METHOD) ||
            (sb.comp_method != ZIP_CM_STORE && sb.comp_method != ZIP_CM_DEFLATE)) {
            st = aac_fail(err, AAC_ERR_UNSUPPORTED,
                          "%s: zip member '%s' uses compression method %d (only stored and "
                          "deflate are supported)", p, printable(nm, pb, sizeof pb),
                          (sb.valid & ZIP_STAT_COMP_METHOD) ? (int)sb.comp_method : -1);
            break;
        }
        if (sb.size > max_member) {
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: zip member '%s' declares %llu bytes, more than the limit of %llu",
                          p, printable(nm, pb, sizeof pb), (unsigned long long)sb.size,
                          (unsigned long long)max_member);
            break;
        }
    }
    if (st == AAC_OK) {
        sort_by_name(z->by_name, tmp, z->n, z->names);
        /* Duplicate names make "which member is data.pkl" ambiguous: refuse them. */
        for (size_t i = 1; i < z->n; i++)
            if (strcmp(z->names[z->by_name[i - 1]], z->names[z->by_name[i]]) == 0) {
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: zip member '%s' appears twice", p,
                              printable(z->names[z->by_name[i]], pb, sizeof pb));
                break;
            }
    }
    free(tmp);
    return st;
}

aac_status zr_open(const char *path, uint64_t max_member, zr_archive **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "zr_open: out is NULL");
    *out = NULL;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "zr_open: path is NULL");

    /* Open it ourselves first: errno gives a better message than libzip, and a FIFO or
     * device would make libzip block or misbehave. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int ok = fstat(fd, &sb) == 0;
    int stat_errno = errno;
    unsigned char magic[4] = {0};
    ssize_t got = ok && S_ISREG(sb.st_mode) ? read(fd, magic, sizeof magic) : 0;
    close(fd);
    if (!ok) return aac_fail(err, AAC_ERR_IO, "%s: cannot stat: %s", path, strerror(stat_errno));
    if (!S_ISREG(sb.st_mode)) return aac_fail(err, AAC_ERR_IO, "%s: not a regular file", path);

    zr_archive *z = calloc(1, sizeof *z);
    if (!z || !(z->path = strdup(path))) {
        free(z);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    int zerr = 0;
    z->za = zip_open(path, ZIP_RDONLY, &zerr);
    if (!z->za) {
        char buf[128];
        aac_status st;
        int local = got == 4 && memcmp(magic, "PK\3\4", 4) == 0;
        if (zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ || zerr == ZIP_ER_SEEK ||
            zerr == ZIP_ER_MEMORY)
            st = aac_fail(err, zerr == ZIP_ER_MEMORY ? AAC_ERR_NOMEM : AAC_ERR_IO,
                          "%s: cannot open as zip: %s", path, zip_code_str(zerr, buf, sizeof buf));
        else if (local && (zerr == ZIP_ER_NOZIP || zerr == ZIP_ER_INCONS || zerr == ZIP_ER_EOF))
            /* Starts like a zip but the central directory at the end is missing or broken:
             * the usual result of an interrupted copy or download. */
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: zip archive is truncated or damaged (%s)", path,
                          zip_code_str(zerr, buf, sizeof buf));
        else
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: not a valid zip archive (%s)", path,
                          zip_code_str(zerr, buf, sizeof buf));
        zr_close(z);
        return st;
    }
    aac_status st = check_entries(z, max_member, err);
    if (st != AAC_OK) {
        zr_close(z);
        return st;
    }
    *out = z;
    return AAC_OK;
}

void zr_close(zr_archive *z) {
    if (!z) return;
    if (z->za) zip_discard(z->za); /* read-only: never write anything back */
    for (size_t i = 0; i < z->n; i++) free(z->names[i]);
    free(z->names);
    free(z->sizes);
    free(z->index);
    free(z->by_name);
    free(z->path);
    free(z);
}

const char *zr_path(const zr_archive *z) { return z->path; }
size_t zr_count(const zr_archive *z) { return z->n; }
const char *zr_name(const zr_archive *z, size_t i) { return i < z->n ? z->names[i] : NULL; }
uint64_t zr_size(const zr_archive *z, size_t i) { return i < z->n ? z->sizes[i] : 0; }

int64_t zr_find(const zr_archive *z, const char *name) {
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->names[z->by_name[mid]], name);
        if (c == 0) return (int64_t)z->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

aac_status zr_read(const zr_archive *z, size_t i, size_t max_bytes, void **data, size_t *len,
                   aac_error *err) {
    *data = NULL;
    *len = 0;
    if (i >= z->n) return aac_fail(err, AAC_ERR_ARG, "%s: zip entry %zu out of range", z->path, i);
    char pb[160];
    const char *nm = printable(z->names[i], pb, sizeof pb);
    uint64_t size = z->sizes[i];
    if (size > max_bytes || size > SIZE_MAX - 1)
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: zip member '%s' declares %llu bytes, more than the limit of %zu",
                        z->path, nm, (unsigned long long)size, max_bytes);
    zip_file_t *zf = zip_fopen_index(z->za, z->index[i], 0);
    if (!zf) {
        zip_error_t *ze = zip_get_error(z->za);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: cannot open zip member '%s': %s", z->path, nm,
                        zip_error_strerror(ze));
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) {
        zip_fclose(zf);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading zip member '%s' (%llu bytes)",
                        z->path, nm, (unsigned long long)size);
    }
    uint64_t have = 0;
    aac_status st = AAC_OK;
    while (have < size) {
        zip_int64_t r = zip_fread(zf, buf + have, size - have);
        if (r < 0) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: zip member '%s' is truncated or corrupt: %s",
                          z->path, nm, zip_error_strerror(zip_file_get_error(zf)));
            break;
        }
        if (r == 0) {
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: zip member '%s' is truncated: %llu of %llu bytes", z->path, nm,
                          (unsigned long long)have, (unsigned long long)size);
            break;
        }
        have += (uint64_t)r;
    }
    if (st == AAC_OK) {
        /* One more read must report the end: that is where libzip checks the CRC, and it
         * catches a member that inflates to more than its declared size. */
        zip_int64_t r = zip_fread(zf, buf + size, 1);
        if (r < 0)
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: zip member '%s' is corrupt: %s", z->path, nm,
                          zip_error_strerror(zip_file_get_error(zf)));
        else if (r > 0)
            st = aac_fail(err, AAC_ERR_FORMAT,
                          "%s: zip member '%s' holds more data than its declared %llu bytes",
                          z->path, nm, (unsigned long long)size);
    }
    zip_fclose(zf);
    if (st != AAC_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = (size_t)size;
    return AAC_OK;
}
