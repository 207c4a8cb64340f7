/* SPDX-License-Identifier: MIT */
/*
 * CLC codec. Oracles, independent of the codec:
 * - golden vectors: CLC messages written by the Linux 6.1 kernel
 *   (tests/vectors/clc, .hex files from tests/conformance), with the expected
 *   field values copied from tshark -V's decode of the same frames;
 * - v1 messages built here byte by byte from the RFC 7609 layout tables.
 * Every message must decode, match those fields, re-encode to identical
 * bytes, and every truncation of it must be refused with a named error.
 */
#include "usmc_clc.h"
#include "usmc_test.h"

#define MAXMSG 1024

/* ::ffff:a.b.c.d, the form of every RoCEv2 GID in the captures. */
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

/* A 32-byte blank-padded EID / host name. */
static void padded(uint8_t *out, const char *s)
{
	size_t n = strlen(s);

	memset(out, ' ', 32);
	memcpy(out, s, n);
}

static int load_vector(const char *name, uint8_t *out, size_t cap)
{
	const char *dir = getenv("USMC_VECTORS");
	char path[1024], line[2048], hex[4096] = "";
	FILE *f;

	if (!dir)
		dir = "tests/vectors";
	snprintf(path, sizeof(path), "%s/clc/%s.hex", dir, name);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#' &&
		    strlen(hex) + strlen(line) < sizeof(hex) - 1)
			strcat(hex, line);
	fclose(f);
	return usmc_test_hex(hex, out, cap);
}

/* Decode from an exact-size heap copy, so valgrind/ASan see overreads. */
static usmc_ssize decode_exact(const uint8_t *buf, size_t len, usmc_clc_msg *m)
{
	uint8_t *copy = malloc(len ? len : 1);
	usmc_ssize rc;

	memcpy(copy, buf, len);
	rc = usmc_clc_decode(copy, len, m);
	free(copy);
	return rc;
}

static int is_named_error(usmc_ssize rc)
{
	return rc == USMC_ERR_TRUNCATED || rc == USMC_ERR_BAD_LENGTH ||
	       rc == USMC_ERR_BAD_EYECATCHER || rc == USMC_ERR_BAD_TYPE ||
	       rc == USMC_ERR_BAD_VERSION || rc == USMC_ERR_BAD_VALUE ||
	       rc == USMC_ERR_BAD_OFFSET || rc == USMC_ERR_BAD_COUNT;
}

/* Decode, re-encode, compare every byte; then every truncation: a short
 * buffer, and a message whose length field was shortened to match. */
static void roundtrip_and_truncate(const uint8_t *buf, size_t len,
				   usmc_clc_msg *m)
{
	uint8_t out[MAXMSG], cut[MAXMSG];
	usmc_clc_msg tmp;
	usmc_ssize rc;

	USMC_ASSERT_EQ_FATAL(decode_exact(buf, len, m), len);
	USMC_ASSERT_EQ(usmc_clc_encoded_len(m), len);
	rc = usmc_clc_encode(m, out, sizeof(out));
	USMC_ASSERT_EQ_FATAL(rc, len);
	USMC_ASSERT_MEM_EQ(out, buf, len);
	/* Exactly the right capacity works, one byte less does not. */
	USMC_ASSERT_EQ(usmc_clc_encode(m, out, len), len);
	USMC_ASSERT_EQ(usmc_clc_encode(m, out, len - 1), USMC_ERR_NOBUF);
	/* Bytes after the message are not part of it. */
	memcpy(out, buf, len);
	memset(out + len, 0xa5, 16);
	USMC_ASSERT_EQ(usmc_clc_decode(out, len + 16, &tmp), len);

	for (size_t k = 0; k < len; k++) {
		rc = decode_exact(buf, k, &tmp);
		USMC_ASSERT_EQ(rc, USMC_ERR_TRUNCATED);
		if (k < SMC_CLC_HDR_LEN)
			continue;
		memcpy(cut, buf, k);
		cut[5] = (uint8_t)(k >> 8);
		cut[6] = (uint8_t)k;
		rc = decode_exact(cut, k, &tmp);
		if (rc >= 0 || !is_named_error(rc))
			fprintf(stderr, "len %zu cut to %zu: rc %zd\n", len, k,
				rc);
		CU_ASSERT(rc < 0 && is_named_error(rc));
	}
}

/* Golden vectors: Accept and Confirm */

struct golden_ac {
	const char *name;
	uint8_t type;
	bool first_contact;
	uint64_t peer_id;
	uint8_t gid[4]; /* ::ffff:a.b.c.d */
	uint8_t mac_last[2];
	uint32_t qpn, rkey, token;
	uint64_t vaddr;
	uint32_t psn;
	uint8_t gid_cnt;
	uint8_t gids[2][4];
};

/* Values as tshark -V prints them for these frames. */
static const struct golden_ac golden_ac[] = {
	{"a09-accept-v2-fc",
	 SMC_CLC_ACCEPT,
	 true,
	 0xeb10525400000001ULL,
	 {10, 9, 0, 1},
	 {0x00, 0x01},
	 0x11,
	 0x3b6,
	 1,
	 0xff40b18c84670000ULL,
	 0x14fd11,
	 0,
	 {{0}}},
	{"a11-confirm-v2-fc",
	 SMC_CLC_CONFIRM,
	 true,
	 0x2067525400000002ULL,
	 {10, 9, 0, 2},
	 {0x00, 0x02},
	 0x11,
	 0x385,
	 1,
	 0xff1cee3183b70000ULL,
	 0x6ad1d7,
	 1,
	 {{10, 9, 0, 2}}},
	{"b11-accept-v2",
	 SMC_CLC_ACCEPT,
	 false,
	 0xeb10525400000001ULL,
	 {10, 9, 0, 1},
	 {0x00, 0x01},
	 0x11,
	 0x3b6,
	 2,
	 0xff40b18c84670000ULL,
	 0x14fd11,
	 0,
	 {{0}}},
	{"b17-confirm-v2",
	 SMC_CLC_CONFIRM,
	 false,
	 0x2067525400000002ULL,
	 {10, 9, 0, 2},
	 {0x00, 0x02},
	 0x11,
	 0x385,
	 2,
	 0xff1cee3183b70000ULL,
	 0x6ad1d7,
	 0,
	 {{0}}},
	{"d08-accept-v2-fc",
	 SMC_CLC_ACCEPT,
	 true,
	 0x4012525400000001ULL,
	 {10, 9, 0, 1},
	 {0x00, 0x01},
	 0x11,
	 0x3f6,
	 1,
	 0xff2f57d784d40000ULL,
	 0x55622b,
	 0,
	 {{0}}},
	{"d10-confirm-v2-fc-2gids",
	 SMC_CLC_CONFIRM,
	 true,
	 0x55eb525400000002ULL,
	 {10, 9, 0, 2},
	 {0x00, 0x02},
	 0x11,
	 0x361,
	 1,
	 0xff1d608dc4110000ULL,
	 0x455dde,
	 2,
	 {{10, 9, 0, 2}, {10, 9, 0, 12}}},
	{"d70-accept-v2",
	 SMC_CLC_ACCEPT,
	 false,
	 0x4012525400000001ULL,
	 {10, 9, 0, 11},
	 {0x01, 0x01},
	 0x11,
	 0x41f,
	 3,
	 0xff2f57d785340000ULL,
	 0x3f0d15,
	 0,
	 {{0}}},
	{"d142-confirm-v2",
	 SMC_CLC_CONFIRM,
	 false,
	 0x55eb525400000002ULL,
	 {10, 9, 0, 12},
	 {0x01, 0x02},
	 0x11,
	 0x46f,
	 3,
	 0xff1d608dc4890000ULL,
	 0x80ff0a,
	 0,
	 {{0}}},
};

static void test_golden_accept_confirm(void)
{
	for (size_t i = 0; i < sizeof(golden_ac) / sizeof(golden_ac[0]); i++) {
		const struct golden_ac *g = &golden_ac[i];
		uint8_t buf[MAXMSG], exp[32];
		usmc_clc_msg m;
		const usmc_clc_accept_confirm *a = &m.u.ac;
		int len = load_vector(g->name, buf, sizeof(buf));

		fprintf(stderr, "  vector %s\n", g->name);
		CU_ASSERT_FATAL(len > 0);
		roundtrip_and_truncate(buf, (size_t)len, &m);
		USMC_ASSERT_EQ(m.hdr.eyecatcher, SMC_EYECATCHER);
		USMC_ASSERT_EQ(m.trailer, SMC_EYECATCHER);
		USMC_ASSERT_EQ(m.hdr.type, g->type);
		USMC_ASSERT_EQ(m.hdr.length, len);
		USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
		USMC_ASSERT_EQ(m.hdr.typev1, SMC_TYPE_R);
		USMC_ASSERT_EQ(!!(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK),
			       g->first_contact);
		for (int k = 0; k < 8; k++)
			USMC_ASSERT_EQ(a->peer_id[k],
				       (uint8_t)(g->peer_id >> (56 - 8 * k)));
		gid_v4(exp, g->gid[0], g->gid[1], g->gid[2], g->gid[3]);
		USMC_ASSERT_MEM_EQ(a->gid, exp, 16);
		USMC_ASSERT_EQ(a->mac[0], 0x52);
		USMC_ASSERT_EQ(a->mac[1], 0x54);
		USMC_ASSERT_EQ(a->mac[2], 0x00);
		USMC_ASSERT_EQ(a->mac[3], 0x00);
		USMC_ASSERT_EQ(a->mac[4], g->mac_last[0]);
		USMC_ASSERT_EQ(a->mac[5], g->mac_last[1]);
		USMC_ASSERT_EQ(a->qpn, g->qpn);
		USMC_ASSERT_EQ(a->rmb_rkey, g->rkey);
		USMC_ASSERT_EQ(a->rmbe_idx, 1);
		USMC_ASSERT_EQ(a->rmbe_alert_token, g->token);
		USMC_ASSERT_EQ(a->rmbe_size, 2); /* 64k */
		USMC_ASSERT_EQ(usmc_clc_uncompress_bufsize(a->rmbe_size),
			       65536);
		USMC_ASSERT_EQ(a->qp_mtu, 3); /* 1024 */
		CU_ASSERT(a->rmb_dma_addr == g->vaddr);
		USMC_ASSERT_EQ(a->psn, g->psn);
		padded(exp, "SEEDTEST");
		USMC_ASSERT_MEM_EQ(a->eid, exp, 32);
		if (g->first_contact) {
			CU_ASSERT(a->fce_v2x); /* 16 reserved bytes follow */
			CU_ASSERT(a->v2_direct);
			USMC_ASSERT_EQ(a->os_type, SMC_CLC_OS_LINUX);
			USMC_ASSERT_EQ(a->release, 0);
			padded(exp, "(none)");
			USMC_ASSERT_MEM_EQ(a->hostname, exp, 32);
			USMC_ASSERT_EQ(a->max_conns, 0);
			USMC_ASSERT_EQ(a->max_links, 0);
		}
		USMC_ASSERT_EQ(a->gid_cnt, g->gid_cnt);
		for (int k = 0; k < g->gid_cnt; k++) {
			gid_v4(exp, g->gids[k][0], g->gids[k][1], g->gids[k][2],
			       g->gids[k][3]);
			USMC_ASSERT_MEM_EQ(a->gids[k], exp, 16);
		}
	}
}

/* The one proposal all three captures share (client 10.9.0.2). */
static void test_golden_proposal(void)
{
	uint8_t buf[MAXMSG], exp[32], zero[40] = {0};
	usmc_clc_msg m;
	const usmc_clc_proposal *p = &m.u.prop;
	int len = load_vector("a07-proposal-v2", buf, sizeof(buf));

	CU_ASSERT_FATAL(len == 156);
	roundtrip_and_truncate(buf, (size_t)len, &m);
	USMC_ASSERT_EQ(m.hdr.type, SMC_CLC_PROPOSAL);
	USMC_ASSERT_EQ(m.hdr.length, 156);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
	USMC_ASSERT_EQ(m.hdr.typev2, SMC_TYPE_R);
	USMC_ASSERT_EQ(m.hdr.typev1, SMC_TYPE_N);
	USMC_ASSERT_MEM_EQ(p->peer_id, zero, 8);
	USMC_ASSERT_MEM_EQ(p->gid, zero, 16);
	USMC_ASSERT_MEM_EQ(p->mac, zero, 6);
	CU_ASSERT(!p->smcd_area); /* iparea_offset 0 */
	CU_ASSERT(p->ism_gid == 0);
	USMC_ASSERT_EQ(p->ism_chid, 0);
	USMC_ASSERT_EQ(p->eid_cnt, 1);
	USMC_ASSERT_EQ(p->ism_gid_cnt, 0);
	USMC_ASSERT_EQ(p->release, 0);
	CU_ASSERT(!p->seid);
	gid_v4(exp, 10, 9, 0, 2);
	USMC_ASSERT_MEM_EQ(p->roce_gid, exp, 16);
	USMC_ASSERT_EQ(p->max_conns, 0);
	USMC_ASSERT_EQ(p->max_links, 0);
	USMC_ASSERT_EQ(p->feature_mask, 0);
	padded(exp, "SEEDTEST");
	USMC_ASSERT_MEM_EQ(p->user_eids[0], exp, 32);
	/* tshark: "SMCv2 Extension Offset: 0x001c" at bytes 50-51. */
	USMC_ASSERT_EQ(buf[50], 0x00);
	USMC_ASSERT_EQ(buf[51], 0x1c);
}

/* v1 messages built from the RFC 7609 tables */

static const uint8_t prop_v1_52[] = {
	0xe2, 0xd4, 0xc3, 0xd9, /* eyecatcher SMCR */
	0x01,			/* type proposal */
	0x00, 0x34,		/* length 52 */
	0x10,			/* version 1, SMC-R */
	/* 8: sender peer id */
	0x12, 0x34, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
	/* 16: RoCE v1 GID fe80::211:22ff:fe33:4455 */
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44,
	0x55,
	/* 32: MAC */
	0x02, 0x11, 0x22, 0x33, 0x44, 0x55,
	/* 38: IP area offset 0 */
	0x00, 0x00,
	/* 40: IPv4 subnet 192.168.7.0 /24, reserved, no IPv6 prefixes */
	192, 168, 7, 0, 24, 0x00, 0x00, 0x00,
	/* 48: trailer */
	0xe2, 0xd4, 0xc3, 0xd9};

/* Linux 4.19+ v1 form: the 40-byte SMC-D area sits before the IP area,
 * here with two IPv6 prefixes: 40 + 40 + 8 + 2 * 17 + 4 = 126. */
static const uint8_t prop_v1_126[] = {
	0xe2, 0xd4, 0xc3, 0xd9, 0x01, 0x00, 0x7e, 0x13, /* v1, typev1 B */
	/* 8: peer id, GID, MAC */
	0x12, 0x34, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0xfe, 0x80, 0, 0, 0, 0,
	0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55, 0x02, 0x11, 0x22,
	0x33, 0x44, 0x55,
	/* 38: IP area offset 40 */
	0x00, 0x28,
	/* 40: ISM GID, CHID 0x0123, 2 bytes (v2 offset: 0 in v1), OUI, exp */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x01, 0x23, 0x00, 0x00,
	0xaa, 0xbb, 0xcc, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* 60: 20 reserved */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 80: IPv4 0.0.0.0/0, reserved, 2 IPv6 prefixes */
	0, 0, 0, 0, 0, 0, 0, 2,
	/* 88: 2001:db8:1::/64 */
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64,
	/* 105: fd00::/8 */
	0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8,
	/* 122: trailer */
	0xe2, 0xd4, 0xc3, 0xd9};

static const uint8_t accept_v1_68[] = {
	0xe2, 0xd4, 0xc3, 0xd9, 0x02, 0x00, 0x44, 0x18, /* v1, first contact */
	/* 8: peer id */
	0xab, 0xcd, 0x02, 0x66, 0x77, 0x88, 0x99, 0xaa,
	/* 16: GID */
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x66, 0x77, 0xff, 0xfe, 0x88, 0x99,
	0xaa,
	/* 32: MAC */
	0x02, 0x66, 0x77, 0x88, 0x99, 0xaa,
	/* 38: QPN 0x000123 */
	0x00, 0x01, 0x23,
	/* 41: rkey */
	0xde, 0xad, 0xbe, 0xef,
	/* 45: RMBE index */
	0x01,
	/* 46: alert token */
	0x00, 0x00, 0x00, 0x07,
	/* 50: RMBE size 5 (512k), MTU 5 (4096); reserved */
	0x55, 0x00,
	/* 52: RMB virtual address */
	0x00, 0x00, 0x7f, 0x12, 0x34, 0x56, 0x78, 0x00,
	/* 60: reserved, PSN 0xabcdef */
	0x00, 0xab, 0xcd, 0xef,
	/* 64: trailer */
	0xe2, 0xd4, 0xc3, 0xd9};

static const uint8_t decline_v1_28[] = {
	0xe2, 0xd4, 0xc3, 0xd9, 0x04, 0x00, 0x1c, 0x18, /* v1, out of sync */
	0xab, 0xcd, 0x02, 0x66, 0x77, 0x88, 0x99, 0xaa, /* peer id */
	0x04, 0x00, 0x00, 0x00,				/* SYNCERR */
	0x00, 0x00, 0x00, 0x00,				/* reserved */
	0xe2, 0xd4, 0xc3, 0xd9};

static const uint8_t decline_v2_44[] = {
	0xe2, 0xd4, 0xc3, 0xd9, 0x04, 0x00, 0x2c, 0x20, /* v2 */
	0xab, 0xcd, 0x02, 0x66, 0x77, 0x88, 0x99, 0xaa, /* peer id */
	0x03, 0x03, 0x00, 0x08,				/* NOUEID */
	0x20, 0x00, 0x00, 0x00,				/* OS Linux */
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, /* diagnosis */
	0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, /* info */
	0xe2, 0xd4, 0xc3, 0xd9};

static void test_v1_proposal(void)
{
	usmc_clc_msg m;
	const usmc_clc_proposal *p = &m.u.prop;
	const uint8_t pfx0[16] = {0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01};
	const uint8_t pfx1[16] = {0xfd};

	roundtrip_and_truncate(prop_v1_52, sizeof(prop_v1_52), &m);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V1);
	USMC_ASSERT_EQ(m.hdr.typev1, SMC_TYPE_R);
	CU_ASSERT(!p->smcd_area);
	USMC_ASSERT_MEM_EQ(p->peer_id, prop_v1_52 + 8, 8);
	USMC_ASSERT_MEM_EQ(p->gid, prop_v1_52 + 16, 16);
	USMC_ASSERT_MEM_EQ(p->mac, prop_v1_52 + 32, 6);
	USMC_ASSERT_EQ(p->ipv4_subnet, 0xc0a80700);
	USMC_ASSERT_EQ(p->ipv4_prefix_len, 24);
	USMC_ASSERT_EQ(p->ipv6_prefix_cnt, 0);

	roundtrip_and_truncate(prop_v1_126, sizeof(prop_v1_126), &m);
	USMC_ASSERT_EQ(m.hdr.typev1, SMC_TYPE_B);
	CU_ASSERT(p->smcd_area);
	CU_ASSERT(p->ism_gid == 0x0102030405060708ULL);
	USMC_ASSERT_EQ(p->ism_chid, 0x0123);
	USMC_ASSERT_EQ(p->vendor_oui[0], 0xaa);
	USMC_ASSERT_EQ(p->vendor_oui[2], 0xcc);
	USMC_ASSERT_EQ(p->ipv6_prefix_cnt, 2);
	USMC_ASSERT_MEM_EQ(p->ipv6_prefixes[0].prefix, pfx0, 16);
	USMC_ASSERT_EQ(p->ipv6_prefixes[0].prefix_len, 64);
	USMC_ASSERT_MEM_EQ(p->ipv6_prefixes[1].prefix, pfx1, 16);
	USMC_ASSERT_EQ(p->ipv6_prefixes[1].prefix_len, 8);
}

/* The 92-byte form: SMC-D area, IPv4 only. Built by patching the
 * 126-byte message: length 92, no IPv6 prefixes, trailer moved. */
static void test_v1_proposal_92(void)
{
	uint8_t b[92];
	usmc_clc_msg m;

	memcpy(b, prop_v1_126, 88);
	b[6] = 92;
	b[7] = 0x10; /* SMC-R only */
	memcpy(b + 80, (const uint8_t[]){10, 1, 2, 0, 24, 0, 0, 0}, 8);
	memcpy(b + 88, prop_v1_52 + 48, 4);
	roundtrip_and_truncate(b, sizeof(b), &m);
	CU_ASSERT(m.u.prop.smcd_area);
	USMC_ASSERT_EQ(m.u.prop.ipv4_subnet, 0x0a010200);
	USMC_ASSERT_EQ(m.u.prop.ipv4_prefix_len, 24);
}

static void test_v1_accept_confirm(void)
{
	uint8_t b[68];
	usmc_clc_msg m;
	const usmc_clc_accept_confirm *a = &m.u.ac;

	roundtrip_and_truncate(accept_v1_68, sizeof(accept_v1_68), &m);
	USMC_ASSERT_EQ(m.hdr.type, SMC_CLC_ACCEPT);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V1);
	CU_ASSERT(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	USMC_ASSERT_MEM_EQ(a->peer_id, accept_v1_68 + 8, 8);
	USMC_ASSERT_MEM_EQ(a->gid, accept_v1_68 + 16, 16);
	USMC_ASSERT_MEM_EQ(a->mac, accept_v1_68 + 32, 6);
	USMC_ASSERT_EQ(a->qpn, 0x123);
	USMC_ASSERT_EQ(a->rmb_rkey, 0xdeadbeef);
	USMC_ASSERT_EQ(a->rmbe_idx, 1);
	USMC_ASSERT_EQ(a->rmbe_alert_token, 7);
	USMC_ASSERT_EQ(a->rmbe_size, 5);
	USMC_ASSERT_EQ(usmc_clc_uncompress_bufsize(a->rmbe_size), 512 * 1024);
	USMC_ASSERT_EQ(a->qp_mtu, 5);
	CU_ASSERT(a->rmb_dma_addr == 0x00007f1234567800ULL);
	USMC_ASSERT_EQ(a->psn, 0xabcdef);

	/* The same as a Confirm, not first contact. */
	memcpy(b, accept_v1_68, sizeof(b));
	b[4] = SMC_CLC_CONFIRM;
	b[7] = 0x10;
	roundtrip_and_truncate(b, sizeof(b), &m);
	USMC_ASSERT_EQ(m.hdr.type, SMC_CLC_CONFIRM);
	CU_ASSERT(!(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK));
}

static void test_decline(void)
{
	usmc_clc_msg m;

	roundtrip_and_truncate(decline_v1_28, sizeof(decline_v1_28), &m);
	USMC_ASSERT_EQ(m.hdr.type, SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V1);
	CU_ASSERT(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK); /* out of sync */
	USMC_ASSERT_MEM_EQ(m.u.decl.peer_id, decline_v1_28 + 8, 8);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_SYNCERR);

	roundtrip_and_truncate(decline_v2_44, sizeof(decline_v2_44), &m);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_NOUEID);
	USMC_ASSERT_EQ(m.u.decl.os_type, SMC_CLC_OS_LINUX);
	for (unsigned int i = 0; i < 4; i++)
		USMC_ASSERT_EQ(m.u.decl.diag_info[i], i + 1);
}

/* Declines built like Linux's equal the hand-built bytes. */
static void test_decline_init(void)
{
	uint8_t out[64], exp[44];
	usmc_clc_msg m;

	usmc_clc_decline_init(&m, SMC_CLC_DECL_SYNCERR, SMC_V1,
			      decline_v1_28 + 8);
	USMC_ASSERT_EQ_FATAL(usmc_clc_encode(&m, out, sizeof(out)), 28);
	USMC_ASSERT_MEM_EQ(out, decline_v1_28, 28);

	memcpy(exp, decline_v2_44, 44);
	memset(exp + 24, 0, 16); /* Linux sends no additional diagnosis */
	usmc_clc_decline_init(&m, SMC_CLC_DECL_NOUEID, 3, decline_v2_44 + 8);
	USMC_ASSERT_EQ_FATAL(usmc_clc_encode(&m, out, sizeof(out)), 44);
	USMC_ASSERT_MEM_EQ(out, exp, 44);

	/* No system id: zero, and no out-of-sync flag for other codes. */
	usmc_clc_decline_init(&m, SMC_CLC_DECL_PEERNOSMC, SMC_V1, NULL);
	USMC_ASSERT_EQ_FATAL(usmc_clc_encode(&m, out, sizeof(out)), 28);
	USMC_ASSERT_EQ(out[7], 0x10);
	USMC_ASSERT_EQ(out[8] | out[15], 0);
	USMC_ASSERT_EQ(out[16] << 24 | out[17] << 16, 0x03010000);
}

/* Malformed input: one field at a time, each with its named error. */

static usmc_ssize decode_patched(const uint8_t *src, size_t len, size_t off,
				 uint8_t val)
{
	uint8_t b[MAXMSG];
	usmc_clc_msg m;

	memcpy(b, src, len);
	b[off] = val;
	return decode_exact(b, len, &m);
}

static void test_bad_header(void)
{
	usmc_clc_hdr h;
	const uint8_t *d = decline_v1_28;
	size_t n = sizeof(decline_v1_28);

	USMC_ASSERT_EQ(usmc_clc_hdr_peek(d, 8, &h), 0);
	USMC_ASSERT_EQ(h.length, 28);
	USMC_ASSERT_EQ(usmc_clc_hdr_peek(d, 7, &h), USMC_ERR_TRUNCATED);
	USMC_ASSERT_EQ(decode_patched(d, n, 0, 0xe3), USMC_ERR_BAD_EYECATCHER);
	USMC_ASSERT_EQ(decode_patched(d, n, 3, 0xc4), 28); /* SMCD is fine */
	USMC_ASSERT_EQ(decode_patched(d, n, 27, 0xc4), 28);
	USMC_ASSERT_EQ(decode_patched(d, n, 27, 0x00), USMC_ERR_BAD_EYECATCHER);
	USMC_ASSERT_EQ(decode_patched(d, n, 4, 0), USMC_ERR_BAD_TYPE);
	USMC_ASSERT_EQ(decode_patched(d, n, 4, 5), USMC_ERR_BAD_TYPE);
	USMC_ASSERT_EQ(decode_patched(d, n, 7, 0x08), USMC_ERR_BAD_VERSION);
	/* Declines are exactly 28 (v1) or 44 (v2) bytes. */
	USMC_ASSERT_EQ(decode_patched(d, n, 6, 27), USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(d, n, 6, 29), USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(d, n, 7, 0x20), USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(d, n, 5, 1), USMC_ERR_BAD_LENGTH);
	/* Accept/Confirm: v1 exactly 68; must name type R or D. */
	USMC_ASSERT_EQ(decode_patched(accept_v1_68, 68, 6, 69),
		       USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(accept_v1_68, 68, 7, 0x1a),
		       USMC_ERR_BAD_VALUE);
	USMC_ASSERT_EQ(decode_patched(accept_v1_68, 68, 7, 0x1b),
		       USMC_ERR_BAD_VALUE);
	/* An SMC-D Accept with a zero DMB token: no DMB to attach. */
	{
		uint8_t b[48];
		usmc_clc_msg m;

		memcpy(b, accept_v1_68, 44);
		memcpy(b + 44, accept_v1_68 + 64, 4);
		b[3] = 0xc4;
		b[6] = 48;
		b[7] = 0x19;
		memset(b + 16, 0, 8);
		USMC_ASSERT_EQ(usmc_clc_hdr_peek(b, 8, &h), 0);
		USMC_ASSERT_EQ(decode_exact(b, 48, &m), USMC_ERR_BAD_VALUE);
	}
	/* Proposal lengths beyond any real proposal. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 5, 0x04),
		       USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 6, 51),
		       USMC_ERR_BAD_LENGTH);
}

static void test_bad_accept_values(void)
{
	const uint8_t *a = accept_v1_68;

	/* QP MTU is 1..5. */
	USMC_ASSERT_EQ(decode_patched(a, 68, 50, 0x50), USMC_ERR_BAD_VALUE);
	USMC_ASSERT_EQ(decode_patched(a, 68, 50, 0x56), USMC_ERR_BAD_VALUE);
	USMC_ASSERT_EQ(decode_patched(a, 68, 50, 0xf1), 68);
	/* RMBE index and alert token are non-zero, so is the QPN. */
	USMC_ASSERT_EQ(decode_patched(a, 68, 45, 0), USMC_ERR_BAD_VALUE);
	USMC_ASSERT_EQ(decode_patched(a, 68, 49, 0), USMC_ERR_BAD_VALUE);
	{
		uint8_t b[68];
		usmc_clc_msg m;

		memcpy(b, a, 68);
		b[38] = b[39] = b[40] = 0;
		USMC_ASSERT_EQ(decode_exact(b, 68, &m), USMC_ERR_BAD_VALUE);
		/* 24-bit fields take their full range. */
		b[38] = b[39] = b[40] = 0xff;
		b[61] = b[62] = b[63] = 0xff;
		USMC_ASSERT_EQ(decode_exact(b, 68, &m), 68);
		USMC_ASSERT_EQ(m.u.ac.qpn, 0xffffff);
		USMC_ASSERT_EQ(m.u.ac.psn, 0xffffff);
	}
}

static void test_bad_v2_accept_confirm(void)
{
	uint8_t b[MAXMSG];
	usmc_clc_msg m;
	int len = load_vector("a11-confirm-v2-fc", b, sizeof(b));

	CU_ASSERT_FATAL(len == 180);
	/* GID list count no longer matching the length. */
	b[156] = 2;
	USMC_ASSERT_EQ(decode_exact(b, 180, &m), USMC_ERR_BAD_LENGTH);
	b[156] = 1;
	/* First contact bit cleared: the extension becomes excess. */
	b[7] = 0x20;
	USMC_ASSERT_EQ(decode_exact(b, 180, &m), USMC_ERR_BAD_LENGTH);
	b[7] = 0x28;
	/* An Accept with first contact has a 36- or 52-byte extension. */
	len = load_vector("a09-accept-v2-fc", b, sizeof(b));
	CU_ASSERT_FATAL(len == 160);
	b[6] = 150;
	memcpy(b + 146, b + 156, 4);
	USMC_ASSERT_EQ(decode_exact(b, 150, &m), USMC_ERR_BAD_LENGTH);
	/* Too short for a v2 Accept. */
	b[6] = 104;
	USMC_ASSERT_EQ(decode_exact(b, 104, &m), USMC_ERR_BAD_LENGTH);
	/* SMC-R has no 36-byte (SMC-D release 0) extension form. */
	len = load_vector("a09-accept-v2-fc", b, sizeof(b));
	b[6] = 144;
	memcpy(b + 140, b + 156, 4);
	USMC_ASSERT_EQ(decode_exact(b, 144, &m), USMC_ERR_BAD_LENGTH);
	/* More GIDs than the list may hold. */
	len = load_vector("a11-confirm-v2-fc", b, sizeof(b));
	b[156] = 9;
	USMC_ASSERT_EQ(decode_exact(b, 180, &m), USMC_ERR_BAD_COUNT);
}

static void test_bad_proposal(void)
{
	uint8_t b[MAXMSG];
	usmc_clc_msg m;
	int len;

	/* v1 proposal must offer something. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 7, 0x12),
		       USMC_ERR_BAD_VALUE);
	/* IP area offset: 0 or 40 only. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 39, 4),
		       USMC_ERR_BAD_OFFSET);
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 39, 41),
		       USMC_ERR_BAD_OFFSET);
	/* Offset 40 with no room for the SMC-D area. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 39, 40),
		       USMC_ERR_BAD_LENGTH);
	/* SMC-D offered in v1 without the SMC-D area. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 7, 0x11),
		       USMC_ERR_BAD_OFFSET);
	/* IPv4 prefix length over 32. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 44, 33),
		       USMC_ERR_BAD_VALUE);
	/* IPv6 prefix count: over 8, or not matching the length. */
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 47, 9),
		       USMC_ERR_BAD_COUNT);
	USMC_ASSERT_EQ(decode_patched(prop_v1_52, 52, 47, 1),
		       USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(prop_v1_126, 126, 87, 1),
		       USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(prop_v1_126, 126, 87, 3),
		       USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(prop_v1_126, 126, 104, 129),
		       USMC_ERR_BAD_VALUE);

	len = load_vector("a07-proposal-v2", b, sizeof(b));
	CU_ASSERT_FATAL(len == 156);
	/* EID count over 8, or not matching the length. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 80, 9), USMC_ERR_BAD_COUNT);
	USMC_ASSERT_EQ(decode_patched(b, 156, 80, 2), USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(decode_patched(b, 156, 80, 0), USMC_ERR_BAD_LENGTH);
	/* ISM GIDs without SMC-D offered. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 81, 1), USMC_ERR_BAD_COUNT);
	/* v2 extension offset other than where the extension is. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 51, 0x1d), USMC_ERR_BAD_OFFSET);
	USMC_ASSERT_EQ(decode_patched(b, 156, 51, 0x00), USMC_ERR_BAD_OFFSET);
	USMC_ASSERT_EQ(decode_patched(b, 156, 50, 0x01), USMC_ERR_BAD_OFFSET);
	/* SMC-Dv2 extension offset without SMC-Dv2. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 87, 0x20), USMC_ERR_BAD_OFFSET);
	/* v2 with v1 R offered needs iparea_offset 40. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 7, 0x20), USMC_ERR_BAD_OFFSET);
	/* Nothing offered for v2 but an extension offset. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 7, 0x2a), USMC_ERR_BAD_OFFSET);
	/* Header length beyond the buffer. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 6, 0x9d), USMC_ERR_TRUNCATED);
	/* Trailer must be an eyecatcher. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 155, 0xd8),
		       USMC_ERR_BAD_EYECATCHER);
	/* Reserved bytes are ignored, as Linux ignores them. */
	USMC_ASSERT_EQ(decode_patched(b, 156, 60, 0xff), 156);
	(void)m;
}

/* Encoder computes lengths and offsets; SMC-D areas decode again. */
static void test_encode_builds_offsets(void)
{
	usmc_clc_msg m, d;
	usmc_clc_proposal *p = &m.u.prop;
	uint8_t out[MAXMSG];
	usmc_ssize n;

	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_PROPOSAL;
	m.hdr.version = SMC_V2;
	m.hdr.typev1 = SMC_TYPE_R;
	m.hdr.typev2 = SMC_TYPE_B;
	p->ipv4_subnet = 0x0a090000;
	p->ipv4_prefix_len = 16;
	p->ipv6_prefix_cnt = 2;
	p->ipv6_prefixes[0].prefix_len = 64;
	p->ipv6_prefixes[1].prefix_len = 48;
	p->eid_cnt = 2;
	padded(p->user_eids[0], "EID-ONE");
	padded(p->user_eids[1], "EID.TWO");
	p->release = SMC_RELEASE_1;
	p->max_conns = 255;
	p->max_links = 2;
	p->ism_gid_cnt = 3;
	for (int i = 0; i < 3; i++) {
		p->ism_gids[i].gid = 0x1000ULL + (uint64_t)i;
		p->ism_gids[i].chid = (uint16_t)(0xff00 + i);
	}
	n = usmc_clc_encode(&m, out, sizeof(out));
	/* 40 + 40 + 8 + 34 + 40 + 64 + 48 + 30 + 4 */
	USMC_ASSERT_EQ_FATAL(n, 308);
	USMC_ASSERT_EQ(out[5] << 8 | out[6], 308);
	USMC_ASSERT_EQ(out[7], 0x2c);
	USMC_ASSERT_EQ(out[38] << 8 | out[39], 40); /* iparea_offset */
	/* v2 ext at 80 + 8 + 34 = 122: offset from byte 52 */
	USMC_ASSERT_EQ(out[50] << 8 | out[51], 122 - 52);
	USMC_ASSERT_EQ(out[122], 2);			   /* eid count */
	USMC_ASSERT_EQ(out[123], 3);			   /* ism gid count */
	USMC_ASSERT_EQ(out[125], 0x10);			   /* release 1 */
	USMC_ASSERT_EQ(out[128] << 8 | out[129], 32 + 64); /* SMC-Dv2 ext */
	USMC_ASSERT_EQ(out[146], 255);
	USMC_ASSERT_EQ(out[147], 2);
	USMC_ASSERT_MEM_EQ(out + 162, p->user_eids[0], 32);
	USMC_ASSERT_EQ(out[274], 0x00); /* first GID/CHID pair at 274 */
	USMC_ASSERT_EQ(out[281], 0x00);
	USMC_ASSERT_EQ(out[282], 0xff);
	USMC_ASSERT_EQ(out[283], 0x00);
	USMC_ASSERT_EQ(out[280], 0x10);
	USMC_ASSERT_EQ(out[304], 0xe2);
	USMC_ASSERT_EQ(decode_exact(out, (size_t)n, &d), n);
	USMC_ASSERT_EQ(d.u.prop.ism_gid_cnt, 3);
	CU_ASSERT(d.u.prop.ism_gids[2].gid == 0x1002);
	USMC_ASSERT_EQ(d.u.prop.ism_gids[2].chid, 0xff02);
	USMC_ASSERT_MEM_EQ(d.u.prop.user_eids[1], p->user_eids[1], 32);
	roundtrip_and_truncate(out, (size_t)n, &d);

	/* Limits the encoder refuses. */
	p->eid_cnt = 9;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);
	p->eid_cnt = 2;
	p->ipv6_prefix_cnt = 9;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);
	p->ipv6_prefix_cnt = 2;
	m.hdr.type = 9;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);
	m.hdr.type = SMC_CLC_PROPOSAL;
	m.hdr.version = 0;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);

	/* A v2 first-contact Confirm built from fields: the encoder writes
	 * the 52-byte extension and the GID list after it. */
	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_CONFIRM;
	m.hdr.version = SMC_V2;
	m.hdr.typev2 = SMC_FIRST_CONTACT_MASK;
	m.u.ac.qpn = 0x11;
	m.u.ac.rmbe_idx = 1;
	m.u.ac.rmbe_alert_token = 1;
	m.u.ac.qp_mtu = 3;
	m.u.ac.release = SMC_RELEASE_1;
	m.u.ac.max_conns = 255;
	m.u.ac.max_links = 2;
	m.u.ac.feature_mask = SMC_SPF_EMULATED_ISM_DEV;
	m.u.ac.vendor_exp_options = 0x01020304;
	m.u.ac.gid_cnt = 1;
	gid_v4(m.u.ac.gids[0], 0, 0, 0, 0); /* all zero, like the FCE tail */
	n = usmc_clc_encode(&m, out, sizeof(out));
	USMC_ASSERT_EQ_FATAL(n, 108 + 52 + 4 + 16);
	USMC_ASSERT_EQ(out[105], 0x01); /* OS 0, release 1 */
	USMC_ASSERT_EQ(out[140], 255);
	USMC_ASSERT_EQ(out[141], 2);
	USMC_ASSERT_EQ(out[143], 0x01);
	USMC_ASSERT_EQ(out[147], 0x04);
	USMC_ASSERT_EQ(out[156], 1); /* GID count right after the FCE */
	USMC_ASSERT_EQ(decode_exact(out, (size_t)n, &d), n);
	CU_ASSERT(d.u.ac.fce_v2x);
	USMC_ASSERT_EQ(d.u.ac.release, SMC_RELEASE_1);
	USMC_ASSERT_EQ(d.u.ac.max_conns, 255);
	USMC_ASSERT_EQ(d.u.ac.max_links, 2);
	USMC_ASSERT_EQ(d.u.ac.feature_mask, SMC_SPF_EMULATED_ISM_DEV);
	USMC_ASSERT_EQ(d.u.ac.vendor_exp_options, 0x01020304);
	USMC_ASSERT_EQ(d.u.ac.gid_cnt, 1);
	roundtrip_and_truncate(out, (size_t)n, &d);
	m.u.ac.qp_mtu = 6;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);
	m.u.ac.qp_mtu = 3;
	m.u.ac.qpn = 0x1000000;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);
}

/* Server classification */

static const uint8_t local_ueids[2][SMC_MAX_EID_LEN] = {
	"OTHER                           ",
	"SEEDTEST                        ",
};

static usmc_clc_srv_caps caps_v1v2(void)
{
	usmc_clc_srv_caps c = {
		.smcr_v1 = true,
		.smcr_v2 = true,
		.prefix_match = true,
		.ueids = local_ueids,
		.ueid_cnt = 2,
		.max_conns = 255,
		.max_links = 2,
	};
	return c;
}

static void test_classify_smcd_only(void)
{
	uint8_t b[MAXMSG];
	usmc_clc_msg m;
	usmc_clc_srv_caps c = caps_v1v2();
	usmc_clc_srv_choice ch;

	/* v1 header offering SMC-D only (92-byte form). */
	memcpy(b, prop_v1_126, 88);
	b[6] = 92;
	b[7] = 0x11;
	memcpy(b + 80, (const uint8_t[]){10, 1, 2, 0, 24, 0, 0, 0}, 8);
	memcpy(b + 88, prop_v1_52 + 48, 4);
	USMC_ASSERT_EQ_FATAL(decode_exact(b, 92, &m), 92);
	USMC_ASSERT_EQ(m.hdr.typev1, SMC_TYPE_D);
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_NOSMCDDEV);
	/* ... and with a subnet mismatch, the prefix error comes first. */
	c.prefix_match = false;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_DIFFPREFIX);
	c.prefix_match = true;

	/* v2 header, SMC-Dv2 only, built by the encoder. */
	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_PROPOSAL;
	m.hdr.version = SMC_V2;
	m.hdr.typev1 = SMC_TYPE_N;
	m.hdr.typev2 = SMC_TYPE_D;
	m.u.prop.eid_cnt = 1;
	padded(m.u.prop.user_eids[0], "SEEDTEST");
	m.u.prop.ism_gid_cnt = 1;
	m.u.prop.ism_gids[0].gid = 0xabcdef;
	{
		usmc_ssize n = usmc_clc_encode(&m, b, sizeof(b));

		USMC_ASSERT_EQ_FATAL(n, 40 + 40 + 40 + 32 + 48 + 10 + 4);
		USMC_ASSERT_EQ_FATAL(decode_exact(b, (size_t)n, &m), n);
	}
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_NOISM2SUPP);
	/* SMC-D offered for v1 and v2: the v1 SMC-D search fails. */
	m.hdr.typev1 = SMC_TYPE_D;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_NOSMCDDEV);
}

static void test_classify_smcr(void)
{
	uint8_t b[MAXMSG], exp[32];
	usmc_clc_msg m;
	usmc_clc_srv_caps c = caps_v1v2();
	usmc_clc_srv_choice ch;
	int len = load_vector("a07-proposal-v2", b, sizeof(b));

	CU_ASSERT_FATAL(len == 156);
	USMC_ASSERT_EQ_FATAL(decode_exact(b, 156, &m), 156);
	/* The kernel's own proposal, to a server sharing its UEID. */
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch), 0);
	USMC_ASSERT_EQ(ch.version, SMC_V2);
	USMC_ASSERT_EQ(ch.release, 0);
	USMC_ASSERT_EQ(ch.max_conns, SMC_CONN_PER_LGR_MAX);
	USMC_ASSERT_EQ(ch.max_links, SMC_LINKS_ADD_LNK_MAX);
	padded(exp, "SEEDTEST");
	USMC_ASSERT_MEM_EQ(ch.eid, exp, 32);
	/* No common UEID: no v1 offered, so no device fits. */
	c.ueid_cnt = 1;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_NOSMCDEV);
	c.ueid_cnt = 2;
	/* No RoCEv2 device. */
	c.smcr_v2 = false;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_NOSMCRDEV);
	c.smcr_v2 = true;
	/* A v2 offer without any EID. */
	m.u.prop.eid_cnt = 0;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch), SMC_CLC_DECL_NOUEID);
	m.u.prop.eid_cnt = 1;
	/* v2.1: limits negotiated down, too low ones declined. */
	m.u.prop.release = SMC_RELEASE_1;
	m.u.prop.max_conns = 200;
	m.u.prop.max_links = 2;
	c.max_links = 1;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch), 0);
	USMC_ASSERT_EQ(ch.release, SMC_RELEASE_1);
	USMC_ASSERT_EQ(ch.max_conns, 200);
	USMC_ASSERT_EQ(ch.max_links, 1);
	m.u.prop.release = 3; /* a later release is answered with ours */
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch), 0);
	USMC_ASSERT_EQ(ch.release, SMC_RELEASE);
	m.u.prop.max_conns = 15;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_MAXCONNERR);
	m.u.prop.max_conns = 16;
	m.u.prop.max_links = 0;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_MAXLINKERR);

	/* Pure v1 SMC-R. */
	USMC_ASSERT_EQ_FATAL(decode_exact(prop_v1_52, 52, &m), 52);
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch), 0);
	USMC_ASSERT_EQ(ch.version, SMC_V1);
	c.prefix_match = false;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_DIFFPREFIX);
	c.prefix_match = true;
	c.smcr_v1 = false;
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch),
		       SMC_CLC_DECL_NOSMCDEV);
	/* Not a proposal. */
	USMC_ASSERT_EQ_FATAL(decode_exact(decline_v1_28, 28, &m), 28);
	USMC_ASSERT_EQ(usmc_clc_srv_classify(&m, &c, &ch), SMC_CLC_DECL_INTERR);
}

/* The kernel's own exchange passes both checks; changed fields do not. */
static void test_client_and_confirm_checks(void)
{
	uint8_t b[MAXMSG], exp[32];
	usmc_clc_msg prop, acc, conf;
	usmc_clc_srv_choice ch, agreed;

	USMC_ASSERT_EQ_FATAL(load_vector("a07-proposal-v2", b, sizeof(b)), 156);
	USMC_ASSERT_EQ_FATAL(decode_exact(b, 156, &prop), 156);
	USMC_ASSERT_EQ_FATAL(load_vector("a09-accept-v2-fc", b, sizeof(b)),
			     160);
	USMC_ASSERT_EQ_FATAL(decode_exact(b, 160, &acc), 160);
	USMC_ASSERT_EQ_FATAL(load_vector("a11-confirm-v2-fc", b, sizeof(b)),
			     180);
	USMC_ASSERT_EQ_FATAL(decode_exact(b, 180, &conf), 180);

	USMC_ASSERT_EQ(usmc_clc_clnt_check_accept(&prop, &acc, &ch), 0);
	USMC_ASSERT_EQ(ch.version, SMC_V2);
	USMC_ASSERT_EQ(ch.release, 0);
	padded(exp, "SEEDTEST");
	USMC_ASSERT_MEM_EQ(ch.eid, exp, 32);
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&ch, &conf), 0);

	/* v2 Accept to a proposal that offered no v2 SMC-R. */
	prop.hdr.typev2 = SMC_TYPE_D;
	USMC_ASSERT_EQ(usmc_clc_clnt_check_accept(&prop, &acc, &ch),
		       SMC_CLC_DECL_MODEUNSUPP);
	prop.hdr.typev2 = SMC_TYPE_R;
	/* v1 Accept when v1 was not offered (typev1 N). */
	acc.hdr.version = SMC_V1;
	USMC_ASSERT_EQ(usmc_clc_clnt_check_accept(&prop, &acc, &ch),
		       SMC_CLC_DECL_MODEUNSUPP);
	acc.hdr.version = SMC_V2;
	/* Release 1: the limits are checked. */
	acc.u.ac.release = SMC_RELEASE_1;
	acc.u.ac.max_links = 3;
	acc.u.ac.max_conns = 255;
	USMC_ASSERT_EQ(usmc_clc_clnt_check_accept(&prop, &acc, &ch),
		       SMC_CLC_DECL_MAXLINKERR);
	acc.u.ac.max_links = 1;
	acc.u.ac.max_conns = 15;
	USMC_ASSERT_EQ(usmc_clc_clnt_check_accept(&prop, &acc, &ch),
		       SMC_CLC_DECL_MAXCONNERR);
	acc.u.ac.max_conns = 100;
	USMC_ASSERT_EQ(usmc_clc_clnt_check_accept(&prop, &acc, &ch), 0);
	USMC_ASSERT_EQ(ch.release, SMC_RELEASE_1);
	USMC_ASSERT_EQ(ch.max_conns, 100);
	USMC_ASSERT_EQ(ch.max_links, 1);

	/* The Confirm must repeat what was agreed. */
	agreed = ch;
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&agreed, &conf),
		       SMC_CLC_DECL_RELEASEERR);
	conf.u.ac.release = SMC_RELEASE_1;
	conf.u.ac.max_conns = 100;
	conf.u.ac.max_links = 2;
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&agreed, &conf),
		       SMC_CLC_DECL_MAXLINKERR);
	conf.u.ac.max_links = 1;
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&agreed, &conf), 0);
	conf.u.ac.max_conns = 99;
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&agreed, &conf),
		       SMC_CLC_DECL_MAXCONNERR);
	/* Not first contact: nothing to check. */
	conf.hdr.typev2 = 0;
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&agreed, &conf), 0);
	USMC_ASSERT_EQ(usmc_clc_srv_check_confirm(&agreed, &prop),
		       SMC_CLC_DECL_INTERR);
}

static void test_prefix_match(void)
{
	usmc_clc_msg m;
	usmc_clc_local_prefix l[2];

	memset(l, 0, sizeof(l));
	USMC_ASSERT_EQ_FATAL(decode_exact(prop_v1_52, 52, &m), 52);
	/* 192.168.7.0/24 */
	memcpy(l[0].addr, (const uint8_t[]){192, 168, 7, 99}, 4);
	l[0].prefix_len = 24;
	CU_ASSERT(usmc_clc_prefix_match(&m.u.prop, l, 1));
	l[0].prefix_len = 16;
	CU_ASSERT(!usmc_clc_prefix_match(&m.u.prop, l, 1));
	l[0].prefix_len = 24;
	l[0].addr[2] = 8;
	CU_ASSERT(!usmc_clc_prefix_match(&m.u.prop, l, 1));
	CU_ASSERT(!usmc_clc_prefix_match(&m.u.prop, l, 0));

	USMC_ASSERT_EQ_FATAL(decode_exact(prop_v1_126, 126, &m), 126);
	l[1].is_v6 = true;
	memcpy(l[1].addr,
	       (const uint8_t[]){0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0,
				 0, 0, 0, 0x42},
	       16);
	l[1].prefix_len = 64;
	CU_ASSERT(usmc_clc_prefix_match(&m.u.prop, l, 2));
	l[1].addr[5] = 2;
	CU_ASSERT(!usmc_clc_prefix_match(&m.u.prop, l, 2));
	/* fd00::/8 matches any fdXX: address with a /8. */
	l[1].addr[0] = 0xfd;
	l[1].prefix_len = 8;
	CU_ASSERT(usmc_clc_prefix_match(&m.u.prop, l, 2));
}

static void test_bufsize(void)
{
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(0, SMCR_RMBE_SIZES), 0);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(16384, SMCR_RMBE_SIZES), 0);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(16385, SMCR_RMBE_SIZES), 1);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(32768, SMCR_RMBE_SIZES), 1);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(65536, SMCR_RMBE_SIZES), 2);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(65537, SMCR_RMBE_SIZES), 3);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(1u << 20, USMC_RFC_RMBE_SIZES),
		       5);
	USMC_ASSERT_EQ(usmc_clc_compress_bufsize(1ULL << 40, SMCR_RMBE_SIZES),
		       15);
	USMC_ASSERT_EQ(usmc_clc_uncompress_bufsize(0), 16384);
	USMC_ASSERT_EQ(usmc_clc_uncompress_bufsize(15), 512u << 20);
	USMC_ASSERT_EQ(usmc_clc_uncompress_bufsize(0x12), 65536);
	for (uint8_t c = 0; c <= SMCR_RMBE_SIZES; c++) {
		uint32_t size = usmc_clc_uncompress_bufsize(c);

		USMC_ASSERT_EQ(size, 16384u << c);
		USMC_ASSERT_EQ(usmc_clc_compress_bufsize(size, SMCR_RMBE_SIZES),
			       c);
		if (c)
			USMC_ASSERT_EQ(usmc_clc_compress_bufsize(
					       size / 2 + 1, SMCR_RMBE_SIZES),
				       c);
	}
}

static const struct {
	uint32_t code;
	const char *name;
} decl_codes[] = {
	{SMC_CLC_DECL_MEM, "MEM"},
	{SMC_CLC_DECL_TIMEOUT_CL, "TIMEOUT_CL"},
	{SMC_CLC_DECL_TIMEOUT_AL, "TIMEOUT_AL"},
	{SMC_CLC_DECL_CNFERR, "CNFERR"},
	{SMC_CLC_DECL_PEERNOSMC, "PEERNOSMC"},
	{SMC_CLC_DECL_IPSEC, "IPSEC"},
	{SMC_CLC_DECL_NOSMCDEV, "NOSMCDEV"},
	{SMC_CLC_DECL_NOSMCDDEV, "NOSMCDDEV"},
	{SMC_CLC_DECL_NOSMCRDEV, "NOSMCRDEV"},
	{SMC_CLC_DECL_NOISM2SUPP, "NOISM2SUPP"},
	{SMC_CLC_DECL_NOV2EXT, "NOV2EXT"},
	{SMC_CLC_DECL_NOV2DEXT, "NOV2DEXT"},
	{SMC_CLC_DECL_NOSEID, "NOSEID"},
	{SMC_CLC_DECL_NOSMCD2DEV, "NOSMCD2DEV"},
	{SMC_CLC_DECL_NOUEID, "NOUEID"},
	{SMC_CLC_DECL_RELEASEERR, "RELEASEERR"},
	{SMC_CLC_DECL_MAXCONNERR, "MAXCONNERR"},
	{SMC_CLC_DECL_MAXLINKERR, "MAXLINKERR"},
	{SMC_CLC_DECL_MODEUNSUPP, "MODEUNSUPP"},
	{SMC_CLC_DECL_RMBE_EC, "RMBE_EC"},
	{SMC_CLC_DECL_OPTUNSUPP, "OPTUNSUPP"},
	{SMC_CLC_DECL_DIFFPREFIX, "DIFFPREFIX"},
	{SMC_CLC_DECL_GETVLANERR, "GETVLANERR"},
	{SMC_CLC_DECL_ISMVLANERR, "ISMVLANERR"},
	{SMC_CLC_DECL_NOACTLINK, "NOACTLINK"},
	{SMC_CLC_DECL_NOSRVLINK, "NOSRVLINK"},
	{SMC_CLC_DECL_VERSMISMAT, "VERSMISMAT"},
	{SMC_CLC_DECL_MAX_DMB, "MAX_DMB"},
	{SMC_CLC_DECL_NOROUTE, "NOROUTE"},
	{SMC_CLC_DECL_NOINDIRECT, "NOINDIRECT"},
	{SMC_CLC_DECL_SYNCERR, "SYNCERR"},
	{SMC_CLC_DECL_PEERDECL, "PEERDECL"},
	{SMC_CLC_DECL_INTERR, "INTERR"},
	{SMC_CLC_DECL_ERR_RTOK, "ERR_RTOK"},
	{SMC_CLC_DECL_ERR_RDYLNK, "ERR_RDYLNK"},
	{SMC_CLC_DECL_ERR_REGBUF, "ERR_REGBUF"},
	{SMC_CLC_DECL_TIMEOUT, "TIMEOUT"},
	{SMC_CLC_DECL_TCL, "TCL"},
	{SMC_CLC_DECL_REPLY, "REPLY"},
	{SMC_CLC_DECL_SEND, "SEND"},
	{SMC_CLC_DECL_INTERR_LEGACY, "INTERR_LEGACY"},
};

static void test_decl_names(void)
{
	size_t n = sizeof(decl_codes) / sizeof(decl_codes[0]);

	/* Wire values of the kernel's SMC_CLC_DECL_* (net/smc/smc_clc.h). */
	USMC_ASSERT_EQ(SMC_CLC_DECL_PEERNOSMC, 0x03010000);
	USMC_ASSERT_EQ(SMC_CLC_DECL_MAXLINKERR, 0x0303000b);
	USMC_ASSERT_EQ(SMC_CLC_DECL_NOINDIRECT, 0x030f0000);
	USMC_ASSERT_EQ(SMC_CLC_DECL_ERR_REGBUF, 0x09990003);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_STRING_EQUAL(usmc_clc_decl_name(decl_codes[i].code),
				       decl_codes[i].name);
		CU_ASSERT_STRING_NOT_EQUAL(
			usmc_clc_decl_str(decl_codes[i].code),
			"unknown decline code");
		for (size_t j = i + 1; j < n; j++) {
			CU_ASSERT(decl_codes[i].code != decl_codes[j].code);
			CU_ASSERT_STRING_NOT_EQUAL(
				usmc_clc_decl_str(decl_codes[i].code),
				usmc_clc_decl_str(decl_codes[j].code));
		}
	}
	CU_ASSERT_STRING_EQUAL(usmc_clc_decl_name(0x12345678), "UNKNOWN");
	CU_ASSERT_STRING_EQUAL(usmc_clc_decl_str(0), "unknown decline code");
}

/* SMC-D Accept/Confirm, built byte by byte from the kernel's struct
 * smc_clc_msg_accept_confirm (d0: gid 8, token 16, dmbe_idx 24, dmbe_size
 * high nibble of 25, linkid 28; d1: chid 32, eid 34, gid_ext 66; the
 * first-contact extension at 74: 36 bytes at release 0, 52 from 1). */
static size_t smcd_ac(uint8_t *b, uint8_t type, int v2, int fc, int v2x)
{
	size_t n = v2 ? 78 : 48;

	if (v2 && fc)
		n += v2x ? 52 : 36;
	memset(b, 0, n);
	b[0] = 0xe2, b[1] = 0xd4, b[2] = 0xc3, b[3] = 0xc4;
	b[4] = type;
	b[5] = (uint8_t)(n >> 8), b[6] = (uint8_t)n;
	b[7] = (uint8_t)((v2 ? 0x20 : 0x10) | (fc ? 0x08 : 0) | SMC_TYPE_D);
	for (int i = 0; i < 8; i++) {
		b[8 + i] = (uint8_t)(0x10 + i);	 /* gid */
		b[16 + i] = (uint8_t)(0xa0 + i); /* token */
	}
	b[24] = 0;
	b[25] = 0x20; /* 64 KiB */
	b[28] = 0x00, b[29] = 0x00, b[30] = 0x05, b[31] = 0x00;
	if (v2) {
		b[32] = 0xff, b[33] = 0xff;
		padded(b + 34, "USMC");
		for (int i = 0; i < 8; i++)
			b[66 + i] = (uint8_t)(0x70 + i); /* gid_ext */
		if (fc) {
			b[74] = 0x00;
			b[75] = (uint8_t)(SMC_CLC_OS_LINUX << 4 |
					  (v2x ? 1 : 0));
			padded(b + 78, "host-d");
			if (v2x) {
				b[110] = 0, b[111] = 0; /* SMC-D: reserved */
				b[112] = 0x00, b[113] = 0x01;
			}
		}
	}
	memcpy(b + n - 4, b, 4);
	return n;
}

static void assert_smcd_common(const usmc_clc_msg *m)
{
	const usmc_clc_accept_confirm *a = &m->u.ac;

	USMC_ASSERT_EQ(m->hdr.eyecatcher, SMCD_EYECATCHER);
	USMC_ASSERT_EQ(m->hdr.typev1, SMC_TYPE_D);
	CU_ASSERT(a->d_gid == 0x1011121314151617ull);
	CU_ASSERT(a->d_token == 0xa0a1a2a3a4a5a6a7ull);
	USMC_ASSERT_EQ(a->dmbe_idx, 0);
	USMC_ASSERT_EQ(a->dmbe_size, 2);
	USMC_ASSERT_EQ(a->d_linkid, 0x500);
}

static void test_smcd_accept_confirm(void)
{
	uint8_t b[MAXMSG], out[MAXMSG], eid[32];
	usmc_clc_msg m;
	size_t n;

	/* v1, 48 bytes, 12 reserved after the link id */
	n = smcd_ac(b, SMC_CLC_ACCEPT, 0, 0, 0);
	USMC_ASSERT_EQ(n, SMCD_CLC_ACCEPT_CONFIRM_LEN);
	roundtrip_and_truncate(b, n, &m);
	assert_smcd_common(&m);
	CU_ASSERT(m.u.ac.gid_ext == 0);
	/* v2 Confirm without first contact, 78 bytes */
	n = smcd_ac(b, SMC_CLC_CONFIRM, 1, 0, 0);
	USMC_ASSERT_EQ(n, SMCD_CLC_ACCEPT_CONFIRM_LEN_V2);
	roundtrip_and_truncate(b, n, &m);
	assert_smcd_common(&m);
	padded(eid, "USMC");
	USMC_ASSERT_EQ(m.u.ac.d_chid, SMC_LO_RESERVED_CHID);
	USMC_ASSERT_MEM_EQ(m.u.ac.eid, eid, 32);
	CU_ASSERT(m.u.ac.gid_ext == 0x7071727374757677ull);
	/* v2 Accept, first contact, release 0: the 36-byte extension */
	n = smcd_ac(b, SMC_CLC_ACCEPT, 1, 1, 0);
	USMC_ASSERT_EQ(n, 114);
	roundtrip_and_truncate(b, n, &m);
	assert_smcd_common(&m);
	CU_ASSERT(!m.u.ac.fce_v2x);
	USMC_ASSERT_EQ(m.u.ac.release, 0);
	USMC_ASSERT_EQ(m.u.ac.os_type, SMC_CLC_OS_LINUX);
	/* release 1: the 52-byte v2x form, feature mask "emulated ISM" and
	 * no max_conns/max_links (SMC-R only). A 36-byte cut of it is the
	 * release 0 form, so only the other lengths are refused. */
	n = smcd_ac(b, SMC_CLC_ACCEPT, 1, 1, 1);
	USMC_ASSERT_EQ(n, 130);
	USMC_ASSERT_EQ(decode_exact(b, n, &m), (usmc_ssize)n);
	assert_smcd_common(&m);
	CU_ASSERT(m.u.ac.fce_v2x);
	USMC_ASSERT_EQ(m.u.ac.release, 1);
	USMC_ASSERT_EQ(m.u.ac.feature_mask, SMC_SPF_EMULATED_ISM_DEV);
	USMC_ASSERT_EQ(m.u.ac.max_conns, 0);
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)), (usmc_ssize)n);
	USMC_ASSERT_MEM_EQ(out, b, n);
	for (size_t k = 8; k < n; k++) {
		uint8_t cut[MAXMSG];

		memcpy(cut, b, k);
		cut[5] = (uint8_t)(k >> 8), cut[6] = (uint8_t)k;
		if (k == 114)
			continue;
		CU_ASSERT(decode_exact(cut, k, &m) < 0);
	}
	/* a v2 Confirm with first contact has no GID list: 130 + 20 is bad */
	n = smcd_ac(b, SMC_CLC_CONFIRM, 1, 1, 1);
	USMC_ASSERT_EQ(decode_exact(b, n, &m), (usmc_ssize)n);
	b[6] = (uint8_t)(n + 20);
	memset(b + n, 0, 20);
	memcpy(b + n + 16, b, 4);
	CU_ASSERT(decode_exact(b, n + 20, &m) < 0);
	/* zero token: refused both ways */
	n = smcd_ac(b, SMC_CLC_CONFIRM, 1, 0, 0);
	memset(b + 16, 0, 8);
	USMC_ASSERT_EQ(decode_exact(b, n, &m), USMC_ERR_BAD_VALUE);
	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_CONFIRM;
	m.hdr.version = SMC_V2;
	m.hdr.typev1 = SMC_TYPE_D;
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)),
		       USMC_ERR_INVALID_ARGUMENT);
}

/* A Proposal offering SMC-Dv2 only, as a loopback-ism client sends it:
 * SMC-D area (gid at 40, chid at 48, v2 extension offset at 50), no IP
 * area (typev1 N), the v2 extension at 80 (eid count 80, GID count 81,
 * release|seid 83, SMC-Dv2 extension offset 86, feature mask 106), one
 * UEID at 120, the SMC-Dv2 extension at 152 (system EID, 16 reserved) and
 * its GID list at 200: {gid, 0xFFFF}, {gid_ext, 0xFFFF}. */
static void test_smcd_proposal(void)
{
	uint8_t b[MAXMSG], out[MAXMSG];
	usmc_clc_msg m;
	size_t n = 200 + 2 * 10 + 4;

	memset(b, 0, sizeof(b));
	b[0] = 0xe2, b[1] = 0xd4, b[2] = 0xc3, b[3] = 0xd9;
	b[4] = SMC_CLC_PROPOSAL;
	b[5] = 0, b[6] = (uint8_t)n;
	b[7] = 0x20 | SMC_TYPE_D << 2 | SMC_TYPE_N;
	memset(b + 8, 0x5a, 8); /* peer id */
	b[38] = 0, b[39] = 0;	/* typev1 N: no IP area */
	for (int i = 0; i < 8; i++)
		b[40 + i] = (uint8_t)(0x10 + i);
	b[48] = 0xff, b[49] = 0xff;
	b[50] = 0, b[51] = 28; /* 80 - 52 */
	b[80] = 1, b[81] = 2;
	b[83] = 0x10;	       /* release 1 */
	b[86] = 0, b[87] = 64; /* 152 - 88 */
	b[104] = 255, b[105] = 2;
	b[106] = 0, b[107] = 1;
	padded(b + 120, "USMC");
	for (int i = 0; i < 8; i++) {
		b[200 + i] = (uint8_t)(0x10 + i);
		b[210 + i] = (uint8_t)(0x70 + i);
	}
	b[208] = b[209] = b[218] = b[219] = 0xff;
	memcpy(b + n - 4, b, 4);
	roundtrip_and_truncate(b, n, &m);
	CU_ASSERT(m.u.prop.ism_gid == 0x1011121314151617ull);
	USMC_ASSERT_EQ(m.u.prop.ism_chid, SMC_LO_RESERVED_CHID);
	USMC_ASSERT_EQ(m.u.prop.eid_cnt, 1);
	USMC_ASSERT_EQ(m.u.prop.ism_gid_cnt, 2);
	USMC_ASSERT_EQ(m.u.prop.release, 1);
	USMC_ASSERT_EQ(m.u.prop.feature_mask, SMC_SPF_EMULATED_ISM_DEV);
	CU_ASSERT(m.u.prop.ism_gids[0].gid == 0x1011121314151617ull);
	CU_ASSERT(m.u.prop.ism_gids[1].gid == 0x7071727374757677ull);
	USMC_ASSERT_EQ(m.u.prop.ism_gids[0].chid, 0xffff);
	USMC_ASSERT_EQ(m.u.prop.ism_gids[1].chid, 0xffff);
	/* the encoder computes both offsets itself */
	USMC_ASSERT_EQ(usmc_clc_encode(&m, out, sizeof(out)), (usmc_ssize)n);
	USMC_ASSERT_MEM_EQ(out, b, n);
}

static void test_constants(void)
{
	/* The kernel's values (net/smc/smc_clc.h, include/uapi/linux/smc.h),
	 * independent of the code's arithmetic. */
	USMC_ASSERT_EQ(SMCR_CLC_ACCEPT_CONFIRM_LEN, 68);
	USMC_ASSERT_EQ(SMCR_CLC_ACCEPT_CONFIRM_LEN_V2, 108);
	USMC_ASSERT_EQ(SMC_CLC_DECLINE_LEN, 28);
	USMC_ASSERT_EQ(SMC_CLC_DECLINE_LEN_V2, 44);
	USMC_ASSERT_EQ(SMC_CLC_MAX_UEID, 8);
	USMC_ASSERT_EQ(SMC_MAX_EID_LEN, 32);
	USMC_ASSERT_EQ(SMC_CLC_MAX_V6_PREFIX, 8);
	USMC_ASSERT_EQ(SMC_CLC_RECV_BUF_LEN, 100);
	CU_ASSERT(CLC_WAIT_TIME == 6000000000ULL);
	USMC_ASSERT_EQ(SMC_EYECATCHER, 0xe2d4c3d9);
	USMC_ASSERT_EQ(SMCD_EYECATCHER, 0xe2d4c3c4);
	USMC_ASSERT_EQ(SMCD_CLC_ACCEPT_CONFIRM_LEN, 48);
	USMC_ASSERT_EQ(SMCD_CLC_ACCEPT_CONFIRM_LEN_V2, 78);
	USMC_ASSERT_EQ(SMC_LO_RESERVED_CHID, 0xffff);
}

static CU_TestInfo clc_tests[] = {
	{"golden_proposal", test_golden_proposal},
	{"golden_accept_confirm", test_golden_accept_confirm},
	{"v1_proposal", test_v1_proposal},
	{"v1_proposal_92", test_v1_proposal_92},
	{"v1_accept_confirm", test_v1_accept_confirm},
	{"decline", test_decline},
	{"decline_init", test_decline_init},
	{"bad_header", test_bad_header},
	{"bad_accept_values", test_bad_accept_values},
	{"bad_v2_accept_confirm", test_bad_v2_accept_confirm},
	{"bad_proposal", test_bad_proposal},
	{"encode_builds_offsets", test_encode_builds_offsets},
	{"classify_smcd_only", test_classify_smcd_only},
	{"classify_smcr", test_classify_smcr},
	{"client_and_confirm_checks", test_client_and_confirm_checks},
	{"prefix_match", test_prefix_match},
	{"bufsize", test_bufsize},
	{"decl_names", test_decl_names},
	{"constants", test_constants},
	{"smcd_accept_confirm", test_smcd_accept_confirm},
	{"smcd_proposal", test_smcd_proposal},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"clc", clc_tests}, {NULL, NULL}};

	return usmc_test_main(suites);
}
