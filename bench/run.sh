#!/bin/sh
# Run every benchmark under bench/ (make bench calls this after building):
# bench/NAME/run.sh if there is one, else bench/NAME/bench.py (bench/graph
# and bench/verify).
# Benchmarks report; they do not gate: a missed target still exits 0, and a
# benchmark that cannot run makes this exit non-zero after the others ran.
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
status=0
for dir in bench/*/; do
  b=${dir%/}
  if [ -f "$b/run.sh" ]; then
    echo "==== $b"
    sh "$b/run.sh" || status=$?
  elif [ -f "$b/bench.py" ]; then
    echo "==== $b"
    "$PY" "$b/bench.py" || status=$?
  fi
done
exit $status
