#!/usr/bin/env bash
# Static checks, each of which must report nothing:
#   luacheck over every Lua file (.luacheckrc), ldoc's reference build
#   (config.ld; any warning fails), and the C analysers (scripts/analyze.sh).
# Needs Debian's lua-check, lua-ldoc, cppcheck and gcc.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

echo "--- luacheck"
luacheck --no-color --formatter plain . || status=1

echo "--- ldoc"
out=$(mktemp -d)
warnings=$(ldoc --dir "$out" . 2>&1 | grep -v -E '^(reading configuration from|output written to) ')
rm -rf "$out"
if [ -n "$warnings" ]; then echo "$warnings"; status=1; fi

if [ -f scripts/analyze.sh ]; then
  echo "--- C analysers"
  bash scripts/analyze.sh || status=1
fi
[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
