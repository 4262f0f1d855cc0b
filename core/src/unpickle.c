/* unpickle.c - restricted pickle interpreter: decodes, never executes.
 *
 * The machine follows CPython's Unpickler: a value stack, a mark stack (each MARK starts a new
 * frame; opcodes only see the values above the top mark, like CPython's metastack) and a memo
 * (a small open-addressing hash, so a hostile LONG_BINPUT index costs nothing). Every value
 * is appended to one arena owned by the document. */
#define _POSIX_C_SOURCE 200809L
#include "unpickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

enum { G_ODICT = 1, G_REBUILD_V2, G_REBUILD_PARAM, G_REBUILD_PARAM_STATE, G_STORAGE, G_CLASS };

struct up_doc {
    up_value **all; /* arena: every value created */
    size_t n_all, cap_all;
    up_value *root;
};

typedef struct up_parser {
    const uint8_t *p;
    size_t len, pos, op; /* op: offset of the opcode being executed */
    const char *label;
    aac_error *err;
    size_t max_depth, max_objects;
    up_doc *doc;
    up_value **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, markcap;
    uint32_t *mkeys; /* memo: open addressing, mvals[i] == NULL means empty */
    up_value **mvals;
    size_t mcap, mcount;
} up_parser;

const char *up_kind_name(up_kind k) {
    static const char *const names[] = {"None",   "bool",   "int",   "float",  "str",
                                        "bytes",  "tuple",  "list",  "dict",   "OrderedDict",
                                        "tensor", "object", "storage", "global"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* Every failure names the label (file and member), the problem and the opcode's offset. */
static aac_status fail(up_parser *P, aac_status code, const char *fmt, ...) AAC_PRINTF(3, 4);
static aac_status fail(up_parser *P, aac_status code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return aac_fail(P->err, code, "%s: %s (offset %zu)", P->label, msg, P->op);
}

/* Names taken from the input go into messages with control bytes replaced and a length cap. */
static const char *printable(const char *s, size_t n, char *buf, size_t cap) {
    size_t k = 0;
    for (; k < n && k + 4 < cap; k++) {
        unsigned char c = (unsigned char)s[k];
        buf[k] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    if (k < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ values */

static up_value *new_value(up_parser *P, up_kind kind) {
    up_doc *d = P->doc;
    if (d->n_all >= P->max_objects) {
        fail(P, AAC_ERR_FORMAT, "more than %zu objects (object limit)", P->max_objects);
        return NULL;
    }
    if (d->n_all == d->cap_all) {
        size_t nc = d->cap_all ? d->cap_all * 2 : 256;
        up_value **na = realloc(d->all, nc * sizeof *na);
        if (!na) {
            fail(P, AAC_ERR_NOMEM, "out of memory");
            return NULL;
        }
        d->all = na;
        d->cap_all = nc;
    }
    up_value *v = calloc(1, sizeof *v);
    if (!v) {
        fail(P, AAC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    v->kind = kind;
    if (kind == UP_TUPLE || kind == UP_LIST || kind == UP_DICT || kind == UP_ODICT) v->depth = 1;
    d->all[d->n_all++] = v;
    return v;
}

static void free_value(up_value *v) {
    switch (v->kind) {
    case UP_STR:
    case UP_BYTES: free(v->u.s.ptr); break;
    case UP_TUPLE:
    case UP_LIST: free(v->u.seq.items); break;
    case UP_DICT:
    case UP_ODICT:
        free(v->u.map.keys);
        free(v->u.map.vals);
        break;
    case UP_GLOBAL: free((char *)v->u.g.name); break;
    default: break;
    }
    free(v);
}

/* Records that `child` now sits inside `parent`; fails past the depth limit. */
static aac_status nest(up_parser *P, up_value *parent, const up_value *child) {
    uint32_t d = child->depth + 1;
    if (d > parent->depth) parent->depth = d;
    if (parent->depth > P->max_depth)
        return fail(P, AAC_ERR_FORMAT, "containers nested deeper than %zu (depth limit)",
                    P->max_depth);
    return AAC_OK;
}

static aac_status seq_push(up_parser *P, up_value *seq, up_value *item) {
    if (seq->u.seq.n == seq->u.seq.cap) {
        size_t nc = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
        up_value **ni = realloc(seq->u.seq.items, nc * sizeof *ni);
        if (!ni) return fail(P, AAC_ERR_NOMEM, "out of memory");
        seq->u.seq.items = ni;
        seq->u.seq.cap = nc;
    }
    seq->u.seq.items[seq->u.seq.n++] = item;
    return nest(P, seq, item);
}

/* Keys are appended without de-duplication (a real pickler never repeats one); the tree's
 * consumer rejects duplicate flattened names. */
static aac_status map_set(up_parser *P, up_value *map, up_value *key, up_value *val) {
    if (map->u.map.n == map->u.map.cap) {
        size_t nc = map->u.map.cap ? map->u.map.cap * 2 : 4;
        up_value **nk = realloc(map->u.map.keys, nc * sizeof *nk);
        if (!nk) return fail(P, AAC_ERR_NOMEM, "out of memory");
        map->u.map.keys = nk;
        up_value **nv = realloc(map->u.map.vals, nc * sizeof *nv);
        if (!nv) return fail(P, AAC_ERR_NOMEM, "out of memory");
        map->u.map.vals = nv;
        map->u.map.cap = nc;
    }
    map->u.map.keys[map->u.map.n] = key;
    map->u.map.vals[map->u.map.n] = val;
    map->u.map.n++;
    aac_status st = nest(P, map, key);
    return st != AAC_OK ? st : nest(P, map, val);
}

/* ------------------------------------------------------------------ stack, marks, memo */

static aac_status push(up_parser *P, up_value *v) {
    if (!v) return P->err ? P->err->code : AAC_ERR_NOMEM;
    if (P->sp == P->scap) {
        if (P->sp >= P->max_objects)
            return fail(P, AAC_ERR_FORMAT, "stack deeper than %zu entries (object limit)",
                        P->max_objects);
        size_t nc = P->scap ? P->scap * 2 : 64;
        up_value **ns = realloc(P->stack, nc * sizeof *ns);
        if (!ns) return fail(P, AAC_ERR_NOMEM, "out of memory");
        P->stack = ns;
        P->scap = nc;
    }
    P->stack[P->sp++] = v;
    return AAC_OK;
}

/* Values in the current frame (above the top mark). */
static size_t frame_base(const up_parser *P) { return P->nmarks ? P->marks[P->nmarks - 1] : 0; }

static aac_status need_stack(up_parser *P, size_t k, const char *opname) {
    if (P->sp - frame_base(P) < k)
        return fail(P, AAC_ERR_FORMAT, "%s needs %zu stack value(s), the frame has %zu", opname, k,
                    P->sp - frame_base(P));
    return AAC_OK;
}

static aac_status pop_mark(up_parser *P, const char *opname, size_t *base) {
    if (!P->nmarks) return fail(P, AAC_ERR_FORMAT, "%s without a MARK", opname);
    *base = P->marks[--P->nmarks];
    return AAC_OK;
}

static size_t memo_slot(const up_parser *P, uint32_t key) {
    size_t h = (size_t)(key * 2654435761u) & (P->mcap - 1);
    while (P->mvals[h] && P->mkeys[h] != key) h = (h + 1) & (P->mcap - 1);
    return h;
}

static aac_status memo_put(up_parser *P, uint64_t key64, up_value *v) {
    if (key64 > UINT32_MAX) return fail(P, AAC_ERR_FORMAT, "memo index %llu too large",
                                        (unsigned long long)key64);
    uint32_t key = (uint32_t)key64;
    if (2 * (P->mcount + 1) > P->mcap) {
        if (P->mcount >= P->max_objects)
            return fail(P, AAC_ERR_FORMAT, "more than %zu memo entries (object limit)",
                        P->max_objects);
        size_t oc = P->mcap, nc = oc ? oc * 2 : 256;
        uint32_t *ok = P->mkeys;
        up_value **ov = P->mvals;
        P->mkeys = calloc(nc, sizeof *P->mkeys);
        P->mvals = calloc(nc, sizeof *P->mvals);
        if (!P->mkeys || !P->mvals) {
            free(P->mkeys);
            free(P->mvals);
            P->mkeys = ok;
            P->mvals = ov;
            return fail(P, AAC_ERR_NOMEM, "out of memory");
        }
        P->mcap = nc;
        for (size_t i = 0; i < oc; i++)
            if (ov[i]) {
                size_t h = memo_slot(P, ok[i]);
                P->mkeys[h] = ok[i];
                P->mvals[h] = ov[i];
            }
        free(ok);
        free(ov);
    }
    size_t h = memo_slot(P, key);
    if (!P->mvals[h]) P->mcount++;
    P->mkeys[h] = key;
    P->mvals[h] = v;
    return AAC_OK;
}

static aac_status memo_get(up_parser *P, uint32_t key) {
    up_value *v = NULL;
    if (P->mcap) {
        size_t h = memo_slot(P, key);
        v = P->mvals[h];
    }
    if (!v) return fail(P, AAC_ERR_FORMAT, "memo index %u is not set", key);
    return push(P, v);
}

/* ------------------------------------------------------------------ input */

static aac_status need(up_parser *P, uint64_t n, const char *opname) {
    if (n > P->len - P->pos)
        return fail(P, AAC_ERR_FORMAT,
                    "truncated pickle: %s needs %llu bytes, only %zu left", opname,
                    (unsigned long long)n, P->len - P->pos);
    return AAC_OK;
}

static uint64_t rd_le(up_parser *P, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)P->p[P->pos + (size_t)i] << (8 * i);
    P->pos += (size_t)n;
    return v;
}

/* ------------------------------------------------------------------ globals */

static const struct {
    const char *name;
    st_dtype dtype;
} storage_types[] = {
    {"FloatStorage", ST_F32}, {"HalfStorage", ST_F16},   {"BFloat16Storage", ST_BF16},
    {"DoubleStorage", ST_F64}, {"LongStorage", ST_I64},  {"IntStorage", ST_I32},
    {"ShortStorage", ST_I16}, {"CharStorage", ST_I8},    {"ByteStorage", ST_U8},
    {"BoolStorage", ST_BOOL},
};

static int streq(const char *s, size_t n, const char *lit) {
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Maps (module, name) to an allow-listed global or fails naming it. Nothing is imported. */
static aac_status push_global(up_parser *P, const char *mod, size_t ml, const char *nm,
                              size_t nl) {
    int id = 0;
    st_dtype dt = ST_U8;
    if (streq(mod, ml, "collections") && streq(nm, nl, "OrderedDict")) id = G_ODICT;
    else if (streq(mod, ml, "torch._utils") && streq(nm, nl, "_rebuild_tensor_v2"))
        id = G_REBUILD_V2;
    else if (streq(mod, ml, "torch._utils") && streq(nm, nl, "_rebuild_parameter"))
        id = G_REBUILD_PARAM;
    else if (streq(mod, ml, "torch._utils") && streq(nm, nl, "_rebuild_parameter_with_state"))
        id = G_REBUILD_PARAM_STATE;
    else if ((streq(mod, ml, "torch") || streq(mod, ml, "torch.storage")) &&
             streq(nm, nl, "UntypedStorage")) {
        id = G_STORAGE; /* counted in bytes */
        dt = ST_U8;
    } else if (streq(mod, ml, "torch")) {
        for (size_t i = 0; i < sizeof storage_types / sizeof storage_types[0]; i++)
            if (streq(nm, nl, storage_types[i].name)) {
                id = G_STORAGE;
                dt = storage_types[i].dtype;
            }
    } else if ((ml == 9 || (ml > 9 && mod[9] == '.')) && memcmp(mod, "__torch__", 9) == 0 &&
               nl > 0 && !memchr(nm, '\0', nl) && !memchr(mod, '\0', ml)) {
        id = G_CLASS; /* TorchScript module class: an inert attribute container */
    }
    if (!id) {
        char mb[120], nb[120];
        return fail(P, AAC_ERR_UNSUPPORTED, "global '%s.%s' is not allowed",
                    printable(mod, ml, mb, sizeof mb), printable(nm, nl, nb, sizeof nb));
    }
    up_value *g = new_value(P, UP_GLOBAL);
    if (!g) return P->err->code;
    char *full = malloc(ml + nl + 2);
    if (!full) return fail(P, AAC_ERR_NOMEM, "out of memory");
    memcpy(full, mod, ml);
    full[ml] = '.';
    memcpy(full + ml + 1, nm, nl);
    full[ml + nl + 1] = '\0';
    g->u.g.id = id;
    g->u.g.dtype = dt;
    g->u.g.name = full;
    return push(P, g);
}

/* ------------------------------------------------------------------ torch reconstruction */

static int64_t as_int(const up_value *v, int *ok) {
    if (v->kind == UP_INT) return v->u.i;
    if (v->kind == UP_BOOL) return v->u.b;
    *ok = 0;
    return 0;
}

/* Storage keys become zip member names: only plain names are accepted. */
static int key_is_plain(const char *s, size_t n) {
    if (n == 0 || n > 255 || (n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.'))) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* BINPERSID: ('storage', torch.<T>Storage, key, location, numel). */
static aac_status persistent_load(up_parser *P, up_value *pid) {
    char kb[80];
    if (pid->kind != UP_TUPLE || pid->u.seq.n != 5)
        return fail(P, AAC_ERR_FORMAT,
                    "persistent id is a %s of %zu items, expected ('storage', type, key, "
                    "location, numel)", up_kind_name(pid->kind),
                    pid->kind == UP_TUPLE ? pid->u.seq.n : (size_t)0);
    up_value **it = pid->u.seq.items;
    if (it[0]->kind != UP_STR || strcmp(it[0]->u.s.ptr, "storage") != 0)
        return fail(P, AAC_ERR_UNSUPPORTED, "persistent id is not a 'storage' reference");
    if (it[1]->kind != UP_GLOBAL || it[1]->u.g.id != G_STORAGE)
        return fail(P, AAC_ERR_FORMAT, "persistent id: storage type is a %s, not a torch storage "
                    "type", it[1]->kind == UP_GLOBAL ? it[1]->u.g.name : up_kind_name(it[1]->kind));
    if (it[2]->kind != UP_STR || !key_is_plain(it[2]->u.s.ptr, it[2]->u.s.len))
        return fail(P, AAC_ERR_FORMAT, "persistent id: storage key '%s' is not a plain name",
                    it[2]->kind == UP_STR ? printable(it[2]->u.s.ptr, it[2]->u.s.len, kb, sizeof kb)
                                          : up_kind_name(it[2]->kind));
    int ok = 1;
    int64_t numel = as_int(it[4], &ok);
    size_t esz = st_dtype_size(it[1]->u.g.dtype);
    if (!ok || numel < 0 || (uint64_t)numel > (uint64_t)INT64_MAX / esz)
        return fail(P, AAC_ERR_FORMAT, "persistent id: storage '%s' has an invalid element count",
                    it[2]->u.s.ptr);
    up_value *s = new_value(P, UP_STORAGE);
    if (!s) return P->err->code;
    s->u.stg.dtype = it[1]->u.g.dtype;
    s->u.stg.key = it[2]->u.s.ptr; /* the key string lives in the same arena */
    s->u.stg.numel = numel;
    return push(P, s);
}

static void fmt_dims(char *buf, size_t cap, int n, const int64_t *d) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)d[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static aac_status read_dims(up_parser *P, const up_value *v, const char *what, int64_t *out,
                            int *ndim) {
    if (v->kind != UP_TUPLE && v->kind != UP_LIST)
        return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: %s is a %s, expected a tuple", what,
                    up_kind_name(v->kind));
    if (v->u.seq.n > ST_MAX_DIMS)
        return fail(P, AAC_ERR_UNSUPPORTED, "_rebuild_tensor_v2: %zu dims, at most %d supported",
                    v->u.seq.n, ST_MAX_DIMS);
    *ndim = (int)v->u.seq.n;
    for (size_t i = 0; i < v->u.seq.n; i++) {
        int ok = 1;
        out[i] = as_int(v->u.seq.items[i], &ok);
        if (!ok)
            return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: %s entry %zu is a %s", what, i,
                        up_kind_name(v->u.seq.items[i]->kind));
        if (out[i] < 0)
            return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: negative %s %lld in dim %zu", what,
                        (long long)out[i], i);
    }
    return AAC_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
 * [, metadata]): checks that every element the view can reach lies inside the storage. */
static aac_status rebuild_tensor(up_parser *P, const up_value *args, up_value **out) {
    size_t n = args->u.seq.n;
    if (n < 6 || n > 7)
        return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2 called with %zu arguments, expected 6 "
                    "or 7", n);
    up_value **a = args->u.seq.items;
    if (a[0]->kind != UP_STORAGE)
        return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: argument 0 is a %s, expected a "
                    "storage reference", up_kind_name(a[0]->kind));
    const up_storage *s = &a[0]->u.stg;
    int ok = 1;
    int64_t off = as_int(a[1], &ok);
    if (!ok || off < 0)
        return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: invalid storage offset");
    up_tensor t = {.storage = a[0], .offset = off};
    int nd_stride = 0;
    aac_status st = read_dims(P, a[2], "size", t.size, &t.ndim);
    if (st == AAC_OK) st = read_dims(P, a[3], "stride", t.stride, &nd_stride);
    if (st != AAC_OK) return st;
    if (nd_stride != t.ndim)
        return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: %d sizes but %d strides", t.ndim,
                    nd_stride);
    int64_t numel = 1;
    for (int i = 0; i < t.ndim; i++) {
        if (t.size[i] != 0 && numel > INT64_MAX / t.size[i])
            return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: element count of the shape "
                        "overflows");
        numel *= t.size[i];
    }
    size_t esz = st_dtype_size(s->dtype);
    if ((uint64_t)numel > (uint64_t)INT64_MAX / esz || (uint64_t)numel * esz > SIZE_MAX)
        return fail(P, AAC_ERR_FORMAT, "_rebuild_tensor_v2: byte size of the shape overflows");
    t.numel = numel;
    /* Last reachable element: offset + sum (size_i - 1) * stride_i, overflow-checked. */
    uint64_t last = (uint64_t)off;
    int over = 0;
    if (numel > 0)
        for (int i = 0; i < t.ndim && !over; i++) {
            uint64_t span = (uint64_t)(t.size[i] - 1), stv = (uint64_t)t.stride[i];
            if (stv && span > (uint64_t)INT64_MAX / stv) over = 1;
            else if (last > (uint64_t)INT64_MAX - span * stv) over = 1;
            else last += span * stv;
        }
    if (over || (numel > 0 && last >= (uint64_t)s->numel) || (numel == 0 && off > s->numel)) {
        char sb[120], tb[120];
        fmt_dims(sb, sizeof sb, t.ndim, t.size);
        fmt_dims(tb, sizeof tb, t.ndim, t.stride);
        return fail(P, AAC_ERR_FORMAT,
                    "tensor of shape %s, strides %s at offset %lld reaches past the end of its "
                    "storage '%s' (%lld elements)", sb, tb, (long long)off, s->key,
                    (long long)s->numel);
    }
    up_value *v = new_value(P, UP_TENSOR);
    if (!v) return P->err->code;
    v->u.t = t;
    v->depth = 1;
    *out = v;
    return AAC_OK;
}

static aac_status do_reduce(up_parser *P, up_value *fn, up_value *args) {
    if (fn->kind != UP_GLOBAL)
        return fail(P, AAC_ERR_FORMAT, "REDUCE calls a %s", up_kind_name(fn->kind));
    if (args->kind != UP_TUPLE)
        return fail(P, AAC_ERR_FORMAT, "REDUCE arguments are a %s, expected a tuple",
                    up_kind_name(args->kind));
    up_value *r = NULL;
    switch (fn->u.g.id) {
    case G_ODICT:
        if (args->u.seq.n != 0)
            return fail(P, AAC_ERR_UNSUPPORTED, "collections.OrderedDict called with arguments");
        r = new_value(P, UP_ODICT);
        break;
    case G_REBUILD_V2: {
        aac_status st = rebuild_tensor(P, args, &r);
        if (st != AAC_OK) return st;
        break;
    }
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE:
        /* (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor here. */
        if (args->u.seq.n < 1 || args->u.seq.items[0]->kind != UP_TENSOR)
            return fail(P, AAC_ERR_FORMAT, "%s: first argument is not a tensor", fn->u.g.name);
        r = args->u.seq.items[0];
        break;
    case G_CLASS: r = new_value(P, UP_OBJECT); break;
    default: return fail(P, AAC_ERR_FORMAT, "'%s' cannot be called", fn->u.g.name);
    }
    if (!r) return P->err->code;
    if (r->kind == UP_OBJECT) r->u.obj.cls = fn->u.g.name;
    return push(P, r);
}

static aac_status do_newobj(up_parser *P, up_value *cls, up_value *args) {
    if (cls->kind != UP_GLOBAL || cls->u.g.id != G_CLASS)
        return fail(P, AAC_ERR_FORMAT, "NEWOBJ on %s (only __torch__ classes are allowed)",
                    cls->kind == UP_GLOBAL ? cls->u.g.name : up_kind_name(cls->kind));
    if (args->kind != UP_TUPLE)
        return fail(P, AAC_ERR_FORMAT, "NEWOBJ arguments are a %s", up_kind_name(args->kind));
    up_value *o = new_value(P, UP_OBJECT);
    if (!o) return P->err->code;
    o->u.obj.cls = cls->u.g.name;
    return push(P, o);
}

static aac_status do_build(up_parser *P, up_value *inst, up_value *state) {
    switch (inst->kind) {
    case UP_OBJECT:
        /* Module state: its attribute dict, or (dict, slots) from __getstate__ variants. */
        if (state->kind == UP_TUPLE && state->u.seq.n == 2) state = state->u.seq.items[0];
        if (state->kind == UP_NONE) return AAC_OK;
        if (state->kind != UP_DICT && state->kind != UP_ODICT)
            return fail(P, AAC_ERR_FORMAT, "BUILD state of %s is a %s, expected a dict",
                        inst->u.obj.cls, up_kind_name(state->kind));
        inst->u.obj.attrs = state;
        if (state->depth + 1 > inst->depth) inst->depth = state->depth + 1;
        if (inst->depth > P->max_depth)
            return fail(P, AAC_ERR_FORMAT, "containers nested deeper than %zu (depth limit)",
                        P->max_depth);
        return AAC_OK;
    case UP_DICT:
    case UP_ODICT:
        /* Instance attributes of a dict subclass (a state dict's _metadata): not items. */
        return AAC_OK;
    default:
        return fail(P, AAC_ERR_FORMAT, "BUILD on a %s", up_kind_name(inst->kind));
    }
}

/* ------------------------------------------------------------------ main loop */

static aac_status push_string(up_parser *P, up_kind kind, uint64_t n, const char *opname) {
    if (n > P->len - P->pos)
        return fail(P, AAC_ERR_FORMAT,
                    "truncated pickle: %s claims %llu bytes, only %zu left", opname,
                    (unsigned long long)n, P->len - P->pos);
    up_value *v = new_value(P, kind);
    if (!v) return P->err->code;
    v->u.s.ptr = malloc((size_t)n + 1);
    if (!v->u.s.ptr) return fail(P, AAC_ERR_NOMEM, "out of memory for a %llu-byte string",
                                 (unsigned long long)n);
    memcpy(v->u.s.ptr, P->p + P->pos, (size_t)n);
    v->u.s.ptr[n] = '\0';
    v->u.s.len = (size_t)n;
    P->pos += (size_t)n;
    return push(P, v);
}

static aac_status push_int(up_parser *P, int64_t x) {
    up_value *v = new_value(P, UP_INT);
    if (!v) return P->err->code;
    v->u.i = x;
    return push(P, v);
}

/* LONG1 / LONG4: little-endian two's complement of n bytes; only 64-bit values fit. */
static aac_status push_long(up_parser *P, uint64_t n, const char *opname) {
    aac_status st = need(P, n, opname);
    if (st != AAC_OK) return st;
    if (n > 8) return fail(P, AAC_ERR_UNSUPPORTED, "%s: integer of %llu bytes does not fit 64 "
                           "bits", opname, (unsigned long long)n);
    if (n == 0) return push_int(P, 0);
    uint64_t u = rd_le(P, (int)n);
    if (n < 8 && (u >> (8 * n - 1)) & 1) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    int64_t x;
    memcpy(&x, &u, sizeof x);
    return push_int(P, x);
}

/* GLOBAL's text arguments: "module\nname\n". */
static aac_status read_line(up_parser *P, const char **s, size_t *n) {
    const uint8_t *nl = memchr(P->p + P->pos, '\n', P->len - P->pos);
    if (!nl) return fail(P, AAC_ERR_FORMAT, "truncated pickle: GLOBAL name without a newline");
    *s = (const char *)P->p + P->pos;
    *n = (size_t)(nl - (P->p + P->pos));
    P->pos += *n + 1;
    return AAC_OK;
}

static aac_status run(up_parser *P) {
    for (;;) {
        aac_status st = AAC_OK;
        P->op = P->pos;
        if (P->pos >= P->len)
            return fail(P, AAC_ERR_FORMAT, "truncated pickle: ends without a STOP opcode");
        uint8_t op = P->p[P->pos++];
        switch (op) {
        case 0x80: /* PROTO */
            if ((st = need(P, 1, "PROTO")) != AAC_OK) return st;
            if (P->p[P->pos] > 5)
                return fail(P, AAC_ERR_UNSUPPORTED, "pickle protocol %d", P->p[P->pos]);
            P->pos++;
            break;
        case 0x95: { /* FRAME: framing is a read-ahead hint; only the length is checked */
            if ((st = need(P, 8, "FRAME")) != AAC_OK) return st;
            uint64_t fl = rd_le(P, 8);
            if ((st = need(P, fl, "FRAME")) != AAC_OK) return st;
            break;
        }
        case '.': /* STOP */
            if ((st = need_stack(P, 1, "STOP")) != AAC_OK) return st;
            P->doc->root = P->stack[--P->sp];
            return AAC_OK;
        case '(': /* MARK */
            if (P->nmarks >= P->max_depth)
                return fail(P, AAC_ERR_FORMAT, "MARKs nested deeper than %zu (depth limit)",
                            P->max_depth);
            if (P->nmarks == P->markcap) {
                size_t nc = P->markcap ? P->markcap * 2 : 32;
                size_t *nm = realloc(P->marks, nc * sizeof *nm);
                if (!nm) return fail(P, AAC_ERR_NOMEM, "out of memory");
                P->marks = nm;
                P->markcap = nc;
            }
            P->marks[P->nmarks++] = P->sp;
            break;
        case '0': /* POP */
            if (P->sp == frame_base(P) && P->nmarks) P->nmarks--; /* CPython pops the mark */
            else if ((st = need_stack(P, 1, "POP")) != AAC_OK) return st;
            else P->sp--;
            break;
        case '1': { /* POP_MARK */
            size_t base = 0;
            if ((st = pop_mark(P, "POP_MARK", &base)) != AAC_OK) return st;
            P->sp = base;
            break;
        }
        case '2': /* DUP */
            if ((st = need_stack(P, 1, "DUP")) != AAC_OK) return st;
            st = push(P, P->stack[P->sp - 1]);
            break;
        case 'c': { /* GLOBAL */
            const char *m = NULL, *n = NULL;
            size_t ml = 0, nl = 0;
            if ((st = read_line(P, &m, &ml)) != AAC_OK || (st = read_line(P, &n, &nl)) != AAC_OK)
                return st;
            st = push_global(P, m, ml, n, nl);
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            if ((st = need_stack(P, 2, "STACK_GLOBAL")) != AAC_OK) return st;
            up_value *m = P->stack[P->sp - 2], *n = P->stack[P->sp - 1];
            if (m->kind != UP_STR || n->kind != UP_STR)
                return fail(P, AAC_ERR_FORMAT, "STACK_GLOBAL on a %s and a %s",
                            up_kind_name(m->kind), up_kind_name(n->kind));
            P->sp -= 2;
            st = push_global(P, m->u.s.ptr, m->u.s.len, n->u.s.ptr, n->u.s.len);
            break;
        }
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
        case 0x94: { /* MEMOIZE */
            uint64_t idx;
            if (op == 0x94) idx = P->mcount;
            else {
                int w = op == 'q' ? 1 : 4;
                if ((st = need(P, (uint64_t)w, op == 'q' ? "BINPUT" : "LONG_BINPUT")) != AAC_OK)
                    return st;
                idx = rd_le(P, w);
            }
            if ((st = need_stack(P, 1, "memo put")) != AAC_OK) return st;
            st = memo_put(P, idx, P->stack[P->sp - 1]);
            break;
        }
        case 'h': /* BINGET */
        case 'j': { /* LONG_BINGET */
            int w = op == 'h' ? 1 : 4;
            if ((st = need(P, (uint64_t)w, op == 'h' ? "BINGET" : "LONG_BINGET")) != AAC_OK)
                return st;
            st = memo_get(P, (uint32_t)rd_le(P, w));
            break;
        }
        case ')': st = push(P, new_value(P, UP_TUPLE)); break; /* EMPTY_TUPLE */
        case ']': st = push(P, new_value(P, UP_LIST)); break;  /* EMPTY_LIST */
        case '}': st = push(P, new_value(P, UP_DICT)); break;  /* EMPTY_DICT */
        case 't':   /* TUPLE */
        case 'l': { /* LIST */
            size_t base = 0;
            if ((st = pop_mark(P, op == 't' ? "TUPLE" : "LIST", &base)) != AAC_OK) return st;
            up_value *v = new_value(P, op == 't' ? UP_TUPLE : UP_LIST);
            if (!v) return P->err->code;
            for (size_t i = base; i < P->sp && st == AAC_OK; i++) st = seq_push(P, v, P->stack[i]);
            if (st != AAC_OK) return st;
            P->sp = base;
            st = push(P, v);
            break;
        }
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            size_t k = (size_t)(op - 0x84);
            if ((st = need_stack(P, k, "TUPLEn")) != AAC_OK) return st;
            up_value *v = new_value(P, UP_TUPLE);
            if (!v) return P->err->code;
            for (size_t i = P->sp - k; i < P->sp && st == AAC_OK; i++)
                st = seq_push(P, v, P->stack[i]);
            if (st != AAC_OK) return st;
            P->sp -= k;
            st = push(P, v);
            break;
        }
        case 'a': { /* APPEND */
            if ((st = need_stack(P, 2, "APPEND")) != AAC_OK) return st;
            up_value *l = P->stack[P->sp - 2];
            if (l->kind != UP_LIST)
                return fail(P, AAC_ERR_FORMAT, "APPEND to a %s", up_kind_name(l->kind));
            st = seq_push(P, l, P->stack[P->sp - 1]);
            P->sp--;
            break;
        }
        case 'e': { /* APPENDS */
            size_t base = 0;
            if ((st = pop_mark(P, "APPENDS", &base)) != AAC_OK) return st;
            if (base == 0 || base - 1 < frame_base(P))
                return fail(P, AAC_ERR_FORMAT, "APPENDS without a list");
            up_value *l = P->stack[base - 1];
            if (l->kind != UP_LIST)
                return fail(P, AAC_ERR_FORMAT, "APPENDS to a %s", up_kind_name(l->kind));
            for (size_t i = base; i < P->sp && st == AAC_OK; i++) st = seq_push(P, l, P->stack[i]);
            P->sp = base;
            break;
        }
        case 'd': { /* DICT */
            size_t base = 0;
            if ((st = pop_mark(P, "DICT", &base)) != AAC_OK) return st;
            if ((P->sp - base) % 2)
                return fail(P, AAC_ERR_FORMAT, "DICT with an odd number of items");
            up_value *v = new_value(P, UP_DICT);
            if (!v) return P->err->code;
            for (size_t i = base; i < P->sp && st == AAC_OK; i += 2)
                st = map_set(P, v, P->stack[i], P->stack[i + 1]);
            if (st != AAC_OK) return st;
            P->sp = base;
            st = push(P, v);
            break;
        }
        case 's': { /* SETITEM */
            if ((st = need_stack(P, 3, "SETITEM")) != AAC_OK) return st;
            up_value *d = P->stack[P->sp - 3];
            if (d->kind != UP_DICT && d->kind != UP_ODICT)
                return fail(P, AAC_ERR_FORMAT, "SETITEM on a %s", up_kind_name(d->kind));
            st = map_set(P, d, P->stack[P->sp - 2], P->stack[P->sp - 1]);
            P->sp -= 2;
            break;
        }
        case 'u': { /* SETITEMS */
            size_t base = 0;
            if ((st = pop_mark(P, "SETITEMS", &base)) != AAC_OK) return st;
            if (base == 0 || base - 1 < frame_base(P))
                return fail(P, AAC_ERR_FORMAT, "SETITEMS without a dict");
            up_value *d = P->stack[base - 1];
            if (d->kind != UP_DICT && d->kind != UP_ODICT)
                return fail(P, AAC_ERR_FORMAT, "SETITEMS on a %s", up_kind_name(d->kind));
            if ((P->sp - base) % 2)
                return fail(P, AAC_ERR_FORMAT, "SETITEMS with an odd number of items");
            for (size_t i = base; i < P->sp && st == AAC_OK; i += 2)
                st = map_set(P, d, P->stack[i], P->stack[i + 1]);
            P->sp = base;
            break;
        }
        case 'J': /* BININT */
            if ((st = need(P, 4, "BININT")) != AAC_OK) return st;
            st = push_int(P, (int32_t)(uint32_t)rd_le(P, 4));
            break;
        case 'K': /* BININT1 */
            if ((st = need(P, 1, "BININT1")) != AAC_OK) return st;
            st = push_int(P, (int64_t)rd_le(P, 1));
            break;
        case 'M': /* BININT2 */
            if ((st = need(P, 2, "BININT2")) != AAC_OK) return st;
            st = push_int(P, (int64_t)rd_le(P, 2));
            break;
        case 0x8a: /* LONG1 */
            if ((st = need(P, 1, "LONG1")) != AAC_OK) return st;
            st = push_long(P, rd_le(P, 1), "LONG1");
            break;
        case 0x8b: { /* LONG4 */
            if ((st = need(P, 4, "LONG4")) != AAC_OK) return st;
            int32_t n = (int32_t)(uint32_t)rd_le(P, 4);
            if (n < 0) return fail(P, AAC_ERR_FORMAT, "LONG4 with a negative length");
            st = push_long(P, (uint64_t)n, "LONG4");
            break;
        }
        case 'G': { /* BINFLOAT: big-endian IEEE double */
            if ((st = need(P, 8, "BINFLOAT")) != AAC_OK) return st;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | P->p[P->pos++];
            up_value *v = new_value(P, UP_FLOAT);
            if (!v) return P->err->code;
            memcpy(&v->u.f, &u, sizeof u);
            st = push(P, v);
            break;
        }
        case 0x88: /* NEWTRUE */
        case 0x89: { /* NEWFALSE */
            up_value *v = new_value(P, UP_BOOL);
            if (!v) return P->err->code;
            v->u.b = op == 0x88;
            st = push(P, v);
            break;
        }
        case 'N': st = push(P, new_value(P, UP_NONE)); break; /* NONE */
        case 0x8c: /* SHORT_BINUNICODE */
        case 'U':  /* SHORT_BINSTRING */
        case 'C':  /* SHORT_BINBYTES */
            if ((st = need(P, 1, "string length")) != AAC_OK) return st;
            st = push_string(P, op == 'C' ? UP_BYTES : UP_STR, rd_le(P, 1), "string");
            break;
        case 'X': /* BINUNICODE */
        case 'B': /* BINBYTES */
            if ((st = need(P, 4, "string length")) != AAC_OK) return st;
            st = push_string(P, op == 'B' ? UP_BYTES : UP_STR, rd_le(P, 4), "string");
            break;
        case 'T': { /* BINSTRING: signed 32-bit length */
            if ((st = need(P, 4, "string length")) != AAC_OK) return st;
            int32_t n = (int32_t)(uint32_t)rd_le(P, 4);
            if (n < 0) return fail(P, AAC_ERR_FORMAT, "BINSTRING with a negative length");
            st = push_string(P, UP_STR, (uint64_t)n, "BINSTRING");
            break;
        }
        case 0x8d: /* BINUNICODE8 */
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */
            if ((st = need(P, 8, "string length")) != AAC_OK) return st;
            st = push_string(P, op == 0x8d ? UP_STR : UP_BYTES, rd_le(P, 8), "string");
            break;
        case 'Q': { /* BINPERSID */
            if ((st = need_stack(P, 1, "BINPERSID")) != AAC_OK) return st;
            up_value *pid = P->stack[--P->sp];
            st = persistent_load(P, pid);
            break;
        }
        case 'R': { /* REDUCE */
            if ((st = need_stack(P, 2, "REDUCE")) != AAC_OK) return st;
            up_value *fn = P->stack[P->sp - 2], *args = P->stack[P->sp - 1];
            P->sp -= 2;
            st = do_reduce(P, fn, args);
            break;
        }
        case 0x81: { /* NEWOBJ */
            if ((st = need_stack(P, 2, "NEWOBJ")) != AAC_OK) return st;
            up_value *cls = P->stack[P->sp - 2], *args = P->stack[P->sp - 1];
            P->sp -= 2;
            st = do_newobj(P, cls, args);
            break;
        }
        case 0x92: { /* NEWOBJ_EX: cls, args, kwargs */
            if ((st = need_stack(P, 3, "NEWOBJ_EX")) != AAC_OK) return st;
            up_value *cls = P->stack[P->sp - 3], *args = P->stack[P->sp - 2];
            P->sp -= 3;
            st = do_newobj(P, cls, args);
            break;
        }
        case 'b': { /* BUILD */
            if ((st = need_stack(P, 2, "BUILD")) != AAC_OK) return st;
            up_value *state = P->stack[--P->sp];
            st = do_build(P, P->stack[P->sp - 1], state);
            break;
        }
        default:
            return fail(P, AAC_ERR_UNSUPPORTED, "opcode 0x%02x%s%c%s is not supported", op,
                        op >= 0x20 && op < 0x7f ? " ('" : "", op >= 0x20 && op < 0x7f ? op : ' ',
                        op >= 0x20 && op < 0x7f ? "')" : "");
        }
        if (st != AAC_OK) return st;
    }
}

aac_status up_load(const void *data, size_t len, const char *label, const up_limits *lim,
                   up_doc **out, aac_error *err) {
    if (!out) return aac_fail(err, AAC_ERR_ARG, "up_load: out is NULL");
    *out = NULL;
    if (!data && len) return aac_fail(err, AAC_ERR_ARG, "up_load: data is NULL");
    aac_error local;
    up_parser P = {.p = data, .len = len, .label = label ? label : "pickle", .err = err ? err : &local,
                   .max_depth = lim && lim->max_depth ? lim->max_depth : 256,
                   .max_objects = lim && lim->max_objects ? lim->max_objects : 10000000};
    P.doc = calloc(1, sizeof *P.doc);
    if (!P.doc) return aac_fail(err, AAC_ERR_NOMEM, "%s: out of memory", P.label);
    aac_status st = run(&P);
    free(P.stack);
    free(P.marks);
    free(P.mkeys);
    free(P.mvals);
    if (st != AAC_OK) {
        up_free(P.doc);
        return st;
    }
    *out = P.doc;
    return AAC_OK;
}

const up_value *up_root(const up_doc *d) { return d->root; }

void up_free(up_doc *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n_all; i++) free_value(d->all[i]);
    free(d->all);
    free(d);
}
