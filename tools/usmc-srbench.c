/* SPDX-License-Identifier: MIT */
/*
 * usmc-srbench: softroce alone, no runtime. One thread drives two devices
 * on loopback (127.0.0.1 -> 127.0.0.2, one UDP port) and streams RDMA
 * WRITEs between them, for each MTU with the ICRC verified and off; and
 * the ICRC's CRC-32 against zlib's on one packet's payload. Prints
 * Gbit/s and ratios: numbers for notes, never pass/fail.
 *
 * usmc-srbench --help is its manual.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "roce_hdr.h"
#include "usmc_tool.h"
#include "usmc_transport.h"

#define RING  (1u << 20)
#define DEPTH 16

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* -o: more softroce options for every device (e.g. share=off) */
static const char *extra_opts;

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

static int connect_qp(usmc_tp_qp *qp, usmc_tp_qp *peer, const uint8_t *dgid,
		      int mtu)
{
	usmc_qp_attr a;

	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	if (usmc_tp_modify_qp(qp, &a))
		return -1;
	a.qp_state = USMC_QPS_RTR;
	a.path_mtu = (uint8_t)mtu;
	a.dest_qp_num = usmc_tp_qp_num(peer);
	memcpy(a.dgid, dgid, 16);
	a.hop_limit = 64;
	a.min_rnr_timer = 5;
	if (usmc_tp_modify_qp(qp, &a))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_RTS;
	a.timeout = 15;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	return usmc_tp_modify_qp(qp, &a);
}

/* Streams |total| bytes of |wsize|-byte WRITEs; Gbit/s, or -1. */
static double stream(int mtu, const char *icrc, size_t total, uint32_t wsize)
{
	usmc_tp *tp[2] = {NULL, NULL};
	usmc_tp_qp *qp[2] = {NULL, NULL};
	usmc_tp_mr *mr[2] = {NULL, NULL};
	usmc_port_attr pa[2];
	usmc_qp_init_attr ia;
	char opts[160];
	double gbps = -1, t0;
	size_t posted = 0, done = 0;
	uint32_t inflight = 0;
	int rc = 0;

	snprintf(opts, sizeof(opts), "mtu=%u,icrc=%s%s%s",
		 usmc_ib_mtu_to_int(mtu), icrc, extra_opts ? "," : "",
		 extra_opts ? extra_opts : "");
	for (int tries = 0; tries < 20; tries++) {
		uint16_t port = (uint16_t)(30000 + (getpid() * 13 + tries * 7 +
						    mtu * 101) %
							   20000);

		rc = open_dev("127.0.0.1", port, opts, &tp[0]);
		if (!rc) {
			rc = open_dev("127.0.0.2", port, opts, &tp[1]);
			if (!rc)
				break;
			usmc_tp_close(tp[0]);
			tp[0] = NULL;
		}
	}
	if (rc)
		goto out;
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 256;
	ia.max_recv_wr = 16;
	ia.max_send_sge = 1;
	ia.max_recv_sge = 1;
	for (int i = 0; i < 2; i++) {
		if (usmc_tp_query_port(tp[i], &pa[i]) ||
		    usmc_tp_create_qp(tp[i], &ia, &qp[i]) ||
		    usmc_tp_alloc_mr(tp[i], RING,
				     USMC_ACCESS_LOCAL_WRITE |
					     USMC_ACCESS_REMOTE_WRITE,
				     &mr[i]))
			goto out;
		memset(mr[i]->addr, 0x5a + i, RING);
	}
	if (connect_qp(qp[0], qp[1], pa[1].gid, mtu) ||
	    connect_qp(qp[1], qp[0], pa[0].gid, mtu))
		goto out;

	t0 = now_s();
	while (done < total) {
		usmc_wc wc[64];
		int n;

		while (inflight < DEPTH && posted < total) {
			uint64_t off = (posted % RING) / wsize * wsize;
			usmc_wr wr;

			if (off + wsize > RING)
				off = 0;
			memset(&wr, 0, sizeof(wr));
			wr.opcode = USMC_WR_RDMA_WRITE;
			wr.send_flags = USMC_SEND_SIGNALED;
			wr.num_sge = 1;
			wr.sg_list[0].addr =
				(uint64_t)(uintptr_t)mr[0]->addr + off;
			wr.sg_list[0].length = wsize;
			wr.sg_list[0].lkey = mr[0]->lkey;
			wr.remote_addr = mr[1]->iova + off;
			wr.rkey = mr[1]->rkey;
			if (usmc_tp_post_send(qp[0], &wr))
				break;
			posted += wsize;
			inflight++;
		}
		usmc_tp_poll_cq(tp[1], wc, 64);
		n = usmc_tp_poll_cq(tp[0], wc, 64);
		for (int i = 0; i < n; i++) {
			if (wc[i].status != USMC_WC_SUCCESS)
				goto out;
			inflight--;
			done += wsize;
		}
	}
	gbps = (double)total * 8 / (now_s() - t0) / 1e9;
out:
	for (int i = 0; i < 2; i++) {
		if (qp[i])
			usmc_tp_destroy_qp(qp[i]);
		if (mr[i])
			usmc_tp_free_mr(mr[i]);
		if (tp[i])
			usmc_tp_close(tp[i]);
	}
	return gbps;
}

/* GB/s of the ICRC's CRC-32 (usmc), of our own tables' and of zlib's on
 * |len|-byte pieces. */
static void crc_speed(size_t len, double *ours, double *tb, double *zl)
{
	static uint8_t buf[4096];
	size_t iters = (size_t)(1u << 28) / len;
	uint32_t c = 0, z = 0, b = 0;
	double t;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	t = now_s();
	for (size_t i = 0; i < iters; i++)
		c = usmc_roce_icrc_update(c, buf, len);
	*ours = (double)(iters * len) / (now_s() - t) / 1e9;
	t = now_s();
	for (size_t i = 0; i < iters; i++)
		z = (uint32_t)crc32(z, buf, (uInt)len);
	*zl = (double)(iters * len) / (now_s() - t) / 1e9;
	t = now_s();
	for (size_t i = 0; i < iters; i++)
		b = usmc_roce_crc32_table(b, buf, len);
	*tb = (double)(iters * len) / (now_s() - t) / 1e9;
	if (c != z || b != z)
		fprintf(stderr, "usmc-srbench: CRC mismatch %08x %08x %08x\n",
			c, b, z);
}

/* ns per packet for the whole ICRC of a 1 KiB RDMA WRITE MIDDLE over IPv4
 * (masked headers, payload, final), as the transmit path computes it. */
static double icrc_pkt_ns(void)
{
	static uint8_t pl[1024];
	uint8_t ip[20], udp[8], bth[USMC_ROCE_BTH_LEN] = {0x07, 0, 0xff, 0xff};
	const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
	size_t len = sizeof(bth) + sizeof(pl) + USMC_ROCE_ICRC_LEN;
	size_t iters = 1u << 20;
	uint32_t acc = 0;
	double t;

	usmc_roce_ipv4_hdr(ip, a, b, len, 0);
	usmc_roce_udp_hdr(udp, 49152, 4791, len);
	t = now_s();
	for (size_t i = 0; i < iters; i++) {
		uint32_t c;

		bth[11] = (uint8_t)i; /* PSN: keep every packet distinct */
		c = usmc_roce_icrc_start_ipv4(ip, udp, bth, sizeof(bth));
		c = usmc_roce_icrc_update(c, pl, sizeof(pl));
		acc ^= usmc_roce_icrc_final(c);
	}
	t = (now_s() - t) / (double)iters * 1e9;
	if (acc == 0x12345678)
		printf("(unlikely)\n");
	return t;
}

/* ns per packet of the IPv4 ID inference that a packet with a nonzero ID
 * (kernel rxe's) costs on top of its ICRC (usmc_roce_icrc_ipv4_id), its
 * length's constant cached; ID 0 packets never get here. */
static double icrc_id_ns(void)
{
	size_t iters = 1u << 20;
	uint32_t acc = 0;
	uint16_t id;
	double t;

	t = now_s();
	for (size_t i = 0; i < iters; i++) {
		if (!usmc_roce_icrc_ipv4_id((uint32_t)i * 0x9e3779b9u,
					    (uint32_t)i, 1040, &id))
			acc += id;
	}
	t = (now_s() - t) / (double)iters * 1e9;
	if (acc == 0x12345678)
		printf("(unlikely)\n");
	return t;
}

/* ns per call of x^-e mod P (the per-length constant, uncached). */
static double xinv_ns(void)
{
	size_t iters = 1u << 18;
	uint32_t acc = 0;
	double t = now_s();

	for (size_t i = 0; i < iters; i++)
		acc ^= usmc_roce_gf2_xinv(32 + 8 * (uint32_t)(i % 8192 + 18));
	t = (now_s() - t) / (double)iters * 1e9;
	if (acc == 0x12345678)
		printf("(unlikely)\n");
	return t;
}

static void usage(void)
{
	fputs("NAME\n"
	      "    usmc-srbench - softroce alone: RDMA WRITE throughput and "
	      "ICRC speed\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    usmc-srbench [-n BYTES] [-w WRITE] [-o OPTIONS]\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    One thread drives two softroce devices on loopback\n"
	      "    (127.0.0.1 to 127.0.0.2, one UDP port) and streams RDMA "
	      "WRITEs\n"
	      "    between them, for each IB MTU with the ICRC verified and "
	      "off; it\n"
	      "    also times the ICRC's CRC-32 against zlib's, and the IPv4 "
	      "ID\n"
	      "    inference. Numbers for notes, never pass or fail.\n"
	      "\n"
	      "OPTIONS\n"
	      "    -n, --bytes N[K|M|G]  bytes per run (default 256M)\n"
	      "    -w, --write N[K|M]    bytes per WRITE, up to 1M (default "
	      "64K)\n"
	      "    -o, --options OPTS    more softroce options for both "
	      "devices\n"
	      "                          (transport/softroce/README.md)\n"
	      "    -h, --help            this text\n"
	      "    --version             the version, and exit\n"
	      "\n"
	      "EXIT STATUS\n"
	      "    0 done; 1 a device or transfer failed; 2 usage error.\n",
	      stdout);
}

int main(int argc, char **argv)
{
	size_t total = 256u << 20;
	uint32_t wsize = 64u << 10;
	static const struct option lo[] = {
		{"bytes", required_argument, NULL, 'n'},
		{"write", required_argument, NULL, 'w'},
		{"options", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	uint64_t num;
	int opt;

	argv[0] = (char *)"usmc-srbench"; /* getopt's messages name the tool */
	while ((opt = getopt_long(argc, argv, "n:w:o:h", lo, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (usmc_tool_number(optarg, 1, 1, 1ULL << 40, &num))
				usmc_tool_usage_error("usmc-srbench",
						      "bad --bytes '%s' (want "
						      "N, NK, NM or NG)",
						      optarg);
			total = (size_t)num;
			break;
		case 'w':
			if (usmc_tool_number(optarg, 1, 1, RING, &num))
				usmc_tool_usage_error(
					"usmc-srbench",
					"bad --write '%s' (want 1 "
					"to 1M)",
					optarg);
			wsize = (uint32_t)num;
			break;
		case 'o':
			extra_opts = optarg;
			break;
		case 'h':
			usage();
			return 0;
		case 'V':
			usmc_tool_version("usmc-srbench");
			return 0;
		default:
			usmc_tool_try("usmc-srbench");
		}
	}
	if (optind != argc)
		usmc_tool_usage_error("usmc-srbench",
				      "unexpected argument '%s'", argv[optind]);

	for (size_t len = 1024; len <= 4096; len *= 4) {
		double o, tb, z;

		crc_speed(len, &o, &tb, &z);
		printf("crc32 %4zu B: usmc (%s) %.2f GB/s, table %.2f GB/s, "
		       "zlib %.2f GB/s, usmc/zlib %.2f\n",
		       len, usmc_roce_crc32_impl(), o, tb, z,
		       z > 0 ? o / z : 0);
	}
	printf("icrc of a 1 KiB packet: %.0f ns\n", icrc_pkt_ns());
	printf("IPv4 ID inference (nonzero ID only): %.1f ns cached, "
	       "x^-e uncached %.0f ns\n",
	       icrc_id_ns(), xinv_ns());
	printf("%-10s %12s %12s %9s\n", "mtu", "icrc=verify", "icrc=off",
	       "off/ver");
	for (int mtu = USMC_IB_MTU_1024; mtu <= USMC_IB_MTU_4096; mtu += 2) {
		double v = stream(mtu, "verify", total, wsize);
		double f = stream(mtu, "off", total, wsize);

		printf("%-10u %12.2f %12.2f %9.2f\n", usmc_ib_mtu_to_int(mtu),
		       v, f, v > 0 ? f / v : 0);
	}
	printf("(Gbit/s, %zu bytes per run in %u-byte WRITEs, one thread "
	       "on loopback)\n",
	       total, wsize);
	return 0;
}
