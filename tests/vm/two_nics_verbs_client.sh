#!/usr/bin/env bash
# two_nics.sh with usmc over verbs on VM 1's rxe0 and rxe1 (the buffers
# registered on both devices, verbs' reg_mr), as the client; the kernel
# server's eth0 goes down (docs/vm.md, cell two_nics_verbs_client)
export TWO_NICS_KIND=usmc-client TWO_NICS_TP=verbs TWO_NICS_DOWN=kernel TWO_NICS_PORT=7221
# shellcheck source=tests/vm/two_nics.sh
. "$USMC_SRC/tests/vm/two_nics.sh"
