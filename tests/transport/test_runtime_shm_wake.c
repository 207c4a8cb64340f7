/* SPDX-License-Identifier: MIT */
/*
 * Who wakes on a peer's shm doorbell (docs/threads.md, "The direct
 * poller"). An app thread asleep in epoll_wait, or in poll with a kernel
 * fd beside its usmc socket, has the shm device's fd in its own kernel
 * wait and runs the device's events itself: the doorbell wakes it, not
 * the progress thread, which would then have to wake it in turn (two
 * context switches per message where one does).
 *
 * The spin before the sleep is off (USMC_SPIN_US=0), so each echo of the
 * peer finds this process asleep and rings its doorbell. The runtime's
 * counters (usmc_stats.dev_wakes_progress, dev_wakes_app) say which
 * thread took each ring. Before the app thread took it, every ring went
 * to the progress thread: about ROUNDS progress wake-ups, none of the
 * app's. Now the progress thread still wakes when it had taken the fd
 * back (the app thread away for over 1 ms, docs/threads.md): a few on a
 * busy machine, far under ROUNDS / 10.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_shm_peer.h"
#include "usmc_test.h"

#define ROUNDS 1000
#define MSG    64

static int fd = -1;
static pid_t srv = -1;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void setup_conn(void)
{
	if (fd >= 0)
		return;
	/* every wait sleeps at once: each echo rings the doorbell */
	fd = usmc_shm_echo_conn("0", &srv);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(usmc_fcntl(fd, F_SETFL, O_NONBLOCK) == 0);
}

static void fill(uint8_t *b, int round)
{
	for (int i = 0; i < MSG; i++)
		b[i] = (uint8_t)(round * 31 + i * 7 + 1);
}

/* One round: a message out, the wait for its echo (|wait_fn|; once
 * before the first read too with |wait_first|), the echo read and
 * compared byte for byte. 0, or -1 on any failure. */
static int round_trip_w(int round, int (*wait_fn)(void), int wait_first)
{
	uint8_t out[MSG], in[MSG];
	size_t got = 0;

	fill(out, round);
	if (usmc_send(fd, out, MSG, MSG_NOSIGNAL) != MSG) {
		fprintf(stderr, "\n  [round %d: send: %s]", round,
			strerror(errno));
		return -1;
	}
	if (wait_first && wait_fn() != 1)
		return -1;
	while (got < MSG) {
		ssize_t n = usmc_recv(fd, in + got, MSG - got, 0);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0 || errno != EAGAIN) {
			fprintf(stderr, "\n  [round %d: recv: %zd, %s]", round,
				n, n ? strerror(errno) : "EOF");
			return -1;
		}
		if (wait_fn() != 1)
			return -1;
	}
	if (memcmp(in, out, MSG)) {
		fprintf(stderr, "\n  [round %d: the echo differs]", round);
		return -1;
	}
	return 0;
}

static int round_trip(int round, int (*wait_fn)(void))
{
	return round_trip_w(round, wait_fn, 0);
}

static int ep = -1;

static int wait_epoll(void)
{
	struct epoll_event ev;
	int n;

	do
		n = usmc_epoll_wait(ep, &ev, 1, 5000);
	while (n < 0 && errno == EINTR);
	return n == 1 && ev.data.fd == fd && (ev.events & EPOLLIN) ? 1 : -1;
}

/* a pipe beside the socket: poll sleeps in the kernel's ppoll (with only
 * usmc sockets it waits in usmc_wait, already a direct poller) */
static int pfd[2] = {-1, -1};

static int wait_poll(void)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
			      {.fd = pfd[0], .events = POLLIN}};
	int n;

	do
		n = usmc_poll(p, 2, 5000);
	while (n < 0 && errno == EINTR);
	return n == 1 && (p[0].revents & POLLIN) && !p[1].revents ? 1 : -1;
}

static void run(const char *what, int (*wait_fn)(void))
{
	usmc_stats a, b;
	uint64_t prog, app;
	int bad = 0;

	usmc_get_stats(&a);
	for (int i = 0; i < ROUNDS && !bad; i++)
		bad = round_trip(i, wait_fn) != 0;
	usmc_get_stats(&b);
	USMC_ASSERT_EQ(bad, 0);
	prog = b.dev_wakes_progress - a.dev_wakes_progress;
	app = b.dev_wakes_app - a.dev_wakes_app;
	fprintf(stderr,
		"\n  [%s: %d round trips, the doorbell woke the app thread "
		"%llu times, the progress thread %llu]",
		what, ROUNDS, (unsigned long long)app,
		(unsigned long long)prog);
	/* the app thread took the rings itself */
	CU_ASSERT(app >= ROUNDS / 2);
	/* and the progress thread was not on the path */
	CU_ASSERT(prog <= ROUNDS / 10);
}

static void test_epoll(void)
{
	struct epoll_event ev = {.events = EPOLLIN};

	setup_conn();
	ep = usmc_epoll_create1(0);
	ev.data.fd = fd;
	CU_ASSERT_FATAL(ep >= 0 && !usmc_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	run("epoll_wait", wait_epoll);
	/* the set goes; the next test's poll takes the device */
	USMC_ASSERT_EQ(usmc_close(ep), 0);
	ep = -1;
}

static void test_poll(void)
{
	setup_conn();
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	run("poll with a pipe", wait_poll);
	close(pfd[0]);
	close(pfd[1]);
}

/* poll on the epoll fd itself (as an event loop nested in another): the
 * set's eventfd must be written for it, although no thread sleeps in
 * that set's epoll_wait (usmc_notify_arm: such a set is armed for good,
 * usmc_epoll_external) */
static int wait_poll_ep(void)
{
	struct pollfd p = {.fd = ep, .events = POLLIN};
	struct epoll_event ev;
	uint64_t end = now_ms() + 5000;
	int n;

	/* the set's eventfd may say ready before its socket is (it stays
	 * readable until an epoll_wait that sleeps reads it): as a nested
	 * loop, look at the set and poll again */
	while (now_ms() < end) {
		n = usmc_poll(&p, 1, 5000);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1 || !(p.revents & POLLIN)) {
			struct pollfd q = {.fd = fd, .events = POLLIN};
			usmc_stats st;
			int m = usmc_epoll_wait(ep, &ev, 1, 0);
			int k = usmc_poll(&q, 1, 0);

			/* which layer lost the wake-up: the set (its eventfd),
			 * the socket, or the device (no doorbell taken) */
			usmc_get_stats(&st);
			fprintf(stderr,
				"\n  [poll on the set: %d, revents %#x, %s; "
				"then epoll_wait %d, poll on the socket %d "
				"(revents %#x); doorbell taken by the app "
				"thread %llu times, the progress thread %llu]",
				n, (unsigned)p.revents,
				n < 0 ? strerror(errno) : "", m, k,
				(unsigned)q.revents,
				(unsigned long long)st.dev_wakes_app,
				(unsigned long long)st.dev_wakes_progress);
			return -1;
		}
		n = usmc_epoll_wait(ep, &ev, 1, 0);
		if (n == 1) {
			if (ev.data.fd == fd && (ev.events & EPOLLIN))
				return 1;
			fprintf(stderr, "\n  [epoll_wait: fd %d events %#x]",
				ev.data.fd, ev.events);
			return -1;
		}
		if (n < 0) {
			fprintf(stderr, "\n  [epoll_wait: %s]",
				strerror(errno));
			return -1;
		}
	}
	return -1;
}

static void test_poll_epfd(void)
{
	struct epoll_event ev = {.events = EPOLLIN};
	int bad = 0;

	setup_conn();
	ep = usmc_epoll_create1(0);
	ev.data.fd = fd;
	CU_ASSERT_FATAL(ep >= 0 && !usmc_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	for (int i = 0; i < 100 && !bad; i++)
		bad = round_trip(i, wait_poll_ep) != 0;
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(usmc_close(ep), 0);
	ep = -1;
}

/* Two threads asleep in epoll_wait on two sets that hold the socket:
 * one of them takes the doorbell (the direct poller), and its readiness
 * change must wake the other through that one's set (armed while it
 * sleeps), every round. */
static int ep2 = -1;
static sem_t go, saw;
static volatile int b_bad;

static void *other_waiter(void *arg)
{
	struct epoll_event ev;

	(void)arg;
	for (int i = 0; i < 200; i++) {
		int n;

		sem_wait(&go);
		do
			n = usmc_epoll_wait(ep2, &ev, 1, 5000);
		while (n < 0 && errno == EINTR);
		if (n != 1 || ev.data.fd != fd)
			b_bad++;
		sem_post(&saw);
	}
	return NULL;
}

static int wait_both(void)
{
	struct timespec ts;

	if (wait_epoll() != 1)
		return -1;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 6;
	return sem_timedwait(&saw, &ts) ? -1 : 1;
}

static void test_two_threads(void)
{
	struct epoll_event ev = {.events = EPOLLIN};
	pthread_t th;
	int bad = 0;

	setup_conn();
	ep = usmc_epoll_create1(0);
	ep2 = usmc_epoll_create1(0);
	ev.data.fd = fd;
	CU_ASSERT_FATAL(ep >= 0 && !usmc_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	CU_ASSERT_FATAL(ep2 >= 0 &&
			!usmc_epoll_ctl(ep2, EPOLL_CTL_ADD, fd, &ev));
	sem_init(&go, 0, 0);
	sem_init(&saw, 0, 0);
	CU_ASSERT_FATAL(!pthread_create(&th, NULL, other_waiter, NULL));
	for (int i = 0; i < 200; i++) {
		sem_post(&go);
		/* the other thread asleep first, or not: either takes it */
		if (i % 2)
			usleep(200);
		/* both wait in each round, the echo there yet or not */
		if (!bad)
			bad = round_trip_w(i, wait_both, 1) != 0;
	}
	pthread_join(th, NULL);
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(b_bad, 0);
	USMC_ASSERT_EQ(usmc_close(ep), 0);
	USMC_ASSERT_EQ(usmc_close(ep2), 0);
	ep = ep2 = -1;
}

/* Two threads in epoll_wait on one set: this one waits for each echo as
 * the shm device's direct poller, the other comes and goes without the
 * role. Its sleep must leave the device's fd in the set on for this one
 * (it was switched off: the doorbell then reached no thread, and each
 * echo waited out the 5 s timeout). */
static volatile int stop_other;

static void *same_set_waiter(void *arg)
{
	struct epoll_event ev;

	(void)arg;
	while (!stop_other)
		if (usmc_epoll_wait(ep, &ev, 1, 2) == 1)
			usleep(100); /* the echo, until this thread reads it */
	return NULL;
}

static void test_one_set_two_threads(void)
{
	struct epoll_event ev = {.events = EPOLLIN};
	pthread_t th;
	uint64_t t0;
	int bad = 0;

	setup_conn();
	ep = usmc_epoll_create1(0);
	ev.data.fd = fd;
	CU_ASSERT_FATAL(ep >= 0 && !usmc_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	stop_other = 0;
	CU_ASSERT_FATAL(!pthread_create(&th, NULL, same_set_waiter, NULL));
	t0 = now_ms();
	for (int i = 0; i < 300 && !bad; i++)
		bad = round_trip(i, wait_epoll) != 0;
	t0 = now_ms() - t0;
	stop_other = 1;
	pthread_join(th, NULL);
	fprintf(stderr, "\n  [300 round trips in %llu ms]",
		(unsigned long long)t0);
	USMC_ASSERT_EQ(bad, 0);
	/* no round waited for a timeout */
	CU_ASSERT(t0 < 4000);
	USMC_ASSERT_EQ(usmc_close(ep), 0);
	ep = -1;
}

/* the peer ends cleanly at our close, its every echo matched */
static void test_close(void)
{
	int st = -1;

	setup_conn();
	usmc_close(fd);
	waitpid(srv, &st, 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static CU_TestInfo tests[] = {
	{"epoll_wait: the app thread takes the doorbell", test_epoll},
	{"poll with a kernel fd: the app thread takes the doorbell", test_poll},
	{"poll on the epoll fd sees the set's sockets", test_poll_epfd},
	{"epoll_wait in two threads: the one without the doorbell is woken",
	 test_two_threads},
	{"epoll_wait in two threads on one set: the doorbell still wakes one",
	 test_one_set_two_threads},
	{"the peer sees a clean close", test_close},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"shm doorbell: who wakes", tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
