#!/usr/bin/env bash
# The namespace-wide switch (tools/usmc-netns): Debian's redis-server and
# redis-benchmark started with a plain "ip netns exec" (no usmc-run) run
# over SMC-R once the lab hosts' switches are on, with the SMC TCP option
# on SYN and SYN-ACK; a switched client to an unswitched server falls back
# on the option (no CLC byte) and works; switching off restores /etc/netns,
# /etc/ld.so.preload and /etc/usmc.conf exactly (file list, modes and
# contents), other files of a namespace's /etc/netns directory included.
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss redis-server redis-cli redis-benchmark sha256sum tshark tcpdump
T_NETNS=$USMC_BUILD/tools/usmc-netns
[ -x "$T_NETNS" ] || t_fail "usmc-netns is not in the build ($T_NETNS)"
t_lab_up
NS1=$(usmc_lab_ns "$t_lab" h1)
NS2=$(usmc_lab_ns "$t_lab" h2)
a_where lab
# With the ASan build's library in ld.so.preload, every program started in
# a switched namespace (ss, tcpdump, env...) needs the ASan runtime first.
[ -z "$T_ASAN" ] || export LD_PRELOAD=$T_ASAN

# What the switch may touch, as a list: path, type, mode, sha256.
snap() {
	local p
	for p in /etc/netns /etc/ld.so.preload /etc/usmc.conf /var/lib/usmc; do
		[ -e "$p" ] || {
			echo "$p absent"
			continue
		}
		find "$p" -printf '%p %y %m\n' | sort | while read -r f y m; do
			if [ "$y" = f ]; then
				echo "$f $y $m $(sha256sum <"$f" | cut -d' ' -f1)"
			else
				echo "$f $y $m"
			fi
		done
	done
}

# h2's /etc/netns directory exists beforehand, with a file of its own
# that the switch must leave alone.
had_netns=0
[ -d /etc/netns ] && had_netns=1
cleanup() {
	local rc=$?
	"$T_NETNS" "$NS1" off >/dev/null 2>&1
	"$T_NETNS" "$NS2" off >/dev/null 2>&1
	rm -f "/etc/netns/$NS2/hosts" "/etc/netns/$NS2/usmc.conf.test"
	rmdir "/etc/netns/$NS2" 2>/dev/null
	[ $had_netns = 1 ] || rmdir /etc/netns 2>/dev/null
	t_cleanup $rc
}
trap cleanup EXIT
mkdir -p "/etc/netns/$NS2"
{
	cat /etc/hosts
	echo "$T_H1 redis-h1"
} >"/etc/netns/$NS2/hosts"
snap >"$t_work/before"

srv() { # TAG: redis-server in h1, started as any program would be
	USMC_STATS="$t_work/$1.stats" USMC_DEBUG=1 ip netns exec "$NS1" timeout 300 redis-server --port 6379 --bind "$T_H1" \
		--save "" --appendonly no --protected-mode no --dir "$t_work" \
		>"$t_work/$1.out" 2>"$t_work/$1.err" &
	a_spid=$!
	busywait 15000 t_listening h1 6379 || {
		a_fail "$1: redis-server did not listen: $(tail -3 "$t_work/$1.err")"
		return 1
	}
}
cli() { # TAG CMD...: a program in h2, started as any would be
	local tag=$1
	shift
	USMC_STATS="$t_work/$tag.stats" USMC_DEBUG=1 ip netns exec "$NS2" timeout 120 "$@" \
		>"$t_work/$tag.out" 2>"$t_work/$tag.err"
}

# 0. switch off: nothing of usmc in the programs (no stats line)
srv off-server || t_fail "redis-server would not start"
cli off-ping redis-cli -h "$T_H1" PING || a_fail "PING without the switch failed"
a_stop "$a_spid" TERM || :
[ ! -s "$t_work/off-ping.stats" ] && [ ! -s "$t_work/off-server.stats" ] ||
	a_fail "usmc ran before the switch was on: $(cat "$t_work"/off-*.stats)"

# 1. a file usmc-netns would write exists: refused, nothing changed
echo "tcp" >"/etc/netns/$NS2/usmc.conf"
if "$T_NETNS" "$NS2" on >"$t_work/refuse.out" 2>&1; then
	a_fail "usmc-netns on over an existing usmc.conf succeeded"
fi
rm -f "/etc/netns/$NS2/usmc.conf"
snap | diff "$t_work/before" - >/dev/null || a_fail "a refused 'on' changed files"

# 2. on for both hosts
"$T_NETNS" "$NS1" on >"$t_work/on1.out" 2>&1 || t_fail "usmc-netns on: $(cat "$t_work/on1.out")"
"$T_NETNS" "$NS2" on >"$t_work/on2.out" 2>&1 || t_fail "usmc-netns on: $(cat "$t_work/on2.out")"
"$T_NETNS" "$NS1" status >/dev/null || a_fail "status does not say on"
t_log "switched on: $(cat "$t_work/on1.out")"

srv server || t_fail "redis-server would not start under the switch"
grep -q "SMC TCP option negotiation on" "$t_work/server.err" ||
	a_fail "server: the SMC TCP option did not load: $(grep -m2 usmc "$t_work/server.err")"

# the option on the wire: one PING, captured on h1
usmc_lab_capture_start "$t_lab" h1 "$t_work/ping.pcap" 256 || t_fail "capture failed"
cli ping redis-cli -h "$T_H1" PING || a_fail "PING: $(cat "$t_work/ping.err")"
usmc_lab_capture_stop "$t_lab" h1 >/dev/null
grep -q PONG "$t_work/ping.out" || a_fail "PING: no PONG"
opt() { tshark -r "$t_work/ping.pcap" -n -Y "tcp.port == 6379 && tcp.flags.syn == 1 && tcp.flags.ack == $1 && tcp.options.experimental.exid == 0xe2d4" 2>/dev/null | grep -c .; }
syn=$(opt 0) synack=$(opt 1)
[ "$syn" = 1 ] && [ "$synack" = 1 ] || a_fail "SYN/SYN-ACK with the SMC option: $syn/$synack, want 1/1"
a_smcr "$t_work/ping.stats" 1 || a_fail "redis-cli PING not over SMC-R"

# redis-benchmark, unmodified and started plainly: every connection SMC-R
C=20 N=20000
cli bench redis-benchmark -h "$T_H1" -p 6379 -t set,get,incr,lpush -c $C -n $N --csv ||
	a_fail "redis-benchmark exit $?: $(tail -3 "$t_work/bench.err")"
for t in SET GET INCR LPUSH; do
	grep -q "^\"$t\"" "$t_work/bench.out" || a_fail "no rate for $t: $(head -3 "$t_work/bench.out")"
done
grep -qiE 'error|refused|reset' "$t_work/bench.out" "$t_work/bench.err" &&
	a_fail "errors in redis-benchmark's output: $(grep -iE 'error|refused|reset' "$t_work/bench.out" "$t_work/bench.err" | head -3)"
a_smcr "$t_work/bench.stats" $((4 * C)) && t_log "redis-benchmark: $A_SMCR, $(tr '\n' ' ' <"$t_work/bench.out" | cut -c1-120)" ||
	a_fail "redis-benchmark not all SMC-R"
bench_n=$(sed -n 's/.*stats: smcr=\([0-9]*\).*/\1/p' "$t_work/bench.stats")
a_stop "$a_spid" TERM || :
a_smcr "$t_work/server.stats" $((bench_n + 1)) && t_log "redis-server: $A_SMCR" ||
	a_fail "redis-server not all SMC-R"

# 3. h1 switched off, h2 on: a usmc client offers SMC to a plain server,
#    sees no option in the SYN-ACK and goes on over TCP
"$T_NETNS" "$NS1" off >"$t_work/off1.out" 2>&1 || a_fail "usmc-netns off: $(cat "$t_work/off1.out")"
srv plain-server || t_fail "plain redis-server would not start"
cli fb redis-cli -h "$T_H1" SET k v || a_fail "SET to a plain server failed: $(cat "$t_work/fb.err")"
grep -q OK "$t_work/fb.out" || a_fail "SET to a plain server: no OK"
a_smcr "$t_work/fb.stats" 0 1 || a_fail "redis-cli to a plain server: not one fallback"
grep -q "SYN-ACK had no SMC option" "$t_work/fb.err" || a_fail "fallback reason: $(grep -m2 fallback "$t_work/fb.err")"
a_stop "$a_spid" TERM || :
[ ! -s "$t_work/plain-server.stats" ] || a_fail "usmc ran in h1 after its switch went off"

# 4. off: exactly as before
"$T_NETNS" "$NS2" off >"$t_work/off2.out" 2>&1 || a_fail "usmc-netns off: $(cat "$t_work/off2.out")"
"$T_NETNS" "$NS2" status >/dev/null && a_fail "status still says on"
if ! snap | diff "$t_work/before" - >"$t_work/diff"; then
	a_fail "off did not restore the files: $(cat "$t_work/diff")"
fi
a_end
