/* SPDX-License-Identifier: MIT */
/*
 * epoll_wait over an SMC-D connection on shm, and the spin on the shm
 * device before its sleep (docs/preload.md, "Readiness"). The
 * connection stays idle: the spin sees no signal of its own and runs its
 * whole budget (USMC_SPIN_US=1000, the most allowed), unless:
 *  - a kernel fd of the set is ready (a pipe): the spin looks at the set
 *    first, before any yield, and hands over to the kernel's epoll_pwait,
 *    which returns the pipe's event at once (a few us, however busy the
 *    machine: the look 128 looks in, after 4 yields, took up to 1 ms
 *    under load 12). When the spin
 *    said "look again" instead, the call spun on: 1 to 24 ms here, and
 *    on a busy machine up to its timeout (preload_shm_mixed's epoll
 *    case then got no event in 5 s);
 *  - a signal blocked in the thread but let in by epoll_pwait's mask is
 *    pending when the call starts: the kernel's epoll_pwait would run
 *    its handler and return EINTR at once, and the spin takes it the same
 *    way. 200 such calls took at least 200 ms when the spin ignored the
 *    mask (it waited out its budget), and take about 1 ms.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_rt.h"
#include "usmc_shm_peer.h"
#include "usmc_test.h"
#include "usmc_tp_shm.h"

#define CALLS 200

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* The spins the shm device armed (each spin of a wait, epoll_wait's
 * too, arms it once): a call that ended at once for the right reason but
 * never spun would pass the timings alone. */
static uint64_t spin_arms(void)
{
	usmc_tp_shm_stats st = {0};
	unsigned int idx;
	int r;

	pthread_mutex_lock(&usmc_g.lock);
	r = usmc_tp_shm_get_stats(usmc_smc_shm_tp(&idx), &st);
	pthread_mutex_unlock(&usmc_g.lock);
	USMC_ASSERT_EQ(r, 0);
	return st.spin_arms;
}

/* A thread whose sleep after a spin lasted long stops spinning (an idle
 * connection); on a loaded machine the 5 ms wait below may oversleep
 * that far. A sleep of 0 makes the thread spin again, so each call
 * spins whatever the scheduling. */
static void spin_warm(void)
{
	usmc_rt_spin_learn(0);
}

/* one idle SMC-D connection to an echo peer, in epoll set |ep| */
static int fd = -1, ep = -1;
static pid_t srv = -1;

static void setup_conn(void)
{
	struct epoll_event ev = {.events = EPOLLIN};

	if (ep >= 0)
		return;
	fd = usmc_shm_echo_conn("1000", &srv);
	CU_ASSERT_FATAL(fd >= 0);
	ep = usmc_epoll_create1(0);
	ev.data.fd = fd;
	CU_ASSERT_FATAL(ep >= 0 && !usmc_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

static void test_ready_kernel_fd_ends_the_spin(void)
{
	struct epoll_event ev = {.events = EPOLLIN}, out;
	int pfd[2], n, bad = 0;
	uint64_t t0, took, best = UINT64_MAX, worst = 0, arms;
	char b;

	setup_conn();
	CU_ASSERT_FATAL(pipe(pfd) == 0);
	ev.data.fd = pfd[0];
	CU_ASSERT_FATAL(!usmc_epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev));
	USMC_ASSERT_EQ(usmc_epoll_wait(ep, &out, 1, 5), 0);
	arms = spin_arms();
	/* the best of 20: a busy machine may delay a few */
	for (int i = 0; i < 20; i++) {
		CU_ASSERT_FATAL(write(pfd[1], "p", 1) == 1);
		spin_warm();
		t0 = now_us();
		n = usmc_epoll_wait(ep, &out, 1, 2000);
		took = now_us() - t0;
		if (n != 1 || out.data.fd != pfd[0] || read(pfd[0], &b, 1) != 1)
			bad++;
		best = took < best ? took : best;
		worst = took > worst ? took : worst;
	}
	fprintf(stderr, "\n  [the pipe's event after %llu to %llu us]",
		(unsigned long long)best, (unsigned long long)worst);
	USMC_ASSERT_EQ(bad, 0);
	/* each call spun, and the spin's first look ended it */
	arms = spin_arms() - arms;
	fprintf(stderr, " [%llu spins]", (unsigned long long)arms);
	CU_ASSERT(arms >= 20);
	/* not after the spin's 1 ms budget (1 to 24 ms, or the whole
	 * timeout, when the spin had the call look again) */
	CU_ASSERT(best < 500);
	USMC_ASSERT_EQ(usmc_epoll_ctl(ep, EPOLL_CTL_DEL, pfd[0], NULL), 0);
	close(pfd[0]);
	close(pfd[1]);
}

static void test_pending_signal_ends_the_spin(void)
{
	struct epoll_event out;
	struct sigaction sa;
	sigset_t usr1, open_mask;
	int eintr = 0, other = 0;
	uint64_t t0, took, arms;

	setup_conn();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	CU_ASSERT_FATAL(!sigaction(SIGUSR1, &sa, NULL));
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	CU_ASSERT_FATAL(!pthread_sigmask(SIG_BLOCK, &usr1, &open_mask));
	sigdelset(&open_mask, SIGUSR1);

	/* the connection is idle: nothing but the signal ends a call */
	USMC_ASSERT_EQ(usmc_epoll_pwait(ep, &out, 1, 5, &open_mask), 0);
	arms = spin_arms();
	t0 = now_us();
	for (int i = 0; i < CALLS; i++) {
		int r;

		spin_warm();
		pthread_kill(pthread_self(), SIGUSR1);
		r = usmc_epoll_pwait(ep, &out, 1, 5000, &open_mask);
		if (r < 0 && errno == EINTR)
			eintr++;
		else
			other++;
	}
	took = now_us() - t0;
	fprintf(stderr, "\n  [%d calls with a pending signal: %llu us]", CALLS,
		(unsigned long long)took);
	USMC_ASSERT_EQ(eintr, CALLS);
	USMC_ASSERT_EQ(other, 0);
	USMC_ASSERT_EQ(handled, CALLS);
	/* the spin took each signal (without it the kernel's epoll_pwait
	 * would have, as fast) */
	arms = spin_arms() - arms;
	fprintf(stderr, " [%llu spins]", (unsigned long long)arms);
	CU_ASSERT(arms >= CALLS);
	/* each call ended in microseconds, not after a 1 ms spin */
	CU_ASSERT(took < (uint64_t)CALLS * 1000 / 4);

	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
}

/* the peer ends cleanly at our close */
static void test_close(void)
{
	int st = -1;

	setup_conn();
	usmc_close(ep);
	usmc_close(fd);
	waitpid(srv, &st, 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static CU_TestInfo tests[] = {
	{"a ready kernel fd of the set ends the spin",
	 test_ready_kernel_fd_ends_the_spin},
	{"a pending signal the mask lets in ends the spin",
	 test_pending_signal_ends_the_spin},
	{"the peer sees a clean close", test_close},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"epoll over shm: what ends the spin", tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
