#!/usr/bin/env bash
# Debian's redis-server and redis-benchmark / redis-cli, unmodified, under
# usmc-run over softroce; in the lab (h2 -> h1), on one host (h1,
# 127.0.0.1 -> 127.0.0.2), and on one host and one address, where the two
# processes' softroce devices share UDP 4791 (127.0.0.1 -> 127.0.0.1 and
# 10.77.0.1 -> 10.77.0.1, in h1; 1, 2 and 4 only):
#  1. redis-benchmark -t set,get,incr,lpush,lrange -c 50 -n N, then with
#     -P 16: every test reports its rate, no error in the output, and the
#     server's commandstats count every call with failed_calls and
#     rejected_calls 0;
#  2. redis-cli writes 200 keys and a 10 MiB binary value, reads them back:
#     equal (sha256 of the big value, STRLEN);
#  3. BGSAVE (the server forks) while 20 benchmark clients (-n A_N) are
#     connected: it completes (rdb_last_bgsave_status:ok, LASTSAVE moves,
#     dump.rdb written) and the clients finish without error;
#  4. both processes report SMC-R connections only (USMC_STATS), and
#     that the preload's re-entry guard never acted: every usmc process of
#     the test (servers, forked BGSAVE child, clients) says
#     preload_reentries=0.
# Lab only, mixed: a plain redis-cli to the usmc server; usmc on both ends
# with a USMC_RULES rule that says tcp (on the server, on the client); a
# usmc redis-cli to a plain redis-server and to a usmc server on a port
# the rules do not list: each works over TCP, the reason in the usmc log.
# A_N (default 40000) is the benchmark's -n with -P 16 in the lab; without
# -P, and on one host, it uses A_N/4. It checks correctness, not speed
# (usmc-bench measures that); 200000 took 4 minutes of CPU per run. With
# the ASan+UBSan build's library the default is 12000: its data path is 2
# to 4 times slower.
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss redis-server redis-cli redis-benchmark sha256sum awk
t_lab_up
N=${A_N:-40000}
[ -n "$T_ASAN" ] && N=${A_N:-12000}
A_PORTS=6379

rcli() { # NAME ARGS...: redis-cli under usmc-run against the server
	local name=$1
	shift
	a_client "$name" redis-cli -h "$A_SADDR" -p 6379 "$@"
}

# Control and measurement go through a plain redis-cli (no usmc-run), so
# they stay out of the benchmark's usmc counts (and where softroce cannot
# share its port, a usmc redis-cli next to a usmc redis-benchmark would fall
# back). The server counts them: one line each in $t_work/plain (the
# helpers run in command substitutions).
plain() { echo >>"$t_work/plain"; }
pcli() { # ARGS...: plain redis-cli in the client host, output on stdout
	plain
	t_exec "$A_CHOST" timeout 30 redis-cli -h "$A_SADDR" -p 6379 "$@" | tr -d '\r'
}

info_field() { # FIELD: from INFO (all sections)
	plain
	t_exec "$A_CHOST" timeout 30 redis-cli -h "$A_SADDR" -p 6379 INFO everything | tr -d '\r' | sed -n "s/^$1://p"
}

calls() { # CMD: calls of CMD so far
	plain
	t_exec "$A_CHOST" timeout 30 redis-cli -h "$A_SADDR" -p 6379 INFO commandstats | tr -d '\r' |
		sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p"
}

bench() { # TAG N EXTRA...: redis-benchmark, checked
	local tag=$1 n=$2 t after rc=0
	shift 2
	declare -A before
	for t in set get incr lpush lrange; do before[$t]=$(calls $t); done
	local t0=$SECONDS
	# With a small -n (the ASan build's, on one host) a client's
	# connection may carry under 2 KiB and the client's per-peer history
	# then holds the server to TCP (docs/rules.md, "Short-lived
	# connections"; test_shortconn's subject): here every connection is
	# to be SMC-R, whatever it carries.
	USMC_SHORTCONN=off a_client "$tag" redis-benchmark -h "$A_SADDR" -p 6379 -t set,get,incr,lpush,lrange \
		-c 50 -n "$n" --csv "$@" || rc=$?
	local took=$((SECONDS - t0))
	if [ $rc != 0 ]; then
		a_fail "$tag: redis-benchmark exit $rc"
		a_show "$tag"
		return
	fi
	if grep -qiE 'error|refused|reset|timeout' "$t_work/$tag.out" "$t_work/$tag.err"; then
		a_fail "$tag: errors in redis-benchmark's output: $(grep -iE 'error|refused|reset|timeout' "$t_work/$tag.out" "$t_work/$tag.err" | sort | uniq -c | head -5)"
	fi
	for t in SET GET INCR LPUSH LRANGE_100 LRANGE_300 LRANGE_500 LRANGE_600; do
		grep -q "^\"${t}[ \"]" "$t_work/$tag.out" || a_fail "$tag: no rate for $t in the output"
	done
	# every request reached the server and none failed
	for t in set get incr lpush lrange; do
		after=$(calls $t)
		local want=$n
		[ $t = lrange ] && want=$((4 * n))
		[ $t = lpush ] && want=$((2 * n)) # LPUSH, plus the lists LRANGE reads
		[ $((after - ${before[$t]:-0})) -ge "$want" ] ||
			a_fail "$tag: server counted $((after - ${before[$t]:-0})) $t calls, want >= $want"
	done
	if pcli INFO commandstats | grep -E 'rejected_calls=[1-9]|failed_calls=[1-9]' >"$t_work/$tag.bad"; then
		a_fail "$tag: failed or rejected calls: $(head -3 "$t_work/$tag.bad")"
	fi
	a_smcr "$t_work/$tag.stats" 50 || a_fail "$tag: redis-benchmark not all over SMC-R"
	t_log "ok $tag: -n $n $* in ${took}s, $A_SMCR: $(cut -d, -f1,2 "$t_work/$tag.out" | tr -d '"' | tail -n +2 | tr '\n' ' ')"
}

readback() { # TAG
	local tag=$1 i want got
	head -c 10485760 /dev/urandom >"$t_work/big"
	want=$(sha256sum <"$t_work/big" | cut -d' ' -f1)
	a_client "$tag-setbig" redis-cli -h "$A_SADDR" -p 6379 -x SET big <"$t_work/big" ||
		a_fail "$tag: SET of 10 MiB failed: $(a_show "$tag-setbig")"
	rcli "$tag-getbig" --raw GET big || a_fail "$tag: GET of 10 MiB failed"
	got=$(head -c -1 "$t_work/$tag-getbig.out" | sha256sum | cut -d' ' -f1)
	rcli "$tag-len" STRLEN big
	if [ "$got" = "$want" ] && [ "$(tr -d '\r' <"$t_work/$tag-len.out")" = 10485760 ]; then
		t_log "ok $tag: 10 MiB value read back, sha256 $got"
	else
		a_fail "$tag: 10 MiB value: sha256 read $got, written $want, STRLEN $(cat "$t_work/$tag-len.out")"
	fi
	: >"$t_work/$tag.cmds"
	: >"$t_work/$tag.want"
	for i in $(seq 0 199); do
		local v
		v=$(head -c $((1 + i * 37 % 3000)) /dev/urandom | sha256sum | cut -c1-$((1 + i % 64)))$i
		echo "SET key:$i $v" >>"$t_work/$tag.cmds"
		echo "$v" >>"$t_work/$tag.want"
	done
	# (its runtime's debug log on stderr: redis-cli's own replies go to a
	# file, buffered, and are lost when timeout kills it)
	local rc=0
	a_client "$tag-set" env USMC_DEBUG=1 redis-cli -h "$A_SADDR" -p 6379 <"$t_work/$tag.cmds" || rc=$?
	if [ $rc != 0 ]; then
		a_fail "$tag: SETs failed (exit $rc)"
		a_show "$tag-set" 60
		a_show "server-${tag#cli-}" 40
	fi
	[ "$(grep -c '^OK' "$t_work/$tag-set.out")" = 200 ] || a_fail "$tag: $(grep -c '^OK' "$t_work/$tag-set.out") of 200 SET said OK"
	rcli "$tag-mget" --raw MGET $(seq -f 'key:%g' 0 199)
	if cmp -s "$t_work/$tag-mget.out" "$t_work/$tag.want"; then
		t_log "ok $tag: 200 keys read back with MGET"
	else
		a_fail "$tag: MGET differs from what was written: $(diff "$t_work/$tag-mget.out" "$t_work/$tag.want" | head -4)"
	fi
	a_smcr "$t_work/$tag-mget.stats" 1 && a_smcr "$t_work/$tag-setbig.stats" 1 ||
		a_fail "$tag: redis-cli not over SMC-R"
}

bgsave() { # TAG
	local tag=$1 last0 i st=
	last0=$(pcli LASTSAVE)
	sleep 1.1 # LASTSAVE counts seconds
	USMC_SHORTCONN=off a_client "$tag-load" redis-benchmark -h "$A_SADDR" -p 6379 -t set,get -c 20 -n "$N" -r 100000 --csv &
	local lpid=$!
	sleep 0.5
	pcli BGSAVE >"$t_work/$tag-bg.out" 2>&1
	grep -q 'Background saving started' "$t_work/$tag-bg.out" || a_fail "$tag: BGSAVE said: $(cat "$t_work/$tag-bg.out")"
	for i in $(seq 150); do
		[ "$(info_field rdb_bgsave_in_progress)" = 0 ] && { st=$(info_field rdb_last_bgsave_status); break; }
		sleep 0.2
	done
	local last1
	last1=$(pcli LASTSAVE)
	local lrc=0
	wait $lpid || lrc=$?
	if [ "$st" = ok ] && [ -n "$last1" ] && [ "$last1" != "$last0" ] && [ -s "$t_work/dump.rdb" ]; then
		t_log "ok $tag: BGSAVE done (LASTSAVE $last0 -> $last1, dump.rdb $(stat -c %s "$t_work/dump.rdb") bytes) with 20 clients connected"
	else
		a_fail "$tag: BGSAVE status '$st', LASTSAVE $last0 -> $last1, dump.rdb $(stat -c %s "$t_work/dump.rdb" 2>&1)"
		a_show server 10
	fi
	if [ $lrc != 0 ] || grep -qiE 'error|refused|reset' "$t_work/$tag-load.out" "$t_work/$tag-load.err" ||
		! grep -q '^"GET"' "$t_work/$tag-load.out"; then
		a_fail "$tag: clients during BGSAVE: exit $lrc"
		a_show "$tag-load"
	else
		t_log "ok $tag: the clients connected during BGSAVE finished: $(cut -d, -f1,2 "$t_work/$tag-load.out" | tr -d '"' | tail -n +2 | tr '\n' ' ')"
	fi
	a_smcr "$t_work/$tag-load.stats" 20 || a_fail "$tag: the clients were not over SMC-R"
}

run() { # lab|local|same-lo|same-lab N [light: 1, 2 and 4 only]
	a_where "$1"
	local n=$2 light=${3:-}
	rm -f "$t_work/dump.rdb"
	: >"$t_work/plain"
	USMC_DEBUG=1 a_server server-$1 6379 redis-server --port 6379 --bind "$A_SADDR" --protected-mode no \
		--save '' --appendonly no --dir "$t_work" --dbfilename dump.rdb || {
		a_fail "$1: redis-server did not start"
		return
	}
	# one request per round trip, latency bound: at A_N in the lab it took
	# 57 s of the test's 137 s, near the client's 120 s on a loaded
	# machine; at most A_N/4 as on one host, the -P 16 run keeps A_N
	bench "bench-$1" "$((n < N / 4 ? n : N / 4))"
	[ -n "$light" ] || bench "bench-P16-$1" "$n" -P 16
	readback "cli-$1"
	[ -n "$light" ] || bgsave "bgsave-$1"
	rcli "shutdown-$1" SHUTDOWN NOSAVE
	a_stop $a_spid TERM || t_log "$1: redis-server exit status $? after SHUTDOWN"
	# the server's own connections: all SMC-R (its BGSAVE child exits with _exit: no line)
	# The server's own connections: SMC-R but for our plain control
	# clients. redis-benchmark closes the connections still in their
	# handshake when a test ends (-P 16 with a small -n): the server counts
	# those as failed, "SMC handshake failed ADDRS: Connection reset by
	# peer".
	local np nreset
	np=$(wc -l <"$t_work/plain")
	nreset=$(grep -c 'SMC handshake failed .*: Connection reset by peer$' "$t_work/server-$1.err")
	a_smcr "$t_work/server-$1.stats" $([ -n "$light" ] && echo 50 || echo 100) "$np" "$nreset" &&
		t_log "ok $1: redis-server $A_SMCR ($np plain control clients, $nreset handshakes reset by a closing redis-benchmark)" || {
		a_fail "$1: redis-server not all over SMC-R ($np plain control clients)"
		grep -E 'fallback|fail|abort' "$t_work/server-$1.err" | sed 's/fd [0-9]*/fd N/' | sort | uniq -c | head
	}
}

run lab "$N"
run local $((N / 4))
# one address for both processes: every connection still SMC-R
run same-lo $((N / 4)) light
run same-lab $((N / 4)) light

# Mixed, in the lab: the programs work unchanged over TCP, the reason logged.
a_where lab
A_PORTS=6379
a_server server-mixed 6379 env USMC_DEBUG=1 redis-server --port 6379 --bind "$T_H1" \
	--protected-mode no --save '' --appendonly no --dir "$t_work" --dbfilename mixed.rdb || a_fail "mixed: server"
if [ "$(t_exec h2 timeout 20 redis-cli -h "$T_H1" -p 6379 SET plain yes)" = OK ] &&
	[ "$(t_exec h2 timeout 20 redis-cli -h "$T_H1" -p 6379 GET plain)" = yes ]; then
	t_log "ok mixed: plain redis-cli -> usmc redis-server over TCP"
else
	a_fail "mixed: plain redis-cli -> usmc redis-server"
fi
rcli shutdown-mixed SHUTDOWN NOSAVE
a_stop $a_spid TERM
if grep -q 'TCP fallback .*: PEERNOSMC' "$t_work/server-mixed.err" && a_smcr "$t_work/server-mixed.stats" 1 2; then
	t_log "ok mixed: the usmc server's log names the reason: $(grep -m1 'TCP fallback' "$t_work/server-mixed.err")"
else
	a_fail "mixed: no PEERNOSMC fallback in the usmc server's log/stats: $(tail -3 "$t_work/server-mixed.err")"
fi
# usmc on both ends, SMC port 6379, and a rule (USMC_RULES, first match
# wins, docs/rules.md) that says tcp: on the server for this client's
# address, then on the client for redis-cli
USMC_DEBUG=1 USMC_RULES="tcp remote $T_H2 port 6379" a_server server-rules 6379 redis-server --port 6379 \
	--bind "$T_H1" --protected-mode no --save '' --appendonly no --dir "$t_work" --dbfilename rules.rdb || a_fail "rules: server"
USMC_DEBUG=1 a_client rules-srv redis-cli -h "$T_H1" -p 6379 SET r server-rule
USMC_DEBUG=1 USMC_RULES="tcp program redis-cli" a_client rules-cli redis-cli -h "$T_H1" -p 6379 GET r
if [ "$(cat "$t_work/rules-cli.out")" = server-rule ] &&
	grep -q "TCP fallback .*: PEERDECL .*peer declined" "$t_work/rules-srv.err" &&
	grep -q "TCP fallback .*: PEERNOSMC .*rule 1 at USMC_RULES:1 (tcp program redis-cli) matched: tcp" "$t_work/rules-cli.err" &&
	grep -q "TCP fallback .*: PEERNOSMC .*rule 1 at USMC_RULES:1 (tcp remote $T_H2 port 6379) matched: tcp" "$t_work/server-rules.err" &&
	a_smcr "$t_work/rules-srv.stats" 0 1 && a_smcr "$t_work/rules-cli.stats" 0 1; then
	t_log "ok mixed: a tcp rule on the server: $(grep -m1 -o 'TCP fallback.*' "$t_work/server-rules.err")"
	t_log "ok mixed: ... the client sees: $(grep -m1 -o 'TCP fallback.*' "$t_work/rules-srv.err")"
	t_log "ok mixed: a tcp rule on the client: $(grep -m1 -o 'TCP fallback.*' "$t_work/rules-cli.err")"
else
	a_fail "mixed: tcp rules: GET gave '$(cat "$t_work/rules-cli.out")'"
	grep -h 'TCP fallback\|stats:\|rule' "$t_work/rules-srv.err" "$t_work/rules-cli.err" "$t_work/server-rules.err" | head -10
fi
a_stop $a_spid TERM
a_smcr "$t_work/server-rules.stats" 0 2 || a_fail "mixed: the server with the tcp rule"

# usmc redis-cli -> plain redis-server (6380 is not in the rules), and usmc
# on both ends on 6380 while the rules list only 6379
# Each with an rdb file of its own: the default dump.rdb is the 11 MB that
# BGSAVE wrote above, and a server still loading it answers SET with
# -LOADING (redis-cli exits 0), so the GET after it found nothing.
a_plain_server plain 6380 redis-server --port 6380 --bind "$T_H1" --protected-mode no --save '' --appendonly no --dir "$t_work" --dbfilename plain6380.rdb || a_fail "mixed: plain server"
ppid=$a_spid
for side in plain usmc; do
	if [ $side = usmc ]; then
		a_stop $ppid TERM
		a_server server-rule 6380 redis-server --port 6380 --bind "$T_H1" --protected-mode no --save '' --appendonly no --dir "$t_work" --dbfilename usmc6380.rdb || a_fail "mixed: usmc server on 6380"
		ppid=$a_spid
	fi
	USMC_DEBUG=1 a_client mixed-$side redis-cli -h "$T_H1" -p 6380 SET k "$side" &&
		USMC_DEBUG=1 a_client mixed-get-$side redis-cli -h "$T_H1" -p 6380 GET k
	if [ "$(cat "$t_work/mixed-get-$side.out")" = "$side" ] &&
		grep -q 'TCP fallback .*: PEERNOSMC .*port 6380 is not an SMC port' "$t_work/mixed-get-$side.err" &&
		a_smcr "$t_work/mixed-get-$side.stats" 0 1; then
		t_log "ok mixed: usmc redis-cli -> $side redis-server on a port the rules say tcp: $(grep -m1 -o 'TCP fallback.*' "$t_work/mixed-get-$side.err")"
	else
		a_fail "mixed: usmc redis-cli -> $side server on 6380: $(cat "$t_work/mixed-get-$side.out" "$t_work/mixed-get-$side.err" | tail -3)"
	fi
done
a_client shutdown-rule redis-cli -h "$T_H1" -p 6380 SHUTDOWN NOSAVE
a_stop $ppid TERM
# a listener on a port the rules do not list: no SMC-R, nothing failed
# (its 3 connections are counted as fallback or not at all, by runtime version)
grep -qE 'stats: smcr=0 fallback=(0|3) failed=0' "$t_work/server-rule.stats" && t_log "ok mixed: the usmc server on 6380: $(cut -d' ' -f3-5 "$t_work/server-rule.stats")" ||
	a_fail "mixed: usmc server on 6380 stats: $(cat "$t_work/server-rule.stats")"
t_no_reentry "$t_work"/*.stats && t_log "ok: $(cat "$t_work"/*.stats | grep -c 'stats: ') usmc processes, preload_reentries=0 in each" ||
	a_fail "the runtime came back through the preload's interposers"
a_end
