/* SPDX-License-Identifier: MIT */
/*
 * Byte-order helpers for explicit wire encoding. Every codec reads and writes
 * network-order fields through these, so no struct is ever cast onto a buffer.
 * The put helpers return the advanced pointer, the get helpers the value.
 */
#ifndef USMC_CONV_H
#define USMC_CONV_H

#include <stdint.h>
#include <string.h>

static inline uint8_t *usmc_put_u8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static inline uint8_t *usmc_put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

/* 24-bit fields (QPN, PSN) are the low three bytes of a big-endian u32. */
static inline uint8_t *usmc_put_be24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
	return p + 3;
}

static inline uint8_t *usmc_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static inline uint8_t *usmc_put_be64(uint8_t *p, uint64_t v)
{
	usmc_put_be32(p, (uint32_t)(v >> 32));
	usmc_put_be32(p + 4, (uint32_t)v);
	return p + 8;
}

static inline uint8_t *usmc_put_bytes(uint8_t *p, const void *src, size_t n)
{
	memcpy(p, src, n);
	return p + n;
}

static inline uint8_t *usmc_put_zero(uint8_t *p, size_t n)
{
	memset(p, 0, n);
	return p + n;
}

static inline uint16_t usmc_get_be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t usmc_get_be24(const uint8_t *p)
{
	return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

static inline uint32_t usmc_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t usmc_get_be64(const uint8_t *p)
{
	return ((uint64_t)usmc_get_be32(p) << 32) | usmc_get_be32(p + 4);
}

/* Little-endian helpers: the ICRC trailer and Linux's host-order LLC v2
 * length fields (x86 peers) are little-endian on the wire. */
static inline uint8_t *usmc_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	return p + 2;
}

static inline uint8_t *usmc_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + 4;
}

static inline uint16_t usmc_get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t usmc_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* True when all n bytes at p are zero (reserved-field checks). */
static inline int usmc_is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

#endif /* USMC_CONV_H */
