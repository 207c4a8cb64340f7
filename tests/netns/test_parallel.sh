#!/usr/bin/env bash
# 64 concurrent SMC-R connections between the same two hosts, each a
# verified 1 MiB stream; they must all share one link group.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
t_lab_up
t_run_pair p64 7070 --verify --json -- -P 64 -n 1M --verify --json --timeout 150 ||
	t_fail "64 parallel connections failed"
c=$t_work/p64.client
path=$(t_json "$c" path)
verify=$(t_json "$c" verify)
conns=$(t_json "$c" connections)
lgrs=$(t_json "$c" link_groups)
bytes=$(t_json "$c" bytes)
t_log "client: path $path, verify $verify, connections $conns, link_groups $lgrs, bytes $bytes, $(t_json "$c" gbps) Gbit/s"
[ "$path" = smcr ] || t_fail "path is '$path', not smcr"
[ "$verify" = ok ] || t_fail "verify is '$verify'"
[ "$conns" = 64 ] || t_fail "$conns connections, not 64"
[ "$lgrs" = 1 ] || t_fail "the client used $lgrs link groups, not 1"
[ "$bytes" = $((64 * 1048576)) ] || t_fail "$bytes bytes, not 64 MiB"
# The server prints one result per connection.
s=$t_work/p64.server
nres=$(t_json_all "$s" verify | grep -c .)
nok=$(t_json_all "$s" verify | grep -c '^ok$')
nsmc=$(t_json_all "$s" path | grep -c '^smcr$')
sbytes=$(t_json_all "$s" bytes | awk '{ t += $1 } END { print t + 0 }')
t_log "server: $nres results, $nok verified, $nsmc over smcr, $sbytes bytes in total"
[ "$nres" = 64 ] && [ "$nok" = 64 ] && [ "$nsmc" = 64 ] || t_fail "the server did not verify 64 SMC-R connections"
[ "$sbytes" = $((64 * 1048576)) ] || t_fail "the server received $sbytes bytes, not 64 MiB"
t_log PASS
