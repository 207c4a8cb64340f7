#!/usr/bin/env bash
# A link that fails under a running stream, over plain softroce in a
# one-link lab (docs/runtime.md, "A link that fails"):
#  1. port down: h2's eth0 is set down mid-stream. softroce's netlink
#     watch raises PORT_ERR on both hosts (h1 sees its carrier go), the
#     runtime takes the link down, and both ends end with ECONNRESET (the last link, data moved)
#     within 1 s; the server's device, kept by its loop, raises
#     PORT_ACTIVE when the link is set up again, and a new connection
#     runs SMC-R byte-exact on it.
#  2. silent peer: h1 drops all RoCEv2 it receives, mid-stream (one
#     iptables rule, timed; TCP still passes), or the receiver is
#     SIGSTOPped, so the sender in h2 hears no more ACKs. With the
#     runtime's QP attributes (timeout 15, retry count 7, as
#     smc_ib_modify_qp_rts) softroce's retry_time (default 1.5 s) fails
#     the sender's QP with RETRY_EXC_ERR, so the link is declared dead
#     within 2 s of the silence; with retry_time=500, within 1 s; never
#     before retry_time. Printed as the range the silence's start allows.
# Times: the runtime stamps its own log lines (USMC_LOG_TIME=1,
# CLOCK_MONOTONIC) when the event happens, and the fault is timed on the
# same clock before and after the command that injects it. A stamp put on
# by a reader of the pipe instead lagged the event by up to 2.8 s on a
# loaded machine (the reader's start and wake-ups), both ways wrong.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss iptables pgrep
t_need_perf
t_lab_up
LAB=$USMC_SRC/netns/usmc-lab
lab() { "$LAB" --name "$t_lab" "$@" >/dev/null; }
# now VAR: CLOCK_MONOTONIC into VAR, the clock of USMC_LOG_TIME's stamps,
# from a clock process started once (a python3 started per reading took
# up to half a second on a loaded machine, and widened the range)
coproc CLK { python3 -u -c 'import sys, time
for _ in sys.stdin: print("%.6f" % time.monotonic(), flush=True)'; }
trap 'rc=$?; kill "$CLK_PID" 2>/dev/null; t_cleanup $rc' EXIT
now() {
	echo >&"${CLK[1]}"
	read -r "$1" <&"${CLK[0]}" || t_fail "the clock process ended"
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
# first_at FILE REGEX: the runtime's time stamp of its first log line
# matching REGEX (usmc-perf's own lines have none)
first_at() { grep -m1 -E "^[0-9]+\.[0-9]+ usmc\[[0-9]+\]: .*($2)" "$1" | cut -d' ' -f1; }
# the runtime's line for a link group ended by a reset
T_RESET='lgr [0-9a-f]+ terminated: connection reset'

# server TAG PORT [ENV...]: a loop that keeps its device across
# connections; server_stop TAG ends it (by its pid)
server() {
	local tag=$1 port=$2
	shift 2
	t_exec h1 env USMC_DEBUG=1 USMC_LOG_TIME=1 "$@" sh -c 'echo $$ >"$0"; exec timeout 120 "$1" -s -p "$2" --verify' \
		"$t_work/$tag.spid" "$T_PERF" "$port" >"$t_work/$tag.server" 2>&1 &
	spipe[$tag]=$!
	busywait 10000 t_listening h1 "$port" || t_fail "$tag: server did not listen"
}
declare -A spipe
server_stop() {
	kill "$(cat "$t_work/$1.spid")" 2>/dev/null
	wait "${spipe[$1]}" 2>/dev/null
}
# stream TAG PORT [ENV...]: a long verified stream h2 -> h1 in the
# background ($cpid), returns once data flows (the server has a link)
stream() {
	local tag=$1 port=$2
	shift 2
	t_exec h2 env USMC_DEBUG=1 USMC_LOG_TIME=1 "$@" timeout 60 "$T_PERF" -c "$T_H1" -p "$port" -n 64G --verify \
		>"$t_work/$tag.client" 2>&1 &
	cpid=$!
	busywait 10000 grep -q 'SMC-R established' "$t_work/$tag.client" ||
		t_fail "$tag: no SMC-R connection: $(tail -5 "$t_work/$tag.client")"
	# a moment of streaming, so data is in flight when the fault comes
	busywait 5000 eval "[ \$(grep -c . '$t_work/$tag.client') -gt 0 ]"
	sleep 0.3
}
stream_end() { # TAG: wait for the client (at most 10 s) and show its error
	local i=0
	while kill -0 "$cpid" 2>/dev/null && ((i < 100)); do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$cpid" 2>/dev/null && t_fail "$1: the client still runs 10 s after the fault"
	grep -m1 '^error:' "$t_work/$1.client"
}

# --- 1. port down and up ------------------------------------------------------
server pd 7500
stream pd 7500
now t0
lab fault link 1 down h2 || t_fail "fault link 1 down h2"
now t0e
err=$(stream_end pd)
# the last link died with data moved: ECONNRESET at both ends (docs/core.md,
# "Failover")
[[ $err == *"reset"* ]] || t_fail "port down: client error '$err', want a connection reset"
for side in client server; do
	f=$t_work/pd.$side
	at=$(first_at "$f" 'async event PORT_ERR')
	[ -n "$at" ] || t_fail "port down: no PORT_ERR in the $side's log: $(grep -v 'completion for' "$f" | tail -5)"
	le "$t0" "$at" || t_fail "port down: the $side's PORT_ERR came $(sub "$t0" "$at") s before the down"
	d=$(sub "$at" "$t0e")
	le "$d" 1.0 || t_fail "port down: the $side's PORT_ERR came $d s after the down"
	d="$d..$(sub "$at" "$t0")"
	grep -q '^error: connection 0:.*reset' "$f" ||
		t_fail "port down: the $side did not end with a connection reset: $(grep error: "$f")"
	ab=$(first_at "$f" "$T_RESET")
	[ -n "$ab" ] || t_fail "port down: no reset of the $side's link group in its log"
	le "$t0" "$ab" || t_fail "port down: the $side's link group was reset $(sub "$t0" "$ab") s before the down"
	le "$(sub "$ab" "$t0e")" 1.0 || t_fail "port down: the $side ended $(sub "$ab" "$t0e") s after the down"
	t_log "ok port down: $side PORT_ERR after $d s, connection reset after $(sub "$ab" "$t0e")..$(sub "$ab" "$t0") s (the command took $(sub "$t0e" "$t0") s)"
done
grep -q "softroce: interface eth0 down: PORT_ERR" "$t_work/pd.server" || t_fail "softroce did not say why"
now t1
lab fault link 1 up || t_fail "fault link 1 up"
busywait 3000 grep -q 'async event PORT_ACTIVE' "$t_work/pd.server" ||
	t_fail "port up: no PORT_ACTIVE on the server: $(grep -v 'completion for' "$t_work/pd.server" | tail -3)"
t_log "ok port up: server PORT_ACTIVE after $(sub "$(first_at "$t_work/pd.server" 'async event PORT_ACTIVE')" "$t1") s"
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7500 -n 8M --verify --json >"$t_work/pd2.client" 2>&1 ||
	t_fail "after port up: $(tail -3 "$t_work/pd2.client")"
[ "$(t_json "$t_work/pd2.client" path)" = smcr ] && [ "$(t_json "$t_work/pd2.client" verify)" = ok ] ||
	t_fail "after port up: path $(t_json "$t_work/pd2.client" path), verify $(t_json "$t_work/pd2.client" verify)"
t_log "ok after port up: 8 MiB SMC-R verified on the same server device"
server_stop pd

# --- 2. a silent peer -----------------------------------------------------------
# silent TAG PORT HOW LO LIMIT [ENV...]: the receiver in h1 goes silent
# mid-stream, HOW: "drop" (h1 drops all RoCEv2 it receives, one iptables
# rule; the silence starts while the rule goes in, so the time is bounded
# from both ends of that command) or "stop" (SIGSTOP of the receiver: the
# silence starts at the kill). The sender's link must be declared dead
# (RETRY_EXC_ERR) no sooner than LO and no later than LIMIT s after.
silent() {
	local tag=$1 port=$2 how=$3 lo=$4 limit=$5
	shift 5
	server "$tag" "$port" "$@"
	# The silence may begin while the sender waits for the receiver's
	# window with nothing in flight (a slow receiver: a loaded machine),
	# and then only its TEST_LINK puts a WR in flight for retry_time to
	# time, testlink_ms after the last it heard. So a short testlink_ms,
	# and a testlink_wait past the bound: the QP's retries end the link,
	# retry_time after a WR was in flight, within testlink_ms of silence.
	stream "$tag" "$port" "$@" USMC_TESTLINK_MS=100 USMC_TESTLINK_WAIT_MS=10000
	local t0 t0e at d de f vpid rule=(INPUT -i eth0 -p udp --dport "$(usmc_lab_roce_port)" -j DROP)
	if [ "$how" = stop ]; then
		# the usmc-perf under the server's timeout
		vpid=$(pgrep -P "$(cat "$t_work/$tag.spid")") || t_fail "$tag: no server process"
		now t0
		kill -STOP "$vpid"
		now t0e
	else
		now t0
		t_exec h1 iptables -w -I "${rule[@]}" || t_fail "iptables drop in h1"
		now t0e
	fi
	err=$(stream_end "$tag")
	[[ $err == *"reset"* ]] ||
		t_fail "$tag: client error '$err', want the connection ended"
	f=$t_work/$tag.client
	at=$(first_at "$f" 'retry counter exceeded')
	[ -n "$at" ] || t_fail "$tag: the sender's QP did not give up: $(grep -v 'completion for' "$f" | tail -5)"
	le "$t0" "$at" || t_fail "$tag: the sender's QP gave up $(sub "$t0" "$at") s before the silence: $(grep -v 'completion for' "$f" | tail -5)"
	d=$(sub "$at" "$t0")
	de=$(sub "$at" "$t0e")
	# retry_time runs from the last ACK the sender took, which came
	# before the silence by up to an ACK's way back (1-8 ms seen on the
	# loaded machine): 50 ms of that is no early death
	le "$de" "$limit" && le "$(sub "$lo" 0.05)" "$d" ||
		t_fail "$tag: the sender declared the link dead $de..$d s after the silence began (want $lo..$limit s)"
	if [ "$how" = stop ]; then
		kill -CONT "$vpid"
		t_log "ok $tag (${*:-defaults}): sender's link dead $d s after the receiver stopped (bound $limit s)"
	else
		# the receiver: its own QP's retries (CDCs in flight), or the
		# TCP connection the sender's runtime reset
		local sat
		busywait 3000 grep -q '^error:' "$t_work/$tag.server" ||
			t_fail "$tag: the receiver did not end: $(grep -v 'completion for' "$t_work/$tag.server" | tail -3)"
		sat=$(first_at "$t_work/$tag.server" 'retry counter exceeded|terminated')
		t_log "ok $tag (${*:-defaults}): sender's link dead $de..$d s after the drop (bound $limit s; the rule took $(sub "$t0e" "$t0") s); receiver ended after $(sub "$sat" "$t0") s"
		t_exec h1 iptables -w -D "${rule[@]}" || t_fail "iptables: the drop rule would not go"
	fi
	server_stop "$tag"
}
silent silent_drop 7501 drop 1.5 2.0
silent silent_stop 7502 stop 1.5 2.0
silent silent_drop_500 7503 drop 0.5 1.0 USMC_TRANSPORT_OPTIONS=retry_time=500
# a sanitizer build's reports (ASan+UBSan) in any log
if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$t_work"/*.server* "$t_work"/*.client* 2>/dev/null; then
	t_fail "sanitizer reports in the logs above"
fi
t_log PASS
