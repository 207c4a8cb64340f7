/* SPDX-License-Identifier: MIT */
/*
 * The CDC data path over the sim fabric: byte-exact transfers both ways
 * across many RMBE wraps with 16 KiB buffers, large and tiny writes,
 * write_blocked and consumer-cursor updates, autocorking, 64 connections
 * sharing one link group, and extra delay (RC retransmits).
 */
#include "usmc_cdc.h"
#include "usmc_core_int.h" /* test_lgr_type adds a link by hand */
#include "usmc_core_test.h"

static void setup(usmc_sim **sim, usmc_sim_node **a, usmc_sim_node **b,
		  uint32_t bufsize, uint64_t seed)
{
	usmc_settings st = small_settings(bufsize);

	*sim = usmc_sim_new(seed);
	*a = usmc_sim_node_new(*sim, &st);
	*b = usmc_sim_node_new(*sim, &st);
}

/* |p1| and |p2| (set up) run at once to their end, each byte read as it
 * was written. */
static void pumps_both_ways(usmc_sim *sim, pump *p1, pump *p2)
{
	pump *ps[2] = {p1, p2};

	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, usmc_sim_now(sim) + 600 * SEC), 0);
	USMC_ASSERT_EQ(p1->readn, p1->total);
	USMC_ASSERT_EQ(p2->readn, p2->total);
	USMC_ASSERT_EQ(p1->bad, 0);
	USMC_ASSERT_EQ(p2->bad, 0);
}

static void test_wraps_both_ways(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static pump p1, p2;
	usmc_conn_info ci, si;
	const uint64_t total = 16384 * 40 + 777; /* 40+ wraps of 16 KiB */

	setup(&sim, &a, &b, 16384, 21);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	pump_init(&p1, c, s, total, 1, 5000);
	pump_init(&p2, s, c, total, 2, 9000);
	pumps_both_ways(sim, &p1, &p2);
	CU_ASSERT_TRUE(p1.wouldblock > 0); /* the sndbuf filled up */
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	usmc_conn_get_info(c->conn, &ci);
	usmc_conn_get_info(s->conn, &si);
	USMC_ASSERT_EQ(ci.bytes_sent, total);
	USMC_ASSERT_EQ(si.bytes_received, total);
	USMC_ASSERT_EQ(ci.rmb_size, 16384);
	USMC_ASSERT_EQ(ci.peer_rmb_size, 16384);
	/* cursors agree: what one produced the other consumed */
	USMC_ASSERT_EQ(ci.tx_prod.wrap, si.rx_prod.wrap);
	USMC_ASSERT_EQ(ci.tx_prod.count, si.rx_prod.count);
	USMC_ASSERT_EQ(si.rx_prod.wrap, total / 16384);
	USMC_ASSERT_EQ(si.rx_prod.count, total % 16384);
	USMC_ASSERT_EQ(usmc_conn_unsent(c->conn), 0);
	USMC_ASSERT_EQ(usmc_conn_writable(c->conn), 16384);
	/* counters agree across the link */
	USMC_ASSERT_EQ(ci.tx_cdcs, si.rx_cdcs);
	USMC_ASSERT_EQ(si.tx_cdcs, ci.rx_cdcs);
	CU_ASSERT_TRUE(ci.tx_rdma_writes >= total / 16384);
	CU_ASSERT_TRUE(ci.tx_peer_buf_full > 0);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	usmc_sim_del(sim);
}

/* The one link of |node|'s one link group, after the transfer. */
static void one_link(usmc_sim_node *node, usmc_lgr_info *li)
{
	usmc_ctx *ctx = usmc_sim_node_ctx(node);
	usmc_lgr *g = usmc_ctx_next_lgr(ctx, NULL);

	memset(li, 0, sizeof(*li));
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(ctx, g));
	usmc_lgr_get_info(g, li);
	USMC_ASSERT_EQ(li->nlinks, 1);
	USMC_ASSERT_EQ(li->type, USMC_LGR_SINGLE);
	CU_ASSERT_STRING_EQUAL(usmc_lgr_type_name(li->type), "SINGLE");
	USMC_ASSERT_EQ(li->links[0].state, USMC_LINK_ACTIVE);
	USMC_ASSERT_EQ(li->links[0].active, 1);
	CU_ASSERT_STRING_EQUAL(usmc_link_state_name(li->links[0].state),
			       "ACTIVE");
}

/* The per-link counters (usmc_lgr_info.links[]) against what the test
 * and the fabric counted on their own: the RDMA WRITE bytes are the
 * application's bytes, to the byte; every SEND one side handed out is a
 * receive the other side took; the fabric placed as many WRITEs, bytes
 * and SENDs as both links handed out. */
static void test_link_counters(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static pump p1, p2;
	usmc_conn_info ci, si;
	usmc_lgr_info la, lb;
	const usmc_sim_stats *st;
	const uint64_t t1 = 16384 * 25 + 123, t2 = 16384 * 7 + 5;

	setup(&sim, &a, &b, 16384, 77);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	pump_init(&p1, c, s, t1, 3, 7000);
	pump_init(&p2, s, c, t2, 4, 3000);
	pumps_both_ways(sim, &p1, &p2);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	usmc_conn_get_info(c->conn, &ci);
	usmc_conn_get_info(s->conn, &si);
	one_link(a, &la);
	one_link(b, &lb);
	USMC_ASSERT_EQ(ci.link_id, la.links[0].link_id);
	USMC_ASSERT_EQ(si.link_id, lb.links[0].link_id);
	USMC_ASSERT_EQ(ci.failovers, 0);
	USMC_ASSERT_EQ(si.failovers, 0);
	/* the two ends of one link */
	USMC_ASSERT_EQ(la.links[0].qp_num, lb.links[0].peer_qpn);
	USMC_ASSERT_EQ(lb.links[0].qp_num, la.links[0].peer_qpn);
	/* data bytes: exactly what each application wrote */
	USMC_ASSERT_EQ(la.links[0].tx_bytes, t1);
	USMC_ASSERT_EQ(lb.links[0].tx_bytes, t2);
	/* each side's SENDs (its WRs less its WRITEs) the other received */
	USMC_ASSERT_EQ(lb.links[0].rx_wrs,
		       la.links[0].tx_wrs - ci.tx_rdma_writes);
	USMC_ASSERT_EQ(la.links[0].rx_wrs,
		       lb.links[0].tx_wrs - si.tx_rdma_writes);
	CU_ASSERT_TRUE(la.links[0].rx_wrs >= ci.rx_cdcs);
	CU_ASSERT_TRUE(lb.links[0].rx_wrs >= si.rx_cdcs);
	/* v1 CDC and LLC messages are 44 bytes each */
	USMC_ASSERT_EQ(la.links[0].rx_bytes,
		       (uint64_t)USMC_WR_TX_SIZE * la.links[0].rx_wrs);
	USMC_ASSERT_EQ(lb.links[0].rx_bytes,
		       (uint64_t)USMC_WR_TX_SIZE * lb.links[0].rx_wrs);
	/* and the fabric's own counts of what it placed */
	st = usmc_sim_get_stats(sim);
	USMC_ASSERT_EQ(st->write_bytes, t1 + t2);
	USMC_ASSERT_EQ(st->writes, ci.tx_rdma_writes + si.tx_rdma_writes);
	USMC_ASSERT_EQ(st->sends, la.links[0].rx_wrs + lb.links[0].rx_wrs);
	USMC_ASSERT_EQ(st->writes + st->sends,
		       la.links[0].tx_wrs + lb.links[0].tx_wrs);
	usmc_sim_del(sim);
}

/* The link group's type as usmc_lgr_get_info derives it, with a second
 * link added by hand (white box: no LLC flow adds one yet) on either
 * local device, to the first link's peer GID or another, active or not. */
static void test_lgr_type(void)
{
	static const struct {
		unsigned int dev;
		int same_peer, state, type;
	} cases[] = {
		{1, 0, USMC_LNK_ACTIVE, USMC_LGR_SYMMETRIC},
		{0, 0, USMC_LNK_ACTIVE, USMC_LGR_ASYMMETRIC_LOCAL},
		{1, 1, USMC_LNK_ACTIVE, USMC_LGR_ASYMMETRIC_PEER},
		{0, 1, USMC_LNK_ACTIVE, USMC_LGR_ASYMMETRIC_LOCAL},
		{1, 0, USMC_LNK_ACTIVATING, USMC_LGR_SINGLE},
	};
	static const char *const names[] = {"NONE", "SINGLE", "SYM", "ASYMP",
					    "ASYML"};
	usmc_settings st = small_settings(16384);
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_lgr_info li;
	usmc_lgr *g;

	st.ndevices = 2;
	sim = usmc_sim_new(5);
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	g = usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		usmc_link *l1 = NULL, *l2 = NULL;

		for (int k = 0; k < USMC_LINKS_MAX; k++)
			if (g->links[k])
				l1 = g->links[k];
		CU_ASSERT_PTR_NOT_NULL_FATAL(l1);
		USMC_ASSERT_EQ_FATAL(usmc_link_create(g, cases[i].dev, &l2), 0);
		l2->link_id = 2;
		l2->state = cases[i].state;
		memcpy(l2->peer_gid, l1->peer_gid, 16);
		if (!cases[i].same_peer)
			l2->peer_gid[15] ^= 0x40;
		usmc_lgr_get_info(g, &li);
		USMC_ASSERT_EQ(li.nlinks, 2);
		USMC_ASSERT_EQ(li.type, cases[i].type);
		CU_ASSERT_STRING_EQUAL(usmc_lgr_type_name(li.type),
				       names[cases[i].type]);
		for (unsigned int k = 0; k < li.nlinks; k++) {
			if (li.links[k].link_id != 2)
				continue;
			USMC_ASSERT_EQ(li.links[k].dev_idx, cases[i].dev);
			USMC_ASSERT_EQ(li.links[k].state, cases[i].state);
			USMC_ASSERT_EQ(li.links[k].tx_wrs, 0);
		}
		l2->state = USMC_LNK_INACTIVE;
		usmc_link_free(l2);
	}
	usmc_lgr_get_info(g, &li);
	USMC_ASSERT_EQ(li.nlinks, 1);
	USMC_ASSERT_EQ(li.type, USMC_LGR_SINGLE);
	CU_ASSERT_STRING_EQUAL(usmc_lgr_type_name(99), "?");
	CU_ASSERT_STRING_EQUAL(usmc_link_state_name(-1), "?");
	usmc_sim_del(sim);
}

/* Different sndbuf and RMB sizes on each side: writes split at the peer's
 * RMBE end and at our sndbuf end independently. */
static void test_asymmetric_sizes(void)
{
	usmc_settings sa = small_settings(16384), sb = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(32);
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static pump p1, p2;
	usmc_conn_info ci;

	sa.sndbuf_size = 65536;
	sa.rmb_size = 16384;
	sb.sndbuf_size = 16384;
	sb.rmb_size = 131072;
	a = usmc_sim_node_new(sim, &sa);
	b = usmc_sim_node_new(sim, &sb);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	usmc_conn_get_info(c->conn, &ci);
	USMC_ASSERT_EQ(ci.sndbuf_size, 65536);
	USMC_ASSERT_EQ(ci.rmb_size, 16384);
	USMC_ASSERT_EQ(ci.peer_rmb_size, 131072);
	pump_init(&p1, c, s, 1500000, 11, 40000);
	pump_init(&p2, s, c, 700000, 12, 9999);
	pumps_both_ways(sim, &p1, &p2);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	usmc_sim_del(sim);
}

/* One write of several RMB sizes, and reads in one big gulp. */
static void test_large_writes(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static pump p;
	pump *ps[1] = {&p};

	setup(&sim, &a, &b, 65536, 22);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	pump_init(&p, c, s, 4u << 20, 3, 1 << 17);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 1, usmc_sim_now(sim) + 600 * SEC), 0);
	USMC_ASSERT_EQ(p.readn, 4u << 20);
	USMC_ASSERT_EQ(p.bad, 0);
	/* big writes cost few CDCs: at most ~2 per sndbuf's worth */
	CU_ASSERT_TRUE(usmc_sim_get_stats(sim)->sends < 4 * (4u << 20) / 65536);
	usmc_sim_del(sim);
}

/* Many tiny writes while a CDC is in flight are corked into few CDCs. */
static void test_autocork(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	uint8_t byte, out[4096];
	uint64_t sends0;
	usmc_tstamp now;
	size_t got = 0;

	setup(&sim, &a, &b, 65536, 23);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	sends0 = usmc_sim_get_stats(sim)->sends;
	now = usmc_sim_now(sim);
	for (int i = 0; i < 1000; i++) {
		byte = pat(9, (uint64_t)i);
		USMC_ASSERT_EQ(usmc_conn_write(c->conn, &byte, 1, now), 1);
	}
	usmc_sim_run_idle(sim, now + SEC);
	CU_ASSERT_TRUE(usmc_sim_get_stats(sim)->sends - sends0 < 10);
	/* with nodelay every write goes out at once, while TX slots last */
	usmc_conn_set_nodelay(c->conn, 1);
	sends0 = usmc_sim_get_stats(sim)->sends;
	for (int i = 0; i < 100; i++) {
		byte = pat(9, (uint64_t)(1000 + i));
		usmc_conn_write(c->conn, &byte, 1, now);
	}
	usmc_sim_run_idle(sim, now + SEC);
	CU_ASSERT_TRUE(usmc_sim_get_stats(sim)->sends - sends0 >= 16);
	usmc_conn_set_nodelay(c->conn, 0);
	while (got < 1100) {
		usmc_ssize k = usmc_conn_read(s->conn, out + got,
					      sizeof(out) - got, now);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	USMC_ASSERT_EQ(got, 1100);
	for (size_t i = 0; i < got; i++)
		if (out[i] != pat(9, i))
			CU_FAIL("byte differs");
	usmc_sim_del(sim);
}

/* The receiver does not read: the writer fills the peer RMBE, gets
 * write_blocked, and resumes as soon as the reader drains (consumer cursor
 * update). Small reads below the update limit send no CDC. */
static void test_window(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static uint8_t buf[65536];
	usmc_tstamp now;
	uint64_t sends;
	unsigned int writable;
	usmc_conn_info si;
	usmc_ssize k;
	size_t wrote = 0;

	setup(&sim, &a, &b, 16384, 24);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	now = usmc_sim_now(sim);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat(4, i);
	/* 16 KiB in the peer's RMB + 16 KiB in our sndbuf, then full */
	for (int round = 0; round < 4; round++) {
		k = usmc_conn_write(c->conn, buf + wrote, sizeof(buf) - wrote,
				    now);
		if (k > 0)
			wrote += (size_t)k;
		usmc_sim_run_idle(sim, now + SEC);
		now = usmc_sim_now(sim);
	}
	USMC_ASSERT_EQ(wrote, 32768);
	USMC_ASSERT_EQ(usmc_conn_readable(s->conn), 16384);
	USMC_ASSERT_EQ(usmc_conn_write(c->conn, buf, 1, now),
		       USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(usmc_conn_writable(c->conn), 0);

	/* a read under the 10% limit sends nothing */
	sends = usmc_sim_get_stats(sim)->sends;
	{
		uint8_t out[1000];

		USMC_ASSERT_EQ(usmc_conn_read(s->conn, out, 1000, now), 1000);
		USMC_ASSERT_MEM_EQ(out, buf, 1000);
	}
	usmc_sim_run_idle(sim, now + SEC);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->sends, sends);
	/* draining more: the update goes out, the writer's data follows */
	{
		static uint8_t out[16384];

		USMC_ASSERT_EQ(usmc_conn_read(s->conn, out, 15384, now), 15384);
		USMC_ASSERT_MEM_EQ(out, buf + 1000, 15384);
	}
	writable = c->ev[USMC_EV_WRITABLE];
	usmc_sim_run_idle(sim, now + SEC);
	CU_ASSERT_TRUE(usmc_sim_get_stats(sim)->sends > sends);
	USMC_ASSERT_EQ(usmc_conn_readable(s->conn), 16384);
	/* the WOULDBLOCK above asked for a WRITABLE event */
	USMC_ASSERT_EQ(c->ev[USMC_EV_WRITABLE], writable + 1);
	usmc_conn_get_info(s->conn, &si);
	USMC_ASSERT_EQ(si.rx_prod.wrap, 2);
	USMC_ASSERT_EQ(si.rx_prod.count, 0);
	{
		static uint8_t out[16384];

		USMC_ASSERT_EQ(usmc_conn_read(s->conn, out, sizeof(out), now),
			       16384);
		USMC_ASSERT_MEM_EQ(out, buf + 16384, 16384);
	}
	usmc_sim_del(sim);
}

/* 64 connections share one link group and 16 TX slots; each moves its own
 * pattern both ways at the same time. */
static void test_64_conns(void)
{
	enum { N = 64 };
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	static usmc_sim_ep *c[N], *s[N];
	static pump p[2 * N];
	static pump *ps[2 * N];
	uint32_t lgr = 0;

	setup(&sim, &a, &b, 16384, 25);
	for (int i = 0; i < N; i++) {
		USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c[i], &s[i]),
				     0);
		if (i == 0)
			usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
	}
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
	for (int i = 0; i < N; i++) {
		usmc_conn_info ci;

		CU_ASSERT_TRUE_FATAL(established(c[i]) && established(s[i]));
		usmc_conn_get_info(c[i]->conn, &ci);
		if (!lgr)
			lgr = ci.lgr_id;
		USMC_ASSERT_EQ(ci.lgr_id, lgr);
		pump_init(&p[2 * i], c[i], s[i], 50000 + (uint64_t)i * 1000,
			  (uint32_t)(100 + i), 3000);
		pump_init(&p[2 * i + 1], s[i], c[i], 30000, (uint32_t)(200 + i),
			  7000);
		ps[2 * i] = &p[2 * i];
		ps[2 * i + 1] = &p[2 * i + 1];
	}
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->qps, 2);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2 * N, usmc_sim_now(sim) + 600 * SEC),
		       0);
	for (int i = 0; i < 2 * N; i++) {
		USMC_ASSERT_EQ(p[i].readn, p[i].total);
		USMC_ASSERT_EQ(p[i].bad, 0);
	}
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	usmc_sim_del(sim);
}

/* Seeded RC retransmit delays reorder nothing: still byte-exact. */
static void test_delays(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};

	setup(&sim, &a, &b, 16384, 26);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	usmc_sim_set_delay_prob(sim, 0.05);
	pump_init(&p1, c, s, 300000, 5, 4000);
	pump_init(&p2, s, c, 200000, 6, 20000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, usmc_sim_now(sim) + 3600 * SEC),
		       0);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	USMC_ASSERT_EQ(p1.readn, 300000);
	USMC_ASSERT_EQ(p2.readn, 200000);
	usmc_sim_del(sim);
}

/* The same seed replays the same run exactly. */
static void test_deterministic(void)
{
	uint64_t sends[2], t[2];

	for (int r = 0; r < 2; r++) {
		usmc_sim *sim;
		usmc_sim_node *a, *b;
		usmc_sim_ep *c, *s;
		static pump p;
		pump *ps[1] = {&p};

		setup(&sim, &a, &b, 16384, 27);
		usmc_sim_set_delay_prob(sim, 0.02);
		sim_pair(sim, a, b, &c, &s);
		pump_init(&p, c, s, 100000, 7, 3000);
		pumps_run(sim, ps, 1, usmc_sim_now(sim) + 600 * SEC);
		sends[r] = usmc_sim_get_stats(sim)->sends;
		t[r] = usmc_sim_now(sim);
		usmc_sim_del(sim);
	}
	USMC_ASSERT_EQ(sends[0], sends[1]);
	USMC_ASSERT_EQ(t[0], t[1]);
}

/* On a reused lgr the client is established when it sends its Confirm;
 * its first CDC overtakes the Confirm (RDMA is faster than TCP here) and
 * the server must keep the data and report it once established. */
static void test_early_data(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *c2, *s2;
	uint8_t buf[16];
	int guard = 0;

	setup(&sim, &a, &b, 16384, 29);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c2, &s2), 0);
	while (!c2->ev[USMC_EV_ESTABLISHED] && guard++ < 100000)
		usmc_sim_run(sim, usmc_sim_now(sim) + 1000);
	CU_ASSERT_TRUE_FATAL(established(c2));
	USMC_ASSERT_EQ(s2->ev[USMC_EV_ESTABLISHED], 0);
	USMC_ASSERT_EQ(usmc_conn_write(c2->conn, (const uint8_t *)"early", 5,
				       usmc_sim_now(sim)),
		       5);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	CU_ASSERT_TRUE(established(s2));
	CU_ASSERT_TRUE(s2->ev[USMC_EV_READABLE] >= 1);
	USMC_ASSERT_EQ(
		usmc_conn_read(s2->conn, buf, sizeof(buf), usmc_sim_now(sim)),
		5);
	USMC_ASSERT_MEM_EQ(buf, "early", 5);
	usmc_sim_del(sim);
}

/* Two TX slots per link for 16 connections that are set up while data
 * flows: LLC responses wait for slots instead of being lost. */
static void test_tiny_wr_pool(void)
{
	enum { N = 16 };
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(30);
	usmc_sim_node *a, *b;
	static usmc_sim_ep *c[N], *s[N];
	static pump p[N];
	static pump *ps[N];

	st.send_wr = 2;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[0], &s[0]), 0);
	pump_init(&p[0], s[0], c[0], 200000, 300, 8000);
	ps[0] = &p[0];
	pump_step(&p[0], sim);
	for (int i = 1; i < N; i++) {
		USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c[i], &s[i]),
				     0);
		usmc_sim_run(sim, usmc_sim_now(sim) + 3000);
		pump_step(&p[0], sim);
	}
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 30 * SEC);
	for (int i = 1; i < N; i++) {
		CU_ASSERT_TRUE_FATAL(established(c[i]) && established(s[i]));
		pump_init(&p[i], c[i], s[i], 20000, (uint32_t)(300 + i), 5000);
		ps[i] = &p[i];
	}
	USMC_ASSERT_EQ(pumps_run(sim, ps, N, usmc_sim_now(sim) + 600 * SEC), 0);
	for (int i = 0; i < N; i++)
		USMC_ASSERT_EQ(p[i].bad, 0);
	usmc_sim_del(sim);
}

/* More than 65536 wraps of a 16 KiB RMBE (1 GiB): the 16-bit wrap field
 * rolls over and nothing notices. */
static void test_wrap_rollover(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static pump p;
	pump *ps[1] = {&p};
	usmc_conn_info si;
	const uint64_t total = (65536ull + 100) * 16384 + 12345;

	setup(&sim, &a, &b, 16384, 31);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	pump_init(&p, c, s, total, 8, 1 << 17);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 1, usmc_sim_now(sim) + 10000 * SEC),
		       0);
	USMC_ASSERT_EQ(p.readn, total);
	USMC_ASSERT_EQ(p.bad, 0);
	usmc_conn_get_info(s->conn, &si);
	USMC_ASSERT_EQ(si.rx_prod.wrap, (uint16_t)(total / 16384));
	USMC_ASSERT_EQ(si.rx_prod.count, total % 16384);
	usmc_sim_del(sim);
}

static void test_bad_calls(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c;
	uint8_t x = 0;

	setup(&sim, &a, &b, 16384, 28);
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_CLIENT, &c),
			     0);
	/* no data path during the handshake */
	USMC_ASSERT_EQ(usmc_conn_write(c->conn, &x, 1, 0),
		       USMC_ERR_INVALID_STATE);
	USMC_ASSERT_EQ(usmc_conn_read(c->conn, &x, 1, 0),
		       USMC_ERR_INVALID_STATE);
	USMC_ASSERT_EQ(usmc_conn_write(NULL, &x, 1, 0),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_conn_readable(c->conn), 0);
	USMC_ASSERT_EQ(usmc_conn_writable(c->conn), 0);
	usmc_sim_del(sim);
}

static CU_TestInfo data_tests[] = {
	{"wraps_both_ways_16k", test_wraps_both_ways},
	{"large_writes", test_large_writes},
	{"asymmetric_sizes", test_asymmetric_sizes},
	{"autocork", test_autocork},
	{"window_write_blocked", test_window},
	{"64_conns_one_lgr", test_64_conns},
	{"rc_delays", test_delays},
	{"deterministic", test_deterministic},
	{"early_data_before_confirm", test_early_data},
	{"tiny_wr_pool", test_tiny_wr_pool},
	{"wrap16_rollover_1gib", test_wrap_rollover},
	{"bad_calls", test_bad_calls},
	{"link_counters", test_link_counters},
	{"lgr_type", test_lgr_type},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_data", data_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
