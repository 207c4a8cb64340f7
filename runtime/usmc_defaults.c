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

#define USMC_CONF_DEFAULT "/etc/usmc.conf"
#define USMC_CONF_MAX	  (64 * 1024)

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
		if (usmc_rules_set_ports(&cfg->rules, cfg->rules_ports_at,
					 &ps)) {
			usmc_rt_log(0, "smc_ports: too many rules");
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

/*
 * "set KEY VALUE" lines of the config file: settings for programs that
 * get no environment from usmc (the namespace switch's ld.so.preload).
 * A variable that is set wins over the file. Each such line is blanked so
 * the rules parser skips it with line numbers intact. -1 on a bad one.
 */
static int file_settings(usmc_rt_config *cfg, char *buf, const char *path,
			 char *err, size_t errlen)
{
	static const char *const keys[] = {"synopt", "cgroup", "debug",
					   "clc_wait_ms"};
	char key[32], val[256], env[48], rest[2];
	int line = 0;

	for (char *l = buf; l && *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t len = strcspn(l, "\n");
		char one[512], *hash;
		size_t k;
		int n;

		line++;
		if (len >= sizeof(one))
			continue; /* no setting is that long: the rules parser's */
		memcpy(one, l, len);
		one[len] = '\0';
		hash = strchr(one, '#');
		if (hash)
			*hash = '\0';
		if (sscanf(one, " set%1[ \t]", rest) != 1)
			continue;
		n = sscanf(one, " set %31s %255s %1s", key, val, rest);
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (n >= 2 && !strcmp(key, keys[k]))
				break;
		if (n != 2 || k == sizeof(keys) / sizeof(keys[0])) {
			snprintf(err, errlen,
				 "%s:%d: want \"set KEY VALUE\", KEY one of "
				 "synopt, cgroup, debug, clc_wait_ms",
				 path, line);
			return -1;
		}
		snprintf(env, sizeof(env), "USMC_%s", key);
		for (char *c = env + 5; *c; c++)
			*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
		if (!(getenv(env) && *getenv(env)) &&
		    usmc_config_apply(cfg, key, val)) {
			snprintf(err, errlen,
				 "%s:%d: bad value \"%.64s\" for %s", path,
				 line, val, key);
			return -1;
		}
		memset(l, ' ', len);
	}
	return 0;
}

/* The config file's rules: USMC_CONF names it ("" = none), else
 * /etc/usmc.conf if it exists. -1 with |err| on any error. */
static int rules_load_file(usmc_rt_config *cfg, char *err, size_t errlen)
{
	usmc_rules *rs = &cfg->rules;
	const char *path = getenv("USMC_CONF");
	int must = path != NULL;
	char *buf;
	size_t have = 0;
	FILE *f;
	int r;

	if (!path)
		path = USMC_CONF_DEFAULT;
	if (!*path)
		return 0;
	f = fopen(path, "re");
	if (!f) {
		if (!must && errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf = malloc(USMC_CONF_MAX + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	have = fread(buf, 1, USMC_CONF_MAX + 1, f);
	r = ferror(f);
	fclose(f);
	if (r || have > USMC_CONF_MAX) {
		snprintf(err, errlen, "%s: %s", path,
			 r ? "read error" : "larger than 64 KiB");
		free(buf);
		return -1;
	}
	buf[have] = '\0';
	if (memchr(buf, '\0', have)) {
		snprintf(err, errlen, "%s: not a text file", path);
		free(buf);
		return -1;
	}
	r = file_settings(cfg, buf, path, err, errlen);
	if (!r)
		r = usmc_rules_parse(rs, buf, path, err, errlen);
	free(buf);
	return r;
}

/* Printed once per process tree: a forked child reloads the same rules. */
static int rules_err_logged;

void usmc_config_load_env(usmc_rt_config *cfg)
{
	char err[sizeof(cfg->rules.err)] = "";
	int bad;

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->transport, "softroce");
	cfg->softroce_port = 4791;
	cfg->clc_wait_ms = 2000;
	cfg->synopt = 1;
	/* precedence: USMC_RULES, USMC_SMC_PORTS, the file (first match) */
	bad = usmc_rules_parse(&cfg->rules, getenv("USMC_RULES"), "USMC_RULES",
			       err, sizeof(err));
	cfg->rules_ports_at = cfg->rules.n;
	env_apply(cfg, "USMC_TRANSPORT", "transport");
	env_apply(cfg, "USMC_SOFTROCE_PORT", "softroce_port");
	env_apply(cfg, "USMC_SMC_PORTS", "smc_ports");
	if (!bad)
		bad = rules_load_file(cfg, err, sizeof(err));
	if (bad) {
		/* Never accelerate on rules we could not read as written. */
		cfg->rules.error = 1;
		snprintf(cfg->rules.err, sizeof(cfg->rules.err), "%s", err);
		if (!rules_err_logged++)
			usmc_rt_log(0,
				    "rules refused, every connection TCP: %s",
				    err);
	}
	env_apply(cfg, "USMC_CLC_WAIT_MS", "clc_wait_ms");
	env_apply(cfg, "USMC_DEBUG", "debug");
	env_apply(cfg, "USMC_SYNOPT", "synopt");
	env_apply(cfg, "USMC_CGROUP", "cgroup");
}
