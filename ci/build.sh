#!/usr/bin/env bash
# Configures and builds usmc. Usage: ci/build.sh [BUILD_DIR] [extra cmake args]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$src/build}
shift || true
cmake -S "$src" -B "$dir" -DUSMC_WERROR=ON "$@" >/dev/null
# the progress lines are dropped; the build's own status decides (with
# pipefail, "|| true" would reset PIPESTATUS and hide a failed build)
status=0
cmake --build "$dir" -j"$(nproc)" 2>&1 | { grep -vE '^\[ *[0-9]+%\]' || true; } || status=$?
exit "$status"
