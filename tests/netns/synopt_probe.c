/* SPDX-License-Identifier: MIT */
/*
 * Test helper for test_synopt.sh: a server or a client of plain kernel TCP
 * sockets, some marked with usmc_synopt, each checking what
 * usmc_synopt_peer_has_smc says after the handshake.
 *
 *   synopt_probe [--netns NAME] [--no-bpf] server SPEC...
 *   synopt_probe [--netns NAME] [--no-bpf] client SPEC...
 *   synopt_probe probe      (init only: exit 0 loaded, 2 not, with reason)
 *   synopt_probe hold       (init, print "holding", keep it until stdin
 *                            closes)
 *
 * SPEC is ADDR,PORT,MODE,EXPECT: the server binds ADDR, the client connects
 * to it. MODE: mark, plain (not marked), forgot (server: marked then
 * forgotten before listen), stale (server: another socket on the port was
 * marked and closed without forget; this one is not marked). EXPECT: 1 or 0 (peer_has_smc), none (the
 * socket is unknown to usmc_synopt: -ENOENT), - (no check).
 * The server prints "ready" once every listener listens, accepts one
 * connection per listener, and answers "ping" with "pong".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usmc_synopt.h"

#define MAX_SPEC 16

struct spec {
	struct sockaddr_storage ss;
	socklen_t sslen;
	char text[96];
	char mode[8];
	char expect[8];
	int fd;
	int done;
};

static usmc_synopt *so;
static int failures;

static void fail(const struct spec *sp, const char *what)
{
	printf("FAIL %s: %s\n", sp ? sp->text : "-", what);
	failures++;
}

static int parse(struct spec *sp, const char *arg)
{
	char buf[96], *addr, *port, *mode, *expect, *save = NULL;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&sp->ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&sp->ss;

	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	snprintf(sp->text, sizeof(sp->text), "%s", arg);
	snprintf(buf, sizeof(buf), "%s", arg);
	addr = strtok_r(buf, ",", &save);
	port = strtok_r(NULL, ",", &save);
	mode = strtok_r(NULL, ",", &save);
	expect = strtok_r(NULL, ",", &save);
	if (!addr || !port || !mode || !expect)
		return -1;
	snprintf(sp->mode, sizeof(sp->mode), "%s", mode);
	snprintf(sp->expect, sizeof(sp->expect), "%s", expect);
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)atoi(port));
		sp->sslen = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)atoi(port));
		sp->sslen = sizeof(*a6);
	} else {
		return -1;
	}
	return 0;
}

static void check(struct spec *sp, int fd)
{
	char msg[128];
	int r;

	if (!strcmp(sp->expect, "-"))
		return;
	if (!so) {
		fail(sp,
		     "an expectation needs the BPF program (--no-bpf given)");
		return;
	}
	r = usmc_synopt_peer_has_smc(so, fd);
	printf("%s: peer_has_smc=%d%s%s\n", sp->text, r, r < 0 ? " " : "",
	       r < 0 ? strerror(-r) : "");
	if (!strcmp(sp->expect, "none") ? r != -ENOENT
					: r != atoi(sp->expect)) {
		snprintf(msg, sizeof(msg), "peer_has_smc %d, expected %s", r,
			 sp->expect);
		fail(sp, msg);
	}
}

static int exchange(int fd, const char *out, const char *in)
{
	char buf[8] = {0};
	size_t got = 0;
	ssize_t n;

	if (write(fd, out, 4) != 4)
		return -1;
	while (got < 4) {
		n = read(fd, buf + got, 4 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return memcmp(buf, in, 4) ? -1 : 0;
}

static int server(struct spec *sp, int n)
{
	struct pollfd pfd[MAX_SPEC];
	int i, one = 1, left = n, r;

	for (i = 0; i < n; i++) {
		if (!strcmp(sp[i].mode, "stale")) {
			/* Marked, then closed without forget: its key stays
			 * in the map for the next listener on the port. */
			sp[i].fd = socket(sp[i].ss.ss_family, SOCK_STREAM, 0);
			setsockopt(sp[i].fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
			if (bind(sp[i].fd, (struct sockaddr *)&sp[i].ss,
				 sp[i].sslen) ||
			    usmc_synopt_mark_listen(so, sp[i].fd)) {
				perror("stale listener");
				return 1;
			}
			close(sp[i].fd);
		}
		sp[i].fd = socket(sp[i].ss.ss_family, SOCK_STREAM, 0);
		setsockopt(sp[i].fd, SOL_SOCKET, SO_REUSEADDR, &one,
			   sizeof(one));
		if (bind(sp[i].fd, (struct sockaddr *)&sp[i].ss, sp[i].sslen)) {
			perror("bind");
			return 1;
		}
		if (strcmp(sp[i].mode, "plain") &&
		    strcmp(sp[i].mode, "stale")) {
			r = usmc_synopt_mark_listen(so, sp[i].fd);
			if (r) {
				printf("mark_listen: %s\n", strerror(-r));
				return 1;
			}
			if (usmc_synopt_mark_listen(so, sp[i].fd))
				fail(&sp[i], "marking twice failed");
		}
		if (!strcmp(sp[i].mode, "forgot"))
			usmc_synopt_forget(so, sp[i].fd);
		if (listen(sp[i].fd, 8)) {
			perror("listen");
			return 1;
		}
		if (so && !strcmp(sp[i].mode, "mark") &&
		    usmc_synopt_mark_listen(so, sp[i].fd) != -EISCONN)
			fail(&sp[i], "marking a listening socket was accepted");
		pfd[i].fd = sp[i].fd;
		pfd[i].events = POLLIN;
	}
	printf("ready\n");
	fflush(stdout);
	while (left) {
		if (poll(pfd, (nfds_t)n, -1) < 0) {
			perror("poll");
			return 1;
		}
		for (i = 0; i < n; i++) {
			int c;

			if (!(pfd[i].revents & POLLIN) || sp[i].done)
				continue;
			c = accept(sp[i].fd, NULL, NULL);
			if (c < 0)
				continue;
			check(&sp[i], c);
			if (exchange(c, "pong", "ping"))
				fail(&sp[i], "ping/pong failed");
			if (so)
				usmc_synopt_forget(so, c);
			close(c);
			sp[i].done = 1;
			pfd[i].fd = -1;
			left--;
		}
	}
	for (i = 0; i < n; i++) {
		if (so)
			usmc_synopt_forget(so, sp[i].fd);
		close(sp[i].fd);
	}
	return 0;
}

static int client(struct spec *sp, int n)
{
	int i, fd, r;

	for (i = 0; i < n; i++) {
		fd = socket(sp[i].ss.ss_family, SOCK_STREAM, 0);
		if (!strcmp(sp[i].mode, "mark")) {
			r = usmc_synopt_mark_connect(so, fd);
			if (r) {
				printf("mark_connect: %s\n", strerror(-r));
				return 1;
			}
		}
		if (connect(fd, (struct sockaddr *)&sp[i].ss, sp[i].sslen)) {
			perror("connect");
			return 1;
		}
		check(&sp[i], fd);
		if (so && !strcmp(sp[i].mode, "mark") &&
		    usmc_synopt_mark_connect(so, fd) != -EISCONN)
			fail(&sp[i], "marking a connected socket was accepted");
		/* The client speaks first: "ping", the server answers. */
		if (exchange(fd, "ping", "pong"))
			fail(&sp[i], "ping/pong failed");
		if (so)
			usmc_synopt_forget(so, fd);
		close(fd);
	}
	return 0;
}

/* Every BPF object fd (maps, program, link) must be close-on-exec, since
 * the library lives inside programs that exec. */
static void check_cloexec(void)
{
	char path[64], target[64];
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int fd, seen = 0, bad = 0;
	ssize_t n;

	if (!d) {
		fail(NULL, "cannot list /proc/self/fd");
		return;
	}
	while ((de = readdir(d))) {
		fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "anon_inode:bpf", 14))
			continue;
		seen++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC)) {
			printf("fd %d (%s) lacks FD_CLOEXEC\n", fd, target);
			bad++;
		}
	}
	closedir(d);
	failures += bad;
	if (seen < 3)
		fail(NULL,
		     "fewer than 3 BPF fds (maps, link) found after init");
	else if (!bad)
		printf("cloexec: %d BPF fds, all FD_CLOEXEC\n", seen);
}

int main(int argc, char **argv)
{
	struct spec sp[MAX_SPEC];
	const char *netns = NULL;
	char err[256];
	int i = 1, n = 0, bpf = 1, r, fd;

	alarm(60);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strcmp(argv[i], "--netns") && i + 1 < argc)
			netns = argv[++i];
		else if (!strcmp(argv[i], "--no-bpf"))
			bpf = 0;
		else
			goto usage;
	}
	if (i >= argc)
		goto usage;
	if (bpf) {
		r = usmc_synopt_init(&so, err, sizeof(err));
		if (r) {
			printf("usmc_synopt_init: %d (%s): %s\n", r,
			       strerror(-r), err);
			return 2;
		}
		printf("attached to %s (%s)\n", usmc_synopt_cgroup(so),
		       usmc_synopt_shared(so) ? "shared copy" : "own copy");
		check_cloexec();
	}
	if (!strcmp(argv[i], "probe")) {
		usmc_synopt_del(so);
		return failures ? 1 : 0;
	}
	if (!strcmp(argv[i], "hold")) {
		/* keeps the program (its own or a shared copy) until stdin
		 * closes or a signal ends the process */
		char c;

		printf("holding\n");
		while (read(0, &c, 1) > 0)
			;
		usmc_synopt_del(so);
		return 0;
	}
	if (netns) {
		char p[128];

		snprintf(p, sizeof(p), "/run/netns/%s", netns);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			perror(p);
			return 1;
		}
		close(fd);
	}
	for (int j = i + 1; j < argc; j++) {
		if (n == MAX_SPEC || parse(&sp[n], argv[j]))
			goto usage;
		n++;
	}
	if (!strcmp(argv[i], "server"))
		r = server(sp, n);
	else if (!strcmp(argv[i], "client"))
		r = client(sp, n);
	else
		goto usage;
	usmc_synopt_del(so);
	if (r || failures)
		return 1;
	printf("ok\n");
	return 0;
usage:
	fprintf(stderr, "usage: synopt_probe [--netns NAME] [--no-bpf] "
			"server|client ADDR,PORT,MODE,EXPECT... | probe\n");
	return 1;
}
