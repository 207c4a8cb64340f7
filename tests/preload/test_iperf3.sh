#!/usr/bin/env bash
# Debian's iperf3, unmodified, server and client under usmc-run over
# softroce; in the lab (h2 -> h1) and on one host (h1, 127.0.0.1 ->
# 127.0.0.2): -P 4 (a control and 4 data connections) and -R (the server
# sends). Checks iperf3's JSON (-J): no "error", bytes sent and received
# > 0 and equal on the receiving side's view of the streams, and both
# processes report only SMC-R connections (USMC_STATS).
. "$(dirname "$0")/lib_apps.sh"
t_need_cmd timeout ss iperf3 python3
t_lab_up
A_PORTS=5201
SECS=${A_SECS:-3}

check_json() { # FILE: prints "sent received gbps" or fails
	python3 - "$1" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
if "error" in j:
    sys.exit("iperf3 error: " + j["error"])
e = j["end"]
s, r = e["sum_sent"]["bytes"], e["sum_received"]["bytes"]
if s <= 0 or r <= 0:
    sys.exit("no bytes: sent %d received %d" % (s, r))
n = len(j["start"]["connected"])
print(s, r, "%.3f" % (e["sum_received"]["bits_per_second"] / 1e9), n)
PY
}

run() { # WHERE TAG ARGS...
	a_where "$1"
	local tag=$2-$1 out rc=0
	shift 2
	a_server "$tag-s" 5201 iperf3 -s -1 -p 5201 -B "$A_SADDR" || {
		a_fail "$tag: server"
		return
	}
	T_TIMEOUT=$((SECS + 60)) a_client "$tag" iperf3 -c "$A_SADDR" -p 5201 -t "$SECS" -J "$@" || rc=$?
	local src=0
	local t0=$SECONDS
	a_wait $a_spid 20 || src=$? # -1: the server ends after the test
	[ $((SECONDS - t0)) -lt 3 ] || t_log "$tag: the server took $((SECONDS - t0)) s to end after the client"
	if [ $rc != 0 ] || [ $src != 0 ]; then
		a_fail "$tag: client exit $rc, server exit $src"
		a_show "$tag"
		a_show "$tag-s"
		return
	fi
	if ! out=$(check_json "$t_work/$tag.out" 2>&1); then
		a_fail "$tag: $out"
		return
	fi
	set -- $out
	local want=$(($4 + 1)) # the streams and the control connection
	if a_smcr "$t_work/$tag.stats" $want && a_smcr "$t_work/$tag-s.stats" $want; then
		t_log "ok $tag: $4 streams, sent $1 received $2 bytes, $3 Gbit/s, client and server $A_SMCR"
	else
		a_fail "$tag: not over SMC-R"
	fi
}

for w in lab local; do
	run $w P4 -P 4
	run $w R -R
done
a_end
