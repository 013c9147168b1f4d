#!/usr/bin/env bash
# The API-sequence fuzzer (fuzz/api_sequence.lua) against the ASan+UBSan
# builds of braze.core: Lua 5.4 (build-asan/) and, when built, LuaJIT
# (build-asan-luajit/, where more API calls allocate). FUZZ_SECONDS each,
# at most 30 (default 20); FUZZ_SEED to replay a run. Exits non-zero on a
# crash, a sanitizer report or a Lua error outside the fuzzer's pcalls.
#   bash scripts/build.sh build-asan -DBRAZE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
#   bash scripts/build.sh build-asan-luajit -DBRAZE_LUA=luajit -DBRAZE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
#   bash fuzz/api.sh
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
[ "$seconds" -gt 30 ] && seconds=30
seed=${FUZZ_SEED:-$(date +%s)}
asan_libs="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
status=0
for run in "lua5.4 build-asan" "luajit build-asan-luajit"; do
  set -- $run
  if [ ! -f "$2/braze/core.so" ]; then
    [ "$1" = lua5.4 ] && { echo "!! $2/braze/core.so missing"; status=1; }
    continue
  fi
  echo "== $1 ($2)"
  if ! env LD_PRELOAD="$asan_libs" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      LUA_PATH="lua/?.lua;lua/?/init.lua;./?.lua;;" LUA_CPATH="$2/?.so;;" \
      timeout $((seconds + 60)) "$1" fuzz/api_sequence.lua "$seconds" "$seed"; then
    echo "!! api_sequence failed on $1 (replay: FUZZ_SEED=$seed)"
    status=1
  fi
done
exit "$status"
