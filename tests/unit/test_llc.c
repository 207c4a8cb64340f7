/* SPDX-License-Identifier: MIT */
/*
 * LLC codec tests. Golden vectors: every LLC message of the Linux 6.1
 * captures (tests/vectors/llc/, extracted by extract.sh there). Wireshark
 * 4.0 cannot decode SMC-Rv2 LLC, so the expected fields below were read
 * from the raw bytes by hand with the layouts of the kernel's
 * struct smc_llc_msg_* (net/smc/smc_llc.c). The v1 messages are built
 * byte by byte from the same layouts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_llc.h"
#include "usmc_test.h"

static const char *const captures[] = {
	"smcr-a-session",
	"smcr-b-lgr-reuse",
	"smcr-d-linkfail-eth0",
};

#define NCAPTURES (sizeof(captures) / sizeof(captures[0]))
#define CAP_A	  0
#define CAP_B	  1
#define CAP_D	  2

static usmc_test_vec vecs[64];
static size_t nvecs;

/* Loads every "frame hex source" line of $USMC_VECTORS/llc/<capture>.txt. */
static int load_vectors(void)
{
	int n;

	if (nvecs)
		return 0;
	n = usmc_test_load_vecs("llc", captures, NCAPTURES, vecs,
				sizeof(vecs) / sizeof(vecs[0]));
	if (n < 0)
		return -1;
	nvecs = (size_t)n;
	return 0;
}

static const usmc_test_vec *find_vec(int cap, int frame)
{
	return usmc_test_find_vec(vecs, nvecs, cap, frame);
}

/* An IPv4-mapped RoCEv2 GID ::ffff:a.b.c.d */
static void gid_v4(uint8_t *gid, uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	memset(gid, 0, 16);
	gid[10] = 0xff;
	gid[11] = 0xff;
	gid[12] = a;
	gid[13] = b;
	gid[14] = c;
	gid[15] = d;
}

#define ASSERT_GID_V4(g, a, b, c, d)             \
	do {                                     \
		uint8_t exp_[16];                \
		gid_v4(exp_, a, b, c, d);        \
		USMC_ASSERT_MEM_EQ(g, exp_, 16); \
	} while (0)

#define ASSERT_MAC(m, m4, m5)                                             \
	do {                                                              \
		const uint8_t exp_[6] = {0x52, 0x54, 0x00, 0x00, m4, m5}; \
		USMC_ASSERT_MEM_EQ(m, exp_, 6);                           \
	} while (0)

/* Decodes vector (cap, frame), checks the header, re-encodes to the same
 * bytes; returns the decoded message for the field checks. */
static int golden(usmc_llc_msg *m, int cap, int frame, uint8_t wire_type,
		  int length, uint8_t flags)
{
	const usmc_test_vec *v = find_vec(cap, frame);
	uint8_t out[256];
	usmc_ssize n;

	CU_ASSERT_PTR_NOT_NULL(v);
	if (!v)
		return -1;
	USMC_ASSERT_EQ(v->len, length);
	memset(m, 0xa5, sizeof(*m));
	n = usmc_llc_decode(m, v->bytes, (size_t)v->len);
	USMC_ASSERT_EQ(n, length);
	if (n < 0)
		return -1;
	USMC_ASSERT_EQ(m->hdr.type, wire_type & 0x0f);
	USMC_ASSERT_EQ(m->hdr.version, 2);
	USMC_ASSERT_EQ(m->hdr.length, length);
	USMC_ASSERT_EQ(m->hdr.flags, flags);
	USMC_ASSERT_EQ(m->hdr.add_link_rej_rsn, 0);
	memset(out, 0x5a, sizeof(out));
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), m), length);
	USMC_ASSERT_MEM_EQ(out, v->bytes, (size_t)length);
	USMC_ASSERT_EQ(out[length], 0x5a);
	return 0;
}

static void test_golden_all(void)
{
	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	/* 8 + 9 + 27 LLC messages in the three captures */
	USMC_ASSERT_EQ(nvecs, 44);
	for (size_t i = 0; i < nvecs; i++) {
		usmc_llc_msg m;
		uint8_t out[256];
		usmc_ssize n;

		n = usmc_llc_decode(&m, vecs[i].bytes, (size_t)vecs[i].len);
		USMC_ASSERT_EQ(n, vecs[i].len);
		USMC_ASSERT_EQ(usmc_rx_msg_classify(vecs[i].bytes,
						    (size_t)vecs[i].len),
			       USMC_RX_MSG_LLC_V2);
		USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), n);
		USMC_ASSERT_MEM_EQ(out, vecs[i].bytes, (size_t)vecs[i].len);
	}
}

static void test_golden_confirm_link(void)
{
	static const struct {
		int cap, frame;
		uint8_t flags, mac5, ip4;
	} e[] = {
		/* server request, flags NO_RMBE_EYEC */
		{CAP_A, 13, 0x03, 0x01, 1},
		{CAP_D, 12, 0x03, 0x01, 1},
		/* client response, RESP | NO_RMBE_EYEC */
		{CAP_A, 15, 0x83, 0x02, 2},
		{CAP_D, 14, 0x83, 0x02, 2},
	};
	usmc_llc_msg m;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		const usmc_llc_confirm_link *c = &m.confirm_link;

		if (golden(&m, e[i].cap, e[i].frame, 0x21, 44, e[i].flags))
			continue;
		ASSERT_MAC(c->sender_mac, 0x00, e[i].mac5);
		ASSERT_GID_V4(c->sender_gid, 10, 9, 0, e[i].ip4);
		USMC_ASSERT_EQ(c->sender_qp_num, 0x11);
		USMC_ASSERT_EQ(c->link_num, 1);
		USMC_ASSERT_EQ(c->link_uid, 0x00000101);
		USMC_ASSERT_EQ(c->max_links, 2);
		USMC_ASSERT_EQ(c->max_conns, 0);
	}
}

static void test_golden_add_link(void)
{
	static const struct {
		int cap, frame, length;
		uint8_t flags, mac4, mac5, ip4;
		uint32_t qpn;
		uint8_t link;
		uint32_t psn;
		int has_ext, nrk;
		uint32_t key, key_new;
		uint64_t vaddr;
	} e[] = {
		/* server request with one rkey triple in the extension */
		{CAP_A, 17, 88, 0x00, 0x00, 0x01, 1, 0x12, 2, 0x56b2ef, 1, 1,
		 0x3b6, 0x58e, 0xff40b18c84670000ull},
		/* client reject (RESP | ADD_LNK_REJ): the request echoed,
		 * 44 bytes, no reason (v2 length overwrites it) */
		{CAP_A, 19, 44, 0xc0, 0x00, 0x01, 1, 0x12, 2, 0x56b2ef, 0, 0, 0,
		 0, 0},
		/* second NIC: request and response with rkeys */
		{CAP_D, 16, 88, 0x00, 0x01, 0x01, 11, 0x11, 2, 0x3f0d15, 1, 1,
		 0x3f6, 0x32a, 0xff2f57d784d40000ull},
		{CAP_D, 18, 88, 0x80, 0x01, 0x02, 12, 0x11, 2, 0x80ff0a, 1, 1,
		 0x361, 0x3a0, 0xff1d608dc4110000ull},
		/* after the link failure: extension without rkeys */
		{CAP_D, 2432, 72, 0x00, 0x01, 0x01, 11, 0x12, 3, 0x120442, 1, 0,
		 0, 0, 0},
		{CAP_D, 2434, 72, 0x80, 0x00, 0x02, 2, 0x12, 3, 0xbadf3d, 1, 0,
		 0, 0, 0},
	};
	usmc_llc_msg m;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		const usmc_llc_add_link *a = &m.add_link;

		if (golden(&m, e[i].cap, e[i].frame, 0x22, e[i].length,
			   e[i].flags))
			continue;
		ASSERT_MAC(a->sender_mac, e[i].mac4, e[i].mac5);
		ASSERT_GID_V4(a->sender_gid, 10, 9, 0, e[i].ip4);
		USMC_ASSERT_EQ(a->sender_qp_num, e[i].qpn);
		USMC_ASSERT_EQ(a->link_num, e[i].link);
		USMC_ASSERT_EQ(a->qp_mtu, 3); /* 1024 */
		USMC_ASSERT_EQ(a->initial_psn, e[i].psn);
		USMC_ASSERT_EQ(a->has_v2_ext, e[i].has_ext);
		if (!e[i].has_ext)
			continue;
		USMC_ASSERT_EQ(a->v2_direct, 1);
		ASSERT_GID_V4(a->client_target_gid, 10, 9, 0, e[i].ip4);
		USMC_ASSERT_EQ(a->num_rkeys, e[i].nrk);
		if (e[i].nrk) {
			USMC_ASSERT_EQ(a->rt[0].rmb_key, e[i].key);
			USMC_ASSERT_EQ(a->rt[0].rmb_key_new, e[i].key_new);
			USMC_ASSERT_EQ(a->rt[0].rmb_vaddr_new, e[i].vaddr);
		}
	}
}

static void test_golden_confirm_rkey(void)
{
	static const struct {
		int cap, frame;
		uint8_t flags, num;
		uint32_t key0;
		uint64_t vaddr0;
		uint32_t key1;
		uint64_t vaddr1;
	} e[] = {
		/* one link: no additional rtokens */
		{CAP_B, 7, 0x00, 0, 0x3b6, 0xff40b18c84670000ull, 0, 0},
		{CAP_B, 9, 0x80, 0, 0x3b6, 0xff40b18c84670000ull, 0, 0},
		{CAP_B, 13, 0x00, 0, 0x385, 0xff1cee3183b70000ull, 0, 0},
		{CAP_B, 15, 0x80, 0, 0x385, 0xff1cee3183b70000ull, 0, 0},
		/* two links: rtoken[1] for link 2 */
		{CAP_D, 51, 0x00, 1, 0x3f6, 0xff2f57d784d40000ull, 0x32a,
		 0xff2f57d784d40000ull},
		{CAP_D, 56, 0x80, 1, 0x3f6, 0xff2f57d784d40000ull, 0x32a,
		 0xff2f57d784d40000ull},
		{CAP_D, 62, 0x00, 1, 0x361, 0xff1d608dc4110000ull, 0x3a0,
		 0xff1d608dc4110000ull},
		{CAP_D, 64, 0x80, 1, 0x361, 0xff1d608dc4110000ull, 0x3a0,
		 0xff1d608dc4110000ull},
		{CAP_D, 65, 0x80, 1, 0x361, 0xff1d608dc4110000ull, 0x3a0,
		 0xff1d608dc4110000ull},
	};
	usmc_llc_msg m;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		const usmc_llc_confirm_rkey *r = &m.confirm_rkey;

		if (golden(&m, e[i].cap, e[i].frame, 0x26, 44, e[i].flags))
			continue;
		USMC_ASSERT_EQ(r->num_rkeys, e[i].num);
		USMC_ASSERT_EQ(r->rtoken[0].link_id, 0);
		USMC_ASSERT_EQ(r->rtoken[0].rmb_key, e[i].key0);
		USMC_ASSERT_EQ(r->rtoken[0].rmb_vaddr, e[i].vaddr0);
		USMC_ASSERT_EQ(r->rtoken[1].link_id, e[i].num ? 2 : 0);
		USMC_ASSERT_EQ(r->rtoken[1].rmb_key, e[i].key1);
		USMC_ASSERT_EQ(r->rtoken[1].rmb_vaddr, e[i].vaddr1);
		USMC_ASSERT_EQ(r->rtoken[2].link_id, 0);
		USMC_ASSERT_EQ(r->rtoken[2].rmb_key, 0);
		USMC_ASSERT_EQ(r->rtoken[2].rmb_vaddr, 0);
	}
}

static void test_golden_delete_rkey(void)
{
	static const struct {
		int cap, frame;
		uint8_t flags;
		uint32_t key;
	} e[] = {
		/* requests carry one rkey; v2 responses zero the rkeys */
		{CAP_A, 286, 0x00, 0x3b6},  {CAP_A, 287, 0x00, 0x385},
		{CAP_A, 289, 0x80, 0},	    {CAP_A, 292, 0x80, 0},
		{CAP_B, 50, 0x00, 0x3b6},   {CAP_B, 51, 0x00, 0x385},
		{CAP_B, 53, 0x80, 0},	    {CAP_B, 57, 0x80, 0},
		{CAP_B, 60, 0x80, 0},	    {CAP_D, 36, 0x00, 0x3f6},
		{CAP_D, 37, 0x00, 0x361},   {CAP_D, 39, 0x80, 0},
		{CAP_D, 41, 0x80, 0},	    {CAP_D, 2400, 0x00, 0x3f6},
		{CAP_D, 2401, 0x00, 0x361}, {CAP_D, 2404, 0x80, 0},
		{CAP_D, 2406, 0x80, 0},	    {CAP_D, 2414, 0x00, 0x405},
		{CAP_D, 2416, 0x80, 0},	    {CAP_D, 2417, 0x00, 0x48f},
		{CAP_D, 2418, 0x00, 0x405}, {CAP_D, 2422, 0x80, 0},
	};
	usmc_llc_msg m;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		const usmc_llc_delete_rkey *d = &m.delete_rkey;

		if (golden(&m, e[i].cap, e[i].frame, 0x29, 44, e[i].flags))
			continue;
		USMC_ASSERT_EQ(d->num_rkeys, 1);
		USMC_ASSERT_EQ(d->err_mask, 0);
		USMC_ASSERT_EQ(d->rkey[0], e[i].key);
		for (int k = 1; k < SMC_LLC_DEL_RKEY_MAX; k++)
			USMC_ASSERT_EQ(d->rkey[k], 0);
	}
}

static void test_golden_delete_link(void)
{
	static const struct {
		int frame;
		uint8_t flags;
		uint32_t reason;
	} e[] = {
		/* client request, then the server's request: ORDERLY */
		{2426, 0x20, SMC_LLC_DEL_LOST_PATH},
		{2428, 0x20, SMC_LLC_DEL_LOST_PATH},
		/* client response: RESP | ORDERLY, link already gone */
		{2430, 0xa0, SMC_LLC_DEL_NOLNK},
	};
	usmc_llc_msg m;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		if (golden(&m, CAP_D, e[i].frame, 0x24, 44, e[i].flags))
			continue;
		USMC_ASSERT_EQ(m.delete_link.link_num, 2);
		USMC_ASSERT_EQ(m.delete_link.reason, e[i].reason);
	}
	USMC_ASSERT_EQ(e[0].reason, 0x00010000);
	USMC_ASSERT_EQ(e[2].reason, 0x00100000);
}

/* Responses built the way Linux builds them (from the decoded request)
 * encode to the bytes Linux sent. */
static void test_golden_responses(void)
{
	usmc_llc_msg m;
	uint8_t out[128];
	const usmc_test_vec *req, *resp;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);

	/* ADD_LINK reject: the request echoed with RESP | REJ, the
	 * extension dropped (a17 -> a19) */
	req = find_vec(CAP_A, 17);
	resp = find_vec(CAP_A, 19);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	USMC_ASSERT_EQ(usmc_llc_decode(&m, req->bytes, (size_t)req->len), 88);
	m.hdr.flags |= SMC_LLC_FLAG_RESP | SMC_LLC_FLAG_ADD_LNK_REJ;
	m.add_link.has_v2_ext = 0;
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, resp->bytes, 44);

	/* CONFIRM_RKEY: the request with RESP (b7 -> b9) */
	req = find_vec(CAP_B, 7);
	resp = find_vec(CAP_B, 9);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	USMC_ASSERT_EQ(usmc_llc_decode(&m, req->bytes, 44), 44);
	m.hdr.flags |= SMC_LLC_FLAG_RESP;
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, resp->bytes, 44);

	/* DELETE_RKEY v2: RESP, rkeys zeroed, no invalid ones (a286 ->
	 * a289) */
	req = find_vec(CAP_A, 286);
	resp = find_vec(CAP_A, 289);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	USMC_ASSERT_EQ(usmc_llc_decode(&m, req->bytes, 44), 44);
	m.hdr.flags |= SMC_LLC_FLAG_RESP;
	memset(m.delete_rkey.rkey, 0, sizeof(m.delete_rkey.rkey));
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, resp->bytes, 44);

	/* DELETE_LINK for an unknown link: RESP, reason NOLNK (d2428 ->
	 * d2430) */
	req = find_vec(CAP_D, 2428);
	resp = find_vec(CAP_D, 2430);
	CU_ASSERT_PTR_NOT_NULL_FATAL(req);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	USMC_ASSERT_EQ(usmc_llc_decode(&m, req->bytes, 44), 44);
	m.hdr.flags |= SMC_LLC_FLAG_RESP;
	m.delete_link.reason = SMC_LLC_DEL_NOLNK;
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, resp->bytes, 44);

	/* CONFIRM_LINK built from fields equals the server's request
	 * (a13) */
	resp = find_vec(CAP_A, 13);
	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	usmc_llc_msg_init(&m, SMC_LLC_CONFIRM_LINK, 2,
			  SMC_LLC_FLAG_NO_RMBE_EYEC);
	m.confirm_link.sender_mac[0] = 0x52;
	m.confirm_link.sender_mac[1] = 0x54;
	m.confirm_link.sender_mac[5] = 0x01;
	gid_v4(m.confirm_link.sender_gid, 10, 9, 0, 1);
	m.confirm_link.sender_qp_num = 0x11;
	m.confirm_link.link_num = 1;
	m.confirm_link.link_uid = 0x101;
	m.confirm_link.max_links = 2;
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, resp->bytes, 44);
}

/* --- hand-built v1 messages --------------------------------------------- */

static void hdr_v1(uint8_t *b, uint8_t type, uint8_t byte2, uint8_t flags)
{
	memset(b, 0, 44);
	b[0] = type;
	b[1] = 44;
	b[2] = byte2;
	b[3] = flags;
}

/* Decodes |b| (44 bytes), re-encodes and compares. */
static int roundtrip(usmc_llc_msg *m, const uint8_t *b, size_t len)
{
	uint8_t out[8192 + 16];
	usmc_ssize n;

	memset(m, 0xa5, sizeof(*m));
	n = usmc_llc_decode(m, b, len);
	USMC_ASSERT_EQ(n, (usmc_ssize)len);
	if (n < 0)
		return -1;
	USMC_ASSERT_EQ(m->hdr.length, len);
	memset(out, 0x5a, sizeof(out));
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), m), n);
	USMC_ASSERT_MEM_EQ(out, b, len);
	USMC_ASSERT_EQ(out[len], 0x5a);
	return 0;
}

static void build_confirm_link(uint8_t *b)
{
	hdr_v1(b, 0x01, 0, 0x83);
	for (int i = 0; i < 6; i++)
		b[4 + i] = (uint8_t)(0xa0 + i); /* MAC a0..a5 */
	for (int i = 0; i < 16; i++)
		b[10 + i] = (uint8_t)(0x10 + i); /* GID 10..1f */
	b[26] = 0xab;				 /* QPN 0xabcdef */
	b[27] = 0xcd;
	b[28] = 0xef;
	b[29] = 7;    /* link num */
	b[30] = 0xde; /* link uid 0xdeadbe07 */
	b[31] = 0xad;
	b[32] = 0xbe;
	b[33] = 0x07;
	b[34] = 2;   /* max links */
	b[35] = 255; /* max conns */
}

static void test_v1_confirm_link(void)
{
	uint8_t b[44];
	usmc_llc_msg m;
	const usmc_llc_confirm_link *c = &m.confirm_link;

	build_confirm_link(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_CONFIRM_LINK);
	USMC_ASSERT_EQ(m.hdr.version, 1);
	USMC_ASSERT_EQ(m.hdr.flags,
		       SMC_LLC_FLAG_RESP | SMC_LLC_FLAG_NO_RMBE_EYEC);
	for (int i = 0; i < 6; i++)
		USMC_ASSERT_EQ(c->sender_mac[i], 0xa0 + i);
	for (int i = 0; i < 16; i++)
		USMC_ASSERT_EQ(c->sender_gid[i], 0x10 + i);
	USMC_ASSERT_EQ(c->sender_qp_num, 0xabcdef);
	USMC_ASSERT_EQ(c->link_num, 7);
	USMC_ASSERT_EQ(c->link_uid, 0xdeadbe07);
	USMC_ASSERT_EQ(c->max_links, 2);
	USMC_ASSERT_EQ(c->max_conns, 255);
}

static void build_add_link(uint8_t *b)
{
	/* reject response: RESP | ADD_LNK_REJ, reason NO_ALT_PATH */
	hdr_v1(b, 0x02, 0x01, 0xc0);
	for (int i = 0; i < 6; i++)
		b[4 + i] = (uint8_t)(0x60 + i);
	for (int i = 0; i < 16; i++)
		b[12 + i] = (uint8_t)(0xf0 - i);
	b[28] = 0x00; /* QPN 0x000102 */
	b[29] = 0x01;
	b[30] = 0x02;
	b[31] = 3;    /* link num */
	b[32] = 0x05; /* MTU 4096 */
	b[33] = 0xff; /* PSN 0xfffffe */
	b[34] = 0xff;
	b[35] = 0xfe;
}

static void test_v1_add_link(void)
{
	uint8_t b[44];
	usmc_llc_msg m;
	const usmc_llc_add_link *a = &m.add_link;

	build_add_link(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_ADD_LINK);
	USMC_ASSERT_EQ(m.hdr.version, 1);
	USMC_ASSERT_EQ(m.hdr.flags,
		       SMC_LLC_FLAG_RESP | SMC_LLC_FLAG_ADD_LNK_REJ);
	USMC_ASSERT_EQ(m.hdr.add_link_rej_rsn, SMC_LLC_REJ_RSN_NO_ALT_PATH);
	for (int i = 0; i < 6; i++)
		USMC_ASSERT_EQ(a->sender_mac[i], 0x60 + i);
	for (int i = 0; i < 16; i++)
		USMC_ASSERT_EQ(a->sender_gid[i], 0xf0 - i);
	USMC_ASSERT_EQ(a->sender_qp_num, 0x102);
	USMC_ASSERT_EQ(a->link_num, 3);
	USMC_ASSERT_EQ(a->qp_mtu, 5);
	USMC_ASSERT_EQ(a->initial_psn, 0xfffffe);
	USMC_ASSERT_EQ(a->has_v2_ext, 0);
}

static void build_add_link_cont(uint8_t *b)
{
	hdr_v1(b, 0x03, 0, 0x80);
	b[4] = 2; /* link num */
	b[5] = 5; /* rkeys to go */
	/* rt[0]: 0x11111111, 0x22222222, 0x3333333344444444 */
	memset(b + 8, 0x11, 4);
	memset(b + 12, 0x22, 4);
	memset(b + 16, 0x33, 4);
	memset(b + 20, 0x44, 4);
	/* rt[1]: 0x01020304, 0x05060708, 0x090a0b0c0d0e0f10 */
	for (int i = 0; i < 16; i++)
		b[24 + i] = (uint8_t)(i + 1);
}

static void test_v1_add_link_cont(void)
{
	uint8_t b[44];
	usmc_llc_msg m;
	const usmc_llc_add_link_cont *c = &m.add_link_cont;

	build_add_link_cont(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_ADD_LINK_CONT);
	USMC_ASSERT_EQ(c->link_num, 2);
	USMC_ASSERT_EQ(c->num_rkeys, 5);
	USMC_ASSERT_EQ(c->rt[0].rmb_key, 0x11111111);
	USMC_ASSERT_EQ(c->rt[0].rmb_key_new, 0x22222222);
	CU_ASSERT(c->rt[0].rmb_vaddr_new == 0x3333333344444444ull);
	USMC_ASSERT_EQ(c->rt[1].rmb_key, 0x01020304);
	USMC_ASSERT_EQ(c->rt[1].rmb_key_new, 0x05060708);
	CU_ASSERT(c->rt[1].rmb_vaddr_new == 0x090a0b0c0d0e0f10ull);
}

static void build_delete_link(uint8_t *b)
{
	hdr_v1(b, 0x04, 0, 0x40 | 0x20); /* ALL | ORDERLY */
	b[4] = 0;
	b[5] = 0x00; /* PROG_INIT_TERM */
	b[6] = 0x03;
	b[7] = 0x00;
	b[8] = 0x00;
}

static void test_v1_delete_link(void)
{
	uint8_t b[44];
	usmc_llc_msg m;

	build_delete_link(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_DELETE_LINK);
	USMC_ASSERT_EQ(m.hdr.flags, SMC_LLC_FLAG_DEL_LINK_ALL |
					    SMC_LLC_FLAG_DEL_LINK_ORDERLY);
	USMC_ASSERT_EQ(m.delete_link.link_num, 0);
	USMC_ASSERT_EQ(m.delete_link.reason, SMC_LLC_DEL_PROG_INIT_TERM);
}

static void build_confirm_rkey(uint8_t *b)
{
	hdr_v1(b, 0x06, 0, 0x80 | 0x20 | 0x10); /* RESP | NEG | RETRY */
	b[4] = 2;				/* two more rtokens */
	b[5] = 0xaa;				/* rkey 0xaabbccdd */
	b[6] = 0xbb;
	b[7] = 0xcc;
	b[8] = 0xdd;
	for (int i = 0; i < 8; i++)
		b[9 + i] = (uint8_t)(0x80 + i); /* vaddr 0x8081..87 */
	b[17] = 2;				/* link 2 */
	b[21] = 0x42;				/* rkey 0x42 */
	b[29] = 0x01;				/* vaddr 0x01 */
	b[30] = 3;				/* link 3 */
	b[31] = 0xff;				/* rkey 0xff000000 */
	b[35] = 0xff;				/* vaddr 0xff00000000000000 */
}

static void test_v1_confirm_rkey(void)
{
	uint8_t b[44];
	usmc_llc_msg m;
	const usmc_llc_confirm_rkey *r = &m.confirm_rkey;

	build_confirm_rkey(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_CONFIRM_RKEY);
	USMC_ASSERT_EQ(m.hdr.flags, SMC_LLC_FLAG_RESP | SMC_LLC_FLAG_RKEY_NEG |
					    SMC_LLC_FLAG_RKEY_RETRY);
	USMC_ASSERT_EQ(r->num_rkeys, 2);
	USMC_ASSERT_EQ(r->rtoken[0].link_id, 0);
	USMC_ASSERT_EQ(r->rtoken[0].rmb_key, 0xaabbccdd);
	CU_ASSERT(r->rtoken[0].rmb_vaddr == 0x8081828384858687ull);
	USMC_ASSERT_EQ(r->rtoken[1].link_id, 2);
	USMC_ASSERT_EQ(r->rtoken[1].rmb_key, 0x42);
	CU_ASSERT(r->rtoken[1].rmb_vaddr == 0x01);
	USMC_ASSERT_EQ(r->rtoken[2].link_id, 3);
	USMC_ASSERT_EQ(r->rtoken[2].rmb_key, 0xff000000);
	CU_ASSERT(r->rtoken[2].rmb_vaddr == 0xff00000000000000ull);
}

static void build_confirm_rkey_cont(uint8_t *b)
{
	hdr_v1(b, 0x08, 0, 0);
	b[4] = 3; /* rkeys remaining */
	for (int k = 0; k < 3; k++) {
		uint8_t *t = b + 5 + 13 * k;

		t[0] = (uint8_t)(k + 1);	  /* link id */
		t[4] = (uint8_t)(0x10 * (k + 1)); /* rkey 0x10, 0x20, 0x30 */
		t[5] = (uint8_t)(0xc0 + k);	  /* vaddr 0xc0.. << 56 */
		t[12] = 0x99;			  /* vaddr low byte */
	}
}

static void test_v1_confirm_rkey_cont(void)
{
	uint8_t b[44];
	usmc_llc_msg m;
	const usmc_llc_confirm_rkey_cont *r = &m.confirm_rkey_cont;

	build_confirm_rkey_cont(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_CONFIRM_RKEY_CONT);
	USMC_ASSERT_EQ(r->num_rkeys, 3);
	for (int k = 0; k < 3; k++) {
		USMC_ASSERT_EQ(r->rtoken[k].link_id, k + 1);
		USMC_ASSERT_EQ(r->rtoken[k].rmb_key, 0x10 * (k + 1));
		CU_ASSERT(r->rtoken[k].rmb_vaddr ==
			  (((uint64_t)(0xc0 + k) << 56) | 0x99));
	}
}

static void build_test_link(uint8_t *b)
{
	hdr_v1(b, 0x07, 0, 0);
	memcpy(b + 4, "usmc-test-link!!", 16);
}

static void test_v1_test_link(void)
{
	uint8_t b[44];
	usmc_llc_msg m;

	build_test_link(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_TEST_LINK);
	USMC_ASSERT_MEM_EQ(m.test_link.user_data, "usmc-test-link!!", 16);
	/* the response is the request with RESP set */
	m.hdr.flags |= SMC_LLC_FLAG_RESP;
	b[3] = 0x80;
	roundtrip(&m, b, 44);
}

static void build_delete_rkey(uint8_t *b)
{
	hdr_v1(b, 0x09, 0, 0x80 | 0x20); /* RESP | NEG */
	b[4] = 8;			 /* all eight */
	b[5] = 0x41;			 /* rkey[1] and rkey[7] unknown */
	for (int i = 0; i < 8; i++) {
		b[8 + 4 * i] = (uint8_t)i;
		b[11 + 4 * i] = (uint8_t)(0xf0 | i);
	}
}

static void test_v1_delete_rkey(void)
{
	uint8_t b[44];
	usmc_llc_msg m;
	const usmc_llc_delete_rkey *d = &m.delete_rkey;

	build_delete_rkey(b);
	if (roundtrip(&m, b, 44))
		return;
	USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_DELETE_RKEY);
	USMC_ASSERT_EQ(d->num_rkeys, 8);
	USMC_ASSERT_EQ(d->err_mask, 0x41);
	for (int i = 0; i < 8; i++)
		USMC_ASSERT_EQ(d->rkey[i], ((uint32_t)i << 24) | 0xf0u | i);
}

typedef void (*builder)(uint8_t *b);

static const builder v1_builders[] = {
	build_confirm_link, build_add_link,	build_add_link_cont,
	build_delete_link,  build_confirm_rkey, build_confirm_rkey_cont,
	build_test_link,    build_delete_rkey,
};

#define NBUILDERS (sizeof(v1_builders) / sizeof(v1_builders[0]))

/* An encoder-built message equals the byte-built one. */
static void test_v1_encode_from_fields(void)
{
	usmc_llc_msg m;
	uint8_t b[44], out[44];

	usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK, 1,
			  SMC_LLC_FLAG_DEL_LINK_ALL |
				  SMC_LLC_FLAG_DEL_LINK_ORDERLY);
	m.delete_link.reason = SMC_LLC_DEL_PROG_INIT_TERM;
	build_delete_link(b);
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, b, 44);

	usmc_llc_msg_init(&m, SMC_LLC_TEST_LINK, 1, 0);
	memcpy(m.test_link.user_data, "usmc-test-link!!", 16);
	build_test_link(b);
	USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, b, 44);
}

/* Reserved bytes are ignored on decode and written as zero. */
static void test_v1_reserved(void)
{
	/* reserved byte offsets per type (type index as in v1_builders) */
	static const struct {
		int first, last;
	} rsv[NBUILDERS][3] = {
		{{36, 43}, {0, -1}, {0, -1}},  /* CONFIRM_LINK */
		{{10, 11}, {36, 43}, {0, -1}}, /* ADD_LINK */
		{{6, 7}, {40, 43}, {0, -1}},   /* ADD_LINK_CONT */
		{{9, 43}, {0, -1}, {0, -1}},   /* DELETE_LINK */
		{{43, 43}, {0, -1}, {0, -1}},  /* CONFIRM_RKEY */
		{{0, -1}, {0, -1}, {0, -1}},   /* CONFIRM_RKEY_CONT: none */
		{{20, 43}, {0, -1}, {0, -1}},  /* TEST_LINK */
		{{6, 7}, {40, 43}, {0, -1}},   /* DELETE_RKEY */
	};

	for (size_t t = 0; t < NBUILDERS; t++) {
		uint8_t b[44], dirty[44], out[44];
		usmc_llc_msg m, m2;

		v1_builders[t](b);
		memcpy(dirty, b, 44);
		for (int r = 0; r < 3; r++)
			for (int i = rsv[t][r].first; i <= rsv[t][r].last; i++)
				dirty[i] = 0xee;
		/* high nibble of byte 2 is reserved in every v1 message */
		dirty[2] |= 0xe0;
		if (t == 1) /* ADD_LINK: high nibble of the MTU byte */
			dirty[32] |= 0xe0;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, dirty, 44), 44);
		USMC_ASSERT_EQ(usmc_llc_decode(&m2, b, 44), 44);
		USMC_ASSERT_EQ(usmc_llc_encode(out, sizeof(out), &m), 44);
		USMC_ASSERT_MEM_EQ(out, b, 44);
	}
}

/* --- v2 hand-built ------------------------------------------------------ */

static void test_v2_req_add_link(void)
{
	uint8_t b[60];
	usmc_llc_msg m;

	/* request with two GIDs: 28 + 2 * 16 = 60 bytes, length LE */
	memset(b, 0, sizeof(b));
	b[0] = 0x25;
	b[1] = 60;
	b[2] = 0;
	b[3] = 0;
	b[24] = 2;
	gid_v4(b + 28, 10, 9, 0, 2);
	gid_v4(b + 44, 10, 9, 0, 12);
	if (!roundtrip(&m, b, 60)) {
		USMC_ASSERT_EQ(m.hdr.type, SMC_LLC_REQ_ADD_LINK);
		USMC_ASSERT_EQ(m.hdr.version, 2);
		USMC_ASSERT_EQ(m.req_add_link.gid_cnt, 2);
		ASSERT_GID_V4(m.req_add_link.gid[0], 10, 9, 0, 2);
		ASSERT_GID_V4(m.req_add_link.gid[1], 10, 9, 0, 12);
	}
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 59), USMC_ERR_TRUNCATED);
	/* gid count and length disagree */
	b[24] = 3;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 60), USMC_ERR_BAD_LENGTH);
	b[24] = 9;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 60), USMC_ERR_BAD_COUNT);

	/* Linux's response: RESP, 44 bytes, data zeroed */
	memset(b, 0, sizeof(b));
	b[0] = 0x25;
	b[1] = 44;
	b[3] = 0x80;
	if (!roundtrip(&m, b, 44)) {
		USMC_ASSERT_EQ(m.req_add_link.gid_cnt, 0);
		USMC_ASSERT_EQ(m.hdr.flags, SMC_LLC_FLAG_RESP);
	}
	/* one GID also fills exactly 44 bytes */
	b[24] = 1;
	gid_v4(b + 28, 10, 9, 0, 2);
	roundtrip(&m, b, 44);
}

static void test_v2_add_link_max(void)
{
	static uint8_t b[72 + 16 * 255];
	static usmc_llc_msg m;
	const size_t len = sizeof(b);

	memset(b, 0, len);
	b[0] = 0x22;
	b[1] = (uint8_t)(len & 0xff); /* 4152 = 0x1038, little-endian */
	b[2] = (uint8_t)(len >> 8);
	b[32] = 4;
	b[44] = 0x00; /* not direct */
	b[44 + 26] = 255;
	for (size_t i = 0; i < 255; i++) {
		uint8_t *rt = b + 72 + 16 * i;

		rt[3] = (uint8_t)i;
		rt[7] = (uint8_t)~i;
		rt[8] = (uint8_t)i;
		rt[15] = 1;
	}
	if (roundtrip(&m, b, len)) {
		return;
	}
	USMC_ASSERT_EQ(b[1], 0x38);
	USMC_ASSERT_EQ(b[2], 0x10);
	USMC_ASSERT_EQ(m.add_link.num_rkeys, 255);
	USMC_ASSERT_EQ(m.add_link.v2_direct, 0);
	USMC_ASSERT_EQ(m.add_link.qp_mtu, 4);
	for (size_t i = 0; i < 255; i++) {
		USMC_ASSERT_EQ(m.add_link.rt[i].rmb_key, i);
		USMC_ASSERT_EQ(m.add_link.rt[i].rmb_key_new, (uint8_t)~i);
		CU_ASSERT(m.add_link.rt[i].rmb_vaddr_new ==
			  (((uint64_t)i << 56) | 1));
	}
	/* 256 rkeys: too many (the length would fit a 8192 buffer) */
	b[44 + 26] = 0;
	b[44 + 27] = 1;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, len), USMC_ERR_BAD_COUNT);
	/* count says 254, length says 255 */
	b[44 + 26] = 254;
	b[44 + 27] = 0;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, len), USMC_ERR_BAD_LENGTH);
	/* every truncation of the long message */
	b[44 + 26] = 255;
	for (size_t n = 1; n < len; n += 97)
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, n), USMC_ERR_TRUNCATED);
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, len - 1), USMC_ERR_TRUNCATED);
}

/* --- errors ------------------------------------------------------------- */

static void test_truncation(void)
{
	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < nvecs; i++) {
		for (int n = 0; n < vecs[i].len; n++) {
			/* exact-size copy, so overreads show under ASan */
			uint8_t *copy = malloc(n ? (size_t)n : 1);
			usmc_llc_msg m;

			memcpy(copy, vecs[i].bytes, (size_t)n);
			USMC_ASSERT_EQ(usmc_llc_decode(&m, copy, (size_t)n),
				       USMC_ERR_TRUNCATED);
			free(copy);
		}
	}
	for (size_t t = 0; t < NBUILDERS; t++) {
		uint8_t b[44];

		v1_builders[t](b);
		for (size_t n = 0; n < 44; n++) {
			uint8_t *copy = malloc(n ? n : 1);
			usmc_llc_msg m;

			memcpy(copy, b, n);
			USMC_ASSERT_EQ(usmc_llc_decode(&m, copy, n),
				       USMC_ERR_TRUNCATED);
			free(copy);
		}
	}
}

static void test_bad_type(void)
{
	static const uint8_t ok[] = {0x01, 0x02, 0x03, 0x04, 0x06,
				     0x07, 0x08, 0x09, 0x21, 0x22,
				     0x24, 0x25, 0x26, 0x27, 0x29};
	uint8_t b[48];
	usmc_llc_msg m;

	for (int t = 0; t < 256; t++) {
		int valid = 0;

		for (size_t k = 0; k < sizeof(ok); k++)
			valid |= ok[k] == t;
		if (valid)
			continue;
		memset(b, 0, sizeof(b));
		b[0] = (uint8_t)t;
		b[1] = 44;
		b[4] = 1;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, sizeof(b)),
			       USMC_ERR_BAD_TYPE);
	}
	/* encoder refuses the same */
	usmc_llc_msg_init(&m, SMC_LLC_REQ_ADD_LINK, 1, 0);
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_llc_msg_init(&m, SMC_LLC_ADD_LINK_CONT, 2, 0);
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_llc_msg_init(&m, 0x0a, 1, 0);
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_llc_msg_init(&m, SMC_LLC_TEST_LINK, 3, 0);
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
}

static void test_bad_length(void)
{
	uint8_t b[8200];
	usmc_llc_msg m;

	/* v1: any length byte but 44 */
	for (size_t t = 0; t < NBUILDERS; t++) {
		for (int l = 0; l < 256; l++) {
			if (l == 44)
				continue;
			v1_builders[t](b);
			b[1] = (uint8_t)l;
			USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 44),
				       USMC_ERR_BAD_LENGTH);
		}
	}
	/* v2: below 44, above 8192, and wrong for the content */
	build_test_link(b);
	b[0] = 0x27;
	memset(b + 44, 0, sizeof(b) - 44);
	for (unsigned int l = 0; l < 44; l++) {
		b[1] = (uint8_t)l;
		b[2] = 0;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, sizeof(b)),
			       USMC_ERR_BAD_LENGTH);
	}
	b[1] = 0x01; /* 8193 */
	b[2] = 0x20;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, sizeof(b)), USMC_ERR_BAD_LENGTH);
	b[1] = 0xff;
	b[2] = 0xff;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, sizeof(b)), USMC_ERR_BAD_LENGTH);
	/* a TEST_LINK is always 44, even if the buffer holds more */
	b[1] = 45;
	b[2] = 0;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, sizeof(b)), USMC_ERR_BAD_LENGTH);
	/* big-endian 44 (0x002c) read as little-endian is 11264 */
	b[1] = 0x00;
	b[2] = 0x2c;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, sizeof(b)), USMC_ERR_BAD_LENGTH);
	/* v2 length above what was received */
	b[1] = 100;
	b[2] = 0;
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 99), USMC_ERR_TRUNCATED);

	/* ADD_LINK v2: 45..71 cannot hold the extension; 73 is not 72 +
	 * 16n */
	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	memcpy(b, find_vec(CAP_D, 2432)->bytes, 72);
	for (unsigned int l = 45; l < 72; l++) {
		b[1] = (uint8_t)l;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 72), USMC_ERR_BAD_LENGTH);
	}
	b[1] = 88; /* num_rkeys 0 but room for one */
	USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 88), USMC_ERR_BAD_LENGTH);
}

static void test_bad_count(void)
{
	uint8_t b[44];
	usmc_llc_msg m;

	for (int n = 3; n < 256; n++) {
		build_confirm_rkey(b);
		b[4] = (uint8_t)n;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 44), USMC_ERR_BAD_COUNT);
	}
	for (int n = 0; n < 256; n++) {
		if (n >= 1 && n <= 8)
			continue;
		build_delete_rkey(b);
		b[4] = (uint8_t)n;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 44), USMC_ERR_BAD_COUNT);
		b[0] = 0x29; /* v2 too */
		b[1] = 44;
		b[2] = 0;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 44), USMC_ERR_BAD_COUNT);
	}
	/* every valid count decodes */
	for (int n = 1; n <= 8; n++) {
		build_delete_rkey(b);
		b[4] = (uint8_t)n;
		roundtrip(&m, b, 44);
	}
	for (int n = 0; n <= 2; n++) {
		build_confirm_rkey(b);
		b[4] = (uint8_t)n;
		roundtrip(&m, b, 44);
	}
	/* encoder side */
	build_confirm_rkey(b);
	usmc_llc_decode(&m, b, 44);
	m.confirm_rkey.num_rkeys = 3;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	build_delete_rkey(b);
	usmc_llc_decode(&m, b, 44);
	m.delete_rkey.num_rkeys = 0;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.delete_rkey.num_rkeys = 9;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
}

static void test_bad_value(void)
{
	uint8_t b[44];
	usmc_llc_msg m;

	for (int mtu = 6; mtu < 16; mtu++) {
		build_add_link(b);
		b[32] = (uint8_t)mtu;
		USMC_ASSERT_EQ(usmc_llc_decode(&m, b, 44), USMC_ERR_BAD_VALUE);
	}
	/* 0 (client suggestion) through 5 are valid */
	for (int mtu = 0; mtu <= 5; mtu++) {
		build_add_link(b);
		b[32] = (uint8_t)mtu;
		roundtrip(&m, b, 44);
	}
	/* encoder: out-of-range fields */
	build_add_link(b);
	usmc_llc_decode(&m, b, 44);
	m.add_link.qp_mtu = 6;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.add_link.qp_mtu = 3;
	m.add_link.sender_qp_num = 0x1000000;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.add_link.sender_qp_num = 1;
	m.add_link.initial_psn = 0x1000000;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.add_link.initial_psn = 1;
	m.hdr.add_link_rej_rsn = 16;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.hdr.add_link_rej_rsn = 1;
	m.add_link.has_v2_ext = 1; /* v1 has no extension */
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.add_link.has_v2_ext = 0;
	m.hdr.version = 2; /* v2 has no room for a reject reason */
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.hdr.add_link_rej_rsn = 0;
	m.add_link.has_v2_ext = 1;
	m.add_link.v2_direct = 2;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	m.add_link.v2_direct = 1;
	m.add_link.num_rkeys = 256;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);

	build_confirm_link(b);
	usmc_llc_decode(&m, b, 44);
	m.confirm_link.sender_qp_num = 0x1000000;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);

	usmc_llc_msg_init(&m, SMC_LLC_REQ_ADD_LINK, 2, 0);
	m.req_add_link.gid_cnt = 9;
	USMC_ASSERT_EQ(usmc_llc_encode(b, sizeof(b), &m),
		       USMC_ERR_INVALID_ARGUMENT);

	USMC_ASSERT_EQ(usmc_llc_decode(NULL, b, 44), USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_llc_encode(b, 44, NULL), USMC_ERR_INVALID_ARGUMENT);
}

static void test_nobuf(void)
{
	uint8_t out[128];
	usmc_llc_msg m;

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t i = 0; i < nvecs; i++) {
		USMC_ASSERT_EQ(
			usmc_llc_decode(&m, vecs[i].bytes, (size_t)vecs[i].len),
			vecs[i].len);
		for (int cap = 0; cap < vecs[i].len; cap++)
			USMC_ASSERT_EQ(usmc_llc_encode(out, (size_t)cap, &m),
				       USMC_ERR_NOBUF);
	}
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x01), "CONFIRM_LINK");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x02), "ADD_LINK");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x03), "ADD_LINK_CONT");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x04), "DELETE_LINK");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x06), "CONFIRM_RKEY");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x07), "TEST_LINK");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x08), "CONFIRM_RKEY_CONT");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x09), "DELETE_RKEY");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x21), "CONFIRM_LINK_V2");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x25), "REQ_ADD_LINK_V2");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x29), "DELETE_RKEY_V2");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x23), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x00), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0x0a), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0xfe), "CDC");
	CU_ASSERT_STRING_EQUAL(usmc_llc_type_name(0xff), "UNKNOWN");
	for (int t = 0; t < 256; t++)
		CU_ASSERT_PTR_NOT_NULL(usmc_llc_type_name((uint8_t)t));

	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00010000),
			       "LOST_PATH");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00020000),
			       "OP_INIT_TERM");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00030000),
			       "PROG_INIT_TERM");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00040000),
			       "PROT_VIOL");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00050000),
			       "NO_ASYM_NEEDED");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00100000), "NOLNK");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00200000), "NOLGR");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0), "NONE");
	CU_ASSERT_STRING_EQUAL(usmc_llc_del_reason_name(0x00060000), "UNKNOWN");

	USMC_ASSERT_EQ(usmc_llc_wire_type(SMC_LLC_CONFIRM_RKEY, 1), 0x06);
	USMC_ASSERT_EQ(usmc_llc_wire_type(SMC_LLC_CONFIRM_RKEY, 2), 0x26);
}

static void test_classify(void)
{
	uint8_t b[1];

	for (int t = 0; t < 256; t++) {
		int exp = USMC_ERR_BAD_TYPE;

		if (t == 0xfe)
			exp = USMC_RX_MSG_CDC;
		else if (t >= 0x01 && t <= 0x09)
			exp = USMC_RX_MSG_LLC_V1;
		else if (t >= 0x21 && t <= 0x29)
			exp = USMC_RX_MSG_LLC_V2;
		b[0] = (uint8_t)t;
		USMC_ASSERT_EQ(usmc_rx_msg_classify(b, 1), exp);
	}
	USMC_ASSERT_EQ(usmc_rx_msg_classify(b, 0), USMC_ERR_TRUNCATED);
	USMC_ASSERT_EQ(usmc_rx_msg_classify(NULL, 0), USMC_ERR_TRUNCATED);
}

static CU_TestInfo golden_tests[] = {
	{"all vectors round-trip", test_golden_all},
	{"CONFIRM_LINK v2", test_golden_confirm_link},
	{"ADD_LINK v2", test_golden_add_link},
	{"CONFIRM_RKEY v2", test_golden_confirm_rkey},
	{"DELETE_RKEY v2", test_golden_delete_rkey},
	{"DELETE_LINK v2", test_golden_delete_link},
	{"responses as Linux builds them", test_golden_responses},
	CU_TEST_INFO_NULL,
};

static CU_TestInfo built_tests[] = {
	{"CONFIRM_LINK v1", test_v1_confirm_link},
	{"ADD_LINK v1", test_v1_add_link},
	{"ADD_LINK_CONT v1", test_v1_add_link_cont},
	{"DELETE_LINK v1", test_v1_delete_link},
	{"CONFIRM_RKEY v1", test_v1_confirm_rkey},
	{"CONFIRM_RKEY_CONT v1", test_v1_confirm_rkey_cont},
	{"TEST_LINK v1", test_v1_test_link},
	{"DELETE_RKEY v1", test_v1_delete_rkey},
	{"encode from fields", test_v1_encode_from_fields},
	{"reserved bytes", test_v1_reserved},
	{"REQ_ADD_LINK v2", test_v2_req_add_link},
	{"ADD_LINK v2 with 255 rkeys", test_v2_add_link_max},
	CU_TEST_INFO_NULL,
};

static CU_TestInfo error_tests[] = {
	{"truncation", test_truncation},
	{"bad type", test_bad_type},
	{"bad length", test_bad_length},
	{"bad count", test_bad_count},
	{"bad value", test_bad_value},
	{"no buffer", test_nobuf},
	{"names", test_names},
	{"classify", test_classify},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"llc golden", golden_tests},
		{"llc built", built_tests},
		{"llc errors", error_tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
