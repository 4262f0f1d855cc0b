#!/bin/sh
# Regenerates the demo model bundle (testdata/demo-model) from nothing, deterministically:
# synthetic phantoms, a CLIP-shaped backbone with random weights, both AA-CLIP training stages,
# and the held-out evaluation reported in docs/validation-training.md.
#   tools/make-demo-model.sh [OUT]        (default OUT: testdata/demo-model)
# AACLIP names the aaclip binary (default build/bin/aaclip; build/dicom/data/aaclip-train runs the
# same subcommands). WORK keeps the phantoms and checkpoints (default: a temporary folder).
set -eu
OUT=${1:-testdata/demo-model}
AACLIP=${AACLIP:-build/bin/aaclip}
WORK=${WORK:-$(mktemp -d)}
"$AACLIP" make-phantoms -o "$WORK/train" --count 400 --size 256 --seed 1
"$AACLIP" make-phantoms -o "$WORK/test" --count 100 --size 256 --seed 2
"$AACLIP" random-model -o "$WORK/backbone" --config demo --seed 1 --force
"$AACLIP" train --model "$WORK/backbone" --data "$WORK/train/data.jsonl" -o "$WORK/run" \
    --batch-size 8 --epochs 15 --lr 1e-3 --seed 1
"$AACLIP" eval --model "$WORK/run/model" --data "$WORK/test/data.jsonl" --json "$WORK/eval.json"
rm -rf "$OUT.tmp"
cp -r "$WORK/run/model" "$OUT.tmp"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "demo model: $OUT (work files in $WORK)"
