/* SPDX-License-Identifier: MIT */
/*
 * The per-fd flags table (usmc_fdtab.c) for the preload, which is linked
 * with the runtime: usmc_fd_flags inlined, so that a call on an fd usmc
 * does not serve costs two loads and a branch, not a function call. Not
 * installed; other interposers call usmc_fd_flags (usmc.h).
 */
#ifndef USMC_FDFLAGS_H
#define USMC_FDFLAGS_H

#include <stdint.h>

/* The table covers fds below USMC_FDF_MAX; usmc manages no socket
 * beyond it. */
#define USMC_FDF_CHUNK	4096
#define USMC_FDF_MAX	(USMC_FDF_CHUNK * 1024)
#define USMC_FDF_CHUNKS (USMC_FDF_MAX / USMC_FDF_CHUNK)

/* Chunks are allocated on first use and never freed. */
extern uint8_t *usmc_fdflags_tab[USMC_FDF_CHUNKS]
	__attribute__((visibility("hidden")));

static inline int usmc_fd_flags_inline(int fd)
{
	/* a negative fd is a huge one: past the table */
	unsigned int ci = (unsigned int)fd / USMC_FDF_CHUNK;
	uint8_t *c;

	if (ci >= USMC_FDF_CHUNKS)
		return 0;
	c = __atomic_load_n(&usmc_fdflags_tab[ci], __ATOMIC_ACQUIRE);
	return c ? __atomic_load_n(&c[(unsigned int)fd % USMC_FDF_CHUNK],
				   __ATOMIC_ACQUIRE)
		 : 0;
}

#endif
