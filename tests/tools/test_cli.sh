#!/usr/bin/env bash
# Every tool the same way: --help exits 0 with a manual (NAME, SYNOPSIS);
# --version prints "TOOL (usmc) VERSION[ (git COMMIT)]" and exits 0; an
# unknown option, a bad value or a stray argument prints one line naming
# the tool and then "Try 'TOOL --help' for more information.", on stderr
# only, and exits 2 (never zeros and 0, as "usmc-srbench -n abc" did);
# usmc-run refuses rules and settings given on its command line that the
# runtime would refuse, before the program starts.
set -uo pipefail
b=${USMC_BUILD:?}/tools ver=${USMC_VERSION:?}
fails=0
errf=$(mktemp)
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
tools=(usmc-run usmc-netns usmc-perf usmc-rules usmc-stat usmc-check usmc-decode usmc-smcctl
	usmc-srbench usmc-shmbench usmc-memcpy usmc-bench)
for t in "${tools[@]}"; do
	[ -x "$b/$t" ] || {
		fail "$t is not built"
		continue
	}
	out=$(timeout 20 "$b/$t" --help 2>/dev/null)
	rc=$?
	[ $rc = 0 ] || fail "$t --help exited $rc"
	[ "$(head -1 <<<"$out")" = NAME ] && grep -qx SYNOPSIS <<<"$out" ||
		fail "$t --help is not a manual (NAME, SYNOPSIS)"
	out=$(timeout 20 "$b/$t" --version 2>&1)
	rc=$?
	[ $rc = 0 ] || fail "$t --version exited $rc"
	[[ $out =~ ^$t\ \(usmc\)\ ${ver//./\\.}(\ \(git\ [^\)]+\))?$ ]] ||
		fail "$t --version printed '$out'"
done

# usage errors: TOOL ARGS... (each a usage error; usmc-perf: -t, a
# duration, excludes the counts -n and --iterations)
bad=(
	"usmc-run --bogus"
	"usmc-run -c /nonexistent/usmc.conf true"
	"usmc-run -r bogus true"
	"usmc-run -p 80-x true"
	"usmc-run -O mtu=99 true"
	"usmc-netns --bogus"
	"usmc-perf --bogus"
	"usmc-perf -c 127.0.0.1 -P abc"
	"usmc-perf -s stray"
	"usmc-perf -c 127.0.0.1 -t 2 -n 1M"
	"usmc-perf -c 127.0.0.1 --pingpong 64 -t 2 --iterations 100"
	"usmc-perf -c 127.0.0.1 --iterations 100"
	"usmc-perf -c 127.0.0.1 -t 0"
	"usmc-perf -c 127.0.0.1 -t abc"
	"usmc-perf -c 127.0.0.1 -i 0"
	"usmc-perf -c 127.0.0.1 -i 1s"
	"usmc-perf -s -t 2"
	"usmc-perf -s -i 1"
	"usmc-perf -c 127.0.0.1 --tcp --require-smcr"
	"usmc-perf -c 127.0.0.1 --conns 4 --require-smc"
	"usmc-perf -c 127.0.0.1 --timeout 0"
	"usmc-perf -c 127.0.0.1 -B 10.0.0.x"
	"usmc-perf -s -B nowhere"
	"usmc-perf -c 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"
	"usmc-rules --bogus"
	"usmc-rules"
	"usmc-stat --bogus"
	"usmc-stat stray"
	"usmc-stat -i 0"
	"usmc-stat -c 3"
	"usmc-stat -s -l"
	"usmc-check --bogus"
	"usmc-check"
	"usmc-check 10.0.0.1"
	"usmc-check 10.0.0.1:abc"
	"usmc-check -t 0 10.0.0.1:80"
	"usmc-check 10.0.0.1:80 stray"
	"usmc-decode --bogus"
	"usmc-decode --roce-port 0 x.pcap"
	"usmc-decode"
	"usmc-smcctl bogus"
	"usmc-smcctl"
	"usmc-srbench --bogus"
	"usmc-srbench -n abc"
	"usmc-srbench -w 0"
	"usmc-srbench -w 2M"
	"usmc-shmbench --bogus"
	"usmc-shmbench -n abc"
	"usmc-shmbench -n 0"
	"usmc-memcpy --bogus"
	"usmc-memcpy -b 12x"
	"usmc-memcpy -t abc"
	"usmc-memcpy -b 64K -s 100K"
	"usmc-bench --bogus"
	"usmc-bench -n abc"
)
n=0
for c in "${bad[@]}"; do
	read -r -a argv <<<"$c"
	t=${argv[0]}
	out=$(timeout 20 "$b/$t" "${argv[@]:1}" 2>/dev/null)
	err=$(timeout 20 "$b/$t" "${argv[@]:1}" 2>&1 >/dev/null)
	rc=$?
	n=$((n + 1))
	[ $rc = 2 ] || {
		fail "'$c' exited $rc, not 2"
		continue
	}
	[ -z "$out" ] || fail "'$c' printed on stdout: $out"
	lines=$(wc -l <<<"$err")
	last=$(tail -1 <<<"$err")
	[ "$lines" = 2 ] || fail "'$c': $lines lines on stderr, not 2: $err"
	[ "$last" = "Try '$t --help' for more information." ] || fail "'$c' ends with '$last'"
	[[ $(head -1 <<<"$err") == "$t: "* ]] || fail "'$c': the first line does not name $t: $err"
done
# and what is not an error stays one: an empty port list means none
# (an ASan build's preload needs the ASan runtime loaded first, as the
# preload label does)
asan=()
lib=$("$b/usmc-run" --print-lib 2>/dev/null || true)
deps=$( [ -n "$lib" ] && ldd "$lib" 2>/dev/null || true)
if grep -q libasan <<<"$deps"; then
	asan=(env "LD_PRELOAD=$(awk '/libasan/ {print $3; exit}' <<<"$deps")"
		"ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
fi
out=$(timeout 20 "${asan[@]}" "$b/usmc-run" -p "" true 2>&1) || fail "usmc-run -p '' true: $out"
out=$(timeout 20 "${asan[@]}" "$b/usmc-run" -p 7070,8000-8010 -r "tcp port 9" true 2>&1) ||
	fail "usmc-run with good -p and -r: $out"

# usmc-perf: a client that made no connection prints the error alone (no
# block of zero results), in text and in JSON, and exits 1; --require-smcr
# is taken (it only judges connections that were made)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for req in "" --require-smcr --require-smc; do
	out=$(timeout 20 "$b/usmc-perf" -c 127.0.0.1 -p "$port" -t 1 -i 0.5 $req 2>"$errf")
	rc=$?
	err=$(cat "$errf")
	[ $rc = 1 ] || fail "usmc-perf client to a closed port $req exited $rc, not 1"
	[ -z "$out" ] || fail "usmc-perf client to a closed port $req printed a result: $out"
	[ "$err" = "usmc-perf: connect to 127.0.0.1:$port: Connection refused" ] ||
		fail "usmc-perf client to a closed port $req: stderr '$err'"
	out=$(timeout 20 "$b/usmc-perf" -c 127.0.0.1 -p "$port" --json $req 2>"$errf")
	rc=$?
	[ $rc = 1 ] || fail "usmc-perf --json client to a closed port $req exited $rc, not 1"
	[ -s "$errf" ] && fail "usmc-perf --json to a closed port $req wrote on stderr: $(cat "$errf")"
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert sorted(d) == ["error", "error_at", "error_mono", "ok", "role"], d
assert d["role"] == "client" and d["ok"] is False, d
assert d["error"] == "connect to 127.0.0.1:%s: Connection refused" % sys.argv[2], d
assert d["error_at"] > 0 and d["error_mono"] > 0, d
' "$out" "$port" || fail "usmc-perf --json to a closed port $req printed '$out'"
done
# the watchdog ends the server through exit(), so the runtime removes the
# process's usmc-stat table (it was _exit, which left it behind)
stat_dir=$(mktemp -d)
USMC_STAT_DIR=$stat_dir "$b/usmc-perf" -s -1 -p "$port" --timeout 1 >/dev/null 2>&1 &
spid=$!
seen=0
for _ in $(seq 50); do
	[ -e "$stat_dir/usmc-stat.$spid" ] && seen=1 && break
	sleep 0.05
done
wait $spid
rc=$?
[ $rc = 1 ] || fail "usmc-perf -s -1 --timeout 1 exited $rc, not 1"
[ $seen = 1 ] || fail "usmc-perf -s never published $stat_dir/usmc-stat.$spid"
[ -e "$stat_dir/usmc-stat.$spid" ] && fail "usmc-perf -s timed out and left $stat_dir/usmc-stat.$spid"
rm -rf "$stat_dir" "$errf"

if [ $fails != 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "PASS: ${#tools[@]} tools: --help, --version; $n usage errors, each one line and the Try line, exit 2"
