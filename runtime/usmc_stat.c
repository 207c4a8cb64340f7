/* SPDX-License-Identifier: MIT */
/*
 * Publishes the process's socket table for usmc-stat (docs/stat.md): a
 * thread of its own, off the data path, snapshots the table under the
 * runtime lock every USMC_STAT_PERIOD_MS, and 50 ms after a socket ends
 * its handshake (usmc_stat_kick), and writes it as text to
 * DIR/usmc-stat.PID (tmp file + rename, so a reader never sees half a
 * table). The directory is read once per program (a forked child keeps
 * its parent's, whatever it does to its environment). The file is removed
 * at exit, after the atexit handlers (the runtime's exit-time drain
 * included), and no table is written after that; usmc-stat ignores and
 * removes the files of processes that are gone.
 *
 * The thread is invisible to a fork() of the app's: it allocates only
 * under the runtime lock, which the fork prepare handler takes
 * (usmc_loop.c), and its start is over before usmc_stat_start returns.
 * glibc's malloc needs none of this, but an allocator without fork
 * handlers of its own (GCC 12's ASan runtime, under which the tests run
 * Debian's programs) would leave the child the lock of a size class this
 * thread held at the fork, and the child's next malloc of that size
 * would wait for ever: nginx's master forks its worker right after its
 * first socket, which starts the runtime's threads.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usmc_clc.h"
#include "usmc_real.h"
#include "usmc_rt.h"

#define USMC_STAT_PERIOD_MS 500

static pid_t stat_pid; /* the process whose thread runs (fork: restart) */
static char stat_path[PATH_MAX];
static char stat_dir[PATH_MAX - 32]; /* absolute; "": publishing off */
static int stat_dir_read;	     /* USMC_STAT_DIR was read */
/* Held across a table's write and rename, and by the exit-time unlink,
 * after which (stat_done) no table is written. */
static pthread_mutex_t pub_lock = PTHREAD_MUTEX_INITIALIZER;
static int stat_done;
/* The table is built here under the runtime lock, the only place where
 * the thread allocates (the buffer grows, never shrinks), and written
 * out with plain syscalls. */
static char *tbl;
static size_t tbl_len, tbl_cap;
static int tbl_bad; /* out of memory: this table is not written */
static sem_t stat_started;

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

static void addr_str(usmc_sock *s, int peer, char *buf, size_t len)
{
	struct sockaddr_in sin;
	char a[INET_ADDRSTRLEN];

	if (usmc_sock_addr(s, peer, &sin) ||
	    !inet_ntop(AF_INET, &sin.sin_addr, a, sizeof(a))) {
		snprintf(buf, len, "*:*");
		return;
	}
	snprintf(buf, len, "%s:%u", a, ntohs(sin.sin_port));
}

static void tbl_printf(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* Appends to the table. Lock held. */
static void tbl_printf(const char *fmt, ...)
{
	va_list ap;
	size_t cap;
	char *p;
	int n;

	while (!tbl_bad) {
		va_start(ap, fmt);
		n = vsnprintf(tbl ? tbl + tbl_len : NULL, tbl_cap - tbl_len,
			      fmt, ap);
		va_end(ap);
		if (n < 0) {
			tbl_bad = 1;
		} else if ((size_t)n < tbl_cap - tbl_len) {
			tbl_len += (size_t)n;
			return;
		} else {
			for (cap = tbl_cap ? tbl_cap : 4096;
			     cap - tbl_len <= (size_t)n; cap *= 2)
				;
			p = realloc(tbl, cap);
			if (p) {
				tbl = p;
				tbl_cap = cap;
			} else {
				tbl_bad = 1;
			}
		}
	}
}

/* One line per socket, tab-separated (docs/stat.md). Lock held. */
static void put_sock(usmc_sock *s)
{
	char la[48], pa[48], detail[sizeof(s->fb_detail)];
	char dev[64] = "-", gid[INET6_ADDRSTRLEN] = "-";
	const char *state = mode_state(s), *mode;
	unsigned lgr = 0, link = 0, ver = s->smc_version, failovers = 0;
	unsigned rp[2] = {0, 0}, rc[2] = {0, 0}, tp[2] = {0, 0}, tc[2] = {0, 0};
	uint64_t sent, recv;

	usmc_sock_bytes(s, &sent, &recv);
	addr_str(s, 0, la, sizeof(la));
	if (s->mode == USMC_SOCK_LISTEN)
		snprintf(pa, sizeof(pa), "*:*");
	else
		addr_str(s, 1, pa, sizeof(pa));
	if (s->conn) {
		usmc_conn_info ci;

		usmc_conn_get_info(s->conn, &ci);
		state = usmc_conn_state_name(ci.state);
		lgr = ci.lgr_id;
		link = ci.link_id;
		failovers = ci.failovers;
		if (ci.smc_version)
			ver = (unsigned)ci.smc_version;
		rp[0] = ci.rx_prod.wrap, rp[1] = ci.rx_prod.count;
		rc[0] = ci.rx_cons.wrap, rc[1] = ci.rx_cons.count;
		tp[0] = ci.tx_prod.wrap, tp[1] = ci.tx_prod.count;
		tc[0] = ci.tx_cons.wrap, tc[1] = ci.tx_cons.count;
	}
	{
		char tpn[32], da[16];
		uint8_t g[16];
		int idx;

		/* the local device: "INDEX:TRANSPORT@ADDRESS" and its GID */
		if (usmc_smc_dev_info(s, &idx, tpn, sizeof(tpn), da, g) == 0) {
			snprintf(dev, sizeof(dev), "%d:%s@%s", idx, tpn, da);
			inet_ntop(AF_INET6, g, gid, sizeof(gid));
		}
	}
	mode = s->mode == USMC_SOCK_SMCR && s->conn &&
			       usmc_conn_get_mode(s->conn) == USMC_MODE_SMCD
		       ? "SMCD"
	       : s->mode == USMC_SOCK_SMCR	? "SMCR"
	       : s->mode == USMC_SOCK_TCP	? "TCP"
	       : s->mode == USMC_SOCK_LISTEN	? "LISTEN"
	       : s->mode == USMC_SOCK_HANDSHAKE ? "HANDSHAKE"
						: "FAILED";
	/* the detail is free text: no tabs or newlines in a field */
	usmc_sock_detail(s, detail, sizeof(detail));
	for (char *p = detail; *p; p++)
		if (*p == '\t' || *p == '\n')
			*p = ' ';
	tbl_printf("%d\t%s\t%s\t%s\t%s\t%s\t0x%08x\t%s\t%s\t%u\t%u\t%u\t%llu\t"
		   "%llu\t%u:%u\t%u:%u\t%u:%u\t%u:%u\t%s\t%s\t%s\t%u\n",
		   s->fd,
		   s->mode == USMC_SOCK_LISTEN ? "listener"
		   : s->is_server	       ? "server"
					       : "client",
		   state, mode, la, pa, s->fb_code,
		   s->fb_code ? usmc_decline_name(s->fb_code) : "-",
		   s->fb_code ? usmc_clc_decl_str(s->fb_code) : "-", lgr, link,
		   ver, (unsigned long long)sent, (unsigned long long)recv,
		   rp[0], rp[1], rc[0], rc[1], tp[0], tp[1], tc[0], tc[1],
		   detail[0] ? detail : "-", dev, gid, failovers);
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = usmc_real()->write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The last table had nothing that changes by itself: every socket the
 * kernel's for good (its bytes the only thing moving) and no link group.
 * Settling: not quiet only for sockets already given to TCP that are not
 * yet the kernel's (usmc_sock_kernel_mark waits for their first read or
 * epoll call), which a moment will make quiet. */
static int tbl_quiet, tbl_settling;

static void publish(void)
{
	char tmp[sizeof(stat_path) + 8], ns[64] = "";
	static int warned;
	int err = 0, out, e;
	ssize_t n;

	n = readlink("/proc/self/ns/net", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	pthread_mutex_lock(&usmc_g.lock);
	tbl_len = 0;
	tbl_bad = 0;
	/* quiet first: the header says so (usmc-stat shows a quiet table
	 * however old: its publisher may end, docs/stat.md) */
	tbl_quiet = tbl_settling = usmc_smc_lgr_count() == 0;
	for (int fd = 0; fd < usmc_g.nsocks && tbl_settling; fd++) {
		const usmc_sock *s = usmc_g.socks[fd];

		if (s && !s->kernel) {
			tbl_quiet = 0;
			tbl_settling = s->mode == USMC_SOCK_TCP;
		}
	}
	tbl_printf("usmc-stat 1\tpid %d\tcomm %s\tnetns %s%s\n", (int)getpid(),
		   program_invocation_short_name, ns[0] ? ns : "-",
		   tbl_quiet ? "\tquiet 1" : "");
	for (int fd = 0; fd < usmc_g.nsocks; fd++) {
		usmc_sock *s = usmc_g.socks[fd];

		/* a dup'ed socket once, at its own fd */
		if (s && s->fd == fd && !s->dead && !s->fresh)
			put_sock(s);
	}
	usmc_smc_stat_links(tbl_printf);
	pthread_mutex_unlock(&usmc_g.lock);
	if (tbl_bad)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", stat_path);
	pthread_mutex_lock(&pub_lock);
	if (!stat_done) {
		out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (out < 0) {
			err = errno;
		} else {
			err = write_all(out, tbl, tbl_len);
			e = usmc_real()->close(out) ? errno : 0;
			if (!err)
				err = e;
			if (!err && rename(tmp, stat_path))
				err = errno;
			if (err)
				unlink(tmp);
		}
	}
	pthread_mutex_unlock(&pub_lock);
	if (err && !warned) {
		warned = 1; /* once: the directory is missing or read-only */
		/* strerror may allocate (message catalogs) */
		pthread_mutex_lock(&usmc_g.lock);
		usmc_rt_log(USMC_LOG_INFO,
			    "usmc-stat table not written to %s: %s", stat_dir,
			    strerror(err));
		pthread_mutex_unlock(&usmc_g.lock);
	}
}

/* A state change asks for an early table; the thread takes at most one
 * every USMC_STAT_MIN_MS. */
#define USMC_STAT_MIN_MS 50
static pthread_mutex_t kick_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t kick_cond;
static int kicked;

static pid_t stat_running; /* the thread runs in this process */
/* A socket came or went while the publisher ran: its linger starts
 * again, without the wake-up (a futex call) a kick costs the caller. */
static int touched;

static void stat_thread_start(void);

void usmc_stat_kick(void)
{
	if (stat_pid != usmc_rt_pid() || !stat_dir[0])
		return;
	pthread_mutex_lock(&kick_lock);
	if (stat_running == stat_pid) {
		kicked = 1;
		pthread_cond_signal(&kick_cond);
		pthread_mutex_unlock(&kick_lock);
		return;
	}
	pthread_mutex_unlock(&kick_lock);
	stat_thread_start(); /* it ended for being idle */
}

/* How long after its last change (a kick, a new socket, a close, a table
 * that was not quiet) a quiet table keeps the publisher: a process whose
 * sockets are all the kernel's (fallback, rules) then runs no thread of
 * usmc's (usmc_loop.c, PROGRESS_IDLE_MS, says why that matters) a moment
 * after its last connect. The next socket, close or state change starts
 * it again; until then the table stands, their byte counts as of its
 * writing. Counted from the last change, not the first quiet table: a
 * client of short-lived connections that all fall back keeps it running
 * rather than starting a thread, with a context switch in its socket(),
 * every USMC_STAT_MIN_MS; and a client that opens its connections and
 * then uses them (redis-benchmark -c 50) loses it soon, not after a
 * second of its run. */
#define USMC_STAT_LINGER_MS 50

static void *stat_thread(void *arg)
{
	struct timespec gap = {0, USMC_STAT_MIN_MS * 1000000L};
	uint64_t now, busy = 0, changed = 0, wake;
	int woken = 1; /* started for a change */

	(void)arg;
	usmc_in_runtime = 1; /* its writes are the runtime's own */
	sem_post(&stat_started);
	for (;;) {
		struct timespec until;

		if (stat_pid != getpid()) {
			pthread_detach(pthread_self());
			return NULL; /* forked: the child runs its own */
		}
		publish();
		now = usmc_rt_now();
		if (__atomic_exchange_n(&touched, 0, __ATOMIC_RELAXED))
			woken = 1;
		if (woken)
			changed = now;
		if (!tbl_quiet || woken)
			busy = now;
		if (tbl_quiet &&
		    now - busy >= USMC_STAT_LINGER_MS * USMC_NS_PER_MS) {
			/* decided under usmc_g.lock: a fork waits for the
			 * end of its teardown (usmc_thread_ending) */
			pthread_mutex_lock(&usmc_g.lock);
			pthread_mutex_lock(&kick_lock);
			if (!kicked &&
			    !__atomic_load_n(&touched, __ATOMIC_RELAXED)) {
				stat_running = 0;
				usmc_thread_ending();
				pthread_mutex_unlock(&kick_lock);
				pthread_mutex_unlock(&usmc_g.lock);
				return NULL;
			}
			pthread_mutex_unlock(&kick_lock);
			pthread_mutex_unlock(&usmc_g.lock);
		}
		nanosleep(&gap, NULL);
		/* a quiet table is looked at again when the linger ends, so
		 * is one settling within a period of its last change (the
		 * connections a client just made, given to TCP: it then ends
		 * ~100 ms after them, not 600), a busy one after the period */
		if (tbl_quiet)
			wake = busy + USMC_STAT_LINGER_MS * USMC_NS_PER_MS;
		else if (tbl_settling &&
			 now - changed < USMC_STAT_PERIOD_MS * USMC_NS_PER_MS)
			wake = now + USMC_STAT_LINGER_MS * USMC_NS_PER_MS;
		else
			wake = now + USMC_STAT_PERIOD_MS * USMC_NS_PER_MS;
		until.tv_sec = (time_t)(wake / USMC_NS_PER_SEC);
		until.tv_nsec = (long)(wake % USMC_NS_PER_SEC);
		pthread_mutex_lock(&kick_lock);
		while (!kicked && pthread_cond_timedwait(&kick_cond, &kick_lock,
							 &until) != ETIMEDOUT)
			;
		woken = kicked;
		kicked = 0;
		pthread_mutex_unlock(&kick_lock);
	}
	return NULL;
}

/* A destructor, so it runs after every atexit handler: the table stays
 * while the runtime's exit-time drain closes connections. */
__attribute__((destructor)) static void stat_unlink(void)
{
	if (stat_pid != getpid() || !stat_path[0])
		return;
	pthread_mutex_lock(&pub_lock);
	stat_done = 1;
	unlink(stat_path);
	pthread_mutex_unlock(&pub_lock);
}

/* USMC_STAT_DIR (default /dev/shm), made absolute: the program may
 * change its directory later, usmc-stat reads it from its own. */
static void stat_dir_load(void)
{
	const char *d = getenv("USMC_STAT_DIR");
	char cwd[PATH_MAX];
	int n;

	stat_dir_read = 1;
	if (!d)
		d = "/dev/shm";
	if (!*d)
		return; /* off */
	if (d[0] == '/')
		n = snprintf(stat_dir, sizeof(stat_dir), "%s", d);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(stat_dir, sizeof(stat_dir), "%s/%s", cwd, d);
	else
		n = -1;
	if (n < 0 || (size_t)n >= sizeof(stat_dir)) {
		stat_dir[0] = '\0';
		usmc_rt_log(USMC_LOG_WARN,
			    "USMC_STAT_DIR \"%s\": too long or unresolvable: "
			    "no usmc-stat table",
			    d);
	}
}

/* Starts the publisher, with every signal blocked; usmc_g.lock held, the
 * first start included (its callers are usmc_sock_new and
 * usmc_sock_free): usmc_thread_reap needs it. Its start-up (glibc's, the
 * sanitizer's) allocates: over before the app, which may fork next, goes
 * on. */
static void stat_thread_start(void)
{
	pthread_attr_t a;
	pthread_t t;
	sigset_t all, old;

	pthread_mutex_lock(&kick_lock);
	if (stat_running == stat_pid) {
		pthread_mutex_unlock(&kick_lock);
		return;
	}
	stat_running = stat_pid;
	kicked = 0;
	pthread_mutex_unlock(&kick_lock);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	usmc_thread_reap(); /* the one that ended idle */
	pthread_attr_init(&a);
	sem_init(&stat_started, 0, 0);
	if (pthread_create(&t, &a, stat_thread, NULL)) {
		usmc_rt_log(USMC_LOG_INFO, "usmc-stat publisher not started");
		stat_running = 0;
	} else {
		while (sem_wait(&stat_started) && errno == EINTR)
			;
	}
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void usmc_stat_wake(void)
{
	if (stat_pid != usmc_rt_pid() || !stat_dir[0])
		return;
	if (stat_running != stat_pid)
		stat_thread_start();
	else
		__atomic_store_n(&touched, 1, __ATOMIC_RELAXED);
}

void usmc_stat_start(void)
{
	static int kick_init;

	if (stat_pid == usmc_rt_pid()) {
		/* a new socket: the publisher may have ended, idle */
		usmc_stat_wake();
		return;
	}
	stat_pid = usmc_rt_pid();
	if (!stat_dir_read)
		stat_dir_load();
	if (!stat_dir[0])
		return; /* off */
	snprintf(stat_path, sizeof(stat_path), "%s/usmc-stat.%d", stat_dir,
		 (int)stat_pid);
	/* a fork may have happened with the parent's thread holding it */
	pthread_mutex_init(&pub_lock, NULL);
	stat_done = 0;
	if (!kick_init) {
		pthread_condattr_t ca;

		kick_init = 1;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&kick_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	/* a fork may have happened with the parent's thread holding it */
	pthread_mutex_init(&kick_lock, NULL);
	kicked = 0;
	stat_thread_start();
}
