#!/usr/bin/python3
"""volume_facts.py nifti FILE | dicom DIR: facts an independent reader (nibabel, pydicom) states,
for test_volume_io to compare with what aaclip loaded.
  nifti: "dims d0 d1 d2 d3", "lps <12 numbers: LPS affine rows 0-2>", "sum S"
  dicom: one line per file sorted by position along the normal: "z SUM MIN MAX" in modality units"""
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


if __name__ == "__main__":
    {"nifti": nifti, "dicom": dicom}[sys.argv[1]](sys.argv[2])
