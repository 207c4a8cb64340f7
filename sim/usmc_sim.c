/* SPDX-License-Identifier: MIT */
/*
 * The core test harness over the transport API; see usmc_sim.h. Each node
 * is a usmc_ctx whose device callbacks call usmc_tp_* on its devices, each
 * a fault:sim device in the one world the harness owns: the harness is a
 * driver, as runtime/usmc_smc.c is over softroce. What it still does
 * itself: the CLC byte pipes (the TCP connections), failing the n-th
 * allocation, a hung core (its CQs are not polled), forged SENDs (posted
 * on the victim's peer QP), the trace of delivered SENDs (read from the
 * receive buffers at their completion) and the sums of the counters.
 */
#include "usmc_sim.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_clc.h"
#include "usmc_fault.h"
#include "usmc_tp_core.h"
#include "usmc_tp_sim.h"

#define SIM_TCP_LATENCY	  (20 * 1000ull)
/* A forged SEND's wr_id: a kind no core WR has (USMC_WRID_*). */
#define SIM_FORGED	  (0xf0ull << 56)
#define SIM_FORGED_OF(id) (((id) >> 56) == 0xf0)
/* QP attributes as the kernel's smc_ib_modify_qp_rtr/rts, but for
 * retry_cnt: sim (as rxe) reads 7 as "for ever", where an RNIC stops after
 * 7 retries, so a dead path would never fail a QP here. */
#define QP_TIMEOUT	  15
#define QP_RETRY_CNT	  3
#define QP_RNR_RETRY	  7
#define QP_MIN_RNR_TMR	  5
#define QP_SPARE_WR	  8 /* send WRs beyond the core's, for forged SENDs */

typedef struct sim_qp {
	struct sim_qp *next;
	usmc_sim_node *node;
	usmc_link *link;
	usmc_tp_qp *qp;
	uint32_t qpn;
	int peer_idx; /* the peer's node index, from its GID */
	/* the receive WRs posted, in order: the trace reads what a SEND
	 * brought from the one its completion names */
	usmc_recv_wr *rq;
	size_t rq_head, rq_len, rq_cap;
} sim_qp;

struct usmc_sim_node {
	usmc_sim *sim;
	usmc_sim_node *next;
	usmc_ctx *ctx;
	int idx;
	long live_allocs, live_mrs;
	int blackhole;
	int no_reg_mr;	       /* reg_mr refused (USMC_ERR_NOTSUP), as verbs' */
	uint64_t fired_before; /* faults fired under earlier schedules */
	uint32_t ipv4;
	uint8_t prefix_len;
	unsigned int dev_idx; /* device of its next connections */
	uint32_t send_wr, recv_wr;
	unsigned int ndev;
	usmc_tp *dev[USMC_DEVICES_MAX];
	uint8_t gid[USMC_DEVICES_MAX][16];
	sim_qp *qps;
};

/* CLC bytes on their way through the simulated TCP connection. */
typedef struct clc_ev {
	struct clc_ev *next;
	usmc_tstamp t;
	usmc_sim_ep *to;
	uint8_t *data;
	size_t len;
} clc_ev;

typedef struct sim_epl {
	struct sim_epl *next;
	usmc_sim_ep *ep;
} sim_epl;

typedef struct sim_forged {
	struct sim_forged *next;
	uint64_t wr_id;
	usmc_tp_mr *mr;
} sim_forged;

struct usmc_sim {
	usmc_tp_sim_world *w;
	uint64_t rng;
	clc_ev *clc;
	usmc_sim_node *nodes;
	int nnodes;
	sim_epl *eps;
	usmc_sim_stats st; /* the harness's own counts */
	usmc_sim_stats view;
	long fail_at, alloc_n;
	uint64_t forged_seq;
	sim_forged *forged;
	usmc_sim_trace trace[4096];
	size_t ntrace;
	usmc_sim_log_fn log_fn;
	void *log_arg;
};

static uint64_t rnd(usmc_sim *sim)
{
	sim->rng ^= sim->rng << 13;
	sim->rng ^= sim->rng >> 7;
	sim->rng ^= sim->rng << 17;
	return sim->rng;
}

static int alloc_fails(usmc_sim *sim)
{
	long i = sim->alloc_n++;

	return sim->fail_at >= 0 && i == sim->fail_at;
}

/* ---- memory callbacks ---- */

static void *cb_malloc(size_t size, void *user)
{
	usmc_sim_node *n = user;
	void *p;

	if (alloc_fails(n->sim))
		return NULL;
	p = malloc(size);
	if (p) {
		n->live_allocs++;
		n->sim->st.allocs++;
	}
	return p;
}

static void *cb_calloc(size_t c, size_t size, void *user)
{
	usmc_sim_node *n = user;
	void *p;

	if (alloc_fails(n->sim))
		return NULL;
	p = calloc(c, size);
	if (p) {
		n->live_allocs++;
		n->sim->st.allocs++;
	}
	return p;
}

static void cb_free(void *ptr, void *user)
{
	usmc_sim_node *n = user;

	if (!ptr)
		return;
	n->live_allocs--;
	n->sim->st.frees++;
	free(ptr);
}

static void cb_rand(uint8_t *buf, size_t len, void *user)
{
	usmc_sim_node *n = user;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rnd(n->sim);
}

/* ---- device callbacks: usmc_tp_* on the node's devices ---- */

/* The end of alloc_mr and reg_mr: |t| (|rv| 0) counted and handed on. */
static int node_mr(usmc_sim_node *n, int rv, usmc_tp_mr *t, usmc_mr *mr)
{
	if (rv)
		return rv;
	n->live_mrs++;
	n->sim->st.mrs++;
	usmc_tp_mr_to_core(t, mr);
	return 0;
}

static int cb_alloc_mr(void *user, unsigned int dev_idx, size_t length,
		       uint32_t access, usmc_mr *mr)
{
	usmc_sim_node *n = user;
	usmc_tp_mr *t;
	int rv;

	if (alloc_fails(n->sim))
		return USMC_ERR_NOMEM;
	if (dev_idx >= n->ndev)
		return USMC_ERR_INVALID_ARGUMENT;
	rv = usmc_tp_alloc_mr(n->dev[dev_idx], length, access, &t);
	return node_mr(n, rv, t, mr);
}

static int cb_reg_mr(void *user, unsigned int dev_idx, void *addr,
		     size_t length, uint32_t access, usmc_mr *mr)
{
	usmc_sim_node *n = user;
	usmc_tp_mr *t;
	int rv;

	if (n->no_reg_mr)
		return USMC_ERR_NOTSUP;
	if (alloc_fails(n->sim))
		return USMC_ERR_NOMEM;
	if (dev_idx >= n->ndev)
		return USMC_ERR_INVALID_ARGUMENT;
	rv = usmc_tp_reg_mr(n->dev[dev_idx], addr, length, access, &t);
	return node_mr(n, rv, t, mr);
}

static void cb_log(void *user, int level, const char *msg)
{
	usmc_sim_node *n = user;

	if (n->sim->log_fn)
		n->sim->log_fn(n->sim->log_arg, n->idx, level, msg);
}

void usmc_sim_node_set_reg_mr(usmc_sim_node *node, int on)
{
	node->no_reg_mr = !on;
}

void usmc_sim_set_log(usmc_sim *sim, usmc_sim_log_fn fn, void *arg)
{
	sim->log_fn = fn;
	sim->log_arg = arg;
}

static void cb_free_mr(void *user, usmc_mr *mr)
{
	usmc_sim_node *n = user;

	if (!mr->handle)
		return;
	usmc_tp_free_mr(mr->handle);
	mr->handle = NULL;
	n->live_mrs--;
	n->sim->st.mr_frees++;
}

static int cb_create_qp(void *user, usmc_link *link, usmc_link_qp_info *out)
{
	usmc_sim_node *n = user;
	unsigned int d = usmc_link_get_dev_idx(link);
	usmc_qp_init_attr ia = {0};
	usmc_qp_attr qa = {0};
	sim_qp *q;
	int rv;

	if (alloc_fails(n->sim))
		return USMC_ERR_NOMEM;
	if (d >= n->ndev)
		return USMC_ERR_INVALID_ARGUMENT;
	q = calloc(1, sizeof(*q));
	if (!q)
		return USMC_ERR_NOMEM;
	/* as net/smc: 3 send WRs per TX slot, one receive WR per buffer */
	ia.max_send_wr = 3u * n->send_wr + QP_SPARE_WR;
	ia.max_recv_wr = n->recv_wr;
	ia.max_send_sge = USMC_WR_MAX_SGE;
	ia.max_recv_sge = USMC_WR_MAX_SGE;
	ia.context = link;
	rv = usmc_tp_create_qp(n->dev[d], &ia, &q->qp);
	if (rv) {
		free(q);
		return rv;
	}
	qa.qp_state = USMC_QPS_INIT;
	qa.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	rv = usmc_tp_modify_qp(q->qp, &qa);
	if (rv) {
		usmc_tp_destroy_qp(q->qp);
		free(q);
		return rv;
	}
	q->node = n;
	q->link = link;
	q->qpn = usmc_tp_qp_num(q->qp);
	q->next = n->qps;
	n->qps = q;
	n->sim->st.qps++;
	usmc_link_set_user(link, q);
	out->qp_num = q->qpn;
	return 0;
}

static int node_of_gid(usmc_sim *sim, const uint8_t *gid)
{
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		for (unsigned int d = 0; d < n->ndev; d++)
			if (!memcmp(n->gid[d], gid, 16))
				return n->idx;
	return 0;
}

static int cb_link_ready(void *user, usmc_link *link,
			 const usmc_link_peer *peer, int to_rts)
{
	usmc_sim_node *n = user;
	sim_qp *q = usmc_link_get_user(link);
	usmc_qp_attr qa = {0};
	int rv;

	if (!q)
		return USMC_ERR_INVALID_STATE;
	if (!to_rts || usmc_tp_qp_state(q->qp) == USMC_QPS_INIT) {
		qa.qp_state = USMC_QPS_RTR;
		qa.path_mtu = peer->path_mtu;
		qa.dest_qp_num = peer->qp_num;
		qa.rq_psn = peer->psn;
		memcpy(qa.dgid, peer->gid, 16);
		memcpy(qa.dmac, peer->mac, 6);
		qa.hop_limit = 1;
		qa.min_rnr_timer = QP_MIN_RNR_TMR;
		rv = usmc_tp_modify_qp(q->qp, &qa);
		if (rv)
			return rv;
		q->peer_idx = node_of_gid(n->sim, peer->gid);
		if (!to_rts)
			return 0;
	}
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = USMC_QPS_RTS;
	qa.sq_psn = peer->local_psn;
	qa.timeout = QP_TIMEOUT;
	qa.retry_cnt = QP_RETRY_CNT;
	qa.rnr_retry = QP_RNR_RETRY;
	return usmc_tp_modify_qp(q->qp, &qa);
}

static void qp_free(sim_qp *q)
{
	usmc_tp_destroy_qp(q->qp);
	free(q->rq);
	free(q);
}

static void cb_destroy_qp(void *user, usmc_link *link)
{
	usmc_sim_node *n = user;
	sim_qp *q = usmc_link_get_user(link);

	for (sim_qp **pp = &n->qps; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			qp_free(q);
			n->sim->st.qp_destroys++;
			break;
		}
	}
	usmc_link_set_user(link, NULL);
}

/* ---- work requests, pulled from the cores (usmc_ctx_next_wr) ---- */

static int rq_push(sim_qp *q, const usmc_recv_wr *wr)
{
	if (q->rq_len == q->rq_cap) {
		size_t cap = q->rq_cap ? q->rq_cap * 2 : 64;
		usmc_recv_wr *rq = malloc(cap * sizeof(*rq));

		if (!rq)
			return USMC_ERR_NOMEM;
		for (size_t i = 0; i < q->rq_len; i++)
			rq[i] = q->rq[(q->rq_head + i) % q->rq_cap];
		free(q->rq);
		q->rq = rq;
		q->rq_cap = cap;
		q->rq_head = 0;
	}
	q->rq[(q->rq_head + q->rq_len) % q->rq_cap] = *wr;
	q->rq_len++;
	return 0;
}

/* The receive WR |wr_id| completed: receive queues complete in order, so
 * it is the oldest one posted (or, after a flush, one behind it). */
static int rq_pop(sim_qp *q, uint64_t wr_id, usmc_recv_wr *out)
{
	while (q->rq_len) {
		*out = q->rq[q->rq_head];
		q->rq_head = (q->rq_head + 1) % q->rq_cap;
		q->rq_len--;
		if (out->wr_id == wr_id)
			return 0;
	}
	return -1;
}

/* Posts what |n|'s core queued, as a driver does after each core call. A
 * post that fails (a fault schedule's fail-post, a dead device) goes back
 * to the core as its own input, once the call that queued it returned. */
static void node_drain(usmc_sim_node *n)
{
	usmc_link_wr w;

	while (n->ctx && usmc_ctx_next_wr(n->ctx, &w) == 1) {
		sim_qp *q = usmc_link_get_user(w.link);
		int recv = w.kind == USMC_WRK_RECV;
		int rv = !q	? USMC_ERR_INVALID_STATE
			 : recv ? usmc_tp_post_recv(q->qp, &w.wr.recv)
				: usmc_tp_post_send(q->qp, &w.wr.send);

		if (!rv && recv)
			rv = rq_push(q, &w.wr.recv);
		if (rv == USMC_ERR_ACCESS)
			n->sim->st.access_errors++; /* an SGE outside its MR */
		if (rv)
			usmc_link_post_failed(w.link,
					      recv ? w.wr.recv.wr_id
						   : w.wr.send.wr_id,
					      rv, usmc_sim_now(n->sim));
	}
}

/* Every node's: the tests call the cores directly, so the harness drains
 * before it runs anything, and after each core call it makes itself. */
static void sim_drain(usmc_sim *sim)
{
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		node_drain(n);
}

/* ---- completions and async events ---- */

static sim_qp *node_qp(usmc_sim_node *n, uint32_t qpn)
{
	for (sim_qp *q = n->qps; q; q = q->next)
		if (q->qpn == qpn)
			return q;
	return NULL;
}

static void forged_done(usmc_sim *sim, uint64_t wr_id)
{
	for (sim_forged **pp = &sim->forged; *pp; pp = &(*pp)->next) {
		if ((*pp)->wr_id == wr_id) {
			sim_forged *f = *pp;

			*pp = f->next;
			usmc_tp_free_mr(f->mr);
			free(f);
			return;
		}
	}
}

/* A SEND delivered: its first bytes into the trace, from the buffers of
 * the receive WR it consumed. */
static void trace_recv(usmc_sim *sim, const sim_qp *q, const usmc_recv_wr *rw,
		       uint32_t len)
{
	usmc_sim_trace *tr;
	size_t off = 0;

	if (sim->ntrace >= sizeof(sim->trace) / sizeof(sim->trace[0]))
		return;
	tr = &sim->trace[sim->ntrace++];
	memset(tr, 0, sizeof(*tr));
	tr->from = q->peer_idx;
	tr->len = len;
	tr->t = usmc_sim_now(sim);
	for (unsigned int d = 0; d < q->node->ndev; d++)
		if (q->qp->tp == q->node->dev[d])
			tr->dev = (uint8_t)d;
	for (uint32_t i = 0; i < rw->num_sge && off < len; i++) {
		size_t k = rw->sg_list[i].length;

		if (k > len - off)
			k = len - off;
		if (off < sizeof(tr->msg))
			memcpy(tr->msg + off,
			       (const void *)(uintptr_t)rw->sg_list[i].addr,
			       k < sizeof(tr->msg) - off
				       ? k
				       : sizeof(tr->msg) - off);
		off += k;
	}
}

/* |evs|: the device's async events, read before its completions are
 * handed on (the runtime's order too): a failed one of a QP an event names
 * takes its link down with the event's reason. */
static void node_wc(usmc_sim_node *n, const usmc_wc *wc, const usmc_tp_evs *evs)
{
	usmc_sim *sim = n->sim;
	sim_qp *q;
	int why;

	if (SIM_FORGED_OF(wc->wr_id)) {
		forged_done(sim, wc->wr_id);
		return;
	}
	q = node_qp(n, wc->qp_num);
	if (!q)
		return; /* a QP destroyed meanwhile: its flushes */
	if (wc->status == USMC_WC_LOC_PROT_ERR)
		sim->st.access_errors++; /* memory gone under a WR */
	if (wc->opcode == USMC_WC_RECV) {
		usmc_recv_wr rw;

		if (!rq_pop(q, wc->wr_id, &rw) && wc->status == USMC_WC_SUCCESS)
			trace_recv(sim, q, &rw, wc->byte_len);
	}
	why = wc->status != USMC_WC_SUCCESS ? usmc_tp_evs_reason(evs, q->qpn)
					    : -1;
	if (why >= 0)
		usmc_link_down_why(q->link, (usmc_link_down_reason)why,
				   usmc_sim_now(sim));
	else
		usmc_link_on_wc(q->link, wc, usmc_sim_now(sim));
	node_drain(n);
}

/* One event: PORT_ERR and DEVICE_FATAL take every link of the device
 * down, QP_FATAL the one with that QPN, as the runtime does
 * (tp_async_events). */
static void node_event(usmc_sim_node *n, usmc_tp *dev, const usmc_tp_event *ev)
{
	uint32_t qpns[64];
	size_t k = 0;

	if (ev->type == USMC_TP_EV_PORT_ACTIVE)
		return;
	for (sim_qp *q = n->qps; q && k < 64; q = q->next)
		if (q->qp->tp == dev &&
		    (ev->type != USMC_TP_EV_QP_FATAL || q->qpn == ev->qp_num))
			qpns[k++] = q->qpn;
	/* a link down may take others with it: look each up */
	for (size_t i = 0; i < k; i++) {
		sim_qp *q = node_qp(n, qpns[i]);

		if (q) {
			usmc_link_down_why(q->link, usmc_tp_event_reason(ev),
					   usmc_sim_now(n->sim));
			node_drain(n);
		}
	}
}

/* Polls the node's devices; returns how many completions it handed on. A
 * hung core (usmc_sim_set_blackhole) polls nothing. */
static int node_poll(usmc_sim_node *n)
{
	int total = 0;

	if (n->blackhole)
		return 0;
	for (unsigned int d = 0; d < n->ndev; d++) {
		usmc_tp_event ev;
		usmc_wc wcs[16];
		usmc_tp_evs evs;
		int k;

		evs.n = 0;
		while ((k = usmc_tp_poll_cq(n->dev[d], wcs, 16)) > 0) {
			/* after the poll: a fault may strike in it */
			usmc_tp_evs_read(n->dev[d], &evs);
			for (int i = 0; i < k; i++)
				if (n->ctx)
					node_wc(n, &wcs[i], &evs);
			total += k;
		}
		for (int i = 0; i < evs.n && n->ctx; i++)
			node_event(n, n->dev[d], &evs.ev[i]);
		while (n->ctx && usmc_tp_get_async_event(n->dev[d], &ev) == 1)
			node_event(n, n->dev[d], &ev);
	}
	return total;
}

/* Posts and completions until neither is left, at the current time. */
static void settle(usmc_sim *sim)
{
	int more;

	do {
		more = 0;
		sim_drain(sim);
		for (usmc_sim_node *n = sim->nodes; n; n = n->next)
			more += node_poll(n);
	} while (more);
}

/* ---- CLC pipes ---- */

static void clc_insert(usmc_sim *sim, clc_ev *e)
{
	clc_ev **pp = &sim->clc;

	while (*pp && (*pp)->t <= e->t)
		pp = &(*pp)->next;
	e->next = *pp;
	*pp = e;
}

static void ep_deliver(usmc_sim_ep *ep)
{
	while (ep->conn && ep->in_len >= 8 &&
	       usmc_conn_get_mode(ep->conn) == USMC_MODE_HANDSHAKE) {
		usmc_clc_hdr h;
		size_t n;
		int rv;

		if (usmc_clc_hdr_peek(ep->in, ep->in_len, &h))
			n = 8; /* garbage: the core rejects it */
		else if (h.length > ep->in_len)
			return;
		else
			n = h.length;
		rv = usmc_conn_clc_recv(ep->conn, ep->in, n,
					usmc_sim_now(ep->sim));
		sim_drain(ep->sim);
		if (rv)
			return; /* the handshake is over: bytes stay queued */
		memmove(ep->in, ep->in + n, ep->in_len - n);
		ep->in_len -= n;
	}
}

static void ep_flush(usmc_sim_ep *ep)
{
	const uint8_t *d;
	size_t len;

	if (!ep->conn)
		return;
	usmc_conn_clc_pending(ep->conn, &d, &len);
	if (!len)
		return;
	if (ep->clc_sent_len + len <= sizeof(ep->clc_sent)) {
		memcpy(ep->clc_sent + ep->clc_sent_len, d, len);
		ep->clc_sent_len += len;
	}
	if (ep->peer) {
		clc_ev *e = calloc(1, sizeof(*e));

		if (e) {
			e->to = ep->peer;
			e->data = malloc(len);
			if (e->data)
				memcpy(e->data, d, len);
			e->len = e->data ? len : 0;
			e->t = usmc_sim_now(ep->sim) + SIM_TCP_LATENCY;
			clc_insert(ep->sim, e);
		}
	}
	usmc_conn_clc_consume(ep->conn, len);
}

static void cb_conn_event(void *user, usmc_conn *conn, usmc_conn_event ev)
{
	usmc_sim_ep *ep = usmc_conn_get_user(conn);

	(void)user;
	if (!ep)
		return;
	ep->ev[ev]++;
	if (ev == USMC_EV_CLC_SEND)
		ep_flush(ep);
}

void usmc_sim_clc_inject(usmc_sim_ep *ep, const uint8_t *data, size_t len)
{
	if (len > sizeof(ep->in) - ep->in_len)
		len = sizeof(ep->in) - ep->in_len;
	memcpy(ep->in + ep->in_len, data, len);
	ep->in_len += len;
	ep_deliver(ep);
}

static void clc_exec(usmc_sim *sim)
{
	clc_ev *e = sim->clc;
	usmc_sim_ep *ep = e->to;
	size_t n = e->len;

	sim->clc = e->next;
	if (n > sizeof(ep->in) - ep->in_len)
		n = sizeof(ep->in) - ep->in_len;
	memcpy(ep->in + ep->in_len, e->data, n);
	ep->in_len += n;
	free(e->data);
	free(e);
	ep_deliver(ep);
}

/* ---- time ---- */

static usmc_tstamp timers_next(usmc_sim *sim)
{
	usmc_tstamp t = USMC_TSTAMP_NONE;

	for (usmc_sim_node *n = sim->nodes; n; n = n->next) {
		usmc_tstamp x =
			n->ctx ? usmc_ctx_get_expiry(n->ctx) : USMC_TSTAMP_NONE;

		if (x < t)
			t = x;
	}
	return t;
}

/* One instant: the fabric's events due then (usmc_tp_sim_world_run), the
 * CLC bytes arriving then, or the cores' timers, then what they caused. */
static int step(usmc_sim *sim, usmc_tstamp until, int stop_idle)
{
	usmc_tstamp now, tw, tc, tt, t;

	settle(sim); /* what the test's own core calls queued */
	now = usmc_sim_now(sim);
	tw = usmc_tp_sim_world_next(sim->w);
	tc = sim->clc ? sim->clc->t : USMC_TSTAMP_NONE;
	tt = timers_next(sim);
	t = tw < tc ? tw : tc;
	if (stop_idle && t == USMC_TSTAMP_NONE && tt > now)
		return 0;
	if (tt < t)
		t = tt;
	if (t == USMC_TSTAMP_NONE || t > until)
		return -1;
	if (t < now)
		t = now;
	usmc_tp_sim_world_run(sim->w, t);
	settle(sim);
	if (tc <= t) {
		clc_exec(sim);
		return 1;
	}
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		if (n->ctx && usmc_ctx_get_expiry(n->ctx) <= t) {
			usmc_ctx_handle_expiry(n->ctx, t);
			node_drain(n);
		}
	return 1;
}

void usmc_sim_run(usmc_sim *sim, usmc_tstamp until)
{
	while (step(sim, until, 0) > 0)
		;
	if (until != USMC_TSTAMP_NONE)
		usmc_tp_sim_world_run(sim->w, until);
}

int usmc_sim_run_idle(usmc_sim *sim, usmc_tstamp limit)
{
	int r;

	while ((r = step(sim, limit, 1)) > 0)
		;
	return r;
}

/* ---- objects ---- */

usmc_sim *usmc_sim_new(uint64_t seed)
{
	usmc_sim *sim = calloc(1, sizeof(*sim));

	if (!sim)
		return NULL;
	sim->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	/* the fabric's stream apart from the cores' random bytes */
	sim->w = usmc_tp_sim_world_new(sim->rng ^ 0x5bd1e9955bd1e995ull);
	if (!sim->w) {
		free(sim);
		return NULL;
	}
	sim->fail_at = -1;
	return sim;
}

usmc_tstamp usmc_sim_now(const usmc_sim *sim)
{
	return usmc_tp_sim_world_now(sim->w);
}

const usmc_sim_stats *usmc_sim_get_stats(usmc_sim *sim)
{
	usmc_sim_stats *v = &sim->view;

	*v = sim->st;
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		for (unsigned int d = 0; d < n->ndev; d++) {
			usmc_tp_sim_stats ds;

			if (usmc_tp_sim_get_stats(usmc_fault_inner(n->dev[d]),
						  &ds))
				continue;
			v->sends += ds.sends;
			v->recvs += ds.sends;
			v->writes += ds.writes;
			v->write_bytes += ds.write_bytes;
			v->access_errors += ds.access_errors;
			v->rnr_retries += ds.rnr_nak_rx;
		}
	return v;
}

/* Device |d| of node |n|: fault:sim at 10.<d>.0.<n>, whose GID is then
 * ::ffff:10.<d>.0.<n> and MAC 02:00:0a:<d>:00:<n>. */
static int dev_open(usmc_sim *sim, usmc_sim_node *n, unsigned int d,
		    usmc_device_info *dv)
{
	struct sockaddr_in *a;
	usmc_tp_config cfg;
	usmc_port_attr pa;
	char opts[64];
	int rv;

	memset(&cfg, 0, sizeof(cfg));
	a = (struct sockaddr_in *)&cfg.local_addr;
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0x0a000000u | d << 16 | (uint32_t)n->idx);
	/* the harness sets its own schedules: no environment, no socket */
	snprintf(opts, sizeof(opts), "ctl=off,env=off,mtu=%u",
		 usmc_ib_mtu_to_int(dv->active_mtu ? dv->active_mtu
						   : USMC_IB_MTU_1024));
	cfg.options = opts;
	cfg.backend_ctx = sim->w;
	rv = usmc_tp_open("fault:sim", &cfg, &n->dev[d]);
	if (rv)
		return rv;
	usmc_tp_query_port(n->dev[d], &pa);
	memcpy(dv->gid, pa.gid, 16);
	memcpy(dv->mac, pa.mac, 6);
	dv->active_mtu = pa.active_mtu;
	memcpy(n->gid[d], pa.gid, 16);
	n->ndev = d + 1;
	return 0;
}

usmc_sim_node *usmc_sim_node_new(usmc_sim *sim, const usmc_settings *s)
{
	static const usmc_callbacks cb = {
		.malloc = cb_malloc,
		.free = cb_free,
		.calloc = cb_calloc,
		.rand = cb_rand,
		.alloc_mr = cb_alloc_mr,
		.reg_mr = cb_reg_mr,
		.free_mr = cb_free_mr,
		.link_create_qp = cb_create_qp,
		.link_ready = cb_link_ready,
		.link_destroy_qp = cb_destroy_qp,
		.conn_event = cb_conn_event,
		.log = cb_log,
	};
	usmc_sim_node *n = calloc(1, sizeof(*n));
	usmc_settings st;

	if (!n)
		return NULL;
	n->sim = sim;
	n->idx = ++sim->nnodes;
	n->ipv4 = 0x0a000000u | (uint32_t)n->idx;
	n->prefix_len = 24;
	n->next = sim->nodes;
	sim->nodes = n;
	if (s)
		st = *s;
	else
		usmc_settings_default(&st);
	/* one device unless |s| asks for more */
	if (st.ndevices < 1 || st.ndevices > USMC_DEVICES_MAX)
		st.ndevices = 1;
	for (unsigned int d = 0; d < st.ndevices; d++)
		if (dev_open(sim, n, d, &st.devices[d]))
			return NULL;
	memset(st.system_id, 0, sizeof(st.system_id));
	n->send_wr = st.send_wr ? st.send_wr : 16;
	n->recv_wr = st.recv_wr ? st.recv_wr : 48;
	if (usmc_ctx_new(&n->ctx, &cb, &st, n)) {
		n->ctx = NULL;
		return NULL;
	}
	return n;
}

void usmc_sim_node_set_dev(usmc_sim_node *node, unsigned int dev_idx)
{
	node->dev_idx = dev_idx;
}

usmc_ctx *usmc_sim_node_ctx(usmc_sim_node *node)
{
	return node->ctx;
}

void usmc_sim_node_set_ipv4(usmc_sim_node *node, uint32_t addr,
			    uint8_t prefix_len)
{
	node->ipv4 = addr;
	node->prefix_len = prefix_len;
}

long usmc_sim_node_live_allocs(const usmc_sim_node *node)
{
	return node->live_allocs;
}

long usmc_sim_node_live_mrs(const usmc_sim_node *node)
{
	return node->live_mrs;
}

usmc_link *usmc_sim_link_by_qpn(usmc_sim *sim, uint32_t qpn)
{
	for (usmc_sim_node *n = sim->nodes; n; n = n->next) {
		sim_qp *q = node_qp(n, qpn);

		if (q)
			return q->link;
	}
	return NULL;
}

usmc_link *usmc_sim_node_link(usmc_sim_node *node, int idx)
{
	int i = 0;

	for (sim_qp *q = node->qps; q; q = q->next)
		if (i++ == idx)
			return q->link;
	return NULL;
}

static void ep_register(usmc_sim *sim, usmc_sim_ep *ep)
{
	sim_epl *l = calloc(1, sizeof(*l));

	if (!l)
		abort();
	l->ep = ep;
	l->next = sim->eps;
	sim->eps = l;
}

static usmc_conn_params params_of(usmc_sim_node *n, usmc_role role)
{
	usmc_conn_params p;

	memset(&p, 0, sizeof(p));
	p.role = role;
	p.ipv4.addr = n->ipv4;
	p.ipv4.prefix_len = n->prefix_len;
	p.dev_idx = n->dev_idx;
	return p;
}

int usmc_sim_ep_single(usmc_sim *sim, usmc_sim_node *node, usmc_role role,
		       usmc_sim_ep **pep)
{
	usmc_sim_ep *ep = calloc(1, sizeof(*ep));
	usmc_conn_params p = params_of(node, role);
	int rv;

	if (!ep)
		return USMC_ERR_NOMEM;
	ep->sim = sim;
	ep->node = node;
	rv = usmc_conn_new(node->ctx, &p, usmc_sim_now(sim), &ep->conn);
	if (rv) {
		free(ep);
		return rv;
	}
	usmc_conn_set_user(ep->conn, ep);
	ep_register(sim, ep);
	/* the client's Proposal was queued before the user pointer was set */
	ep_flush(ep);
	*pep = ep;
	return 0;
}

int usmc_sim_connect(usmc_sim *sim, usmc_sim_node *cli, usmc_sim_node *srv,
		     usmc_sim_ep **pcli, usmc_sim_ep **psrv)
{
	usmc_sim_ep *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
	usmc_conn_params pc = params_of(cli, USMC_ROLE_CLIENT);
	usmc_conn_params ps = params_of(srv, USMC_ROLE_SERVER);
	int rv;

	if (!c || !s) {
		free(c);
		free(s);
		return USMC_ERR_NOMEM;
	}
	pc.peer_ipv4 = ps.ipv4.addr;
	ps.peer_ipv4 = pc.ipv4.addr;
	c->sim = s->sim = sim;
	c->node = cli;
	s->node = srv;
	c->peer = s;
	s->peer = c;
	rv = usmc_conn_new(srv->ctx, &ps, usmc_sim_now(sim), &s->conn);
	if (rv) {
		free(c);
		free(s);
		return rv;
	}
	usmc_conn_set_user(s->conn, s);
	rv = usmc_conn_new(cli->ctx, &pc, usmc_sim_now(sim), &c->conn);
	if (rv) {
		usmc_conn_del(s->conn);
		free(c);
		free(s);
		return rv;
	}
	usmc_conn_set_user(c->conn, c);
	ep_register(sim, c);
	ep_register(sim, s);
	ep_flush(c);
	*pcli = c;
	*psrv = s;
	return 0;
}

void usmc_sim_ep_del(usmc_sim_ep *ep)
{
	usmc_sim *sim = ep->sim;

	for (clc_ev **pp = &sim->clc; *pp;) {
		clc_ev *e = *pp;

		if (e->to == ep) {
			*pp = e->next;
			free(e->data);
			free(e);
		} else {
			pp = &e->next;
		}
	}
	if (ep->peer)
		ep->peer->peer = NULL;
	for (sim_epl **pp = &sim->eps; *pp; pp = &(*pp)->next) {
		if ((*pp)->ep == ep) {
			sim_epl *l = *pp;

			*pp = l->next;
			free(l);
			break;
		}
	}
	if (ep->conn)
		usmc_conn_del(ep->conn);
	free(ep);
}

void usmc_sim_node_del(usmc_sim_node *node)
{
	usmc_sim *sim = node->sim;

	for (sim_epl *l = sim->eps; l; l = l->next)
		if (l->ep->node == node)
			l->ep->conn = NULL;
	if (node->ctx)
		usmc_ctx_del(node->ctx);
	node->ctx = NULL;
}

void usmc_sim_del(usmc_sim *sim)
{
	if (!sim)
		return;
	while (sim->eps)
		usmc_sim_ep_del(sim->eps->ep);
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		usmc_sim_node_del(n);
	while (sim->forged) {
		sim_forged *f = sim->forged;

		sim->forged = f->next;
		usmc_tp_free_mr(f->mr);
		free(f);
	}
	while (sim->nodes) {
		usmc_sim_node *n = sim->nodes;

		sim->nodes = n->next;
		while (n->qps) {
			sim_qp *q = n->qps;

			n->qps = q->next;
			qp_free(q);
		}
		for (unsigned int d = 0; d < n->ndev; d++)
			usmc_tp_close(n->dev[d]);
		free(n);
	}
	while (sim->clc) {
		clc_ev *e = sim->clc;

		sim->clc = e->next;
		free(e->data);
		free(e);
	}
	usmc_tp_sim_world_del(sim->w);
	free(sim);
}

/* A SEND posted on |from|'s QP as its core would, from a buffer of the
 * harness's own (freed at its completion, which the core never sees). */
int usmc_sim_inject_send(usmc_sim *sim, usmc_link *from, const uint8_t *msg,
			 size_t len)
{
	sim_forged *f;
	sim_qp *q;
	usmc_wr wr;
	int rv;

	sim_drain(sim); /* after what |from|'s core queued */
	q = from ? usmc_link_get_user(from) : NULL;
	if (!q || usmc_tp_qp_state(q->qp) != USMC_QPS_RTS)
		return USMC_ERR_INVALID_STATE;
	f = calloc(1, sizeof(*f));
	if (!f)
		return USMC_ERR_NOMEM;
	rv = usmc_tp_alloc_mr(q->qp->tp, len ? len : 1, USMC_ACCESS_LOCAL_WRITE,
			      &f->mr);
	if (rv) {
		free(f);
		return rv;
	}
	memcpy(f->mr->addr, msg, len);
	memset(&wr, 0, sizeof(wr));
	f->wr_id = SIM_FORGED | ++sim->forged_seq;
	wr.wr_id = f->wr_id;
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = len ? 1 : 0;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)f->mr->addr;
	wr.sg_list[0].length = (uint32_t)len;
	wr.sg_list[0].lkey = f->mr->lkey;
	rv = usmc_tp_post_send(q->qp, &wr);
	if (rv) {
		usmc_tp_free_mr(f->mr);
		free(f);
		return rv;
	}
	f->next = sim->forged;
	sim->forged = f;
	return 0;
}

const usmc_sim_trace *usmc_sim_get_trace(const usmc_sim *sim, size_t *n)
{
	*n = sim->ntrace;
	return sim->trace;
}

void usmc_sim_trace_clear(usmc_sim *sim)
{
	sim->ntrace = 0;
}

int usmc_sim_node_index(const usmc_sim_node *node)
{
	return node->idx;
}

void usmc_sim_set_delay_prob(usmc_sim *sim, double p)
{
	usmc_tp_sim_world_set_loss(sim->w, (uint32_t)(p * 1000000.0 + 0.5));
}

void usmc_sim_node_set_faults(usmc_sim_node *node, usmc_fault_sched *f)
{
	node->fired_before = usmc_sim_node_faults_fired(node);
	for (unsigned int d = 0; d < node->ndev; d++)
		usmc_fault_set_sched(node->dev[d], f);
}

void usmc_sim_node_set_dev_faults(usmc_sim_node *node, unsigned int dev,
				  usmc_fault_sched *f)
{
	if (dev < node->ndev)
		usmc_fault_set_sched(node->dev[dev], f);
}

uint64_t usmc_sim_node_faults_fired(const usmc_sim_node *node)
{
	uint64_t n = node->fired_before;

	for (unsigned int d = 0; d < node->ndev; d++) {
		usmc_fault_stats fs;

		if (!usmc_fault_get_stats(node->dev[d], &fs))
			n += fs.fired;
	}
	return n;
}

void usmc_sim_set_blackhole(usmc_sim_node *node, int on)
{
	node->blackhole = on;
}

void usmc_sim_set_link_down(usmc_sim_node *a, usmc_sim_node *b, int down)
{
	for (unsigned int i = 0; i < a->ndev; i++)
		for (unsigned int j = 0; j < b->ndev; j++)
			usmc_tp_sim_path_set(usmc_fault_inner(a->dev[i]),
					     usmc_fault_inner(b->dev[j]),
					     !down);
}

void usmc_sim_set_dev_path_down(usmc_sim_node *a, unsigned int da,
				usmc_sim_node *b, unsigned int db, int down)
{
	if (da < a->ndev && db < b->ndev)
		usmc_tp_sim_path_set(usmc_fault_inner(a->dev[da]),
				     usmc_fault_inner(b->dev[db]), !down);
}

void usmc_sim_fail_alloc_at(usmc_sim *sim, long n)
{
	sim->fail_at = n < 0 ? -1 : sim->alloc_n + n;
}

long usmc_sim_alloc_count(const usmc_sim *sim)
{
	return sim->alloc_n;
}
