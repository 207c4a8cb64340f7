/* SPDX-License-Identifier: MIT */
/* tools/usmc_perf.h: usmc-perf's latency histogram and trailer rule. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_perf.h"
#include "usmc_test.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile of sorted |s|. */
static uint64_t exact_pct(const uint64_t *s, size_t n, double p)
{
	double r = p / 100.0 * (double)n;
	size_t k = (size_t)r;

	if ((double)k < r)
		k++;
	if (k < 1)
		k = 1;
	return s[k - 1];
}

/* |n| samples from |gen| into a histogram and a sorted array: every
 * percentile within 1% of exact sorting (0.4% by construction), the
 * maximum and minimum exact. */
static void check_against_sort(size_t n, uint64_t (*gen)(void))
{
	static const double ps[] = {0.1, 1,  10,   25,	  50, 75,
				    90,	 99, 99.9, 99.99, 100};
	uint64_t *s = malloc(n * sizeof(*s));
	usmc_hist *h = malloc(sizeof(*h));
	double worst = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	usmc_hist_init(h);
	for (size_t i = 0; i < n; i++) {
		s[i] = gen();
		usmc_hist_add(h, s[i]);
	}
	qsort(s, n, sizeof(*s), cmp_u64);
	CU_ASSERT_EQUAL(h->n, n);
	CU_ASSERT_EQUAL(h->min, s[0]);
	CU_ASSERT_EQUAL(h->max, s[n - 1]);
	CU_ASSERT_EQUAL(usmc_hist_pct(h, 100), s[n - 1]);
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = exact_pct(s, n, ps[i]),
			 got = usmc_hist_pct(h, ps[i]);
		double err =
			want ? (double)(got > want ? got - want : want - got) /
					(double)want
			     : (double)got;

		if (err > worst)
			worst = err;
		CU_ASSERT(err <= 0.01);
		if (err > 0.01)
			fprintf(stderr, "\n  n %zu p%g: %llu, exact %llu\n", n,
				ps[i], (unsigned long long)got,
				(unsigned long long)want);
	}
	CU_ASSERT(worst <= 1.0 / 256);
	free(s);
	free(h);
}

/* log-uniform over 1 ns .. 10 s */
static uint64_t gen_log(void)
{
	unsigned int e = (unsigned int)(rnd() % 34);
	uint64_t v = (1ull << e) + rnd() % (1ull << e);

	return v > 10000000000ull ? 10000000000ull : v;
}

/* a latency-like bulk near 5 us with a tail to 10 ms */
static uint64_t gen_bulk(void)
{
	uint64_t r = rnd();

	if (r % 1000 == 0)
		return 100000 + rnd() % 10000000;
	return 4500 + rnd() % 1000;
}

/* small values: exact */
static uint64_t gen_small(void)
{
	return rnd() % 200;
}

static void test_hist_vs_sort(void)
{
	check_against_sort(1, gen_log);
	check_against_sort(7, gen_log);
	check_against_sort(100000, gen_log);
	check_against_sort(200000, gen_bulk);
	check_against_sort(5000, gen_small);
}

/* Every bucket boundary: a value maps to the bucket whose range holds it,
 * and the bucket's value is within 1/256 of it. */
static void test_hist_buckets(void)
{
	unsigned int last = 0;

	CU_ASSERT_EQUAL(usmc_hist_bucket(0), 0);
	for (uint64_t v = 1; v < (1ull << USMC_HIST_TOP_BITS);
	     v += 1 + v / 97) {
		unsigned int b = usmc_hist_bucket(v);
		uint64_t m = usmc_hist_value(b);
		uint64_t d = m > v ? m - v : v - m;

		CU_ASSERT(b >= last);
		CU_ASSERT(b < USMC_HIST_BUCKETS);
		CU_ASSERT(d * 256 <= v);
		last = b;
	}
	CU_ASSERT_EQUAL(usmc_hist_bucket(UINT64_MAX), USMC_HIST_BUCKETS - 1);
	CU_ASSERT(sizeof(usmc_hist) <= 64 * 1024);
}

/* Per-interval histograms are differences of running ones: merging and
 * subtracting keep the counts. */
static void test_hist_merge(void)
{
	usmc_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	usmc_hist_init(a);
	usmc_hist_init(b);
	usmc_hist_add(a, 1000);
	usmc_hist_add(a, 3000);
	usmc_hist_add(b, 2000);
	usmc_hist_merge(a, b);
	CU_ASSERT_EQUAL(a->n, 3);
	CU_ASSERT_EQUAL(a->min, 1000);
	CU_ASSERT_EQUAL(a->max, 3000);
	CU_ASSERT_EQUAL(usmc_hist_pct(a, 50), 2000 + 4); /* the midpoint */
	usmc_hist_init(b);
	CU_ASSERT_EQUAL(usmc_hist_pct(b, 50), 0);
	free(a);
	free(b);
}

/* ----------------------------------------------------------- trailer rule */

static uint64_t unxorshift(uint64_t y, unsigned int s)
{
	uint64_t x = y;

	for (unsigned int i = 0; i < 64 / s + 1; i++)
		x = y ^ (x >> s);
	return x;
}

static uint64_t inv_mul(uint64_t m)
{
	uint64_t x = m; /* m odd: Newton's iteration doubles the bits */

	for (int i = 0; i < 6; i++)
		x *= 2 - m * x;
	return x;
}

/* usmc_perf_mix run backwards */
static uint64_t unmix(uint64_t x)
{
	x = unxorshift(x, 31);
	x *= inv_mul(0x94d049bb133111ebull);
	x = unxorshift(x, 27);
	x *= inv_mul(0xbf58476d1ce4e5b9ull);
	x = unxorshift(x, 30);
	return x - 0x9e3779b97f4a7c15ull;
}

/*
 * A timed stream's receiver takes 8 bytes of USMC_PERF_RES_MAGIC at a
 * CHUNK boundary for the trailer. The pattern is a bijection of the word
 * index, so exactly one word of pattern begins with the magic: find it by
 * running the mix backwards, and show that it is not at a CHUNK boundary
 * of either stream (the client's from 0, the --bidi server's from
 * BIDI_BASE), so no data CHUNK can be taken for the trailer.
 */
static void test_no_chunk_starts_like_trailer(void)
{
	uint8_t be[8], fill[8];
	uint64_t t, w, off;

	for (int i = 0; i < 1000; i++) {
		uint64_t x = rnd();

		CU_ASSERT_EQUAL(unmix(usmc_perf_mix(x)), x);
	}
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(USMC_PERF_RES_MAGIC >> (56 - 8 * i));
	memcpy(&t, be, 8); /* the host-order word whose bytes are these */
	w = unmix(t);
	off = w << 3;
	/* the detector sees it where it is ... */
	CU_ASSERT(w >> 61 || usmc_perf_like_trailer(off));
	CU_ASSERT_EQUAL(usmc_perf_mix(w), t);
	/* ... which is no CHUNK boundary: neither stream's base moves it
	 * (both are multiples of CHUNK) */
	CU_ASSERT(w >> 61 || off % USMC_PERF_CHUNK != 0);
	CU_ASSERT_EQUAL(USMC_PERF_BIDI_BASE % USMC_PERF_CHUNK, 0);
	for (uint64_t k = 0; k < 4096; k++) {
		CU_ASSERT(!usmc_perf_like_trailer(k * USMC_PERF_CHUNK));
		CU_ASSERT(!usmc_perf_like_trailer(USMC_PERF_BIDI_BASE +
						  k * USMC_PERF_CHUNK));
	}
	/* without --verify the data is the fill byte */
	memset(fill, USMC_PERF_FILL, 8);
	CU_ASSERT(memcmp(fill, be, 8) != 0);
	fprintf(stderr,
		"\n  the one word of pattern that begins like the "
		"trailer: offset 0x%016llx (%llu past a CHUNK "
		"boundary)\n",
		(unsigned long long)off,
		(unsigned long long)(off % USMC_PERF_CHUNK));
}

static CU_TestInfo perf_tests[] = {
	{"histogram percentiles vs sorting", test_hist_vs_sort},
	{"histogram buckets", test_hist_buckets},
	{"histogram merge", test_hist_merge},
	{"no data chunk starts like the trailer",
	 test_no_chunk_starts_like_trailer},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"tools perf", perf_tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
