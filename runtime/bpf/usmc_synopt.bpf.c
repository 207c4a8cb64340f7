/* SPDX-License-Identifier: MIT */
/*
 * sock_ops program: puts Linux's SMC TCP option (kind 254, len 6, ExID
 * 0xE2D4C3D9) into the SYN of sockets usmc marked and into the SYN-ACK of
 * marked listeners when the client's SYN carried it, and records whether
 * the peer sent it. Sockets nobody marked are left alone.
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "usmc_synopt_bpf.h"

#define TCPHDR_SYN   0x02
#define TCPHDR_ACK   0x10
#define SOL_TCP	     6
#define TCP_SAVE_SYN 27
#define AF_INET	     2
#define AF_INET6     10

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct usmc_synopt_conn);
} usmc_synopt_conn SEC(".maps");

/* Not preallocated: user space alone adds keys (a few listeners), and a
 * preallocated map costs every process its 4096 elements' per-CPU free
 * lists at load (about 1 ms of CPU). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct usmc_synopt_lkey);
	__type(value, __u32); /* how many marked listeners share the key */
} usmc_synopt_listen SEC(".maps");

/* On the stack: helpers that take option bytes want writable memory on
 * older kernels, so no .rodata. */
static __always_inline void smc_opt(__u8 *b)
{
	b[0] = TCPOPT_EXP;
	b[1] = TCPOLEN_EXP_SMC_BASE;
	b[2] = 0xE2;
	b[3] = 0xD4;
	b[4] = 0xC3;
	b[5] = 0xD9;
}

/* Does the SYN (just received, or saved) or the current skb carry it? */
static __always_inline int has_smc_opt(struct bpf_sock_ops *skops, __u64 flags)
{
	__u8 b[8] = {};

	smc_opt(b);
	/* Searching kind 254 with len 6 matches on the 4-byte ExID too. */
	return bpf_load_hdr_opt(skops, b, TCPOLEN_EXP_SMC_BASE, flags) > 0;
}

static __always_inline __u32 ctx_u32(const __u32 *p)
{
	return *(const volatile __u32 *)p;
}

/* Works for request sockets too: only sock_common fields are read. */
static __always_inline int listen_marked(struct bpf_sock_ops *skops)
{
	struct usmc_synopt_lkey k;

	__builtin_memset(&k, 0, sizeof(k));
	k.netns = bpf_get_netns_cookie(skops);
	k.port = (__u16)skops->local_port;
	if (bpf_map_lookup_elem(&usmc_synopt_listen, &k))
		return 1;
	if (skops->family == AF_INET) {
		k.addr[2] = bpf_htonl(0xffff);
		k.addr[3] = skops->local_ip4;
	} else if (skops->family == AF_INET6) {
		/* One load per field: the verifier refuses a context pointer
		 * that clang moved before the load. */
		k.addr[0] = ctx_u32(&skops->local_ip6[0]);
		k.addr[1] = ctx_u32(&skops->local_ip6[1]);
		k.addr[2] = ctx_u32(&skops->local_ip6[2]);
		k.addr[3] = ctx_u32(&skops->local_ip6[3]);
	} else {
		return 0;
	}
	return bpf_map_lookup_elem(&usmc_synopt_listen, &k) != NULL;
}

static __always_inline struct usmc_synopt_conn *conn(struct bpf_sock_ops *skops,
						     __u64 flags)
{
	struct bpf_sock *sk = skops->sk;

	if (!sk)
		return NULL;
	return bpf_sk_storage_get(&usmc_synopt_conn, sk, NULL, flags);
}

static __always_inline void set_write_cb(struct bpf_sock_ops *skops, int on)
{
	__u32 f = skops->bpf_sock_ops_cb_flags;

	if (on)
		f |= BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG;
	else
		f &= ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG;
	bpf_sock_ops_cb_flags_set(skops, f);
}

/* Should the packet being built carry the option? Asked twice per packet
 * (reserve, then write): cheaper than carrying state between the calls. */
static __always_inline int want_opt(struct bpf_sock_ops *skops,
				    struct usmc_synopt_conn **c)
{
	__u32 tf = skops->skb_tcp_flags;
	struct usmc_synopt_conn *st;

	*c = NULL;
	if (!(tf & TCPHDR_SYN))
		return 0;
	if (tf & TCPHDR_ACK) {
		/* SYN-ACK of a request socket. Linux sends no SMC option
		 * under SYN cookies, nor when the client's SYN lacked it. */
		if (skops->args[0] == BPF_WRITE_HDR_TCP_SYNACK_COOKIE)
			return 0;
		if (!listen_marked(skops))
			return 0;
		return has_smc_opt(skops, BPF_LOAD_HDR_OPT_TCP_SYN);
	}
	/* Another program may have turned the callback on: check our mark. */
	st = conn(skops, 0);
	if (!st || !(st->flags & USMC_SYNOPT_F_WANT))
		return 0;
	*c = st;
	return 1;
}

SEC("sockops")
int usmc_synopt(struct bpf_sock_ops *skops)
{
	struct usmc_synopt_conn *c;
	__u8 b[8] = {};
	int one = 1;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		c = conn(skops, 0);
		if (c && (c->flags & USMC_SYNOPT_F_WANT))
			set_write_cb(skops, 1);
		break;
	case BPF_SOCK_OPS_TCP_LISTEN_CB:
		/* The listener's own mark, not its address: a stale key
		 * (a listener closed without forget) must not turn on the
		 * option for whoever listens on that port next. */
		c = conn(skops, 0);
		if (!c || !(c->flags & USMC_SYNOPT_F_LISTEN))
			break;
		/* The SYN is read again when the child is established. */
		bpf_setsockopt(skops, SOL_TCP, TCP_SAVE_SYN, &one, sizeof(one));
		set_write_cb(skops, 1);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		if (want_opt(skops, &c))
			bpf_reserve_hdr_opt(skops, TCPOLEN_EXP_SMC_BASE, 0);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		if (!want_opt(skops, &c))
			break;
		smc_opt(b);
		if (bpf_store_hdr_opt(skops, b, TCPOLEN_EXP_SMC_BASE, 0) == 0 &&
		    c)
			c->flags |= USMC_SYNOPT_F_SENT;
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		/* skb_data is the SYN-ACK here. */
		c = conn(skops, 0);
		if (!c || !(c->flags & USMC_SYNOPT_F_WANT))
			break;
		if ((c->flags & USMC_SYNOPT_F_SENT) && has_smc_opt(skops, 0))
			c->flags |= USMC_SYNOPT_F_PEER;
		c->flags |= USMC_SYNOPT_F_DONE;
		set_write_cb(skops, 0);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* A child of a marked listener: it inherited the callback
		 * flag, and its storage is made here. */
		if (!(skops->bpf_sock_ops_cb_flags &
		      BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG) ||
		    !listen_marked(skops))
			break;
		c = conn(skops, BPF_SK_STORAGE_GET_F_CREATE);
		if (c) {
			/* The SYN-ACK carried the option exactly when the
			 * saved SYN did; without a saved SYN (SYN cookies)
			 * neither did. */
			if (has_smc_opt(skops, BPF_LOAD_HDR_OPT_TCP_SYN))
				c->flags |=
					USMC_SYNOPT_F_SENT | USMC_SYNOPT_F_PEER;
			c->flags |= USMC_SYNOPT_F_DONE;
		}
		set_write_cb(skops, 0);
		break;
	}
	return 1;
}
