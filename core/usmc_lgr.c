/* SPDX-License-Identifier: MIT */
/*
 * Link groups, links and the LLC flows (net/smc smc_core.c, smc_llc.c,
 * smc_wr.c): QP and WR-buffer set-up, the token table, the per-lgr buffer
 * pool, TX slot accounting, completion dispatch, CONFIRM_LINK, ADD_LINK,
 * CONFIRM_RKEY / DELETE_RKEY, TEST_LINK, DELETE_LINK and lgr termination.
 */
#include "usmc_conv.h"
#include "usmc_core_int.h"

/* ---- link group lifetime ---- */

int usmc_lgr_create(usmc_ctx *ctx, usmc_role role, int version,
		    const uint8_t *peer_system_id, usmc_lgr **plgr)
{
	usmc_lgr *lgr = usmc_mem_calloc(ctx, 1, sizeof(*lgr));

	if (!lgr)
		return USMC_ERR_NOMEM;
	lgr->ctx = ctx;
	lgr->role = role;
	lgr->version = version;
	lgr->id = ctx->next_lgr_id;
	ctx->next_lgr_id += 0x100;
	memcpy(lgr->peer_system_id, peer_system_id, 8);
	lgr->max_conns = USMC_CONNS_MAX;
	lgr->max_links = SMC_LINKS_ADD_LNK_MAX;
	lgr->llc_expiry = USMC_TSTAMP_NONE;
	lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
	lgr->free_expiry = USMC_TSTAMP_NONE;
	lgr->next_link_id = 1;
	lgr->next = ctx->lgrs;
	if (ctx->lgrs)
		ctx->lgrs->prev = lgr;
	ctx->lgrs = lgr;
	*plgr = lgr;
	return 0;
}

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

static void free_mr(usmc_ctx *ctx, usmc_mr *mr)
{
	if (mr->addr) {
		ctx->cb.free_mr(ctx->user, mr);
		memset(mr, 0, sizeof(*mr));
	}
}

static void link_free(usmc_link *link)
{
	usmc_lgr *lgr = link->lgr;
	usmc_ctx *ctx = lgr->ctx;

	link_destroy_qp(link);
	free_mr(ctx, &link->tx_mr);
	free_mr(ctx, &link->rx_mr);
	free_mr(ctx, &link->v2_mr);
	usmc_mem_free(ctx, link->slots);
	lgr->links[link->link_idx] = NULL;
	usmc_mem_free(ctx, link);
}

static void buf_list_free(usmc_ctx *ctx, usmc_buf **list)
{
	while (*list) {
		usmc_buf *b = *list;

		*list = b->next;
		free_mr(ctx, &b->mr);
		usmc_mem_free(ctx, b);
	}
}

void usmc_lgr_free(usmc_lgr *lgr)
{
	usmc_ctx *ctx = lgr->ctx;

	lgr->terminating = 1;
	/* connections still attached lose their SMC resources */
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (c) {
			usmc_llc_cancel_conn(lgr, c);
			usmc_lgr_del_conn(lgr, c, 0);
		}
	}
	while (lgr->llc_q) {
		usmc_llc_req *r = lgr->llc_q;

		lgr->llc_q = r->next;
		usmc_mem_free(ctx, r);
	}
	usmc_mem_free(ctx, lgr->llc_cur);
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i])
			link_free(lgr->links[i]);
	buf_list_free(ctx, &lgr->free_rmbs);
	buf_list_free(ctx, &lgr->free_sndbufs);
	if (lgr->prev)
		lgr->prev->next = lgr->next;
	else
		ctx->lgrs = lgr->next;
	if (lgr->next)
		lgr->next->prev = lgr->prev;
	usmc_mem_free(ctx, lgr);
}

static uint8_t llc_version(const usmc_lgr *lgr);
static int llc_send(usmc_link *link, const usmc_llc_msg *msg, usmc_tstamp ts);
static usmc_link *lgr_first_link(usmc_lgr *lgr);

/* Terminates the link group (no usable link left, DELETE_LINK ALL,
 * protocol violation, idle): with |del_reason| the peer is told with
 * DELETE_LINK ALL first (smc_lgr_cleanup). Every connection is aborted with
 * |err|. QPs and memory go at the next expiry after a short grace, so the
 * DELETE_LINK can leave and no caller up the stack holds a freed lgr. */
void usmc_lgr_terminate(usmc_lgr *lgr, int err, uint32_t del_reason,
			usmc_tstamp ts)
{
	usmc_link *link;

	if (lgr->terminating)
		return;
	usmc_log(lgr->ctx, USMC_LOG_INFO, "lgr %08x terminated: %s", lgr->id,
		 usmc_strerror(err));
	link = del_reason ? lgr_first_link(lgr) : NULL;
	lgr->terminating = 1;
	if (link) {
		usmc_llc_msg m;
		uint8_t f = SMC_LLC_FLAG_DEL_LINK_ALL;

		if (del_reason == SMC_LLC_DEL_PROG_INIT_TERM)
			f |= SMC_LLC_FLAG_DEL_LINK_ORDERLY;
		usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK, llc_version(lgr), f);
		m.delete_link.reason = del_reason;
		if (llc_send(link, &m, ts))
			link = NULL;
	}
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		if (lgr->links[i]) {
			lgr->links[i]->state = USMC_LNK_UNUSED;
			lgr->links[i]->qp_rts = 0;
		}
	}
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (!c)
			continue;
		usmc_llc_cancel_conn(lgr, c);
		if (c->mode == USMC_MODE_HANDSHAKE)
			usmc_conn_handshake_failed(c, err, 0, ts);
		else
			usmc_close_abort_local(c, err, 0, ts);
		/* the connection may have left already */
		if (lgr->conns[i] == c)
			usmc_lgr_del_conn(lgr, c, ts);
	}
	lgr->llc_expiry = USMC_TSTAMP_NONE;
	lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
	lgr->free_expiry = link ? ts + USMC_TERM_GRACE : ts;
}

usmc_lgr *usmc_lgr_find(usmc_ctx *ctx, usmc_role role, int version,
			unsigned int dev_idx, const uint8_t *peer_system_id,
			const uint8_t *peer_gid, const uint8_t *peer_mac,
			uint32_t peer_qpn)
{
	for (usmc_lgr *lgr = ctx->lgrs; lgr; lgr = lgr->next) {
		if (lgr->terminating || lgr->peer_gone || lgr->role != role ||
		    lgr->version != version ||
		    memcmp(lgr->peer_system_id, peer_system_id, 8) ||
		    lgr->nconns >= lgr->max_conns || !lgr->first_link_up)
			continue;
		for (int i = 0; i < USMC_LINKS_MAX; i++) {
			usmc_link *l = lgr->links[i];

			if (!l || l->state != USMC_LNK_ACTIVE ||
			    l->dev_idx != dev_idx)
				continue;
			if (memcmp(l->peer_gid, peer_gid, 16))
				continue;
			if (version == SMC_V1 &&
			    memcmp(l->peer_mac, peer_mac, 6))
				continue;
			if (role == USMC_ROLE_CLIENT && l->peer_qpn != peer_qpn)
				continue;
			return lgr;
		}
	}
	return NULL;
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
	rv = ctx->cb.alloc_mr(ctx->user, link->dev_idx,
			      (size_t)link->nslots * USMC_WR_BUF_SIZE,
			      USMC_ACCESS_LOCAL_WRITE, &link->tx_mr);
	if (rv)
		goto fail;
	rv = ctx->cb.alloc_mr(ctx->user, link->dev_idx,
			      (size_t)link->nrecv * USMC_WR_BUF_SIZE,
			      USMC_ACCESS_LOCAL_WRITE, &link->rx_mr);
	if (rv)
		goto fail;
	if (lgr->version == SMC_V2) {
		rv = ctx->cb.alloc_mr(ctx->user, link->dev_idx,
				      2 * USMC_WR_BUF_V2_SIZE,
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
	link_free(link);
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

static void link_put_slot(usmc_link *link, int idx)
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
		link_put_slot(link, idx);
		usmc_log(ctx, USMC_LOG_ERR, "link %u: post_send failed: %s",
			 link->link_id, usmc_strerror(rv));
		usmc_link_down(link, ts);
		return rv < 0 ? rv : USMC_ERR_TRANSPORT;
	}
	return 0;
}

/* Encodes and sends one LLC message on |link|. */
static int llc_send(usmc_link *link, const usmc_llc_msg *msg, usmc_tstamp ts)
{
	int idx = usmc_link_get_slot(link);
	usmc_ssize n;

	if (idx < 0)
		return USMC_ERR_BUSY;
	n = usmc_llc_encode(usmc_link_slot_buf(link, idx), USMC_WR_BUF_SIZE,
			    msg);
	if (n != USMC_WR_TX_SIZE) {
		link_put_slot(link, idx);
		return n < 0 ? (int)n : USMC_ERR_INTERNAL;
	}
	return usmc_link_post_slot(link, idx, ts);
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

/* As llc_send, but waits in the control queue instead of failing. */
static int llc_send_queued(usmc_link *link, const usmc_llc_msg *msg,
			   usmc_tstamp ts)
{
	uint8_t buf[USMC_WR_TX_SIZE];
	usmc_ssize n = usmc_llc_encode(buf, sizeof(buf), msg);

	if (n != USMC_WR_TX_SIZE)
		return n < 0 ? (int)n : USMC_ERR_INTERNAL;
	return usmc_link_send_raw(link, buf, ts);
}

static int llc_flush_pending(usmc_link *link, usmc_tstamp ts)
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

static uint8_t llc_version(const usmc_lgr *lgr)
{
	return lgr->version == SMC_V2 ? 2 : 1;
}

int usmc_llc_confirm_link_send(usmc_link *link, int resp)
{
	usmc_lgr *lgr = link->lgr;
	usmc_llc_msg m;

	usmc_llc_msg_init(&m, SMC_LLC_CONFIRM_LINK, llc_version(lgr),
			  (uint8_t)(SMC_LLC_FLAG_NO_RMBE_EYEC |
				    (resp ? SMC_LLC_FLAG_RESP : 0)));
	memcpy(m.confirm_link.sender_mac, usmc_link_dev(link)->mac, 6);
	memcpy(m.confirm_link.sender_gid, usmc_link_dev(link)->gid, 16);
	m.confirm_link.sender_qp_num = link->qp_num;
	m.confirm_link.link_num = link->link_id;
	m.confirm_link.link_uid = lgr->id | link->link_id;
	m.confirm_link.max_links = lgr->max_links;
	m.confirm_link.max_conns = lgr->release >= 1 ? lgr->max_conns : 0;
	return llc_send(link, &m, 0);
}

/* ---- connections in the link group ---- */

int usmc_lgr_add_conn(usmc_lgr *lgr, usmc_conn *conn)
{
	usmc_ctx *ctx = lgr->ctx;

	if (lgr->nconns >= lgr->max_conns)
		return USMC_ERR_LIMIT;
	for (unsigned int k = 0; k < USMC_CONNS_MAX; k++) {
		unsigned int i = 1 + (lgr->conns_rr + k) % USMC_CONNS_MAX;

		if (lgr->conns[i])
			continue;
		/* token: slot in the low byte, a generation above it, so a
		 * stale CDC for a reused slot does not match */
		ctx->token_gen = (ctx->token_gen + 1) & 0xffffff;
		conn->token = (ctx->token_gen << 8) | i;
		lgr->conns[i] = conn;
		lgr->conns_rr = i;
		lgr->nconns++;
		conn->lgr = lgr;
		lgr->free_expiry = USMC_TSTAMP_NONE;
		return 0;
	}
	return USMC_ERR_LIMIT;
}

usmc_conn *usmc_lgr_conn_by_token(usmc_lgr *lgr, uint32_t token)
{
	usmc_conn *c = lgr->conns[token & 0xff];

	return c && c->token == token ? c : NULL;
}

/* Detaches |conn|: its RMB goes back to the pool after a DELETE_RKEY, the
 * token is freed, and the lgr is scheduled for deletion when idle. */
void usmc_lgr_del_conn(usmc_lgr *lgr, usmc_conn *conn, usmc_tstamp ts)
{
	unsigned int i = conn->token & 0xff;

	if (conn->link) {
		usmc_link *l = conn->link;

		for (int k = 0; k < l->nslots; k++)
			if (l->slots[k].conn == conn)
				l->slots[k].conn = NULL;
		if (conn->waiting_slot && l->waiters)
			l->waiters--;
		conn->waiting_slot = 0;
	}
	if (conn->rmb) {
		if (conn->link && usmc_link_usable(conn->link) &&
		    conn->rkey_announced && !lgr->peer_gone)
			usmc_llc_queue(lgr, SMC_LLC_DELETE_RKEY, NULL,
				       conn->rmb->mr.rkey, 0, ts);
		usmc_lgr_put_buf(lgr, conn->rmb);
		conn->rmb = NULL;
	}
	if (conn->sndbuf) {
		usmc_lgr_put_buf(lgr, conn->sndbuf);
		conn->sndbuf = NULL;
	}
	if (i && lgr->conns[i] == conn) {
		lgr->conns[i] = NULL;
		lgr->nconns--;
	}
	conn->lgr = NULL;
	conn->link = NULL;
	if (!ts)
		ts = lgr->ctx->now;
	if (!lgr->nconns && lgr->peer_gone) {
		/* nobody is left to tell: no DELETE_LINK */
		usmc_lgr_terminate(lgr, USMC_ERR_CONNRESET, 0, ts);
	} else if (!lgr->nconns && !lgr->terminating) {
		usmc_duration d = lgr->ctx->s.lgr_free_delay;

		if (lgr->role == USMC_ROLE_CLIENT)
			d += USMC_LGR_FREE_CLIENT;
		lgr->free_expiry = ts + d;
	}
}

int usmc_lgr_get_buf(usmc_lgr *lgr, unsigned int dev_idx, int is_rmb,
		     uint32_t size, usmc_buf **pbuf)
{
	usmc_ctx *ctx = lgr->ctx;
	usmc_buf **list = is_rmb ? &lgr->free_rmbs : &lgr->free_sndbufs;
	usmc_buf *b;
	int rv;

	for (usmc_buf **pp = list; *pp; pp = &(*pp)->next) {
		if ((*pp)->size == size && (*pp)->dev_idx == dev_idx) {
			b = *pp;
			*pp = b->next;
			b->next = NULL;
			*pbuf = b;
			return 0;
		}
	}
	b = usmc_mem_calloc(ctx, 1, sizeof(*b));
	if (!b)
		return USMC_ERR_NOMEM;
	rv = ctx->cb.alloc_mr(ctx->user, dev_idx, size,
			      is_rmb ? USMC_ACCESS_LOCAL_WRITE |
					       USMC_ACCESS_REMOTE_WRITE
				     : USMC_ACCESS_LOCAL_WRITE,
			      &b->mr);
	if (rv || !b->mr.addr || b->mr.length < size) {
		if (!rv)
			free_mr(ctx, &b->mr);
		usmc_mem_free(ctx, b);
		return rv < 0 ? rv : USMC_ERR_NOMEM;
	}
	b->size = size;
	b->is_rmb = is_rmb;
	b->dev_idx = (uint8_t)dev_idx;
	*pbuf = b;
	return 0;
}

void usmc_lgr_put_buf(usmc_lgr *lgr, usmc_buf *buf)
{
	usmc_buf **list = buf->is_rmb ? &lgr->free_rmbs : &lgr->free_sndbufs;

	buf->next = *list;
	*list = buf;
}

/* ---- local LLC flows: one request at a time, FIFO ---- */

static void llc_run(usmc_lgr *lgr, usmc_tstamp ts);

int usmc_llc_queue(usmc_lgr *lgr, uint8_t type, usmc_conn *conn, uint32_t rkey,
		   uint64_t vaddr, usmc_tstamp ts)
{
	usmc_llc_req *r = usmc_mem_calloc(lgr->ctx, 1, sizeof(*r));

	if (!r)
		return USMC_ERR_NOMEM;
	r->type = type;
	r->conn = conn;
	r->rkey = rkey;
	r->vaddr = vaddr;
	if (lgr->llc_q_tail)
		lgr->llc_q_tail->next = r;
	else
		lgr->llc_q = r;
	lgr->llc_q_tail = r;
	llc_run(lgr, ts);
	return 0;
}

void usmc_llc_cancel_conn(usmc_lgr *lgr, usmc_conn *conn)
{
	if (lgr->llc_cur && lgr->llc_cur->conn == conn)
		lgr->llc_cur->conn = NULL;
	for (usmc_llc_req *r = lgr->llc_q; r; r = r->next)
		if (r->conn == conn)
			r->conn = NULL;
}

static usmc_link *lgr_first_link(usmc_lgr *lgr)
{
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (usmc_link_usable(lgr->links[i]))
			return lgr->links[i];
	return NULL;
}

static int llc_build(usmc_lgr *lgr, usmc_link *link, const usmc_llc_req *r,
		     usmc_llc_msg *m)
{
	usmc_llc_msg_init(m, r->type, llc_version(lgr), 0);
	switch (r->type) {
	case SMC_LLC_CONFIRM_LINK:
		usmc_llc_msg_init(m, r->type, llc_version(lgr),
				  SMC_LLC_FLAG_NO_RMBE_EYEC);
		memcpy(m->confirm_link.sender_mac, usmc_link_dev(link)->mac, 6);
		memcpy(m->confirm_link.sender_gid, usmc_link_dev(link)->gid,
		       16);
		m->confirm_link.sender_qp_num = link->qp_num;
		m->confirm_link.link_num = link->link_id;
		m->confirm_link.link_uid = lgr->id | link->link_id;
		m->confirm_link.max_links = lgr->max_links;
		m->confirm_link.max_conns =
			lgr->release >= 1 ? lgr->max_conns : 0;
		break;
	case SMC_LLC_ADD_LINK:
		/* One device: offer the existing port with no QP MTU, which
		 * every client rejects with NO_ALT_PATH (so a Linux client
		 * does not wait 2+1 s for an ADD_LINK that never comes). */
		memcpy(m->add_link.sender_mac, usmc_link_dev(link)->mac, 6);
		memcpy(m->add_link.sender_gid, usmc_link_dev(link)->gid, 16);
		m->add_link.link_num = (uint8_t)(link->link_id + 1);
		m->add_link.qp_mtu = 0;
		break;
	case SMC_LLC_CONFIRM_RKEY:
		m->confirm_rkey.num_rkeys = 0;
		m->confirm_rkey.rtoken[0].rmb_key = r->rkey;
		m->confirm_rkey.rtoken[0].rmb_vaddr = r->vaddr;
		break;
	case SMC_LLC_DELETE_RKEY:
		m->delete_rkey.num_rkeys = 1;
		m->delete_rkey.rkey[0] = r->rkey;
		break;
	default:
		return USMC_ERR_INTERNAL;
	}
	return 0;
}

static void llc_flow_done(usmc_lgr *lgr, int ok, usmc_tstamp ts);

static void llc_run(usmc_lgr *lgr, usmc_tstamp ts)
{
	usmc_link *link;
	usmc_llc_msg m;
	int rv;

	if (lgr->terminating)
		return;
	if (!lgr->llc_cur) {
		if (!lgr->llc_q)
			return;
		lgr->llc_cur = lgr->llc_q;
		lgr->llc_q = lgr->llc_cur->next;
		if (!lgr->llc_q)
			lgr->llc_q_tail = NULL;
		lgr->llc_cur->next = NULL;
		lgr->llc_sent = 0;
	}
	if (lgr->llc_sent)
		return;
	link = lgr_first_link(lgr);
	if (!link)
		return; /* retried when the link becomes usable */
	if (llc_build(lgr, link, lgr->llc_cur, &m)) {
		llc_flow_done(lgr, 0, ts);
		return;
	}
	rv = llc_send(link, &m, ts);
	if (rv == USMC_ERR_BUSY)
		return; /* retried when a TX slot frees */
	if (rv) {
		if (!lgr->terminating)
			llc_flow_done(lgr, 0, ts);
		return;
	}
	lgr->llc_sent = 1;
	lgr->llc_expiry = ts + lgr->ctx->s.llc_timeout;
}

/* The local flow ended (response, timeout or failure). */
static void llc_flow_done(usmc_lgr *lgr, int ok, usmc_tstamp ts)
{
	usmc_llc_req *r = lgr->llc_cur;

	if (!r)
		return;
	lgr->llc_cur = NULL;
	lgr->llc_sent = 0;
	lgr->llc_expiry = USMC_TSTAMP_NONE;
	switch (r->type) {
	case SMC_LLC_CONFIRM_LINK:
		if (r->conn)
			usmc_conn_link_confirmed(r->conn, ok, ts);
		else if (!ok)
			usmc_lgr_terminate(lgr, USMC_ERR_TIMEOUT, 0, ts);
		if (ok && !lgr->terminating)
			usmc_llc_queue(lgr, SMC_LLC_ADD_LINK, NULL, 0, 0, ts);
		break;
	case SMC_LLC_CONFIRM_RKEY:
		if (r->conn)
			usmc_conn_rkey_confirmed(r->conn, ok, ts);
		break;
	default:
		/* ADD_LINK and DELETE_RKEY need nothing more; a lost
		 * response is not fatal (the kernel also goes on). */
		break;
	}
	usmc_mem_free(lgr->ctx, r);
	if (!lgr->terminating)
		llc_run(lgr, ts);
}

/* ---- LLC receive ---- */

static void llc_respond(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	int rv;

	m->hdr.flags |= SMC_LLC_FLAG_RESP;
	rv = llc_send_queued(link, m, ts);
	if (rv && rv != USMC_ERR_BUSY)
		usmc_log(link->lgr->ctx, USMC_LOG_WARN,
			 "link %u: LLC response not sent: %s", link->link_id,
			 usmc_strerror(rv));
}

static void llc_protocol_violation(usmc_link *link, const char *what,
				   usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	usmc_log(lgr->ctx, USMC_LOG_ERR, "lgr %08x: LLC protocol violation: %s",
		 lgr->id, what);
	usmc_lgr_terminate(lgr, USMC_ERR_PROTO, SMC_LLC_DEL_PROT_VIOL, ts);
}

/* The conn waiting for the first CONFIRM_LINK of this lgr (client). */
static usmc_conn *lgr_first_contact_conn(usmc_lgr *lgr)
{
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (c && c->clc_state == USMC_CLC_CLI_WAIT_CLINK)
			return c;
	}
	return NULL;
}

static void llc_rx_confirm_link(usmc_link *link, usmc_llc_msg *m,
				usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_conn *c;

	if (m->hdr.flags & SMC_LLC_FLAG_RESP) {
		/* server: the client confirmed the first link */
		if (!lgr->llc_cur ||
		    lgr->llc_cur->type != SMC_LLC_CONFIRM_LINK ||
		    !lgr->llc_sent)
			return; /* out-of-flow response */
		if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC) ||
		    m->confirm_link.sender_qp_num != link->peer_qpn) {
			llc_flow_done(lgr, 0, ts);
			return;
		}
		link->state = USMC_LNK_ACTIVE;
		lgr->first_link_up = 1;
		link->last_rx = ts;
		llc_flow_done(lgr, 1, ts);
		return;
	}
	/* client: the server's request for the first link */
	if (lgr->role != USMC_ROLE_CLIENT || lgr->first_link_up ||
	    link->state == USMC_LNK_ACTIVE)
		return; /* later links are not supported: ignore */
	c = lgr_first_contact_conn(lgr);
	lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
	if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC)) {
		if (c)
			usmc_conn_handshake_failed(c, 0, SMC_CLC_DECL_RMBE_EC,
						   ts);
		return;
	}
	if (m->confirm_link.sender_qp_num != link->peer_qpn ||
	    !m->confirm_link.link_num) {
		if (c)
			usmc_conn_handshake_failed(c, 0,
						   SMC_CLC_DECL_ERR_RDYLNK, ts);
		return;
	}
	link->link_id = m->confirm_link.link_num;
	if (m->confirm_link.max_links)
		lgr->max_links = m->confirm_link.max_links;
	if (usmc_link_ready(link, 1)) {
		if (c)
			usmc_conn_handshake_failed(c, 0,
						   SMC_CLC_DECL_ERR_RDYLNK, ts);
		return;
	}
	link->state = USMC_LNK_ACTIVE;
	lgr->first_link_up = 1;
	link->last_rx = ts;
	if (usmc_llc_confirm_link_send(link, 1)) {
		if (c)
			usmc_conn_handshake_failed(c, 0,
						   SMC_CLC_DECL_ERR_RDYLNK, ts);
		return;
	}
	if (c)
		usmc_conn_link_confirmed(c, 1, ts);
	llc_run(lgr, ts);
}

static void llc_rx_delete_link(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (m->hdr.flags & SMC_LLC_FLAG_RESP)
		return;
	if (m->hdr.flags & SMC_LLC_FLAG_DEL_LINK_ALL) {
		usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED, 0, ts);
		return;
	}
	if (m->delete_link.link_num != link->link_id) {
		m->delete_link.reason = SMC_LLC_DEL_NOLNK;
		llc_respond(link, m, ts);
		return;
	}
	/* our only link: answer, then nothing is left to fail over to; the
	 * QP stays a moment so the answer can leave */
	m->delete_link.reason = 0;
	llc_respond(link, m, ts);
	usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED, 0, ts);
	lgr->free_expiry = ts + USMC_TERM_GRACE;
}

static void llc_rx(usmc_link *link, const uint8_t *buf, size_t len,
		   usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_llc_msg m;
	usmc_ssize n = usmc_llc_decode(&m, buf, len);
	int resp;

	if (n < 0) {
		if (n == USMC_ERR_BAD_TYPE)
			llc_protocol_violation(link, "unknown type", ts);
		else
			usmc_log(lgr->ctx, USMC_LOG_WARN,
				 "lgr %08x: bad LLC message dropped: %s",
				 lgr->id, usmc_strerror((int)n));
		return;
	}
	if (m.hdr.version != llc_version(lgr)) {
		llc_protocol_violation(link, "LLC version", ts);
		return;
	}
	resp = !!(m.hdr.flags & SMC_LLC_FLAG_RESP);
	switch (m.hdr.type) {
	case SMC_LLC_CONFIRM_LINK:
		llc_rx_confirm_link(link, &m, ts);
		break;
	case SMC_LLC_ADD_LINK:
		if (resp) {
			if (lgr->llc_cur && lgr->llc_sent &&
			    lgr->llc_cur->type == SMC_LLC_ADD_LINK)
				llc_flow_done(lgr, 1, ts);
			break;
		}
		/* one device, no alternate path: reject (as Linux) */
		if (lgr->role != USMC_ROLE_CLIENT)
			break;
		/* the reject echoes the request, as smc_llc_cli_add_link
		 * does; v2 has no room for the reason */
		m.hdr.flags = SMC_LLC_FLAG_ADD_LNK_REJ;
		m.add_link.has_v2_ext = 0;
		m.add_link.num_rkeys = 0;
		if (lgr->version == SMC_V1)
			m.hdr.add_link_rej_rsn = SMC_LLC_REJ_RSN_NO_ALT_PATH;
		llc_respond(link, &m, ts);
		break;
	case SMC_LLC_DELETE_LINK:
		llc_rx_delete_link(link, &m, ts);
		break;
	case SMC_LLC_CONFIRM_RKEY:
		if (resp) {
			if (lgr->llc_cur && lgr->llc_sent &&
			    lgr->llc_cur->type == SMC_LLC_CONFIRM_RKEY)
				llc_flow_done(
					lgr,
					!(m.hdr.flags & SMC_LLC_FLAG_RKEY_NEG),
					ts);
			break;
		}
		/* rkeys of the peer's RMB: the CLC already told us the one
		 * for this (only) link, so just confirm */
		m.hdr.flags = 0;
		llc_respond(link, &m, ts);
		break;
	case SMC_LLC_DELETE_RKEY:
		if (resp) {
			if (lgr->llc_cur && lgr->llc_sent &&
			    lgr->llc_cur->type == SMC_LLC_DELETE_RKEY)
				llc_flow_done(lgr, 1, ts);
			break;
		}
		/* we hold no rtokens beyond the CLC's, so none is unknown;
		 * a v2 response carries no rkeys (as Linux sends it) */
		m.hdr.flags = 0;
		m.delete_rkey.err_mask = 0;
		if (lgr->version == SMC_V2)
			memset(m.delete_rkey.rkey, 0,
			       sizeof(m.delete_rkey.rkey));
		llc_respond(link, &m, ts);
		break;
	case SMC_LLC_TEST_LINK:
		if (resp) {
			link->testlink_expiry = USMC_TSTAMP_NONE;
			break;
		}
		llc_respond(link, &m, ts);
		break;
	default:
		/* ADD_LINK_CONT, CONFIRM_RKEY_CONT, REQ_ADD_LINK: only used
		 * for second links, which this single-device core never
		 * accepts; ignored as Linux ignores CONFIRM_RKEY_CONT. */
		break;
	}
}

/* ---- completions ---- */

void usmc_link_slot_freed(usmc_link *link, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (llc_flush_pending(link, ts) || lgr->terminating)
		return;
	llc_run(lgr, ts);
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
		link_put_slot(link, (int)idx);
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
			llc_rx(link, msg, len, ts);
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

/* ---- timers ---- */

static usmc_tstamp link_expiry(const usmc_link *link)
{
	const usmc_ctx *ctx = link->lgr->ctx;

	if (link->state != USMC_LNK_ACTIVE || !ctx->s.testlink_time)
		return USMC_TSTAMP_NONE;
	if (link->testlink_expiry != USMC_TSTAMP_NONE)
		return link->testlink_expiry;
	return link->last_rx + ctx->s.testlink_time;
}

usmc_tstamp usmc_lgr_expiry(const usmc_lgr *lgr)
{
	usmc_tstamp t = usmc_tmin(lgr->free_expiry, lgr->llc_expiry);

	if (lgr->terminating)
		return lgr->free_expiry;
	t = usmc_tmin(t, lgr->confirm_link_expiry);
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i])
			t = usmc_tmin(t, link_expiry(lgr->links[i]));
	return t;
}

void usmc_lgr_handle_expiry(usmc_lgr *lgr, usmc_tstamp ts)
{
	if (lgr->terminating) {
		if (lgr->free_expiry <= ts)
			usmc_lgr_free(lgr);
		return;
	}
	if (lgr->free_expiry <= ts) {
		if (lgr->nconns) {
			lgr->free_expiry = USMC_TSTAMP_NONE;
		} else {
			/* idle: the server says goodbye first (the client
			 * waits 10 s longer) */
			usmc_lgr_terminate(lgr, USMC_ERR_CLOSED,
					   SMC_LLC_DEL_PROG_INIT_TERM, ts);
			return;
		}
	}
	if (lgr->confirm_link_expiry <= ts) {
		/* client: no CONFIRM_LINK request from the server */
		usmc_conn *c = lgr_first_contact_conn(lgr);

		lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
		if (c)
			usmc_conn_handshake_failed(c, 0,
						   SMC_CLC_DECL_TIMEOUT_CL, ts);
		else
			usmc_lgr_terminate(lgr, USMC_ERR_TIMEOUT, 0, ts);
		return;
	}
	if (lgr->llc_expiry <= ts) {
		usmc_log(lgr->ctx, USMC_LOG_WARN,
			 "lgr %08x: LLC %s response timed out", lgr->id,
			 lgr->llc_cur ? usmc_llc_type_name(lgr->llc_cur->type)
				      : "?");
		llc_flow_done(lgr, 0, ts);
		return;
	}
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		usmc_link *link = lgr->links[i];
		usmc_llc_msg m;

		if (!link || link_expiry(link) > ts)
			continue;
		if (link->testlink_expiry != USMC_TSTAMP_NONE) {
			usmc_log(lgr->ctx, USMC_LOG_ERR,
				 "link %u: TEST_LINK not answered",
				 link->link_id);
			usmc_link_down(link, ts);
			return;
		}
		usmc_llc_msg_init(&m, SMC_LLC_TEST_LINK, llc_version(lgr), 0);
		memcpy(m.test_link.user_data, &lgr->id, sizeof(lgr->id));
		if (llc_send_queued(link, &m, ts) && lgr->terminating)
			return;
		link->testlink_expiry = ts + lgr->ctx->s.llc_timeout;
	}
}
