#!/usr/bin/env bash
# usmc-stat's summary, wide, namespace and empty views and usmc-check
# (docs/stat.md), in the two-host lab:
#  1. with nothing running, usmc-stat prints its header and "no usmc
#     sockets in net:[INODE]" (--all-ns: "in any network namespace");
#  2. two SMC-R connections and one fallback (a client trying SMC against
#     a server whose port is not an SMC port), held open: -s counts
#     SMCR 2, TCP 1, one link group with one link and one fallback row
#     PEERNOSMC 0x03010000 (text and JSON; -d: one line per process);
#     --all-ns names both lab hosts' namespaces (their `ip netns` names)
#     in the NETNS column and in JSON; -a on the server's host shows the
#     listener with role "listener"; -W widens the address columns;
#     -i 1 -c 2 prints two timestamped tables, and -i ends on SIGINT;
#  3. usmc-check (with the SMC TCP option, as the usmc server) against a usmc server (SMC-R, exit 0, the server gets a
#     connection with no data), a plain TCP server (TCP, because
#     PEERNOSMC, exit 1, no data) and a port nothing listens on (exit 3).
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss python3
t_need_perf
t_lab_up
T_STAT=$USMC_BUILD/tools/usmc-stat
T_CHECK=$USMC_BUILD/tools/usmc-check
[ -x "$T_STAT" ] || t_fail "usmc-stat is not built ($T_STAT)"
[ -x "$T_CHECK" ] || t_fail "usmc-check is not built ($T_CHECK)"
fails=0
bad() {
	t_log "FAIL: $*"
	fails=$((fails + 1))
}
look() { t_exec "$1" "$T_STAT" "${@:2}"; }
NS1=$(usmc_lab_ns "$t_lab" h1)
NS2=$(usmc_lab_ns "$t_lab" h2)
INO2=$(t_exec h2 readlink /proc/self/ns/net)

# 1. empty
look h2 >"$t_work/e1"
look h2 --all-ns >"$t_work/e2"
sed 's/^/  /' "$t_work/e1" "$t_work/e2"
[ "$(sed -n 1p "$t_work/e1" | awk '{print $1, $2, $3}')" = "PID COMM FD" ] &&
	[ "$(sed -n 2p "$t_work/e1")" = "no usmc sockets in $INO2" ] &&
	[ "$(wc -l <"$t_work/e1")" = 2 ] || bad "empty listing: $(cat "$t_work/e1")"
[ "$(sed -n 2p "$t_work/e2")" = "no usmc sockets in any network namespace" ] ||
	bad "empty --all-ns listing: $(cat "$t_work/e2")"

# A TCP server (plain, or under usmc-run) writing "conn BYTES" to a file
# for each connection once it ends
cat >"$t_work/srv.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
while True:
    c, _ = s.accept()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    c.close()
    with open(sys.argv[2], "a") as f:
        f.write("conn %d\n" % n)
PY

# 2. two SMC-R connections and a fallback, idle while usmc-stat looks
t_server "$t_work/srv" 7601 "$T_PERF" -s -p 7601 --smc-ports 7601
spid1=$t_spid
# a plain TCP server on 7602: the client's SMC try falls back
t_server "$t_work/srv2" 7602 python3 "$t_work/srv.py" 7602 "$t_work/got0"
spid2=$t_spid
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7601 --smc-ports 7601 -P 2 -n 1M \
	--idle 30000 >"$t_work/cli" 2>&1 &
cpid=$!
# (with the SMC TCP option, which ip netns exec needs USMC_CGROUP=private
# for: the plain server's SYN-ACK says no SMC, and no CLC byte is sent)
t_exec h2 env USMC_CGROUP=private timeout 60 "$T_PERF" -c "$T_H1" -p 7602 --smc-ports 7602 -n 1M \
	--idle 30000 >"$t_work/cli2" 2>&1 &
cpid2=$!
three() { [ "$(look h2 | grep -cE ' (SMCR v|TCP [A-Z])')" = 3 ]; }
busywait 20000 three || bad "not 2 SMCR and 1 TCP connection on h2: $(look h2 -d)"
look h2 -s >"$t_work/s1"
look h2 -s -d --json >"$t_work/s2"
look h2 -s --all-ns >"$t_work/s3"
look h2 --all-ns >"$t_work/n1"
look h1 --all-ns -a --json >"$t_work/n2"
look h2 -W >"$t_work/w1"
look h2 >"$t_work/w0"
sed 's/^/  /' "$t_work/s1" "$t_work/s3" "$t_work/n1" "$t_work/w1"
python3 - "$t_work" "$NS1" "$NS2" <<'PY' || fails=$((fails + 1))
import json, sys
w, ns1, ns2 = sys.argv[1:]
def rd(n): return open(w + "/" + n).read().splitlines()
# -s text: the namespace row, then the fallback rows
s1 = rd("s1")
assert s1[0].split() == ["NETNS", "SMCR", "SMCD", "TCP", "FAILED", "LGRs", "Links"], s1
assert s1[1].split() == [ns2, "2", "0", "1", "0", "1", "1"], s1
fb = [l.split() for l in s1[3:] if l.strip() and not l.startswith("NETNS")]
assert fb == [[ns2, "PEERNOSMC", "0x03010000", "-", "1"]], s1
# -s -d --json
s2 = json.load(open(w + "/s2"))
assert s2["total"] == {"smcr": 2, "smcd": 0, "tcp": 1, "failed": 0, "lgrs": 1, "links": 1}, s2
assert [n["netns"] for n in s2["netns"]] == [ns2], s2
f = s2["fallbacks"]
assert len(f) == 1 and f[0]["fallback_name"] == "PEERNOSMC" and \
    f[0]["fallback_code"] == "0x03010000" and f[0]["count"] == 1 and \
    f[0]["peer_reason"] is None, f
ps = sorted((p["smcr"], p["tcp"], p["lgrs"]) for p in s2["processes"])
assert ps == [(0, 1, 0), (2, 0, 1)], s2["processes"]
# -s --all-ns: h2's row and the total (h1's servers hold the other ends)
s3 = rd("s3")
s3 = [l.split() for l in s3[:s3.index("")]]
rows = {r[0]: r[1:] for r in s3 if r and r[0] in (ns1, ns2, "total")}
assert rows[ns2] == ["2", "0", "1", "0", "1", "1"], s3
assert rows[ns1][:3] == ["2", "0", "0"], s3
assert rows["total"][:3] == ["4", "0", "1"], s3
# --all-ns text: a NETNS column after Failovers, each host's name
n1 = rd("n1")
assert n1[0].split()[-1] == "NETNS", n1
data = [l.split() for l in n1[1:]]
mode_at = {tuple(r[6:8]) for r in data}
assert all(r[-1] in (ns1, ns2) for r in data) and {r[-1] for r in data} == {ns1, ns2}, n1
# JSON has netns; -a on h1: the listeners' role is "listener"
n2 = json.load(open(w + "/n2"))
assert {o["netns"] for o in n2} == {ns1, ns2}, n2
lis = [o for o in n2 if o["mode"] == "LISTEN"]
assert len(lis) == 1 and all(o["role"] == "listener" for o in lis), lis
assert all(o["role"] == "server" for o in n2 if o["netns"] == ns1 and o["mode"] != "LISTEN"), n2
# -W: the address columns are 47 wide (the same rows otherwise)
w0, w1 = rd("w0"), rd("w1")
assert w1[0].index("Peer Address") - w1[0].index("Local Address") == 48, w1[0]
assert w0[0].index("Peer Address") - w0[0].index("Local Address") == 22, w0[0]
assert sorted(l.split() for l in w0[1:]) == sorted(l.split() for l in w1[1:]), (w0, w1)
print("test_stat_check: ok summary SMCR 2 TCP 1, PEERNOSMC 0x03010000 1; NETNS %s and %s; listener; -W" % (ns1, ns2))
PY
# -i 1 -c 2: two tables, each after a timestamp line
look h2 -s -i 1 -c 2 >"$t_work/i1"
[ "$(grep -c '^--- 20[0-9-]*T[0-9:]*' "$t_work/i1")" = 2 ] &&
	[ "$(grep -c '^NETNS  *SMCR' "$t_work/i1")" = 2 ] || bad "-i 1 -c 2: $(cat "$t_work/i1")"
# -i without -c ends on SIGINT (exit 0)
look h2 -i 1 >"$t_work/i2" 2>&1 &
ipid=$!
busywait 5000 grep -q '^---' "$t_work/i2" || bad "-i printed no timestamp: $(cat "$t_work/i2")"
ip_pid=$(pgrep -P "$ipid" -x usmc-stat || echo "$ipid")
kill -INT "$ip_pid"
irc=0
timeout 5 tail --pid="$ip_pid" -f /dev/null || irc=timeout
wait "$ipid" || irc=$?
[ "$irc" = 0 ] || bad "usmc-stat -i did not end on SIGINT with 0: $irc"
# the clients (h2 runs nothing else now)
kill $(ip netns pids "$NS2") 2>/dev/null
wait "$cpid" "$cpid2" 2>/dev/null

# 3. usmc-check: a usmc server and a plain one
t_usmc h1 "$t_work/py.stats" 7603 env USMC_CGROUP=private python3 "$t_work/srv.py" 7603 "$t_work/got1" >"$t_work/py1" 2>&1 &
pypid1=$!
t_exec h1 timeout 120 python3 "$t_work/srv.py" 7604 "$t_work/got2" >"$t_work/py2" 2>&1 &
pypid2=$!
busywait 10000 t_listening h1 7603 && busywait 10000 t_listening h1 7604 ||
	bad "python servers did not listen: $(cat "$t_work/py1" "$t_work/py2")"
check() { # OUTFILE ARGS...
	local o=$1 rc=0
	shift
	t_exec h2 env USMC_CGROUP=private timeout 30 "$T_CHECK" "$@" >"$o" 2>"$o.err" || rc=$?
	echo $rc
}
rc=$(check "$t_work/c1" "$T_H1:7603")
sed 's/^/  usmc-check (usmc server): /' "$t_work/c1" "$t_work/c1.err"
[ "$rc" = 0 ] && grep -qE "^SMC-R v[12] over softroce \(lgr [0-9]+, link [0-9]+, device [0-9]+:softroce@$T_H2\)$" "$t_work/c1" ||
	bad "usmc-check against a usmc server: exit $rc: $(cat "$t_work/c1" "$t_work/c1.err")"
rc=$(check "$t_work/c2" --json "$T_H1:7603")
python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["result"] == "SMCR" and o["lgr_id"] > 0 and o["link_id"] > 0 and o["transport"] == "softroce", o
assert o["fallback_code"] == "0x00000000", o
' "$t_work/c2" && [ "$rc" = 0 ] || bad "usmc-check --json against a usmc server: exit $rc: $(cat "$t_work/c2")"
rc=$(check "$t_work/c3" "$T_H1:7604")
sed 's/^/  usmc-check (plain TCP server): /' "$t_work/c3" "$t_work/c3.err"
[ "$rc" = 1 ] && grep -q "^TCP, because PEERNOSMC (0x03010000): " "$t_work/c3" ||
	bad "usmc-check against a TCP server: exit $rc: $(cat "$t_work/c3" "$t_work/c3.err")"
rc=$(check "$t_work/c4" --json "$T_H1:7604")
python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
assert o["result"] == "TCP" and o["fallback_name"] == "PEERNOSMC" and o["fallback_code"] == "0x03010000", o
' "$t_work/c4" && [ "$rc" = 1 ] || bad "usmc-check --json against a TCP server: exit $rc: $(cat "$t_work/c4")"
rc=$(check "$t_work/c5" "$T_H1:7609")
sed 's/^/  usmc-check (nothing listens): /' "$t_work/c5"
[ "$rc" = 3 ] && grep -q "^cannot connect to $T_H1:7609: " "$t_work/c5" ||
	bad "usmc-check against a closed port: exit $rc: $(cat "$t_work/c5" "$t_work/c5.err")"
# every connection reached its server, and none carried a byte
busywait 10000 eval '[ "$(cat "$t_work/got1" 2>/dev/null | wc -l)" = 2 ] && [ "$(cat "$t_work/got2" 2>/dev/null | wc -l)" = 2 ]' ||
	bad "the servers did not see two connections each: $(cat "$t_work/got1" "$t_work/got2" 2>&1)"
[ "$(sort -u "$t_work/got1" "$t_work/got2" 2>/dev/null)" = "conn 0" ] ||
	bad "usmc-check sent data: $(cat "$t_work/got1" "$t_work/got2" 2>&1)"
kill $(ip netns pids "$NS1") 2>/dev/null
wait "$pypid1" "$pypid2" "$spid1" "$spid2" 2>/dev/null
[ $fails = 0 ] || t_fail "$fails check(s) failed"
t_log PASS
