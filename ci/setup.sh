#!/usr/bin/env bash
# Installs what usmc needs to build and test on Debian 12. Idempotent.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-format llvm debhelper
      libcunit1-dev libpcap-dev zlib1g-dev libisal-dev libibverbs-dev ibverbs-providers rdma-core libbpf-dev
      valgrind tshark tcpdump iproute2 iptables socat iperf3 python3 procps util-linux
      redis-server redis-tools sockperf nginx-light curl gnuplot-nox
      qemu-system-x86 busybox-static xz-utils txt2man groff-base bash-completion)
# qemu-system-x86, busybox-static: the VM tier (docs/vm.md), whose kernel
# netns/usmc-lab fetches itself with apt-get download at its first run.
# gnuplot-nox: usmc-bench's chart (docs/bench.md).
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
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
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; own_policy=0; fi
fi
