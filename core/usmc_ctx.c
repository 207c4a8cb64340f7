/* SPDX-License-Identifier: MIT */
/* The core context: settings, callbacks, memory, logging, timers. */
#include "usmc_conv.h"
#include "usmc_core_int.h"

void usmc_settings_default(usmc_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->sndbuf_size = 65536;
	s->rmb_size = 65536;
	s->smc_versions = USMC_VERSION_V1 | USMC_VERSION_V2;
	memset(s->ueid, ' ', sizeof(s->ueid));
	memcpy(s->ueid[0], "USMC", 4);
	s->ueid_cnt = 1;
	memset(s->hostname, ' ', sizeof(s->hostname));
	memcpy(s->hostname, "usmc", 4);
	s->clc_timeout = 6 * USMC_NS_PER_SEC;
	s->llc_timeout = 2 * USMC_NS_PER_SEC;
	s->testlink_time = USMC_NS_PER_SEC;
	s->testlink_wait = USMC_NS_PER_SEC;
	s->lgr_free_delay = 600 * USMC_NS_PER_SEC;
	s->send_wr = 16;
	s->recv_wr = 48;
	s->autocorking_size = 65536;
	s->rmb_keep_rkey = 1;
}

void *usmc_mem_calloc(usmc_ctx *ctx, size_t n, size_t size)
{
	/* through a local pointer: the callback, not libc's calloc */
	void *(*zalloc)(size_t, size_t, void *) = ctx->cb.calloc;

	return zalloc(n, size, ctx->user);
}

void usmc_mem_free(usmc_ctx *ctx, void *p)
{
	if (p)
		ctx->cb.free(p, ctx->user);
}

void *usmc_mem_buf_alloc(usmc_ctx *ctx, size_t size)
{
	if (ctx->cb.buf_alloc && ctx->cb.buf_free)
		return ctx->cb.buf_alloc(size, ctx->user);
	return usmc_mem_calloc(ctx, 1, size);
}

void usmc_mem_buf_free(usmc_ctx *ctx, void *p, size_t size)
{
	if (!p)
		return;
	if (ctx->cb.buf_alloc && ctx->cb.buf_free)
		ctx->cb.buf_free(p, size, ctx->user);
	else
		usmc_mem_free(ctx, p);
}

/* ---- device callbacks: the only places that call them ---- */

int usmc_ctx_call_alloc_mr(usmc_ctx *ctx, unsigned int dev_idx, size_t length,
			   uint32_t access, usmc_mr *mr)
{
	int rv;

	memset(mr, 0, sizeof(*mr));
	rv = ctx->cb.alloc_mr(ctx->user, dev_idx, length, access, mr);
	if (!rv && mr->addr && mr->length >= length)
		return 0;
	if (!rv)
		ctx->cb.free_mr(ctx->user, mr);
	memset(mr, 0, sizeof(*mr));
	return USMC_ERR_CALLBACK_FAILURE;
}

int usmc_ctx_call_reg_mr(usmc_ctx *ctx, unsigned int dev_idx,
			 const usmc_mr *mem, uint32_t access, usmc_mr *mr)
{
	int rv;

	memset(mr, 0, sizeof(*mr));
	if (!ctx->cb.reg_mr)
		return USMC_ERR_NOTSUP;
	rv = ctx->cb.reg_mr(ctx->user, dev_idx, mem->addr, mem->length, access,
			    mr);
	if (!rv && mr->addr == mem->addr && mr->length >= mem->length)
		return 0;
	if (!rv)
		ctx->cb.free_mr(ctx->user, mr);
	memset(mr, 0, sizeof(*mr));
	return USMC_ERR_CALLBACK_FAILURE;
}

void usmc_ctx_call_free_mr(usmc_ctx *ctx, usmc_mr *mr)
{
	if (mr->addr) {
		ctx->cb.free_mr(ctx->user, mr);
		memset(mr, 0, sizeof(*mr));
	}
}

void usmc_ctx_call_rand(usmc_ctx *ctx, uint8_t *buf, size_t len)
{
	ctx->cb.rand(buf, len, ctx->user);
}

int usmc_link_call_create_qp(usmc_link *link, usmc_link_qp_info *out)
{
	usmc_ctx *ctx = link->lgr->ctx;

	return ctx->cb.link_create_qp(ctx->user, link, out)
		       ? USMC_ERR_CALLBACK_FAILURE
		       : 0;
}

int usmc_link_call_ready(usmc_link *link, const usmc_link_peer *peer,
			 int to_rts)
{
	usmc_ctx *ctx = link->lgr->ctx;

	return ctx->cb.link_ready(ctx->user, link, peer, to_rts)
		       ? USMC_ERR_CALLBACK_FAILURE
		       : 0;
}

void usmc_link_call_destroy_qp(usmc_link *link)
{
	usmc_ctx *ctx = link->lgr->ctx;

	ctx->cb.link_destroy_qp(ctx->user, link);
}

void usmc_conn_call_event(usmc_conn *conn, usmc_conn_event ev)
{
	conn->ctx->cb.conn_event(conn->ctx->user, conn, ev);
}

void usmc_log(usmc_ctx *ctx, int level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!ctx->cb.log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ctx->cb.log(ctx->user, level, buf);
}

int usmc_ctx_new(usmc_ctx **pctx, const usmc_callbacks *cb,
		 const usmc_settings *s, void *user)
{
	void *(*zalloc)(size_t, size_t, void *);
	usmc_ctx *ctx;

	if (!pctx || !cb || !s || !cb->calloc || !cb->free || !cb->rand ||
	    !cb->alloc_mr || !cb->free_mr || !cb->link_create_qp ||
	    !cb->link_ready || !cb->link_destroy_qp || !cb->conn_event)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!(s->smc_versions & (USMC_VERSION_V1 | USMC_VERSION_V2)) ||
	    s->send_wr < 2 || s->recv_wr < 2 || s->llc_timeout == 0 ||
	    s->clc_timeout == 0 || s->ndevices > USMC_DEVICES_MAX ||
	    s->ueid_cnt < 1 || s->ueid_cnt > USMC_UEID_MAX)
		return USMC_ERR_INVALID_ARGUMENT;
	zalloc = cb->calloc;
	ctx = zalloc(1, sizeof(*ctx), user);
	if (!ctx)
		return USMC_ERR_NOMEM;
	ctx->cb = *cb;
	ctx->s = *s;
	ctx->user = user;
	if (!ctx->s.testlink_wait)
		ctx->s.testlink_wait = ctx->s.llc_timeout;
	if (ctx->s.sndbuf_size < USMC_RMBE_MIN)
		ctx->s.sndbuf_size = USMC_RMBE_MIN;
	if (ctx->s.rmb_size < USMC_RMBE_MIN)
		ctx->s.rmb_size = USMC_RMBE_MIN;
	ctx->s.sndbuf_size = usmc_clc_uncompress_bufsize(
		usmc_clc_compress_bufsize(s->sndbuf_size, SMCR_RMBE_SIZES));
	ctx->s.rmb_size = usmc_clc_uncompress_bufsize(
		usmc_clc_compress_bufsize(s->rmb_size, SMCR_RMBE_SIZES));
	if (usmc_is_zero(ctx->s.system_id, 8) && s->ndevices) {
		cb->rand(ctx->s.system_id, 2, user);
		memcpy(ctx->s.system_id + 2, s->devices[0].mac, 6);
	}
	ctx->next_lgr_id = 0x100;
	*pctx = ctx;
	return 0;
}

int usmc_ctx_add_device(usmc_ctx *ctx, const usmc_device_info *dev)
{
	if (!ctx || !dev)
		return USMC_ERR_INVALID_ARGUMENT;
	if (ctx->s.ndevices >= USMC_DEVICES_MAX)
		return USMC_ERR_LIMIT;
	ctx->s.devices[ctx->s.ndevices] = *dev;
	if (usmc_is_zero(ctx->s.system_id, 8)) {
		usmc_ctx_call_rand(ctx, ctx->s.system_id, 2);
		memcpy(ctx->s.system_id + 2, dev->mac, 6);
	}
	return (int)ctx->s.ndevices++;
}

const usmc_device_info *usmc_ctx_get_device(const usmc_ctx *ctx,
					    unsigned int idx)
{
	return ctx && idx < ctx->s.ndevices ? &ctx->s.devices[idx] : NULL;
}

void usmc_ctx_del(usmc_ctx *ctx)
{
	if (!ctx)
		return;
	while (ctx->conns) {
		usmc_conn *c = ctx->conns;

		c->freed_by_ctx = 1;
		usmc_conn_del(c);
	}
	while (ctx->lgrs)
		usmc_lgr_free(ctx->lgrs);
	ctx->cb.free(ctx, ctx->user);
}

void usmc_ctx_shutdown(usmc_ctx *ctx, usmc_tstamp ts)
{
	ctx->now = ts;
	for (usmc_lgr *l = ctx->lgrs; l; l = l->next)
		usmc_lgr_terminate(l, USMC_ERR_CONNABORTED,
				   SMC_LLC_DEL_PROG_INIT_TERM, ts);
}

int usmc_ctx_shutdown_idle(usmc_ctx *ctx, usmc_tstamp ts)
{
	int n = 0;

	ctx->now = ts;
	for (usmc_lgr *l = ctx->lgrs; l; l = l->next)
		if (!l->nconns && !l->terminating) {
			/* the peer's lgr ends as by the kernel's
			 * smc_lgr_free after its idle delay; but after our
			 * own LLC request in flight (a last DELETE_RKEY) and
			 * the peer's last ones are answered
			 * (usmc_lgr_end_if_idle) */
			l->end_when_idle = 1;
			usmc_lgr_end_if_idle(l, ts);
			n++;
		}
	return n;
}

usmc_tstamp usmc_ctx_get_expiry(const usmc_ctx *ctx)
{
	usmc_tstamp t = USMC_TSTAMP_NONE;

	for (const usmc_lgr *l = ctx->lgrs; l; l = l->next)
		t = usmc_tmin(t, usmc_lgr_expiry(l));
	if (!ctx->nhandshake && !ctx->nclosewait && !ctx->novf)
		return t;
	for (const usmc_conn *c = ctx->conns; c; c = c->next)
		t = usmc_tmin(t, usmc_conn_expiry(c));
	return t;
}

int usmc_ctx_handle_expiry(usmc_ctx *ctx, usmc_tstamp ts)
{
	int guard = 0;

	ctx->now = ts;
	/* Handlers may free any link group or connection, so rescan from the
	 * head after each one. Every handler moves its own deadline past |ts|;
	 * the guard only bounds a bug. */
again:
	if (++guard > 100000)
		return USMC_ERR_INTERNAL;
	for (usmc_lgr *l = ctx->lgrs; l; l = l->next) {
		if (usmc_lgr_expiry(l) <= ts) {
			usmc_lgr_handle_expiry(l, ts);
			goto again;
		}
	}
	for (usmc_conn *c = ctx->nhandshake || ctx->nclosewait || ctx->novf
				    ? ctx->conns
				    : NULL;
	     c; c = c->next) {
		if (usmc_conn_expiry(c) <= ts) {
			usmc_conn_handle_expiry(c, ts);
			goto again;
		}
	}
	return 0;
}

usmc_lgr *usmc_ctx_next_lgr(usmc_ctx *ctx, usmc_lgr *prev)
{
	return prev ? prev->next : ctx->lgrs;
}

static int lgr_type(const usmc_lgr_info *info);

void usmc_lgr_get_info(const usmc_lgr *lgr, usmc_lgr_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = lgr->id;
	info->role = lgr->role;
	info->smc_version = lgr->version;
	info->nconns = lgr->nconns;
	for (int i = 0; i < USMC_LINKS_MAX; i++) {
		const usmc_link *l = lgr->links[i];
		unsigned int k = info->nlinks;

		if (!l)
			continue;
		info->links[k].link_id = l->link_id;
		info->links[k].dev_idx = l->dev_idx;
		info->links[k].active = l->state == USMC_LNK_ACTIVE;
		info->links[k].state = l->state;
		info->links[k].qp_num = l->qp_num;
		info->links[k].peer_qpn = l->peer_qpn;
		memcpy(info->links[k].peer_gid, l->peer_gid, 16);
		info->links[k].tx_bytes = l->n_tx_bytes;
		info->links[k].rx_bytes = l->n_rx_bytes;
		info->links[k].tx_wrs = l->n_tx_wrs;
		info->links[k].rx_wrs = l->n_rx_wrs;
		info->nlinks++;
	}
	memcpy(info->peer_system_id, lgr->peer_system_id, 8);
	info->type = lgr_type(info);
	if (lgr->smcd) {
		info->smcd = 1;
		info->ism_dev = lgr->ism_dev;
		memcpy(info->peer_ism_gid, lgr->peer_dgid, 16);
		for (const usmc_smcd_kept *k = lgr->kept_dmbs; k; k = k->next)
			info->dmbs_kept++;
		info->dmbs_reused = lgr->n_dmb_reused;
	}
}

/* The type smcr_lgr_set_type would have set for these links: two active
 * links on one local device make it asymmetric local, two to one peer
 * GID asymmetric peer (the kernel decides both when it adds the link). */
static int lgr_type(const usmc_lgr_info *info)
{
	unsigned int nact = 0, same_dev = 0, same_peer = 0;

	for (unsigned int i = 0; i < info->nlinks; i++) {
		if (!info->links[i].active)
			continue;
		nact++;
		for (unsigned int j = 0; j < i; j++) {
			if (!info->links[j].active)
				continue;
			if (info->links[j].dev_idx == info->links[i].dev_idx)
				same_dev = 1;
			if (!memcmp(info->links[j].peer_gid,
				    info->links[i].peer_gid, 16))
				same_peer = 1;
		}
	}
	if (!nact)
		return USMC_LGR_NONE;
	if (nact == 1)
		return USMC_LGR_SINGLE;
	if (same_dev)
		return USMC_LGR_ASYMMETRIC_LOCAL;
	return same_peer ? USMC_LGR_ASYMMETRIC_PEER : USMC_LGR_SYMMETRIC;
}

const char *usmc_lgr_type_name(int type)
{
	static const char *const names[] = {"NONE", "SINGLE", "SYM", "ASYMP",
					    "ASYML"};

	return type >= 0 && type < (int)(sizeof(names) / sizeof(names[0]))
		       ? names[type]
		       : "?";
}

/* the info's states are the internal ones, as numbers */
_Static_assert((int)USMC_LNK_UNUSED == (int)USMC_LINK_UNUSED &&
		       (int)USMC_LNK_INACTIVE == (int)USMC_LINK_INACTIVE &&
		       (int)USMC_LNK_ACTIVATING == (int)USMC_LINK_ACTIVATING &&
		       (int)USMC_LNK_ACTIVE == (int)USMC_LINK_ACTIVE,
	       "enum usmc_link_state and usmc_link_state_info differ");

const char *usmc_link_state_name(int state)
{
	static const char *const names[] = {"UNUSED", "INACTIVE", "ACTIVATING",
					    "ACTIVE"};

	return state >= 0 && state < (int)(sizeof(names) / sizeof(names[0]))
		       ? names[state]
		       : "?";
}
