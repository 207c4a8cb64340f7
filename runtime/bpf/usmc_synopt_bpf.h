/* SPDX-License-Identifier: MIT */
/*
 * Shared between the sock_ops program (usmc_synopt.bpf.c) and its loader
 * (runtime/usmc_synopt.c): map value and key layouts and state bits.
 */
#ifndef USMC_SYNOPT_BPF_H
#define USMC_SYNOPT_BPF_H

#include <linux/types.h>

/* The SMC experimental option, as Linux's tcp_output.c writes it (the two
 * NOPs that pad it to 8 bytes are the kernel's business, not ours). */
#define TCPOPT_EXP	     254
#define TCPOLEN_EXP_SMC_BASE 6
#define TCPOPT_SMC_MAGIC     0xE2D4C3D9

/* usmc_synopt_conn.flags */
#define USMC_SYNOPT_F_WANT 0x1 /* userspace: write the option in our SYN */
#define USMC_SYNOPT_F_LISTEN \
	0x2		       /* userspace: this socket is a marked listener */
#define USMC_SYNOPT_F_SENT 0x4 /* bpf: our SYN or SYN-ACK carried the option */
#define USMC_SYNOPT_F_PEER 0x8 /* bpf: the peer's SYN or SYN-ACK carried it */
#define USMC_SYNOPT_F_DONE 0x10 /* bpf: handshake finished, PEER is final */

/* Per-socket state: BPF_MAP_TYPE_SK_STORAGE, so it dies with the socket. */
struct usmc_synopt_conn {
	__u32 flags;
	__u32 pad;
};

/* Marked listeners, found from a request socket (which has no storage of its
 * own) by network namespace, local address and port. addr is an IPv6
 * address or an IPv4-mapped one; all zeros means any address. */
struct usmc_synopt_lkey {
	__u64 netns;
	__u32 addr[4]; /* network byte order */
	__u16 port;    /* host byte order */
	__u16 pad0;
	__u32 pad1;
};

#endif /* USMC_SYNOPT_BPF_H */
