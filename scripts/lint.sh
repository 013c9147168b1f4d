#!/usr/bin/env bash
# Static checks, each of which must report nothing:
#   luacheck over every Lua file (.luacheckrc), the reference check
#   (scripts/reference.lua --check: docs/reference.md is current and every
#   public function and value is documented), and the C analysers
#   (scripts/analyze.sh).
# Needs Debian's lua-check, lua5.4, cppcheck and gcc.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

echo "--- luacheck"
luacheck --no-color --formatter plain . || status=1

echo "--- reference (doc coverage)"
lua5.4 scripts/reference.lua --check || status=1

if [ -f scripts/analyze.sh ]; then
  echo "--- C analysers"
  bash scripts/analyze.sh || status=1
fi
[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
