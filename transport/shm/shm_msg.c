/* SPDX-License-Identifier: MIT */
/* The control messages' codec (shm_int.h): what an endpoint parses from a
 * peer, checked field by field before anything acts on it. */
#include <string.h>

#include "shm_int.h"
#include "usmc_err.h"

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

void usmc_shm_msg_encode(const usmc_shm_msg *m, uint8_t *buf)
{
	memset(buf, 0, USMC_SHM_MSG_LEN);
	put32(buf, USMC_SHM_MAGIC);
	buf[4] = USMC_SHM_VERSION;
	buf[5] = m->type;
	buf[6] = m->status;
	buf[7] = m->nfds;
	put32(buf + 8, m->slot);
	put64(buf + 16, m->token);
	put64(buf + 24, m->len);
	put64(buf + 32, m->gid);
}

int usmc_shm_msg_decode(const uint8_t *buf, size_t len, usmc_shm_msg *out)
{
	usmc_shm_msg m;

	if (len != USMC_SHM_MSG_LEN)
		return USMC_ERR_BAD_LENGTH;
	if (get32(buf) != USMC_SHM_MAGIC)
		return USMC_ERR_BAD_EYECATCHER;
	if (buf[4] != USMC_SHM_VERSION)
		return USMC_ERR_BAD_VERSION;
	if (get32(buf + 12))
		return USMC_ERR_RESERVED_SET;
	m.type = buf[5];
	m.status = buf[6];
	m.nfds = buf[7];
	m.slot = get32(buf + 8);
	m.token = get64(buf + 16);
	m.len = get64(buf + 24);
	m.gid = get64(buf + 32);
	switch (m.type) {
	case USMC_SHM_ATTACH:
		if (m.status || m.nfds || m.slot || m.len || !m.token)
			return USMC_ERR_BAD_VALUE;
		break;
	case USMC_SHM_GRANT:
		if (m.status == USMC_SHM_OK ? (m.nfds != USMC_SHM_FDS_DMB &&
					       m.nfds != USMC_SHM_FDS_FIRST) ||
						      !m.len
					    : (m.status != USMC_SHM_REFUSED &&
					       m.status != USMC_SHM_NOSLOT) ||
						      m.nfds || m.len)
			return USMC_ERR_BAD_VALUE;
		break;
	case USMC_SHM_DETACH:
	case USMC_SHM_UNREG:
		if (m.status || m.nfds || m.len || !m.token)
			return USMC_ERR_BAD_VALUE;
		break;
	default:
		return USMC_ERR_BAD_TYPE;
	}
	*out = m;
	return 0;
}
