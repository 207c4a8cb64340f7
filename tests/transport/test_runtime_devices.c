/* SPDX-License-Identifier: MIT */
/*
 * Many devices in one process (docs/runtime.md, "Devices"), over softroce
 * on loopback: a server process listening on the wildcard address and a
 * client process whose connections leave from several local addresses.
 * Each (transport, local address) is a device of its own, opened on
 * demand; connections from two addresses run SMC-R at the same time on
 * two devices with two GIDs, on both ends; a device that cannot open
 * (a rule names a transport that does not exist) declines only the
 * connections that need it, with the reason, and says so once; a rule
 * can name another transport (fault:softroce, no faults) for one
 * address. Every byte is compared on both sides.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_server_test.h"
#include "usmc_stream_test.h"
#include "usmc_test.h"

#define UP_LEN	 (512 * 1024 + 7)
#define DOWN_LEN (128 * 1024 + 3)
/* connections the client makes in all (ids 1..NCONN) */
#define NCONN	 7

static pid_t server_pid = -1;
static uint16_t tcp_port; /* network order */
static int res_fd = -1;	  /* the server's results, one line per conn */

static const char *gid_str(const uint8_t *g, char *b, size_t n)
{
	return inet_ntop(AF_INET6, g, b, (socklen_t)n) ? b : "?";
}

/* Server: one thread per connection. The client sends its id, then
 * UP_LEN bytes and shuts down; the server answers DOWN_LEN bytes. Each
 * connection's outcome goes to the parent as one line: "id mode device
 * device_addr gid fallback_name bytes_ok". */
static int srv_wfd;
static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;

static void *serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	usmc_sock_info in;
	char line[256], g[64];
	uint8_t id = 0;
	long got = -3;
	int ok = 0;

	memset(&in, 0, sizeof(in));
	if (usmc_recv(fd, &id, 1, MSG_WAITALL) == 1) {
		got = usmc_test_recv_pat(usmc_test_usmc_recv, fd, id, "server");
		ok = got == UP_LEN &&
		     usmc_test_send_pat(usmc_test_usmc_send, fd, DOWN_LEN,
					(uint8_t)(id + 100)) == 0;
	}
	usmc_get_info(fd, &in);
	snprintf(line, sizeof(line), "%u %d %d %s %s %s %d\n", id, in.mode,
		 in.device, in.device_addr[0] ? in.device_addr : "-",
		 in.device >= 0 ? gid_str(in.local_gid, g, sizeof(g)) : "-",
		 in.fallback_code ? in.fallback_name : "-", ok);
	usmc_close(fd);
	pthread_mutex_lock(&srv_lock);
	if (write(srv_wfd, line, strlen(line)) < 0) {
		/* the parent checks the count */
	}
	pthread_mutex_unlock(&srv_lock);
	return NULL;
}

static void server(int portfd, int resfd)
{
	pthread_t th[NCONN];
	int lfd;

	alarm(60);
	srv_wfd = resfd;
	/* the wildcard: devices per local address */
	lfd = usmc_test_server_listen(NULL, 16, portfd);
	for (int i = 0; i < NCONN; i++) {
		int fd = usmc_accept(lfd, NULL, NULL);

		if (fd < 0 ||
		    pthread_create(&th[i], NULL, serve, (void *)(intptr_t)fd))
			_exit(13);
	}
	for (int i = 0; i < NCONN; i++)
		pthread_join(th[i], NULL);
	close(resfd);
	_exit(0);
}

static int suite_init(void)
{
	int p[2], r[2];

	usmc_test_softroce_env(17);
	setenv("USMC_CONF", "", 1);
	unsetenv("USMC_FAULT");
	unsetenv("USMC_FAULT_FILE");
	/* connections from 127.0.0.5 need a transport that does not exist;
	 * those from 127.0.0.7 use the fault decorator (no faults) */
	setenv("USMC_RULES",
	       "smc local 127.0.0.5 transport nosuch;"
	       "smc local 127.0.0.7 transport fault:softroce",
	       1);
	if (pipe(p) || pipe(r))
		return -1;
	/* fork before usmc starts its progress thread */
	server_pid = fork();
	if (server_pid < 0)
		return -1;
	if (server_pid == 0) {
		close(p[0]);
		close(r[0]);
		server(p[1], r[1]);
	}
	close(p[1]);
	close(r[1]);
	res_fd = r[0];
	if (read(p[0], &tcp_port, 2) != 2)
		return -1;
	close(p[0]);
	return 0;
}

static int connect_from(const char *from, const char *to, uint8_t id)
{
	int fd = usmc_test_client_connect(from, to, tcp_port, 0);

	CU_ASSERT_FATAL(usmc_send(fd, &id, 1, 0) == 1);
	return fd;
}

/* The test's data both ways; the connection is closed. */
static void exchange(int fd, uint8_t id)
{
	CU_ASSERT_EQUAL(usmc_test_send_pat(usmc_test_usmc_send, fd, UP_LEN, id),
			0);
	CU_ASSERT_EQUAL(usmc_shutdown(fd, SHUT_WR), 0);
	USMC_ASSERT_EQ(usmc_test_recv_pat(usmc_test_usmc_recv, fd,
					  (uint8_t)(id + 100), "client"),
		       DOWN_LEN);
	CU_ASSERT_EQUAL(usmc_close(fd), 0);
}

static void info_of(int fd, usmc_sock_info *in)
{
	CU_ASSERT_EQUAL_FATAL(usmc_get_info(fd, in), 0);
	if (in->mode != USMC_SOCK_SMCR)
		fprintf(stderr, "fd %d: %s 0x%08x %s\n", fd, in->fallback_name,
			in->fallback_code, in->fallback_detail);
}

static uint32_t lgr_a;
static uint8_t gid_a[16];

/* Two connections from two local addresses, open at once: SMC-R on two
 * devices, two GIDs, two link groups. */
static void test_two_addresses(void)
{
	usmc_sock_info a, b;
	usmc_stats st;
	int fa = connect_from("127.0.0.1", "127.0.0.2", 1);
	int fb = connect_from("127.0.0.3", "127.0.0.4", 2);
	char g1[64], g2[64];

	info_of(fa, &a);
	info_of(fb, &b);
	USMC_ASSERT_EQ_FATAL(a.mode, USMC_SOCK_SMCR);
	USMC_ASSERT_EQ_FATAL(b.mode, USMC_SOCK_SMCR);
	USMC_ASSERT_EQ(a.device, 0);
	USMC_ASSERT_EQ(b.device, 1);
	CU_ASSERT_STRING_EQUAL(a.device_addr, "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(b.device_addr, "127.0.0.3");
	CU_ASSERT_STRING_EQUAL(a.transport, "softroce");
	CU_ASSERT_STRING_EQUAL(b.transport, "softroce");
	CU_ASSERT_NOT_EQUAL(memcmp(a.local_gid, b.local_gid, 16), 0);
	/* softroce's GID is the IPv4-mapped address */
	CU_ASSERT_STRING_EQUAL(gid_str(a.local_gid, g1, sizeof(g1)),
			       "::ffff:127.0.0.1");
	CU_ASSERT_STRING_EQUAL(gid_str(b.local_gid, g2, sizeof(g2)),
			       "::ffff:127.0.0.3");
	CU_ASSERT_NOT_EQUAL(a.lgr_id, b.lgr_id);
	lgr_a = a.lgr_id;
	memcpy(gid_a, a.local_gid, 16);
	/* both open; data on one, then the other */
	exchange(fa, 1);
	exchange(fb, 2);
	usmc_get_stats(&st);
	USMC_ASSERT_EQ(st.transport_opens, 2);
	USMC_ASSERT_EQ(st.conns_smcr, 2);
}

/* A third connection from the first address finds its device open, and
 * its link group. */
static void test_reuse(void)
{
	usmc_sock_info c;
	usmc_stats st;
	int fc = connect_from("127.0.0.1", "127.0.0.2", 3);

	info_of(fc, &c);
	USMC_ASSERT_EQ_FATAL(c.mode, USMC_SOCK_SMCR);
	USMC_ASSERT_EQ(c.device, 0);
	USMC_ASSERT_EQ(c.lgr_id, lgr_a);
	USMC_ASSERT_EQ(memcmp(c.local_gid, gid_a, 16), 0);
	exchange(fc, 3);
	usmc_get_stats(&st);
	USMC_ASSERT_EQ(st.transport_opens, 2);
}

/* A device that cannot open (its rule names no transport that exists)
 * declines the connections from its address with NOSMCRDEV and the
 * reason, said once; a connection from an address whose device is open
 * runs SMC-R meanwhile. */
static void test_device_fails(void)
{
	char path[] = "/tmp/usmc-devfail.XXXXXX";
	usmc_sock_info d, e, f;
	int lfd = mkstemp(path), saved = dup(2), fd4, fd5, fd6;

	CU_ASSERT_FATAL(lfd >= 0 && saved >= 0);
	/* the runtime's error lines go to stderr: catch them */
	fflush(stderr);
	dup2(lfd, 2);
	fd4 = connect_from("127.0.0.5", "127.0.0.2", 4);
	fd6 = connect_from("127.0.0.1", "127.0.0.2", 6);
	fd5 = connect_from("127.0.0.5", "127.0.0.4", 5);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(lfd);
	info_of(fd4, &d);
	info_of(fd5, &e);
	info_of(fd6, &f);
	USMC_ASSERT_EQ(d.mode, USMC_SOCK_TCP);
	USMC_ASSERT_EQ(e.mode, USMC_SOCK_TCP);
	CU_ASSERT_STRING_EQUAL(d.fallback_name, "NOSMCRDEV");
	CU_ASSERT_STRING_EQUAL(e.fallback_name, "NOSMCRDEV");
	CU_ASSERT_STRING_EQUAL(d.fallback_detail,
			       "transport nosuch: open failed: no such "
			       "transport");
	CU_ASSERT_STRING_EQUAL(e.fallback_detail, d.fallback_detail);
	USMC_ASSERT_EQ(d.device, -1);
	USMC_ASSERT_EQ(f.mode, USMC_SOCK_SMCR);
	USMC_ASSERT_EQ(f.device, 0);
	/* said once, for two connections */
	USMC_ASSERT_EQ(usmc_test_count_lines(
			       path, "no device for 127.0.0.5: transport "
				     "nosuch: open failed"),
		       1);
	unlink(path);
	/* the fallback connections carry their data over TCP */
	exchange(fd4, 4);
	exchange(fd5, 5);
	exchange(fd6, 6);
}

/* A rule names the transport for one address: a device of its own. */
static void test_rule_transport(void)
{
	usmc_sock_info g;
	usmc_stats st;
	int fd = connect_from("127.0.0.7", "127.0.0.2", 7);

	info_of(fd, &g);
	USMC_ASSERT_EQ_FATAL(g.mode, USMC_SOCK_SMCR);
	CU_ASSERT_STRING_EQUAL(g.transport, "fault:softroce");
	USMC_ASSERT_EQ(g.device, 2);
	CU_ASSERT_STRING_EQUAL(g.device_addr, "127.0.0.7");
	exchange(fd, 7);
	usmc_get_stats(&st);
	USMC_ASSERT_EQ(st.transport_opens, 3);
}

/* What the server saw, connection by connection. */
static void test_server_side(void)
{
	static const struct {
		int mode;
		const char *addr, *fb;
	} want[NCONN + 1] = {
		{0, NULL, NULL},
		{USMC_SOCK_SMCR, "127.0.0.2", "-"},
		{USMC_SOCK_SMCR, "127.0.0.4", "-"},
		{USMC_SOCK_SMCR, "127.0.0.2", "-"},
		{USMC_SOCK_TCP, "-", "PEERDECL"},
		{USMC_SOCK_TCP, "-", "PEERDECL"},
		{USMC_SOCK_SMCR, "127.0.0.2", "-"},
		{USMC_SOCK_SMCR, "127.0.0.2", "-"},
	};
	char buf[4096], gid[NCONN + 1][64];
	int seen[NCONN + 1] = {0}, dev[NCONN + 1];
	size_t len = 0;
	ssize_t n;
	char *save = NULL;

	CU_ASSERT_FATAL(server_pid > 0);
	while ((n = read(res_fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	for (char *l = strtok_r(buf, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		unsigned id;
		int mode, d, ok;
		char addr[32], g[64], fb[32];

		if (sscanf(l, "%u %d %d %31s %63s %31s %d", &id, &mode, &d,
			   addr, g, fb, &ok) != 7 ||
		    id < 1 || id > NCONN) {
			fprintf(stderr, "server line \"%s\"\n", l);
			CU_FAIL("bad server line");
			continue;
		}
		seen[id]++;
		if (mode != want[id].mode || strcmp(addr, want[id].addr) ||
		    strcmp(fb, want[id].fb) || !ok)
			fprintf(stderr, "server conn %u: %s\n", id, l);
		USMC_ASSERT_EQ(mode, want[id].mode);
		CU_ASSERT_STRING_EQUAL(addr, want[id].addr);
		CU_ASSERT_STRING_EQUAL(fb, want[id].fb);
		USMC_ASSERT_EQ(ok, 1);
		dev[id] = d;
		snprintf(gid[id], sizeof(gid[id]), "%s", g);
	}
	for (int i = 1; i <= NCONN; i++)
		USMC_ASSERT_EQ(seen[i], 1);
	/* the server's two local addresses are two devices, two GIDs */
	if (seen[1] && seen[2]) {
		CU_ASSERT_NOT_EQUAL(dev[1], dev[2]);
		CU_ASSERT_STRING_NOT_EQUAL(gid[1], gid[2]);
		CU_ASSERT_STRING_EQUAL(gid[2], "::ffff:127.0.0.4");
	}
	usmc_test_server_wait(&server_pid);
}

static CU_TestInfo tests[] = {
	{"two local addresses at once: two devices, both SMC-R",
	 test_two_addresses},
	{"a third connection reuses its address's device and link group",
	 test_reuse},
	{"a device that cannot open declines only its connections, once",
	 test_device_fails},
	{"a rule names the transport of an address's device",
	 test_rule_transport},
	{"server side: a device per local address, every byte",
	 test_server_side},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime devices over softroce", tests},
		{NULL, NULL},
	};

	alarm(90);
	usmc_test_stat_dir();
	return usmc_test_main_server(suites, suite_init, &server_pid);
}
