# shellcheck shell=bash
# Shared by tests/preload/test_*.sh (sourced). Builds on the netns helpers.
. "$(dirname "${BASH_SOURCE[0]}")/../netns/lib_test.sh"
T_PEER=$USMC_BUILD/tests/preload/preload_peer
T_RUN=$USMC_BUILD/tools/usmc-run
T_ECHO=$USMC_SRC/tests/preload/echo_server.py # a plain echo server: ADDR PORT [N]
[ -x "$T_PEER" ] || t_fail "preload_peer is not built ($T_PEER)"
[ -x "$T_RUN" ] || t_fail "usmc-run is not in the build ($T_RUN)"
T_LIB=$("$T_RUN" --print-lib) || t_fail "usmc-run cannot find libusmc-preload.so"

# An ASan build's preload needs the ASan runtime loaded first; a
# non-ASan program (preload_peer is built with the same flags, so it is
# ASan too) then works. Prefix libasan when the library links it.
T_ASAN=
if ldd "$T_LIB" 2>/dev/null | grep -q libasan; then
	T_ASAN=$(ldd "$T_LIB" | awk '/libasan/ {print $3; exit}')
	# With libasan preloaded, LeakSanitizer also judges the programs
	# under test (bash, python, iperf3 ...) and fails them for their own
	# leaks. usmc's leaks are caught by its ASan unit/transport tests and
	# by valgrind (preload_test_memcheck), so leak checks are off here,
	# whatever the caller's ASAN_OPTIONS; later options override earlier.
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
fi

# Runs a command under usmc-run in a lab host, or on this host (HOST "-").
t_usmc() { # HOST STATSFILE PORTS CMD...
	local host=$1 stats=$2 ports=$3
	shift 3
	local env=(env USMC_STATS="$stats" USMC_SOFTROCE_PORT="${T_SRPORT:-4791}")
	[ -n "$T_ASAN" ] && env+=(LD_PRELOAD="$T_ASAN")
	if [ "$host" = - ]; then
		"${env[@]}" timeout "${T_TIMEOUT:-120}" "$T_RUN" -p "$ports" "$@"
	else
		t_exec "$host" "${env[@]}" timeout "${T_TIMEOUT:-120}" "$T_RUN" -p "$ports" "$@"
	fi
}

# t_stats FILE WANT: a stats line in FILE says WANT ("smcr=1 fallback=0
# failed=0"); a forked worker that exits normally adds its own line. Over
# shm (USMC_SHM=1) that line's SMC connections must all be SMC-D too.
t_stats() {
	local re="stats: .*$2" also=
	if [ "$USMC_SHM" = 1 ] && [[ $2 =~ smcr=([1-9][0-9]*) ]]; then
		re="$re.* smcd=${BASH_REMATCH[1]} "
		also=" and smcd=${BASH_REMATCH[1]} (USMC_SHM=1)"
	fi
	grep -q "$re" "$1" 2>/dev/null || {
		t_log "stats in $1: '$(grep 'stats:' "$1" 2>/dev/null | tr '\n' ' ')', want '$2'$also"
		return 1
	}
}

# What follows "smcr=1 fallback=0 failed=0 " in the stats line of a
# process with one SMC connection: over shm it must be SMC-D (a regex).
T_SMCD1=
[ "$USMC_SHM" = 1 ] && T_SMCD1='.*smcd=1 '

# t_no_reentry FILE...: every stats line in FILEs (one per usmc process
# that exited) says preload_reentries=0: no libc call the runtime made for
# itself came back through the preload's interposers, where only the
# usmc_in_runtime guard would have sent it on to libc (the runtime calls
# libc through its own table, runtime/usmc_real.h). No line at all fails.
t_no_reentry() {
	local n bad
	n=$(cat "$@" 2>/dev/null | grep -c 'stats: .* preload_reentries=[0-9]')
	bad=$(cat "$@" 2>/dev/null | grep 'stats: ' | grep -v ' preload_reentries=0$')
	if [ "$n" = 0 ] || [ -n "$bad" ]; then
		t_log "preload re-entries in $*: ${bad:-no stats line with preload_reentries}"
		return 1
	fi
}

# t_pair WHERE PORT CASE SERVER_ARG CLIENT_ARG WANT_SERVER WANT_CLIENT
#   [SERVER_PORTS CLIENT_PORTS]: one preload_peer server and client under
#   usmc-run; WHERE is "lab" (h1 <- h2) or "local" (both in h1: 127.0.0.1
#   <- 127.0.0.2; in the test's own namespace, so the TCP port and softroce's
#   UDP 4791 on loopback meet no other test running at the same time).
#   WANT_* is the stats line each side must print ("plain": run that side
#   without usmc-run). Returns 1 on any failure, after showing why.
t_pair() {
	local where=$1 port=$2 tc=$3 sarg=$4 carg=$5 wants=$6 wantc=$7
	local sports=${8:-$port} cports=${9:-$port}
	local d=$t_work/$tc-$where-$port shost=h1 chost=h2 addr=$T_H1 bindaddr=""
	local spid crc=0 src=0
	mkdir -p "$d"
	rm -f "$d"/*
	if [ "$where" = local ]; then
		chost=h1 addr=127.0.0.1 bindaddr=127.0.0.2
	fi
	if [ "$wants" = plain ]; then
		t_exec $shost timeout 120 "$T_PEER" server "$port" "$tc" $sarg >"$d/s.out" 2>"$d/s.err" &
	else
		t_usmc $shost "$d/s.stats" "$sports" "$T_PEER" server "$port" "$tc" $sarg >"$d/s.out" 2>"$d/s.err" &
	fi
	spid=$!
	busywait 10000 t_listening $shost "$port" || {
		kill $spid 2>/dev/null
		t_log "$tc: server did not listen: $(cat "$d/s.out" "$d/s.err")"
		return 1
	}
	if [ "$wantc" = plain ]; then
		t_exec $chost timeout 120 "$T_PEER" client "$addr" "$port" "$tc" "$carg" "$bindaddr"
	else
		t_usmc $chost "$d/c.stats" "$cports" "$T_PEER" client "$addr" "$port" "$tc" "$carg" "$bindaddr"
	fi >"$d/c.out" 2>"$d/c.err" || crc=$?
	[ $crc = 0 ] || kill $spid 2>/dev/null
	wait $spid || src=$?
	local bad=0
	[ $crc = 0 ] && [ $src = 0 ] || bad=1
	[ "$wants" = plain ] || t_stats "$d/s.stats" "$wants" || bad=1
	[ "$wantc" = plain ] || t_stats "$d/c.stats" "$wantc" || bad=1
	[ "$wants" = plain ] || t_no_reentry "$d/s.stats" || bad=1
	[ "$wantc" = plain ] || t_no_reentry "$d/c.stats" || bad=1
	if [ $bad = 1 ]; then
		t_log "$tc ($where): client exit $crc, server exit $src"
		sed 's/^/  client: /' "$d/c.out" "$d/c.err" | tail -15
		sed 's/^/  server: /' "$d/s.out" "$d/s.err" | tail -15
		return 1
	fi
	t_log "ok $tc ($where): $(head -1 "$d/c.out"); server: $(head -1 "$d/s.out"); usmc: server '$wants' client '$wantc'"
}

# t_strace_client TAG TIMEOUT MODE [ENV...] -- ARGS...: python3
# $t_work/client.py ARGS in h2 under strace -ff (MODE plain, or usmc: under
# usmc-run with ENV and USMC_STATS=$t_work/TAG/stats); the system calls
# its main thread made between two marker calls (access of
# /usmc-test-mark-begin and -end), counted by name, go to
# $t_work/TAG.count as "NAME COUNT" lines. Returns 1, after saying why,
# when the client fails or nothing lies between the markers.
t_strace_client() {
	local tag=$1 tmo=$2 mode=$3 d=$t_work/$1 env=() pre=() main
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	mkdir -p "$d"
	if [ "$mode" = usmc ]; then
		pre=(env "${env[@]}" USMC_STATS="$d/stats" "$T_RUN")
		[ -z "$T_ASAN" ] || pre=(env LD_PRELOAD="$T_ASAN" "${pre[@]}")
	fi
	t_exec h2 timeout "$tmo" strace -ff -qq -o "$d/t" "${pre[@]}" python3 "$t_work/client.py" "$@" \
		>"$d/out" 2>"$d/err" || {
		t_log "$tag: client failed: $(tail -n 5 "$d/out" "$d/err")"
		return 1
	}
	# the thread that made the marker calls: not "the first file (by
	# name) whose execve names python3", which depended on the order of
	# pids: a python3 that is a wrapper script (pyenv's shim) runs helper
	# processes whose execve names python3 too, and once the pids of one
	# run crossed 999 -> 1000 (or wrapped at pid_max) a helper's file
	# came first: "no calls between the markers", 3 runs in 200
	main=$(grep -l 'usmc-test-mark-begin' "$d"/t.*)
	[ "$(printf '%s\n' "$main" | grep -c .)" = 1 ] || {
		t_log "$tag: not one trace file with the begin marker: ${main:-none}"
		return 1
	}
	# under ASan its allocator maps memory for python's allocations
	sed -n '/usmc-test-mark-begin/,/usmc-test-mark-end/p' "$main" | sed '1d;$d' |
		sed -n 's/^\([a-z_0-9]*\)(.*/\1/p' | { if [ -n "$T_ASAN" ]; then
			grep -vxE 'mmap|munmap|madvise|mprotect'
		else cat; fi; } | sort | uniq -c | awk '{print $2, $1}' >"$t_work/$tag.count"
	[ -s "$t_work/$tag.count" ] || {
		t_log "$tag: no calls between the markers"
		return 1
	}
}
