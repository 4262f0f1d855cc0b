/* gz.c - gzip-compressed DICOM (*.dcm.gz, as research archives and dcm2niix's test data keep
 * it): recognised by the gzip magic, inflated whole into memory with zlib for DCMTK / GDCM
 * (a gzip stream cannot be read out of order, so nothing can be left on disk). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "error.h"
#include "ingest.h"

/* A bomb (a few kB inflating to terabytes) must end in a message, not in memory exhaustion. */
static const size_t GZ_MAX_INFLATED = (size_t)4 << 30;

int gz_magic(const unsigned char *b, size_t n) { return n >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

int gz_is_path(const char *path) {
    unsigned char b[2];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    return gz_magic(b, n);
}

size_t gz_peek(const char *path, unsigned char *buf, size_t cap) {
    gzFile g = gzopen(path, "rb");
    if (!g) return 0;
    const int n = gzread(g, buf, (unsigned)(cap > INT_MAX ? INT_MAX : cap));
    gzclose(g);
    return n > 0 ? (size_t)n : 0;
}

/* The size the gzip trailer states (ISIZE, modulo 4 GiB): a first guess for the buffer. */
static size_t size_hint(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char t[4];
    size_t hint = 0;
    if (f && fseek(f, -4, SEEK_END) == 0 && fread(t, 1, 4, f) == 4)
        hint = (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 | (size_t)t[3] << 24;
    if (f) fclose(f);
    return hint;
}

/* zlib's message without the "path: " it starts with. */
static const char *gz_why(gzFile g, const char *path, int *code) {
    const char *msg = gzerror(g, code);
    const size_t n = strlen(path);
    if (msg && !strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    return msg && *msg ? msg : "zlib error";
}

aac_status gz_read_all(const char *path, unsigned char **out, size_t *n_out, aac_error *err) {
    *out = NULL;
    *n_out = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) return aac_fail(err, AAC_ERR_IO, "%s: cannot open (%s)", path, strerror(errno ? errno : ENOMEM));
    gzbuffer(g, 1 << 17);
    size_t cap = size_hint(path) + 1, n = 0;
    if (cap < 65536 || cap > GZ_MAX_INFLATED) cap = 65536;
    unsigned char *buf = malloc(cap);
    aac_status st = buf ? AAC_OK : aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory inflating", path);
    while (st == AAC_OK) {
        if (n == cap) {
            if (cap >= GZ_MAX_INFLATED) {
                st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: gzip-compressed DICOM inflates to more than %zu MiB",
                              path, GZ_MAX_INFLATED >> 20);
                break;
            }
            size_t c = cap * 2 > GZ_MAX_INFLATED ? GZ_MAX_INFLATED : cap * 2;
            unsigned char *p = realloc(buf, c);
            if (!p) {
                st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory inflating", path);
                break;
            }
            buf = p;
            cap = c;
        }
        const size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        const int got = gzread(g, buf + n, (unsigned)want);
        if (got < 0) {
            int code = 0;
            const char *msg = gz_why(g, path, &code);
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: gzip stream is corrupt or truncated (%s)", path, msg);
        } else if (got == 0) {
            /* gzread reports a stream that ends early as an end, gzerror tells it apart */
            int code = 0;
            const char *msg = gz_why(g, path, &code);
            if (code != Z_OK && code != Z_STREAM_END)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: gzip stream is corrupt or truncated (%s)", path, msg);
            break;
        } else {
            n += (size_t)got;
        }
    }
    gzclose(g);
    if (st != AAC_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    *n_out = n;
    return AAC_OK;
}
