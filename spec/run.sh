#!/bin/sh
# run.sh - run every spec against the built binary and module, with a
# throwaway PostgreSQL server that is stopped on exit.
#   BUILD   build directory (default build)
#   LUA     Lua 5.4 interpreter (default lua5.4)
#   ARGS    spec files to run in one busted (default: every spec file,
#           SPEC_JOBS of them at a time), and busted options
#   LUAMIG_ASAN=1  the build is instrumented: preload the sanitizer runtime
#                  into the interpreter so the module can load.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
tmp=$(mktemp -d /tmp/luamig-spec.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  sh spec/pgserver.sh stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url=$(bash spec/pgserver.sh start "$tmp/pg")
export LUAMIG_TEST_PG_URL="$url"
export LUAMIG_BIN="$PWD/$BUILD/luamig"
export LUAMIG_CPATH="$PWD/$BUILD/?.so"
export LUAMIG_TMP="$tmp"
export LUAMIG_FUZZ_DIR="$PWD/build/fuzz"
unset LUAMIG_URL LUAMIG_CONFIG DATABASE_URL

if [ "${LUAMIG_ASAN:-}" = 1 ]; then
  # The interpreter is not instrumented: load the runtime first, and leave
  # leak checking to the binary's own runs (the helpers turn it on there).
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi

# Arguments name spec files (or busted options): they run in one busted.
for a in "$@"; do
  case $a in
    -*) ;;
    *) status=0
       "$LUA" /usr/bin/busted --output=spec/summary.lua "$@" || status=$?
       exit $status ;;
  esac
done

# Every spec file, SPEC_JOBS at a time (default: one per core), the largest
# first so the long ones do not end up last; each file's report is printed
# whole once all are done, then one line summing them.
jobs=${SPEC_JOBS:-$(nproc 2>/dev/null || echo 2)}
mkdir -p "$tmp/reports"
export LUA
ls -S spec/*_spec.lua | xargs -P "$jobs" -I{} sh -c '
  f=$1; shift
  "$LUA" /usr/bin/busted --output=spec/summary.lua "$@" "$f" \
    >"$0/$(basename "$f" .lua).log" 2>&1 || true' "$tmp/reports" {} "$@"
# A file that failed beside the others runs once more, alone: what passes
# then is reported as load-sensitive (its first report is shown, last) and
# what fails again fails.
summary() { grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1 || true; }
flaky=""
for log in "$tmp"/reports/*.log; do
  line=$(summary "$log")
  case $line in *" 0 failed") continue ;; esac
  name=$(basename "$log" .log)
  mv "$log" "$tmp/$name.first"
  "$LUA" /usr/bin/busted --output=spec/summary.lua "$@" "spec/$name.lua" \
    >"$log" 2>&1 || true
  case $(summary "$log") in
    *" 0 failed") flaky="$flaky $name" ;;
  esac
done
passed=0
failed=0
failing=""
for log in "$tmp"/reports/*.log; do
  name=$(basename "$log" .log)
  echo "== spec/$name.lua"
  grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$log" || true
  line=$(summary "$log")
  if [ -z "$line" ]; then
    echo "spec/$name.lua: no summary (the runner stopped early)"
    failed=$((failed + 1))
    failing="$failing $log"
    continue
  fi
  p=${line%% passed*}
  f=${line#*passed, }
  f=${f%% failed*}
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$f" -eq 0 ] || failing="$failing $log"
done
for name in $flaky; do
  echo
  echo "== LOAD-SENSITIVE: spec/$name.lua failed beside the others and passed alone; its first report:"
  grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/$name.first" | tail -n 150 || true
done
# The reports of failing files once more, last, where a log cut short at
# its head still shows them.
for log in $failing; do
  echo
  echo "== FAILED: spec/$(basename "$log" .log).lua"
  grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 150 || true
done
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
