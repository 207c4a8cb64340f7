/* SPDX-License-Identifier: MIT */
/*
 * The runtime's view of the outside world: clock, randomness, logging and
 * configuration from the environment.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "usmc_rt.h"

uint64_t usmc_rt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USMC_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

void usmc_rt_rand(uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No entropy syscall: still never hand out zeros. */
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)(usmc_rt_now() >> (i % 8));
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static int log_enabled = -1;

void usmc_rt_log(int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (log_enabled < 0) {
		const char *d = getenv("USMC_DEBUG");

		log_enabled = d && *d && strcmp(d, "0") != 0;
	}
	/* level 0 = error: always; others only with USMC_DEBUG. */
	if (level > 0 && !log_enabled && !usmc_g.cfg.debug)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "usmc[%d]: %s\n", (int)getpid(), line);
}

int usmc_config_apply(usmc_rt_config *cfg, const char *key, const char *value)
{
	char err[128];
	char *end;
	long v;

	if (!key || !value)
		return -1;
	if (!strcmp(key, "transport")) {
		if (!*value || strlen(value) >= sizeof(cfg->transport))
			return -1;
		strcpy(cfg->transport, value);
		return 0;
	}
	if (!strcmp(key, "smc_ports")) {
		usmc_portset ps;

		if (usmc_portset_parse(&ps, value, err, sizeof(err))) {
			usmc_rt_log(0, "smc_ports \"%s\": %s", value, err);
			return -1;
		}
		cfg->smc_ports = ps;
		cfg->smc_ports_set = 1;
		return 0;
	}
	if (!strcmp(key, "synopt")) {
		if (!strcmp(value, "off") || !strcmp(value, "0"))
			cfg->synopt = 0;
		else if (!strcmp(value, "auto") || !strcmp(value, "1"))
			cfg->synopt = 1;
		else
			return -1;
		return 0;
	}
	if (!strcmp(key, "cgroup")) {
		if (strlen(value) >= sizeof(cfg->cgroup))
			return -1;
		strcpy(cfg->cgroup, value);
		return 0;
	}
	if (!strcmp(key, "softroce_port") || !strcmp(key, "clc_wait_ms") ||
	    !strcmp(key, "debug")) {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end)
			return -1;
		if (!strcmp(key, "softroce_port")) {
			if (v < 1 || v > 65535)
				return -1;
			cfg->softroce_port = (uint16_t)v;
		} else if (!strcmp(key, "clc_wait_ms")) {
			if (v < 1 || v > 600000)
				return -1;
			cfg->clc_wait_ms = (int)v;
		} else {
			cfg->debug = v != 0;
		}
		return 0;
	}
	return -1;
}

static void env_apply(usmc_rt_config *cfg, const char *env, const char *key)
{
	const char *v = getenv(env);

	if (v && *v && usmc_config_apply(cfg, key, v))
		usmc_rt_log(0, "ignoring %s=\"%s\": not a valid value", env, v);
}

void usmc_config_load_env(usmc_rt_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->transport, "softroce");
	cfg->softroce_port = 4791;
	cfg->clc_wait_ms = 2000;
	cfg->synopt = 1;
	env_apply(cfg, "USMC_TRANSPORT", "transport");
	env_apply(cfg, "USMC_SOFTROCE_PORT", "softroce_port");
	env_apply(cfg, "USMC_SMC_PORTS", "smc_ports");
	env_apply(cfg, "USMC_CLC_WAIT_MS", "clc_wait_ms");
	env_apply(cfg, "USMC_DEBUG", "debug");
	env_apply(cfg, "USMC_SYNOPT", "synopt");
	env_apply(cfg, "USMC_CGROUP", "cgroup");
}
