/* torch_archive.c - PyTorch zip checkpoints (torch.save, torch.jit.save) to flat tensors.
 *
 * Steps: open the zip (zip_reader validates every entry), find "<prefix>/data.pkl", decode it
 * with the restricted unpickler, walk the value tree to name every tensor and scalar leaf,
 * then read each referenced storage member once and copy every tensor view out of it in
 * row-major order. TorchScript code/ and constants.pkl are never read: the module attributes
 * in data.pkl carry all parameters and buffers; constants.pkl only holds literals of the code. */
#define _POSIX_C_SOURCE 200809L
#include "torch_archive.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "unpickle.h"
#include "zip_reader.h"

#define TA_DEFAULT_DEPTH 256
#define TA_MAX_DEPTH 4096
#define TA_DEFAULT_OBJECTS ((size_t)10 * 1000 * 1000)
#define TA_DEFAULT_BYTES ((size_t)64 << 30)
#define TA_MAX_PICKLE ((size_t)1 << 30) /* data.pkl of a multi-GB model is a few MB */
#define TA_MAX_NAME 4096
/* Shared references can make a small pickle name the same value millions of times: the
 * visit count (max_objects) bounds the work, this bounds the memory of the names and refs
 * (a real checkpoint needs a few MB). */
#define TA_MAX_NAME_BYTES ((size_t)64 << 20)

struct ta_archive {
    char *path;
    const char *kind;
    ta_tensor *tensors; /* pickle order */
    unsigned char *owns; /* tensors[i].data is freed by ta_close (shared views are not) */
    size_t n;
    size_t *by_name;
    char **snames, **svals; /* scalars, sorted by name */
    size_t n_scalars;
};

/* ------------------------------------------------------------------ tree walk */

typedef struct ref {
    char *name;
    const up_value *v; /* UP_TENSOR, or the scalar */
} ref;

typedef struct walker {
    const char *label;
    aac_error *err;
    size_t max_depth, max_visits, visits, name_bytes;
    char name[TA_MAX_NAME];
    size_t nlen;
    ref *tensors, *scalars;
    size_t nt, ct, ns, cs;
} walker;

/* The current name for a message: at most 80 bytes of it. */
#define NAME_EXCERPT(W) (int)((W)->nlen > 80 ? 80 : (W)->nlen), (W)->name, ((W)->nlen > 80 ? "..." : "")

static aac_status add_ref(walker *W, ref **arr, size_t *n, size_t *cap, const up_value *v) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        ref *na = realloc(*arr, nc * sizeof *na);
        if (!na) return aac_fail(W->err, AAC_ERR_NOMEM, "%s: out of memory", W->label);
        *arr = na;
        *cap = nc;
    }
    W->name_bytes += W->nlen + 1 + sizeof(ref) + 16; /* + table entry and malloc overhead */
    if (W->name_bytes > TA_MAX_NAME_BYTES)
        return aac_fail(W->err, AAC_ERR_FORMAT,
                        "%s: names of the values take more than %zu bytes (shared references?)",
                        W->label, TA_MAX_NAME_BYTES);
    char *s = malloc(W->nlen + 1);
    if (!s) return aac_fail(W->err, AAC_ERR_NOMEM, "%s: out of memory", W->label);
    memcpy(s, W->name, W->nlen);
    s[W->nlen] = '\0';
    (*arr)[*n].name = s;
    (*arr)[*n].v = v;
    (*n)++;
    return AAC_OK;
}

/* Appends ".seg" (or "seg" at the root); returns the previous length for restoring. */
static aac_status name_push(walker *W, const char *seg, size_t len, size_t *saved) {
    *saved = W->nlen;
    size_t dot = W->nlen ? 1 : 0;
    if (memchr(seg, '\0', len))
        return aac_fail(W->err, AAC_ERR_FORMAT, "%s: a key under '%.*s%s' contains a NUL byte",
                        W->label, NAME_EXCERPT(W));
    if (W->nlen + dot + len >= TA_MAX_NAME)
        return aac_fail(W->err, AAC_ERR_FORMAT, "%s: a name under '%.*s%s' is longer than %d bytes",
                        W->label, NAME_EXCERPT(W), TA_MAX_NAME);
    if (dot) W->name[W->nlen++] = '.';
    memcpy(W->name + W->nlen, seg, len);
    W->nlen += len;
    return AAC_OK;
}

static aac_status walk(walker *W, const up_value *v, size_t depth);

static aac_status walk_child(walker *W, const char *seg, size_t len, const up_value *v,
                             size_t depth) {
    size_t saved;
    aac_status st = name_push(W, seg, len, &saved);
    if (st == AAC_OK) st = walk(W, v, depth + 1);
    W->nlen = saved;
    return st;
}

static aac_status walk_map(walker *W, const up_value *m, size_t depth, int is_module) {
    for (size_t i = 0; i < m->u.map.n; i++) {
        const up_value *k = m->u.map.keys[i];
        char buf[32];
        const char *seg;
        size_t len;
        if (k->kind == UP_STR) {
            seg = k->u.s.ptr;
            len = k->u.s.len;
            /* nn.Module's training flag is state of the Python object, not of the model. */
            if (is_module && strcmp(seg, "training") == 0) continue;
        } else if (k->kind == UP_INT) {
            len = (size_t)snprintf(buf, sizeof buf, "%lld", (long long)k->u.i);
            seg = buf;
        } else if (k->kind == UP_BOOL) {
            len = (size_t)snprintf(buf, sizeof buf, "%s", k->u.b ? "True" : "False");
            seg = buf;
        } else {
            return aac_fail(W->err, AAC_ERR_UNSUPPORTED,
                            "%s: a dict under '%.*s%s' has a %s key (only str and int keys are "
                            "supported)", W->label, NAME_EXCERPT(W),
                            up_kind_name(k->kind));
        }
        aac_status st = walk_child(W, seg, len, m->u.map.vals[i], depth);
        if (st != AAC_OK) return st;
    }
    return AAC_OK;
}

static aac_status walk(walker *W, const up_value *v, size_t depth) {
    if (depth > W->max_depth)
        return aac_fail(W->err, AAC_ERR_FORMAT,
                        "%s: '%.*s%s' is nested deeper than %zu (depth limit; cyclic reference?)",
                        W->label, NAME_EXCERPT(W), W->max_depth);
    if (++W->visits > W->max_visits)
        return aac_fail(W->err, AAC_ERR_FORMAT,
                        "%s: more than %zu values reachable (object limit; shared references?)",
                        W->label, W->max_visits);
    switch (v->kind) {
    case UP_TENSOR: return add_ref(W, &W->tensors, &W->nt, &W->ct, v);
    case UP_BOOL:
    case UP_INT:
    case UP_FLOAT:
    case UP_STR: return add_ref(W, &W->scalars, &W->ns, &W->cs, v);
    case UP_DICT:
    case UP_ODICT: return walk_map(W, v, depth, 0);
    case UP_OBJECT: return v->u.obj.attrs ? walk_map(W, v->u.obj.attrs, depth, 1) : AAC_OK;
    case UP_TUPLE:
    case UP_LIST:
        for (size_t i = 0; i < v->u.seq.n; i++) {
            char buf[32];
            size_t len = (size_t)snprintf(buf, sizeof buf, "%zu", i);
            aac_status st = walk_child(W, buf, len, v->u.seq.items[i], depth);
            if (st != AAC_OK) return st;
        }
        return AAC_OK;
    default: return AAC_OK; /* None, bytes, bare storages and globals carry no weights */
    }
}

/* ------------------------------------------------------------------ scalars */

static void fmt_scalar(const up_value *v, char *buf, size_t cap) {
    switch (v->kind) {
    case UP_BOOL: snprintf(buf, cap, "%s", v->u.b ? "true" : "false"); break;
    case UP_INT: snprintf(buf, cap, "%lld", (long long)v->u.i); break;
    case UP_FLOAT:
        if (isnan(v->u.f)) snprintf(buf, cap, "nan");
        else if (isinf(v->u.f)) snprintf(buf, cap, "%sinf", v->u.f < 0 ? "-" : "");
        else
            /* Shortest text that reads back to the same double, like Python's repr. */
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(buf, cap, "%.*g", prec, v->u.f);
                if (strtod(buf, NULL) == v->u.f) break;
            }
        break;
    default: buf[0] = '\0'; break;
    }
}

/* ------------------------------------------------------------------ materialisation */

/* Copies the (validated) view t out of storage `src` in row-major order. The innermost
 * dimension is copied as one run when its stride is 1. */
static void gather(uint8_t *dst, const uint8_t *src, const up_tensor *t, size_t esz) {
    if (t->numel == 0) return;
    int nd = t->ndim, outer = nd > 0 ? nd - 1 : 0;
    size_t inner = nd > 0 ? (size_t)t->size[nd - 1] : 1;
    int64_t istride = nd > 0 ? t->stride[nd - 1] : 0;
    int64_t idx[ST_MAX_DIMS] = {0};
    int64_t base = t->offset;
    for (;;) {
        const uint8_t *s = src + (size_t)base * esz;
        if (istride == 1 || inner == 1) {
            memcpy(dst, s, inner * esz);
            dst += inner * esz;
        } else {
            for (size_t j = 0; j < inner; j++, dst += esz)
                memcpy(dst, s + (size_t)istride * j * esz, esz);
        }
        int d = outer - 1;
        for (; d >= 0; d--) {
            if (idx[d] + 1 < t->size[d]) {
                idx[d]++;
                base += t->stride[d];
                break;
            }
            base -= t->stride[d] * (t->size[d] - 1); /* validated: no overflow */
            idx[d] = 0;
        }
        if (d < 0) return;
    }
}

static int tensor_is_whole_storage(const up_tensor *t) {
    if (t->offset != 0 || t->numel != t->storage->u.stg.numel) return 0;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->size[d] != 1 && t->stride[d] != expect) return 0;
        expect *= t->size[d];
    }
    return 1;
}

/* Merge sort of an index array with a context (qsort has none in C11, and a file-scope
 * context variable would be global mutable state). */
typedef int (*idx_cmp)(size_t x, size_t y, const void *ctx);
static void msort(size_t *idx, size_t *tmp, size_t n, idx_cmp cmp, const void *ctx) {
    if (n < 2) return;
    size_t h = n / 2;
    msort(idx, tmp, h, cmp, ctx);
    msort(idx + h, tmp, n - h, cmp, ctx);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = cmp(idx[i], idx[j], ctx) <= 0 ? idx[i++] : idx[j++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* Tensor references ordered by storage key, then by tensor value, so each storage member is
 * read once and a tensor referenced under several names is copied once. */
static int cmp_by_storage(size_t a, size_t b, const void *ctx) {
    const ref *r = ctx;
    const up_value *x = r[a].v, *y = r[b].v;
    int c = strcmp(x->u.t.storage->u.stg.key, y->u.t.storage->u.stg.key);
    if (c) return c;
    if (x != y) return (uintptr_t)x < (uintptr_t)y ? -1 : 1;
    return (a > b) - (a < b);
}

static int cmp_by_name(size_t a, size_t b, const void *ctx) {
    const ta_tensor *t = ctx;
    return strcmp(t[a].name, t[b].name);
}

typedef struct loader {
    const char *path, *prefix;
    const zr_archive *z;
    aac_error *err;
    size_t max_bytes;
} loader;

/* Reads the member of one storage and fills every tensor in refs[order[lo..hi)]. */
static aac_status load_storage(const loader *L, ta_archive *a, const ref *refs,
                               const size_t *order, size_t lo, size_t hi) {
    const up_storage *s = &refs[order[lo]].v->u.t.storage->u.stg;
    size_t esz = st_dtype_size(s->dtype);
    for (size_t k = lo + 1; k < hi; k++) {
        const up_storage *o = &refs[order[k]].v->u.t.storage->u.stg;
        if (o->dtype != s->dtype || o->numel != s->numel)
            return aac_fail(L->err, AAC_ERR_UNSUPPORTED,
                            "%s: storage '%s' is declared twice with different types or sizes "
                            "(%s x %lld, %s x %lld)", L->path, s->key, st_dtype_name(s->dtype),
                            (long long)s->numel, st_dtype_name(o->dtype), (long long)o->numel);
    }
    char member[512];
    snprintf(member, sizeof member, "%s/data/%s", L->prefix, s->key);
    int64_t mi = zr_find(L->z, member);
    if (mi < 0)
        return aac_fail(L->err, AAC_ERR_FORMAT, "%s: storage member '%s' (tensor '%s') is missing",
                        L->path, member, a->tensors[order[lo]].name);
    uint64_t need = (uint64_t)s->numel * esz; /* overflow excluded by the unpickler */
    uint64_t have = zr_size(L->z, (size_t)mi);
    if (have < need)
        return aac_fail(L->err, AAC_ERR_FORMAT,
                        "%s: storage '%s' is shorter than its tensor '%s': %llu bytes, but %lld "
                        "elements of %s need %llu", L->path, member, a->tensors[order[lo]].name,
                        (unsigned long long)have, (long long)s->numel, st_dtype_name(s->dtype),
                        (unsigned long long)need);
    if (have > need)
        return aac_fail(L->err, AAC_ERR_FORMAT,
                        "%s: storage '%s' has %llu bytes, but its %lld elements of %s take %llu",
                        L->path, member, (unsigned long long)have, (long long)s->numel,
                        st_dtype_name(s->dtype), (unsigned long long)need);
    if (need > L->max_bytes)
        return aac_fail(L->err, AAC_ERR_FORMAT,
                        "%s: storage '%s' holds %llu bytes, more than the limit of %zu", L->path,
                        member, (unsigned long long)need, L->max_bytes);
    void *buf;
    size_t len;
    aac_status st = zr_read(L->z, (size_t)mi, L->max_bytes, &buf, &len, L->err);
    if (st != AAC_OK) return st;

    int single = refs[order[lo]].v == refs[order[hi - 1]].v; /* one tensor value only */
    const up_value *prev = NULL;
    size_t first = 0;
    for (size_t k = lo; k < hi && st == AAC_OK; k++) {
        size_t i = order[k];
        const up_value *tv = refs[i].v;
        ta_tensor *t = &a->tensors[i];
        if (tv == prev) { /* same tensor under another name: share the copy */
            t->data = a->tensors[first].data;
            continue;
        }
        prev = tv;
        first = i;
        if (single && tensor_is_whole_storage(&tv->u.t)) {
            t->data = buf; /* hand the member buffer over instead of copying it */
            buf = NULL;
        } else {
            void *d = malloc(t->nbytes ? t->nbytes : 1);
            if (!d) {
                st = aac_fail(L->err, AAC_ERR_NOMEM, "%s: out of memory for tensor '%s' (%zu bytes)",
                              L->path, t->name, t->nbytes);
                break;
            }
            gather(d, buf, &tv->u.t, esz);
            t->data = d;
        }
        a->owns[i] = 1;
    }
    free(buf);
    return st;
}

static void sort_scalars(char **names, char **vals, char **tn, char **tv, size_t n) {
    if (n < 2) return;
    size_t h = n / 2;
    sort_scalars(names, vals, tn, tv, h);
    sort_scalars(names + h, vals + h, tn, tv, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h || j < n) {
        size_t s = (j >= n || (i < h && strcmp(names[i], names[j]) <= 0)) ? i++ : j++;
        tn[k] = names[s];
        tv[k++] = vals[s];
    }
    memcpy(names, tn, n * sizeof *names);
    memcpy(vals, tv, n * sizeof *vals);
}

/* ------------------------------------------------------------------ open */

static aac_status find_prefix(const zr_archive *z, const char *path, char *prefix, size_t cap,
                              aac_error *err) {
    size_t found = 0;
    for (size_t i = 0; i < zr_count(z); i++) {
        const char *nm = zr_name(z, i), *slash = strchr(nm, '/');
        if (slash && slash != nm && strcmp(slash, "/data.pkl") == 0) {
            size_t len = (size_t)(slash - nm);
            if (found && (strlen(prefix) != len || strncmp(prefix, nm, len) != 0))
                return aac_fail(err, AAC_ERR_FORMAT,
                                "%s: several top-level folders hold a data.pkl ('%s', '%.*s')",
                                path, prefix, (int)(len > 100 ? 100 : len), nm);
            if (len + 1 > cap)
                return aac_fail(err, AAC_ERR_FORMAT, "%s: archive folder name is too long", path);
            memcpy(prefix, nm, len);
            prefix[len] = '\0';
            found = 1;
        }
    }
    if (!found)
        return aac_fail(err, AAC_ERR_FORMAT,
                        "%s: no <folder>/data.pkl member: not a PyTorch zip checkpoint", path);
    return AAC_OK;
}

static int has_member_prefix(const zr_archive *z, const char *start) {
    size_t n = strlen(start);
    for (size_t i = 0; i < zr_count(z); i++)
        if (strncmp(zr_name(z, i), start, n) == 0) return 1;
    return 0;
}

/* Byte order marker of newer writers; absent means little-endian. */
static aac_status check_byteorder(const zr_archive *z, const char *path, const char *prefix,
                                  aac_error *err) {
    char member[300];
    snprintf(member, sizeof member, "%s/byteorder", prefix);
    int64_t mi = zr_find(z, member);
    if (mi < 0) return AAC_OK;
    void *buf;
    size_t len;
    aac_status st = zr_read(z, (size_t)mi, 64, &buf, &len, err);
    if (st != AAC_OK) return st;
    int little = len >= 6 && memcmp(buf, "little", 6) == 0;
    free(buf);
    if (!little)
        return aac_fail(err, AAC_ERR_UNSUPPORTED, "%s: storages are not little-endian ('%s')",
                        path, member);
    return AAC_OK;
}

static aac_status build(ta_archive *a, const zr_archive *z, const char *prefix,
                        const ta_limits *lim, aac_error *err) {
    const char *path = a->path;
    char member[300], label[4200];
    snprintf(member, sizeof member, "%s/data.pkl", prefix);
    snprintf(label, sizeof label, "%s: data.pkl", path);
    int64_t mi = zr_find(z, member);
    if (mi < 0) return aac_fail(err, AAC_ERR_FORMAT, "%s: no '%s' member", path, member);
    void *pkl;
    size_t plen;
    size_t pcap = lim->max_total_bytes < TA_MAX_PICKLE ? lim->max_total_bytes : TA_MAX_PICKLE;
    aac_status st = zr_read(z, (size_t)mi, pcap, &pkl, &plen, err);
    if (st != AAC_OK) return st;
    up_limits ul = {.max_depth = lim->max_depth, .max_objects = lim->max_objects};
    up_doc *doc = NULL;
    st = up_load(pkl, plen, label, &ul, &doc, err);
    free(pkl); /* strings were copied into the document */
    if (st != AAC_OK) return st;

    walker W = {.label = label, .err = err, .max_depth = lim->max_depth,
                .max_visits = lim->max_objects};
    size_t *order = NULL, *tmp = NULL;
    st = walk(&W, up_root(doc), 0);
    if (st != AAC_OK) goto done;

    /* Tensor table in pickle order; the bytes come later, storage by storage. */
    a->tensors = calloc(W.nt ? W.nt : 1, sizeof *a->tensors);
    a->owns = calloc(W.nt ? W.nt : 1, 1);
    a->by_name = calloc(W.nt ? W.nt : 1, sizeof *a->by_name);
    order = calloc(W.nt ? W.nt : 1, sizeof *order);
    tmp = calloc(W.nt ? W.nt : 1, sizeof *tmp);
    if (!a->tensors || !a->owns || !a->by_name || !order || !tmp) {
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < W.nt; i++) {
        const up_tensor *ut = &W.tensors[i].v->u.t;
        ta_tensor *t = &a->tensors[i];
        t->name = W.tensors[i].name;
        W.tensors[i].name = NULL; /* now owned by the archive */
        a->n++;
        t->dtype = ut->storage->u.stg.dtype;
        t->ndim = ut->ndim;
        memcpy(t->shape, ut->size, sizeof t->shape);
        t->numel = ut->numel;
        t->nbytes = (size_t)ut->numel * st_dtype_size(t->dtype);
        a->by_name[i] = order[i] = i;
    }
    msort(a->by_name, tmp, a->n, cmp_by_name, a->tensors);
    for (size_t i = 1; i < a->n; i++)
        if (strcmp(a->tensors[a->by_name[i - 1]].name, a->tensors[a->by_name[i]].name) == 0) {
            st = aac_fail(err, AAC_ERR_FORMAT, "%s: tensor name '%s' occurs twice", label,
                          a->tensors[a->by_name[i]].name);
            goto done;
        }

    msort(order, tmp, a->n, cmp_by_storage, W.tensors);
    /* Budget: each distinct tensor is materialised once. */
    uint64_t total = 0;
    for (size_t k = 0; k < a->n; k++)
        if (k == 0 || W.tensors[order[k]].v != W.tensors[order[k - 1]].v) {
            total += a->tensors[order[k]].nbytes;
            if (total > lim->max_total_bytes) {
                st = aac_fail(err, AAC_ERR_FORMAT,
                              "%s: tensors need more than the limit of %zu bytes", path,
                              lim->max_total_bytes);
                goto done;
            }
        }
    loader L = {.path = path, .prefix = prefix, .z = z, .err = err,
                .max_bytes = lim->max_total_bytes};
    for (size_t lo = 0; lo < a->n && st == AAC_OK;) {
        const char *key = W.tensors[order[lo]].v->u.t.storage->u.stg.key;
        size_t hi = lo + 1;
        while (hi < a->n && strcmp(W.tensors[order[hi]].v->u.t.storage->u.stg.key, key) == 0)
            hi++;
        st = load_storage(&L, a, W.tensors, order, lo, hi);
        lo = hi;
    }
    if (st != AAC_OK) goto done;

    /* Scalars: text form, sorted for lookup; duplicates are as suspicious as for tensors. */
    a->snames = calloc(W.ns ? W.ns : 1, sizeof *a->snames);
    a->svals = calloc(W.ns ? W.ns : 1, sizeof *a->svals);
    char **tn = calloc(W.ns ? W.ns : 1, sizeof *tn), **tv = calloc(W.ns ? W.ns : 1, sizeof *tv);
    if (!a->snames || !a->svals || !tn || !tv) {
        free(tn);
        free(tv);
        st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < W.ns && st == AAC_OK; i++) {
        const up_value *v = W.scalars[i].v;
        char buf[64];
        fmt_scalar(v, buf, sizeof buf);
        char *val = strdup(v->kind == UP_STR ? v->u.s.ptr : buf);
        if (!val) {
            st = aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        a->snames[i] = W.scalars[i].name;
        W.scalars[i].name = NULL;
        a->svals[i] = val;
        a->n_scalars++;
    }
    if (st == AAC_OK) {
        sort_scalars(a->snames, a->svals, tn, tv, a->n_scalars);
        for (size_t i = 1; i < a->n_scalars; i++)
            if (strcmp(a->snames[i - 1], a->snames[i]) == 0) {
                st = aac_fail(err, AAC_ERR_FORMAT, "%s: value name '%s' occurs twice", label,
                              a->snames[i]);
                break;
            }
    }
    free(tn);
    free(tv);
done:
    for (size_t i = 0; i < W.nt; i++) free(W.tensors[i].name);
    for (size_t i = 0; i < W.ns; i++) free(W.scalars[i].name);
    free(W.tensors);
    free(W.scalars);
    free(order);
    free(tmp);
    up_free(doc);
    return st;
}

aac_status ta_open(const char *path, const ta_limits *limits, ta_archive **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "ta_open: out is NULL");
    *out = NULL;
    if (!path) return aac_fail(err, AAC_ERR_ARG, "ta_open: path is NULL");
    ta_limits lim = {TA_DEFAULT_DEPTH, TA_DEFAULT_OBJECTS, TA_DEFAULT_BYTES};
    if (limits) {
        if (limits->max_depth) lim.max_depth = limits->max_depth;
        if (limits->max_objects) lim.max_objects = limits->max_objects;
        if (limits->max_total_bytes) lim.max_total_bytes = limits->max_total_bytes;
    }
    /* The name walk recurses once per level: keep it far from the thread's stack size. */
    if (lim.max_depth > TA_MAX_DEPTH) lim.max_depth = TA_MAX_DEPTH;

    zr_archive *z = NULL;
    aac_status st = zr_open(path, lim.max_total_bytes, &z, err);
    if (st == AAC_ERR_FORMAT) {
        /* The pre-1.6 torch.save format is a bare pickle stream, not a zip. */
        FILE *f = fopen(path, "rb");
        int c0 = f ? fgetc(f) : EOF, c1 = f ? fgetc(f) : EOF;
        if (f) fclose(f);
        if (c0 == 0x80 && c1 >= 2 && c1 <= 5)
            return aac_fail(err, AAC_ERR_UNSUPPORTED,
                            "%s: legacy (pre-1.6, non-zip) torch.save format is not supported; "
                            "re-save it with a current PyTorch", path);
    }
    if (st != AAC_OK) return st;

    ta_archive *a = calloc(1, sizeof *a);
    if (!a || !(a->path = strdup(path))) {
        free(a);
        zr_close(z);
        return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", path);
    }
    char prefix[256], probe[300];
    st = find_prefix(z, path, prefix, sizeof prefix, err);
    if (st == AAC_OK) {
        snprintf(probe, sizeof probe, "%s/code/", prefix);
        int ts = has_member_prefix(z, probe);
        snprintf(probe, sizeof probe, "%s/constants.pkl", prefix);
        a->kind = ts || zr_find(z, probe) >= 0 ? "torchscript" : "torch.save";
        st = check_byteorder(z, path, prefix, err);
    }
    if (st == AAC_OK) st = build(a, z, prefix, &lim, err);
    zr_close(z);
    if (st != AAC_OK) {
        ta_close(a);
        return st;
    }
    *out = a;
    return AAC_OK;
}

void ta_close(ta_archive *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) {
        if (a->owns && a->owns[i]) free((void *)a->tensors[i].data);
        free((char *)a->tensors[i].name);
    }
    for (size_t i = 0; i < a->n_scalars; i++) {
        free(a->snames[i]);
        free(a->svals[i]);
    }
    free(a->snames);
    free(a->svals);
    free(a->tensors);
    free(a->owns);
    free(a->by_name);
    free(a->path);
    free(a);
}

const char *ta_path(const ta_archive *a) { return a->path; }
const char *ta_kind(const ta_archive *a) { return a->kind; }
size_t ta_count(const ta_archive *a) { return a->n; }
const ta_tensor *ta_at(const ta_archive *a, size_t i) { return i < a->n ? &a->tensors[i] : NULL; }

const ta_tensor *ta_find(const ta_archive *a, const char *name) {
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->tensors[a->by_name[mid]].name, name);
        if (c == 0) return &a->tensors[a->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *ta_scalar(const ta_archive *a, const char *name) {
    size_t lo = 0, hi = a->n_scalars;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a->snames[mid], name);
        if (c == 0) return a->svals[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}
