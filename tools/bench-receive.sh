#!/bin/bash
# bench-receive.sh [BUILD_DIR] - receive throughput of `aaclip serve` against DCMTK's storescp,
# measured in the same run, on the same disk, with the same sender (storescu, TCP_NODELAY=1 on
# both sides), while the node's worker is scoring a job. Each round sends the series over one
# association, then split over 4 associations at once (storescp serves associations one after
# the other, as it runs by default; aaclip serve serves them in parallel). Prints per-round times
# and the median rate ratios aaclip/storescp. The series is a 512 x 512 x 300 CT (int16, 300
# files, 152 MiB) made by dicom/tests/gen_fixtures.py. storescp writes each file without fsync;
# aaclip serve checks each instance and makes it durable (flushed to disk) before answering; its
# receive pool (files written ahead of time) is refilled between sends, and the script waits for
# that before storescp's send; each line says how many instances went into pool files. Every
# send is a new series (fresh UIDs: what a PACS sends), so the node never replaces instances it
# already holds.
#   ROUNDS=5 tools/bench-receive.sh build
#   SERVE_ARGS="--receive-pool-mb 0" ROUNDS=3 tools/bench-receive.sh build   (options for serve)
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
# instances received into pool files / into new files so far (status.json, rewritten each second)
pooled() { $PY -c 'import json,sys; p=json.load(open(sys.argv[1])).get("receive_pool") or {"received_without": -1}; print("%d/%d" % (p.get("received_into", 0), p.get("received_without", 0)))' "$WORK/spool/status.json" 2>/dev/null || echo "0/0"; }
# waits (at most 60 s) until the node's receive pool has stopped growing: it is filled while no
# instance arrives, and its writes must not fall into storescp's send
settle() {
  local last=-1 cur same=0
  for i in $(seq 300); do
    cur=$($PY -c 'import json,sys; print((json.load(open(sys.argv[1])).get("receive_pool") or {}).get("files", 0))' "$WORK/spool/status.json" 2>/dev/null || echo 0)
    if [ "$cur" = "$last" ]; then same=$((same + 1)); [ $same -ge 8 ] && return 0; else same=0; fi
    last=$cur; sleep 0.2
  done
}
running() { $PY -c 'import json,sys; print("yes" if (json.load(open(sys.argv[1])).get("running")) else "no")' "$WORK/spool/status.json" 2>/dev/null || echo no; }

$PY dicom/tests/gen_fixtures.py "$WORK" bench >/dev/null
CT="$WORK/ct512"
# fresh: a new series of the same CT (new Series and SOP Instance UIDs) in $WORK/fresh/ct512,
# split into four parts for the 4-association sends
fresh() {
  rm -rf "$WORK/fresh" && $PY dicom/tests/gen_fixtures.py "$WORK/fresh" bench >/dev/null
  ls "$WORK/fresh/ct512"/*.dcm > "$WORK/all.txt"
  rm -f "$WORK"/part.* && split -n l/4 "$WORK/all.txt" "$WORK/part."
}
echo "bench-receive: $(ls "$CT" | wc -l) files, $(du -sm "$CT" | cut -f1) MiB, disk of $WORK: $(df --output=source,fstype "$WORK" | tail -1)"
# What one durable write costs on this disk (the floor of a per-instance flush).
$PY - "$WORK" <<'PYEOF'
import os, statistics, sys, time
data, ts = os.urandom(524288), []
for i in range(20):
    p = os.path.join(sys.argv[1], "flush%d" % i)
    t = time.monotonic()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    ts.append(time.monotonic() - t)
    os.unlink(p)
print("bench-receive: 512 KiB write + fsync on this disk: median %.1f ms (min %.1f, max %.1f)" %
      (1e3 * statistics.median(ts), 1e3 * min(ts), 1e3 * max(ts)))
PYEOF
P1=$(port); P2=$(port)
mkdir -p "$WORK/storescp"
storescp -od "$WORK/storescp" "$P1" 2>/dev/null & pids+=($!)
"$AACLIP" serve --spool "$WORK/spool" --bind 127.0.0.1 --port "$P2" --study-idle 5 --model testdata/demo-model \
  --formats seg,pmap,sr --quiet ${SERVE_ARGS:-} & pids+=($!)
for i in $(seq 100); do echoscu -aec AACLIP 127.0.0.1 "$P2" 2>/dev/null && break; sleep 0.2; done
# send AE PORT ASSOCIATIONS: seconds to store the whole series
send() {
  local t0 t1
  # Each send starts with no dirty pages: on ext4 (data=ordered) the node's first fsync would
  # otherwise write back what the previous send (storescp's 152 MiB) left in the page cache.
  sync
  t0=$(now)
  if [ "$3" = 1 ]; then storescu -aec "$1" 127.0.0.1 "$2" "$WORK/fresh/ct512"/*.dcm
  else for p in "$WORK"/part.*; do storescu -aec "$1" 127.0.0.1 "$2" $(cat "$p") & done; wait; fi
  t1=$(now)
  $PY -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$t1"
}
n=$(ls "$CT" | wc -l)
rate() { $PY -c "import sys; print('%.0f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$n" "$1"; }
med() { $PY -c "import statistics,sys; print('%.2f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }
# rounds LABEL COUNT: alternate storescp and aaclip, one association then four
rounds() {
  local r k a b ratio before after r1=() r4=()
  for r in $(seq "$2"); do
    for k in 1 4; do
      rm -rf "$WORK/storescp"/*
      fresh
      settle
      a=$(send STORESCP "$P1" $k)
      before=$(running)
      p0=$(pooled)
      b=$(send AACLIP "$P2" $k)
      after=$(running)
      sleep 1.2
      p1=$(pooled)
      pool=$($PY -c "import sys; a,b=[list(map(int,x.split('/'))) for x in sys.argv[1:]]; print('no receive pool' if b[1] < 0 else '%d into pool files, %d into new files' % (b[0]-a[0], b[1]-a[1]))" "$p0" "$p1")
      ratio=$($PY -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$a" "$b")
      echo "$1 round $r, $k association(s): storescp $a s ($(rate "$a") inst/s), aaclip serve $b s ($(rate "$b") inst/s), ratio $ratio; job scoring during the aaclip send: $before/$after; $pool"
      if [ $k = 1 ]; then r1+=("$ratio"); else r4+=("$ratio"); fi
    done
  done
  echo "bench-receive: $1: median ratio aaclip/storescp: 1 association $(med "${r1[@]}"), 4 associations $(med "${r4[@]}")"
}
# The node idle first (the running column says so; 5 s after its CT sends the CT is a job, part of
# the later rounds' load), then while the worker scores.
rounds idle 1
# The load: the sample study and three more CT series (about 6 s of scoring each here), scored
# by the worker while the rounds run; each CT round also queues a job for its CT. The running
# column shows whether a job was scoring before and after each aaclip send.
storescu -aec AACLIP 127.0.0.1 "$P2" testdata/sample-study/dicom/*.dcm
for i in 1 2 3; do fresh; storescu -aec AACLIP 127.0.0.1 "$P2" "$WORK/fresh/ct512"/*.dcm; done
sleep 6  # the CT study idle (--study-idle 5): its three series are jobs
for i in $(seq 300); do [ "$(running)" = yes ] && break; sleep 0.2; done
echo "bench-receive: scoring job running: $(running)"
rounds scoring "$ROUNDS"
