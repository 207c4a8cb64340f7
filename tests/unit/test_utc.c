/* SPDX-License-Identifier: MIT */
/* runtime/usmc_utc.h (the log's time stamps) against glibc's gmtime_r:
 * every field, for every day from 1600 to 2500 and for times around the
 * epoch, leap days, century years and the ends of 32-bit time_t. */
#include <time.h>

#include "usmc_test.h"
#include "usmc_utc.h"

static long checked, wrong;

static void check(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	usmc_utc u;

	CU_ASSERT_FATAL(gmtime_r(&tt, &tm) != NULL);
	usmc_utc_from(t, &u);
	checked++;
	if (u.year != (int64_t)tm.tm_year + 1900 || u.mon != tm.tm_mon + 1 ||
	    u.mday != tm.tm_mday || u.hour != tm.tm_hour ||
	    u.min != tm.tm_min || u.sec != tm.tm_sec) {
		if (wrong++ < 5)
			fprintf(stderr,
				"t=%lld: %lld-%02d-%02d %02d:%02d:%02d, "
				"gmtime_r "
				"%d-%02d-%02d %02d:%02d:%02d\n",
				(long long)t, (long long)u.year, u.mon, u.mday,
				u.hour, u.min, u.sec, tm.tm_year + 1900,
				tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
				tm.tm_min, tm.tm_sec);
	}
}

static void test_utc_days(void)
{
	/* 1600-01-01 to 2500-01-01, each day at a time of day that moves
	 * (a prime step), and each day's first and last second */
	const int64_t from = -11676096000LL, to = 16725225600LL;
	int64_t tod = 0;

	checked = wrong = 0;
	for (int64_t d = from; d < to; d += 86400) {
		check(d);
		check(d + 86399);
		check(d + tod);
		tod = (tod + 7919) % 86400;
	}
	USMC_ASSERT_EQ(wrong, 0);
	CU_ASSERT(checked > 3 * 328000);
}

static void test_utc_edges(void)
{
	static const int64_t t[] = {
		0,
		-1,
		1,
		86399,
		86400,
		-86400,
		-86401,
		951782400,  /* 2000-02-29 */
		951868799,  /* 2000-02-29 23:59:59 */
		4107542400, /* 2100-03-01 */
		4107456000, /* 2100-02-28 */
		2147483647,
		-2147483648LL,
		4294967295LL,
		-62135596800LL, /* 0001-01-01 */
		-62167219200LL, /* 0000-01-01 */
		253402300799LL, /* 9999-12-31 23:59:59 */
	};

	checked = wrong = 0;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		for (int64_t k = -2; k <= 2; k++)
			check(t[i] + k);
	USMC_ASSERT_EQ(wrong, 0);
}

static CU_TestInfo tests[] = {
	{"every day 1600-2500 as gmtime_r", test_utc_days},
	{"epoch, leap days, centuries, 32-bit ends", test_utc_edges},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"utc", tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
