#!/usr/bin/env bash
# valgrind memcheck over programs run under the preload, in the two-host
# lab over SMC-R: a client (calls: every send/recv family call) and a
# server (epoll-et) each under valgrind, with the runtime and the preload
# inside. Any error, or a definite or indirect leak, fails the test (99).
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss valgrind
t_lab_up
VG=(valgrind --error-exitcode=99 --suppressions="$USMC_SRC/runtime/bpf/usmc_synopt.supp" --leak-check=full --errors-for-leak-kinds=definite,indirect
	--track-fds=no -q)
fails=0
run_case() { # CASE PORT WHO(client|server)
	local c=$1 port=$2 who=$3 d=$t_work/$1
	local s=("$T_PEER" server "$port" "$c") cl=("$T_PEER" client "$T_H1" "$port" "$c")
	mkdir -p "$d"
	if [ "$who" = server ]; then s=("${VG[@]}" "${s[@]}"); else cl=("${VG[@]}" "${cl[@]}"); fi
	T_TIMEOUT=300 t_usmc h1 "$d/s.stats" "$port" "${s[@]}" >"$d/s.out" 2>"$d/s.err" &
	local spid=$! crc=0 src=0
	busywait 60000 t_listening h1 "$port" || {
		kill $spid
		t_log "$c: server did not listen: $(cat "$d/s.err")"
		return 1
	}
	T_TIMEOUT=300 t_usmc h2 "$d/c.stats" "$port" "${cl[@]}" >"$d/c.out" 2>"$d/c.err" || crc=$?
	[ $crc = 0 ] || kill $spid 2>/dev/null
	wait $spid || src=$?
	if [ $crc != 0 ] || [ $src != 0 ] ||
		! t_stats "$d/s.stats" "smcr=1 fallback=0" || ! t_stats "$d/c.stats" "smcr=1 fallback=0"; then
		t_log "$c under valgrind ($who): client exit $crc, server exit $src"
		sed 's/^/  client: /' "$d/c.out" "$d/c.err" | tail -40
		sed 's/^/  server: /' "$d/s.out" "$d/s.err" | tail -40
		return 1
	fi
	t_log "ok $c with the $who under valgrind: no error, no leak; SMC-R on both sides"
}
run_case calls 7401 client || fails=$((fails + 1))
run_case epoll-et 7402 server || fails=$((fails + 1))
[ $fails = 0 ] || t_fail "$fails valgrind run(s) failed"
t_log PASS
