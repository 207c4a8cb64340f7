/* SPDX-License-Identifier: MIT */
/*
 * The runtime's view of the outside world: clock, randomness, logging and
 * configuration from the environment.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "softroce.h"
#include "usmc_real.h"
#include "usmc_rt.h"
#include "usmc_utc.h"
#include "usmc_version.h"

#define USMC_CONF_DEFAULT "/etc/usmc.conf"
#define USMC_CONF_MAX	  (64 * 1024)

uint64_t usmc_rt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USMC_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

void usmc_rt_rand(uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No entropy syscall: still never hand out zeros. */
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)(usmc_rt_now() >> (i % 8));
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * Logging (docs/runtime.md "Logging"). The runtime lives inside someone
 * else's process: no stdio FILE on its fds, one write(2) per line (lines
 * of several threads and processes never interleave mid-line), no lock
 * a fork could leave held, and never a write to an fd of the program's
 * that only has the number our file or stderr had.
 */
static int log_level_env; /* from the environment; 0: not read */
static int log_time = -1; /* USMC_LOG_TIME */

/* The config's log settings, immutable once published: a line loads the
 * pointer once and takes level and path from the same record, however
 * usmc_config_set races with it. A replaced record is never freed (a
 * logger in another thread, or a signal handler, may still hold it; no
 * point is known where none does): it stays on the chain of |prev|, a
 * few hundred bytes per change of the log's settings. NULL before the
 * config is read (the environment's then). */
typedef struct log_settings {
	const struct log_settings *prev;
	int level;
	char path[256]; /* as given, "%p" not expanded; "": stderr */
} log_settings;
static const log_settings *log_set;

/* The open log file, for the settings it was opened for: fd, the
 * process that opened it (a %p child opens its own) and the file it
 * names, fixed once published. A new one is published on each open
 * (config change, %p child, the program closed ours), the old kept as
 * above. |refs| counts the publication and each line being written
 * through it: the fd of a replaced record is closed by whoever drops the
 * last reference, never under a writer, whose line would otherwise go to
 * whatever took the number next (the stat publisher's table file). */
typedef struct log_file {
	const struct log_file *prev;
	const log_settings *set;
	int fd;
	pid_t pid;
	dev_t dev;
	ino_t ino;
	int refs;
} log_file;
static log_file *log_out;
static int log_open_failed; /* said once on stderr (per settings) */
static int err_known;	    /* err_* below are fd 2's at start */
static int err_sock;	    /* fd 2 was a socket then */
static dev_t err_dev;
static ino_t err_ino;

static const char *const level_names[] = {
	[USMC_LOG_ERR] = "error",     [USMC_LOG_WARN] = "warn",
	[USMC_LOG_WARN + 1] = "warn", /* syslog's notice: usmc has none */
	[USMC_LOG_INFO] = "info",     [USMC_LOG_DEBUG] = "debug",
};

int usmc_rt_log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{"error", USMC_LOG_ERR}, {"err", USMC_LOG_ERR},
		{"warn", USMC_LOG_WARN}, {"warning", USMC_LOG_WARN},
		{"info", USMC_LOG_INFO}, {"debug", USMC_LOG_DEBUG},
	};

	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcasecmp(s, names[i].name))
			return names[i].level;
	/* syslog priorities (3 error ... 7 debug), as the core's USMC_LOG_* */
	if (s[0] >= '3' && s[0] <= '7' && !s[1])
		return s[0] - '0';
	return -1;
}

const char *usmc_rt_log_level_name(int level)
{
	if (level < USMC_LOG_ERR || level > USMC_LOG_DEBUG)
		return "?";
	return level_names[level];
}

/* Before the config is read (its own complaints): the environment. */
static int env_level(void)
{
	const char *v = getenv("USMC_LOG_LEVEL");
	const char *d = getenv("USMC_DEBUG");
	int l = v && *v ? usmc_rt_log_level_parse(v) : -1;

	if (l > 0)
		return l;
	if (d && *d && strcmp(d, "0") != 0)
		return USMC_LOG_DEBUG;
	return USMC_LOG_WARN;
}

static int level_of(const log_settings *set)
{
	int l;

	if (set)
		return set->level;
	l = __atomic_load_n(&log_level_env, __ATOMIC_RELAXED);
	if (!l) {
		l = env_level();
		__atomic_store_n(&log_level_env, l, __ATOMIC_RELAXED);
	}
	return l;
}

static int level_now(void)
{
	return level_of(__atomic_load_n(&log_set, __ATOMIC_ACQUIRE));
}

int usmc_rt_log_on(int level)
{
	return level <= level_now();
}

/* What fd 2 is when the library is loaded (the preload's, or a linked
 * program's, constructors), before the program can close it or dup2
 * over it: a socket there then is the stderr it was started with (a
 * journal stream), one that came later is the program's. One fstat per
 * process, a bare system call (with -z initfirst this may run before
 * libc's own constructors). The later calls are for a build whose
 * constructors did not run. */
__attribute__((constructor)) static void fd2_remember(void)
{
	struct stat st;

	if (__atomic_exchange_n(&err_known, 1, __ATOMIC_RELAXED))
		return;
	if (fstat(2, &st) == 0) {
		err_sock = S_ISSOCK(st.st_mode);
		err_dev = st.st_dev;
		err_ino = st.st_ino;
	}
}

/* fd 2 may be written: open, and not a socket the program opened there
 * after closing stderr (a log line must never enter its connection). */
static int fd2_ok(void)
{
	struct stat st;

	if (fstat(2, &st))
		return 0;
	return !S_ISSOCK(st.st_mode) ||
	       (err_sock && st.st_dev == err_dev && st.st_ino == err_ino);
}

/* 0, or -1 with errno (0 for a write that took nothing) */
static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = syscall(SYS_write, fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!w)
				errno = 0;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* |fd| is still the log file we opened (the program may have closed it
 * and got the number back for something of its own). */
static int fd_is_file(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	long fl;

	if (fd < 0 || fstat(fd, &st) || st.st_dev != dev || st.st_ino != ino)
		return 0;
	fl = syscall(SYS_fcntl, fd, F_GETFL);
	return fl >= 0 && (fl & O_APPEND);
}

/* The published record with a reference taken, or NULL. A record
 * whose count reached zero is no longer published: load again. */
static log_file *log_hold(void)
{
	for (;;) {
		log_file *f = __atomic_load_n(&log_out, __ATOMIC_ACQUIRE);
		int r;

		if (!f)
			return NULL;
		r = __atomic_load_n(&f->refs, __ATOMIC_RELAXED);
		while (r > 0 && !__atomic_compare_exchange_n(
					&f->refs, &r, r + 1, 1,
					__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			;
		if (r > 0)
			return f;
	}
}

/* Drops a reference; the last one closes the fd if it still names the
 * file and no newer record has its number (one the program took over is
 * not ours, and a number that came back to us is the new file's). A bare
 * close, as for every fd of ours here. */
static void log_release(log_file *f)
{
	const log_file *cur;

	if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL))
		return;
	cur = __atomic_load_n(&log_out, __ATOMIC_ACQUIRE);
	if ((!cur || cur->fd != f->fd) && fd_is_file(f->fd, f->dev, f->ino))
		syscall(SYS_close, f->fd);
}

static const char *path_of(const log_settings *set)
{
	return set ? set->path : getenv("USMC_LOG_FILE");
}

/* "%p" is the PID, "%%" a '%'; 0, or -1 if too long. *|per_proc|: 1
 * if the PID is in the result (a "%%p" is a literal "%p", the same file
 * in every process), decided here only, over the whole of |p|. */
static int path_expand(const char *p, char *out, size_t len, pid_t pid,
		       int *per_proc)
{
	size_t o = 0;
	int r = 0;

	*per_proc = 0;
	for (; *p; p++) {
		char one[16] = {p[0], '\0'};

		if (p[0] == '%' && (p[1] == 'p' || p[1] == '%')) {
			if (p[1] == 'p') {
				snprintf(one, sizeof(one), "%d", (int)pid);
				*per_proc = 1;
			}
			p++;
		}
		if (r || o + strlen(one) >= len) {
			r = -1; /* too long: go on for *per_proc */
			continue;
		}
		memcpy(out + o, one, strlen(one));
		o += strlen(one);
	}
	out[o] = '\0';
	return r;
}

/* A file opened for |set| serves path |p| (a change of level alone
 * keeps the file). */
static int same_path(const log_settings *set, const char *p)
{
	const char *q = path_of(set);

	return q && !strcmp(q, p);
}

/* The log file's fd for |set|, opened at the first line (again in a
 * child when the path has %p, or when the program closed ours, or for
 * new settings); -1: stderr. *|held|: the record the fd belongs to, with
 * a reference the caller drops (log_release) after its line, or NULL.
 * *|once| says the caller closes the fd after its line: settings
 * replaced since the caller loaded them get their file for that line
 * only, so that a late line never unseats the new settings' file. */
static int log_file_fd(const log_settings *set, int *once, log_file **held)
{
	const char *p = path_of(set);
	pid_t pid = getpid();
	char path[sizeof(set->path) + 16];

	*once = 0;
	*held = NULL;
	log_file *out = log_hold();
	log_file *nout;
	int per_proc, ex, nfd, e;
	struct stat st;

	if (!p || !*p) {
		log_release(out);
		return -1;
	}
	ex = path_expand(p, path, sizeof(path), pid, &per_proc);
	if (out && same_path(out->set, p) && (!per_proc || out->pid == pid) &&
	    fd_is_file(out->fd, out->dev, out->ino)) {
		*held = out;
		return out->fd;
	}
	if (__atomic_load_n(&log_open_failed, __ATOMIC_RELAXED)) {
		log_release(out);
		return -1;
	}
	e = ENAMETOOLONG;
	nfd = -1;
	if (!ex) {
		nfd = open(path,
			   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
			   0644);
		e = errno;
	}
	if (nfd >= 0 && nfd <= 2) {
		/* The program closed its stdin, stdout or stderr: our file
		 * must not take their number, or its own writes to fd 1
		 * would land in our log (or ours in what it opens there
		 * next). A bare close, as for every fd of ours here. */
		int hi = (int)syscall(SYS_fcntl, nfd, F_DUPFD_CLOEXEC, 3);

		e = errno;
		syscall(SYS_close, nfd);
		nfd = hi;
	}
	if (nfd < 0 || fstat(nfd, &st)) {
		char m[sizeof(path) + 128];
		int n;

		log_release(out);
		if (nfd >= 0) {
			e = errno;
			syscall(SYS_close, nfd);
		}
		if (__atomic_exchange_n(&log_open_failed, 1, __ATOMIC_RELAXED))
			return -1;
		n = snprintf(m, sizeof(m),
			     "usmc[%d]: cannot open log file %s: %s; logging "
			     "to stderr\n",
			     (int)pid, p, strerror(e));
		if (n > 0 && fd2_ok())
			write_all(2, m,
				  (size_t)n < sizeof(m) ? (size_t)n
							: sizeof(m) - 1);
		return -1;
	}
	*once = set != __atomic_load_n(&log_set, __ATOMIC_ACQUIRE);
	if (*once) {
		log_release(out);
		return nfd;
	}
	nout = malloc(sizeof(*nout));
	if (!nout) {
		log_release(out);
		syscall(SYS_close, nfd);
		return -1;
	}
	/* refs: the publication's and this caller's */
	*nout = (log_file){.prev = out, /* held */
			   .set = set,
			   .fd = nfd,
			   .pid = pid,
			   .dev = st.st_dev,
			   .ino = st.st_ino,
			   .refs = 2};
	/* Threads that race here open the same file: one record wins, the
	 * others write their line through their own fd and close it. The
	 * record replaced loses its publication's reference: its fd is
	 * closed once the lines in flight through it are written. A
	 * parent's record in a %p child is closed at once: the child's
	 * copy of its count includes the parent's writers. */
	if (!__atomic_compare_exchange_n(&log_out, &out, nout, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		out = (log_file *)nout->prev; /* the CAS loaded the winner */
		free(nout);
		log_release(out);
		*once = 1; /* this line through ours, the next through theirs */
		return nfd;
	}
	*held = nout;
	if (out && out->pid != pid) {
		if (out->fd != nfd && fd_is_file(out->fd, out->dev, out->ino))
			syscall(SYS_close, out->fd);
	} else if (out) {
		log_release(out); /* this caller's */
		log_release(out); /* the publication's */
	}
	return nfd;
}

/* The banner's settings, and the process that last wrote it: a forked
 * child writes its own before its first line. */
static char banner_rest[768];
static pid_t banner_pid;

static void banner(void)
{
	usmc_rt_log(USMC_LOG_DEBUG, "usmc %s: pid %d (%s), %s",
		    USMC_VERSION_STRING, (int)getpid(),
		    program_invocation_short_name, banner_rest);
}

void usmc_rt_log(int level, const char *fmt, ...)
{
	char msg[1024], line[1152];
	va_list ap;
	int fd, n;
	/* one load: this line's level and path from the same settings */
	const log_settings *set = __atomic_load_n(&log_set, __ATOMIC_ACQUIRE);
	log_file *held;
	int once;

	if (level > level_of(set))
		return;
	fd2_remember();
	if (level_of(set) >= USMC_LOG_DEBUG) {
		pid_t b = __atomic_load_n(&banner_pid, __ATOMIC_RELAXED);
		pid_t me = getpid();

		if (b && b != me &&
		    __atomic_compare_exchange_n(&banner_pid, &b, me, 0,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED))
			banner();
	}
	if (log_time < 0) {
		const char *t = getenv("USMC_LOG_TIME");

		log_time = t && *t && strcmp(t, "0") != 0;
	}
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fd = log_file_fd(set, &once, &held);
	if (fd >= 0) {
		/* ISO 8601 in UTC to the microsecond: sortable across
		 * hosts and processes, no time zone to guess */
		struct timespec ts;
		usmc_utc u;

		/* by hand, not gmtime_r: no tz lock that a fork child or
		 * a signal handler could find held */
		clock_gettime(CLOCK_REALTIME, &ts);
		usmc_utc_from(ts.tv_sec, &u);
		n = snprintf(line, sizeof(line),
			     "%04lld-%02d-%02dT%02d:%02d:%02d.%06ldZ usmc[%d] "
			     "%s: %s\n",
			     (long long)u.year, u.mon, u.mday, u.hour, u.min,
			     u.sec, ts.tv_nsec / 1000, (int)getpid(),
			     usmc_rt_log_level_name(level), msg);
	} else if (log_time) {
		/* CLOCK_MONOTONIC, the clock of the core's timers, so that a
		 * script can time a fault injected on the same clock */
		uint64_t t = usmc_rt_now();

		n = snprintf(line, sizeof(line), "%llu.%06llu usmc[%d]: %s\n",
			     (unsigned long long)(t / 1000000000u),
			     (unsigned long long)(t % 1000000000u / 1000u),
			     (int)getpid(), msg);
	} else {
		n = snprintf(line, sizeof(line), "usmc[%d]: %s\n",
			     (int)getpid(), msg);
	}
	if (n < 0)
		n = 0; /* nothing written, a once fd still closed */
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* EBADF: the program closed ours under us (no thread of ours
	 * closes a held record's fd): once more, with the file as it is
	 * now */
	if (fd >= 0 && write_all(fd, line, (size_t)n) && errno == EBADF &&
	    !once) {
		log_release(held);
		fd = log_file_fd(set, &once, &held);
		if (fd >= 0)
			write_all(fd, line, (size_t)n);
	}
	log_release(held);
	if (once)
		syscall(SYS_close, fd);
	else if (fd < 0 && fd2_ok())
		write_all(2, line, (size_t)n);
}

/* Where the rules come from, for the banner. */
static void rules_source(const usmc_rt_config *cfg, char *buf, size_t len)
{
	const char *r = getenv("USMC_RULES");
	const char *p = getenv("USMC_SMC_PORTS");
	size_t o = 0;

	buf[0] = '\0';
	if (r && *r)
		o += (size_t)snprintf(buf + o, len - o, "USMC_RULES");
	if (p && *p && o < len)
		o += (size_t)snprintf(buf + o, len - o, "%sUSMC_SMC_PORTS=%s",
				      o ? " + " : "", p);
	if (cfg->conf_path[0] && o < len)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? " + " : "",
				      cfg->conf_path);
	if (!o)
		snprintf(buf, len, "none");
}

void usmc_rt_log_configure(const usmc_rt_config *cfg)
{
	char rules[300];
	int l = cfg->log_level;
	const log_settings *cur = __atomic_load_n(&log_set, __ATOMIC_ACQUIRE);
	log_settings *ns;

	if (!l)
		l = cfg->debug ? USMC_LOG_DEBUG : USMC_LOG_WARN;
	fd2_remember();
	/* Called at start and under the lock (usmc_config_set): one
	 * writer. New settings are a new record; a new path's file is
	 * opened at once, below, and the old path's fd closed then. */
	if (!cur || cur->level != l || strcmp(cur->path, cfg->log_file)) {
		ns = calloc(1, sizeof(*ns));
		if (ns) {
			ns->prev = cur;
			ns->level = l;
			snprintf(ns->path, sizeof(ns->path), "%s",
				 cfg->log_file);
			if (!cur || strcmp(cur->path, cfg->log_file))
				__atomic_store_n(&log_open_failed, 0,
						 __ATOMIC_RELAXED);
			__atomic_store_n(&log_set, ns, __ATOMIC_RELEASE);
		}
	}
	/* opened now, so that a path that cannot be is said at once, not at
	 * the first line worth logging */
	{
		log_file *held;
		int once, fd = log_file_fd(
				  __atomic_load_n(&log_set, __ATOMIC_ACQUIRE),
				  &once, &held);

		log_release(held);
		if (once)
			syscall(SYS_close, fd);
	}
	rules_source(cfg, rules, sizeof(rules));
	snprintf(banner_rest, sizeof(banner_rest),
		 "transport %s (shm %s, synopt %s), rules %s, log level %s to "
		 "%s",
		 cfg->transport, cfg->shm ? "on" : "off",
		 cfg->synopt ? "auto" : "off", rules, usmc_rt_log_level_name(l),
		 cfg->log_file[0] ? cfg->log_file : "stderr");
	__atomic_store_n(&banner_pid, getpid(), __ATOMIC_RELAXED);
	banner();
}

/* Why the last usmc_config_apply refused a value; "" if it did not say. */
static char apply_err[192];

const char *usmc_config_error(void)
{
	return apply_err;
}

/* "key=value,key=value": each item has a key and '=' (what every
 * backend's options share, usmc_tp_opt_next); the backend checks keys and
 * values. */
static int opts_syntax(const char *o, char *err, size_t errlen)
{
	const char *cur = o;
	usmc_tp_opt t = {0};

	while (usmc_tp_opt_next(o, &cur, &t)) {
		int shown = (int)(t.len > 64 ? 64 : t.len);

		if (!t.val || !t.klen) {
			snprintf(err, errlen,
				 "option %d (column %zu) \"%.*s\": want "
				 "KEY=VALUE",
				 t.idx, t.col, shown, t.item);
			return -1;
		}
		for (size_t i = 0; i < t.len; i++)
			if (t.item[i] == ' ' || t.item[i] == '\t') {
				snprintf(err, errlen,
					 "option %d (column %zu): blank in "
					 "\"%.*s\"",
					 t.idx, t.col + i, shown, t.item);
				return -1;
			}
	}
	return 0;
}

/* A transport options string for |transport|: softroce's are parsed as
 * its open will (key and value), the others' only as KEY=VALUE lists. */
int usmc_config_check_tp_options(const char *transport, const char *o,
				 char *err, size_t errlen)
{
	err[0] = '\0';
	if (strlen(o) >= USMC_TP_OPTS_MAX) {
		snprintf(err, errlen, "longer than %d characters",
			 USMC_TP_OPTS_MAX - 1);
		return -1;
	}
	if (opts_syntax(o, err, errlen))
		return -1;
	if (!strcmp(transport, "softroce") &&
	    usmc_softroce_check_options(o, err, errlen))
		return -1;
	return 0;
}

/* The kernel's smc_clc_ueid_valid on an EID upper-cased as smc-tools
 * does: 1 to 32 characters, A-Z 0-9 '.' '-', the first A-Z or 0-9. */
static int ueid_valid(const char *e, size_t n)
{
	if (!n || n > 32 ||
	    !((e[0] >= 'A' && e[0] <= 'Z') || (e[0] >= '0' && e[0] <= '9')))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((e[i] >= 'A' && e[i] <= 'Z') ||
		      (e[i] >= '0' && e[i] <= '9') || e[i] == '.' ||
		      e[i] == '-'))
			return 0;
	return 1;
}

/* "EID[,EID...]": up to USMC_UEID_MAX, each upper-cased, checked and
 * blank padded to 32 bytes as the kernel stores it; no duplicates. */
static int ueid_parse(usmc_rt_config *cfg, const char *v, char *err,
		      size_t errlen)
{
	char list[USMC_UEID_MAX][32];
	unsigned int n = 0;

	for (const char *p = v;; p++) {
		size_t len = strcspn(p, ",");
		char up[33];

		if (n == USMC_UEID_MAX) {
			snprintf(err, errlen,
				 "more than %d UEIDs (the kernel's "
				 "SMC_MAX_UEID)",
				 USMC_UEID_MAX);
			return -1;
		}
		for (size_t i = 0; i < len && i < 32; i++)
			up[i] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 32
								  : p[i]);
		if (!ueid_valid(up, len)) {
			snprintf(err, errlen,
				 "UEID %u (column %zu) \"%.*s\": 1-32 "
				 "characters A-Z 0-9 . -, starting with a "
				 "letter or digit",
				 n + 1, (size_t)(p - v) + 1,
				 (int)(len > 40 ? 40 : len), p);
			return -1;
		}
		memset(list[n], ' ', 32);
		memcpy(list[n], up, len);
		for (unsigned int j = 0; j < n; j++)
			if (!memcmp(list[j], list[n], 32)) {
				snprintf(err, errlen,
					 "UEID %u \"%.*s\" given twice", n + 1,
					 (int)len, up);
				return -1;
			}
		n++;
		p += len;
		if (!*p)
			break;
	}
	memcpy(cfg->ueid, list, sizeof(list));
	cfg->ueid_cnt = n;
	return 0;
}

/* The kernel's dev_valid_name: 1 to 15 characters, not "." or "..", no
 * '/', ':' or blank. */
static int ifname_valid(const char *n, size_t len)
{
	if (!len || len >= 16 || (len == 1 && n[0] == '.') ||
	    (len == 2 && n[0] == '.' && n[1] == '.'))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (n[i] == '/' || n[i] == ':' || n[i] == ' ' || n[i] == '\t' ||
		    n[i] == '\n' || n[i] == '=' || n[i] == ',' || n[i] == ';')
			return 0;
	return 1;
}

/*
 * "PNETID=IF[,IF...][;PNETID=IF...]": the smc_pnet table as smc_pnet's
 * "pnetid add" fills it. A pnet id is 1 to 16 letters and digits,
 * upper-cased (the kernel's smc_pnetid_valid); an interface belongs to
 * one pnet only. A pnet id named twice gathers its interfaces. "" empties
 * the table. On error the table stays as it was.
 */
static int pnet_parse(usmc_rt_config *cfg, const char *v, char *err,
		      size_t errlen)
{
	usmc_pnet_if t[USMC_PNET_IFS_MAX];
	unsigned int n = 0, g = 0;

	memset(t, 0, sizeof(t));
	for (const char *p = v; *v;) {
		size_t glen = strcspn(p, ";"), idlen = strcspn(p, "=;");
		const char *i = p + idlen + 1, *gend = p + glen;
		char id[USMC_PNET_ID_LEN] = {0};
		int bad = !idlen || idlen > USMC_PNET_ID_LEN;

		g++;
		if (idlen >= glen) {
			snprintf(err, errlen,
				 "pnet %u (column %zu) \"%.*s\": want "
				 "PNETID=IFNAME[,IFNAME...]",
				 g, (size_t)(p - v) + 1,
				 (int)(glen > 40 ? 40 : glen), p);
			return -1;
		}
		for (size_t k = 0; k < idlen && !bad; k++) {
			char c = p[k];

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9'))
				id[k] = (char)(c >= 'a' && c <= 'z' ? c - 32
								    : c);
			else
				bad = 1;
		}
		if (bad) {
			snprintf(err, errlen,
				 "pnet %u (column %zu) \"%.*s\": a pnet id is "
				 "1-16 letters and digits",
				 g, (size_t)(p - v) + 1,
				 (int)(idlen > 40 ? 40 : idlen), p);
			return -1;
		}
		for (;;) {
			size_t ilen = strcspn(i, ",;");

			if (!ifname_valid(i, ilen)) {
				snprintf(err, errlen,
					 "pnet %u (column %zu) \"%.*s\": an "
					 "interface name is 1-15 characters, "
					 "none of / : = , ; or blank",
					 g, (size_t)(i - v) + 1,
					 (int)(ilen > 40 ? 40 : ilen), i);
				return -1;
			}
			for (unsigned int k = 0; k < n; k++)
				if (strlen(t[k].ifname) == ilen &&
				    !memcmp(t[k].ifname, i, ilen)) {
					snprintf(err, errlen,
						 "pnet %u (column %zu): "
						 "interface %.*s given twice "
						 "(an interface is in one "
						 "pnet)",
						 g, (size_t)(i - v) + 1,
						 (int)ilen, i);
					return -1;
				}
			if (n == USMC_PNET_IFS_MAX) {
				snprintf(err, errlen,
					 "more than %d interfaces in pnets",
					 USMC_PNET_IFS_MAX);
				return -1;
			}
			memcpy(t[n].ifname, i, ilen);
			memcpy(t[n].pnet_id, id, sizeof(id));
			n++;
			i += ilen;
			if (i >= gend)
				break;
			i++; /* the ',' */
		}
		if (!*gend)
			break;
		p = gend + 1;
		if (!*p) {
			snprintf(err, errlen,
				 "pnet %u (column %zu): empty (a ';' too many)",
				 g + 1, (size_t)(p - v) + 1);
			return -1;
		}
	}
	memcpy(cfg->pnet, t, sizeof(t));
	cfg->npnet = n;
	return 0;
}

const char *usmc_pnet_of(const usmc_rt_config *cfg, const char *ifname)
{
	for (unsigned int i = 0; i < cfg->npnet; i++)
		if (!strcmp(cfg->pnet[i].ifname, ifname))
			return cfg->pnet[i].pnet_id;
	return NULL;
}

/* "dmb_size": a size (usmc_parse_size: bytes, or K, M suffixes), 16K to
 * 1M, rounded up to a power of two as the CLC names DMB sizes. */
static int dmb_size_parse(usmc_rt_config *cfg, const char *value)
{
	uint64_t v;
	uint32_t p = USMC_DMB_SIZE_MIN;

	if (usmc_parse_size(value, &v) || v < USMC_DMB_SIZE_MIN ||
	    v > USMC_DMB_SIZE_MAX) {
		snprintf(apply_err, sizeof(apply_err),
			 "want 16K to 1M (bytes, or with a K or M suffix)");
		return -1;
	}
	while (p < v)
		p *= 2;
	cfg->dmb_size = p;
	return 0;
}

int usmc_config_apply(usmc_rt_config *cfg, const char *key, const char *value)
{
	char err[128];
	char *end;
	long v;

	apply_err[0] = '\0';
	if (!key || !value)
		return -1;
	if (!strcmp(key, "transport_options")) {
		if (usmc_config_check_tp_options(cfg->transport, value,
						 apply_err, sizeof(apply_err)))
			return -1;
		strcpy(cfg->transport_options, value);
		return 0;
	}
	if (!strcmp(key, "ueid"))
		return ueid_parse(cfg, value, apply_err, sizeof(apply_err));
	if (!strcmp(key, "shortconn"))
		return usmc_shortconn_parse(&cfg->shortconn, value, apply_err,
					    sizeof(apply_err));
	if (!strcmp(key, "pnet"))
		return pnet_parse(cfg, value, apply_err, sizeof(apply_err));
	if (!strcmp(key, "transport")) {
		if (!*value || strlen(value) >= sizeof(cfg->transport))
			return -1;
		strcpy(cfg->transport, value);
		return 0;
	}
	if (!strcmp(key, "smc_ports")) {
		usmc_portset ps;

		if (usmc_portset_parse(&ps, value, err, sizeof(err))) {
			usmc_rt_log(USMC_LOG_WARN, "smc_ports \"%s\": %s",
				    value, err);
			return -1;
		}
		if (usmc_rules_set_ports(&cfg->rules, cfg->rules_ports_at,
					 &ps)) {
			usmc_rt_log(USMC_LOG_WARN, "smc_ports: too many rules");
			return -1;
		}
		cfg->smc_ports = ps;
		cfg->smc_ports_set = 1;
		return 0;
	}
	if (!strcmp(key, "synopt")) {
		if (!strcmp(value, "off") || !strcmp(value, "0"))
			cfg->synopt = 0;
		else if (!strcmp(value, "auto") || !strcmp(value, "1"))
			cfg->synopt = 1;
		else
			return -1;
		return 0;
	}
	if (!strcmp(key, "shm")) {
		/* the shm device beside the RoCE ones (docs/runtime.md) */
		if (!strcmp(value, "off") || !strcmp(value, "0"))
			cfg->shm = 0;
		else if (!strcmp(value, "on") || !strcmp(value, "1"))
			cfg->shm = 1;
		else
			return -1;
		return 0;
	}
	if (!strcmp(key, "dmb_size"))
		return dmb_size_parse(cfg, value);
	if (!strcmp(key, "log_level")) {
		int l = usmc_rt_log_level_parse(value);

		if (l < 0) {
			snprintf(apply_err, sizeof(apply_err),
				 "want error, warn, info, debug or 3-7");
			return -1;
		}
		cfg->log_level = l;
		return 0;
	}
	if (!strcmp(key, "log_file")) {
		if (strlen(value) >= sizeof(cfg->log_file))
			return -1;
		strcpy(cfg->log_file, value);
		return 0;
	}
	if (!strcmp(key, "cgroup")) {
		if (strlen(value) >= sizeof(cfg->cgroup))
			return -1;
		strcpy(cfg->cgroup, value);
		return 0;
	}
	if (!strcmp(key, "softroce_port") || !strcmp(key, "clc_wait_ms") ||
	    !strcmp(key, "testlink_ms") || !strcmp(key, "testlink_wait_ms") ||
	    !strcmp(key, "spin_us") || !strcmp(key, "debug")) {
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end)
			return -1;
		if (!strcmp(key, "softroce_port")) {
			if (v < 1 || v > 65535)
				return -1;
			cfg->softroce_port = (uint16_t)v;
		} else if (!strcmp(key, "clc_wait_ms")) {
			if (v < 1 || v > 600000)
				return -1;
			cfg->clc_wait_ms = (int)v;
		} else if (!strcmp(key, "testlink_ms")) {
			/* 0 turns TEST_LINK off, as smcr_testlink_time 0 */
			if (v < 0 || v > 600000)
				return -1;
			cfg->testlink_ms = (int)v;
		} else if (!strcmp(key, "testlink_wait_ms")) {
			if (v < 1 || v > 600000)
				return -1;
			cfg->testlink_wait_ms = (int)v;
		} else if (!strcmp(key, "spin_us")) {
			if (v < 0 || v > 1000)
				return -1;
			cfg->spin_us = (int)v;
		} else {
			cfg->debug = v != 0;
		}
		return 0;
	}
	return -1;
}

static void env_apply(usmc_rt_config *cfg, const char *env, const char *key)
{
	const char *v = getenv(env);

	if (v && *v && usmc_config_apply(cfg, key, v))
		usmc_rt_log(USMC_LOG_WARN, "ignoring %s=\"%s\": %s", env, v,
			    *apply_err ? apply_err : "not a valid value");
}

/*
 * "set KEY VALUE" lines of the config file: settings for programs that
 * get no environment from usmc (the namespace switch's ld.so.preload).
 * A variable that is set wins over the file. Each such line is blanked so
 * the rules parser skips it with line numbers intact. -1 on a bad one.
 */
static int file_settings(usmc_rt_config *cfg, char *buf, const char *path,
			 char *err, size_t errlen)
{
	static const char *const keys[] = {"synopt",	  "shm",
					   "cgroup",	  "debug",
					   "clc_wait_ms", "transport_options",
					   "ueid",	  "pnet",
					   "testlink_ms", "testlink_wait_ms",
					   "spin_us",	  "shortconn",
					   "log_level",	  "log_file",
					   "dmb_size"};
	char key[32], val[256], env[48], rest[2];
	int line = 0;

	for (char *l = buf; l && *l;
	     l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t len = strcspn(l, "\n");
		char one[512], *hash;
		size_t k;
		int n;

		line++;
		if (len >= sizeof(one))
			continue; /* no setting is that long: the rules parser's */
		memcpy(one, l, len);
		one[len] = '\0';
		hash = strchr(one, '#');
		if (hash)
			*hash = '\0';
		if (sscanf(one, " set%1[ \t]", rest) != 1)
			continue;
		n = sscanf(one, " set %31s %255s %1s", key, val, rest);
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (n >= 2 && !strcmp(key, keys[k]))
				break;
		if (n != 2 || k == sizeof(keys) / sizeof(keys[0])) {
			snprintf(err, errlen,
				 "%s:%d: want \"set KEY VALUE\", KEY one of "
				 "synopt, shm, cgroup, debug, clc_wait_ms, "
				 "transport_options, ueid, pnet, testlink_ms, "
				 "testlink_wait_ms, spin_us, shortconn, "
				 "log_level, log_file, dmb_size",
				 path, line);
			return -1;
		}
		snprintf(env, sizeof(env), "USMC_%s", key);
		for (char *c = env + 5; *c; c++)
			*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
		if (!(getenv(env) && *getenv(env)) &&
		    usmc_config_apply(cfg, key, val)) {
			/* may be cut short: the path is the caller's */
			if (snprintf(err, errlen,
				     "%s:%d: bad value \"%.64s\" for %s%s%s",
				     path, line, val, key,
				     *apply_err ? ": " : "", apply_err) < 0)
				err[0] = '\0';
			return -1;
		}
		memset(l, ' ', len);
	}
	return 0;
}

/* The config file's rules: USMC_CONF names it ("" = none), else
 * /etc/usmc.conf if it exists. -1 with |err| on any error. */
static int rules_load_file(usmc_rt_config *cfg, char *err, size_t errlen)
{
	usmc_rules *rs = &cfg->rules;
	const char *path = getenv("USMC_CONF");
	int must = path != NULL;
	char *buf;
	size_t have = 0;
	FILE *f;
	int r;

	if (!path)
		path = USMC_CONF_DEFAULT;
	if (!*path)
		return 0;
	f = fopen(path, "re");
	if (!f) {
		if (!must && errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(cfg->conf_path, sizeof(cfg->conf_path), "%s", path);
	buf = malloc(USMC_CONF_MAX + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	have = fread(buf, 1, USMC_CONF_MAX + 1, f);
	r = ferror(f);
	fclose(f);
	if (r || have > USMC_CONF_MAX) {
		snprintf(err, errlen, "%s: %s", path,
			 r ? "read error" : "larger than 64 KiB");
		free(buf);
		return -1;
	}
	buf[have] = '\0';
	if (memchr(buf, '\0', have)) {
		snprintf(err, errlen, "%s: not a text file", path);
		free(buf);
		return -1;
	}
	r = file_settings(cfg, buf, path, err, errlen);
	if (!r)
		r = usmc_rules_parse(rs, buf, path, err, errlen);
	free(buf);
	return r;
}

/* Printed once per process tree: a forked child reloads the same rules. */
static int rules_err_logged;

void usmc_config_load_env(usmc_rt_config *cfg)
{
	char err[sizeof(cfg->rules.err)] = "";
	int bad;

	memset(cfg, 0, sizeof(*cfg));
	strcpy(cfg->transport, "softroce");
	cfg->softroce_port = 4791;
	cfg->clc_wait_ms = 2000;
	cfg->testlink_ms = 1000;
	cfg->testlink_wait_ms = 1000;
	cfg->spin_us = 50;
	cfg->dmb_size = USMC_DMB_SIZE_DEFAULT;
	cfg->synopt = 1;
	(void)usmc_shortconn_parse(&cfg->shortconn, USMC_SHORTCONN_DEFAULT, err,
				   sizeof(err));
	cfg->shm = 1;
	/* precedence: USMC_RULES, USMC_SMC_PORTS, the file (first match) */
	bad = usmc_rules_parse(&cfg->rules, getenv("USMC_RULES"), "USMC_RULES",
			       err, sizeof(err));
	cfg->rules_ports_at = cfg->rules.n;
	env_apply(cfg, "USMC_TRANSPORT", "transport");
	env_apply(cfg, "USMC_SOFTROCE_PORT", "softroce_port");
	env_apply(cfg, "USMC_SMC_PORTS", "smc_ports");
	env_apply(cfg, "USMC_TRANSPORT_OPTIONS", "transport_options");
	env_apply(cfg, "USMC_UEID", "ueid");
	env_apply(cfg, "USMC_PNET", "pnet");
	if (!bad)
		bad = rules_load_file(cfg, err, sizeof(err));
	if (bad) {
		/* Never accelerate on rules we could not read as written. */
		cfg->rules.error = 1;
		snprintf(cfg->rules.err, sizeof(cfg->rules.err), "%s", err);
		if (!rules_err_logged++)
			usmc_rt_log(USMC_LOG_WARN,
				    "rules refused, every connection TCP: %s",
				    err);
	}
	env_apply(cfg, "USMC_CLC_WAIT_MS", "clc_wait_ms");
	env_apply(cfg, "USMC_TESTLINK_MS", "testlink_ms");
	env_apply(cfg, "USMC_TESTLINK_WAIT_MS", "testlink_wait_ms");
	env_apply(cfg, "USMC_SPIN_US", "spin_us");
	env_apply(cfg, "USMC_DMB_SIZE", "dmb_size");
	env_apply(cfg, "USMC_SHORTCONN", "shortconn");
	env_apply(cfg, "USMC_DEBUG", "debug");
	env_apply(cfg, "USMC_LOG_LEVEL", "log_level");
	env_apply(cfg, "USMC_LOG_FILE", "log_file");
	env_apply(cfg, "USMC_SYNOPT", "synopt");
	env_apply(cfg, "USMC_SHM", "shm");
	env_apply(cfg, "USMC_CGROUP", "cgroup");
}

void usmc_rt_addr_str(int fd, int peer, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char a[INET6_ADDRSTRLEN];
	int r = peer ? usmc_real()->getpeername(fd, (struct sockaddr *)&ss, &l)
		     : usmc_real()->getsockname(fd, (struct sockaddr *)&ss, &l);

	if (!r && ss.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&ss;

		if (inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a)) &&
		    (s->sin_port || s->sin_addr.s_addr)) {
			snprintf(buf, len, "%s:%u", a, ntohs(s->sin_port));
			return;
		}
	} else if (!r && ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ss;

		if (inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a))) {
			snprintf(buf, len, "[%s]:%u", a, ntohs(s->sin6_port));
			return;
		}
	}
	snprintf(buf, len, "*"); /* not bound or not connected (yet) */
}

void usmc_rt_conn_str(int fd, int is_server, char *buf, size_t len)
{
	char lo[64], pe[64];

	usmc_rt_addr_str(fd, 0, lo, sizeof(lo));
	usmc_rt_addr_str(fd, 1, pe, sizeof(pe));
	snprintf(buf, len, "%s %s %s", lo, is_server ? "<-" : "->", pe);
}
