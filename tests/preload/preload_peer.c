/* SPDX-License-Identifier: MIT */
/*
 * A plain TCP program for the preload tests: only libc socket calls, no
 * usmc API. Run under usmc-run (or not) as a server and a client, one
 * connection per run, one CASE each; every byte that crosses is checked
 * against a pattern (or, for sendfile, written out for sha256sum).
 *
 *   preload_peer server PORT CASE [ARG]
 *   preload_peer client HOST PORT CASE [ARG] [BIND_ADDR]
 *
 * Exit 0 and "CASE: ok ..." on stdout when every check passed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* glibc's own sigaction, which an interposer does not see */
int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);

/* glibc's fortify entry points, called directly so the test covers them */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *alen);

static const char *tcase = "?";

static void fail(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fprintf(stderr, "%s: FAIL: ", tcase);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %d %s)\n", e, strerror(e));
	exit(1);
}

#define CHECK(c, ...)                      \
	do {                               \
		if (!(c))                  \
			fail(__VA_ARGS__); \
	} while (0)

static uint8_t pat(uint64_t i, unsigned seed)
{
	return (uint8_t)((i * 131u + seed) ^ (i >> 9) ^ (i >> 17));
}

static void fill(uint8_t *b, size_t n, uint64_t off, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(off + i, seed);
}

static void verify(const uint8_t *b, size_t n, uint64_t off, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(off + i, seed))
			fail("byte %llu is 0x%02x, want 0x%02x",
			     (unsigned long long)(off + i), b[i],
			     pat(off + i, seed));
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes |n| pattern bytes with write(); |chunk| per call. */
static void send_pattern(int fd, uint64_t n, unsigned seed, size_t chunk)
{
	uint8_t *b = malloc(chunk);
	uint64_t off = 0;

	CHECK(b, "malloc");
	while (off < n) {
		size_t k = n - off < chunk ? (size_t)(n - off) : chunk;
		ssize_t w;

		fill(b, k, off, seed);
		w = write(fd, b, k);
		CHECK(w > 0, "write at %llu", (unsigned long long)off);
		off += (uint64_t)w;
	}
	free(b);
}

/* Reads exactly |n| pattern bytes with read(). */
static void recv_pattern(int fd, uint64_t n, unsigned seed, size_t chunk)
{
	uint8_t *b = malloc(chunk);
	uint64_t off = 0;

	CHECK(b, "malloc");
	while (off < n) {
		size_t k = n - off < chunk ? (size_t)(n - off) : chunk;
		ssize_t r = read(fd, b, k);

		CHECK(r > 0, "read at %llu of %llu: %zd",
		      (unsigned long long)off, (unsigned long long)n, r);
		verify(b, (size_t)r, off, seed);
		off += (uint64_t)r;
	}
	free(b);
}

static void expect_eof(int fd)
{
	char c;
	ssize_t r = read(fd, &c, 1);

	CHECK(r == 0, "expected EOF, read gave %zd", r);
}

/* Waits until |fd| has |ev| with poll(), bounded. */
static void wait_fd(int fd, short ev)
{
	struct pollfd p = {.fd = fd, .events = ev};
	int r = poll(&p, 1, 20000);

	CHECK(r == 1 && (p.revents & ev), "poll for 0x%x: %d revents 0x%x", ev,
	      r, p.revents);
}

/* ---------- cases: client side, then server side ---------- */

#define MIB (1024 * 1024)

/* rw: write/read both ways (1 MiB each, odd chunk sizes) */
static void cli_rw(int fd)
{
	send_pattern(fd, MIB, 1, 7001);
	recv_pattern(fd, MIB, 2, 65536);
	printf("rw: ok 1048576 bytes each way\n");
}

static void srv_rw(int fd)
{
	recv_pattern(fd, MIB, 1, 4093);
	send_pattern(fd, MIB, 2, 9999);
	printf("rw: ok\n");
}

/* calls: every send and receive family call, in rotation */
#define CALLS_ROUNDS 64
#define CALLS_LEN    3000

static void send_rot(int fd, int i, uint8_t *b, size_t n)
{
	ssize_t w = -1;

	switch (i % 5) {
	case 0:
		w = send(fd, b, n, MSG_NOSIGNAL);
		break;
	case 1:
		w = sendto(fd, b, n, 0, NULL, 0);
		break;
	case 2: {
		struct iovec v[3] = {
			{b, 1}, {b + 1, n / 2}, {b + 1 + n / 2, n - 1 - n / 2}};
		struct msghdr m = {.msg_iov = v, .msg_iovlen = 3};

		w = sendmsg(fd, &m, 0);
		break;
	}
	case 3: {
		struct iovec v[2] = {{b, n / 3}, {b + n / 3, n - n / 3}};

		w = writev(fd, v, 2);
		break;
	}
	default:
		w = write(fd, b, n);
	}
	CHECK(w == (ssize_t)n, "send call %d wrote %zd of %zu", i % 5, w, n);
}

/* one receive call of the rotation; returns bytes */
static ssize_t recv_rot(int fd, int i, uint8_t *b, size_t n)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	switch (i % 9) {
	case 0:
		return recv(fd, b, n, 0);
	case 1:
		return recvfrom(fd, b, n, 0, NULL, NULL);
	case 2: {
		ssize_t r = recvfrom(fd, b, n, 0, (struct sockaddr *)&sa, &sl);

		CHECK(r < 0 || sl == 0 || sl == sizeof(sa),
		      "recvfrom address length %u", sl);
		return r;
	}
	case 3: {
		struct iovec v[2] = {{b, n / 2}, {b + n / 2, n - n / 2}};
		struct msghdr m = {.msg_iov = v, .msg_iovlen = 2};

		return recvmsg(fd, &m, 0);
	}
	case 4: {
		struct iovec v[3] = {{b, 1}, {b + 1, 5}, {b + 6, n - 6}};

		return readv(fd, v, 3);
	}
	case 5:
		return __read_chk(fd, b, n, CALLS_LEN);
	case 6:
		return __recv_chk(fd, b, n, CALLS_LEN, 0);
	case 7:
		return __recvfrom_chk(fd, b, n, CALLS_LEN, 0, NULL, NULL);
	default:
		return read(fd, b, n);
	}
}

static void recv_all_rot(int fd, uint64_t total, unsigned seed)
{
	uint8_t b[CALLS_LEN];
	uint64_t off = 0;
	int i = 0;

	while (off < total) {
		size_t k = total - off < sizeof(b) ? (size_t)(total - off)
						   : sizeof(b);
		ssize_t r = recv_rot(fd, i, b, k);

		CHECK(r > 0, "receive call %d at %llu: %zd", i % 9,
		      (unsigned long long)off, r);
		verify(b, (size_t)r, off, seed);
		off += (uint64_t)r;
		i++;
	}
}

static void send_all_rot(int fd, unsigned seed)
{
	uint8_t b[CALLS_LEN];

	for (int i = 0; i < CALLS_ROUNDS; i++) {
		fill(b, sizeof(b), (uint64_t)i * sizeof(b), seed);
		send_rot(fd, i, b, sizeof(b));
	}
}

static void cli_calls(int fd)
{
	send_all_rot(fd, 3);
	recv_all_rot(fd, (uint64_t)CALLS_ROUNDS * CALLS_LEN, 4);
	printf("calls: ok send/sendto/sendmsg/writev/write and "
	       "recv/recvfrom/recvmsg/readv/__read_chk/__recv_chk/"
	       "__recvfrom_chk/read\n");
}

static void srv_calls(int fd)
{
	recv_all_rot(fd, (uint64_t)CALLS_ROUNDS * CALLS_LEN, 3);
	send_all_rot(fd, 4);
	printf("calls: ok\n");
}

/* wait by one of poll/ppoll/select/pselect, rotating */
static void wait_rot(int fd, int i, int for_write)
{
	short ev = for_write ? POLLOUT : POLLIN;
	int r;

	switch (i % 4) {
	case 0: {
		struct pollfd p = {.fd = fd, .events = ev};

		r = poll(&p, 1, 20000);
		CHECK(r == 1 && (p.revents & ev), "poll %d 0x%x", r, p.revents);
		break;
	}
	case 1: {
		struct pollfd p = {.fd = fd, .events = ev};
		struct timespec ts = {20, 0};
		sigset_t m;

		sigemptyset(&m);
		r = ppoll(&p, 1, &ts, &m);
		CHECK(r == 1 && (p.revents & ev), "ppoll %d 0x%x", r,
		      p.revents);
		break;
	}
	case 2: {
		fd_set s;
		struct timeval tv = {20, 0};

		FD_ZERO(&s);
		FD_SET(fd, &s);
		r = select(fd + 1, for_write ? NULL : &s, for_write ? &s : NULL,
			   NULL, &tv);
		CHECK(r == 1 && FD_ISSET(fd, &s), "select %d", r);
		break;
	}
	default: {
		fd_set s;
		struct timespec ts = {20, 0};

		FD_ZERO(&s);
		FD_SET(fd, &s);
		r = pselect(fd + 1, for_write ? NULL : &s,
			    for_write ? &s : NULL, NULL, &ts, NULL);
		CHECK(r == 1 && FD_ISSET(fd, &s), "pselect %d", r);
		break;
	}
	}
}

/* nonblocking I/O driven by the four waits; both directions at once */
static void nb_duplex(int fd, unsigned sseed, unsigned rseed, uint64_t n)
{
	uint8_t sb[8192], rb[5000];
	uint64_t soff = 0, roff = 0;
	int i = 0, eagain = 0;
	uint64_t end = now_ms() + 60000;

	while (soff < n || roff < n) {
		CHECK(now_ms() < end, "nonblocking transfer stalled");
		if (soff < n) {
			size_t k = n - soff < sizeof(sb) ? (size_t)(n - soff)
							 : sizeof(sb);
			ssize_t w;

			fill(sb, k, soff, sseed);
			w = write(fd, sb, k);
			if (w > 0)
				soff += (uint64_t)w;
			else {
				CHECK(errno == EAGAIN, "nonblocking write");
				eagain++;
			}
		}
		if (roff < n) {
			ssize_t r = read(fd, rb, sizeof(rb));

			if (r > 0) {
				verify(rb, (size_t)r, roff, rseed);
				roff += (uint64_t)r;
			} else {
				CHECK(r < 0 && errno == EAGAIN,
				      "nonblocking read %zd", r);
				eagain++;
				/* wait for either direction's progress */
				if (soff >= n)
					wait_rot(fd, i++, 0);
				else {
					struct pollfd p = {.fd = fd,
							   .events = POLLIN |
								     POLLOUT};

					poll(&p, 1, 1000);
				}
			}
		}
	}
	printf("nonblock: %d EAGAINs, %d waits\n", eagain, i);
}

static void check_flags(int fd, int want_nb, int want_cloexec)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);

	CHECK(fl >= 0 && !!(fl & O_NONBLOCK) == want_nb,
	      "F_GETFL 0x%x, want O_NONBLOCK %d", fl, want_nb);
	CHECK(fdf >= 0 && !!(fdf & FD_CLOEXEC) == want_cloexec,
	      "F_GETFD 0x%x, want FD_CLOEXEC %d", fdf, want_cloexec);
}

static void cli_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	CHECK(fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0, "F_SETFL");
	CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0, "F_SETFD");
	check_flags(fd, 1, 1);
	nb_duplex(fd, 5, 6, 2 * MIB);
	CHECK(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0, "F_SETFL back");
	check_flags(fd, 0, 1);
	/* blocking again: a blocking read waits for the server's last word */
	recv_pattern(fd, 4096, 7, 4096);
	printf("nonblock: ok 2 MiB each way, poll/ppoll/select/pselect\n");
}

static void srv_nonblock(int fd)
{
	check_flags(fd, 1, 1); /* accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) */
	nb_duplex(fd, 6, 5, 2 * MIB);
	/* ioctl FIONBIO back to blocking */
	{
		int off = 0;

		CHECK(ioctl(fd, FIONBIO, &off) == 0, "FIONBIO");
		check_flags(fd, 0, 1);
	}
	sleep(1); /* the client must block in its read */
	send_pattern(fd, 4096, 7, 4096);
	printf("nonblock: ok\n");
}

/* epoll: level, edge, one-shot; a pipe in the same set */
/* epoll_wait, epoll_pwait and epoll_pwait2 in turn */
static int ep_wait1(int ep, struct epoll_event *ev, int ms)
{
	static int turn;
	int r;

	do {
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		sigset_t m;

		sigemptyset(&m);
		switch (turn++ % 3) {
		case 0:
			r = epoll_wait(ep, ev, 1, ms);
			break;
		case 1:
			r = epoll_pwait(ep, ev, 1, ms, &m);
			break;
		default:
			r = epoll_pwait2(ep, ev, 1, ms < 0 ? NULL : &ts, &m);
		}
	} while (r < 0 && errno == EINTR);
	CHECK(r >= 0, "epoll_wait");
	return r;
}

static void cli_epoll(int fd)
{
	char ack;

	/* step 1: after the server's go, 1000 bytes; wait for its ack */
	CHECK(read(fd, &ack, 1) == 1 && ack == 'G', "go");
	send_pattern(fd, 1000, 8, 1000);
	CHECK(read(fd, &ack, 1) == 1 && ack == 'A', "ack 1");
	/* step 2: more data after a quiet time: a new edge */
	send_pattern(fd, 500, 9, 500);
	CHECK(read(fd, &ack, 1) == 1 && ack == 'B', "ack 2");
	/* step 3: a bulk stream read in small chunks by the server */
	send_pattern(fd, 4 * MIB, 10, 32768);
	recv_pattern(fd, 4 * MIB, 11, 65536);
	printf("epoll: ok\n");
}

/* Reads |want| bytes in |chunk| pieces as epoll says; edge mode reads
 * until EAGAIN after each event. */
static void ep_stream(int ep, int fd, uint64_t want, unsigned seed,
		      size_t chunk, int mode)
{
	uint8_t b[65536];
	uint64_t off = 0;
	struct epoll_event ev;

	while (off < want) {
		int n = ep_wait1(ep, &ev, 20000);

		CHECK(n == 1 && (ev.events & EPOLLIN) && ev.data.u64 == 42,
		      "epoll stream: n %d events 0x%x data %llu", n, ev.events,
		      (unsigned long long)ev.data.u64);
		for (;;) {
			ssize_t r = read(fd, b, chunk);

			if (r < 0 && errno == EAGAIN)
				break;
			CHECK(r > 0, "read in epoll stream %zd", r);
			verify(b, (size_t)r, off, seed);
			off += (uint64_t)r;
			if (mode == 0 || off == want)
				break; /* level: one chunk per wake-up */
		}
		if (mode == 2) {
			struct epoll_event m = {.events =
							EPOLLIN | EPOLLONESHOT,
						.data.u64 = 42};

			CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m) == 0,
			      "rearm");
		}
	}
}

static void srv_epoll(int fd, const char *mode_s)
{
	int mode = !strcmp(mode_s, "et")	? 1
		   : !strcmp(mode_s, "oneshot") ? 2
						: 0;
	uint32_t flags = mode == 1 ? EPOLLET : mode == 2 ? EPOLLONESHOT : 0;
	int ep = epoll_create1(EPOLL_CLOEXEC), pfd[2], n;
	struct epoll_event ev = {.events = EPOLLIN | flags, .data.u64 = 42};
	struct epoll_event pe = {.events = EPOLLIN, .data.u64 = 7};
	uint8_t b[1000];
	ssize_t r;

	CHECK(ep >= 0 && pipe(pfd) == 0, "epoll_create1/pipe");
	CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0,
	      "nonblock");
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "ADD socket");
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST,
	      "second ADD must give EEXIST");
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &pe) == 0, "ADD pipe");
	/* the pipe wakes the same wait */
	CHECK(write(pfd[1], "p", 1) == 1, "pipe write");
	n = ep_wait1(ep, &ev, 5000);
	CHECK(n == 1 && ev.data.u64 == 7, "pipe event: n %d data %llu", n,
	      (unsigned long long)ev.data.u64);
	CHECK(read(pfd[0], b, 1) == 1, "pipe read");
	n = ep_wait1(ep, &ev, 200);
	CHECK(n == 0, "nothing is ready yet (%d, data %llu)", n,
	      (unsigned long long)ev.data.u64);
	CHECK(write(fd, "G", 1) == 1, "go");
	/* step 1 */
	n = ep_wait1(ep, &ev, 20000);
	CHECK(n == 1 && ev.data.u64 == 42 && (ev.events & EPOLLIN),
	      "first event: n %d", n);
	/* wait until all 1000 bytes are there, take 10 */
	for (uint64_t end = now_ms() + 10000;;) {
		int q = 0;

		CHECK(ioctl(fd, FIONREAD, &q) == 0, "FIONREAD");
		if (q == 1000)
			break;
		CHECK(now_ms() < end, "only %d of 1000 bytes arrived", q);
		usleep(1000);
	}
	CHECK(read(fd, b, 10) == 10, "read 10");
	verify(b, 10, 0, 8);
	n = ep_wait1(ep, &ev, 300);
	if (mode == 0)
		CHECK(n == 1 && (ev.events & EPOLLIN),
		      "level-triggered: data left must report again (%d)", n);
	else
		CHECK(n == 0,
		      "%s: no new data, no new event (got %d, events 0x%x)",
		      mode_s, n, ev.events);
	r = read(fd, b, sizeof(b));
	CHECK(r == 990, "rest %zd", r);
	verify(b, 990, 10, 8);
	CHECK(read(fd, b, 1) < 0 && errno == EAGAIN, "drained: EAGAIN");
	if (mode == 2) {
		struct epoll_event m = {.events = EPOLLIN | EPOLLONESHOT,
					.data.u64 = 42};

		/* disabled until MOD, even when data comes (step 2) */
		CHECK(write(fd, "A", 1) == 1, "ack");
		n = ep_wait1(ep, &ev, 1000);
		CHECK(n == 0, "one-shot fired again without MOD");
		CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m) == 0, "MOD");
	} else {
		CHECK(write(fd, "A", 1) == 1, "ack");
	}
	/* step 2: a new arrival is a new edge */
	n = ep_wait1(ep, &ev, 20000);
	CHECK(n == 1 && (ev.events & EPOLLIN), "step 2 event: %d", n);
	for (uint64_t got = 0; got < 500;) {
		r = read(fd, b, 500 - got);
		if (r < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		CHECK(r > 0, "step 2 read");
		verify(b, (size_t)r, got, 9);
		got += (uint64_t)r;
	}
	if (mode == 2) {
		struct epoll_event m = {.events = EPOLLIN | EPOLLONESHOT,
					.data.u64 = 42};

		CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m) == 0, "MOD 2");
	}
	CHECK(write(fd, "B", 1) == 1, "ack 2");
	/* step 3: 4 MiB read 1000 bytes at a time */
	ep_stream(ep, fd, 4 * MIB, 10, 1000, mode);
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) == 0, "DEL");
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL) < 0 && errno == ENOENT,
	      "second DEL must give ENOENT");
	CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0,
	      "blocking");
	send_pattern(fd, 4 * MIB, 11, 65536);
	close(pfd[0]);
	close(pfd[1]);
	close(ep);
	printf("epoll-%s: ok\n", mode_s);
}

/* epoll for writing, edge-triggered: fill until EAGAIN, wait for EPOLLOUT */
static void cli_epollout(int fd)
{
	int ep = epoll_create(1);
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLET, .data.fd = fd};
	uint8_t b[16384];
	uint64_t off = 0, n = 8 * MIB;
	int waits = 0;

	CHECK(ep >= 0, "epoll_create");
	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK | fcntl(fd, F_GETFL)) == 0, "nb");
	CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0, "ADD");
	while (off < n) {
		size_t k = n - off < sizeof(b) ? (size_t)(n - off) : sizeof(b);
		ssize_t w;

		fill(b, k, off, 12);
		w = write(fd, b, k);
		if (w > 0) {
			off += (uint64_t)w;
			continue;
		}
		CHECK(errno == EAGAIN, "write");
		CHECK(ep_wait1(ep, &ev, 20000) == 1 && (ev.events & EPOLLOUT) &&
			      ev.data.fd == fd,
		      "EPOLLOUT");
		waits++;
	}
	close(ep);
	CHECK(waits > 0, "the sender never filled the buffer");
	printf("epollout: ok 8 MiB, %d EPOLLOUT edges\n", waits);
}

static void srv_epollout(int fd)
{
	usleep(300000); /* let the sender fill its buffer */
	recv_pattern(fd, 8 * MIB, 12, 65536);
	printf("epollout: ok\n");
}

/* dup, dup2, dup3, F_DUPFD: all name the same connection */
static void cli_dup(int fd)
{
	send_pattern(fd, 300000, 13, 10000);
	recv_pattern(fd, 300000, 14, 10000);
	expect_eof(fd);
	printf("dup: ok\n");
}

static void srv_dup(int fd)
{
	int d1 = dup(fd), d2 = dup2(fd, 100), d3 = dup3(fd, 101, O_CLOEXEC);
	int d4 = fcntl(fd, F_DUPFD_CLOEXEC, 200);
	int fds[5] = {fd, d1, d2, d3, d4};
	uint8_t b[60000];

	CHECK(d1 >= 0 && d2 == 100 && d3 == 101 && d4 >= 200,
	      "dups %d %d %d %d", d1, d2, d3, d4);
	CHECK(fcntl(d3, F_GETFD) == FD_CLOEXEC && fcntl(d2, F_GETFD) == 0,
	      "dup3 O_CLOEXEC / dup2 without");
	/* read 60000 bytes through each fd in turn */
	for (int i = 0; i < 5; i++) {
		size_t got = 0;

		while (got < sizeof(b)) {
			ssize_t r = read(fds[i], b + got, sizeof(b) - got);

			CHECK(r > 0, "read via fd %d", fds[i]);
			got += (size_t)r;
		}
		verify(b, sizeof(b), (uint64_t)i * sizeof(b), 13);
	}
	/* close the original: the dups keep the connection */
	CHECK(close(fd) == 0, "close original");
	/* dup2 onto an fd that is a dup: closes it, names the socket again */
	CHECK(dup2(d1, d2) == d2, "dup2 onto a dup");
	for (int i = 1; i < 5; i++) {
		fill(b, sizeof(b), (uint64_t)(i - 1) * sizeof(b), 14);
		CHECK(write(fds[i], b, sizeof(b)) == (ssize_t)sizeof(b),
		      "write via fd %d", fds[i]);
	}
	fill(b, sizeof(b), 4 * sizeof(b), 14);
	CHECK(write(d4, b, sizeof(b)) == (ssize_t)sizeof(b), "last write");
	CHECK(close(d1) == 0, "close dup %d", d1);
	/* close_range closes the two dups at 100 and 101 */
	CHECK(close_range(100, 101, 0) == 0, "close_range");
	CHECK(fcntl(100, F_GETFD) < 0 && fcntl(101, F_GETFD) < 0,
	      "close_range left an fd open");
	/* the last fd closes the connection: the client sees EOF */
	CHECK(close(d4) == 0, "close last");
	printf("dup: ok\n");
}

/* FIONREAD: the bytes waiting */
static void cli_fionread(int fd)
{
	char ack;

	send_pattern(fd, 12345, 15, 12345);
	CHECK(read(fd, &ack, 1) == 1 && ack == 'K', "ack");
	printf("fionread: ok\n");
}

static void srv_fionread(int fd)
{
	uint8_t b[12345];
	int q = -1;
	uint64_t end = now_ms() + 10000;

	wait_fd(fd, POLLIN);
	while (ioctl(fd, FIONREAD, &q) == 0 && q < 12345 && now_ms() < end)
		usleep(1000);
	CHECK(q == 12345, "FIONREAD says %d, want 12345", q);
	CHECK(read(fd, b, 1000) == 1000, "read 1000");
	CHECK(ioctl(fd, FIONREAD, &q) == 0 && q == 11345,
	      "FIONREAD after a read: %d", q);
	verify(b, 1000, 0, 15);
	{
		size_t got = 0;

		while (got < 11345) {
			ssize_t r = read(fd, b + got, 11345 - got);

			CHECK(r > 0, "read rest");
			got += (size_t)r;
		}
		verify(b, 11345, 1000, 15);
	}
	CHECK(ioctl(fd, FIONREAD, &q) == 0 && q == 0, "FIONREAD drained %d", q);
	CHECK(write(fd, "K", 1) == 1, "ack");
	printf("fionread: ok\n");
}

/* shutdown(SHUT_WR) half-close, then the reply on the same connection */
static void cli_shutdown(int fd)
{
	signal(SIGPIPE, SIG_IGN);
	send_pattern(fd, 3 * MIB + 7, 16, 65536);
	CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown");
	CHECK(write(fd, "x", 1) < 0 && errno == EPIPE, "write after SHUT_WR");
	recv_pattern(fd, MIB + 3, 17, 65536);
	expect_eof(fd);
	printf("shutdown: ok\n");
}

static void srv_shutdown(int fd)
{
	signal(SIGPIPE, SIG_IGN);
	recv_pattern(fd, 3 * MIB + 7, 16, 65536);
	expect_eof(fd);
	send_pattern(fd, MIB + 3, 17, 65536);
	printf("shutdown: ok\n");
}

/* socket options and names */
static void opts(int fd, int server, int port)
{
	int one = 1, v = 0, buf = 262144;
	socklen_t l = sizeof(v);
	struct sockaddr_in a, b;
	socklen_t al = sizeof(a), bl = sizeof(b);

	CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0,
	      "TCP_NODELAY");
	CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l) == 0 && v == 1,
	      "TCP_NODELAY reads back %d", v);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) == 0 &&
		      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf,
				 sizeof(buf)) == 0,
	      "SO_RCVBUF/SO_SNDBUF");
	l = sizeof(v);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l) == 0 && v >= buf,
	      "SO_RCVBUF %d", v);
	l = sizeof(v);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l) == 0 && v >= buf,
	      "SO_SNDBUF %d", v);
	l = sizeof(v);
	CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l) == 0 && v == 0,
	      "SO_ERROR %d", v);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &al) == 0 &&
		      getpeername(fd, (struct sockaddr *)&b, &bl) == 0,
	      "names");
	CHECK(a.sin_family == AF_INET && b.sin_family == AF_INET, "families");
	CHECK(ntohs(server ? a.sin_port : b.sin_port) == port,
	      "port %d in the names", port);
}

static void cli_opts(int fd, int port)
{
	opts(fd, 0, port);
	/* small messages one at a time (NODELAY) */
	for (int i = 0; i < 200; i++) {
		uint8_t b[64];

		fill(b, sizeof(b), (uint64_t)i * 64, 18);
		CHECK(write(fd, b, sizeof(b)) == 64, "ping");
		{
			size_t got = 0;

			while (got < 64) {
				ssize_t r = read(fd, b + got, 64 - got);

				CHECK(r > 0, "pong");
				got += (size_t)r;
			}
			verify(b, 64, (uint64_t)i * 64, 19);
		}
	}
	printf("opts: ok\n");
}

static void srv_opts(int fd, int port)
{
	opts(fd, 1, port);
	for (int i = 0; i < 200; i++) {
		uint8_t b[64];
		size_t got = 0;

		while (got < 64) {
			ssize_t r = read(fd, b + got, 64 - got);

			CHECK(r > 0, "ping");
			got += (size_t)r;
		}
		verify(b, 64, (uint64_t)i * 64, 18);
		fill(b, sizeof(b), (uint64_t)i * 64, 19);
		CHECK(write(fd, b, sizeof(b)) == 64, "pong");
	}
	printf("opts: ok\n");
}

/* sendfile: the server sends a file (with and without an offset), the
 * client writes what it got to ARG; the script compares sha256 sums. */
static void cli_sendfile(int fd, const char *out)
{
	int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint8_t b[65536];
	ssize_t r;
	uint64_t total = 0;

	CHECK(o >= 0, "open %s", out);
	while ((r = read(fd, b, sizeof(b))) > 0) {
		CHECK(write(o, b, (size_t)r) == r, "write file");
		total += (uint64_t)r;
	}
	CHECK(r == 0, "read");
	close(o);
	printf("sendfile: received %llu bytes\n", (unsigned long long)total);
}

static void srv_sendfile(int fd, const char *path)
{
	int in = open(path, O_RDONLY);
	struct stat st;
	off_t off = 0, half;
	size_t left;

	CHECK(in >= 0 && fstat(in, &st) == 0, "open %s", path);
	half = st.st_size / 2;
	/* first half with an offset (the file position stays at 0) */
	while (off < half) {
		ssize_t r = sendfile(fd, in, &off, (size_t)(half - off));

		CHECK(r > 0, "sendfile with offset");
	}
	CHECK(lseek(in, 0, SEEK_CUR) == 0, "file position moved");
	/* second half from the file position */
	CHECK(lseek(in, half, SEEK_SET) == half, "lseek");
	left = (size_t)(st.st_size - half);
	while (left) {
		ssize_t r = sendfile(fd, in, NULL, left);

		CHECK(r > 0, "sendfile");
		left -= (size_t)r;
	}
	CHECK(lseek(in, 0, SEEK_CUR) == st.st_size, "file position at end");
	close(in);
	printf("sendfile: ok %lld bytes\n", (long long)st.st_size);
}

/* threads on one socket: a writer, a reader and a poller at once */
struct th {
	int fd;
	unsigned seed;
	uint64_t n;
	int polls;
	volatile int stop;
};

static void *th_writer(void *a)
{
	struct th *t = a;

	send_pattern(t->fd, t->n, t->seed, 12345);
	return NULL;
}

static void *th_reader(void *a)
{
	struct th *t = a;

	recv_pattern(t->fd, t->n, t->seed, 23456);
	return NULL;
}

static void *th_poller(void *a)
{
	struct th *t = a;

	while (!t->stop) {
		struct pollfd p = {.fd = t->fd, .events = POLLOUT};

		if (poll(&p, 1, 100) == 1)
			t->polls++;
		usleep(1000);
	}
	return NULL;
}

static void threads(int fd, unsigned wseed, unsigned rseed)
{
	struct th w = {.fd = fd, .seed = wseed, .n = 16 * MIB};
	struct th r = {.fd = fd, .seed = rseed, .n = 16 * MIB};
	struct th p = {.fd = fd};
	pthread_t tw, tr, tp;

	CHECK(pthread_create(&tw, NULL, th_writer, &w) == 0,
	      "pthread_create writer");
	CHECK(pthread_create(&tr, NULL, th_reader, &r) == 0,
	      "pthread_create reader");
	CHECK(pthread_create(&tp, NULL, th_poller, &p) == 0,
	      "pthread_create poller");
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	p.stop = 1;
	pthread_join(tp, NULL);
	CHECK(p.polls > 0, "the poller never saw POLLOUT");
	printf("threads: ok 16 MiB each way at once, %d polls\n", p.polls);
}

/* fork: the connection stays with the parent (docs/preload.md). The
 * child's copy of an SMC-R socket is unusable and its close does not end
 * the parent's connection; a TCP socket works in the child. */
static void srv_fork(int fd, const char *mode)
{
	pid_t pid;
	int st;

	recv_pattern(fd, 100000, 20, 65536);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		char c;

		if (!strcmp(mode, "smcr")) {
			ssize_t r = read(fd, &c, 1);

			if (!(r < 0 && errno == ENOTCONN)) {
				fprintf(stderr,
					"child: read gave %zd (%s), "
					"want ENOTCONN\n",
					r, strerror(errno));
				_exit(1);
			}
		} else {
			/* plain TCP: the child may use it */
			uint8_t b[1000];

			fill(b, sizeof(b), 0, 21);
			if (write(fd, b, sizeof(b)) != (ssize_t)sizeof(b))
				_exit(1);
		}
		close(fd);
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "child failed (status 0x%x)", st);
	if (!strcmp(mode, "smcr"))
		send_pattern(fd, 1000, 21, 1000);
	/* the parent carries on */
	recv_pattern(fd, 2 * MIB, 22, 65536);
	send_pattern(fd, 2 * MIB, 23, 65536);
	printf("fork: ok (%s)\n", mode);
}

static void cli_fork(int fd)
{
	send_pattern(fd, 100000, 20, 65536);
	recv_pattern(fd, 1000, 21, 1000);
	send_pattern(fd, 2 * MIB, 22, 65536);
	recv_pattern(fd, 2 * MIB, 23, 65536);
	printf("fork: ok\n");
}

/* ---------- spawn: children that never act on the parent's connection ----
 *
 * The server makes a child in one of these ways per round, then moves
 * 1 MiB each way on its SMC-R connection. A vfork or clone child shares
 * (or copies) the parent's memory without usmc's fork handler having run:
 * what it calls must reach libc, not the runtime (docs/preload.md, fork).
 *   vfork      the child closes the connection's fd, close_range(3, ~0),
 *              resets SIGUSR1 with signal(), execs /bin/true; then at
 *              once a fork-exec (below): fork adopts its child as ever
 *   clone      clone() without CLONE_VM: the child closes the fd, exit()s
 *   clone-vfork  clone(CLONE_VM|CLONE_VFORK), clone-vm clone(CLONE_VM):
 *              as vfork's child, but _exit instead of exec
 *   posix_spawn  /bin/true with addclose(fd) and addclosefrom_np(3)
 *   system     system("exec /bin/true")
 *   popen      popen("exec /bin/true", "r"), read to EOF, pclose
 *   fork-exec  fork: the child, adopted, finds its copy of the socket
 *              failed (ENOTCONN), closes it, execs /bin/true
 * After each round, the TCP connection must not have carried the data
 * (usmc still runs the connection over SMC-R), and SIGUSR1's handler
 * (installed with signal()) must still run in the parent: a child's
 * signal() must not reset the parent's. */
static volatile sig_atomic_t spawn_usr1;

static void spawn_on_usr1(int sig)
{
	(void)sig;
	spawn_usr1++;
}

static char spawn_stack[64 * 1024] __attribute__((aligned(16)));

/* The clone children run on spawn_stack, which ASan does not know as a
 * stack: uninstrumented, they do not ask it to unpoison one on _exit. */
#define SPAWN_ON_OWN_STACK __attribute__((no_sanitize_address))

SPAWN_ON_OWN_STACK static int spawn_clone_child(void *arg)
{
	int fd = *(int *)arg;

	/* not adopted by usmc: the close must be only this process's, and
	 * so must exit()'s handlers (usmc's closes open connections) */
	if (close(fd) != 0)
		_exit(3);
	exit(0);
}

/* A CLONE_VM child: the parent's memory and thread pointer, its own fds
 * and signal handlers; only _exit, as from vfork. */
SPAWN_ON_OWN_STACK static int spawn_clone_vm_child(void *arg)
{
	int fd = *(int *)arg;

	if (close(fd) != 0 || close_range(3, ~0U, 0) != 0 ||
	    signal(SIGUSR1, SIG_DFL) == SIG_ERR)
		_exit(3);
	_exit(0);
}

static void spawn_wait(pid_t pid, const char *how)
{
	int st;

	CHECK(pid > 0, "%s", how);
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0,
	      "%s: child status 0x%x", how, st);
}

static void spawn_fork_exec(int fd)
{
	char arg0[] = "true", *argv[] = {arg0, NULL};
	pid_t pid = fork();

	if (pid == 0) {
		char c;

		/* adopted by usmc's atfork handler: the copy is a failed
		 * socket */
		if (recv(fd, &c, 1, MSG_DONTWAIT) != -1 || errno != ENOTCONN)
			_exit(4);
		if (close(fd) != 0)
			_exit(3);
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	spawn_wait(pid, "fork-exec");
}

static void spawn_one(int fd, const char *how)
{
	char arg0[] = "true", *argv[] = {arg0, NULL};
	pid_t pid;

	if (!strcmp(how, "vfork")) {
		pid = vfork();
		if (pid == 0) {
			/* async-signal-safe calls only, as vfork demands */
			if (close(fd) != 0 || close_range(3, ~0U, 0) != 0 ||
			    signal(SIGUSR1, SIG_DFL) == SIG_ERR)
				_exit(3);
			execve("/bin/true", argv, environ);
			_exit(127);
		}
		spawn_wait(pid, how);
		/* no usmc call since: fork() must adopt its child all
		 * the same */
		spawn_fork_exec(fd);
	} else if (!strcmp(how, "clone")) {
		pid = clone(spawn_clone_child,
			    spawn_stack + sizeof(spawn_stack), SIGCHLD, &fd);
		spawn_wait(pid, how);
	} else if (!strcmp(how, "clone-vfork") || !strcmp(how, "clone-vm")) {
		int flags = CLONE_VM | SIGCHLD;

		if (!strcmp(how, "clone-vfork"))
			flags |= CLONE_VFORK;
		pid = clone(spawn_clone_vm_child,
			    spawn_stack + sizeof(spawn_stack), flags, &fd);
		spawn_wait(pid, how);
	} else if (!strcmp(how, "posix_spawn")) {
		posix_spawn_file_actions_t fa;

		CHECK(posix_spawn_file_actions_init(&fa) == 0 &&
			      posix_spawn_file_actions_addclose(&fa, fd) == 0 &&
			      posix_spawn_file_actions_addclosefrom_np(&fa,
								       3) == 0,
		      "file actions");
		CHECK(posix_spawn(&pid, "/bin/true", &fa, NULL, argv,
				  environ) == 0,
		      "posix_spawn");
		posix_spawn_file_actions_destroy(&fa);
		spawn_wait(pid, how);
	} else if (!strcmp(how, "system")) {
		int st = system("exec /bin/true");

		CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "system: status 0x%x", st);
	} else if (!strcmp(how, "popen")) {
		FILE *f = popen("exec /bin/true", "r");
		int st;

		CHECK(f, "popen");
		CHECK(fgetc(f) == EOF, "popen: output from /bin/true");
		st = pclose(f);
		CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "pclose: status 0x%x", st);
	} else if (!strcmp(how, "fork-exec")) {
		spawn_fork_exec(fd);
	} else {
		fail("unknown spawn '%s'", how);
	}
}

/* The TCP connection under an SMC-R one carries only the CLC handshake
 * (RFC 7609). Had a child's close ended the SMC-R connection here,
 * usmc would have dropped the socket and the data would cross over TCP,
 * byte-exact: the kernel's counters tell. */
static void spawn_check_smcr(int fd, const char *how)
{
	/* Linux's struct tcp_info, newer than glibc's: tcpi_bytes_acked at
	 * offset 120, tcpi_bytes_received at 128 */
	uint8_t ti[256];
	socklen_t len = sizeof(ti);
	uint64_t acked, received;

	CHECK(getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 &&
		      len >= 136,
	      "TCP_INFO (%u bytes)", (unsigned)len);
	memcpy(&acked, ti + 120, sizeof(acked));
	memcpy(&received, ti + 128, sizeof(received));
	CHECK(acked < 16384 && received < 16384,
	      "%s: the data went over TCP (%llu bytes sent, %llu received)",
	      how, (unsigned long long)acked, (unsigned long long)received);
}

/* ARG: the ways, comma-separated, one per round; the client runs as many
 * rounds (tests/preload/spawn_peer.py). */
static void srv_spawn(int fd, const char *arg)
{
	char *list = strdup(arg ? arg : ""), *save = NULL, *how;
	unsigned round = 0;

	CHECK(list && signal(SIGUSR1, spawn_on_usr1) != SIG_ERR, "SIGUSR1");
	/* An accepted connection's handshake runs in the process that first
	 * uses it (docs/preload.md, "fork"): wait until it is connected, so
	 * that it is this process's before any child is made. */
	{
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLOUT),
		      "poll for the connection: revents 0x%x", p.revents);
	}
	for (how = strtok_r(list, ",", &save); how;
	     how = strtok_r(NULL, ",", &save), round++) {
		sig_atomic_t seen = spawn_usr1;

		spawn_one(fd, how);
		tcase = how;
		recv_pattern(fd, MIB, 60 + round, 65536);
		send_pattern(fd, MIB, 160 + round, 65536);
		spawn_check_smcr(fd, how);
		raise(SIGUSR1);
		CHECK(spawn_usr1 == seen + 1,
		      "%s: the parent's SIGUSR1 handler did not run", how);
	}
	tcase = "spawn";
	expect_eof(fd);
	printf("spawn: ok, %u rounds (%s), 1 MiB each way after each\n", round,
	       arg);
	free(list);
}

/* ---------- signals: EINTR and SA_RESTART, as the kernel's calls ----------
 * The same expectations hold for plain TCP (the test runs this case without
 * usmc-run too), so they are the kernel's. A SIGALRM interrupts each
 * blocking call; the client sends only when told.
 *
 * The signal is sent once the server's main thread is provably asleep in
 * the call under test (kick_start), not at a fixed time: a timer that
 * fired before the call began (a slow, loaded machine, ASan) ran the
 * handler too early, and a call that had to end with EINTR then waited
 * for good, with the client waiting for its next command. Likewise the
 * client is released (a 'G' on the socket, or a file named after the
 * case's rendezvous path) only once the handler has run. */

static volatile sig_atomic_t hits, last_signo;
static const char *sig_go; /* rendezvous path: ARG of both sides */
static pid_t sig_main_tid;

static void on_alrm(int sig)
{
	(void)sig;
	hits++;
}

static void on_alrm_info(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	last_signo = si->si_signo;
	hits++;
}

/* 1 if the main thread sleeps in a call that may block on a socket: the
 * kernel's own (plain run) or the poll usmc waits in. /proc's syscall
 * file names the call only while the thread is blocked ("running"
 * otherwise). */
static int main_blocked(void)
{
	char path[64], b[128];
	long nr;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall",
		 (int)sig_main_tid);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0, "open %s", path);
	n = (int)read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	if (sscanf(b, "%ld", &nr) != 1)
		return 0;
	switch (nr) {
	case SYS_poll:
	case SYS_ppoll:
	case SYS_select:
	case SYS_pselect6:
	case SYS_epoll_wait:
	case SYS_epoll_pwait:
	case SYS_recvfrom:
	case SYS_recvmsg:
	case SYS_sendto:
	case SYS_sendmsg:
	case SYS_accept:
	case SYS_accept4:
		return 1;
	}
	return 0;
}

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* Waits, up to 30 s, 1 ms at a time, for |cond|. */
static int wait_cond(int (*cond)(void))
{
	uint64_t end = mono_ms() + 30000;
	struct timespec ms1 = {0, 1000000};

	while (!cond()) {
		if (mono_ms() > end)
			return 0;
		nanosleep(&ms1, NULL);
	}
	return 1;
}

static struct kick {
	pthread_t t;
	sig_atomic_t h;	     /* hits before the signal */
	int go_fd;	     /* after the handler ran: send 'G' here (-1: no) */
	const char *go_file; /* or create sig_go.<go_file> (NULL: no) */
	int returned;	     /* the call under test returned */
} kick;

static int handler_ran(void)
{
	return hits != kick.h;
}

static int call_returned(void)
{
	return __atomic_load_n(&kick.returned, __ATOMIC_ACQUIRE);
}

static void go_path(char *b, size_t n, const char *stage)
{
	CHECK(sig_go && *sig_go,
	      "the signals case needs a rendezvous path as ARG");
	snprintf(b, n, "%s.%s", sig_go, stage);
}

/* The kicker thread has SIGALRM blocked, and usmc's progress thread
 * blocks every signal: the process-directed SIGALRM (what a timer
 * sends) can only be taken by the main thread. */
static void *kicker(void *arg)
{
	char path[4096];
	int fd;

	(void)arg;
	CHECK(wait_cond(main_blocked),
	      "the main thread never blocked in the call under test");
	CHECK(kill(getpid(), SIGALRM) == 0, "kill SIGALRM");
	CHECK(wait_cond(handler_ran), "the handler did not run");
	if (kick.go_fd >= 0)
		CHECK(send(kick.go_fd, "G", 1, 0) == 1, "send G");
	if (kick.go_file) {
		go_path(path, sizeof(path), kick.go_file);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		CHECK(fd >= 0 && close(fd) == 0, "create %s", path);
	}
	/* a lost signal is named here, not by the 120 s timeout */
	CHECK(wait_cond(call_returned),
	      "the call did not return within 30 s of its handler");
	return NULL;
}

/* Before a blocking call: SIGALRM comes once the call sleeps; then, if
 * asked, the client is released (go_fd, go_file). kick_join after it. */
static void kick_start(int go_fd, const char *go_file)
{
	sigset_t m, old;

	sig_main_tid = (pid_t)syscall(SYS_gettid);
	kick.h = hits;
	kick.go_fd = go_fd;
	kick.go_file = go_file;
	kick.returned = 0;
	sigemptyset(&m);
	sigaddset(&m, SIGALRM);
	CHECK(pthread_sigmask(SIG_BLOCK, &m, &old) == 0, "block SIGALRM");
	CHECK(pthread_create(&kick.t, NULL, kicker, NULL) == 0, "kicker");
	CHECK(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0, "mask");
}

static void kick_join(void)
{
	__atomic_store_n(&kick.returned, 1, __ATOMIC_RELEASE);
	CHECK(pthread_join(kick.t, NULL) == 0, "join the kicker");
}

/* The client's side of a go file: waits for the server to create it. */
static int go_seen_stage(const char *stage)
{
	char path[4096];

	go_path(path, sizeof(path), stage);
	return access(path, F_OK) == 0;
}

static int go_connect(void)
{
	return go_seen_stage("connect");
}

static int go_send(void)
{
	return go_seen_stage("send");
}

static void on_alarm(void (*fn)(int), int flags,
		     int (*act_fn)(int, const struct sigaction *,
				   struct sigaction *))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = flags;
	CHECK(act_fn(SIGALRM, &sa, NULL) == 0, "sigaction");
}

/* A blocking recv that a signal interrupts: with |restart| it must go on
 * to get the byte the client sends once the handler ran ('R' says one
 * will be asked for, 'G' asks for it). */
static void recv_interrupted(int fd, int restart, const char *what)
{
	sig_atomic_t h = hits;
	char b = 0;
	ssize_t r;

	if (restart)
		CHECK(send(fd, "R", 1, 0) == 1, "%s: send R", what);
	kick_start(restart ? fd : -1, NULL);
	r = recv(fd, &b, 1, 0);
	kick_join();
	if (restart)
		CHECK(r == 1 && b == 'a' && hits == h + 1,
		      "%s: recv must be restarted: r %zd, handler ran %d times",
		      what, r, (int)(hits - h));
	else
		CHECK(r < 0 && errno == EINTR && hits == h + 1,
		      "%s: recv must fail with EINTR: r %zd, handler ran %d "
		      "times",
		      what, r, (int)(hits - h));
}

static int srv_signals_accept(int l)
{
	sig_atomic_t h = hits;
	int fd;

	on_alarm(on_alrm, 0, sigaction);
	kick_start(-1, NULL);
	fd = accept(l, NULL, NULL);
	kick_join();
	CHECK(fd < 0 && errno == EINTR && hits == h + 1,
	      "accept, no SA_RESTART: EINTR");
	/* the client connects once the handler has run */
	on_alarm(on_alrm, SA_RESTART, sigaction);
	kick_start(-1, "connect");
	fd = accept(l, NULL, NULL);
	kick_join();
	CHECK(fd >= 0 && hits == h + 2, "accept, SA_RESTART: restarted");
	return fd;
}

/* siginterrupt is deprecated, but programs still call it */
static int sig_interrupt(int sig, int flag)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	return siginterrupt(sig, flag);
#pragma GCC diagnostic pop
}

static void srv_signals(int fd)
{
	/* long enough that only a lost signal ends the wait */
	struct timeval tv = {30, 0}, tv0 = {0, 0};
	struct sigaction q;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t big = 32 * MIB, got = 0;
	uint8_t *buf = malloc(big);
	sig_atomic_t h;
	uint64_t n = 0;
	ssize_t k;

	CHECK(buf != NULL, "malloc");
	on_alarm(on_alrm, 0, sigaction);
	recv_interrupted(fd, 0, "sigaction, no SA_RESTART");
	CHECK(signal(SIGALRM, on_alrm) != SIG_ERR, "signal");
	recv_interrupted(fd, 1, "signal() (BSD semantics)");
	CHECK(sig_interrupt(SIGALRM, 1) == 0, "siginterrupt 1");
	recv_interrupted(fd, 0, "siginterrupt(SIGALRM, 1)");
	CHECK(sig_interrupt(SIGALRM, 0) == 0, "siginterrupt 0");
	recv_interrupted(fd, 1, "siginterrupt(SIGALRM, 0)");
	/* the app sees its own handler, not an interposer's */
	CHECK(sigaction(SIGALRM, NULL, &q) == 0 && q.sa_handler == on_alrm &&
		      (q.sa_flags & SA_RESTART) && !(q.sa_flags & SA_SIGINFO),
	      "sigaction query: handler %p flags 0x%x", (void *)q.sa_handler,
	      q.sa_flags);
	/* a receive timeout makes even an SA_RESTART handler end the wait */
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0,
	      "SO_RCVTIMEO");
	recv_interrupted(fd, 0, "SO_RCVTIMEO with SA_RESTART");
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv0, sizeof(tv0)) == 0,
	      "SO_RCVTIMEO 0");
	/* poll is never restarted */
	h = hits;
	kick_start(-1, NULL);
	k = poll(&p, 1, 30000);
	kick_join();
	CHECK(k < 0 && errno == EINTR && hits == h + 1,
	      "poll, SA_RESTART: EINTR");
	/* SA_SIGINFO: the handler gets its siginfo */
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_alrm_info;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "SA_SIGINFO");
		last_signo = 0;
		recv_interrupted(fd, 1, "SA_SIGINFO|SA_RESTART");
		CHECK(last_signo == SIGALRM, "si_signo %d", (int)last_signo);
	}
	/* System V signal(): one shot, not restarted; then SIG_DFL */
	CHECK(sysv_signal(SIGALRM, on_alrm) != SIG_ERR, "sysv_signal");
	recv_interrupted(fd, 0, "sysv_signal");
	CHECK(sigaction(SIGALRM, NULL, &q) == 0 && q.sa_handler == SIG_DFL,
	      "after a one-shot handler ran: %p", (void *)q.sa_handler);
	/* handlers installed past any interposer (glibc's __sigaction) */
	on_alarm(on_alrm, SA_RESTART, __sigaction);
	recv_interrupted(fd, 1, "__sigaction, SA_RESTART");
	on_alarm(on_alrm, 0, __sigaction);
	recv_interrupted(fd, 0, "__sigaction, no SA_RESTART");
	/* a send blocked on a full window returns what it sent so far */
	on_alarm(on_alrm, 0, sigaction);
	CHECK(send(fd, "W", 1, 0) == 1, "send W");
	fill(buf, big, 0, 31);
	h = hits;
	/* the client reads only once the handler has run */
	kick_start(-1, "send");
	k = send(fd, buf, big, 0);
	kick_join();
	CHECK(hits == h + 1 &&
		      ((k > 0 && (size_t)k < big) || (k < 0 && errno == EINTR)),
	      "send interrupted: %zd of %zu, handler ran %d times", k, big,
	      (int)(hits - h));
	CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown");
	while (got < sizeof(n)) {
		ssize_t r = recv(fd, (char *)&n + got, sizeof(n) - got, 0);

		CHECK(r > 0, "recv count");
		got += (size_t)r;
	}
	CHECK(n == (uint64_t)(k > 0 ? k : 0),
	      "the client got %llu bytes, send returned %zd",
	      (unsigned long long)n, k);
	free(buf);
	printf("signals: ok, EINTR and SA_RESTART as the kernel's calls, "
	       "interrupted send %zd bytes\n",
	       k);
}

static void cli_signals(int fd)
{
	uint8_t buf[65536];
	uint64_t n = 0;
	char c;

	for (;;) {
		CHECK(recv(fd, &c, 1, MSG_WAITALL) == 1, "command");
		if (c == 'R') {
			/* 'G': the server's recv has been interrupted */
			CHECK(recv(fd, &c, 1, MSG_WAITALL) == 1 && c == 'G',
			      "G after R: %c", c);
			CHECK(send(fd, "a", 1, 0) == 1, "send a");
			continue;
		}
		CHECK(c == 'W', "command %c", c);
		break;
	}
	/* the server's send has blocked and been interrupted */
	CHECK(wait_cond(go_send), "the server never said its send blocked");
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		CHECK(r >= 0, "recv");
		if (r == 0)
			break;
		verify(buf, (size_t)r, n, 31);
		n += (uint64_t)r;
	}
	CHECK(send(fd, &n, sizeof(n), 0) == (ssize_t)sizeof(n), "send count");
	printf("signals: ok, %llu bytes\n", (unsigned long long)n);
}

/* ---------- exitopen: the client exits without closing ----------
 * As with the kernel's TCP, what it wrote still arrives, then EOF (no
 * reset): usmc closes SMC-R connections left open at exit. The client
 * exits from a nonblocking socket with data still queued. */

#define EXITOPEN_LEN (8 * MIB + 7)

static void srv_exitopen(int fd)
{
	recv_pattern(fd, EXITOPEN_LEN, 41, 65536);
	expect_eof(fd);
	printf("exitopen: ok, %d bytes then EOF\n", EXITOPEN_LEN);
}

static void cli_exitopen(int fd)
{
	uint64_t off = 0;
	uint8_t b[65536];

	CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0, "nonblock");
	while (off < EXITOPEN_LEN) {
		size_t k = EXITOPEN_LEN - off < sizeof(b)
				   ? (size_t)(EXITOPEN_LEN - off)
				   : sizeof(b);
		ssize_t w;

		fill(b, k, off, 41);
		w = send(fd, b, k, 0);
		if (w < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLOUT);
			continue;
		}
		CHECK(w > 0, "send");
		off += (uint64_t)w;
	}
	printf("exitopen: ok, wrote %d bytes, exiting with the socket open\n",
	       EXITOPEN_LEN);
	exit(0);
}

/* ---------- connection set-up ---------- */

static int server(int port, const char *c, const char *arg)
{
	int l = socket(AF_INET, SOCK_STREAM, 0), fd, one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	int nb = !strcmp(c, "nonblock");

	CHECK(l >= 0, "socket");
	CHECK(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0,
	      "SO_REUSEADDR");
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0, "bind");
	CHECK(listen(l, 8) == 0, "listen");
	if (!strcmp(c, "prefork")) {
		/* a prefork server: the parent listens and never accepts; a
		 * forked worker accepts and serves */
		pid_t pid = fork();
		int st;

		CHECK(pid >= 0, "fork");
		if (pid == 0) {
			fd = accept(l, NULL, NULL);
			CHECK(fd >= 0, "worker accept");
			srv_rw(fd);
			CHECK(close(fd) == 0, "worker close");
			exit(0); /* through atexit: the worker's USMC_STATS */
		}
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
			      WEXITSTATUS(st) == 0,
		      "worker failed (status 0x%x)", st);
		CHECK(close(l) == 0, "close listener");
		printf("prefork: ok, the worker served\n");
		return 0;
	}
	if (nb) {
		struct sockaddr_in p;
		socklen_t pl = sizeof(p);

		CHECK(fcntl(l, F_SETFL, O_NONBLOCK) == 0, "listener nonblock");
		CHECK(accept4(l, NULL, NULL, 0) < 0 && errno == EAGAIN,
		      "accept4 on an empty listener must give EAGAIN");
		wait_fd(l, POLLIN);
		fd = accept4(l, (struct sockaddr *)&p, &pl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		CHECK(fd >= 0 && pl == sizeof(p) && p.sin_family == AF_INET,
		      "accept4");
	} else if (!strcmp(c, "epoll-et")) {
		/* the listener in an edge-triggered set, as nginx has it */
		int ep = epoll_create1(0);
		struct epoll_event ev = {.events = EPOLLIN | EPOLLET,
					 .data.u64 = 99};

		CHECK(ep >= 0 && fcntl(l, F_SETFL, O_NONBLOCK) == 0 &&
			      epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) == 0,
		      "listener in epoll");
		CHECK(ep_wait1(ep, &ev, 20000) == 1 && ev.data.u64 == 99 &&
			      (ev.events & EPOLLIN),
		      "listener edge");
		fd = accept4(l, NULL, NULL, 0);
		CHECK(fd >= 0, "accept4 after the edge");
		CHECK(accept4(l, NULL, NULL, 0) < 0 && errno == EAGAIN,
		      "one connection only");
		CHECK(ep_wait1(ep, &ev, 200) == 0, "no second edge");
		close(ep);
	} else if (!strcmp(c, "epoll-lt")) {
		/* a blocking listener in a level-triggered set, and polled
		 * too: each wait says readable once the connection can be
		 * accepted, and the blocking accept returns it (its accept
		 * may run the handshake's start itself: docs/runtime.md,
		 * "Server") */
		int ep = epoll_create1(0);
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 98};
		struct pollfd p = {.fd = l, .events = POLLIN};

		CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) == 0,
		      "listener in epoll");
		CHECK(poll(&p, 1, 20000) == 1 && (p.revents & POLLIN),
		      "listener readable by poll");
		CHECK(ep_wait1(ep, &ev, 20000) == 1 && ev.data.u64 == 98 &&
			      (ev.events & EPOLLIN),
		      "listener readable by epoll");
		fd = accept(l, NULL, NULL);
		CHECK(fd >= 0, "blocking accept after both");
		CHECK(ep_wait1(ep, &ev, 200) == 0, "nothing left to accept");
		CHECK(poll(&p, 1, 0) == 0, "nothing left by poll");
		close(ep);
	} else if (!strcmp(c, "epoll-oneshot")) {
		/* the listener in an epoll set that is never waited on, and
		 * accepted on a timer: accept() alone must find the
		 * connection (nothing runs epoll_wait to take it) */
		int ep = epoll_create1(0), i;
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 97};

		CHECK(ep >= 0 && fcntl(l, F_SETFL, O_NONBLOCK) == 0 &&
			      epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) == 0,
		      "listener in epoll");
		for (i = 0, fd = -1; fd < 0 && i < 2000; i++) {
			fd = accept4(l, NULL, NULL, 0);
			CHECK(fd >= 0 || errno == EAGAIN, "accept4");
			if (fd < 0)
				usleep(10000);
		}
		CHECK(fd >= 0, "accept4 on a timer within 20 s");
		close(ep);
	} else if (!strcmp(c, "signals")) {
		sig_go = arg;
		fd = srv_signals_accept(l);
	} else {
		fd = accept(l, NULL, NULL);
		CHECK(fd >= 0, "accept");
	}
	CHECK(close(l) == 0, "close listener");
	if (!strcmp(c, "rw") || !strcmp(c, "epoll-connect"))
		srv_rw(fd);
	else if (!strcmp(c, "calls"))
		srv_calls(fd);
	else if (nb)
		srv_nonblock(fd);
	else if (!strncmp(c, "epoll-", 6))
		srv_epoll(fd, c + 6);
	else if (!strcmp(c, "epollout"))
		srv_epollout(fd);
	else if (!strcmp(c, "dup")) {
		srv_dup(fd);
		return 0; /* closed its fds itself */
	} else if (!strcmp(c, "fionread"))
		srv_fionread(fd);
	else if (!strcmp(c, "shutdown"))
		srv_shutdown(fd);
	else if (!strcmp(c, "opts"))
		srv_opts(fd, port);
	else if (!strcmp(c, "sendfile"))
		srv_sendfile(fd, arg);
	else if (!strcmp(c, "threads"))
		threads(fd, 25, 24);
	else if (!strcmp(c, "fork"))
		srv_fork(fd, arg ? arg : "smcr");
	else if (!strcmp(c, "signals"))
		srv_signals(fd);
	else if (!strcmp(c, "exitopen"))
		srv_exitopen(fd);
	else if (!strcmp(c, "spawn"))
		srv_spawn(fd, arg);
	else
		fail("unknown case");
	CHECK(close(fd) == 0, "close");
	return 0;
}

static int client(const char *host, int port, const char *c, const char *arg,
		  const char *bind_addr)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	int nb = !strcmp(c, "nonblock");
	int epc = !strcmp(c, "epoll-connect");
	int fd = socket(AF_INET, SOCK_STREAM | (nb || epc ? SOCK_NONBLOCK : 0),
			0);

	CHECK(fd >= 0, "socket");
	CHECK(inet_pton(AF_INET, host, &a.sin_addr) == 1, "address %s", host);
	if (bind_addr && *bind_addr) {
		struct sockaddr_in b = {.sin_family = AF_INET};

		CHECK(inet_pton(AF_INET, bind_addr, &b.sin_addr) == 1 &&
			      bind(fd, (struct sockaddr *)&b, sizeof(b)) == 0,
		      "bind %s", bind_addr);
	}
	if (nb) {
		int err = -1;
		socklen_t l = sizeof(err);
		int r = connect(fd, (struct sockaddr *)&a, sizeof(a));

		CHECK(r < 0 && errno == EINPROGRESS, "nonblocking connect: %d",
		      r);
		r = connect(fd, (struct sockaddr *)&a, sizeof(a));
		CHECK(r < 0 && (errno == EALREADY || errno == EISCONN),
		      "second connect: %d", r);
		wait_fd(fd, POLLOUT);
		CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 &&
			      err == 0,
		      "SO_ERROR after connect: %d", err);
	} else if (epc) {
		/* registered while the handshake runs: the socket becomes
		 * SMC-R (or TCP) inside the epoll set, edge-triggered */
		int ep = epoll_create1(0), err = -1, n;
		struct epoll_event ev = {.events = EPOLLOUT | EPOLLET,
					 .data.u64 = 5};
		socklen_t l = sizeof(err);
		int r = connect(fd, (struct sockaddr *)&a, sizeof(a));

		CHECK(r < 0 && errno == EINPROGRESS, "connect: %d", r);
		CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0,
		      "ADD during connect");
		n = ep_wait1(ep, &ev, 20000);
		CHECK(n == 1 && ev.data.u64 == 5 && (ev.events & EPOLLOUT),
		      "EPOLLOUT after connect: %d 0x%x", n, ev.events);
		CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 &&
			      err == 0,
		      "SO_ERROR %d", err);
		n = ep_wait1(ep, &ev, 200);
		CHECK(n == 0, "a second edge without a change: %d", n);
		close(ep);
		CHECK(fcntl(fd, F_SETFL, 0) == 0, "blocking");
		c = "rw";
	} else {
		if (!strcmp(c, "signals")) {
			sig_go = arg;
			/* the server's accept was interrupted, and waits on */
			CHECK(wait_cond(go_connect),
			      "the server never asked for the connection");
		}
		CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
		      "connect %s:%d", host, port);
	}
	if (!strcmp(c, "rw") || !strcmp(c, "prefork"))
		cli_rw(fd);
	else if (!strcmp(c, "calls"))
		cli_calls(fd);
	else if (nb)
		cli_nonblock(fd);
	else if (!strncmp(c, "epoll-", 6))
		cli_epoll(fd);
	else if (!strcmp(c, "epollout"))
		cli_epollout(fd);
	else if (!strcmp(c, "dup"))
		cli_dup(fd);
	else if (!strcmp(c, "fionread"))
		cli_fionread(fd);
	else if (!strcmp(c, "shutdown"))
		cli_shutdown(fd);
	else if (!strcmp(c, "opts"))
		cli_opts(fd, port);
	else if (!strcmp(c, "sendfile"))
		cli_sendfile(fd, arg);
	else if (!strcmp(c, "threads"))
		threads(fd, 24, 25);
	else if (!strcmp(c, "fork"))
		cli_fork(fd);
	else if (!strcmp(c, "signals"))
		cli_signals(fd);
	else if (!strcmp(c, "exitopen"))
		cli_exitopen(fd);
	else
		fail("unknown case");
	CHECK(close(fd) == 0, "close");
	return 0;
}

/* connrefused: a nonblocking connect to a closed port reports the error
 * through poll and SO_ERROR, as TCP does. */
static int connrefused(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
	socklen_t l = sizeof(err);
	struct pollfd p;
	int r;

	CHECK(fd >= 0 && inet_pton(AF_INET, host, &a.sin_addr) == 1, "setup");
	r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (r < 0 && errno == ECONNREFUSED)
		err = ECONNREFUSED;
	else {
		CHECK(r < 0 && errno == EINPROGRESS, "connect: %d", r);
		p.fd = fd;
		p.events = POLLOUT;
		CHECK(poll(&p, 1, 10000) == 1 &&
			      (p.revents & (POLLERR | POLLOUT)),
		      "poll");
		CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0,
		      "SO_ERROR");
	}
	CHECK(err == ECONNREFUSED, "SO_ERROR %d, want ECONNREFUSED", err);
	close(fd);
	printf("connrefused: ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "server")) {
		tcase = argv[3];
		return server(atoi(argv[2]), argv[3],
			      argc > 4 ? argv[4] : NULL);
	}
	if (argc >= 5 && !strcmp(argv[1], "client")) {
		tcase = argv[4];
		if (!strcmp(argv[4], "connrefused"))
			return connrefused(argv[2], atoi(argv[3]));
		return client(argv[2], atoi(argv[3]), argv[4],
			      argc > 5 ? argv[5] : NULL,
			      argc > 6 ? argv[6] : NULL);
	}
	fprintf(stderr,
		"usage: %s server PORT CASE [ARG] | client HOST PORT CASE "
		"[ARG] [BIND]\n",
		argv[0]);
	return 2;
}
