#!/usr/bin/python3
"""Expected values for core/tests/test_metrics.c, computed with scikit-learn and numpy float32
(the reference's evaluation): reads the fixture the test wrote, prints one line per case."""
import sys
import warnings

import numpy as np
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
