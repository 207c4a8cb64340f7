#!/usr/bin/env bash
# usmc-perf over kernel TCP on loopback (--tcp: no lab, no usmc), what
# does not need SMC:
#  1. the interval clock starts after the ping-pong warm-up: against an
#     echo server that answers each message 5 ms late, the 100 warm-up
#     round trips take 0.5 s, so an interval clock started before them
#     would end the intervals 0.5 s after the run's measured seconds;
#     they tile exactly 0..seconds and hold the 1000 measured round trips;
#  2. --bidi -i: each interval line gives send and receive on their own,
#     and the JSON intervals tx and rx add up to bytes;
#  3. every --json line (client and server) is valid JSON, and the text
#     and JSON results agree on the count;
#  4. --require-smc(r) not met: exit 1, and the JSON says "ok":false with
#     the error naming the path (a client against a kernel TCP server: a
#     PEERNOSMC fallback; client and server -1 with --require-smcr over
#     loopback, which goes SMC-D over shm);
#  5. the watchdog ending a transfer under way: -t 5 --timeout 1 exits 1
#     after 1 s with "timed out after 1 s" alone on stderr and, with
#     --json, {"ok":false,"error":"timeout"} (kernel TCP and usmc; in an
#     ASan build a sanitizer report on stderr fails it).
set -uo pipefail
b=${USMC_BUILD:?}/tools
perf=$b/usmc-perf
work=$(mktemp -d)
fails=0
pids=()
fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# valid FILE: every line starting with { is one valid JSON object
valid() {
	local l
	grep '^{' "$1" | while IFS= read -r l; do
		python3 -m json.tool <<<"$l" >/dev/null || exit 1
	done
}

# --- 1. a slow echo: the warm-up is outside the intervals ---
port=$(free_port)
python3 - "$port" >"$work/echo.log" 2>&1 <<'EOF' &
import socket, sys, time
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(4)
for _ in range(2):
    c, _ = l.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        m = b""
        while len(m) < 16:
            d = c.recv(16 - len(m))
            if not d:
                break
            m += d
        if len(m) < 16:
            break
        time.sleep(0.005)
        c.sendall(m)
    c.close()
EOF
pids+=($!)
for _ in $(seq 100); do
	python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.1).close()' "$port" 2>/dev/null && break
	sleep 0.05
done
# the probe above took the first of the two connections the echo serves
# 1100 round trips: 100 unmeasured, then 1000 of about 5 ms, 5 s; -i 0.5
out=$(timeout 60 "$perf" -c 127.0.0.1 -p "$port" --tcp --raw --pingpong 16 \
	--iterations 1000 -i 0.5 --json 2>"$work/err") || fail "slow echo: exit $?: $(cat "$work/err")"
echo "$out" >"$work/slow.json"
valid "$work/slow.json" || fail "slow echo: invalid JSON: $out"
python3 - "$out" <<'EOF' || fail "slow echo intervals: $out"
import json, sys
r = json.loads(sys.argv[1])
iv = r["intervals"]
assert r["round_trips"] == 1000, r["round_trips"]
assert len(iv) >= 5, iv
for v in iv:
    assert v["p50_us"] is None or v["p50_us"] >= 5000, v
# every measured round trip is in an interval, and the warm-up in none
assert sum(v["round_trips"] for v in iv) == 1000, iv
# the run's seconds start after the warm-up (at least 100 x 5 ms): the
# intervals span exactly them, from 0 to the run's end; a clock started
# before the warm-up would end them 0.5 s or more later. (Counts per
# interval are not checked: on a loaded machine one can be empty.)
assert iv[0]["start"] == 0 and abs(iv[-1]["end"] - r["seconds"]) < 0.05, (iv[0], iv[-1], r["seconds"])
assert all(abs(a["end"] - b["start"]) < 1e-6 for a, b in zip(iv, iv[1:])), iv
# at least the echo's 5 ms, in order
assert r["latency_us"]["p50"] >= 5000 and r["latency_us"]["max"] >= r["latency_us"]["p999"] >= r["latency_us"]["p50"], r
EOF
[ $fails = 0 ] && echo "ok slow echo: $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print([v["round_trips"] for v in r["intervals"]], "round trips per interval")' "$out")"

# --- 2. and 3.: --bidi and ping-pong, text and JSON, both ends ---
run() { # TAG CLIENT-ARGS...: a -1 --json server and the client
	local tag=$1
	shift
	port=$(free_port)
	"$perf" -s -1 -p "$port" --tcp --json --timeout 60 >"$work/$tag.server" 2>"$work/$tag.server.err" &
	local sp=$!
	for _ in $(seq 100); do
		grep -q . "$work/$tag.server.err" 2>/dev/null || ss -ltn "sport = :$port" | grep -q LISTEN && break
		sleep 0.05
	done
	timeout 60 "$perf" -c 127.0.0.1 -p "$port" --tcp "$@" >"$work/$tag.client" 2>"$work/$tag.client.err" ||
		fail "$tag: client exit $?: $(cat "$work/$tag.client"*)"
	wait $sp || fail "$tag: server exit $?: $(cat "$work/$tag.server"*)"
	valid "$work/$tag.server" || fail "$tag: invalid server JSON: $(cat "$work/$tag.server")"
}

run bidi-text --bidi -t 1 -i 0.25 --verify
lines=$(grep -cE '^\[.*s\] send +[0-9.]+ MiB +[0-9.]+ Gbit/s +receive +[0-9.]+ MiB +[0-9.]+ Gbit/s$' "$work/bidi-text.client")
[ "$lines" = 4 ] || fail "bidi text: $lines send/receive lines, not 4: $(cat "$work/bidi-text.client")"
grep -qx 'verify: ok' "$work/bidi-text.client" || fail "bidi text: $(cat "$work/bidi-text.client")"
[ $fails = 0 ] && echo "ok bidi text: 4 interval lines with send and receive"

run bidi-json --bidi -t 1 -i 0.25 --verify --json
valid "$work/bidi-json.client" || fail "bidi json: invalid: $(cat "$work/bidi-json.client")"
python3 - "$work/bidi-json.client" "$work/bidi-json.server" <<'EOF' || fail "bidi json: $(cat "$work/bidi-json.client")"
import json, sys
c = json.load(open(sys.argv[1]))
s = json.load(open(sys.argv[2]))
assert c["ok"] and s["ok"] and c["verify"] == "ok", (c, s)
iv = c["intervals"]
assert len(iv) == 4, iv
# each interval splits into its directions; a direction may be empty in
# an interval when the machine is loaded (its thread not scheduled for
# 0.25 s), so both are required over the run, not in each interval
for v in iv:
    assert v["tx"]["bytes"] + v["rx"]["bytes"] == v["bytes"], v
assert any(v["tx"]["bytes"] > 0 for v in iv) and any(v["rx"]["bytes"] > 0 for v in iv), iv
assert sum(v["tx"]["bytes"] for v in iv) <= c["tx"]["bytes"], iv
assert sum(v["rx"]["bytes"] for v in iv) <= c["rx"]["bytes"], iv
assert c["tx"]["bytes"] == s["rx"]["bytes"] and c["rx"]["bytes"] == s["tx"]["bytes"], (c, s)
EOF
[ $fails = 0 ] && echo "ok bidi json: intervals with tx and rx, both ends agree"

run pp-text --pingpong 64 --iterations 3000 --verify -P 2
n=$(sed -n 's/^round_trips: //p' "$work/pp-text.client")
[ "$n" = 6000 ] || fail "pingpong text: round_trips '$n', not 6000: $(cat "$work/pp-text.client")"
grep -qE '^seconds: [0-9.]+$' "$work/pp-text.client" || fail "pingpong text: no seconds: $(cat "$work/pp-text.client")"
grep -qE '^latency_us: p50 [0-9.]+ p90 [0-9.]+ p99 [0-9.]+ p99.9 [0-9.]+ max [0-9.]+$' "$work/pp-text.client" ||
	fail "pingpong text: $(cat "$work/pp-text.client")"
# the server counts the measured round trips and their bytes as the client
python3 - "$work/pp-text.server" <<'EOF' || fail "pingpong server: $(cat "$work/pp-text.server")"
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(rs) == 2, rs
for r in rs:
    assert r["ok"] and r["round_trips"] == 3000 and r["bytes"] == 3000 * 64, r
EOF
[ $fails = 0 ] && echo "ok pingpong -P 2: 6000 round trips, the server counts 2 x 3000 and their bytes"

# --- 4. --require-smc(r) not met: the exit code and the JSON agree ---
# wait_listen PORT ERRFILE: until the server listens (or said why not)
wait_listen() {
	for _ in $(seq 100); do
		grep -q . "$2" 2>/dev/null || ss -ltn "sport = :$1" | grep -q LISTEN && break
		sleep 0.05
	done
}
# check_unmet TAG FILE OPTION PATH: FILE's one JSON result says ok false,
# error "OPTION: connection 0 went over PATH...", every byte verified
check_unmet() {
	python3 - "$2" "$3: connection 0 went over $4" <<'EOF' || fail "$1: $(cat "$2")"
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(rs) == 1, rs
r = rs[0]
assert r["ok"] is False, r
assert r["error"].startswith(sys.argv[2]), (r["error"], sys.argv[2])
assert r["bytes"] == 1048576 and r["verify"] == "ok", r
EOF
}
port=$(free_port)
"$perf" -s -1 -p "$port" --tcp --json --timeout 60 >"$work/req.server" 2>"$work/req.server.err" &
sp=$!
wait_listen "$port" "$work/req.server.err"
timeout 60 "$perf" -c 127.0.0.1 -p "$port" -n 1M --verify --require-smc --json >"$work/req.client" 2>"$work/req.client.err"
rc=$?
wait $sp || fail "require-smc: the TCP server exit $?: $(cat "$work/req.server"*)"
[ $rc = 1 ] || fail "require-smc over TCP: client exit $rc, not 1: $(cat "$work/req.client"*)"
check_unmet "require-smc client" "$work/req.client" --require-smc "TCP (fallback: PEERNOSMC"
grep -qx 'usmc-perf: --require-smc: connection 0 went over TCP (fallback: PEERNOSMC.*' "$work/req.client.err" ||
	fail "require-smc: stderr: $(cat "$work/req.client.err")"
[ $fails = 0 ] && echo "ok --require-smc over a fallback: exit 1, \"ok\":false, $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' "$work/req.client")"

port=$(free_port)
"$perf" -s -1 -p "$port" --require-smcr --json --timeout 60 >"$work/reqr.server" 2>"$work/reqr.server.err" &
sp=$!
wait_listen "$port" "$work/reqr.server.err"
timeout 60 "$perf" -c 127.0.0.1 -p "$port" -n 1M --verify --require-smcr --json >"$work/reqr.client" 2>"$work/reqr.client.err"
rc=$?
wait $sp
src=$?
[ $rc = 1 ] || fail "require-smcr over SMC-D: client exit $rc, not 1: $(cat "$work/reqr.client"*)"
[ $src = 1 ] || fail "require-smcr over SMC-D: server -1 exit $src, not 1: $(cat "$work/reqr.server"*)"
check_unmet "require-smcr client" "$work/reqr.client" --require-smcr "SMC-D over shm"
check_unmet "require-smcr server" "$work/reqr.server" --require-smcr "SMC-D over shm"
[ $fails = 0 ] && echo "ok --require-smcr over SMC-D: client and server -1 exit 1, both \"ok\":false"

# --- 5. the watchdog ends a transfer under way ---
# timed_out TAG SERVER-ARGS -- CLIENT-ARGS
timed_out() {
	local tag=$1 sargs=() t0 t1 rc ms
	shift
	while [ "$1" != -- ]; do
		sargs+=("$1")
		shift
	done
	shift
	port=$(free_port)
	"$perf" -s -p "$port" "${sargs[@]}" --timeout 60 >"$work/$tag.server" 2>"$work/$tag.server.err" &
	local sp=$!
	pids+=($sp)
	wait_listen "$port" "$work/$tag.server.err"
	t0=$(date +%s%N)
	timeout 60 "$perf" -c 127.0.0.1 -p "$port" -t 5 --timeout 1 "$@" >"$work/$tag.client" 2>"$work/$tag.client.err"
	rc=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	kill $sp 2>/dev/null
	wait $sp 2>/dev/null
	[ $rc = 1 ] || fail "$tag: exit $rc, not 1: $(cat "$work/$tag.client"*)"
	# the line and nothing else (an ASan report would be more)
	[ "$(cat "$work/$tag.client.err")" = "usmc-perf: timed out after 1 s" ] ||
		fail "$tag: stderr: $(cat "$work/$tag.client.err")"
	# at the 1 s limit, well before the 5 s run's end
	[ $ms -ge 1000 ] && [ $ms -lt 4000 ] || fail "$tag: ended after $ms ms"
	if [[ " $* " == *" --json "* ]]; then
		[ "$(cat "$work/$tag.client")" = '{"role":"client","ok":false,"error":"timeout"}' ] ||
			fail "$tag: stdout: $(cat "$work/$tag.client")"
	fi
	[ $fails = 0 ] && echo "ok $tag: -t 5 --timeout 1 $*: exit 1 after $ms ms, '$(cat "$work/$tag.client.err")'"
}
timed_out timeout-tcp --tcp -- --tcp --verify --json
timed_out timeout-usmc -- --verify
timed_out timeout-usmc-bidi -- --bidi -P 2 --json

if [ $fails != 0 ]; then
	echo "$fails failure(s)"
	exit 1
fi
echo PASS
