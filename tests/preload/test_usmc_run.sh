#!/usr/bin/env bash
# usmc-run itself (no root, no lab): the manual, usage errors, the library
# it finds, LD_PRELOAD appended, the options in the environment, the
# program's exit status and argument passing.
. "$(dirname "$0")/lib_preload.sh"
fails=0
t_work_up run-test
# an ASan build's library needs the ASan runtime first in LD_PRELOAD
PRE=${T_ASAN:-/lib/x86_64-linux-gnu/libc.so.6}
R=(env LD_PRELOAD="$PRE" "$T_RUN")
check() { # DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then t_log "ok $what"; else
		t_log "FAILED: $what"
		fails=$((fails + 1))
	fi
}
out=$("$T_RUN" --help) && [[ $out == *SYNOPSIS* ]] && [[ $out == *--smc-ports* ]] && [[ $out == *"EXIT STATUS"* ]]
check "--help prints the manual, exit 0" test $? = 0
rc=0
"$T_RUN" >/dev/null 2>"$t_work/err" || rc=$?
check "no PROGRAM: exit 2 with a message" test $rc = 2 -a -s "$t_work/err"
rc=0
"$T_RUN" --bogus true 2>"$t_work/err" || rc=$?
check "unknown option: exit 2, names it" grep -q "unknown option '--bogus'" "$t_work/err"
rc=0
"$T_RUN" -p 2>/dev/null || rc=$?
check "-p without a value: exit 2" test $rc = 2
rc=0
"$T_RUN" -P 47x true 2>/dev/null || rc=$?
check "a bad softroce port: exit 2" test $rc = 2
check "--print-lib names an existing library" test -f "$("$T_RUN" --print-lib)"
rc=0
"$T_RUN" --lib /nonexistent/lib.so true 2>/dev/null || rc=$?
check "--lib to a missing file: exit 2" test $rc = 2
env_out=$("${R[@]}" -p 7070,8000-8010 -t softroce -P 4999 -d --stats=/tmp/x \
	sh -c 'echo "$LD_PRELOAD|$USMC_SMC_PORTS|$USMC_TRANSPORT|$USMC_SOFTROCE_PORT|$USMC_DEBUG|$USMC_STATS"')
check "environment: $env_out" test "$env_out" = "$PRE:$T_LIB|7070,8000-8010|softroce|4999|1|/tmp/x"
rc=0
"${R[@]}" -p 1 sh -c 'exit 42' || rc=$?
check "the program's exit status (42)" test $rc = 42
rc=0
"${R[@]}" -p 1 /nonexistent/program 2>/dev/null || rc=$?
check "a missing program: 127" test $rc = 127
args=$("${R[@]}" -p 1 -- printf '%s|' "a b" "-p" "")
check "arguments passed as given: $args" test "$args" = "a b|-p||"
[ $fails = 0 ] || t_fail "$fails check(s) failed"
t_log PASS
