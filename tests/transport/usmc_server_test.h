/* SPDX-License-Identifier: MIT */
/*
 * The runtime tests' server process: forked before usmc starts its
 * progress thread, it listens with usmc on a port of its own and hands
 * that port to the parent through a pipe; the parent runs the CUnit
 * suites and kills it at the end.
 */
#ifndef USMC_SERVER_TEST_H
#define USMC_SERVER_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_test.h"

/* A usmc listener on |ip| (NULL: the wildcard) at a free port, made the
 * SMC port (smc_ports); its port (network order) in |*port|. Returns the
 * listener, or -10 (socket, bind) or -11 (smc_ports, listen). */
static inline int usmc_test_smc_listen(const char *ip, int backlog,
				       uint16_t *port)
{
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	char list[16];
	int lfd = usmc_socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_family = AF_INET;
	if (ip)
		inet_pton(AF_INET, ip, &sa.sin_addr);
	if (lfd < 0 || usmc_bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len))
		return -10;
	snprintf(list, sizeof(list), "%u", ntohs(sa.sin_port));
	if (usmc_config_set("smc_ports", list) || usmc_listen(lfd, backlog))
		return -11;
	*port = sa.sin_port;
	return lfd;
}

/* In the server: usmc_test_smc_listen, that port written to |wfd|, which
 * is closed. Returns the listener; on failure the process _exits 10
 * (socket, bind), 11 (smc_ports, listen) or 12 (the write). */
static inline int usmc_test_server_listen(const char *ip, int backlog, int wfd)
{
	uint16_t port;
	int lfd = usmc_test_smc_listen(ip, backlog, &port);

	if (lfd < 0)
		_exit(-lfd);
	if (write(wfd, &port, 2) != 2)
		_exit(12);
	close(wfd);
	return lfd;
}

/* softroce with a RoCE UDP port of this run's (from the pid and |salt|),
 * so that parallel runs do not meet. */
static inline void usmc_test_softroce_env(unsigned int salt)
{
	char port[16];

	snprintf(port, sizeof(port), "%u",
		 20000u + ((unsigned int)getpid() * salt) % 20000u);
	setenv("USMC_SOFTROCE_PORT", port, 1);
	setenv("USMC_TRANSPORT", "softroce", 1);
}

/* Forks |server| (which never returns) with the write end of a pipe into
 * |*pid| and reads the TCP port it listens on (network order) into |*port|;
 * 0, or -1. */
static inline int usmc_test_server_start(void (*server)(int wfd), pid_t *pid,
					 uint16_t *port)
{
	int p[2];

	if (pipe(p))
		return -1;
	*pid = fork();
	if (*pid < 0)
		return -1;
	if (*pid == 0) {
		close(p[0]);
		server(p[1]);
	}
	close(p[1]);
	if (read(p[0], port, 2) != 2) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return 0;
}

/* Waits for the server in |*pid| to end on its own, which it must with
 * status 0. */
static inline void usmc_test_server_wait(pid_t *pid)
{
	int status = -1;

	CU_ASSERT_EQUAL(waitpid(*pid, &status, 0), *pid);
	*pid = -1;
	CU_ASSERT(WIFEXITED(status));
	USMC_ASSERT_EQ(WEXITSTATUS(status), 0);
}

static inline void usmc_test_server_stop(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = -1;
}

/* Runs |suites| after |init| started the server into |*pid|, which is
 * killed at the end, or when it could not start (then 1). */
static inline int usmc_test_main_server(const usmc_test_suite *suites,
					int (*init)(void), pid_t *pid)
{
	int r;

	if (init()) {
		fprintf(stderr, "cannot start the server process\n");
		usmc_test_server_stop(pid);
		return 1;
	}
	r = usmc_test_main(suites);
	usmc_test_server_stop(pid);
	return r;
}

/* In the parent: a usmc socket (SOCK_STREAM | |flags|) bound to |from|
 * and connected to |to|:|port| (network order), which is made the SMC
 * port; with SOCK_NONBLOCK the connect may be in progress. Fatal on
 * failure. */
static inline int usmc_test_client_connect(const char *from, const char *to,
					   uint16_t port, int flags)
{
	struct sockaddr_in sa = {0}, me = {0};
	char list[16];
	int fd, ok;

	snprintf(list, sizeof(list), "%u", ntohs(port));
	CU_ASSERT_FATAL(usmc_config_set("smc_ports", list) == 0);
	fd = usmc_socket(AF_INET, SOCK_STREAM | flags, 0);
	CU_ASSERT_FATAL(fd >= 0);
	me.sin_family = AF_INET;
	inet_pton(AF_INET, from, &me.sin_addr);
	CU_ASSERT_FATAL(usmc_bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0);
	sa.sin_family = AF_INET;
	sa.sin_port = port;
	inet_pton(AF_INET, to, &sa.sin_addr);
	ok = !usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	     ((flags & SOCK_NONBLOCK) && errno == EINPROGRESS);
	if (!ok)
		fprintf(stderr, "connect %s -> %s: %s\n", from, to,
			strerror(errno));
	CU_ASSERT_FATAL(ok);
	return fd;
}

#endif /* USMC_SERVER_TEST_H */
