/* SPDX-License-Identifier: MIT */
/*
 * The rules parser and matcher (runtime/usmc_rules.c, docs/rules.md):
 * every syntax error with its place, first-match precedence, CIDR edges
 * for IPv4 and IPv6, program patterns, per-connection listeners, and
 * loading from the environment and a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usmc_rt.h"
#include "usmc_test.h"

static usmc_rules *rs_new(void)
{
	usmc_rules *rs = calloc(1, sizeof(*rs));

	CU_ASSERT_FATAL(rs != NULL);
	return rs;
}

static int parse(usmc_rules *rs, const char *text, char *err, size_t len)
{
	return usmc_rules_parse(rs, text, "f.conf", err, len);
}

static usmc_rule_net net(const char *s)
{
	usmc_rule_net n;

	CU_ASSERT_FATAL(usmc_rule_net_parse(&n, s) == 0);
	return n;
}

/* whether the default took part in the last eval() */
static int by_default;
/* the default eval() and the why calls use: dq.dflt_smc */
static usmc_rule_query dq;

/* Evaluates with the given fields (NULL = unknown). */
static int eval(const usmc_rules *rs, const char *prog, const char *local,
		const char *remote, uint16_t port, int *idx)
{
	usmc_rule_net l, r;
	usmc_rule_query q = {prog, NULL, NULL, port, dq.dflt_smc};

	if (local) {
		l = net(local);
		q.local = &l;
	}
	if (remote) {
		r = net(remote);
		q.remote = &r;
	}
	return usmc_rules_eval(rs, &q, idx, &by_default);
}

static void test_parse_ok(void)
{
	usmc_rules *rs = rs_new();
	char err[256] = "";

	CU_ASSERT_EQUAL(
		parse(rs,
		      "# comment\n"
		      "\n"
		      "  smc port 7070   # trailing comment\n"
		      "tcp program redis-cli,memtier* remote 10.0.0.0/8,"
		      "fe80::/10 local 10.1.2.3 port 1-1024,8080\r\n"
		      "smc; tcp port 1\n"
		      "smc local 10.9.0.0/16 transport fault:softroce\n",
		      err, sizeof(err)),
		0);
	CU_ASSERT_STRING_EQUAL(err, "");
	USMC_ASSERT_EQ(rs->n, 5);
	USMC_ASSERT_EQ(rs->v[0].action, USMC_RULE_SMC);
	CU_ASSERT_STRING_EQUAL(rs->v[0].transport, "");
	CU_ASSERT_STRING_EQUAL(rs->v[4].transport, "fault:softroce");
	USMC_ASSERT_EQ(rs->v[4].nlocal, 1);
	CU_ASSERT(usmc_rules_name_transport(rs));
	USMC_ASSERT_EQ(rs->v[0].line, 3);
	CU_ASSERT_STRING_EQUAL(rs->v[0].text, "smc port 7070");
	CU_ASSERT_STRING_EQUAL(rs->v[0].src, "f.conf");
	USMC_ASSERT_EQ(rs->v[1].action, USMC_RULE_TCP);
	CU_ASSERT_STRING_EQUAL(rs->v[1].program, "redis-cli,memtier*");
	USMC_ASSERT_EQ(rs->v[1].nremote, 2);
	USMC_ASSERT_EQ(rs->v[1].nlocal, 1);
	USMC_ASSERT_EQ(rs->v[1].line, 4);
	CU_ASSERT(usmc_portset_has(&rs->v[1].ports, 8080));
	CU_ASSERT(usmc_rules_use_local(rs));
	USMC_ASSERT_EQ(rs->v[2].line, 5);
	CU_ASSERT_STRING_EQUAL(rs->v[2].text, "smc");
	USMC_ASSERT_EQ(rs->v[3].line, 5);
	CU_ASSERT_STRING_EQUAL(rs->v[3].text, "tcp port 1");
	/* empty input and NULL are no rules, no error */
	CU_ASSERT_EQUAL(parse(rs, "", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(parse(rs, NULL, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(parse(rs, " # only\n\n;;\n", err, sizeof(err)), 0);
	USMC_ASSERT_EQ(rs->n, 5);
	rs->n = 4;
	CU_ASSERT(!usmc_rules_name_transport(rs));
	free(rs);
}

static void test_parse_errors(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"smcr port 1", "f.conf:1:1: a rule starts with smc or tcp, "
				"not \"smcr\""},
		{"\n\n  smc prt 1", "f.conf:3:7: unknown keyword \"prt\""},
		/* a file's bytes never reach a terminal as they are */
		{"smc \x1b[31mred\xc3", "f.conf:1:5: unknown keyword "
					"\"\\x1b[31mred\\xc3\""},
		{"smc port", "f.conf:1:5: \"port\" needs a value"},
		{"smc port 0", "f.conf:1:10: port: bad port"},
		{"smc port 65536", "f.conf:1:10: port: bad port"},
		{"smc port 9-3", "f.conf:1:10: port: empty range"},
		{"smc port 1,", "f.conf:1:10: port: bad port"},
		{"smc port 1 port 2", "f.conf:1:12: \"port\" given twice"},
		{"smc remote 10.0.0.300", "f.conf:1:12: bad address "
					  "\"10.0.0.300\""},
		{"smc remote 10.0.0.0/33", "f.conf:1:12: bad address"},
		{"smc remote 10.0.0.1/8",
		 "f.conf:1:12: \"10.0.0.1/8\": address "
		 "has bits set beyond its prefix"},
		{"smc remote 10.0.0.0/", "f.conf:1:12: bad address"},
		{"smc remote 10.0.0.0/x", "f.conf:1:12: bad address"},
		{"smc remote fe80::/129", "f.conf:1:12: bad address"},
		{"smc remote ,", "f.conf:1:12: empty address list"},
		{"smc local host.example", "f.conf:1:11: bad address"},
		{"smc remote 1.1.1.1 remote 2.2.2.2",
		 "f.conf:1:20: \"remote\" given twice"},
		{"smc program", "f.conf:1:5: \"program\" needs a value"},
		{"smc program a,,b", "f.conf:1:13: empty name in program list"},
		{"tcp\nsmc port 1 # ok\ntcp; smc local",
		 "f.conf:3:10: \"local\" "
		 "needs a value"},
		{"port 7070", "f.conf:1:1: a rule starts with smc or tcp"},
		{"smc transport", "f.conf:1:5: \"transport\" needs a value"},
		{"tcp port 1 transport softroce",
		 "f.conf:1:12: \"transport\" only goes with smc rules"},
		{"smc transport a transport b",
		 "f.conf:1:17: \"transport\" given twice"},
		{"smc transport softroce,fault",
		 "f.conf:1:15: one transport per rule"},
		{"smc transport 0123456789012345678901234567890123",
		 "f.conf:1:15: transport name too long"},
	};
	usmc_rules *rs = rs_new();
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		rs->n = 0;
		CU_ASSERT_EQUAL(parse(rs, "smc port 5\n", err, sizeof(err)), 0);
		if (parse(rs, bad[i].text, err, sizeof(err)) != -1 ||
		    strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
			fprintf(stderr,
				"case \"%s\": got \"%s\", want \"%s\"\n",
				bad[i].text, err, bad[i].want);
		CU_ASSERT(strncmp(err, bad[i].want, strlen(bad[i].want)) == 0);
		/* nothing of the bad text is kept */
		USMC_ASSERT_EQ(rs->n, 1);
	}
	free(rs);
}

static void test_too_many(void)
{
	usmc_rules *rs = rs_new();
	char text[USMC_RULES_MAX * 8 + 16] = "", err[256];

	for (int i = 0; i < USMC_RULES_MAX; i++)
		strcat(text, "smc;");
	CU_ASSERT_EQUAL(parse(rs, text, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(parse(rs, "tcp", err, sizeof(err)), -1);
	CU_ASSERT(strstr(err, "too many rules (max 64)") != NULL);
	USMC_ASSERT_EQ(rs->n, USMC_RULES_MAX);
	free(rs);
}

static void test_precedence(void)
{
	usmc_rules *rs = rs_new();
	char err[256], why[256];
	int idx;

	CU_ASSERT_EQUAL(parse(rs,
			      "tcp remote 10.0.0.5\n"
			      "smc remote 10.0.0.0/24 port 7000-7010\n"
			      "tcp port 7005\n"
			      "smc port 7005,9000\n",
			      err, sizeof(err)),
			0);
	/* first match wins */
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.0.5", 7005, &idx),
		       USMC_RULE_TCP);
	USMC_ASSERT_EQ(idx, 0);
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.0.6", 7005, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 1);
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.1.6", 7005, &idx),
		       USMC_RULE_TCP);
	USMC_ASSERT_EQ(idx, 2);
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.1.6", 9000, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 3);
	USMC_ASSERT_EQ(by_default, 0);
	usmc_rules_why(rs, &dq, USMC_RULE_SMC, idx, why, sizeof(why));
	CU_ASSERT_STRING_EQUAL(
		why, "rule 4 at f.conf:4 (smc port 7005,9000) matched");
	/* no match: the default, tcp */
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.1.6", 9001, &idx),
		       USMC_RULE_TCP);
	USMC_ASSERT_EQ(idx, -1);
	USMC_ASSERT_EQ(by_default, 1);
	usmc_rules_why(rs, &dq, USMC_RULE_TCP, idx, why, sizeof(why));
	CU_ASSERT_STRING_EQUAL(why, "no rule matched, default tcp");
	/* with the SMC TCP option on and no smc rule, no match is smc; tcp
	 * rules still win (the runtime sets dflt_smc only without smc
	 * rules: these have some) */
	CU_ASSERT_EQUAL(usmc_rules_has_smc(rs), 1);
	dq.dflt_smc = 1;
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.1.6", 9001, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, -1);
	usmc_rules_why(rs, &dq, USMC_RULE_SMC, idx, why, sizeof(why));
	CU_ASSERT_STRING_EQUAL(
		why, "no rule matched, default smc (SMC TCP option on)");
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", "10.0.1.6", 7005, &idx),
		       USMC_RULE_TCP);
	USMC_ASSERT_EQ(idx, 2);
	USMC_ASSERT_EQ(by_default, 0);
	/* a listener: a tcp rule naming a peer, then the default smc */
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", NULL, 80, &idx),
		       USMC_RULE_MAYBE);
	USMC_ASSERT_EQ(by_default, 1);
	dq.dflt_smc = 0;

	/* a listener (remote unknown): tcp rules naming a peer settle
	 * nothing; an smc rule naming a peer makes it per connection */
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", NULL, 7005, &idx),
		       USMC_RULE_MAYBE);
	USMC_ASSERT_EQ(idx, 0);
	usmc_rules_why(rs, &dq, USMC_RULE_MAYBE, idx, why, sizeof(why));
	CU_ASSERT(strstr(why, "rule 1 at f.conf:1 (tcp remote 10.0.0.5) may "
			      "match") != NULL);
	/* tcp for 10.0.0.5, smc for the rest: per connection too */
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", NULL, 9000, &idx),
		       USMC_RULE_MAYBE);
	/* only tcp possible (a tcp rule, then the default) */
	USMC_ASSERT_EQ(eval(rs, "a", "10.0.0.1", NULL, 80, &idx),
		       USMC_RULE_TCP);
	/* only smc possible: decided now */
	rs->n = 0;
	CU_ASSERT_EQUAL(
		parse(rs, "smc port 5; tcp remote 1.2.3.4", err, sizeof(err)),
		0);
	USMC_ASSERT_EQ(eval(rs, "a", NULL, NULL, 5, &idx), USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 0);
	USMC_ASSERT_EQ(eval(rs, "a", NULL, NULL, 6, &idx), USMC_RULE_TCP);
	USMC_ASSERT_EQ(idx, -1);
	rs->n = 0;
	CU_ASSERT_EQUAL(parse(rs, "tcp port 22", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(usmc_rules_has_smc(rs), 0);
	/* an unconditional smc after a maybe-smc rule: smc either way */
	rs->n = 0;
	CU_ASSERT_EQUAL(parse(rs, "smc remote 1.0.0.0/8 port 5; smc port 5",
			      err, sizeof(err)),
			0);
	USMC_ASSERT_EQ(eval(rs, "a", NULL, NULL, 5, &idx), USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 1);

	/* refused rules: tcp whatever matched */
	rs->error = 1;
	snprintf(rs->err, sizeof(rs->err), "f.conf:1:1: boom");
	USMC_ASSERT_EQ(eval(rs, "a", NULL, NULL, 5, &idx), USMC_RULE_TCP);
	USMC_ASSERT_EQ(idx, -1);
	usmc_rules_why(rs, &dq, USMC_RULE_TCP, idx, why, sizeof(why));
	CU_ASSERT_STRING_EQUAL(why,
			       "rules refused (f.conf:1:1: boom): all tcp");
	free(rs);
}

static void test_cidr(void)
{
	static const struct {
		const char *rule, *addr;
		int match;
	} c[] = {
		{"0.0.0.0/0", "255.255.255.255", 1},
		{"0.0.0.0/0", "0.0.0.0", 1},
		{"10.0.0.0/8", "10.255.255.255", 1},
		{"10.0.0.0/8", "11.0.0.0", 0},
		{"10.0.0.0/8", "9.255.255.255", 0},
		{"192.168.1.128/25", "192.168.1.128", 1},
		{"192.168.1.128/25", "192.168.1.255", 1},
		{"192.168.1.128/25", "192.168.1.127", 0},
		{"192.168.1.7/32", "192.168.1.7", 1},
		{"192.168.1.7", "192.168.1.6", 0},
		{"172.16.0.0/12", "172.31.255.1", 1},
		{"172.16.0.0/12", "172.32.0.1", 0},
		{"::/0", "2001:db8::1", 1},
		{"::/0", "10.0.0.1", 0}, /* families differ */
		{"0.0.0.0/0", "2001:db8::1", 0},
		{"2001:db8::/32", "2001:db8:ffff::1", 1},
		{"2001:db8::/32", "2001:db9::1", 0},
		{"fe80::/10", "febf::1", 1},
		{"fe80::/10", "fec0::1", 0},
		{"2001:db8::1/128", "2001:db8::1", 1},
		{"2001:db8::1", "2001:db8::2", 0},
		/* v4-mapped on either side is IPv4 */
		{"10.0.0.0/8", "::ffff:10.1.2.3", 1},
		{"::ffff:10.0.0.0/104", "10.1.2.3", 1},
		{"::ffff:10.0.0.0/104", "11.1.2.3", 0},
	};
	usmc_rules *rs = rs_new();
	char text[128], err[256];
	int idx;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int got;

		rs->n = 0;
		snprintf(text, sizeof(text), "smc remote %s", c[i].rule);
		CU_ASSERT_EQUAL_FATAL(parse(rs, text, err, sizeof(err)), 0);
		got = eval(rs, "a", NULL, c[i].addr, 1, &idx) == USMC_RULE_SMC;
		if (got != c[i].match)
			fprintf(stderr, "%s vs %s: got %d\n", c[i].rule,
				c[i].addr, got);
		CU_ASSERT_EQUAL(got, c[i].match);
	}
	/* the same on the local side */
	rs->n = 0;
	CU_ASSERT_EQUAL(parse(rs, "smc local 127.0.0.0/8", err, sizeof(err)),
			0);
	USMC_ASSERT_EQ(eval(rs, "a", "127.0.0.2", "10.0.0.1", 1, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(eval(rs, "a", "128.0.0.1", "10.0.0.1", 1, &idx),
		       USMC_RULE_TCP);
	/* unknown local (a wildcard listener): may match */
	USMC_ASSERT_EQ(eval(rs, "a", NULL, NULL, 1, &idx), USMC_RULE_MAYBE);
	free(rs);
}

static void test_program(void)
{
	usmc_rules *rs = rs_new();
	char err[256];
	int idx;

	CU_ASSERT_EQUAL(parse(rs,
			      "tcp program redis-cli\n"
			      "smc program redis-*,nginx\n"
			      "smc program [ab]?\n",
			      err, sizeof(err)),
			0);
	USMC_ASSERT_EQ(eval(rs, "redis-cli", NULL, NULL, 1, &idx),
		       USMC_RULE_TCP);
	USMC_ASSERT_EQ(eval(rs, "redis-server", NULL, NULL, 1, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 1);
	USMC_ASSERT_EQ(eval(rs, "nginx", NULL, NULL, 1, &idx), USMC_RULE_SMC);
	USMC_ASSERT_EQ(eval(rs, "nginx2", NULL, NULL, 1, &idx), USMC_RULE_TCP);
	USMC_ASSERT_EQ(eval(rs, "redis", NULL, NULL, 1, &idx), USMC_RULE_TCP);
	USMC_ASSERT_EQ(eval(rs, "bx", NULL, NULL, 1, &idx), USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 2);
	USMC_ASSERT_EQ(eval(rs, "cx", NULL, NULL, 1, &idx), USMC_RULE_TCP);
	/* names are exact, case and all */
	USMC_ASSERT_EQ(eval(rs, "NGINX", NULL, NULL, 1, &idx), USMC_RULE_TCP);
	free(rs);
}

static void test_ports_rule(void)
{
	usmc_rules *rs = rs_new();
	usmc_portset ps;
	char err[256];
	int idx;

	CU_ASSERT_EQUAL(
		parse(rs, "tcp remote 10.0.0.9; smc port 1", err, sizeof(err)),
		0);
	CU_ASSERT_EQUAL(
		usmc_portset_parse(&ps, "7070,8000-8001", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(usmc_rules_set_ports(rs, 1, &ps), 0);
	USMC_ASSERT_EQ(rs->n, 3);
	CU_ASSERT_STRING_EQUAL(rs->v[1].text, "smc port 7070,8000-8001");
	CU_ASSERT_STRING_EQUAL(rs->v[1].src, "USMC_SMC_PORTS");
	USMC_ASSERT_EQ(eval(rs, "a", NULL, "10.0.0.8", 8001, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 1);
	USMC_ASSERT_EQ(eval(rs, "a", NULL, "10.0.0.9", 8001, &idx),
		       USMC_RULE_TCP);
	/* set again: replaced, not added */
	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, "9", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(usmc_rules_set_ports(rs, 1, &ps), 0);
	USMC_ASSERT_EQ(rs->n, 3);
	USMC_ASSERT_EQ(eval(rs, "a", NULL, "10.0.0.8", 8001, &idx),
		       USMC_RULE_TCP);
	CU_ASSERT_EQUAL(usmc_rules_set_ports(rs, 4, &ps), -1);
	free(rs);
}

/* The runtime's loading: environment, file, order, refusal. */
static void test_load(void)
{
	usmc_rt_config *c = calloc(1, sizeof(*c));
	char path[] = "/tmp/usmc-rules-test-XXXXXX";
	int fd = mkstemp(path), idx;
	FILE *f;

	CU_ASSERT_FATAL(c && fd >= 0);
	f = fdopen(fd, "w");
	fputs("# test\ntcp port 7070\nsmc port 7071\n", f);
	fclose(f);
	setenv("USMC_CONF", path, 1);
	setenv("USMC_RULES", "smc remote 10.0.0.0/8 port 7070", 1);
	setenv("USMC_SMC_PORTS", "7070-7072", 1);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 0);
	USMC_ASSERT_EQ(c->rules.n, 4);
	CU_ASSERT_STRING_EQUAL(c->rules.v[0].src, "USMC_RULES");
	CU_ASSERT_STRING_EQUAL(c->rules.v[1].src, "USMC_SMC_PORTS");
	CU_ASSERT_STRING_EQUAL(c->rules.v[2].src, path);
	USMC_ASSERT_EQ(c->rules.v[2].line, 2);
	USMC_ASSERT_EQ(eval(&c->rules, "a", NULL, "10.1.1.1", 7070, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 0);
	USMC_ASSERT_EQ(eval(&c->rules, "a", NULL, "11.1.1.1", 7070, &idx),
		       USMC_RULE_SMC);
	USMC_ASSERT_EQ(idx, 1);

	/* a bad file refuses every rule, USMC_SMC_PORTS included */
	f = fopen(path, "w");
	fputs("smc port 1\nsmc port 2 remote x\n", f);
	fclose(f);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 1);
	CU_ASSERT(strstr(c->rules.err, ":2:19: bad address \"x\"") != NULL);
	USMC_ASSERT_EQ(eval(&c->rules, "a", NULL, "10.1.1.1", 7070, &idx),
		       USMC_RULE_TCP);
	/* so does a bad USMC_RULES, and a missing named file */
	setenv("USMC_RULES", "smc bogus", 1);
	unlink(path);
	usmc_config_load_env(c);
	CU_ASSERT(strstr(c->rules.err, "USMC_RULES:1:5: unknown keyword") !=
		  NULL);
	unsetenv("USMC_RULES");
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 1);
	CU_ASSERT(strstr(c->rules.err, "No such file") != NULL);
	/* USMC_CONF="" reads no file: USMC_SMC_PORTS alone, as before */
	setenv("USMC_CONF", "", 1);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 0);
	USMC_ASSERT_EQ(c->rules.n, 1);
	USMC_ASSERT_EQ(eval(&c->rules, "a", NULL, "1.1.1.1", 7072, &idx),
		       USMC_RULE_SMC);
	unsetenv("USMC_SMC_PORTS");

	/* "set KEY VALUE" lines: settings, skipped by the rules (line
	 * numbers kept); a variable that is set wins */
	f = fopen(path, "w");
	fputs("set cgroup private # for ip netns exec\n  set synopt off\n"
	      "smc port 1 remote x\n",
	      f);
	fclose(f);
	setenv("USMC_CONF", path, 1);
	usmc_config_load_env(c);
	CU_ASSERT(strstr(c->rules.err, ":3:19: bad address \"x\"") != NULL);
	f = fopen(path, "w");
	fputs("set cgroup private # for ip netns exec\n  set synopt off\n"
	      "smc port 1\n",
	      f);
	fclose(f);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 0);
	USMC_ASSERT_EQ(c->rules.n, 1);
	CU_ASSERT_STRING_EQUAL(c->cgroup, "private");
	USMC_ASSERT_EQ(c->synopt, 0);
	setenv("USMC_SYNOPT", "auto", 1);
	usmc_config_load_env(c);
	USMC_ASSERT_EQ(c->synopt, 1);
	unsetenv("USMC_SYNOPT");
	/* an unknown key or a missing value refuses the file */
	f = fopen(path, "w");
	fputs("smc port 1\nset transport x\n", f);
	fclose(f);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 1);
	CU_ASSERT(strstr(c->rules.err, ":2: want \"set KEY VALUE\"") != NULL);
	f = fopen(path, "w");
	fputs("set synopt\n", f);
	fclose(f);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 1);
	/* shortconn: the default, the file's, the variable's over it, and a
	 * bad value refusing the file */
	f = fopen(path, "w");
	fputs("smc port 1\n", f);
	fclose(f);
	usmc_config_load_env(c);
	USMC_ASSERT_EQ(c->shortconn.n, 8);
	f = fopen(path, "w");
	fputs("set shortconn 4,1024,20,500\nsmc port 1\n", f);
	fclose(f);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 0);
	USMC_ASSERT_EQ(c->shortconn.n, 4);
	USMC_ASSERT_EQ(c->shortconn.bytes, 1024);
	USMC_ASSERT_EQ(c->shortconn.hold_ms, 500);
	setenv("USMC_SHORTCONN", "off", 1);
	usmc_config_load_env(c);
	USMC_ASSERT_EQ(c->shortconn.n, 0);
	unsetenv("USMC_SHORTCONN");
	f = fopen(path, "w");
	fputs("set shortconn 4,1024\n", f);
	fclose(f);
	usmc_config_load_env(c);
	CU_ASSERT_EQUAL(c->rules.error, 1);
	CU_ASSERT(strstr(c->rules.err, "bad value \"4,1024\" for shortconn") !=
		  NULL);
	unlink(path);
	unsetenv("USMC_CONF");
	free(c);
}

#define MS 1000000ULL

/* The per-peer decision on short-lived connections (docs/rules.md,
 * "Short-lived connections"): the setting's syntax, a hold after N short
 * SMC-R connections in a row to one address and port (and only that one),
 * a long or large one resetting the count, the end of the hold, one more
 * short connection starting the next, "off", and a full table forgetting
 * the peer noted longest ago. */
static void test_shortconn(void)
{
	static const char *const bad[] = {
		"",	    "8",       "8,1,2",	       "8,1,2,3,4",
		"0,1,2,3",  "8,1,2,0", "256,1,2,3",    "8,-1,2,3",
		"8,1,2,3x", "a,1,2,3", "8,1,2,3600001"};
	usmc_peerhist *h = calloc(1, sizeof(*h));
	usmc_shortconn sc;
	uint32_t a = 0x0100000a, b = 0x0200000a; /* 10.0.0.1, 10.0.0.2 */
	uint16_t p = 0xe618, q = 0xe718;	 /* 6374, 6375 */
	uint64_t t = 1000 * MS, left = 0;
	char err[160];

	CU_ASSERT_FATAL(h != NULL);
	USMC_ASSERT_EQ(usmc_shortconn_parse(&sc, USMC_SHORTCONN_DEFAULT, err,
					    sizeof(err)),
		       0);
	USMC_ASSERT_EQ(sc.n, 8);
	USMC_ASSERT_EQ(sc.bytes, 2048);
	USMC_ASSERT_EQ(sc.ms, 200);
	USMC_ASSERT_EQ(sc.hold_ms, 10000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		usmc_shortconn x = sc;

		CU_ASSERT_EQUAL(
			usmc_shortconn_parse(&x, bad[i], err, sizeof(err)), -1);
		CU_ASSERT(strstr(err, "want off or N,BYTES,MS,HOLD_MS") !=
			  NULL);
		USMC_ASSERT_EQ(x.n, 8); /* untouched */
	}
	USMC_ASSERT_EQ(
		usmc_shortconn_parse(&sc, "3,100,50,2000", err, sizeof(err)),
		0);

	/* two short ones, then a large one: no hold, the count restarts */
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 100, 50 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 0, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 101, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t, NULL), 0);
	/* a long-lived one resets it too */
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 51 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t, NULL), 0);
	/* the third short one in a row: held for 2 s, that peer only */
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t), 1);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t + 1, &left), 1);
	USMC_ASSERT_EQ(left, 2000);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, q, t + 1, NULL), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, p, t + 1, NULL), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t + 1999 * MS, &left),
		       1);
	USMC_ASSERT_EQ(left, 1);
	/* a connection that began before the hold and ends in it does not
	 * extend it */
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t + MS), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t + 2000 * MS, NULL),
		       0);
	/* after the hold: one more short one holds again at once */
	t += 3000 * MS;
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 10, 1 * MS, t), 1);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t, NULL), 1);
	/* a large one after the hold: SMC-R again */
	t += 3000 * MS;
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, a, p, 1000, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, a, p, t, NULL), 0);
	/* a peer that answered without the SMC option: TCP for hold_ms,
	 * held as such (2); noted again while held, no new hold starts,
	 * the hold runs from the last note */
	USMC_ASSERT_EQ(usmc_peerhist_nosmc(h, &sc, b, q, t), 1);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, q, t + 1, &left), 2);
	USMC_ASSERT_EQ(left, 2000);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, p, t + 1, NULL), 0);
	USMC_ASSERT_EQ(usmc_peerhist_nosmc(h, &sc, b, q, t + MS), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, q, t + 2000 * MS, NULL),
		       2);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, q, t + 2001 * MS, NULL),
		       0);
	/* after it, a new note holds again; then an SMC-R connection to it
	 * (it offered SMC) ends the hold, its short ones count from there */
	t += 3000 * MS;
	USMC_ASSERT_EQ(usmc_peerhist_nosmc(h, &sc, b, q, t), 1);
	USMC_ASSERT_EQ(usmc_peerhist_note(h, &sc, b, q, 10, 1 * MS, t), 0);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, q, t, NULL), 0);
	/* "off": nothing is noted or held */
	{
		usmc_shortconn off;

		USMC_ASSERT_EQ(
			usmc_shortconn_parse(&off, "off", err, sizeof(err)), 0);
		USMC_ASSERT_EQ(off.n, 0);
		for (int i = 0; i < 10; i++)
			USMC_ASSERT_EQ(
				usmc_peerhist_note(h, &off, b, q, 0, 0, t), 0);
		USMC_ASSERT_EQ(usmc_peerhist_held(h, &off, a, p, t, NULL), 0);
	}
	/* a full table forgets the peer noted longest ago */
	for (int k = 0; k < 3; k++)
		usmc_peerhist_note(h, &sc, b, q, 0, 0, t);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, q, t, NULL), 1);
	for (uint32_t i = 0; i < USMC_PEERHIST_MAX; i++)
		usmc_peerhist_note(h, &sc, 0x0300000a + (i << 24), p, 0, 0,
				   t + 1 + i);
	USMC_ASSERT_EQ(usmc_peerhist_held(h, &sc, b, q, t + 100, NULL), 0);
	free(h);
}

static CU_TestInfo tests[] = {
	{"rules short-lived connections per peer", test_shortconn},
	{"rules parse", test_parse_ok},
	{"rules syntax errors with their place", test_parse_errors},
	{"rules limit", test_too_many},
	{"rules precedence and listeners", test_precedence},
	{"rules CIDR edges", test_cidr},
	{"rules program patterns", test_program},
	{"rules USMC_SMC_PORTS rule", test_ports_rule},
	{"rules loading", test_load},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime rules match", tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
