/* SPDX-License-Identifier: MIT */
/*
 * Fault schedules (docs/fault.md) over the sim fabric on its virtual clock:
 * a seeded schedule replays exactly (the same SEND trace, virtual time,
 * fault count and bytes, twice), another seed gives another run, the data
 * stays byte-exact; faults that kill the only link end the connection on
 * both sides with an error, promptly in virtual time.
 */
#include "usmc_core_test.h"

typedef struct run_result {
	usmc_tstamp end;
	uint64_t fired;
	size_t ntrace;
	uint64_t trace_hash;
	uint64_t writes, write_bytes;
	int bad;
	uint64_t got1, got2;
} run_result;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

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

/* |sched| on the client node kills the only link during a two-way
 * transfer: both conns end with an error within |limit| of virtual time,
 * and what each read was correct. */
static void fatal(const char *sched)
{
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};
	usmc_settings st = small_settings(16384);
	usmc_fault_sched f;
	usmc_sim *sim = usmc_sim_new(9);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_tstamp t0;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	t0 = usmc_sim_now(sim);
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse(sched, t0, &f, NULL, 0), 0);
	usmc_sim_node_set_faults(a, &f);
	pump_init(&p1, c, s, 4u << 20, 3, 7000);
	pump_init(&p2, s, c, 4u << 20, 4, 7000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, t0 + 60 * SEC), -1);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 5 * SEC);
	USMC_ASSERT_EQ(usmc_sim_node_faults_fired(a), 1);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	CU_ASSERT_TRUE(usmc_conn_error(c->conn) == USMC_ERR_CONNABORTED ||
		       usmc_conn_error(c->conn) == USMC_ERR_CONNRESET);
	CU_ASSERT_TRUE(usmc_conn_error(s->conn) == USMC_ERR_CONNABORTED ||
		       usmc_conn_error(s->conn) == USMC_ERR_CONNRESET);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	CU_ASSERT_TRUE(p1.readn < p1.total);
	/* promptly: both ends know within a few retransmit timeouts */
	if (usmc_sim_now(sim) - t0 > 10 * SEC)
		fprintf(stderr, "  %s: ended %llu ms after the fault\n", sched,
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

static CU_TestInfo tests[] = {
	{"seeded schedule replays exactly, data byte-exact", test_replay},
	{"fail-post nth=20: both ends end with an error", test_fail_post},
	{"qp-error by time: both ends end with an error", test_qp_error},
	{"device-fatal nth=50: both ends end with an error", test_device_fatal},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"fault_sim", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
