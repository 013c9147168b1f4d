#!/usr/bin/env bash
# Build the libFuzzer targets and fuzz each for FUZZ_SECONDS (default 60;
# the targets added later, transfer and the decoder on 5.1 and LuaJIT, at
# most 30).
#
#   fuzz/run.sh                  # every target
#   FUZZ_SECONDS=10 fuzz/run.sh  # quicker
#   fuzz/run.sh decode           # one target: decode, headers, transfer
#                                # (csrc/transfer.c's callbacks and outcome),
#                                # decode-5.1, decode-luajit (no integers,
#                                # LuaJIT's stack)
#
# Needs (Debian 12): clang-14, libclang-rt-14-dev (libFuzzer and the sanitizer
# runtimes), liblua5.4-dev, liblua5.1-0-dev, libluajit-5.1-dev, libcurl4-openssl-dev. Work goes to build/fuzz/ (ignored by git): the
# binaries, a copy of fuzz/seeds/<target> that libFuzzer grows, and any crash
# artifacts. Exits non-zero on any crash, sanitizer report, leak or timeout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
seconds="${FUZZ_SECONDS:-60}"
out="${FUZZ_OUT:-$root/build/fuzz}"
cc="${CC:-clang-14}"
if [ $# -gt 0 ]; then targets=("$@"); else targets=(decode headers transfer decode-5.1 decode-luajit); fi
for t in "${targets[@]}"; do
  case "$t" in decode | headers | transfer | decode-5.1 | decode-luajit) ;;
    *) echo "unknown target: $t (decode, headers, transfer, decode-5.1, decode-luajit)" >&2; exit 2 ;; esac
done

flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer -Wall -Wextra -pedantic -Werror)
mkdir -p "$out"

"$cc" "${flags[@]}" -I/usr/include/lua5.4 -I"$root/csrc" \
  "$here/fuzz_decode.c" "$root/csrc/decode.c" -o "$out/fuzz_decode" -llua5.4 -lm
"$cc" "${flags[@]}" -I/usr/include/lua5.4 -I"$root/csrc" \
  "$here/fuzz_headers.c" "$root/csrc/headers.c" -o "$out/fuzz_headers"
"$cc" "${flags[@]}" -D_DEFAULT_SOURCE -I/usr/include/lua5.4 -I"$root/csrc" "$here/fuzz_transfer.c" \
  "$root/csrc/decode.c" "$root/csrc/headers.c" -o "$out/fuzz_transfer" -llua5.4 -lcurl -lm
"$cc" "${flags[@]}" -I/usr/include/lua5.1 -I"$root/csrc" \
  "$here/fuzz_decode.c" "$root/csrc/decode.c" -o "$out/fuzz_decode-5.1" -llua5.1 -lm
"$cc" "${flags[@]}" -I/usr/include/luajit-2.1 -I"$root/csrc" \
  "$here/fuzz_decode.c" "$root/csrc/decode.c" -o "$out/fuzz_decode-luajit" -lluajit-5.1 -lm

# Tokens that random mutation finds slowly.
cat >"$out/decode.dict" <<'EOF'
"true"
"false"
"null"
"\\u"
"\\uD83D\\uDE00"
"\\uD800"
"\\uDC00"
"\\u0000"
"\\\""
"e+"
"E-"
"-0."
"9223372036854775807"
"-9223372036854775808"
"9007199254740993"
"1e308"
"1e-324"
"\xc0\x80"
"\xed\xa0\x80"
"\xf4\x90\x80\x80"
"\xf0\x9f\x98\x80"
"\":"
"\","
"[["
"{\""
EOF
cat >"$out/headers.dict" <<'EOF'
"HTTP/"
"x-ratelimit-limit"
"X-RateLimit-Remaining"
"x-ratelimit-reset"
"X-Request-Id"
"content-type"
"Retry-After"
"location"
": "
"\x0d\x0a"
EOF
cat >"$out/transfer.dict" <<'EOF'
"HTTP/1.1 200 OK\x0d\x0a"
"HTTP/1.1 100 Continue\x0d\x0a"
"HTTP/2 103\x0d\x0a"
"\x0d\x0a"
"Content-Length: "
"X-RateLimit-Reset: "
"99999999999999999999"
EOF
cp "$out/decode.dict" "$out/decode-5.1.dict"
cp "$out/decode.dict" "$out/decode-luajit.dict"

status=0
for t in "${targets[@]}"; do
  corpus="$out/corpus-$t"
  artifacts="$out/artifacts-$t/"
  log="$out/$t.log"
  rm -rf "$corpus" "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  seeds="$here/seeds/${t%%-*}" # decode-5.1 and decode-luajit share decode's
  cp "$seeds/"* "$corpus/"
  max_len=4096
  case "$t" in decode*) max_len=24000 ;; esac # room for 10000-level nesting
  run_seconds=$seconds
  case "$t" in decode | headers) ;; *) [ "$run_seconds" -gt 30 ] && run_seconds=30 ;; esac
  echo "== fuzz_$t: ${run_seconds}s, seeds $(ls "$seeds" | wc -l), log $log"
  rc=0
  "$out/fuzz_$t" "$corpus" -max_total_time="$run_seconds" -max_len="$max_len" -timeout=10 \
    -dict="$out/$t.dict" -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  # The last status line ("#N DONE cov: ... exec/s: ...") and libFuzzer's totals.
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true
  grep -E '^Done [0-9]+ runs|stat::number_of_executed_units|stat::average_exec_per_sec' "$log" || true
  crashes=$(find "$artifacts" -type f | wc -l)
  echo "fuzz_$t: exit $rc, findings $crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|fuzz_[a-z]+:|runtime error' "$log" | head -n 20 || true
    find "$artifacts" -type f
  fi
done
exit "$status"
