/* SPDX-License-Identifier: MIT */
/*
 * The shm backend alone (no core, no runtime): a ping-pong of 32-byte
 * signals between two processes through move_data and poll_cq, as SMC-D
 * moves a CDC header, each side waiting as a progress loop does (poll_cq
 * until empty, then poll() on the device fd). Prints the round trip's
 * median and p99 and the doorbell counters. A measurement, not a test.
 *
 * usmc-shmbench --help is its manual.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "usmc_tool.h"
#include "usmc_tp_shm.h"
#include "usmc_transport.h"

typedef struct side {
	usmc_tp *tp;
	usmc_tp_dmb *dmb;
	usmc_tp_rdmb *peer;
} side;

typedef struct hello {
	uint8_t gid[16];
	uint64_t token;
} hello;

static uint64_t ns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "usmc-shmbench: %s: %s\n", what, usmc_strerror(rc));
	exit(1);
}

/* Waits for one signal as a progress loop would; 0, or -1 after 5 s. */
static int wait_signal(side *s)
{
	struct pollfd pf = {usmc_tp_get_fd(s->tp), POLLIN, 0};
	uint64_t end = ns_now() + 5000000000ull;
	usmc_wc wc[16];

	for (;;) {
		int n = usmc_tp_poll_cq(s->tp, wc, 16);

		if (n > 0)
			return 0;
		if (ns_now() > end)
			return -1;
		poll(&pf, 1, 100);
	}
}

/* Reads |n| bytes from |fd| while serving the device: the peer's attach
 * is granted only while we drive it. */
static void read_serving(side *s, int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		struct pollfd pf[2] = {{fd, POLLIN, 0},
				       {usmc_tp_get_fd(s->tp), POLLIN, 0}};
		usmc_wc wc[4];
		ssize_t r;

		poll(pf, 2, 100);
		usmc_tp_poll_cq(s->tp, wc, 4);
		if (!pf[0].revents)
			continue;
		r = read(fd, (uint8_t *)buf + got, n - got);
		if (r <= 0)
			exit(1);
		got += (size_t)r;
	}
}

static void setup(side *s, const char *opts, int rd, int wr)
{
	usmc_tp_config cfg;
	usmc_port_attr pa;
	hello me, peer;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.options = opts;
	rc = usmc_tp_open("shm", &cfg, &s->tp);
	if (rc)
		die("open", rc);
	rc = usmc_tp_register_dmb(s->tp, 65536, NULL, &s->dmb);
	if (rc)
		die("register_dmb", rc);
	usmc_tp_query_port(s->tp, &pa);
	memcpy(me.gid, pa.gid, 16);
	me.token = s->dmb->token;
	if (write(wr, &me, sizeof(me)) != sizeof(me))
		exit(1);
	/* the peer attaches ours while we wait for its hello */
	read_serving(s, rd, &peer, sizeof(peer));
	rc = usmc_tp_attach_dmb(s->tp, peer.gid, peer.token, NULL, &s->peer);
	if (rc)
		die("attach_dmb", rc);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void usage(void)
{
	fputs("NAME\n"
	      "    usmc-shmbench - the shm transport alone: a ping-pong of "
	      "signals\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    usmc-shmbench [-n ROUNDS] [-o OPTIONS]\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    Two processes send a 32-byte signal back and forth "
	      "through the\n"
	      "    shm transport's move_data and poll_cq, as SMC-D moves a "
	      "CDC\n"
	      "    header, each waiting as a progress loop does (poll_cq "
	      "until\n"
	      "    empty, then poll() on the device fd). Prints the round "
	      "trip's\n"
	      "    median and p99 and the doorbell counters. A measurement, "
	      "not a\n"
	      "    test.\n"
	      "\n"
	      "OPTIONS\n"
	      "    -n, --rounds N        round trips (default 100000)\n"
	      "    -o, --options OPTS    shm device options, e.g. spin_us=N\n"
	      "                          (transport/shm/README.md)\n"
	      "    -h, --help            this text\n"
	      "    --version             the version, and exit\n"
	      "\n"
	      "EXIT STATUS\n"
	      "    0 done; 1 the device or the echo failed; 2 usage error.\n",
	      stdout);
}

int main(int argc, char **argv)
{
	const char *opts = NULL;
	long rounds = 100000;
	int a2b[2], b2a[2], ready[2], c;
	uint8_t hdr[32], go = 1;
	usmc_tp_shm_stats st;
	uint64_t *rtt;
	side s;
	pid_t pid;

	static const struct option lo[] = {
		{"rounds", required_argument, NULL, 'n'},
		{"options", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;

	argv[0] = (char *)"usmc-shmbench"; /* getopt's messages name the tool */
	while ((c = getopt_long(argc, argv, "n:o:h", lo, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (usmc_tool_number(optarg, 0, 1, 100000000, &v))
				usmc_tool_usage_error("usmc-shmbench",
						      "bad --rounds '%s' (want "
						      "1 to 100000000)",
						      optarg);
			rounds = (long)v;
			break;
		case 'o':
			opts = optarg;
			break;
		case 'h':
			usage();
			return 0;
		case 'V':
			usmc_tool_version("usmc-shmbench");
			return 0;
		default:
			usmc_tool_try("usmc-shmbench");
		}
	}
	if (optind != argc)
		usmc_tool_usage_error("usmc-shmbench",
				      "unexpected argument '%s'", argv[optind]);
	if (pipe(a2b) || pipe(b2a) || pipe(ready)) {
		perror("usmc-shmbench: pipe");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		/* the echo side: a header in, the same header back */
		close(a2b[1]);
		close(b2a[0]);
		alarm(60);
		setup(&s, opts, a2b[0], b2a[1]);
		if (write(ready[1], &go, 1) != 1)
			_exit(1);
		for (long i = 0; i < rounds; i++) {
			if (wait_signal(&s))
				_exit(3);
			memcpy(hdr, s.dmb->addr, 32);
			usmc_tp_move_data(s.peer, 0, hdr, 32, 1);
		}
		usmc_tp_shm_get_stats(s.tp, &st);
		fprintf(stderr,
			"echo side: bells %llu, saved %llu, spin hits %llu, "
			"misses %llu\n",
			(unsigned long long)st.bells,
			(unsigned long long)st.bells_saved,
			(unsigned long long)st.spin_hits,
			(unsigned long long)st.spin_misses);
		usmc_tp_close(s.tp);
		_exit(0);
	}
	close(a2b[0]);
	close(b2a[1]);
	setup(&s, opts, b2a[0], a2b[1]);
	read_serving(&s, ready[0], &go, 1);
	rtt = calloc((size_t)rounds, sizeof(*rtt));
	for (long i = 0; i < rounds; i++) {
		uint64_t t0 = ns_now();

		memset(hdr, 0, sizeof(hdr));
		memcpy(hdr, &i, sizeof(i));
		usmc_tp_move_data(s.peer, 0, hdr, 32, 1);
		if (wait_signal(&s)) {
			fprintf(stderr, "usmc-shmbench: no echo of round %ld\n",
				i);
			kill(pid, SIGKILL);
			return 1;
		}
		if (memcmp(s.dmb->addr, hdr, 32)) {
			fprintf(stderr,
				"usmc-shmbench: round %ld: wrong echo\n", i);
			kill(pid, SIGKILL);
			return 1;
		}
		rtt[i] = ns_now() - t0;
	}
	usmc_tp_shm_get_stats(s.tp, &st);
	waitpid(pid, NULL, 0);
	qsort(rtt, (size_t)rounds, sizeof(*rtt), cmp_u64);
	printf("shm ping-pong, 32-byte signals, %ld rounds (%s): median %.2f "
	       "us, p99 %.2f us per round trip\n",
	       rounds, opts ? opts : "default options",
	       (double)rtt[rounds / 2] / 1000.0,
	       (double)rtt[rounds * 99 / 100] / 1000.0);
	printf("ping side: bells %llu, saved %llu, spin hits %llu, misses "
	       "%llu\n",
	       (unsigned long long)st.bells, (unsigned long long)st.bells_saved,
	       (unsigned long long)st.spin_hits,
	       (unsigned long long)st.spin_misses);
	free(rtt);
	usmc_tp_close(s.tp);
	return 0;
}
