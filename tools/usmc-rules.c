/* SPDX-License-Identifier: MIT */
/*
 * usmc-rules: loads the rules exactly as a usmc process would (USMC_RULES,
 * USMC_SMC_PORTS, USMC_CONF or /etc/usmc.conf) and lists them, or says
 * which one decides a given connection. usmc-run --explain runs it. The
 * matcher is the runtime's (usmc_rules_eval); nothing is reimplemented.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usmc_rt.h"
#include "usmc_synopt.h"
#include "usmc_tool.h"

static const char usage_text[] =
	"NAME\n"
	"    usmc-rules - list usmc's connection rules, or say which one\n"
	"    decides a connection\n"
	"\n"
	"SYNOPSIS\n"
	"    usmc-rules [--program NAME] --connect ADDR:PORT [--local ADDR]\n"
	"    usmc-rules [--program NAME] --listen ADDR:PORT [--peer ADDR]\n"
	"    usmc-rules --list\n"
	"    usmc-rules --check-setting KEY VALUE\n"
	"\n"
	"DESCRIPTION\n"
	"    Loads the rules exactly as a usmc process would (USMC_RULES,\n"
	"    USMC_SMC_PORTS, then the file USMC_CONF names, else\n"
	"    /etc/usmc.conf), with the runtime's own matcher, and either "
	"lists\n"
	"    them in the order they are tried or says which rule decides a\n"
	"    connection, why, and over which transport. usmc-run --explain\n"
	"    runs it. The first rule that matches wins; with none, a\n"
	"    connection tries SMC where the SMC TCP option loads and is plain\n"
	"    TCP otherwise.\n"
	"\n"
	"OPTIONS\n"
	"    --connect ADDR:PORT  a client connecting to ADDR:PORT (IPv4,\n"
	"                         [IPv6]:PORT or IPv6:PORT)\n"
	"    --listen ADDR:PORT   a server listening on ADDR:PORT (0.0.0.0\n"
	"                         for the wildcard): the answer may be \"per\n"
	"                         connection\" when it depends on the peer\n"
	"    --local ADDR         the client's local address (default: the\n"
	"                         source address the kernel's route gives)\n"
	"    --peer ADDR          the peer of an accepted connection\n"
	"    --program NAME       the program's name (default: none, which\n"
	"                         matches no program rule)\n"
	"    --list               list the rules, then the default\n"
	"    --check-setting KEY VALUE\n"
	"                         check one setting as the runtime would take\n"
	"                         it from USMC_KEY or a \"set KEY VALUE\" "
	"line\n"
	"    -h, --help           this text\n"
	"    --version            the version, and exit\n"
	"\n"
	"ENVIRONMENT\n"
	"    USMC_RULES, USMC_SMC_PORTS, USMC_CONF, USMC_TRANSPORT: as for\n"
	"    every usmc process (docs/rules.md).\n"
	"\n"
	"FILES\n"
	"    /etc/usmc.conf  the rules and settings of every usmc process,\n"
	"                    unless USMC_CONF names another file or is empty\n"
	"\n"
	"EXIT STATUS\n"
	"    0 done; 1 the rules (or the setting) are refused, and why is on\n"
	"    stderr; 2 usage error.\n"
	"\n"
	"EXAMPLES\n"
	"    usmc-rules --list\n"
	"    usmc-rules --program redis-cli --connect 10.77.0.1:6379\n"
	"    USMC_CONF=./my.conf usmc-rules --listen 0.0.0.0:6379 --peer "
	"10.77.0.2\n"
	"\n"
	"SEE ALSO\n"
	"    usmc-run(1), usmc-stat(1); docs/rules.md\n";

/* "A.B.C.D:PORT", "[v6]:PORT" or "v6:PORT" (the last colon). */
static int parse_ep(const char *s, usmc_rule_net *n, uint16_t *port)
{
	char buf[80];
	const char *c = strrchr(s, ':');
	char *end;
	long p;
	size_t l;

	if (!c || c == s || strlen(s) >= sizeof(buf))
		return -1;
	l = (size_t)(c - s);
	if (s[0] == '[' && l >= 2 && s[l - 1] == ']') {
		memcpy(buf, s + 1, l - 2);
		buf[l - 2] = '\0';
	} else {
		memcpy(buf, s, l);
		buf[l] = '\0';
	}
	errno = 0;
	p = strtol(c + 1, &end, 10);
	if (errno || *end || end == c + 1 || p < 1 || p > 65535)
		return -1;
	if (usmc_rule_net_parse(n, buf) ||
	    n->len != (n->family == 4 ? 32 : 128))
		return -1;
	*port = (uint16_t)p;
	return 0;
}

/* The source address the kernel would pick towards |to| (IPv4). */
static int route_src(const usmc_rule_net *to, uint16_t port, usmc_rule_net *out)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(port)};
	socklen_t l = sizeof(sin);
	int u, r;

	if (to->family != 4)
		return -1;
	memcpy(&sin.sin_addr, to->addr, 4);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		return -1;
	r = connect(u, (struct sockaddr *)&sin, sizeof(sin)) ||
	    getsockname(u, (struct sockaddr *)&sin, &l);
	close(u);
	return r ? -1 : usmc_rule_net_from_sa(out, &sin);
}

static const char *net_str(const usmc_rule_net *n, char *buf, size_t len)
{
	if (!inet_ntop(n->family == 4 ? AF_INET : AF_INET6, n->addr, buf,
		       (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

static void list_rules(const usmc_rules *rs)
{
	if (rs->error)
		printf("rules refused: %s\nevery connection: tcp\n", rs->err);
	for (int i = 0; i < rs->n; i++) {
		const usmc_rule *r = &rs->v[i];

		if (r->line)
			printf("%d\t%s:%d\t%s\n", i + 1, r->src, r->line,
			       r->text);
		else
			printf("%d\t%s\t%s\n", i + 1, r->src, r->text);
	}
	if (!rs->error && !usmc_rules_has_smc(rs))
		printf("-\tdefault\tsmc where the SMC TCP option loads, "
		       "else tcp\n");
	else
		printf("-\tdefault\ttcp\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"program", required_argument, NULL, 'n'},
		{"connect", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"local", required_argument, NULL, 'o'},
		{"peer", required_argument, NULL, 'r'},
		{"list", no_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *prog = NULL, *ep = NULL, *other = NULL;
	usmc_rule_net a, b, *local = NULL, *remote = NULL;
	usmc_rule_query q;
	usmc_rt_config *cfg;
	char why[512], s1[64], s2[64];
	int listen_mode = 0, list = 0, o, v, idx;
	uint16_t port;

	/* usmc-run's check of the settings it was given: a setting's value
	 * as the runtime would take it (the transport from USMC_TRANSPORT) */
	if (argc == 4 && !strcmp(argv[1], "--check-setting")) {
		cfg = calloc(1, sizeof(*cfg));
		if (!cfg)
			return 2;
		strcpy(cfg->transport, "softroce");
		if (getenv("USMC_TRANSPORT") && *getenv("USMC_TRANSPORT"))
			usmc_config_apply(cfg, "transport",
					  getenv("USMC_TRANSPORT"));
		v = usmc_config_apply(cfg, argv[2], argv[3]);
		if (v)
			fprintf(stderr, "%s \"%s\": %s\n", argv[2], argv[3],
				*usmc_config_error() ? usmc_config_error()
						     : "not a valid value");
		free(cfg);
		return v ? 1 : 0;
	}

	argv[0] = (char *)"usmc-rules"; /* getopt's messages name the tool */
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'n':
			prog = optarg;
			break;
		case 'c':
		case 'l':
			if (ep)
				usmc_tool_usage_error("usmc-rules",
						      "one of --connect or "
						      "--listen");
			ep = optarg;
			listen_mode = o == 'l';
			break;
		case 'o':
		case 'r':
			other = optarg;
			break;
		case 'L':
			list = 1;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			usmc_tool_version("usmc-rules");
			return 0;
		default:
			usmc_tool_try("usmc-rules");
		}
	}
	if (optind != argc)
		usmc_tool_usage_error("usmc-rules", "unexpected argument '%s'",
				      argv[optind]);
	if (!ep && !list)
		usmc_tool_usage_error("usmc-rules",
				      "give --connect, --listen or --list");
	/* large: on the heap */
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 1;
	usmc_config_load_env(cfg);
	if (list) {
		list_rules(&cfg->rules);
		v = cfg->rules.error;
		free(cfg);
		return v ? 1 : 0;
	}
	if (parse_ep(ep, &a, &port)) {
		fprintf(stderr,
			"usmc-rules: bad address \"%s\" (want "
			"A.B.C.D:PORT or [V6]:PORT)\n",
			ep);
		free(cfg);
		return 2;
	}
	if (other && usmc_rule_net_parse(&b, other)) {
		fprintf(stderr, "usmc-rules: bad address \"%s\"\n", other);
		free(cfg);
		return 2;
	}
	if (!prog)
		prog = "";
	if (listen_mode) {
		/* a wildcard listener's local address is per connection */
		static const uint8_t zero[16];

		if (memcmp(a.addr, zero, 16))
			local = &a;
		if (other)
			remote = &b;
	} else {
		remote = &a;
		if (other)
			local = &b;
		else if (usmc_rules_use_local(&cfg->rules) &&
			 !route_src(&a, port, &b))
			local = &b;
	}
	q.program = prog;
	q.local = local;
	q.remote = remote;
	q.port = port;
	/* The default depends on whether the SMC TCP option loads here, as
	 * the runtime decides it: so try, as the program would. */
	if (!cfg->rules.error && !usmc_rules_has_smc(&cfg->rules)) {
		usmc_synopt *so = NULL;
		char err[256] = "";

		if (cfg->synopt &&
		    (cfg->cgroup[0]
			     ? usmc_synopt_init_cgroup(&so, cfg->cgroup, err,
						       sizeof(err))
			     : usmc_synopt_init(&so, err, sizeof(err))) == 0) {
			q.dflt_smc = 1;
			printf("SMC TCP option: loads here (cgroup %s)\n",
			       usmc_synopt_cgroup(so));
			usmc_synopt_del(so);
		} else {
			printf("SMC TCP option: explicit mode here: %s\n",
			       cfg->synopt ? err : "USMC_SYNOPT=off");
		}
	}
	v = usmc_rules_eval(&cfg->rules, &q, &idx, NULL);
	usmc_rules_why(&cfg->rules, &q, v, idx, why, sizeof(why));
	printf("%s %s program \"%s\" local %s remote %s port %u\n",
	       listen_mode ? "listen" : "connect", ep, prog,
	       local ? net_str(local, s1, sizeof(s1)) : "(any)",
	       remote ? net_str(remote, s2, sizeof(s2)) : "(any)", port);
	if (v == USMC_RULE_MAYBE)
		printf("decision: per connection (smc or tcp by the peer's "
		       "address)\n");
	else
		printf("decision: %s\n", v == USMC_RULE_SMC ? "smc" : "tcp");
	printf("why: %s\n", why);
	/* the device's transport: the deciding smc rule's, else the
	 * configured one (usmc_smc.c's conn_transport) */
	if (v == USMC_RULE_SMC)
		printf("transport: %s\n",
		       idx >= 0 && cfg->rules.v[idx].transport[0]
			       ? cfg->rules.v[idx].transport
			       : cfg->transport);
	v = cfg->rules.error;
	free(cfg);
	return v ? 1 : 0;
}
