/* SPDX-License-Identifier: MIT */
/*
 * The verbs backend: RC QPs, posts and the CQ. The ops table's contract
 * goes beyond what verbs promises in three places, kept here:
 * - posts are checked (state, SGE count, lkeys and bounds, inline size,
 *   queue room as the caller sized it) and refused with a named code,
 *   where an RNIC would fail the WR later or take more than was asked;
 * - a WR posted to a QP in ERR completes with WR_FLUSH_ERR (IB spec) here,
 *   behind the WRs the RNIC still flushes, since not every provider sees
 *   such a post (rxe gets no doorbell for a user QP's receives);
 * - destroy_qp flushes what is outstanding first: the QP goes to ERR and
 *   the CQ is drained (into the device's backlog) until the RNIC returned
 *   every WR, so the caller sees each WR complete once.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "verbs_int.h"

static vb_qp *qp_of(const usmc_tp_qp *qp)
{
	return (vb_qp *)qp;
}

static uint32_t ring_count(const vb_ring *r)
{
	return (uint32_t)(r->tail - r->head);
}

static vb_ent *ring_at(vb_ring *r, uint64_t seq)
{
	return &r->e[seq % r->cap];
}

vb_qp *vb_qp_by_num(vb_dev *d, uint32_t qpn)
{
	for (uint32_t i = 0; i < d->nqps; i++)
		if (d->qps[i] && d->qps[i]->qp->qp_num == qpn)
			return d->qps[i];
	return NULL;
}

void vb_qp_set_err(vb_qp *q)
{
	if (q->pub.state != USMC_QPS_RESET)
		q->pub.state = USMC_QPS_ERR;
}

static int backlog_names(const vb_dev *d, uint32_t qpn)
{
	return usmc_tp_wcq_names(&d->bl, qpn);
}

/* A QP whose number no completion in the backlog names: the RNIC may
 * hand a destroyed QP's number out again at once (verbs allows it), and
 * that QP's flushes must not reach the new one. Up to 8 tries; the ones
 * passed over are destroyed after. */
static struct ibv_qp *create_fresh_qp(vb_dev *d, struct ibv_qp_init_attr *ia)
{
	struct ibv_qp *held[8], *qp = NULL;
	int n = 0, err;

	while (n < 8) {
		struct ibv_qp_init_attr a = *ia;

		qp = ibv_create_qp(d->pd, &a);
		if (!qp || !d->bl.n || !backlog_names(d, qp->qp_num)) {
			*ia = a;
			break;
		}
		held[n++] = qp;
		qp = NULL;
	}
	err = qp ? 0 : n == 8 ? EBUSY : errno;

	while (n--)
		ibv_destroy_qp(held[n]);
	errno = err;
	return qp;
}

int vb_create_qp(usmc_tp *tp, const usmc_qp_init_attr *a, usmc_tp_qp **pqp)
{
	vb_dev *d = vb_of(tp);
	struct ibv_qp_init_attr ia;
	uint32_t need, slot;
	vb_qp *q;

	*pqp = NULL;
	if (!a || !a->max_send_wr || !a->max_recv_wr ||
	    a->max_send_sge > USMC_WR_MAX_SGE ||
	    a->max_recv_sge > USMC_WR_MAX_SGE ||
	    a->max_send_wr > (uint32_t)d->dattr.max_qp_wr ||
	    a->max_recv_wr > (uint32_t)d->dattr.max_qp_wr ||
	    a->max_inline_data > d->max_inline)
		return USMC_ERR_INVALID_ARGUMENT;
	if (d->dead)
		return USMC_ERR_CLOSED;
	/* every WR of every QP may complete into the one CQ: an overrun
	 * would lose completions (and raise CQ_ERR), so refuse up front */
	need = a->max_send_wr + a->max_recv_wr;
	if (d->cq_used + need > (uint32_t)d->cqe)
		return USMC_ERR_LIMIT;
	for (slot = 0; slot < d->nqps && d->qps[slot]; slot++)
		;
	if (slot == d->nqps) {
		uint32_t n = d->nqps ? d->nqps * 2 : 8;
		vb_qp **t = realloc(d->qps, n * sizeof(*t));

		if (!t)
			return USMC_ERR_NOMEM;
		memset(t + d->nqps, 0, (n - d->nqps) * sizeof(*t));
		d->qps = t;
		d->nqps = n;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return USMC_ERR_NOMEM;
	q->sq.cap = a->max_send_wr;
	q->rq.cap = a->max_recv_wr;
	q->sq.e = calloc(q->sq.cap, sizeof(vb_ent));
	q->rq.e = calloc(q->rq.cap, sizeof(vb_ent));
	if (!q->sq.e || !q->rq.e) {
		free(q->sq.e);
		free(q->rq.e);
		free(q);
		return USMC_ERR_NOMEM;
	}
	memset(&ia, 0, sizeof(ia));
	ia.send_cq = ia.recv_cq = d->cq;
	ia.qp_type = IBV_QPT_RC;
	ia.sq_sig_all = 0;
	ia.cap.max_send_wr = a->max_send_wr;
	ia.cap.max_recv_wr = a->max_recv_wr;
	/* 0 SGEs: as softroce, up to USMC_WR_MAX_SGE */
	ia.cap.max_send_sge =
		a->max_send_sge ? a->max_send_sge : USMC_WR_MAX_SGE;
	ia.cap.max_recv_sge =
		a->max_recv_sge ? a->max_recv_sge : USMC_WR_MAX_SGE;
	ia.cap.max_inline_data = a->max_inline_data;
	q->qp = create_fresh_qp(d, &ia);
	if (!q->qp) {
		d->pub.last_errno = errno;
		free(q->sq.e);
		free(q->rq.e);
		free(q);
		return usmc_verbs_err(d->pub.last_errno);
	}
	q->pub.tp = tp;
	q->d = d;
	q->pub.context = a->context;
	q->pub.qp_num = q->qp->qp_num;
	q->pub.state = USMC_QPS_RESET;
	q->cap = *a;
	d->qps[slot] = q;
	d->cq_used += need;
	*pqp = &q->pub;
	return 0;
}

static enum ibv_qp_state to_ibv_state(usmc_qp_state s)
{
	switch (s) {
	case USMC_QPS_RESET:
		return IBV_QPS_RESET;
	case USMC_QPS_INIT:
		return IBV_QPS_INIT;
	case USMC_QPS_RTR:
		return IBV_QPS_RTR;
	case USMC_QPS_RTS:
		return IBV_QPS_RTS;
	default:
		return IBV_QPS_ERR;
	}
}

/* The RNIC's view: a QP in RTR/RTS may have gone to ERR on its own (a
 * responder that NAKed a bad WRITE sees no completion for it). */
usmc_qp_state vb_qp_state(const usmc_tp_qp *pub)
{
	vb_qp *q = qp_of(pub);
	struct ibv_qp_init_attr ia;
	struct ibv_qp_attr qa;

	if (q->pub.state != USMC_QPS_RTR && q->pub.state != USMC_QPS_RTS)
		return q->pub.state;
	if (ibv_query_qp(q->qp, &qa, IBV_QP_STATE, &ia))
		return q->pub.state;
	if (qa.qp_state == IBV_QPS_ERR || qa.qp_state == IBV_QPS_SQE)
		q->pub.state = USMC_QPS_ERR;
	return q->pub.state;
}

/* Outstanding WRs vanish without completions in RESET (IB spec); their
 * stale completions, if any, no longer match a ring entry. */
static void rings_reset(vb_qp *q)
{
	for (vb_ring *r = &q->sq; r; r = r == &q->sq ? &q->rq : NULL)
		r->head = r->tail;
	q->d->nsoft -= q->nsoft;
	q->nsoft = 0;
}

int vb_modify_qp(usmc_tp_qp *pub, const usmc_qp_attr *a)
{
	vb_qp *q = qp_of(pub);
	vb_dev *d = q->d;
	usmc_qp_state cur = vb_qp_state(pub);
	struct ibv_qp_attr qa;
	int mask = IBV_QP_STATE, r;

	memset(&qa, 0, sizeof(qa));
	qa.qp_state = to_ibv_state(a->qp_state);
	switch (a->qp_state) {
	case USMC_QPS_RESET:
	case USMC_QPS_ERR:
		break;
	case USMC_QPS_INIT:
		if (cur != USMC_QPS_RESET && cur != USMC_QPS_INIT)
			return USMC_ERR_INVALID_STATE;
		if (a->qp_access_flags &
		    ~(USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE |
		      USMC_ACCESS_REMOTE_READ))
			return USMC_ERR_INVALID_ARGUMENT;
		if (a->qp_access_flags & USMC_ACCESS_LOCAL_WRITE)
			qa.qp_access_flags |= IBV_ACCESS_LOCAL_WRITE;
		if (a->qp_access_flags & USMC_ACCESS_REMOTE_WRITE)
			qa.qp_access_flags |= IBV_ACCESS_REMOTE_WRITE;
		if (a->qp_access_flags & USMC_ACCESS_REMOTE_READ)
			qa.qp_access_flags |= IBV_ACCESS_REMOTE_READ;
		qa.pkey_index = 0;
		qa.port_num = (uint8_t)d->loc.port;
		mask |= IBV_QP_ACCESS_FLAGS | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
		break;
	case USMC_QPS_RTR: {
		struct ibv_port_attr pa;

		if (cur != USMC_QPS_INIT)
			return USMC_ERR_INVALID_STATE;
		if (a->path_mtu < USMC_IB_MTU_256 ||
		    a->path_mtu > USMC_IB_MTU_4096 || !a->dest_qp_num ||
		    a->dest_qp_num > 0xffffff || a->rq_psn > 0xffffff ||
		    a->min_rnr_timer > 31)
			return USMC_ERR_INVALID_ARGUMENT;
		/* a path MTU above the port's: the RNIC would send frames
		 * its netdev cannot carry (rxe follows the netdev's MTU) */
		if (!ibv_query_port(d->ctx, (uint8_t)d->loc.port, &pa) &&
		    a->path_mtu > pa.active_mtu)
			return USMC_ERR_INVALID_ARGUMENT;
		qa.path_mtu = (enum ibv_mtu)a->path_mtu;
		qa.dest_qp_num = a->dest_qp_num;
		qa.rq_psn = a->rq_psn;
		/* as net/smc's smc_ib_modify_qp_rtr: one RDMA READ/atomic
		 * in flight (SMC-R issues none) */
		qa.max_dest_rd_atomic = 1;
		qa.min_rnr_timer = a->min_rnr_timer;
		/* RoCEv2: a GRH-routed address; the destination MAC is the
		 * kernel's to resolve from the GID (ib_resolve_eth_dmac),
		 * so a->dmac is not passed on */
		qa.ah_attr.is_global = 1;
		memcpy(qa.ah_attr.grh.dgid.raw, a->dgid, 16);
		qa.ah_attr.grh.sgid_index = (uint8_t)d->loc.index;
		/* 0 is no usable TTL; the core leaves it to the device */
		qa.ah_attr.grh.hop_limit = a->hop_limit ? a->hop_limit : 64;
		qa.ah_attr.port_num = (uint8_t)d->loc.port;
		qa.ah_attr.sl = 0;
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
			IBV_QP_MIN_RNR_TIMER;
		break;
	}
	case USMC_QPS_RTS:
		if (cur != USMC_QPS_RTR && cur != USMC_QPS_RTS)
			return USMC_ERR_INVALID_STATE;
		if (a->timeout > 31 || a->retry_cnt > 7 || a->rnr_retry > 7 ||
		    a->sq_psn > 0xffffff)
			return USMC_ERR_INVALID_ARGUMENT;
		if (cur == USMC_QPS_RTS) {
			/* RTS -> RTS may not change these (IB spec's
			 * modify QP table; ib_modify_qp_is_ok refuses) */
			if (a->timeout != q->timeout ||
			    a->retry_cnt != q->retry_cnt ||
			    a->rnr_retry != q->rnr_retry ||
			    a->sq_psn != q->sq_psn)
				return USMC_ERR_NOTSUP;
			return 0;
		}
		qa.sq_psn = a->sq_psn;
		qa.timeout = a->timeout;
		qa.retry_cnt = a->retry_cnt;
		qa.rnr_retry = a->rnr_retry;
		qa.max_rd_atomic = 1;
		mask |= IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
		break;
	default:
		return USMC_ERR_INVALID_ARGUMENT;
	}
	r = ibv_modify_qp(q->qp, &qa, mask);
	if (r) {
		d->pub.last_errno = r;
		return usmc_verbs_err(r);
	}
	if (a->qp_state == USMC_QPS_RTS) {
		q->sq_psn = a->sq_psn;
		q->timeout = a->timeout;
		q->retry_cnt = a->retry_cnt;
		q->rnr_retry = a->rnr_retry;
	}
	if (a->qp_state == USMC_QPS_RESET)
		rings_reset(q);
	q->pub.state = a->qp_state;
	return 0;
}

/* ---- posting ---------------------------------------------------------- */

static int check_sges(vb_dev *d, const usmc_sge *sg, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		vb_mr *m = vb_mr_by_lkey(d, sg[i].lkey);
		uint64_t lo, hi;

		if (!m)
			return USMC_ERR_ACCESS;
		lo = (uint64_t)(uintptr_t)m->pub.addr;
		hi = lo + m->pub.length;
		if (sg[i].addr < lo || sg[i].addr > hi ||
		    sg[i].length > hi - sg[i].addr)
			return USMC_ERR_ACCESS;
	}
	return 0;
}

static void push_soft(vb_qp *q, vb_ring *r, uint64_t wr_id, uint8_t op)
{
	vb_ent *e = ring_at(r, r->tail++);

	e->wr_id = wr_id;
	e->opcode = op;
	e->soft = 1;
	q->nsoft++;
	q->d->nsoft++;
}

int vb_post_send(usmc_tp_qp *pub, const usmc_wr *wr)
{
	vb_qp *q = qp_of(pub);
	vb_dev *d = q->d;
	struct ibv_send_wr sw, *bad = NULL;
	struct ibv_sge sge[USMC_WR_MAX_SGE];
	uint32_t max_sge =
		q->cap.max_send_sge ? q->cap.max_send_sge : USMC_WR_MAX_SGE;
	uint8_t wcop = USMC_WC_RDMA_WRITE;
	uint64_t total = 0;
	vb_ent *e;
	int r;

	if (q->pub.state != USMC_QPS_RTS && q->pub.state != USMC_QPS_ERR)
		return USMC_ERR_INVALID_STATE;
	if (wr->num_sge > max_sge)
		return USMC_ERR_INVALID_ARGUMENT;
	memset(&sw, 0, sizeof(sw));
	switch (wr->opcode) {
	case USMC_WR_SEND:
		sw.opcode = IBV_WR_SEND;
		wcop = USMC_WC_SEND;
		break;
	case USMC_WR_RDMA_WRITE:
		sw.opcode = IBV_WR_RDMA_WRITE;
		break;
	case USMC_WR_RDMA_WRITE_WITH_IMM:
		sw.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
		sw.imm_data = htobe32(wr->imm_data);
		break;
	default:
		return USMC_ERR_INVALID_ARGUMENT;
	}
	if (wr->send_flags &
	    ~(USMC_SEND_SIGNALED | USMC_SEND_SOLICITED | USMC_SEND_INLINE))
		return USMC_ERR_INVALID_ARGUMENT;
	for (uint32_t i = 0; i < wr->num_sge; i++)
		total += wr->sg_list[i].length;
	if (wr->send_flags & USMC_SEND_INLINE) {
		if (total > q->cap.max_inline_data)
			return USMC_ERR_INVALID_ARGUMENT;
	}
	/* inline data is copied at post time, from anywhere; the rest must
	 * lie in this device's MRs */
	r = check_sges(d, wr->sg_list, wr->num_sge);
	if (r && !(wr->send_flags & USMC_SEND_INLINE))
		return r;
	if (ring_count(&q->sq) >= q->sq.cap)
		return USMC_ERR_WOULDBLOCK;
	if (q->pub.state == USMC_QPS_ERR) {
		push_soft(q, &q->sq, wr->wr_id, wcop);
		return 0;
	}
	for (uint32_t i = 0; i < wr->num_sge; i++) {
		sge[i].addr = wr->sg_list[i].addr;
		sge[i].length = wr->sg_list[i].length;
		sge[i].lkey = wr->sg_list[i].lkey;
	}
	sw.wr_id = q->sq.tail;
	sw.sg_list = wr->num_sge ? sge : NULL;
	sw.num_sge = (int)wr->num_sge;
	if (wr->send_flags & USMC_SEND_SIGNALED)
		sw.send_flags |= IBV_SEND_SIGNALED;
	if (wr->send_flags & USMC_SEND_SOLICITED)
		sw.send_flags |= IBV_SEND_SOLICITED;
	if (wr->send_flags & USMC_SEND_INLINE)
		sw.send_flags |= IBV_SEND_INLINE;
	if (wr->opcode != USMC_WR_SEND) {
		sw.wr.rdma.remote_addr = wr->remote_addr;
		sw.wr.rdma.rkey = wr->rkey;
	}
	r = ibv_post_send(q->qp, &sw, &bad);
	if (r) {
		d->pub.last_errno = r;
		/* ENOMEM: the RNIC's queue is full */
		return r == ENOMEM ? USMC_ERR_WOULDBLOCK : usmc_verbs_err(r);
	}
	e = ring_at(&q->sq, q->sq.tail++);
	e->wr_id = wr->wr_id;
	e->opcode = wcop;
	e->soft = 0;
	return 0;
}

int vb_post_recv(usmc_tp_qp *pub, const usmc_recv_wr *wr)
{
	vb_qp *q = qp_of(pub);
	vb_dev *d = q->d;
	struct ibv_recv_wr rw, *bad = NULL;
	struct ibv_sge sge[USMC_WR_MAX_SGE];
	uint32_t max_sge =
		q->cap.max_recv_sge ? q->cap.max_recv_sge : USMC_WR_MAX_SGE;
	vb_ent *e;
	int r;

	if (q->pub.state == USMC_QPS_RESET)
		return USMC_ERR_INVALID_STATE;
	if (wr->num_sge > max_sge)
		return USMC_ERR_INVALID_ARGUMENT;
	r = check_sges(d, wr->sg_list, wr->num_sge);
	if (r)
		return r;
	if (ring_count(&q->rq) >= q->rq.cap)
		return USMC_ERR_WOULDBLOCK;
	if (q->pub.state == USMC_QPS_ERR) {
		push_soft(q, &q->rq, wr->wr_id, USMC_WC_RECV);
		return 0;
	}
	for (uint32_t i = 0; i < wr->num_sge; i++) {
		sge[i].addr = wr->sg_list[i].addr;
		sge[i].length = wr->sg_list[i].length;
		sge[i].lkey = wr->sg_list[i].lkey;
	}
	memset(&rw, 0, sizeof(rw));
	rw.wr_id = VB_WRID_RECV | q->rq.tail;
	rw.sg_list = wr->num_sge ? sge : NULL;
	rw.num_sge = (int)wr->num_sge;
	r = ibv_post_recv(q->qp, &rw, &bad);
	if (r) {
		d->pub.last_errno = r;
		return r == ENOMEM ? USMC_ERR_WOULDBLOCK : usmc_verbs_err(r);
	}
	e = ring_at(&q->rq, q->rq.tail++);
	e->wr_id = wr->wr_id;
	e->opcode = USMC_WC_RECV;
	e->soft = 0;
	return 0;
}

/* ---- completions ------------------------------------------------------ */

static void soft_flush(vb_qp *q, vb_ring *r, usmc_wc *out)
{
	vb_ent *e = ring_at(r, r->head++);

	memset(out, 0, sizeof(*out));
	out->wr_id = e->wr_id;
	out->status = USMC_WC_WR_FLUSH_ERR;
	out->opcode = (usmc_wc_opcode)e->opcode;
	out->qp_num = q->qp->qp_num;
	q->nsoft--;
	q->d->nsoft--;
}

/* Soft entries at the head of a ring: their turn has come. */
static int take_soft(vb_dev *d, usmc_wc *wcs, int n)
{
	int k = 0;

	for (uint32_t i = 0; i < d->nqps && d->nsoft && k < n; i++) {
		vb_qp *q = d->qps[i];

		if (!q || !q->nsoft)
			continue;
		for (vb_ring *r = &q->sq; r && k < n;
		     r = r == &q->sq ? &q->rq : NULL)
			while (k < n && r->head != r->tail &&
			       ring_at(r, r->head)->soft)
				soft_flush(q, r, &wcs[k++]);
	}
	return k;
}

/* One RNIC completion into |out|: 1, or 0 for one that names no WR
 * outstanding (a QP reset, or destroyed, since). */
static int translate(vb_dev *d, const struct ibv_wc *w, usmc_wc *out)
{
	vb_qp *q = vb_qp_by_num(d, w->qp_num);
	int recv = !!(w->wr_id & VB_WRID_RECV);
	uint64_t seq = VB_WRID_SEQ(w->wr_id);
	vb_ring *r;
	vb_ent *e;

	if (!q)
		return 0;
	r = recv ? &q->rq : &q->sq;
	if (seq < r->head || seq >= r->tail || ring_at(r, seq)->soft)
		return 0;
	/* RC completes in order: WRs before it completed unsignaled */
	r->head = seq + 1;
	e = ring_at(r, seq);
	memset(out, 0, sizeof(*out));
	out->wr_id = e->wr_id;
	out->status = usmc_verbs_wc_status(w->status);
	out->opcode = (usmc_wc_opcode)e->opcode;
	out->qp_num = w->qp_num;
	if (w->status == IBV_WC_SUCCESS && recv) {
		out->byte_len = w->byte_len;
		if (w->opcode == IBV_WC_RECV_RDMA_WITH_IMM)
			out->opcode = USMC_WC_RECV_RDMA_WITH_IMM;
		if (w->wc_flags & IBV_WC_WITH_IMM) {
			out->wc_flags |= USMC_WC_WITH_IMM;
			out->imm_data = be32toh(w->imm_data);
		}
	}
	/* any error completion leaves the QP in ERR */
	if (w->status != IBV_WC_SUCCESS)
		vb_qp_set_err(q);
	return 1;
}

/* Consumes the channel's events and re-arms the CQ if it is not armed:
 * the fd then turns readable with the next completion. */
static void cq_events(vb_dev *d)
{
	struct ibv_cq *cq;
	void *ctx;
	unsigned int n = 0;

	while (!ibv_get_cq_event(d->ch, &cq, &ctx)) {
		n++;
		d->cq_armed = 0;
	}
	if (n)
		ibv_ack_cq_events(d->cq, n);
}

static int poll_hw(vb_dev *d, usmc_wc *wcs, int n)
{
	struct ibv_wc w[32];
	int k = 0;

	while (k < n) {
		int want = n - k < 32 ? n - k : 32;
		int got = ibv_poll_cq(d->cq, want, w);

		if (got < 0) {
			d->pub.last_errno = EIO;
			return k ? k : USMC_ERR_TRANSPORT;
		}
		for (int i = 0; i < got; i++)
			k += translate(d, &w[i], &wcs[k]);
		if (got < want)
			break;
	}
	return k;
}

int vb_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n)
{
	vb_dev *d = vb_of(tp);
	int k = 0, r;

	if (n <= 0)
		return 0;
	cq_events(d);
	k = usmc_tp_wcq_pop(&d->bl, wcs, n);
	for (;;) {
		if (k < n)
			k += take_soft(d, wcs + k, n - k);
		if (k == n)
			return k;
		r = poll_hw(d, wcs + k, n - k);
		if (r < 0)
			return k ? k : r;
		k += r;
		if (k == n)
			return k;
		if (r == 0 && d->cq_armed)
			break;
		if (r == 0) {
			/* empty: arm, then look once more for what came in
			 * between (it would raise no event) */
			if (ibv_req_notify_cq(d->cq, 0) == 0)
				d->cq_armed = 1;
			r = poll_hw(d, wcs + k, n - k);
			if (r > 0)
				k += r;
			if (r <= 0)
				break;
		}
	}
	if (k < n)
		k += take_soft(d, wcs + k, n - k);
	return k;
}

/* ---- destroy ---------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t hw_outstanding(vb_qp *q)
{
	return ring_count(&q->sq) + ring_count(&q->rq) - q->nsoft;
}

void vb_destroy_qp(usmc_tp_qp *pub)
{
	vb_qp *q = qp_of(pub);
	vb_dev *d = q->d;
	uint64_t end = mono_ms() + VB_DRAIN_MS;
	usmc_wc wcs[32];

	if (q->pub.state != USMC_QPS_RESET && hw_outstanding(q) && !d->dead) {
		struct ibv_qp_attr qa;

		memset(&qa, 0, sizeof(qa));
		qa.qp_state = IBV_QPS_ERR;
		if (!ibv_modify_qp(q->qp, &qa, IBV_QP_STATE)) {
			q->pub.state = USMC_QPS_ERR;
			/* the RNIC flushes them in order; others' completions
			 * met on the way wait in the backlog */
			while (hw_outstanding(q) && mono_ms() < end) {
				int k = poll_hw(d, wcs, 32);
				struct epoll_event ev;

				for (int i = 0; i < k; i++)
					vb_backlog_push(d, &wcs[i]);
				if (k == 0)
					epoll_wait(d->ep, &ev, 1, 1);
			}
		}
	}
	/* what the RNIC did not return in time, and soft entries, are
	 * flushed here, in order, sends first */
	if (q->pub.state != USMC_QPS_RESET)
		for (vb_ring *r = &q->sq; r; r = r == &q->sq ? &q->rq : NULL)
			while (r->head != r->tail) {
				vb_ent *e = ring_at(r, r->head++);

				memset(&wcs[0], 0, sizeof(wcs[0]));
				wcs[0].wr_id = e->wr_id;
				wcs[0].status = USMC_WC_WR_FLUSH_ERR;
				wcs[0].opcode = (usmc_wc_opcode)e->opcode;
				wcs[0].qp_num = q->qp->qp_num;
				vb_backlog_push(d, &wcs[0]);
			}
	d->nsoft -= q->nsoft;
	for (uint32_t i = 0; i < d->nqps; i++)
		if (d->qps[i] == q)
			d->qps[i] = NULL;
	d->cq_used -= q->cap.max_send_wr + q->cap.max_recv_wr;
	ibv_destroy_qp(q->qp);
	free(q->sq.e);
	free(q->rq.e);
	free(q);
}
