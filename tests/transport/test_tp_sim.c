/* SPDX-License-Identifier: MIT */
/*
 * The sim backend's own checks (what every backend must do is in
 * test_tp_conformance.c): a seeded run replays exactly and another seed
 * differs, time moves only in usmc_tp_sim_world_run, the timing options,
 * open errors, WRs whose memory is freed in flight, loss, a cut path, a
 * world deleted before its devices, and the fault decorator over sim
 * (device faults and their async events, packet faults through the rx
 * hook, timed clauses on the virtual clock replaying exactly).
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tp_pair.h"
#include "usmc_fault.h"
#include "usmc_test.h"
#include "usmc_tp_sim.h"
#include "usmc_transport.h"

#define MS 1000000ull

typedef struct net {
	usmc_tp_sim_world *w;
	usmc_tp *tp[2];
	usmc_tp_qp *qp[2];
	usmc_port_attr port[2];
} net;

static int open_dev(usmc_tp_sim_world *w, const char *name, const char *ip,
		    const char *opts, usmc_tp **tp)
{
	usmc_tp_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&cfg.local_addr;

		s->sin6_family = AF_INET6;
		inet_pton(AF_INET6, ip, &s->sin6_addr);
	} else {
		struct sockaddr_in *s = (struct sockaddr_in *)&cfg.local_addr;

		s->sin_family = AF_INET;
		inet_pton(AF_INET, ip, &s->sin_addr);
	}
	cfg.options = opts;
	cfg.backend_ctx = w;
	*tp = NULL;
	return usmc_tp_open(name, &cfg, tp);
}

/* Two devices with a connected RC QP each. */
static int net_up(net *n, uint64_t seed, const char *name, const char *ip0,
		  const char *ip1, const char *opts, uint8_t timeout,
		  uint8_t retry_cnt)
{
	tp_conn_params cp = {0, timeout, retry_cnt, 7, 5, 512, 512, 0, 0};

	memset(n, 0, sizeof(*n));
	n->w = usmc_tp_sim_world_new(seed);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n->w);
	USMC_ASSERT_EQ_FATAL(open_dev(n->w, name, ip0, opts, &n->tp[0]), 0);
	USMC_ASSERT_EQ_FATAL(open_dev(n->w, name, ip1, opts, &n->tp[1]), 0);
	for (int i = 0; i < 2; i++) {
		tp_qp_create(n->tp[i], &cp, NULL, &n->qp[i]);
		USMC_ASSERT_EQ_FATAL(usmc_tp_query_port(n->tp[i], &n->port[i]),
				     0);
	}
	for (int i = 0; i < 2; i++)
		tp_qp_rtr(n->qp[i], &n->port[i], n->qp[1 - i], &n->port[1 - i],
			  &cp, i);
	for (int i = 0; i < 2; i++)
		tp_qp_rts(n->qp[i], &cp, i);
	return 0;
}

static void net_down(net *n)
{
	for (int i = 0; i < 2; i++) {
		if (n->qp[i])
			usmc_tp_destroy_qp(n->qp[i]);
		if (n->tp[i])
			usmc_tp_close(n->tp[i]);
	}
	usmc_tp_sim_world_del(n->w);
}

/* A completion with the virtual time it was polled at. */
typedef struct rec {
	usmc_tstamp t;
	int dev;
	usmc_wc wc;
} rec;

/* Runs event by event until |limit|, polling both CQs after each, into
 * |r| (at most |cap|); returns how many. */
static int trace(net *n, usmc_tstamp limit, rec *r, int cap)
{
	int k = 0;

	for (;;) {
		usmc_tstamp t = usmc_tp_sim_world_next(n->w);

		if (t == USMC_TSTAMP_NONE || t > limit)
			break;
		usmc_tp_sim_world_run(n->w, t);
		for (int d = 0; d < 2; d++) {
			usmc_wc wc;

			while (usmc_tp_poll_cq(n->tp[d], &wc, 1) == 1)
				if (k < cap)
					r[k++] = (rec){t, d, wc};
		}
	}
	return k;
}

/* ---- cases ------------------------------------------------------------- */

/* One script of SENDs and WRITEs over a lossy fabric, twice per seed. */
static int script(uint64_t seed, rec *r, int cap, usmc_tp_sim_stats *st,
		  uint64_t *sum)
{
	net n;
	usmc_tp_mr *src, *dst, *rx;
	int k;

	net_up(&n, seed, "sim", "10.1.0.1", "10.1.0.2", NULL, 8, 7);
	usmc_tp_sim_world_set_loss(n.w, 50000); /* 5 % */
	src = tp_mr(n.tp[0], 1 << 20, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(n.tp[1], 1 << 20,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = tp_mr(n.tp[1], 64 * 64, USMC_ACCESS_LOCAL_WRITE);
	for (size_t i = 0; i < (1 << 20); i++)
		((uint8_t *)src->addr)[i] = (uint8_t)(i * 7 + (i >> 9));
	for (int i = 0; i < 64; i++) {
		usmc_wr w =
			tp_wr(USMC_WR_RDMA_WRITE, 2 * (uint64_t)i, src,
			      (size_t)i << 14, 1 << 14, dst, (size_t)i << 14);
		usmc_wr s = tp_wr(USMC_WR_SEND, 2 * (uint64_t)i + 1, src,
				  (size_t)i * 44, 44, NULL, 0);

		tp_post_recv(n.qp[1], (uint64_t)i, rx, (size_t)i * 64, 64);
		USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &w), 0);
		USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &s), 0);
	}
	k = trace(&n, usmc_tp_sim_world_now(n.w) + 10000 * MS, r, cap);
	USMC_ASSERT_MEM_EQ(dst->addr, src->addr, 1 << 20);
	usmc_tp_sim_get_stats(n.tp[0], st);
	*sum = 0;
	for (int i = 0; i < 64 * 64; i++)
		*sum = *sum * 131 + ((uint8_t *)rx->addr)[i];
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	net_down(&n);
	return k;
}

static void test_replay(void)
{
	static rec a[512], b[512], c[512];
	usmc_tp_sim_stats sa, sb, sc;
	uint64_t ha, hb, hc;
	int na = script(7, a, 512, &sa, &ha);
	int nb = script(7, b, 512, &sb, &hb);
	int nc = script(8, c, 512, &sc, &hc);

	USMC_ASSERT_EQ(na, 192); /* 128 sent, 64 received */
	USMC_ASSERT_EQ(na, nb);
	USMC_ASSERT_EQ(nc, na);
	/* the same seed: the same completions at the same virtual times */
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(rec) * (size_t)na), 0);
	CU_ASSERT_EQUAL(memcmp(&sa, &sb, sizeof(sa)), 0);
	USMC_ASSERT_EQ(ha, hb);
	USMC_ASSERT_EQ(ha, hc); /* the data does not depend on the seed */
	CU_ASSERT_TRUE(sa.lost > 0 && sa.retry_timeouts > 0);
	/* another seed: other losses, other times */
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(rec) * (size_t)na), 0);
	fprintf(stderr,
		"  [seed 7: %d completions, last at +%llu us, %llu lost; "
		"seed 8: last at +%llu us, %llu lost]\n",
		na, (unsigned long long)(a[na - 1].t - 1000000000ull) / 1000,
		(unsigned long long)sa.lost,
		(unsigned long long)(c[nc - 1].t - 1000000000ull) / 1000,
		(unsigned long long)sc.lost);
	for (int i = 0; i < na; i++)
		USMC_ASSERT_EQ(a[i].wc.status, USMC_WC_SUCCESS);
}

/* Nothing moves unless the world runs; then the clock reads |until|, and
 * the timing options show in when things arrive. */
static void test_virtual_clock(void)
{
	net n;
	usmc_tp_mr *tx, *rx, *big, *dst;
	struct pollfd pf;
	usmc_tstamp t0;
	usmc_wc wc;
	usmc_wr wr;

	net_up(&n, 1, "sim", "10.2.0.1", "10.2.0.2",
	       "latency=20000,jitter=0,gbps=8", 15, 7);
	tx = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(n.tp[1], 64, USMC_ACCESS_LOCAL_WRITE);
	big = tp_mr(n.tp[0], 1 << 20, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(n.tp[1], 1 << 20,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_post_recv(n.qp[1], 1, rx, 0, 64);
	t0 = usmc_tp_sim_world_now(n.w);
	USMC_ASSERT_EQ(usmc_tp_sim_world_next(n.w), USMC_TSTAMP_NONE);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 8, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	/* 8 bytes at 8 Gbit/s: 8 ns, then 20 us */
	USMC_ASSERT_EQ(usmc_tp_sim_world_next(n.w), t0 + 8 + 20000);
	usleep(2000); /* wall time passes, the fabric's does not */
	USMC_ASSERT_EQ(usmc_tp_poll_cq(n.tp[1], &wc, 1), 0);
	USMC_ASSERT_EQ(usmc_tp_sim_world_now(n.w), t0);
	pf.fd = usmc_tp_get_fd(n.tp[1]);
	pf.events = POLLIN;
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	USMC_ASSERT_EQ(usmc_tp_sim_world_run(n.w, t0 + 8 + 19999), 0);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	USMC_ASSERT_EQ(usmc_tp_sim_world_run(n.w, t0 + 8 + 20000), 1);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 1);
	USMC_ASSERT_EQ(usmc_tp_poll_cq(n.tp[1], &wc, 1), 1);
	USMC_ASSERT_EQ(wc.byte_len, 8);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	/* the ACK takes the latency back */
	USMC_ASSERT_EQ(usmc_tp_sim_world_next(n.w), t0 + 8 + 40000);
	usmc_tp_sim_world_run(n.w, t0 + MS);
	USMC_ASSERT_EQ(usmc_tp_sim_world_now(n.w), t0 + MS);
	USMC_ASSERT_EQ(usmc_tp_poll_cq(n.tp[0], &wc, 1), 1);
	/* 1 MiB at 8 Gbit/s: 1048576 ns on the wire, then 20 us */
	t0 = usmc_tp_sim_world_now(n.w);
	wr = tp_wr(USMC_WR_RDMA_WRITE, 2, big, 0, 1 << 20, dst, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(usmc_tp_sim_world_next(n.w), t0 + 1048576 + 20000);
	usmc_tp_sim_world_run(n.w, t0 + 10 * MS);
	USMC_ASSERT_EQ(usmc_tp_poll_cq(n.tp[0], &wc, 1), 1);
	USMC_ASSERT_EQ(wc.status, USMC_WC_SUCCESS);
	/* the clock never goes back */
	usmc_tp_sim_world_run(n.w, t0);
	USMC_ASSERT_EQ(usmc_tp_sim_world_now(n.w), t0 + 10 * MS);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	usmc_tp_free_mr(big);
	usmc_tp_free_mr(dst);
	net_down(&n);
}

static void test_open_errors(void)
{
	usmc_tp_sim_world *w = usmc_tp_sim_world_new(3), *other;
	uint64_t not_a_world[16];
	usmc_tp *a, *b, *c;
	usmc_port_attr pa;
	usmc_tp_config cfg;
	usmc_tp_sim_stats st;

	memset(not_a_world, 0, sizeof(not_a_world));
	memset(&cfg, 0, sizeof(cfg));
	cfg.local_addr.ss_family = AF_INET;
	USMC_ASSERT_EQ(usmc_tp_open("sim", &cfg, &a),
		       USMC_ERR_INVALID_ARGUMENT); /* no world */
	cfg.backend_ctx = not_a_world;
	USMC_ASSERT_EQ(usmc_tp_open("sim", &cfg, &a),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev(w, "sim", "0.0.0.0", NULL, &a),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev(w, "sim", "10.3.0.1", "mtu=1000", &a),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev(w, "sim", "10.3.0.1", "bogus=1", &a),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev(w, "sim", "10.3.0.1", "latency=", &a),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(open_dev(w, "sim", "10.3.0.1", "gbps=99999999999", &a),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(a);
	USMC_ASSERT_EQ_FATAL(open_dev(w, "sim", "10.3.0.1", ",,mtu=2048,", &a),
			     0);
	USMC_ASSERT_EQ(usmc_tp_query_port(a, &pa), 0);
	USMC_ASSERT_EQ(pa.active_mtu, USMC_IB_MTU_2048);
	USMC_ASSERT_EQ(pa.gid[10], 0xff);
	USMC_ASSERT_EQ(pa.gid[12], 10);
	USMC_ASSERT_EQ(pa.gid[15], 1);
	/* one device per address and world; another world is another
	 * fabric */
	USMC_ASSERT_EQ(open_dev(w, "sim", "10.3.0.1", NULL, &b), USMC_ERR_BUSY);
	other = usmc_tp_sim_world_new(3);
	USMC_ASSERT_EQ_FATAL(open_dev(other, "sim", "10.3.0.1", NULL, &c), 0);
	CU_ASSERT_PTR_EQUAL(usmc_tp_sim_world_of(c), other);
	CU_ASSERT_PTR_EQUAL(usmc_tp_sim_world_of(a), w);
	USMC_ASSERT_EQ(usmc_tp_sim_path_set(a, c, 0),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_tp_close(c);
	usmc_tp_sim_world_del(other);
	USMC_ASSERT_EQ_FATAL(open_dev(w, "sim", "fd00::1", NULL, &b), 0);
	USMC_ASSERT_EQ(usmc_tp_query_port(b, &pa), 0);
	USMC_ASSERT_EQ(pa.active_mtu, USMC_IB_MTU_1024); /* the default */
	USMC_ASSERT_EQ(pa.gid[0], 0xfd);
	USMC_ASSERT_EQ(pa.gid[15], 1);
	/* the control calls refuse a device of another backend */
	USMC_ASSERT_EQ(usmc_tp_open("fault:sim", &(usmc_tp_config){0}, &c),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ_FATAL(open_dev(w, "fault:sim", "10.3.0.9", NULL, &c), 0);
	USMC_ASSERT_EQ(usmc_tp_sim_port_set(c, 0), USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_tp_sim_kill(c), USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_tp_sim_get_stats(c, &st),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(usmc_tp_sim_world_of(c));
	CU_ASSERT_PTR_EQUAL(usmc_tp_sim_world_of(usmc_fault_inner(c)), w);
	usmc_tp_close(c);
	usmc_tp_close(b);
	usmc_tp_close(a);
	usmc_tp_sim_world_del(w);
}

/* An IPv4 QP cannot name an IPv6 peer; two IPv6 devices talk. */
static void test_ipv6(void)
{
	net n;
	usmc_tp_mr *tx, *rx;
	usmc_qp_attr a;
	usmc_tp_qp *qp;
	usmc_qp_init_attr ia;
	rec r[4];
	usmc_wr wr;
	usmc_tp *v4;

	net_up(&n, 2, "sim", "fd00::1", "fd00::2", NULL, 15, 7);
	tx = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(n.tp[1], 64, USMC_ACCESS_LOCAL_WRITE);
	memcpy(tx->addr, "over IPv6", 9);
	tp_post_recv(n.qp[1], 1, rx, 0, 64);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 9, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(trace(&n, usmc_tp_sim_world_now(n.w) + MS, r, 4), 2);
	USMC_ASSERT_MEM_EQ(rx->addr, "over IPv6", 9);
	USMC_ASSERT_EQ_FATAL(open_dev(n.w, "sim", "10.4.0.1", NULL, &v4), 0);
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = ia.max_recv_wr = 1;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(v4, &ia, &qp), 0);
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_INIT;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), 0);
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = USMC_IB_MTU_1024;
	a.dest_qp_num = usmc_tp_qp_num(n.qp[1]);
	memcpy(a.dgid, n.port[1].gid, 16);
	USMC_ASSERT_EQ(usmc_tp_modify_qp(qp, &a), USMC_ERR_INVALID_ARGUMENT);
	usmc_tp_destroy_qp(qp);
	usmc_tp_close(v4);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	net_down(&n);
}

/* Memory freed between the post and the delivery: an error completion,
 * never a read or write of freed memory (ASan and valgrind watch). */
static void test_freed_in_flight(void)
{
	net n;
	usmc_tp_mr *tx, *rx, *dst;
	usmc_tp_sim_stats st;
	rec r[8];
	usmc_wr wr;
	int k;

	/* the source of a WRITE */
	net_up(&n, 4, "sim", "10.5.0.1", "10.5.0.2", NULL, 15, 7);
	tx = tp_mr(n.tp[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(n.tp[1], 4096,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	wr = tp_wr(USMC_WR_RDMA_WRITE, 1, tx, 0, 4096, dst, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	wr.wr_id = 2;
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	usmc_tp_free_mr(tx);
	k = trace(&n, usmc_tp_sim_world_now(n.w) + MS, r, 8);
	USMC_ASSERT_EQ(k, 2);
	USMC_ASSERT_EQ(r[0].wc.status, USMC_WC_LOC_PROT_ERR);
	USMC_ASSERT_EQ(r[1].wc.status, USMC_WC_WR_FLUSH_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(n.qp[0]), USMC_QPS_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(n.qp[1]), USMC_QPS_RTS);
	usmc_tp_free_mr(dst);
	net_down(&n);

	/* the buffer of a receive WR */
	net_up(&n, 4, "sim", "10.5.0.1", "10.5.0.2", NULL, 15, 7);
	tx = tp_mr(n.tp[0], 4096, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(n.tp[1], 4096, USMC_ACCESS_LOCAL_WRITE);
	tp_post_recv(n.qp[1], 9, rx, 0, 64);
	usmc_tp_free_mr(rx);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 44, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	k = trace(&n, usmc_tp_sim_world_now(n.w) + MS, r, 8);
	USMC_ASSERT_EQ(k, 2);
	for (int i = 0; i < k; i++) {
		if (r[i].dev == 1) {
			USMC_ASSERT_EQ(r[i].wc.wr_id, 9);
			USMC_ASSERT_EQ(r[i].wc.status, USMC_WC_LOC_PROT_ERR);
		} else {
			USMC_ASSERT_EQ(r[i].wc.status, USMC_WC_REM_OP_ERR);
		}
	}
	usmc_tp_sim_get_stats(n.tp[1], &st);
	USMC_ASSERT_EQ(st.nak_err_tx, 1);
	usmc_tp_free_mr(tx);
	net_down(&n);
}

/* 10 % of deliveries lost: RC retransmits after its timeout, the data
 * stays byte-exact; retry_cnt 1 soon runs out. */
static void test_loss(void)
{
	net n;
	const size_t total = 8u << 20;
	usmc_tp_mr *src, *dst;
	usmc_tp_sim_stats st;
	static rec r[256];
	int k, ok = 1;

	net_up(&n, 5, "sim", "10.6.0.1", "10.6.0.2", NULL, 10, 7);
	usmc_tp_sim_world_set_loss(n.w, 100000);
	src = tp_mr(n.tp[0], total, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(n.tp[1], total,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	for (size_t i = 0; i < total; i++)
		((uint8_t *)src->addr)[i] = (uint8_t)(i ^ (i >> 11));
	for (size_t off = 0; off < total; off += 64 << 10) {
		usmc_wr wr = tp_wr(USMC_WR_RDMA_WRITE, off, src, off, 64 << 10,
				   dst, off);

		USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	}
	k = trace(&n, usmc_tp_sim_world_now(n.w) + 60000 * MS, r, 256);
	USMC_ASSERT_EQ(k, (int)(total >> 16));
	for (int i = 0; i < k; i++)
		ok &= r[i].wc.status == USMC_WC_SUCCESS &&
		      r[i].wc.wr_id == (uint64_t)i << 16;
	CU_ASSERT_TRUE(ok);
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("lossy WRITE stream differs");
	usmc_tp_sim_get_stats(n.tp[0], &st);
	CU_ASSERT_TRUE(st.lost > 0);
	USMC_ASSERT_EQ(st.retry_timeouts, st.lost);
	fprintf(stderr,
		"  [8 MiB, 10%% loss: %llu attempts, %llu lost, %llu "
		"ms virtual]\n",
		(unsigned long long)st.attempts, (unsigned long long)st.lost,
		(unsigned long long)(r[k - 1].t - 1000000000ull) / MS);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	net_down(&n);

	net_up(&n, 5, "sim", "10.6.0.1", "10.6.0.2", NULL, 10, 1);
	usmc_tp_sim_world_set_loss(n.w, 1000000); /* everything */
	src = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(n.tp[1], 64,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	{
		usmc_wr wr = tp_wr(USMC_WR_RDMA_WRITE, 1, src, 0, 64, dst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	}
	k = trace(&n, usmc_tp_sim_world_now(n.w) + 1000 * MS, r, 4);
	USMC_ASSERT_EQ(k, 1);
	USMC_ASSERT_EQ(r[0].wc.status, USMC_WC_RETRY_EXC_ERR);
	usmc_tp_sim_get_stats(n.tp[0], &st);
	USMC_ASSERT_EQ(st.retry_timeouts, 2);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	net_down(&n);
}

/* A cut path between two devices: no event, RC waits; restored, the
 * message arrives. timeout 0 has no retransmit timer: a lost message
 * waits for ever, until the QP is flushed. */
static void test_path_cut(void)
{
	net n;
	usmc_tp_mr *tx, *rx;
	usmc_tp_event ev;
	usmc_qp_attr a;
	rec r[4];
	usmc_wr wr;

	net_up(&n, 6, "sim", "10.7.0.1", "10.7.0.2", NULL, 8, 7);
	tx = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(n.tp[1], 64, USMC_ACCESS_LOCAL_WRITE);
	memcpy(tx->addr, "through the cut", 15);
	tp_post_recv(n.qp[1], 1, rx, 0, 64);
	USMC_ASSERT_EQ(usmc_tp_sim_path_set(n.tp[0], n.tp[1], 0), 0);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 15, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(trace(&n, usmc_tp_sim_world_now(n.w) + 3000 * MS, r, 4),
		       0);
	USMC_ASSERT_EQ(usmc_tp_get_async_event(n.tp[0], &ev), 0);
	USMC_ASSERT_EQ(usmc_tp_get_async_event(n.tp[1], &ev), 0);
	USMC_ASSERT_EQ(usmc_tp_sim_path_set(n.tp[1], n.tp[0], 1), 0);
	USMC_ASSERT_EQ(trace(&n, usmc_tp_sim_world_now(n.w) + 3000 * MS, r, 4),
		       2);
	USMC_ASSERT_MEM_EQ(rx->addr, "through the cut", 15);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	net_down(&n);

	net_up(&n, 6, "sim", "10.7.0.1", "10.7.0.2", NULL, 0, 7);
	tx = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	USMC_ASSERT_EQ(usmc_tp_sim_port_set(n.tp[1], 0), 0);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 15, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(trace(&n, usmc_tp_sim_world_now(n.w) + 10000 * MS, r, 4),
		       0);
	USMC_ASSERT_EQ(usmc_tp_sim_world_next(n.w), USMC_TSTAMP_NONE);
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_ERR;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(n.qp[0], &a), 0);
	USMC_ASSERT_EQ(usmc_tp_poll_cq(n.tp[0], &r[0].wc, 1), 1);
	USMC_ASSERT_EQ(r[0].wc.status, USMC_WC_WR_FLUSH_ERR);
	usmc_tp_free_mr(tx);
	net_down(&n);
}

/* The world goes first: the devices keep working until they close, and
 * the last close frees it (valgrind and ASan watch). */
static void test_world_del_first(void)
{
	net n;
	usmc_tp_mr *tx, *rx;
	rec r[4];
	usmc_wr wr;

	net_up(&n, 9, "sim", "10.8.0.1", "10.8.0.2", NULL, 15, 7);
	tx = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(n.tp[1], 64, USMC_ACCESS_LOCAL_WRITE);
	tp_post_recv(n.qp[1], 1, rx, 0, 64);
	usmc_tp_sim_world_del(n.w);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 8, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(trace(&n, usmc_tp_sim_world_now(n.w) + MS, r, 4), 2);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	usmc_tp_destroy_qp(n.qp[0]);
	usmc_tp_close(n.tp[0]);
	usmc_tp_destroy_qp(n.qp[1]);
	usmc_tp_close(n.tp[1]);
}

/* The fault decorator over sim: device faults and their async events
 * pass through. */
static void test_fault_over_sim(void)
{
	net n;
	usmc_tp_mr *tx, *rx;
	usmc_fault_stats fs;
	usmc_tp_event ev;
	char err[200];
	rec r[8];
	usmc_wr wr;

	net_up(&n, 10, "fault:sim", "10.9.0.1", "10.9.0.2", NULL, 8, 7);
	USMC_ASSERT_EQ(usmc_fault_add(n.tp[0], "fail-post:op=SEND,nth=2", err,
				      sizeof(err)),
		       0);
	tx = tp_mr(n.tp[0], 64, USMC_ACCESS_LOCAL_WRITE);
	rx = tp_mr(n.tp[1], 256, USMC_ACCESS_LOCAL_WRITE);
	for (int i = 0; i < 3; i++)
		tp_post_recv(n.qp[1], (uint64_t)i, rx, (size_t)i * 64, 64);
	wr = tp_wr(USMC_WR_SEND, 1, tx, 0, 8, NULL, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), USMC_ERR_TRANSPORT);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), 0);
	USMC_ASSERT_EQ(trace(&n, usmc_tp_sim_world_now(n.w) + MS, r, 8), 4);
	usmc_fault_get_stats(n.tp[0], &fs);
	USMC_ASSERT_EQ(fs.posts, 3);
	USMC_ASSERT_EQ(fs.posts_failed, 1);
	/* the inner port: its events come out of the decorator */
	USMC_ASSERT_EQ(usmc_tp_sim_port_set(usmc_fault_inner(n.tp[1]), 0), 0);
	USMC_ASSERT_EQ(usmc_tp_get_async_event(n.tp[1], &ev), 1);
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_PORT_ERR);
	USMC_ASSERT_EQ(usmc_tp_sim_port_set(usmc_fault_inner(n.tp[1]), 1), 0);
	USMC_ASSERT_EQ(usmc_tp_get_async_event(n.tp[1], &ev), 1);
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_PORT_ACTIVE);
	/* the decorator's own device-fatal fault flushes the inner QPs */
	USMC_ASSERT_EQ(usmc_fault_add(n.tp[0], "device-fatal:op=SEND,nth=1",
				      err, sizeof(err)),
		       0);
	USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &wr), USMC_ERR_TRANSPORT);
	USMC_ASSERT_EQ(usmc_tp_get_async_event(n.tp[0], &ev), 1);
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_DEVICE_FATAL);
	USMC_ASSERT_EQ(usmc_tp_qp_state(n.qp[0]), USMC_QPS_ERR);
	usmc_tp_free_mr(tx);
	usmc_tp_free_mr(rx);
	net_down(&n);
}

/* A schedule on the receiving fault:sim device during the script of
 * test_replay (no loss of the world's own): the completions with their
 * virtual times, the decorator's counters and a hash of what arrived. */
static int fault_script(const char *sched, rec *r, int cap,
			usmc_fault_stats *fs, usmc_tp_sim_stats *st,
			uint64_t *sum)
{
	net n;
	usmc_tp_mr *src, *dst, *rx;
	char err[200];
	int k;

	net_up(&n, 3, "fault:sim", "10.10.0.1", "10.10.0.2", NULL, 8, 7);
	USMC_ASSERT_EQ_FATAL(usmc_fault_add(n.tp[1], sched, err, sizeof(err)),
			     0);
	src = tp_mr(n.tp[0], 1 << 20, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(n.tp[1], 1 << 20,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	rx = tp_mr(n.tp[1], 64 * 64, USMC_ACCESS_LOCAL_WRITE);
	for (size_t i = 0; i < (1 << 20); i++)
		((uint8_t *)src->addr)[i] = (uint8_t)(i * 13 + (i >> 10));
	for (int i = 0; i < 64; i++) {
		usmc_wr w =
			tp_wr(USMC_WR_RDMA_WRITE, 2 * (uint64_t)i, src,
			      (size_t)i << 14, 1 << 14, dst, (size_t)i << 14);
		usmc_wr s = tp_wr(USMC_WR_SEND, 2 * (uint64_t)i + 1, src,
				  (size_t)i * 44, 44, NULL, 0);

		tp_post_recv(n.qp[1], (uint64_t)i, rx, (size_t)i * 64, 64);
		USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &w), 0);
		USMC_ASSERT_EQ(usmc_tp_post_send(n.qp[0], &s), 0);
	}
	k = trace(&n, usmc_tp_sim_world_now(n.w) + 60000 * MS, r, cap);
	if (memcmp(dst->addr, src->addr, 1 << 20))
		CU_FAIL("WRITEs under packet faults differ");
	*sum = 0;
	for (int i = 0; i < 64; i++)
		*sum += (uint64_t)memcmp((uint8_t *)rx->addr + i * 64,
					 (uint8_t *)src->addr + i * 44,
					 44) != 0;
	usmc_fault_get_stats(n.tp[1], fs);
	usmc_tp_sim_get_stats(usmc_fault_inner(n.tp[1]), st);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(rx);
	net_down(&n);
	return k;
}

/* Packet faults over sim: the decorator's rx hook sees each message as a
 * packet; drop, delay, duplicate, reorder and corrupt cost time (RC
 * retransmits), never data; every corrupted one fails the check. */
static void test_packet_faults(void)
{
	static rec r[256];
	usmc_fault_stats fs;
	usmc_tp_sim_stats st;
	uint64_t bad;
	int k = fault_script("seed=5; drop:rate=0.05; delay:rate=0.05,by=3ms;"
			     "duplicate:rate=0.05; reorder:rate=0.05;"
			     "corrupt:rate=0.05",
			     r, 256, &fs, &st, &bad);
	int ok = 1;

	USMC_ASSERT_EQ(k, 192);
	for (int i = 0; i < k; i++)
		ok &= r[i].wc.status == USMC_WC_SUCCESS;
	CU_ASSERT_TRUE(ok);
	USMC_ASSERT_EQ(bad, 0);
	CU_ASSERT_TRUE(fs.dropped > 0 && fs.delayed > 0 && fs.duplicated > 0 &&
		       fs.reordered > 0 && fs.corrupted > 0);
	USMC_ASSERT_EQ(st.icrc_errors, fs.corrupted);
	/* what the hook took comes back or is lost; duplicates are dropped */
	USMC_ASSERT_EQ(st.hooked, fs.dropped + fs.delayed + fs.reordered);
	CU_ASSERT_TRUE(st.stale >= fs.duplicated);
	USMC_ASSERT_EQ(fs.fired, fs.dropped + fs.delayed + fs.duplicated +
					 fs.reordered + fs.corrupted);
	fprintf(stderr,
		"  [%llu packets: %llu dropped, %llu delayed, %llu duplicated, "
		"%llu reordered, %llu corrupted; done at +%llu ms]\n",
		(unsigned long long)fs.pkts, (unsigned long long)fs.dropped,
		(unsigned long long)fs.delayed,
		(unsigned long long)fs.duplicated,
		(unsigned long long)fs.reordered,
		(unsigned long long)fs.corrupted,
		(unsigned long long)(r[k - 1].t - 1000000000ull) / MS);
}

/* Timed clauses (after=, for=, port-down's end) run on the world's clock:
 * the same seed replays exactly, completions and their virtual times,
 * counters and fired counts; another seed differs. */
static void test_timed_replay(void)
{
	static const char *s1 = "seed=11; drop:after=100us,for=150us;"
				"delay:rate=0.2,by=50us,after=150us,for=2ms;"
				"port-down:after=300us,for=200us;"
				"reorder:rate=0.1,after=500us";
	static const char *s2 = "seed=12; drop:after=100us,for=150us;"
				"delay:rate=0.2,by=50us,after=150us,for=2ms;"
				"port-down:after=300us,for=200us;"
				"reorder:rate=0.1,after=500us";
	static rec a[256], b[256], c[256];
	usmc_fault_stats fa, fb, fc;
	usmc_tp_sim_stats sa, sb, sc;
	uint64_t ba, bb, bc;
	int na = fault_script(s1, a, 256, &fa, &sa, &ba);
	int nb = fault_script(s1, b, 256, &fb, &sb, &bb);
	int nc = fault_script(s2, c, 256, &fc, &sc, &bc);

	USMC_ASSERT_EQ(na, 192);
	USMC_ASSERT_EQ(nb, na);
	USMC_ASSERT_EQ(nc, na);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(rec) * (size_t)na), 0);
	CU_ASSERT_EQUAL(memcmp(&fa, &fb, sizeof(fa)), 0);
	CU_ASSERT_EQUAL(memcmp(&sa, &sb, sizeof(sa)), 0);
	USMC_ASSERT_EQ(ba + bb + bc, 0);
	/* every timed clause acted, on virtual time */
	CU_ASSERT_TRUE(fa.dropped > 0 && fa.delayed > 0 && fa.reordered > 0);
	USMC_ASSERT_EQ(fa.port_downs, 1);
	USMC_ASSERT_EQ(fa.port_ups, 1);
	CU_ASSERT_TRUE(fa.fired > 3);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(rec) * (size_t)na), 0);
	fprintf(stderr,
		"  [seed 11: %llu fired, last completion at +%llu us (twice); "
		"seed 12: %llu fired, +%llu us]\n",
		(unsigned long long)fa.fired,
		(unsigned long long)(a[na - 1].t - 1000000000ull) / 1000,
		(unsigned long long)fc.fired,
		(unsigned long long)(c[nc - 1].t - 1000000000ull) / 1000);
}

static CU_TestInfo tests[] = {
	{"a seed replays exactly, another differs", test_replay},
	{"virtual clock, latency, jitter, rate", test_virtual_clock},
	{"open errors, one device per address, control refusals",
	 test_open_errors},
	{"IPv6 devices; no IPv4 to IPv6 QP", test_ipv6},
	{"memory freed in flight: error completions", test_freed_in_flight},
	{"loss: retransmitted byte-exact, or retries exhausted", test_loss},
	{"a cut path waits; timeout 0 waits for ever", test_path_cut},
	{"world deleted before its devices", test_world_del_first},
	{"fault:sim: device faults, events", test_fault_over_sim},
	{"fault:sim: packet faults cost time, not data", test_packet_faults},
	{"fault:sim: a timed schedule replays exactly on the virtual clock",
	 test_timed_replay},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"tp_sim", tests},
						 {NULL, NULL}};

	unsetenv("USMC_FAULT");
	unsetenv("USMC_FAULT_FILE");
	setenv("USMC_FAULT_CTL", "off", 1);
	return usmc_test_main(suites);
}
