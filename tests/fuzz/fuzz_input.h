/* SPDX-License-Identifier: MIT */
/*
 * The fuzz input read as a program (fuzz_core_peer, fuzz_core_smcd): its
 * bytes taken in order, 0 once it is spent, so every input runs to its end.
 */
#ifndef USMC_FUZZ_INPUT_H
#define USMC_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

static const uint8_t *in;
static size_t left;

static inline void fuzz_input_set(const uint8_t *data, size_t size)
{
	in = data;
	left = size;
}

static inline uint8_t take(void)
{
	if (!left)
		return 0;
	left--;
	return *in++;
}

static inline uint16_t take16(void)
{
	return (uint16_t)(take() << 8 | take());
}

#endif
