/* SPDX-License-Identifier: MIT */
/*
 * LLC (Link Layer Control) codec: the messages that SMC-R peers exchange as
 * RDMA SENDs on a link's RC QP to confirm, add and delete links and to
 * announce RMB rkeys (RFC 7609 section 4.2, Linux net/smc smc_llc.c).
 *
 * v1 messages are exactly 44 bytes. v2 link groups (SMC-Rv2) send the same
 * messages with the version nibble 2 in byte 0 (type 0x2X) and a 16-bit
 * length in bytes 1-2 that Linux writes in host order (little-endian on
 * x86); ADD_LINK v2 carries an extension with rkeys and REQ_ADD_LINK (0x25)
 * a GID list, so those two may be longer than 44 bytes (up to 8192).
 *
 * Decoding validates every field that has a defined range and ignores
 * reserved bytes (as Linux does, so later protocol levels that use them
 * still interoperate); encoding writes reserved bytes as zero. Bytes that
 * carry data whose meaning depends on a count (unused rkey slots, for
 * instance) are still decoded and re-encoded, so decode -> encode of any
 * message Linux sends is byte-identical.
 */
#ifndef USMC_LLC_H
#define USMC_LLC_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_err.h"

/* Message types (low nibble of byte 0; v2 wire type = type | 0x20). */
#define SMC_LLC_CONFIRM_LINK	  0x01
#define SMC_LLC_ADD_LINK	  0x02
#define SMC_LLC_ADD_LINK_CONT	  0x03
#define SMC_LLC_DELETE_LINK	  0x04
#define SMC_LLC_REQ_ADD_LINK	  0x05 /* v2 only */
#define SMC_LLC_CONFIRM_RKEY	  0x06
#define SMC_LLC_TEST_LINK	  0x07
#define SMC_LLC_CONFIRM_RKEY_CONT 0x08 /* v1 only */
#define SMC_LLC_DELETE_RKEY	  0x09

#define SMC_LLC_CONFIRM_LINK_V2 0x21
#define SMC_LLC_ADD_LINK_V2	0x22
#define SMC_LLC_DELETE_LINK_V2	0x24
#define SMC_LLC_REQ_ADD_LINK_V2 0x25
#define SMC_LLC_CONFIRM_RKEY_V2 0x26
#define SMC_LLC_TEST_LINK_V2	0x27
#define SMC_LLC_DELETE_RKEY_V2	0x29

/* Sizes */
#define SMC_LLC_MSG_LEN			44 /* every v1 message; minimum for v2 */
#define SMC_LLC_MAX_LEN_V2		8192 /* SMC_WR_BUF_V2_SIZE */
#define USMC_LLC_GID_SIZE		16
#define USMC_LLC_MAC_SIZE		6
/* ADD_LINK v2: 44-byte message + 28-byte extension + 16 bytes per rkey */
#define USMC_LLC_ADD_LINK_V2_EXT_LEN	28
#define USMC_LLC_RT_LEN			16
/* REQ_ADD_LINK v2: 28-byte fixed part + 16 bytes per GID */
#define USMC_LLC_REQ_ADD_LINK_FIXED_LEN 28

/* Header flags (byte 3). Several masks share bits; which applies depends on
 * the message type. */
#define SMC_LLC_FLAG_RESP	      0x80 /* all: response */
#define SMC_LLC_FLAG_ADD_LNK_REJ      0x40 /* ADD_LINK response: rejected */
#define SMC_LLC_FLAG_DEL_LINK_ALL     0x40 /* DELETE_LINK: whole link group */
#define SMC_LLC_FLAG_DEL_LINK_ORDERLY 0x20 /* DELETE_LINK: orderly */
#define SMC_LLC_FLAG_RKEY_NEG	      0x20 /* CONFIRM/DELETE_RKEY: negative */
#define SMC_LLC_FLAG_RKEY_RETRY	      0x10 /* CONFIRM_RKEY resp: retry */
#define SMC_LLC_FLAG_NO_RMBE_EYEC     0x03 /* CONFIRM_LINK: no eyecatcher */

/* ADD_LINK reject reason (v1: low nibble of byte 2). */
#define SMC_LLC_REJ_RSN_NO_ALT_PATH 1

/* DELETE_LINK reasons (BE32 at offset 5). */
#define SMC_LLC_DEL_LOST_PATH	   0x00010000u
#define SMC_LLC_DEL_OP_INIT_TERM   0x00020000u
#define SMC_LLC_DEL_PROG_INIT_TERM 0x00030000u
#define SMC_LLC_DEL_PROT_VIOL	   0x00040000u
#define SMC_LLC_DEL_NO_ASYM_NEEDED 0x00050000u
/* DELETE_LINK response reasons */
#define SMC_LLC_DEL_NOLNK	   0x00100000u /* unknown link id */
#define SMC_LLC_DEL_NOLGR	   0x00200000u /* unknown link group */

/* Counts */
#define SMC_LLC_RKEYS_PER_MSG	       3   /* rtokens in CONFIRM_RKEY(_CONT) */
#define SMC_LLC_RKEYS_PER_CONT_MSG     2   /* rkey triples in ADD_LINK_CONT */
#define SMC_LLC_RKEYS_PER_MSG_V2       255 /* rkey triples in ADD_LINK v2 ext */
#define SMC_LLC_DEL_RKEY_MAX	       8   /* rkeys in DELETE_RKEY */
/* GIDs accepted in a REQ_ADD_LINK v2 (Linux sends at most 2, its
 * GID_LIST_SIZE; the bound is ours). */
#define USMC_LLC_REQ_ADD_LINK_MAX_GIDS 8

/* Timers (ns), as Linux: response wait, first CONFIRM_LINK on a new link,
 * and the default TEST_LINK inactivity interval (sysctl
 * smcr_testlink_time). */
#define SMC_LLC_WAIT_TIME	      (2 * USMC_NS_PER_SEC)
#define SMC_LLC_WAIT_FIRST_TIME	      (5 * USMC_NS_PER_SEC)
#define SMC_LLC_TESTLINK_DEFAULT_TIME (30 * USMC_NS_PER_SEC)

typedef struct usmc_llc_hdr {
	/* SMC_LLC_* base type (version nibble stripped) */
	uint8_t type;
	/* 1 or 2 */
	uint8_t version;
	/* Total message length in bytes: 44 for v1. Set by decode; encode
	 * computes it from the message and ignores this field. */
	uint16_t length;
	/* SMC_LLC_FLAG_* (raw byte 3; unknown bits are kept) */
	uint8_t flags;
	/* v1 only (low nibble of byte 2), 0..15; v2 has no room for it
	 * (byte 2 is the length's high byte) and it must be 0 there. */
	uint8_t add_link_rej_rsn;
} usmc_llc_hdr;

typedef struct usmc_llc_confirm_link {
	uint8_t sender_mac[USMC_LLC_MAC_SIZE];
	uint8_t sender_gid[USMC_LLC_GID_SIZE];
	uint32_t sender_qp_num; /* 24 bit */
	uint8_t link_num;
	uint32_t link_uid; /* informational (lgr id + link id) */
	uint8_t max_links;
	uint8_t max_conns; /* v2.1, else 0 */
} usmc_llc_confirm_link;

/* An rkey triple: a peer RMB's rkey on the existing link, its rkey and
 * address on the new link (ADD_LINK_CONT, ADD_LINK v2 extension). */
typedef struct usmc_llc_rt {
	uint32_t rmb_key;
	uint32_t rmb_key_new;
	uint64_t rmb_vaddr_new;
} usmc_llc_rt;

typedef struct usmc_llc_add_link {
	uint8_t sender_mac[USMC_LLC_MAC_SIZE];
	uint8_t sender_gid[USMC_LLC_GID_SIZE];
	uint32_t sender_qp_num; /* 24 bit */
	uint8_t link_num;
	/* enum usmc_ib_mtu 1..5; 0 = no new link (client suggestion) */
	uint8_t qp_mtu;
	uint32_t initial_psn; /* 24 bit */
	/* v2 extension; v2 only, present iff hdr.length > 44 */
	uint8_t has_v2_ext;
	uint8_t v2_direct; /* 0 or 1 */
	uint8_t client_target_gid[USMC_LLC_GID_SIZE];
	uint16_t num_rkeys; /* 0..SMC_LLC_RKEYS_PER_MSG_V2 */
	usmc_llc_rt rt[SMC_LLC_RKEYS_PER_MSG_V2];
} usmc_llc_add_link;

typedef struct usmc_llc_add_link_cont {
	uint8_t link_num;
	/* rkeys still to be sent, including those in this message; any
	 * value is valid (min(num_rkeys, 2) entries of rt[] are meaningful) */
	uint8_t num_rkeys;
	usmc_llc_rt rt[SMC_LLC_RKEYS_PER_CONT_MSG];
} usmc_llc_add_link_cont;

typedef struct usmc_llc_delete_link {
	uint8_t link_num; /* 0 with SMC_LLC_FLAG_DEL_LINK_ALL */
	uint32_t reason;  /* SMC_LLC_DEL_* */
} usmc_llc_delete_link;

typedef struct usmc_llc_req_add_link {
	uint8_t gid_cnt; /* 0..USMC_LLC_REQ_ADD_LINK_MAX_GIDS */
	uint8_t gid[USMC_LLC_REQ_ADD_LINK_MAX_GIDS][USMC_LLC_GID_SIZE];
} usmc_llc_req_add_link;

/* An RMB's rkey and address for one link. */
typedef struct usmc_llc_rtoken {
	uint8_t link_id; /* CONFIRM_RKEY rtoken[0]: not on the wire, 0 */
	uint32_t rmb_key;
	uint64_t rmb_vaddr;
} usmc_llc_rtoken;

typedef struct usmc_llc_confirm_rkey {
	/* additional rtokens after rtoken[0] (the sending link's), 0..2 */
	uint8_t num_rkeys;
	usmc_llc_rtoken rtoken[SMC_LLC_RKEYS_PER_MSG];
} usmc_llc_confirm_rkey;

typedef struct usmc_llc_confirm_rkey_cont {
	uint8_t num_rkeys; /* rkeys remaining, including these */
	usmc_llc_rtoken rtoken[SMC_LLC_RKEYS_PER_MSG];
} usmc_llc_confirm_rkey_cont;

typedef struct usmc_llc_test_link {
	uint8_t user_data[16]; /* echoed in the response */
} usmc_llc_test_link;

typedef struct usmc_llc_delete_rkey {
	uint8_t num_rkeys; /* 1..SMC_LLC_DEL_RKEY_MAX */
	/* v1 response: bit (7 - i) set if rkey[i] was unknown.
	 * v2 response: the number of unknown rkeys (num_inval_rkeys). */
	uint8_t err_mask;
	uint32_t rkey[SMC_LLC_DEL_RKEY_MAX];
} usmc_llc_delete_rkey;

typedef struct usmc_llc_msg {
	usmc_llc_hdr hdr;
	union {
		usmc_llc_confirm_link confirm_link;
		usmc_llc_add_link add_link;
		usmc_llc_add_link_cont add_link_cont;
		usmc_llc_delete_link delete_link;
		usmc_llc_req_add_link req_add_link;
		usmc_llc_confirm_rkey confirm_rkey;
		usmc_llc_confirm_rkey_cont confirm_rkey_cont;
		usmc_llc_test_link test_link;
		usmc_llc_delete_rkey delete_rkey;
	};
} usmc_llc_msg;

/* usmc_llc_msg_init zeroes |msg| and sets its header's type, version
 * (1 or 2) and flags. */
void usmc_llc_msg_init(usmc_llc_msg *msg, uint8_t type, uint8_t version,
		       uint8_t flags);

/* usmc_llc_decode decodes the LLC message at the start of |buf| (|len|
 * bytes received, e.g. a RECV completion's byte_len) into |msg|. Returns
 * the message length (hdr.length; bytes after it are not looked at) or:
 * USMC_ERR_TRUNCATED  fewer than 44 bytes, or fewer than the v2 length;
 * USMC_ERR_BAD_TYPE   unknown type, or a type not defined for its version
 *                     (REQ_ADD_LINK v1, ADD_LINK_CONT / CONFIRM_RKEY_CONT v2),
 *                     or a version nibble other than 0 and 2;
 * USMC_ERR_BAD_LENGTH v1 length != 44; v2 length outside [44, 8192] or not
 *                     the length its content implies;
 * USMC_ERR_BAD_COUNT  CONFIRM_RKEY additional entries > 2, DELETE_RKEY
 *                     num_rkeys not in 1..8, ADD_LINK v2 num_rkeys > 255,
 *                     REQ_ADD_LINK gid_cnt > 8;
 * USMC_ERR_BAD_VALUE  ADD_LINK qp_mtu not in 0..5.
 * |msg| is undefined on error. */
usmc_ssize usmc_llc_decode(usmc_llc_msg *msg, const uint8_t *buf, size_t len);

/* usmc_llc_encode writes |msg| to |buf| (|cap| bytes) and returns the number
 * of bytes written (44 for v1; the v2 length for v2), or
 * USMC_ERR_NOBUF if |cap| is too small, or USMC_ERR_INVALID_ARGUMENT for a
 * message decode would reject (same rules as above, plus: version not 1
 * or 2, 24-bit fields above 0xffffff, add_link_rej_rsn > 15 or set on v2,
 * has_v2_ext on v1). The length is computed, msg->hdr.length is ignored. */
usmc_ssize usmc_llc_encode(uint8_t *buf, size_t cap, const usmc_llc_msg *msg);

/* usmc_llc_wire_type returns byte 0 for |type| at |version| (0x06 or
 * 0x26 for SMC_LLC_CONFIRM_RKEY). */
uint8_t usmc_llc_wire_type(uint8_t type, uint8_t version);

/* usmc_llc_type_name names a wire type byte ("CONFIRM_LINK",
 * "CONFIRM_LINK_V2"); "UNKNOWN" otherwise. Never NULL. */
const char *usmc_llc_type_name(uint8_t wire_type);

/* usmc_llc_del_reason_name names a DELETE_LINK reason ("LOST_PATH");
 * "NONE" for 0, "UNKNOWN" otherwise. Never NULL. */
const char *usmc_llc_del_reason_name(uint32_t reason);

/* What a received SEND carries, from its first byte. */
typedef enum usmc_rx_msg_class {
	USMC_RX_MSG_CDC = 1,	/* 0xFE */
	USMC_RX_MSG_LLC_V1 = 2, /* 0x01..0x09 */
	USMC_RX_MSG_LLC_V2 = 3, /* 0x21..0x29 */
} usmc_rx_msg_class;

/* usmc_rx_msg_classify returns the usmc_rx_msg_class of the SEND payload
 * |buf|, USMC_ERR_TRUNCATED if |len| is 0, or USMC_ERR_BAD_TYPE. It only
 * looks at byte 0; the decoders do the rest. */
int usmc_rx_msg_classify(const uint8_t *buf, size_t len);

#endif /* USMC_LLC_H */
