/* SPDX-License-Identifier: MIT */
/* Error codes: every code has a distinct name and text; fatality boundary. */
#include "usmc_err.h"
#include "usmc_test.h"

static const int all_codes[] = {
	USMC_ERR_INVALID_ARGUMENT,
	USMC_ERR_NOBUF,
	USMC_ERR_PROTO,
	USMC_ERR_TRUNCATED,
	USMC_ERR_BAD_EYECATCHER,
	USMC_ERR_BAD_LENGTH,
	USMC_ERR_BAD_TYPE,
	USMC_ERR_BAD_VERSION,
	USMC_ERR_BAD_VALUE,
	USMC_ERR_BAD_OFFSET,
	USMC_ERR_BAD_COUNT,
	USMC_ERR_RESERVED_SET,
	USMC_ERR_INVALID_STATE,
	USMC_ERR_WOULDBLOCK,
	USMC_ERR_NOTSUP,
	USMC_ERR_DECLINED,
	USMC_ERR_TIMEOUT,
	USMC_ERR_CONNRESET,
	USMC_ERR_CONNABORTED,
	USMC_ERR_PIPE,
	USMC_ERR_NOTFOUND,
	USMC_ERR_BUSY,
	USMC_ERR_LIMIT,
	USMC_ERR_ACCESS,
	USMC_ERR_CLOSED,
	USMC_ERR_NOMEM,
	USMC_ERR_CALLBACK_FAILURE,
	USMC_ERR_TRANSPORT,
	USMC_ERR_INTERNAL,
};

static void test_err_names_distinct(void)
{
	size_t n = sizeof(all_codes) / sizeof(all_codes[0]);

	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_STRING_NOT_EQUAL(usmc_err_name(all_codes[i]),
					   "USMC_ERR_UNKNOWN");
		CU_ASSERT_STRING_NOT_EQUAL(usmc_strerror(all_codes[i]),
					   "unknown error");
		for (size_t j = i + 1; j < n; j++)
			CU_ASSERT_STRING_NOT_EQUAL(usmc_err_name(all_codes[i]),
						   usmc_err_name(all_codes[j]));
	}
	CU_ASSERT_STRING_EQUAL(usmc_err_name(-9999), "USMC_ERR_UNKNOWN");
}

static void test_err_fatal(void)
{
	CU_ASSERT_FALSE(usmc_err_is_fatal(USMC_ERR_PROTO));
	CU_ASSERT_FALSE(usmc_err_is_fatal(0));
	CU_ASSERT_TRUE(usmc_err_is_fatal(USMC_ERR_NOMEM));
	CU_ASSERT_TRUE(usmc_err_is_fatal(USMC_ERR_TRANSPORT));
}

static CU_TestInfo err_tests[] = {
	{"names_distinct", test_err_names_distinct},
	{"fatal", test_err_fatal},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"err", err_tests}, {NULL, NULL}};

	return usmc_test_main(suites);
}
