/* SPDX-License-Identifier: MIT */
/*
 * Pure runtime logic: explicit-mode port lists, size suffixes, settings
 * from strings. Every malformed input is rejected with a message.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usmc_rt.h"
#include "usmc_sock.h"
#include "usmc_test.h"

static void test_portset_parse(void)
{
	usmc_portset ps;
	char err[128], out[256];

	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, "7070", err, sizeof(err)), 0);
	USMC_ASSERT_EQ(ps.n, 1);
	CU_ASSERT(usmc_portset_has(&ps, 7070));
	CU_ASSERT(!usmc_portset_has(&ps, 7069));
	CU_ASSERT(!usmc_portset_has(&ps, 7071));

	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, " 8000-8010 , 7070,1,65535",
					   err, sizeof(err)),
			0);
	CU_ASSERT(usmc_portset_has(&ps, 8000));
	CU_ASSERT(usmc_portset_has(&ps, 8005));
	CU_ASSERT(usmc_portset_has(&ps, 8010));
	CU_ASSERT(!usmc_portset_has(&ps, 8011));
	CU_ASSERT(!usmc_portset_has(&ps, 7999));
	CU_ASSERT(usmc_portset_has(&ps, 1));
	CU_ASSERT(usmc_portset_has(&ps, 65535));
	CU_ASSERT(!usmc_portset_has(&ps, 2));
	usmc_portset_format(&ps, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "1,7070,8000-8010,65535");
}

static void test_portset_merge(void)
{
	usmc_portset ps;
	char err[128], out[256];

	/* overlapping and adjacent ranges merge; order does not matter */
	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, "10-20,5-12,21,30,29,100-100",
					   err, sizeof(err)),
			0);
	usmc_portset_format(&ps, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "5-21,29-30,100");
	USMC_ASSERT_EQ(ps.n, 3);
}

static void test_portset_bad(void)
{
	static const char *bad[] = {
		"",
		"0",
		"65536",
		"7070,",
		",7070",
		"80-",
		"-80",
		"90-80",
		"a",
		"80 90",
		"80;90",
		"1-2-3",
		"99999999999999999999",
	};
	usmc_portset ps;
	char err[128];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (usmc_portset_parse(&ps, bad[i], err, sizeof(err)) != -1)
			fprintf(stderr, "accepted \"%s\"\n", bad[i]);
		CU_ASSERT_EQUAL(
			usmc_portset_parse(&ps, bad[i], err, sizeof(err)), -1);
		CU_ASSERT(err[0] != '\0');
	}
	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, NULL, err, sizeof(err)), -1);
}

static void test_portset_limit(void)
{
	usmc_portset ps;
	char list[2048], err[128];
	size_t off = 0;

	/* 64 disjoint ranges fit, the 65th does not */
	for (int i = 0; i < USMC_PORTSET_MAX; i++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%d",
					i ? "," : "", 1000 + 2 * i);
	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, list, err, sizeof(err)), 0);
	USMC_ASSERT_EQ(ps.n, USMC_PORTSET_MAX);
	snprintf(list + off, sizeof(list) - off, ",5000");
	CU_ASSERT_EQUAL(usmc_portset_parse(&ps, list, err, sizeof(err)), -1);
}

static void test_parse_size(void)
{
	uint64_t v = 0;

	CU_ASSERT_EQUAL(usmc_parse_size("4096", &v), 0);
	USMC_ASSERT_EQ(v, 4096);
	CU_ASSERT_EQUAL(usmc_parse_size("64M", &v), 0);
	USMC_ASSERT_EQ(v, 64ull << 20);
	CU_ASSERT_EQUAL(usmc_parse_size("1k", &v), 0);
	USMC_ASSERT_EQ(v, 1024);
	CU_ASSERT_EQUAL(usmc_parse_size("2G", &v), 0);
	USMC_ASSERT_EQ(v, 2ull << 30);
	CU_ASSERT_EQUAL(usmc_parse_size("", &v), -1);
	CU_ASSERT_EQUAL(usmc_parse_size("M", &v), -1);
	CU_ASSERT_EQUAL(usmc_parse_size("1T", &v), -1);
	CU_ASSERT_EQUAL(usmc_parse_size("1MB", &v), -1);
	CU_ASSERT_EQUAL(usmc_parse_size("-1", &v), -1);
	CU_ASSERT_EQUAL(usmc_parse_size("99999999999999G", &v), -1);
}

static void test_config(void)
{
	usmc_rt_config c;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "transport", "softroce"), 0);
	CU_ASSERT_STRING_EQUAL(c.transport, "softroce");
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "transport", ""), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "softroce_port", "4791"), 0);
	USMC_ASSERT_EQ(c.softroce_port, 4791);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "softroce_port", "0"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "softroce_port", "70000"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "softroce_port", "47x"), -1);
	USMC_ASSERT_EQ(c.softroce_port, 4791);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "smc_ports", "7070-7072"), 0);
	CU_ASSERT(c.smc_ports_set);
	CU_ASSERT(usmc_portset_has(&c.smc_ports, 7071));
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "smc_ports", "x"), -1);
	CU_ASSERT(usmc_portset_has(&c.smc_ports, 7071)); /* unchanged */
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "clc_wait_ms", "250"), 0);
	USMC_ASSERT_EQ(c.clc_wait_ms, 250);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "clc_wait_ms", "0"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "testlink_ms", "0"), 0);
	USMC_ASSERT_EQ(c.testlink_ms, 0);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "testlink_ms", "30000"), 0);
	USMC_ASSERT_EQ(c.testlink_ms, 30000);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "testlink_ms", "-1"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "testlink_ms", "600001"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "testlink_wait_ms", "0"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "testlink_wait_ms", "2000"), 0);
	USMC_ASSERT_EQ(c.testlink_wait_ms, 2000);
	USMC_ASSERT_EQ(c.testlink_ms, 30000); /* unchanged */
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "spin_us", "0"), 0);
	USMC_ASSERT_EQ(c.spin_us, 0);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "spin_us", "200"), 0);
	USMC_ASSERT_EQ(c.spin_us, 200);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "spin_us", "-1"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "spin_us", "1001"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "spin_us", "5x"), -1);
	/* dmb_size: 16K..1M, K/M suffixes, rounded up to a power of two */
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "16384"), 0);
	USMC_ASSERT_EQ(c.dmb_size, 16384);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "200K"), 0);
	USMC_ASSERT_EQ(c.dmb_size, 262144);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "1M"), 0);
	USMC_ASSERT_EQ(c.dmb_size, 1048576);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "1048577"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "16383"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "-64K"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "64KB"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", ""), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "dmb_size", "17592186044417M"),
			-1);
	USMC_ASSERT_EQ(c.dmb_size, 1048576);
	USMC_ASSERT_EQ(c.spin_us, 200); /* unchanged */
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "no_such_key", "1"), -1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "debug", NULL), -1);
}

/* The shm device is on by default; USMC_SHM=0 and "shm off" turn it
 * off (the ctest environment pins USMC_SHM=0: taken away here). */
static void test_shm_default(void)
{
	usmc_rt_config c;
	const char *was = getenv("USMC_SHM");
	char *keep = was ? strdup(was) : NULL;

	setenv("USMC_CONF", "", 1);
	unsetenv("USMC_SHM");
	memset(&c, 0, sizeof(c));
	usmc_config_load_env(&c);
	CU_ASSERT_EQUAL(c.shm, 1);
	setenv("USMC_SHM", "0", 1);
	memset(&c, 0, sizeof(c));
	usmc_config_load_env(&c);
	CU_ASSERT_EQUAL(c.shm, 0);
	setenv("USMC_SHM", "off", 1);
	memset(&c, 0, sizeof(c));
	usmc_config_load_env(&c);
	CU_ASSERT_EQUAL(c.shm, 0);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "shm", "on"), 0);
	CU_ASSERT_EQUAL(c.shm, 1);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "shm", "off"), 0);
	CU_ASSERT_EQUAL(c.shm, 0);
	CU_ASSERT_EQUAL(usmc_config_apply(&c, "shm", "maybe"), -1);
	if (keep)
		setenv("USMC_SHM", keep, 1);
	else
		unsetenv("USMC_SHM");
	free(keep);
}

/* Log levels: names (any case) and syslog numbers 3-7; the variable
 * wins over the file's "set log_level"; a bad one is refused with why. */
static void test_log_level(void)
{
	static const char *const bad[] = {"",	"0",  "2",     "8",
					  "33", "-3", "trace", "infoo"};
	char path[] = "/tmp/usmc-loglevel-XXXXXX";
	usmc_rt_config c;
	int fd;

	USMC_ASSERT_EQ(usmc_rt_log_level_parse("error"), USMC_LOG_ERR);
	USMC_ASSERT_EQ(usmc_rt_log_level_parse("ERR"), USMC_LOG_ERR);
	USMC_ASSERT_EQ(usmc_rt_log_level_parse("warn"), USMC_LOG_WARN);
	USMC_ASSERT_EQ(usmc_rt_log_level_parse("Warning"), USMC_LOG_WARN);
	USMC_ASSERT_EQ(usmc_rt_log_level_parse("info"), USMC_LOG_INFO);
	USMC_ASSERT_EQ(usmc_rt_log_level_parse("debug"), USMC_LOG_DEBUG);
	for (int n = 3; n <= 7; n++) {
		char num[2] = {(char)('0' + n), '\0'};

		USMC_ASSERT_EQ(usmc_rt_log_level_parse(num), n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		USMC_ASSERT_EQ(usmc_rt_log_level_parse(bad[i]), -1);
	USMC_ASSERT_EQ(usmc_rt_log_level_parse(NULL), -1);
	CU_ASSERT_STRING_EQUAL(usmc_rt_log_level_name(USMC_LOG_ERR), "error");
	CU_ASSERT_STRING_EQUAL(usmc_rt_log_level_name(5), "warn");
	CU_ASSERT_STRING_EQUAL(usmc_rt_log_level_name(USMC_LOG_DEBUG), "debug");
	CU_ASSERT_STRING_EQUAL(usmc_rt_log_level_name(8), "?");

	memset(&c, 0, sizeof(c));
	USMC_ASSERT_EQ(usmc_config_apply(&c, "log_level", "info"), 0);
	USMC_ASSERT_EQ(c.log_level, USMC_LOG_INFO);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "log_level", "loud"), -1);
	CU_ASSERT_STRING_EQUAL(usmc_config_error(),
			       "want error, warn, info, debug or 3-7");
	USMC_ASSERT_EQ(c.log_level, USMC_LOG_INFO);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "log_file", "/tmp/u-%p.log"), 0);
	CU_ASSERT_STRING_EQUAL(c.log_file, "/tmp/u-%p.log");

	/* the file's settings, then the variable over them */
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(dprintf(fd, "set log_level debug\nset log_file "
				    "/tmp/x.log\nsmc port 1\n") > 0);
	close(fd);
	setenv("USMC_CONF", path, 1);
	unsetenv("USMC_LOG_LEVEL");
	unsetenv("USMC_LOG_FILE");
	usmc_config_load_env(&c);
	USMC_ASSERT_EQ(c.log_level, USMC_LOG_DEBUG);
	CU_ASSERT_STRING_EQUAL(c.log_file, "/tmp/x.log");
	CU_ASSERT_STRING_EQUAL(c.conf_path, path);
	setenv("USMC_LOG_LEVEL", "error", 1);
	usmc_config_load_env(&c);
	USMC_ASSERT_EQ(c.log_level, USMC_LOG_ERR);
	unsetenv("USMC_LOG_LEVEL");
	setenv("USMC_CONF", "", 1);
	usmc_config_load_env(&c);
	USMC_ASSERT_EQ(c.log_level, 0); /* not set: debug or warn */
	CU_ASSERT_STRING_EQUAL(c.conf_path, "");
	unlink(path);
}

static void test_decline_names(void)
{
	CU_ASSERT_STRING_EQUAL(usmc_decline_name(0x03010000), "PEERNOSMC");
	CU_ASSERT_STRING_EQUAL(usmc_decline_name(0x03030002), "NOSMCRDEV");
	CU_ASSERT_STRING_EQUAL(usmc_decline_name(0x05000000), "PEERDECL");
	CU_ASSERT_STRING_EQUAL(usmc_decline_name(0x12345678), "UNKNOWN");
}

/* transport_options: softroce's checked key by key with the position;
 * another transport's only as KEY=VALUE lists. A rule's "options". */
static void test_config_tp_options(void)
{
	usmc_rt_config c;
	usmc_rules rs;
	char err[256];

	memset(&c, 0, sizeof(c));
	strcpy(c.transport, "softroce");
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options",
					 "icrc=strict,mtu=2048,port=4800"),
		       0);
	CU_ASSERT_STRING_EQUAL(c.transport_options,
			       "icrc=strict,mtu=2048,port=4800");
	USMC_ASSERT_EQ(
		usmc_config_apply(&c, "transport_options", "mtu=1024,icrc=x"),
		-1);
	CU_ASSERT_STRING_EQUAL(usmc_config_error(),
			       "option 2 (column 10) \"icrc=x\": icrc is "
			       "verify, strict or off");
	CU_ASSERT_STRING_EQUAL(c.transport_options,
			       "icrc=strict,mtu=2048,port=4800");
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options", "nokey"), -1);
	CU_ASSERT_STRING_EQUAL(usmc_config_error(),
			       "option 1 (column 1) \"nokey\": want KEY=VALUE");
	/* an empty item is refused where it stands; a trailing comma ends */
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options",
					 "mtu=1024,icrc=off,"),
		       0);
	USMC_ASSERT_EQ(
		usmc_config_apply(&c, "transport_options", "mtu=1024,,mtu=99"),
		-1);
	CU_ASSERT_STRING_EQUAL(usmc_config_error(),
			       "option 2 (column 10) \"\": want KEY=VALUE");
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options", "zap=1"), -1);
	CU_ASSERT(strstr(usmc_config_error(), "unknown key") != NULL);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options", "a=1, b=2"),
		       -1);
	/* sim and fault:softroce: the backend checks at open */
	strcpy(c.transport, "fault:softroce");
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options",
					 "drop=p=0.1,inner=softroce"),
		       0);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "transport_options", "=1"), -1);

	memset(&rs, 0, sizeof(rs));
	USMC_ASSERT_EQ(usmc_rules_parse(&rs, "smc port 7000 options mtu=512",
					"t", err, sizeof(err)),
		       0);
	CU_ASSERT_STRING_EQUAL(rs.v[0].options, "mtu=512");
	CU_ASSERT(usmc_rules_name_transport(&rs));
	memset(&rs, 0, sizeof(rs));
	USMC_ASSERT_EQ(usmc_rules_parse(&rs, "tcp port 7000 options mtu=512",
					"t", err, sizeof(err)),
		       -1);
	CU_ASSERT_STRING_EQUAL(err,
			       "t:1:15: \"options\" only goes with smc rules");
	memset(&rs, 0, sizeof(rs));
	USMC_ASSERT_EQ(usmc_rules_parse(&rs, "smc options mtu=512,x", "t", err,
					sizeof(err)),
		       -1);
	CU_ASSERT_STRING_EQUAL(err, "t:1:13: options: option 2 (column 9) "
				    "\"x\": want KEY=VALUE");
}

/* ueid: as smcr ueid add / smc_clc_ueid_valid: upper-cased, blank padded
 * to 32, A-Z 0-9 . - starting alphanumeric, at most 4, no duplicates. */
static void test_config_ueid(void)
{
	usmc_rt_config c;
	char want[32];

	memset(&c, 0, sizeof(c));
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "lab.Eid-1,X9"), 0);
	USMC_ASSERT_EQ(c.ueid_cnt, 2);
	memset(want, ' ', 32);
	memcpy(want, "LAB.EID-1", 9);
	USMC_ASSERT_MEM_EQ(c.ueid[0], want, 32);
	memset(want, ' ', 32);
	memcpy(want, "X9", 2);
	USMC_ASSERT_MEM_EQ(c.ueid[1], want, 32);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid",
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
		       0); /* 32: no padding left */
	USMC_ASSERT_MEM_EQ(c.ueid[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 32);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "A,B,C,D"), 0);
	USMC_ASSERT_EQ(c.ueid_cnt, 4);
	/* refused, and the list stays as it was */
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "A,B,C,D,E"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid",
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"),
		       -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", ".A"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "-A"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "A B"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "A_B"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "A,,B"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "A,"), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", ""), -1);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "abc,ABC"), -1);
	CU_ASSERT_STRING_EQUAL(usmc_config_error(),
			       "UEID 2 \"ABC\" given twice");
	USMC_ASSERT_EQ(usmc_config_apply(&c, "ueid", "OK,b@d"), -1);
	CU_ASSERT(strstr(usmc_config_error(), "UEID 2 (column 4) \"b@d\"") !=
		  NULL);
	USMC_ASSERT_EQ(c.ueid_cnt, 4);
	USMC_ASSERT_MEM_EQ(c.ueid[3], "D       ", 8);
}

/* pnet: "ID=IF,IF;ID=IF" as the kernel's smc_pnet table: ids upper-cased
 * and checked (smc_pnetid_valid), interface names as dev_valid_name, an
 * interface in one pnet only; a refused value leaves the table alone. */
static void test_config_pnet(void)
{
	static const struct {
		const char *v, *err;
	} bad[] = {
		{"eth0", "pnet 1 (column 1) \"eth0\": want "
			 "PNETID=IFNAME[,IFNAME...]"},
		{"A=eth0;eth1", "pnet 2 (column 8) \"eth1\": want "
				"PNETID=IFNAME[,IFNAME...]"},
		{"=eth0", "pnet 1 (column 1) \"\": a pnet id is 1-16 letters "
			  "and digits"},
		{"NET_1=eth0", "pnet 1 (column 1) \"NET_1\": a pnet id is 1-16 "
			       "letters and digits"},
		{"ABCDEFGHIJKLMNOPQ=eth0", "pnet 1 (column 1) "
					   "\"ABCDEFGHIJKLMNOPQ\": a pnet id "
					   "is 1-16 letters and digits"},
		{"A=", "pnet 1 (column 3) \"\": an interface name is 1-15 "
		       "characters, none of / : = , ; or blank"},
		{"A=eth0,", "pnet 1 (column 8) \"\": an interface name is "
			    "1-15 characters, none of / : = , ; or blank"},
		{"A=eth0,,eth1", "pnet 1 (column 8) \"\": an interface name is "
				 "1-15 characters, none of / : = , ; or blank"},
		{"A=a/b", "pnet 1 (column 3) \"a/b\": an interface name is "
			  "1-15 characters, none of / : = , ; or blank"},
		{"A=eth0 1", "pnet 1 (column 3) \"eth0 1\": an interface name "
			     "is 1-15 characters, none of / : = , ; or blank"},
		{"A=0123456789abcdef", "pnet 1 (column 3) "
				       "\"0123456789abcdef\": an interface "
				       "name is 1-15 characters, none of / : = "
				       ", ; or blank"},
		{"A=x=y",
		 "pnet 1 (column 3) \"x=y\": an interface name is 1-15 "
		 "characters, none of / : = , ; or blank"},
		{"A=..", "pnet 1 (column 3) \"..\": an interface name is 1-15 "
			 "characters, none of / : = , ; or blank"},
		{"A=eth0;B=eth0", "pnet 2 (column 10): interface eth0 given "
				  "twice (an interface is in one pnet)"},
		{"A=eth0,eth0", "pnet 1 (column 8): interface eth0 given twice "
				"(an interface is in one pnet)"},
		{"A=eth0;", "pnet 2 (column 8): empty (a ';' too many)"},
		{";A=eth0", "pnet 1 (column 1) \"\": want "
			    "PNETID=IFNAME[,IFNAME...]"},
		{"A=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q",
		 "more than 16 interfaces in pnets"},
	};
	usmc_rt_config c;

	memset(&c, 0, sizeof(c));
	USMC_ASSERT_EQ(usmc_config_apply(&c, "pnet", "net1=eth0,eth1;Z9=eth2"),
		       0);
	USMC_ASSERT_EQ(c.npnet, 3);
	CU_ASSERT_STRING_EQUAL(c.pnet[0].ifname, "eth0");
	USMC_ASSERT_MEM_EQ(c.pnet[0].pnet_id, "NET1\0\0\0\0\0\0\0\0\0\0\0\0",
			   16);
	CU_ASSERT_STRING_EQUAL(c.pnet[1].ifname, "eth1");
	USMC_ASSERT_MEM_EQ(c.pnet[1].pnet_id, "NET1", 5);
	CU_ASSERT_STRING_EQUAL(c.pnet[2].ifname, "eth2");
	USMC_ASSERT_MEM_EQ(c.pnet[2].pnet_id, "Z9", 3);
	CU_ASSERT_STRING_EQUAL(usmc_pnet_of(&c, "eth1"), "NET1");
	CU_ASSERT_PTR_NULL(usmc_pnet_of(&c, "eth3"));
	CU_ASSERT_PTR_NULL(usmc_pnet_of(&c, "eth"));
	/* 16 characters: no NUL left, usmc_pnet_of's string is not one */
	USMC_ASSERT_EQ(usmc_config_apply(
			       &c, "pnet",
			       "abcdefghijklmnop=e0;X=e1;abcdefghijklmnop=e2"),
		       0);
	USMC_ASSERT_EQ(c.npnet, 3);
	USMC_ASSERT_MEM_EQ(c.pnet[2].pnet_id, "ABCDEFGHIJKLMNOP", 16);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "pnet",
					 "A=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p"),
		       0);
	USMC_ASSERT_EQ(c.npnet, 16);
	USMC_ASSERT_EQ(usmc_config_apply(&c, "pnet", "L=eth0,eth1"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		USMC_ASSERT_EQ(usmc_config_apply(&c, "pnet", bad[i].v), -1);
		CU_ASSERT_STRING_EQUAL(usmc_config_error(), bad[i].err);
		if (strcmp(usmc_config_error(), bad[i].err))
			fprintf(stderr, "pnet \"%s\": got \"%s\"\n", bad[i].v,
				usmc_config_error());
	}
	USMC_ASSERT_EQ(c.npnet, 2);
	CU_ASSERT_STRING_EQUAL(c.pnet[1].ifname, "eth1");
	/* "" empties the table: no pnet, one link per link group */
	USMC_ASSERT_EQ(usmc_config_apply(&c, "pnet", ""), 0);
	USMC_ASSERT_EQ(c.npnet, 0);
}

/* A saved SYN (TCP_SAVED_SYN: IP header, TCP header with options): the
 * SMC option is found wherever it sits; truncated or malformed headers
 * give -1 or 0 and are never read past their length. */
static void test_syn_has_smc(void)
{
	uint8_t syn[80], six[100];
	static const uint8_t opts_usmc[] = {
		2, 4, 0x05, 0xb4, 4, 2, 8,    10, 0,	0,    0,    1,	  0, 0,
		0, 0, 1,    3,	  3, 7, 0xfe, 6,  0xe2, 0xd4, 0xc3, 0xd9, 1, 1};
	static const uint8_t opts_linux[] = {2,	   4, 0x05, 0xb4, 1,	1,
					     0xfe, 6, 0xe2, 0xd4, 0xc3, 0xd9};
	static const uint8_t opts_other[] = {
		2,    4,    0x05, 0xb4, 0xfe, 6,
		0xf9, 0x89, 0,	  0,	1,    1}; /* TFO exp */
	const struct {
		const uint8_t *o;
		size_t n;
		int want;
	} cases[] = {{opts_usmc, sizeof(opts_usmc), 1},
		     {opts_linux, sizeof(opts_linux), 1},
		     {opts_other, sizeof(opts_other), 0}};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		size_t tl = 20 + cases[k].n;

		memset(syn, 0, sizeof(syn));
		syn[0] = 0x45;
		syn[9] = 6;
		syn[20 + 12] = (uint8_t)((tl / 4) << 4);
		memcpy(syn + 40, cases[k].o, cases[k].n);
		USMC_ASSERT_EQ(usmc_hs_syn_has_smc(syn, 20 + tl),
			       cases[k].want);
		/* every truncation: an answer, never a read past the end
		 * (ASan and valgrind runs check) */
		for (size_t n = 0; n < 20 + tl; n++)
			CU_ASSERT(usmc_hs_syn_has_smc(syn, n) <= 0);
		/* IPv6 */
		memset(six, 0, sizeof(six));
		six[0] = 0x60;
		six[6] = 6;
		memcpy(six + 40, syn + 20, tl);
		USMC_ASSERT_EQ(usmc_hs_syn_has_smc(six, 40 + tl),
			       cases[k].want);
	}
	/* an option length running past the header, a zero length, another
	 * protocol, a short IHL */
	memset(syn, 0, sizeof(syn));
	syn[0] = 0x45;
	syn[9] = 6;
	syn[32] = 6 << 4;
	syn[40] = 0xfe;
	syn[41] = 9;
	USMC_ASSERT_EQ(usmc_hs_syn_has_smc(syn, 44), -1);
	syn[41] = 0;
	USMC_ASSERT_EQ(usmc_hs_syn_has_smc(syn, 44), -1);
	syn[9] = 17;
	USMC_ASSERT_EQ(usmc_hs_syn_has_smc(syn, 44), -1);
	syn[9] = 6;
	syn[0] = 0x44;
	USMC_ASSERT_EQ(usmc_hs_syn_has_smc(syn, 44), -1);
}

static CU_TestInfo tests[] = {
	{"port list parse", test_portset_parse},
	{"port list merge", test_portset_merge},
	{"port list rejects bad input", test_portset_bad},
	{"port list range limit", test_portset_limit},
	{"size suffixes", test_parse_size},
	{"settings from strings", test_config},
	{"transport_options and rule options", test_config_tp_options},
	{"ueid lists as the kernel takes them", test_config_ueid},
	{"pnet table as the kernel's smc_pnet", test_config_pnet},
	{"decline names", test_decline_names},
	{"SMC option in a saved SYN", test_syn_has_smc},
	{"shm on by default, USMC_SHM=0 and shm off", test_shm_default},
	{"log levels, log_level and log_file", test_log_level},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	usmc_test_suite suites[] = {
		{"runtime rules", tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
