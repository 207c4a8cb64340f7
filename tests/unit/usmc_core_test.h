/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the core state-machine tests (test_core_*.c): two or more
 * contexts on the sim fabric, a handshake helper, and a byte-exact
 * transfer pump with a seeded pattern and seeded chunk sizes.
 */
#ifndef USMC_CORE_TEST_H
#define USMC_CORE_TEST_H

#include "usmc_cdc.h"
#include "usmc_core.h"
#include "usmc_sim.h"
#include "usmc_test.h"

#define SEC USMC_NS_PER_SEC

/* The test pattern: a fixed pseudo-random table of prime length, read at
 * an offset that depends on the seed, so streams differ and no RMB or
 * sndbuf size lines up with its period. Fills and checks go by memcpy
 * and memcmp, which keeps byte-exact checks of 1 GiB cheap. */
#define PAT_LEN 65521u

static inline const uint8_t *pat_table(void)
{
	static uint8_t t[PAT_LEN];
	static int init;

	if (!init) {
		uint64_t x = 0x243f6a8885a308d3ull;

		for (uint32_t i = 0; i < PAT_LEN; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			t[i] = (uint8_t)(x >> 24);
		}
		init = 1;
	}
	return t;
}

static inline uint32_t pat_pos(uint32_t seed, uint64_t i)
{
	return (uint32_t)((i + (uint64_t)seed * 7919u) % PAT_LEN);
}

static inline uint8_t pat(uint32_t seed, uint64_t i)
{
	return pat_table()[pat_pos(seed, i)];
}

static inline void pat_fill(uint8_t *buf, uint32_t seed, uint64_t off, size_t n)
{
	while (n) {
		uint32_t p = pat_pos(seed, off);
		size_t k = PAT_LEN - p < n ? PAT_LEN - p : n;

		memcpy(buf, pat_table() + p, k);
		buf += k;
		off += k;
		n -= k;
	}
}

/* Number of bytes in |buf| that differ from the pattern. */
static inline size_t pat_check(const uint8_t *buf, uint32_t seed, uint64_t off,
			       size_t n)
{
	size_t bad = 0;

	while (n) {
		uint32_t p = pat_pos(seed, off);
		size_t k = PAT_LEN - p < n ? PAT_LEN - p : n;

		if (memcmp(buf, pat_table() + p, k))
			for (size_t i = 0; i < k; i++)
				bad += buf[i] != pat_table()[p + i];
		buf += k;
		off += k;
		n -= k;
	}
	return bad;
}

static inline uint64_t xrand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Settings with small buffers, so a few KiB wrap the RMBE. */
static inline usmc_settings small_settings(uint32_t bufsize)
{
	usmc_settings s;

	usmc_settings_default(&s);
	s.sndbuf_size = bufsize;
	s.rmb_size = bufsize;
	return s;
}

/* Connects |a| (client) to |b| (server) and runs the handshake. */
static inline int sim_pair(usmc_sim *sim, usmc_sim_node *a, usmc_sim_node *b,
			   usmc_sim_ep **c, usmc_sim_ep **s)
{
	int rv = usmc_sim_connect(sim, a, b, c, s);

	if (rv)
		return rv;
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 30 * SEC);
	return 0;
}

static inline int established(const usmc_sim_ep *ep)
{
	return ep->ev[USMC_EV_ESTABLISHED] == 1 &&
	       usmc_conn_get_mode(ep->conn) == USMC_MODE_SMCR &&
	       usmc_conn_state(ep->conn) == SMC_ACTIVE;
}

/* One direction of a transfer: |total| pattern bytes from |w| to |r| in
 * seeded chunk sizes up to |max_chunk|. */
typedef struct pump {
	usmc_sim_ep *w, *r;
	uint64_t total, written, readn;
	uint32_t seed;
	size_t max_chunk;
	uint64_t rng;
	int bad;	/* a byte differed */
	int wouldblock; /* times the writer saw WOULDBLOCK */
	uint8_t buf[1 << 17];
} pump;

static inline void pump_init(pump *p, usmc_sim_ep *w, usmc_sim_ep *r,
			     uint64_t total, uint32_t seed, size_t max_chunk)
{
	memset(p, 0, sizeof(*p));
	p->w = w;
	p->r = r;
	p->total = total;
	p->seed = seed;
	p->max_chunk = max_chunk > sizeof(p->buf) ? sizeof(p->buf) : max_chunk;
	p->rng = seed * 2654435761u + 1;
}

/* Writes and reads what it can; returns 1 when everything arrived. */
static inline int pump_step(pump *p, usmc_sim *sim)
{
	usmc_tstamp now = usmc_sim_now(sim);

	while (p->written < p->total) {
		size_t n = 1 + (size_t)(xrand(&p->rng) % p->max_chunk);
		usmc_ssize k;

		if (n > p->total - p->written)
			n = (size_t)(p->total - p->written);
		pat_fill(p->buf, p->seed, p->written, n);
		k = usmc_conn_write(p->w->conn, p->buf, n, now);
		if (k == USMC_ERR_WOULDBLOCK) {
			p->wouldblock++;
			break;
		}
		if (k <= 0)
			return -1;
		p->written += (uint64_t)k;
		if ((size_t)k < n) {
			p->wouldblock++;
			break;
		}
	}
	for (;;) {
		size_t n = 1 + (size_t)(xrand(&p->rng) % p->max_chunk);
		usmc_ssize k = usmc_conn_read(p->r->conn, p->buf, n, now);

		if (k == USMC_ERR_WOULDBLOCK || k == 0)
			break;
		if (k < 0)
			return -1;
		p->bad += (int)pat_check(p->buf, p->seed, p->readn, (size_t)k);
		p->readn += (uint64_t)k;
	}
	return p->readn == p->total;
}

/* Runs pumps (any number, any directions) to completion. */
static inline int pumps_run(usmc_sim *sim, pump **ps, int n, usmc_tstamp limit)
{
	for (;;) {
		int done = 1;
		uint64_t before = 0, after = 0;

		for (int i = 0; i < n; i++)
			before += ps[i]->written + ps[i]->readn;
		for (int i = 0; i < n; i++) {
			int r = pump_step(ps[i], sim);

			if (r < 0)
				return -1;
			if (!r)
				done = 0;
		}
		if (done)
			return 0;
		for (int i = 0; i < n; i++)
			after += ps[i]->written + ps[i]->readn;
		{
			usmc_tstamp t0 = usmc_sim_now(sim);

			if (usmc_sim_run_idle(sim, limit) < 0 ||
			    usmc_sim_now(sim) >= limit)
				return -2;
			/* nothing moved and the fabric was idle: stalled */
			if (after == before && usmc_sim_now(sim) == t0)
				return -3;
		}
	}
}

/* A forged CDC message on |from|'s first link: |prod| and |cons| are
 * cursors into a |size|-byte RMB. */
static inline void forge_cdc(usmc_sim *sim, usmc_sim_node *from, uint16_t seq,
			     uint32_t token, uint64_t prod, uint64_t cons,
			     uint32_t size, uint8_t pflags, uint8_t cflags)
{
	usmc_cdc_msg m;
	uint8_t buf[44];

	memset(&m, 0, sizeof(m));
	m.seqno = seq;
	m.token = token;
	m.prod.wrap = (uint16_t)(prod / size);
	m.prod.count = (uint32_t)(prod % size);
	m.cons.wrap = (uint16_t)(cons / size);
	m.cons.count = (uint32_t)(cons % size);
	m.prod_flags = pflags;
	m.conn_state_flags = cflags;
	USMC_ASSERT_EQ_FATAL(usmc_cdc_encode(buf, sizeof(buf), &m), 44);
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_inject_send(sim, usmc_sim_node_link(from, 0), buf, 44),
		0);
}

/* FNV-1a over |n| bytes at |p|, from |h| (a trace's fingerprint). */
static inline uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#endif /* USMC_CORE_TEST_H */
