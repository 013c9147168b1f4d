#!/usr/bin/env bash
# The lua-braze demo: build (if needed), start the mock Braze API with 300
# segments on a free port, export them all with details and a 30-day size
# series (JSON Lines and CSV), show a few rows and one segment's plot, and
# stop the mock whatever happens.
#   examples/run-demo.sh         (from any directory; LUA=lua5.4 by default)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LUA=${LUA:-lua5.4}
BUILD=${BUILD:-$ROOT/build}
SEGMENTS=${SEGMENTS:-300}

if [ -t 1 ]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '\n== %s\n' "$*"; }
fi

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  say "building braze.core"
  cmake -S "$ROOT" -B "$BUILD" >/dev/null
fi
cmake --build "$BUILD" >/dev/null

OUT=$(mktemp -d "${TMPDIR:-/tmp}/braze-demo.XXXXXX")
MOCK_PID=
stop_mock() {
  if [ -n "$MOCK_PID" ] && kill -0 "$MOCK_PID" 2>/dev/null; then
    kill "$MOCK_PID" 2>/dev/null || true
    wait "$MOCK_PID" 2>/dev/null || true
  fi
}
trap stop_mock EXIT

"$LUA" "$ROOT/bin/braze-mock" --port 0 --segments "$SEGMENTS" >"$OUT/mock.log" 2>&1 </dev/null &
MOCK_PID=$!
for _ in $(seq 100); do
  grep -q '^braze-mock listening' "$OUT/mock.log" && break
  kill -0 "$MOCK_PID" 2>/dev/null || break
  sleep 0.05
done
URL=$(sed -n 's/^braze-mock listening on \(http[^ ]*\) pid .*/\1/p' "$OUT/mock.log")
if [ -z "$URL" ]; then
  echo "run-demo: the mock did not start:" >&2
  cat "$OUT/mock.log" >&2
  exit 1
fi
say "mock Braze API with $SEGMENTS segments at $URL"

export BRAZE_API_KEY=braze-mock-key BRAZE_REST_ENDPOINT=$URL
bs() { "$LUA" "$ROOT/bin/braze-segments" "$@"; }
# One last day for every series, so the exports (and the resumed one) agree.
END=$(date -u +%Y-%m-%d)

say "braze-segments list (first rows)"
bs list --format table >"$OUT/list.txt"
head -n 8 "$OUT/list.txt"
echo "..."
tail -n 1 "$OUT/list.txt"

say "braze-segments export --details --series 30 --end $END --output $OUT/segments.jsonl"
bs export --details --series 30 --end "$END" --output "$OUT/segments.jsonl"
echo "first record:"
head -n 1 "$OUT/segments.jsonl" | cut -c1-400
echo "..."

say "braze-segments export --format csv --details --series 30 --end $END --output $OUT/segments.csv"
bs export --format csv --details --series 30 --end "$END" --output "$OUT/segments.csv"
head -n 3 "$OUT/segments.csv"

say "resume after a crash: cut the JSON Lines file mid-record, then --resume"
cp "$OUT/segments.jsonl" "$OUT/resumed.jsonl"
cp "$OUT/segments.jsonl.braze.json" "$OUT/resumed.jsonl.braze.json" # what it was written with
truncate -s $(( $(wc -c <"$OUT/segments.jsonl") / 2 )) "$OUT/resumed.jsonl"
bs export --details --series 30 --end "$END" --output "$OUT/resumed.jsonl" --resume
if cmp -s "$OUT/segments.jsonl" "$OUT/resumed.jsonl"; then
  echo "resumed file is identical to the uninterrupted export ($(wc -l <"$OUT/resumed.jsonl") records)"
else
  echo "resumed file: $(wc -l <"$OUT/resumed.jsonl") records"
fi

ID=$(sed -n '3s/^{"id":"\([^"]*\)".*/\1/p' "$OUT/segments.jsonl")
say "braze-segments series $ID --format plot"
bs series "$ID" --days 30 --end "$END" --format plot

say "files are in $OUT"
ls -l "$OUT" | sed 1d
