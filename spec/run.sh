#!/bin/sh
# run.sh - run every spec against the built binary and module, with a
# throwaway PostgreSQL server that is stopped on exit.
#   BUILD   build directory (default build)
#   LUA     Lua 5.4 interpreter (default lua5.4)
#   ARGS    spec files to run (default: all of spec/), or busted options
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

# Arguments name spec files (or busted options); without a file, every spec.
roots=spec
for a in "$@"; do
  case $a in -*) ;; *) roots= ;; esac
done
"$LUA" /usr/bin/busted --output=spec/summary.lua "$@" $roots
