/* SPDX-License-Identifier: MIT */
/*
 * What the shm backend's control connections carry (README.md, "Control
 * messages"): one 40-byte message per SOCK_SEQPACKET record, host byte
 * order (both ends are on one host), fds by SCM_RIGHTS.
 */
#ifndef USMC_SHM_INT_H
#define USMC_SHM_INT_H

#include <stddef.h>
#include <stdint.h>

#define USMC_SHM_MAGIC	 0x55534d48u /* "USMH" */
#define USMC_SHM_VERSION 1
#define USMC_SHM_MSG_LEN 40

enum usmc_shm_msg_type {
	USMC_SHM_ATTACH = 1, /* attacher -> owner: token, attacher's host gid */
	USMC_SHM_GRANT = 2,  /* owner -> attacher: status, slot, len; fds */
	USMC_SHM_DETACH = 3, /* attacher -> owner: slot, token; answers UNREG */
	USMC_SHM_UNREG = 4,  /* owner -> attacher: slot, token */
};

/* GRANT status */
#define USMC_SHM_OK	 0
#define USMC_SHM_REFUSED 1 /* no live, unattached DMB with that token */
#define USMC_SHM_NOSLOT	 2 /* the connection has no free signal slot */

/* GRANT fds: the DMB's memfd, then on a connection's first grant its
 * signal area's memfd and the owner's doorbell eventfd. */
#define USMC_SHM_FDS_DMB   1
#define USMC_SHM_FDS_FIRST 3

typedef struct usmc_shm_msg {
	uint8_t type;
	uint8_t status;
	uint8_t nfds;
	uint32_t slot;
	uint64_t token;
	uint64_t len;
	uint64_t gid;
} usmc_shm_msg;

/* Encodes |m| into |buf| (USMC_SHM_MSG_LEN bytes). */
void usmc_shm_msg_encode(const usmc_shm_msg *m, uint8_t *buf);

/* Decodes and checks one record: 0, or USMC_ERR_BAD_LENGTH (not 40
 * bytes), _BAD_EYECATCHER, _BAD_VERSION, _BAD_TYPE, _RESERVED_SET,
 * _BAD_VALUE (a field the type does not allow). |m| is written only on
 * success. */
int usmc_shm_msg_decode(const uint8_t *buf, size_t len, usmc_shm_msg *m);

#endif
