#!/usr/bin/env bash
# Build braze.core into build/braze/core.so (warnings are errors).
#   bash scripts/build.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DBRAZE_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j 2 >/dev/null
echo "built $dir/braze/core.so"
