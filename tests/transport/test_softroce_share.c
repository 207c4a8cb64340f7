/* SPDX-License-Identifier: MIT */
/*
 * softroce devices sharing one UDP port on one address (softroce_share.c):
 * each gets its own slot and QPN range, the SK_REUSEPORT program delivers
 * every datagram to the device owning its destination QPN, a datagram no
 * device owns is dropped and counted, and a slot comes free when its
 * device closes or its process is killed. Exits 77 where sharing cannot be
 * set up (no eBPF privilege, old kernel, built without clang/libbpf).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "softroce.h"
#include "usmc_test.h"
#include "usmc_transport.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define BUF 16384

typedef struct ep {
	usmc_tp *tp;
	usmc_tp_qp *qp;
	usmc_tp_mr *mr;
	usmc_port_attr port;
	int got_recv, got_send;
	uint32_t recv_len;
} ep;

static uint16_t port;

static int open_dev(const char *ip, uint16_t p, const char *opts, usmc_tp **tp)
{
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;

	memset(&cfg, 0, sizeof(cfg));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	cfg.udp_port = p;
	cfg.options = opts;
	*tp = NULL;
	return usmc_tp_open("softroce", &cfg, tp);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void share_path(uint16_t p, char *out, size_t len)
{
	uint64_t cookie = 0;
	socklen_t cl = sizeof(cookie);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &cl);
	close(fd);
	snprintf(out, len, "/run/usmc/softroce-%llx-127.0.0.1-%u",
		 (unsigned long long)cookie, p);
}

static void mk_qp(ep *e, usmc_tp *tp)
{
	usmc_qp_init_attr ia;
	usmc_qp_attr a;

	memset(e, 0, sizeof(*e));
	e->tp = tp;
	memset(&ia, 0, sizeof(ia));
	ia.max_send_wr = 16;
	ia.max_recv_wr = 16;
	ia.max_send_sge = 1;
	ia.max_recv_sge = 1;
	ia.context = e;
	USMC_ASSERT_EQ_FATAL(usmc_tp_create_qp(tp, &ia, &e->qp), 0);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_alloc_mr(tp, BUF, USMC_ACCESS_LOCAL_WRITE, &e->mr), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_query_port(tp, &e->port), 0);
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_INIT;
	a.qp_access_flags = USMC_ACCESS_LOCAL_WRITE;
	USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(e->qp, &a), 0);
}

static void connect_eps(ep *x, ep *y)
{
	ep *e[2] = {x, y};

	for (int i = 0; i < 2; i++) {
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_RTR;
		a.path_mtu = USMC_IB_MTU_1024;
		a.dest_qp_num = usmc_tp_qp_num(e[1 - i]->qp);
		a.rq_psn = 100;
		memcpy(a.dgid, e[1 - i]->port.gid, 16);
		a.hop_limit = 64;
		a.min_rnr_timer = 5;
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(e[i]->qp, &a), 0);
	}
	for (int i = 0; i < 2; i++) {
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_RTS;
		a.sq_psn = 100;
		a.timeout = 14;
		a.retry_cnt = 7;
		a.rnr_retry = 7;
		USMC_ASSERT_EQ_FATAL(usmc_tp_modify_qp(e[i]->qp, &a), 0);
	}
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

/* Polls every device; completions go to the endpoint whose QP they name. */
static void poll_all(ep **eps, int n)
{
	for (int i = 0; i < n; i++) {
		usmc_wc wcs[16];
		int k, dup = 0;

		for (int j = 0; j < i; j++)
			dup |= eps[j]->tp == eps[i]->tp;
		if (dup)
			continue;
		k = usmc_tp_poll_cq(eps[i]->tp, wcs, 16);
		CU_ASSERT_TRUE(k >= 0);
		for (int w = 0; w < k; w++) {
			ep *e = NULL;

			for (int j = 0; j < n; j++)
				if (eps[j]->tp == eps[i]->tp &&
				    usmc_tp_qp_num(eps[j]->qp) == wcs[w].qp_num)
					e = eps[j];
			CU_ASSERT_PTR_NOT_NULL(e);
			USMC_ASSERT_EQ(wcs[w].status, USMC_WC_SUCCESS);
			if (!e)
				continue;
			if (wcs[w].opcode == USMC_WC_RECV) {
				e->got_recv++;
				e->recv_len = wcs[w].byte_len;
			} else {
				e->got_send++;
			}
		}
	}
}

/* A SEND of |len| bytes from |from| to |to|, compared byte for byte. */
static void xfer(ep *from, ep *to, uint32_t seed, uint32_t len, ep **eps, int n)
{
	usmc_recv_wr rw;
	usmc_wr wr;
	uint64_t end;

	memset(to->mr->addr, 0, BUF);
	memset(&rw, 0, sizeof(rw));
	rw.wr_id = seed;
	rw.num_sge = 1;
	rw.sg_list[0].addr = (uint64_t)(uintptr_t)to->mr->addr;
	rw.sg_list[0].length = BUF;
	rw.sg_list[0].lkey = to->mr->lkey;
	USMC_ASSERT_EQ_FATAL(usmc_tp_post_recv(to->qp, &rw), 0);
	fill(from->mr->addr, len, seed);
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = seed;
	wr.opcode = USMC_WR_SEND;
	wr.send_flags = USMC_SEND_SIGNALED;
	wr.num_sge = 1;
	wr.sg_list[0].addr = (uint64_t)(uintptr_t)from->mr->addr;
	wr.sg_list[0].length = len;
	wr.sg_list[0].lkey = from->mr->lkey;
	for (int i = 0; i < n; i++)
		eps[i]->got_recv = eps[i]->got_send = 0;
	USMC_ASSERT_EQ_FATAL(usmc_tp_post_send(from->qp, &wr), 0);
	end = now_ms() + 3000;
	while ((!to->got_recv || !from->got_send) && now_ms() < end) {
		poll_all(eps, n);
		poll(NULL, 0, 1);
	}
	USMC_ASSERT_EQ(to->got_recv, 1);
	USMC_ASSERT_EQ(from->got_send, 1);
	USMC_ASSERT_EQ(to->recv_len, len);
	USMC_ASSERT_MEM_EQ(to->mr->addr, from->mr->addr, len);
}

static void free_ep(ep *e)
{
	usmc_tp_destroy_qp(e->qp);
	usmc_tp_free_mr(e->mr);
}

static uint64_t rx_pkts(usmc_tp *tp)
{
	usmc_softroce_stats st;

	USMC_ASSERT_EQ(usmc_softroce_get_stats(tp, &st), 0);
	return st.rx_pkts;
}

/* A SEND ONLY header for |qpn| from a plain socket on 127.0.0.3. */
static void send_raw(uint32_t qpn)
{
	struct sockaddr_in to, from;
	uint8_t pkt[64];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.3", &from.sin_addr);
	USMC_ASSERT_EQ(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	memset(&to, 0, sizeof(to));
	to.sin_family = AF_INET;
	to.sin_port = htons(port);
	inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x04;
	pkt[2] = 0xff;
	pkt[3] = 0xff;
	pkt[5] = (uint8_t)(qpn >> 16);
	pkt[6] = (uint8_t)(qpn >> 8);
	pkt[7] = (uint8_t)qpn;
	USMC_ASSERT_EQ(
		sendto(fd, pkt, 60, 0, (struct sockaddr *)&to, sizeof(to)), 60);
	close(fd);
}

static uint64_t drops_qpn(usmc_tp *tp)
{
	usmc_softroce_stats st;

	USMC_ASSERT_EQ(usmc_softroce_get_stats(tp, &st), 0);
	return st.share_drop_qpn;
}

/* Opens a shared device in a child, reports its slot, waits to be killed. */
static pid_t child_dev(int *slot)
{
	int pfd[2];
	pid_t pid;

	*slot = -1;
	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		usmc_tp *tp;
		int s = -1;

		close(pfd[0]);
		if (!open_dev("127.0.0.1", port, NULL, &tp))
			s = usmc_softroce_share_slot(tp);
		if (write(pfd[1], &s, sizeof(s)) != sizeof(s))
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (pid > 0 && read(pfd[0], slot, sizeof(*slot)) != sizeof(*slot))
		*slot = -1;
	close(pfd[0]);
	return pid;
}

static void test_steer(void)
{
	usmc_tp *ta, *tb, *tc, *td;
	ep a, b, ca, cb, d, cd;
	ep *eps[4];
	uint64_t rb, ra, dq;
	int sa, sb, slot;
	pid_t pid;
	char path[128];

	USMC_ASSERT_EQ_FATAL(open_dev("127.0.0.1", port, NULL, &ta), 0);
	USMC_ASSERT_EQ_FATAL(open_dev("127.0.0.1", port, NULL, &tb), 0);
	USMC_ASSERT_EQ_FATAL(open_dev("127.0.0.2", port, NULL, &tc), 0);
	sa = usmc_softroce_share_slot(ta);
	sb = usmc_softroce_share_slot(tb);
	CU_ASSERT_TRUE(sa >= 0 && sb >= 0 && sa != sb);
	/* holding the port alone is refused while others share it */
	USMC_ASSERT_EQ(open_dev("127.0.0.1", port, "share=off", &td),
		       USMC_ERR_BUSY);

	mk_qp(&a, ta);
	mk_qp(&b, tb);
	mk_qp(&ca, tc);
	mk_qp(&cb, tc);
	USMC_ASSERT_EQ(usmc_tp_qp_num(a.qp) >> 17, (uint32_t)sa);
	USMC_ASSERT_EQ(usmc_tp_qp_num(b.qp) >> 17, (uint32_t)sb);
	connect_eps(&a, &ca);
	connect_eps(&b, &cb);
	eps[0] = &a;
	eps[1] = &b;
	eps[2] = &ca;
	eps[3] = &cb;

	/* each direction, each device; the other shared device sees none
	 * of it (its packets come from the same source address and port,
	 * which the kernel's hash would send to one socket only) */
	for (int round = 0; round < 3; round++) {
		uint32_t len = round == 0 ? 44 : round == 1 ? 4000 : BUF;

		rb = rx_pkts(tb);
		xfer(&ca, &a, 1 + (uint32_t)round, len, eps, 4);
		xfer(&a, &ca, 11 + (uint32_t)round, len, eps, 4);
		USMC_ASSERT_EQ(rx_pkts(tb), rb);
		ra = rx_pkts(ta);
		xfer(&cb, &b, 21 + (uint32_t)round, len, eps, 4);
		xfer(&b, &cb, 31 + (uint32_t)round, len, eps, 4);
		USMC_ASSERT_EQ(rx_pkts(ta), ra);
	}
	USMC_ASSERT_EQ(drops_qpn(ta), 0);

	/* a QPN of a slot nobody holds: dropped, counted, seen by no one */
	ra = rx_pkts(ta);
	rb = rx_pkts(tb);
	send_raw((100u << 17) | 16);
	for (int i = 0; i < 50 && drops_qpn(ta) == 0; i++)
		poll(NULL, 0, 2);
	USMC_ASSERT_EQ(drops_qpn(ta), 1);
	USMC_ASSERT_EQ(drops_qpn(tb), 1); /* one counter per address */
	USMC_ASSERT_EQ(rx_pkts(ta), ra);
	USMC_ASSERT_EQ(rx_pkts(tb), rb);
	/* an owned one still arrives (and softroce drops it: bad ICRC) */
	send_raw(usmc_tp_qp_num(a.qp));
	for (int i = 0; i < 50 && rx_pkts(ta) == ra; i++) {
		poll_all(eps, 4);
		poll(NULL, 0, 2);
	}
	USMC_ASSERT_EQ(rx_pkts(ta), ra + 1);

	/* closing frees the slot: B's QPNs are nobody's now */
	dq = drops_qpn(ta);
	free_ep(&b);
	usmc_tp_close(tb);
	send_raw(((uint32_t)sb << 17) | 16);
	for (int i = 0; i < 50 && drops_qpn(ta) == dq; i++)
		poll(NULL, 0, 2);
	USMC_ASSERT_EQ(drops_qpn(ta), dq + 1);

	/* a killed process frees its slot too: the lowest free one is B's,
	 * the child takes it, dies, and the next device gets it again */
	pid = child_dev(&slot);
	CU_ASSERT_TRUE_FATAL(pid > 0);
	USMC_ASSERT_EQ(slot, sb);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	USMC_ASSERT_EQ_FATAL(open_dev("127.0.0.1", port, NULL, &td), 0);
	USMC_ASSERT_EQ(usmc_softroce_share_slot(td), sb);
	mk_qp(&d, td);
	mk_qp(&cd, tc);
	connect_eps(&d, &cd);
	eps[1] = &d;
	eps[3] = &cd;
	xfer(&cd, &d, 41, BUF, eps, 4);
	xfer(&d, &cd, 42, BUF, eps, 4);
	xfer(&ca, &a, 43, BUF, eps, 4);

	free_ep(&d);
	free_ep(&cd);
	free_ep(&a);
	free_ep(&ca);
	free_ep(&cb);
	usmc_tp_close(td);
	usmc_tp_close(tc);
	share_path(port, path, sizeof(path));
	USMC_ASSERT_EQ(access(path, F_OK), 0); /* A is still there */
	usmc_tp_close(ta);
	/* the last one out removes the file */
	USMC_ASSERT_EQ(access(path, F_OK), -1);
}

/* A file left by an earlier run, naming maps that are gone or that are not
 * ours, does not stop the next device from sharing. */
static void test_stale_file(void)
{
	static const char *const stale[] = {"1 2\n", "2147483000 2147483001\n",
					    "garbage"};
	char path[128];

	share_path(port, path, sizeof(path));
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		usmc_tp *t1, *t2;
		FILE *f = fopen(path, "w");

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs(stale[i], f);
		fclose(f);
		USMC_ASSERT_EQ_FATAL(open_dev("127.0.0.1", port, NULL, &t1), 0);
		USMC_ASSERT_EQ_FATAL(open_dev("127.0.0.1", port, NULL, &t2), 0);
		USMC_ASSERT_EQ(usmc_softroce_share_slot(t1), 0);
		USMC_ASSERT_EQ(usmc_softroce_share_slot(t2), 1);
		usmc_tp_close(t2);
		usmc_tp_close(t1);
		USMC_ASSERT_EQ(access(path, F_OK), -1);
	}
}

static CU_TestInfo tests[] = {
	{"two devices on one address: steering, drops, slots", test_steer},
	{"stale map file", test_stale_file},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"softroce_share", tests},
						 {NULL, NULL}};
	usmc_tp *tp = NULL;
	int rc = USMC_ERR_BUSY;

	for (int tries = 0; tries < 50 && rc == USMC_ERR_BUSY; tries++) {
		port = (uint16_t)(20000 + (getpid() * 13 + tries * 7) % 20000);
		rc = open_dev("127.0.0.1", port, "share=off", &tp);
	}
	if (rc) {
		printf("skip: no free UDP port on 127.0.0.1\n");
		return 77;
	}
	usmc_tp_close(tp);
	rc = open_dev("127.0.0.1", port, NULL, &tp);
	if (rc || usmc_softroce_share_slot(tp) < 0) {
		printf("skip: softroce cannot share its port here: %s\n",
		       usmc_softroce_share_status());
		if (!rc)
			usmc_tp_close(tp);
		return 77;
	}
	usmc_tp_close(tp);
	return usmc_test_main(suites);
}
