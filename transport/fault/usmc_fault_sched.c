/* SPDX-License-Identifier: MIT */
/*
 * Fault schedule parser and trigger engine (usmc_fault_sched.h). Parsing
 * goes into a scratch copy so that a schedule with an error leaves nothing
 * behind.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "usmc_err.h"
#include "usmc_fault_sched.h"
#include "usmc_llc.h"
#include "usmc_wr.h"

#define DEFAULT_DELAY_NS 10000000ull /* 10 ms */

static const struct {
	const char *name;
	usmc_fault_kind kind;
} kinds[] = {
	{"drop", USMC_FAULT_DROP},
	{"delay", USMC_FAULT_DELAY},
	{"duplicate", USMC_FAULT_DUPLICATE},
	{"reorder", USMC_FAULT_REORDER},
	{"corrupt", USMC_FAULT_CORRUPT},
	{"fail-post", USMC_FAULT_FAIL_POST},
	{"qp-error", USMC_FAULT_QP_ERROR},
	{"port-down", USMC_FAULT_PORT_DOWN},
	{"device-fatal", USMC_FAULT_DEVICE_FATAL},
	{"fail-reg-mr", USMC_FAULT_FAIL_REG_MR},
	{"fail-modify-qp", USMC_FAULT_FAIL_MODIFY_QP},
	{"rewrite-llc", USMC_FAULT_REWRITE_LLC},
};

#define KINDS_EXPECTED                                                   \
	"a fault (drop, delay, duplicate, reorder, corrupt, fail-post, " \
	"qp-error, port-down, device-fatal, fail-reg-mr, "               \
	"fail-modify-qp, rewrite-llc) or seed="

/* rewrite-llc's type= names: the v1 codes; a name also matches the v2
 * code (| 0x20), as a v2 link group sends it (smc_llc_init_msg_hdr). */
static const struct {
	const char *name;
	uint8_t type;
} llc_types[] = {
	{"CONFIRM_LINK", SMC_LLC_CONFIRM_LINK},
	{"ADD_LINK", SMC_LLC_ADD_LINK},
	{"ADD_LINK_CONT", SMC_LLC_ADD_LINK_CONT},
	{"DELETE_LINK", SMC_LLC_DELETE_LINK},
	{"REQ_ADD_LINK", SMC_LLC_REQ_ADD_LINK},
	{"CONFIRM_RKEY", SMC_LLC_CONFIRM_RKEY},
	{"TEST_LINK", SMC_LLC_TEST_LINK},
	{"CONFIRM_RKEY_CONT", SMC_LLC_CONFIRM_RKEY_CONT},
	{"DELETE_RKEY", SMC_LLC_DELETE_RKEY},
};

#define LLC_TYPES_EXPECTED                                     \
	"an LLC type (CONFIRM_LINK, ADD_LINK, ADD_LINK_CONT, " \
	"DELETE_LINK, REQ_ADD_LINK, CONFIRM_RKEY, TEST_LINK, " \
	"CONFIRM_RKEY_CONT, DELETE_RKEY) or its code (0 to 255)"

const char *usmc_fault_kind_name(usmc_fault_kind k)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].name;
	return "?";
}

/* The events a kind's clauses count. */
static usmc_fault_on on_of(usmc_fault_kind k)
{
	if (k == USMC_FAULT_FAIL_REG_MR)
		return USMC_FAULT_ON_REG_MR;
	if (k == USMC_FAULT_FAIL_MODIFY_QP)
		return USMC_FAULT_ON_MODIFY_QP;
	if (k == USMC_FAULT_REWRITE_LLC)
		return USMC_FAULT_ON_LLC;
	return k >= USMC_FAULT_FAIL_POST ? USMC_FAULT_ON_POST
					 : USMC_FAULT_ON_PKT;
}

static int on_posts(usmc_fault_kind k)
{
	return on_of(k) == USMC_FAULT_ON_POST;
}

/* qp-error, port-down and device-fatal with neither nth= nor rate= fire
 * once, at t0 + after, whether or not anything is posted. */
static int time_only(const usmc_fault_clause *c)
{
	return (c->kind == USMC_FAULT_QP_ERROR ||
		c->kind == USMC_FAULT_PORT_DOWN ||
		c->kind == USMC_FAULT_DEVICE_FATAL) &&
	       !c->nth && !c->rate_ppm;
}

/* ---- parser ------------------------------------------------------------ */

typedef struct parser {
	const char *s;
	size_t i;
	char *err;
	size_t errlen;
	int had_params; /* the last clause had ':' and keys */
} parser;

static int fail(parser *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err && p->errlen) {
		n = snprintf(p->err, p->errlen, "position %zu: expected ",
			     at + 1);
		if (n > 0 && (size_t)n < p->errlen) {
			va_start(ap, fmt);
			vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return USMC_ERR_INVALID_ARGUMENT;
}

/* Blanks and comments; never a separator. */
static void blank(parser *p)
{
	for (;;) {
		char c = p->s[p->i];

		if (c == ' ' || c == '\t' || c == '\r') {
			p->i++;
		} else if (c == '#') {
			while (p->s[p->i] && p->s[p->i] != '\n')
				p->i++;
		} else {
			return;
		}
	}
}

static size_t word(parser *p)
{
	size_t n = 0;

	for (;;) {
		char c = p->s[p->i + n];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_')
			n++;
		else
			return n;
	}
}

static int is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncmp(w, lit, n);
}

static int is_ci(const char *w, size_t n, const char *lit)
{
	if (strlen(lit) != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char a = w[i], b = lit[i];

		if (a >= 'a' && a <= 'z')
			a = (char)(a - 'a' + 'A');
		if (a != b)
			return 0;
	}
	return 1;
}

static int uint_(parser *p, uint64_t *out)
{
	uint64_t v = 0;
	size_t at = p->i;

	if (p->s[p->i] < '0' || p->s[p->i] > '9')
		return fail(p, at, "a number");
	while (p->s[p->i] >= '0' && p->s[p->i] <= '9') {
		uint64_t d = (uint64_t)(p->s[p->i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return fail(p, at, "a number below 2^64");
		v = v * 10 + d;
		p->i++;
	}
	*out = v;
	return 0;
}

/* A byte: decimal, or hexadecimal after 0x (rewrite-llc's type= code,
 * set= and clear= masks). */
static int byte_(parser *p, uint8_t *out)
{
	size_t at = p->i;
	unsigned int v = 0;
	int digits = 0;

	if (p->s[p->i] == '0' &&
	    (p->s[p->i + 1] == 'x' || p->s[p->i + 1] == 'X')) {
		p->i += 2;
		for (;;) {
			char c = p->s[p->i];
			unsigned int d;

			if (c >= '0' && c <= '9')
				d = (unsigned int)(c - '0');
			else if (c >= 'a' && c <= 'f')
				d = (unsigned int)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				d = (unsigned int)(c - 'A' + 10);
			else
				break;
			v = v * 16 + d;
			if (v > 255)
				return fail(
					p, at,
					"a byte (0 to 255, or 0x0 to 0xff)");
			digits++;
			p->i++;
		}
	} else {
		while (p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			v = v * 10 + (unsigned int)(p->s[p->i] - '0');
			if (v > 255)
				return fail(
					p, at,
					"a byte (0 to 255, or 0x0 to 0xff)");
			digits++;
			p->i++;
		}
	}
	if (!digits)
		return fail(p, at, "a byte (0 to 255, or 0x0 to 0xff)");
	*out = (uint8_t)v;
	return 0;
}

/* A decimal from 0 to 1 with at most 6 places, as parts per million. */
static int rate_(parser *p, uint32_t *ppm)
{
	size_t at = p->i;
	uint64_t whole = 0, frac = 0;
	int places = 0;

	if (p->s[p->i] != '0' && p->s[p->i] != '1' && p->s[p->i] != '.')
		return fail(p, at, "a rate from 0 to 1 (e.g. 0.01)");
	while (p->s[p->i] >= '0' && p->s[p->i] <= '9') {
		whole = whole * 10 + (uint64_t)(p->s[p->i] - '0');
		if (whole > 1)
			return fail(p, at, "a rate from 0 to 1 (e.g. 0.01)");
		p->i++;
	}
	if (p->s[p->i] == '.') {
		p->i++;
		if (p->s[p->i] < '0' || p->s[p->i] > '9')
			return fail(p, p->i, "a digit after '.'");
		while (p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			if (++places > 6)
				return fail(p, p->i,
					    "at most 6 decimal places in a "
					    "rate");
			frac = frac * 10 + (uint64_t)(p->s[p->i] - '0');
			p->i++;
		}
	}
	for (int k = places; k < 6; k++)
		frac *= 10;
	if (whole == 1 && frac)
		return fail(p, at, "a rate from 0 to 1 (e.g. 0.01)");
	*ppm = (uint32_t)(whole * 1000000 + frac);
	if (!*ppm)
		return fail(p, at, "a rate above 0");
	return 0;
}

typedef struct word_val {
	const char *name;
	uint32_t val;
} word_val;

#define N_OF(tab) (sizeof(tab) / sizeof((tab)[0]))

/* The word at the cursor is one of |tab| (case-insensitively if |ci|):
 * its value, and the cursor past it; else fail, |expected| there. */
static int choice_(parser *p, const word_val *tab, size_t ntab, int ci,
		   const char *expected, uint32_t *out)
{
	size_t at = p->i, n = word(p);

	for (size_t k = 0; k < ntab; k++)
		if (ci ? is_ci(p->s + at, n, tab[k].name)
		       : is(p->s + at, n, tab[k].name)) {
			*out = tab[k].val;
			p->i += n;
			return 0;
		}
	return fail(p, at, expected);
}

static int duration(parser *p, uint64_t *ns)
{
	static const word_val units[] = {
		{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
	uint64_t v;
	uint32_t mul = 1;
	size_t at;
	int rc = uint_(p, &v);

	if (rc)
		return rc;
	at = p->i;
	rc = choice_(p, units, N_OF(units), 0,
		     "a unit after the number (ns, us, ms, s)", &mul);
	if (rc)
		return rc;
	if (v > UINT64_MAX / mul)
		return fail(p, at, "a shorter duration");
	*ns = v * mul;
	return 0;
}

static int opcode_(parser *p, uint32_t *mask)
{
	static const word_val ops[] = {
		{"SEND", 1u << USMC_WR_SEND},
		{"WRITE", 1u << USMC_WR_RDMA_WRITE},
		{"WRITE_IMM", 1u << USMC_WR_RDMA_WRITE_WITH_IMM},
		{"ANY", USMC_FAULT_OP_ANY},
	};

	return choice_(p, ops, N_OF(ops), 1,
		       "an operation (SEND, WRITE, WRITE_IMM, any)", mask);
}

static int llc_type_(parser *p, usmc_fault_clause *c)
{
	size_t at = p->i, n = word(p);

	for (size_t k = 0; k < sizeof(llc_types) / sizeof(llc_types[0]); k++)
		if (is_ci(p->s + at, n, llc_types[k].name)) {
			c->llc_type = llc_types[k].type;
			c->llc_any_ver = 1;
			p->i += n;
			return 0;
		}
	if (p->s[at] < '0' || p->s[at] > '9')
		return fail(p, at, LLC_TYPES_EXPECTED);
	return byte_(p, &c->llc_type);
}

static int dir_(parser *p, uint8_t *dir)
{
	static const word_val dirs[] = {
		{"req", USMC_FAULT_DIR_REQ},
		{"resp", USMC_FAULT_DIR_RESP},
		{"any", USMC_FAULT_DIR_ANY},
	};
	uint32_t v = 0;
	int rc = choice_(p, dirs, N_OF(dirs), 0, "a direction (req, resp, any)",
			 &v);

	if (!rc)
		*dir = (uint8_t)v;
	return rc;
}

static int in_(parser *p, uint8_t *in)
{
	static const word_val ins[] = {
		{"any", USMC_FAULT_IN_ANY},
		{"payload", USMC_FAULT_IN_PAYLOAD},
	};
	uint32_t v = 0;
	int rc = choice_(p, ins, N_OF(ins), 0, "what to damage (any, payload)",
			 &v);

	if (!rc)
		*in = (uint8_t)v;
	return rc;
}

static const char *keys_of(usmc_fault_kind k)
{
	if (k == USMC_FAULT_REWRITE_LLC)
		return "rate, nth, count, after, for, qp, type, dir, set, "
		       "clear";
	if (k == USMC_FAULT_DELAY)
		return "rate, nth, count, after, for, by";
	if (on_posts(k))
		return "rate, nth, count, after, for, op, qp";
	if (k == USMC_FAULT_CORRUPT)
		return "rate, nth, count, after, for, in";
	return "rate, nth, count, after, for";
}

static int param(parser *p, usmc_fault_clause *c, uint32_t *seen_keys)
{
	size_t at = p->i, n = word(p), vat;
	const char *w = p->s + at;
	uint64_t v;
	int rc, bit;

	if (is(w, n, "rate"))
		bit = 0;
	else if (is(w, n, "nth"))
		bit = 1;
	else if (is(w, n, "count"))
		bit = 2;
	else if (is(w, n, "after"))
		bit = 3;
	else if (is(w, n, "for"))
		bit = 4;
	else if (is(w, n, "by") && c->kind == USMC_FAULT_DELAY)
		bit = 5;
	else if (is(w, n, "op") && on_posts(c->kind))
		bit = 6;
	else if (is(w, n, "qp") &&
		 (on_posts(c->kind) || c->kind == USMC_FAULT_REWRITE_LLC))
		bit = 7;
	else if (c->kind == USMC_FAULT_REWRITE_LLC && is(w, n, "type"))
		bit = 8;
	else if (c->kind == USMC_FAULT_REWRITE_LLC && is(w, n, "dir"))
		bit = 9;
	else if (c->kind == USMC_FAULT_REWRITE_LLC && is(w, n, "set"))
		bit = 10;
	else if (c->kind == USMC_FAULT_REWRITE_LLC && is(w, n, "clear"))
		bit = 11;
	else if (c->kind == USMC_FAULT_CORRUPT && is(w, n, "in"))
		bit = 12;
	else
		return fail(p, at, "a key of %s (%s)",
			    usmc_fault_kind_name(c->kind), keys_of(c->kind));
	if (*seen_keys & (1u << bit))
		return fail(p, at, "each key once per fault");
	if ((bit == 0 && (*seen_keys & 2)) || (bit == 1 && (*seen_keys & 1)))
		return fail(p, at, "rate= or nth=, not both");
	*seen_keys |= 1u << bit;
	p->i += n;
	blank(p);
	if (p->s[p->i] != '=')
		return fail(p, p->i, "'=' after %.*s", (int)n, w);
	p->i++;
	blank(p);
	vat = p->i;
	switch (bit) {
	case 0:
		return rate_(p, &c->rate_ppm);
	case 1:
	case 2:
		rc = uint_(p, &v);
		if (rc)
			return rc;
		if (!v)
			return fail(p, vat, "a number above 0");
		if (bit == 1)
			c->nth = v;
		else
			c->count = v;
		return 0;
	case 3:
		return duration(p, &c->after_ns);
	case 4:
		rc = duration(p, &c->for_ns);
		if (!rc && !c->for_ns)
			return fail(p, vat, "a duration above 0");
		return rc;
	case 5:
		rc = duration(p, &c->by_ns);
		if (!rc && !c->by_ns)
			return fail(p, vat, "a duration above 0");
		return rc;
	case 6:
		return opcode_(p, &c->op_mask);
	case 8:
		return llc_type_(p, c);
	case 9:
		return dir_(p, &c->llc_dir);
	case 12:
		return in_(p, &c->in);
	case 10:
	case 11:
		rc = byte_(p, bit == 10 ? &c->set_mask : &c->clear_mask);
		if (!rc && !(bit == 10 ? c->set_mask : c->clear_mask))
			return fail(p, vat, "a mask above 0");
		return rc;
	default:
		rc = uint_(p, &v);
		if (rc)
			return rc;
		if (v > 0xffffff)
			return fail(p, vat, "a QP number below 2^24");
		c->qpn = (uint32_t)v;
		c->has_qpn = 1;
		return 0;
	}
}

static uint64_t mix(uint64_t seed)
{
	return 0x9e3779b97f4a7c15ull ^ (seed << 1 | 1);
}

static int clause(parser *p, usmc_fault_sched *s, uint64_t t0)
{
	size_t at = p->i, n = word(p);
	const char *w = p->s + at;
	usmc_fault_clause c;
	uint32_t seen_keys = 0;
	int rc;

	if (is(w, n, "seed")) {
		p->i += n;
		blank(p);
		if (p->s[p->i] != '=')
			return fail(p, p->i, "'=' after seed");
		p->i++;
		blank(p);
		rc = uint_(p, &s->seed);
		p->had_params = 1;
		s->rng = mix(s->seed);
		s->seeded = 1;
		return rc;
	}
	memset(&c, 0, sizeof(c));
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (is(w, n, kinds[k].name))
			c.kind = kinds[k].kind;
	if (!c.kind)
		return fail(p, at, KINDS_EXPECTED);
	if (s->n == USMC_FAULT_MAX_CLAUSES)
		return fail(p, at, "at most %d faults in a schedule",
			    USMC_FAULT_MAX_CLAUSES);
	c.t0 = t0;
	c.op_mask = USMC_FAULT_OP_ANY;
	c.by_ns = DEFAULT_DELAY_NS;
	p->i += n;
	blank(p);
	p->had_params = 0;
	if (p->s[p->i] == ':') {
		p->i++;
		p->had_params = 1;
		for (;;) {
			blank(p);
			rc = param(p, &c, &seen_keys);
			if (rc)
				return rc;
			blank(p);
			if (p->s[p->i] != ',')
				break;
			p->i++;
		}
	}
	/* rewrite-llc names what it rewrites and how */
	if (c.kind == USMC_FAULT_REWRITE_LLC && !(seen_keys & (1u << 8)))
		return fail(p, p->i, "type= in rewrite-llc");
	if (c.kind == USMC_FAULT_REWRITE_LLC &&
	    !(seen_keys & (1u << 10 | 1u << 11)))
		return fail(p, p->i, "set= or clear= in rewrite-llc");
	/* a clause that fires at the nth event fires once unless told */
	if (c.nth && !c.count)
		c.count = 1;
	s->c[s->n++] = c;
	return 0;
}

int usmc_fault_sched_parse(const char *text, uint64_t t0, usmc_fault_sched *out,
			   char *err, size_t errlen)
{
	usmc_fault_sched s;
	parser p = {text ? text : "", 0, err, errlen, 0};
	int rc;

	memset(&s, 0, sizeof(s));
	s.seed = 1;
	s.rng = mix(1);
	if (err && errlen)
		err[0] = 0;
	for (;;) {
		blank(&p);
		while (p.s[p.i] == ';' || p.s[p.i] == '\n') {
			p.i++;
			blank(&p);
		}
		if (!p.s[p.i])
			break;
		rc = clause(&p, &s, t0);
		if (rc)
			return rc;
		blank(&p);
		if (p.s[p.i] && p.s[p.i] != ';' && p.s[p.i] != '\n')
			return fail(&p, p.i,
				    p.had_params ? "',' and a key, or ';'"
						 : "':' and keys, or ';'");
	}
	*out = s;
	return 0;
}

int usmc_fault_sched_merge(usmc_fault_sched *s, const usmc_fault_sched *more)
{
	if (s->n + more->n > USMC_FAULT_MAX_CLAUSES)
		return USMC_ERR_LIMIT;
	memcpy(&s->c[s->n], more->c, more->n * sizeof(more->c[0]));
	s->n += more->n;
	if (more->seeded) {
		s->seed = more->seed;
		s->rng = more->rng;
		s->seeded = 1;
	}
	return 0;
}

/* ---- engine ------------------------------------------------------------ */

/* xorshift64*: small, and the same everywhere for a given seed */
uint64_t usmc_fault_sched_rand(usmc_fault_sched *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dull;
}

static int in_window(const usmc_fault_clause *c, uint64_t now)
{
	uint64_t start = c->t0 + c->after_ns;

	if (now < start)
		return 0;
	/* port-down's for= is how long the port stays down */
	if (c->for_ns && c->kind != USMC_FAULT_PORT_DOWN &&
	    now - start >= c->for_ns)
		return 0;
	return 1;
}

/* Does a rewrite-llc clause match an LLC message of |type|, |flags|? */
static int llc_match(const usmc_fault_clause *c, int type, int flags)
{
	int resp = !!(flags & SMC_LLC_FLAG_RESP);

	if (type != c->llc_type &&
	    !(c->llc_any_ver && type == (c->llc_type | 0x20)))
		return 0;
	return c->llc_dir == USMC_FAULT_DIR_ANY ||
	       (c->llc_dir == USMC_FAULT_DIR_RESP) == resp;
}

/* One event; |type| and |flags| are the LLC header's (ON_LLC only). */
static int sched_on(usmc_fault_sched *s, usmc_fault_on on, int opcode,
		    uint32_t qpn, int type, int flags, uint64_t now)
{
	int fire = -1;

	for (uint32_t i = 0; i < s->n; i++) {
		usmc_fault_clause *c = &s->c[i];
		int hit = 1;

		if (on != on_of(c->kind))
			continue;
		if (on == USMC_FAULT_ON_POST &&
		    (opcode < 0 || opcode > 31 ||
		     !(c->op_mask & (1u << opcode)) ||
		     (c->has_qpn && c->qpn != qpn)))
			continue;
		if (on == USMC_FAULT_ON_LLC && (!llc_match(c, type, flags) ||
						(c->has_qpn && c->qpn != qpn)))
			continue;
		/* packets: |opcode| is 1 for one with WRITE payload */
		if (on == USMC_FAULT_ON_PKT && c->in == USMC_FAULT_IN_PAYLOAD &&
		    opcode != 1)
			continue;
		if (time_only(c) || !in_window(c, now))
			continue;
		c->seen++;
		if (c->rate_ppm)
			hit = usmc_fault_sched_rand(s) % 1000000 < c->rate_ppm;
		if (c->nth && c->seen != c->nth)
			hit = 0;
		if (c->count && c->fired >= c->count)
			hit = 0;
		if (hit && fire < 0) {
			fire = (int)i;
			c->fired++;
			if (c->kind == USMC_FAULT_PORT_DOWN && c->for_ns) {
				c->up_pending = 1;
				c->up_at = now + c->for_ns;
			}
		}
	}
	return fire;
}

int usmc_fault_sched_on(usmc_fault_sched *s, usmc_fault_on on, int opcode,
			uint32_t qpn, uint64_t now)
{
	/* LLC events carry their header: usmc_fault_sched_on_llc */
	if (on == USMC_FAULT_ON_LLC)
		return -1;
	return sched_on(s, on, opcode, qpn, -1, 0, now);
}

int usmc_fault_sched_on_llc(usmc_fault_sched *s, uint8_t type, uint8_t flags,
			    uint32_t qpn, uint64_t now)
{
	return sched_on(s, USMC_FAULT_ON_LLC, -1, qpn, type, flags, now);
}

int usmc_fault_sched_timed(usmc_fault_sched *s, uint64_t now, int *port_up)
{
	for (uint32_t i = 0; i < s->n; i++) {
		usmc_fault_clause *c = &s->c[i];

		if (c->up_pending && now >= c->up_at) {
			c->up_pending = 0;
			*port_up = 1;
			return (int)i;
		}
		if (time_only(c) && !c->fired && now >= c->t0 + c->after_ns) {
			c->fired = 1;
			if (c->kind == USMC_FAULT_PORT_DOWN && c->for_ns) {
				c->up_pending = 1;
				c->up_at = now + c->for_ns;
			}
			*port_up = 0;
			return (int)i;
		}
	}
	return -1;
}

uint64_t usmc_fault_sched_next(const usmc_fault_sched *s)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < s->n; i++) {
		const usmc_fault_clause *c = &s->c[i];

		if (c->up_pending && c->up_at < next)
			next = c->up_at;
		if (time_only(c) && !c->fired && c->t0 + c->after_ns < next)
			next = c->t0 + c->after_ns;
	}
	return next;
}
