#!/usr/bin/env bash
# two_nics.sh with usmc as the client, over verbs: the kernel server has two rxe
# devices (docs/vm.md, cell two_nics)
export TWO_NICS_KIND=usmc-client TWO_NICS_TP=verbs TWO_NICS_PORT=7221
# shellcheck source=tests/vm/two_nics_single.sh
. "$USMC_SRC/tests/vm/two_nics_single.sh"
