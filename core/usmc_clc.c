/* SPDX-License-Identifier: MIT */
/* CLC codec: stub until the implementation lands. */
#include "usmc_clc.h"

int usmc_clc_hdr_peek(const uint8_t *buf, size_t len, usmc_clc_hdr *hdr)
{
	(void)buf;
	(void)len;
	(void)hdr;
	return USMC_ERR_NOTSUP;
}

usmc_ssize usmc_clc_decode(const uint8_t *buf, size_t len, usmc_clc_msg *msg)
{
	(void)buf;
	(void)len;
	(void)msg;
	return USMC_ERR_NOTSUP;
}

usmc_ssize usmc_clc_encode(const usmc_clc_msg *msg, uint8_t *out, size_t cap)
{
	(void)msg;
	(void)out;
	(void)cap;
	return USMC_ERR_NOTSUP;
}

usmc_ssize usmc_clc_encoded_len(const usmc_clc_msg *msg)
{
	(void)msg;
	return USMC_ERR_NOTSUP;
}

uint8_t usmc_clc_compress_bufsize(uint64_t size, uint8_t max_comp)
{
	(void)size;
	(void)max_comp;
	return 0;
}

uint32_t usmc_clc_uncompress_bufsize(uint8_t comp)
{
	return 1u << ((comp & 0x0f) + 14);
}

const char *usmc_clc_decl_name(uint32_t code)
{
	(void)code;
	return "UNKNOWN";
}

const char *usmc_clc_decl_str(uint32_t code)
{
	(void)code;
	return "unknown decline code";
}

uint32_t usmc_clc_srv_classify(const usmc_clc_msg *prop,
			       const usmc_clc_srv_caps *caps,
			       usmc_clc_srv_choice *out)
{
	(void)prop;
	(void)caps;
	(void)out;
	return SMC_CLC_DECL_INTERR;
}

bool usmc_clc_prefix_match(const usmc_clc_proposal *prop,
			   const usmc_clc_local_prefix *local, size_t n)
{
	(void)prop;
	(void)local;
	(void)n;
	return false;
}
