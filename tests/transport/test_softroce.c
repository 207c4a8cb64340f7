/* SPDX-License-Identifier: MIT */
/*
 * Transport conformance suite, written against the ops table. The
 * backend-specific parts, to replace when running it on another backend:
 * open_pair() and open_pair_one_dev() (here softroce devices on 127.0.0.1,
 * 127.0.0.2 and ::1 sharing one UDP port), the option strings that inject
 * faults (drop=, txfail=, rcvbuf=), and the counter checks through
 * usmc_softroce_get_stats(). Every wait is bounded; data is compared byte
 * for byte.
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
#include "usmc_test.h"
#include "usmc_transport.h"

#define MAX_WC 8192

typedef struct side {
	usmc_tp *tp;
	usmc_tp_qp *qp;
	usmc_port_attr port;
	usmc_wc wcs[MAX_WC];
	int nwc;
} side;

typedef struct pair {
	side s[2];
	int ep;
} pair;

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

static int open_pair(pair *p, const char *opts_a, const char *opts_b)
{
	memset(p, 0, sizeof(*p));
	for (int tries = 0; tries < 50; tries++) {
		int rc;

		if (!test_port)
			test_port = (uint16_t)(20000 +
					       (getpid() * 7 + tries) % 20000);
		rc = open_dev("127.0.0.1", test_port, opts_a, &p->s[0].tp);
		if (rc == USMC_ERR_BUSY) {
			test_port = 0;
			continue;
		}
		if (rc)
			return rc;
		rc = open_dev("127.0.0.2", test_port, opts_b, &p->s[1].tp);
		if (rc == USMC_ERR_BUSY) {
			usmc_tp_close(p->s[0].tp);
			test_port = 0;
			continue;
		}
		if (rc) {
			usmc_tp_close(p->s[0].tp);
			return rc;
		}
		return 0;
	}
	return USMC_ERR_BUSY;
}

/* Both QPs on one device at |ip| (an application talking to itself). */
static int open_pair_one_dev(pair *p, const char *ip, int family)
{
	usmc_tp_config cfg;
	int rc = USMC_ERR_BUSY;

	memset(p, 0, sizeof(*p));
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

static int under_valgrind(void)
{
	return RUNNING_ON_VALGRIND || getenv("USMC_TEST_QUICK");
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

typedef struct conn_params {
	uint8_t mtu; /* 0: the port's active MTU */
	uint8_t timeout, retry_cnt, rnr_retry, min_rnr_timer;
	uint32_t max_send_wr, max_recv_wr;
} conn_params;

static const conn_params smc_params = {0, 15, 7, 7, 5, 256, 256};

static void create_qps(pair *p, const conn_params *cp)
{
	usmc_qp_init_attr ia;
	struct epoll_event ev;

	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = cp->max_send_wr;
	ia.max_recv_wr = cp->max_recv_wr;
	ia.max_send_sge = 2;
	ia.max_recv_sge = 2;
	ia.max_inline_data = 64;
	p->ep = epoll_create1(0);
	for (int i = 0; i < 2; i++) {
		ia.context = &p->s[i];
		USMC_ASSERT_EQ_FATAL(
			usmc_tp_create_qp(p->s[i].tp, &ia, &p->s[i].qp), 0);
		CU_ASSERT_PTR_EQUAL(usmc_tp_qp_context(p->s[i].qp), &p->s[i]);
		USMC_ASSERT_EQ(usmc_tp_qp_state(p->s[i].qp), USMC_QPS_RESET);
		USMC_ASSERT_EQ_FATAL(
			usmc_tp_query_port(p->s[i].tp, &p->s[i].port), 0);
		if (i == 1 && p->s[1].tp == p->s[0].tp)
			break;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)i;
		USMC_ASSERT_EQ_FATAL(epoll_ctl(p->ep, EPOLL_CTL_ADD,
					       usmc_tp_get_fd(p->s[i].tp), &ev),
				     0);
	}
}

static void connect_qps(pair *p, const conn_params *cp)
{
	for (int i = 0; i < 2; i++) {
		side *me = &p->s[i], *peer = &p->s[1 - i];
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_INIT;
		a.qp_access_flags =
			USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(me->qp, &a), 0);
		a.qp_state = USMC_QPS_RTR;
		a.path_mtu = cp->mtu ? cp->mtu : me->port.active_mtu;
		a.dest_qp_num = usmc_tp_qp_num(peer->qp);
		a.rq_psn = 0xfffff0u + (uint32_t)i; /* wraps soon */
		memcpy(a.dgid, peer->port.gid, 16);
		a.hop_limit = 64;
		a.min_rnr_timer = cp->min_rnr_timer;
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(me->qp, &a), 0);
	}
	for (int i = 0; i < 2; i++) {
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_RTS;
		a.sq_psn = 0xfffff0u + (uint32_t)(1 - i);
		a.timeout = cp->timeout;
		a.retry_cnt = cp->retry_cnt;
		a.rnr_retry = cp->rnr_retry;
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(p->s[i].qp, &a), 0);
		USMC_ASSERT_EQ(usmc_tp_qp_state(p->s[i].qp), USMC_QPS_RTS);
	}
}

static int setup(pair *p, const char *oa, const char *ob, const conn_params *cp)
{
	int rc = open_pair(p, oa, ob);

	USMC_ASSERT_EQ(rc, 0);
	if (rc)
		return rc;
	create_qps(p, cp);
	connect_qps(p, cp);
	return 0;
}

static void teardown(pair *p)
{
	for (int i = 0; i < 2; i++)
		if (p->s[i].qp)
			usmc_tp_destroy_qp(p->s[i].qp);
	for (int i = 0; i < 2; i++)
		if (p->s[i].tp && (i == 0 || p->s[1].tp != p->s[0].tp))
			usmc_tp_close(p->s[i].tp);
	if (p->ep > 0)
		close(p->ep);
}

/* One round: wait for either fd up to |ms|, then poll both CQs. */
/* Both QPs may live on one device: a completion goes to the side whose QP
 * it names, or whose QP is gone. */
static side *route(pair *p, usmc_tp *tp, const usmc_wc *wc)
{
	for (int i = 0; i < 2; i++)
		if (p->s[i].tp == tp && p->s[i].qp &&
		    usmc_tp_qp_num(p->s[i].qp) == wc->qp_num)
			return &p->s[i];
	for (int i = 0; i < 2; i++)
		if (p->s[i].tp == tp && !p->s[i].qp)
			return &p->s[i];
	return p->s[0].tp == tp ? &p->s[0] : &p->s[1];
}

static void poll_round(pair *p, int ms)
{
	struct epoll_event ev[2];
	usmc_wc wcs[64];

	epoll_wait(p->ep, ev, 2, ms);
	for (int i = 0; i < 2; i++) {
		usmc_tp *tp = p->s[i].tp;
		int n;

		if (!tp || (i == 1 && tp == p->s[0].tp))
			continue;
		do {
			n = usmc_tp_poll_cq(tp, wcs, 64);
			CU_ASSERT_TRUE(n >= 0);
			for (int k = 0; k < n; k++) {
				side *s = route(p, tp, &wcs[k]);

				if (s->nwc < MAX_WC)
					s->wcs[s->nwc++] = wcs[k];
			}
		} while (n == 64);
	}
}

/* Polls until side |i| has |n| completions; 0 on success. */
static int wait_wcs(pair *p, int i, int n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	while (p->s[i].nwc < n) {
		if (now_ms() > end)
			return -1;
		poll_round(p, 20);
	}
	return 0;
}

static void run_for(pair *p, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end)
		poll_round(p, 5);
}

static void fill(uint8_t *b, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
}

static usmc_tp_mr *mr(side *s, size_t len, uint32_t access)
{
	usmc_tp_mr *m = NULL;

	USMC_ASSERT_EQ_FATAL(usmc_tp_alloc_mr(s->tp, len, access, &m), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_TRUE(m->length >= len);
	CU_ASSERT_EQUAL(m->iova, (uint64_t)(uintptr_t)m->addr);
	CU_ASSERT_EQUAL((uintptr_t)m->addr % 4096, 0);
	return m;
}

static usmc_wr write_wr(uint64_t id, usmc_tp_mr *src, size_t off, uint32_t len,
			usmc_tp_mr *dst, size_t doff)
{
	usmc_wr wr;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = id;
	wr.opcode = USMC_WR_RDMA_WRITE;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)src->addr + off;
	wr.sg_list[0].length = len;
	wr.sg_list[0].lkey = src->lkey;
	wr.remote_addr = dst->iova + doff;
	wr.rkey = dst->rkey;
	return wr;
}

static void post_recv_buf(side *s, uint64_t id, usmc_tp_mr *m, size_t off,
			  uint32_t len)
{
	usmc_recv_wr rw;

	memset(&rw, 0, sizeof(rw));
	rw.wr_id = id;
	rw.num_sge = 1;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)m->addr + off;
	rw.sg_list[0].length = len;
	rw.sg_list[0].lkey = m->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_recv(s->qp, &rw), 0);
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
	USMC_ASSERT_EQ(open_dev("0.0.0.0", test_port, NULL, &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(tp);
	teardown(&p);
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
	teardown(&p);
}

static void test_send_both_ways(void)
{
	pair p;
	usmc_tp_mr *tx[2], *rx[2];
	const int n = 16;

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	for (int i = 0; i < 2; i++) {
		tx[i] = mr(&p.s[i], 48 * n, USMC_ACCESS_LOCAL_WRITE);
		rx[i] = mr(&p.s[i], 48 * n, USMC_ACCESS_LOCAL_WRITE);
		fill(tx[i]->addr, 48 * n, (uint32_t)i + 7);
		memset(rx[i]->addr, 0xee, 48 * n);
		for (int k = 0; k < n; k++)
			post_recv_buf(&p.s[i], 1000 + (uint64_t)k, rx[i],
				      (size_t)k * 48, 48);
	}
	for (int i = 0; i < 2; i++)
		for (int k = 0; k < n; k++) {
			usmc_wr wr;

			memset(&wr, 0, sizeof(wr));
			wr.wr_id = (uint64_t)k;
			wr.opcode = USMC_WR_SEND;
			wr.send_flags = USMC_SEND_SIGNALED |
					(k & 1 ? USMC_SEND_INLINE : 0);
			wr.num_sge = 1;
			wr.sg_list[0].addr = (uint64_t)(uintptr_t)tx[i]->addr +
					     (size_t)k * 48;
			wr.sg_list[0].length = 44;
			wr.sg_list[0].lkey = tx[i]->lkey;
			USMC_ASSERT_EQ(usmc_tp_post_send(p.s[i].qp, &wr), 0);
		}
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 2 * n, 3000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 2 * n, 3000), 0);
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
				/* in posting order */
				USMC_ASSERT_EQ(wc->wr_id, sends);
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
			/* nothing beyond the 44 bytes */
			USMC_ASSERT_EQ(got[k * 48 + 44], 0xee);
		}
	}
	for (int i = 0; i < 2; i++) {
		usmc_tp_free_mr(tx[i]);
		usmc_tp_free_mr(rx[i]);
	}
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
	if (setup(&p, NULL, NULL, &cp))
		return;
	mtu = usmc_ib_mtu_to_int(mtu_enum);
	src = mr(&p.s[0], 2 * big, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], big + 2 * guard,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	ref = malloc(big + 2 * guard);
	fill(src->addr, 2 * big, 99);
	memset(dst->addr, 0x5a, big + 2 * guard);
	memset(ref, 0x5a, big + 2 * guard);

	const uint32_t sizes[] = {1, mtu - 1, mtu, mtu + 1, 3 * mtu + 3};
	size_t doff = guard;

	/* small writes land one after the other in dst */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		usmc_wr wr = write_wr(i, src, 100 + i, sizes[i], dst, doff);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		memcpy(ref + doff, (uint8_t *)src->addr + 100 + i, sizes[i]);
		doff += sizes[i] + 7;
		nwr++;
	}
	USMC_ASSERT_EQ(wait_wcs(&p, 0, nwr, 3000), 0);
	USMC_ASSERT_MEM_EQ(dst->addr, ref, big + 2 * guard);

	/* 1 MiB from two SGEs of uneven length */
	{
		usmc_wr wr = write_wr(77, src, 0, 300001, dst, guard);

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
	USMC_ASSERT_EQ(wait_wcs(&p, 0, nwr, 5000), 0);
	for (int k = 0; k < p.s[0].nwc; k++) {
		USMC_ASSERT_EQ(p.s[0].wcs[k].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[0].wcs[k].opcode, USMC_WC_RDMA_WRITE);
	}
	USMC_ASSERT_EQ(p.s[0].wcs[nwr - 1].wr_id, 77);
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

static void test_write_imm(void)
{
	pair p;
	usmc_tp_mr *src, *dst, *rx;
	const uint32_t lens[] = {0, 5, 5000};

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	src = mr(&p.s[0], 8192, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], 8192,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = mr(&p.s[1], 64, USMC_ACCESS_LOCAL_WRITE);
	fill(src->addr, 8192, 3);
	for (int i = 0; i < 3; i++)
		post_recv_buf(&p.s[1], 500 + (uint64_t)i, rx, 0, 64);
	for (int i = 0; i < 3; i++) {
		usmc_wr wr = write_wr((uint64_t)i, src, 0, lens[i], dst, 16);

		wr.opcode = USMC_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = 0xc0ffee00u + (uint32_t)i;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 3, 3000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 3, 3000), 0);
	for (int i = 0; i < 3 && i < p.s[1].nwc; i++) {
		usmc_wc *wc = &p.s[1].wcs[i];

		USMC_ASSERT_EQ(wc->status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(wc->opcode, USMC_WC_RECV_RDMA_WITH_IMM);
		USMC_ASSERT_EQ(wc->wr_id, 500 + i);
		USMC_ASSERT_EQ(wc->imm_data, 0xc0ffee00u + (uint32_t)i);
		USMC_ASSERT_EQ(wc->byte_len, lens[i]);
		CU_ASSERT_TRUE(wc->wc_flags & USMC_WC_WITH_IMM);
	}
	for (int i = 0; i < 3 && i < p.s[0].nwc; i++)
		USMC_ASSERT_EQ(p.s[0].wcs[i].opcode, USMC_WC_RDMA_WRITE);
	USMC_ASSERT_MEM_EQ((uint8_t *)dst->addr + 16, src->addr, 5000);
	USMC_ASSERT_EQ(((uint8_t *)dst->addr)[15], 0);
	USMC_ASSERT_EQ(((uint8_t *)dst->addr)[16 + 5000], 0);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* Inside a batch (usmc_tp_batch) posts transmit nothing; at its end the
 * WRITEs and the SEND behind them leave in one sendmmsg, and arrive. */
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
	fill(src->addr, 8192, 9);
	post_recv_buf(&p.s[1], 700, rx, 0, 64);
	usmc_softroce_get_stats(p.s[0].tp, &st0);
	usmc_tp_batch(p.s[0].tp, 1);
	usmc_tp_batch(p.s[0].tp, 1); /* nested */
	for (int i = 0; i < 3; i++) {
		usmc_wr wr = write_wr((uint64_t)i, src, (uint64_t)i * 1000,
				      1000, dst, (uint64_t)i * 1000);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	{
		usmc_wr wr = write_wr(3, src, 4000, 44, dst, 0);

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
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 1, 3000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 4, 3000), 0);
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

/* A WRITE the target must refuse: NAK remote access error, requester gets
 * REM_ACCESS_ERR and its QP goes to ERR, target memory untouched. */
static void bad_write(int how)
{
	pair p;
	usmc_tp_mr *src, *dst, *ro;
	usmc_wr wr;
	usmc_softroce_stats st;
	uint8_t *snap;

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	src = mr(&p.s[0], 16384, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], 8192,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	ro = mr(&p.s[1], 8192, USMC_ACCESS_LOCAL_WRITE);
	fill(src->addr, 16384, 5);
	memset(dst->addr, 0x33, 8192);
	memset(ro->addr, 0x44, 8192);
	snap = malloc(8192);
	memcpy(snap, dst->addr, 8192);

	switch (how) {
	case 0: /* runs 1 byte past the end */
		wr = write_wr(1, src, 0, 4097, dst, 8192 - 4096);
		break;
	case 1: /* wrong rkey */
		wr = write_wr(1, src, 0, 100, dst, 0);
		wr.rkey ^= 0x10000;
		break;
	case 2: /* below the MR */
		wr = write_wr(1, src, 0, 100, dst, 0);
		wr.remote_addr -= 1;
		break;
	default: /* MR without REMOTE_WRITE */
		wr = write_wr(1, src, 0, 100, ro, 0);
		break;
	}
	/* a second WR behind it is flushed */
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	wr.wr_id = 2;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 2, 3000), 0);
	if (p.s[0].nwc >= 2) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].wr_id, 1);
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_REM_ACCESS_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[1].wr_id, 2);
		USMC_ASSERT_EQ(p.s[0].wcs[1].status, USMC_WC_WR_FLUSH_ERR);
	}
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_ERR);
	USMC_ASSERT_MEM_EQ(dst->addr, snap, 8192);
	for (int i = 0; i < 8192; i++)
		if (((uint8_t *)ro->addr)[i] != 0x44) {
			CU_FAIL("read-only MR written");
			break;
		}
	usmc_softroce_get_stats(p.s[1].tp, &st);
	USMC_ASSERT_EQ(st.nak_err_tx, 1);
	usmc_softroce_get_stats(p.s[0].tp, &st);
	USMC_ASSERT_EQ(st.nak_err_rx, 1);
	/* posting on an ERR QP flushes at once */
	wr.wr_id = 3;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 3, 1000), 0);
	USMC_ASSERT_EQ(p.s[0].wcs[2].status, USMC_WC_WR_FLUSH_ERR);
	free(snap);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(ro);
	teardown(&p);
}

static void test_write_out_of_bounds(void)
{
	bad_write(0);
	bad_write(2);
}

static void test_write_wrong_rkey(void)
{
	bad_write(1);
}

static void test_write_no_remote_access(void)
{
	bad_write(3);
}

static void test_rnr(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx, *rx;
	usmc_softroce_stats st;
	usmc_wr wr;

	cp.min_rnr_timer = 12; /* 640 us */
	if (setup(&p, NULL, NULL, &cp))
		return;
	tx = mr(&p.s[0], 64, USMC_ACCESS_LOCAL_WRITE);
	rx = mr(&p.s[1], 64, USMC_ACCESS_LOCAL_WRITE);
	fill(tx->addr, 64, 11);
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 9;
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)tx->addr;
	wr.sg_list[0].length = 44;
	wr.sg_list[0].lkey = tx->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	run_for(&p, 100);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	usmc_softroce_get_stats(p.s[0].tp, &st);
	CU_ASSERT_TRUE(st.rnr_nak_rx >= 2);
	usmc_softroce_get_stats(p.s[1].tp, &st);
	CU_ASSERT_TRUE(st.rnr_nak_tx >= 2);
	post_recv_buf(&p.s[1], 42, rx, 0, 64);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 1, 2000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 1, 2000), 0);
	USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
	USMC_ASSERT_EQ(p.s[1].wcs[0].wr_id, 42);
	USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 44);
	USMC_ASSERT_MEM_EQ(rx->addr, tx->addr, 44);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
}

/* A multi-MiB transfer over a lossy path stays byte-exact. */
static void lossy_transfer(const char *opts)
{
	pair p;
	conn_params cp = smc_params;
	size_t total = under_valgrind() ? (512u << 10) : (4u << 20);
	const uint32_t chunk = 64 << 10;
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
	fill(src->addr, total, 1234);
	for (size_t off = 0; off < total; off += chunk) {
		usmc_wr wr = write_wr((uint64_t)nwr, src, off, chunk, dst, off);

		/* every 4th signaled: unsignaled WRs complete silently */
		wr.send_flags = (nwr % 4 == 3) ? USMC_SEND_SIGNALED : 0;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		nwr++;
	}
	USMC_ASSERT_EQ(wait_wcs(&p, 0, nwr / 4, 30000), 0);
	run_for(&p, 10);
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
	teardown(&p);
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
	uint64_t t0 = now_ms();

	lossy_transfer("txfail=30,seed=3");
	CU_ASSERT_TRUE(now_ms() - t0 < 5000);
}

/* A small socket receive buffer (a stock rmem_max without root): the send
 * window shrinks to what it holds, AckReq comes often enough to keep a
 * small window moving, and nothing is lost or retransmitted. */
static void test_small_rcvbuf(void)
{
	pair p;
	const size_t total = under_valgrind() ? (1u << 20) : (16u << 20);
	const uint32_t chunk = 256 << 10;
	usmc_tp_mr *src, *dst;
	usmc_softroce_stats sa, sb;
	int nwr = 0;

	if (setup(&p, "rcvbuf=40000", "rcvbuf=40000", &smc_params))
		return;
	src = mr(&p.s[0], total, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], total,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	fill(src->addr, total, 77);
	for (size_t off = 0; off < total; off += chunk) {
		usmc_wr wr = write_wr((uint64_t)nwr, src, off, chunk, dst, off);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
		nwr++;
	}
	USMC_ASSERT_EQ(wait_wcs(&p, 0, nwr, 10000), 0);
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("data differs");
	usmc_softroce_get_stats(p.s[0].tp, &sa);
	usmc_softroce_get_stats(p.s[1].tp, &sb);
	USMC_ASSERT_EQ(sa.retransmits, 0);
	USMC_ASSERT_EQ(sa.retry_timeouts, 0);
	USMC_ASSERT_EQ(sb.nak_seq_tx, 0);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	teardown(&p);
}

/* The peer disappears: retries run out, RETRY_EXC_ERR, then flushes. */
static void test_retry_exhausted(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *src;
	usmc_softroce_stats st;
	uint64_t t0;

	cp.timeout = 8; /* ~1 ms */
	cp.retry_cnt = 3;
	if (setup(&p, NULL, NULL, &cp))
		return;
	usmc_tp_destroy_qp(p.s[1].qp);
	p.s[1].qp = NULL;
	src = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 3; i++) {
		usmc_wr wr;

		memset(&wr, 0, sizeof(wr));
		wr.wr_id = (uint64_t)i;
		wr.opcode = USMC_WR_SEND;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)src->addr;
		wr.sg_list[0].length = 44;
		wr.sg_list[0].lkey = src->lkey;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	t0 = now_ms();
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 3, 3000), 0);
	CU_ASSERT_TRUE(now_ms() - t0 < 2000);
	if (p.s[0].nwc >= 3) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_RETRY_EXC_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[1].status, USMC_WC_WR_FLUSH_ERR);
		USMC_ASSERT_EQ(p.s[0].wcs[2].status, USMC_WC_WR_FLUSH_ERR);
	}
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	usmc_softroce_get_stats(p.s[0].tp, &st);
	USMC_ASSERT_EQ(st.retry_timeouts, 4);
	usmc_softroce_get_stats(p.s[1].tp, &st);
	CU_ASSERT_TRUE(st.drop_qp > 0);
	usmc_tp_free_mr(src);
	teardown(&p);
}

/* A peer that stops for a while (SIGSTOP stops its RNIC too): with retry
 * count 7 (for ever) the resends back off exponentially instead of coming
 * every timeout, and the SEND completes once the peer runs again. */
static void test_retransmit_backoff(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *src, *dst;
	usmc_softroce_stats st;
	usmc_wc wcs[8];
	usmc_wr wr;
	uint64_t end;

	cp.timeout = 8; /* ~1 ms: 150 such timeouts in the stop below */
	cp.retry_cnt = 7;
	if (setup(&p, NULL, NULL, &cp))
		return;
	src = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], 4096, USMC_ACCESS_LOCAL_WRITE);
	fill(src->addr, 44, 7);
	post_recv_buf(&p.s[1], 9, dst, 0, 64);
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 1;
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)src->addr;
	wr.sg_list[0].length = 44;
	wr.sg_list[0].lkey = src->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	/* side 1 is stopped: only side 0 runs, for 150 ms */
	end = now_ms() + 150;
	while (now_ms() < end) {
		USMC_ASSERT_EQ(usmc_tp_poll_cq(p.s[0].tp, wcs, 8), 0);
		usleep(200);
	}
	usmc_softroce_get_stats(p.s[0].tp, &st);
	/* 1+2+4+...+128 ms: 7 or 8 timeouts (without backoff: ~150) */
	CU_ASSERT_TRUE(st.retry_timeouts >= 5 && st.retry_timeouts <= 9);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTS);
	/* side 1 runs again: the next resend (within the 1 s cap) lands */
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 1, 3000), 0);
	if (p.s[0].nwc >= 1 && p.s[1].nwc >= 1) {
		USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[1].wcs[0].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 44);
		USMC_ASSERT_MEM_EQ(dst->addr, src->addr, 44);
	}
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	teardown(&p);
}

/* Destroying a QP with outstanding send and receive WRs flushes them. */
static void test_destroy_flushes(void)
{
	pair p;
	usmc_tp_mr *m;
	conn_params cp = smc_params;

	cp.min_rnr_timer = 20; /* RNR keeps the sends outstanding */
	if (setup(&p, NULL, NULL, &cp))
		return;
	m = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 5; i++) {
		usmc_wr wr;

		memset(&wr, 0, sizeof(wr));
		wr.wr_id = 10 + (uint64_t)i;
		wr.opcode = USMC_WR_SEND;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)m->addr;
		wr.sg_list[0].length = 44;
		wr.sg_list[0].lkey = m->lkey;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	post_recv_buf(&p.s[0], 99, m, 2048, 64);
	run_for(&p, 30);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	usmc_tp_destroy_qp(p.s[0].qp);
	p.s[0].qp = NULL;
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 6, 1000), 0);
	for (int i = 0; i < p.s[0].nwc; i++)
		USMC_ASSERT_EQ(p.s[0].wcs[i].status, USMC_WC_WR_FLUSH_ERR);
	if (p.s[0].nwc == 6) {
		for (int i = 0; i < 5; i++) {
			USMC_ASSERT_EQ(p.s[0].wcs[i].wr_id, 10 + i);
			USMC_ASSERT_EQ(p.s[0].wcs[i].opcode, USMC_WC_SEND);
		}
		USMC_ASSERT_EQ(p.s[0].wcs[5].wr_id, 99);
		USMC_ASSERT_EQ(p.s[0].wcs[5].opcode, USMC_WC_RECV);
	}
	usmc_tp_free_mr(m);
	teardown(&p);
}

/* A QP destroyed with WRs outstanding leaves its flushes in the shared CQ;
 * the next QP must get another QPN, so none of them names it (issue 7: a
 * reused QPN handed the old flushes to a good link). */
static void test_destroy_no_foreign_wc(void)
{
	pair p;
	usmc_tp_mr *m;
	usmc_tp_qp *qp2;
	usmc_qp_init_attr ia;
	conn_params cp = smc_params;
	uint32_t old_qpn, new_qpn;
	int n_old = 0, n_new = 0;
	uint64_t end;

	cp.min_rnr_timer = 20; /* RNR keeps the sends outstanding */
	if (setup(&p, NULL, NULL, &cp))
		return;
	m = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 5; i++) {
		usmc_wr wr;

		memset(&wr, 0, sizeof(wr));
		wr.wr_id = 10 + (uint64_t)i;
		wr.opcode = USMC_WR_SEND;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)m->addr;
		wr.sg_list[0].length = 44;
		wr.sg_list[0].lkey = m->lkey;
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	post_recv_buf(&p.s[0], 99, m, 2048, 64);
	run_for(&p, 30);
	USMC_ASSERT_EQ(p.s[0].nwc, 0);
	old_qpn = usmc_tp_qp_num(p.s[0].qp);
	usmc_tp_destroy_qp(p.s[0].qp);
	p.s[0].qp = NULL;

	/* a new QP while the flushes are still queued */
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 4;
	ia.max_recv_wr = 4;
	ia.max_send_sge = 1;
	ia.max_recv_sge = 1;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp2), 0);
	new_qpn = usmc_tp_qp_num(qp2);
	CU_ASSERT_NOT_EQUAL(new_qpn, old_qpn);
	end = now_ms() + 300;
	while (now_ms() < end && n_old < 6) {
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
			poll(NULL, 0, 5);
	}
	USMC_ASSERT_EQ(n_new, 0);
	USMC_ASSERT_EQ(n_old, 6);
	/* cyclic: the next one is new too, though the old one's are polled */
	usmc_tp_destroy_qp(qp2);
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp2), 0);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(qp2), old_qpn);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(qp2), new_qpn);
	usmc_tp_destroy_qp(qp2);
	usmc_tp_free_mr(m);
	teardown(&p);
}

/* Caller errors come back as named codes at post time. */
static void test_post_errors(void)
{
	pair p;
	usmc_tp_mr *m;
	usmc_wr wr;
	usmc_recv_wr rw;
	usmc_tp_qp *qp;
	usmc_qp_init_attr ia;

	if (setup(&p, NULL, NULL, &smc_params))
		return;
	m = mr(&p.s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	wr = write_wr(1, m, 0, 100, m, 0);
	wr.sg_list[0].lkey ^= 0x10000;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), USMC_ERR_ACCESS);
	wr = write_wr(1, m, 4000, 100, m, 0); /* past the MR */
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), USMC_ERR_ACCESS);
	wr = write_wr(1, m, 0, 100, m, 0);
	wr.num_sge = 3;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
		       USMC_ERR_INVALID_ARGUMENT);
	wr.num_sge = 1;
	wr.send_flags |= USMC_SEND_INLINE;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
		       USMC_ERR_INVALID_ARGUMENT); /* > max_inline_data */
	memset(&rw, 0, sizeof(rw));
	rw.num_sge = 1;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)m->addr;
	rw.sg_list[0].length = 8192;
	rw.sg_list[0].lkey = m->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_recv(p.s[0].qp, &rw), USMC_ERR_ACCESS);

	/* not connected yet */
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 2;
	ia.max_recv_wr = 2;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(p.s[0].tp, &ia, &qp), 0);
	wr = write_wr(1, m, 0, 100, m, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(qp, &wr), USMC_ERR_INVALID_STATE);
	rw.sg_list[0].length = 100;
	USMC_ASSERT_EQ(usmc_tp_post_recv(qp, &rw), USMC_ERR_INVALID_STATE);
	usmc_tp_destroy_qp(qp);
	ia.max_send_sge = 3;
	USMC_ASSERT_EQ(usmc_tp_create_qp(p.s[0].tp, &ia, &qp),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_tp_free_mr(m);
	teardown(&p);
}

/* Multi-packet SEND (SMC-Rv2 LLC messages reach 8 KiB) into two SGEs, and a
 * SEND larger than the receive WR: LOC_LEN_ERR there, REM_INV_REQ here. */
static void test_send_multi_packet(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *tx, *rx;
	usmc_recv_wr rw;
	usmc_wr wr;

	cp.mtu = USMC_IB_MTU_1024;
	if (setup(&p, NULL, NULL, &cp))
		return;
	tx = mr(&p.s[0], 16384, USMC_ACCESS_LOCAL_WRITE);
	rx = mr(&p.s[1], 16384, USMC_ACCESS_LOCAL_WRITE);
	fill(tx->addr, 16384, 21);
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

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 10;
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)tx->addr;
	wr.sg_list[0].length = 8192;
	wr.sg_list[0].lkey = tx->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 1, 3000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
	USMC_ASSERT_EQ(p.s[1].wcs[0].status, USMC_WC_SUCCESS);
	USMC_ASSERT_EQ(p.s[1].wcs[0].wr_id, 1);
	USMC_ASSERT_EQ(p.s[1].wcs[0].byte_len, 8192);
	USMC_ASSERT_MEM_EQ((uint8_t *)rx->addr + 100, tx->addr, 3000);
	USMC_ASSERT_MEM_EQ((uint8_t *)rx->addr + 4000,
			   (uint8_t *)tx->addr + 3000, 5192);
	USMC_ASSERT_EQ(((uint8_t *)rx->addr)[99], 0x77);
	USMC_ASSERT_EQ(((uint8_t *)rx->addr)[3100], 0x77);
	USMC_ASSERT_EQ(((uint8_t *)rx->addr)[9192], 0x77);

	/* 2000 bytes into the 1000-byte receive WR */
	wr.wr_id = 11;
	wr.sg_list[0].length = 2000;
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 1, 2, 3000), 0);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 2, 3000), 0);
	USMC_ASSERT_EQ(p.s[1].wcs[1].wr_id, 2);
	USMC_ASSERT_EQ(p.s[1].wcs[1].status, USMC_WC_LOC_LEN_ERR);
	USMC_ASSERT_EQ(p.s[0].wcs[1].wr_id, 11);
	USMC_ASSERT_EQ(p.s[0].wcs[1].status, USMC_WC_REM_INV_REQ_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_ERR);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	teardown(&p);
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
	run_for(&p, 50);
	usmc_softroce_get_stats(p.s[1].tp, &st1);
	USMC_ASSERT_EQ(st1.drop_icrc - st0.drop_icrc, 1);
	/* a shared port's program drops the runt before softroce sees it */
	USMC_ASSERT_EQ(st1.drop_hdr - st0.drop_hdr +
			       (st1.share_drop_short - st0.share_drop_short),
		       2);
	USMC_ASSERT_EQ(p.s[1].nwc, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_RTS);
	close(fd);
	teardown(&p);
}

/* SEND both ways, a 1 MiB WRITE and a WRITE with immediate between two
 * QPs of one device. */
static void one_dev_data_path(pair *p)
{
	usmc_tp_mr *src, *dst, *rx;
	uint8_t *rxb;
	const size_t big = 1 << 20;

	create_qps(p, &smc_params);
	connect_qps(p, &smc_params);
	CU_ASSERT_NOT_EQUAL(usmc_tp_qp_num(p->s[0].qp),
			    usmc_tp_qp_num(p->s[1].qp));
	src = mr(&p->s[0], big, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p->s[1], big,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = mr(&p->s[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	rxb = rx->addr;
	fill(src->addr, big, 31);
	for (int i = 0; i < 2; i++)
		post_recv_buf(&p->s[i], 700 + (uint64_t)i, rx, (size_t)i * 64,
			      64);
	for (int i = 0; i < 2; i++) {
		usmc_wr wr;

		memset(&wr, 0, sizeof(wr));
		wr.wr_id = 800 + (uint64_t)i;
		wr.opcode = USMC_WR_SEND;
		wr.send_flags = USMC_SEND_SIGNALED;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)src->addr + 1000 * i;
		wr.sg_list[0].length = 44;
		wr.sg_list[0].lkey = src->lkey;
		USMC_ASSERT_EQ(usmc_tp_post_send(p->s[i].qp, &wr), 0);
	}
	{
		usmc_wr wr = write_wr(900, src, 0, (uint32_t)big, dst, 0);

		wr.opcode = USMC_WR_RDMA_WRITE_WITH_IMM;
		wr.imm_data = 0x5eed;
		USMC_ASSERT_EQ(usmc_tp_post_send(p->s[0].qp, &wr), 0);
		post_recv_buf(&p->s[1], 701, rx, 256, 64);
	}
	USMC_ASSERT_EQ(wait_wcs(p, 0, 3, 5000), 0);
	USMC_ASSERT_EQ(wait_wcs(p, 1, 3, 5000), 0);
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
	teardown(p);
}

static void test_one_device_ipv4(void)
{
	pair p;

	USMC_ASSERT_EQ_FATAL(open_pair_one_dev(&p, "127.0.0.1", AF_INET), 0);
	one_dev_data_path(&p);
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

/* The send queue holds max_send_wr WRs; more is WOULDBLOCK, not a loss. */
static void test_sq_full(void)
{
	pair p;
	conn_params cp = smc_params;
	usmc_tp_mr *src, *dst;
	int posted = 0, rc = 0;

	cp.max_send_wr = 8;
	if (setup(&p, NULL, NULL, &cp))
		return;
	src = mr(&p.s[0], 1 << 20, USMC_ACCESS_LOCAL_WRITE);
	dst = mr(&p.s[1], 1 << 20,
		 USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	fill(src->addr, 1 << 20, 8);
	while (posted < 20) {
		usmc_wr wr =
			write_wr((uint64_t)posted, src, 0, 1 << 20, dst, 0);

		rc = usmc_tp_post_send(p.s[0].qp, &wr);
		if (rc)
			break;
		posted++;
	}
	USMC_ASSERT_EQ(rc, USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(posted, 8);
	USMC_ASSERT_EQ(wait_wcs(&p, 0, 8, 10000), 0);
	USMC_ASSERT_MEM_EQ(dst->addr, src->addr, 1 << 20);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	teardown(&p);
}

static CU_TestInfo tests[] = {
	{"open, query_port, busy port, bad options", test_open_query},
	{"MR keys distinct and not small", test_mr_keys},
	{"SEND 44 bytes both ways", test_send_both_ways},
	{"RDMA WRITE sizes, MTU 4096", test_write_sizes_4096},
	{"RDMA WRITE sizes, MTU 1024", test_write_sizes_1024},
	{"RDMA WRITE with immediate", test_write_imm},
	{"batch: posts leave together at its end", test_batch},
	{"WRITE out of bounds: REM_ACCESS_ERR", test_write_out_of_bounds},
	{"WRITE wrong rkey: REM_ACCESS_ERR", test_write_wrong_rkey},
	{"WRITE to MR without REMOTE_WRITE", test_write_no_remote_access},
	{"SEND without recv: RNR, then delivered", test_rnr},
	{"1% loss: byte-exact with retransmission", test_loss_1pct},
	{"10% loss: byte-exact with retransmission", test_loss_10pct},
	{"socket EAGAIN: pause and go back", test_tx_eagain},
	{"small receive buffer: window adapts", test_small_rcvbuf},
	{"retry exhaustion: RETRY_EXC_ERR", test_retry_exhausted},
	{"retransmit backoff: a stopped peer catches up",
	 test_retransmit_backoff},
	{"destroy with outstanding WRs flushes", test_destroy_flushes},
	{"a destroyed QP's completions reach no new QP",
	 test_destroy_no_foreign_wc},
	{"post errors", test_post_errors},
	{"send queue full", test_sq_full},
	{"multi-packet SEND, SEND too long", test_send_multi_packet},
	{"ingress drops: ICRC, header", test_ingress_drops},
	{"two QPs on one device (IPv4)", test_one_device_ipv4},
	{"two QPs on one device (IPv6 ::1)", test_one_device_ipv6},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"softroce", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
