#!/usr/bin/env bash
# two_nics_single.sh with usmc as the server, over verbs, without a pnet:
# the kernel client has two rxe devices (docs/vm.md, cell 6d)
export TWO_NICS_KIND=usmc-server TWO_NICS_TP=verbs TWO_NICS_PORT=7231
# shellcheck source=tests/vm/two_nics_single.sh
. "$USMC_SRC/tests/vm/two_nics_single.sh"
