#!/usr/bin/python3
"""gen_score_fixtures.py OUT: three small CT studies for test_cli_score (Debian python3-pydicom).

OUT/studyA: CT, 4 slices 64x64, a bright round lesion in slices 1-2; slice 3 is air only (must
            be skipped as outside the body)
OUT/studyB: CT, 3 slices 48x48, smooth body, no lesion
OUT/studyC: CT, 3 slices declared JPEG Lossless whose compressed data is garbage: passes the
            header scan, fails to decode (the "corrupt series" of a batch)
OUT/studyA/README.txt: not DICOM (reported as skipped)"""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT = "1.2.840.10008.5.1.4.1.1.2"


def ct_slice(path, patient, study, series, z, px, ts=ExplicitVRLittleEndian, number=2):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ts
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID, ds.PatientName = patient, patient
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study])
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", number, int(z) + 1
    ds.StudyDate, ds.StudyTime, ds.SeriesDescription = "20260101", "120000", "score fixture"
    ds.ImagePositionPatient = [-100.0, -100.0, 5.0 * z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [1.5, 1.5], 5.0
    ds.Rows, ds.Columns = px.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    if ts == ExplicitVRLittleEndian:
        ds.PixelData = (px.astype(np.int32) + 1024).astype(np.int16).tobytes()
    else:
        ds.PixelData = encapsulate([b"\xff\xd8\xff\xc3" + bytes(range(200))])
        ds["PixelData"].VR = "OB"
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def body(n, lesion=None):
    y, x = np.mgrid[0:n, 0:n]
    c = (n - 1) / 2
    img = np.where(((x - c) / (0.42 * n)) ** 2 + ((y - c) / (0.35 * n)) ** 2 < 1, 40.0, -1000.0)
    if lesion:
        lx, ly, r = lesion
        img = np.where((x - lx) ** 2 + (y - ly) ** 2 < r * r, 200.0, img)
    return img


def main(out):
    a, b, c = (os.path.join(out, s) for s in ("studyA", "studyB", "studyC"))
    for d in (a, b, c):
        os.makedirs(d, exist_ok=True)
    st, se = generate_uid(), generate_uid()
    for z in range(4):
        px = body(64, (40, 28, 6) if z in (1, 2) else None) if z < 3 else np.full((64, 64), -1000.0)
        ct_slice(os.path.join(a, "a%d.dcm" % z), "PAT-A", st, se, z, px)
    with open(os.path.join(a, "README.txt"), "w") as f:
        f.write("not DICOM\n")
    st, se = generate_uid(), generate_uid()
    for z in range(3):
        ct_slice(os.path.join(b, "b%d.dcm" % z), "PAT-B", st, se, z, body(48))
    st, se = generate_uid(), generate_uid()
    for z in range(3):
        ct_slice(os.path.join(c, "c%d.dcm" % z), "PAT-C", st, se, z, body(48), ts="1.2.840.10008.1.2.4.70")


if __name__ == "__main__":
    main(sys.argv[1])
