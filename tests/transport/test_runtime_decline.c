/* SPDX-License-Identifier: MIT */
/*
 * Declines at the end of a failed first link, against a scripted peer
 * over loopback TCP (docs/negotiation.md, "CLC handshake"). The peer
 * speaks CLC from a thread with plain sockets and has no RDMA, so the
 * first link never comes up and CONFIRM_LINK times out at both ends. As
 * a Linux peer, from its own Decline on (or from the usmc Decline it
 * took) it treats every byte as application data. Each case then moves
 * a pattern both ways over the fallen-back connection and compares every
 * byte, so a CLC message read as data by either end fails it.
 *
 * - kernel: the peer keeps the kernel's clocks (server 2 s + 1 s for a
 *   Decline, client 4 s + 1 s): one Decline, sent by the side that
 *   times out first, and never one after the peer's.
 * - answer: the peer sends a Decline just after it got usmc's, as when
 *   two Declines cross: usmc must drop it, not hand it to the app.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_clc.h"
#include "usmc_server_test.h"
#include "usmc_stream_test.h"
#include "usmc_test.h"

#define A_LEN (200 * 1024 + 5) /* usmc end -> peer */
#define B_LEN (70 * 1024 + 3)  /* peer -> usmc end */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the scripted peer ---- */

typedef struct peer {
	int server;  /* the peer's role */
	int answer;  /* answer usmc's Decline with one (crossing) */
	int lfd, fd; /* server: listener; the connection */
	uint16_t port;
	/* results */
	int clc_ok;	    /* its CLC part went as scripted */
	int sent_decline;   /* it declined on its own clock */
	int got_decline;    /* it took usmc's Decline */
	double confirm_t;   /* Confirm sent or received */
	double usmc_decl_t; /* usmc's Decline read */
	double arrived_t;   /* kernel clocks: usmc's Decline arrived */
	long got;	    /* application bytes read */
	int sent;	    /* 0: its pattern went out */
	char why[160];
} peer;

/* Reads one CLC message within |ms| (-1: none). Returns its type, 0 on
 * timeout, -1 on error, EOF or a non-CLC header. */
static int clc_read(int fd, uint8_t *buf, size_t cap, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	usmc_clc_hdr h;
	size_t have = 0;
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return 0;
	n = recv(fd, buf, SMC_CLC_HDR_LEN, MSG_PEEK | MSG_WAITALL);
	if (n != SMC_CLC_HDR_LEN || usmc_clc_hdr_peek(buf, (size_t)n, &h) ||
	    h.length > cap)
		return -1;
	while (have < h.length) {
		n = recv(fd, buf + have, h.length - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return buf[4];
}

static int clc_write(int fd, const usmc_clc_msg *m)
{
	uint8_t b[USMC_CLC_MAX_LEN];
	usmc_ssize n = usmc_clc_encode(m, b, sizeof(b));

	return n > 0 && send(fd, b, (size_t)n, MSG_NOSIGNAL) == n ? 0 : -1;
}

/* The peer's link details in its Accept or Confirm: a v1 first contact
 * with a GID on loopback and QP numbers no device here hands out. */
static void peer_ac(usmc_clc_msg *m, uint8_t type)
{
	memset(m, 0, sizeof(*m));
	m->hdr.type = type;
	m->hdr.version = SMC_V1;
	m->hdr.typev1 = SMC_TYPE_R;
	m->hdr.typev2 = SMC_FIRST_CONTACT_MASK;
	memcpy(m->u.ac.peer_id, "\x02\x00\x00\x00\x00\x99\x00\x01", 8);
	memcpy(m->u.ac.gid + 10, "\xff\xff\x7f\x00\x00\x01", 6);
	memcpy(m->u.ac.mac, "\x02\x00\x00\x00\x00\x99", 6);
	m->u.ac.qpn = 0xabcde;
	m->u.ac.rmb_rkey = 0x1234;
	m->u.ac.rmbe_idx = 1;
	m->u.ac.rmbe_alert_token = 7;
	m->u.ac.rmbe_size = 1;
	m->u.ac.qp_mtu = 3;
	m->u.ac.rmb_dma_addr = 0x10000;
	m->u.ac.psn = 0x42;
}

static void decline(usmc_clc_msg *m)
{
	usmc_clc_decline_init(m, SMC_CLC_DECL_TIMEOUT_CL, SMC_V1,
			      (const uint8_t *)"\x02\0\0\0\0\x99\0\x01");
}

/* The Linux first-link ending: wait |llc_ms| (no RDMA: nothing comes),
 * then |decl_ms| for a Decline; none: send ours. An answering peer waits
 * for usmc's Decline and then sends its own. 0 if the CLC part went as
 * scripted. */
static int peer_first_link(peer *p, int llc_ms, int decl_ms)
{
	uint8_t b[USMC_CLC_MAX_LEN];
	usmc_clc_msg m;
	int t = 0;

	if (p->answer) {
		t = clc_read(p->fd, b, sizeof(b), 15000);
		if (t != SMC_CLC_DECLINE)
			return snprintf(p->why, sizeof(p->why),
					"no Decline from usmc (%d)", t),
			       -1;
		p->usmc_decl_t = now_s();
		p->got_decline = 1;
		decline(&m);
		p->sent_decline = 1;
		return clc_write(p->fd, &m);
	}
	/* during its LLC wait the kernel does not read the TCP socket; the
	 * script only notes when usmc's bytes arrive */
	{
		double end = now_s() + llc_ms / 1000.0, left;

		while ((left = end - now_s()) > 0) {
			struct pollfd q = {.fd = p->fd, .events = POLLIN};

			if (!p->arrived_t &&
			    poll(&q, 1, (int)(left * 1000)) == 1)
				p->arrived_t = now_s();
			else if (p->arrived_t)
				usleep((useconds_t)(left * 1e6));
		}
	}
	t = clc_read(p->fd, b, sizeof(b), decl_ms);
	if (t == SMC_CLC_DECLINE) {
		p->usmc_decl_t = now_s();
		if (!p->arrived_t)
			p->arrived_t = p->usmc_decl_t;
		p->got_decline = 1;
		return 0; /* PEERDECL: fallback, no Decline back */
	}
	if (t != 0)
		return snprintf(p->why, sizeof(p->why),
				"CLC type %d in the Decline wait", t),
		       -1;
	decline(&m);
	p->sent_decline = 1;
	return clc_write(p->fd, &m);
}

static int peer_clc_server(peer *p)
{
	uint8_t b[USMC_CLC_MAX_LEN];
	usmc_clc_msg m;
	int t = clc_read(p->fd, b, sizeof(b), 10000);

	if (t != SMC_CLC_PROPOSAL || usmc_clc_decode(b, sizeof(b), &m) <= 0 ||
	    !(m.hdr.typev1 == SMC_TYPE_R || m.hdr.typev1 == SMC_TYPE_B))
		return snprintf(p->why, sizeof(p->why),
				"no v1 SMC-R Proposal (%d)", t),
		       -1;
	peer_ac(&m, SMC_CLC_ACCEPT);
	if (clc_write(p->fd, &m))
		return -1;
	t = clc_read(p->fd, b, sizeof(b), 10000);
	if (t != SMC_CLC_CONFIRM)
		return snprintf(p->why, sizeof(p->why), "no Confirm (%d)", t),
		       -1;
	p->confirm_t = now_s();
	/* smcr_serv_conf_first_link: 2 s, then 1 s for a Decline */
	return peer_first_link(p, 2000, 1000);
}

static int peer_clc_client(peer *p)
{
	uint8_t b[USMC_CLC_MAX_LEN];
	usmc_clc_msg m;
	int t;

	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_PROPOSAL;
	m.hdr.version = SMC_V1;
	m.hdr.typev1 = SMC_TYPE_R;
	m.hdr.typev2 = SMC_TYPE_N;
	memcpy(m.u.prop.peer_id, "\x02\x00\x00\x00\x00\x99\x00\x01", 8);
	memcpy(m.u.prop.gid + 10, "\xff\xff\x7f\x00\x00\x01", 6);
	memcpy(m.u.prop.mac, "\x02\x00\x00\x00\x00\x99", 6);
	m.u.prop.ipv4_subnet = 0x7f000000;
	m.u.prop.ipv4_prefix_len = 8;
	if (clc_write(p->fd, &m))
		return -1;
	t = clc_read(p->fd, b, sizeof(b), 10000);
	if (t != SMC_CLC_ACCEPT)
		return snprintf(p->why, sizeof(p->why), "no Accept (%d)", t),
		       -1;
	peer_ac(&m, SMC_CLC_CONFIRM);
	if (clc_write(p->fd, &m))
		return -1;
	p->confirm_t = now_s();
	/* smcr_clnt_conf_first_link: 4 s, then 1 s for a Decline */
	return peer_first_link(p, 4000, 1000);
}

static void *peer_main(void *arg)
{
	peer *p = arg;

	if (p->server) {
		p->fd = accept(p->lfd, NULL, NULL);
	} else {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons(p->port)};

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		p->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)))
			p->fd = -1;
	}
	if (p->fd < 0)
		return NULL;
	p->clc_ok = (p->server ? peer_clc_server(p) : peer_clc_client(p)) == 0;
	if (!p->clc_ok) {
		close(p->fd);
		return NULL;
	}
	/* fallen back: from here on everything is data */
	if (p->server) {
		p->got = usmc_test_recv_pat(usmc_test_kernel_recv, p->fd, 1,
					    "scripted server");
		p->sent = usmc_test_send_pat(usmc_test_kernel_send, p->fd,
					     B_LEN, 2);
	} else {
		p->sent = usmc_test_send_pat(usmc_test_kernel_send, p->fd,
					     B_LEN, 2);
		shutdown(p->fd, SHUT_WR);
		p->got = usmc_test_recv_pat(usmc_test_kernel_recv, p->fd, 1,
					    "scripted client");
	}
	close(p->fd);
	return NULL;
}

/* ---- the cases ---- */

/* usmc client, scripted server. Returns the usmc client's connect time. */
static double run_client(peer *p, usmc_sock_info *ci)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	char list[16];
	pthread_t th;
	double t0, dt;
	int fd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	p->server = 1;
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(listen(p->lfd, 4) == 0);
	getsockname(p->lfd, (struct sockaddr *)&sa, &len);
	snprintf(list, sizeof(list), "%u", ntohs(sa.sin_port));
	CU_ASSERT_FATAL(usmc_config_set("smc_ports", list) == 0);
	pthread_create(&th, NULL, peer_main, p);
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	t0 = now_s();
	CU_ASSERT_FATAL(usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ==
			0);
	dt = now_s() - t0;
	CU_ASSERT_EQUAL(usmc_get_info(fd, ci), 0);
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, A_LEN, 1),
			0);
	CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
	USMC_ASSERT_EQ(
		usmc_test_recv_pat(usmc_test_usmc_recv, fd, 2, "usmc client"),
		B_LEN);
	usmc_close(fd);
	pthread_join(th, NULL);
	close(p->lfd);
	if (!p->clc_ok)
		fprintf(stderr, "scripted server: %s\n", p->why);
	CU_ASSERT_TRUE(p->clc_ok);
	USMC_ASSERT_EQ(p->got, A_LEN);
	USMC_ASSERT_EQ(p->sent, 0);
	USMC_ASSERT_EQ(ci->mode, USMC_SOCK_TCP);
	fprintf(stderr, "    usmc client: connect %.2f s, %s 0x%08x\n", dt,
		ci->fallback_name, ci->fallback_code);
	return dt;
}

/* usmc server, scripted client. */
static void run_server(peer *p, usmc_sock_info *si)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	pthread_t th;
	int lfd, fd;

	lfd = usmc_test_smc_listen("127.0.0.1", 4, &sa.sin_port);
	CU_ASSERT_FATAL(lfd >= 0);
	p->server = 0;
	p->port = ntohs(sa.sin_port);
	pthread_create(&th, NULL, peer_main, p);
	fd = usmc_accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(usmc_get_info(fd, si), 0);
	USMC_ASSERT_EQ(
		usmc_test_recv_pat(usmc_test_usmc_recv, fd, 2, "usmc server"),
		B_LEN);
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, A_LEN, 1),
			0);
	usmc_close(fd);
	pthread_join(th, NULL);
	usmc_close(lfd);
	if (!p->clc_ok)
		fprintf(stderr, "scripted client: %s\n", p->why);
	CU_ASSERT_TRUE(p->clc_ok);
	USMC_ASSERT_EQ(p->got, A_LEN);
	USMC_ASSERT_EQ(p->sent, 0);
	USMC_ASSERT_EQ(si->mode, USMC_SOCK_TCP);
	fprintf(stderr,
		"    usmc server: %s 0x%08x, its Decline read %.2f s "
		"after the Confirm\n",
		si->fallback_name, si->fallback_code,
		p->got_decline ? p->usmc_decl_t - p->confirm_t : -1.0);
}

/* A kernel server declines at 3 s; the usmc client, in its 4 s wait,
 * takes that Decline and sends none. */
static void test_kernel_server(void)
{
	peer p = {0};
	usmc_sock_info ci;
	double dt = run_client(&p, &ci);

	CU_ASSERT_TRUE(p.sent_decline);
	CU_ASSERT_FALSE(p.got_decline);
	USMC_ASSERT_EQ(ci.fallback_code, SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(ci.peer_diagnosis, SMC_CLC_DECL_TIMEOUT_CL);
	CU_ASSERT(dt >= 2.9); /* the peer's clock, not usmc's */
}

/* A kernel client looks for a Decline 4 s after its Confirm: the usmc
 * server's, sent at 2 s + 1 s, is there; the client sends none. */
static void test_kernel_client(void)
{
	peer p = {0};
	usmc_sock_info si;

	run_server(&p, &si);
	CU_ASSERT_TRUE(p.got_decline);
	CU_ASSERT_FALSE(p.sent_decline);
	USMC_ASSERT_EQ(si.fallback_code, SMC_CLC_DECL_TIMEOUT_CL);
	/* it arrived after the server's 2 s wait and 1 s look for a Decline
	 * (a lower bound only: a busy machine makes it later, never
	 * earlier), and before the client looked (4 s) */
	fprintf(stderr,
		"    usmc server's Decline arrived %.2f s after the "
		"Confirm\n",
		p.arrived_t - p.confirm_t);
	CU_ASSERT(p.arrived_t - p.confirm_t >= 2.9);
	CU_ASSERT(p.arrived_t <= p.usmc_decl_t);
}

/* The usmc client declines after 4 s + 1 s and the peer's Decline comes
 * right after its own: dropped, the client's first read is the peer's
 * data. */
static void test_crossed_at_client(void)
{
	peer p = {.answer = 1};
	usmc_sock_info ci;
	double dt = run_client(&p, &ci);

	CU_ASSERT_TRUE(p.got_decline);
	USMC_ASSERT_EQ(ci.fallback_code, SMC_CLC_DECL_TIMEOUT_CL);
	CU_ASSERT(dt >= 4.9);
}

/* The same at a usmc server (2 s + 1 s). */
static void test_crossed_at_server(void)
{
	peer p = {.answer = 1};
	usmc_sock_info si;

	run_server(&p, &si);
	CU_ASSERT_TRUE(p.got_decline);
	USMC_ASSERT_EQ(si.fallback_code, SMC_CLC_DECL_TIMEOUT_CL);
	CU_ASSERT(p.usmc_decl_t - p.confirm_t >= 2.9);
}

static CU_TestInfo tests[] = {
	{"kernel-timed server: its Decline taken, none back",
	 test_kernel_server},
	{"kernel-timed client: usmc's Decline in its window",
	 test_kernel_client},
	{"crossed Declines at a usmc client: the peer's dropped",
	 test_crossed_at_client},
	{"crossed Declines at a usmc server: the peer's dropped",
	 test_crossed_at_server},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime decline", tests},
		{NULL, NULL},
	};
	char port[16];

	/* explicit mode: the rules say which port speaks CLC */
	setenv("USMC_SYNOPT", "off", 1);
	snprintf(port, sizeof(port), "%d", 20000 + (getpid() * 13) % 20000);
	setenv("USMC_SOFTROCE_PORT", port, 1);
	/* the peer has no RDMA: softroce's retry_time would fail usmc's
	 * CONFIRM_LINK after 1.5 s, before the LLC wait (2 s) these cases
	 * time against the kernel's clocks */
	setenv("USMC_TRANSPORT_OPTIONS", "retry_time=0", 1);
	usmc_test_stat_dir();
	return usmc_test_main(suites);
}
