#!/usr/bin/python3
"""Expected values for core/tests/test_metrics.c, computed with scikit-learn and numpy float32
(the reference's evaluation): reads the fixture the test wrote, prints one line per case."""
import sys
import warnings

import numpy as np
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

warnings.simplefilter("ignore")


def metrics(labels, scores):
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    auc = roc_auc_score(labels, scores) if 0 < labels.sum() < len(labels) else float("nan")
    ap = average_precision_score(labels, scores) if labels.sum() > 0 else float("nan")
    return auc, ap


def f1_max(labels, scores):
    """Best F1 of "score >= t" over the distinct scores, and the highest t reaching it."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    P = int(labels.sum())
    if P == 0:
        return float("nan"), float("nan")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    last = np.r_[s[1:] != s[:-1], True]  # end of each tie group
    f1 = 2.0 * tp[last] / (tp[last] + fp[last] + P)
    k = int(np.argmax(f1))  # first = highest threshold among equal maxima
    return float(f1[k]), float(s[last][k])


def norm(x):
    x = np.asarray(x, dtype=np.float32)
    mn, mx = x.min(), x.max()
    return (x - mn) / (mx - mn) if mx > mn else np.zeros_like(x)


LEVELS = 100


def levels(maps):
    """Each image kept at 16 bits over its own range, then normalised over the set and put on the
    threshold grid, in float32 as aaclip does."""
    f = np.float32
    mn = min(m.min() for m in maps)
    d = f(max(m.max() for m in maps) - mn)
    out = []
    for m in maps:
        lo, hi = m.min(), m.max()
        scale = f(65535) / f(hi - lo) if hi > lo else f(0)
        q = np.floor((m - lo) * scale + f(0.5)).astype(np.float32)
        t = q / f(65535)
        raw = lo * (f(1) - t) + hi * t
        p = (raw - mn) / d if d > 0 else np.zeros_like(raw)
        thr = np.arange(1, LEVELS + 1, dtype=np.float32) / f(LEVELS)
        out.append(np.searchsorted(thr, p, side="right").astype(np.int64))  # thresholds <= p
    return out


def region_metric(maps, masks, min_px):
    """Lesion-wise detection: best F1 over thresholds k / 100 of regions (8-connected) centred
    in lesions; lesions below min_px are not counted."""
    eight = np.ones((3, 3), dtype=int)
    tp = np.zeros(LEVELS + 1, np.int64)
    fp = np.zeros(LEVELS + 1, np.int64)
    found = np.zeros(LEVELS + 1, np.int64)
    lesions = 0
    for lev, mask in zip(levels(maps), masks):
        gt, n = ndimage.label(mask, eight)
        sizes = np.bincount(gt.ravel(), minlength=n + 1)
        lesions += int((sizes[1:] >= min_px).sum())
        for k in range(1, LEVELS + 1):
            cc, nr = ndimage.label(lev >= k, eight)
            hit = set()
            for c in ndimage.center_of_mass(np.ones(cc.shape), cc, range(1, nr + 1)):
                g = gt[int(np.floor(c[0] + 0.5)), int(np.floor(c[1] + 0.5))]
                if g == 0:
                    fp[k] += 1
                elif sizes[g] >= min_px:
                    tp[k] += 1
                    hit.add(g)
            found[k] += len(hit)
    if lesions == 0:
        return "nan nan nan nan 0 0"
    best = (-1.0, 0, 0.0, 0.0)
    for k in range(LEVELS, 0, -1):
        p = tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else 0.0
        r = found[k] / lesions
        f1 = 2 * p * r / (p + r) if p + r > 0 else 0.0
        if f1 > best[0]:
            best = (f1, k, p, r)
    f1, k, p, r = best
    if f1 <= 0:
        return "0 nan nan nan %d 0" % lesions
    return "%.17g %.9g %.17g %.17g %d %d" % (f1, np.float32(k) / np.float32(LEVELS), p, r, lesions, tp[k] + fp[k])


def main():
    lines = open(sys.argv[1]).read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        head = lines[i].split()
        i += 1
        if not head:
            continue
        if head[0] == "B":  # binary metrics on raw scores (AP 0 without positives, as sklearn)
            n = int(head[1])
            rows = [lines[i + k].split() for k in range(n)]
            i += n
            s = np.array([float(r[0]) for r in rows], dtype=np.float32)
            y = np.array([int(r[1]) for r in rows])
            auc = roc_auc_score(y, s) if 0 < y.sum() < n else float("nan")
            ap = average_precision_score(y, s) if y.sum() > 0 else 0.0
            out.append("%.17g %.17g" % (auc, ap))
        elif head[0] == "R":  # lesion-wise detection, one class
            nimg, min_px = int(head[1]), int(head[2])
            maps, masks = [], []
            for _ in range(nimg):
                w, h = map(int, lines[i].split())
                i += 1
                rows = [lines[i + k].split() for k in range(w * h)]
                i += w * h
                maps.append(np.array([float(r[0]) for r in rows], dtype=np.float32).reshape(h, w))
                masks.append(np.array([int(r[1]) for r in rows]).reshape(h, w))
            out.append(region_metric(maps, masks, min_px))
        elif head[0] == "P":  # the evaluation protocol
            nimg = int(head[1])
            classes = {}
            for _ in range(nimg):
                name, dom, npix, det, lab = lines[i].split()
                i += 1
                rows = [lines[i + k].split() for k in range(int(npix))]
                i += int(npix)
                c = classes.setdefault(name, {"dom": int(dom), "maps": [], "masks": [], "det": [], "lab": []})
                c["maps"].append(np.array([float(r[0]) for r in rows], dtype=np.float32))
                c["masks"].append(np.array([int(r[1]) for r in rows]))
                c["det"].append(np.float32(float(det)))
                c["lab"].append(int(lab))
            for name, c in classes.items():
                sizes = [len(m) for m in c["maps"]]
                allmaps = norm(np.concatenate(c["maps"]))
                pa, pp = metrics(np.concatenate(c["masks"]), allmaps)
                parts = np.split(allmaps, np.cumsum(sizes)[:-1])
                mmax = np.array([p.max() for p in parts], dtype=np.float32)
                score = mmax if c["dom"] == 0 else 0.5 * mmax + 0.5 * norm(c["det"])
                ia, ip = metrics(c["lab"], score)
                f1, thr = f1_max(np.concatenate(c["masks"]), allmaps)
                raw = np.concatenate(c["maps"])
                out.append("%s %.17g %.17g %.17g %.17g %.17g %.17g %.9g %.9g" %
                           (name, pa, pp, ia, ip, f1, thr, raw.min(), raw.max()))
    open(sys.argv[2], "w").write("\n".join(out) + "\n")


main()
