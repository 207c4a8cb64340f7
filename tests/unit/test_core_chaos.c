/* SPDX-License-Identifier: MIT */
/*
 * Seeded random scenarios between honest peers: several connections on
 * one link group, random writes, reads, shutdowns, closes and aborts on
 * both sides, random RC delays. Checked: every byte read is the byte
 * written at that offset, cursors stay consistent, no RDMA access outside
 * registered memory, and once both sides have closed every connection
 * reaches CLOSED and releases its buffers (the lgr then idles out).
 */
#include "usmc_core_int.h"
#include "usmc_core_test.h"

enum { NCONN = 10, SEEDS = 300 };

typedef struct side {
	usmc_sim_ep *ep;
	uint64_t wrote, got; /* bytes of the pattern written / read */
	int shut, closed, aborted;
	uint32_t seed;
} side;

static void invariants(usmc_ctx *ctx)
{
	for (usmc_conn *c = ctx->conns; c; c = c->next) {
		CU_ASSERT_TRUE(c->tx_fin <= c->tx_sent);
		CU_ASSERT_TRUE(c->tx_sent <= c->tx_prep);
		CU_ASSERT_TRUE(c->rx_cons <= c->rx_prod);
		CU_ASSERT_TRUE(c->rx_cons_sent <= c->rx_cons);
		CU_ASSERT_TRUE(c->peer_cons <= c->tx_sent);
	}
}

static void act(usmc_sim *sim, side *me, side *peer, uint64_t *rng)
{
	static uint8_t buf[40000];
	usmc_tstamp now = usmc_sim_now(sim);
	usmc_conn *conn = me->ep->conn;
	unsigned int r = (unsigned int)(xrand(rng) % 100);

	if (me->closed || me->aborted)
		return;
	if (r < 45 && !me->shut) {
		size_t n = 1 + (size_t)(xrand(rng) % sizeof(buf));
		usmc_ssize k;

		for (size_t i = 0; i < n; i++)
			buf[i] = pat(me->seed, me->wrote + i);
		k = usmc_conn_write(conn, buf, n, now);
		if (k > 0)
			me->wrote += (uint64_t)k;
	} else if (r < 90) {
		size_t n = 1 + (size_t)(xrand(rng) % sizeof(buf));
		usmc_ssize k = usmc_conn_read(conn, buf, n, now);

		for (usmc_ssize i = 0; i < k; i++)
			if (buf[i] != pat(peer->seed, me->got + (uint64_t)i))
				CU_FAIL("byte differs");
		if (k > 0)
			me->got += (uint64_t)k;
	} else if (r < 95) {
		usmc_conn_shutdown_write(conn, now);
		me->shut = 1;
	} else if (r < 99) {
		/* drain first most of the time: close, not abort */
		if (xrand(rng) % 4) {
			usmc_ssize k;

			while ((k = usmc_conn_read(conn, buf, sizeof(buf),
						   now)) > 0) {
				for (usmc_ssize i = 0; i < k; i++)
					if (buf[i] !=
					    pat(peer->seed,
						me->got + (uint64_t)i))
						CU_FAIL("byte differs");
				me->got += (uint64_t)k;
			}
		}
		usmc_conn_close(conn, now);
		me->closed = 1;
	} else {
		usmc_conn_abort(conn, now);
		me->aborted = 1;
	}
}

static void scenario(uint64_t seed)
{
	usmc_settings st = small_settings(seed % 2 ? 16384 : 32768);
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a, *b;
	static side cs[NCONN], ss[NCONN];
	uint64_t rng = seed * 0x9e3779b97f4a7c15ull + 7;

	st.testlink_time = 3 * SEC;
	st.send_wr = (uint16_t)(2 + seed % 5);
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	usmc_sim_set_delay_prob(sim, 0.01 * (double)(seed % 4));
	for (int i = 0; i < NCONN; i++) {
		memset(&cs[i], 0, sizeof(cs[i]));
		memset(&ss[i], 0, sizeof(ss[i]));
		USMC_ASSERT_EQ_FATAL(
			usmc_sim_connect(sim, a, b, &cs[i].ep, &ss[i].ep), 0);
		cs[i].seed = (uint32_t)(seed * 100 + (uint64_t)i);
		ss[i].seed = (uint32_t)(seed * 100 + 50 + (uint64_t)i);
		if (!i)
			usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
	}
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
	for (int i = 0; i < NCONN; i++)
		CU_ASSERT_TRUE_FATAL(established(cs[i].ep) &&
				     established(ss[i].ep));
	for (int step = 0; step < 400; step++) {
		int i = (int)(xrand(&rng) % NCONN);

		if (xrand(&rng) & 1)
			act(sim, &cs[i], &ss[i], &rng);
		else
			act(sim, &ss[i], &cs[i], &rng);
		usmc_sim_run(sim,
			     usmc_sim_now(sim) + (xrand(&rng) % 200) * 1000);
		if (step % 50 == 0) {
			invariants(usmc_sim_node_ctx(a));
			invariants(usmc_sim_node_ctx(b));
		}
	}
	/* everyone closes at the end */
	for (int i = 0; i < NCONN; i++) {
		if (!cs[i].closed && !cs[i].aborted)
			usmc_conn_close(cs[i].ep->conn, usmc_sim_now(sim));
		if (!ss[i].closed && !ss[i].aborted)
			usmc_conn_close(ss[i].ep->conn, usmc_sim_now(sim));
	}
	/* 2 s stream wait for flags stuck behind data nobody reads */
	usmc_sim_run(sim, usmc_sim_now(sim) + 5 * SEC);
	invariants(usmc_sim_node_ctx(a));
	invariants(usmc_sim_node_ctx(b));
	for (int i = 0; i < NCONN; i++) {
		for (int k = 0; k < 2; k++) {
			const usmc_conn *x = (k ? ss : cs)[i].ep->conn;

			if (x->state != SMC_CLOSED)
				fprintf(stderr,
					"seed %llu conn %d %s: state %d flags "
					"want %02x sent %02x peer %02x, %llu "
					"unsent, %llu unread\n",
					(unsigned long long)seed, i,
					k ? "server" : "client", x->state,
					x->close_flags_want,
					x->close_flags_sent, x->peer_conn_flags,
					(unsigned long long)(x->tx_prep -
							     x->tx_sent),
					(unsigned long long)(x->rx_prod -
							     x->rx_cons));
		}
		USMC_ASSERT_EQ(usmc_conn_state(cs[i].ep->conn), SMC_CLOSED);
		USMC_ASSERT_EQ(usmc_conn_state(ss[i].ep->conn), SMC_CLOSED);
		/* no byte beyond what the peer wrote */
		CU_ASSERT_TRUE(cs[i].got <= ss[i].wrote);
		CU_ASSERT_TRUE(ss[i].got <= cs[i].wrote);
	}
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	/* all closed: buffers back in the pool, the lgr idles out */
	usmc_sim_run(sim, usmc_sim_now(sim) + 700 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_del(sim);
}

static void test_chaos(void)
{
	for (uint64_t seed = 1; seed <= SEEDS; seed++)
		scenario(seed);
}

static CU_TestInfo chaos_tests[] = {
	{"random_ops_honest_peers", test_chaos},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_chaos", chaos_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
