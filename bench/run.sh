#!/bin/sh
# Run every benchmark under bench/ (make bench calls this after building).
# Benchmarks report; they do not gate: a missed target still exits 0.
set -e
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
status=0
for b in graph; do
  echo "==== bench/$b"
  "$PY" "bench/$b/bench.py" "$@" || status=$?
done
echo "==== bench/rebuild"; sh bench/rebuild/run.sh || status=$?
exit $status
