#!/usr/bin/python3
"""gen_scanner_like.py OUT: a 4-D MR series laid out as scanners export them, for
test_cli_score_nih's in-repository case (Debian python3-pydicom):
OUT/mr_4d/: MR, 3 slice positions x 4 temporal positions (TemporalPositionIdentifier 1..4,
            RepetitionTime 2000 ms), 64 x 64 uint16, one file per image in acquisition order,
            with README-Series.txt beside the images (not DICOM: reported, not scored)."""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

MR = "1.2.840.10008.5.1.4.1.1.4"


def main(out):
    d = os.path.join(out, "mr_4d")
    os.makedirs(d, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    yy, xx = np.mgrid[0:64, 0:64]
    head = ((xx - 32) ** 2 + (yy - 30) ** 2) < 26 ** 2
    k = 0
    for t in range(4):
        for z in range(3):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MR
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = MR, meta.MediaStorageSOPInstanceUID
            ds.PatientID, ds.PatientName = "SCANNER-LIKE", "Scanner^Like"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", 4, k + 1
            ds.StudyDate, ds.StudyTime, ds.SeriesDescription = "20260102", "093000", "Axial EPI fMRI"
            ds.TemporalPositionIdentifier, ds.RepetitionTime = t + 1, 2000
            ds.ImagePositionPatient = [-96.0, -90.0, 4.0 * z]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing, ds.SliceThickness = [3.0, 3.0], 4.0
            ds.Rows, ds.Columns = 64, 64
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            px = np.where(head, 800 + 40 * np.sin(0.3 * xx + z) + 10 * t, 20).astype(np.uint16)
            ds.PixelData = px.tobytes()
            ds.is_little_endian, ds.is_implicit_VR = True, False
            ds.save_as(os.path.join(d, "MR%04d.dcm" % (k + 1)), write_like_original=False)
            k += 1
    with open(os.path.join(d, "README-Series.txt"), "w") as f:
        f.write("Series 4: axial EPI, 3 slices x 4 volumes (exported like a scanner's series folder)\n")


if __name__ == "__main__":
    main(sys.argv[1])
