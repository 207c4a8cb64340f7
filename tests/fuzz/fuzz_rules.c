/* SPDX-License-Identifier: MIT */
/*
 * The rules file every usmc process reads at start (docs/rules.md): the
 * input is a usmc.conf, loaded through the runtime's own loader
 * (usmc_config_load_env with USMC_CONF naming it, so the size and NUL
 * checks, "set" lines and rules all run), and the same bytes as
 * USMC_RULES text through usmc_rules_parse. Whatever is accepted is then
 * matched against queries made from the input. A file is untrusted input
 * inside every process: any outcome but a crash or a bad verdict is fine.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "usmc_rt.h"
#include "usmc_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_eval(const usmc_rules *rs, const uint8_t *d, size_t n)
{
	static const char *const progs[] = {"redis-cli", "nginx", NULL};
	usmc_rule_net a = {.family = 4, .len = 32};
	usmc_rule_net b = {.family = 4, .len = 32};
	char why[512];

	for (size_t i = 0; i < 8; i++) {
		usmc_rule_query q = {0};
		int idx = -2, v;

		/* addresses and a port from the input's bytes */
		for (int k = 0; k < 4; k++) {
			a.addr[k] = n ? d[(i * 8 + (size_t)k) % n] : 0;
			b.addr[k] = n ? d[(i * 8 + 4 + (size_t)k) % n] : 0;
		}
		q.program = progs[i % 3];
		q.local = i & 1 ? &a : NULL;
		q.remote = i & 2 ? &b : NULL;
		q.port = (uint16_t)(n ? d[i % n] << 8 | d[(i + 1) % n] : 0);
		q.dflt_smc = i & 4; /* with and without the SMC TCP option */
		v = usmc_rules_eval(rs, &q, &idx, NULL);
		if (v != USMC_RULE_SMC && v != USMC_RULE_TCP &&
		    v != USMC_RULE_MAYBE)
			abort();
		if (idx < -1 || idx >= rs->n)
			abort();
		usmc_rules_why(rs, &q, v, idx, why, sizeof(why));
		if (!memchr(why, '\0', sizeof(why)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static char path[64];
	static int fd = -1;
	usmc_rt_config *cfg;
	usmc_rules *rs;
	char err[256], *text;

	if (fd < 0) {
		fd = memfd_create("usmc.conf", MFD_CLOEXEC);
		if (fd < 0)
			return 0;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		setenv("USMC_CONF", path, 1);
		unsetenv("USMC_RULES");
		unsetenv("USMC_SMC_PORTS");
	}
	if (ftruncate(fd, 0) || (n && pwrite(fd, d, n, 0) != (ssize_t)n))
		return 0;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 0;
	usmc_config_load_env(cfg);
	if (cfg->rules.n < 0 || cfg->rules.n > USMC_RULES_MAX)
		abort();
	if (cfg->rules.error &&
	    !memchr(cfg->rules.err, '\0', sizeof(cfg->rules.err)))
		abort();
	check_eval(&cfg->rules, d, n);
	free(cfg);

	/* the same bytes as USMC_RULES (a string: up to the first NUL) */
	text = malloc(n + 1);
	rs = calloc(1, sizeof(*rs));
	if (text && rs) {
		memcpy(text, d, n);
		text[n] = '\0';
		if (usmc_rules_parse(rs, text, "USMC_RULES", err,
				     sizeof(err)) == 0)
			check_eval(rs, d, n);
		else if (rs->n != 0) /* nothing kept from refused text */
			abort();
	}
	free(text);
	free(rs);
	return 0;
}
