#!/usr/bin/env bash
# The runtime's use of the SMC TCP option (docs/negotiation.md), for
# programs under usmc-run in the two-host lab. `ip netns exec` hides the
# cgroup v2 mount, so the test hands the cgroup directory over as fd 9
# (USMC_CGROUP=/proc/self/fd/9). Checks:
#  1. usmc on both ends of an SMC port: the option loads on both sides,
#     SYN and SYN-ACK carry fe 06 e2 d4 c3 d9 (tshark), SMC-R, bytes exact;
#  2. usmc client -> plain server on a port the rules call SMC: the
#     SYN-ACK has no option, so the client falls back (PEERNOSMC) without
#     a CLC byte (the server checks every byte from the first); again with
#     the connecting socket registered in an edge-triggered epoll set;
#  3. plain client -> usmc server on its SMC port: the server falls back at
#     once (PEERNOSMC), bytes exact.
# Skips (77) without root, without a cgroup v2 mount, or in a build without
# eBPF; any other load failure fails.
. "$(dirname "$0")/lib_preload.sh"
t_need_cmd timeout ss tcpdump tshark
cg_mnt=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
[ -n "$cg_mnt" ] || t_skip "no cgroup v2 mount"
cg_rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
cg=$cg_mnt$cg_rel
[ -d "$cg" ] || t_skip "cgroup v2 directory $cg not found"
t_lab_up
exec 9<"$cg"
export USMC_CGROUP=/proc/self/fd/9 USMC_DEBUG=1
fails=0
usmc_lab_capture_start "$t_lab" h1 "$t_work/cap.pcap" 200 >/dev/null || t_fail "capture"
t_pair lab 7501 rw "" "" "smcr=1 fallback=0 failed=0" "smcr=1 fallback=0 failed=0" || fails=$((fails + 1))
usmc_lab_capture_stop "$t_lab" h1 >/dev/null
d=$t_work/rw-lab-7501
if grep -q 'built without eBPF' "$d/s.err"; then
	t_skip "this build has no eBPF SYN option (clang or libbpf-dev missing)"
fi
for side in s c; do
	if ! grep -q 'SMC TCP option negotiation on' "$d/$side.err"; then
		t_log "the option did not load ($side): $(grep -i 'option' "$d/$side.err")"
		fails=$((fails + 1))
	fi
done
n=$(tshark -r "$t_work/cap.pcap" -Y 'tcp.port == 7501 && tcp.flags.syn == 1 && tcp.options.experimental.exid == 0xe2d4' \
	-T fields -e tcp.flags.ack 2>/dev/null | sort | tr '\n' ' ')
if [ "$n" = "0 1 " ]; then
	t_log "ok SYN and SYN-ACK on port 7501 carry the SMC option (ExID 0xe2d4)"
else
	t_log "SYNs with the SMC option on port 7501 (ack flag of each): '$n', want '0 1'"
	fails=$((fails + 1))
fi
raw=$(tshark -r "$t_work/cap.pcap" -Y 'tcp.port == 7501 && tcp.flags.syn == 1' -T fields -e tcp.options 2>/dev/null | tr -d ':')
[[ $raw == *fe06e2d4c3d9* ]] || {
	t_log "option bytes not found in: $raw"
	fails=$((fails + 1))
}
F1="smcr=0 fallback=1 failed=0"
t_pair lab 7502 rw "" "" plain "$F1" 7502 7502 || fails=$((fails + 1))
grep -q "PEERNOSMC 0x03010000 peer's SYN-ACK had no SMC option" "$t_work/rw-lab-7502/c.err" || {
	t_log "client reason: $(grep fallback "$t_work/rw-lab-7502/c.err")"
	fails=$((fails + 1))
}
# the same, with the client's socket in an epoll set while it turns TCP
t_pair lab 7504 epoll-connect "" "" plain "$F1" 7504 7504 || fails=$((fails + 1))
t_pair lab 7503 rw "" "" "$F1" plain 7503 7503 || fails=$((fails + 1))
grep -q "PEERNOSMC 0x03010000 peer's SYN had no SMC option" "$t_work/rw-lab-7503/s.err" || {
	t_log "server reason: $(grep fallback "$t_work/rw-lab-7503/s.err")"
	fails=$((fails + 1))
}
[ $fails = 0 ] || t_fail "$fails check(s) failed"
t_log PASS
