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

static int llc_build(usmc_lgr *lgr, usmc_link *link, const usmc_llc_req *r,
		     usmc_llc_msg *m)
{
	usmc_llc_msg_init(m, r->type, usmc_llc_version(lgr), 0);
	switch (r->type) {
	case SMC_LLC_CONFIRM_LINK:
		llc_confirm_link_msg(link, 0, m);
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

void usmc_llc_run(usmc_lgr *lgr, usmc_tstamp ts)
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
	link = usmc_lgr_first_link(lgr);
	if (!link)
		return; /* retried when the link becomes usable */
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
		if (ok)
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
	return lgr->llc_cur && lgr->llc_sent &&
	       lgr->llc_cur->type == m->hdr.type;
}

static void llc_rx_flow_resp(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (!llc_flow_answers(lgr, m))
		return;
	/* only a CONFIRM_RKEY can be refused (RKEY_NEG); a lost ADD_LINK or
	 * DELETE_RKEY answer is not fatal either (the kernel goes on) */
	llc_flow_done(lgr,
		      m->hdr.type != SMC_LLC_CONFIRM_RKEY ||
			      !(m->hdr.flags & SMC_LLC_FLAG_RKEY_NEG),
		      ts);
}

/* Server: the client confirmed the first link. */
static void llc_rx_confirm_link_resp(usmc_link *link, usmc_llc_msg *m,
				     usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (!llc_flow_answers(lgr, m))
		return;
	if (!(m->hdr.flags & SMC_LLC_FLAG_NO_RMBE_EYEC) ||
	    m->confirm_link.sender_qp_num != link->peer_qpn) {
		llc_flow_done(lgr, 0, ts);
		return;
	}
	link->state = USMC_LNK_ACTIVE;
	lgr->first_link_up = 1;
	link->last_rx = ts;
	llc_flow_done(lgr, 1, ts);
}

/* Client: the server's request for the first link (smc_llc_cli_conf_link);
 * the link goes RTS and ACTIVE, the response goes out, the first-contact
 * connection is established. */
static void llc_rx_confirm_link_req(usmc_link *link, usmc_llc_msg *m,
				    usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	uint32_t reason = SMC_CLC_DECL_ERR_RDYLNK;
	usmc_llc_msg r;
	usmc_conn *c;

	if (lgr->role != USMC_ROLE_CLIENT || lgr->first_link_up ||
	    link->state == USMC_LNK_ACTIVE)
		return; /* later links are not supported: ignore */
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
	if (c)
		usmc_conn_link_confirmed(c, 1, ts);
	usmc_llc_run(lgr, ts);
	return;
fail:
	if (c)
		usmc_conn_handshake_failed(c, 0, reason, ts);
}

/* One device, no alternate path: a client rejects (as Linux). */
static void llc_rx_add_link_req(usmc_link *link, usmc_llc_msg *m,
				usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (lgr->role != USMC_ROLE_CLIENT)
		return;
	/* the reject echoes the request, as smc_llc_cli_add_link does; v2
	 * has no room for the reason */
	m->hdr.flags = SMC_LLC_FLAG_ADD_LNK_REJ;
	m->add_link.has_v2_ext = 0;
	m->add_link.num_rkeys = 0;
	if (lgr->version == SMC_V1)
		m->hdr.add_link_rej_rsn = SMC_LLC_REJ_RSN_NO_ALT_PATH;
	llc_respond(link, m);
	/* the first-contact connection waited for this (smc_llc_cli_add_link
	 * ends smcr_clnt_conf_first_link) */
	for (int i = 1; i <= USMC_CONNS_MAX; i++)
		if (lgr->conns[i])
			usmc_conn_add_link_seen(lgr->conns[i], ts);
}

static void llc_rx_delete_link_req(usmc_link *link, usmc_llc_msg *m,
				   usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;

	if (m->hdr.flags & SMC_LLC_FLAG_DEL_LINK_ALL) {
		usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED, 0, ts);
		return;
	}
	if (m->delete_link.link_num != link->link_id) {
		usmc_link *del = NULL;

		for (int i = 0; i < USMC_LINKS_MAX; i++)
			if (lgr->links[i] &&
			    lgr->links[i]->link_id == m->delete_link.link_num)
				del = lgr->links[i];
		m->delete_link.reason = del ? 0 : SMC_LLC_DEL_NOLNK;
		llc_respond(link, m);
		/* another link of ours: its connections move here first
		 * (smc_llc_process_cli_delete_link: smc_switch_conns) */
		if (del)
			usmc_link_down_why(del, USMC_LINK_DOWN_PEER_DELETED,
					   ts);
		return;
	}
	/* the link it came on: answer; with no other link nothing is
	 * left to fail over to, and the QP stays a moment so the answer
	 * can leave */
	m->delete_link.reason = 0;
	llc_respond(link, m);
	usmc_link_down_why(link, USMC_LINK_DOWN_PEER_DELETED, ts);
	if (lgr->terminating)
		lgr->free_expiry = ts + USMC_TERM_GRACE;
}

/* rkeys of the peer's RMB: the CLC already told us the one for this
 * (only) link, so just confirm. */
static void llc_rx_confirm_rkey_req(usmc_link *link, usmc_llc_msg *m,
				    usmc_tstamp ts)
{
	(void)ts;
	m->hdr.flags = 0;
	llc_respond(link, m);
}

/* We hold no rtokens beyond the CLC's, so none is unknown; a v2 response
 * carries no rkeys (as Linux sends it). */
static void llc_rx_delete_rkey_req(usmc_link *link, usmc_llc_msg *m,
				   usmc_tstamp ts)
{
	(void)ts;
	m->hdr.flags = 0;
	m->delete_rkey.err_mask = 0;
	if (link->lgr->version == SMC_V2)
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

typedef void (*llc_rx_fn)(usmc_link *link, usmc_llc_msg *m, usmc_tstamp ts);

/* By type (v1 numbering, as the codec gives it), as smc_llc_rx_handlers:
 * the handler for the peer's request and for a response to ours; NULL
 * ignores it. ADD_LINK_CONT, CONFIRM_RKEY_CONT and REQ_ADD_LINK serve
 * second links only, which this core never accepts: they are ignored, as
 * Linux ignores CONFIRM_RKEY_CONT. */
static const struct {
	uint8_t type;
	llc_rx_fn req, resp;
} llc_rx_handlers[] = {
	{SMC_LLC_CONFIRM_LINK, llc_rx_confirm_link_req,
	 llc_rx_confirm_link_resp},
	{SMC_LLC_ADD_LINK, llc_rx_add_link_req, llc_rx_flow_resp},
	{SMC_LLC_DELETE_LINK, llc_rx_delete_link_req, NULL},
	{SMC_LLC_CONFIRM_RKEY, llc_rx_confirm_rkey_req, llc_rx_flow_resp},
	{SMC_LLC_DELETE_RKEY, llc_rx_delete_rkey_req, llc_rx_flow_resp},
	{SMC_LLC_TEST_LINK, llc_rx_test_link_req, llc_rx_test_link_resp},
};

void usmc_llc_rx(usmc_link *link, const uint8_t *buf, size_t len,
		 usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_llc_msg m;
	usmc_ssize n = usmc_llc_decode(&m, buf, len);

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
		link->testlink_expiry = ts + lgr->ctx->s.llc_timeout;
	}
}
