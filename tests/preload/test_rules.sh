#!/usr/bin/env bash
# Rules (docs/rules.md) through the preload, in the two-host lab, each side
# with its own rules file (USMC_CONF), byte-exact transfers:
#  1. the client's rule says tcp for the server's address: both ends TCP,
#     the client's log names the rule (file:line) and usmc-run --explain
#     says the same;
#  2. the server's rule says tcp for this client's address (its listener
#     decides per connection): the client's Proposal is declined, both
#     ends TCP, the server's log names the rule;
#  3. rules by remote prefix that say smc, on both ends: SMC-R;
#  4. a syntax error in the client's file: refused with FILE:LINE:COL
#     printed once, every connection TCP even though -p lists the port.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss
t_lab_up
fails=0
S1="smcr=1 fallback=0 failed=0"
F1="smcr=0 fallback=1 failed=0"
net=${T_H1%.*}.0/24

# rules_pair PORT SERVER_CONF CLIENT_CONF WANT_SERVER WANT_CLIENT: rw over
# usmc-run on both ends (no -p: the files alone decide), debug logs kept.
rules_pair() {
	local port=$1 sconf=$2 cconf=$3 wants=$4 wantc=$5
	local d=$t_work/p$port spid crc=0 src=0
	mkdir -p "$d"
	USMC_DEBUG=1 USMC_CONF=$sconf t_usmc h1 "$d/s.stats" "" "$T_PEER" server "$port" rw >"$d/s.out" 2>"$d/s.err" &
	spid=$!
	busywait 10000 t_listening h1 "$port" || {
		kill $spid 2>/dev/null
		t_log "port $port: server did not listen: $(cat "$d/s.err")"
		return 1
	}
	USMC_DEBUG=1 USMC_CONF=$cconf t_usmc h2 "$d/c.stats" "" "$T_PEER" client "$T_H1" "$port" rw "" \
		>"$d/c.out" 2>"$d/c.err" || crc=$?
	[ $crc = 0 ] || kill $spid 2>/dev/null
	wait $spid || src=$?
	if [ $crc != 0 ] || [ $src != 0 ] || ! t_stats "$d/s.stats" "$wants" ||
		! t_stats "$d/c.stats" "$wantc"; then
		t_log "port $port: client exit $crc, server exit $src"
		sed 's/^/  client: /' "$d/c.out" "$d/c.err" | tail -15
		sed 's/^/  server: /' "$d/s.out" "$d/s.err" | tail -15
		return 1
	fi
	t_log "ok port $port: $(head -1 "$d/c.out"); server '$wants' client '$wantc'"
}

# t_has FILE PATTERN WHAT: a fixed string in a log.
t_has() {
	if grep -qF -- "$2" "$1"; then
		t_log "ok $3: $(grep -F -- "$2" "$1" | head -1)"
	else
		t_log "$3: no '$2' in $1: $(tail -5 "$1")"
		return 1
	fi
}

# 1. the client says tcp
printf 'smc port 7401\n' >"$t_work/s1.conf"
printf '# the client\ntcp remote %s/32 # not this server\nsmc port 7401\n' "$T_H1" >"$t_work/c1.conf"
rules_pair 7401 "$t_work/s1.conf" "$t_work/c1.conf" "$F1" "$F1" || fails=$((fails + 1))
t_has "$t_work/p7401/c.err" "-> $T_H1:7401: PEERNOSMC 0x03010000 rule 1 at $t_work/c1.conf:2 (tcp remote $T_H1/32) matched: tcp" \
	"client names its rule" || fails=$((fails + 1))
USMC_CONF=$t_work/c1.conf "$T_RUN" --explain --connect "$T_H1:7401" preload_peer >"$t_work/explain1" 2>&1 || fails=$((fails + 1))
t_has "$t_work/explain1" "why: rule 1 at $t_work/c1.conf:2 (tcp remote $T_H1/32) matched" "explain" || fails=$((fails + 1))
t_has "$t_work/explain1" "decision: tcp" "explain" || fails=$((fails + 1))

# 2. the server says tcp to this client: its listener decides per peer
printf 'tcp remote %s port 7402\nsmc port 7402\n' "$T_H2" >"$t_work/s2.conf"
printf 'smc port 7402\n' >"$t_work/c2.conf"
rules_pair 7402 "$t_work/s2.conf" "$t_work/c2.conf" "$F1" "$F1" || fails=$((fails + 1))
t_has "$t_work/p7402/s.err" ": PEERNOSMC 0x03010000 rule 1 at $t_work/s2.conf:1 (tcp remote $T_H2 port 7402) matched: tcp" \
	"server names its rule" || fails=$((fails + 1))
t_has "$t_work/p7402/s.err" "TCP fallback $T_H1:7402 <- $T_H2:" \
	"server names both ends" || fails=$((fails + 1))
t_has "$t_work/p7402/c.err" "-> $T_H1:7402: PEERDECL 0x05000000 peer declined: PEERNOSMC" \
	"client sees the decline" || fails=$((fails + 1))
"$T_RUN" -c "$t_work/s2.conf" --explain --listen "0.0.0.0:7402" >"$t_work/explain2" 2>&1 || fails=$((fails + 1))
t_has "$t_work/explain2" "decision: per connection" "explain listener" || fails=$((fails + 1))

# 3. smc by remote prefix on both ends
printf 'tcp remote 192.0.2.0/24\nsmc remote %s port 7403\n' "$net" >"$t_work/r3.conf"
rules_pair 7403 "$t_work/r3.conf" "$t_work/r3.conf" "$S1" "$S1" || fails=$((fails + 1))
t_has "$t_work/p7403/c.err" "rule 2 at $t_work/r3.conf:2 (smc remote $net port 7403) matched: smc" \
	"client's smc rule" || fails=$((fails + 1))

# 4. a bad file: refused, all tcp, said once
printf 'smc port 7404\nsmc port 7404 remote 10.0.0.300\n' >"$t_work/bad.conf"
d=$t_work/bad
mkdir -p "$d"
USMC_CONF=$t_work/s1.conf t_usmc h1 "$d/s.stats" 7404 "$T_PEER" server 7404 rw >"$d/s.out" 2>"$d/s.err" &
spid=$!
busywait 10000 t_listening h1 7404 || t_fail "server did not listen on 7404"
USMC_CONF=$t_work/bad.conf t_usmc h2 "$d/c.stats" 7404 "$T_PEER" client "$T_H1" 7404 rw "" >"$d/c.out" 2>"$d/c.err" ||
	fails=$((fails + 1))
wait $spid || fails=$((fails + 1))
t_stats "$d/c.stats" "$F1" || fails=$((fails + 1))
t_has "$d/c.err" "rules refused, every connection TCP: $t_work/bad.conf:2:22: bad address \"10.0.0.300\"" \
	"bad rule reported" || fails=$((fails + 1))
n=$(grep -c "rules refused" "$d/c.err")
[ "$n" = 1 ] || {
	t_log "the refusal was printed $n times, want once"
	fails=$((fails + 1))
}
if "$T_RUN" -c "$t_work/bad.conf" --explain --list >"$t_work/explain4" 2>&1; then
	t_log "--explain --list exits 0 on refused rules"
	fails=$((fails + 1))
fi
t_has "$t_work/explain4" "every connection: tcp" "explain refused" || fails=$((fails + 1))

[ $fails = 0 ] || t_fail "$fails rules case(s) failed"
t_log PASS
