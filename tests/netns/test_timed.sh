#!/usr/bin/env bash
# usmc-perf's iperf3/sockperf options over SMC-R in the two-host lab:
#  1. -t 2 -i 0.5 (a duration, interval lines) for a stream, a reverse
#     stream, a bidirectional one and a ping-pong, every byte verified:
#     four interval lines (text) or four "intervals" records (JSON), each
#     with data (--bidi: each direction on its own, both with data), and
#     both ends agree on the count;
#  2. --require-smcr exits 0 over SMC-R and 1, naming the fallback, when
#     the connection fell back to TCP (client and server -1 alike);
#     --require-smc takes SMC-D (shm) and --require-smcr does not.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
t_lab_up

# intervals FILE COUNT WHAT: the JSON result's "intervals" are COUNT
# back-to-back records of 0.5 s from 0, each with data (WHAT: bytes or
# round_trips), together no more than the result's total.
intervals() {
	python3 - "$1" "$2" "$3" <<'EOF'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")][-1]
n, what = int(sys.argv[2]), sys.argv[3]
iv = r["intervals"]
assert len(iv) == n, "%d intervals, not %d: %s" % (len(iv), n, iv)
for i, v in enumerate(iv):
    assert abs(v["start"] - 0.5 * i) < 1e-6 and abs(v["end"] - 0.5 * (i + 1)) < 1e-6, v
    assert v[what] > 0, "interval %d has no %s: %s" % (i, what, v)
    if "tx" in r and what == "bytes":
        # --bidi: each direction, summing to the interval's bytes
        assert v["tx"]["bytes"] > 0 and v["rx"]["bytes"] > 0, v
        assert v["tx"]["bytes"] + v["rx"]["bytes"] == v["bytes"], v
total = r["round_trips" if what == "round_trips" else "bytes"]
assert sum(v[what] for v in iv) <= total, (iv, total)
EOF
}

# --- 1. timed runs ---
for mode in stream reverse bidi pingpong; do
	case $mode in
	stream) args=() ;;
	reverse) args=(-R) ;;
	bidi) args=(--bidi) ;;
	pingpong) args=(--pingpong 64) ;;
	esac
	for fmt in text json; do
		tag=$mode-$fmt
		j=()
		[ $fmt = json ] && j=(--json)
		t_run_pair "$tag" 7070 --verify --json -- "${args[@]}" -t 2 -i 0.5 --verify "${j[@]}" ||
			t_fail "$tag: the timed run failed"
		c=$t_work/$tag.client s=$t_work/$tag.server
		# every JSON line, the server's and a --json client's, is
		# valid JSON on its own
		for f in "$s" $([ $fmt = json ] && echo "$c"); do
			grep '^{' "$f" | jq -R 'fromjson' >/dev/null 2>&1 ||
				t_fail "$tag: invalid JSON in $f: $(cat "$f")"
		done
		[ "$(t_json "$s" path)" = smcr ] && [ "$(t_json "$s" verify)" = ok ] ||
			t_fail "$tag: server path '$(t_json "$s" path)', verify '$(t_json "$s" verify)'"
		if [ $fmt = text ]; then
			lines=$(grep -c '^\[ *[0-9.]*- *[0-9.]* s\]' "$c")
			[ "$lines" = 4 ] || t_fail "$tag: $lines interval lines, not 4: $(cat "$c")"
			if [ $mode = bidi ]; then
				# each direction with its own rate, both moving
				lines=$(grep -cE '^\[.*s\] send +[0-9.]+ MiB +[0-9.]+ Gbit/s +receive +[0-9.]+ MiB +[0-9.]+ Gbit/s$' "$c")
				[ "$lines" = 4 ] || t_fail "$tag: $lines send/receive lines, not 4: $(cat "$c")"
				grep -E '^\[.*s\] send' "$c" | grep -qE ' 0\.0 MiB' &&
					t_fail "$tag: a direction moved nothing in an interval: $(cat "$c")"
			fi
			grep -qx 'verify: ok' "$c" || t_fail "$tag: client verify: $(cat "$c")"
			if [ $mode = pingpong ]; then
				n=$(sed -n 's/^round_trips: //p' "$c")
				[ "$n" = "$(t_json "$s" round_trips)" ] ||
					t_fail "$tag: client $n round trips, server $(t_json "$s" round_trips)"
			else
				n=$(sed -n 's/^bytes: //p' "$c")
				[ "$n" = "$(t_json "$s" bytes)" ] && [ "$n" -gt 0 ] ||
					t_fail "$tag: client $n bytes, server $(t_json "$s" bytes)"
			fi
			t_log "ok $tag: 4 interval lines, $n $([ $mode = pingpong ] && echo round trips || echo bytes), verify ok"
			continue
		fi
		[ "$(t_json "$c" path)" = smcr ] && [ "$(t_json "$c" verify)" = ok ] ||
			t_fail "$tag: client path '$(t_json "$c" path)', verify '$(t_json "$c" verify)'"
		if [ $mode = pingpong ]; then
			intervals "$c" 4 round_trips || t_fail "$tag: bad intervals: $(cat "$c")"
			[ "$(t_json "$c" round_trips)" = "$(t_json "$s" round_trips)" ] ||
				t_fail "$tag: client $(t_json "$c" round_trips) round trips, server $(t_json "$s" round_trips)"
			t_log "ok $tag: 4 intervals, $(t_json "$c" round_trips) verified round trips, p50 $(t_json "$c" latency_us.p50) us"
		else
			intervals "$c" 4 bytes || t_fail "$tag: bad intervals: $(cat "$c")"
			[ "$(t_json "$c" bytes)" = "$(t_json "$s" bytes)" ] ||
				t_fail "$tag: client $(t_json "$c" bytes) bytes, server $(t_json "$s" bytes)"
			if [ $mode = bidi ]; then
				for k in tx rx; do
					[ "$(t_json "$c" $k.verify)" = ok ] || t_fail "$tag: $k verify $(t_json "$c" $k.verify)"
				done
				[ "$(t_json "$c" tx.csum)" = "$(t_json "$s" rx.csum)" ] &&
					[ "$(t_json "$c" rx.csum)" = "$(t_json "$s" tx.csum)" ] ||
					t_fail "$tag: the two ends' checksums differ"
			fi
			t_log "ok $tag: 4 intervals, $(t_json "$c" bytes) verified bytes, $(t_json "$c" gbps) Gbit/s"
		fi
	done
done

# --- 2. --require-smcr and --require-smc ---
t_run_pair req-smcr 7071 --require-smcr -- -n 1M --verify --require-smcr ||
	t_fail "--require-smcr over SMC-R failed"
grep -q '^path: SMC-R' "$t_work/req-smcr.client" || t_fail "req-smcr: $(cat "$t_work/req-smcr.client")"
t_log "ok --require-smcr over SMC-R: exit 0 on both sides"

# the client's rules do not call the port SMC (explicit mode in the lab:
# no CLC byte is sent), the server's do: it peeks, sees plain TCP and
# falls back (PEERNOSMC)
t_server "$t_work/req-fb.server" 7072 "$T_PERF" -s -1 -p 7072 --require-smcr
rc=0
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7072 --smc-ports 7070 -n 1M --verify --require-smcr \
	>"$t_work/req-fb.client" 2>"$t_work/req-fb.client.err" || rc=$?
src=0
t_wait_server "$t_work/req-fb.server" || src=$?
[ $rc = 1 ] || t_fail "client --require-smcr over a fallback exited $rc, not 1: $(cat "$t_work/req-fb.client"*)"
[ $src = 1 ] || t_fail "server -1 --require-smcr over a fallback exited $src, not 1"
grep -qx 'verify: ok' "$t_work/req-fb.client" || t_fail "the fallback stream itself failed: $(cat "$t_work/req-fb.client")"
line=$(cat "$t_work/req-fb.client.err")
[[ $line == "usmc-perf: --require-smcr: connection 0 went over TCP (fallback: "* ]] ||
	t_fail "client --require-smcr line: '$line'"
grep -q '^usmc-perf: --require-smcr: connection 0 went over TCP (fallback: PEERNOSMC' "$t_work/req-fb.server.err" ||
	t_fail "server --require-smcr line: $(cat "$t_work/req-fb.server.err")"
t_log "ok --require-smcr over a fallback: exit 1 on both sides; $line"

# The converse, the ECONNRESET once seen: the client's rules call the port
# SMC, the server's (a usmc-perf too) do not. In explicit mode nothing
# tells the client (docs/runtime.md, "Explicit mode and its limit"): its
# Proposal reaches the server as data and the server closes. Both ends say
# so, and the server (-1) ends at once with 1 instead of waiting for the
# test until its timeout.
t_server "$t_work/mis.server" 7075 "$T_PERF" -s -1 -p 7075 --smc-ports 7070 --timeout 60
rc=0
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7075 -n 1M --verify \
	>"$t_work/mis.client" 2>"$t_work/mis.client.err" || rc=$?
t0=$(date +%s)
src=0
t_wait_server "$t_work/mis.server" >/dev/null || src=$?
[ $rc = 1 ] && [ $src = 1 ] || t_fail "rules that disagree: client exit $rc, server exit $src"
(($(date +%s) - t0 < 20)) || t_fail "the server waited $(($(date +%s) - t0)) s after the client's Proposal"
[ ! -s "$t_work/mis.client" ] || t_fail "the client printed a result: $(cat "$t_work/mis.client")"
grep -qx "usmc-perf: connect to $T_H1:7075: Connection reset by peer (in the SMC handshake: is the port in the server's SMC port list too?)" \
	"$t_work/mis.client.err" || t_fail "client: $(cat "$t_work/mis.client.err")"
grep -q "error: connection 0: the client sent an SMC CLC Proposal: its rules call port 7075 SMC and this server's do not" \
	"$t_work/mis.server" || t_fail "server: $(cat "$t_work/mis.server")"
t_log "ok rules that disagree: both ends name it, exit 1 at once"

# SMC-D (shm: the lab hosts share a kernel) is SMC, not SMC-R
USMC_SHM=1 t_run_pair req-smcd 7073 -- -n 1M --verify --require-smc ||
	t_fail "--require-smc over SMC-D failed"
grep -q '^path: SMC-D' "$t_work/req-smcd.client" || t_fail "req-smcd: $(cat "$t_work/req-smcd.client")"
t_server "$t_work/req-smcd2.server" 7074 env USMC_SHM=1 "$T_PERF" -s -1 -p 7074
rc=0
t_exec h2 env USMC_SHM=1 timeout 60 "$T_PERF" -c "$T_H1" -p 7074 -n 1M --verify --require-smcr \
	>"$t_work/req-smcd2.client" 2>"$t_work/req-smcd2.client.err" || rc=$?
t_wait_server "$t_work/req-smcd2.server" || t_fail "the SMC-D server failed"
[ $rc = 1 ] || t_fail "--require-smcr over SMC-D exited $rc, not 1"
grep -q '^usmc-perf: --require-smcr: connection 0 went over SMC-D' "$t_work/req-smcd2.client.err" ||
	t_fail "--require-smcr over SMC-D: $(cat "$t_work/req-smcd2.client.err")"
t_log "ok --require-smc takes SMC-D (exit 0), --require-smcr does not (exit 1)"
t_log PASS
