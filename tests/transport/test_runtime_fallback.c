/* SPDX-License-Identifier: MIT */
/*
 * Runtime fallback paths over loopback TCP, in one process: every case ends
 * with a working TCP connection carrying data in both directions, compared
 * byte for byte, and the reason recorded on the side(s) that decided it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_clc.h"
#include "usmc_stream_test.h"
#include "usmc_test.h"

#define UP_LEN	 (256 * 1024 + 7)
#define DOWN_LEN (64 * 1024 + 3)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A usmc listener on 127.0.0.1, ephemeral port; |smc| puts the port in the
 * explicit-mode SMC port list. */
static int listener(int smc, uint16_t *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	char list[16];
	int fd = usmc_socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_FATAL(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_FATAL(usmc_bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	/* 1 is never used by the tests: the list is never empty */
	snprintf(list, sizeof(list), "%u", smc ? *port : 1);
	CU_ASSERT_FATAL(usmc_config_set("smc_ports", list) == 0);
	CU_ASSERT_FATAL(usmc_listen(fd, 8) == 0);
	return fd;
}

static int tcp_connect(int use_usmc, uint16_t port)
{
	struct sockaddr_in sa = {0};
	int fd = use_usmc ? usmc_socket(AF_INET, SOCK_STREAM, 0)
			  : socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_FATAL(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((use_usmc ? usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa))
		      : connect(fd, (struct sockaddr *)&sa, sizeof(sa))) != 0) {
		fprintf(stderr, "connect: %s\n", strerror(errno));
		CU_FAIL_FATAL("connect failed");
	}
	return fd;
}

typedef struct srv {
	int lfd;
	int fd;
	long got;
	int sent;
	usmc_sock_info info;
} srv;

/* Server side: accept one, read to EOF, answer, close. */
static void *serve(void *arg)
{
	srv *s = arg;

	s->fd = usmc_accept(s->lfd, NULL, NULL);
	if (s->fd < 0)
		return NULL;
	usmc_get_info(s->fd, &s->info);
	s->got = usmc_test_recv_pat(usmc_test_usmc_recv, s->fd, 1, "server");
	s->sent = usmc_test_send_pat(usmc_test_usmc_send, s->fd, DOWN_LEN, 2);
	usmc_close(s->fd);
	return NULL;
}

/* Client half: send, half-close, read the answer. */
static void client_exchange(int fd)
{
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, UP_LEN, 1),
			0);
	CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
	USMC_ASSERT_EQ(usmc_test_recv_pat(usmc_test_usmc_recv, fd, 2, "client"),
		       DOWN_LEN);
}

static void check_server(srv *s)
{
	USMC_ASSERT_EQ(s->got, UP_LEN);
	USMC_ASSERT_EQ(s->sent, 0);
}

/* Client to a port the rules do not call SMC: no CLC at all. */
static void test_not_smc_port(void)
{
	srv s = {0};
	pthread_t th;
	usmc_sock_info ci;
	uint16_t port;
	char want[64];
	int fd;

	s.lfd = listener(0, &port);
	pthread_create(&th, NULL, serve, &s);
	fd = tcp_connect(1, port);
	CU_ASSERT_EQUAL(usmc_get_info(fd, &ci), 0);
	USMC_ASSERT_EQ(ci.mode, USMC_SOCK_TCP);
	USMC_ASSERT_EQ(ci.fallback_code, 0x03010000);
	CU_ASSERT_STRING_EQUAL(ci.fallback_name, "PEERNOSMC");
	snprintf(want, sizeof(want), "port %u is not an SMC port", port);
	CU_ASSERT_STRING_EQUAL(ci.fallback_detail, want);
	client_exchange(fd);
	CU_ASSERT_EQUAL(usmc_get_info(fd, &ci), 0);
	USMC_ASSERT_EQ(ci.bytes_sent, UP_LEN);
	USMC_ASSERT_EQ(ci.bytes_received, DOWN_LEN);
	usmc_close(fd);
	pthread_join(th, NULL);
	check_server(&s);
	USMC_ASSERT_EQ(s.info.mode, USMC_SOCK_TCP);
	CU_ASSERT_STRING_EQUAL(s.info.fallback_detail, want);
	usmc_close(s.lfd);
}

/* O_NONBLOCK set or cleared on a kernel's-for-good fd (the preload sends
 * that fcntl to libc, as here) is what F_GETFL reads on a dup of it,
 * before and after the dup's own first use. */
static void test_kernel_fd_dup_flags(void)
{
	srv s = {0};
	pthread_t th;
	uint16_t port;
	int fd, d, fl;

	s.lfd = listener(0, &port);
	pthread_create(&th, NULL, serve, &s);
	fd = tcp_connect(1, port);
	CU_ASSERT_EQUAL(usmc_send(fd, "x", 0, MSG_NOSIGNAL), 0);
	CU_ASSERT_FATAL(usmc_fd_flags(fd) & USMC_FDF_KERNEL);
	for (int on = 1; on >= 0; on--) {
		fl = fcntl(fd, F_GETFL);
		CU_ASSERT_FATAL(fl >= 0);
		fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
		CU_ASSERT_EQUAL(fcntl(fd, F_SETFL, fl), 0);
		d = usmc_dup(fd);
		CU_ASSERT_FATAL(d >= 0);
		CU_ASSERT_EQUAL(usmc_fd_flags(d) & USMC_FDF_KERNEL, 0);
		USMC_ASSERT_EQ(usmc_fcntl(d, F_GETFL) & O_NONBLOCK,
			       on ? O_NONBLOCK : 0);
		USMC_ASSERT_EQ(usmc_fcntl(fd, F_GETFL) & O_NONBLOCK,
			       on ? O_NONBLOCK : 0);
		usmc_close(d);
	}
	client_exchange(fd);
	usmc_close(fd);
	pthread_join(th, NULL);
	check_server(&s);
	usmc_close(s.lfd);
}

/* A socket whose epoll entry cannot go into the kernel set when it
 * becomes the kernel's for good stays usmc's (a shadow entry left behind
 * an fd marked the kernel's would never be served). The entry is added
 * while the handshake waits for the server (a shadow entry only); the
 * epoll fd's number then names a pipe, so the kernel's EPOLL_CTL_ADD
 * fails (EINVAL) when the server's Decline makes the socket plain TCP. */
static void test_kernel_mark_epoll_fails(void)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	struct epoll_event ev = {.events = EPOLLIN};
	struct pollfd pfd;
	usmc_clc_msg m;
	uint8_t buf[2048];
	char list[16];
	int lfd, fd, sfd, ep, p[2], r, n;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(lfd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_FATAL(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(listen(lfd, 1) == 0);
	CU_ASSERT_FATAL(getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
	snprintf(list, sizeof(list), "%u", ntohs(sa.sin_port));
	CU_ASSERT_FATAL(usmc_config_set("smc_ports", list) == 0);
	fd = usmc_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CU_ASSERT_FATAL(fd >= 0);
	r = usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	CU_ASSERT_FATAL(r == 0 || errno == EINPROGRESS);
	sfd = accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(sfd >= 0);
	/* the Proposal came: the client waits for the server's answer */
	pfd.fd = sfd;
	pfd.events = POLLIN;
	CU_ASSERT_FATAL(poll(&pfd, 1, 5000) == 1);
	CU_ASSERT_FATAL(recv(sfd, buf, sizeof(buf), 0) > 8);
	ep = epoll_create1(0);
	CU_ASSERT_FATAL(ep >= 0);
	CU_ASSERT_FATAL(usmc_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	CU_ASSERT_FATAL(pipe(p) == 0);
	CU_ASSERT_FATAL(dup2(p[0], ep) == ep);
	close(p[0]);
	usmc_clc_decline_init(&m, SMC_CLC_DECL_MEM, 1, NULL);
	n = (int)usmc_clc_encode(&m, buf, sizeof(buf));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_FATAL(send(sfd, buf, (size_t)n, 0) == n);
	pfd.fd = fd;
	pfd.events = POLLOUT;
	USMC_ASSERT_EQ(usmc_poll(&pfd, 1, 5000), 1);
	CU_ASSERT_EQUAL(usmc_send(fd, "hello", 5, MSG_NOSIGNAL), 5);
	CU_ASSERT_EQUAL(usmc_fd_flags(fd) & USMC_FDF_KERNEL, 0);
	/* still served, byte for byte, both ways */
	CU_ASSERT_EQUAL(recv(sfd, buf, 5, MSG_WAITALL), 5);
	CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
	CU_ASSERT_EQUAL(send(sfd, "world", 5, 0), 5);
	pfd.events = POLLIN;
	USMC_ASSERT_EQ(usmc_poll(&pfd, 1, 5000), 1);
	CU_ASSERT_EQUAL(usmc_recv(fd, buf, sizeof(buf), 0), 5);
	CU_ASSERT_EQUAL(memcmp(buf, "world", 5), 0);
	usmc_close(fd);
	usmc_close(ep);
	close(p[1]);
	close(sfd);
	close(lfd);
}

/* A plain TCP client on an SMC port: the server peeks, sees no
 * eyecatcher, falls back without consuming a byte. */
static void test_tcp_client_on_smc_port(void)
{
	srv s = {0};
	pthread_t th;
	uint16_t port;
	int fd;

	s.lfd = listener(1, &port);
	pthread_create(&th, NULL, serve, &s);
	fd = tcp_connect(0, port);
	client_exchange(fd);
	close(fd);
	pthread_join(th, NULL);
	check_server(&s);
	USMC_ASSERT_EQ(s.info.mode, USMC_SOCK_TCP);
	USMC_ASSERT_EQ(s.info.fallback_code, 0x03010000);
	CU_ASSERT_STRING_EQUAL(s.info.fallback_detail,
			       "peer sent no CLC proposal");
	usmc_close(s.lfd);
}

/* A silent TCP client (server-speaks-first protocols): the server falls
 * back after USMC_CLC_WAIT_MS and can then talk first. */
static void test_silent_client(void)
{
	uint16_t port;
	int lfd, fd, cfd;
	usmc_sock_info si;
	double t0;

	CU_ASSERT_FATAL(usmc_config_set("clc_wait_ms", "300") == 0);
	lfd = listener(1, &port);
	fd = tcp_connect(0, port);
	t0 = now_s();
	cfd = usmc_accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(cfd >= 0);
	CU_ASSERT(now_s() - t0 >= 0.25);
	CU_ASSERT(now_s() - t0 < 5);
	CU_ASSERT_EQUAL(usmc_get_info(cfd, &si), 0);
	USMC_ASSERT_EQ(si.mode, USMC_SOCK_TCP);
	CU_ASSERT_STRING_EQUAL(si.fallback_detail, "peer sent no CLC proposal");
	CU_ASSERT_EQUAL(
		usmc_test_send_pat(usmc_test_usmc_send, cfd, DOWN_LEN, 2), 0);
	usmc_close(cfd);
	USMC_ASSERT_EQ(usmc_test_recv_pat(usmc_test_usmc_recv, fd, 2, "client"),
		       DOWN_LEN);
	close(fd);
	usmc_close(lfd);
	usmc_config_set("clc_wait_ms", "2000");
}

/* The transport cannot be opened: the client declines (NOSMCRDEV), the
 * server records the peer's decline; both keep the TCP connection. */
static void test_no_transport(void)
{
	srv s = {0};
	pthread_t th;
	usmc_sock_info ci;
	uint16_t port;
	int fd;

	CU_ASSERT_FATAL(usmc_config_set("transport", "no-such-rnic") == 0);
	s.lfd = listener(1, &port);
	pthread_create(&th, NULL, serve, &s);
	fd = tcp_connect(1, port);
	CU_ASSERT_EQUAL(usmc_get_info(fd, &ci), 0);
	USMC_ASSERT_EQ(ci.mode, USMC_SOCK_TCP);
	USMC_ASSERT_EQ(ci.fallback_code, 0x03030002);
	CU_ASSERT_STRING_EQUAL(ci.fallback_name, "NOSMCRDEV");
	CU_ASSERT(strstr(ci.fallback_detail, "no-such-rnic") != NULL);
	client_exchange(fd);
	usmc_close(fd);
	pthread_join(th, NULL);
	check_server(&s);
	USMC_ASSERT_EQ(s.info.mode, USMC_SOCK_TCP);
	USMC_ASSERT_EQ(s.info.fallback_code, 0x05000000);
	USMC_ASSERT_EQ(s.info.peer_diagnosis, 0x03030002);
	usmc_close(s.lfd);
	usmc_config_set("transport", "softroce");
}

/* Nonblocking connect on an SMC port: EINPROGRESS, POLLOUT once the
 * handshake is over, SO_ERROR 0, then data. */
static void test_nonblocking_connect(void)
{
	srv s = {0};
	pthread_t th;
	struct sockaddr_in sa = {0};
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	usmc_sock_info ci;
	uint16_t port;
	int fd, r, err = -1;

	CU_ASSERT_FATAL(usmc_config_set("transport", "no-such-rnic") == 0);
	s.lfd = listener(1, &port);
	pthread_create(&th, NULL, serve, &s);
	fd = usmc_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CU_ASSERT_FATAL(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	CU_ASSERT(r == 0 || errno == EINPROGRESS);
	pfd.fd = fd;
	pfd.events = POLLOUT;
	USMC_ASSERT_EQ(usmc_poll(&pfd, 1, 5000), 1);
	CU_ASSERT(pfd.revents & POLLOUT);
	CU_ASSERT_EQUAL(usmc_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len),
			0);
	USMC_ASSERT_EQ(err, 0);
	CU_ASSERT_EQUAL(usmc_get_info(fd, &ci), 0);
	USMC_ASSERT_EQ(ci.mode, USMC_SOCK_TCP);
	CU_ASSERT_EQUAL(usmc_set_nonblock(fd, 0), 0);
	CU_ASSERT_EQUAL(usmc_fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	client_exchange(fd);
	usmc_close(fd);
	pthread_join(th, NULL);
	check_server(&s);
	usmc_close(s.lfd);
	usmc_config_set("transport", "softroce");
}

typedef struct nb_watch {
	int fd;
	volatile int stop;
	long samples, blocking;
} nb_watch;

/* Reads the kernel's flag (libc's fcntl: no preload here) as fast as it
 * can, counting every moment the listener's file was blocking. */
static void *nb_watcher(void *arg)
{
	nb_watch *w = arg;

	while (!w->stop) {
		int fl = fcntl(w->fd, F_GETFL);

		w->samples++;
		if (fl >= 0 && !(fl & O_NONBLOCK))
			w->blocking++;
		/* valgrind runs one thread at a time and would hand its lock
		 * back to this one, syscall after syscall, for minutes */
		sched_yield();
	}
	return NULL;
}

/* FIONBIO, F_SETFL and usmc_set_nonblock toggling an SMC listener while
 * connections arrive: the app's view follows each call, the kernel's
 * file never turns blocking (its progress thread accepts on it; an
 * FIONBIO(0) made it blocking between two ioctls), and every connection
 * is served. A call the kernel refuses (a closed fd) leaves the record
 * as it was. */
static void test_nonblock_toggle_listener(void)
{
	nb_watch w = {0};
	pthread_t th;
	uint16_t port;
	int lfd, i, served = 0, fd, nb;

	lfd = listener(1, &port);
	w.fd = lfd;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, nb_watcher, &w) == 0);
	for (i = 0; i < 60000; i++) {
		int on = i & 1, via = (i >> 1) % 3, r;

		if (via == 0)
			r = usmc_ioctl(lfd, FIONBIO, &on);
		else if (via == 1)
			r = usmc_fcntl(lfd, F_SETFL, on ? O_NONBLOCK : 0);
		else
			r = usmc_set_nonblock(lfd, on);
		USMC_ASSERT_EQ(r, 0);
		USMC_ASSERT_EQ(!!(usmc_fcntl(lfd, F_GETFL) & O_NONBLOCK), on);
		if (i % 6000 == 5999) {
			/* a TCP client on the SMC port: the listener's wait
			 * for CLC ends in fallback, and it must be accepted */
			int c = tcp_connect(0, port), a;

			CU_ASSERT_EQUAL(send(c, "x", 1, 0), 1);
			USMC_ASSERT_EQ(usmc_set_nonblock(lfd, 0), 0);
			a = usmc_accept(lfd, NULL, NULL);
			CU_ASSERT(a >= 0);
			if (a >= 0) {
				char ch = 0;

				USMC_ASSERT_EQ(usmc_recv(a, &ch, 1, 0), 1);
				USMC_ASSERT_EQ(ch, 'x');
				served++;
				usmc_close(a);
			}
			close(c);
		}
	}
	w.stop = 1;
	pthread_join(th, NULL);
	fprintf(stderr, "  %ld samples of the kernel flag, %ld blocking\n",
		w.samples, w.blocking);
	CU_ASSERT(w.samples > 0);
	USMC_ASSERT_EQ(w.blocking, 0);
	USMC_ASSERT_EQ(served, 10);
	usmc_close(lfd);

	/* a record whose kernel fd is gone: every call fails, none
	 * changes it; a nonblocking socket put on the number then shows
	 * whether F_GETFL answered from the record (blocking) */
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(fd >= 0);
	nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CU_ASSERT_FATAL(nb >= 0);
	close(fd);
	USMC_ASSERT_EQ(usmc_set_nonblock(fd, 1), -1);
	USMC_ASSERT_EQ(errno, EBADF);
	{
		int one = 1;

		USMC_ASSERT_EQ(usmc_ioctl(fd, FIONBIO, &one), -1);
		USMC_ASSERT_EQ(errno, EBADF);
	}
	USMC_ASSERT_EQ(usmc_fcntl(fd, F_SETFL, O_NONBLOCK), -1);
	USMC_ASSERT_EQ(errno, EBADF);
	USMC_ASSERT_EQ(dup2(nb, fd), fd);
	close(nb);
	USMC_ASSERT_EQ(usmc_fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	usmc_close(fd);
}

/* Nonblocking accept on an empty SMC listener: EAGAIN, then POLLIN. */
static void test_nonblocking_accept(void)
{
	struct pollfd pfd;
	uint16_t port;
	int lfd, fd, cfd;

	lfd = listener(1, &port);
	CU_ASSERT_EQUAL(usmc_set_nonblock(lfd, 1), 0);
	CU_ASSERT_EQUAL(usmc_accept(lfd, NULL, NULL), -1);
	USMC_ASSERT_EQ(errno, EAGAIN);
	fd = tcp_connect(0, port);
	CU_ASSERT_EQUAL(send(fd, "x", 1, 0), 1);
	pfd.fd = lfd;
	pfd.events = POLLIN;
	USMC_ASSERT_EQ(usmc_poll(&pfd, 1, 5000), 1);
	cfd = usmc_accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	CU_ASSERT_FATAL(cfd >= 0);
	USMC_ASSERT_EQ(fcntl(cfd, F_GETFL) & O_NONBLOCK, 0);
	CU_ASSERT(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	{
		char c = 0;

		USMC_ASSERT_EQ(usmc_recv(cfd, &c, 1, 0), 1);
		USMC_ASSERT_EQ(c, 'x');
	}
	usmc_close(cfd);
	close(fd);
	usmc_close(lfd);
}

/* Connect to an SMC port where nobody listens: the kernel's error. */
static void test_refused(void)
{
	struct sockaddr_in sa = {0};
	uint16_t port;
	int lfd = listener(1, &port), fd;

	usmc_close(lfd); /* the port is now closed but still in the list */
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL(usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa)),
			-1);
	USMC_ASSERT_EQ(errno, ECONNREFUSED);
	usmc_close(fd);
}

/* A kernel TCP server on a port the client calls SMC (the explicit-mode
 * limit): it reads the Proposal and answers with non-CLC bytes, or just
 * closes. connect fails with a clear error, it never hangs. */
typedef struct bad_srv {
	int lfd;
	int close_only;
	ssize_t got;
} bad_srv;

static void *bad_serve(void *arg)
{
	bad_srv *b = arg;
	uint8_t buf[2048];
	int fd = accept(b->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	b->got = recv(fd, buf, sizeof(buf), 0);
	if (!b->close_only && send(fd, "HELLO, WORLD!\r\n", 15, 0) != 15)
		b->got = -1;
	if (!b->close_only)
		usleep(200 * 1000);
	close(fd);
	return NULL;
}

static void test_server_without_clc(void)
{
	char port[16];

	snprintf(port, sizeof(port), "%d", 20000 + (getpid() * 17) % 20000);
	CU_ASSERT_FATAL(usmc_config_set("softroce_port", port) == 0);
	for (int close_only = 0; close_only < 2; close_only++) {
		struct sockaddr_in sa = {0};
		socklen_t len = sizeof(sa);
		bad_srv b = {.close_only = close_only};
		pthread_t th;
		char list[16];
		int fd, r, e;
		double t0;

		b.lfd = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CU_ASSERT_FATAL(
			bind(b.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
		CU_ASSERT_FATAL(listen(b.lfd, 4) == 0);
		getsockname(b.lfd, (struct sockaddr *)&sa, &len);
		snprintf(list, sizeof(list), "%u", ntohs(sa.sin_port));
		CU_ASSERT_FATAL(usmc_config_set("smc_ports", list) == 0);
		pthread_create(&th, NULL, bad_serve, &b);
		fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
		t0 = now_s();
		r = usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		e = errno;
		CU_ASSERT(now_s() - t0 < 5);
		USMC_ASSERT_EQ(r, -1);
		if (close_only)
			USMC_ASSERT_EQ(e, ECONNRESET);
		else
			USMC_ASSERT_EQ(e, EPROTO);
		/* and the socket stays failed */
		CU_ASSERT_EQUAL(usmc_send(fd, "x", 1, MSG_NOSIGNAL), -1);
		usmc_close(fd);
		pthread_join(th, NULL);
		CU_ASSERT(b.got > 8); /* it did receive a Proposal */
		close(b.lfd);
	}
}

/* A client that starts with the eyecatcher and then sends garbage: the
 * server drops that connection (as the kernel does on a CLC protocol
 * error) and keeps serving others. */
static void test_garbage_clc_to_server(void)
{
	static const uint8_t junk[] = {0xE2, 0xD4, 0xC3, 0xD9, 0x7f, 0x00,
				       0x10, 0x20, 'j',	 'u',  'n',  'k'};
	srv s = {0};
	pthread_t th;
	uint16_t port;
	char c;
	int fd;

	s.lfd = listener(1, &port);
	fd = tcp_connect(0, port);
	CU_ASSERT_EQUAL(send(fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	/* the server closes it: EOF (or a reset) */
	CU_ASSERT(recv(fd, &c, 1, 0) <= 0);
	close(fd);
	/* the listener still works */
	pthread_create(&th, NULL, serve, &s);
	fd = tcp_connect(0, port);
	client_exchange(fd);
	close(fd);
	pthread_join(th, NULL);
	check_server(&s);
	usmc_close(s.lfd);
}

/* usmc_poll over a kernel fd (a pipe) and a user-space one (an SMC
 * listener): each wakes the same poll call. */
typedef struct later {
	int pipe_w;
	uint16_t port;
	int fd;
} later;

static void *write_later(void *arg)
{
	later *l = arg;

	usleep(100 * 1000);
	if (write(l->pipe_w, "p", 1) != 1)
		l->fd = -2;
	return NULL;
}

static void *connect_later(void *arg)
{
	later *l = arg;
	struct sockaddr_in sa = {0};

	usleep(100 * 1000);
	l->fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons(l->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(l->fd, "data", 4, 0) != 4) {
		close(l->fd);
		l->fd = -1;
	}
	return NULL;
}

static void test_poll_mixed(void)
{
	struct pollfd p[2];
	int pp[2], lfd, cfd;
	later l = {0};
	pthread_t th;
	char c;

	CU_ASSERT_FATAL(pipe(pp) == 0);
	lfd = listener(1, &l.port);
	l.pipe_w = pp[1];
	p[0].fd = pp[0];
	p[0].events = POLLIN;
	p[1].fd = lfd;
	p[1].events = POLLIN;
	/* nothing ready: times out */
	USMC_ASSERT_EQ(usmc_poll(p, 2, 50), 0);
	/* the kernel fd wakes it */
	pthread_create(&th, NULL, write_later, &l);
	USMC_ASSERT_EQ(usmc_poll(p, 2, 5000), 1);
	CU_ASSERT(p[0].revents & POLLIN);
	USMC_ASSERT_EQ(p[1].revents, 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(read(pp[0], &c, 1), 1);
	/* the user-space listener wakes it */
	pthread_create(&th, NULL, connect_later, &l);
	USMC_ASSERT_EQ(usmc_poll(p, 2, 5000), 1);
	USMC_ASSERT_EQ(p[0].revents, 0);
	CU_ASSERT(p[1].revents & POLLIN);
	pthread_join(th, NULL);
	CU_ASSERT_FATAL(l.fd >= 0);
	cfd = usmc_accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(cfd >= 0);
	CU_ASSERT_EQUAL(usmc_recv(cfd, &c, 1, 0), 1);
	USMC_ASSERT_EQ(c, 'd');
	usmc_close(cfd);
	close(l.fd);
	usmc_close(lfd);
	close(pp[0]);
	close(pp[1]);
}

static const char *argv0;

/* The program's own exit-time work, registered before its first socket:
 * longer than the publisher's period. */
static void slow_exit(void)
{
	struct timespec ts = {0, 700 * 1000000L};

	nanosleep(&ts, NULL);
}

/* The child of test_stat_table_at_exit (this program, run with
 * --stat-child): a connection to itself (the port is not an SMC port:
 * TCP), then exit. */
static int stat_child(void)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int lfd, cfd;

	atexit(slow_exit);
	lfd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || usmc_bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) ||
	    usmc_listen(lfd, 1))
		return 2;
	cfd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0 || usmc_connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    usmc_accept(lfd, NULL, NULL) < 0)
		return 3;
	return 0;
}

/* A process that exits (not _exit) takes its usmc-stat table with it
 * (docs/stat.md), however long its atexit handlers take: the table is
 * removed after them, and none is written after that. A fresh process
 * (exec: under valgrind it runs natively). */
static void test_stat_table_at_exit(void)
{
	const char *dir = getenv("USMC_STAT_DIR");
	char path[512];
	int st = -1;
	pid_t pid;

	CU_ASSERT_FATAL(dir && *dir);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		execl(argv0, argv0, "--stat-child", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snprintf(path, sizeof(path), "%s/usmc-stat.%d", dir, (int)pid);
	if (access(path, F_OK) == 0) {
		CU_FAIL("the table of a process that exited is still there");
		unlink(path);
	}
}

static CU_TestInfo tests[] = {
	{"client to a non-SMC port sends no CLC", test_not_smc_port},
	{"F_GETFL on a dup of a kernel's fd", test_kernel_fd_dup_flags},
	{"an epoll entry that cannot move keeps the fd usmc's",
	 test_kernel_mark_epoll_fails},
	{"TCP client on an SMC port: server falls back",
	 test_tcp_client_on_smc_port},
	{"silent TCP client: fallback after the wait", test_silent_client},
	{"no transport: NOSMCRDEV decline, both sides TCP", test_no_transport},
	{"nonblocking connect", test_nonblocking_connect},
	{"nonblocking accept", test_nonblocking_accept},
	{"O_NONBLOCK toggles on an SMC listener",
	 test_nonblock_toggle_listener},
	{"connection refused", test_refused},
	{"server that speaks no CLC: connect fails", test_server_without_clc},
	{"garbage CLC to a server: dropped, others served",
	 test_garbage_clc_to_server},
	{"poll over kernel and user-space fds", test_poll_mixed},
	{"a process's usmc-stat table goes with it at exit",
	 test_stat_table_at_exit},
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	usmc_test_suite suites[] = {
		{"runtime fallback", tests},
		{NULL, NULL},
	};

	/* Explicit mode: these cases are about the rules alone. Where the
	 * SMC TCP option loads (root), a server that speaks no CLC would
	 * be found out by its SYN-ACK instead (tests/preload/test_synopt). */
	setenv("USMC_SYNOPT", "off", 1);
	if (argc == 2 && !strcmp(argv[1], "--stat-child"))
		return stat_child();
	argv0 = argv[0];
	usmc_test_stat_dir();
	return usmc_test_main(suites);
}
