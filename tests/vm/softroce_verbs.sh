#!/usr/bin/env bash
# usmc over softroce (VM 1) <-> usmc over verbs on the kernel's rxe (VM 2)
#
# VM cell 5 (docs/vm.md): two usmc hosts, one RNIC in user space, the
# other the kernel's rdma_rxe driven through libibverbs. On port A the
# softroce side serves two concurrent connections of 1 MiB each from the
# verbs side (one link group); on port B the verbs side serves and the
# softroce side reads 1 MiB (-R). Every byte verified, both ends SMC-R
# over their own transport, the capture as in the other cells (nothing
# malformed, every ICRC right, the RDMA WRITE payload on the wire).
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
A=7191 B=7192 N=1048576
case $1 in
srv)
	vm_usmc_host
	vm_perf a.srv -s -1 --transport softroce -p $A &
	vm_wait_listen $A
	vm_mark a
	vm_wait b
	vm_perf b.srv -c "$VM_CLI_ADDR" --transport softroce -p $B -n $N -R
	vm_mark b-done
	vm_reap b-done
	;;
cli)
	vm_kernel_smc # rxe0 for verbs; no AF_SMC socket is made
	export USMC_CGROUP=${USMC_CGROUP:-private}
	vm_wait a
	vm_perf a.cli -c "$VM_SRV_ADDR" --transport verbs -p $A -n $N -P 2
	vm_perf b.cli -s -1 --transport verbs -p $B &
	vm_wait_listen $B
	vm_mark b
	vm_reap b-done
	;;
host)
	vm_expect_perf a.cli smcr $((2 * N))
	vm_expect_perf a.srv smcr $N
	vm_expect_perf b.srv smcr $N
	vm_expect_perf b.cli smcr $N
	for t in a.srv:softroce b.srv:softroce a.cli:verbs b.cli:verbs; do
		got=$(sed -n 's/.*"transport":"\([^"]*\)".*/\1/p' "$VM_OUT/${t%%:*}.json" | tail -1)
		[ "$got" = "${t#*:}" ] || vm_fail "${t%%:*}: transport '$got', expected ${t#*:}"
	done
	got=$(sed -n 's/.*"link_groups":\([0-9]*\).*/\1/p' "$VM_OUT/a.cli.json" | tail -1)
	[ "$got" = 1 ] || vm_fail "the verbs client made $got link groups for two connections, expected 1"
	vm_capture_check $A $B
	got=$(sed -n 's/.* confirm=\([0-9]*\).*/\1/p' "$VM_OUT/decode.txt" | tail -1)
	((got >= 3)) || vm_fail "the capture has ${got:-no} CLC Confirms (usmc-decode; tshark: $CAP_CLC), expected 3"
	((CAP_WRITE_BYTES >= 3 * N)) || vm_fail "RDMA WRITE payload $CAP_WRITE_BYTES < $((3 * N)) bytes"
	((CAP_TCP <= 12288)) || vm_fail "TCP carried $CAP_TCP payload bytes: more than the CLC handshakes"
	vm_log "SMC-R: $CAP_CLC CLC Confirms, $CAP_ROCE RoCE packets, $CAP_WRITE_BYTES RDMA WRITE payload bytes"
	;;
esac
