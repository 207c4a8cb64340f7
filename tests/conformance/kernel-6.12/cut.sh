#!/usr/bin/env bash
# cut.sh RUN_PCAP OUT.pcapng: a golden trace from a VM cell's capture
# (BUILD/vm-runs/CELL/wire.pcap, docs/vm.md): every TCP SYN and CLC
# segment, every RoCE SEND (LLC and CDC) and the ACK right after each,
# and the first 24 RDMA WRITE frames of each link group (data wrapping
# the RMB stays in the full capture; a few hundred KB at most in all).
# Needs usmc-decode (USMC_BUILD, default ./build), python3, editcap.
set -euo pipefail
in=$1 out=$2
dec=${USMC_BUILD:-build}/tools/usmc-decode
PYTHONPATH=$(dirname "$0") PYTHONDONTWRITEBYTECODE=1 python3 - "$dec" "$in" "$out.pcap" <<'PY'
import sys
from cut_lib import handshake, records, write_pcap
dec, src, dst = sys.argv[1:4]
keep, writes, last_send = set(), 0, False
for f, p, t, r in records(dec, src):
    if handshake(p, t):
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
write_pcap(src, keep, dst)
PY
editcap -F pcapng "$out.pcap" "$out"
rm -f "$out.pcap"
