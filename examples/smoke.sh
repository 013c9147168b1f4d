#!/usr/bin/env bash
# Smoke test for CI: build if needed, start the mock, run every example (and
# each braze-segments command once) against it; exit non-zero if any fails.
#   examples/smoke.sh            (from any directory; LUA=lua5.4 by default)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LUA=${LUA:-lua5.4}
BUILD=${BUILD:-$ROOT/build}

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$ROOT" -B "$BUILD" >/dev/null || exit 1
fi
cmake --build "$BUILD" >/dev/null || exit 1

TMP=$(mktemp -d)
MOCK_PID=
cleanup() {
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# Start the mock on a free port; its first stdout line gives the URL and pid.
"$LUA" "$ROOT/bin/braze-mock" --port 0 --segments 250 >"$TMP/mock.out" 2>"$TMP/mock.err" </dev/null &
MOCK_PID=$!
for _ in $(seq 100); do
  grep -q '^braze-mock listening' "$TMP/mock.out" 2>/dev/null && break
  kill -0 "$MOCK_PID" 2>/dev/null || break
  sleep 0.05
done
URL=$(sed -n 's/^braze-mock listening on \(http[^ ]*\) pid .*/\1/p' "$TMP/mock.out")
if [ -z "$URL" ]; then
  echo "smoke: the mock did not start:" >&2
  cat "$TMP/mock.err" >&2
  exit 1
fi

export BRAZE_API_KEY=braze-mock-key BRAZE_REST_ENDPOINT=$URL
export LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;;" LUA_CPATH="$BUILD/?.so;;"

failures=0
run() {
  local name=$1; shift
  local started=$SECONDS
  if "$@" >"$TMP/out" 2>"$TMP/err"; then
    printf 'ok    %-32s %3ds  %s\n' "$name" $((SECONDS - started)) "$(tail -n 1 "$TMP/out" | cut -c1-40)"
  else
    local rc=$?
    printf 'FAIL  %-32s exit %d\n' "$name" "$rc"
    sed 's/^/      /' "$TMP/err" | tail -n 20
    failures=$((failures + 1))
  fi
}

for example in list_all details series_growth export_csv errors_and_retries; do
  run "examples/$example.lua" "$LUA" "$ROOT/examples/$example.lua"
done
SEGMENTS=("$LUA" "$ROOT/bin/braze-segments" --quiet)
FIRST_ID=$("${SEGMENTS[@]}" list --format csv | sed -n '2s/,.*//p')
run "braze-segments list" "${SEGMENTS[@]}" list --format csv
run "braze-segments details" "${SEGMENTS[@]}" details "$FIRST_ID"
run "braze-segments series" "${SEGMENTS[@]}" series "$FIRST_ID" --days 14 --format plot
run "braze-segments export" "${SEGMENTS[@]}" export --details --series 7 --output "$TMP/s.jsonl"

# Neovim (examples/neovim): :BrazeSegments fills its buffer through
# braze.transport.luv, lua-braze and braze.core found through runtimepath
# alone (lua/braze/core.so, which build-luajit/ with -DBRAZE_RUNTIMEPATH=ON
# copies there, built here if missing).
nvim_example() {
  command -v nvim >/dev/null || { echo "no nvim: apt-get install neovim" >&2; return 1; }
  if [ ! -f "$ROOT/lua/braze/core.so" ]; then
    bash "$ROOT/scripts/build.sh" "$ROOT/build-luajit" -DBRAZE_LUA=luajit -DBRAZE_RUNTIMEPATH=ON >/dev/null || return 1
  fi
  env -u LUA_PATH -u LUA_CPATH nvim --headless -u NONE --cmd "set rtp+=$ROOT" \
    --cmd "set rtp+=$ROOT/examples/neovim" -c 'runtime plugin/braze_segments.lua' -c BrazeSegments \
    -c 'lua vim.wait(30000, function() return require("braze_segments").running == 0 end, 10)' \
    -c 'lua local l = vim.api.nvim_buf_get_lines(0, 0, 1, false)[1]; io.stdout:write(l, "\n")
      if l ~= "Braze segments: 250" then vim.cmd("cquit 1") end' -c 'qa!' </dev/null
}
run "examples/neovim (:BrazeSegments)" nvim_example

# HAProxy (examples/haproxy): run.sh in the background on a free port, one
# size series through it (needs haproxy and build-5.3/, built here if missing).
haproxy_example() {
  command -v haproxy >/dev/null || PATH="$PATH:/usr/sbin"
  if [ ! -f "$ROOT/build-5.3/braze/core.so" ]; then
    bash "$ROOT/scripts/build.sh" "$ROOT/build-5.3" -DBRAZE_LUA=5.3 >/dev/null || return 1
  fi
  local port
  port=$("$LUA" -e 'local s = require("socket").bind("127.0.0.1", 0); local _, p = s:getsockname(); print(p); s:close()')
  BRAZE_BIND=127.0.0.1:$port "$ROOT/examples/haproxy/run.sh" >"$TMP/haproxy.out" 2>&1 &
  local pid=$! rc=1
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if curl -sf "http://127.0.0.1:$port/segments/sizes?segment_id=$FIRST_ID&days=7" >"$TMP/sizes.json"; then
    grep -q '"series":\[{' "$TMP/sizes.json" && rc=0
    cat "$TMP/sizes.json"
  else
    cat "$TMP/haproxy.out" >&2
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return "$rc"
}
run "examples/haproxy (segment sizes)" haproxy_example

if [ "$failures" -ne 0 ]; then
  echo "smoke: $failures failed" >&2
  exit 1
fi
echo "smoke: all passed"
