#!/usr/bin/env bash
# usmc server (softroce, VM 1) <-> kernel AF_SMC client (rxe, VM 2)
#
# VM cell 3a (docs/vm.md): usmc-perf over the usmc runtime and softroce in
# VM 1 serves the kernel's AF_SMC client in VM 2 (rdma_rxe): 1 MiB each way
# on two connections, every byte verified. Both ends must say SMC-R (usmc's
# usmc_get_info, the kernel's smc_diag) and the capture must hold the CLC
# handshakes, at least 2 MiB of RDMA WRITE payload, every ICRC right.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
UP=7121 DOWN=7122 N=1048576

case $1 in
srv)
	vm_usmc_host
	vm_perf up.srv -s -1 -p $UP &
	vm_wait_listen $UP
	vm_mark up
	vm_reap up-done
	vm_perf down.srv -s -1 -p $DOWN &
	vm_wait_listen $DOWN
	vm_mark down
	vm_reap down-done
	;;
cli)
	vm_kernel_smc
	vm_wait up
	vm_perf up.cli -c "$VM_SRV_ADDR" -p $UP --af-smc -n $N
	vm_mark up-done
	vm_wait down
	vm_perf down.cli -c "$VM_SRV_ADDR" -p $DOWN --af-smc -n $N -R
	vm_mark down-done
	"$SMCCTL" lgr >"$VM_OUT/lgr.cli.txt"
	;;
host)
	vm_host_usmc_kernel $UP $DOWN $N
	;;
esac
