# shellcheck shell=bash
# Helpers for VM tier scenarios (tests/vm/*.sh, docs/vm.md). A scenario is
# run three times: "srv" in VM 1, "cli" in VM 2 (at the same time), then
# "host" on the host after both VMs powered off, with:
#   VM_OUT     the scenario's directory, shared by all three (markers, logs)
#   VM_ME, VM_PEER, VM_SRV_ADDR, VM_CLI_ADDR   IPv4 addresses (VMs only)
#   VM_PCAP    host: the whole run's wire capture (qemu filter-dump)
#   USMC_SRC, USMC_BUILD   the source and build trees (same paths in VMs)
# Exit 0 pass, 1 fail, 77 skip with the reason printed.

PERF=$USMC_BUILD/tools/usmc-perf
SMCCTL=$USMC_BUILD/tools/usmc-smcctl
VM_MODS=/run/usmc-vm/mods
VM_PNETID=NET1
# usmc's default UEID (runtime/usmc_smc.c), so the kernel and usmc share an
# EID with no configuration on the usmc side
VM_UEID=USMC-DEFAULT-UEID

vm_log() { echo "[$(date +%T.%N | cut -c1-12)] ${VM_ROLE:-host}: $*"; }

vm_fail() {
	vm_log "FAIL: $*"
	exit 1
}

vm_peer_role() { [ "$VM_ROLE" = srv ] && echo cli || echo srv; }

# vm_mark NAME: tell the other VM that NAME happened.
vm_mark() { : >"$VM_OUT/mark.$1"; }

# vm_wait NAME [SECONDS]: wait for the other VM's mark NAME; fails early
# when the other VM's scenario already ended without it.
vm_wait() {
	local i n=$((${2:-120} * 10)) peer
	peer=$(vm_peer_role)
	for ((i = 0; i < n; i++)); do
		[ -e "$VM_OUT/mark.$1" ] && return 0
		if [ -e "$VM_OUT/$peer.rc" ]; then
			[ -e "$VM_OUT/mark.$1" ] && return 0
			vm_fail "the $peer side ended (exit $(cat "$VM_OUT/$peer.rc")) before '$1'"
		fi
		# the host marks a VM whose qemu has exited
		[ -e "$VM_OUT/../vm-$peer.exited" ] && vm_fail "the $peer VM is gone before '$1'"
		sleep 0.1
	done
	vm_fail "no '$1' from the $peer side in ${2:-120} s"
}

vm_listening() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# vm_wait_listen PORT...: each port has a listener within 30 s.
vm_wait_listen() {
	local p i
	for p in "$@"; do
		for ((i = 0; i < 300; i++)); do
			vm_listening "$p" && break
			sleep 0.1
		done
		vm_listening "$p" || vm_fail "nothing listens on port $p after 30 s"
	done
}

# vm_kernel_smc: make this VM a kernel SMC-R host: rdma_rxe on eth0 (rxe0),
# the same pnetid on eth0 and rxe0 port 1 (rxe has no get_netdev, so the
# kernel finds the device only by pnetid), a UEID (rxe has only RoCEv2
# GIDs, so only SMC-Rv2 is possible, and v2 needs an EID: x86 has no
# SEID). Idempotent.
vm_kernel_smc() {
	local m
	for m in $(cat "$VM_MODS/smc.order"); do
		grep -q "^$m " /proc/modules && continue
		busybox insmod "$VM_MODS/$m.ko" || vm_fail "insmod $m failed"
	done
	if [ ! -e /sys/class/infiniband/rxe0 ]; then
		rdma link add rxe0 type rxe netdev eth0 || vm_fail "rdma link add rxe0 failed"
	fi
	if ! "$SMCCTL" pnet show | grep -q "^$VM_PNETID .* eth0 "; then
		"$SMCCTL" pnet add "$VM_PNETID" --eth eth0 || vm_fail "pnet on eth0 failed"
		"$SMCCTL" pnet add "$VM_PNETID" --ib rxe0 --port 1 || vm_fail "pnet on rxe0 failed"
	fi
	"$SMCCTL" ueid show | grep -qx "$VM_UEID" || "$SMCCTL" ueid add "$VM_UEID" || vm_fail "ueid add failed"
	if [ -n "${VM_TWO_NICS:-}" ] && [ ! -e /sys/class/infiniband/rxe1 ]; then
		vm_eth1_up
		rdma link add rxe1 type rxe netdev eth1 || vm_fail "rdma link add rxe1 failed"
		"$SMCCTL" pnet add "$VM_PNETID" --eth eth1 || vm_fail "pnet on eth1 failed"
		"$SMCCTL" pnet add "$VM_PNETID" --ib rxe1 --port 1 || vm_fail "pnet on rxe1 failed"
	fi
	vm_log "kernel SMC-R host: $(rdma link show rxe0/1 2>&1 | head -1)"
	"$SMCCTL" pnet show
	"$SMCCTL" ueid show
	cat /sys/class/infiniband/rxe0/ports/1/gids/1 2>/dev/null | sed 's/^/  rxe0 GID 1: /'
}

# vm_eth1_up: the second NIC, SUBNET.11 (VM 1) or SUBNET.12 (VM 2), in
# the same /24 as eth0, as SMC-Rv2's second link needs.
vm_eth1_up() {
	local a=$VM_SUBNET.11
	[ "$VM_ROLE" = cli ] && a=$VM_SUBNET.12
	ip addr show dev eth1 | grep -q "inet $a/" || ip addr add "$a/24" dev eth1 || vm_fail "no address on eth1"
	ip link set eth1 up || vm_fail "eth1 does not come up"
}

# vm_usmc_host: make this VM a usmc host: no rdma_rxe, whose UDP 4791
# socket (rxe_net_init, at module load) would take softroce's port.
vm_usmc_host() {
	if grep -q '^rdma_rxe ' /proc/modules; then
		rdma link delete rxe0 2>/dev/null
		busybox rmmod rdma_rxe || vm_fail "cannot unload rdma_rxe (UDP 4791 stays taken)"
	fi
	[ -z "${VM_TWO_NICS:-}" ] || vm_eth1_up
	export USMC_CGROUP=${USMC_CGROUP:-private}
}

# vm_perf TAG ARGS...: usmc-perf ARGS --verify --json --timeout 150, its JSON in
# VM_OUT/TAG.json, stderr in TAG.err, exit status in TAG.exit. The result
# is judged on the host (vm_expect_perf): python under TCG takes seconds.
vm_perf() {
	local tag=$1 rc=0
	shift
	"$PERF" "$@" --verify --json --timeout 150 >"$VM_OUT/$tag.json" 2>"$VM_OUT/$tag.err" || rc=$?
	echo $rc >"$VM_OUT/$tag.exit"
	vm_log "usmc-perf $* -> exit $rc"
}

# vm_expect_perf TAG PATH BYTES [FALLBACK]: host side. usmc-perf exited 0
# and its JSON result says ok, verify ok, exactly BYTES bytes, path PATH
# (smcr or tcp), and for a fallback the reason FALLBACK (e.g. PEERNOSMC).
vm_expect_perf() {
	local tag=$1 f=$VM_OUT/$1.json why
	[ -s "$f" ] || vm_fail "$tag: no result ($(cat "$VM_OUT/$tag.err" 2>/dev/null | tail -2 | tr '\n' ' '))"
	vm_log "$tag: $(tail -1 "$f")"
	why=$(python3 - "$f" "$2" "$3" "${4:-}" "$(cat "$VM_OUT/$tag.exit" 2>/dev/null)" <<'PY'
import json, sys
f, path, nbytes, fb, rc = sys.argv[1:]
obj = None
for line in open(f):
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            pass
bad = []
if obj is None:
    bad.append("no JSON result")
else:
    if rc != "0":
        bad.append("usmc-perf exit %s" % rc)
    if obj.get("ok") is not True:
        bad.append("not ok: %s" % obj.get("error"))
    if obj.get("verify") != "ok":
        bad.append("verify %s" % obj.get("verify"))
    if str(obj.get("bytes")) != nbytes:
        bad.append("%s bytes, expected %s" % (obj.get("bytes"), nbytes))
    if obj.get("path") != path:
        bad.append("path %s, expected %s (fallback %s)" % (obj.get("path"), path, obj.get("fallback_reason")))
    if fb and obj.get("fallback_reason") != fb:
        bad.append("fallback reason %s, expected %s" % (obj.get("fallback_reason"), fb))
print("; ".join(bad))
PY
	)
	[ -z "$why" ] || vm_fail "$tag: $why"
}

# vm_capture_check PORT...: host side. Decodes the run's capture with
# tshark and with usmc-decode, prints the counts, and fails on a
# malformed packet. Wireshark 4.0 marks every SMC-Rv2 LLC message
# "[Malformed Packet]" (its SMC-R dissector knows only v1 LLC): those
# frames are told apart by their first payload byte (type 0x2X) and
# judged by usmc-decode instead, which checks every LLC, CDC and CLC
# message and every ICRC. Sets CAP_* variables for the caller.
vm_capture_check() {
	local p kv dec=$USMC_BUILD/tools/usmc-decode
	[ -s "$VM_PCAP" ] || vm_fail "no capture at $VM_PCAP"
	# shellcheck source=netns/lib.sh
	. "$USMC_SRC/netns/lib.sh"
	CAP_CLC=0 CAP_WRITE_BYTES=0 CAP_ROCE=0 CAP_TCP=0 CAP_BAD=0
	for p in "$@"; do
		kv=$(usmc_lab_analyze "$VM_PCAP" "$p" 4791)
		vm_log "capture, port $p: $(echo "$kv" | tr '\n' ' ')"
		CAP_CLC=$((CAP_CLC + $(echo "$kv" | sed -n 's/^clc_confirm=//p')))
		CAP_TCP=$((CAP_TCP + $(echo "$kv" | sed -n 's/^tcp_payload=//p')))
		CAP_BAD=$((CAP_BAD + $(echo "$kv" | sed -n 's/^malformed_nonroce=//p')))
		CAP_ROCE=$(echo "$kv" | sed -n 's/^roce=//p')
		CAP_WRITE_BYTES=$(echo "$kv" | sed -n 's/^write_bytes=//p')
		CAP_BAD_ROCE=$(echo "$kv" | sed -n 's/^malformed_roce=//p')
	done
	CAP_BAD=$((CAP_BAD + CAP_BAD_ROCE))
	[ "$CAP_BAD" = 0 ] || vm_fail "tshark finds $CAP_BAD malformed packets (SMC-Rv2 LLC excepted) in $VM_PCAP"
	"$dec" --quiet "$VM_PCAP" >"$VM_OUT/decode.txt" 2>&1
	local rc=$?
	vm_log "usmc-decode: $(tail -1 "$VM_OUT/decode.txt")"
	[ $rc = 0 ] || vm_fail "usmc-decode reports malformed messages or bad ICRCs (exit $rc): $(grep -m3 'MALFORMED\|icrc=BAD' "$VM_OUT/decode.txt" | tr '\n' ' ')"
}

# vm_host_usmc_kernel UP DOWN N TRANSPORT KIND: host side of the
# usmc<->kernel cells (usmc in VM 1 "srv", kernel in VM 2 "cli"; KIND
# usmc-server or usmc-client). On UP, two connections of N bytes: the
# client's summed result says 2N, the server has two results of N, and
# usmc made one link group for both; on DOWN one connection of N. All say
# SMC-R, verified. The capture holds three CLC handshakes and 3N bytes of
# RDMA WRITE payload, nothing malformed.
vm_host_usmc_kernel() {
	local up=$1 down=$2 n=$3 tp=${4:-softroce} kind=$5 t got usmc_up
	if [ "$kind" = usmc-server ]; then
		vm_expect_perf up.cli smcr $((2 * n))
		vm_expect_perf up.srv smcr "$n"
		usmc_up=up.srv
	else
		vm_expect_perf up.srv smcr $((2 * n))
		vm_expect_perf up.cli smcr "$n"
		usmc_up=up.srv
	fi
	for t in down.srv down.cli; do vm_expect_perf $t smcr "$n"; done
	got=$(grep -c '^{' "$VM_OUT/$([ "$kind" = usmc-server ] && echo up.srv || echo up.cli).json")
	[ "$got" = 2 ] || vm_fail "the server of the -P 2 test has $got results, expected 2"
	for t in up.srv down.srv; do
		got=$(sed -n 's/.*"transport":"\([^"]*\)".*/\1/p' "$VM_OUT/$t.json" | tail -1)
		[ "$got" = "$tp" ] || vm_fail "$t: usmc's transport is '$got', expected $tp"
	done
	got=$(sed -n 's/.*"link_groups":\([0-9]*\).*/\1/p' "$VM_OUT/$usmc_up.json" | tail -1)
	[ "$got" = 1 ] || vm_fail "usmc made $got link groups for the two connections on port $up, expected 1"
	vm_capture_check "$up" "$down"
	# counted by usmc-decode (its CLC counts equal tshark's on the golden
	# traces); usmc_lab_analyze makes tshark try its SMC heuristic before
	# port dissectors, which once hid a whole handshake (verbs_server)
	got=$(sed -n 's/.* confirm=\([0-9]*\).*/\1/p' "$VM_OUT/decode.txt" | tail -1)
	((got >= 3)) || vm_fail "the capture has ${got:-no} CLC Confirms (tshark: $CAP_CLC on ports $up/$down), expected 3"
	((CAP_WRITE_BYTES >= 3 * n)) || vm_fail "RDMA WRITE payload $CAP_WRITE_BYTES < $((3 * n)) bytes"
	((CAP_TCP <= 12288)) || vm_fail "TCP carried $CAP_TCP payload bytes: more than the CLC handshakes"
	vm_log "SMC-R: $CAP_CLC CLC Confirms, $CAP_ROCE RoCE packets, $CAP_WRITE_BYTES RDMA WRITE payload bytes, $CAP_TCP TCP payload bytes"
}

# vm_reap MARK [GRACE]: wait for this scenario's background jobs (its
# servers); once the other VM has set MARK (its clients are done) or has
# ended, give them GRACE seconds (default 10), then end what is left, so
# a client that failed does not leave a server waiting out its -t.
vm_reap() {
	local mark=$1 grace=${2:-10} t=0 peer p
	peer=$(vm_peer_role)
	while [ -n "$(jobs -rp)" ]; do
		if [ -e "$VM_OUT/mark.$mark" ] || [ -e "$VM_OUT/$peer.rc" ] ||
			[ -e "$VM_OUT/../vm-$peer.exited" ]; then
			t=$((t + 1))
			if ((t > grace * 10)); then
				vm_log "ending what still runs $grace s after the $peer side's '$mark'"
				for p in $(jobs -rp); do
					pkill -TERM -P "$p"
					kill -TERM "$p"
				done
				break
			fi
		fi
		sleep 0.1
	done
	wait
}

# vm_lgr_gone TAG [SECONDS]: kernel side, after the usmc process of test
# TAG has exited: poll the kernel's link groups (usmc-smcctl lgr) until
# none is left, at most SECONDS (default 10). The kernel keeps an idle
# link group for 600 s (server) or 610 s (client) after its last
# connection (SMC_LGR_FREE_DELAY_SERV/_CLNT), so one gone within the
# bound was ended by usmc's DELETE_LINK. Writes lgr-TAG.txt (the first and
# last listings, the time taken) and lgr-TAG.rc (0 gone, 1 still there)
# for the host to judge (vm_expect_lgr_gone).
vm_lgr_gone() {
	local tag=$1 bound=${2:-10} start now out=$VM_OUT/lgr-$1.txt gone=1
	start=$(date +%s%N)
	{
		echo "before:"
		"$SMCCTL" lgr
	} >"$out" 2>&1
	# bounded by the clock: a command takes a noticeable time under TCG
	while :; do
		"$SMCCTL" lgr 2>/dev/null | grep -q '^lgr ' || { gone=0; break; }
		now=$(date +%s%N)
		(((now - start) / 1000000 >= bound * 1000)) && break
		sleep 0.1
	done
	now=$(date +%s%N)
	{
		echo "after $(((now - start) / 1000000)) ms:"
		"$SMCCTL" lgr
	} >>"$out" 2>&1
	echo $gone >"$VM_OUT/lgr-$tag.rc"
	vm_log "link groups after usmc's $tag exit: $(tail -n +2 "$out" | tr '\n' ' ')"
}

# vm_expect_lgr_gone TAG...: host side of vm_lgr_gone.
vm_expect_lgr_gone() {
	local t
	for t in "$@"; do
		[ -e "$VM_OUT/lgr-$t.rc" ] || vm_fail "no link-group check after usmc's $t exit"
		[ "$(cat "$VM_OUT/lgr-$t.rc")" = 0 ] ||
			vm_fail "the kernel still has a link group 10 s after usmc's $t process exited: $(tr '\n' ' ' <"$VM_OUT/lgr-$t.txt")"
		vm_log "lgr $t: $(tr '\n' ' ' <"$VM_OUT/lgr-$t.txt")"
	done
}

# vm_expect_llc_end USMC_IP KERNEL_IP ROLE [REUSE]: host side. The capture's
# LLC and RoCE, by usmc-decode (tests/vm/llc_check.py): every LLC request
# either side sent is answered; usmc's DELETE_LINK ALL is answered as the
# kernel does (a server sends DELETE_LINK ALL back, a client ends without
# one); no RoCE request of the kernel is sent twice (a retransmission)
# from usmc's first DELETE_LINK on; with REUSE, CONFIRM_RKEY both ways.
vm_expect_llc_end() {
	local out
	"$USMC_BUILD/tools/usmc-decode" --json "$VM_PCAP" >"$VM_OUT/decode.json" 2>/dev/null
	out=$(python3 "$USMC_SRC/tests/vm/llc_check.py" "$VM_OUT/decode.json" "$@") ||
		vm_fail "LLC at the end: $out"
	vm_log "LLC: $out"
}

# vm_cell_usmc ROLE KIND TRANSPORT UP DOWN N: the usmc<->kernel cells. usmc
# (usmc-perf over TRANSPORT: softroce, or verbs over this VM's rxe0) runs
# in VM 1 ("srv"), the kernel's AF_SMC in VM 2 ("cli"); KIND says which
# end serves: "usmc-server" or "usmc-client". Two tests, each its own
# usmc process: on port UP two concurrent connections of N bytes each
# (-P 2: the second reuses the first's link group), on port DOWN one of N
# bytes the other way. After each usmc process exits, the kernel's link
# group must go within 10 s (vm_lgr_gone).
vm_cell_usmc() {
	local role=$1 kind=$2 tp=$3 up=$4 down=$5 n=$6
	case $role.$kind in
	srv.*)
		if [ "$tp" = verbs ]; then
			vm_kernel_smc # rxe0; usmc opens it through libibverbs
			export USMC_CGROUP=${USMC_CGROUP:-private}
		else
			vm_usmc_host
		fi
		;;
	cli.*) vm_kernel_smc ;;
	esac
	case $role.$kind in
	srv.usmc-server)
		vm_perf up.srv -s -1 --transport "$tp" -p "$up" &
		vm_wait_listen "$up"
		vm_mark up
		vm_reap up-done
		vm_mark usmc-exit-up
		vm_perf down.srv -s -1 --transport "$tp" -p "$down" &
		vm_wait_listen "$down"
		vm_mark down
		vm_reap down-done
		vm_mark usmc-exit-down
		vm_wait lgr-checked
		;;
	cli.usmc-server)
		vm_wait up
		vm_perf up.cli -c "$VM_SRV_ADDR" -p "$up" --af-smc -n "$n" -P 2
		vm_mark up-done
		vm_wait usmc-exit-up
		vm_lgr_gone up
		vm_wait down
		vm_perf down.cli -c "$VM_SRV_ADDR" -p "$down" --af-smc -n "$n" -R
		vm_mark down-done
		vm_wait usmc-exit-down
		vm_lgr_gone down
		vm_mark lgr-checked
		;;
	srv.usmc-client)
		vm_wait ready
		vm_perf up.srv -c "$VM_CLI_ADDR" --transport "$tp" -p "$up" -n "$n" -P 2
		vm_mark usmc-exit-up
		vm_wait lgr-up
		vm_perf down.srv -c "$VM_CLI_ADDR" --transport "$tp" -p "$down" -n "$n" -R
		vm_mark usmc-exit-down
		vm_wait lgr-checked
		vm_mark srv-done
		;;
	cli.usmc-client)
		vm_perf up.cli -s -1 --af-smc -p "$up" &
		vm_perf down.cli -s -1 --af-smc -p "$down" &
		vm_wait_listen "$up" "$down"
		vm_mark ready
		vm_wait usmc-exit-up
		vm_lgr_gone up
		vm_mark lgr-up
		vm_wait usmc-exit-down
		vm_lgr_gone down
		vm_mark lgr-checked
		vm_reap srv-done
		;;
	host.*)
		vm_host_usmc_kernel "$up" "$down" "$n" "$tp" "$kind"
		vm_expect_lgr_gone up down
		if [ "$kind" = usmc-server ]; then
			vm_expect_llc_end "$VM_SRV_ADDR" "$VM_CLI_ADDR" server reuse
		else
			vm_expect_llc_end "$VM_SRV_ADDR" "$VM_CLI_ADDR" client reuse
		fi
		;;
	esac
}
