#!/usr/bin/python3
"""gen_fixtures.py OUT [bench|dicomdir|dup]: writes small DICOM fixtures for test_dicom_robust
with Debian's python3-pydicom; "bench": a 512x512x300 CT series for test_dicom_bench;
"dicomdir": media with a DICOMDIR for test_dicom_dicomdir; "dup": duplicates and gantry tilt for
test_dicom_dup (both described at their functions).

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
import math
import os
import shutil
import sys
import warnings

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


def media(out):
    """OUT/media/: a DICOMDIR written by pydicom's FileSet, its files without extension in nested
    folders, renamed after writing: Pt000000/st000000/se000000/im00000N (IDs upper case, names
    mixed and lower case, as on a CD copied by a file manager).
      "media ct"     4 CT slices at z = 0, 2, 4, 6, voxel value 10 * k + column
      "media gone"   1 MR slice listed by the DICOMDIR, file deleted after writing
      "media extra"  2 MR slices in extra/deeper/ (im1, im2), not in the DICOMDIR
    OUT/media_broken/: DICOMDIR = 'DICM' + garbage; a/b/img0, a/b/img1 ("broken media", found by
    the walk); notdir/DICOMDIR is a CT image, not an index; notdir/x/img ("notdir").
    OUT/media_hostile/: inner/DICOMDIR whose two records were edited to "..\\OUTSIDE" and
    "A\\\\B" (an empty component), both refused; OUTSIDE ("outside") is found by the walk."""
    from pydicom.fileset import FileSet

    def media_base(modality, uid, number, desc, sop):
        ds = base(modality, uid, number, desc, sop)
        ds.PatientName, ds.StudyDate, ds.StudyTime, ds.StudyID = "Fixture", "20240101", "120000", "1"
        return ds

    d = os.path.join(out, "media")
    fs = FileSet()
    uid = generate_uid()
    for k in range(4):
        ds = media_base("CT", uid, 11, "media ct", CT)
        ds.InstanceNumber = k + 1
        px = (10 * k + np.arange(12)[None, :] + np.zeros((10, 1))).astype(np.int16)
        image(ds, 2.0 * k, px, slope=1, intercept=0, signed=True)
        fs.add(ds)
    ds = media_base("MR", generate_uid(), 12, "media gone", MR)
    ds.InstanceNumber = 1
    image(ds, 0, np.zeros((8, 8), dtype=np.uint16))
    gone = fs.add(ds)
    fs.write(d)
    os.remove(os.path.join(d, *gone.ReferencedFileID))
    for root, dirs, files in os.walk(d, topdown=False):
        for name in files + dirs:
            if name != "DICOMDIR":
                os.rename(os.path.join(root, name), os.path.join(root, name.lower()))
    os.rename(os.path.join(d, "pt000000"), os.path.join(d, "Pt000000"))
    extra = os.path.join(d, "extra", "deeper")
    os.makedirs(extra)
    uid = generate_uid()
    for k in range(2):
        ds = base("MR", uid, 13, "media extra", MR)
        ds.InstanceNumber = k + 1
        image(ds, 3.0 * k, np.full((8, 8), k, dtype=np.uint16))
        save(ds, os.path.join(extra, "im%d" % (k + 1)))

    b = os.path.join(out, "media_broken")
    os.makedirs(os.path.join(b, "a", "b"))
    with open(os.path.join(b, "DICOMDIR"), "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + bytes(np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8)))
    uid = generate_uid()
    for k in range(2):
        ds = base("CT", uid, 14, "broken media", CT)
        ds.InstanceNumber = k + 1
        image(ds, 2.0 * k, np.full((8, 8), k, dtype=np.int16), signed=True)
        save(ds, os.path.join(b, "a", "b", "img%d" % k))
    h = os.path.join(out, "media_hostile")
    fs = FileSet()
    uid = generate_uid()
    for k in range(2):
        ds = media_base("CT", uid, 16, "inner", CT)
        ds.InstanceNumber = k + 1
        image(ds, 2.0 * k, np.full((8, 8), k, dtype=np.int16), signed=True)
        fs.add(ds)
    fs.write(os.path.join(h, "inner"))
    dd = pydicom.dcmread(os.path.join(h, "inner", "DICOMDIR"))
    refs = [r for r in dd.DirectoryRecordSequence if "ReferencedFileID" in r]
    with warnings.catch_warnings():  # pydicom rightly says ".." is not a valid CS value
        warnings.simplefilter("ignore")
        refs[0].ReferencedFileID = ["..", "OUTSIDE"]
        refs[1].ReferencedFileID = ["A", "", "B"]
    dd.save_as(os.path.join(h, "inner", "DICOMDIR"))
    ds = base("CT", generate_uid(), 17, "outside", CT)
    image(ds, 0, np.zeros((8, 8), dtype=np.int16), signed=True)
    save(ds, os.path.join(h, "OUTSIDE"))
    os.makedirs(os.path.join(b, "notdir", "x"))
    ds = base("CT", generate_uid(), 15, "notdir", CT)
    image(ds, 0, np.zeros((8, 8), dtype=np.int16), signed=True)
    save(ds, os.path.join(b, "notdir", "x", "img"))
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    save(ds, os.path.join(b, "notdir", "DICOMDIR"))


def dup(out):
    """OUT/dup/ (all 8x8, MR unless said):
      copied_0..3.dcm    "copied": 4 slices; copy/copied_2.dcm is a byte copy of copied_2.dcm
      resent_a_0..2.dcm  "resent": 3 slices, value 10 + z; resent_b_0..2.dcm the same slices
                         (position, instance number, acquisition number and time) under new SOP
                         Instance UIDs, value 500 + z: a real duplicate of every slice
      ge4d_*.dcm         "ge4d": 3 positions x 2 time points, value 100 t + z, no temporal
                         position, one acquisition time and number (as GE writes fMRI); instance
                         numbers tell the time points apart
      tilt_0..4.dcm      "tilt": CT, columns tilted 15 degrees about x, table positions z = 3 k
      oblique_0..3.dcm   "oblique": double-oblique plane, slices stacked along its normal"""
    d = os.path.join(out, "dup")
    os.makedirs(os.path.join(d, "copy"), exist_ok=True)

    def mr(uid, number, desc, k, z, value, iop=None, pos=None):
        ds = base("MR", uid, number, desc, MR)
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber, ds.AcquisitionTime = 1, "101010.000000"
        image(ds, z, np.full((8, 8), value, dtype=np.uint16))
        if iop is not None:
            ds.ImageOrientationPatient = ["%.6f" % v for v in iop]
        if pos is not None:
            ds.ImagePositionPatient = ["%.4f" % v for v in pos]
        return ds

    uid = generate_uid()
    for k in range(4):
        save(mr(uid, 21, "copied", k, 2.0 * k, k), os.path.join(d, "copied_%d.dcm" % k))
    shutil.copyfile(os.path.join(d, "copied_2.dcm"), os.path.join(d, "copy", "copied_2.dcm"))
    uid = generate_uid()
    for k in range(3):
        save(mr(uid, 22, "resent", k, 3.0 * k, 10 + k), os.path.join(d, "resent_a_%d.dcm" % k))
        save(mr(uid, 22, "resent", k, 3.0 * k, 500 + k), os.path.join(d, "resent_b_%d.dcm" % k))
    uid = generate_uid()
    for t in range(2):
        for z in range(3):
            save(mr(uid, 23, "ge4d", 3 * t + z, 4.0 * z, 100 * t + z), os.path.join(d, "ge4d_%d_%d.dcm" % (t, z)))
    uid = generate_uid()
    a = math.radians(15)
    for k in range(5):
        ds = base("CT", uid, 24, "tilt", CT)
        ds.InstanceNumber = k + 1
        image(ds, 3.0 * k, np.full((8, 8), k, dtype=np.int16), signed=True)
        ds.ImageOrientationPatient = [1, 0, 0, 0, "%.10f" % math.cos(a), "%.10f" % math.sin(a)]
        ds.GantryDetectorTilt = 15
        save(ds, os.path.join(d, "tilt_%d.dcm" % k))
    uid = generate_uid()
    r, c = np.array([math.cos(0.3), math.sin(0.3), 0.0]), np.array([-math.sin(0.3) * math.cos(0.5),
                                                                      math.cos(0.3) * math.cos(0.5), math.sin(0.5)])
    n = np.cross(r, c)
    for k in range(4):
        p = np.array([-30.0, 12.0, 7.0]) + 2.5 * k * n
        save(mr(uid, 25, "oblique", k, 0, k, iop=list(r) + list(c), pos=p), os.path.join(d, "oblique_%d.dcm" % k))


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
    elif len(sys.argv) == 3 and sys.argv[2] == "dicomdir":
        media(sys.argv[1])
    elif len(sys.argv) == 3 and sys.argv[2] == "dup":
        dup(sys.argv[1])
    else:
        study(sys.argv[1])
