#!/usr/bin/python3
"""gen_order.py OUT: series for checking `aaclip convert` against dcm2niix's voxel order and
affine (test_dicom_order), one case per folder OUT/<case>/. Images are 12 columns x 10 rows with
unequal pixel spacing and values 1000 + 100 z + 10 row + column (z = the file's slice), so that
any flip or transposition shows. Debian's python3-pydicom.

  ax_asc, ax_desc   axial 2-D stacks, instance 1 at the bottom / at the top
  sag, cor          sagittal (rows along A, columns down S) and coronal 2-D stacks, descending
  obl               double-oblique 2-D stack
  tilted_rows       axial with rows running right to left (IOP -1 0 0 0 1 0)
  mr3d_sag, mr3d_cor, mr3d_ax, mr3d_obl
                    MRAcquisitionType 3D: dcm2niix turns them to the nearest orthogonal orientation
  mr3d_epi          3D but echo-planar (ScanningSequence EP): not turned
  mr3d_4d           3D with 2 temporal positions: not turned (4-D)
  mr3d_uneven       3D with slice gaps 2, 2, 4, 2 mm: neither turned nor row-flipped
  ct                CT axial, intercept -1024, descending instance order
  fmri              axial 4-D: 4 slices x 3 temporal positions
  mosaic_fwd        Siemens mosaic, axial, 4 tiles, CSA SliceNormalVector along row x column
  mosaic_rev        Siemens mosaic, sagittal, CSA SliceNormalVector against row x column (dcm2niix
                    keeps the tile order: its slices run along the CSA normal), 2 volumes
  siemens_psn       classic Siemens axial stack whose first image has CSA ProtocolSliceNumber 4
                    (dcm2niix then stacks the slices against the instance order)
  rounded           a 3-D sagittal stack of 40 slices 1.00004 mm apart, positions written to 4
                    decimals (dcm2niix takes the spacing from the first two slices)
"""
import math
import os
import struct
import sys

import numpy as np

from gen_fixtures import MR, CT, base, save
from pydicom.uid import generate_uid

ROWS, COLS = 10, 12


def pixels(z, t=0):
    r, c = np.mgrid[0:ROWS, 0:COLS]
    return (1000 + 100 * z + 10 * r + c + 2000 * t).astype(np.uint16)


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def stack(d, desc, number, row, col, gaps=None, n=5, order="asc", modality="MR", extra=None, times=1,
          origin=(-30.0, 12.5, 7.0), csa_slice=False):
    """Writes n slices (x times) along row x col into folder d."""
    os.makedirs(d, exist_ok=True)
    row, col = unit(row), unit(col)
    nrm = np.cross(row, col)
    gaps = gaps or [2.5] * (n - 1)
    pos = [0.0]
    for g in gaps:
        pos.append(pos[-1] + g)
    uid = generate_uid()
    idx = list(range(n)) if order == "asc" else list(range(n))[::-1]
    inst = 0
    for t in range(times):
        for k, z in enumerate(idx):
            sop = CT if modality == "CT" else MR
            ds = base(modality, uid, number, desc, sop)
            inst += 1
            ds.InstanceNumber = inst
            ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240101", "101010", "20240101", "101010"
            ds.AcquisitionTime = "101010.%06d" % (t * 1000)
            ds.AcquisitionNumber = t + 1
            px = pixels(z, t)
            ds.Rows, ds.Columns = ROWS, COLS
            p = np.asarray(origin) + pos[z] * nrm
            ds.ImagePositionPatient = ["%.4f" % v for v in p]
            ds.ImageOrientationPatient = ["%.6f" % v for v in list(row) + list(col)]
            ds.PixelSpacing = [0.9, 1.1]  # row spacing (between rows), column spacing
            ds.SliceThickness = gaps[0]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            if modality == "CT":
                ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
                ds.KVP = 120
            else:
                ds.EchoTime, ds.RepetitionTime, ds.FlipAngle = 4.5, 2000, 10
                ds.ProtocolName = desc
            if times > 1:
                ds.TemporalPositionIdentifier = t + 1
                ds.NumberOfTemporalPositions = times
            for key, val in (extra or {}).items():
                setattr(ds, key, val)
            if csa_slice:  # Siemens: the protocol numbers slices against the instance order
                ds.Manufacturer = "SIEMENS"
                blk = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
                blk.add_new(0x10, "OB", csa2([("ProtocolSliceNumber", "IS", [str(n - 1 - k)])]))
            ds.PixelData = px.tobytes()
            save(ds, os.path.join(d, "im_%02d_%02d.dcm" % (t, k)))


def csa2(tags):
    """A Siemens CSA2 ("SV10") header holding tags [(name, vr, [item strings])]."""
    out = b"SV10\x04\x03\x02\x01" + struct.pack("<II", len(tags), 77)
    for name, vr, items in tags:
        out += name.encode().ljust(64, b"\0") + struct.pack("<i", len(items)) + vr.encode().ljust(4, b"\0")
        out += struct.pack("<iii", 3, len(items), 77)
        for it in items:
            data = it.encode() + b"\0"
            out += struct.pack("<iiii", len(data), len(data), 77, len(data)) + data + b"\0" * ((4 - len(data) % 4) % 4)
    return out


def mosaic(d, desc, number, row, col, csa_normal, n=4, times=1, origin=(-30.0, 12.5, 7.0), dz=3.0):
    """A Siemens mosaic series: n tiles (pixels(k) in tile k) in an m x m grid per file, tile k at
    origin + k * dz * csa_normal, as the CSA header and dcm2niix place them."""
    os.makedirs(d, exist_ok=True)
    row, col, csa_normal = unit(row), unit(col), unit(csa_normal)
    m = math.ceil(math.sqrt(n))
    ps = (0.9, 1.1)
    uid = generate_uid()
    for t in range(times):
        big = np.zeros((ROWS * m, COLS * m), dtype=np.uint16)
        for k in range(n):
            big[(k // m) * ROWS:(k // m + 1) * ROWS, (k % m) * COLS:(k % m + 1) * COLS] = pixels(k, t)
        ds = base("MR", uid, number, desc, MR)
        ds.Manufacturer = "SIEMENS"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
        ds.InstanceNumber = t + 1
        ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240101", "101010", "20240101", "101010"
        ds.AcquisitionTime, ds.AcquisitionNumber = "1010%02d.000000" % (10 + t), t + 1
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "EP", "SK", "2D"
        ds.EchoTime, ds.RepetitionTime, ds.FlipAngle, ds.ProtocolName = 30, 2000, 90, desc
        ds.Rows, ds.Columns = big.shape
        # ImagePositionPatient names the mosaic's top left: tile 0 moved back by half the grid
        p0 = np.asarray(origin)
        ipp = p0 - row * ps[1] * (ds.Columns - COLS) / 2.0 - col * ps[0] * (ds.Rows - ROWS) / 2.0
        ds.ImagePositionPatient = ["%.4f" % v for v in ipp]
        ds.ImageOrientationPatient = ["%.6f" % v for v in list(row) + list(col)]
        ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = list(ps), dz, dz
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        blk = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
        blk.add_new(0x10, "OB", csa2([("NumberOfImagesInMosaic", "US", [str(n)]),
                                      ("SliceNormalVector", "FD", ["%.8f" % v for v in csa_normal])]))
        ds.PixelData = big.tobytes()
        save(ds, os.path.join(d, "mosaic_%02d.dcm" % t))


def rot(axis, deg):
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def main(out):
    ax, sag, cor = ([1, 0, 0], [0, 1, 0]), ([0, 1, 0], [0, 0, -1]), ([1, 0, 0], [0, 0, -1])
    R = rot("z", 20) @ rot("x", 12)
    obl = (R @ np.array([1.0, 0, 0]), R @ np.array([0, 1.0, 0]))
    three_d = {"MRAcquisitionType": "3D", "ScanningSequence": "GR", "SequenceVariant": "SP"}
    stack(os.path.join(out, "ax_asc"), "ax asc", 1, *ax)
    stack(os.path.join(out, "ax_desc"), "ax desc", 2, *ax, order="desc")
    stack(os.path.join(out, "sag"), "sag", 3, *sag, order="desc")
    stack(os.path.join(out, "cor"), "cor", 4, *cor, order="desc")
    stack(os.path.join(out, "obl"), "obl", 5, *obl)
    stack(os.path.join(out, "tilted_rows"), "rows rl", 6, [-1, 0, 0], [0, 1, 0])
    stack(os.path.join(out, "mr3d_sag"), "mr3d sag", 7, *sag, n=6, extra=three_d)
    stack(os.path.join(out, "mr3d_cor"), "mr3d cor", 8, *cor, n=6, order="desc", extra=three_d)
    stack(os.path.join(out, "mr3d_ax"), "mr3d ax", 9, *ax, n=6, extra=three_d)
    stack(os.path.join(out, "mr3d_obl"), "mr3d obl", 10, *obl, n=6, extra=three_d)
    stack(os.path.join(out, "mr3d_epi"), "mr3d epi", 11, *sag, n=6,
          extra={"MRAcquisitionType": "3D", "ScanningSequence": "EP", "SequenceVariant": "SK"})
    stack(os.path.join(out, "mr3d_4d"), "mr3d 4d", 12, *sag, n=4, times=2, extra=three_d)
    stack(os.path.join(out, "mr3d_uneven"), "mr3d uneven", 13, *cor, gaps=[2, 2, 4, 2], extra=three_d)
    stack(os.path.join(out, "ct"), "ct", 14, *ax, modality="CT", order="desc")
    stack(os.path.join(out, "fmri"), "fmri", 15, *ax, n=4, times=3, extra={"ScanningSequence": "EP"})
    mosaic(os.path.join(out, "mosaic_fwd"), "mosaic fwd", 16, *ax, csa_normal=[0, 0, 1])
    mosaic(os.path.join(out, "mosaic_rev"), "mosaic rev", 17, *sag, csa_normal=[1, 0, 0], times=2)
    stack(os.path.join(out, "siemens_psn"), "siemens psn", 18, *ax, csa_slice=True)
    stack(os.path.join(out, "rounded"), "rounded", 19, *sag, n=40, gaps=[1.00004] * 39, extra=three_d)


if __name__ == "__main__":
    main(sys.argv[1])
