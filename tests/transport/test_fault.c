/* SPDX-License-Identifier: MIT */
/*
 * The fault decorator over softroce, two devices on 127.0.0.1 and
 * 127.0.0.2 in one process: each fault does what docs/fault.md says, counts
 * trigger exactly, recoverable faults leave the data byte-exact, fatal ones
 * raise their async event. Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "softroce.h"
#include "tp_pair.h"
#include "usmc_fault.h"
#include "usmc_test.h"
#include "usmc_transport.h"

typedef tp_side side;
typedef tp_pair pair;

static char ctl_dir[64];
/* the inner softroce's options; strict unless a test says otherwise */
static const char *dev_options = "mtu=1024,icrc=strict";

static int open_dev(const char *ip, uint16_t port, usmc_tp **tp)
{
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;

	memset(&cfg, 0, sizeof(cfg));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, ip, &sin->sin_addr);
	cfg.udp_port = port;
	/* strict: every corrupted packet fails the ICRC, not all but 2^-16
	 * of them (icrc=verify reads a mismatch as an IPv4 ID when it can) */
	cfg.options = dev_options;
	return usmc_tp_open("fault:softroce", &cfg, tp);
}

static int open_side(void *arg, int i, const char *ip, uint16_t port,
		     usmc_tp **tp)
{
	(void)arg;
	(void)i;
	return open_dev(ip, port, tp);
}

static int open_pair(pair *p)
{
	tp_pair_init(p);
	return tp_pair_open_loopback(p, open_side, NULL, 0, 2);
}

/* smc's settings, but MTU 1024 and a 16.8 ms retransmit timer: losses
 * recover quickly */
static const tp_conn_params fault_params = {
	USMC_IB_MTU_1024, 12, 7, 7, 5, 256, 256, 0, 100};

static int setup(pair *p)
{
	int rc = open_pair(p);

	USMC_ASSERT_EQ(rc, 0);
	if (rc)
		return rc;
	tp_pair_create_qps(p, &fault_params);
	tp_pair_connect(p, &fault_params);
	return 0;
}

static void add(usmc_tp *tp, const char *sched)
{
	char err[200];
	int rc = usmc_fault_add(tp, sched, err, sizeof(err));

	if (rc)
		fprintf(stderr, "  usmc_fault_add(%s): %s\n", sched, err);
	USMC_ASSERT_EQ_FATAL(rc, 0);
}

/* ---- recoverable: packet faults on both devices ------------------------ */

/* Fills |total| bytes on side 0, adds |sched| to both devices and WRITEs
 * them to side 1 in 32 KiB WRs; waits for every completion. */
static void write_all(pair *p, const char *sched, size_t total, int fill,
		      usmc_tp_mr **src, usmc_tp_mr **dst)
{
	const uint32_t chunk = 32 << 10;
	int nwr = 0;

	*src = tp_mr(p->s[0].tp, total, USMC_ACCESS_LOCAL_WRITE);
	*dst = tp_mr(p->s[1].tp, total,
		     USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill((*src)->addr, total, fill);
	memset((*dst)->addr, 0, total);
	/* timed clauses start now: after the buffers are filled, which in
	 * a sanitizer build on a loaded machine outlasts a 30 ms window */
	add(p->s[0].tp, sched);
	add(p->s[1].tp, sched);
	for (size_t off = 0; off < total; off += chunk) {
		usmc_wr wr =
			tp_write_wr((uint64_t)nwr, *src, off, chunk, *dst, off);

		USMC_ASSERT_EQ(usmc_tp_post_send(p->s[0].qp, &wr), 0);
		nwr++;
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(p, 0, nwr, 30000), 0);
	for (int k = 0; k < p->s[0].nwc; k++) {
		USMC_ASSERT_EQ(p->s[0].wcs[k].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p->s[0].wcs[k].wr_id, k);
	}
}

static void stream(const char *sched, usmc_fault_stats *fa,
		   usmc_fault_stats *fb, usmc_softroce_stats *sb)
{
	pair p;
	size_t total = (RUNNING_ON_VALGRIND ? 256u : 2048u) << 10;
	usmc_tp_mr *src, *dst;

	if (setup(&p))
		return;
	write_all(&p, sched, total, 77, &src, &dst);
	if (memcmp(src->addr, dst->addr, total))
		CU_FAIL("data differs after the faults");
	usmc_fault_get_stats(p.s[0].tp, fa);
	usmc_fault_get_stats(p.s[1].tp, fb);
	usmc_softroce_get_stats(usmc_fault_inner(p.s[1].tp), sb);
	fprintf(stderr,
		"  [%s: %zu KiB; B saw %llu pkts: dropped %llu delayed %llu "
		"duplicated %llu reordered %llu corrupted %llu; B ICRC drops "
		"%llu, dups %llu]\n",
		sched, total >> 10, (unsigned long long)fb->pkts,
		(unsigned long long)fb->dropped,
		(unsigned long long)fb->delayed,
		(unsigned long long)fb->duplicated,
		(unsigned long long)fb->reordered,
		(unsigned long long)fb->corrupted,
		(unsigned long long)sb->drop_icrc,
		(unsigned long long)sb->dup_rx);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

static void test_drop(void)
{
	usmc_fault_stats a, b;
	usmc_softroce_stats sb;

	stream("seed=7;drop:rate=0.02", &a, &b, &sb);
	CU_ASSERT_TRUE(b.dropped > 0);
	/* a lost data packet puts the next out of sequence */
	CU_ASSERT_TRUE(sb.nak_seq_tx > 0);
}

static void test_corrupt(void)
{
	usmc_fault_stats a, b;
	usmc_softroce_stats sb;

	stream("seed=8;corrupt:rate=0.02", &a, &b, &sb);
	CU_ASSERT_TRUE(b.corrupted > 0);
	/* every corrupted packet, and nothing else, failed the ICRC */
	USMC_ASSERT_EQ(sb.drop_icrc, b.corrupted);
}

/* in=payload with the ICRC off (damage reaches memory): only WRITE
 * payload is hit, so every wrong byte in the RMB is a payload byte XORed
 * with 0x5a, at most one per corrupted packet, and the requester's side,
 * which receives only ACKs, sees nothing damaged. */
static void test_corrupt_payload(void)
{
	pair p;
	const size_t total = 1u << 20;
	usmc_tp_mr *src, *dst;
	usmc_fault_stats fa, fb;
	size_t wrong = 0, odd = 0;
	int rc;

	dev_options = "mtu=1024,icrc=off";
	rc = setup(&p);
	dev_options = "mtu=1024,icrc=strict";
	if (rc)
		return;
	write_all(&p, "seed=9;corrupt:in=payload,rate=0.05", total, 78, &src,
		  &dst);
	for (size_t i = 0; i < total; i++) {
		uint8_t a = ((uint8_t *)src->addr)[i],
			b = ((uint8_t *)dst->addr)[i];

		if (a != b) {
			wrong++;
			odd += (a ^ b) != 0x5a;
		}
	}
	usmc_fault_get_stats(p.s[0].tp, &fa);
	usmc_fault_get_stats(p.s[1].tp, &fb);
	fprintf(stderr,
		"  [in=payload: %llu of %llu packets corrupted, %zu "
		"bytes wrong; the requester's side %llu of %llu]\n",
		(unsigned long long)fb.corrupted, (unsigned long long)fb.pkts,
		wrong, (unsigned long long)fa.corrupted,
		(unsigned long long)fa.pkts);
	CU_ASSERT_TRUE(wrong > 0);
	/* a retransmitted packet may be damaged again, its copy dropped */
	CU_ASSERT_TRUE(wrong <= fb.corrupted);
	USMC_ASSERT_EQ(odd, 0);
	USMC_ASSERT_EQ(fa.corrupted, 0);
	CU_ASSERT_TRUE(fa.pkts > 0);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

static void test_duplicate(void)
{
	usmc_fault_stats a, b;
	usmc_softroce_stats sb;

	stream("seed=9;duplicate:rate=0.05", &a, &b, &sb);
	CU_ASSERT_TRUE(b.duplicated > 0);
	/* the responder saw the copies as duplicates (or out of order) */
	CU_ASSERT_TRUE(sb.dup_rx > 0 || sb.nak_seq_tx > 0);
}

static void test_delay(void)
{
	usmc_fault_stats a, b;
	usmc_softroce_stats sb;

	stream("seed=10;delay:rate=0.02,by=3ms", &a, &b, &sb);
	CU_ASSERT_TRUE(b.delayed > 0);
}

static void test_reorder(void)
{
	usmc_fault_stats a, b;
	usmc_softroce_stats sb;

	stream("seed=11;reorder:rate=0.02", &a, &b, &sb);
	CU_ASSERT_TRUE(b.reordered > 0);
	CU_ASSERT_TRUE(sb.nak_seq_tx > 0);
}

static void test_window(void)
{
	usmc_fault_stats a, b;
	usmc_softroce_stats sb;

	/* drop everything for 30 ms: the stream stalls, then recovers */
	stream("drop:for=30ms", &a, &b, &sb);
	CU_ASSERT_TRUE(b.dropped > 0);
}

/* ---- device level ------------------------------------------------------ */

static void test_fail_post_nth(void)
{
	pair p;
	usmc_tp_mr *src, *dst;
	usmc_fault_stats st;

	if (setup(&p))
		return;
	/* the 3rd WRITE fails; SENDs are not counted */
	add(p.s[0].tp, "fail-post:op=WRITE,nth=3");
	src = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 4096,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	for (int k = 1; k <= 6; k++) {
		usmc_wr wr = tp_write_wr((uint64_t)k, src, 0, 64, dst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
			       k == 3 ? USMC_ERR_TRANSPORT : 0);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 5, 5000), 0);
	usmc_fault_get_stats(p.s[0].tp, &st);
	USMC_ASSERT_EQ(st.posts, 6);
	USMC_ASSERT_EQ(st.posts_failed, 1);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

/* rewrite-llc type=CONFIRM_RKEY,dir=resp,set=0x20,nth=2: of the SENDs
 * that carry a CONFIRM_RKEY response (v1 0x06 or v2 0x26 with the RESP
 * flag), exactly the 2nd arrives with RKEY_NEG set in byte 3; requests,
 * CDCs, WRITEs and every other byte arrive as posted. */
static void test_rewrite_llc(void)
{
	static const uint8_t hdr[6][2] = {
		{0x26, 0x80}, /* response: the 1st counted */
		{0x26, 0x00}, /* request: not counted */
		{0xfe, 0x80}, /* CDC: not counted */
		{0x06, 0x80}, /* v1 response: the 2nd, rewritten */
		{0x26, 0x80}, /* the 3rd: nth=2 fired once */
		{0x06, 0x80}, /* a WRITE: not a SEND, not counted */
	};
	uint8_t want[6][44];
	usmc_tp_mr *src, *dst, *wdst;
	usmc_fault_stats st;
	pair p;

	if (setup(&p))
		return;
	add(p.s[0].tp, "rewrite-llc:type=CONFIRM_RKEY,dir=resp,set=0x20,nth=2");
	src = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	wdst = tp_mr(p.s[1].tp, 4096,
		     USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	tp_fill(src->addr, 4096, 5);
	memset(dst->addr, 0, 4096);
	memset(wdst->addr, 0, 4096);
	for (int k = 0; k < 6; k++) {
		uint8_t *m = (uint8_t *)src->addr + k * 64;

		m[0] = hdr[k][0];
		m[3] = hdr[k][1];
		memcpy(want[k], m, 44);
	}
	want[3][3] = 0xa0;
	for (int k = 0; k < 5; k++)
		tp_post_recv(p.s[1].qp, 100 + (uint64_t)k, dst, (size_t)k * 64,
			     64);
	for (int k = 0; k < 6; k++) {
		usmc_wr wr =
			k < 5 ? tp_send_wr((uint64_t)k, src, (size_t)k * 64, 44)
			      : tp_write_wr((uint64_t)k, src, (size_t)k * 64,
					    44, wdst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 6, 5000), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 1, 5, 5000), 0);
	for (int k = 0; k < p.s[1].nwc; k++) {
		USMC_ASSERT_EQ(p.s[1].wcs[k].status, USMC_WC_SUCCESS);
		USMC_ASSERT_EQ(p.s[1].wcs[k].byte_len, 44);
	}
	for (int k = 0; k < 5; k++)
		if (memcmp((uint8_t *)dst->addr + k * 64, want[k], 44)) {
			fprintf(stderr, "  SEND %d: byte 3 %02x, want %02x\n",
				k, ((uint8_t *)dst->addr)[k * 64 + 3],
				want[k][3]);
			CU_FAIL("a SEND arrived other than expected");
		}
	CU_ASSERT_EQUAL(memcmp(wdst->addr, want[5], 44), 0);
	/* the rewrite is in the sender's buffer (docs/fault.md) */
	CU_ASSERT_EQUAL(((uint8_t *)src->addr)[3 * 64 + 3], 0xa0);
	usmc_fault_get_stats(p.s[0].tp, &st);
	USMC_ASSERT_EQ(st.llc_rewritten, 1);
	USMC_ASSERT_EQ(st.fired, 1);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	usmc_tp_free_mr(wdst);
	tp_pair_teardown(&p);
}

/* fail-reg-mr refuses exactly the 2nd registration, fail-modify-qp the
 * 2nd move to RTR/RTS (INIT is not counted): the QP stays in RTR, and
 * the next try goes through. */
static void test_verb_faults(void)
{
	pair p;
	usmc_tp_mr *m[3] = {NULL, NULL, NULL};
	usmc_fault_stats st;
	usmc_qp_attr a;

	if (open_pair(&p))
		return;
	tp_pair_create_qps(&p, &fault_params);
	add(p.s[0].tp, "fail-reg-mr:nth=2;fail-modify-qp:nth=2");
	for (int i = 0; i < 3; i++)
		USMC_ASSERT_EQ(usmc_tp_alloc_mr(p.s[0].tp, 4096,
						USMC_ACCESS_LOCAL_WRITE, &m[i]),
			       i == 1 ? USMC_ERR_NOMEM : 0);
	CU_ASSERT_PTR_NULL(m[1]);
	for (int i = 0; i < 2; i++)
		tp_qp_rtr(p.s[i].qp, &p.s[i].port, p.s[1 - i].qp,
			  &p.s[1 - i].port, &fault_params, i);
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_RTS;
	USMC_ASSERT_EQ(usmc_tp_modify_qp(p.s[0].qp, &a), USMC_ERR_TRANSPORT);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTR);
	for (int i = 0; i < 2; i++)
		tp_qp_rts(p.s[i].qp, &fault_params, i);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTS);
	usmc_fault_get_stats(p.s[0].tp, &st);
	USMC_ASSERT_EQ(st.mrs_failed, 1);
	USMC_ASSERT_EQ(st.modifies_failed, 1);
	for (int i = 0; i < 3; i++)
		if (m[i])
			usmc_tp_free_mr(m[i]);
	tp_pair_teardown(&p);
}

static void test_qp_error_timed(void)
{
	pair p;
	usmc_tp_event ev;
	uint64_t t0 = tp_now_ms(), dt;

	if (setup(&p))
		return;
	add(p.s[1].tp, "qp-error:after=50ms");
	USMC_ASSERT_EQ_FATAL(tp_pair_wait_event(&p, p.s[1].tp, &ev, 3000), 0);
	dt = tp_now_ms() - t0;
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_QP_FATAL);
	USMC_ASSERT_EQ(ev.qp_num, usmc_tp_qp_num(p.s[1].qp));
	CU_ASSERT_TRUE(dt >= 50 && dt < 1000);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[1].qp), USMC_QPS_ERR);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_RTS);
	USMC_ASSERT_EQ(usmc_tp_get_async_event(p.s[1].tp, &ev), 0);
	tp_pair_teardown(&p);
}

static void test_port_down_up(void)
{
	pair p;
	usmc_tp_event ev;
	usmc_tp_mr *src, *dst;
	usmc_wr wr;
	uint64_t t0;

	if (setup(&p))
		return;
	src = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 4096,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	add(p.s[0].tp, "port-down:after=20ms,for=100ms");
	USMC_ASSERT_EQ_FATAL(tp_pair_wait_event(&p, p.s[0].tp, &ev, 3000), 0);
	t0 = tp_now_ms();
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_PORT_ERR);
	wr = tp_write_wr(1, src, 0, 64, dst, 0);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), USMC_ERR_TRANSPORT);
	USMC_ASSERT_EQ_FATAL(tp_pair_wait_event(&p, p.s[0].tp, &ev, 3000), 0);
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_PORT_ACTIVE);
	CU_ASSERT_TRUE(tp_now_ms() - t0 >= 90);
	USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	USMC_ASSERT_EQ(tp_pair_wait_wcs(&p, 0, 1, 3000), 0);
	USMC_ASSERT_EQ(p.s[0].wcs[0].status, USMC_WC_SUCCESS);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

static void test_device_fatal_nth(void)
{
	pair p;
	usmc_tp_event ev;
	usmc_tp_mr *src, *dst;

	if (setup(&p))
		return;
	src = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 4096,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	add(p.s[0].tp, "device-fatal:nth=2");
	for (int k = 1; k <= 3; k++) {
		usmc_wr wr = tp_write_wr((uint64_t)k, src, 0, 64, dst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
			       k == 1 ? 0 : USMC_ERR_TRANSPORT);
	}
	USMC_ASSERT_EQ(usmc_tp_get_async_event(p.s[0].tp, &ev), 1);
	USMC_ASSERT_EQ(ev.type, USMC_TP_EV_DEVICE_FATAL);
	USMC_ASSERT_EQ(usmc_tp_qp_state(p.s[0].qp), USMC_QPS_ERR);
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

/* ---- control ----------------------------------------------------------- */

/* Sends |msg| to the control socket at |path|; the fd to read the reply
 * from (2 s receive timeout), or -1. */
static int ctl_send(const char *path, const char *msg)
{
	struct sockaddr_un me, to;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct timeval tv = {2, 0};

	memset(&me, 0, sizeof(me));
	me.sun_family = AF_UNIX;
	snprintf(me.sun_path, sizeof(me.sun_path), "%s/client.%d", ctl_dir,
		 (int)getpid());
	unlink(me.sun_path);
	memset(&to, 0, sizeof(to));
	to.sun_family = AF_UNIX;
	snprintf(to.sun_path, sizeof(to.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void test_control_socket(void)
{
	pair p;
	usmc_tp_mr *src, *dst;
	char reply[256];
	ssize_t n;
	int fd;

	if (setup(&p))
		return;
	src = tp_mr(p.s[0].tp, 4096, USMC_ACCESS_LOCAL_WRITE);
	dst = tp_mr(p.s[1].tp, 4096,
		    USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE);
	CU_ASSERT_TRUE_FATAL(*usmc_fault_ctl_path(p.s[0].tp) != 0);
	CU_ASSERT_EQUAL(strncmp(usmc_fault_ctl_path(p.s[0].tp), ctl_dir,
				strlen(ctl_dir)),
			0);
	/* a bad schedule: refused whole, with the position */
	fd = ctl_send(usmc_fault_ctl_path(p.s[0].tp),
		      "fail-post:nth=1;drop:rate=2");
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	tp_pair_round(&p, 50);
	n = recv(fd, reply, sizeof(reply) - 1, 0);
	CU_ASSERT_TRUE_FATAL(n > 0);
	reply[n] = 0;
	CU_ASSERT_STRING_EQUAL(reply, "error: position 27: expected a rate "
				      "from 0 to 1 (e.g. 0.01)");
	close(fd);
	{
		usmc_wr wr = tp_write_wr(1, src, 0, 64, dst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	fd = ctl_send(usmc_fault_ctl_path(p.s[0].tp), "fail-post:nth=1");
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	tp_pair_round(&p, 50);
	n = recv(fd, reply, sizeof(reply) - 1, 0);
	CU_ASSERT_TRUE_FATAL(n > 0);
	reply[n] = 0;
	CU_ASSERT_STRING_EQUAL(reply, "ok");
	close(fd);
	{
		usmc_wr wr = tp_write_wr(2, src, 0, 64, dst, 0);

		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr),
			       USMC_ERR_TRANSPORT);
		USMC_ASSERT_EQ(usmc_tp_post_send(p.s[0].qp, &wr), 0);
	}
	usmc_tp_free_mr(src);
	usmc_tp_free_mr(dst);
	tp_pair_teardown(&p);
}

static void test_env_schedule(void)
{
	usmc_tp *tp = NULL;
	int rc;

	setenv("USMC_FAULT", "drop:rate=0.5;qp-error:after=1x", 1);
	rc = open_dev("127.0.0.1", 29999, &tp);
	unsetenv("USMC_FAULT");
	USMC_ASSERT_EQ(rc, USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(usmc_fault_last_error(),
			       "USMC_FAULT: position 31: expected a unit "
			       "after the number (ns, us, ms, s)");
	setenv("USMC_FAULT_FILE", "/nonexistent/usmc-fault", 1);
	rc = open_dev("127.0.0.1", 29999, &tp);
	unsetenv("USMC_FAULT_FILE");
	USMC_ASSERT_EQ(rc, USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(usmc_fault_last_error(), "/nonexistent"));
	{
		usmc_tp_config cfg;

		memset(&cfg, 0, sizeof(cfg));
		USMC_ASSERT_EQ(usmc_tp_open("fault:nosuch", &cfg, &tp),
			       USMC_ERR_INVALID_ARGUMENT);
		CU_ASSERT_STRING_EQUAL(usmc_fault_last_error(),
				       "inner=nosuch: no such transport to "
				       "wrap");
	}
}

static CU_TestInfo tests[] = {
	{"drop 2%: byte-exact", test_drop},
	{"corrupt 2%: each fails the ICRC, byte-exact", test_corrupt},
	{"corrupt in=payload, ICRC off: only WRITE payload bytes damaged",
	 test_corrupt_payload},
	{"duplicate 5%: byte-exact", test_duplicate},
	{"delay 2% by 3 ms: byte-exact", test_delay},
	{"reorder 2%: byte-exact", test_reorder},
	{"drop all for 30 ms: byte-exact", test_window},
	{"fail-post op=WRITE nth=3: exactly the 3rd", test_fail_post_nth},
	{"fail-reg-mr, fail-modify-qp: exactly the 2nd", test_verb_faults},
	{"rewrite-llc: exactly the 2nd CONFIRM_RKEY response",
	 test_rewrite_llc},
	{"qp-error after=50ms: QP_FATAL, QP in ERR", test_qp_error_timed},
	{"port-down for=100ms: PORT_ERR, then PORT_ACTIVE", test_port_down_up},
	{"device-fatal nth=2: DEVICE_FATAL, posts fail", test_device_fatal_nth},
	{"control socket: bad schedule refused, good one applied",
	 test_control_socket},
	{"USMC_FAULT, USMC_FAULT_FILE, inner=: errors", test_env_schedule},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"fault", tests},
						 {NULL, NULL}};
	int rc;

	snprintf(ctl_dir, sizeof(ctl_dir), "/tmp/usmc-fault-test.XXXXXX");
	if (!mkdtemp(ctl_dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	setenv("USMC_FAULT_CTL_DIR", ctl_dir, 1);
	unsetenv("USMC_FAULT");
	unsetenv("USMC_FAULT_FILE");
	rc = usmc_test_main(suites);
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/client.%d", ctl_dir,
			 (int)getpid());
		unlink(path);
	}
	rmdir(ctl_dir);
	return rc;
}
