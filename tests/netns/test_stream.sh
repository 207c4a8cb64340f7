#!/usr/bin/env bash
# Streams over SMC-R (softroce) between two namespaces, byte-exact
# (--verify: every byte checked plus a checksum over the stream, compared
# with the peer's): 1 MiB and 256 MiB, client->server and server->client.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
t_lab_up
fail=0
for size in 1M 256M; do
	case $size in 1M) n=1048576 ;; 256M) n=268435456 ;; esac
	t_run_pair "up-$size" 7070 --verify --json -- -n "$size" --verify --json --timeout 150 &&
		t_check_smcr "up-$size" $n || fail=1
	t_run_pair "down-$size" 7070 --verify --json -- -n "$size" -R --verify --json --timeout 150 &&
		t_check_smcr "down-$size" $n || fail=1
done
[ $fail = 0 ] || t_fail "a stream was not transferred byte-exact over SMC-R"
t_log PASS
