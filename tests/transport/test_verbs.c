/* SPDX-License-Identifier: MIT */
/*
 * The verbs backend without an RDMA device: options, the address's GID,
 * the device choice over a made-up sysfs GID table, the status, event and
 * errno mapping, and that open fails cleanly where no device holds the
 * address. The data path runs in test_tp_conformance_verbs (on rxe).
 */
#define _GNU_SOURCE /* nftw */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "usmc_test.h"
#include "usmc_transport.h"

#ifdef USMC_HAVE_VERBS
#include "usmc_tp_verbs.h"
#include "verbs_int.h"

static void test_opts(void)
{
	vb_opts o;

	USMC_ASSERT_EQ(usmc_verbs_parse_opts(NULL, &o), 0);
	USMC_ASSERT_EQ(o.gid_index, -1);
	USMC_ASSERT_EQ(o.port, 0);
	USMC_ASSERT_EQ(o.cqe, 0);
	CU_ASSERT_STRING_EQUAL(o.dev, "");
	USMC_ASSERT_EQ(usmc_verbs_parse_opts("", &o), 0);
	USMC_ASSERT_EQ(usmc_verbs_parse_opts(
			       "dev=rxe0,port=1,gid_index=3,cqe=4096", &o),
		       0);
	CU_ASSERT_STRING_EQUAL(o.dev, "rxe0");
	USMC_ASSERT_EQ(o.port, 1);
	USMC_ASSERT_EQ(o.gid_index, 3);
	USMC_ASSERT_EQ(o.cqe, 4096);
	USMC_ASSERT_EQ(usmc_verbs_parse_opts("dev=mlx5_1", &o), 0);
	CU_ASSERT_STRING_EQUAL(o.dev, "mlx5_1");

	static const char *const bad[] = {
		"bogus=1",     /* unknown key */
		"dev",	       /* no value */
		"dev=",	       /* empty */
		"dev=../x",    /* a path */
		"port=0",      /* ports count from 1 */
		"port=256",    /* u8 */
		"port=1x",     /* not a number */
		"gid_index=2", /* an index needs its device */
		"dev=r,gid_index=-1",
		"dev=r,gid_index=65536",
		"cqe=15",	    /* too small */
		"cqe=99999999999",  /* too large */
		"dev=rxe0,,port=1", /* empty item */
		"dev=0123456789012345678901234567890123456789012345678901234567"
		"890123", /* longer than a device name */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = usmc_verbs_parse_opts(bad[i], &o);

		if (r != USMC_ERR_INVALID_ARGUMENT)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
		USMC_ASSERT_EQ(r, USMC_ERR_INVALID_ARGUMENT);
	}
}

static void test_addr_gid(void)
{
	static const uint8_t v4[16] = {0, 0, 0,	   0,	 0,  0, 0, 0,
				       0, 0, 0xff, 0xff, 10, 0, 0, 1};
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	uint8_t gid[16];

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.0.1", &sin->sin_addr);
	USMC_ASSERT_EQ(usmc_verbs_addr_gid(&ss, gid), 0);
	USMC_ASSERT_MEM_EQ(gid, v4, 16);
	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "fd00::1:2", &s6->sin6_addr);
	USMC_ASSERT_EQ(usmc_verbs_addr_gid(&ss, gid), 0);
	USMC_ASSERT_MEM_EQ(gid, &s6->sin6_addr, 16);
	memset(&ss, 0, sizeof(ss));
	USMC_ASSERT_EQ(usmc_verbs_addr_gid(&ss, gid),
		       USMC_ERR_INVALID_ARGUMENT);
}

/* ---- a made-up /sys/class/infiniband ------------------------------------ */

static char root[64];

static void put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = path + strlen(root) + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			mkdir(path, 0755);
			*p = '/';
		}
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

/* One GID table entry: its GID, type and netdev (NULL: no such file, as
 * for an unused entry, whose type does not read). */
static void gid(const char *dev, int port, int idx, const char *g,
		const char *type, const char *ndev)
{
	char rel[256], line[128];

	snprintf(rel, sizeof(rel), "%s/ports/%d/gids/%d", dev, port, idx);
	snprintf(line, sizeof(line), "%s\n", g);
	put(rel, line);
	if (type) {
		snprintf(rel, sizeof(rel), "%s/ports/%d/gid_attrs/types/%d",
			 dev, port, idx);
		snprintf(line, sizeof(line), "%s\n", type);
		put(rel, line);
	}
	if (ndev) {
		snprintf(rel, sizeof(rel), "%s/ports/%d/gid_attrs/ndevs/%d",
			 dev, port, idx);
		snprintf(line, sizeof(line), "%s\n", ndev);
		put(rel, line);
	}
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

#define Z  "0000:0000:0000:0000:0000:0000:0000:0000"
#define A1 "0000:0000:0000:0000:0000:ffff:0a00:0001" /* 10.0.0.1 */
#define A2 "0000:0000:0000:0000:0000:FFFF:0A00:0002" /* 10.0.0.2 */
#define A3 "0000:0000:0000:0000:0000:ffff:0a00:0003" /* 10.0.0.3 */
#define LL "fe80:0000:0000:0000:5054:00ff:fe12:3456"
#define V1 "IB/RoCE v1"
#define V2 "RoCE v2"

static void make_tree(void)
{
	snprintf(root, sizeof(root), "/tmp/usmc-vbsys.XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(root));
	/* rxe0 on eth0: link-local v1/v2, 10.0.0.1 v1 then v2, an unused
	 * entry, a malformed one */
	gid("rxe0", 1, 0, LL, V1, "eth0");
	gid("rxe0", 1, 1, LL, V2, "eth0");
	gid("rxe0", 1, 2, A1, V1, "eth0");
	gid("rxe0", 1, 10, A1, V2, "eth0"); /* numeric, not name, order */
	gid("rxe0", 1, 3, Z, NULL, NULL);
	gid("rxe0", 1, 4, "0000:ffff:0a00:0003", V2, "eth0");
	/* 10.0.0.3 only as RoCE v1 */
	gid("rxe0", 1, 5, A3, V1, "eth0");
	/* rxe1 on eth1: 10.0.0.2 (upper-case hex), 10.0.0.1 too */
	gid("rxe1", 1, 0, A2, V2, "eth1");
	gid("rxe1", 1, 1, A1, V2, "eth1");
	/* a two-port device: 10.0.0.1 on its port 2, on netdev p2 */
	gid("mlx5_0", 2, 7, A1, V2, "p2");
	gid("mlx5_0", 1, 0, LL, V2, "p1");
	put("mlx5_0/ports/2/gids/8", "garbage\n");
}

static void test_find_gid(void)
{
	uint8_t g1[16] = {0, 0, 0,    0,    0,	0, 0, 0,
			  0, 0, 0xff, 0xff, 10, 0, 0, 1};
	uint8_t g2[16], g3[16], g9[16];
	vb_gid_loc l;

	make_tree();
	memcpy(g2, g1, 16);
	g2[15] = 2;
	memcpy(g3, g1, 16);
	g3[15] = 3;
	memcpy(g9, g1, 16);
	g9[15] = 9;
	/* devices in name order: mlx5_0 first, on port 2 */
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, NULL, 0, NULL, &l), 0);
	CU_ASSERT_STRING_EQUAL(l.dev, "mlx5_0");
	USMC_ASSERT_EQ(l.port, 2);
	USMC_ASSERT_EQ(l.index, 7);
	CU_ASSERT_STRING_EQUAL(l.ndev, "p2");
	USMC_ASSERT_MEM_EQ(l.gid, g1, 16);
	/* by device: the RoCE v2 entry, not the v1 one before it */
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, "rxe0", 0, NULL, &l), 0);
	CU_ASSERT_STRING_EQUAL(l.dev, "rxe0");
	USMC_ASSERT_EQ(l.port, 1);
	USMC_ASSERT_EQ(l.index, 10);
	/* by netdev, by port */
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, NULL, 0, "eth1", &l), 0);
	CU_ASSERT_STRING_EQUAL(l.dev, "rxe1");
	USMC_ASSERT_EQ(l.index, 1);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, "mlx5_0", 1, NULL, &l),
		       USMC_ERR_NOTFOUND);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, NULL, 1, "eth0", &l), 0);
	CU_ASSERT_STRING_EQUAL(l.dev, "rxe0");
	/* hex in either case */
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g2, NULL, 0, NULL, &l), 0);
	CU_ASSERT_STRING_EQUAL(l.dev, "rxe1");
	USMC_ASSERT_EQ(l.index, 0);
	/* v1 only, malformed only, absent, no such device, no tree */
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g3, NULL, 0, NULL, &l),
		       USMC_ERR_NOTFOUND);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g9, NULL, 0, NULL, &l),
		       USMC_ERR_NOTFOUND);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g2, "rxe0", 0, NULL, &l),
		       USMC_ERR_NOTFOUND);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, "rxe9", 0, NULL, &l),
		       USMC_ERR_NOTFOUND);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, NULL, 0, "eth9", &l),
		       USMC_ERR_NOTFOUND);
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	USMC_ASSERT_EQ(usmc_verbs_find_gid(root, g1, NULL, 0, NULL, &l),
		       USMC_ERR_NOTFOUND);
}

static void test_status_map(void)
{
	static const struct {
		enum ibv_wc_status in;
		usmc_wc_status out;
	} m[] = {
		{IBV_WC_SUCCESS, USMC_WC_SUCCESS},
		{IBV_WC_LOC_LEN_ERR, USMC_WC_LOC_LEN_ERR},
		{IBV_WC_LOC_QP_OP_ERR, USMC_WC_LOC_QP_OP_ERR},
		{IBV_WC_LOC_PROT_ERR, USMC_WC_LOC_PROT_ERR},
		{IBV_WC_WR_FLUSH_ERR, USMC_WC_WR_FLUSH_ERR},
		{IBV_WC_REM_INV_REQ_ERR, USMC_WC_REM_INV_REQ_ERR},
		{IBV_WC_REM_ACCESS_ERR, USMC_WC_REM_ACCESS_ERR},
		{IBV_WC_REM_OP_ERR, USMC_WC_REM_OP_ERR},
		{IBV_WC_RETRY_EXC_ERR, USMC_WC_RETRY_EXC_ERR},
		{IBV_WC_RNR_RETRY_EXC_ERR, USMC_WC_RNR_RETRY_EXC_ERR},
		{IBV_WC_FATAL_ERR, USMC_WC_FATAL_ERR},
		{IBV_WC_LOC_EEC_OP_ERR, USMC_WC_GENERAL_ERR},
		{IBV_WC_MW_BIND_ERR, USMC_WC_GENERAL_ERR},
		{IBV_WC_BAD_RESP_ERR, USMC_WC_GENERAL_ERR},
		{IBV_WC_LOC_ACCESS_ERR, USMC_WC_GENERAL_ERR},
		{IBV_WC_REM_ABORT_ERR, USMC_WC_GENERAL_ERR},
		{IBV_WC_RESP_TIMEOUT_ERR, USMC_WC_GENERAL_ERR},
		{IBV_WC_GENERAL_ERR, USMC_WC_GENERAL_ERR},
		{(enum ibv_wc_status)200, USMC_WC_GENERAL_ERR},
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		USMC_ASSERT_EQ(usmc_verbs_wc_status(m[i].in), m[i].out);
}

static void test_event_map(void)
{
	usmc_tp_event_type t = 0;

	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_PORT_ACTIVE, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_PORT_ACTIVE);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_PORT_ERR, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_PORT_ERR);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_DEVICE_FATAL, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_DEVICE_FATAL);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_CQ_ERR, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_DEVICE_FATAL);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_QP_FATAL, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_QP_FATAL);
	t = 0;
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_QP_REQ_ERR, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_QP_FATAL);
	t = 0;
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_QP_ACCESS_ERR, &t), 1);
	USMC_ASSERT_EQ(t, USMC_TP_EV_QP_FATAL);
	t = 0;
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_COMM_EST, &t), 0);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_SQ_DRAINED, &t), 0);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_GID_CHANGE, &t), 0);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_LID_CHANGE, &t), 0);
	USMC_ASSERT_EQ(usmc_verbs_event(IBV_EVENT_SRQ_LIMIT_REACHED, &t), 0);
	USMC_ASSERT_EQ(t, 0);
}

static void test_errno_map(void)
{
	USMC_ASSERT_EQ(usmc_verbs_err(0), 0);
	USMC_ASSERT_EQ(usmc_verbs_err(EINVAL), USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_verbs_err(ENOMEM), USMC_ERR_NOMEM);
	USMC_ASSERT_EQ(usmc_verbs_err(EAGAIN), USMC_ERR_WOULDBLOCK);
	USMC_ASSERT_EQ(usmc_verbs_err(ENODEV), USMC_ERR_NOTFOUND);
	USMC_ASSERT_EQ(usmc_verbs_err(EACCES), USMC_ERR_ACCESS);
	USMC_ASSERT_EQ(usmc_verbs_err(EOPNOTSUPP), USMC_ERR_NOTSUP);
	USMC_ASSERT_EQ(usmc_verbs_err(EIO), USMC_ERR_TRANSPORT);
}

/* Registered, and an open that cannot succeed fails with a named code and
 * leaves nothing behind (valgrind checks the last part). */
static void test_open_refused(void)
{
	usmc_tp_config cfg;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg.local_addr;
	usmc_tp *tp = (usmc_tp *)&cfg;
	int n = usmc_tp_verbs_device_count();

	CU_ASSERT_PTR_EQUAL(usmc_tp_find("verbs"), &usmc_tp_verbs_ops);
	CU_ASSERT_TRUE(n >= 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.options = "nope=1";
	USMC_ASSERT_EQ(usmc_tp_open("verbs", &cfg, &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_PTR_NULL(tp);
	cfg.options = NULL;
	/* no address, no dev=/gid_index= */
	USMC_ASSERT_EQ(usmc_tp_open("verbs", &cfg, &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	/* an address that holds no RoCEv2 GID (TEST-NET-1) */
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &sin->sin_addr);
	USMC_ASSERT_EQ(usmc_tp_open("verbs", &cfg, &tp), USMC_ERR_NOTFOUND);
	CU_ASSERT_PTR_NULL(tp);
	if (n == 0) {
		/* a device named outright that is not there */
		cfg.options = "dev=rxe_nonesuch,gid_index=1";
		USMC_ASSERT_EQ(usmc_tp_open("verbs", &cfg, &tp),
			       USMC_ERR_NOTFOUND);
		CU_ASSERT_PTR_NULL(tp);
	}
}

static CU_TestInfo tests[] = {
	{"options", test_opts},
	{"an address's GID", test_addr_gid},
	{"device choice from a sysfs GID table", test_find_gid},
	{"completion status mapping", test_status_map},
	{"async event mapping", test_event_map},
	{"errno mapping", test_errno_map},
	{"registered; open refused with a named code", test_open_refused},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"verbs", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
#else
int main(void)
{
	fprintf(stderr, "SKIP (exit 77): built without libibverbs "
			"(USMC_ENABLE_VERBS)\n");
	return 77;
}
#endif
