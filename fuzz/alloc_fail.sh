#!/usr/bin/env bash
# The allocation-failure host (fuzz/alloc_fail.c) under ASan + LeakSanitizer,
# Lua 5.4, against a braze-mock: every Lua allocation point of a list,
# details and data_series call, each{details = true}, and a batch in each
# mode, failed one at a time (with its immediate retry). ALLOC_SECONDS per
# scenario (default 5; a scenario that finishes sooner stops sooner).
#   bash scripts/build.sh build-asan -DBRAZE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
#   bash fuzz/alloc_fail.sh     # ALLOC_CPATH=dir: another build of braze.core (default build-asan)
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${ALLOC_SECONDS:-5}
out=build/fuzz
mkdir -p "$out"
gcc -std=c99 -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -Wall -Wextra -Werror \
  $(pkg-config --cflags lua5.4) fuzz/alloc_fail.c -o "$out/alloc_fail" $(pkg-config --libs lua5.4) || exit 1
pipe=$(mktemp -u)
mkfifo "$pipe"
lua5.4 bin/braze-mock --port 0 --segments 3 </dev/null >"$pipe" &
read -r line <"$pipe"
rm -f "$pipe"
url=$(echo "$line" | sed -nE 's/^braze-mock listening on (http:[^ ]+) pid ([0-9]+)$/\1/p')
pid=$(echo "$line" | sed -nE 's/.* pid ([0-9]+)$/\1/p')
[ -n "$url" ] || { echo "!! braze-mock did not start: $line"; exit 1; }
status=0
for scenario in list details series each_details batch_poll batch_sockets; do
  if ! env ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="${ALLOC_CPATH:-build-asan}/?.so;;" \
      timeout $((seconds + 60)) "$out/alloc_fail" fuzz/alloc_fail.lua "$seconds" "$scenario" "$url" braze-mock-key; then
    echo "!! alloc_fail $scenario failed"
    status=1
  fi
done
kill "$pid" 2>/dev/null
exit "$status"
