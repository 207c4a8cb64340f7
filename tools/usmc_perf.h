/* SPDX-License-Identifier: MIT */
/*
 * usmc-perf's pure parts, shared with its unit test: the latency histogram
 * and the pattern data with the trailer rule of a timed stream.
 */
#ifndef USMC_PERF_H
#define USMC_PERF_H

#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ histogram */

/*
 * Log-linear latency histogram: values below 2^USMC_HIST_SUB_BITS ns are
 * counted exactly; above, every power of two is cut into
 * 2^USMC_HIST_SUB_BITS equal buckets, so a bucket is at most 1/128 of the
 * values it holds wide and its midpoint is within 0.4% of any of them.
 * Fixed size (28 KiB) whatever the run's length, up to 2^34 ns (17 s);
 * longer samples count in the last bucket (the maximum stays exact).
 */
#define USMC_HIST_SUB_BITS 7
#define USMC_HIST_SUB	   (1u << USMC_HIST_SUB_BITS)
#define USMC_HIST_TOP_BITS 34 /* 2^34 ns: 17.2 s */
#define USMC_HIST_BUCKETS \
	((USMC_HIST_TOP_BITS - USMC_HIST_SUB_BITS + 1) * USMC_HIST_SUB)

typedef struct usmc_hist {
	uint64_t n;	   /* samples */
	uint64_t min, max; /* exact */
	uint64_t count[USMC_HIST_BUCKETS];
} usmc_hist;

static inline void usmc_hist_init(usmc_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

static inline unsigned int usmc_hist_bucket(uint64_t v)
{
	unsigned int e;

	if (v < USMC_HIST_SUB)
		return (unsigned int)v;
	if (v >> USMC_HIST_TOP_BITS)
		return USMC_HIST_BUCKETS - 1;
	e = 63u - (unsigned int)__builtin_clzll(v); /* >= SUB_BITS */
	return ((e - USMC_HIST_SUB_BITS + 1) << USMC_HIST_SUB_BITS) +
	       (unsigned int)((v >> (e - USMC_HIST_SUB_BITS)) &
			      (USMC_HIST_SUB - 1));
}

/* The midpoint of bucket |b|: the value a percentile in it reports. */
static inline uint64_t usmc_hist_value(unsigned int b)
{
	unsigned int e;
	uint64_t lo, w;

	if (b < USMC_HIST_SUB)
		return b;
	e = (b >> USMC_HIST_SUB_BITS) + USMC_HIST_SUB_BITS - 1;
	w = 1ull << (e - USMC_HIST_SUB_BITS);
	lo = ((uint64_t)USMC_HIST_SUB + (b & (USMC_HIST_SUB - 1))) * w;
	return lo + w / 2;
}

/* One sample. One writer; a reader on another thread (the interval
 * lines) loads n and count[] with atomic loads while it runs. */
static inline void usmc_hist_add(usmc_hist *h, uint64_t v)
{
	unsigned int b = usmc_hist_bucket(v);

	__atomic_store_n(&h->count[b], h->count[b] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->n, h->n + 1, __ATOMIC_RELAXED);
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* |from| added into |to| (the connections of -P). */
static inline void usmc_hist_merge(usmc_hist *to, const usmc_hist *from)
{
	for (unsigned int b = 0; b < USMC_HIST_BUCKETS; b++)
		to->count[b] += from->count[b];
	to->n += from->n;
	if (from->n && from->min < to->min)
		to->min = from->min;
	if (from->n && from->max > to->max)
		to->max = from->max;
}

/*
 * The |p| percentile (0 < p <= 100) by nearest rank, as exact sorting
 * gives it (the sample of rank ceil(p/100 * n)), within the bucket error;
 * kept within the exact min and max; the last rank is the max. 0 if
 * empty.
 */
static inline uint64_t usmc_hist_pct(const usmc_hist *h, double p)
{
	uint64_t rank, seen = 0, v;
	double r = p / 100.0 * (double)h->n;

	if (!h->n)
		return 0;
	rank = (uint64_t)r;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank >= h->n)
		return h->max; /* the last rank is the exact max */
	for (unsigned int b = 0; b < USMC_HIST_BUCKETS; b++) {
		seen += h->count[b];
		if (seen >= rank) {
			v = usmc_hist_value(b);
			if (v < h->min)
				v = h->min;
			if (v > h->max)
				v = h->max;
			return v;
		}
	}
	return h->max;
}

/* ---------------------------------------------------------- pattern data */

/* Wire constants a timed stream's trailer rule depends on. */
#define USMC_PERF_CHUNK	    (256 * 1024)
#define USMC_PERF_RES_MAGIC 0x55534d43524553ull /* "USMCRES" */
/* --bidi: the server's stream is the pattern from this offset on, so that
 * a byte that came back the wrong way fails the check */
#define USMC_PERF_BIDI_BASE (1ull << 62)
/* the bytes of a stream without --verify */
#define USMC_PERF_FILL	    0x5a

/* Pattern data: byte |o| of the stream is byte (o & 7), in host order, of
 * usmc_perf_mix(o >> 3) (the splitmix64 finalizer: a bijection). */
static inline uint64_t usmc_perf_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* 1 when pattern data from stream offset |off| (a multiple of 8) begins
 * with the trailer's magic, as the receiver reads it (big-endian). */
static inline int usmc_perf_like_trailer(uint64_t off)
{
	uint64_t w = usmc_perf_mix(off >> 3), v = 0;
	uint8_t b[8];

	memcpy(b, &w, 8);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v == USMC_PERF_RES_MAGIC;
}

#endif
