#!/usr/bin/env bash
# softroce against a sender that puts nonzero IPv4 IDs in its RoCEv2
# packets, as kernel rxe does: h2's usmc-perf runs softroce with the test
# option ipid=random (a raw socket, increasing IDs from a random start, the
# ICRC over them); h1 runs the default icrc=verify. The capture on h1's
# veth is checked by tools that share no code with softroce's receive path
# (tshark: every RoCE packet from h2 has a nonzero ID, every one from h1 ID
# 0; icrc_check.py: every ICRC right over the real header), the 16 MiB
# stream is verified byte for byte on both sides, and h1's stats count the
# packets it took with an inferred ID (usmc-perf's JSON from
# usmc_get_stats: icrc_inferred > 0, icrc_dropped 0). icrc=strict, which
# drops such packets, is checked in test_softroce_wire.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss tshark tcpdump
t_need_perf
t_lab_up
pcap=$t_work/cap.pcap

usmc_lab_capture_start "$t_lab" h1 "$pcap" || t_fail "tcpdump did not start"
t_exec h1 timeout 120 "$T_PERF" -s -1 -p 7301 --verify --json \
	>"$t_work/a.server" 2>"$t_work/a.server.err" &
spid=$!
busywait 10000 t_listening h1 7301 || t_fail "server did not listen: $(cat "$t_work/a.server.err")"
crc=0
t_exec h2 env USMC_TRANSPORT_OPTIONS=ipid=random timeout 120 "$T_PERF" -c "$T_H1" -p 7301 \
	-n 16M --verify --json >"$t_work/a.client" 2>"$t_work/a.client.err" || crc=$?
src=0
wait $spid || src=$?
usmc_lab_capture_stop "$t_lab" h1 | sed "s/^/$T_NAME: tcpdump: /"
if [ $crc != 0 ] || [ $src != 0 ]; then
	sed 's/^/  client: /' "$t_work/a.client" "$t_work/a.client.err" | tail -8
	sed 's/^/  server: /' "$t_work/a.server" "$t_work/a.server.err" | tail -8
	t_fail "transfer failed: client $crc, server $src"
fi
for side in client server; do
	f=$t_work/a.$side
	[ "$(t_json "$f" path)" = smcr ] && [ "$(t_json "$f" verify)" = ok ] && [ "$(t_json "$f" bytes)" = 16777216 ] ||
		t_fail "$side: path $(t_json "$f" path), verify $(t_json "$f" verify), bytes $(t_json "$f" bytes)"
done
t_log "ok 16 MiB SMC-R, verified on both sides"

drops=$(usmc_lab_capture_drops "$t_lab" h1)
[ "${drops:-0}" = 0 ] || t_fail "tcpdump dropped $drops packets"
# IDs on the wire, per source
tshark -r "$pcap" -Y "udp.dstport == 4791 || udp.srcport == 4791" -T fields -e ip.src -e ip.id \
	>"$t_work/ids" 2>/dev/null || t_fail "tshark could not read the capture"
n2=$(awk -v a="$T_H2" '$1 == a' "$t_work/ids" | wc -l)
z2=$(awk -v a="$T_H2" '$1 == a && $2 == "0x0000"' "$t_work/ids" | wc -l)
n1=$(awk -v a="$T_H1" '$1 == a' "$t_work/ids" | wc -l)
nz1=$(awk -v a="$T_H1" '$1 == a && $2 != "0x0000"' "$t_work/ids" | wc -l)
[ "$n2" -gt 100 ] && [ "$z2" = 0 ] || t_fail "h2 sent $n2 RoCE packets, $z2 of them with ID 0 (want > 100, none)"
[ "$n1" -gt 0 ] && [ "$nz1" = 0 ] || t_fail "h1 sent $n1 RoCE packets, $nz1 with a nonzero ID (want none)"
t_log "ok the wire: $n2 packets from h2, all with a nonzero IPv4 ID ($(awk -v a="$T_H2" '$1 == a {print $2; exit}' "$t_work/ids") ...); $n1 from h1, all ID 0"
python3 "$T_ICRC" "$pcap" >"$t_work/icrc" || t_fail "ICRC check: $(tail -5 "$t_work/icrc")"
grep -q ' 0 cut short' "$t_work/icrc" || t_fail "some RoCE packets were not captured whole: $(tail -1 "$t_work/icrc")"
t_log "ok icrc_check.py over the real headers: $(tail -1 "$t_work/icrc" | sed 's/^[^:]*: //')"

inf1=$(t_json "$t_work/a.server" icrc_inferred) drop1=$(t_json "$t_work/a.server" icrc_dropped)
inf2=$(t_json "$t_work/a.client" icrc_inferred)
[ -n "$inf1" ] && [ "$inf1" -gt 100 ] && [ "$drop1" = 0 ] ||
	t_fail "h1's stats: icrc_inferred '$inf1' icrc_dropped '$drop1' (want > 100, 0)"
[ "$inf2" = 0 ] || t_fail "h2 inferred $inf2 IDs from h1, which sends ID 0"
[ "$inf1" -le "$n2" ] || t_fail "h1 inferred $inf1 IDs but h2 sent $n2 packets"
t_log "ok h1 took $inf1 packets with an inferred IPv4 ID (of $n2 from h2), dropped none; h2 inferred none"

t_log PASS
