/* SPDX-License-Identifier: MIT */
/*
 * The sim world: a virtual clock, an event heap and one seed, and what
 * happens between QPs. There are no packets: a message is one delivery,
 * which the responder checks and executes whole, as rxe's responder does
 * for its first packet (rkey, bounds, REMOTE_WRITE, a receive WR or RNR).
 * Each QP has one wire: WRs are delivered one after another in posting
 * order, answers come back in the same order, so RC's ordering holds; a
 * delivery that finds no peer (port or path down, device dead, QP gone or
 * not ready, or loss=) is retried after the QP's retransmit timeout, as
 * rxe's requester does, until retry_cnt runs out.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "sim_int.h"

/* RNR NAK timer codes in microseconds (IB spec table 45, as rxe's
 * rnrnak_usec). */
static const uint32_t rnr_usec[32] = {
	655360, 10,    20,    30,     40,     60,     80,     120,
	160,	240,   320,   480,    640,    960,    1280,   1920,
	2560,	3840,  5120,  7680,   10240,  15360,  20480,  30720,
	40960,	61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

uint64_t sim_rand(usmc_tp_sim_world *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* ---- QPN hash ---------------------------------------------------------- */

sim_qp *sim_qp_find(usmc_tp_sim_world *w, uint32_t qpn)
{
	for (sim_qp *q = w->qpn_ht[qpn % SIM_QP_HASH]; q; q = q->hnext)
		if (q->pub.qp_num == qpn)
			return q;
	return NULL;
}

void sim_qp_hash_add(usmc_tp_sim_world *w, sim_qp *q)
{
	sim_qp **b = &w->qpn_ht[q->pub.qp_num % SIM_QP_HASH];

	q->hnext = *b;
	*b = q;
}

void sim_qp_hash_del(usmc_tp_sim_world *w, sim_qp *q)
{
	for (sim_qp **pp = &w->qpn_ht[q->pub.qp_num % SIM_QP_HASH]; *pp;
	     pp = &(*pp)->hnext)
		if (*pp == q) {
			*pp = q->hnext;
			return;
		}
}

/* ---- event heap, ordered by (time, sequence) --------------------------- */

static int ev_before(const sim_ev *a, const sim_ev *b)
{
	return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(usmc_tp_sim_world *w, sim_ev *e)
{
	size_t i;

	if (w->nheap == w->heap_cap) {
		size_t n = w->heap_cap ? w->heap_cap * 2 : 256;
		sim_ev *h = realloc(w->heap, n * sizeof(*h));

		if (!h)
			abort(); /* the fabric cannot drop an event silently */
		w->heap = h;
		w->heap_cap = n;
	}
	e->seq = w->seq++;
	i = w->nheap++;
	while (i && ev_before(e, &w->heap[(i - 1) / 2])) {
		w->heap[i] = w->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->heap[i] = *e;
}

static sim_ev heap_pop(usmc_tp_sim_world *w)
{
	sim_ev top = w->heap[0], last = w->heap[--w->nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= w->nheap)
			break;
		if (c + 1 < w->nheap && ev_before(&w->heap[c + 1], &w->heap[c]))
			c++;
		if (!ev_before(&w->heap[c], &last))
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (w->nheap)
		w->heap[i] = last;
	return top;
}

/* ---- timing ------------------------------------------------------------ */

static usmc_tstamp latency(sim_dev *d)
{
	return d->latency + (d->jitter ? sim_rand(d->w) % d->jitter : 0);
}

static usmc_tstamp wire_time(const sim_dev *d, uint64_t len)
{
	return d->gbps ? len * 8 / d->gbps : 0;
}

/* Requester-side events (answers, RNR, timeouts) of a QP stay in order. */
static void req_event(sim_qp *q, int kind, usmc_tstamp t, uint64_t ssn,
		      uint8_t code)
{
	sim_ev e;

	if (t < q->req_t)
		t = q->req_t;
	q->req_t = t;
	memset(&e, 0, sizeof(e));
	e.t = t;
	e.kind = (uint8_t)kind;
	e.qpn = q->pub.qp_num;
	e.epoch = q->epoch;
	e.ssn = ssn;
	e.tok = q->wire_tok;
	e.code = code;
	heap_push(q->d->w, &e);
}

static void wire_go(sim_qp *q, usmc_tstamp not_before)
{
	usmc_tp_sim_world *w = q->d->w;
	sim_swqe *s;
	usmc_tstamp dep, arr;
	sim_ev e;

	if (q->wire_busy || q->pub.state != USMC_QPS_RTS ||
	    q->sq_sent == q->sq_count)
		return;
	s = &q->sq[(q->sq_head + q->sq_sent) % q->sq_size];
	/* WRs behind each other leave back to back (pipelined), each after
	 * it was posted */
	dep = s->posted > q->wire_t ? s->posted : q->wire_t;
	if (dep < not_before)
		dep = not_before;
	q->wire_t = dep + wire_time(q->d, s->length);
	arr = q->wire_t + latency(q->d);
	if (arr < w->now)
		arr = w->now;
	memset(&e, 0, sizeof(e));
	e.t = arr;
	e.kind = SIM_EV_DELIVER;
	e.qpn = q->pub.qp_num;
	e.epoch = q->epoch;
	e.ssn = s->ssn;
	e.tok = q->wire_tok;
	heap_push(w, &e);
	q->wire_busy = 1;
}

void sim_wire_kick(sim_qp *q)
{
	wire_go(q, q->d->w->now);
}

/* ---- delivery ---------------------------------------------------------- */

static int path_down(usmc_tp_sim_world *w, const sim_dev *a, const sim_dev *b)
{
	for (const sim_down *x = w->down; x; x = x->next)
		if ((x->a == a && x->b == b) || (x->a == b && x->b == a))
			return 1;
	return 0;
}

/* The responder QP a message from |q| reaches now, or NULL: then it is
 * lost, as a packet nobody answers. */
static sim_qp *reach(sim_qp *q, int lossy)
{
	usmc_tp_sim_world *w = q->d->w;
	sim_dev *src = q->d, *dst = NULL;
	sim_qp *r;

	if (src->dead || !src->port_up)
		return NULL;
	for (sim_dev *d = w->devs; d; d = d->next)
		if (!memcmp(d->gid, q->dgid, 16))
			dst = d;
	if (!dst || dst->dead || !dst->port_up || path_down(w, src, dst))
		return NULL;
	r = sim_qp_find(w, q->dest_qpn);
	/* the responder takes requests in RTR and RTS, from its peer's
	 * address only (softroce: drop_state, drop_addr) */
	if (!r || r->d != dst ||
	    (r->pub.state != USMC_QPS_RTR && r->pub.state != USMC_QPS_RTS) ||
	    memcmp(r->dgid, src->gid, 16))
		return NULL;
	if (lossy && w->loss_ppm && sim_rand(w) % 1000000u < w->loss_ppm)
		return NULL;
	return r;
}

typedef struct span {
	uint8_t *p;
	uint64_t len;
} span;

/* The payload of |s| as spans of the requester's memory; -1 if an SGE no
 * longer lies in an MR (it was freed after the post). */
static int gather(sim_qp *q, const sim_swqe *s, span sp[USMC_WR_MAX_SGE],
		  int *n)
{
	*n = 0;
	if (s->wr.send_flags & USMC_SEND_INLINE) {
		uint32_t slot = (uint32_t)(s - q->sq);

		sp[0].p = q->inline_buf + (size_t)slot * q->cap.max_inline_data;
		sp[0].len = s->length;
		*n = s->length ? 1 : 0;
		return 0;
	}
	for (uint32_t i = 0; i < s->wr.num_sge; i++) {
		const usmc_sge *g = &s->wr.sg_list[i];

		if (!g->length)
			continue;
		sp[*n].p = sim_sge_ptr(q->d, g, 0);
		if (!sp[*n].p)
			return -1;
		sp[*n].len = g->length;
		(*n)++;
	}
	return 0;
}

/* Copies the spans |src| into |dst| (both cover |len| bytes); memmove,
 * since both QPs may share one MR. */
static void copy_spans(const span *dst, int nd, const span *src, int ns)
{
	uint64_t doff = 0, soff = 0;
	int di = 0, si = 0;

	while (di < nd && si < ns) {
		uint64_t k = dst[di].len - doff;

		if (src[si].len - soff < k)
			k = src[si].len - soff;
		memmove(dst[di].p + doff, src[si].p + soff, k);
		doff += k;
		soff += k;
		if (doff == dst[di].len) {
			di++;
			doff = 0;
		}
		if (soff == src[si].len) {
			si++;
			soff = 0;
		}
	}
}

static void pop_recv(sim_qp *r, usmc_wc_status st, usmc_wc_opcode op,
		     uint32_t byte_len, uint32_t imm, uint32_t flags)
{
	sim_push_wc(r, r->rq[r->rq_head].wr.wr_id, st, op, byte_len, imm,
		    flags);
	r->rq_head = (r->rq_head + 1) % r->rq_size;
	r->rq_count--;
}

/* Class C error at the responder: NAK, and both QPs are done with. */
static void nak(sim_qp *q, sim_qp *r, const sim_swqe *s, usmc_wc_status st)
{
	r->d->st.nak_err_tx++;
	if (r == q) { /* a QP connected to itself */
		q->d->st.nak_err_rx++;
		sim_qp_error(q, st);
		return;
	}
	sim_qp_error(r, USMC_WC_WR_FLUSH_ERR);
	q->sq_sent++;
	req_event(q, SIM_EV_ACK, q->d->w->now + latency(r->d), s->ssn,
		  (uint8_t)st);
	q->wire_busy = 1; /* nothing more leaves: the QP is going to ERR */
}

static usmc_tstamp rto(const sim_qp *q)
{
	uint64_t t = q->timeout_ns;

	for (unsigned int i = 0; i < q->rto_shift && t < SIM_RTO_MAX_NS; i++)
		t <<= 1;
	if (t > SIM_RTO_MAX_NS)
		t = q->timeout_ns > SIM_RTO_MAX_NS ? q->timeout_ns
						   : SIM_RTO_MAX_NS;
	return t;
}

/* ---- the message as a packet, for an rx hook (the fault decorator) ---

 * There are no packets, so a hook sees a stand-in, shaped as softroce's
 * (a 12-byte header, a body, a 4-byte check in place of the ICRC): the
 * QPNs and the header in the first 12 bytes, the message's sequence
 * number and its QP's epoch in the body, a checksum over both at the end.
 * Handed back (rx_inject) it delivers the message then, if it is still the
 * one its requester waits for; a copy of one delivered since is a
 * duplicate and dropped, as a responder drops a duplicate PSN. A changed
 * byte fails the check and the message is lost, as a frame with a bad
 * ICRC. Answers (ACKs, NAKs) are not shown to the hook. */
#define SIM_PKT_LEN 32

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t pkt_check(const uint8_t *p)
{
	uint32_t h = 0x811c9dc5u;

	for (int i = 0; i < SIM_PKT_LEN - 4; i++)
		h = (h ^ p[i]) * 0x01000193u;
	return h;
}

static void pkt_build(uint8_t *p, const sim_qp *q, const sim_swqe *s)
{
	memset(p, 0, SIM_PKT_LEN);
	put32(p, q->dest_qpn);
	put32(p + 4, q->pub.qp_num);
	p[8] = (uint8_t)s->wr.opcode;
	put32(p + 12, (uint32_t)(s->ssn >> 32));
	put32(p + 16, (uint32_t)s->ssn);
	put32(p + 20, (uint32_t)(q->epoch >> 32));
	put32(p + 24, (uint32_t)q->epoch);
	put32(p + 28, pkt_check(p));
}

static void gid_addr(const uint8_t gid[16], struct sockaddr_storage *ss)
{
	static const uint8_t v4m[12] = {0, 0, 0, 0, 0,	  0,
					0, 0, 0, 0, 0xff, 0xff};

	memset(ss, 0, sizeof(*ss));
	if (!memcmp(gid, v4m, 12)) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(4791);
		memcpy(&a->sin_addr, gid + 12, 4);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(4791);
		memcpy(&a->sin6_addr, gid, 16);
	}
}

/* Shows |s| to |r|'s device's hook: 0 if it goes on to the responder, -1
 * if the hook took it (dropped, or kept to hand back) or changed it. */
static int hook_pass(sim_qp *q, sim_qp *r, const sim_swqe *s)
{
	sim_dev *d = r->d;
	struct sockaddr_storage src, dst;
	uint8_t p[SIM_PKT_LEN];
	usmc_tp_rx_pkt pkt;

	pkt_build(p, q, s);
	gid_addr(q->d->gid, &src);
	gid_addr(d->gid, &dst);
	pkt.data = p;
	pkt.len = sizeof(p);
	pkt.src = (const struct sockaddr *)&src;
	pkt.dst = (const struct sockaddr *)&dst;
	if (d->hook(d->hook_arg, &pkt)) {
		d->st.hooked++;
		return -1;
	}
	if (pkt.len != SIM_PKT_LEN || get32(p + 28) != pkt_check(p)) {
		d->st.icrc_errors++;
		return -1;
	}
	return 0;
}

static void respond(usmc_tp_sim_world *w, sim_qp *q, sim_qp *r, sim_swqe *s,
		    const span *src, int ns);

static void deliver(usmc_tp_sim_world *w, sim_qp *q, const sim_ev *ev)
{
	sim_swqe *s = &q->sq[(q->sq_head + q->sq_sent) % q->sq_size];
	span src[USMC_WR_MAX_SGE];
	int ns;
	sim_qp *r;

	q->wire_busy = 0;
	if (q->pub.state != USMC_QPS_RTS || q->sq_sent == q->sq_count ||
	    s->ssn != ev->ssn)
		return;
	q->d->st.attempts++;
	if (gather(q, s, src, &ns)) {
		/* the requester finds it building the message */
		q->sq_sent++;
		req_event(q, SIM_EV_ACK, w->now, s->ssn,
			  (uint8_t)USMC_WC_LOC_PROT_ERR);
		q->wire_busy = 1;
		return;
	}
	r = reach(q, 1);
	if (r && r->d->hook && hook_pass(q, r, s))
		r = NULL;
	if (!r) {
		q->d->st.lost++;
		q->wire_busy = 1;
		/* timeout 0: no retransmit timer, the WR waits for ever */
		if (q->timeout_ns)
			req_event(q, SIM_EV_TIMEOUT, w->now + rto(q), s->ssn,
				  0);
		return;
	}
	respond(w, q, r, s, src, ns);
}

void sim_rx_inject(sim_dev *d, const usmc_tp_rx_pkt *pkt)
{
	usmc_tp_sim_world *w = d->w;
	span src[USMC_WR_MAX_SGE];
	uint64_t ssn, epoch;
	sim_swqe *s;
	sim_qp *q, *r;
	int ns;

	if (pkt->len != SIM_PKT_LEN ||
	    get32(pkt->data + 28) != pkt_check(pkt->data)) {
		d->st.icrc_errors++;
		return;
	}
	d->st.injected++;
	ssn = (uint64_t)get32(pkt->data + 12) << 32 | get32(pkt->data + 16);
	epoch = (uint64_t)get32(pkt->data + 20) << 32 | get32(pkt->data + 24);
	q = sim_qp_find(w, get32(pkt->data + 4));
	/* only the message its requester still waits for, on the wire */
	if (!q || q->epoch != epoch || q->pub.state != USMC_QPS_RTS ||
	    q->sq_sent == q->sq_count || !q->wire_busy ||
	    q->dest_qpn != get32(pkt->data)) {
		d->st.stale++;
		return;
	}
	s = &q->sq[(q->sq_head + q->sq_sent) % q->sq_size];
	r = reach(q, 0);
	if (s->ssn != ssn || !r || r->d != d || gather(q, s, src, &ns)) {
		/* a duplicate, or nobody there: the retransmission to come
		 * (its timer still runs) settles it */
		d->st.stale++;
		return;
	}
	/* the pending retransmission (or RNR retry) is void now */
	q->wire_tok++;
	q->wire_busy = 0;
	respond(w, q, r, s, src, ns);
}

static void respond(usmc_tp_sim_world *w, sim_qp *q, sim_qp *r, sim_swqe *s,
		    const span *src, int ns)
{
	const usmc_wr *wr = &s->wr;
	span dst[USMC_WR_MAX_SGE];
	int nd = 0;

	/* in softroce's (and rxe's) order: the QP's access, a receive WR,
	 * then the rkey */
	if (wr->opcode != USMC_WR_SEND &&
	    !(r->access & USMC_ACCESS_REMOTE_WRITE)) {
		nak(q, r, s, USMC_WC_REM_INV_REQ_ERR);
		return;
	}
	if (wr->opcode != USMC_WR_RDMA_WRITE && !r->rq_count) {
		/* no receive WR: RNR NAK with the responder's timer */
		r->d->st.rnr_nak_tx++;
		req_event(q, SIM_EV_RNR, w->now + latency(r->d), s->ssn,
			  r->min_rnr_timer);
		q->wire_busy = 1;
		return;
	}
	/* the whole range up front; a zero-length WRITE checks none */
	if (wr->opcode != USMC_WR_SEND && s->length) {
		dst[0].p = sim_rkey_ptr(r->d, wr->rkey, wr->remote_addr,
					s->length);
		dst[0].len = s->length;
		nd = 1;
		if (!dst[0].p) {
			r->d->st.access_errors++;
			nak(q, r, s, USMC_WC_REM_ACCESS_ERR);
			return;
		}
	}
	if (wr->opcode == USMC_WR_SEND) {
		const sim_rwqe *rw = &r->rq[r->rq_head];
		uint64_t left = s->length;

		if (s->length > rw->length) {
			pop_recv(r, USMC_WC_LOC_LEN_ERR, USMC_WC_RECV, 0, 0, 0);
			nak(q, r, s, USMC_WC_REM_INV_REQ_ERR);
			return;
		}
		for (uint32_t i = 0; i < rw->wr.num_sge && left; i++) {
			const usmc_sge *g = &rw->wr.sg_list[i];

			if (!g->length)
				continue;
			/* the MR may have gone since post_recv */
			dst[nd].p =
				sim_sge_ptr(r->d, g, USMC_ACCESS_LOCAL_WRITE);
			if (!dst[nd].p) {
				pop_recv(r, USMC_WC_LOC_PROT_ERR, USMC_WC_RECV,
					 0, 0, 0);
				nak(q, r, s, USMC_WC_REM_OP_ERR);
				return;
			}
			dst[nd].len = g->length < left ? g->length : left;
			left -= dst[nd++].len;
		}
	}
	copy_spans(dst, nd, src, ns);
	r->d->st.rx_bytes += s->length;
	if (wr->opcode == USMC_WR_SEND) {
		r->d->st.sends++;
		pop_recv(r, USMC_WC_SUCCESS, USMC_WC_RECV, s->length, 0, 0);
	} else {
		r->d->st.writes++;
		r->d->st.write_bytes += s->length;
		if (wr->opcode == USMC_WR_RDMA_WRITE_WITH_IMM)
			pop_recv(r, USMC_WC_SUCCESS, USMC_WC_RECV_RDMA_WITH_IMM,
				 s->length, wr->imm_data, USMC_WC_WITH_IMM);
	}
	q->sq_sent++;
	req_event(q, SIM_EV_ACK, w->now + latency(r->d), s->ssn,
		  USMC_WC_SUCCESS);
	wire_go(q, 0);
}

static void on_ack(sim_qp *q, const sim_ev *ev)
{
	sim_swqe *s = &q->sq[q->sq_head];

	if (!q->sq_sent || s->ssn != ev->ssn)
		return;
	if (ev->code != USMC_WC_SUCCESS) {
		if (ev->code != USMC_WC_LOC_PROT_ERR)
			q->d->st.nak_err_rx++;
		sim_qp_error(q, (usmc_wc_status)ev->code);
		return;
	}
	/* errors always complete, unsignaled successes do not (as rxe) */
	if (s->wr.send_flags & USMC_SEND_SIGNALED)
		sim_push_wc(q, s->wr.wr_id, USMC_WC_SUCCESS,
			    sim_send_wc_opcode(&s->wr), 0, 0, 0);
	q->sq_head = (q->sq_head + 1) % q->sq_size;
	q->sq_count--;
	q->sq_sent--;
	q->retries_left = q->retry_cnt;
	q->rnr_left = q->rnr_retry;
	q->rto_shift = 0;
}

static void on_rnr(usmc_tp_sim_world *w, sim_qp *q, const sim_ev *ev)
{
	q->d->st.rnr_nak_rx++;
	if (q->rnr_retry != 7) {
		if (q->rnr_left <= 0) {
			sim_qp_error(q, USMC_WC_RNR_RETRY_EXC_ERR);
			return;
		}
		q->rnr_left--;
	}
	q->wire_busy = 0;
	wire_go(q, w->now + (usmc_tstamp)rnr_usec[ev->code & 0x1f] * 1000);
}

static void on_timeout(usmc_tp_sim_world *w, sim_qp *q)
{
	q->d->st.retry_timeouts++;
	if (q->retry_cnt != 7) {
		if (q->retries_left <= 0) {
			sim_qp_error(q, USMC_WC_RETRY_EXC_ERR);
			return;
		}
		q->retries_left--;
	}
	/* each timeout without progress doubles the next, up to 1 s, as
	 * softroce backs off toward a stopped peer */
	if (q->rto_shift < 32)
		q->rto_shift++;
	q->wire_busy = 0;
	wire_go(q, w->now);
}

static void exec_ev(usmc_tp_sim_world *w, const sim_ev *ev)
{
	sim_qp *q;

	if (ev->kind == SIM_EV_WAKE) {
		for (sim_dev *d = w->devs; d; d = d->next)
			if (d->index == (int)ev->qpn) {
				d->woken = 1;
				d->dirty = 1;
			}
		return;
	}
	q = sim_qp_find(w, ev->qpn);
	if (!q || q->epoch != ev->epoch)
		return; /* the QP went to ERR, RESET or away meanwhile */
	if (ev->kind != SIM_EV_ACK && ev->tok != q->wire_tok)
		return; /* its message was handed back by rx_inject */
	switch (ev->kind) {
	case SIM_EV_DELIVER:
		deliver(w, q, ev);
		break;
	case SIM_EV_ACK:
		on_ack(q, ev);
		break;
	case SIM_EV_RNR:
		on_rnr(w, q, ev);
		break;
	case SIM_EV_TIMEOUT:
		on_timeout(w, q);
		break;
	}
}

/* ---- world ------------------------------------------------------------- */

usmc_tp_sim_world *usmc_tp_sim_world_new(uint64_t seed)
{
	usmc_tp_sim_world *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->magic = SIM_WORLD_MAGIC;
	w->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	w->now = 1000000000ull;
	w->next_qpn = SIM_MIN_QPN;
	return w;
}

static void world_free(usmc_tp_sim_world *w)
{
	while (w->down) {
		sim_down *x = w->down;

		w->down = x->next;
		free(x);
	}
	free(w->heap);
	w->magic = 0;
	free(w);
}

void usmc_tp_sim_world_del(usmc_tp_sim_world *w)
{
	if (!w)
		return;
	w->deleted = 1;
	if (!w->ndevs)
		world_free(w);
}

void sim_world_detach(usmc_tp_sim_world *w, sim_dev *d)
{
	for (sim_dev **pp = &w->devs; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	for (sim_down **pp = &w->down; *pp;) {
		sim_down *x = *pp;

		if (x->a == d || x->b == d) {
			*pp = x->next;
			free(x);
		} else {
			pp = &x->next;
		}
	}
	w->ndevs--;
	if (w->deleted && !w->ndevs)
		world_free(w);
}

usmc_tstamp usmc_tp_sim_world_now(const usmc_tp_sim_world *w)
{
	return w->now;
}

usmc_tstamp usmc_tp_sim_world_next(const usmc_tp_sim_world *w)
{
	return w->nheap ? w->heap[0].t : USMC_TSTAMP_NONE;
}

uint64_t usmc_tp_sim_world_run(usmc_tp_sim_world *w, usmc_tstamp until)
{
	uint64_t n = 0;

	while (w->nheap && w->heap[0].t <= until) {
		sim_ev ev = heap_pop(w);

		if (ev.t > w->now)
			w->now = ev.t;
		exec_ev(w, &ev);
		n++;
	}
	if (until != USMC_TSTAMP_NONE && until > w->now)
		w->now = until;
	for (sim_dev *d = w->devs; d; d = d->next)
		if (d->dirty)
			sim_sync_efd(d);
	return n;
}

void sim_wake_at(sim_dev *d, usmc_tstamp t)
{
	sim_ev e;

	memset(&e, 0, sizeof(e));
	e.t = t < d->w->now ? d->w->now : t;
	e.kind = SIM_EV_WAKE;
	e.qpn = (uint32_t)d->index;
	heap_push(d->w, &e);
}

void usmc_tp_sim_world_set_loss(usmc_tp_sim_world *w, uint32_t ppm)
{
	w->loss_ppm = ppm > 1000000u ? 1000000u : ppm;
}
