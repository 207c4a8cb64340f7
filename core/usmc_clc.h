/* SPDX-License-Identifier: MIT */
/*
 * CLC (Connection Layer Control) codec: the four TCP-carried handshake
 * messages of SMC-R (RFC 7609) as Linux net/smc writes them, v1 and v2.
 * Pure functions, no state. Layouts: the kernel's struct smc_clc_msg_*.
 *
 * Reading from a TCP stream: peek 8 bytes, usmc_clc_hdr_peek() them, then
 * read exactly hdr.length bytes and usmc_clc_decode() them. No byte past
 * hdr.length is ever looked at, so application data is never consumed.
 *
 * Round trip: decode then encode gives the same bytes for every message
 * whose reserved bytes are zero (Linux always zeroes them). Reserved bytes
 * are ignored on receive, as Linux ignores them, and written as zero.
 * Offsets (IP area, v2 extension, SMC-Dv2 extension) must be the ones
 * Linux computes; the encoder computes them from the struct contents.
 *
 * SMC-D Accept/Confirm (eyecatcher SMCD, typev1 D) are decoded and encoded
 * as the kernel's struct smc_clc_msg_accept_confirm d0/d1 (v1 and v2, the
 * v2 one with gid_ext as SMC-Dv2.1 virtual ISM devices such as
 * loopback-ism send it); SMC-D parts of a Proposal too.
 */
#ifndef USMC_CLC_H
#define USMC_CLC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usmc_err.h"

/* Message types (header byte 4). */
#define SMC_CLC_PROPOSAL 0x01
#define SMC_CLC_ACCEPT	 0x02
#define SMC_CLC_CONFIRM	 0x03
#define SMC_CLC_DECLINE	 0x04

/* "SMCR" and "SMCD" in EBCDIC, as big-endian u32. */
#define SMC_EYECATCHER	0xE2D4C3D9u
#define SMCD_EYECATCHER 0xE2D4C3C4u

/* SMC types in typev1/typev2. */
#define SMC_TYPE_R 0 /* SMC-R only */
#define SMC_TYPE_D 1 /* SMC-D only */
#define SMC_TYPE_N 2 /* neither */
#define SMC_TYPE_B 3 /* both */

static inline bool usmc_clc_smcr_indicated(uint8_t smc_type)
{
	return smc_type == SMC_TYPE_R || smc_type == SMC_TYPE_B;
}

static inline bool usmc_clc_smcd_indicated(uint8_t smc_type)
{
	return smc_type == SMC_TYPE_D || smc_type == SMC_TYPE_B;
}

#define SMC_V1 1
#define SMC_V2 2

/* Release in the v2 extension / first-contact extension (v2.1 = 1). */
#define SMC_RELEASE_0 0
#define SMC_RELEASE_1 1
#define SMC_RELEASE   SMC_RELEASE_1

/* In hdr.typev2 of Accept/Confirm: first contact; of Decline: out of sync.
 * (Wire byte 7 bit 3, 0x08.) */
#define SMC_FIRST_CONTACT_MASK 0x2

/* OS types in the first-contact extension and Decline v2. */
#define SMC_CLC_OS_ZOS	 1
#define SMC_CLC_OS_LINUX 2
#define SMC_CLC_OS_AIX	 3

/* Lengths. */
#define SMC_CLC_HDR_LEN		       8
#define SMC_CLC_TRL_LEN		       4
#define SMCR_CLC_ACCEPT_CONFIRM_LEN    68
#define SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 108
#define SMCD_CLC_ACCEPT_CONFIRM_LEN    48
#define SMCD_CLC_ACCEPT_CONFIRM_LEN_V2 78
#define SMC_CLC_DECLINE_LEN	       28
#define SMC_CLC_DECLINE_LEN_V2	       44
#define SMC_CLC_PROPOSAL_BASE_LEN      40 /* header + local id/gid/mac + offset */
#define SMC_CLC_SMCD_AREA_LEN	       40 /* ISM gid/chid, v2 ext offset ... */
#define SMC_CLC_PREFIX_LEN	       8  /* IPv4 subnet, len, v6 count */
#define SMC_CLC_IPV6_PREFIX_LEN	       17 /* 16-byte prefix + length */
#define SMC_CLC_V2_EXT_LEN	       40 /* without the user EIDs */
#define SMC_CLC_SMCD_V2_EXT_LEN	       48 /* system EID + reserved */
#define SMC_CLC_SMCD_GID_CHID_LEN      10
#define SMC_CLC_FCE_LEN		       36 /* first-contact extension, v2.0 */
#define SMC_CLC_FCE_LEN_V2X	       52 /* ... with the v2.1 fields */
#define SMC_CLC_GLE_HDR_LEN	       4  /* Confirm GID list: count + rsvd */

/* Limits. */
#define SMC_CLC_MAX_UEID	    8 /* user EIDs in one proposal */
#define SMC_MAX_UEID		    4 /* user EIDs Linux lets one configure */
#define SMC_MAX_EID_LEN		    32
#define SMC_MAX_HOSTNAME_LEN	    32
#define SMC_CLC_MAX_V6_PREFIX	    8
#define SMCD_CLC_MAX_V2_GID_ENTRIES 8
#define SMC_SYSTEMID_LEN	    8
#define SMC_GID_SIZE		    16
#define USMC_CLC_MAC_LEN	    6
/* GIDs in a Confirm GID list (Linux sends at most 2; RFC allows 8 links). */
#define USMC_CLC_MAX_GLE_GIDS	    8
/* Chunk Linux drains an over-long CLC message with. */
#define SMC_CLC_RECV_BUF_LEN	    100
/* Largest CLC message usmc accepts: a proposal with every area full is
 * 652 bytes; an Accept/Confirm with 8 GIDs is 292. */
#define USMC_CLC_MAX_LEN	    1024

/* v2.1 negotiation limits. */
#define SMC_CONN_PER_LGR_MIN	 16
#define SMC_CONN_PER_LGR_MAX	 255
#define SMC_LINKS_ADD_LNK_MIN	 1
#define SMC_LINKS_ADD_LNK_MAX	 2
#define SMC_SPF_EMULATED_ISM_DEV 0x0001 /* feature mask bit 0 */
/* CHID of a virtual ISM device such as loopback-ism (smc_loopback.h) */
#define SMC_LO_RESERVED_CHID	 0xFFFF

/* Compressed buffer sizes: 1 << (n + 14) bytes. */
#define SMC_BUF_MIN_SIZE    16384
#define SMCR_RMBE_SIZES	    15 /* largest SMC-R n: 512 MiB */
#define SMCD_DMBE_SIZES	    6  /* largest SMC-D n: 1 MiB */
#define USMC_RFC_RMBE_SIZES 5  /* RFC 7609 range: 512 KiB */

/* QP MTU enum in Accept/Confirm (IB enum ib_mtu). */
#define USMC_CLC_MTU_256  1
#define USMC_CLC_MTU_4096 5

/* Timeouts (ns; the kernel's are in jiffies). */
#define CLC_WAIT_TIME	    (6 * USMC_NS_PER_SEC)
#define CLC_WAIT_TIME_SHORT (1 * USMC_NS_PER_SEC)

/* Decline / fallback reason codes (peer diagnosis on the wire). */
#define SMC_CLC_DECL_MEM	0x01010000 /* insufficient memory */
#define SMC_CLC_DECL_TIMEOUT_CL 0x02010000 /* timeout w4 QP confirm link */
#define SMC_CLC_DECL_TIMEOUT_AL 0x02020000 /* timeout w4 QP add link */
#define SMC_CLC_DECL_CNFERR	0x03000000 /* configuration error */
#define SMC_CLC_DECL_PEERNOSMC	0x03010000 /* peer did not indicate SMC */
#define SMC_CLC_DECL_IPSEC	0x03020000 /* IPsec usage */
#define SMC_CLC_DECL_NOSMCDEV	0x03030000 /* no SMC device found (R or D) */
#define SMC_CLC_DECL_NOSMCDDEV	0x03030001 /* no SMC-D device found */
#define SMC_CLC_DECL_NOSMCRDEV	0x03030002 /* no SMC-R device found */
#define SMC_CLC_DECL_NOISM2SUPP 0x03030003 /* hardware has no ISMv2 support */
#define SMC_CLC_DECL_NOV2EXT	0x03030004 /* peer sent no clc v2 extension */
#define SMC_CLC_DECL_NOV2DEXT	0x03030005 /* peer sent no clc SMC-Dv2 ext. */
#define SMC_CLC_DECL_NOSEID	0x03030006 /* peer sent no SEID */
#define SMC_CLC_DECL_NOSMCD2DEV 0x03030007 /* no SMC-Dv2 device found */
#define SMC_CLC_DECL_NOUEID	0x03030008 /* peer sent no UEID */
#define SMC_CLC_DECL_RELEASEERR \
	0x03030009 /* release version negotiate failed */
#define SMC_CLC_DECL_MAXCONNERR \
	0x0303000a /* max connections negotiate failed */
#define SMC_CLC_DECL_MAXLINKERR	   0x0303000b /* max links negotiate failed */
#define SMC_CLC_DECL_MODEUNSUPP	   0x03040000 /* smc modes do not match (R or D) */
#define SMC_CLC_DECL_RMBE_EC	   0x03050000 /* peer has eyecatcher in RMBE */
#define SMC_CLC_DECL_OPTUNSUPP	   0x03060000 /* fastopen sockopt not supported */
#define SMC_CLC_DECL_DIFFPREFIX	   0x03070000 /* IP prefix / subnet mismatch */
#define SMC_CLC_DECL_GETVLANERR	   0x03080000 /* err to get vlan id of ip device */
#define SMC_CLC_DECL_ISMVLANERR	   0x03090000 /* err to reg vlan id on ism dev */
#define SMC_CLC_DECL_NOACTLINK	   0x030a0000 /* no active smc-r link in lgr */
#define SMC_CLC_DECL_NOSRVLINK	   0x030b0000 /* SMC-R link from srv not found */
#define SMC_CLC_DECL_VERSMISMAT	   0x030c0000 /* SMC version mismatch */
#define SMC_CLC_DECL_MAX_DMB	   0x030d0000 /* SMC-D DMB limit exceeded */
#define SMC_CLC_DECL_NOROUTE	   0x030e0000 /* SMC-Rv2 conn. no route to peer */
#define SMC_CLC_DECL_NOINDIRECT	   0x030f0000 /* SMC-Rv2 conn. indirect mismatch */
#define SMC_CLC_DECL_SYNCERR	   0x04000000 /* synchronization error */
#define SMC_CLC_DECL_PEERDECL	   0x05000000 /* peer declined during handshake */
#define SMC_CLC_DECL_INTERR	   0x09990000 /* internal error */
#define SMC_CLC_DECL_ERR_RTOK	   0x09990001 /* rtoken handling failed */
#define SMC_CLC_DECL_ERR_RDYLNK	   0x09990002 /* ib ready link failed */
#define SMC_CLC_DECL_ERR_REGBUF	   0x09990003 /* reg rdma bufs failed */
/* Legacy codes of the 2017 header; old peers may still send them. The
 * 2017 value of IPSEC (0x03030000) is NOSMCDEV today. */
#define SMC_CLC_DECL_TIMEOUT	   0x02000000 /* timeout */
#define SMC_CLC_DECL_TCL	   0x02040000 /* timeout w4 QP confirm */
#define SMC_CLC_DECL_REPLY	   0x06000000 /* reply to a received decline */
#define SMC_CLC_DECL_SEND	   0x07000000 /* sending problem */
#define SMC_CLC_DECL_INTERR_LEGACY 0x99990000 /* internal error (2017) */

/* The 8-byte header. Byte 7 splits into version (bits 7-4), typev2
 * (bits 3-2) and typev1 (bits 1-0); their meaning depends on the type:
 * - Proposal: typev1/typev2 = SMC types offered for v1/v2.
 * - Accept/Confirm: typev1 = type chosen (SMC_TYPE_R/D); typev2 &
 *   SMC_FIRST_CONTACT_MASK = first contact; typev2 bit 0 reserved.
 * - Decline: typev2 & SMC_FIRST_CONTACT_MASK = out of sync.
 * All values are kept as received so they re-encode unchanged. */
typedef struct usmc_clc_hdr {
	uint32_t eyecatcher; /* SMC_EYECATCHER or SMCD_EYECATCHER */
	uint8_t type;	     /* SMC_CLC_* */
	uint16_t length;     /* whole message incl. header and trailer */
	uint8_t version;     /* 1, 2 (>= 2 uses the v2 layout) */
	uint8_t typev2;	     /* 2 bits */
	uint8_t typev1;	     /* 2 bits */
} usmc_clc_hdr;

typedef struct usmc_clc_ipv6_prefix {
	uint8_t prefix[16];
	uint8_t prefix_len;
} usmc_clc_ipv6_prefix;

typedef struct usmc_clc_smcd_gid_chid {
	uint64_t gid;
	uint16_t chid;
} usmc_clc_smcd_gid_chid;

/*
 * Proposal. Which parts exist follows from the header:
 * - SMC-D area: always with version >= 2; with version 1 only if
 *   smcd_area (then iparea_offset is 40, else 0).
 * - IP prefix area: if typev1 != SMC_TYPE_N (always for version 1).
 * - v2 extension: if version >= 2 and typev2 != SMC_TYPE_N.
 * - SMC-Dv2 extension: if version >= 2 and usmc_clc_smcd_indicated(typev2).
 * Counts are bounded by the array sizes (8 each).
 */
typedef struct usmc_clc_proposal {
	uint8_t peer_id[SMC_SYSTEMID_LEN]; /* sender system id */
	uint8_t gid[SMC_GID_SIZE];	   /* RoCE v1 GID (zero if no v1 R) */
	uint8_t mac[USMC_CLC_MAC_LEN];
	/* v1: the SMC-D area is present. v2 with typev1 N: iparea_offset is
	 * 40 rather than Linux's 0. Ignored otherwise (v2 always has the
	 * area, and typev1 != N forces offset 40). */
	bool smcd_area;
	/* SMC-D area */
	uint64_t ism_gid;
	uint16_t ism_chid;
	uint8_t vendor_oui[3];
	uint8_t vendor_exp_options[5];
	/* IP prefix area */
	uint32_t ipv4_subnet; /* network address, host order */
	uint8_t ipv4_prefix_len;
	uint8_t ipv6_prefix_cnt;
	usmc_clc_ipv6_prefix ipv6_prefixes[SMC_CLC_MAX_V6_PREFIX];
	/* v2 extension */
	uint8_t eid_cnt;
	uint8_t ism_gid_cnt;
	uint8_t release;		/* 4 bits */
	bool seid;			/* system EID present (SMC-Dv2) */
	uint8_t roce_gid[SMC_GID_SIZE]; /* RoCEv2 GID */
	uint8_t max_conns;		/* v2.1 */
	uint8_t max_links;		/* v2.1 */
	uint16_t feature_mask;		/* v2.1 */
	uint8_t user_eids[SMC_CLC_MAX_UEID][SMC_MAX_EID_LEN];
	/* SMC-Dv2 extension */
	uint8_t system_eid[SMC_MAX_EID_LEN];
	usmc_clc_smcd_gid_chid ism_gids[SMCD_CLC_MAX_V2_GID_ENTRIES];
} usmc_clc_proposal;

/*
 * Accept or Confirm. SMC-R v1: exactly 68 bytes. v2 (version >= 2) adds
 * the negotiated EID; with first contact also the first-contact
 * extension, and a Confirm with first contact carries the GID list. For
 * SMC-R the extension is always the 52-byte v2x form (Linux sends it so
 * even at release 0; the 36-byte form is SMC-D's), so the v2.1 fields
 * are always on the wire.
 */
typedef struct usmc_clc_accept_confirm {
	uint8_t peer_id[SMC_SYSTEMID_LEN];
	uint8_t gid[SMC_GID_SIZE];
	uint8_t mac[USMC_CLC_MAC_LEN];
	uint32_t qpn;		   /* 24 bits, >= 2 */
	uint32_t rmb_rkey;	   /* rkey of the sender's RMB on this link */
	uint8_t rmbe_idx;	   /* >= 1 (Linux: 1) */
	uint32_t rmbe_alert_token; /* non-zero */
	uint8_t rmbe_size;	   /* compressed, 4 bits */
	uint8_t qp_mtu;		   /* 1..5 = 256..4096 */
	uint64_t rmb_dma_addr;
	uint32_t psn; /* 24 bits */
	/* v2 */
	uint8_t eid[SMC_MAX_EID_LEN];
	/* first-contact extension (v2 and first contact) */
	bool fce_v2x;	 /* decode sets it; encode always writes the v2x form */
	bool v2_direct;	 /* same subnet, no gateway */
	uint8_t os_type; /* 4 bits */
	uint8_t release; /* 4 bits */
	uint8_t hostname[SMC_MAX_HOSTNAME_LEN];
	uint8_t max_conns;	     /* v2.1 (zero at release 0) */
	uint8_t max_links;	     /* v2.1 */
	uint16_t feature_mask;	     /* v2.1 */
	uint32_t vendor_exp_options; /* v2.1 */
	/* GID list (Confirm, v2, first contact) */
	uint8_t gid_cnt;
	uint8_t gids[USMC_CLC_MAX_GLE_GIDS][SMC_GID_SIZE];
	/* SMC-D (typev1 D; struct smcd_clc_msg_accept_confirm_common and its
	 * v2 part d1). The SMC-R fields above stay zero, except eid and the
	 * first-contact extension, which is 36 bytes at release 0 and the
	 * 52-byte v2x form from release 1 on (smc_clc_fill_fce_v2x): fce_v2x
	 * says which, on decode and encode. */
	uint64_t d_gid;	   /* sender's ISM GID */
	uint64_t d_token;  /* the sender's DMB token (non-zero) */
	uint8_t dmbe_idx;  /* Linux: 0 */
	uint8_t dmbe_size; /* compressed DMB size, 4 bits */
	uint32_t d_linkid; /* the sender's link group id */
	uint16_t d_chid;   /* v2 */
	uint64_t gid_ext;  /* v2: virtual ISM's GID extension (else 0) */
} usmc_clc_accept_confirm;

/* Decline: 28 bytes (v1) or 44 (version >= 2). */
typedef struct usmc_clc_decline {
	uint8_t peer_id[SMC_SYSTEMID_LEN];
	uint32_t peer_diagnosis; /* SMC_CLC_DECL_* */
	uint8_t os_type;	 /* v2, 4 bits */
	uint32_t diag_info[4];	 /* v2: additional diagnosis (Linux: 0) */
} usmc_clc_decline;

/* One CLC message: hdr.type selects the union member. */
typedef struct usmc_clc_msg {
	usmc_clc_hdr hdr;
	uint32_t trailer; /* trailer eyecatcher; 0 on encode = hdr's */
	union {
		usmc_clc_proposal prop;
		usmc_clc_accept_confirm ac; /* ACCEPT and CONFIRM */
		usmc_clc_decline decl;
	} u;
} usmc_clc_msg;

/* usmc_clc_hdr_peek decodes and checks the 8-byte header at |buf|:
 * eyecatcher, version >= 1, type 1..4, and a length between the least
 * and the most a message of that type can have. Returns 0, or
 * USMC_ERR_TRUNCATED (len < 8), USMC_ERR_BAD_EYECATCHER,
 * USMC_ERR_BAD_VERSION, USMC_ERR_BAD_TYPE, USMC_ERR_BAD_LENGTH. */
int usmc_clc_hdr_peek(const uint8_t *buf, size_t len, usmc_clc_hdr *hdr);

/* usmc_clc_decode decodes and validates one whole message (the first
 * hdr.length bytes of |buf|; |len| may be larger). Returns the number of
 * bytes consumed (hdr.length), or a negative USMC_ERR_*. |msg| is zeroed
 * first; on error its contents are unspecified. */
usmc_ssize usmc_clc_decode(const uint8_t *buf, size_t len, usmc_clc_msg *msg);

/* usmc_clc_encode writes |msg| to |out|. hdr.length, the offsets and the
 * trailer are computed from the contents (hdr.eyecatcher 0 means "SMCR").
 * Returns the byte count, USMC_ERR_NOBUF if |cap| is too small, or
 * USMC_ERR_INVALID_ARGUMENT for contents that cannot be encoded (a count
 * over its limit, a field over its bit width, an unknown type). */
usmc_ssize usmc_clc_encode(const usmc_clc_msg *msg, uint8_t *out, size_t cap);

/* usmc_clc_encoded_len returns what usmc_clc_encode would write, or a
 * negative USMC_ERR_INVALID_ARGUMENT. */
usmc_ssize usmc_clc_encoded_len(const usmc_clc_msg *msg);

/* usmc_clc_decline_init fills |msg| with a Decline as Linux's
 * smc_clc_send_decline builds it: eyecatcher SMCR, version 1 or 2 (answer
 * with the version of the peer's Proposal), the out-of-sync flag when
 * |code| is SMC_CLC_DECL_SYNCERR, OS type Linux in a v2 Decline, and the
 * sender's system id (NULL: zero). */
void usmc_clc_decline_init(usmc_clc_msg *msg, uint32_t code, uint8_t version,
			   const uint8_t *peer_id);

/* RMBE size compression as Linux: sizes <= 16 KiB give 0, others are
 * rounded up to a power of two; the result is capped at |max_comp|
 * (SMCR_RMBE_SIZES, or USMC_RFC_RMBE_SIZES for RFC peers). */
uint8_t usmc_clc_compress_bufsize(uint64_t size, uint8_t max_comp);
/* 1 << (comp + 14); comp is 4 bits (larger values are masked). */
uint32_t usmc_clc_uncompress_bufsize(uint8_t comp);

/* Kernel name ("PEERNOSMC") and text of a decline code; "UNKNOWN" and
 * "unknown decline code" for others. Never NULL. */
const char *usmc_clc_decl_name(uint32_t code);
const char *usmc_clc_decl_str(uint32_t code);

/* What an SMC-R-only server can do, for usmc_clc_srv_classify. */
typedef struct usmc_clc_srv_caps {
	bool smcr_v1; /* has a RoCE v1 device for this connection */
	bool smcr_v2; /* has a RoCEv2 device for this connection */
	/* The proposal's IP prefix matches a local one (the caller checks,
	 * e.g. with usmc_clc_prefix_match; only used for v1). */
	bool prefix_match;
	const uint8_t (*ueids)[SMC_MAX_EID_LEN]; /* local user EIDs */
	size_t ueid_cnt;
	uint8_t max_conns; /* local limit (sysctl smcr_max_conns_per_lgr) */
	uint8_t max_links; /* local limit (sysctl smcr_max_links_per_lgr) */
} usmc_clc_srv_caps;

/* What the server chose. */
typedef struct usmc_clc_srv_choice {
	uint8_t version; /* SMC_V1 or SMC_V2 */
	uint8_t release; /* v2: min(proposed, SMC_RELEASE) */
	uint8_t max_conns;
	uint8_t max_links;
	uint8_t eid[SMC_MAX_EID_LEN]; /* v2: the negotiated user EID */
} usmc_clc_srv_choice;

/* usmc_clc_srv_classify decides, as Linux's smc_listen_work would for a
 * server without SMC-D, whether a decoded |prop| can go ahead as SMC-R.
 * Returns 0 and fills |out|, or the SMC_CLC_DECL_* code to decline with
 * (e.g. NOSMCDDEV for a proposal offering only SMC-D, NOUEID for v2
 * without EIDs, DIFFPREFIX for a v1 subnet mismatch). */
uint32_t usmc_clc_srv_classify(const usmc_clc_msg *prop,
			       const usmc_clc_srv_caps *caps,
			       usmc_clc_srv_choice *out);

/* usmc_clc_clnt_check_accept checks a decoded Accept against the
 * Proposal the client sent, as Linux's client does: the type and version
 * must have been offered (else MODEUNSUPP); a v2 first contact takes the
 * release from the first-contact extension and, from release 1 on, needs
 * max_links 1..2 (MAXLINKERR) and max_conns >= 16 (MAXCONNERR). Returns 0
 * and fills |out| (version, release, max_conns, max_links, eid), or the
 * SMC_CLC_DECL_* code to decline with. Routing checks (NOROUTE,
 * NOINDIRECT) are left to the caller. */
uint32_t usmc_clc_clnt_check_accept(const usmc_clc_msg *prop,
				    const usmc_clc_msg *accept,
				    usmc_clc_srv_choice *out);

/* usmc_clc_srv_check_confirm checks that a v2 first-contact Confirm repeats
 * what the server's Accept agreed (|agreed|, e.g. from
 * usmc_clc_srv_classify): same release (RELEASEERR), and from release 1
 * on the same max_conns (MAXCONNERR) and max_links (MAXLINKERR). Returns 0
 * or the SMC_CLC_DECL_* code. */
uint32_t usmc_clc_srv_check_confirm(const usmc_clc_srv_choice *agreed,
				    const usmc_clc_msg *confirm);

/* A local address for usmc_clc_prefix_match. */
typedef struct usmc_clc_local_prefix {
	bool is_v6;
	uint8_t addr[16]; /* IPv4: first 4 bytes, network order */
	uint8_t prefix_len;
} usmc_clc_local_prefix;

/* usmc_clc_prefix_match reports whether a proposal's IP area matches one
 * of |local| (IPv4 when it has no IPv6 prefixes: same prefix length and
 * same network; else any IPv6 prefix equal to a local one), as Linux's
 * smc_clc_prfx_match. Link-local IPv6 addresses should be left out. */
bool usmc_clc_prefix_match(const usmc_clc_proposal *prop,
			   const usmc_clc_local_prefix *local, size_t n);

#endif /* USMC_CLC_H */
