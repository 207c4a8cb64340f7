/* SPDX-License-Identifier: MIT */
/*
 * Fault schedules (transport/fault/usmc_fault_sched.h): good schedules give
 * exactly the fields written, bad ones are refused whole with the position
 * and what was expected; the engine's triggers (rate with a seed, nth,
 * count, after/for) fire exactly, and the same seed over the same events
 * gives the same faults.
 */
#include <string.h>

#include "usmc_err.h"
#include "usmc_fault_sched.h"
#include "usmc_test.h"
#include "usmc_wr.h"

#define MS 1000000ull

static void test_good(void)
{
	usmc_fault_sched s;
	char err[200];
	const char *text =
		"seed=42; drop:rate=0.01 ;fail-post:op=WRITE,nth=100\n"
		"# a comment; with a semicolon\n"
		"qp-error:after=2s;port-down : after = 1s , for=500ms;"
		"device-fatal:after=3s;delay:rate=1,by=250us;"
		"reorder:count=3,after=5ns;corrupt:rate=0.000001;"
		"duplicate:rate=.5;fail-post:op=send,qp=77;";

	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse(text, 1000, &s, err, sizeof(err)), 0);
	USMC_ASSERT_EQ(s.seed, 42);
	USMC_ASSERT_EQ(s.seeded, 1);
	USMC_ASSERT_EQ_FATAL(s.n, 10);
	USMC_ASSERT_EQ(s.c[0].kind, USMC_FAULT_DROP);
	USMC_ASSERT_EQ(s.c[0].rate_ppm, 10000);
	USMC_ASSERT_EQ(s.c[0].t0, 1000);
	USMC_ASSERT_EQ(s.c[1].kind, USMC_FAULT_FAIL_POST);
	USMC_ASSERT_EQ(s.c[1].op_mask, 1u << USMC_WR_RDMA_WRITE);
	USMC_ASSERT_EQ(s.c[1].nth, 100);
	USMC_ASSERT_EQ(s.c[1].count, 1);
	USMC_ASSERT_EQ(s.c[2].kind, USMC_FAULT_QP_ERROR);
	USMC_ASSERT_EQ(s.c[2].after_ns, 2000 * MS);
	USMC_ASSERT_EQ(s.c[2].has_qpn, 0);
	USMC_ASSERT_EQ(s.c[3].kind, USMC_FAULT_PORT_DOWN);
	USMC_ASSERT_EQ(s.c[3].after_ns, 1000 * MS);
	USMC_ASSERT_EQ(s.c[3].for_ns, 500 * MS);
	USMC_ASSERT_EQ(s.c[4].kind, USMC_FAULT_DEVICE_FATAL);
	USMC_ASSERT_EQ(s.c[5].kind, USMC_FAULT_DELAY);
	USMC_ASSERT_EQ(s.c[5].rate_ppm, 1000000);
	USMC_ASSERT_EQ(s.c[5].by_ns, 250000);
	USMC_ASSERT_EQ(s.c[6].kind, USMC_FAULT_REORDER);
	USMC_ASSERT_EQ(s.c[6].count, 3);
	USMC_ASSERT_EQ(s.c[6].after_ns, 5);
	USMC_ASSERT_EQ(s.c[6].by_ns, 10 * MS); /* the default */
	USMC_ASSERT_EQ(s.c[7].rate_ppm, 1);
	USMC_ASSERT_EQ(s.c[8].rate_ppm, 500000);
	USMC_ASSERT_EQ(s.c[9].op_mask, 1u << USMC_WR_SEND);
	USMC_ASSERT_EQ(s.c[9].has_qpn, 1);
	USMC_ASSERT_EQ(s.c[9].qpn, 77);
	/* empty and blank schedules are valid and hold nothing */
	USMC_ASSERT_EQ(
		usmc_fault_sched_parse(" ;;\n# x\n", 0, &s, err, sizeof(err)),
		0);
	USMC_ASSERT_EQ(s.n, 0);
	USMC_ASSERT_EQ(s.seeded, 0);
}

static void bad(const char *text, const char *want)
{
	usmc_fault_sched s;
	char err[200];

	memset(&s, 0xa5, sizeof(s));
	USMC_ASSERT_EQ(usmc_fault_sched_parse(text, 0, &s, err, sizeof(err)),
		       USMC_ERR_INVALID_ARGUMENT);
	if (strcmp(err, want))
		fprintf(stderr, "  %s\n  got:  %s\n  want: %s\n", text, err,
			want);
	CU_ASSERT_STRING_EQUAL(err, want);
	/* nothing of a refused schedule is kept */
	USMC_ASSERT_EQ(s.n, 0xa5a5a5a5u);
}

static void test_bad(void)
{
	bad("dorp", "position 1: expected a fault (drop, delay, duplicate, "
		    "reorder, corrupt, fail-post, qp-error, port-down, "
		    "device-fatal, fail-reg-mr, fail-modify-qp, rewrite-llc) "
		    "or seed=");
	bad("fail-reg-mr:op=SEND", "position 13: expected a key of "
				   "fail-reg-mr (rate, nth, count, after, "
				   "for)");
	bad("fail-modify-qp:qp=5", "position 16: expected a key of "
				   "fail-modify-qp (rate, nth, count, after, "
				   "for)");
	bad("drop:rate=0.01;fail-post:op=WRITE,nht=100",
	    "position 35: expected a key of fail-post (rate, nth, count, "
	    "after, for, op, qp)");
	bad("drop:by=1ms",
	    "position 6: expected a key of drop (rate, nth, count, after, "
	    "for)");
	bad("drop:rate=1.5", "position 11: expected a rate from 0 to 1 "
			     "(e.g. 0.01)");
	bad("drop:rate=0", "position 11: expected a rate above 0");
	bad("drop:rate=0.1234567",
	    "position 19: expected at most 6 decimal places in a rate");
	bad("drop:rate=2", "position 11: expected a rate from 0 to 1 "
			   "(e.g. 0.01)");
	bad("drop:rate=0.", "position 13: expected a digit after '.'");
	bad("qp-error:after=2", "position 17: expected a unit after the "
				"number (ns, us, ms, s)");
	bad("qp-error:after=2h", "position 17: expected a unit after the "
				 "number (ns, us, ms, s)");
	bad("qp-error:after=s", "position 16: expected a number");
	bad("port-down:for=0s", "position 15: expected a duration above 0");
	bad("fail-post:nth=0", "position 15: expected a number above 0");
	bad("fail-post:nth=99999999999999999999",
	    "position 15: expected a number below 2^64");
	bad("fail-post:op=READ", "position 14: expected an operation (SEND, "
				 "WRITE, WRITE_IMM, any)");
	bad("fail-post:rate=0.1,nth=3",
	    "position 20: expected rate= or nth=, not both");
	bad("drop:rate=0.1,rate=0.2", "position 15: expected each key once "
				      "per fault");
	bad("drop:rate 0.1", "position 11: expected '=' after rate");
	bad("drop rate=0.1", "position 6: expected ':' and keys, or ';'");
	bad("drop:rate=0.1 nth=2", "position 15: expected ',' and a key, "
				   "or ';'");
	bad("drop:", "position 6: expected a key of drop (rate, nth, count, "
		     "after, for)");
	bad("seed 4", "position 6: expected '=' after seed");
	bad("seed=x", "position 6: expected a number");
	bad("qp-error:qp=16777216", "position 13: expected a QP number below "
				    "2^24");
	bad("rewrite-llc:set=1", "position 18: expected type= in "
				 "rewrite-llc");
	bad("rewrite-llc:type=TEST_LINK", "position 27: expected set= or "
					  "clear= in rewrite-llc");
	bad("rewrite-llc:type=PING,set=1",
	    "position 18: expected an LLC type (CONFIRM_LINK, ADD_LINK, "
	    "ADD_LINK_CONT, DELETE_LINK, REQ_ADD_LINK, CONFIRM_RKEY, "
	    "TEST_LINK, CONFIRM_RKEY_CONT, DELETE_RKEY) or its code (0 to "
	    "255)");
	bad("rewrite-llc:type=6,set=0x100", "position 24: expected a byte (0 "
					    "to 255, or 0x0 to 0xff)");
	bad("rewrite-llc:type=6,set=0x", "position 24: expected a byte (0 to "
					 "255, or 0x0 to 0xff)");
	bad("rewrite-llc:type=256,set=1", "position 18: expected a byte (0 to "
					  "255, or 0x0 to 0xff)");
	bad("rewrite-llc:type=6,clear=0", "position 26: expected a mask above "
					  "0");
	bad("rewrite-llc:type=6,set=1,dir=both", "position 30: expected a "
						 "direction (req, resp, "
						 "any)");
	bad("rewrite-llc:op=SEND",
	    "position 13: expected a key of rewrite-llc (rate, nth, count, "
	    "after, for, qp, type, dir, set, clear)");
	bad("fail-post:set=1", "position 11: expected a key of fail-post "
			       "(rate, nth, count, after, for, op, qp)");
	bad("corrupt:in=header", "position 12: expected what to damage (any, "
				 "payload)");
	bad("drop:in=payload", "position 6: expected a key of drop (rate, "
			       "nth, count, after, for)");
	bad("drop:rate=0.5;delay:by=1ms;\n\ncorrupt:for=1",
	    "position 43: expected a unit after the number (ns, us, ms, s)");
}

static void test_too_many(void)
{
	char text[33 * 6 + 1] = "";
	usmc_fault_sched s;
	char err[200];

	for (int i = 0; i < 33; i++)
		strcat(text, "drop; ");
	USMC_ASSERT_EQ(usmc_fault_sched_parse(text, 0, &s, err, sizeof(err)),
		       USMC_ERR_INVALID_ARGUMENT);
	CU_ASSERT_STRING_EQUAL(err, "position 193: expected at most 32 "
				    "faults in a schedule");
}

/* The pattern of |text| over |n| packet events, one per microsecond. */
static void pattern(const char *text, int n, uint8_t *out)
{
	usmc_fault_sched s;

	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse(text, 0, &s, NULL, 0), 0);
	for (int i = 0; i < n; i++)
		out[i] = (uint8_t)(usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 0,
						       0, (uint64_t)i * 1000) +
				   1);
}

static void test_seed_replay(void)
{
	static uint8_t a[100000], b[100000], c[100000];
	int hits = 0;

	pattern("seed=42;drop:rate=0.01", 100000, a);
	pattern("seed=42;drop:rate=0.01", 100000, b);
	pattern("seed=43;drop:rate=0.01", 100000, c);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
	for (int i = 0; i < 100000; i++)
		hits += a[i] != 0;
	/* 1 % of 100000, within 4 standard deviations (~31.5) */
	CU_ASSERT_TRUE(hits > 1000 - 126 && hits < 1000 + 126);
}

static void test_triggers(void)
{
	usmc_fault_sched s;
	int fired[400], up = -1;

	/* nth: exactly the 100th WRITE; other opcodes are not counted */
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("fail-post:op=WRITE,"
						    "nth=100",
						    0, &s, NULL, 0),
			     0);
	for (int i = 1; i <= 300; i++) {
		USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_POST,
						   USMC_WR_SEND, 5, 0),
			       -1);
		USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_POST,
						   USMC_WR_RDMA_WRITE, 5, 0),
			       i == 100 ? 0 : -1);
	}
	/* no time trigger pending */
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), UINT64_MAX);

	/* count= caps, after= and for= bound a window */
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("drop:count=3,after=10ns;"
						    "corrupt:after=100ns,"
						    "for=50ns",
						    0, &s, NULL, 0),
			     0);
	for (int t = 0; t < 400; t++)
		fired[t] = usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 0, 0,
					       (uint64_t)t);
	for (int t = 0; t < 400; t++) {
		int want = -1;

		if (t >= 10 && t < 13)
			want = 0;
		else if (t >= 100 && t < 150)
			want = 1;
		USMC_ASSERT_EQ(fired[t], want);
	}

	/* time-only faults: due at t0 + after; port-down comes back up */
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("port-down:after=1ms,"
						    "for=2ms;device-fatal:"
						    "after=5ms",
						    1000, &s, NULL, 0),
			     0);
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), 1000 + MS);
	USMC_ASSERT_EQ(usmc_fault_sched_timed(&s, 1000 + MS - 1, &up), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_timed(&s, 1000 + MS, &up), 0);
	USMC_ASSERT_EQ(up, 0);
	USMC_ASSERT_EQ(usmc_fault_sched_timed(&s, 1000 + MS, &up), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), 1000 + 3 * MS);
	USMC_ASSERT_EQ(usmc_fault_sched_timed(&s, 1000 + 3 * MS, &up), 0);
	USMC_ASSERT_EQ(up, 1);
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), 1000 + 5 * MS);
	USMC_ASSERT_EQ(usmc_fault_sched_timed(&s, 1000 + 9 * MS, &up), 1);
	USMC_ASSERT_EQ(up, 0);
	USMC_ASSERT_EQ(usmc_fault_sched_timed(&s, UINT64_MAX - 1, &up), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), UINT64_MAX);
	/* posts do not count for time-only faults */
	USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_POST, USMC_WR_SEND,
					   1, 1000 + 9 * MS),
		       -1);
}

/* fail-reg-mr counts MR registrations only, fail-modify-qp QPs made
 * ready only; neither counts posts or packets, nor the other's events. */
static void test_verb_faults(void)
{
	usmc_fault_sched s;

	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("fail-reg-mr:nth=2;"
						    "fail-modify-qp:nth=3",
						    0, &s, NULL, 0),
			     0);
	USMC_ASSERT_EQ_FATAL(s.n, 2);
	USMC_ASSERT_EQ(s.c[0].kind, USMC_FAULT_FAIL_REG_MR);
	USMC_ASSERT_EQ(s.c[0].nth, 2);
	USMC_ASSERT_EQ(s.c[0].count, 1);
	USMC_ASSERT_EQ(s.c[1].kind, USMC_FAULT_FAIL_MODIFY_QP);
	USMC_ASSERT_EQ(s.c[1].nth, 3);
	for (int i = 1; i <= 5; i++) {
		USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_POST,
						   USMC_WR_SEND, 5, 0),
			       -1);
		USMC_ASSERT_EQ(
			usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 0, 0, 0),
			-1);
		USMC_ASSERT_EQ(
			usmc_fault_sched_on(&s, USMC_FAULT_ON_REG_MR, -1, 0, 0),
			i == 2 ? 0 : -1);
		USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_MODIFY_QP,
						   -1, 9, 0),
			       i == 3 ? 1 : -1);
	}
	USMC_ASSERT_EQ(s.c[0].seen, 5);
	USMC_ASSERT_EQ(s.c[1].seen, 5);
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), UINT64_MAX);
}

/* rewrite-llc: its fields; it counts the LLC messages of its type and
 * direction (a name either version's code, a number exactly) and nothing
 * else, and other clauses do not count them. */
static void test_rewrite_llc(void)
{
	usmc_fault_sched s;

	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("rewrite-llc:type=CONFIRM_LINK,dir=req,"
				       "clear=0x03,nth=2;"
				       "rewrite-llc : type = confirm_rkey , "
				       "dir=resp, set=32, qp=17;"
				       "rewrite-llc:type=0x26,set=0xff,"
				       "clear=0X0F",
				       0, &s, NULL, 0),
		0);
	USMC_ASSERT_EQ_FATAL(s.n, 3);
	USMC_ASSERT_EQ(s.c[0].kind, USMC_FAULT_REWRITE_LLC);
	USMC_ASSERT_EQ(s.c[0].llc_type, 0x01);
	USMC_ASSERT_EQ(s.c[0].llc_any_ver, 1);
	USMC_ASSERT_EQ(s.c[0].llc_dir, USMC_FAULT_DIR_REQ);
	USMC_ASSERT_EQ(s.c[0].clear_mask, 0x03);
	USMC_ASSERT_EQ(s.c[0].set_mask, 0);
	USMC_ASSERT_EQ(s.c[0].nth, 2);
	USMC_ASSERT_EQ(s.c[0].count, 1);
	USMC_ASSERT_EQ(s.c[1].llc_type, 0x06);
	USMC_ASSERT_EQ(s.c[1].llc_dir, USMC_FAULT_DIR_RESP);
	USMC_ASSERT_EQ(s.c[1].set_mask, 0x20);
	USMC_ASSERT_EQ(s.c[1].has_qpn, 1);
	USMC_ASSERT_EQ(s.c[1].qpn, 17);
	USMC_ASSERT_EQ(s.c[2].llc_type, 0x26);
	USMC_ASSERT_EQ(s.c[2].llc_any_ver, 0);
	USMC_ASSERT_EQ(s.c[2].llc_dir, USMC_FAULT_DIR_ANY);
	USMC_ASSERT_EQ(s.c[2].set_mask, 0xff);
	USMC_ASSERT_EQ(s.c[2].clear_mask, 0x0f);

	/* the 2nd CONFIRM_LINK request, v1 or v2 (0x21); responses, other
	 * types and CDCs (0xfe) are not counted */
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("rewrite-llc:type="
						    "CONFIRM_LINK,dir=req,"
						    "clear=3,nth=2",
						    0, &s, NULL, 0),
			     0);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x21, 0x83, 5, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x01, 0x03, 5, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x06, 0x00, 5, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0xfe, 0x00, 5, 0), -1);
	USMC_ASSERT_EQ(
		usmc_fault_sched_on(&s, USMC_FAULT_ON_POST, USMC_WR_SEND, 5, 0),
		-1);
	USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_LLC, 0x21, 5, 0),
		       -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x21, 0x03, 5, 0), 0);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x21, 0x03, 5, 0), -1);
	USMC_ASSERT_EQ(s.c[0].seen, 3);
	USMC_ASSERT_EQ(s.c[0].fired, 1);

	/* a code matches exactly; dir=resp wants the RESP flag; qp= its QP;
	 * fail-post does not count LLC events, nor rewrite-llc posts */
	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("fail-post:op=SEND;"
						    "rewrite-llc:type=6,"
						    "dir=resp,set=0x20,qp=9",
						    0, &s, NULL, 0),
			     0);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x26, 0x80, 9, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x06, 0x00, 9, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x06, 0x80, 8, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on_llc(&s, 0x06, 0x80, 9, 0), 1);
	USMC_ASSERT_EQ(s.c[0].seen, 0);
	USMC_ASSERT_EQ(
		usmc_fault_sched_on(&s, USMC_FAULT_ON_POST, USMC_WR_SEND, 9, 0),
		0);
	USMC_ASSERT_EQ(s.c[1].seen, 1);
	USMC_ASSERT_EQ(usmc_fault_sched_next(&s), UINT64_MAX);
}

static void test_merge(void)
{
	usmc_fault_sched s, more;

	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("seed=5;drop", 0, &s, NULL, 0), 0);
	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("qp-error:qp=17", 50, &more, NULL, 0),
		0);
	USMC_ASSERT_EQ(usmc_fault_sched_merge(&s, &more), 0);
	USMC_ASSERT_EQ(s.n, 2);
	USMC_ASSERT_EQ(s.seed, 5); /* no seed= in |more|: kept */
	USMC_ASSERT_EQ(s.c[1].t0, 50);
	for (int i = 0; i < 30; i++)
		USMC_ASSERT_EQ(usmc_fault_sched_merge(&s, &more), 0);
	USMC_ASSERT_EQ(usmc_fault_sched_merge(&s, &more), USMC_ERR_LIMIT);
	USMC_ASSERT_EQ(s.n, 32);
}

/* in=payload: only events flagged as WRITE payload count and fire;
 * in=any (the default) counts every packet */
static void test_corrupt_in(void)
{
	usmc_fault_sched s;
	char err[160];

	USMC_ASSERT_EQ_FATAL(usmc_fault_sched_parse("corrupt:in=payload,nth=2;"
						    "corrupt:nth=3",
						    0, &s, err, sizeof(err)),
			     0);
	USMC_ASSERT_EQ(s.c[0].in, USMC_FAULT_IN_PAYLOAD);
	USMC_ASSERT_EQ(s.c[1].in, USMC_FAULT_IN_ANY);
	/* packets: payload, none, none (3rd: clause 1), payload (2nd with
	 * payload: clause 0) */
	USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 1, 0, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 0, 0, 0), -1);
	USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 0, 0, 0), 1);
	USMC_ASSERT_EQ(usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 1, 0, 0), 0);
	USMC_ASSERT_EQ(s.c[0].seen, 2);
	USMC_ASSERT_EQ(s.c[1].seen, 4);
}

static CU_TestInfo tests[] = {
	{"good schedules: every field", test_good},
	{"bad schedules: position and what was expected", test_bad},
	{"more than 32 faults", test_too_many},
	{"same seed, same faults", test_seed_replay},
	{"triggers: nth, count, after, for, time", test_triggers},
	{"run-time clauses merge", test_merge},
	{"fail-reg-mr, fail-modify-qp count their verb", test_verb_faults},
	{"rewrite-llc: fields, type and direction", test_rewrite_llc},
	{"corrupt in=payload counts only packets with WRITE payload",
	 test_corrupt_in},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"fault_sched", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
