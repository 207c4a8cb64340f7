/* SPDX-License-Identifier: MIT */
/*
 * Locks held across fork() and exit() (docs/threads.md):
 * - a fork while another thread is inside usmc_sigaction must not leave
 *   the child a sig_lock nobody releases (its own sigaction would hang);
 * - exit() with the runtime's lock held by the exiting thread (as when a
 *   program exits from a signal handler that interrupted usmc) must still
 *   end the process: USMC_STATS reports that the counts are unavailable
 *   instead of waiting for the lock for good.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_rt.h"
#include "usmc_test.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits up to |ms| for |pid|; kills it if it is still there. Returns its
 * wait status, or -1 if it had to be killed. */
static int wait_bounded(pid_t pid, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	int status;

	while (now_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -2;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void on_usr(int sig)
{
	(void)sig;
}

static volatile int stop_flipping;

/* Installs SIGUSR1 handlers through usmc for as long as it runs: most of
 * the time this thread holds sig_lock. */
static void *flipper(void *arg)
{
	struct sigaction a;

	(void)arg;
	memset(&a, 0, sizeof(a));
	a.sa_handler = on_usr;
	while (!__atomic_load_n(&stop_flipping, __ATOMIC_RELAXED)) {
		a.sa_flags = a.sa_flags ? 0 : SA_RESTART;
		usmc_sigaction(SIGUSR1, &a, NULL);
		/* lets the forking thread in under valgrind, whose one
		 * running thread at a time would otherwise keep it waiting
		 * for sig_lock in the fork handler for seconds */
		sched_yield();
	}
	return NULL;
}

/* Enough to hit the window: without the fork handlers about a third of
 * the children hang. */
#define FORKS 200

/* Waits up to |ms| for a byte on |fd|: 1 if it came. */
static int byte_within(int fd, unsigned int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;

	return poll(&p, 1, (int)ms) == 1 && read(fd, &c, 1) == 1;
}

static void test_fork_during_sigaction(void)
{
	struct sigaction a;
	pthread_t t;
	int hung = 0, bad = 0;

	memset(&a, 0, sizeof(a));
	a.sa_handler = on_usr;
	/* warm up: the libc table and the fork handlers exist before the
	 * other thread runs */
	USMC_ASSERT_EQ_FATAL(usmc_sigaction(SIGUSR2, &a, NULL), 0);
	USMC_ASSERT_EQ_FATAL(pthread_create(&t, NULL, flipper, NULL), 0);
	for (int i = 0; i < FORKS; i++) {
		int p[2], st;
		pid_t pid;

		if (pipe(p)) {
			CU_FAIL("pipe failed");
			break;
		}
		pid = fork();
		if (pid == 0) {
			int r = usmc_sigaction(SIGUSR2, &a, NULL);

			/* reported before exit: under valgrind the exit
			 * itself (a leak check) may take seconds */
			if (write(p[1], "x", 1) != 1)
				_exit(3);
			_exit(r ? 2 : 0);
		}
		close(p[1]);
		if (pid < 0) {
			close(p[0]);
			CU_FAIL("fork failed");
			break;
		}
		/* the child's sigaction returns at once, or never */
		if (!byte_within(p[0], 10000)) {
			/* one is enough: the lock is lost for good */
			hung++;
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			close(p[0]);
			break;
		} else {
			st = wait_bounded(pid, 60000);
			if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
				bad++;
		}
		close(p[0]);
	}
	__atomic_store_n(&stop_flipping, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	if (hung)
		fprintf(stderr, "\n  a child hung in sigaction (of up to %d)",
			FORKS);
	USMC_ASSERT_EQ(hung, 0);
	USMC_ASSERT_EQ(bad, 0);
}

static void test_exit_with_lock_held(void)
{
	char path[] = "/tmp/usmc-exit-stats.XXXXXX";
	char buf[256] = {0};
	uint64_t t0;
	FILE *f;
	pid_t pid;
	int fd, st;

	fd = mkstemp(path);
	USMC_ASSERT_EQ_FATAL(fd >= 0, 1);
	close(fd);
	t0 = now_ms();
	pid = fork();
	if (pid == 0) {
		setenv("USMC_STATS", path, 1);
		if (usmc_rt_init())
			_exit(3);
		pthread_mutex_lock(&usmc_g.lock);
		exit(0);
	}
	USMC_ASSERT_EQ_FATAL(pid > 0, 1);
	st = wait_bounded(pid, 15000);
	if (st == -1)
		fprintf(stderr, "\n  exit() with the lock held hung (killed "
				"after 15 s)");
	CU_ASSERT(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fprintf(stderr, "\n  [exit took %llu ms]",
		(unsigned long long)(now_ms() - t0));
	f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL(f);
	if (f) {
		CU_ASSERT_PTR_NOT_NULL(fgets(buf, sizeof(buf), f));
		fclose(f);
	}
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "stats: unavailable"));
	unlink(path);
}

static CU_TestInfo tests[] = {
	{"fork while another thread is in sigaction",
	 test_fork_during_sigaction},
	{"exit with the runtime lock held", test_exit_with_lock_held},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime locks across fork and exit", tests},
		{NULL, NULL},
	};

	usmc_test_stat_dir();
	return usmc_test_main(suites);
}
