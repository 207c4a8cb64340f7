#!/usr/bin/env bash
# usmc (softroce, VM 1) with two devices <-> kernel AF_SMC with two rxe
# devices (VM 2): a symmetric link group, and failover when one NIC goes
# down mid-stream.
#
# VM cells 6 and 6b (docs/vm.md). Both VMs have eth1 in the same /24 as
# eth0 (SUBNET.11, SUBNET.12); the kernel has rxe0 and rxe1 with pnetid
# NET1, usmc the same pnet (USMC_PNET=NET1=eth0,eth1: a softroce device on
# each). One connection streams TWO_NICS_BYTES each way at once
# (usmc-perf --bidi, every byte verified at both ends). Once the link
# group is symmetric on both sides (usmc-stat -l: SYM, two ACTIVE links;
# usmc-smcctl lgr: type 2 with two links in state 3, the kernel's
# SMC_LGR_SYMMETRIC and SMC_LNK_ACTIVE), eth0 goes down in the VM named by
# TWO_NICS_DOWN (usmc or kernel): the connection's link dies and its data
# must move to the link on eth1 with nothing lost or repeated, both sides
# then list one link, the stream ends byte-exact, and the kernel's link
# group goes when usmc exits. The host role judges the LLC exchange of
# both wires (ADD_LINK, CONFIRM_LINK on eth1, DELETE_LINK) and prints it.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
export VM_TWO_NICS=1
# two_nics_server.sh and two_nics_verbs_client.sh source this file with
# these set
kind=${TWO_NICS_KIND:-usmc-client}
down=${TWO_NICS_DOWN:-kernel}
tp=${TWO_NICS_TP:-softroce}
port=${TWO_NICS_PORT:-7201}
n=${TWO_NICS_BYTES:-50331648}
STAT=$USMC_BUILD/tools/usmc-stat
# no /dev/shm in the VMs; each VM has its own /tmp
export USMC_STAT_DIR=/tmp

# links_until FILE CMD COUNT SECONDS: poll CMD (a link listing) into FILE
# until it shows COUNT links that are up, at most SECONDS. Bounded by the
# clock (a command takes a noticeable time under TCG).
links_until() {
	local f=$1 cmd=$2 want=$3 bound=$4 start now got
	start=$(date +%s%N)
	while :; do
		$cmd >"$f" 2>&1
		case $cmd in
		*usmc-stat*) got=$(grep -cE '^ *[0-9]+ .* ACTIVE ' "$f") ;;
		*) got=$(grep -c 'state=3$' "$f") ;;
		esac
		[ "$got" = "$want" ] && break
		now=$(date +%s%N)
		(((now - start) / 1000000 >= bound * 1000)) && break
		sleep 0.2
	done
	now=$(date +%s%N)
	vm_log "$want link(s) up after $(((now - start) / 1000000)) ms? $got: $(tr '\n' '|' <"$f")"
}

# the usmc side's softroce device on eth1 sends from SUBNET.11: route that
# out of eth1 (both NICs are in one /24, so the main table alone would
# send it out of eth0, and eth0's failure would take link 2 with it)
routes() {
	local a=$VM_SUBNET.11
	[ "$VM_ROLE" = cli ] && a=$VM_SUBNET.12
	ip rule show | grep -q "from $a lookup 11" || ip rule add from "$a" table 11
	ip route replace "$VM_SUBNET.0/24" dev eth1 src "$a" table 11
	sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
}

case $1 in
srv)
	if [ "$tp" = verbs ]; then
		vm_kernel_smc # rxe0 and rxe1; usmc opens them through libibverbs
		export USMC_CGROUP=${USMC_CGROUP:-private}
	else
		vm_usmc_host
	fi
	routes
	export USMC_PNET="$VM_PNETID=eth0,eth1" USMC_DEBUG=1 USMC_LOG_TIME=1
	if [ "$kind" = usmc-server ]; then
		vm_perf fo.srv -s -1 --transport "$tp" -p "$port" &
		vm_wait_listen "$port"
		vm_mark ready
	else
		vm_wait ready
		vm_perf fo.srv -c "$VM_CLI_ADDR" --transport "$tp" -p "$port" -n "$n" --bidi &
	fi
	links_until "$VM_OUT/stat-sym.txt" "$STAT -l" 2 60
	$STAT -l --json >"$VM_OUT/stat-sym.json" 2>&1
	$STAT -d >"$VM_OUT/conns-sym.txt" 2>&1
	vm_mark sym
	vm_wait kern-sym
	if [ "$down" = usmc ]; then
		vm_log "eth0 down (usmc side)"
		ip link set eth0 down
		vm_mark downed
	else
		vm_mark down-now
		vm_wait downed
	fi
	links_until "$VM_OUT/stat-after.txt" "$STAT -l" 1 30
	$STAT -l --json >"$VM_OUT/stat-after.json" 2>&1
	$STAT -d >"$VM_OUT/conns-after.txt" 2>&1
	vm_mark usmc-after
	wait
	vm_mark usmc-exit
	vm_wait lgr-checked
	;;
cli)
	vm_kernel_smc
	routes
	if [ "$kind" = usmc-server ]; then
		vm_wait ready
		vm_perf fo.cli -c "$VM_SRV_ADDR" --af-smc -p "$port" -n "$n" --bidi &
	else
		vm_perf fo.cli -s -1 --af-smc -p "$port" &
		vm_wait_listen "$port"
		vm_mark ready
	fi
	vm_wait sym
	links_until "$VM_OUT/lgr-sym.txt" "$SMCCTL lgr" 2 30
	vm_mark kern-sym
	if [ "$down" = kernel ]; then
		vm_wait down-now
		vm_log "eth0 down (kernel side)"
		ip link set eth0 down
		vm_mark downed
	else
		vm_wait downed
	fi
	links_until "$VM_OUT/lgr-after.txt" "$SMCCTL lgr" 1 30
	wait
	vm_wait usmc-exit 200
	vm_lgr_gone fo
	vm_mark lgr-checked
	dmesg | grep -iE 'smc|rxe' >"$VM_OUT/dmesg.cli.txt"
	;;
host)
	vm_expect_perf fo.srv smcr $((2 * n))
	vm_expect_perf fo.cli smcr $((2 * n))
	vm_expect_lgr_gone fo
	pcap1=$(dirname "$VM_PCAP")/wire1.pcap
	mergecap -F pcap -w "$VM_OUT/both.pcap" "$VM_PCAP" "$pcap1" || vm_fail "mergecap failed"
	"$USMC_BUILD/tools/usmc-decode" --quiet "$VM_OUT/both.pcap" >"$VM_OUT/decode.txt" 2>&1 ||
		vm_fail "usmc-decode reports malformed messages or bad ICRCs: $(grep -m3 'MALFORMED\|icrc=BAD' "$VM_OUT/decode.txt" | tr '\n' ' ')"
	"$USMC_BUILD/tools/usmc-decode" --json "$VM_OUT/both.pcap" >"$VM_OUT/decode.json" 2>/dev/null
	out=$(python3 "$USMC_SRC/tests/vm/failover_check.py" --vm "$VM_OUT" "$kind" "$down" "$VM_SUBNET") ||
		vm_fail "failover: $out"
	echo "$out" | while read -r l; do vm_log "$l"; done
	;;
esac
