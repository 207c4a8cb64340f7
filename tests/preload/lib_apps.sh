# shellcheck shell=bash
# Shared by the workload tests (test_redis, test_iperf3, test_sockperf,
# test_nginx; sourced): Debian's own binaries under usmc-run in the lab.
#
# Placements (a_where):
#   lab       server in h1 on 10.77.0.1, client in h2 (over the veth);
#   local     both in h1: the server on 127.0.0.2, the client connecting
#             to it from 127.0.0.1 (the kernel's source for 127.0.0.0/8),
#             so each softroce process binds UDP 4791 on its own address;
#   same-lo   both in h1 on 127.0.0.1: server and client share one
#             address, so their softroce devices share UDP 4791 on it;
#   same-lab  both in h1 on 10.77.0.1, sharing it likewise.
. "$(dirname "${BASH_SOURCE[0]}")/lib_preload.sh"

a_where() { # lab|local
	A_WHERE=$1
	case $1 in
	lab) A_SHOST=h1 A_CHOST=h2 A_SADDR=$T_H1 ;;
	local) A_SHOST=h1 A_CHOST=h1 A_SADDR=127.0.0.2 ;;
	same-lo) A_SHOST=h1 A_CHOST=h1 A_SADDR=127.0.0.1 ;;
	same-lab) A_SHOST=h1 A_CHOST=h1 A_SADDR=$T_H1 ;;
	*) t_fail "a_where: unknown placement '$1'" ;;
	esac
}

# a_server NAME PORT CMD...: CMD under usmc-run (SMC ports $A_PORTS) in
# the server host, in the background; stats in $t_work/NAME.stats, output
# in NAME.out / NAME.err. Returns once PORT listens. $a_spid is the
# process that signals reach: ip netns exec execs timeout, which passes
# SIGTERM, SIGINT, SIGQUIT and SIGHUP on to usmc-run, which execs CMD.
a_server() {
	local name=$1 port=$2
	shift 2
	local argv=(ip netns exec "$(usmc_lab_ns "$t_lab" "$A_SHOST")" env
		USMC_STATS="$t_work/$name.stats" USMC_SOFTROCE_PORT="${T_SRPORT:-4791}")
	[ -n "$T_ASAN" ] && argv+=(LD_PRELOAD="$T_ASAN")
	argv+=(timeout "${A_STIMEOUT:-400}" "$T_RUN" -p "$A_PORTS" "$@")
	"${argv[@]}" >"$t_work/$name.out" 2>"$t_work/$name.err" &
	a_spid=$!
	busywait 15000 t_listening "$A_SHOST" "$port" || {
		t_log "$name: server did not listen on $port: $(tail -5 "$t_work/$name.out" "$t_work/$name.err")"
		return 1
	}
}

# a_plain_server NAME PORT CMD...: the same without usmc-run.
a_plain_server() {
	local name=$1 port=$2
	shift 2
	ip netns exec "$(usmc_lab_ns "$t_lab" "$A_SHOST")" timeout "${A_STIMEOUT:-400}" "$@" \
		>"$t_work/$name.out" 2>"$t_work/$name.err" &
	a_spid=$!
	busywait 15000 t_listening "$A_SHOST" "$port" || {
		t_log "$name: server did not listen on $port: $(tail -5 "$t_work/$name.out" "$t_work/$name.err")"
		return 1
	}
}

# a_client NAME CMD...: CMD under usmc-run in the client host (timeout
# $T_TIMEOUT, default 120 s); output in $t_work/NAME.out / NAME.err.
# Still running 20 s before the timeout, it is taken to hang: every usmc
# socket and link of the test, both ends', as they stand then (a_stat_dump)
# go to the log, for the failure that follows.
a_client() {
	local name=$1 pid i lim rc=0
	shift
	# (<&0: a background job would otherwise read /dev/null)
	t_usmc "$A_CHOST" "$t_work/$name.stats" "$A_PORTS" "$@" <&0 >"$t_work/$name.out" 2>"$t_work/$name.err" &
	pid=$!
	# looked at every 50 ms for the first second (most clients end
	# within it), then every 250 ms
	lim=$(((${T_TIMEOUT:-120} - 21) * 4 + 20))
	for ((i = 0; i < lim; i++)); do
		kill -0 $pid 2>/dev/null || break
		[ $i -lt 20 ] && sleep 0.05 || sleep 0.25
	done
	kill -0 $pid 2>/dev/null && a_stat_dump "$name"
	wait $pid || rc=$?
	return $rc
}

# a_stat_dump NAME: usmc-stat's sockets (with cursors) and links (with
# counters) of every usmc process of the test, and each one's threads:
# state, kernel wait channel and CPU time in one second; a process that
# spent most of that second on the CPU (spinning) with its stacks (gdb,
# when installed). To the log and to $t_work/NAME.statdump.
a_stat_dump() {
	{
		echo "$1: still running after $((${T_TIMEOUT:-120} - 20)) s; usmc-stat of the test's processes:"
		"$USMC_BUILD/tools/usmc-stat" -a -d -W --all-ns 2>&1
		"$USMC_BUILD/tools/usmc-stat" -l -d --all-ns 2>&1
		a_threads
	} | tee "$t_work/$1.statdump" | sed 's/^/  /'
}

# a_ticks PID: "TID STATE TICKS" per thread (utime + stime, in clock
# ticks; the fields after the command name, which may hold spaces)
a_ticks() {
	local t
	for t in /proc/"$1"/task/*; do
		sed 's/.*) //' "$t/stat" 2>/dev/null | awk -v tid="${t##*/}" '{ print tid, $1, $12 + $13 }'
	done
}

a_threads() {
	local f pid pids=() hz
	hz=$(getconf CLK_TCK)
	for f in "$USMC_STAT_DIR"/usmc-stat.*; do
		pid=${f##*.}
		[[ $pid =~ ^[0-9]+$ ]] && [ -d "/proc/$pid" ] && pids+=("$pid")
	done
	declare -A t0
	for pid in "${pids[@]}"; do
		while read -r tid st ticks; do t0[$tid]=$ticks; done < <(a_ticks "$pid")
	done
	sleep 1
	for pid in "${pids[@]}"; do
		local busy=0
		echo "pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)): thread state wchan cpu-in-1s"
		while read -r tid st ticks; do
			local d=$((ticks - ${t0[$tid]:-$ticks}))
			echo "  $tid $st $(cat "/proc/$pid/task/$tid/wchan" 2>/dev/null) $((d * 100 / hz))%"
			[ $((d * 2)) -gt "$hz" ] && busy=1
		done < <(a_ticks "$pid")
		if [ $busy = 1 ] && command -v gdb >/dev/null; then
			timeout 30 gdb -p "$pid" -batch -ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(Thread|#)'
		fi
	done
}

# a_stop PID SIGNAL: signal a background server, wait for it up to 20 s,
# then SIGKILL. Returns the server's exit status.
a_stop() {
	local pid=$1 sig=$2 i rc=0
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$pid" 2>/dev/null && {
		[ "$sig" = KILL ] || t_log "pid $pid did not exit on SIG$sig in 20 s: killed"
		# timeout does not pass SIGKILL on: its child first
		kill -KILL $(ps -o pid= --ppid "$pid") 2>/dev/null
		kill -KILL "$pid" 2>/dev/null
	}
	wait "$pid" 2>/dev/null || rc=$?
	return $rc
}

# a_wait PID SECS: wait up to SECS for a server that ends by itself,
# then as a_stop PID TERM. Returns its exit status.
a_wait() {
	local pid=$1 i
	for i in $(seq $(($2 * 5))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -0 "$pid" 2>/dev/null && t_log "pid $pid still runs after $2 s: stopping it"
	a_stop "$pid" TERM
}

# a_smcr FILE MIN [FALLBACK [FAILED]]: the stats lines in FILE (one per
# usmc process that exited normally) add up to at least MIN SMC-R
# connections, exactly FALLBACK (default 0) fallbacks and FAILED (default 0)
# failed connections. Over shm (USMC_SHM=1) every one of those SMC
# connections must be SMC-D too (smcd= as many as smcr=).
a_smcr() {
	local f=$1 min=$2 wantfb=${3:-0} wantfail=${4:-0} s
	s=$(awk '/stats:/ { for (i = 1; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == "smcr") s += kv[2]; if (kv[1] == "fallback") f += kv[2];
		if (kv[1] == "failed") x += kv[2]; if (kv[1] == "smcd") d += kv[2] } n++ }
		END { printf "%d %d %d %d %d", n, s, f, x, d }' "$f" 2>/dev/null)
	set -- $s
	if [ "${1:-0}" -ge 1 ] && [ "$2" -ge "$min" ] && [ "$3" = "$wantfb" ] && [ "$4" = "$wantfail" ] &&
		{ [ "$USMC_SHM" != 1 ] || [ "$5" = "$2" ]; }; then
		A_SMCR="smcr=$2 fallback=$3 failed=$4"
		[ "$USMC_SHM" = 1 ] && A_SMCR="$A_SMCR smcd=$5"
		return 0
	fi
	t_log "stats in ${f##*/}: '$(grep 'stats:' "$f" 2>/dev/null | tr '\n' ' ')'; want smcr >= $min, fallback=$wantfb, failed=$wantfail$([ "$USMC_SHM" = 1 ] && echo ", smcd = smcr (USMC_SHM=1)")"
	return 1
}

a_show() { # NAME: the tail of a program's output, for a failure
	tail -n "${2:-15}" "$t_work/$1.out" "$t_work/$1.err" 2>/dev/null | sed "s/^/  $1: /"
}

a_fails=0
a_fail() {
	t_log "FAIL: $*"
	a_fails=$((a_fails + 1))
}

a_end() {
	[ "$a_fails" = 0 ] || t_fail "$a_fails check(s) failed"
	t_log "PASS ($SECONDS s)"
}
