/* SPDX-License-Identifier: MIT */
/*
 * usmc-check: does a live server speak SMC on its port? As smc_chk -C:
 * one connection with SMC tried (the port is an SMC port for it), the
 * handshake's outcome, and a close with no data sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_json.h"
#include "usmc_tool.h"

static void usage(void)
{
	printf("NAME\n"
	       "    usmc-check - tell whether a live server speaks SMC-R, "
	       "SMC-D or TCP\n"
	       "\n"
	       "SYNOPSIS\n"
	       "    usmc-check [--json] [--timeout SECONDS] HOST:PORT\n"
	       "\n"
	       "DESCRIPTION\n"
	       "    Like smc_chk -C: opens one connection to HOST:PORT with "
	       "SMC tried\n"
	       "    (PORT is an SMC port for it, whatever the rules say), "
	       "waits for the\n"
	       "    SMC handshake to end, prints its outcome on one line and "
	       "closes\n"
	       "    the connection without sending data (the server sees a "
	       "connection\n"
	       "    that ends with no data):\n"
	       "\n"
	       "        SMC-R v2 over softroce (lgr 256, link 1, device "
	       "0:softroce@10.77.0.2)\n"
	       "        SMC-D (shm) (lgr 256)\n"
	       "        TCP, because PEERNOSMC (0x03010000): peer's SYN-ACK "
	       "had no SMC option\n"
	       "\n"
	       "    A peer that declined gives its own reason in the "
	       "detail.\n"
	       "    The transport and devices are the runtime's "
	       "(USMC_TRANSPORT,\n"
	       "    USMC_DEVICES, docs/runtime.md); USMC_SHM=1 allows "
	       "SMC-D with a\n"
	       "    server on this host.\n"
	       "\n"
	       "    A plain TCP server is told apart by the SMC TCP option "
	       "(eBPF; under\n"
	       "    ip netns exec it needs USMC_CGROUP=private). Without "
	       "it (explicit\n"
	       "    mode) such a server receives the CLC Proposal as data "
	       "and the\n"
	       "    check ends in a timeout (exit 3 or 1).\n"
	       "\n"
	       "OPTIONS\n"
	       "    --json             one JSON object: result (SMCR, SMCD, "
	       "TCP,\n"
	       "                       FAILED), smc_version, transport, "
	       "lgr_id, link_id,\n"
	       "                       device, fallback_name, fallback_code, "
	       "detail\n"
	       "    -t, --timeout SECONDS\n"
	       "                       how long to wait for the connection "
	       "and\n"
	       "                       handshake (default 10)\n"
	       "    -h, --help         this text\n"
	       "    --version          the version, and exit\n"
	       "\n"
	       "EXAMPLES\n"
	       "    usmc-check 10.77.0.1:7501\n"
	       "    usmc-check --json [fd00::1]:80\n"
	       "\n"
	       "EXIT STATUS\n"
	       "    0 SMC-R or SMC-D; 1 TCP (fallback) or a failed "
	       "handshake; 2 usage\n"
	       "    error; 3 the connection could not be made (refused, "
	       "unreachable,\n"
	       "    timed out).\n");
}

static void json_str(const char *s)
{
	usmc_json_fputs(stdout, s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "HOST:PORT" or "[HOST]:PORT" into |host| and |port|; -1 if neither. */
static int split_target(char *s, char **host, char **port)
{
	char *c;

	if (*s == '[') {
		c = strchr(s, ']');
		if (!c || c[1] != ':')
			return -1;
		*c = '\0';
		*host = s + 1;
		*port = c + 2;
	} else {
		c = strrchr(s, ':');
		if (!c || strchr(s, ':') != c)
			return -1;
		*c = '\0';
		*host = s;
		*port = c + 1;
	}
	return **host ? 0 : -1;
}

static int cannot(const char *target, const char *why, int json)
{
	if (json) {
		printf("{\"result\": null, \"target\": ");
		json_str(target);
		printf(", \"error\": ");
		json_str(why);
		printf("}\n");
	} else {
		printf("cannot connect to %s: %s\n", target, why);
	}
	return 3;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"json", no_argument, NULL, 'j'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	uint64_t timeout = 10, port_n;
	char target[300], hp[300], *host, *port, dev[64] = "-";
	usmc_sock_info in;
	double deadline;
	int o, json = 0, fd, rc, err = 0;
	socklen_t elen = sizeof(err);
	struct pollfd p;

	argv[0] = (char *)"usmc-check";
	while ((o = getopt_long(argc, argv, "ht:", lo, NULL)) != -1) {
		switch (o) {
		case 'j':
			json = 1;
			break;
		case 't':
			if (usmc_tool_number(optarg, 0, 1, 3600, &timeout))
				usmc_tool_usage_error(
					"usmc-check",
					"invalid timeout '%s' (seconds, 1 to "
					"3600)",
					optarg);
			break;
		case 'h':
			usage();
			return 0;
		case 'V':
			usmc_tool_version("usmc-check");
			return 0;
		default:
			usmc_tool_try("usmc-check");
		}
	}
	if (optind == argc)
		usmc_tool_usage_error("usmc-check", "no HOST:PORT given");
	if (optind + 1 != argc)
		usmc_tool_usage_error("usmc-check", "unexpected argument '%s'",
				      argv[optind + 1]);
	snprintf(hp, sizeof(hp), "%s", argv[optind]);
	if (split_target(hp, &host, &port) ||
	    usmc_tool_number(port, 0, 1, 65535, &port_n))
		usmc_tool_usage_error("usmc-check",
				      "'%s' is not HOST:PORT (a port 1 to "
				      "65535; [ADDR]:PORT for IPv6)",
				      argv[optind]);
	snprintf(target, sizeof(target), "%s", argv[optind]);
	/* this connection tries SMC whatever the rules say of the port */
	if (usmc_config_set("smc_ports", port)) {
		fprintf(stderr, "usmc-check: the runtime refuses port %s\n",
			port);
		return 3;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc)
		return cannot(target, gai_strerror(rc), json);
	fd = usmc_socket(ai->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || usmc_set_nonblock(fd, 1)) {
		freeaddrinfo(ai);
		return cannot(target, strerror(errno), json);
	}
	deadline = now_s() + (double)timeout;
	rc = usmc_connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc && errno != EINPROGRESS)
		return cannot(target, strerror(errno), json);
	/* the TCP connect, then the CLC handshake: both bounded */
	for (;;) {
		double left = deadline - now_s();

		if (left <= 0) {
			usmc_close(fd);
			return cannot(target, "timed out", json);
		}
		p.fd = fd;
		p.events = POLLOUT;
		p.revents = 0;
		rc = usmc_poll(&p, 1, left > 0.05 ? 50 : 1);
		if (rc < 0 && errno != EINTR)
			return cannot(target, strerror(errno), json);
		if (rc > 0 && (p.revents & (POLLERR | POLLHUP))) {
			if (usmc_getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
					    &elen) ||
			    err) {
				usmc_close(fd);
				return cannot(target,
					      strerror(err ? err : ECONNRESET),
					      json);
			}
		}
		if (usmc_get_info(fd, &in))
			return cannot(target, strerror(errno), json);
		if (in.mode != USMC_SOCK_HANDSHAKE && rc > 0)
			break;
		if (rc > 0)
			usmc_poll(NULL, 0, 5); /* writable, CLC still running */
	}
	if (in.mode == USMC_SOCK_SMCR && !in.smcd && in.device >= 0)
		snprintf(dev, sizeof(dev), "%d:%s@%s", in.device, in.transport,
			 in.device_addr);
	usmc_close(fd);
	if (json) {
		const char *r = in.mode == USMC_SOCK_SMCR
					? in.smcd ? "SMCD" : "SMCR"
				: in.mode == USMC_SOCK_TCP ? "TCP"
							   : "FAILED";
		char code[16];

		snprintf(code, sizeof(code), "0x%08x", in.fallback_code);
		printf("{\"result\": \"%s\", \"target\": ", r);
		json_str(target);
		printf(", \"smc_version\": %d, \"transport\": ",
		       in.mode == USMC_SOCK_SMCR ? in.smc_version : 0);
		json_str(in.transport);
		printf(", \"lgr_id\": %u, \"link_id\": %u, \"device\": ",
		       in.lgr_id, in.link_id);
		json_str(dev);
		printf(", \"fallback_name\": ");
		json_str(in.fallback_code ? in.fallback_name : "-");
		printf(", \"fallback_code\": \"%s\", \"detail\": ", code);
		json_str(in.fallback_detail[0] ? in.fallback_detail
					       : in.fallback_desc);
		printf("}\n");
	} else if (in.mode == USMC_SOCK_SMCR && in.smcd) {
		printf("SMC-D (%s) (lgr %u)\n", in.transport, in.lgr_id);
	} else if (in.mode == USMC_SOCK_SMCR) {
		printf("SMC-R v%d over %s (lgr %u, link %u, device %s)\n",
		       in.smc_version, in.transport, in.lgr_id, in.link_id,
		       dev);
	} else {
		printf("%s, because %s (0x%08x): %s\n",
		       in.mode == USMC_SOCK_TCP ? "TCP" : "failed",
		       in.fallback_name, in.fallback_code,
		       in.fallback_detail[0] ? in.fallback_detail
					     : in.fallback_desc);
	}
	return in.mode == USMC_SOCK_SMCR ? 0 : 1;
}
