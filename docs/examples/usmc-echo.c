/* SPDX-License-Identifier: MIT */
/*
 * usmc-echo: the smallest program on libusmc. A server thread and a
 * client in one process on 127.0.0.1: the client sends a line, the
 * server sends it back, and each says whether the connection ran over
 * SMC (usmc_get_info) or fell back to TCP, and why.
 *
 *   cc usmc-echo.c $(pkg-config --cflags --libs usmc) -pthread -o usmc-echo
 *   USMC_SMC_PORTS=7099 ./usmc-echo 7099 "hello over SMC"
 *   USMC_RULES="smc remote 127.0.0.1" ./usmc-echo 0 "hello over SMC"
 *
 * On one host that is SMC-D over shared memory; USMC_SHM=0 makes it SMC-R
 * over softroce.
 *
 * The usmc_* calls take and return the kernel's own TCP socket fds, with
 * the same arguments and errors as the socket calls they stand for.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <usmc.h>

static void say(const char *who, int fd)
{
	usmc_sock_info in;

	if (usmc_get_info(fd, &in))
		return;
	if (in.mode == USMC_SOCK_SMCR)
		printf("%s: %s over %s\n", who, in.smcd ? "SMC-D" : "SMC-R",
		       in.transport);
	else
		printf("%s: TCP (%s)\n", who,
		       in.fallback_code ? in.fallback_name : "not an SMC port");
}

/* Reads up to len bytes, until the peer's shutdown or a newline. */
static ssize_t read_line(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = usmc_read(fd, buf + got, len - got);

		if (n <= 0)
			return n < 0 ? -1 : (ssize_t)got;
		got += (size_t)n;
		if (buf[got - 1] == '\n')
			break;
	}
	return (ssize_t)got;
}

static int ls;

/* The server: one connection, echoed. */
static void *serve(void *arg)
{
	char buf[4096];
	ssize_t n;
	int fd = usmc_accept(ls, NULL, NULL);

	(void)arg;
	if (fd < 0)
		return (void *)1;
	n = read_line(fd, buf, sizeof(buf));
	say("server", fd);
	if (n <= 0 || usmc_write(fd, buf, (size_t)n) != n) {
		usmc_close(fd);
		return (void *)1;
	}
	usmc_close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	char buf[4096], msg[4000];
	int fd, one = 1;
	void *srv_failed;
	pthread_t srv;
	ssize_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: usmc-echo PORT MESSAGE (PORT 0: any "
				"free one)\n");
		return 2;
	}
	snprintf(msg, sizeof(msg), "%s\n", argv[2]);
	a.sin_port = htons((unsigned short)atoi(argv[1]));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	ls = usmc_socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 ||
	    usmc_setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    usmc_bind(ls, (struct sockaddr *)&a, sizeof(a)) ||
	    usmc_listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&a, &(socklen_t){sizeof(a)})) {
		perror("usmc-echo: listen");
		return 1;
	}
	if (pthread_create(&srv, NULL, serve, NULL)) {
		fprintf(stderr, "usmc-echo: no thread\n");
		return 1;
	}
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || usmc_connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("usmc-echo: connect");
		return 1;
	}
	if (usmc_write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg)) {
		perror("usmc-echo: write");
		return 1;
	}
	n = read_line(fd, buf, sizeof(buf));
	say("client", fd);
	usmc_close(fd);
	pthread_join(srv, &srv_failed);
	usmc_close(ls);
	if (srv_failed || n != (ssize_t)strlen(msg) ||
	    memcmp(buf, msg, (size_t)n)) {
		fprintf(stderr, "usmc-echo: the echo differs or the server "
				"failed\n");
		return 1;
	}
	printf("echoed: %.*s", (int)n, buf);
	return 0;
}
