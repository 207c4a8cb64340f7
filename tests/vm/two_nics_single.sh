#!/usr/bin/env bash
# usmc without a pnet (one device) <-> kernel AF_SMC with two rxe devices
# (VM 2); alone: usmc client over softroce; two_nics_verbs_server.sh: usmc
# server over verbs on rxe0
#
# VM cell 6d (docs/vm.md), usmc without a pnet (USMC_PNET unset): one
# device, so no second link. Both VMs have a second NIC, eth1, in the same
# /24 (SUBNET.11, SUBNET.12), and the kernel a second rxe device on it
# with the same pnetid: the kernel's server asks usmc, whose link groups
# have one link, for a second link (ADD_LINK with rxe1's GID). usmc must
# reject it cleanly, the data must go over the one link (nothing on
# eth1's wire), the kernel's link group stays SINGLE (no "state changed"
# to a symmetric or asymmetric type in its log) and ends when usmc
# exits, and nothing is left unanswered or retransmitted (vm_cell_usmc).
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
export VM_TWO_NICS=1
# the other roles and transports source this file with these set
# (two_nics_verbs_server.sh)
kind=${TWO_NICS_KIND:-usmc-client}
tp=${TWO_NICS_TP:-softroce}
vm_cell_usmc "$1" "$kind" "$tp" "${TWO_NICS_PORT:-7201}" "$((${TWO_NICS_PORT:-7201} + 1))" 1048576
case $1 in
cli)
	"$SMCCTL" pnet show >"$VM_OUT/pnet.cli.txt"
	dmesg | grep -iE 'smc|rxe' >"$VM_OUT/dmesg.cli.txt"
	;;
host)
	python3 - "$VM_OUT/decode.json" "$kind" "$VM_SUBNET.1" <<'PY' >"$VM_OUT/addlink.txt" || vm_fail "ADD_LINK: $(cat "$VM_OUT/addlink.txt")"
import json, sys
reqs, rejs, bad = [], 0, []
# a SEND rxe retransmitted carries its LLC message again: count it once
# (by the BTH of its frame; the RoCE record comes before the LLC one)
bth, seen = {}, set()
for line in open(sys.argv[1]):
    if not line.startswith('{"frame"'):
        continue
    r = json.loads(line)
    if r.get("proto") == "RoCE":
        bth[r["frame"]] = (r["src"], r["qpn"], r["psn"])
    if r.get("proto") != "LLC" or not r["type"].startswith("ADD_LINK"):
        continue
    k = bth.get(r["frame"])
    if k in seen:
        continue
    seen.add(k)
    if not r.get("resp"):
        reqs.append(r)
    elif r.get("reject"):
        rejs += 1
    else:
        bad.append("frame %d: an ADD_LINK accepted" % r["frame"])
# A kernel server asks usmc for a second link (ADD_LINK with rxe1's GID)
# and usmc rejects it; a usmc server asks with its one link and the
# kernel client rejects it. Either way every request is rejected.
usmc_asks = sys.argv[2] == "usmc-server"
for r in reqs:
    if (r["src"].split(":")[0] == sys.argv[3]) != usmc_asks:
        bad.append("frame %d: ADD_LINK request from %s" % (r["frame"], r["src"]))
if not reqs:
    bad.append("no ADD_LINK request at all")
if rejs != len(reqs):
    bad.append("%d ADD_LINK requests, %d rejects" % (len(reqs), rejs))
print("; ".join(bad) or "%d ADD_LINK requests from %s, %d rejected by %s" % (
    len(reqs), "usmc" if usmc_asks else "the kernel", rejs,
    "the kernel" if usmc_asks else "usmc"))
sys.exit(1 if bad else 0)
PY
	vm_log "$(cat "$VM_OUT/addlink.txt")"
	grep -q 'rxe1' "$VM_OUT/pnet.cli.txt" || vm_fail "the kernel had no rxe1 in its pnet table: $(tr '\n' ' ' <"$VM_OUT/pnet.cli.txt")"
	vm_log "kernel log: $(grep -iE 'state changed|link (added|removed)' "$VM_OUT/dmesg.cli.txt" | tr '\n' ' ')"
	if grep -qE 'state changed: (SYMMETRIC|ASYMMETRIC)' "$VM_OUT/dmesg.cli.txt"; then
		vm_fail "the kernel's link group got a second link: $(grep 'state changed' "$VM_OUT/dmesg.cli.txt" | tr '\n' ' ')"
	fi
	n1=$(tshark -r "$(dirname "$VM_PCAP")/wire1.pcap" -n -Y 'udp.port == 4791' 2>/dev/null | grep -c .)
	[ "$n1" = 0 ] || vm_fail "$n1 RoCE packets on the second NIC's wire"
	vm_log "RoCE packets on eth1's wire: $n1"
	;;
esac
