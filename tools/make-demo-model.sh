#!/bin/sh
# Regenerates the demo model bundle (testdata/demo-model) from nothing, deterministically:
# slices of synthetic abdominal CT phantoms (the sample study's anatomy, other lesions), a
# CLIP-shaped backbone with random weights, both AA-CLIP training stages, and the held-out
# evaluation that also calibrates the bundle (docs/validation-training.md).
#   tools/make-demo-model.sh [OUT]        (default OUT: testdata/demo-model)
# AACLIP names the aaclip binary (default build/bin/aaclip). WORK keeps the phantoms and
# checkpoints (default: a temporary folder).
set -eu
OUT=${1:-testdata/demo-model}
AACLIP=${AACLIP:-build/bin/aaclip}
WORK=${WORK:-$(mktemp -d)}
"$AACLIP" make-phantoms -o "$WORK/train" --volumes 48 --seed 1 --class Liver
"$AACLIP" make-phantoms -o "$WORK/test" --volumes 8 --seed 2 --class Liver
"$AACLIP" random-model -o "$WORK/backbone" --config demo --seed 1 --image-size 448 --force
"$AACLIP" train --model "$WORK/backbone" --data "$WORK/train/data.jsonl" -o "$WORK/run" \
    --batch-size 8 --epochs 6 --text-epochs 3 --lr 1e-3 --seed 1 --no-augment
"$AACLIP" eval --model "$WORK/run/model" --data "$WORK/test/data.jsonl" --json "$WORK/eval.json" --calibrate
rm -rf "$OUT.tmp"
cp -r "$WORK/run/model" "$OUT.tmp"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "demo model: $OUT (work files in $WORK)"
