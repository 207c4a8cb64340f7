/* SPDX-License-Identifier: MIT */
/*
 * Fault schedule parser fuzz target: any input parses or is refused with
 * "position N: expected ..." where N points into the input (or one past
 * its end), leaving the output untouched; a parsed schedule holds at most
 * USMC_FAULT_MAX_CLAUSES valid clauses, and the engine runs over it without
 * fault.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_err.h"
#include "usmc_fault_sched.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static usmc_fault_sched s, canary;
	char text[1024], err[200];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	unsigned long pos;
	int rc, up;

	memcpy(text, data, n);
	text[n] = 0;
	memset(&s, 0x5c, sizeof(s));
	memcpy(&canary, &s, sizeof(s));
	rc = usmc_fault_sched_parse(text, 7, &s, err, sizeof(err));
	if (rc) {
		if (rc != USMC_ERR_INVALID_ARGUMENT)
			abort();
		if (memcmp(&s, &canary, sizeof(s)))
			abort(); /* half a schedule was kept */
		if (sscanf(err, "position %lu: expected ", &pos) != 1 ||
		    !strstr(err, ": expected ") || pos < 1 ||
		    pos > strlen(text) + 1)
			abort();
		return 0;
	}
	if (s.n > USMC_FAULT_MAX_CLAUSES)
		abort();
	for (uint32_t i = 0; i < s.n; i++) {
		const usmc_fault_clause *c = &s.c[i];

		if (c->kind < USMC_FAULT_DROP ||
		    c->kind > USMC_FAULT_REWRITE_LLC || c->rate_ppm > 1000000 ||
		    !c->op_mask || c->t0 != 7 || (c->nth && !c->count))
			abort();
		/* rewrite-llc always changes something; no other kind has
		 * its fields */
		if (c->kind == USMC_FAULT_REWRITE_LLC
			    ? !(c->set_mask | c->clear_mask) ||
				      c->llc_dir > USMC_FAULT_DIR_RESP
			    : c->set_mask || c->clear_mask || c->llc_type)
			abort();
	}
	for (uint64_t t = 0; t < 64; t++) {
		usmc_fault_sched_on(&s, USMC_FAULT_ON_PKT, 0, 0, t * 1000);
		usmc_fault_sched_on(&s, USMC_FAULT_ON_POST, (int)(t % 4),
				    (uint32_t)t, t * 1000);
		usmc_fault_sched_on(&s, USMC_FAULT_ON_REG_MR, -1, 0, t * 1000);
		usmc_fault_sched_on(&s, USMC_FAULT_ON_MODIFY_QP, -1,
				    (uint32_t)t, t * 1000);
		usmc_fault_sched_on_llc(&s, (uint8_t)(t * 5), (uint8_t)(t * 37),
					(uint32_t)t, t * 1000);
		while (usmc_fault_sched_timed(&s, t * 1000000000ull, &up) >= 0)
			;
	}
	(void)usmc_fault_sched_next(&s);
	return 0;
}
