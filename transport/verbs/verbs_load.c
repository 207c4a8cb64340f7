/* SPDX-License-Identifier: MIT */
/*
 * The registry's "verbs": a stub whose open loads the backend from
 * libusmc-verbs.so (RTLD_LOCAL) the first time, so that libibverbs and
 * the libnl it pulls in enter a process only when it opens a verbs
 * device, never every program under the preload (transport/verbs/
 * README.md, "Loading"). The devices it opens carry the module's own ops
 * table; only open goes through here.
 *
 * The module is, in this order: $USMC_VERBS_MODULE (that file only); the
 * one next to the object holding this code (the preload library, in
 * lib/usmc/ as in build/preload/); then, for a program of the build
 * tree, the build tree's, else the installed one. It stays loaded to the
 * end of the process: no dlclose, as devices may outlive any caller.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "usmc_tp_verbs.h"
#include "verbs_module.h"

static pthread_mutex_t vl_lock = PTHREAD_MUTEX_INITIALIZER;
static const usmc_verbs_module *vl_mod;
static char vl_err[512];

static int vl_open(const usmc_tp_config *cfg, usmc_tp **ptp);

/* Paths make it long: cut, not refused. */
__attribute__((format(printf, 1, 2))) static void vl_seterr(const char *fmt,
							    ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vl_err, sizeof(vl_err), fmt, ap);
	va_end(ap);
}

const usmc_tp_ops usmc_tp_verbs_ops = {
	.name = "verbs",
	.open = vl_open,
};

/* The object this code is linked into, symlinks resolved. */
static int self_path(char *out)
{
	char tmp[PATH_MAX];
	Dl_info di;
	ssize_t n;

	if (dladdr((const void *)&usmc_tp_verbs_ops, &di) && di.dli_fname &&
	    di.dli_fname[0] == '/')
		return realpath(di.dli_fname, out) ? 0 : -1;
	/* the main program: dladdr may give argv[0] */
	n = readlink("/proc/self/exe", tmp, sizeof(tmp) - 1);
	if (n <= 0)
		return -1;
	tmp[n] = 0;
	return realpath(tmp, out) ? 0 : -1;
}

static int under_dir(const char *path, const char *dir)
{
	char d[PATH_MAX];
	size_t n;

	if (!realpath(dir, d))
		return 0;
	n = strlen(d);
	return !strncmp(path, d, n) && path[n] == '/';
}

/* Appends |dir|/|file| (or |dir| alone) to |cand|; a path too long for
 * PATH_MAX is left out. */
static void cand_add(char cand[3][PATH_MAX], int *n, const char *dir,
		     const char *file)
{
	size_t ld = strlen(dir), lf = file ? strlen(file) + 1 : 0;

	if (ld + lf >= PATH_MAX)
		return;
	memcpy(cand[*n], dir, ld);
	if (file) {
		cand[*n][ld] = '/';
		memcpy(cand[*n] + ld + 1, file, lf - 1);
	}
	cand[*n][ld + lf] = 0;
	(*n)++;
}

/* Fills |cand| with the files to try; returns how many. */
static int candidates(char cand[3][PATH_MAX])
{
	const char *env = getenv("USMC_VERBS_MODULE");
	char self[PATH_MAX], *slash;
	int n = 0;

	if (env && *env) {
		cand_add(cand, &n, env, NULL);
		return n;
	}
	if (!self_path(self) && (slash = strrchr(self, '/'))) {
		*slash = 0;
		cand_add(cand, &n, self, USMC_VERBS_MODULE_SO);
		*slash = '/';
	} else {
		self[0] = 0;
	}
#ifdef USMC_VERBS_BUILD_MODULE
	if (self[0] && under_dir(self, USMC_VERBS_BUILD_DIR)) {
		cand_add(cand, &n, USMC_VERBS_BUILD_MODULE, NULL);
		return n;
	}
#endif
#ifdef USMC_VERBS_INSTALL_MODULE
	cand_add(cand, &n, USMC_VERBS_INSTALL_MODULE, NULL);
#endif
	return n;
}

/* Loads the module once; NULL and vl_err if it cannot be. Under vl_lock. */
static const usmc_verbs_module *vl_load(void)
{
	char cand[3][PATH_MAX];
	const usmc_verbs_module *m;
	const char *path = NULL;
	const char *env = getenv("USMC_VERBS_MODULE");
	int n, from_env = env && *env;
	void *h;

	if (vl_mod)
		return vl_mod;
	n = candidates(cand);
	/* the environment's file is tried even if absent: dlopen says why */
	for (int i = 0; i < n && !path; i++)
		if (from_env || !access(cand[i], R_OK))
			path = cand[i];
	if (!path) {
		vl_seterr("%s not found (looked at %s%s%s); USMC_VERBS_MODULE "
			  "names it",
			  USMC_VERBS_MODULE_SO, n > 0 ? cand[0] : "",
			  n > 1 ? ", " : "", n > 1 ? cand[1] : "");
		return NULL;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		/* dlerror names what is missing first (a connection's
		 * fallback detail keeps 127 bytes): the module itself, or
		 * what it needs (libibverbs.so.1) */
		const char *e = dlerror();

		if (!strncmp(e, path, strlen(path)))
			vl_seterr("cannot load %s", e);
		else
			vl_seterr("%s (loading %s)", e, path);
		return NULL;
	}
	m = dlsym(h, USMC_VERBS_MODULE_SYM);
	if (!m || m->abi != USMC_VERBS_MODULE_ABI ||
	    m->ops_size != sizeof(usmc_tp_ops) ||
	    m->config_size != sizeof(usmc_tp_config) ||
	    m->wr_size != sizeof(usmc_wr) || m->qp_size != sizeof(usmc_tp_qp) ||
	    !m->ops || !m->ops->open) {
		vl_seterr("%s is not a usmc verbs module of this build (%s)",
			  path,
			  m ? "another ABI" : "no " USMC_VERBS_MODULE_SYM);
		dlclose(h);
		return NULL;
	}
	vl_err[0] = 0;
	vl_mod = m;
	return m;
}

static const usmc_verbs_module *vl_get(void)
{
	const usmc_verbs_module *m;

	pthread_mutex_lock(&vl_lock);
	m = vl_load();
	pthread_mutex_unlock(&vl_lock);
	return m;
}

const char *usmc_tp_verbs_load_error(void)
{
	return vl_err;
}

static int vl_open(const usmc_tp_config *cfg, usmc_tp **ptp)
{
	const usmc_verbs_module *m = vl_get();

	/* the caller says why: usmc_tp_verbs_load_error */
	if (!m) {
		*ptp = NULL;
		return USMC_ERR_NOTSUP;
	}
	return m->ops->open(cfg, ptp);
}

int usmc_tp_verbs_device_count(void)
{
	const usmc_verbs_module *m = vl_get();

	return m ? m->device_count() : USMC_ERR_NOTSUP;
}

int usmc_tp_verbs_hw_counter(usmc_tp *tp, const char *name, uint64_t *v)
{
	/* a verbs device exists only once the module is loaded */
	const usmc_verbs_module *m = vl_get();

	return m ? m->hw_counter(tp, name, v) : USMC_ERR_INVALID_ARGUMENT;
}
