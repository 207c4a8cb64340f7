#!/usr/bin/env bash
# Fork-per-connection servers over SMC-R (inetd, sshd and PostgreSQL work
# this way): `socat TCP-LISTEN,fork EXEC:cat` under usmc-run in h1. The
# parent accepts and forks; the child serves (and itself forks cat first);
# the parent closes its copy. The child, the process that uses the
# connection, must own it: every child says smcr=1, the parent smcr=0
# (and every process preload_reentries=0: the runtime never came back
# through the preload),
# and each client (usmc-perf --raw ping-pong, 2 MiB each way, checked byte
# for byte) is SMC-R.
#  1. three clients one after another;
#  2. three clients at once (three children, so three usmc processes on
#     one address over softroce);
#  3. a child that dies with its connection open: the client sees the
#     reset, and the parent goes on serving the next client over SMC-R.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd socat timeout ss pgrep
t_need_perf
t_lab_up
port=7610
stats=$t_work/socat.stats

t_usmc h1 "$stats" $port socat TCP-LISTEN:$port,fork,reuseaddr EXEC:cat \
	>"$t_work/socat.out" 2>"$t_work/socat.err" &
spid=$!
busywait 10000 t_listening h1 $port || t_fail "socat did not listen: $(cat "$t_work/socat.err")"

# client TAG: one verified ping-pong over SMC-R, 32 x 64 KiB each way
client() {
	t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p $port --raw --pingpong 65536 \
		--iterations 32 --verify --json --timeout 50 >"$t_work/$1" 2>"$t_work/$1.err"
}
check_client() {
	local c=$t_work/$1
	[ "$(t_json "$c" path)" = "$T_SMC_PATH" ] && [ "$(t_json "$c" verify)" = ok ] &&
		[ "$(t_json "$c" round_trips)" = 32 ] || {
		sed 's/^/  client: /' "$c" "$c.err" | tail -5
		return 1
	}
	t_log "ok $1: path $T_SMC_PATH, 32 round trips of 64 KiB verified"
}
# socat processes in h1: the listener is the one whose parent is not socat
socats() {
	local p
	for p in $(ip netns pids "$(usmc_lab_ns "$t_lab" h1)"); do
		[ "$(cat /proc/$p/comm 2>/dev/null)" = socat ] && echo "$p"
	done
}
ppid_of() { awk '{ print $4 }' "/proc/$1/stat" 2>/dev/null; }
listener() {
	local p
	for p in $(socats); do
		[ "$(cat "/proc/$(ppid_of "$p")/comm" 2>/dev/null)" = socat ] || echo "$p"
	done
}
lpid=$(listener)
[ -n "$lpid" ] || t_fail "cannot find socat's listening process"
# the socat children of the listener (their own cat children are cat)
kid_pids() { pgrep -P "$lpid" -x socat; }
kids() { kid_pids | wc -l; }
no_kids() { [ "$(kids)" = 0 ]; }

for i in 1 2 3; do
	client seq$i || t_fail "client seq$i failed: $(tail -2 "$t_work/seq$i.err")"
	check_client seq$i || t_fail "client seq$i was not SMC-R, verified"
	busywait 10000 no_kids || t_fail "socat's child for seq$i did not exit"
done
n=$(grep -c "stats: smcr=1 fallback=0 failed=0 $T_SMCD1" "$stats")
[ "$n" = 3 ] || t_fail "$n socat children report smcr=1 $T_SMCD1, not 3: $(cat "$stats")"
t_log "ok sequential: 3 children each served one connection over SMC-R"

pids=()
for i in 1 2 3; do
	client par$i &
	pids+=($!)
done
bad=0
for i in 1 2 3; do
	wait "${pids[$((i - 1))]}" || bad=1
	check_client par$i || bad=1
done
[ $bad = 0 ] || t_fail "concurrent clients failed: $(cat "$t_work"/par*.err | tail -5)"
busywait 10000 no_kids || t_fail "socat's children did not exit"
n=$(grep -c "stats: smcr=1 fallback=0 failed=0 $T_SMCD1" "$stats")
[ "$n" = 6 ] || t_fail "$n socat children report smcr=1 $T_SMCD1, not 6: $(cat "$stats")"
t_log "ok concurrent: 3 children at once, each over SMC-R"

# A child killed in the middle of its connection: the client gets an
# error, not a hang; the parent serves the next one over SMC-R.
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p $port --raw --pingpong 65536 \
	--iterations 100000 --verify --json --timeout 50 >"$t_work/killed" 2>"$t_work/killed.err" &
kpid=$!
one_kid() { [ "$(kids)" = 1 ]; }
busywait 10000 one_kid || t_fail "no socat child for the connection to kill"
sleep 0.3 # let it move some data first
kill -KILL $(kid_pids)
krc=0
wait $kpid || krc=$?
[ $krc != 0 ] && [ "$(t_json "$t_work/killed" ok)" = false ] ||
	t_fail "the client of a killed child did not fail: exit $krc $(tail -2 "$t_work/killed")"
t_log "ok killed child: the client failed with: $(t_json "$t_work/killed" error)"
client after || t_fail "the client after the kill failed: $(tail -2 "$t_work/after.err")"
check_client after || t_fail "the client after the kill was not SMC-R, verified"

kill -0 $spid 2>/dev/null || t_fail "socat's parent died"
kill -TERM "$lpid"
wait $spid 2>/dev/null
grep -q 'stats: smcr=0 ' "$stats" || t_fail "socat's parent did not report smcr=0: $(cat "$stats")"
t_no_reentry "$stats" || t_fail "socat's processes came back through the preload's interposers"
t_log PASS
