#!/usr/bin/python3
"""make_seeds.py OUT: writes the small seed inputs of the dicom/ fuzz targets into
OUT/<target>/ with Debian's python3-pydicom and DCMTK's command-line tools (dcmcrle, dcmcjpls,
dcmcjpeg, dcmconv). The corpora in dicom/fuzz/corpus/ started from these (plus the shared
scanner files, see docs/validation.md) and were minimised after the campaigns.

  csa/          CSA2 ("SV10") and CSA1 headers with NumberOfImagesInMosaic and SliceNormalVector,
                behind the 12-byte image description fuzz_csa reads first
  dicom_file/   classic CT (explicit, implicit, big endian, RLE, JPEG-LS, JPEG lossless),
                classic multi-frame, enhanced CT (shared + per-frame groups), Philips-like
                enhanced MR (private scale slope, per-frame private items), Siemens mosaic with a
                CSA header, MONOCHROME1, planar RGB
  dicomdir/     a DICOMDIR (pydicom FileSet) listing IMG/SER1/IM1 and IMG/SER2/IM2
  series/       a few structured descriptions (see fuzz_series.c)
  discover/     folders: two slices of one series, a copy, a DICOMDIR with its files
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

CT = "1.2.840.10008.5.1.4.1.1.2"
ENH_CT = "1.2.840.10008.5.1.4.1.1.2.1"
ENH_MR = "1.2.840.10008.5.1.4.1.1.4.1"
MR = "1.2.840.10008.5.1.4.1.1.4"


def uid(n):
    return "1.2.826.0.1.3680043.8.498.9%d" % n


def base(sop_class, sop, series, modality="CT", manufacturer="fuzz"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(1), series
    ds.Modality, ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = modality, manufacturer, 1, 1
    ds.PatientID = "FUZZ"
    return ds


def pixels(ds, px, signed=True, spacing=(0.5, 0.5), photometric="MONOCHROME2"):
    ds.Rows, ds.Columns = px.shape[-2] if px.ndim < 4 else px.shape[1], px.shape[-1] if px.ndim < 4 else px.shape[2]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = px.dtype.itemsize * 8
    ds.BitsStored, ds.HighBit = ds.BitsAllocated, ds.BitsAllocated - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = px.tobytes()


def plane(ds, z):
    ds.ImagePositionPatient = [-2.0, -2.0, float(z)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.SliceThickness = 1.0


def classic(sop, z, series=uid(2)):
    ds = base(CT, sop, series)
    ds.PatientName, ds.StudyDate, ds.StudyTime, ds.StudyID = "Fuzz", "20240101", "120000", "1"
    plane(ds, z)
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    pixels(ds, (np.arange(64, dtype=np.int16) * 7 + z).reshape(8, 8))
    return ds


def item(**kw):
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def enhanced_ct():
    ds = base(ENH_CT, uid(10), uid(11))
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = 3
    shared = item(PixelMeasuresSequence=Sequence([item(PixelSpacing=[0.5, 0.5], SliceThickness=1.0)]),
                  PlaneOrientationSequence=Sequence([item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
                  PixelValueTransformationSequence=Sequence([item(RescaleIntercept=-1024, RescaleSlope=1,
                                                                   RescaleType="HU")]),
                  CTImageFrameTypeSequence=Sequence([item(FrameType=["ORIGINAL", "PRIMARY", "AXIAL", "NONE"])]))
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        item(PlanePositionSequence=Sequence([item(ImagePositionPatient=[-2.0, -2.0, 1.5 * k])]),
             FrameContentSequence=Sequence([item(TemporalPositionIndex=1, DimensionIndexValues=[1, k + 1])]))
        for k in range(3)])
    pixels(ds, (np.arange(3 * 64, dtype=np.int16)).reshape(3, 8, 8))
    return ds


def philips_mr():
    ds = base(ENH_MR, uid(20), uid(21), "MR", "Philips Medical Systems")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "FFE"]
    ds.NumberOfFrames = 4
    ds.add_new(0x20050010, "LO", "Philips MR Imaging DD 001")
    ds.add_new(0x2005100E, "FL", 0.5)
    shared = item(PixelMeasuresSequence=Sequence([item(PixelSpacing=[1.0, 1.0], SliceThickness=2.0)]),
                  PlaneOrientationSequence=Sequence([item(ImageOrientationPatient=[1, 0, 0, 0, 0, -1])]))
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in range(4):
        priv = Dataset()
        priv.add_new(0x20050010, "LO", "Philips MR Imaging DD 001")
        priv.add_new(0x2005100E, "FL", 0.25 * (k % 2 + 1))
        priv.EchoNumbers = k % 2 + 1
        fg = item(PlanePositionSequence=Sequence([item(ImagePositionPatient=[-4.0, 2.0 * (k // 2), 4.0])]),
                  PixelValueTransformationSequence=Sequence([item(RescaleIntercept=0, RescaleSlope=2.0)]),
                  FrameContentSequence=Sequence([item(TemporalPositionIndex=1)]),
                  MRImageFrameTypeSequence=Sequence([item(FrameType=["ORIGINAL", "PRIMARY", "M" if k < 2 else "P",
                                                                     "FFE"])]),
                  RealWorldValueMappingSequence=Sequence([item(
                      MeasurementUnitsCodeSequence=Sequence([item(CodeValue="Hz" if k == 3 else "1",
                                                                   CodingSchemeDesignator="UCUM",
                                                                   CodeMeaning="u")]))]))
        fg.add_new(0x2005140F, "SQ", Sequence([priv]))
        frames.append(fg)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    pixels(ds, (np.arange(4 * 64, dtype=np.uint16)).reshape(4, 8, 8), signed=False)
    return ds


def csa2(tags):
    out = b"SV10\x04\x03\x02\x01" + struct.pack("<II", len(tags), 77)
    for name, values in tags:
        out += name.encode().ljust(64, b"\0") + struct.pack("<i4sii", len(values), b"FD\0\0", 4, len(values)) + \
            struct.pack("<i", 77)
        for v in values:
            data = v.encode() + b"\0"
            out += struct.pack("<4i", len(data), len(data), 77, len(data))
            out += data + b"\0" * ((4 - len(data) % 4) % 4)
    return out


def csa1(tags):
    out = struct.pack("<II", len(tags), 77)
    n0 = len(tags[0][1])
    for name, values in tags:
        out += name.encode().ljust(64, b"\0") + struct.pack("<i4sii", len(values), b"FD\0\0", 4, len(values)) + \
            struct.pack("<i", 77)
        for v in values:
            data = v.encode() + b"\0"
            out += struct.pack("<4i", len(data) + n0, len(data), 77, len(data))
            out += data + b"\0" * ((4 - len(data) % 4) % 4)
    return out


CSA_TAGS = [("NumberOfImagesInMosaic", ["4"]), ("SliceNormalVector", ["0", "0", "1"]), ("EchoTime", ["30"])]


def mosaic():
    ds = base(MR, uid(30), uid(31), "MR", "SIEMENS")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [-4.0, -4.0, 0.0], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness, ds.SpacingBetweenSlices = [1.0, 1.0], 2.0, 2.5
    ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
    ds.add_new(0x00291010, "OB", csa2(CSA_TAGS))
    pixels(ds, np.arange(64, dtype=np.uint16).reshape(8, 8), signed=False)
    return ds


def save(ds, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ds.save_as(path, write_like_original=False)


def main(out):
    d = os.path.join(out, "csa")
    os.makedirs(d, exist_ok=True)
    desc = struct.pack("<HHBBBBBbbB", 8, 8, 1, 0, 40, 16, 0, -4, -4, 2)
    with open(os.path.join(d, "csa2_mosaic4"), "wb") as f:
        f.write(desc + csa2(CSA_TAGS))
    with open(os.path.join(d, "csa1_mosaic4"), "wb") as f:
        f.write(desc + csa1(CSA_TAGS))
    with open(os.path.join(d, "csa2_mosaic9_oblique"), "wb") as f:
        f.write(struct.pack("<HHBBBBBbbB", 12, 12, 2, 0, 20, 8, 3, 0, 0, 1) +
                csa2([("NumberOfImagesInMosaic", ["9"]), ("SliceNormalVector", ["0.1", "0.2", "0.97468"])]))

    d = os.path.join(out, "dicom_file")
    save(classic(uid(3), 0), os.path.join(d, "ct_explicit.dcm"))
    with tempfile.TemporaryDirectory() as t:
        src = os.path.join(t, "src.dcm")
        save(classic(uid(4), 0), src)
        for name, cmd in (("ct_implicit.dcm", ["dcmconv", "+ti"]), ("ct_bigendian.dcm", ["dcmconv", "+tb"]),
                          ("ct_rle.dcm", ["dcmcrle"]), ("ct_jpegls.dcm", ["dcmcjpls"]),
                          ("ct_jpeg_lossless.dcm", ["dcmcjpeg", "+e1"])):
            subprocess.run(cmd + [src, os.path.join(d, name)], check=True)
    mf = classic(uid(5), 0)
    mf.NumberOfFrames = 2
    mf.PixelData = mf.PixelData * 2
    save(mf, os.path.join(d, "ct_multiframe.dcm"))
    save(enhanced_ct(), os.path.join(d, "ct_enhanced.dcm"))
    save(philips_mr(), os.path.join(d, "mr_philips_enhanced.dcm"))
    save(mosaic(), os.path.join(d, "mr_mosaic.dcm"))
    m1 = classic(uid(6), 0)
    pixels(m1, (np.arange(64, dtype=np.uint8)).reshape(8, 8), signed=False, photometric="MONOCHROME1")
    save(m1, os.path.join(d, "cr_mono1.dcm"))
    rgb = classic(uid(7), 0)
    rgb.Rows, rgb.Columns, rgb.SamplesPerPixel, rgb.PhotometricInterpretation = 4, 4, 3, "RGB"
    rgb.PlanarConfiguration, rgb.BitsAllocated, rgb.BitsStored, rgb.HighBit, rgb.PixelRepresentation = 1, 8, 8, 7, 0
    rgb.PixelData = bytes(range(48))
    save(rgb, os.path.join(d, "ot_rgb_planar.dcm"))

    d = os.path.join(out, "dicomdir")
    os.makedirs(d, exist_ok=True)
    from pydicom.fileset import FileSet
    fs = FileSet()
    for k in range(2):
        ds = classic(uid(40 + k), k)
        fs.add(ds)
    with tempfile.TemporaryDirectory() as t:
        fs.write(t)
        shutil.copyfile(os.path.join(t, "DICOMDIR"), os.path.join(d, "two_images"))

    d = os.path.join(out, "series")
    os.makedirs(d, exist_ok=True)
    for name, blob in (("two_files", bytes([1, 0, 0, 0, 1, 0, 0, 0, 2, 4, 4, 10, 0, 1, 0, 0, 0, 1, 0, 0, 8])),
                       ("four_d", bytes([3, 8, 1, 1, 0, 1, 0, 2, 0, 2, 0, 0, 0, 1, 0, 4, 1, 0, 1, 0, 6,
                                         2, 2, 0, 2, 0, 3, 1, 0, 2, 1, 2, 0, 0, 1, 0, 7])),
                       ("copies", bytes([5, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1]))):
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob)

    d = os.path.join(out, "discover")
    os.makedirs(d, exist_ok=True)

    def folder(files):
        b = b""
        for sel, data in files:
            b += struct.pack("<BH", sel, len(data)) + data
        return b

    with tempfile.TemporaryDirectory() as t:
        blobs = []
        for k in range(2):
            p = os.path.join(t, "s%d.dcm" % k)
            save(classic(uid(50 + k), 2.0 * k, series=uid(52)), p)
            blobs.append(open(p, "rb").read())
        fs = FileSet()
        fs.add(classic(uid(60), 0, series=uid(61)))
        fs.write(os.path.join(t, "media"))
        media = open(os.path.join(t, "media", "DICOMDIR"), "rb").read()
        with open(os.path.join(d, "two_slices_and_copy"), "wb") as f:
            f.write(folder([(0, blobs[0]), (1, blobs[1]), (3, blobs[1])]))
        with open(os.path.join(d, "dicomdir_and_image"), "wb") as f:
            f.write(folder([(5, media), (2, blobs[0])]))


if __name__ == "__main__":
    main(sys.argv[1])
