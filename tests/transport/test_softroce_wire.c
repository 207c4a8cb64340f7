/* SPDX-License-Identifier: MIT */
/*
 * softroce on the wire, packet by packet: one device whose outgoing packets
 * are captured instead of sent and whose clock the test drives, one QP
 * connected to a peer that the test plays by injecting packets. Checks
 * what rxe expects: segmentation, RETH/ImmDt placement, pad, AckReq policy,
 * the 128-PSN window, go-back-N on timeout and NAK, RNR timing, responder
 * ACK/NAK generation, and the ICRC of every packet.
 */
#define _GNU_SOURCE /* softroce_int.h needs struct mmsghdr */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "softroce_int.h"
#include "usmc_conv.h"
#include "usmc_test.h"

#define PEER_QPN 0x11
#define SQ_PSN	 0xfffffeu /* wraps within the first packets */
#define RQ_PSN	 0x000100u
#define MAXPKT	 300
#define T0	 1000000000ULL

typedef struct cap_pkt {
	uint8_t b[4200];
	size_t len;
	struct sockaddr_in to;
} cap_pkt;

static cap_pkt caps[MAXPKT];
static int ncap;

typedef struct wire {
	usmc_tp *tp;
	usmc_tp_qp *qp;
	usmc_tp_mr *mr;
	struct sockaddr_in peer, local;
	uint16_t port;
	usmc_tstamp now;
	usmc_wc wcs[64];
	int nwc;
} wire;

static void hook(void *arg, const uint8_t *p, size_t len,
		 const struct sockaddr *to)
{
	(void)arg;
	if (ncap >= MAXPKT || len > sizeof(caps[0].b))
		return;
	CU_ASSERT_EQUAL_FATAL(to->sa_family, AF_INET);
	memcpy(caps[ncap].b, p, len);
	caps[ncap].len = len;
	memcpy(&caps[ncap].to, to, sizeof(caps[ncap].to));
	ncap++;
}

static uint32_t rq_psn_next = RQ_PSN;
static const char *wire_opts; /* the device's options string */
static int log_calls;	      /* the device's usmc_tp_config.log */
static char log_msg[256];

static void wire_log(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	log_calls++;
	snprintf(log_msg, sizeof(log_msg), "%s", msg);
}

static int wire_open(wire *w, uint8_t mtu, uint8_t min_rnr)
{
	usmc_tp_config cfg;
	usmc_qp_init_attr ia;
	usmc_qp_attr a;
	int rc = -1;

	memset(w, 0, sizeof(*w));
	memset(&cfg, 0, sizeof(cfg));
	w->local.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &w->local.sin_addr);
	memcpy(&cfg.local_addr, &w->local, sizeof(w->local));
	cfg.options = wire_opts;
	cfg.log = wire_log;
	log_calls = 0;
	for (int i = 0; i < 50 && rc; i++) {
		w->port = (uint16_t)(30000 + (getpid() * 3 + i * 17) % 20000);
		cfg.udp_port = w->port;
		rc = usmc_tp_open("softroce", &cfg, &w->tp);
	}
	USMC_ASSERT_EQ_FATAL(rc, 0);
	w->local.sin_port = htons(w->port);
	w->peer.sin_family = AF_INET;
	w->peer.sin_port = htons(0xc123); /* rxe: per-QP source port */
	inet_pton(AF_INET, "127.0.0.2", &w->peer.sin_addr);
	w->now = T0;
	usmc_softroce_set_time(w->tp, w->now);
	usmc_softroce_set_tx_hook(w->tp, hook, NULL);
	ncap = 0;

	USMC_ASSERT_EQ_FATAL(usmc_tp_alloc_mr(w->tp, 1 << 20,
					      USMC_ACCESS_LOCAL_WRITE |
						      USMC_ACCESS_REMOTE_WRITE,
					      &w->mr),
			     0);
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 16;
	ia.max_recv_wr = 128;
	ia.max_send_sge = 2;
	ia.max_recv_sge = 2;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(w->tp, &ia, &w->qp), 0);
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(w->qp, &a), 0);
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = mtu;
	a.dest_qp_num = PEER_QPN;
	a.rq_psn = rq_psn_next;
	a.dgid[10] = 0xff;
	a.dgid[11] = 0xff;
	memcpy(a.dgid + 12, &w->peer.sin_addr, 4);
	a.min_rnr_timer = min_rnr;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(w->qp, &a), 0);
	a.qp_state = USMC_QPS_RTS;
	a.sq_psn = SQ_PSN;
	a.timeout = 10; /* 4.19 ms */
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(w->qp, &a), 0);
	return 0;
}

static void wire_close(wire *w)
{
	usmc_tp_free_mr(w->mr);
	usmc_tp_destroy_qp(w->qp);
	usmc_tp_close(w->tp);
}

static void advance(wire *w, usmc_tstamp ns)
{
	int n;

	w->now += ns;
	usmc_softroce_set_time(w->tp, w->now);
	n = usmc_tp_poll_cq(w->tp, w->wcs + w->nwc, 64 - w->nwc);
	if (n > 0)
		w->nwc += n;
}

/* Decodes captured packet |i| and checks what every packet must be. */
static void cap_decode(wire *w, int i, usmc_roce_pkt *p)
{
	uint8_t iph[20], udph[8];
	const cap_pkt *c = &caps[i];

	USMC_ASSERT_EQ_FATAL(usmc_roce_decode(c->b, c->len, p), 0);
	USMC_ASSERT_EQ(p->tver, 0);
	USMC_ASSERT_EQ(p->pkey, 0xffff);
	USMC_ASSERT_EQ(p->dest_qpn, PEER_QPN);
	USMC_ASSERT_EQ(p->fecn | p->becn | p->migreq, 0);
	USMC_ASSERT_EQ(c->b[8] & 0x7f, 0); /* Resv7 */
	USMC_ASSERT_EQ(c->to.sin_addr.s_addr, w->peer.sin_addr.s_addr);
	USMC_ASSERT_EQ(ntohs(c->to.sin_port), w->port);
	/* pad bytes are zero */
	for (int k = 0; k < p->padcnt; k++)
		USMC_ASSERT_EQ(p->payload[p->payload_len + (size_t)k], 0);
	usmc_roce_ipv4_hdr(iph, (const uint8_t *)&w->local.sin_addr,
			   (const uint8_t *)&c->to.sin_addr, c->len, 64);
	usmc_roce_udp_hdr(udph, w->port, w->port, c->len);
	USMC_ASSERT_EQ(usmc_roce_icrc_ipv4(iph, udph, c->b, c->len - 4),
		       p->icrc);
}

/* Sends a packet from the peer whose ICRC is right for IPv4 ID |ip_id|
 * (the ID a UDP socket does not show), then flips bit |flip| of the UDP
 * payload (-1: none; the ICRC's bits come last). */
static void inject_id(wire *w, usmc_roce_pkt *p, const uint8_t *pl, size_t plen,
		      uint16_t ip_id, long flip)
{
	static uint8_t b[8192];
	uint8_t iph[20], udph[8];
	size_t n, pad = (4 - (plen & 3)) & 3;
	int h;

	p->pkey = 0xffff;
	p->dest_qpn = usmc_tp_qp_num(w->qp);
	p->padcnt = (uint8_t)pad;
	h = usmc_roce_encode_hdr(b, sizeof(b), p);
	CU_ASSERT_FATAL(h > 0);
	n = (size_t)h;
	if (plen)
		memcpy(b + n, pl, plen);
	n += plen;
	memset(b + n, 0, pad);
	n += pad;
	usmc_roce_ipv4_hdr(iph, (const uint8_t *)&w->peer.sin_addr,
			   (const uint8_t *)&w->local.sin_addr, n + 4, 64);
	usmc_put_be16(iph + 4, ip_id);
	usmc_roce_udp_hdr(udph, ntohs(w->peer.sin_port), w->port, n + 4);
	usmc_put_le32(b + n, usmc_roce_icrc_ipv4(iph, udph, b, n));
	n += 4;
	if (flip >= 0)
		b[flip / 8] ^= (uint8_t)(1u << (flip % 8));
	usmc_softroce_input(w->tp, b, n, (const struct sockaddr *)&w->peer,
			    (const struct sockaddr *)&w->local, w->now);
	advance(w, 0);
}

/* Sends a packet from the peer, with a correct ICRC for ID 0. */
static void inject(wire *w, usmc_roce_pkt *p, const uint8_t *pl, size_t plen)
{
	inject_id(w, p, pl, plen, 0, -1);
}

static void inject_ack(wire *w, uint8_t syn, uint32_t psn)
{
	usmc_roce_pkt p;

	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_ACKNOWLEDGE;
	p.psn = psn & USMC_ROCE_PSN_MASK;
	p.aeth_syndrome = syn;
	inject(w, &p, NULL, 0);
}

static usmc_wr wr_of(wire *w, usmc_wr_opcode op, size_t off, uint32_t len)
{
	usmc_wr wr;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 0x1000 + off;
	wr.opcode = op;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)w->mr->addr + off;
	wr.sg_list[0].length = len;
	wr.sg_list[0].lkey = w->mr->lkey;
	wr.remote_addr = 0x7f0000001000ULL;
	wr.rkey = 0xabcd1234;
	return wr;
}

static void fill(uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 131 + 7);
}

/* ---- requester ---------------------------------------------------------- */

static void test_segmentation(void)
{
	wire w;
	usmc_wr wr;
	usmc_roce_pkt p;
	const uint8_t *src;
	static const uint8_t ops[] = {0x06, 0x07, 0x07, 0x08};

	wire_open(&w, USMC_IB_MTU_1024, 5);
	src = w.mr->addr;
	fill(w.mr->addr, 1 << 20);
	/* 3 * 1024 + 5 bytes from two SGEs: 1500 at 0, 1577 at 10000 */
	wr = wr_of(&w, USMC_WR_RDMA_WRITE, 0, 1500);
	wr.num_sge = 2;
	wr.sg_list[1].addr = (uint64_t)(uintptr_t)w.mr->addr + 10000;
	wr.sg_list[1].length = 1577;
	wr.sg_list[1].lkey = w.mr->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	USMC_ASSERT_EQ_FATAL(ncap, 4);
	for (int i = 0; i < 4; i++) {
		size_t off = (size_t)i * 1024, want = i < 3 ? 1024 : 5;

		cap_decode(&w, i, &p);
		USMC_ASSERT_EQ(p.opcode, ops[i]);
		USMC_ASSERT_EQ(p.psn, (SQ_PSN + (uint32_t)i) & 0xffffff);
		USMC_ASSERT_EQ(p.ackreq, i == 3);
		USMC_ASSERT_EQ(p.payload_len, want);
		USMC_ASSERT_EQ(p.padcnt, i == 3 ? 3 : 0);
		USMC_ASSERT_EQ(p.se, 0);
		for (size_t k = 0; k < want; k++) {
			size_t m = off + k;
			uint8_t exp = m < 1500 ? src[m] : src[10000 + m - 1500];

			if (p.payload[k] != exp) {
				CU_FAIL("payload byte differs");
				break;
			}
		}
		if (i == 0) {
			CU_ASSERT_EQUAL(p.reth_va, wr.remote_addr);
			USMC_ASSERT_EQ(p.reth_rkey, wr.rkey);
			USMC_ASSERT_EQ(p.reth_len, 3077);
		}
	}
	/* a partial ACK completes nothing; the full one completes it */
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 2);
	USMC_ASSERT_EQ(w.nwc, 0);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 3);
	USMC_ASSERT_EQ_FATAL(w.nwc, 1);
	USMC_ASSERT_EQ(w.wcs[0].status, USMC_WC_SUCCESS);
	USMC_ASSERT_EQ(w.wcs[0].wr_id, wr.wr_id);
	USMC_ASSERT_EQ(w.wcs[0].opcode, USMC_WC_RDMA_WRITE);

	/* WRITE ONLY with immediate, solicited: RETH then ImmDt, SE set */
	ncap = 0;
	wr = wr_of(&w, USMC_WR_RDMA_WRITE_WITH_IMM, 7, 10);
	wr.imm_data = 0x01020304;
	wr.send_flags |= USMC_SEND_SOLICITED;
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	/* SEND ONLY, 44 bytes, inline */
	wr = wr_of(&w, USMC_WR_SEND, 100, 44);
	wr.send_flags = USMC_SEND_INLINE;
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), USMC_ERR_INVALID_ARGUMENT);
	wr.send_flags = 0;
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	USMC_ASSERT_EQ_FATAL(ncap, 2);
	cap_decode(&w, 0, &p);
	USMC_ASSERT_EQ(p.opcode, 0x0b);
	USMC_ASSERT_EQ(p.se, 1);
	USMC_ASSERT_EQ(p.imm, 0x01020304);
	USMC_ASSERT_EQ(caps[0].b[28], 0x01); /* big-endian after RETH */
	USMC_ASSERT_EQ(p.reth_len, 10);
	USMC_ASSERT_EQ(p.padcnt, 2);
	USMC_ASSERT_MEM_EQ(p.payload, src + 7, 10);
	cap_decode(&w, 1, &p);
	USMC_ASSERT_EQ(p.opcode, 0x04);
	USMC_ASSERT_EQ(p.psn, (SQ_PSN + 5) & 0xffffff);
	USMC_ASSERT_EQ(p.ackreq, 1);
	USMC_ASSERT_EQ(p.payload_len, 44);
	USMC_ASSERT_EQ(caps[1].len, 12 + 44 + 4);
	USMC_ASSERT_MEM_EQ(p.payload, src + 100, 44);
	/* one coalesced ACK completes both; the unsignaled SEND is silent */
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 5);
	USMC_ASSERT_EQ(w.nwc, 2);
	USMC_ASSERT_EQ(w.wcs[1].wr_id, 0x1000 + 7);
	wire_close(&w);
}

static void test_ackreq_and_window(void)
{
	wire w;
	usmc_wr wr;
	usmc_roce_pkt p;
	int run = 0, maxrun = 0;

	wire_open(&w, USMC_IB_MTU_256, 5);
	/* 200 packets: only 128 unacknowledged PSNs may be out */
	wr = wr_of(&w, USMC_WR_RDMA_WRITE, 0, 200 * 256);
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	USMC_ASSERT_EQ_FATAL(ncap, 128);
	for (int i = 0; i < ncap; i++) {
		cap_decode(&w, i, &p);
		USMC_ASSERT_EQ(p.psn, (SQ_PSN + (uint32_t)i) & 0xffffff);
		USMC_ASSERT_EQ(p.opcode, i ? 0x07 : 0x06);
		run = p.ackreq ? 0 : run + 1;
		maxrun = run > maxrun ? run : maxrun;
	}
	/* rxe: noack_pkts++ > 64, so 65 packets between AckReqs */
	USMC_ASSERT_EQ(maxrun, 65);
	/* ACK of the first 64 opens the window by 64 */
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 63);
	USMC_ASSERT_EQ_FATAL(ncap, 192);
	cap_decode(&w, 191, &p);
	USMC_ASSERT_EQ(p.psn, (SQ_PSN + 191) & 0xffffff);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 191);
	USMC_ASSERT_EQ_FATAL(ncap, 200);
	cap_decode(&w, 199, &p);
	USMC_ASSERT_EQ(p.opcode, 0x08);
	USMC_ASSERT_EQ(p.ackreq, 1);
	USMC_ASSERT_EQ(w.nwc, 0);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 199);
	USMC_ASSERT_EQ(w.nwc, 1);
	wire_close(&w);
}

static void test_retransmit_timeout(void)
{
	wire w;
	usmc_wr wr;
	usmc_roce_pkt p, q;
	usmc_softroce_stats st;

	wire_open(&w, USMC_IB_MTU_1024, 5);
	fill(w.mr->addr, 4096);
	wr = wr_of(&w, USMC_WR_RDMA_WRITE, 0, 3000);
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	USMC_ASSERT_EQ_FATAL(ncap, 3);
	advance(&w, 4000000); /* before 4096 << 10 ns */
	USMC_ASSERT_EQ(ncap, 3);
	advance(&w, 300000);
	USMC_ASSERT_EQ_FATAL(ncap, 6);
	for (int i = 0; i < 3; i++) {
		cap_decode(&w, i, &p);
		cap_decode(&w, 3 + i, &q);
		USMC_ASSERT_EQ(q.psn, p.psn);
		USMC_ASSERT_EQ(q.opcode, p.opcode);
		USMC_ASSERT_EQ(q.payload_len, p.payload_len);
		USMC_ASSERT_MEM_EQ(q.payload, p.payload, p.payload_len);
		/* the first packet after a rewind asks for an ACK */
		USMC_ASSERT_EQ(q.ackreq, i == 0 || i == 2);
	}
	usmc_softroce_get_stats(w.tp, &st);
	USMC_ASSERT_EQ(st.retry_timeouts, 1);
	USMC_ASSERT_EQ(st.retransmits, 3);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 2);
	USMC_ASSERT_EQ(w.nwc, 1);
	/* nothing outstanding: the timer stays quiet */
	advance(&w, 100000000);
	USMC_ASSERT_EQ(ncap, 6);
	wire_close(&w);
}

static void test_nak_go_back(void)
{
	wire w;
	usmc_wr wr;
	usmc_roce_pkt p;

	wire_open(&w, USMC_IB_MTU_1024, 5);
	wr = wr_of(&w, USMC_WR_RDMA_WRITE, 0, 4096);
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	USMC_ASSERT_EQ_FATAL(ncap, 4);
	/* the peer lost PSN+2: NAK sequence error with the expected PSN */
	inject_ack(&w, USMC_AETH_NAK_PSN_SEQ_ERROR, SQ_PSN + 2);
	USMC_ASSERT_EQ_FATAL(ncap, 6);
	cap_decode(&w, 4, &p);
	USMC_ASSERT_EQ(p.psn, (SQ_PSN + 2) & 0xffffff);
	USMC_ASSERT_EQ(p.opcode, 0x07);
	USMC_ASSERT_EQ(p.ackreq, 1);
	cap_decode(&w, 5, &p);
	USMC_ASSERT_EQ(p.psn, (SQ_PSN + 3) & 0xffffff);
	USMC_ASSERT_EQ(p.opcode, 0x08);
	USMC_ASSERT_EQ(w.nwc, 0);
	/* a stale NAK below what is acknowledged changes nothing */
	inject_ack(&w, USMC_AETH_NAK_PSN_SEQ_ERROR, SQ_PSN + 1);
	USMC_ASSERT_EQ(ncap, 6);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 3);
	USMC_ASSERT_EQ(w.nwc, 1);
	USMC_ASSERT_EQ(w.wcs[0].status, USMC_WC_SUCCESS);
	wire_close(&w);
}

static void test_rnr_timer(void)
{
	wire w;
	usmc_wr wr;
	usmc_roce_pkt p;
	usmc_softroce_stats st;

	wire_open(&w, USMC_IB_MTU_1024, 5);
	wr = wr_of(&w, USMC_WR_SEND, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	USMC_ASSERT_EQ(ncap, 1);
	inject_ack(&w, USMC_AETH_RNR_NAK | 14, SQ_PSN); /* 1280 us */
	advance(&w, 1200000);
	USMC_ASSERT_EQ(ncap, 1);
	advance(&w, 100000);
	USMC_ASSERT_EQ_FATAL(ncap, 2);
	cap_decode(&w, 1, &p);
	USMC_ASSERT_EQ(p.opcode, 0x04);
	USMC_ASSERT_EQ(p.psn, SQ_PSN);
	usmc_softroce_get_stats(w.tp, &st);
	USMC_ASSERT_EQ(st.rnr_nak_rx, 1);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN);
	USMC_ASSERT_EQ(w.nwc, 1);
	wire_close(&w);
}

/* ACKs the QP cannot have asked for are dropped and counted. */
static void test_bogus_acks(void)
{
	wire w;
	usmc_wr wr;
	usmc_softroce_stats st;
	usmc_roce_pkt p;

	wire_open(&w, USMC_IB_MTU_1024, 5);
	wr = wr_of(&w, USMC_WR_SEND, 0, 44);
	USMC_ASSERT_EQ(usmc_tp_post_send(w.qp, &wr), 0);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 1); /* never sent */
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN + 1000);
	inject_ack(&w, 0x40, SQ_PSN); /* reserved syndrome */
	inject_ack(&w, 0x70, SQ_PSN); /* reserved NAK code */
	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_RDMA_READ_RESPONSE_ONLY;
	p.psn = SQ_PSN;
	inject(&w, &p, NULL, 0);
	usmc_softroce_get_stats(w.tp, &st);
	USMC_ASSERT_EQ(st.drop_resp, 5);
	USMC_ASSERT_EQ(w.nwc, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(w.qp), USMC_QPS_RTS);
	inject_ack(&w, USMC_AETH_ACK_UNLIMITED, SQ_PSN);
	USMC_ASSERT_EQ(w.nwc, 1);
	wire_close(&w);
}

/* ---- responder ---------------------------------------------------------- */

static void post_recv(wire *w, uint64_t id, size_t off, uint32_t len)
{
	usmc_recv_wr rw;

	memset(&rw, 0, sizeof(rw));
	rw.wr_id = id;
	rw.num_sge = 1;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)w->mr->addr + off;
	rw.sg_list[0].length = len;
	rw.sg_list[0].lkey = w->mr->lkey;
	USMC_ASSERT_EQ(usmc_tp_post_recv(w->qp, &rw), 0);
}

static void inject_send(wire *w, uint32_t psn, int ackreq)
{
	usmc_roce_pkt p;
	uint8_t msg[44];

	memset(msg, (int)psn, sizeof(msg));
	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_SEND_ONLY;
	p.psn = psn & USMC_ROCE_PSN_MASK;
	p.ackreq = (uint8_t)ackreq;
	inject(w, &p, msg, sizeof(msg));
}

static void expect_ack(wire *w, int i, uint8_t syn, uint32_t psn, uint32_t msn)
{
	usmc_roce_pkt p;

	CU_ASSERT_FATAL(i < ncap);
	cap_decode(w, i, &p);
	USMC_ASSERT_EQ(p.opcode, USMC_IB_OPCODE_RC_ACKNOWLEDGE);
	USMC_ASSERT_EQ(p.aeth_syndrome, syn);
	USMC_ASSERT_EQ(p.psn, psn & USMC_ROCE_PSN_MASK);
	USMC_ASSERT_EQ(p.aeth_msn, msn);
	USMC_ASSERT_EQ(p.ackreq, 0);
	USMC_ASSERT_EQ(caps[i].len, 12 + 4 + 4);
}

static void test_responder_acks(void)
{
	wire w;

	wire_open(&w, USMC_IB_MTU_1024, 5);
	for (int i = 0; i < 4; i++)
		post_recv(&w, 50 + (uint64_t)i, (size_t)i * 64, 64);
	inject_send(&w, RQ_PSN, 1);
	USMC_ASSERT_EQ_FATAL(ncap, 1);
	expect_ack(&w, 0, USMC_AETH_ACK_UNLIMITED, RQ_PSN, 1);
	USMC_ASSERT_EQ_FATAL(w.nwc, 1);
	USMC_ASSERT_EQ(w.wcs[0].opcode, USMC_WC_RECV);
	USMC_ASSERT_EQ(w.wcs[0].byte_len, 44);
	USMC_ASSERT_EQ(((uint8_t *)w.mr->addr)[43], (uint8_t)RQ_PSN);
	/* no AckReq: no ACK */
	inject_send(&w, RQ_PSN + 1, 0);
	USMC_ASSERT_EQ(ncap, 1);
	/* duplicate: re-ACK with the last PSN executed, data dropped */
	inject_send(&w, RQ_PSN, 1);
	USMC_ASSERT_EQ_FATAL(ncap, 2);
	expect_ack(&w, 1, USMC_AETH_ACK_UNLIMITED, RQ_PSN + 1, 2);
	USMC_ASSERT_EQ(w.nwc, 2);
	/* a gap: one NAK with the expected PSN, not one per packet */
	inject_send(&w, RQ_PSN + 4, 1);
	inject_send(&w, RQ_PSN + 5, 1);
	USMC_ASSERT_EQ_FATAL(ncap, 3);
	expect_ack(&w, 2, USMC_AETH_NAK_PSN_SEQ_ERROR, RQ_PSN + 2, 2);
	inject_send(&w, RQ_PSN + 2, 1);
	USMC_ASSERT_EQ_FATAL(ncap, 4);
	expect_ack(&w, 3, USMC_AETH_ACK_UNLIMITED, RQ_PSN + 2, 3);
	/* the NAK re-arms after progress */
	inject_send(&w, RQ_PSN + 9, 1);
	USMC_ASSERT_EQ_FATAL(ncap, 5);
	expect_ack(&w, 4, USMC_AETH_NAK_PSN_SEQ_ERROR, RQ_PSN + 3, 3);
	USMC_ASSERT_EQ(w.nwc, 3);
	USMC_ASSERT_EQ(usmc_softroce_qp_expected_psn(w.qp), RQ_PSN + 3);
	wire_close(&w);
}

/* Kernel rxe's IPv4 IDs: packets whose ICRC is right for a random
 * nonzero ID are delivered byte for byte (icrc=verify, the default) and
 * counted; one flipped bit in the payload, the header or the ICRC drops
 * the packet (drop_icrc) with nothing delivered; icrc=strict takes ID 0
 * only. */
static void test_icrc_rxe_ids(void)
{
	static const char *const modes[] = {NULL, "icrc=strict"};
	uint64_t r = 0x9e3779b97f4a7c15ULL;

	for (int m = 0; m < 2; m++) {
		usmc_softroce_stats st;
		uint8_t msg[1024];
		uint32_t psn = RQ_PSN;
		int nrecv = 0;
		wire w;

		wire_opts = modes[m];
		wire_open(&w, USMC_IB_MTU_1024, 5);
		for (int i = 0; i < 64; i++)
			post_recv(&w, 100 + (uint64_t)i, (size_t)i * 1024,
				  1024);
		for (int i = 0; i < 40; i++) {
			usmc_roce_pkt p;
			size_t plen;
			uint16_t id;
			long flip = -1, hlen = 12;
			int bad = i >= 30, delivered;

			r = r * 6364136223846793005ULL + 1;
			plen = 1 + (size_t)(r >> 33) % sizeof(msg);
			id = (uint16_t)(r >> 17);
			if (!id || i == 0)
				id = (uint16_t)(i + 1);
			for (size_t k = 0; k < plen; k++)
				msg[k] = (uint8_t)(r >> (k % 56) ^ k);
			if (bad) { /* payload, header (not byte 4), ICRC */
				long pbits = (long)(hlen + (long)plen) * 8;

				if (i % 3 == 0)
					flip = hlen * 8 +
					       (long)(r >> 40) %
						       ((long)plen * 8);
				else if (i % 3 == 1)
					flip = 8 * 8 + (long)(r >> 40) % 32;
				else
					flip = pbits +
					       ((4 - (long)(plen & 3)) & 3) *
						       8 +
					       (long)(r >> 40) % 32;
			}
			memset(&p, 0, sizeof(p));
			p.opcode = USMC_IB_OPCODE_RC_SEND_ONLY;
			p.psn = psn;
			w.nwc = 0;
			inject_id(&w, &p, msg, plen, id, flip);
			delivered = !bad && m == 0;
			USMC_ASSERT_EQ_FATAL(w.nwc, delivered);
			if (!delivered)
				continue;
			USMC_ASSERT_EQ(w.wcs[0].status, USMC_WC_SUCCESS);
			USMC_ASSERT_EQ(w.wcs[0].byte_len, plen);
			USMC_ASSERT_MEM_EQ((uint8_t *)w.mr->addr +
						   (size_t)nrecv * 1024,
					   msg, plen);
			nrecv++;
			psn = usmc_psn_add(psn, 1);
		}
		usmc_softroce_get_stats(w.tp, &st);
		USMC_ASSERT_EQ(st.rx_icrc_id, m == 0 ? 30 : 0);
		USMC_ASSERT_EQ(st.drop_icrc, m == 0 ? 10 : 40);
		USMC_ASSERT_EQ(nrecv, m == 0 ? 30 : 0);
		/* said once, naming what protects the data */
		USMC_ASSERT_EQ(log_calls, m == 0 ? 1 : 0);
		if (m == 0)
			CU_ASSERT(strstr(log_msg, "16-bit ICRC check") != NULL);
		/* ID 0 passes either way */
		{
			usmc_roce_pkt p;

			memset(&p, 0, sizeof(p));
			p.opcode = USMC_IB_OPCODE_RC_SEND_ONLY;
			p.psn = psn;
			w.nwc = 0;
			inject_id(&w, &p, msg, 100, 0, -1);
			USMC_ASSERT_EQ(w.nwc, 1);
		}
		wire_close(&w);
		wire_opts = NULL;
	}
}

static void test_responder_write_segments(void)
{
	wire w;
	usmc_roce_pkt p;
	uint8_t data[3000];
	uint8_t *dst;

	wire_open(&w, USMC_IB_MTU_1024, 5);
	dst = (uint8_t *)w.mr->addr + 5000;
	fill(data, sizeof(data));
	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_FIRST;
	p.psn = RQ_PSN;
	p.reth_va = w.mr->iova + 5000;
	p.reth_rkey = w.mr->rkey;
	p.reth_len = sizeof(data);
	inject(&w, &p, data, 1024);
	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_MIDDLE;
	p.psn = RQ_PSN + 1;
	inject(&w, &p, data + 1024, 1024);
	USMC_ASSERT_EQ(ncap, 0);
	p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_LAST;
	p.psn = RQ_PSN + 2;
	p.ackreq = 1;
	inject(&w, &p, data + 2048, sizeof(data) - 2048);
	USMC_ASSERT_EQ_FATAL(ncap, 1);
	expect_ack(&w, 0, USMC_AETH_ACK_UNLIMITED, RQ_PSN + 2, 1);
	USMC_ASSERT_MEM_EQ(dst, data, sizeof(data));
	USMC_ASSERT_EQ(dst[-1], 0);
	USMC_ASSERT_EQ(dst[sizeof(data)], 0);
	USMC_ASSERT_EQ(w.nwc, 0);
	wire_close(&w);
}

/* Each bad request gets its NAK, leaves memory alone, and kills the QP. */
static void responder_error(int which, uint8_t want_syn, int want_err)
{
	wire w;
	usmc_roce_pkt p;
	uint8_t data[1024];
	uint8_t *m;

	wire_open(&w, USMC_IB_MTU_1024, 7);
	m = w.mr->addr;
	memset(data, 0xee, sizeof(data));
	memset(&p, 0, sizeof(p));
	p.psn = RQ_PSN;
	p.ackreq = 1;
	p.reth_va = w.mr->iova;
	p.reth_rkey = w.mr->rkey;
	p.reth_len = 100;
	switch (which) {
	case 0: /* MIDDLE without FIRST */
		p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_MIDDLE;
		inject(&w, &p, data, 1024);
		break;
	case 1: /* FIRST shorter than the MTU */
		p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_FIRST;
		p.reth_len = 2000;
		inject(&w, &p, data, 100);
		break;
	case 2: /* ONLY with a payload other than the RETH length */
		p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY;
		inject(&w, &p, data, 99);
		break;
	case 3: /* bad rkey */
		p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY;
		p.reth_rkey ^= 0x40000;
		inject(&w, &p, data, 100);
		break;
	case 4: /* range past the end of the MR */
		p.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY;
		p.reth_va = w.mr->iova + w.mr->length - 50;
		inject(&w, &p, data, 100);
		break;
	case 5: /* RDMA READ is not offered */
		p.opcode = USMC_IB_OPCODE_RC_RDMA_READ_REQUEST;
		inject(&w, &p, NULL, 0);
		break;
	case 6: /* SEND with no receive posted */
		p.opcode = USMC_IB_OPCODE_RC_SEND_ONLY;
		inject(&w, &p, data, 44);
		break;
	default: /* SEND LAST without payload (must carry 1..MTU) */
		post_recv(&w, 1, 0, 2048);
		p.opcode = USMC_IB_OPCODE_RC_SEND_FIRST;
		p.ackreq = 0;
		inject(&w, &p, data, 1024);
		memset(&p, 0, sizeof(p));
		p.opcode = USMC_IB_OPCODE_RC_SEND_LAST;
		p.psn = RQ_PSN + 1;
		p.ackreq = 1;
		inject(&w, &p, data, 0);
		break;
	}
	CU_ASSERT_FATAL(ncap >= 1);
	USMC_ASSERT_EQ(ncap, 1);
	expect_ack(&w, ncap - 1, want_syn, which == 7 ? RQ_PSN + 1 : RQ_PSN, 0);
	USMC_ASSERT_EQ(usmc_tp_qp_state(w.qp),
		       want_err ? USMC_QPS_ERR : USMC_QPS_RTS);
	if (which != 7)
		for (size_t i = 0; i < w.mr->length; i++)
			if (m[i]) {
				CU_FAIL("memory written by a refused request");
				break;
			}
	wire_close(&w);
}

static void test_responder_errors(void)
{
	responder_error(0, USMC_AETH_NAK_INVALID_REQ, 1);
	responder_error(1, USMC_AETH_NAK_INVALID_REQ, 1);
	responder_error(2, USMC_AETH_NAK_INVALID_REQ, 1);
	responder_error(3, USMC_AETH_NAK_REM_ACC_ERR, 1);
	responder_error(4, USMC_AETH_NAK_REM_ACC_ERR, 1);
	responder_error(5, USMC_AETH_NAK_INVALID_REQ, 1);
	responder_error(6, USMC_AETH_RNR_NAK | 7, 0);
	responder_error(7, USMC_AETH_NAK_INVALID_REQ, 1);
}

/* ---- replay of a kernel 6.1 rxe session ------------------------------- */

typedef struct frame {
	uint8_t src[4];
	const uint8_t *ip; /* IPv4 header */
	const uint8_t *pl; /* UDP payload */
	size_t len;
} frame;

/* RoCEv2 frames of an Ethernet pcapng (little-endian sections). */
static int load_pcapng(const char *path, uint8_t **data, frame *fr, int max)
{
	FILE *f = fopen(path, "rb");
	long sz;
	size_t off = 0;
	int n = 0;
	uint8_t *b;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)sz);
	if (!b || fread(b, 1, (size_t)sz, f) != (size_t)sz) {
		fclose(f);
		free(b);
		return -1;
	}
	fclose(f);
	*data = b;
	while (off + 12 <= (size_t)sz && n < max) {
		uint32_t type = usmc_get_le32(b + off);
		uint32_t blen = usmc_get_le32(b + off + 4);
		const uint8_t *e, *ip;
		uint32_t cap;

		if (blen < 12 || off + blen > (size_t)sz)
			break;
		if (type == 6 && blen >= 32) { /* enhanced packet block */
			cap = usmc_get_le32(b + off + 20);
			e = b + off + 28;
			ip = e + 14;
			if (cap >= 14 + 28 && usmc_get_be16(e + 12) == 0x0800 &&
			    ip[9] == 17 && usmc_get_be16(ip + 22) == 4791 &&
			    usmc_get_be16(ip + 24) >= 8 &&
			    14 + 20 + (size_t)usmc_get_be16(ip + 24) <= cap) {
				memcpy(fr[n].src, ip + 12, 4);
				fr[n].ip = ip;
				fr[n].pl = ip + 28;
				fr[n].len = usmc_get_be16(ip + 24) - 8u;
				n++;
			}
		}
		off += blen;
	}
	return n;
}

/* Feeds the requests one side of the kernel session sent to a softroce QP
 * (addresses, QPN and rkey translated), and checks that softroce answers
 * with exactly the ACKs the kernel's responder sent (PSN, syndrome, MSN),
 * delivers every SEND, and writes what the WRITEs carried. */
static void replay(const frame *fr, int n, const uint8_t req_ip[4])
{
	wire w;
	uint32_t first_psn = 0, nsend = 0, nack_k = 0, nack_u = 0;
	uint64_t base = UINT64_MAX;
	uint8_t *model, *buf;
	uint32_t kacks[256][3];
	const size_t rmb = 1 << 16, recv_off = 1 << 19;
	int found = 0;

	/* the responder's first expected PSN and the RMB's base address */
	for (int i = 0; i < n; i++) {
		usmc_roce_pkt p;

		if (memcmp(fr[i].src, req_ip, 4) ||
		    usmc_roce_decode(fr[i].pl, fr[i].len, &p) ||
		    !(p.flags & USMC_ROCE_F_REQ))
			continue;
		if (!found++)
			first_psn = p.psn;
		if ((p.flags & USMC_ROCE_F_RETH) && p.reth_va < base)
			base = p.reth_va & ~(uint64_t)(rmb - 1);
	}
	CU_ASSERT_FATAL(found > 10);
	rq_psn_next = first_psn;
	wire_open(&w, USMC_IB_MTU_1024, 5);
	rq_psn_next = RQ_PSN;
	for (int i = 0; i < 100; i++)
		post_recv(&w, 2000 + (uint64_t)i, recv_off + (size_t)i * 4096,
			  4096);
	model = calloc(1, rmb);
	buf = malloc(8192);

	uint64_t wva = 0;

	for (int i = 0; i < n; i++) {
		usmc_roce_pkt p;
		uint8_t iph[20], udph[8];

		if (usmc_roce_decode(fr[i].pl, fr[i].len, &p))
			continue;
		if (memcmp(fr[i].src, req_ip, 4)) {
			/* the kernel responder's ACKs to these requests */
			if (p.opcode == USMC_IB_OPCODE_RC_ACKNOWLEDGE &&
			    nack_k < 256) {
				kacks[nack_k][0] = p.psn;
				kacks[nack_k][1] = p.aeth_syndrome;
				kacks[nack_k][2] = p.aeth_msn;
				nack_k++;
			}
			continue;
		}
		if (!(p.flags & USMC_ROCE_F_REQ))
			continue;
		/* the kernel's ICRC, over the real IP header */
		USMC_ASSERT_EQ(usmc_roce_icrc_ipv4(fr[i].ip, fr[i].ip + 20,
						   fr[i].pl, fr[i].len - 4),
			       p.icrc);
		/* our model of the RMB, in the order the packets came */
		if (usmc_psn_cmp(p.psn, usmc_softroce_qp_expected_psn(w.qp)) ==
		    0) {
			if (p.flags & USMC_ROCE_F_RETH)
				wva = p.reth_va - base;
			if ((p.flags & USMC_ROCE_F_WRITE) &&
			    wva + p.payload_len <= rmb) {
				memcpy(model + wva, p.payload, p.payload_len);
				wva += p.payload_len;
			}
			if ((p.flags & USMC_ROCE_F_SEND) &&
			    (p.flags & USMC_ROCE_F_LAST))
				nsend++;
		}
		/* translate QPN, rkey and VA; new ICRC for our addresses */
		CU_ASSERT_FATAL(fr[i].len <= 8192);
		memcpy(buf, fr[i].pl, fr[i].len);
		usmc_put_be24(buf + 5, usmc_tp_qp_num(w.qp));
		if (p.flags & USMC_ROCE_F_RETH) {
			usmc_put_be64(buf + 12,
				      w.mr->iova + (p.reth_va - base));
			usmc_put_be32(buf + 20, w.mr->rkey);
		}
		usmc_roce_ipv4_hdr(iph, (const uint8_t *)&w.peer.sin_addr,
				   (const uint8_t *)&w.local.sin_addr,
				   fr[i].len, 64);
		usmc_roce_udp_hdr(udph, ntohs(w.peer.sin_port), w.port,
				  fr[i].len);
		usmc_put_le32(
			buf + fr[i].len - 4,
			usmc_roce_icrc_ipv4(iph, udph, buf, fr[i].len - 4));
		usmc_softroce_input(w.tp, buf, fr[i].len,
				    (const struct sockaddr *)&w.peer,
				    (const struct sockaddr *)&w.local, w.now);
		advance(&w, 1000);
	}

	/* the same ACKs, in the same order */
	for (int i = 0; i < ncap; i++) {
		usmc_roce_pkt p;

		cap_decode(&w, i, &p);
		if (p.opcode != USMC_IB_OPCODE_RC_ACKNOWLEDGE)
			continue;
		if (nack_u < nack_k) {
			USMC_ASSERT_EQ(p.psn, kacks[nack_u][0]);
			USMC_ASSERT_EQ(p.aeth_syndrome, kacks[nack_u][1]);
			USMC_ASSERT_EQ(p.aeth_msn, kacks[nack_u][2]);
		}
		nack_u++;
	}
	USMC_ASSERT_EQ(nack_u, nack_k);
	CU_ASSERT_TRUE(nack_k > 10);
	/* every SEND delivered, with its length; WRITEs landed */
	USMC_ASSERT_EQ(w.nwc, nsend);
	for (int i = 0; i < w.nwc; i++) {
		USMC_ASSERT_EQ(w.wcs[i].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(w.wcs[i].opcode, USMC_WC_RECV);
		CU_ASSERT_TRUE(w.wcs[i].byte_len == 44 ||
			       w.wcs[i].byte_len >= 88);
	}
	USMC_ASSERT_MEM_EQ(w.mr->addr, model, rmb);
	USMC_ASSERT_EQ(usmc_tp_qp_state(w.qp), USMC_QPS_RTS);
	fprintf(stderr, "  [%d.%d.%d.%d: %u ACKs as the kernel's, %u SENDs]\n",
		req_ip[0], req_ip[1], req_ip[2], req_ip[3], nack_u, nsend);
	free(model);
	free(buf);
	wire_close(&w);
}

/* Posts the messages one side of the kernel session sent, as WRs to a
 * softroce requester, and checks that softroce puts the very same bytes on
 * the wire (BTH, RETH, payload, pad; the ICRC differs with the addresses),
 * AckReq and SE bits included. */
static void replay_requester(const frame *fr, int n, const uint8_t req_ip[4])
{
	wire w;
	static const frame *kp[1024];
	int nk = 0, npost = 0, i = 0;
	uint32_t next = 0;
	size_t srcoff = 0;
	uint8_t *src;

	/* the kernel's packets, first transmissions only, in PSN order */
	for (int k = 0; k < n; k++) {
		usmc_roce_pkt p;

		if (memcmp(fr[k].src, req_ip, 4) ||
		    usmc_roce_decode(fr[k].pl, fr[k].len, &p) ||
		    !(p.flags & USMC_ROCE_F_REQ))
			continue;
		if (nk && usmc_psn_cmp(p.psn, next) < 0)
			continue; /* a retransmission */
		CU_ASSERT_FATAL(!nk || p.psn == next);
		kp[nk++] = &fr[k];
		next = usmc_psn_add(p.psn, 1);
	}
	CU_ASSERT_FATAL(nk > 10);
	wire_open(&w, USMC_IB_MTU_1024, 5);
	{
		usmc_roce_pkt p;
		usmc_qp_attr a;

		usmc_roce_decode(kp[0]->pl, kp[0]->len, &p);
		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_RESET;
		usmc_tp_modify_qp(w.qp, &a);
		a.qp_state = USMC_QPS_INIT;
		a.qp_access_flags = USMC_ACCESS_REMOTE_WRITE;
		usmc_tp_modify_qp(w.qp, &a);
		a.qp_state = USMC_QPS_RTR;
		a.path_mtu = USMC_IB_MTU_1024;
		a.dest_qp_num = p.dest_qpn;
		a.rq_psn = RQ_PSN;
		a.dgid[10] = a.dgid[11] = 0xff;
		memcpy(a.dgid + 12, &w.peer.sin_addr, 4);
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(w.qp, &a), 0);
		a.qp_state = USMC_QPS_RTS;
		a.sq_psn = p.psn;
		a.timeout = 15;
		a.retry_cnt = 7;
		a.rnr_retry = 7;
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(w.qp, &a), 0);
	}
	src = w.mr->addr;
	/* one WR per message: FIRST..LAST or ONLY */
	while (i < nk) {
		usmc_roce_pkt p, q;
		usmc_wr wr;
		int j = i;
		uint32_t len = 0;
		int before = w.nwc;

		usmc_roce_decode(kp[i]->pl, kp[i]->len, &p);
		memset(&wr, 0, sizeof(wr));
		wr.wr_id = (uint64_t)i;
		wr.send_flags = USMC_SEND_SIGNALED;
		wr.opcode = (p.flags & USMC_ROCE_F_SEND) ? USMC_WR_SEND
							 : USMC_WR_RDMA_WRITE;
		wr.remote_addr = p.reth_va;
		wr.rkey = p.reth_rkey;
		for (;; j++) {
			usmc_roce_decode(kp[j]->pl, kp[j]->len, &q);
			CU_ASSERT_FATAL(srcoff + len + q.payload_len <=
					(1u << 20));
			memcpy(src + srcoff + len, q.payload, q.payload_len);
			len += (uint32_t)q.payload_len;
			if (q.flags & USMC_ROCE_F_LAST)
				break;
		}
		if (q.flags & USMC_ROCE_F_IMMDT) {
			wr.opcode = USMC_WR_RDMA_WRITE_WITH_IMM;
			wr.imm_data = q.imm;
		}
		if (q.se)
			wr.send_flags |= USMC_SEND_SOLICITED;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)src + srcoff;
		wr.sg_list[0].length = len;
		wr.sg_list[0].lkey = w.mr->lkey;
		srcoff = (srcoff + len + 63) & ~(size_t)63;
		if (srcoff > (1u << 19))
			srcoff = 0;
		USMC_ASSERT_EQ_FATAL(usmc_tp_post_send(w.qp, &wr), 0);
		npost++;
		/* all its packets went out: ACK them */
		USMC_ASSERT_EQ_FATAL(ncap, j + 1);
		inject_ack(&w, USMC_AETH_ACK_UNLIMITED, q.psn);
		USMC_ASSERT_EQ(w.nwc, before + 1);
		i = j + 1;
	}
	/* byte for byte, all but the ICRC */
	USMC_ASSERT_EQ_FATAL(ncap, nk);
	for (int k = 0; k < nk; k++) {
		usmc_roce_pkt p;

		cap_decode(&w, k, &p);
		USMC_ASSERT_EQ(caps[k].len, kp[k]->len);
		if (caps[k].len == kp[k]->len &&
		    memcmp(caps[k].b, kp[k]->pl, kp[k]->len - 4)) {
			fprintf(stderr, "packet %d (%s) differs\n", k,
				usmc_roce_opcode_name(kp[k]->pl[0]));
			CU_FAIL("packet differs from the kernel's");
		}
	}
	fprintf(stderr, "  [%d.%d.%d.%d: %d WRs, %d packets as the kernel's]\n",
		req_ip[0], req_ip[1], req_ip[2], req_ip[3], npost, nk);
	wire_close(&w);
}

static void test_replay_kernel_session(void)
{
	const char *dir = getenv("USMC_CONFORMANCE");
	char path[4096];
	static frame fr[1024];
	static const uint8_t server[4] = {10, 9, 0, 1},
			     client[4] = {10, 9, 0, 2};
	uint8_t *data = NULL;
	int n;

	/* the capture is in the repository (tests/conformance): ctest names
	 * it, and its absence is a failure, not a skip */
	if (!dir) {
		CU_FAIL("USMC_CONFORMANCE is not set (ctest sets it to "
			"tests/conformance)");
		return;
	}
	snprintf(path, sizeof(path), "%s/kernel-6.1/smcr-a-session.pcapng",
		 dir);
	n = load_pcapng(path, &data, fr, 1024);
	if (n < 0) {
		fprintf(stderr, "%s: cannot read it\n", path);
		CU_FAIL("the kernel capture cannot be read");
		return;
	}
	USMC_ASSERT_EQ(n, 280); /* as the conformance README counts */
	replay(fr, n, server);
	replay(fr, n, client);
	replay_requester(fr, n, server);
	replay_requester(fr, n, client);
	free(data);
}

static CU_TestInfo tests[] = {
	{"segmentation, RETH, ImmDt, pad, ICRC", test_segmentation},
	{"AckReq as rxe (66th packet), 128-PSN window", test_ackreq_and_window},
	{"retransmit timeout: go-back-N", test_retransmit_timeout},
	{"NAK sequence error: go back to its PSN", test_nak_go_back},
	{"RNR NAK waits the RNR timer", test_rnr_timer},
	{"bogus ACKs dropped", test_bogus_acks},
	{"responder ACK, duplicate, one NAK per gap", test_responder_acks},
	{"responder WRITE FIRST/MIDDLE/LAST", test_responder_write_segments},
	{"responder NAKs", test_responder_errors},
	{"rxe's random IPv4 IDs: delivered, corruption dropped, strict",
	 test_icrc_rxe_ids},
	{"replay of a kernel rxe session: same ACKs",
	 test_replay_kernel_session},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"softroce_wire", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
