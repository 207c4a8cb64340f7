/* SPDX-License-Identifier: MIT */
/*
 * sim: a simulated RNIC fabric in the process, behind the ordinary ops
 * table (usmc_tp_sim_ops, name "sim"; README.md in this folder). Devices
 * attach to a world the caller owns: a virtual clock, an event queue and
 * one seed. RC QPs between its devices execute SEND, RDMA WRITE (with
 * immediate) with rkey, bounds and access checks, receive queues, RNR and
 * retransmission timers; completions come out of poll_cq, in order per
 * QP. Time moves only in usmc_tp_sim_world_run, so a run replays exactly.
 *
 * A device finds its world through usmc_tp_config.backend_ctx (required).
 * cfg->local_addr (IPv4 or IPv6) gives its GID as softroce's would; one
 * device per address and world.
 *
 * Options (usmc_tp_config.options, comma separated):
 *   mtu=N          active MTU: 256, 512, 1024, 2048 or 4096 (default 1024,
 *                  what rxe has on a 1500-byte Ethernet)
 *   latency=NS     one-way latency of a message (default 10000)
 *   jitter=NS      plus a seeded 0..NS-1 per message (default 5000)
 *   gbps=N         wire rate per QP, 0 = no serialisation time (default 10)
 */
#ifndef USMC_TP_SIM_H
#define USMC_TP_SIM_H

#include <stdint.h>

#include "usmc_transport.h"

typedef struct usmc_tp_sim_world usmc_tp_sim_world;

/* Per device. "Requester" counters count this device's QPs as senders,
 * "responder" ones as targets. */
typedef struct usmc_tp_sim_stats {
	uint64_t posts;		 /* send WRs accepted by post_send */
	uint64_t attempts;	 /* requester: deliveries tried */
	uint64_t lost;		 /* requester: attempts that found no peer */
	uint64_t retry_timeouts; /* requester: retransmit timer expiries */
	uint64_t rnr_nak_rx;	 /* requester: RNR NAKs received */
	uint64_t nak_err_rx;	 /* requester: error NAKs received */
	uint64_t sends;		 /* responder: SENDs delivered */
	uint64_t writes;	 /* responder: WRITEs (with imm) placed */
	uint64_t rx_bytes;	 /* responder: payload bytes placed */
	uint64_t write_bytes;	 /* responder: ... of them by WRITEs */
	uint64_t hooked;	 /* responder: messages the rx hook took */
	uint64_t icrc_errors;	 /* responder: changed by the hook: dropped */
	uint64_t injected;	 /* responder: handed back by rx_inject */
	uint64_t stale;		 /* ... and dropped: delivered already */
	uint64_t rnr_nak_tx;	 /* responder: RNR NAKs sent */
	uint64_t nak_err_tx;	 /* responder: error NAKs sent */
	uint64_t access_errors;	 /* responder: rkey, bounds, access */
	uint64_t wcs;		 /* completions queued */
	uint64_t flushed;	 /* of them WR_FLUSH_ERR */
	uint64_t events;	 /* async events raised */
	uint64_t events_lost;	 /* ... and lost to a full queue */
} usmc_tp_sim_stats;

extern const usmc_tp_ops usmc_tp_sim_ops;

/* usmc_tp_sim_world_new makes a world at time 1 s whose every random
 * choice (latency jitter, key bits, loss) comes from |seed|; NULL if out
 * of memory. */
usmc_tp_sim_world *usmc_tp_sim_world_new(uint64_t seed);

/* usmc_tp_sim_world_del frees the world; with devices still open, when
 * the last of them closes. */
void usmc_tp_sim_world_del(usmc_tp_sim_world *w);

usmc_tstamp usmc_tp_sim_world_now(const usmc_tp_sim_world *w);

/* The time of the next pending event, or USMC_TSTAMP_NONE. */
usmc_tstamp usmc_tp_sim_world_next(const usmc_tp_sim_world *w);

/* usmc_tp_sim_world_run executes the events due up to and including
 * |until|, then sets the clock to |until| (never back); returns how many
 * ran. USMC_TSTAMP_NONE runs until nothing is pending, which never comes
 * while a QP with retry_cnt 7 sends into a void: pass a bound. */
uint64_t usmc_tp_sim_world_run(usmc_tp_sim_world *w, usmc_tstamp until);

/* Each delivery attempt is lost with probability |ppm| / 1e6 (seeded);
 * RC recovers it after the QP's retransmit timeout, as from a lost packet,
 * and a finite retry_cnt can run out. */
void usmc_tp_sim_world_set_loss(usmc_tp_sim_world *w, uint32_t ppm);

/* The world a sim device is attached to; NULL for another backend. */
usmc_tp_sim_world *usmc_tp_sim_world_of(usmc_tp *tp);

/* usmc_tp_sim_port_set takes the device's port down (|up| 0) or up:
 * PORT_ERR / PORT_ACTIVE async events on a change. While down, nothing
 * leaves or reaches it: QPs retry as RC does and fail with RETRY_EXC_ERR
 * when their retry_cnt runs out. USMC_ERR_INVALID_ARGUMENT if |tp| is not
 * a sim device, USMC_ERR_INVALID_STATE if it is dead. */
int usmc_tp_sim_port_set(usmc_tp *tp, int up);

/* usmc_tp_sim_path_set cuts (|up| 0) or restores the path between two
 * devices only, with no async event (a switch in between fails). */
int usmc_tp_sim_path_set(usmc_tp *a, usmc_tp *b, int up);

/* usmc_tp_sim_kill makes the device fatal: DEVICE_FATAL, every QP to ERR
 * (its WRs flushed), and from then on create_qp, alloc_mr, post_send and
 * post_recv fail with USMC_ERR_TRANSPORT. Closing it is still required. */
int usmc_tp_sim_kill(usmc_tp *tp);

/* usmc_tp_sim_get_stats copies the counters; USMC_ERR_INVALID_ARGUMENT if
 * |tp| is not a sim device. */
int usmc_tp_sim_get_stats(usmc_tp *tp, usmc_tp_sim_stats *st);

#endif /* USMC_TP_SIM_H */
