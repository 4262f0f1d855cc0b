#!/bin/sh
# dcm2niix-corpus.sh CORPUS [DCM2NIIX]: `aaclip convert` on a dcm2niix test corpus (a folder with
# In/ and Ref/, as neurolabusc/dcm_qa_*), compared strictly with the reference NIfTI files
# (dicom/tests/compare_nifti.py: same array, sform and qform). When Ref/ holds no NIfTI, the
# references are made by DCM2NIIX (default: dcm2niix on the PATH). Writes under
# build/corpus/<name>/; prints "N of M reference volumes matched" and exits as compare_nifti.py.
# Used for the corpus table in docs/validation.md; not part of `make test` (the corpora are not
# shipped).
set -eu
[ $# -ge 1 ] || { echo "usage: $0 CORPUS [DCM2NIIX]" >&2; exit 2; }
corpus=$(cd "$1" && pwd)
d2n=${2:-dcm2niix}
root=$(cd "$(dirname "$0")/.." && pwd)
aaclip="$root/build/bin/aaclip"
[ -x "$aaclip" ] || { echo "$0: build first ($aaclip missing)" >&2; exit 2; }
out="$root/build/corpus/$(basename "$corpus")"
rm -rf "$out"
mkdir -p "$out/ours" "$out/ref"
"$aaclip" convert "$corpus/In" -o "$out/ours/" > "$out/convert.log" 2>&1 || true
refs=$(find "$corpus/Ref" -maxdepth 1 \( -name '*.nii' -o -name '*.nii.gz' \) | sort)
if [ -z "$refs" ]; then
  "$d2n" -f %s_%p_%e -o "$out/ref" "$corpus/In" > "$out/dcm2niix.log" 2>&1 || true
  refs=$(find "$out/ref" -maxdepth 1 -name '*.nii' | sort)
fi
# shellcheck disable=SC2086 # one argument per reference file (names without spaces)
/usr/bin/python3 "$root/dicom/tests/compare_nifti.py" "$out/ours" $refs > "$out/compare.log" 2>&1 && st=0 || st=$?
tail -n 1 "$out/compare.log"
exit $st
