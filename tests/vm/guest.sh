#!/usr/bin/env bash
# The VM tier's guest side (docs/vm.md): runs inside each VM, chrooted into
# the host's / (read-only 9p), started by the initramfs (netns/vm-init.sh).
# Usage: guest.sh ROLE OUT, ROLE srv (VM 1) or cli (VM 2), OUT the run's
# shared writable directory holding vm.env from the host. Brings eth0 up,
# then runs each scenario of the run: OUT/SCEN/ROLE.log, OUT/SCEN/ROLE.rc.
set -u
role=$1 out=$2
# shellcheck source=/dev/null
. "$out/vm.env"
export USMC_SRC USMC_BUILD VM_SRV_ADDR VM_CLI_ADDR VM_SUBNET
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export VM_ROLE=$role
case $role in
srv) me=$VM_SRV_ADDR peer=$VM_CLI_ADDR ;;
cli) me=$VM_CLI_ADDR peer=$VM_SRV_ADDR ;;
*)
	echo "guest.sh: bad role '$role'"
	exit 1
	;;
esac
export VM_ME=$me VM_PEER=$peer
log=$out/guest-$role.log
{
	echo "guest $role: $(uname -r), $me/24 on eth0, peer $peer"
	ip link set lo up
	ip addr add "$me/24" dev eth0
	ip link set eth0 up
	# both sides wait for the link: the first scenario's markers and
	# connections must not race the other VM's boot
	for _ in $(seq 1 200); do
		busybox ping -c1 -W1 "$peer" >/dev/null 2>&1 && break
		[ -f "$out/guest-$role.abort" ] && break
		sleep 0.2
	done
	busybox ping -c1 -W2 "$peer" >/dev/null 2>&1 && echo "guest $role: peer $peer answers" ||
		echo "guest $role: peer $peer does not answer ping"
} >>"$log" 2>&1

for scen in $VM_SCENARIOS; do
	d=$out/$scen
	mkdir -p "$d"
	echo "guest $role: scenario $scen" >>"$log"
	rc=0
	VM_OUT=$d timeout -k 5 "$VM_SCEN_TIMEOUT" bash "$USMC_SRC/tests/vm/$scen.sh" "$role" \
		>"$d/$role.log" 2>&1 || rc=$?
	[ $rc = 124 ] && echo "guest $role: $scen timed out after $VM_SCEN_TIMEOUT s" >>"$d/$role.log"
	echo $rc >"$d/$role.rc"
	echo "guest $role: scenario $scen exit $rc" >>"$log"
done
# the kernel's view at the end, for the logs
{
	echo "== dmesg (smc, rxe, infiniband)"
	dmesg | grep -iE 'smc|rxe|infiniband|ib_' | tail -40
} >>"$log" 2>&1
sync
exit 0
