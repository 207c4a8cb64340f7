/* SPDX-License-Identifier: MIT */
/*
 * The transport conformance suite: every case runs over every backend in
 * the fixture table below (sim, softroce, and the fault decorator over
 * each with no faults set), through the ops table only. A fixture opens a
 * pair of devices, lets its time pass (the sim world's virtual clock, or
 * the wall clock and epoll), reads the counters the cases check, and says
 * what it can do; a case a backend cannot run is registered inactive,
 * printed as SKIP with the reason and counted, never reported as passed.
 * Backend-specific checks (softroce's wire, options, loss) stay in
 * test_softroce.c, test_tp_sim.c and test_fault.c. Every wait is bounded;
 * data is compared byte for byte.
 *
 * verbs (when built) runs only when named: it needs an RDMA device and
 * two local addresses with RoCEv2 GIDs, USMC_TEST_VERBS_ADDR0 and _ADDR1
 * (on one device or two), and USMC_TEST_VERBS_OPTS for its options.
 *
 * Usage: test_tp_conformance [BACKEND...] (default: all but verbs).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "softroce.h"
#include "tp_pair.h"
#include "usmc_fault.h"
#include "usmc_test.h"
#include "usmc_tp_sim.h"
#include "usmc_transport.h"
#ifdef USMC_HAVE_VERBS
#include "usmc_tp_verbs.h"
#endif

typedef tp_side side;
typedef tp_pair pair;
typedef struct tp_fixture fixture;

/* The counters the cases check, whatever the backend calls them; |have|
 * says which the backend keeps (CNT_*): a check of one it lacks is said
 * and left out, the rest of the case runs. */
typedef struct tp_counts {
	uint64_t rnr_nak_tx, rnr_nak_rx;
	uint64_t nak_err_tx, nak_err_rx;
	uint64_t retry_timeouts;
	uint32_t have;
} tp_counts;
#define CNT_RNR_NAK_TX	   0x01u
#define CNT_RNR_NAK_RX	   0x02u
#define CNT_NAK_ERR_TX	   0x04u
#define CNT_NAK_ERR_RX	   0x08u
#define CNT_RETRY_TIMEOUTS 0x10u
#define CNT_ALL		   0x1fu

/* What a fixture can do beyond the ops table. */
#define CAP_PORT_CTL 0x1u /* take a port down and up, kill a device */

struct tp_fixture {
	const char *name;
	/* two devices (one_dev: one device for both QPs) into p->s[].tp */
	int (*open_pair)(pair *p, int one_dev);
	/* let up to |ms| of the backend's time pass (returning early when
	 * a device fd is readable); polls no CQ */
	void (*drive)(pair *p, int ms);
	uint64_t (*clock_ms)(const pair *p);
	int (*stats)(usmc_tp *tp, tp_counts *c);
	int (*port_set)(usmc_tp *tp, int up);
	int (*kill)(usmc_tp *tp);
	uint32_t caps;
	const char *lacks; /* why caps are missing */
	/* optional: why this machine cannot run it (NULL: it can) */
	const char *(*unavailable)(void);
	/* an MR's lkey and rkey may be the same number (rxe's are) */
	int same_keys;
	/* run only when named on the command line */
	int explicit_only;
	/* a SEND longer than the receive WR fails as LOC_QP_OP_ERR there
	 * and REM_OP_ERR here, not LOC_LEN_ERR and REM_INV_REQ_ERR (the
	 * kernel's rxe NAKs it as a remote operational error; seen on 6.12) */
	int len_err_op;
};

static const fixture *cur;
/* counter checks left out (a backend that keeps no such counter) */
static unsigned int counter_skips;

/* ---- fixtures: softroce on loopback ----------------------------------- */

static int sr_open_dev(const char *name, const char *ip, uint16_t port,
		       usmc_tp **tp)
{
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;

	memset(&cfg, 0, sizeof(cfg));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	cfg.udp_port = port;
	return usmc_tp_open(name, &cfg, tp);
}

/* |arg|: the backend's name */
static int sr_open_side(void *arg, int i, const char *ip, uint16_t port,
			usmc_tp **tp)
{
	(void)i;
	return sr_open_dev(arg, ip, port, tp);
}

static int sr_open_named(pair *p, const char *name, int one_dev)
{
	return tp_pair_open_loopback(p, sr_open_side, (void *)name, one_dev,
				     one_dev ? 3 : 0);
}

static int open_softroce(pair *p, int one_dev)
{
	return sr_open_named(p, "softroce", one_dev);
}

static int open_fault_softroce(pair *p, int one_dev)
{
	return sr_open_named(p, "fault:softroce", one_dev);
}

static void drive_wall(pair *p, int ms)
{
	struct epoll_event ev[2];

	epoll_wait(p->ep, ev, 2, ms);
}

static uint64_t clock_wall(const pair *p)
{
	(void)p;
	return tp_now_ms();
}

static usmc_tp *inner_of(usmc_tp *tp)
{
	return tp->ops == &usmc_tp_fault_ops ? usmc_fault_inner(tp) : tp;
}

static int stats_softroce(usmc_tp *tp, tp_counts *c)
{
	usmc_softroce_stats st;
	int rc = usmc_softroce_get_stats(inner_of(tp), &st);

	if (rc)
		return rc;
	c->rnr_nak_tx = st.rnr_nak_tx;
	c->rnr_nak_rx = st.rnr_nak_rx;
	c->nak_err_tx = st.nak_err_tx;
	c->nak_err_rx = st.nak_err_rx;
	c->retry_timeouts = st.retry_timeouts;
	c->have = CNT_ALL;
	return 0;
}

/* ---- fixtures: sim, in a world of this test's own ---------------------- */

static int sim_open_dev(pair *p, const char *name, const char *ip, usmc_tp **tp)
{
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;

	memset(&cfg, 0, sizeof(cfg));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	cfg.options = "mtu=4096";
	cfg.backend_ctx = p->backend_ctx;
	return usmc_tp_open(name, &cfg, tp);
}

static int sim_open_named(pair *p, const char *name, int one_dev)
{
	int rc;

	p->backend_ctx = usmc_tp_sim_world_new(0x5eed);
	if (!p->backend_ctx)
		return USMC_ERR_NOMEM;
	rc = sim_open_dev(p, name, "10.0.0.1", &p->s[0].tp);
	if (!rc && one_dev)
		p->s[1].tp = p->s[0].tp;
	else if (!rc)
		rc = sim_open_dev(p, name, "10.0.0.2", &p->s[1].tp);
	if (rc) {
		if (p->s[0].tp)
			usmc_tp_close(p->s[0].tp);
		p->s[0].tp = p->s[1].tp = NULL;
		usmc_tp_sim_world_del(p->backend_ctx);
		p->backend_ctx = NULL;
	}
	return rc;
}

static int open_sim(pair *p, int one_dev)
{
	return sim_open_named(p, "sim", one_dev);
}

static int open_fault_sim(pair *p, int one_dev)
{
	return sim_open_named(p, "fault:sim", one_dev);
}

/* Virtual time: nothing happens unless the test runs the world. */
static void drive_sim(pair *p, int ms)
{
	usmc_tp_sim_world_run(p->backend_ctx,
			      usmc_tp_sim_world_now(p->backend_ctx) +
				      (usmc_tstamp)ms * 1000000u);
}

static uint64_t clock_sim(const pair *p)
{
	return usmc_tp_sim_world_now(p->backend_ctx) / 1000000u;
}

static int stats_sim(usmc_tp *tp, tp_counts *c)
{
	usmc_tp_sim_stats st;
	int rc = usmc_tp_sim_get_stats(inner_of(tp), &st);

	if (rc)
		return rc;
	c->rnr_nak_tx = st.rnr_nak_tx;
	c->rnr_nak_rx = st.rnr_nak_rx;
	c->nak_err_tx = st.nak_err_tx;
	c->nak_err_rx = st.nak_err_rx;
	c->retry_timeouts = st.retry_timeouts;
	c->have = CNT_ALL;
	return 0;
}

static int port_sim(usmc_tp *tp, int up)
{
	return usmc_tp_sim_port_set(inner_of(tp), up);
}

static int kill_sim(usmc_tp *tp)
{
	return usmc_tp_sim_kill(inner_of(tp));
}

static const char sr_lacks[] =
	"its port is the host's interface, which the test does not control";

/* ---- fixture: verbs, on the RDMA device(s) of two local addresses ------ */

#ifdef USMC_HAVE_VERBS
static char vb_why[600];

static const char *verbs_unavailable(void)
{
	int n = usmc_tp_verbs_device_count();

	if (n < 0 && *usmc_tp_verbs_load_error()) {
		/* libusmc-verbs.so, or libibverbs behind it, did not load */
		snprintf(vb_why, sizeof(vb_why), "%s",
			 usmc_tp_verbs_load_error());
		return vb_why;
	}
	if (n < 0) {
		snprintf(vb_why, sizeof(vb_why), "libibverbs: %s",
			 usmc_strerror(n));
		return vb_why;
	}
	if (n == 0)
		return "no RDMA device here (ibv_get_device_list finds none; "
		       "the kernel's rxe gives one: rdma link add)";
	if (!getenv("USMC_TEST_VERBS_ADDR0") ||
	    !getenv("USMC_TEST_VERBS_ADDR1"))
		return "USMC_TEST_VERBS_ADDR0 and USMC_TEST_VERBS_ADDR1 are "
		       "unset (two local addresses with RoCEv2 GIDs)";
	return NULL;
}

static int vb_open_dev(const char *env, usmc_tp **tp)
{
	const char *ip = getenv(env);
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&cfg.local_addr;

	memset(&cfg, 0, sizeof(cfg));
	if (ip && inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (ip && inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return USMC_ERR_INVALID_ARGUMENT;
	cfg.options = getenv("USMC_TEST_VERBS_OPTS");
	return usmc_tp_open("verbs", &cfg, tp);
}

/* The port counters are the device's, from its first open on: each pair
 * counts from its own start. */
static struct {
	usmc_tp *tp;
	tp_counts base;
} vb_base[2];

static int stats_verbs_abs(usmc_tp *tp, tp_counts *c)
{
	/* rxe's counter names; another provider has other
	 * names, and what it lacks is not checked */
	static const struct {
		const char *name;
		uint32_t bit;
		size_t off;
	} m[] = {
		{"send_rnr_err", CNT_RNR_NAK_TX,
		 offsetof(tp_counts, rnr_nak_tx)},
		{"rcvd_rnr_err", CNT_RNR_NAK_RX,
		 offsetof(tp_counts, rnr_nak_rx)},
		/* a retransmission, and the timeout that ends the retries */
		{"completer_retry_err", CNT_RETRY_TIMEOUTS,
		 offsetof(tp_counts, retry_timeouts)},
		{"retry_exceeded_err", CNT_RETRY_TIMEOUTS,
		 offsetof(tp_counts, retry_timeouts)},
	};
	uint32_t miss = 0;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		uint64_t v;

		if (usmc_tp_verbs_hw_counter(tp, m[i].name, &v)) {
			miss |= m[i].bit;
			continue;
		}
		*(uint64_t *)((uint8_t *)c + m[i].off) += v;
		c->have |= m[i].bit;
	}
	c->have &= ~miss;
	return 0;
}

static int stats_verbs(usmc_tp *tp, tp_counts *c)
{
	uint64_t life_ms = 0;

	/* the kernel serves hw_counters from a cache kept "lifespan" ms
	 * (rdma_counter's hw stats): wait it out, there is no event */
	if (!usmc_tp_verbs_hw_counter(tp, "lifespan", &life_ms) &&
	    life_ms < 1000) {
		struct timespec ts = {0, (long)(life_ms + 1) * 1000000L};

		nanosleep(&ts, NULL);
	}
	stats_verbs_abs(tp, c);
	for (int i = 0; i < 2; i++)
		if (vb_base[i].tp == tp) {
			c->rnr_nak_tx -= vb_base[i].base.rnr_nak_tx;
			c->rnr_nak_rx -= vb_base[i].base.rnr_nak_rx;
			c->retry_timeouts -= vb_base[i].base.retry_timeouts;
		}
	return 0;
}

static int open_verbs(pair *p, int one_dev)
{
	int rc = vb_open_dev("USMC_TEST_VERBS_ADDR0", &p->s[0].tp);

	if (rc)
		return rc;
	if (one_dev) {
		p->s[1].tp = p->s[0].tp;
	} else {
		rc = vb_open_dev("USMC_TEST_VERBS_ADDR1", &p->s[1].tp);
		if (rc) {
			usmc_tp_close(p->s[0].tp);
			p->s[0].tp = NULL;
			return rc;
		}
	}
	for (int i = 0; i < 2; i++) {
		vb_base[i].tp = p->s[i].tp;
		stats_verbs_abs(p->s[i].tp, &vb_base[i].base);
	}
	return 0;
}

static const char vb_lacks[] =
	"its port is an RDMA device's (rxe: its netdev's), which the test "
	"does not control";
#endif

static const fixture fixtures[] = {
	{"sim", open_sim, drive_sim, clock_sim, stats_sim, port_sim, kill_sim,
	 CAP_PORT_CTL, NULL, NULL, 0, 0, 0},
	{"softroce", open_softroce, drive_wall, clock_wall, stats_softroce,
	 NULL, NULL, 0, sr_lacks, NULL, 0, 0, 0},
	{"fault:softroce", open_fault_softroce, drive_wall, clock_wall,
	 stats_softroce, NULL, NULL, 0, sr_lacks, NULL, 0, 0, 0},
	{"fault:sim", open_fault_sim, drive_sim, clock_sim, stats_sim, port_sim,
	 kill_sim, CAP_PORT_CTL, NULL, NULL, 0, 0, 0},
#ifdef USMC_HAVE_VERBS
	{"verbs", open_verbs, drive_wall, clock_wall, stats_verbs, NULL, NULL,
	 0, vb_lacks, verbs_unavailable, 1, 1, 1},
#endif
};
#define NFIX (sizeof(fixtures) / sizeof(fixtures[0]))

/* ---- generic helpers --------------------------------------------------- */

typedef tp_conn_params conn_params;

static const conn_params smc_params = TP_SMC_PARAMS;

static int open_pair(pair *p, int one_dev)
{
	int rc;

	tp_pair_init(p);
	p->fx = cur;
	p->drive = cur->drive;
	p->clock_ms = cur->clock_ms;
	p->round_ms = 2;
	rc = cur->open_pair(p, one_dev);
	if (rc)
		fprintf(stderr, "  [%s: open: %s]\n", cur->name,
			usmc_strerror(rc));
	return rc;
}

static int setup_dev(pair *p, const conn_params *cp, int one_dev)
{
	int rc = open_pair(p, one_dev);

	USMC_ASSERT_EQ(rc, 0);
	if (rc)
		return rc;
	tp_pair_create_qps(p, cp);
	tp_pair_connect(p, cp);
	return 0;
}

static int setup(pair *p, const conn_params *cp)
{
	return setup_dev(p, cp, 0);
}

static void teardown(pair *p)
{
	tp_pair_teardown(p);
	if (p->backend_ctx)
		usmc_tp_sim_world_del(p->backend_ctx);
}

static void counts(pair *p, int i, tp_counts *c)
{
	memset(c, 0, sizeof(*c));
	USMC_ASSERT_EQ(p->fx->stats(p->s[i].tp, c), 0);
}

/* Whether |c| has counter |bit|; if not, says the check is left out. */
static int counted(const tp_counts *c, uint32_t bit, const char *what)
{
	if (c->have & bit)
		return 1;
	counter_skips++;
	fprintf(stderr, "  [%s: keeps no %s counter: that check left out]\n",
		cur->name, what);
	return 0;
}

/* Side |i|'s QP counters (ops query_qp_stats) into |q|: 1 if the backend
 * keeps them; if not, says the checks are left out. Where the device
 * counters are kept too, the QP's must equal them: every case's device
 * has this one QP. */
static int qp_counted(pair *p, int i, usmc_tp_qp_stats *q)
{
	tp_counts c;
	int r = usmc_tp_query_qp_stats(p->s[i].qp, q);

	if (r == USMC_ERR_NOTSUP) {
		counter_skips++;
		fprintf(stderr,
			"  [%s: keeps no per-QP counters: those checks left "
			"out]\n",
			cur->name);
		return 0;
	}
	USMC_ASSERT_EQ(r, 0);
	if (r)
		return 0;
	counts(p, i, &c);
	if (c.have & CNT_RNR_NAK_RX)
		USMC_ASSERT_EQ(q->rnr_nak_rx, c.rnr_nak_rx);
	if (c.have & CNT_RETRY_TIMEOUTS)
		USMC_ASSERT_EQ(q->retry_timeouts, c.retry_timeouts);
	return 1;
}

/* FNV-1a, 64 bit: a checksum printed next to the byte compare. */
static uint64_t fnv(const uint8_t *b, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int all_bytes(const uint8_t *b, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != v)
			return 0;
	return 1;
}

/* ---- cases ------------------------------------------------------------- */

static void test_open_query(void)
{
	static const uint8_t zero[16];
	usmc_port_attr a[2];
	pair p;

	if (open_pair(&p, 0)) {
		CU_FAIL("open");
		return;
	}
	for (int i = 0; i < 2; i++) {
		USMC_ASSERT_EQ(usmc_tp_query_port(p.s[i].tp, &a[i]), 0);
		CU_ASSERT_TRUE(memcmp(a[i].gid, zero, 16) != 0);
		CU_ASSERT_TRUE(a[i].active_mtu >= USMC_IB_MTU_256 &&
			       a[i].active_mtu <= USMC_IB_MTU_4096);
		CU_ASSERT_TRUE(a[i].max_qp_wr > 0);
		CU_ASSERT_TRUE(a[i].name[0] != 0);
		CU_ASSERT_TRUE(usmc_tp_get_fd(p.s[i].tp) >= 0);
	}
	CU_ASSERT_TRUE(memcmp(a[0].gid, a[1].gid, 16) != 0);
	CU_ASSERT_NOT_EQUAL(usmc_tp_get_fd(p.s[0].tp),
			    usmc_tp_get_fd(p.s[1].tp));
	teardown(&p);
}

static void test_mr(void)
{
	usmc_tp_mr *m[4], *bad = NULL;
	pair p;

	if (open_pair(&p, 0)) {
		CU_FAIL("open");
		return;
	}
	for (int i = 0; i < 4; i++)
		m[i] = tp_mr(p.s[0].tp, 100 + 5000 * (size_t)i,
			     USMC_ACCESS_LOCAL_WRITE |
				     USMC_ACCESS_REMOTE_WRITE);
	for (int i = 0; i < 4; i++) {
		USMC_ASSERT_EQ(m[i]->access, USMC_ACCESS_LOCAL_WRITE |
						     USMC_ACCESS_REMOTE_WRITE);
		if (!cur->same_keys)
			CU_ASSERT_NOT_EQUAL(m[i]->lkey, m[i]->rkey);
		for (int j = i + 1; j < 4; j++) {
			CU_ASSERT_NOT_EQUAL(m[i]->rkey, m[j]->rkey);
			CU_ASSERT_NOT_EQUAL(m[i]->lkey, m[j]->lkey);
			CU_ASSERT_TRUE(m[i]->addr != m[j]->addr);
		}
		/* the memory is usable, all of it */
		memset(m[i]->addr, 0xa5, m[i]->length);
	}
	USMC_ASSERT_EQ(usmc_tp_alloc_mr(p.s[0].tp, 0, 0, &bad),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(bad);
	/* freed in another order than allocated, and again */
	usmc_tp_free_mr(m[2]);
	usmc_tp_free_mr(m[0]);
	m[0] = tp_mr(p.s[0].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	CU_ASSERT_NOT_EQUAL(m[0]->lkey, m[1]->lkey);
	CU_ASSERT_NOT_EQUAL(m[0]->lkey, m[3]->lkey);
	usmc_tp_free_mr(m[0]);
	usmc_tp_free_mr(m[1]);
	usmc_tp_free_mr(m[3]);
	teardown(&p);
}

/* The QP state machine: RESET -> INIT -> RTR -> RTS -> ERR, and what is
 * refused on the way. */
static void test_qp_states(void)
{
	usmc_qp_init_attr ia;
	usmc_tp_qp *qp, *qp2, *bad = NULL;
	usmc_port_attr port;
	usmc_qp_attr a;
	usmc_recv_wr rw;
	usmc_wc wc;
	pair p;
	int n = 0;

	if (open_pair(&p, 0)) {
		CU_FAIL("open");
		return;
	}
	USMC_ASSERT_EQ(usmc_tp_query_port(p.s[0].tp, &port), 0);
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 4;
	ia.max_recv_wr = 4;
	ia.max_send_sge = 1;
	ia.max_recv_sge = 1;
	ia.context = &ia;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp2), 0);
	CU_ASSERT_PTR_EQUAL(usmc_tp_qp_context(qp), &ia);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(qp), 0);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(qp), usmc_tp_qp_num(qp2));
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_RESET);

	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_RTS;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_STATE);
	a.qp_state = USMC_QPS_RTR;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_STATE);
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_INIT);
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = 9; /* no such MTU */
	a.dest_qp_num = usmc_tp_qp_num(qp2);
	memcpy(a.dgid, port.gid, 16);
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_ARGUMENT);
	a.path_mtu = port.active_mtu;
	a.dest_qp_num = 0;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_INIT);
	a.dest_qp_num = usmc_tp_qp_num(qp2);
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_RTR);
	a.qp_state = USMC_QPS_INIT;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_STATE);
	a.qp_state = USMC_QPS_RTS;
	a.timeout = 32; /* 5 bits */
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_ARGUMENT);
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_RTS);
	/* RTS -> RTS is allowed (new timer values) */
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	a.qp_state = USMC_QPS_ERR;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_ERR);
	/* a receive posted to an ERR QP completes at once, flushed */
	memset(&rw, 0, sizeof(rw));
	rw.wr_id = 5;
	USMC_ASSERT_EQ(usmc_tp_post_recv(qp, &rw), 0);
	for (int k = 0; k < 100 && !n; k++) {
		n = usmc_tp_poll_cq(p.s[0].tp, &wc, 1);
		if (!n)
			p.fx->drive(&p, 1);
	}
	USMC_ASSERT_EQ(n, 1);
	USMC_ASSERT_EQ(wc.wr_id, 5);
	USMC_ASSERT_EQ(wc.status, USMC_WC_WR_FLUSH_ERR);
	USMC_ASSERT_EQ(wc.opcode, USMC_WC_RECV);
	USMC_ASSERT_EQ(wc.qp_num, usmc_tp_qp_num(qp));
	/* ERR -> RESET -> INIT again */
	a.qp_state = USMC_QPS_RESET;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_RESET);
	a.qp_state = USMC_QPS_INIT;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);

	/* bad create attributes */
	ia.max_send_sge = USMC_WR_MAX_SGE + 1;
	USMC_ASSERT_EQ(usmc_tp_create_qp(p.s[0].tp, &ia, &bad),
		       USMC_ERR_INVALID_ARGUMENT);
	ia.max_send_sge = 1;
	ia.max_send_wr = 0;
	USMC_ASSERT_EQ(usmc_tp_create_qp(p.s[0].tp, &ia, &bad),
		       USMC_ERR_INVALID_ARGUMENT);
	ia.max_send_wr = port.max_qp_wr + 1;
	USMC_ASSERT_EQ(usmc_tp_create_qp(p.s[0].tp, &ia, &bad),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(bad);
	usmc_tp_destroy_qp(qp);
	usmc_tp_destroy_qp(qp2);
	teardown(&p);
}

static void test_send_both_ways(void)
{
	pair p;
	usmc_tp_mr *tx[2], *rx[2];
	const int n = 16;

	if (setup(&p, &smc_params))
		return;
	for (int i = 0; i < 2; i++) {
		tx[i] = tp_mr(p.s[i].tp, 48 * n, USMC_ACCESS_LOCAL_WRITE);
		rx[i] = tp_mr(p.s[i].tp, 48 * n, USMC_ACCESS_LOCAL_WRITE);
		tp_fill(tx[i]->addr, 48 * n, (uint32_t)i + 7);
		memset(rx[i]->addr, 0xee, 48 * n);
		for (int k = 0; k < n; k++)
			tp_post_recv(p.s[i].qp, 1000 + (uint64_t)k, rx[i],
				     (size_t)k * 48, 48);
	}
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < n; k++) {
			usmc_wr wr = tp_send_wr((uint64_t)k, tx[i],
						(size_t)k * 48, 44);

			if (k & 1)
				wr.send_flags |= USMC_SEND_INLINE;
			USMC_ASSERT_EQ(usmc_tp_post_send(p.s[i].qp, &wr), 0);
		}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 2 * n, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 2 * n, 3000), 0);
	for (int i = 0; i < 2; i++) {
		int sends = 0, recvs = 0;
		side *s = &p.s[i];
		uint8_t *want = tx[1 - i]->addr, *got = rx[i]->addr;

		USMC_ASSERT_EQ(s->nwc, 2 * n);
		for (int k = 0; k < s->nwc; k++) {
			usmc_wc *wc = &s->wcs[k];

			USMC_ASSERT_EQ(wc->status, USMC_WC_SUCCESS);
			USMC_ASSERT_EQ(wc->qp_num, usmc_tp_qp_num(s->qp));
			if (wc->opcode == USMC_WC_SEND) {
				USMC_ASSERT_EQ(wc->wr_id, sends); /* in order */
				sends++;
			} else {
				USMC_ASSERT_EQ(wc->opcode, USMC_WC_RECV);
				USMC_ASSERT_EQ(wc->wr_id, 1000 + recvs);
				USMC_ASSERT_EQ(wc->byte_len, 44);
				recvs++;
			}
		}
		USMC_ASSERT_EQ(sends, n);
		USMC_ASSERT_EQ(recvs, n);
		for (int k = 0; k < n; k++) {
			USMC_ASSERT_MEM_EQ(got + k * 48, want + k * 48, 44);
			USMC_ASSERT_EQ(got[k * 48 + 44], 0xee);
		}
	}
	for (int i = 0; i < 2; i++) {
		usmc_tp_free_mr(tx[i]);
		usmc_tp_free_mr(rx[i]);
	}
	teardown(&p);
}

/* An 8 KiB SEND (SMC-Rv2 LLC messages reach that) into two SGEs, and a
 * SEND larger than the receive WR: LOC_LEN_ERR there, REM_INV_REQ here. */
static void test_send_multi_sge(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx, *rx;
	usmc_recv_wr rw;
	usmc_wr wr;

	cp.mtu = USMC_IB_MTU_1024;
	if (setup(&p, &cp))
		return;
	tx = tp_mr(p.s[0].tp, 16384, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(p.s[1].tp, 16384, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(tx->addr, 16384, 21);
	memset(rx->addr, 0x77, 16384);
	memset(&rw, 0, sizeof(rw));
	rw.wr_id = 1;
	rw.num_sge = 2;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)rx->addr + 100;
	rw.sg_list[0].length = 3000;
	rw.sg_list[0].lkey = rx->lkey;
	rw.sg_list[1].addr = (uint64_t)(uintptr_t)rx->addr + 4000;
	rw.sg_list[1].length = 5192;
	rw.sg_list[1].lkey = rx->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_recv(p.s[1].qp, &rw), 0);
	rw.wr_id = 2;
	rw.num_sge = 1;
	rw.sg_list[0].length = 1000;
	USMC_ASSERT_EQ(usmc_tp_post_recv(p.s[1].qp, &rw), 0);

	wr = tp_send_wr(10, tx, 0, 8192);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
	USMC_ASSERT_EQ(p.s[1].wcs[0].status, USMC_WC_SUCCESS);
	USMC_ASSERT_EQ(p.s[1].wcs[0].wr_id, 1);
	USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 8192);
	USMC_ASSERT_MEM_EQ((uint8_t *)rx->addr + 100, tx->addr, 3000);
	USMC_ASSERT_MEM_EQ((uint8_t *)rx->addr + 4000,
			   (uint8_t *)tx->addr + 3000, 5192);
	CU_ASSERT_TRUE(all_bytes(rx->addr, 100, 0x77));
	CU_ASSERT_TRUE(all_bytes((uint8_t *)rx->addr + 3100, 900, 0x77));
	CU_ASSERT_TRUE(
		all_bytes((uint8_t *)rx->addr + 9192, 16384 - 9192, 0x77));

	/* 2000 bytes into the 1000-byte receive WR */
	wr = tp_send_wr(11, tx, 0, 2000);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 2, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 2, 3000), 0);
	if (p.s[0].nwc >= 2 && p.s[1].nwc >= 2) {
		USMC_ASSERT_EQ(p.s[1].wcs[1].wr_id, 2);
		USMC_ASSERT_EQ(p.s[0].wcs[1].wr_id, 11);
		if (p.fx->len_err_op) {
			USMC_ASSERT_EQ(p.s[1].wcs[1].status,
				       USMC_WC_LOC_QP_OP_ERR);
			USMC_ASSERT_EQ(p.s[0].wcs[1].status,
				       USMC_WC_REM_OP_ERR);
		} else {
			USMC_ASSERT_EQ(p.s[1].wcs[1].status,
				       USMC_WC_LOC_LEN_ERR);
			USMC_ASSERT_EQ(p.s[0].wcs[1].status,
				       USMC_WC_REM_INV_REQ_ERR);
		}
	}
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* RDMA WRITE of sizes around the MTU and 1 MiB from two SGEs. */
static void write_sizes(int mtu_enum)
{
	pair p;
	conn_params cp = smc_params;
	const size_t big = 1 << 20, guard = 64;
	usmc_tp_mr *src, *dst;
	uint8_t *ref;
	uint32_t mtu;
	int nwr = 0;

	cp.mtu = (uint8_t)mtu_enum;
	if (setup(&p, &cp))
		return;
	mtu = usmc_ib_mtu_to_int(mtu_enum);
	src = tp_mr(p.s[0].tp, 2 * big, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, big + 2 * guard,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	ref = malloc(big + 2 * guard);
	tp_fill(src->addr, 2 * big, 99);
	memset(dst->addr, 0x5a, big + 2 * guard);
	memset(ref, 0x5a, big + 2 * guard);

	const uint32_t sizes[] = {1, mtu - 1, mtu, mtu + 1, 3 * mtu + 3};
	size_t doff = guard;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		usmc_wr wr = tp_write_wr(i, src, 100 + i, sizes[i], dst, doff);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		memcpy(ref + doff, (uint8_t *)src->addr + 100 + i, sizes[i]);
		doff += sizes[i] + 7;
		nwr++;
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, nwr, 3000), 0);
	USMC_ASSERT_MEM_EQ(dst->addr, ref, big + 2 * guard);
	{
		usmc_wr wr = tp_write_wr(77, src, 0, 300001, dst, guard);

		wr.num_sge = 2;
		wr.sg_list[1].addr = (uint64_t)(uintptr_t)src->addr + 400000;
		wr.sg_list[1].length = (uint32_t)big - 300001;
		wr.sg_list[1].lkey = src->lkey;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		memcpy(ref + guard, src->addr, 300001);
		memcpy(ref + guard + 300001, (uint8_t *)src->addr + 400000,
		       big - 300001);
		nwr++;
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, nwr, 5000), 0);
	for (int k = 0; k < p.s[0].nwc; k++) {
		USMC_ASSERT_EQ(p.s[0].wcs[k].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[0].wcs[k].opcode, USMC_WC_RDMA_WRITE);
		USMC_ASSERT_EQ(p.s[0].wcs[k].wr_id, k < nwr - 1 ? k : 77);
	}
	USMC_ASSERT_MEM_EQ(dst->addr, ref, big + 2 * guard);
	/* plain WRITE produces nothing at the target */
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	free(ref);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	teardown(&p);
}

static void test_write_sizes_4096(void)
{
	write_sizes(USMC_IB_MTU_4096);
}

static void test_write_sizes_1024(void)
{
	write_sizes(USMC_IB_MTU_1024);
}

/* A stream of 64 KiB WRITEs, every 4th signaled, into a large buffer:
 * byte-exact and the same checksum on both ends. */
static void test_write_stream(void)
{
	pair p;
	const size_t total = tp_quick() ? (4u << 20) : (32u << 20);
	const uint32_t chunk = 64 << 10;
	usmc_tp_mr *src, *dst;
	uint64_t hs, hd;
	int nwr = 0;

	if (setup(&p, &smc_params))
		return;
	src = tp_mr(p.s[0].tp, total, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, total,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill(src->addr, total, 1234);
	for (size_t off = 0; off < total; off += chunk) {
		usmc_wr wr =
			tp_write_wr((uint64_t)nwr, src, off, chunk, dst, off);
		int rc;

		wr.send_flags = (nwr % 4 == 3) ? USMC_SEND_SIGNALED : 0;
		/* the send queue holds 256: make room when it is full */
		while ((rc = usmc_tp_post_send(p.s[0].qp, &wr)) ==
			       USMC_ERR_WOULDBLOCK &&
		       !tp_pair_wait_wcs(&p, 0, p.s[0].nwc + 1, 10000))
			;
		USMC_ASSERT_EQ_FATAL(rc, 0);
		nwr++;
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, nwr / 4, 30000), 0);
	tp_pair_run_for(&p, 5);
	USMC_ASSERT_EQ(p.s[0].nwc, nwr / 4);
	for (int k = 0; k < p.s[0].nwc; k++) {
		USMC_ASSERT_EQ(p.s[0].wcs[k].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[0].wcs[k].wr_id, 4 * k + 3);
	}
	hs = fnv(src->addr, total);
	hd = fnv(dst->addr, total);
	fprintf(stderr, "  [%s: %zu MiB, fnv64 %016llx -> %016llx]\n",
		p.fx->name, total >> 20, (unsigned long long)hs,
		(unsigned long long)hd);
	CU_ASSERT_EQUAL(hs, hd);
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("WRITE stream differs");
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	teardown(&p);
}

static void test_write_imm(void)
{
	pair p;
	usmc_tp_mr *src, *dst, *rx;
	const uint32_t lens[] = {0, 5, 5000};

	if (setup(&p, &smc_params))
		return;
	src = tp_mr(p.s[0].tp, 8192, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 8192,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = tp_mr(p.s[1].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(src->addr, 8192, 3);
	for (int i = 0; i < 3; i++)
		tp_post_recv(p.s[1].qp, 500 + (uint64_t)i, rx, 0, 64);
	for (int i = 0; i < 3; i++) {
		usmc_wr wr = tp_write_wr((uint64_t)i, src, 0, lens[i], dst, 16);

		wr.opcode = USMC_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = 0xc0ffee00u + (uint32_t)i;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 3, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 3, 3000), 0);
	for (int i = 0; i < 3 && i < p.s[1].nwc; i++) {
		usmc_wc *wc = &p.s[1].wcs[i];

		USMC_ASSERT_EQ(wc->status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(wc->opcode, USMC_WC_RECV_RDMA_WITH_IMM);
		USMC_ASSERT_EQ(wc->wr_id, 500 + i);
		USMC_ASSERT_EQ(wc->imm_data, 0xc0ffee00u + (uint32_t)i);
		USMC_ASSERT_EQ(wc->byte_len, lens[i]);
		CU_ASSERT_TRUE(wc->wc_flags & USMC_WC_WITH_IMM);
	}
	for (int i = 0; i < 3 && i < p.s[0].nwc; i++) {
		USMC_ASSERT_EQ(p.s[0].wcs[i].opcode, USMC_WC_RDMA_WRITE);
		USMC_ASSERT_EQ(p.s[0].wcs[i].wr_id, i);
	}
	USMC_ASSERT_MEM_EQ((uint8_t *)dst->addr + 16, src->addr, 5000);
	USMC_ASSERT_EQ(((uint8_t *)dst->addr)[15], 0);
	USMC_ASSERT_EQ(((uint8_t *)dst->addr)[16 + 5000], 0);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* Posts inside a batch (nested) all arrive once it ends. */
static void test_batch(void)
{
	pair p;
	usmc_tp_mr *src, *dst, *rx;

	if (setup(&p, &smc_params))
		return;
	src = tp_mr(p.s[0].tp, 8192, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 8192,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = tp_mr(p.s[1].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(src->addr, 8192, 9);
	tp_post_recv(p.s[1].qp, 700, rx, 0, 64);
	usmc_tp_batch(p.s[0].tp, 1);
	usmc_tp_batch(p.s[0].tp, 1);
	for (int i = 0; i < 3; i++) {
		usmc_wr wr = tp_write_wr((uint64_t)i, src, (uint64_t)i * 1000,
					 1000, dst, (uint64_t)i * 1000);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	{
		usmc_wr wr = tp_send_wr(3, src, 4000, 44);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	usmc_tp_batch(p.s[0].tp, 0);
	usmc_tp_batch(p.s[0].tp, 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 4, 3000), 0);
	USMC_ASSERT_MEM_EQ(dst->addr, src->addr, 3000);
	USMC_ASSERT_MEM_EQ(rx->addr, (uint8_t *)src->addr + 4000, 44);
	if (p.s[1].nwc >= 1) {
		USMC_ASSERT_EQ(p.s[1].wcs[0].opcode, USMC_WC_RECV);
		USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 44);
	}
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* RC order: WRITE k lands before SEND k behind it (what SMC-R's CDC after
 * the data relies on), completions come in posting order. */
static void test_ordering(void)
{
	pair p;
	const int n = 64;
	const uint32_t region = 20000; /* several MTUs */
	usmc_tp_mr *src, *dst, *tx, *rx;
	int seen = 0;
	uint64_t end, wend;

	if (setup(&p, &smc_params))
		return;
	src = tp_mr(p.s[0].tp, (size_t)n * region, USMC_ACCESS_LOCAL_WRITE);
	tx = tp_mr(p.s[0].tp, (size_t)n * 8, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, (size_t)n * region,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = tp_mr(p.s[1].tp, (size_t)n * 8, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(src->addr, (size_t)n * region, 17);
	for (int k = 0; k < n; k++) {
		tp_post_recv(p.s[1].qp, (uint64_t)k, rx, (size_t)k * 8, 8);
		memcpy((uint8_t *)tx->addr + k * 8, &k, sizeof(k));
	}
	for (int k = 0; k < n; k++) {
		usmc_wr w =
			tp_write_wr(2 * (uint64_t)k, src, (size_t)k * region,
				    region, dst, (size_t)k * region);
		usmc_wr s =
			tp_send_wr(2 * (uint64_t)k + 1, tx, (size_t)k * 8, 8);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &w), 0);
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &s), 0);
	}
	/* check each RECV as soon as it is seen: its WRITE is in place */
	end = p.fx->clock_ms(&p) + 5000;
	wend = tp_now_ms() + TP_WALL_LIMIT_MS;
	while (seen < n && p.fx->clock_ms(&p) < end && tp_now_ms() < wend) {
		tp_pair_round(&p, 1);
		for (; seen < p.s[1].nwc; seen++) {
			const usmc_wc *wc = &p.s[1].wcs[seen];
			int k;

			USMC_ASSERT_EQ(wc->status, USMC_WC_SUCCESS);
			USMC_ASSERT_EQ(wc->wr_id, seen);
			memcpy(&k, (uint8_t *)rx->addr + seen * 8, sizeof(k));
			USMC_ASSERT_EQ(k, seen);
			if (memcmp((uint8_t *)dst->addr + (size_t)seen * region,
				   (uint8_t *)src->addr + (size_t)seen * region,
				   region))
				CU_FAIL("a SEND overtook the WRITE before it");
		}
	}
	USMC_ASSERT_EQ(seen, n);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 2 * n, 3000), 0);
	for (int k = 0; k < p.s[0].nwc; k++) {
		USMC_ASSERT_EQ(p.s[0].wcs[k].wr_id, k);
		USMC_ASSERT_EQ(p.s[0].wcs[k].opcode,
			       k & 1 ? USMC_WC_SEND : USMC_WC_RDMA_WRITE);
	}
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* The send queue holds max_send_wr WRs; more is WOULDBLOCK, not a loss
 * and not a hang, and room comes back with the completions. */
static void test_sq_full(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *src, *dst;
	int posted = 0, rc = 0;

	cp.max_send_wr = 8;
	if (setup(&p, &cp))
		return;
	src = tp_mr(p.s[0].tp, 1 << 20, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 1 << 20,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill(src->addr, 1 << 20, 8);
	while (posted < 20) {
		usmc_wr wr =
			tp_write_wr((uint64_t)posted, src, 0, 1 << 20, dst, 0);

		rc = usmc_tp_post_send(p.s[0].qp, &wr);
		if (rc)
			break;
		posted++;
	}
	USMC_ASSERT_EQ(rc, USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(posted, 8);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 8, 10000), 0);
	USMC_ASSERT_MEM_EQ(dst->addr, src->addr, 1 << 20);
	{
		usmc_wr wr = tp_write_wr(99, src, 0, 100, dst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 9, 3000), 0);
	}
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	teardown(&p);
}

/* A WRITE the target must refuse: the requester gets REM_ACCESS_ERR (or
 * REM_INV_REQ_ERR toward a QP without REMOTE_WRITE), the WR behind it is
 * flushed, both QPs go to ERR, and no byte of the target's memory, inside
 * the MR or beside it, changes. */
enum bad_how {
	BAD_PAST_END,
	BAD_BELOW,
	BAD_RKEY,
	BAD_NO_REMOTE_WRITE,
	BAD_FREED_MR,
	BAD_QP_ACCESS,
};

static void bad_write(enum bad_how how)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *src, *dst, *ro, *side_mr;
	usmc_wc_status want = USMC_WC_REM_ACCESS_ERR;
	tp_counts c0, c1;
	usmc_wr wr;

	if (setup(&p, &cp))
		return;
	if (how == BAD_QP_ACCESS) {
		/* a responder QP opened without REMOTE_WRITE */
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_RESET;
		USMC_ASSERT_EQ(usmc_tp_modify_qp(p.s[1].qp, &a), 0);
		a.qp_state = USMC_QPS_INIT;
		a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE;
		USMC_ASSERT_EQ(usmc_tp_modify_qp(p.s[1].qp, &a), 0);
		a.qp_state = USMC_QPS_RTR;
		a.path_mtu = p.s[1].port.active_mtu;
		a.dest_qp_num = usmc_tp_qp_num(p.s[0].qp);
		a.rq_psn = 0xfffff1u; /* side 0's sq_psn */
		memcpy(a.dgid, p.s[0].port.gid, 16);
		a.min_rnr_timer = cp.min_rnr_timer;
		USMC_ASSERT_EQ(usmc_tp_modify_qp(p.s[1].qp, &a), 0);
		want = USMC_WC_REM_INV_REQ_ERR;
	}
	src = tp_mr(p.s[0].tp, 16384, USMC_ACCESS_LOCAL_WRITE);
	side_mr = tp_mr(p.s[1].tp, 8192,
			USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	dst = tp_mr(p.s[1].tp, 8192,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	ro = tp_mr(p.s[1].tp, 8192, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(src->addr, 16384, 5);
	memset(dst->addr, 0x33, 8192);
	memset(ro->addr, 0x44, 8192);
	memset(side_mr->addr, 0x55, 8192);
	counts(&p, 0, &c0);
	counts(&p, 1, &c1);

	switch (how) {
	case BAD_PAST_END: /* runs 1 byte past the end */
		wr = tp_write_wr(1, src, 0, 4097, dst, 8192 - 4096);
		break;
	case BAD_BELOW:
		wr = tp_write_wr(1, src, 0, 100, dst, 0);
		wr.remote_addr -= 1;
		break;
	case BAD_RKEY:
		wr = tp_write_wr(1, src, 0, 100, dst, 0);
		wr.rkey ^= 0x10000;
		break;
	case BAD_NO_REMOTE_WRITE:
		wr = tp_write_wr(1, src, 0, 100, ro, 0);
		break;
	case BAD_FREED_MR: { /* deregistration revokes the rkey */
		usmc_tp_mr *gone = tp_mr(p.s[1].tp, 8192,
					 USMC_ACCESS_LOCAL_WRITE |
						 USMC_ACCESS_REMOTE_WRITE);

		wr = tp_write_wr(1, src, 0, 100, gone, 0);
		usmc_tp_free_mr(gone);
		break;
	}
	default:
		wr = tp_write_wr(1, src, 0, 100, dst, 0);
		break;
	}
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	wr.wr_id = 2;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 2, 3000), 0);
	if (p.s[0].nwc >= 2) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].wr_id, 1);
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, want);
		USMC_ASSERT_EQ(p.s[0].wcs[1].wr_id, 2);
		USMC_ASSERT_EQ(p.s[0].wcs[1].status, USMC_WC_WR_FLUSH_ERR);
	}
	tp_pair_run_for(&p, 10);
	USMC_ASSERT_EQ(p.s[0].nwc, 2);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_ERR);
	CU_ASSERT_TRUE(all_bytes(dst->addr, 8192, 0x33));
	CU_ASSERT_TRUE(all_bytes(ro->addr, 8192, 0x44));
	CU_ASSERT_TRUE(all_bytes(side_mr->addr, 8192, 0x55));
	{
		tp_counts a, b;

		counts(&p, 0, &a);
		counts(&p, 1, &b);
		if (counted(&b, CNT_NAK_ERR_TX, "NAK-sent"))
			USMC_ASSERT_EQ(b.nak_err_tx - c1.nak_err_tx, 1);
		if (counted(&a, CNT_NAK_ERR_RX, "NAK-received"))
			USMC_ASSERT_EQ(a.nak_err_rx - c0.nak_err_rx, 1);
	}
	/* posting on an ERR QP flushes at once */
	wr.wr_id = 3;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 3, 1000), 0);
	if (p.s[0].nwc >= 3)
		USMC_ASSERT_EQ(p.s[0].wcs[2].status, USMC_WC_WR_FLUSH_ERR);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(ro);
	usmc_tp_free_mr(side_mr);
	teardown(&p);
}

static void test_write_out_of_bounds(void)
{
	bad_write(BAD_PAST_END);
	bad_write(BAD_BELOW);
}

static void test_write_wrong_rkey(void)
{
	bad_write(BAD_RKEY);
	bad_write(BAD_FREED_MR);
}

static void test_write_no_remote_access(void)
{
	bad_write(BAD_NO_REMOTE_WRITE);
	bad_write(BAD_QP_ACCESS);
}

/* SEND without a receive WR: RNR NAKs, nothing lost, delivered once a
 * receive is posted. */
static void test_rnr(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx, *rx;
	usmc_tp_qp_stats q;
	tp_counts c;
	usmc_wr wr;

	cp.min_rnr_timer = 12; /* 640 us */
	if (setup(&p, &cp))
		return;
	tx = tp_mr(p.s[0].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(p.s[1].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(tx->addr, 64, 11);
	wr = tp_send_wr(9, tx, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	tp_pair_run_for(&p, 100);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	counts(&p, 0, &c);
	if (counted(&c, CNT_RNR_NAK_RX, "RNR-NAK-received"))
		CU_ASSERT_TRUE(c.rnr_nak_rx >= 2);
	counts(&p, 1, &c);
	if (counted(&c, CNT_RNR_NAK_TX, "RNR-NAK-sent"))
		CU_ASSERT_TRUE(c.rnr_nak_tx >= 2);
	tp_post_recv(p.s[1].qp, 42, rx, 0, 64);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 2000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 2000), 0);
	if (p.s[0].nwc && p.s[1].nwc) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[1].wcs[0].wr_id, 42);
		USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 44);
	}
	USMC_ASSERT_MEM_EQ(rx->addr, tx->addr, 44);
	/* every RNR NAK (and a retransmit timeout, were one to fire)
	 * resends the one packet */
	if (qp_counted(&p, 0, &q)) {
		CU_ASSERT_TRUE(q.rnr_nak_rx >= 2);
		USMC_ASSERT_EQ(q.retransmits, q.rnr_nak_rx + q.retry_timeouts);
		USMC_ASSERT_EQ(q.nak_seq_rx, 0);
	}
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* rnr_retry 1: the second RNR NAK fails the WR, the next one flushes. */
static void test_rnr_exhausted(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx;
	usmc_wr wr;
	tp_counts c;

	cp.rnr_retry = 1;
	cp.min_rnr_timer = 1; /* 10 us */
	if (setup(&p, &cp))
		return;
	tx = tp_mr(p.s[0].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	wr = tp_send_wr(1, tx, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	wr.wr_id = 2;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 2, 2000), 0);
	if (p.s[0].nwc >= 2) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].wr_id, 1);
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_RNR_RETRY_EXC_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[1].wr_id, 2);
		USMC_ASSERT_EQ(p.s[0].wcs[1].status, USMC_WC_WR_FLUSH_ERR);
	}
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	counts(&p, 0, &c);
	if (counted(&c, CNT_RNR_NAK_RX, "RNR-NAK-received"))
		USMC_ASSERT_EQ(c.rnr_nak_rx, 2);
	usmc_tp_free_mr(tx);
	teardown(&p);
}

/* Outstanding sends (held by RNR) and receives of a QP moved to ERR, or
 * destroyed, complete with WR_FLUSH_ERR in order, under its QPN. */
static void flush_case(int destroy)
{
	pair p;
	usmc_tp_mr *m;
	conn_params cp = smc_params;
	uint32_t qpn;

	cp.min_rnr_timer = 20; /* 10 ms: RNR keeps the sends outstanding */
	if (setup(&p, &cp))
		return;
	m = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 5; i++) {
		usmc_wr wr = tp_send_wr(10 + (uint64_t)i, m, 0, 44);

		wr.send_flags = i == 2 ? USMC_SEND_SIGNALED : 0;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	tp_post_recv(p.s[0].qp, 99, m, 2048, 64);
	tp_post_recv(p.s[0].qp, 100, m, 3072, 64);
	tp_pair_run_for(&p, 30);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	qpn = usmc_tp_qp_num(p.s[0].qp);
	if (destroy) {
		usmc_tp_destroy_qp(p.s[0].qp);
		p.s[0].qp = NULL;
	} else {
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_ERR;
		USMC_ASSERT_EQ(usmc_tp_modify_qp(p.s[0].qp, &a), 0);
		USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 7, 1000), 0);
	for (int i = 0; i < p.s[0].nwc; i++) {
		USMC_ASSERT_EQ(p.s[0].wcs[i].status, USMC_WC_WR_FLUSH_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[i].qp_num, qpn);
	}
	if (p.s[0].nwc == 7) {
		/* errors complete unsignaled WRs too; each queue in order
		 * (the send and receive queues' flushes may interleave in
		 * the CQ: rxe flushes the receive queue first) */
		uint64_t want_s = 10, want_r = 99;

		for (int i = 0; i < 7; i++) {
			const usmc_wc *wc = &p.s[0].wcs[i];

			if (wc->opcode == USMC_WC_SEND)
				USMC_ASSERT_EQ(wc->wr_id, want_s++);
			else if (wc->opcode == USMC_WC_RECV)
				USMC_ASSERT_EQ(wc->wr_id, want_r++);
			else
				CU_FAIL("a flush neither SEND nor RECV");
		}
		USMC_ASSERT_EQ(want_s, 15);
		USMC_ASSERT_EQ(want_r, 101);
	}
	if (!destroy) {
		usmc_wr wr = tp_send_wr(20, m, 0, 44);

		/* an ERR QP takes posts and flushes them */
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		tp_post_recv(p.s[0].qp, 21, m, 0, 64);
		USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 9, 1000), 0);
		if (p.s[0].nwc == 9) {
			USMC_ASSERT_EQ(p.s[0].wcs[7].wr_id, 20);
			USMC_ASSERT_EQ(p.s[0].wcs[7].status,
				       USMC_WC_WR_FLUSH_ERR);
			USMC_ASSERT_EQ(p.s[0].wcs[8].wr_id, 21);
			USMC_ASSERT_EQ(p.s[0].wcs[8].status,
				       USMC_WC_WR_FLUSH_ERR);
		}
	}
	tp_pair_run_for(&p, 20);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	usmc_tp_free_mr(m);
	teardown(&p);
}

static void test_qp_err_flushes(void)
{
	flush_case(0);
}

static void test_destroy_flushes(void)
{
	flush_case(1);
}

/* A QP destroyed with WRs outstanding leaves its flushes in the shared CQ;
 * the next QP gets another QPN, so none of them names it. */
static void test_destroy_no_foreign_wc(void)
{
	pair p;
	usmc_tp_mr *m;
	usmc_tp_qp *qp2;
	usmc_qp_init_attr ia;
	conn_params cp = smc_params;
	uint32_t old_qpn, new_qpn;
	int n_old = 0, n_new = 0;
	uint64_t end, wend;

	cp.min_rnr_timer = 20;
	if (setup(&p, &cp))
		return;
	m = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 5; i++) {
		usmc_wr wr = tp_send_wr(10 + (uint64_t)i, m, 0, 44);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	tp_post_recv(p.s[0].qp, 99, m, 2048, 64);
	tp_pair_run_for(&p, 30);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	old_qpn = usmc_tp_qp_num(p.s[0].qp);
	usmc_tp_destroy_qp(p.s[0].qp);
	p.s[0].qp = NULL;
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 4;
	ia.max_recv_wr = 4;
	ia.max_send_sge = 1;
	ia.max_recv_sge = 1;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp2), 0);
	new_qpn = usmc_tp_qp_num(qp2);
	CU_ASSERT_NOT_EQUAL(new_qpn, old_qpn);
	end = p.fx->clock_ms(&p) + 300;
	wend = tp_now_ms() + TP_WALL_LIMIT_MS;
	while (p.fx->clock_ms(&p) < end && tp_now_ms() < wend && n_old < 6) {
		usmc_wc wcs[16];
		int n = usmc_tp_poll_cq(p.s[0].tp, wcs, 16);

		CU_ASSERT_TRUE(n >= 0);
		for (int k = 0; k < n; k++) {
			if (wcs[k].qp_num == new_qpn)
				n_new++;
			else if (wcs[k].qp_num == old_qpn)
				n_old++;
			else
				CU_FAIL("completion names neither QP");
			USMC_ASSERT_EQ(wcs[k].status, USMC_WC_WR_FLUSH_ERR);
		}
		if (n <= 0)
			p.fx->drive(&p, 2);
	}
	USMC_ASSERT_EQ(n_new, 0);
	USMC_ASSERT_EQ(n_old, 6);
	usmc_tp_destroy_qp(qp2);
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp2), 0);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(qp2), old_qpn);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(qp2), new_qpn);
	usmc_tp_destroy_qp(qp2);
	usmc_tp_free_mr(m);
	teardown(&p);
}

/* The peer's QP is gone: retries run out, RETRY_EXC_ERR, then flushes. */
static void test_retry_exhausted(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *src;
	usmc_tp_qp_stats q;
	tp_counts c;
	uint64_t t0;

	cp.timeout = 8; /* ~1 ms */
	cp.retry_cnt = 3;
	if (setup(&p, &cp))
		return;
	usmc_tp_destroy_qp(p.s[1].qp);
	p.s[1].qp = NULL;
	src = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 3; i++) {
		usmc_wr wr = tp_send_wr((uint64_t)i, src, 0, 44);

		wr.send_flags = 0;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	t0 = p.fx->clock_ms(&p);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 3, 3000), 0);
	CU_ASSERT_TRUE(p.fx->clock_ms(&p) - t0 < 2000);
	if (p.s[0].nwc >= 3) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_RETRY_EXC_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[1].status, USMC_WC_WR_FLUSH_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[2].status, USMC_WC_WR_FLUSH_ERR);
	}
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	counts(&p, 0, &c);
	if (counted(&c, CNT_RETRY_TIMEOUTS, "retry-timeout"))
		USMC_ASSERT_EQ(c.retry_timeouts, 4); /* the first try + 3 */
	/* per QP: the same 4 timeouts, after three of which the 3 packets
	 * went again; the peer QP is gone, so no NAK came */
	if (qp_counted(&p, 0, &q)) {
		USMC_ASSERT_EQ(q.retry_timeouts, 4);
		USMC_ASSERT_EQ(q.retransmits, 9);
		USMC_ASSERT_EQ(q.nak_seq_rx, 0);
		USMC_ASSERT_EQ(q.rnr_nak_rx, 0);
	}
	usmc_tp_free_mr(src);
	teardown(&p);
}

/* Caller errors come back as named codes at post time, never a crash. */
static void test_post_errors(void)
{
	pair p;
	usmc_tp_mr *m;
	usmc_wr wr;
	usmc_recv_wr rw;
	usmc_tp_qp *qp;
	usmc_qp_init_attr ia;

	if (setup(&p, &smc_params))
		return;
	m = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	wr = tp_write_wr(1, m, 0, 100, m, 0);
	wr.sg_list[0].lkey ^= 0x10000; /* no such lkey */
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), USMC_ERR_ACCESS);
	wr = tp_write_wr(1, m, 4000, 100, m, 0); /* past the MR */
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), USMC_ERR_ACCESS);
	wr = tp_write_wr(1, m, 0, 100, m, 0);
	wr.sg_list[0].addr -= 1; /* below it */
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), USMC_ERR_ACCESS);
	if (m->rkey != m->lkey) { /* rxe gives one number for both */
		wr = tp_write_wr(1, m, 0, 100, m, 0);
		wr.sg_list[0].lkey = m->rkey; /* an rkey is no lkey */
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
			       USMC_ERR_ACCESS);
	}
	wr = tp_write_wr(1, m, 0, 100, m, 0);
	wr.num_sge = 3;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
		       USMC_ERR_INVALID_ARGUMENT);
	wr.num_sge = 1;
	wr.opcode = (usmc_wr_opcode)9;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
		       USMC_ERR_INVALID_ARGUMENT);
	wr.opcode = USMC_WR_RDMA_WRITE;
	wr.send_flags |= USMC_SEND_INLINE;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
		       USMC_ERR_INVALID_ARGUMENT); /* > max_inline_data */
	memset(&rw, 0, sizeof(rw));
	rw.num_sge = 1;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)m->addr;
	rw.sg_list[0].length = 8192;
	rw.sg_list[0].lkey = m->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_recv(p.s[0].qp, &rw), USMC_ERR_ACCESS);
	rw.sg_list[0].length = 100;
	rw.num_sge = 3;
	USMC_ASSERT_EQ(usmc_tp_post_recv(p.s[0].qp, &rw),
		       USMC_ERR_INVALID_ARGUMENT);
	/* none of it left a completion or broke the QP */
	tp_pair_run_for(&p, 10);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTS);

	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 2;
	ia.max_recv_wr = 2;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp), 0);
	wr = tp_write_wr(1, m, 0, 100, m, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(qp, &wr), USMC_ERR_INVALID_STATE);
	rw.num_sge = 1;
	USMC_ASSERT_EQ(usmc_tp_post_recv(qp, &rw), USMC_ERR_INVALID_STATE);
	usmc_tp_destroy_qp(qp);
	usmc_tp_free_mr(m);
	teardown(&p);
}

/* get_fd: not readable while nothing waits, readable once a message
 * arrived, and quiet again once the CQ is drained. */
static void test_fd_ready(void)
{
	pair p;
	usmc_tp_mr *tx, *rx;
	struct pollfd pf;
	uint64_t end, wend;
	usmc_wr wr;
	int ready = 0;

	if (setup(&p, &smc_params))
		return;
	tx = tp_mr(p.s[0].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(p.s[1].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(tx->addr, 64, 4);
	tp_post_recv(p.s[1].qp, 1, rx, 0, 64);
	tp_pair_run_for(&p, 5);
	pf.fd = usmc_tp_get_fd(p.s[1].tp);
	pf.events = POLLIN;
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	wr = tp_send_wr(1, tx, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	end = p.fx->clock_ms(&p) + 2000;
	wend = tp_now_ms() + TP_WALL_LIMIT_MS;
	while (!ready && p.fx->clock_ms(&p) < end && tp_now_ms() < wend) {
		p.fx->drive(&p, 1); /* no poll_cq: only the fd tells */
		ready = poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN);
	}
	CU_ASSERT_TRUE(ready);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 2000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 2000), 0);
	USMC_ASSERT_MEM_EQ(rx->addr, tx->addr, 44);
	/* drained: quiet (a backend may wake once more for a due timer) */
	tp_pair_run_for(&p, 5);
	tp_pair_poll_cqs(&p);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* SEND both ways, a 1 MiB WRITE and a WRITE with immediate between two
 * QPs of one device. */
static void test_one_device(void)
{
	pair p;
	usmc_tp_mr *src, *dst, *rx;
	uint8_t *rxb;
	const size_t big = 1 << 20;

	if (setup_dev(&p, &smc_params, 1))
		return;
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(p.s[0].qp),
			    usmc_tp_qp_num(p.s[1].qp));
	src = tp_mr(p.s[0].tp, big, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, big,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	rxb = rx->addr;
	tp_fill(src->addr, big, 31);
	for (int i = 0; i < 2; i++)
		tp_post_recv(p.s[i].qp, 700 + (uint64_t)i, rx, (size_t)i * 64,
			     64);
	for (int i = 0; i < 2; i++) {
		usmc_wr wr = tp_send_wr(800 + (uint64_t)i, src,
					1000 * (size_t)i, 44);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[i].qp, &wr), 0);
	}
	{
		usmc_wr wr = tp_write_wr(900, src, 0, (uint32_t)big, dst, 0);

		wr.opcode = USMC_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = 0x5eed;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		tp_post_recv(p.s[1].qp, 701, rx, 256, 64);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 3, 5000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 3, 5000), 0);
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < p.s[i].nwc; k++)
			USMC_ASSERT_EQ(p.s[i].wcs[k].status, USMC_WC_SUCCESS);
	USMC_ASSERT_MEM_EQ(rxb + 64, src->addr, 44);
	USMC_ASSERT_MEM_EQ(rxb, (uint8_t *)src->addr + 1000, 44);
	if (memcmp(dst->addr, src->addr, big))
		CU_FAIL("1 MiB WRITE differs");
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* Polls |tp| for an async event of |type| within |ms| of backend time. */
static int wait_event(pair *p, usmc_tp *tp, usmc_tp_event_type type, int ms)
{
	usmc_tp_event ev;

	if (tp_pair_wait_event(p, tp, &ev, ms))
		return -1;
	USMC_ASSERT_EQ(ev.type, type);
	return ev.type == type ? 0 : -1;
}

/* The port goes down: PORT_ERR (the fd wakes for it), a SEND posted
 * meanwhile waits in RC retries; up again: PORT_ACTIVE and it arrives. */
static void test_port_down_up(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx, *rx;
	struct pollfd pf;
	usmc_wr wr;

	cp.timeout = 8; /* ~1 ms, retry_cnt 7: for ever */
	if (setup(&p, &cp))
		return;
	tx = tp_mr(p.s[0].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(p.s[1].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(tx->addr, 64, 6);
	tp_post_recv(p.s[1].qp, 1, rx, 0, 64);
	USMC_ASSERT_EQ(p.fx->port_set(p.s[1].tp, 0), 0);
	pf.fd = usmc_tp_get_fd(p.s[1].tp);
	pf.events = POLLIN;
	USMC_ASSERT_EQ(poll(&pf, 1, 1000), 1);
	USMC_ASSERT_EQ(wait_event(&p, p.s[1].tp, USMC_TP_EV_PORT_ERR, 100), 0);
	wr = tp_send_wr(1, tx, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	tp_pair_run_for(&p, 200);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTS);
	USMC_ASSERT_EQ(p.fx->port_set(p.s[1].tp, 1), 0);
	USMC_ASSERT_EQ(wait_event(&p, p.s[1].tp, USMC_TP_EV_PORT_ACTIVE, 100),
		       0);
	/* the backoff is capped at 1 s */
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_MEM_EQ(rx->addr, tx->addr, 44);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* A device dies: DEVICE_FATAL, its WRs flushed, its posts refused; the
 * peer's sends toward it run out of retries. */
static void test_device_fatal(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx, *rx;
	usmc_tp_qp *qp;
	usmc_qp_init_attr ia;
	usmc_wr wr;

	cp.timeout = 8;
	cp.retry_cnt = 2;
	if (setup(&p, &cp))
		return;
	tx = tp_mr(p.s[0].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(p.s[1].tp, 64, USMC_ACCESS_LOCAL_WRITE);
	tp_post_recv(p.s[1].qp, 7, rx, 0, 64);
	USMC_ASSERT_EQ(p.fx->kill(p.s[1].tp), 0);
	USMC_ASSERT_EQ(wait_event(&p, p.s[1].tp, USMC_TP_EV_DEVICE_FATAL, 100),
		       0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 100), 0);
	if (p.s[1].nwc) {
		USMC_ASSERT_EQ(p.s[1].wcs[0].wr_id, 7);
		USMC_ASSERT_EQ(p.s[1].wcs[0].status, USMC_WC_WR_FLUSH_ERR);
	}
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_ERR);
	wr = tp_send_wr(1, rx, 0, 44);
	CU_ASSERT_TRUE(usmc_tp_post_send(p.s[1].qp, &wr) < 0);
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 2;
	ia.max_recv_wr = 2;
	CU_ASSERT_TRUE(usmc_tp_create_qp(p.s[1].tp, &ia, &qp) < 0);
	wr = tp_send_wr(2, tx, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 2000), 0);
	if (p.s[0].nwc)
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_RETRY_EXC_ERR);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* ---- registration: every case over every backend ----------------------- */

typedef struct tp_case {
	const char *name;
	CU_TestFunc fn;
	uint32_t needs; /* CAP_* */
} tp_case;

static const tp_case cases[] = {
	{"open, query_port", test_open_query, 0},
	{"MR alloc, keys, dealloc", test_mr, 0},
	{"QP states RESET/INIT/RTR/RTS/ERR", test_qp_states, 0},
	{"SEND 44 bytes both ways, inline too", test_send_both_ways, 0},
	{"SEND 8 KiB into two SGEs, SEND too long", test_send_multi_sge, 0},
	{"RDMA WRITE sizes, MTU 4096", test_write_sizes_4096, 0},
	{"RDMA WRITE sizes, MTU 1024", test_write_sizes_1024, 0},
	{"RDMA WRITE stream, checksum", test_write_stream, 0},
	{"RDMA WRITE with immediate", test_write_imm, 0},
	{"batch: posts arrive at its end", test_batch, 0},
	{"ordering: WRITE before the SEND behind it", test_ordering, 0},
	{"send queue full: WOULDBLOCK", test_sq_full, 0},
	{"WRITE out of bounds: REM_ACCESS_ERR", test_write_out_of_bounds, 0},
	{"WRITE wrong or freed rkey: REM_ACCESS_ERR", test_write_wrong_rkey, 0},
	{"WRITE without REMOTE_WRITE (MR, QP)", test_write_no_remote_access, 0},
	{"SEND without recv: RNR, then delivered", test_rnr, 0},
	{"RNR retries exhausted", test_rnr_exhausted, 0},
	{"QP to ERR flushes, in order", test_qp_err_flushes, 0},
	{"destroy with WRs outstanding flushes", test_destroy_flushes, 0},
	{"a destroyed QP's completions reach no new QP",
	 test_destroy_no_foreign_wc, 0},
	{"retry exhaustion: RETRY_EXC_ERR", test_retry_exhausted, 0},
	{"post errors", test_post_errors, 0},
	{"get_fd readiness", test_fd_ready, 0},
	{"two QPs on one device", test_one_device, 0},
	{"port down and up: events, RC waits", test_port_down_up, CAP_PORT_CTL},
	{"device fatal: event, flush, refusals", test_device_fatal,
	 CAP_PORT_CTL},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

#define SUITE_INIT(i)                   \
	static int suite_init_##i(void) \
	{                               \
		cur = &fixtures[i];     \
		return 0;               \
	}
SUITE_INIT(0)
SUITE_INIT(1)
SUITE_INIT(2)
SUITE_INIT(3)
#ifdef USMC_HAVE_VERBS
SUITE_INIT(4)
#endif
static int (*const suite_inits[NFIX])(void) = {
	suite_init_0, suite_init_1, suite_init_2, suite_init_3,
#ifdef USMC_HAVE_VERBS
	suite_init_4,
#endif
};

static int wanted(const fixture *fx, int argc, char **argv)
{
	const char *name = fx->name;

	if (argc < 2)
		return !fx->explicit_only;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int failed, cap_skips = 0, env_skips = 0, nsuites = 0;
	char unavailable[256] = "";

	/* the decorator with no faults set, and no control socket */
	unsetenv("USMC_FAULT");
	unsetenv("USMC_FAULT_FILE");
	setenv("USMC_FAULT_CTL", "off", 1);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	/* a case a backend cannot run is inactive: counted, not passed */
	CU_set_fail_on_inactive(CU_FALSE);
	for (size_t f = 0; f < NFIX; f++) {
		const fixture *fx = &fixtures[f];
		char why[160] = "";
		CU_pSuite suite;
		pair probe;

		if (!wanted(fx, argc, argv))
			continue;
		nsuites++;
		/* a backend this machine cannot open is skipped whole */
		cur = fx;
		if (fx->unavailable && fx->unavailable()) {
			snprintf(why, sizeof(why), "%s", fx->unavailable());
			snprintf(unavailable + strlen(unavailable),
				 sizeof(unavailable) - strlen(unavailable),
				 "%s%s", unavailable[0] ? ", " : "", fx->name);
		} else if (open_pair(&probe, 0) == 0) {
			teardown(&probe);
		} else {
			snprintf(why, sizeof(why), "%s cannot open here",
				 fx->name);
			snprintf(unavailable + strlen(unavailable),
				 sizeof(unavailable) - strlen(unavailable),
				 "%s%s", unavailable[0] ? ", " : "", fx->name);
		}
		suite = CU_add_suite(fx->name, suite_inits[f], NULL);
		for (size_t c = 0; c < NCASES; c++) {
			CU_pTest t =
				CU_add_test(suite, cases[c].name, cases[c].fn);

			if (why[0]) {
				CU_set_test_active(t, CU_FALSE);
				env_skips++;
			} else if ((fx->caps & cases[c].needs) !=
				   cases[c].needs) {
				CU_set_test_active(t, CU_FALSE);
				cap_skips++;
				fprintf(stderr,
					"SKIP %s: %s: needs port control, "
					"which %s lacks: %s\n",
					fx->name, cases[c].name, fx->name,
					fx->lacks);
			}
		}
		if (why[0])
			fprintf(stderr, "SKIP %s: every case: %s\n", fx->name,
				why);
	}
	if (!nsuites) {
		fprintf(stderr, "no such backend in the fixture table\n");
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	fprintf(stderr,
		"conformance: %zu cases x %u backends; skipped: %u a backend "
		"lacks, %u of backends unavailable here (%s); %u counter "
		"checks left out (counters a backend does not keep)\n",
		NCASES, nsuites, cap_skips, env_skips,
		unavailable[0] ? unavailable : "none", counter_skips);
	if (failed)
		return 1;
	if (env_skips) {
		fprintf(stderr, "SKIP (exit 77): %s cannot open here\n",
			unavailable);
		return 77;
	}
	return 0;
}
