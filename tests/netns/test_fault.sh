#!/usr/bin/env bash
# Faults injected at run time (usmc-lab fault, docs/fault.md) into usmc-perf
# streams between the lab's hosts over the fault transport on softroce.
# Recoverable faults (drop, delay, duplicate, reorder, corrupt) on both
# hosts: the stream completes byte-exact (--verify on both sides) and the
# fault counters show they fired. Fatal ones (qp-error, port-down,
# device-fatal, fail-post) on one host: both ends fail within T_FATAL_S
# seconds with an error, and what the server received verified (a correct
# prefix). Prints the time from the fault to each end.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
t_lab_up
export USMC_TRANSPORT=fault:softroce
# strict: every corrupted packet fails the ICRC; the default (verify)
# would take 2^-16 of them for a kernel rxe packet with a nonzero IPv4 ID
export USMC_TRANSPORT_OPTIONS=icrc=strict
export USMC_FAULT_CTL_DIR=$t_work/ctl
mkdir "$USMC_FAULT_CTL_DIR" || t_fail "cannot make $USMC_FAULT_CTL_DIR"
T_FATAL_S=${T_FATAL_S:-5}
port=7100
fail=0

# T_CASES="drop qp-error-client" runs those cases alone.
want() { [ -z "${T_CASES:-}" ] || [[ " $T_CASES " == *" $1 "* ]]; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# A socket per usmc process, made when its device opens (first connection).
socks_up() { [ "$(find "$USMC_FAULT_CTL_DIR" -name 'usmc-fault.*.sock' | wc -l)" -ge 2 ]; }

# start TAG BYTES [CLIENT ARGS...]: server in h1 and client in h2 in the
# background; each writes "EXIT_CODE END_MS" to TAG.{server,client}.end.
start() {
	local tag=$1 n=$2
	shift 2
	port=$((port + 1))
	rm -f "$USMC_FAULT_CTL_DIR"/*.sock
	(
		t_exec h1 timeout 120 "$T_PERF" -s -1 -p $port --verify --json -t 100 \
			>"$t_work/$tag.server" 2>"$t_work/$tag.server.err"
		echo "$? $(now_ms)" >"$t_work/$tag.server.end"
	) &
	busywait 10000 t_listening h1 $port || t_fail "$tag: server did not listen"
	(
		t_exec h2 timeout 120 "$T_PERF" -c "$T_H1" -p $port -n "$n" --verify --json -t 100 "$@" \
			>"$t_work/$tag.client" 2>"$t_work/$tag.client.err"
		echo "$? $(now_ms)" >"$t_work/$tag.client.end"
	) &
	busywait 10000 socks_up || t_fail "$tag: no fault control sockets (is the transport fault:softroce?)"
}

ended() { [ -s "$t_work/$1.server.end" ] && [ -s "$t_work/$1.client.end" ]; }

show() {
	local side
	for side in client server; do
		sed "s/^/  $1 $side: /" "$t_work/$1.$side" "$t_work/$1.$side.err" | tail -8
	done
}

# recoverable TAG SCHEDULE COUNTER: SCHEDULE on both hosts 0.2 s into a
# 1 GiB stream; COUNTER of h1's fault stats must be above 0.
recoverable() {
	local tag=$1 sched=$2 counter=$3 t0 st v bad
	want "$tag" || return 0
	t0=$(now_ms)
	start "$tag" 1G
	sleep 0.2
	# a schedule that does not parse is refused whole, with the position
	bad=$(usmc_lab_fault "$t_lab" h1 "$sched;drop:rate=2" 2>&1) && {
		t_log "FAIL $tag: a bad schedule was taken: $bad"
		fail=1
	}
	if [[ $bad != *": error: position $((${#sched} + 12)): expected a rate from 0 to 1"* ]]; then
		t_log "FAIL $tag: the refusal does not give the position: $bad"
		fail=1
	fi
	usmc_lab_fault "$t_lab" h1 "$sched" >/dev/null && usmc_lab_fault "$t_lab" h2 "$sched" >/dev/null ||
		{
			t_log "FAIL $tag: usmc-lab fault refused '$sched'"
			fail=1
		}
	sleep 0.3
	st=$(usmc_lab_fault "$t_lab" h1 stats 2>&1)
	busywait 150000 ended "$tag" || t_fail "$tag: still running after 150 s"
	wait
	v=$(echo "$st" | grep -o "$counter=[0-9]*" | head -1)
	if ! t_check_smcr "$tag" 1073741824; then
		show "$tag"
		fail=1
	elif [ -z "$v" ] || [ "${v#*=}" = 0 ]; then
		t_log "FAIL $tag: the fault did not fire on h1 ($st)"
		fail=1
	else
		t_log "ok $tag: '$sched' on both hosts, h1 $v, 1 GiB byte-exact in $(($(now_ms) - t0)) ms"
	fi
}

# fatal TAG HOST SCHEDULE: SCHEDULE on HOST 0.3 s into a 4 GiB stream: both
# ends must fail within T_FATAL_S, with an error, the server's bytes
# verified.
fatal() {
	local tag=$1 host=$2 sched=$3 t0 crc cend src send cerr serr sver
	want "$tag" || return 0
	start "$tag" 4G
	sleep 0.3
	t0=$(now_ms)
	usmc_lab_fault "$t_lab" "$host" "$sched" >/dev/null || {
		t_log "FAIL $tag: usmc-lab fault refused '$sched'"
		fail=1
	}
	busywait 60000 ended "$tag" || t_fail "$tag: an end still runs 60 s after the fault (hang)"
	wait
	read -r crc cend <"$t_work/$tag.client.end"
	read -r src send <"$t_work/$tag.server.end"
	cerr=$(t_json "$t_work/$tag.client" error)
	serr=$(t_json "$t_work/$tag.server" error)
	sver=$(t_json "$t_work/$tag.server" verify)
	if [ "$crc" = 0 ] || [ "$src" = 0 ] || [ -z "$cerr" ] || [ -z "$serr" ]; then
		t_log "FAIL $tag: both ends must fail with an error (client $crc '$cerr', server $src '$serr')"
		show "$tag"
		fail=1
	elif [ "$sver" != ok ]; then
		t_log "FAIL $tag: the server's data did not verify ($sver)"
		show "$tag"
		fail=1
	elif ((cend - t0 > T_FATAL_S * 1000 || send - t0 > T_FATAL_S * 1000)); then
		t_log "FAIL $tag: too slow: client after $((cend - t0)) ms, server after $((send - t0)) ms (limit ${T_FATAL_S} s)"
		fail=1
	else
		t_log "ok $tag: '$sched' on $host: client failed after $((cend - t0)) ms ('$cerr'), server after $((send - t0)) ms ('$serr', received bytes verified)"
	fi
}

recoverable drop "seed=1;drop:rate=0.001" dropped
recoverable corrupt "seed=2;corrupt:rate=0.001" corrupted
recoverable duplicate "seed=3;duplicate:rate=0.01" duplicated
recoverable reorder "seed=4;reorder:rate=0.01" reordered
recoverable delay "seed=5;delay:rate=0.01,by=2ms" delayed
fatal qp-error-client h2 "qp-error"
fatal qp-error-server h1 "qp-error"
fatal port-down-client h2 "port-down:for=5s"
fatal device-fatal-server h1 "device-fatal"
fatal fail-post-client h2 "fail-post:op=WRITE,nth=100"
[ $fail = 0 ] || t_fail "a fault did not end as it should"
t_log PASS
