/* SPDX-License-Identifier: MIT */
/*
 * usmc_tp_wcq, the completion FIFO of sim's and softroce's CQs and of
 * verbs' backlog: order kept across growth while the ring has wrapped,
 * the QPN check, empty pops, free.
 */
#include <stdint.h>
#include <string.h>

#include "usmc_test.h"
#include "usmc_tp_wcq.h"

static usmc_wc wc_of(uint64_t id)
{
	usmc_wc wc;

	memset(&wc, 0, sizeof(wc));
	wc.wr_id = id;
	wc.qp_num = (uint32_t)(id % 7) + 100;
	wc.byte_len = (uint32_t)(id * 3);
	return wc;
}

/* Pushes 1-4 and pops 0-3 (xorshift), 4000 times, from a capacity of 4:
 * the ring has wrapped at most of its growths (9 of 11); every completion
 * comes out once, in order. */
static void test_order_across_growth(void)
{
	usmc_tp_wcq q = {0};
	usmc_wc out[8];
	uint64_t pushed = 0, popped = 0;
	uint32_t x = 12345;
	int bad = 0;

	USMC_ASSERT_EQ(usmc_tp_wcq_pop(&q, out, 8), 0);
	for (int r = 0; r < 4000; r++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		for (uint32_t i = 0; i < 1 + x % 4; i++) {
			usmc_wc wc = wc_of(pushed++);

			if (usmc_tp_wcq_push(&q, &wc, 4))
				bad++;
		}
		for (int k = usmc_tp_wcq_pop(&q, out, (int)((x >> 8) % 4)),
			 i = 0;
		     i < k; i++) {
			usmc_wc want = wc_of(popped++);

			if (memcmp(&out[i], &want, sizeof(want)))
				bad++;
		}
	}
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(q.n, 3867u);
	CU_ASSERT_TRUE(q.cap >= q.n && (q.cap & (q.cap - 1)) == 0);
	while (q.n) {
		int k = usmc_tp_wcq_pop(&q, out, 8);

		CU_ASSERT_TRUE_FATAL(k > 0 && k <= 8);
		for (int i = 0; i < k; i++) {
			usmc_wc want = wc_of(popped++);

			if (memcmp(&out[i], &want, sizeof(want)))
				bad++;
		}
	}
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(popped, pushed);
	USMC_ASSERT_EQ(usmc_tp_wcq_pop(&q, out, 8), 0);
	usmc_tp_wcq_free(&q);
	CU_ASSERT_PTR_NULL(q.e);
	USMC_ASSERT_EQ(q.cap, 0u);
}

/* A QPN is named while a completion for it waits, and not after. */
static void test_names(void)
{
	usmc_tp_wcq q = {0};
	usmc_wc out[4];

	CU_ASSERT_FALSE(usmc_tp_wcq_names(&q, 100));
	for (uint64_t id = 0; id < 7; id++) {
		usmc_wc wc = wc_of(id);

		USMC_ASSERT_EQ(usmc_tp_wcq_push(&q, &wc, 2), 0);
	}
	for (uint32_t qpn = 100; qpn < 107; qpn++)
		CU_ASSERT_TRUE(usmc_tp_wcq_names(&q, qpn));
	CU_ASSERT_FALSE(usmc_tp_wcq_names(&q, 107));
	USMC_ASSERT_EQ(usmc_tp_wcq_pop(&q, out, 4), 4); /* ids 0..3 */
	for (uint32_t qpn = 100; qpn < 104; qpn++)
		CU_ASSERT_FALSE(usmc_tp_wcq_names(&q, qpn));
	for (uint32_t qpn = 104; qpn < 107; qpn++)
		CU_ASSERT_TRUE(usmc_tp_wcq_names(&q, qpn));
	usmc_tp_wcq_free(&q);
	CU_ASSERT_FALSE(usmc_tp_wcq_names(&q, 104));
}

static CU_TestInfo tests[] = {
	{"order kept across growth of a wrapped ring",
	 test_order_across_growth},
	{"a QPN is named while its completion waits", test_names},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"tp_wcq", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
