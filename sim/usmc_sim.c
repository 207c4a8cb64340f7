/* SPDX-License-Identifier: MIT */
/* The deterministic in-process fabric; see usmc_sim.h. */
#include "usmc_sim.h"

#include <stdlib.h>
#include <string.h>

#include "usmc_clc.h"

#define SIM_LATENCY	(10 * 1000ull) /* 10 us per message */
#define SIM_JITTER	5000u
#define SIM_RETRANSMIT	(134 * USMC_NS_PER_MS) /* timeout 15 */
#define SIM_RNR_DELAY	(1 * USMC_NS_PER_MS)
#define SIM_TCP_LATENCY (20 * 1000ull)

enum { QP_INIT = 1, QP_RTR, QP_RTS, QP_ERR };
enum { EV_WR = 1, EV_CLC };

typedef struct sim_mr {
	struct sim_mr *next;
	uint8_t *mem;
	size_t len;
	uint64_t iova;
	uint32_t key;
	uint32_t access;
	unsigned int dev; /* the device it is registered with */
} sim_mr;

typedef struct sim_qp {
	struct sim_qp *next;
	usmc_sim_node *node;
	usmc_link *link;
	uint32_t qpn;
	int state;
	uint32_t peer_qpn;
	uint8_t peer_gid[16];
	usmc_tstamp last_t;
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
	usmc_fault_sched *fault; /* usmc_sim_node_set_faults */
	uint64_t fault_fired;
	uint32_t ipv4;
	uint8_t prefix_len;
	unsigned int dev_idx; /* device of its next connections */
	sim_mr *mrs;
	sim_qp *qps;
};

typedef struct sim_ev {
	struct sim_ev *prev, *next;
	usmc_tstamp t;
	uint64_t seq;
	int kind;
	uint32_t src_qpn;
	usmc_wr wr;
	usmc_sim_ep *to;
	uint8_t *data;
	size_t len;
} sim_ev;

typedef struct sim_down {
	struct sim_down *next;
	usmc_sim_node *a, *b;
} sim_down;

typedef struct sim_epl {
	struct sim_epl *next;
	usmc_sim_ep *ep;
} sim_epl;

struct usmc_sim {
	uint64_t rng;
	usmc_tstamp now;
	sim_ev *head, *tail;
	uint64_t seq;
	usmc_sim_node *nodes;
	int nnodes;
	sim_epl *eps;
	sim_down *down;
	usmc_sim_stats st;
	double delay_p;
	long fail_at, alloc_n;
	uint32_t next_qpn, next_key;
	uint64_t next_iova;
	usmc_sim_trace trace[4096];
	size_t ntrace;
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
	if (p)
		n->live_allocs++;
	return p;
}

static void *cb_calloc(size_t c, size_t size, void *user)
{
	usmc_sim_node *n = user;
	void *p;

	if (alloc_fails(n->sim))
		return NULL;
	p = calloc(c, size);
	if (p)
		n->live_allocs++;
	return p;
}

static void cb_free(void *ptr, void *user)
{
	usmc_sim_node *n = user;

	if (!ptr)
		return;
	n->live_allocs--;
	free(ptr);
}

static void cb_rand(uint8_t *buf, size_t len, void *user)
{
	usmc_sim_node *n = user;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rnd(n->sim);
}

static int cb_alloc_mr(void *user, unsigned int dev_idx, size_t length,
		       uint32_t access, usmc_mr *mr)
{
	usmc_sim_node *n = user;
	usmc_sim *sim = n->sim;
	sim_mr *m;

	if (alloc_fails(sim))
		return USMC_ERR_NOMEM;
	m = calloc(1, sizeof(*m));
	if (!m)
		return USMC_ERR_NOMEM;
	m->mem = calloc(1, length ? length : 1);
	if (!m->mem) {
		free(m);
		return USMC_ERR_NOMEM;
	}
	m->len = length;
	/* an IOVA unrelated to the address, so local/remote mix-ups fail */
	m->iova = ((uint64_t)(n->idx + 1) << 40) + sim->next_iova;
	sim->next_iova += (length + 8191) & ~(uint64_t)4095;
	m->key = sim->next_key;
	sim->next_key += 0x101;
	m->access = access;
	m->dev = dev_idx;
	m->next = n->mrs;
	n->mrs = m;
	n->live_mrs++;
	sim->st.mrs++;
	memset(mr, 0, sizeof(*mr));
	mr->addr = m->mem;
	mr->length = length;
	mr->iova = m->iova;
	mr->lkey = mr->rkey = m->key;
	mr->handle = m;
	return 0;
}

static void cb_free_mr(void *user, usmc_mr *mr)
{
	usmc_sim_node *n = user;

	for (sim_mr **pp = &n->mrs; *pp; pp = &(*pp)->next) {
		if (*pp == mr->handle) {
			sim_mr *m = *pp;

			*pp = m->next;
			free(m->mem);
			free(m);
			n->live_mrs--;
			n->sim->st.mr_frees++;
			return;
		}
	}
}

/* ---- queue pairs ---- */

static sim_qp *find_qp(usmc_sim *sim, uint32_t qpn)
{
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		for (sim_qp *q = n->qps; q; q = q->next)
			if (q->qpn == qpn)
				return q;
	return NULL;
}

static int cb_create_qp(void *user, usmc_link *link, usmc_link_qp_info *out)
{
	usmc_sim_node *n = user;
	sim_qp *q;

	if (alloc_fails(n->sim))
		return USMC_ERR_NOMEM;
	q = calloc(1, sizeof(*q));
	if (!q)
		return USMC_ERR_NOMEM;
	q->node = n;
	q->link = link;
	q->qpn = n->sim->next_qpn++;
	q->state = QP_INIT;
	q->next = n->qps;
	n->qps = q;
	n->sim->st.qps++;
	usmc_link_set_user(link, q);
	out->qp_num = q->qpn;
	return 0;
}

static int cb_link_ready(void *user, usmc_link *link,
			 const usmc_link_peer *peer, int to_rts)
{
	sim_qp *q = usmc_link_get_user(link);

	(void)user;
	if (!q)
		return USMC_ERR_INVALID_STATE;
	if (!to_rts) {
		if (q->state != QP_INIT || peer->path_mtu < USMC_IB_MTU_256 ||
		    peer->path_mtu > USMC_IB_MTU_4096 || peer->qp_num < 2)
			return USMC_ERR_INVALID_STATE;
		q->peer_qpn = peer->qp_num;
		memcpy(q->peer_gid, peer->gid, 16);
		q->state = QP_RTR;
		return 0;
	}
	if (q->state != QP_RTR)
		return USMC_ERR_INVALID_STATE;
	q->state = QP_RTS;
	return 0;
}

static void cb_destroy_qp(void *user, usmc_link *link)
{
	usmc_sim_node *n = user;
	sim_qp *q = usmc_link_get_user(link);

	for (sim_qp **pp = &n->qps; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			free(q->rq);
			free(q);
			n->sim->st.qp_destroys++;
			break;
		}
	}
	usmc_link_set_user(link, NULL);
}

static void ev_insert(usmc_sim *sim, sim_ev *e)
{
	sim_ev *p = sim->tail;

	e->seq = sim->seq++;
	while (p && p->t > e->t)
		p = p->prev;
	e->prev = p;
	e->next = p ? p->next : sim->head;
	if (e->next)
		e->next->prev = e;
	else
		sim->tail = e;
	if (p)
		p->next = e;
	else
		sim->head = e;
}

static void ev_unlink(usmc_sim *sim, sim_ev *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		sim->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		sim->tail = e->prev;
}

static usmc_tstamp latency(usmc_sim *sim)
{
	usmc_tstamp t = SIM_LATENCY + rnd(sim) % SIM_JITTER;

	if (sim->delay_p > 0 &&
	    (double)(rnd(sim) % 1000000) < sim->delay_p * 1000000.0)
		t += SIM_RETRANSMIT;
	return t;
}

/* The node's fault schedule (transport/fault/usmc_fault_sched.h) on the
 * virtual clock. The fabric has no packets: one posted message stands for
 * one packet, and what RC makes of a lost, corrupted or reordered packet
 * (a retransmission) shows as delay, a duplicate as nothing. QP and device
 * faults put the node's QPs in error (no async events here: the flushes
 * take the link down). Faults by time alone apply at the next post.
 * Returns a post error, or 0 and the extra delay in |extra|. */
static int sim_fault(usmc_sim_node *n, sim_qp *q, const usmc_wr *wr,
		     usmc_tstamp *extra)
{
	usmc_fault_sched *f = n->fault;
	usmc_tstamp now = n->sim->now;
	const usmc_fault_clause *c;
	int i, up;

	*extra = 0;
	while ((i = usmc_fault_sched_timed(f, now, &up)) >= 0) {
		n->fault_fired++;
		if (up)
			continue;
		for (sim_qp *p = n->qps; p; p = p->next)
			if (f->c[i].kind != USMC_FAULT_QP_ERROR ||
			    !f->c[i].has_qpn || f->c[i].qpn == p->qpn)
				p->state = QP_ERR;
	}
	i = usmc_fault_sched_on(f, USMC_FAULT_ON_POST, (int)wr->opcode, q->qpn,
				now);
	if (i >= 0) {
		n->fault_fired++;
		if (f->c[i].kind == USMC_FAULT_FAIL_POST)
			return USMC_ERR_TRANSPORT;
		if (f->c[i].kind == USMC_FAULT_QP_ERROR)
			q->state = QP_ERR;
		else
			for (sim_qp *p = n->qps; p; p = p->next)
				p->state = QP_ERR;
	}
	i = usmc_fault_sched_on(f, USMC_FAULT_ON_PKT, 0, 0, now);
	if (i < 0)
		return 0;
	n->fault_fired++;
	c = &f->c[i];
	if (c->kind == USMC_FAULT_DELAY)
		*extra = c->by_ns;
	else if (c->kind != USMC_FAULT_DUPLICATE)
		*extra = SIM_RETRANSMIT;
	return 0;
}

/* ---- work requests, pulled from the cores (usmc_ctx_next_wr) ---- */

static int sim_post_send(usmc_sim_node *n, usmc_link *link, const usmc_wr *wr)
{
	sim_qp *q = usmc_link_get_user(link);
	usmc_tstamp extra = 0;
	sim_ev *e;
	int rv;

	if (!q || q->state != QP_RTS)
		return USMC_ERR_INVALID_STATE;
	if (wr->num_sge > USMC_WR_MAX_SGE)
		return USMC_ERR_INVALID_ARGUMENT;
	if (n->fault) {
		rv = sim_fault(n, q, wr, &extra);
		if (rv)
			return rv;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return USMC_ERR_NOMEM;
	e->kind = EV_WR;
	e->src_qpn = q->qpn;
	e->wr = *wr;
	e->t = n->sim->now + latency(n->sim) + extra;
	if (e->t < q->last_t)
		e->t = q->last_t; /* RC: in order per QP */
	q->last_t = e->t;
	ev_insert(n->sim, e);
	return 0;
}

static int sim_post_recv(usmc_link *link, const usmc_recv_wr *wr)
{
	sim_qp *q = usmc_link_get_user(link);

	if (!q || q->state == QP_ERR)
		return USMC_ERR_INVALID_STATE;
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

/* Posts what |n|'s core queued, as a driver does after each core call. A
 * post that fails (a fault schedule's fail-post, a QP in error) goes back
 * to the core as its own input, once the call that queued it returned. */
static void node_drain(usmc_sim_node *n)
{
	usmc_link_wr w;

	while (n->ctx && usmc_ctx_next_wr(n->ctx, &w) == 1) {
		int rv = w.kind == USMC_WRK_RECV
				 ? sim_post_recv(w.link, &w.wr.recv)
				 : sim_post_send(n, w.link, &w.wr.send);

		if (rv)
			usmc_link_post_failed(w.link,
					      w.kind == USMC_WRK_RECV
						      ? w.wr.recv.wr_id
						      : w.wr.send.wr_id,
					      rv, n->sim->now);
	}
}

/* Every node's: the tests call the cores directly, so the fabric drains
 * before it runs anything, and after each core call it makes itself. */
static void sim_drain(usmc_sim *sim)
{
	for (usmc_sim_node *n = sim->nodes; n; n = n->next)
		node_drain(n);
}

/* ---- CLC pipes ---- */

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
		rv = usmc_conn_clc_recv(ep->conn, ep->in, n, ep->sim->now);
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
		sim_ev *e = calloc(1, sizeof(*e));

		if (e) {
			e->kind = EV_CLC;
			e->to = ep->peer;
			e->data = malloc(len);
			memcpy(e->data, d, len);
			e->len = len;
			e->t = ep->sim->now + SIM_TCP_LATENCY;
			ev_insert(ep->sim, e);
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

/* ---- fabric execution ---- */

static int is_down(usmc_sim *sim, usmc_sim_node *a, usmc_sim_node *b)
{
	for (sim_down *d = sim->down; d; d = d->next)
		if ((d->a == a && d->b == b) || (d->a == b && d->b == a))
			return 1;
	return 0;
}

static sim_mr *find_mr(usmc_sim_node *n, uint32_t key)
{
	for (sim_mr *m = n->mrs; m; m = m->next)
		if (m->key == key)
			return m;
	return NULL;
}

/* A local SGE must lie inside the MR its lkey names. */
static const uint8_t *sge_ptr(usmc_sim_node *n, const usmc_sge *s)
{
	sim_mr *m = find_mr(n, s->lkey);
	uintptr_t a = (uintptr_t)s->addr;

	if (!m || a < (uintptr_t)m->mem ||
	    a + s->length > (uintptr_t)m->mem + m->len)
		return NULL;
	return (const uint8_t *)a;
}

static void complete(usmc_sim *sim, uint32_t qpn, uint64_t wr_id,
		     usmc_wc_status st, usmc_wc_opcode op, uint32_t len)
{
	sim_qp *q = find_qp(sim, qpn);
	usmc_wc wc;

	if (!q)
		return;
	if (st != USMC_WC_SUCCESS)
		q->state = QP_ERR;
	memset(&wc, 0, sizeof(wc));
	wc.wr_id = wr_id;
	wc.status = st;
	wc.opcode = op;
	wc.byte_len = len;
	wc.qp_num = qpn;
	usmc_link_on_wc(q->link, &wc, sim->now);
	sim_drain(sim);
}

static void exec_wr(usmc_sim *sim, sim_ev *e)
{
	static uint8_t data[1 << 24];
	sim_qp *src = find_qp(sim, e->src_qpn), *dst;
	const usmc_wr *wr = &e->wr;
	usmc_wc_opcode op =
		wr->opcode == USMC_WR_SEND ? USMC_WC_SEND : USMC_WC_RDMA_WRITE;
	size_t total = 0;

	if (!src)
		return;
	if (src->state == QP_ERR) {
		complete(sim, src->qpn, wr->wr_id, USMC_WC_WR_FLUSH_ERR, op, 0);
		return;
	}
	dst = find_qp(sim, src->peer_qpn);
	if (!dst || dst->peer_qpn != src->qpn || dst->state < QP_RTR ||
	    dst->state == QP_ERR || is_down(sim, src->node, dst->node)) {
		complete(sim, src->qpn, wr->wr_id, USMC_WC_RETRY_EXC_ERR, op,
			 0);
		return;
	}
	if (e->data) { /* forged: inline payload */
		total = e->len < sizeof(data) ? e->len : sizeof(data);
		memcpy(data, e->data, total);
	}
	for (uint32_t i = 0; !e->data && i < wr->num_sge; i++) {
		const uint8_t *p = sge_ptr(src->node, &wr->sg_list[i]);

		if (!p || total + wr->sg_list[i].length > sizeof(data)) {
			sim->st.access_errors++;
			complete(sim, src->qpn, wr->wr_id, USMC_WC_LOC_PROT_ERR,
				 op, 0);
			return;
		}
		memcpy(data + total, p, wr->sg_list[i].length);
		total += wr->sg_list[i].length;
	}
	if (dst->node->blackhole) {
		if (wr->send_flags & USMC_SEND_SIGNALED)
			complete(sim, src->qpn, wr->wr_id, USMC_WC_SUCCESS, op,
				 0);
		return;
	}
	if (wr->opcode == USMC_WR_RDMA_WRITE) {
		sim_mr *m = find_mr(dst->node, wr->rkey);

		/* an rkey is only valid on the device it was made on */
		if (!m || !(m->access & USMC_ACCESS_REMOTE_WRITE) ||
		    (dst->link && m->dev != usmc_link_get_dev_idx(dst->link)) ||
		    wr->remote_addr < m->iova ||
		    wr->remote_addr + total > m->iova + m->len) {
			sim->st.access_errors++;
			complete(sim, src->qpn, wr->wr_id,
				 USMC_WC_REM_ACCESS_ERR, op, 0);
			return;
		}
		memcpy(m->mem + (wr->remote_addr - m->iova), data, total);
		sim->st.writes++;
		sim->st.write_bytes += total;
		if (wr->send_flags & USMC_SEND_SIGNALED)
			complete(sim, src->qpn, wr->wr_id, USMC_WC_SUCCESS, op,
				 0);
		return;
	}
	/* SEND: consume a receive, or RNR-retry (rnr_retry 7: forever) */
	if (!dst->rq_len) {
		sim_ev *again = calloc(1, sizeof(*again));

		sim->st.rnr_retries++;
		if (!again)
			return;
		*again = *e;
		if (e->data) {
			again->data = malloc(e->len);
			if (again->data)
				memcpy(again->data, e->data, e->len);
		}
		again->t = sim->now + SIM_RNR_DELAY;
		if (again->t > src->last_t)
			src->last_t = again->t;
		ev_insert(sim, again);
		return;
	}
	{
		usmc_recv_wr rw = dst->rq[dst->rq_head];
		size_t cap = 0, off = 0;
		uint32_t dqpn = dst->qpn, sqpn = src->qpn;

		dst->rq_head = (dst->rq_head + 1) % dst->rq_cap;
		dst->rq_len--;
		for (uint32_t i = 0; i < rw.num_sge; i++)
			cap += rw.sg_list[i].length;
		if (cap < total) {
			complete(sim, dqpn, rw.wr_id, USMC_WC_LOC_LEN_ERR,
				 USMC_WC_RECV, 0);
			complete(sim, sqpn, wr->wr_id, USMC_WC_REM_INV_REQ_ERR,
				 op, 0);
			return;
		}
		for (uint32_t i = 0; i < rw.num_sge && off < total; i++) {
			uint8_t *p =
				(uint8_t *)sge_ptr(dst->node, &rw.sg_list[i]);
			size_t k = rw.sg_list[i].length;

			if (!p) {
				sim->st.access_errors++;
				complete(sim, dqpn, rw.wr_id,
					 USMC_WC_LOC_PROT_ERR, USMC_WC_RECV, 0);
				return;
			}
			if (k > total - off)
				k = total - off;
			memcpy(p, data + off, k);
			off += k;
		}
		sim->st.sends++;
		sim->st.recvs++;
		if (sim->ntrace < sizeof(sim->trace) / sizeof(sim->trace[0])) {
			usmc_sim_trace *tr = &sim->trace[sim->ntrace++];

			tr->from = src->node->idx;
			memcpy(tr->msg, data,
			       total < sizeof(tr->msg) ? total
						       : sizeof(tr->msg));
			tr->len = (uint32_t)total;
		}
		complete(sim, dqpn, rw.wr_id, USMC_WC_SUCCESS, USMC_WC_RECV,
			 (uint32_t)total);
		if (wr->send_flags & USMC_SEND_SIGNALED)
			complete(sim, sqpn, wr->wr_id, USMC_WC_SUCCESS, op, 0);
	}
}

static void exec_ev(usmc_sim *sim, sim_ev *e)
{
	ev_unlink(sim, e);
	if (e->kind == EV_WR) {
		exec_wr(sim, e);
	} else if (e->to) {
		usmc_sim_ep *ep = e->to;
		size_t n = e->len;

		if (n > sizeof(ep->in) - ep->in_len)
			n = sizeof(ep->in) - ep->in_len;
		memcpy(ep->in + ep->in_len, e->data, n);
		ep->in_len += n;
		ep_deliver(ep);
	}
	free(e->data);
	free(e);
}

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

static int step(usmc_sim *sim, usmc_tstamp until, int stop_idle)
{
	usmc_tstamp te, tt, t;

	sim_drain(sim); /* what the test's own core calls queued */
	te = sim->head ? sim->head->t : USMC_TSTAMP_NONE;
	tt = timers_next(sim);
	t = te < tt ? te : tt;
	if (stop_idle && !sim->head && tt > sim->now)
		return 0;
	if (t == USMC_TSTAMP_NONE || t > until)
		return -1;
	if (t > sim->now)
		sim->now = t;
	if (te <= tt) {
		exec_ev(sim, sim->head);
	} else {
		for (usmc_sim_node *n = sim->nodes; n; n = n->next)
			if (n->ctx && usmc_ctx_get_expiry(n->ctx) <= sim->now) {
				usmc_ctx_handle_expiry(n->ctx, sim->now);
				sim_drain(sim);
			}
	}
	return 1;
}

void usmc_sim_run(usmc_sim *sim, usmc_tstamp until)
{
	while (step(sim, until, 0) > 0)
		;
	if (until != USMC_TSTAMP_NONE && until > sim->now)
		sim->now = until;
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
	sim->now = USMC_NS_PER_SEC;
	sim->fail_at = -1;
	sim->next_qpn = 0x11;
	sim->next_key = 0x1234;
	return sim;
}

usmc_tstamp usmc_sim_now(const usmc_sim *sim)
{
	return sim->now;
}

const usmc_sim_stats *usmc_sim_get_stats(const usmc_sim *sim)
{
	return &sim->st;
}

usmc_sim_node *usmc_sim_node_new(usmc_sim *sim, const usmc_settings *s)
{
	static const usmc_callbacks cb = {
		.malloc = cb_malloc,
		.free = cb_free,
		.calloc = cb_calloc,
		.rand = cb_rand,
		.alloc_mr = cb_alloc_mr,
		.free_mr = cb_free_mr,
		.link_create_qp = cb_create_qp,
		.link_ready = cb_link_ready,
		.link_destroy_qp = cb_destroy_qp,
		.conn_event = cb_conn_event,
	};
	usmc_sim_node *n = calloc(1, sizeof(*n));
	usmc_settings st;
	uint8_t id;

	if (!n)
		return NULL;
	n->sim = sim;
	n->idx = ++sim->nnodes;
	n->ipv4 = 0x0a000000u | (uint32_t)n->idx;
	n->prefix_len = 24;
	id = (uint8_t)n->idx;
	if (s)
		st = *s;
	else
		usmc_settings_default(&st);
	/* one device unless |s| asks for more; each gets an IPv4-mapped GID
	 * ::ffff:10.<dev>.0.<node> and a local MAC 02:00:00:00:<dev>:<node> */
	if (st.ndevices < 1 || st.ndevices > USMC_DEVICES_MAX)
		st.ndevices = 1;
	for (unsigned int d = 0; d < st.ndevices; d++) {
		usmc_device_info *dv = &st.devices[d];

		memset(dv->gid, 0, 16);
		dv->gid[10] = dv->gid[11] = 0xff;
		dv->gid[12] = 10;
		dv->gid[13] = (uint8_t)d;
		dv->gid[15] = id;
		memcpy(dv->mac, "\x02\x00\x00\x00", 4);
		dv->mac[4] = (uint8_t)d;
		dv->mac[5] = id;
		if (!dv->active_mtu)
			dv->active_mtu = USMC_IB_MTU_1024;
	}
	memset(st.system_id, 0, sizeof(st.system_id));
	n->next = sim->nodes;
	sim->nodes = n;
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
	sim_qp *q = find_qp(sim, qpn);

	return q ? q->link : NULL;
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
	rv = usmc_conn_new(node->ctx, &p, sim->now, &ep->conn);
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
	rv = usmc_conn_new(srv->ctx, &ps, sim->now, &s->conn);
	if (rv) {
		free(c);
		free(s);
		return rv;
	}
	usmc_conn_set_user(s->conn, s);
	rv = usmc_conn_new(cli->ctx, &pc, sim->now, &c->conn);
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

	for (sim_ev *e = sim->head, *n; e; e = n) {
		n = e->next;
		if (e->kind == EV_CLC && e->to == ep) {
			ev_unlink(sim, e);
			free(e->data);
			free(e);
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
	while (sim->nodes) {
		usmc_sim_node *n = sim->nodes;

		sim->nodes = n->next;
		while (n->qps) {
			sim_qp *q = n->qps;

			n->qps = q->next;
			free(q->rq);
			free(q);
		}
		while (n->mrs) {
			sim_mr *m = n->mrs;

			n->mrs = m->next;
			free(m->mem);
			free(m);
		}
		free(n);
	}
	while (sim->head) {
		sim_ev *e = sim->head;

		ev_unlink(sim, e);
		free(e->data);
		free(e);
	}
	while (sim->down) {
		sim_down *d = sim->down;

		sim->down = d->next;
		free(d);
	}
	free(sim);
}

int usmc_sim_inject_send(usmc_sim *sim, usmc_link *from, const uint8_t *msg,
			 size_t len)
{
	sim_qp *q;
	sim_ev *e;

	sim_drain(sim); /* after what |from|'s core queued */
	q = from ? usmc_link_get_user(from) : NULL;
	if (!q || q->state != QP_RTS)
		return USMC_ERR_INVALID_STATE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return USMC_ERR_NOMEM;
	e->data = malloc(len ? len : 1);
	if (!e->data) {
		free(e);
		return USMC_ERR_NOMEM;
	}
	memcpy(e->data, msg, len);
	e->len = len;
	e->kind = EV_WR;
	e->src_qpn = q->qpn;
	e->wr.opcode = USMC_WR_SEND;
	e->wr.wr_id = 0xf0f0f0f0f0f0ull; /* no completion for the sender */
	e->t = sim->now + SIM_LATENCY;
	if (e->t < q->last_t)
		e->t = q->last_t;
	q->last_t = e->t;
	ev_insert(sim, e);
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
	sim->delay_p = p;
}

void usmc_sim_node_set_faults(usmc_sim_node *node, usmc_fault_sched *f)
{
	node->fault = f;
}

uint64_t usmc_sim_node_faults_fired(const usmc_sim_node *node)
{
	return node->fault_fired;
}

void usmc_sim_set_blackhole(usmc_sim_node *node, int on)
{
	node->blackhole = on;
}

void usmc_sim_set_link_down(usmc_sim_node *a, usmc_sim_node *b, int down)
{
	usmc_sim *sim = a->sim;

	if (down) {
		sim_down *d = calloc(1, sizeof(*d));

		if (!d)
			return;
		d->a = a;
		d->b = b;
		d->next = sim->down;
		sim->down = d;
		return;
	}
	for (sim_down **pp = &sim->down; *pp;) {
		sim_down *d = *pp;

		if ((d->a == a && d->b == b) || (d->a == b && d->b == a)) {
			*pp = d->next;
			free(d);
		} else {
			pp = &d->next;
		}
	}
}

void usmc_sim_fail_alloc_at(usmc_sim *sim, long n)
{
	sim->fail_at = n < 0 ? -1 : sim->alloc_n + n;
}

long usmc_sim_alloc_count(const usmc_sim *sim)
{
	return sim->alloc_n;
}
