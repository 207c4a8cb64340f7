#!/usr/bin/env bash
# Debian's sockperf, unmodified, server (sr) and client under usmc-run over
# softroce; in the lab (h2 -> h1) and on one host (h1, 127.0.0.1 ->
# 127.0.0.2):
#  - ping-pong (pp --tcp --data-integrity): no dropped, duplicated or
#    out-of-order message, a p50, the client's connection over SMC-R;
#  - throughput (tp --tcp -m 1024): a message rate;
#  - a server per client, each of which received every message its client
#    sent (its "Total N messages received" equals pp's [Total Run]
#    SentMessages, and tp's "Total of N messages sent", or one less when
#    the client's end-of-run signal cut the last send short), ran its
#    connection over SMC-R (its USMC_DEBUG log) and exited on SIGINT.
#
# sockperf and the preload: sockperf calls socket, recvfrom, send, select /
# poll / epoll through libc's PLT, so the preload sees them. Its function
# pointers (fn_recvfrom, fn_epoll_wait...) and its dlopen are for libvma
# only (--load-vma), which is not used here. A bypass could not go
# unnoticed: an SMC-R socket's kernel fd never becomes readable, so a
# ping-pong that read it would stall.
#
# Stopping the server: sockperf's SIGINT handler (installed without
# SA_RESTART) prints the totals and relies on its blocking accept() failing
# with EINTR. Under usmc-run it must, as with the kernel
# (runtime/usmc_signal.c): the server has to exit on SIGINT, by itself,
# and print its USMC_STATS line at exit.
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss sockperf awk
t_lab_up
A_PORTS=11111,11112
SECS=${A_SECS:-3}

field() { # FILE KEY: the number after KEY= on the last line holding it
	sed -n "s/.*$2=\([0-9.]*\).*/\1/p" "$1" | tail -1
}

# stop_server NAME WANT_CONNS: SIGINT alone must end sockperf sr (see the
# header); then its usmc stats line and its "Total N messages" are read.
stop_server() {
	local name=$1 i
	# first let it read everything: its connection closed on its side
	for i in $(seq 300); do
		grep -q -- '-> CLOSED' "$t_work/$name.err" && break
		sleep 0.1
	done
	kill -INT $a_spid # timeout passes it on
	for i in $(seq 100); do
		kill -0 $a_spid 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 $a_spid 2>/dev/null; then
		a_fail "$name: sockperf sr still runs 10 s after SIGINT: its blocking accept() did not fail with EINTR"
		a_stop $a_spid KILL
	else
		wait $a_spid 2>/dev/null
		a_smcr "$t_work/$name.stats" 1 || a_fail "$name: sockperf sr exited on SIGINT without its usmc stats line"
	fi
	got=$(sed -n 's/.*Total \([0-9]*\) messages received and handled.*/\1/p' "$t_work/$name.out")
	est=$(grep -c "$T_SMC_NAME established" "$t_work/$name.err")
	if [ "$est" != 1 ] || grep -q 'TCP fallback' "$t_work/$name.err"; then
		a_fail "$name: $est connections over $T_SMC_NAME (want 1)"
		a_show "$name"
	fi
}

run() { # WHERE
	a_where "$1"
	local w=$1 rc got est sent
	USMC_DEBUG=1 a_server "sr-pp-$w" 11111 sockperf sr --tcp -i "$A_SADDR" -p 11111 || {
		a_fail "$w: sockperf server"
		return
	}
	rc=0
	# --mps: sockperf pp sizes its sequence table for (SECS + 1) s at
	# 600000 round trips/s unless told a rate, and exits with "_seqN >
	# m_maxSequenceNo" when replies come faster, as they do over shm on a
	# quiet machine (~1 us). 4000000/s is above any rate reached here and
	# sockperf never waits between sends below it.
	T_TIMEOUT=$((SECS + 60)) a_client "pp-$w" sockperf pp --tcp -i "$A_SADDR" -p 11111 -t "$SECS" --mps 4000000 --data-integrity || rc=$?
	local p50 lat
	p50=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$t_work/pp-$w.out")
	lat=$(sed -n 's/.*Summary: Latency is \([0-9.]*\) usec.*/\1/p' "$t_work/pp-$w.out")
	if [ $rc = 0 ] && [ -n "$p50" ] &&
		grep -q '# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0' "$t_work/pp-$w.out" &&
		! grep -qi 'error' "$t_work/pp-$w.out" && a_smcr "$t_work/pp-$w.stats" 1; then
		t_log "ok pp-$w: p50 $p50 usec, average $lat usec, $(field "$t_work/pp-$w.out" ReceivedMessages) replies, none dropped, client $A_SMCR"
	else
		a_fail "pp-$w: exit $rc"
		a_show "pp-$w"
	fi
	stop_server "sr-pp-$w"
	# Every request reached the server: the last one too, whose reply
	# the client may leave unread when its end-of-run SIGALRM interrupts
	# recv() (then its close aborts, and the server reads the request
	# before the reset).
	sent=$(sed -n 's/.*Total Run.*SentMessages=\([0-9]*\).*/\1/p' "$t_work/pp-$w.out")
	if [ -n "$sent" ] && [ "$got" = "$sent" ]; then
		t_log "ok sr-pp-$w: the server received all $got requests, over $T_SMC_NAME, and exited on SIGINT"
	else
		a_fail "sr-pp-$w: the server received '$got' requests of '$sent' sent"
		a_show "sr-pp-$w"
	fi

	USMC_DEBUG=1 a_server "sr-tp-$w" 11112 sockperf sr --tcp -i "$A_SADDR" -p 11112 || {
		a_fail "$w: sockperf server"
		return
	}
	rc=0
	T_TIMEOUT=$((SECS + 60)) a_client "tp-$w" sockperf tp --tcp -i "$A_SADDR" -p 11112 -t "$SECS" -m 1024 || rc=$?
	local rate bw
	rate=$(sed -n 's/.*Summary: Message Rate is \([0-9]*\).*/\1/p' "$t_work/tp-$w.out")
	bw=$(sed -n 's/.*Summary: BandWidth is \([0-9.]*\) MBps.*/\1/p' "$t_work/tp-$w.out")
	if [ $rc = 0 ] && [ -n "$rate" ] && [ "$rate" -gt 0 ] && a_smcr "$t_work/tp-$w.stats" 1; then
		t_log "ok tp-$w: $rate msg/s of 1024 bytes ($bw MBps), client $A_SMCR"
	else
		a_fail "tp-$w: exit $rc"
		a_show "tp-$w"
	fi
	stop_server "sr-tp-$w"
	# The client's end-of-run SIGALRM (no SA_RESTART) may interrupt a
	# send() blocked on a full window part-way through the last message:
	# send returns the partial count, as the kernel's does, and sockperf
	# counts the message as sent though the server never sees all of it.
	sent=$(sed -n 's/.*Total of \([0-9]*\) messages sent.*/\1/p' "$t_work/tp-$w.out")
	if [ -n "$sent" ] && [ "$got" = "$sent" ]; then
		t_log "ok sr-tp-$w: the server received all $got messages, over $T_SMC_NAME, and exited on SIGINT"
	elif [ -n "$sent" ] && [ -n "$got" ] && [ "$got" = $((sent - 1)) ]; then
		t_log "ok sr-tp-$w: the server received $got messages of $sent: the last was cut short by the client's SIGALRM (see above)"
	else
		a_fail "sr-tp-$w: the server received '$got' messages of '$sent' sent"
		a_show "sr-tp-$w"
	fi
}

run lab
run local
a_end
