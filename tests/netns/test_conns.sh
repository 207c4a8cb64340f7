#!/usr/bin/env bash
# Scale (docs/runtime.md "Scale and memory"): CONNS_N (default 4096) idle
# connections from one usmc-perf process in h2 to one in h1 (--conns),
# then a 1 KiB pattern message each way on every one, every byte compared
# at both ends. Over softroce (test_conns_shm.sh: USMC_SHM=1, SMC-D over
# shm): every connection at both ends must be SMC (smcr= in USMC_STATS is
# CONNS_N + 1, fallback=0, failed=0), spread over link groups of at most
# 255 connections each (SMC_RMBS_PER_LGR_MAX); the memory each idle
# connection adds (RSS, PSS) is printed beside kernel TCP's from the same
# run, and must stay within CONNS_MAX_KIB (default 64) at both ends.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
n=${CONNS_N:-4096}
max_kib=${CONNS_MAX_KIB:-64}
want_path=${T_SMC_PATH:-smcr}
# one fd per connection at least (its TCP connection), plus the runtime's
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge $((n + 256)) ] ||
	t_skip "the fd limit is $hard, $n connections need about $((n + 256))"
t_lab_up
fail=0
export USMC_STATS=1

# kernel TCP, the same two processes' shape: the baseline
t_run_pair tcp 7401 --conns "$n" --tcp --json --timeout 100 -- --conns "$n" --tcp --json --timeout 100 ||
	t_fail "$n TCP connections failed"
t_log "TCP: per idle connection, client RSS $(t_json "$t_work/tcp.client" rss_kib_per_conn) KiB PSS $(t_json "$t_work/tcp.client" pss_kib_per_conn) KiB; server RSS $(t_json "$t_work/tcp.client" server_rss_kib_per_conn) KiB PSS $(t_json "$t_work/tcp.client" server_pss_kib_per_conn) KiB (user space only)"

t_run_pair usmc 7402 --conns "$n" --json --timeout 100 -- --conns "$n" --json --timeout 100 ||
	t_fail "$n usmc connections failed"
for side in client server; do
	f=$t_work/usmc.$side
	ok=$(t_json "$f" ok)
	smc=$(t_json "$f" "$want_path")
	fb=$(t_json "$f" fallbacks)
	checked=$(t_json "$f" bytes_checked)
	[ "$ok" = true ] && [ "$smc" = "$n" ] && [ "$fb" = 0 ] &&
		[ "$checked" = $(((n + 1) * 1024)) ] || {
		t_log "$side: ok $ok, $want_path $smc of $n, fallbacks $fb, bytes checked $checked"
		fail=1
	}
	st=$(grep 'stats:' "$f.err")
	t_log "$side: $st"
	smcr=$(sed -n 's/.* smcr=\([0-9]*\) .*/\1/p' <<<"$st")
	lgrs=$(sed -n 's/.* link_groups=\([0-9]*\) .*/\1/p' <<<"$st")
	smcd=$(sed -n 's/.* smcd=\([0-9]*\) .*/\1/p' <<<"$st")
	grep -q ' fallback=0 failed=0 ' <<<"$st" && [ "$smcr" = $((n + 1)) ] || {
		t_log "$side: USMC_STATS want smcr=$((n + 1)) fallback=0 failed=0"
		fail=1
	}
	if [ "$want_path" = smcd ]; then
		[ "$smcd" = $((n + 1)) ] || {
			t_log "$side: USMC_STATS smcd=$smcd, want $((n + 1))"
			fail=1
		}
	elif [ -z "$lgrs" ] || [ "$lgrs" -lt $(((n + 1 + 254) / 255)) ]; then
		t_log "$side: $lgrs link groups for $((n + 1)) connections (at most 255 each)"
		fail=1
	fi
done
c=$t_work/usmc.client
crss=$(t_json "$c" rss_kib_per_conn)
cpss=$(t_json "$c" pss_kib_per_conn)
srss=$(t_json "$c" server_rss_kib_per_conn)
spss=$(t_json "$c" server_pss_kib_per_conn)
t_log "usmc ($want_path): per idle connection, client RSS $crss KiB PSS $cpss KiB; server RSS $srss KiB PSS $spss KiB; $(t_json "$c" connect_seconds) s to connect $n"
for v in "$crss" "$cpss" "$srss" "$spss"; do
	awk -v v="$v" -v hi="$max_kib" 'BEGIN { exit !(v != "" && -1 <= v && v <= hi) }' || {
		t_log "memory per idle connection $v KiB is not within -1..$max_kib KiB (a delta: freed pages can make it slightly negative)"
		fail=1
	}
done
[ $fail = 0 ] || t_fail "see above"
t_log PASS
