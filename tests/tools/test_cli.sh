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

# usage errors: TOOL ARGS... (each a usage error)
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

if [ $fails != 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo "PASS: ${#tools[@]} tools: --help, --version; $n usage errors, each one line and the Try line, exit 2"
