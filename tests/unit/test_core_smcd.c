/* SPDX-License-Identifier: MIT */
/*
 * The core's SMC-D profile (core/usmc_smcd.c): two contexts in one process,
 * each with an ISM device, wired back to back by a harness that is the
 * transport: register_dmb hands out zeroed heap DMBs with random tokens, an
 * ISM operation is a memcpy into the peer's DMB (checked to stay inside
 * the DMB it names, by token), a signal calls usmc_conn_on_dmb_signal on
 * the DMB's owner. The CLC bytes go across one message at a time. Oracles:
 * the CLC bytes as decoded by usmc_clc (eyecatcher, type), the data
 * compared byte by byte against the seeded pattern, the states and errors
 * the kernel's close FSM gives.
 */
#include "usmc_clc.h"
#include "usmc_core_test.h"

#define SMCD_H_CHECK(c) CU_ASSERT_FATAL(c)
#define SMCD_H_LOG(...) fprintf(stderr, __VA_ARGS__)
#include "usmc_smcd_harness.h"

/* The usual pair: client side |a| on host 0x1111, server side |b| on
 * |host_b| (0x1111: the same host), both with RNICs or neither, 16 KiB
 * DMBs. */
static void pair_init(side *a, side *b, uint64_t host_b, int roce)
{
	side_init(a, 0x1111, 0xaaaa, roce, 16384);
	side_init(b, host_b, 0xbbbb, roce, 16384);
}

/* Both sides go, and with them every DMB. */
static void pair_fini(side *a, side *b)
{
	side_fini(a);
	side_fini(b);
	USMC_ASSERT_EQ(ndmbs(), 0);
}

/* Client |a| to server |b|: runs the handshake, returning the Proposal,
 * the Accept and the Confirm as the wire carried them. */
static void handshake(side *a, usmc_conn **ca, side *b, usmc_conn **cb,
		      usmc_clc_msg *prop, usmc_clc_msg *acc, usmc_clc_msg *conf)
{
	*ca = conn_new(a, USMC_ROLE_CLIENT);
	*cb = conn_new(b, USMC_ROLE_SERVER);
	memset(prop, 0, sizeof(*prop));
	memset(acc, 0, sizeof(*acc));
	memset(conf, 0, sizeof(*conf));
	clc_move(*ca, *cb, prop);
	clc_move(*cb, *ca, acc);
	clc_move(*ca, *cb, conf);
	settle(a, *ca, b, *cb);
}

static void assert_smcd_up(usmc_conn *c, usmc_conn *peer)
{
	usmc_peer_dmb pd;
	dmb_ent *e;

	USMC_ASSERT_EQ(usmc_conn_get_mode(c), USMC_MODE_SMCD);
	USMC_ASSERT_EQ(usmc_conn_state(c), SMC_ACTIVE);
	USMC_ASSERT_EQ_FATAL(usmc_conn_get_peer_dmb(c, &pd), 0);
	e = dmb_by_token(pd.token);
	CU_ASSERT_FATAL(e != NULL);
	CU_ASSERT(e->conn == peer);
	CU_ASSERT(pd.len == e->d.len);
}

static void test_handshake(void)
{
	side a, b;
	usmc_conn *ca, *cb, *ca2, *cb2;
	usmc_clc_msg p, ac, cf;
	usmc_conn_info ia, ib;
	int nlgr = 0;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	/* the Proposal offers SMC-Dv2 only, with the loopback-ism pair */
	USMC_ASSERT_EQ(p.hdr.typev1, SMC_TYPE_N);
	USMC_ASSERT_EQ(p.hdr.typev2, SMC_TYPE_D);
	USMC_ASSERT_EQ(p.u.prop.ism_gid_cnt, 2);
	CU_ASSERT(p.u.prop.ism_gids[0].gid == 0x1111);
	CU_ASSERT(p.u.prop.ism_gids[1].gid == 0xaaaa);
	USMC_ASSERT_EQ(p.u.prop.ism_gids[1].chid, 0xffff);
	USMC_ASSERT_EQ(p.u.prop.feature_mask, SMC_SPF_EMULATED_ISM_DEV);
	/* Accept and Confirm are SMC-D v2 first contact, release 1 */
	USMC_ASSERT_EQ(ac.hdr.eyecatcher, SMCD_EYECATCHER);
	USMC_ASSERT_EQ(ac.hdr.type, SMC_CLC_ACCEPT);
	USMC_ASSERT_EQ(ac.hdr.typev1, SMC_TYPE_D);
	CU_ASSERT(ac.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	CU_ASSERT(ac.u.ac.d_gid == 0x1111 && ac.u.ac.gid_ext == 0xbbbb);
	USMC_ASSERT_EQ(ac.u.ac.release, SMC_RELEASE_1);
	CU_ASSERT(ac.u.ac.fce_v2x);
	USMC_ASSERT_EQ(ac.u.ac.dmbe_size, 0); /* 16 KiB */
	USMC_ASSERT_EQ(cf.hdr.type, SMC_CLC_CONFIRM);
	USMC_ASSERT_EQ(cf.hdr.typev1, SMC_TYPE_D);
	CU_ASSERT(cf.u.ac.d_gid == 0x1111 && cf.u.ac.gid_ext == 0xaaaa);
	CU_ASSERT(dmb_by_token(ac.u.ac.d_token)->conn == cb);
	CU_ASSERT(dmb_by_token(cf.u.ac.d_token)->conn == ca);
	assert_smcd_up(ca, cb);
	assert_smcd_up(cb, ca);
	USMC_ASSERT_EQ(a.nev[USMC_EV_ESTABLISHED], 1);
	USMC_ASSERT_EQ(b.nev[USMC_EV_ESTABLISHED], 1);
	usmc_conn_get_info(ca, &ia);
	usmc_conn_get_info(cb, &ib);
	USMC_ASSERT_EQ(ia.mode, USMC_MODE_SMCD);
	USMC_ASSERT_EQ(ia.rmb_size, 16384 - 32);
	USMC_ASSERT_EQ(ia.peer_rmb_size, 16384 - 32);
	USMC_ASSERT_EQ(ia.peer_gid[15], 0xbb);
	/* a second connection to the same peer device reuses the lgr */
	handshake(&a, &ca2, &b, &cb2, &p, &ac, &cf);
	CU_ASSERT(!(ac.hdr.typev2 & SMC_FIRST_CONTACT_MASK));
	USMC_ASSERT_EQ(ac.u.ac.fce_v2x, 0);
	assert_smcd_up(ca2, cb2);
	assert_smcd_up(cb2, ca2);
	for (usmc_lgr *l = usmc_ctx_next_lgr(a.ctx, NULL); l;
	     l = usmc_ctx_next_lgr(a.ctx, l)) {
		usmc_lgr_info li;

		usmc_lgr_get_info(l, &li);
		USMC_ASSERT_EQ(li.smcd, 1);
		USMC_ASSERT_EQ(li.ism_dev, 0);
		USMC_ASSERT_EQ(li.nlinks, 0);
		USMC_ASSERT_EQ(li.nconns, 2);
		USMC_ASSERT_EQ(li.smc_version, SMC_V2);
		USMC_ASSERT_EQ(li.peer_ism_gid[7], 0x11);
		USMC_ASSERT_EQ(li.peer_ism_gid[15], 0xbb);
		nlgr++;
	}
	USMC_ASSERT_EQ(nlgr, 1);
	USMC_ASSERT_EQ(ndmbs(), 4);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);
}

/* Different hosts: no SMC-D. Without RNICs both fall back (the server
 * declines, as today with no usable device); with RNICs the server
 * accepts SMC-R. */
static void test_not_chosen(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;

	pair_init(&a, &b, 0x2222, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(ac.hdr.type, SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(usmc_conn_get_mode(ca), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_get_mode(cb), USMC_MODE_FALLBACK);
	CU_ASSERT(usmc_conn_fallback_reason(cb) != 0);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(ca),
		       usmc_conn_fallback_reason(cb));
	USMC_ASSERT_EQ(ndmbs(), 0);
	pair_fini(&a, &b);

	pair_init(&a, &b, 0x2222, 1);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	clc_move(ca, cb, &p);
	USMC_ASSERT_EQ(p.hdr.typev2, SMC_TYPE_B);
	USMC_ASSERT_EQ(p.hdr.typev1, SMC_TYPE_R);
	clc_move(cb, ca, &ac);
	USMC_ASSERT_EQ(ac.hdr.type, SMC_CLC_ACCEPT);
	USMC_ASSERT_EQ(ac.hdr.typev1, SMC_TYPE_R);
	USMC_ASSERT_EQ(ac.hdr.eyecatcher, SMC_EYECATCHER);
	USMC_ASSERT_EQ(ndmbs(), 0);
	pair_fini(&a, &b);

	/* same host, both with RNICs: SMC-D is preferred */
	pair_init(&a, &b, 0x1111, 1);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(ac.hdr.typev1, SMC_TYPE_D);
	assert_smcd_up(ca, cb);
	assert_smcd_up(cb, ca);
	pair_fini(&a, &b);
	/* a DMB that cannot be registered: the server declines */
	pair_init(&a, &b, 0x1111, 0);
	fail_register = 1;
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(ac.hdr.type, SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(cb), SMC_CLC_DECL_MEM);
	USMC_ASSERT_EQ(usmc_conn_get_mode(ca), USMC_MODE_FALLBACK);
	CU_ASSERT(usmc_ctx_next_lgr(b.ctx, NULL) == NULL);
	pair_fini(&a, &b);
	/* ... with RNICs on both: SMC-R instead, as the kernel goes on to
	 * its RDMA devices */
	pair_init(&a, &b, 0x1111, 1);
	fail_register = 1;
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	clc_move(ca, cb, &p);
	clc_move(cb, ca, &ac);
	USMC_ASSERT_EQ(ac.hdr.type, SMC_CLC_ACCEPT);
	USMC_ASSERT_EQ(ac.hdr.typev1, SMC_TYPE_R);
	USMC_ASSERT_EQ(ndmbs(), 0);
	pair_fini(&a, &b);
}

typedef struct stream {
	side *ws, *rs;
	usmc_conn *w, *r;
	uint32_t seed;
	uint64_t total, wrote, got, bad;
	uint64_t rng;
} stream;

/* One step of a stream: a write of a random size, a read of another. */
static int stream_step(stream *st)
{
	uint8_t buf[20000];
	int moved = 0;

	if (st->wrote < st->total) {
		size_t n = 1 + (size_t)(xrand(&st->rng) % sizeof(buf));
		usmc_ssize k;

		if (n > st->total - st->wrote)
			n = (size_t)(st->total - st->wrote);
		pat_fill(buf, st->seed, st->wrote, n);
		k = usmc_conn_write(st->w, buf, n, 1);
		if (k > 0) {
			st->wrote += (uint64_t)k;
			moved = 1;
		} else {
			CU_ASSERT_FATAL(k == USMC_ERR_WOULDBLOCK);
		}
	}
	{
		size_t n = 1 + (size_t)(xrand(&st->rng) % sizeof(buf));
		usmc_ssize k = usmc_conn_read(st->r, buf, n, 1);

		if (k > 0) {
			st->bad += pat_check(buf, st->seed, st->got, (size_t)k);
			st->got += (uint64_t)k;
			moved = 1;
		} else {
			CU_ASSERT_FATAL(k == USMC_ERR_WOULDBLOCK);
		}
	}
	return moved;
}

/* 64 MiB each way at once through 16 KiB DMBs (a 16352-byte ring: every
 * wrap lands elsewhere) and 16 KiB sndbufs, every byte compared. */
/* Runs |s1| and |s2| (opposite directions between the same two sides)
 * to their ends: every byte compared, no ISM operation outside its DMB. */
static void run_streams(stream *s1, stream *s2)
{
	for (long k = 0; k < 10000000; k++) {
		int n = stream_step(s1) + stream_step(s2);

		n += ism_drain(s1->ws) + ism_drain(s1->rs) + signals_deliver();
		if (s1->got == s1->total && s2->got == s2->total)
			break;
		if (!n) {
			CU_FAIL("stream stalled");
			break;
		}
	}
	fprintf(stderr, "stream: %llu + %llu bytes compared\n",
		(unsigned long long)s1->got, (unsigned long long)s2->got);
	USMC_ASSERT_EQ(s1->got, s1->total);
	USMC_ASSERT_EQ(s2->got, s2->total);
	USMC_ASSERT_EQ(s1->bad, 0);
	USMC_ASSERT_EQ(s2->bad, 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
}

static void test_stream(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	stream s1, s2;
	usmc_conn_info ia;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	assert_smcd_up(ca, cb);
	memset(&s1, 0, sizeof(s1));
	memset(&s2, 0, sizeof(s2));
	s1 = (stream){&a, &b, ca, cb, 7, 64u << 20, 0, 0, 0, 11};
	s2 = (stream){&b, &a, cb, ca, 8, 64u << 20, 0, 0, 0, 12};
	run_streams(&s1, &s2);
	usmc_conn_get_info(ca, &ia);
	CU_ASSERT(ia.bytes_sent == s1.total && ia.bytes_received == s2.total);
	CU_ASSERT(ia.tx_cdcs > (s1.total / 16384));
	/* and both close in order */
	USMC_ASSERT_EQ(usmc_conn_close(ca, 2), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_APPCLOSEWAIT1);
	USMC_ASSERT_EQ(usmc_conn_close(cb, 3), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	CU_ASSERT(usmc_conn_close_done(ca) && usmc_conn_close_done(cb));
	USMC_ASSERT_EQ(usmc_conn_error(ca), 0);
	USMC_ASSERT_EQ(usmc_conn_error(cb), 0);
	/* closed connections gave their DMBs back */
	USMC_ASSERT_EQ(ndmbs(), 0);
	pair_fini(&a, &b);
}

/* usmc_settings.dmb_size: a side's DMB is that size rounded up to one the
 * CLC names (16 KiB * 2^n, at most 1 MiB), its Accept or Confirm says so,
 * the peer writes into all of it; 0 leaves it at rmb_size. Then 8 MiB
 * each way across the two ring sizes, compared byte by byte. */
static void test_dmb_size(void)
{
	static const struct {
		uint32_t set, len;
		uint8_t comp;
	} cases[] = {{200000, 262144, 4}, {4u << 20, 1u << 20, 6}};

	for (unsigned int i = 0; i < 2; i++) {
		side a, b;
		usmc_conn *ca, *cb;
		usmc_clc_msg p, ac, cf;
		usmc_conn_info ia, ib;
		stream s1, s2;

		smcd_h_dmb_size = cases[i].set;
		side_init(&a, 0x1111, 0xaaaa, 0, 16384);
		smcd_h_dmb_size = 0;
		side_init(&b, 0x1111, 0xbbbb, 0, 16384);
		handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
		assert_smcd_up(ca, cb);
		USMC_ASSERT_EQ(ac.u.ac.dmbe_size, 0);
		USMC_ASSERT_EQ(cf.u.ac.dmbe_size, cases[i].comp);
		USMC_ASSERT_EQ(dmb_by_token(cf.u.ac.d_token)->d.len,
			       cases[i].len);
		usmc_conn_get_info(ca, &ia);
		usmc_conn_get_info(cb, &ib);
		USMC_ASSERT_EQ(ia.rmb_size, cases[i].len - 32);
		USMC_ASSERT_EQ(ib.peer_rmb_size, cases[i].len - 32);
		USMC_ASSERT_EQ(ib.rmb_size, 16384 - 32);
		s1 = (stream){&a, &b, ca, cb, 7, 8u << 20, 0, 0, 0, 21};
		s2 = (stream){&b, &a, cb, ca, 8, 8u << 20, 0, 0, 0, 22};
		run_streams(&s1, &s2);
		usmc_conn_close(ca, 2);
		usmc_conn_close(cb, 3);
		settle(&a, ca, &b, cb);
		pair_fini(&a, &b);
	}
}

/* SHUT_WR: the peer reads the data, then EOF, and can still send. */
static void test_half_close(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[4096], out[4096];

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	pat_fill(buf, 3, 0, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 1000, 1), 1000);
	USMC_ASSERT_EQ(usmc_conn_shutdown_write(ca, 1), 0);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, 1), USMC_ERR_PIPE);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(b.nev[USMC_EV_PEER_SHUTDOWN], 1);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1), 1000);
	USMC_ASSERT_MEM_EQ(out, buf, 1000);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1), 0);
	/* the other way still works */
	USMC_ASSERT_EQ(usmc_conn_write(cb, buf, 4096, 1), 4096);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_read(ca, out, sizeof(out), 1), 4096);
	USMC_ASSERT_MEM_EQ(out, buf, 4096);
	USMC_ASSERT_EQ(usmc_conn_read(ca, out, sizeof(out), 1),
		       USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(usmc_conn_close(cb, 2), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_read(ca, out, sizeof(out), 1), 0);
	USMC_ASSERT_EQ(usmc_conn_close(ca, 3), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_error(ca), 0);
	USMC_ASSERT_EQ(usmc_conn_error(cb), 0);
	USMC_ASSERT_EQ(ndmbs(), 0);
	pair_fini(&a, &b);
}

/* An abort: the peer reads what came before it, then ECONNRESET. */
static void test_abort(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[3000], out[3000];

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	pat_fill(buf, 4, 0, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, sizeof(buf), 1), 3000);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_abort(ca, 2), 0);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(b.nev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1), 3000);
	USMC_ASSERT_MEM_EQ(out, buf, 3000);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1),
		       USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_write(cb, buf, 10, 1), USMC_ERR_CONNRESET);
	/* smc_close_passive_abort_received: PROCESSABORT until the
	 * application closes */
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_PROCESSABORT);
	USMC_ASSERT_EQ(usmc_conn_close(cb, 3), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	USMC_ASSERT_EQ(ndmbs(), 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);

	/* an abort that crosses a write: the writer's moves, not pulled
	 * yet, never reach the aborted peer's DMB (given back by now) */
	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 1000, 1), 1000);
	USMC_ASSERT_EQ(usmc_conn_abort(cb, 2), 0);
	USMC_ASSERT_EQ(ism_drain(&b), 1);
	USMC_ASSERT_EQ(ndmbs(), 1); /* the server's DMB went with its CDC */
	USMC_ASSERT_EQ(signals_deliver(), 1);
	USMC_ASSERT_EQ(usmc_conn_error(ca), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(ism_drain(&a), 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);
}

/* Two connections in one SMC-D link group; the server aborts the second
 * (a close with unread data, as iperf3's server ends its streams) and the
 * device then says PEER_GONE for that connection's DMB and attachment.
 * Only that connection lost its peer: the first still carries data both
 * ways. A peer process that dies gives PEER_GONE for each connection, and
 * each then reads what came before, then ECONNRESET. */
static void test_peer_gone_one_conn(void)
{
	side a, b;
	usmc_conn *ca, *cb, *ca2, *cb2;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[3000], out[3000];

	side_init(&a, 0x1111, 0xaaaa, 0, 16384);
	side_init(&b, 0x1111, 0xbbbb, 0, 16384);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	handshake(&a, &ca2, &b, &cb2, &p, &ac, &cf);
	USMC_ASSERT_EQ(usmc_conn_abort(cb2, 2), 0);
	settle(&a, ca2, &b, cb2);
	usmc_conn_peer_gone(ca2, 3);
	settle(&a, ca2, &b, cb2);
	USMC_ASSERT_EQ(usmc_conn_read(ca2, out, sizeof(out), 1),
		       USMC_ERR_CONNRESET);
	pat_fill(buf, 9, 0, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, sizeof(buf), 1), 3000);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1), 3000);
	USMC_ASSERT_MEM_EQ(out, buf, 3000);
	USMC_ASSERT_EQ(usmc_conn_write(cb, buf, 1000, 1), 1000);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_read(ca, out, sizeof(out), 1), 1000);
	USMC_ASSERT_MEM_EQ(out, buf, 1000);
	/* a new connection still joins the link group */
	handshake(&a, &ca2, &b, &cb2, &p, &ac, &cf);
	CU_ASSERT(!(ac.hdr.typev2 & SMC_FIRST_CONTACT_MASK));
	assert_smcd_up(ca2, cb2);
	/* the peer process dies: each connection is told */
	USMC_ASSERT_EQ(usmc_conn_write(cb, buf, 500, 1), 500);
	settle(&a, ca, &b, cb);
	usmc_conn_peer_gone(ca, 4);
	usmc_conn_peer_gone(ca2, 4);
	USMC_ASSERT_EQ(usmc_conn_read(ca, out, sizeof(out), 1), 500);
	USMC_ASSERT_MEM_EQ(out, buf, 500);
	USMC_ASSERT_EQ(usmc_conn_read(ca, out, sizeof(out), 1),
		       USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_read(ca2, out, sizeof(out), 1),
		       USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, 1), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(ism_drain(&a), 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	side_fini(&a);
	side_fini(&b);
	USMC_ASSERT_EQ(ndmbs(), 0);
}

/* The header of |c|'s DMB, as its peer would write it (host-endian). */
static void put_hdr(usmc_conn *c, uint8_t type, uint16_t pw, uint32_t pc,
		    uint16_t cw, uint32_t cc, uint8_t flags)
{
	usmc_peer_dmb pd;
	dmb_ent *e = NULL;
	uint8_t *h;

	for (int i = 0; i < MAX_DMBS; i++)
		if (dmbs[i].used && dmbs[i].conn == c)
			e = &dmbs[i];
	CU_ASSERT_FATAL(e != NULL);
	(void)pd;
	h = e->d.addr;
	memset(h, 0, 32);
	h[0] = type;
	memcpy(h + 8, &pw, 2);
	memcpy(h + 10, &pc, 4);
	memcpy(h + 16, &cw, 2);
	memcpy(h + 18, &cc, 4);
	h[23] = flags;
	e->signalled = 1;
}

static uint64_t dmb_token_of(usmc_conn *c)
{
	for (int i = 0; i < MAX_DMBS; i++)
		if (dmbs[i].used && dmbs[i].conn == c)
			return dmbs[i].d.token;
	return 0;
}

/* Both close at |ts| and end CLOSED, with no bad op; the pair goes. */
static void close_both(side *a, usmc_conn *ca, side *b, usmc_conn *cb,
		       usmc_tstamp ts)
{
	usmc_conn_close(ca, ts);
	settle(a, ca, b, cb);
	usmc_conn_close(cb, ts);
	settle(a, ca, b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	USMC_ASSERT_EQ(bad_ops, 0);
	pair_fini(a, b);
}

/* An attached sndbuf (usmc_conn_attach_peer_dmb, the kernel's
 * smcd_buf_attach): refused before the peer DMB is known, for a short or
 * missing mapping, twice, and with bytes in the copy path's sndbuf; taken
 * once they moved. Then 16 MiB each way of random writes and reads, every
 * byte compared, and no data move at all: the writes land in the peer's
 * ring, only headers move (no time passes: the sndbuf never opens).
 * Rings of 16352 and 262112 bytes, neither a power of two. */
static void test_attached_stream(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	usmc_peer_dmb pd;
	stream s1, s2;
	uint8_t x[100];

	smcd_h_dmb_size = 262144;
	side_init(&a, 0x1111, 0xaaaa, 0, 16384);
	smcd_h_dmb_size = 0;
	side_init(&b, 0x1111, 0xbbbb, 0, 16384);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	USMC_ASSERT_EQ(usmc_conn_attach_peer_dmb(ca, x, sizeof(x)),
		       USMC_ERR_INVALID_STATE);
	clc_move(ca, cb, &p);
	clc_move(cb, ca, &ac);
	clc_move(ca, cb, &cf);
	settle(&a, ca, &b, cb);
	assert_smcd_up(ca, cb);
	USMC_ASSERT_EQ_FATAL(usmc_conn_get_peer_dmb(ca, &pd), 0);
	USMC_ASSERT_EQ(usmc_conn_attach_peer_dmb(
			       ca, dmb_by_token(pd.token)->d.addr, pd.len - 1),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_conn_attach_peer_dmb(ca, NULL, pd.len),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(attach_peer(ca), 0);
	USMC_ASSERT_EQ(attach_peer(ca), USMC_ERR_INVALID_STATE);
	/* b has bytes in its own sndbuf: it copies them, then attaches */
	pat_fill(x, 8, 0, sizeof(x));
	USMC_ASSERT_EQ(usmc_conn_write(cb, x, sizeof(x), 1), 100);
	USMC_ASSERT_EQ(attach_peer(cb), USMC_ERR_INVALID_STATE);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(attach_peer(cb), 0);
	data_ops = 0;
	s1 = (stream){&a, &b, ca, cb, 7, 16u << 20, 0, 0, 0, 31};
	s2 = (stream){&b, &a, cb, ca, 8, 16u << 20, 100, 0, 0, 32};
	run_streams(&s1, &s2);
	USMC_ASSERT_EQ(data_ops, 0);
	USMC_ASSERT_EQ(usmc_conn_close(ca, 2), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_close(cb, 3), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_error(ca), 0);
	USMC_ASSERT_EQ(usmc_conn_error(cb), 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);
}

/* The stream bytes [from, to) of seed |seed| are in |e|'s ring. */
static size_t ring_bad(const dmb_ent *e, uint32_t seed, uint64_t from,
		       uint64_t to)
{
	const uint8_t *ring = (const uint8_t *)e->d.addr + 32;
	uint64_t size = e->d.len - 32;
	size_t bad = 0;

	while (from < to) {
		uint64_t off = from % size;
		uint64_t k = size - off < to - from ? size - off : to - from;

		bad += pat_check(ring + off, seed, from, (size_t)k);
		from += k;
	}
	return bad;
}

/* The window of an attached sndbuf: the writer fills the peer's ring and
 * no more, a read that frees less than the update limit (2304 bytes)
 * gives it nothing, one that frees more gives it exactly that
 * (USMC_EV_WRITABLE); then random writes, reads and deliveries. After
 * every step the bytes the reader has not read are, in its ring, the ones
 * written: the sender never wrote beyond the consumer cursor. */
static void test_attached_window(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[20000];
	const uint64_t ring = 16384 - 32;
	uint64_t wrote = 0, got = 0, rng = 41;
	dmb_ent *rb;
	usmc_ssize k;
	int nw;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(attach_peer(ca), 0);
	USMC_ASSERT_EQ(attach_peer(cb), 0);
	rb = dmb_by_token(dmb_token_of(cb));
	CU_ASSERT_FATAL(rb != NULL);
	memset(buf, 0xee, sizeof(buf));
	while ((k = usmc_conn_write(ca, buf, 5000, 1)) > 0)
		wrote += (uint64_t)k;
	USMC_ASSERT_EQ(k, USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(wrote, ring);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_readable(cb), ring);
	USMC_ASSERT_EQ(usmc_conn_read(cb, buf, ring, 1), (usmc_ssize)ring);
	got = ring;
	settle(&a, ca, &b, cb);

	/* now with the pattern, from a ring emptied once */
	wrote = got;
	for (;;) {
		pat_fill(buf, 5, wrote, 5000);
		k = usmc_conn_write(ca, buf, 5000, 1);
		if (k <= 0)
			break;
		wrote += (uint64_t)k;
	}
	USMC_ASSERT_EQ(k, USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(wrote - got, ring);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(ring_bad(rb, 5, got, wrote), 0);
	nw = a.nev[USMC_EV_WRITABLE];
	/* 1000 bytes read: under the limit, no update, no space */
	USMC_ASSERT_EQ(usmc_conn_read(cb, buf, 1000, 1), 1000);
	USMC_ASSERT_EQ(pat_check(buf, 5, got, 1000), 0);
	got += 1000;
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 0);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, 1), USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(ring_bad(rb, 5, got, wrote), 0);
	/* 3000 more: the update goes (write_blocked), 4000 bytes free */
	USMC_ASSERT_EQ(usmc_conn_read(cb, buf, 3000, 1), 3000);
	USMC_ASSERT_EQ(pat_check(buf, 5, got, 3000), 0);
	got += 3000;
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw + 1);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 4000);
	pat_fill(buf, 5, wrote, 10000);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10000, 1), 4000);
	wrote += 4000;
	USMC_ASSERT_EQ(ring_bad(rb, 5, got, wrote), 0);

	/* random steps; the signals go only now and then */
	for (int i = 0; i < 20000; i++) {
		size_t n = 1 + (size_t)(xrand(&rng) % sizeof(buf));

		switch (xrand(&rng) % 3) {
		case 0:
			pat_fill(buf, 5, wrote, n);
			k = usmc_conn_write(ca, buf, n, 1);
			CU_ASSERT_FATAL(k > 0 || k == USMC_ERR_WOULDBLOCK);
			if (k > 0)
				wrote += (uint64_t)k;
			break;
		case 1:
			k = usmc_conn_read(cb, buf, n, 1);
			CU_ASSERT_FATAL(k > 0 || k == USMC_ERR_WOULDBLOCK);
			if (k > 0) {
				USMC_ASSERT_EQ(
					pat_check(buf, 5, got, (size_t)k), 0);
				got += (uint64_t)k;
			}
			break;
		default:
			ism_drain(&a);
			ism_drain(&b);
			signals_deliver();
			break;
		}
		CU_ASSERT_FATAL(wrote - got <= ring);
		CU_ASSERT_FATAL(ring_bad(rb, 5, got, wrote) == 0);
	}
	fprintf(stderr,
		"attached window: %llu bytes through a %llu-byte "
		"ring\n",
		(unsigned long long)wrote, (unsigned long long)ring);
	CU_ASSERT(wrote > 20 * ring);
	USMC_ASSERT_EQ(usmc_conn_close(ca, 2), 0);
	settle(&a, ca, &b, cb);
	/* the rest, then EOF */
	while ((k = usmc_conn_read(cb, buf, sizeof(buf), 1)) > 0) {
		USMC_ASSERT_EQ(pat_check(buf, 5, got, (size_t)k), 0);
		got += (uint64_t)k;
	}
	USMC_ASSERT_EQ(k, 0);
	USMC_ASSERT_EQ(got, wrote);
	USMC_ASSERT_EQ(usmc_conn_close(cb, 3), 0);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	USMC_ASSERT_EQ(data_ops, 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	pair_fini(&a, &b);
}

/* The sndbuf behind an attached ring: a writer on a full ring waits; the
 * peer's read within 2 ms gives it ring room (no sndbuf); a peer that
 * reads nothing for 2 ms opens the sndbuf (USMC_EV_WRITABLE), whose
 * bytes wait there, never over the unread ring, and go as data moves
 * when the peer reads; once it drained, writes go to the ring again.
 * Every byte compared. */
static void test_attached_overflow(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[20000];
	const uint64_t ring = 16384 - 32;
	uint64_t wrote = 0, got = 0, d;
	usmc_tstamp t;
	dmb_ent *rb;
	usmc_ssize k;
	int nw;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(attach_peer(ca), 0);
	rb = dmb_by_token(dmb_token_of(cb));
	CU_ASSERT_FATAL(rb != NULL);
	for (;;) {
		pat_fill(buf, 6, wrote, 5000);
		k = usmc_conn_write(ca, buf, 5000, 10);
		if (k <= 0)
			break;
		wrote += (uint64_t)k;
	}
	USMC_ASSERT_EQ(k, USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(wrote, ring);
	t = usmc_ctx_get_expiry(a.ctx);
	USMC_ASSERT_EQ(t, 10 + 2000000);
	settle(&a, ca, &b, cb);
	/* the peer reads in time: ring room, the sndbuf stays shut */
	USMC_ASSERT_EQ(usmc_conn_read(cb, buf, 4000, 11), 4000);
	USMC_ASSERT_EQ(pat_check(buf, 6, got, 4000), 0);
	got += 4000;
	settle(&a, ca, &b, cb);
	nw = a.nev[USMC_EV_WRITABLE];
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(a.ctx, t), 0);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 4000);
	pat_fill(buf, 6, wrote, 4000);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 4000, t), 4000);
	wrote += 4000;
	/* full again, and now the peer reads nothing */
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, t + 1),
		       USMC_ERR_WOULDBLOCK);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_ctx_get_expiry(a.ctx), t + 1 + 2000000);
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(a.ctx, t + 2000000), 0);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw);
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(a.ctx, t + 1 + 2000000), 0);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw + 1);
	USMC_ASSERT_EQ(usmc_ctx_get_expiry(a.ctx), USMC_TSTAMP_NONE);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 16384);
	data_ops = 0;
	pat_fill(buf, 6, wrote, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, sizeof(buf), t + 3000000),
		       16384);
	wrote += 16384;
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 0);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, t + 3000000),
		       USMC_ERR_WOULDBLOCK);
	settle(&a, ca, &b, cb);
	/* no room in the ring: nothing moved, the unread bytes intact */
	USMC_ASSERT_EQ(data_ops, 0);
	USMC_ASSERT_EQ(usmc_conn_readable(cb), ring);
	USMC_ASSERT_EQ(ring_bad(rb, 6, got, got + ring), 0);
	while (got < wrote) {
		k = usmc_conn_read(cb, buf, 3000, t + 4000000);
		CU_ASSERT_FATAL(k > 0);
		USMC_ASSERT_EQ(pat_check(buf, 6, got, (size_t)k), 0);
		got += (uint64_t)k;
		settle(&a, ca, &b, cb);
		USMC_ASSERT_EQ(
			ring_bad(rb, 6, got, got + usmc_conn_readable(cb)), 0);
	}
	CU_ASSERT(data_ops > 0);
	/* drained: the ring again, no move */
	d = data_ops;
	pat_fill(buf, 6, wrote, 5000);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 5000, t + 5000000), 5000);
	wrote += 5000;
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_read(cb, buf, sizeof(buf), t + 5000000), 5000);
	USMC_ASSERT_EQ(pat_check(buf, 6, got, 5000), 0);
	USMC_ASSERT_EQ(data_ops, d);
	close_both(&a, ca, &b, cb, t + 6000000);
}

/* The sndbuf shuts to new bytes when the peer reads, and the wait starts
 * again: a writer whose bytes wait in the sndbuf gets room once the peer
 * then read nothing for 2 ms (never left waiting on a peer that stopped).
 * Every byte compared. */
static void test_attached_overflow_again(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[20000];
	const uint64_t ring = 16384 - 32;
	const usmc_tstamp w = 2000000, t = 100;
	uint64_t wrote = 0, got = 0;
	usmc_ssize k;
	int nw;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(attach_peer(ca), 0);
	for (;;) {
		pat_fill(buf, 7, wrote, 5000);
		k = usmc_conn_write(ca, buf, 5000, 10);
		if (k <= 0)
			break;
		wrote += (uint64_t)k;
	}
	USMC_ASSERT_EQ(wrote, ring);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(a.ctx, 10 + w), 0);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 16384);
	pat_fill(buf, 7, wrote, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, sizeof(buf), t), 16384);
	wrote += 16384;
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, t), USMC_ERR_WOULDBLOCK);
	settle(&a, ca, &b, cb);
	/* the peer reads 3000 bytes: 3000 move from the sndbuf to the ring,
	 * no new bytes may follow them there yet */
	USMC_ASSERT_EQ(usmc_conn_read(cb, buf, 3000, t), 3000);
	USMC_ASSERT_EQ(pat_check(buf, 7, got, 3000), 0);
	got += 3000;
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(usmc_conn_readable(cb), ring);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 0);
	nw = a.nev[USMC_EV_WRITABLE];
	/* it read since the wait began: the wait starts again */
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(a.ctx, t + w), 0);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw);
	USMC_ASSERT_EQ(usmc_ctx_get_expiry(a.ctx), t + 2 * w);
	/* and then nothing: the sndbuf's 3000 free bytes open */
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(a.ctx, t + 2 * w), 0);
	USMC_ASSERT_EQ(a.nev[USMC_EV_WRITABLE], nw + 1);
	USMC_ASSERT_EQ(usmc_conn_writable(ca), 3000);
	pat_fill(buf, 7, wrote, 5000);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 5000, t + 2 * w), 3000);
	wrote += 3000;
	while (got < wrote) {
		k = usmc_conn_read(cb, buf, 4000, t + 3 * w);
		CU_ASSERT_FATAL(k > 0);
		USMC_ASSERT_EQ(pat_check(buf, 7, got, (size_t)k), 0);
		got += (uint64_t)k;
		settle(&a, ca, &b, cb);
	}
	close_both(&a, ca, &b, cb, t + 4 * w);
}

/* Attached sndbufs when a peer goes: the reader whose writer died reads
 * what it wrote, then ECONNRESET; a writer whose peer is gone or aborted
 * writes nothing into the peer's memory (ECONNRESET). */
static void test_attached_peer_gone(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	uint8_t buf[3000], out[3000], *snap;
	dmb_ent *rb;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(attach_peer(ca), 0);
	USMC_ASSERT_EQ(attach_peer(cb), 0);
	rb = dmb_by_token(dmb_token_of(cb));
	CU_ASSERT_FATAL(rb != NULL);
	pat_fill(buf, 4, 0, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, sizeof(buf), 1), 3000);
	settle(&a, ca, &b, cb);
	/* a's process dies: b reads the 3000 bytes, then the reset */
	usmc_conn_peer_gone(cb, 3);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1), 3000);
	USMC_ASSERT_MEM_EQ(out, buf, 3000);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1),
		       USMC_ERR_CONNRESET);
	/* b's process is gone for a: nothing lands in b's DMB any more */
	snap = malloc(rb->d.len);
	CU_ASSERT_FATAL(snap != NULL);
	memcpy(snap, rb->d.addr, rb->d.len);
	usmc_conn_peer_gone(ca, 4);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 100, 1), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(ism_drain(&a), 0);
	USMC_ASSERT_MEM_EQ(snap, rb->d.addr, rb->d.len);
	free(snap);
	usmc_conn_close(ca, 5);
	usmc_conn_close(cb, 5);
	settle(&a, ca, &b, cb);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);

	/* an abort that crosses a write: the bytes went into the peer's
	 * ring while it still held it, the header never follows, and the
	 * next write is refused */
	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(attach_peer(ca), 0);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 1000, 1), 1000);
	USMC_ASSERT_EQ(usmc_conn_abort(cb, 2), 0);
	USMC_ASSERT_EQ(ism_drain(&b), 1);
	USMC_ASSERT_EQ(signals_deliver(), 1);
	USMC_ASSERT_EQ(usmc_conn_error(ca), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 10, 1), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(ism_drain(&a), 0);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);
}

/* Hostile headers written straight into the server's DMB: each aborts
 * the server's connection (EPROTO), which tells the client (ECONNRESET);
 * nothing is read or written outside a DMB. */
static void test_hostile(void)
{
	enum {
		NOT_CDC,
		PROD_PAST_RING,
		PROD_BACKWARDS,
		PROD_PAST_WINDOW,
		CONS_PAST_SENT,
		TOKEN,
		NCASES
	};

	for (int k = 0; k < NCASES; k++) {
		side a, b;
		usmc_conn *ca, *cb;
		usmc_clc_msg p, ac, cf;
		uint8_t buf[1000];
		uint32_t ring = 16384 - 32;

		pair_init(&a, &b, 0x1111, 0);
		handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
		/* 1000 bytes in first, so "backwards" has room */
		pat_fill(buf, 5, 0, sizeof(buf));
		USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 1000, 1), 1000);
		settle(&a, ca, &b, cb);
		USMC_ASSERT_EQ(usmc_conn_readable(cb), 1000);
		switch (k) {
		case NOT_CDC:
			put_hdr(cb, 0x00, 0, 1000, 0, 0, 0);
			break;
		case PROD_PAST_RING:
			put_hdr(cb, 0xfe, 0, ring, 0, 0, 0);
			break;
		case PROD_BACKWARDS:
			put_hdr(cb, 0xfe, 0, 999, 0, 0, 0);
			break;
		case PROD_PAST_WINDOW:
			/* a whole ring more than we granted */
			put_hdr(cb, 0xfe, 1, 1000, 0, 0, 0);
			break;
		case CONS_PAST_SENT:
			/* consumes bytes the server never sent */
			put_hdr(cb, 0xfe, 0, 1000, 0, 5, 0);
			break;
		case TOKEN:
			USMC_ASSERT_EQ(usmc_conn_on_dmb_signal(
					       cb, dmb_token_of(cb) ^ 1, 1),
				       USMC_ERR_PROTO);
			break;
		}
		settle(&a, ca, &b, cb);
		USMC_ASSERT_EQ(usmc_conn_error(cb), USMC_ERR_PROTO);
		USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
		USMC_ASSERT_EQ(b.nev[USMC_EV_ERROR], 1);
		USMC_ASSERT_EQ(usmc_conn_error(ca), USMC_ERR_CONNRESET);
		/* the client takes the abort and closes: nothing more goes to
		 * the server's DMB */
		USMC_ASSERT_EQ(usmc_conn_close(ca, 2), 0);
		settle(&a, ca, &b, cb);
		USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
		USMC_ASSERT_EQ(bad_ops, 0);
		USMC_ASSERT_EQ(late_ops, 0);
		/* a late signal on the dead connection changes nothing */
		USMC_ASSERT_EQ(usmc_conn_on_dmb_signal(cb, 0, 2), 0);
		pair_fini(&a, &b);
	}
}

/* Seeded random headers (mostly near-valid cursors and flags) against a
 * live connection with data both ways: never an operation outside a DMB,
 * never more readable than the ring, and either the connection goes on
 * (the header was a legal state) or it ended: EPROTO, or ECONNRESET
 * for the abort flag. */
static void test_hostile_random(void)
{
	uint64_t rng = 0x5eed;
	int aborted = 0, survived = 0;

	for (int k = 0; k < 300; k++) {
		side a, b;
		usmc_conn *ca, *cb;
		usmc_clc_msg p, ac, cf;
		uint8_t buf[3000];
		uint32_t ring = 16384 - 32;

		pair_init(&a, &b, 0x1111, 0);
		handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
		pat_fill(buf, 9, 0, sizeof(buf));
		USMC_ASSERT_EQ(usmc_conn_write(ca, buf, 3000, 1), 3000);
		USMC_ASSERT_EQ(usmc_conn_write(cb, buf, 2000, 1), 2000);
		settle(&a, ca, &b, cb);
		for (int j = 0; j < 4; j++) {
			uint64_t r = xrand(&rng);
			uint32_t pc = (uint32_t)(3000 + (int)(r % 64) - 32);
			uint32_t cc =
				(uint32_t)(2000 + (int)((r >> 8) % 64) - 32);
			uint16_t pw = (uint16_t)((r >> 16) % 8 == 0);
			uint8_t type =
				(r >> 20) % 16 ? 0xfe : (uint8_t)(r >> 24);
			uint8_t fl = (uint8_t)((r >> 32) % 4 ? 0 : (r >> 40));

			if ((r >> 48) % 8 == 0)
				pc = (uint32_t)(r >> 12) % (2 * ring);
			put_hdr(cb, type, pw, pc, 0, cc, fl);
			settle(&a, ca, &b, cb);
			CU_ASSERT(usmc_conn_readable(cb) <= ring);
			if (usmc_conn_error(cb))
				break;
			survived++; /* taken as a legal state */
		}
		USMC_ASSERT_EQ(bad_ops, 0);
		USMC_ASSERT_EQ(late_ops, 0);
		if (usmc_conn_error(cb)) {
			/* hostile, or a header with the abort flag */
			CU_ASSERT(usmc_conn_error(cb) == USMC_ERR_PROTO ||
				  usmc_conn_error(cb) == USMC_ERR_CONNRESET);
			aborted++;
		}
		pair_fini(&a, &b);
	}
	fprintf(stderr, "hostile_random: %d aborted, %d headers taken\n",
		aborted, survived);
	/* the mix reaches both outcomes */
	CU_ASSERT(aborted > 0 && survived > 0);
}

/* A hostile Accept and Confirm: a DMB on another CHID, a Confirm naming
 * another device than the Proposal. */
/* The CLC message |from| has pending, taken off its wire into |m|. */
static void clc_take(usmc_conn *from, usmc_clc_msg *m)
{
	const uint8_t *d;
	size_t len;

	usmc_conn_clc_pending(from, &d, &len);
	CU_ASSERT_FATAL(usmc_clc_decode(d, len, m) > 0);
	usmc_conn_clc_consume(from, len);
}

/* |m| (tampered with) arrives at |to|, which must fall back for |reason|. */
static void clc_give_refused(usmc_conn *to, const usmc_clc_msg *m,
			     uint32_t reason)
{
	uint8_t wire[USMC_CLC_MAX_LEN];
	usmc_ssize n = usmc_clc_encode(m, wire, sizeof(wire));

	CU_ASSERT_FATAL(n > 0);
	USMC_ASSERT_EQ(usmc_conn_clc_recv(to, wire, (size_t)n, 1), 0);
	USMC_ASSERT_EQ(usmc_conn_get_mode(to), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(to), reason);
}

static void test_hostile_clc(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, m;

	pair_init(&a, &b, 0x1111, 0);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	clc_move(ca, cb, &p);
	clc_move(cb, ca, &m);
	USMC_ASSERT_EQ(m.hdr.typev1, SMC_TYPE_D);
	/* the client gets the Accept with another CHID instead */
	side_fini(&a);
	side_init(&a, 0x1111, 0xaaaa, 0, 16384);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	usmc_conn_clc_consume(ca, 1000);
	m.u.ac.d_chid = 0x1234;
	clc_give_refused(ca, &m, SMC_CLC_DECL_NOSMCD2DEV);
	pair_fini(&a, &b);

	/* the server gets a Confirm from a gid_ext the Proposal did not
	 * name */
	pair_init(&a, &b, 0x1111, 0);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	clc_move(ca, cb, NULL);
	clc_move(cb, ca, NULL);
	clc_take(ca, &m);
	m.u.ac.gid_ext ^= 1;
	clc_give_refused(cb, &m, SMC_CLC_DECL_CNFERR);
	pair_fini(&a, &b);

	/* an Accept announcing a DMB larger than SMC-D's 1 MiB */
	pair_init(&a, &b, 0x1111, 0);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	clc_move(ca, cb, NULL);
	clc_take(cb, &m);
	m.u.ac.dmbe_size = SMCD_DMBE_SIZES + 1;
	clc_give_refused(ca, &m, SMC_CLC_DECL_CNFERR);
	pair_fini(&a, &b);
}

/* The client is up once its Confirm is out and may write before the
 * server has read the Confirm: the server takes the data then. */
static void test_data_before_confirm(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	uint8_t buf[5000], out[5000];

	pair_init(&a, &b, 0x1111, 0);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	clc_move(ca, cb, NULL);
	clc_move(cb, ca, NULL);
	USMC_ASSERT_EQ(usmc_conn_get_mode(ca), USMC_MODE_SMCD);
	pat_fill(buf, 6, 0, sizeof(buf));
	USMC_ASSERT_EQ(usmc_conn_write(ca, buf, sizeof(buf), 1), 5000);
	ism_drain(&a);
	signals_deliver();
	USMC_ASSERT_EQ(usmc_conn_get_mode(cb), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(b.nev[USMC_EV_READABLE], 0);
	clc_move(ca, cb, NULL); /* the Confirm */
	USMC_ASSERT_EQ(usmc_conn_get_mode(cb), USMC_MODE_SMCD);
	USMC_ASSERT_EQ(b.nev[USMC_EV_READABLE], 1);
	USMC_ASSERT_EQ(usmc_conn_read(cb, out, sizeof(out), 1), 5000);
	USMC_ASSERT_MEM_EQ(out, buf, 5000);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);
	pair_fini(&a, &b);
}

/* An SMC-D link group with no connection left ends after lgr_free_delay
 * (the client's 10 s later), as SMC-R's, with nothing to say. */
static void test_idle_lgr(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_clc_msg p, ac, cf;
	usmc_tstamp t = 600 * SEC;

	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	USMC_ASSERT_EQ(usmc_conn_close(ca, 2), 0);
	USMC_ASSERT_EQ(usmc_conn_close(cb, 2), 0);
	settle(&a, ca, &b, cb);
	usmc_conn_del(ca);
	usmc_conn_del(cb);
	USMC_ASSERT_EQ(ndmbs(), 0);
	CU_ASSERT(usmc_ctx_next_lgr(a.ctx, NULL) != NULL);
	CU_ASSERT(usmc_ctx_get_expiry(b.ctx) <= t + 2);
	for (int k = 0; k < 2; k++) {
		usmc_ctx_handle_expiry(a.ctx, t + 2);
		usmc_ctx_handle_expiry(b.ctx, t + 2);
	}
	CU_ASSERT(usmc_ctx_next_lgr(b.ctx, NULL) == NULL);
	CU_ASSERT(usmc_ctx_next_lgr(a.ctx, NULL) != NULL);
	for (int k = 0; k < 2; k++)
		usmc_ctx_handle_expiry(a.ctx, t + 10 * SEC + 2);
	CU_ASSERT(usmc_ctx_next_lgr(a.ctx, NULL) == NULL);
	USMC_ASSERT_EQ(ism_drain(&a) + ism_drain(&b), 0);
	pair_fini(&a, &b);
}

/* Closes |ca| then |cb| in order and deletes both. */
static void close_pair(side *a, usmc_conn *ca, side *b, usmc_conn *cb,
		       usmc_tstamp ts)
{
	USMC_ASSERT_EQ(usmc_conn_close(ca, ts), 0);
	settle(a, ca, b, cb);
	USMC_ASSERT_EQ(usmc_conn_close(cb, ts), 0);
	settle(a, ca, b, cb);
	USMC_ASSERT_EQ(usmc_conn_state(ca), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(cb), SMC_CLOSED);
	usmc_conn_del(ca);
	usmc_conn_del(cb);
}

static usmc_lgr_info lgr_info_of(side *s)
{
	usmc_lgr_info li;
	usmc_lgr *l = usmc_ctx_next_lgr(s->ctx, NULL);

	memset(&li, 0, sizeof(li));
	CU_ASSERT_FATAL(l != NULL);
	usmc_lgr_get_info(l, &li);
	return li;
}

/* smc_buf_unuse for SMC-D: a closed connection's DMB stays registered
 * with its link group, and the next connection of that link group takes
 * it (no register_dmb, the same token in its Accept or Confirm) as clean
 * as a new one: all zero (the harness checks every byte at reuse), the
 * cursors from 0, the data compared byte by byte. One that aborted, or
 * was still in use, is not taken; the link group's end unregisters all. */
static void test_dmb_reuse(void)
{
	side a, b;
	usmc_conn *ca, *cb, *ca2, *cb2, *ca3, *cb3;
	usmc_clc_msg p, ac, cf;
	uint64_t ta, tb, nreg;
	stream s1, s2;
	usmc_conn_info ia, ib;
	usmc_tstamp t = 600 * SEC;

	smcd_h_reuse = 1;
	n_registered = n_reused = n_reused_dirty = 0;
	pair_init(&a, &b, 0x1111, 0);
	handshake(&a, &ca, &b, &cb, &p, &ac, &cf);
	tb = ac.u.ac.d_token;
	ta = cf.u.ac.d_token;
	/* more than the 16352-byte ring one way (every byte of it
	 * written), less the other */
	s1 = (stream){&a, &b, ca, cb, 21, 40000, 0, 0, 0, 31};
	s2 = (stream){&b, &a, cb, ca, 22, 3000, 0, 0, 0, 32};
	run_streams(&s1, &s2);
	close_pair(&a, ca, &b, cb, 2);
	USMC_ASSERT_EQ(ndmbs(), 2);
	USMC_ASSERT_EQ(lgr_info_of(&a).dmbs_kept, 1);
	USMC_ASSERT_EQ(lgr_info_of(&b).dmbs_kept, 1);
	nreg = n_registered;
	USMC_ASSERT_EQ(nreg, 2);

	/* the next connection of the link group: both DMBs again */
	handshake(&a, &ca2, &b, &cb2, &p, &ac, &cf);
	CU_ASSERT(!(ac.hdr.typev2 & SMC_FIRST_CONTACT_MASK));
	assert_smcd_up(ca2, cb2);
	assert_smcd_up(cb2, ca2);
	CU_ASSERT(ac.u.ac.d_token == tb && cf.u.ac.d_token == ta);
	USMC_ASSERT_EQ(n_registered, nreg);
	USMC_ASSERT_EQ(n_reused, 2);
	USMC_ASSERT_EQ(n_reused_dirty, 0);
	USMC_ASSERT_EQ(lgr_info_of(&a).dmbs_kept, 0);
	USMC_ASSERT_EQ(lgr_info_of(&b).dmbs_reused, 1);
	s1 = (stream){&a, &b, ca2, cb2, 23, 5000, 0, 0, 0, 33};
	s2 = (stream){&b, &a, cb2, ca2, 24, 50000, 0, 0, 0, 34};
	run_streams(&s1, &s2);
	usmc_conn_get_info(ca2, &ia);
	usmc_conn_get_info(cb2, &ib);
	CU_ASSERT(ia.bytes_received == 50000 && ib.bytes_received == 5000);

	/* a third one while the second lives: new DMBs */
	handshake(&a, &ca3, &b, &cb3, &p, &ac, &cf);
	assert_smcd_up(ca3, cb3);
	USMC_ASSERT_EQ(n_registered, nreg + 2);
	USMC_ASSERT_EQ(ndmbs(), 4);
	/* it aborts: its DMBs are not kept */
	USMC_ASSERT_EQ(usmc_conn_abort(ca3, 3), 0);
	settle(&a, ca3, &b, cb3);
	USMC_ASSERT_EQ(usmc_conn_close(cb3, 3), 0);
	settle(&a, ca3, &b, cb3);
	usmc_conn_del(ca3);
	usmc_conn_del(cb3);
	USMC_ASSERT_EQ(ndmbs(), 2);
	close_pair(&b, cb2, &a, ca2, 4);
	USMC_ASSERT_EQ(ndmbs(), 2);
	USMC_ASSERT_EQ(lgr_info_of(&a).dmbs_kept, 1);
	USMC_ASSERT_EQ(lgr_info_of(&b).dmbs_kept, 1);
	USMC_ASSERT_EQ(bad_ops, 0);
	USMC_ASSERT_EQ(late_ops, 0);

	/* the idle link groups end (the server's first), and with them
	 * their DMBs */
	for (int k = 0; k < 2; k++) {
		usmc_ctx_handle_expiry(a.ctx, t + 2);
		usmc_ctx_handle_expiry(b.ctx, t + 2);
	}
	CU_ASSERT(usmc_ctx_next_lgr(b.ctx, NULL) == NULL);
	USMC_ASSERT_EQ(ndmbs(), 1);
	for (int k = 0; k < 2; k++)
		usmc_ctx_handle_expiry(a.ctx, t + 10 * SEC + 2);
	CU_ASSERT(usmc_ctx_next_lgr(a.ctx, NULL) == NULL);
	USMC_ASSERT_EQ(ndmbs(), 0);
	pair_fini(&a, &b);
	smcd_h_reuse = 0;
}

static CU_TestInfo smcd_tests[] = {
	{"handshake", test_handshake},
	{"not_chosen", test_not_chosen},
	{"stream_64MiB_both_ways", test_stream},
	{"dmb_size", test_dmb_size},
	{"half_close", test_half_close},
	{"abort", test_abort},
	{"peer_gone_one_conn", test_peer_gone_one_conn},
	{"attached_stream", test_attached_stream},
	{"attached_window", test_attached_window},
	{"attached_overflow", test_attached_overflow},
	{"attached_overflow_again", test_attached_overflow_again},
	{"attached_peer_gone", test_attached_peer_gone},
	{"hostile_headers", test_hostile},
	{"hostile_random", test_hostile_random},
	{"hostile_clc", test_hostile_clc},
	{"data_before_confirm", test_data_before_confirm},
	{"idle_lgr", test_idle_lgr},
	{"dmb_reuse", test_dmb_reuse},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_smcd", smcd_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
