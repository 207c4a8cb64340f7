/* SPDX-License-Identifier: MIT */
/*
 * Link failover (net/smc smc_core.c: smcr_link_down, smc_switch_conns,
 * smc_switch_cursor; smc_cdc.c: smcr_cdc_msg_send_validation). A dead
 * link's connections move to a surviving link of the group: each resumes
 * from what the peer's RNIC confirmed (tx_fin, the last completed CDC),
 * behind a failover-validation CDC, with the peer's rkey for the new
 * link; the peer is told with DELETE_LINK on the survivor. With no link
 * left the group ends: connections that moved data are reset, those that
 * moved none fall back to TCP (docs/core.md "Failover").
 */
#include "usmc_core_int.h"

static const char *const down_words[] = {
	[USMC_LINK_DOWN_PORT] = "port down",
	[USMC_LINK_DOWN_QP_ERROR] = "qp error",
	[USMC_LINK_DOWN_RETRIES] = "retries exhausted",
	[USMC_LINK_DOWN_DEVICE_FATAL] = "device fatal",
	[USMC_LINK_DOWN_TEST_LINK] = "test_link timeout",
	[USMC_LINK_DOWN_PEER_DELETED] = "peer deleted",
	[USMC_LINK_DOWN_POST_FAILED] = "post failed",
};

const char *usmc_link_down_reason_str(usmc_link_down_reason why)
{
	if ((unsigned int)why >= sizeof(down_words) / sizeof(down_words[0]))
		return "?";
	return down_words[why];
}

/* The link the connections go to (smc_switch_conns): an active link other
 * than |from|; after a device or port error not one on the same device. */
static usmc_link *failover_target(usmc_lgr *lgr, const usmc_link *from,
				  int dev_err)
{
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		usmc_link *l = lgr->links[i];

		if (!l || l == from || l->state != USMC_LNK_ACTIVE ||
		    !usmc_link_usable(l))
			continue;
		if (dev_err && l->dev_idx == from->dev_idx)
			continue;
		return l;
	}
	return NULL;
}

/* Nothing of the stream has moved either way as far as this side knows:
 * no byte written by the application or received, no credit returned,
 * no close flag. Such a connection can still carry on over TCP. */
static int conn_moved_nothing(const usmc_conn *c)
{
	return c->mode == USMC_MODE_SMCR && c->state == SMC_ACTIVE &&
	       !c->tx_prep && !c->rx_prod && !c->peer_cons &&
	       !c->close_flags_want && !c->peer_conn_flags && !c->err;
}

/* smc_switch_cursor: the send cursor goes back to what the peer's RNIC
 * confirmed (tx_fin), or to the peer's consumer cursor if the peer has
 * read beyond that; everything after is written again on the new link,
 * to the same RMBE offsets, so nothing is lost or duplicated. Close flags
 * whose CDC did not complete are sent again. */
static void switch_cursor(usmc_conn *c)
{
	uint64_t fin = c->tx_fin;

	if (c->peer_cons > fin)
		fin = c->peer_cons;
	if (fin > c->tx_fin && c->want_writable && c->mode == USMC_MODE_SMCR) {
		c->want_writable = 0;
		usmc_conn_event_raise(c, USMC_EV_WRITABLE);
	}
	c->tx_fin = fin;
	c->tx_sent = fin;
	c->close_flags_sent = c->close_flags_done;
}

/* smcr_cdc_msg_send_validation: the seqno of our last completed CDC, so
 * the peer can tell whether it saw everything we believe it got
 * (smc_cdc_msg_validate); it goes before anything else of the connection
 * on the new link. */
static void send_validation(usmc_conn *c, usmc_link *to)
{
	uint8_t buf[USMC_WR_TX_SIZE];
	usmc_cdc_msg m;

	memset(&m, 0, sizeof(m));
	m.seqno = c->tx_seq_fin;
	m.token = c->peer_token;
	m.prod_flags = USMC_CDC_FAILOVER_VALIDATION;
	if (usmc_cdc_encode(buf, sizeof(buf), &m) != USMC_WR_TX_SIZE)
		return;
	c->n_tx_cdcs++;
	usmc_link_send_raw(to, buf);
}

/* Moves |c| from |from| to |to| (smc_switch_link_and_count, then the
 * cursor switch). Returns 0, or an error when |c| had to be reset. */
static int switch_conn(usmc_conn *c, usmc_link *from, usmc_link *to,
		       usmc_tstamp ts)
{
	/* the dead link's CDCs will never complete */
	for (int k = 0; k < from->nslots; k++)
		if (from->slots[k].conn == c)
			from->slots[k].conn = NULL;
	if (c->waiting_slot && from->waiters)
		from->waiters--;
	c->waiting_slot = 0;
	c->cdc_pend = 0;
	c->link = to;
	c->n_failovers++;
	if (!c->peer_rmb_size)
		return 0; /* in the handshake: nothing written yet */
	if (!c->peer_rkey_has[to->link_idx]) {
		/* the peer never told us its RMB's rkey on the new link
		 * (CONFIRM_RKEY, ADD_LINK_CONT) */
		usmc_log(c->ctx, USMC_LOG_ERR,
			 "conn %08x: no rkey of the peer on link %u: reset",
			 c->token, to->link_id);
		usmc_close_abort_local(c, USMC_ERR_CONNRESET, 1, ts);
		return USMC_ERR_CONNRESET;
	}
	if (c->mode != USMC_MODE_SMCR || c->state == SMC_CLOSED)
		return 0;
	switch_cursor(c);
	send_validation(c, to);
	/* our consumer cursor again too: its last update may have died
	 * with the link */
	c->cons_upd_pending = 1;
	usmc_tx_push(c);
	return 0;
}

void usmc_failover_last_link(usmc_lgr *lgr, usmc_tstamp ts)
{
	if (lgr->terminating)
		return;
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (!c || !conn_moved_nothing(c))
			continue;
		/* nothing to lose: carry on over the TCP connection (the
		 * peer decides the same way, from what it knows) */
		usmc_log(lgr->ctx, USMC_LOG_INFO,
			 "conn %08x: no link left, no data moved: TCP fallback",
			 c->token);
		usmc_llc_cancel_conn(lgr, c);
		usmc_lgr_del_conn(lgr, c, ts);
		c->mode = USMC_MODE_FALLBACK;
		c->fallback_reason = SMC_CLC_DECL_NOACTLINK;
		usmc_conn_event_raise(c, USMC_EV_FALLBACK);
	}
	usmc_lgr_terminate(lgr, USMC_ERR_CONNRESET, 0, ts);
}

/* Moves every connection of |dead| to |to| (smc_switch_conns) and logs
 * it; |dead| sends nothing any more. */
static void switch_conns(usmc_link *dead, usmc_link *to, int was_active,
			 usmc_tstamp ts)
{
	usmc_lgr *lgr = dead->lgr;
	unsigned int n = 0;

	dead->state = USMC_LNK_INACTIVE;
	dead->qp_rts = 0;
	usmc_link_drop_queued(dead);
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (c && c->link == dead) {
			switch_conn(c, dead, to, ts);
			n++;
		}
	}
	if (was_active || n)
		usmc_log(lgr->ctx, USMC_LOG_INFO,
			 "lgr %u failover link %u -> link %u: %u connections",
			 lgr->id, dead->link_id, to->link_id, n);
	if (n)
		to->failover_first_wr = 1;
}

/* The peer deleted |dead| (its DELETE_LINK, answered by the caller, who
 * then clears the link). */
void usmc_link_switch_conns(usmc_link *dead, usmc_tstamp ts)
{
	usmc_link *to = failover_target(dead->lgr, dead, 0);

	if (to)
		switch_conns(dead, to, 0, ts);
}

void usmc_failover_link_down(usmc_link *link, usmc_link_down_reason why,
			     usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	int dev_err = why == USMC_LINK_DOWN_PORT ||
		      why == USMC_LINK_DOWN_DEVICE_FATAL;
	int was_active = link->state == USMC_LNK_ACTIVE;
	usmc_link *to;

	if (lgr->terminating || link->state == USMC_LNK_UNUSED ||
	    link->clearing || link->gone_expiry != USMC_TSTAMP_NONE)
		return;
	usmc_log(lgr->ctx, USMC_LOG_INFO, "lgr %u link %u down: %s", lgr->id,
		 link->link_id, usmc_link_down_reason_str(why));
	/* the device stays out of ADD_LINK until usmc_ctx_device_up */
	if (dev_err)
		lgr->ctx->dev_down[link->dev_idx] = 1;
	to = failover_target(lgr, link, dev_err);
	if (!to) {
		/* nothing more goes out on it (a DELETE_RKEY of a
		 * connection that ends here included) */
		link->state = USMC_LNK_INACTIVE;
		link->qp_rts = 0;
		usmc_failover_last_link(lgr, ts);
		return;
	}
	switch_conns(link, to, was_active, ts);
	if (!was_active) {
		/* not in use yet (an ADD_LINK that failed): gone at once */
		usmc_llc_link_gone(link, SMC_LLC_DEL_LOST_PATH, ts);
		return;
	}
	/* CDCs the peer's RNIC delivered (so the peer counts them as
	 * confirmed) may still wait on the dead link's CQ: they are taken
	 * until the grace ends, then the peer is told on a surviving link
	 * and the link is freed (smcr_link_down) */
	link->gone_expiry = ts + USMC_FAILOVER_GRACE;
}

usmc_tstamp usmc_failover_expiry(const usmc_lgr *lgr)
{
	usmc_tstamp t = USMC_TSTAMP_NONE;

	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i])
			t = usmc_tmin(t, lgr->links[i]->gone_expiry);
	for (int i = 1; lgr->nvalid && i <= USMC_CONNS_MAX; i++)
		if (lgr->conns[i])
			t = usmc_tmin(t, lgr->conns[i]->rx_valid_expiry);
	return t;
}

/* smc_cdc_msg_validate, after the grace: the CDC the peer's validation
 * named never came, the stream has a hole: abort. */
static void validation_expired(usmc_lgr *lgr, usmc_tstamp ts)
{
	for (int i = 1; lgr->nvalid && i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (!c || c->rx_valid_expiry > ts)
			continue;
		c->rx_valid_expiry = USMC_TSTAMP_NONE;
		lgr->nvalid--;
		if (!usmc_cdc_seq_before(c->rx_seq, c->rx_valid_seq))
			continue;
		usmc_log(lgr->ctx, USMC_LOG_ERR,
			 "conn %08x: failover validation: peer's seqno %u, "
			 "ours %u: abort",
			 c->token, c->rx_valid_seq, c->rx_seq);
		usmc_close_abort_local(c, USMC_ERR_CONNABORTED, 1, ts);
	}
}

void usmc_failover_handle_expiry(usmc_lgr *lgr, usmc_tstamp ts)
{
	validation_expired(lgr, ts);
	for (int i = 0; i < USMC_LINKS_MAX && !lgr->terminating; i++) {
		usmc_link *l = lgr->links[i];

		if (!l || l->gone_expiry > ts)
			continue;
		l->gone_expiry = USMC_TSTAMP_NONE;
		usmc_llc_link_gone(l, SMC_LLC_DEL_LOST_PATH, ts);
	}
}
