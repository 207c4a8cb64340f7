/* SPDX-License-Identifier: MIT */
/*
 * Links (net/smc smc_wr.c and the link half of smc_core.c): QP and WR
 * buffer set-up, the link states, TX slots and the control ring, receive
 * buffers, completion dispatch and link down.
 */
#include "usmc_conv.h"
#include "usmc_core_int.h"

static void wrq_unlist(usmc_link *link);
static void llc_long_free(usmc_link *link);

static void link_destroy_qp(usmc_link *link)
{
	if (link->qp_created) {
		link->qp_created = 0;
		usmc_link_call_destroy_qp(link);
	}
	link->state = USMC_LNK_UNUSED;
	link->qp_rts = 0;
}

/* Frees the link with its QP and buffers; WRs not pulled yet are dropped
 * (the QP they were for is gone). */
void usmc_link_free(usmc_link *link)
{
	usmc_lgr *lgr = link->lgr;
	usmc_ctx *ctx = lgr->ctx;

	wrq_unlist(link);
	llc_long_free(link);
	link_destroy_qp(link);
	usmc_ctx_call_free_mr(ctx, &link->tx_mr);
	usmc_ctx_call_free_mr(ctx, &link->rx_mr);
	usmc_ctx_call_free_mr(ctx, &link->v2_mr);
	usmc_mem_free(ctx, link->slots); /* and link->wrq */
	lgr->links[link->link_idx] = NULL;
	if (lgr->delayed_link == link) {
		lgr->delayed = 0;
		lgr->delayed_link = NULL;
	}
	/* the peer's RMBs on this link are no more */
	for (int i = 0; i < USMC_RTOKENS_MAX && lgr->rtokens; i++)
		lgr->rtokens[i].has[link->link_idx] = 0;
	for (int i = 1; i <= USMC_CONNS_MAX; i++)
		if (lgr->conns[i])
			lgr->conns[i]->peer_rkey_has[link->link_idx] = 0;
	usmc_mem_free(ctx, link);
}

/* ---- the work-request queue, pulled with usmc_ctx_next_wr ---- */

static void wrq_list(usmc_link *link)
{
	usmc_ctx *ctx = link->lgr->ctx;

	if (link->wrq_listed)
		return;
	link->wrq_listed = 1;
	link->wrq_next = NULL;
	if (ctx->wrq_links_tail)
		ctx->wrq_links_tail->wrq_next = link;
	else
		ctx->wrq_links = link;
	ctx->wrq_links_tail = link;
}

static void wrq_unlist(usmc_link *link)
{
	usmc_ctx *ctx = link->lgr->ctx;
	usmc_link *prev = NULL;

	link->wrq_len = 0;
	link->wrq_lost = 0;
	if (!link->wrq_listed)
		return;
	for (usmc_link *l = ctx->wrq_links; l; prev = l, l = l->wrq_next) {
		if (l != link)
			continue;
		if (prev)
			prev->wrq_next = l->wrq_next;
		else
			ctx->wrq_links = l->wrq_next;
		if (ctx->wrq_links_tail == l)
			ctx->wrq_links_tail = prev;
		break;
	}
	link->wrq_listed = 0;
	link->wrq_next = NULL;
}

/* Drops the queued WRs (usmc_link_post_failed, usmc_link_drop_queued): a
 * v2 SEND among them never completes, so the v2 buffer is free again, as
 * smc_wr_tx_v2_send puts its slot back when the post fails. */
static void wrq_drop(usmc_link *link)
{
	uint64_t v2 = USMC_WRID(USMC_WRID_TX, (uint32_t)link->v2_slot);

	for (unsigned int k = 0; k < link->wrq_len && link->v2_slot >= 0; k++) {
		const usmc_wrq_ent *e =
			&link->wrq[(link->wrq_head + k) % link->wrq_cap];

		if (e->kind == USMC_WRK_SEND && e->wr.wr_id == v2)
			link->v2_slot = -1;
	}
	wrq_unlist(link);
}

/* A free entry at the tail; the caller fills its |wr| (all of it for a
 * send, the wr_id for a receive). */
static usmc_wrq_ent *wrq_push(usmc_link *link, usmc_wr_kind kind)
{
	usmc_wrq_ent *e;
	unsigned int i;

	wrq_list(link);
	if (link->wrq_len == link->wrq_cap) {
		if (!link->wrq_lost)
			usmc_log(link->lgr->ctx, USMC_LOG_ERR,
				 "link %u: work-request queue overflow",
				 link->link_id);
		link->wrq_lost = 1;
		return NULL;
	}
	i = link->wrq_head + link->wrq_len;
	if (i >= link->wrq_cap)
		i -= link->wrq_cap;
	link->wrq_len++;
	e = &link->wrq[i];
	e->kind = kind;
	return e;
}

void usmc_link_queue_send(usmc_link *link, const usmc_wr *wr)
{
	usmc_wrq_ent *e = wrq_push(link, USMC_WRK_SEND);

	if (e)
		e->wr = *wr;
}

/* RX buffer |idx| goes (back) to the receive queue. */
static void link_queue_recv(usmc_link *link, uint32_t idx)
{
	usmc_wrq_ent *e = wrq_push(link, USMC_WRK_RECV);

	if (e)
		e->wr.wr_id = USMC_WRID(USMC_WRID_RX, idx);
}

static void link_recv_wr(const usmc_link *link, uint64_t wr_id,
			 usmc_recv_wr *wr)
{
	uint32_t idx = USMC_WRID_IDX(wr_id);

	memset(wr, 0, sizeof(*wr));
	wr->wr_id = wr_id;
	wr->num_sge = 1;
	wr->sg_list[0].addr =
		(uint64_t)(uintptr_t)link->rx_mr.addr + idx * USMC_WR_BUF_SIZE;
	wr->sg_list[0].length = USMC_WR_BUF_SIZE;
	wr->sg_list[0].lkey = link->rx_mr.lkey;
	if (link->v2_mr.addr) {
		/* v2 LLC messages spill into one shared buffer (as Linux) */
		wr->num_sge = 2;
		wr->sg_list[1].addr = (uint64_t)(uintptr_t)link->v2_mr.addr +
				      USMC_WR_BUF_V2_SIZE;
		wr->sg_list[1].length = USMC_WR_BUF_V2_SIZE - USMC_WR_BUF_SIZE;
		wr->sg_list[1].lkey = link->v2_mr.lkey;
	}
}

/* Per-link counters (usmc_lgr_get_info): a send-queue WR as it is handed
 * out; the bytes are the RDMA WRITE payload, the data itself. */
static void link_count_send(usmc_link *link, const usmc_wr *wr)
{
	link->n_tx_wrs++;
	if (wr->opcode == USMC_WR_RDMA_WRITE ||
	    wr->opcode == USMC_WR_RDMA_WRITE_WITH_IMM)
		for (uint32_t i = 0; i < wr->num_sge && i < USMC_WR_MAX_SGE;
		     i++)
			link->n_tx_bytes += wr->sg_list[i].length;
}

int usmc_ctx_next_wr(usmc_ctx *ctx, usmc_link_wr *out)
{
	usmc_link *link;

	if (!ctx || !out)
		return USMC_ERR_INVALID_ARGUMENT;
	while ((link = ctx->wrq_links)) {
		if (link->wrq_len) {
			const usmc_wrq_ent *e = &link->wrq[link->wrq_head];

			out->link = link;
			out->kind = e->kind;
			if (e->kind == USMC_WRK_RECV) {
				link_recv_wr(link, e->wr.wr_id, &out->wr.recv);
			} else {
				out->wr.send = e->wr;
				link_count_send(link, &e->wr);
				if (link->failover_first_wr) {
					link->failover_first_wr = 0;
					usmc_log(ctx, USMC_LOG_INFO,
						 "lgr %u link %u: first WR "
						 "after "
						 "failover",
						 link->lgr->id, link->link_id);
				}
			}
			if (++link->wrq_head == link->wrq_cap)
				link->wrq_head = 0;
			link->wrq_len--;
			if (!link->wrq_len && !link->wrq_lost)
				wrq_unlist(link);
			return 1;
		}
		if (link->wrq_lost) {
			/* a WR was lost: the wire order is broken */
			wrq_unlist(link);
			usmc_link_down_why(link, USMC_LINK_DOWN_POST_FAILED,
					   ctx->now);
			continue;
		}
		wrq_unlist(link);
	}
	return 0;
}

int usmc_link_post_failed(usmc_link *link, uint64_t wr_id, int err,
			  usmc_tstamp ts)
{
	usmc_ctx *ctx;

	if (!link)
		return USMC_ERR_INVALID_ARGUMENT;
	ctx = link->lgr->ctx;
	ctx->now = ts;
	usmc_log(ctx, USMC_LOG_ERR, "link %u: %s WR %016llx not posted: %s",
		 link->link_id,
		 USMC_WRID_KIND(wr_id) == USMC_WRID_RX ? "receive" : "send",
		 (unsigned long long)wr_id, usmc_strerror(err));
	if (link->v2_slot >= 0 &&
	    wr_id == USMC_WRID(USMC_WRID_TX, (uint32_t)link->v2_slot))
		link->v2_slot = -1;
	/* what follows it would break the order on the wire */
	wrq_drop(link);
	return usmc_link_down_why(link, USMC_LINK_DOWN_POST_FAILED, ts);
}

/* ---- links ---- */

int usmc_link_create(usmc_lgr *lgr, unsigned int dev_idx, usmc_link **plink)
{
	usmc_ctx *ctx = lgr->ctx;
	usmc_link_qp_info qi;
	usmc_link *link;
	int idx = -1, rv;
	uint8_t psn[3];
	size_t slots_sz;

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
	link->gone_expiry = USMC_TSTAMP_NONE;
	link->clink_resp_slot = -1;
	link->v2_slot = -1;
	lgr->links[idx] = link;
	link->nslots = ctx->s.send_wr;
	link->nrecv = ctx->s.recv_wr;
	/* the TX slots and the WR queue in one allocation */
	link->wrq_cap = 3u * link->nslots + link->nrecv;
	slots_sz = (size_t)link->nslots * sizeof(*link->slots);
	link->slots = usmc_mem_calloc(
		ctx, 1, slots_sz + link->wrq_cap * sizeof(*link->wrq));
	if (!link->slots) {
		rv = USMC_ERR_NOMEM;
		goto fail;
	}
	link->wrq = (usmc_wrq_ent *)(void *)((uint8_t *)link->slots + slots_sz);
	rv = usmc_ctx_call_alloc_mr(ctx, link->dev_idx,
				    (size_t)link->nslots * USMC_WR_BUF_SIZE,
				    USMC_ACCESS_LOCAL_WRITE, &link->tx_mr);
	if (rv)
		goto fail;
	rv = usmc_ctx_call_alloc_mr(ctx, link->dev_idx,
				    (size_t)link->nrecv * USMC_WR_BUF_SIZE,
				    USMC_ACCESS_LOCAL_WRITE, &link->rx_mr);
	if (rv)
		goto fail;
	if (lgr->version == SMC_V2) {
		rv = usmc_ctx_call_alloc_mr(
			ctx, link->dev_idx, 2 * USMC_WR_BUF_V2_SIZE,
			USMC_ACCESS_LOCAL_WRITE, &link->v2_mr);
		if (rv)
			goto fail;
	}
	memset(&qi, 0, sizeof(qi));
	rv = usmc_link_call_create_qp(link, &qi);
	if (rv)
		goto fail;
	link->qp_created = 1;
	link->qp_num = qi.qp_num;
	usmc_ctx_call_rand(ctx, psn, sizeof(psn));
	link->psn = usmc_get_be24(psn);
	/* receives are pulled before the CLC Confirm / CONFIRM_LINK leaves
	 * (the caller drains WRs before it sends CLC bytes) */
	for (uint32_t i = 0; i < link->nrecv; i++)
		link_queue_recv(link, i);
	*plink = link;
	return 0;
fail:
	usmc_link_free(link);
	return rv;
}

int usmc_link_ready(usmc_link *link, int to_rts)
{
	usmc_link_peer p;
	int rv;

	memset(&p, 0, sizeof(p));
	p.qp_num = link->peer_qpn;
	p.psn = link->peer_psn;
	memcpy(p.gid, link->peer_gid, 16);
	memcpy(p.mac, link->peer_mac, 6);
	p.path_mtu = link->path_mtu;
	p.local_psn = link->psn;
	rv = usmc_link_call_ready(link, &p, to_rts);
	if (rv)
		return rv;
	if (to_rts)
		link->qp_rts = 1;
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

/* Queues |len| bytes at |addr| (lkey |lkey|) as the signaled, solicited
 * SEND of TX slot |idx| (smc_wr_tx_send, smc_wr_tx_v2_send). */
void usmc_link_queue_slot_buf(usmc_link *link, int idx, const void *addr,
			      uint32_t len, uint32_t lkey)
{
	usmc_wr wr;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = USMC_WRID(USMC_WRID_TX, (uint32_t)idx);
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED | USMC_SEND_SOLICITED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)addr;
	wr.sg_list[0].length = len;
	wr.sg_list[0].lkey = lkey;
	usmc_link_queue_send(link, &wr);
}

/* Queues the 44-byte message in slot |idx|. */
void usmc_link_queue_slot(usmc_link *link, int idx)
{
	usmc_link_queue_slot_buf(link, idx, usmc_link_slot_buf(link, idx),
				 USMC_WR_TX_SIZE, link->tx_mr.lkey);
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

static int pend_full(usmc_link *link)
{
	if (link->nllc_pend < USMC_CTRL_PEND_MAX)
		return 0;
	usmc_log(link->lgr->ctx, USMC_LOG_WARN,
		 "link %u: control queue full, message dropped", link->link_id);
	return 1;
}

/* |msg| NULL: the entry stands for the last of link->llc_long. */
static int pend_push(usmc_link *link, const uint8_t *msg)
{
	unsigned int i;

	if (pend_full(link))
		return USMC_ERR_BUSY;
	i = (link->pend_head + link->nllc_pend) % USMC_CTRL_PEND_MAX;
	link->pend_long[i] = !msg;
	if (msg)
		memcpy(link->llc_pend[i], msg, USMC_WR_TX_SIZE);
	link->nllc_pend++;
	return 0;
}

/* Sends a ready 44-byte message (no completion accounting), or queues it
 * behind the waiting ones when no TX slot is free. Returns 0, or
 * USMC_ERR_BUSY when the ring is full too (the message is dropped). */
int usmc_link_send_raw(usmc_link *link, const uint8_t *msg)
{
	int idx;

	if (!link->nllc_pend && (idx = usmc_link_get_slot(link)) >= 0) {
		memcpy(usmc_link_slot_buf(link, idx), msg, USMC_WR_TX_SIZE);
		usmc_link_queue_slot(link, idx);
		return 0;
	}
	return pend_push(link, msg);
}

/* The v2 buffer holds |len| bytes: its SEND, on TX slot |idx|'s account;
 * the buffer is busy until that SEND completes. */
static void v2_queue(usmc_link *link, int idx, uint32_t len)
{
	link->v2_slot = idx;
	usmc_link_queue_slot_buf(link, idx, link->v2_mr.addr, len,
				 link->v2_mr.lkey);
}

/* The link has one v2 buffer, and a long message must not be written into
 * it while the last one's SEND may still be read from it. The kernel's
 * smc_wr_tx_get_v2_slot refuses (-EBUSY) while its v2 SEND is pending and
 * its callers then fail their flow; here the message waits instead,
 * encoded, in the control ring's order (a 44-byte message queued after it
 * leaves after it), until the buffer and a TX slot are free. The peer
 * spills every long message into one shared receive buffer (Linux does
 * too), so only one goes per LLC flow: the ADD_LINK request or response,
 * answered before the next. */
int usmc_link_send_long(usmc_link *link, const usmc_llc_msg *msg)
{
	usmc_ctx *ctx = link->lgr->ctx;
	usmc_llc_long *e;
	usmc_ssize n;
	int idx;

	if (!link->v2_mr.addr)
		return USMC_ERR_INTERNAL;
	if (!link->nllc_pend && link->v2_slot < 0 &&
	    (idx = usmc_link_get_slot(link)) >= 0) {
		n = usmc_llc_encode(link->v2_mr.addr, USMC_WR_BUF_V2_SIZE, msg);
		if (n < 0) {
			usmc_link_put_slot(link, idx);
			return (int)n;
		}
		v2_queue(link, idx, (uint32_t)n);
		return 0;
	}
	if (link->nllc_long >= USMC_LLC_LONG_PEND_MAX) {
		usmc_log(ctx, USMC_LOG_WARN,
			 "link %u: %u long LLC messages wait, message dropped",
			 link->link_id, link->nllc_long);
		return USMC_ERR_BUSY;
	}
	if (pend_full(link))
		return USMC_ERR_BUSY;
	e = usmc_mem_calloc(ctx, 1, sizeof(*e));
	if (!e)
		return USMC_ERR_NOMEM;
	n = usmc_llc_encode(e->msg, sizeof(e->msg), msg);
	if (n < 0) {
		usmc_mem_free(ctx, e);
		return (int)n;
	}
	e->len = (uint32_t)n;
	if (link->llc_long_tail)
		link->llc_long_tail->next = e;
	else
		link->llc_long = e;
	link->llc_long_tail = e;
	link->nllc_long++;
	return pend_push(link, NULL);
}

static void llc_long_free(usmc_link *link)
{
	usmc_llc_long *e;

	while ((e = link->llc_long)) {
		link->llc_long = e->next;
		usmc_mem_free(link->lgr->ctx, e);
	}
	link->llc_long_tail = NULL;
	link->nllc_long = 0;
}

/* Moves waiting control messages into free TX slots, in order; a long one
 * also waits for the v2 buffer. Returns 0, or USMC_ERR_BUSY when some
 * still wait. */
static int link_flush_pending(usmc_link *link)
{
	while (link->nllc_pend) {
		int is_long = link->pend_long[link->pend_head];
		int idx;

		if (is_long && link->v2_slot >= 0)
			return USMC_ERR_BUSY;
		idx = usmc_link_get_slot(link);
		if (idx < 0)
			return USMC_ERR_BUSY;
		if (is_long) {
			usmc_llc_long *e = link->llc_long;

			link->llc_long = e->next;
			if (!link->llc_long)
				link->llc_long_tail = NULL;
			link->nllc_long--;
			memcpy(link->v2_mr.addr, e->msg, e->len);
			v2_queue(link, idx, e->len);
			usmc_mem_free(link->lgr->ctx, e);
		} else {
			memcpy(usmc_link_slot_buf(link, idx),
			       pend_slot(link, 0), USMC_WR_TX_SIZE);
			usmc_link_queue_slot(link, idx);
		}
		link->pend_head = (link->pend_head + 1) % USMC_CTRL_PEND_MAX;
		link->nllc_pend--;
	}
	return 0;
}

/* ---- completions ---- */

/* A TX slot came back: waiting control messages first, then the local LLC
 * flow, then the connections waiting for a slot. */
static void link_slot_freed(usmc_link *link, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (lgr->terminating || link_flush_pending(link))
		return;
	usmc_llc_run(lgr, ts);
	/* round robin from where the last wake-up stopped, so no connection
	 * starves */
	for (int k = 0; k < USMC_CONNS_MAX && link->waiters &&
			link->slots_used < link->nslots;
	     k++) {
		unsigned int i =
			1 + (link->wake_rr + (unsigned int)k) % USMC_CONNS_MAX;
		usmc_conn *c = lgr->conns[i];

		if (c && c->link == link && c->waiting_slot) {
			c->waiting_slot = 0;
			link->waiters--;
			link->wake_rr = i;
			usmc_tx_push(c);
		}
	}
}

/* Copies received message |idx| (|len| bytes) out to |msg|, then gives its
 * buffer back to the receive queue; returns the length copied. */
static size_t link_rx_take(usmc_link *link, uint32_t idx, size_t len,
			   uint8_t msg[USMC_WR_BUF_V2_SIZE])
{
	const uint8_t *rx = (const uint8_t *)link->rx_mr.addr +
			    (size_t)idx * USMC_WR_BUF_SIZE;

	if (len > USMC_WR_BUF_SIZE && link->v2_mr.addr) {
		if (len > USMC_WR_BUF_V2_SIZE)
			len = USMC_WR_BUF_V2_SIZE;
		memcpy(msg, rx, USMC_WR_BUF_SIZE);
		memcpy(msg + USMC_WR_BUF_SIZE,
		       (const uint8_t *)link->v2_mr.addr + USMC_WR_BUF_V2_SIZE,
		       len - USMC_WR_BUF_SIZE);
	} else {
		if (len > USMC_WR_BUF_SIZE)
			len = USMC_WR_BUF_SIZE;
		memcpy(msg, rx, len);
	}
	link_queue_recv(link, idx);
	return len;
}

/* A completion on the link of a link group we end (lgr->term_link): its
 * TX slots come back for our answers, and the peer's LLC messages are
 * read; CDCs and connections are gone. */
static void link_on_wc_ending(usmc_link *link, unsigned int kind, uint32_t idx,
			      uint32_t byte_len, usmc_tstamp ts)
{
	uint8_t msg[USMC_WR_BUF_V2_SIZE];
	size_t len;

	if (kind == USMC_WRID_TX && idx < link->nslots) {
		usmc_link_put_slot(link, (int)idx);
		link_flush_pending(link);
	} else if (kind == USMC_WRID_RX && idx < link->nrecv) {
		len = link_rx_take(link, idx, byte_len, msg);
		if (len && msg[0] != SMC_CDC_MSG_TYPE)
			usmc_llc_rx(link, msg, len, ts);
	}
}

int usmc_link_on_wc(usmc_link *link, const usmc_wc *wc, usmc_tstamp ts)
{
	unsigned int kind = USMC_WRID_KIND(wc->wr_id);
	uint32_t idx = USMC_WRID_IDX(wc->wr_id);
	usmc_lgr *lgr = link->lgr;

	lgr->ctx->now = ts;
	/* the v2 buffer is free once its SEND completed, in error too
	 * (smc_wr_tx_process_cqe) */
	if (kind == USMC_WRID_TX && link->v2_slot >= 0 &&
	    idx == (uint32_t)link->v2_slot)
		link->v2_slot = -1;
	if (lgr->terminating) {
		if (link != lgr->term_link)
			return 0;
		if (wc->status == USMC_WC_SUCCESS) {
			link_on_wc_ending(link, kind, idx, wc->byte_len, ts);
		} else if (wc->status != USMC_WC_WR_FLUSH_ERR) {
			/* the peer cannot answer (retries exhausted): no
			 * point waiting for it */
			lgr->term_link = NULL;
			lgr->free_expiry = usmc_tmin(lgr->free_expiry, ts);
		}
		return 0;
	}
	/* a failed-over link's flushes: it is down already */
	if (wc->status != USMC_WC_SUCCESS &&
	    link->gone_expiry != USMC_TSTAMP_NONE)
		return 0;
	if (wc->status != USMC_WC_SUCCESS) {
		usmc_log(lgr->ctx, USMC_LOG_ERR, "link %u: %s completion: %s",
			 link->link_id, kind == USMC_WRID_RX ? "recv" : "send",
			 usmc_wc_status_str(wc->status));
		return usmc_link_down_why(
			link,
			wc->status == USMC_WC_RETRY_EXC_ERR ||
					wc->status == USMC_WC_RNR_RETRY_EXC_ERR
				? USMC_LINK_DOWN_RETRIES
				: USMC_LINK_DOWN_QP_ERROR,
			ts);
	}
	switch (kind) {
	case USMC_WRID_TX: {
		usmc_tx_slot s;

		if (idx >= link->nslots || !link->slots[idx].busy)
			return USMC_ERR_INVALID_ARGUMENT;
		s = link->slots[idx];
		if (link->clink_resp_slot == (int)idx)
			link->clink_resp_slot = -1;
		usmc_link_put_slot(link, (int)idx);
		if (s.conn)
			usmc_tx_cdc_done(s.conn, &s, ts);
		link_slot_freed(link, ts);
		return 0;
	}
	case USMC_WRID_RX: {
		uint8_t msg[USMC_WR_BUF_V2_SIZE];
		size_t len;

		if (idx >= link->nrecv)
			return USMC_ERR_INVALID_ARGUMENT;
		len = link_rx_take(link, idx, wc->byte_len, msg);
		link->last_rx = ts;
		link->n_rx_wrs++;
		link->n_rx_bytes += len;
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

void usmc_link_drop_queued(usmc_link *link)
{
	wrq_drop(link);
	link->nllc_pend = 0;
	link->pend_head = 0;
	llc_long_free(link);
}

int usmc_link_down_why(usmc_link *link, usmc_link_down_reason why,
		       usmc_tstamp ts)
{
	if (!link)
		return USMC_ERR_INVALID_ARGUMENT;
	link->lgr->ctx->now = ts;
	usmc_failover_link_down(link, why, ts);
	return 0;
}

int usmc_link_down(usmc_link *link, usmc_tstamp ts)
{
	return usmc_link_down_why(link, USMC_LINK_DOWN_PORT, ts);
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
