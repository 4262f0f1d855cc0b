/* safetensors.c - reading (mmap + jansson) and writing the safetensors format.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data area. Every
 * data_offsets pair is relative to the start of the data area. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "fsutil.h"

#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000) /* larger means a corrupt length field */

/* The zero-copy F32 path hands out the stored bytes as floats, valid only on LE hosts. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define ST_HOST_LE 0
#else
#define ST_HOST_LE 1
#endif

static const char *const st_names[] = {"F32", "F16", "BF16", "F64", "U8",
                                       "I8",  "I16", "I32",  "I64", "BOOL"};
static const size_t st_sizes[] = {4, 2, 2, 8, 1, 1, 2, 4, 8, 1};
#define ST_NDTYPES (sizeof st_sizes / sizeof st_sizes[0])

size_t st_dtype_size(st_dtype t) { return (unsigned)t < ST_NDTYPES ? st_sizes[t] : 0; }
const char *st_dtype_name(st_dtype t) { return (unsigned)t < ST_NDTYPES ? st_names[t] : "?"; }

static int st_dtype_parse(const char *s, st_dtype *out) {
    for (size_t i = 0; i < ST_NDTYPES; i++)
        if (strcmp(s, st_names[i]) == 0) {
            *out = (st_dtype)i;
            return 1;
        }
    return 0;
}

/* ------------------------------------------------------------------ conversions */

float st_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign; /* +-0 */
        } else {
            /* Subnormal half: renormalise so it becomes a normal float. */
            uint32_t e = 127 - 15 + 1;
            while (!(mant & 0x400u)) {
                mant <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or NaN keeping its payload */
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float st_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Byte-wise little-endian loads: independent of host endianness and alignment. */
static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* The dtype switch sits outside the loops so each loop stays simple enough to vectorise. */
static void convert_f32(const st_tensor *t, float *dst) {
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
        for (size_t i = 0; i < n; i++) {
            uint32_t b = ld32(p + 4 * i);
            memcpy(&dst[i], &b, 4);
        }
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = st_half_to_float(ld16(p + 2 * i));
        break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = st_bf16_to_float(ld16(p + 2 * i));
        break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t b = ld64(p + 8 * i);
            double d;
            memcpy(&d, &b, 8);
            dst[i] = (float)d;
        }
        break;
    default: break; /* integer dtypes are rejected by the caller */
    }
}

/* ------------------------------------------------------------------ reader */

struct st_file {
    char *path;
    void *map;
    size_t map_len;
    const uint8_t *data; /* start of the data area */
    size_t data_len;
    st_tensor *tensors; /* header order */
    size_t n;
    const st_tensor **by_name; /* sorted by name for bsearch */
    char **meta_keys, **meta_vals;
    size_t n_meta;
};

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* Tensors with bytes, ordered by begin offset (ties by end) for the overlap check. */
static int cmp_by_offset(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->data != y->data) return (const uint8_t *)x->data < (const uint8_t *)y->data ? -1 : 1;
    return (x->nbytes > y->nbytes) - (x->nbytes < y->nbytes);
}

static aac_status parse_metadata(st_file *f, json_t *md, aac_error *err) {
    if (!json_is_object(md))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: __metadata__ is not a JSON object", f->path);
    size_t cnt = json_object_size(md);
    f->meta_keys = calloc(cnt ? cnt : 1, sizeof *f->meta_keys);
    f->meta_vals = calloc(cnt ? cnt : 1, sizeof *f->meta_vals);
    if (!f->meta_keys || !f->meta_vals)
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading metadata", f->path);
    const char *key;
    json_t *val;
    json_object_foreach(md, key, val) {
        if (!json_is_string(val))
            return aac_fail(err, AAC_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                            f->path, key);
        f->meta_keys[f->n_meta] = strdup(key);
        f->meta_vals[f->n_meta] = strdup(json_string_value(val));
        f->n_meta++; /* counted before the check so st_close frees a half-copied pair */
        if (!f->meta_keys[f->n_meta - 1] || !f->meta_vals[f->n_meta - 1])
            return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading metadata", f->path);
    }
    return AAC_OK;
}

/* Validates one header entry and fills *t (t->name already set). */
static aac_status parse_entry(const st_file *f, const char *name, json_t *e, st_tensor *t,
                              aac_error *err) {
    const char *p = f->path;
    if (!json_is_object(e))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", p, name);
    json_t *jd = json_object_get(e, "dtype"), *js = json_object_get(e, "shape");
    json_t *jo = json_object_get(e, "data_offsets");
    if (!json_is_string(jd))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", p, name);
    if (!json_is_array(js))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': missing or non-array shape", p, name);
    if (!json_is_array(jo))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': missing or non-array data_offsets",
                        p, name);
    if (!st_dtype_parse(json_string_value(jd), &t->dtype))
        return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", p, name,
                        json_string_value(jd));

    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': %zu dims, at most %d supported", p,
                        name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    int64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return aac_fail(err, AAC_ERR_FORMAT,
                            "%s: tensor '%s': shape dim %zu is not a non-negative integer", p, name, i);
        int64_t v = (int64_t)json_integer_value(d);
        if (v != 0 && numel > INT64_MAX / v)
            return aac_fail(err, AAC_ERR_FORMAT, "%s: tensor '%s': shape product overflows", p, name);
        t->shape[i] = v;
        numel *= v;
    }
    t->numel = numel;

    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (json_array_size(jo) != 2 || !json_is_integer(jb) || !json_is_integer(je) ||
        json_integer_value(jb) < 0 || json_integer_value(je) < json_integer_value(jb))
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets must be two ascending non-negative integers",
                        p, name);
    uint64_t begin = (uint64_t)json_integer_value(jb), end = (uint64_t)json_integer_value(je);
    if (end > f->data_len)
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] past the data area (%zu bytes)",
                        p, name, (unsigned long long)begin, (unsigned long long)end, f->data_len);
    uint64_t esz = st_dtype_size(t->dtype);
    if ((uint64_t)numel > UINT64_MAX / esz || (uint64_t)numel * esz != end - begin)
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: tensor '%s': %llu bytes in data_offsets, but %lld elements of %s "
                        "need %llu", p, name, (unsigned long long)(end - begin), (long long)numel,
                        st_dtype_name(t->dtype), (unsigned long long)((uint64_t)numel * esz));
    t->data = f->data + begin;
    t->nbytes = (size_t)(end - begin);
    return AAC_OK;
}

static aac_status parse_header(st_file *f, const char *hdr, size_t hlen, aac_error *err) {
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return aac_fail(err, AAC_ERR_FORMAT, "%s: invalid JSON header (line %d, column %d: %s)",
                        f->path, jerr.line, jerr.column, jerr.text);
    aac_status st = AAC_OK;
    if (!json_is_object(root)) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: JSON header is not an object", f->path);
        goto done;
    }
    size_t cap = json_object_size(root);
    f->tensors = calloc(cap ? cap : 1, sizeof *f->tensors);
    f->by_name = calloc(cap ? cap : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) {
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading the header", f->path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((st = parse_metadata(f, val, err)) != AAC_OK) goto done;
            continue;
        }
        st_tensor *t = &f->tensors[f->n];
        char *name = strdup(key);
        if (!name) {
            st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory reading the header", f->path);
            goto done;
        }
        t->name = name;
        f->n++; /* counted now so st_close frees the name on failure */
        if ((st = parse_entry(f, name, val, t, err)) != AAC_OK) goto done;
        f->by_name[f->n - 1] = t;
    }

    /* Overlap check: sort the non-empty tensors by begin offset; each must start at or
     * after the previous one's end. The by_name array is reused as scratch space. */
    size_t m = 0;
    for (size_t i = 0; i < f->n; i++)
        if (f->tensors[i].nbytes) f->by_name[m++] = &f->tensors[i];
    qsort(f->by_name, m, sizeof *f->by_name, cmp_by_offset);
    for (size_t i = 1; i < m; i++) {
        const st_tensor *a = f->by_name[i - 1], *b = f->by_name[i];
        if ((const uint8_t *)b->data < (const uint8_t *)a->data + a->nbytes) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", f->path,
                          a->name, b->name);
            goto done;
        }
    }
    for (size_t i = 0; i < f->n; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->n, sizeof *f->by_name, cmp_by_name);
done:
    json_decref(root);
    return st;
}

aac_status st_open(const char *path, st_file **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "st_open: out is NULL");
    *out = NULL;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "st_open: path is NULL");
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    aac_status st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = aac_fail(err, AAC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = aac_fail(err, AAC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        goto fail;
    }
    if (sb.st_size < 8) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header "
                      "length", path, (long long)sb.st_size);
        close(fd);
        goto fail;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = aac_fail(err, AAC_ERR_IO, "%s: file too large to map", path);
        close(fd);
        goto fail;
    }
    f->map_len = (size_t)sb.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping stays valid after close */
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        st = aac_fail(err, AAC_ERR_IO, "%s: cannot mmap: %s", path, strerror(map_errno));
        goto fail;
    }
    const uint8_t *base = f->map;
    uint64_t hlen = ld64(base);
    if (hlen > ST_MAX_HEADER) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: header length %llu is absurd (limit %llu)", path,
                      (unsigned long long)hlen, (unsigned long long)ST_MAX_HEADER);
        goto fail;
    }
    if (hlen > f->map_len - 8) {
        st = aac_fail(err, AAC_ERR_FORMAT, "%s: header length %llu exceeds the file size %zu",
                      path, (unsigned long long)hlen, f->map_len);
        goto fail;
    }
    f->data = base + 8 + hlen;
    f->data_len = f->map_len - 8 - (size_t)hlen;
    if ((st = parse_header(f, (const char *)base + 8, (size_t)hlen, err)) != AAC_OK) goto fail;
    *out = f;
    return AAC_OK;
fail:
    st_close(f);
    return st;
}

void st_release_pages(const st_file *f, const void *p, size_t bytes) {
    if (!f || !f->map) return;
    const uintptr_t lo = (uintptr_t)f->map, hi = lo + f->map_len, a = (uintptr_t)p;
    if (a < lo || a + bytes > hi) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t first = (a + page - 1) & ~(page - 1), last = (a + bytes) & ~(page - 1);
    if (last > first) madvise((void *)first, last - first, MADV_DONTNEED);
}

void st_close(st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    for (size_t i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->tensors);
    free(f->by_name);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    free(f);
}

const char *st_path(const st_file *f) { return f->path; }
size_t st_count(const st_file *f) { return f->n; }
const st_tensor *st_at(const st_file *f, size_t i) { return i < f->n ? &f->tensors[i] : NULL; }

const st_tensor *st_find(const st_file *f, const char *name) {
    st_tensor key = {.name = name};
    const st_tensor *kp = &key;
    const st_tensor **hit = bsearch(&kp, f->by_name, f->n, sizeof *f->by_name, cmp_by_name);
    return hit ? *hit : NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Finds `name`, checks it is a float dtype and (if shape) has exactly that shape. */
static aac_status lookup_float(const st_file *f, const char *name, int ndim, const int64_t *shape,
                               const st_tensor **out, aac_error *err) {
    const st_tensor *t = st_find(f, name);
    if (!t) return aac_fail(err, AAC_ERR_MISSING, "%s: tensor '%s' not found", f->path, name);
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return aac_fail(err, AAC_ERR_SHAPE, "%s: tensor '%s' has dtype %s, expected a float type",
                        f->path, name, st_dtype_name(t->dtype));
    if (shape) {
        int same = ndim == t->ndim;
        for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
        if (!same) {
            char have[160], want[160];
            fmt_shape(have, sizeof have, t->ndim, t->shape);
            fmt_shape(want, sizeof want, ndim < 0 ? 0 : ndim > ST_MAX_DIMS ? ST_MAX_DIMS : ndim,
                      shape);
            return aac_fail(err, AAC_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s",
                            f->path, name, have, want);
        }
    }
    *out = t;
    return AAC_OK;
}

aac_status st_get_f32(const st_file *f, const char *name, int ndim, const int64_t *shape,
                      const float **out, float **owned, aac_error *err) {
    *out = NULL;
    *owned = NULL;
    const st_tensor *t;
    aac_status st = lookup_float(f, name, ndim, shape, &t, err);
    if (st != AAC_OK) return st;
    if (ST_HOST_LE && t->dtype == ST_F32 && ((uintptr_t)t->data & 3u) == 0) {
        *out = t->data;
        return AAC_OK;
    }
    float *buf = malloc(t->numel ? (size_t)t->numel * sizeof(float) : 1);
    if (!buf)
        return aac_fail(err, AAC_ERR_NOMEM, "%s: tensor '%s': out of memory converting to f32",
                        f->path, name);
    convert_f32(t, buf);
    *out = buf;
    *owned = buf;
    return AAC_OK;
}

aac_status st_read_f32(const st_file *f, const char *name, int ndim, const int64_t *shape,
                       float *dst, aac_error *err) {
    const st_tensor *t;
    aac_status st = lookup_float(f, name, ndim, shape, &t, err);
    if (st != AAC_OK) return st;
    convert_f32(t, dst);
    return AAC_OK;
}

/* ------------------------------------------------------------------ writer */

typedef struct st_wentry {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    void *data;
    size_t nbytes;
} st_wentry;

struct st_writer {
    st_wentry *e;
    size_t n, cap;
    char **meta_keys, **meta_vals;
    size_t n_meta, meta_cap;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_vals[i]);
    }
    free(w->e);
    free(w->meta_keys);
    free(w->meta_vals);
    free(w);
}

aac_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim,
                         const int64_t *shape, const void *data, aac_error *err) {
    if (!w || !name || !*name || strcmp(name, "__metadata__") == 0)
        return aac_fail(err, AAC_ERR_ARG, "st_writer_add: invalid writer or tensor name '%s'",
                        name ? name : "(null)");
    if ((unsigned)dtype >= ST_NDTYPES || ndim < 0 || ndim > ST_MAX_DIMS || (ndim && !shape))
        return aac_fail(err, AAC_ERR_ARG, "st_writer_add: tensor '%s': bad dtype or shape", name);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return aac_fail(err, AAC_ERR_ARG, "st_writer_add: duplicate tensor name '%s'", name);
    uint64_t numel = 1, esz = st_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && numel > (uint64_t)INT64_MAX / (uint64_t)shape[i]))
            return aac_fail(err, AAC_ERR_ARG, "st_writer_add: tensor '%s': bad shape", name);
        numel *= (uint64_t)shape[i];
    }
    if (numel > SIZE_MAX / esz)
        return aac_fail(err, AAC_ERR_ARG, "st_writer_add: tensor '%s' is too large", name);
    size_t nbytes = (size_t)(numel * esz);
    if (nbytes && !data)
        return aac_fail(err, AAC_ERR_ARG, "st_writer_add: tensor '%s': data is NULL", name);
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 16;
        st_wentry *ne = realloc(w->e, nc * sizeof *ne);
        if (!ne) return aac_fail(err, AAC_ERR_NOMEM, "st_writer_add: out of memory");
        w->e = ne;
        w->cap = nc;
    }
    st_wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->data = malloc(nbytes ? nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return aac_fail(err, AAC_ERR_NOMEM, "st_writer_add: tensor '%s': out of memory", name);
    }
    if (nbytes) memcpy(e->data, data, nbytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = nbytes;
    w->n++;
    return AAC_OK;
}

/* A repeated key replaces the earlier value. */
aac_status st_writer_set_metadata(st_writer *w, const char *key, const char *value, aac_error *err) {
    if (!w || !key || !value)
        return aac_fail(err, AAC_ERR_ARG, "st_writer_set_metadata: NULL argument");
    char *v = strdup(value);
    if (!v) return aac_fail(err, AAC_ERR_NOMEM, "st_writer_set_metadata: out of memory");
    for (size_t i = 0; i < w->n_meta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_vals[i]);
            w->meta_vals[i] = v;
            return AAC_OK;
        }
    if (w->n_meta == w->meta_cap) {
        size_t nc = w->meta_cap ? 2 * w->meta_cap : 8;
        char **nk = realloc(w->meta_keys, nc * sizeof *nk);
        if (nk) w->meta_keys = nk;
        char **nv = nk ? realloc(w->meta_vals, nc * sizeof *nv) : NULL;
        if (nv) w->meta_vals = nv;
        if (!nk || !nv) {
            free(v);
            return aac_fail(err, AAC_ERR_NOMEM, "st_writer_set_metadata: out of memory");
        }
        w->meta_cap = nc;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return aac_fail(err, AAC_ERR_NOMEM, "st_writer_set_metadata: out of memory");
    }
    w->meta_keys[w->n_meta] = k;
    w->meta_vals[w->n_meta] = v;
    w->n_meta++;
    return AAC_OK;
}

/* The JSON header in insertion order (jansson keeps object insertion order). */
static char *build_header(const st_writer *w) {
    json_t *root = json_object();
    int bad = !root;
    if (!bad && w->n_meta) {
        json_t *md = json_object();
        bad = json_object_set_new(root, "__metadata__", md) != 0;
        for (size_t i = 0; !bad && i < w->n_meta; i++)
            bad = json_object_set_new(md, w->meta_keys[i], json_string(w->meta_vals[i])) != 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; !bad && i < w->n; i++) {
        const st_wentry *e = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; shape && d < e->ndim; d++)
            if (json_array_append_new(shape, json_integer((json_int_t)e->shape[d])) != 0) {
                json_decref(shape);
                shape = NULL;
            }
        json_t *obj = json_pack("{s:s, s:o?, s:[I,I]}", "dtype", st_dtype_name(e->dtype), "shape",
                                shape, "data_offsets", (json_int_t)off,
                                (json_int_t)(off + e->nbytes));
        bad = !shape || !obj || json_object_set_new(root, e->name, obj) != 0;
        off += e->nbytes;
    }
    char *s = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

aac_status st_writer_save(const st_writer *w, const char *path, aac_error *err) {
    if (!w || !path) return aac_fail(err, AAC_ERR_ARG, "st_writer_save: NULL argument");
    char *hdr = build_header(w);
    if (!hdr) return aac_fail(err, AAC_ERR_NOMEM, "%s: cannot build the JSON header", path);
    size_t hlen = strlen(hdr);
    size_t pad = (8 - (8 + hlen) % 8) % 8; /* data area starts 8-aligned: F32 maps aligned */
    uint64_t total = hlen + pad;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(total >> (8 * i));

    char tmp[4200];
    aac_status st = fs_tmp_path(path, tmp, sizeof tmp, err);
    if (st) {
        free(hdr);
        return st;
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = aac_fail(err, AAC_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        fs_discard(tmp);
        goto out;
    }
    static const char spaces[] = "       "; /* pad is at most 7 */
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(hdr, 1, hlen, fp) == hlen &&
             fwrite(spaces, 1, pad, fp) == pad;
    for (size_t i = 0; ok && i < w->n; i++)
        ok = fwrite(w->e[i].data, 1, w->e[i].nbytes, fp) == w->e[i].nbytes;
    ok = ok && fflush(fp) == 0;
    int werr = errno;
    if (fclose(fp) != 0 && ok) {
        ok = 0;
        werr = errno;
    }
    if (!ok) {
        st = aac_fail(err, AAC_ERR_IO, "%s: write to %s failed: %s", path, tmp, strerror(werr));
        fs_discard(tmp);
        goto out;
    }
    st = fs_commit(tmp, path, err);
out:
    free(hdr);
    return st;
}
