/* SPDX-License-Identifier: MIT */
/*
 * The runtime end to end over softroce: two processes (fork), the server
 * on 127.0.0.2 and the client on 127.0.0.1, each with its own softroce
 * device on a shared, per-run UDP port. Data crosses SMC-R and is compared
 * byte for byte on both sides; the second connection reuses the link
 * group; the third runs nonblocking through usmc_poll; the fourth closes
 * (nonblocking) right after writing, to a slow reader; then the server
 * process dies with a connection open.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_server_test.h"
#include "usmc_stream_test.h"
#include "usmc_test.h"

#define UP_LEN	 (1024 * 1024 + 13)
#define DOWN_LEN (256 * 1024 + 5)
#define NCONN	 4

static pid_t server_pid = -1;
static uint16_t tcp_port;

/* Child: serve NCONN connections; exit 0 only if all were SMC-R and
 * byte-exact. */
static void server(int wfd)
{
	int lfd, bad = 0;
	usmc_stats st;

	alarm(60);
	lfd = usmc_test_server_listen("127.0.0.2", 8, wfd);
	for (int i = 0; i < NCONN; i++) {
		usmc_sock_info in;
		int fd = usmc_accept(lfd, NULL, NULL);
		long got;

		if (fd < 0)
			_exit(13);
		if (usmc_get_info(fd, &in) || in.mode != USMC_SOCK_SMCR) {
			fprintf(stderr, "server: conn %d not SMC-R: %s %s\n", i,
				in.fallback_name, in.fallback_detail);
			bad = 1;
		}
		/* a slow reader near the end: the last client has its tail in
		 * our RMB (64 KiB) and its send buffer, where the close flag
		 * waits behind it while its fd is already closed */
		got = usmc_test_recv_pat_pause(
			usmc_test_usmc_recv, fd, (uint8_t)i, "server",
			i == NCONN - 1 ? UP_LEN - 80 * 1024 : -1, 800000);
		if (got != UP_LEN) {
			fprintf(stderr, "server: conn %d got %ld\n", i, got);
			bad = 1;
		}
		/* the last client closes right after writing */
		if (i < NCONN - 1 &&
		    usmc_test_send_pat(usmc_test_usmc_send, fd, DOWN_LEN,
				       (uint8_t)(100 + i)))
			bad = 1;
		usmc_close(fd);
	}
	/* one more connection: the server process dies with it open (its
	 * handshake runs on first use: usmc_get_info) */
	{
		usmc_sock_info in;
		int fd = usmc_accept(lfd, NULL, NULL);

		if (fd < 0 || usmc_get_info(fd, &in) ||
		    in.mode != USMC_SOCK_SMCR)
			bad = 1;
	}
	usmc_get_stats(&st);
	if (st.link_groups != 1) {
		fprintf(stderr, "server: %llu link groups\n",
			(unsigned long long)st.link_groups);
		bad = 1;
	}
	/* no close: as if killed */
	_exit(bad ? 1 : 0);
}

static int suite_init(void)
{
	usmc_test_softroce_env(13);
	return usmc_test_server_start(server, &server_pid, &tcp_port);
}

/* The client's device is 127.0.0.1, the server's 127.0.0.2. */
static int connect_client(int nonblock)
{
	return usmc_test_client_connect("127.0.0.1", "127.0.0.2", tcp_port,
					nonblock ? SOCK_NONBLOCK : 0);
}

static void check_smcr(int fd)
{
	usmc_sock_info in;

	CU_ASSERT_EQUAL(usmc_get_info(fd, &in), 0);
	if (in.mode != USMC_SOCK_SMCR)
		fprintf(stderr, "not SMC-R: %s 0x%08x %s\n", in.fallback_name,
			in.fallback_code, in.fallback_detail);
	USMC_ASSERT_EQ_FATAL(in.mode, USMC_SOCK_SMCR);
	CU_ASSERT_STRING_EQUAL(in.transport, "softroce");
	CU_ASSERT(in.lgr_id != 0);
	CU_ASSERT(in.link_id != 0);
	CU_ASSERT(in.smc_version == 1 || in.smc_version == 2);
	USMC_ASSERT_EQ(in.fallback_code, 0);
}

static void test_blocking(void)
{
	usmc_sock_info in;
	usmc_stats st;

	for (int i = 0; i < 2; i++) {
		int fd = connect_client(0);

		check_smcr(fd);
		if (i == 0) {
			/* SO_RCVTIMEO applies to SMC-R waits: EAGAIN */
			struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
			struct timespec a, b;
			char c;
			double dt;

			CU_ASSERT_EQUAL(usmc_setsockopt(fd, SOL_SOCKET,
							SO_RCVTIMEO, &tv,
							sizeof(tv)),
					0);
			clock_gettime(CLOCK_MONOTONIC, &a);
			CU_ASSERT_EQUAL(usmc_recv(fd, &c, 1, 0), -1);
			USMC_ASSERT_EQ(errno, EAGAIN);
			clock_gettime(CLOCK_MONOTONIC, &b);
			dt = (double)(b.tv_sec - a.tv_sec) +
			     (double)(b.tv_nsec - a.tv_nsec) / 1e9;
			CU_ASSERT(dt >= 0.15 && dt < 3);
			tv.tv_usec = 0;
			CU_ASSERT_EQUAL(usmc_setsockopt(fd, SOL_SOCKET,
							SO_RCVTIMEO, &tv,
							sizeof(tv)),
					0);
		}
		CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd,
						   UP_LEN, (uint8_t)i),
				0);
		CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
		USMC_ASSERT_EQ(usmc_test_recv_pat(usmc_test_usmc_recv, fd,
						  (uint8_t)(100 + i), "client"),
			       DOWN_LEN);
		CU_ASSERT_EQUAL(usmc_get_info(fd, &in), 0);
		USMC_ASSERT_EQ(in.bytes_sent, UP_LEN);
		USMC_ASSERT_EQ(in.bytes_received, DOWN_LEN);
		CU_ASSERT_EQUAL(usmc_close(fd), 0);
	}
	usmc_get_stats(&st);
	USMC_ASSERT_EQ(st.link_groups, 1);
	USMC_ASSERT_EQ(st.conns_smcr, 2);
}

/* Nonblocking: EINPROGRESS, then poll-driven send and receive. */
static void test_nonblocking(void)
{
	int fd = connect_client(1);
	size_t sent = 0, got = 0;
	int shut = 0, eof = 0;
	uint8_t buf[7000];

	for (int rounds = 0; !eof && rounds < 100000; rounds++) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n;

		if (!shut)
			pfd.events |= POLLOUT;
		n = usmc_poll(&pfd, 1, 10000);
		CU_ASSERT_FATAL(n == 1);
		CU_ASSERT_FATAL(!(pfd.revents & POLLERR));
		if ((pfd.revents & POLLOUT) && !shut) {
			size_t k = UP_LEN - sent < sizeof(buf) ? UP_LEN - sent
							       : sizeof(buf);
			ssize_t w;

			for (size_t i = 0; i < k; i++)
				buf[i] = usmc_test_pat(sent + i, 2);
			w = usmc_send(fd, buf, k, 0);
			if (w < 0) {
				CU_ASSERT_FATAL(errno == EAGAIN);
			} else {
				sent += (size_t)w;
			}
			if (sent == UP_LEN) {
				check_smcr(fd);
				CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
				shut = 1;
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP)) {
			ssize_t r = usmc_recv(fd, buf, sizeof(buf), 0);

			if (r == 0) {
				eof = 1;
			} else if (r < 0) {
				CU_ASSERT_FATAL(errno == EAGAIN);
			} else {
				for (ssize_t i = 0; i < r; i++) {
					if (buf[i] !=
					    usmc_test_pat(got + (size_t)i,
							  102)) {
						CU_FAIL_FATAL("byte differs");
					}
				}
				got += (size_t)r;
			}
		}
	}
	USMC_ASSERT_EQ(sent, UP_LEN);
	USMC_ASSERT_EQ(got, DOWN_LEN);
	CU_ASSERT(eof);
	usmc_close(fd);
}

/* write() then a nonblocking close() at once, to a slow reader: the close
 * protocol runs after the fd is gone, and the TCP connection is held until
 * the close flag is through, so the server does not take the TCP close
 * for a dead peer and gets every byte. */
static void test_close_drains(void)
{
	int fd = connect_client(0);

	check_smcr(fd);
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, UP_LEN, 3),
			0);
	CU_ASSERT_EQUAL(usmc_set_nonblock(fd, 1), 0);
	CU_ASSERT_EQUAL(usmc_close(fd), 0);
}

/* The peer process dies (it exits once it has accepted this connection):
 * recv fails with ECONNRESET within 1 s of its death (docs/runtime.md, "A
 * peer that goes away"). */
static void test_peer_dies(void)
{
	int fd = connect_client(0);
	double t0;
	char c;
	ssize_t r;
	struct timespec ts;
	siginfo_t si;

	check_smcr(fd);
	/* its death, not reaped (test_server_result does); alarm(60) in the
	 * server bounds the wait */
	CU_ASSERT_FATAL(server_pid > 0);
	USMC_ASSERT_EQ_FATAL(
		waitid(P_PID, (id_t)server_pid, &si, WEXITED | WNOWAIT), 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	r = usmc_recv(fd, &c, 1, 0);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	USMC_ASSERT_EQ(r, -1);
	USMC_ASSERT_EQ(errno, ECONNRESET);
	CU_ASSERT((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - t0 < 1.0);
	usmc_close(fd);
}

static void test_server_result(void)
{

	CU_ASSERT_FATAL(server_pid > 0);
	usmc_test_server_wait(&server_pid);
}

static CU_TestInfo tests[] = {
	{"blocking, two connections on one link group", test_blocking},
	{"nonblocking with usmc_poll", test_nonblocking},
	{"nonblocking close right after write: every byte arrives",
	 test_close_drains},
	{"peer process dies: recv fails with ECONNRESET within 1 s",
	 test_peer_dies},
	{"server side saw SMC-R and every byte", test_server_result},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime over softroce", tests},
		{NULL, NULL},
	};

	alarm(90);
	usmc_test_stat_dir(); /* the server child _exit()s: its table stays */
	return usmc_test_main_server(suites, suite_init, &server_pid);
}
