#!/usr/bin/env bash
# softroce's gso=on (UDP GSO sends, UDP_GRO receives) between two lab hosts:
#  1. the veth as created (tx-udp-segmentation on: a GSO send crosses it
#     whole): 16 MiB SMC-R verified on both sides, no ICRC dropped and none
#     taken by an inferred ID (each packet of a coalesced datagram is
#     checked with the ID of its position);
#  2. tx-udp-segmentation off on both veth ends, so the kernel cuts the
#     sends into frames on the wire, as a NIC would: a 4 MiB transfer
#     captured on h1 is verified, every frame fits the MTU, h2's frames
#     carry the IDs 0, 1, 2... of GSO segments (some nonzero), and
#     icrc_check.py, which shares no code with softroce, finds every ICRC
#     right over the real headers.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss tshark tcpdump
t_need_perf
feat=$USMC_SRC/tests/netns/netdev_features.py
t_lab_up
export USMC_TRANSPORT_OPTIONS=gso=on

usmc_lab_capture_start "$t_lab" h1 "$t_work/whole.pcap" 128 || t_fail "tcpdump did not start"
t_run_pair whole 7320 --verify --json -- -n 16M --verify --json --timeout 60 || t_fail "transfer failed"
usmc_lab_capture_stop "$t_lab" h1 >/dev/null
t_check_smcr whole 16777216 || t_fail "the transfer was not SMC-R, verified, 16 MiB"
for side in client server; do
	inf=$(t_json "$t_work/whole.$side" icrc_inferred) drop=$(t_json "$t_work/whole.$side" icrc_dropped)
	[ "$inf" = 0 ] && [ "$drop" = 0 ] || t_fail "$side: icrc_inferred '$inf', icrc_dropped '$drop' (want 0, 0)"
done
whole=$(tshark -r "$t_work/whole.pcap" -Y "udp.dstport == 4791 && frame.len > 1514" 2>/dev/null | wc -l)
[ "$whole" -gt 0 ] || t_fail "no datagram over the MTU on the veth: no GSO send crossed whole"
t_log "ok $whole GSO datagrams crossed the veth whole; no ICRC inferred or dropped on either side"

for h in h1 h2; do
	t_exec $h python3 "$feat" "$USMC_LAB_IFNAME" tx-udp-segmentation off ||
		t_skip "cannot turn tx-udp-segmentation off on $h's veth"
	t_exec $h python3 "$feat" "$USMC_LAB_IFNAME" | grep -qx 'tx-udp-segmentation off' ||
		t_fail "tx-udp-segmentation is still on on $h's veth"
done
pcap=$t_work/cap.pcap
usmc_lab_capture_start "$t_lab" h1 "$pcap" || t_fail "tcpdump did not start"
t_run_pair cut 7321 --verify --json -- -n 4M --verify --json --timeout 60 || t_fail "transfer failed"
usmc_lab_capture_stop "$t_lab" h1 | sed "s/^/$T_NAME: tcpdump: /"
t_check_smcr cut 4194304 || t_fail "the transfer was not SMC-R, verified, 4 MiB"
drops=$(usmc_lab_capture_drops "$t_lab" h1)
[ "${drops:-0}" = 0 ] || t_fail "tcpdump dropped $drops packets"
tshark -r "$pcap" -Y "udp.dstport == 4791" -T fields -e ip.src -e ip.id -e frame.len \
	>"$t_work/frames" 2>/dev/null || t_fail "tshark could not read the capture"
n2=$(awk -v a="$T_H2" '$1 == a' "$t_work/frames" | wc -l)
nz2=$(awk -v a="$T_H2" '$1 == a && $2 != "0x0000"' "$t_work/frames" | wc -l)
big=$(awk '$3 > 1514' "$t_work/frames" | wc -l)
[ "$n2" -gt 1000 ] && [ "$nz2" -gt 0 ] || t_fail "h2 sent $n2 RoCE frames, $nz2 with a nonzero ID (want > 1000, > 0)"
[ "$big" = 0 ] || t_fail "$big frames larger than the MTU: the GSO sends crossed whole"
python3 "$T_ICRC" "$pcap" >"$t_work/icrc" || t_fail "ICRC check: $(tail -5 "$t_work/icrc")"
grep -q ' 0 cut short' "$t_work/icrc" || t_fail "some RoCE packets were not captured whole: $(tail -1 "$t_work/icrc")"
t_log "ok frames on the wire: $n2 from h2, $nz2 with the nonzero ID of a GSO segment, none over the MTU; icrc_check.py: $(tail -1 "$t_work/icrc" | sed 's/^[^:]*: //')"
t_log PASS
