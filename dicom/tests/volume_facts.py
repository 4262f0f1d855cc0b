#!/usr/bin/python3
"""volume_facts.py nifti FILE | dicom DIR | write-nifti DIR: facts an independent reader (nibabel,
pydicom) states, for test_volume_io to compare with what aaclip loaded, and NIfTI files written by
nibabel for it.
  nifti: "dims d0 d1 d2 d3", "lps <12 numbers: LPS affine rows 0-2>", "sum S"
  dicom: one line per file sorted by position along the normal: "z SUM MIN MAX" in modality units
  write-nifti: DIR/oblique_scaled.nii.gz (int16 with scl_slope/scl_inter, rotated qform = sform),
    DIR/flipped_4d.nii (float32, 4-D, x flipped, sform only, qform unset), DIR/mask_las.nii.gz
    (uint8, LAS axes, qform only)"""
import glob
import os
import sys

import numpy as np


def nifti(path):
    import nibabel as nib
    im = nib.load(path)
    shape = list(im.shape) + [1] * (4 - im.ndim)
    A = np.diag([-1.0, -1.0, 1.0, 1.0]) @ im.affine  # RAS -> LPS
    print("dims %d %d %d %d" % tuple(shape[:4]))
    print("lps " + " ".join("%.9g" % x for x in A[:3].ravel()))
    print("sum %.17g" % float(np.asarray(im.get_fdata(dtype=np.float64)).sum()))


def dicom(folder):
    import pydicom
    rows = []
    for p in sorted(glob.glob(os.path.join(folder, "*"))):
        ds = pydicom.dcmread(p)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        n = np.cross(iop[:3], iop[3:])
        z = float(np.dot(n, np.array(ds.ImagePositionPatient, dtype=float)))
        hu = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        rows.append((z, hu.sum(), hu.min(), hu.max()))
    for r in sorted(rows):
        print("%.6f %.17g %.17g %.17g" % r)


def write_nifti(out):
    import nibabel as nib
    rng = np.random.default_rng(7)
    a, b = np.radians(15), np.radians(-8)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    A = np.eye(4)
    A[:3, :3] = rz @ rx @ np.diag([0.8, 0.9, 2.5])
    A[:3, 3] = [-40.5, 12.25, 33.0]
    stored = rng.integers(-500, 1500, size=(24, 20, 7)).astype(np.int16)
    im = nib.Nifti1Image(stored, A)
    im.header.set_slope_inter(2.0, -1000.0)
    im.set_qform(A, code=1)
    im.set_sform(A, code=2)
    nib.save(im, os.path.join(out, "oblique_scaled.nii.gz"))
    B = np.diag([-1.25, 1.0, 3.0, 1.0])
    B[:3, 3] = [30.0, -20.0, 5.0]
    vol4 = rng.normal(100, 20, size=(16, 12, 5, 3)).astype(np.float32)
    im = nib.Nifti1Image(vol4, B)
    im.set_qform(None, code=0)
    im.set_sform(B, code=1)
    im.header["pixdim"][4] = 2.0
    nib.save(im, os.path.join(out, "flipped_4d.nii"))
    C = np.diag([-1.0, 1.0, 1.5, 1.0])
    C[:3, 3] = [10.0, -5.0, -7.5]
    mask = (rng.random((10, 9, 4)) > 0.7).astype(np.uint8)
    im = nib.Nifti1Image(mask, C)
    im.set_sform(None, code=0)
    im.set_qform(C, code=1)
    nib.save(im, os.path.join(out, "mask_las.nii.gz"))


if __name__ == "__main__":
    {"nifti": nifti, "dicom": dicom, "write-nifti": write_nifti}[sys.argv[1]](sys.argv[2])
