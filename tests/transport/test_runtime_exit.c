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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* Forks once: the child runs |child| and reports a byte before it exits
 * with its result (under valgrind the exit itself, a leak check, may take
 * seconds). FORK_HUNG if the byte does not come within 10 s (the child is
 * killed), FORK_BAD if it exits other than 0, FORK_ERR if no child. */
enum { FORK_OK, FORK_BAD, FORK_HUNG, FORK_ERR };

static int fork_one(int (*child)(void *), void *arg)
{
	int p[2], st, r = FORK_OK;
	pid_t pid;

	if (pipe(p))
		return FORK_ERR;
	pid = fork();
	if (pid == 0) {
		int rc = child(arg);

		if (write(p[1], "x", 1) != 1)
			_exit(3);
		_exit(rc);
	}
	close(p[1]);
	if (pid < 0) {
		r = FORK_ERR;
	} else if (!byte_within(p[0], 10000)) {
		r = FORK_HUNG;
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	} else {
		st = wait_bounded(pid, 60000);
		if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
			r = FORK_BAD;
	}
	close(p[0]);
	return r;
}

static int sigaction_child(void *arg)
{
	return usmc_sigaction(SIGUSR2, arg, NULL) ? 2 : 0;
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
		int r = fork_one(sigaction_child, &a);

		if (r == FORK_ERR) {
			CU_FAIL("fork failed");
			break;
		}
		bad += r == FORK_BAD;
		/* the child's sigaction returns at once, or never; one is
		 * enough: the lock is lost for good */
		if (r == FORK_HUNG) {
			hung++;
			break;
		}
	}
	__atomic_store_n(&stop_flipping, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	if (hung)
		fprintf(stderr, "\n  a child hung in sigaction (of up to %d)",
			FORKS);
	USMC_ASSERT_EQ(hung, 0);
	USMC_ASSERT_EQ(bad, 0);
}

static volatile int stop_churn;
static int churn_bad, churn_conns;

/* One loopback connection through usmc on |smc| (an SMC port, where the
 * transport cannot open: both ends fall back after a Decline) or a plain
 * one; 64 bytes each way, compared; all closed. */
static int churn_conn(int smc)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	char list[16], out[64], in[64];
	int l, c, a, ok = 0;

	l = usmc_socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || usmc_bind(l, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		goto out_l;
	snprintf(list, sizeof(list), "%u", smc ? ntohs(sa.sin_port) : 1);
	if (usmc_config_set("smc_ports", list) || usmc_listen(l, 4))
		goto out_l;
	c = usmc_socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0)
		goto out_l;
	if (usmc_connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		goto out_c;
	a = usmc_accept(l, NULL, NULL);
	if (a < 0)
		goto out_c;
	for (int i = 0; i < (int)sizeof(out); i++)
		out[i] = (char)(churn_conns * 7 + i);
	ok = usmc_send(c, out, sizeof(out), MSG_NOSIGNAL) == sizeof(out) &&
	     usmc_recv(a, in, sizeof(in), MSG_WAITALL) == sizeof(in) &&
	     !memcmp(in, out, sizeof(in)) &&
	     usmc_send(a, in, sizeof(in), MSG_NOSIGNAL) == sizeof(in) &&
	     usmc_recv(c, out, sizeof(out), MSG_WAITALL) == sizeof(out) &&
	     !memcmp(in, out, sizeof(in));
	usmc_close(a);
out_c:
	usmc_close(c);
out_l:
	if (l >= 0)
		usmc_close(l);
	return ok;
}

/* Connections come and go: each close with the publisher idle starts it
 * again, and it ends 50 ms after the last socket came or went with its
 * table quiet (every socket the kernel's);
 * every 300 ms an SMC-port connection starts the progress thread, which
 * ends 50 ms after its listener closed. */
static void *churn(void *arg)
{
	uint64_t next_smc = 0;

	(void)arg;
	while (!__atomic_load_n(&stop_churn, __ATOMIC_RELAXED)) {
		int smc = now_ms() >= next_smc;

		if (smc)
			next_smc = now_ms() + 300;
		if (!churn_conn(smc))
			churn_bad++;
		churn_conns++;
	}
	return NULL;
}

/* Allocates past the thread cache (each size class's shared free lists,
 * whose locks an ending thread takes), then opens and closes a usmc
 * socket, which starts the child's own publisher. */
static int churn_child(void *arg)
{
	static char *m[64];
	int ok = 1, fd;

	(void)arg;
	for (size_t sz = 16; sz <= 1 << 16; sz += sz / 2) {
		for (int i = 0; i < 64; i++) {
			m[i] = malloc(sz);
			ok &= m[i] != NULL;
		}
		for (int i = 0; i < 64; i++)
			free(m[i]);
	}
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	ok &= fd >= 0 && usmc_close(fd) == 0;
	return ok ? 0 : 2;
}

/* The runtime's threads end when idle and start again with new work: a
 * fork must never see one half torn down (docs/threads.md): each child
 * (churn_child) must report within 10 s. */
static void test_fork_during_thread_churn(void)
{
	uint64_t end;
	pthread_t t;
	int forks = 0, hung = 0, bad = 0;

	CU_ASSERT_FATAL(usmc_config_set("transport", "no-such-rnic") == 0);
	USMC_ASSERT_EQ_FATAL(pthread_create(&t, NULL, churn, NULL), 0);
	/* 3 s, and at least 20 forks (valgrind's children take long to
	 * exit, a leak check each), within 60 s */
	end = now_ms() + 3000;
	while ((now_ms() < end || forks < 20) && now_ms() < end + 57000 &&
	       forks < 2000 && !hung) {
		int r = fork_one(churn_child, NULL);

		if (r == FORK_ERR) {
			CU_FAIL("fork failed");
			break;
		}
		forks++;
		bad += r == FORK_BAD;
		hung += r == FORK_HUNG;
	}
	__atomic_store_n(&stop_churn, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	usmc_config_set("transport", "softroce");
	fprintf(stderr, "\n  [%d forks beside %d connections]", forks,
		churn_conns);
	if (hung)
		fprintf(stderr, "\n  a child hung (of %d forks)", forks);
	USMC_ASSERT_EQ(hung, 0);
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(churn_bad, 0);
	CU_ASSERT(forks >= 20);
	CU_ASSERT(churn_conns >= 20);
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
	{"fork while the runtime's threads end and start",
	 test_fork_during_thread_churn},
	{"exit with the runtime lock held", test_exit_with_lock_held},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime locks across fork and exit", tests},
		{NULL, NULL},
	};

	/* explicit mode (smc_ports), without the SYN option */
	setenv("USMC_SYNOPT", "off", 1);
	usmc_test_stat_dir();
	return usmc_test_main(suites);
}
