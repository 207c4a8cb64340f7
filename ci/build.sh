#!/usr/bin/env bash
# Configures and builds usmc. Usage: ci/build.sh [BUILD_DIR] [extra cmake args]
# Prints the build's feature summary (what was found: verbs, the SYN
# option's eBPF, the ICRC's CRC, man pages...). USMC_BUILD_PROGRESS=1
# also prints a line per target built, for a person watching (ci/demo.sh).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$src/build}
shift || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cmake -S "$src" -B "$dir" -DUSMC_WERROR=ON "$@" >"$log" 2>&1; then
	cat "$log" >&2
	exit 1
fi
# the summary CMakeLists.txt prints, as "-- usmc features:" and its lines
sed -n '/^-- usmc features:/,/^-- [^ ]/{/^-- usmc features:/p;/^--   /p}' "$log"
# the progress lines are dropped (or only "Built target" ones kept); the
# build's own status decides (with pipefail, "|| true" would reset
# PIPESTATUS and hide a failed build)
keep='^\[ *[0-9]+%\]'
[ "${USMC_BUILD_PROGRESS:-0}" = 1 ] && keep='^\[ *[0-9]+%\] (Building|Linking|Generating|Scanning|Copying)'
status=0
cmake --build "$dir" -j"$(nproc)" 2>&1 | { grep --line-buffered -vE "$keep" || true; } || status=$?
exit "$status"
