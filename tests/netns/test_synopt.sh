#!/usr/bin/env bash
# SMC SYN-option negotiation (runtime/usmc_synopt.c + runtime/bpf/) between
# two network namespaces joined by veth, with a tcpdump capture read back
# by tshark. A process shares the copy of the BPF program another one
# attached to the cgroup, or attaches its own.
#  1. marked client -> marked listener: the SYN and the SYN-ACK carry
#     fe 06 e2 d4 c3 d9 (ExID 0xe2d4); both sides' peer_has_smc say 1
#     (IPv4 to an address, IPv6 and IPv4 to a dual-stack :: listener);
#  2. marked client -> plain server (no BPF in its process): SYN has it,
#     SYN-ACK not; the client sees 0;
#  3. plain client (no BPF) -> marked listener: neither has it; server 0;
#  4. unmarked sockets in processes that run the program: an unmarked
#     client socket to a marked listener (no option either way, server 0,
#     the client socket unknown), a marked client to an unmarked listener
#     to a listener marked then forgotten, and to an unmarked listener on
#     the port of a marked one closed without forget (SYN-ACK without it,
#     client 0, server socket unknown);
#  5. SYN cookies forced on the server: no option in the SYN-ACK, both 0;
#  6. 70 processes at once (the kernel takes 64 programs per cgroup) all
#     load by sharing one copy, which outlives the process that attached
#     it: a server and client started after its owner ended negotiate.
# Skips (77) only when this machine cannot load it: not root, no cgroup v2,
# kernel older than 5.15, or usmc built without clang/libbpf.
set -u
src=${USMC_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${USMC_BUILD:-$src/build}
probe=$build/tests/netns/synopt_probe
name=test_synopt
log() { echo "$name: $*"; }
skip() {
	echo "$name: SKIP: $*"
	exit 77
}
fail() {
	echo "$name: FAIL: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, loading eBPF)"
for c in ip tcpdump tshark timeout; do
	command -v $c >/dev/null || skip "$c is not installed (ci/setup.sh installs it)"
done
[ -x "$probe" ] || fail "$probe is not built"
grep -q ' cgroup2 ' /proc/self/mounts || skip "no cgroup v2 mount (sock_ops programs attach to a cgroup v2 directory)"
read -r kmaj kmin _ < <(uname -r | tr '.-' '  ')
((kmaj > 5 || (kmaj == 5 && kmin >= 15))) || skip "kernel $(uname -r) is older than 5.15 (BPF TCP header options, netns cookie in sock_ops)"

work=$(mktemp -d /tmp/usmc-synopt.XXXXXX) && chmod 755 "$work" || fail "mktemp"
nsa=usmc-so-$$-a nsb=usmc-so-$$-b
va=uso$$a vb=uso$$b
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	ip netns del "$nsa" 2>/dev/null
	ip netns del "$nsb" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The library's own verdict: the build has no BPF (skip) or it failed to
# load on a capable machine (fail, with the reason).
out=$("$probe" probe 2>&1)
rc=$?
if [ $rc != 0 ]; then
	case $out in
	*"built without eBPF"*) skip "$out" ;;
	esac
	fail "the sock_ops program did not load: $out"
fi
log "$(echo "$out" | head -1)"

ip netns add "$nsa" && ip netns add "$nsb" || fail "cannot create namespaces"
ip link add "$va" type veth peer name "$vb" || fail "cannot create veth"
ip link set "$va" netns "$nsa" && ip link set "$vb" netns "$nsb" || fail "veth move"
ip -n "$nsa" addr add 10.78.0.1/24 dev "$va"
ip -n "$nsb" addr add 10.78.0.2/24 dev "$vb"
ip -n "$nsa" addr add fd00:78::1/64 dev "$va" nodad
ip -n "$nsb" addr add fd00:78::2/64 dev "$vb" nodad
for n in "$nsa" "$nsb"; do ip -n "$n" link set lo up; done
ip -n "$nsa" link set "$va" up && ip -n "$nsb" link set "$vb" up || fail "link up"

cap=$work/synopt.pcap
# --immediate-mode makes libpcap use one ring frame per packet, each as
# large as the snapshot length: with tcpdump's 262144-byte default the
# 2 MB default ring holds 7 packets, and a busy machine drops the rest.
# Headers are all the test reads, so a short snapshot and a 16 MB ring.
ip netns exec "$nsa" tcpdump -Z root -i "$va" --immediate-mode -U -n -s 200 -B 16384 \
	-w "$cap" tcp >"$work/tcpdump.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	grep -q "listening on" "$work/tcpdump.log" && break
	sleep 0.1
done
grep -q "listening on" "$work/tcpdump.log" || fail "tcpdump did not start: $(cat "$work/tcpdump.log")"

# server PROCESS-NAME [--no-bpf] SPEC...: start it in nsb, wait for "ready".
server() {
	local tag=$1
	shift
	timeout 60 "$probe" --netns "$nsb" "$@" >"$work/$tag" 2>&1 &
	pids+=($!)
	eval "pid_$tag=$!"
	for _ in $(seq 100); do
		grep -q '^ready' "$work/$tag" && return 0
		sleep 0.1
	done
	fail "server $tag did not get ready: $(cat "$work/$tag")"
}
S=10.78.0.2
# Marked server process: specific address, dual-stack wildcard, unmarked
# and forgotten listeners side by side.
server s1 server "$S,7101,mark,1" "::,7102,mark,1" "::,7103,mark,1" \
	"$S,7105,mark,0" "$S,7106,mark,0" "$S,7107,plain,none" "$S,7108,forgot,none" \
	"$S,7110,stale,none"
# Plain server process: no BPF at all.
server s2 --no-bpf server "$S,7104,plain,-"

timeout 60 "$probe" --netns "$nsa" client "$S,7101,mark,1" "fd00:78::2,7102,mark,1" \
	"$S,7103,mark,1" "$S,7104,mark,0" "$S,7106,plain,none" "$S,7107,mark,0" \
	"$S,7108,mark,0" "$S,7110,mark,0" >"$work/c1" 2>&1 || fail "client c1: $(cat "$work/c1")"
timeout 60 "$probe" --netns "$nsa" --no-bpf client "$S,7105,plain,-" >"$work/c2" 2>&1 ||
	fail "client c2: $(cat "$work/c2")"
for t in s1 s2; do
	eval "wait \$pid_$t" || fail "server $t: $(cat "$work/$t")"
done
# 5. SYN cookies on the server (every SYN answered with a cookie): Linux
#    sends no SMC option then, and neither may usmc; both sides see 0.
ip netns exec "$nsb" sysctl -qw net.ipv4.tcp_syncookies=2 || fail "cannot force SYN cookies"
server s3 server "$S,7109,mark,0"
timeout 60 "$probe" --netns "$nsa" client "$S,7109,mark,0" >"$work/c3" 2>&1 ||
	fail "client c3: $(cat "$work/c3")"
wait "$pid_s3" || fail "server s3: $(cat "$work/s3")"
cat "$work/s1" "$work/c1" "$work/s3" "$work/c3" | grep peer_has_smc | sed "s/^/$name: /"
# tcpdump drops what it has not read yet when it is stopped: on a busy
# machine wait until the SYN and the SYN-ACK of every port are in the file
# (a count alone can be met early by a retransmitted SYN).
all_syns_captured() {
	local seen
	seen=$(tshark -r "$cap" -Y 'tcp.flags.syn==1' -T fields \
		-e tcp.flags.ack -e tcp.srcport -e tcp.dstport 2>/dev/null |
		awk '$1 == "0" || $1 == "False" { print "syn", $3 } $1 == "1" || $1 == "True" { print "synack", $2 }' | sort -u)
	for port in $(seq 7101 7110); do
		grep -qx "syn $port" <<<"$seen" || return 1
		grep -qx "synack $port" <<<"$seen" || return 1
	done
}
captured=0
for _ in $(seq 100); do
	all_syns_captured && captured=1 && break
	sleep 0.2
done
sleep 0.2
kill -INT "${pids[0]}"
wait "${pids[0]}"
drops=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$work/tcpdump.log")
[ "${drops:-0}" = 0 ] || fail "tcpdump dropped $drops packets, the capture is incomplete: $(cat "$work/tcpdump.log")"
[ $captured = 1 ] || fail "after 20 s the capture still lacks a SYN or SYN-ACK of ports 7101-7110"

# Every TCP option kind and the raw option bytes of the one SYN (or
# SYN-ACK) of the connection to PORT.
opts() { # PORT syn|synack
	local f
	if [ "$2" = syn ]; then
		f="tcp.flags.syn==1 && tcp.flags.ack==0 && tcp.dstport==$1"
	else
		f="tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.srcport==$1"
	fi
	tshark -r "$cap" -Y "$f" -T fields -e tcp.option_kind -e tcp.options \
		-e tcp.options.experimental.exid 2>/dev/null
}
# expect PORT syn|synack yes|no
expect() {
	local o n kinds raw exid
	o=$(opts "$1" "$2")
	n=$(echo "$o" | grep -c .)
	[ "$n" = 1 ] || fail "port $1: expected one $2, tshark shows $n: $o"
	IFS=$'\t' read -r kinds raw exid <<<"$o"
	if [ "$3" = yes ]; then
		[ "$exid" = 0xe2d4 ] || fail "port $1 $2: ExID '$exid', expected 0xe2d4 (options $raw)"
		[ "$(tr ',' '\n' <<<"$kinds" | grep -cx 254)" = 1 ] ||
			fail "port $1 $2: option kinds $kinds, expected exactly one 254"
		[[ $raw == *fe06e2d4c3d9* ]] || fail "port $1 $2: options $raw lack fe06e2d4c3d9"
	else
		[ -z "$exid" ] && [[ ",$kinds," != *,254,* ]] && [[ $raw != *e2d4c3d9* ]] ||
			fail "port $1 $2: carries an SMC option: $raw"
	fi
	log "ok port $1 $2 $([ "$3" = yes ] && echo "has" || echo "lacks") the option: $raw"
}
# Cross-check with a display filter on the field the brief names.
nexp=$(tshark -r "$cap" -Y 'tcp.options.experimental.exid == 0xe2d4' -T fields -e frame.number 2>/dev/null | grep -c .)

expect 7101 syn yes
expect 7101 synack yes
expect 7102 syn yes
expect 7102 synack yes
expect 7103 syn yes
expect 7103 synack yes
expect 7104 syn yes
expect 7104 synack no
expect 7105 syn no
expect 7105 synack no
expect 7106 syn no
expect 7106 synack no
expect 7107 syn yes
expect 7107 synack no
expect 7108 syn yes
expect 7108 synack no
expect 7109 syn yes
expect 7109 synack no
expect 7110 syn yes
expect 7110 synack no
# SYNs of 7101-7104 and 7107-7110, SYN-ACKs of 7101-7103; nothing else.
[ "$nexp" = 11 ] || fail "tcp.options.experimental.exid == 0xe2d4 matches $nexp frames, expected 11"
log "ok: tcp.options.experimental.exid == 0xe2d4 matches exactly the 11 SYN/SYN-ACKs that should carry it"

# 6. One copy for many processes: the kernel refuses a 65th sock_ops
#    program on one cgroup (-E2BIG), so 70 processes holding it at once
#    all load only by sharing. Then every process that attached its own
#    copy ends; the copies the others share stay attached (their links
#    are referenced), and a marked server and client started after still
#    negotiate the option both ways.
ip netns exec "$nsb" sysctl -qw net.ipv4.tcp_syncookies=1 || fail "cannot put SYN cookies back"
mkfifo "$work/holdfifo" || fail "mkfifo"
exec 3<>"$work/holdfifo"
holders=()
for i in $(seq 70); do
	timeout 60 "$probe" hold <"$work/holdfifo" >"$work/holder.$i" 2>&1 3>&- &
	holders+=($!)
done
for _ in $(seq 300); do
	[ "$(cat "$work"/holder.* | grep -c -e '^holding' -e '^usmc_synopt_init')" = 70 ] && break
	sleep 0.1
done
notheld=$(grep -L '^holding' "$work"/holder.* | head -3)
[ -z "$notheld" ] || fail "not every one of 70 processes loaded the program: $(cat $notheld | head -3)"
own=$(grep -l '(own copy)' "$work"/holder.* | wc -l)
shared=$(grep -l '(shared copy)' "$work"/holder.* | wc -l)
[ $((own + shared)) = 70 ] && [ "$own" -lt 64 ] ||
	fail "70 holders: $own with their own copy, $shared sharing"
log "ok: 70 processes hold the program at once, $own with their own copy, $shared sharing one"
for i in $(seq 70); do
	grep -q '(own copy)' "$work/holder.$i" && kill "${holders[$((i - 1))]}"
done
sleep 0.2
server s4 server "$S,7111,mark,1"
timeout 60 "$probe" --netns "$nsa" client "$S,7111,mark,1" >"$work/c4" 2>&1 ||
	fail "client c4, after the owners ended: $(cat "$work/c4")"
wait "$pid_s4" || fail "server s4: $(cat "$work/s4")"
grep -q '(shared copy)' "$work/s4" && grep -q '(shared copy)' "$work/c4" ||
	fail "server s4 and client c4 did not share the holders' copy: $(head -1 "$work/s4") / $(head -1 "$work/c4")"
log "ok: with every owner ended, a server and a client sharing the remaining copy both see the option (port 7111)"
exec 3>&-
for p in "${holders[@]}"; do wait "$p" 2>/dev/null; done

# The bytes are the ones the Linux 6.1 kernel sent (its SYN and SYN-ACK in
# the SMC-R session capture): same 6-byte option, NOP padding aside.
kcap=$src/tests/conformance/kernel-6.1/smcr-a-session.pcapng
[ -r "$kcap" ] || fail "the kernel capture $kcap is missing (it is in the repository)"
k=$(tshark -r "$kcap" -Y 'tcp.flags.syn==1' -T fields -e tcp.options 2>/dev/null)
[ "$(grep -c 0101fe06e2d4c3d9 <<<"$k")" = 2 ] || fail "the kernel capture does not show its option as expected: $k"
log "ok: the kernel's SYN and SYN-ACK carry the same fe06e2d4c3d9 (as 0101fe06e2d4c3d9)"
log "PASS"
