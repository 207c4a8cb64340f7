/* SPDX-License-Identifier: MIT */
/*
 * Link failover (core/usmc_failover.c, docs/core.md "Failover") over the
 * sim fabric on its virtual clock: every cause of a link's death logs its
 * reason; when the last link dies a connection that moved data is reset
 * on both ends and one that moved none falls back to TCP on both ends,
 * within bounded virtual time; the receiver's check of the peer's
 * failover-validation CDC (smc_cdc_msg_validate). Seeded: a run replays.
 */
#include "usmc_cdc.h"
#include "usmc_clc.h"
#include "usmc_core_test.h"

/* The log lines of the nodes, kept for the assertions. */
typedef struct logbuf {
	char lines[256][200];
	int node[256];
	size_t n;
} logbuf;

static logbuf lb;

static void log_keep(void *user, int node, int level, const char *msg)
{
	logbuf *l = user;

	(void)level;
	if (l->n < 256) {
		snprintf(l->lines[l->n], sizeof(l->lines[0]), "%s", msg);
		l->node[l->n] = node;
		l->n++;
	}
	if (getenv("USMC_TEST_LOG"))
		fprintf(stderr, "    node %d: %s\n", node, msg);
}

/* The first line of |node| that contains |what|, or NULL. */
static const char *log_find(int node, const char *what)
{
	for (size_t i = 0; i < lb.n; i++)
		if (lb.node[i] == node && strstr(lb.lines[i], what))
			return lb.lines[i];
	return NULL;
}

enum cause {
	C_PORT_DOWN,
	C_QP_ERROR,
	C_DEVICE_FATAL,
	C_POST_FAILED,
	C_RETRIES,
	C_PEER_SILENT,
	C_COUNT
};

static const struct {
	const char *name, *sched, *word;
} causes[C_COUNT] = {
	[C_PORT_DOWN] = {"port down", "port-down:after=3ms,for=60s",
			 "down: port down"},
	[C_QP_ERROR] = {"qp error", "qp-error:after=3ms", "down: qp error"},
	[C_DEVICE_FATAL] = {"device fatal", "device-fatal:after=3ms",
			    "down: device fatal"},
	[C_POST_FAILED] = {"post failed", "fail-post:op=WRITE,nth=20",
			   "down: post failed"},
	[C_RETRIES] = {"retries exhausted (path cut)", NULL,
		       "down: retries exhausted"},
	[C_PEER_SILENT] = {"peer silent (TEST_LINK)", NULL,
			   "down: test_link timeout"},
};

/* The only link of the group between client |a| and server |b| dies by
 * |cause| (struck at the client) while connection 0 streams both ways and
 * connection 1 has moved nothing: connection 0 is reset on both ends,
 * connection 1 falls back to TCP on both ends, every byte read was the
 * right one, the client logs the cause, and both ends are done within
 * 10 s of virtual time. */
static void last_link(enum cause cause)
{
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};
	usmc_settings st = small_settings(16384);
	usmc_fault_sched f;
	usmc_sim *sim = usmc_sim_new(100 + (uint64_t)cause);
	usmc_sim_node *a, *b;
	usmc_sim_ep *c[2], *s[2];
	usmc_tstamp t0, tc = 0, ts = 0;
	char want[64];

	fprintf(stderr, "\n  %s:", causes[cause].name);
	memset(&lb, 0, sizeof(lb));
	usmc_sim_set_log(sim, log_keep, &lb);
	st.testlink_time = SEC;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	for (int i = 0; i < 2; i++) {
		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[i], &s[i]), 0);
		CU_ASSERT_TRUE_FATAL(established(c[i]) && established(s[i]));
	}
	t0 = usmc_sim_now(sim);
	if (causes[cause].sched) {
		USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse(causes[cause].sched,
							    t0, &f, NULL, 0),
				     0);
		usmc_sim_node_set_faults(a, &f);
	}
	pump_init(&p1, c[0], s[0], 4u << 20, 3, 7000);
	pump_init(&p2, s[0], c[0], 4u << 20, 4, 7000);
	/* some data moves first, then the fault */
	if (cause == C_RETRIES || cause == C_PEER_SILENT) {
		pumps_run(sim, ps, 2, t0 + 5 * USMC_NS_PER_MS);
		CU_ASSERT_TRUE(p1.readn > 0 && p2.readn > 0);
		if (cause == C_RETRIES)
			usmc_sim_set_link_down(a, b, 1);
		else
			usmc_sim_set_blackhole(b, 1);
		t0 = usmc_sim_now(sim);
	}
	/* the stream breaks off (write error, stall or limit) */
	CU_ASSERT_TRUE(pumps_run(sim, ps, 2, t0 + 60 * SEC) < 0);
	while (usmc_sim_now(sim) < t0 + 20 * SEC) {
		if (!tc && (c[0]->ev[USMC_EV_ERROR] || c[1]->ev[USMC_EV_ERROR]))
			tc = usmc_sim_now(sim);
		if (!ts && (s[0]->ev[USMC_EV_ERROR] || s[1]->ev[USMC_EV_ERROR]))
			ts = usmc_sim_now(sim);
		if (c[0]->ev[USMC_EV_ERROR] && s[0]->ev[USMC_EV_ERROR] &&
		    c[1]->ev[USMC_EV_FALLBACK] && s[1]->ev[USMC_EV_FALLBACK])
			break;
		usmc_sim_run(sim, usmc_sim_now(sim) + 10 * USMC_NS_PER_MS);
	}
	fprintf(stderr, " client ended %llu ms, server %llu ms after t0;",
		(unsigned long long)((tc ? tc - t0 : 0) / USMC_NS_PER_MS),
		(unsigned long long)((ts ? ts - t0 : 0) / USMC_NS_PER_MS));
	snprintf(want, sizeof(want), "%s", causes[cause].word);
	if (!log_find(usmc_sim_node_index(a), want)) {
		fprintf(stderr, " no \"%s\" in the client's log\n", want);
		CU_FAIL("cause not logged");
	}
	/* moved data: reset, both ends */
	USMC_ASSERT_EQ(c[0]->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(s[0]->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c[0]->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_error(s[0]->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_write(c[0]->conn, (const uint8_t *)"x", 1,
				       usmc_sim_now(sim)),
		       USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	CU_ASSERT_TRUE(p1.readn < p1.total || p2.readn < p2.total);
	/* moved nothing: TCP, both ends, with the reason */
	for (int i = 0; i < 2; i++) {
		usmc_sim_ep *e = i ? s[1] : c[1];

		USMC_ASSERT_EQ(e->ev[USMC_EV_ERROR], 0);
		USMC_ASSERT_EQ(e->ev[USMC_EV_FALLBACK], 1);
		USMC_ASSERT_EQ(usmc_conn_get_mode(e->conn), USMC_MODE_FALLBACK);
		USMC_ASSERT_EQ(usmc_conn_fallback_reason(e->conn),
			       SMC_CLC_DECL_NOACTLINK);
	}
	/* promptly, never hanging */
	CU_ASSERT_TRUE(tc && tc - t0 <= 10 * SEC);
	CU_ASSERT_TRUE(ts && ts - t0 <= 10 * SEC);
	usmc_sim_run(sim, usmc_sim_now(sim) + 5 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_del(sim);
}

static void test_last_link_port_down(void)
{
	last_link(C_PORT_DOWN);
}

static void test_last_link_qp_error(void)
{
	last_link(C_QP_ERROR);
}

static void test_last_link_device_fatal(void)
{
	last_link(C_DEVICE_FATAL);
}

static void test_last_link_post_failed(void)
{
	last_link(C_POST_FAILED);
}

static void test_last_link_retries(void)
{
	last_link(C_RETRIES);
}

static void test_last_link_peer_silent(void)
{
	last_link(C_PEER_SILENT);
}

/* ---- the receiver's side of a peer's failover ---- */

static void forge(usmc_sim *sim, usmc_sim_node *from, uint16_t seq,
		  uint32_t token, uint64_t prod, uint8_t pflags)
{
	usmc_cdc_msg m;
	uint8_t buf[44];

	memset(&m, 0, sizeof(m));
	m.seqno = seq;
	m.token = token;
	m.prod.wrap = (uint16_t)(prod / 16384);
	m.prod.count = (uint32_t)(prod % 16384);
	m.prod_flags = pflags;
	USMC_ASSERT_EQ_FATAL(usmc_cdc_encode(buf, sizeof(buf), &m), 44);
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_inject_send(sim, usmc_sim_node_link(from, 0), buf, 44),
		0);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
}

/* A connection of |a| (client) with 10 bytes received from |b|. */
static void validation_setup(usmc_sim **sim, usmc_sim_node **a,
			     usmc_sim_node **b, usmc_sim_ep **c,
			     usmc_sim_ep **s, usmc_conn_info *ci)
{
	usmc_settings st = small_settings(16384);

	*sim = usmc_sim_new(200);
	memset(&lb, 0, sizeof(lb));
	usmc_sim_set_log(*sim, log_keep, &lb);
	*a = usmc_sim_node_new(*sim, &st);
	*b = usmc_sim_node_new(*sim, &st);
	USMC_ASSERT_EQ_FATAL(sim_pair(*sim, *a, *b, c, s), 0);
	USMC_ASSERT_EQ(usmc_conn_write((*s)->conn,
				       (const uint8_t *)"0123456789", 10,
				       usmc_sim_now(*sim)),
		       10);
	usmc_sim_run_idle(*sim, usmc_sim_now(*sim) + SEC);
	usmc_conn_get_info((*c)->conn, ci);
	USMC_ASSERT_EQ_FATAL(ci->rx_prod.count, 10);
	USMC_ASSERT_EQ_FATAL(ci->rx_seq, ci->rx_cdcs);
}

/* The peer claims a completed CDC this side never accepted: the stream
 * has a hole, the connection aborts (smc_cdc_msg_validate). */
static void test_validation_mismatch(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;

	validation_setup(&sim, &a, &b, &c, &s, &ci);
	forge(sim, b, (uint16_t)(ci.rx_seq + 1), ci.local_token, 0,
	      USMC_CDC_FAILOVER_VALIDATION);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNABORTED);
	CU_ASSERT_PTR_NOT_NULL(
		log_find(usmc_sim_node_index(a), "failover validation"));
	/* the abort reached the peer */
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	usmc_sim_del(sim);
}

/* A validation CDC naming what this side has passes; after it, a late CDC
 * of the dead link (old seqno) is dropped, not taken for a replay, and a
 * producer cursor behind ours (the peer writing again from what its RNIC
 * confirmed) moves nothing; the stream then goes on byte-exact. */
static void test_validation_ok(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci, ci2;
	uint8_t buf[32];

	validation_setup(&sim, &a, &b, &c, &s, &ci);
	forge(sim, b, ci.rx_seq, ci.local_token, 0,
	      USMC_CDC_FAILOVER_VALIDATION);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	/* a late one of the dead link */
	forge(sim, b, ci.rx_seq, ci.local_token, 10, 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	/* the peer starts again at 4 (it saw CDCs up to there complete) */
	forge(sim, b, (uint16_t)(ci.rx_seq + 1), ci.local_token, 4, 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	usmc_conn_get_info(c->conn, &ci2);
	USMC_ASSERT_EQ(ci2.rx_prod.count, 10);
	USMC_ASSERT_EQ(ci2.rx_seq, (uint16_t)(ci.rx_seq + 1));
	USMC_ASSERT_EQ(usmc_conn_readable(c->conn), 10);
	USMC_ASSERT_EQ(
		usmc_conn_read(c->conn, buf, sizeof(buf), usmc_sim_now(sim)),
		10);
	CU_ASSERT_EQUAL(memcmp(buf, "0123456789", 10), 0);
	usmc_sim_del(sim);
}

static CU_TestInfo tests[] = {
	{"last link, port down: data -> CONNRESET both ends, none -> TCP",
	 test_last_link_port_down},
	{"last link, QP error: data -> CONNRESET both ends, none -> TCP",
	 test_last_link_qp_error},
	{"last link, device fatal: data -> CONNRESET both ends, none -> TCP",
	 test_last_link_device_fatal},
	{"last link, post failed: data -> CONNRESET both ends, none -> TCP",
	 test_last_link_post_failed},
	{"last link, path cut (retries): CONNRESET both ends, none -> TCP",
	 test_last_link_retries},
	{"last link, peer silent (TEST_LINK): CONNRESET, none -> TCP",
	 test_last_link_peer_silent},
	{"validation CDC naming a CDC never seen: abort",
	 test_validation_mismatch},
	{"validation CDC passes; late old CDC dropped, rewound cursor ok",
	 test_validation_ok},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"failover", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
