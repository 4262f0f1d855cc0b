#!/usr/bin/python3
"""gen_hostile_volumes.py OUT: NIfTI, NRRD and MetaImage files for test_volume_hostile, written
byte by byte (struct, zlib; nibabel only for the valid NIfTI). OUT/good/ holds valid files of
every layout the checker must let through, each an 8 x 6 x 4 volume with voxel (x, y, z) =
100 z + 10 y + x as int16 (spacing 0.5, 0.75, 2; origin 10, 20, 30 in the NIfTI/NRRD frame);
OUT/bad/ holds one file per class of broken header, named <class>.<ext>, and a list
OUT/bad.txt of "<file> <word the error message must contain>"; OUT/budget/big.nii is a valid
128 x 128 x 16 volume (2.5 MiB to read) for the memory budget."""
import gzip
import os
import struct
import sys
import zlib

import numpy as np

X, Y, Z = 8, 6, 4
VOL = (100 * np.arange(Z)[:, None, None] + 10 * np.arange(Y)[None, :, None] +
       np.arange(X)[None, None, :]).astype("<i2")  # [z][y][x]
RAW = VOL.tobytes()


def nifti_header(dims=(3, X, Y, Z), datatype=4, bitpix=16, pixdim=(1, 0.5, 0.75, 2.0), qform=0, quat=(0, 0, 0),
                 qoffset=(0, 0, 0), sform=1, srow=None, vox_offset=352.0, magic=b"n+1\0"):
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    d = list(dims) + [1] * (8 - len(dims))
    struct.pack_into("<8h", h, 40, *d)
    struct.pack_into("<hh", h, 70, datatype, bitpix)
    p = list(pixdim) + [0] * (8 - len(pixdim))
    struct.pack_into("<8f", h, 76, *p)
    struct.pack_into("<f", h, 108, vox_offset)
    struct.pack_into("<f", h, 112, 1.0)
    struct.pack_into("<hh", h, 252, qform, sform)
    struct.pack_into("<3f", h, 256, *quat)
    struct.pack_into("<3f", h, 268, *qoffset)
    if srow is None:
        srow = [0.5, 0, 0, -10, 0, 0.75, 0, -20, 0, 0, 2.0, 30]
    struct.pack_into("<12f", h, 280, *srow)
    struct.pack_into("<b", h, 123, 2)  # xyzt_units: mm
    h[344:348] = magic
    return bytes(h) + b"\0" * 4  # extension flag


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def nrrd(fields, data=b"", attached=True):
    head = "NRRD0004\n" + "".join("%s: %s\n" % kv for kv in fields)
    return head.encode() + (b"\n" + data if attached else b"")


NRRD_OK = [("type", "short"), ("dimension", "3"), ("space", "left-posterior-superior"), ("sizes", "%d %d %d" % (X, Y, Z)),
           ("space directions", "(0.5,0,0) (0,0.75,0) (0,0,2)"), ("kinds", "domain domain domain"),
           ("endian", "little"), ("encoding", "raw"), ("space origin", "(10,20,30)")]


def nrrd_with(**changes):
    f = []
    for k, v in NRRD_OK:
        key = k.replace(" ", "_")
        if key in changes:
            if changes[key] is not None:
                f.append((k, changes[key]))
        else:
            f.append((k, v))
    for k, v in changes.items():
        if k.replace("_", " ") not in [a for a, _ in NRRD_OK] and v is not None:
            f.append((k.replace("_", " "), v))
    return f


def meta(fields):
    return "".join("%s = %s\n" % kv for kv in fields).encode()


META_OK = [("ObjectType", "Image"), ("NDims", "3"), ("BinaryData", "True"), ("BinaryDataByteOrderMSB", "False"),
           ("CompressedData", "False"), ("TransformMatrix", "1 0 0 0 1 0 0 0 1"), ("Offset", "10 20 30"),
           ("ElementSpacing", "0.5 0.75 2"), ("DimSize", "%d %d %d" % (X, Y, Z)), ("ElementType", "MET_SHORT")]


def meta_with(data_file="LOCAL", **changes):
    f = [(k, changes.pop(k, v)) for k, v in META_OK]
    f = [(k, v) for k, v in f if v is not None]
    f += list(changes.items())
    return meta(f + [("ElementDataFile", data_file)])


def main(out):
    g = os.path.join(out, "good")
    import nibabel as nib
    affine = np.array([[-0.5, 0, 0, 10], [0, -0.75, 0, 20], [0, 0, 2, 30], [0, 0, 0, 1]])
    img = nib.Nifti1Image(np.transpose(VOL, (2, 1, 0)), affine)
    os.makedirs(g, exist_ok=True)
    nib.save(img, os.path.join(g, "nibabel.nii"))
    nib.save(img, os.path.join(g, "nibabel.nii.gz"))
    write(os.path.join(g, "qform.nii"), nifti_header(qform=1, sform=0, quat=(0, 0, 1), qoffset=(10, 20, 30),
                                                    pixdim=(1, 0.5, 0.75, 2.0)) + RAW)
    write(os.path.join(g, "attached.nrrd"), nrrd(NRRD_OK, RAW))
    write(os.path.join(g, "gzip.nrrd"), nrrd(nrrd_with(encoding="gzip"), gzip.compress(RAW)))
    write(os.path.join(g, "detached.nhdr"), nrrd(nrrd_with(data_file="detached.raw"), attached=False))
    write(os.path.join(g, "detached.raw"), RAW)
    write(os.path.join(g, "local.mha"), meta_with() + RAW)
    write(os.path.join(g, "zlib.mha"), meta_with(CompressedData="True", CompressedDataSize=str(len(zlib.compress(RAW))))
          + zlib.compress(RAW))
    write(os.path.join(g, "external.mhd"), meta_with("external.zraw"))
    write(os.path.join(g, "external.zraw"), RAW)  # not compressed despite the name: CompressedData False

    # 128 x 128 x 16 int16: 2.5 MiB to read (two float copies and the file's type), for the budget
    os.makedirs(os.path.join(out, "budget"), exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((128, 128, 16), np.int16), affine), os.path.join(out, "budget", "big.nii"))

    b = os.path.join(out, "bad")
    bad = []

    def add(name, data, says):
        write(os.path.join(b, name), data)
        bad.append("%s %s" % (name, says))

    nan, inf, huge = float("nan"), float("inf"), 3.4e38
    add("pixdim_nan.nii", nifti_header(pixdim=(1, nan, 0.75, 2)) + RAW, "pixdim[1]")
    add("pixdim_inf.nii", nifti_header(pixdim=(1, 0.5, inf, 2)) + RAW, "pixdim[2]")
    add("pixdim_huge.nii", nifti_header(pixdim=(1, 0.5, 0.75, huge)) + RAW, "pixdim[3]")
    add("pixdim_zero.nii", nifti_header(pixdim=(1, 0, 0.75, 2)) + RAW, "pixdim[1]")
    add("pixdim_denormal.nii", nifti_header(pixdim=(1, 2.7e-39, 0.75, 2)) + RAW, "pixdim[1]")
    add("qfac_nan.nii", nifti_header(pixdim=(nan, 0.5, 0.75, 2)) + RAW, "pixdim[0]")
    add("sform_nan.nii", nifti_header(srow=[nan] + [0] * 11) + RAW, "sform")
    add("sform_huge.nii", nifti_header(srow=[huge, 0, 0, 0, 0, huge, 0, 0, 0, 0, huge, 0]) + RAW, "sform")
    add("sform_zero.nii", nifti_header(srow=[0] * 12) + RAW, "degenerate")
    add("quat_nan.nii", nifti_header(qform=1, sform=0, quat=(nan, 0, 0)) + RAW, "qform")
    add("quat_huge.nii", nifti_header(qform=1, sform=0, quat=(huge, huge, huge)) + RAW, "qform")
    add("quat_norm.nii", nifti_header(qform=1, sform=0, quat=(1, 1, 1)) + RAW, "rotation")
    add("qoffset_inf.nii", nifti_header(qform=1, sform=0, qoffset=(0, inf, 0)) + RAW, "qform")
    add("dims_short.nii", nifti_header(dims=(3, 512, 512, 300)) + RAW, "promises")
    add("dims_short_4d.nii", nifti_header(dims=(4, X, Y, Z, 30000)) + RAW, "promises")
    add("dims_short.nii.gz", gzip.compress(nifti_header(dims=(3, 1000, 1000, 100)) + RAW), "promises")
    add("truncated.nii", (nifti_header() + RAW)[:400], "promises")
    add("dims_budget.nii", nifti_header(dims=(3, 32767, 32767, 32767)) + RAW, "budget")
    add("dim0.nii", nifti_header(dims=(9, X, Y, Z)) + RAW, "dim[0]")
    add("dim_negative.nii", nifti_header(dims=(3, -8, Y, Z)) + RAW, "dim[1]")
    add("complex.nii", nifti_header(datatype=32, bitpix=64) + RAW, "complex")
    add("nifti2.nii", struct.pack("<i", 540) + b"n+2\0\r\n\x1a\n" + b"\0" * 600, "NIfTI-2")
    add("pair_magic.nii", nifti_header(magic=b"ni1\0") + RAW, "magic")
    add("vox_offset_nan.nii", nifti_header(vox_offset=nan) + RAW, "vox_offset")

    add("ndims_minus1.mha", meta_with(NDims="-1") + RAW, "NDims")
    add("ndims_huge.mha", meta_with(NDims="99999999") + RAW, "NDims")
    add("ndims_zero.mha", meta_with(NDims="0") + RAW, "NDims")
    add("dimsize_count.mha", meta_with(DimSize="8 6") + RAW, "DimSize")
    add("dimsize_short.mha", meta_with(DimSize="512 512 300") + RAW, "promises")
    add("dimsize_negative.mha", meta_with(DimSize="8 -6 4") + RAW, "DimSize")
    add("dimsize_budget.mha", meta_with(DimSize="2000000000 2000000000 4") + RAW, "budget")
    add("spacing_nan.mha", meta_with(ElementSpacing="0.5 nan 2") + RAW, "ElementSpacing")
    add("spacing_zero.mha", meta_with(ElementSpacing="0.5 0 2") + RAW, "ElementSpacing")
    add("offset_inf.mha", meta_with(Offset="10 inf 30") + RAW, "Offset")
    add("matrix_nan.mha", meta_with(TransformMatrix="1 0 0 0 nan 0 0 0 1") + RAW, "TransformMatrix")
    add("matrix_zero.mha", meta_with(TransformMatrix="0 0 0 0 0 0 0 0 0") + RAW, "degenerate")
    # a zlib stream that gives enough bytes but fails its checksum, and one cut before its end:
    # ITK's MetaIO leaves the image uninitialised (found by fuzz_metaimage with valgrind)
    z = bytearray(zlib.compress(RAW))
    z[-1] ^= 0xFF
    add("zlib_bad_check.mha", meta_with(CompressedData="True") + bytes(z), "corrupt or cut short")
    z2 = zlib.compress(RAW + RAW)
    assert len(zlib.decompressobj().decompress(z2[:-8])) >= len(RAW)
    add("zlib_cut.mha", meta_with(CompressedData="True") + z2[:-8], "corrupt or cut short")
    # MetaIO strcpy's string values into 255-byte arrays, teem formats a bad line into a 1 KiB
    # buffer: long values overflow them (fuzz_metaimage, fuzz_nrrd)
    add("comment_long.mha", meta_with(Comment="x" * 300) + RAW, "characters (at most 254)")
    add("line_long.nrrd", nrrd(nrrd_with(content="c" * 1000), RAW), "characters (at most 768)")
    # a field after NUL bytes: we would skip the line, teem reads it (fuzz_nrrd)
    add("nul_in_header.nrrd", nrrd(nrrd_with(space_directions=None)).replace(b"sizes:", b"spac\0\0\0e directions: (0.5,0,1) (0,0.75,0) (0,0,2)\nsizes:") + b"\n" + RAW, "control character")
    add("control_in_header.mha", meta_with(data_file="\x0c\x0c data.raw"), "control character")
    add("lone_cr_in_header.mha", meta_with(data_file="\rdata.raw"), "control character")
    add("long_magic_line.nrrd", nrrd(nrrd_with()).replace(b"sizes:", b"NRRD0004" + b"(0,0.75,0)" * 90 + b"\nsizes:", 1)
        + b"\n" + RAW, "header line of")
    add("key_long.mha", meta(META_OK[:3] + [("K" * 300, "1")] + META_OK[3:] + [("ElementDataFile", "LOCAL")]) + RAW,
        "not a MetaImage key")
    # MetaIO allocates CompressedDataSize bytes before reading them (fuzz_metaimage)
    add("compressed_size_huge.mha", meta_with(CompressedData="True", CompressedDataSize="9223372036854775807")
        + zlib.compress(RAW), "CompressedDataSize")
    add("compressed_size_negative.mha", meta_with(CompressedData="True", CompressedDataSize="-5") + zlib.compress(RAW),
        "CompressedDataSize")
    add("unknown_key.mha", meta(META_OK[:3] + [("BinaryDims", "3")] + META_OK[3:] + [("ElementDataFile", "LOCAL")]) + RAW,
        "not one of MetaIO's image fields")
    add("matrix_scaled.mha", meta_with(TransformMatrix="1 0 0 0 1 0 0 0.75 2") + RAW, "unit vector")
    add("matrix_sheared.mha", meta_with(TransformMatrix="1 0 0 0.6 0.8 0 0 0 1") + RAW, "not orthogonal")
    add("ascii_missing.mha", meta_with(BinaryData=None) + RAW, "ASCII")
    add("ascii_garbled.mha", meta_with(BinaryData="\xff\xffTrue") + RAW, "ASCII")
    add("ascii_compressed.mha", meta_with(BinaryData="False", CompressedData="True") + zlib.compress(RAW), "ASCII")
    add("key_twice.mha", meta_with(ElementSpacing="0.5 0.75 2").replace(b"DimSize", b"ElementSpacing = 1 1 1\nDimSize")
        + RAW, "given twice")
    add("stray_line.mha", meta_with().replace(b"DimSize", b"some text\nDimSize") + RAW, "not \"Key = Value\"")
    add("spacing_count.mha", meta_with(ElementSpacing="0.5 0.75") + RAW, "NDims is 3")
    add("string_type.mha", meta_with(ElementType="MET_STRING") + RAW, "ElementType")
    add("channels.mha", meta_with(ElementNumberOfChannels="3") + RAW, "channels")
    add("zlib_short.mha", meta_with(CompressedData="True") + zlib.compress(RAW)[:20], "promises")
    add("list.mha", meta_with("LIST") + RAW, "several files")
    add("external_missing.mhd", meta_with("nowhere.raw"), "nowhere.raw")
    add("external_short.mhd", meta_with("short.raw"), "promises")
    write(os.path.join(b, "short.raw"), RAW[:100])
    add("external_dir.mhd", meta_with("."), "regular file")
    add("external_device.mhd", meta_with("/dev/zero"), "regular file")
    add("no_datafile.mha", meta(META_OK), "ElementDataFile")

    add("dimension_zero.nrrd", nrrd(nrrd_with(dimension="0"), RAW), "dimension")
    add("dimension_huge.nrrd", nrrd(nrrd_with(dimension="99999999"), RAW), "dimension")
    add("sizes_count.nrrd", nrrd(nrrd_with(sizes="8 6"), RAW), "sizes")
    add("sizes_short.nrrd", nrrd(nrrd_with(sizes="512 512 300"), RAW), "promises")
    add("sizes_budget.nrrd", nrrd(nrrd_with(sizes="2000000000 2000000000 4"), RAW), "budget")
    add("gzip_short.nrrd", nrrd(nrrd_with(encoding="gzip"), gzip.compress(RAW)[:30]), "promises")
    add("direction_nan.nrrd", nrrd(nrrd_with(space_directions="(nan,0,0) (0,0.75,0) (0,0,2)"), RAW), "direction")
    add("direction_zero.nrrd", nrrd(nrrd_with(space_directions="(0,0,0) (0,0.75,0) (0,0,2)"), RAW), "shorter than 1 nm")
    add("direction_flat.nrrd", nrrd(nrrd_with(space_directions="(0.5,0,0) (0,0.75,0) (0.5,0.75,0)"), RAW), "degenerate")
    add("direction_sheared.nrrd", nrrd(nrrd_with(space_directions="(0.5,0,0) (0.3,0.4,0) (0,0,2)"), RAW), "sheared")
    # teem reads "spacedirections" as "space directions" (fuzz_nrrd found a sheared grid that way)
    add("direction_sheared_spelling.nrrd",
        nrrd([(k.replace("space directions", "spacedirections"), v) for k, v in
              nrrd_with(space_directions="(0.5,0,0) (0,0.75,0) (0,8,2)")], RAW), "sheared")
    add("origin_inf.nrrd", nrrd(nrrd_with(space_origin="(10,inf,30)"), RAW), "origin")
    add("block.nrrd", nrrd(nrrd_with(type="block"), RAW), "type")
    add("bzip2.nrrd", nrrd(nrrd_with(encoding="bzip2"), RAW), "encoding")
    add("detached_missing.nhdr", nrrd(nrrd_with(data_file="nowhere.raw"), attached=False), "nowhere.raw")
    add("detached_list.nhdr", nrrd(nrrd_with(data_file="LIST"), attached=False), "several files")
    with open(os.path.join(out, "bad.txt"), "w") as f:
        f.write("\n".join(bad) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
