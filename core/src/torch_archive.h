/* torch_archive.h - reading PyTorch checkpoints without Python and without executing pickle
 * code (internal).
 *
 * Handles the two zip containers PyTorch writes: `torch.save` (archive/data.pkl +
 * archive/data/<key> storages, any protocol 2..5 pickle) and TorchScript `torch.jit.save`
 * (archive/data.pkl of __torch__.* module objects, archive/constants.pkl, archive/data/<key>).
 * The unpickler is restricted: it knows only the opcodes these files use and a fixed list of
 * globals (collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter,
 * torch.*Storage, torch.storage.UntypedStorage dtype forms, and __torch__.* classes, which
 * become plain attribute containers). Anything else is rejected with an error naming the
 * global; nothing is ever called. Depth, object count, string and storage sizes are bounded.
 *
 * The result is a flat list of tensors (contiguous copies, owned by the archive) named by
 * their path in the pickled structure: dict keys and module attribute names joined by '.',
 * list/tuple items by index. E.g. a state dict gives "visual.conv1.weight", a TorchScript
 * CLIP gives the same names from its module attributes, AA-CLIP's adapter checkpoint gives
 * "text_adapter.0.fc.0.weight" and "text_optimizer.state.0.exp_avg". Scalar leaves (int,
 * float, bool, str) are kept as strings under the same naming, e.g. "epoch" -> "15". */
#ifndef AAC_TORCH_ARCHIVE_H
#define AAC_TORCH_ARCHIVE_H
#include <stddef.h>
#include <stdint.h>

#include "aaclip.h"
#include "safetensors.h"

typedef struct ta_tensor {
    const char *name;
    st_dtype dtype;        /* as stored (F32, F16, BF16, F64, I64, ...) */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;      /* contiguous row-major copy (strides applied), little-endian */
    size_t nbytes;
} ta_tensor;

typedef struct ta_limits {
    size_t max_depth;          /* nesting of pickle containers (default 256) */
    size_t max_objects;        /* objects created by the unpickler (default 10 million) */
    size_t max_total_bytes;    /* sum of tensor bytes materialised (default 64 GiB) */
} ta_limits;

typedef struct ta_archive ta_archive;

/* limits may be NULL for the defaults (a zero field also means its default). The message of
 * a failure names the file and, where relevant, the zip member, the pickle offset, the global
 * or the tensor. */
aac_status ta_open(const char *path, const ta_limits *limits, ta_archive **out, aac_error *err);
void ta_close(ta_archive *a);
const char *ta_path(const ta_archive *a);
/* "torch.save" or "torchscript" */
const char *ta_kind(const ta_archive *a);
size_t ta_count(const ta_archive *a);
const ta_tensor *ta_at(const ta_archive *a, size_t i);
const ta_tensor *ta_find(const ta_archive *a, const char *name);
/* Scalar leaf as a string ("15", "0.5", "true", "text"), NULL if absent. */
const char *ta_scalar(const ta_archive *a, const char *name);
#endif
