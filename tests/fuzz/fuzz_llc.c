/* SPDX-License-Identifier: MIT */
/*
 * LLC decoder fuzz target: any input either fails with one of the decoder's
 * named errors or decodes; a decoded message re-encodes to the same length,
 * and decoding that encoding gives the same message (compared by encoding
 * it again). The encoding differs from the input only where the input had
 * reserved bytes set, so a second round must be exact.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_llc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static usmc_llc_msg m, m2;
	static uint8_t out[SMC_LLC_MAX_LEN_V2], out2[SMC_LLC_MAX_LEN_V2];
	usmc_ssize n, e, e2;
	int cls;

	n = usmc_llc_decode(&m, data, size);
	cls = usmc_rx_msg_classify(data, size);
	if (n < 0) {
		switch (n) {
		case USMC_ERR_TRUNCATED:
		case USMC_ERR_BAD_TYPE:
		case USMC_ERR_BAD_LENGTH:
		case USMC_ERR_BAD_COUNT:
		case USMC_ERR_BAD_VALUE:
			return 0;
		default:
			abort();
		}
	}
	if (n < SMC_LLC_MSG_LEN || (size_t)n > size || n > SMC_LLC_MAX_LEN_V2 ||
	    n != m.hdr.length)
		abort();
	if (cls !=
	    (m.hdr.version == 1 ? USMC_RX_MSG_LLC_V1 : USMC_RX_MSG_LLC_V2))
		abort();
	if (data[0] != usmc_llc_wire_type(m.hdr.type, m.hdr.version))
		abort();
	/* every decoded message has a name */
	if (!strcmp(usmc_llc_type_name(data[0]), "UNKNOWN"))
		abort();

	e = usmc_llc_encode(out, sizeof(out), &m);
	if (e != n)
		abort();
	/* type, length and flags bytes are never reserved */
	if (out[0] != data[0] || out[1] != data[1] || out[3] != data[3])
		abort();
	if (m.hdr.version == 2 && out[2] != data[2])
		abort();
	/* too small a buffer is refused, not overrun */
	if (usmc_llc_encode(out2, (size_t)e - 1, &m) != USMC_ERR_NOBUF)
		abort();

	if (usmc_llc_decode(&m2, out, (size_t)e) != e)
		abort();
	e2 = usmc_llc_encode(out2, sizeof(out2), &m2);
	if (e2 != e || memcmp(out, out2, (size_t)e))
		abort();
	return 0;
}
