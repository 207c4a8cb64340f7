#!/usr/bin/env bash
# SMC-D over shm between the lab's two hosts (two network namespaces, one
# kernel: docs/runtime.md "shm"). usmc-perf streams 256 MiB each way,
# every byte checked (--verify), and both ends must say path smcd,
# transport shm, and smcd=1 in USMC_STATS; usmc-stat shows the
# connection as SMCD (shm) and its link group as SMCD. A peer killed with
# SIGKILL mid-stream leaves the survivor with ECONNRESET after a correct
# prefix, and a surviving server (still running) with no DMB or signal
# area mapped and no memfd open; no name in /dev/shm appears. With
# USMC_SHM=0 the same pair runs SMC-R over softroce; with no RoCE device
# at all (USMC_TRANSPORT=sim) it runs SMC-D. 64 connections at once all
# take SMC-D in one link group.
. "$(dirname "$0")/lib_test.sh"
export USMC_SHM=1
t_need_cmd timeout ss
t_need_perf
T_STAT=$USMC_BUILD/tools/usmc-stat
[ -x "$T_STAT" ] || t_fail "usmc-stat is not built ($T_STAT missing)"
t_lab_up
fail=0
port=7300
# /dev/shm's names (other usmc processes' stat tables aside: tests running
# at the same time publish theirs there)
sh_devshm() { ls /dev/shm 2>/dev/null | grep -v '^usmc-stat\.' | sort; }
shm_before=$(sh_devshm)

# sh_check TAG BYTES PATH: both sides report PATH, verify ok, BYTES, and
# (smcd) transport shm and smcd=1 in their USMC_STATS line.
sh_check() {
	local tag=$1 want=$2 wpath=$3 side bad=0
	for side in client server; do
		local f=$t_work/$tag.$side path verify bytes tp
		path=$(t_json "$f" path)
		verify=$(t_json "$f" verify)
		bytes=$(t_json "$f" bytes)
		tp=$(t_json "$f" transport)
		if [ "$path" != "$wpath" ] || [ "$verify" != ok ] || [ "$bytes" != "$want" ]; then
			t_log "$tag: $side reports path '$path', verify '$verify', bytes '$bytes' (want $wpath, ok, $want)"
			bad=1
		fi
		if [ "$wpath" = smcd ]; then
			[ "$tp" = shm ] || {
				t_log "$tag: $side reports transport '$tp' (want shm)"
				bad=1
			}
			grep -q 'stats: smcr=1 .* smcd=1 ' "$f.err" || {
				t_log "$tag: $side's USMC_STATS: '$(grep 'stats:' "$f.err")' (want smcr=1 ... smcd=1)"
				bad=1
			}
		fi
	done
	[ $bad = 0 ] || return 1
	t_log "ok $tag: $want bytes, $(t_json "$t_work/$tag.client" gbps) Gbit/s, path $wpath, verify ok on both sides"
}

# sh_many TAG N: N connections at once, 256 KiB each way checked: every
# handshake from the one client process ends SMC-D, in one link group
# (the server lets the next join it as soon as the first Proposal is
# answered; a handshake ending inside another's core call must not begin
# a queued one twice).
sh_many() {
	local tag=$1 n=$2 side bad=0
	port=$((port + 1))
	t_run_pair "$tag" $port --verify --json --timeout 120 -- -n 256K --bidi -P "$n" --verify --json --timeout 120 || return 1
	[ "$(t_json "$t_work/$tag.client" ok)" = true ] &&
		[ "$(t_json "$t_work/$tag.client" connections)" = "$n" ] &&
		[ "$(t_json "$t_work/$tag.client" path)" = smcd ] || {
		t_log "$tag: client: ok '$(t_json "$t_work/$tag.client" ok)', connections '$(t_json "$t_work/$tag.client" connections)', path '$(t_json "$t_work/$tag.client" path)' (want true, $n, smcd)"
		bad=1
	}
	for side in client server; do
		grep -q "stats: smcr=$n fallback=0 failed=0 link_groups=1 smcd=$n " "$t_work/$tag.$side.err" || {
			t_log "$tag: $side's USMC_STATS: '$(grep 'stats:' "$t_work/$tag.$side.err")' (want smcr=$n fallback=0 failed=0 link_groups=1 smcd=$n)"
			bad=1
		}
	done
	[ $bad = 0 ] || return 1
	t_log "ok $tag: $n connections at once, each 256 KiB each way verified, all SMC-D in one link group"
}

export USMC_STATS=1
for dir in up down; do
	port=$((port + 1))
	r=
	[ $dir = down ] && r=-R
	t_run_pair "$dir-256M" $port --verify --json --timeout 150 -- -n 256M $r --verify --json --timeout 150 &&
		sh_check "$dir-256M" 268435456 smcd || fail=1
done
sh_many many-64 64 || fail=1

# usmc-stat while a connection stays idle after usmc-perf's header (both
# sides have it open)
port=$((port + 1))
t_server "$t_work/stat.server" $port "$T_PERF" -s -p $port --json --timeout 60
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p $port -n 1M --idle 4000 --json \
	>"$t_work/stat.client" 2>"$t_work/stat.client.err" &
cpid=$!
sh_stat_seen() {
	t_exec "$1" "$T_STAT" >"$t_work/stat.$1.txt" 2>&1 &&
		grep -q ' SMCD (shm) ' "$t_work/stat.$1.txt" &&
		t_exec "$1" "$T_STAT" -l --json >"$t_work/statl.$1.json" 2>&1 &&
		grep -q '"type": "SMCD"' "$t_work/statl.$1.json"
}
for h in h1 h2; do
	busywait 3000 sh_stat_seen $h || {
		t_log "usmc-stat in $h does not show an SMCD (shm) connection and an SMCD link group:"
		cat "$t_work/stat.$h.txt" "$t_work/statl.$h.json" 2>/dev/null | sed 's/^/  /'
		fail=1
	}
done
wait $cpid || fail=1
kill "$t_spid" 2>/dev/null
wait "$t_spid" 2>/dev/null
[ $fail = 0 ] && t_log "ok usmc-stat: SMCD (shm) and an SMCD link group on both hosts"

# sh_maps PID: the shm mappings and memfds PID still has
sh_maps() {
	{
		grep -c 'memfd:usmc' "/proc/$1/maps" 2>/dev/null
		ls -l "/proc/$1/fd" 2>/dev/null | grep -c 'memfd:usmc'
	} | paste -sd' '
}

sh_conn_up() { t_exec h2 "$T_STAT" | grep -q ' SMCD (shm) '; }

# sh_kill TAG VICTIM [-R]: a server that serves on (no -1) and a client
# streaming; VICTIM killed with SIGKILL mid-stream. The survivor reports
# ECONNRESET; a receiving survivor's bytes are a verified prefix; a
# surviving server keeps no shm mapping or memfd of the connection.
sh_kill() {
	local tag=$1 victim=$2 rev=${3:-} so co spid cpid vpid sur out err verify bytes m
	port=$((port + 1))
	so=$t_work/$tag.server co=$t_work/$tag.client
	ip netns exec "$(usmc_lab_ns "$t_lab" h1)" "$T_PERF" -s -p $port --verify --json --timeout 60 >"$so" 2>"$so.err" &
	spid=$!
	busywait 10000 t_listening h1 $port || t_fail "$tag: server did not listen"
	ip netns exec "$(usmc_lab_ns "$t_lab" h2)" "$T_PERF" -c "$T_H1" -p $port -n 100G $rev --verify --json --timeout 60 \
		>"$co" 2>"$co.err" &
	cpid=$!
	# mid-stream: the connection up, then a second of data
	busywait 10000 sh_conn_up || t_fail "$tag: no SMC-D connection: $(cat "$co" "$co.err")"
	sleep 1
	if [ "$victim" = server ]; then vpid=$spid sur=$cpid out=$co; else vpid=$cpid sur=$spid out=$so; fi
	kill -0 $vpid 2>/dev/null || t_fail "$tag: the $victim ended before the kill: $(cat "$so" "$co")"
	kill -KILL $vpid
	wait $vpid 2>/dev/null
	if [ "$victim" = server ]; then
		wait $sur
	else
		busywait 5000 grep -q '"error"' "$so" || {
			t_log "$tag: FAIL: the server reported no error within 5 s"
			fail=1
		}
	fi
	err=$(t_json "$out" error) verify=$(t_json "$out" verify) bytes=$(t_json "$out" bytes)
	case $err in
	*"Connection reset by peer"*) ;;
	*)
		t_log "$tag: FAIL: the survivor's error is '$err', not ECONNRESET"
		fail=1
		;;
	esac
	if { [ "$victim" = client ] && [ -z "$rev" ]; } || { [ "$victim" = server ] && [ -n "$rev" ]; }; then
		if [ "$verify" != ok ] || [ "${bytes:-0}" -le 0 ]; then
			t_log "$tag: FAIL: the receiving survivor read $bytes bytes, verify $verify"
			fail=1
		fi
	fi
	if [ "$victim" = client ]; then
		# the server closed the connection: DMB unregistered, the
		# peer's detached, the dead peer's signal area unmapped
		busywait 3000 test "$(sh_maps $spid)" = "0 0" || {
			t_log "$tag: FAIL: the surviving server still maps or holds (maps, fds): $(sh_maps $spid)"
			grep memfd "/proc/$spid/maps" | sed 's/^/  /'
			fail=1
		}
		kill $spid 2>/dev/null
		wait $spid 2>/dev/null
	fi
	t_log "$tag: $victim killed: survivor got '$err' after $bytes bytes (verify $verify)"
}
sh_kill kill-client client
sh_kill kill-server server
sh_kill rev-kill-client client -R
sh_kill rev-kill-server server -R

shm_after=$(sh_devshm)
[ "$shm_before" = "$shm_after" ] || {
	t_log "FAIL: /dev/shm changed: $(diff <(echo "$shm_before") <(echo "$shm_after") | grep '^[<>]' | tr '\n' ' ')"
	fail=1
}

# USMC_SHM=0: SMC-R over softroce, as before the shm device
port=$((port + 1))
USMC_SHM=0 t_run_pair "noshm" $port --verify --json -- -n 16M --verify --json --timeout 60 &&
	sh_check noshm 16777216 smcr || fail=1

# No RoCE device opens (the runtime cannot open sim, which needs a world
# from its caller): the pair still takes SMC-D, offered alone
port=$((port + 1))
USMC_TRANSPORT=sim t_run_pair "noroce" $port --verify --json -- -n 16M --verify --json --timeout 60 &&
	sh_check noroce 16777216 smcd || fail=1

[ $fail = 0 ] || t_fail "see above"
t_log PASS
