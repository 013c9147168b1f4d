#!/usr/bin/env bash
# Static analysis of the C core: cppcheck and gcc -fanalyzer over csrc/*.c.
# Prints every finding; exits 0 only when there are none.
# False positives are suppressed in one place each: .cppcheck-suppressions
# (cppcheck, with reasons) and csrc/compat.h (luaL_error/lua_error marked
# noreturn, for gcc -fanalyzer).
#   bash scripts/analyze.sh [LUA_PKG]   (pkg-config name, default lua5.4)
set -uo pipefail
cd "$(dirname "$0")/.."
lua_pkg=${1:-lua5.4}
findings=0

# No system include paths: cppcheck cannot parse luaconf.h, and the Lua and
# libcurl headers are not what we check.
if ! out=$(cppcheck -q --enable=warning,style,performance,portability --std=c99 \
    --inline-suppr --suppressions-list=.cppcheck-suppressions --suppress=missingIncludeSystem \
    --error-exitcode=1 -D_DEFAULT_SOURCE -I csrc csrc/ 2>&1) || [ -n "$out" ]; then
  echo "$out"
  echo "!! cppcheck: findings above"
  findings=1
else
  echo "cppcheck: clean"
fi

cflags=$(pkg-config --cflags "$lua_pkg" libcurl) || { echo "!! pkg-config $lua_pkg libcurl failed"; exit 2; }
analyzer=0
for f in csrc/*.c; do
  # shellcheck disable=SC2086
  out=$(gcc -fanalyzer -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -pedantic -c -o /dev/null $cflags "$f" 2>&1)
  if [ -n "$out" ]; then
    echo "$out"
    echo "!! gcc -fanalyzer: findings in $f"
    analyzer=1
    findings=1
  fi
done
[ "$analyzer" -eq 0 ] && echo "gcc -fanalyzer: clean"
exit "$findings"
