#!/usr/bin/python3
"""gen_j2k_sources.py sources OUT | mutants J2KDIR OUT | variants J2KDIR OUT (Debian's
python3-pydicom), for test_dicom_j2k.

sources: uncompressed images for aaclip-j2k-fixture to encode, one series each:
  mono16.dcm  CT 32 x 24, int16 signed, value 37 x - 11 y + 500
  mono8.dcm   MR 20 x 12, uint8, value 3 x + 7 y
  multi3.dcm  MR 16 x 16 x 3 frames, uint16, value 1000 f + 16 y + x
  rgb8.dcm    OT 12 x 10 RGB, uint8, (10 x, 20 y, 200)
mutants: copies of the JPEG 2000 files whose header disagrees with the codestream, each
<name>.dcm in OUT, listed in OUT/mutants.txt as "<name> <what the error must say>": rows and
columns smaller, larger, swapped (same pixel count), bits allocated 8 on a 16-bit codestream,
3 samples on a grey one and 1 on a colour one, more and fewer frames than codestreams, and a
codestream whose image header is cut short, a codestream cut short after its header (without
and with an end marker put back), a first fragment that is no codestream, a grey codestream in a
JP2 file whose palette makes it colour.
variants: copies of the JPEG 2000 files that must decode to the same values, listed in
OUT/variants.txt as "<name> <source>": a frame in several fragments with padding after its end
marker, the codestreams wrapped in JP2 files (grey and colour)."""
import struct
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
    mutant("body_cut", "mono16.dcm", "codestream 1 is truncated", fragments=lambda fr: [fr[0][:len(fr[0]) // 2]])
    mutant("body_cut_eoc", "multi3.dcm", "codestream 2 cannot be decoded",
           fragments=lambda fr: [fr[0], fr[1][:len(fr[1]) * 2 // 3] + b"\xff\xd9", fr[2]])
    mutant("first_not_j2k", "mono16.dcm", "fragment 1 does not start a codestream",
           fragments=lambda fr: [b"\0" * 16] + fr)
    mutant("jp2_palette", "mono8.dcm", "decoded JPEG 2000 codestream 1 is 20 x 12 with 3 component(s)",
           fragments=lambda fr: [jp2(fr[0], palette=True)])
    # a SIZ whose grid is cut into 1 x 1 tiles (OpenJPEG would set up 98304 tiles from it)
    mutant("tiles", "mono16.dcm", "cut into 98304 tiles",
           fragments=lambda fr: [fr[0][:8] + (4096).to_bytes(4, "big") + fr[0][12:24] + (1).to_bytes(4, "big") * 2
                                 + fr[0][32:]])
    with open(os.path.join(out, "mutants.txt"), "w") as f:
        f.write("\n".join(listed) + "\n")


def box(kind, payload):
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def jp2(cs, palette=False):
    """A JP2 file around codestream cs (ISO 15444-1 annex I): signature, file type, header
    (image header and an enumerated colour space from its SIZ), the codestream box. palette: an
    8-bit grey codestream through a 256-entry RGB palette (pclr, cmap): 3 components decoded."""
    cs = cs.rstrip(b"\0")  # the fragment's padding
    ysiz, xsiz, yo, xo = (struct.unpack(">I", cs[i:i + 4])[0] for i in (12, 8, 20, 16))
    csiz = struct.unpack(">H", cs[40:42])[0]
    ssiz = cs[42]
    ihdr = struct.pack(">IIHBBBB", ysiz - yo, xsiz - xo, csiz, ssiz, 7, 0, 0)
    colr = struct.pack(">BBBI", 1, 0, 0, 16 if csiz == 3 or palette else 17)
    header = box(b"ihdr", ihdr) + box(b"colr", colr)
    if palette:
        entries = b"".join(bytes((v, 255 - v, v // 2)) for v in range(256))
        header += box(b"pclr", struct.pack(">HB", 256, 3) + bytes((7, 7, 7)) + entries)
        header += box(b"cmap", b"".join(struct.pack(">HBB", 0, 1, c) for c in range(3)))
    return (box(b"jP  ", b"\r\n\x87\n") + box(b"ftyp", b"jp2 " + struct.pack(">I", 0) + b"jp2 ") +
            box(b"jp2h", header) + box(b"jp2c", cs))


def variants(src, out):
    os.makedirs(out, exist_ok=True)
    listed = []

    def variant(name, base, change):
        ds = pydicom.dcmread(os.path.join(src, base))
        ds.PixelData = encapsulate(change(decode_data_sequence(ds.PixelData)))
        ds.save_as(os.path.join(out, name + ".dcm"))
        listed.append("%s %s" % (name, base[:-4]))

    def split(cs, parts):
        cs = cs.rstrip(b"\0")
        step = ((len(cs) + parts - 1) // parts + 1) & ~1  # even: encapsulate pads odd fragments
        return [cs[i:i + step] for i in range(0, len(cs), step)]

    variant("mono16_split", "mono16.dcm", lambda fr: split(fr[0] + b"\0\xff\0", 3))
    variant("multi3_split", "multi3.dcm", lambda fr: [fr[0]] + split(fr[1], 2) + [fr[2]])
    variant("mono16_jp2", "mono16.dcm", lambda fr: [jp2(fr[0])])
    variant("multi3_jp2", "multi3.dcm", lambda fr: [jp2(f) for f in fr])
    variant("rgb8_jp2", "rgb8.dcm", lambda fr: [jp2(fr[0])])
    with open(os.path.join(out, "variants.txt"), "w") as f:
        f.write("\n".join(listed) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "sources":
        sources(sys.argv[2])
    elif sys.argv[1] == "variants":
        variants(sys.argv[2], sys.argv[3])
    else:
        mutants(sys.argv[2], sys.argv[3])
