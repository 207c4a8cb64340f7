#!/bin/bash
# Short-lived connections (docs/rules.md, "Short-lived connections"), end
# to end with Debian's redis: redis-benchmark -k 0 -c 1 (connect, one GET,
# close, one after the other) under usmc-run against a usmc redis-server in
# the lab.
#  1. USMC_SHORTCONN=4,...: the client's first connections (its CONFIG
#     fetch and the first GETs) run SMC-R until 4 have closed, then it
#     holds the server to TCP: 4 or 5 SMC-R connections, the rest
#     short_tcp, none a fallback; the server sees the held ones as peers
#     without the SMC option.
#     Each held connection logs one info line with its addresses.
#  2. USMC_SHORTCONN=off: every connection SMC-R, none held.
#  3. a client whose connections are not short (-k 1: 50 requests on one
#     connection, -d 4096, so each moves more than BYTES) is never held.
# Every run: every GET reached the server (INFO commandstats) and none
# failed; the clients' values are 'x' * -d, which redis-benchmark checks
# only by length, so run 3's SET then GET carries 4 KiB values over SMC-R.
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss redis-server redis-cli redis-benchmark awk
t_lab_up
A_PORTS=6379
a_where lab
N=40
: >"$t_work/plain"

calls() { # CMD: calls of CMD so far (plain redis-cli, counted in $t_work/plain)
	echo >>"$t_work/plain"
	t_exec "$A_CHOST" timeout 30 redis-cli -h "$A_SADDR" -p 6379 INFO commandstats | tr -d '\r' |
		sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"
}

stat_of() { # FILE KEY: the sum of KEY= over FILE's stats lines
	awk -v k="$2" '/stats:/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == k) s += kv[2] } } END { printf "%d", s }' "$1" 2>/dev/null
}

# smcd_ok TAG FILE: over shm (USMC_SHM=1) every SMC connection in FILE's
# stats lines was SMC-D
smcd_ok() {
	[ "$USMC_SHM" != 1 ] || [ "$(stat_of "$2" smcd)" = "$(stat_of "$2" smcr)" ] ||
		a_fail "$1: smcd=$(stat_of "$2" smcd), want smcr=$(stat_of "$2" smcr) (USMC_SHM=1)"
}

# run TAG SHORTCONN ARGS...: redis-benchmark ARGS under usmc-run with
# USMC_SHORTCONN, checked to have sent its N GETs with no error
run() {
	local tag=$1 sc=$2 before after rc=0
	shift 2
	before=$(calls get)
	USMC_SHORTCONN=$sc USMC_LOG_LEVEL=info USMC_LOG_FILE="$t_work/$tag.log" \
		a_client "$tag" redis-benchmark -h "$A_SADDR" -p 6379 -c 1 -n "$N" --csv "$@" || rc=$?
	after=$(calls get)
	[ $rc = 0 ] || { a_fail "$tag: redis-benchmark exit $rc"; a_show "$tag"; return 1; }
	grep -qiE 'error|refused|reset|timeout' "$t_work/$tag.out" "$t_work/$tag.err" &&
		a_fail "$tag: errors: $(grep -iE 'error|refused|reset|timeout' "$t_work/$tag.out" "$t_work/$tag.err" | head -3)"
	[ $((after - ${before:-0})) -ge "$N" ] || a_fail "$tag: server counted $((after - ${before:-0})) GETs, want >= $N"
	return 0
}

# the thresholds leave timing out of it: 60 s is no connection's life here
USMC_DEBUG=1 a_server server 6379 redis-server --port 6379 --bind "$A_SADDR" --protected-mode no \
	--save '' --appendonly no || t_fail "redis-server did not start"

if run held 4,65536,60000,600000 -t get -k 0; then
	s=$(stat_of "$t_work/held.stats" smcr)
	h=$(stat_of "$t_work/held.stats" short_tcp)
	f=$(stat_of "$t_work/held.stats" fallback)
	# redis-benchmark opens a client's next connection before it closes
	# the last: the 4th close comes after the 5th connect
	if [ "$s" -ge 4 ] && [ "$s" -le 5 ] && [ $((s + h)) = $((N + 1)) ] && [ "$f" = 0 ]; then
		t_log "ok held: smcr=$s short_tcp=$h fallback=$f"
	else
		a_fail "held: want smcr 4 or 5, smcr + short_tcp = $((N + 1)), fallback=0: $(grep stats: "$t_work/held.stats")"
	fi
	smcd_ok held "$t_work/held.stats"
	# each held connection says so once, at info, with its addresses
	n=$(grep -cE " info: fd [0-9]+: TCP [0-9.]+:[0-9]+ -> peer $A_SADDR:6379: its last 4 SMC-R connections were short \(<= 65536 B, <= 60000 ms\): TCP for [0-9]+ ms more$" "$t_work/held.log")
	[ "$n" = "$h" ] && t_log "ok held: $n info lines: $(grep -m1 ' TCP .* -> peer ' "$t_work/held.log")" ||
		a_fail "held: $n held lines in the client's log, want $h: $(grep -m3 ' TCP ' "$t_work/held.log")"
fi

if run off off -t get -k 0; then
	s=$(stat_of "$t_work/off.stats" smcr)
	h=$(stat_of "$t_work/off.stats" short_tcp)
	if [ "$s" -ge $((N + 1)) ] && [ "$h" = 0 ]; then
		t_log "ok off: smcr=$s short_tcp=$h"
	else
		a_fail "off: want smcr >= $((N + 1)), short_tcp=0: $(grep stats: "$t_work/off.stats")"
	fi
	smcd_ok off "$t_work/off.stats"
fi

# one connection per test (-k 1, -c 1) moving N x 4 KiB: not short; the
# CONFIG fetch before is, but one short connection holds nothing (N=4)
if run long 4,65536,60000,600000 -t set,get -k 1 -d 4096; then
	s=$(stat_of "$t_work/long.stats" smcr)
	h=$(stat_of "$t_work/long.stats" short_tcp)
	if [ "$s" -ge 2 ] && [ "$h" = 0 ]; then
		t_log "ok long: smcr=$s short_tcp=$h"
	else
		a_fail "long: want smcr >= 2, short_tcp=0: $(grep stats: "$t_work/long.stats")"
	fi
	smcd_ok long "$t_work/long.stats"
fi

h_held=$(stat_of "$t_work/held.stats" short_tcp)
s_all=$(cat "$t_work"/held.stats "$t_work"/off.stats "$t_work"/long.stats 2>/dev/null |
	awk '/stats:/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == "smcr" || kv[1] == "short_tcp") s += kv[2] } } END { printf "%d", s }')
a_stop $a_spid TERM || t_log "redis-server exit status $?"
# the server: every connection SMC-R or, the held ones, plain TCP (their
# SYN had no SMC option); the plain control clients are TCP too
s=$(stat_of "$t_work/server.stats" smcr)
f=$(stat_of "$t_work/server.stats" fallback)
x=$(stat_of "$t_work/server.stats" failed)
np=$(wc -l <"$t_work/plain")
[ "$x" = 0 ] || a_fail "server: $x failed handshakes: $(grep stats: "$t_work/server.stats")"
[ "$f" = $((h_held + np)) ] ||
	a_fail "server: $f fallbacks, want the client's $h_held held connections + $np plain control clients"
[ "$s" = $((s_all - h_held)) ] ||
	a_fail "server: smcr=$s, want the clients' $s_all connections but the $h_held held"
smcd_ok server "$t_work/server.stats"
t_log "ok server: smcr=$s fallback=$f ($h_held held, $np plain control clients)"
t_no_reentry "$t_work"/*.stats || a_fail "the runtime came back through the preload's interposers"
a_end
