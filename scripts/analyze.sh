#!/usr/bin/env bash
# Static analysis of the C core: cppcheck and gcc -fanalyzer over csrc/,
# both at zero findings. Their false positives (they do not know that
# luaL_error never returns) are answered in one place: csrc/analyzer.h.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
cflags="-std=c99 -D_DEFAULT_SOURCE $(pkg-config --cflags lua5.4 libcurl) -I csrc"

echo "cppcheck $(cppcheck --version | cut -d' ' -f2)"
# Lua's and curl's headers are left out (cppcheck misreads luaconf.h); the
# project's own are read.
cppcheck --quiet --std=c99 --enable=warning,portability,performance --inline-suppr \
  --error-exitcode=1 --suppress=missingIncludeSystem -D_DEFAULT_SOURCE -I csrc \
  --include=csrc/analyzer.h csrc/*.c || status=1

echo "gcc -fanalyzer ($(gcc -dumpversion))"
for f in csrc/*.c; do
  # shellcheck disable=SC2086
  out=$(gcc $cflags -fanalyzer -Wall -Wextra -include csrc/analyzer.h -c -o /dev/null "$f" 2>&1)
  if [ -n "$out" ]; then echo "$out"; status=1; fi
done
[ "$status" -eq 0 ] && echo "analyze: no findings"
exit "$status"
