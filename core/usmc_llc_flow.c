/* SPDX-License-Identifier: MIT */
/*
 * LLC flows (net/smc smc_llc.c): the local flow that runs our requests one
 * at a time (CONFIRM_LINK, ADD_LINK, CONFIRM_RKEY, DELETE_RKEY), the
 * answers to the peer's requests, DELETE_LINK and TEST_LINK. The message
 * codec is usmc_llc.c.
 */
#include "usmc_conv.h"
#include "usmc_core_int.h"

uint8_t usmc_llc_version(const usmc_lgr *lgr)
{
	return lgr->version == SMC_V2 ? 2 : 1;
}

/* Encodes and sends one LLC message on |link|. */
int usmc_llc_send(usmc_link *link, const usmc_llc_msg *msg)
{
	int idx;

	return usmc_llc_send_slot(link, msg, &idx);
}

/* As usmc_llc_send; |*pidx| is the TX slot it took. */
int usmc_llc_send_slot(usmc_link *link, const usmc_llc_msg *msg, int *pidx)
{
	int idx = usmc_link_get_slot(link);
	usmc_ssize n;

	if (idx < 0)
		return USMC_ERR_BUSY;
	n = usmc_llc_encode(usmc_link_slot_buf(link, idx), USMC_WR_BUF_SIZE,
			    msg);
	if (n != USMC_WR_TX_SIZE) {
		usmc_link_put_slot(link, idx);
		return n < 0 ? (int)n : USMC_ERR_INTERNAL;
	}
	usmc_link_queue_slot(link, idx);
	*pidx = idx;
	return 0;
}

/* As llc_send, but waits in the control queue instead of failing. */
static int llc_send_queued(usmc_link *link, const usmc_llc_msg *msg)
{
	uint8_t buf[USMC_WR_TX_SIZE];
	usmc_ssize n = usmc_llc_encode(buf, sizeof(buf), msg);

	if (n != USMC_WR_TX_SIZE)
		return n < 0 ? (int)n : USMC_ERR_INTERNAL;
	return usmc_link_send_raw(link, buf);
}

/* CONFIRM_LINK for |link| with |flags| (request or response). */
static void llc_confirm_link_msg(usmc_link *link, uint8_t flags,
				 usmc_llc_msg *m)
{
	usmc_lgr *lgr = link->lgr;

	usmc_llc_msg_init(m, SMC_LLC_CONFIRM_LINK, usmc_llc_version(lgr),
			  (uint8_t)(SMC_LLC_FLAG_NO_RMBE_EYEC | flags));
	memcpy(m->confirm_link.sender_mac, usmc_link_dev(link)->mac, 6);
	memcpy(m->confirm_link.sender_gid, usmc_link_dev(link)->gid, 16);
	m->confirm_link.sender_qp_num = link->qp_num;
	m->confirm_link.link_num = link->link_id;
	m->confirm_link.link_uid = lgr->id | link->link_id;
	m->confirm_link.max_links = lgr->max_links;
	m->confirm_link.max_conns = lgr->release >= 1 ? lgr->max_conns : 0;
}

/* ---- local LLC flows: one request at a time, FIFO ---- */

static void llc_q_add(usmc_lgr *lgr, usmc_llc_req *r)
{
	if (lgr->llc_q_tail)
		lgr->llc_q_tail->next = r;
	else
		lgr->llc_q = r;
	lgr->llc_q_tail = r;
}

int usmc_llc_queue(usmc_lgr *lgr, uint8_t type, usmc_conn *conn, usmc_buf *buf,
		   usmc_tstamp ts)
{
	usmc_llc_req *r = usmc_mem_calloc(lgr->ctx, 1, sizeof(*r));

	if (!r)
		return USMC_ERR_NOMEM;
	r->type = type;
	r->conn = conn;
	r->buf = buf;
	llc_q_add(lgr, r);
	usmc_llc_run(lgr, ts);
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

/* CONFIRM_RKEY for |buf| sent on |link|: its rkey there first, then one
 * rtoken (link id, rkey, address) per other active link
 * (smc_llc_send_confirm_rkey). */
static void llc_confirm_rkey_msg(usmc_link *link, const usmc_buf *buf,
				 usmc_llc_msg *m)
{
	usmc_lgr *lgr = link->lgr;
	const usmc_mr *mr = usmc_buf_mr(buf, link->dev_idx);
	unsigned int n = 1;

	m->confirm_rkey.rtoken[0].rmb_key = mr ? mr->rkey : 0;
	m->confirm_rkey.rtoken[0].rmb_vaddr = mr ? mr->iova : 0;
	for (int i = 0; i < USMC_LINKS_MAX && n < SMC_LLC_RKEYS_PER_MSG; i++) {
		usmc_link *l = lgr->links[i];

		if (!l || l == link || l->state != USMC_LNK_ACTIVE ||
		    !(mr = usmc_buf_mr(buf, l->dev_idx)))
			continue;
		m->confirm_rkey.rtoken[n].link_id = l->link_id;
		m->confirm_rkey.rtoken[n].rmb_key = mr->rkey;
		m->confirm_rkey.rtoken[n].rmb_vaddr = mr->iova;
		n++;
	}
	m->confirm_rkey.num_rkeys = (uint8_t)(n - 1);
}

static int llc_build(usmc_lgr *lgr, usmc_link *link, const usmc_llc_req *r,
		     usmc_llc_msg *m)
{
	usmc_llc_msg_init(m, r->type, usmc_llc_version(lgr), 0);
	switch (r->type) {
	case SMC_LLC_CONFIRM_LINK:
		llc_confirm_link_msg(link, 0, m);
		break;
	case SMC_LLC_CONFIRM_RKEY:
		if (!r->buf)
			return USMC_ERR_INTERNAL;
		llc_confirm_rkey_msg(link, r->buf, m);
		break;
	case SMC_LLC_DELETE_RKEY: {
		const usmc_mr *mr =
			r->buf ? usmc_buf_mr(r->buf, link->dev_idx) : NULL;

		if (!mr)
			return USMC_ERR_INTERNAL;
		m->delete_rkey.num_rkeys = 1;
		m->delete_rkey.rkey[0] = mr->rkey;
		break;
	}
	case SMC_LLC_DELETE_LINK:
		m->hdr.flags = SMC_LLC_FLAG_DEL_LINK_ORDERLY;
		m->delete_link.link_num = r->link_id;
		m->delete_link.reason = r->del_reason;
		break;
	default:
		return USMC_ERR_INTERNAL;
	}
	return 0;
}

static void llc_flow_done(usmc_lgr *lgr, int ok, usmc_tstamp ts);
static void addl_start(usmc_lgr *lgr, usmc_tstamp ts);
static void llc_delayed_run(usmc_lgr *lgr, usmc_tstamp ts);

void usmc_llc_run(usmc_lgr *lgr, usmc_tstamp ts)
{
	usmc_link *link;
	usmc_llc_msg m;
	int rv;

	if (lgr->terminating)
		return;
	/* a peer's request held for a TX slot or our flow goes first */
	if (!lgr->llc_cur && lgr->delayed)
		llc_delayed_run(lgr, ts);
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
	link = usmc_lgr_first_link(lgr);
	if (!link)
		return; /* retried when the link becomes usable */
	if (lgr->llc_cur->type == SMC_LLC_ADD_LINK) {
		addl_start(lgr, ts);
		return;
	}
	if (llc_build(lgr, link, lgr->llc_cur, &m)) {
		llc_flow_done(lgr, 0, ts);
		return;
	}
	rv = usmc_llc_send(link, &m);
	if (rv == USMC_ERR_BUSY)
		return; /* retried when a TX slot frees */
	if (rv) {
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
	int again = 0;

	if (!r)
		return;
	lgr->llc_cur = NULL;
	lgr->llc_sent = 0;
	lgr->llc_expiry = USMC_TSTAMP_NONE;
	lgr->addl_step = USMC_ADDL_NONE;
	lgr->addl_link = lgr->addl_new = NULL;
	if (r->type == SMC_LLC_ADD_LINK && lgr->addl_again) {
		lgr->addl_again = 0;
		again = 1;
	}
	switch (r->type) {
	case SMC_LLC_CONFIRM_LINK:
		if (r->conn)
			usmc_conn_link_confirmed(r->conn, ok, ts);
		else if (!ok)
			usmc_lgr_terminate(lgr, USMC_ERR_TIMEOUT, 0, ts);
		if (ok)
			usmc_llc_want_link(lgr, -1, ts);
		break;
	case SMC_LLC_CONFIRM_RKEY:
		if (r->conn)
			usmc_conn_rkey_confirmed(r->conn, ok, ts);
		break;
	default:
		/* ADD_LINK, DELETE_LINK and DELETE_RKEY need nothing more; a
		 * lost response is not fatal (the kernel also goes on). */
		break;
	}
	usmc_mem_free(lgr->ctx, r);
	if (lgr->terminating)
		return;
	llc_delayed_run(lgr, ts);
	if (again)
		usmc_llc_want_link(lgr, -1, ts);
	usmc_llc_run(lgr, ts);
	usmc_lgr_end_if_idle(lgr, ts);
}

/* ---- LLC receive ---- */

static void llc_respond(usmc_link *link, usmc_llc_msg *m)
{
	int rv;

	m->hdr.flags |= SMC_LLC_FLAG_RESP;
	rv = llc_send_queued(link, m);
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

/* ---- second links: ADD_LINK, ADD_LINK_CONT, CONFIRM_LINK on the new
 * link (smc_llc_srv_add_link, smc_llc_cli_add_link) ---- */

static int pnet_set(const char *p)
{
	for (int i = 0; i < 16; i++)
		if (p[i] && p[i] != ' ')
			return 1;
	return 0;
}

static int dev_pnet_set(const usmc_ctx *ctx, unsigned int dev)
{
	return dev < ctx->s.ndevices && pnet_set(ctx->s.devices[dev].pnet_id);
}

static int dev_usable(const usmc_ctx *ctx, unsigned int dev)
{
	return dev < ctx->s.ndevices && !ctx->dev_down[dev];
}

/* A device with the pnet id of |link|'s, not |link|'s and not used by a
 * symmetric link of the group, whose memory can be registered (reg_mr);
 * -1 if none (smc_pnet_find_alt_roce). */
int usmc_llc_alt_dev(const usmc_lgr *lgr, const usmc_link *link)
{
	const usmc_ctx *ctx = lgr->ctx;
	const char *pnet = ctx->s.devices[link->dev_idx].pnet_id;

	if (!pnet_set(pnet) || !ctx->cb.reg_mr)
		return -1;
	for (unsigned int d = 0; d < ctx->s.ndevices; d++) {
		int used = d == link->dev_idx;

		if (!dev_usable(ctx, d) ||
		    memcmp(ctx->s.devices[d].pnet_id, pnet, 16))
			continue;
		for (int i = 0; i < USMC_LINKS_MAX; i++)
			if (lgr->links[i] && lgr->links[i]->dev_idx == d &&
			    !lgr->links[i]->asym)
				used = 1;
		if (!used)
			return (int)d;
	}
	return -1;
}

/* Room for another link: 1 with fewer than two active links, 2 when two
 * are up but one is asymmetric (a symmetric one would replace it, as the
 * kernel deletes an asymmetric link once the group is SYMMETRIC), 0. */
static int lgr_wants_link(const usmc_lgr *lgr)
{
	unsigned int n = usmc_lgr_active_links(lgr);
	int asym = 0, slot = 0;

	if (n < 2)
		return 1;
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		const usmc_link *l = lgr->links[i];

		slot |= !l;
		asym |= l && l->state == USMC_LNK_ACTIVE && l->asym;
	}
	return asym && slot ? 2 : 0;
}

/* An active asymmetric link other than |not|, or NULL. */
static usmc_link *asym_link(usmc_lgr *lgr, const usmc_link * not )
{
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		usmc_link *l = lgr->links[i];

		if (l && l != not &&l->state == USMC_LNK_ACTIVE && l->asym)
			return l;
	}
	return NULL;
}

/* A link id no link of the group has (smc_next_link_id). */
static uint8_t next_link_id(usmc_lgr *lgr)
{
	for (;;) {
		uint8_t id = lgr->next_link_id++;
		int used = 0;

		if (!id)
			continue;
		for (int i = 0; i < USMC_LINKS_MAX; i++)
			if (lgr->links[i] && lgr->links[i]->link_id == id)
				used = 1;
		if (!used)
			return id;
	}
}

static usmc_link *link_by_id(usmc_lgr *lgr, uint8_t id)
{
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i] && lgr->links[i]->link_id == id &&
		    !lgr->links[i]->clearing)
			return lgr->links[i];
	return NULL;
}

/* A v2 message that may be longer than 44 bytes (ADD_LINK with its
 * extension, REQ_ADD_LINK): one that fits a TX slot goes as the other
 * control messages and leaves the v2 buffer alone (a long message may
 * still be read from it); a longer one from the v2 buffer, as
 * smc_wr_tx_v2_send. Either waits for a busy link rather than fail. */
int usmc_llc_send_long(usmc_link *link, const usmc_llc_msg *msg)
{
	uint8_t buf[USMC_WR_TX_SIZE];
	usmc_ssize n = usmc_llc_encode(buf, sizeof(buf), msg);

	if (n == USMC_WR_TX_SIZE)
		return usmc_link_send_raw(link, buf);
	if (n != USMC_ERR_NOBUF)
		return n < 0 ? (int)n : USMC_ERR_INTERNAL;
	return usmc_link_send_long(link, msg);
}

/* Our RMBs in use from connection slot |pos| on (ADD_LINK_CONT and the v2
 * extension name them; pooled ones get a CONFIRM_RKEY when reused). */
static unsigned int rmbs_from(const usmc_lgr *lgr, unsigned int pos)
{
	unsigned int n = 0;

	for (unsigned int i = pos ? pos : 1; i <= USMC_CONNS_MAX; i++)
		n += lgr->conns[i] && lgr->conns[i]->rmb;
	return n;
}

/* The rkey triple of the RMB of connection slot |i|: its key on |link|,
 * and key and address on |nl| (0 if not registered there). */
static int rmb_triple(const usmc_lgr *lgr, unsigned int i,
		      const usmc_link *link, const usmc_link *nl,
		      usmc_llc_rt *rt)
{
	const usmc_conn *c = lgr->conns[i];
	const usmc_mr *a, *b;

	if (!c || !c->rmb)
		return 0;
	a = usmc_buf_mr(c->rmb, link->dev_idx);
	b = usmc_buf_mr(c->rmb, nl->dev_idx);
	if (!a || !b)
		return 0;
	rt->rmb_key = a->rkey;
	rt->rmb_key_new = b->rkey;
	rt->rmb_vaddr_new = b->iova;
	return 1;
}

/* ADD_LINK request or response for |nl| (the new link), sent on |link|;
 * v2 carries the rkeys of every RMB in use (smc_llc_fill_ext_v2). */
static void addl_msg(usmc_lgr *lgr, usmc_link *link, usmc_link *nl,
		     uint8_t flags, usmc_llc_msg *m)
{
	const usmc_device_info *d = usmc_link_dev(nl);

	usmc_llc_msg_init(m, SMC_LLC_ADD_LINK, usmc_llc_version(lgr), flags);
	memcpy(m->add_link.sender_mac, d->mac, 6);
	memcpy(m->add_link.sender_gid, d->gid, 16);
	m->add_link.sender_qp_num = nl->qp_num;
	m->add_link.link_num = nl->link_id;
	m->add_link.qp_mtu = nl->path_mtu ? nl->path_mtu : d->active_mtu;
	m->add_link.initial_psn = nl->psn;
	if (lgr->version != SMC_V2)
		return;
	m->add_link.has_v2_ext = 1;
	m->add_link.v2_direct = 1;
	/* as smc_llc_fill_ext_v2, in the request and the response: the new
	 * link's own GID (the receiver picks no device by it) */
	memcpy(m->add_link.client_target_gid, d->gid, 16);
	for (unsigned int i = 1;
	     i <= USMC_CONNS_MAX &&
	     m->add_link.num_rkeys < SMC_LLC_RKEYS_PER_MSG_V2;
	     i++)
		if (rmb_triple(lgr, i, link, nl,
			       &m->add_link.rt[m->add_link.num_rkeys]))
			m->add_link.num_rkeys++;
}

/* The ADD_LINK's sender is the port |link| already reaches (its GID, and
 * for v1 its MAC): the new link would be asymmetric on the peer's side. */
static int addl_same_peer(const usmc_lgr *lgr, const usmc_link *link,
			  const usmc_llc_msg *m)
{
	return !memcmp(m->add_link.sender_gid, link->peer_gid, 16) &&
	       (lgr->version == SMC_V2 ||
		!memcmp(m->add_link.sender_mac, link->peer_mac, 6));
}

/* The new link's peer end as the ADD_LINK gives it, the path MTU the
 * smaller of both ports' (smc_llc_save_add_link_info). */
static void addl_save_peer(usmc_link *nl, const usmc_llc_msg *m)
{
	nl->peer_qpn = m->add_link.sender_qp_num;
	nl->peer_psn = m->add_link.initial_psn;
	memcpy(nl->peer_gid, m->add_link.sender_gid, 16);
	memcpy(nl->peer_mac, m->add_link.sender_mac, 6);
	nl->path_mtu = usmc_link_dev(nl)->active_mtu < m->add_link.qp_mtu
			       ? usmc_link_dev(nl)->active_mtu
			       : m->add_link.qp_mtu;
}

/* The peer's RMBs on the new link: each triple names one by its rkey on
 * the link the message came on; unknown ones are not trusted (dropped). */
static void addl_save_rkeys(usmc_lgr *lgr, const usmc_link *link,
			    const usmc_link *nl, const usmc_llc_rt *rt,
			    unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		if (usmc_lgr_rtoken_set(lgr, link->link_idx, rt[i].rmb_key,
					nl->link_idx, rt[i].rmb_key_new,
					rt[i].rmb_vaddr_new))
			usmc_log(lgr->ctx, USMC_LOG_WARN,
				 "lgr %u: ADD_LINK rkey %08x names no RMB of "
				 "the peer, ignored",
				 lgr->id, rt[i].rmb_key);
}

/* v1 rkey exchange: one ADD_LINK_CONT with up to two rkeys
 * (smc_llc_add_link_cont); the client's carry the response flag. */
static int addl_send_cont(usmc_lgr *lgr)
{
	usmc_link *link = lgr->addl_link, *nl = lgr->addl_new;
	usmc_llc_msg m;
	unsigned int k = 0;

	usmc_llc_msg_init(&m, SMC_LLC_ADD_LINK_CONT, 1,
			  lgr->role == USMC_ROLE_CLIENT ? SMC_LLC_FLAG_RESP
							: 0);
	m.add_link_cont.link_num = nl->link_id;
	lgr->addl_nsend = rmbs_from(lgr, lgr->addl_send_pos);
	m.add_link_cont.num_rkeys =
		(uint8_t)(lgr->addl_nsend > 255 ? 255 : lgr->addl_nsend);
	while (k < SMC_LLC_RKEYS_PER_CONT_MSG && lgr->addl_nsend &&
	       lgr->addl_send_pos <= USMC_CONNS_MAX) {
		unsigned int i = lgr->addl_send_pos ? lgr->addl_send_pos : 1;

		lgr->addl_send_pos = i + 1;
		if (rmb_triple(lgr, i, link, nl, &m.add_link_cont.rt[k])) {
			k++;
			lgr->addl_nsend--;
		}
	}
	return llc_send_queued(link, &m);
}

static void link_up_log(usmc_link *l)
{
	usmc_log(l->lgr->ctx, USMC_LOG_INFO, "lgr %u link %u up on device %u",
		 l->lgr->id, l->link_id, l->dev_idx);
}

/* The flow failed after the peer accepted: it is told the new link is
 * gone (as smc_llc_srv_conf_link / smc_llc_cli_conf_link on a timeout). */
static void addl_fail(usmc_lgr *lgr, int tell, usmc_tstamp ts)
{
	usmc_link *nl = lgr->addl_new, *link = lgr->addl_link;

	if (nl) {
		unsigned int dev = nl->dev_idx;

		if (tell && usmc_link_usable(link)) {
			usmc_llc_msg m;

			usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK,
					  usmc_llc_version(lgr),
					  SMC_LLC_FLAG_DEL_LINK_ORDERLY);
			m.delete_link.link_num = nl->link_id;
			m.delete_link.reason = SMC_LLC_DEL_LOST_PATH;
			llc_send_queued(link, &m);
		}
		lgr->addl_new = NULL;
		usmc_link_free(nl);
		usmc_lgr_unreg_dev(lgr, dev);
	}
	llc_flow_done(lgr, 0, ts);
}

/* Server: the local ADD_LINK flow starts (smc_llc_srv_add_link). With a
 * device that has no pnet id the request offers no QP (MTU 0), which
 * every client rejects at once: a client must not wait 2 s for an
 * ADD_LINK that never comes. */
static void addl_start(usmc_lgr *lgr, usmc_tstamp ts)
{
	usmc_ctx *ctx = lgr->ctx;
	usmc_link *link = usmc_lgr_first_link(lgr), *nl;
	int want = lgr_wants_link(lgr);
	usmc_llc_msg m;
	int dev, rv;

	/* the new link pairs with the symmetric one: the asymmetric one is
	 * what it replaces (after a failover it may come first) */
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		usmc_link *l = lgr->links[i];

		if (l && l->state == USMC_LNK_ACTIVE && !l->asym &&
		    usmc_link_usable(l)) {
			link = l;
			break;
		}
	}

	if (lgr->role != USMC_ROLE_SERVER || !link ||
	    link->state != USMC_LNK_ACTIVE || lgr->max_links <= 1 || !want ||
	    (want == 2 && usmc_llc_alt_dev(lgr, link) < 0)) {
		llc_flow_done(lgr, 1, ts);
		return;
	}
	lgr->addl_link = link;
	lgr->addl_new = NULL;
	if (!dev_pnet_set(ctx, link->dev_idx)) {
		usmc_llc_msg_init(&m, SMC_LLC_ADD_LINK, usmc_llc_version(lgr),
				  0);
		memcpy(m.add_link.sender_mac, usmc_link_dev(link)->mac, 6);
		memcpy(m.add_link.sender_gid, usmc_link_dev(link)->gid, 16);
		m.add_link.link_num = (uint8_t)(link->link_id + 1);
		if (usmc_llc_send(link, &m) == USMC_ERR_BUSY)
			return; /* retried when a TX slot frees */
		goto sent;
	}
	if (link->slots_used >= link->nslots || link->nllc_pend)
		return; /* retried when a TX slot frees */
	/* the alternate device, else this one (ASYMMETRIC_LOCAL) */
	dev = usmc_llc_alt_dev(lgr, link);
	if (dev < 0)
		dev = link->dev_idx;
	if (usmc_link_create(lgr, (unsigned int)dev, &nl)) {
		llc_flow_done(lgr, 0, ts);
		return;
	}
	nl->link_id = next_link_id(lgr);
	nl->state = USMC_LNK_ACTIVATING;
	nl->asym = dev == link->dev_idx;
	lgr->addl_new = nl;
	if (usmc_lgr_reg_bufs(lgr, nl->dev_idx)) {
		/* the buffers cannot be reached there (a transport without
		 * reg_mr): this device then, asymmetric, so the client still
		 * gets an ADD_LINK to answer rather than wait 2 s for one */
		unsigned int bad = nl->dev_idx;

		lgr->addl_new = NULL;
		usmc_link_free(nl);
		usmc_lgr_unreg_dev(lgr, bad);
		if (want == 2 || bad == link->dev_idx ||
		    usmc_link_create(lgr, link->dev_idx, &nl)) {
			llc_flow_done(lgr, 0, ts);
			return;
		}
		nl->link_id = next_link_id(lgr);
		nl->state = USMC_LNK_ACTIVATING;
		nl->asym = 1;
		lgr->addl_new = nl;
	}
	addl_msg(lgr, link, nl, 0, &m);
	rv = lgr->version == SMC_V2 ? usmc_llc_send_long(link, &m)
				    : usmc_llc_send(link, &m);
	if (rv) {
		/* no memory, or long messages pile up on the link: the next
		 * try is at the next ADD_LINK */
		addl_fail(lgr, 0, ts);
		return;
	}
sent:
	lgr->llc_sent = 1;
	lgr->addl_step = USMC_ADDL_SRV_WAIT_RESP;
	lgr->llc_expiry = ts + ctx->s.llc_timeout;
}

/* Server: CONFIRM_LINK request on the new link (smc_llc_srv_conf_link). */
static void addl_srv_conf_link(usmc_lgr *lgr, usmc_tstamp ts)
{
	usmc_llc_msg m;

	llc_confirm_link_msg(lgr->addl_new, 0, &m);
	if (usmc_llc_send(lgr->addl_new, &m)) {
		addl_fail(lgr, 1, ts);
		return;
	}
	lgr->addl_step = USMC_ADDL_SRV_WAIT_CLINK;
	lgr->llc_expiry = ts + lgr->ctx->s.llc_timeout;
}

/* Server: the client's ADD_LINK response. */
static void addl_srv_resp(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_link *nl = lgr->addl_new;

	if (lgr->addl_step != USMC_ADDL_SRV_WAIT_RESP || link != lgr->addl_link)
		return; /* out of flow: dropped */
	if (!nl || (m->hdr.flags & SMC_LLC_FLAG_ADD_LNK_REJ)) {
		usmc_log(lgr->ctx, USMC_LOG_INFO,
			 "lgr %u: ADD_LINK rejected by the peer", lgr->id);
		addl_fail(lgr, 0, ts);
		return;
	}
	if (m->add_link.link_num != nl->link_id || !m->add_link.sender_qp_num ||
	    !m->add_link.qp_mtu) {
		addl_fail(lgr, 1, ts);
		return;
	}
	/* the client answered with its existing port: ASYMMETRIC_PEER, not
	 * taken where it would only replace an asymmetric link */
	if (addl_same_peer(lgr, link, m))
		nl->asym = 1;
	if (nl->asym && asym_link(lgr, nl)) {
		addl_fail(lgr, 1, ts);
		return;
	}
	addl_save_peer(nl, m);
	if (usmc_link_ready(nl, 0) || usmc_link_ready(nl, 1)) {
		addl_fail(lgr, 1, ts);
		return;
	}
	if (lgr->version == SMC_V2) {
		addl_save_rkeys(lgr, link, nl, m->add_link.rt,
				m->add_link.num_rkeys);
		addl_srv_conf_link(lgr, ts);
		return;
	}
	/* v1: ADD_LINK_CONT both ways until neither side has rkeys left */
	lgr->addl_send_pos = 1;
	lgr->addl_step = USMC_ADDL_WAIT_CONT;
	lgr->llc_expiry = ts + lgr->ctx->s.llc_timeout;
	if (addl_send_cont(lgr))
		addl_fail(lgr, 1, ts);
}

/* v1: the peer's ADD_LINK_CONT (smc_llc_srv_rkey_exchange,
 * smc_llc_cli_rkey_exchange); outside an ADD_LINK flow it is ignored. */
static void llc_rx_add_link_cont(usmc_link *link, usmc_llc_msg *m,
				 usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	unsigned int n = m->add_link_cont.num_rkeys;

	if (lgr->addl_step != USMC_ADDL_WAIT_CONT || link != lgr->addl_link ||
	    m->add_link_cont.link_num != lgr->addl_new->link_id)
		return;
	addl_save_rkeys(lgr, link, lgr->addl_new, m->add_link_cont.rt,
			n < SMC_LLC_RKEYS_PER_CONT_MSG
				? n
				: SMC_LLC_RKEYS_PER_CONT_MSG);
	lgr->addl_nrecv = n > SMC_LLC_RKEYS_PER_CONT_MSG
				  ? n - SMC_LLC_RKEYS_PER_CONT_MSG
				  : 0;
	lgr->llc_expiry = ts + lgr->ctx->s.llc_timeout;
	if (lgr->role == USMC_ROLE_CLIENT) {
		/* each of the server's is answered with one of ours */
		if (addl_send_cont(lgr)) {
			addl_fail(lgr, 1, ts);
			return;
		}
		if (!lgr->addl_nsend && !lgr->addl_nrecv) {
			lgr->addl_step = USMC_ADDL_CLI_WAIT_CLINK;
			lgr->llc_expiry = ts + SMC_LLC_WAIT_FIRST_TIME;
		}
		return;
	}
	if (lgr->addl_nsend || lgr->addl_nrecv) {
		if (addl_send_cont(lgr))
			addl_fail(lgr, 1, ts);
		return;
	}
	addl_srv_conf_link(lgr, ts);
}

/* Server: the CONFIRM_LINK response on the new link ends the flow. */
static void addl_srv_clink_resp(usmc_link *link, usmc_llc_msg *m,
				usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (lgr->addl_step != USMC_ADDL_SRV_WAIT_CLINK || link != lgr->addl_new)
		return;
	if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC) ||
	    m->confirm_link.sender_qp_num != link->peer_qpn ||
	    m->confirm_link.link_num != link->link_id) {
		addl_fail(lgr, 1, ts);
		return;
	}
	link->state = USMC_LNK_ACTIVE;
	link->last_rx = ts;
	lgr->addl_new = NULL;
	link_up_log(link);
	llc_flow_done(lgr, 1, ts);
	/* symmetric now: the asymmetric link goes (NO_ASYM_NEEDED), its
	 * connections moved first (smc_llc_delete_asym_link) */
	if (!link->asym && !lgr->terminating) {
		usmc_link *old = asym_link(lgr, link);

		if (old) {
			old->qp_rts = 0;
			old->state = USMC_LNK_INACTIVE;
			usmc_link_switch_conns(old, ts);
			if (lgr->links[old->link_idx] == old)
				usmc_llc_link_gone(
					old, SMC_LLC_DEL_NO_ASYM_NEEDED, ts);
		}
	}
}

/* Is |gid| one a new link could go to? v2 reaches the peer over IPv4, so
 * its GID must map one (smc_ib_gid_to_ipv4), not 0, loopback, multicast
 * or broadcast; any GID must be non-zero and unicast. */
static int gid_reachable(const usmc_lgr *lgr, const uint8_t *gid)
{
	static const uint8_t v4pfx[12] = {0, 0, 0, 0, 0,    0,
					  0, 0, 0, 0, 0xff, 0xff};
	static const uint8_t zero[16];

	if (!memcmp(gid, zero, 16) || gid[0] == 0xff)
		return 0;
	if (lgr->version != SMC_V2)
		return 1;
	if (memcmp(gid, v4pfx, 12))
		return 0;
	return gid[12] != 0 && gid[12] != 127 && gid[12] < 224;
}

/* Client: which of our devices takes the server's new link, or -1 to
 * reject (smc_llc_cli_add_link). */
static int addl_cli_dev(usmc_lgr *lgr, usmc_link *link, const usmc_llc_msg *m,
			const char **why)
{
	usmc_ctx *ctx = lgr->ctx;
	static const uint8_t zero[16];
	int alt, same_peer;

	*why = "no alternate path";
	if (!dev_pnet_set(ctx, link->dev_idx) || lgr->max_links <= 1 ||
	    !m->add_link.qp_mtu || !lgr_wants_link(lgr))
		return -1;
	if (!m->add_link.link_num || link_by_id(lgr, m->add_link.link_num)) {
		*why = "duplicate link id";
		return -1;
	}
	if (!m->add_link.sender_qp_num ||
	    !gid_reachable(lgr, m->add_link.sender_gid)) {
		*why = "unreachable GID";
		return -1;
	}
	alt = usmc_llc_alt_dev(lgr, link);
	/* Linux fills client_target_gid with its own new link's GID, the
	 * sender GID again (smc_llc_fill_ext_v2), and picks no device of
	 * ours by it: only another GID names one of our devices */
	if (m->add_link.has_v2_ext &&
	    memcmp(m->add_link.client_target_gid, zero, 16) &&
	    memcmp(m->add_link.client_target_gid, m->add_link.sender_gid, 16)) {
		/* the server names our device: it must be one of ours on
		 * this pnet */
		int named = -1;

		for (unsigned int d = 0; d < ctx->s.ndevices; d++)
			if (!memcmp(ctx->s.devices[d].gid,
				    m->add_link.client_target_gid, 16))
				named = (int)d;
		if (named < 0 || !dev_usable(ctx, (unsigned int)named) ||
		    memcmp(ctx->s.devices[named].pnet_id,
			   ctx->s.devices[link->dev_idx].pnet_id, 16) ||
		    (named != (int)link->dev_idx && named != alt)) {
			*why = "unknown device";
			return -1;
		}
		alt = named == (int)link->dev_idx ? -1 : named;
	}
	same_peer = addl_same_peer(lgr, link, m);
	if (same_peer && alt < 0)
		return -1; /* both ends the same: no second path */
	if (lgr_wants_link(lgr) == 2 && alt < 0)
		return -1; /* it would not replace the asymmetric one */
	return alt >= 0 ? alt : (int)link->dev_idx;
}

static void addl_cli_reject(usmc_link *link, usmc_llc_msg *m)
{
	usmc_lgr *lgr = link->lgr;

	/* the reject echoes the request, as smc_llc_cli_add_link does; v2
	 * has no room for the reason */
	m->hdr.flags = SMC_LLC_FLAG_ADD_LNK_REJ;
	m->add_link.has_v2_ext = 0;
	m->add_link.num_rkeys = 0;
	if (lgr->version == SMC_V1)
		m->hdr.add_link_rej_rsn = SMC_LLC_REJ_RSN_NO_ALT_PATH;
	llc_respond(link, m);
}

/* Client: the server's ADD_LINK request: answered at once, accepted on
 * the alternate device (or this one: ASYMMETRIC_LOCAL) or rejected with
 * NO_ALT_PATH. It holds the local flow until the new link's CONFIRM_LINK,
 * as the kernel's. */
static void addl_cli_req(usmc_link *link, usmc_llc_msg *m, int mtu_bad,
			 usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	const char *why = "MTU out of range";
	usmc_llc_req *r;
	usmc_llc_msg resp;
	usmc_link *nl;
	int dev = mtu_bad ? -1 : addl_cli_dev(lgr, link, m, &why);

	if (dev < 0) {
		usmc_log(lgr->ctx, USMC_LOG_INFO,
			 "lgr %u: ADD_LINK of link %u rejected: %s", lgr->id,
			 m->add_link.link_num, why);
		addl_cli_reject(link, m);
		return;
	}
	r = usmc_mem_calloc(lgr->ctx, 1, sizeof(*r));
	if (!r || usmc_link_create(lgr, (unsigned int)dev, &nl)) {
		usmc_mem_free(lgr->ctx, r);
		addl_cli_reject(link, m);
		return;
	}
	r->type = SMC_LLC_ADD_LINK;
	r->remote = 1;
	lgr->llc_cur = r;
	lgr->llc_sent = 1;
	lgr->addl_link = link;
	lgr->addl_new = nl;
	nl->link_id = m->add_link.link_num;
	nl->state = USMC_LNK_ACTIVATING;
	/* ASYMMETRIC_LOCAL (our one device) or _PEER (the server's) */
	nl->asym = dev == link->dev_idx || addl_same_peer(lgr, link, m);
	addl_save_peer(nl, m);
	if (usmc_lgr_reg_bufs(lgr, nl->dev_idx) || usmc_link_ready(nl, 0)) {
		addl_cli_reject(link, m);
		addl_fail(lgr, 0, ts);
		return;
	}
	addl_msg(lgr, link, nl, SMC_LLC_FLAG_RESP, &resp);
	if ((lgr->version == SMC_V2 ? usmc_llc_send_long(link, &resp)
				    : llc_send_queued(link, &resp))) {
		addl_fail(lgr, 0, ts);
		return;
	}
	if (lgr->version == SMC_V2) {
		addl_save_rkeys(lgr, link, nl, m->add_link.rt,
				m->add_link.num_rkeys);
		lgr->addl_step = USMC_ADDL_CLI_WAIT_CLINK;
		lgr->llc_expiry = ts + SMC_LLC_WAIT_FIRST_TIME;
		return;
	}
	lgr->addl_send_pos = 1;
	lgr->addl_step = USMC_ADDL_WAIT_CONT;
	lgr->llc_expiry = ts + lgr->ctx->s.llc_timeout;
}

/* Client: the server's CONFIRM_LINK request on the new link
 * (smc_llc_cli_conf_link): RTS, ACTIVE, answered on the new link. */
static void addl_cli_clink(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_llc_msg r;

	if (lgr->addl_step != USMC_ADDL_CLI_WAIT_CLINK || link != lgr->addl_new)
		return;
	if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC) ||
	    m->confirm_link.sender_qp_num != link->peer_qpn ||
	    m->confirm_link.link_num != link->link_id ||
	    usmc_link_ready(link, 1)) {
		addl_fail(lgr, 1, ts);
		return;
	}
	link->state = USMC_LNK_ACTIVE;
	link->last_rx = ts;
	llc_confirm_link_msg(link, SMC_LLC_FLAG_RESP, &r);
	if (usmc_llc_send(link, &r)) {
		addl_fail(lgr, 1, ts);
		return;
	}
	lgr->addl_new = NULL;
	link_up_log(link);
	llc_flow_done(lgr, 1, ts);
}

void usmc_llc_want_link(usmc_lgr *lgr, int dev, usmc_tstamp ts)
{
	usmc_ctx *ctx = lgr->ctx;
	usmc_link *link = usmc_lgr_first_link(lgr);

	if (lgr->terminating || !lgr->first_link_up || !link ||
	    lgr->max_links <= 1 || !lgr_wants_link(lgr))
		return;
	if (lgr->role == USMC_ROLE_SERVER) {
		/* the running flow chose its devices before this: one more
		 * once it ends, or a client's device that came up meanwhile
		 * (its one REQ_ADD_LINK) never gets its link */
		if (lgr->llc_cur && lgr->llc_cur->type == SMC_LLC_ADD_LINK) {
			usmc_log(ctx, USMC_LOG_DEBUG,
				 "lgr %u: link wanted during ADD_LINK: again "
				 "after it",
				 lgr->id);
			lgr->addl_again = 1;
			return;
		}
		for (usmc_llc_req *r = lgr->llc_q; r; r = r->next)
			if (r->type == SMC_LLC_ADD_LINK)
				return;
		usmc_llc_queue(lgr, SMC_LLC_ADD_LINK, NULL, NULL, ts);
		return;
	}
	/* a v2 client asks (smc_llc_send_request_add_link); v1 waits for
	 * the server */
	if (lgr->version != SMC_V2 || dev < 0 || !dev_pnet_set(ctx, dev) ||
	    memcmp(ctx->s.devices[dev].pnet_id,
		   ctx->s.devices[link->dev_idx].pnet_id, 16) ||
	    (lgr->req_add_expiry != USMC_TSTAMP_NONE &&
	     lgr->req_add_expiry > ts)) {
		return;
	}
	{
		usmc_llc_msg m;
		int rv;

		usmc_llc_msg_init(&m, SMC_LLC_REQ_ADD_LINK, 2, 0);
		m.req_add_link.gid_cnt = 1;
		memcpy(m.req_add_link.gid[0], ctx->s.devices[dev].gid, 16);
		rv = usmc_llc_send_long(link, &m);
		if (!rv)
			lgr->req_add_expiry = ts + ctx->s.llc_timeout;
		usmc_log(ctx, USMC_LOG_DEBUG,
			 "lgr %u: REQ_ADD_LINK for device %d on link %u: %s",
			 lgr->id, dev, link->link_id,
			 rv ? usmc_strerror(rv) : "sent");
	}
}

void usmc_ctx_device_up(usmc_ctx *ctx, unsigned int dev_idx, usmc_tstamp ts)
{
	if (!ctx || dev_idx >= ctx->s.ndevices)
		return;
	ctx->now = ts;
	ctx->dev_down[dev_idx] = 0;
	for (usmc_lgr *lgr = ctx->lgrs; lgr; lgr = lgr->next) {
		usmc_link *l = usmc_lgr_first_link(lgr);

		if (!l || !dev_pnet_set(ctx, dev_idx) ||
		    memcmp(ctx->s.devices[dev_idx].pnet_id,
			   ctx->s.devices[l->dev_idx].pnet_id, 16))
			continue;
		usmc_llc_want_link(lgr, (int)dev_idx, ts);
	}
}

/* A peer's request that came while a local flow ran, now. */
static void llc_delayed_run(usmc_lgr *lgr, usmc_tstamp ts)
{
	usmc_link *link = lgr->delayed_link;

	if (!lgr->delayed)
		return;
	lgr->delayed = 0;
	lgr->delayed_link = NULL;
	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i] == link && usmc_link_usable(link))
			usmc_llc_rx(link, lgr->delayed_msg, lgr->delayed_len,
				    ts);
}

/* Parks a peer's ADD_LINK / DELETE_LINK request while our flow runs
 * (net/smc's one delayed_event; a second is dropped as there). */
static int llc_delay(usmc_link *link, const uint8_t *buf, size_t len)
{
	usmc_lgr *lgr = link->lgr;

	if (lgr->delayed) {
		usmc_log(lgr->ctx, USMC_LOG_WARN,
			 "lgr %u: parallel LLC request dropped", lgr->id);
		return 0;
	}
	lgr->delayed = 1;
	lgr->delayed_link = link;
	lgr->delayed_len =
		len < sizeof(lgr->delayed_msg) ? len : sizeof(lgr->delayed_msg);
	memcpy(lgr->delayed_msg, buf, lgr->delayed_len);
	return 1;
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

/* One handler per message type and direction. */

/* A response that ends the local flow's request in flight
 * (smc_llc_rx_response); one that answers nothing we asked is dropped. */
static int llc_flow_answers(const usmc_lgr *lgr, const usmc_llc_msg *m)
{
	return lgr->llc_cur && lgr->llc_sent && !lgr->llc_cur->remote &&
	       lgr->llc_cur->type == m->hdr.type;
}

static void llc_rx_flow_resp(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (!llc_flow_answers(lgr, m))
		return;
	/* only a CONFIRM_RKEY can be refused (RKEY_NEG); a lost DELETE_LINK
	 * or DELETE_RKEY answer is not fatal either (the kernel goes on) */
	llc_flow_done(lgr,
		      m->hdr.type != SMC_LLC_CONFIRM_RKEY ||
			      !(m->hdr.flags & SMC_LLC_FLAG_RKEY_NEG),
		      ts);
}

/* Server: the client confirmed the first link, or the one ADD_LINK
 * added. */
static void llc_rx_confirm_link_resp(usmc_link *link, usmc_llc_msg *m,
				     usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (lgr->addl_step == USMC_ADDL_SRV_WAIT_CLINK) {
		addl_srv_clink_resp(link, m, ts);
		return;
	}
	if (!llc_flow_answers(lgr, m))
		return;
	/* smcr_serv_conf_first_link: the response was heard, but
	 * smc_llc_eval_conf_link fails: decline RMBE_EC at once (no wait
	 * for a Decline: the client thinks the link up) */
	if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC)) {
		usmc_conn *c = lgr->llc_cur->conn;

		usmc_log(lgr->ctx, USMC_LOG_WARN,
			 "lgr %u: CONFIRM_LINK response without "
			 "NO_RMBE_EYEC",
			 lgr->id);
		if (c)
			usmc_conn_handshake_failed(c, 0, SMC_CLC_DECL_RMBE_EC,
						   ts);
		llc_flow_done(lgr, 0, ts);
		return;
	}
	if (m->confirm_link.sender_qp_num != link->peer_qpn) {
		llc_flow_done(lgr, 0, ts);
		return;
	}
	link->state = USMC_LNK_ACTIVE;
	lgr->first_link_up = 1;
	link->last_rx = ts;
	link_up_log(link);
	llc_flow_done(lgr, 1, ts);
}

/* Client: the server's request for the first link (smc_llc_cli_conf_link);
 * the link goes RTS and ACTIVE, the response goes out, the first-contact
 * connection is established. One for a link ADD_LINK added is the add
 * flow's. */
static void llc_rx_confirm_link_req(usmc_link *link, usmc_llc_msg *m,
				    usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	uint32_t reason = SMC_CLC_DECL_ERR_RDYLNK;
	usmc_llc_msg r;
	usmc_conn *c;

	if (lgr->role == USMC_ROLE_CLIENT &&
	    lgr->addl_step == USMC_ADDL_CLI_WAIT_CLINK &&
	    link == lgr->addl_new) {
		addl_cli_clink(link, m, ts);
		return;
	}
	if (lgr->role != USMC_ROLE_CLIENT || lgr->first_link_up ||
	    link->state == USMC_LNK_ACTIVE)
		return; /* out of place: ignored */
	c = lgr_first_contact_conn(lgr);
	lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
	if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC)) {
		reason = SMC_CLC_DECL_RMBE_EC;
		goto fail;
	}
	if (m->confirm_link.sender_qp_num != link->peer_qpn ||
	    !m->confirm_link.link_num)
		goto fail;
	link->link_id = m->confirm_link.link_num;
	if (m->confirm_link.max_links)
		lgr->max_links = m->confirm_link.max_links;
	if (usmc_link_ready(link, 1))
		goto fail;
	link->state = USMC_LNK_ACTIVE;
	lgr->first_link_up = 1;
	link->last_rx = ts;
	llc_confirm_link_msg(link, SMC_LLC_FLAG_RESP, &r);
	if (usmc_llc_send_slot(link, &r, &link->clink_resp_slot))
		goto fail;
	link_up_log(link);
	if (c)
		usmc_conn_link_confirmed(c, 1, ts);
	usmc_llc_run(lgr, ts);
	return;
fail:
	if (c)
		usmc_conn_handshake_failed(c, 0, reason, ts);
}

/* The server's ADD_LINK request (client), or a client's suggestion of
 * one (server: it starts its own flow, as smc_llc_srv_add_link ignores
 * what the client proposed). */
static void llc_rx_add_link_req(usmc_link *link, usmc_llc_msg *m, int mtu_bad,
				usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (lgr->role != USMC_ROLE_CLIENT) {
		usmc_llc_want_link(lgr, -1, ts);
		return;
	}
	/* the first-contact connection waited for this (smc_llc_cli_add_link
	 * ends smcr_clnt_conf_first_link) */
	for (int i = 1; i <= USMC_CONNS_MAX; i++)
		if (lgr->conns[i])
			usmc_conn_add_link_seen(lgr->conns[i], ts);
	if (lgr->terminating)
		return;
	addl_cli_req(link, m, mtu_bad, ts);
}

static void llc_rx_add_link_resp(usmc_link *link, usmc_llc_msg *m,
				 usmc_tstamp ts)
{
	if (link->lgr->role == USMC_ROLE_SERVER)
		addl_srv_resp(link, m, ts);
}

/* v2 client's REQ_ADD_LINK: the server adds a link if it has room. */
static void llc_rx_req_add_link(usmc_link *link, usmc_llc_msg *m,
				usmc_tstamp ts)
{
	(void)m;
	if (link->lgr->role == USMC_ROLE_SERVER)
		usmc_llc_want_link(link->lgr, -1, ts);
}

/* Takes |dead| out of its group: the connections still on it have had
 * their chance to move (A connection still there cannot go on: aborted),
 * then its QP and buffers' registrations go (smcr_link_clear). */
static void link_clear(usmc_link *dead, usmc_tstamp ts)
{
	usmc_lgr *lgr = dead->lgr;
	unsigned int dev = dead->dev_idx;

	/* ending the ADD_LINK flow below may run a held request: it must not
	 * find this link again */
	dead->clearing = 1;
	dead->qp_rts = 0;
	if (lgr->addl_new == dead) {
		/* the link being added: the flow ends, and frees it */
		addl_fail(lgr, 0, ts);
		return;
	}
	if (lgr->addl_link == dead) {
		lgr->addl_link = NULL;
		addl_fail(lgr, 0, ts);
	}
	for (int i = 1; i <= USMC_CONNS_MAX; i++) {
		usmc_conn *c = lgr->conns[i];

		if (!c || c->link != dead)
			continue;
		usmc_llc_cancel_conn(lgr, c);
		if (c->mode == USMC_MODE_SMCR)
			usmc_close_abort_local(c, USMC_ERR_CONNABORTED, 0, ts);
		else if (c->mode == USMC_MODE_HANDSHAKE)
			usmc_conn_handshake_failed(c, 0,
						   SMC_CLC_DECL_ERR_RDYLNK, ts);
		if (lgr->conns[i] == c)
			usmc_lgr_del_conn(lgr, c, ts);
	}
	usmc_link_free(dead);
	usmc_lgr_unreg_dev(lgr, dev);
}

static usmc_link *other_usable_link(usmc_lgr *lgr, const usmc_link * not )
{
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		usmc_link *l = lgr->links[i];

		if (l && l != not &&l->state == USMC_LNK_ACTIVE &&
		    usmc_link_usable(l))
			return l;
	}
	return NULL;
}

void usmc_llc_link_gone(usmc_link *dead, uint32_t reason, usmc_tstamp ts)
{
	usmc_lgr *lgr = dead->lgr;
	usmc_link *to = other_usable_link(lgr, dead);
	uint8_t id = dead->link_id;

	if (lgr->terminating)
		return;
	if (!to) {
		usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED, 0, ts);
		return;
	}
	link_clear(dead, ts);
	/* what ran meanwhile (a held request) may have taken |to| too */
	if (lgr->terminating)
		return;
	to = other_usable_link(lgr, NULL);
	if (!to) {
		usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED, 0, ts);
		return;
	}
	if (lgr->role == USMC_ROLE_SERVER) {
		/* smc_llc_srv_delete_link_local: a local flow that waits for
		 * the client's answer, then redundancy again */
		usmc_llc_req *r = usmc_mem_calloc(lgr->ctx, 1, sizeof(*r));

		if (r) {
			r->type = SMC_LLC_DELETE_LINK;
			r->link_id = id;
			r->del_reason = reason;
			llc_q_add(lgr, r);
		}
		usmc_llc_run(lgr, ts);
		usmc_llc_want_link(lgr, -1, ts);
	} else {
		/* the client tells the server and goes on (smcr_link_down) */
		usmc_llc_msg m;

		usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK,
				  usmc_llc_version(lgr),
				  SMC_LLC_FLAG_DEL_LINK_ORDERLY);
		m.delete_link.link_num = id;
		m.delete_link.reason = reason;
		llc_send_queued(to, &m);
	}
}

/* The peer deletes one link (smc_llc_process_cli_delete_link,
 * smc_llc_process_srv_delete_link) or all of them. */
static void llc_rx_delete_link_req(usmc_link *link, usmc_llc_msg *m,
				   usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_link *dead, *to;

	if (m->hdr.flags & SMC_LLC_FLAG_DEL_LINK_ALL) {
		/* answered with ours, as the kernel's smc_lgr_cleanup does in
		 * either role: a peer that waits for it is let go at once */
		lgr->peer_ended = 1;
		usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED,
				   SMC_LLC_DEL_PROG_INIT_TERM, ts);
		return;
	}
	dead = link_by_id(lgr, m->delete_link.link_num);
	if (!dead) {
		m->delete_link.reason = SMC_LLC_DEL_NOLNK;
		llc_respond(link, m);
		return;
	}
	to = other_usable_link(lgr, dead);
	m->delete_link.reason = 0;
	if (!to) {
		/* our last link: answer, then nothing is left to fail over
		 * to (docs/core.md "Failover": reset, or TCP when no data
		 * moved); the QP stays a moment so the answer can leave */
		llc_respond(link, m);
		usmc_link_down_why(dead, USMC_LINK_DOWN_PEER_DELETED, ts);
		if (lgr->terminating)
			lgr->free_expiry = ts + USMC_TERM_GRACE;
		return;
	}
	/* one we failed over already (its grace runs) is only cleared */
	if (dead->gone_expiry == USMC_TSTAMP_NONE)
		usmc_log(lgr->ctx, USMC_LOG_INFO,
			 "lgr %u link %u down: peer deleted", lgr->id,
			 dead->link_id);
	llc_respond(to, m);
	dead->qp_rts = 0;
	dead->state = USMC_LNK_INACTIVE;
	/* its connections move to |to| first (smc_llc_process_cli_delete_link:
	 * smc_switch_conns) */
	if (dead->gone_expiry == USMC_TSTAMP_NONE)
		usmc_link_switch_conns(dead, ts);
	if (lgr->links[dead->link_idx] == dead)
		link_clear(dead, ts);
	if (lgr->role == USMC_ROLE_SERVER)
		usmc_llc_want_link(lgr, -1, ts);
}

/* The peer announces a new RMB: its rkey on this link and (rtoken[1..])
 * on others, by link id (smc_llc_rmt_conf_rkey). A link id this side
 * does not have, or named twice, is refused (RKEY_NEG) and nothing is
 * stored: the peer's connection then declines. */
static void llc_rx_confirm_rkey_req(usmc_link *link, usmc_llc_msg *m,
				    usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	const usmc_llc_confirm_rkey *ck = &m->confirm_rkey;
	uint8_t seen[USMC_LINKS_MAX] = {0};
	int ok = 1;

	(void)ts;
	seen[link->link_idx] = 1;
	for (unsigned int i = 1; i <= ck->num_rkeys; i++) {
		usmc_link *l = link_by_id(lgr, ck->rtoken[i].link_id);

		if (!l || seen[l->link_idx])
			ok = 0;
		else
			seen[l->link_idx] = 1;
	}
	if (ok &&
	    usmc_lgr_rtoken_add(lgr, link->link_idx, ck->rtoken[0].rmb_key,
				ck->rtoken[0].rmb_vaddr))
		ok = 0;
	for (unsigned int i = 1; ok && i <= ck->num_rkeys; i++)
		usmc_lgr_rtoken_set(
			lgr, link->link_idx, ck->rtoken[0].rmb_key,
			link_by_id(lgr, ck->rtoken[i].link_id)->link_idx,
			ck->rtoken[i].rmb_key, ck->rtoken[i].rmb_vaddr);
	if (!ok)
		usmc_log(lgr->ctx, USMC_LOG_WARN,
			 "lgr %u: CONFIRM_RKEY %08x names an unknown link, "
			 "refused",
			 lgr->id, ck->rtoken[0].rmb_key);
	m->hdr.flags = ok ? 0 : SMC_LLC_FLAG_RKEY_NEG;
	llc_respond(link, m);
}

/* The peer releases RMBs, named by their rkeys on this link
 * (smc_llc_rmt_delete_rkey); unknown ones are flagged in the answer (v1:
 * a bit each, v2: their number; a v2 answer carries no rkeys, as
 * Linux's). */
static void llc_rx_delete_rkey_req(usmc_link *link, usmc_llc_msg *m,
				   usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	uint8_t mask = 0, bad = 0;

	(void)ts;
	for (unsigned int i = 0; i < m->delete_rkey.num_rkeys; i++) {
		if (usmc_lgr_rtoken_del(lgr, link->link_idx,
					m->delete_rkey.rkey[i])) {
			mask |= (uint8_t)(1u << (SMC_LLC_DEL_RKEY_MAX - 1 - i));
			bad++;
		}
	}
	m->hdr.flags = mask ? SMC_LLC_FLAG_RKEY_NEG : 0;
	m->delete_rkey.err_mask = lgr->version == SMC_V2 ? bad : mask;
	if (lgr->version == SMC_V2)
		memset(m->delete_rkey.rkey, 0, sizeof(m->delete_rkey.rkey));
	llc_respond(link, m);
}

static void llc_rx_test_link_req(usmc_link *link, usmc_llc_msg *m,
				 usmc_tstamp ts)
{
	(void)ts;
	llc_respond(link, m);
}

static void llc_rx_test_link_resp(usmc_link *link, usmc_llc_msg *m,
				  usmc_tstamp ts)
{
	(void)m;
	(void)ts;
	link->testlink_expiry = USMC_TSTAMP_NONE;
}

static void llc_rx_add_link_cont_any(usmc_link *link, usmc_llc_msg *m,
				     usmc_tstamp ts)
{
	llc_rx_add_link_cont(link, m, ts);
}

typedef void (*llc_rx_fn)(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts);

static void llc_rx_add_link_req0(usmc_link *link, usmc_llc_msg *m,
				 usmc_tstamp ts)
{
	llc_rx_add_link_req(link, m, 0, ts);
}

/* By type (v1 numbering, as the codec gives it), as smc_llc_rx_handlers:
 * the handler for the peer's request and for a response to ours; NULL
 * ignores it. ADD_LINK_CONT goes to the ADD_LINK flow whatever its flag
 * (the kernel's client sets it, its server does not); CONFIRM_RKEY_CONT
 * is ignored, as Linux does (three links' rkeys fit one CONFIRM_RKEY). */
static const struct {
	uint8_t type;
	llc_rx_fn req, resp;
} llc_rx_handlers[] = {
	{SMC_LLC_CONFIRM_LINK, llc_rx_confirm_link_req,
	 llc_rx_confirm_link_resp},
	{SMC_LLC_ADD_LINK, llc_rx_add_link_req0, llc_rx_add_link_resp},
	{SMC_LLC_ADD_LINK_CONT, llc_rx_add_link_cont_any,
	 llc_rx_add_link_cont_any},
	{SMC_LLC_DELETE_LINK, llc_rx_delete_link_req, llc_rx_flow_resp},
	{SMC_LLC_REQ_ADD_LINK, llc_rx_req_add_link, NULL},
	{SMC_LLC_CONFIRM_RKEY, llc_rx_confirm_rkey_req, llc_rx_flow_resp},
	{SMC_LLC_DELETE_RKEY, llc_rx_delete_rkey_req, llc_rx_flow_resp},
	{SMC_LLC_TEST_LINK, llc_rx_test_link_req, llc_rx_test_link_resp},
};

/* A request that must wait for the local flow (net/smc runs ADD_LINK and
 * DELETE_LINK as flows of their own): the peer's ADD_LINK while ours
 * runs is our collision to win (the server's flow goes on; a client has
 * none of that type); a DELETE_LINK waits unless it is for the link the
 * flow adds. */
static int llc_must_wait(const usmc_link *link, const usmc_llc_msg *m)
{
	const usmc_lgr *lgr = link->lgr;

	if (m->hdr.flags & SMC_LLC_FLAG_RESP)
		return 0;
	/* a client's answer to ADD_LINK needs a TX slot of its own (the v2
	 * one is long): wait for one rather than fail */
	if (m->hdr.type == SMC_LLC_ADD_LINK && lgr->role == USMC_ROLE_CLIENT &&
	    (link->slots_used >= link->nslots || link->nllc_pend))
		return 1;
	if (!lgr->llc_cur)
		return 0;
	if (m->hdr.type == SMC_LLC_ADD_LINK)
		return lgr->role == USMC_ROLE_CLIENT;
	if (m->hdr.type == SMC_LLC_DELETE_LINK &&
	    !(m->hdr.flags & SMC_LLC_FLAG_DEL_LINK_ALL))
		return !(lgr->addl_new &&
			 m->delete_link.link_num == lgr->addl_new->link_id);
	return 0;
}

/* While our DELETE_LINK ALL waits for the peer's (usmc_lgr_terminate):
 * the peer's DELETE_RKEY is answered, as a kernel holds its LLC flow, and
 * with it the DELETE_LINK ALL we wait for, up to 2 s for the answer; the
 * peer's DELETE_LINK ends the wait. Nothing else is taken. */
static void llc_rx_ending(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (m->hdr.type == SMC_LLC_DELETE_LINK) {
		lgr->term_link = NULL;
		lgr->free_expiry =
			usmc_tmin(lgr->free_expiry, ts + USMC_TERM_GRACE);
	} else if (m->hdr.type == SMC_LLC_DELETE_RKEY &&
		   !(m->hdr.flags & SMC_LLC_FLAG_RESP)) {
		llc_rx_delete_rkey_req(link, m, ts);
	}
}

void usmc_llc_rx(usmc_link *link, const uint8_t *buf, size_t len,
		 usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_llc_msg m;
	usmc_ssize n = usmc_llc_decode(&m, buf, len);
	int mtu_bad = 0;

	if (n == USMC_ERR_BAD_VALUE && len >= SMC_LLC_MSG_LEN &&
	    (buf[0] & 0x0f) == SMC_LLC_ADD_LINK && !(buf[3] & 0x80)) {
		/* an ADD_LINK request with an MTU out of range: rejected
		 * like any other we cannot take, not dropped */
		uint8_t tmp[USMC_WR_BUF_V2_SIZE];
		size_t k = len < sizeof(tmp) ? len : sizeof(tmp);

		memcpy(tmp, buf, k);
		tmp[32] &= 0xf0;
		n = usmc_llc_decode(&m, tmp, k);
		mtu_bad = 1;
	}
	/* a link group we end takes only what llc_rx_ending names, and
	 * drops the rest, malformed or not, without a word */
	if (lgr->terminating) {
		if (n >= 0 && !mtu_bad &&
		    m.hdr.version == usmc_llc_version(lgr))
			llc_rx_ending(link, &m, ts);
		return;
	}
	if (n < 0) {
		if (n == USMC_ERR_BAD_TYPE)
			llc_protocol_violation(link, "unknown type", ts);
		else
			usmc_log(lgr->ctx, USMC_LOG_WARN,
				 "lgr %08x: bad LLC message dropped: %s",
				 lgr->id, usmc_strerror((int)n));
		return;
	}
	if (m.hdr.version != usmc_llc_version(lgr)) {
		llc_protocol_violation(link, "LLC version", ts);
		return;
	}
	if (llc_must_wait(link, &m)) {
		llc_delay(link, buf, len);
		return;
	}
	if (mtu_bad) {
		llc_rx_add_link_req(link, &m, 1, ts);
		return;
	}
	for (size_t i = 0;
	     i < sizeof(llc_rx_handlers) / sizeof(llc_rx_handlers[0]); i++) {
		llc_rx_fn fn;

		if (llc_rx_handlers[i].type != m.hdr.type)
			continue;
		fn = m.hdr.flags & SMC_LLC_FLAG_RESP ? llc_rx_handlers[i].resp
						     : llc_rx_handlers[i].req;
		if (fn)
			fn(link, &m, ts);
		/* a request of the peer's delays an exit's end of the lgr
		 * (it may have more to ask) */
		if (!(m.hdr.flags & SMC_LLC_FLAG_RESP) && !lgr->terminating &&
		    lgr->free_expiry != USMC_TSTAMP_NONE)
			usmc_lgr_end_if_idle(lgr, ts);
		return;
	}
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

/* LLC response, CONFIRM_LINK wait and TEST_LINK timers. */
usmc_tstamp usmc_llc_expiry(const usmc_lgr *lgr)
{
	usmc_tstamp t = usmc_tmin(lgr->llc_expiry, lgr->confirm_link_expiry);

	for (int i = 0; i < USMC_LINKS_MAX; i++)
		if (lgr->links[i])
			t = usmc_tmin(t, link_expiry(lgr->links[i]));
	return t;
}

void usmc_llc_handle_expiry(usmc_lgr *lgr, usmc_tstamp ts)
{
	if (lgr->confirm_link_expiry <= ts) {
		/* client: no CONFIRM_LINK request from the server */
		usmc_conn *c = lgr_first_contact_conn(lgr);

		lgr->confirm_link_expiry = USMC_TSTAMP_NONE;
		if (c)
			usmc_conn_wait_decline(c, SMC_CLC_DECL_TIMEOUT_CL, ts);
		else
			usmc_lgr_terminate(lgr, USMC_ERR_TIMEOUT, 0, ts);
		return;
	}
	if (lgr->llc_expiry <= ts) {
		usmc_log(lgr->ctx, USMC_LOG_WARN,
			 "lgr %08x: LLC %s response timed out", lgr->id,
			 lgr->llc_cur ? usmc_llc_type_name(lgr->llc_cur->type)
				      : "?");
		if (lgr->llc_cur && lgr->llc_cur->type == SMC_LLC_ADD_LINK)
			addl_fail(lgr,
				  lgr->addl_step != USMC_ADDL_SRV_WAIT_RESP,
				  ts);
		else
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
			usmc_link_down_why(link, USMC_LINK_DOWN_TEST_LINK, ts);
			return;
		}
		usmc_llc_msg_init(&m, SMC_LLC_TEST_LINK, usmc_llc_version(lgr),
				  0);
		memcpy(m.test_link.user_data, &lgr->id, sizeof(lgr->id));
		llc_send_queued(link, &m);
		link->testlink_expiry = ts + lgr->ctx->s.testlink_wait;
	}
}
