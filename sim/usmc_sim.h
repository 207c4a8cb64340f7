/* SPDX-License-Identifier: MIT */
/*
 * A deterministic in-process SMC-R fabric for tests. Each node is a
 * usmc_ctx whose callbacks are implemented here: registered memory with
 * rkey and bounds checks, RC queue pairs that execute SEND and RDMA WRITE
 * between nodes by memcpy (in order per QP), receive queues, completions,
 * and CLC byte pipes that stand in for the TCP clcsock. The fabric pulls
 * each core's work requests (usmc_ctx_next_wr) before every step and after
 * each core call it makes itself, so a test may call the core directly;
 * a post that fails is fed back with usmc_link_post_failed. Time is virtual
 * and every "random" choice comes from one seed, so a run replays exactly.
 *
 * Faults: seeded extra delay (a lost packet costs an RC retransmission),
 * a blackhole (the peer RNIC acks but its core never sees the message: a
 * hung peer), link down (sends fail with RETRY_EXC_ERR), forged SENDs
 * (duplicates, replays, hostile LLC/CDC: usmc_sim_inject_send), and
 * failing allocations (the n-th malloc/calloc/alloc_mr/create_qp returns
 * NULL/NOMEM). Packet loss and duplication below RC are invisible to the
 * core (the responder drops duplicate PSNs), so they show up as delay.
 */
#ifndef USMC_SIM_H
#define USMC_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_core.h"
#include "usmc_fault_sched.h"

typedef struct usmc_sim usmc_sim;
typedef struct usmc_sim_node usmc_sim_node;
typedef struct usmc_sim_ep usmc_sim_ep;

/* One end of a simulated TCP connection carrying a usmc_conn. Tests read
 * the counters; the conn's user pointer is the ep. */
struct usmc_sim_ep {
	usmc_sim *sim;
	usmc_sim_node *node;
	usmc_conn *conn;
	usmc_sim_ep *peer; /* NULL: bytes sent are only captured */
	unsigned int ev[USMC_EV_ERROR + 1]; /* events seen, by kind */
	/* every CLC byte this conn sent, for inspection */
	uint8_t clc_sent[4096];
	size_t clc_sent_len;
	/* CLC bytes received and not yet handed to the conn */
	uint8_t in[4096];
	size_t in_len;
	void *test_user;
};

typedef struct usmc_sim_stats {
	uint64_t sends, writes, write_bytes, recvs;
	uint64_t access_errors; /* rkey / bounds / lkey violations */
	uint64_t rnr_retries;
	uint64_t allocs, frees, mrs, mr_frees, qps, qp_destroys;
} usmc_sim_stats;

usmc_sim *usmc_sim_new(uint64_t seed);
/* Deletes every node (usmc_ctx_del) and everything else. */
void usmc_sim_del(usmc_sim *sim);
usmc_tstamp usmc_sim_now(const usmc_sim *sim);
const usmc_sim_stats *usmc_sim_get_stats(const usmc_sim *sim);

/* A host with one RNIC port, or s->ndevices of them. |s| may be NULL for
 * defaults; system id, GIDs and MACs are made unique per node and device.
 * Returns NULL if the ctx fails. */
usmc_sim_node *usmc_sim_node_new(usmc_sim *sim, const usmc_settings *s);
/* The device (index) the node's next connections use (default 0). */
void usmc_sim_node_set_dev(usmc_sim_node *node, unsigned int dev_idx);
usmc_ctx *usmc_sim_node_ctx(usmc_sim_node *node);
/* The IPv4 address/prefix its connections announce (default
 * 10.0.0.<index>/24). */
void usmc_sim_node_set_ipv4(usmc_sim_node *node, uint32_t addr,
			    uint8_t prefix_len);
/* Outstanding core allocations and MRs (0 after a clean teardown). */
long usmc_sim_node_live_allocs(const usmc_sim_node *node);
long usmc_sim_node_live_mrs(const usmc_sim_node *node);
/* Deletes the node's ctx now (its QPs vanish from the fabric). */
void usmc_sim_node_del(usmc_sim_node *node);

/* A TCP connection from |cli| to |srv| with a usmc_conn on each end
 * (client queues its Proposal). Returns 0 or the usmc_conn_new error. */
int usmc_sim_connect(usmc_sim *sim, usmc_sim_node *cli, usmc_sim_node *srv,
		     usmc_sim_ep **pcli, usmc_sim_ep **psrv);
/* One end only: what it sends is captured in clc_sent; feed it with
 * usmc_sim_clc_inject. */
int usmc_sim_ep_single(usmc_sim *sim, usmc_sim_node *node, usmc_role role,
		       usmc_sim_ep **pep);
/* Raw bytes arriving on |ep|'s TCP socket (delivered message by message
 * as the runtime does: peek the header, wait for the whole message). */
void usmc_sim_clc_inject(usmc_sim_ep *ep, const uint8_t *data, size_t len);
/* Deletes the conn (usmc_conn_del) and the ep. */
void usmc_sim_ep_del(usmc_sim_ep *ep);

/* Runs events and timers up to and including |until|. */
void usmc_sim_run(usmc_sim *sim, usmc_tstamp until);
/* Runs until no fabric event is pending (timers that are due fire; later
 * ones do not), or until |limit|. Returns 0 when idle, -1 at the limit. */
int usmc_sim_run_idle(usmc_sim *sim, usmc_tstamp limit);

/* Faults */
/* Probability (0..1) that a message is delayed by an RC retransmit. */
void usmc_sim_set_delay_prob(usmc_sim *sim, double p);
/* A fault schedule (docs/fault.md) for what |node| posts, on the virtual
 * clock: the same seed gives the same run (NULL: none). The schedule stays
 * the caller's and must outlive its use. See sim_fault in usmc_sim.c for
 * how each fault maps onto the fabric. */
void usmc_sim_node_set_faults(usmc_sim_node *node, usmc_fault_sched *f);
uint64_t usmc_sim_node_faults_fired(const usmc_sim_node *node);
/* Messages to |node| are acked but never reach its core. */
void usmc_sim_set_blackhole(usmc_sim_node *node, int on);
/* The path between |a| and |b| is down: sends fail (RETRY_EXC_ERR). */
void usmc_sim_set_link_down(usmc_sim_node *a, usmc_sim_node *b, int down);
/* The |n|-th allocation from now (malloc, calloc, alloc_mr, create_qp of
 * any node; 0 = the next) fails; -1 disables. */
void usmc_sim_fail_alloc_at(usmc_sim *sim, long n);
long usmc_sim_alloc_count(const usmc_sim *sim);

/* Every SEND delivered, in order, with its first 96 bytes, for checking
 * LLC/CDC sequences and bytes. */
typedef struct usmc_sim_trace {
	int from; /* node index (1-based, creation order) */
	uint8_t msg[96];
	uint32_t len;
} usmc_sim_trace;
const usmc_sim_trace *usmc_sim_get_trace(const usmc_sim *sim, size_t *n);
void usmc_sim_trace_clear(usmc_sim *sim);
int usmc_sim_node_index(const usmc_sim_node *node);

/* A forged SEND of |len| bytes on |from|'s QP (as if its core had posted
 * it), for hostile-peer tests. Ordered after what |from| already posted. */
int usmc_sim_inject_send(usmc_sim *sim, usmc_link *from, const uint8_t *msg,
			 size_t len);

/* The link whose QP has number |qpn|, or NULL (destroyed). */
usmc_link *usmc_sim_link_by_qpn(usmc_sim *sim, uint32_t qpn);

/* The (first) link of |node| toward |peer|, if any. */
usmc_link *usmc_sim_node_link(usmc_sim_node *node, int idx);

#endif /* USMC_SIM_H */
