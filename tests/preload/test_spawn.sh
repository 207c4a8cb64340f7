#!/usr/bin/env bash
# A child never acts on its parent's connections (docs/preload.md, fork).
# Over SMC-R between the two lab hosts, both under usmc-run, each side
# makes children while its connection is open, one way per round, and
# after each the connection moves 1 MiB each way, every byte checked, the
# TCP connection under it carried none of it (TCP_INFO: still SMC-R), and
# the parent's SIGUSR1 handler still runs:
#   client, python3 (spawn_peer.py): subprocess.run with close_fds (vfork;
#     the child closes every fd with close_range) and without (glibc's
#     posix_spawn), os.posix_spawn, os.system, glibc's popen, fork + exec,
#     then subprocess.run again (without, with close_fds)
#   server, C (preload_peer spawn): vfork (the child closes the socket,
#     close_range(3, ~0), signal(SIGUSR1, SIG_DFL), exec; then at once a
#     fork, whose child must find its copy failed: adopted), clone() without
#     CLONE_VM (the child closes the socket and calls exit()), clone()
#     with CLONE_VM|CLONE_VFORK and with CLONE_VM alone (the child does as
#     vfork's, then _exit), posix_spawn with addclose and
#     addclosefrom_np, system, popen, fork + exec
# Each process must print one stats line (no child prints the parent's
# counts), with one SMC-R connection, no fallback, no failure.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || t_skip "python3 is not installed"
t_lab_up
port=7301
d=$t_work/spawn
mkdir -p "$d"
# T_SWAYS, T_CWAYS: other lists, to try one way alone by hand
sways=${T_SWAYS:-vfork,clone,clone-vfork,clone-vm,posix_spawn,system,popen,fork-exec}
cways=${T_CWAYS:-run,run-noclose,posix_spawn,system,popen,fork-exec,run-noclose,run}
# one round each side at a time: as many ways on both
[ "$(tr -cd , <<<"$sways")" = "$(tr -cd , <<<"$cways")" ] ||
	t_fail "as many client ways as server ways, please: '$cways' '$sways'"
t_usmc h1 "$d/s.stats" $port "$T_PEER" server $port spawn "$sways" >"$d/s.out" 2>"$d/s.err" &
spid=$!
busywait 10000 t_listening h1 $port || {
	kill $spid 2>/dev/null
	t_fail "server did not listen: $(cat "$d/s.out" "$d/s.err")"
}
crc=0 src=0
t_usmc h2 "$d/c.stats" $port "$PY" "$USMC_SRC/tests/preload/spawn_peer.py" "$T_H1" $port "$cways" \
	>"$d/c.out" 2>"$d/c.err" || crc=$?
[ $crc = 0 ] || kill $spid 2>/dev/null
wait $spid || src=$?
bad=0
[ $crc = 0 ] && [ $src = 0 ] || bad=1
for side in s c; do
	t_stats "$d/$side.stats" "smcr=1 fallback=0 failed=0" || bad=1
	n=$(grep -c 'stats:' "$d/$side.stats" 2>/dev/null)
	[ "$n" = 1 ] || {
		t_log "$side: $n stats lines, want 1: $(tr '\n' ' ' <"$d/$side.stats" 2>/dev/null)"
		bad=1
	}
done
if [ $bad = 1 ]; then
	t_log "client exit $crc, server exit $src"
	sed 's/^/  client: /' "$d/c.out" "$d/c.err" | tail -15
	sed 's/^/  server: /' "$d/s.out" "$d/s.err" | tail -15
	t_fail "a child acted on its parent's connection"
fi
t_log "ok client: $(head -1 "$d/c.out")"
t_log "ok server: $(head -1 "$d/s.out")"
t_log PASS
