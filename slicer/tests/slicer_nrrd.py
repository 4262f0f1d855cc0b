#!/usr/bin/python3
"""slicer_nrrd.py - NRRD files the way 3D Slicer writes a volume for a CLI module, and their
geometry read back, with numpy only (independent of ITK, which aaclip reads and writes with).

  slicer_nrrd.py from-dicom DICOM_DIR OUT.nrrd       a DICOM series (pydicom) as Slicer saves it:
                                                     short, gzip, LPS space directions and origin
  slicer_nrrd.py oblique OUT.nrrd                    a small volume on a rotated, anisotropic grid
  slicer_nrrd.py same-geometry A.nrrd B.nrrd         exit 0 when sizes, space, directions and origin
                                                     agree (1e-4 mm), 1 otherwise (says why)
  slicer_nrrd.py stats FILE.nrrd                     type, sizes, min, max, sum of the values
"""
import glob
import gzip
import math
import sys

import numpy as np

TYPES = {"short": np.int16, "int16": np.int16, "float": np.float32, "unsigned char": np.uint8,
         "uchar": np.uint8, "uint8": np.uint8, "double": np.float64, "int": np.int32}


def write(path, arr_zyx, ntype, directions, origin):
    """arr_zyx: numpy array [z][y][x]; directions: 3 vectors (one per index axis i, j, k)."""
    nz, ny, nx = arr_zyx.shape
    vec = " ".join("(%s)" % ",".join("%.17g" % c for c in d) for d in directions)
    header = ("NRRD0004\n# Complete NRRD file format specification at:\n"
              "# http://teem.sourceforge.net/nrrd/format.html\n"
              f"type: {ntype}\ndimension: 3\nspace: left-posterior-superior\nsizes: {nx} {ny} {nz}\n"
              f"space directions: {vec}\nkinds: domain domain domain\nendian: little\nencoding: gzip\n"
              "space origin: (%s)\n\n" % ",".join("%.17g" % c for c in origin))
    data = gzip.compress(np.ascontiguousarray(arr_zyx).astype("<" + np.dtype(TYPES[ntype]).str[1:]).tobytes(), 6)
    with open(path, "wb") as f:
        f.write(header.encode() + data)


def read(path):
    raw = open(path, "rb").read()
    end = raw.index(b"\n\n")
    fields = {}
    for line in raw[:end].decode().splitlines()[1:]:
        if line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        fields[k.strip()] = v.strip().lstrip("=").strip()
    sizes = [int(x) for x in fields["sizes"].split()]
    dirs = [[float(c) for c in d.strip("()").split(",")] for d in fields["space directions"].split()]
    origin = [float(c) for c in fields["space origin"].strip("()").split(",")]
    body = raw[end + 2:]
    if fields.get("encoding") in ("gzip", "gz"):
        body = gzip.decompress(body)
    dt = np.dtype(TYPES[fields["type"]]).newbyteorder("<" if fields.get("endian", "little") == "little" else ">")
    arr = np.frombuffer(body, dtype=dt, count=int(np.prod(sizes)))
    return fields, sizes, dirs, origin, arr


def to_lps(fields, dirs, origin):
    space = fields.get("space", "left-posterior-superior")
    if space in ("right-anterior-superior", "RAS"):
        flip = np.array([-1.0, -1.0, 1.0])
        return [list(np.array(d) * flip) for d in dirs], list(np.array(origin) * flip)
    return dirs, origin


def from_dicom(folder, out):
    import pydicom
    slices = [pydicom.dcmread(p) for p in sorted(glob.glob(folder + "/*.dcm"))]
    iop = [float(v) for v in slices[0].ImageOrientationPatient]
    row, col = np.array(iop[:3]), np.array(iop[3:])
    normal = np.cross(row, col)
    slices.sort(key=lambda s: float(np.dot(normal, [float(v) for v in s.ImagePositionPatient])))
    p0 = np.array([float(v) for v in slices[0].ImagePositionPatient])
    p1 = np.array([float(v) for v in slices[1].ImagePositionPatient])
    dy, dx = (float(v) for v in slices[0].PixelSpacing)
    vol = np.stack([s.pixel_array.astype(np.float64) * float(s.RescaleSlope) + float(s.RescaleIntercept)
                    for s in slices])
    write(out, np.round(vol).astype(np.int16), "short", [row * dx, col * dy, p1 - p0], p0)


def oblique(out):
    a, b = math.radians(20), math.radians(-10)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    r = rz @ rx
    spacing = [0.9, 1.1, 4.0]
    nx, ny, nz = 96, 80, 5
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx]
    body = ((x - nx / 2) ** 2 / (0.4 * nx) ** 2 + (y - ny / 2) ** 2 / (0.4 * ny) ** 2) < 1
    spot = ((x - 40) ** 2 + (y - 44) ** 2) < 36
    vol = np.where(body, 40.0, -1000.0) + np.where(spot & body, -45.0, 0.0) + 7.0 * np.sin(x * 0.7 + y * 0.3 + z)
    write(out, vol.astype(np.int16), "short", [r[:, i] * spacing[i] for i in range(3)], [12.5, -30.25, 101.0])


def same_geometry(a, b):
    fa, sa, da, oa, _ = read(a)
    fb, sb, db, ob, _ = read(b)
    da, oa = to_lps(fa, da, oa)
    db, ob = to_lps(fb, db, ob)
    if sa != sb:
        print(f"sizes differ: {sa} vs {sb}")
        return 1
    worst = max(max(abs(x - y) for x, y in zip(u, v)) for u, v in zip(da + [oa], db + [ob]))
    if worst > 1e-4:
        print(f"geometry differs by {worst} mm: {da} {oa} vs {db} {ob}")
        return 1
    print(f"same geometry: sizes {sa}, largest difference {worst:.3g} mm")
    return 0


def stats(path):
    f, s, _, _, arr = read(path)
    print(f"type {f['type']} sizes {' '.join(map(str, s))} min {arr.min():.9g} max {arr.max():.9g} "
          f"sum {arr.astype(np.float64).sum():.9g}")
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "from-dicom":
        from_dicom(sys.argv[2], sys.argv[3])
    elif cmd == "oblique":
        oblique(sys.argv[2])
    elif cmd == "same-geometry":
        sys.exit(same_geometry(sys.argv[2], sys.argv[3]))
    elif cmd == "stats":
        sys.exit(stats(sys.argv[2]))
    else:
        sys.exit(__doc__)
