/* SPDX-License-Identifier: MIT */
/*
 * softroce: an RC RNIC in user space speaking RoCEv2 over UDP, wire
 * compatible with Linux rdma_rxe. Reached through the ops table
 * usmc_tp_softroce_ops (name "softroce"); this header adds only counters.
 *
 * cfg->local_addr may be IPv4 (GID ::ffff:a.b.c.d, as rxe) or IPv6 (GID =
 * the address); a device talks to peers of its own family only. Peers are
 * reached at the device's UDP port, as rxe always sends to 4791.
 *
 * Options (usmc_tp_config.options, comma separated):
 *   icrc=verify|strict|off
 *                    check the ICRC of received packets. verify (default):
 *                    a UDP socket does not show the IPv4 ID, which the ICRC
 *                    covers; ID 0 (ours) is checked on all 32 bits, another
 *                    ID (kernel rxe picks them at random) is inferred from
 *                    the ICRC, leaving a 16-bit check (stat rx_icrc_id).
 *                    strict: ID 0 only (kernel rxe's packets are dropped).
 *                    off: no check
 *   mtu=N            active MTU: 256, 512, 1024, 2048 or 4096 bytes (default
 *                    from the interface MTU as rxe: largest <= netdev - 80)
 *   port=N           UDP port (default cfg->udp_port, else 4791)
 *   share=auto|off   auto (default): share the port with the other
 *                    processes on the address (SO_REUSEPORT + an eBPF
 *                    program steering by destination QPN) where that can
 *                    be set up; off: hold it alone (a second device on the
 *                    address then gets USMC_ERR_BUSY)
 *   rcvbuf=N         SO_RCVBUF in bytes (default: 8 MiB, forced if root);
 *                    the send window shrinks below 128 packets when the
 *                    buffer could not hold them
 *   drop=PERMILLE    test only: drop that share of outgoing packets
 *   txfail=PERMILLE  test only: that share of sendmmsg calls fail EAGAIN
 *   seed=N           seed of the drop/txfail pattern (deterministic)
 *   retry_time=MS    a QP with packets outstanding that hears nothing from
 *                    its peer (no ACK, NAK or RNR NAK) for MS milliseconds
 *                    completes with RETRY_EXC_ERR and goes to error, also
 *                    with retry_cnt 7, which rxe takes as "for ever"; the
 *                    bound on noticing a silent peer (default 1500, 0: no
 *                    bound, as rxe)
 *   portwatch=auto|off
 *                    auto (default): follow the interface of the address
 *                    with a NETLINK_ROUTE socket; when it goes down (not
 *                    up, or no carrier) raise PORT_ERR, drop what comes
 *                    and goes and fail posts, when it comes back raise
 *                    PORT_ACTIVE, as rxe on its netdev's events. off: the
 *                    port is always up
 *   ipid=zero|random test only: random sends IPv4 through a raw socket
 *                    (CAP_NET_RAW) with nonzero, increasing IPv4 IDs from
 *                    a random start and the ICRC over them, as kernel rxe
 *                    does; zero (default) sends ID 0 through the UDP
 *                    socket
 */
#ifndef USMC_SOFTROCE_H
#define USMC_SOFTROCE_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_transport.h"

typedef struct usmc_softroce_stats {
	uint64_t tx_pkts;
	uint64_t tx_bytes; /* UDP payload bytes */
	uint64_t rx_pkts;
	uint64_t rx_bytes;
	/* requester */
	uint64_t retransmits;	 /* packets sent again (go-back-N) */
	uint64_t retry_timeouts; /* retransmit timer expiries */
	uint64_t nak_seq_rx;	 /* NAK PSN sequence error received */
	uint64_t rnr_nak_rx;	 /* RNR NAK received */
	uint64_t nak_err_rx;	 /* NAK invalid request/access/operational */
	uint64_t acks_rx;
	/* responder */
	uint64_t acks_tx;
	uint64_t nak_seq_tx;
	uint64_t rnr_nak_tx;
	uint64_t nak_err_tx;
	uint64_t dup_rx; /* duplicate requests (re-ACKed) */
	/* silent ingress drops, as rxe_recv.c */
	uint64_t drop_trunc; /* datagram larger than the receive buffer */
	uint64_t drop_hdr;   /* undecodable (usmc_roce_decode error) */
	uint64_t drop_dip;   /* destination is not our address */
	uint64_t drop_icrc;  /* ICRC mismatch */
	/* accepted with an IPv4 ID inferred from the ICRC (icrc=verify) */
	uint64_t rx_icrc_id;
	uint64_t drop_qp;    /* unknown destination QP */
	uint64_t drop_state; /* QP not in a state to take it */
	uint64_t drop_addr;  /* source is not the QP's peer */
	uint64_t drop_pkey;  /* P_Key mismatch */
	uint64_t drop_resp;  /* ACK/NAK out of range or unexpected */
	/* transmit side */
	uint64_t tx_fault_drops; /* drop= option */
	uint64_t tx_errors;	 /* sendmmsg failed (EAGAIN...): lost */
	uint64_t tx_calls;	 /* sendmmsg calls: packets leave in batches */
	/* shared port, counted by its eBPF program for the whole address:
	 * datagrams whose QPN no process owns, and runts without a BTH */
	uint64_t share_drop_qpn;
	uint64_t share_drop_short;
	/* QPs failed by retry_time= (each also completes RETRY_EXC_ERR) */
	uint64_t retry_time_exc;
	/* port state (portwatch): transitions, and packets dropped while
	 * down, received and to be sent */
	uint64_t port_downs;
	uint64_t port_ups;
	uint64_t drop_port_rx;
	uint64_t drop_port_tx;
	/* gso=on: UDP GSO sends of more than one packet, coalesced (GRO)
	 * datagrams received, and whether the kernel refused GSO (then the
	 * device sends one packet per datagram) */
	uint64_t tx_gso;
	uint64_t rx_gro;
	uint64_t gso_refused;
} usmc_softroce_stats;

extern const usmc_tp_ops usmc_tp_softroce_ops;

/* usmc_softroce_get_stats copies the device's counters; |tp| must be a
 * softroce device (USMC_ERR_INVALID_ARGUMENT otherwise). */
int usmc_softroce_get_stats(usmc_tp *tp, usmc_softroce_stats *st);

/* The slot of |tp| in its shared port (its QPNs are slot << 17 | n), or -1
 * when the device holds its port alone. */
int usmc_softroce_share_slot(usmc_tp *tp);

/* Why the last softroce device opened in this process does not share its
 * port, or why its open failed for the port ("" when shared). */
const char *usmc_softroce_share_status(void);

/* usmc_softroce_check_options parses |opts| as an open would: 0, or
 * USMC_ERR_INVALID_ARGUMENT with "option N (column C) \"KEY=VALUE\": what
 * KEY takes" in |err|. */
int usmc_softroce_check_options(const char *opts, char *err, size_t errlen);

/* Why the options of the last softroce open in this process were refused,
 * in the same form ("" if they were not). */
const char *usmc_softroce_option_error(void);

#endif /* USMC_SOFTROCE_H */
