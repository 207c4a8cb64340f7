#!/usr/bin/env bash
# Half-close over SMC-R: in stream mode the client shuts down its write
# side after the data and then reads the server's reply (byte count and
# checksum) on the same connection. A reply can only arrive if the
# shutdown closed just one direction. A single byte and sizes that end
# mid-buffer; both sides must succeed and agree on the count.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
t_lab_up
fail=0
for n in 1 65537 3145731; do
	t_run_pair "hc-$n" 7070 --verify --json -- -n "$n" --verify --json --timeout 60 &&
		t_check_smcr "hc-$n" "$n" || fail=1
done
[ $fail = 0 ] || t_fail "half-close did not work for every size"
t_log PASS
