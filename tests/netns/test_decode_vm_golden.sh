#!/usr/bin/env bash
# The golden traces of usmc against the Linux 6.12 kernel's SMC-R
# (tests/conformance/kernel-6.12, cut from the VM tier's usmc_server and
# usmc_client cells): usmc-decode finds no malformed message and every
# RoCE ICRC right, its CLC / LLC / CDC / RoCE counts equal tshark's, and
# the link groups end cleanly (tests/vm/llc_check.py: every LLC request
# answered, usmc's DELETE_LINK ALL for each link group, answered by the
# kernel's server, no retransmission by the kernel after it, CONFIRM_RKEY
# both ways for the connection that reused a link group). So the suite
# checks usmc's wire behaviour against the kernel on every run, without a
# VM. Needs no root.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 tshark
[ -x "$T_DECODE" ] || t_fail "usmc-decode is not built ($T_DECODE missing; it needs libpcap)"
dir=$USMC_SRC/tests/conformance/kernel-6.12
[ -d "$dir" ] || t_fail "golden traces not found at $dir"

work=$(mktemp -d /tmp/usmc-golden.XXXXXX)
trap 'rm -rf "$work"' EXIT

# decode_check FILE: usmc-decode --json of the trace FILE into $out, its
# LLC, CDC and RoCE counts equal tshark's, every ICRC right, nothing
# malformed. Sets cap, out, llc, cdc and line (the counts, for the log).
decode_check() {
	local ts_cdc ts_send ts_roce roce ok mal rc=0
	cap=$dir/$1
	[ -s "$cap" ] || t_fail "$1 missing"
	out=$work/$1.json
	"$T_DECODE" --json "$cap" >"$out" 2>"$out.err" || rc=$?
	[ $rc = 0 ] || t_fail "$1: usmc-decode exit $rc: $(grep -m3 MALFORMED "$out") $(cat "$out.err")"
	ts_cdc=$(tshark -r "$cap" -n -Y 'smc.llc_msg == 0xfe' 2>/dev/null | grep -c .)
	ts_send=$(tshark -r "$cap" -n -Y 'infiniband.bth.opcode == 4' 2>/dev/null | grep -c .)
	ts_roce=$(tshark -r "$cap" -n -Y 'infiniband' 2>/dev/null | grep -c .)
	llc=$(t_summary "$out" llc) cdc=$(t_summary "$out" cdc) roce=$(t_summary "$out" roce)
	ok=$(t_summary "$out" icrc_ok) mal=$(t_summary "$out" malformed)
	line="$1: LLC $llc/$((ts_send - ts_cdc)) CDC $cdc/$ts_cdc RoCE $roce/$ts_roce ICRC ok $ok malformed $mal (usmc-decode/tshark)"
	[ "$llc" = $((ts_send - ts_cdc)) ] && [ "$cdc" = "$ts_cdc" ] && [ "$roce" = "$ts_roce" ] &&
		[ "$ok" = "$roce" ] && [ "$mal" = 0 ] || t_fail "$line"
}

# file, usmc's address, the kernel's, usmc's role
n=0
while read -r base usmc kern role; do
	decode_check "$base"
	ts_clc=$(tshark -r "$cap" -n -T fields -E occurrence=a -e smc.clc_msg -Y smc.clc_msg 2>/dev/null |
		tr ',' '\n' | grep -c .)
	clc=$(t_summary "$out" clc)
	line="$line, CLC $clc/$ts_clc"
	[ "$clc" = "$ts_clc" ] && ((clc >= 6 && llc >= 10 && cdc >= 10)) || t_fail "$line"
	t_log "ok   $line"
	rc=0
	res=$(python3 "$USMC_SRC/tests/vm/llc_check.py" "$out" "$usmc" "$kern" "$role" reuse) || rc=$?
	[ $rc = 0 ] || t_fail "$base: the link groups did not end cleanly: $res"
	t_log "ok   $base: $res"
	n=$((n + 1))
done <<EOF
usmc-server.pcapng 10.77.0.1 10.77.0.2 server
usmc-client.pcapng 10.77.0.1 10.77.0.2 client
EOF
# The failover traces (cells two_nics and two_nics_server: VM 1's two
# wires merged, cut by cut-failover.sh): the same counts, and the LLC
# exchange of the failover (tests/vm/failover_check.py): ADD_LINK
# accepted, CONFIRM_LINK of link 2 between the second NICs, DELETE_LINK of
# the link that went down, and the group living on after it. Which
# DELETE_LINK requests were answered is fixed by the trace: the kernel
# never answers usmc's DELETE_LINK of the asymmetric link 3 that it added
# itself after the failover (docs/interop.md).
while read -r base answers; do
	decode_check "$base"
	((llc >= 20)) || t_fail "$line"
	t_log "ok   $line"
	rc=0
	res=$(python3 "$USMC_SRC/tests/vm/failover_check.py" "$out" 10.77.0.1 10.77.0.2) || rc=$?
	[ $rc = 0 ] || t_fail "$base: failover LLC: $res"
	got=$(echo "$res" | sed -n 's/^DELETE_LINK of link \([0-9]*\) from \([a-z]*\) (frame \([0-9]*\)): \([a-z]*\).*/\1:\2:\3:\4/p' | tr '\n' ' ')
	[ "$got" = "$answers " ] || t_fail "$base: DELETE_LINK requests '$got', expected '$answers '"
	t_log "ok   $base: failover LLC as recorded: $got"
	n=$((n + 1))
done <<EOF
usmc-client-failover.pcapng 1:kernel:119:answered 3:usmc:157:never 3:kernel:178:answered
usmc-server-failover.pcapng 1:usmc:128:answered 3:usmc:166:answered
EOF
[ $n = 4 ] || t_fail "$n traces checked, expected 4"
# ... and failover_check.py fails a trace without the second link's
# CONFIRM_LINK or without the DELETE_LINK of the failed link
for damaged in "CONFIRM_LINK:CONFIRM_LINK of link 2" "DELETE_LINK:no DELETE_LINK of one link"; do
	f=${damaged%%:*} want=${damaged#*:}
	python3 - "$work/usmc-server-failover.pcapng.json" "$work/fo-$f.json" "$f" <<'EOF2' || t_fail "could not write a damaged decode"
import json, sys
src, dst, t = sys.argv[1:4]
with open(dst, "w") as o:
    for l in open(src):
        if l.startswith('{"frame"'):
            r = json.loads(l)
            if (r.get("proto") == "LLC" and r["type"].startswith(t) and not r.get("all")
                    and (t != "CONFIRM_LINK" or r.get("link") == 2)):
                continue
        o.write(l)
EOF2
	rc=0
	res=$(python3 "$USMC_SRC/tests/vm/failover_check.py" "$work/fo-$f.json" 10.77.0.1 10.77.0.2) || rc=$?
	[ $rc = 1 ] && [[ $res == *"$want"* ]] || t_fail "failover_check.py without $f: exit $rc, '$(echo "$res" | tail -1)'"
	t_log "ok   no $f caught: $(echo "$res" | tail -1)"
done

# The checker itself must catch what it is there for: the usmc-server
# trace without usmc's answer to the kernel's last DELETE_RKEY (the bug
# fixed with USMC_END_QUIET), without usmc's DELETE_LINKs (the _exit
# bug), and with the kernel sending again after usmc has gone.
python3 - "$work/usmc-server.pcapng.json" "$work" <<'EOF2' || t_fail "could not write the damaged decodes"
import json, sys
src, work = sys.argv[1:3]
recs = [l for l in open(src)]
def usmc(r, t, resp):
    return r.get("proto") == "LLC" and r["src"].startswith("10.77.0.1:") and \
        r["type"] == t and bool(r.get("resp")) == resp
last = max(i for i, l in enumerate(recs) if l.startswith('{"frame"') and
           usmc(json.loads(l), "DELETE_RKEY_V2", True))
open(work + "/no-answer.json", "w").writelines(recs[:last] + recs[last + 1:])
open(work + "/no-delete.json", "w").writelines(
    l for l in recs if not (l.startswith('{"frame"') and usmc(json.loads(l), "DELETE_LINK_V2", False)))
# the kernel's last SEND sent again after usmc's last packet, unanswered:
# a peer left retransmitting
frames = [json.loads(l) for l in recs if l.startswith('{"frame"')]
k = [r for r in frames if r["proto"] == "RoCE" and r["type"] == "RC_SEND_ONLY" and
     r["src"].startswith("10.77.0.2:")][-1]
k["frame"] = frames[-1]["frame"] + 1
open(work + "/retrans.json", "w").writelines(recs[:-1] + [json.dumps(k) + "\n", recs[-1]])
EOF2
for damaged in "no-answer:request never answered" "no-delete:DELETE_LINK ALL" \
	"retrans:sent 1 packets again after usmc's last packet"; do
	f=${damaged%%:*} want=${damaged#*:}
	rc=0
	res=$(python3 "$USMC_SRC/tests/vm/llc_check.py" "$work/$f.json" 10.77.0.1 10.77.0.2 server reuse) || rc=$?
	[ $rc = 1 ] && [[ $res == *"$want"* ]] || t_fail "llc_check.py on $f: exit $rc, '$res' (expected '$want')"
	t_log "ok   $f caught: ${res%% \[*}"
done
t_log "PASS"
