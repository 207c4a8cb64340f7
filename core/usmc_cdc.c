/* SPDX-License-Identifier: MIT */
/* CDC codec and cursor arithmetic; see usmc_cdc.h. */
#include "usmc_cdc.h"

#include "usmc_conv.h"

/* Wire offsets, as the kernel's struct smc_cdc_msg */
#define CDC_OFF_TYPE	   0
#define CDC_OFF_LEN	   1
#define CDC_OFF_SEQNO	   2
#define CDC_OFF_TOKEN	   4
#define CDC_OFF_PROD	   8 /* 2 reserved, wrap BE16, count BE32 */
#define CDC_OFF_CONS	   16
#define CDC_OFF_PROD_FLAGS 24
#define CDC_OFF_CONN_STATE 25
#define CDC_OFF_RESERVED   26

static void curs_get(usmc_curs *c, const uint8_t *p)
{
	c->wrap = usmc_get_be16(p + 2);
	c->count = usmc_get_be32(p + 4);
}

static uint8_t *curs_put(uint8_t *p, const usmc_curs *c)
{
	p = usmc_put_zero(p, 2);
	p = usmc_put_be16(p, c->wrap);
	return usmc_put_be32(p, c->count);
}

usmc_ssize usmc_cdc_decode(usmc_cdc_msg *msg, const uint8_t *buf, size_t len)
{
	if (!msg || (!buf && len))
		return USMC_ERR_INVALID_ARGUMENT;
	if (len < SMC_CDC_MSG_LEN)
		return USMC_ERR_TRUNCATED;
	if (buf[CDC_OFF_TYPE] != SMC_CDC_MSG_TYPE)
		return USMC_ERR_BAD_TYPE;
	if (buf[CDC_OFF_LEN] != SMC_CDC_MSG_LEN)
		return USMC_ERR_BAD_LENGTH;
	msg->seqno = usmc_get_be16(buf + CDC_OFF_SEQNO);
	msg->token = usmc_get_be32(buf + CDC_OFF_TOKEN);
	/* Tokens are non-zero ids; 0 can never name a connection. */
	if (!msg->token)
		return USMC_ERR_BAD_VALUE;
	curs_get(&msg->prod, buf + CDC_OFF_PROD);
	curs_get(&msg->cons, buf + CDC_OFF_CONS);
	msg->prod_flags = buf[CDC_OFF_PROD_FLAGS];
	msg->conn_state_flags = buf[CDC_OFF_CONN_STATE];
	return SMC_CDC_MSG_LEN;
}

usmc_ssize usmc_cdc_encode(uint8_t *buf, size_t cap, const usmc_cdc_msg *msg)
{
	uint8_t *p = buf;

	if (!msg || (!buf && cap))
		return USMC_ERR_INVALID_ARGUMENT;
	if (!msg->token)
		return USMC_ERR_INVALID_ARGUMENT;
	if (cap < SMC_CDC_MSG_LEN)
		return USMC_ERR_NOBUF;
	p = usmc_put_u8(p, SMC_CDC_MSG_TYPE);
	p = usmc_put_u8(p, SMC_CDC_MSG_LEN);
	p = usmc_put_be16(p, msg->seqno);
	p = usmc_put_be32(p, msg->token);
	p = curs_put(p, &msg->prod);
	p = curs_put(p, &msg->cons);
	p = usmc_put_u8(p, msg->prod_flags);
	p = usmc_put_u8(p, msg->conn_state_flags);
	usmc_put_zero(p, SMC_CDC_MSG_LEN - CDC_OFF_RESERVED);
	return SMC_CDC_MSG_LEN;
}

int usmc_cdc_curs_valid(const usmc_curs *c, uint32_t rmbe_size)
{
	if (!c || !rmbe_size)
		return USMC_ERR_INVALID_ARGUMENT;
	return c->count < rmbe_size ? 0 : USMC_ERR_BAD_OFFSET;
}

void usmc_curs_add(usmc_curs *c, uint32_t size, uint32_t n)
{
	uint64_t pos;

	if (!size)
		return;
	/* 64-bit so that count + n cannot overflow; for count < size and
	 * n <= size this is the kernel's single conditional wrap. */
	pos = (uint64_t)c->count + n;
	c->wrap = (uint16_t)(c->wrap + pos / size);
	c->count = (uint32_t)(pos % size);
}

int32_t usmc_curs_diff(uint32_t size, const usmc_curs *old,
		       const usmc_curs *new)
{
	int64_t d;

	if (old->wrap != new->wrap)
		d = ((int64_t)size - old->count) + new->count;
	else
		d = (int64_t) new->count - old->count;
	if (d < 0)
		return 0;
	/* Only reachable with counts >= size; keep the result in range. */
	if (d > INT32_MAX)
		return INT32_MAX;
	return (int32_t)d;
}

int32_t usmc_curs_comp(uint32_t size, const usmc_curs *old,
		       const usmc_curs *new)
{
	if (old->wrap > new->wrap ||
	    (old->wrap == new->wrap && old->count > new->count))
		return -usmc_curs_diff(size, new, old);
	return usmc_curs_diff(size, old, new);
}

int32_t usmc_curs_diff_large(uint32_t size, const usmc_curs *old,
			     const usmc_curs *new)
{
	int64_t d, wraps;

	if (old->wrap == new->wrap) {
		d = (int64_t) new->count - old->count;
		return d < 0 ? 0 : (d > INT32_MAX ? INT32_MAX : (int32_t)d);
	}
	/* Whole wraps between the two, across the 0xffff -> 0 rollover when
	 * new's wrap is numerically smaller. */
	if (old->wrap < new->wrap)
		wraps = (int64_t) new->wrap - old->wrap - 1;
	else
		wraps = (int64_t) new->wrap + 0xffff - old->wrap;
	d = ((int64_t)size - old->count) + new->count + wraps *size;
	if (d > (int64_t)size)
		d = size;
	if (d < 0)
		d = 0;
	return d > INT32_MAX ? INT32_MAX : (int32_t)d;
}

int usmc_curs_update(usmc_curs *local, const usmc_curs *peer)
{
	if (local->wrap > peer->wrap && peer->wrap)
		return 0;
	if (local->wrap == peer->wrap && local->count > peer->count)
		return 0;
	*local = *peer;
	return 1;
}

int usmc_cdc_seq_before(uint16_t a, uint16_t b)
{
	return (int16_t)(uint16_t)(a - b) < 0;
}

/* SMC-D: host-endian, as the kernel's smcd_cdc_msg (no byte swapping). */
usmc_ssize usmc_smcd_cdc_encode(uint8_t *buf, size_t cap,
				const usmc_cdc_msg *msg)
{
	if (!buf || !msg)
		return USMC_ERR_INVALID_ARGUMENT;
	if (cap < SMCD_CDC_MSG_LEN)
		return USMC_ERR_NOBUF;
	memset(buf, 0, SMCD_CDC_MSG_LEN);
	buf[0] = SMC_CDC_MSG_TYPE;
	memcpy(buf + 8, &msg->prod.wrap, 2);
	memcpy(buf + 10, &msg->prod.count, 4);
	memcpy(buf + 16, &msg->cons.wrap, 2);
	memcpy(buf + 18, &msg->cons.count, 4);
	buf[22] = msg->prod_flags;
	buf[23] = msg->conn_state_flags;
	return SMCD_CDC_MSG_LEN;
}

usmc_ssize usmc_smcd_cdc_decode(usmc_cdc_msg *msg, const uint8_t *buf,
				size_t len)
{
	if (!buf || !msg)
		return USMC_ERR_INVALID_ARGUMENT;
	memset(msg, 0, sizeof(*msg));
	if (len < SMCD_CDC_MSG_LEN)
		return USMC_ERR_TRUNCATED;
	if (buf[0] != SMC_CDC_MSG_TYPE)
		return USMC_ERR_BAD_TYPE;
	memcpy(&msg->prod.wrap, buf + 8, 2);
	memcpy(&msg->prod.count, buf + 10, 4);
	memcpy(&msg->cons.wrap, buf + 16, 2);
	memcpy(&msg->cons.count, buf + 18, 4);
	msg->prod_flags = buf[22];
	msg->conn_state_flags = buf[23];
	return SMCD_CDC_MSG_LEN;
}
