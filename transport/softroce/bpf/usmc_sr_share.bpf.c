/* SPDX-License-Identifier: MIT */
/*
 * SK_REUSEPORT program for a softroce UDP port shared by several
 * processes: every process binds (address, port) with SO_REUSEPORT and puts
 * its socket into usmc_sr_socks at its slot; a datagram goes to the socket
 * of the slot in its BTH destination QPN, as rxe's rxe_rcv finds the QP by
 * QPN for every process of the host. A datagram no slot owns is dropped
 * and counted: returning SK_PASS without a selection would make
 * reuseport_select_sock fall back to the hash, i.e. a random process.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "usmc_sr_share_bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, USMC_SR_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} usmc_sr_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, USMC_SR_NDROPS);
	__type(key, __u32);
	__type(value, __u64);
} usmc_sr_drops SEC(".maps");

static __always_inline int drop(__u32 why)
{
	__u64 *n = bpf_map_lookup_elem(&usmc_sr_drops, &why);

	if (n)
		__sync_fetch_and_add(n, 1);
	return SK_DROP;
}

SEC("sk_reuseport")
int usmc_sr_select(struct sk_reuseport_md *md)
{
	__u32 w, slot;

	/* skb data starts at the UDP header here (udp lookup) */
	if (bpf_skb_load_bytes(md, USMC_SR_QPN_OFF, &w, sizeof(w)))
		return drop(USMC_SR_DROP_SHORT);
	slot = (bpf_ntohl(w) & 0xffffff) >> USMC_SR_SLOT_SHIFT;
	if (bpf_sk_select_reuseport(md, &usmc_sr_socks, &slot, 0))
		return drop(USMC_SR_DROP_QPN);
	return SK_PASS;
}
