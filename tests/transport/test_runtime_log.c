/* SPDX-License-Identifier: MIT */
/* The core's and the handshake's error lines, which a peer can cause as
 * often as it likes: at the default level (warn) a link group, or a peer
 * address, says its first and no more, and all of them together at most
 * 10 plus one per 6 s (usmc_smc_err_level, docs/runtime.md "Logging").
 * The log file: never on fd 0-2, and "%%p" vs "%p" in its name. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_clc.h"
#include "usmc_conv.h"
#include "usmc_rt.h"
#include "usmc_server_test.h"
#include "usmc_test.h"

static char path[64];

/* lines of the log file that contain |what| */
static int count(const char *what)
{
	FILE *f = fopen(path, "r");
	char l[1200];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(l, sizeof(l), f))
		n += strstr(l, what) != NULL;
	fclose(f);
	return n;
}

/* 1000 LLC violations from each of 5 link groups, at the default level:
 * 5 lines in the file, one per group, each at warn */
static void test_core_errors_per_lgr(void)
{
	char m[96];

	pthread_mutex_lock(&usmc_g.lock);
	for (int i = 0; i < 1000; i++)
		for (int g = 0; g < 5; g++) {
			snprintf(m, sizeof(m),
				 "lgr %08x: LLC protocol violation: test %d",
				 0x100 + g, i);
			usmc_smc_core_log(USMC_LOG_ERR, m);
		}
	pthread_mutex_unlock(&usmc_g.lock);
	USMC_ASSERT_EQ(count("usmc["), 5);
	USMC_ASSERT_EQ(count(" warn: core: lgr "), 5);
	for (int g = 0; g < 5; g++) {
		snprintf(m, sizeof(m), " warn: core: lgr %08x: ", 0x100 + g);
		USMC_ASSERT_EQ(count(m), 1);
	}
}

/* One connection from 127.0.0.|host| to |port|: sends |msg| and waits
 * for the usmc server to drop it (EOF or reset). 0 if it did. */
static int hs_bad_conn(int host, uint16_t port, const uint8_t *msg, size_t len)
{
	struct sockaddr_in src = {.sin_family = AF_INET};
	struct sockaddr_in dst = {.sin_family = AF_INET};
	struct pollfd p = {.events = POLLIN};
	uint8_t b[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0), r = -1;

	src.sin_addr.s_addr = htonl(0x7f000000u | (unsigned int)host);
	dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	dst.sin_port = htons(port);
	if (fd < 0)
		return -1;
	p.fd = fd;
	if (!bind(fd, (struct sockaddr *)&src, sizeof(src)) &&
	    !connect(fd, (struct sockaddr *)&dst, sizeof(dst)) &&
	    send(fd, msg, len, MSG_NOSIGNAL) == (ssize_t)len &&
	    poll(&p, 1, 10000) == 1 && recv(fd, b, sizeof(b), 0) <= 0)
		r = 0;
	close(fd);
	return r;
}

/* A usmc server's handshake errors from 4 peer addresses, 25 connections
 * each (a bad CLC header, or a Confirm where the Proposal belongs): one
 * warn line per peer address at the default level (per connection: 100) */
static void test_hs_errors_per_peer(void)
{
	static const uint8_t bad_hdr[8] = {0xe2, 0xd4, 0xc3, 0xd9,
					   0x63, 0x00, 0x08, 0x10};
	struct sockaddr_in sa = {.sin_family = AF_INET};
	uint8_t confirm[SMCR_CLC_ACCEPT_CONFIRM_LEN];
	char w[96];
	int lfd, before = count("usmc[");

	/* a v1 SMC-R Confirm's header and trailer, its body zero */
	memset(confirm, 0, sizeof(confirm));
	usmc_put_be32(confirm, SMC_EYECATCHER);
	confirm[4] = SMC_CLC_CONFIRM;
	usmc_put_be16(confirm + 5, SMCR_CLC_ACCEPT_CONFIRM_LEN);
	confirm[7] = SMC_V1 << 4 | SMC_TYPE_R;
	usmc_put_be32(confirm + SMCR_CLC_ACCEPT_CONFIRM_LEN - 4,
		      SMC_EYECATCHER);
	/* the peers' SYNs carry no SMC option: read their first bytes */
	CU_ASSERT_FATAL(usmc_config_set("synopt", "off") == 0);
	lfd = usmc_test_smc_listen("127.0.0.1", 64, &sa.sin_port);
	CU_ASSERT_FATAL(lfd >= 0);
	for (int i = 0; i < 25; i++)
		for (int h = 2; h < 6; h++)
			USMC_ASSERT_EQ(hs_bad_conn(h, ntohs(sa.sin_port),
						   h & 1 ? confirm : bad_hdr,
						   h & 1 ? sizeof(confirm)
							 : sizeof(bad_hdr)),
				       0);
	usmc_close(lfd);
	USMC_ASSERT_EQ(count("usmc[") - before, 4);
	for (int h = 2; h < 6; h++) {
		snprintf(w, sizeof(w), "(peer 127.0.0.%d:", h);
		USMC_ASSERT_EQ(count(w), 1);
	}
	USMC_ASSERT_EQ(count(" warn: fd "), 4);
	USMC_ASSERT_EQ(count("peer sent a bad CLC header (e2 d4 c3 d9 ...)"),
		       2);
	USMC_ASSERT_EQ(count("first CLC message is type 3, not a Proposal"), 2);
}

/* Many link groups at once (a peer that makes new ones): 10 warn lines,
 * then one per 6 s; a subject seen before stays at info */
static void test_core_errors_bucket(void)
{
	uint64_t t = usmc_rt_now() + 3600 * 1000000000ULL;
	int warn = 0;
	char m[64];

	pthread_mutex_lock(&usmc_g.lock);
	for (int g = 0; g < 100; g++) {
		snprintf(m, sizeof(m), "lgr %08x: x", 0x1000 + g);
		warn += usmc_smc_core_err_level(m, t) == USMC_LOG_WARN;
	}
	USMC_ASSERT_EQ(warn, 10);
	/* none left at the same time; 6 s on (the refill's phase is the
   * first error's), exactly one */
	USMC_ASSERT_EQ(usmc_smc_core_err_level("lgr 00002000: x", t),
		       USMC_LOG_INFO);
	USMC_ASSERT_EQ(
		usmc_smc_core_err_level("lgr 00002001: x", t + 6000000000ULL),
		USMC_LOG_WARN);
	USMC_ASSERT_EQ(
		usmc_smc_core_err_level("lgr 00002002: x", t + 6000000000ULL),
		USMC_LOG_INFO);
	/* a minute on: the bucket is full again, the known stay info */
	USMC_ASSERT_EQ(
		usmc_smc_core_err_level("lgr 00002001: y", t + 120000000000ULL),
		USMC_LOG_INFO);
	USMC_ASSERT_EQ(
		usmc_smc_core_err_level("link 7: z", t + 120000000000ULL),
		USMC_LOG_WARN);
	pthread_mutex_unlock(&usmc_g.lock);
}

#define NLOGGERS 2
#define NLINES	 20000
#define NPATHS	 4

static void *logger(void *arg)
{
	int t = (int)(long)arg;

	for (int i = 0; i < NLINES; i++)
		usmc_rt_log(USMC_LOG_WARN, "logger %d line %d end", t, i);
	return NULL;
}

/* usmc_config_set of log_file and log_level while two threads log: each
 * line whole, in one of the files, exactly once (the settings a line
 * reads are one record: its level and its file agree) */
static void test_config_races_loggers(void)
{
	static unsigned char seen[NLOGGERS][NLINES];
	char paths[NPATHS][80], l[1200];
	pthread_t th[NLOGGERS];
	long lines = 0, bad = 0, dup = 0, missing = 0;

	memset(seen, 0, sizeof(seen));
	for (int k = 0; k < NPATHS; k++) {
		snprintf(paths[k], sizeof(paths[k]), "%s.%d", path, k);
		unlink(paths[k]);
	}
	CU_ASSERT_FATAL(usmc_config_set("log_file", paths[NPATHS - 1]) == 0);
	for (long t = 0; t < NLOGGERS; t++)
		CU_ASSERT_FATAL(
			pthread_create(&th[t], NULL, logger, (void *)t) == 0);
	for (int i = 0; i < 2000; i++) {
		CU_ASSERT(usmc_config_set("log_file", paths[i % NPATHS]) == 0);
		CU_ASSERT(usmc_config_set("log_level",
					  i & 1 ? "info" : "warn") == 0);
	}
	for (int t = 0; t < NLOGGERS; t++)
		pthread_join(th[t], NULL);
	for (int k = 0; k < NPATHS; k++) {
		FILE *f = fopen(paths[k], "r");

		if (!f)
			continue;
		while (fgets(l, sizeof(l), f)) {
			const char *w = strstr(l, " warn: logger ");
			int t, i, n = 0;

			if (!strstr(l, " warn: "))
				continue; /* the banner at debug: none here */
			if (!w ||
			    sscanf(w, " warn: logger %d line %d end\n%n", &t,
				   &i, &n) != 2 ||
			    !n || t < 0 || t >= NLOGGERS || i < 0 ||
			    i >= NLINES) {
				if (bad++ < 3)
					fprintf(stderr, "bad line: %s", l);
				continue;
			}
			lines++;
			dup += seen[t][i]++ != 0;
		}
		fclose(f);
		unlink(paths[k]);
	}
	for (int t = 0; t < NLOGGERS; t++)
		for (int i = 0; i < NLINES; i++)
			missing += !seen[t][i];
	fprintf(stderr, "  %ld lines in %d files\n", lines, NPATHS);
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(dup, 0);
	USMC_ASSERT_EQ(missing, 0);
	USMC_ASSERT_EQ(lines, (long)NLOGGERS * NLINES);
	CU_ASSERT(usmc_config_set("log_file", path) == 0);
}

/* the fds of this process open on |file|: how many, and the lowest */
static int fds_on(const char *file, int *lowest)
{
	char want[PATH_MAX], l[64], got[PATH_MAX];
	int n = 0;

	*lowest = INT_MAX;
	if (!realpath(file, want))
		return 0;
	for (int fd = 0; fd < 1024; fd++) {
		ssize_t k;

		snprintf(l, sizeof(l), "/proc/self/fd/%d", fd);
		k = readlink(l, got, sizeof(got) - 1);
		if (k <= 0)
			continue;
		got[k] = '\0';
		if (!strcmp(got, want)) {
			n++;
			if (fd < *lowest)
				*lowest = fd;
		}
	}
	return n;
}

/* The program closed its stdout and stderr before the log opens: the
 * log takes fd 3 or above, and the file the program opens next gets
 * fd 1, with its bytes only */
static void test_log_fd_not_stdio(void)
{
	char lp[80], mine[80], l[256];
	int s1 = dup(1), s2 = dup(2), r, n, lowest, fd, mine_fd, log_lines;
	FILE *f;

	CU_ASSERT_FATAL(s1 >= 0 && s2 >= 0);
	snprintf(lp, sizeof(lp), "%s.fd", path);
	snprintf(mine, sizeof(mine), "%s.mine", path);
	unlink(lp);
	unlink(mine);
	CU_ASSERT_FATAL(usmc_config_set("log_level", "warn") == 0);
	/* no output from here until fd 1 and 2 are back; the file opens
   * with the setting (usmc_rt_log_configure) */
	close(1);
	close(2);
	r = usmc_config_set("log_file", lp);
	usmc_rt_log(USMC_LOG_WARN, "a line with fd 1 and 2 closed");
	n = fds_on(lp, &lowest);
	fd = open(mine, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	mine_fd = fd;
	if (fd >= 0) {
		if (write(fd, "the program's own\n", 18) != 18)
			mine_fd = -2;
		close(fd);
	}
	usmc_rt_log(USMC_LOG_WARN, "a line after the program's write");
	dup2(s1, 1);
	dup2(s2, 2);
	close(s1);
	close(s2);
	USMC_ASSERT_EQ(r, 0);
	USMC_ASSERT_EQ(n, 1);
	CU_ASSERT(lowest >= 3);
	USMC_ASSERT_EQ(mine_fd, 1);
	f = fopen(mine, "r");
	CU_ASSERT_FATAL(f != NULL);
	CU_ASSERT(fgets(l, sizeof(l), f) && !strcmp(l, "the program's own\n"));
	CU_ASSERT(!fgets(l, sizeof(l), f));
	fclose(f);
	f = fopen(lp, "r");
	CU_ASSERT_FATAL(f != NULL);
	log_lines = 0;
	while (fgets(l, sizeof(l), f)) {
		log_lines++;
		CU_ASSERT(strstr(l, " warn: a line ") != NULL);
	}
	fclose(f);
	USMC_ASSERT_EQ(log_lines, 2);
	unlink(lp);
	unlink(mine);
	CU_ASSERT(usmc_config_set("log_file", path) == 0);
}

/* lines of |file| with |what|, -1 if there is no such file */
static int count_in(const char *file, const char *what)
{
	char keep[sizeof(path)];
	int n;

	memcpy(keep, path, sizeof(path));
	snprintf(path, sizeof(path), "%s", file);
	n = count(what);
	memcpy(path, keep, sizeof(path));
	return n;
}

/* The parent logs, then a child: 0 and the child's PID, or -1 */
static pid_t log_then_fork(const char *between_from, const char *between_to)
{
	pid_t c;
	int st;

	usmc_rt_log(USMC_LOG_WARN, "parent %d", (int)getpid());
	if (between_from && rename(between_from, between_to))
		return -1;
	c = fork();
	if (c < 0)
		return -1;
	if (!c) {
		usmc_rt_log(USMC_LOG_WARN, "child %d", (int)getpid());
		_exit(0);
	}
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return c;
}

/* "%%p" in log_file is a literal "%p": one file, which a forked child
 * keeps writing to (moved after the parent opened it: the child's line
 * follows it, and nothing makes a new file of the old name); "%p" is
 * the PID: the child's own file */
static void test_log_path_pid(void)
{
	char pat[96], lit[96], moved[96], mine[96], w[32];
	int me = (int)getpid();
	pid_t c;

	CU_ASSERT_FATAL(usmc_config_set("log_level", "warn") == 0);
	snprintf(pat, sizeof(pat), "%s.%%%%p", path);
	snprintf(lit, sizeof(lit), "%s.%%p", path);
	snprintf(moved, sizeof(moved), "%s.moved", path);
	unlink(lit);
	unlink(moved);
	CU_ASSERT_FATAL(usmc_config_set("log_file", pat) == 0);
	c = log_then_fork(lit, moved);
	CU_ASSERT_FATAL(c > 0);
	snprintf(w, sizeof(w), "] warn: parent %d", me);
	USMC_ASSERT_EQ(count_in(moved, w), 1);
	snprintf(w, sizeof(w), "] warn: child %d", (int)c);
	USMC_ASSERT_EQ(count_in(moved, w), 1);
	USMC_ASSERT_EQ(count_in(lit, "usmc["), -1);
	unlink(moved);

	snprintf(pat, sizeof(pat), "%s.%%p", path);
	CU_ASSERT_FATAL(usmc_config_set("log_file", pat) == 0);
	c = log_then_fork(NULL, NULL);
	CU_ASSERT_FATAL(c > 0);
	snprintf(mine, sizeof(mine), "%s.%d", path, me);
	USMC_ASSERT_EQ(count_in(mine, "usmc["), 1);
	snprintf(w, sizeof(w), "] warn: parent %d", me);
	USMC_ASSERT_EQ(count_in(mine, w), 1);
	snprintf(mine, sizeof(mine), "%s.%d", path, (int)c);
	USMC_ASSERT_EQ(count_in(mine, "usmc["), 1);
	snprintf(w, sizeof(w), "] warn: child %d", (int)c);
	USMC_ASSERT_EQ(count_in(mine, w), 1);
	unlink(mine);
	snprintf(mine, sizeof(mine), "%s.%d", path, me);
	unlink(mine);
	CU_ASSERT(usmc_config_set("log_file", path) == 0);
}

static CU_TestInfo tests[] = {
	{"core errors: one warn line per link group", test_core_errors_per_lgr},
	/* after the above, which leaves 5 of the 10 warn lines */
	{"handshake errors: one warn line per peer address",
	 test_hs_errors_per_peer},
	{"core errors: 10 new subjects, then one per 6 s",
	 test_core_errors_bucket},
	{"log settings changed while threads log", test_config_races_loggers},
	{"the log file never on fd 0-2", test_log_fd_not_stdio},
	{"log file name: %%p is literal, %p the PID", test_log_path_pid},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime log", tests},
		{NULL, NULL},
	};
	int r;

	snprintf(path, sizeof(path), "/tmp/usmc-log-test-%d.log",
		 (int)getpid());
	unlink(path);
	if (usmc_config_set("log_level", "warn") ||
	    usmc_config_set("log_file", path)) {
		fprintf(stderr, "usmc_config_set failed\n");
		return 1;
	}
	r = usmc_test_main(suites);
	unlink(path);
	return r;
}
