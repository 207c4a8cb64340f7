#!/usr/bin/env bash
# The whole test suite: style and purity checks, the normal build with every
# ctest label (unit, transport, netns, preload, memcheck, vm, install), the
# Debian packages, then an
# ASan+UBSan build with every label but memcheck and vm (the VM tier runs
# once: two TCG VMs per cell, about 3.5 minutes). Needs root for netns tests;
# without it they skip with exit code 77 and say so.
#
#   ci/test.sh           the whole suite (about 45 min on 2 cores)
#   ci/test.sh --quick   a sanity pass in about a minute once built: the
#                        normal build, the unit and transport labels but
#                        the fuzz, valgrind and verbs ones, and the demo
#                        test (two namespaces over softroce; needs root)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
jobs=$(nproc)

case ${1:-} in
--quick)
	bash ci/setup.sh --demo
	echo "== build (warnings are errors)"
	bash ci/build.sh "$src/build"
	echo "== quick tests: unit and transport (no fuzz, valgrind, verbs), then the demo"
	start=$SECONDS
	status=0
	(cd build && ctest -L 'unit|transport' -LE 'memcheck|verbs' -E '^fuzz_' \
		--output-on-failure -j"$jobs" --timeout 120) || status=1
	(cd build && ctest -R '^netns_test_demo$' --output-on-failure --timeout 120) || status=1
	echo "quick pass: $((SECONDS - start)) s of tests; the whole suite is ci/test.sh"
	exit $status
	;;
"") ;;
-h | --help)
	sed -n '2,13s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*)
	echo "test: unknown option '$1'" >&2
	echo "Try 'ci/test.sh --help' for more information." >&2
	exit 2
	;;
esac

# each stage says when it began, so a slow CI run shows where the time went
stage() { echo "== $* [$(date -u +%T), ${SECONDS} s in]"; }

stage "setup (apt-get)"
bash ci/setup.sh
stage "style and layering"
bash ci/check-format.sh
bash ci/check-core-purity.sh

stage "build (warnings are errors)"
bash ci/build.sh "$src/build"
stage "tests"
status=0
(cd build && ctest --output-on-failure -j"$jobs" --timeout 900) || status=1

stage "Debian packages (dpkg-buildpackage: usmc-tools, libusmc0, libusmc-dev)"
bash ci/package.sh || status=1

stage "clang build (warnings are errors; its unit tests run too, but the fuzz replays)"
CC=clang bash ci/build.sh "$src/build-clang"
(cd build-clang && ctest -L unit -LE memcheck -E '^fuzz_' --output-on-failure -j"$jobs" --timeout 300) || status=1

stage "ASan+UBSan build"
bash ci/build.sh "$src/build-asan" -DUSMC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
stage "tests under ASan+UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j"$jobs" -LE 'memcheck|vm' --timeout 900 \
    -E '^preload_shm_(redis|sockperf|nginx|log|fallback_calls|fallback_conns|netns_switch)$') || status=1
stage "done"
# (Debian's redis, sockperf and nginx over shm run in the normal pass only:
# under ASan they cost about 5 min, over the 45 min CI budget; the shm
# code they drive is in the ASan pass through test_shm, netns_test_shm,
# netns_test_conns_shm and the other preload_shm tests, iperf3's included.
# So do the shm runs of log, fallback_calls, fallback_conns and
# netns_switch, whose subject is not the data path: the runtime's log, TCP
# fallbacks and the namespace switch, the same code over shm as over
# softroce, which the ASan pass runs; together about 2 min under ASan.)
exit $status
