/* SPDX-License-Identifier: MIT */
/*
 * The last link of an established connection's link group dies before any
 * data moved (docs/core.md "Failover", docs/runtime.md "Fallback"): both
 * processes (fork; fault:softroce, both devices killed through their
 * control sockets once the connection is up) switch the socket to its TCP
 * connection, the server while blocked in recv, and the data then crosses
 * TCP byte for byte both ways with the reason NOACTLINK on both sides.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_server_test.h"
#include "usmc_stream_test.h"
#include "usmc_test.h"

#define UP_LEN	  (300 * 1024 + 11)
#define DOWN_LEN  (100 * 1024 + 7)
#define NOACTLINK 0x030a0000u /* SMC_CLC_DECL_NOACTLINK */

static pid_t server_pid = -1;
static uint16_t tcp_port;
static char ctl_dir[64];

/* Sends |sched| to every fault control socket in ctl_dir (docs/fault.md
 * "Control"); returns how many took it. NULL removes them. */
static int fault_all(const char *sched)
{
	DIR *d = opendir(ctl_dir);
	struct dirent *e;
	int n = 0, fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	while (d && fd >= 0 && (e = readdir(d))) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};

		size_t dl = strlen(ctl_dir), nl = strlen(e->d_name);

		if (strncmp(e->d_name, "usmc-fault.", 11) ||
		    dl + nl + 2 > sizeof(sa.sun_path))
			continue;
		memcpy(sa.sun_path, ctl_dir, dl);
		sa.sun_path[dl] = '/';
		memcpy(sa.sun_path + dl + 1, e->d_name, nl + 1);
		if (!sched) {
			unlink(sa.sun_path); /* cleaning up */
			continue;
		}
		n += sendto(fd, sched, strlen(sched), 0, (struct sockaddr *)&sa,
			    sizeof(sa)) > 0;
	}
	if (d)
		closedir(d);
	if (fd >= 0)
		close(fd);
	return n;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fell_back(int fd)
{
	usmc_sock_info in;

	return !usmc_get_info(fd, &in) && in.mode == USMC_SOCK_TCP &&
	       in.fallback_code == NOACTLINK;
}

/* Child: one connection, SMC-R; blocked in recv when the link dies; the
 * rest over TCP. Exit 0 only if all of it held. */
static void server(int wfd)
{
	usmc_sock_info in;
	int lfd, fd;
	long got;

	alarm(30);
	lfd = usmc_test_server_listen("127.0.0.2", 4, wfd);
	fd = usmc_accept(lfd, NULL, NULL);
	if (fd < 0 || usmc_get_info(fd, &in) || in.mode != USMC_SOCK_SMCR)
		_exit(20);
	got = usmc_test_recv_pat_pause(usmc_test_usmc_recv, fd, 7, "server", -1,
				       0);
	if (got != UP_LEN) {
		fprintf(stderr, "server: got %ld\n", got);
		_exit(21);
	}
	if (!fell_back(fd)) {
		usmc_get_info(fd, &in);
		fprintf(stderr, "server: mode %d code 0x%08x\n", (int)in.mode,
			in.fallback_code);
		_exit(22);
	}
	if (usmc_test_send_pat(usmc_test_usmc_send, fd, DOWN_LEN, 8))
		_exit(23);
	usmc_close(fd);
	_exit(0);
}

static int suite_init(void)
{
	usmc_test_softroce_env(17);
	setenv("USMC_TRANSPORT", "fault:softroce", 1);
	snprintf(ctl_dir, sizeof(ctl_dir), "/tmp/usmc-lastlink.%d",
		 (int)getpid());
	if (mkdir(ctl_dir, 0700) && errno != EEXIST)
		return -1;
	setenv("USMC_FAULT_CTL_DIR", ctl_dir, 1);
	return usmc_test_server_start(server, &server_pid, &tcp_port);
}

static void test_lastlink_fallback(void)
{
	int fd =
		usmc_test_client_connect("127.0.0.1", "127.0.0.2", tcp_port, 0);
	usmc_sock_info in;
	double t0 = now_s();

	CU_ASSERT_EQUAL(usmc_get_info(fd, &in), 0);
	USMC_ASSERT_EQ_FATAL(in.mode, USMC_SOCK_SMCR);
	/* no byte yet: both devices die under the idle connection */
	USMC_ASSERT_EQ(fault_all("device-fatal"), 2);
	t0 = now_s();
	while (!fell_back(fd) && now_s() - t0 < 10)
		usleep(10000);
	CU_ASSERT_FATAL(fell_back(fd));
	fprintf(stderr, "  [client on TCP %.0f ms after the fault]\n",
		(now_s() - t0) * 1e3);
	CU_ASSERT_EQUAL(usmc_get_info(fd, &in), 0);
	CU_ASSERT_STRING_EQUAL(in.fallback_name, "NOACTLINK");
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, UP_LEN, 7),
			0);
	CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
	USMC_ASSERT_EQ(usmc_test_recv_pat(usmc_test_usmc_recv, fd, 8, "client"),
		       DOWN_LEN);
	CU_ASSERT_EQUAL(usmc_close(fd), 0);
	usmc_test_server_wait(&server_pid);
}

static CU_TestInfo tests[] = {
	{"last link dies before any data: both sockets go on over TCP",
	 test_lastlink_fallback},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime, last link", tests},
		{NULL, NULL},
	};

	int r;

	alarm(60);
	r = usmc_test_main_server(suites, suite_init, &server_pid);
	fault_all(NULL);
	rmdir(ctl_dir);
	return r;
}
