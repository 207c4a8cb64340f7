/* SPDX-License-Identifier: MIT */
/*
 * CLC decoder: any input either fails with a negative code or decodes;
 * a decoded message re-encodes to a message that decodes to the same
 * contents and re-encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_clc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out1[USMC_CLC_MAX_LEN], out2[USMC_CLC_MAX_LEN];
	usmc_clc_msg m1, m2;
	usmc_clc_hdr h;
	usmc_ssize n, n1, n2;

	n = usmc_clc_decode(data, size, &m1);
	if (n < 0) {
		if (n < USMC_ERR_CLOSED || n > USMC_ERR_INVALID_ARGUMENT)
			abort(); /* only the named wire errors */
		return 0;
	}
	if ((size_t)n > size || usmc_clc_hdr_peek(data, size, &h) ||
	    h.length != (size_t)n)
		abort();
	n1 = usmc_clc_encode(&m1, out1, sizeof(out1));
	if (n1 != n)
		abort();
	n2 = usmc_clc_decode(out1, (size_t)n1, &m2);
	if (n2 != n1)
		abort();
	/* Same contents (decode zeroes the whole struct first, so padding
	 * compares equal too), then the same bytes again. */
	if (memcmp(&m1, &m2, sizeof(m1)))
		abort();
	if (usmc_clc_encode(&m2, out2, sizeof(out2)) != n1 ||
	    memcmp(out1, out2, (size_t)n1))
		abort();
	/* Outside reserved bytes the input is reproduced: check the
	 * header and trailer here. */
	if (memcmp(out1, data, SMC_CLC_HDR_LEN) ||
	    memcmp(out1 + n - SMC_CLC_TRL_LEN, data + n - SMC_CLC_TRL_LEN,
		   SMC_CLC_TRL_LEN))
		abort();
	return 0;
}
