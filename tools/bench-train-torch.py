#!/usr/bin/python3
"""bench-train-torch.py - seconds per stage-2 training step of the OFFICIAL AA-CLIP PyTorch code.

The reference point for the C step (build/datasets/aaclip-bench-train --stage 2): same model shape
(ViT-L/14-336 with random weights, run at 518 px: grid 37, 1370 tokens; text tower 768 x 12),
batch 2 (image 0 with a lesion square, image 1 without), class "scan".

OFFICIAL CODE, IMPORTED, NOT RE-IMPLEMENTED. The official repository github.com/Mwxinnn/AA-CLIP
(commit below) vendors its own copy of the open_clip model code (model/*.py), so no pip-only
package is needed. At run time this script extracts that commit (`git archive`) from a local git
directory into a temporary folder and runs from it:
  * model/model.py, model/transformer.py, model/adapter.py, model/adapter_modules.py,
    model/tokenizer.py: imported as they are (package `model`);
  * train.py: the function train_image_adapter (the stage-2 loop, verbatim), taken out with `ast`
    because the module's imports (ipdb, kornia, cv2, ...) are not installable here;
  * forward_utils.py: FocalLoss, BinaryDiceLoss, calculate_similarity_map, calculate_seg_loss,
    get_adapted_single_class_text_embedding, get_adapted_text_embedding (+ the prompt lists),
    taken out with `ast` (the module imports cv2, kornia, sklearn, pandas);
  * utils.py: setup_seed (`ast`); dataset/constants.py: PROMPTS, CLASS_NAMES, REAL_NAMES.
Stand-ins (none of them on the timed path):
  * `ipdb` (imported, never called) and `torchvision.transforms` (imported by tokenizer.py, unused
    by tokenize()) are empty stub modules when not installed; `ftfy.fix_text` is the identity when
    ftfy is absent (exact for the ASCII prompts used); `tqdm` (progress bar around the loader) is
    replaced by the identity so that nothing is drawn during timing.
  * create_model(pretrained="openai") needs OpenAI's ViT-L-14-336px.pt; instead this script does
    what that path does with a random backbone: build CLIP(**config) at the native 336 (seeded
    random init), take its state dict as "the checkpoint", build CLIP(**config) with
    image_size=518, official resize_pos_embed (bicubic, antialias) 24 -> 37, load_state_dict
    strict. GELU (quick_gelu=False) as in the official path.
  * the data loader is a fixed batch yielded --steps times; the step time is the wall time
    between consecutive batch requests of the official loop (forward, losses, zero_grad,
    backward, Adam step, scheduler step). At the end of its epoch the official loop torch.saves
    the adapters to a temporary folder (not timed, deleted).
Exactly as in the official train.py: setup_seed(111) (incl. use_deterministic_algorithms),
AdaptedCLIP(text/image adapt weight 0.1, until 3/6, relu=False), model.eval(), Adam over
model.image_adapter.parameters() lr 5e-4 betas (0.5, 0.999), MultiStepLR [16000, 32000] x0.5,
stage-2 anchors T from get_adapted_text_embedding(model, ...) under no_grad (dataset "Brain",
class "Brain" -> "scan"; timed apart, printed as torch-anchors), CE(d @ T, label) + seg loss of
each of the 4 levels. NOTE: the official code never freezes the CLIP backbone (no
requires_grad_(False), lock() is not called), so loss.backward() also computes weight gradients
of the whole vision tower (never used, never zeroed). That is the default here (it is what the
official step costs); --frozen-backbone turns those off (NOT official; adapter-only gradients).

Configs: vit-l-14-336 (default; official model_configs/ViT-L-14-336.json, run at 518: the
official AdaptedCLIP hard-codes 1024/768 and 24/12 blocks, used unmodified); golden-tiny (the
shape of ../shared/golden/tiny and `aaclip-bench-train --config tiny`: E 24, W_v 48 / 24 blocks /
head 16, W_t 32 / 2 heads / 12 blocks, 336 -> 518); tiny (quick check: E 32, W_v 64 / 2 blocks /
head 32, patch 8, 48 -> 64 px, W_t 64 / 2 heads / 2 blocks, levels 1,2). For the two small
configs the hard-coded numbers in model/adapter.py are replaced by the config's (source patch,
checked to hit every spot exactly once).

  /usr/bin/python3 tools/bench-train-torch.py [--config vit-l-14-336|golden-tiny|tiny]
      [--threads N] [--steps N] [--seed N] [--frozen-backbone] [--git-dir DIR] [--commit SHA]
Needs Debian's python3-torch and python3-regex (not installed by install-deps.sh: a benchmark
tool, not part of the tests) and a clone of the official repository (--git-dir, any clone that
holds the commit). Output lines: torch-model:, torch-anchors: seconds=..., torch-step: stage=2 step=K seconds=...,
torch-peak-rss-mib: ...
"""
import argparse
import ast
import functools
import importlib.util
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types

OFFICIAL_REPO = "https://github.com/Mwxinnn/AA-CLIP"
OFFICIAL_COMMIT = "53db195f230442aa118c246876c94ba1c76139cc"
DEFAULT_GIT_DIR = "/work/.mirror/Mwxinnn+AA-CLIP/repo"

CONFIGS = {
    # name: (model config as the official model_configs json, run size, AdaptedCLIP overrides)
    "vit-l-14-336": (None, 518, {}),
    "golden-tiny": ({"embed_dim": 24,
                     "vision_cfg": {"image_size": 336, "layers": 24, "width": 48, "head_width": 16,
                                    "patch_size": 14},
                     "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                                  "layers": 12}}, 518, {}),
    "tiny": ({"embed_dim": 32,
              "vision_cfg": {"image_size": 48, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
              "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}},
             64, {"levels": [1, 2], "image_adapt_until": 2, "text_adapt_until": 1}),
}


def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def extract(git_dir, commit, dest):
    paths = ["model", "forward_utils.py", "train.py", "utils.py", "dataset/constants.py"]
    if not os.path.isdir(git_dir):
        sys.exit(f"no git directory {git_dir}: fetch {OFFICIAL_REPO} (e.g. the fetch tool, "
                 f"github:Mwxinnn/AA-CLIP) and pass --git-dir")
    arch = subprocess.run(["git", f"--git-dir={git_dir}", "archive", "--format=tar", commit] + paths,
                          check=True, stdout=subprocess.PIPE).stdout
    subprocess.run(["tar", "-x", "-C", dest], input=arch, check=True)


def pick(path, names, namespace):
    """Execute only the named top-level definitions/assignments of an official source file."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    keep, found = [], set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names:
            keep.append(node), found.add(node.name)
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id in names for t in node.targets):
            keep.append(node), found.update(t.id for t in node.targets)
    missing = set(names) - found
    if missing:
        sys.exit(f"{path}: not found: {sorted(missing)}")
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), namespace)
    return namespace


def stub_missing_modules():
    notes = []

    def have(name):
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    if not have("ipdb"):  # imported by the official modules, never called
        m = types.ModuleType("ipdb")
        m.set_trace = lambda *a, **k: None
        sys.modules["ipdb"] = m
        notes.append("ipdb")
    if not have("torchvision"):  # tokenizer.py imports transforms it does not use in tokenize()
        tv, tr = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
        for n in ("Compose", "Resize", "CenterCrop", "ToTensor", "Normalize"):
            setattr(tr, n, None)
        tv.transforms = tr
        sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tr
        notes.append("torchvision.transforms")
    if not have("ftfy"):  # fix_text is the identity on the ASCII prompts used here
        m = types.ModuleType("ftfy")
        m.fix_text = lambda s: s
        sys.modules["ftfy"] = m
        notes.append("ftfy (identity)")
    if not have("tqdm"):
        m = types.ModuleType("tqdm")
        m.tqdm = lambda it, *a, **k: it
        sys.modules["tqdm"] = m
    if not have("regex"):
        sys.exit("python3-regex is needed by the official tokenizer (apt-get install python3-regex)")
    return notes


def patch_adapter(src_dir, cfg, vitl):
    """The official AdaptedCLIP hard-codes ViT-L/14 sizes; for a small config put the config's in."""
    path = os.path.join(src_dir, "model", "adapter.py")
    with open(path) as f:
        text = f.read()
    subs = [("SimpleAdapter(1024, 1024)", "SimpleAdapter(_VW, _VW)", 1),
            ("SimpleProj(1024, 768, relu)", "SimpleProj(_VW, _E, relu)", 2),
            ("SimpleAdapter(768, 768)", "SimpleAdapter(_TW, _TW)", 1),
            ("SimpleProj(768, 768, relu=True)", "SimpleProj(_TW, _E, relu=True)", 1),
            ("for i in range(24):", "for i in range(len(self.image_encoder.transformer.resblocks)):", 1),
            ("for i in range(12):", "for i in range(len(self.clipmodel.transformer.resblocks)):", 1)]
    for old, new, n in subs:
        if text.count(old) != n:
            sys.exit(f"model/adapter.py: expected {n} x {old!r}, found {text.count(old)}")
    if vitl:
        v, t = cfg["vision_cfg"], cfg["text_cfg"]
        if (v["width"], v["layers"], t["width"], t["layers"], cfg["embed_dim"]) != (1024, 24, 768, 12, 768):
            sys.exit("model config does not match the sizes hard-coded in model/adapter.py")
        return False
    for old, new, n in subs:
        text = text.replace(old, new)
    text = text.replace("from .adapter_modules import SimpleAdapter, SimpleProj\n",
                        "from .adapter_modules import SimpleAdapter, SimpleProj\n"
                        f"_VW, _TW, _E = {cfg['vision_cfg']['width']}, {cfg['text_cfg']['width']}, "
                        f"{cfg['embed_dim']}  # bench-train-torch.py: small config\n", 1)
    with open(path, "w") as f:
        f.write(text)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="vit-l-14-336", choices=sorted(CONFIGS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--seed", type=int, default=111, help="official train.py default")
    ap.add_argument("--frozen-backbone", action="store_true",
                    help="NOT official: no weight gradients for the CLIP backbone")
    ap.add_argument("--git-dir", default=DEFAULT_GIT_DIR)
    ap.add_argument("--commit", default=OFFICIAL_COMMIT)
    args = ap.parse_args()

    # as the official train.py does (there with cpu_num = 4), before torch is imported
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
              "NUMEXPR_NUM_THREADS"):
        os.environ[k] = str(args.threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

    tmp = tempfile.mkdtemp(prefix="aaclip-official-")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp):
    src = os.path.join(tmp, "src")
    os.makedirs(src)
    extract(args.git_dir, args.commit, src)
    notes = stub_missing_modules()
    import json
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from torch.optim.lr_scheduler import MultiStepLR
    torch.set_num_threads(args.threads)

    cfg, img_size, adapter_kw = CONFIGS[args.config]
    vitl = cfg is None
    if vitl:
        with open(os.path.join(src, "model", "model_configs", "ViT-L-14-336.json")) as f:
            cfg = json.load(f)
    cfg = json.loads(json.dumps(cfg))
    patched = patch_adapter(src, cfg, vitl)

    sys.path.insert(0, src)
    from model.model import CLIP, resize_pos_embed, get_cast_dtype
    from model.adapter import AdaptedCLIP
    from model.tokenizer import tokenize
    spec = importlib.util.spec_from_file_location("aaclip_constants", os.path.join(src, "dataset", "constants.py"))
    constants = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(constants)

    fu = pick(os.path.join(src, "forward_utils.py"),
              ["FocalLoss", "BinaryDiceLoss", "prompt", "prompt_normal", "prompt_abnormal", "prompt_state",
               "prompt_templates", "get_adapted_single_class_text_embedding", "get_adapted_text_embedding",
               "calculate_similarity_map", "focal_loss", "dice_loss", "calculate_seg_loss"],
              {"np": np, "torch": torch, "nn": nn, "F": F, "PROMPTS": constants.PROMPTS,
               "CLASS_NAMES": constants.CLASS_NAMES, "REAL_NAMES": constants.REAL_NAMES, "tokenize": tokenize})
    tr = pick(os.path.join(src, "train.py"), ["train_image_adapter"],
              {"os": os, "np": np, "tqdm": lambda it: it, "logging": logging, "torch": torch, "nn": nn, "F": F,
               "DataLoader": DataLoader, "calculate_similarity_map": fu["calculate_similarity_map"],
               "calculate_seg_loss": fu["calculate_seg_loss"]})
    ut = pick(os.path.join(src, "utils.py"), ["setup_seed"],
              {"os": os, "random": __import__("random"), "np": np, "torch": torch})

    ut["setup_seed"](args.seed)  # official: first thing in main()
    device = torch.device("cpu")
    t0 = time.perf_counter()
    # create_model(..., pretrained="openai") with a random "checkpoint" of the native size
    native_cfg = json.loads(json.dumps(cfg))
    src_model = CLIP(**native_cfg, cast_dtype=get_cast_dtype("fp32"))
    state_dict = src_model.state_dict()
    del src_model
    cfg["vision_cfg"]["image_size"] = img_size
    clip_model = CLIP(**cfg, cast_dtype=get_cast_dtype("fp32"))
    resize_pos_embed(state_dict, clip_model)
    clip_model.load_state_dict(state_dict, strict=True)
    del state_dict
    clip_model.to(device=device)
    clip_model.eval()
    model = AdaptedCLIP(clip_model=clip_model, text_adapt_weight=0.1, image_adapt_weight=0.1,
                        text_adapt_until=adapter_kw.get("text_adapt_until", 3),
                        image_adapt_until=adapter_kw.get("image_adapt_until", 6),
                        relu=False, **({"levels": adapter_kw["levels"]} if "levels" in adapter_kw else {})).to(device)
    model.eval()
    if args.frozen_backbone:
        model.clipmodel.requires_grad_(False)
    image_optimizer = torch.optim.Adam(model.image_adapter.parameters(), lr=0.0005, betas=(0.5, 0.999))
    image_scheduler = MultiStepLR(image_optimizer, milestones=[16000, 32000], gamma=0.5)
    grid = clip_model.visual.grid_size[0]
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    print(f"torch-model: config={args.config} W_v={v['width']} blocks={v['layers']} patch={v['patch_size']} "
          f"size={img_size} grid={grid} tokens={grid * grid + 1} W_t={t['width']}x{t['layers']} E={cfg['embed_dim']} "
          f"threads={torch.get_num_threads()} torch={torch.__version__} official={args.commit[:12]}"
          f"{' adapter-sizes-patched' if patched else ''}{' FROZEN-BACKBONE(not official)' if args.frozen_backbone else ''}"
          f" build_seconds={time.perf_counter() - t0:.2f}"
          + (f" stubs={','.join(notes)}" if notes else ""), flush=True)

    # stage-2 anchors, as train.py main() after stage 1: fixed, no grad
    t0 = time.perf_counter()
    with torch.no_grad():
        text_embeddings = fu["get_adapted_text_embedding"](model, "Brain", device)  # Brain -> "scan"
    print(f"torch-anchors: seconds={time.perf_counter() - t0:.3f} (16 prompts through the text tower)", flush=True)

    # batch like aaclip-bench-train: pixels uniform in [-2, 2), image 0 with a lesion square
    B, S = 2, img_size
    g = torch.Generator().manual_seed(7)
    image = torch.rand(B, 3, S, S, generator=g) * 4 - 2
    mask = torch.zeros(B, 1, S, S)
    mask[0, 0, S // 3:S // 2, S // 3:S // 2] = 1
    batch = {"image": image, "mask": mask, "label": torch.tensor([1, 0], dtype=torch.int64),
             "class_name": ["Brain", "Brain"]}

    class TimedLoader:
        """Yields the batch; a step is the time between two batch requests of the official loop."""

        def __iter__(self):
            for s in range(args.steps):
                t = time.perf_counter()
                yield batch
                dt = time.perf_counter() - t
                print(f"torch-step: stage=2 step={s + 1} seconds={dt:.3f} batch={B} rss_mib={rss_mib():.0f}",
                      flush=True)

    logger = logging.getLogger("bench-train-torch")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    losses = []

    class Grab(logging.Handler):
        def emit(self, record):
            m = record.getMessage()
            if m.startswith("loss: "):
                losses.append(m[6:])

    logger.addHandler(Grab())
    save = os.path.join(tmp, "ckpt")
    os.makedirs(save)
    tr["train_image_adapter"](model=model, text_embeddings=text_embeddings, train_loader=TimedLoader(),
                              optimizer=image_optimizer, scheduler=image_scheduler, device=device, start_epoch=0,
                              save_path=save, image_epoch=1, img_size=img_size, logger=logger)
    print(f"torch-loss-mean: {losses[0] if losses else '?'} (mean over the {args.steps} steps)")
    adam_steps = {int(st["step"]) for st in image_optimizer.state.values()}
    bb = [p for p in model.clipmodel.parameters() if p.grad is not None]
    print(f"torch-grads: adapter_tensors={sum(1 for p in model.image_adapter.parameters() if p.grad is not None)} "
          f"adam_steps={sorted(adam_steps)} backbone_tensors_with_grad={len(bb)} "
          f"backbone_grad_mib={sum(p.numel() for p in bb) * 4 / 2**20:.0f}")
    print(f"torch-peak-rss-mib: {rss_mib():.0f}", flush=True)


if __name__ == "__main__":
    main()
