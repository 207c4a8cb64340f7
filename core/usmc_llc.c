/* SPDX-License-Identifier: MIT */
/* LLC codec; see usmc_llc.h. */
#include "usmc_llc.h"

#include <string.h>

void usmc_llc_msg_init(usmc_llc_msg *msg, uint8_t type, uint8_t version,
		       uint8_t flags)
{
	memset(msg, 0, sizeof(*msg));
	msg->hdr.type = type;
	msg->hdr.version = version;
	msg->hdr.flags = flags;
}

usmc_ssize usmc_llc_decode(usmc_llc_msg *msg, const uint8_t *buf, size_t len)
{
	(void)msg;
	(void)buf;
	(void)len;
	return USMC_ERR_NOTSUP;
}

usmc_ssize usmc_llc_encode(uint8_t *buf, size_t cap, const usmc_llc_msg *msg)
{
	(void)buf;
	(void)cap;
	(void)msg;
	return USMC_ERR_NOTSUP;
}

uint8_t usmc_llc_wire_type(uint8_t type, uint8_t version)
{
	return version == 2 ? (uint8_t)(type | 0x20) : type;
}

const char *usmc_llc_type_name(uint8_t wire_type)
{
	(void)wire_type;
	return "UNKNOWN";
}

const char *usmc_llc_del_reason_name(uint32_t reason)
{
	(void)reason;
	return "UNKNOWN";
}

int usmc_rx_msg_classify(const uint8_t *buf, size_t len)
{
	(void)buf;
	(void)len;
	return USMC_ERR_NOTSUP;
}
