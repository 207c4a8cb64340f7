/* SPDX-License-Identifier: MIT */
/*
 * CDC decoder fuzz target: decode, and on success re-encode, decode again
 * and compare; also exercise the cursor arithmetic on the decoded cursors
 * with RMBE sizes taken from the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_cdc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const usmc_cdc_msg *a, const usmc_cdc_msg *b)
{
	return a->seqno == b->seqno && a->token == b->token &&
	       a->prod.wrap == b->prod.wrap && a->prod.count == b->prod.count &&
	       a->cons.wrap == b->cons.wrap && a->cons.count == b->cons.count &&
	       a->prod_flags == b->prod_flags &&
	       a->conn_state_flags == b->conn_state_flags;
}

static void check_cursors(const usmc_cdc_msg *m, uint32_t size)
{
	usmc_curs c = m->prod, local = m->cons;
	int32_t d, dl, cmp;

	if (usmc_cdc_curs_valid(&m->prod, size) ||
	    usmc_cdc_curs_valid(&m->cons, size))
		return;
	d = usmc_curs_diff(size, &m->cons, &m->prod);
	dl = usmc_curs_diff_large(size, &m->cons, &m->prod);
	cmp = usmc_curs_comp(size, &m->cons, &m->prod);
	/* valid counts bound every difference */
	if (d < 0 || (uint32_t)d >= 2 * (uint64_t)size || dl < 0 ||
	    (uint32_t)dl > size || cmp <= -(int64_t)2 * size ||
	    cmp >= (int64_t)2 * size)
		abort();
	/* adding the difference within one wrap lands on the target */
	if (m->prod.wrap == m->cons.wrap && m->prod.count >= m->cons.count) {
		c = m->cons;
		usmc_curs_add(&c, size, (uint32_t)d);
		if (c.wrap != m->prod.wrap || c.count != m->prod.count)
			abort();
	}
	c = m->prod;
	usmc_curs_add(&c, size, size);
	if (c.count != m->prod.count || c.wrap != (uint16_t)(m->prod.wrap + 1))
		abort();
	/* an update is applied or not, never half */
	if (usmc_curs_update(&local, &m->prod)) {
		if (local.wrap != m->prod.wrap || local.count != m->prod.count)
			abort();
	} else if (local.wrap != m->cons.wrap || local.count != m->cons.count) {
		abort();
	}
	/* serial arithmetic is antisymmetric except at distance 0x8000 */
	if (m->seqno != 0x8000 && m->seqno &&
	    usmc_cdc_seq_before(m->seqno, 0) ==
		    usmc_cdc_seq_before(0, m->seqno))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	usmc_cdc_msg m, m2;
	uint8_t out[SMC_CDC_MSG_LEN], out2[SMC_CDC_MSG_LEN];
	usmc_ssize n;

	n = usmc_cdc_decode(&m, data, size);
	if (n < 0) {
		switch (n) {
		case USMC_ERR_TRUNCATED:
		case USMC_ERR_BAD_TYPE:
		case USMC_ERR_BAD_LENGTH:
		case USMC_ERR_BAD_VALUE:
			return 0;
		default:
			abort();
		}
	}
	if (n != SMC_CDC_MSG_LEN || size < SMC_CDC_MSG_LEN)
		abort();
	if (usmc_cdc_encode(out, sizeof(out), &m) != SMC_CDC_MSG_LEN)
		abort();
	/* everything but the reserved bytes survives */
	if (memcmp(out, data, 8) || memcmp(out + 10, data + 10, 6) ||
	    memcmp(out + 18, data + 18, 8))
		abort();
	if (usmc_cdc_decode(&m2, out, sizeof(out)) != SMC_CDC_MSG_LEN ||
	    !same(&m, &m2))
		abort();
	if (usmc_cdc_encode(out2, sizeof(out2), &m2) != SMC_CDC_MSG_LEN ||
	    memcmp(out, out2, sizeof(out)))
		abort();
	/* RMBE sizes: the 16 KiB minimum, 64 KiB, and one from the input's
	 * last reserved byte (16 KiB << n, n <= 15) */
	check_cursors(&m, 16384);
	check_cursors(&m, 65536);
	check_cursors(&m, 16384u << (data[43] & 0x0f));
	return 0;
}
