#!/usr/bin/env bash
# kernel AF_SMC <-> kernel AF_SMC over rdma_rxe, 1 MiB each way
#
# VM cell 1 (docs/vm.md): the kernel's AF_SMC client (VM 2) and server
# (VM 1) over rdma_rxe, 1 MiB each way (two connections on one link
# group), every byte verified. SMC-R is proven three ways: smc_diag says
# SMCR for both ends' sockets (usmc-perf --af-smc), the kernel lists the
# link group on both sides, and the capture holds the CLC handshakes and at
# least 2 MiB of RDMA WRITE payload while TCP carries only CLC.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
UP=7101 DOWN=7102 N=1048576

case $1 in
srv)
	vm_kernel_smc
	vm_perf up.srv -s -1 --af-smc -p $UP &
	vm_perf down.srv -s -1 --af-smc -p $DOWN &
	vm_wait_listen $UP $DOWN
	vm_mark srv-ready
	vm_reap cli-done
	"$SMCCTL" lgr >"$VM_OUT/lgr.srv.txt"
	;;
cli)
	vm_kernel_smc
	vm_wait srv-ready
	vm_perf up.cli -c "$VM_SRV_ADDR" -p $UP --af-smc -n $N
	vm_perf down.cli -c "$VM_SRV_ADDR" -p $DOWN --af-smc -n $N -R
	vm_mark cli-done
	"$SMCCTL" lgr >"$VM_OUT/lgr.cli.txt"
	;;
host)
	for t in up.srv down.srv up.cli down.cli; do vm_expect_perf $t smcr $N; done
	cat "$VM_OUT"/lgr.*.txt
	grep -q '^lgr .*role=SERV' "$VM_OUT/lgr.srv.txt" || vm_fail "the server's kernel lists no SMC-R link group"
	grep -q '^lgr .*role=CLNT' "$VM_OUT/lgr.cli.txt" || vm_fail "the client's kernel lists no SMC-R link group"
	vm_capture_check $UP $DOWN
	((CAP_CLC >= 2)) || vm_fail "the capture has $CAP_CLC CLC Confirms on ports $UP/$DOWN, expected 2"
	((CAP_WRITE_BYTES >= 2 * N)) || vm_fail "RDMA WRITE payload $CAP_WRITE_BYTES < $((2 * N)) bytes"
	((CAP_TCP <= 8192)) || vm_fail "TCP carried $CAP_TCP payload bytes: more than the CLC handshakes"
	vm_log "SMC-R: $CAP_CLC CLC Confirms, $CAP_ROCE RoCE packets, $CAP_WRITE_BYTES RDMA WRITE payload bytes, $CAP_TCP TCP payload bytes"
	;;
esac
