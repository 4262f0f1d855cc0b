#!/usr/bin/python3
"""gen_classes.py OUT [SHARED]: series that used to be grouped or read wrongly, one case per
folder, for test_dicom_classes (Debian's python3-pydicom; gzip and zlib from Python). Images are
12 columns x 10 rows, value 1000 + 100 z + 10 row + column + OFFSET (OFFSET per case, below).

OUT/clash/       two series (31 "clash a", 32 "clash b", 3 slices each, OFFSET 0 and 5000) whose
                 files share SOP Instance UIDs pairwise (an anonymiser's doing), and a series (33
                 "clash in") of 4 slices whose slices 1 and 2 share one UID
OUT/echo_enh/    one enhanced MR file (34 "me enh"): 3 echoes (EffectiveEchoTime 5, 10, 15 ms in
                 each frame's MREchoSequence, no EchoNumbers anywhere) x 4 slices, echo fastest;
                 OFFSET 3000 * echo index
OUT/echo_cls/    classic MR (35 "me cls"): 2 echoes (EchoTime 4 and 9 ms, no EchoNumbers) x 5
                 slices, instance numbers interleaved (echo fastest); OFFSET 3000 * echo index
OUT/magphase/    classic MR (36 "magphase"): magnitude (ImageType ...\\M\\ND, odd instance numbers)
                 and phase (...\\P\\ND, even) of 5 slices interleaved; OFFSET 0 / 4000
OUT/magphase_gap/ the same (37) with the phase image of slice 2 (instance 6) left out
OUT/dwi/         GE-style classic DWI (38 "dwi"): b0 and 2 directions (ORIGINAL\\PRIMARY\\OTHER)
                 plus a trace image (DERIVED\\PRIMARY\\OTHER: only value 1 differs) at each of 4
                 slices, one series; OFFSET 2000 * volume, trace 9000
OUT/dwi_philips/ Philips classic DWI (39 "dwi philips"): b0, 2 directions and an isotropic image
                 (b 1000, gradient 0 0 0) at each of 4 slices; OFFSET 2000 * volume
OUT/ge_b0map/    GE B0map series (47 "ge b0map"): 8 files, ImageType ORIGINAL\\PRIMARY\\OTHER for all;
                 instances 1-4 the field map in Hz (LocationsInAcquisition 4 of ImagesInAcquisition
                 8), 5-8 the magnitude, 4 slices; OFFSET 0 / 7000
OUT/enc/         encodings of one 3-slice CT (40 "enc", OFFSET 0): ct_*.dcm explicit little endian,
                 deflate/ (Deflated Explicit VR Little Endian), gz/ (*.dcm.gz), and
                 ybr422.dcm / ybr_full.dcm / rgb.dcm (41-43: the same colour picture as native
                 YBR_FULL_422, YBR_FULL and RGB; ybr_y.txt holds its Y plane's sum),
                 palette.dcm (PALETTE COLOR), hsv.dcm (3 samples, HSV), partial.dcm (native
                 YBR_PARTIAL_420), bad.dcm.gz (a gzip stream cut short), text.dcm.gz (gzip of text)
OUT/shared/      with SHARED (../shared/dicom): dcm_qa_ts In/1.dcm (explicit little endian) and
                 In/9.dcm (JPEG 2000) gzipped, and In/1.dcm deflated
"""
import gzip
import os
import shutil
import sys
import zlib

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from gen_fixtures import CT, MR, base, save

ROWS, COLS = 10, 12
ENH_MR = "1.2.840.10008.5.1.4.1.1.4.1"
DEFLATED = "1.2.840.10008.1.2.1.99"


def pixels(z, offset=0):
    r, c = np.mgrid[0:ROWS, 0:COLS]
    return (1000 + 100 * z + 10 * r + c + offset).astype(np.uint16)


def mr_slice(uid, number, desc, z, inst, offset=0, modality="MR", **attrs):
    ds = base(modality, uid, number, desc, CT if modality == "CT" else MR)
    ds.InstanceNumber = inst
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240101", "101010", "20240101", "101010"
    ds.AcquisitionTime, ds.AcquisitionNumber = "101010.000000", 1
    ds.PatientName, ds.PatientBirthDate, ds.PatientSex, ds.StudyID = "Fixture^Classes", "19700101", "O", "1"
    ds.AccessionNumber, ds.ReferringPhysicianName, ds.Manufacturer = "A1", "", "aaclip fixture"
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Rows, ds.Columns = ROWS, COLS
    ds.ImagePositionPatient = [-30.0, 12.5, 7.0 + 3.0 * z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.9, 1.1], 3.0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if modality == "MR":
        ds.EchoTime, ds.RepetitionTime, ds.FlipAngle, ds.ProtocolName = 5.0, 500, 20, desc
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "GR", "SP", "2D"
    else:
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = pixels(z, offset).tobytes()
    return ds


def clash(out):
    d = os.path.join(out, "clash")
    os.makedirs(d)
    ua, ub, sops = generate_uid(), generate_uid(), [generate_uid() for _ in range(3)]
    for z in range(3):
        for uid, number, desc, off in ((ua, 31, "clash a", 0), (ub, 32, "clash b", 5000)):
            ds = mr_slice(uid, number, desc, z, z + 1, off)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sops[z]
            save(ds, os.path.join(d, "%s_%d.dcm" % (desc.replace(" ", "_"), z)))
    uid, shared = generate_uid(), generate_uid()
    for z in range(4):
        ds = mr_slice(uid, 33, "clash in", z, z + 1)
        if z in (1, 2):
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = shared
        save(ds, os.path.join(d, "clash_in_%d.dcm" % z))


def echo_enhanced(out):
    """Enhanced MR Image Storage with per-frame functional groups; echoes told apart by the
    frames' EffectiveEchoTime only."""
    d = os.path.join(out, "echo_enh")
    os.makedirs(d)
    tes, nz = (5.0, 10.0, 15.0), 4
    ds = base("MR", generate_uid(), 34, "me enh", ENH_MR)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240101", "101010", "20240101", "101010"
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = "20240101", "101010", "20240101101010"
    ds.InstanceNumber = 1
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLS, len(tes) * nz
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.MRAcquisitionType, ds.ProtocolName, ds.RepetitionTime = "2D", "me enh", 500
    ds.FrameOfReferenceUID = generate_uid()
    dim_org = generate_uid()
    ds.DimensionOrganizationSequence = Sequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_org
    idx = []
    for ptr, grp in ((0x00209056, 0x00209111), (0x00209057, 0x00209111), (0x00189082, 0x00189114)):
        it = Dataset()
        it.DimensionOrganizationUID, it.DimensionIndexPointer, it.FunctionalGroupPointer = dim_org, ptr, grp
        idx.append(it)
    ds.DimensionIndexSequence = Sequence(idx)
    sh = Dataset()
    pm = Dataset()
    pm.PixelSpacing, pm.SliceThickness = [0.9, 1.1], 3.0
    sh.PixelMeasuresSequence = Sequence([pm])
    po = Dataset()
    po.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    sh.PlaneOrientationSequence = Sequence([po])
    pv = Dataset()
    pv.RescaleIntercept, pv.RescaleSlope, pv.RescaleType = 0, 1, "US"
    sh.PixelValueTransformationSequence = Sequence([pv])
    ds.SharedFunctionalGroupsSequence = Sequence([sh])
    frames, data = [], []
    for z in range(nz):
        for e, te in enumerate(tes):
            f = Dataset()
            fc = Dataset()
            fc.StackID, fc.InStackPositionNumber, fc.DimensionIndexValues = "1", z + 1, [1, z + 1, e + 1]
            f.FrameContentSequence = Sequence([fc])
            pp = Dataset()
            pp.ImagePositionPatient = [-30.0, 12.5, 7.0 + 3.0 * z]
            f.PlanePositionSequence = Sequence([pp])
            me = Dataset()
            me.EffectiveEchoTime = te
            f.MREchoSequence = Sequence([me])
            ft = Dataset()
            ft.FrameType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
            f.MRImageFrameTypeSequence = Sequence([ft])
            frames.append(f)
            data.append(pixels(z, 3000 * e))
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.stack(data).tobytes()
    save(ds, os.path.join(d, "me_enh.dcm"))


def echo_classic(out):
    d = os.path.join(out, "echo_cls")
    os.makedirs(d)
    uid = generate_uid()
    for z in range(5):
        for e, te in enumerate((4.0, 9.0)):
            ds = mr_slice(uid, 35, "me cls", z, 2 * z + e + 1, 3000 * e, EchoTime=te)
            save(ds, os.path.join(d, "me_%d_%d.dcm" % (z, e)))


def magphase(out, name, number, drop=None):
    d = os.path.join(out, name)
    os.makedirs(d)
    uid = generate_uid()
    for z in range(5):
        for p, kind in enumerate(("M", "P")):
            inst = 2 * z + p + 1
            if inst == drop:
                continue
            ds = mr_slice(uid, number, name, z, inst, 4000 * p, ImageType=["ORIGINAL", "PRIMARY", kind, "ND"])
            save(ds, os.path.join(d, "%s_%02d.dcm" % (name, inst)))


def dwi(out):
    d = os.path.join(out, "dwi")
    os.makedirs(d)
    uid, inst = generate_uid(), 0
    vols = [(0, [0, 0, 0]), (1000, [1, 0, 0]), (1000, [0, 1, 0])]
    for v in range(len(vols) + 1):
        for z in range(4):
            inst += 1
            if v < len(vols):
                b, vec = vols[v]
                ds = mr_slice(uid, 38, "dwi", z, inst, 2000 * v, ImageType=["ORIGINAL", "PRIMARY", "OTHER"],
                              DiffusionBValue=b, DiffusionGradientOrientation=vec)
            else:  # the trace, derived, told apart by value 1 of ImageType alone
                ds = mr_slice(uid, 38, "dwi", z, inst, 9000, ImageType=["DERIVED", "PRIMARY", "OTHER"],
                              DiffusionBValue=1000)
            ds.Manufacturer, ds.ScanningSequence, ds.SequenceVariant = "GE MEDICAL SYSTEMS", "EP", "SK"
            ds.AcquisitionNumber, ds.AcquisitionTime = v + 1, "1010%02d.000000" % (10 + v)
            save(ds, os.path.join(d, "dwi_%d_%d.dcm" % (v, z)))
    d = os.path.join(out, "dwi_philips")
    os.makedirs(d)
    uid, inst = generate_uid(), 0
    for v, (b, vec) in enumerate(vols + [(1000, [0, 0, 0])]):
        for z in range(4):
            inst += 1
            ds = mr_slice(uid, 39, "dwi philips", z, inst, 2000 * v, ImageType=["ORIGINAL", "PRIMARY", "M_SE", "M", "SE"],
                          DiffusionBValue=b, DiffusionGradientOrientation=vec)
            ds.Manufacturer, ds.ScanningSequence, ds.SequenceVariant = "Philips Medical Systems", "SE", "SK"
            ds.AcquisitionNumber, ds.AcquisitionTime = 1, "101010.000000"
            save(ds, os.path.join(d, "dwi_%d_%d.dcm" % (v, z)))


def ge_b0map(out):
    d = os.path.join(out, "ge_b0map")
    os.makedirs(d)
    uid = generate_uid()
    for v in range(2):
        for z in range(4):
            ds = mr_slice(uid, 47, "ge b0map", z, 4 * v + z + 1, 7000 * v, ImageType=["ORIGINAL", "PRIMARY", "OTHER"])
            ds.Manufacturer, ds.ImagesInAcquisition = "GE MEDICAL SYSTEMS", 8
            ds.private_block(0x0019, "GEMS_ACQU_01", create=True).add_new(0x9E, "LO", "B0map")
            ds.private_block(0x0021, "GEMS_RELA_01", create=True).add_new(0x4F, "SS", 4)
            save(ds, os.path.join(d, "b0_%d_%d.dcm" % (v, z)))


def ybr_full(rgb):
    """RGB (uint8, ... x 3) to full-range YCbCr, rounded (DICOM PS3.3 C.7.6.3.1.2)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.rint(np.stack([y, cb, cr], -1)), 0, 255).astype(np.uint8)


def colour(d, name, number, photometric, data, **attrs):
    ds = base("OT", generate_uid(), number, name, "1.2.840.10008.5.1.4.1.1.7")
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = ROWS, COLS, 3, photometric
    ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = data
    save(ds, os.path.join(d, name + ".dcm"))


def encodings(out):
    d = os.path.join(out, "enc")
    for sub in ("deflate", "gz"):
        os.makedirs(os.path.join(d, sub))
    uid = generate_uid()
    for z in range(3):
        ds = mr_slice(uid, 40, "enc", z, z + 1, modality="CT")
        save(ds, os.path.join(d, "ct_%d.dcm" % z))
        ds.file_meta.TransferSyntaxUID = DEFLATED
        ds.save_as(os.path.join(d, "deflate", "ct_%d.dcm" % z), write_like_original=False)
        with open(os.path.join(d, "ct_%d.dcm" % z), "rb") as f, gzip.open(os.path.join(d, "gz", "ct_%d.dcm.gz" % z), "wb") as g:
            g.write(f.read())
    # colour: a smooth RGB picture, as YBR_FULL_422 (Y1 Y2 Cb Cr, chroma of each pixel pair
    # averaged), YBR_FULL and RGB
    r, c = np.mgrid[0:ROWS, 0:COLS]
    rgb = np.stack([20 * c + 10, 25 * r + 5, 200 - 8 * c - 5 * r], -1).astype(np.uint8)
    ybr = ybr_full(rgb)
    pairs = ybr.reshape(ROWS, COLS // 2, 2, 3).astype(np.float64)
    y422 = np.concatenate([pairs[..., 0], np.rint(pairs[..., 1:].mean(axis=2))], -1)  # Y1 Y2 Cb Cr
    colour(d, "ybr422", 41, "YBR_FULL_422", y422.astype(np.uint8).tobytes())
    colour(d, "ybr_full", 42, "YBR_FULL", ybr.tobytes())
    colour(d, "rgb", 43, "RGB", rgb.tobytes())
    with open(os.path.join(d, "ybr_y.txt"), "w") as f:
        f.write("%d\n" % int(ybr[..., 0].astype(np.int64).sum()))
    colour(d, "hsv", 44, "HSV", rgb.tobytes())
    colour(d, "partial", 45, "YBR_PARTIAL_420", rgb.tobytes())
    pal = base("OT", generate_uid(), 46, "palette", "1.2.840.10008.5.1.4.1.1.7")
    pal.Rows, pal.Columns, pal.SamplesPerPixel, pal.PhotometricInterpretation = ROWS, COLS, 1, "PALETTE COLOR"
    pal.BitsAllocated, pal.BitsStored, pal.HighBit, pal.PixelRepresentation = 8, 8, 7, 0
    pal.PixelData = pixels(0).astype(np.uint8).tobytes()
    save(pal, os.path.join(d, "palette.dcm"))
    with open(os.path.join(d, "ct_0.dcm"), "rb") as f:
        whole = gzip.compress(f.read())
    with open(os.path.join(d, "bad.dcm.gz"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    with open(os.path.join(d, "text.dcm.gz"), "wb") as f:
        f.write(gzip.compress(b"not dicom at all\n" * 20))


def shared_copies(out, shared):
    d = os.path.join(out, "shared")
    os.makedirs(d)
    ts = os.path.join(shared, "dcm_qa_ts", "In")
    for n in (1, 9):
        with open(os.path.join(ts, "%d.dcm" % n), "rb") as f, gzip.open(os.path.join(d, "%d.dcm.gz" % n), "wb") as g:
            g.write(f.read())
    ds = pydicom.dcmread(os.path.join(ts, "1.dcm"))
    ds.file_meta.TransferSyntaxUID = DEFLATED
    ds.save_as(os.path.join(d, "1_deflated.dcm"), write_like_original=False)


def main(out, shared=None):
    os.makedirs(out, exist_ok=True)
    clash(out)
    echo_enhanced(out)
    echo_classic(out)
    magphase(out, "magphase", 36)
    magphase(out, "magphase_gap", 37, drop=6)
    dwi(out)
    ge_b0map(out)
    encodings(out)
    if shared:
        shared_copies(out, shared)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
