/* SPDX-License-Identifier: MIT */
/*
 * CDC (Connection Data Control) codec and RMBE cursor arithmetic (RFC 7609
 * section 4.3, Linux net/smc smc_cdc.[ch]). A CDC message is a 44-byte RDMA
 * SEND that moves a connection's producer and consumer cursors and carries
 * its urgent-data and close flags.
 *
 * A cursor is (wrap, count): count is a byte offset in the receiver's RMBE
 * (0..size-1) and wrap counts how often it wrapped (16 bit, rolls over).
 */
#ifndef USMC_CDC_H
#define USMC_CDC_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_err.h"

#define SMC_CDC_MSG_TYPE 0xFE
#define SMC_CDC_MSG_LEN	 44

/* Producer flags (byte 24) */
#define USMC_CDC_WRITE_BLOCKED	     0x80
#define USMC_CDC_URG_DATA_PENDING    0x40
#define USMC_CDC_URG_DATA_PRESENT    0x20
#define USMC_CDC_CONS_CURS_UPD_REQ   0x10
#define USMC_CDC_FAILOVER_VALIDATION 0x08
/* Connection state flags (byte 25) */
#define USMC_CDC_PEER_DONE_WRITING   0x80 /* sending done (shutdown WR) */
#define USMC_CDC_PEER_CONN_CLOSED    0x40
#define USMC_CDC_PEER_CONN_ABORT     0x20 /* abnormal close */

typedef struct usmc_curs {
	uint16_t wrap;
	uint32_t count;
} usmc_curs;

typedef struct usmc_cdc_msg {
	uint16_t seqno;
	/* the receiver's RMBE alert token (non-zero) */
	uint32_t token;
	usmc_curs prod; /* how far the sender wrote into our RMBE */
	usmc_curs cons; /* how far the sender consumed its own RMBE */
	/* USMC_CDC_* producer flags (raw byte; unknown bits kept) */
	uint8_t prod_flags;
	/* USMC_CDC_PEER_* connection state flags (raw byte) */
	uint8_t conn_state_flags;
} usmc_cdc_msg;

/* usmc_cdc_decode decodes the CDC message at the start of |buf| (|len|
 * bytes received). Returns 44, or USMC_ERR_TRUNCATED (len < 44),
 * USMC_ERR_BAD_TYPE (byte 0 != 0xFE), USMC_ERR_BAD_LENGTH (byte 1 != 44),
 * USMC_ERR_BAD_VALUE (token 0). Reserved bytes are ignored. Cursor counts
 * are checked against the RMBE size separately (usmc_cdc_curs_valid). */
usmc_ssize usmc_cdc_decode(usmc_cdc_msg *msg, const uint8_t *buf, size_t len);

/* usmc_cdc_encode writes |msg| (44 bytes, reserved bytes zero). Returns 44,
 * USMC_ERR_NOBUF, or USMC_ERR_INVALID_ARGUMENT (token 0). */
usmc_ssize usmc_cdc_encode(uint8_t *buf, size_t cap, const usmc_cdc_msg *msg);

/* SMC-D keeps the CDC in the first 32 bytes of the receiver's DMB
 * (struct smcd_cdc_msg): type 0xFE, 7 reserved, the producer cursor
 * {wrap u16, count u32, 2 flag bytes}, the consumer cursor alike, 8
 * reserved; host-endian, packed. The sender's flags ride in the consumer
 * cursor's flag bytes (smcd_cdc_msg_send); the producer's are 0. No seqno,
 * no token: |msg|'s are ignored on encode and 0 on decode. */
#define SMCD_CDC_MSG_LEN 32
/* Returns 32 or USMC_ERR_NOBUF. */
usmc_ssize usmc_smcd_cdc_encode(uint8_t *buf, size_t cap,
				const usmc_cdc_msg *msg);
/* Returns 32, USMC_ERR_TRUNCATED or USMC_ERR_BAD_TYPE (byte 0 != 0xFE:
 * nothing was written yet, or garbage). */
usmc_ssize usmc_smcd_cdc_decode(usmc_cdc_msg *msg, const uint8_t *buf,
				size_t len);

/* usmc_cdc_curs_valid returns 0 if |c| can point into an RMBE of
 * |rmbe_size| bytes (count < size), else USMC_ERR_BAD_OFFSET
 * (USMC_ERR_INVALID_ARGUMENT for size 0). */
int usmc_cdc_curs_valid(const usmc_curs *c, uint32_t rmbe_size);

/* usmc_curs_add advances |c| by |n| bytes in a ring of |size| bytes,
 * incrementing wrap (mod 2^16) when count passes the end. */
void usmc_curs_add(usmc_curs *c, uint32_t size, uint32_t n);

/* usmc_curs_diff returns the bytes from |old| to |new| where new is at most
 * one wrap ahead (smc_curs_diff); 0 if new is behind within the same wrap.
 * Counts must be < size. */
int32_t usmc_curs_diff(uint32_t size, const usmc_curs *old,
		       const usmc_curs *new);

/* usmc_curs_comp is usmc_curs_diff, but negative when |old| is ahead of
 * |new| (smc_curs_comp). */
int32_t usmc_curs_comp(uint32_t size, const usmc_curs *old,
		       const usmc_curs *new);

/* usmc_curs_diff_large returns the bytes from |old| to |new| when new may be
 * several wraps ahead, also across the 16-bit wrap rollover; the result is
 * capped at |size| (smc_curs_diff_large). */
int32_t usmc_curs_diff_large(uint32_t size, const usmc_curs *old,
			     const usmc_curs *new);

/* usmc_curs_update copies a cursor received from the peer into |local|
 * unless it goes backwards (smc_cdc_cursor_to_host): it is ignored if its
 * wrap is below local's and not 0 (0 is taken as the 16-bit rollover), or
 * if the wrap is equal and the count is smaller. Returns 1 if |local| was
 * updated, 0 if the update was ignored. */
int usmc_curs_update(usmc_curs *local, const usmc_curs *peer);

/* usmc_cdc_seq_before returns nonzero if sequence number |a| is older than
 * |b| in 16-bit serial arithmetic ((int16_t)(a - b) < 0): a CDC with such a
 * seqno is a stale duplicate and is dropped. */
int usmc_cdc_seq_before(uint16_t a, uint16_t b);

#endif /* USMC_CDC_H */
