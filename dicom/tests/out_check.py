#!/usr/bin/python3
"""out_check.py: independent readings (pydicom, nibabel, scipy) of what the result writers
wrote, for the test_out_* programs. Each command exits 0 when the check holds, 1 otherwise,
printing what differs.

  read FILE...                     pydicom reads each file completely (pixel data included)
  seg-sources SEG SRCDIR           every SEG frame lies on the plane of the source instance
                                   (and frame) it references: equal position and orientation
  pmap PMAP MAP                    Parametric Map frames equal the map (NIfTI, or raw float32
                                   map_X_Y_Z.f32) voxel by voxel;
                                   Real World Value Mapping present
  sr-regions SR LABELS MAP CONN [SRCDIR]
                                   the SR's volumetric groups are the connected components
                                   (scipy.ndimage.label, 6 or 26) of each level of the label map;
                                   geometry from the NIfTI affine, or with SRCDIR from the source
                                   planes the SR's per-slice group references (tilt, uneven gaps)
  affine A B [TOL]                 same voxel-to-LPS affine (NIfTI via nibabel, NRRD by its header)
  result-dir DIR SRCDIR            refs and seg-sources for seg_probability.dcm, seg_binary.dcm and
                                   pmap.dcm of a result folder, refs for its sr.dcm (one process)
  attrs OBJ KEYWORD=VALUE...        top-level attributes of OBJ: KEYWORD=VALUE equal, KEYWORD= present
                                   and empty, KEYWORD=+ present with a value (a sequence: items),
                                   KEYWORD=! absent
  same-pixels A B                  two DICOM objects hold equal pixel arrays (same shape and values)
  refs OBJ SRCDIR [SEG...]         every reference of a SEG, Parametric Map or SR resolves, as a
                                   reader that loads it with its sources needs: per-frame source
                                   images (class, instance, frame number present for multi-frame
                                   sources and within NumberOfFrames), Referenced Series Sequence,
                                   the SR's image and segment references and its evidence (study,
                                   series, class of every referenced instance); SEG... are the
                                   segmentations the SR may reference
"""
import glob
import os
import sys

import numpy as np


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def cmd_read(paths):
    import pydicom
    for p in paths:
        ds = pydicom.dcmread(p)
        what = ds.SOPClassUID.name
        if "PixelData" in ds or "FloatPixelData" in ds:
            arr = ds.pixel_array
            what += " pixels %s %s" % (arr.shape, arr.dtype)
        if "ContentSequence" in ds:
            n = 0
            stack = list(ds.ContentSequence)
            while stack:
                it = stack.pop()
                n += 1
                stack.extend(it.get("ContentSequence", []))
            what += " %d content items" % n
        print("%s: %s" % (os.path.basename(p), what))


def plane_of(ds, frame):
    """(position, orientation) of frame (1-based, 0 = single frame) of a source dataset."""
    if "PerFrameFunctionalGroupsSequence" in ds and frame > 0:
        pf = ds.PerFrameFunctionalGroupsSequence[frame - 1]
        sh = ds.get("SharedFunctionalGroupsSequence", [None])[0]

        def fg(name):
            for g in (pf, sh):
                if g is not None and name in g:
                    return g[name][0]
            return None
        return fg("PlanePositionSequence").ImagePositionPatient, fg("PlaneOrientationSequence").ImageOrientationPatient
    return ds.ImagePositionPatient, ds.ImageOrientationPatient


def cmd_seg_sources(seg_path, src_dir):
    import pydicom
    seg = pydicom.dcmread(seg_path)
    sources = {}
    for p in glob.glob(os.path.join(src_dir, "**", "*"), recursive=True):
        if os.path.isfile(p):
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                sources[ds.SOPInstanceUID] = ds
            except Exception:
                pass
    shared = seg.SharedFunctionalGroupsSequence[0]
    n = 0
    for i, pf in enumerate(seg.PerFrameFunctionalGroupsSequence):
        src = pf.DerivationImageSequence[0].SourceImageSequence[0]
        uid = src.ReferencedSOPInstanceUID
        if uid not in sources:
            fail("frame %d references %s, not among the sources" % (i + 1, uid))
        frame = int(src.get("ReferencedFrameNumber", 0) or 0)
        ds = sources[uid]
        if src.ReferencedSOPClassUID != ds.SOPClassUID:
            fail("frame %d: SOP class %s, source %s" % (i + 1, src.ReferencedSOPClassUID, ds.SOPClassUID))
        pos, ori = plane_of(ds, frame)
        fpos = pf.PlanePositionSequence[0].ImagePositionPatient
        fori = (pf if "PlaneOrientationSequence" in pf else shared).PlaneOrientationSequence[0].ImageOrientationPatient
        if [float(a) for a in fpos] != [float(a) for a in pos]:
            fail("frame %d: position %s, source %s" % (i + 1, list(fpos), list(pos)))
        if max(abs(float(a) - float(b)) for a, b in zip(fori, ori)) > 1e-6:
            fail("frame %d: orientation %s, source %s" % (i + 1, list(fori), list(ori)))
        if ds.get("FrameOfReferenceUID") and seg.FrameOfReferenceUID != ds.FrameOfReferenceUID:  # none: derived
            fail("frame of reference %s, source %s" % (seg.FrameOfReferenceUID, ds.FrameOfReferenceUID))
        n += 1
    if n != int(seg.NumberOfFrames):
        fail("%d per-frame items for %s frames" % (n, seg.NumberOfFrames))
    print("seg-sources: %d frames on their source planes" % n)


def load_sources(src_dir):
    import pydicom
    sources = {}
    for p in glob.glob(os.path.join(src_dir, "**", "*"), recursive=True):
        if os.path.isfile(p):
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                sources[ds.SOPInstanceUID] = ds
            except Exception:
                pass
    return sources


def check_image_ref(ref, sources, where, need_frame=True):
    """One Referenced SOP item: the instance exists with that class; a frame number where the
    source is multi-frame, within its frames. Returns the source dataset."""
    uid = ref.ReferencedSOPInstanceUID
    if uid not in sources:
        fail("%s references %s, not among the sources" % (where, uid))
    ds = sources[uid]
    if ref.ReferencedSOPClassUID != ds.SOPClassUID:
        fail("%s: class %s, the instance is %s" % (where, ref.ReferencedSOPClassUID, ds.SOPClassUID))
    n = int(ds.get("NumberOfFrames", 1) or 1)
    frames = ref.get("ReferencedFrameNumber")
    if frames is not None and not isinstance(frames, (list, pydicom_multivalue())):
        frames = [frames]
    if n > 1 and need_frame and not frames:
        fail("%s: no Referenced Frame Number for a %d-frame source" % (where, n))
    for f in frames or []:
        if not 1 <= int(f) <= n:
            fail("%s: frame %s of a %d-frame source" % (where, f, n))
    return ds


def pydicom_multivalue():
    from pydicom.multival import MultiValue
    return MultiValue


def cmd_refs(obj_path, src_dir, *segs):
    import pydicom
    obj = pydicom.dcmread(obj_path)
    sources = load_sources(src_dir)
    kinds = {}
    for p in segs:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        kinds[ds.SOPInstanceUID] = ds
    n_refs = 0
    if "PerFrameFunctionalGroupsSequence" in obj:  # SEG, Parametric Map
        for i, pf in enumerate(obj.PerFrameFunctionalGroupsSequence):
            for d in pf.DerivationImageSequence:
                for src in d.SourceImageSequence:
                    check_image_ref(src, sources, "frame %d" % (i + 1))
                    n_refs += 1
        listed = set()
        for ser in obj.ReferencedSeriesSequence:
            for inst in ser.ReferencedInstanceSequence:
                if inst.ReferencedSOPInstanceUID not in sources:
                    fail("Referenced Series Sequence lists %s, not among the sources" % inst.ReferencedSOPInstanceUID)
                ds = sources[inst.ReferencedSOPInstanceUID]
                if ser.SeriesInstanceUID != ds.SeriesInstanceUID or inst.ReferencedSOPClassUID != ds.SOPClassUID:
                    fail("Referenced Series Sequence: %s in series %s as %s; the source says %s as %s" % (
                        inst.ReferencedSOPInstanceUID, ser.SeriesInstanceUID, inst.ReferencedSOPClassUID,
                        ds.SeriesInstanceUID, ds.SOPClassUID))
                listed.add(inst.ReferencedSOPInstanceUID)
        for pf in obj.PerFrameFunctionalGroupsSequence:
            for d in pf.DerivationImageSequence:
                for src in d.SourceImageSequence:
                    if src.ReferencedSOPInstanceUID not in listed:
                        fail("%s is a frame source but not in the Referenced Series Sequence" %
                             src.ReferencedSOPInstanceUID)
    if "ContentSequence" in obj:  # SR
        referenced = set()
        for it in walk(obj.ContentSequence):
            if it.ValueType != "IMAGE":
                continue
            ref = it.ReferencedSOPSequence[0]
            uid = ref.ReferencedSOPInstanceUID
            if uid in kinds:
                seg = kinds[uid]
                if ref.ReferencedSOPClassUID != seg.SOPClassUID:
                    fail("SR references %s as %s, it is %s" % (uid, ref.ReferencedSOPClassUID, seg.SOPClassUID))
                for k in ref.get("ReferencedSegmentNumber", []) if isinstance(
                        ref.get("ReferencedSegmentNumber"), pydicom_multivalue()) else [ref.get("ReferencedSegmentNumber")]:
                    if k is not None and not 1 <= int(k) <= len(seg.SegmentSequence):
                        fail("SR references segment %s of %s (%d segments)" % (k, uid, len(seg.SegmentSequence)))
            else:  # an image library entry (no concept name) stands for the whole instance
                check_image_ref(ref, sources, "SR image item", need_frame="ConceptNameCodeSequence" in it)
            referenced.add(uid)
            n_refs += 1
        evidence = {}
        for st in obj.CurrentRequestedProcedureEvidenceSequence:
            for ser in st.ReferencedSeriesSequence:
                for inst in ser.ReferencedSOPSequence:
                    evidence[inst.ReferencedSOPInstanceUID] = (st.StudyInstanceUID, ser.SeriesInstanceUID,
                                                               inst.ReferencedSOPClassUID)
        for uid in referenced:
            if uid not in evidence:
                fail("SR references %s but its evidence does not list it" % uid)
            ds = sources.get(uid) or kinds.get(uid)
            # A source without a study UID is cited in the study the objects were given.
            want = (ds.get("StudyInstanceUID", obj.StudyInstanceUID), ds.SeriesInstanceUID, ds.SOPClassUID)
            if evidence[uid] != want:
                fail("SR evidence lists %s as %s, the instance is %s" % (uid, evidence[uid], want))
    if n_refs == 0:
        fail("%s references nothing" % obj_path)
    print("refs: %s: %d references resolve" % (os.path.basename(obj_path), n_refs))


def cmd_result_dir(d, src_dir):
    for name in ("seg_probability.dcm", "seg_binary.dcm", "pmap.dcm"):
        cmd_refs(os.path.join(d, name), src_dir)
        cmd_seg_sources(os.path.join(d, name), src_dir)
    cmd_refs(os.path.join(d, "sr.dcm"), src_dir, os.path.join(d, "seg_binary.dcm"))


def cmd_attrs(path, *specs):
    import pydicom
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    for spec in specs:
        key, want = spec.split("=", 1)
        present = key in ds
        value = ds[key].value if present else None
        text = "" if value is None else ("\\".join(str(x) for x in value)
                                         if isinstance(value, pydicom.multival.MultiValue) else str(value))
        if isinstance(value, pydicom.sequence.Sequence):
            text = "%d items" % len(value) if len(value) else ""
        if want == "!":
            ok = not present
        elif want == "+":
            ok = present and text != ""
        else:
            ok = present and text == want
        if not ok:
            fail("%s: %s is %s, expected %s" % (os.path.basename(path), key,
                                                "absent" if not present else repr(text), want))
    print("attrs: %s: %d checks" % (os.path.basename(path), len(specs)))


def cmd_same_pixels(a, b):
    import pydicom
    x, y = pydicom.dcmread(a).pixel_array, pydicom.dcmread(b).pixel_array
    if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y):
        fail("%s and %s differ: %s %s vs %s %s" % (a, b, x.shape, x.dtype, y.shape, y.dtype))
    print("same-pixels: %s %s" % (x.shape, x.dtype))


def cmd_pmap(pmap_path, map_path):
    import nibabel as nib
    import pydicom
    pm = pydicom.dcmread(pmap_path)
    arr = pm.pixel_array.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if map_path.endswith(".f32"):  # raw float32 [z][y][x] with the shape in the name: map_X_Y_Z.f32
        X, Y, Z = (int(a) for a in os.path.basename(map_path)[:-4].split("_")[1:4])
        ref = np.fromfile(map_path, dtype="<f4").reshape(Z, Y, X)
    else:
        ref = np.asarray(nib.load(map_path).dataobj, dtype=np.float32)  # [x, y, z]
        ref = np.transpose(ref, (2, 1, 0))  # [z, y, x] = [frame, row, column]
    if arr.shape != ref.shape:
        fail("shape %s, map %s" % (arr.shape, ref.shape))
    if not np.array_equal(arr, ref):
        fail("values differ, max |d| %g" % float(np.max(np.abs(arr - ref))))
    rw = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    if float(rw.RealWorldValueSlope) != 1.0 or float(rw.RealWorldValueIntercept) != 0.0:
        fail("real world value mapping is not the identity")
    print("pmap: %d frames equal the map; RWVM %s" % (arr.shape[0], rw.LUTLabel))


def walk(items):
    for it in items:
        yield it
        yield from walk(it.get("ContentSequence", []))


def code(it, attr="ConceptNameCodeSequence"):
    c = it[attr][0]
    return (c.CodeValue, c.CodingSchemeDesignator)


def sr_groups(sr):
    groups = []
    for it in walk(sr.ContentSequence):
        if it.ValueType != "CONTAINER" or code(it) != ("125007", "DCM"):
            continue
        g = {"seg": None, "num": {}, "tracking": None}
        for c in it.get("ContentSequence", []):
            k = code(c)
            if c.ValueType == "IMAGE" and k == ("121191", "DCM"):
                g["seg"] = int(c.ReferencedSOPSequence[0].ReferencedSegmentNumber)
            elif c.ValueType == "TEXT" and k == ("112039", "DCM"):
                g["tracking"] = c.TextValue
            elif c.ValueType == "NUM":
                deriv = None
                for m in c.get("ContentSequence", []):
                    if code(m) == ("121401", "DCM"):
                        deriv = code(m, "ConceptCodeSequence")[0]
                g["num"][(k[0], deriv)] = float(c.MeasuredValueSequence[0].NumericValue)
        if g["seg"] is not None:
            groups.append(g)
    return groups


def slice_planes(sr, src_dir):
    """Per slice z (order of the SR's per-slice group): (position, row dir, column dir, pixel
    spacing) of the source instance the SR references, read from the source files."""
    import pydicom
    refs = []
    for it in walk(sr.ContentSequence):
        if it.ValueType == "CONTAINER" and code(it) == ("125007", "DCM") and any(
                c.ValueType == "TEXT" and c.TextValue == "AA-CLIP per-slice scores" for c in it.ContentSequence):
            for c in it.ContentSequence:
                if c.ValueType == "NUM" and code(c) == ("AAC001", "99AACLIP"):
                    img = [m for m in c.ContentSequence if m.ValueType == "IMAGE"][0].ReferencedSOPSequence[0]
                    refs.append((img.ReferencedSOPInstanceUID, int(img.get("ReferencedFrameNumber", 0) or 0)))
    sources = {}
    for p in glob.glob(os.path.join(src_dir, "**", "*"), recursive=True):
        if os.path.isfile(p):
            try:
                ds = pydicom.dcmread(p, stop_before_pixels=True)
                sources[ds.SOPInstanceUID] = ds
            except Exception:
                pass
    planes = []
    for uid, frame in refs:
        ds = sources[uid]
        pos, ori = plane_of(ds, frame)
        ps = [float(a) for a in ds.PixelSpacing]
        planes.append((np.array(pos, float), np.array(ori[:3], float), np.array(ori[3:], float), ps))
    return planes


def cmd_sr_regions(sr_path, labels_path, map_path, conn, src_dir=None):
    import nibabel as nib
    import pydicom
    from scipy import ndimage
    sr = pydicom.dcmread(sr_path)
    groups = sr_groups(sr)
    lab_img = nib.load(labels_path)
    lab = np.transpose(np.asarray(lab_img.dataobj), (2, 1, 0))  # [z, y, x]: scan order of aaclip
    score = np.transpose(np.asarray(nib.load(map_path).dataobj, dtype=np.float64), (2, 1, 0))
    Z = lab.shape[0]
    if src_dir:
        # Voxel centres on the source planes; voxel depth = mean gap to the neighbouring planes.
        planes = slice_planes(sr, src_dir)
        if len(planes) != Z:
            fail("%d per-slice references for %d slices" % (len(planes), Z))
        normal = np.cross(planes[0][1], planes[0][2])
        d = [float(np.dot(normal, pl[0])) for pl in planes]
        gaps = [abs(d[i + 1] - d[i]) for i in range(Z - 1)]
        depth = [np.mean([g for g in (gaps[z - 1] if z > 0 else None, gaps[z] if z < Z - 1 else None)
                          if g is not None]) if Z > 1 else 1.0 for z in range(Z)]

        def centres(zyx):
            out = np.empty((len(zyx), 3))
            for i, (z, y, x) in enumerate(zyx):
                P, r, c, ps = planes[z]
                out[i] = P + r * ps[1] * x + c * ps[0] * y
            return out

        def volume(zyx):
            return sum(planes[z][3][0] * planes[z][3][1] * depth[z] for z in zyx[:, 0])
    else:
        A = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lab_img.affine  # RAS -> LPS, maps (x, y, z, 1)
        voxel = abs(np.linalg.det(A[:3, :3]))

        def centres(zyx):
            return (A @ np.c_[zyx[:, ::-1], np.ones(len(zyx))].T)[:3].T

        def volume(zyx):
            return len(zyx) * voxel
    structure = ndimage.generate_binary_structure(3, 3 if int(conn) == 26 else 1)
    expected = []
    for level in range(1, int(lab.max()) + 1 if lab.max() > 0 else 1):
        comp, n = ndimage.label(lab >= level, structure=structure)
        for k in range(1, n + 1):
            zyx = np.argwhere(comp == k)
            s = score[comp == k]
            expected.append((level, volume(zyx), s.max(), s.mean(), centres(zyx).mean(axis=0)))
    # Levels without any voxel still have a segment; the SR only holds groups for regions.
    if len(groups) != len(expected):
        fail("%d measurement groups, %d connected components" % (len(groups), len(expected)))
    for i, (g, e) in enumerate(zip(groups, expected)):
        level, vol, mx, mean, c = e
        num = g["num"]
        got = (g["seg"], num[("118565006", None)], num[("AAC001", "56851009")], num[("AAC001", "373098007")],
               [num[("AAC011", None)], num[("AAC012", None)], num[("AAC013", None)]])
        if got[0] != level:
            fail("group %d (%s) references segment %d, component is of level %d" % (i, g["tracking"], got[0], level))
        if abs(got[1] - vol) > 1e-4 * vol + 1e-6:
            fail("group %d: volume %.9g mm3, component %.9g" % (i, got[1], vol))
        if abs(got[2] - mx) > 1e-5 * abs(mx) + 1e-6 or abs(got[3] - mean) > 1e-5 * abs(mean) + 1e-6:
            fail("group %d: max/mean %.9g/%.9g, component %.9g/%.9g" % (i, got[2], got[3], mx, mean))
        if max(abs(a - b) for a, b in zip(got[4], c)) > 1e-3:
            fail("group %d: centroid %s, component %s" % (i, got[4], list(c)))
    print("sr-regions: %d groups = %d components (levels %s, geometry from %s)" % (
        len(groups), len(expected), sorted(set(e[0] for e in expected)), "source planes" if src_dir else "NIfTI"))


def affine_of(path):
    if path.endswith(".nrrd") or path.endswith(".nhdr"):
        head = {}
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode("latin-1").rstrip("\n")
                if not line:
                    break
                if ":" in line and not line.startswith("#"):
                    k, v = line.split(":", 1)
                    head[k.strip()] = v.strip().lstrip("=")
        space = head.get("space", "")
        dirs = [[float(x) for x in d.strip("()").split(",")] for d in head["space directions"].split()
                if d != "none"]
        org = [float(x) for x in head["space origin"].strip("()").split(",")]
        A = np.eye(4)
        A[:3, :3] = np.array(dirs).T
        A[:3, 3] = org
        if space in ("right-anterior-superior", "RAS"):
            A = np.diag([-1.0, -1.0, 1.0, 1.0]) @ A
        elif space not in ("left-posterior-superior", "LPS"):
            fail("%s: space %r" % (path, space))
        return A
    import nibabel as nib
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ nib.load(path).affine


def cmd_affine(a, b, tol="1e-4"):
    A, B = affine_of(a), affine_of(b)
    d = float(np.max(np.abs(A - B)))
    if d > float(tol):
        fail("%s vs %s: affines differ by %g\n%s\n%s" % (a, b, d, A, B))
    print("affine: %s = %s (max |d| %.3g)" % (os.path.basename(a), os.path.basename(b), d))


if __name__ == "__main__":
    cmds = {"read": lambda *a: cmd_read(a), "seg-sources": cmd_seg_sources, "pmap": cmd_pmap,
            "sr-regions": cmd_sr_regions, "affine": cmd_affine, "refs": cmd_refs,
            "same-pixels": cmd_same_pixels, "result-dir": cmd_result_dir,
            "attrs": cmd_attrs}
    cmds[sys.argv[1]](*sys.argv[2:])
