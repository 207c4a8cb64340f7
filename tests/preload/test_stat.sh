#!/usr/bin/env bash
# usmc-stat (docs/stat.md) in the two-host lab, while transfers run:
#  1. usmc-perf server and client over SMC-R: the client's host lists the
#     connection (text and --json) as SMCR, ACTIVE, with both addresses,
#     link group and link ids, and bytes that grow between two looks;
#     -a adds the server's listener; -d the cursors;
#     -l (text and --json) its link group from both hosts: SINGLE, one
#     ACTIVE link, each end's device, GID and QPN the other end's peer
#     GID and QPN, WRITE bytes only from the writer, the failover count 0;
#  2. a client whose port is not an SMC port: TCP with PEERNOSMC 0x03010000;
#  3. a stream with 1% of the client's packets dropped (softroce drop=10),
#     the client lingering after it: its link's TX bytes are exactly the
#     header and the stream (what was retransmitted counts once), and its
#     retransmissions show;
#  4. after the processes are gone (killed ones included) no table is
#     listed, and the dead ones' files are removed.
# The tables are in the test's own USMC_STAT_DIR (t_lab_up sets it; the
# usmc-stat runs inherit it), and none is in /dev/shm.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss python3
t_need_perf
t_lab_up
T_STAT=$USMC_BUILD/tools/usmc-stat
[ -x "$T_STAT" ] || t_fail "usmc-stat is not built ($T_STAT)"
# USMC_STAT_DIR is the test's own ($t_work/stat, from t_lab_up): other
# usmc processes on this host stay out
[ "$USMC_STAT_DIR" = "$t_work/stat" ] && [ -d "$USMC_STAT_DIR" ] ||
	t_fail "USMC_STAT_DIR is '$USMC_STAT_DIR', not the test's $t_work/stat"
fails=0

t_server "$t_work/srv" 7501 "$T_PERF" -s -1 -p 7501 --smc-ports 7501,7502
spid1=$t_spid
# long enough to outlast the looks; stopped once they are done
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7501 --smc-ports 7501 -n 64G --timeout 50 >"$t_work/cli" 2>&1 &
cpid=$!
# wait for the connection to show up as SMCR
look() { t_exec "$1" "$T_STAT" "${@:2}"; }
busywait 15000 eval 'look h2 | grep -q "SMCR"' || t_fail "no SMCR line: $(look h2 -a)"
# and its byte count moving: the table is rewritten every 0.5 s, so a
# first look just after the handshake can say 0 (it did in a loaded run)
sent_moved() { look h2 | awk '/SMCR/ && $11 > 0 { f = 1 } END { exit !f }'; }
busywait 15000 sent_moved || t_fail "the SMCR line's Sent stays 0: $(look h2 -a)"
look h2 >"$t_work/t1"
sleep 1
look h2 --json >"$t_work/j2"
look h2 -a -d >"$t_work/t3"
look h1 -a >"$t_work/s1"
cat "$t_work/t1" "$t_work/t3" "$t_work/s1" | sed 's/^/  /'
python3 - "$t_work/t1" "$t_work/j2" "$T_H1" "$T_H2" <<'PY' || fails=$((fails + 1))
import json, sys
t1, j2, h1, h2 = sys.argv[1:]
rows = [l.split() for l in open(t1) if "SMCR" in l]
assert len(rows) == 1, rows
r = rows[0]
assert r[3] == "ACTIVE", r
assert r[4].startswith(h2 + ":"), r
assert r[5] == h1 + ":7501", r
sent1 = int(r[10])
js = json.load(open(j2))
c = [o for o in js if o["mode"] == "SMCR"]
assert len(c) == 1, js
c = c[0]
assert c["comm"] == "usmc-perf" and c["state"] == "ACTIVE", c
assert c["peer"] == h1 + ":7501" and c["local"].startswith(h2 + ":"), c
assert c["lgr_id"] != 0 and c["link_id"] != 0, c
assert c["fallback_code"] == "0x00000000", c
assert c["bytes_sent"] > sent1 > 0, (sent1, c["bytes_sent"])
print("test_stat: ok SMCR ACTIVE %s -> %s lgr %d link %d, sent %d then %d" %
      (c["local"], c["peer"], c["lgr_id"], c["link_id"], sent1, c["bytes_sent"]))
PY
grep -q "LISTEN .*0.0.0.0:7501\|LISTEN .*:7501" "$t_work/s1" || {
	t_log "-a shows no listener on the server: $(cat "$t_work/s1")"
	fails=$((fails + 1))
}
grep -qE "SMCR .* [0-9]+:[0-9]+ +[0-9]+:[0-9]+" "$t_work/t3" || {
	t_log "-d shows no cursors: $(cat "$t_work/t3")"
	fails=$((fails + 1))
}

# 1b. the link group and link of that connection, from both ends
look h2 --json >"$t_work/j3"
look h2 -l >"$t_work/l2"
look h2 -l --json >"$t_work/lj2"
look h1 -l --json >"$t_work/lj1"
sed 's/^/  /' "$t_work/l2"
python3 - "$t_work/j3" "$t_work/lj2" "$t_work/lj1" "$t_work/l2" "$T_H1" "$T_H2" <<'PY' || fails=$((fails + 1))
import json, sys
j3, lj2, lj1, l2, h1, h2 = sys.argv[1:]
conns = [o for o in json.load(open(j3)) if o["mode"] == "SMCR"]
assert len(conns) == 1, conns
c = conns[0]
assert c["failovers"] == 0, c
def one(path, role):
    gs = [g for g in json.load(open(path)) if g["comm"] == "usmc-perf"]
    assert len(gs) == 1, gs
    g = gs[0]
    assert g["role"] == role and g["type"] == "SINGLE", g
    assert g["conns"] == 1 and len(g["links"]) == 1, g
    l = g["links"][0]
    assert l["state"] == "ACTIVE", g
    for k in ("tx_bytes", "rx_bytes", "tx_wrs", "rx_wrs", "retransmits",
              "nak_seq_rx", "rnr_nak_rx", "retry_timeouts"):
        assert isinstance(l[k], int) and l[k] >= 0, (k, g)
    # every received message (CDC, LLC) is 44 bytes or more
    assert l["rx_wrs"] > 0 and l["rx_bytes"] >= 44 * l["rx_wrs"], g
    return g, l
gc, lc = one(lj2, "client")
gs, ls = one(lj1, "server")
assert gc["pid"] == c["pid"] and gc["lgr_id"] == c["lgr_id"], (gc, c)
assert lc["link_id"] == c["link_id"], (lc, c)
assert lc["device"] == c["device"] and lc["device"].endswith("@" + h2), (lc, c)
assert lc["local_gid"] == c["local_gid"] == "::ffff:" + h2, (lc, c)
assert ls["device"].endswith("@" + h1) and ls["local_gid"] == "::ffff:" + h1, ls
# the two ends of one link
assert lc["peer_gid"] == ls["local_gid"] and ls["peer_gid"] == lc["local_gid"], (lc, ls)
assert lc["qpn"] == ls["peer_qpn"] and ls["qpn"] == lc["peer_qpn"], (lc, ls)
# the client writes the stream; the server writes nothing before its result
assert lc["tx_bytes"] > 0 and lc["tx_wrs"] > 0, lc
assert ls["tx_bytes"] == 0, ls
rows = [r.split() for r in open(l2) if "usmc-perf" in r]
assert len(rows) == 1, rows
r = rows[0]
assert r[5] == "SINGLE" and r[8] == "ACTIVE" and r[9] == lc["device"], r
assert r[10] == lc["local_gid"] and r[11] == lc["peer_gid"], r
assert int(r[12]) == lc["qpn"] and int(r[13]) == lc["peer_qpn"], r
print("test_stat: ok link %d of lgr %d: %s %s qpn %d <-> %s %s qpn %d, %d WRITE bytes out" %
      (lc["link_id"], gc["lgr_id"], lc["device"], lc["local_gid"], lc["qpn"],
       ls["device"], ls["local_gid"], ls["qpn"], lc["tx_bytes"]))
PY

# 2. a fallback connection next to it (ping-pong: it stays open a while)
t_server "$t_work/srv2" 7502 "$T_PERF" -s -1 -p 7502 --smc-ports 7501,7502
spid2=$t_spid
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7502 --smc-ports 7070 --pingpong 64 --iterations 2000000 --timeout 50 \
	>"$t_work/cli2" 2>&1 &
cpid2=$!
busywait 15000 eval 'look h2 | grep -q "TCP PEERNOSMC 0x03010000"' || {
	t_log "no fallback line: $(look h2 -a -d)"
	fails=$((fails + 1))
}
look h2 -d | grep "TCP PEERNOSMC" | sed 's/^/  /'
look h2 --json | python3 -c '
import json, sys
js = json.load(sys.stdin)
t = [o for o in js if o["mode"] == "TCP"]
assert t and t[0]["fallback_name"] == "PEERNOSMC" and t[0]["fallback_code"] == "0x03010000", js
assert "not an SMC port" in t[0]["detail"], t
print("test_stat: ok fallback in JSON:", t[0]["fallback_name"], t[0]["fallback_code"], t[0]["detail"])
' || fails=$((fails + 1))

# 3. a lossy stream, then the connection left open: the link's counters
# are final, and exact
N=$((16 * 1024 * 1024))
t_server "$t_work/srv3" 7503 "$T_PERF" -s -1 -p 7503 --smc-ports 7503
spid3=$t_spid
t_exec h2 env USMC_TRANSPORT_OPTIONS=drop=10 timeout 60 "$T_PERF" -c "$T_H1" -p 7503 \
	--smc-ports 7503 -n $N --verify --linger 15000 --timeout 50 >"$t_work/cli3" 2>&1 &
cpid3=$!
# the stream is over once the server's 40-byte result has arrived
done3() {
	look h2 --json | python3 -c '
import json, sys
c = [o for o in json.load(sys.stdin) if o["peer"].endswith(":7503")]
sys.exit(0 if c and c[0]["bytes_received"] == 40 else 1)'
}
if busywait 40000 done3; then
	look h2 --json >"$t_work/j4"
	look h2 -l --json >"$t_work/lj4"
	look h2 -l -d | sed 's/^/  /'
	python3 - "$t_work/j4" "$t_work/lj4" "$N" <<'PY' || fails=$((fails + 1))
import json, sys
j4, lj4, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = [o for o in json.load(open(j4)) if o["peer"].endswith(":7503")]
assert len(c) == 1, c
c = c[0]
# usmc-perf's 64-byte header, then the stream
assert c["bytes_sent"] == 64 + n and c["bytes_received"] == 40, c
lgrs = json.load(open(lj4))
g = [o for o in lgrs if o["pid"] == c["pid"]]
assert len(g) == 1 and g[0]["lgr_id"] == c["lgr_id"] and len(g[0]["links"]) == 1, (
    "connection %s; link groups of every process: %s" % (c, lgrs))
l = g[0]["links"][0]
assert l["link_id"] == c["link_id"], (l, c)
assert l["tx_bytes"] == 64 + n, (l["tx_bytes"], 64 + n)
assert l["retransmits"] > 0, l
assert l["nak_seq_rx"] + l["retry_timeouts"] > 0, l
assert l["rx_bytes"] >= 44 * l["rx_wrs"] > 0, l
print("test_stat: ok lossy stream: link %d WRITE bytes %d = 64 + %d, %d WRs out, "
      "%d retransmitted packets (%d sequence NAKs, %d timeouts)" %
      (l["link_id"], l["tx_bytes"], n, l["tx_wrs"], l["retransmits"],
       l["nak_seq_rx"], l["retry_timeouts"]))
PY
else
	t_log "the lossy stream did not end in 40 s: $(cat "$t_work/cli3"); $(look h2 -d)"
	fails=$((fails + 1))
fi

# the clients are killed (their tables stay behind: no exit, usmc-stat
# removes them once their processes are gone), the servers see the end of
# their connection and end (with exit: they remove theirs)
# (usmc-stat names their pids: the background jobs are only wrappers)
pids=$(look h2 --json | python3 -c '
import json, sys
print(" ".join(sorted({str(o["pid"]) for o in json.load(sys.stdin) if o["role"] == "client"})))')
# A /dev/shm table of that pid that predates this test is a dead process's
# (killed ones leave theirs until a usmc-stat of /dev/shm removes it): with
# pid_max 32768 pids come round again in a long test run.
for p in $pids; do
	[ -e "$USMC_STAT_DIR/usmc-stat.$p" ] &&
		{ [ ! -e "/dev/shm/usmc-stat.$p" ] || [ "/dev/shm/usmc-stat.$p" -ot "$t_work" ]; } || {
		t_log "pid $p: table not in $USMC_STAT_DIR only: '$(ls -d "$USMC_STAT_DIR/usmc-stat.$p" "/dev/shm/usmc-stat.$p" 2>/dev/null)'"
		fails=$((fails + 1))
	}
done
[ -n "$pids" ] && kill $pids
wait $cpid $cpid2 $cpid3 $spid1 $spid2 $spid3 2>/dev/null
# 4. gone with their processes
sleep 1
n=$(look h2 --all-ns --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 0 ] || {
	t_log "$n entries left after exit: $(ls "$USMC_STAT_DIR")"
	fails=$((fails + 1))
}
left=$(ls "$USMC_STAT_DIR")
[ -z "$left" ] || {
	t_log "files left: $left"
	fails=$((fails + 1))
}
[ $fails = 0 ] || t_fail "$fails usmc-stat check(s) failed"
t_log PASS
