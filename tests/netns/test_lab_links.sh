#!/usr/bin/env bash
# usmc-lab with two links: up --links 2 (eth1 on the next /24, USMC_PNET
# for exec), status, and each named network fault on link 2 applied and
# cleared: the iptables or tc state it leaves, and what it does to traffic
# on link 2 (RoCEv2-port UDP counted at the receiver, a TCP transfer
# timed) while link 1 carries on. Then the usage errors, and down.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd iptables tc python3 timeout
t_lab_up 2
LAB=$USMC_SRC/netns/usmc-lab
lab() { "$LAB" --name "$t_lab" "$@"; }
RPORT=$(usmc_lab_roce_port)

# udp_count DST N: N datagrams from h2 to DST:RPORT, how many h1 received.
# The receiver stops at N, or 0.5 s after the sender is done (it sees the
# file the shell makes then): a gap in the sending (a loaded machine that
# leaves the sender off the CPU) does not end the count early.
udp_count() {
	local dst=$1 n=$2 out=$t_work/udp.$RANDOM
	t_exec h1 timeout 30 python3 - "$dst" "$RPORT" "$n" "$out.done" >"$out" <<'PY' &
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
want, done = int(sys.argv[3]), sys.argv[4]
print("ready", flush=True)
n, end = 0, None
s.settimeout(0.1)
while n < want and (end is None or time.time() < end):
    try:
        s.recv(2048)
        n += 1
    except socket.timeout:
        pass
    if end is None and os.path.exists(done):
        end = time.time() + 0.5
print(n, flush=True)
PY
	local rpid=$!
	busywait 5000 grep -q ready "$out" || t_fail "the UDP receiver did not start in h1"
	t_exec h2 timeout 10 python3 - "$dst" "$RPORT" "$n" <<'PY' || t_fail "the UDP sender failed"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b"x" * 64, (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.001)
PY
	: >"$out.done"
	wait "$rpid"
	tail -1 "$out"
}

# --- up, status, exec -------------------------------------------------------
st=$(lab status) || t_fail "status failed"
for want in "2 link(s)" "USMC_PNET=USMCLAB=eth0,eth1" "h1 eth1 UP $T_H1_L2/24" "h2 eth1 UP $T_H2_L2/24" \
	"h1 eth0 UP $T_H1/24"; do
	grep -qF "$want" <<<"$st" || t_fail "status lacks '$want': $st"
done
[ "$T_H1_L2" = 10.77.1.1 ] || t_fail "link 2 of subnet 10.77.0 is at $T_H1_L2, not 10.77.1.1"
[ "$(lab exec h1 printenv USMC_PNET)" = "USMCLAB=eth0,eth1" ] || t_fail "exec does not set USMC_PNET"
[ "$(USMC_PNET=X=eth9 lab exec h1 printenv USMC_PNET)" = "X=eth9" ] || t_fail "exec overrides the caller's USMC_PNET"
n=$(udp_count "$T_H1_L2" 100)
[ "$n" = 100 ] || t_fail "link 2 without a fault delivered $n of 100 datagrams"
t_log "ok up --links 2: eth1 at $T_H1_L2/$T_H2_L2, status shows both links, exec sets USMC_PNET; link 2 delivers 100/100"

# --- drop -------------------------------------------------------------------
lab fault link 2 drop 100 >/dev/null || t_fail "fault link 2 drop 100"
for h in h1 h2; do
	r=$(usmc_lab_link_drop_rules "$t_lab" "$h" 2)
	grep -q -- "--dport $RPORT -j DROP" <<<"$r" || t_fail "drop 100: $h's USMC_LINK2 chain is '$r'"
	t_exec "$h" iptables -w -S INPUT | grep -q -- "-i eth1 -j USMC_LINK2" || t_fail "drop 100: no jump from INPUT in $h"
done
n=$(udp_count "$T_H1_L2" 100)
[ "$n" = 0 ] || t_fail "drop 100: $n of 100 datagrams crossed link 2"
n=$(udp_count "$T_H1" 100)
[ "$n" = 100 ] || t_fail "drop 100 on link 2: link 1 delivered $n of 100"
lab status | grep -q "h2 eth1 UP $T_H2_L2/24, drop 100%" || t_fail "status does not show the drop"
t_log "ok drop 100: 0/100 on link 2, 100/100 on link 1"

lab fault link 2 drop 50 >/dev/null || t_fail "fault link 2 drop 50"
r=$(usmc_lab_link_drop_rules "$t_lab" h1 2)
grep -q -- "--probability 0.5" <<<"$r" || t_fail "drop 50: h1's rule is '$r'"
[ "$(usmc_lab_link_drop_rules "$t_lab" h1 2 | grep -c .)" = 1 ] || t_fail "drop 50 did not replace drop 100"
n=$(udp_count "$T_H1_L2" 400)
# binomial(400, 0.5): mean 200, sd 10
((n >= 130 && n <= 270)) || t_fail "drop 50: $n of 400 datagrams crossed link 2"
t_log "ok drop 50: $n/400 on link 2"

# --- rate -------------------------------------------------------------------
xfer() { # DST: seconds to move 1 MiB over TCP from h2 to DST
	local dst=$1
	t_exec h1 timeout 20 socat -u TCP-LISTEN:7400,bind="$dst",reuseaddr OPEN:/dev/null &
	local spid=$!
	busywait 5000 t_listening h1 7400 || t_fail "socat did not listen"
	local t0 t1
	t0=$(date +%s%N)
	head -c 1048576 /dev/zero | t_exec h2 timeout 20 socat -u - TCP:"$dst":7400 || t_fail "TCP transfer to $dst failed"
	wait "$spid"
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
t_need_cmd socat
lab fault link 2 rate 4mbit >/dev/null || t_fail "fault link 2 rate 4mbit"
for h in h1 h2; do
	t_exec "$h" tc qdisc show dev eth1 root | grep -q "^qdisc tbf .*rate 4Mbit" ||
		t_fail "rate: no tbf 4Mbit on $h's eth1: $(t_exec "$h" tc qdisc show dev eth1)"
done
s2=$(xfer "$T_H1_L2")
s1=$(xfer "$T_H1")
# 1 MiB at 4 Mbit/s is 2.1 s
awk -v s="$s2" 'BEGIN { exit !(s >= 1.5) }' || t_fail "rate 4mbit: 1 MiB crossed link 2 in $s2 s"
awk -v s="$s1" 'BEGIN { exit !(s < 1.5) }' || t_fail "rate on link 2: 1 MiB over link 1 took $s1 s"
t_log "ok rate 4mbit: 1 MiB in $s2 s on link 2, $s1 s on link 1"

# --- down and up ------------------------------------------------------------
lab fault link 2 down h2 >/dev/null || t_fail "fault link 2 down h2"
t_exec h2 ip -o link show eth1 | grep -q 'state DOWN' || t_fail "down h2: h2's eth1 is not down"
t_exec h1 ip -o link show eth1 | grep -q 'NO-CARRIER' || t_fail "down h2: h1's eth1 still has a carrier"
t_exec h1 ip -o link show eth0 | grep -q 'LOWER_UP' || t_fail "down h2 on link 2 took link 1 down"
lab fault link 2 up >/dev/null || t_fail "fault link 2 up"
lab fault link 2 down >/dev/null || t_fail "fault link 2 down"
for h in h1 h2; do
	t_exec "$h" ip -o link show eth1 | grep -q 'state DOWN' || t_fail "down: $h's eth1 is not down"
done
lab status | grep -q "h1 eth1 DOWN $T_H1_L2/24 (admin down), rate 4Mbit, drop 50%" ||
	t_fail "status: $(lab status)"
lab fault link 2 up >/dev/null || t_fail "fault link 2 up"
t_log "ok down h2 (h1 loses the carrier), down (both), up"

# --- clear ------------------------------------------------------------------
lab fault link 2 down >/dev/null || t_fail "fault link 2 down"
lab fault link 2 clear >/dev/null || t_fail "fault link 2 clear"
for h in h1 h2; do
	t_exec "$h" iptables -w -S | grep -q USMC_LINK2 && t_fail "clear left the USMC_LINK2 chain in $h"
	t_exec "$h" tc qdisc show dev eth1 root | grep -q tbf && t_fail "clear left the tbf on $h"
	t_exec "$h" ip -o link show eth1 | grep -q LOWER_UP || t_fail "clear did not set $h's eth1 up"
done
n=$(udp_count "$T_H1_L2" 100)
[ "$n" = 100 ] || t_fail "after clear, link 2 delivered $n of 100 datagrams"
lab fault link 2 clear >/dev/null || t_fail "a second clear failed"
t_log "ok clear: no chain, no tbf, link up, 100/100 again; clear again is harmless"

# --- usage errors -----------------------------------------------------------
expect() { # RC CMD... : exit status RC and a message on stderr
	local want=$1 rc=0
	shift
	lab "$@" >/dev/null 2>"$t_work/err" || rc=$?
	[ "$rc" = "$want" ] || t_fail "'$*' exited $rc, not $want"
	[ -s "$t_work/err" ] || t_fail "'$*' said nothing"
}
expect 1 fault link 3 up
expect 2 fault link 2 drop 0
expect 2 fault link 2 drop 101
expect 2 fault link 2 drop 5 7
expect 2 fault link 2 rate fast
expect 2 fault link 2 bounce
expect 2 fault link 2 down h3
expect 2 fault link x up
expect 2 fault link 2 up now
expect 2 --links 5 up
grep -q "no room" <(lab --subnet 10.77.255 --links 2 up 2>&1) || t_fail "--subnet 10.77.255 --links 2 not refused"
t_log "ok usage errors"

# --- down -------------------------------------------------------------------
"$LAB" --name "$t_lab" down || t_fail "down"
ip netns list | grep -q "usmc-$t_lab-" && t_fail "down left the namespaces"
[ -e "$USMC_LAB_RUNDIR/$t_lab" ] && t_fail "down left $USMC_LAB_RUNDIR/$t_lab"
t_log "ok down: both hosts and their two links gone"
t_log PASS
