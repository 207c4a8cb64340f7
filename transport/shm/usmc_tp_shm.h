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
	/* spins armed on the signal areas (usmc_tp_shm_spin_arm: the
	 * runtime's waits, its epoll_wait's) */
	uint64_t spin_arms;
	/* owner: DMBs given to a new context (usmc_tp_shm_dmb_reuse) */
	uint64_t reused;
	/* attacher: attaches served by a peer DMB mapped here already (no
	 * ATTACH, no mmap), and such maps no attachment uses now (kept
	 * until the owner unregisters the DMB) */
	uint64_t reattached;
	uint64_t parked;
} usmc_tp_shm_stats;

/* |tp|'s counters: 0, or USMC_ERR_INVALID_ARGUMENT if it is no shm
 * device. */
int usmc_tp_shm_get_stats(usmc_tp *tp, usmc_tp_shm_stats *st);

/*
 * Registers the device's fork handlers (once; opening a device does it
 * too). proc_lock is taken inside usmc_g.lock (docs/threads.md), and fork
 * prepare handlers run in the reverse order of their registration, so a
 * runtime registers these before its own: its prepare handler then takes
 * usmc_g.lock first, as every other path does.
 */
void usmc_tp_shm_atfork_init(void);

/* The path of |tp|'s endpoint socket (its directory is the one the host
 * GID is derived from), or NULL if it is no shm device. */
const char *usmc_tp_shm_endpoint(usmc_tp *tp);

/* The owner's DMB |dmb| goes to a new user, |context|, a connection with
 * the device |peer_gid| (the core keeps a DMB for its link group's next
 * connection): the signals not yet returned for it are dropped, the later
 * ones carry |context|. The attacher keeps its mapping meanwhile
 * (detach_dmb parks it) and attaches the token again without a message.
 * 0; USMC_ERR_ACCESS if the process that holds the mapping is not the one
 * behind |peer_gid|'s endpoint (or we have no connection to it to tell);
 * USMC_ERR_CONNRESET if the attacher let go of it (nobody can attach it
 * again); in both cases unregister it. USMC_ERR_INVALID_ARGUMENT if not
 * shm's. */
int usmc_tp_shm_dmb_reuse(usmc_tp_dmb *dmb, void *context,
			  const uint8_t peer_gid[16]);

/*
 * Spinning on the signal areas without the caller's lock (the runtime's
 * wait, docs/runtime.md "shm"): |arm|, with the lock that serialises the
 * device's calls held, marks the owner awake in every signal area of |tp|
 * (so a peer's move_data rings no doorbell) and pins the areas (none is
 * unmapped until |done|). |seen| and |sleep| need no lock: |seen| says
 * whether a signal waits; |sleep| marks the owner asleep again and then
 * looks once more (either it sees a signal set meanwhile, or the peer saw
 * the owner asleep and rang the doorbell). |done| (lock held) unpins.
 * |take| (lock held) returns the signals waiting, as poll_cq does, but
 * without serving the endpoint or spinning: the device's fd stays
 * readable for whatever else came.
 */
#define USMC_TP_SHM_SPIN_AREAS 8

typedef struct usmc_tp_shm_spin {
	void *area[USMC_TP_SHM_SPIN_AREAS];
	int n;
	int awake;
} usmc_tp_shm_spin;

/* Areas armed (1..8), 0 if |tp| has no area or more than 8 (then no
 * spin), USMC_ERR_INVALID_ARGUMENT if it is no shm device. */
int usmc_tp_shm_spin_arm(usmc_tp *tp, usmc_tp_shm_spin *sp);
int usmc_tp_shm_spin_seen(const usmc_tp_shm_spin *sp);
int usmc_tp_shm_spin_sleep(usmc_tp_shm_spin *sp);
void usmc_tp_shm_spin_done(usmc_tp_shm_spin *sp);

/* Between two looks of a spin on signal areas (the device's poll_cq and
 * the runtime's waits): the CPU's spin-wait hint, which frees the core's
 * sibling thread and eases the exit from the loop. */
static inline void usmc_tp_shm_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}
int usmc_tp_shm_take(usmc_tp *tp, usmc_wc *wcs, int n);

#endif
