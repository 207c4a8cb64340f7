#!/usr/bin/env bash
# The runtime's pnet table (USMC_PNET, "set pnet"; docs/runtime.md, "pnet")
# in a two-link lab: with both interfaces in one pnet, the device a
# connection opens on eth0 brings its alternate on eth1 (same transport,
# same options, the interface's first IPv4 address) on both hosts, and
# the stream is SMC-R byte-exact; without USMC_PNET there is no
# alternate; an interface of the pnet without an IPv4 address is passed
# over, said at debug level; a bad USMC_PNET is ignored with its error
# (one device, SMC-R), a bad "set pnet" refuses the config file (TCP).
. "$(dirname "$0")/lib_test.sh"
t_need_cmd timeout ss
t_need_perf
t_lab_up 2
port=7600

# pair TAG ENV...: usmc-perf -s -1 in h1 and a verified 8 MiB stream from
# h2, both with USMC_DEBUG=1 and ENV; logs in $t_work/TAG.{server,client}.err
pair() {
	local tag=$1
	shift
	port=$((port + 1))
	T_TIMEOUT=60 t_run_pair "$tag" "$port" --verify --json -- -n 8M --verify --json 2>/dev/null
}
export USMC_DEBUG=1

# --- alternates -----------------------------------------------------------
(export USMC_PNET=$T_PNET && pair alt) || t_fail "alt: the pair failed"
t_check_smcr alt 8388608 >/dev/null || t_fail "alt: not SMC-R byte-exact"
for h in server client; do
	if [ $h = server ]; then a=$T_H1_L2 d0=$T_H1; else a=$T_H2_L2 d0=$T_H2; fi
	f=$t_work/alt.$h.err
	grep -q "device 0: transport softroce on $d0 opened" "$f" || t_fail "alt: $h: device 0 not on $d0: $(grep device "$f")"
	grep -q "device 1: transport softroce on $a (eth1) opened, alternate of device 0 in pnet USMCLAB" "$f" ||
		t_fail "alt: $h: no alternate on eth1: $(grep -i 'device\|pnet' "$f")"
done
t_log "ok USMC_PNET=$T_PNET: both hosts opened device 1 on eth1 as the alternate of device 0; 8 MiB SMC-R verified"

# --- without pnet -----------------------------------------------------------
(unset USMC_PNET && pair none) || t_fail "none: the pair failed"
t_check_smcr none 8388608 >/dev/null || t_fail "none: not SMC-R byte-exact"
# (the core's "rejected: no alternate path" for the server's ADD_LINK is
# expected here: only an opened alternate device is wrong)
grep -qi "alternate of device\|device 1" "$t_work/none.server.err" "$t_work/none.client.err" &&
	t_fail "none: a second device without USMC_PNET: $(grep -hi 'alternate of device\|device 1' "$t_work"/none.*.err)"
t_log "ok without USMC_PNET: one device per host"

# --- an interface without an address, the fault transport ------------------
t_exec h1 ip link add bare7 type veth peer name bare7p || t_fail "cannot add an interface without an address"
(export USMC_PNET="P1=eth0,bare7,eth1" USMC_TRANSPORT=fault:softroce && pair noaddr) ||
	t_fail "noaddr: the pair failed"
t_check_smcr noaddr 8388608 || t_fail "noaddr: not SMC-R byte-exact"
f=$t_work/noaddr.server.err
grep -q "pnet P1: interface bare7 has no IPv4 address: no alternate of device 0 on it" "$f" ||
	t_fail "noaddr: bare7 not passed over: $(grep -i pnet "$f")"
grep -q "device 1: transport fault:softroce on $T_H1_L2 (eth1) opened, alternate of device 0 in pnet P1" "$f" ||
	t_fail "noaddr: no fault:softroce alternate on eth1: $(grep -i 'device\|pnet' "$f")"
t_log "ok bare7 without an address passed over; the alternate has the device's transport (fault:softroce)"

# --- errors ---------------------------------------------------------------
(export USMC_PNET="USMCLAB=eth0,eth1;X=eth1" && pair badenv) || t_fail "badenv: the pair failed"
t_check_smcr badenv 8388608 >/dev/null || t_fail "badenv: not SMC-R byte-exact"
f=$t_work/badenv.server.err
grep -qF 'ignoring USMC_PNET="USMCLAB=eth0,eth1;X=eth1": pnet 2 (column 21): interface eth1 given twice (an interface is in one pnet)' "$f" ||
	t_fail "badenv: no error line: $(grep -i pnet "$f")"
grep -q "alternate" "$f" && t_fail "badenv: a refused USMC_PNET still opened an alternate"
printf 'set pnet NET-1=eth0\n' >"$t_work/bad.conf"
(export USMC_CONF=$t_work/bad.conf && pair badfile) || t_fail "badfile: the pair failed"
f=$t_work/badfile.server.err
grep -qF "rules refused, every connection TCP: $t_work/bad.conf:1: bad value \"NET-1=eth0\" for pnet: pnet 1 (column 1) \"NET-1\": a pnet id is 1-16 letters and digits" "$f" ||
	t_fail "badfile: no error line: $(grep -i 'pnet\|refused' "$f")"
[ "$(t_json "$t_work/badfile.server" path)" = tcp ] && [ "$(t_json "$t_work/badfile.server" verify)" = ok ] ||
	t_fail "badfile: want TCP verified, got $(t_json "$t_work/badfile.server" path) $(t_json "$t_work/badfile.server" verify)"
printf 'set pnet usmclab=eth0,eth1\n' >"$t_work/good.conf"
(export USMC_CONF=$t_work/good.conf && pair goodfile) || t_fail "goodfile: the pair failed"
grep -q "alternate of device 0 in pnet USMCLAB" "$t_work/goodfile.client.err" ||
	t_fail "goodfile: 'set pnet usmclab=eth0,eth1' opened no alternate (upper-cased)"
t_log "ok a bad USMC_PNET is ignored with its error; a bad 'set pnet' refuses the file; 'set pnet usmclab=...' works"
# a sanitizer build's reports (ASan+UBSan) in any log
if grep -l "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$t_work"/*.server* "$t_work"/*.client* 2>/dev/null; then
	t_fail "sanitizer reports in the logs above"
fi
t_log PASS
