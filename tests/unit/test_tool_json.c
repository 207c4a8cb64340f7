/* SPDX-License-Identifier: MIT */
/* tools/usmc_json.h: the tools' one JSON string writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_json.h"
#include "usmc_test.h"

/* |in| as the writer prints it. */
static char *json_of(const char *in)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	usmc_json_fputs(f, in);
	fclose(f);
	return buf;
}

static void expect(const char *in, const char *want)
{
	char *got = json_of(in);

	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want))
		fprintf(stderr, "\n  json of [%s]: %s, want %s\n", in, got,
			want);
	free(got);
}

static void test_ascii(void)
{
	expect("", "\"\"");
	expect("redis-server", "\"redis-server\"");
	expect("a\"b\\c", "\"a\\\"b\\\\c\"");
	expect("tab\there\nnl\x01\x1f",
	       "\"tab\\u0009here\\u000anl\\u0001\\u001f\"");
	expect("del\x7f", "\"del\\u007f\"");
}

static void test_utf8_passes(void)
{
	expect("caf\xc3\xa9", "\"caf\xc3\xa9\"");	    /* U+00E9 */
	expect("\xe2\x82\xac", "\"\xe2\x82\xac\"");	    /* U+20AC */
	expect("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""); /* U+1F600 */
	expect("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
	expect("\xed\x9f\xbf", "\"\xed\x9f\xbf\"");	    /* U+D7FF */
	expect("\xef\xbf\xbd", "\"\xef\xbf\xbd\"");	    /* U+FFFD */
}

static void test_utf8_bad(void)
{
	expect("\xff", "\"\\ufffd\"");
	expect("\x80x", "\"\\ufffdx\"");	  /* a lone continuation */
	expect("\xc0\x80", "\"\\ufffd\\ufffd\""); /* overlong NUL */
	expect("\xc1\xbf", "\"\\ufffd\\ufffd\""); /* overlong */
	expect("\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */
	expect("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	expect("\xf4\x90\x80\x80",
	       "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* beyond U+10FFFF */
	expect("\xf5\x80", "\"\\ufffd\\ufffd\"");
	expect("\xe2\x82", "\"\\ufffd\\ufffd\"");   /* cut short at the end */
	expect("\xe2\x82x", "\"\\ufffd\\ufffdx\""); /* cut short */
	expect("a\xc3", "\"a\\ufffd\"");
}

/* Every string of up to 3 bytes from an alphabet of the interesting
 * ones: the output is quoted, has no raw control byte, and every byte
 * >= 0x80 in it belongs to a well-formed UTF-8 character. */
static void test_always_valid(void)
{
	static const unsigned char alpha[] = {
		0x00, 0x01, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0xbf, 0xc2, 0xc0,
		0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0};
	const size_t na = sizeof(alpha);
	unsigned char in[4];

	for (size_t i = 0; i < na * na * na; i++) {
		char *out;
		size_t len;

		in[0] = alpha[i % na];
		in[1] = alpha[i / na % na];
		in[2] = alpha[i / na / na];
		in[3] = 0;
		out = json_of((const char *)in);
		len = strlen(out);
		CU_ASSERT(len >= 2 && out[0] == '"' && out[len - 1] == '"');
		for (size_t k = 1; k + 1 < len;) {
			unsigned char c = (unsigned char)out[k];
			int n;

			CU_ASSERT(c >= 0x20 && c != 0x7f);
			if (c < 0x80) {
				k++;
				continue;
			}
			n = usmc_json_utf8_len((const unsigned char *)out + k);
			CU_ASSERT(n >= 2);
			k += n > 0 ? (size_t)n : 1;
		}
		free(out);
	}
}

static CU_TestInfo json_tests[] = {
	{"ascii and escapes", test_ascii},
	{"utf-8 passes through", test_utf8_passes},
	{"bad utf-8 becomes U+FFFD", test_utf8_bad},
	{"always valid", test_always_valid},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"tools json", json_tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
