# shellcheck shell=bash
# usmc lab library: two hosts as network namespaces joined by a veth pair.
# Sourced by netns/usmc-lab and by tests/netns/*.sh. Modelled on the shape
# of the kernel's selftests/net/lib.sh: every namespace is recorded so that
# cleanup can always find it, and waits are bounded busy-waits, not sleeps.
#
# Names: lab N has namespaces usmc-N-h1 and usmc-N-h2; each holds one end
# of each veth pair (link K is called eth(K-1) inside both), so nothing is
# ever created in the caller's namespace. Link K uses the /24 whose third
# octet is the lab subnet's plus K-1. State (subnet, links, capture pids)
# lives in $USMC_LAB_RUNDIR/N (default /run/usmc-lab/N).

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

# Links of lab NAME (1 for a lab made before --links existed).
usmc_lab_links() {
	local f=$USMC_LAB_RUNDIR/$1/links
	if [ -r "$f" ]; then cat "$f"; else echo 1; fi
}

usmc_lab_link_ifname() { echo "eth$(($1 - 1))"; } # LINK -> interface

# usmc_lab_link_subnet SUBNET LINK: link LINK's /24 (third octet + LINK-1).
usmc_lab_link_subnet() {
	local a b c
	IFS=. read -r a b c <<<"$1"
	echo "$a.$b.$((c + $2 - 1))"
}

# usmc_lab_link_addr NAME HOST LINK -> HOST's address on link LINK
usmc_lab_link_addr() {
	local subnet
	subnet=$(usmc_lab_subnet "$1") || return 1
	echo "$(usmc_lab_link_subnet "$subnet" "$3").${2#h}"
}

# The runtime's pnet table for a lab of LINKS links (docs/runtime.md,
# USMC_PNET): every link's interface in one pnet, so the devices on them
# are alternates and a link group gets a link on each. Empty for one link.
usmc_lab_pnet() {
	local n=$1 k ifs=
	((n > 1)) || return 0
	for ((k = 1; k <= n; k++)); do
		ifs+=${ifs:+,}$(usmc_lab_link_ifname "$k")
	done
	echo "USMCLAB=$ifs"
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

usmc_lab_link_up() { # NS [IFNAME]
	ip -n "$1" -o link show "${2:-$USMC_LAB_IFNAME}" 2>/dev/null | grep -q 'LOWER_UP'
}

# usmc_lab_up NAME SUBNET [LINKS]
usmc_lab_up() {
	local name=$1 subnet=$2 links=${3:-1} h ns k ifn lsub
	local dir=$USMC_LAB_RUNDIR/$name
	if usmc_lab_exists "$name"; then
		usmc_lab_log "lab '$name' already exists (run: usmc-lab --name $name down)"
		return 1
	fi
	mkdir -p "$dir" || return 1
	echo "$subnet" >"$dir/subnet"
	echo "$links" >"$dir/links"
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up || return 1
	done
	local ns1 ns2
	ns1=$(usmc_lab_ns "$name" h1)
	ns2=$(usmc_lab_ns "$name" h2)
	for ((k = 1; k <= links; k++)); do
		ifn=$(usmc_lab_link_ifname "$k")
		lsub=$(usmc_lab_link_subnet "$subnet" "$k")
		ip -n "$ns1" link add name "$ifn" type veth \
			peer name "$ifn" netns "$ns2" || return 1
		for h in $USMC_LAB_HOSTS; do
			ns=$(usmc_lab_ns "$name" "$h")
			# No IPv6 on the veth: router solicitations would only
			# add noise to the captures.
			ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifn.disable_ipv6=1" 2>/dev/null
			# Two links on one host: each address answers ARP only
			# on its own interface, and replies leave by the link
			# they came in on (the kernel's multi-homed defaults
			# would answer 10.77.1.x on eth0 too).
			ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$ifn.arp_ignore=1" \
				"net.ipv4.conf.$ifn.arp_announce=2" 2>/dev/null
			ip -n "$ns" addr add "$lsub.${h#h}/24" dev "$ifn" || return 1
			ip -n "$ns" link set "$ifn" up || return 1
		done
	done
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		for ((k = 1; k <= links; k++)); do
			ifn=$(usmc_lab_link_ifname "$k")
			if ! busywait 5000 usmc_lab_link_up "$ns" "$ifn"; then
				usmc_lab_log "veth $ifn in $ns did not come up"
				return 1
			fi
		done
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
# SMC's CLC dissector is a TCP heuristic; tshark tries port dissectors
# first, so a client port that happens to be registered (57000 is IRC)
# would hide the handshake. USMC_TSHARK_TCP puts the heuristics first.
USMC_TSHARK_TCP=(-o tcp.try_heuristic_first:TRUE)
usmc_lab_analyze() {
	local file=$1 p=$2 rport=$3
	local topt=(-n -o "infiniband.rroce.port:$rport" "${USMC_TSHARK_TCP[@]}")
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

# --- network faults on a link ------------------------------------------------
#
# Real faults on link K's veth pair, in both hosts: the interface down and
# up, a random drop of the link's RoCEv2 UDP (iptables -m statistic, in a
# chain of its own, USMC_LINKK, jumped to from INPUT for that interface, so
# each host drops what it receives: both directions), and a tbf rate limit
# on each end's egress. iptables' random drop is not seedable: a replayable
# drop is the fault transport's (docs/fault.md).

usmc_lab_roce_port() { echo "${USMC_SOFTROCE_PORT:-4791}"; }

# PERCENT (0 < P <= 100, at most 4 decimals) -> probability for -m statistic
usmc_lab_valid_percent() {
	[[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,4})?$ ]] || return 1
	awk -v p="$1" 'BEGIN { exit !(p > 0 && p <= 100) }'
}

# tc's rate syntax, the units tbf takes
usmc_lab_valid_rate() {
	[[ $1 =~ ^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)$ ]]
}

# usmc_lab_link_drop_rules NAME HOST LINK: the drop rules in force, one a line
usmc_lab_link_drop_rules() {
	local ns
	ns=$(usmc_lab_ns "$1" "$2")
	ip netns exec "$ns" iptables -w -S "USMC_LINK$3" 2>/dev/null | grep -- '-j DROP'
}

usmc_lab_link_drop_clear() { # NAME LINK
	local h ns ifn rc=0
	ifn=$(usmc_lab_link_ifname "$2")
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$1" "$h")
		ip netns exec "$ns" iptables -w -L "USMC_LINK$2" -n >/dev/null 2>&1 || continue
		while ip netns exec "$ns" iptables -w -D INPUT -i "$ifn" -j "USMC_LINK$2" 2>/dev/null; do :; done
		ip netns exec "$ns" iptables -w -F "USMC_LINK$2" || rc=1
		ip netns exec "$ns" iptables -w -X "USMC_LINK$2" || rc=1
	done
	return $rc
}

usmc_lab_link_rate_clear() { # NAME LINK
	local h ns ifn
	ifn=$(usmc_lab_link_ifname "$2")
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$1" "$h")
		if tc -n "$ns" qdisc show dev "$ifn" root 2>/dev/null | grep -q '^qdisc tbf'; then
			tc -n "$ns" qdisc del dev "$ifn" root || return 1
		fi
	done
}

# usmc_lab_link_fault NAME LINK ACTION [ARG]: see usmc-lab --help.
usmc_lab_link_fault() {
	local name=$1 link=$2 action=$3 arg=${4:-} h ns ifn hosts=$USMC_LAB_HOSTS
	ifn=$(usmc_lab_link_ifname "$link")
	case $action in
	down)
		[ -z "$arg" ] || hosts=$arg
		for h in $hosts; do
			ip -n "$(usmc_lab_ns "$name" "$h")" link set "$ifn" down || return 1
		done
		;;
	up)
		for h in $USMC_LAB_HOSTS; do
			ip -n "$(usmc_lab_ns "$name" "$h")" link set "$ifn" up || return 1
		done
		for h in $USMC_LAB_HOSTS; do
			ns=$(usmc_lab_ns "$name" "$h")
			busywait 5000 usmc_lab_link_up "$ns" "$ifn" || {
				usmc_lab_log "link $link: $ifn in $ns has no carrier 5 s after up"
				return 1
			}
		done
		;;
	drop)
		local prob rule
		prob=$(awk -v p="$arg" 'BEGIN { printf "%.6f", p / 100 }')
		usmc_lab_link_drop_clear "$name" "$link" || return 1
		for h in $USMC_LAB_HOSTS; do
			ns=$(usmc_lab_ns "$name" "$h")
			rule=(-p udp --dport "$(usmc_lab_roce_port)")
			# 100%: no statistic match, every packet
			[ "$prob" = 1.000000 ] ||
				rule+=(-m statistic --mode random --probability "$prob")
			ip netns exec "$ns" iptables -w -N "USMC_LINK$link" &&
				ip netns exec "$ns" iptables -w -A "USMC_LINK$link" "${rule[@]}" -j DROP &&
				ip netns exec "$ns" iptables -w -I INPUT -i "$ifn" -j "USMC_LINK$link" || {
				usmc_lab_log "link $link: iptables failed in $ns"
				usmc_lab_link_drop_clear "$name" "$link"
				return 1
			}
		done
		;;
	rate)
		for h in $USMC_LAB_HOSTS; do
			ns=$(usmc_lab_ns "$name" "$h")
			# burst: a few full frames; latency bounds the queue
			tc -n "$ns" qdisc replace dev "$ifn" root tbf rate "$arg" \
				burst 32kb latency 100ms || {
				usmc_lab_log "link $link: tc tbf rate $arg failed in $ns"
				return 1
			}
		done
		;;
	clear)
		usmc_lab_link_drop_clear "$name" "$link" || return 1
		usmc_lab_link_rate_clear "$name" "$link" || return 1
		usmc_lab_link_fault "$name" "$link" up
		;;
	*)
		usmc_lab_log "link fault: unknown action '$action'"
		return 1
		;;
	esac
}

# One line per host: the link's state and its faults in force.
usmc_lab_link_status() { # NAME LINK
	local name=$1 link=$2 h ns ifn st q d l
	ifn=$(usmc_lab_link_ifname "$link")
	for h in $USMC_LAB_HOSTS; do
		ns=$(usmc_lab_ns "$name" "$h")
		st=$(ip -n "$ns" -br addr show dev "$ifn" 2>/dev/null | awk '{ print $2, $3 }')
		# admin down, or up with no carrier (the peer's end is down)
		l=$(ip -n "$ns" -o link show dev "$ifn" 2>/dev/null)
		if [[ $l == *NO-CARRIER* ]]; then
			st="$st (no carrier)"
		elif [ -n "$l" ] && ! [[ $l =~ [\<,]UP[,\>] ]]; then
			st="$st (admin down)"
		fi
		q=$(tc -n "$ns" qdisc show dev "$ifn" root 2>/dev/null | sed -n 's/^qdisc tbf .* rate \([^ ]*\).*/rate \1/p')
		d=$(usmc_lab_link_drop_rules "$name" "$h" "$link" |
			sed -n 's/.*--probability \([0-9.]*\).*/\1/p; /statistic/!s/.*-j DROP.*/1/p' |
			awk '{ printf "drop %g%%", $1 * 100 }')
		echo "$h $ifn ${st:-MISSING}${q:+, $q}${d:+, $d}"
	done
}
