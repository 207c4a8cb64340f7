/* SPDX-License-Identifier: MIT */
/*
 * softroce's own checks, over the ops table: what only this backend has
 * (its options and busy port, key format, batching into one sendmmsg,
 * loss, EAGAIN and a small receive buffer through its test options,
 * retransmit backoff toward a stopped peer, ingress drops of hostile
 * datagrams, IPv6 on ::1) with its counters (usmc_softroce_get_stats).
 * What every backend must do is in test_tp_conformance.c, which runs over
 * softroce too. Every wait is bounded; data is compared byte for byte.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "softroce.h"
#include "tp_pair.h"
#include "usmc_test.h"
#include "usmc_transport.h"

typedef tp_side side;
typedef tp_pair pair;

static uint16_t test_port;

/* ---- backend-specific: softroce on loopback ---------------------------- */

static int open_dev(const char *ip, uint16_t port, const char *opts,
		    usmc_tp **tp)
{
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;

	memset(&cfg, 0, sizeof(cfg));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	cfg.udp_port = port;
	cfg.options = opts;
	return usmc_tp_open("softroce", &cfg, tp);
}

/* |arg|: the two sides' options */
static int open_side(void *arg, int i, const char *ip, uint16_t port,
		     usmc_tp **tp)
{
	return open_dev(ip, port, ((const char *const *)arg)[i], tp);
}

static int open_pair(pair *p, const char *opts_a, const char *opts_b)
{
	const char *opts[2] = {opts_a, opts_b};
	int rc;

	tp_pair_init(p);
	rc = tp_pair_open_loopback(p, open_side, opts, 0, 1);
	test_port = p->udp_port;
	return rc;
}

/* Both QPs on one device at |ip| (an application talking to itself). */
static int open_pair_one_dev(pair *p, const char *ip, int family)
{
	usmc_tp_config cfg;
	int rc = USMC_ERR_BUSY;

	tp_pair_init(p);
	memset(&cfg, 0, sizeof(cfg));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 =
			(struct sockaddr_in6 *)&cfg.local_addr;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&cfg.local_addr;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	for (int tries = 0; tries < 50 && rc == USMC_ERR_BUSY; tries++) {
		cfg.udp_port =
			(uint16_t)(20000 + (getpid() * 11 + tries * 7) % 20000);
		rc = usmc_tp_open("softroce", &cfg, &p->s[0].tp);
	}
	p->s[1].tp = p->s[0].tp;
	return rc;
}

/* ---- generic ----------------------------------------------------------- */

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static const tp_conn_params smc_params = TP_SMC_PARAMS;

static int setup(pair *p, const char *oa, const char *ob,
		 const tp_conn_params *cp)
{
	int rc = open_pair(p, oa, ob);

	USMC_ASSERT_EQ(rc, 0);
	if (rc)
		return rc;
	tp_pair_create_qps(p, cp);
	tp_pair_connect(p, cp);
	return 0;
}

/* softroce's MRs are addressed by their virtual address (iova), as rxe's */
static usmc_tp_mr *mr(side *s, size_t len, uint32_t access)
{
	usmc_tp_mr *m = tp_mr(s->tp, len, access);

	CU_ASSERT_EQUAL(m->iova, (uint64_t)(uintptr_t)m->addr);
	return m;
}

/* ---- cases ------------------------------------------------------------- */

static void test_open_query(void)
{
	pair p;
	usmc_port_attr a;
	usmc_tp *tp = NULL;
	static const uint8_t gid[16] = {0, 0, 0,    0,	  0,   0, 0, 0,
					0, 0, 0xff, 0xff, 127, 0, 0, 2};

	USMC_ASSERT_EQ_FATAL(open_pair(&p, NULL, "mtu=1024"), 0);
	USMC_ASSERT_EQ(usmc_tp_query_port(p.s[0].tp, &a), 0);
	/* lo has MTU 65536: largest IB MTU <= 65456 */
	USMC_ASSERT_EQ(a.active_mtu, USMC_IB_MTU_4096);
	USMC_ASSERT_EQ(a.udp_port, test_port);
	CU_ASSERT_TRUE(a.max_qp_wr > 0);
	USMC_ASSERT_EQ(usmc_tp_query_port(p.s[1].tp, &a), 0);
	USMC_ASSERT_MEM_EQ(a.gid, gid, 16);
	USMC_ASSERT_EQ(a.active_mtu, USMC_IB_MTU_1024);
	CU_ASSERT_TRUE(usmc_tp_get_fd(p.s[0].tp) >= 0);

	/* the port is taken on that address, for a device that would hold
	 * it alone (sharing: test_softroce_share) */
	USMC_ASSERT_EQ(open_dev("127.0.0.1", test_port, "share=off", &tp),
		       USMC_ERR_BUSY);
	USMC_ASSERT_EQ(errno, EADDRINUSE);
	CU_ASSERT_PTR_NULL(tp);
	USMC_ASSERT_EQ(open_dev("127.0.0.3", test_port, "icrc=maybe", &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev("127.0.0.3", test_port, "mtu=1000", &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev("127.0.0.3", test_port, "bogus=1", &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev("127.0.0.3", test_port, "share=on", &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev("127.0.0.3", test_port, "drop=1001", &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(
		open_dev("127.0.0.3", test_port, "retry_time=600001", &tp),
		USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(usmc_softroce_option_error(),
			       "option 1 (column 1) \"retry_time=600001\": "
			       "retry_time is 0..600000 (milliseconds, 0: no "
			       "bound)");
	USMC_ASSERT_EQ(open_dev("127.0.0.3", test_port, "portwatch=on", &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(usmc_softroce_option_error(),
			       "option 1 (column 1) \"portwatch=on\": "
			       "portwatch is auto or off");
	{
		static const char *const bad[] = {
			"gso=yes",	     "gso",	     "ackhold=",
			"ackhold=auto",	     "portwatch=On", "share=off1",
			"gso=on,ackhold=no",
		};
		static const char *const why[] = {
			"gso is on or off",	    "want KEY=VALUE",
			"ackhold is on or off",	    "ackhold is on or off",
			"portwatch is auto or off", "share is auto or off",
			"ackhold is on or off",
		};
		char err[160];

		USMC_ASSERT_EQ(usmc_softroce_check_options(
				       "gso=on,ackhold=off,portwatch=auto,"
				       "share=auto,gso=off,ackhold=on,"
				       "portwatch=off,share=off",
				       err, sizeof(err)),
			       0);
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			USMC_ASSERT_EQ(usmc_softroce_check_options(bad[i], err,
								   sizeof(err)),
				       USMC_ERR_INVALID_ARGUMENT);
			if (!strstr(err, why[i])) {
				fprintf(stderr, "\n  %s: %s", bad[i], err);
				CU_FAIL("wrong reason");
			}
		}
	}
	USMC_ASSERT_EQ(open_dev("0.0.0.0", test_port, NULL, &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(tp);
	tp_pair_teardown(&p);
}

static void test_mr_keys(void)
{
	pair p;
	usmc_tp_mr *m[4];

	USMC_ASSERT_EQ_FATAL(open_pair(&p, NULL, NULL), 0);
	for (int i = 0; i < 4; i++)
		m[i] = mr(&p.s[0], 100, USMC_ACCESS_REMOTE_WRITE);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_NOT_EQUAL(m[i]->lkey, m[i]->rkey);
		for (int j = i + 1; j < 4; j++)
			CU_ASSERT_NOT_EQUAL(m[i]->rkey, m[j]->rkey);
	}
	/* not a small sequence: random high bits */
	CU_ASSERT_TRUE((m[0]->rkey | m[1]->rkey | m[2]->rkey | m[3]->rkey) >
		       0xffff);
	for (int i = 0; i < 4; i++)
		usmc_tp_free_mr(m[i]);
	tp_pair_teardown(&p);
}

/* Inside a batch (usmc_tp_batch) posts transmit nothing; at its end the
 * WRITEs and the SEND behind them leave in one sendmmsg, and arrive. */
/* reg_mr: memory of an MR of one device registered with another (a link
 * group's RMB reached through its second link): a WRITE through the new
 * registration lands in the first MR's memory, and freeing the
 * registration leaves that memory alone. */
static void test_reg_mr(void)
{
	pair p;
	usmc_tp_mr *src, *own, *reg, *bad = NULL;

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	src = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	/* the memory belongs to an MR of the sending device */
	own = mr(&p.s[0], 4096,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	USMC_ASSERT_EQ(usmc_tp_reg_mr(p.s[1].tp, NULL, 4096,
				      USMC_ACCESS_LOCAL_WRITE, &bad),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(bad);
	USMC_ASSERT_EQ_FATAL(usmc_tp_reg_mr(p.s[1].tp, own->addr, 4096,
					    USMC_ACCESS_LOCAL_WRITE |
						    USMC_ACCESS_REMOTE_WRITE,
					    &reg),
			     0);
	CU_ASSERT_PTR_EQUAL(reg->addr, own->addr);
	tp_fill(src->addr, 4096, 5);
	{
		usmc_wr wr = tp_write_wr(1, src, 0, 4096, reg, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_MEM_EQ(own->addr, src->addr, 4096);
	usmc_tp_free_mr(reg);
	/* still the first MR's, readable and writable */
	USMC_ASSERT_MEM_EQ(own->addr, src->addr, 4096);
	memset(own->addr, 0, 4096);
	usmc_tp_free_mr(own);
	usmc_tp_free_mr(src);
	tp_pair_teardown(&p);
}

static void test_batch(void)
{
	pair p;
	usmc_tp_mr *src, *dst, *rx;
	usmc_softroce_stats st0, st1;
	struct pollfd pf;

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	src = mr(&p.s[0], 8192, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], 8192,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = mr(&p.s[1], 64, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(src->addr, 8192, 9);
	tp_post_recv(p.s[1].qp, 700, rx, 0, 64);
	usmc_softroce_get_stats(p.s[0].tp, &st0);
	usmc_tp_batch(p.s[0].tp, 1);
	usmc_tp_batch(p.s[0].tp, 1); /* nested */
	for (int i = 0; i < 3; i++) {
		usmc_wr wr = tp_write_wr((uint64_t)i, src, (uint64_t)i * 1000,
					 1000, dst, (uint64_t)i * 1000);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	{
		usmc_wr wr = tp_write_wr(3, src, 4000, 44, dst, 0);

		wr.opcode = USMC_WR_SEND;
		wr.num_sge = 1;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	usmc_tp_batch(p.s[0].tp, 0);
	usmc_softroce_get_stats(p.s[0].tp, &st1);
	USMC_ASSERT_EQ(st1.tx_calls, st0.tx_calls);
	pf.fd = usmc_tp_get_fd(p.s[1].tp);
	pf.events = POLLIN;
	USMC_ASSERT_EQ(poll(&pf, 1, 50), 0); /* nothing on the wire yet */
	usmc_tp_batch(p.s[0].tp, 0);
	usmc_softroce_get_stats(p.s[0].tp, &st1);
	USMC_ASSERT_EQ(st1.tx_calls, st0.tx_calls + 1);
	USMC_ASSERT_EQ(st1.tx_pkts, st0.tx_pkts + 4);
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
	tp_pair_teardown(&p);
}

/* Polls side i's CQ until it has one completion (3 s at most). */
static int poll_one(pair *p, int i, usmc_wc *wc)
{
	struct pollfd pf = {.fd = usmc_tp_get_fd(p->s[i].tp), .events = POLLIN};
	uint64_t end = now_us() + 3000000;

	while (now_us() < end) {
		int n = usmc_tp_poll_cq(p->s[i].tp, wc, 1);

		if (n)
			return n;
		(void)poll(&pf, 1, 10);
	}
	return 0;
}

/* The ACK of what poll_cq handed the consumer waits for its answer and
 * leaves with it; with nothing to answer, at the next poll_cq, which the
 * device fd (readable while the ACK waits) brings at once. Without
 * ackhold=on it leaves at the poll that took the request. Every byte
 * compared. */
static void ack_hold_case(const char *ob, int hold)
{
	pair p;
	usmc_tp_mr *a, *b, *arx, *brx;
	usmc_softroce_stats s0, s1;
	struct pollfd pf;
	usmc_wc wc;

	if (setup(&p, NULL, ob, &smc_params))
		return;
	a = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	b = mr(&p.s[1], 4096, USMC_ACCESS_LOCAL_WRITE);
	arx = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	brx = mr(&p.s[1], 4096, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(a->addr, 4096, 77);
	tp_fill(b->addr, 4096, 78);
	pf.fd = usmc_tp_get_fd(p.s[1].tp);
	pf.events = POLLIN;
	for (int round = 0; round < 2; round++) {
		usmc_wr req = tp_send_wr(10 + round, a, 44 * round, 44);
		usmc_wr ans = tp_send_wr(20 + round, b, 44 * round, 44);

		ans.send_flags =
			0; /* unsignaled: side 1's CQ has only receives */

		tp_post_recv(p.s[1].qp, 30 + round, brx, 44 * round, 44);
		tp_post_recv(p.s[0].qp, 40 + round, arx, 44 * round, 44);
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &req), 0);
		USMC_ASSERT_EQ(poll_one(&p, 1, &wc), 1);
		USMC_ASSERT_EQ(wc.opcode, USMC_WC_RECV);
		USMC_ASSERT_EQ(wc.byte_len, 44);
		USMC_ASSERT_MEM_EQ((uint8_t *)brx->addr + 44 * round,
				   (uint8_t *)a->addr + 44 * round, 44);
		usmc_softroce_get_stats(p.s[1].tp, &s0);
		if (hold) /* the bound: whoever waits on the fd polls */
			USMC_ASSERT_EQ(poll(&pf, 1, 0), 1);
		if (round == 0) {
			/* the answer takes the ACK along: one call */
			USMC_ASSERT_EQ(usmc_tp_post_send(p.s[1].qp, &ans), 0);
			usmc_softroce_get_stats(p.s[1].tp, &s1);
			USMC_ASSERT_EQ(s1.tx_calls, s0.tx_calls + 1);
			USMC_ASSERT_EQ(s1.tx_pkts, s0.tx_pkts + 1 + hold);
			USMC_ASSERT_EQ(s1.acks_tx, s0.acks_tx + hold);
		} else {
			/* nothing to answer: the next poll sends the ACK */
			USMC_ASSERT_EQ(usmc_tp_poll_cq(p.s[1].tp, &wc, 1), 0);
			usmc_softroce_get_stats(p.s[1].tp, &s1);
			USMC_ASSERT_EQ(s1.acks_tx, s0.acks_tx + hold);
			USMC_ASSERT_EQ(s1.tx_calls, s0.tx_calls + hold);
			USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
			USMC_ASSERT_EQ(usmc_tp_post_send(p.s[1].qp, &ans), 0);
		}
		/* side 0: its request acknowledged, the answer received */
		USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 2 * (round + 1), 3000),
			       0);
		USMC_ASSERT_MEM_EQ((uint8_t *)arx->addr + 44 * round,
				   (uint8_t *)b->addr + 44 * round, 44);
	}
	USMC_ASSERT_EQ(p.s[0].nwc, 4);
	for (int i = 0; i < p.s[0].nwc; i++)
		USMC_ASSERT_EQ(p.s[0].wcs[i].status, USMC_WC_SUCCESS);
	usmc_softroce_get_stats(p.s[1].tp, &s1);
	USMC_ASSERT_EQ(s1.acks_tx, 2);
	usmc_tp_free_mr(a);
	usmc_tp_free_mr(b);
	usmc_tp_free_mr(arx);
	usmc_tp_free_mr(brx);
	tp_pair_teardown(&p);
}

static void test_ack_hold(void)
{
	ack_hold_case("ackhold=on", 1);
}

static void test_ack_hold_off(void)
{
	ack_hold_case(NULL, 0); /* the default */
}

/* |total| bytes from |src| WRITten to |dst| at the same offsets in 64 KiB
 * WRs, every 4th signaled (the others complete silently); waits for the
 * signaled completions. Returns the number of WRs. */
static int write_all_every4(pair *p, usmc_tp_mr *src, usmc_tp_mr *dst,
			    size_t total)
{
	const uint32_t chunk = 64 << 10;
	int nwr = 0;

	for (size_t off = 0; off < total; off += chunk) {
		usmc_wr wr =
			tp_write_wr((uint64_t)nwr, src, off, chunk, dst, off);

		wr.send_flags = (nwr % 4 == 3) ? USMC_SEND_SIGNALED : 0;
		USMC_ASSERT_EQ(usmc_tp_post_send(p->s[0].qp, &wr), 0);
		nwr++;
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(p, 0, nwr / 4, 30000), 0);
	return nwr;
}

/* A multi-MiB transfer over a lossy path stays byte-exact. */
static void lossy_transfer(const char *opts)
{
	pair p;
	tp_conn_params cp = smc_params;
	size_t total = tp_quick() ? (512u << 10) : (4u << 20);
	usmc_tp_mr *src, *dst;
	usmc_softroce_stats sa, sb;
	int nwr = 0;

	cp.timeout = 12; /* 16.8 ms, so tail losses recover quickly */
	cp.mtu = USMC_IB_MTU_1024;
	if (setup(&p, opts, opts, &cp))
		return;
	src = mr(&p.s[0], total, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], total,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill(src->addr, total, 1234);
	nwr = write_all_every4(&p, src, dst, total);
	tp_pair_run_for(&p, 10);
	USMC_ASSERT_EQ(p.s[0].nwc, nwr / 4);
	for (int k = 0; k < p.s[0].nwc; k++) {
		USMC_ASSERT_EQ(p.s[0].wcs[k].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[0].wcs[k].wr_id, 4 * k + 3);
	}
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("data differs after lossy transfer");
	usmc_softroce_get_stats(p.s[0].tp, &sa);
	usmc_softroce_get_stats(p.s[1].tp, &sb);
	CU_ASSERT_TRUE(sa.tx_fault_drops > 0 || sa.tx_errors > 0);
	CU_ASSERT_TRUE(sa.retransmits > 0);
	if (sa.tx_fault_drops)
		CU_ASSERT_TRUE(sb.nak_seq_tx > 0);
	USMC_ASSERT_EQ(sb.drop_icrc, 0);
	fprintf(stderr,
		"  [%s: %zu KiB, sent %llu pkts, retransmitted %llu, "
		"timeouts %llu, NAKs %llu, EAGAIN %llu]\n",
		opts, total >> 10, (unsigned long long)sa.tx_pkts,
		(unsigned long long)sa.retransmits,
		(unsigned long long)sa.retry_timeouts,
		(unsigned long long)sa.nak_seq_rx,
		(unsigned long long)sa.tx_errors);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

/* gso=on (|oa| sends, |ob| receives): 4 MiB of WRITEs leave in UDP GSO
 * sends and stay byte-exact. A gso=on receiver gets them coalesced (GRO)
 * and checks each packet's ICRC with the IPv4 ID its position gives
 * (rx_icrc_id stays 0); one without UDP_GRO gets them one by one from the
 * kernel's split, IDs unseen, and takes them with the ID inferred. */
static void gso_transfer(const char *oa, const char *ob, int gro)
{
	pair p;
	tp_conn_params cp = smc_params;
	size_t total = tp_quick() ? (512u << 10) : (4u << 20);
	usmc_tp_mr *src, *dst;
	usmc_softroce_stats sa, sb;

	cp.mtu = USMC_IB_MTU_1024;
	if (setup(&p, oa, ob, &cp))
		return;
	src = mr(&p.s[0], total, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], total,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill(src->addr, total, 77);
	write_all_every4(&p, src, dst, total);
	for (int k = 0; k < p.s[0].nwc; k++)
		USMC_ASSERT_EQ(p.s[0].wcs[k].status, USMC_WC_SUCCESS);
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("data differs after a GSO transfer");
	usmc_softroce_get_stats(p.s[0].tp, &sa);
	usmc_softroce_get_stats(p.s[1].tp, &sb);
	CU_ASSERT_TRUE(sa.tx_gso > 0);
	USMC_ASSERT_EQ(sa.gso_refused, 0);
	/* 1040-byte packets, up to 62 a send */
	CU_ASSERT_TRUE(sa.tx_calls * 8 < sa.tx_pkts);
	USMC_ASSERT_EQ(sb.drop_icrc, 0);
	USMC_ASSERT_EQ(sb.rx_pkts, sa.tx_pkts - sa.tx_fault_drops);
	if (gro) {
		CU_ASSERT_TRUE(sb.rx_gro > 0);
		USMC_ASSERT_EQ(sb.rx_icrc_id, 0);
	} else {
		USMC_ASSERT_EQ(sb.rx_gro, 0);
		CU_ASSERT_TRUE(sb.rx_icrc_id > 0);
	}
	fprintf(stderr,
		"  [%s -> %s: %llu pkts in %llu sendmmsg, %llu GSO sends, "
		"%llu GRO datagrams, %llu IDs inferred]\n",
		oa, ob, (unsigned long long)sa.tx_pkts,
		(unsigned long long)sa.tx_calls, (unsigned long long)sa.tx_gso,
		(unsigned long long)sb.rx_gro,
		(unsigned long long)sb.rx_icrc_id);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

static void test_gso(void)
{
	gso_transfer("gso=on", "gso=on", 1);
}

static void test_gso_to_plain(void)
{
	gso_transfer("gso=on", "gso=off", 0);
}

static void test_gso_loss(void)
{
	lossy_transfer("gso=on,drop=50,seed=4");
}

static void test_loss_1pct(void)
{
	lossy_transfer("drop=10,seed=1");
}

static void test_loss_10pct(void)
{
	lossy_transfer("drop=100,seed=2");
}

/* The socket refuses packets (EAGAIN): the requester pauses and goes back
 * at once instead of waiting for the retransmit timer. */
static void test_tx_eagain(void)
{
	uint64_t t0 = tp_now_ms();

	lossy_transfer("txfail=30,seed=3");
	CU_ASSERT_TRUE(tp_now_ms() - t0 < 5000);
}

/* A small socket receive buffer (a stock rmem_max without root): the send
 * window shrinks to what it holds, AckReq comes often enough to keep a
 * small window moving, and nothing is lost or retransmitted. */
static void test_small_rcvbuf(void)
{
	pair p;
	const size_t total = tp_quick() ? (1u << 20) : (16u << 20);
	const uint32_t chunk = 256 << 10;
	usmc_tp_mr *src, *dst;
	usmc_softroce_stats sa, sb;
	int nwr = 0;

	if (setup(&p, "rcvbuf=40000", "rcvbuf=40000", &smc_params))
		return;
	src = mr(&p.s[0], total, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], total,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill(src->addr, total, 77);
	for (size_t off = 0; off < total; off += chunk) {
		usmc_wr wr =
			tp_write_wr((uint64_t)nwr, src, off, chunk, dst, off);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		nwr++;
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, nwr, 10000), 0);
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("data differs");
	usmc_softroce_get_stats(p.s[0].tp, &sa);
	usmc_softroce_get_stats(p.s[1].tp, &sb);
	USMC_ASSERT_EQ(sa.retransmits, 0);
	USMC_ASSERT_EQ(sa.retry_timeouts, 0);
	USMC_ASSERT_EQ(sb.nak_seq_tx, 0);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

/* A peer that stops for a while (SIGSTOP stops its RNIC too): with retry
 * count 7 (for ever) the resends back off exponentially instead of coming
 * every timeout, and the SEND completes once the peer runs again.
 * Each timeout is armed when the one before fires, 2^k timeouts later,
 * and fires only when side 0 is polled, so a busy machine delays them and
 * a gap between two seen ones can shrink (the earlier one seen late). What
 * load cannot shorten is the time from the post to the 6th: at least
 * 1+2+...+32 = 63 timeouts, against 6 without backoff. */
static void test_retransmit_backoff(void)
{
	pair p;
	tp_conn_params cp = smc_params;
	usmc_tp_mr *src, *dst;
	usmc_softroce_stats st;
	usmc_wc wcs[8];
	usmc_wr wr;
	uint64_t end, t_post, at[8], base_us = 4096ull * 256 / 1000; /* << 8 */
	unsigned int seen = 0;

	cp.timeout = 8; /* ~1 ms */
	cp.retry_cnt = 7;
	if (setup(&p, NULL, NULL, &cp))
		return;
	src = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], 4096, USMC_ACCESS_LOCAL_WRITE);
	tp_fill(src->addr, 44, 7);
	tp_post_recv(p.s[1].qp, 9, dst, 0, 64);
	wr = tp_send_wr(1, src, 0, 44);
	t_post = now_us();
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	/* side 1 is stopped: only side 0 runs, until 6 timeouts (1+2+...+32
	 * ms on an idle machine) or 5 s */
	end = now_us() + 5000000;
	while (seen < 6 && now_us() < end) {
		USMC_ASSERT_EQ(usmc_tp_poll_cq(p.s[0].tp, wcs, 8), 0);
		usmc_softroce_get_stats(p.s[0].tp, &st);
		while (seen < st.retry_timeouts && seen < 8)
			at[seen++] = now_us();
		usleep(200);
	}
	USMC_ASSERT_EQ_FATAL(seen >= 6, 1);
	if (at[5] - t_post < base_us * 63 * 8 / 10)
		printf("\n  the 6th timeout came %llu us after the post, "
		       "expected >= %llu",
		       (unsigned long long)(at[5] - t_post),
		       (unsigned long long)(base_us * 63 * 8 / 10));
	CU_ASSERT_TRUE(at[5] - t_post >= base_us * 63 * 8 / 10);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTS);
	/* side 1 runs again: the next resend (within the 1 s cap) lands */
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 1, 3000), 0);
	if (p.s[0].nwc >= 1 && p.s[1].nwc >= 1) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[1].wcs[0].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 44);
		USMC_ASSERT_MEM_EQ(dst->addr, src->addr, 44);
	}
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

/* retry_time: a peer that answers nothing while a SEND is outstanding is
 * given up on when retry_time has passed since the send, also with retry
 * count 7 (rxe's "for ever"), however the backoff falls: the SEND
 * completes RETRY_EXC_ERR and the QP is in error. retry_time=0 keeps
 * retrying. Side 1 is never polled: a stopped peer. */
static void test_retry_time(void)
{
	static const struct {
		const char *opts;
		unsigned int ms; /* 0: no bound */
	} cases[] = {{"retry_time=300", 300}, {"retry_time=0", 0}};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		pair p;
		tp_conn_params cp = smc_params;
		usmc_tp_mr *src;
		usmc_softroce_stats st;
		usmc_wc wc;
		usmc_wr wr;
		uint64_t t0, dt, end;
		int n = 0;

		cp.timeout = 14; /* 67 ms: a few resends, then the bound */
		cp.retry_cnt = 7;
		if (setup(&p, cases[c].opts, NULL, &cp))
			return;
		src = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
		wr = tp_send_wr(5, src, 0, 64);
		t0 = now_us();
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		/* the bound, or 800 ms to show there is none */
		end = t0 + (cases[c].ms ? 3000000 : 800000);
		while (n == 0 && now_us() < end) {
			struct pollfd pfd = {usmc_tp_get_fd(p.s[0].tp), POLLIN,
					     0};

			poll(&pfd, 1, 20);
			n = usmc_tp_poll_cq(p.s[0].tp, &wc, 1);
		}
		dt = (now_us() - t0) / 1000;
		usmc_softroce_get_stats(p.s[0].tp, &st);
		if (cases[c].ms) {
			USMC_ASSERT_EQ_FATAL(n, 1);
			USMC_ASSERT_EQ(wc.wr_id, 5);
			USMC_ASSERT_EQ(wc.status, USMC_WC_RETRY_EXC_ERR);
			USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp),
				       USMC_QPS_ERR);
			USMC_ASSERT_EQ(st.retry_time_exc, 1);
			/* not before the bound; a late poll may add some */
			if (dt < cases[c].ms || dt > cases[c].ms + 1000)
				printf("\n  %s: gave up after %llu ms",
				       cases[c].opts, (unsigned long long)dt);
			CU_ASSERT_TRUE(dt >= cases[c].ms);
			CU_ASSERT_TRUE(dt <= cases[c].ms + 1000);
			CU_ASSERT_TRUE(st.retry_timeouts >= 2);
		} else {
			USMC_ASSERT_EQ(n, 0);
			USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp),
				       USMC_QPS_RTS);
			USMC_ASSERT_EQ(st.retry_time_exc, 0);
			CU_ASSERT_TRUE(st.retry_timeouts >= 2);
		}
		usmc_tp_free_mr(src);
		tp_pair_teardown(&p);
	}
}

/* Hostile datagrams from a plain UDP socket: bad ICRC, garbage, unknown
 * QP, wrong source. All are silent counted drops; the QP keeps working. */
static void test_ingress_drops(void)
{
	pair p;
	usmc_softroce_stats st0, st1;
	struct sockaddr_in to, from;
	uint8_t pkt[64];
	int fd;

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.3", &from.sin_addr);
	USMC_ASSERT_EQ_FATAL(bind(fd, (struct sockaddr *)&from, sizeof(from)),
			     0);
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons(test_port);
	inet_pton(AF_INET, "127.0.0.2", &to.sin_addr);
	usmc_softroce_get_stats(p.s[1].tp, &st0);

	/* a SEND ONLY to the right QP, from the wrong address, bad ICRC */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x04;
	pkt[2] = 0xff;
	pkt[3] = 0xff;
	pkt[5] = (uint8_t)(usmc_tp_qp_num(p.s[1].qp) >> 16);
	pkt[6] = (uint8_t)(usmc_tp_qp_num(p.s[1].qp) >> 8);
	pkt[7] = (uint8_t)usmc_tp_qp_num(p.s[1].qp);
	sendto(fd, pkt, 12 + 44 + 4, 0, (struct sockaddr *)&to, sizeof(to));
	sendto(fd, pkt, 5, 0, (struct sockaddr *)&to, sizeof(to));
	pkt[1] = 0x05; /* TVer 5 */
	sendto(fd, pkt, 60, 0, (struct sockaddr *)&to, sizeof(to));
	tp_pair_run_for(&p, 50);
	usmc_softroce_get_stats(p.s[1].tp, &st1);
	USMC_ASSERT_EQ(st1.drop_icrc - st0.drop_icrc, 1);
	/* a shared port's program drops the runt before softroce sees it */
	USMC_ASSERT_EQ(st1.drop_hdr - st0.drop_hdr +
			       (st1.share_drop_short - st0.share_drop_short),
		       2);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_RTS);
	close(fd);
	tp_pair_teardown(&p);
}

/* SEND both ways, a 1 MiB WRITE and a WRITE with immediate between two
 * QPs of one device. */
static void one_dev_data_path(pair *p)
{
	usmc_tp_mr *src, *dst, *rx;
	uint8_t *rxb;
	const size_t big = 1 << 20;

	tp_pair_create_qps(p, &smc_params);
	tp_pair_connect(p, &smc_params);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(p->s[0].qp),
			    usmc_tp_qp_num(p->s[1].qp));
	src = mr(&p->s[0], big, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p->s[1], big,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = mr(&p->s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	rxb = rx->addr;
	tp_fill(src->addr, big, 31);
	for (int i = 0; i < 2; i++)
		tp_post_recv(p->s[i].qp, 700 + (uint64_t)i, rx, (size_t)i * 64,
			     64);
	for (int i = 0; i < 2; i++) {
		usmc_wr wr;

		wr = tp_send_wr(800 + (uint64_t)i, src, 1000 * i, 44);
		USMC_ASSERT_EQ(usmc_tp_post_send(p->s[i].qp, &wr), 0);
	}
	{
		usmc_wr wr = tp_write_wr(900, src, 0, (uint32_t)big, dst, 0);

		wr.opcode = USMC_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = 0x5eed;
		USMC_ASSERT_EQ(usmc_tp_post_send(p->s[0].qp, &wr), 0);
		tp_post_recv(p->s[1].qp, 701, rx, 256, 64);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(p, 0, 3, 5000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(p, 1, 3, 5000), 0);
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < p->s[i].nwc; k++)
			USMC_ASSERT_EQ(p->s[i].wcs[k].status, USMC_WC_SUCCESS);
	/* side 0 sent from offset 0 into side 1's buffer at 64, and back */
	USMC_ASSERT_MEM_EQ(rxb + 64, src->addr, 44);
	USMC_ASSERT_MEM_EQ(rxb, (uint8_t *)src->addr + 1000, 44);
	if (memcmp(dst->addr, src->addr, big))
		CU_FAIL("1 MiB WRITE differs");
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	tp_pair_teardown(p);
}

/* A UDP socket can bind ::1: the machine has IPv6 loopback, so softroce
 * must open on it. */
static int ipv6_loopback(void)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6,
				 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	int fd = socket(AF_INET6, SOCK_DGRAM, 0), ok;

	if (fd < 0)
		return 0;
	ok = !bind(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return ok;
}

static void test_one_device_ipv6(void)
{
	pair p;
	usmc_port_attr a;
	static const uint8_t gid[16] = {0, 0, 0, 0, 0, 0, 0, 0,
					0, 0, 0, 0, 0, 0, 0, 1};

	if (!ipv6_loopback()) {
		usmc_test_skip("no IPv6 loopback (::1): the IPv6 case");
		return;
	}
	USMC_ASSERT_EQ_FATAL(open_pair_one_dev(&p, "::1", AF_INET6), 0);
	USMC_ASSERT_EQ(usmc_tp_query_port(p.s[0].tp, &a), 0);
	USMC_ASSERT_MEM_EQ(a.gid, gid, 16);
	one_dev_data_path(&p);
}

static CU_TestInfo tests[] = {
	{"open, query_port, busy port, bad options", test_open_query},
	{"MR keys distinct and not small", test_mr_keys},
	{"batch: posts leave together at its end", test_batch},
	{"ackhold=on: ACK held for the answer, bounded by the next poll",
	 test_ack_hold},
	{"ackhold off: ACK at the poll that took the request",
	 test_ack_hold_off},
	{"reg_mr: one memory on a second device", test_reg_mr},
	{"1% loss: byte-exact with retransmission", test_loss_1pct},
	{"10% loss: byte-exact with retransmission", test_loss_10pct},
	{"socket EAGAIN: pause and go back", test_tx_eagain},
	{"gso=on: GSO sends, GRO receives, ICRC by position", test_gso},
	{"gso=on to a receiver without GRO: IDs inferred", test_gso_to_plain},
	{"gso=on, 5% loss: byte-exact with retransmission", test_gso_loss},
	{"small receive buffer: window adapts", test_small_rcvbuf},
	{"retransmit backoff: a stopped peer catches up",
	 test_retransmit_backoff},
	{"ingress drops: ICRC, header", test_ingress_drops},
	{"retry_time: a silent peer is given up on in time", test_retry_time},
	{"two QPs on one device (IPv6 ::1)", test_one_device_ipv6},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"softroce", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
