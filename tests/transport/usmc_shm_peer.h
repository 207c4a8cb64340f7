/* SPDX-License-Identifier: MIT */
/*
 * A peer process for the runtime's tests over SMC-D on shm: it listens on
 * an ephemeral loopback port made an SMC port (USMC_SMC_PORTS, set with
 * USMC_SHM=1 before the runtime reads its settings) and echoes every
 * 64-byte message of one connection until EOF.
 */
#ifndef USMC_SHM_PEER_H
#define USMC_SHM_PEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "usmc.h"

static int usmc_shm_echo(int ls)
{
	char buf[64];
	int fd = usmc_accept(ls, NULL, NULL);

	if (fd < 0)
		return 1;
	for (;;) {
		ssize_t n = usmc_recv(fd, buf, sizeof(buf), MSG_WAITALL);

		if (n == 0)
			break;
		if (n != (ssize_t)sizeof(buf) ||
		    usmc_send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != n)
			return 1;
	}
	usmc_close(fd);
	return 0;
}

/* Forks the echo peer, listening when this returns, at *|peer|. Its pid
 * (it exits 0 after a clean EOF, 1 on an error), or -1. */
static pid_t usmc_shm_echo_peer(struct sockaddr_in *peer)
{
	socklen_t len = sizeof(*peer);
	int one = 1, ls, ready[2];
	char port[16], x;
	pid_t srv;

	/* The port stays bound (SO_REUSEADDR, not listening) until the
	 * peer listens on it: closed at once, another test's connect could
	 * take it as its ephemeral port first (ctest -j2). */
	ls = socket(AF_INET, SOCK_STREAM, 0);
	peer->sin_family = AF_INET;
	peer->sin_port = 0;
	peer->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ls < 0 ||
	    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(ls, (struct sockaddr *)peer, sizeof(*peer)) ||
	    getsockname(ls, (struct sockaddr *)peer, &len)) {
		if (ls >= 0)
			close(ls);
		return -1;
	}
	snprintf(port, sizeof(port), "%u", ntohs(peer->sin_port));
	setenv("USMC_SMC_PORTS", port, 1);
	setenv("USMC_SHM", "1", 1);
	if (pipe(ready)) {
		close(ls);
		return -1;
	}
	srv = fork();
	if (srv == 0) {
		int l;

		close(ls);
		l = usmc_socket(AF_INET, SOCK_STREAM, 0);
		alarm(60);
		close(ready[0]);
		usmc_setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l < 0 ||
		    usmc_bind(l, (struct sockaddr *)peer, sizeof(*peer)) ||
		    usmc_listen(l, 1) || write(ready[1], "x", 1) != 1)
			_exit(1);
		_exit(usmc_shm_echo(l));
	}
	close(ready[1]);
	if (srv < 0 || read(ready[0], &x, 1) != 1) {
		close(ls);
		close(ready[0]);
		return -1;
	}
	close(ready[0]);
	close(ls);
	return srv;
}

/* Sets the spin (USMC_SPIN_US, before the runtime reads its settings),
 * forks the echo peer into *|srv| and connects to it: the socket, on
 * SMC-D, or -1. */
static inline int usmc_shm_echo_conn(const char *spin_us, pid_t *srv)
{
	struct sockaddr_in peer;
	usmc_sock_info info;
	int fd;

	setenv("USMC_SPIN_US", spin_us, 1);
	*srv = usmc_shm_echo_peer(&peer);
	if (*srv <= 0)
		return -1;
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (usmc_connect(fd, (struct sockaddr *)&peer, sizeof(peer)) ||
	    usmc_get_info(fd, &info) || info.mode != USMC_SOCK_SMCR ||
	    !info.smcd) {
		usmc_close(fd);
		return -1;
	}
	return fd;
}

#endif
