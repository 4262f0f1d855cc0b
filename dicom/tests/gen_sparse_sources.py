#!/usr/bin/python3
"""gen_sparse_sources.py OUT: DICOM sources that omit, empty or garble what outputs copy, for
test_out_sparse (Debian's python3-pydicom). One small series per folder (16 x 16, 3 slices,
CT unless said), each a class of what de-identification tools, old scanners and exports write:

  rich/          every patient/study attribute present and valid (the values must survive)
  deid_nomethod/ Patient Identity Removed YES, no De-identification Method (nor its codes)
  deid_empty/    Patient Identity Removed YES, Method and Method Code Sequence present but empty
  deid_codes/    Patient Identity Removed YES with a Method Code Sequence only (valid as is)
  minimal/       only what an image needs: no patient name/ID/sex/birth date, no study date,
                 time, ID, accession, referring physician, no frame of reference, body part,
                 series/instance number, modality or character set
  empty/         the same attributes present with zero length (UIDs of the frame of reference
                 too), and an empty Patient Identity Removed
  garbled/       values that break their VR or enumeration: sex "U", dates with dashes, a time
                 of 25:61, a 7-character age, a name with 6 components, a 70-character study
                 description, a lower-case body part, an unknown character set, a weight "abc",
                 a procedure code item without a code value
  animal/        a veterinary patient (species) without breed and responsible person
  nostudy/       no Study Instance UID at all
  enhanced/      an Enhanced CT (3 frames) as sparse as minimal/
"""
import os
import sys

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

CT = "1.2.840.10008.5.1.4.1.1.2"
ENH_CT = "1.2.840.10008.5.1.4.1.1.2.1"
ROOT = "1.2.826.0.1.3680043.8.498.77"


CASES = ["rich", "deid_nomethod", "deid_empty", "deid_codes", "minimal", "empty", "garbled", "animal", "nostudy",
         "enhanced"]


def uid(case, *parts):
    return ".".join([ROOT, str(CASES.index(case) + 1)] + [str(p) for p in parts])


def item(**kw):
    d = Dataset()
    for k, v in kw.items():
        setattr(d, k, v)
    return d


def image(case, k, sop_class=CT):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = uid(case, 2, k)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid(case, 0), uid(case, 1)
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    if sop_class == CT:
        ds.ImagePositionPatient = [-4.0, -4.0, 2.5 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        yy, xx = np.mgrid[0:16, 0:16]
        ds.PixelData = (1024 + 40 + 10 * np.sin(xx + k) + yy).astype(np.int16).tobytes()
    return ds


def full(ds, case):
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Sparse^Rich", "SPARSE-%s" % case, \
        "19700101", "F"
    ds.PatientAge, ds.PatientWeight, ds.PatientSize = "054Y", 61.5, 1.68
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20240102", "101500", "S1", "ACC1"
    ds.ReferringPhysicianName, ds.StudyDescription = "Ref^Doctor", "sparse source test"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 5, 1
    ds.SeriesDescription, ds.BodyPartExamined = "sparse %s" % case, "ABDOMEN"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = uid(case, 3), ""
    ds.Manufacturer, ds.InstitutionName, ds.StationName = "Scanner Co", "General Hospital", "CT01"
    ds.ProcedureCodeSequence = Sequence([item(CodeValue="CTABD", CodingSchemeDesignator="99LOCAL",
                                              CodeMeaning="CT abdomen")])


def strip(ds, names):
    for n in names:
        if n in ds:
            del ds[n]


OPTIONAL = ["SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
            "PatientWeight", "PatientSize", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
            "ReferringPhysicianName", "StudyDescription", "Modality", "SeriesNumber", "InstanceNumber",
            "SeriesDescription", "BodyPartExamined", "FrameOfReferenceUID", "PositionReferenceIndicator",
            "Manufacturer", "InstitutionName", "StationName", "ProcedureCodeSequence"]


def empty(ds, names):
    for n in names:
        tag = pydicom.datadict.tag_for_keyword(n)
        vr = pydicom.datadict.dictionary_VR(tag)
        ds[tag] = DataElement(tag, vr, [] if vr == "SQ" else None)


def raw(ds, keyword, value, vr=None):
    """A value written as is, whatever its VR says (pydicom would refuse or convert it)."""
    tag = pydicom.datadict.tag_for_keyword(keyword)
    ds[tag] = DataElement(tag, vr or pydicom.datadict.dictionary_VR(tag), value)


def save(ds, out, case, k):
    d = os.path.join(out, case)
    os.makedirs(d, exist_ok=True)
    ds.save_as(os.path.join(d, "im%d.dcm" % k), write_like_original=True)


def series(out, case, edit):
    for k in range(3):
        ds = image(case, k)
        full(ds, case)
        edit(ds)
        save(ds, out, case, k)


def enhanced(out):
    case = "enhanced"
    ds = image(case, 0, ENH_CT)
    ds.NumberOfFrames = 3
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.SharedFunctionalGroupsSequence = Sequence([item(
        PixelMeasuresSequence=Sequence([item(PixelSpacing=[0.5, 0.5], SliceThickness=2.5)]),
        PlaneOrientationSequence=Sequence([item(ImageOrientationPatient=[1, 0, 0, 0, 1, 0])]),
        PixelValueTransformationSequence=Sequence([item(RescaleIntercept=-1024, RescaleSlope=1, RescaleType="HU")]))])
    ds.PerFrameFunctionalGroupsSequence = Sequence([
        item(PlanePositionSequence=Sequence([item(ImagePositionPatient=[-4.0, -4.0, 2.5 * k])]),
             FrameContentSequence=Sequence([item(StackID="1", InStackPositionNumber=k + 1)])) for k in range(3)])
    del ds.RescaleIntercept, ds.RescaleSlope
    yy, xx = np.mgrid[0:16, 0:16]
    ds.PixelData = np.stack([(1024 + 40 + 10 * np.sin(xx + k) + yy) for k in range(3)]).astype(np.int16).tobytes()
    save(ds, out, case, 0)


def main(out):
    series(out, "rich", lambda ds: None)

    def deid_nomethod(ds):
        ds.PatientIdentityRemoved = "YES"
    series(out, "deid_nomethod", deid_nomethod)

    def deid_empty(ds):
        ds.PatientIdentityRemoved = "YES"
        empty(ds, ["DeidentificationMethod", "DeidentificationMethodCodeSequence"])
    series(out, "deid_empty", deid_empty)

    def deid_codes(ds):
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethodCodeSequence = Sequence([item(
            CodeValue="113100", CodingSchemeDesignator="DCM", CodeMeaning="Basic Application Confidentiality Profile")])
    series(out, "deid_codes", deid_codes)

    series(out, "minimal", lambda ds: strip(ds, OPTIONAL))

    def emptied(ds):
        empty(ds, OPTIONAL + ["PatientIdentityRemoved"])
    series(out, "empty", emptied)

    def garbled(ds):
        raw(ds, "PatientSex", "U")
        raw(ds, "StudyDate", "2024-01-02")
        raw(ds, "StudyTime", "25:61")
        raw(ds, "PatientBirthDate", "1970-01-01")
        raw(ds, "PatientAge", "54 yrs")
        raw(ds, "PatientName", "A^B^C^D^E^F")
        raw(ds, "StudyDescription", "x" * 70)
        raw(ds, "BodyPartExamined", "abdomen lower")
        raw(ds, "SpecificCharacterSet", "ISO_IR 999")
        raw(ds, "PatientWeight", "abc", "LO")  # explicit VR: DCMTK keeps it as LO
        raw(ds, "AccessionNumber", "A" * 20)
        ds.ProcedureCodeSequence = Sequence([item(CodeMeaning="no code value")])
    series(out, "garbled", garbled)

    def animal(ds):
        ds.PatientSpeciesDescription = "Canis lupus familiaris"
    series(out, "animal", animal)

    def nostudy(ds):
        del ds.StudyInstanceUID
    series(out, "nostudy", nostudy)

    enhanced(out)


if __name__ == "__main__":
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pydicom.config.settings.writing_validation_mode = pydicom.config.IGNORE
    main(sys.argv[1])
