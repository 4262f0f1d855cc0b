#!/usr/bin/python3
"""compare_runs.py REF OTHER - is OTHER (an MPI, killed-rank or job-array run of `aaclip score`)
the single-process run REF? Same summary header, the same rows in the same order (apart from
timings, the results root and where a row was scored: host, rank, shard), the same notes and
counts, the same files in the same folders, and the maps, label maps, montages and scenes byte
for byte (the DICOM objects carry fresh UIDs and times: present, not compared). Prints what
differs; exit status 0 when nothing does. Summaries of the shards (OTHER/shards/) and the
merge note are the job array's own."""
import filecmp
import json
import os
import sys

WHERE = ("seconds", "host", "rank", "shard")


def files(root):
    out = set()
    for d, dirs, names in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel == "shards" or rel.startswith("shards/"):
            continue
        for n in names:
            if not n.startswith(".aaclip-mpi-"):
                out.add(os.path.normpath(os.path.join(rel, n)))
    return out


def main():
    ref, other = sys.argv[1], sys.argv[2]
    a = json.load(open(os.path.join(ref, "summary.json")))
    b = json.load(open(os.path.join(other, "summary.json")))
    problems = []
    for k in sorted(set(a) | set(b)):
        if k in ("series", "merged"):
            continue
        if a.get(k) != b.get(k):
            problems.append("summary field %s: %r != %r" % (k, a.get(k), b.get(k)))
    ra, rb = a["series"], b["series"]
    if len(ra) != len(rb):
        problems.append("%d rows, %d expected" % (len(rb), len(ra)))
    for i, (x, y) in enumerate(zip(ra, rb)):
        for k in sorted(set(x) | set(y)):
            if k in WHERE:
                continue
            vx, vy = x.get(k), y.get(k)
            if k == "output_dir":
                vx, vy = os.path.relpath(vx, ref), os.path.relpath(vy, other)
            if vx != vy:
                problems.append("row %d (%s): %s differs: %.200r / %.200r" % (i, x.get("source"), k, vx, vy))
    fa, fb = files(ref), files(other)
    for f in sorted(fa ^ fb)[:20]:
        problems.append("only in %s: %s" % (ref if f in fa else other, f))
    same = 0
    for f in sorted(fa & fb):
        if f.endswith((".nii.gz", ".nrrd", ".png", ".mrml")):
            if filecmp.cmp(os.path.join(ref, f), os.path.join(other, f), shallow=False):
                same += 1
            else:
                problems.append("differs: %s" % f)
    for p in problems[:40]:
        print("compare_runs: " + p)
    print("compare_runs: %d rows, %d files, %d maps/montages/scenes identical, %d problems"
          % (len(ra), len(fa), same, len(problems)))
    return 1 if problems or not ra else 0


if __name__ == "__main__":
    sys.exit(main())
