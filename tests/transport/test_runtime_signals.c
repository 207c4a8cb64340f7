/* SPDX-License-Identifier: MIT */
/*
 * A signal handler that runs while a blocking usmc call waits must end
 * the call (EINTR), wherever in usmc_wait it lands: in its poll, or while
 * the thread is awake between two polls (woken by traffic, taking the
 * lock, running completions). A handler that lands outside the poll used
 * to be lost: one installed past usmc (plain sigaction here, __sigaction
 * under the preload) left no trace, one behind usmc's trampoline was
 * missed until the next wake-up, and the call waited on (for good, if
 * nothing else came).
 *
 * The server process (fork) drains one SMC-R connection over softroce;
 * a client thread keeps it busy sending, so the client's waits wake on
 * every ACK and CDC. The main thread waits in usmc_recv on the same
 * connection (no data ever comes back; SO_RCVTIMEO 2 s bounds the wait);
 * a kicker thread sends SIGALRM once the main thread sleeps in poll, so
 * the signal finds it anywhere in the wait loop. Every round must end in
 * EINTR with the handler run once; EAGAIN means the signal was lost.
 * Every recv, and one that times out, leaves the thread's mask as it was.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_server_test.h"
#include "usmc_test.h"

#define ROUNDS 20

static pid_t server_pid = -1;
static uint16_t tcp_port;
static pid_t main_tid;
static volatile sig_atomic_t hits;
static int stop_sending;
static uint64_t sent; /* by the sender thread */

static void on_alrm(int sig)
{
	(void)sig;
	hits++;
}

/* Child: drain the connection until EOF. */
static void server(int wfd)
{
	char buf[65536];
	int lfd, fd;
	usmc_sock_info in;

	alarm(60);
	lfd = usmc_test_server_listen("127.0.0.2", 8, wfd);
	fd = usmc_accept(lfd, NULL, NULL);
	if (fd < 0)
		_exit(13);
	if (usmc_get_info(fd, &in) || in.mode != USMC_SOCK_SMCR)
		_exit(14);
	for (;;) {
		ssize_t r = usmc_recv(fd, buf, sizeof(buf), 0);

		if (r == 0)
			break;
		if (r < 0)
			_exit(15);
	}
	_exit(usmc_close(fd) ? 16 : 0);
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* The main thread sleeps in poll/ppoll (/proc names the call only while
 * the thread is blocked in it). */
static int main_in_poll(void)
{
	char path[64], b[128];
	long nr;
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall",
		 (int)main_tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = (int)read(fd, b, sizeof(b) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	return sscanf(b, "%ld", &nr) == 1 &&
	       (nr == SYS_poll || nr == SYS_ppoll);
}

/* |arg|: microseconds to wait after seeing main in poll, so that the
 * signal lands at varied points of the wait loop */
static void *kicker(void *arg)
{
	uint64_t end = now_ms() + 10000;
	struct timespec us100 = {0, 100000},
			lag = {0, (long)(intptr_t)arg * 1000};

	while (!main_in_poll()) {
		if (now_ms() > end)
			return (void *)1;
		nanosleep(&us100, NULL);
	}
	if (lag.tv_nsec)
		nanosleep(&lag, NULL);
	/* SIGALRM is blocked in every other thread: main takes it */
	kill(getpid(), SIGALRM);
	return NULL;
}

static void *sender(void *arg)
{
	int fd = *(int *)arg;
	static char buf[65536];

	memset(buf, 0x5a, sizeof(buf));
	while (!__atomic_load_n(&stop_sending, __ATOMIC_RELAXED)) {
		ssize_t w = usmc_send(fd, buf, sizeof(buf), 0);

		if (w <= 0)
			return (void *)1;
		__atomic_fetch_add(&sent, (uint64_t)w, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int start_blocked(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t m, old;
	int r;

	sigemptyset(&m);
	sigaddset(&m, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &m, &old);
	r = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static int connect_client(void)
{
	return usmc_test_client_connect("127.0.0.1", "127.0.0.2", tcp_port, 0);
}

/* Odd rounds install the handler behind usmc's trampoline, even rounds
 * past it (what usmc cannot see until its poll fails with EINTR). */
static void install(int trampolined)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sigemptyset(&sa.sa_mask);
	CU_ASSERT_FATAL((trampolined ? usmc_sigaction(SIGALRM, &sa, NULL)
				     : sigaction(SIGALRM, &sa, NULL)) == 0);
}

/* The main thread's mask is what it was (nothing blocked): usmc_wait
 * blocks signals only while it runs. */
static int mask_unchanged(void)
{
	sigset_t cur;

	if (pthread_sigmask(SIG_BLOCK, NULL, &cur))
		return 0;
	for (int sig = 1; sig < SIGRTMIN; sig++)
		if (sigismember(&cur, sig) == 1) {
			fprintf(stderr, "  signal %d left blocked\n", sig);
			return 0;
		}
	return 1;
}

static void test_signal_in_busy_wait(void)
{
	struct timeval tv = {2, 0};
	pthread_t st, kt;
	usmc_sock_info in;
	int fd = connect_client(), lost = 0;
	void *sr = NULL, *kr;
	uint64_t t_start;

	CU_ASSERT_EQUAL_FATAL(usmc_get_info(fd, &in), 0);
	USMC_ASSERT_EQ_FATAL(in.mode, USMC_SOCK_SMCR);
	CU_ASSERT_EQUAL_FATAL(
		usmc_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		0);
	main_tid = (pid_t)syscall(SYS_gettid);
	t_start = now_ms();
	CU_ASSERT_EQUAL_FATAL(start_blocked(&st, sender, &fd), 0);
	/* the traffic is flowing: the waits below wake on it */
	while (__atomic_load_n(&sent, __ATOMIC_RELAXED) < 4 * 1024 * 1024 &&
	       now_ms() - t_start < 10000) {
		struct timespec ms1 = {0, 1000000};

		nanosleep(&ms1, NULL);
	}
	USMC_ASSERT_EQ_FATAL(
		__atomic_load_n(&sent, __ATOMIC_RELAXED) >= 4 * 1024 * 1024, 1);
	for (int i = 0; i < ROUNDS; i++) {
		sig_atomic_t h = hits;
		uint64_t t0 = now_ms();
		ssize_t r;
		char c;
		int e;

		install(i & 1);
		CU_ASSERT_EQUAL_FATAL(
			start_blocked(&kt, kicker,
				      (void *)(intptr_t)(i * 37 % 200)),
			0);
		r = usmc_recv(fd, &c, 1, 0);
		e = errno;
		pthread_join(kt, &kr);
		CU_ASSERT_PTR_NULL(kr); /* it saw the main thread in poll */
		if (r == -1 && e == EAGAIN) {
			fprintf(stderr,
				"  round %d (%s handler): the signal was lost, "
				"recv waited %llu ms for SO_RCVTIMEO\n",
				i, (i & 1) ? "usmc's" : "an unknown",
				(unsigned long long)(now_ms() - t0));
			lost++;
			continue;
		}
		USMC_ASSERT_EQ(r, -1);
		USMC_ASSERT_EQ(e, EINTR);
		USMC_ASSERT_EQ(hits, h + 1);
		USMC_ASSERT_EQ(mask_unchanged(), 1);
	}
	USMC_ASSERT_EQ(lost, 0);
	/* a wait that times out gives the thread its signal mask back */
	tv.tv_sec = 0;
	tv.tv_usec = 50000;
	CU_ASSERT_EQUAL(
		usmc_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)),
		0);
	{
		char c;
		ssize_t r = usmc_recv(fd, &c, 1, 0);

		USMC_ASSERT_EQ(r, -1);
		USMC_ASSERT_EQ(errno, EAGAIN);
		USMC_ASSERT_EQ(mask_unchanged(), 1);
	}
	__atomic_store_n(&stop_sending, 1, __ATOMIC_RELAXED);
	fprintf(stderr, "  [%d rounds in %llu ms, %llu bytes sent meanwhile]\n",
		ROUNDS, (unsigned long long)(now_ms() - t_start),
		(unsigned long long)__atomic_load_n(&sent, __ATOMIC_RELAXED));
	/* the sender may wait for window: its peer drains, so it returns */
	pthread_join(st, &sr);
	CU_ASSERT_PTR_NULL(sr);
	CU_ASSERT_EQUAL(usmc_close(fd), 0);
	usmc_test_server_wait(&server_pid);
}

static CU_TestInfo tests[] = {
	{"a signal anywhere in a busy wait ends it (EINTR)",
	 test_signal_in_busy_wait},
	CU_TEST_INFO_NULL,
};

static int suite_init(void)
{
	usmc_test_softroce_env(17);
	return usmc_test_server_start(server, &server_pid, &tcp_port);
}

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime signals over softroce", tests},
		{NULL, NULL},
	};

	usmc_test_stat_dir(); /* (ctest's timeout bounds the run: SIGALRM is
				  * the signal under test) */
	return usmc_test_main_server(suites, suite_init, &server_pid);
}
