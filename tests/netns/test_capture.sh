#!/usr/bin/env bash
# Capture a verified 4 MiB SMC-R transfer whole on h1's veth, then check it
# with tools that share no code with usmc's data path:
#  - tshark: no malformed packet (SMC-Rv2 LLC excepted: Wireshark 4.0
#    cannot decode it), the CLC Proposal, Accept and Confirm decoded as
#    SMC, CDC messages, and RDMA WRITE payload >= the bytes sent;
#  - icrc_check.py: the ICRC of every RoCE packet;
#  - usmc-decode: no malformed message, every ICRC ok, and the same CLC
#    and CDC counts as tshark.
. "$(dirname "$0")/lib_test.sh"
t_need_cmd python3 timeout ss tshark tcpdump
t_need_perf
[ -x "$T_DECODE" ] || t_fail "usmc-decode is not built ($T_DECODE missing)"
t_lab_up
pcap=$t_work/cap.pcap
usmc_lab_capture_start "$t_lab" h1 "$pcap" || t_fail "tcpdump did not start"
t_run_pair cap 7070 --verify --json -- -n 4M --verify --json --timeout 60 || t_fail "transfer failed"
usmc_lab_capture_stop "$t_lab" h1 | sed "s/^/$T_NAME: tcpdump: /"
t_check_smcr cap 4194304 || t_fail "the transfer was not SMC-R, verified, 4 MiB"
drops=$(usmc_lab_capture_drops "$t_lab" h1)
[ "${drops:-0}" = 0 ] || t_fail "tcpdump dropped $drops packets; the capture is incomplete"

usmc_lab_analyze "$pcap" 7070 4791 >"$t_work/stats"
kv() { sed -n "s/^$1=//p" "$t_work/stats"; }
t_log "tshark: $(tr '\n' ' ' <"$t_work/stats")"
[ "$(kv malformed_roce)" = 0 ] && [ "$(kv malformed_nonroce)" = 0 ] || t_fail "tshark found malformed packets"
[ "$(kv clc_proposal)" -ge 1 ] && [ "$(kv clc_accept)" -ge 1 ] && [ "$(kv clc_confirm)" -ge 1 ] ||
	t_fail "tshark did not decode the CLC Proposal, Accept and Confirm as SMC"
[ "$(kv cdc)" -ge 1 ] || t_fail "tshark saw no CDC message"
[ "$(kv write_bytes)" -ge 4194304 ] || t_fail "RDMA WRITE payload $(kv write_bytes) < 4 MiB"
[ "$(kv tcp_payload)" -le 4096 ] || t_fail "TCP carried $(kv tcp_payload) payload bytes: data did not go over RDMA"

python3 "$T_ICRC" "$pcap" >"$t_work/icrc" || t_fail "ICRC check: $(tail -5 "$t_work/icrc")"
grep -q ' 0 cut short' "$t_work/icrc" || t_fail "some RoCE packets were not captured whole: $(tail -1 "$t_work/icrc")"
t_log "icrc_check.py: $(tail -1 "$t_work/icrc" | sed 's/^[^:]*: //')"

rc=0
"$T_DECODE" --json --quiet "$pcap" >"$t_work/decode" || rc=$?
[ $rc = 0 ] || t_fail "usmc-decode exit $rc: $(head -5 "$t_work/decode")"
sum() { t_summary "$t_work/decode" "$1"; }
t_log "usmc-decode: clc $(sum clc) llc $(sum llc) cdc $(sum cdc) roce $(sum roce) icrc_ok $(sum icrc_ok) malformed $(sum malformed)"
clc_ts=$(($(kv clc_proposal) + $(kv clc_accept) + $(kv clc_confirm) + $(kv clc_decline)))
[ "$(sum clc)" = "$clc_ts" ] || t_fail "usmc-decode found $(sum clc) CLC messages, tshark $clc_ts"
[ "$(sum cdc)" = "$(kv cdc)" ] || t_fail "usmc-decode found $(sum cdc) CDC messages, tshark $(kv cdc)"
[ "$(sum llc)" = "$(kv llc)" ] || t_fail "usmc-decode found $(sum llc) LLC messages, tshark $(kv llc)"
[ "$(sum icrc_ok)" = "$(sum roce)" ] || t_fail "usmc-decode: $(sum icrc_ok) of $(sum roce) ICRCs ok"
t_log PASS
