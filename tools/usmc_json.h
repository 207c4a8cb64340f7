/* SPDX-License-Identifier: MIT */
/*
 * One JSON string writer for every tool's --json: UTF-8 passes through
 * as it is; quotes, backslashes, control characters and DEL are escaped;
 * a byte that does not start a well-formed UTF-8 character (overlong
 * forms, surrogates, beyond U+10FFFF, cut short) becomes U+FFFD, so the
 * output is always valid JSON whatever a peer, a file or a program name
 * put into the string.
 */
#ifndef USMC_JSON_H
#define USMC_JSON_H

#include <stdio.h>
#include <string.h>

/* The length of the well-formed UTF-8 character at |s| (2 to 4), or 0. */
static inline int usmc_json_utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	int n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0; /* overlong */
	else if (c == 0xed)
		hi = 0x9f; /* UTF-16 surrogates */
	else if (c == 0xf0)
		lo = 0x90; /* overlong */
	else if (c == 0xf4)
		hi = 0x8f; /* beyond U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* The JSON text of the character at *s into |out| (NUL-terminated),
 * moving *s past it; 0 at the string's end. */
static inline int usmc_json_char(const char **s, char out[8])
{
	const unsigned char *c = (const unsigned char *)*s;
	int n;

	if (!*c)
		return 0;
	if (*c == '"' || *c == '\\') {
		out[0] = '\\';
		out[1] = (char)*c;
		out[2] = '\0';
		n = 1;
	} else if (*c < 0x20 || *c == 0x7f) {
		snprintf(out, 8, "\\u%04x", *c);
		n = 1;
	} else if (*c < 0x80) {
		out[0] = (char)*c;
		out[1] = '\0';
		n = 1;
	} else if ((n = usmc_json_utf8_len(c)) > 0) {
		memcpy(out, c, (size_t)n);
		out[n] = '\0';
	} else {
		memcpy(out, "\\ufffd", 7);
		n = 1;
	}
	*s += n;
	return 1;
}

/* |s| as a JSON string, quotes included. */
static inline void usmc_json_fputs(FILE *f, const char *s)
{
	char ch[8];

	fputc('"', f);
	while (usmc_json_char(&s, ch))
		fputs(ch, f);
	fputc('"', f);
}

#endif /* USMC_JSON_H */
