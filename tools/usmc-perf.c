/* SPDX-License-Identifier: MIT */
/*
 * usmc-perf: throughput and latency over the usmc socket API, or over plain
 * kernel TCP (--tcp) as the baseline, in the same run. See --help.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/smc_diag.h>
#include <linux/sock_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_clc.h"
#include "usmc_json.h"
#include "usmc_perf.h"
#include "usmc_tool.h"

#ifndef AF_SMC
#define AF_SMC 43 /* the kernel's SMC sockets (net/smc) */
#endif

#define PERF_MAGIC     0x55534d4350455246ull /* "USMCPERF" */
#define PERF_RES_MAGIC USMC_PERF_RES_MAGIC
/* 2: the header carries a duration (-t); a timed stream ends with a
 * trailer at a CHUNK boundary instead of at a byte count */
#define PERF_VERSION   2
#define HDR_LEN	       64
#define RES_LEN	       40
#define CHUNK	       USMC_PERF_CHUNK
#define MAX_MSG	       (16u << 20)
#define MODE_STREAM    1
#define MODE_REVERSE   2
#define MODE_PINGPONG  3
#define MODE_BIDI      4
#define BIDI_BASE      USMC_PERF_BIDI_BASE
#define FLAG_VERIFY    1u
#define FLAG_TIMED     2u /* -t: run for duration_ms, not to a count */
/* the warm-up round trips of a timed ping-pong, not measured */
#define TIMED_WARM     100u
#define REQ_SMC	       1 /* --require-smc: SMC-R or SMC-D */
#define REQ_SMCR       2 /* --require-smcr: SMC-R only */
#define VERIFY_OFF     0
#define VERIFY_OK      1
#define VERIFY_FAILED  2
#define VERIFY_NONE    3 /* --bidi: the peer never said what it received */

static const char *prog = "usmc-perf";

/* exit(3) once other threads may end the process too (main's return,
 * a server connection, the watchdog): only the first caller runs the
 * exit handlers, as exit is not safe to enter twice at once; a later one
 * waits for it. */
static __attribute__((noreturn)) void perf_exit(int code)
{
	static int exiting;

	if (__atomic_exchange_n(&exiting, 1, __ATOMIC_ACQ_REL))
		for (;;)
			pause();
	exit(code);
}

static struct {
	int server, one, json, tcp, raw, verify;
	int af_smc; /* the kernel's AF_SMC, the peer in the VM tier */
	const char *host, *bind_addr, *transport, *smc_ports;
	uint16_t port;
	int mode;
	uint64_t bytes;
	uint32_t msg_size, iterations;
	int parallel;
	int timeout;
	int timeout_set; /* --timeout given: the server keeps it as is */
	double duration; /* -t: seconds, 0: run to the count */
	double interval; /* -i: seconds between interval lines, 0: none */
	int require;	 /* REQ_* */
	int idle_ms;	 /* client: connection idle this long before the test */
	int linger_ms;	 /* client: open this long after it, before the close */
	int conns; /* --conns N: N idle connections, then one message each */
} opt = {
	.port = 7070,
	.mode = MODE_STREAM,
	.bytes = 64ull << 20,
	.iterations = 10000,
	.parallel = 1,
	.timeout = 60,
};

/* The socket calls: usmc's or the kernel's (--tcp). */
static struct {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recv)(int, void *, size_t, int);
	int (*shutdown)(int, int);
	int (*close)(int);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*epoll_create1)(int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
} io;

static void use_kernel(void)
{
	io.socket = socket;
	io.connect = connect;
	io.bind = bind;
	io.listen = listen;
	io.accept = accept;
	io.send = send;
	io.recv = recv;
	io.shutdown = shutdown;
	io.close = close;
	io.setsockopt = setsockopt;
	io.epoll_create1 = epoll_create1;
	io.epoll_ctl = epoll_ctl;
	io.epoll_wait = epoll_wait;
}

/* AF_SMC with protocol 0 (SMCPROTO_SMC) is SMC over IPv4: the same
 * sockaddr_in, every other call as for TCP. */
static int af_smc_socket(int family, int type, int proto)
{
	(void)family;
	(void)proto;
	return socket(AF_SMC, type, 0);
}

static void use_usmc(void)
{
	io.socket = usmc_socket;
	io.connect = usmc_connect;
	io.bind = usmc_bind;
	io.listen = usmc_listen;
	io.accept = usmc_accept;
	io.send = usmc_send;
	io.recv = usmc_recv;
	io.shutdown = usmc_shutdown;
	io.close = usmc_close;
	io.setsockopt = usmc_setsockopt;
	io.epoll_create1 = usmc_epoll_create1;
	io.epoll_ctl = usmc_epoll_ctl;
	io.epoll_wait = usmc_epoll_wait;
}

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
	exit(2);
}

static void help(void)
{
	printf("NAME\n"
	       "    usmc-perf - SMC-R throughput and latency over the usmc "
	       "runtime\n"
	       "\n"
	       "SYNOPSIS\n"
	       "    usmc-perf -s [-B ADDR] [-p PORT] [-1] [common options]\n"
	       "    usmc-perf -c HOST [-p PORT] [mode] [common options]\n"
	       "\n"
	       "DESCRIPTION\n"
	       "    Measures a TCP-style byte stream or a request/response "
	       "ping-pong\n"
	       "    between a client and a server, over usmc (SMC-R with TCP "
	       "fallback)\n"
	       "    or, with --tcp, over plain kernel TCP, so that ratios can "
	       "be taken\n"
	       "    in the same run. Every result names the path the data "
	       "took: a line\n"
	       "    'path: SMC-R over TRANSPORT (...)' or 'path: TCP "
	       "(fallback: NAME\n"
	       "    CODE DETAIL)' or 'path: TCP (--tcp baseline)'.\n"
	       "\n"
	       "ROLE\n"
	       "    -s, --server         serve tests; prints one result per "
	       "connection\n"
	       "    -B, --bind ADDR      server: local address (default "
	       "0.0.0.0);\n"
	       "                         client: ADDR[,ADDR...], connection "
	       "i leaves\n"
	       "                         from the (i mod n)-th address "
	       "(bind before\n"
	       "                         connect)\n"
	       "    -1, --one            server: exit after one test (all its "
	       "-P\n"
	       "                         connections); the exit code is that "
	       "test's;\n"
	       "                         connections without a usmc-perf "
	       "header are\n"
	       "                         reported but do not count, unless "
	       "they ran CLC\n"
	       "                         or sent a CLC Proposal as data (a "
	       "client whose\n"
	       "                         rules call the port SMC where this "
	       "end's do\n"
	       "                         not): then the test failed, exit 1\n"
	       "    -c, --client HOST    connect to HOST (name or IPv4 "
	       "address);\n"
	       "                         HOST,HOST...: connection i goes to "
	       "the\n"
	       "                         (i mod n)-th\n"
	       "    -p, --port PORT      TCP port (default 7070)\n"
	       "\n"
	       "MODES (client)\n"
	       "    -n, --bytes N[K|M|G]\n"
	       "                         stream N bytes client->server "
	       "(default 64M);\n"
	       "                         the client then half-closes and reads "
	       "the\n"
	       "                         server's byte count and checksum\n"
	       "    -R, --reverse        stream server->client instead\n"
	       "        --bidi           stream N bytes each way at once; "
	       "each end\n"
	       "                         checks both directions (bytes: "
	       "their sum)\n"
	       "        --pingpong SIZE  ping-pong with SIZE-byte messages "
	       "(1..16M)\n"
	       "        --iterations K   round trips for --pingpong (default "
	       "10000),\n"
	       "                         after min(K/10, 100) unmeasured "
	       "ones\n"
	       "    -t, --time SEC       run for SEC seconds instead of to a "
	       "count\n"
	       "                         (fractions allowed, 0.01..86400), as "
	       "iperf3 -t\n"
	       "                         and sockperf -t: any mode; excludes "
	       "-n and\n"
	       "                         --iterations (a ping-pong first makes "
	       "100\n"
	       "                         unmeasured round trips). Without -t, "
	       "-n or\n"
	       "                         --iterations the defaults above "
	       "apply\n"
	       "    -i, --interval SEC   print a line every SEC seconds (e.g. "
	       "0.5) while\n"
	       "                         the test runs: '[  0.00-  1.00 s]  "
	       "MiB  Gbit/s'\n"
	       "                         for streams (all connections, bytes "
	       "sent, or\n"
	       "                         received with -R), 'send MiB Gbit/s "
	       "receive MiB\n"
	       "                         Gbit/s' for --bidi (each direction "
	       "on its own),\n"
	       "                         round trips, rate and p50 for "
	       "ping-pong. The\n"
	       "                         clock starts when the measuring "
	       "does (after a\n"
	       "                         ping-pong's warm-up); the last part "
	       "may be shorter\n"
	       "                         (a counted run's ends with it): the "
	       "intervals add up\n"
	       "                         to the totals. With --json: the "
	       "\"intervals\"\n"
	       "                         array instead\n"
	       "    -P, --parallel N     N concurrent connections, each "
	       "running the\n"
	       "                         mode; totals are summed (1..256)\n"
	       "\n"
	       "COMMON OPTIONS\n"
	       "        --verify         deterministic pattern data; every "
	       "byte is\n"
	       "                         checked on receipt and a checksum "
	       "over the\n"
	       "                         whole stream is compared with the "
	       "peer's;\n"
	       "                         a mismatch exits 1 and names the "
	       "offset\n"
	       "        --json           one JSON object per result on "
	       "stdout\n"
	       "        --tcp            plain kernel TCP, no usmc at all\n"
	       "        --af-smc         the kernel's own SMC (AF_SMC), no "
	       "usmc: the\n"
	       "                         path is what smc_diag says of the "
	       "socket\n"
	       "                         (transport \"kernel\"; needs the "
	       "smc_diag module)\n"
	       "        --transport NAME usmc transport backend (default "
	       "softroce)\n"
	       "        --smc-ports LIST explicit mode: ports that speak SMC, "
	       "e.g.\n"
	       "                         7070,8000-8010 (default: "
	       "$USMC_SMC_PORTS if\n"
	       "                         set, else the -p port)\n"
	       "        --raw            client: ping-pong against any echo "
	       "server\n"
	       "                         (no usmc-perf header)\n"
	       "        --idle MS        client: leave the connection idle "
	       "for MS\n"
	       "                         milliseconds after the header, "
	       "before the test\n"
	       "        --conns N        client and server: N idle connections "
	       "from one\n"
	       "                         process (after a first one), the "
	       "memory they add\n"
	       "                         per connection (RSS, PSS; the "
	       "server's too),\n"
	       "                         then one checksummed 1 KiB message "
	       "each way on\n"
	       "                         every connection, every byte "
	       "compared; exit 1\n"
	       "                         on any fallback\n"
	       "        --linger MS      client: keep the connection open MS "
	       "milliseconds\n"
	       "                         after the test, before closing it "
	       "(its final\n"
	       "                         counters stay visible to "
	       "usmc-stat)\n"
	       "        --timeout SEC    give up after SEC seconds, exit 1 "
	       "(default 60,\n"
	       "                         or with -t its SEC + 31; a client "
	       "adds its\n"
	       "                         --idle and --linger; a server "
	       "without\n"
	       "                         --timeout moves its limit to a timed "
	       "test's\n"
	       "                         end + 30 s; a server without -1 has "
	       "no overall\n"
	       "                         limit)\n"
	       "        --require-smcr   exit 1 when any connection did not go "
	       "over\n"
	       "                         SMC-R (a TCP fallback, or SMC-D), "
	       "with a line\n"
	       "                         on stderr naming the connection and "
	       "its path;\n"
	       "                         the result, printed first, fails too "
	       "(JSON:\n"
	       "                         \"ok\":false and that line as "
	       "\"error\"). Server:\n"
	       "                         each test connection's result; with "
	       "-1, the\n"
	       "                         exit code too; for CI scripts\n"
	       "        --require-smc    the same, but SMC-D over shm counts "
	       "as SMC too\n"
	       "    -h, --help           this text\n"
	       "        --version        the version, and exit\n"
	       "\n"
	       "OUTPUT\n"
	       "    Text: 'path:', then for streams 'bytes:', 'seconds:', "
	       "'gbps:', and\n"
	       "    for ping-pong 'round_trips:', 'seconds:' (the measured "
	       "part) and\n"
	       "    'latency_us: p50 .. p90 .. p99 .. p99.9 .. max ..' "
	       "(microseconds,\n"
	       "    from CLOCK_MONOTONIC per round trip; percentiles by "
	       "nearest rank\n"
	       "    from a log-linear histogram, within 0.4%%, for runs of any "
	       "length;\n"
	       "    max exact), 'verify:', 'connections:', 'link_groups:'.\n"
	       "    JSON keys: role, mode, path (\"smcr\"|\"smcd\"|\"tcp\"; "
	       "smcd: SMC-D over\n"
	       "    shm with a peer on this host), transport, smc_version\n"
	       "    (1|2, null for TCP and --af-smc), fallback_reason, "
	       "fallback_detail,\n"
	       "    fallback_code, peer_diagnosis, bytes, seconds, gbps, "
	       "round_trips,\n"
	       "    latency_us {p50,p90,p99,p999,max}, verify "
	       "(\"ok\"|\"failed\"|\"off\"),\n"
	       "    connections, link_groups, icrc_inferred, icrc_dropped "
	       "(softroce: packets\n"
	       "    taken with an IPv4 ID inferred from the ICRC, ICRC "
	       "drops); on failure\n"
	       "    error (text), error_at and error_mono\n"
	       "    (CLOCK_REALTIME and CLOCK_MONOTONIC seconds of the first "
	       "error). A\n"
	       "    failed stream's bytes are those received before the "
	       "error, and\n"
	       "    verify judges them. --bidi adds tx and rx, each {bytes, "
	       "csum,\n"
	       "    verify}: what the peer confirmed of this end's stream, "
	       "and what\n"
	       "    this end received of the peer's (csum: the 64-bit "
	       "checksum;\n"
	       "    tx verify \"none\": the peer never said, the stream "
	       "broke off;\n"
	       "    verify is \"failed\" only for a wrong byte or checksum "
	       "either way).\n"
	       "    A client with -P above 1 adds conns, one {index, path, "
	       "fallback_reason,\n"
	       "    fallback_code, peer_diagnosis, bytes, verify, ok} per "
	       "connection\n"
	       "    (path above is \"smcr\" only when every connection's "
	       "is; the\n"
	       "    fallback keys above are the first connection's). With "
	       "-i, the client\n"
	       "    adds intervals, one {start, end, bytes, gbps} (--bidi: "
	       "bytes both\n"
	       "    ways, and tx and rx, each {bytes, gbps}; ping-pong: "
	       "{start, end,\n"
	       "    round_trips, rate, p50_us}) per interval. A client "
	       "that made no\n"
	       "    connection prints only the error (one line on stderr; "
	       "--json: one\n"
	       "    object {role, ok: false, error, error_at, "
	       "error_mono}).\n"
	       "\n"
	       "ENVIRONMENT\n"
	       "    USMC_TRANSPORT       transport backend (default "
	       "softroce)\n"
	       "    USMC_SHM             on (default): SMC-D over shm with "
	       "a peer on this host;\n"
	       "                         off: SMC-R only\n"
	       "    USMC_SOFTROCE_PORT   RoCEv2 UDP port of softroce (default "
	       "4791)\n"
	       "    USMC_SMC_PORTS       explicit-mode SMC port list\n"
	       "    USMC_CLC_WAIT_MS     server: wait for a CLC proposal "
	       "(default 2000)\n"
	       "    USMC_DEBUG=1         runtime log on stderr\n"
	       "\n"
	       "EXIT STATUS\n"
	       "    0 success; 1 failure (verify mismatch, connection error, "
	       "timeout,\n"
	       "    --require-smc(r) not met); 2 usage error.\n"
	       "\n"
	       "COMPATIBILITY\n"
	       "    Both ends must run the same usmc-perf protocol (version "
	       "2 since -t);\n"
	       "    a server given an older client's header says so and "
	       "closes.\n"
	       "\n"
	       "EXAMPLES\n"
	       "    usmc-perf -s -1 &  usmc-perf -c 127.0.0.1 -n 1G --verify\n"
	       "    usmc-perf -c 10.0.0.1 --pingpong 64 --iterations 100000 "
	       "--json\n"
	       "    usmc-perf -c 10.0.0.1 -t 10 -i 1 --require-smcr\n"
	       "    usmc-perf -c 10.0.0.1 --pingpong 64 -t 5 -i 0.5\n"
	       "    usmc-perf -c 10.0.0.1 --tcp -R -P 4\n");
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (ms > 0 && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Pattern data: usmc_perf_mix (usmc_perf.h). */
static void pattern_fill(uint8_t *p, size_t n, uint64_t off)
{
	while (n) {
		uint64_t w = usmc_perf_mix(off >> 3);
		unsigned int b = (unsigned int)(off & 7);

		if (b == 0 && n >= 8) {
			memcpy(p, &w, 8); /* host order: same on both ends */
			p += 8;
			off += 8;
			n -= 8;
			continue;
		}
		*p++ = ((const uint8_t *)&w)[b];
		off++;
		n--;
	}
}

/* Returns the index of the first byte differing from the pattern, or -1. */
static int64_t pattern_check(const uint8_t *p, size_t n, uint64_t off)
{
	uint8_t exp[4096];
	size_t done = 0;

	while (done < n) {
		size_t k = n - done < sizeof(exp) ? n - done : sizeof(exp);

		pattern_fill(exp, k, off + done);
		if (memcmp(exp, p + done, k)) {
			for (size_t i = 0; i < k; i++)
				if (exp[i] != p[done + i])
					return (int64_t)(done + i);
		}
		done += k;
	}
	return -1;
}

/* Fletcher-style 64-bit checksum over the whole stream, order-sensitive. */
typedef struct csum {
	uint64_t a, b;
} csum;

static void csum_add(csum *c, const uint8_t *p, size_t n)
{
	uint64_t a = c->a, b = c->b;

	for (size_t i = 0; i < n; i++) {
		a += p[i];
		b += a;
	}
	c->a = a;
	c->b = b;
}

static uint64_t csum_val(const csum *c)
{
	return c->b ^ (c->a << 32) ^ (c->a >> 32);
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

typedef struct result {
	int ok; /* 1 success */
	char err[200];
	/* CLOCK_REALTIME of the first error, so a test can time it against
	 * an event in another process (a peer's death) */
	struct timespec err_at;
	struct timespec err_mono; /* the same on CLOCK_MONOTONIC */
	int mode;
	uint64_t bytes;
	double seconds;
	/* ping-pong round trip times (ns); the interval thread loads the
	 * pointer (atomic) and the counts as they grow */
	usmc_hist *hist;
	/* bytes received (streams, sent for a stream client) and sent
	 * (--bidi) so far, for the interval lines: atomic */
	uint64_t live, live_tx;
	uint64_t round_trips;
	int verify; /* VERIFY_* */
	usmc_sock_info info;
	int have_info;
	char kpath
		[200]; /* --af-smc: the kernel's SMC-R link, as smc_diag says */
	/* --bidi: each direction on its own; |bytes| is their sum */
	int bidi;
	uint64_t tx_bytes, rx_bytes; /* tx: what the peer says it received */
	uint64_t tx_csum, rx_csum;
	int tx_verify, rx_verify;
} result;

static void fail(result *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->ok && r->err[0])
		return; /* keep the first error */
	r->ok = 0;
	clock_gettime(CLOCK_REALTIME, &r->err_at);
	clock_gettime(CLOCK_MONOTONIC, &r->err_mono);
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

static int send_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = io.send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 ok, 0 EOF before n bytes, -1 error */
static int recv_all(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = io.recv(fd, p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0)
			return 0;
		p += r;
		n -= (size_t)r;
	}
	return 1;
}

/* The smc_diag message |m| (a copy) and its attributes at |attrs| (|len|
 * bytes, 4-byte aligned as netlink is) of the kernel socket into |r|. */
static void kdiag_fill(const struct smc_diag_msg *m, struct rtattr *attrs,
		       int len, result *r)
{
	usmc_sock_info *in = &r->info;
	struct rtattr *a = attrs;

	memset(in, 0, sizeof(*in));
	in->device = -1;
	snprintf(in->transport, sizeof(in->transport), "kernel");
	in->mode = m->diag_mode == SMC_DIAG_MODE_SMCR ? USMC_SOCK_SMCR
						      : USMC_SOCK_TCP;
	snprintf(r->kpath, sizeof(r->kpath), "%s",
		 m->diag_mode == SMC_DIAG_MODE_SMCD ? "SMC-D" : "");
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == SMC_DIAG_FALLBACK &&
		    (size_t)RTA_PAYLOAD(a) >=
			    sizeof(struct smc_diag_fallback)) {
			struct smc_diag_fallback fb;

			memcpy(&fb, RTA_DATA(a), sizeof(fb));
			in->peer_diagnosis = fb.peer_diagnosis;
			if (m->diag_mode != SMC_DIAG_MODE_FALLBACK_TCP)
				continue;
			in->fallback_code = fb.reason;
			snprintf(in->fallback_name, sizeof(in->fallback_name),
				 "%s", usmc_clc_decl_name(fb.reason));
			snprintf(in->fallback_desc, sizeof(in->fallback_desc),
				 "%s", usmc_clc_decl_str(fb.reason));
			snprintf(in->fallback_detail,
				 sizeof(in->fallback_detail),
				 "the kernel's smc_diag");
		} else if (a->rta_type == SMC_DIAG_LGRINFO &&
			   (size_t)RTA_PAYLOAD(a) >=
				   sizeof(struct smc_diag_lgrinfo)) {
			struct smc_diag_lgrinfo li;

			memcpy(&li, RTA_DATA(a), sizeof(li));
			li.lnk[0].ibname[sizeof(li.lnk[0].ibname) - 1] = 0;
			li.lnk[0].gid[sizeof(li.lnk[0].gid) - 1] = 0;
			li.lnk[0].peer_gid[sizeof(li.lnk[0].peer_gid) - 1] = 0;
			in->link_id = li.lnk[0].link_id;
			snprintf(r->kpath, sizeof(r->kpath),
				 "%s port %u, link %u, GID %s, peer GID %s",
				 (char *)li.lnk[0].ibname, li.lnk[0].ibport,
				 li.lnk[0].link_id, (char *)li.lnk[0].gid,
				 (char *)li.lnk[0].peer_gid);
		}
	}
}

/* --af-smc: what the kernel's smc_diag says of |fd|, found by inode
 * (the dump lists every AF_SMC socket of the namespace). 0 if found. */
static int kdiag_info(int fd, result *r)
{
	struct {
		struct nlmsghdr nh;
		struct smc_diag_req req;
	} q = {0};
	struct stat st;
	char *buf;
	int nl, found = -1;

	if (fstat(fd, &st))
		return -1;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -1;
	buf = malloc(65536);
	q.nh.nlmsg_len = sizeof(q);
	q.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	q.req.diag_family = AF_SMC;
	q.req.diag_ext =
		(1 << (SMC_DIAG_LGRINFO - 1)) | (1 << (SMC_DIAG_FALLBACK - 1));
	if (!buf || send(nl, &q, sizeof(q), 0) < 0)
		goto out;
	for (;;) {
		ssize_t n = recv(nl, buf, 65536, 0);
		struct nlmsghdr *h;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			/* netlink aligns to 4, the message holds u64s:
			 * copy it out before reading its fields */
			struct smc_diag_msg m;
			int alen;

			if (h->nlmsg_type == NLMSG_DONE ||
			    h->nlmsg_type == NLMSG_ERROR)
				goto out;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(m)))
				continue;
			memcpy(&m, NLMSG_DATA(h), sizeof(m));
			if (m.diag_inode != st.st_ino)
				continue;
			alen = (int)(h->nlmsg_len -
				     NLMSG_LENGTH(NLMSG_ALIGN(sizeof(m))));
			kdiag_fill(&m,
				   (struct rtattr *)((char *)NLMSG_DATA(h) +
						     NLMSG_ALIGN(sizeof(m))),
				   alen, r);
			found = 0;
		}
	}
out:
	free(buf);
	close(nl);
	return found;
}

static void get_info(int fd, result *r)
{
	if (opt.tcp)
		return;
	if (opt.af_smc) {
		if (kdiag_info(fd, r) == 0)
			r->have_info = 1;
		return;
	}
	if (usmc_get_info(fd, &r->info) == 0)
		r->have_info = 1;
}

/* Test header, client -> server. */
typedef struct perf_hdr {
	uint32_t mode, flags, msg_size, iterations, nconn, index;
	uint32_t duration_ms; /* FLAG_TIMED */
	uint64_t bytes, test_id;
} perf_hdr;

static void hdr_encode(const perf_hdr *h, uint8_t *b)
{
	memset(b, 0, HDR_LEN);
	put64(b, PERF_MAGIC);
	put64(b + 8, (uint64_t)PERF_VERSION << 32 | h->mode);
	put64(b + 16, (uint64_t)h->flags << 32 | h->msg_size);
	put64(b + 24, (uint64_t)h->iterations << 32 | h->nconn);
	put64(b + 32, (uint64_t)h->duration_ms << 32 | h->index);
	put64(b + 40, h->bytes);
	put64(b + 48, h->test_id);
}

static int hdr_decode(const uint8_t *b, perf_hdr *h, char *err, size_t elen)
{
	uint64_t v;

	if (get64(b) != PERF_MAGIC) {
		snprintf(err, elen, "client sent no usmc-perf header");
		return -1;
	}
	v = get64(b + 8);
	if (v >> 32 != PERF_VERSION) {
		snprintf(err, elen,
			 "the client speaks usmc-perf protocol version %u, "
			 "this server %u: run the same usmc-perf on both ends",
			 (unsigned int)(v >> 32), PERF_VERSION);
		return -1;
	}
	h->mode = (uint32_t)v;
	v = get64(b + 16);
	h->flags = (uint32_t)(v >> 32);
	h->msg_size = (uint32_t)v;
	v = get64(b + 24);
	h->iterations = (uint32_t)(v >> 32);
	h->nconn = (uint32_t)v;
	v = get64(b + 32);
	h->duration_ms = (uint32_t)(v >> 32);
	h->index = (uint32_t)v;
	h->bytes = get64(b + 40);
	h->test_id = get64(b + 48);
	if (h->mode < MODE_STREAM || h->mode > MODE_BIDI ||
	    (h->mode == MODE_PINGPONG &&
	     (h->msg_size == 0 || h->msg_size > MAX_MSG)) ||
	    h->nconn == 0 || h->nconn > 256 ||
	    !(h->flags & FLAG_TIMED) != !h->duration_ms) {
		snprintf(err, elen, "bad usmc-perf header (mode %u)", h->mode);
		return -1;
	}
	return 0;
}

/* Result trailer: bytes, checksum, verify status, first bad offset. */
static void res_encode(uint8_t *b, uint64_t bytes, uint64_t cs, int verify,
		       uint64_t bad)
{
	put64(b, PERF_RES_MAGIC);
	put64(b + 8, bytes);
	put64(b + 16, cs);
	put64(b + 24, (uint64_t)verify);
	put64(b + 32, bad);
}

/* Receives a stream of |expect| bytes (or until EOF if expect is
 * UINT64_MAX), verifying the pattern when asked. */
static uint64_t recv_stream(int fd, uint8_t *buf, uint64_t expect,
			    uint64_t base, int verify, csum *cs, result *r,
			    int64_t *bad)
{
	uint64_t got = 0;

	*bad = -1;
	while (got < expect) {
		size_t want =
			expect - got < CHUNK ? (size_t)(expect - got) : CHUNK;
		ssize_t n = io.recv(fd, buf, want, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(r, "recv after %" PRIu64 " bytes: %s", got,
			     strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (verify) {
			int64_t i = *bad < 0 ? pattern_check(buf, (size_t)n,
							     base + got)
					     : -1;

			if (i >= 0) {
				uint8_t e;

				pattern_fill(&e, 1, base + got + (uint64_t)i);
				*bad = (int64_t)got + i;
				fail(r,
				     "verify: byte at offset %" PRId64
				     " is 0x%02x, expected 0x%02x",
				     *bad, buf[i], e);
			}
			csum_add(cs, buf, (size_t)n);
		}
		got += (uint64_t)n;
		__atomic_add_fetch(&r->live, (uint64_t)n, __ATOMIC_RELAXED);
	}
	return got;
}

/* A timed stream (-t) has no count the receiver knows: it is whole
 * CHUNKs, then the sender's trailer (bytes, checksum). The rule: at a
 * CHUNK boundary, PERF_RES_MAGIC begins the trailer, never data (see
 * send_stream). The trailer goes to |trailer|; 0 if none arrived. */
static int recv_timed(int fd, uint8_t *buf, uint64_t base, int verify, csum *cs,
		      result *r, int64_t *bad, uint64_t *got, uint8_t *trailer)
{
	*bad = -1;
	*got = 0;
	for (;;) {
		int k = recv_all(fd, buf, RES_LEN);

		if (k > 0 && get64(buf) == PERF_RES_MAGIC) {
			memcpy(trailer, buf, RES_LEN);
			return 1;
		}
		if (k > 0)
			k = recv_all(fd, buf + RES_LEN, CHUNK - RES_LEN);
		if (k <= 0) {
			fail(r, "recv after %" PRIu64 " bytes: %s", *got,
			     k ? strerror(errno)
			       : "connection closed before the trailer");
			return 0;
		}
		if (verify) {
			int64_t i = *bad < 0 ? pattern_check(buf, CHUNK,
							     base + *got)
					     : -1;

			if (i >= 0) {
				uint8_t e;

				pattern_fill(&e, 1, base + *got + (uint64_t)i);
				*bad = (int64_t)*got + i;
				fail(r,
				     "verify: byte at offset %" PRId64
				     " is 0x%02x, expected 0x%02x",
				     *bad, buf[i], e);
			}
			csum_add(cs, buf, CHUNK);
		}
		*got += CHUNK;
		__atomic_add_fetch(&r->live, CHUNK, __ATOMIC_RELAXED);
	}
}

/* Sends |total| bytes, or with a |deadline| (CLOCK_MONOTONIC ns) whole
 * CHUNKs until then; what was sent goes to |sent_out|, and as it goes to
 * |live| (the interval lines). */
static int send_stream(int fd, uint8_t *buf, uint64_t total, uint64_t base,
		       int verify, csum *cs, result *r, uint64_t deadline,
		       uint64_t *sent_out, uint64_t *live)
{
	uint64_t sent = 0;
	int rc = 0;

	if (!verify)
		memset(buf, USMC_PERF_FILL, CHUNK);
	for (;;) {
		size_t n = CHUNK;

		if (deadline) {
			/* the receiver's rule (recv_timed): a CHUNK that
			 * begins with the trailer's magic is the trailer, so
			 * the stream ends before data that would. The fill
			 * never does, nor does the pattern at any CHUNK
			 * boundary (test_tool_perf proves it): this holds the
			 * rule should CHUNK or the pattern change. */
			if (now_ns() >= deadline ||
			    (verify && usmc_perf_like_trailer(base + sent)))
				break;
		} else {
			if (sent >= total)
				break;
			if (total - sent < CHUNK)
				n = (size_t)(total - sent);
		}
		if (verify) {
			pattern_fill(buf, n, base + sent);
			csum_add(cs, buf, n);
		}
		if (send_all(fd, buf, n)) {
			fail(r, "send after %" PRIu64 " bytes: %s", sent,
			     strerror(errno));
			rc = -1;
			break;
		}
		sent += n;
		__atomic_add_fetch(live, (uint64_t)n, __ATOMIC_RELAXED);
	}
	if (sent_out)
		*sent_out = sent;
	return rc;
}

typedef struct bidi_tx {
	int fd, verify;
	uint64_t bytes, base, deadline, sent;
	uint64_t *live;
	csum cs;
	result r;
} bidi_tx;

static void *bidi_send(void *arg)
{
	bidi_tx *t = arg;
	uint8_t *buf = malloc(CHUNK), res[RES_LEN];

	t->r.ok = 1;
	if (!buf) {
		fail(&t->r, "out of memory");
		return NULL;
	}
	if (send_stream(t->fd, buf, t->bytes, t->base, t->verify, &t->cs, &t->r,
			t->deadline, &t->sent, t->live) == 0) {
		res_encode(res, t->sent, csum_val(&t->cs), 0, 0);
		if (send_all(t->fd, res, RES_LEN))
			fail(&t->r, "send trailer: %s", strerror(errno));
	}
	free(buf);
	return NULL;
}

/* --bidi, both ends alike: |bytes| each way at once, the client's from
 * pattern offset 0 and the server's from BIDI_BASE. Each end sends its
 * stream and a trailer (bytes, checksum) from a thread of its own while it
 * receives the peer's; once both are done it sends what it received
 * (bytes, checksum, verify, first bad offset) and reads the peer's, so
 * each end judges both directions. A timed run (|duration_ns|) sends whole
 * CHUNKs until then on each end, and the trailer ends each stream. */
static void bidi_run(int fd, uint8_t *buf, uint64_t bytes, uint64_t duration_ns,
		     int verify, int server, result *r)
{
	uint64_t t0 = now_ns();
	bidi_tx t = {.fd = fd,
		     .verify = verify,
		     .bytes = bytes,
		     .live = &r->live_tx,
		     .deadline = duration_ns ? t0 + duration_ns : 0};
	uint8_t res[RES_LEN];
	csum cs = {0, 0};
	int64_t bad;
	pthread_t th;
	int k;

	r->bidi = 1;
	t.base = server ? BIDI_BASE : 0;
	if (pthread_create(&th, NULL, bidi_send, &t)) {
		fail(r, "cannot start the sending thread");
		return;
	}
	if (duration_ns) {
		k = recv_timed(fd, buf, server ? 0 : BIDI_BASE, verify, &cs, r,
			       &bad, &r->rx_bytes, res);
	} else {
		r->rx_bytes =
			recv_stream(fd, buf, bytes, server ? 0 : BIDI_BASE,
				    verify, &cs, r, &bad);
		if (r->rx_bytes != bytes)
			fail(r, "received %" PRIu64 " of %" PRIu64 " bytes",
			     r->rx_bytes, bytes);
		k = r->rx_bytes == bytes ? recv_all(fd, res, RES_LEN) : -1;
	}
	r->rx_csum = csum_val(&cs);
	r->rx_verify = !verify	  ? VERIFY_OFF
		       : bad >= 0 ? VERIFY_FAILED
				  : VERIFY_OK;
	if (k > 0 && duration_ns && get64(res) == PERF_RES_MAGIC &&
	    get64(res + 8) != r->rx_bytes)
		fail(r, "received %" PRIu64 " of %" PRIu64 " bytes",
		     r->rx_bytes, get64(res + 8));
	if (k <= 0 || get64(res) != PERF_RES_MAGIC) {
		fail(r, "no trailer from the peer");
	} else if (verify && bad < 0 && get64(res + 16) != r->rx_csum) {
		r->rx_verify = VERIFY_FAILED;
		fail(r,
		     "verify: checksum mismatch of the received stream (peer "
		     "%016" PRIx64 ", here %016" PRIx64 ")",
		     get64(res + 16), r->rx_csum);
	}
	if (!r->ok)
		/* the peer or the link is gone: end the sender's wait too */
		io.shutdown(fd, SHUT_RDWR);
	pthread_join(th, NULL);
	r->tx_csum = csum_val(&t.cs);
	if (!t.r.ok && r->ok) {
		/* the sender failed first: its error and its time */
		r->ok = 0;
		memcpy(r->err, t.r.err, sizeof(r->err));
		r->err_at = t.r.err_at;
		r->err_mono = t.r.err_mono;
	}
	if (r->ok) {
		res_encode(res, r->rx_bytes, r->rx_csum, r->rx_verify,
			   bad < 0 ? 0 : (uint64_t)bad);
		if (send_all(fd, res, RES_LEN))
			fail(r, "send result: %s", strerror(errno));
	}
	k = r->ok ? recv_all(fd, res, RES_LEN) : -1;
	r->seconds = (double)(now_ns() - t0) / 1e9;
	r->tx_verify = verify ? VERIFY_NONE : VERIFY_OFF;
	if (k <= 0 || get64(res) != PERF_RES_MAGIC) {
		fail(r, "no result from the peer");
	} else {
		r->tx_bytes = get64(res + 8);
		if (verify)
			r->tx_verify = VERIFY_FAILED;
		if (r->tx_bytes != t.sent)
			fail(r,
			     "peer received %" PRIu64 " of %" PRIu64 " bytes",
			     r->tx_bytes, t.sent);
		else if (verify && get64(res + 24) == VERIFY_FAILED)
			fail(r,
			     "verify: peer found a bad byte at offset %" PRIu64,
			     get64(res + 32));
		else if (verify && get64(res + 16) != r->tx_csum)
			fail(r,
			     "verify: checksum mismatch of the sent stream "
			     "(peer %016" PRIx64 ", here %016" PRIx64 ")",
			     get64(res + 16), r->tx_csum);
		else if (verify)
			r->tx_verify = VERIFY_OK;
	}
	r->bytes = r->rx_bytes + r->tx_bytes;
	/* a stream that broke off is judged on what arrived: failed only
	 * for a wrong byte or checksum, either way */
	if (verify)
		r->verify = r->rx_verify == VERIFY_FAILED ||
					    r->tx_verify == VERIFY_FAILED
				    ? VERIFY_FAILED
				    : VERIFY_OK;
}

/* when the first connection began to measure: 0 for the interval lines
 * (-i), which follow the measured part of the test and not the warm-up */
static uint64_t test_start_ns;
/* when the last connection ended its measured part: the end of the last,
 * partial, interval of a counted run */
static uint64_t test_end_ns;

/* The start of this connection's measured part, now; the first one also
 * starts the interval clock. */
static uint64_t measure_start(void)
{
	uint64_t z = 0, t = now_ns();

	__atomic_compare_exchange_n(&test_start_ns, &z, t, 0, __ATOMIC_RELEASE,
				    __ATOMIC_RELAXED);
	return t;
}

static void measure_end(void)
{
	uint64_t t = now_ns(),
		 cur = __atomic_load_n(&test_end_ns, __ATOMIC_RELAXED);

	while (cur < t &&
	       !__atomic_compare_exchange_n(&test_end_ns, &cur, t, 1,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* Ping-pong, client side: |n| measured round trips after a warm-up, or
 * with |duration_ns| as many as fit in it after TIMED_WARM; |r->seconds|
 * is the measured part's. */
static void pingpong_client(int fd, uint32_t size, uint32_t n,
			    uint64_t duration_ns, int verify, result *r)
{
	uint8_t *tx = malloc(size), *rx = malloc(size);
	uint32_t warm = duration_ns ? TIMED_WARM : n / 10 < 100 ? n / 10 : 100;
	uint64_t off = 0, start = 0, end = 0;
	usmc_hist *h = malloc(sizeof(*h));

	if (!tx || !rx || !h) {
		fail(r, "out of memory");
		free(h);
		goto out;
	}
	usmc_hist_init(h);
	/* the interval thread takes it from here on */
	__atomic_store_n(&r->hist, h, __ATOMIC_RELEASE);
	memset(tx, 0x5a, size);
	for (uint64_t i = 0; duration_ns || i < (uint64_t)warm + n; i++) {
		uint64_t t0;
		int k;

		if (i == warm) {
			start = measure_start();
			if (duration_ns)
				end = start + duration_ns;
		}
		if (end && now_ns() >= end)
			break;

		if (verify)
			pattern_fill(tx, size, off);
		t0 = now_ns();
		if (send_all(fd, tx, size)) {
			fail(r, "send (round trip %" PRIu64 "): %s", i,
			     strerror(errno));
			goto out;
		}
		k = recv_all(fd, rx, size);
		if (k <= 0) {
			fail(r, "recv (round trip %" PRIu64 "): %s", i,
			     k ? strerror(errno) : "peer closed");
			goto out;
		}
		if (i >= warm) {
			usmc_hist_add(h, now_ns() - t0);
			r->round_trips++;
		}
		if (verify && memcmp(tx, rx, size)) {
			size_t j = 0;

			while (tx[j] == rx[j])
				j++;
			fail(r,
			     "verify: echoed byte at offset %" PRIu64
			     " is 0x%02x, expected 0x%02x",
			     off + j, rx[j], tx[j]);
			r->verify = VERIFY_FAILED;
			goto out;
		}
		off += size;
	}
	if (verify)
		r->verify = VERIFY_OK;
out:
	r->bytes = (uint64_t)size * r->round_trips;
	if (start) {
		r->seconds = (double)(now_ns() - start) / 1e9;
		measure_end();
	}
	free(tx);
	free(rx);
}

/* ns as the microseconds printed */
static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static const char *mode_name(int m)
{
	return m == MODE_PINGPONG ? "pingpong"
	       : m == MODE_BIDI	  ? "bidi"
				  : "stream";
}

static void path_text(const result *r, char *b, size_t n)
{
	if (opt.tcp) {
		snprintf(b, n, "TCP (--tcp baseline)");
		return;
	}
	if (!r->have_info) {
		snprintf(b, n, "unknown (no connection%s)",
			 opt.af_smc ? ", or smc_diag is not loaded" : "");
		return;
	}
	if (opt.af_smc && r->info.mode == USMC_SOCK_SMCR) {
		snprintf(b, n, "SMC-R over the kernel's AF_SMC (%s)",
			 r->kpath[0] ? r->kpath : "no link group info");
		return;
	}
	if (r->info.mode == USMC_SOCK_SMCR && r->info.smcd) {
		snprintf(b, n, "SMC-D over %s (link group %u, SMC-Dv%d)",
			 r->info.transport, r->info.lgr_id,
			 r->info.smc_version);
		return;
	}
	if (r->info.mode == USMC_SOCK_SMCR) {
		snprintf(b, n,
			 "SMC-R over %s (link group %u, link %u, SMC-Rv%d)",
			 r->info.transport, r->info.lgr_id, r->info.link_id,
			 r->info.smc_version);
		return;
	}
	if (r->info.fallback_code)
		snprintf(b, n, "TCP (fallback: %s 0x%08x %s: %s)",
			 r->info.fallback_name, r->info.fallback_code,
			 r->info.fallback_desc, r->info.fallback_detail);
	else
		snprintf(b, n, "TCP (not managed by usmc)");
}

static void json_str(FILE *f, const char *s)
{
	usmc_json_fputs(f, s);
}

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *verify_name(int v)
{
	return v == VERIFY_OK	    ? "ok"
	       : v == VERIFY_FAILED ? "failed"
	       : v == VERIFY_NONE   ? "none"
				    : "off";
}

/* One connection of a -P test, as the "conns" item |i|. */
static void conn_json(FILE *f, const result *r, int i)
{
	const usmc_sock_info *in = &r->info;
	int smcr = !opt.tcp && r->have_info && in->mode == USMC_SOCK_SMCR;
	int fb = !opt.tcp && r->have_info && in->fallback_code && !smcr;

	fprintf(f, "%s{\"index\":%d,\"path\":\"%s\",\"fallback_reason\":",
		i ? "," : "", i, smcr ? (in->smcd ? "smcd" : "smcr") : "tcp");
	if (fb)
		json_str(f, in->fallback_name);
	else
		fprintf(f, "null");
	if (fb)
		fprintf(f, ",\"fallback_code\":%u", in->fallback_code);
	else
		fprintf(f, ",\"fallback_code\":null");
	if (!opt.tcp && r->have_info && in->peer_diagnosis)
		fprintf(f, ",\"peer_diagnosis\":%u", in->peer_diagnosis);
	else
		fprintf(f, ",\"peer_diagnosis\":null");
	fprintf(f, ",\"bytes\":%" PRIu64 ",\"verify\":\"%s\",\"ok\":%s}",
		r->bytes, verify_name(r->verify), r->ok ? "true" : "false");
}

/* -i: one record per interval, for the JSON "intervals" */
typedef struct ival {
	double start, end;
	uint64_t bytes, round_trips;
	uint64_t tx_bytes, rx_bytes; /* --bidi: |bytes| is their sum */
	double p50_us;
} ival;

static ival *ivals;
static int nivals;

static double gbit(uint64_t bytes, double secs)
{
	return secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
}

static void intervals_json(FILE *f, int pingpong, int bidi)
{
	fprintf(f, ",\"intervals\":[");
	for (int i = 0; i < nivals; i++) {
		const ival *v = &ivals[i];
		double d = v->end - v->start;

		fprintf(f, "%s{\"start\":%.3f,\"end\":%.3f", i ? "," : "",
			v->start, v->end);
		if (pingpong)
			fprintf(f,
				",\"round_trips\":%" PRIu64
				",\"rate\":%.1f,\"p50_us\":",
				v->round_trips,
				d > 0 ? (double)v->round_trips / d : 0);
		else
			fprintf(f, ",\"bytes\":%" PRIu64 ",\"gbps\":%.4f",
				v->bytes, gbit(v->bytes, d));
		if (bidi)
			fprintf(f,
				",\"tx\":{\"bytes\":%" PRIu64
				",\"gbps\":%.4f},\"rx\":{\"bytes\":%" PRIu64
				",\"gbps\":%.4f}",
				v->tx_bytes, gbit(v->tx_bytes, d), v->rx_bytes,
				gbit(v->rx_bytes, d));
		if (!pingpong)
			fprintf(f, "}");
		else if (v->round_trips)
			fprintf(f, "%.3f}", v->p50_us);
		else
			fprintf(f, "null}");
	}
	fprintf(f, "]");
}

/* Prints the result of |n| connections (summed; latencies merged). */
static void report(const char *role, result *rs, int n)
{
	result *r0 = &rs[0];
	uint64_t bytes = 0, rtt = 0, nlat = 0, tx = 0, rx = 0;
	int txv = VERIFY_OK, rxv = VERIFY_OK;
	usmc_hist *lat = NULL;
	double secs = 0;
	int ok = 1, verify = VERIFY_OFF, smcr = 1, mixed = 0;
	char path[300];
	usmc_stats st = {0};
	double gbps;

	for (int i = 0; i < n; i++) {
		bytes += rs[i].bytes;
		if (rs[i].seconds > secs)
			secs = rs[i].seconds;
		rtt += rs[i].round_trips;
		ok &= rs[i].ok;
		if (rs[i].verify == VERIFY_FAILED)
			verify = VERIFY_FAILED;
		else if (rs[i].verify == VERIFY_OK && verify == VERIFY_OFF)
			verify = VERIFY_OK;
		if (opt.tcp || !rs[i].have_info ||
		    rs[i].info.mode != USMC_SOCK_SMCR)
			smcr = 0;
		if (i && rs[i].have_info && r0->have_info &&
		    rs[i].info.mode != r0->info.mode)
			mixed = 1;
	}
	for (int i = 0; i < n; i++) {
		if (!rs[i].hist)
			continue;
		if (!lat && (lat = malloc(sizeof(*lat))))
			usmc_hist_init(lat);
		if (lat)
			usmc_hist_merge(lat, rs[i].hist);
	}
	nlat = lat ? lat->n : 0;
	/* --bidi: each direction summed over the connections; a direction
	 * is ok only when it is on every connection */
	for (int i = 0; i < n; i++) {
		tx += rs[i].tx_bytes;
		rx += rs[i].rx_bytes;
		if (rs[i].tx_verify != VERIFY_OK)
			txv = rs[i].tx_verify;
		if (rs[i].rx_verify != VERIFY_OK)
			rxv = rs[i].rx_verify;
	}
	if (!opt.tcp && !opt.af_smc)
		usmc_get_stats(&st);
	gbps = secs > 0 ? (double)bytes * 8 / secs / 1e9 : 0;
	path_text(r0, path, sizeof(path));
	pthread_mutex_lock(&out_lock);
	if (opt.json) {
		FILE *f = stdout;
		const usmc_sock_info *in = &r0->info;
		int fb = !opt.tcp && r0->have_info && in->fallback_code &&
			 in->mode != USMC_SOCK_SMCR;

		fprintf(f, "{\"role\":\"%s\",\"mode\":\"%s\",\"path\":\"%s\"",
			role, mode_name(r0->mode),
			smcr ? (r0->info.smcd ? "smcd" : "smcr") : "tcp");
		fprintf(f, ",\"transport\":");
		if (opt.tcp)
			fprintf(f, "null");
		else
			json_str(f, r0->have_info
					    ? in->transport
					    : (opt.transport ? opt.transport
							     : "softroce"));
		fprintf(f, ",\"smc_version\":");
		/* smc_diag does not say the version of a kernel socket */
		if (smcr && r0->have_info && !opt.af_smc)
			fprintf(f, "%d", r0->info.smc_version);
		else
			fprintf(f, "null");
		fprintf(f, ",\"fallback_reason\":");
		if (fb)
			json_str(f, in->fallback_name);
		else
			fprintf(f, "null");
		if (fb)
			fprintf(f, ",\"fallback_code\":%u", in->fallback_code);
		else
			fprintf(f, ",\"fallback_code\":null");
		fprintf(f, ",\"fallback_detail\":");
		if (fb)
			json_str(f, in->fallback_detail);
		else
			fprintf(f, "null");
		fprintf(f, ",\"peer_diagnosis\":");
		if (!opt.tcp && r0->have_info && in->peer_diagnosis)
			fprintf(f, "%u", in->peer_diagnosis);
		else
			fprintf(f, "null");
		fprintf(f, ",\"bytes\":%" PRIu64 ",\"seconds\":%.6f", bytes,
			secs);
		if (r0->mode == MODE_PINGPONG)
			fprintf(f, ",\"gbps\":null,\"round_trips\":%" PRIu64,
				rtt);
		else
			fprintf(f, ",\"gbps\":%.4f,\"round_trips\":null", gbps);
		if (nlat)
			fprintf(f,
				",\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,"
				"\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
				us(usmc_hist_pct(lat, 50)),
				us(usmc_hist_pct(lat, 90)),
				us(usmc_hist_pct(lat, 99)),
				us(usmc_hist_pct(lat, 99.9)), us(lat->max));
		else
			fprintf(f, ",\"latency_us\":null");
		fprintf(f,
			",\"verify\":\"%s\",\"connections\":%d,"
			"\"link_groups\":%" PRIu64 ",\"icrc_inferred\":%" PRIu64
			",\"icrc_dropped\":%" PRIu64 ",\"ok\":%s",
			verify == VERIFY_OK	  ? "ok"
			: verify == VERIFY_FAILED ? "failed"
						  : "off",
			n, st.link_groups, st.icrc_inferred, st.icrc_dropped,
			ok ? "true" : "false");
		if (r0->bidi) {
			/* checksums: the first connection's */
			fprintf(f,
				",\"tx\":{\"bytes\":%" PRIu64
				",\"csum\":\"%016" PRIx64
				"\",\"verify\":\"%s\"}"
				",\"rx\":{\"bytes\":%" PRIu64
				",\"csum\":\"%016" PRIx64
				"\",\"verify\":\"%s\"}",
				tx, r0->tx_csum, verify_name(txv), rx,
				r0->rx_csum, verify_name(rxv));
		}
		/* -P: each connection's path and reason (they may differ:
		 * one may fall back on a link group another uses) */
		if (n > 1) {
			fprintf(f, ",\"conns\":[");
			for (int i = 0; i < n; i++)
				conn_json(f, &rs[i], i);
			fprintf(f, "]");
		}
		if (opt.interval > 0 && !strcmp(role, "client"))
			intervals_json(f, r0->mode == MODE_PINGPONG,
				       r0->mode == MODE_BIDI);
		if (!ok) {
			for (int i = 0; i < n; i++)
				if (!rs[i].ok) {
					fprintf(f, ",\"error\":");
					json_str(f, rs[i].err);
					fprintf(f, ",\"error_at\":%lld.%09ld",
						(long long)rs[i].err_at.tv_sec,
						rs[i].err_at.tv_nsec);
					fprintf(f, ",\"error_mono\":%lld.%09ld",
						(long long)rs[i]
							.err_mono.tv_sec,
						rs[i].err_mono.tv_nsec);
					break;
				}
		}
		fprintf(f, "}\n");
	} else {
		printf("path: %s\n", path);
		if (mixed)
			printf("warning: the connections took different "
			       "paths\n");
		printf("role: %s\nmode: %s\n", role, mode_name(r0->mode));
		if (r0->mode == MODE_PINGPONG) {
			printf("round_trips: %" PRIu64 "\nseconds: %.6f\n", rtt,
			       secs);
			if (nlat)
				printf("latency_us: p50 %.2f p90 %.2f p99 %.2f "
				       "p99.9 %.2f max %.2f\n",
				       us(usmc_hist_pct(lat, 50)),
				       us(usmc_hist_pct(lat, 90)),
				       us(usmc_hist_pct(lat, 99)),
				       us(usmc_hist_pct(lat, 99.9)),
				       us(lat->max));
		} else {
			printf("bytes: %" PRIu64 "\nseconds: %.6f\n"
			       "gbps: %.3f\n",
			       bytes, secs, gbps);
			if (r0->bidi)
				printf("tx: %" PRIu64 " bytes, csum %016" PRIx64
				       ", verify %s\nrx: %" PRIu64
				       " bytes, csum %016" PRIx64
				       ", verify %s\n",
				       tx, r0->tx_csum, verify_name(txv), rx,
				       r0->rx_csum, verify_name(rxv));
		}
		printf("verify: %s\nconnections: %d\n",
		       verify == VERIFY_OK	 ? "ok"
		       : verify == VERIFY_FAILED ? "FAILED"
						 : "off",
		       n);
		if (!opt.tcp && !opt.af_smc)
			printf("link_groups: %" PRIu64 "\n", st.link_groups);
		for (int i = 0; i < n; i++)
			if (!rs[i].ok)
				printf("error: connection %d: %s\n", i,
				       rs[i].err);
	}
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	free(lat);
}

/* ---------------------------------------------------------------- client */

typedef struct client_job {
	struct sockaddr_in addr;
	struct sockaddr_in local; /* -B: bound before connect */
	int have_local;
	uint32_t index, nconn;
	uint64_t test_id;
	uint64_t bytes;
	int connected;
	result res;
	pthread_t th;
} client_job;

static uint64_t duration_ns(void)
{
	return (uint64_t)(opt.duration * 1e9 + 0.5);
}

static void client_stream(int fd, client_job *j, result *r, uint8_t *buf)
{
	uint8_t res[RES_LEN];
	csum cs = {0, 0};
	uint64_t t0 = now_ns(), sent;
	int k;

	/* a timed stream ends at the half-close: the server reads to EOF */
	if (send_stream(fd, buf, j->bytes, 0, opt.verify, &cs, r,
			opt.duration ? t0 + duration_ns() : 0, &sent, &r->live))
		return;
	if (io.shutdown(fd, SHUT_WR)) {
		fail(r, "shutdown: %s", strerror(errno));
		return;
	}
	k = recv_all(fd, res, RES_LEN);
	r->seconds = (double)(now_ns() - t0) / 1e9;
	if (k <= 0 || get64(res) != PERF_RES_MAGIC) {
		fail(r, "no result from the server: %s",
		     k < 0 ? strerror(errno) : "connection closed");
		return;
	}
	r->bytes = sent;
	if (get64(res + 8) != sent)
		fail(r, "server received %" PRIu64 " bytes, sent %" PRIu64,
		     get64(res + 8), sent);
	if (opt.verify) {
		r->verify = VERIFY_OK;
		if (get64(res + 24) == VERIFY_FAILED) {
			r->verify = VERIFY_FAILED;
			fail(r,
			     "verify: server found a bad byte at offset "
			     "%" PRIu64,
			     get64(res + 32));
		} else if (get64(res + 16) != csum_val(&cs)) {
			r->verify = VERIFY_FAILED;
			fail(r,
			     "verify: checksum mismatch (server %016" PRIx64
			     ", client %016" PRIx64 ")",
			     get64(res + 16), csum_val(&cs));
		}
	}
}

static void client_reverse(int fd, client_job *j, result *r, uint8_t *buf)
{
	uint8_t res[RES_LEN];
	csum cs = {0, 0};
	uint64_t t0 = now_ns(), got, want = j->bytes;
	int64_t bad;
	int k;

	if (opt.duration) {
		k = recv_timed(fd, buf, 0, opt.verify, &cs, r, &bad, &got, res);
		if (k > 0)
			want = get64(res + 8); /* the server's count */
	} else {
		got = recv_stream(fd, buf, j->bytes, 0, opt.verify, &cs, r,
				  &bad);
		k = recv_all(fd, res, RES_LEN);
	}
	r->seconds = (double)(now_ns() - t0) / 1e9;
	r->bytes = got;
	/* what arrived is judged even when the stream broke off */
	if (opt.verify)
		r->verify = bad >= 0 ? VERIFY_FAILED : VERIFY_OK;
	if (got != want)
		fail(r, "received %" PRIu64 " of %" PRIu64 " bytes", got, want);
	if (k <= 0 || get64(res) != PERF_RES_MAGIC) {
		fail(r, "no trailer from the server");
		return;
	}
	if (opt.verify) {
		r->verify = bad >= 0 ? VERIFY_FAILED : VERIFY_OK;
		if (bad < 0 && get64(res + 16) != csum_val(&cs)) {
			r->verify = VERIFY_FAILED;
			fail(r,
			     "verify: checksum mismatch (server %016" PRIx64
			     ", client %016" PRIx64 ")",
			     get64(res + 16), csum_val(&cs));
		}
	}
	res_encode(res, got, csum_val(&cs), r->verify,
		   bad < 0 ? 0 : (uint64_t)bad);
	send_all(fd, res, RES_LEN);
}

static void *client_main(void *arg)
{
	client_job *j = arg;
	result *r = &j->res;
	uint8_t hdr[HDR_LEN];
	uint8_t *buf = NULL;
	perf_hdr h = {0};
	int fd, one = 1;

	r->ok = 1;
	r->mode = opt.mode == MODE_PINGPONG || opt.mode == MODE_BIDI
			  ? opt.mode
			  : MODE_STREAM;
	r->verify = VERIFY_OFF;
	fd = io.socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0) {
		fail(r, "socket: %s", strerror(errno));
		return NULL;
	}
	if (opt.mode == MODE_PINGPONG)
		io.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (j->have_local &&
	    io.bind(fd, (struct sockaddr *)&j->local, sizeof(j->local))) {
		fail(r, "bind to %s: %s", inet_ntoa(j->local.sin_addr),
		     strerror(errno));
		io.close(fd);
		return NULL;
	}
	if (io.connect(fd, (struct sockaddr *)&j->addr, sizeof(j->addr))) {
		int e = errno;

		/* a usmc server whose rules do not call the port SMC takes
		 * the Proposal as data and closes (explicit mode) */
		fail(r, "connect to %s:%u: %s%s", inet_ntoa(j->addr.sin_addr),
		     ntohs(j->addr.sin_port), strerror(e),
		     e == ECONNRESET && !opt.tcp && !opt.af_smc
			     ? " (in the SMC handshake: is the port in the "
			       "server's SMC port list too?)"
			     : "");
		io.close(fd);
		return NULL;
	}
	j->connected = 1;
	get_info(fd, r);
	if (!opt.raw) {
		h.mode = (uint32_t)opt.mode;
		h.flags = (opt.verify ? FLAG_VERIFY : 0) |
			  (opt.duration ? FLAG_TIMED : 0);
		h.msg_size = opt.msg_size;
		h.iterations = opt.duration ? 0 : opt.iterations;
		h.duration_ms = (uint32_t)(opt.duration * 1000 + 0.5);
		h.nconn = j->nconn;
		h.index = j->index;
		h.bytes = opt.duration ? 0 : j->bytes;
		h.test_id = j->test_id;
		hdr_encode(&h, hdr);
		if (send_all(fd, hdr, HDR_LEN)) {
			fail(r, "send header: %s", strerror(errno));
			goto out;
		}
	}
	sleep_ms(opt.idle_ms);
	if (opt.mode == MODE_PINGPONG) {
		/* the interval clock starts after its warm-up */
		pingpong_client(fd, opt.msg_size, opt.iterations,
				opt.duration ? duration_ns() : 0, opt.verify,
				r);
		io.shutdown(fd, SHUT_WR);
		goto out;
	}
	measure_start();
	buf = malloc(CHUNK);
	if (!buf) {
		fail(r, "out of memory");
		goto out;
	}
	if (opt.mode == MODE_STREAM)
		client_stream(fd, j, r, buf);
	else if (opt.mode == MODE_BIDI)
		bidi_run(fd, buf, j->bytes, opt.duration ? duration_ns() : 0,
			 opt.verify, 0, r);
	else
		client_reverse(fd, j, r, buf);
	measure_end();
out:
	get_info(fd, r);
	/* the connection's final counters stay visible (usmc-stat) */
	sleep_ms(opt.linger_ms);
	io.close(fd);
	free(buf);
	return NULL;
}

/* --require-smcr/--require-smc: 1 when |r| did not go over what was
 * asked, with |msg| saying which connection took which path. Judged
 * before the result is printed, so that its "ok" agrees with the exit
 * code; the line on stderr comes after it. */
static int require_unmet(const result *r, int i, char *msg, size_t len)
{
	char path[300];

	if (!opt.require)
		return 0;
	if (r->have_info && r->info.mode == USMC_SOCK_SMCR &&
	    (opt.require == REQ_SMC || !r->info.smcd))
		return 0;
	path_text(r, path, sizeof(path));
	snprintf(msg, len, "%s: connection %d went over %s",
		 opt.require == REQ_SMCR ? "--require-smcr" : "--require-smc",
		 i, path);
	return 1;
}

/* -i: the interval lines, from the counters the connections keep */
typedef struct ival_ctx {
	client_job *jobs;
	int n;
	int done;	 /* atomic: every connection has ended */
	uint64_t rx, tx; /* the byte counters at the last line */
	usmc_hist *seen; /* ping-pong: the histograms at the last line */
	usmc_hist *now;	 /* ... and now, summed */
} ival_ctx;

static void ival_emit(ival_ctx *c, uint64_t a_ns, uint64_t b_ns)
{
	ival v = {.start = (double)a_ns / 1e9, .end = (double)b_ns / 1e9};
	uint64_t rx = 0, tx = 0;
	double d = v.end - v.start;
	ival *p;

	for (int i = 0; i < c->n; i++) {
		rx += __atomic_load_n(&c->jobs[i].res.live, __ATOMIC_RELAXED);
		tx += __atomic_load_n(&c->jobs[i].res.live_tx,
				      __ATOMIC_RELAXED);
	}
	v.rx_bytes = rx - c->rx;
	v.tx_bytes = tx - c->tx;
	v.bytes = v.rx_bytes + v.tx_bytes;
	c->rx = rx;
	c->tx = tx;
	if (opt.mode == MODE_PINGPONG) {
		/* this interval's round trips: the running histograms now,
		 * less what they held at the last line */
		usmc_hist_init(c->now);
		for (int i = 0; i < c->n; i++) {
			usmc_hist *h = __atomic_load_n(&c->jobs[i].res.hist,
						       __ATOMIC_ACQUIRE);

			for (unsigned int b = 0; h && b < USMC_HIST_BUCKETS;
			     b++)
				c->now->count[b] += __atomic_load_n(
					&h->count[b], __ATOMIC_RELAXED);
		}
		for (unsigned int b = 0; b < USMC_HIST_BUCKETS; b++) {
			uint64_t k = c->now->count[b];

			c->now->count[b] -= c->seen->count[b];
			c->seen->count[b] = k;
			c->now->n += c->now->count[b];
		}
		/* no exact bounds for a slice: the bucket values stand */
		c->now->min = 0;
		c->now->max = UINT64_MAX;
		v.round_trips = c->now->n;
		v.p50_us = us(usmc_hist_pct(c->now, 50));
	}
	p = realloc(ivals, (size_t)(nivals + 1) * sizeof(*ivals));
	if (p) {
		ivals = p;
		ivals[nivals++] = v;
	}
	if (opt.json)
		return;
	pthread_mutex_lock(&out_lock);
	if (opt.mode == MODE_PINGPONG)
		printf("[%6.2f-%6.2f s] %10" PRIu64
		       " round trips %10.0f/s  p50 %.2f us\n",
		       v.start, v.end, v.round_trips,
		       d > 0 ? (double)v.round_trips / d : 0, v.p50_us);
	else if (opt.mode == MODE_BIDI)
		printf("[%6.2f-%6.2f s] send %10.1f MiB %9.3f Gbit/s  "
		       "receive %10.1f MiB %9.3f Gbit/s\n",
		       v.start, v.end, (double)v.tx_bytes / 1048576.0,
		       gbit(v.tx_bytes, d), (double)v.rx_bytes / 1048576.0,
		       gbit(v.rx_bytes, d));
	else
		printf("[%6.2f-%6.2f s] %10.1f MiB %9.3f Gbit/s\n", v.start,
		       v.end, (double)v.bytes / 1048576.0, gbit(v.bytes, d));
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* A line at each multiple of the interval from the first test's start;
 * a timed run's lines end at its duration, a counted one's when the last
 * connection ends. The last, partial, interval is shown however short
 * (iperf3 leaves out one under a tenth): the intervals add up to the run's
 * totals, which a JSON reader may check. */
static void *ival_main(void *arg)
{
	ival_ctx *c = arg;
	uint64_t iv = (uint64_t)(opt.interval * 1e9 + 0.5), t0, last = 0;
	uint64_t dur = opt.duration ? duration_ns() : 0;

	while (!(t0 = __atomic_load_n(&test_start_ns, __ATOMIC_ACQUIRE))) {
		if (__atomic_load_n(&c->done, __ATOMIC_ACQUIRE))
			return NULL;
		sleep_ms(1);
	}
	for (uint64_t k = 1;; k++) {
		uint64_t tick = k * iv, now;
		int done;

		if (dur && tick > dur)
			tick = dur;
		if (dur && tick <= last)
			break;
		for (;;) {
			done = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
			now = now_ns();
			if (now >= t0 + tick || done)
				break;
			sleep_ms(t0 + tick - now > 10000000
					 ? 10
					 : (int)((t0 + tick - now + 999999) /
						 1000000));
		}
		if (now < t0 + tick) {
			/* the counters are final: the last part ends when
			 * the last connection did */
			uint64_t e =
				__atomic_load_n(&test_end_ns, __ATOMIC_ACQUIRE);

			if (e > t0 + last && e < now)
				now = e;
			if (now - t0 > last)
				ival_emit(c, last, now - t0);
			break;
		}
		ival_emit(c, last, tick);
		last = tick;
		if (dur && tick >= dur)
			break;
	}
	return NULL;
}

static int resolve(const char *host, uint16_t port, struct sockaddr_in *sa)
{
	struct addrinfo hints = {0}, *ai;
	int e;

	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(host, NULL, &hints, &ai);
	if (e) {
		fprintf(stderr, "%s: cannot resolve %s: %s\n", prog, host,
			gai_strerror(e));
		return -1;
	}
	memcpy(sa, ai->ai_addr, sizeof(*sa));
	sa->sin_port = htons(port);
	freeaddrinfo(ai);
	return 0;
}

#define LIST_MAX 16

/* "A,B,C" into at most LIST_MAX items (|buf| is cut up). */
static int split_list(char *buf, char **items)
{
	int n = 0;

	for (char *save = NULL, *p = strtok_r(buf, ",", &save); p;
	     p = strtok_r(NULL, ",", &save)) {
		if (n == LIST_MAX)
			return -1;
		items[n++] = p;
	}
	return n;
}

static int run_client(void)
{
	client_job *jobs = calloc((size_t)opt.parallel, sizeof(*jobs));
	struct sockaddr_in sa[LIST_MAX], lo[LIST_MAX];
	char hosts[512], binds[512], *hv[LIST_MAX], *bv[LIST_MAX], msg[360];
	int nh, nb = 0, ok = 1, connected = 0;
	uint64_t test_id;
	result *rs;
	ival_ctx ic = {.jobs = jobs, .n = opt.parallel};
	pthread_t ith;

	if (!jobs)
		return 1;
	snprintf(hosts, sizeof(hosts), "%s", opt.host);
	nh = split_list(hosts, hv);
	if (nh <= 0)
		die_usage("-c: 1 to %d hosts, not '%s'", LIST_MAX, opt.host);
	for (int i = 0; i < nh; i++)
		if (resolve(hv[i], opt.port, &sa[i]))
			return 1;
	if (opt.bind_addr) {
		snprintf(binds, sizeof(binds), "%s", opt.bind_addr);
		nb = split_list(binds, bv);
		if (nb <= 0)
			die_usage("-B: 1 to %d addresses, not '%s'", LIST_MAX,
				  opt.bind_addr);
		for (int i = 0; i < nb; i++) {
			memset(&lo[i], 0, sizeof(lo[i]));
			lo[i].sin_family = AF_INET;
			if (inet_pton(AF_INET, bv[i], &lo[i].sin_addr) != 1)
				die_usage("-B: bad IPv4 address '%s'", bv[i]);
		}
	}
	test_id = now_ns() ^ ((uint64_t)getpid() << 40);
	for (int i = 0; i < opt.parallel; i++) {
		jobs[i].addr = sa[i % nh];
		if (nb) {
			jobs[i].local = lo[i % nb];
			jobs[i].have_local = 1;
		}
		jobs[i].index = (uint32_t)i;
		jobs[i].nconn = (uint32_t)opt.parallel;
		jobs[i].test_id = test_id;
		jobs[i].bytes = opt.bytes;
	}
	if (opt.interval > 0 && opt.mode == MODE_PINGPONG) {
		ic.seen = calloc(1, sizeof(*ic.seen));
		ic.now = calloc(1, sizeof(*ic.now));
		if (!ic.seen || !ic.now) {
			fprintf(stderr, "%s: out of memory\n", prog);
			return 1;
		}
	}
	if (opt.interval > 0 && pthread_create(&ith, NULL, ival_main, &ic)) {
		fprintf(stderr, "%s: cannot start the interval thread\n", prog);
		return 1;
	}
	if (opt.parallel == 1) {
		client_main(&jobs[0]);
	} else {
		for (int i = 0; i < opt.parallel; i++)
			if (pthread_create(&jobs[i].th, NULL, client_main,
					   &jobs[i])) {
				fprintf(stderr, "%s: cannot start a thread\n",
					prog);
				return 1;
			}
		for (int i = 0; i < opt.parallel; i++)
			pthread_join(jobs[i].th, NULL);
	}
	__atomic_store_n(&ic.done, 1, __ATOMIC_RELEASE);
	if (opt.interval > 0)
		pthread_join(ith, NULL);
	free(ic.seen);
	free(ic.now);
	rs = calloc((size_t)opt.parallel, sizeof(*rs));
	if (!rs)
		return 1;
	for (int i = 0; i < opt.parallel; i++) {
		rs[i] = jobs[i].res;
		ok &= rs[i].ok;
		connected |= jobs[i].connected;
	}
	if (!connected) {
		/* nothing was measured: the error, not a block of zeros */
		if (opt.json) {
			printf("{\"role\":\"client\",\"ok\":false,"
			       "\"error\":");
			json_str(stdout, rs[0].err);
			printf(",\"error_at\":%lld.%09ld,\"error_mono\":%lld.%"
			       "09ld}\n",
			       (long long)rs[0].err_at.tv_sec,
			       rs[0].err_at.tv_nsec,
			       (long long)rs[0].err_mono.tv_sec,
			       rs[0].err_mono.tv_nsec);
		} else {
			fprintf(stderr, "%s: %s\n", prog, rs[0].err);
		}
		free(rs);
		free(jobs);
		return 1;
	}
	for (int i = 0; i < opt.parallel; i++)
		if (require_unmet(&rs[i], i, msg, sizeof(msg))) {
			fail(&rs[i], "%s", msg);
			ok = 0;
		}
	report("client", rs, opt.parallel);
	for (int i = 0; i < opt.parallel; i++)
		if (require_unmet(&rs[i], i, msg, sizeof(msg)))
			fprintf(stderr, "%s: %s\n", prog, msg);
	for (int i = 0; i < opt.parallel; i++)
		free(rs[i].hist);
	free(rs);
	free(jobs);
	return ok ? 0 : 1;
}

/* ---------------------------------------------------------------- server */

typedef struct server_conn {
	int fd;
	pthread_t th;
} server_conn;

static pthread_mutex_t srv_lock = PTHREAD_MUTEX_INITIALIZER;
/* --timeout: CLOCK_MONOTONIC ns; a server without --timeout moves it out
 * when a timed test (-t) arrives */
static uint64_t watchdog_start, watchdog_end;
#define TIMEOUT_MARGIN 30 /* s past a -t duration */
static uint64_t first_test_id;
static int have_first_test;
static uint32_t first_test_done, first_test_nconn;
static int first_test_failed;

static void serve_pingpong(int fd, const perf_hdr *h, result *r)
{
	uint8_t *buf = malloc(h->msg_size);
	uint64_t off = 0, t0 = now_ns(), warm;

	if (!buf) {
		fail(r, "out of memory");
		return;
	}
	r->verify = (h->flags & FLAG_VERIFY) ? VERIFY_OK : VERIFY_OFF;
	for (;;) {
		int k = recv_all(fd, buf, h->msg_size);

		if (k == 0)
			break;
		if (k < 0) {
			fail(r, "recv: %s", strerror(errno));
			break;
		}
		if ((h->flags & FLAG_VERIFY) && r->verify == VERIFY_OK) {
			int64_t i = pattern_check(buf, h->msg_size, off);

			if (i >= 0) {
				r->verify = VERIFY_FAILED;
				fail(r,
				     "verify: byte at offset %" PRIu64
				     " differs from the pattern",
				     off + (uint64_t)i);
			}
		}
		if (send_all(fd, buf, h->msg_size)) {
			fail(r, "send: %s", strerror(errno));
			break;
		}
		off += h->msg_size;
		r->round_trips++;
	}
	r->seconds = (double)(now_ns() - t0) / 1e9;
	/* the client's warm-up round trips are not counted */
	warm = (h->flags & FLAG_TIMED)	  ? TIMED_WARM
	       : h->iterations / 10 < 100 ? h->iterations / 10
					  : 100;
	r->round_trips = r->round_trips > warm ? r->round_trips - warm : 0;
	r->bytes = r->round_trips * h->msg_size; /* as the client counts */
	free(buf);
}

static void *server_main(void *arg)
{
	server_conn *c = arg;
	result r = {.ok = 1};
	uint8_t hdr[HDR_LEN], res[RES_LEN];
	perf_hdr h = {0};
	uint8_t *buf = NULL;
	int k, counted = 0, hdr_ok = 0, clc_data = 0, unmet;
	char err[120], msg[360];

	r.verify = VERIFY_OFF;
	r.mode = MODE_STREAM;
	get_info(c->fd, &r);
	k = recv_all(c->fd, hdr, 4);
	if (k > 0 && !opt.tcp && !opt.af_smc &&
	    ((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	     (uint32_t)hdr[2] << 8 | hdr[3]) == SMC_EYECATCHER) {
		/* explicit mode: the client's rules call this port SMC, ours
		 * do not, so its CLC Proposal came as data (docs/runtime.md,
		 * "Explicit mode and its limit"); the client's connect fails
		 * when this closes */
		fail(&r,
		     "the client sent an SMC CLC Proposal: its rules call port "
		     "%u SMC and this server's do not (--smc-ports)",
		     opt.port);
		clc_data = 1;
		goto out;
	}
	if (k > 0)
		k = recv_all(c->fd, hdr + 4, HDR_LEN - 4);
	if (k <= 0) {
		fail(&r, "no test header: %s",
		     k ? strerror(errno) : "client closed");
		goto out;
	}
	if (hdr_decode(hdr, &h, err, sizeof(err))) {
		fail(&r, "%s", err);
		goto out;
	}
	hdr_ok = 1;
	if (h.duration_ms && !opt.timeout_set) {
		uint64_t e = now_ns() + (uint64_t)h.duration_ms * 1000000 +
			     TIMEOUT_MARGIN * 1000000000ull;

		/* only ever later (the other connections of -P too) */
		uint64_t cur = __atomic_load_n(&watchdog_end, __ATOMIC_RELAXED);

		while (cur < e && !__atomic_compare_exchange_n(
					  &watchdog_end, &cur, e, 1,
					  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	pthread_mutex_lock(&srv_lock);
	if (!have_first_test) {
		have_first_test = 1;
		first_test_id = h.test_id;
		first_test_nconn = h.nconn;
	}
	counted = h.test_id == first_test_id;
	pthread_mutex_unlock(&srv_lock);
	r.mode = h.mode == MODE_PINGPONG || h.mode == MODE_BIDI ? (int)h.mode
								: MODE_STREAM;
	if (h.mode == MODE_PINGPONG) {
		serve_pingpong(c->fd, &h, &r);
		goto out;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		fail(&r, "out of memory");
		goto out;
	}
	if (h.mode == MODE_BIDI) {
		bidi_run(c->fd, buf, h.bytes, (uint64_t)h.duration_ms * 1000000,
			 h.flags & FLAG_VERIFY, 1, &r);
	} else if (h.mode == MODE_STREAM) {
		csum cs = {0, 0};
		int64_t bad;
		uint64_t t0 = now_ns();

		r.bytes = recv_stream(c->fd, buf, UINT64_MAX, 0,
				      h.flags & FLAG_VERIFY, &cs, &r, &bad);
		r.seconds = (double)(now_ns() - t0) / 1e9;
		if (h.flags & FLAG_VERIFY)
			r.verify = bad >= 0 ? VERIFY_FAILED : VERIFY_OK;
		/* timed: the client judges the count, it knows what it sent */
		if (!(h.flags & FLAG_TIMED) && r.bytes != h.bytes)
			fail(&r, "received %" PRIu64 " of %" PRIu64 " bytes",
			     r.bytes, h.bytes);
		res_encode(res, r.bytes, csum_val(&cs), r.verify,
			   bad < 0 ? 0 : (uint64_t)bad);
		if (send_all(c->fd, res, RES_LEN))
			fail(&r, "send result: %s", strerror(errno));
	} else {
		csum cs = {0, 0};
		uint64_t t0 = now_ns(), sent = 0;

		if (send_stream(c->fd, buf, h.bytes, 0, h.flags & FLAG_VERIFY,
				&cs, &r,
				(h.flags & FLAG_TIMED)
					? t0 + (uint64_t)h.duration_ms * 1000000
					: 0,
				&sent, &r.live) == 0) {
			res_encode(res, sent, csum_val(&cs), 0, 0);
			if (send_all(c->fd, res, RES_LEN))
				fail(&r, "send trailer: %s", strerror(errno));
		}
		r.bytes = sent;
		/* the client answers with what it received */
		k = recv_all(c->fd, res, RES_LEN);
		r.seconds = (double)(now_ns() - t0) / 1e9;
		if (k <= 0 || get64(res) != PERF_RES_MAGIC) {
			fail(&r, "no result from the client");
		} else {
			if (get64(res + 8) != sent)
				fail(&r, "client received %" PRIu64 " bytes",
				     get64(res + 8));
			if (h.flags & FLAG_VERIFY) {
				r.verify = get64(res + 24) == VERIFY_OK &&
							   get64(res + 16) ==
								   csum_val(&cs)
						   ? VERIFY_OK
						   : VERIFY_FAILED;
				if (r.verify == VERIFY_FAILED)
					fail(&r, "verify failed at the client");
			}
		}
	}
out:
	get_info(c->fd, &r);
	io.close(c->fd);
	/* a port probe (no valid header) is no test to judge */
	unmet = hdr_ok && require_unmet(&r, (int)h.index, msg, sizeof(msg));
	if (unmet)
		fail(&r, "%s", msg);
	report("server", &r, 1);
	if (unmet)
		fprintf(stderr, "%s: %s\n", prog, msg);
	free(buf);
	if (opt.one) {
		pthread_mutex_lock(&srv_lock);
		/* a connection without a valid header (a port probe) is
		 * reported but is not a test */
		/* ... unless it ran CLC: a usmc-perf client that failed
		 * before its header arrived (it went out over a link this end
		 * never had), which is the test failing, not a probe; waiting
		 * on for a test would hang until -t */
		if (!counted && !hdr_ok && r.have_info &&
		    (clc_data || r.info.mode == USMC_SOCK_SMCR ||
		     (r.info.fallback_code &&
		      strcmp(r.info.fallback_name, "PEERNOSMC")))) {
			fflush(stdout);
			/* exit, not _exit: the runtime's exit handlers end
			 * the link groups and remove the usmc-stat table */
			perf_exit(1);
		}
		if (counted) {
			first_test_done++;
			if (!r.ok)
				first_test_failed = 1;
			if (first_test_done >= first_test_nconn) {
				fflush(stdout);
				/* exit, not _exit: usmc's exit handler ends
				 * the link groups (DELETE_LINK ALL); without
				 * it the peer keeps them and sends TEST_LINK
				 * into the void */
				perf_exit(first_test_failed ? 1 : 0);
			}
		}
		pthread_mutex_unlock(&srv_lock);
	}
	free(c);
	return NULL;
}

/* --conns N: N idle connections from one process to one server process,
 * then one checksummed message on each. The memory of an idle connection
 * is what N more of them add to the process (/proc/self/smaps_rollup: Rss
 * counts the pages touched, Pss splits shared ones between the mappers),
 * measured after a first connection has made the device and link group. */
#define CONNS_MAGIC 0x55534d43434f4e4eull /* "USMCCONN" */
#define CONNS_MSG   1024
#define CONNS_RDY   32

typedef struct mem_kib {
	long rss, pss;
} mem_kib;

static int mem_read(mem_kib *m)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];

	m->rss = m->pss = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Rss:", 4))
			m->rss = strtol(line + 4, NULL, 10);
		else if (!strncmp(line, "Pss:", 4))
			m->pss = strtol(line + 4, NULL, 10);
	}
	fclose(f);
	return m->rss < 0 || m->pss < 0 ? -1 : 0;
}

/* every connection needs an fd (usmc's TCP clcsock among them) */
static void nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

typedef struct conns_count {
	int smcr, smcd, tcp, other, fallbacks;
	char first_fallback[160];
} conns_count;

static void conns_classify(int fd, conns_count *k)
{
	usmc_sock_info in;

	if (opt.tcp) {
		k->tcp++;
		return;
	}
	if (usmc_get_info(fd, &in)) {
		k->other++;
		return;
	}
	if (in.mode == USMC_SOCK_SMCR) {
		if (in.smcd)
			k->smcd++;
		else
			k->smcr++;
	} else if (in.mode == USMC_SOCK_TCP) {
		k->tcp++;
		if (in.fallback_code) {
			if (!k->fallbacks++)
				snprintf(k->first_fallback,
					 sizeof(k->first_fallback), "%s: %s",
					 in.fallback_name, in.fallback_detail);
		}
	} else {
		k->other++;
	}
}

static void conns_json(const char *role, int n, const conns_count *k,
		       const mem_kib *d, const mem_kib *peer, uint64_t checked,
		       double secs, int ok, const char *err)
{
	pthread_mutex_lock(&out_lock);
	if (opt.json) {
		printf("{\"role\":\"%s\",\"mode\":\"conns\",\"ok\":%s,"
		       "\"conns\":%d,\"path\":\"%s\",\"smcr\":%d,\"smcd\":%d,"
		       "\"tcp\":%d,\"other\":%d,\"fallbacks\":%d,"
		       "\"rss_kib_per_conn\":%.2f,\"pss_kib_per_conn\":%.2f",
		       role, ok ? "true" : "false", n, opt.tcp ? "tcp" : "usmc",
		       k->smcr, k->smcd, k->tcp, k->other, k->fallbacks,
		       (double)d->rss / n, (double)d->pss / n);
		if (peer)
			printf(",\"server_rss_kib_per_conn\":%.2f,"
			       "\"server_pss_kib_per_conn\":%.2f",
			       (double)peer->rss / n, (double)peer->pss / n);
		printf(",\"bytes_checked\":%" PRIu64
		       ",\"connect_seconds\":%.3f",
		       checked, secs);
		if (k->fallbacks) {
			printf(",\"first_fallback\":");
			json_str(stdout, k->first_fallback);
		}
		if (!ok) {
			printf(",\"error\":");
			json_str(stdout, err);
		}
		printf("}\n");
	} else {
		printf("%s: %d connections (%s): SMC-R %d, SMC-D %d, TCP %d "
		       "(%d fallbacks), other %d\n",
		       role, n, opt.tcp ? "kernel TCP" : "usmc", k->smcr,
		       k->smcd, k->tcp, k->fallbacks, k->other);
		printf("%s: per idle connection: RSS %.2f KiB, PSS %.2f KiB\n",
		       role, (double)d->rss / n, (double)d->pss / n);
		if (peer)
			printf("server: per idle connection: RSS %.2f KiB, "
			       "PSS %.2f KiB\n",
			       (double)peer->rss / n, (double)peer->pss / n);
		if (k->fallbacks)
			printf("%s: first fallback: %s\n", role,
			       k->first_fallback);
		printf("%s: %" PRIu64 " bytes checked: %s%s\n", role, checked,
		       ok ? "ok" : "FAILED: ", ok ? "" : err);
	}
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static int conns_connect(const struct sockaddr_in *sa)
{
	int fd = io.socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	if (io.connect(fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		int e = errno;

		io.close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The few connections that carry the first messages, alone: the server's
 * epoll set, with every connection registered, must report exactly these
 * (a ready list, not a walk, finds them: docs/runtime.md "Scale and
 * memory"). Phase 0 is the few, phase 1 the rest. */
static int conns_first(int i, int n)
{
	return i == n / 7 || i == n / 2 || i == n;
}

static int run_conns_client(void)
{
	int n = opt.conns, *fds = calloc((size_t)n + 1, sizeof(int)), ok = 1;
	uint8_t *msg = malloc(CONNS_MSG), *got = malloc(CONNS_MSG);
	uint8_t rdy[CONNS_RDY];
	struct sockaddr_in sa;
	mem_kib m0, m1, d, peer = {0, 0};
	conns_count k = {0};
	char err[200] = "";
	uint64_t checked = 0, t0 = 0;
	double secs;
	int opened = 0;

	if (!fds || !msg || !got || resolve(opt.host, opt.port, &sa))
		return 1;
	nofile_raise();
	/* the first connection makes the device and the link group */
	for (; opened <= n; opened++) {
		if (opened == 1) {
			/* the server has taken its base too */
			if (recv_all(fds[0], rdy, 1) != 1 || mem_read(&m0)) {
				snprintf(err, sizeof(err),
					 "no start from the server, or no "
					 "smaps_rollup");
				ok = 0;
				break;
			}
			t0 = now_ns();
		}
		fds[opened] = conns_connect(&sa);
		if (fds[opened] < 0) {
			snprintf(err, sizeof(err), "connect %d of %d: %s",
				 opened + 1, n + 1, strerror(errno));
			ok = 0;
			break;
		}
	}
	if (!ok)
		goto out;
	secs = (double)(now_ns() - t0) / 1e9;
	mem_read(&m1);
	d.rss = m1.rss - m0.rss;
	d.pss = m1.pss - m0.pss;
	for (int i = 1; i <= n; i++)
		conns_classify(fds[i], &k);
	/* the server measured before any data: only then may it move */
	if (recv_all(fds[0], rdy, CONNS_RDY) != 1 ||
	    get64(rdy) != CONNS_MAGIC) {
		snprintf(err, sizeof(err), "no ready message from the server");
		ok = 0;
		goto out;
	}
	peer.rss = (long)get64(rdy + 8);
	peer.pss = (long)get64(rdy + 16);
	for (int ph = 0; ph < 2 && ok; ph++) {
		for (int i = 0; i <= n && ok; i++) {
			if (conns_first(i, n) != !ph)
				continue;
			pattern_fill(msg, CONNS_MSG, (uint64_t)i * CONNS_MSG);
			if (send_all(fds[i], msg, CONNS_MSG)) {
				snprintf(err, sizeof(err), "send on %d: %s", i,
					 strerror(errno));
				ok = 0;
			}
		}
		/* the server echoes what it received: compare every byte */
		for (int i = 0; i <= n && ok; i++) {
			int64_t bad;

			if (conns_first(i, n) != !ph)
				continue;
			if (recv_all(fds[i], got, CONNS_MSG) != 1) {
				snprintf(err, sizeof(err), "echo on %d: %s", i,
					 strerror(errno));
				ok = 0;
				break;
			}
			bad = pattern_check(got, CONNS_MSG,
					    (uint64_t)i * CONNS_MSG);
			if (bad >= 0) {
				snprintf(err, sizeof(err),
					 "connection %d: byte %" PRId64
					 " differs",
					 i, bad);
				ok = 0;
			}
			checked += CONNS_MSG;
		}
	}
out:
	if (!ok)
		d.rss = d.pss = 0;
	conns_json("client", n, &k, &d, ok ? &peer : NULL, checked,
		   ok ? secs : 0, ok, err);
	for (int i = 0; i < opened && i <= n; i++)
		io.close(fds[i]);
	free(fds);
	free(msg);
	free(got);
	return ok && !k.fallbacks && !k.other ? 0 : 1;
}

static int run_conns_server(int lfd)
{
	int n = opt.conns, *fds = calloc((size_t)n + 1, sizeof(int)), ok = 1;
	uint8_t *buf = malloc(CONNS_MSG), rdy[CONNS_RDY] = {0};
	mem_kib m0, m1, d;
	conns_count k = {0};
	char err[200] = "";
	uint64_t checked = 0, t0 = 0;
	int got = 0, done = 0, ep = io.epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev;

	if (!fds || !buf || ep < 0)
		return 1;
	for (; got <= n; got++) {
		if (got == 1) {
			/* the client takes its base when told */
			if (send_all(fds[0], rdy, 1) || mem_read(&m0)) {
				snprintf(err, sizeof(err),
					 "send start, or no smaps_rollup");
				ok = 0;
				break;
			}
			t0 = now_ns();
		}
		fds[got] = io.accept(lfd, NULL, NULL);
		if (fds[got] < 0) {
			if (errno == EINTR || errno == ECONNABORTED) {
				got--;
				continue;
			}
			snprintf(err, sizeof(err), "accept %d: %s", got + 1,
				 strerror(errno));
			ok = 0;
			break;
		}
		/* registered at once, as an event-driven server does (usmc
		 * runs an accepted connection's handshake once the process
		 * uses it, or after a second) */
		ev.events = EPOLLIN;
		ev.data.u32 = (uint32_t)got;
		if (io.epoll_ctl(ep, EPOLL_CTL_ADD, fds[got], &ev)) {
			snprintf(err, sizeof(err), "epoll_ctl %d: %s", got + 1,
				 strerror(errno));
			ok = 0;
			got++;
			break;
		}
	}
	if (!ok)
		goto out;
	/* an accepted connection may still finish its handshake: its
	 * buffers count once it has */
	for (int i = 1, w = 0; i <= n && !opt.tcp && w < 10000; i++) {
		usmc_sock_info in;

		while (w < 10000 && usmc_get_info(fds[i], &in) == 0 &&
		       in.mode == USMC_SOCK_HANDSHAKE) {
			sleep_ms(1);
			w++;
		}
	}
	mem_read(&m1);
	d.rss = m1.rss - m0.rss;
	d.pss = m1.pss - m0.pss;
	for (int i = 1; i <= n; i++)
		conns_classify(fds[i], &k);
	/* the client sends nothing before the ready message: no
	 * connection may be ready */
	if (ok) {
		struct epoll_event ev0;
		int r = io.epoll_wait(ep, &ev0, 1, 0);

		if (r != 0) {
			snprintf(err, sizeof(err),
				 "epoll_wait before any data: %d (%s), "
				 "connection %u",
				 r, r < 0 ? strerror(errno) : "reported ready",
				 r > 0 ? ev0.data.u32 : 0);
			ok = 0;
		}
	}
	put64(rdy, CONNS_MAGIC);
	put64(rdy + 8, (uint64_t)d.rss);
	put64(rdy + 16, (uint64_t)d.pss);
	if (ok && send_all(fds[0], rdy, CONNS_RDY)) {
		snprintf(err, sizeof(err), "send ready: %s", strerror(errno));
		ok = 0;
	}
	/* as an event-driven server: the messages are taken as epoll
	 * reports them ready (a connection's index is its event's data);
	 * first the few, alone, then the rest */
	for (int ph = 0; ph < 2 && ok; ph++) {
		int want = 0;

		for (int i = 0; i <= n; i++)
			want += conns_first(i, n) == !ph;
		for (int got_ph = 0; ok && got_ph < want;) {
			struct epoll_event evs[256];
			int r = io.epoll_wait(ep, evs, 256, 10000);

			if (r <= 0) {
				snprintf(err, sizeof(err),
					 "epoll_wait: %s (%d of %d messages)",
					 r ? strerror(errno)
					   : "no event for 10 s",
					 done, n + 1);
				ok = 0;
				break;
			}
			for (int e = 0; e < r && ok; e++) {
				uint32_t i = evs[e].data.u32;
				int64_t bad;

				if (i > (uint32_t)n ||
				    conns_first((int)i, n) != !ph) {
					snprintf(err, sizeof(err),
						 "epoll reported connection "
						 "%u, which has no data yet",
						 i);
					ok = 0;
					break;
				}
				if (recv_all(fds[i], buf, CONNS_MSG) != 1) {
					snprintf(err, sizeof(err),
						 "recv on %u: %s", i,
						 strerror(errno));
					ok = 0;
					break;
				}
				io.epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
				bad = pattern_check(buf, CONNS_MSG,
						    (uint64_t)i * CONNS_MSG);
				if (bad >= 0) {
					snprintf(err, sizeof(err),
						 "connection %u: byte %" PRId64
						 " differs",
						 i, bad);
					ok = 0;
				}
				checked += CONNS_MSG;
				done++;
				got_ph++;
				if (send_all(fds[i], buf, CONNS_MSG)) {
					snprintf(err, sizeof(err),
						 "echo on %u: %s", i,
						 strerror(errno));
					ok = 0;
				}
			}
		}
	}
	/* the client closes when it has checked the echoes */
	for (int i = 0; i <= n && ok; i++)
		if (recv_all(fds[i], buf, 1) != 0) {
			snprintf(err, sizeof(err), "connection %d: no EOF", i);
			ok = 0;
		}
out:
	if (!ok)
		d.rss = d.pss = 0;
	conns_json("server", n, &k, &d, NULL, checked,
		   (double)(now_ns() - t0) / 1e9, ok, err);
	for (int i = 0; i < got && i <= n; i++)
		io.close(fds[i]);
	io.close(ep);
	free(fds);
	free(buf);
	return ok && !k.fallbacks && !k.other ? 0 : 1;
}

static int run_server(void)
{
	struct sockaddr_in sa = {0};
	int lfd, one = 1;

	sa.sin_family = AF_INET;
	sa.sin_port = htons(opt.port);
	if (inet_pton(AF_INET, opt.bind_addr ? opt.bind_addr : "0.0.0.0",
		      &sa.sin_addr) != 1)
		die_usage("-B: bad IPv4 address '%s'", opt.bind_addr);
	lfd = io.socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0) {
		fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno));
		return 1;
	}
	io.setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (io.bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    io.listen(lfd, opt.conns ? 1024 : 128)) {
		fprintf(stderr, "%s: cannot listen on %s:%u: %s\n", prog,
			opt.bind_addr ? opt.bind_addr : "0.0.0.0", opt.port,
			strerror(errno));
		return 1;
	}
	if (!opt.json)
		fprintf(stderr, "%s: listening on %s:%u (%s)\n", prog,
			opt.bind_addr ? opt.bind_addr : "0.0.0.0", opt.port,
			opt.tcp	     ? "kernel TCP"
			: opt.af_smc ? "kernel AF_SMC"
				     : "usmc");
	if (opt.conns) {
		nofile_raise();
		for (;;) {
			int rc = run_conns_server(lfd);

			if (opt.one)
				return rc;
		}
	}
	for (;;) {
		server_conn *c;
		int fd = io.accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "%s: accept: %s\n", prog,
				strerror(errno));
			return 1;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			io.close(fd);
			continue;
		}
		c->fd = fd;
		if (pthread_create(&c->th, NULL, server_main, c)) {
			io.close(fd);
			free(c);
			continue;
		}
		pthread_detach(c->th);
	}
}

static void *watchdog(void *arg)
{
	uint64_t now, end;

	(void)arg;
	while ((now = now_ns()) <
	       (end = __atomic_load_n(&watchdog_end, __ATOMIC_RELAXED)))
		sleep_ms(end - now > 1000000000ull
				 ? 1000
				 : (int)((end - now + 999999) / 1000000));
	/* the limit, not the time this thread woke: on a loaded machine
	 * the wake-up comes late, and the message says what was set */
	fprintf(stderr, "%s: timed out after %g s\n", prog,
		(double)(end - watchdog_start) / 1e9);
	{
		/* after a result being printed, not into it (stdout stays
		 * one JSON object a line); a writer stuck on a full pipe
		 * does not hold the exit up past a second */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec++;
		pthread_mutex_timedlock(&out_lock, &ts);
	}
	if (opt.json)
		printf("{\"role\":\"%s\",\"ok\":false,\"error\":\"timeout\"}\n",
		       opt.server ? "server" : "client");
	fflush(stdout);
	/* exit, not _exit: the runtime's exit handlers end the link groups
	 * and remove the usmc-stat table (they only try its lock) */
	perf_exit(1);
}

static long parse_num(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		die_usage("%s must be a number in %ld..%ld, not '%s'", what, lo,
			  hi, s);
	return v;
}

/* Seconds, fractions allowed ("0.5"), from lo to hi. */
static double parse_secs(const char *s, const char *what, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || *s < '0' || *s > '9' || !(v >= lo) ||
	    v > hi)
		die_usage("%s must be seconds from %g to %g, not '%s'", what,
			  lo, hi, s);
	return v;
}

/* N with an optional K, M or G (binary) suffix. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	}
	if (*end || v == 0 || v > UINT64_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

enum {
	O_PINGPONG = 256,
	O_VERIFY,
	O_JSON,
	O_TCP,
	O_TRANSPORT,
	O_SMC_PORTS,
	O_RAW,
	O_IDLE,
	O_CONNS,
	O_LINGER,
	O_AF_SMC,
	O_BIDI,
	O_TIMEOUT,
	O_ITERATIONS,
	O_REQUIRE_SMC,
	O_REQUIRE_SMCR,
};

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", no_argument, NULL, 's'},
		{"client", required_argument, NULL, 'c'},
		{"bind", required_argument, NULL, 'B'},
		{"port", required_argument, NULL, 'p'},
		{"one", no_argument, NULL, '1'},
		{"bytes", required_argument, NULL, 'n'},
		{"reverse", no_argument, NULL, 'R'},
		{"bidi", no_argument, NULL, O_BIDI},
		{"pingpong", required_argument, NULL, O_PINGPONG},
		{"iterations", required_argument, NULL, O_ITERATIONS},
		{"time", required_argument, NULL, 't'},
		{"interval", required_argument, NULL, 'i'},
		{"parallel", required_argument, NULL, 'P'},
		{"verify", no_argument, NULL, O_VERIFY},
		{"json", no_argument, NULL, O_JSON},
		{"tcp", no_argument, NULL, O_TCP},
		{"af-smc", no_argument, NULL, O_AF_SMC},
		{"transport", required_argument, NULL, O_TRANSPORT},
		{"smc-ports", required_argument, NULL, O_SMC_PORTS},
		{"raw", no_argument, NULL, O_RAW},
		{"idle", required_argument, NULL, O_IDLE},
		{"linger", required_argument, NULL, O_LINGER},
		{"conns", required_argument, NULL, O_CONNS},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"require-smc", no_argument, NULL, O_REQUIRE_SMC},
		{"require-smcr", no_argument, NULL, O_REQUIRE_SMCR},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c, nmodes = 0, bytes_set = 0, iter_set = 0;
	pthread_t wd;

	argv[0] = (char *)prog; /* getopt's messages name the tool */
	while ((c = getopt_long(argc, argv, "sc:B:p:1n:Ri:P:t:h", lo, NULL)) !=
	       -1) {
		switch (c) {
		case 's':
			opt.server = 1;
			break;
		case 'c':
			opt.host = optarg;
			break;
		case 'B':
			opt.bind_addr = optarg;
			break;
		case 'p':
			opt.port = (uint16_t)parse_num(optarg, "-p", 1, 65535);
			break;
		case '1':
			opt.one = 1;
			break;
		case 'n':
			if (parse_size(optarg, &opt.bytes))
				die_usage("-n: bad size '%s' (e.g. 64M, 1G, "
					  "4096)",
					  optarg);
			bytes_set = 1;
			break;
		case 'R':
			opt.mode = MODE_REVERSE;
			nmodes++;
			break;
		case O_BIDI:
			opt.mode = MODE_BIDI;
			nmodes++;
			break;
		case O_PINGPONG:
			opt.msg_size = (uint32_t)parse_num(optarg, "--pingpong",
							   1, MAX_MSG);
			opt.mode = MODE_PINGPONG;
			nmodes++;
			break;
		case O_ITERATIONS:
			opt.iterations = (uint32_t)parse_num(
				optarg, "--iterations", 1, 100000000);
			iter_set = 1;
			break;
		case 'i':
			opt.interval = parse_secs(optarg, "-i", 0.01, 86400);
			break;
		case 'P':
			opt.parallel = (int)parse_num(optarg, "-P", 1, 256);
			break;
		case 't':
			/* whole milliseconds: the header carries them */
			opt.duration = parse_secs(optarg, "-t", 0.01, 86400);
			opt.duration =
				(double)(uint32_t)(opt.duration * 1000 + 0.5) /
				1000;
			break;
		case O_TIMEOUT:
			opt.timeout =
				(int)parse_num(optarg, "--timeout", 1, 86400);
			opt.timeout_set = 1;
			break;
		case O_REQUIRE_SMC:
			if (opt.require != REQ_SMCR)
				opt.require = REQ_SMC;
			break;
		case O_REQUIRE_SMCR:
			opt.require = REQ_SMCR;
			break;
		case O_VERIFY:
			opt.verify = 1;
			break;
		case O_JSON:
			opt.json = 1;
			break;
		case O_TCP:
			opt.tcp = 1;
			break;
		case O_AF_SMC:
			opt.af_smc = 1;
			break;
		case O_TRANSPORT:
			opt.transport = optarg;
			break;
		case O_SMC_PORTS:
			opt.smc_ports = optarg;
			break;
		case O_RAW:
			opt.raw = 1;
			break;
		case O_LINGER:
			opt.linger_ms =
				(int)parse_num(optarg, "--linger", 0, 3600000);
			break;
		case O_CONNS:
			opt.conns = (int)parse_num(optarg, "--conns", 1, 65536);
			break;
		case O_IDLE:
			opt.idle_ms =
				(int)parse_num(optarg, "--idle", 1, 3600000);
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			usmc_tool_version(prog);
			return 0;
		default: /* getopt said what */
			usmc_tool_try(prog);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (opt.server == !!opt.host)
		die_usage(
			"give exactly one of -s (server) or -c HOST (client)");
	if (nmodes > 1)
		die_usage("-R, --bidi and --pingpong exclude each other");
	if (opt.server && (nmodes || bytes_set || opt.parallel != 1 || opt.raw))
		die_usage("the client chooses the mode; the server takes "
			  "only -B, -p, -1 and the common options");
	if (opt.conns && (nmodes || bytes_set || opt.parallel != 1 || opt.raw ||
			  opt.af_smc || (opt.bind_addr && opt.host)))
		die_usage("--conns excludes the modes, -n, -P, --raw, "
			  "--af-smc and the client's -B");
	if (opt.host && opt.one)
		die_usage("-1 is a server option");
	if (opt.raw && opt.mode != MODE_PINGPONG)
		die_usage("--raw needs --pingpong SIZE");
	if (opt.mode == MODE_PINGPONG && bytes_set)
		die_usage("-n does not apply to --pingpong (use --iterations)");
	if (iter_set && opt.mode != MODE_PINGPONG)
		die_usage("--iterations needs --pingpong SIZE");
	if (opt.duration && (bytes_set || iter_set))
		die_usage("-t (a duration) excludes -n and --iterations (a "
			  "count)");
	if (opt.server && (opt.duration || opt.interval))
		die_usage("-t and -i are client options (the client's header "
			  "tells the server the duration)");
	if (opt.conns && (opt.duration || opt.interval || opt.require))
		die_usage("--conns excludes -t, -i and --require-smc(r) "
			  "(--conns fails on any fallback itself)");
	if (opt.require && opt.tcp)
		die_usage("--require-smc and --require-smcr exclude --tcp");
	if (opt.tcp && (opt.transport || opt.smc_ports))
		die_usage("--tcp excludes --transport and --smc-ports");
	if (opt.af_smc && (opt.tcp || opt.transport || opt.smc_ports))
		die_usage("--af-smc excludes --tcp, --transport and "
			  "--smc-ports");

	signal(SIGPIPE, SIG_IGN);
	if (opt.tcp) {
		use_kernel();
	} else if (opt.af_smc) {
		use_kernel();
		io.socket = af_smc_socket;
	} else {
		static char ports[16]; /* opt.smc_ports outlives the block */

		use_usmc();
		if (opt.transport &&
		    usmc_config_set("transport", opt.transport))
			die_usage("--transport: bad name '%s'", opt.transport);
		if (!opt.smc_ports && !getenv("USMC_SMC_PORTS")) {
			snprintf(ports, sizeof(ports), "%u", opt.port);
			opt.smc_ports = ports;
		}
		if (opt.smc_ports &&
		    usmc_config_set("smc_ports", opt.smc_ports))
			die_usage("--smc-ports: bad list '%s' (e.g. "
				  "7070,8000-8010)",
				  opt.smc_ports);
	}
	if (opt.duration && !opt.timeout_set)
		opt.timeout = (int)opt.duration + 1 + TIMEOUT_MARGIN;
	/* the client's own waits are no hang: --idle 90000 is not cut at 60 */
	if (!opt.timeout_set)
		opt.timeout += (opt.idle_ms + opt.linger_ms + 999) / 1000;
	watchdog_start = now_ns();
	watchdog_end = watchdog_start + (uint64_t)opt.timeout * 1000000000ull;
	if ((!opt.server || opt.one) &&
	    pthread_create(&wd, NULL, watchdog, NULL)) {
		fprintf(stderr, "%s: cannot start the watchdog\n", prog);
		return 1;
	}
	/* from here the watchdog may end the process: every exit goes
	 * through perf_exit, so that main's and the watchdog's exit(3)
	 * never run at once */
	if (opt.conns && !opt.server)
		perf_exit(run_conns_client());
	perf_exit(opt.server ? run_server() : run_client());
}
