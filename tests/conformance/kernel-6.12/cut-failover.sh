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
"$dec" --json "$in" | python3 -c '
import json, sys
keep, budget, last_llc = set(), {}, False
roce = {}
for line in sys.stdin:
    if not line.startswith("{\"frame\""):
        continue
    r = json.loads(line)
    f, p, t = r["frame"], r["proto"], r.get("type", "")
    if p in ("CLC", "TCP") and (p == "CLC" or "SYN" in t):
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
print(" ".join(str(f) for f in sorted(keep)))
' >"$out.keep"
# editcap and tshark take a few hundred frame numbers at most: the
# classic pcap input is filtered here, then turned into pcapng
python3 - "$in" "$out.keep" "$out.pcap" <<'PY'
import struct, sys
src, keepf, dst = sys.argv[1:4]
keep = set(int(x) for x in open(keepf).read().split())
data = open(src, "rb").read()
endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
out, off, n = [data[:24]], 24, 0
while off + 16 <= len(data):
    incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
    n += 1
    if n in keep:
        out.append(data[off:off + 16 + incl])
    off += 16 + incl
open(dst, "wb").write(b"".join(out))
PY
editcap -F pcapng "$out.pcap" "$out"
rm -f "$out.keep" "$out.pcap"
