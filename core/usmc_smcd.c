/* SPDX-License-Identifier: MIT */
/*
 * SMC-D over an ISM device, in the shape of the kernel's loopback-ism
 * (net/smc af_smc.c smc_find_ism_v2_device_serv, smc_connect_ism,
 * smc_listen_ism_init; smc_cdc.c smcd_cdc_msg_send; smc_tx.c
 * smcd_tx_ism_write): the SMC-Dv2 offer and choice, the DMB per
 * connection, and a data path of ISM operations pulled by the caller
 * (usmc_ctx_next_ism_op) and DMB signals pushed in
 * (usmc_conn_on_dmb_signal). The cursors, the window and the close FSM
 * are SMC-R's (usmc_tx.c, usmc_rx.c, usmc_close.c).
 */
#include "usmc_conv.h"
#include "usmc_core_int.h"

/* the kernel's largest DMB (SMCD_DMBE_SIZES 6: 1 MiB) */
#define USMC_DMB_MAX (1u << (SMCD_DMBE_SIZES + 14))

static void ovf_timer(usmc_conn *c, usmc_tstamp when);

static uint16_t dev_chid(const usmc_device_info *d)
{
	return d->chid ? d->chid : SMC_LO_RESERVED_CHID;
}

int usmc_smcd_dev(const usmc_ctx *ctx)
{
	if (!(ctx->s.smc_versions & USMC_VERSION_V2) || !ctx->cb.register_dmb ||
	    !ctx->cb.unregister_dmb)
		return -1;
	for (unsigned int i = 0; i < ctx->s.ndevices; i++)
		if (ctx->s.devices[i].kind == USMC_DEV_ISM)
			return (int)i;
	return -1;
}

void usmc_smcd_propose(usmc_conn *conn, usmc_clc_proposal *p)
{
	const usmc_device_info *d;
	int dev = usmc_smcd_dev(conn->ctx);

	if (dev < 0)
		return;
	d = &conn->ctx->s.devices[dev];
	conn->offered_d = 1;
	conn->ism_dev = (unsigned int)dev;
	/* smc_clc_send_proposal: a virtual ISM device takes two entries,
	 * {gid, chid} and {gid_ext, chid}; the SMC-D area is v1's (empty) */
	p->ism_gid_cnt = 2;
	p->ism_gids[0].gid = usmc_get_be64(d->gid);
	p->ism_gids[0].chid = dev_chid(d);
	p->ism_gids[1].gid = usmc_get_be64(d->gid + 8);
	p->ism_gids[1].chid = dev_chid(d);
	p->feature_mask |= SMC_SPF_EMULATED_ISM_DEV;
}

/* ---- link groups and buffers ---- */

static usmc_lgr *smcd_lgr_find(usmc_ctx *ctx, usmc_role role, unsigned int dev,
			       const uint8_t *peer_dgid)
{
	for (usmc_lgr *lgr = ctx->lgrs; lgr; lgr = lgr->next)
		if (lgr->smcd && !lgr->terminating && !lgr->peer_gone &&
		    !lgr->end_when_idle && lgr->role == role &&
		    lgr->ism_dev == dev && lgr->nconns < lgr->max_conns &&
		    !memcmp(lgr->peer_dgid, peer_dgid, 16))
			return lgr;
	return NULL;
}

static uint32_t smcd_lgr_new(usmc_conn *conn, usmc_role role,
			     const uint8_t *peer_id, usmc_lgr **plgr)
{
	usmc_lgr *lgr;

	if (usmc_lgr_create(conn->ctx, role, SMC_V2, peer_id, &lgr))
		return SMC_CLC_DECL_MEM;
	lgr->smcd = 1;
	lgr->ism_dev = (uint8_t)conn->ism_dev;
	memcpy(lgr->peer_dgid, conn->peer_dgid, 16);
	lgr->release = conn->release;
	/* no link to confirm: usable at once */
	lgr->first_link_up = 1;
	conn->first_contact = 1;
	*plgr = lgr;
	return 0;
}

static void smcd_buf_free(usmc_ctx *ctx, usmc_buf **pb, usmc_dmb *dmb)
{
	usmc_buf *b = *pb;

	if (!b)
		return;
	if (dmb && dmb->addr) {
		ctx->cb.unregister_dmb(ctx->user, dmb);
		memset(dmb, 0, sizeof(*dmb));
	} else if (!dmb) {
		usmc_mem_buf_free(ctx, b->mr.addr, b->size);
	}
	usmc_mem_free(ctx, b);
	*pb = NULL;
}

/* May |conn|'s DMB serve the next connection of its link group? Only
 * after a clean close both ways: the peer said CONN_CLOSED (a peer
 * writes no CDC after it, so nothing of this connection lands in the DMB
 * once it is another's), nobody aborted, the peer's side still there. */
static int smcd_keepable(const usmc_conn *conn)
{
	const usmc_lgr *lgr = conn->lgr;

	return conn->ctx->cb.reuse_dmb && lgr && !lgr->terminating &&
	       !lgr->peer_gone && conn->dmb.addr && conn->rmb &&
	       conn->state == SMC_CLOSED && !conn->peer_dmb_gone &&
	       (conn->peer_conn_flags & USMC_CDC_PEER_CONN_CLOSED) &&
	       !((conn->peer_conn_flags | conn->close_flags_sent) &
		 USMC_CDC_PEER_CONN_ABORT);
}

/* smc_buf_unuse for SMC-D: the DMB goes back to the link group, which
 * hands it to its next connection (smcd_conn_setup). */
static void smcd_dmb_keep(usmc_conn *conn)
{
	usmc_ctx *ctx = conn->ctx;
	usmc_smcd_kept *k = usmc_mem_calloc(ctx, 1, sizeof(*k));

	if (!k) {
		smcd_buf_free(ctx, &conn->rmb, &conn->dmb);
		return;
	}
	k->dmb = conn->dmb;
	/* the peer wrote the ring up to its producer cursor (the owner
	 * writes none of its DMB); a ring it went round is dirty all over */
	k->dirty = conn->rx_prod < conn->rmb->size ? (size_t)conn->rx_prod
						   : conn->rmb->size;
	/* the sndbuf goes along, uncleared: it is this process's memory
	 * (the peer never sees it) and a connection sends only what its
	 * application wrote into it (the kernel's smc_buf_unuse zeroes it) */
	k->sndbuf = conn->sndbuf;
	conn->sndbuf = NULL;
	k->next = conn->lgr->kept_dmbs;
	conn->lgr->kept_dmbs = k;
	memset(&conn->dmb, 0, sizeof(conn->dmb));
	usmc_mem_free(ctx, conn->rmb);
	conn->rmb = NULL;
}

void usmc_smcd_lgr_free(usmc_lgr *lgr)
{
	usmc_ctx *ctx = lgr->ctx;

	while (lgr->kept_dmbs) {
		usmc_smcd_kept *k = lgr->kept_dmbs;

		lgr->kept_dmbs = k->next;
		ctx->cb.unregister_dmb(ctx->user, &k->dmb);
		smcd_buf_free(ctx, &k->sndbuf, NULL);
		usmc_mem_free(ctx, k);
	}
}

/* A DMB the link group kept, of |len| bytes, for |conn|: as fresh as a
 * new one where it matters (smc_buf_unuse zeroes the whole buffer): the
 * header, whose cursors the next peer's first CDC must not meet, and the
 * ring bytes the last peer wrote. 0 when one was taken; its sndbuf, if
 * any, goes to |*sb|. */
static int smcd_dmb_reuse(usmc_conn *conn, usmc_lgr *lgr, size_t len,
			  usmc_buf **sb)
{
	usmc_ctx *ctx = conn->ctx;

	while (lgr->kept_dmbs) {
		usmc_smcd_kept *k = lgr->kept_dmbs;

		lgr->kept_dmbs = k->next;
		if (k->dmb.len == len) {
			memset(k->dmb.addr, 0, SMCD_CDC_MSG_LEN + k->dirty);
			if (!ctx->cb.reuse_dmb(ctx->user, conn, &k->dmb,
					       lgr->peer_dgid)) {
				conn->dmb = k->dmb;
				*sb = k->sndbuf;
				usmc_mem_free(ctx, k);
				lgr->n_dmb_reused++;
				return 0;
			}
		}
		ctx->cb.unregister_dmb(ctx->user, &k->dmb);
		smcd_buf_free(ctx, &k->sndbuf, NULL);
		usmc_mem_free(ctx, k);
	}
	return -1;
}

/* The connection joins |lgr| with a DMB (its RMB) and a sndbuf. */
static uint32_t smcd_conn_setup(usmc_conn *conn, usmc_lgr *lgr)
{
	usmc_ctx *ctx = conn->ctx;
	uint32_t want = ctx->s.dmb_size ? ctx->s.dmb_size : ctx->s.rmb_size;
	/* a size the CLC's dmbe_size can name (at most SMCD_DMBE_SIZES) */
	size_t len = usmc_clc_uncompress_bufsize(
		usmc_clc_compress_bufsize(want, SMCD_DMBE_SIZES));
	usmc_buf *rmb, *sb = NULL;
	int rv;

	rv = usmc_lgr_add_conn(lgr, conn);
	if (rv)
		return rv == USMC_ERR_LIMIT ? SMC_CLC_DECL_MAX_DMB
					    : SMC_CLC_DECL_MEM;
	rmb = usmc_mem_calloc(ctx, 1, sizeof(*rmb));
	if (!rmb)
		return SMC_CLC_DECL_MEM;
	memset(&conn->dmb, 0, sizeof(conn->dmb));
	rv = 0;
	if (smcd_dmb_reuse(conn, lgr, len, &sb))
		rv = ctx->cb.register_dmb(ctx->user, conn->ism_dev, len, conn,
					  &conn->dmb);
	if (!sb) {
		sb = usmc_mem_calloc(ctx, 1, sizeof(*sb));
		if (sb)
			sb->mr.addr =
				usmc_mem_buf_alloc(ctx, ctx->s.sndbuf_size);
		if (sb && !sb->mr.addr) {
			usmc_mem_free(ctx, sb);
			sb = NULL;
		}
		if (sb) {
			sb->size = ctx->s.sndbuf_size;
			sb->mr.length = sb->size;
			sb->smcd = 1;
		}
	}
	if (!sb) {
		if (!rv && conn->dmb.addr)
			ctx->cb.unregister_dmb(ctx->user, &conn->dmb);
		memset(&conn->dmb, 0, sizeof(conn->dmb));
		usmc_mem_free(ctx, rmb);
		return SMC_CLC_DECL_MEM;
	}
	/* the caller frees what the connection holds (usmc_smcd_release) */
	conn->sndbuf = sb;
	if (rv || !conn->dmb.addr || conn->dmb.len < len || !conn->dmb.token) {
		if (!rv && conn->dmb.addr)
			ctx->cb.unregister_dmb(ctx->user, &conn->dmb);
		memset(&conn->dmb, 0, sizeof(conn->dmb));
		usmc_mem_free(ctx, rmb);
		usmc_log(ctx, USMC_LOG_WARN, "register_dmb failed");
		return SMC_CLC_DECL_MEM;
	}
	/* the ring after the header (rx_off 32); the kernel's RMBE is the
	 * DMB less the header, so not a power of two */
	rmb->mr.addr = (uint8_t *)conn->dmb.addr + SMCD_CDC_MSG_LEN;
	rmb->size = (uint32_t)(len - SMCD_CDC_MSG_LEN);
	rmb->mr.length = rmb->size;
	rmb->is_rmb = 1;
	rmb->smcd = 1;
	conn->rmb = rmb;
	return 0;
}

static void ism_unlist(usmc_conn *conn)
{
	usmc_ctx *ctx = conn->ctx;
	usmc_conn *prev = NULL;

	if (!conn->ism_listed)
		return;
	for (usmc_conn *c = ctx->ism_head; c; prev = c, c = c->ism_next) {
		if (c != conn)
			continue;
		if (prev)
			prev->ism_next = c->ism_next;
		else
			ctx->ism_head = c->ism_next;
		if (ctx->ism_tail == c)
			ctx->ism_tail = prev;
		break;
	}
	conn->ism_next = NULL;
	conn->ism_listed = 0;
}

static void ism_list(usmc_conn *conn)
{
	usmc_ctx *ctx = conn->ctx;

	if (conn->ism_listed)
		return;
	conn->ism_listed = 1;
	conn->ism_next = NULL;
	if (ctx->ism_tail)
		ctx->ism_tail->ism_next = conn;
	else
		ctx->ism_head = conn;
	ctx->ism_tail = conn;
}

void usmc_smcd_release(usmc_conn *conn)
{
	if (conn->ism_cdc_due || conn->ism_moved != conn->tx_sent)
		usmc_log(conn->ctx, USMC_LOG_DEBUG,
			 "conn %08x: unpulled ISM operations dropped",
			 conn->token);
	ism_unlist(conn);
	if (conn->peer_ring)
		ovf_timer(conn, USMC_TSTAMP_NONE);
	conn->peer_ring = NULL; /* the runtime's mapping, detached by it */
	conn->ism_cdc_due = 0;
	conn->ism_moved = conn->tx_sent;
	conn->cdc_pend = 0;
	if (smcd_keepable(conn))
		smcd_dmb_keep(conn);
	else
		smcd_buf_free(conn->ctx, &conn->rmb, &conn->dmb);
	smcd_buf_free(conn->ctx, &conn->sndbuf, NULL);
}

/* ---- CLC ---- */

static void build_ac(usmc_conn *conn, usmc_clc_msg *m, uint8_t type)
{
	const usmc_device_info *d = &conn->ctx->s.devices[conn->ism_dev];
	usmc_clc_accept_confirm *ac = &m->u.ac;

	memset(m, 0, sizeof(*m));
	m->hdr.eyecatcher = SMCD_EYECATCHER;
	m->hdr.type = type;
	m->hdr.version = SMC_V2;
	m->hdr.typev1 = SMC_TYPE_D;
	m->hdr.typev2 = conn->first_contact ? SMC_FIRST_CONTACT_MASK : 0;
	/* smc_clc_send_confirm_accept, SMC-D */
	ac->d_gid = usmc_get_be64(d->gid);
	ac->d_token = conn->dmb.token;
	ac->dmbe_idx = 0;
	ac->dmbe_size = usmc_clc_compress_bufsize(
		conn->dmb.len < USMC_DMB_MAX ? conn->dmb.len : USMC_DMB_MAX,
		SMCD_DMBE_SIZES);
	ac->d_linkid = conn->lgr->id;
	ac->d_chid = dev_chid(d);
	memcpy(ac->eid, conn->eid, SMC_MAX_EID_LEN);
	ac->gid_ext = usmc_get_be64(d->gid + 8);
	if (!conn->first_contact)
		return;
	/* smc_clc_fill_fce_v2x: 36 bytes at release 0; from release 1 the
	 * v2x form with the feature mask and no max_conns/max_links */
	ac->fce_v2x = conn->release >= SMC_RELEASE_1;
	ac->os_type = SMC_CLC_OS_LINUX;
	ac->release = conn->release;
	memcpy(ac->hostname, conn->ctx->s.hostname, SMC_MAX_HOSTNAME_LEN);
	if (ac->fce_v2x)
		ac->feature_mask = SMC_SPF_EMULATED_ISM_DEV;
}

static void set_peer_dmb(usmc_conn *conn, const usmc_clc_accept_confirm *ac)
{
	conn->peer_dmb_token = ac->d_token;
	conn->peer_dmb_len = usmc_clc_uncompress_bufsize(ac->dmbe_size);
	conn->peer_rmb_size = (uint32_t)(conn->peer_dmb_len - SMCD_CDC_MSG_LEN);
	/* the token is the key to the peer's DMB: shown nowhere */
	conn->peer_token = 0;
}

static void dgid_of(uint8_t *out, uint64_t gid, uint64_t gid_ext)
{
	usmc_put_be64(out, gid);
	usmc_put_be64(out + 8, gid_ext);
}

int usmc_smcd_srv_proposal(usmc_conn *conn, const usmc_clc_msg *m,
			   usmc_tstamp ts)
{
	const usmc_clc_proposal *p = &m->u.prop;
	const usmc_device_info *d;
	usmc_lgr *lgr;
	usmc_clc_msg out;
	uint8_t eid[SMC_MAX_EID_LEN];
	uint64_t gid;
	uint16_t chid;
	int found = -1, dev = usmc_smcd_dev(conn->ctx);
	uint32_t rc;

	if (dev < 0 || m->hdr.version < SMC_V2 ||
	    !usmc_clc_smcd_indicated(m->hdr.typev2))
		return 0;
	d = &conn->ctx->s.devices[dev];
	gid = usmc_get_be64(d->gid);
	chid = dev_chid(d);
	/* smc_find_ism_v2_device_serv: an emulated ISM device is two
	 * entries with the same CHID, gid then gid_ext. usmc's gid is the
	 * host: equal gids are processes of one host (the kernel's
	 * loopback-ism wants gid_ext equal too: the same device) */
	for (unsigned int i = 0;
	     i < p->ism_gid_cnt && i < SMCD_CLC_MAX_V2_GID_ENTRIES; i++) {
		if (p->ism_gids[i].chid != chid)
			continue;
		if (i + 1 >= p->ism_gid_cnt || p->ism_gids[i + 1].chid != chid)
			break; /* malformed: the kernel's not_found */
		if (p->ism_gids[i].gid == gid) {
			found = (int)i;
			break;
		}
		i++;
	}
	if (found < 0 || !usmc_conn_eid_match(conn, p, eid))
		return 0;

	conn->smcd = 1;
	conn->ism_dev = (unsigned int)dev;
	conn->version = SMC_V2;
	conn->release = p->release > SMC_RELEASE ? SMC_RELEASE : p->release;
	memcpy(conn->eid, eid, SMC_MAX_EID_LEN);
	memcpy(conn->peer_system_id, p->peer_id, 8);
	dgid_of(conn->peer_dgid, gid, p->ism_gids[found + 1].gid);
	memcpy(conn->peer_gid, conn->peer_dgid, 16);
	lgr = smcd_lgr_find(conn->ctx, USMC_ROLE_SERVER, conn->ism_dev,
			    conn->peer_dgid);
	conn->first_contact = 0;
	if (!lgr) {
		rc = smcd_lgr_new(conn, USMC_ROLE_SERVER, p->peer_id, &lgr);
		if (rc) {
			usmc_conn_handshake_failed(conn, 0, rc, ts);
			return 1;
		}
	}
	rc = smcd_conn_setup(conn, lgr);
	if (rc) {
		/* smc_find_ism_v2_device_serv: an ISM device that cannot
		 * take the connection leaves the other options open; its
		 * reason is the decline's if none works (ini->rc) */
		if (conn->lgr)
			usmc_lgr_del_conn(lgr, conn, ts);
		if (conn->first_contact)
			usmc_lgr_free(lgr);
		conn->smcd = 0;
		conn->first_contact = 0;
		conn->smcd_decl = rc;
		return 0;
	}
	build_ac(conn, &out, SMC_CLC_ACCEPT);
	if (usmc_conn_clc_queue(conn, &out)) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_INTERR, ts);
		return 1;
	}
	conn->clc_state = USMC_CLC_SRV_WAIT_CONFIRM;
	conn->clc_expiry = ts + conn->ctx->s.clc_timeout;
	return 1;
}

void usmc_smcd_cli_accept(usmc_conn *conn, const usmc_clc_msg *m,
			  usmc_tstamp ts)
{
	const usmc_clc_accept_confirm *ac = &m->u.ac;
	const usmc_device_info *d;
	usmc_lgr *lgr = NULL;
	usmc_clc_msg out;
	uint32_t rc;

	/* smc_connect_check_aclc, smc_v2_determine_accepted_chid */
	if (!conn->offered_d || m->hdr.version < SMC_V2) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_MODEUNSUPP,
					   ts);
		return;
	}
	d = &conn->ctx->s.devices[conn->ism_dev];
	if (ac->dmbe_size > SMCD_DMBE_SIZES) {
		/* larger than any SMC-D DMB (1 MiB) */
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_CNFERR, ts);
		return;
	}
	if (ac->d_chid != dev_chid(d) || ac->d_gid != usmc_get_be64(d->gid)) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_NOSMCD2DEV,
					   ts);
		return;
	}
	conn->smcd = 1;
	conn->version = SMC_V2;
	conn->first_contact = !!(m->hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	conn->release = conn->first_contact ? ac->release : SMC_RELEASE_0;
	if (conn->release > SMC_RELEASE) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_RELEASEERR,
					   ts);
		return;
	}
	memcpy(conn->eid, ac->eid, SMC_MAX_EID_LEN);
	dgid_of(conn->peer_dgid, ac->d_gid, ac->gid_ext);
	memcpy(conn->peer_gid, conn->peer_dgid, 16);
	if (conn->first_contact) {
		rc = smcd_lgr_new(conn, USMC_ROLE_CLIENT, conn->peer_system_id,
				  &lgr);
	} else {
		/* the server reused a link group: ours must exist
		 * (smc_conn_create's SYNCERR) */
		lgr = smcd_lgr_find(conn->ctx, USMC_ROLE_CLIENT, conn->ism_dev,
				    conn->peer_dgid);
		rc = lgr ? 0 : SMC_CLC_DECL_SYNCERR;
		if (lgr)
			conn->release = lgr->release;
	}
	if (rc) {
		usmc_conn_handshake_failed(conn, 0, rc, ts);
		return;
	}
	rc = smcd_conn_setup(conn, lgr);
	if (rc) {
		if (!conn->lgr && conn->first_contact)
			usmc_lgr_free(lgr);
		usmc_conn_handshake_failed(conn, 0, rc, ts);
		return;
	}
	set_peer_dmb(conn, ac);
	build_ac(conn, &out, SMC_CLC_CONFIRM);
	if (usmc_conn_clc_queue(conn, &out)) {
		usmc_conn_handshake_failed(conn, 0, SMC_CLC_DECL_INTERR, ts);
		return;
	}
	/* no LLC: the data path is up once the Confirm is out */
	usmc_conn_established(conn, ts);
}

void usmc_smcd_srv_confirm(usmc_conn *conn, const usmc_clc_msg *m,
			   usmc_tstamp ts)
{
	const usmc_clc_accept_confirm *ac = &m->u.ac;
	uint8_t dgid[16];
	uint32_t rc = 0;

	dgid_of(dgid, ac->d_gid, ac->gid_ext);
	if (m->hdr.typev1 != SMC_TYPE_D)
		rc = SMC_CLC_DECL_MODEUNSUPP;
	else if (m->hdr.version < SMC_V2)
		rc = SMC_CLC_DECL_VERSMISMAT;
	else if (conn->first_contact && ac->release != conn->release)
		rc = SMC_CLC_DECL_RELEASEERR;
	else if (memcmp(dgid, conn->peer_dgid, 16) ||
		 ac->dmbe_size > SMCD_DMBE_SIZES)
		/* not the device the Proposal named, or a DMB larger than
		 * SMC-D has */
		rc = SMC_CLC_DECL_CNFERR;
	if (rc) {
		usmc_conn_handshake_failed(conn, 0, rc, ts);
		return;
	}
	set_peer_dmb(conn, ac);
	usmc_conn_established(conn, ts);
}

int usmc_conn_get_peer_dmb(const usmc_conn *conn, usmc_peer_dmb *out)
{
	if (!conn || !out)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!conn->smcd || !conn->peer_dmb_token)
		return USMC_ERR_INVALID_STATE;
	memcpy(out->gid, conn->peer_dgid, 16);
	out->token = conn->peer_dmb_token;
	out->len = conn->peer_dmb_len;
	return 0;
}

/* ---- data path ---- */

/* How long a writer waits on a full ring whose reader reads nothing
 * before its sndbuf takes bytes too (a stream's reader frees room in
 * microseconds; an application that writes all before it reads never). */
#define USMC_SMCD_OVF_WAIT (2 * USMC_NS_PER_MS)

int usmc_conn_attach_peer_dmb(usmc_conn *conn, void *addr, size_t len)
{
	if (!conn || !addr)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!conn->smcd || !conn->peer_dmb_token || !conn->peer_rmb_size ||
	    !conn->sndbuf || conn->peer_ring)
		return USMC_ERR_INVALID_STATE;
	if (len < conn->peer_dmb_len)
		return USMC_ERR_INVALID_ARGUMENT;
	/* the copy path's sndbuf must hold nothing: from here on a byte
	 * goes to the ring when nothing waits before it */
	if (conn->tx_prep != conn->tx_fin || conn->ism_moved != conn->tx_sent)
		return USMC_ERR_INVALID_STATE;
	/* smcd_buf_attach: the peer's RMBE, past the header */
	conn->peer_ring = (uint8_t *)addr + SMCD_CDC_MSG_LEN;
	conn->ovf_open = 0;
	conn->ovf_expiry = USMC_TSTAMP_NONE;
	return 0;
}

/* Copies |n| bytes at the stream position |pos| into the ring |ring| of
 * |size| bytes (a modulo: an RMBE is no power of two). */
static void ring_put(uint8_t *ring, uint32_t size, uint64_t pos,
		     const uint8_t *data, uint64_t n)
{
	uint32_t off = (uint32_t)(pos % size);
	uint64_t a = size - off;

	if (a > n)
		a = n;
	memcpy(ring + off, data, (size_t)a);
	if (a < n)
		memcpy(ring, data + a, (size_t)(n - a));
}

static void ovf_timer(usmc_conn *c, usmc_tstamp when)
{
	if (c->ovf_expiry == USMC_TSTAMP_NONE && when != USMC_TSTAMP_NONE)
		c->ctx->novf++;
	else if (c->ovf_expiry != USMC_TSTAMP_NONE &&
		 when == USMC_TSTAMP_NONE && c->ctx->novf)
		c->ctx->novf--;
	c->ovf_expiry = when;
}

/* Room in the peer's ring past what went there (written or moved). */
static uint64_t ring_room(const usmc_conn *c)
{
	return c->peer_rmb_size - (c->ism_moved - c->peer_cons);
}

static uint64_t ovf_room(const usmc_conn *c)
{
	return c->sndbuf->size - (c->tx_prep - c->ism_moved);
}

usmc_ssize usmc_smcd_write(usmc_conn *conn, const uint8_t *data, size_t len,
			   usmc_tstamp ts)
{
	uint64_t n = 0, m = 0, room;

	/* the peer's memory: written only while the peer holds it for us */
	if (!usmc_conn_can_send(conn))
		return USMC_ERR_CONNRESET;
	if (conn->ism_moved == conn->tx_prep) {
		/* nothing waits: straight into the peer's ring, up to its
		 * consumer cursor (bytes it has not read stay intact); with
		 * room there the sndbuf is shut again */
		room = ring_room(conn);
		if (room)
			conn->ovf_open = 0;
		n = len < room ? len : room;
		if (n) {
			ring_put(conn->peer_ring, conn->peer_rmb_size,
				 conn->tx_prep, data, n);
			conn->tx_prep += n;
			conn->ism_moved = conn->tx_prep;
		}
	}
	if (n < len && conn->ovf_open) {
		const usmc_buf *sb = conn->sndbuf;

		room = ovf_room(conn);
		m = len - n < room ? len - n : room;
		if (m) {
			ring_put(sb->mr.addr, sb->size, conn->tx_prep, data + n,
				 m);
			conn->tx_prep += m;
		}
	}
	if (!n && !m) {
		conn->want_writable = 1;
		conn->n_buf_full++;
		if (conn->ovf_expiry == USMC_TSTAMP_NONE) {
			ovf_timer(conn, ts + USMC_SMCD_OVF_WAIT);
			conn->ovf_cons = conn->peer_cons;
		}
		return USMC_ERR_WOULDBLOCK;
	}
	ovf_timer(conn, USMC_TSTAMP_NONE);
	conn->bytes_sent += n + m;
	if (n + m < len)
		conn->want_writable = 1;
	usmc_smcd_tx_push(conn);
	return (usmc_ssize)(n + m);
}

size_t usmc_smcd_writable(const usmc_conn *conn)
{
	if (conn->ism_moved == conn->tx_prep && ring_room(conn))
		return (size_t)ring_room(conn);
	return conn->ovf_open ? (size_t)ovf_room(conn) : 0;
}

/* The writer waited USMC_SMCD_OVF_WAIT on a full ring: if the peer read
 * nothing meanwhile, our sndbuf takes bytes too (the room a copy-path
 * writer has); if it read, the writer was told, and the wait starts
 * again (the peer may stop before the writer gets room). */
void usmc_smcd_ovf_expired(usmc_conn *conn, usmc_tstamp ts)
{
	ovf_timer(conn, USMC_TSTAMP_NONE);
	if (!usmc_conn_can_send(conn) || !conn->want_writable)
		return;
	if (conn->peer_cons != conn->ovf_cons) {
		/* it read: look again while the writer waits */
		ovf_timer(conn, ts + USMC_SMCD_OVF_WAIT);
		conn->ovf_cons = conn->peer_cons;
		return;
	}
	conn->ovf_open = 1;
	if (!usmc_smcd_writable(conn))
		return;
	conn->want_writable = 0;
	usmc_conn_event_raise(conn, USMC_EV_WRITABLE);
}

int usmc_conn_can_send(const usmc_conn *conn)
{
	/* a peer that aborted is CLOSED and may have given its DMB back */
	if (conn->smcd)
		return conn->lgr && !conn->lgr->peer_gone &&
		       !conn->peer_dmb_gone && conn->peer_dmb_token &&
		       conn->sndbuf &&
		       !(conn->peer_conn_flags & USMC_CDC_PEER_CONN_ABORT);
	return conn->link && usmc_link_usable(conn->link);
}

/* usmc_tx_push for SMC-D: decides what goes (as smc_tx_sndbuf_nonempty:
 * data the peer has room for, close flags, a consumer update); the moves
 * themselves are built when they are pulled. No corking: an ISM write is a
 * copy, with no completion to wait for. */
void usmc_smcd_tx_push(usmc_conn *conn)
{
	uint64_t pending, space, len;
	uint8_t flags = 0;

	if (!usmc_conn_can_send(conn) || !conn->peer_rmb_size || !conn->rmb)
		return;
	if (conn->mode != USMC_MODE_SMCR && conn->mode != USMC_MODE_HANDSHAKE)
		return;
	pending = conn->tx_prep - conn->tx_sent;
	space = conn->peer_rmb_size - (conn->tx_sent - conn->peer_cons);
	len = pending < space ? pending : space;
	if (conn->tx_sent + len == conn->tx_prep)
		flags = conn->close_flags_want;
	if (!len && !conn->cons_upd_pending &&
	    !(flags & ~conn->close_flags_sent))
		return;
	if (pending && pending >= space) {
		conn->ism_pflags |= USMC_CDC_WRITE_BLOCKED;
		conn->n_peer_full++;
	}
	conn->tx_sent += len;
	if (conn->tx_sent > conn->tx_sent_max)
		conn->tx_sent_max = conn->tx_sent;
	conn->rx_cons_sent = conn->rx_cons;
	conn->cons_upd_pending = 0;
	conn->close_flags_sent |= flags;
	if (conn->close_expiry != USMC_TSTAMP_NONE &&
	    !(conn->close_flags_want & ~conn->close_flags_sent))
		usmc_close_timer(conn, USMC_TSTAMP_NONE);
	conn->ism_cdc_due = 1;
	conn->cdc_pend = 1;
	ism_list(conn);
}

static void wire_curs(usmc_curs *c, uint64_t n, uint32_t size)
{
	c->count = (uint32_t)(n % size);
	c->wrap = (uint16_t)(n / size);
}

/* The next move of |c|: a piece of data (contiguous in the sndbuf and in
 * the peer's ring), else the header. Returns 0 when |c| has none. */
static int ism_next(usmc_conn *c, usmc_ism_op *op)
{
	const usmc_buf *sb = c->sndbuf;
	usmc_cdc_msg m;
	uint64_t freed;

	memset(op, 0, sizeof(*op));
	op->conn = c;
	op->peer_token = c->peer_dmb_token;
	if (c->ism_moved < c->tx_sent && sb) {
		uint64_t left = c->tx_sent - c->ism_moved;
		uint32_t doff = (uint32_t)(c->ism_moved % c->peer_rmb_size);
		uint32_t soff = (uint32_t)(c->ism_moved % sb->size);
		uint64_t chunk = c->peer_rmb_size - doff;

		if (chunk > left)
			chunk = left;
		if (chunk > sb->size - soff)
			chunk = sb->size - soff;
		op->kind = USMC_ISM_DATA;
		op->offset = SMCD_CDC_MSG_LEN + doff;
		op->data = (const uint8_t *)sb->mr.addr + soff;
		op->len = (size_t)chunk;
		c->ism_moved += chunk;
		c->n_writes++;
		return 1;
	}
	if (!c->ism_cdc_due)
		return 0;
	memset(&m, 0, sizeof(m));
	wire_curs(&m.prod, c->tx_sent, c->peer_rmb_size);
	wire_curs(&m.cons, c->rx_cons_sent, c->rmb->size);
	m.prod_flags = c->ism_pflags;
	m.conn_state_flags = c->close_flags_sent;
	usmc_smcd_cdc_encode(op->hdr, sizeof(op->hdr), &m);
	op->kind = USMC_ISM_CDC;
	op->offset = 0;
	op->len = SMCD_CDC_MSG_LEN;
	op->signal = 1;
	c->ism_cdc_due = 0;
	c->ism_pflags = 0;
	c->cdc_pend = 0;
	c->n_tx_cdcs++;
	c->tx_seq++;
	/* smcd_cdc_msg_send: the write is done, its sndbuf space free */
	freed = c->tx_sent - c->tx_fin;
	c->tx_fin = c->tx_sent;
	c->close_flags_done |= c->close_flags_sent;
	/* attached: the ring's room comes with the peer's reads, the
	 * sndbuf's with the moves (usmc_smcd_writable) */
	if (c->peer_ring && !usmc_smcd_writable(c))
		freed = 0;
	if (freed && c->want_writable && c->mode == USMC_MODE_SMCR) {
		c->want_writable = 0;
		usmc_conn_event_raise(c, USMC_EV_WRITABLE);
	}
	return 1;
}

int usmc_ctx_next_ism_op(usmc_ctx *ctx, usmc_ism_op *out)
{
	usmc_conn *c;

	if (!ctx || !out)
		return USMC_ERR_INVALID_ARGUMENT;
	while ((c = ctx->ism_head)) {
		if (!usmc_conn_can_send(c)) {
			/* the peer aborted or went since the push: its DMB
			 * may be gone, nothing more goes there */
			c->ism_moved = c->tx_sent;
			c->ism_cdc_due = 0;
			c->cdc_pend = 0;
			ism_unlist(c);
			usmc_close_progress(c, ctx->now);
			continue;
		}
		if (ism_next(c, out)) {
			if (out->kind == USMC_ISM_CDC) {
				ism_unlist(c);
				/* a CLOSED connection waited for this */
				usmc_close_progress(c, ctx->now);
			}
			return 1;
		}
		ism_unlist(c);
	}
	return 0;
}

int usmc_conn_on_dmb_signal(usmc_conn *conn, uint64_t dmb_token, usmc_tstamp ts)
{
	uint8_t hdr[SMCD_CDC_MSG_LEN];
	usmc_cdc_msg m;

	if (!conn)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!conn->smcd)
		return USMC_ERR_INVALID_STATE;
	conn->ctx->now = ts;
	if (!conn->rmb || !conn->lgr || conn->state == SMC_CLOSED)
		return 0; /* released, or nothing to take any more */
	if (dmb_token != conn->dmb.token) {
		usmc_log(conn->ctx, USMC_LOG_ERR,
			 "conn %08x: signal for another DMB: abort",
			 conn->token);
		usmc_close_abort_local(conn, USMC_ERR_PROTO, 1, ts);
		return USMC_ERR_PROTO;
	}
	/* one copy: the peer may write the header while we look */
	memcpy(hdr, conn->dmb.addr, sizeof(hdr));
	if (usmc_smcd_cdc_decode(&m, hdr, sizeof(hdr)) < 0) {
		usmc_log(conn->ctx, USMC_LOG_ERR,
			 "conn %08x: DMB header is no CDC: abort", conn->token);
		usmc_close_abort_local(conn, USMC_ERR_PROTO, 1, ts);
		return USMC_ERR_PROTO;
	}
	return usmc_rx_apply(conn, &m, ts) ? USMC_ERR_PROTO : 0;
}
