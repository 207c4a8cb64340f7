#!/usr/bin/env bash
# kernel AF_SMC <-> plain TCP both ways round: fallback, PEERNOSMC
#
# VM cell 2 (docs/vm.md): an AF_SMC client of a TCP server (VM 1 port
# 7111) and a TCP client of an AF_SMC server (port 7112), 1 MiB each way on
# each, verified. Both AF_SMC ends must fall back with PEERNOSMC (smc_diag's
# fallback reason); the capture must show the SMC TCP option in the AF_SMC
# client's SYNs only, and no CLC message.
# shellcheck source=tests/vm/lib_vm.sh
. "$USMC_SRC/tests/vm/lib_vm.sh"
A=7111 B=7112 N=1048576

case $1 in
srv)
	vm_kernel_smc
	for t in a-up a-down b-up b-down; do
		p=$A kind=--tcp
		[ "${t%-*}" = b ] && p=$B kind=--af-smc
		vm_perf $t.srv -s -1 $kind -p $p &
		vm_wait_listen $p
		vm_mark $t
		vm_reap $t-done
	done
	;;
cli)
	vm_kernel_smc
	vm_wait a-up
	vm_perf a-up.cli -c "$VM_SRV_ADDR" -p $A --af-smc -n $N
	vm_mark a-up-done
	vm_wait a-down
	vm_perf a-down.cli -c "$VM_SRV_ADDR" -p $A --af-smc -n $N -R
	vm_mark a-down-done
	vm_wait b-up
	vm_perf b-up.cli -c "$VM_SRV_ADDR" -p $B --tcp -n $N
	vm_mark b-up-done
	vm_wait b-down
	vm_perf b-down.cli -c "$VM_SRV_ADDR" -p $B --tcp -n $N -R
	vm_mark b-down-done
	;;
host)
	for t in a-up a-down; do
		vm_expect_perf $t.srv tcp $N
		vm_expect_perf $t.cli tcp $N PEERNOSMC
	done
	for t in b-up b-down; do
		vm_expect_perf $t.srv tcp $N PEERNOSMC
		vm_expect_perf $t.cli tcp $N
	done
	vm_capture_check $A $B
	((CAP_CLC == 0)) || vm_fail "the capture has $CAP_CLC CLC Confirms on a fallback connection"
	((CAP_TCP >= 4 * N)) || vm_fail "TCP carried $CAP_TCP payload bytes, less than the $((4 * N)) sent"
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
	[ "$a_syn" = 2/2 ] || vm_fail "the AF_SMC client's SYNs to $A: $a_syn with the SMC option, expected 2/2"
	[ "$a_synack" = 0/2 ] && [ "$b_syn" = 0/2 ] && [ "$b_synack" = 0/2 ] || \
		vm_fail "an SMC option where TCP has none (SYN-ACK $A $a_synack, SYN $B $b_syn, SYN-ACK $B $b_synack)"
	;;
esac
