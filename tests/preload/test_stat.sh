#!/usr/bin/env bash
# usmc-stat (docs/stat.md) in the two-host lab, while transfers run:
#  1. usmc-perf server and client over SMC-R: the client's host lists the
#     connection (text and --json) as SMCR, ACTIVE, with both addresses,
#     link group and link ids, and bytes that grow between two looks;
#     -a adds the server's listener; -d the cursors;
#  2. a client whose port is not an SMC port: TCP with PEERNOSMC 0x03010000;
#  3. after the processes are gone (killed ones included) no table is
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
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7501 --smc-ports 7501 -n 64G -t 50 >"$t_work/cli" 2>&1 &
cpid=$!
# wait for the connection to show up as SMCR
look() { t_exec "$1" "$T_STAT" "${@:2}"; }
busywait 15000 eval 'look h2 | grep -q "SMCR"' || t_fail "no SMCR line: $(look h2 -a)"
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

# 2. a fallback connection next to it (ping-pong: it stays open a while)
t_server "$t_work/srv2" 7502 "$T_PERF" -s -1 -p 7502 --smc-ports 7501,7502
spid2=$t_spid
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7502 --smc-ports 7070 --pingpong 64 -i 2000000 -t 50 \
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

# the clients are killed (their tables stay behind: no exit), the
# servers see the end of their connection and end (with _exit: theirs
# stay too)
# (usmc-stat names their pids: the background jobs are only wrappers)
pids=$(look h2 --json | python3 -c '
import json, sys
print(" ".join(sorted({str(o["pid"]) for o in json.load(sys.stdin) if o["role"] == "client"})))')
for p in $pids; do
	[ -e "$USMC_STAT_DIR/usmc-stat.$p" ] && [ ! -e "/dev/shm/usmc-stat.$p" ] || {
		t_log "pid $p: table not in $USMC_STAT_DIR only: '$(ls -d "$USMC_STAT_DIR/usmc-stat.$p" "/dev/shm/usmc-stat.$p" 2>/dev/null)'"
		fails=$((fails + 1))
	}
done
[ -n "$pids" ] && kill $pids
wait $cpid $cpid2 $spid1 $spid2 2>/dev/null
# 3. gone with their processes
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
