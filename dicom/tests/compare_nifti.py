#!/usr/bin/python3
"""compare_nifti.py OURS_DIR REF.nii... : every reference NIfTI must match a distinct file in
OURS_DIR strictly, as dcm2niix writes it: the same array shape and voxel order, the same voxel
values (after each header's scl_slope/scl_inter), the same sform and the same qform (each within
1e-3 mm; each that the reference sets must be set). No reorientation: a file that holds the same image in another voxel
order does not match. The data type may differ (dcm2niix keeps stored integers and a scale; we
write the scaled values, as an integer type when they all are integers); it is printed. An RGB
reference is compared by its Rec. 601 luma (we convert colour to grey).
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
    if ours.shape != ref.shape:
        return "shape %s vs %s" % (ours.shape, ref.shape)
    ho, hr = ours.header, ref.header
    for name, get, code in (("sform", "get_sform", "sform_code"), ("qform", "get_qform", "qform_code")):
        if int(hr[code]) == 0:
            continue  # the reference states none (dcm2niix sets both)
        if int(ho[code]) == 0:
            return "%s_code %d vs %d" % (name, int(ho[code]), int(hr[code]))
        A, R = getattr(ho, get)(), getattr(hr, get)()
        err = np.abs(A - R).max()
        if err > AFFINE_TOL:
            return "%s differs by %.4g mm\nours:\n%s\nref:\n%s" % (name, err, A.round(4), R.round(4))
    a = ours.get_fdata(dtype=np.float64)
    r = np.asanyarray(ref.dataobj)
    if r.dtype.names:  # RGB (dcm2niix keeps colour): we write its Rec. 601 luma
        r = 0.299 * r["R"].astype(np.float64) + 0.587 * r["G"] + 0.114 * r["B"]
    else:
        r = ref.get_fdata(dtype=np.float64)
    diff = np.abs(a - r)
    tol = max(1e-3, 2e-5 * float(np.abs(r).max()))
    if diff.max() > tol:
        idx = np.unravel_index(np.argmax(diff), diff.shape)
        return "voxels differ: max |diff| %.6g at %s (ours %.6g, ref %.6g), tolerance %.3g" % (
            diff.max(), idx, a[idx], r[idx], tol)
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
                dt_o, dt_r = nib.load(o).get_data_dtype(), nib.load(ref).get_data_dtype()
                print("MATCH %s == %s%s" % (os.path.basename(ref), os.path.basename(o),
                                            "" if dt_o == dt_r else " (data type %s, ref %s)" % (dt_o, dt_r)))
                break
            reasons.append("  %s: %s" % (os.path.basename(o), why))
        else:
            failed += 1
            print("NO MATCH for %s among %d file(s):\n%s" % (ref, len(ours), "\n".join(reasons)))
    print("%d of %d reference volumes matched" % (len(refs) - failed, len(refs)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
