/* SPDX-License-Identifier: MIT */
/*
 * softroce internals shared by softroce.c (device, memory, I/O, timers) and
 * roce_qp.c (RC requester, completer, responder), and the entry points the
 * fuzz target uses to feed datagrams without a socket.
 */
#ifndef USMC_SOFTROCE_INT_H
#define USMC_SOFTROCE_INT_H

/* recvmmsg, sendmmsg */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "roce_hdr.h"
#include "softroce.h"
#include "usmc_tp_wcq.h"
#include "usmc_transport.h"

/* rxe_param.h */
#define SR_MAX_UNACKED_PSNS 128
#define SR_MAX_PKT_PER_ACK  64
#define SR_MAX_QP_WR	    0x4000
#define SR_MAX_INLINE	    256
#define SR_MIN_QPN	    16
/* RXE_MAX_QP_INDEX: rxe's pool hands out indexes [16, 1 << 17) cyclically
 * (xa_alloc_cyclic), and the index is the QPN */
#define SR_QPN_SPAN_BITS    17
#define SR_QPN_SPAN	    (1u << SR_QPN_SPAN_BITS)
#define SR_MAX_MSG_SIZE	    0x80000000u

#define SR_TX_BATCH    64
#define SR_RX_BATCH    32
/* icrc= option: off, verify (IPv4 ID inferred when not 0), strict (ID 0) */
#define SR_ICRC_OFF    0
#define SR_ICRC_VERIFY 1
#define SR_ICRC_STRICT 2

#define SR_RX_BUFSZ  8192 /* > 4096 MTU + headers + ICRC */
/* gso=on: a UDP GSO send carries at most this many packets and bytes (the
 * kernel's UDP_MAX_SEGMENTS was 64 before 6.9; a UDP payload < 64 KiB) */
#define SR_GSO_SEGS  64
#define SR_GSO_BYTES 65000
#define SR_GRO_BUFSZ 65536

typedef struct sr_dev sr_dev;

/* A UDP endpoint, IPv4 or IPv6. */
typedef union sr_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
} sr_addr;

/* Test hook: sees each outgoing UDP payload instead of the socket. */
typedef void (*usmc_softroce_tx_hook)(void *arg, const uint8_t *udp_payload,
				      size_t len, const struct sockaddr *to);
typedef struct sr_qp sr_qp;

typedef struct sr_mr {
	usmc_tp_mr pub;
	uint32_t index;
	size_t alloc_len; /* 0: reg_mr, the memory is not ours to free */
} sr_mr;

typedef struct sr_swqe {
	usmc_wr wr;
	uint32_t length;
	uint32_t first_psn;
	uint32_t npkts;
} sr_swqe;

typedef struct sr_rwqe {
	usmc_recv_wr wr;
	uint64_t length;
} sr_rwqe;

enum sr_opclass { SR_OPC_NONE, SR_OPC_SEND, SR_OPC_WRITE };

struct sr_qp {
	usmc_tp_qp pub;
	sr_dev *dev;
	uint32_t index; /* in sr_dev.qps */
	sr_qp *hnext;	/* sr_dev.qpn_ht chain */
	usmc_qp_init_attr cap;

	/* attributes */
	uint32_t access;
	uint32_t mtu;
	uint32_t dest_qpn;
	sr_addr peer;
	uint8_t min_rnr_timer;
	uint8_t timeout;
	uint8_t retry_cnt;
	uint8_t rnr_retry;
	uint64_t timeout_ns;

	/* send queue: ring of sq_size; [sq_head, sq_head+sq_count) posted and
	 * not completed; sq_cur counts WRs from the head that are fully
	 * transmitted, cur_pkt the next packet of the WR after them. */
	sr_swqe *sq;
	uint8_t *inline_buf; /* sq_size * SR_MAX_INLINE */
	uint32_t sq_size, sq_head, sq_count, sq_cur, cur_pkt;
	uint32_t next_psn; /* PSN for the next posted WR */
	uint32_t una_psn;  /* oldest unacknowledged PSN */
	uint32_t sent_hi;  /* one past the highest PSN transmitted */
	uint32_t noack_pkts;
	uint32_t window;    /* unacknowledged PSNs allowed (sr_window) */
	uint32_t ack_every; /* AckReq once noack_pkts exceeds it */
	int need_ackreq;
	int retries_left;
	int rnr_left;
	usmc_tstamp rto_deadline; /* 0: not armed */
	/* since when the oldest unacknowledged packet has had no answer of
	 * any kind from the peer (0: nothing outstanding); retry_time counts
	 * from it */
	usmc_tstamp stall_since;
	/* consecutive retransmit timeouts without progress (backoff) */
	unsigned int rto_shift;
	usmc_tstamp rnr_deadline; /* 0: not waiting */
	/* the socket refused packets: go back to una once the pause ends */
	int tx_stall;

	/* receive queue */
	sr_rwqe *rq;
	uint32_t rq_size, rq_head, rq_count;

	/* responder */
	uint32_t resp_psn;
	uint32_t msn;
	int sent_psn_nak;
	int opclass;
	uint64_t recv_off;
	uint64_t wr_va;
	uint32_t wr_rkey;
	uint32_t wr_remaining;
	uint32_t wr_total;
	int ack_pending;
	uint32_t ack_psn;

	/* this QP's share of the device's requester counters (ops
	 * query_qp_stats) */
	usmc_tp_qp_stats st;
};

#define SR_EVQ 8 /* async events held until get_async_event */

struct sr_dev {
	usmc_tp pub;
	int sock, ep, tfd, efd;
	sr_addr local;
	int family;
	uint16_t port;
	uint8_t gid[16];
	uint8_t mac[6];
	uint8_t active_mtu;
	char ifname[32];
	int icrc_verify;  /* SR_ICRC_* */
	int icrc_id_said; /* the inferred-ID notice went out */
	/* ipid=random (test): sends through |raw| (IPPROTO_RAW, headers of
	 * its own) with nonzero IPv4 IDs from |ipid_next|, as kernel rxe */
	int ipid_random;
	int raw;
	uint16_t ipid_next;
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
	uint32_t drop_permille;
	uint32_t txfail_permille;
	uint32_t rcvbuf_opt; /* rcvbuf= option, 0: as large as allowed */
	uint32_t rcvbuf;     /* SO_RCVBUF in effect */
	int share_opt;	     /* share= option: 1 auto, 0 off */
	/* port shared with other processes (softroce_share.c) */
	int share_slot; /* -1: not shared */
	int share_socks_fd, share_drops_fd;
	char share_path[128]; /* lock file naming the maps */
	uint64_t rng;
	int no_tx;
	int batch; /* usmc_tp_batch depth: progress() leaves the flush */
	usmc_tstamp fake_now; /* tests: a clock they drive; 0 = real */
	usmc_softroce_tx_hook tx_hook;
	void *tx_hook_arg;
	/* packet-level fault hook on receive (ops set_rx_hook) */
	usmc_tp_rx_hook rx_hook;
	void *rx_hook_arg;

	sr_qp **qps; /* live QPs, in no order; NULL holes */
	uint32_t nqps;
	sr_qp **qpn_ht;	   /* QPN -> QP, chained; nqps buckets */
	uint32_t qpn_base; /* high QPN bits of this device */
	uint32_t qpn_next; /* cyclic: the low bits to try next */
	sr_mr **mrs;
	uint32_t nmrs;

	usmc_tp_wcq cq;
	int efd_signaled;
	usmc_tstamp timer_armed;

	/* transmit batch */
	uint32_t ntx;
	struct mmsghdr tx_msgs[SR_TX_BATCH];
	/* [0] the IPv4 and UDP headers with ipid=random, then BTH and
	 * extended headers, up to 4 payload pieces, pad and ICRC */
	struct iovec tx_iov[SR_TX_BATCH][7];
	uint8_t tx_ip[SR_TX_BATCH][28];
	uint8_t tx_hdr[SR_TX_BATCH][USMC_ROCE_MAX_HDR_LEN];
	uint8_t tx_trail[SR_TX_BATCH][8];
	sr_addr tx_addr[SR_TX_BATCH];
	sr_qp *tx_qp[SR_TX_BATCH]; /* requester packets; NULL for ACKs */

	/* receive batch */
	struct mmsghdr rx_msgs[SR_RX_BATCH];
	struct iovec rx_iov[SR_RX_BATCH];
	sr_addr rx_addr[SR_RX_BATCH];
	uint8_t *rx_mem; /* SR_RX_BATCH buffers of rx_bufsz */
	size_t rx_bufsz;
	char rx_ctl[SR_RX_BATCH][64];

	/* gso= option: packets of one flush to the same peer and QP, of one
	 * size (the last may be shorter), leave as one UDP GSO send; packet
	 * k of such a send has its ICRC computed with IPv4 ID k, the ID
	 * Linux gives segment k when it segments (inet_gso_segment); the
	 * socket takes coalesced datagrams (UDP_GRO) and splits them */
	int gso;
	uint16_t tx_segk[SR_TX_BATCH];	       /* k; 0 starts a send */
	uint32_t g_first, g_n, g_bytes, g_seg; /* the open send */
	int g_closed; /* its last packet was short: nothing may follow */
	struct mmsghdr gso_msgs[SR_TX_BATCH];
	struct iovec gso_iov[SR_TX_BATCH * 7];
	uint32_t gso_first[SR_TX_BATCH]; /* packet index of each send */
	char gso_ctl[SR_TX_BATCH][CMSG_SPACE(sizeof(uint16_t))];

	/* a QP with data outstanding that hears nothing from its peer for
	 * this long fails with RETRY_EXC_ERR (retry_time=, 0: never) */
	uint64_t retry_time_ns;

	/* port state from the interface (RTM_NEWLINK on |nl|), as rxe's
	 * netdev events: down drops what comes and goes, posts fail */
	int portwatch_opt; /* portwatch= option: 1 auto, 0 off */
	int nl;		   /* NETLINK_ROUTE socket, -1: not watching */
	int ifindex;
	int port_down;
	usmc_tstamp nl_next; /* next look at |nl| from poll_cq */
	usmc_tp_event evq[SR_EVQ];
	unsigned int ev_head, ev_n;

	usmc_softroce_stats st;
};

/* softroce.c */
usmc_tstamp sr_now(void);
/* Builds the UDP endpoint of a peer GID on |d|'s port; 0, or
 * USMC_ERR_INVALID_ARGUMENT if the GID is not of the device's family. */
int sr_addr_from_gid(const sr_dev *d, const uint8_t gid[16], sr_addr *a);
uint32_t sr_window(const sr_dev *d, uint32_t mtu);
sr_mr *sr_mr_by_lkey(sr_dev *d, uint32_t lkey);
sr_mr *sr_mr_by_rkey(sr_dev *d, uint32_t rkey);
void sr_cq_push(sr_dev *d, const usmc_wc *wc);
/* Queues one packet: |hdr| (BTH + ext headers), payload pieces, pad and
 * ICRC are appended here. |qp| is the requester QP of a request packet
 * (NULL for ACKs), told when the socket refuses it. */
void sr_tx_append(sr_dev *d, sr_qp *qp, const sr_addr *to, const uint8_t *hdr,
		  size_t hlen, const struct iovec *pl, int npl, size_t plen);
void sr_tx_flush(sr_dev *d);

/* softroce_share.c: binds d->sock to d->local. With share=auto it tries
 * SO_REUSEPORT with the QPN-steering program and a slot; where that cannot
 * be set up it binds alone, and usmc_softroce_share_status() says why.
 * Returns 0, USMC_ERR_BUSY (address taken, errno EADDRINUSE) or another
 * error. */
int sr_share_bind(sr_dev *d);
/* Closes d->sock; the last process of a shared port removes its file. */
void sr_share_close(sr_dev *d);
/* The host-wide drop counters of the shared port (0 when not shared). */
void sr_share_drops(sr_dev *d, uint64_t *qpn, uint64_t *shrt);

/* roce_qp.c */
int sr_qp_create(sr_dev *d, const usmc_qp_init_attr *attr, sr_qp **pqp);
void sr_qp_destroy(sr_qp *qp);
int sr_qp_modify(sr_qp *qp, const usmc_qp_attr *attr);
int sr_qp_post_send(sr_qp *qp, const usmc_wr *wr, usmc_tstamp now);
int sr_qp_post_recv(sr_qp *qp, const usmc_recv_wr *wr);
/* Handles a decoded packet addressed to |qp|. */
void sr_qp_input(sr_qp *qp, const usmc_roce_pkt *pkt, usmc_tstamp now);
/* Sends what the window allows. */
void sr_qp_tx(sr_qp *qp, usmc_tstamp now);
/* Sends a coalesced ACK if one is pending. */
void sr_qp_flush_ack(sr_qp *qp);
/* The socket refused a packet of |qp| (EAGAIN): pause and go back. */
void sr_qp_tx_stalled(sr_qp *qp, usmc_tstamp now);
/* Runs expired timers; returns the next deadline or 0. */
usmc_tstamp sr_qp_timers(sr_qp *qp, usmc_tstamp now);

/* Fuzzing and white-box tests: feed one UDP payload as if received from
 * |src| on |dst| (sockaddr_in or sockaddr_in6 of the device's family), then
 * flush ACKs and transmit. */
void usmc_softroce_input(usmc_tp *tp, const uint8_t *buf, size_t len,
			 const struct sockaddr *src, const struct sockaddr *dst,
			 usmc_tstamp now);
/* Count packets instead of sending them. */
void usmc_softroce_set_no_tx(usmc_tp *tp, int on);
/* Hand outgoing packets to |hook| instead of sending them (NULL: send). */
void usmc_softroce_set_tx_hook(usmc_tp *tp, usmc_softroce_tx_hook hook,
			       void *arg);
/* Tests: use |now| as the clock from here on (0: the real clock). */
void usmc_softroce_set_time(usmc_tp *tp, usmc_tstamp now);
/* The responder's expected PSN of |qp|. */
uint32_t usmc_softroce_qp_expected_psn(const usmc_tp_qp *qp);

#endif /* USMC_SOFTROCE_INT_H */
