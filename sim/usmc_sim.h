/* SPDX-License-Identifier: MIT */
/*
 * The harness of the core tests: SMC-R nodes over the transport API, on a
 * virtual clock. Each node is a usmc_ctx whose device callbacks (alloc_mr,
 * free_mr, link_create_qp, link_ready, link_destroy_qp) call usmc_tp_* on
 * its devices: each one a "fault:sim" device (transport/fault/ over
 * transport/sim/) in the one world the harness owns, so registered
 * memory, rkey and bounds checks, RC queue pairs, RNR, retransmission and
 * completions are transport/sim's. The harness is a driver, as the
 * runtime is over softroce: it pulls each core's work requests
 * (usmc_ctx_next_wr) before every step and after each core call it makes
 * itself, so a test may call the core directly, and posts them with
 * usmc_tp_post_send/recv; a post that fails goes back as
 * usmc_link_post_failed; completions (usmc_tp_poll_cq) go to
 * usmc_link_on_wc, async events to usmc_link_down. Time is the world's
 * virtual clock and every "random" choice comes from one seed, so a run
 * replays exactly. CLC travels over byte pipes standing in for the TCP
 * clcsock.
 *
 * Faults: the world's seeded loss (a lost message costs an RC
 * retransmission), a fault schedule per node (its devices' decorator: the
 * same schedule runs over softroce), a hung core (its RNIC acks, its
 * completions are never polled), a cut path (sends are retried, then fail
 * with RETRY_EXC_ERR), forged SENDs (duplicates, replays, hostile
 * LLC/CDC: usmc_sim_inject_send), and failing allocations (the n-th
 * malloc/calloc/alloc_mr/create_qp returns NULL/NOMEM).
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
/* The harness's counts, plus the sums of its sim devices' (sends, recvs:
 * SENDs delivered; writes, write_bytes: WRITEs placed; access_errors: the
 * responders' rkey/bounds/access NAKs, posts refused for an SGE outside
 * its MR, and LOC_PROT_ERR completions; rnr_retries: RNR NAKs received). */
const usmc_sim_stats *usmc_sim_get_stats(usmc_sim *sim);

/* A host with one RNIC port, or s->ndevices of them. |s| may be NULL for
 * defaults. Device d of node n is fault:sim at 10.d.0.n (GID
 * ::ffff:10.d.0.n, MAC 02:00:0a:d:00:n); the settings' GIDs, MACs and
 * system id are replaced. Returns NULL if a device or the ctx fails. */
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

/* Runs the fabric's events, CLC bytes and the cores' timers up to and
 * including |until|. */
void usmc_sim_run(usmc_sim *sim, usmc_tstamp until);
/* Runs until no fabric event is pending (timers that are due fire; later
 * ones do not), or until |limit|. Returns 0 when idle, -1 at the limit.
 * Pending are also retransmissions (a cut path: until the retries run
 * out) and the alarms of a fault schedule's timed clauses. */
int usmc_sim_run_idle(usmc_sim *sim, usmc_tstamp limit);

/* Faults */
/* Probability (0..1) that a delivery is lost (usmc_tp_sim_world_set_loss):
 * RC retransmits it after the QP's timeout (134 ms, doubling while it
 * keeps failing). */
void usmc_sim_set_delay_prob(usmc_sim *sim, double p);
/* A fault schedule (docs/fault.md) for |node|'s devices: a copy of |f|
 * replaces each device's (usmc_fault_set_sched; NULL: none). Parse it with
 * usmc_sim_now as its start: its times are the virtual clock's, so the same
 * seed gives the same run. Packet faults act on what the node receives,
 * post faults on what it posts (docs/fault.md). */
void usmc_sim_node_set_faults(usmc_sim_node *node, usmc_fault_sched *f);
/* Clause firings on the node's devices, under every schedule it had. */
uint64_t usmc_sim_node_faults_fired(const usmc_sim_node *node);
/* |node|'s core hangs: its RNIC still acks and places what arrives, but
 * its completions are never polled (nor its async events). */
void usmc_sim_set_blackhole(usmc_sim_node *node, int on);
/* The path between |a|'s and |b|'s devices is cut (usmc_tp_sim_path_set):
 * sends are retried (timeout 134 ms, doubling up to 1 s), and fail with
 * RETRY_EXC_ERR after 6 retries, about 5 s. */
void usmc_sim_set_link_down(usmc_sim_node *a, usmc_sim_node *b, int down);
/* As usmc_sim_node_set_faults, for device |dev| of |node| only. */
void usmc_sim_node_set_dev_faults(usmc_sim_node *node, unsigned int dev,
				  usmc_fault_sched *f);
/* As usmc_sim_set_link_down, for the path between device |da| of |a| and
 * device |db| of |b| only (one link of a two-link group). */
void usmc_sim_set_dev_path_down(usmc_sim_node *a, unsigned int da,
				usmc_sim_node *b, unsigned int db, int down);
/* The |n|-th allocation from now (malloc, calloc, alloc_mr, create_qp of
 * any node; 0 = the next) fails; -1 disables. */
void usmc_sim_fail_alloc_at(usmc_sim *sim, long n);
long usmc_sim_alloc_count(const usmc_sim *sim);

/* Every SEND delivered to a core, in the order the harness polls their
 * receive completions, with its first 96 bytes, for checking LLC/CDC
 * sequences and bytes. */
typedef struct usmc_sim_trace {
	int from; /* node index (1-based, creation order) */
	uint8_t msg[96];
	uint32_t len;
	usmc_tstamp t; /* virtual time its receive completion was handed on */
	uint8_t dev;   /* the receiving node's device it came in on */
} usmc_sim_trace;
const usmc_sim_trace *usmc_sim_get_trace(const usmc_sim *sim, size_t *n);
void usmc_sim_trace_clear(usmc_sim *sim);
int usmc_sim_node_index(const usmc_sim_node *node);

/* |on| 0: the node's reg_mr callback fails (USMC_ERR_NOTSUP), as for a
 * transport that cannot register one memory with a second device. */
void usmc_sim_node_set_reg_mr(usmc_sim_node *node, int on);

/* Every core log line of every node (|node| its index), to |fn|; NULL:
 * dropped. */
typedef void (*usmc_sim_log_fn)(void *arg, int node, int level,
				const char *msg);
void usmc_sim_set_log(usmc_sim *sim, usmc_sim_log_fn fn, void *arg);

/* A forged SEND of |len| bytes on |from|'s QP (as if its core had posted
 * it), for hostile-peer tests. Ordered after what |from| already posted;
 * its completion is the harness's, the core never sees it. */
int usmc_sim_inject_send(usmc_sim *sim, usmc_link *from, const uint8_t *msg,
			 size_t len);

/* The link whose QP has number |qpn|, or NULL (destroyed). */
usmc_link *usmc_sim_link_by_qpn(usmc_sim *sim, uint32_t qpn);

/* The (first) link of |node| toward |peer|, if any. */
usmc_link *usmc_sim_node_link(usmc_sim_node *node, int idx);

#endif /* USMC_SIM_H */
