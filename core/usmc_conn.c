/* SPDX-License-Identifier: MIT */
/*
 * Connections and the CLC handshake FSM (net/smc af_smc.c: smc_connect_*,
 * smc_listen_*): Proposal / Accept / Confirm / Decline, link group choice
 * (first contact or reuse), fallback, and the connection getters.
 */
#include "usmc_conv.h"
#include "usmc_core_int.h"

void usmc_conn_event_raise(usmc_conn *conn, usmc_conn_event ev)
{
	if (conn->deleting)
		return;
	usmc_conn_call_event(conn, ev);
}

int usmc_conn_clc_queue(usmc_conn *conn, usmc_clc_msg *m)
{
	usmc_ssize n =
		usmc_clc_encode(m, conn->clc_out + conn->clc_out_len,
				sizeof(conn->clc_out) - conn->clc_out_len);

	if (n < 0) {
		usmc_log(conn->ctx, USMC_LOG_ERR, "CLC encode failed: %s",
			 usmc_strerror((int)n));
		return (int)n;
	}
	conn->clc_out_len += (size_t)n;
	conn->clc_sent_any = 1;
	usmc_conn_event_raise(conn, USMC_EV_CLC_SEND);
	return 0;
}

static int clc_send_decline(usmc_conn *conn, uint32_t code)
{
	usmc_clc_msg m;
	uint8_t version = conn->version == SMC_V2 ? SMC_V2 : SMC_V1;

	/* before any Accept: the version this side proposed */
	if (!conn->version && (conn->ctx->s.smc_versions & USMC_VERSION_V2))
		version = SMC_V2;
	usmc_clc_decline_init(&m, code, version, conn->ctx->s.system_id);
	return usmc_conn_clc_queue(conn, &m);
}

/* Gives back the connection's link group resources. A link group that
 * this connection created and that never came up (or whose client never
 * saw the server's ADD_LINK) goes with it, as smc_lgr_cleanup_early. */
void usmc_conn_release_smc(usmc_conn *conn, usmc_tstamp ts)
{
	usmc_lgr *lgr = conn->lgr;
	int created;

	if (!lgr)
		return;
	usmc_llc_cancel_conn(lgr, conn);
	created = conn->first_contact &&
		  (!lgr->first_link_up || conn->mode == USMC_MODE_HANDSHAKE);
	if (conn->mode == USMC_MODE_SMCR)
		usmc_tx_flush_close(conn);
	usmc_close_timer(conn, USMC_TSTAMP_NONE);
	usmc_lgr_del_conn(lgr, conn, ts);
	if (created)
		usmc_lgr_terminate(lgr, USMC_ERR_CLOSED, 0, ts);
}

/* The handshake failed. A positive |reason| falls back to TCP (with a
 * Decline unless the peer declined), otherwise the connection fails with
 * |err|, as the kernel treats negative reason codes. */
void usmc_conn_handshake_failed(usmc_conn *conn, int err, uint32_t reason,
				usmc_tstamp ts)
{
	if (conn->mode != USMC_MODE_HANDSHAKE ||
	    conn->clc_state == USMC_CLC_DONE)
		return;
	usmc_conn_clc_done(conn);
	usmc_conn_release_smc(conn, ts);
	if (reason) {
		usmc_log(conn->ctx, USMC_LOG_INFO, "fallback: %s (%08x)",
			 usmc_clc_decl_name(reason), reason);
		conn->mode = USMC_MODE_FALLBACK;
		conn->fallback_reason = reason;
		if (reason != SMC_CLC_DECL_PEERDECL &&
		    reason != SMC_CLC_DECL_PEERNOSMC)
			clc_send_decline(conn, reason);
		usmc_conn_event_raise(conn, USMC_EV_FALLBACK);
		return;
	}
	usmc_log(conn->ctx, USMC_LOG_INFO, "handshake failed: %s",
		 usmc_strerror(err));
	conn->err = err ? err : USMC_ERR_PROTO;
	conn->state = SMC_CLOSED;
	usmc_conn_event_raise(conn, USMC_EV_ERROR);
}

void usmc_conn_clc_done(usmc_conn *conn)
{
	if (conn->clc_state != USMC_CLC_DONE && conn->ctx->nhandshake)
		conn->ctx->nhandshake--;
	conn->clc_state = USMC_CLC_DONE;
	conn->clc_expiry = USMC_TSTAMP_NONE;
}

void usmc_conn_established(usmc_conn *conn, usmc_tstamp ts)
{
	usmc_conn_clc_done(conn);
	conn->mode = USMC_MODE_SMCR;
	conn->state = SMC_ACTIVE;
	conn->rkey_announced = !conn->smcd;
	if (conn->smcd) {
		usmc_log(conn->ctx, USMC_LOG_DEBUG,
			 "conn %08x established on SMC-D lgr %08x", conn->token,
			 conn->lgr->id);
	} else {
		/* the Accept/Confirm named the RMB on this link (the peer's
		 * smc_rmb_rtoken_handling) */
		if (conn->rmb && conn->link)
			usmc_lgr_buf_known(conn->lgr, conn->rmb, conn->link);
		usmc_log(conn->ctx, USMC_LOG_DEBUG,
			 "conn %08x established on lgr %08x link %u (v%d)",
			 conn->token, conn->lgr->id, conn->link->link_id,
			 conn->version);
	}
	usmc_conn_event_raise(conn, USMC_EV_ESTABLISHED);
	/* a server may get the client's first CDCs before its Confirm */
	if (conn->rx_prod != conn->rx_cons)
		usmc_conn_event_raise(conn, USMC_EV_READABLE);
	if (conn->peer_conn_flags && conn->lgr)
		usmc_close_peer_flags(conn, conn->peer_conn_flags, ts);
	if (conn->cons_upd_pending && conn->lgr)
		usmc_tx_push(conn);
}

/* ---- message builders ---- */

static void build_proposal(usmc_conn *conn, usmc_clc_msg *m)
{
	const usmc_settings *s = &conn->ctx->s;
	usmc_clc_proposal *p = &m->u.prop;
	int v1 = !!(s->smc_versions & USMC_VERSION_V1);
	int v2 = !!(s->smc_versions & USMC_VERSION_V2);
	uint32_t mask =
		conn->params.ipv4.prefix_len >= 32
			? 0xffffffffu
			: ~(0xffffffffu >> conn->params.ipv4.prefix_len);

	/* SMC-R on the connection's device if it is an RNIC; SMC-Dv2 too
	 * when the ctx has an ISM device (smc_find_ism_v2_device_clnt) */
	int r = usmc_conn_dev(conn)->kind == USMC_DEV_ROCE;
	int d = v2 && usmc_smcd_dev(conn->ctx) >= 0;

	v1 = v1 && r;
	memset(m, 0, sizeof(*m));
	m->hdr.type = SMC_CLC_PROPOSAL;
	m->hdr.version = v2 ? SMC_V2 : SMC_V1;
	m->hdr.typev1 = v1 ? SMC_TYPE_R : SMC_TYPE_N;
	m->hdr.typev2 = v2 && r && d ? SMC_TYPE_B
			: v2 && r    ? SMC_TYPE_R
			: d	     ? SMC_TYPE_D
				     : SMC_TYPE_N;
	memcpy(p->peer_id, s->system_id, 8);
	if (r) {
		memcpy(p->gid, usmc_conn_dev(conn)->gid, 16);
		memcpy(p->mac, usmc_conn_dev(conn)->mac, 6);
	}
	/* SMC-Dv2 only: no IP area, offset 0 as Linux writes it */
	p->smcd_area = r;
	conn->offered_r = r;
	if (v1) {
		p->ipv4_subnet = conn->params.ipv4.addr & mask;
		p->ipv4_prefix_len = conn->params.ipv4.prefix_len;
	}
	if (v2) {
		/* smc_clc_send_proposal: every configured UEID */
		p->eid_cnt = (uint8_t)s->ueid_cnt;
		for (unsigned int i = 0; i < s->ueid_cnt; i++)
			memcpy(p->user_eids[i], s->ueid[i], SMC_MAX_EID_LEN);
		p->release = SMC_RELEASE;
		if (r)
			memcpy(p->roce_gid, usmc_conn_dev(conn)->gid, 16);
		p->max_conns = SMC_CONN_PER_LGR_MAX;
		p->max_links = SMC_LINKS_ADD_LNK_MAX;
		if (d)
			usmc_smcd_propose(conn, p);
	}
}

static void build_accept_confirm(usmc_conn *conn, usmc_clc_msg *m, uint8_t type)
{
	const usmc_settings *s = &conn->ctx->s;
	usmc_clc_accept_confirm *ac = &m->u.ac;
	usmc_lgr *lgr = conn->lgr;

	memset(m, 0, sizeof(*m));
	m->hdr.type = type;
	m->hdr.version = (uint8_t)conn->version;
	m->hdr.typev1 = SMC_TYPE_R;
	m->hdr.typev2 = conn->first_contact ? SMC_FIRST_CONTACT_MASK : 0;
	memcpy(ac->peer_id, s->system_id, 8);
	memcpy(ac->gid, usmc_link_dev(conn->link)->gid, 16);
	memcpy(ac->mac, usmc_link_dev(conn->link)->mac, 6);
	ac->qpn = conn->link->qp_num;
	ac->rmb_rkey = usmc_buf_mr(conn->rmb, conn->link->dev_idx)->rkey;
	ac->rmbe_idx = 1;
	ac->rmbe_alert_token = conn->token;
	ac->rmbe_size =
		usmc_clc_compress_bufsize(conn->rmb->size, SMCR_RMBE_SIZES);
	ac->qp_mtu = type == SMC_CLC_ACCEPT
			     ? usmc_link_dev(conn->link)->active_mtu
			     : conn->link->path_mtu;
	ac->rmb_dma_addr = usmc_buf_mr(conn->rmb, conn->link->dev_idx)->iova;
	ac->psn = conn->link->psn;
	if (conn->version != SMC_V2)
		return;
	memcpy(ac->eid, conn->eid, SMC_MAX_EID_LEN);
	if (!conn->first_contact)
		return;
	ac->fce_v2x = true;
	ac->v2_direct = true;
	ac->os_type = SMC_CLC_OS_LINUX;
	ac->release = conn->release;
	memcpy(ac->hostname, s->hostname, SMC_MAX_HOSTNAME_LEN);
	ac->max_conns = lgr->max_conns;
	ac->max_links = lgr->max_links;
	if (type == SMC_CLC_CONFIRM) {
		ac->gid_cnt = 1;
		memcpy(ac->gids[0], usmc_link_dev(conn->link)->gid, 16);
	}
}

/* Allocates the connection's RMB and sndbuf from the lgr pool and gives
 * it a token. */
static uint32_t conn_alloc_bufs(usmc_conn *conn, usmc_lgr *lgr)
{
	const usmc_settings *s = &conn->ctx->s;
	int rv = usmc_lgr_add_conn(lgr, conn);

	if (rv)
		return rv == USMC_ERR_LIMIT ? SMC_CLC_DECL_INTERR
					    : SMC_CLC_DECL_MEM;
	if (usmc_lgr_get_buf(lgr, conn->params.dev_idx, 1, s->rmb_size,
			     &conn->rmb) ||
	    usmc_lgr_get_buf(lgr, conn->params.dev_idx, 0, s->sndbuf_size,
			     &conn->sndbuf))
		return SMC_CLC_DECL_MEM;
	return 0;
}

/* The peer's RMB as announced in its Accept/Confirm. */
static void conn_set_rtoken(usmc_conn *conn, const usmc_clc_accept_confirm *ac)
{
	conn->peer_rmb_size = usmc_clc_uncompress_bufsize(ac->rmbe_size);
	usmc_conn_set_peer_rmb(conn, ac->rmb_rkey,
			       ac->rmb_dma_addr +
				       (uint64_t)conn->peer_rmb_size *
					       (ac->rmbe_idx - 1));
	conn->peer_token = ac->rmbe_alert_token;
}

static uint8_t mtu_min(uint8_t a, uint8_t b)
{
	return a < b ? a : b;
}

/* A connection joining |lgr| registers its RMB with the peer
 * (CONFIRM_RKEY, RFC 7609 3.3.2) before its Accept or Confirm, unless the
 * RMB came from the pool already known to the peer on every link: then it
 * goes on at once. */
static void conn_confirm_rkey(usmc_conn *conn, usmc_lgr *lgr, usmc_tstamp ts)
{
	if (usmc_lgr_buf_peer_knows(lgr, conn->rmb, conn->link)) {
		usmc_conn_rkey_confirmed(conn, 1, ts);
		return;
	}
	conn->rkey_pending = 1;
	if (usmc_llc_queue(lgr, SMC_LLC_CONFIRM_RKEY, conn, conn->rmb, ts))
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_MEM, ts);
}

/* First contact: a new lgr with one link whose peer is |ac|'s sender. */
static uint32_t conn_first_contact(usmc_conn *conn, usmc_role role,
				   const uint8_t *peer_id, const uint8_t *gid,
				   const uint8_t *mac)
{
	usmc_lgr *lgr;
	usmc_link *link;
	uint32_t rc;

	conn->first_contact = 1;
	if (usmc_lgr_create(conn->ctx, role, conn->version, peer_id, &lgr))
		return SMC_CLC_DECL_MEM;
	lgr->release = conn->version == SMC_V2 ? conn->release : 0;
	if (usmc_link_create(lgr, conn->params.dev_idx, &link)) {
		usmc_lgr_free(lgr);
		return SMC_CLC_DECL_MEM;
	}
	if (role == USMC_ROLE_SERVER)
		link->link_id = lgr->next_link_id++;
	link->state = USMC_LNK_ACTIVATING;
	memcpy(link->peer_gid, gid, 16);
	memcpy(link->peer_mac, mac, 6);
	conn->link = link;
	rc = conn_alloc_bufs(conn, lgr);
	if (rc && !conn->lgr) {
		usmc_lgr_free(lgr);
		conn->link = NULL;
	}
	return rc;
}

/* ---- client ---- */

static void cli_rx_accept(usmc_conn *conn, const usmc_clc_msg *m,
			  usmc_tstamp ts)
{
	const usmc_clc_accept_confirm *ac = &m->u.ac;
	const usmc_settings *s = &conn->ctx->s;
	usmc_clc_msg out;
	uint32_t rc;

	if (m->hdr.typev1 == SMC_TYPE_D) {
		usmc_smcd_cli_accept(conn, m, ts);
		return;
	}
	if (m->hdr.typev1 != SMC_TYPE_R || !conn->offered_r ||
	    (m->hdr.version == SMC_V2 &&
	     !(s->smc_versions & USMC_VERSION_V2)) ||
	    (m->hdr.version == SMC_V1 &&
	     !(s->smc_versions & USMC_VERSION_V1))) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_MODEUNSUPP,
					   ts);
		return;
	}
	conn->version = m->hdr.version >= SMC_V2 ? SMC_V2 : SMC_V1;
	conn->first_contact = !!(m->hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	memcpy(conn->peer_system_id, ac->peer_id, 8);
	memcpy(conn->eid, ac->eid, SMC_MAX_EID_LEN);
	conn->release = SMC_RELEASE_0;
	if (conn->version == SMC_V2 && conn->first_contact) {
		conn->release = ac->release;
		if (ac->release > SMC_RELEASE) {
			usmc_conn_handshake_failed(conn, 0,
						   SMC_CLC_DECL_RELEASEERR, ts);
			return;
		}
		if (ac->fce_v2x && ac->release >= SMC_RELEASE_1) {
			if (ac->max_conns < SMC_CONN_PER_LGR_MIN) {
				usmc_conn_handshake_failed(
					conn, 0, SMC_CLC_DECL_MAXCONNERR, ts);
				return;
			}
			if (ac->max_links < SMC_LINKS_ADD_LNK_MIN ||
			    ac->max_links > SMC_LINKS_ADD_LNK_MAX) {
				usmc_conn_handshake_failed(
					conn, 0, SMC_CLC_DECL_MAXLINKERR, ts);
				return;
			}
		}
	}
	if (conn->first_contact) {
		usmc_link *link;

		rc = conn_first_contact(conn, USMC_ROLE_CLIENT, ac->peer_id,
					ac->gid, ac->mac);
		if (rc) {
			usmc_conn_handshake_failed(conn, 0, rc, ts);
			return;
		}
		link = conn->link;
		if (conn->version == SMC_V2 && ac->fce_v2x &&
		    conn->release >= SMC_RELEASE_1) {
			conn->lgr->max_conns = ac->max_conns;
			conn->lgr->max_links = ac->max_links;
		}
		link->peer_qpn = ac->qpn;
		link->peer_psn = ac->psn;
		link->path_mtu =
			mtu_min(usmc_link_dev(link)->active_mtu, ac->qp_mtu);
		conn_set_rtoken(conn, ac);
		if (usmc_link_ready(link, 0)) {
			usmc_conn_handshake_failed(conn, 0,
						   SMC_CLC_DECL_ERR_RDYLNK, ts);
			return;
		}
		build_accept_confirm(conn, &out, SMC_CLC_CONFIRM);
		if (usmc_conn_clc_queue(conn, &out)) {
			usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_INTERR,
						   ts);
			return;
		}
		/* wait for the server's CONFIRM_LINK request (4 s) */
		conn->clc_state = USMC_CLC_CLI_WAIT_CLINK;
		conn->clc_expiry = USMC_TSTAMP_NONE;
		conn->lgr->confirm_link_expiry = ts + USMC_LLC_WAIT_FIRST;
		return;
	}
	/* the server reused a link group: find ours (smc_conn_create) */
	{
		usmc_lgr *lgr =
			usmc_lgr_find(conn->ctx, USMC_ROLE_CLIENT,
				      conn->version, conn->params.dev_idx,
				      ac->peer_id, ac->gid, ac->mac, ac->qpn);

		if (!lgr) {
			usmc_conn_handshake_failed(conn, 0,
						   SMC_CLC_DECL_SYNCERR, ts);
			return;
		}
		for (int i = 0; i < USMC_LINKS_MAX; i++) {
			usmc_link *l = lgr->links[i];

			if (l && l->state == USMC_LNK_ACTIVE &&
			    l->dev_idx == conn->params.dev_idx &&
			    l->peer_qpn == ac->qpn)
				conn->link = l;
		}
		rc = conn_alloc_bufs(conn, lgr);
		if (rc) {
			usmc_conn_handshake_failed(conn, 0, rc, ts);
			return;
		}
		conn_set_rtoken(conn, ac);
		conn->clc_state = USMC_CLC_CLI_WAIT_RKEY;
		conn_confirm_rkey(conn, lgr, ts);
	}
}

/* ---- server ---- */

static void srv_rx_proposal(usmc_conn *conn, const usmc_clc_msg *m,
			    usmc_tstamp ts)
{
	const usmc_settings *s = &conn->ctx->s;
	const usmc_clc_proposal *p = &m->u.prop;
	const uint8_t(*ueids)[SMC_MAX_EID_LEN] =
		(const uint8_t(*)[SMC_MAX_EID_LEN])s->ueid;
	usmc_clc_local_prefix lp;
	usmc_clc_srv_caps caps;
	usmc_clc_srv_choice ch;
	const uint8_t *peer_gid;
	usmc_clc_msg out;
	usmc_lgr *lgr;
	uint32_t rc;

	memset(&lp, 0, sizeof(lp));
	usmc_put_be32(lp.addr, conn->params.ipv4.addr);
	lp.prefix_len = conn->params.ipv4.prefix_len;
	memset(&caps, 0, sizeof(caps));
	caps.smcr_v1 = !!(s->smc_versions & USMC_VERSION_V1);
	caps.smcr_v2 = !!(s->smc_versions & USMC_VERSION_V2);
	caps.prefix_match = usmc_clc_prefix_match(p, &lp, 1);
	caps.ueids = ueids;
	caps.ueid_cnt = s->ueid_cnt;
	caps.max_conns = SMC_CONN_PER_LGR_MAX;
	caps.max_links = SMC_LINKS_ADD_LNK_MAX;
	memset(&ch, 0, sizeof(ch));
	/* SMC-Dv2 first, as smc_listen_find_device */
	if (usmc_smcd_srv_proposal(conn, m, ts))
		return;
	/* an RNIC for SMC-R: the connection's device must be one */
	if (usmc_conn_dev(conn)->kind != USMC_DEV_ROCE)
		caps.smcr_v1 = caps.smcr_v2 = false;
	conn->version = m->hdr.version >= SMC_V2 ? SMC_V2 : SMC_V1;
	rc = usmc_clc_srv_classify(m, &caps, &ch);
	if (rc && conn->smcd_decl)
		rc = conn->smcd_decl; /* the first reason, as ini->rc */
	if (rc) {
		usmc_conn_handshake_failed(conn, 0, rc, ts);
		return;
	}
	conn->version = ch.version;
	conn->release = ch.release;
	memcpy(conn->eid, ch.eid, SMC_MAX_EID_LEN);
	memcpy(conn->peer_system_id, p->peer_id, 8);
	peer_gid = conn->version == SMC_V2 ? p->roce_gid : p->gid;
	memcpy(conn->peer_gid, peer_gid, 16);
	memcpy(conn->peer_mac, p->mac, 6);

	lgr = usmc_lgr_find(conn->ctx, USMC_ROLE_SERVER, conn->version,
			    conn->params.dev_idx, p->peer_id, peer_gid, p->mac,
			    0);
	/* reuse: a usable link on this connection's device (usmc_lgr_find
	 * only returns link groups that have one) */
	for (int i = 0; lgr && i < USMC_LINKS_MAX; i++)
		if (lgr->links[i] && lgr->links[i]->state == USMC_LNK_ACTIVE &&
		    lgr->links[i]->dev_idx == conn->params.dev_idx)
			conn->link = lgr->links[i];
	if (lgr && conn->link) {
		/* register the RMB with the peer (CONFIRM_RKEY), then Accept */
		conn->first_contact = 0;
		rc = conn_alloc_bufs(conn, lgr);
		if (rc) {
			usmc_conn_handshake_failed(conn, 0, rc, ts);
			return;
		}
		conn->clc_state = USMC_CLC_SRV_WAIT_RKEY;
		conn->clc_expiry = USMC_TSTAMP_NONE;
		conn_confirm_rkey(conn, lgr, ts);
		return;
	}
	rc = conn_first_contact(conn, USMC_ROLE_SERVER, p->peer_id, peer_gid,
				p->mac);
	if (rc) {
		usmc_conn_handshake_failed(conn, 0, rc, ts);
		return;
	}
	if (conn->version == SMC_V2 && conn->release >= SMC_RELEASE_1) {
		conn->lgr->max_conns = ch.max_conns;
		conn->lgr->max_links = ch.max_links;
	}
	build_accept_confirm(conn, &out, SMC_CLC_ACCEPT);
	if (usmc_conn_clc_queue(conn, &out)) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_INTERR, ts);
		return;
	}
	conn->clc_state = USMC_CLC_SRV_WAIT_CONFIRM;
	conn->clc_expiry = ts + s->clc_timeout;
}

static void srv_rx_confirm(usmc_conn *conn, const usmc_clc_msg *m,
			   usmc_tstamp ts)
{
	const usmc_clc_accept_confirm *ac = &m->u.ac;
	usmc_link *link = conn->link;
	uint32_t rc = 0;

	if (conn->smcd) {
		usmc_smcd_srv_confirm(conn, m, ts);
		return;
	}
	if (m->hdr.typev1 != SMC_TYPE_R)
		rc = SMC_CLC_DECL_MODEUNSUPP;
	else if ((m->hdr.version >= SMC_V2 ? SMC_V2 : SMC_V1) != conn->version)
		rc = SMC_CLC_DECL_VERSMISMAT;
	else if (conn->version == SMC_V2 && conn->first_contact &&
		 ac->release != conn->release)
		rc = SMC_CLC_DECL_RELEASEERR;
	if (rc) {
		usmc_conn_handshake_failed(conn, 0, rc, ts);
		return;
	}
	conn_set_rtoken(conn, ac);
	if (!conn->first_contact) {
		usmc_conn_established(conn, ts);
		return;
	}
	/* first contact: bring the QP up, then CONFIRM_LINK (§4.5) */
	link->peer_qpn = ac->qpn;
	link->peer_psn = ac->psn;
	memcpy(link->peer_gid, ac->gid, 16);
	memcpy(link->peer_mac, ac->mac, 6);
	link->path_mtu = mtu_min(usmc_link_dev(link)->active_mtu, ac->qp_mtu);
	if (usmc_link_ready(link, 0) || usmc_link_ready(link, 1)) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_ERR_RDYLNK,
					   ts);
		return;
	}
	conn->clc_state = USMC_CLC_SRV_WAIT_CLINK;
	conn->clc_expiry = USMC_TSTAMP_NONE;
	if (usmc_llc_queue(conn->lgr, SMC_LLC_CONFIRM_LINK, conn, NULL, ts))
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_MEM, ts);
}

/*
 * The first link's CONFIRM_LINK exchange failed (no request or no response
 * in time, or the link went down): as smcr_clnt_conf_first_link and
 * smcr_serv_conf_first_link, look CLC_WAIT_TIME_SHORT for the peer's
 * Decline before sending ours with |reason|. A peer that gave up first is
 * heard (and gets no Decline back), so the two never cross. The link
 * group goes now: a late CONFIRM_LINK finds nobody to answer it.
 */
void usmc_conn_wait_decline(usmc_conn *conn, uint32_t reason, usmc_tstamp ts)
{
	if (conn->mode != USMC_MODE_HANDSHAKE ||
	    conn->clc_state == USMC_CLC_DONE ||
	    conn->clc_state == USMC_CLC_WAIT_DECLINE)
		return;
	usmc_log(conn->ctx, USMC_LOG_INFO,
		 "first link failed (%s): waiting for the peer's Decline",
		 usmc_clc_decl_name(reason));
	conn->clc_state = USMC_CLC_WAIT_DECLINE;
	conn->decl_reason = reason;
	conn->clc_expiry = ts + CLC_WAIT_TIME_SHORT;
	usmc_conn_release_smc(conn, ts);
}

void usmc_conn_link_confirmed(usmc_conn *conn, int ok, usmc_tstamp ts)
{
	if (conn->mode != USMC_MODE_HANDSHAKE)
		return;
	if (!ok) {
		usmc_conn_wait_decline(conn, SMC_CLC_DECL_TIMEOUT_CL, ts);
		return;
	}
	/* Client: our CONFIRM_LINK response may never reach the server,
	 * which then declines at 3 s. As smcr_clnt_conf_first_link, wait
	 * SMC_LLC_WAIT_TIME for its ADD_LINK request (proof it got the
	 * response), then CLC_WAIT_TIME_SHORT for a Decline, before any
	 * data goes over the link. */
	if (conn->params.role == USMC_ROLE_CLIENT && conn->lgr &&
	    conn->lgr->max_links > 1) {
		conn->clc_state = USMC_CLC_CLI_WAIT_ADDLINK;
		conn->clc_expiry = ts + SMC_LLC_WAIT_TIME;
		return;
	}
	usmc_conn_established(conn, ts);
}

/* Client: the server's ADD_LINK request came (and was answered); the
 * server has the first link up, so the connection is. */
void usmc_conn_add_link_seen(usmc_conn *conn, usmc_tstamp ts)
{
	if (conn->mode == USMC_MODE_HANDSHAKE &&
	    (conn->clc_state == USMC_CLC_CLI_WAIT_ADDLINK ||
	     conn->clc_state == USMC_CLC_CLI_ADDLINK_DECL) &&
	    conn->lgr)
		usmc_conn_established(conn, ts);
}

void usmc_conn_rkey_confirmed(usmc_conn *conn, int ok, usmc_tstamp ts)
{
	usmc_clc_msg out;

	conn->rkey_pending = 0;
	if (conn->mode != USMC_MODE_HANDSHAKE)
		return;
	if (ok && conn->rmb && conn->lgr)
		usmc_lgr_buf_known(conn->lgr, conn->rmb, NULL);
	if (!ok) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_ERR_REGBUF,
					   ts);
		return;
	}
	if (conn->clc_state == USMC_CLC_CLI_WAIT_RKEY) {
		build_accept_confirm(conn, &out, SMC_CLC_CONFIRM);
		if (usmc_conn_clc_queue(conn, &out)) {
			usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_INTERR,
						   ts);
			return;
		}
		usmc_conn_established(conn, ts);
	} else if (conn->clc_state == USMC_CLC_SRV_WAIT_RKEY) {
		build_accept_confirm(conn, &out, SMC_CLC_ACCEPT);
		if (usmc_conn_clc_queue(conn, &out)) {
			usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_INTERR,
						   ts);
			return;
		}
		conn->clc_state = USMC_CLC_SRV_WAIT_CONFIRM;
		conn->clc_expiry = ts + conn->ctx->s.clc_timeout;
	}
}

/* ---- API ---- */

int usmc_conn_new(usmc_ctx *ctx, const usmc_conn_params *p, usmc_tstamp ts,
		  usmc_conn **pconn)
{
	usmc_conn *conn;
	usmc_clc_msg m;

	if (!ctx || !p || !pconn ||
	    (p->role != USMC_ROLE_CLIENT && p->role != USMC_ROLE_SERVER) ||
	    p->ipv4.prefix_len > 32 || p->dev_idx >= ctx->s.ndevices)
		return USMC_ERR_INVALID_ARGUMENT;
	ctx->now = ts;
	conn = usmc_mem_calloc(ctx, 1, sizeof(*conn));
	if (!conn)
		return USMC_ERR_NOMEM;
	conn->ctx = ctx;
	conn->params = *p;
	conn->mode = USMC_MODE_HANDSHAKE;
	conn->state = SMC_INIT;
	conn->clc_expiry = ts + ctx->s.clc_timeout;
	conn->close_expiry = USMC_TSTAMP_NONE;
	conn->rx_valid_expiry = USMC_TSTAMP_NONE;
	ctx->nhandshake++;
	conn->next = ctx->conns;
	if (ctx->conns)
		ctx->conns->prev = conn;
	ctx->conns = conn;
	*pconn = conn;
	if (p->role == USMC_ROLE_SERVER) {
		conn->clc_state = USMC_CLC_SRV_WAIT_PROPOSAL;
		return 0;
	}
	conn->clc_state = USMC_CLC_CLI_WAIT_ACCEPT;
	build_proposal(conn, &m);
	if (usmc_conn_clc_queue(conn, &m)) {
		usmc_conn_del(conn);
		*pconn = NULL;
		return USMC_ERR_INTERNAL;
	}
	return 0;
}

void usmc_conn_del(usmc_conn *conn)
{
	usmc_ctx *ctx;

	if (!conn)
		return;
	ctx = conn->ctx;
	conn->deleting = 1;
	if (conn->mode == USMC_MODE_SMCR && conn->state != SMC_CLOSED &&
	    !conn->freed_by_ctx)
		usmc_close_abort_local(conn, 0, 1, ctx->now);
	usmc_conn_release_smc(conn, ctx->now);
	usmc_conn_clc_done(conn);
	usmc_close_timer(conn, USMC_TSTAMP_NONE);
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		ctx->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	usmc_mem_free(ctx, conn);
}

int usmc_conn_clc_recv(usmc_conn *conn, const uint8_t *msg, size_t len,
		       usmc_tstamp ts)
{
	usmc_clc_msg m;
	usmc_ssize n;

	if (!conn || !msg)
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->mode != USMC_MODE_HANDSHAKE ||
	    conn->clc_state == USMC_CLC_DONE)
		return USMC_ERR_INVALID_STATE;
	conn->ctx->now = ts;
	conn->clc_recv_any = 1;
	n = usmc_clc_decode(msg, len, &m);
	if (n < 0) {
		/* smc_clc_wait_msg: an invalid message is EPROTO, not a
		 * decline; connect fails and the server drops the child */
		usmc_log(conn->ctx, USMC_LOG_WARN, "bad CLC message: %s",
			 usmc_strerror((int)n));
		usmc_conn_handshake_failed(conn, USMC_ERR_PROTO, 0, ts);
		return 0;
	}
	if (m.hdr.type == SMC_CLC_DECLINE) {
		usmc_lgr *lgr = conn->lgr;

		conn->peer_declined = 1;
		conn->peer_diagnosis = m.u.decl.peer_diagnosis;
		/* PEERDECL first: terminating the lgr with this connection
		 * still in the handshake would answer the Decline with one
		 * of ours (ERR_RDYLNK). The lgr outlives both calls: it is
		 * freed at a later expiry (usmc_lgr_terminate). */
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_PEERDECL, ts);
		/* out of sync: the peer lost our lgr, so drop it too */
		if ((m.hdr.typev2 & SMC_FIRST_CONTACT_MASK) && lgr)
			usmc_lgr_terminate(lgr, USMC_ERR_CONNABORTED, 0, ts);
		return 0;
	}
	switch (conn->clc_state) {
	case USMC_CLC_CLI_WAIT_ACCEPT:
		if (m.hdr.type == SMC_CLC_ACCEPT) {
			cli_rx_accept(conn, &m, ts);
			return 0;
		}
		break;
	case USMC_CLC_SRV_WAIT_PROPOSAL:
		if (m.hdr.type == SMC_CLC_PROPOSAL) {
			srv_rx_proposal(conn, &m, ts);
			return 0;
		}
		break;
	case USMC_CLC_SRV_WAIT_CONFIRM:
		if (m.hdr.type == SMC_CLC_CONFIRM) {
			srv_rx_confirm(conn, &m, ts);
			return 0;
		}
		break;
	default:
		break;
	}
	usmc_log(conn->ctx, USMC_LOG_WARN, "unexpected CLC type %u",
		 m.hdr.type);
	usmc_conn_handshake_failed(conn, USMC_ERR_PROTO, 0, ts);
	return 0;
}

int usmc_conn_clc_pending(usmc_conn *conn, const uint8_t **pdata, size_t *plen)
{
	*pdata = conn->clc_out + conn->clc_out_off;
	*plen = conn->clc_out_len - conn->clc_out_off;
	return 0;
}

void usmc_conn_clc_consume(usmc_conn *conn, size_t n)
{
	if (n > conn->clc_out_len - conn->clc_out_off)
		n = conn->clc_out_len - conn->clc_out_off;
	conn->clc_out_off += n;
	if (n)
		conn->clc_written = 1;
	if (conn->clc_out_off == conn->clc_out_len)
		conn->clc_out_off = conn->clc_out_len = 0;
}

int usmc_conn_fallback(usmc_conn *conn, uint32_t decline_code, usmc_tstamp ts)
{
	if (!conn || !decline_code)
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->mode != USMC_MODE_HANDSHAKE)
		return USMC_ERR_INVALID_STATE;
	/* A Proposal not yet written is taken back: a peer without SMC
	 * never sees a CLC byte, and a local reason goes out as the first
	 * CLC message (as smc_connect_decline_fallback does). */
	if (!conn->clc_written)
		conn->clc_out_len = conn->clc_out_off = 0;
	usmc_conn_handshake_failed(conn, 0, decline_code, ts);
	return 0;
}

usmc_tstamp usmc_conn_expiry(const usmc_conn *conn)
{
	if (conn->mode == USMC_MODE_HANDSHAKE)
		return conn->clc_expiry;
	if (conn->peer_ring)
		return usmc_tmin(conn->close_expiry, conn->ovf_expiry);
	return conn->close_expiry;
}

void usmc_conn_handle_expiry(usmc_conn *conn, usmc_tstamp ts)
{
	if (conn->mode == USMC_MODE_HANDSHAKE && conn->clc_expiry <= ts &&
	    conn->clc_state == USMC_CLC_WAIT_DECLINE) {
		/* no Decline from the peer within CLC_WAIT_TIME_SHORT: ours */
		usmc_conn_handshake_failed(conn, 0, conn->decl_reason, ts);
		return;
	}
	if (conn->mode == USMC_MODE_HANDSHAKE && conn->clc_expiry <= ts &&
	    conn->clc_state == USMC_CLC_CLI_WAIT_ADDLINK) {
		/* no ADD_LINK: look CLC_WAIT_TIME_SHORT for a Decline */
		usmc_log(conn->ctx, USMC_LOG_DEBUG,
			 "conn %08x: no ADD_LINK, looking for a Decline",
			 conn->token);
		conn->clc_state = USMC_CLC_CLI_ADDLINK_DECL;
		conn->clc_expiry = ts + CLC_WAIT_TIME_SHORT;
		return;
	}
	if (conn->mode == USMC_MODE_HANDSHAKE && conn->clc_expiry <= ts &&
	    conn->clc_state == USMC_CLC_CLI_ADDLINK_DECL) {
		/* no Decline: go on with one link (smcr_clnt_conf_first_link)
		 * if the server's RNIC acknowledged our CONFIRM_LINK response.
		 * Else (not acknowledged, or the link died: usmc_lgr_terminate
		 * leaves the window running) the server most likely never got
		 * it and declines at 3 s from sending its request, which can
		 * reach us a TCP delay and a timer's slack after our window
		 * ends: look one more CLC_WAIT_TIME_SHORT before a Decline of
		 * ours (Declines must not cross), never use the link. */
		if (conn->lgr && !conn->lgr->terminating && conn->link &&
		    conn->link->clink_resp_slot < 0) {
			usmc_conn_established(conn, ts);
		} else if (!conn->addlink_late) {
			conn->addlink_late = 1;
			conn->clc_expiry = ts + CLC_WAIT_TIME_SHORT;
		} else {
			usmc_conn_handshake_failed(conn, 0,
						   SMC_CLC_DECL_TIMEOUT_CL, ts);
		}
		return;
	}
	if (conn->mode == USMC_MODE_HANDSHAKE && conn->clc_expiry <= ts) {
		/* CLC_WAIT_TIME: a negative code, so connect() fails */
		usmc_conn_handshake_failed(conn, USMC_ERR_TIMEOUT, 0, ts);
		return;
	}
	if (conn->mode == USMC_MODE_SMCR && conn->peer_ring &&
	    conn->ovf_expiry <= ts)
		usmc_smcd_ovf_expired(conn, ts);
	if (conn->mode == USMC_MODE_SMCR && conn->close_expiry <= ts)
		usmc_close_stream_wait_expired(conn, ts);
}

void usmc_conn_set_user(usmc_conn *c, void *p)
{
	c->user = p;
}

void *usmc_conn_get_user(const usmc_conn *c)
{
	return c->user;
}

usmc_conn_mode usmc_conn_get_mode(const usmc_conn *conn)
{
	return conn->smcd && conn->mode == USMC_MODE_SMCR ? USMC_MODE_SMCD
							  : conn->mode;
}

int usmc_conn_eid_match(const usmc_conn *conn, const usmc_clc_proposal *p,
			uint8_t *eid)
{
	const usmc_settings *s = &conn->ctx->s;

	for (unsigned int i = 0; i < p->eid_cnt && i < SMC_CLC_MAX_UEID; i++)
		for (unsigned int j = 0; j < s->ueid_cnt && j < USMC_UEID_MAX;
		     j++)
			if (!memcmp(p->user_eids[i], s->ueid[j],
				    SMC_MAX_EID_LEN)) {
				memcpy(eid, p->user_eids[i], SMC_MAX_EID_LEN);
				return 1;
			}
	return 0;
}

uint32_t usmc_conn_fallback_reason(const usmc_conn *conn)
{
	return conn->fallback_reason;
}

uint32_t usmc_conn_peer_diagnosis(const usmc_conn *conn)
{
	return conn->peer_diagnosis;
}

int usmc_conn_state(const usmc_conn *conn)
{
	return conn->state;
}

int usmc_conn_error(const usmc_conn *conn)
{
	return conn->err;
}

static void curs_of(usmc_conn_curs *c, uint64_t n, uint32_t size)
{
	if (!size) {
		c->wrap = 0;
		c->count = 0;
		return;
	}
	c->wrap = (uint16_t)(n / size);
	c->count = (uint32_t)(n % size);
}

void usmc_conn_get_info(const usmc_conn *conn, usmc_conn_info *info)
{
	uint32_t rmb = conn->rmb ? conn->rmb->size : 0;
	uint32_t snd = conn->sndbuf ? conn->sndbuf->size : 0;

	memset(info, 0, sizeof(*info));
	info->mode = usmc_conn_get_mode(conn);
	info->role = conn->params.role;
	info->state = conn->state;
	info->smc_version = conn->version;
	info->fallback_reason = conn->fallback_reason;
	info->peer_diagnosis = conn->peer_diagnosis;
	if (conn->lgr)
		info->lgr_id = conn->lgr->id;
	if (conn->link) {
		info->link_id = conn->link->link_id;
		info->peer_qpn = conn->link->peer_qpn;
		memcpy(info->peer_gid, conn->link->peer_gid, 16);
	} else if (conn->smcd) {
		memcpy(info->peer_gid, conn->peer_dgid, 16);
	}
	info->tx_cdcs = conn->n_tx_cdcs;
	info->rx_cdcs = conn->n_rx_cdcs;
	info->tx_rdma_writes = conn->n_writes;
	info->failovers = conn->n_failovers;
	info->tx_buf_full = conn->n_buf_full;
	info->tx_peer_buf_full = conn->n_peer_full;
	info->tx_seq = conn->tx_seq;
	info->rx_seq = conn->rx_seq;
	info->tx_conn_flags = conn->close_flags_sent;
	info->rx_conn_flags = conn->peer_conn_flags;
	info->local_token = conn->token;
	info->peer_token = conn->peer_token;
	info->sndbuf_size = snd;
	info->rmb_size = rmb;
	info->peer_rmb_size = conn->peer_rmb_size;
	info->bytes_sent = conn->bytes_sent;
	info->bytes_received = conn->bytes_received;
	curs_of(&info->rx_prod, conn->rx_prod, rmb);
	curs_of(&info->rx_cons, conn->rx_cons, rmb);
	curs_of(&info->tx_prod, conn->tx_sent, conn->peer_rmb_size);
	curs_of(&info->tx_cons, conn->peer_cons, conn->peer_rmb_size);
	curs_of(&info->tx_prep, conn->tx_prep, snd);
	curs_of(&info->tx_sent, conn->tx_sent, snd);
	curs_of(&info->tx_fin, conn->tx_fin, snd);
}
