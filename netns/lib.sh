# shellcheck shell=bash
# usmc lab library: two hosts as network namespaces joined by a veth pair.
# Sourced by netns/usmc-lab and by tests/netns/*.sh. Modelled on the shape
# of the kernel's selftests/net/lib.sh: every namespace is recorded so that
# cleanup can always find it, and waits are bounded busy-waits, not sleeps.
#
# Names: lab N has namespaces usmc-N-h1 and usmc-N-h2; each holds one end
# of the veth pair, called eth0 inside both, so nothing is ever created in
# the caller's namespace. State (subnet, capture pids) lives in
# $USMC_LAB_RUNDIR/N (default /run/usmc-lab/N).

USMC_LAB_RUNDIR=${USMC_LAB_RUNDIR:-/run/usmc-lab}
USMC_LAB_IFNAME=eth0
USMC_LAB_HOSTS="h1 h2"

usmc_lab_log() { echo "usmc-lab: $*" >&2; }

# busywait TIMEOUT_MS CMD...: run CMD until it succeeds or time runs out.
busywait() {
	local timeout_ms=$1
	shift
	local start now
	start=$(date +%s%N)
	while :; do
		"$@" && return 0
		now=$(date +%s%N)
		if (((now - start) / 1000000 > timeout_ms)); then
			return 1
		fi
		sleep 0.05
	done
}

usmc_lab_ns() { echo "usmc-$1-$2"; }

usmc_lab_valid_name() {
	[[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$ ]]
}

usmc_lab_valid_host() {
	case $1 in h1 | h2) return 0 ;; esac
	return 1
}

# usmc_lab_valid_subnet A.B.C: the lab uses A.B.C.1 and A.B.C.2 /24.
usmc_lab_valid_subnet() {
	local IFS=. a
	local -a parts
	read -r -a parts <<<"$1"
	((${#parts[@]} == 3)) || return 1
	for a in "${parts[@]}"; do
		[[ $a =~ ^[0-9]{1,3}$ ]] && ((a <= 255)) || return 1
	done
}

usmc_lab_addr() { # NAME HOST -> address of HOST in lab NAME
	local subnet
	subnet=$(usmc_lab_subnet "$1") || return 1
	echo "$subnet.${2#h}"
}

usmc_lab_subnet() {
	local f=$USMC_LAB_RUNDIR/$1/subnet
	[ -r "$f" ] || return 1
	cat "$f"
}

# Why the machine cannot run a lab, or nothing when it can.
usmc_lab_capability() {
	if [ "$(id -u)" != 0 ]; then
		echo "not root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN"
		return
	fi
	if ! command -v ip >/dev/null; then
		echo "the ip command (iproute2) is missing"
		return
	fi
	local probe
	probe=usmc-probe-$$-$RANDOM
	if ! ip netns add "$probe" 2>/dev/null; then
		echo "cannot create a network namespace (ip netns add failed)"
		return
	fi
	if ! ip -n "$probe" link add name a type veth peer name b 2>/dev/null; then
		ip netns del "$probe" 2>/dev/null
		echo "cannot create a veth pair (no veth support in this kernel?)"
		return
	fi
	ip netns del "$probe" 2>/dev/null
}

usmc_lab_exists() {
	[ -d "$USMC_LAB_RUNDIR/$1" ] || ip netns list 2>/dev/null | grep -q "^usmc-$1-h[12]\b"
}

usmc_lab_link_up() { # NS
	ip -n "$1" -o link show "$USMC_LAB_IFNAME" 2>/dev/null | grep -q 'LOWER_UP'
}

# usmc_lab_up NAME SUBNET
usmc_lab_up() {
	local name=$1 subnet=$2 h ns
	local dir=$USMC_LAB_RUNDIR/$name
	if usmc_lab_exists "$name"; then
		usmc_lab_log "lab '$name' already exists (run: usmc-lab --name $name down)"
		return 1
	fi
	mkdir -p "$dir" || return 1
	echo "$subnet" >"$dir/subnet"
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
	done
	local ns1 ns2
	ns1=$(usmc_lab_ns "$name" h1)
	ns2=$(usmc_lab_ns "$name" h2)
	ip -n "$ns1" link add name "$USMC_LAB_IFNAME" type veth \
		peer name "$USMC_LAB_IFNAME" netns "$ns2" || return 1
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		# No IPv6 on the veth: router solicitations would only add noise
		# to the captures.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.$USMC_LAB_IFNAME.disable_ipv6=1 2>/dev/null
		ip -n "$ns" addr add "$subnet.${h#h}/24" dev "$USMC_LAB_IFNAME" || return 1
		ip -n "$ns" link set "$USMC_LAB_IFNAME" up || return 1
	done
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		if ! busywait 5000 usmc_lab_link_up "$ns"; then
			usmc_lab_log "veth in $ns did not come up"
			return 1
		fi
	done
}

usmc_lab_kill_ns_pids() { # NS SIGNAL
	local pids
	pids=$(ip netns pids "$1" 2>/dev/null) || return 0
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -"$2" $pids 2>/dev/null
	return 0
}

usmc_lab_ns_empty() { [ -z "$(ip netns pids "$1" 2>/dev/null)" ]; }
usmc_lab_ns_gone() { ! ip netns list 2>/dev/null | grep -q "^$1\b"; }

# usmc_lab_down NAME: idempotent; works on a half-built or failed lab.
usmc_lab_down() {
	local name=$1 h ns rc=0
	usmc_lab_capture_stop_all "$name"
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		# a namespace switch left on would outlive the namespace
		[ ! -f "${USMC_NETNS_STATE:-/var/lib/usmc/netns}/$ns" ] ||
			"$(dirname "${BASH_SOURCE[0]}")/../tools/usmc-netns" "$ns" off >/dev/null || rc=1
		usmc_lab_ns_gone "$ns" && continue
		usmc_lab_kill_ns_pids "$ns" TERM
		if ! busywait 3000 usmc_lab_ns_empty "$ns"; then
			usmc_lab_kill_ns_pids "$ns" KILL
			busywait 3000 usmc_lab_ns_empty "$ns" ||
				usmc_lab_log "processes still running in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
		fi
		ip netns del "$ns" 2>/dev/null
		if ! busywait 3000 usmc_lab_ns_gone "$ns"; then
			usmc_lab_log "namespace $ns could not be removed"
			rc=1
		fi
	done
	rm -rf "${USMC_LAB_RUNDIR:?}/$name"
	return $rc
}

# --- packet capture ---------------------------------------------------------

# usmc_lab_capture_start NAME HOST FILE [SNAPLEN]: tcpdump on HOST's veth,
# returns once tcpdump has the interface open (it says "listening on").
# SNAPLEN defaults to the veth MTU plus room for link headers: whole
# packets, except TCP super-packets that GSO hands over (their headers and
# first bytes are kept). Not 0 (262144): tcpdump sizes every ring slot for
# the snap length, so the ring would hold a few hundred packets and drop
# the rest of a RoCE burst.
usmc_lab_capture_start() {
	local name=$1 host=$2 file=$3 snaplen=${4:-}
	local dir=$USMC_LAB_RUNDIR/$name ns mtu
	ns=$(usmc_lab_ns "$name" "$host")
	if [ -z "$snaplen" ]; then
		mtu=$(ip -n "$ns" -o link show "$USMC_LAB_IFNAME" 2>/dev/null | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
		snaplen=$((${mtu:-1500} + 64))
	fi
	if [ -e "$dir/capture-$host.pid" ]; then
		usmc_lab_log "a capture is already running on $host"
		return 1
	fi
	command -v tcpdump >/dev/null || {
		usmc_lab_log "tcpdump is not installed"
		return 1
	}
	: >"$file" || return 1
	# -U: write each packet at once, so the file is whole when we stop.
	# -Z root: keep the rights to write FILE where the caller asked.
	# -B: a large kernel buffer, so bursts of RoCE are not dropped.
	# --immediate-mode: hand each packet over at once rather than when a
	# ring block fills, so nothing is left behind when we stop it.
	setsid ip netns exec "$ns" tcpdump -i "$USMC_LAB_IFNAME" -n -U -Z root --immediate-mode \
		-B 65536 -s "$snaplen" -w "$file" \
		</dev/null >/dev/null 2>"$dir/capture-$host.log" &
	local pid=$!
	echo "$pid" >"$dir/capture-$host.pid"
	echo "$file" >"$dir/capture-$host.file"
	if ! busywait 10000 grep -q 'listening on' "$dir/capture-$host.log"; then
		usmc_lab_log "tcpdump did not start on $host: $(cat "$dir/capture-$host.log")"
		usmc_lab_capture_stop "$name" "$host" >/dev/null
		return 1
	fi
}

usmc_lab_pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# usmc_lab_capture_stop NAME HOST: stops tcpdump, prints its counters.
usmc_lab_capture_stop() {
	local name=$1 host=$2 dir=$USMC_LAB_RUNDIR/$1 pid
	[ -r "$dir/capture-$host.pid" ] || {
		usmc_lab_log "no capture running on $host"
		return 1
	}
	pid=$(cat "$dir/capture-$host.pid")
	# Let packets still in flight reach the file: wait until its size has
	# not changed for 300 ms (at most 5 s).
	local file size prev=-1 t=0
	file=$(cat "$dir/capture-$host.file" 2>/dev/null)
	while ((t < 50)); do
		size=$(stat -c %s "$file" 2>/dev/null || echo 0)
		[ "$size" = "$prev" ] && ((t % 3 == 0)) && ((t > 0)) && break
		((t % 3 == 0)) && prev=$size
		sleep 0.1
		t=$((t + 1))
	done
	kill -TERM "$pid" 2>/dev/null
	if ! busywait 10000 usmc_lab_pid_gone "$pid"; then
		kill -KILL "$pid" 2>/dev/null
	fi
	# tcpdump's closing lines: "N packets captured", "N packets dropped by kernel".
	grep -E 'packets (captured|received|dropped)' "$dir/capture-$host.log" 2>/dev/null
	rm -f "$dir/capture-$host.pid" "$dir/capture-$host.file"
	return 0
}

usmc_lab_capture_stop_all() {
	local name=$1 h
	for h in $USMC_LAB_HOSTS; do
		[ -r "$USMC_LAB_RUNDIR/$name/capture-$h.pid" ] &&
			usmc_lab_capture_stop "$name" "$h" >/dev/null
	done
	return 0
}

# Packets the kernel dropped during the last capture on HOST (0 if unknown).
usmc_lab_capture_drops() {
	local log=$USMC_LAB_RUNDIR/$1/capture-$2.log
	sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$log" 2>/dev/null | head -1
}

# --- capture analysis (tshark) -----------------------------------------------

# usmc_lab_analyze FILE PORT ROCE_PORT: what tshark sees in a capture, as
# key=value lines: frames, TCP payload bytes on PORT, CLC messages by type,
# RoCE packets, RDMA WRITE packets and their payload bytes (from the UDP
# length, so a capture cut to the headers is enough), CDC and LLC SENDs,
# ACKs, and malformed frames (SMC-Rv2 LLC excepted, see below). ICMP errors
# are left out: tshark decodes the packet they quote as if it were RoCE.
usmc_lab_analyze() {
	local file=$1 p=$2 rport=$3
	local topt=(-n -o "infiniband.rroce.port:$rport")
	tshark -r "$file" "${topt[@]}" -T fields -E occurrence=a \
		-e frame.number -e tcp.len -e smc.clc_msg -e smc.llc_msg \
		-e infiniband.bth.opcode -e udp.length -e infiniband.bth.padcnt \
		-e _ws.malformed -Y "(tcp.port == $p || udp.dstport == $rport) && !icmp && !icmpv6" 2>/dev/null |
		awk -F'\t' '
		{ n++ }
		$2 != "" { tcp += $2 }
		$3 != "" { k = split($3, m, ","); for (j = 1; j <= k; j++) clc[m[j] + 0]++ }
		$5 != "" { roce++; op = $5 + 0
			hdr = 8 + 12 + ((op == 6 || op == 10) ? 16 : 0) + (op == 11 ? 20 : 0) + (op == 9 ? 4 : 0)
			if (op >= 6 && op <= 11) { wp++; wb += $6 - hdr - $7 - 4 }
			if (op == 4 || op == 5) { if ($4 == "0xfe") cdc++; else llc++ }
			if (op == 17) acks++ }
		$8 != "" && $5 == "" { bad++ }
		END { printf "frames=%d\ntcp_payload=%d\nclc_proposal=%d\nclc_accept=%d\n", n, tcp, clc[1], clc[2]
		      printf "clc_confirm=%d\nclc_decline=%d\nroce=%d\nwrite_pkts=%d\n", clc[3], clc[4], roce, wp
		      printf "write_bytes=%d\ncdc=%d\nllc=%d\nacks=%d\nmalformed_nonroce=%d\n", wb, cdc, llc, acks, bad }'
	# Malformed RoCE frames, except SMC-Rv2 LLC (type 0x2X after the
	# 12-byte BTH), which Wireshark 4.0 cannot decode.
	tshark -r "$file" "${topt[@]}" -T fields -e frame.number -e udp.payload \
		-Y "_ws.malformed && udp.dstport == $rport && !icmp && !icmpv6" 2>/dev/null |
		awk -F'\t' '{ t = substr($2, 25, 1) } t != "2" { bad++ }
			END { printf "malformed_roce=%d\n", bad }'
}

# usmc_lab_fault NAME HOST SCHEDULE [PID]: send SCHEDULE (docs/fault.md) to
# the fault control socket of every usmc process in HOST, or of PID alone,
# and print each answer. The sockets are
# ${USMC_FAULT_CTL_DIR:-/run/usmc/fault}/usmc-fault.PID.N.sock (a process
# with USMC_TRANSPORT=fault:...). Returns 1 if none was found or any
# refused the schedule (it then keeps none of it).
usmc_lab_fault() {
	local ns pids
	ns=$(usmc_lab_ns "$1" "$2")
	if [ -n "${4:-}" ]; then
		pids=$4
	else
		pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
	fi
	# shellcheck disable=SC2086 # one argument per pid
	python3 - "${USMC_FAULT_CTL_DIR:-/run/usmc/fault}" "$3" $pids <<'EOF'
import glob, os, socket, sys, tempfile
d, sched, pids = sys.argv[1], sys.argv[2], sys.argv[3:]
socks = [s for p in pids for s in sorted(glob.glob("%s/usmc-fault.%s.*.sock" % (d, p)))]
if not socks:
    print("usmc-lab: no usmc fault control socket of pid(s) %s in %s" % (" ".join(pids) or "-", d), file=sys.stderr)
    sys.exit(1)
bad = 0
tmp = tempfile.mkdtemp(prefix="usmc-lab-fault.")
me = os.path.join(tmp, "c")
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
c.bind(me)
c.settimeout(3)
for s in socks:
    pid = os.path.basename(s).split(".")[1]
    try:
        c.sendto(sched.encode(), s)
        r = c.recv(4096).decode(errors="replace")
    except OSError as e:
        r = "error: %s" % e
    print("%s: %s" % (pid, r))
    bad |= r != "ok"
c.close()
os.unlink(me)
os.rmdir(tmp)
sys.exit(1 if bad else 0)
EOF
}
