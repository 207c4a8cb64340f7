#!/usr/bin/env bash
# a VM that hangs: the host's timeout must kill it and keep its console log
#
# Used by tests/vm/test_vm_timeout.sh, not a cell. The srv role stops the
# guest script (SIGSTOP, which its timeout cannot undo), so VM 1 never
# powers off; the cli role and the host role pass.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
case $1 in
srv)
	# parent: timeout; its parent: guest.sh
	guest=$(ps -o ppid= -p "$PPID" | tr -d ' ')
	vm_log "stopping guest.sh (pid $guest): this VM will not power off"
	kill -STOP "$guest"
	;;
esac
exit 0
