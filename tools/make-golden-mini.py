#!/usr/bin/python3
"""make-golden-mini.py - the reduced golden reference set kept in the repository.

The golden tensors of the official AA-CLIP PyTorch implementation (../shared/golden/tiny, 67 MB)
are the oracle of the engine's tests. A clone without ../shared runs the same tests on this
reduced copy (testdata/golden-mini.tar.xz, a few MB), made only by leaving things out, never by
computing anything new:

  * the model files (clip_openclip.safetensors, the torch.save state dict, the TorchScript fp16
    archive, the Hugging Face folder) keep every tensor, but the rows of the 49408-token text
    embedding that no golden prompt uses are zeroed (181 rows are used: every id in
    tokenizer_cases.json, which lists every prompt of every class, and text.sentences.tokens);
    zeros compress to nothing. The PyTorch archives are edited in place (stored zip entries: the
    storage bytes and their CRC32), so the containers stay exactly as PyTorch wrote them;
  * golden.safetensors keeps its small tensors (text anchors, scores, every training loss,
    gradient and updated parameter, the 8-bit slices and masks) whole; image.mask becomes U8
    (its values are exactly 0 and 1); large tensors are sampled on a regular grid (the input
    image and the 518 x 518 maps every 7th pixel per axis, the 1369 patch tokens every 5th) and
    most of the 32 debug traces of the residual stream are left out. The metadata entry
    "sampled" says, for each sampled tensor, which axes were sampled with which stride, so a
    test compares its full result at exactly those positions.
  * the adapters, the adapter checkpoints (.pth), the tokenizer files and cases are copied.

  tools/make-golden-mini.py [SHARED_DIR] [OUT]   (defaults: ../shared, testdata/golden-mini.tar.xz)

Deterministic: the same inputs give the same archive (fixed member order, times and owners).
"""
import hashlib
import io
import json
import lzma
import os
import struct
import sys
import tarfile
import zipfile
import zlib

import numpy as np

SAMPLE_PIXELS = 7
SAMPLE_TOKENS = 5
TRACES_KEPT = ("visual.embed", "visual.block00.out", "visual.block05.adapted", "visual.block23.out")
ST_DTYPES = {"F32": np.float32, "F16": np.float16, "U8": np.uint8, "I32": np.int32, "I64": np.int64}


def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    tensors = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=ST_DTYPES[h["dtype"]]).reshape(h["shape"])
        tensors[name] = (h["dtype"], arr)
    order = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    return tensors, order, meta


def st_bytes(tensors, order, meta):
    header, blobs, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name in order:
        dtype, arr = tensors[name]
        b = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def used_token_ids(tiny, golden):
    ids = set()
    for case in json.load(open(os.path.join(tiny, "tokenizer_cases.json"))):
        ids.update(case["ids"])
    ids.update(int(x) for x in golden["text.sentences.tokens"][1].ravel())
    return np.array(sorted(ids), dtype=np.int64)


def prune_rows(arr, keep):
    out = np.zeros_like(arr)
    out[keep] = arr[keep]
    return out


def prune_model(path, emb_name, keep):
    t, order, meta = st_read(path)
    dtype, emb = t[emb_name]
    t[emb_name] = (dtype, prune_rows(emb, keep))
    return st_bytes(t, order, meta), emb


def patch_zip(path, old, new):
    """The archive with the one stored entry whose bytes are `old` replaced by `new` (same size),
    its CRC32 fixed in the local and central headers."""
    raw = bytearray(open(path, "rb").read())
    z = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    hits = [i for i in z.infolist() if i.file_size == len(old) and z.read(i) == old]
    if len(hits) != 1:
        sys.exit(f"{path}: {len(hits)} entries hold the embedding storage (1 expected)")
    info = hits[0]
    if info.compress_type != zipfile.ZIP_STORED:
        sys.exit(f"{path}: {info.filename} is compressed")
    lh = info.header_offset
    name_len, extra_len = struct.unpack("<HH", raw[lh + 26:lh + 30])
    data = lh + 30 + name_len + extra_len
    assert bytes(raw[data:data + len(old)]) == old
    raw[data:data + len(new)] = new
    crc = zlib.crc32(new) & 0xFFFFFFFF
    struct.pack_into("<I", raw, lh + 14, crc)
    cd = raw.find(b"PK\x01\x02" + raw[lh + 4:lh + 6])  # first central entry candidate
    # find this entry's central directory record by its local header offset
    pos = struct.unpack("<I", raw[-22 + 16:-22 + 20])[0] if raw[-22:-18] == b"PK\x05\x06" else None
    if pos is None:  # zip64 end record: search backwards for the central directory
        pos = raw.find(b"PK\x01\x02")
    while True:
        pos = raw.find(b"PK\x01\x02", pos)
        if pos < 0:
            sys.exit(f"{path}: central record of {info.filename} not found")
        n, m, k = struct.unpack("<HHH", raw[pos + 28:pos + 34])
        fname = bytes(raw[pos + 46:pos + 46 + n]).decode()
        if fname == info.filename:
            struct.pack_into("<I", raw, pos + 16, crc)
            break
        pos += 46 + n + m + k
    del cd
    check = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    if check.testzip() is not None or check.read(info.filename) != new:
        sys.exit(f"{path}: patched archive does not verify")
    return bytes(raw)


def sample(arr, axes_strides):
    idx = [slice(None)] * arr.ndim
    for axis, stride in axes_strides:
        idx[axis] = slice(None, None, stride)
    return np.ascontiguousarray(arr[tuple(idx)])


def reduce_golden(golden, order, meta):
    out, sampled = {}, {}
    for name in order:
        dtype, arr = golden[name]
        plan = None
        if name.startswith("visual.") and (name.startswith("visual.block") or name in ("visual.embed", "visual.ln_pre")):
            if name not in TRACES_KEPT:
                continue
            plan = [(0, SAMPLE_TOKENS)]
        elif name == "image.input" or name.startswith("map."):
            plan = [(arr.ndim - 2, SAMPLE_PIXELS), (arr.ndim - 1, SAMPLE_PIXELS)]
        elif name == "image.mask":
            u8 = arr.astype(np.uint8)
            if not np.array_equal(u8.astype(np.float32), arr):
                sys.exit("image.mask is not 0/1")
            out[name] = ("U8", u8)
            continue
        elif name == "pos_embed_resized":
            plan = [(0, SAMPLE_TOKENS)]
        elif arr.ndim == 3 and arr.shape[1] == 1369:  # seg tokens, patch projections, surgery features
            plan = [(1, SAMPLE_TOKENS)]
        if plan:
            out[name] = (dtype, sample(arr, plan))
            sampled[name] = [[a, s] for a, s in plan]
        else:
            out[name] = (dtype, arr)
    meta = dict(meta or {})
    meta["sampled"] = json.dumps(sampled, sort_keys=True)
    meta["reduced_by"] = "tools/make-golden-mini.py (rows of unused tokens zeroed, large tensors sampled)"
    return st_bytes(out, [n for n in order if n in out], meta)


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else "../shared"
    out_path = sys.argv[2] if len(sys.argv) > 2 else "testdata/golden-mini.tar.xz"
    tiny = os.path.join(shared, "golden", "tiny")
    golden, gorder, gmeta = st_read(os.path.join(tiny, "golden.safetensors"))
    keep = used_token_ids(tiny, golden)

    files = {}
    files["clip_openclip.safetensors"], emb = prune_model(os.path.join(tiny, "clip_openclip.safetensors"),
                                                          "token_embedding.weight", keep)
    files["hf/model.safetensors"], hf_emb = prune_model(os.path.join(tiny, "hf", "model.safetensors"),
                                                        "text_model.embeddings.token_embedding.weight", keep)
    assert np.array_equal(emb, hf_emb)
    pruned = prune_rows(emb, keep)
    files["clip_openclip_state_dict.pt"] = patch_zip(os.path.join(tiny, "clip_openclip_state_dict.pt"),
                                                     emb.tobytes(), pruned.tobytes())
    files["clip_torchscript_fp16.pt"] = patch_zip(os.path.join(tiny, "clip_torchscript_fp16.pt"),
                                                  emb.astype(np.float16).tobytes(),
                                                  pruned.astype(np.float16).tobytes())
    files["golden.safetensors"] = reduce_golden(golden, gorder, gmeta)
    for name in ("aaclip_adapters.safetensors", "text_adapter.pth", "image_adapter_15.pth",
                 "tokenizer_cases.json", "hf/config.json", "hf/vocab.json", "hf/merges.txt"):
        files[name] = open(os.path.join(tiny, name), "rb").read()

    manifest = {"source": "golden/tiny of the shared ground truth", "token_rows_kept": len(keep),
                "files": {n: hashlib.sha256(files[n]).hexdigest() for n in sorted(files)}}
    files["MANIFEST.json"] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo("golden-mini/" + name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    data = lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out_path)
    print(f"{out_path}: {len(data) / 1e6:.2f} MB ({len(buf.getvalue()) / 1e6:.1f} MB unpacked), "
          f"{len(keep)} token rows kept")


if __name__ == "__main__":
    main()
