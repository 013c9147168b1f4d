#!/usr/bin/env bash
# bench/run.sh - every lua-braze benchmark, in one command (see bench/README.md).
#
#   bench/run.sh           # the full run (a few minutes)
#   bench/run.sh --quick   # a smoke run with tiny counts (< 30 s); numbers mean little
#
# Builds what it needs (braze.core, bench/curl_loop.c, the npm peer), serves
# the mock's list page from nginx on a free loopback port, starts braze-mock
# for the concurrency bench, runs each comparison several times with the two
# sides interleaved (A/B, B/A, ...), and prints a table of ratios: median,
# min and max over the runs. Work files go to build/bench/ (git-ignored);
# the RESULT lines behind the table are kept in build/bench/results.txt.
#
# Needs (Debian 12): lua5.4, liblua5.4-dev, libcurl4-openssl-dev, lua-cjson,
# lua-socket, lua-argparse, nginx, nodejs + npm, gcc, cmake, pkg-config;
# valgrind for the instruction counts (skipped without it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
work="$root/build/bench"
quick=0
case "${1:-}" in
  --quick) quick=1 ;;
  "") ;;
  *) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

if [ "$quick" = 1 ]; then
  DEC_LIST_N=200 DEC_SERIES_N=500 DEC_RUNS=3
  IR_N=20 IR_REPS=1
  REQ_RUNS=2 REQ_OURS=300 REQ_CURL=300 REQ_SOCKET=150 REQ_NODE=200
  MEM_N=2000 MEM_WARMUP=200
  MANY_COUNT=32 MANY_RUNS=1
  PAR_COUNT=160 PAR_RUNS=2
  EXPORT_SEGMENTS=200 EXPORT_RUNS=1 EXPORT_SEQ="" MEM_SMALL=200 MEM_LARGE=2000
else
  DEC_LIST_N=2000 DEC_SERIES_N=6000 DEC_RUNS=9
  IR_N=500 IR_REPS=3
  REQ_RUNS=11 REQ_OURS=4000 REQ_CURL=4000 REQ_SOCKET=2000 REQ_NODE=3000
  MEM_N=100000 MEM_WARMUP=5000
  MANY_COUNT=1000 MANY_RUNS=3
  PAR_COUNT=160 PAR_RUNS=11
  EXPORT_SEGMENTS=1000 EXPORT_RUNS=3 EXPORT_SEQ=sequential MEM_SMALL=1000 MEM_LARGE=10000
fi
MANY_CONCURRENCY=16

cd "$root"
export LUA_PATH="$root/bench/?.lua;$root/lua/?.lua;$root/lua/?/init.lua;$root/mock/lua/?.lua;$root/mock/lua/?/init.lua;;"
export LUA_CPATH="$root/build/?.so;;"
mkdir -p "$work"
results="$work/results.txt"
: >"$results"
log() { printf '== %s\n' "$*" >&2; }

nginx_prefix="$work/nginx"
mock_pid=""
cleanup() {
  if [ -f "$nginx_prefix/nginx.pid" ]; then
    kill "$(cat "$nginx_prefix/nginx.pid")" 2>/dev/null || true
    rm -f "$nginx_prefix/nginx.pid"
  fi
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# ---- build ------------------------------------------------------------------
log "build braze.core, curl_loop, the npm peer"
cmake -S "$root" -B "$root/build" -DBRAZE_WERROR=ON >/dev/null
cmake --build "$root/build" >/dev/null
# shellcheck disable=SC2046
cc -O2 -std=c99 -Wall -Wextra -pedantic -o "$work/curl_loop" "$here/curl_loop.c" \
  $(pkg-config --cflags --libs libcurl)
if [ ! -d "$here/node_modules/braze-api" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# ---- the documents, nginx ---------------------------------------------------
mkdir -p "$work/docs" "$nginx_prefix"
lua5.4 "$here/docs.lua" list >"$work/docs/list.json"
lua5.4 "$here/docs.lua" series >"$work/docs/series.json"
lua5.4 "$here/docs.lua" details >"$work/docs/details.json"
printf '{"segments":[],"message":"success"}' >"$work/docs/tiny.json"
port="$(lua5.4 -e 's = assert(require("socket").bind("127.0.0.1", 0)); local _, p = s:getsockname(); print(p); s:close()')"
sed -e "s|\${PREFIX}|$nginx_prefix|g" -e "s|\${PORT}|$port|g" -e "s|\${DOCS}|$work/docs|g" \
  "$here/nginx.conf.in" >"$nginx_prefix/nginx.conf"
nginx -p "$nginx_prefix" -c "$nginx_prefix/nginx.conf"
base="http://127.0.0.1:$port"
for _ in $(seq 50); do
  if "$work/curl_loop" "$base/ping" 1 0 >/dev/null 2>&1; then break; fi
  sleep 0.1
done
"$work/curl_loop" "$base/ping" 1 0 >/dev/null
log "nginx $(nginx -v 2>&1 | sed 's/.*\///') on $base (pid $(cat "$nginx_prefix/nginx.pid"))"

# ---- 1. decoder -------------------------------------------------------------
log "decoder, wall clock: $DEC_RUNS runs, braze and cjson interleaved"
lua5.4 "$here/decode.lua" wall list "$DEC_LIST_N" "$DEC_RUNS" | tee -a "$results"
lua5.4 "$here/decode.lua" wall series "$DEC_SERIES_N" "$DEC_RUNS" | tee -a "$results"

if command -v valgrind >/dev/null; then
  log "decoder, callgrind instructions: $IR_REPS repetitions of $IR_N decodes"
  ir() { # doc which -> instructions
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      lua5.4 "$here/decode.lua" count "$1" "$IR_N" "$2" 2>&1 | sed -n 's/.*Collected : //p'
  }
  for rep in $(seq "$IR_REPS"); do
    for doc in list series; do
      if [ $((rep % 2)) = 1 ]; then
        z=$(ir "$doc" none); b=$(ir "$doc" braze); c=$(ir "$doc" cjson)
      else
        z=$(ir "$doc" none); c=$(ir "$doc" cjson); b=$(ir "$doc" braze)
      fi
      awk -v d="$doc" -v z="$z" -v b="$b" -v c="$c" -v n="$IR_N" 'BEGIN {
        printf "RESULT decode_%s_ir %.4f braze=%dIr cjson=%dIr (per decode)\n", d, (c - z) / (b - z),
          (b - z) / n, (c - z) / n }' | tee -a "$results"
    done
  done
else
  log "valgrind not installed: no instruction counts"
fi

# ---- 2. request path --------------------------------------------------------
rate() { sed -n 's/^RATE \([0-9.]*\).*/\1/p'; }
ours() { lua5.4 "$here/request.lua" braze "$base" "$REQ_OURS" | rate; }
curl_loop() { "$work/curl_loop" "$base/segments/list" "$REQ_CURL" | rate; }
socket_http() { lua5.4 "$here/request.lua" socket "$base" "$REQ_SOCKET" | rate; }
node_peer() { (cd "$here" && node braze_api.js "$base" "$REQ_NODE") | rate; }
ours_tiny() { lua5.4 "$here/request.lua" braze "$base/tiny" "$REQ_OURS" "" 0 | rate; }
ours_session() { lua5.4 "$here/request.lua" session "$base" "$REQ_OURS" | rate; }
curl_tiny() { "$work/curl_loop" "$base/tiny/segments/list" "$REQ_CURL" | rate; }

log "request path: $REQ_RUNS runs, the four clients in a rotating order"
for r in $(seq "$REQ_RUNS"); do
  case $((r % 4)) in
    1) o=$(ours); c=$(curl_loop); s=$(socket_http); n=$(node_peer) ;;
    2) c=$(curl_loop); s=$(socket_http); n=$(node_peer); o=$(ours) ;;
    3) s=$(socket_http); n=$(node_peer); o=$(ours); c=$(curl_loop) ;;
    0) n=$(node_peer); o=$(ours); c=$(curl_loop); s=$(socket_http) ;;
  esac
  # Diagnostic: the same pair on an empty page, so without the decoding.
  if [ $((r % 2)) = 1 ]; then ot=$(ours_tiny); ct=$(curl_tiny); else ct=$(curl_tiny); ot=$(ours_tiny); fi
  # Diagnostic: the C core alone (transfer and decoding, no Lua front), with its own curl pair.
  if [ $((r % 2)) = 1 ]; then os=$(ours_session); cs=$(curl_loop); else cs=$(curl_loop); os=$(ours_session); fi
  awk -v o="$o" -v c="$c" -v s="$s" -v n="$n" -v ot="$ot" -v ct="$ct" -v os="$os" -v cs="$cs" 'BEGIN {
    printf "RESULT req_vs_curl %.4f ours=%.0f/s curl_loop=%.0f/s\n", o / c, o, c
    printf "RESULT req_vs_socket %.4f ours=%.0f/s socket.http+cjson=%.0f/s\n", o / s, o, s
    printf "RESULT req_vs_node %.4f ours=%.0f/s braze-api=%.0f/s\n", o / n, o, n
    printf "RESULT tiny_vs_curl %.4f ours=%.0f/s curl_loop=%.0f/s (36-byte page)\n", ot / ct, ot, ct
    printf "RESULT session_vs_curl %.4f session=%.0f/s curl_loop=%.0f/s (C core alone)\n", os / cs, os, cs
    printf "RESULT rate_ours %.1f\nRESULT rate_curl_loop %.1f\nRESULT rate_socket_http %.1f\n", o, c, s
    printf "RESULT rate_braze_api %.1f\n", n }' | tee -a "$results"
done

# ---- 3. memory --------------------------------------------------------------
log "memory: $MEM_N sequential requests after $MEM_WARMUP"
lua5.4 "$here/memory.lua" "$base" "$MEM_N" "$MEM_WARMUP" "$(getconf PAGESIZE)" | tee -a "$results"

# ---- 4. concurrency ---------------------------------------------------------
log "details_many: $MANY_COUNT details at concurrency $MANY_CONCURRENCY vs sequential, mock --latency 20"
mock_out="$work/mock.out"
start_mock() { # latency segments -> sets mock_pid, mock_url
  : >"$mock_out"
  lua5.4 "$root/bin/braze-mock" --port 0 --latency "$1" --segments "$2" >"$mock_out" &
  mock_pid=$!
  for _ in $(seq 100); do
    if grep -q "listening on" "$mock_out"; then break; fi
    sleep 0.05
  done
  mock_url="$(sed -n 's/^braze-mock listening on \(http[^ ]*\) .*/\1/p' "$mock_out")"
}
stop_mock() { kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; mock_pid=""; }
start_mock 20 "$MANY_COUNT"
lua5.4 "$here/many.lua" "$mock_url" "$MANY_COUNT" "$MANY_CONCURRENCY" "$MANY_RUNS" | tee -a "$results"
stop_mock

# ---- 5. the batch at the transport's limit ------------------------------------
log "details_many vs curl --parallel --parallel-max 16: $PAR_COUNT URLs on nginx, cold connections, $PAR_RUNS runs"
lua5.4 "$here/parallel.lua" "$base" "$PAR_COUNT" "$PAR_RUNS" | tee -a "$results"

# ---- 6. the whole export at the latency bound --------------------------------
for latency in 20 100; do
  log "export of $EXPORT_SEGMENTS segments with details and a 30-day series, mock --latency $latency, concurrency 16"
  start_mock "$latency" "$EXPORT_SEGMENTS"
  seq_arg=""
  if [ "$latency" = 20 ]; then seq_arg="$EXPORT_SEQ"; fi
  lua5.4 "$here/export.lua" "$mock_url" "$EXPORT_SEGMENTS" "$latency" 16 "$EXPORT_RUNS" $seq_arg | tee -a "$results"
  stop_mock
done

log "peak RSS of a pipelined export: $MEM_LARGE segments vs $MEM_SMALL"
start_mock 0 "$MEM_SMALL"
small=$(lua5.4 "$here/export_memory.lua" "$mock_url" "$MEM_SMALL" | sed -n 's/^PEAK_KIB //p')
stop_mock
start_mock 0 "$MEM_LARGE"
large=$(lua5.4 "$here/export_memory.lua" "$mock_url" "$MEM_LARGE" | sed -n 's/^PEAK_KIB //p')
stop_mock
awk -v s="$small" -v l="$large" -v ns="$MEM_SMALL" -v nl="$MEM_LARGE" 'BEGIN {
  printf "RESULT export_peak_rss_ratio %.4f peak=%dKiB (%d segments) vs %dKiB (%d segments)\n", l / s, l, nl, s, ns }' \
  | tee -a "$results"

# ---- the table --------------------------------------------------------------
echo
echo "lua-braze benchmarks$([ "$quick" = 1 ] && echo " (--quick: tiny counts, smoke only)")"
echo "machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)"
echo "$(lua5.4 -v 2>&1 | cut -d' ' -f1-2), lua-cjson $(lua5.4 -e 'print(require("cjson")._VERSION)' | sed 's/.* //'), $(curl_v=$(lua5.4 -e 'print(require("braze.core").curl_version)'); echo "$curl_v" | cut -d' ' -f1), nginx $(nginx -v 2>&1 | sed 's/.*\///'), node $(node --version), braze-api $(cd "$here" && node -p 'require("./node_modules/braze-api/package.json").version')"
echo
lua5.4 "$here/summary.lua" "$results"
