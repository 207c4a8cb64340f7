/* SPDX-License-Identifier: MIT */
/*
 * What every usmc command-line tool does the same way: --version, a bad
 * option or value (one line saying what, then "Try 'TOOL --help'", exit
 * 2), and numbers with an optional K, M or G suffix checked to the end.
 */
#ifndef USMC_TOOL_H
#define USMC_TOOL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "usmc_version.h"

/* "usmc-stat (usmc) 0.1.0 (git 1234abcd)" on stdout. */
static inline void usmc_tool_version(const char *prog)
{
	printf("%s (usmc) %s\n", prog, USMC_VERSION_STRING);
}

/* After getopt has said what was wrong (argv[0] set to the tool's name,
 * so its message names the tool as this does). */
__attribute__((noreturn)) static inline void usmc_tool_try(const char *prog)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	exit(2);
}

__attribute__((noreturn, format(printf, 2, 3))) static inline void
usmc_tool_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usmc_tool_try(prog);
}

/* A whole decimal number, with an optional K, M or G (binary) suffix when
 * |suffix|, from min to max; -1 for anything else ("abc", "12x", "-1",
 * overflow). */
static inline int usmc_tool_number(const char *s, int suffix, uint64_t min,
				   uint64_t max, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (suffix && *end) {
		switch (*end) {
		case 'K':
		case 'k':
			shift = 10;
			break;
		case 'M':
		case 'm':
			shift = 20;
			break;
		case 'G':
		case 'g':
			shift = 30;
			break;
		default:
			return -1;
		}
		end++;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	v <<= shift;
	if (v < min || v > max)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

#endif /* USMC_TOOL_H */
