/* unpickle.h - a restricted, non-executing pickle reader for PyTorch checkpoints (internal).
 *
 * Decodes the protocol 2..5 opcodes that torch.save and torch.jit.save emit into a small value
 * tree. GLOBAL / STACK_GLOBAL resolve only against a fixed allow-list (collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter[_with_state], torch.<T>Storage,
 * torch.UntypedStorage and __torch__.* TorchScript classes); REDUCE, NEWOBJ and BUILD are
 * interpreted for those alone, and persistent ids must be PyTorch storage references. Any
 * other global is rejected with an error naming it; nothing is ever called or imported.
 *
 * All values live in one arena owned by the up_doc and are freed together, so shared (memoised)
 * and even cyclic references are harmless here; consumers walking the tree must bound their
 * own depth and visit count (up_value.depth is only a hint: a list can still grow after it
 * was inserted somewhere, and memo references can form cycles). */
#ifndef AAC_UNPICKLE_H
#define AAC_UNPICKLE_H
#include <stddef.h>
#include <stdint.h>

#include "aaclip.h"
#include "safetensors.h"

typedef enum up_kind {
    UP_NONE, UP_BOOL, UP_INT, UP_FLOAT, UP_STR, UP_BYTES,
    UP_TUPLE, UP_LIST, UP_DICT, UP_ODICT,
    UP_TENSOR,  /* torch._utils._rebuild_tensor_v2 result (parameters unwrap to this) */
    UP_OBJECT,  /* __torch__.* instance; attrs is its BUILD state dict (or NULL) */
    UP_STORAGE, /* persistent id ('storage', torch.<T>Storage, key, location, numel) */
    UP_GLOBAL   /* an allow-listed global not (yet) called */
} up_kind;

typedef struct up_value up_value;

typedef struct up_tensor {
    up_value *storage;          /* UP_STORAGE */
    int64_t offset;             /* in elements */
    int ndim;
    int64_t size[ST_MAX_DIMS];
    int64_t stride[ST_MAX_DIMS]; /* in elements, non-negative */
    int64_t numel;
} up_tensor;

typedef struct up_storage {
    st_dtype dtype;
    const char *key;            /* member name under <prefix>/data/ */
    int64_t numel;              /* elements of dtype */
} up_storage;

struct up_value {
    up_kind kind;
    uint32_t depth;             /* container nesting seen at insertion time (hint only) */
    union {
        int b;
        int64_t i;
        double f;
        struct { char *ptr; size_t len; } s;                 /* STR (NUL-terminated), BYTES */
        struct { up_value **items; size_t n, cap; } seq;     /* TUPLE, LIST */
        struct { up_value **keys, **vals; size_t n, cap; } map; /* DICT, ODICT */
        up_tensor t;
        struct { const char *cls; up_value *attrs; } obj;    /* attrs: DICT/ODICT or NULL */
        up_storage stg;
        struct { int id; st_dtype dtype; const char *name; } g;
    } u;
};

typedef struct up_limits {
    size_t max_depth;   /* container nesting and MARK nesting */
    size_t max_objects; /* values created, stack and memo entries */
} up_limits;

typedef struct up_doc up_doc;

/* Parses `len` bytes. `label` prefixes every error message (e.g. "model.pt: data.pkl"); the
 * messages add the byte offset. On failure *out is NULL. */
aac_status up_load(const void *data, size_t len, const char *label, const up_limits *lim,
                   up_doc **out, aac_error *err);
const up_value *up_root(const up_doc *d);
void up_free(up_doc *d);
const char *up_kind_name(up_kind k);
#endif
