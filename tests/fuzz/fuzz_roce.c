/* SPDX-License-Identifier: MIT */
/*
 * RoCEv2 packets: the decoder, the IPv4 ID solver, then the receive path of a softroce QP in
 * RTS (responder and completer) fed without a socket. Asserts that the
 * decode accounts for every byte, and that a packet never writes outside
 * the memory it was given: a target MR (only [0, length) of its pages), a
 * receive buffer with guard bytes around its SGEs, and an MR without
 * REMOTE_WRITE must stay as they were.
 *
 * To reach deep states, the input is steered: the destination QPN is always
 * ours; unless BTH byte 8 has bit 6 set the PSN is replaced by the one the
 * QP expects (or, for ACKs, one it can accept); unless bit 5 is set a RETH
 * is pointed at the target MR, sometimes out of bounds.
 */
#define _GNU_SOURCE /* softroce_int.h needs struct mmsghdr */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "softroce_int.h"
#include "usmc_conv.h"

#define TARGET_LEN 5000 /* not a page multiple: the page tail is a guard */
#define RX_LEN	   4096
#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

static usmc_tp *tp;
static usmc_tp_qp *qp;
static usmc_tp_mr *target, *rxmr, *ro, *src;
static size_t target_alloc;
static usmc_tstamp fake_now = 1000000000ULL;
static struct sockaddr_in peer, local;

static int connect_qp(void)
{
	usmc_qp_attr a;
	int rc;

	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_RESET;
	usmc_tp_modify_qp(qp, &a);
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	rc = usmc_tp_modify_qp(qp, &a);
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = USMC_IB_MTU_1024;
	a.dest_qp_num = 0x11;
	a.rq_psn = 5;
	a.dgid[10] = 0xff;
	a.dgid[11] = 0xff;
	memcpy(a.dgid + 12, &peer.sin_addr, 4);
	a.min_rnr_timer = 5;
	rc |= usmc_tp_modify_qp(qp, &a);
	a.qp_state = USMC_QPS_RTS;
	a.sq_psn = 2;
	a.timeout = 15;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	rc |= usmc_tp_modify_qp(qp, &a);
	return rc;
}

/* USMC_FUZZ_STATS=1 prints how far inputs got, to check the steering. */
static void print_stats(void)
{
	usmc_softroce_stats st;

	usmc_softroce_get_stats(tp, &st);
	fprintf(stderr,
		"rx %llu hdr-drop %llu acks-tx %llu nak-seq-tx %llu "
		"rnr-tx %llu nak-err-tx %llu dup %llu acks-rx %llu "
		"nak-rx %llu/%llu/%llu resp-drop %llu\n",
		(unsigned long long)st.rx_pkts, (unsigned long long)st.drop_hdr,
		(unsigned long long)st.acks_tx,
		(unsigned long long)st.nak_seq_tx,
		(unsigned long long)st.rnr_nak_tx,
		(unsigned long long)st.nak_err_tx,
		(unsigned long long)st.dup_rx, (unsigned long long)st.acks_rx,
		(unsigned long long)st.nak_seq_rx,
		(unsigned long long)st.rnr_nak_rx,
		(unsigned long long)st.nak_err_rx,
		(unsigned long long)st.drop_resp);
}

static int init(void)
{
	usmc_tp_config cfg;
	usmc_qp_init_attr ia;

	memset(&cfg, 0, sizeof(cfg));
	local.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
	peer.sin_family = AF_INET;
	peer.sin_port = htons(USMC_ROCE_UDP_PORT);
	inet_pton(AF_INET, "127.0.0.2", &peer.sin_addr);
	memcpy(&cfg.local_addr, &local, sizeof(local));
	cfg.options = "icrc=off,mtu=1024";
	for (int i = 0; i < 100; i++) {
		cfg.udp_port = (uint16_t)(40000 + (getpid() + i * 13) % 20000);
		if (!usmc_tp_open("softroce", &cfg, &tp))
			break;
	}
	CHECK(tp);
	usmc_softroce_set_no_tx(tp, 1);
	CHECK(!usmc_tp_alloc_mr(
		tp, TARGET_LEN,
		USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE, &target));
	target_alloc = (TARGET_LEN + 4095) & ~(size_t)4095;
	CHECK(!usmc_tp_alloc_mr(tp, RX_LEN, USMC_ACCESS_LOCAL_WRITE, &rxmr));
	CHECK(!usmc_tp_alloc_mr(tp, 4096, USMC_ACCESS_LOCAL_WRITE, &ro));
	CHECK(!usmc_tp_alloc_mr(tp, 8192, USMC_ACCESS_LOCAL_WRITE, &src));
	memset(rxmr->addr, 0xa5, RX_LEN);
	memset(ro->addr, 0x3c, 4096);
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 16;
	ia.max_recv_wr = 16;
	ia.max_send_sge = 2;
	ia.max_recv_sge = 2;
	CHECK(!usmc_tp_create_qp(tp, &ia, &qp));
	CHECK(!connect_qp());
	if (getenv("USMC_FUZZ_STATS"))
		atexit(print_stats);
	return 0;
}

/* Receive SGEs: [256, 756) and [1024, 2024) of rxmr; the rest is guard. */
static int in_rx_sge(size_t i)
{
	return (i >= 256 && i < 756) || (i >= 1024 && i < 2024);
}

static void replenish(size_t size)
{
	sr_qp *q = (sr_qp *)qp;

	/* now and then leave the receive queue empty, for RNR */
	while (q->pub.state != USMC_QPS_ERR && q->rq_count < 4 && size % 3) {
		usmc_recv_wr rw;

		memset(&rw, 0, sizeof(rw));
		rw.wr_id = 7;
		rw.num_sge = 2;
		rw.sg_list[0].addr = (uint64_t)(uintptr_t)rxmr->addr + 256;
		rw.sg_list[0].length = 500;
		rw.sg_list[0].lkey = rxmr->lkey;
		rw.sg_list[1].addr = (uint64_t)(uintptr_t)rxmr->addr + 1024;
		rw.sg_list[1].length = 1000;
		rw.sg_list[1].lkey = rxmr->lkey;
		CHECK(!usmc_tp_post_recv(qp, &rw));
	}
	/* keep a multi-packet WRITE outstanding for the completer */
	if (q->pub.state == USMC_QPS_RTS && q->sq_count < 2) {
		usmc_wr wr;

		memset(&wr, 0, sizeof(wr));
		wr.wr_id = 9;
		wr.opcode = USMC_WR_RDMA_WRITE;
		wr.send_flags = USMC_SEND_SIGNALED;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)src->addr;
		wr.sg_list[0].length = 3000;
		wr.sg_list[0].lkey = src->lkey;
		wr.remote_addr = 0x10000;
		wr.rkey = 0x1234;
		CHECK(!usmc_tp_post_send(qp, &wr));
	}
}

static void check_memory(void)
{
	const uint8_t *t = target->addr, *r = rxmr->addr, *o = ro->addr;

	for (size_t i = TARGET_LEN; i < target_alloc; i++)
		CHECK(t[i] == 0);
	for (size_t i = 0; i < RX_LEN; i++)
		CHECK(in_rx_sge(i) || r[i] == 0xa5);
	for (size_t i = 0; i < 4096; i++)
		CHECK(o[i] == 0x3c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[SR_RX_BUFSZ];
	usmc_roce_pkt pkt;
	usmc_wc wcs[64];
	sr_qp *q;

	if (!tp)
		init();
	q = (sr_qp *)qp;

	/* 1. the decoder alone */
	if (!usmc_roce_decode(data, size, &pkt)) {
		CHECK(pkt.hdr_len + pkt.payload_len + pkt.padcnt + 4 == size);
		CHECK(pkt.payload == data + pkt.hdr_len);
		CHECK(pkt.hdr_len == usmc_roce_hdr_len(pkt.opcode));
	}
	if (size > sizeof(buf))
		return 0;

	/* 2. the IPv4 ID solver (softroce's icrc=verify): the ID it gives
	 * makes the carried ICRC right, and an ICRC made with any ID (taken
	 * from input bytes 2-3) gives that ID back */
	if (size >= USMC_ROCE_BTH_LEN + USMC_ROCE_ICRC_LEN) {
		static const uint8_t sa[4] = {10, 0, 0, 2},
				     da[4] = {10, 0, 0, 1};
		uint8_t iph[20], udph[8];
		uint32_t c0, icrc = usmc_get_le32(data + size - 4);
		uint16_t id, want = usmc_get_be16(data + 2);

		usmc_roce_ipv4_hdr(iph, sa, da, size, 64);
		usmc_roce_udp_hdr(udph, 0xc000, 4791, size);
		c0 = usmc_roce_icrc_ipv4(iph, udph, data, size - 4);
		if (!usmc_roce_icrc_ipv4_id(c0, icrc, size, &id)) {
			usmc_put_be16(iph + 4, id);
			CHECK(usmc_roce_icrc_ipv4(iph, udph, data, size - 4) ==
			      icrc);
		}
		usmc_put_be16(iph + 4, want);
		icrc = usmc_roce_icrc_ipv4(iph, udph, data, size - 4);
		CHECK(!usmc_roce_icrc_ipv4_id(c0, icrc, size, &id) &&
		      id == want);
	}

	/* 3. the QP's receive path, steered */
	replenish(size);
	memcpy(buf, data, size);
	if (size >= USMC_ROCE_BTH_LEN) {
		uint32_t f = usmc_roce_opcode_flags(buf[0]);

		usmc_put_be24(buf + 5, q->pub.qp_num);
		if (!(buf[8] & 0x40)) {
			uint32_t psn = q->resp_psn;

			if (f & USMC_ROCE_F_RESP)
				psn = usmc_psn_add(q->una_psn,
						   (usmc_get_be24(buf + 9) %
						    4) + USMC_ROCE_PSN_MASK);
			usmc_put_be24(buf + 9, psn);
		}
		if ((f & USMC_ROCE_F_RETH) && !(buf[8] & 0x20) &&
		    size >= USMC_ROCE_BTH_LEN + USMC_ROCE_RETH_LEN) {
			uint64_t off =
				usmc_get_be64(buf + 12) % (TARGET_LEN + 64);

			usmc_put_be64(buf + 12, target->iova + off);
			usmc_put_be32(buf + 20, target->rkey);
			if (buf[9] & 1)
				usmc_put_be32(buf + 24,
					      usmc_get_be32(buf + 24) %
						      (TARGET_LEN + 64));
		}
	}
	fake_now += 1000000;
	usmc_softroce_input(tp, buf, size, (const struct sockaddr *)&peer,
			    (const struct sockaddr *)&local, fake_now);
	while (usmc_tp_poll_cq(tp, wcs, 64) > 0)
		;
	check_memory();
	if (usmc_tp_qp_state(qp) == USMC_QPS_ERR) {
		CHECK(!connect_qp());
		while (usmc_tp_poll_cq(tp, wcs, 64) > 0)
			;
	}
	return 0;
}
