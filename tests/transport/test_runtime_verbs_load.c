/* SPDX-License-Identifier: MIT */
/*
 * The runtime with USMC_TRANSPORT=verbs when the verbs backend cannot be
 * loaded (transport/verbs/README.md, "Loading"): libusmc-verbs.so absent
 * (USMC_VERBS_MODULE names a missing file), or present but its
 * libibverbs.so.1 unusable (an empty file bind-mounted over it, in a
 * mount namespace of this process's own). Either way a connection
 * declines with NOSMCRDEV (the Decline read off the wire), falls back to
 * TCP with a detail naming what is missing, carries every byte, and the
 * process has not kept the module or libibverbs mapped. The peer is a
 * kernel TCP socket in this process, in explicit mode (no SYN option).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_clc.h"
#include "usmc_stream_test.h"
#include "usmc_test.h"

#ifdef USMC_HAVE_VERBS
#define LEN (256 * 1024 + 5)

static int lfd = -1;
static uint16_t port;		  /* network order */
static char no_ns[PATH_MAX + 64]; /* why case 2 cannot run ("" if it can) */

static int mapped(const char *needle)
{
	return usmc_test_count_lines("/proc/self/maps", needle);
}

/* The kernel peer: takes one connection; the client, which found no
 * device, declines first (usmc_smc_conn_start: the peer waits for CLC),
 * then LEN bytes to EOF; it answers LEN bytes. */
typedef struct peer_res {
	uint32_t diag; /* the Decline's peer diagnosis (0: none read) */
	long got;      /* bytes intact, or < 0 */
} peer_res;

static uint32_t be32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

static void *peer(void *arg)
{
	peer_res *res = arg;
	uint8_t m[SMC_CLC_DECLINE_LEN_V2];
	int afd = accept(lfd, NULL, NULL);
	uint16_t len;

	res->got = -3;
	if (afd < 0)
		return NULL;
	/* CLC header (RFC 7609 "CLC message header"): eyecatcher, type,
	 * length; the Decline's diagnosis after the 8-byte peer ID */
	if (recv(afd, m, 8, MSG_WAITALL) == 8 && be32_at(m) == SMC_EYECATCHER &&
	    m[4] == SMC_CLC_DECLINE &&
	    ((len = (uint16_t)(m[5] << 8 | m[6])) == SMC_CLC_DECLINE_LEN ||
	     len == SMC_CLC_DECLINE_LEN_V2) &&
	    recv(afd, m + 8, len - 8u, MSG_WAITALL) == (ssize_t)(len - 8u))
		res->diag = be32_at(m + 16);
	else
		res->got = -5;
	if (res->got != -5) {
		res->got = usmc_test_recv_pat(usmc_test_kernel_recv, afd, 1,
					      "peer");
		if (res->got == LEN &&
		    usmc_test_send_pat(usmc_test_kernel_send, afd, LEN, 2))
			res->got = -4;
	}
	close(afd);
	return NULL;
}

/* A connection from |from| to the listener: LEN bytes each way, every
 * one compared, then its info. */
static void connect_check(const char *from, usmc_sock_info *in)
{
	struct sockaddr_in sa = {0}, me = {0};
	char list[16];
	peer_res res = {0, 0};
	pthread_t th;
	int fd;

	snprintf(list, sizeof(list), "%u", ntohs(port));
	CU_ASSERT_FATAL(usmc_config_set("smc_ports", list) == 0);
	CU_ASSERT_FATAL(pthread_create(&th, NULL, peer, &res) == 0);
	fd = usmc_socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(fd >= 0);
	me.sin_family = AF_INET;
	inet_pton(AF_INET, from, &me.sin_addr);
	CU_ASSERT_FATAL(usmc_bind(fd, (struct sockaddr *)&me, sizeof(me)) == 0);
	sa.sin_family = AF_INET;
	sa.sin_port = port;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (usmc_connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "connect from %s: %s\n", from, strerror(errno));
		CU_FAIL_FATAL("connect");
	}
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, LEN, 1), 0);
	CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
	USMC_ASSERT_EQ(usmc_test_recv_pat(usmc_test_usmc_recv, fd, 2, "client"),
		       LEN);
	pthread_join(th, NULL);
	USMC_ASSERT_EQ(res.diag, SMC_CLC_DECL_NOSMCRDEV);
	USMC_ASSERT_EQ(res.got, LEN);
	CU_ASSERT_EQUAL_FATAL(usmc_get_info(fd, in), 0);
	CU_ASSERT_EQUAL(usmc_close(fd), 0);
	if (in->mode != USMC_SOCK_TCP || strcmp(in->fallback_name, "NOSMCRDEV"))
		fprintf(stderr, "from %s: mode %d %s %s\n", from, in->mode,
			in->fallback_name, in->fallback_detail);
	USMC_ASSERT_EQ(in->mode, USMC_SOCK_TCP);
	CU_ASSERT_STRING_EQUAL(in->fallback_name, "NOSMCRDEV");
	USMC_ASSERT_EQ(in->device, -1);
}

/* The module is not there: the detail names the file and dlerror's
 * reason, in full. */
static void test_module_missing(void)
{
	usmc_sock_info in;

	setenv("USMC_VERBS_MODULE", "/nonexistent/libusmc-verbs.so", 1);
	connect_check("127.0.0.5", &in);
	CU_ASSERT_STRING_EQUAL(in.fallback_detail,
			       "transport verbs: cannot load "
			       "/nonexistent/libusmc-verbs.so: cannot open "
			       "shared object file: No such file or "
			       "directory");
	USMC_ASSERT_EQ(mapped("libusmc-verbs"), 0);
	USMC_ASSERT_EQ(mapped("libibverbs"), 0);
}

/* The module is (the build tree's), libibverbs.so.1 is an empty file:
 * the detail names libibverbs first. */
static void test_ibverbs_unusable(void)
{
	usmc_sock_info in;

	if (*no_ns) {
		fprintf(stderr, "not run: %s\n", no_ns);
		return;
	}
	unsetenv("USMC_VERBS_MODULE");
	connect_check("127.0.0.6", &in);
	if (!strstr(in.fallback_detail, "libibverbs.so.1: file too short "
					"(loading ") ||
	    strncmp(in.fallback_detail, "transport verbs: ", 17))
		fprintf(stderr, "detail: %s\n", in.fallback_detail);
	CU_ASSERT_EQUAL(strncmp(in.fallback_detail, "transport verbs: ", 17),
			0);
	CU_ASSERT_PTR_NOT_NULL(strstr(in.fallback_detail,
				      "libibverbs.so.1: file too short "
				      "(loading "));
	USMC_ASSERT_EQ(mapped("libusmc-verbs"), 0);
	USMC_ASSERT_EQ(mapped("libibverbs"), 0);
}

/* Hides libibverbs.so.1 from this process: a private mount namespace
 * (before any thread: unshare refuses CLONE_NEWNS to a threaded process)
 * and an empty file over the library. "" and done, or why not. */
static void hide_ibverbs(void)
{
	static const char *const dirs[] = {
		"/lib/x86_64-linux-gnu",
		"/usr/lib/x86_64-linux-gnu",
		"/lib/aarch64-linux-gnu",
		"/usr/lib/aarch64-linux-gnu",
		"/usr/lib64",
		"/lib64",
		"/usr/lib",
		"/lib",
	};
	char lib[PATH_MAX], real[PATH_MAX], empty[] = "/tmp/usmc-noibv.XXXXXX";
	int fd;

	real[0] = 0;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !real[0];
	     i++) {
		snprintf(lib, sizeof(lib), "%s/libibverbs.so.1", dirs[i]);
		if (!realpath(lib, real))
			real[0] = 0;
	}
	if (!real[0]) {
		snprintf(no_ns, sizeof(no_ns),
			 "libibverbs.so.1 not found in the usual directories");
		return;
	}
	if (unshare(CLONE_NEWNS) ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL)) {
		snprintf(no_ns, sizeof(no_ns),
			 "no private mount namespace (%s): needs root",
			 strerror(errno));
		return;
	}
	fd = mkstemp(empty);
	if (fd < 0 || mount(empty, real, "none", MS_BIND, NULL)) {
		snprintf(no_ns, sizeof(no_ns), "cannot bind over %s: %s", real,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(empty);
		return;
	}
	close(fd);
	unlink(empty); /* the mount keeps the file */
}

static CU_TestInfo tests[] = {
	{"no libusmc-verbs.so: NOSMCRDEV naming it, every byte over TCP",
	 test_module_missing},
	{"libibverbs.so.1 unusable: NOSMCRDEV naming it, every byte over TCP",
	 test_ibverbs_unusable},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime: verbs that cannot load", tests},
		{NULL, NULL},
	};
	struct sockaddr_in sa = {0};
	socklen_t len = sizeof(sa);
	int r;

	alarm(60);
	hide_ibverbs();
	setenv("USMC_TRANSPORT", "verbs", 1);
	setenv("USMC_CONF", "", 1);
	/* explicit mode: the kernel peer sets no SMC option in its SYN-ACK,
	 * and the device is asked for before any CLC message */
	setenv("USMC_SYNOPT", "off", 1);
	unsetenv("USMC_RULES");
	unsetenv("USMC_FAULT");
	unsetenv("USMC_FAULT_FILE");
	usmc_test_stat_dir();
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) || listen(lfd, 4)) {
		perror("listener");
		return 1;
	}
	port = sa.sin_port;
	r = usmc_test_main(suites);
	close(lfd);
	if (!r && *no_ns) {
		/* the first case ran and passed; the second did not run */
		fprintf(stderr,
			"SKIP (exit 77): the libibverbs case cannot run "
			"here: %s\n",
			no_ns);
		return 77;
	}
	return r;
}
#else
int main(void)
{
	fprintf(stderr, "SKIP (exit 77): built without libibverbs "
			"(USMC_ENABLE_VERBS)\n");
	return 77;
}
#endif
