/* SPDX-License-Identifier: MIT */
/*
 * libusmc-preload.so: runs unmodified TCP programs over usmc (LD_PRELOAD,
 * see tools/usmc-run). Interposition only: each call either goes to libc
 * (fds usmc does not know, and every call the runtime itself makes) or to
 * the runtime's usmc_* twin. All logic lives in runtime/.
 *
 * No constructor does work but one fstat: the runtime's notes what fd 2
 * is at load (runtime/usmc_defaults.c, fd2_remember). The libc functions
 * are looked up on first use (dlsym RTLD_NEXT) and the runtime starts on
 * the first AF_INET stream socket. The runtime calls libc through a table of its own
 * (runtime/usmc_real.h), never through these; usmc_in_runtime (per thread)
 * marks calls made from inside usmc, and a call that comes here with it
 * set (a path the table missed) still reaches libc, counted
 * (usmc_reentry_note). usmc_foreign_child sends the calls of a child usmc
 * has not adopted (vfork, clone) to libc too.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "usmc.h"
#include "usmc_fdflags.h"

#define USMC_EXPORT __attribute__((visibility("default")))

/* glibc's fortify entry points (no public prototypes) */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       struct sockaddr *addr, socklen_t *alen);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		const sigset_t *mask, size_t fdslen);
/* glibc's obsolete BSD name of signal(), not declared under _GNU_SOURCE */
sighandler_t bsd_signal(int sig, sighandler_t fn);

/* Looks up libc's NAME into *slot, on its first use (a racing second
 * lookup stores the same pointer). Out of line: the wrappers' path to
 * libc stays a load and a jump. */
static __attribute__((noinline, cold)) void *real_lookup(void **slot,
							 const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p)
		abort(); /* libc without NAME: nothing works */
	__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	return p;
}

/* real_NAME: libc's NAME, looked up once. */
#define USMC_REAL(ret, name, ...)                                        \
	static ret (*real_##name)(__VA_ARGS__);                          \
	static inline ret (*get_##name(void))(__VA_ARGS__)               \
	{                                                                \
		ret (*p)(__VA_ARGS__) =                                  \
			__atomic_load_n(&real_##name, __ATOMIC_ACQUIRE); \
		if (__builtin_expect(!p, 0))                             \
			p = (ret(*)(__VA_ARGS__))real_lookup(            \
				(void **)&real_##name, #name);           \
		return p;                                                \
	}

USMC_REAL(int, socket, int, int, int)
USMC_REAL(int, listen, int, int)
USMC_REAL(int, accept, int, struct sockaddr *, socklen_t *)
USMC_REAL(int, accept4, int, struct sockaddr *, socklen_t *, int)
USMC_REAL(int, connect, int, const struct sockaddr *, socklen_t)
USMC_REAL(ssize_t, read, int, void *, size_t)
USMC_REAL(ssize_t, readv, int, const struct iovec *, int)
USMC_REAL(ssize_t, write, int, const void *, size_t)
USMC_REAL(ssize_t, writev, int, const struct iovec *, int)
USMC_REAL(ssize_t, send, int, const void *, size_t, int)
USMC_REAL(ssize_t, sendto, int, const void *, size_t, int,
	  const struct sockaddr *, socklen_t)
USMC_REAL(ssize_t, sendmsg, int, const struct msghdr *, int)
USMC_REAL(ssize_t, recv, int, void *, size_t, int)
USMC_REAL(ssize_t, recvfrom, int, void *, size_t, int, struct sockaddr *,
	  socklen_t *)
USMC_REAL(ssize_t, recvmsg, int, struct msghdr *, int)
USMC_REAL(ssize_t, __read_chk, int, void *, size_t, size_t)
USMC_REAL(ssize_t, __recv_chk, int, void *, size_t, size_t, int)
USMC_REAL(ssize_t, __recvfrom_chk, int, void *, size_t, size_t, int,
	  struct sockaddr *, socklen_t *)
USMC_REAL(int, poll, struct pollfd *, nfds_t, int)
USMC_REAL(int, __poll_chk, struct pollfd *, nfds_t, int, size_t)
USMC_REAL(int, ppoll, struct pollfd *, nfds_t, const struct timespec *,
	  const sigset_t *)
USMC_REAL(int, __ppoll_chk, struct pollfd *, nfds_t, const struct timespec *,
	  const sigset_t *, size_t)
USMC_REAL(int, select, int, fd_set *, fd_set *, fd_set *, struct timeval *)
USMC_REAL(int, pselect, int, fd_set *, fd_set *, fd_set *,
	  const struct timespec *, const sigset_t *)
USMC_REAL(int, epoll_ctl, int, int, int, struct epoll_event *)
USMC_REAL(int, epoll_wait, int, struct epoll_event *, int, int)
USMC_REAL(int, epoll_pwait, int, struct epoll_event *, int, int,
	  const sigset_t *)
USMC_REAL(int, fcntl, int, int, ...)
USMC_REAL(int, fcntl64, int, int, ...)
USMC_REAL(int, ioctl, int, unsigned long, ...)
USMC_REAL(int, dup, int)
USMC_REAL(int, dup2, int, int)
USMC_REAL(int, dup3, int, int, int)
USMC_REAL(int, close, int)
USMC_REAL(int, close_range, unsigned int, unsigned int, int)
USMC_REAL(int, epoll_pwait2, int, struct epoll_event *, int,
	  const struct timespec *, const sigset_t *)
USMC_REAL(int, shutdown, int, int)
USMC_REAL(int, getsockopt, int, int, int, void *, socklen_t *)
USMC_REAL(int, setsockopt, int, int, int, const void *, socklen_t)
USMC_REAL(ssize_t, sendfile, int, int, off_t *, size_t)
USMC_REAL(ssize_t, sendfile64, int, int, off_t *, size_t)
USMC_REAL(int, sigaction, int, const struct sigaction *, struct sigaction *)
USMC_REAL(sighandler_t, signal, int, sighandler_t)
USMC_REAL(sighandler_t, bsd_signal, int, sighandler_t)
USMC_REAL(sighandler_t, ssignal, int, sighandler_t)
USMC_REAL(sighandler_t, sysv_signal, int, sighandler_t)
USMC_REAL(sighandler_t, __sysv_signal, int, sighandler_t)
USMC_REAL(int, siginterrupt, int, int)

/* The re-entry guard: a call from inside usmc, which would otherwise
 * have gone to usmc, goes to libc. The runtime uses its own table of libc
 * functions, so this is a safety net; each time it acts is counted. */
static inline int guarded(void)
{
	if (__builtin_expect(usmc_in_runtime != 0, 0)) {
		usmc_reentry_note();
		return 1;
	}
	return 0;
}

/* This call must go to libc whatever it names: it comes from usmc, or
 * from a child usmc has not adopted (vfork, clone: the runtime's state is
 * the parent's, shared or copied; runtime/usmc_loop.c). */
static inline int not_ours(void)
{
	return guarded() || usmc_foreign_child();
}

/* The fd is a usmc socket and this call does not come from usmc or an
 * unadopted child. The child test runs only for usmc's fds. */
static inline int ours(int fd)
{
	return (usmc_fd_flags_inline(fd) & 1) && !guarded() &&
	       !usmc_foreign_child();
}

static inline int ours_any(int fd)
{
	return usmc_fd_flags_inline(fd) && !guarded() && !usmc_foreign_child();
}

/* The fd is a usmc socket whose data, readiness and file status calls
 * usmc serves: not one handed to the kernel for good (connected plain TCP
 * or fallback, USMC_FDF_KERNEL), whose calls go to libc after this one
 * load, as if usmc were not there (docs/preload.md). */
static inline int ours_io(int fd)
{
	return (usmc_fd_flags_inline(fd) & (USMC_FDF_SOCK | USMC_FDF_KERNEL)) ==
		       USMC_FDF_SOCK &&
	       !guarded() && !usmc_foreign_child();
}

/* The fast path's tests: the fd's flags alone. Where they say the call
 * may be usmc's, or before libc's function was looked up, a wrapper
 * calls its NAME_usmc twin, out of line (USMC_SLOW), which tests again in
 * full (ours_io, ours_any): the path to libc then makes no call of its
 * own, saves no register and ends in a jump. */
#define USMC_SLOW __attribute__((noinline))

/* Returns libc's NAME(...) when TEST holds and NAME was looked up
 * already (else the NAME_usmc twin looks it up). */
#define USMC_FAST(name, test, ...)                                       \
	do {                                                             \
		__typeof__(real_##name) r_ =                             \
			__atomic_load_n(&real_##name, __ATOMIC_ACQUIRE); \
		if (__builtin_expect(r_ != NULL, 1) && (test))           \
			return r_(__VA_ARGS__);                          \
	} while (0)

static inline int io_flagged(int fd)
{
	return (usmc_fd_flags_inline(fd) & (USMC_FDF_SOCK | USMC_FDF_KERNEL)) ==
	       USMC_FDF_SOCK;
}

static inline int any_flagged(int fd)
{
	return usmc_fd_flags_inline(fd) != 0;
}

/* Runs EXPR as usmc: its libc calls are not intercepted again. */
#define USMC_CALL(type, expr)      \
	do {                       \
		type r_;           \
		usmc_in_runtime++; \
		r_ = (expr);       \
		usmc_in_runtime--; \
		return r_;         \
	} while (0)

USMC_EXPORT int socket(int domain, int type, int protocol)
{
	if (domain != AF_INET || (type & 0xf) != SOCK_STREAM || not_ours())
		return get_socket()(domain, type, protocol);
	USMC_CALL(int, usmc_socket(domain, type, protocol));
}

USMC_EXPORT int listen(int fd, int backlog)
{
	if (!ours(fd))
		return get_listen()(fd, backlog);
	USMC_CALL(int, usmc_listen(fd, backlog));
}

USMC_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (!ours(fd))
		return get_accept()(fd, addr, len);
	USMC_CALL(int, usmc_accept4(fd, addr, len, 0));
}

USMC_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len,
			int flags)
{
	if (!ours(fd))
		return get_accept4()(fd, addr, len, flags);
	USMC_CALL(int, usmc_accept4(fd, addr, len, flags));
}

USMC_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!ours(fd))
		return get_connect()(fd, addr, len);
	USMC_CALL(int, usmc_connect(fd, addr, len));
}

static USMC_SLOW ssize_t read_usmc(int fd, void *buf, size_t n)
{
	if (!ours_io(fd))
		return get_read()(fd, buf, n);
	USMC_CALL(ssize_t, usmc_read(fd, buf, n));
}

USMC_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	USMC_FAST(read, !io_flagged(fd), fd, buf, n);
	return read_usmc(fd, buf, n);
}

USMC_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (!ours_io(fd) || n > buflen)
		return get___read_chk()(fd, buf, n, buflen);
	USMC_CALL(ssize_t, usmc_read(fd, buf, n));
}

static USMC_SLOW ssize_t readv_usmc(int fd, const struct iovec *iov, int cnt)
{
	if (!ours_io(fd))
		return get_readv()(fd, iov, cnt);
	USMC_CALL(ssize_t, usmc_readv(fd, iov, cnt));
}

USMC_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	USMC_FAST(readv, !io_flagged(fd), fd, iov, cnt);
	return readv_usmc(fd, iov, cnt);
}

static USMC_SLOW ssize_t write_usmc(int fd, const void *buf, size_t n)
{
	if (!ours_io(fd))
		return get_write()(fd, buf, n);
	USMC_CALL(ssize_t, usmc_write(fd, buf, n));
}

USMC_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	USMC_FAST(write, !io_flagged(fd), fd, buf, n);
	return write_usmc(fd, buf, n);
}

static USMC_SLOW ssize_t writev_usmc(int fd, const struct iovec *iov, int cnt)
{
	if (!ours_io(fd))
		return get_writev()(fd, iov, cnt);
	USMC_CALL(ssize_t, usmc_writev(fd, iov, cnt));
}

USMC_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	USMC_FAST(writev, !io_flagged(fd), fd, iov, cnt);
	return writev_usmc(fd, iov, cnt);
}

static USMC_SLOW ssize_t send_usmc(int fd, const void *buf, size_t n, int flags)
{
	if (!ours_io(fd))
		return get_send()(fd, buf, n, flags);
	USMC_CALL(ssize_t, usmc_send(fd, buf, n, flags));
}

USMC_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	USMC_FAST(send, !io_flagged(fd), fd, buf, n, flags);
	return send_usmc(fd, buf, n, flags);
}

/* A connected stream socket ignores the address, as TCP does. */
static USMC_SLOW ssize_t sendto_usmc(int fd, const void *buf, size_t n,
				     int flags, const struct sockaddr *addr,
				     socklen_t alen)
{
	if (!ours_io(fd))
		return get_sendto()(fd, buf, n, flags, addr, alen);
	USMC_CALL(ssize_t, usmc_send(fd, buf, n, flags));
}

USMC_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			   const struct sockaddr *addr, socklen_t alen)
{
	USMC_FAST(sendto, !io_flagged(fd), fd, buf, n, flags, addr, alen);
	return sendto_usmc(fd, buf, n, flags, addr, alen);
}

static USMC_SLOW ssize_t sendmsg_usmc(int fd, const struct msghdr *msg,
				      int flags)
{
	if (!ours_io(fd))
		return get_sendmsg()(fd, msg, flags);
	USMC_CALL(ssize_t, usmc_sendmsg(fd, msg, flags));
}

USMC_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	USMC_FAST(sendmsg, !io_flagged(fd), fd, msg, flags);
	return sendmsg_usmc(fd, msg, flags);
}

static USMC_SLOW ssize_t recv_usmc(int fd, void *buf, size_t n, int flags)
{
	if (!ours_io(fd))
		return get_recv()(fd, buf, n, flags);
	USMC_CALL(ssize_t, usmc_recv(fd, buf, n, flags));
}

USMC_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	USMC_FAST(recv, !io_flagged(fd), fd, buf, n, flags);
	return recv_usmc(fd, buf, n, flags);
}

USMC_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen,
			       int flags)
{
	if (!ours_io(fd) || n > buflen)
		return get___recv_chk()(fd, buf, n, buflen, flags);
	USMC_CALL(ssize_t, usmc_recv(fd, buf, n, flags));
}

static ssize_t recvfrom_usmc(int fd, void *buf, size_t n, int flags,
			     socklen_t *alen)
{
	ssize_t r;

	usmc_in_runtime++;
	r = usmc_recv(fd, buf, n, flags);
	usmc_in_runtime--;
	/* TCP reports no source address */
	if (r >= 0 && alen)
		*alen = 0;
	return r;
}

USMC_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
			     struct sockaddr *addr, socklen_t *alen)
{
	if (!ours_io(fd))
		return get_recvfrom()(fd, buf, n, flags, addr, alen);
	return recvfrom_usmc(fd, buf, n, flags, addr ? alen : NULL);
}

USMC_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
				   int flags, struct sockaddr *addr,
				   socklen_t *alen)
{
	if (!ours_io(fd) || n > buflen)
		return get___recvfrom_chk()(fd, buf, n, buflen, flags, addr,
					    alen);
	return recvfrom_usmc(fd, buf, n, flags, addr ? alen : NULL);
}

static USMC_SLOW ssize_t recvmsg_usmc(int fd, struct msghdr *msg, int flags)
{
	if (!ours_io(fd))
		return get_recvmsg()(fd, msg, flags);
	USMC_CALL(ssize_t, usmc_recvmsg(fd, msg, flags));
}

USMC_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	USMC_FAST(recvmsg, !io_flagged(fd), fd, msg, flags);
	return recvmsg_usmc(fd, msg, flags);
}

static int any_ours(const struct pollfd *fds, nfds_t n)
{
	for (nfds_t i = 0; i < n; i++)
		if ((usmc_fd_flags_inline(fds[i].fd) &
		     (USMC_FDF_SOCK | USMC_FDF_KERNEL)) == USMC_FDF_SOCK)
			return !guarded() && !usmc_foreign_child();
	return 0;
}

/* glibc declares poll's array write-only (__fortified_attr_access), yet
 * poll reads fds[].fd and .events; without this GCC's optimiser takes the
 * caller's entries for uninitialised when any_ours() is inlined. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
USMC_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!any_ours(fds, n))
		return get_poll()(fds, n, timeout);
	USMC_CALL(int, usmc_poll(fds, n, timeout));
}

USMC_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout,
			   size_t fdslen)
{
	if (!any_ours(fds, n) || fdslen / sizeof(*fds) < n)
		return get___poll_chk()(fds, n, timeout, fdslen);
	USMC_CALL(int, usmc_poll(fds, n, timeout));
}

USMC_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		      const sigset_t *mask)
{
	if (!any_ours(fds, n))
		return get_ppoll()(fds, n, ts, mask);
	USMC_CALL(int, usmc_ppoll(fds, n, ts, mask));
}

USMC_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n,
			    const struct timespec *ts, const sigset_t *mask,
			    size_t fdslen)
{
	if (!any_ours(fds, n) || fdslen / sizeof(*fds) < n)
		return get___ppoll_chk()(fds, n, ts, mask, fdslen);
	USMC_CALL(int, usmc_ppoll(fds, n, ts, mask));
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static int any_ours_set(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
	if (nfds > FD_SETSIZE)
		return 0;
	for (int fd = 0; fd < nfds; fd++)
		if (((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) ||
		     (e && FD_ISSET(fd, e))) &&
		    (usmc_fd_flags_inline(fd) &
		     (USMC_FDF_SOCK | USMC_FDF_KERNEL)) == USMC_FDF_SOCK)
			return !guarded() && !usmc_foreign_child();
	return 0;
}

USMC_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e,
		       struct timeval *tv)
{
	if (!any_ours_set(nfds, r, w, e))
		return get_select()(nfds, r, w, e, tv);
	USMC_CALL(int, usmc_select(nfds, r, w, e, tv));
}

USMC_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e,
			const struct timespec *ts, const sigset_t *mask)
{
	if (!any_ours_set(nfds, r, w, e))
		return get_pselect()(nfds, r, w, e, ts, mask);
	USMC_CALL(int, usmc_pselect(nfds, r, w, e, ts, mask));
}

/* epoll_create/epoll_create1 stay the kernel's: an epoll fd gets its
 * shadow set when the first usmc socket is added to it. */
static USMC_SLOW int epoll_ctl_usmc(int epfd, int op, int fd,
				    struct epoll_event *ev)
{
	/* as the fast path's test, which needs libc's function looked up:
	 * a program whose every epoll_ctl names a usmc socket (a client of
	 * fallback connections) otherwise never looks it up, and each call
	 * took usmc's lock (issue 11) */
	if ((usmc_fd_flags_inline(fd) & USMC_FDF_KERNEL) ||
	    (!ours_any(fd) && !ours_any(epfd)))
		return get_epoll_ctl()(epfd, op, fd, ev);
	USMC_CALL(int, usmc_epoll_ctl(epfd, op, fd, ev));
}

USMC_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int f = usmc_fd_flags_inline(fd);

	USMC_FAST(epoll_ctl,
		  (f & USMC_FDF_KERNEL) || (!f && !any_flagged(epfd)), epfd, op,
		  fd, ev);
	return epoll_ctl_usmc(epfd, op, fd, ev);
}

static USMC_SLOW int epoll_wait_usmc(int epfd, struct epoll_event *evs, int max,
				     int timeout)
{
	if (!ours_any(epfd))
		return get_epoll_wait()(epfd, evs, max, timeout);
	USMC_CALL(int, usmc_epoll_pwait(epfd, evs, max, timeout, NULL));
}

USMC_EXPORT int epoll_wait(int epfd, struct epoll_event *evs, int max,
			   int timeout)
{
	USMC_FAST(epoll_wait, !any_flagged(epfd), epfd, evs, max, timeout);
	return epoll_wait_usmc(epfd, evs, max, timeout);
}

static USMC_SLOW int epoll_pwait_usmc(int epfd, struct epoll_event *evs,
				      int max, int timeout,
				      const sigset_t *mask)
{
	if (!ours_any(epfd))
		return get_epoll_pwait()(epfd, evs, max, timeout, mask);
	USMC_CALL(int, usmc_epoll_pwait(epfd, evs, max, timeout, mask));
}

USMC_EXPORT int epoll_pwait(int epfd, struct epoll_event *evs, int max,
			    int timeout, const sigset_t *mask)
{
	USMC_FAST(epoll_pwait, !any_flagged(epfd), epfd, evs, max, timeout,
		  mask);
	return epoll_pwait_usmc(epfd, evs, max, timeout, mask);
}

/* epoll_pwait2's nanosecond timeout, rounded up to milliseconds. */
USMC_EXPORT int epoll_pwait2(int epfd, struct epoll_event *evs, int max,
			     const struct timespec *ts, const sigset_t *mask)
{
	long long ms = -1;

	if (!ours_any(epfd))
		return get_epoll_pwait2()(epfd, evs, max, ts, mask);
	if (ts) {
		if (ts->tv_sec < 0 || ts->tv_nsec < 0 ||
		    ts->tv_nsec >= 1000000000L) {
			errno = EINVAL;
			return -1;
		}
		ms = (long long)ts->tv_sec * 1000 +
		     (ts->tv_nsec + 999999) / 1000000;
		if (ms > 0x7fffffff)
			ms = 0x7fffffff;
	}
	USMC_CALL(int, usmc_epoll_pwait(epfd, evs, max, (int)ms, mask));
}

/* fcntl's third argument is an int or a pointer: pass it on as a word. */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	if (!ours(fd))
		return real(fd, cmd, arg);
	switch (cmd) {
	case F_GETFL:
	case F_SETFL:
		if (!ours_io(fd))
			return real(fd, cmd, arg);
		USMC_CALL(int, usmc_fcntl(fd, cmd, (long)arg));
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		USMC_CALL(int, usmc_fcntl_dupfd(fd, cmd, (int)(long)arg));
	default:
		return real(fd, cmd, arg);
	}
}

USMC_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(get_fcntl(), fd, cmd, arg);
}

USMC_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(get_fcntl64(), fd, cmd, arg);
}

USMC_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!ours_io(fd))
		return get_ioctl()(fd, req, arg);
	USMC_CALL(int, usmc_ioctl(fd, req, arg));
}

USMC_EXPORT int dup(int fd)
{
	if (!ours(fd))
		return get_dup()(fd);
	USMC_CALL(int, usmc_dup(fd));
}

/* dup2/dup3 also when only the target is a usmc fd: it is closed. */
USMC_EXPORT int dup2(int fd, int nfd)
{
	if (!ours_any(fd) && !ours_any(nfd))
		return get_dup2()(fd, nfd);
	USMC_CALL(int, usmc_dup2(fd, nfd));
}

USMC_EXPORT int dup3(int fd, int nfd, int flags)
{
	if (!ours_any(fd) && !ours_any(nfd))
		return get_dup3()(fd, nfd, flags);
	USMC_CALL(int, usmc_dup3(fd, nfd, flags));
}

static USMC_SLOW int close_usmc(int fd)
{
	if (!ours_any(fd))
		return get_close()(fd);
	USMC_CALL(int, usmc_close(fd));
}

USMC_EXPORT int close(int fd)
{
	USMC_FAST(close, !any_flagged(fd), fd);
	return close_usmc(fd);
}

USMC_EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	if (not_ours())
		return get_close_range()(first, last, flags);
	USMC_CALL(int, usmc_close_range(first, last, flags));
}

static USMC_SLOW int shutdown_usmc(int fd, int how)
{
	if (!ours_io(fd))
		return get_shutdown()(fd, how);
	USMC_CALL(int, usmc_shutdown(fd, how));
}

USMC_EXPORT int shutdown(int fd, int how)
{
	USMC_FAST(shutdown, !io_flagged(fd), fd, how);
	return shutdown_usmc(fd, how);
}

USMC_EXPORT int getsockopt(int fd, int level, int name, void *val,
			   socklen_t *len)
{
	if (!ours(fd))
		return get_getsockopt()(fd, level, name, val, len);
	USMC_CALL(int, usmc_getsockopt(fd, level, name, val, len));
}

USMC_EXPORT int setsockopt(int fd, int level, int name, const void *val,
			   socklen_t len)
{
	/* what usmc records (TCP_NODELAY, the timeouts) serves SMC-R only,
	 * which a socket of the kernel's for good never becomes */
	if (!ours_io(fd))
		return get_setsockopt()(fd, level, name, val, len);
	USMC_CALL(int, usmc_setsockopt(fd, level, name, val, len));
}

static USMC_SLOW ssize_t sendfile_usmc(int out, int in, off_t *off, size_t n)
{
	if (!ours_io(out))
		return get_sendfile()(out, in, off, n);
	USMC_CALL(ssize_t, usmc_sendfile(out, in, off, n));
}

USMC_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	USMC_FAST(sendfile, !io_flagged(out), out, in, off, n);
	return sendfile_usmc(out, in, off, n);
}

static USMC_SLOW ssize_t sendfile64_usmc(int out, int in, off_t *off, size_t n)
{
	if (!ours_io(out))
		return get_sendfile64()(out, in, off, n);
	USMC_CALL(ssize_t, usmc_sendfile(out, in, off, n));
}

USMC_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n)
{
	USMC_FAST(sendfile64, !io_flagged(out), out, in, off, n);
	return sendfile64_usmc(out, in, off, n);
}

/* Signal handlers: usmc must know which have SA_RESTART to end a blocking
 * call with EINTR as the kernel would (runtime/usmc_signal.c). glibc's
 * signal() and siginterrupt() call its internal sigaction, not this one,
 * so they are routed here too. */
USMC_EXPORT int sigaction(int sig, const struct sigaction *act,
			  struct sigaction *old)
{
	if (not_ours())
		return get_sigaction()(sig, act, old);
	USMC_CALL(int, usmc_sigaction(sig, act, old));
}

USMC_EXPORT sighandler_t signal(int sig, sighandler_t fn)
{
	if (not_ours())
		return get_signal()(sig, fn);
	USMC_CALL(sighandler_t, usmc_signal(sig, fn));
}

USMC_EXPORT sighandler_t bsd_signal(int sig, sighandler_t fn)
{
	if (not_ours())
		return get_bsd_signal()(sig, fn);
	USMC_CALL(sighandler_t, usmc_signal(sig, fn));
}

USMC_EXPORT sighandler_t ssignal(int sig, sighandler_t fn)
{
	if (not_ours())
		return get_ssignal()(sig, fn);
	USMC_CALL(sighandler_t, usmc_signal(sig, fn));
}

USMC_EXPORT sighandler_t sysv_signal(int sig, sighandler_t fn)
{
	if (not_ours())
		return get_sysv_signal()(sig, fn);
	USMC_CALL(sighandler_t, usmc_sysv_signal(sig, fn));
}

USMC_EXPORT sighandler_t __sysv_signal(int sig, sighandler_t fn)
{
	if (not_ours())
		return get___sysv_signal()(sig, fn);
	USMC_CALL(sighandler_t, usmc_sysv_signal(sig, fn));
}

USMC_EXPORT int siginterrupt(int sig, int flag)
{
	if (not_ours())
		return get_siginterrupt()(sig, flag);
	USMC_CALL(int, usmc_siginterrupt(sig, flag));
}

/* vfork: the child runs in the caller's memory, on its stack, with its
 * thread pointer, until it execs or exits, and no atfork handler runs.
 * usmc_vfork_enter notes this thread's pid first, so that whatever the
 * child calls goes to libc (usmc_foreign_child). */
#ifdef USMC_VFORK_STUB
/* A wrapper in C cannot call libc's vfork: the child would return
 * through the wrapper's frame and clobber it, and the parent returns
 * through it next. The stub (usmc_vfork_x86_64.S) calls this, then jumps
 * to what it returns, the caller's stack untouched. */
USMC_REAL(pid_t, vfork, void)

void *usmc_vfork_prepare(void);

void *usmc_vfork_prepare(void)
{
	usmc_vfork_enter(0);
	return (void *)get_vfork();
}
#else
/* No stub for this architecture: vfork is fork, which POSIX allows (a
 * vfork child may do nothing fork's cannot), and the runtime's atfork
 * child handler adopts the child as after any fork. */
USMC_EXPORT pid_t vfork(void)
{
	return fork();
}
#endif

/* glibc's clone(): the child runs FN on its own stack, so a C wrapper is
 * safe. With CLONE_VM (and neither CLONE_THREAD, a thread of this
 * process, nor CLONE_SETTLS, whose thread pointer usmc cannot read) the
 * child shares this thread's memory and thread-local storage: noted as
 * for vfork. Without CLONE_VM the runtime's page tells (usmc_loop.c).
 * The optional arguments come in order, as far as the flags use them. */
USMC_REAL(int, clone, int (*)(void *), void *, int, void *, ...)

USMC_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	int nargs = (flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) ? 3
		    : (flags & CLONE_SETTLS)				  ? 2
		    : (flags & (CLONE_PARENT_SETTID | CLONE_PIDFD))	  ? 1
									  : 0;
	pid_t *ptid = NULL, *ctid = NULL;
	void *tls = NULL;
	va_list ap;

	va_start(ap, arg);
	if (nargs >= 1)
		ptid = va_arg(ap, pid_t *);
	if (nargs >= 2)
		tls = va_arg(ap, void *);
	if (nargs >= 3)
		ctid = va_arg(ap, pid_t *);
	va_end(ap);
	if ((flags & CLONE_VM) && !(flags & (CLONE_THREAD | CLONE_SETTLS)))
		usmc_vfork_enter(!(flags & CLONE_VFORK));
	return get_clone()(fn, stack, flags, arg, ptid, tls, ctid);
}
