/* SPDX-License-Identifier: MIT */
/*
 * The SMC-D test transport (test_core_smcd, fuzz_core_smcd): contexts with
 * an ISM device in one process; register_dmb hands out zeroed heap DMBs
 * with random tokens; an ISM operation is a memcpy into the DMB its token
 * names, counted in bad_ops when it would leave that DMB, name no DMB or
 * its own side's, or put the header elsewhere than offset 0; a signal is
 * noted and delivered to the DMB's owner by signals_deliver. CLC messages
 * go across one at a time (clc_move). A broken harness expectation goes
 * to SMCD_H_CHECK (the includer's assert).
 */
#ifndef USMC_SMCD_HARNESS_H
#define USMC_SMCD_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_clc.h"
#include "usmc_core.h"

#ifndef SMCD_H_CHECK
#define SMCD_H_CHECK(c)          \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)
#endif
#ifndef SMCD_H_LOG
#define SMCD_H_LOG(...) ((void)0)
#endif

static inline uint64_t smcd_h_xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* usmc_settings.dmb_size of the next side_init (0: rmb_size) */
static uint32_t smcd_h_dmb_size;

static inline usmc_settings smcd_h_settings(uint32_t bufsize)
{
	usmc_settings s;

	usmc_settings_default(&s);
	s.sndbuf_size = bufsize;
	s.rmb_size = bufsize;
	s.dmb_size = smcd_h_dmb_size;
	return s;
}

#define MAX_DMBS 64

typedef struct side side;

typedef struct dmb_ent {
	int used;
	side *owner;
	usmc_conn *conn;
	usmc_dmb d;
	int signalled;
	/* unregistered by its owner: as a real transport keeps a peer's
	 * attached DMB mapped until the peer detaches, writes still land
	 * (late_ops) until the harness reaps it */
	int gone;
} dmb_ent;

struct side {
	usmc_ctx *ctx;
	uint64_t rng;
	int nev[USMC_EV_ERROR + 1];
	usmc_conn *last_ev_conn;
};

static dmb_ent dmbs[MAX_DMBS];
static uint64_t bad_ops;  /* ISM operations that left their DMB */
static uint64_t late_ops; /* ... into a DMB its owner gave back */
static uint64_t data_ops; /* USMC_ISM_DATA operations executed */

static inline void *t_malloc(size_t n, void *u)
{
	(void)u;
	return malloc(n);
}

static inline void *t_calloc(size_t n, size_t k, void *u)
{
	(void)u;
	return calloc(n, k);
}

static inline void t_free(void *p, void *u)
{
	(void)u;
	free(p);
}

static inline void t_rand(uint8_t *b, size_t n, void *u)
{
	side *s = u;

	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)smcd_h_xrand(&s->rng);
}

static inline int t_alloc_mr(void *u, unsigned int dev, size_t len,
			     uint32_t acc, usmc_mr *mr)
{
	(void)u, (void)dev, (void)acc;
	mr->addr = calloc(1, len);
	mr->length = len;
	mr->iova = (uint64_t)(uintptr_t)mr->addr;
	mr->lkey = mr->rkey = 0x1234;
	return mr->addr ? 0 : -1;
}

static inline void t_free_mr(void *u, usmc_mr *mr)
{
	(void)u;
	free(mr->addr);
}

static inline int t_create_qp(void *u, usmc_link *l, usmc_link_qp_info *out)
{
	(void)u, (void)l;
	out->qp_num = 0x100;
	return 0;
}

static inline int t_ready(void *u, usmc_link *l, const usmc_link_peer *p,
			  int rts)
{
	(void)u, (void)l, (void)p, (void)rts;
	return 0;
}

static inline void t_destroy_qp(void *u, usmc_link *l)
{
	(void)u, (void)l;
}

static inline void t_event(void *u, usmc_conn *c, usmc_conn_event ev)
{
	side *s = u;

	s->nev[ev]++;
	s->last_ev_conn = c;
}

static int fail_register; /* the next register_dmb fails */
/* side_init: the core may reuse DMBs (reuse_dmb given) */
static int smcd_h_reuse;
/* register_dmb calls that gave a DMB, reuse_dmb calls, and reuses of a
 * DMB that was not all zero (header and ring: as a new one) */
static uint64_t n_registered, n_reused, n_reused_dirty;

static inline int t_register_dmb(void *u, unsigned int dev, size_t len,
				 usmc_conn *conn, usmc_dmb *dmb)
{
	side *s = u;

	(void)dev;
	if (fail_register) {
		fail_register = 0;
		return -1;
	}
	for (int i = 0; i < MAX_DMBS; i++) {
		if (dmbs[i].used)
			continue;
		memset(&dmbs[i], 0, sizeof(dmbs[i]));
		dmbs[i].used = 1;
		dmbs[i].owner = s;
		dmbs[i].conn = conn;
		dmb->addr = calloc(1, len);
		dmb->len = len;
		do
			dmb->token = smcd_h_xrand(&s->rng);
		while (!dmb->token);
		dmb->handle = &dmbs[i];
		dmbs[i].d = *dmb;
		n_registered++;
		return 0;
	}
	return -1;
}

static inline void t_unregister_dmb(void *u, usmc_dmb *dmb)
{
	dmb_ent *e = dmb->handle;

	(void)u;
	SMCD_H_CHECK(e && e->used && !e->gone && e->d.token == dmb->token);
	e->gone = 1;
	e->signalled = 0;
	e->conn = NULL;
}

/* The core gives |conn| a DMB of its side's it kept. */
static inline int t_reuse_dmb(void *u, usmc_conn *conn, const usmc_dmb *dmb,
			      const uint8_t peer_gid[16])
{
	dmb_ent *e = dmb->handle;
	const uint8_t *p = dmb->addr;
	usmc_conn_info ci;

	/* the link group's peer device, which is this connection's */
	usmc_conn_get_info(conn, &ci);
	SMCD_H_CHECK(!memcmp(ci.peer_gid, peer_gid, 16));

	SMCD_H_CHECK(e && e->used && !e->gone && e->owner == u &&
		     e->d.token == dmb->token && e->d.addr == dmb->addr);
	for (size_t i = 0; i < dmb->len; i++)
		if (p[i]) {
			n_reused_dirty++;
			break;
		}
	e->conn = conn;
	e->signalled = 0;
	n_reused++;
	return 0;
}

/* Frees the DMBs their owners gave back. */
static inline void dmbs_reap(void)
{
	for (int i = 0; i < MAX_DMBS; i++) {
		if (!dmbs[i].used || !dmbs[i].gone)
			continue;
		free(dmbs[i].d.addr);
		memset(&dmbs[i], 0, sizeof(dmbs[i]));
	}
}

static inline dmb_ent *dmb_by_token(uint64_t token)
{
	for (int i = 0; i < MAX_DMBS; i++)
		if (dmbs[i].used && dmbs[i].d.token == token)
			return &dmbs[i];
	return NULL;
}

static inline int ndmbs(void)
{
	int n = 0;

	for (int i = 0; i < MAX_DMBS; i++)
		n += dmbs[i].used && !dmbs[i].gone;
	return n;
}

/* the callbacks of both contexts; with reuse_dmb (smcd_h_reuse) or not */
#define SMCD_H_CBS                                                    \
	.malloc = t_malloc, .calloc = t_calloc, .free = t_free,       \
	.rand = t_rand, .alloc_mr = t_alloc_mr, .free_mr = t_free_mr, \
	.link_create_qp = t_create_qp, .link_ready = t_ready,         \
	.link_destroy_qp = t_destroy_qp, .conn_event = t_event,       \
	.register_dmb = t_register_dmb, .unregister_dmb = t_unregister_dmb

static const usmc_callbacks cbs = {SMCD_H_CBS};
static const usmc_callbacks cbs_reuse = {SMCD_H_CBS, .reuse_dmb = t_reuse_dmb};

static inline void ism_dev(usmc_device_info *d, uint64_t host, uint64_t ext)
{
	memset(d, 0, sizeof(*d));
	d->kind = USMC_DEV_ISM;
	for (int i = 0; i < 8; i++) {
		d->gid[i] = (uint8_t)(host >> (56 - 8 * i));
		d->gid[8 + i] = (uint8_t)(ext >> (56 - 8 * i));
	}
	d->chid = SMC_LO_RESERVED_CHID;
}

static inline void roce_dev(usmc_device_info *d, uint8_t last)
{
	memset(d, 0, sizeof(*d));
	d->gid[10] = d->gid[11] = 0xff;
	d->gid[12] = 10, d->gid[15] = last;
	d->mac[0] = 2, d->mac[5] = last;
	d->active_mtu = 3;
}

/* A side with an ISM device on host |host| (and an RNIC first when
 * |roce|); DMBs of |bufsize| bytes. */
static inline void side_init(side *s, uint64_t host, uint64_t ext, int roce,
			     uint32_t bufsize)
{
	usmc_settings st = smcd_h_settings(bufsize);

	memset(s, 0, sizeof(*s));
	s->rng = 0x9e3779b97f4a7c15ull ^ ext;
	if (roce)
		roce_dev(&st.devices[st.ndevices++], (uint8_t)ext);
	ism_dev(&st.devices[st.ndevices++], host, ext);
	SMCD_H_CHECK(usmc_ctx_new(&s->ctx, smcd_h_reuse ? &cbs_reuse : &cbs,
				  &st, s) == 0);
}

static inline void side_fini(side *s)
{
	usmc_ctx_del(s->ctx);
	s->ctx = NULL;
	/* the last side down: nobody can write any more */
	if (!ndmbs())
		dmbs_reap();
}

static inline usmc_conn *conn_new(side *s, usmc_role role)
{
	usmc_conn_params p;
	usmc_conn *c = NULL;

	memset(&p, 0, sizeof(p));
	p.role = role;
	p.ipv4.addr = 0x0a000001;
	p.ipv4.prefix_len = 24;
	p.peer_ipv4 = 0x0a000002;
	SMCD_H_CHECK(usmc_conn_new(s->ctx, &p, 0, &c) == 0);
	return c;
}

/* Moves one pending CLC message of |from| to |to|; 1 if one moved. */
static inline int clc_move(usmc_conn *from, usmc_conn *to, usmc_clc_msg *seen)
{
	const uint8_t *d;
	size_t n;
	usmc_clc_hdr h;

	if (!from || !to)
		return 0;
	usmc_conn_clc_pending(from, &d, &n);
	if (!n)
		return 0;
	SMCD_H_CHECK(usmc_clc_hdr_peek(d, n, &h) == 0 && h.length <= n);
	if (seen)
		SMCD_H_CHECK(usmc_clc_decode(d, h.length, seen) == h.length);
	/* after the handshake a CLC message is refused: ignored here */
	(void)usmc_conn_clc_recv(to, d, h.length, 1);
	usmc_conn_clc_consume(from, h.length);
	return 1;
}

/* Executes every ISM operation |s| has; signals are noted on the target. */
static inline int ism_drain(side *s)
{
	usmc_ism_op op;
	int n = 0;

	while (usmc_ctx_next_ism_op(s->ctx, &op) == 1) {
		dmb_ent *e = dmb_by_token(op.peer_token);

		n++;
		if (!e || e->owner == s || op.offset + op.len > e->d.len ||
		    (op.kind == USMC_ISM_CDC) != (op.offset == 0)) {
			bad_ops++;
			SMCD_H_LOG(
				"bad op: kind %d off %zu len %zu %s hdr23 %02x "
				"state %d\n",
				op.kind, op.offset, op.len, e ? "" : "no dmb",
				op.hdr[23], usmc_conn_state(op.conn));
			continue;
		}
		late_ops += e->gone;
		data_ops += op.kind == USMC_ISM_DATA;
		memcpy((uint8_t *)e->d.addr + op.offset,
		       op.kind == USMC_ISM_CDC ? op.hdr : op.data, op.len);
		if (op.signal)
			e->signalled = 1;
	}
	return n;
}

/* Maps |c|'s peer DMB into |c|'s sndbuf, as the runtime does with a
 * transport whose attachment is mapped (the heap DMB is "mapped" in this
 * process). Returns usmc_conn_attach_peer_dmb's answer. */
static inline int attach_peer(usmc_conn *c)
{
	usmc_peer_dmb pd;
	dmb_ent *e;

	if (usmc_conn_get_peer_dmb(c, &pd))
		return -1;
	e = dmb_by_token(pd.token);
	SMCD_H_CHECK(e != NULL);
	return usmc_conn_attach_peer_dmb(c, e->d.addr, e->d.len);
}

static inline int signals_deliver(void)
{
	int n = 0;

	for (int i = 0; i < MAX_DMBS; i++) {
		if (!dmbs[i].used || dmbs[i].gone || !dmbs[i].signalled)
			continue;
		dmbs[i].signalled = 0;
		n++;
		usmc_conn_on_dmb_signal(dmbs[i].conn, dmbs[i].d.token, 1);
	}
	return n;
}

/* Runs the fabric until nothing moves. */
static inline void settle(side *a, usmc_conn *ca, side *b, usmc_conn *cb)
{
	for (int k = 0; k < 100000; k++) {
		int n = clc_move(ca, cb, NULL) + clc_move(cb, ca, NULL);

		n += ism_drain(a) + ism_drain(b);
		n += signals_deliver();
		if (!n)
			return;
	}
	SMCD_H_CHECK(!"fabric does not settle");
}

#endif /* USMC_SMCD_HARNESS_H */
