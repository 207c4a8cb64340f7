/* SPDX-License-Identifier: MIT */
/*
 * Link groups (net/smc smc_core.c): creation, the token table, the per-lgr
 * buffer pool, lookup for reuse, termination and the idle timer. Links and
 * their WR slots are in usmc_link.c, the LLC flows in usmc_llc_flow.c.
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
	lgr->req_add_expiry = USMC_TSTAMP_NONE;
	lgr->rtokens =
		usmc_mem_calloc(ctx, USMC_RTOKENS_MAX, sizeof(*lgr->rtokens));
	if (!lgr->rtokens) {
		usmc_mem_free(ctx, lgr);
		return USMC_ERR_NOMEM;
	}
	lgr->next = ctx->lgrs;
	if (ctx->lgrs)
		ctx->lgrs->prev = lgr;
	ctx->lgrs = lgr;
	*plgr = lgr;
	return 0;
}

static void buf_free(usmc_ctx *ctx, usmc_buf *b)
{
	for (int d = 0; d < USMC_DEVICES_MAX; d++)
		usmc_ctx_call_free_mr(ctx, &b->dmr[d]);
	usmc_ctx_call_free_mr(ctx, &b->mr);
	usmc_mem_free(ctx, b);
}

static void buf_list_free(usmc_ctx *ctx, usmc_buf **list)
{
	while (*list) {
		usmc_buf *b = *list;

		*list = b->next;
		buf_free(ctx, b);
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
			usmc_link_free(lgr->links[i]);
	usmc_smcd_lgr_free(lgr);
	buf_list_free(ctx, &lgr->free_rmbs);
	buf_list_free(ctx, &lgr->free_sndbufs);
	usmc_mem_free(ctx, lgr->rtokens);
	if (lgr->prev)
		lgr->prev->next = lgr->next;
	else
		ctx->lgrs = lgr->next;
	if (lgr->next)
		lgr->next->prev = lgr->prev;
	usmc_mem_free(ctx, lgr);
}

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
	link = del_reason ? usmc_lgr_first_link(lgr) : NULL;
	lgr->terminating = 1;
	if (link) {
		usmc_llc_msg m;
		uint8_t f = SMC_LLC_FLAG_DEL_LINK_ALL;

		if (del_reason == SMC_LLC_DEL_PROG_INIT_TERM &&
		    !lgr->peer_ended)
			f |= SMC_LLC_FLAG_DEL_LINK_ORDERLY;
		usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK,
				  usmc_llc_version(lgr), f);
		m.delete_link.reason = del_reason;
		if (usmc_llc_send(link, &m))
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
		/* still in the handshake: decline and carry on over TCP, as
		 * the kernel does when the link cannot be made ready
		 * (smc_connect_rdma: SMC_CLC_DECL_ERR_RDYLNK). A dead link
		 * ends the CONFIRM_LINK wait (smc_llc_wait), which the kernel
		 * reports as TIMEOUT_CL after its look for a Decline. A
		 * client waiting for ADD_LINK keeps its window: the server's
		 * Decline comes at its 3 s (usmc_conn_handle_expiry). */
		if (c->mode == USMC_MODE_HANDSHAKE &&
		    (c->clc_state == USMC_CLC_CLI_WAIT_CLINK ||
		     c->clc_state == USMC_CLC_SRV_WAIT_CLINK))
			usmc_conn_wait_decline(c, SMC_CLC_DECL_TIMEOUT_CL, ts);
		/* its RMB's CONFIRM_RKEY cannot complete now: the kernel's
		 * smcr_lgr_reg_rmbs fails, ERR_REGBUF */
		else if (c->mode == USMC_MODE_HANDSHAKE &&
			 (c->clc_state == USMC_CLC_CLI_WAIT_RKEY ||
			  c->clc_state == USMC_CLC_SRV_WAIT_RKEY))
			usmc_conn_handshake_failed(c, err,
						   SMC_CLC_DECL_ERR_REGBUF, ts);
		else if (c->mode == USMC_MODE_HANDSHAKE &&
			 c->clc_state != USMC_CLC_CLI_WAIT_ADDLINK &&
			 c->clc_state != USMC_CLC_CLI_ADDLINK_DECL)
			usmc_conn_handshake_failed(c, err,
						   SMC_CLC_DECL_ERR_RDYLNK, ts);
		else if (c->mode != USMC_MODE_HANDSHAKE)
			usmc_close_abort_local(c, err, 0, ts);
		/* the connection may have left already */
		if (lgr->conns[i] == c)
			usmc_lgr_del_conn(lgr, c, ts);
	}
	lgr->llc_expiry = USMC_TSTAMP_NONE;
	lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
	/* an orderly end of ours waits for the peer's DELETE_LINK ALL: a
	 * DELETE_RKEY of the peer's that crossed ours is answered meanwhile,
	 * and the peer's last SENDs are acknowledged, not left to retry */
	if (link && del_reason == SMC_LLC_DEL_PROG_INIT_TERM &&
	    !lgr->peer_ended)
		lgr->term_link = link;
	lgr->free_expiry = lgr->term_link ? ts + USMC_TERM_WAIT
			   : link	  ? ts + USMC_TERM_GRACE
					  : ts;
}

void usmc_lgr_end_if_idle(usmc_lgr *lgr, usmc_tstamp ts)
{
	if (!lgr->end_when_idle || lgr->terminating || lgr->nconns ||
	    lgr->llc_cur || lgr->llc_q)
		return;
	/* ended by usmc_lgr_handle_expiry after USMC_END_QUIET with no
	 * request from the peer: the kernel sends its own last DELETE_RKEY
	 * right after answering ours, and holds its LLC flow 2 s when that
	 * is not answered */
	lgr->free_expiry = ts + USMC_END_QUIET;
}

usmc_lgr *usmc_lgr_find(usmc_ctx *ctx, usmc_role role, int version,
			unsigned int dev_idx, const uint8_t *peer_system_id,
			const uint8_t *peer_gid, const uint8_t *peer_mac,
			uint32_t peer_qpn)
{
	for (usmc_lgr *lgr = ctx->lgrs; lgr; lgr = lgr->next) {
		if (lgr->terminating || lgr->peer_gone || lgr->end_when_idle ||
		    lgr->role != role || lgr->version != version ||
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

/* The first ACTIVE link, else the first usable one (the first link while
 * CONFIRM_LINK runs): the one LLC requests go out on. */
usmc_link *usmc_lgr_first_link(usmc_lgr *lgr)
{
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (usmc_link_usable(lgr->links[i]) &&
		    lgr->links[i]->state == USMC_LNK_ACTIVE)
			return lgr->links[i];
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (usmc_link_usable(lgr->links[i]))
			return lgr->links[i];
	return NULL;
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
	if (conn->rx_valid_expiry != USMC_TSTAMP_NONE) {
		conn->rx_valid_expiry = USMC_TSTAMP_NONE;
		if (lgr->nvalid)
			lgr->nvalid--;
	}
	if (conn->smcd)
		usmc_smcd_release(conn);
	if (conn->rmb) {
		/* the kernel's smcr_buf_unuse deletes the rkey at the peer
		 * and confirms it again at reuse: two LLC flows, serialised
		 * per lgr, per connection. Kept, the peer's rtoken stays
		 * valid (its smc_rtoken_add finds it again from the next
		 * CLC) and only this side writes to the buffer's owner. */
		if (!lgr->ctx->s.rmb_keep_rkey) {
			if (conn->link && usmc_link_usable(conn->link) &&
			    conn->rkey_announced && !lgr->peer_gone)
				usmc_llc_queue(lgr, SMC_LLC_DELETE_RKEY, NULL,
					       conn->rmb, ts);
			memset(conn->rmb->peer_link_id, 0,
			       sizeof(conn->rmb->peer_link_id));
		}
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

/* Registers |b|'s memory with device |dev| too, if it is not yet. */
static int buf_reg(usmc_ctx *ctx, usmc_buf *b, unsigned int dev)
{
	if (usmc_buf_mr(b, dev))
		return 0;
	if (dev >= ctx->s.ndevices)
		return USMC_ERR_INVALID_ARGUMENT;
	return usmc_ctx_call_reg_mr(ctx, dev, &b->mr,
				    b->is_rmb ? USMC_ACCESS_LOCAL_WRITE |
							USMC_ACCESS_REMOTE_WRITE
					      : USMC_ACCESS_LOCAL_WRITE,
				    &b->dmr[dev]);
}

typedef int (*buf_fn)(usmc_ctx *ctx, usmc_buf *b, unsigned int dev);

/* Runs |fn| on every buffer of |lgr|: its connections' and the pool's. */
static int lgr_each_buf(usmc_lgr *lgr, buf_fn fn, unsigned int dev)
{
	usmc_ctx *ctx = lgr->ctx;
	usmc_buf *lists[2] = {lgr->free_rmbs, lgr->free_sndbufs};
	int rv;

	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (c && c->rmb && (rv = fn(ctx, c->rmb, dev)))
			return rv;
		if (c && c->sndbuf && (rv = fn(ctx, c->sndbuf, dev)))
			return rv;
	}
	for (int k = 0; k < 2; k++)
		for (usmc_buf *b = lists[k]; b; b = b->next)
			if ((rv = fn(ctx, b, dev)))
				return rv;
	return 0;
}

int usmc_lgr_reg_bufs(usmc_lgr *lgr, unsigned int dev)
{
	return lgr_each_buf(lgr, buf_reg, dev);
}

static int buf_unreg(usmc_ctx *ctx, usmc_buf *b, unsigned int dev)
{
	if (dev < USMC_DEVICES_MAX && dev != b->dev_idx)
		usmc_ctx_call_free_mr(ctx, &b->dmr[dev]);
	return 0;
}

void usmc_lgr_unreg_dev(usmc_lgr *lgr, unsigned int dev)
{
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i] && lgr->links[i]->dev_idx == dev)
			return;
	lgr_each_buf(lgr, buf_unreg, dev);
}

/* ---- the peer's RMBs (rtokens) ---- */

static usmc_rtoken *rtoken_find(usmc_lgr *lgr, unsigned int idx, uint32_t rkey)
{
	for (int i = 0; i < USMC_RTOKENS_MAX; i++) {
		usmc_rtoken *t = &lgr->rtokens[i];

		if (t->used && t->has[idx] && t->rkey[idx] == rkey)
			return t;
	}
	return NULL;
}

int usmc_lgr_rtoken_add(usmc_lgr *lgr, unsigned int idx, uint32_t rkey,
			uint64_t vaddr)
{
	usmc_rtoken *t;

	if (idx >= USMC_LINKS_MAX)
		return USMC_ERR_INVALID_ARGUMENT;
	t = rtoken_find(lgr, idx, rkey);
	if (t) {
		/* smc_rtoken_add: the same RMB again is the same token */
		t->vaddr[idx] = vaddr;
		return 0;
	}
	for (int i = 0; i < USMC_RTOKENS_MAX; i++) {
		t = &lgr->rtokens[i];
		if (t->used)
			continue;
		memset(t, 0, sizeof(*t));
		t->used = 1;
		t->has[idx] = 1;
		t->rkey[idx] = rkey;
		t->vaddr[idx] = vaddr;
		return 0;
	}
	return USMC_ERR_LIMIT;
}

int usmc_lgr_rtoken_set(usmc_lgr *lgr, unsigned int idx, uint32_t rkey,
			unsigned int new_idx, uint32_t new_rkey,
			uint64_t new_vaddr)
{
	usmc_rtoken *t;
	int found = 0;

	if (idx >= USMC_LINKS_MAX || new_idx >= USMC_LINKS_MAX)
		return USMC_ERR_INVALID_ARGUMENT;
	t = rtoken_find(lgr, idx, rkey);
	if (t) {
		t->has[new_idx] = 1;
		t->rkey[new_idx] = new_rkey;
		t->vaddr[new_idx] = new_vaddr;
		found = 1;
	}
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (!c || !c->peer_rkey_has[idx] || c->peer_rkey[idx] != rkey)
			continue;
		c->peer_rkey_has[new_idx] = 1;
		c->peer_rkey[new_idx] = new_rkey;
		/* the connection's RMBE within the peer's RMB */
		c->peer_vaddr[new_idx] = new_vaddr;
		found = 1;
	}
	return found ? 0 : USMC_ERR_INVALID_ARGUMENT;
}

int usmc_lgr_rtoken_del(usmc_lgr *lgr, unsigned int idx, uint32_t rkey)
{
	usmc_rtoken *t;

	if (idx >= USMC_LINKS_MAX || !(t = rtoken_find(lgr, idx, rkey)))
		return USMC_ERR_INVALID_ARGUMENT;
	t->used = 0;
	return 0;
}

void usmc_conn_set_peer_rmb(usmc_conn *conn, uint32_t rkey, uint64_t vaddr)
{
	unsigned int idx;
	usmc_rtoken *t;

	if (!conn->link || !conn->lgr)
		return;
	idx = conn->link->link_idx;
	t = rtoken_find(conn->lgr, idx, rkey);

	memset(conn->peer_rkey_has, 0, sizeof(conn->peer_rkey_has));
	if (t) {
		for (int i = 0; i < USMC_LINKS_MAX; i++) {
			conn->peer_rkey_has[i] = t->has[i];
			conn->peer_rkey[i] = t->rkey[i];
			conn->peer_vaddr[i] = t->vaddr[i];
		}
	}
	conn->peer_rkey_has[idx] = 1;
	conn->peer_rkey[idx] = rkey;
	conn->peer_vaddr[idx] = vaddr;
	/* known from now on, as smc_rmb_rtoken_handling adds the CLC's: a
	 * DELETE_RKEY for it is not answered "unknown" */
	if (!t)
		(void)usmc_lgr_rtoken_add(conn->lgr, idx, rkey, vaddr);
}

unsigned int usmc_lgr_active_links(const usmc_lgr *lgr)
{
	unsigned int n = 0;

	for (int i = 0; i < USMC_LINKS_MAX; i++)
		n += lgr->links[i] && lgr->links[i]->state == USMC_LNK_ACTIVE;
	return n;
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
	rv = usmc_ctx_call_alloc_mr(ctx, dev_idx, size,
				    is_rmb ? USMC_ACCESS_LOCAL_WRITE |
						     USMC_ACCESS_REMOTE_WRITE
					   : USMC_ACCESS_LOCAL_WRITE,
				    &b->mr);
	if (rv) {
		usmc_mem_free(ctx, b);
		return rv;
	}
	b->size = size;
	b->is_rmb = is_rmb;
	b->dev_idx = (uint8_t)dev_idx;
	/* reachable through every link of the group (smcr_buf_map_lgr) */
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		usmc_link *l = lgr->links[i];

		if (l && (rv = buf_reg(ctx, b, l->dev_idx))) {
			buf_free(ctx, b);
			return rv;
		}
	}
	*pbuf = b;
	return 0;
}

void usmc_lgr_put_buf(usmc_lgr *lgr, usmc_buf *buf)
{
	usmc_buf **list = buf->is_rmb ? &lgr->free_rmbs : &lgr->free_sndbufs;

	buf->next = *list;
	*list = buf;
}

void usmc_lgr_buf_known(usmc_lgr *lgr, usmc_buf *b, const usmc_link *link)
{
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		const usmc_link *l = lgr->links[i];

		if (!l || (link ? l != link : l->state != USMC_LNK_ACTIVE) ||
		    !usmc_buf_mr(b, l->dev_idx))
			continue;
		b->peer_link_id[i] = l->link_id;
	}
}

int usmc_lgr_buf_peer_knows(const usmc_lgr *lgr, const usmc_buf *b,
			    const usmc_link *link)
{
	if (!lgr->ctx->s.rmb_keep_rkey || !link ||
	    link->link_idx >= USMC_LINKS_MAX ||
	    b->peer_link_id[link->link_idx] != link->link_id)
		return 0;
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		const usmc_link *l = lgr->links[i];

		if (l && l->state == USMC_LNK_ACTIVE &&
		    usmc_buf_mr(b, l->dev_idx) &&
		    b->peer_link_id[i] != l->link_id)
			return 0;
	}
	return 1;
}

/* ---- timers ---- */

usmc_tstamp usmc_lgr_expiry(const usmc_lgr *lgr)
{
	if (lgr->terminating)
		return lgr->free_expiry;
	return usmc_tmin(usmc_tmin(lgr->free_expiry, usmc_llc_expiry(lgr)),
			 usmc_failover_expiry(lgr));
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
		} else if (lgr->end_when_idle && (lgr->llc_cur || lgr->llc_q)) {
			/* our request first: its end re-arms the timer */
			lgr->free_expiry = USMC_TSTAMP_NONE;
		} else {
			/* idle: the server says goodbye first (the client
			 * waits 10 s longer) */
			usmc_lgr_terminate(lgr, USMC_ERR_CLOSED,
					   SMC_LLC_DEL_PROG_INIT_TERM, ts);
			return;
		}
	}
	usmc_failover_handle_expiry(lgr, ts);
	if (lgr->terminating)
		return;
	usmc_llc_handle_expiry(lgr, ts);
}
