#!/usr/bin/python3
"""gen_j2k_sources.py sources OUT | mutants J2KDIR OUT (Debian's python3-pydicom), for
test_dicom_j2k.

sources: uncompressed images for aaclip-j2k-fixture to encode, one series each:
  mono16.dcm  CT 32 x 24, int16 signed, value 37 x - 11 y + 500
  mono8.dcm   MR 20 x 12, uint8, value 3 x + 7 y
  multi3.dcm  MR 16 x 16 x 3 frames, uint16, value 1000 f + 16 y + x
  rgb8.dcm    OT 12 x 10 RGB, uint8, (10 x, 20 y, 200)
mutants: copies of the JPEG 2000 files whose header disagrees with the codestream, each
<name>.dcm in OUT, listed in OUT/mutants.txt as "<name> <what the error must say>": rows and
columns smaller, larger, swapped (same pixel count), bits allocated 8 on a 16-bit codestream,
3 samples on a grey one and 1 on a colour one, more and fewer frames than codestreams, and a
codestream whose image header is cut short."""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import decode_data_sequence, encapsulate
from pydicom.uid import ExplicitVRLittleEndian

ROOT = "1.2.826.0.1.3680043.8.498.78."


def image(n, modality, sop_class, px, signed, photometric="MONOCHROME2", frames=None):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, ROOT + "%d.2" % n
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = ROOT + "0", ROOT + "%d.1" % n
    ds.Modality, ds.PatientID, ds.SeriesNumber, ds.InstanceNumber = modality, "J2K", n, 1
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, 0.0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.Rows, ds.Columns = px.shape[-3 if photometric == "RGB" else -2], px.shape[-2 if photometric == "RGB" else -1]
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    if frames:
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = px.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = px.tobytes()
    return ds


def sources(out):
    os.makedirs(out, exist_ok=True)
    y, x = np.mgrid[0:24, 0:32]
    image(1, "CT", "1.2.840.10008.5.1.4.1.1.2", (37 * x - 11 * y + 500).astype("<i2"), True).save_as(
        os.path.join(out, "mono16.dcm"), write_like_original=False)
    y, x = np.mgrid[0:12, 0:20]
    image(2, "MR", "1.2.840.10008.5.1.4.1.1.4", (3 * x + 7 * y).astype(np.uint8), False).save_as(
        os.path.join(out, "mono8.dcm"), write_like_original=False)
    f, y, x = np.mgrid[0:3, 0:16, 0:16]
    image(3, "MR", "1.2.840.10008.5.1.4.1.1.4", (1000 * f + 16 * y + x).astype("<u2"), False, frames=3).save_as(
        os.path.join(out, "multi3.dcm"), write_like_original=False)
    y, x = np.mgrid[0:10, 0:12]
    rgb = np.stack([10 * x, 20 * y, np.full_like(x, 200)], axis=-1).astype(np.uint8)
    image(4, "OT", "1.2.840.10008.5.1.4.1.1.7", rgb, False, photometric="RGB").save_as(
        os.path.join(out, "rgb8.dcm"), write_like_original=False)


def mutants(src, out):
    os.makedirs(out, exist_ok=True)
    listed = []

    def mutant(name, base, says, **attrs):
        ds = pydicom.dcmread(os.path.join(src, base))
        for k, v in attrs.items():
            if k == "fragments":
                frames = decode_data_sequence(ds.PixelData)
                ds.PixelData = encapsulate(v(frames))
            else:
                setattr(ds, k, v)
        ds.save_as(os.path.join(out, name + ".dcm"))
        listed.append("%s %s" % (name, says))

    mutant("rows_small", "mono16.dcm", "codestream 1 is 32 x 24", Rows=8)
    mutant("rows_large", "mono16.dcm", "codestream 1 is 32 x 24", Rows=240)
    mutant("cols_small", "mono16.dcm", "codestream 1 is 32 x 24", Columns=8)
    mutant("cols_large", "mono16.dcm", "codestream 1 is 32 x 24", Columns=320)
    mutant("swapped", "mono16.dcm", "codestream 1 is 32 x 24", Rows=32, Columns=24)
    mutant("bits8", "mono16.dcm", "up to 16 bits", BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    mutant("samples3", "mono16.dcm", "1 component", SamplesPerPixel=3, PhotometricInterpretation="RGB",
           PlanarConfiguration=0)
    mutant("samples1", "rgb8.dcm", "3 component", SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2")
    mutant("frames_more", "mono16.dcm", "1 codestream(s) for 3 frame(s)", NumberOfFrames=3)
    mutant("frames_fewer", "multi3.dcm", "3 codestream(s) for 2 frame(s)", NumberOfFrames=2)
    mutant("siz_cut", "mono16.dcm", "malformed", fragments=lambda fr: [fr[0][:20]])
    mutant("siz_garbage", "multi3.dcm", "malformed",
           fragments=lambda fr: [fr[0], fr[1][:4] + bytes(range(60)) + fr[1][64:], fr[2]])
    with open(os.path.join(out, "mutants.txt"), "w") as f:
        f.write("\n".join(listed) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "sources":
        sources(sys.argv[2])
    else:
        mutants(sys.argv[2], sys.argv[3])
