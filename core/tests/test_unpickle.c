/* test_unpickle.c - the restricted unpickler and torch_archive on checkpoints built here:
 * handcrafted protocol 2 and 4 state dicts (strided views, shared storages, parameters,
 * optimizer state), and a hostile corpus (code-running globals, depth bombs, huge lengths,
 * truncation, bad memo references, storages too short for their views, zip-slip names, broken
 * zips). Self-contained: needs no ../shared files. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "testutil.h"
#include "torch_archive.h"
#include "unpickle.h"

/* ------------------------------------------------------------------ byte builder */

typedef struct bb {
    uint8_t *p;
    size_t n, cap;
} bb;

static void put(bb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(2);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void op(bb *b, uint8_t o) { put(b, &o, 1); }
static void le(bb *b, uint64_t v, int n) {
    for (int i = 0; i < n; i++) op(b, (uint8_t)(v >> (8 * i)));
}
/* BINUNICODE (protocol 2 style) and SHORT_BINUNICODE (protocol 4 style). */
static void ustr(bb *b, const char *s) {
    op(b, 'X');
    le(b, strlen(s), 4);
    put(b, s, strlen(s));
}
static void sstr(bb *b, const char *s) {
    op(b, 0x8c);
    op(b, (uint8_t)strlen(s));
    put(b, s, strlen(s));
}
static void glob(bb *b, const char *mod, const char *name) {
    op(b, 'c');
    put(b, mod, strlen(mod));
    op(b, '\n');
    put(b, name, strlen(name));
    op(b, '\n');
}
static void sglob(bb *b, const char *mod, const char *name) {
    sstr(b, mod);
    op(b, 0x94); /* MEMOIZE */
    sstr(b, name);
    op(b, 0x94);
    op(b, 0x93); /* STACK_GLOBAL */
    op(b, 0x94);
}
static void bint(bb *b, int64_t v) {
    if (v >= 0 && v < 256) {
        op(b, 'K');
        le(b, (uint64_t)v, 1);
    } else if (v >= 0 && v < 65536) {
        op(b, 'M');
        le(b, (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        op(b, 'J');
        le(b, (uint64_t)v, 4);
    } else {
        op(b, 0x8a);
        op(b, 8);
        le(b, (uint64_t)v, 8);
    }
}

typedef struct tspec {
    const char *key, *stype;
    int64_t storage_numel, offset;
    int ndim;
    int64_t size[4], stride[4];
} tspec;

/* _rebuild_tensor_v2 call as torch.save writes it; p4 switches to protocol 4 opcodes. */
static void tensor(bb *b, const tspec *t, int p4) {
    if (p4) sglob(b, "torch._utils", "_rebuild_tensor_v2");
    else glob(b, "torch._utils", "_rebuild_tensor_v2");
    op(b, '(');
    op(b, '(');
    if (p4) sstr(b, "storage");
    else ustr(b, "storage");
    if (p4) sglob(b, "torch", t->stype);
    else glob(b, "torch", t->stype);
    if (p4) sstr(b, t->key);
    else ustr(b, t->key);
    if (p4) sstr(b, "cpu");
    else ustr(b, "cpu");
    bint(b, t->storage_numel);
    op(b, 't');
    op(b, 'Q'); /* BINPERSID */
    bint(b, t->offset);
    op(b, '(');
    for (int i = 0; i < t->ndim; i++) bint(b, t->size[i]);
    op(b, 't');
    op(b, '(');
    for (int i = 0; i < t->ndim; i++) bint(b, t->stride[i]);
    op(b, 't');
    op(b, 0x89); /* requires_grad False */
    if (p4) sglob(b, "collections", "OrderedDict");
    else glob(b, "collections", "OrderedDict");
    op(b, ')');
    op(b, 'R');
    op(b, 't');
    op(b, 'R');
}

/* ------------------------------------------------------------------ zips */

typedef struct member {
    const char *name;
    const void *data;
    size_t len;
    int deflate;
} member;

static char tmpdir[4096];

static const char *tmp_path(const char *name) {
    static char buf[8][4400];
    static int slot;
    char *p = buf[slot++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", tmpdir, name);
    return p;
}

static void write_zip(const char *path, const member *m, size_t n) {
    int e = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &e);
    if (!z) {
        fprintf(stderr, "cannot create %s (libzip error %d)\n", path, e);
        exit(2);
    }
    for (size_t i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, m[i].data, m[i].len, 0);
        zip_int64_t idx = s ? zip_file_add(z, m[i].name, s, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            fprintf(stderr, "cannot add %s: %s\n", m[i].name, zip_strerror(z));
            exit(2);
        }
        zip_set_file_compression(z, (zip_uint64_t)idx, m[i].deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                                 0);
    }
    if (zip_close(z) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, zip_strerror(z));
        exit(2);
    }
}

/* A checkpoint "archive/data.pkl" + "archive/data/<k>" storages. */
static const char *ckpt(const char *file, const bb *pkl, const char *const *keys,
                        const void *const *data, const size_t *lens, size_t nst) {
    member m[8];
    size_t n = 0;
    static char names[8][64];
    m[n++] = (member){"archive/data.pkl", pkl->p, pkl->n, 1};
    for (size_t i = 0; i < nst && n < 8; i++) {
        snprintf(names[i], sizeof names[i], "archive/data/%s", keys[i]);
        m[n++] = (member){names[i], data[i], lens[i], 0};
    }
    const char *path = tmp_path(file);
    write_zip(path, m, n);
    return path;
}

/* ta_open must fail with `code` and a message naming the file and containing `word`. */
static void expect_fail(const char *path, aac_status code, const char *word, const char *what) {
    ta_archive *a = NULL;
    aac_error err = {0};
    aac_status st = ta_open(path, NULL, &a, &err);
    CHECK(st == code, "%s: status %s, expected %s (%s)", what, aac_status_name(st),
          aac_status_name(code), err.message);
    CHECK(a == NULL, "%s: archive returned on failure", what);
    if (getenv("AAC_TEST_VERBOSE")) printf("%-40s %s\n", what, err.message);
    CHECK(strstr(err.message, word) != NULL, "%s: message lacks '%s': %s", what, word, err.message);
    CHECK(strstr(err.message, path) != NULL, "%s: message lacks the path: %s", what, err.message);
    if (a) ta_close(a);
}

/* A data.pkl-only archive around the given pickle. */
static const char *pkl_only(const char *file, const bb *pkl) { return ckpt(file, pkl, NULL, NULL, NULL, 0); }

/* ------------------------------------------------------------------ positive cases */

static float storage0[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static float storage1[4] = {10, 11, 12, 13};

/* w: [2,3] view with strides (1,2) of storage 0 (a transposed [3,2]); b: [3] at offset 6 of
 * the same storage. Both pickles describe the same tensors. */
static const tspec W_SPEC = {"0", "FloatStorage", 10, 0, 2, {2, 3}, {1, 2}};
static const tspec B_SPEC = {"0", "FloatStorage", 10, 6, 1, {3}, {1}};
static const tspec M_SPEC = {"1", "FloatStorage", 4, 0, 2, {2, 2}, {2, 1}};

static void check_wb(const ta_archive *a, const char *wname, const char *bname) {
    const ta_tensor *w = ta_find(a, wname), *b = ta_find(a, bname);
    CHECK(w && b, "tensors %s / %s missing", wname, bname);
    if (!w || !b) return;
    CHECK(w->dtype == ST_F32 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 3 &&
          w->numel == 6 && w->nbytes == 24, "%s: wrong dtype/shape", wname);
    const float want_w[6] = {0, 2, 4, 1, 3, 5}, want_b[3] = {6, 7, 8};
    CHECK(memcmp(w->data, want_w, sizeof want_w) == 0, "%s: wrong values (strided copy)", wname);
    CHECK(b->dtype == ST_F32 && b->ndim == 1 && b->shape[0] == 3 && b->nbytes == 12,
          "%s: wrong shape", bname);
    CHECK(memcmp(b->data, want_b, sizeof want_b) == 0, "%s: wrong values (offset view)", bname);
}

static void test_protocol2(void) {
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    glob(&p, "collections", "OrderedDict");
    op(&p, 'q');
    op(&p, 0);
    op(&p, ')');
    op(&p, 'R');
    op(&p, 'q');
    op(&p, 1);
    op(&p, '(');
    ustr(&p, "w");
    tensor(&p, &W_SPEC, 0);
    ustr(&p, "b");
    tensor(&p, &B_SPEC, 0);
    op(&p, 'u');
    /* A state dict's _metadata arrives through BUILD and is not an item. */
    op(&p, '}');
    ustr(&p, "_metadata");
    op(&p, 'h');
    op(&p, 0);
    op(&p, ')');
    op(&p, 'R');
    op(&p, 's');
    op(&p, 'b');
    op(&p, '.');
    const char *keys[] = {"0"};
    const void *data[] = {storage0};
    size_t lens[] = {sizeof storage0};
    const char *path = ckpt("p2.pt", &p, keys, data, lens, 1);
    ta_archive *a;
    aac_error err = {0};
    CHECK_OK(ta_open(path, NULL, &a, &err), &err);
    CHECK(strcmp(ta_kind(a), "torch.save") == 0, "kind %s", ta_kind(a));
    CHECK(ta_count(a) == 2, "protocol 2: %zu tensors, expected 2", ta_count(a));
    CHECK(ta_count(a) == 2 && strcmp(ta_at(a, 0)->name, "w") == 0 &&
          strcmp(ta_at(a, 1)->name, "b") == 0, "protocol 2: pickle order not kept");
    check_wb(a, "w", "b");
    CHECK(ta_find(a, "_metadata") == NULL && ta_scalar(a, "_metadata") == NULL,
          "BUILD state of an OrderedDict leaked into the names");
    CHECK(strcmp(ta_path(a), path) == 0, "ta_path");
    ta_close(a);
    free(p.p);
}

static void test_protocol4(void) {
    bb body = {0};
    op(&body, '}');
    op(&body, 0x94);
    op(&body, '(');
    sstr(&body, "epoch");
    op(&body, 0x94);
    bint(&body, 3);
    sstr(&body, "model");
    op(&body, 0x94);
    sglob(&body, "collections", "OrderedDict");
    op(&body, ')');
    op(&body, 'R');
    op(&body, 0x94);
    op(&body, '(');
    sstr(&body, "w");
    /* nn.Parameter: _rebuild_parameter(tensor, requires_grad, hooks) */
    sglob(&body, "torch._utils", "_rebuild_parameter");
    tensor(&body, &W_SPEC, 1);
    op(&body, 0x88);
    sglob(&body, "collections", "OrderedDict");
    op(&body, ')');
    op(&body, 'R');
    op(&body, 0x87); /* TUPLE3 */
    op(&body, 'R');
    sstr(&body, "b");
    tensor(&body, &B_SPEC, 1);
    op(&body, 'u');
    /* optimizer: {"state": {0: {"exp_avg": m, "step": 7}}, "param_groups": [{"lr": 1e-3,
     * "betas": (0.5, 0.999), "amsgrad": False, "foreach": None, "name": "adam"}]} */
    sstr(&body, "opt");
    op(&body, '}');
    op(&body, '(');
    sstr(&body, "state");
    op(&body, '}');
    bint(&body, 0);
    op(&body, '}');
    op(&body, '(');
    sstr(&body, "exp_avg");
    tensor(&body, &M_SPEC, 1);
    sstr(&body, "step");
    bint(&body, 7);
    op(&body, 'u');
    op(&body, 's');
    sstr(&body, "param_groups");
    op(&body, ']');
    op(&body, '}');
    op(&body, '(');
    sstr(&body, "lr");
    op(&body, 'G');
    const uint8_t lr[8] = {0x3f, 0x50, 0x62, 0x4d, 0xd2, 0xf1, 0xa9, 0xfc}; /* 1e-3, BE */
    put(&body, lr, 8);
    sstr(&body, "betas");
    op(&body, 'G');
    const uint8_t half[8] = {0x3f, 0xe0, 0, 0, 0, 0, 0, 0};
    put(&body, half, 8);
    op(&body, 'G');
    const uint8_t b2[8] = {0x3f, 0xef, 0xf7, 0xce, 0xd9, 0x16, 0x87, 0x2b}; /* 0.999 */
    put(&body, b2, 8);
    op(&body, 0x86);
    sstr(&body, "amsgrad");
    op(&body, 0x89);
    sstr(&body, "foreach");
    op(&body, 'N');
    sstr(&body, "name");
    sstr(&body, "adam");
    sstr(&body, "neg");
    op(&body, 0x8a); /* LONG1 -2 in one byte */
    op(&body, 1);
    op(&body, 0xfe);
    op(&body, 'u');
    op(&body, 'a');
    op(&body, 'u');
    op(&body, 'u');
    op(&body, '.');
    bb p = {0};
    op(&p, 0x80);
    op(&p, 4);
    op(&p, 0x95); /* FRAME */
    le(&p, body.n, 8);
    put(&p, body.p, body.n);

    const char *keys[] = {"0", "1"};
    const void *data[] = {storage0, storage1};
    size_t lens[] = {sizeof storage0, sizeof storage1};
    const char *path = ckpt("p4.pt", &p, keys, data, lens, 2);
    ta_archive *a;
    aac_error err = {0};
    CHECK_OK(ta_open(path, NULL, &a, &err), &err);
    CHECK(ta_count(a) == 3, "protocol 4: %zu tensors, expected 3", ta_count(a));
    check_wb(a, "model.w", "model.b");
    const ta_tensor *m = ta_find(a, "opt.state.0.exp_avg");
    CHECK(m && m->ndim == 2 && m->shape[0] == 2 && m->shape[1] == 2 &&
          memcmp(m->data, storage1, sizeof storage1) == 0, "opt.state.0.exp_avg wrong or missing");
    const char *s;
    CHECK((s = ta_scalar(a, "epoch")) && strcmp(s, "3") == 0, "epoch = %s", s ? s : "(null)");
    CHECK((s = ta_scalar(a, "opt.state.0.step")) && strcmp(s, "7") == 0, "step = %s", s ? s : "-");
    CHECK((s = ta_scalar(a, "opt.param_groups.0.lr")) && strcmp(s, "0.001") == 0, "lr = %s",
          s ? s : "-");
    CHECK((s = ta_scalar(a, "opt.param_groups.0.betas.1")) && strcmp(s, "0.999") == 0,
          "betas.1 = %s", s ? s : "-");
    CHECK((s = ta_scalar(a, "opt.param_groups.0.amsgrad")) && strcmp(s, "false") == 0,
          "amsgrad = %s", s ? s : "-");
    CHECK((s = ta_scalar(a, "opt.param_groups.0.name")) && strcmp(s, "adam") == 0, "name = %s",
          s ? s : "-");
    CHECK((s = ta_scalar(a, "opt.param_groups.0.neg")) && strcmp(s, "-2") == 0, "neg = %s",
          s ? s : "-");
    CHECK(ta_scalar(a, "opt.param_groups.0.foreach") == NULL, "None became a scalar");
    CHECK(ta_scalar(a, "nothing") == NULL && ta_find(a, "nothing") == NULL, "lookup of absent");
    ta_close(a);
    free(p.p);
    free(body.p);
}

/* TorchScript layout: __torch__ objects via NEWOBJ + BUILD, "training" dropped, constants.pkl
 * and code/ present but never read (code/ here is deliberately not even Python). */
static void test_torchscript(void) {
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    glob(&p, "__torch__.model", "Net");
    op(&p, ')');
    op(&p, 0x81);
    op(&p, '}');
    op(&p, '(');
    ustr(&p, "training");
    op(&p, 0x89);
    ustr(&p, "layers");
    glob(&p, "__torch__.torch.nn.modules.container", "ModuleList");
    op(&p, ')');
    op(&p, 0x81);
    op(&p, '}');
    op(&p, '(');
    ustr(&p, "training");
    op(&p, 0x89);
    ustr(&p, "0");
    glob(&p, "__torch__.torch.nn.modules.linear.___torch_mangle_3", "Linear");
    op(&p, ')');
    op(&p, 0x81);
    op(&p, '}');
    op(&p, '(');
    ustr(&p, "training");
    op(&p, 0x89);
    ustr(&p, "weight");
    const tspec h = {"0", "HalfStorage", 4, 0, 2, {2, 2}, {2, 1}};
    tensor(&p, &h, 0);
    ustr(&p, "in_features");
    bint(&p, 2);
    op(&p, 'u');
    op(&p, 'b');
    op(&p, 'u');
    op(&p, 'b');
    op(&p, 'u');
    op(&p, 'b');
    op(&p, '.');
    const uint16_t half[4] = {0x3c00, 0x4000, 0xc000, 0x7c00}; /* 1, 2, -2, inf */
    const char junk[] = "this is not python and must never be parsed";
    member m[] = {{"archive/data.pkl", p.p, p.n, 0},
                  {"archive/data/0", half, sizeof half, 0},
                  {"archive/code/__torch__/model.py", junk, sizeof junk, 1},
                  {"archive/constants.pkl", junk, sizeof junk, 0}};
    const char *path = tmp_path("ts.pt");
    write_zip(path, m, 4);
    ta_archive *a;
    aac_error err = {0};
    CHECK_OK(ta_open(path, NULL, &a, &err), &err);
    CHECK(strcmp(ta_kind(a), "torchscript") == 0, "kind %s", ta_kind(a));
    const ta_tensor *t = ta_find(a, "layers.0.weight");
    CHECK(ta_count(a) == 1 && t && t->dtype == ST_F16 && t->numel == 4 &&
          memcmp(t->data, half, sizeof half) == 0, "torchscript tensor wrong");
    const char *s = ta_scalar(a, "layers.0.in_features");
    CHECK(s && strcmp(s, "2") == 0, "in_features = %s", s ? s : "-");
    CHECK(ta_scalar(a, "training") == NULL && ta_scalar(a, "layers.0.training") == NULL,
          "training attribute kept");
    ta_close(a);
    free(p.p);
}

/* The same tensor object under two names (tied weights) and the whole-storage fast path. */
static void test_shared_tensor(void) {
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, '}');
    op(&p, '(');
    ustr(&p, "a");
    const tspec whole = {"7", "FloatStorage", 4, 0, 1, {4}, {1}};
    tensor(&p, &whole, 0);
    op(&p, 'q');
    op(&p, 9);
    ustr(&p, "tied");
    op(&p, 'h');
    op(&p, 9);
    ustr(&p, "list");
    op(&p, ']');
    op(&p, 'h');
    op(&p, 9);
    op(&p, 'a');
    op(&p, 'u');
    op(&p, '.');
    const char *keys[] = {"7"};
    const void *data[] = {storage1};
    size_t lens[] = {sizeof storage1};
    const char *path = ckpt("tied.pt", &p, keys, data, lens, 1);
    ta_archive *a;
    aac_error err = {0};
    CHECK_OK(ta_open(path, NULL, &a, &err), &err);
    const ta_tensor *x = ta_find(a, "a"), *y = ta_find(a, "tied"), *z = ta_find(a, "list.0");
    CHECK(ta_count(a) == 3 && x && y && z, "tied: %zu tensors", ta_count(a));
    if (x && y && z) {
        CHECK(x->data == y->data && y->data == z->data, "tied tensors were copied separately");
        CHECK(memcmp(x->data, storage1, sizeof storage1) == 0, "tied values");
    }
    ta_close(a);
    free(p.p);
}

/* ------------------------------------------------------------------ hostile pickles */

static char pwned[256];

/* GLOBAL/STACK_GLOBAL of a forbidden callable, then REDUCE with a shell command. */
static void hostile_global(const char *mod, const char *name, int stack_global) {
    bb p = {0};
    op(&p, 0x80);
    op(&p, stack_global ? 4 : 2);
    if (stack_global) sglob(&p, mod, name);
    else glob(&p, mod, name);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "touch %s", pwned);
    ustr(&p, cmd);
    op(&p, 0x85);
    op(&p, 'R');
    op(&p, '.');
    char file[128], what[200], full[160];
    snprintf(file, sizeof file, "g_%s_%s_%d.pt", mod, name, stack_global);
    snprintf(full, sizeof full, "global '%s.%s' is not allowed", mod, name);
    snprintf(what, sizeof what, "%s %s.%s", stack_global ? "STACK_GLOBAL" : "GLOBAL", mod, name);
    expect_fail(pkl_only(file, &p), AAC_ERR_UNSUPPORTED, full, what);

    /* The same bytes straight into the unpickler: the offset of the opcode is reported. */
    up_doc *d = NULL;
    aac_error err = {0};
    aac_status st = up_load(p.p, p.n, "unit", NULL, &d, &err);
    CHECK(st == AAC_ERR_UNSUPPORTED && d == NULL, "%s: up_load status %s", what,
          aac_status_name(st));
    if (!stack_global) CHECK(strstr(err.message, "(offset 2)") != NULL, "%s: %s", what, err.message);
    free(p.p);
}

static void test_hostile_globals(void) {
    const char *g[][2] = {{"os", "system"},          {"builtins", "eval"},
                          {"posix", "system"},       {"subprocess", "Popen"},
                          {"builtins", "getattr"},   {"torch._utils", "_rebuild_qtensor"},
                          {"nonexistent.module", "Thing"}, {"__builtin__", "exec"},
                          {"torch", "load"},         {"collections", "defaultdict"}};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        hostile_global(g[i][0], g[i][1], 0);
        hostile_global(g[i][0], g[i][1], 1);
    }
    /* A __torch__-looking prefix must not slip through. */
    hostile_global("__torch__evil", "X", 0);
    /* Calling an allowed non-callable, and REDUCE on a plain value. */
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    glob(&p, "torch", "FloatStorage");
    op(&p, ')');
    op(&p, 'R');
    op(&p, '.');
    expect_fail(pkl_only("call_storage.pt", &p), AAC_ERR_FORMAT, "cannot be called",
                "calling a storage type");
    free(p.p);
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    ustr(&p, "os.system");
    op(&p, ')');
    op(&p, 'R');
    op(&p, '.');
    expect_fail(pkl_only("reduce_str.pt", &p), AAC_ERR_FORMAT, "REDUCE", "REDUCE on a string");
    free(p.p);
    /* INST / OBJ (protocol 0/1 class calls) are not even decoded. */
    p = (bb){0};
    put(&p, "ios\nsystem\n(S'x'\n.", 19);
    expect_fail(pkl_only("inst.pt", &p), AAC_ERR_UNSUPPORTED, "opcode", "INST opcode");
    free(p.p);
    CHECK(access(pwned, F_OK) != 0, "%s exists: something was executed", pwned);
}

static void test_depth(void) {
    /* 100k nested MARKs with empty lists. */
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    for (int i = 0; i < 100000; i++) {
        op(&p, '(');
        op(&p, ']');
    }
    op(&p, '.');
    expect_fail(pkl_only("marks.pt", &p), AAC_ERR_FORMAT, "depth", "100k MARKs");
    free(p.p);
    /* 100k lists appended into each other. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    for (int i = 0; i < 100000; i++) op(&p, ']');
    for (int i = 0; i < 99999; i++) op(&p, 'a');
    op(&p, '.');
    expect_fail(pkl_only("lists.pt", &p), AAC_ERR_FORMAT, "depth", "100k nested lists");
    free(p.p);
    /* A list that contains itself: decodes, but the name walk must stop. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, ']');
    op(&p, 'q');
    op(&p, 0);
    op(&p, 'h');
    op(&p, 0);
    op(&p, 'a');
    op(&p, '.');
    expect_fail(pkl_only("cycle.pt", &p), AAC_ERR_FORMAT, "depth", "self-containing list");
    free(p.p);
    /* Shared references doubling at each of 40 levels: 2^40 paths from a 250-byte pickle. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    bint(&p, 1);
    op(&p, 'q');
    op(&p, 0);
    for (int i = 1; i <= 40; i++) {
        op(&p, '(');
        op(&p, 'h');
        op(&p, (uint8_t)(i - 1));
        op(&p, 'h');
        op(&p, (uint8_t)(i - 1));
        op(&p, 'l');
        op(&p, 'q');
        op(&p, (uint8_t)i);
    }
    op(&p, '.');
    {
        ta_limits dl = {.max_objects = 100000};
        ta_archive *da = NULL;
        aac_error de = {0};
        aac_status ds = ta_open(pkl_only("dag.pt", &p), &dl, &da, &de);
        CHECK(ds == AAC_ERR_FORMAT && da == NULL && strstr(de.message, "object limit"),
              "2^40 shared paths: %s", de.message);
        if (getenv("AAC_TEST_VERBOSE")) printf("%-40s %s\n", "2^40 shared paths", de.message);
    }
    free(p.p);
    /* Smaller limits are honoured. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    for (int i = 0; i < 10; i++) op(&p, ']');
    for (int i = 0; i < 9; i++) op(&p, 'a');
    op(&p, '.');
    const char *path = pkl_only("ten.pt", &p);
    ta_limits lim = {.max_depth = 5};
    ta_archive *a = NULL;
    aac_error err = {0};
    aac_status st = ta_open(path, &lim, &a, &err);
    CHECK(st == AAC_ERR_FORMAT && strstr(err.message, "depth"), "max_depth 5: %s", err.message);
    lim = (ta_limits){.max_objects = 5};
    st = ta_open(path, &lim, &a, &err);
    CHECK(st == AAC_ERR_FORMAT && strstr(err.message, "object limit"), "max_objects 5: %s",
          err.message);
    st = ta_open(path, NULL, &a, &err);
    CHECK(st == AAC_OK && ta_count(a) == 0, "10 nested lists with default limits: %s", err.message);
    ta_close(a);
    free(p.p);
}

static void test_truncation_and_memo(void) {
    /* BINUNICODE8 claiming 2^60 bytes: refused before any allocation. */
    bb p = {0};
    op(&p, 0x80);
    op(&p, 4);
    op(&p, 0x8d);
    le(&p, (uint64_t)1 << 60, 8);
    put(&p, "abc", 3);
    op(&p, '.');
    expect_fail(pkl_only("huge_str.pt", &p), AAC_ERR_FORMAT, "truncated", "2^60-byte string");
    free(p.p);
    /* Same for BINBYTES8 and a FRAME longer than the data. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 4);
    op(&p, 0x95);
    le(&p, UINT64_MAX, 8);
    op(&p, '.');
    expect_fail(pkl_only("huge_frame.pt", &p), AAC_ERR_FORMAT, "truncated", "huge FRAME");
    free(p.p);

    /* A valid pickle cut at every length: never a crash, always "truncated". */
    bb full = {0};
    op(&full, 0x80);
    op(&full, 2);
    op(&full, '}');
    op(&full, '(');
    ustr(&full, "w");
    tensor(&full, &W_SPEC, 0);
    op(&full, 'u');
    op(&full, '.');
    int bad = 0;
    for (size_t cut = 0; cut < full.n; cut++) {
        up_doc *d = NULL;
        aac_error err = {0};
        aac_status st = up_load(full.p, cut, "cut", NULL, &d, &err);
        if (st != AAC_ERR_FORMAT || !strstr(err.message, "truncated")) {
            if (!bad++) fprintf(stderr, "cut at %zu: %s %s\n", cut, aac_status_name(st), err.message);
        }
        up_free(d);
    }
    CHECK(bad == 0, "%d truncated prefixes not reported as truncated", bad);
    bb half = {0};
    put(&half, full.p, full.n / 2);
    expect_fail(pkl_only("trunc.pt", &half), AAC_ERR_FORMAT, "truncated", "truncated pickle");
    free(half.p);
    free(full.p);

    /* BINGET / LONG_BINGET of memo entries never set. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, 'h');
    op(&p, 7);
    op(&p, '.');
    expect_fail(pkl_only("memo.pt", &p), AAC_ERR_FORMAT, "memo index 7 is not set", "BINGET 7");
    free(p.p);
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, ']');
    op(&p, 'r');
    le(&p, 0xfffffff0u, 4); /* sparse index: must not allocate a 4-billion-entry table */
    op(&p, 'j');
    le(&p, 0xfffffff1u, 4);
    op(&p, '.');
    expect_fail(pkl_only("memo2.pt", &p), AAC_ERR_FORMAT, "memo index 4294967281 is not set",
                "LONG_BINGET");
    free(p.p);
    /* Stack underflow, mark misuse. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, 'a');
    op(&p, '.');
    expect_fail(pkl_only("underflow.pt", &p), AAC_ERR_FORMAT, "APPEND", "APPEND on empty stack");
    free(p.p);
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, ']');
    op(&p, 't');
    op(&p, '.');
    expect_fail(pkl_only("nomark.pt", &p), AAC_ERR_FORMAT, "without a MARK", "TUPLE without MARK");
    free(p.p);
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, '}');
    op(&p, '(');
    op(&p, 's');
    op(&p, '.');
    expect_fail(pkl_only("frame.pt", &p), AAC_ERR_FORMAT, "stack value", "SETITEM across a MARK");
    free(p.p);
    /* Integers wider than 64 bits and unknown protocol. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, 0x8a);
    op(&p, 9);
    for (int i = 0; i < 9; i++) op(&p, 1);
    op(&p, '.');
    expect_fail(pkl_only("long9.pt", &p), AAC_ERR_UNSUPPORTED, "64 bits", "9-byte LONG1");
    free(p.p);
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 9);
    op(&p, '.');
    expect_fail(pkl_only("proto9.pt", &p), AAC_ERR_UNSUPPORTED, "protocol", "protocol 9");
    free(p.p);
}

/* Tensors whose views do not fit their storages. */
static void bad_tensor(const char *file, const tspec *t, size_t member_bytes, aac_status code,
                       const char *word, const char *what) {
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, '}');
    op(&p, '(');
    ustr(&p, "t");
    tensor(&p, t, 0);
    op(&p, 'u');
    op(&p, '.');
    static uint8_t zeros[4096];
    const char *keys[] = {t->key};
    const void *data[] = {zeros};
    size_t lens[] = {member_bytes};
    expect_fail(ckpt(file, &p, keys, data, lens, 1), code, word, what);
    free(p.p);
}

static void test_bad_tensors(void) {
    const tspec ok = {"0", "FloatStorage", 6, 0, 2, {2, 3}, {3, 1}};
    bad_tensor("short.pt", &ok, 20, AAC_ERR_FORMAT, "shorter than its tensor",
               "storage member shorter than numel*size");
    bad_tensor("long.pt", &ok, 28, AAC_ERR_FORMAT, "take 24", "storage member longer");
    const tspec past = {"0", "FloatStorage", 6, 0, 2, {2, 3}, {4, 1}};
    bad_tensor("past.pt", &past, 24, AAC_ERR_FORMAT, "past the end", "strides past the storage");
    const tspec off = {"0", "FloatStorage", 6, 4, 1, {3}, {1}};
    bad_tensor("offset.pt", &off, 24, AAC_ERR_FORMAT, "past the end", "offset past the storage");
    const tspec neg = {"0", "FloatStorage", 6, 0, 2, {-1, 3}, {3, 1}};
    bad_tensor("neg.pt", &neg, 24, AAC_ERR_FORMAT, "negative size", "negative size");
    const tspec negs = {"0", "FloatStorage", 6, 0, 2, {2, 3}, {-3, 1}};
    bad_tensor("negstride.pt", &negs, 24, AAC_ERR_FORMAT, "negative stride", "negative stride");
    const tspec over = {"0", "FloatStorage", 6, 0, 3,
                        {(int64_t)1 << 40, (int64_t)1 << 40, 1}, {1, 1, 1}};
    bad_tensor("overflow.pt", &over, 24, AAC_ERR_FORMAT, "overflow", "overflowing numel");
    const tspec bigstride = {"0", "FloatStorage", 6, 0, 2, {2, 3}, {INT64_MAX / 2, 1}};
    bad_tensor("bigstride.pt", &bigstride, 24, AAC_ERR_FORMAT, "past the end", "huge stride");
    const tspec huge_numel = {"0", "FloatStorage", INT64_MAX / 2, 0, 1, {3}, {1}};
    bad_tensor("huge_storage.pt", &huge_numel, 24, AAC_ERR_FORMAT, "element count",
               "storage numel overflowing bytes");
    const tspec slip = {"../../etc/passwd", "FloatStorage", 6, 0, 1, {6}, {1}};
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    tensor(&p, &slip, 0);
    op(&p, '.');
    expect_fail(pkl_only("slipkey.pt", &p), AAC_ERR_FORMAT, "plain name", "storage key with ../");
    free(p.p);
    const tspec missing = {"5", "FloatStorage", 6, 0, 1, {6}, {1}};
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    tensor(&p, &missing, 0);
    op(&p, '.');
    expect_fail(pkl_only("nomember.pt", &p), AAC_ERR_FORMAT, "missing", "storage member absent");
    free(p.p);
    /* Two keys flattening to the same name. */
    p = (bb){0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, '}');
    op(&p, '(');
    ustr(&p, "a.b");
    tensor(&p, &ok, 0);
    ustr(&p, "a");
    op(&p, '}');
    ustr(&p, "b");
    tensor(&p, &ok, 0);
    op(&p, 's');
    op(&p, 'u');
    op(&p, '.');
    static float six[6];
    const char *keys[] = {"0"};
    const void *data[] = {six};
    size_t lens[] = {sizeof six};
    expect_fail(ckpt("dup.pt", &p, keys, data, lens, 1), AAC_ERR_FORMAT, "occurs twice",
                "duplicate flattened name");
    free(p.p);
}

/* ------------------------------------------------------------------ hostile zips */

static void test_bad_zips(void) {
    bb p = {0};
    op(&p, 0x80);
    op(&p, 2);
    op(&p, '}');
    op(&p, '.');
    const char *good = pkl_only("good.pt", &p);
    ta_archive *a = NULL;
    aac_error err = {0};
    CHECK_OK(ta_open(good, NULL, &a, &err), &err);
    CHECK(ta_count(a) == 0, "empty dict gives no tensors");
    ta_close(a);

    /* Cut in the middle: the central directory is gone. */
    FILE *f = fopen(good, "rb");
    static uint8_t buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    const char *cut = tmp_path("cut.pt");
    f = fopen(cut, "wb");
    if (f) {
        fwrite(buf, 1, n / 2, f);
        fclose(f);
    }
    expect_fail(cut, AAC_ERR_FORMAT, "truncated", "zip truncated in the middle");
    /* Data damaged after the header: CRC mismatch surfaces when the member is read. */
    member big[] = {{"archive/data.pkl", p.p, p.n, 0}};
    const char *crc = tmp_path("crc.pt");
    write_zip(crc, big, 1);
    f = fopen(crc, "r+b");
    n = f ? fread(buf, 1, sizeof buf, f) : 0;
    for (size_t i = 0; f && i + p.n <= n; i++)
        if (memcmp(buf + i, p.p, p.n) == 0) { /* the stored pickle: change its last byte */
            fseek(f, (long)(i + p.n - 1), SEEK_SET);
            fputc('X', f);
            break;
        }
    if (f) fclose(f);
    expect_fail(crc, AAC_ERR_FORMAT, "CRC", "member with a bad CRC");

    member slip[] = {{"../evil/data.pkl", p.p, p.n, 0}};
    write_zip(tmp_path("slip.pt"), slip, 1);
    expect_fail(tmp_path("slip.pt"), AAC_ERR_FORMAT, "zip-slip", "member ../evil/data.pkl");
    member slip2[] = {{"archive/data.pkl", p.p, p.n, 0}, {"archive/../../x", p.p, p.n, 0}};
    write_zip(tmp_path("slip2.pt"), slip2, 2);
    expect_fail(tmp_path("slip2.pt"), AAC_ERR_FORMAT, "zip-slip", "member archive/../../x");
    member abs_[] = {{"/abs/data.pkl", p.p, p.n, 0}};
    write_zip(tmp_path("abs.pt"), abs_, 1);
    expect_fail(tmp_path("abs.pt"), AAC_ERR_FORMAT, "zip-slip", "member /abs/data.pkl");
    member none[] = {{"archive/notes.txt", "hi", 2, 0}};
    write_zip(tmp_path("nopkl.pt"), none, 1);
    expect_fail(tmp_path("nopkl.pt"), AAC_ERR_FORMAT, "data.pkl", "zip without data.pkl");
    member two[] = {{"a/data.pkl", p.p, p.n, 0}, {"b/data.pkl", p.p, p.n, 0}};
    write_zip(tmp_path("two.pt"), two, 2);
    expect_fail(tmp_path("two.pt"), AAC_ERR_FORMAT, "several", "two data.pkl folders");

    /* Not a zip at all; a legacy torch.save pickle stream; a missing file; a directory. */
    const char *txt = tmp_path("plain.txt");
    f = fopen(txt, "wb");
    if (f) {
        fputs("hello, not a zip", f);
        fclose(f);
    }
    expect_fail(txt, AAC_ERR_FORMAT, "zip", "plain text file");
    const char *legacy = tmp_path("legacy.pt");
    f = fopen(legacy, "wb");
    if (f) {
        fwrite("\x80\x02\x8a\x0a", 1, 4, f);
        fclose(f);
    }
    expect_fail(legacy, AAC_ERR_UNSUPPORTED, "legacy", "legacy torch.save stream");
    expect_fail(tmp_path("does_not_exist.pt"), AAC_ERR_IO, "cannot open", "missing file");
    expect_fail(tmpdir, AAC_ERR_IO, "regular file", "a directory");

    /* Member size limit. */
    static float many[1024];
    const tspec t = {"0", "FloatStorage", 1024, 0, 1, {1024}, {1}};
    bb q = {0};
    op(&q, 0x80);
    op(&q, 2);
    tensor(&q, &t, 0);
    op(&q, '.');
    const char *keys[] = {"0"};
    const void *data[] = {many};
    size_t lens[] = {sizeof many};
    const char *path = ckpt("limit.pt", &q, keys, data, lens, 1);
    ta_limits lim = {.max_total_bytes = 1000};
    err = (aac_error){0};
    aac_status st = ta_open(path, &lim, &a, &err);
    CHECK(st == AAC_ERR_FORMAT && strstr(err.message, "limit"), "byte limit: %s", err.message);
    CHECK_OK(ta_open(path, NULL, &a, &err), &err);
    CHECK(ta_count(a) == 1 && ta_at(a, 0)->name[0] == '\0', "root tensor has the empty name");
    ta_close(a);
    free(q.p);
    free(p.p);
}

/* Arguments. */
static void test_args(void) {
    aac_error err = {0};
    ta_archive *a = (ta_archive *)&err;
    CHECK(ta_open(NULL, NULL, &a, &err) == AAC_ERR_ARG && a == NULL, "NULL path");
    CHECK(ta_open("x", NULL, NULL, &err) == AAC_ERR_ARG, "NULL out");
    ta_close(NULL);
    up_doc *d;
    CHECK(up_load(NULL, 0, "x", NULL, &d, &err) == AAC_ERR_FORMAT && d == NULL, "empty pickle");
}

/* Everything this test wrote lives in tmpdir. */
static void cleanup(void) {
    if (getenv("AAC_TEST_KEEP")) {
        printf("kept %s\n", tmpdir);
        return;
    }
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) unlink(tmp_path(e->d_name));
    if (d) closedir(d);
    if (rmdir(tmpdir) != 0) fprintf(stderr, "note: %s not removed\n", tmpdir);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/test_unpickle_XXXXXX", AACLIP_BINARY_DIR);
    if (!mkdtemp(tmpdir)) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/test_unpickle_XXXXXX");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            return 1;
        }
    }
    snprintf(pwned, sizeof pwned, "/tmp/aac_pwned_%d", (int)getpid());
    unlink(pwned);
    test_args();
    test_protocol2();
    test_protocol4();
    test_torchscript();
    test_shared_tensor();
    test_hostile_globals();
    test_depth();
    test_truncation_and_memo();
    test_bad_tensors();
    test_bad_zips();
    CHECK(access(pwned, F_OK) != 0, "%s exists: something was executed", pwned);
    cleanup();
    return tu_finish("test_unpickle");
}
