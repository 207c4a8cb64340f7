/* SPDX-License-Identifier: MIT */
/*
 * softroce receiving what kernel rxe sends: RoCEv2 datagrams whose IPv4 ID
 * is not 0. A raw socket (IP_HDRINCL) puts a random nonzero ID on the wire
 * and an ICRC computed over that real header; the device, which reads a
 * UDP socket and never sees the ID, must deliver them byte for byte and
 * count them (rx_icrc_id), and drop a copy with one flipped bit
 * (drop_icrc). Needs CAP_NET_RAW: without it the binary exits 77.
 */
#define _GNU_SOURCE /* softroce_int.h needs struct mmsghdr */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "softroce_int.h"
#include "usmc_conv.h"
#include "usmc_test.h"

#define PEER_QPN  0x11
#define PEER_PORT 0xc123
#define RQ_PSN	  0x000200u
#define NPKT	  24

typedef struct dev {
	usmc_tp *tp;
	usmc_tp_qp *qp;
	usmc_tp_mr *mr;
	struct sockaddr_in local, peer;
	uint16_t port;
} dev;

static void no_tx(void *arg, const uint8_t *p, size_t len,
		  const struct sockaddr *to)
{
	(void)arg;
	(void)p;
	(void)len;
	(void)to;
}

static void dev_open(dev *d)
{
	usmc_tp_config cfg;
	usmc_qp_init_attr ia;
	usmc_qp_attr a;
	int rc = -1;

	memset(d, 0, sizeof(*d));
	memset(&cfg, 0, sizeof(cfg));
	d->local.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &d->local.sin_addr);
	memcpy(&cfg.local_addr, &d->local, sizeof(d->local));
	cfg.options = "share=off";
	for (int i = 0; i < 50 && rc; i++) {
		d->port = (uint16_t)(30000 + (getpid() * 7 + i * 13) % 20000);
		cfg.udp_port = d->port;
		rc = usmc_tp_open("softroce", &cfg, &d->tp);
	}
	USMC_ASSERT_EQ_FATAL(rc, 0);
	d->local.sin_port = htons(d->port);
	d->peer.sin_family = AF_INET;
	d->peer.sin_port = htons(PEER_PORT);
	inet_pton(AF_INET, "127.0.0.2", &d->peer.sin_addr);
	/* ACKs are not the subject: they go nowhere */
	usmc_softroce_set_tx_hook(d->tp, no_tx, NULL);
	USMC_ASSERT_EQ_FATAL(usmc_tp_alloc_mr(d->tp, 1 << 16,
					      USMC_ACCESS_LOCAL_WRITE, &d->mr),
			     0);
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 4;
	ia.max_recv_wr = 64;
	ia.max_send_sge = 1;
	ia.max_recv_sge = 1;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(d->tp, &ia, &d->qp), 0);
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(d->qp, &a), 0);
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = USMC_IB_MTU_1024;
	a.dest_qp_num = PEER_QPN;
	a.rq_psn = RQ_PSN;
	a.dgid[10] = 0xff;
	a.dgid[11] = 0xff;
	memcpy(a.dgid + 12, &d->peer.sin_addr, 4);
	a.min_rnr_timer = 5;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(d->qp, &a), 0);
	for (int i = 0; i < NPKT; i++) {
		usmc_recv_wr rw;

		memset(&rw, 0, sizeof(rw));
		rw.wr_id = (uint64_t)i;
		rw.num_sge = 1;
		rw.sg_list[0].addr =
			(uint64_t)(uintptr_t)d->mr->addr + (size_t)i * 1024;
		rw.sg_list[0].length = 1024;
		rw.sg_list[0].lkey = d->mr->lkey;
		USMC_ASSERT_EQ_FATAL(usmc_tp_post_recv(d->qp, &rw), 0);
	}
}

/* A SEND ONLY of |plen| bytes as rxe would frame it: IPv4 (ID |id|, DF),
 * UDP (checksum 0), BTH, payload, pad, ICRC over that header; then bit
 * |flip| of the UDP payload flipped (-1: none). Returns the frame length. */
static size_t frame(const dev *d, uint8_t *f, uint16_t id, uint32_t psn,
		    const uint8_t *pl, size_t plen, long flip)
{
	usmc_roce_pkt p;
	size_t pad = (4 - (plen & 3)) & 3, n;
	uint8_t *bth = f + 28;
	int h;

	memset(&p, 0, sizeof(p));
	p.opcode = USMC_IB_OPCODE_RC_SEND_ONLY;
	p.pkey = 0xffff;
	p.dest_qpn = usmc_tp_qp_num(d->qp);
	p.psn = psn;
	p.padcnt = (uint8_t)pad;
	h = usmc_roce_encode_hdr(bth, 64, &p);
	CU_ASSERT_FATAL(h > 0);
	n = (size_t)h;
	memcpy(bth + n, pl, plen);
	n += plen;
	memset(bth + n, 0, pad);
	n += pad;
	usmc_roce_ipv4_hdr(f, (const uint8_t *)&d->peer.sin_addr,
			   (const uint8_t *)&d->local.sin_addr, n + 4, 64);
	usmc_put_be16(f + 4, id);
	usmc_roce_udp_hdr(f + 20, PEER_PORT, d->port, n + 4);
	usmc_put_le32(bth + n, usmc_roce_icrc_ipv4(f, f + 20, bth, n));
	n += 4;
	if (flip >= 0)
		bth[flip / 8] ^= (uint8_t)(1u << (flip % 8));
	return 28 + n;
}

/* Polls the device until it has read |rx_pkts| datagrams (2 s at most). */
static void wait_rx(dev *d, uint64_t rx_pkts, usmc_wc *wc, int *nwc)
{
	usmc_softroce_stats st;

	for (int i = 0; i < 200; i++) {
		struct pollfd pfd = {usmc_tp_get_fd(d->tp), POLLIN, 0};
		int n;

		n = usmc_tp_poll_cq(d->tp, wc + *nwc, 4);
		if (n > 0)
			*nwc += n;
		usmc_softroce_get_stats(d->tp, &st);
		if (st.rx_pkts >= rx_pkts)
			return;
		poll(&pfd, 1, 10);
	}
	CU_FAIL_FATAL("the device did not read the datagram within 2 s");
}

static void test_raw_nonzero_ids(void)
{
	static uint8_t f[2048], msg[1024];
	struct sockaddr_in to;
	usmc_softroce_stats st;
	usmc_wc wc[8];
	uint32_t psn = RQ_PSN;
	uint64_t rx = 0;
	int raw, ndeliv = 0;
	dev d;

	raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	if (raw < 0) {
		usmc_test_skip(errno == EPERM || errno == EACCES
				       ? "no CAP_NET_RAW for a raw IPv4 socket"
				       : "no raw IPv4 socket");
		return;
	}
	dev_open(&d);
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_addr = d.local.sin_addr;
	for (int i = 0; i < NPKT + 6; i++) {
		uint16_t id = 0;
		size_t plen, n;
		long flip = -1;
		int bad = i >= NPKT, nwc = 0;

		while (!id)
			USMC_ASSERT_EQ_FATAL(getrandom(&id, sizeof(id), 0),
					     (ssize_t)sizeof(id));
		USMC_ASSERT_EQ_FATAL(getrandom(msg, sizeof(msg), 0),
				     (ssize_t)sizeof(msg));
		plen = 1 + (msg[0] | (size_t)msg[1] << 8) % sizeof(msg);
		if (bad) /* payload, BTH (PSN), ICRC */
			flip = i % 3 == 0   ? 12 * 8 + (long)(id % (plen * 8))
			       : i % 3 == 1 ? 9 * 8 + (long)(id % 24)
					    : (long)(12 + plen +
						     ((4 - (plen & 3)) & 3)) *
							      8 +
						      (long)(id % 32);
		n = frame(&d, f, id, psn, msg, plen, flip);
		USMC_ASSERT_EQ_FATAL(sendto(raw, f, n, 0,
					    (struct sockaddr *)&to, sizeof(to)),
				     (ssize_t)n);
		wait_rx(&d, ++rx, wc, &nwc);
		if (bad) {
			USMC_ASSERT_EQ(nwc, 0);
			continue;
		}
		USMC_ASSERT_EQ_FATAL(nwc, 1);
		USMC_ASSERT_EQ(wc[0].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(wc[0].byte_len, plen);
		USMC_ASSERT_MEM_EQ((uint8_t *)d.mr->addr +
					   (size_t)ndeliv * 1024,
				   msg, plen);
		ndeliv++;
		psn = usmc_psn_add(psn, 1);
	}
	usmc_softroce_get_stats(d.tp, &st);
	USMC_ASSERT_EQ(ndeliv, NPKT);
	USMC_ASSERT_EQ(st.rx_icrc_id, NPKT);
	USMC_ASSERT_EQ(st.drop_icrc, 6);
	fprintf(stderr, "  [%d nonzero-ID packets delivered, %llu dropped]\n",
		ndeliv, (unsigned long long)st.drop_icrc);
	close(raw);
	usmc_tp_free_mr(d.mr);
	usmc_tp_destroy_qp(d.qp);
	usmc_tp_close(d.tp);
}

static CU_TestInfo tests[] = {
	{"raw IPv4 with nonzero IDs: delivered, flipped bits dropped",
	 test_raw_nonzero_ids},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"softroce_rawid", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
