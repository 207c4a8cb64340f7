# shellcheck shell=bash
# Shared by tests/netns/test_*.sh (sourced; not a test itself). ctest sets
# USMC_SRC and USMC_BUILD; run by hand they default to this tree and build/.
# Exit codes: 0 pass, 1 fail, 77 skip (the machine lacks a capability).
set -u

USMC_SRC=${USMC_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
USMC_BUILD=${USMC_BUILD:-$USMC_SRC/build}
T_PERF=$USMC_BUILD/tools/usmc-perf
T_DECODE=$USMC_BUILD/tools/usmc-decode
T_ICRC=$USMC_SRC/tests/netns/icrc_check.py
T_CONF=$USMC_SRC/tests/conformance/kernel-6.1
T_NAME=${0##*/}
T_NAME=${T_NAME%.sh}
# shellcheck source=netns/lib.sh
. "$USMC_SRC/netns/lib.sh"
# The two lab hosts share a kernel, so with the shm device on (the
# runtime's default) every usmc pair here would take SMC-D. The netns
# tests, and the preload tests' softroce runs (preload_test_NAME), are
# SMC-R's between the lab hosts (links, softroce, captures), so this pins
# USMC_SHM=0 unless the caller says otherwise (test_shm.sh sets 1, and so
# does the shm label's registration, preload_shm_NAME).
export USMC_SHM=${USMC_SHM:-0}
# the path usmc-perf reports for an SMC connection between the lab hosts,
# and the name the runtime's log gives it ("fd N: SMC-R established")
T_SMC_PATH=smcr T_SMC_NAME=SMC-R
[ "$USMC_SHM" = 1 ] && T_SMC_PATH=smcd T_SMC_NAME=SMC-D

t_log() { echo "$T_NAME: $*"; }
t_skip() {
	echo "$T_NAME: SKIP: $*"
	exit 77
}
t_fail() {
	echo "$T_NAME: FAIL: $*"
	exit 1
}

t_need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || t_skip "$c is not installed (ci/setup.sh installs it)"
	done
}

# t_json and t_json_all read usmc-perf's JSON with jq
t_need_cmd jq

t_need_perf() {
	[ -x "$T_PERF" ] || t_fail "usmc-perf is not built ($T_PERF missing): the build is incomplete"
}

t_lab=
t_work=
# t_cleanup [STATUS]: the exit trap (STATUS: the test's exit status, by
# default $?). USMC_TEST_KEEP=1 keeps the work directory (logs, stats,
# captures) for a look after the test, =fail only when STATUS is not 0.
t_cleanup() {
	local rc=${1:-$?}
	[ -n "$t_lab" ] && usmc_lab_down "$t_lab" >/dev/null 2>&1
	if [ -n "$t_work" ]; then
		if [ "${USMC_TEST_KEEP:-}" = 1 ] ||
			{ [ "${USMC_TEST_KEEP:-}" = fail ] && [ "$rc" != 0 ]; }; then
			echo "${T_NAME:-test}: kept $t_work" >&2
		else
			rm -rf "$t_work"
		fi
	fi
	return 0
}

# t_work_up [NAME]: $t_work, a directory of our own removed however the
# test ends. The usmc processes the test starts (exported, so in the lab's
# namespaces too: they share this filesystem) publish their usmc-stat
# tables in $t_work/stat, not in the shared /dev/shm, where those it kills
# would leave theirs behind (docs/stat.md).
t_work_up() {
	t_work=$(mktemp -d "/tmp/usmc-${1:-${T_NAME#test_}-$$}.XXXXXX") || t_fail "mktemp failed"
	trap t_cleanup EXIT
	trap 'exit 1' INT TERM
	export USMC_STAT_DIR=$t_work/stat
	mkdir "$USMC_STAT_DIR" || t_fail "cannot make $USMC_STAT_DIR"
}

# t_lab_up [LINKS]: a lab of our own, torn down however the test ends.
# With LINKS 2: T_H1_L2 and T_H2_L2 are the hosts' addresses on eth1 and
# T_PNET the USMC_PNET that makes the two links' devices alternates
# (usmc-lab exec sets it; t_exec does not).
t_lab_up() {
	local why
	why=$(usmc_lab_capability)
	[ -z "$why" ] || t_skip "cannot run network namespaces: $why"
	t_lab=${T_NAME#test_}-$$
	t_lab=${t_lab//_/-}
	t_work_up "$t_lab"
	usmc_lab_up "$t_lab" 10.77.0 "${1:-1}" || t_fail "could not build the lab"
	T_H1=$(usmc_lab_addr "$t_lab" h1)
	T_H2=$(usmc_lab_addr "$t_lab" h2)
	T_PNET=$(usmc_lab_pnet "${1:-1}")
	if ((${1:-1} > 1)); then
		T_H1_L2=$(usmc_lab_link_addr "$t_lab" h1 2)
		T_H2_L2=$(usmc_lab_link_addr "$t_lab" h2 2)
	fi
}

t_exec() { # HOST CMD...
	local ns
	ns=$(usmc_lab_ns "$t_lab" "$1")
	shift
	ip netns exec "$ns" "$@"
}

t_listening() { [ -n "$(t_exec "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ]; }

# t_server OUT PORT ARGS...: usmc-perf -s in h1 in the background
# ($t_spid), returns once it listens.
t_server() {
	local out=$1 port=$2
	shift 2
	t_exec h1 timeout "${T_TIMEOUT:-200}" "$@" >"$out" 2>"$out.err" &
	t_spid=$!
	busywait "${T_LISTEN_MS:-10000}" t_listening h1 "$port" || {
		cat "$out" "$out.err"
		t_fail "server did not listen on port $port: $*"
	}
}

# t_wait_server OUT: wait for the server; prints its output on failure.
t_wait_server() {
	local rc=0
	wait "$t_spid" || rc=$?
	if [ $rc != 0 ]; then
		sed 's/^/  server: /' "$1" "$1.err"
	fi
	return $rc
}

# t_json FILE KEY: KEY (a.b for nested) of the last JSON object in FILE,
# or nothing. jq, not python3: it starts in 2 ms against 400 ms, and the
# suite asks over a hundred times.
t_json() {
	jq -nrR --arg k "$2" 'last(inputs | sub("^\\s+"; "") | select(startswith("{"))
		| try fromjson catch empty) | try getpath($k | split(".")) catch null
		| if . == null then empty else . end' "$1" 2>/dev/null || :
}

# t_summary FILE KEY...: the KEYs of the summary on usmc-decode --json's
# last line, blank separated.
t_summary() {
	local f=$1
	shift
	tail -n 1 "$f" |
		jq -r '.summary as $s | [$ARGS.positional[] | $s[.] | tostring] | join(" ")' --args "$@"
}

# t_run_pair TAG PORT SERVER_ARGS... -- CLIENT_ARGS...: usmc-perf -s -1 in h1
# and usmc-perf -c in h2; outputs in $t_work/TAG.server and TAG.client
# (stderr in .err). Returns 1 if either side failed, after showing why.
t_run_pair() {
	local tag=$1 port=$2
	shift 2
	local sargs=() cargs=() crc=0 src=0
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		sargs+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	cargs=("$@")
	t_server "$t_work/$tag.server" "$port" "$T_PERF" -s -1 -p "$port" "${sargs[@]}"
	t_exec h2 timeout "${T_TIMEOUT:-200}" "$T_PERF" -c "$T_H1" -p "$port" "${cargs[@]}" \
		>"$t_work/$tag.client" 2>"$t_work/$tag.client.err" || crc=$?
	# A client that failed may leave the server waiting for it.
	[ $crc = 0 ] || kill "$t_spid" 2>/dev/null
	t_wait_server "$t_work/$tag.server" || src=$?
	if [ $crc != 0 ] || [ $src != 0 ]; then
		t_log "$tag: client exit $crc, server exit $src"
		sed 's/^/  client: /' "$t_work/$tag.client" "$t_work/$tag.client.err" | tail -20
		sed 's/^/  server: /' "$t_work/$tag.server" "$t_work/$tag.server.err" | tail -20
		return 1
	fi
}

# t_check_smcr TAG BYTES: both sides took SMC-R, verified, and agree on
# BYTES. Prints one summary line; returns 1 on any mismatch.
t_check_smcr() {
	local tag=$1 want=$2 side bad=0
	for side in client server; do
		local f=$t_work/$tag.$side
		local path verify bytes
		path=$(t_json "$f" path)
		verify=$(t_json "$f" verify)
		bytes=$(t_json "$f" bytes)
		if [ "$path" != smcr ] || [ "$verify" != ok ] || [ "$bytes" != "$want" ]; then
			t_log "$tag: $side reports path '$path', verify '$verify', bytes '$bytes' (want smcr, ok, $want)"
			bad=1
		fi
	done
	[ $bad = 0 ] || return 1
	t_log "ok $tag: $want bytes, $(t_json "$t_work/$tag.client" gbps) Gbit/s, path smcr, verify ok on both sides"
}

# t_json_all FILE KEY: KEY of every JSON object in FILE, one per line
# ("unparsable" for a line that starts one but does not parse).
t_json_all() {
	jq -nrR --arg k "$2" 'inputs | sub("^\\s+"; "") | select(startswith("{"))
		| try (fromjson | try getpath($k | split(".")) catch null
			| if . == null then "" else . end) catch "unparsable"' "$1" 2>/dev/null || :
}
