#!/usr/bin/env bash
# Self-check of the independent ICRC oracle (icrc_check.py) against the
# Linux kernel's own rxe traffic: every RoCE packet of the golden captures
# must pass (all 280 of smcr-a-session), and the oracle must fail when a
# covered byte is flipped yet pass when only a masked field (TTL) changes.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 tshark
[ -d "$T_CONF" ] || t_fail "conformance captures not found at $T_CONF"

a=$T_CONF/smcr-a-session.pcapng
python3 "$T_ICRC" --expect 280 "$a" || t_fail "ICRC of smcr-a-session"
python3 "$T_ICRC" "$T_CONF/smcr-b-lgr-reuse.pcapng" "$T_CONF/smcr-d-linkfail-eth0.pcapng" ||
	t_fail "ICRC of smcr-b/smcr-d"

work=$(mktemp -d /tmp/usmc-icrc.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The same packets as classic pcap: the second reader must agree.
editcap -F pcap "$a" "$work/a.pcap" || t_fail "editcap failed"
python3 "$T_ICRC" --expect 280 "$work/a.pcap" || t_fail "ICRC of smcr-a-session as pcap"

# Frame 21 is an RDMA WRITE ONLY. Find its UDP payload in the file's raw
# bytes (located by tshark, not by the oracle) and edit a copy.
hex=$(tshark -r "$a" -Y 'frame.number == 21' -T fields -e udp.payload 2>/dev/null)
[ -n "$hex" ] || t_fail "tshark did not give frame 21's UDP payload"
mutate() { # OUT DELTA: flip one byte at (start of UDP payload + DELTA)
	python3 - "$a" "$1" "$hex" "$2" <<'EOF'
import sys
src, out, hexs, delta = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = bytearray(open(src, "rb").read())
pos = data.find(bytes.fromhex(hexs))
assert pos > 0 and data.find(bytes.fromhex(hexs), pos + 1) < 0, "payload not unique"
data[pos + delta] ^= 0x01
open(out, "wb").write(data)
EOF
}
# +30: a payload byte (covered by the ICRC) -> must fail.
mutate "$work/bad.pcapng" 30 || t_fail "could not make the corrupted copy"
if python3 "$T_ICRC" "$work/bad.pcapng" >"$work/bad.out"; then
	t_fail "a flipped payload byte went unnoticed"
fi
grep -q 'frame 21: BAD' "$work/bad.out" || t_fail "the mismatch was not reported on frame 21: $(cat "$work/bad.out")"
# -20: the IPv4 TTL (UDP header 8 + TTL at IP offset 8) -> masked, must pass.
mutate "$work/ttl.pcapng" -20 || t_fail "could not make the TTL copy"
python3 "$T_ICRC" --expect 280 "$work/ttl.pcapng" >/dev/null ||
	t_fail "a changed TTL (masked by rxe) made the check fail"
t_log "PASS: 280/280 kernel rxe ICRCs (pcapng and pcap), smcr-b and smcr-d too; a flipped payload byte is caught, a changed TTL is masked"
