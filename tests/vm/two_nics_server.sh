#!/usr/bin/env bash
# two_nics.sh with usmc as the server and usmc's own eth0 going down
# (docs/vm.md, cell two_nics_server)
export TWO_NICS_KIND=usmc-server TWO_NICS_DOWN=usmc TWO_NICS_PORT=7211
# shellcheck source=tests/vm/two_nics.sh
. "$USMC_SRC/tests/vm/two_nics.sh"
