#!/bin/bash
# SPDX-License-Identifier: MIT
# An SMC-D handshake made by the core (smcd_clc_gen), put in a TCP stream
# with text2pcap and decoded by tshark's own SMC dissector: an oracle for
# the SMC-D byte layout that shares no code with usmc_clc.c (there is no
# SMC-D capture to compare with). Exits 77 without tshark/text2pcap.
set -u
gen=$1
command -v tshark >/dev/null && command -v text2pcap >/dev/null ||
	{ echo "SKIP: no tshark/text2pcap"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
timeout 20 "$gen" >"$dir/in.txt" 2>"$dir/vals" || { cat "$dir/vals"; exit 1; }
stok=$(awk '/server_token/ {print $2}' "$dir/vals")
ctok=$(awk '/client_token/ {print $2}' "$dir/vals")
timeout 20 text2pcap -q -D -T 40000,12345 -4 10.0.0.1,10.0.0.2 \
	"$dir/in.txt" "$dir/smcd.pcap" || exit 1
timeout 60 tshark -r "$dir/smcd.pcap" -V >"$dir/v.txt" 2>&1 || exit 1
fail=0
# expect FRAME LINE: a line of tshark's decode of frame FRAME (1 Proposal,
# 2 Accept, 3 Confirm), compared whole after leading blanks
expect() {
	if ! awk -v f="$1" '/^Frame [0-9]+:/ {n = $2 + 0} n == f' "$dir/v.txt" |
		sed 's/^ *//' | grep -qxF -- "$2"; then
		echo "frame $1: no line '$2'"
		fail=1
	fi
}
expect 1 "CLC Message: Proposal (1)"
expect 1 "0010 .... = SMC Version: 2"
expect 1 ".... 01.. = SMC(v2) Type: SMC-D (1)"
expect 1 ".... ..10 = SMC(v1) Type: NONE (2)"
expect 1 "ISMv2 GID Count: 2"
expect 1 "0001 .... = SMC Version Release Number: 1"
expect 1 "SMC-Dv2 Extension Offset: 0x0040"
expect 1 "ISM GID: 0x1111222233334444"
expect 1 "ISM GID: 0xaaaa0000aaaa0001"
expect 1 "ISMv2 CHID: 0xffff"
expect 2 "CLC Message: Accept (2)"
expect 2 "SMC Length: 130"
expect 2 ".... 1... = First Contact: True"
expect 2 ".... ..01 = SMC Type: SMC-D (1)"
expect 2 "Sender (Server) ISM GID: 0x1111222233334444"
expect 2 "DMB Token: $stok"
expect 2 "DMBE Connection Index: 0"
expect 2 "0010 .... = Server DMBE Buffers Size (Compressed Notation): 2 (Size: 64k)"
expect 2 "ISMv2 CHID: 0xffff"
expect 2 "Negotiated EID: USMC                            "
# tshark 4.0 names gid_ext's bytes Reserved; later ones decode them
expect 2 "Reserved: bbbb0000bbbb0002"
expect 2 "0010 .... = OS Type: Linux (2)"
expect 2 ".... 0001 = SMC Version Release Number: 1"
expect 2 "Peer Host Name: usmc                            "
expect 3 "CLC Message: Confirm (3)"
expect 3 ".... ..01 = SMC Type: SMC-D (1)"
expect 3 "Sender (Client) ISM GID: 0x1111222233334444"
expect 3 "DMB Token: $ctok"
expect 3 "Reserved: aaaa0000aaaa0001"
expect 3 "Peer Host Name: usmc                            "
if grep -qiE "malformed|expert info" "$dir/v.txt"; then
	echo "tshark reports a malformed or suspicious frame:"
	grep -iE -A3 "malformed|expert info" "$dir/v.txt"
	fail=1
fi
[ "$fail" = 0 ] && echo "tshark decodes the SMC-D handshake as the core made it"
exit $fail
