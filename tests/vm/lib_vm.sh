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
	vm_log "kernel SMC-R host: $(rdma link show rxe0/1 2>&1 | head -1)"
	"$SMCCTL" pnet show
	"$SMCCTL" ueid show
	cat /sys/class/infiniband/rxe0/ports/1/gids/1 2>/dev/null | sed 's/^/  rxe0 GID 1: /'
}

# vm_usmc_host: make this VM a usmc host: no rdma_rxe, whose UDP 4791
# socket (rxe_net_init, at module load) would take softroce's port.
vm_usmc_host() {
	if grep -q '^rdma_rxe ' /proc/modules; then
		rdma link delete rxe0 2>/dev/null
		busybox rmmod rdma_rxe || vm_fail "cannot unload rdma_rxe (UDP 4791 stays taken)"
	fi
	export USMC_CGROUP=${USMC_CGROUP:-private}
}

# vm_perf TAG ARGS...: usmc-perf ARGS --verify --json -t 150, its JSON in
# VM_OUT/TAG.json, stderr in TAG.err, exit status in TAG.exit. The result
# is judged on the host (vm_expect_perf): python under TCG takes seconds.
vm_perf() {
	local tag=$1 rc=0
	shift
	"$PERF" "$@" --verify --json -t 150 >"$VM_OUT/$tag.json" 2>"$VM_OUT/$tag.err" || rc=$?
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

# vm_host_usmc_kernel UP DOWN N [TRANSPORT]: host side of the usmc<->kernel cells: the
# four results (usmc in VM 1 "srv", kernel in VM 2 "cli") say SMC-R with
# N bytes verified, and the capture holds two CLC handshakes and 2N bytes
# of RDMA WRITE payload, nothing malformed.
vm_host_usmc_kernel() {
	local up=$1 down=$2 n=$3 tp=${4:-softroce} t got
	for t in up.srv down.srv up.cli down.cli; do vm_expect_perf $t smcr "$n"; done
	for t in up.srv down.srv; do
		got=$(sed -n 's/.*"transport":"\([^"]*\)".*/\1/p' "$VM_OUT/$t.json" | tail -1)
		[ "$got" = "$tp" ] || vm_fail "$t: usmc's transport is '$got', expected $tp"
	done
	# not checked: when the usmc process exits it deletes its link group,
	# and the kernel frees its side at once, so the listing taken after
	# the runs may be empty; smc_diag and the capture are the proof here
	cat "$VM_OUT/lgr.cli.txt"
	vm_capture_check "$up" "$down"
	((CAP_CLC >= 2)) || vm_fail "the capture has $CAP_CLC CLC Confirms on ports $up/$down, expected 2"
	((CAP_WRITE_BYTES >= 2 * n)) || vm_fail "RDMA WRITE payload $CAP_WRITE_BYTES < $((2 * n)) bytes"
	((CAP_TCP <= 8192)) || vm_fail "TCP carried $CAP_TCP payload bytes: more than the CLC handshakes"
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

# vm_cell_usmc ROLE KIND TRANSPORT UP DOWN N: the usmc<->kernel cells. usmc
# (usmc-perf over TRANSPORT: softroce, or verbs over this VM's rxe0) runs
# in VM 1 ("srv"), the kernel's AF_SMC in VM 2 ("cli"); KIND says which
# end serves: "usmc-server" or "usmc-client". 1 MiB (N) each way on two
# connections, ports UP and DOWN.
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
		vm_perf down.srv -s -1 --transport "$tp" -p "$down" &
		vm_wait_listen "$down"
		vm_mark down
		vm_reap down-done
		;;
	cli.usmc-server)
		vm_wait up
		vm_perf up.cli -c "$VM_SRV_ADDR" -p "$up" --af-smc -n "$n"
		vm_mark up-done
		vm_wait down
		vm_perf down.cli -c "$VM_SRV_ADDR" -p "$down" --af-smc -n "$n" -R
		vm_mark down-done
		"$SMCCTL" lgr >"$VM_OUT/lgr.cli.txt"
		;;
	srv.usmc-client)
		vm_wait ready
		vm_perf up.srv -c "$VM_CLI_ADDR" --transport "$tp" -p "$up" -n "$n"
		vm_perf down.srv -c "$VM_CLI_ADDR" --transport "$tp" -p "$down" -n "$n" -R
		vm_mark srv-done
		;;
	cli.usmc-client)
		vm_perf up.cli -s -1 --af-smc -p "$up" &
		vm_perf down.cli -s -1 --af-smc -p "$down" &
		vm_wait_listen "$up" "$down"
		vm_mark ready
		vm_reap srv-done
		"$SMCCTL" lgr >"$VM_OUT/lgr.cli.txt"
		;;
	host.*) vm_host_usmc_kernel "$up" "$down" "$n" "$tp" ;;
	esac
}
