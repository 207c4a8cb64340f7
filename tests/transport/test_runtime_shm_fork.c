/* SPDX-License-Identifier: MIT */
/*
 * fork() beside a thread that talks SMC-D over shm: the forking thread's
 * prepare handlers take usmc_g.lock and the shm device's proc_lock, and a
 * thread ending a spin over shm takes them in that order too
 * (usmc_tp_shm.h, usmc_tp_shm_atfork_init). Registered the other way
 * round, a fork and a spin ending at once would each hold one lock and
 * wait for the other, for good. A peer process echoes; a thread
 * ping-pongs with it over SMC-D while the main thread forks children
 * that exit at once. A watchdog fails the test if a fork does not
 * return within 20 s. Each child must exit 0: under valgrind
 * (memcheck_test_runtime_shm_fork) one that holds the parent's runtime
 * state as lost exits 99 (usmc_smc_fork_child keeps it reachable).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_shm_peer.h"
#include "usmc_test.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static volatile int stop;
static volatile uint64_t last_fork_ms;
static int rounds, bad_rounds, client_smcd;
static struct sockaddr_in peer;

static void *pingpong(void *arg)
{
	char out[64], in[64];
	usmc_sock_info info;
	int fd = usmc_socket(AF_INET, SOCK_STREAM, 0);

	(void)arg;
	if (fd < 0 ||
	    usmc_connect(fd, (struct sockaddr *)&peer, sizeof(peer))) {
		bad_rounds++;
		return NULL;
	}
	client_smcd = !usmc_get_info(fd, &info) &&
		      info.mode == USMC_SOCK_SMCR && info.smcd;
	while (!stop) {
		for (int i = 0; i < (int)sizeof(out); i++)
			out[i] = (char)(rounds * 31 + i);
		if (usmc_send(fd, out, sizeof(out), MSG_NOSIGNAL) !=
			    (ssize_t)sizeof(out) ||
		    usmc_recv(fd, in, sizeof(in), MSG_WAITALL) !=
			    (ssize_t)sizeof(in) ||
		    memcmp(in, out, sizeof(in))) {
			bad_rounds++;
			break;
		}
		rounds++;
	}
	usmc_close(fd);
	return NULL;
}

static void *watchdog(void *arg)
{
	(void)arg;
	while (!stop) {
		usleep(100000);
		if (now_ms() - last_fork_ms > 20000) {
			fprintf(stderr, "\n  a fork did not return in 20 s: "
					"deadlock across fork\n");
			_exit(1);
		}
	}
	return NULL;
}

static void test_fork_beside_shm_pingpong(void)
{
	pthread_t t, w;
	int st, forks = 0, bad_children = 0;
	uint64_t end;
	pid_t srv = usmc_shm_echo_peer(&peer);

	CU_ASSERT_FATAL(srv > 0);
	last_fork_ms = now_ms();
	USMC_ASSERT_EQ_FATAL(pthread_create(&w, NULL, watchdog, NULL), 0);
	USMC_ASSERT_EQ_FATAL(pthread_create(&t, NULL, pingpong, NULL), 0);
	/* 3 s, and on until 20 forks and 100 round trips are done (a
	 * slow or loaded machine, valgrind): a count, not a speed; the
	 * watchdog ends a fork that hangs */
	end = now_ms() + 3000;
	while ((now_ms() < end || forks < 20 ||
		__atomic_load_n(&rounds, __ATOMIC_RELAXED) < 100) &&
	       !bad_rounds && now_ms() < end + 120000) {
		pid_t c = fork();

		if (c == 0)
			_exit(0);
		if (c < 0) {
			CU_FAIL("fork failed");
			break;
		}
		if (waitpid(c, &st, 0) != c || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			bad_children++;
		last_fork_ms = now_ms();
		forks++;
	}
	stop = 1;
	pthread_join(t, NULL);
	pthread_join(w, NULL);
	st = -1;
	waitpid(srv, &st, 0);
	fprintf(stderr, "\n  [%d forks beside %d SMC-D round trips]", forks,
		rounds);
	CU_ASSERT(client_smcd);
	USMC_ASSERT_EQ(bad_rounds, 0);
	USMC_ASSERT_EQ(bad_children, 0);
	CU_ASSERT(forks >= 20);
	CU_ASSERT(rounds >= 100);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static CU_TestInfo tests[] = {
	{"fork beside a ping-pong over shm", test_fork_beside_shm_pingpong},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"fork and the shm device's locks", tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
