#!/usr/bin/env bash
# The README's demo (netns/usmc-lab demo), with a 16 MiB main transfer so
# it stays quick: SMC-R verified on both sides, the payload seen by tshark
# as RDMA WRITEs, TCP carrying only the CLC handshake, no malformed packet,
# every ICRC OK. usmc-lab --test exits 77 itself on a machine without
# network namespaces.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 tshark tcpdump timeout ss
t_need_perf
t_work_up # the demo's usmc-perf publish in $t_work/stat, not /dev/shm
rc=0
timeout 300 "$USMC_SRC/netns/usmc-lab" --test --name "demo-$$" --perf "$T_PERF" --bytes 16M demo \
	>"$t_work/demo.out" 2>&1 || rc=$?
cat "$t_work/demo.out"
out=$(cat "$t_work/demo.out")
"$USMC_SRC/netns/usmc-lab" --name "demo-$$" down >/dev/null 2>&1
[ $rc != 77 ] || exit 77
[ $rc = 0 ] || t_fail "usmc-lab demo exited $rc"
[[ $out == *"demo OK: 16777216 bytes crossed as RDMA WRITEs"*"SMC TCP option"* ]] || t_fail "no 'demo OK' line"
t_log PASS
