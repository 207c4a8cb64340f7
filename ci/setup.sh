#!/usr/bin/env bash
# Installs what usmc needs on Debian 12. Idempotent.
#   ci/setup.sh          everything ci/test.sh uses (the test toolchain,
#                        workloads, the VM tier)
#   ci/setup.sh --demo   only what ci/demo.sh uses: a compiler, cmake, the
#                        libraries of the build, tshark and tcpdump
set -euo pipefail
# the build: a compiler, cmake, the libraries; the demo: tshark, tcpdump,
# iproute2, python3 (tests/netns/icrc_check.py), jq (the tests' t_json).
# zlib: the CRC oracle of test_roce_hdr and usmc-srbench; libisal2: the
# ICRC's dlopen'ed CRC-32 (no header is needed to build).
demo_pkgs=(build-essential cmake pkg-config clang llvm
      libcunit1-dev libpcap-dev zlib1g-dev libisal2 libibverbs-dev libbpf-dev
      tshark tcpdump iproute2 iptables python3 jq procps)
pkgs=("${demo_pkgs[@]}" clang-format debhelper ibverbs-providers rdma-core
      valgrind socat iperf3 util-linux
      redis-server redis-tools sockperf nginx-light curl gnuplot-nox
      qemu-system-x86 busybox-static xz-utils txt2man groff-base bash-completion
      gdb)
# qemu-system-x86, busybox-static: the VM tier (docs/vm.md), whose kernel
# netns/usmc-lab fetches itself with apt-get download at its first run.
# gnuplot-nox: usmc-bench's chart (docs/bench.md). debhelper: ci/package.sh.
# txt2man, groff-base, bash-completion: man pages and completion
# (cmake/UsmcInstall.cmake) and their test. gdb: the stacks of a workload
# client that spins instead of ending (tests/preload/lib_apps.sh).
case ${1:-} in
--demo) pkgs=("${demo_pkgs[@]}") ;;
"") ;;
-h | --help)
	sed -n '2,6s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*)
	echo "setup: unknown option '$1'" >&2
	echo "Try 'ci/setup.sh --help' for more information." >&2
	exit 2
	;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${#missing[@]} packages and what they need: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  # redis-server and nginx start their service on install: deny service
  # starts meanwhile (tests start their own instances on their own ports).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
  fi
  echo "setup: apt-get update"
  apt-get update -qq
  # how much, then apt's own progress: a line per package fetched and set up
  apt-get install -s --no-install-recommends "${missing[@]}" 2>/dev/null |
    awk '/^Inst /{n++} END{printf "setup: %d packages to install (apt-get prints each)\n", n}'
  set +e
  apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" |
    grep --line-buffered -E '^(Get:|Setting up|Need to get|After this|E:)'
  st=("${PIPESTATUS[@]}")
  set -e
  [ "${st[0]}" = 0 ] || { echo "setup: apt-get install failed (exit ${st[0]})" >&2; exit 1; }
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; own_policy=0; fi
fi
