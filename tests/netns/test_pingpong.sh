#!/usr/bin/env bash
# 1-byte ping-pong over SMC-R, 10,000 round trips, every byte verified.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
t_lab_up
t_run_pair pp1 7070 --verify --json -- --pingpong 1 --iterations 10000 --verify --json --timeout 150 ||
	t_fail "ping-pong failed"
c=$t_work/pp1.client
for side in client server; do
	[ "$(t_json "$t_work/pp1.$side" path)" = smcr ] || t_fail "$side did not take SMC-R: $(cat "$t_work/pp1.$side")"
	[ "$(t_json "$t_work/pp1.$side" verify)" = ok ] || t_fail "$side verify is not ok"
done
[ "$(t_json "$c" round_trips)" = 10000 ] || t_fail "client did $(t_json "$c" round_trips) round trips, not 10000"
t_log "ok 10000 round trips of 1 byte: p50 $(t_json "$c" latency_us.p50) us, p99 $(t_json "$c" latency_us.p99) us, max $(t_json "$c" latency_us.max) us"
t_log PASS
