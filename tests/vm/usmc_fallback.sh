#!/usr/bin/env bash
# usmc <-> the kernel, one side not offering SMC: TCP fallback each way
#
# VM cell 3c (docs/vm.md). usmc (softroce) in VM 1, the kernel in VM 2:
#  a) usmc client of a plain TCP server (usmc-perf --tcp, no usmc, no
#     AF_SMC): usmc's SYN carries the SMC option, the SYN-ACK none, so usmc
#     falls back with PEERNOSMC and sends no CLC;
#  b) the kernel's AF_SMC client of a usmc server whose rule says tcp
#     (USMC_RULES="tcp port B": usmc does not own the socket): no option
#     in the SYN-ACK, the kernel falls back with PEERNOSMC (smc_diag).
# 1 MiB each, every byte verified; no CLC on either port; all of it over
# TCP.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
A=7181 B=7182 N=1048576
case $1 in
srv)
	vm_usmc_host
	vm_wait ready
	vm_perf a.srv -c "$VM_CLI_ADDR" --transport softroce -p $A -n $N
	vm_mark a-done
	USMC_RULES="tcp port $B" vm_perf b.srv -s -1 --transport softroce -p $B &
	vm_wait_listen $B
	vm_mark b
	vm_reap b-done
	;;
cli)
	vm_kernel_smc
	vm_perf a.cli -s -1 --tcp -p $A &
	vm_wait_listen $A
	vm_mark ready
	vm_wait b
	vm_perf b.cli -c "$VM_SRV_ADDR" -p $B --af-smc -n $N -R
	vm_mark b-done
	vm_reap a-done
	;;
host)
	vm_expect_perf a.srv tcp $N PEERNOSMC
	vm_expect_perf a.cli tcp $N
	vm_expect_perf b.cli tcp $N PEERNOSMC
	vm_expect_perf b.srv tcp $N PEERNOSMC
	grep -q '"fallback_detail":"rule 1 at USMC_RULES:1 (tcp port '$B') matched: tcp"' "$VM_OUT/b.srv.json" ||
		vm_fail "the usmc server does not name its tcp rule as the reason: $(tail -1 "$VM_OUT/b.srv.json")"
	got=$(sed -n 's/.*"transport":"\([^"]*\)".*/\1/p' "$VM_OUT/a.srv.json" | tail -1)
	vm_log "usmc client's transport: $got; the usmc server's result: $(tail -1 "$VM_OUT/b.srv.json")"
	vm_capture_check $A $B
	((CAP_CLC == 0)) || vm_fail "the capture has $CAP_CLC CLC Confirms on a fallback connection"
	((CAP_TCP >= 2 * N)) || vm_fail "TCP carried $CAP_TCP payload bytes, less than the $((2 * N)) sent"
	clc=$(tshark -r "$VM_PCAP" -n -o tcp.try_heuristic_first:TRUE -Y "smc.clc_msg && (tcp.port == $A || tcp.port == $B)" 2>/dev/null | grep -c .)
	[ "$clc" = 0 ] || vm_fail "$clc CLC messages on a fallback connection"
	opt() { # FILTER: "SYNs matching FILTER with the SMC option/all of them"
		local f="tcp.flags.syn == 1 && $1" w a
		w=$(tshark -r "$VM_PCAP" -n -Y "$f && tcp.options.experimental.exid == 0xe2d4" 2>/dev/null | grep -c .)
		a=$(tshark -r "$VM_PCAP" -n -Y "$f" 2>/dev/null | grep -c .)
		echo "$w/$a"
	}
	a_syn=$(opt "tcp.flags.ack == 0 && tcp.dstport == $A")
	a_synack=$(opt "tcp.flags.ack == 1 && tcp.srcport == $A")
	b_syn=$(opt "tcp.flags.ack == 0 && tcp.dstport == $B")
	b_synack=$(opt "tcp.flags.ack == 1 && tcp.srcport == $B")
	vm_log "SYNs with the SMC option/all: port $A SYN $a_syn, SYN-ACK $a_synack; port $B SYN $b_syn, SYN-ACK $b_synack"
	[ "$a_syn" = 1/1 ] || vm_fail "usmc's SYN to $A: $a_syn with the SMC option, expected 1/1"
	[ "$b_syn" = 1/1 ] || vm_fail "the AF_SMC client's SYN to $B: $b_syn with the SMC option, expected 1/1"
	[ "$a_synack" = 0/1 ] && [ "$b_synack" = 0/1 ] ||
		vm_fail "an SMC option in a SYN-ACK of a server without SMC ($A $a_synack, $B $b_synack)"
	;;
esac
