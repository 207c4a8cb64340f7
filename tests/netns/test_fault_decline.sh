#!/usr/bin/env bash
# The first link cannot come up: both lab hosts run usmc-perf over
# fault:softroce with every received RoCE packet dropped (USMC_FAULT
# 'drop:rate=1' from the start), so CONFIRM_LINK times out at both ends
# (docs/negotiation.md, "CLC handshake"). The server declines first: its
# QP gives up on the silent peer after softroce's retry_time (1.5 s; the
# kernel's clocks would wait the LLC's 2 s), then 1 s for a Decline; the
# client, in its 4 s wait, takes that Decline and sends none. Checked, for a stream each
# way: both ends end on TCP with exit 0 and every byte verified (a CLC
# Decline read as data would fail --verify), the client says PEERDECL with
# the server's diagnosis TIMEOUT_CL, the server says TIMEOUT_CL, and the
# client's run took at least the server's 2.5 s (a lower bound only: a
# busy machine makes it later, never earlier).
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
t_lab_up
export USMC_TRANSPORT=fault:softroce
export USMC_FAULT='drop:rate=1'
PEERDECL=$((0x05000000))
TIMEOUT_CL=$((0x02010000))
port=7300

now_ms() { echo $(($(date +%s%N) / 1000000)); }

for dir in up down; do
	port=$((port + 1))
	extra=()
	[ $dir = down ] && extra=(-R)
	t0=$(now_ms)
	t_run_pair "$dir" $port --verify --json -t 60 -- -n 1M --verify --json -t 60 "${extra[@]}" ||
		t_fail "$dir: usmc-perf pair failed"
	ms=$(($(now_ms) - t0))
	c=$t_work/$dir.client s=$t_work/$dir.server
	for f in "$c" "$s"; do
		[ "$(t_json "$f" path)" = tcp ] && [ "$(t_json "$f" verify)" = ok ] &&
			[ "$(t_json "$f" bytes)" = 1048576 ] ||
			t_fail "$dir: $(basename "$f"): want path tcp, verify ok, 1048576 bytes: $(cat "$f")"
	done
	[ "$(t_json "$c" fallback_code)" = $PEERDECL ] && [ "$(t_json "$c" peer_diagnosis)" = $TIMEOUT_CL ] ||
		t_fail "$dir: client fallback $(t_json "$c" fallback_reason) ($(t_json "$c" fallback_code)), peer diagnosis $(t_json "$c" peer_diagnosis): want PEERDECL with TIMEOUT_CL"
	[ "$(t_json "$s" fallback_code)" = $TIMEOUT_CL ] ||
		t_fail "$dir: server fallback $(t_json "$s" fallback_reason) ($(t_json "$s" fallback_code)): want TIMEOUT_CL"
	[ $ms -ge 2400 ] || t_fail "$dir: the pair took $ms ms: the server declined before its 1.5 s + 1 s"
	t_log "ok $dir: both ends TCP, 1 MiB verified, client PEERDECL (TIMEOUT_CL), server TIMEOUT_CL, $ms ms"
done
t_log PASS
