/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the runtime: rules (docs/rules.md), port sets, size
 * suffixes and decline-code names. No I/O, so tests can drive them
 * directly.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_clc.h"
#include "usmc_rt.h"
#include "usmc_rules.h"

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

/* ---- rules ---- */

int usmc_rule_net_parse(usmc_rule_net *n, const char *s)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len;
	uint8_t a6[16];

	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, buf, n->addr) == 1) {
		n->family = 4;
		n->len = 32;
	} else if (inet_pton(AF_INET6, buf, a6) == 1) {
		static const uint8_t v4map[12] = {0, 0, 0, 0, 0,    0,
						  0, 0, 0, 0, 0xff, 0xff};

		n->family = 6;
		n->len = 128;
		memcpy(n->addr, a6, 16);
		if (!memcmp(a6, v4map, 12)) {
			/* ::ffff:a.b.c.d is the IPv4 address; a prefix
			 * counts from the IPv6 bits (>= 96) */
			n->family = 4;
			n->len = 32;
			memmove(n->addr, a6 + 12, 4);
			memset(n->addr + 4, 0, 12);
		}
	} else {
		return -1;
	}
	if (!slash)
		return 0;
	if (!isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 3)
		return -1;
	len = strtoul(slash + 1, NULL, 10);
	for (const char *p = slash + 1; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	if (n->family == 4 && strchr(buf, ':')) {
		/* mapped form with a prefix: /96../128 */
		if (len < 96 || len > 128)
			return -1;
		len -= 96;
	}
	if (len > (n->family == 4 ? 32u : 128u))
		return -1;
	n->len = (uint8_t)len;
	/* host bits set under the prefix are a likely typo: refuse */
	for (unsigned i = n->len; i < (n->family == 4 ? 32u : 128u); i++)
		if (n->addr[i / 8] & (0x80 >> (i % 8)))
			return -2;
	return 0;
}

int usmc_rule_net_from_sa(usmc_rule_net *n, const void *sa)
{
	const struct sockaddr *s = sa;
	char buf[INET6_ADDRSTRLEN];

	memset(n, 0, sizeof(*n));
	if (s->sa_family == AF_INET) {
		const struct sockaddr_in *in = sa;

		n->family = 4;
		n->len = 32;
		memcpy(n->addr, &in->sin_addr, 4);
		return 0;
	}
	if (s->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = sa;

		/* through the parser, so v4-mapped becomes IPv4 */
		if (!inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)))
			return -1;
		return usmc_rule_net_parse(n, buf);
	}
	return -1;
}

static int net_match(const usmc_rule_net *rule, const usmc_rule_net *a)
{
	unsigned full = rule->len / 8, rest = rule->len % 8;

	if (rule->family != a->family)
		return 0;
	if (memcmp(rule->addr, a->addr, full))
		return 0;
	if (rest) {
		uint8_t m = (uint8_t)(0xff << (8 - rest));

		if ((rule->addr[full] & m) != (a->addr[full] & m))
			return 0;
	}
	return 1;
}

static int nets_match(const usmc_rule_net *v, int n, const usmc_rule_net *a)
{
	for (int i = 0; i < n; i++)
		if (net_match(&v[i], a))
			return 1;
	return 0;
}

static int prog_match(const char *pats, const char *name)
{
	char pat[USMC_RULE_PROG];
	const char *p = pats;

	while (*p) {
		size_t l = strcspn(p, ",");

		memcpy(pat, p, l);
		pat[l] = '\0';
		if (fnmatch(pat, name, 0) == 0)
			return 1;
		p += l;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* The parser's cursor: one source, line and column for messages. */
typedef struct rule_lex {
	const char *src, *p, *line_start;
	int line;
	char *err;
	size_t errlen;
} rule_lex;

/* The token as printed in a message: a file is untrusted, and its bytes
 * go to the program's stderr and logs, so anything but printable ASCII
 * becomes \xNN (no terminal escapes, no broken UTF-8). */
static const char *tok_printable(const char *tok, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)tok;
	     *c && o + 5 < len; c++) {
		if (*c >= 0x20 && *c < 0x7f && *c != '\\') {
			buf[o++] = (char)*c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[*c >> 4];
			buf[o++] = hex[*c & 15];
		}
	}
	buf[o] = '\0';
	return buf;
}

static int lex_err(rule_lex *lx, const char *at, const char *fmt,
		   const char *tok)
{
	char shown[128];
	int n = snprintf(lx->err, lx->errlen, "%s:%d:%d: ", lx->src, lx->line,
			 (int)(at - lx->line_start) + 1);

	if (n >= 0 && (size_t)n < lx->errlen)
		snprintf(lx->err + n, lx->errlen - (size_t)n, fmt,
			 tok ? tok_printable(tok, shown, sizeof(shown)) : tok);
	return -1;
}

static int is_sep(char c)
{
	return c == '\0' || c == '\n' || c == ';' || c == '#';
}

/* Next token of the current rule into |tok|; 0 at the rule's end. */
static size_t lex_tok(rule_lex *lx, char *tok, size_t toklen, const char **at)
{
	size_t n;

	while (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r')
		lx->p++;
	*at = lx->p;
	if (is_sep(*lx->p))
		return 0;
	n = strcspn(lx->p, " \t\r\n;#");
	if (n >= toklen) {
		snprintf(tok, toklen, "%.*s", (int)(toklen - 1), lx->p);
		lx->p += n;
		return toklen; /* too long: the caller reports it */
	}
	memcpy(tok, lx->p, n);
	tok[n] = '\0';
	lx->p += n;
	return n;
}

static int parse_nets(rule_lex *lx, const char *at, char *tok, usmc_rule_net *v,
		      int *n)
{
	char *save = NULL;

	for (char *it = strtok_r(tok, ",", &save); it;
	     it = strtok_r(NULL, ",", &save)) {
		int r;

		if (*n == USMC_RULE_NETS)
			return lex_err(lx, at, "too many addresses (max 8)",
				       "");
		r = usmc_rule_net_parse(&v[*n], it);
		if (r == -2)
			return lex_err(lx, at,
				       "\"%s\": address has bits set beyond "
				       "its prefix length",
				       it);
		if (r)
			return lex_err(lx, at,
				       "bad address \"%s\" (want A.B.C.D or "
				       "an IPv6 address, optional /LEN)",
				       it);
		(*n)++;
	}
	if (!*n)
		return lex_err(lx, at, "empty address list", "");
	return 0;
}

/* One rule from lx->p to its separator. 1 = a rule, 0 = empty line. */
static int parse_one(rule_lex *lx, usmc_rule *r)
{
	char tok[256], prev[256];
	const char *at, *start;
	size_t n;

	memset(r, 0, sizeof(*r));
	n = lex_tok(lx, tok, sizeof(tok), &at);
	if (!n)
		return 0;
	start = at;
	if (!strcmp(tok, "smc"))
		r->action = USMC_RULE_SMC;
	else if (!strcmp(tok, "tcp"))
		r->action = USMC_RULE_TCP;
	else
		return lex_err(lx, at,
			       "a rule starts with smc or tcp, not \"%s\"",
			       tok);
	while ((n = lex_tok(lx, tok, sizeof(tok), &at)) != 0) {
		const char *kat = at;

		if (n >= sizeof(tok))
			return lex_err(lx, at, "token too long: \"%s...\"",
				       tok);
		snprintf(prev, sizeof(prev), "%s", tok);
		if (strcmp(prev, "program") && strcmp(prev, "local") &&
		    strcmp(prev, "remote") && strcmp(prev, "port") &&
		    strcmp(prev, "transport") && strcmp(prev, "options"))
			return lex_err(lx, at,
				       "unknown keyword \"%s\" (want program, "
				       "local, remote, port, transport or "
				       "options)",
				       prev);
		if ((!strcmp(prev, "program") && r->program[0]) ||
		    (!strcmp(prev, "local") && r->nlocal) ||
		    (!strcmp(prev, "remote") && r->nremote) ||
		    (!strcmp(prev, "port") && r->has_ports) ||
		    (!strcmp(prev, "transport") && r->transport[0]) ||
		    (!strcmp(prev, "options") && r->options[0]))
			return lex_err(lx, at, "\"%s\" given twice", prev);
		if ((!strcmp(prev, "transport") || !strcmp(prev, "options")) &&
		    r->action != USMC_RULE_SMC)
			return lex_err(lx, at,
				       "\"%s\" only goes with smc rules", prev);
		n = lex_tok(lx, tok, sizeof(tok), &at);
		if (!n)
			return lex_err(lx, kat, "\"%s\" needs a value", prev);
		if (n >= sizeof(tok))
			return lex_err(lx, at, "token too long: \"%s...\"",
				       tok);
		if (!strcmp(prev, "program")) {
			if (n >= sizeof(r->program))
				return lex_err(lx, at,
					       "program pattern too long: "
					       "\"%s\"",
					       tok);
			if (tok[0] == ',' || tok[n - 1] == ',' ||
			    strstr(tok, ",,"))
				return lex_err(lx, at,
					       "empty name in program list "
					       "\"%s\"",
					       tok);
			memcpy(r->program, tok, n + 1);
		} else if (!strcmp(prev, "local")) {
			if (parse_nets(lx, at, tok, r->local, &r->nlocal))
				return -1;
		} else if (!strcmp(prev, "remote")) {
			if (parse_nets(lx, at, tok, r->remote, &r->nremote))
				return -1;
		} else if (!strcmp(prev, "transport")) {
			if (n >= sizeof(r->transport))
				return lex_err(lx, at,
					       "transport name too long: "
					       "\"%s\" (max 31)",
					       tok);
			if (strchr(tok, ','))
				return lex_err(lx, at,
					       "one transport per rule, not "
					       "\"%s\"",
					       tok);
			memcpy(r->transport, tok, n + 1);
		} else if (!strcmp(prev, "options")) {
			char oerr[192];

			if (n >= sizeof(r->options))
				return lex_err(lx, at,
					       "options too long (max 127): "
					       "\"%.40s...\"",
					       tok);
			/* keys and values: by the transport when it opens */
			if (usmc_config_check_tp_options("", tok, oerr,
							 sizeof(oerr)))
				return lex_err(lx, at, "options: %s", oerr);
			memcpy(r->options, tok, n + 1);
		} else {
			char perr[128];

			if (usmc_portset_parse(&r->ports, tok, perr,
					       sizeof(perr)))
				return lex_err(lx, at, "port: %s", perr);
			r->has_ports = 1;
		}
	}
	snprintf(r->text, sizeof(r->text), "%.*s", (int)(at - start), start);
	/* trailing blanks of the text */
	for (size_t l = strlen(r->text);
	     l && (r->text[l - 1] == ' ' || r->text[l - 1] == '\t' ||
		   r->text[l - 1] == '\r');
	     l--)
		r->text[l - 1] = '\0';
	snprintf(r->src, sizeof(r->src), "%s", lx->src);
	r->line = lx->line;
	return 1;
}

int usmc_rules_parse(usmc_rules *rs, const char *text, const char *src,
		     char *err, size_t errlen)
{
	rule_lex lx = {src, text, text, 1, err, errlen};
	int n0 = rs->n;

	if (!text)
		return 0;
	for (;;) {
		usmc_rule r;
		int k = parse_one(&lx, &r);

		if (k < 0)
			goto fail;
		if (k > 0) {
			if (rs->n == USMC_RULES_MAX) {
				lex_err(&lx, lx.line_start,
					"too many rules (max %s)", "64");
				goto fail;
			}
			rs->v[rs->n++] = r;
		}
		if (*lx.p == '#')
			lx.p += strcspn(lx.p, "\n");
		if (*lx.p == '\0')
			return 0;
		if (*lx.p == '\n') {
			lx.line++;
			lx.line_start = lx.p + 1;
		}
		lx.p++;
	}
fail:
	rs->n = n0;
	return -1;
}

int usmc_rules_set_ports(usmc_rules *rs, int at, const usmc_portset *ps)
{
	usmc_rule *r;
	char list[USMC_RULE_TEXT - 16];

	if (at < 0 || at > rs->n)
		return -1;
	if (at == rs->n || !rs->v[at].from_ports) {
		if (rs->n == USMC_RULES_MAX)
			return -1;
		memmove(&rs->v[at + 1], &rs->v[at],
			(size_t)(rs->n - at) * sizeof(rs->v[0]));
		rs->n++;
	}
	r = &rs->v[at];
	memset(r, 0, sizeof(*r));
	r->action = USMC_RULE_SMC;
	r->has_ports = 1;
	r->ports = *ps;
	r->from_ports = 1;
	snprintf(r->src, sizeof(r->src), "USMC_SMC_PORTS");
	usmc_portset_format(ps, list, sizeof(list));
	snprintf(r->text, sizeof(r->text), "smc port %s", list);
	return 0;
}

int usmc_rules_use_local(const usmc_rules *rs)
{
	for (int i = 0; i < rs->n; i++)
		if (rs->v[i].nlocal)
			return 1;
	return 0;
}

int usmc_rules_name_transport(const usmc_rules *rs)
{
	for (int i = 0; i < rs->n; i++)
		if (rs->v[i].transport[0] || rs->v[i].options[0])
			return 1;
	return 0;
}

int usmc_rules_has_smc(const usmc_rules *rs)
{
	for (int i = 0; i < rs->n; i++)
		if (rs->v[i].action == USMC_RULE_SMC)
			return 1;
	return 0;
}

int usmc_rules_eval(const usmc_rules *rs, const usmc_rule_query *q, int *idx,
		    int *by_default)
{
	int smc = 0, tcp = 0, first_maybe = -1, def = -1;

	*idx = -1;
	if (by_default)
		*by_default = 0;
	if (rs->error)
		return USMC_RULE_TCP;
	for (int i = 0; i < rs->n && def < 0; i++) {
		const usmc_rule *r = &rs->v[i];
		int unknown = 0;

		if (r->has_ports && !usmc_portset_has(&r->ports, q->port))
			continue;
		if (r->program[0]) {
			if (!q->program)
				unknown = 1;
			else if (!prog_match(r->program, q->program))
				continue;
		}
		if (r->nlocal) {
			if (!q->local)
				unknown = 1;
			else if (!nets_match(r->local, r->nlocal, q->local))
				continue;
		}
		if (r->nremote) {
			if (!q->remote)
				unknown = 1;
			else if (!nets_match(r->remote, r->nremote, q->remote))
				continue;
		}
		/* A rule that only may match makes its action possible and
		 * lets the search go on; one that matches ends it. */
		if (r->action == USMC_RULE_SMC)
			smc = 1;
		else
			tcp = 1;
		if (unknown) {
			if (first_maybe < 0)
				first_maybe = i;
		} else {
			def = i;
		}
	}
	if (def < 0) { /* the default */
		if (by_default)
			*by_default = 1;
		if (q->dflt_smc)
			smc = 1;
		else
			tcp = 1;
	}
	if (smc && tcp) {
		*idx = first_maybe;
		return USMC_RULE_MAYBE;
	}
	*idx = def;
	return smc ? USMC_RULE_SMC : USMC_RULE_TCP;
}

void usmc_rules_why(const usmc_rules *rs, const usmc_rule_query *q, int verdict,
		    int idx, char *buf, size_t len)
{
	const usmc_rule *r;

	if (rs->error) {
		snprintf(buf, len, "rules refused (%s): all tcp", rs->err);
		return;
	}
	if (idx < 0 || idx >= rs->n) {
		snprintf(buf, len, "no rule matched, default %s",
			 q->dflt_smc ? "smc (SMC TCP option on)" : "tcp");
		return;
	}
	r = &rs->v[idx];
	if (r->line)
		snprintf(buf, len, "rule %d at %s:%d (%s) %s", idx + 1, r->src,
			 r->line, r->text,
			 verdict == USMC_RULE_MAYBE ? "may match" : "matched");
	else
		snprintf(buf, len, "rule %d from %s (%s) %s", idx + 1, r->src,
			 r->text,
			 verdict == USMC_RULE_MAYBE ? "may match" : "matched");
}

/* ---- short-lived connections ---- */

static int parse_u64(const char **pp, uint64_t max, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > max)
			return -1;
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

int usmc_shortconn_parse(usmc_shortconn *sc, const char *s, char *err,
			 size_t errlen)
{
	static const char *const what[] = {
		"N (connections in a row, 1 to 255)", "BYTES (at most 2^40)",
		"MS (connection lifetime, at most 3600000)",
		"HOLD_MS (1 to 3600000)"};
	static const uint64_t max[] = {255, 1ULL << 40, 3600000, 3600000};
	uint64_t v[4];
	const char *p = s;

	if (!s) {
		snprintf(err, errlen, "no value");
		return -1;
	}
	if (!strcmp(s, "off") || !strcmp(s, "0")) {
		memset(sc, 0, sizeof(*sc));
		return 0;
	}
	for (int i = 0; i < 4; i++) {
		if (parse_u64(&p, max[i], &v[i]) ||
		    (i < 3 ? *p != ',' : *p != '\0') ||
		    ((i == 0 || i == 3) && v[i] == 0)) {
			snprintf(err, errlen,
				 "want off or N,BYTES,MS,HOLD_MS; field %d, "
				 "%s, is bad",
				 i + 1, what[i]);
			return -1;
		}
		p++;
	}
	sc->n = (unsigned int)v[0];
	sc->bytes = v[1];
	sc->ms = v[2];
	sc->hold_ms = v[3];
	return 0;
}

static usmc_peerhist_ent *peerhist_find(const usmc_peerhist *h, uint32_t addr,
					uint16_t port)
{
	for (int i = 0; i < USMC_PEERHIST_MAX; i++)
		if (h->e[i].addr == addr && h->e[i].port == port)
			return (usmc_peerhist_ent *)&h->e[i];
	return NULL;
}

/* addr:port's entry, a new one if it has none */
static usmc_peerhist_ent *peerhist_get(usmc_peerhist *h, uint32_t addr,
				       uint16_t port)
{
	usmc_peerhist_ent *e = peerhist_find(h, addr, port);

	if (e)
		return e;
	/* a free entry, else the peer noted longest ago */
	e = &h->e[0];
	for (int i = 1; i < USMC_PEERHIST_MAX && e->addr; i++)
		if (!h->e[i].addr || h->e[i].last < e->last)
			e = &h->e[i];
	memset(e, 0, sizeof(*e));
	e->addr = addr;
	e->port = port;
	return e;
}

int usmc_peerhist_note(usmc_peerhist *h, const usmc_shortconn *sc,
		       uint32_t addr, uint16_t port, uint64_t bytes,
		       uint64_t life_ns, uint64_t now)
{
	usmc_peerhist_ent *e;

	if (!sc->n || !addr)
		return 0;
	e = peerhist_get(h, addr, port);
	e->last = now;
	if (e->nosmc) {
		/* it offered SMC this time: its short connections count
		 * from here */
		e->nosmc = 0;
		e->hold_until = 0;
	}
	if (bytes > sc->bytes || life_ns > sc->ms * 1000000ULL) {
		/* one that paid off: SMC-R again from the next one on */
		e->nshort = 0;
		e->hold_until = 0;
		return 0;
	}
	if (e->nshort < sc->n)
		e->nshort++;
	if (e->nshort < sc->n || e->hold_until > now)
		return 0;
	/* the count stays full: after the hold, one more short connection
	 * starts the next */
	e->hold_until = now + sc->hold_ms * 1000000ULL;
	return 1;
}

int usmc_peerhist_held(const usmc_peerhist *h, const usmc_shortconn *sc,
		       uint32_t addr, uint16_t port, uint64_t now,
		       uint64_t *left_ms)
{
	const usmc_peerhist_ent *e;

	if (!sc->n || !(e = peerhist_find(h, addr, port)) ||
	    e->hold_until <= now)
		return 0;
	if (left_ms)
		*left_ms = (e->hold_until - now + 999999) / 1000000;
	return e->nosmc ? 2 : 1;
}

int usmc_peerhist_nosmc(usmc_peerhist *h, const usmc_shortconn *sc,
			uint32_t addr, uint16_t port, uint64_t now)
{
	usmc_peerhist_ent *e;
	int was;

	if (!sc->n || !addr)
		return 0;
	e = peerhist_get(h, addr, port);
	was = e->nosmc && e->hold_until > now;
	e->last = now;
	e->nosmc = 1;
	e->nshort = 0;
	e->hold_until = now + sc->hold_ms * 1000000ULL;
	return !was;
}
