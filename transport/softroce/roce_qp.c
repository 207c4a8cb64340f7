/* SPDX-License-Identifier: MIT */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * softroce RC queue pair, split as rxe is: the requester (segmentation,
 * PSNs, AckReq, go-back-N), the completer (ACK/NAK processing, retransmit
 * and RNR timers) and the responder (PSN check, opcode sequence, length and
 * rkey checks, delivery into receive WRs and MRs, ACK/NAK generation).
 */
#include <stdlib.h>
#include <string.h>

#include "softroce_int.h"

/* rnrnak_usec[], with the spec's 61440 for code 25 */
static const uint32_t rnr_usec[32] = {
	655360, 10,    20,    30,     40,     60,     80,     120,
	160,	240,   320,   480,    640,    960,    1280,   1920,
	2560,	3840,  5120,  7680,   10240,  15360,  20480,  30720,
	40960,	61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

/* No later than the moment retry_time runs out (the device's retry_time=
 * option): a peer that stays silent is given up on then, whatever the
 * backoff, also with retry_cnt 7 (rxe's "for ever"), so the link above
 * learns of it in bounded time. */
static usmc_tstamp rto_clamp(const sr_qp *qp, usmc_tstamp t)
{
	uint64_t rt = qp->dev->retry_time_ns;

	if (rt && qp->stall_since && qp->stall_since + rt < t)
		return qp->stall_since + rt;
	return t;
}

static uint32_t last_psn(const sr_swqe *w)
{
	return usmc_psn_add(w->first_psn, w->npkts - 1);
}

static usmc_wc_opcode send_wc_opcode(const usmc_wr *wr)
{
	return wr->opcode == USMC_WR_SEND ? USMC_WC_SEND : USMC_WC_RDMA_WRITE;
}

static void push_wc(sr_qp *qp, uint64_t wr_id, usmc_wc_status st,
		    usmc_wc_opcode op, uint32_t byte_len, uint32_t imm,
		    uint32_t flags)
{
	usmc_wc wc = usmc_tp_wc_make(wr_id, st, op, byte_len, imm, flags,
				     qp->pub.qp_num);

	sr_cq_push(qp->dev, &wc);
}

/* ---- create, modify, error ------------------------------------------- */

int sr_qp_create(sr_dev *d, const usmc_qp_init_attr *a, sr_qp **pqp)
{
	sr_qp *qp;

	*pqp = NULL;
	if (!a || !a->max_send_wr || !a->max_recv_wr ||
	    a->max_send_wr > SR_MAX_QP_WR || a->max_recv_wr > SR_MAX_QP_WR ||
	    a->max_send_sge > USMC_WR_MAX_SGE ||
	    a->max_recv_sge > USMC_WR_MAX_SGE ||
	    a->max_inline_data > SR_MAX_INLINE)
		return USMC_ERR_INVALID_ARGUMENT;
	qp = calloc(1, sizeof(*qp));
	if (!qp)
		return USMC_ERR_NOMEM;
	qp->pub.tp = &d->pub;
	qp->dev = d;
	qp->cap = *a;
	qp->pub.context = a->context;
	qp->pub.state = USMC_QPS_RESET;
	qp->sq_size = a->max_send_wr;
	qp->rq_size = a->max_recv_wr;
	qp->sq = calloc(qp->sq_size, sizeof(*qp->sq));
	qp->rq = calloc(qp->rq_size, sizeof(*qp->rq));
	if (a->max_inline_data)
		qp->inline_buf =
			malloc((size_t)qp->sq_size * a->max_inline_data);
	if (!qp->sq || !qp->rq || (a->max_inline_data && !qp->inline_buf)) {
		sr_qp_destroy(qp);
		return USMC_ERR_NOMEM;
	}
	*pqp = qp;
	return 0;
}

void sr_qp_destroy(sr_qp *qp)
{
	free(qp->sq);
	free(qp->rq);
	free(qp->inline_buf);
	free(qp);
}

static void reset_queues(sr_qp *qp)
{
	qp->sq_head = qp->sq_count = qp->sq_cur = qp->cur_pkt = 0;
	qp->rq_head = qp->rq_count = 0;
	qp->rto_deadline = qp->rnr_deadline = 0;
	qp->tx_stall = 0;
	qp->opclass = SR_OPC_NONE;
	qp->ack_pending = 0;
	qp->sent_psn_nak = 0;
	qp->msn = 0;
}

static void complete_head(sr_qp *qp, usmc_wc_status st)
{
	sr_swqe *w = &qp->sq[qp->sq_head];

	/* errors always complete, as verbs (rxe do_complete) */
	if (st != USMC_WC_SUCCESS || (w->wr.send_flags & USMC_SEND_SIGNALED))
		push_wc(qp, w->wr.wr_id, st, send_wc_opcode(&w->wr), 0, 0, 0);
	qp->sq_head = (qp->sq_head + 1) % qp->sq_size;
	qp->sq_count--;
	if (qp->sq_cur)
		qp->sq_cur--;
	else
		qp->cur_pkt = 0;
}

/* Moves the QP to ERR: the WR at the head of the send queue completes with
 * |st|, everything else outstanding with WR_FLUSH_ERR. */
static void qp_error(sr_qp *qp, usmc_wc_status st)
{
	if (qp->pub.state == USMC_QPS_ERR)
		return;
	qp->pub.state = USMC_QPS_ERR;
	if (qp->sq_count)
		complete_head(qp, st);
	while (qp->sq_count)
		complete_head(qp, USMC_WC_WR_FLUSH_ERR);
	while (qp->rq_count) {
		push_wc(qp, qp->rq[qp->rq_head].wr.wr_id, USMC_WC_WR_FLUSH_ERR,
			USMC_WC_RECV, 0, 0, 0);
		qp->rq_head = (qp->rq_head + 1) % qp->rq_size;
		qp->rq_count--;
	}
	qp->rto_deadline = qp->rnr_deadline = 0;
	qp->ack_pending = 0;
}

int sr_qp_modify(sr_qp *qp, const usmc_qp_attr *a)
{
	sr_dev *d = qp->dev;

	switch (a->qp_state) {
	case USMC_QPS_RESET:
		reset_queues(qp);
		qp->pub.state = USMC_QPS_RESET;
		return 0;
	case USMC_QPS_INIT:
		if (qp->pub.state != USMC_QPS_RESET &&
		    qp->pub.state != USMC_QPS_INIT)
			return USMC_ERR_INVALID_STATE;
		qp->access = a->qp_access_flags;
		qp->pub.state = USMC_QPS_INIT;
		return 0;
	case USMC_QPS_RTR: {
		sr_addr peer;

		if (qp->pub.state != USMC_QPS_INIT)
			return USMC_ERR_INVALID_STATE;
		if (!usmc_ib_mtu_to_int(a->path_mtu) ||
		    a->path_mtu > d->active_mtu || !a->dest_qp_num ||
		    a->dest_qp_num > USMC_ROCE_QPN_MASK ||
		    a->rq_psn > USMC_ROCE_PSN_MASK ||
		    sr_addr_from_gid(d, a->dgid, &peer))
			return USMC_ERR_INVALID_ARGUMENT;
		qp->mtu = usmc_ib_mtu_to_int(a->path_mtu);
		qp->window = sr_window(d, qp->mtu);
		qp->ack_every = qp->window < SR_MAX_UNACKED_PSNS
					? qp->window / 2 - 1
					: SR_MAX_PKT_PER_ACK;
		qp->dest_qpn = a->dest_qp_num;
		qp->peer = peer;
		qp->resp_psn = a->rq_psn;
		qp->min_rnr_timer = a->min_rnr_timer & 0x1f;
		qp->pub.state = USMC_QPS_RTR;
		return 0;
	}
	case USMC_QPS_RTS:
		if (qp->pub.state != USMC_QPS_RTR &&
		    qp->pub.state != USMC_QPS_RTS)
			return USMC_ERR_INVALID_STATE;
		if (a->timeout > 31 || a->retry_cnt > 7 || a->rnr_retry > 7 ||
		    a->sq_psn > USMC_ROCE_PSN_MASK)
			return USMC_ERR_INVALID_ARGUMENT;
		if (qp->pub.state == USMC_QPS_RTR) {
			qp->next_psn = qp->una_psn = qp->sent_hi = a->sq_psn;
			qp->noack_pkts = 0;
		}
		qp->timeout = a->timeout;
		qp->retry_cnt = a->retry_cnt;
		qp->rnr_retry = a->rnr_retry;
		qp->timeout_ns = a->timeout ? 4096ULL << a->timeout : 0;
		qp->retries_left = a->retry_cnt;
		qp->rnr_left = a->rnr_retry;
		qp->rto_shift = 0;
		qp->stall_since = 0;
		qp->pub.state = USMC_QPS_RTS;
		return 0;
	case USMC_QPS_ERR:
		qp_error(qp, USMC_WC_WR_FLUSH_ERR);
		return 0;
	}
	return USMC_ERR_INVALID_ARGUMENT;
}

/* ---- posting ---------------------------------------------------------- */

/* An SGE must lie inside an MR of this device. */
static int sge_ok(sr_dev *d, const usmc_sge *s, uint32_t need_access)
{
	sr_mr *mr;
	uint64_t base;

	if (!s->length)
		return 1;
	mr = sr_mr_by_lkey(d, s->lkey);
	if (!mr || (mr->pub.access & need_access) != need_access)
		return 0;
	base = (uint64_t)(uintptr_t)mr->pub.addr;
	return s->addr >= base && s->addr - base <= mr->pub.length &&
	       s->length <= mr->pub.length - (s->addr - base);
}

int sr_qp_post_send(sr_qp *qp, const usmc_wr *wr, usmc_tstamp now)
{
	uint64_t total = 0;
	uint32_t slot;
	sr_swqe *w;

	(void)now;
	if (qp->pub.state == USMC_QPS_ERR) {
		push_wc(qp, wr->wr_id, USMC_WC_WR_FLUSH_ERR, send_wc_opcode(wr),
			0, 0, 0);
		return 0;
	}
	if (qp->pub.state != USMC_QPS_RTS)
		return USMC_ERR_INVALID_STATE;
	if (wr->opcode < USMC_WR_SEND ||
	    wr->opcode > USMC_WR_RDMA_WRITE_WITH_IMM ||
	    wr->num_sge > USMC_WR_MAX_SGE ||
	    (qp->cap.max_send_sge && wr->num_sge > qp->cap.max_send_sge))
		return USMC_ERR_INVALID_ARGUMENT;
	for (uint32_t i = 0; i < wr->num_sge; i++)
		total += wr->sg_list[i].length;
	if (total > SR_MAX_MSG_SIZE)
		return USMC_ERR_INVALID_ARGUMENT;
	if (wr->send_flags & USMC_SEND_INLINE) {
		if (total > qp->cap.max_inline_data)
			return USMC_ERR_INVALID_ARGUMENT;
	} else {
		for (uint32_t i = 0; i < wr->num_sge; i++)
			if (!sge_ok(qp->dev, &wr->sg_list[i], 0))
				return USMC_ERR_ACCESS;
	}
	if (qp->sq_count == qp->sq_size)
		return USMC_ERR_WOULDBLOCK;

	slot = (qp->sq_head + qp->sq_count) % qp->sq_size;
	w = &qp->sq[slot];
	w->wr = *wr;
	w->length = (uint32_t)total;
	w->npkts = total ? (uint32_t)((total + qp->mtu - 1) / qp->mtu) : 1;
	w->first_psn = qp->next_psn;
	qp->next_psn = usmc_psn_add(qp->next_psn, w->npkts);
	if (wr->send_flags & USMC_SEND_INLINE) {
		uint8_t *dst =
			qp->inline_buf + (size_t)slot * qp->cap.max_inline_data;

		for (uint32_t i = 0; i < wr->num_sge; i++) {
			memcpy(dst,
			       (const void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			dst += wr->sg_list[i].length;
		}
	}
	qp->sq_count++;
	return 0;
}

int sr_qp_post_recv(sr_qp *qp, const usmc_recv_wr *wr)
{
	uint64_t total = 0;
	sr_rwqe *r;

	if (qp->pub.state == USMC_QPS_RESET)
		return USMC_ERR_INVALID_STATE;
	if (qp->pub.state == USMC_QPS_ERR) {
		push_wc(qp, wr->wr_id, USMC_WC_WR_FLUSH_ERR, USMC_WC_RECV, 0, 0,
			0);
		return 0;
	}
	if (wr->num_sge > USMC_WR_MAX_SGE ||
	    (qp->cap.max_recv_sge && wr->num_sge > qp->cap.max_recv_sge))
		return USMC_ERR_INVALID_ARGUMENT;
	for (uint32_t i = 0; i < wr->num_sge; i++) {
		if (!sge_ok(qp->dev, &wr->sg_list[i], USMC_ACCESS_LOCAL_WRITE))
			return USMC_ERR_ACCESS;
		total += wr->sg_list[i].length;
	}
	if (qp->rq_count == qp->rq_size)
		return USMC_ERR_WOULDBLOCK;
	r = &qp->rq[(qp->rq_head + qp->rq_count) % qp->rq_size];
	r->wr = *wr;
	r->length = total;
	qp->rq_count++;
	return 0;
}

/* ---- requester -------------------------------------------------------- */

static void rewind_to_una(sr_qp *qp);

/* Payload bytes [off, off+len) of a send WR as iovecs into SGE memory. */
static int payload_iov(sr_qp *qp, const sr_swqe *w, uint32_t slot, uint32_t off,
		       uint32_t len, struct iovec *iov)
{
	int n = 0;

	if (!len)
		return 0;
	if (w->wr.send_flags & USMC_SEND_INLINE) {
		iov[0].iov_base = qp->inline_buf +
				  (size_t)slot * qp->cap.max_inline_data + off;
		iov[0].iov_len = len;
		return 1;
	}
	for (uint32_t i = 0; i < w->wr.num_sge && len; i++) {
		const usmc_sge *s = &w->wr.sg_list[i];
		uint32_t take;

		if (off >= s->length) {
			off -= s->length;
			continue;
		}
		take = s->length - off < len ? s->length - off : len;
		iov[n].iov_base = (uint8_t *)(uintptr_t)s->addr + off;
		iov[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}

static uint8_t req_opcode(usmc_wr_opcode op, int first, int last)
{
	switch (op) {
	case USMC_WR_SEND:
		return first ? (last ? USMC_IB_OPCODE_RC_SEND_ONLY
				     : USMC_IB_OPCODE_RC_SEND_FIRST)
			     : (last ? USMC_IB_OPCODE_RC_SEND_LAST
				     : USMC_IB_OPCODE_RC_SEND_MIDDLE);
	case USMC_WR_RDMA_WRITE:
		return first ? (last ? USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY
				     : USMC_IB_OPCODE_RC_RDMA_WRITE_FIRST)
			     : (last ? USMC_IB_OPCODE_RC_RDMA_WRITE_LAST
				     : USMC_IB_OPCODE_RC_RDMA_WRITE_MIDDLE);
	default:
		return first ? (last ? USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE
				     : USMC_IB_OPCODE_RC_RDMA_WRITE_FIRST)
			     : (last ? USMC_IB_OPCODE_RC_RDMA_WRITE_LAST_WITH_IMMEDIATE
				     : USMC_IB_OPCODE_RC_RDMA_WRITE_MIDDLE);
	}
}

static void send_pkt(sr_qp *qp, const sr_swqe *w, uint32_t slot, uint32_t k,
		     usmc_tstamp now)
{
	uint32_t off = k * qp->mtu;
	uint32_t plen = w->length - off < qp->mtu ? w->length - off : qp->mtu;
	int first = k == 0, last = k + 1 == w->npkts;
	uint8_t hdr[USMC_ROCE_MAX_HDR_LEN];
	struct iovec iov[USMC_WR_MAX_SGE];
	usmc_roce_pkt p;
	int hlen, n;

	memset(&p, 0, sizeof(p));
	p.opcode = req_opcode(w->wr.opcode, first, last);
	p.pkey = USMC_ROCE_DEFAULT_PKEY;
	p.dest_qpn = qp->dest_qpn;
	p.psn = usmc_psn_add(w->first_psn, k);
	p.padcnt = (uint8_t)((4 - (plen & 3)) & 3);
	p.se = last && (w->wr.send_flags & USMC_SEND_SOLICITED) &&
	       w->wr.opcode != USMC_WR_RDMA_WRITE;
	/* AckReq on the end of each message and, as rxe, on the 66th packet
	 * without one (noack_pkts++ > RXE_MAX_PKT_PER_ACK); sooner when a
	 * small window would otherwise fill without asking for an ACK; and on
	 * the first packet after a rewind */
	if (last || qp->need_ackreq || qp->noack_pkts++ > qp->ack_every) {
		p.ackreq = 1;
		qp->noack_pkts = 0;
		qp->need_ackreq = 0;
	}
	if (first) {
		p.reth_va = w->wr.remote_addr;
		p.reth_rkey = w->wr.rkey;
		p.reth_len = w->length;
	}
	p.imm = w->wr.imm_data;
	hlen = usmc_roce_encode_hdr(hdr, sizeof(hdr), &p);
	if (hlen < 0)
		return;
	n = payload_iov(qp, w, slot, off, plen, iov);
	sr_tx_append(qp->dev, qp, &qp->peer, hdr, (size_t)hlen, iov, n, plen);

	if (usmc_psn_cmp(p.psn, qp->sent_hi) < 0)
		qp->dev->st.retransmits++, qp->st.retransmits++;
	else
		qp->sent_hi = usmc_psn_add(p.psn, 1);
	if (!qp->stall_since)
		qp->stall_since = now;
	if (!qp->rto_deadline && qp->timeout_ns)
		qp->rto_deadline = rto_clamp(qp, now + qp->timeout_ns);
}

void sr_qp_tx(sr_qp *qp, usmc_tstamp now)
{
	if (qp->pub.state != USMC_QPS_RTS)
		return;
	if (qp->rnr_deadline) {
		if (now < qp->rnr_deadline)
			return;
		qp->rnr_deadline = 0;
	}
	if (qp->tx_stall) {
		qp->tx_stall = 0;
		rewind_to_una(qp);
	}
	while (qp->sq_cur < qp->sq_count && !qp->tx_stall) {
		uint32_t slot = (qp->sq_head + qp->sq_cur) % qp->sq_size;
		sr_swqe *w = &qp->sq[slot];
		uint32_t psn = usmc_psn_add(w->first_psn, qp->cur_pkt);

		if (usmc_psn_cmp(psn, usmc_psn_add(qp->una_psn, qp->window)) >=
		    0)
			break;
		send_pkt(qp, w, slot, qp->cur_pkt, now);
		if (++qp->cur_pkt == w->npkts) {
			qp->cur_pkt = 0;
			qp->sq_cur++;
		}
	}
}

/* ---- completer -------------------------------------------------------- */

/* Go-back-N: transmit again from the oldest unacknowledged PSN. */
static void rewind_to_una(sr_qp *qp)
{
	qp->sq_cur = 0;
	qp->cur_pkt = 0;
	if (qp->sq_count) {
		const sr_swqe *w = &qp->sq[qp->sq_head];

		if (usmc_psn_cmp(qp->una_psn, w->first_psn) > 0)
			qp->cur_pkt = (qp->una_psn - w->first_psn) &
				      USMC_ROCE_PSN_MASK;
	}
	qp->need_ackreq = 1;
}

/* A pause of 50 us lets the socket buffer drain; then go-back-N. */
void sr_qp_tx_stalled(sr_qp *qp, usmc_tstamp now)
{
	if (qp->tx_stall || qp->pub.state != USMC_QPS_RTS)
		return;
	qp->tx_stall = 1;
	if (!qp->rnr_deadline)
		qp->rnr_deadline = now + 50000;
}

/* Everything up to and including |psn| is acknowledged. */
static void ack_upto(sr_qp *qp, uint32_t psn, usmc_tstamp now)
{
	if (usmc_psn_cmp(psn, qp->una_psn) < 0)
		return;
	qp->una_psn = usmc_psn_add(psn, 1);
	while (qp->sq_count &&
	       usmc_psn_cmp(last_psn(&qp->sq[qp->sq_head]), psn) <= 0)
		complete_head(qp, USMC_WC_SUCCESS);
	/* the transmit cursor never lags behind what the peer has */
	if (qp->sq_count && !qp->sq_cur) {
		const sr_swqe *w = &qp->sq[qp->sq_head];
		uint32_t acked =
			(qp->una_psn - w->first_psn) & USMC_ROCE_PSN_MASK;

		if (usmc_psn_cmp(qp->una_psn, w->first_psn) > 0 &&
		    acked > qp->cur_pkt)
			qp->cur_pkt = acked;
	}
	qp->retries_left = qp->retry_cnt;
	qp->rnr_left = qp->rnr_retry;
	qp->rto_shift = 0;
	qp->stall_since = qp->una_psn == qp->sent_hi ? 0 : now;
	qp->rto_deadline = (qp->una_psn == qp->sent_hi || !qp->timeout_ns)
				   ? 0
				   : rto_clamp(qp, now + qp->timeout_ns);
}

static usmc_wc_status nak_status(uint8_t syn)
{
	switch (syn) {
	case USMC_AETH_NAK_INVALID_REQ:
		return USMC_WC_REM_INV_REQ_ERR;
	case USMC_AETH_NAK_REM_ACC_ERR:
		return USMC_WC_REM_ACCESS_ERR;
	default:
		return USMC_WC_REM_OP_ERR;
	}
}

static void resp_input(sr_qp *qp, const usmc_roce_pkt *pkt, usmc_tstamp now)
{
	sr_dev *d = qp->dev;
	uint32_t p = pkt->psn;
	uint8_t syn = pkt->aeth_syndrome;

	/* only plain ACKs answer SEND and WRITE; in range [una-1, sent_hi) */
	if (pkt->opcode != USMC_IB_OPCODE_RC_ACKNOWLEDGE ||
	    usmc_psn_cmp(p, usmc_psn_add(qp->una_psn, USMC_ROCE_PSN_MASK)) <
		    0 ||
	    usmc_psn_cmp(p, qp->sent_hi) >= 0) {
		d->st.drop_resp++;
		return;
	}
	switch (syn & USMC_AETH_TYPE_MASK) {
	case USMC_AETH_ACK:
		d->st.acks_rx++;
		ack_upto(qp, p, now);
		return;
	case USMC_AETH_RNR_NAK:
		d->st.rnr_nak_rx++, qp->st.rnr_nak_rx++;
		if (usmc_psn_cmp(p, qp->una_psn) < 0)
			return;
		ack_upto(qp, usmc_psn_add(p, USMC_ROCE_PSN_MASK), now);
		qp->stall_since = now; /* not silent: only not ready */
		if (qp->rnr_retry != 7) {
			if (qp->rnr_left <= 0) {
				qp_error(qp, USMC_WC_RNR_RETRY_EXC_ERR);
				return;
			}
			qp->rnr_left--;
		}
		qp->rnr_deadline =
			now + (usmc_tstamp)rnr_usec[syn & 0x1f] * 1000;
		qp->rto_deadline = 0;
		rewind_to_una(qp);
		return;
	case USMC_AETH_NAK:
		if (syn > USMC_AETH_NAK_REM_OP_ERR) {
			d->st.drop_resp++;
			return;
		}
		if (usmc_psn_cmp(p, qp->una_psn) < 0)
			return;
		ack_upto(qp, usmc_psn_add(p, USMC_ROCE_PSN_MASK), now);
		if (syn == USMC_AETH_NAK_PSN_SEQ_ERROR) {
			d->st.nak_seq_rx++, qp->st.nak_seq_rx++;
			qp->stall_since = now; /* the peer is there */
			if (qp->retry_cnt != 7) {
				if (qp->retries_left <= 0) {
					qp_error(qp, USMC_WC_RETRY_EXC_ERR);
					return;
				}
				qp->retries_left--;
			}
			rewind_to_una(qp);
			return;
		}
		d->st.nak_err_rx++;
		qp_error(qp, nak_status(syn));
		return;
	default:
		d->st.drop_resp++;
	}
}

/*
 * Retransmit timeouts back off exponentially, from the QP's timeout up to
 * a cap, until an ACK makes progress. With retry_time=0, retry_cnt 7
 * retries for ever (as rxe does), so a peer that is stopped (SIGSTOP: its
 * RNIC is a thread of the stopped process) or gone is resent to for as
 * long as the link lives: the cap, SR_RTO_MAX_NS, bounds that to about one
 * go-back-N pass per second, and a resumed peer is caught up within it.
 * With retry_time the cap is a tenth of it (150 ms for the default 1.5 s,
 * never below the timeout), so about ten resends fit before the QP gives
 * up: under heavy loss a live peer is not taken for a silent one after
 * three or four unlucky rounds. The first resend still comes after one
 * timeout (134 ms for timeout 15); a finite retry_cnt spends its budget
 * more slowly.
 */
#define SR_RTO_MAX_NS 1000000000ULL

static usmc_tstamp rto_next(sr_qp *qp, usmc_tstamp now)
{
	uint64_t t = qp->timeout_ns, max = SR_RTO_MAX_NS;
	uint64_t rt = qp->dev->retry_time_ns;

	if (rt && rt / 10 < max)
		max = rt / 10;
	if (max < qp->timeout_ns)
		max = qp->timeout_ns;
	if (qp->rto_shift < 32)
		qp->rto_shift++;
	for (unsigned int i = 0; i < qp->rto_shift && t < max; i++)
		t <<= 1;
	if (t > max)
		t = max;
	return now + t;
}

usmc_tstamp sr_qp_timers(sr_qp *qp, usmc_tstamp now)
{
	usmc_tstamp next = 0;

	if (qp->pub.state != USMC_QPS_RTS)
		return 0;
	if (qp->rto_deadline && now >= qp->rto_deadline) {
		if (qp->una_psn == qp->sent_hi) {
			qp->rto_deadline = 0;
		} else {
			qp->dev->st.retry_timeouts++;
			qp->st.retry_timeouts++;
			if (qp->dev->retry_time_ns && qp->stall_since &&
			    now - qp->stall_since >= qp->dev->retry_time_ns) {
				qp->dev->st.retry_time_exc++;
				qp_error(qp, USMC_WC_RETRY_EXC_ERR);
				return 0;
			}
			if (qp->retry_cnt != 7) {
				if (qp->retries_left <= 0) {
					qp_error(qp, USMC_WC_RETRY_EXC_ERR);
					return 0;
				}
				qp->retries_left--;
			}
			rewind_to_una(qp);
			qp->rto_deadline = rto_clamp(qp, rto_next(qp, now));
		}
	}
	if (qp->rto_deadline)
		next = qp->rto_deadline;
	if (qp->rnr_deadline && (!next || qp->rnr_deadline < next))
		next = qp->rnr_deadline;
	return next;
}

/* ---- responder -------------------------------------------------------- */

static void send_ack(sr_qp *qp, uint8_t syn, uint32_t psn)
{
	uint8_t hdr[USMC_ROCE_BTH_LEN + USMC_ROCE_AETH_LEN];
	usmc_roce_pkt p;
	int hlen;

	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_ACKNOWLEDGE;
	p.pkey = USMC_ROCE_DEFAULT_PKEY;
	p.dest_qpn = qp->dest_qpn;
	p.psn = psn & USMC_ROCE_PSN_MASK;
	p.aeth_syndrome = syn;
	p.aeth_msn = qp->msn & 0xffffff;
	hlen = usmc_roce_encode_hdr(hdr, sizeof(hdr), &p);
	if (hlen > 0)
		sr_tx_append(qp->dev, NULL, &qp->peer, hdr, (size_t)hlen, NULL,
			     0, 0);
}

void sr_qp_flush_ack(sr_qp *qp)
{
	if (!qp->ack_pending)
		return;
	qp->ack_pending = 0;
	qp->dev->st.acks_tx++;
	send_ack(qp, USMC_AETH_ACK_UNLIMITED, qp->ack_psn);
}

static void send_nak(sr_qp *qp, uint8_t syn, uint32_t psn)
{
	sr_qp_flush_ack(qp);
	send_ack(qp, syn, psn);
}

/* Class C errors: NAK, then both directions of the QP are dead. */
static void resp_fatal(sr_qp *qp, uint8_t syn, uint32_t psn)
{
	qp->dev->st.nak_err_tx++;
	send_nak(qp, syn, psn);
	qp_error(qp, USMC_WC_WR_FLUSH_ERR);
}

/* Copies into the receive WR's SGEs at |off|; WC status. */
static usmc_wc_status recv_copy(sr_qp *qp, const sr_rwqe *r, uint64_t off,
				const uint8_t *src, size_t len)
{
	if (off + len > r->length)
		return USMC_WC_LOC_LEN_ERR;
	for (uint32_t i = 0; i < r->wr.num_sge && len; i++) {
		const usmc_sge *s = &r->wr.sg_list[i];
		size_t take;

		if (off >= s->length) {
			off -= s->length;
			continue;
		}
		/* the MR may have gone since post_recv */
		if (!sge_ok(qp->dev, s, USMC_ACCESS_LOCAL_WRITE))
			return USMC_WC_LOC_PROT_ERR;
		take = s->length - off < len ? s->length - off : len;
		memcpy((uint8_t *)(uintptr_t)s->addr + off, src, take);
		src += take;
		len -= take;
		off = 0;
	}
	return USMC_WC_SUCCESS;
}

static void pop_recv(sr_qp *qp, usmc_wc_status st, usmc_wc_opcode op,
		     uint32_t byte_len, uint32_t imm, uint32_t flags)
{
	push_wc(qp, qp->rq[qp->rq_head].wr.wr_id, st, op, byte_len, imm, flags);
	qp->rq_head = (qp->rq_head + 1) % qp->rq_size;
	qp->rq_count--;
}

/* [va, va+len) inside an MR with REMOTE_WRITE, reached by |rkey|. */
static uint8_t *rkey_target(sr_dev *d, uint32_t rkey, uint64_t va, uint64_t len)
{
	sr_mr *mr = sr_mr_by_rkey(d, rkey);

	if (!mr || !(mr->pub.access & USMC_ACCESS_REMOTE_WRITE) ||
	    va < mr->pub.iova || va - mr->pub.iova > mr->pub.length ||
	    len > mr->pub.length - (va - mr->pub.iova))
		return NULL;
	return (uint8_t *)mr->pub.addr + (va - mr->pub.iova);
}

static void req_input(sr_qp *qp, const usmc_roce_pkt *pkt)
{
	sr_dev *d = qp->dev;
	uint32_t f = pkt->flags;
	uint32_t pl = (uint32_t)pkt->payload_len;
	int32_t diff = usmc_psn_cmp(pkt->psn, qp->resp_psn);
	int ok;

	if (diff > 0) {
		/* a gap: one NAK until the expected PSN arrives */
		if (!qp->sent_psn_nak) {
			qp->sent_psn_nak = 1;
			d->st.nak_seq_tx++;
			send_nak(qp, USMC_AETH_NAK_PSN_SEQ_ERROR, qp->resp_psn);
		}
		return;
	}
	if (diff < 0) {
		/* duplicate: re-ACK the last PSN executed (C9-105) */
		d->st.dup_rx++;
		qp->ack_pending = 1;
		qp->ack_psn = usmc_psn_add(qp->resp_psn, USMC_ROCE_PSN_MASK);
		return;
	}

	if (f & (USMC_ROCE_F_READ | USMC_ROCE_F_ATOMIC | USMC_ROCE_F_IETH)) {
		resp_fatal(qp, USMC_AETH_NAK_INVALID_REQ, pkt->psn);
		return;
	}
	if (qp->opclass == SR_OPC_SEND)
		ok = (f & USMC_ROCE_F_SEND) && !(f & USMC_ROCE_F_FIRST);
	else if (qp->opclass == SR_OPC_WRITE)
		ok = (f & USMC_ROCE_F_WRITE) && !(f & USMC_ROCE_F_FIRST);
	else
		ok = !!(f & USMC_ROCE_F_FIRST);
	if ((f & USMC_ROCE_F_WRITE) && !(qp->access & USMC_ACCESS_REMOTE_WRITE))
		ok = 0;
	/* FIRST/MIDDLE carry exactly the MTU, LAST 1..MTU, ONLY 0..MTU, and
	 * the pad is what the payload needs */
	if (!(f & USMC_ROCE_F_LAST))
		ok = ok && pl == qp->mtu && !pkt->padcnt;
	else
		ok = ok && pl <= qp->mtu && (pl || (f & USMC_ROCE_F_FIRST)) &&
		     pkt->padcnt == ((4 - (pl & 3)) & 3);
	if (!ok) {
		resp_fatal(qp, USMC_AETH_NAK_INVALID_REQ, pkt->psn);
		return;
	}

	if ((f & USMC_ROCE_F_RWR) &&
	    ((f & USMC_ROCE_F_FIRST) || !(f & USMC_ROCE_F_SEND)) &&
	    !qp->rq_count) {
		/* no receive WR: RNR NAK, the requester retries later */
		d->st.rnr_nak_tx++;
		send_nak(qp, (uint8_t)(USMC_AETH_RNR_NAK | qp->min_rnr_timer),
			 pkt->psn);
		return;
	}

	if (f & USMC_ROCE_F_SEND) {
		usmc_wc_status st;

		if (f & USMC_ROCE_F_FIRST)
			qp->recv_off = 0;
		st = recv_copy(qp, &qp->rq[qp->rq_head], qp->recv_off,
			       pkt->payload, pl);
		if (st != USMC_WC_SUCCESS) {
			pop_recv(qp, st, USMC_WC_RECV, 0, 0, 0);
			resp_fatal(qp,
				   st == USMC_WC_LOC_LEN_ERR
					   ? USMC_AETH_NAK_INVALID_REQ
					   : USMC_AETH_NAK_REM_OP_ERR,
				   pkt->psn);
			return;
		}
		qp->recv_off += pl;
		if (f & USMC_ROCE_F_LAST) {
			int imm = !!(f & USMC_ROCE_F_IMMDT);

			pop_recv(qp, USMC_WC_SUCCESS, USMC_WC_RECV,
				 (uint32_t)qp->recv_off, imm ? pkt->imm : 0,
				 imm ? USMC_WC_WITH_IMM : 0);
			qp->msn++;
			qp->opclass = SR_OPC_NONE;
		} else {
			qp->opclass = SR_OPC_SEND;
		}
	} else {
		if (f & USMC_ROCE_F_FIRST) {
			if (pkt->reth_len > SR_MAX_MSG_SIZE) {
				resp_fatal(qp, USMC_AETH_NAK_INVALID_REQ,
					   pkt->psn);
				return;
			}
			/* the whole range is checked up front, as rxe */
			if (pkt->reth_len &&
			    !rkey_target(d, pkt->reth_rkey, pkt->reth_va,
					 pkt->reth_len)) {
				resp_fatal(qp, USMC_AETH_NAK_REM_ACC_ERR,
					   pkt->psn);
				return;
			}
			qp->wr_va = pkt->reth_va;
			qp->wr_rkey = pkt->reth_rkey;
			qp->wr_remaining = qp->wr_total = pkt->reth_len;
		}
		if ((f & USMC_ROCE_F_LAST) ? pl != qp->wr_remaining
					   : pl >= qp->wr_remaining) {
			resp_fatal(qp, USMC_AETH_NAK_INVALID_REQ, pkt->psn);
			return;
		}
		if (pl) {
			uint8_t *dst =
				rkey_target(d, qp->wr_rkey, qp->wr_va, pl);

			if (!dst) {
				resp_fatal(qp, USMC_AETH_NAK_REM_ACC_ERR,
					   pkt->psn);
				return;
			}
			memcpy(dst, pkt->payload, pl);
		}
		qp->wr_va += pl;
		qp->wr_remaining -= pl;
		if (f & USMC_ROCE_F_LAST) {
			if (f & USMC_ROCE_F_IMMDT)
				pop_recv(qp, USMC_WC_SUCCESS,
					 USMC_WC_RECV_RDMA_WITH_IMM,
					 qp->wr_total, pkt->imm,
					 USMC_WC_WITH_IMM);
			qp->msn++;
			qp->opclass = SR_OPC_NONE;
		} else {
			qp->opclass = SR_OPC_WRITE;
		}
	}

	qp->resp_psn = usmc_psn_add(qp->resp_psn, 1);
	qp->sent_psn_nak = 0;
	if (pkt->ackreq) {
		qp->ack_pending = 1;
		qp->ack_psn = pkt->psn;
	}
}

void sr_qp_input(sr_qp *qp, const usmc_roce_pkt *pkt, usmc_tstamp now)
{
	if (pkt->flags & USMC_ROCE_F_REQ)
		req_input(qp, pkt);
	else
		resp_input(qp, pkt, now);
}
