/* SPDX-License-Identifier: MIT */
/*
 * Fault schedules (docs/fault.md) over the sim fabric on its virtual clock:
 * a seeded schedule replays exactly (the same SEND trace, virtual time,
 * fault count and bytes, twice), another seed gives another run, the data
 * stays byte-exact; faults that kill the only link end the connection on
 * both sides with an error, promptly in virtual time.
 */
#include "usmc_core_test.h"
#include "usmc_clc.h"
#include "usmc_llc.h"

typedef struct run_result {
	usmc_tstamp end;
	uint64_t fired;
	size_t ntrace;
	uint64_t trace_hash;
	uint64_t writes, write_bytes;
	int bad;
	uint64_t got1, got2;
} run_result;

static void run(const char *sched, run_result *r)
{
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};
	usmc_settings st = small_settings(16384);
	usmc_fault_sched fa, fb;
	usmc_sim *sim = usmc_sim_new(5);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	const usmc_sim_trace *t;
	char err[200];

	memset(r, 0, sizeof(*r));
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	/* the schedules start now, on the virtual clock */
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse(sched, usmc_sim_now(sim),
						    &fa, err, sizeof(err)),
			     0);
	fb = fa;
	usmc_sim_node_set_faults(a, &fa);
	usmc_sim_node_set_faults(b, &fb);
	usmc_sim_trace_clear(sim);
	pump_init(&p1, c, s, 600000, 1, 7000);
	pump_init(&p2, s, c, 300000, 2, 5000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, usmc_sim_now(sim) + 600 * SEC), 0);
	r->end = usmc_sim_now(sim);
	r->fired =
		usmc_sim_node_faults_fired(a) + usmc_sim_node_faults_fired(b);
	t = usmc_sim_get_trace(sim, &r->ntrace);
	r->trace_hash = fnv(0xcbf29ce484222325ull, t, r->ntrace * sizeof(*t));
	r->writes = usmc_sim_get_stats(sim)->writes;
	r->write_bytes = usmc_sim_get_stats(sim)->write_bytes;
	r->bad = p1.bad + p2.bad;
	r->got1 = p1.readn;
	r->got2 = p2.readn;
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_node_set_faults(b, NULL);
	usmc_sim_del(sim);
}

static void test_replay(void)
{
	static const char *sched =
		"seed=42; drop:rate=0.05; delay:rate=0.05,by=3ms; "
		"duplicate:rate=0.05; reorder:rate=0.02; corrupt:rate=0.02";
	static const char *other =
		"seed=43; drop:rate=0.05; delay:rate=0.05,by=3ms; "
		"duplicate:rate=0.05; reorder:rate=0.02; corrupt:rate=0.02";
	run_result r1, r2, r3, r0;

	run("", &r0);
	run(sched, &r1);
	run(sched, &r2);
	run(other, &r3);
	fprintf(stderr,
		"  [no faults: %llu ms, %zu SENDs; seed 42: %llu faults, %llu "
		"ms, %zu SENDs (twice); seed 43: %llu faults, %llu ms]\n",
		(unsigned long long)(r0.end / USMC_NS_PER_MS), r0.ntrace,
		(unsigned long long)r1.fired,
		(unsigned long long)(r1.end / USMC_NS_PER_MS), r1.ntrace,
		(unsigned long long)r3.fired,
		(unsigned long long)(r3.end / USMC_NS_PER_MS));
	USMC_ASSERT_EQ(r0.fired, 0);
	CU_ASSERT_TRUE(r1.fired > 20);
	/* exact replay */
	USMC_ASSERT_EQ(r1.end, r2.end);
	USMC_ASSERT_EQ(r1.fired, r2.fired);
	USMC_ASSERT_EQ(r1.ntrace, r2.ntrace);
	USMC_ASSERT_EQ(r1.trace_hash, r2.trace_hash);
	USMC_ASSERT_EQ(r1.writes, r2.writes);
	USMC_ASSERT_EQ(r1.write_bytes, r2.write_bytes);
	/* the faults cost time, another seed gives another run */
	CU_ASSERT_TRUE(r1.end > r0.end);
	CU_ASSERT_TRUE(r3.end != r1.end || r3.trace_hash != r1.trace_hash);
	/* and the data arrives byte-exact every time */
	USMC_ASSERT_EQ(r0.bad + r1.bad + r2.bad + r3.bad, 0);
	USMC_ASSERT_EQ(r1.got1, 600000);
	USMC_ASSERT_EQ(r1.got2, 300000);
	USMC_ASSERT_EQ(r3.got1, 600000);
	USMC_ASSERT_EQ(r3.got2, 300000);
}

/* Timed clauses (after=, for=) follow the virtual clock: a schedule of
 * windows replays exactly, and its faults fall inside them. */
static void test_timed_replay(void)
{
	static const char *sched = "seed=44; drop:after=200us,for=300us; "
				   "delay:rate=0.2,by=2ms,after=500us,for=1ms; "
				   "corrupt:rate=0.05,after=1ms";
	run_result r1, r2;

	run(sched, &r1);
	run(sched, &r2);
	fprintf(stderr, "  [timed: %llu faults, %llu ms, %zu SENDs (twice)]\n",
		(unsigned long long)r1.fired,
		(unsigned long long)(r1.end / USMC_NS_PER_MS), r1.ntrace);
	CU_ASSERT_TRUE(r1.fired > 10);
	USMC_ASSERT_EQ(r1.end, r2.end);
	USMC_ASSERT_EQ(r1.fired, r2.fired);
	USMC_ASSERT_EQ(r1.ntrace, r2.ntrace);
	USMC_ASSERT_EQ(r1.trace_hash, r2.trace_hash);
	USMC_ASSERT_EQ(r1.writes, r2.writes);
	USMC_ASSERT_EQ(r1.write_bytes, r2.write_bytes);
	USMC_ASSERT_EQ(r1.bad + r2.bad, 0);
	USMC_ASSERT_EQ(r1.got1, 600000);
	USMC_ASSERT_EQ(r1.got2, 300000);
}

/* |sched| on the client node kills the only link during a two-way
 * transfer: both conns end with an error within 10 s of virtual time, and
 * what each read was correct. The far end learns by its next WR failing
 * (retry exhaustion on the dead QP), or, with nothing in flight when the
 * fault struck (qp-error by time acts at its time, maybe with the
 * server's window full), by its TEST_LINK (2 s here). */
static void fatal(const char *sched)
{
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};
	usmc_settings st = small_settings(16384);
	usmc_fault_sched f;
	usmc_sim *sim = usmc_sim_new(9);
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_tstamp t0;

	st.testlink_time = 2 * SEC;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	t0 = usmc_sim_now(sim);
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse(sched, t0, &f, NULL, 0), 0);
	usmc_sim_node_set_faults(a, &f);
	pump_init(&p1, c, s, 4u << 20, 3, 7000);
	pump_init(&p2, s, c, 4u << 20, 4, 7000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, t0 + 60 * SEC), -1);
	/* a side with nothing in flight learns by its TEST_LINK */
	while (!(c->ev[USMC_EV_ERROR] && s->ev[USMC_EV_ERROR]) &&
	       usmc_sim_now(sim) < t0 + 20 * SEC)
		usmc_sim_run(sim, usmc_sim_now(sim) + 100 * USMC_NS_PER_MS);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 5 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 1);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	/* both moved data: reset, both ends */
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	CU_ASSERT_TRUE(p1.readn < p1.total);
	/* promptly: both ends know within a few retransmit timeouts */
	fprintf(stderr, "  [%s: both ended %llu ms after t0]\n", sched,
		(unsigned long long)((usmc_sim_now(sim) - t0) /
				     USMC_NS_PER_MS));
	CU_ASSERT_TRUE(usmc_sim_now(sim) - t0 <= 10 * SEC);
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_del(sim);
}

static void test_fail_post(void)
{
	fatal("fail-post:op=WRITE,nth=20");
}

static void test_qp_error(void)
{
	fatal("qp-error:after=5ms");
}

static void test_device_fatal(void)
{
	fatal("device-fatal:nth=50");
}

/* Two connections on one link group between client |a| and server |b|. */
static void two_conns(usmc_sim *sim, usmc_sim_node *a, usmc_sim_node *b,
		      usmc_sim_ep **c, usmc_sim_ep **s)
{
	usmc_conn_info i1, i2;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[0], &s[0]), 0);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[1], &s[1]), 0);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_TRUE_FATAL(established(c[i]) && established(s[i]));
	usmc_conn_get_info(c[0]->conn, &i1);
	usmc_conn_get_info(c[1]->conn, &i2);
	USMC_ASSERT_EQ_FATAL(i1.lgr_id, i2.lgr_id);
}

/* The only link died under an established connection: one that moved
 * data ended with exactly one USMC_EV_ERROR, CONNRESET; one that moved
 * none fell back to TCP (docs/core.md "Failover"). */
static void ended(const usmc_sim_ep *ep, int moved)
{
	USMC_ASSERT_EQ(ep->ev[USMC_EV_ESTABLISHED], 1);
	if (moved) {
		USMC_ASSERT_EQ(ep->ev[USMC_EV_ERROR], 1);
		USMC_ASSERT_EQ(ep->ev[USMC_EV_FALLBACK], 0);
		USMC_ASSERT_EQ(usmc_conn_error(ep->conn), USMC_ERR_CONNRESET);
	} else {
		USMC_ASSERT_EQ(ep->ev[USMC_EV_ERROR], 0);
		USMC_ASSERT_EQ(ep->ev[USMC_EV_FALLBACK], 1);
		USMC_ASSERT_EQ(usmc_conn_get_mode(ep->conn),
			       USMC_MODE_FALLBACK);
		USMC_ASSERT_EQ(usmc_conn_fallback_reason(ep->conn),
			       SMC_CLC_DECL_NOACTLINK);
	}
}

static void set_faults(usmc_sim_node *n, usmc_fault_sched *f, const char *sc,
		       usmc_tstamp now)
{
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse(sc, now, f, NULL, 0), 0);
	usmc_sim_node_set_faults(n, f);
}

/* The first RDMA WRITE of a usmc_conn_write cannot be posted: the write
 * still returns its byte count with nothing ended, and only then, when
 * the fabric pulls the WR and reports the failure, does the link group
 * end: the writer reset, the others (no data moved) on TCP, the
 * server's once its TEST_LINK finds the peer QP gone; no byte delivered,
 * the lgr freed. */
static void test_fail_post_write_in_write(void)
{
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(11);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c[2], *s[2];
	usmc_fault_sched f;
	uint8_t buf[5000];
	usmc_tstamp t0;
	uint64_t wbytes;

	two_conns(sim, a, b, c, s);
	t0 = usmc_sim_now(sim);
	set_faults(a, &f, "fail-post:op=WRITE,nth=1", t0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	wbytes = usmc_sim_get_stats(sim)->write_bytes;
	USMC_ASSERT_EQ(usmc_conn_write(c[0]->conn, buf, sizeof(buf), t0),
		       (usmc_ssize)sizeof(buf));
	/* nothing was posted inside the call, so nothing failed in it */
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 0);
	USMC_ASSERT_EQ(c[0]->ev[USMC_EV_ERROR] + c[1]->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(usmc_conn_error(c[0]->conn), 0);
	USMC_ASSERT_EQ(usmc_conn_state(c[1]->conn), SMC_ACTIVE);
	CU_ASSERT_PTR_NOT_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));

	/* the fabric drains the queue: the post fails, the lgr ends */
	usmc_sim_run(sim, t0 + 40 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 1);
	/* the writer is reset; the others moved nothing (the server never
	 * got the bytes: the race of docs/core.md) and use TCP */
	ended(c[0], 1);
	ended(c[1], 0);
	ended(s[0], 0);
	ended(s[1], 0);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->write_bytes, wbytes);
	USMC_ASSERT_EQ(usmc_conn_readable(s[0]->conn), 0);
	USMC_ASSERT_EQ(usmc_conn_write(c[0]->conn, buf, 1, usmc_sim_now(sim)),
		       USMC_ERR_CONNRESET);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_del(sim);
}

/* A second connection on the link group starts with the server's LLC
 * CONFIRM_RKEY (a new RMB on an existing link group, RFC 7609 §3.3.2), so
 * the first SEND the client posts is an LLC message, its answer: it cannot
 * be posted. The link group ends: the established connection (no data
 * moved) falls back to TCP on both sides, the new one falls back to TCP. */
static void test_fail_post_llc(void)
{
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(12);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c1, *s1, *c2, *s2;
	const usmc_sim_trace *t;
	usmc_fault_sched f;
	usmc_tstamp t0;
	size_t n;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c1, &s1), 0);
	CU_ASSERT_TRUE_FATAL(established(c1) && established(s1));
	t0 = usmc_sim_now(sim);
	set_faults(a, &f, "fail-post:op=SEND,nth=1", t0);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c2, &s2), 0);
	usmc_sim_run(sim, t0 + 40 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 1);
	/* the server's CONFIRM_RKEY went out, the client sent nothing */
	t = usmc_sim_get_trace(sim, &n);
	USMC_ASSERT_EQ_FATAL(n >= 1, 1);
	USMC_ASSERT_EQ(t[0].from, usmc_sim_node_index(b));
	USMC_ASSERT_EQ(t[0].msg[0], SMC_LLC_CONFIRM_RKEY_V2);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_NOT_EQUAL(t[i].from, usmc_sim_node_index(a));
	ended(c1, 0);
	ended(s1, 0);
	/* the new one was not on the lgr yet: the server's CONFIRM_RKEY
	 * goes unanswered, it declines, and both ends use TCP */
	USMC_ASSERT_EQ(c2->ev[USMC_EV_ESTABLISHED] + c2->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(c2->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c2->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(s2->ev[USMC_EV_ESTABLISHED] + s2->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(s2->ev[USMC_EV_FALLBACK], 1);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_del(sim);
}

/* A second connection on the link group: the server's CONFIRM_RKEY for
 * its new RMB cannot be posted (smcr_lgr_reg_rmbs failing), so the server
 * declines ERR_REGBUF and both ends of that connection use TCP. */
static void test_fail_post_confirm_rkey(void)
{
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(15);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c1, *s1, *c2, *s2;
	usmc_fault_sched f;
	usmc_tstamp t0;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c1, &s1), 0);
	CU_ASSERT_TRUE_FATAL(established(c1) && established(s1));
	t0 = usmc_sim_now(sim);
	set_faults(b, &f, "fail-post:op=SEND,nth=1", t0);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c2, &s2), 0);
	usmc_sim_run(sim, t0 + 40 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(b), 1);
	USMC_ASSERT_EQ(s2->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s2->conn),
		       SMC_CLC_DECL_ERR_REGBUF);
	USMC_ASSERT_EQ(c2->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c2->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c2->conn),
		       SMC_CLC_DECL_ERR_REGBUF);
	USMC_ASSERT_EQ(
		c2->ev[USMC_EV_ESTABLISHED] + s2->ev[USMC_EV_ESTABLISHED], 0);
	usmc_sim_node_set_faults(b, NULL);
	usmc_sim_del(sim);
}

/* First contact, the server's CONFIRM_LINK request cannot be posted: the
 * new link group ends while its connection is still in the handshake, so
 * the server declines (SMC_CLC_DECL_TIMEOUT_CL, as smcr_serv_conf_first_link
 * when the request cannot be sent, after its second's look for a Decline)
 * and both ends carry on over TCP, rather than the server's connection
 * failing. */
static void test_fail_post_first_contact(void)
{
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(14);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_fault_sched f;
	usmc_tstamp t0 = usmc_sim_now(sim);

	set_faults(b, &f, "fail-post:op=SEND,nth=1", t0);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	usmc_sim_run(sim, t0 + 40 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(b), 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ESTABLISHED] + s->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(s->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ESTABLISHED] + c->ev[USMC_EV_ERROR], 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK], 1);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_node_set_faults(b, NULL);
	usmc_sim_del(sim);
}

/* |decl| fell back to TCP with |reason| and |peer| with PEERDECL and
 * |reason| as the diagnosis; neither was ever on SMC-R. */
static void declined(const usmc_sim_ep *decl, const usmc_sim_ep *peer,
		     uint32_t reason)
{
	USMC_ASSERT_EQ(decl->ev[USMC_EV_ESTABLISHED] + decl->ev[USMC_EV_ERROR],
		       0);
	USMC_ASSERT_EQ(decl->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(decl->conn), reason);
	USMC_ASSERT_EQ(peer->ev[USMC_EV_ESTABLISHED] + peer->ev[USMC_EV_ERROR],
		       0);
	USMC_ASSERT_EQ(peer->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(peer->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(peer->conn), reason);
}

/* First contact, node |rw|'s first CONFIRM_LINK of direction |dir| (the
 * server's request or the client's response) goes out without the
 * NO_RMBE_EYEC flag (rewrite-llc): the receiver declines RMBE_EC at once,
 * as the kernel's smc_llc_eval_conf_link fails in
 * smcr_clnt_conf_first_link and smcr_serv_conf_first_link; both ends use
 * TCP and neither keeps the link group. */
static void rmbe_ec(int server_rewrites)
{
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(16);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_node *rw = server_rewrites ? b : a;
	usmc_sim_ep *c, *s;
	const usmc_sim_trace *t;
	usmc_fault_sched f;
	usmc_tstamp t0 = usmc_sim_now(sim);
	size_t n, seen = 0;

	set_faults(rw, &f,
		   server_rewrites ? "rewrite-llc:type=CONFIRM_LINK,dir=req,"
				     "clear=0x03,nth=1"
				   : "rewrite-llc:type=CONFIRM_LINK,dir=resp,"
				     "clear=0x03,nth=1",
		   t0);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	usmc_sim_run(sim, t0 + 40 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(rw), 1);
	/* the CONFIRM_LINK went out with neither flag bit */
	t = usmc_sim_get_trace(sim, &n);
	for (size_t i = 0; i < n; i++)
		if (t[i].from == usmc_sim_node_index(rw) &&
		    (t[i].msg[0] & 0x0f) == SMC_LLC_CONFIRM_LINK) {
			USMC_ASSERT_EQ(t[i].msg[3] & SMC_LLC_FLAG_NO_RMBE_EYEC,
				       0);
			seen++;
		}
	USMC_ASSERT_EQ(seen, 1);
	if (server_rewrites)
		declined(c, s, SMC_CLC_DECL_RMBE_EC);
	else
		declined(s, c, SMC_CLC_DECL_RMBE_EC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_node_set_faults(rw, NULL);
	usmc_sim_del(sim);
}

static void test_rmbe_ec_client(void)
{
	rmbe_ec(1);
}

static void test_rmbe_ec_server(void)
{
	rmbe_ec(0);
}

/* A second connection on the link group: node |rw| answers the peer's
 * CONFIRM_RKEY for the new RMB with RKEY_NEG (rewrite-llc), so the peer
 * declines ERR_REGBUF, as smc_llc_do_confirm_rkey failing makes
 * smcr_lgr_reg_rmbs fail; that connection uses TCP on both ends, the
 * first one and the link group stay, and data still moves on the first. */
static void err_regbuf(int server_rewrites)
{
	static pump p1;
	pump *ps[1] = {&p1};
	usmc_settings st = small_settings(16384);
	usmc_sim *sim = usmc_sim_new(17);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_node *rw = server_rewrites ? b : a;
	usmc_sim_ep *c1, *s1, *c2, *s2;
	usmc_fault_sched f;
	usmc_tstamp t0;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c1, &s1), 0);
	CU_ASSERT_TRUE_FATAL(established(c1) && established(s1));
	t0 = usmc_sim_now(sim);
	set_faults(rw, &f,
		   "rewrite-llc:type=CONFIRM_RKEY,dir=resp,set=0x20,nth=1", t0);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c2, &s2), 0);
	usmc_sim_run(sim, t0 + 40 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(rw), 1);
	if (server_rewrites)
		declined(c2, s2, SMC_CLC_DECL_ERR_REGBUF);
	else
		declined(s2, c2, SMC_CLC_DECL_ERR_REGBUF);
	CU_ASSERT_TRUE(established(c1) && established(s1));
	CU_ASSERT_PTR_NOT_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NOT_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	pump_init(&p1, c1, s1, 200000, 3, 7000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 1, usmc_sim_now(sim) + 60 * SEC), 0);
	USMC_ASSERT_EQ(p1.bad, 0);
	USMC_ASSERT_EQ(p1.readn, 200000);
	usmc_sim_node_set_faults(rw, NULL);
	usmc_sim_del(sim);
}

static void test_err_regbuf_client(void)
{
	err_regbuf(1);
}

static void test_err_regbuf_server(void)
{
	err_regbuf(0);
}

/* The client's TEST_LINK (an LLC request, RFC 7609 §3.3.4), queued by a
 * usmc_ctx_handle_expiry the test makes itself, cannot be posted: the call
 * returns with nothing ended, and the link group ends when the fabric
 * reports the failure: both connections (no data) fall back to TCP; the
 * server learns when it sends, so the one that wrote is reset. */
static void test_fail_post_testlink(void)
{
	usmc_settings sc = small_settings(16384), ss = sc;
	usmc_sim *sim = usmc_sim_new(13);
	usmc_sim_node *a, *b;
	usmc_sim_ep *c[2], *s[2];
	usmc_fault_sched f;
	usmc_ctx *ca;
	usmc_tstamp t;

	sc.testlink_time = 2 * SEC;
	ss.testlink_time = 0; /* only the client's TEST_LINK */
	a = usmc_sim_node_new(sim, &sc);
	b = usmc_sim_node_new(sim, &ss);
	two_conns(sim, a, b, c, s);
	ca = usmc_sim_node_ctx(a);
	t = usmc_ctx_get_expiry(ca);
	CU_ASSERT_TRUE_FATAL(t != USMC_TSTAMP_NONE && t > usmc_sim_now(sim));
	usmc_sim_run(sim, t - 1);
	USMC_ASSERT_EQ_FATAL(usmc_ctx_get_expiry(ca), t);
	set_faults(a, &f, "fail-post:op=SEND,nth=1", t - 1);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ(usmc_ctx_handle_expiry(ca, t), 0);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 0);
	USMC_ASSERT_EQ(c[0]->ev[USMC_EV_ERROR] + c[1]->ev[USMC_EV_ERROR], 0);
	CU_ASSERT_PTR_NOT_NULL(usmc_ctx_next_lgr(ca, NULL));
	usmc_sim_run(sim, t + SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 1);
	for (int i = 0; i < 2; i++)
		ended(c[i], 0);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(ca, NULL));
	/* the server (no TEST_LINK of its own) learns at its next send */
	USMC_ASSERT_EQ(usmc_conn_write(s[0]->conn, (const uint8_t *)"x", 1,
				       usmc_sim_now(sim)),
		       1);
	usmc_sim_run(sim, t + 10 * SEC);
	ended(s[0], 1);
	ended(s[1], 0);
	{
		size_t n;

		usmc_sim_get_trace(sim, &n);
		USMC_ASSERT_EQ(n, 0); /* the TEST_LINK never left */
	}
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_del(sim);
}

static CU_TestInfo tests[] = {
	{"seeded schedule replays exactly, data byte-exact", test_replay},
	{"a timed schedule replays exactly on the virtual clock",
	 test_timed_replay},
	{"fail-post nth=20: both ends end with an error", test_fail_post},
	{"qp-error by time: both ends end with an error", test_qp_error},
	{"device-fatal nth=50: both ends end with an error", test_device_fatal},
	{"a WRITE that fails to post ends the lgr after usmc_conn_write",
	 test_fail_post_write_in_write},
	{"an LLC answer that fails to post ends the lgr", test_fail_post_llc},
	{"a CONFIRM_RKEY that fails to post: ERR_REGBUF",
	 test_fail_post_confirm_rkey},
	{"first contact: a failed post declines, both ends use TCP",
	 test_fail_post_first_contact},
	{"a first CONFIRM_LINK without NO_RMBE_EYEC: the client declines "
	 "RMBE_EC",
	 test_rmbe_ec_client},
	{"a CONFIRM_LINK response without NO_RMBE_EYEC: the server declines "
	 "RMBE_EC",
	 test_rmbe_ec_server},
	{"a CONFIRM_RKEY answered RKEY_NEG: the client declines ERR_REGBUF",
	 test_err_regbuf_client},
	{"a CONFIRM_RKEY answered RKEY_NEG: the server declines ERR_REGBUF",
	 test_err_regbuf_server},
	{"a TEST_LINK that fails to post ends the lgr after the timer call",
	 test_fail_post_testlink},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"fault_sim", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
