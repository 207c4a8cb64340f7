/* SPDX-License-Identifier: MIT */
/*
 * Close, abort and link failure over the sim fabric: orderly close from
 * either side with the kernel's state sequence, half-close both ways,
 * abort, close with unread data, TEST_LINK keepalive, a hung peer and a
 * lost path (lgr terminated, connections aborted), idle lgr deletion (also
 * at exit), a peer whose process died, and
 * hostile CDC/LLC messages (abort, never corruption).
 */
#include "usmc_cdc.h"
#include "usmc_clc.h"
#include "usmc_core_test.h"
#include "usmc_llc.h"

/* |keep_rkey|: usmc_settings.rmb_keep_rkey of both nodes */
static void setup_keep(usmc_sim **sim, usmc_sim_node **a, usmc_sim_node **b,
		       usmc_sim_ep **c, usmc_sim_ep **s, uint64_t seed,
		       usmc_duration testlink, int keep_rkey)
{
	usmc_settings st = small_settings(16384);

	st.testlink_time = testlink;
	st.testlink_wait = 2 * SEC; /* the kernel's SMC_LLC_WAIT_TIME */
	st.rmb_keep_rkey = keep_rkey;
	*sim = usmc_sim_new(seed);
	*a = usmc_sim_node_new(*sim, &st);
	*b = usmc_sim_node_new(*sim, &st);
	USMC_ASSERT_EQ_FATAL(sim_pair(*sim, *a, *b, c, s), 0);
	CU_ASSERT_TRUE_FATAL(established(*c) && established(*s));
}

static void setup(usmc_sim **sim, usmc_sim_node **a, usmc_sim_node **b,
		  usmc_sim_ep **c, usmc_sim_ep **s, uint64_t seed,
		  usmc_duration testlink)
{
	setup_keep(sim, a, b, c, s, seed, testlink, 1);
}

static void settle(usmc_sim *sim)
{
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
}

static usmc_ssize rd(usmc_sim_ep *ep, uint8_t *buf, size_t n)
{
	return usmc_conn_read(ep->conn, buf, n, usmc_sim_now(ep->sim));
}

static usmc_ssize wr(usmc_sim_ep *ep, const void *buf, size_t n)
{
	return usmc_conn_write(ep->conn, buf, n, usmc_sim_now(ep->sim));
}

/* |closer| writes, then closes; the other side drains, sees EOF, closes. */
static void orderly(int client_first)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *x, *y;
	uint8_t buf[100];

	setup(&sim, &a, &b, &c, &s, 31 + (uint64_t)client_first, 0);
	x = client_first ? c : s;
	y = client_first ? s : c;
	USMC_ASSERT_EQ(wr(x, "hello", 5), 5);
	USMC_ASSERT_EQ(usmc_conn_close(x->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_state(x->conn), SMC_PEERCLOSEWAIT1);
	USMC_ASSERT_EQ(wr(x, "x", 1), USMC_ERR_PIPE);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(y->conn), SMC_APPCLOSEWAIT1);
	USMC_ASSERT_EQ(y->ev[USMC_EV_PEER_SHUTDOWN], 1);
	USMC_ASSERT_EQ(rd(y, buf, sizeof(buf)), 5);
	USMC_ASSERT_MEM_EQ(buf, "hello", 5);
	USMC_ASSERT_EQ(rd(y, buf, sizeof(buf)), 0); /* EOF */
	/* the peer closed entirely: writing is a reset */
	USMC_ASSERT_EQ(wr(y, "z", 1), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_close(y->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_state(y->conn), SMC_CLOSED);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(x->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(x->ev[USMC_EV_CLOSED], 1);
	USMC_ASSERT_EQ(y->ev[USMC_EV_CLOSED], 1);
	USMC_ASSERT_EQ(x->ev[USMC_EV_ERROR] + y->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(usmc_conn_error(x->conn), 0);

	/* the idle link group goes after the free delay: the server sends
	 * DELETE_LINK ALL, the client answers with its own (smc_lgr_cleanup) */
	usmc_sim_trace_clear(sim);
	usmc_sim_run(sim, usmc_sim_now(sim) + 599 * SEC);
	CU_ASSERT_PTR_NOT_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_run(sim, usmc_sim_now(sim) + 30 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	{
		size_t n;
		const usmc_sim_trace *t = usmc_sim_get_trace(sim, &n);

		USMC_ASSERT_EQ_FATAL(n, 2);
		USMC_ASSERT_EQ(t[0].from, 2);
		USMC_ASSERT_EQ(t[0].msg[0], SMC_LLC_DELETE_LINK_V2);
		USMC_ASSERT_EQ(t[0].msg[3],
			       SMC_LLC_FLAG_DEL_LINK_ALL |
				       SMC_LLC_FLAG_DEL_LINK_ORDERLY);
		USMC_ASSERT_EQ(t[1].from, 1);
		USMC_ASSERT_EQ(t[1].msg[0], SMC_LLC_DELETE_LINK_V2);
		USMC_ASSERT_EQ(t[1].msg[3], SMC_LLC_FLAG_DEL_LINK_ALL);
	}
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_del(sim);
}

static void test_orderly_client(void)
{
	orderly(1);
}

static void test_orderly_server(void)
{
	orderly(0);
}

/* shutdown(SHUT_WR) from |x| first, then |y|; both keep reading. */
static void half_close(int client_first)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *x, *y;
	uint8_t buf[100];

	setup(&sim, &a, &b, &c, &s, 33 + (uint64_t)client_first, 0);
	x = client_first ? c : s;
	y = client_first ? s : c;
	USMC_ASSERT_EQ(wr(x, "abc", 3), 3);
	USMC_ASSERT_EQ(usmc_conn_shutdown_write(x->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_state(x->conn), SMC_PEERCLOSEWAIT1);
	USMC_ASSERT_EQ(wr(x, "d", 1), USMC_ERR_PIPE);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(y->conn), SMC_APPCLOSEWAIT1);
	USMC_ASSERT_EQ(rd(y, buf, sizeof(buf)), 3);
	USMC_ASSERT_EQ(rd(y, buf, sizeof(buf)), 0);
	/* the other direction still works */
	USMC_ASSERT_EQ(wr(y, "reply", 5), 5);
	settle(sim);
	USMC_ASSERT_EQ(rd(x, buf, sizeof(buf)), 5);
	USMC_ASSERT_MEM_EQ(buf, "reply", 5);
	USMC_ASSERT_EQ(rd(x, buf, sizeof(buf)), USMC_ERR_WOULDBLOCK);
	/* now y shuts down too */
	USMC_ASSERT_EQ(usmc_conn_shutdown_write(y->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_state(y->conn), SMC_APPCLOSEWAIT2);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(x->conn), SMC_PEERCLOSEWAIT2);
	USMC_ASSERT_EQ(rd(x, buf, sizeof(buf)), 0);
	USMC_ASSERT_EQ(x->ev[USMC_EV_PEER_SHUTDOWN], 1);
	/* x closes: still waits for y's close */
	usmc_conn_close(x->conn, usmc_sim_now(sim));
	USMC_ASSERT_EQ(usmc_conn_state(x->conn), SMC_PEERCLOSEWAIT2);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(y->conn), SMC_APPCLOSEWAIT2);
	usmc_conn_close(y->conn, usmc_sim_now(sim));
	USMC_ASSERT_EQ(usmc_conn_state(y->conn), SMC_CLOSED);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(x->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(x->ev[USMC_EV_ERROR] + y->ev[USMC_EV_ERROR], 0);
	usmc_sim_del(sim);
}

static void test_half_close_client(void)
{
	half_close(1);
}

static void test_half_close_server(void)
{
	half_close(0);
}

/* Shut down, then the peer closes before we do: APPFINCLOSEWAIT. */
static void test_appfinclosewait(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;

	setup(&sim, &a, &b, &c, &s, 35, 0);
	usmc_conn_shutdown_write(c->conn, usmc_sim_now(sim));
	settle(sim);
	usmc_conn_close(s->conn, usmc_sim_now(sim));
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_PEERFINCLOSEWAIT);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_APPFINCLOSEWAIT);
	usmc_conn_close(c->conn, usmc_sim_now(sim));
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
	usmc_sim_del(sim);
}

static void test_abort(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	uint8_t buf[10];

	setup(&sim, &a, &b, &c, &s, 36, 0);
	USMC_ASSERT_EQ(usmc_conn_abort(c->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	settle(sim);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_PROCESSABORT);
	USMC_ASSERT_EQ(rd(s, buf, sizeof(buf)), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(wr(s, "a", 1), USMC_ERR_CONNRESET);
	usmc_conn_close(s->conn, usmc_sim_now(sim));
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
	settle(sim);
	usmc_sim_del(sim);
}

/* Data the peer wrote before it aborted is read first, then the reset:
 * the kernel's smc_rx_recvmsg copies available data before sk_err. */
static void test_abort_after_data(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	uint8_t buf[16];

	setup(&sim, &a, &b, &c, &s, 38, 0);
	USMC_ASSERT_EQ(wr(c, "last words", 10), 10);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_abort(c->conn, usmc_sim_now(sim)), 0);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_readable(s->conn), 10);
	USMC_ASSERT_EQ(rd(s, buf, 4), 4);
	USMC_ASSERT_EQ(rd(s, buf + 4, sizeof(buf) - 4), 6);
	CU_ASSERT_EQUAL(memcmp(buf, "last words", 10), 0);
	USMC_ASSERT_EQ(rd(s, buf, sizeof(buf)), USMC_ERR_CONNRESET);
	usmc_conn_close(s->conn, usmc_sim_now(sim));
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
	usmc_sim_del(sim);
}

/* close() with unread data sends peer_conn_abort (smc_close_final). */
static void test_close_unread(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info si;

	setup(&sim, &a, &b, &c, &s, 37, 0);
	USMC_ASSERT_EQ(wr(c, "unread", 6), 6);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_readable(s->conn), 6);
	usmc_conn_close(s->conn, usmc_sim_now(sim));
	settle(sim);
	usmc_conn_get_info(s->conn, &si);
	CU_ASSERT_TRUE(si.tx_conn_flags & USMC_CDC_PEER_CONN_ABORT);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_PROCESSABORT);
	usmc_conn_close(c->conn, usmc_sim_now(sim));
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
	usmc_sim_del(sim);
}

/* close() with data still in the sndbuf and a peer that neither reads nor
 * closes: the closed flag waits behind the data for the 2 s stream wait,
 * then the data is dropped and the peer gets an abort. */
static void test_close_stream_wait(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	static uint8_t buf[40000];
	usmc_tstamp t0;
	usmc_ssize k;

	setup(&sim, &a, &b, &c, &s, 41, 0);
	memset(buf, 3, sizeof(buf));
	k = wr(c, buf, sizeof(buf));
	USMC_ASSERT_EQ(k, 16384);
	settle(sim);
	k = wr(c, buf, sizeof(buf));
	USMC_ASSERT_EQ(k, 16384); /* the peer RMBE is full, this waits */
	t0 = usmc_sim_now(sim);
	usmc_conn_close(c->conn, t0);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_PEERCLOSEWAIT1);
	usmc_sim_run(sim, t0 + 2 * SEC - 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_PEERCLOSEWAIT1);
	usmc_sim_run(sim, t0 + 2 * SEC + SEC);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	usmc_sim_del(sim);
}

static int count_trace(usmc_sim *sim, int from, uint8_t t, uint8_t f)
{
	size_t n;
	const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);
	int k = 0;

	for (size_t i = 0; i < n; i++)
		if (tr[i].from == from && tr[i].msg[0] == t &&
		    tr[i].msg[3] == f)
			k++;
	return k;
}

static void test_testlink_answered(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;

	setup(&sim, &a, &b, &c, &s, 38, 5 * SEC);
	usmc_sim_trace_clear(sim);
	usmc_sim_run(sim, usmc_sim_now(sim) + 60 * SEC);
	CU_ASSERT_TRUE(count_trace(sim, 1, SMC_LLC_TEST_LINK_V2, 0) >= 5);
	CU_ASSERT_TRUE(count_trace(sim, 2, SMC_LLC_TEST_LINK_V2, 0x80) >= 5);
	CU_ASSERT_TRUE(count_trace(sim, 2, SMC_LLC_TEST_LINK_V2, 0) >= 5);
	CU_ASSERT_TRUE(count_trace(sim, 1, SMC_LLC_TEST_LINK_V2, 0x80) >= 5);
	CU_ASSERT_TRUE(established(c) && established(s));
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	usmc_sim_del(sim);
}

/* The client's core hangs (its RNIC still acks): the server's TEST_LINK
 * goes unanswered, the lgr is terminated, its connection (which moved a
 * byte) reset. */
static void test_testlink_lost(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_tstamp t0;
	uint8_t x;

	setup(&sim, &a, &b, &c, &s, 39, 5 * SEC);
	/* one byte to the client (the server's TEST_LINK timer still runs
	 * from the handshake) */
	USMC_ASSERT_EQ(wr(s, "x", 1), 1);
	settle(sim);
	USMC_ASSERT_EQ(rd(c, &x, 1), 1);
	settle(sim);
	t0 = usmc_sim_now(sim);
	usmc_sim_set_blackhole(a, 1);
	usmc_sim_run(sim, t0 + 5 * SEC + SEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 0);
	usmc_sim_run(sim, t0 + 5 * SEC + 3 * SEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(wr(s, "x", 1), USMC_ERR_CONNRESET);
	/* the hung client notices too: nothing arrives, its TEST_LINK is
	 * unanswered */
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNRESET);
	usmc_sim_run(sim, usmc_sim_now(sim) + 10 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

/* The path fails under traffic: the send completes in error, the lgr is
 * terminated (no second link): the connection that moved data gets
 * ECONNRESET, the one that moved none falls back to TCP, on both ends. */
static void test_link_down(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *c2, *s2;

	setup(&sim, &a, &b, &c, &s, 40, 0);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c2, &s2), 0);
	usmc_sim_set_link_down(a, b, 1);
	USMC_ASSERT_EQ(wr(c, "data", 4), 4);
	settle(sim);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(c2->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(c2->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c2->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c2->conn),
		       SMC_CLC_DECL_NOACTLINK);
	/* the server learns when it sends */
	USMC_ASSERT_EQ(wr(s, "data", 4), 4);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(s2->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(s2->ev[USMC_EV_FALLBACK], 1);
	/* a new connection makes a new link group once the path is back */
	usmc_sim_set_link_down(a, b, 0);
	{
		usmc_sim_ep *c3, *s3;

		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c3, &s3), 0);
		CU_ASSERT_TRUE(established(c3) && established(s3));
	}
	usmc_sim_del(sim);
}

/* ---- hostile peers ---- */

enum {
	H_BADTOKEN,
	H_BEYOND_RMBE,
	H_BACKWARDS,
	H_REPLAY,
	H_OVERRUN,
	H_CONS_AHEAD,
	H_COUNT
};

static void hostile(int kind)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *c2, *s2;
	usmc_conn_info ci;
	static pump p;
	pump *ps[1] = {&p};
	uint8_t buf[64];
	uint64_t prod;
	uint16_t seq;

	setup(&sim, &a, &b, &c, &s, 50 + (uint64_t)kind, 0);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c2, &s2), 0);
	USMC_ASSERT_EQ(wr(s, "0123456789", 10), 10);
	settle(sim);
	usmc_conn_get_info(c->conn, &ci);
	prod = (uint64_t)ci.rx_prod.wrap * 16384 + ci.rx_prod.count;
	USMC_ASSERT_EQ(prod, 10);
	seq = (uint16_t)(ci.rx_seq + 1);
	switch (kind) {
	case H_BADTOKEN:
		forge_cdc(sim, b, seq, ci.local_token ^ 0x100, prod + 100, 0,
			  16384, 0, 0);
		break;
	case H_BEYOND_RMBE: {
		usmc_cdc_msg m;

		memset(&m, 0, sizeof(m));
		m.seqno = seq;
		m.token = ci.local_token;
		m.prod.count = 16384 + 5; /* outside the 16 KiB RMBE */
		usmc_cdc_encode(buf, sizeof(buf), &m);
		usmc_sim_inject_send(sim, usmc_sim_node_link(b, 0), buf, 44);
		break;
	}
	case H_BACKWARDS:
		forge_cdc(sim, b, seq, ci.local_token, prod - 3, 0, 16384, 0,
			  0);
		break;
	case H_REPLAY:
		forge_cdc(sim, b, ci.rx_seq, ci.local_token, prod + 4, 0, 16384,
			  0, 0);
		break;
	case H_OVERRUN:
		/* more than the 16 KiB we granted */
		forge_cdc(sim, b, seq, ci.local_token, prod + 16384 + 1, 0,
			  16384, 0, 0);
		break;
	case H_CONS_AHEAD:
		/* acks bytes the client never sent */
		forge_cdc(sim, b, seq, ci.local_token, prod, 500, 16384, 0, 0);
		break;
	}
	settle(sim);
	if (kind == H_BADTOKEN) {
		/* dropped: nothing moved, the connection lives on */
		USMC_ASSERT_EQ(usmc_conn_readable(c->conn), 10);
		USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
		USMC_ASSERT_EQ(rd(c, buf, sizeof(buf)), 10);
		USMC_ASSERT_MEM_EQ(buf, "0123456789", 10);
		CU_ASSERT_TRUE(established(c));
	} else {
		/* aborted with a named error; the peer sees the reset */
		USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
		USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_PROTO);
		USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
		USMC_ASSERT_EQ(rd(c, buf, sizeof(buf)), USMC_ERR_PROTO);
		USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
		USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	}
	/* the other connection on the lgr is untouched */
	pump_init(&p, s2, c2, 100000, 77, 3000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 1, usmc_sim_now(sim) + 60 * SEC), 0);
	USMC_ASSERT_EQ(p.bad, 0);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	usmc_sim_del(sim);
}

static void test_hostile_cdc(void)
{
	for (int k = 0; k < H_COUNT; k++)
		hostile(k);
}

/* An LLC message of unknown type is a protocol violation: the receiver
 * sends DELETE_LINK ALL and terminates the lgr; so does the peer. */
static void test_hostile_llc(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	uint8_t m[44];

	setup(&sim, &a, &b, &c, &s, 60, 0);
	memset(m, 0, sizeof(m));
	m[0] = 0x2c; /* no such v2 LLC type */
	m[1] = 44;
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_inject_send(sim, usmc_sim_node_link(b, 0), m, 44), 0);
	settle(sim);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_PROTO);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNABORTED);
	usmc_sim_run(sim, usmc_sim_now(sim) + 10 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

/* usmc_ctx_shutdown tells the peer: its lgr goes at once (no TEST_LINK
 * wait), connections on both sides are aborted, and ours are freed after
 * the grace period. */
static void test_ctx_shutdown(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;

	setup(&sim, &a, &b, &c, &s, 62, 30 * SEC);
	usmc_ctx_shutdown(usmc_sim_node_ctx(a), usmc_sim_now(sim));
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNABORTED);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNABORTED);
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

static int lgr_count(usmc_sim_node *n)
{
	int k = 0;

	for (usmc_lgr *l = usmc_ctx_next_lgr(usmc_sim_node_ctx(n), NULL); l;
	     l = usmc_ctx_next_lgr(usmc_sim_node_ctx(n), l))
		k++;
	return k;
}

static uint32_t lgr_of(usmc_sim_ep *ep)
{
	usmc_conn_info ci;

	usmc_conn_get_info(ep->conn, &ci);
	return ci.lgr_id;
}

/* The runtime saw the peer's process die: data already received is read,
 * then the reset; the lgr is not reused, nothing more is sent to the dead
 * peer, and the lgr ends with its last connection (not after the idle
 * delay or TEST_LINK). */
static void test_peer_gone(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *c2, *s2, *c3, *s3;
	uint8_t buf[16];
	size_t n;
	const usmc_sim_trace *t;

	setup(&sim, &a, &b, &c, &s, 64, 30 * SEC);
	/* a second connection on the lgr: its RMB went by CONFIRM_RKEY */
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c2, &s2), 0);
	USMC_ASSERT_EQ(lgr_of(s2), lgr_of(s));
	USMC_ASSERT_EQ(wr(c2, "last words", 10), 10);
	settle(sim);
	usmc_conn_peer_gone(s2->conn, usmc_sim_now(sim));
	usmc_conn_peer_gone(s->conn, usmc_sim_now(sim));
	USMC_ASSERT_EQ(s2->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s2->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_state(s2->conn), SMC_PROCESSABORT);
	USMC_ASSERT_EQ(rd(s2, buf, sizeof(buf)), 10);
	USMC_ASSERT_MEM_EQ(buf, "last words", 10);
	USMC_ASSERT_EQ(rd(s2, buf, sizeof(buf)), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(wr(s2, "a", 1), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	/* a new connection from the same peer gets a new lgr */
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c3, &s3), 0);
	CU_ASSERT_TRUE(established(s3));
	CU_ASSERT_NOT_EQUAL(lgr_of(s3), lgr_of(s));
	USMC_ASSERT_EQ(lgr_count(b), 2);
	/* closing the dead peer's connections sends it nothing (no abort,
	 * no DELETE_RKEY, no DELETE_LINK); its lgr ends with the last one */
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ(usmc_conn_close(s2->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_state(s2->conn), SMC_CLOSED);
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(lgr_count(b), 2);
	USMC_ASSERT_EQ(usmc_conn_close(s->conn, usmc_sim_now(sim)), 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	t = usmc_sim_get_trace(sim, &n);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_NOT_EQUAL(t[i].from, usmc_sim_node_index(b));
	USMC_ASSERT_EQ(lgr_count(b), 1);
	/* the new connection is untouched */
	USMC_ASSERT_EQ(wr(c3, "still here", 10), 10);
	settle(sim);
	USMC_ASSERT_EQ(rd(s3, buf, sizeof(buf)), 10);
	USMC_ASSERT_MEM_EQ(buf, "still here", 10);
	USMC_ASSERT_EQ(s3->ev[USMC_EV_ERROR], 0);
	usmc_sim_del(sim);
}

/* usmc_conn_close_done: only once the CDC with the close flag completed. */
static void test_close_done(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;

	setup(&sim, &a, &b, &c, &s, 65, 0);
	USMC_ASSERT_EQ(usmc_conn_close_done(c->conn), 0);
	USMC_ASSERT_EQ(usmc_conn_close(c->conn, usmc_sim_now(sim)), 0);
	USMC_ASSERT_EQ(usmc_conn_close_done(c->conn), 0); /* in flight */
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_close_done(c->conn), 1);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_APPCLOSEWAIT1);
	usmc_sim_del(sim);
}

/* usmc_ctx_shutdown_idle (a process at exit): lgrs with connections are
 * left alone; an idle one ends at once on both sides with an orderly
 * DELETE_LINK ALL, as the kernel's smc_lgr_free. */
static void test_ctx_shutdown_idle(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	size_t n;
	const usmc_sim_trace *t;

	setup(&sim, &a, &b, &c, &s, 66, 30 * SEC);
	USMC_ASSERT_EQ(
		usmc_ctx_shutdown_idle(usmc_sim_node_ctx(a), usmc_sim_now(sim)),
		0);
	settle(sim);
	CU_ASSERT_TRUE(established(c) && established(s));
	USMC_ASSERT_EQ(usmc_conn_close(c->conn, usmc_sim_now(sim)), 0);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_close(s->conn, usmc_sim_now(sim)), 0);
	settle(sim);
	usmc_sim_ep_del(c);
	usmc_sim_ep_del(s);
	USMC_ASSERT_EQ(lgr_count(a), 1);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ(
		usmc_ctx_shutdown_idle(usmc_sim_node_ctx(a), usmc_sim_now(sim)),
		1);
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(lgr_count(a), 0);
	USMC_ASSERT_EQ(lgr_count(b), 0);
	t = usmc_sim_get_trace(sim, &n);
	USMC_ASSERT_EQ_FATAL(n, 2);
	USMC_ASSERT_EQ(t[0].from, usmc_sim_node_index(a));
	USMC_ASSERT_EQ(t[0].msg[0], SMC_LLC_DELETE_LINK_V2);
	USMC_ASSERT_EQ(t[0].msg[3], SMC_LLC_FLAG_DEL_LINK_ALL |
					    SMC_LLC_FLAG_DEL_LINK_ORDERLY);
	/* the peer's answer, which a waited for */
	USMC_ASSERT_EQ(t[1].from, usmc_sim_node_index(b));
	USMC_ASSERT_EQ(t[1].msg[0], SMC_LLC_DELETE_LINK_V2);
	USMC_ASSERT_EQ(t[1].msg[3], SMC_LLC_FLAG_DEL_LINK_ALL);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_del(sim);
}

/* usmc_ctx_shutdown_idle right after the last connections went, with
 * both sides' DELETE_RKEY requests in flight (a process exiting just after
 * its close; both sides release as the kernel does, rmb_keep_rkey 0): the lgr is not ended under our own request, so the peer's
 * DELETE_RKEY, which arrives before our response, is answered; then
 * DELETE_LINK ALL, last. Seen with the Linux kernel as peer: it held its
 * LLC flow 2 s for the missing answer and sent its DELETE_LINK ALL to a
 * process already gone. */
static void test_ctx_shutdown_idle_llc_in_flight(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	size_t n, del = 0, reqs = 0, answered = 0;
	const usmc_sim_trace *t;
	int ia;

	setup_keep(&sim, &a, &b, &c, &s, 67, 30 * SEC, 0);
	ia = usmc_sim_node_index(a);
	USMC_ASSERT_EQ(usmc_conn_close(c->conn, usmc_sim_now(sim)), 0);
	settle(sim);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ(usmc_conn_close(s->conn, usmc_sim_now(sim)), 0);
	/* step until a's DELETE_RKEY request (its RMB, once the close is
	 * done) has reached b, before b's answer is back */
	for (int k = 0; k < 100000 && !del; k++) {
		usmc_sim_run(sim, usmc_sim_now(sim) + 1000);
		t = usmc_sim_get_trace(sim, &n);
		for (size_t i = 0; i < n; i++)
			if (t[i].from == ia &&
			    t[i].msg[0] == SMC_LLC_DELETE_RKEY_V2)
				del = 1;
	}
	USMC_ASSERT_EQ_FATAL(del, 1);
	del = 0;
	USMC_ASSERT_EQ(
		usmc_ctx_shutdown_idle(usmc_sim_node_ctx(a), usmc_sim_now(sim)),
		1);
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(lgr_count(a), 0);
	USMC_ASSERT_EQ(lgr_count(b), 0);
	usmc_sim_ep_del(c);
	usmc_sim_ep_del(s);
	t = usmc_sim_get_trace(sim, &n);
	for (size_t i = 0; i < n; i++) {
		uint8_t type = t[i].msg[0], flags = t[i].msg[3];

		if (type == SMC_LLC_DELETE_LINK_V2) {
			/* a's, then the peer's answer, last */
			USMC_ASSERT_EQ(t[i].from,
				       del ? usmc_sim_node_index(b) : ia);
			USMC_ASSERT_EQ(i, n - 2 + del);
			del++;
		} else if (type == SMC_LLC_DELETE_RKEY_V2 && t[i].from != ia &&
			   !(flags & SMC_LLC_FLAG_RESP)) {
			reqs++;
		} else if (type == SMC_LLC_DELETE_RKEY_V2 && t[i].from == ia &&
			   (flags & SMC_LLC_FLAG_RESP)) {
			answered++;
		}
	}
	USMC_ASSERT_EQ(del, 2);
	USMC_ASSERT_EQ(reqs, 1);
	USMC_ASSERT_EQ(answered, 1);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_del(sim);
}

/* At exit (usmc_ctx_shutdown_idle) the link of a's DELETE_LINK ALL stays
 * until the peer's own DELETE_LINK ALL comes back (the kernel's
 * smc_lgr_cleanup sends one in either role), so that what the peer still
 * sends is acknowledged, not retried into a process gone; a DELETE_RKEY
 * the peer sends after it is answered meanwhile (a kernel holds its LLC
 * flow 2 s for the answer, and its DELETE_LINK ALL behind it). With no
 * answer at all the wait ends after 500 ms. b's core hangs throughout
 * (blackhole), so the peer's messages are forged on its QP. */
static void exit_waits(int answer)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_link *lb;
	usmc_llc_msg m;
	uint8_t buf[44];
	usmc_tstamp t0;
	const usmc_sim_trace *t;
	size_t n, rkey_answers = 0, a_del = 0;
	int ia;

	setup(&sim, &a, &b, &c, &s, 68 + (uint64_t)answer, 30 * SEC);
	ia = usmc_sim_node_index(a);
	lb = usmc_sim_node_link(b, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lb);
	USMC_ASSERT_EQ(usmc_conn_close(c->conn, usmc_sim_now(sim)), 0);
	settle(sim);
	USMC_ASSERT_EQ(usmc_conn_close(s->conn, usmc_sim_now(sim)), 0);
	settle(sim);
	usmc_sim_ep_del(c);
	usmc_sim_ep_del(s);
	usmc_sim_set_blackhole(b, 1);
	usmc_sim_trace_clear(sim);
	t0 = usmc_sim_now(sim);
	USMC_ASSERT_EQ(usmc_ctx_shutdown_idle(usmc_sim_node_ctx(a), t0), 1);
	/* its DELETE_LINK ALL leaves after USMC_END_QUIET (50 ms) */
	usmc_sim_run(sim, t0 + 100 * USMC_NS_PER_MS);
	USMC_ASSERT_EQ(lgr_count(a), 1);
	usmc_llc_msg_init(&m, SMC_LLC_DELETE_RKEY, 2, 0);
	m.delete_rkey.num_rkeys = 1;
	m.delete_rkey.rkey[0] = 0x1234;
	USMC_ASSERT_EQ_FATAL(usmc_llc_encode(buf, sizeof(buf), &m), 44);
	USMC_ASSERT_EQ(usmc_sim_inject_send(sim, lb, buf, 44), 0);
	usmc_sim_run(sim, t0 + 300 * USMC_NS_PER_MS);
	USMC_ASSERT_EQ(lgr_count(a), 1);
	if (answer) {
		usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK, 2,
				  SMC_LLC_FLAG_DEL_LINK_ALL);
		m.delete_link.reason = SMC_LLC_DEL_PROG_INIT_TERM;
		USMC_ASSERT_EQ_FATAL(usmc_llc_encode(buf, sizeof(buf), &m), 44);
		USMC_ASSERT_EQ(usmc_sim_inject_send(sim, lb, buf, 44), 0);
		/* gone 100 ms after it, before the wait's end (550 ms) */
		usmc_sim_run(sim, t0 + 450 * USMC_NS_PER_MS);
		USMC_ASSERT_EQ(lgr_count(a), 0);
	} else {
		usmc_sim_run(sim, t0 + 500 * USMC_NS_PER_MS);
		USMC_ASSERT_EQ(lgr_count(a), 1);
		usmc_sim_run(sim, t0 + 700 * USMC_NS_PER_MS);
		USMC_ASSERT_EQ(lgr_count(a), 0);
	}
	/* b wakes up to a's messages: the answer to its DELETE_RKEY and the
	 * DELETE_LINK ALL; it ends its side too */
	usmc_sim_set_blackhole(b, 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 20 * SEC);
	USMC_ASSERT_EQ(lgr_count(b), 0);
	t = usmc_sim_get_trace(sim, &n);
	for (size_t i = 0; i < n; i++) {
		if (t[i].from != ia)
			continue;
		if (t[i].msg[0] == SMC_LLC_DELETE_RKEY_V2 &&
		    (t[i].msg[3] & SMC_LLC_FLAG_RESP))
			rkey_answers++;
		if (t[i].msg[0] == SMC_LLC_DELETE_LINK_V2 &&
		    t[i].msg[3] == (SMC_LLC_FLAG_DEL_LINK_ALL |
				    SMC_LLC_FLAG_DEL_LINK_ORDERLY))
			a_del++;
	}
	USMC_ASSERT_EQ(a_del, 1);
	USMC_ASSERT_EQ(rkey_answers, 1);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_del(sim);
}

static void test_exit_waits_answered(void)
{
	exit_waits(1);
}

static void test_exit_waits_bounded(void)
{
	exit_waits(0);
}

/* Deleting a live connection aborts it towards the peer. */
static void test_del_live(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;

	setup(&sim, &a, &b, &c, &s, 61, 0);
	usmc_sim_ep_del(c);
	settle(sim);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	usmc_sim_del(sim);
}

static CU_TestInfo close_tests[] = {
	{"orderly_client_first", test_orderly_client},
	{"orderly_server_first", test_orderly_server},
	{"half_close_client_first", test_half_close_client},
	{"half_close_server_first", test_half_close_server},
	{"appfinclosewait", test_appfinclosewait},
	{"abort", test_abort},
	{"abort_after_data", test_abort_after_data},
	{"close_with_unread_data", test_close_unread},
	{"close_stream_wait", test_close_stream_wait},
	{"testlink_answered", test_testlink_answered},
	{"testlink_lost", test_testlink_lost},
	{"link_down", test_link_down},
	{"hostile_cdc", test_hostile_cdc},
	{"hostile_llc", test_hostile_llc},
	{"del_live", test_del_live},
	{"ctx_shutdown", test_ctx_shutdown},
	{"peer_gone", test_peer_gone},
	{"close_done", test_close_done},
	{"ctx_shutdown_idle", test_ctx_shutdown_idle},
	{"ctx_shutdown_idle_llc_in_flight",
	 test_ctx_shutdown_idle_llc_in_flight},
	{"exit_waits_for_the_peers_delete_link", test_exit_waits_answered},
	{"exit_wait_bounded", test_exit_waits_bounded},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_close", close_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
