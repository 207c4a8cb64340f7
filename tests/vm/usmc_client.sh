#!/usr/bin/env bash
# usmc client (softroce, VM 1) <-> kernel AF_SMC server (rxe, VM 2)
#
# VM cell 3b (docs/vm.md): usmc-perf over the usmc runtime and softroce in
# VM 1 is the client of the kernel's AF_SMC server in VM 2 (rdma_rxe):
# 1 MiB each way on two connections, every byte verified. Both ends must
# say SMC-R (usmc's usmc_get_info, the kernel's smc_diag) and the capture
# must hold the CLC handshakes, at least 2 MiB of RDMA WRITE payload, every
# ICRC right.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
UP=7131 DOWN=7132 N=1048576

case $1 in
srv)
	vm_usmc_host
	vm_wait ready
	vm_perf up.srv -c "$VM_CLI_ADDR" -p $UP -n $N
	vm_perf down.srv -c "$VM_CLI_ADDR" -p $DOWN -n $N -R
	vm_mark srv-done
	;;
cli)
	vm_kernel_smc
	vm_perf up.cli -s -1 --af-smc -p $UP &
	vm_perf down.cli -s -1 --af-smc -p $DOWN &
	vm_wait_listen $UP $DOWN
	vm_mark ready
	vm_reap srv-done
	"$SMCCTL" lgr >"$VM_OUT/lgr.cli.txt"
	;;
host)
	vm_host_usmc_kernel $UP $DOWN $N
	;;
esac
