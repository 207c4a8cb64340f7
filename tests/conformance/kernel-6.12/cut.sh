#!/usr/bin/env bash
# cut.sh RUN_PCAP OUT.pcapng: a golden trace from a VM cell's capture
# (BUILD/vm-runs/CELL/wire.pcap, docs/vm.md): every TCP SYN and CLC
# segment, every RoCE SEND (LLC and CDC) and the ACK right after each,
# and the first 24 RDMA WRITE frames of each link group (data wrapping
# the RMB stays in the full capture; a few hundred KB at most in all).
# Needs usmc-decode (USMC_BUILD, default ./build), editcap.
set -euo pipefail
in=$1 out=$2
dec=${USMC_BUILD:-build}/tools/usmc-decode
frames=$("$dec" --json "$in" | python3 -c '
import json, sys
keep, writes, last_send, prev_cl = set(), 0, False, None
for line in sys.stdin:
    if not line.startswith("{\"frame\""):
        continue
    r = json.loads(line)
    f, p, t = r["frame"], r["proto"], r.get("type", "")
    if p in ("CLC", "TCP") and (p == "CLC" or "SYN" in t):
        keep.add(f)
    elif p == "LLC" and t.startswith("CONFIRM_LINK") and not r.get("resp"):
        writes = 0
    elif p == "RoCE":
        if t == "RC_SEND_ONLY":
            keep.add(f)
            last_send = True
            continue
        if t == "RC_ACKNOWLEDGE" and last_send:
            keep.add(f)
        elif t.startswith("RC_RDMA_WRITE") and writes < 24:
            keep.add(f)
            writes += 1
        last_send = False
print(" ".join(str(f) for f in sorted(keep)))
')
# editcap -r keeps the listed frames; the list is split to stay within
# the argument limit
# shellcheck disable=SC2086
editcap -r -F pcapng "$in" "$out" $frames
