/* SPDX-License-Identifier: MIT */
/*
 * The table of libc functions the runtime calls (usmc_real.h), and the
 * count of calls the preload's guard had to turn back to libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_real.h"

struct usmc_real_calls usmc_real_tab;
int usmc_real_ready;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

/* NAME's next definition after this object; without one (a program
 * linked statically), the one this object links to. */
#define REAL(name)                                                       \
	do {                                                             \
		void *p_ = dlsym(RTLD_NEXT, #name);                      \
		usmc_real_tab.name =                                     \
			p_ ? (__typeof__(usmc_real_tab.name))p_ : &name; \
	} while (0)

static void real_fill(void)
{
	REAL(accept4);
	REAL(bind);
	REAL(close);
	REAL(close_range);
	REAL(connect);
	REAL(dup);
	REAL(dup2);
	REAL(dup3);
	REAL(epoll_ctl);
	REAL(epoll_pwait);
	REAL(epoll_wait);
	REAL(fcntl);
	REAL(getpeername);
	REAL(getsockname);
	REAL(getsockopt);
	REAL(ioctl);
	REAL(listen);
	REAL(poll);
	REAL(ppoll);
	REAL(read);
	REAL(readv);
	REAL(recv);
	REAL(recvmsg);
	REAL(send);
	REAL(sendfile);
	REAL(sendmsg);
	REAL(setsockopt);
	REAL(shutdown);
	REAL(sigaction);
	REAL(socket);
	REAL(write);
	REAL(writev);
	__atomic_store_n(&usmc_real_ready, 1, __ATOMIC_RELEASE);
}

void usmc_real_load(void)
{
	pthread_once(&real_once, real_fill);
}

/* Calls from inside usmc that reached the preload's interposers and were
 * turned back to libc by usmc_in_runtime. The runtime calls libc through
 * usmc_real(), so this stays 0; USMC_STATS reports it at exit. */
static uint64_t reentries;

void usmc_reentry_note(void)
{
	__atomic_fetch_add(&reentries, 1, __ATOMIC_RELAXED);
}

uint64_t usmc_reentry_count(void)
{
	return __atomic_load_n(&reentries, __ATOMIC_RELAXED);
}
