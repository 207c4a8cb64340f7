#!/usr/bin/env bash
# usmc-decode on the Linux kernel's own SMC-R captures: zero malformed,
# every RoCE ICRC checked and OK, and the CLC / LLC / CDC message counts
# equal to what tshark finds. Then three damaged copies must be caught:
# a CDC with a bad length byte, a flipped payload byte (ICRC) and a CLC
# Proposal with a bad length. Needs no root.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 tshark editcap
[ -x "$T_DECODE" ] || t_fail "usmc-decode is not built ($T_DECODE missing; it needs libpcap)"
[ -d "$T_CONF" ] || t_fail "conformance captures not found at $T_CONF"

work=$(mktemp -d /tmp/usmc-decode.XXXXXX)
trap 'rm -rf "$work"' EXIT

fail=0
for cap in "$T_CONF"/*.pcapng; do
	base=${cap##*/}
	out=$work/$base.json
	rc=0
	"$T_DECODE" --json "$cap" >"$out" 2>"$out.err" || rc=$?
	if [ $rc != 0 ]; then
		t_log "$base: usmc-decode exit $rc"
		grep MALFORMED "$out" | head -5
		cat "$out.err"
		fail=1
		continue
	fi
	# tshark's view. CLC: every smc.clc_msg; CDC: SMC messages of type
	# 0xfe; LLC: the other RoCE SEND ONLY packets (tshark 4.0 cannot decode
	# SMC-Rv2 LLC, so it is counted from the BTH opcode).
	ts_clc=$(tshark -r "$cap" -n -T fields -E occurrence=a -e smc.clc_msg -Y smc.clc_msg 2>/dev/null |
		tr ',' '\n' | grep -c .)
	ts_cdc=$(tshark -r "$cap" -n -Y 'smc.llc_msg == 0xfe' 2>/dev/null | grep -c .)
	ts_send=$(tshark -r "$cap" -n -Y 'infiniband.bth.opcode == 4' 2>/dev/null | grep -c .)
	ts_roce=$(tshark -r "$cap" -n -Y 'infiniband' 2>/dev/null | grep -c .)
	ts_llc=$((ts_send - ts_cdc))
	clc=$(t_summary "$out" clc)
	llc=$(t_summary "$out" llc)
	cdc=$(t_summary "$out" cdc)
	roce=$(t_summary "$out" roce)
	ok=$(t_summary "$out" icrc_ok)
	mal=$(t_summary "$out" malformed)
	line="$base: CLC $clc/$ts_clc LLC $llc/$ts_llc CDC $cdc/$ts_cdc RoCE $roce/$ts_roce ICRC ok $ok malformed $mal (usmc-decode/tshark)"
	if [ "$clc" = "$ts_clc" ] && [ "$llc" = "$ts_llc" ] && [ "$cdc" = "$ts_cdc" ] &&
		[ "$roce" = "$ts_roce" ] && [ "$ok" = "$roce" ] && [ "$mal" = 0 ]; then
		t_log "ok   $line"
	else
		t_log "FAIL $line"
		fail=1
	fi
done
[ $fail = 0 ] || t_fail "usmc-decode disagrees with tshark or found malformed messages"

# Other link types and IPv6: smcr-a rewritten as Linux cooked SLL and SLL2,
# and as IPv6 (ICRC recomputed by icrc_check.py's own code), must decode
# to the same counts, with every ICRC OK (for IPv6: usmc's and the
# oracle's ICRC agree).
convert() { # IN OUT MODE (sll|sll2|ipv6)
	python3 - "$@" "$USMC_SRC/tests/netns" <<'EOF2'
import struct, sys
src, out, mode, libdir = sys.argv[1:5]
sys.path.insert(0, libdir)
import icrc_check as ic
recs = []
for lt, caplen, origlen, pkt in ic.read_capture(src):
    assert lt == 1
    eth, etype, l3 = pkt[:12], struct.unpack(">H", pkt[12:14])[0], pkt[14:]
    if mode == "ipv6":
        if etype == 0x0800:
            ihl = (l3[0] & 15) * 4
            tot, proto, ttl = struct.unpack(">H", l3[2:4])[0], l3[9], l3[8]
            six = lambda a: bytes.fromhex("20010db8000000000000000000000000")[:12] + a
            body = bytearray(l3[ihl:tot])
            hdr = struct.pack(">IHBB", 6 << 28, len(body), proto, ttl) + six(l3[12:16]) + six(l3[16:20])
            if proto == 17 and struct.unpack(">H", body[2:4])[0] == 4791:
                ip = bytearray(hdr)
                ip[0] |= 0x0F; ip[1] = ip[2] = ip[3] = 0xFF; ip[7] = 0xFF
                ulen = struct.unpack(">H", body[4:6])[0]
                crc = ic.icrc_of(ip, body[:8], body[8:20], bytes(body[20:ulen - 4]))
                body[ulen - 4:ulen] = struct.pack("<I", crc)
            l3 = hdr + bytes(body)
            etype = 0x86DD
        frame = eth + struct.pack(">H", etype) + l3
        lt = 1
    elif mode == "sll":
        frame = struct.pack(">HHH", 0, 1, 6) + eth[6:12] + b"\0\0" + struct.pack(">H", etype) + l3
        lt = 113
    else:
        frame = struct.pack(">HHIHBB", etype, 0, 2, 1, 0, 6) + eth[6:12] + b"\0\0" + l3
        lt = 276
    recs.append(frame)
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt))
    for i, fr in enumerate(recs):
        f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)) + fr)
EOF2
}
six() { t_summary "$1" clc llc cdc roce icrc_ok malformed; }
want=$(six "$work/smcr-a-session.pcapng.json")
for mode in sll sll2 ipv6; do
	convert "$T_CONF/smcr-a-session.pcapng" "$work/a-$mode.pcap" $mode || t_fail "could not write the $mode copy"
	rc=0
	"$T_DECODE" --json "$work/a-$mode.pcap" >"$work/a-$mode.json" || rc=$?
	got=$(six "$work/a-$mode.json")
	[ $rc = 0 ] && [ "$got" = "$want" ] ||
		t_fail "smcr-a as $mode: exit $rc, clc/llc/cdc/roce/icrc_ok/malformed '$got', want '$want'"
	t_log "ok   smcr-a as $mode: clc/llc/cdc/roce/icrc_ok/malformed $got"
done
grep -q '"src":"2001:db8::a09:2:' "$work/a-ipv6.json" || t_fail "IPv6 addresses not shown as expected"

# The text form decodes the same captures without error too.
"$T_DECODE" "$T_CONF/smcr-a-session.pcapng" >"$work/a.txt" || t_fail "text mode failed"
grep -q 'CLC PROPOSAL' "$work/a.txt" && grep -q 'LLC CONFIRM_LINK_V2' "$work/a.txt" &&
	grep -q 'CDC CDC' "$work/a.txt" && grep -q 'RoCE RC_RDMA_WRITE_ONLY' "$work/a.txt" ||
	t_fail "text output lacks the expected message lines"

# Damaged copies. Bytes are located with tshark's hex, not with usmc code.
a=$T_CONF/smcr-a-session.pcapng
mutate() { # OUT HEX DELTA NEWBYTE: set byte (start of HEX in file + DELTA)
	python3 - "$a" "$@" <<'EOF'
import sys
src, out, hexs, delta, new = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5], 0)
data = bytearray(open(src, "rb").read())
pos = data.find(bytes.fromhex(hexs))
assert pos >= 0 and data.find(bytes.fromhex(hexs), pos + 1) < 0, "pattern not unique"
data[pos + delta] = new
open(out, "wb").write(data)
EOF
}
expect_caught() { # FILE WHAT PATTERN
	local rc=0
	"$T_DECODE" "$1" >"$1.out" 2>&1 || rc=$?
	[ $rc = 1 ] || t_fail "$2: exit $rc, expected 1"
	grep -q "$3" "$1.out" || t_fail "$2: '$3' not reported: $(tail -3 "$1.out")"
	t_log "ok   $2 -> $(grep -m1 "$3" "$1.out" | sed 's/  */ /g')"
}
# Frame 23 is a CDC (SEND ONLY): its length byte (UDP payload offset 12 + 1).
hex=$(tshark -r "$a" -Y 'frame.number == 23' -T fields -e udp.payload 2>/dev/null)
mutate "$work/cdc.pcapng" "$hex" 13 45 || t_fail "could not damage the CDC"
expect_caught "$work/cdc.pcapng" "CDC length 45" "CDC MALFORMED.*USMC_ERR_BAD_LENGTH"
# A payload byte of an RDMA WRITE ONLY (frame 21, offset 30): ICRC mismatch.
hex=$(tshark -r "$a" -Y 'frame.number == 21' -T fields -e udp.payload 2>/dev/null)
orig=$(python3 -c "import sys; print(int(sys.argv[1][60:62], 16) ^ 1)" "$hex")
mutate "$work/icrc.pcapng" "$hex" 30 "$orig" || t_fail "could not damage the WRITE"
expect_caught "$work/icrc.pcapng" "flipped payload byte" "icrc=BAD"
# The Proposal (frame 7): its length field (CLC offset 5-6) set to 0x00ff.
hex=$(tshark -r "$a" -Y 'frame.number == 7' -T fields -e tcp.payload 2>/dev/null)
mutate "$work/clc.pcapng" "$hex" 6 0xff || t_fail "could not damage the Proposal"
expect_caught "$work/clc.pcapng" "Proposal length 0x00ff" "CLC MALFORMED"
grep -q 'CLC PROPOSAL' "$work/clc.pcapng.out" && t_fail "a Proposal with a wrong length was decoded"

# Random damage (seeded): 300 copies of smcr-a and smcr-d with 1-8 bytes
# changed anywhere past the file header. usmc-decode may report malformed
# messages or an unreadable file, but must never crash or hang (under the
# ASan build a memory error aborts, which fails here too).
python3 - "$a" "$T_CONF/smcr-d-linkfail-eth0.pcapng" "$work" <<'EOF2' || t_fail "could not write the damaged copies"
import random, sys
rnd = random.Random(7609)
for i in range(300):
    src = sys.argv[1 + (i % 2)]
    data = bytearray(open(src, "rb").read())
    for _ in range(rnd.randint(1, 8)):
        data[rnd.randrange(200, len(data))] = rnd.randrange(256)
    open("%s/fuzz-%03d.pcapng" % (sys.argv[3], i), "wb").write(data)
EOF2
counts=" 0:0 1:0 2:0"
for f in "$work"/fuzz-*.pcapng; do
	rc=0
	timeout 20 "$T_DECODE" --quiet "$f" >/dev/null 2>"$f.err" || rc=$?
	case $rc in
	0 | 1 | 2) ;;
	*) t_fail "usmc-decode exit $rc on $f (a crash or hang): $(tail -3 "$f.err")" ;;
	esac
	n=$(echo "$counts" | sed -n "s/.* $rc:\([0-9]*\).*/\1/p")
	counts=$(echo "$counts" | sed "s/ $rc:[0-9]*/ $rc:$((n + 1))/")
	rm -f "$f" "$f.err"
done
t_log "ok   300 randomly damaged captures, no crash (exit status:count$counts)"

# The capture analysis the netns and VM tests use must find the CLC
# handshake whatever the client's port: tshark gives a port that has its
# own dissector (57000 is IRC's) to that dissector unless told to try the
# SMC heuristic first. Move smcr-a's client port 40476 there.
python3 - "$a" "$work/port57000.pcap" <<'EOF3' || t_fail "could not rewrite the client port"
import subprocess, sys
raw = subprocess.run(["editcap", "-F", "pcap", sys.argv[1], "-"], capture_output=True, check=True).stdout
old, new, srv = (40476).to_bytes(2, "big"), (57000).to_bytes(2, "big"), (5000).to_bytes(2, "big")
out = raw.replace(old + srv, new + srv).replace(srv + old, srv + new)
sys.exit(0 if out != raw and open(sys.argv[2], "wb").write(out) else 1)
EOF3
clc=$(usmc_lab_analyze "$work/port57000.pcap" 5000 4791 | sed -n 's/^clc_\(proposal\|accept\|confirm\)=//p' | tr '\n' ' ')
[ "$clc" = "1 1 1 " ] || t_fail "client port 57000: usmc_lab_analyze found CLC proposal/accept/confirm '$clc', expected 1 1 1"
t_log "ok   CLC handshake decoded with the client on port 57000 (IRC's)"

# Unreadable input: exit 2 with a message, no crash.
head -c 100 "$a" >"$work/short.pcapng"
rc=0
"$T_DECODE" "$work/short.pcapng" >/dev/null 2>"$work/short.err" || rc=$?
[ $rc = 2 ] || t_fail "a truncated file gave exit $rc, expected 2"
rc=0
"$T_DECODE" /nonexistent.pcap >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || t_fail "a missing file gave exit $rc, expected 2"
t_log "PASS"
