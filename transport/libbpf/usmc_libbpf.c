/* SPDX-License-Identifier: MIT */
/* libbpf through dlopen (usmc_libbpf.h says why). */
#define _GNU_SOURCE
#define USMC_LIBBPF_IMPL
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "usmc_libbpf.h"

/* RTLD_LOCAL: its symbols stay out of the program's scope. Not
 * RTLD_DEEPBIND: libbpf's free() would then be glibc's while the glibc
 * functions it calls (strdup, getline...) allocate with the program's
 * malloc (jemalloc in redis): "munmap_chunk(): invalid pointer". */
#define USMC_DL_FLAGS (RTLD_NOW | RTLD_LOCAL)

usmc_libbpf_fns usmc_libbpf;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_err[200];

static void load(void)
{
	void *h = dlopen("libbpf.so.1", USMC_DL_FLAGS);
	const char *e;

	if (!h) {
		e = dlerror();
		snprintf(load_err, sizeof(load_err), "%s",
			 e ? e : "libbpf.so.1: cannot load");
		return;
	}
#define USMC_LIBBPF_SYM(n)                                     \
	if (!load_err[0]) {                                    \
		*(void **)&usmc_libbpf.n = dlsym(h, #n);       \
		if (!usmc_libbpf.n)                            \
			snprintf(load_err, sizeof(load_err),   \
				 "libbpf.so.1 has no %s", #n); \
	}
	USMC_LIBBPF_FNS(USMC_LIBBPF_SYM)
#undef USMC_LIBBPF_SYM
	/* kept open for good: the programs' links and maps use it */
}

int usmc_libbpf_load(char *why, size_t whylen)
{
	pthread_once(&once, load);
	if (!load_err[0])
		return 0;
	if (why && whylen)
		snprintf(why, whylen, "%s", load_err);
	return -1;
}
