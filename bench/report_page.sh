#!/usr/bin/env bash
# The report page at scale: `braze-segments report` for SEGMENTS segments
# (default 10,000) against braze-mock, then
#   - the command's time, beside `export --details --series 30` (the same
#     requests, written as JSON Lines) in the same run, interleaved;
#   - the page's weight in bytes;
#   - Chromium's load time for it from file:// with the network off:
#     the navigation timing's loadEventStart and the first contentful
#     paint (ms), read from a copy of the page with a one-line script
#     added, and the wall clock of a headless
#     screenshot (start, load, first paint) against the same for a blank
#     page, interleaved, RUNS times each (default 5).
#
#   bash bench/report_page.sh [SEGMENTS] [RUNS]
#
# Needs lua5.4, the build in build/, chromium (Debian), python3. Prints
# `RESULT name value` lines and a summary; work files in a temporary folder.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000}
runs=${2:-5}
work=$(mktemp -d)
mock_pid=
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "report_page.sh: line $LINENO failed (exit $?)" >&2' ERR

lua5.4 "$root/bin/braze-mock" --port 0 --segments "$n" >"$work/mock.out" 2>&1 &
mock_pid=$!
for _ in $(seq 50); do grep -q listening "$work/mock.out" && break; sleep 0.1; done
url=$(awk '/listening/ {print $4}' "$work/mock.out")
export BRAZE_API_KEY=braze-mock-key BRAZE_REST_ENDPOINT="$url"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
minmax() { sort -g | awk 'NR==1{lo=$1} {hi=$1} END {print lo, hi}'; }

# 1. The command, beside export (same list, details and series calls).
for i in 1 2 3; do
  t0=$(now)
  lua5.4 "$root/bin/braze-segments" -q report --end 2024-06-30 --concurrency 16 -o "$work/page.html"
  t1=$(now)
  lua5.4 "$root/bin/braze-segments" -q export --details --series 30 --end 2024-06-30 \
    --concurrency 16 -o "$work/export.jsonl"
  t2=$(now)
  echo "$t0 $t1 $t2" | awk '{printf "%.3f %.3f %.3f\n", $2-$1, $3-$2, ($2-$1)/($3-$2)}'
done >"$work/cmd.txt"
bytes=$(wc -c <"$work/page.html")

# 2. Chromium. Its own network namespace when allowed, a dead proxy anyway.
no_net=
if unshare -n true 2>/dev/null; then no_net="unshare -n"; fi
chrome() {
  timeout 120 $no_net chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-extensions --disable-background-networking \
    --proxy-server=http://127.0.0.1:9 --user-data-dir="$work/profile" \
    --window-size=1280,1600 "$@" 2>/dev/null
}
timing='<script>new PerformanceObserver(function(l){l.getEntries().forEach(function(e){document.body.setAttribute("data-"+e.name,Math.round(e.startTime))})}).observe({type:"paint",buffered:true});addEventListener("load",function(){var n=performance.getEntriesByType("navigation")[0];document.body.setAttribute("data-load",Math.round(n.loadEventStart))})</script></body>'
sed "s|</body>|$timing|" "$work/page.html" >"$work/timed.html"
printf '<!DOCTYPE html><title>blank</title><p>blank\n' >"$work/blank.html"
chrome --screenshot="$work/warm.png" "file://$work/blank.html" >/dev/null # first start
for i in $(seq "$runs"); do
  body=$(chrome --dump-dom "file://$work/timed.html" | grep -o '<body[^>]*>' || true)
  load=$(echo "$body" | grep -o 'data-load="[0-9]*"' | tr -dc 0-9 || true)
  fcp=$(echo "$body" | grep -o 'data-first-contentful-paint="[0-9]*"' | tr -dc 0-9 || true)
  echo "${load:-NA} ${fcp:-NA}" # NA: Chromium gave no DOM (crashed or timed out)
done >"$work/load.txt"
for i in $(seq "$runs"); do
  t0=$(now); chrome --screenshot="$work/a.png" "file://$work/page.html" >/dev/null; t1=$(now)
  chrome --screenshot="$work/b.png" "file://$work/blank.html" >/dev/null; t2=$(now)
  echo "$t0 $t1 $t2" | awk '{printf "%.3f %.3f %.3f\n", $2-$1, $3-$2, ($2-$1)-($3-$2)}'
done >"$work/shot.txt"

echo "RESULT report_segments $n"
echo "RESULT report_page_bytes $bytes"
echo "RESULT report_cmd_s $(cut -d' ' -f1 "$work/cmd.txt" | median) ($(cut -d' ' -f1 "$work/cmd.txt" | minmax))"
echo "RESULT export_cmd_s $(cut -d' ' -f2 "$work/cmd.txt" | median) ($(cut -d' ' -f2 "$work/cmd.txt" | minmax))"
echo "RESULT report_vs_export $(cut -d' ' -f3 "$work/cmd.txt" | median) ($(cut -d' ' -f3 "$work/cmd.txt" | minmax))"
echo "RESULT chromium_load_event_ms $(cut -d' ' -f1 "$work/load.txt" | median) ($(cut -d' ' -f1 "$work/load.txt" | minmax))"
echo "RESULT chromium_first_paint_ms $(cut -d' ' -f2 "$work/load.txt" | median) ($(cut -d' ' -f2 "$work/load.txt" | minmax))"
echo "RESULT chromium_shot_page_s $(cut -d' ' -f1 "$work/shot.txt" | median) ($(cut -d' ' -f1 "$work/shot.txt" | minmax))"
echo "RESULT chromium_shot_blank_s $(cut -d' ' -f2 "$work/shot.txt" | median) ($(cut -d' ' -f2 "$work/shot.txt" | minmax))"
echo "RESULT chromium_shot_extra_s $(cut -d' ' -f3 "$work/shot.txt" | median) ($(cut -d' ' -f3 "$work/shot.txt" | minmax))"
