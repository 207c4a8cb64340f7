/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the runtime: explicit-mode port sets, size suffixes and
 * decline-code names. No I/O, so tests can drive them directly.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_clc.h"
#include "usmc_rt.h"

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parses a port 1..65535; advances *pp. */
static int parse_port(const char **pp, uint16_t *out)
{
	const char *p = *pp;
	unsigned long v = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return -1;
		p++;
	}
	if (v == 0)
		return -1;
	*out = (uint16_t)v;
	*pp = p;
	return 0;
}

static void portset_add(usmc_portset *ps, uint16_t lo, uint16_t hi)
{
	int i = 0, j;

	/* Insert sorted by lo, then merge overlapping or adjacent ranges. */
	while (i < ps->n && ps->lo[i] < lo)
		i++;
	memmove(&ps->lo[i + 1], &ps->lo[i], (size_t)(ps->n - i) * 2);
	memmove(&ps->hi[i + 1], &ps->hi[i], (size_t)(ps->n - i) * 2);
	ps->lo[i] = lo;
	ps->hi[i] = hi;
	ps->n++;
	for (i = 0, j = 1; j < ps->n; j++) {
		if ((uint32_t)ps->lo[j] <= (uint32_t)ps->hi[i] + 1) {
			if (ps->hi[j] > ps->hi[i])
				ps->hi[i] = ps->hi[j];
		} else {
			i++;
			ps->lo[i] = ps->lo[j];
			ps->hi[i] = ps->hi[j];
		}
	}
	ps->n = i + 1;
}

int usmc_portset_parse(usmc_portset *ps, const char *s, char *err,
		       size_t errlen)
{
	const char *p = s;

	memset(ps, 0, sizeof(*ps));
	if (!s) {
		snprintf(err, errlen, "no port list");
		return -1;
	}
	for (;;) {
		uint16_t lo, hi;
		const char *item;

		p = skip_ws(p);
		item = p;
		if (parse_port(&p, &lo)) {
			snprintf(err, errlen,
				 "bad port at \"%.20s\" (want 1-65535, "
				 "e.g. 7070,8000-8010)",
				 item);
			return -1;
		}
		hi = lo;
		p = skip_ws(p);
		if (*p == '-') {
			p = skip_ws(p + 1);
			if (parse_port(&p, &hi)) {
				snprintf(err, errlen,
					 "bad range end at \"%.20s\"", item);
				return -1;
			}
			if (hi < lo) {
				snprintf(err, errlen,
					 "empty range \"%u-%u\" (end below "
					 "start)",
					 lo, hi);
				return -1;
			}
			p = skip_ws(p);
		}
		if (ps->n == USMC_PORTSET_MAX) {
			snprintf(err, errlen, "too many ranges (max %d)",
				 USMC_PORTSET_MAX);
			return -1;
		}
		portset_add(ps, lo, hi);
		if (*p == '\0')
			return 0;
		if (*p != ',') {
			snprintf(err, errlen, "unexpected '%c' in port list",
				 *p);
			return -1;
		}
		p++;
	}
}

int usmc_portset_has(const usmc_portset *ps, uint16_t port)
{
	for (int i = 0; i < ps->n; i++)
		if (port >= ps->lo[i] && port <= ps->hi[i])
			return 1;
	return 0;
}

void usmc_portset_format(const usmc_portset *ps, char *buf, size_t len)
{
	size_t off = 0;

	if (len)
		buf[0] = '\0';
	for (int i = 0; i < ps->n && off < len; i++) {
		int w;

		if (ps->lo[i] == ps->hi[i])
			w = snprintf(buf + off, len - off, "%s%u", i ? "," : "",
				     ps->lo[i]);
		else
			w = snprintf(buf + off, len - off, "%s%u-%u",
				     i ? "," : "", ps->lo[i], ps->hi[i]);
		if (w < 0)
			return;
		off += (size_t)w;
	}
}

int usmc_parse_size(const char *s, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!s || !isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1ULL << 10;
		p++;
		break;
	case 'm':
	case 'M':
		mul = 1ULL << 20;
		p++;
		break;
	case 'g':
	case 'G':
		mul = 1ULL << 30;
		p++;
		break;
	default:
		return -1;
	}
	if (*p != '\0' || (v && mul > UINT64_MAX / v))
		return -1;
	*out = v * mul;
	return 0;
}

const char *usmc_decline_name(uint32_t code)
{
	return usmc_clc_decl_name(code);
}
