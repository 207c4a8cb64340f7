/* SPDX-License-Identifier: MIT */
/*
 * The shm backend's own API beyond the ops table (README.md here): its
 * counters and where its endpoint lives.
 */
#ifndef USMC_TP_SHM_H
#define USMC_TP_SHM_H

#include <stdint.h>

#include "usmc_transport.h"

typedef struct usmc_tp_shm_stats {
	uint64_t grants;      /* attaches of our DMBs we granted */
	uint64_t refused;     /* attach requests refused (token, uid) */
	uint64_t bad_msgs;    /* malformed messages (connection closed) */
	uint64_t signals;     /* USMC_WC_DMB_SIGNAL completions returned */
	uint64_t bells;	      /* signals that rang the owner's doorbell */
	uint64_t bells_saved; /* signals that found the owner awake */
	uint64_t spin_hits;   /* spins in poll_cq that found a signal */
	uint64_t spin_misses; /* spins that timed out */
} usmc_tp_shm_stats;

/* |tp|'s counters: 0, or USMC_ERR_INVALID_ARGUMENT if it is no shm
 * device. */
int usmc_tp_shm_get_stats(usmc_tp *tp, usmc_tp_shm_stats *st);

/* The path of |tp|'s endpoint socket (its directory is the one the host
 * GID is derived from), or NULL if it is no shm device. */
const char *usmc_tp_shm_endpoint(usmc_tp *tp);

#endif
