/* SPDX-License-Identifier: MIT */
/*
 * Link failover (core/usmc_failover.c, docs/core.md "Failover") over the
 * sim fabric on its virtual clock: every cause of a link's death logs its
 * reason; with a second link the connection moves there mid-stream, both
 * directions byte-exact, within 100 ms of the link's death, behind the
 * failover-validation CDC, and a link is added again when the device is
 * back; when the last link dies a connection that moved data is reset
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
	usmc_tstamp t[256];
	size_t n;
} logbuf;

static logbuf lb;
static usmc_sim *log_sim; /* for the lines' virtual times */

static void log_keep(void *user, int node, int level, const char *msg)
{
	logbuf *l = user;

	(void)level;
	if (l->n < 256) {
		snprintf(l->lines[l->n], sizeof(l->lines[0]), "%s", msg);
		l->node[l->n] = node;
		l->t[l->n] = log_sim ? usmc_sim_now(log_sim) : 0;
		l->n++;
	}
	if (getenv("USMC_TEST_LOG"))
		fprintf(stderr, "    node %d: %s\n", node, msg);
}

/* The first line of |node| that contains |what|, or NULL; its virtual
 * time in |*t| if |t|. */
static const char *log_find_t(int node, const char *what, usmc_tstamp *t)
{
	for (size_t i = 0; i < lb.n; i++)
		if (lb.node[i] == node && strstr(lb.lines[i], what)) {
			if (t)
				*t = lb.t[i];
			return lb.lines[i];
		}
	return NULL;
}

static const char *log_find(int node, const char *what)
{
	return log_find_t(node, what, NULL);
}

static void log_start(usmc_sim *sim)
{
	memset(&lb, 0, sizeof(lb));
	log_sim = sim;
	usmc_sim_set_log(sim, log_keep, &lb);
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
	log_start(sim);
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

/* A forged CDC on |from|'s link (16 KiB RMBs), then the fabric idle. */
static void forge_f(usmc_sim *sim, usmc_sim_node *from, uint16_t seq,
		    uint32_t token, uint64_t prod, uint8_t pflags,
		    uint8_t cflags)
{
	forge_cdc(sim, from, seq, token, prod, 0, 16384, pflags, cflags);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
}

static void forge(usmc_sim *sim, usmc_sim_node *from, uint16_t seq,
		  uint32_t token, uint64_t prod, uint8_t pflags)
{
	forge_f(sim, from, seq, token, prod, pflags, 0);
}

/* A connection of |a| (client) with 10 bytes received from |b|. */
static void validation_setup(usmc_sim **sim, usmc_sim_node **a,
			     usmc_sim_node **b, usmc_sim_ep **c,
			     usmc_sim_ep **s, usmc_conn_info *ci)
{
	usmc_settings st = small_settings(16384);

	*sim = usmc_sim_new(200);
	log_start(*sim);
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

/* The peer claims a completed CDC this side never accepted, and it does
 * not come within the grace (it is not waiting on the dead link's CQ):
 * the stream has a hole, the connection aborts (smc_cdc_msg_validate). */
static void test_validation_mismatch(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;

	validation_setup(&sim, &a, &b, &c, &s, &ci);
	forge(sim, b, (uint16_t)(ci.rx_seq + 1), ci.local_token, 0,
	      USMC_CDC_FAILOVER_VALIDATION);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0); /* not yet */
	usmc_sim_run(sim, usmc_sim_now(sim) + 9 * USMC_NS_PER_MS);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 50 * USMC_NS_PER_MS);
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

/* ---- two links: the connections move ---- */

/* Two devices per node on one pnet: the server adds the second link. */
static usmc_settings two_dev_settings(unsigned int versions)
{
	usmc_settings st = small_settings(16384);

	st.ndevices = 2;
	memcpy(st.devices[0].pnet_id, "NET1", 4);
	memcpy(st.devices[1].pnet_id, "NET1", 4);
	if (versions)
		st.smc_versions = versions;
	return st;
}

/* Active links of |n|'s first lgr, and the devices they are on (bit
 * mask). */
static unsigned int active_links(usmc_sim_node *n, unsigned int *devs)
{
	usmc_lgr *l = usmc_ctx_next_lgr(usmc_sim_node_ctx(n), NULL);
	usmc_lgr_info li;
	unsigned int k = 0;

	*devs = 0;
	if (!l)
		return 0;
	usmc_lgr_get_info(l, &li);
	for (unsigned int i = 0; i < li.nlinks; i++)
		if (li.links[i].active) {
			k++;
			*devs |= 1u << li.links[i].dev_idx;
		}
	return k;
}

enum fcause {
	F_PORT_DOWN,
	F_QP_ERROR,
	F_DEVICE_FATAL,
	F_POST_FAILED,
	F_RETRIES,
	F_TEST_LINK,
	F_COUNT
};

static const struct {
	const char *name, *sched, *word;
	usmc_duration detect; /* bound on the detection */
} fcauses[F_COUNT] = {
	[F_PORT_DOWN] = {"port down", "port-down:for=300ms", "down: port down",
			 USMC_NS_PER_MS},
	[F_QP_ERROR] = {"qp error", "qp-error", "down: qp error",
			USMC_NS_PER_MS},
	[F_DEVICE_FATAL] = {"device fatal", "device-fatal",
			    "down: device fatal", USMC_NS_PER_MS},
	[F_POST_FAILED] = {"post failed", "fail-post:op=WRITE,nth=5",
			   "down: post failed", USMC_NS_PER_MS},
	[F_RETRIES] = {"retries exhausted (path cut, no TEST_LINK)", NULL,
		       "down: retries exhausted", 10 * SEC},
	[F_TEST_LINK] = {"peer silent on the link (TEST_LINK)", NULL,
			 "down: test_link timeout",
			 2 * SEC + 100 * USMC_NS_PER_MS},
};

typedef struct fo_result {
	usmc_tstamp detect, failover, end;
	uint64_t trace_hash;
	size_t ntrace;
} fo_result;

/* A symmetric two-link group (link 1 on the devices 0, link 2 on the
 * devices 1); the connection streams 2 MiB each way on link 1 when
 * |cause| strikes device 0 of the client (or of the server with
 * |at_server|): it moves to link 2 on both ends (the struck side by its
 * own detection, the other by that side's DELETE_LINK or its own), every
 * byte arrives once and in order, the failover-validation CDC is the
 * first thing of it on link 2, the first WR on link 2 is at most 100 ms
 * after the link was declared dead. With |back| the device then comes
 * back (usmc_ctx_device_up): a link is added on it again and the group
 * is symmetric, and another transfer runs byte-exact. */
static void failover(enum fcause cause, int at_server, unsigned int versions,
		     int back, uint64_t seed, fo_result *res)
{
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};
	usmc_settings st = two_dev_settings(versions);
	usmc_fault_sched f;
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a, *b, *x;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci, si;
	usmc_tstamp t0, tf, tdown = 0, tfo = 0, tval = 0;
	const usmc_sim_trace *tr;
	unsigned int devs;
	size_t ntr;
	int xi;

	memset(res, 0, sizeof(*res));
	log_start(sim);
	if (cause == F_RETRIES)
		st.testlink_time = 0;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	x = at_server ? b : a;
	xi = usmc_sim_node_index(x);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	USMC_ASSERT_EQ_FATAL(active_links(a, &devs), 2);
	USMC_ASSERT_EQ(devs, 3);
	USMC_ASSERT_EQ_FATAL(active_links(b, &devs), 2);
	usmc_conn_get_info(c->conn, &ci);
	USMC_ASSERT_EQ_FATAL(ci.link_id, 1);
	USMC_ASSERT_EQ(ci.failovers, 0);
	pump_init(&p1, c, s, 2u << 20, (uint32_t)seed, 7000);
	pump_init(&p2, s, c, 2u << 20, (uint32_t)seed + 1, 6000);
	/* mid-stream */
	t0 = usmc_sim_now(sim);
	pumps_run(sim, ps, 2, t0 + 3 * USMC_NS_PER_MS);
	CU_ASSERT_TRUE_FATAL(p1.readn > 0 && p2.readn > 0);
	CU_ASSERT_TRUE_FATAL(p1.readn < p1.total && p2.readn < p2.total);
	if (cause == F_TEST_LINK) {
		/* the link idle (nothing in flight) when its peer goes
		 * silent: only TEST_LINK can tell */
		usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	}
	tf = usmc_sim_now(sim);
	usmc_sim_trace_clear(sim);
	if (fcauses[cause].sched) {
		USMC_ASSERT_EQ_FATAL(
			usmc_fault_sched_parse(fcauses[cause].sched, tf, &f,
					       NULL, 0),
			0);
		usmc_sim_node_set_dev_faults(x, 0, &f);
	} else {
		usmc_sim_set_dev_path_down(a, 0, b, 0, 1);
	}
	if (cause == F_TEST_LINK) {
		usmc_sim_run(sim, tf + 2 * SEC + 100 * USMC_NS_PER_MS);
		/* the path is back (the server tries a link on it again and
		 * again meanwhile, which keeps the fabric from going idle,
		 * and pumps_run steps only when it is) */
		usmc_sim_set_dev_path_down(a, 0, b, 0, 0);
	}
	/* the stream completes, byte-exact, with no error */
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, tf + 60 * SEC), 0);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	USMC_ASSERT_EQ(p1.readn, p1.total);
	USMC_ASSERT_EQ(p2.readn, p2.total);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	/* the dead link's grace ends, the peer is told */
	usmc_sim_run(sim, usmc_sim_now(sim) + 100 * USMC_NS_PER_MS);
	/* both ends on link 2, moved once */
	usmc_conn_get_info(c->conn, &ci);
	usmc_conn_get_info(s->conn, &si);
	USMC_ASSERT_EQ(ci.link_id, 2);
	USMC_ASSERT_EQ(si.link_id, 2);
	USMC_ASSERT_EQ(ci.failovers, 1);
	USMC_ASSERT_EQ(si.failovers, 1);
	/* the cause, the switch, and their times; a cut path is noticed by
	 * whichever side finds out first */
	if (!fcauses[cause].sched) {
		usmc_tstamp ta = 0, tb = 0;
		int ia = usmc_sim_node_index(a), ib = usmc_sim_node_index(b);
		int fa = log_find_t(ia, fcauses[cause].word, &ta) != NULL;
		int fb = log_find_t(ib, fcauses[cause].word, &tb) != NULL;

		xi = fa && (!fb || ta <= tb) ? ia : ib;
	}
	if (!log_find_t(xi, fcauses[cause].word, &tdown))
		CU_FAIL("the cause is not logged");
	if (!log_find_t(xi, "failover link 1 -> link 2: 1 connections", &tfo))
		CU_FAIL("the failover is not logged");
	USMC_ASSERT_EQ(tfo, tdown); /* one core call */
	/* the first CDC of the struck side on link 2 after the switch: the
	 * validation CDC */
	tr = usmc_sim_get_trace(sim, &ntr);
	for (size_t i = 0; i < ntr; i++) {
		usmc_cdc_msg m;

		if (tr[i].from != xi || tr[i].dev != 1 || tr[i].t < tdown ||
		    tr[i].msg[0] != 0xfe)
			continue;
		USMC_ASSERT_EQ_FATAL(usmc_cdc_decode(&m, tr[i].msg, tr[i].len),
				     44);
		CU_ASSERT_TRUE(m.prod_flags & USMC_CDC_FAILOVER_VALIDATION);
		tval = tr[i].t;
		break;
	}
	CU_ASSERT_TRUE_FATAL(tdown && tval);
	res->detect = tdown - tf;
	res->failover = tval - tdown;
	fprintf(stderr,
		" [%s%s: detected %llu.%03llu ms, first WR on link 2 "
		"%llu.%03llu ms later]",
		fcauses[cause].name, at_server ? " at the server" : "",
		(unsigned long long)(res->detect / USMC_NS_PER_MS),
		(unsigned long long)(res->detect % USMC_NS_PER_MS / 1000),
		(unsigned long long)(res->failover / USMC_NS_PER_MS),
		(unsigned long long)(res->failover % USMC_NS_PER_MS / 1000));
	CU_ASSERT_TRUE(res->detect <= fcauses[cause].detect);
	CU_ASSERT_TRUE(res->failover <= 100 * USMC_NS_PER_MS);
	/* the server may have added a link again already (the path or the
	 * device is fine after a QP error or a failed post) */
	CU_ASSERT_TRUE(active_links(a, &devs) >= 1);
	CU_ASSERT_TRUE(active_links(b, &devs) >= 1);
	res->end = usmc_sim_now(sim);
	res->ntrace = ntr;
	res->trace_hash = fnv(0xcbf29ce484222325ull, tr, ntr * sizeof(*tr));
	if (back) {
		/* the device (and the path) come back: the port after its
		 * 300 ms */
		usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
		usmc_sim_node_set_dev_faults(x, 0, NULL);
		usmc_sim_set_dev_path_down(a, 0, b, 0, 0);
		usmc_ctx_device_up(usmc_sim_node_ctx(x), 0, usmc_sim_now(sim));
		usmc_sim_run_idle(sim, usmc_sim_now(sim) + 5 * SEC);
		USMC_ASSERT_EQ(active_links(a, &devs), 2);
		USMC_ASSERT_EQ(devs, 3);
		USMC_ASSERT_EQ(active_links(b, &devs), 2);
		USMC_ASSERT_EQ(devs, 3);
		pump_init(&p1, c, s, 1u << 20, (uint32_t)seed + 2, 7000);
		pump_init(&p2, s, c, 1u << 20, (uint32_t)seed + 3, 6000);
		USMC_ASSERT_EQ(
			pumps_run(sim, ps, 2, usmc_sim_now(sim) + 60 * SEC), 0);
		USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
		USMC_ASSERT_EQ(p1.readn + p2.readn, 2u << 20);
	}
	usmc_sim_node_set_dev_faults(x, 0, NULL);
	usmc_sim_del(sim);
}

static void each_side(enum fcause cause)
{
	/* USMC_FAILOVER_SOAK=N: N more seeds per cause and side */
	for (int k = 0; getenv("USMC_FAILOVER_SOAK") &&
			k < atoi(getenv("USMC_FAILOVER_SOAK"));
	     k++) {
		fo_result r;

		failover(cause, k & 1, 0, 0, 1000 + (uint64_t)k * 16 + cause,
			 &r);
	}
	if (getenv("USMC_TEST_SIDE")) {
		fo_result r;

		failover(cause, atoi(getenv("USMC_TEST_SIDE")), 0, 0,
			 300 + (uint64_t)cause +
				 10u * (unsigned)atoi(getenv("USMC_TEST_SIDE")),
			 &r);
		return;
	}
	fo_result r;

	failover(cause, 0, 0, 0, 300 + (uint64_t)cause, &r);
	failover(cause, 1, 0, 0, 310 + (uint64_t)cause, &r);
}

static void test_fo_port_down(void)
{
	each_side(F_PORT_DOWN);
}

static void test_fo_qp_error(void)
{
	each_side(F_QP_ERROR);
}

static void test_fo_device_fatal(void)
{
	each_side(F_DEVICE_FATAL);
}

static void test_fo_post_failed(void)
{
	each_side(F_POST_FAILED);
}

static void test_fo_retries(void)
{
	each_side(F_RETRIES);
}

static void test_fo_test_link(void)
{
	each_side(F_TEST_LINK);
}

/* SMC-Rv1 (ADD_LINK_CONT rkeys) fails over the same way. */
static void test_fo_v1(void)
{
	fo_result r;

	failover(F_QP_ERROR, 0, USMC_VERSION_V1, 0, 330, &r);
	failover(F_PORT_DOWN, 1, USMC_VERSION_V1, 0, 331, &r);
}

/* The device comes back: a link is added on it again, both groups are
 * symmetric, data moves byte-exact; the client's side and the server's. */
static void test_fo_link_back(void)
{
	fo_result r;

	failover(F_PORT_DOWN, 0, 0, 1, 340, &r);
	failover(F_PORT_DOWN, 1, 0, 1, 341, &r);
}

/* Four connections stream both ways on link 1 when its QP errs at the
 * server: all four move in the one call (the log says 4), every byte of
 * the eight streams arrives once and in order. */
static void test_fo_many(void)
{
	static pump p[8];
	pump *ps[8];
	usmc_settings st = two_dev_settings(0);
	usmc_sim *sim = usmc_sim_new(360);
	usmc_sim_node *a, *b;
	usmc_sim_ep *c[4], *s[4];
	usmc_fault_sched f;
	usmc_tstamp t0;

	log_start(sim);
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	for (int i = 0; i < 4; i++) {
		usmc_conn_info ci;

		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[i], &s[i]), 0);
		CU_ASSERT_TRUE_FATAL(established(c[i]) && established(s[i]));
		usmc_conn_get_info(c[i]->conn, &ci);
		USMC_ASSERT_EQ_FATAL(ci.link_id, 1);
		pump_init(&p[2 * i], c[i], s[i], 1u << 20, 370 + (uint32_t)i,
			  7000);
		pump_init(&p[2 * i + 1], s[i], c[i], 1u << 20,
			  380 + (uint32_t)i, 5000);
	}
	for (int i = 0; i < 8; i++)
		ps[i] = &p[i];
	t0 = usmc_sim_now(sim);
	pumps_run(sim, ps, 8, t0 + 3 * USMC_NS_PER_MS);
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("qp-error",
						    usmc_sim_now(sim), &f, NULL,
						    0),
			     0);
	usmc_sim_node_set_dev_faults(b, 0, &f);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 8, usmc_sim_now(sim) + 60 * SEC), 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 100 * USMC_NS_PER_MS);
	for (int i = 0; i < 8; i++) {
		USMC_ASSERT_EQ(p[i].bad, 0);
		USMC_ASSERT_EQ(p[i].readn, p[i].total);
	}
	for (int i = 0; i < 4; i++) {
		usmc_conn_info ci, si;

		usmc_conn_get_info(c[i]->conn, &ci);
		usmc_conn_get_info(s[i]->conn, &si);
		USMC_ASSERT_EQ(ci.link_id, 2);
		USMC_ASSERT_EQ(si.link_id, 2);
		USMC_ASSERT_EQ(ci.failovers + si.failovers, 2);
		USMC_ASSERT_EQ(
			c[i]->ev[USMC_EV_ERROR] + s[i]->ev[USMC_EV_ERROR], 0);
	}
	CU_ASSERT_PTR_NOT_NULL(log_find(usmc_sim_node_index(b),
					"failover link 1 -> link 2: 4 "
					"connections"));
	CU_ASSERT_PTR_NOT_NULL(log_find(usmc_sim_node_index(a),
					"failover link 1 -> link 2: 4 "
					"connections"));
	usmc_sim_node_set_dev_faults(b, 0, NULL);
	usmc_sim_del(sim);
}

/* The same seed replays exactly (times, the SEND trace), another seed
 * gives another run. */
static void test_fo_replay(void)
{
	fo_result r1, r2, r3;

	failover(F_POST_FAILED, 0, 0, 0, 350, &r1);
	failover(F_POST_FAILED, 0, 0, 0, 350, &r2);
	failover(F_POST_FAILED, 0, 0, 0, 351, &r3);
	CU_ASSERT_TRUE(r3.trace_hash != r1.trace_hash || r3.end != r1.end);
	USMC_ASSERT_EQ(r1.detect, r2.detect);
	USMC_ASSERT_EQ(r1.failover, r2.failover);
	USMC_ASSERT_EQ(r1.end, r2.end);
	USMC_ASSERT_EQ(r1.ntrace, r2.ntrace);
	USMC_ASSERT_EQ(r1.trace_hash, r2.trace_hash);
}

/* The validation names a CDC not taken yet, and a newer CDC of the peer
 * (on the new link) comes before it within the grace: no hole, the
 * connection goes on; the late one, when it comes, is dropped but its
 * close flag counts (EOF after the data). */
static void test_validation_late(void)
{
	usmc_sim *sim;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;
	uint8_t buf[32];

	validation_setup(&sim, &a, &b, &c, &s, &ci);
	forge(sim, b, (uint16_t)(ci.rx_seq + 1), ci.local_token, 0,
	      USMC_CDC_FAILOVER_VALIDATION);
	forge(sim, b, (uint16_t)(ci.rx_seq + 2), ci.local_token, 10, 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 100 * USMC_NS_PER_MS);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	CU_ASSERT_PTR_NULL(
		log_find(usmc_sim_node_index(a), "failover validation"));
	/* the late CDC it named, with the peer's done-writing flag */
	forge_f(sim, b, (uint16_t)(ci.rx_seq + 1), ci.local_token, 10, 0,
		USMC_CDC_PEER_DONE_WRITING);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_PEER_SHUTDOWN], 1);
	USMC_ASSERT_EQ(
		usmc_conn_read(c->conn, buf, sizeof(buf), usmc_sim_now(sim)),
		10);
	CU_ASSERT_EQUAL(memcmp(buf, "0123456789", 10), 0);
	USMC_ASSERT_EQ(
		usmc_conn_read(c->conn, buf, sizeof(buf), usmc_sim_now(sim)),
		0);
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
	{"validation CDC ahead, caught up within the grace: no abort",
	 test_validation_late},
	{"two links, port down mid-stream: moved, byte-exact, <= 100 ms",
	 test_fo_port_down},
	{"two links, QP error mid-stream: moved, byte-exact, <= 100 ms",
	 test_fo_qp_error},
	{"two links, device fatal mid-stream: moved, byte-exact, <= 100 ms",
	 test_fo_device_fatal},
	{"two links, post failed mid-stream: moved, byte-exact, <= 100 ms",
	 test_fo_post_failed},
	{"two links, path cut, retries exhausted: moved, byte-exact",
	 test_fo_retries},
	{"two links, peer silent, TEST_LINK within 2 s: moved, byte-exact",
	 test_fo_test_link},
	{"two links, SMC-Rv1: moved, byte-exact", test_fo_v1},
	{"the device comes back: link added again, symmetric, data moves",
	 test_fo_link_back},
	{"four connections move together, eight streams byte-exact",
	 test_fo_many},
	{"a failover replays exactly with its seed", test_fo_replay},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"failover", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
