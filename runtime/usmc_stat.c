/* SPDX-License-Identifier: MIT */
/*
 * Publishes the process's socket table for usmc-stat (docs/stat.md): a
 * thread of its own, off the data path, snapshots the table under the
 * runtime lock every USMC_STAT_PERIOD_MS and writes it as text to
 * DIR/usmc-stat.PID (tmp file + rename, so a reader never sees half a
 * table). The file is removed at exit; usmc-stat ignores and removes the
 * files of processes that are gone.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usmc_clc.h"
#include "usmc_rt.h"

#define USMC_STAT_PERIOD_MS 500

static pid_t stat_pid; /* the process whose thread runs (fork: restart) */
static char stat_path[256];
static char stat_dir[200];

static const char *mode_state(const usmc_sock *s)
{
	switch (s->mode) {
	case USMC_SOCK_LISTEN:
		return "LISTEN";
	case USMC_SOCK_HANDSHAKE:
		return "INIT";
	case USMC_SOCK_FAILED:
		return "CLOSED";
	default:
		return "ACTIVE";
	}
}

static void addr_str(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_in sin;
	socklen_t l = sizeof(sin);
	char a[INET_ADDRSTRLEN];
	int r = peer ? getpeername(fd, (struct sockaddr *)&sin, &l)
		     : getsockname(fd, (struct sockaddr *)&sin, &l);

	if (r || sin.sin_family != AF_INET ||
	    !inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a))) {
		snprintf(buf, len, "*:*");
		return;
	}
	snprintf(buf, len, "%s:%u", a, ntohs(sin.sin_port));
}

/* One line per socket, tab-separated (docs/stat.md). Lock held. */
static void put_sock(FILE *f, usmc_sock *s)
{
	char la[48], pa[48], detail[sizeof(s->fb_detail)];
	const char *state = mode_state(s), *mode;
	unsigned lgr = 0, link = 0, ver = s->smc_version;
	unsigned rp[2] = {0, 0}, rc[2] = {0, 0}, tp[2] = {0, 0}, tc[2] = {0, 0};

	addr_str(s->fd, 0, la, sizeof(la));
	if (s->mode == USMC_SOCK_LISTEN)
		snprintf(pa, sizeof(pa), "*:*");
	else
		addr_str(s->fd, 1, pa, sizeof(pa));
#ifdef USMC_HAVE_CORE
	if (s->conn) {
		usmc_conn_info ci;

		usmc_conn_get_info(s->conn, &ci);
		state = usmc_conn_state_name(ci.state);
		lgr = ci.lgr_id;
		link = ci.link_id;
		if (ci.smc_version)
			ver = (unsigned)ci.smc_version;
		rp[0] = ci.rx_prod.wrap, rp[1] = ci.rx_prod.count;
		rc[0] = ci.rx_cons.wrap, rc[1] = ci.rx_cons.count;
		tp[0] = ci.tx_prod.wrap, tp[1] = ci.tx_prod.count;
		tc[0] = ci.tx_cons.wrap, tc[1] = ci.tx_cons.count;
	}
#endif
	mode = s->mode == USMC_SOCK_SMCR	? "SMCR"
	       : s->mode == USMC_SOCK_TCP	? "TCP"
	       : s->mode == USMC_SOCK_LISTEN	? "LISTEN"
	       : s->mode == USMC_SOCK_HANDSHAKE ? "HANDSHAKE"
						: "FAILED";
	/* the detail is free text: no tabs or newlines in a field */
	snprintf(detail, sizeof(detail), "%s", s->fb_detail);
	for (char *p = detail; *p; p++)
		if (*p == '\t' || *p == '\n')
			*p = ' ';
	fprintf(f,
		"%d\t%s\t%s\t%s\t%s\t%s\t0x%08x\t%s\t%s\t%u\t%u\t%u\t%llu\t"
		"%llu\t%u:%u\t%u:%u\t%u:%u\t%u:%u\t%s\n",
		s->fd, s->is_server ? "server" : "client", state, mode, la, pa,
		s->fb_code, s->fb_code ? usmc_decline_name(s->fb_code) : "-",
		s->fb_code ? usmc_clc_decl_str(s->fb_code) : "-", lgr, link,
		ver,
		(unsigned long long)__atomic_load_n(&s->bytes_sent,
						    __ATOMIC_RELAXED),
		(unsigned long long)__atomic_load_n(&s->bytes_recv,
						    __ATOMIC_RELAXED),
		rp[0], rp[1], rc[0], rc[1], tp[0], tp[1], tc[0], tc[1],
		detail[0] ? detail : "-");
}

static void publish(void)
{
	char tmp[sizeof(stat_path) + 8], ns[64] = "";
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len), *f;
	ssize_t n;

	if (!m)
		return;
	n = readlink("/proc/self/ns/net", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	fprintf(m, "usmc-stat 1\tpid %d\tcomm %s\tnetns %s\n", (int)getpid(),
		program_invocation_short_name, ns[0] ? ns : "-");
	pthread_mutex_lock(&usmc_g.lock);
	for (int fd = 0; fd < usmc_g.nsocks; fd++) {
		usmc_sock *s = usmc_g.socks[fd];

		/* a dup'ed socket once, at its own fd */
		if (s && s->fd == fd && !s->dead && !s->fresh)
			put_sock(m, s);
	}
	pthread_mutex_unlock(&usmc_g.lock);
	if (fclose(m)) {
		free(buf);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", stat_path);
	f = fopen(tmp, "we");
	if (f) {
		int bad = fwrite(buf, 1, len, f) != len;

		if (fclose(f) || bad || rename(tmp, stat_path))
			unlink(tmp);
	}
	free(buf);
}

static void *stat_thread(void *arg)
{
	struct timespec ts = {0, USMC_STAT_PERIOD_MS * 1000000L};

	(void)arg;
	usmc_in_runtime = 1; /* its writes are the runtime's own */
	for (;;) {
		if (stat_pid != getpid())
			return NULL; /* forked: the child runs its own */
		publish();
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void stat_unlink(void)
{
	if (stat_pid == getpid() && stat_path[0])
		unlink(stat_path);
}

void usmc_stat_start(void)
{
	static int atexit_done;
	const char *d;
	pthread_attr_t a;
	pthread_t t;
	sigset_t all, old;

	if (stat_pid == getpid())
		return;
	stat_pid = getpid();
	d = getenv("USMC_STAT_DIR");
	if (!d)
		d = "/dev/shm";
	if (!*d || strlen(d) >= sizeof(stat_dir))
		return; /* off */
	snprintf(stat_dir, sizeof(stat_dir), "%s", d);
	snprintf(stat_path, sizeof(stat_path), "%s/usmc-stat.%d", stat_dir,
		 (int)stat_pid);
	if (!atexit_done) {
		atexit_done = 1;
		atexit(stat_unlink);
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, stat_thread, NULL))
		usmc_rt_log(1, "usmc-stat publisher not started");
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
