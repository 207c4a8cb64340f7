/* SPDX-License-Identifier: MIT */
/*
 * Scaffolding the transport tests share: two devices with one RC QP each
 * (or both QPs on one device), MRs, work requests, and bounded polling of
 * both CQs into per-side completion lists. How a pair's devices are opened
 * and how its time passes stay with each test: a pair waits on the device
 * fds and the wall clock unless it is given |drive| and |clock_ms| (sim's
 * virtual clock).
 */
#ifndef USMC_TP_PAIR_H
#define USMC_TP_PAIR_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "usmc_test.h"
#include "usmc_transport.h"

#define TP_MAX_WC 8192

/* A virtual clock could run far ahead of the wall; the wall bounds every
 * wait too. */
#define TP_WALL_LIMIT_MS 60000

typedef struct tp_side {
	usmc_tp *tp;
	usmc_tp_qp *qp;
	usmc_port_attr port;
	usmc_wc wcs[TP_MAX_WC];
	int nwc;
} tp_side;

struct tp_fixture; /* a test's own description of its backend */

typedef struct tp_pair tp_pair;
struct tp_pair {
	tp_side s[2];
	int ep; /* epoll set of the device fds; -1: none yet */
	/* let up to |ms| pass (returning early when a device fd is
	 * readable), polling no CQ; NULL: epoll_wait on |ep| */
	void (*drive)(tp_pair *p, int ms);
	/* the backend's time in ms; NULL: CLOCK_MONOTONIC */
	uint64_t (*clock_ms)(const tp_pair *p);
	int round_ms;	   /* one polling round's wait; 0: 10 ms */
	uint16_t udp_port; /* of a pair opened on loopback */
	const struct tp_fixture *fx;
	void *backend_ctx; /* what the devices were opened with (sim world) */
};

/* The QP settings of a pair; TP_SMC_PARAMS are net/smc's. */
typedef struct tp_conn_params {
	uint8_t mtu; /* 0: the port's active MTU */
	uint8_t timeout, retry_cnt, rnr_retry, min_rnr_timer;
	uint32_t max_send_wr, max_recv_wr, max_inline_data;
	/* side i receives from rq_psn psn + i, sends from psn + 1 - i */
	uint32_t psn;
} tp_conn_params;

/* 0xfffff0: the 24-bit PSNs wrap soon after the start */
#define TP_SMC_PARAMS                                   \
	{                                               \
		0, 15, 7, 7, 5, 256, 256, 64, 0xfffff0u \
	}

/* valgrind, or USMC_TEST_QUICK: the long cases run shorter */
static inline int tp_quick(void)
{
	return RUNNING_ON_VALGRIND || getenv("USMC_TEST_QUICK");
}

static inline uint64_t tp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* xorshift bytes from |seed| */
static inline void tp_fill(uint8_t *b, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
}

/* An MR of at least |len| bytes, page-aligned, on |tp|; fatal if none. */
static inline usmc_tp_mr *tp_mr(usmc_tp *tp, size_t len, uint32_t access)
{
	usmc_tp_mr *m = NULL;

	USMC_ASSERT_EQ_FATAL(usmc_tp_alloc_mr(tp, len, access, &m), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_EQUAL(m->tp, tp);
	CU_ASSERT_TRUE(m->length >= len);
	CU_ASSERT_EQUAL((uintptr_t)m->addr % 4096, 0);
	return m;
}

/* A signaled one-SGE WR from |src|+|off|; |dst| (WRITE) may be NULL. */
static inline usmc_wr tp_wr(usmc_wr_opcode op, uint64_t id, usmc_tp_mr *src,
			    size_t off, uint32_t len, usmc_tp_mr *dst,
			    size_t doff)
{
	usmc_wr wr;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = id;
	wr.opcode = op;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)src->addr + off;
	wr.sg_list[0].length = len;
	wr.sg_list[0].lkey = src->lkey;
	if (dst) {
		wr.remote_addr = dst->iova + doff;
		wr.rkey = dst->rkey;
	}
	return wr;
}

static inline usmc_wr tp_write_wr(uint64_t id, usmc_tp_mr *src, size_t off,
				  uint32_t len, usmc_tp_mr *dst, size_t doff)
{
	return tp_wr(USMC_WR_RDMA_WRITE, id, src, off, len, dst, doff);
}

static inline usmc_wr tp_send_wr(uint64_t id, usmc_tp_mr *src, size_t off,
				 uint32_t len)
{
	return tp_wr(USMC_WR_SEND, id, src, off, len, NULL, 0);
}

/* Posts a one-SGE receive of |m|+|off|, asserting it is taken. */
static inline void tp_post_recv(usmc_tp_qp *qp, uint64_t id, usmc_tp_mr *m,
				size_t off, uint32_t len)
{
	usmc_recv_wr rw;

	memset(&rw, 0, sizeof(rw));
	rw.wr_id = id;
	rw.num_sge = 1;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)m->addr + off;
	rw.sg_list[0].length = len;
	rw.sg_list[0].lkey = m->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_recv(qp, &rw), 0);
}

/* An RC QP on |tp| with |cp|'s queue sizes, in RESET, |ctx| its cookie. */
static inline void tp_qp_create(usmc_tp *tp, const tp_conn_params *cp,
				void *ctx, usmc_tp_qp **qp)
{
	usmc_qp_init_attr ia;

	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = cp->max_send_wr;
	ia.max_recv_wr = cp->max_recv_wr;
	ia.max_send_sge = 2;
	ia.max_recv_sge = 2;
	ia.max_inline_data = cp->max_inline_data;
	ia.context = ctx;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(tp, &ia, qp), 0);
	CU_ASSERT_PTR_EQUAL(usmc_tp_qp_context(*qp), ctx);
	CU_ASSERT_PTR_EQUAL((*qp)->tp, tp);
	USMC_ASSERT_EQ(usmc_tp_qp_state(*qp), USMC_QPS_RESET);
}

/* Side |i|'s QP through INIT to RTR towards |peer| (smc_ib_modify_qp_init,
 * smc_ib_modify_qp_rtr). */
static inline void tp_qp_rtr(usmc_tp_qp *qp, const usmc_port_attr *port,
			     usmc_tp_qp *peer, const usmc_port_attr *peer_port,
			     const tp_conn_params *cp, int i)
{
	usmc_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_INIT);
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = cp->mtu ? cp->mtu : port->active_mtu;
	a.dest_qp_num = usmc_tp_qp_num(peer);
	a.rq_psn = (cp->psn + (uint32_t)i) & 0xffffffu;
	memcpy(a.dgid, peer_port->gid, 16);
	a.hop_limit = 64;
	a.min_rnr_timer = cp->min_rnr_timer;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_RTR);
}

/* Side |i|'s QP to RTS (smc_ib_modify_qp_rts). */
static inline void tp_qp_rts(usmc_tp_qp *qp, const tp_conn_params *cp, int i)
{
	usmc_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_RTS;
	a.sq_psn = (cp->psn + (uint32_t)(1 - i)) & 0xffffffu;
	a.timeout = cp->timeout;
	a.retry_cnt = cp->retry_cnt;
	a.rnr_retry = cp->rnr_retry;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(qp, &a), 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(qp), USMC_QPS_RTS);
}

/* An empty pair, before its devices are opened. */
static inline void tp_pair_init(tp_pair *p)
{
	memset(p, 0, sizeof(*p));
	p->ep = -1;
}

/* Opens side |i|'s device on |ip| and UDP |port|. */
typedef int (*tp_open_fn)(void *arg, int i, const char *ip, uint16_t port,
			  usmc_tp **tp);

/* Side 0's device on 127.0.0.1 and side 1's on 127.0.0.2 (one_dev: side 1
 * shares side 0's) on one UDP port, into |p->udp_port|; another port while
 * one is taken (USMC_ERR_BUSY). |salt| keeps the tests' ports apart. On
 * failure no device stays open. */
static inline int tp_pair_open_loopback(tp_pair *p, tp_open_fn open_fn,
					void *arg, int one_dev,
					unsigned int salt)
{
	for (unsigned int tries = 0; tries < 50; tries++) {
		uint16_t port =
			(uint16_t)(20000 + ((unsigned int)getpid() * 17u +
					    salt + tries * 7u) %
						   20000u);
		int rc = open_fn(arg, 0, "127.0.0.1", port, &p->s[0].tp);

		if (rc == USMC_ERR_BUSY)
			continue;
		if (rc)
			return rc;
		if (one_dev)
			p->s[1].tp = p->s[0].tp;
		else
			rc = open_fn(arg, 1, "127.0.0.2", port, &p->s[1].tp);
		if (rc) {
			usmc_tp_close(p->s[0].tp);
			p->s[0].tp = p->s[1].tp = NULL;
			if (rc == USMC_ERR_BUSY)
				continue;
			return rc;
		}
		p->udp_port = port;
		return 0;
	}
	return USMC_ERR_BUSY;
}

/* A QP on each side (context: the side), the ports, and the device fds
 * in |p->ep| (once when both sides share a device). */
static inline void tp_pair_create_qps(tp_pair *p, const tp_conn_params *cp)
{
	struct epoll_event ev;

	p->ep = epoll_create1(0);
	CU_ASSERT_TRUE_FATAL(p->ep >= 0);
	for (int i = 0; i < 2; i++) {
		tp_qp_create(p->s[i].tp, cp, &p->s[i], &p->s[i].qp);
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

/* Both QPs to RTR, then both to RTS, each towards the other. */
static inline void tp_pair_connect(tp_pair *p, const tp_conn_params *cp)
{
	for (int i = 0; i < 2; i++)
		tp_qp_rtr(p->s[i].qp, &p->s[i].port, p->s[1 - i].qp,
			  &p->s[1 - i].port, cp, i);
	for (int i = 0; i < 2; i++)
		tp_qp_rts(p->s[i].qp, cp, i);
}

/* Destroys the QPs, closes the devices (a shared one once) and the epoll
 * set; what is in |backend_ctx| is the test's to free. */
static inline void tp_pair_teardown(tp_pair *p)
{
	for (int i = 0; i < 2; i++)
		if (p->s[i].qp)
			usmc_tp_destroy_qp(p->s[i].qp);
	for (int i = 0; i < 2; i++)
		if (p->s[i].tp && (i == 0 || p->s[1].tp != p->s[0].tp))
			usmc_tp_close(p->s[i].tp);
	if (p->ep >= 0)
		close(p->ep);
	p->ep = -1;
}

static inline uint64_t tp_pair_clock_ms(const tp_pair *p)
{
	return p->clock_ms ? p->clock_ms(p) : tp_now_ms();
}

/* Both QPs may live on one device: a completion goes to the side whose QP
 * it names, or whose QP is gone. */
static inline tp_side *tp_pair_route(tp_pair *p, usmc_tp *tp, const usmc_wc *wc)
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

/* Drains both CQs (a shared device once) into the sides' lists. */
static inline void tp_pair_poll_cqs(tp_pair *p)
{
	usmc_wc wcs[64];

	for (int i = 0; i < 2; i++) {
		usmc_tp *tp = p->s[i].tp;
		int n;

		if (!tp || (i == 1 && tp == p->s[0].tp))
			continue;
		do {
			n = usmc_tp_poll_cq(tp, wcs, 64);
			CU_ASSERT_TRUE(n >= 0);
			for (int k = 0; k < n; k++) {
				tp_side *s = tp_pair_route(p, tp, &wcs[k]);

				if (s->nwc < TP_MAX_WC)
					s->wcs[s->nwc++] = wcs[k];
			}
		} while (n == 64);
	}
}

/* One round: let up to |ms| pass, then poll both CQs. */
static inline void tp_pair_round(tp_pair *p, int ms)
{
	if (p->drive) {
		p->drive(p, ms);
	} else {
		struct epoll_event ev[2];

		epoll_wait(p->ep, ev, 2, ms);
	}
	tp_pair_poll_cqs(p);
}

static inline int tp_pair_round_ms(const tp_pair *p)
{
	return p->round_ms ? p->round_ms : 10;
}

/* Polls until side |i| has |n| completions within |timeout_ms| of the
 * pair's time; 0 on success. */
static inline int tp_pair_wait_wcs(tp_pair *p, int i, int n, int timeout_ms)
{
	uint64_t end = tp_pair_clock_ms(p) + (uint64_t)timeout_ms;
	uint64_t wend = tp_now_ms() + TP_WALL_LIMIT_MS;

	while (p->s[i].nwc < n) {
		if (tp_pair_clock_ms(p) > end || tp_now_ms() > wend)
			return -1;
		tp_pair_round(p, tp_pair_round_ms(p));
	}
	return 0;
}

/* Polls for |ms| of the pair's time. */
static inline void tp_pair_run_for(tp_pair *p, int ms)
{
	uint64_t end = tp_pair_clock_ms(p) + (uint64_t)ms;
	uint64_t wend = tp_now_ms() + TP_WALL_LIMIT_MS;

	while (tp_pair_clock_ms(p) < end && tp_now_ms() < wend)
		tp_pair_round(p, tp_pair_round_ms(p));
}

/* Polls until |tp| raises an async event within |ms| of the pair's time;
 * 0 and |ev| on success. */
static inline int tp_pair_wait_event(tp_pair *p, usmc_tp *tp, usmc_tp_event *ev,
				     int ms)
{
	uint64_t end = tp_pair_clock_ms(p) + (uint64_t)ms;
	uint64_t wend = tp_now_ms() + TP_WALL_LIMIT_MS;

	for (;;) {
		if (usmc_tp_get_async_event(tp, ev) == 1)
			return 0;
		if (tp_pair_clock_ms(p) > end || tp_now_ms() > wend)
			return -1;
		tp_pair_round(p, 1);
	}
}

#endif /* USMC_TP_PAIR_H */
