#!/usr/bin/env bash
# One slow or hostile client cannot stall the others. Twelve hostile
# clients (hostile_clc.py: silent, part of a Proposal, a Proposal 4 bytes
# at a time, a header announcing 65535 bytes, random bytes, a Confirm
# first, a whole Proposal and then silence) connect to a usmc-perf server
# first; then ten good connections (usmc-perf -P 10) start while all of
# them are still open. Every good connection must be SMC-R and byte-exact,
# within the time a lone run takes plus a margin far below a client's 6 s
# CLC timeout; each hostile one must end on the server's own clock (a
# part Proposal within 2 s, an Accept never confirmed after the 6 s
# Confirm wait as smc_listen_work's, a bad header at once), never crash the server, and never reach a good connection; ten
# more good connections after the failed handshakes' QPs are gone.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss
t_need_perf
t_lab_up
port=7090
hostile=(silent silent truncated truncated trickle huge huge random random badtype proposal proposal)

# no -1: the server must outlive the good test, so that every hostile
# connection ends on the server's timers, not on its exit
t_server "$t_work/srv" $port "$T_PERF" -s -p $port --verify --json
hpids=()
i=0
for m in "${hostile[@]}"; do
	t_exec h2 timeout 30 python3 "$USMC_SRC/tests/netns/hostile_clc.py" \
		--hold 12 "$T_H1" $port "$m" >"$t_work/hostile.$i" 2>&1 &
	hpids+=($!)
	i=$((i + 1))
done
n_in() { grep -lx connected "$t_work"/hostile.* 2>/dev/null | wc -l; }
all_in() { [ "$(n_in)" -ge ${#hostile[@]} ]; }
busywait 10000 all_in || t_fail "the hostile clients did not all connect ($(n_in) of ${#hostile[@]})"
t_log "${#hostile[@]} hostile clients connected; starting 10 good connections"

t0=$(date +%s%N)
crc=0 crc2=0
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p $port -P 10 -n 1M --verify --json --timeout 50 \
	>"$t_work/good" 2>"$t_work/good.err" || crc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
wait "${hpids[@]}"
# A second wave, after the failed handshakes' QPs were destroyed: none of
# their completions may reach a new connection's QP.
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p $port -P 10 -n 1M --verify --json --timeout 50 \
	>"$t_work/good2" 2>"$t_work/good2.err" || crc2=$?
kill -0 "$t_spid" 2>/dev/null || {
	sed 's/^/  server: /' "$t_work/srv" "$t_work/srv.err" | tail -20
	t_fail "the server died"
}
kill "$t_spid"
wait "$t_spid" 2>/dev/null
c=$t_work/good
t_log "good client: exit $crc in $ms ms, path $(t_json "$c" path), verify $(t_json "$c" verify), connections $(t_json "$c" connections), bytes $(t_json "$c" bytes)"
[ $crc = 0 ] || {
	sed 's/^/  client: /' "$c" "$c.err" | tail -20
	t_fail "the good client failed"
}
[ "$(t_json "$c" path)" = smcr ] && [ "$(t_json "$c" verify)" = ok ] &&
	[ "$(t_json "$c" connections)" = 10 ] && [ "$(t_json "$c" bytes)" = $((10 * 1048576)) ] ||
	t_fail "the good client did not move 10 MiB over SMC-R, verified"
# 10 x 1 MiB takes well under a second here; the hostile clients' timers
# (2 s, 6 s) must not show up in it, and a client waits 6 s at most.
[ $ms -lt 4000 ] || t_fail "the good connections took $ms ms: held up by the hostile ones"
c=$t_work/good2
[ $crc2 = 0 ] && [ "$(t_json "$c" path)" = smcr ] && [ "$(t_json "$c" verify)" = ok ] &&
	[ "$(t_json "$c" connections)" = 10 ] ||
	t_fail "the second wave did not move 10 MiB over SMC-R, verified: $(tail -3 "$c" "$c.err")"
nok=$(t_json_all "$t_work/srv" verify | grep -c '^ok$')
nsmc=$(paste <(t_json_all "$t_work/srv" verify) <(t_json_all "$t_work/srv" path) | grep -c '^ok	smcr$')
t_log "server: $nok verified results, $nsmc of them over SMC-R"
[ "$nsmc" = 20 ] || t_fail "the server verified $nsmc SMC-R connections, not 20"

# What each hostile client saw: MODE got=... end=... after=Ns
bad=0
for f in "$t_work"/hostile.*; do
	line=$(tail -1 "$f")
	t_log "hostile: $line"
	set -- $line
	mode=$1 got=${2#got=} end=${3#end=} after=${4#after=}
	after=${after%s}
	case $mode in
	truncated | trickle)
		# dropped on the 2 s Proposal timer (reset: bytes were unread)
		[[ $end =~ ^(closed|reset)$ ]] && awk -v a="$after" 'BEGIN { exit !(a >= 1.5 && a < 4) }' || bad=1 ;;
	huge | badtype)
		# dropped at once, nothing sent back
		[[ $end =~ ^(closed|reset)$ ]] && [ "$got" = nothing ] && awk -v a="$after" 'BEGIN { exit !(a < 1.5) }' || bad=1 ;;
	proposal)
		# answered, then dropped when the 6 s wait for the Confirm ends
		# (CLC_WAIT_TIME, as smc_listen_work), before the 10 s guard
		[ "$got" = accept ] && [[ $end =~ ^(closed|reset)$ ]] && awk -v a="$after" 'BEGIN { exit !(a >= 5 && a < 9.5) }' || bad=1 ;;
	random)
		# a plain TCP client: usmc-perf gets its bytes and rejects them
		[[ $end =~ ^(closed|reset)$ ]] && [ "$got" = nothing ] || bad=1 ;;
	silent)
		# a plain TCP client that never speaks: held by the app
		case $end in held | closed) ;; *) bad=1 ;; esac ;;
	esac
	[ $bad = 0 ] || t_fail "hostile client '$mode' was not handled as expected: $line"
done
t_log PASS
