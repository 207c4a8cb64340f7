#!/usr/bin/env bash
# Transport options and UEIDs as settings, each way in, with an effect seen
# from outside the setting itself:
#  - transport options (USMC_TRANSPORT_OPTIONS, "set transport_options" in
#    the config file, usmc-run -O, an smc rule's "options"): the device
#    opens on the UDP port and with the MTU they name (its own query_port,
#    logged by the runtime), SMC-R runs over it byte-exact, and the socket
#    on that UDP port belongs to the process (ss); bad ones are refused
#    naming the option, its column and what the key takes;
#  - UEIDs (USMC_UEID, the file, usmc-run -U): a shared one gives SMC-Rv2,
#    none in common gives SMC-Rv1 (as Linux: v2 needs a common UEID), or,
#    across subnets where v1 cannot run, a decline (DIFFPREFIX) and TCP;
#    a bad one is refused.
. "$(dirname "$0")/lib_preload.sh"
# softroce's options and SMC-Rv1/v2 are SMC-R's: never over shm
export USMC_SHM=0
t_need_cmd python3 timeout ss
t_need_perf
t_lab_up
fails=0
ok() { t_log "ok $*"; }
bad() {
	t_log "FAILED: $*"
	fails=$((fails + 1))
}

# perf_pair TAG PORT SERVER_ENV CLIENT_ENV [CLIENT_ARGS...]: usmc-perf with
# the given "K=V K=V" environments on each side (USMC_DEBUG=1 always), a
# verified 4 MiB stream; outputs in $t_work/TAG.{server,client}[.err].
perf_pair() {
	local tag=$1 port=$2 senv=$3 cenv=$4 crc=0 src=0
	shift 4
	# shellcheck disable=SC2086
	t_exec h1 env USMC_DEBUG=1 $senv timeout 60 "$T_PERF" -s -1 -p "$port" --verify --json \
		>"$t_work/$tag.server" 2>"$t_work/$tag.server.err" &
	local spid=$!
	busywait 10000 t_listening h1 "$port" || {
		kill $spid 2>/dev/null
		bad "$tag: server did not listen: $(cat "$t_work/$tag.server.err")"
		return 1
	}
	# shellcheck disable=SC2086
	t_exec h2 env USMC_DEBUG=1 $cenv timeout 60 "$T_PERF" -c "$T_H1" -p "$port" -n 4M --verify --json "$@" \
		>"$t_work/$tag.client" 2>"$t_work/$tag.client.err" || crc=$?
	[ $crc = 0 ] || kill $spid 2>/dev/null
	wait $spid || src=$?
	if [ $crc != 0 ] || [ $src != 0 ]; then
		bad "$tag: client exit $crc, server exit $src"
		sed 's/^/  client: /' "$t_work/$tag.client" "$t_work/$tag.client.err" | tail -8
		sed 's/^/  server: /' "$t_work/$tag.server" "$t_work/$tag.server.err" | tail -8
		return 1
	fi
}

# smcr TAG VERSION: both sides SMC-R of that version, 4 MiB verified.
smcr() {
	local side f
	for side in client server; do
		f=$t_work/$1.$side
		if [ "$(t_json "$f" path)" != smcr ] || [ "$(t_json "$f" verify)" != ok ] ||
			[ "$(t_json "$f" smc_version)" != "$2" ]; then
			bad "$1: $side: path '$(t_json "$f" path)' version '$(t_json "$f" smc_version)' verify '$(t_json "$f" verify)' (want smcr, $2, ok): $(t_json "$f" fallback_detail)"
			return 1
		fi
	done
}

# opened TAG SIDE WHAT: the runtime's device line of that side has WHAT.
opened() {
	local f=$t_work/$1.$2.err
	grep -q "transport softroce on .* opened ($3" "$f" || {
		bad "$1: $2 did not open its device with '$3': $(grep -h 'opened\|ignoring\|no device' "$f" | head -3)"
		return 1
	}
}

# ---- transport options ------------------------------------------------

# 1. environment: UDP port 4800, MTU 512 on both sides
if perf_pair env 7081 "USMC_TRANSPORT_OPTIONS=port=4800,mtu=512" "USMC_TRANSPORT_OPTIONS=port=4800,mtu=512"; then
	smcr env 2 && opened env server 'options "port=4800,mtu=512", udp port 4800, mtu enum 2' &&
		opened env client 'options "port=4800,mtu=512", udp port 4800, mtu enum 2' &&
		ok "USMC_TRANSPORT_OPTIONS=port=4800,mtu=512: SMC-Rv2 over UDP 4800, MTU 512 on both sides"
fi

# 2. the config file's "set transport_options"; the server's UDP socket is
# seen on port 4801 while it runs (64 MiB at MTU 256: 262144 packets, which
# took over 3 s in a loaded ASan run, so the client's bound is 30 s)
cat >"$t_work/usmc.conf" <<EOF
# settings for the test
set transport_options port=4801,mtu=256
EOF
t_exec h1 env USMC_DEBUG=1 USMC_CONF="$t_work/usmc.conf" timeout 60 "$T_PERF" -s -1 -p 7082 --verify --json \
	>"$t_work/conf.server" 2>"$t_work/conf.server.err" &
spid=$!
if busywait 10000 t_listening h1 7082; then
	t_exec h2 env USMC_DEBUG=1 USMC_CONF="$t_work/usmc.conf" timeout 60 "$T_PERF" -c "$T_H1" -p 7082 \
		--timeout 30 --verify --json >"$t_work/conf.client" 2>"$t_work/conf.client.err" &
	cpid=$!
	udp_owned() { t_exec h1 ss -Huanp "sport = :4801" 2>/dev/null | grep -q usmc-perf; }
	busywait 10000 udp_owned && ok "config file: usmc-perf holds UDP port 4801 in h1 (ss)" ||
		bad "config file: no usmc-perf socket on UDP 4801 in h1: $(t_exec h1 ss -Huanp)"
	wait $cpid || bad "config file: client failed: $(tail -3 "$t_work/conf.client.err")"
else
	bad "config file: server did not listen"
fi
wait $spid || bad "config file: server failed: $(tail -3 "$t_work/conf.server.err")"
smcr conf 2 && opened conf server 'options "port=4801,mtu=256", udp port 4801, mtu enum 1' &&
	ok "set transport_options port=4801,mtu=256: SMC-Rv2 over UDP 4801, MTU 256"

# 3. usmc-run -O with an unmodified program (preload_peer, 1 MiB each way
# verified by the program)
d=$t_work/run
mkdir -p "$d"
t_usmc h1 "$d/s.stats" 7083 -O port=4802,mtu=512 -d "$T_PEER" server 7083 rw >"$d/s.out" 2>"$d/s.err" &
spid=$!
if busywait 10000 t_listening h1 7083; then
	crc=0
	t_usmc h2 "$d/c.stats" 7083 -O port=4802,mtu=512 -d "$T_PEER" client "$T_H1" 7083 rw "" "" \
		>"$d/c.out" 2>"$d/c.err" || crc=$?
	[ $crc = 0 ] || kill $spid 2>/dev/null
	src=0
	wait $spid || src=$?
	if [ $crc = 0 ] && [ $src = 0 ] && t_stats "$d/s.stats" "smcr=1 fallback=0 failed=0" &&
		t_stats "$d/c.stats" "smcr=1 fallback=0 failed=0" &&
		grep -q 'opened (options "port=4802,mtu=512", udp port 4802, mtu enum 2' "$d/s.err" &&
		grep -q 'opened (options "port=4802,mtu=512", udp port 4802, mtu enum 2' "$d/c.err"; then
		ok "usmc-run -O port=4802,mtu=512: SMC-R over UDP 4802, MTU 512: $(head -1 "$d/c.out")"
	else
		bad "usmc-run -O: client $crc server $src: $(tail -3 "$d/c.err" "$d/s.err")"
	fi
else
	kill $spid 2>/dev/null
	bad "usmc-run -O: server did not listen: $(cat "$d/s.err")"
fi

# 4. a rule's "options" after USMC_TRANSPORT_OPTIONS (the later mtu wins)
rm -f "$t_work"/rule.*
t_exec h1 env USMC_DEBUG=1 USMC_TRANSPORT_OPTIONS=mtu=256 USMC_RULES="smc port 7085 options mtu=512" \
	timeout 60 "$T_PERF" -s -1 -p 7085 --verify --json >"$t_work/rule.server" 2>"$t_work/rule.server.err" &
spid=$!
busywait 10000 t_listening h1 7085 || bad "rule: server did not listen"
t_exec h2 env USMC_DEBUG=1 USMC_TRANSPORT_OPTIONS=mtu=256 USMC_RULES="smc port 7085 options mtu=512" \
	timeout 60 "$T_PERF" -c "$T_H1" -p 7085 -n 4M --verify --json >"$t_work/rule.client" 2>"$t_work/rule.client.err" ||
	bad "rule: client failed"
wait $spid || bad "rule: server failed"
smcr rule 2 && opened rule server 'options "mtu=256,mtu=512", udp port 4791, mtu enum 2' &&
	ok "rule \"smc port 7085 options mtu=512\" after USMC_TRANSPORT_OPTIONS=mtu=256: MTU 512"

# 5. bad options: refused, naming the option, its column and the key's values
rc=0
msg=$("$T_RUN" -O icrc=off,mtu=1000 true 2>&1) || rc=$?
want='option 2 (column 10) "mtu=1000": mtu is 256, 512, 1024, 2048 or 4096'
[ $rc = 2 ] && [[ $msg == *"--transport-options: transport_options \"icrc=off,mtu=1000\": $want"* ]] &&
	ok "usmc-run -O icrc=off,mtu=1000: exit 2, '$want'" || bad "usmc-run -O bad: rc $rc: $msg"
rc=0
msg=$("$T_RUN" -O icrc=off,,port=1 true 2>&1) || rc=$?
[ $rc = 2 ] && [[ $msg == *'option 2 (column 10) "": want KEY=VALUE'* ]] &&
	ok "usmc-run -O with an empty option: exit 2" || bad "usmc-run -O empty: rc $rc: $msg"
rc=0
msg=$("$T_RUN" -O icrc=maybe true 2>&1) || rc=$?
[ $rc = 2 ] && [[ $msg == *'option 1 (column 1) "icrc=maybe": icrc is verify, strict or off'* ]] &&
	ok "usmc-run -O icrc=maybe: exit 2" || bad "usmc-run -O icrc=maybe: rc $rc: $msg"
# the environment: said once per process, the defaults used
perf_pair badenv 7087 "USMC_TRANSPORT_OPTIONS=bogus=1" "" && smcr badenv 2 &&
	grep -q 'ignoring USMC_TRANSPORT_OPTIONS="bogus=1": option 1 (column 1) "bogus=1": unknown key' "$t_work/badenv.server.err" &&
	ok "USMC_TRANSPORT_OPTIONS=bogus=1: refused with the key named, defaults used" ||
	bad "USMC_TRANSPORT_OPTIONS=bogus=1: $(grep -h ignoring "$t_work/badenv.server.err")"
# the file: a bad "set" refuses the file (every connection TCP), with
# FILE:LINE and the option
printf 'set transport_options mtu=300\n' >"$t_work/bad.conf"
perf_pair badconf 7088 "USMC_CONF=$t_work/bad.conf" "USMC_CONF=$t_work/bad.conf" || true
grep -q "bad.conf:1: bad value \"mtu=300\" for transport_options: option 1 (column 1) \"mtu=300\": mtu is" \
	"$t_work/badconf.server.err" && [ "$(t_json "$t_work/badconf.server" path)" = tcp ] &&
	ok "set transport_options mtu=300: the file refused at line 1, TCP" ||
	bad "bad file: $(grep -h 'refused\|bad value' "$t_work/badconf.server.err")"
# a rule's options are checked by the transport when it opens: fallback
# with NOSMCRDEV and the option named in the detail
t_exec h1 env USMC_RULES="smc port 7089 options mtu=77" timeout 60 "$T_PERF" -s -1 -p 7089 --verify --json \
	>"$t_work/ropt.server" 2>"$t_work/ropt.server.err" &
spid=$!
busywait 10000 t_listening h1 7089 || bad "rule options: server did not listen"
t_exec h2 timeout 60 "$T_PERF" -c "$T_H1" -p 7089 -n 1M --verify --json >"$t_work/ropt.client" 2>&1 || true
wait $spid || true
det=$(t_json "$t_work/ropt.server" fallback_detail)
[ "$(t_json "$t_work/ropt.server" path)" = tcp ] &&
	[[ $det == *'transport softroce: options: option 1 (column 1) "mtu=77": mtu is'* ]] &&
	ok "rule options mtu=77: TCP fallback, detail '$det'" ||
	bad "rule options mtu=77: path $(t_json "$t_work/ropt.server" path), detail '$det'"

# ---- UEIDs --------------------------------------------------------------

perf_pair ueid_same 7091 "USMC_UEID=lab.eid-1" "USMC_UEID=LAB.EID-1" && smcr ueid_same 2 &&
	ok "same UEID (lab.eid-1 / LAB.EID-1, upper-cased): SMC-Rv2"
perf_pair ueid_diff 7092 "USMC_UEID=LAB-A" "USMC_UEID=LAB-B" && smcr ueid_diff 1 &&
	ok "UEIDs LAB-A / LAB-B: no common one, SMC-Rv1 (as Linux)"
perf_pair ueid_list 7093 "USMC_UEID=LAB-A,LAB-C,SHARED" "USMC_UEID=LAB-B,SHARED" && smcr ueid_list 2 &&
	ok "UEID lists sharing SHARED: SMC-Rv2"
perf_pair ueid_dflt 7094 "USMC_UEID=LAB-A" "" && smcr ueid_dflt 1 &&
	ok "LAB-A against the default UEID: SMC-Rv1"
printf 'set ueid FROM.FILE\n' >"$t_work/ueid.conf"
perf_pair ueid_file 7095 "USMC_CONF=$t_work/ueid.conf" "USMC_UEID=from.file" && smcr ueid_file 2 &&
	ok "set ueid FROM.FILE against USMC_UEID=from.file: SMC-Rv2"
rc=0
msg=$("$T_RUN" -U 'GOOD,-BAD' true 2>&1) || rc=$?
[ $rc = 2 ] && [[ $msg == *'UEID 2 (column 6) "-BAD": 1-32 characters A-Z 0-9 . -, starting with a letter or digit'* ]] &&
	ok "usmc-run -U GOOD,-BAD: exit 2, UEID 2 named" || bad "usmc-run -U bad: rc $rc: $msg"
rc=0
msg=$("$T_RUN" -U 'A,B,C,D,E' true 2>&1) || rc=$?
[ $rc = 2 ] && [[ $msg == *"more than 4 UEIDs"* ]] && ok "usmc-run -U with 5 UEIDs: exit 2" ||
	bad "usmc-run -U 5: rc $rc: $msg"
rc=0
msg=$("$T_RUN" -U "$(printf 'X%.0s' {1..33})" true 2>&1) || rc=$?
[ $rc = 2 ] && ok "usmc-run -U with 33 characters: exit 2" || bad "usmc-run -U 33 chars: rc $rc: $msg"
# usmc-run -U reaches an unmodified program's runtime (preload_peer; the
# version from its USMC_DEBUG line): the same UEID v2, another one v1
for c in "RUN-EID 2" "OTHER-EID 1"; do
	set -- $c
	d=$t_work/runu-$2
	mkdir -p "$d"
	t_usmc h1 "$d/s.stats" 7097 -U RUN-EID -d "$T_PEER" server 7097 rw >"$d/s.out" 2>"$d/s.err" &
	spid=$!
	busywait 10000 t_listening h1 7097 || bad "usmc-run -U: server did not listen"
	crc=0
	t_usmc h2 "$d/c.stats" 7097 -U "$1" -d "$T_PEER" client "$T_H1" 7097 rw "" "" >"$d/c.out" 2>"$d/c.err" || crc=$?
	[ $crc = 0 ] || kill $spid 2>/dev/null
	src=0
	wait $spid || src=$?
	if [ $crc = 0 ] && [ $src = 0 ] && grep -q "SMC-R established .* (SMC-Rv$2, lgr [0-9]* link [0-9]*)" "$d/s.err" &&
		grep -q "SMC-R established .* (SMC-Rv$2, lgr [0-9]* link [0-9]*)" "$d/c.err"; then
		ok "usmc-run -U RUN-EID / -U $1: SMC-Rv$2 on both sides"
	else
		bad "usmc-run -U RUN-EID / $1: client $crc server $src: $(grep -h 'established\|fallback' "$d/s.err" "$d/c.err")"
	fi
done

# Across subnets SMC-Rv1 cannot run (its Proposal names the client's
# subnet): h2's connections now leave from 10.78.0.2. The same UEID gives
# SMC-Rv2; different ones leave nothing: the server declines with v1's
# reason, DIFFPREFIX (an EID mismatch has no code of its own in Linux),
# and both ends fall back to TCP, the data verified there.
t_exec h2 ip addr add 10.78.0.2/24 dev "$USMC_LAB_IFNAME" &&
	t_exec h2 ip route replace "$T_H1/32" dev "$USMC_LAB_IFNAME" src 10.78.0.2 &&
	t_exec h1 ip route add 10.78.0.0/24 dev "$USMC_LAB_IFNAME" || t_fail "could not add the second subnet"
perf_pair xsub_same 7098 "USMC_UEID=CROSS" "USMC_UEID=CROSS" && smcr xsub_same 2 &&
	ok "across subnets, same UEID: SMC-Rv2"
if perf_pair xsub_diff 7099 "USMC_UEID=CROSS-A" "USMC_UEID=CROSS-B"; then
	s=$t_work/xsub_diff.server c=$t_work/xsub_diff.client
	if [ "$(t_json "$s" path)" = tcp ] && [ "$(t_json "$s" fallback_reason)" = DIFFPREFIX ] &&
		[ "$(t_json "$c" path)" = tcp ] && [ "$(t_json "$c" fallback_reason)" = PEERDECL ] &&
		[ "$(t_json "$c" peer_diagnosis)" = $((0x03070000)) ] &&
		[ "$(t_json "$c" verify)" = ok ] && [ "$(t_json "$s" verify)" = ok ]; then
		ok "across subnets, UEIDs CROSS-A / CROSS-B: declined DIFFPREFIX, client PEERDECL (diagnosis 0x03070000), both TCP, 4 MiB verified"
	else
		bad "across subnets, different UEIDs: server $(t_json "$s" path) $(t_json "$s" fallback_reason), client $(t_json "$c" path) $(t_json "$c" fallback_reason) $(t_json "$c" peer_diagnosis), verify $(t_json "$c" verify)/$(t_json "$s" verify)"
	fi
fi

[ $fails = 0 ] || t_fail "$fails check(s) failed"
t_log PASS
