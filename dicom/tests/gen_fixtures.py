#!/usr/bin/python3
"""gen_fixtures.py OUT [bench]: writes small DICOM fixtures for test_dicom_robust (or, with
"bench", a 512x512x300 CT series for test_dicom_bench) with Debian's python3-pydicom.

OUT/study/ (one folder, series mixed):
  ct_a_*.dcm    CT series A: 5 slices 32x32 int16, intercept -1024, slice 2 truncated is NOT here
  ct_b_*.dcm    CT series B: slices at 0,1,3,4 (2 missing), uint16 BitsStored 12 with junk in the high bits
  single.dcm    a one-slice MR series
  trunc_*.dcm   series D: 3 slices; trunc_1.dcm cut in the middle of its pixel data
  garbage.dcm   random bytes with a DICOM extension
  dicm_garbage.dcm   'DICM' magic followed by garbage
  nopixel.dcm   a CT dataset without pixel data
  mpeg.dcm      series E: one instance in MPEG2 (unsupported transfer syntax)
  mono1_*.dcm   series F: MONOCHROME1 8-bit, 2 slices
  rgb.dcm       series G: RGB planar configuration 1, 1 slice
  fmri_*.dcm    series H: 3 positions x 2 temporal positions
  notes.txt     not DICOM
Values are written to values.txt so the C test checks decoding against what was meant."""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
STUDY = "1.2.826.0.1.3680043.8.498.1"


def base(modality, series_uid, number, desc, sop_class, ts=ExplicitVRLittleEndian):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY, series_uid
    ds.PatientID, ds.Modality, ds.SeriesNumber, ds.SeriesDescription = "FIXTURE", modality, number, desc
    ds.BodyPartExamined = "ABDOMEN"
    return ds


def image(ds, z, px, spacing=(0.8, 0.7), slope=None, intercept=None, signed=False, bits_stored=None,
          photometric="MONOCHROME2"):
    rows, cols = px.shape[:2]
    ds.Rows, ds.Columns = rows, cols
    ds.ImagePositionPatient = [-10.0, -20.0, float(z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness = 2.5
    ds.SamplesPerPixel = 1 if px.ndim == 2 else 3
    ds.PhotometricInterpretation = photometric
    bits = px.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = px.tobytes()


def save(ds, path):
    ds.save_as(path, write_like_original=False)


def study(out):
    d = os.path.join(out, "study")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    vals = []
    # A: signed CT with intercept
    uid = generate_uid()
    for k in range(5):
        ds = base("CT", uid, 2, "ct a", CT)
        ds.InstanceNumber = k + 1
        px = (rng.integers(-200, 1200, size=(24, 32))).astype(np.int16)
        image(ds, 2.5 * k, px, slope=1, intercept=-1024, signed=True)
        save(ds, os.path.join(d, "ct_a_%d.dcm" % k))
        vals.append("A %d %.1f" % (k, float(px.astype(np.float64).sum() - 1024 * px.size)))
    # B: 12-bit unsigned with junk in the top 4 bits; slice at z=2 missing
    uid = generate_uid()
    for k in (0, 1, 3, 4):
        ds = base("CT", uid, 3, "ct b", CT)
        ds.InstanceNumber = k + 1
        real = rng.integers(0, 4096, size=(24, 32)).astype(np.uint16)
        px = (real | (0xA000)).astype(np.uint16)
        image(ds, 3.0 * k, px, slope=2, intercept=-1000, bits_stored=12)
        save(ds, os.path.join(d, "ct_b_%d.dcm" % k))
        vals.append("B %d %.1f" % (k, float(real.astype(np.float64).sum() * 2 - 1000 * real.size)))
    # C: single slice
    ds = base("MR", generate_uid(), 4, "single", MR)
    image(ds, 0, np.arange(20 * 16, dtype=np.uint16).reshape(20, 16))
    save(ds, os.path.join(d, "single.dcm"))
    # D: three slices, one truncated
    uid = generate_uid()
    for k in range(3):
        ds = base("MR", uid, 5, "trunc", MR)
        ds.InstanceNumber = k + 1
        image(ds, 4.0 * k, np.full((16, 16), k + 1, dtype=np.uint16))
        p = os.path.join(d, "trunc_%d.dcm" % k)
        save(ds, p)
        if k == 1:
            size = os.path.getsize(p)
            with open(p, "r+b") as f:
                f.truncate(size - 200)
    # garbage
    with open(os.path.join(d, "garbage.dcm"), "wb") as f:
        f.write(bytes(rng.integers(0, 256, size=3000, dtype=np.uint8)))
    with open(os.path.join(d, "dicm_garbage.dcm"), "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + bytes(rng.integers(0, 256, size=500, dtype=np.uint8)))
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not dicom\n")
    # no pixel data
    ds = base("CT", generate_uid(), 6, "nopixel", CT)
    ds.Rows, ds.Columns = 16, 16
    save(ds, os.path.join(d, "nopixel.dcm"))
    # unsupported transfer syntax
    ds = base("CT", generate_uid(), 7, "mpeg", CT, ts="1.2.840.10008.1.2.4.100")
    image(ds, 0, np.zeros((16, 16), dtype=np.uint8))
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    save(ds, os.path.join(d, "mpeg.dcm"))
    # F: MONOCHROME1 8-bit
    uid = generate_uid()
    for k in range(2):
        ds = base("CR", uid, 8, "mono1", "1.2.840.10008.5.1.4.1.1.1")
        ds.InstanceNumber = k + 1
        image(ds, k, np.full((8, 8), 10 * (k + 1), dtype=np.uint8), photometric="MONOCHROME1")
        save(ds, os.path.join(d, "mono1_%d.dcm" % k))
    # G: RGB, planar configuration 1 (all R, then all G, then all B)
    ds = base("OT", generate_uid(), 9, "rgb", "1.2.840.10008.5.1.4.1.1.7")
    rgb = np.zeros((3, 4, 6), dtype=np.uint8)
    rgb[0], rgb[1], rgb[2] = 200, 100, 50
    image(ds, 0, np.zeros((4, 6, 3), dtype=np.uint8), photometric="RGB")
    ds.PlanarConfiguration = 1
    ds.PixelData = rgb.tobytes()
    save(ds, os.path.join(d, "rgb.dcm"))
    # H: 3 positions x 2 temporal positions (fMRI-like)
    uid = generate_uid()
    for t in range(2):
        for z in range(3):
            ds = base("MR", uid, 10, "fmri", MR)
            ds.InstanceNumber = t * 3 + z + 1
            ds.TemporalPositionIdentifier = t + 1
            ds.RepetitionTime = 2000
            image(ds, 5.0 * z, np.full((8, 8), 100 * t + z, dtype=np.uint16))
            save(ds, os.path.join(d, "fmri_%d_%d.dcm" % (t, z)))
    with open(os.path.join(out, "values.txt"), "w") as f:
        f.write("\n".join(vals) + "\n")


def bench(out, n=300):
    d = os.path.join(out, "ct512")
    os.makedirs(d, exist_ok=True)
    uid = generate_uid()
    yy, xx = np.mgrid[0:512, 0:512]
    body = ((xx - 256) ** 2 / 200.0 ** 2 + (yy - 256) ** 2 / 150.0 ** 2) < 1
    for k in range(n):
        ds = base("CT", uid, 1, "bench ct", CT)
        ds.InstanceNumber = k + 1
        px = np.where(body, 1064 + (k % 50), 24).astype(np.int16)
        image(ds, 1.25 * k, px, spacing=(0.7, 0.7), slope=1, intercept=-1024, signed=True)
        save(ds, os.path.join(d, "ct_%03d.dcm" % k))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[2] == "bench":
        bench(sys.argv[1])
    else:
        study(sys.argv[1])
