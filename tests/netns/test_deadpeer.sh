#!/usr/bin/env bash
# A peer that dies is noticed at once (docs/runtime.md, "A peer that goes
# away"): usmc-perf streams between the lab's hosts, one side is killed
# with SIGKILL mid-stream, and the survivor must get ECONNRESET within 1 s
# of the kill, after reading a correct prefix of the pattern (--verify
# checks every byte it read). Both directions (-R), either side killed,
# DP_REPS times each (default 3). Then a client process that exits (or is
# killed) leaves no link group on the server beyond 1 s, and 50 short-lived
# clients do not grow the server. Then SIGSTOP of either side for 10 s,
# mid-stream (both directions) and on an idle connection, then SIGCONT:
# TEST_LINK declares the link dead within 3 s of the stop and both ends
# get ECONNRESET, the receiver's prefix verified; with the kernel's timing
# (USMC_TESTLINK_MS=30000, wait 2 s) and softroce's retry_time=0 (resend
# for ever, as rxe) a stream survives the 10 s stop byte-exact. DP_CASES
# picks parts (kill exit stop).
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
t_lab_up
DP_REPS=${DP_REPS:-3}
DP_LIMIT=${DP_LIMIT:-1.0}
fail=0
port=7100

dp_h1=$(usmc_lab_ns "$t_lab" h1)
dp_h2=$(usmc_lab_ns "$t_lab" h2)
dp_now() { date +%s.%N; }
# seconds arithmetic in awk: the loop of dp_lgr_ends polls every 20 ms
dp_sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a - b }'; }
dp_below() { awk -v x="$1" -v hi="$2" 'BEGIN { exit !(x < hi) }'; }
dp_within() { awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'; }

# dp_kill_case TAG VICTIM(server|client) CLIENT_ARGS...
dp_kill_case() {
	local tag=$1 victim=$2
	shift 2
	local so=$t_work/$tag.server co=$t_work/$tag.client spid cpid vpid
	local rc=0 sur out t_kill t_exit at dt err bytes verify
	port=$((port + 1))
	# No timeout(1) wrapper, and no shell function in between: ip netns
	# exec execs usmc-perf, so $! is the process to kill; --timeout bounds each
	# side, the lab's teardown the rest.
	ip netns exec "$dp_h1" "$T_PERF" -s -1 -p "$port" --json --timeout 30 >"$so" 2>"$so.err" &
	spid=$!
	busywait 10000 t_listening h1 "$port" || t_fail "$tag: server did not listen"
	ip netns exec "$dp_h2" "$T_PERF" -c "$T_H1" -p "$port" --verify --json --timeout 30 -n 100G "$@" \
		>"$co" 2>"$co.err" &
	cpid=$!
	# mid-stream: a second of data, so windows are full and CDCs in flight
	sleep "${DP_SLEEP:-1.5}"
	if [ "$victim" = server ]; then
		vpid=$spid sur=$cpid out=$co
	else
		vpid=$cpid sur=$spid out=$so
	fi
	kill -0 "$vpid" 2>/dev/null || t_fail "$tag: the $victim ended before the kill: $(cat "$so" "$co" "$so.err" "$co.err")"
	if [ -n "${DP_PRESTOP:-}" ]; then
		# a slow peer: its RMB and our window fill up before it dies
		kill -STOP "$vpid"
		sleep "$DP_PRESTOP"
	fi
	t_kill=$(dp_now)
	kill -KILL "$vpid"
	wait "$vpid" 2>/dev/null
	wait "$sur" || rc=$?
	t_exit=$(dp_now)
	at=$(t_json "$out" error_at)
	err=$(t_json "$out" error)
	bytes=$(t_json "$out" bytes)
	verify=$(t_json "$out" verify)
	if [ -z "$at" ]; then
		t_log "$tag: the survivor reported no error (exit $rc)"
		sed 's/^/  survivor: /' "$out" "$out.err" | tail -5
		fail=1
		return
	fi
	dt=$(dp_sub "$at" "$t_kill")
	t_log "$tag: $victim killed; survivor's error after ${dt} s, exit after $(dp_sub "$t_exit" "$t_kill") s: $err (bytes $bytes, verify $verify)"
	case $err in
	*"Connection reset by peer"*) ;;
	*)
		t_log "$tag: FAIL: the survivor's error is not ECONNRESET"
		fail=1
		;;
	esac
	dp_below "$dt" "$DP_LIMIT" || {
		t_log "$tag: FAIL: detection took ${dt} s (limit $DP_LIMIT s)"
		fail=1
	}
	# a receiving survivor checked each byte it read against the pattern
	local a rx=server
	local idle=0
	for a in "$@"; do
		[ "$a" != -R ] || rx=client
		[ "$a" != --idle ] || idle=1
	done
	if [ "$victim" != "$rx" ]; then
		if [ "$verify" != ok ] || [ "${bytes:-0}" -le 0 ]; then
			t_log "$tag: FAIL: the survivor read $bytes bytes, verify $verify (want a correct, non-empty prefix)"
			fail=1
		fi
	fi
}

dp_has() { case " ${DP_CASES:-kill exit stop} " in *" $1 "*) return 0 ;; esac; return 1; }

# by hand: DP_CASES=extra, e.g. DP_EXTRA="-P 4"
if dp_has extra; then
	for i in $(seq "$DP_REPS"); do
		# shellcheck disable=SC2086
		dp_kill_case "x-kill-server-$i" server ${DP_EXTRA:-}
		# shellcheck disable=SC2086
		dp_kill_case "x-kill-client-$i" client ${DP_EXTRA:-}
	done
fi

for i in $(seq "$DP_REPS"); do
	dp_has kill || continue
	dp_kill_case "kill-server-$i" server
	dp_kill_case "kill-client-$i" client
	dp_kill_case "rev-kill-server-$i" server -R
	dp_kill_case "rev-kill-client-$i" client -R
done

# dp_lgr_ends LOG N START: the server's N-th "lgr ... terminated" line
# appears in LOG within 1 s of START (dp_now); prints how long it took.
dp_lgr_ends() {
	local log=$1 n=$2 start=$3 end
	end=$(awk -v s="$start" 'BEGIN { printf "%.6f", s + 1.0 }')
	while :; do
		if [ "$(grep -c 'core: lgr .* terminated' "$log")" -ge "$n" ]; then
			dp_sub "$(dp_now)" "$start"
			return 0
		fi
		dp_below "$(dp_now)" "$end" || return 1
		sleep 0.02
	done
}

# dp_lgr_check TAG LOG N START WHAT: dp_lgr_ends, logged.
dp_lgr_check() {
	local took
	if took=$(dp_lgr_ends "$2" "$3" "$4"); then
		t_log "$1: the server's link group ended ${took} s after its client $5"
	else
		t_log "$1: FAIL: the server's link group outlived its client by more than 1 s"
		sed 's/^/  server: /' "$2" | tail -3
		fail=1
	fi
}

dp_rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# A client process that exits (normally, or killed) leaves no link group on
# the server, and many short-lived clients do not grow the server.
dp_exit_cases() {
	local so=$t_work/exit.server spid co=$t_work/exit.client i rss0 rss1 cpid t0
	port=$((port + 1))
	USMC_DEBUG=1 ip netns exec "$dp_h1" "$T_PERF" -s -p "$port" --json --timeout 200 \
		>"$so" 2>"$so.err" &
	spid=$!
	busywait 10000 t_listening h1 "$port" || t_fail "exit: server did not listen"
	for i in 1 2 3; do
		t_exec h2 timeout 30 "$T_PERF" -c "$T_H1" -p "$port" -n 4M --verify --timeout 20 \
			>"$co" 2>&1 || t_fail "exit: client $i failed: $(cat "$co")"
		dp_lgr_check "exit-$i" "$so.err" "$i" "$(dp_now)" exited
	done
	grep -i "timeout\|timed out" "$so.err" | grep -v "^usmc.*stats" &&
		t_log "exit: FAIL: the server logged an LLC timeout" && fail=1
	# killed mid-stream: the lgr ends with the connection
	ip netns exec "$dp_h2" "$T_PERF" -c "$T_H1" -p "$port" -n 100G --timeout 30 >"$co" 2>&1 &
	cpid=$!
	sleep 1
	t0=$(dp_now)
	kill -KILL "$cpid"
	wait "$cpid" 2>/dev/null
	dp_lgr_check exit-killed "$so.err" 4 "$t0" "was killed"
	# 50 more short-lived clients: the server's RSS stays flat (each lgr
	# that outlived its client held ~590 KiB)
	rss0=$(dp_rss_kb "$spid")
	for i in $(seq "${DP_CLIENTS:-50}"); do
		t_exec h2 timeout 30 "$T_PERF" -c "$T_H1" -p "$port" -n 64K --timeout 20 \
			>"$co" 2>&1 || t_fail "exit: short client $i failed: $(cat "$co")"
	done
	sleep 1
	rss1=$(dp_rss_kb "$spid")
	t_log "exit: server RSS ${rss0} KiB before ${DP_CLIENTS:-50} clients, ${rss1} KiB after"
	if grep -q '^USMC_SANITIZE:BOOL=ON' "$USMC_BUILD/CMakeCache.txt" 2>/dev/null; then
		# ASan's quarantine holds freed memory: RSS says nothing here
		t_log "exit: RSS not judged: this build is sanitizer-instrumented"
	elif [ $((rss1 - rss0)) -gt 4096 ]; then
		t_log "exit: FAIL: the server grew by $((rss1 - rss0)) KiB"
		fail=1
	fi
	kill "$spid"
	wait "$spid" 2>/dev/null
	[ -z "${DP_KEEP:-}" ] || cp "$so.err" "$DP_KEEP"
}

dp_has exit && dp_exit_cases

# dp_stop_case TAG VICTIM(server|client) DELAY CLIENT_ARGS...: SIGSTOP the
# victim DELAY s into the test for DP_STOP s (default 10), then SIGCONT. A
# stopped process stops its softroce too: to the other side the peer went
# silent, and TEST_LINK (1 s idle + 1 s for the answer) declares the link
# dead within DP_STOP_LIMIT s (default 3) of the stop. The connection has
# moved data (at least usmc-perf's header), so both ends end with
# ECONNRESET (docs/core.md "Failover"): the survivor then, the victim
# within DP_STOP_LIMIT s of its SIGCONT (an idle client at its first send
# after --idle); what the receiver read is a correct prefix of the stream.
dp_stop_case() {
	local tag=$1 victim=$2 delay=$3
	shift 3
	local so=$t_work/$tag.server co=$t_work/$tag.client spid cpid vpid
	local crc=0 src=0 side t_stop t_cont f at dt err rx=server a
	port=$((port + 1))
	ip netns exec "$dp_h1" "$T_PERF" -s -1 -p "$port" --json --verify --timeout 90 >"$so" 2>"$so.err" &
	spid=$!
	busywait 10000 t_listening h1 "$port" || t_fail "$tag: server did not listen"
	ip netns exec "$dp_h2" "$T_PERF" -c "$T_H1" -p "$port" --verify --json --timeout 90 "$@" \
		>"$co" 2>"$co.err" &
	cpid=$!
	sleep "$delay"
	[ "$victim" = server ] && vpid=$spid || vpid=$cpid
	kill -0 "$vpid" 2>/dev/null || t_fail "$tag: the test ended before the stop: $(cat "$co" "$so")"
	t_stop=$(dp_now)
	kill -STOP "$vpid"
	sleep "${DP_STOP:-10}"
	t_cont=$(dp_now)
	kill -CONT "$vpid"
	wait "$cpid" || crc=$?
	wait "$spid" || src=$?
	local idle=0
	for a in "$@"; do
		[ "$a" != -R ] || rx=client
		[ "$a" != --idle ] || idle=1
	done
	for side in client server; do
		f=$t_work/$tag.$side
		at=$(t_json "$f" error_at)
		err=$(t_json "$f" error)
		if [ "$side" = "$victim" ]; then
			dt=$(dp_sub "${at:-0}" "$t_cont")
		else
			dt=$(dp_sub "${at:-0}" "$t_stop")
		fi
		t_log "$tag: $side ($([ "$side" = "$victim" ] && echo "stopped; after SIGCONT" || echo "survivor; after the stop")) ${dt} s: $err (bytes $(t_json "$f" bytes), verify $(t_json "$f" verify))"
		case $err in
		*"Connection reset by peer"*) ;;
		*)
			t_log "$tag: FAIL: the $side's error is not ECONNRESET"
			fail=1
			;;
		esac
		# an idle client sleeps through it: it learns at its first
		# send, after --idle
		[ "$idle" = 1 ] && [ "$side" = client ] && continue
		dp_within "$dt" 0 "${DP_STOP_LIMIT:-3}" || {
			t_log "$tag: FAIL: the $side noticed after ${dt} s (limit ${DP_STOP_LIMIT:-3} s)"
			fail=1
		}
		if [ "$side" = "$rx" ] && [ "$(t_json "$f" verify)" != ok ]; then
			t_log "$tag: FAIL: the receiver's prefix did not verify"
			fail=1
		fi
	done
	[ "$crc" != 0 ] && [ "$src" != 0 ] || {
		t_log "$tag: FAIL: client exit $crc, server exit $src (both should fail)"
		fail=1
	}
}

# dp_tolerant_case TAG VICTIM DELAY CLIENT_ARGS...: as dp_stop_case, but
# both ends run with the kernel's TEST_LINK timing (30 + 2 s) and
# retry_time=0: a 10 s stop is within what they wait, so the stream must
# complete, byte-exact, on SMC-R on both sides.
dp_tolerant_case() {
	local tag=$1 victim=$2 delay=$3
	shift 3
	local so=$t_work/$tag.server co=$t_work/$tag.client spid cpid vpid
	local crc=0 src=0 side f
	local tol=(env USMC_TRANSPORT_OPTIONS=retry_time=0 USMC_TESTLINK_MS=30000 USMC_TESTLINK_WAIT_MS=2000)
	port=$((port + 1))
	ip netns exec "$dp_h1" "${tol[@]}" "$T_PERF" -s -1 -p "$port" --json --verify --timeout 90 >"$so" 2>"$so.err" &
	spid=$!
	busywait 10000 t_listening h1 "$port" || t_fail "$tag: server did not listen"
	ip netns exec "$dp_h2" "${tol[@]}" "$T_PERF" -c "$T_H1" -p "$port" --verify --json --timeout 90 "$@" \
		>"$co" 2>"$co.err" &
	cpid=$!
	sleep "$delay"
	[ "$victim" = server ] && vpid=$spid || vpid=$cpid
	kill -0 "$vpid" 2>/dev/null || t_fail "$tag: the test ended before the stop: $(cat "$co" "$so")"
	kill -STOP "$vpid"
	sleep "${DP_STOP:-10}"
	kill -CONT "$vpid"
	wait "$cpid" || crc=$?
	wait "$spid" || src=$?
	for side in client server; do
		f=$t_work/$tag.$side
		if [ "$(t_json "$f" ok)" != true ] || [ "$(t_json "$f" verify)" != ok ] ||
			[ "$(t_json "$f" path)" != smcr ]; then
			t_log "$tag: FAIL: the $side reports ok '$(t_json "$f" ok)', verify '$(t_json "$f" verify)', path '$(t_json "$f" path)': $(t_json "$f" error)"
			fail=1
		fi
	done
	t_log "$tag: $victim stopped for ${DP_STOP:-10} s with the kernel's TEST_LINK timing: client exit $crc, server exit $src, $(t_json "$co" bytes) bytes in $(t_json "$co" seconds) s"
	[ $crc = 0 ] && [ $src = 0 ] || fail=1
}

if dp_has stop; then
	dp_stop_case stop-server server 1 -n 1G
	dp_stop_case stop-client client 1 -n 1G
	dp_stop_case rev-stop-server server 1 -n 1G -R
	dp_stop_case rev-stop-client client 1 -n 1G -R
	dp_stop_case idle-stop-server server 0.5 -n 16M --idle 12000
	dp_stop_case idle-stop-client client 0.5 -n 16M --idle 12000
	dp_tolerant_case tolerant-stop-server server 1 -n 1G
fi

# survivors that fail with ECONNRESET exit 1 anyway: look for reports
if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$t_work"/*.err 2>/dev/null; then
	t_log "FAIL: sanitizer reports (above files)"
	grep -h -A5 "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$t_work"/*.err | head -40
	fail=1
fi
[ $fail = 0 ] || t_fail "a dead peer was not noticed correctly"
t_log PASS
