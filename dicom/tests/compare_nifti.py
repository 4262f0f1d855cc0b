#!/usr/bin/python3
"""compare_nifti.py OURS_DIR REF.nii... : every reference NIfTI must match a distinct file in
OURS_DIR with the same voxel values (after each header's scaling) and the same affine within
1e-3 mm, compared in world space: our grid is mapped onto the reference's (dcm2niix flips rows
and slices) by the signed permutation + integer shift that inv(A_ours) @ A_ref must be.
Prints one line per reference; exit 0 when all match. Debian's python3-nibabel + numpy."""
import glob
import os
import sys

import nibabel as nib
import numpy as np

AFFINE_TOL = 1e-3  # mm


def compare(ours_path, ref_path):
    """None when equal, else a reason."""
    ours, ref = nib.load(ours_path), nib.load(ref_path)
    A, R = ours.affine, ref.affine
    if ours.ndim != ref.ndim or ours.shape[3:] != ref.shape[3:]:
        return "shape %s vs %s" % (ours.shape, ref.shape)
    M = np.linalg.inv(A) @ R  # reference voxel -> our voxel
    P = np.round(M[:3, :3])
    t = np.round(M[:3, 3])
    if not (np.all(np.abs(P).sum(axis=0) == 1) and np.all(np.abs(P).sum(axis=1) == 1)):
        return "grids are not a permutation of each other:\n%s" % M.round(4)
    Mr = np.eye(4)
    Mr[:3, :3], Mr[:3, 3] = P, t
    err = np.abs(A @ Mr - R).max()
    if err > AFFINE_TOL:
        return "affine differs by %.4g mm\nours (reoriented):\n%s\nref:\n%s" % (err, (A @ Mr).round(4), R.round(4))
    a, r = ours.get_fdata(dtype=np.float64), ref.get_fdata(dtype=np.float64)
    ijk = np.indices(r.shape[:3]).reshape(3, -1)
    src = (P @ ijk + t[:, None]).astype(int)
    for d in range(3):
        if src[d].min() < 0 or src[d].max() >= a.shape[d]:
            return "reference grid does not fit ours (shape %s vs %s)" % (ours.shape, ref.shape)
    tail = r.shape[3:]
    a2 = a[src[0], src[1], src[2]].reshape(r.shape[:3] + tail)
    diff = np.abs(a2 - r)
    tol = max(1e-3, 2e-5 * float(np.abs(r).max()))
    if diff.max() > tol:
        idx = np.unravel_index(np.argmax(diff), diff.shape)
        return "voxels differ: max |diff| %.6g at %s (ours %.6g, ref %.6g), tolerance %.3g" % (
            diff.max(), idx, a2[idx], r[idx], tol)
    return None


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    ours_dir, refs = sys.argv[1], sys.argv[2:]
    ours = sorted(glob.glob(os.path.join(ours_dir, "*.nii")) + glob.glob(os.path.join(ours_dir, "*.nii.gz")))
    used, failed = set(), 0
    for ref in refs:
        reasons = []
        for o in ours:
            if o in used:
                continue
            why = compare(o, ref)
            if why is None:
                used.add(o)
                print("MATCH %s == %s" % (os.path.basename(ref), os.path.basename(o)))
                break
            reasons.append("  %s: %s" % (os.path.basename(o), why))
        else:
            failed += 1
            print("NO MATCH for %s among %d file(s):\n%s" % (ref, len(ours), "\n".join(reasons)))
    print("%d of %d reference volumes matched" % (len(refs) - failed, len(refs)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
