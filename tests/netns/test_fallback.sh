#!/usr/bin/env bash
# TCP fallback, seen from the usmc side:
#  1. the server is a plain TCP program (a socat echo server on port 7171,
#     not an SMC port): usmc-perf --raw --pingpong must fall back to TCP,
#     still verify every echoed byte, and name the reason PEERNOSMC;
#  2. the client is plain TCP (usmc-perf --tcp) against a usmc-perf server
#     on its SMC port: the server must fall back and say PEERNOSMC, and the
#     stream must still arrive byte-exact.
# Each case runs twice: text output (the "path:" line) and JSON.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss socat
t_need_perf
t_lab_up
PEERNOSMC_CODE=$((0x03010000))

# --- 1. plain TCP server ---
t_server "$t_work/socat" 7171 socat TCP-LISTEN:7171,fork,reuseaddr EXEC:cat
for mode in text json; do
	out=$t_work/raw.$mode
	extra=()
	[ $mode = json ] && extra=(--json)
	rc=0
	t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7171 --smc-ports 7070 --raw \
		--pingpong 64 --iterations 1000 --verify --timeout 30 "${extra[@]}" >"$out" 2>"$out.err" || rc=$?
	[ $rc = 0 ] || t_fail "client against socat: exit $rc: $(tail -5 "$out" "$out.err")"
	if [ $mode = text ]; then
		line=$(grep '^path:' "$out") || t_fail "no 'path:' line in: $(cat "$out")"
		[[ $line == *"TCP (fallback: PEERNOSMC"* ]] || t_fail "client path line: $line"
		t_log "ok client vs socat: $line"
	else
		[ "$(t_json "$out" path)" = tcp ] || t_fail "JSON path is '$(t_json "$out" path)'"
		[ "$(t_json "$out" fallback_reason)" = PEERNOSMC ] ||
			t_fail "JSON fallback_reason is '$(t_json "$out" fallback_reason)'"
		[ "$(t_json "$out" fallback_code)" = $PEERNOSMC_CODE ] ||
			t_fail "JSON fallback_code is '$(t_json "$out" fallback_code)'"
		[ "$(t_json "$out" verify)" = ok ] || t_fail "echoed bytes did not verify"
		[ "$(t_json "$out" round_trips)" = 1000 ] || t_fail "round trips: $(t_json "$out" round_trips)"
		t_log "ok client vs socat (JSON): path tcp, fallback_reason PEERNOSMC ($PEERNOSMC_CODE), 1000 verified round trips"
	fi
done
kill "$t_spid" 2>/dev/null
wait "$t_spid" 2>/dev/null

# --- 2. plain TCP client ---
for mode in text json; do
	extra=()
	[ $mode = json ] && extra=(--json)
	t_run_pair "tcpc-$mode" 7070 --verify "${extra[@]}" -- --tcp -n 1M --verify --json --timeout 30 ||
		t_fail "usmc-perf --tcp against a usmc-perf server failed"
	c=$t_work/tcpc-$mode.client s=$t_work/tcpc-$mode.server
	[ "$(t_json "$c" verify)" = ok ] && [ "$(t_json "$c" bytes)" = 1048576 ] ||
		t_fail "the --tcp client did not verify 1 MiB: $(cat "$c")"
	if [ $mode = text ]; then
		line=$(grep '^path:' "$s") || t_fail "no 'path:' line from the server: $(cat "$s")"
		[[ $line == *"TCP (fallback: PEERNOSMC"* ]] || t_fail "server path line: $line"
		t_log "ok server vs --tcp client: $line"
	else
		[ "$(t_json "$s" path)" = tcp ] || t_fail "server JSON path is '$(t_json "$s" path)'"
		[ "$(t_json "$s" fallback_reason)" = PEERNOSMC ] ||
			t_fail "server JSON fallback_reason is '$(t_json "$s" fallback_reason)'"
		[ "$(t_json "$s" verify)" = ok ] || t_fail "server verify is '$(t_json "$s" verify)'"
		t_log "ok server vs --tcp client (JSON): path tcp, fallback_reason PEERNOSMC, 1 MiB verified"
	fi
done
t_log PASS
