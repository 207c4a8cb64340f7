#!/usr/bin/env bash
# fallback.sh: what usmc costs a connection it does not accelerate.
# The manual is --help.
set -u
prog=${0##*/}
src=$(cd "$(dirname "$0")/../.." && pwd)

usage() {
	cat <<USAGE
NAME
    $prog - redis-benchmark through usmc-run against a plain redis-server,
    side by side with plain TCP in the same run

SYNOPSIS
    $prog [OPTIONS]

DESCRIPTION
    Starts a plain redis-server (never under usmc) and runs
    redis-benchmark -q -t set, then -t get, -c 50 against it, once plain
    and once under tools/usmc-run, alternating (ABBA: plain first in odd
    rounds, usmc first in even ones), --runs rounds. usmc cases:

      fallback   the usmc default: with the SMC TCP option the SYN offers
                 SMC, the plain server's SYN-ACK does not, and the
                 connection falls back to TCP before any SMC byte
                 (in explicit mode, where the option cannot load: no rule
                 names the port, the same fallback without the option)
      excluded   a rule ("tcp port P") excludes the destination: usmc
                 never tries SMC on these sockets

    Every usmc run's USMC_STATS line must say smcr=0 failed=0 and count
    its connections as fallbacks (a rule's "tcp" is counted as one too);
    a run that does not is reported with "ok": false, never silently
    counted.

    Prints one JSON line per host, case, -P and test on stdout:
      {"path":"fallback","host":"loopback","case":"fallback","workload":
       "redis GET -P 1","unit":"req/s","tcp":MEDIAN,"usmc":MEDIAN,
       "ratio":MEDIAN,"ratio_min":MIN,"ratio_max":MAX,
       "cpu_unit":"client CPU us/request","cpu_tcp":MEDIAN,
       "cpu_usmc":MEDIAN,"cpu_ratio":MEDIAN,"cpu_ratio_min":MIN,
       "cpu_ratio_max":MAX,"runs":N,"tcp_runs":[...],"usmc_runs":[...],
       "ok":true}
    ratio is the median of each round's usmc/tcp rate (the two runs of a
    round are next to each other in time, so load changes hit both); min
    and max are the spread. cpu_* is the client's user + system time per
    request (bash's time, whole run): what usmc adds to the client, less
    sensitive than the rate to other load on the machine (a rate ratio
    on a busy 2-core machine swings by tens of percent). Progress lines
    go to stderr, with the load average. Numbers for notes, never
    pass/fail.

OPTIONS
    --build DIR      build tree with tools/usmc-run (default \$USMC_BUILD,
                     else $src/build)
    --host H         loopback (both on 127.0.0.1, this namespace), lab
                     (server in h1, client in h2 of a two-host lab,
                     docs/lab.md), or both (default loopback)
    --case C         fallback, excluded or both (default both)
    -P LIST          redis-benchmark pipelines, comma separated
                     (default 1,16)
    -n N             requests per test (default 200000)
    -c N             clients (default 50)
    -d N             value size in bytes (default: redis-benchmark's, 3)
    --runs N         rounds, each one plain and one usmc run (default 3)
    --port N         redis-server port (default 7379)
    --keep DIR       keep every output in DIR
    -h, --help       this manual

EXIT STATUS
    0 when every run ran (whatever the speed), 1 when one failed, 2 for a
    usage error, 77 when something needed is missing (said why).

EXAMPLE
    $prog --host both --runs 5 -n 100000
USAGE
}

build=${USMC_BUILD:-$src/build} hosts=loopback cases="fallback excluded"
plist=1,16 reqs=200000 clients=50 dsize='' runs=3 port=7379 keep=''
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=${2:?}; shift ;;
	--host) case ${2:?} in both) hosts="loopback lab" ;; loopback | lab) hosts=$2 ;; *) echo "$prog: --host: loopback, lab or both" >&2; exit 2 ;; esac; shift ;;
	--case) case ${2:?} in both) cases="fallback excluded" ;; fallback | excluded) cases=$2 ;; *) echo "$prog: --case: fallback, excluded or both" >&2; exit 2 ;; esac; shift ;;
	-P) plist=${2:?}; shift ;;
	-n) reqs=${2:?}; shift ;;
	-c) clients=${2:?}; shift ;;
	-d) dsize=${2:?}; shift ;;
	--runs) runs=${2:?}; shift ;;
	--port) port=${2:?}; shift ;;
	--keep) keep=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$prog: unknown option '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
case $reqs$clients$runs$port${dsize:-0}${plist//,/} in *[!0-9]*) echo "$prog: -n, -c, -d, --runs, --port and -P take numbers" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] || { echo "$prog: --runs must be at least 1" >&2; exit 2; }

for c in redis-server redis-benchmark redis-cli python3 timeout; do
	command -v $c >/dev/null || { echo "$prog: $c is not installed (ci/setup.sh installs it)" >&2; exit 77; }
done
RUN=$build/tools/usmc-run
[ -x "$RUN" ] && "$RUN" --print-lib >/dev/null 2>&1 || { echo "$prog: no usable $RUN (build first: ci/build.sh)" >&2; exit 77; }

# shellcheck source=../../netns/lib.sh
. "$src/netns/lib.sh"

work=$(mktemp -d /tmp/usmc-fallback.XXXXXX) || exit 1
lab=
cleanup() {
	[ -z "$spid" ] || { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
	[ -z "$lab" ] || usmc_lab_down "$lab" >/dev/null 2>&1
	if [ -n "$keep" ]; then
		mkdir -p "$keep" && cp -r "$work"/. "$keep"/ && echo "$prog: outputs kept in $keep" >&2
	fi
	rm -rf "$work"
}
spid=
trap cleanup EXIT
trap 'exit 1' INT TERM
failed=0
say() { echo "$prog: $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# on HOST CMD...: runs CMD where HOST's programs run (srv or cli)
on() {
	local h=$1
	shift
	if [ -z "$lab" ]; then
		"$@"
	elif [ "$h" = srv ]; then
		ip netns exec "$NS1" "$@"
	else
		# USMC_CGROUP=private: the SMC TCP option loads under ip netns
		# exec, as usmc-lab exec sets it
		ip netns exec "$NS2" env USMC_CGROUP=private "$@"
	fi
}

server_up() {
	on srv timeout 3600 redis-server --port "$port" --bind "$SADDR" --protected-mode no \
		--save '' --appendonly no --dir "$work" >"$work/server.out" 2>&1 &
	spid=$!
	busywait 15000 on cli redis-cli -h "$SADDR" -p "$port" ping >/dev/null 2>&1 ||
		{ say "redis-server did not answer: $(tail -3 "$work/server.out")"; return 1; }
}
server_down() {
	on cli redis-cli -h "$SADDR" -p "$port" shutdown nosave >/dev/null 2>&1
	wait "$spid" 2>/dev/null
	spid=
}

# bench MODE CASE P TEST TAG: one redis-benchmark run of one test; its
# rate in TAG.csv ("TEST,rps"), the client's CPU seconds in TAG.cpu
bench() {
	local mode=$1 cs=$2 p=$3 t=$4 tag=$5 pre=() st TIMEFORMAT='%3U %3S'
	if [ "$mode" = usmc ]; then
		pre=(env USMC_STATS="$work/$tag.stats")
		[ "$cs" = excluded ] && pre+=(USMC_RULES="tcp port $port")
		pre+=("$RUN")
	fi
	# the client's user and system time, through timeout and ip netns
	# exec (each waits for its child)
	# shellcheck disable=SC2086
	if ! { time on cli timeout 900 "${pre[@]}" redis-benchmark -h "$SADDR" -p "$port" -q --csv \
		-t "$t" -c "$clients" -n "$reqs" -P "$p" ${dsize:+-d $dsize} \
		>"$work/$tag.out" 2>"$work/$tag.err"; } 2>"$work/$tag.cpu" ||
		grep -qi error "$work/$tag.out" "$work/$tag.err"; then
		say "$tag failed: $(tail -3 "$work/$tag.out" "$work/$tag.err")"
		return 1
	fi
	sed -n 's/^"\([A-Z]*\)","\([0-9.]*\)".*/\1,\2/p' "$work/$tag.out" >"$work/$tag.csv"
	[ "$(wc -l <"$work/$tag.csv")" = 1 ] || { say "$tag: no rate in $(head -3 "$work/$tag.out")"; return 1; }
	if [ "$mode" = usmc ]; then
		st=$(grep 'stats:' "$work/$tag.stats" 2>/dev/null)
		if ! [[ $st =~ stats:\ smcr=0\ fallback=[1-9][0-9]*\ failed=0 ]]; then
			say "$tag: unexpected usmc stats: ${st:-none}"
			echo bad >"$work/$tag.bad"
		fi
	fi
}

run_host() {
	local h=$1 cs p r tag order m
	if [ "$h" = lab ]; then
		local why
		why=$(usmc_lab_capability)
		[ -z "$why" ] || { say "cannot run the lab: $why"; exit 77; }
		lab=fbbench-$$
		usmc_lab_up "$lab" 10.77.0 >/dev/null || { say "could not build lab $lab"; lab=; return 1; }
		NS1=$(usmc_lab_ns "$lab" h1) NS2=$(usmc_lab_ns "$lab" h2)
		SADDR=$(usmc_lab_addr "$lab" h1)
	else
		SADDR=127.0.0.1
	fi
	server_up || { failed=1; return; }
	for cs in $cases; do
		for p in ${plist//,/ }; do
			for r in $(seq "$runs"); do
				order="tcp usmc"
				[ $((r % 2)) = 1 ] || order="usmc tcp"
				for t in set get; do
					for m in $order; do
						tag=$h-$cs-P$p-$t-$m-$r
						say "$tag (load $(load))"
						bench "$m" "$cs" "$p" "$t" "$tag" || failed=1
					done
				done
			done
			python3 - "$work" "$h" "$cs" "$p" "$runs" "$reqs" <<'PY' || failed=1
import json, os, statistics as st, sys
work, host, case, p, runs, reqs = sys.argv[1:4] + [sys.argv[4], int(sys.argv[5]), int(sys.argv[6])]
def one(t, mode, r):
    """(rate, client CPU us per request) of one run, or None"""
    tag = f"{work}/{host}-{case}-P{p}-{t}-{mode}-{r}"
    try:
        with open(tag + ".csv") as f:
            rate = float(f.read().split(",")[1])
        with open(tag + ".cpu") as f:
            cpu = sum(float(x) for x in f.read().split()[-2:])
        return rate, cpu * 1e6 / reqs
    except (OSError, ValueError, IndexError):
        return None
def r4(x):
    return round(x, 4)
for t in ("set", "get"):
    tcp, usmc, ratios, ctcp, cusmc, cratios, ok = [], [], [], [], [], [], True
    for r in range(1, runs + 1):
        a, b = one(t, "tcp", r), one(t, "usmc", r)
        if os.path.exists(f"{work}/{host}-{case}-P{p}-{t}-usmc-{r}.bad"):
            ok = False
        if not a or not b:
            ok = False
            continue
        tcp.append(a[0]); usmc.append(b[0]); ratios.append(b[0] / a[0])
        ctcp.append(a[1]); cusmc.append(b[1]); cratios.append(b[1] / a[1])
    if not ratios:
        continue
    print(json.dumps({"path": "fallback", "host": host, "case": case,
        "workload": f"redis {t.upper()} -P {p}", "unit": "req/s",
        "tcp": st.median(tcp), "usmc": st.median(usmc),
        "ratio": r4(st.median(ratios)), "ratio_min": r4(min(ratios)), "ratio_max": r4(max(ratios)),
        "cpu_unit": "client CPU us/request",
        "cpu_tcp": r4(st.median(ctcp)), "cpu_usmc": r4(st.median(cusmc)),
        "cpu_ratio": r4(st.median(cratios)), "cpu_ratio_min": r4(min(cratios)),
        "cpu_ratio_max": r4(max(cratios)),
        "runs": len(ratios), "tcp_runs": tcp, "usmc_runs": usmc, "ok": ok}), flush=True)
PY
		done
	done
	server_down
	if [ -n "$lab" ]; then
		usmc_lab_down "$lab" >/dev/null 2>&1
		lab=
	fi
}

say "start, load $(load), $(nproc) cpus"
for h in $hosts; do
	run_host "$h"
done
say "done, load $(load)"
exit $failed
