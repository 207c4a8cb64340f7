/* SPDX-License-Identifier: MIT */
/*
 * RoCEv2 packet codec and ICRC (see roce_hdr.h). Layouts follow rxe_hdr.h
 * and rxe_opcode.c; the ICRC follows rxe_icrc.c and uses the reflected
 * CRC-32 of zlib (same polynomial, reflection and final inversion as rxe's
 * crc32_le with its inversions). ISA-L's crc32_gzip_refl is the same
 * function with a PCLMUL path, many times faster than a table
 * (usmc-srbench): it is dlopen'ed at the first ICRC, so that the preload
 * links no ISA-L a host program may have too; without it, slice-by-8
 * tables of our own compute the same CRC.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "roce_hdr.h"
#include "usmc_conv.h"
#include "usmc_err.h"

#define F_SEND_REQ  (USMC_ROCE_F_SEND | USMC_ROCE_F_REQ | USMC_ROCE_F_PAYLOAD)
#define F_WRITE_REQ (USMC_ROCE_F_WRITE | USMC_ROCE_F_REQ | USMC_ROCE_F_PAYLOAD)
#define F_READ_RESP (USMC_ROCE_F_READ | USMC_ROCE_F_RESP | USMC_ROCE_F_PAYLOAD)

struct opcode_info {
	const char *name;
	uint32_t flags;
};

static const struct opcode_info opcodes[0x18] = {
	[0x00] = {"RC_SEND_FIRST",
		  F_SEND_REQ | USMC_ROCE_F_FIRST | USMC_ROCE_F_RWR},
	[0x01] = {"RC_SEND_MIDDLE",
		  F_SEND_REQ | USMC_ROCE_F_MIDDLE | USMC_ROCE_F_RWR},
	[0x02] = {"RC_SEND_LAST",
		  F_SEND_REQ | USMC_ROCE_F_LAST | USMC_ROCE_F_RWR},
	[0x03] = {"RC_SEND_LAST_WITH_IMMEDIATE", F_SEND_REQ | USMC_ROCE_F_LAST |
							 USMC_ROCE_F_IMMDT |
							 USMC_ROCE_F_RWR},
	[0x04] = {"RC_SEND_ONLY",
		  F_SEND_REQ | USMC_ROCE_F_ONLY | USMC_ROCE_F_RWR},
	[0x05] = {"RC_SEND_ONLY_WITH_IMMEDIATE", F_SEND_REQ | USMC_ROCE_F_ONLY |
							 USMC_ROCE_F_IMMDT |
							 USMC_ROCE_F_RWR},
	[0x06] = {"RC_RDMA_WRITE_FIRST",
		  F_WRITE_REQ | USMC_ROCE_F_FIRST | USMC_ROCE_F_RETH},
	[0x07] = {"RC_RDMA_WRITE_MIDDLE", F_WRITE_REQ | USMC_ROCE_F_MIDDLE},
	[0x08] = {"RC_RDMA_WRITE_LAST", F_WRITE_REQ | USMC_ROCE_F_LAST},
	[0x09] = {"RC_RDMA_WRITE_LAST_WITH_IMMEDIATE",
		  F_WRITE_REQ | USMC_ROCE_F_LAST | USMC_ROCE_F_IMMDT |
			  USMC_ROCE_F_RWR},
	[0x0a] = {"RC_RDMA_WRITE_ONLY",
		  F_WRITE_REQ | USMC_ROCE_F_ONLY | USMC_ROCE_F_RETH},
	[0x0b] = {"RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE",
		  F_WRITE_REQ | USMC_ROCE_F_ONLY | USMC_ROCE_F_RETH |
			  USMC_ROCE_F_IMMDT | USMC_ROCE_F_RWR},
	[0x0c] = {"RC_RDMA_READ_REQUEST", USMC_ROCE_F_READ | USMC_ROCE_F_REQ |
						  USMC_ROCE_F_ONLY |
						  USMC_ROCE_F_RETH},
	[0x0d] = {"RC_RDMA_READ_RESPONSE_FIRST",
		  F_READ_RESP | USMC_ROCE_F_FIRST | USMC_ROCE_F_AETH},
	[0x0e] = {"RC_RDMA_READ_RESPONSE_MIDDLE",
		  F_READ_RESP | USMC_ROCE_F_MIDDLE},
	[0x0f] = {"RC_RDMA_READ_RESPONSE_LAST",
		  F_READ_RESP | USMC_ROCE_F_LAST | USMC_ROCE_F_AETH},
	[0x10] = {"RC_RDMA_READ_RESPONSE_ONLY",
		  F_READ_RESP | USMC_ROCE_F_ONLY | USMC_ROCE_F_AETH},
	[0x11] = {"RC_ACKNOWLEDGE",
		  USMC_ROCE_F_RESP | USMC_ROCE_F_ONLY | USMC_ROCE_F_AETH},
	[0x12] = {"RC_ATOMIC_ACKNOWLEDGE",
		  USMC_ROCE_F_RESP | USMC_ROCE_F_ONLY | USMC_ROCE_F_AETH |
			  USMC_ROCE_F_ATMACK | USMC_ROCE_F_ATOMIC},
	[0x13] = {"RC_COMPARE_SWAP", USMC_ROCE_F_ATOMIC | USMC_ROCE_F_REQ |
					     USMC_ROCE_F_ONLY |
					     USMC_ROCE_F_ATMETH},
	[0x14] = {"RC_FETCH_ADD", USMC_ROCE_F_ATOMIC | USMC_ROCE_F_REQ |
					  USMC_ROCE_F_ONLY |
					  USMC_ROCE_F_ATMETH},
	[0x16] = {"RC_SEND_LAST_WITH_INVALIDATE",
		  F_SEND_REQ | USMC_ROCE_F_LAST | USMC_ROCE_F_IETH |
			  USMC_ROCE_F_RWR},
	[0x17] = {"RC_SEND_ONLY_WITH_INVALIDATE",
		  F_SEND_REQ | USMC_ROCE_F_ONLY | USMC_ROCE_F_IETH |
			  USMC_ROCE_F_RWR},
};

uint32_t usmc_roce_opcode_flags(uint8_t opcode)
{
	return opcode < sizeof(opcodes) / sizeof(opcodes[0])
		       ? opcodes[opcode].flags
		       : 0;
}

const char *usmc_roce_opcode_name(uint8_t opcode)
{
	if (!usmc_roce_opcode_flags(opcode))
		return "UNKNOWN";
	return opcodes[opcode].name;
}

static size_t hdr_len_of(uint32_t f)
{
	size_t n = USMC_ROCE_BTH_LEN;

	if (f & USMC_ROCE_F_RETH)
		n += USMC_ROCE_RETH_LEN;
	if (f & USMC_ROCE_F_AETH)
		n += USMC_ROCE_AETH_LEN;
	if (f & USMC_ROCE_F_ATMACK)
		n += USMC_ROCE_ATMACK_LEN;
	if (f & USMC_ROCE_F_ATMETH)
		n += USMC_ROCE_ATMETH_LEN;
	if (f & USMC_ROCE_F_IMMDT)
		n += USMC_ROCE_IMMDT_LEN;
	if (f & USMC_ROCE_F_IETH)
		n += USMC_ROCE_IETH_LEN;
	return n;
}

size_t usmc_roce_hdr_len(uint8_t opcode)
{
	uint32_t f = usmc_roce_opcode_flags(opcode);

	return f ? hdr_len_of(f) : 0;
}

int usmc_roce_decode(const uint8_t *b, size_t len, usmc_roce_pkt *pkt)
{
	const uint8_t *p;
	uint32_t f;
	size_t hlen, rest;

	memset(pkt, 0, sizeof(*pkt));
	if (len < USMC_ROCE_BTH_LEN)
		return USMC_ERR_TRUNCATED;
	pkt->opcode = b[0];
	pkt->se = (b[1] >> 7) & 1;
	pkt->migreq = (b[1] >> 6) & 1;
	pkt->padcnt = (b[1] >> 4) & 3;
	pkt->tver = b[1] & 0x0f;
	pkt->pkey = usmc_get_be16(b + 2);
	pkt->fecn = (b[4] >> 7) & 1;
	pkt->becn = (b[4] >> 6) & 1;
	pkt->dest_qpn = usmc_get_be24(b + 5);
	pkt->ackreq = (b[8] >> 7) & 1;
	pkt->psn = usmc_get_be24(b + 9);
	if (pkt->tver != 0)
		return USMC_ERR_BAD_VERSION;
	f = usmc_roce_opcode_flags(pkt->opcode);
	if (!f)
		return USMC_ERR_BAD_TYPE;
	pkt->flags = f;
	hlen = hdr_len_of(f);
	if (len < hlen + USMC_ROCE_ICRC_LEN)
		return USMC_ERR_TRUNCATED;
	pkt->hdr_len = hlen;

	/* rxe_opcode.c order: RETH, AETH, AtomicAckETH, AtomicETH, ImmDt,
	 * IETH; no opcode carries more than two of them. */
	p = b + USMC_ROCE_BTH_LEN;
	if (f & USMC_ROCE_F_RETH) {
		pkt->reth_va = usmc_get_be64(p);
		pkt->reth_rkey = usmc_get_be32(p + 8);
		pkt->reth_len = usmc_get_be32(p + 12);
		p += USMC_ROCE_RETH_LEN;
	}
	if (f & USMC_ROCE_F_AETH) {
		pkt->aeth_syndrome = p[0];
		pkt->aeth_msn = usmc_get_be24(p + 1);
		p += USMC_ROCE_AETH_LEN;
	}
	if (f & USMC_ROCE_F_ATMACK) {
		pkt->atomic_orig = usmc_get_be64(p);
		p += USMC_ROCE_ATMACK_LEN;
	}
	if (f & USMC_ROCE_F_ATMETH) {
		pkt->atomic_va = usmc_get_be64(p);
		pkt->atomic_rkey = usmc_get_be32(p + 8);
		pkt->atomic_swap_add = usmc_get_be64(p + 12);
		pkt->atomic_compare = usmc_get_be64(p + 20);
		p += USMC_ROCE_ATMETH_LEN;
	}
	if (f & USMC_ROCE_F_IMMDT) {
		pkt->imm = usmc_get_be32(p);
		p += USMC_ROCE_IMMDT_LEN;
	}
	if (f & USMC_ROCE_F_IETH) {
		pkt->ieth_rkey = usmc_get_be32(p);
		p += USMC_ROCE_IETH_LEN;
	}

	rest = len - hlen - USMC_ROCE_ICRC_LEN;
	if (pkt->padcnt > rest)
		return USMC_ERR_BAD_LENGTH;
	if (!(f & USMC_ROCE_F_PAYLOAD) && rest)
		return USMC_ERR_BAD_LENGTH;
	pkt->payload = b + hlen;
	pkt->payload_len = rest - pkt->padcnt;
	pkt->icrc = usmc_get_le32(b + len - USMC_ROCE_ICRC_LEN);
	return 0;
}

int usmc_roce_encode_hdr(uint8_t *buf, size_t cap, const usmc_roce_pkt *pkt)
{
	uint32_t f = usmc_roce_opcode_flags(pkt->opcode);
	size_t hlen;
	uint8_t *p;

	if (!f)
		return USMC_ERR_BAD_TYPE;
	if (pkt->padcnt > 3 || pkt->tver > 15 ||
	    pkt->dest_qpn > USMC_ROCE_QPN_MASK ||
	    pkt->psn > USMC_ROCE_PSN_MASK || pkt->aeth_msn > 0xffffff)
		return USMC_ERR_BAD_VALUE;
	hlen = hdr_len_of(f);
	if (cap < hlen)
		return USMC_ERR_NOBUF;
	p = buf;
	p = usmc_put_u8(p, pkt->opcode);
	p = usmc_put_u8(p, (uint8_t)((pkt->se ? 0x80 : 0) |
				     (pkt->migreq ? 0x40 : 0) |
				     (pkt->padcnt << 4) | pkt->tver));
	p = usmc_put_be16(p, pkt->pkey);
	p = usmc_put_u8(
		p, (uint8_t)((pkt->fecn ? 0x80 : 0) | (pkt->becn ? 0x40 : 0)));
	p = usmc_put_be24(p, pkt->dest_qpn);
	p = usmc_put_u8(p, pkt->ackreq ? 0x80 : 0);
	p = usmc_put_be24(p, pkt->psn);
	if (f & USMC_ROCE_F_RETH) {
		p = usmc_put_be64(p, pkt->reth_va);
		p = usmc_put_be32(p, pkt->reth_rkey);
		p = usmc_put_be32(p, pkt->reth_len);
	}
	if (f & USMC_ROCE_F_AETH) {
		p = usmc_put_u8(p, pkt->aeth_syndrome);
		p = usmc_put_be24(p, pkt->aeth_msn);
	}
	if (f & USMC_ROCE_F_ATMACK)
		p = usmc_put_be64(p, pkt->atomic_orig);
	if (f & USMC_ROCE_F_ATMETH) {
		p = usmc_put_be64(p, pkt->atomic_va);
		p = usmc_put_be32(p, pkt->atomic_rkey);
		p = usmc_put_be64(p, pkt->atomic_swap_add);
		p = usmc_put_be64(p, pkt->atomic_compare);
	}
	if (f & USMC_ROCE_F_IMMDT)
		p = usmc_put_be32(p, pkt->imm);
	if (f & USMC_ROCE_F_IETH)
		p = usmc_put_be32(p, pkt->ieth_rkey);
	return (int)(p - buf);
}

static uint32_t crc_tab[8][256];
static uint32_t (*isal_crc)(uint32_t, const unsigned char *, uint64_t);
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

/* RTLD_LOCAL, not RTLD_DEEPBIND (transport/libbpf/usmc_libbpf.c says
 * why) */
#define USMC_ISAL_DL (RTLD_NOW | RTLD_LOCAL)

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
					crc_tab[0][crc_tab[t - 1][i] & 0xff];
#ifdef USMC_TRY_ISAL
	{
		void *h = dlopen("libisal.so.2", USMC_ISAL_DL);

		if (h)
			*(void **)&isal_crc = dlsym(h, "crc32_gzip_refl");
	}
#endif
}

/* zlib's crc32(): the state is kept inverted between calls. */
uint32_t usmc_roce_crc32_table(uint32_t state, const uint8_t *p, size_t n)
{
	uint32_t c = ~state;

	pthread_once(&crc_once, crc_init);
	while (n && ((uintptr_t)p & 7)) {
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
		n--;
	}
	while (n >= 8) {
		uint32_t lo = usmc_get_le32(p) ^ c, hi = usmc_get_le32(p + 4);

		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
	return ~c;
}

const char *usmc_roce_crc32_impl(void)
{
	pthread_once(&crc_once, crc_init);
	return isal_crc ? "isa-l" : "table";
}

uint32_t usmc_roce_icrc_update(uint32_t state, const uint8_t *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	if (!isal_crc)
		return usmc_roce_crc32_table(state, p, n);
	state = isal_crc(state, p, (uint64_t)n);
#if defined(__x86_64__) || defined(__i386__)
	/* ISA-L's AVX-512 code returns with the upper vector state dirty;
	 * the SSE code after it (ours, the compiler's) then runs several
	 * times slower until something clears it: 150 -> 38 ns per 1 KiB
	 * packet's ICRC (usmc-srbench). */
	if (__builtin_cpu_supports("avx"))
		__asm__ volatile("vzeroupper" ::: "memory");
#endif
	return state;
}

/* The masked pseudo-header (8 bytes of 0xff standing in for the LRH, the
 * IP header, UDP, BTH) is laid out contiguously so that its CRC is one call:
 * per-call overhead dominates for pieces this small. */
static uint32_t icrc_start(uint8_t *b, size_t iplen, const uint8_t *udp_hdr,
			   const uint8_t *bth, size_t bth_len)
{
	uint8_t *u = b + 8 + iplen, *t = u + 8;

	memset(b, 0xff, 8);
	memcpy(u, udp_hdr, 8);
	u[6] = 0xff; /* UDP checksum */
	u[7] = 0xff;
	memcpy(t, bth, USMC_ROCE_BTH_LEN);
	t[4] = 0xff; /* FECN, BECN, Resv6a */
	return usmc_roce_icrc_update(
		usmc_roce_icrc_update(0, b, 8 + iplen + 8 + USMC_ROCE_BTH_LEN),
		bth + USMC_ROCE_BTH_LEN, bth_len - USMC_ROCE_BTH_LEN);
}

uint32_t usmc_roce_icrc_start_ipv4(const uint8_t *ip_hdr,
				   const uint8_t *udp_hdr, const uint8_t *bth,
				   size_t bth_len)
{
	uint8_t b[8 + 20 + 8 + USMC_ROCE_BTH_LEN];
	uint8_t *ip = b + 8;

	memcpy(ip, ip_hdr, 20);
	ip[1] = 0xff;  /* TOS */
	ip[8] = 0xff;  /* TTL */
	ip[10] = 0xff; /* header checksum */
	ip[11] = 0xff;
	return icrc_start(b, 20, udp_hdr, bth, bth_len);
}

uint32_t usmc_roce_icrc_ipv4(const uint8_t *ip_hdr, const uint8_t *udp_hdr,
			     const uint8_t *bth_and_rest, size_t len)
{
	return usmc_roce_icrc_start_ipv4(ip_hdr, udp_hdr, bth_and_rest, len);
}

uint32_t usmc_roce_icrc_start_ipv6(const uint8_t *ip6_hdr,
				   const uint8_t *udp_hdr, const uint8_t *bth,
				   size_t bth_len)
{
	uint8_t b[8 + 40 + 8 + USMC_ROCE_BTH_LEN];
	uint8_t *ip = b + 8;

	memcpy(ip, ip6_hdr, 40);
	ip[0] |= 0x0f; /* traffic class, high nibble */
	ip[1] = 0xff;  /* traffic class low nibble, flow label */
	ip[2] = 0xff;
	ip[3] = 0xff;
	ip[7] = 0xff; /* hop limit */
	return icrc_start(b, 40, udp_hdr, bth, bth_len);
}

uint32_t usmc_roce_icrc_ipv6(const uint8_t *ip6_hdr, const uint8_t *udp_hdr,
			     const uint8_t *bth_and_rest, size_t len)
{
	return usmc_roce_icrc_start_ipv6(ip6_hdr, udp_hdr, bth_and_rest, len);
}

/*
 * IPv4 ID recovery. Linux rxe sends RoCEv2 with a pseudo-random IPv4 ID
 * (rxe_net.c calls __ip_select_ident) and the ICRC covers it, but a UDP
 * socket never shows the ID. The CRC is linear over GF(2): for two packets
 * equal but for the ID, the XOR of their ICRCs is the CRC (zero initial
 * value, no final XOR) of a message that is zero but for the 16 ID bits,
 * i.e. id(x) * x^(32 + 8n) mod P, n the bytes after the ID. Multiplying by
 * x^-(32 + 8n) gives id(x) back exactly when the packet is intact; any
 * other difference lands outside the 16 ID bits except with probability
 * 2^-16. Polynomials are in the reflected form of the CRC register: bit 31
 * is x^0, bit 0 is x^31.
 */
#define ICRC_POLY 0xedb88320u

/* Branch-free: |a| is a packet's ICRC difference, random to a predictor. */
static uint32_t gf2_mulmod(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (int k = 31; k >= 0; k--) {
		p ^= b & (0u - (a >> k & 1));
		b = (b >> 1) ^ (ICRC_POLY & (0u - (b & 1)));
	}
	return p;
}

/* x^-(2^k) mod P for k = 0..23: x^-1 is (P + 1) / x, each next one the
 * square of the one before (checked by test_roce_hdr). */
static const uint32_t xinv_2k[24] = {
	0xdb710641u, 0x6d930ac3u, 0x6d3d2d4du, 0x6567cb95u, 0xd7125358u,
	0x5b358fd3u, 0x2e9bb40bu, 0x12a59a49u, 0x8df9403du, 0x5139de12u,
	0xba340226u, 0x29c45641u, 0x12fbc105u, 0xecd30c55u, 0x3755ebd8u,
	0x24ee460cu, 0x23783fcfu, 0x479933fcu, 0xa39442a5u, 0x9ea0056du,
	0xf42608f6u, 0x20cacf04u, 0x2a0cf83du, 0xeffd8645u,
};

uint32_t usmc_roce_gf2_xinv(uint32_t e)
{
	uint32_t r = 1u << 31; /* the polynomial 1 */

	for (unsigned int k = 0; e && k < 24; k++, e >>= 1)
		if (e & 1)
			r = gf2_mulmod(r, xinv_2k[k]);
	return r;
}

/* x^-(32 + 8n) by UDP payload length, filled on first use: rxe sends few
 * distinct lengths (full MTU segments, ACKs). 0 is never a valid entry. */
#define ID_CACHE_LEN 8192
static uint32_t id_inv_cache[ID_CACHE_LEN];

int usmc_roce_icrc_ipv4_id(uint32_t icrc_id0, uint32_t icrc, size_t udp_len,
			   uint16_t *id)
{
	uint32_t inv = 0, u;
	uint64_t e;

	if (udp_len < USMC_ROCE_BTH_LEN + USMC_ROCE_ICRC_LEN ||
	    udp_len > 65535 - 28)
		return -1;
	/* the ICRC's message: 8 bytes of 0xff, IPv4 (ID at 4), UDP, the UDP
	 * payload without the ICRC; n counts the bytes after the ID */
	e = 32 + 8 * (uint64_t)(8 + 20 + 8 + (udp_len - 4) - 14);
	if (udp_len < ID_CACHE_LEN)
		inv = __atomic_load_n(&id_inv_cache[udp_len], __ATOMIC_RELAXED);
	if (!inv) {
		inv = usmc_roce_gf2_xinv((uint32_t)e);
		if (udp_len < ID_CACHE_LEN)
			__atomic_store_n(&id_inv_cache[udp_len], inv,
					 __ATOMIC_RELAXED);
	}
	u = gf2_mulmod(icrc ^ icrc_id0, inv);
	if (u & 0xffff)
		return -1;
	/* stream bit j of the ID (high byte first, LSB first) is x^(15-j) */
	*id = (uint16_t)(((u >> 16) & 0xff) << 8 | (u >> 24));
	return 0;
}

void usmc_roce_ipv4_hdr(uint8_t out[20], const uint8_t saddr[4],
			const uint8_t daddr[4], size_t udp_payload_len,
			uint8_t ttl)
{
	uint8_t *p = out;

	p = usmc_put_u8(p, 0x45);
	p = usmc_put_u8(p, 0);
	p = usmc_put_be16(p, (uint16_t)(20 + 8 + udp_payload_len));
	p = usmc_put_be16(p, 0);      /* ID: 0 for DF on unconnected */
	p = usmc_put_be16(p, 0x4000); /* DF */
	p = usmc_put_u8(p, ttl);
	p = usmc_put_u8(p, 17);
	p = usmc_put_be16(p, 0);
	p = usmc_put_bytes(p, saddr, 4);
	usmc_put_bytes(p, daddr, 4);
}

void usmc_roce_ipv6_hdr(uint8_t out[40], const uint8_t saddr[16],
			const uint8_t daddr[16], size_t udp_payload_len,
			uint8_t hop_limit)
{
	uint8_t *p = out;

	p = usmc_put_be32(p, 0x60000000u);
	p = usmc_put_be16(p, (uint16_t)(8 + udp_payload_len));
	p = usmc_put_u8(p, 17);
	p = usmc_put_u8(p, hop_limit);
	p = usmc_put_bytes(p, saddr, 16);
	usmc_put_bytes(p, daddr, 16);
}

void usmc_roce_udp_hdr(uint8_t out[8], uint16_t sport, uint16_t dport,
		       size_t udp_payload_len)
{
	uint8_t *p = out;

	p = usmc_put_be16(p, sport);
	p = usmc_put_be16(p, dport);
	p = usmc_put_be16(p, (uint16_t)(8 + udp_payload_len));
	usmc_put_be16(p, 0);
}
