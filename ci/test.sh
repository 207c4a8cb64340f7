#!/usr/bin/env bash
# The whole test suite: style and purity checks, the normal build with every
# ctest label (unit, transport, netns, preload, memcheck, vm, install), the
# Debian packages, then an
# ASan+UBSan build with every label but memcheck and vm (the VM tier runs
# once: two TCG VMs per cell, about 3.5 minutes). Needs root for netns tests;
# without it they skip with exit code 77 and say so.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
jobs=$(nproc)

bash ci/setup.sh
echo "== style and layering"
bash ci/check-format.sh
bash ci/check-core-purity.sh

echo "== build (warnings are errors)"
bash ci/build.sh "$src/build"
echo "== tests"
status=0
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900) || status=1

echo "== Debian packages (dpkg-buildpackage: usmc-tools, libusmc0, libusmc-dev)"
bash ci/package.sh || status=1

echo "== clang build (warnings are errors; its unit tests run too)"
CC=clang bash ci/build.sh "$src/build-clang"
(cd build-clang && ctest -L unit -LE memcheck --output-on-failure -j"$jobs" --timeout 300) || status=1

echo "== ASan+UBSan build"
bash ci/build.sh "$src/build-asan" -DUSMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
echo "== tests under ASan+UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$jobs" -LE 'memcheck|vm' --timeout 900) || status=1
exit $status
