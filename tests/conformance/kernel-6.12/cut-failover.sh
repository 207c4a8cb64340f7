#!/usr/bin/env bash
# cut-failover.sh BOTH_PCAP OUT.pcapng: a golden trace from a failover
# cell's capture (two_nics, two_nics_server: VM 1's eth0 and eth1 merged,
# BUILD/vm-runs/CELL/CELL/both.pcap, docs/vm.md). A stream of tens of MiB
# has too many CDC messages to keep them all (cut.sh keeps every SEND):
# this keeps every TCP SYN and CLC segment, every LLC message and the ACK
# right after it, and per QP the first 24 CDC messages and RDMA WRITE
# frames, and 8 more after each CONFIRM_LINK or DELETE_LINK request (the
# failover's validation CDC and the first data on the surviving link).
# Needs usmc-decode (USMC_BUILD, default ./build), python3, editcap.
set -euo pipefail
in=$1 out=$2
dec=${USMC_BUILD:-build}/tools/usmc-decode
PYTHONPATH=$(dirname "$0") PYTHONDONTWRITEBYTECODE=1 python3 - "$dec" "$in" "$out.pcap" <<'PY'
import sys
from cut_lib import handshake, records, write_pcap
dec, src, dst = sys.argv[1:4]
keep, budget, last_llc = set(), {}, False
roce = {}
for f, p, t, r in records(dec, src):
    if handshake(p, t):
        keep.add(f)
    elif p == "RoCE":
        roce[f] = r
        if t == "RC_ACKNOWLEDGE" and last_llc:
            keep.add(f)
        if t != "RC_SEND_ONLY":
            last_llc = False
        if t.startswith("RC_RDMA_WRITE"):
            q = ("w", r["qpn"])
            if budget.get(q, 24) > 0:
                keep.add(f)
                budget[q] = budget.get(q, 24) - 1
    elif p == "LLC":
        keep.add(f)
        last_llc = True
        if t.startswith(("CONFIRM_LINK", "DELETE_LINK")) and not r.get("resp"):
            for q in budget:
                budget[q] = 8
    elif p == "CDC":
        q = ("c", roce.get(f, {}).get("qpn"))
        if budget.get(q, 24) > 0:
            keep.add(f)
            budget[q] = budget.get(q, 24) - 1
write_pcap(src, keep, dst)
PY
editcap -F pcapng "$out.pcap" "$out"
rm -f "$out.pcap"
