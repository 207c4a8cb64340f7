/* SPDX-License-Identifier: MIT */
/*
 * The libc functions the runtime calls for its own purposes, looked up
 * once with dlsym(RTLD_NEXT): the definitions after the object that holds
 * the runtime. Under the preload that is libc (or the sanitizer's
 * interceptors), never the preload's own interposers, so the runtime
 * does not climb back into the preload and its re-entry guard
 * (usmc_in_runtime) is only a safety net. Linked into a program directly,
 * it is libc too. As rsocket's preload keeps `struct socket_calls real`.
 * Not installed.
 */
#ifndef USMC_REAL_H
#define USMC_REAL_H

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct usmc_real_calls {
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*close)(int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_pwait)(int, struct epoll_event *, int, int,
			   const sigset_t *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*fcntl)(int, int, ...);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*ioctl)(int, unsigned long, ...);
	int (*listen)(int, int);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *,
		     const sigset_t *);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*shutdown)(int, int);
	int (*sigaction)(int, const struct sigaction *, struct sigaction *);
	int (*socket)(int, int, int);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	int (*close_range)(unsigned int, unsigned int, int);
};

extern struct usmc_real_calls usmc_real_tab;
extern int usmc_real_ready;
void usmc_real_load(void);

/* The table, filled on first use (any thread, any time: no constructor
 * does work in a preloaded library). */
static inline const struct usmc_real_calls *usmc_real(void)
{
	if (__builtin_expect(
		    !__atomic_load_n(&usmc_real_ready, __ATOMIC_ACQUIRE), 0))
		usmc_real_load();
	return &usmc_real_tab;
}

/* usmc_reentry_note's count (usmc.h). */
uint64_t usmc_reentry_count(void);

#endif /* USMC_REAL_H */
