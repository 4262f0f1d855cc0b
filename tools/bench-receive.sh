#!/bin/bash
# bench-receive.sh [BUILD_DIR] - receive throughput of `aaclip serve` against DCMTK's storescp,
# measured in the same run, on the same disk, with the same sender (storescu, one association,
# TCP_NODELAY=1 on both sides), while the node's worker is scoring a job. Prints per-round times
# and the median rate ratio aaclip/storescp. The series is a 512 x 512 x 300 CT (int16, 300
# files, 152 MiB) made by dicom/tests/gen_fixtures.py. storescp writes each file without fsync;
# aaclip serve checks each instance and fsyncs it into the spool before answering.
#   ROUNDS=5 tools/bench-receive.sh build
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
AACLIP=$(realpath "$BUILD/bin/aaclip")
ROUNDS=${ROUNDS:-3}
WORK=$(mktemp -d "$(realpath "$BUILD")/bench-receive.XXXXXX")
PY=/usr/bin/python3
export TCP_NODELAY=1
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
running() { $PY -c 'import json,sys; print("yes" if (json.load(open(sys.argv[1])).get("running")) else "no")' "$WORK/spool/status.json" 2>/dev/null || echo no; }

$PY dicom/tests/gen_fixtures.py "$WORK" bench >/dev/null
CT="$WORK/ct512"
echo "bench-receive: $(ls "$CT" | wc -l) files, $(du -sm "$CT" | cut -f1) MiB, disk of $WORK: $(df --output=source,fstype "$WORK" | tail -1)"
P1=$(port); P2=$(port)
mkdir -p "$WORK/storescp"
storescp -od "$WORK/storescp" "$P1" & pids+=($!)
"$AACLIP" serve --spool "$WORK/spool" --bind 127.0.0.1 --port "$P2" --study-idle 1 --model testdata/demo-model \
  --formats seg,pmap,sr --quiet & pids+=($!)
for i in $(seq 100); do echoscu -aec AACLIP 127.0.0.1 "$P2" 2>/dev/null && break; sleep 0.2; done
# The load: the sample study, scored by the worker while the rounds run (each CT round also
# queues a job for the CT, which keeps the worker busy afterwards).
storescu -aec AACLIP 127.0.0.1 "$P2" testdata/sample-study/dicom/*.dcm
for i in $(seq 300); do [ "$(running)" = yes ] && break; sleep 0.2; done
echo "bench-receive: scoring job running: $(running)"
ratios=()
for r in $(seq "$ROUNDS"); do
  rm -rf "$WORK/storescp"/*
  t0=$(now); storescu -aec STORESCP 127.0.0.1 "$P1" "$CT"/*.dcm; t1=$(now)
  before=$(running)
  t2=$(now); storescu -aec AACLIP 127.0.0.1 "$P2" "$CT"/*.dcm; t3=$(now)
  after=$(running)
  read -r a b ratio < <($PY -c "import sys; a=float(sys.argv[2])-float(sys.argv[1]); b=float(sys.argv[4])-float(sys.argv[3]); print('%.3f %.3f %.3f' % (a, b, a/b))" "$t0" "$t1" "$t2" "$t3")
  n=$(ls "$CT" | wc -l)
  echo "round $r: storescp $a s ($($PY -c "print('%.0f' % ($n/$a))") inst/s), aaclip serve $b s ($($PY -c "print('%.0f' % ($n/$b))") inst/s), ratio $ratio; scoring during the aaclip round: $before/$after"
  ratios+=("$ratio")
done
echo "bench-receive: median ratio aaclip/storescp $($PY -c "import statistics,sys; print('%.2f' % statistics.median(map(float, sys.argv[1:])))" "${ratios[@]}")"
