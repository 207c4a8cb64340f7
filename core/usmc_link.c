/* SPDX-License-Identifier: MIT */
/*
 * Links (net/smc smc_wr.c and the link half of smc_core.c): QP and WR
 * buffer set-up, the link states, TX slots and the control ring, receive
 * buffers, completion dispatch and link down.
 */
#include "usmc_conv.h"
#include "usmc_core_int.h"

static void link_destroy_qp(usmc_link *link)
{
	usmc_ctx *ctx = link->lgr->ctx;

	if (link->qp_created) {
		link->qp_created = 0;
		ctx->cb.link_destroy_qp(ctx->user, link);
	}
	link->state = USMC_LNK_UNUSED;
	link->qp_rts = 0;
}

void usmc_link_free(usmc_link *link)
{
	usmc_lgr *lgr = link->lgr;
	usmc_ctx *ctx = lgr->ctx;

	link_destroy_qp(link);
	usmc_ctx_free_mr(ctx, &link->tx_mr);
	usmc_ctx_free_mr(ctx, &link->rx_mr);
	usmc_ctx_free_mr(ctx, &link->v2_mr);
	usmc_mem_free(ctx, link->slots);
	lgr->links[link->link_idx] = NULL;
	usmc_mem_free(ctx, link);
}

/* ---- links ---- */

static int link_post_recv(usmc_link *link, uint32_t idx)
{
	usmc_ctx *ctx = link->lgr->ctx;
	usmc_recv_wr wr;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = USMC_WRID(USMC_WRID_RX, idx);
	wr.num_sge = 1;
	wr.sg_list[0].addr =
		(uint64_t)(uintptr_t)link->rx_mr.addr + idx * USMC_WR_BUF_SIZE;
	wr.sg_list[0].length = USMC_WR_BUF_SIZE;
	wr.sg_list[0].lkey = link->rx_mr.lkey;
	if (link->v2_mr.addr) {
		/* v2 LLC messages spill into one shared buffer (as Linux) */
		wr.num_sge = 2;
		wr.sg_list[1].addr = (uint64_t)(uintptr_t)link->v2_mr.addr +
				     USMC_WR_BUF_V2_SIZE;
		wr.sg_list[1].length = USMC_WR_BUF_V2_SIZE - USMC_WR_BUF_SIZE;
		wr.sg_list[1].lkey = link->v2_mr.lkey;
	}
	return ctx->cb.post_recv(ctx->user, link, &wr);
}

int usmc_link_create(usmc_lgr *lgr, unsigned int dev_idx, usmc_link **plink)
{
	usmc_ctx *ctx = lgr->ctx;
	usmc_link_qp_info qi;
	usmc_link *link;
	int idx = -1, rv;
	uint8_t psn[3];

	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		if (!lgr->links[i]) {
			idx = i;
			break;
		}
	}
	if (idx < 0)
		return USMC_ERR_LIMIT;
	if (dev_idx >= ctx->s.ndevices)
		return USMC_ERR_INVALID_ARGUMENT;
	link = usmc_mem_calloc(ctx, 1, sizeof(*link));
	if (!link)
		return USMC_ERR_NOMEM;
	link->lgr = lgr;
	link->link_idx = (uint8_t)idx;
	link->dev_idx = (uint8_t)dev_idx;
	link->state = USMC_LNK_INACTIVE;
	link->testlink_expiry = USMC_TSTAMP_NONE;
	lgr->links[idx] = link;
	link->nslots = ctx->s.send_wr;
	link->nrecv = ctx->s.recv_wr;
	link->slots = usmc_mem_calloc(ctx, link->nslots, sizeof(*link->slots));
	if (!link->slots) {
		rv = USMC_ERR_NOMEM;
		goto fail;
	}
	rv = ctx->cb.alloc_mr(ctx->user,
			      (size_t)link->nslots * USMC_WR_BUF_SIZE,
			      USMC_ACCESS_LOCAL_WRITE, &link->tx_mr);
	if (rv)
		goto fail;
	rv = ctx->cb.alloc_mr(ctx->user, (size_t)link->nrecv * USMC_WR_BUF_SIZE,
			      USMC_ACCESS_LOCAL_WRITE, &link->rx_mr);
	if (rv)
		goto fail;
	if (lgr->version == SMC_V2) {
		rv = ctx->cb.alloc_mr(ctx->user, 2 * USMC_WR_BUF_V2_SIZE,
				      USMC_ACCESS_LOCAL_WRITE, &link->v2_mr);
		if (rv)
			goto fail;
	}
	memset(&qi, 0, sizeof(qi));
	rv = ctx->cb.link_create_qp(ctx->user, link, &qi);
	if (rv)
		goto fail;
	link->qp_created = 1;
	link->qp_num = qi.qp_num;
	ctx->cb.rand(psn, sizeof(psn), ctx->user);
	link->psn = usmc_get_be24(psn);
	/* receives are posted before the CLC Confirm / CONFIRM_LINK goes out */
	for (uint32_t i = 0; i < link->nrecv; i++) {
		rv = link_post_recv(link, i);
		if (rv)
			goto fail;
	}
	*plink = link;
	return 0;
fail:
	usmc_link_free(link);
	return rv < 0 ? rv : USMC_ERR_CALLBACK_FAILURE;
}

int usmc_link_ready(usmc_link *link, int to_rts)
{
	usmc_ctx *ctx = link->lgr->ctx;
	usmc_link_peer p;
	int rv;

	memset(&p, 0, sizeof(p));
	p.qp_num = link->peer_qpn;
	p.psn = link->peer_psn;
	memcpy(p.gid, link->peer_gid, 16);
	memcpy(p.mac, link->peer_mac, 6);
	p.path_mtu = link->path_mtu;
	p.local_psn = link->psn;
	rv = ctx->cb.link_ready(ctx->user, link, &p, to_rts);
	if (rv)
		return rv < 0 ? rv : USMC_ERR_CALLBACK_FAILURE;
	if (to_rts)
		link->qp_rts = 1;
	else
		link->qp_rtr = 1;
	return 0;
}

int usmc_link_usable(const usmc_link *link)
{
	return link && link->qp_rts && link->state >= USMC_LNK_ACTIVATING &&
	       !link->lgr->terminating;
}

int usmc_link_get_slot(usmc_link *link)
{
	if (link->slots_used >= link->nslots)
		return -1;
	for (int i = 0; i < link->nslots; i++) {
		if (!link->slots[i].busy) {
			memset(&link->slots[i], 0, sizeof(link->slots[i]));
			link->slots[i].busy = 1;
			link->slots_used++;
			return i;
		}
	}
	return -1;
}

uint8_t *usmc_link_slot_buf(usmc_link *link, int idx)
{
	return (uint8_t *)link->tx_mr.addr + (size_t)idx * USMC_WR_BUF_SIZE;
}

void usmc_link_put_slot(usmc_link *link, int idx)
{
	if (link->slots[idx].busy) {
		link->slots[idx].busy = 0;
		link->slots[idx].conn = NULL;
		link->slots_used--;
	}
}

/* Posts the 44-byte message in slot |idx| as a signaled, solicited SEND. A
 * failed post takes the link down (smc_wr_tx_send). */
int usmc_link_post_slot(usmc_link *link, int idx, usmc_tstamp ts)
{
	usmc_ctx *ctx = link->lgr->ctx;
	usmc_wr wr;
	int rv;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = USMC_WRID(USMC_WRID_TX, (uint32_t)idx);
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED | USMC_SEND_SOLICITED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)usmc_link_slot_buf(link, idx);
	wr.sg_list[0].length = USMC_WR_TX_SIZE;
	wr.sg_list[0].lkey = link->tx_mr.lkey;
	rv = ctx->cb.post_send(ctx->user, link, &wr);
	if (rv) {
		usmc_link_put_slot(link, idx);
		usmc_log(ctx, USMC_LOG_ERR, "link %u: post_send failed: %s",
			 link->link_id, usmc_strerror(rv));
		usmc_link_down(link, ts);
		return rv < 0 ? rv : USMC_ERR_TRANSPORT;
	}
	return 0;
}

/* Control messages that found every TX slot busy wait in a per-link ring
 * and go out, in order, as slots free: LLC answers (the kernel's LLC
 * worker would sleep for a slot) and the last CDC of each connection
 * released while owing close flags, so the ring holds one per possible
 * connection plus the LLC answers. */
static uint8_t *pend_slot(usmc_link *link, unsigned int i)
{
	return link->llc_pend[(link->pend_head + i) % USMC_CTRL_PEND_MAX];
}

static int pend_push(usmc_link *link, const uint8_t *msg)
{
	if (link->nllc_pend >= USMC_CTRL_PEND_MAX) {
		usmc_log(link->lgr->ctx, USMC_LOG_WARN,
			 "link %u: control queue full, message dropped",
			 link->link_id);
		return USMC_ERR_BUSY;
	}
	memcpy(pend_slot(link, link->nllc_pend), msg, USMC_WR_TX_SIZE);
	link->nllc_pend++;
	return 0;
}

/* Sends a ready 44-byte message (no completion accounting), or queues it
 * behind the waiting ones when no TX slot is free. */
int usmc_link_send_raw(usmc_link *link, const uint8_t *msg, usmc_tstamp ts)
{
	int idx;

	if (!link->nllc_pend && (idx = usmc_link_get_slot(link)) >= 0) {
		memcpy(usmc_link_slot_buf(link, idx), msg, USMC_WR_TX_SIZE);
		return usmc_link_post_slot(link, idx, ts);
	}
	return pend_push(link, msg);
}

static int link_flush_pending(usmc_link *link, usmc_tstamp ts)
{
	while (link->nllc_pend) {
		int idx = usmc_link_get_slot(link);
		int rv;

		if (idx < 0)
			return USMC_ERR_BUSY;
		memcpy(usmc_link_slot_buf(link, idx), pend_slot(link, 0),
		       USMC_WR_TX_SIZE);
		link->pend_head = (link->pend_head + 1) % USMC_CTRL_PEND_MAX;
		link->nllc_pend--;
		rv = usmc_link_post_slot(link, idx, ts);
		if (rv)
			return rv;
	}
	return 0;
}

/* ---- completions ---- */

void usmc_link_slot_freed(usmc_link *link, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (link_flush_pending(link, ts) || lgr->terminating)
		return;
	usmc_llc_run(lgr, ts);
	if (!link->waiters || lgr->terminating)
		return;
	/* round robin from where the last wake-up stopped, so no connection
	 * starves; a push may take the link down: stop then */
	for (int k = 0; k < USMC_CONNS_MAX && !lgr->terminating &&
			link->slots_used < link->nslots;
	     k++) {
		unsigned int i =
			1 + (link->wake_rr + (unsigned int)k) % USMC_CONNS_MAX;
		usmc_conn *c = lgr->conns[i];

		if (c && c->link == link && c->waiting_slot) {
			c->waiting_slot = 0;
			link->waiters--;
			link->wake_rr = i;
			usmc_tx_push(c, ts);
		}
	}
}

int usmc_link_on_wc(usmc_link *link, const usmc_wc *wc, usmc_tstamp ts)
{
	unsigned int kind = USMC_WRID_KIND(wc->wr_id);
	uint32_t idx = USMC_WRID_IDX(wc->wr_id);
	usmc_lgr *lgr = link->lgr;

	lgr->ctx->now = ts;
	if (lgr->terminating)
		return 0;
	if (wc->status != USMC_WC_SUCCESS) {
		usmc_log(lgr->ctx, USMC_LOG_ERR, "link %u: %s completion: %s",
			 link->link_id, kind == USMC_WRID_RX ? "recv" : "send",
			 usmc_wc_status_str(wc->status));
		return usmc_link_down(link, ts);
	}
	switch (kind) {
	case USMC_WRID_TX: {
		usmc_tx_slot s;

		if (idx >= link->nslots || !link->slots[idx].busy)
			return USMC_ERR_INVALID_ARGUMENT;
		s = link->slots[idx];
		usmc_link_put_slot(link, (int)idx);
		if (s.conn)
			usmc_tx_cdc_done(s.conn, &s, ts);
		if (!lgr->terminating)
			usmc_link_slot_freed(link, ts);
		return 0;
	}
	case USMC_WRID_RX: {
		uint8_t msg[USMC_WR_BUF_V2_SIZE];
		size_t len = wc->byte_len;
		const uint8_t *rx;
		int rv;

		if (idx >= link->nrecv)
			return USMC_ERR_INVALID_ARGUMENT;
		rx = (const uint8_t *)link->rx_mr.addr +
		     (size_t)idx * USMC_WR_BUF_SIZE;
		/* copy out, then give the buffer back before processing */
		if (len > USMC_WR_BUF_SIZE && link->v2_mr.addr) {
			if (len > USMC_WR_BUF_V2_SIZE)
				len = USMC_WR_BUF_V2_SIZE;
			memcpy(msg, rx, USMC_WR_BUF_SIZE);
			memcpy(msg + USMC_WR_BUF_SIZE,
			       (const uint8_t *)link->v2_mr.addr +
				       USMC_WR_BUF_V2_SIZE,
			       len - USMC_WR_BUF_SIZE);
		} else {
			if (len > USMC_WR_BUF_SIZE)
				len = USMC_WR_BUF_SIZE;
			memcpy(msg, rx, len);
		}
		rv = link_post_recv(link, idx);
		if (rv) {
			usmc_link_down(link, ts);
			return rv < 0 ? rv : USMC_ERR_TRANSPORT;
		}
		link->last_rx = ts;
		if (!len)
			return 0;
		if (msg[0] == SMC_CDC_MSG_TYPE)
			usmc_rx_cdc(link, msg, len, ts);
		else
			usmc_llc_rx(link, msg, len, ts);
		return 0;
	}
	default:
		/* unsignaled RDMA WRITEs report only errors */
		return 0;
	}
}

int usmc_link_down(usmc_link *link, usmc_tstamp ts)
{
	/* one link per lgr: no failover target, terminate (ECONNABORTED) */
	usmc_lgr_terminate(link->lgr, USMC_ERR_CONNABORTED, 0, ts);
	return 0;
}

void usmc_link_set_user(usmc_link *l, void *p)
{
	l->user = p;
}

void *usmc_link_get_user(const usmc_link *l)
{
	return l->user;
}

uint32_t usmc_link_get_id(const usmc_link *l)
{
	return l->link_id;
}

usmc_lgr *usmc_link_get_lgr(const usmc_link *l)
{
	return l->lgr;
}

unsigned int usmc_link_get_dev_idx(const usmc_link *l)
{
	return l->dev_idx;
}
