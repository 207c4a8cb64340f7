/* SPDX-License-Identifier: MIT */
/*
 * Internals of the sim backend, shared by sim_dev.c (the ops table:
 * devices, MRs, QPs, posting, the CQ) and sim_fabric.c (the world: clock,
 * event heap, and what happens on the wire between QPs).
 */
#ifndef USMC_SIM_INT_H
#define USMC_SIM_INT_H

#include <stdint.h>

#include "usmc_tp_sim.h"
#include "usmc_tp_wcq.h"

#define SIM_MAX_QP_WR	 0x4000
#define SIM_MAX_INLINE	 256
#define SIM_MAX_MSG_SIZE 0x80000000u
#define SIM_MIN_QPN	 16
#define SIM_QPN_SPAN	 0x1000000u
#define SIM_EVQ		 64
#define SIM_QP_HASH	 256
#define SIM_RTO_MAX_NS	 1000000000ull
#define SIM_WORLD_MAGIC	 0x73696d77u
#define SIM_DEFAULT_LAT	 10000u
#define SIM_DEFAULT_JIT	 5000u
#define SIM_DEFAULT_GBPS 10u

typedef struct sim_dev sim_dev;
typedef struct sim_qp sim_qp;

typedef struct sim_mr {
	usmc_tp_mr pub;
	uint32_t index;
	int foreign; /* reg_mr: the memory is not ours to free */
} sim_mr;

typedef struct sim_swqe {
	usmc_wr wr;
	uint32_t length;
	uint64_t ssn; /* send sequence number, per QP */
	usmc_tstamp posted;
} sim_swqe;

typedef struct sim_rwqe {
	usmc_recv_wr wr;
	uint64_t length;
} sim_rwqe;

struct sim_qp {
	usmc_tp_qp pub;
	sim_dev *d;
	sim_qp *next;  /* the device's QPs */
	sim_qp *hnext; /* the world's QPN hash */
	usmc_qp_init_attr cap;
	uint32_t access;
	uint8_t path_mtu;
	uint32_t dest_qpn;
	uint8_t dgid[16];
	uint8_t min_rnr_timer;
	uint8_t retry_cnt, rnr_retry;
	uint64_t timeout_ns; /* 0: no retransmit timer */
	int retries_left, rnr_left;
	unsigned int rto_shift;
	/* send queue: [head, head + sent) delivered and waiting for their
	 * ACK, then [head + sent, head + count) not yet on the wire */
	sim_swqe *sq;
	uint32_t sq_size, sq_head, sq_count, sq_sent;
	uint64_t next_ssn;
	uint8_t *inline_buf; /* sq_size * max_inline_data */
	sim_rwqe *rq;
	uint32_t rq_size, rq_head, rq_count;
	/* events carry the epoch they were made in; a QP that goes to ERR,
	 * RESET or away takes a new one, so old events fall through */
	uint64_t epoch;
	int wire_busy;	    /* a deliver, RNR or timeout event is pending */
	uint64_t wire_tok;  /* ... carrying this token; a message handed
			     * back through rx_inject takes a new one */
	usmc_tstamp wire_t; /* when the last delivery ended */
	usmc_tstamp req_t;  /* latest requester-side event: they stay ordered */
};

struct sim_dev {
	usmc_tp pub;
	usmc_tp_sim_world *w;
	sim_dev *next;
	int index;
	uint8_t gid[16];
	uint8_t mac[6];
	int family;
	char name[32];
	uint8_t active_mtu;
	usmc_tstamp latency, jitter;
	uint32_t gbps;
	int port_up, dead;
	int efd, efd_set, dirty;
	int woken; /* wake_at came due: readable until the next poll_cq */
	usmc_tp_rx_hook hook;
	void *hook_arg;
	sim_mr **mrs;
	uint32_t nmrs;
	sim_qp *qps;
	usmc_tp_wcq cq;
	usmc_tp_event evq[SIM_EVQ];
	uint32_t ev_head, ev_count;
	usmc_tp_sim_stats st;
};

enum sim_ev_kind {
	SIM_EV_DELIVER = 1, /* the next WR of the QP reaches the responder */
	SIM_EV_ACK,	    /* the head WR's answer reaches the requester */
	SIM_EV_RNR,	    /* an RNR NAK reaches the requester */
	SIM_EV_TIMEOUT,	    /* the requester's retransmit timer expires */
	SIM_EV_WAKE,	    /* a device's wake_at alarm (qpn: its index) */
};

typedef struct sim_ev {
	usmc_tstamp t;
	uint64_t seq;
	uint64_t epoch;
	uint64_t ssn;
	uint64_t tok; /* DELIVER, RNR, TIMEOUT: the QP's wire_tok */
	uint32_t qpn;
	uint8_t kind;
	uint8_t code; /* ACK: usmc_wc_status; RNR: the timer code */
} sim_ev;

typedef struct sim_down {
	struct sim_down *next;
	const sim_dev *a, *b;
} sim_down;

struct usmc_tp_sim_world {
	uint32_t magic;
	uint64_t rng;
	usmc_tstamp now;
	sim_ev *heap;
	size_t nheap, heap_cap;
	uint64_t seq;
	uint64_t next_epoch;
	uint32_t next_qpn;
	uint32_t loss_ppm;
	int ndevs, next_index, deleted;
	sim_dev *devs;
	sim_qp *qpn_ht[SIM_QP_HASH];
	sim_down *down;
};

/* sim_fabric.c */
uint64_t sim_rand(usmc_tp_sim_world *w);
sim_qp *sim_qp_find(usmc_tp_sim_world *w, uint32_t qpn);
void sim_qp_hash_add(usmc_tp_sim_world *w, sim_qp *q);
void sim_qp_hash_del(usmc_tp_sim_world *w, sim_qp *q);
/* Puts the first undelivered WR of |q| on the wire, if it is idle. */
void sim_wire_kick(sim_qp *q);
void sim_world_detach(usmc_tp_sim_world *w, sim_dev *d);
void sim_wake_at(sim_dev *d, usmc_tstamp t);
/* A message handed back by |d|'s rx hook owner (rx_inject). */
void sim_rx_inject(sim_dev *d, const usmc_tp_rx_pkt *pkt);

/* sim_dev.c */
void sim_push_wc(sim_qp *q, uint64_t wr_id, usmc_wc_status st,
		 usmc_wc_opcode op, uint32_t byte_len, uint32_t imm,
		 uint32_t flags);
void sim_sync_efd(sim_dev *d);
/* Moves |q| to ERR: the head send WR completes with |st|, every other
 * outstanding WR, send and receive, with WR_FLUSH_ERR. */
void sim_qp_error(sim_qp *q, usmc_wc_status st);
/* |s| inside an MR of |d| with |need| access: its address, else NULL. */
uint8_t *sim_sge_ptr(sim_dev *d, const usmc_sge *s, uint32_t need);
/* [va, va + len) inside an MR of |d| reached by |rkey| with REMOTE_WRITE. */
uint8_t *sim_rkey_ptr(sim_dev *d, uint32_t rkey, uint64_t va, uint64_t len);
usmc_wc_opcode sim_send_wc_opcode(const usmc_wr *wr);
void sim_dev_event(sim_dev *d, usmc_tp_event_type t, uint32_t qpn);

#endif /* USMC_SIM_INT_H */
