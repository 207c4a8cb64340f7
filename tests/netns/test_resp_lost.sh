#!/usr/bin/env bash
# The client's CONFIRM_LINK response never reaches the server: h1 (server)
# runs softroce with icrc=strict, h2 (client) sends like kernel rxe
# (ipid=random: nonzero IPv4 IDs, which a strict receiver drops), so h1
# hears nothing of h2 over RoCE while h2 hears h1. The server's CONFIRM_LINK
# is never ACKed: its QP gives up after softroce's retry_time (1.5 s), and
# it declines TIMEOUT_CL 1 s later (2.5 s; without retry_time, 2 s + 1 s);
# the client, whose response is never ACKed either and which waits for the
# server's ADD_LINK and then 1 s for a Decline before it uses the link
# (smcr_clnt_conf_first_link), takes that Decline and sends none.
# Checked, for a stream each way: both ends on TCP, exit 0, every byte
# verified (a Decline read as data fails --verify), client PEERDECL with
# the server's diagnosis TIMEOUT_CL, server TIMEOUT_CL, and the client's
# run between 2.4 s and T_RESP_LOST_MS (default 6000: 3 s plus room for a
# loaded machine; the old client ran ~32 s). Every process is bounded by
# timeout, so a hang fails the test.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
t_need_raw() {
	t_exec h2 python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)' 2>/dev/null ||
		t_skip "no raw sockets (CAP_NET_RAW) in the lab: ipid=random cannot send"
}
t_lab_up
t_need_raw
PEERDECL=$((0x05000000))
TIMEOUT_CL=$((0x02010000))
max_ms=${T_RESP_LOST_MS:-6000}
port=7310

now_ms() { echo $(($(date +%s%N) / 1000000)); }

for dir in up down; do
	port=$((port + 1))
	extra=()
	[ $dir = down ] && extra=(-R)
	s=$t_work/$dir.server c=$t_work/$dir.client
	t_exec h1 env USMC_TRANSPORT_OPTIONS=icrc=strict timeout 30 "$T_PERF" -s -1 -p $port \
		--verify --json --timeout 20 >"$s" 2>"$s.err" &
	spid=$!
	busywait 10000 t_listening h1 $port || t_fail "server did not listen: $(cat "$s.err")"
	crc=0 src=0
	t0=$(now_ms)
	t_exec h2 env USMC_TRANSPORT_OPTIONS=ipid=random timeout 30 "$T_PERF" -c "$T_H1" -p $port \
		-n 1M --verify --json --timeout 20 "${extra[@]}" >"$c" 2>"$c.err" || crc=$?
	ms=$(($(now_ms) - t0))
	wait $spid || src=$?
	if [ $crc != 0 ] || [ $src != 0 ]; then
		sed 's/^/  client: /' "$c" "$c.err" | tail -8
		sed 's/^/  server: /' "$s" "$s.err" | tail -8
		t_fail "$dir: client exit $crc, server exit $src (124: killed by timeout) after $ms ms"
	fi
	for f in "$c" "$s"; do
		[ "$(t_json "$f" path)" = tcp ] && [ "$(t_json "$f" verify)" = ok ] &&
			[ "$(t_json "$f" bytes)" = 1048576 ] ||
			t_fail "$dir: $(basename "$f"): want path tcp, verify ok, 1048576 bytes: $(cat "$f")"
	done
	[ "$(t_json "$c" fallback_code)" = $PEERDECL ] && [ "$(t_json "$c" peer_diagnosis)" = $TIMEOUT_CL ] ||
		t_fail "$dir: client fallback $(t_json "$c" fallback_reason) ($(t_json "$c" fallback_code)), peer diagnosis $(t_json "$c" peer_diagnosis): want PEERDECL with TIMEOUT_CL"
	[ "$(t_json "$s" fallback_code)" = $TIMEOUT_CL ] ||
		t_fail "$dir: server fallback $(t_json "$s" fallback_reason) ($(t_json "$s" fallback_code)): want TIMEOUT_CL"
	[ $ms -ge 2400 ] && [ $ms -le "$max_ms" ] ||
		t_fail "$dir: the client took $ms ms (want 2400..$max_ms)"
	t_log "ok $dir: both ends TCP, 1 MiB verified, client PEERDECL (TIMEOUT_CL), server TIMEOUT_CL, client $ms ms"
done
t_log PASS
