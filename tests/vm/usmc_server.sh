#!/usr/bin/env bash
# usmc server (softroce, VM 1) <-> kernel AF_SMC client (rxe, VM 2)
#
# VM cell 3a (docs/vm.md): usmc-perf over the usmc runtime and softroce in
# VM 1 serves the kernel's AF_SMC client in VM 2, 1 MiB each way on two
# connections, every byte verified. Both ends must say SMC-R (usmc's
# usmc_get_info with transport softroce, the kernel's smc_diag) and the
# capture must hold the CLC handshakes and at least 2 MiB of RDMA WRITE
# payload, nothing malformed, every ICRC right (vm_cell_usmc in lib_vm.sh).
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
vm_cell_usmc "$1" usmc-server softroce 7121 7122 1048576
