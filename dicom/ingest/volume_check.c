/* volume_check.c - NIfTI, NRRD and MetaImage headers read and checked here before ITK sees the
 * file. ITK trusts them: a NaN in the sform aborts the process inside its orientation SVD, a
 * MetaImage NDims of -1 or 99999999 hangs its reader, dims that promise more voxels than the
 * file holds allocate gigabytes and give back zeros. So every size is checked against the data
 * the file (or its detached data file) really holds and against the memory budget, every
 * geometric value must be finite and within a kilometre, direction matrices must not be
 * degenerate, and the forms this build cannot read are named. */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include "error.h"
#include "ingest.h"

enum { MAX_HEADER = 1 << 16 /* text headers: a real one is a few hundred bytes */ };
/* Header lines the libraries read into fixed buffers: MetaIO's string fields hold 254
 * characters, teem's error messages 1 KiB including the offending line. */
enum { META_MAX_VALUE = 254, NRRD_MAX_LINE = 768 };
static const double MAX_MM = 1e6;  /* as geometry.c: 1 km */
static const double MIN_MM = 1e-6; /* a voxel smaller than a nanometre is a corrupt value */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

static int geom_ok(double v) { return isfinite(v) && fabs(v) <= MAX_MM; }

/* Product of dims times bytes, or -1 past 2^62 (no real volume is that large). */
static double volume_bytes(const int64_t *dim, int n, int bytes) {
    double p = bytes;
    for (int i = 0; i < n; i++) p *= (double)dim[i];
    return p;
}

/* The budget: ITK's float image and our copy, plus the file's own type while converting. */
static aac_status check_budget(const char *path, const int64_t *dim, int n, int bytes, aac_error *err) {
    const double need = volume_bytes(dim, n, 8 + bytes), budget = (double)vol_memory_budget();
    if (need > budget) {
        char dims[160] = "";
        size_t k = 0;
        for (int i = 0; i < n && k < sizeof dims - 24; i++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, "%s%lld", i ? " x " : "", (long long)dim[i]);
        return aac_fail(err, AAC_ERR_NOMEM,
                        "%s: %s voxels need %.0f MiB to read, more than the memory budget of %.0f MiB (half the "
                        "physical memory; AACLIP_MAX_VOLUME_MB sets it)",
                        path, dims, need / 1048576.0, budget / 1048576.0);
    }
    return AAC_OK;
}

static aac_status short_data(const char *path, const char *data_path, double need, double have, aac_error *err) {
    return aac_fail(err, AAC_ERR_FORMAT,
                    "%s: the header promises %.0f bytes of voxel data but %s%s holds %.0f: truncated, or the "
                    "dimensions are wrong",
                    path, need, data_path && strcmp(data_path, path) ? "its data file " : "the file",
                    data_path && strcmp(data_path, path) ? data_path : "", have);
}

/* Bytes the zlib or gzip stream at offset of path inflates to, counted up to want (and one chunk
 * past it, to see the stream end when it is exactly that long), or -1 when it cannot be read.
 * *clean: 1 when the stream ended properly (checksum included) or went on past want without
 * error; 0 when it is corrupt or cut short, however many bytes it gave before: ITK's readers
 * then leave the rest of the image uninitialised (found by fuzz_metaimage with valgrind). */
static double inflated_size(const char *path, long long offset, double want, long long max_in, int *clean) {
    *clean = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    if (offset > 0 && fseeko(f, (off_t)offset, SEEK_SET) != 0) {
        fclose(f);
        return -1;
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) { /* 32: gzip or zlib header, detected */
        fclose(f);
        return -1;
    }
    static const size_t CHUNK = 1 << 16;
    unsigned char *in = malloc(CHUNK), *out = malloc(CHUNK);
    double got = 0;
    long long read_in = 0; /* compressed bytes read, at most max_in when that is >= 0 */
    int done = !in || !out;
    while (!done) {
        if (got > want + (double)CHUNK) { /* longer than needed, without error so far */
            *clean = 1;
            break;
        }
        if (zs.avail_in == 0) {
            size_t cap = CHUNK;
            if (max_in >= 0 && (long long)cap > max_in - read_in) cap = (size_t)(max_in - read_in);
            zs.avail_in = (uInt)fread(in, 1, cap, f);
            read_in += zs.avail_in;
            zs.next_in = in;
            if (zs.avail_in == 0) break; /* cut short: the stream did not end */
        }
        zs.next_out = out;
        zs.avail_out = (uInt)CHUNK;
        const int r = inflate(&zs, Z_NO_FLUSH);
        got += (double)(CHUNK - zs.avail_out);
        if (r == Z_STREAM_END) {
            /* enough, or another gzip member may follow (bgzip, concatenated files) */
            if (got < want && zs.avail_in == 0 && (max_in < 0 || read_in < max_in)) {
                size_t cap = CHUNK;
                if (max_in >= 0 && (long long)cap > max_in - read_in) cap = (size_t)(max_in - read_in);
                zs.avail_in = (uInt)fread(in, 1, cap, f);
                read_in += zs.avail_in;
                zs.next_in = in;
            }
            if (got >= want || zs.avail_in == 0 || inflateReset(&zs) != Z_OK) {
                *clean = 1;
                done = 1;
            }
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            done = 1; /* corrupt */
        }
    }
    inflateEnd(&zs);
    free(in);
    free(out);
    fclose(f);
    return got;
}

static double file_size(const char *path, int *regular) {
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    *regular = S_ISREG(sb.st_mode);
    return (double)sb.st_size;
}

/* A 3 x 3 matrix (columns are the axes) whose columns are not all but parallel. */
static int degenerate(const double m[9]) {
    double norm = 1;
    for (int c = 0; c < 3; c++) norm *= sqrt(m[c] * m[c] + m[3 + c] * m[3 + c] + m[6 + c] * m[6 + c]);
    const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                       m[2] * (m[3] * m[7] - m[4] * m[6]);
    return !(norm > 0) || !(fabs(det) > 1e-6 * norm);
}

/* Columns of m (a 3 x 3 matrix, columns are the axes) at right angles to each other within
 * rounding: ITK takes the normalised columns as the direction cosines without checking. */
static int orthogonal(const double m[9]) {
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++) {
            double dot = 0, na = 0, nb = 0;
            for (int r = 0; r < 3; r++) {
                dot += m[r * 3 + a] * m[r * 3 + b];
                na += m[r * 3 + a] * m[r * 3 + a];
                nb += m[r * 3 + b] * m[r * 3 + b];
            }
            if (fabs(dot) > 1e-3 * sqrt(na * nb)) return 0;
        }
    return 1;
}

/* ---------------------------------------------------------------- NIfTI-1 */

static uint32_t rd32(const unsigned char *p, int swap) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return swap ? (v >> 24) | (v >> 8 & 0xFF00) | (v << 8 & 0xFF0000) | (v << 24) : v;
}
static int16_t rd16(const unsigned char *p, int swap) {
    return (int16_t)(swap ? (p[0] << 8 | p[1]) : (p[1] << 8 | p[0]));
}
static double rdf(const unsigned char *p, int swap) {
    uint32_t u = rd32(p, swap);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Bytes per voxel of a NIfTI datatype ITK reads as a scalar; 0 otherwise (*why says what). */
static int nifti_bytes(int datatype, const char **why) {
    switch (datatype) {
    case 2: case 256: return 1;           /* uint8, int8 */
    case 4: case 512: return 2;           /* int16, uint16 */
    case 8: case 768: case 16: return 4;  /* int32, uint32, float32 */
    case 64: case 1024: case 1280: return 8; /* float64, int64, uint64 */
    case 32: case 1792: case 2048: *why = "complex voxels"; return 0;
    case 128: case 2304: *why = "RGB voxels"; return 0;
    case 1536: *why = "float128 voxels"; return 0;
    default: *why = "an unknown datatype"; return 0;
    }
}

static aac_status check_nifti(const char *path, aac_error *err) {
    const int gz = ends_with(path, ".gz");
    gzFile g = gzopen(path, "rb");
    if (!g) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char h[348];
    const int n = gzread(g, h, sizeof h);
    gzclose(g);
    if (n < 4) return aac_fail(err, AAC_ERR_FORMAT, "%s: not a NIfTI file (%d bytes of header)", path, n < 0 ? 0 : n);
    int swap = 0;
    uint32_t sz = rd32(h, 0);
    if (sz != 348 && sz != 540) swap = 1, sz = rd32(h, 1);
    if (sz == 540) return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: NIfTI-2, which this build (ITK 5.2) cannot read", path);
    if (sz != 348 || n < 348) return aac_fail(err, AAC_ERR_FORMAT, "%s: not a NIfTI-1 file (header size field %u)", path, sz);
    if (memcmp(h + 344, "n+1\0", 4))
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: NIfTI magic is not \"n+1\" (a .hdr/.img pair renamed .nii, or not NIfTI)", path);
    const int ndim = rd16(h + 40, swap);
    if (ndim < 1 || ndim > 7) return aac_fail(err, AAC_ERR_FORMAT, "%s: dim[0] = %d (1 to 7 allowed)", path, ndim);
    int64_t dim[7];
    for (int i = 0; i < ndim; i++) {
        dim[i] = rd16(h + 42 + 2 * i, swap);
        if (dim[i] < 1) return aac_fail(err, AAC_ERR_FORMAT, "%s: dim[%d] = %lld", path, i + 1, (long long)dim[i]);
    }
    const char *why = "";
    const int bytes = nifti_bytes(rd16(h + 70, swap), &why);
    if (!bytes) return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %s (datatype %d; scalar images only)", path, why, rd16(h + 70, swap));
    /* Geometry: every value ITK's orientation code will see. */
    double pix[8];
    for (int i = 0; i < 8; i++) pix[i] = rdf(h + 76 + 4 * i, swap);
    for (int i = 0; i <= 3 || i <= ndim; i++)
        if (i < 8 && !geom_ok(pix[i]))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: pixdim[%d] = %g is not a finite size up to 1 km", path, i, pix[i]);
    for (int i = 1; i <= 3 && i <= ndim; i++)
        if (!(fabs(pix[i]) >= MIN_MM))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: pixdim[%d] = %g: voxels without size", path, i, pix[i]);
    if (rd16(h + 252, swap) > 0) { /* qform */
        double q[6];
        for (int i = 0; i < 6; i++) q[i] = rdf(h + 256 + 4 * i, swap);
        for (int i = 0; i < 6; i++)
            if (!geom_ok(q[i]))
                return aac_fail(err, AAC_ERR_FORMAT, "%s: qform %s = %g is not finite or beyond 1 km", path,
                                i < 3 ? "quaternion" : "offset", q[i]);
        if (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] > 1.01)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: qform quaternion (%g, %g, %g) is not a rotation", path, q[0],
                            q[1], q[2]);
    }
    if (rd16(h + 254, swap) > 0) { /* sform */
        double s[12], m[9];
        for (int i = 0; i < 12; i++) {
            s[i] = rdf(h + 280 + 4 * i, swap);
            if (!geom_ok(s[i]))
                return aac_fail(err, AAC_ERR_FORMAT, "%s: sform entry srow_%c[%d] = %g is not finite or beyond 1 km",
                                path, "xyz"[i / 4], i % 4, s[i]);
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++) m[r * 3 + c] = s[r * 4 + c];
        if (degenerate(m)) return aac_fail(err, AAC_ERR_FORMAT, "%s: the sform matrix is degenerate (no volume)", path);
    }
    /* Data: dims times bytes must be in the file, and fit the memory budget. */
    const double vox_offset = rdf(h + 108, swap);
    if (!isfinite(vox_offset) || vox_offset < 0 || vox_offset > 1e15)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: vox_offset %g", path, vox_offset);
    aac_status st = check_budget(path, dim, ndim, bytes, err);
    if (st != AAC_OK) return st;
    const double offset = vox_offset < 352 ? 352 : floor(vox_offset);
    const double need = volume_bytes(dim, ndim, bytes);
    int regular = 0;
    double have = file_size(path, &regular);
    if (have < 0) return aac_fail(err, AAC_ERR_IO, "%s: %s", path, strerror(errno));
    if (gz) {
        /* The gzip trailer gives the size of a single-member file; otherwise count. */
        unsigned char t[4] = {0, 0, 0, 0};
        FILE *f = fopen(path, "rb");
        if (f && fseeko(f, -4, SEEK_END) == 0 && fread(t, 1, 4, f) == 4) {
        }
        if (f) fclose(f);
        const double isize = (double)rd32(t, 0), total = offset + need;
        int clean = 1;
        have = isize == fmod(total, 4294967296.0) && total < 4294967296.0 ? isize : inflated_size(path, 0, total, -1, &clean);
        if (!clean && have - offset >= need)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: the gzip stream is corrupt or cut short", path);
    }
    if (have - offset < need) return short_data(path, path, need, have - offset < 0 ? 0 : have - offset, err);
    return AAC_OK;
}

/* ---------------------------------------------------------------- text headers */

typedef struct text_header {
    char *text;     /* the header, NUL-terminated; lines end in '\0' after parsing */
    size_t len;     /* bytes of header in the file (data start for attached data) */
} text_header;

/* Reads up to MAX_HEADER bytes; the header ends at an empty line (NRRD) or at the line given by
 * the caller (MetaImage: ElementDataFile). */
static aac_status read_text(const char *path, text_header *t, aac_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    t->text = malloc(MAX_HEADER + 1);
    if (!t->text) {
        fclose(f);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    t->len = fread(t->text, 1, MAX_HEADER, f);
    fclose(f);
    t->text[t->len] = '\0';
    return AAC_OK;
}

/* A header line is text: no NUL or other control byte but tab, and a carriage return only as
 * the line's last byte (CR LF). teem and MetaIO read such lines their own ways (found by
 * fuzz_nrrd: a field after NUL bytes that we skipped and teem used; by fuzz_metaimage: a lone
 * CR inside a value, where MetaIO's line and ours parted and its heap was corrupted), so a
 * header holding one is refused rather than guessed. */
static int text_line(const char *line, size_t len) {
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t' && !(c == '\r' && i + 1 == len)) || c == 0x7f) return 0;
    }
    return 1;
}

static char *trim(char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Parses up to max doubles from s (separators: space, comma, parentheses); returns the count,
 * -1 on a token that is not a number. */
static int parse_doubles(const char *s, double *out, int max) {
    int n = 0;
    while (*s) {
        while (*s && (isspace((unsigned char)*s) || *s == ',' || *s == '(' || *s == ')')) s++;
        if (!*s) break;
        char *end;
        const double v = strtod(s, &end);
        if (end == s) return -1;
        if (n < max) out[n] = v;
        n++;
        s = end;
    }
    return n;
}

/* Strict positive integer list: each in 1..2^31-1; returns the count or -1. */
static int parse_sizes(const char *s, int64_t *out, int max) {
    int n = 0;
    while (*s) {
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) break;
        if (!isdigit((unsigned char)*s)) return -1;
        char *end;
        errno = 0;
        const long long v = strtoll(s, &end, 10);
        if (errno || v < 1 || v > 2147483647LL) return -1;
        if (n < max) out[n] = v;
        n++;
        s = end;
    }
    return n;
}

/* The data file a header names, relative to the header's folder. */
static void data_path_of(const char *header, const char *name, char *out, size_t cap) {
    const char *slash = strrchr(header, '/');
    if (name[0] == '/' || !slash) snprintf(out, cap, "%s", name);
    else snprintf(out, cap, "%.*s/%s", (int)(slash - header), header, name);
}

/* need bytes of data at offset of data (raw or compressed); -1 data_size: compressed. */
static aac_status check_data(const char *path, const char *data, double offset, double need, int compressed,
                             long long comp_size, int at_end, aac_error *err) {
    int regular = 0;
    const double size = file_size(data, &regular);
    if (size < 0) return aac_fail(err, AAC_ERR_IO, "%s: data file %s: %s", path, data, strerror(errno));
    if (!regular) return aac_fail(err, AAC_ERR_FORMAT, "%s: data file %s is not a regular file", path, data);
    if (compressed) {
        /* MetaIO reads CompressedDataSize bytes (allocating that much first): the file must hold them */
        if (comp_size > 0 && (double)comp_size > size - offset)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: CompressedDataSize = %lld but %s holds %.0f bytes of data", path,
                            comp_size, data, size - offset > 0 ? size - offset : 0);
        int clean = 0;
        const double have = inflated_size(data, (long long)offset, need, comp_size, &clean);
        if (have < need) return short_data(path, data, need, have < 0 ? 0 : have, err);
        if (!clean)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: the compressed data%s%s is corrupt or cut short (zlib)", path,
                            strcmp(path, data) ? " in " : "", strcmp(path, data) ? data : "");
        return AAC_OK;
    }
    const double have = at_end ? size : size - offset;
    if (have < need) return short_data(path, data, need, have < 0 ? 0 : have, err);
    return AAC_OK;
}

/* ---------------------------------------------------------------- NRRD */

/* A NRRD field name as teem matches it, whatever the spelling: teem accepts equivalents such as
 * "spacedirections" and "space directions" (found by fuzz_nrrd: a sheared grid passed under
 * the other spelling); lower case without spaces, underscores or hyphens. */
static void nrrd_key(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        if (*in != ' ' && *in != '_' && *in != '-' && *in != '\t') out[n++] = (char)tolower((unsigned char)*in);
    out[n] = '\0';
}

static int nrrd_bytes(const char *type) {
    static const struct { const char *name; int bytes; } t[] = {
        {"signed char", 1}, {"int8", 1}, {"int8_t", 1}, {"uchar", 1}, {"unsigned char", 1}, {"uint8", 1},
        {"uint8_t", 1}, {"short", 2}, {"short int", 2}, {"signed short", 2}, {"signed short int", 2},
        {"int16", 2}, {"int16_t", 2}, {"ushort", 2}, {"unsigned short", 2}, {"unsigned short int", 2},
        {"uint16", 2}, {"uint16_t", 2}, {"int", 4}, {"signed int", 4}, {"int32", 4}, {"int32_t", 4},
        {"uint", 4}, {"unsigned int", 4}, {"uint32", 4}, {"uint32_t", 4}, {"longlong", 8}, {"long long", 8},
        {"long long int", 8}, {"signed long long", 8}, {"signed long long int", 8}, {"int64", 8},
        {"int64_t", 8}, {"ulonglong", 8}, {"unsigned long long", 8}, {"unsigned long long int", 8},
        {"uint64", 8}, {"uint64_t", 8}, {"float", 4}, {"double", 8}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcasecmp(type, t[i].name)) return t[i].bytes;
    return 0;
}

static aac_status check_nrrd(const char *path, aac_error *err) {
    text_header t = {0};
    aac_status st = read_text(path, &t, err);
    if (st != AAC_OK) return st;
    if (strncmp(t.text, "NRRD000", 7)) {
        free(t.text);
        return aac_fail(err, AAC_ERR_FORMAT, "%s: not NRRD (no NRRD000n magic)", path);
    }
    int dimension = 0, bytes = 0, n_sizes = -2, compressed = 0, text_data = 0, line_skip = 0, have_origin = 0;
    long long byte_skip = 0;
    int64_t sizes[16];
    char data_file[1024] = "", space_dirs[2048] = "";
    double origin[3];
    size_t pos = 0, header_end = t.len;
    int ended = 0;
    st = AAC_OK;
    while (pos < t.len && st == AAC_OK) {
        char *line = t.text + pos;
        char *nl = memchr(line, '\n', t.len - pos);
        if (!nl) break; /* a header line without its end: the header is longer than we read */
        if (nl > line && !text_line(line, (size_t)(nl - line)) && line[0] != '#') {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: a header line holds a control character (not a text header)", path);
            break;
        }
        *nl = '\0';
        pos = (size_t)(nl - t.text) + 1;
        if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
        if (line[0] == '\0') { /* the empty line: data follows */
            header_end = pos;
            ended = 1;
            break;
        }
        /* the magic is the first line only: teem parses a later "NRRD000..." line as a field */
        if (line[0] == '#' || line == t.text) continue;
        /* teem formats a field it cannot parse into a fixed message buffer (biff, 1 KiB) with
         * vsprintf: a long line overflows its stack (found by fuzz_nrrd). */
        if (strlen(line) > NRRD_MAX_LINE) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: a header line of %zu characters (at most %d)", path, strlen(line),
                          (int)NRRD_MAX_LINE);
            break;
        }
        char *colon = strstr(line, ": ");
        if (!colon || strstr(line, ":=") == colon) continue; /* key/value pairs */
        *colon = '\0';
        char *val = trim(colon + 2), key[64];
        nrrd_key(trim(line), key, sizeof key);
        if (!strcmp(key, "dimension")) {
            dimension = atoi(val);
            if (dimension < 1 || dimension > 16)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: dimension %s (1 to 16 allowed)", path, val);
        } else if (!strcmp(key, "type")) {
            if (!(bytes = nrrd_bytes(val))) st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: type \"%s\" is not a scalar type", path, val);
        } else if (!strcmp(key, "sizes")) {
            n_sizes = parse_sizes(val, sizes, 16);
            if (n_sizes < 0) st = aac_fail(err, AAC_ERR_FORMAT, "%s: sizes \"%s\" (positive integers below 2^31)", path, val);
        } else if (!strcmp(key, "encoding")) {
            if (!strcasecmp(val, "gzip") || !strcasecmp(val, "gz")) compressed = 1;
            else if (!strcasecmp(val, "ascii") || !strcasecmp(val, "text") || !strcasecmp(val, "txt") ||
                     !strcasecmp(val, "hex"))
                text_data = 1;
            else if (strcasecmp(val, "raw"))
                st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: encoding \"%s\" is not supported (raw, gzip, ascii, hex)", path, val);
        } else if (!strcmp(key, "datafile")) {
            if (strchr(val, '%') || !strncmp(val, "LIST", 4) || strchr(val, ' ') || !val[0])
                st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: data in several files (\"%s\") is not supported", path, val);
            else snprintf(data_file, sizeof data_file, "%s", val);
        } else if (!strcmp(key, "lineskip")) {
            line_skip = atoi(val);
            if (line_skip < 0 || line_skip > 1 << 20) st = aac_fail(err, AAC_ERR_FORMAT, "%s: line skip %s", path, val);
        } else if (!strcmp(key, "byteskip")) {
            byte_skip = atoll(val);
            if (byte_skip < -1 || byte_skip > (1LL << 40)) st = aac_fail(err, AAC_ERR_FORMAT, "%s: byte skip %s", path, val);
        } else if (!strcmp(key, "spacedirections")) {
            snprintf(space_dirs, sizeof space_dirs, "%s", val);
        } else if (!strcmp(key, "spaceorigin")) {
            if (parse_doubles(val, origin, 3) != 3 || !geom_ok(origin[0]) || !geom_ok(origin[1]) || !geom_ok(origin[2]))
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: space origin \"%s\" is not three finite values up to 1 km", path, val);
            have_origin = 1;
        } else if (!strcmp(key, "spacings")) {
            double sp[16];
            const int k = parse_doubles(val, sp, 16);
            for (int i = 0; i < k && i < 16 && st == AAC_OK; i++)
                if (!geom_ok(sp[i]) || fabs(sp[i]) < MIN_MM)
                    st = aac_fail(err, AAC_ERR_FORMAT, "%s: spacing %g is not a finite size from 1 nm to 1 km", path, sp[i]);
            if (k < 0) st = aac_fail(err, AAC_ERR_FORMAT, "%s: spacings \"%s\"", path, val);
        }
    }
    (void)have_origin;
    if (st == AAC_OK && !ended && !data_file[0])
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: the header has no end (no empty line) and names no data file", path);
    if (st == AAC_OK && (!dimension || !bytes || n_sizes < 0))
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: dimension, type or sizes missing", path);
    if (st == AAC_OK && n_sizes != dimension)
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: %d sizes for dimension %d", path, n_sizes, dimension);
    if (st == AAC_OK && space_dirs[0]) {
        /* One vector per axis or "none"; the spatial ones finite, up to 1 km, not degenerate. */
        double m[9] = {0}, v[4];
        int axis = 0, spatial = 0;
        for (char *p = space_dirs; *p && st == AAC_OK;) {
            while (isspace((unsigned char)*p)) p++;
            if (!*p) break;
            if (!strncmp(p, "none", 4)) {
                p += 4, axis++;
                continue;
            }
            char *close = *p == '(' ? strchr(p, ')') : NULL;
            if (!close) {
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: space directions \"%s\"", path, space_dirs);
                break;
            }
            *close = '\0';
            const int k = parse_doubles(p + 1, v, 4);
            if (k < 2 || k > 3) st = aac_fail(err, AAC_ERR_FORMAT, "%s: space direction (%s)", path, p + 1);
            for (int i = 0; i < k && i < 3 && st == AAC_OK; i++)
                if (!geom_ok(v[i])) st = aac_fail(err, AAC_ERR_FORMAT, "%s: space direction value %g is not finite or beyond 1 km", path, v[i]);
            if (st == AAC_OK && sqrt(v[0] * v[0] + v[1] * v[1] + (k > 2 ? v[2] * v[2] : 0)) < MIN_MM)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: space direction (%s) is shorter than 1 nm", path, p + 1);
            if (st == AAC_OK && spatial < 3)
                for (int i = 0; i < 3; i++) m[i * 3 + spatial] = i < k ? v[i] : 0;
            spatial++, axis++;
            p = close + 1;
        }
        if (st == AAC_OK && axis != dimension)
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: %d space directions for dimension %d", path, axis, dimension);
        if (st == AAC_OK && spatial == 3 && degenerate(m))
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: the space directions are degenerate (no volume)", path);
        if (st == AAC_OK && spatial == 3 && !orthogonal(m))
            st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: the space directions are not orthogonal (a sheared grid)", path);
    }
    if (st == AAC_OK) st = check_budget(path, sizes, dimension, bytes, err);
    if (st == AAC_OK && !text_data) {
        char data[2048];
        if (data_file[0]) data_path_of(path, data_file, data, sizeof data);
        else snprintf(data, sizeof data, "%s", path);
        /* Attached data starts after the header; line skip lines, then byte skip bytes, are skipped. */
        double offset = data_file[0] ? 0 : (double)header_end;
        if (line_skip > 0) {
            FILE *f = fopen(data, "rb");
            int c, lines = 0;
            if (f && fseeko(f, (off_t)offset, SEEK_SET) == 0)
                while (lines < line_skip && (c = fgetc(f)) != EOF) {
                    offset++;
                    lines += c == '\n';
                }
            if (f) fclose(f);
        }
        if (byte_skip > 0) offset += (double)byte_skip;
        st = check_data(path, data, offset, volume_bytes(sizes, dimension, bytes), compressed, -1,
                        byte_skip == -1 && !compressed, err);
    }
    free(t.text);
    return st;
}

/* ---------------------------------------------------------------- MetaImage */

static int met_bytes(const char *type) {
    static const struct { const char *name; int bytes; } t[] = {
        {"MET_CHAR", 1}, {"MET_UCHAR", 1}, {"MET_SHORT", 2}, {"MET_USHORT", 2}, {"MET_INT", 4},
        {"MET_UINT", 4}, {"MET_LONG", 4}, {"MET_ULONG", 4}, {"MET_LONG_LONG", 8}, {"MET_ULONG_LONG", 8},
        {"MET_FLOAT", 4}, {"MET_DOUBLE", 8}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(type, t[i].name)) return t[i].bytes;
    return 0;
}

/* MetaIO's reading of a boolean: true when the value starts with T, t or 1. */
static int is_true(const char *v) { return v[0] == 'T' || v[0] == 't' || v[0] == '1'; }

/* A MetaImage key: letters, digits and '_', at most 64 of them (MetaIO strcpy's keys into
 * 255-byte field names: a longer one overflowed, found by the 30 s fuzz run of make test). */
static int identifier(const char *k) {
    size_t n = 0;
    for (; k[n]; n++)
        if (!isalnum((unsigned char)k[n]) && k[n] != '_') return 0;
    return n >= 1 && n <= 64;
}

/* The fields MetaIO defines for an image (MetaObject and MetaImage). Any other key becomes one
 * of MetaIO's "additional fields", whose reading corrupted the heap under the fuzzer (not
 * located): such headers are refused, naming the key. ITK and Slicer write only these. */
static int meta_known_key(const char *k) {
    static const char *const known[] = {
        "ObjectType", "ObjectSubType", "NDims", "Name", "Comment", "ID", "ParentID", "AcquisitionDate", "Color",
        "CompressedData", "CompressedDataSize", "BinaryData", "BinaryDataByteOrderMSB", "ElementByteOrderMSB",
        "Position", "Origin", "Offset", "TransformMatrix", "Rotation", "Orientation", "CenterOfRotation",
        "AnatomicalOrientation", "DistanceUnits", "ElementSpacing", "ElementSize", "DimSize", "HeaderSize", "Modality",
        "SequenceID", "ElementMin", "ElementMax", "ElementNumberOfChannels", "ElementType", "ElementDataFile"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(k, known[i])) return 1;
    return 0;
}

static aac_status check_meta(const char *path, aac_error *err) {
    text_header t = {0};
    aac_status st = read_text(path, &t, err);
    if (st != AAC_OK) return st;
    /* MetaIO reads BinaryData as false when it is missing: ASCII voxels. */
    int ndims = 0, bytes = 0, n_sizes = -2, compressed = 0, binary = 0, ended = 0, line_no = 0;
    long long header_size = 0, comp_size = -1;
    int64_t sizes[16];
    char data_file[1024] = "", seen[2048] = "|";
    size_t pos = 0, data_start = t.len;
    while (pos < t.len && st == AAC_OK && !ended) {
        char *line = t.text + pos;
        char *nl = memchr(line, '\n', t.len - pos);
        if (!nl) nl = t.text + t.len;
        line_no++;
        if (!text_line(line, (size_t)(nl - line))) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: header line %d holds a control character (not a text header)", path,
                          line_no);
            break;
        }
        *nl = '\0';
        pos = (size_t)(nl - t.text) + 1;
        if (!*trim(line)) continue;
        /* Only "Key = Value" lines, each key once: where our reading and MetaIO's could differ
         * (odd keys, repeats, stray text) the header is refused rather than guessed. */
        char *eq = strchr(line, '=');
        if (!eq) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: header line %d is not \"Key = Value\"", path, line_no);
            break;
        }
        *eq = '\0';
        char *key = trim(line), *val = trim(eq + 1);
        char mark[80];
        snprintf(mark, sizeof mark, "|%.70s|", key);
        if (!identifier(key) || strstr(seen, mark)) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: header line %d: key \"%.64s\" is %s", path, line_no, key,
                          identifier(key) ? "given twice" : "not a MetaImage key");
            break;
        }
        if (!meta_known_key(key)) {
            st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: header line %d: key \"%.64s\" is not one of MetaIO's image fields",
                          path, line_no, key);
            break;
        }
        if (strlen(seen) + strlen(mark) < sizeof seen) strcat(seen, mark + 1);
        /* MetaIO copies string values (Comment, Name, ObjectSubType, ...) into 255-byte arrays
         * with strcpy: a longer one overflows (glibc's fortify aborts the process; found by
         * fuzz_metaimage as heap corruption). No value of ours is that long. */
        if (strlen(val) > META_MAX_VALUE) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: header line %d: the value of %.64s is %zu characters (at most %d)",
                          path, line_no, key, strlen(val), (int)META_MAX_VALUE);
            break;
        }
        if (!strcmp(key, "NDims")) {
            char *end;
            errno = 0;
            const long v = strtol(val, &end, 10);
            if (errno || *end || v < 1 || v > 4)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: NDims = %s (1 to 4 supported)", path, val);
            ndims = (int)v;
        } else if (!strcmp(key, "DimSize")) {
            n_sizes = parse_sizes(val, sizes, 16);
            if (!ndims) st = aac_fail(err, AAC_ERR_FORMAT, "%s: DimSize before NDims", path);
            if (n_sizes < 0) st = aac_fail(err, AAC_ERR_FORMAT, "%s: DimSize = %s (positive integers below 2^31)", path, val);
        } else if (!strcmp(key, "ElementType")) {
            if (!(bytes = met_bytes(val))) st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: ElementType %s is not a scalar type", path, val);
        } else if (!strcmp(key, "ElementNumberOfChannels")) {
            if (strcmp(val, "1")) st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: %s channels per voxel (scalar images only)", path, val);
        } else if (!strcmp(key, "CompressedData")) {
            compressed = is_true(val);
        } else if (!strcmp(key, "BinaryData")) {
            binary = is_true(val);
        } else if (!strcmp(key, "CompressedDataSize")) {
            char *end;
            errno = 0;
            comp_size = strtoll(val, &end, 10);
            if (errno || end == val || *end || comp_size < 1)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: CompressedDataSize = %s (a positive byte count)", path, val);
        } else if (!strcmp(key, "HeaderSize")) {
            header_size = atoll(val);
            if (header_size < -1 || header_size > (1LL << 40)) st = aac_fail(err, AAC_ERR_FORMAT, "%s: HeaderSize = %s", path, val);
        } else if (!strcmp(key, "ElementSpacing") || !strcmp(key, "ElementSize") || !strcmp(key, "Offset") ||
                   !strcmp(key, "Position") || !strcmp(key, "Origin") || !strcmp(key, "CenterOfRotation")) {
            /* MetaIO reads NDims numbers, across lines when the line has fewer: exactly NDims. */
            double v[16];
            const int k = parse_doubles(val, v, 16);
            const int size = !strncmp(key, "Element", 7);
            if (k < 0) st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s = %s is not a list of numbers", path, key, val);
            else if (!ndims || k != ndims)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s has %d values, NDims is %d", path, key, k, ndims);
            for (int i = 0; i < k && i < 16 && st == AAC_OK; i++)
                if (!geom_ok(v[i]) || (size && v[i] < MIN_MM))
                    st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s value %g is not %s", path, key, v[i],
                                  size ? "a finite size from 1 nm to 1 km" : "finite and within 1 km");
        } else if (!strcmp(key, "TransformMatrix") || !strcmp(key, "Rotation") || !strcmp(key, "Orientation")) {
            double v[16];
            const int k = parse_doubles(val, v, 16);
            if (k < 0) st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s = %s is not a list of numbers", path, key, val);
            else if (!ndims || k != ndims * ndims)
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s has %d values, NDims is %d", path, key, k, ndims);
            for (int i = 0; i < k && i < 16 && st == AAC_OK; i++)
                if (!geom_ok(v[i])) st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s value %g is not finite or beyond 1 km", path, key, v[i]);
            if (st == AAC_OK && k == 9) {
                const double m[9] = {v[0], v[3], v[6], v[1], v[4], v[7], v[2], v[5], v[8]};
                if (degenerate(m)) st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s is degenerate (no volume)", path, key);
                for (int c = 0; c < 3 && st == AAC_OK; c++)
                    if (fabs(sqrt(m[c] * m[c] + m[3 + c] * m[3 + c] + m[6 + c] * m[6 + c]) - 1) > 1e-3)
                        st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s column %d is not a unit vector (direction cosines)",
                                      path, key, c + 1);
                if (st == AAC_OK && !orthogonal(m))
                    st = aac_fail(err, AAC_ERR_FORMAT, "%s: %s is not orthogonal (direction cosines)", path, key);
            }
        } else if (!strcmp(key, "ElementDataFile")) {
            if (!strcmp(val, "LOCAL")) data_file[0] = '\0';
            else if (!strncmp(val, "LIST", 4) || strchr(val, '%') || !val[0])
                st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: data in several files (%s) is not supported", path, val);
            else snprintf(data_file, sizeof data_file, "%s", val);
            data_start = pos < t.len ? pos : t.len;
            ended = 1;
        }
    }
    if (st == AAC_OK && !ended) st = aac_fail(err, AAC_ERR_FORMAT, "%s: no ElementDataFile line ending the header", path);
    if (st == AAC_OK && (!ndims || !bytes || n_sizes < 0))
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: NDims, DimSize or ElementType missing", path);
    if (st == AAC_OK && n_sizes != ndims)
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: %d DimSize values for NDims = %d", path, n_sizes, ndims);
    if (st == AAC_OK) st = check_budget(path, sizes, ndims, bytes, err);
    /* ITK 5.2's MetaIO writes past its buffer reading ASCII voxels (found by fuzz_metaimage). */
    if (st == AAC_OK && !binary)
        st = aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: ASCII voxel data (BinaryData missing or not True) is not supported",
                      path);
    if (st == AAC_OK) {
        char data[2048];
        if (data_file[0]) data_path_of(path, data_file, data, sizeof data);
        else snprintf(data, sizeof data, "%s", path);
        double offset = data_file[0] ? 0 : (double)data_start;
        if (header_size > 0) offset += (double)header_size;
        st = check_data(path, data, offset, volume_bytes(sizes, ndims, bytes), compressed, comp_size,
                        header_size == -1 && !compressed, err);
    }
    free(t.text);
    return st;
}

aac_status vol_check_file(const char *path, aac_error *err) {
    if (ends_with(path, ".nii") || ends_with(path, ".nii.gz")) return check_nifti(path, err);
    if (ends_with(path, ".nrrd") || ends_with(path, ".nhdr")) return check_nrrd(path, err);
    if (ends_with(path, ".mha") || ends_with(path, ".mhd")) return check_meta(path, err);
    return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: not a .nii, .nii.gz, .nrrd, .nhdr, .mha or .mhd file", path);
}
