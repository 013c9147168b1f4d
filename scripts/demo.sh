#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): install what is
# needed, build, and run the export demo against the built-in mock Braze.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec bash examples/run-demo.sh
