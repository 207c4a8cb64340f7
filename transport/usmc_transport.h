/* SPDX-License-Identifier: MIT */
/*
 * The transport ops table: one RNIC-like device behind the same operations,
 * shaped like verbs. Backends: softroce (RoCEv2 over UDP in user space),
 * sim (transport/sim/: a simulated fabric in the process, on a virtual
 * clock), fault (transport/fault/: a fault-injecting decorator over any
 * backend, opened as "fault:INNER"), verbs (libibverbs) and shm
 * (transport/shm/: intra-host shared memory, ISM-shaped: DMBs, no QPs).
 *
 * Conventions
 * - Every op returns 0 (or a count) on success and a negative USMC_ERR_* on
 *   failure; the raw errno, if any, is kept in tp->last_errno.
 * - A device and everything created from it are used by one thread at a
 *   time (the runtime holds its lock around every call).
 * - Completions of all QPs of a device come out of the one poll_cq.
 * - get_fd returns an fd that epoll can wait on: it becomes readable when
 *   poll_cq may have work (packets arrived, a timer is due, completions are
 *   queued). poll_cq itself never blocks and drives all progress (receive,
 *   retransmit timers).
 */
#ifndef USMC_TRANSPORT_H
#define USMC_TRANSPORT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "usmc_err.h"
#include "usmc_wr.h"

typedef struct usmc_tp usmc_tp;
typedef struct usmc_tp_qp usmc_tp_qp;
typedef struct usmc_tp_mr usmc_tp_mr;
typedef struct usmc_tp_ops usmc_tp_ops;
typedef struct usmc_tp_dmb usmc_tp_dmb;
typedef struct usmc_tp_rdmb usmc_tp_rdmb;

/* What a device is opened with. Unused fields are zero. */
typedef struct usmc_tp_config {
	/* Local IP address the device is bound to (its GID is derived from
	 * it: IPv4-mapped for IPv4, as rxe). Required for softroce. */
	struct sockaddr_storage local_addr;
	/* UDP port for RoCEv2; 0 means 4791 (ROCE_V2_UDP_DPORT). */
	uint16_t udp_port;
	/* Netdev name, for verbs device matching; may be empty. */
	char ifname[32];
	/* Backend-specific "key=value,key=value" options; may be NULL. */
	const char *options;
	/* Backend-specific object the caller owns, which outlives the device
	 * (sim: the usmc_tp_sim_world it attaches to); NULL for the others.
	 * Decorators pass it on unchanged. */
	void *backend_ctx;
	/* Where a backend says, once, something its user should know (level
	 * 0 error, 1 info); may be NULL. Called from the device's calls. */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
} usmc_tp_config;

/* Port attributes (ibv_query_port + GID). */
typedef struct usmc_port_attr {
	uint8_t gid[16];
	uint8_t mac[6];
	/* enum usmc_ib_mtu */
	uint8_t active_mtu;
	uint32_t max_inline_data;
	uint32_t max_qp_wr;
	/* UDP port the device listens on (RoCEv2 backends) */
	uint16_t udp_port;
	char name[32];
} usmc_port_attr;

/* Registered memory. |addr| is the local virtual address; the peer uses
 * |iova| + offset as remote_addr together with |rkey|. */
struct usmc_tp_mr {
	usmc_tp *tp;
	void *addr;
	size_t length;
	uint64_t iova;
	uint32_t lkey;
	uint32_t rkey;
	uint32_t access;
};

typedef struct usmc_qp_init_attr {
	uint32_t max_send_wr;
	uint32_t max_recv_wr;
	uint32_t max_send_sge;
	uint32_t max_recv_sge;
	uint32_t max_inline_data;
	/* Caller's cookie, returned by usmc_tp_qp_context(). */
	void *context;
} usmc_qp_init_attr;

typedef enum usmc_qp_state {
	USMC_QPS_RESET = 0,
	USMC_QPS_INIT,
	USMC_QPS_RTR,
	USMC_QPS_RTS,
	USMC_QPS_ERR,
} usmc_qp_state;

/* modify_qp attributes; which ones apply depends on the target state, as
 * in net/smc's smc_ib_modify_qp_{init,rtr,rts}. */
typedef struct usmc_qp_attr {
	usmc_qp_state qp_state;
	/* INIT */
	uint32_t qp_access_flags;
	/* RTR */
	uint8_t path_mtu; /* enum usmc_ib_mtu */
	uint32_t dest_qp_num;
	uint32_t rq_psn;
	uint8_t dgid[16];
	uint8_t dmac[6];
	uint8_t hop_limit;
	uint8_t min_rnr_timer;
	/* RTS */
	uint32_t sq_psn;
	uint8_t timeout;   /* 4.096 us * 2^timeout; 0 = no retransmit timer */
	uint8_t retry_cnt; /* 7 = infinite */
	uint8_t rnr_retry; /* 7 = infinite */
} usmc_qp_attr;

/* A QP's requester-side recovery counters (query_qp_stats), since it was
 * created: what rdma-core's ibv has no per-QP call for, and rxe counts
 * only per device (rdma statistic: retransmits, rcvd_seq_err,
 * retry_exceeded_err's timeouts). */
typedef struct usmc_tp_qp_stats {
	uint64_t retransmits;	 /* request packets sent again (go-back-N) */
	uint64_t nak_seq_rx;	 /* PSN sequence error NAKs received */
	uint64_t rnr_nak_rx;	 /* RNR NAKs received */
	uint64_t retry_timeouts; /* retransmit timer expiries */
} usmc_tp_qp_stats;

/* Asynchronous device events, as verbs' ibv_get_async_event
 * (IBV_EVENT_PORT_ACTIVE, _PORT_ERR, _DEVICE_FATAL, _QP_FATAL). */
typedef enum usmc_tp_event_type {
	USMC_TP_EV_PORT_ACTIVE = 1,
	USMC_TP_EV_PORT_ERR,
	USMC_TP_EV_DEVICE_FATAL,
	USMC_TP_EV_QP_FATAL,
	/* ISM-shaped devices: the peer of a DMB or of an attachment is gone
	 * (its process died, or it detached or unregistered); |context| is
	 * the local DMB's or the attachment's. No QP or port is affected. */
	USMC_TP_EV_PEER_GONE,
} usmc_tp_event_type;

typedef struct usmc_tp_event {
	usmc_tp_event_type type;
	uint32_t qp_num; /* USMC_TP_EV_QP_FATAL only */
	void *context;	 /* USMC_TP_EV_PEER_GONE only */
} usmc_tp_event;

/* ISM-shaped memory, as the kernel's smcd_ops: a DMB (Direct Memory
 * Buffer) is local memory a peer may write into once it attached it by
 * its |token|; an rdmb is such an attachment of a peer's DMB. |context|
 * is the caller's cookie (signal completions and PEER_GONE carry it). */
struct usmc_tp_dmb {
	usmc_tp *tp;
	void *addr;
	size_t len;
	uint64_t token;
	void *context;
};

struct usmc_tp_rdmb {
	usmc_tp *tp;
	void *addr;
	size_t len;
	uint64_t token;
	void *context;
	/* 1: |addr| maps the peer's DMB in this process and a store there
	 * is what move_data without signal does, so the caller may write
	 * data in place and move only what must be signalled (the kernel's
	 * smc_ism_support_dmb_nocopy); 0: every byte goes by move_data */
	int mapped;
};

/* A received datagram as a packet-level hook sees it: the bytes may be
 * changed in place (the device then checks them as if they came so off
 * the wire). */
typedef struct usmc_tp_rx_pkt {
	uint8_t *data;
	size_t len;
	const struct sockaddr *src;
	const struct sockaddr *dst;
} usmc_tp_rx_pkt;

/* Returns 0 to let the device handle the packet, 1 if the hook took it
 * (dropped, or kept to hand back later through rx_inject). */
typedef int (*usmc_tp_rx_hook)(void *arg, usmc_tp_rx_pkt *pkt);

const char *usmc_tp_event_name(usmc_tp_event_type t);

struct usmc_tp_ops {
	const char *name;

	/* device (required) */
	int (*open)(const usmc_tp_config *cfg, usmc_tp **ptp);
	void (*close)(usmc_tp *tp);
	int (*query_port)(usmc_tp *tp, usmc_port_attr *attr);
	int (*get_fd)(usmc_tp *tp);

	/* memory (required): allocate and register in one step, because for
	 * shm the memory itself must come from the transport. */
	int (*alloc_mr)(usmc_tp *tp, size_t length, uint32_t access,
			usmc_tp_mr **pmr);
	void (*free_mr)(usmc_tp_mr *mr);
	/* optional: register memory another MR of the process holds (the
	 * same RMB on a second device, net/smc's buf_desc->mr[link_idx]);
	 * free_mr deregisters it and leaves the memory alone. Absent: a
	 * buffer lives on one device only (no second link on another).
	 * |addr| is never NULL (usmc_tp_reg_mr refuses that). */
	int (*reg_mr)(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		      usmc_tp_mr **pmr);

	/* queue pairs (required) */
	int (*create_qp)(usmc_tp *tp, const usmc_qp_init_attr *attr,
			 usmc_tp_qp **pqp);
	int (*modify_qp)(usmc_tp_qp *qp, const usmc_qp_attr *attr);
	void (*destroy_qp)(usmc_tp_qp *qp);

	/* data path (required) */
	int (*post_send)(usmc_tp_qp *qp, const usmc_wr *wr);
	int (*post_recv)(usmc_tp_qp *qp, const usmc_recv_wr *wr);
	/* Returns the number of completions written to |wcs| (0..n). */
	int (*poll_cq)(usmc_tp *tp, usmc_wc *wcs, int n);

	/* optional: the QP's state as the device sees it now, for backends
	 * whose device may change it without a call of ours (verbs: the RNIC
	 * moves a responder that NAKed to ERR with no completion); it also
	 * brings qp->state up to date. Absent: qp->state is always current. */
	usmc_qp_state (*query_qp_state)(const usmc_tp_qp *qp);

	/* optional: |qp|'s counters into |st|; 0. Absent: the backend does
	 * not count per QP (verbs, sim). */
	int (*query_qp_stats)(const usmc_tp_qp *qp, usmc_tp_qp_stats *st);

	/* optional: between batch(tp, 1) and batch(tp, 0) (nested calls
	 * count) the device may hold what posts transmit and send it in one
	 * go at the end, e.g. a WRITE and the CDC behind it in one syscall. */
	void (*batch)(usmc_tp *tp, int on);

	/* optional: the next asynchronous event into |ev|; 1 if there was
	 * one, 0 if none. The device fd is readable while events wait.
	 * Absent: the device raises none. */
	int (*get_async_event)(usmc_tp *tp, usmc_tp_event *ev);

	/* optional, packet-level backends (a wire under the device): run
	 * |hook| on every received datagram before any check (NULL: none),
	 * and take a datagram as if received, without the hook. Used by the
	 * fault decorator (transport/fault/). */
	void (*set_rx_hook)(usmc_tp *tp, usmc_tp_rx_hook hook, void *arg);
	void (*rx_inject)(usmc_tp *tp, const usmc_tp_rx_pkt *pkt);

	/* optional, backends with a clock of their own (sim's virtual one):
	 * the device's time in ns, and an alarm: at |t| of that clock the
	 * device fd turns readable and poll_cq is due, once. A decorator
	 * times its faults by these, so over sim they replay exactly.
	 * Absent: CLOCK_MONOTONIC, and timers of one's own. */
	usmc_tstamp (*now)(usmc_tp *tp);
	void (*wake_at)(usmc_tp *tp, usmc_tstamp t);

	/* optional, ISM-shaped devices (shm; smcd_ops): all five or none.
	 * register_dmb: |len| bytes of zeroed memory a peer may attach once
	 * with the random 64-bit token it gets. attach_dmb: the DMB |token|
	 * of the device whose 16-byte GID (gid || gid_ext) is |peer_gid|.
	 * move_data: copy |len| bytes to |offset| of the attached DMB
	 * (USMC_ERR_ACCESS past its end); |signal| makes the owner's poll_cq
	 * return a USMC_WC_DMB_SIGNAL completion for it. */
	int (*register_dmb)(usmc_tp *tp, size_t len, void *context,
			    usmc_tp_dmb **pdmb);
	void (*unregister_dmb)(usmc_tp_dmb *dmb);
	int (*attach_dmb)(usmc_tp *tp, const uint8_t peer_gid[16],
			  uint64_t token, void *context, usmc_tp_rdmb **prdmb);
	void (*detach_dmb)(usmc_tp_rdmb *rdmb);
	int (*move_data)(usmc_tp_rdmb *rdmb, size_t offset, const void *data,
			 size_t len, int signal);
};

/* Every backend's device struct embeds this first. */
struct usmc_tp {
	const usmc_tp_ops *ops;
	int last_errno;
};

/* The registry: backends compiled in, NULL-terminated. */
extern const usmc_tp_ops *const usmc_transports[];

/* usmc_tp_find returns the ops table named |name|, or NULL. */
const usmc_tp_ops *usmc_tp_find(const char *name);

/* usmc_tp_open finds |name| and opens a device with |cfg|. "OUTER:INNER"
 * opens the decorator OUTER with inner=INNER before cfg->options (e.g.
 * "fault:softroce"). USMC_ERR_NOTFOUND if no such backend. */
int usmc_tp_open(const char *name, const usmc_tp_config *cfg, usmc_tp **ptp);

/* One item of a backend's options string ("KEY=VALUE,KEY=VALUE"), as every
 * backend reads it, so that all of them refuse a bad item the same way:
 * |idx| counts items from 1 and |col| is the item's first column (1-based)
 * for the error message; |val| is NULL when the item has no '='. */
typedef struct usmc_tp_opt {
	const char *item, *key, *val;
	size_t len, klen, vlen;
	int idx;
	size_t col;
} usmc_tp_opt;

/* usmc_tp_opt_next steps |*cursor| (start it at |opts|, with |o| zeroed) to
 * the next item: 1 with |o| filled, 0 at the end. An empty item ("a=1,,b=2")
 * is returned as one (len 0, no value: a typo to refuse); a trailing comma
 * ends the list. */
int usmc_tp_opt_next(const char *opts, const char **cursor, usmc_tp_opt *o);
/* Whether the item's key, or its value, is |s|. */
int usmc_tp_opt_key_is(const usmc_tp_opt *o, const char *s);
int usmc_tp_opt_val_is(const usmc_tp_opt *o, const char *s);
/* The value as a decimal 0..2^32-1: 0, or -1 if it is not one. */
int usmc_tp_opt_u32(const usmc_tp_opt *o, uint32_t *out);
/* A switch: the value |on| ("on", "auto") sets *out to 1, "off" to 0;
 * -1 (and *out untouched) for anything else. */
int usmc_tp_opt_onoff(const usmc_tp_opt *o, const char *on, int *out);

/* Thin dispatchers: no NULL checks on the hot path. */
static inline void usmc_tp_close(usmc_tp *tp)
{
	tp->ops->close(tp);
}

static inline int usmc_tp_query_port(usmc_tp *tp, usmc_port_attr *attr)
{
	return tp->ops->query_port(tp, attr);
}

static inline int usmc_tp_get_fd(usmc_tp *tp)
{
	return tp->ops->get_fd(tp);
}

static inline int usmc_tp_alloc_mr(usmc_tp *tp, size_t length, uint32_t access,
				   usmc_tp_mr **pmr)
{
	return tp->ops->alloc_mr(tp, length, access, pmr);
}

/* USMC_ERR_NOTSUP when the backend cannot register foreign memory, else
 * USMC_ERR_INVALID_ARGUMENT for no memory, checked here for every backend. */
static inline int usmc_tp_reg_mr(usmc_tp *tp, void *addr, size_t length,
				 uint32_t access, usmc_tp_mr **pmr)
{
	if (!tp->ops->reg_mr)
		return USMC_ERR_NOTSUP;
	*pmr = NULL;
	if (!addr)
		return USMC_ERR_INVALID_ARGUMENT;
	return tp->ops->reg_mr(tp, addr, length, access, pmr);
}

static inline void usmc_tp_free_mr(usmc_tp_mr *mr)
{
	mr->tp->ops->free_mr(mr);
}

/* The first member of every backend QP struct. As in verbs' struct ibv_qp,
 * what every backend keeps alike is here, read through the accessors below
 * rather than through ops: create_qp sets all of it, and the backend keeps
 * |state| current (modify_qp, errors). */
struct usmc_tp_qp {
	usmc_tp *tp;
	void *context; /* usmc_qp_init_attr.context */
	uint32_t qp_num;
	usmc_qp_state state;
};

static inline int usmc_tp_create_qp(usmc_tp *tp, const usmc_qp_init_attr *a,
				    usmc_tp_qp **pqp)
{
	return tp->ops->create_qp(tp, a, pqp);
}

static inline int usmc_tp_modify_qp(usmc_tp_qp *qp, const usmc_qp_attr *a)
{
	return qp->tp->ops->modify_qp(qp, a);
}

static inline void usmc_tp_destroy_qp(usmc_tp_qp *qp)
{
	qp->tp->ops->destroy_qp(qp);
}

static inline uint32_t usmc_tp_qp_num(const usmc_tp_qp *qp)
{
	return qp->qp_num;
}

static inline void *usmc_tp_qp_context(const usmc_tp_qp *qp)
{
	return qp->context;
}

static inline usmc_qp_state usmc_tp_qp_state(const usmc_tp_qp *qp)
{
	const usmc_tp_ops *ops = qp->tp->ops;

	return ops->query_qp_state ? ops->query_qp_state(qp) : qp->state;
}

/* |qp|'s counters: 0, or USMC_ERR_NOTSUP (|st| zeroed) when its backend
 * keeps none. */
static inline int usmc_tp_query_qp_stats(const usmc_tp_qp *qp,
					 usmc_tp_qp_stats *st)
{
	const usmc_tp_ops *ops = qp->tp->ops;

	if (!ops->query_qp_stats) {
		*st = (usmc_tp_qp_stats){0};
		return USMC_ERR_NOTSUP;
	}
	return ops->query_qp_stats(qp, st);
}

static inline int usmc_tp_post_send(usmc_tp_qp *qp, const usmc_wr *wr)
{
	return qp->tp->ops->post_send(qp, wr);
}

static inline int usmc_tp_post_recv(usmc_tp_qp *qp, const usmc_recv_wr *wr)
{
	return qp->tp->ops->post_recv(qp, wr);
}

static inline int usmc_tp_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n)
{
	return tp->ops->poll_cq(tp, wcs, n);
}

static inline void usmc_tp_batch(usmc_tp *tp, int on)
{
	if (tp->ops->batch)
		tp->ops->batch(tp, on);
}

static inline int usmc_tp_get_async_event(usmc_tp *tp, usmc_tp_event *ev)
{
	return tp->ops->get_async_event ? tp->ops->get_async_event(tp, ev) : 0;
}

/* The ISM ops: USMC_ERR_NOTSUP on a device without them (RoCE). */
static inline int usmc_tp_register_dmb(usmc_tp *tp, size_t len, void *context,
				       usmc_tp_dmb **pdmb)
{
	if (!tp->ops->register_dmb)
		return USMC_ERR_NOTSUP;
	return tp->ops->register_dmb(tp, len, context, pdmb);
}

static inline void usmc_tp_unregister_dmb(usmc_tp_dmb *dmb)
{
	if (dmb->tp->ops->unregister_dmb)
		dmb->tp->ops->unregister_dmb(dmb);
}

static inline int usmc_tp_attach_dmb(usmc_tp *tp, const uint8_t peer_gid[16],
				     uint64_t token, void *context,
				     usmc_tp_rdmb **prdmb)
{
	if (!tp->ops->attach_dmb)
		return USMC_ERR_NOTSUP;
	return tp->ops->attach_dmb(tp, peer_gid, token, context, prdmb);
}

static inline void usmc_tp_detach_dmb(usmc_tp_rdmb *rdmb)
{
	if (rdmb->tp->ops->detach_dmb)
		rdmb->tp->ops->detach_dmb(rdmb);
}

static inline int usmc_tp_move_data(usmc_tp_rdmb *rdmb, size_t offset,
				    const void *data, size_t len, int signal)
{
	if (!rdmb->tp->ops->move_data)
		return USMC_ERR_NOTSUP;
	return rdmb->tp->ops->move_data(rdmb, offset, data, len, signal);
}

#endif /* USMC_TRANSPORT_H */
