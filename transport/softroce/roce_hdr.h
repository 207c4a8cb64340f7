/* SPDX-License-Identifier: MIT */
/*
 * RoCEv2 (InfiniBand transport over UDP) packet codec, as Linux rdma_rxe
 * puts it on the wire: BTH and the RC extended headers (RETH, AETH, ImmDt,
 * IETH, AtomicETH, AtomicAckETH), and the ICRC trailer. Pure: no sockets,
 * no allocation. Used by the softroce transport and by tools/usmc-decode.
 *
 * A UDP payload is BTH | extended headers | payload | pad (0-3) | ICRC (4,
 * little-endian).
 */
#ifndef USMC_ROCE_HDR_H
#define USMC_ROCE_HDR_H

#include <stddef.h>
#include <stdint.h>

/* ROCE_V2_UDP_DPORT */
#define USMC_ROCE_UDP_PORT 4791

#define USMC_ROCE_BTH_LEN      12
#define USMC_ROCE_RETH_LEN     16
#define USMC_ROCE_AETH_LEN     4
#define USMC_ROCE_IMMDT_LEN    4
#define USMC_ROCE_IETH_LEN     4
#define USMC_ROCE_ATMETH_LEN   28
#define USMC_ROCE_ATMACK_LEN   8
#define USMC_ROCE_ICRC_LEN     4
/* RXE_MAX_HDR_LENGTH */
#define USMC_ROCE_MAX_HDR_LEN  80
#define USMC_ROCE_DEFAULT_PKEY 0xffff
#define USMC_ROCE_PSN_MASK     0x00ffffffu
#define USMC_ROCE_QPN_MASK     0x00ffffffu

/* RC opcodes (include/rdma/ib_pack.h IB_OPCODE_RC_*). */
#define USMC_IB_OPCODE_RC_SEND_FIRST			 0x00
#define USMC_IB_OPCODE_RC_SEND_MIDDLE			 0x01
#define USMC_IB_OPCODE_RC_SEND_LAST			 0x02
#define USMC_IB_OPCODE_RC_SEND_LAST_WITH_IMMEDIATE	 0x03
#define USMC_IB_OPCODE_RC_SEND_ONLY			 0x04
#define USMC_IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE	 0x05
#define USMC_IB_OPCODE_RC_RDMA_WRITE_FIRST		 0x06
#define USMC_IB_OPCODE_RC_RDMA_WRITE_MIDDLE		 0x07
#define USMC_IB_OPCODE_RC_RDMA_WRITE_LAST		 0x08
#define USMC_IB_OPCODE_RC_RDMA_WRITE_LAST_WITH_IMMEDIATE 0x09
#define USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY		 0x0a
#define USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE 0x0b
#define USMC_IB_OPCODE_RC_RDMA_READ_REQUEST		 0x0c
#define USMC_IB_OPCODE_RC_RDMA_READ_RESPONSE_FIRST	 0x0d
#define USMC_IB_OPCODE_RC_RDMA_READ_RESPONSE_MIDDLE	 0x0e
#define USMC_IB_OPCODE_RC_RDMA_READ_RESPONSE_LAST	 0x0f
#define USMC_IB_OPCODE_RC_RDMA_READ_RESPONSE_ONLY	 0x10
#define USMC_IB_OPCODE_RC_ACKNOWLEDGE			 0x11
#define USMC_IB_OPCODE_RC_ATOMIC_ACKNOWLEDGE		 0x12
#define USMC_IB_OPCODE_RC_COMPARE_SWAP			 0x13
#define USMC_IB_OPCODE_RC_FETCH_ADD			 0x14
#define USMC_IB_OPCODE_RC_SEND_LAST_WITH_INVALIDATE	 0x16
#define USMC_IB_OPCODE_RC_SEND_ONLY_WITH_INVALIDATE	 0x17

/* AETH syndromes (rxe_hdr.h enum aeth_syndrome). */
#define USMC_AETH_TYPE_MASK	    0xe0
#define USMC_AETH_ACK		    0x00
#define USMC_AETH_RNR_NAK	    0x20
#define USMC_AETH_NAK		    0x60
#define USMC_AETH_ACK_UNLIMITED	    0x1f
#define USMC_AETH_NAK_PSN_SEQ_ERROR 0x60
#define USMC_AETH_NAK_INVALID_REQ   0x61
#define USMC_AETH_NAK_REM_ACC_ERR   0x62
#define USMC_AETH_NAK_REM_OP_ERR    0x63

/* What an opcode carries and means (usmc_roce_opcode_flags). */
#define USMC_ROCE_F_RETH    0x0001u
#define USMC_ROCE_F_AETH    0x0002u
#define USMC_ROCE_F_IMMDT   0x0004u
#define USMC_ROCE_F_IETH    0x0008u
#define USMC_ROCE_F_ATMETH  0x0010u
#define USMC_ROCE_F_ATMACK  0x0020u
#define USMC_ROCE_F_PAYLOAD 0x0040u /* may carry payload */
#define USMC_ROCE_F_REQ	    0x0080u /* request (to the responder) */
#define USMC_ROCE_F_RESP    0x0100u /* response (to the requester) */
#define USMC_ROCE_F_SEND    0x0200u
#define USMC_ROCE_F_WRITE   0x0400u
#define USMC_ROCE_F_READ    0x0800u
#define USMC_ROCE_F_ATOMIC  0x1000u
#define USMC_ROCE_F_FIRST   0x2000u
#define USMC_ROCE_F_MIDDLE  0x4000u
#define USMC_ROCE_F_LAST    0x8000u
/* consumes a receive WQE: SEND, WRITE with immediate */
#define USMC_ROCE_F_RWR	    0x10000u
#define USMC_ROCE_F_ONLY    (USMC_ROCE_F_FIRST | USMC_ROCE_F_LAST)

/* A decoded packet. Pointers point into the decoded buffer. */
typedef struct usmc_roce_pkt {
	/* BTH */
	uint8_t opcode;
	uint8_t se;
	uint8_t migreq;
	uint8_t padcnt;
	uint8_t tver;
	uint16_t pkey;
	uint8_t fecn;
	uint8_t becn;
	uint32_t dest_qpn;
	uint8_t ackreq;
	uint32_t psn;
	/* usmc_roce_opcode_flags(opcode) */
	uint32_t flags;
	/* RETH */
	uint64_t reth_va;
	uint32_t reth_rkey;
	uint32_t reth_len;
	/* AETH */
	uint8_t aeth_syndrome;
	uint32_t aeth_msn;
	/* ImmDt, host order (big-endian on the wire); IETH rkey */
	uint32_t imm;
	uint32_t ieth_rkey;
	/* AtomicETH, AtomicAckETH */
	uint64_t atomic_va;
	uint32_t atomic_rkey;
	uint64_t atomic_swap_add;
	uint64_t atomic_compare;
	uint64_t atomic_orig;
	/* BTH + extended headers */
	size_t hdr_len;
	/* payload without pad */
	const uint8_t *payload;
	size_t payload_len;
	/* ICRC as the little-endian u32 at the end */
	uint32_t icrc;
} usmc_roce_pkt;

/* usmc_roce_opcode_flags returns USMC_ROCE_F_* for a known RC opcode and 0
 * for anything else (other transports, reserved, FLUSH/ATOMIC_WRITE). */
uint32_t usmc_roce_opcode_flags(uint8_t opcode);

/* usmc_roce_opcode_name returns the kernel's name without the IB_OPCODE_
 * prefix ("RC_SEND_ONLY"), or "UNKNOWN". */
const char *usmc_roce_opcode_name(uint8_t opcode);

/* usmc_roce_hdr_len returns BTH + extended header bytes for |opcode|, or 0
 * for an unknown opcode. */
size_t usmc_roce_hdr_len(uint8_t opcode);

/* usmc_roce_decode decodes a UDP payload. Errors: USMC_ERR_TRUNCATED
 * (shorter than BTH, headers of the opcode, or ICRC), USMC_ERR_BAD_VERSION
 * (TVer != 0), USMC_ERR_BAD_TYPE (not a known RC opcode), USMC_ERR_BAD_LENGTH
 * (pad larger than the payload, or payload on an opcode without one). The
 * ICRC is reported, not checked (it needs the IP and UDP headers). */
int usmc_roce_decode(const uint8_t *udp_payload, size_t len,
		     usmc_roce_pkt *pkt);

/* usmc_roce_encode_hdr writes the BTH and the extended headers that
 * pkt->opcode needs, from the fields of |pkt| (flags, payload and icrc are
 * ignored). Returns the header length, or USMC_ERR_NOBUF /
 * USMC_ERR_BAD_TYPE / USMC_ERR_BAD_VALUE (a field out of range). */
int usmc_roce_encode_hdr(uint8_t *buf, size_t cap, const usmc_roce_pkt *pkt);

/* 24-bit PSN serial arithmetic (rxe psn_compare): <0, 0, >0. */
static inline int32_t usmc_psn_cmp(uint32_t a, uint32_t b)
{
	return (int32_t)((a - b) << 8);
}

static inline uint32_t usmc_psn_add(uint32_t psn, uint32_t n)
{
	return (psn + n) & USMC_ROCE_PSN_MASK;
}

/* usmc_roce_icrc_ipv4 computes rxe's ICRC over the 20-byte IPv4 header
 * |ip_hdr| (TOS, TTL and checksum masked), the 8-byte UDP header (checksum
 * masked), and |len| bytes of BTH onward without the ICRC (BTH byte 4
 * masked). The result is stored little-endian after the packet. |len| must
 * be at least USMC_ROCE_BTH_LEN. */
uint32_t usmc_roce_icrc_ipv4(const uint8_t *ip_hdr, const uint8_t *udp_hdr,
			     const uint8_t *bth_and_rest, size_t len);

/* The same over a 40-byte IPv6 header (traffic class, flow label and hop
 * limit masked). */
uint32_t usmc_roce_icrc_ipv6(const uint8_t *ip6_hdr, const uint8_t *udp_hdr,
			     const uint8_t *bth_and_rest, size_t len);

/* Incremental form for payloads scattered over several buffers: start with
 * the headers (|bth_len| bytes from the BTH, at least 12), then add each
 * piece with usmc_roce_icrc_update, then usmc_roce_icrc_final. */
uint32_t usmc_roce_icrc_start_ipv4(const uint8_t *ip_hdr,
				   const uint8_t *udp_hdr, const uint8_t *bth,
				   size_t bth_len);
uint32_t usmc_roce_icrc_start_ipv6(const uint8_t *ip6_hdr,
				   const uint8_t *udp_hdr, const uint8_t *bth,
				   size_t bth_len);
uint32_t usmc_roce_icrc_update(uint32_t state, const uint8_t *p, size_t n);
/* The same CRC-32 from our own tables, whichever usmc_roce_icrc_update
 * uses; and which that is: "isa-l" (dlopen'ed, PCLMUL) or "table". */
uint32_t usmc_roce_crc32_table(uint32_t state, const uint8_t *p, size_t n);
const char *usmc_roce_crc32_impl(void);
static inline uint32_t usmc_roce_icrc_final(uint32_t state)
{
	return state;
}

/* usmc_roce_icrc_ipv4_id finds the IPv4 ID a packet was sent with from
 * its ICRC: |icrc_id0| is the ICRC computed over the packet as received
 * with ID 0 in the header (usmc_roce_ipv4_hdr), |icrc| the one it carries,
 * |udp_len| its UDP payload length (BTH to ICRC). 0 and *id when some ID
 * makes |icrc| right (the ID: 0 when they are equal), -1 when none does (a
 * corrupted packet, caught except with probability 2^-16 per packet).
 * Constant time; the per-length constant is cached. */
int usmc_roce_icrc_ipv4_id(uint32_t icrc_id0, uint32_t icrc, size_t udp_len,
			   uint16_t *id);

/* x^-e mod the CRC-32 polynomial in the CRC register's reflected form
 * (bit 31 = x^0), for e < 2^24; exposed for its test. */
uint32_t usmc_roce_gf2_xinv(uint32_t e);

/* usmc_roce_ipv4_hdr builds the IPv4 header a Linux unconnected UDP socket
 * with IP_PMTUDISC_DO sends (IHL 5, DF, ID 0, protocol UDP; TOS, TTL and
 * checksum are masked by the ICRC and written as given / 0). Addresses are
 * in network byte order as 4 bytes each. */
void usmc_roce_ipv4_hdr(uint8_t out[20], const uint8_t saddr[4],
			const uint8_t daddr[4], size_t udp_payload_len,
			uint8_t ttl);

/* usmc_roce_ipv6_hdr builds the IPv6 header a UDP socket sends (no
 * extension headers; traffic class, flow label and hop limit are masked by
 * the ICRC). Addresses are 16 bytes each. */
void usmc_roce_ipv6_hdr(uint8_t out[40], const uint8_t saddr[16],
			const uint8_t daddr[16], size_t udp_payload_len,
			uint8_t hop_limit);

/* usmc_roce_udp_hdr builds the UDP header (checksum 0, as rxe). */
void usmc_roce_udp_hdr(uint8_t out[8], uint16_t sport, uint16_t dport,
		       size_t udp_payload_len);

#endif /* USMC_ROCE_HDR_H */
