/* SPDX-License-Identifier: MIT */
/*
 * The library socket API: the POSIX calls. The fd is the kernel TCP
 * socket; usmc_sock holds what usmc adds to it. Sockets usmc does not
 * manage (not AF_INET stream, or fds it never saw) go straight to the
 * kernel. The handshake runs in usmc_hs.c, the fd table in usmc_fdtab.c,
 * poll and select in usmc_poll.c.
 *
 * Explicit mode: the rules (USMC_SMC_PORTS) say which ports speak SMC. A
 * client connecting elsewhere, or a server listening elsewhere, is plain TCP
 * and never writes or reads a CLC byte.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "usmc_clc.h"
#include "usmc_real.h"
#include "usmc_sock.h"
#include "usmc_synopt.h"

/* SMC_MAX_STREAM_WAIT_TIMEOUT */
#define CLOSE_DRAIN_NS (2 * USMC_NS_PER_SEC)

int usmc_errno_from(int err)
{
	switch (err) {
	case USMC_ERR_WOULDBLOCK:
		return EAGAIN;
	case USMC_ERR_PIPE:
		return EPIPE;
	case USMC_ERR_CONNRESET:
		return ECONNRESET;
	case USMC_ERR_CONNABORTED:
		return ECONNABORTED;
	case USMC_ERR_TIMEOUT:
		return ETIMEDOUT;
	case USMC_ERR_NOMEM:
		return ENOMEM;
	case USMC_ERR_DECLINED:
		return ECONNREFUSED;
	case USMC_ERR_CLOSED:
	case USMC_ERR_INVALID_STATE:
		return ENOTCONN;
	case USMC_ERR_INVALID_ARGUMENT:
		return EINVAL;
	case USMC_ERR_NOTSUP:
		return EOPNOTSUPP;
	default:
		if (err <= USMC_ERR_PROTO && err >= USMC_ERR_RESERVED_SET)
			return EPROTO;
		return EIO;
	}
}

static uint16_t sockaddr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return 0;
}

/* A client's source address before connect: its bound one, or the
 * route's. Only rules that name a local address read it, so without one
 * it is not looked up (a getsockname per connection). */
static int client_local(int fd, const struct sockaddr_in *to,
			struct sockaddr_in *out)
{
	socklen_t l = sizeof(*out);
	int u, r;

	if (!usmc_rules_use_local(&usmc_g.cfg.rules))
		return -1;
	if (usmc_real()->getsockname(fd, (struct sockaddr *)out, &l) == 0 &&
	    out->sin_family == AF_INET &&
	    out->sin_addr.s_addr != htonl(INADDR_ANY))
		return 0;
	u = usmc_real()->socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		return -1;
	l = sizeof(*out);
	r = usmc_real()->connect(u, (const struct sockaddr *)to, sizeof(*to)) ||
	    usmc_real()->getsockname(u, (struct sockaddr *)out, &l);
	usmc_real()->close(u);
	return r ? -1 : 0;
}

int usmc_socket(int domain, int type, int protocol)
{
	int fd;
	usmc_sock *s;

	if (usmc_rt_init())
		return -1;
	fd = usmc_real()->socket(domain, type, protocol);
	if (fd < 0)
		return -1;
	/* SMC-R (v2 in particular) runs over IPv4 TCP only. */
	if (domain != AF_INET || (type & 0xf) != SOCK_STREAM ||
	    (protocol != 0 && protocol != IPPROTO_TCP))
		return fd;
	/* beyond the per-fd flags the preload reads: a plain socket */
	if (fd >= USMC_FDF_MAX)
		return fd;
	pthread_mutex_lock(&usmc_g.lock);
	s = usmc_sock_new(fd);
	if (s)
		s->app_nonblock = !!(type & SOCK_NONBLOCK);
	usmc_sock_unlock();
	if (!s) {
		usmc_real()->close(fd);
		errno = ENOMEM;
		return -1;
	}
	return fd;
}

int usmc_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return usmc_real()->bind(fd, addr, len);
}

int usmc_listen(int fd, int backlog)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	usmc_sock *s;
	int fl, v = -1;

	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || (!s->fresh && s->mode != USMC_SOCK_LISTEN)) {
		usmc_sock_unlock();
		return usmc_real()->listen(fd, backlog);
	}
	if (s->mode != USMC_SOCK_LISTEN &&
	    usmc_real()->getsockname(fd, (struct sockaddr *)&sin, &slen) == 0 &&
	    sin.sin_family == AF_INET && sin.sin_port) {
		v = usmc_hs_rules_decide(&sin, NULL, ntohs(sin.sin_port),
					 s->rule_why, sizeof(s->rule_why));
		if (v != USMC_RULE_TCP && usmc_hs_synopt())
			/* before listen(): SYN-ACKs must carry the option */
			s->synopt = usmc_synopt_mark_listen(usmc_hs_synopt(),
							    fd) == 0;
		if (v != USMC_RULE_TCP && !s->synopt)
			s->save_syn = usmc_hs_save_syn(fd);
	}
	if (usmc_real()->listen(fd, backlog)) {
		int e = errno;

		if (s->synopt && s->mode != USMC_SOCK_LISTEN) {
			usmc_synopt_forget(usmc_hs_synopt(), fd);
			s->synopt = 0;
		}
		usmc_sock_unlock();
		errno = e;
		return -1;
	}
	if (s->mode == USMC_SOCK_LISTEN) {
		usmc_sock_unlock(); /* a second listen() only changes the backlog */
		return 0;
	}
	s->fresh = 0;
	s->mode = USMC_SOCK_LISTEN;
	slen = sizeof(sin);
	if (usmc_real()->getsockname(fd, (struct sockaddr *)&sin, &slen) == 0 &&
	    sin.sin_family == AF_INET) {
		/* an unbound listener's port is known only now */
		if (v < 0)
			v = usmc_hs_rules_decide(
				&sin, NULL, ntohs(sin.sin_port), s->rule_why,
				sizeof(s->rule_why));
		s->port = ntohs(sin.sin_port);
		s->listen_smc = v != USMC_RULE_TCP;
		s->rules_maybe = v == USMC_RULE_MAYBE;
	}
	usmc_g.mode_gen++;
	if (s->listen_smc) {
		/* The progress thread accepts, so the kernel fd must never
		 * block it; the app's view stays in app_nonblock. */
		fl = usmc_real()->fcntl(fd, F_GETFL);
		if (fl >= 0)
			usmc_real()->fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		usmc_loop_watch(s, EPOLLIN);
		usmc_rt_log(USMC_LOG_DEBUG, "fd %d: listening on SMC port %u",
			    fd, s->port);
	}
	usmc_sock_unlock();
	return 0;
}

/* Applies accept4 flags to a child the progress thread accepted with
 * SOCK_NONBLOCK | SOCK_CLOEXEC. */
static void child_flags(usmc_sock *c, int flags)
{
	c->app_nonblock = !!(flags & SOCK_NONBLOCK);
	/* accepted with SOCK_NONBLOCK (do_accepts): its status flags are
	 * O_RDWR | O_NONBLOCK, no F_GETFL needed */
	if (!c->app_nonblock)
		usmc_real()->fcntl(c->fd, F_SETFL, O_RDWR);
	if (!(flags & SOCK_CLOEXEC))
		usmc_real()->fcntl(c->fd, F_SETFD, 0);
}

/* accept on a socket whose connections the kernel serves (called with the
 * lock held, returns with it dropped): |s| is a listener that does not
 * speak SMC, whose children are recorded as fallbacks, or NULL / not a
 * listener. */
static int accept_plain(int fd, usmc_sock *s, struct sockaddr *addr,
			socklen_t *len, int flags)
{
	usmc_sock *c;
	int cfd;
	int is_listen = s && s->mode == USMC_SOCK_LISTEN;
	uint16_t port = s ? s->port : 0;
	char d[128] = "";
	int emulate = s && is_listen && !s->app_nonblock;

	/* the reason, copied now: |s| may go once unlocked */
	if (is_listen && s->rule_why[0])
		snprintf(d, sizeof(d), "%s", s->rule_why);
	else if (is_listen)
		snprintf(d, sizeof(d), "port %u is not an SMC port", port);

	usmc_sock_unlock();
	cfd = usmc_real()->accept4(fd, addr, len, flags);
	while (cfd < 0 && errno == EAGAIN && emulate) {
		/* inherited across fork: the kernel fd stayed
		 * nonblocking for the parent's progress thread */
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (usmc_real()->poll(&p, 1, -1) < 0 && errno != EINTR)
			return -1;
		cfd = usmc_real()->accept4(fd, addr, len, flags);
	}
	if (cfd >= 0 && is_listen) {
		pthread_mutex_lock(&usmc_g.lock);
		c = usmc_sock_new(cfd);
		if (c) {
			c->fresh = 0;
			c->is_server = 1;
			c->port = port;
			c->app_nonblock = !!(flags & SOCK_NONBLOCK);
			usmc_hs_set_fallback(c, USMC_DECL_PEERNOSMC, d);
			c->kclean = 1;
			usmc_g.stats.conns_fallback++;
			if (usmc_rt_log_on(USMC_LOG_INFO)) {
				char addrs[160];

				usmc_rt_conn_str(cfd, 1, addrs, sizeof(addrs));
				usmc_rt_log(USMC_LOG_INFO,
					    "fd %d: TCP fallback %s: %s 0x%08x "
					    "%s",
					    cfd, addrs,
					    usmc_decline_name(c->fb_code),
					    c->fb_code, d);
			}
		}
		usmc_sock_unlock();
	}
	return cfd;
}

int usmc_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	usmc_sock *s, *c;
	usmc_sig_hold hold = {0};
	uint64_t deadline;
	int cfd, err = 0, tried = 0;

	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
		errno = EINVAL;
		return -1;
	}
	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || s->mode != USMC_SOCK_LISTEN || !s->listen_smc)
		return accept_plain(fd, s, addr, len, flags);
	usmc_sock_use(s);
	s->waiters++;
	/* as the kernel's accept: SO_RCVTIMEO bounds the wait (EAGAIN), and
	 * makes any signal handler end it */
	deadline = s->rcvtimeo ? usmc_rt_now() + s->rcvtimeo : 0;
	while (!s->q_head && !s->listen_closed && !err) {
		/* the progress thread does not accept on it (an app's epoll
		 * set wakes for it): this thread takes from the kernel's
		 * backlog until one is queued (a CLC child is queued once
		 * its handshake ends), as many accept4 calls as the app's
		 * own would make over TCP */
		if (!s->ep_events && !tried) {
			tried = 1;
			if (usmc_hs_accept_some(s, INT_MAX, 1))
				err = errno; /* EMFILE, ENOBUFS: as the kernel's */
			continue;
		}
		if (s->app_nonblock) {
			err = EAGAIN;
		} else {
			/* asleep: the progress thread accepts meanwhile */
			s->bwaiters++;
			usmc_hs_listen_watch(s);
			err = usmc_wait_held(
				deadline,
				USMC_WAIT_NODEV |
					(deadline ? USMC_INTR_ALWAYS
						  : USMC_INTR_RESTART),
				&hold);
			s->bwaiters--;
			usmc_hs_listen_watch(s);
		}
		if (err == ETIMEDOUT)
			err = EAGAIN;
	}
	usmc_sig_release(&hold);
	s->waiters--;
	if (s->listen_closed) {
		if (!s->waiters)
			free(s);
		usmc_sock_unlock();
		errno = EBADF;
		return -1;
	}
	if (!s->q_head) {
		usmc_sock_unlock();
		errno = err;
		return -1;
	}
	c = s->q_head;
	s->q_head = c->q_next;
	if (!s->q_head)
		s->q_tail = NULL;
	s->q_len--;
	c->q_next = NULL;
	c->in_lq = 0;
	c->lsock = NULL;
	cfd = c->fd;
	child_flags(c, flags);
	/* a TCP child is the kernel's from here: the app's setsockopt,
	 * fcntl and epoll_ctl calls that follow an accept (five to eight
	 * of them in redis) go straight to libc (issue 11) */
	usmc_sock_kernel_mark(c, cfd);
	if (addr && len) {
		struct sockaddr_in pe;

		/* (accept4 gave it to the progress thread: no syscall) */
		if (usmc_sock_addr(c, 1, &pe) == 0) {
			memcpy(addr, &pe,
			       *len < sizeof(pe) ? *len : sizeof(pe));
			*len = sizeof(pe);
		} else {
			/* the peer has gone: it is told on first I/O */
			memset(addr, 0, *len);
		}
	}
	usmc_sock_unlock();
	return cfd;
}

int usmc_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return usmc_accept4(fd, addr, len, 0);
}

/* Waits, lock held, until |s| leaves HANDSHAKE. Returns 0 or -1/errno:
 * EINTR as |intr| says (the handshake goes on), EBADF if the fd was closed
 * meanwhile, or the handshake's error. */
static int wait_handshake(usmc_sock *s, int intr)
{
	usmc_sig_hold hold = {0};
	int fd = s->fd;

	while (usmc_sock_get(fd) == s && s->mode == USMC_SOCK_HANDSHAKE)
		if (usmc_wait_held(0, intr, &hold) == EINTR) {
			usmc_sig_release(&hold);
			errno = EINTR;
			return -1;
		}
	usmc_sig_release(&hold);
	if (usmc_sock_get(fd) != s) {
		errno = EBADF;
		return -1;
	}
	if (s->mode == USMC_SOCK_FAILED) {
		s->error_reported = 1;
		errno = s->error;
		return -1;
	}
	return 0;
}

/* connect on a socket that already connected or is connecting (lock
 * held, dropped on return): as the kernel's connect on such a socket. */
static int connect_again(int fd, usmc_sock *s, const struct sockaddr *addr,
			 socklen_t len)
{
	int r, e;

	if (s->mode == USMC_SOCK_HANDSHAKE) {
		e = s->app_nonblock ? EALREADY : 0;
		if (!e) {
			r = wait_handshake(s, USMC_INTR_RESTART);
			usmc_sock_unlock();
			return r;
		}
	} else if (s->mode == USMC_SOCK_FAILED) {
		e = s->error_reported ? ECONNABORTED : s->error;
		s->error_reported = 1;
	} else if (s->mode == USMC_SOCK_TCP) {
		usmc_sock_unlock();
		return usmc_real()->connect(fd, addr, len);
	} else {
		e = EISCONN;
	}
	usmc_sock_unlock();
	errno = e;
	return -1;
}

int usmc_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	usmc_sock *s;
	uint16_t port;
	int r, e, v;

	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || !addr || addr->sa_family != AF_INET ||
	    len < sizeof(struct sockaddr_in)) {
		/* (AF_UNSPEC dissolves a connection: its addresses go) */
		if (s)
			s->addr_local_ok = s->addr_peer_ok = 0;
		usmc_sock_unlock();
		return usmc_real()->connect(fd, addr, len);
	}
	if (!s->fresh)
		return connect_again(fd, s, addr, len);
	port = sockaddr_port(addr);
	s->fresh = 0;
	s->port = port;
	{
		struct sockaddr_in lo;
		const struct sockaddr_in *to = (const struct sockaddr_in *)addr;
		uint64_t left;
		char why[192];
		int held;

		v = usmc_hs_rules_decide(client_local(fd, to, &lo) ? NULL : &lo,
					 to, port, s->rule_why,
					 sizeof(s->rule_why));
		if (v == USMC_RULE_SMC &&
		    (held = usmc_hs_short_held(to, &left))) {
			/* Short connections: a deliberate choice, not a
			 * fallback, counted apart. A peer without SMC: the
			 * fallback its SYN-ACK would have caused. Either
			 * way the peer sees a plain TCP connection. The
			 * detail is made when read (usmc_sock_detail). */
			usmc_hs_set_fallback(s, USMC_DECL_PEERNOSMC, "");
			s->held = held;
			s->held_addr = to->sin_addr.s_addr;
			s->held_port = to->sin_port;
			s->held_left = left;
			s->kclean = 1;
			if (held == 2)
				usmc_g.stats.conns_fallback++;
			else
				usmc_g.stats.conns_short_tcp++;
			/* where it went, as any connection at info; the
			 * why made under the lock (it reads the config) */
			why[0] = '\0';
			if (usmc_rt_log_on(USMC_LOG_INFO))
				usmc_hs_held_why(held, to->sin_addr.s_addr,
						 to->sin_port, left, why,
						 sizeof(why));
			usmc_sock_unlock();
			r = usmc_real()->connect(fd, addr, len);
			if (why[0]) {
				char la[64];

				e = errno;
				usmc_rt_addr_str(fd, 0, la, sizeof(la));
				usmc_rt_log(USMC_LOG_INFO,
					    "fd %d: TCP %s -> %s", fd, la, why);
				errno = e;
			}
			return r;
		}
		s->peer_addr = to->sin_addr.s_addr;
		s->t_connect = usmc_rt_now();
	}
	if (v != USMC_RULE_SMC) {
		char d[128];

		if (s->rule_why[0])
			usmc_str_copy(d, sizeof(d), s->rule_why);
		else
			snprintf(d, sizeof(d), "port %u is not an SMC port",
				 port);
		usmc_hs_set_fallback(s, USMC_DECL_PEERNOSMC, d);
		s->kclean = 1;
		usmc_g.stats.conns_fallback++;
		usmc_sock_unlock();
		r = usmc_real()->connect(fd, addr, len);
		if (usmc_rt_log_on(USMC_LOG_INFO)) {
			/* after connect: the local port is bound now */
			const struct sockaddr_in *to =
				(const struct sockaddr_in *)addr;
			char lo[64], pe[INET_ADDRSTRLEN] = "?";

			e = errno;
			usmc_rt_addr_str(fd, 0, lo, sizeof(lo));
			inet_ntop(AF_INET, &to->sin_addr, pe, sizeof(pe));
			usmc_rt_log(USMC_LOG_INFO,
				    "fd %d: TCP fallback %s -> %s:%u: %s "
				    "0x%08x %s",
				    fd, lo, pe, port,
				    usmc_decline_name(USMC_DECL_PEERNOSMC),
				    USMC_DECL_PEERNOSMC, d);
			errno = e;
		}
		return r;
	}
	s->mode = USMC_SOCK_HANDSHAKE;
	s->hs = USMC_HS_TCP_CONNECT;
	usmc_g.mode_gen++;
	if (usmc_hs_synopt())
		s->synopt = usmc_synopt_mark_connect(usmc_hs_synopt(), fd) == 0;
	usmc_sock_unlock();

	r = usmc_real()->connect(fd, addr, len);
	e = errno;
	pthread_mutex_lock(&usmc_g.lock);
	usmc_sig_reset();
	if (usmc_sock_get(fd) != s) {
		usmc_sock_unlock();
		errno = EBADF;
		return -1;
	}
	if (r && (e == EINPROGRESS || e == EINTR)) {
		/* Nonblocking, or a signal ended the wait (the kernel goes on
		 * connecting): the progress thread takes it from here. */
		usmc_hs_list_add(s);
		usmc_loop_watch(s, EPOLLOUT);
		usmc_sock_unlock();
		errno = e;
		return -1;
	}
	if (r) {
		/* TCP itself failed: the socket is as the kernel left it. */
		s->mode = USMC_SOCK_TCP;
		s->hs = USMC_HS_NONE;
		s->fresh = 1;
		usmc_g.mode_gen++;
		usmc_sock_unlock();
		errno = e;
		return -1;
	}
	if (usmc_hs_synopt_says_tcp(s)) {
		usmc_sock_unlock();
		return 0;
	}
	usmc_hs_client_start(s);
	if (s->app_nonblock && s->mode == USMC_SOCK_HANDSHAKE) {
		usmc_sock_unlock();
		errno = EINPROGRESS;
		return -1;
	}
	r = wait_handshake(s, USMC_INTR_RESTART);
	usmc_sock_unlock();
	return r;
}

/* Lock held. Returns 1 if the caller must not block. */
static int no_wait(usmc_sock *s, int flags)
{
	return s->app_nonblock || (flags & MSG_DONTWAIT);
}

/* Which path a send or receive takes. */
enum io_path { IO_ERR, IO_KERNEL, IO_SMC };

/* io_begin is called with the lock held. It waits out a handshake still
 * running on |fd| (a caller that must not block gets EAGAIN), then returns
 * IO_SMC with the lock still held and *ps the SMC-R socket; IO_KERNEL with
 * the lock dropped for a socket the kernel serves (plain TCP, fallback, or
 * not usmc's: *ps may be NULL); or IO_ERR with the lock dropped and errno
 * set, |failed_errno| when the socket's SMC handshake failed. */
static enum io_path io_begin(int fd, int flags, int failed_errno,
			     usmc_sock **ps)
{
	usmc_sock *s = usmc_sock_get(fd);

	usmc_sock_use(s);
	while (s && s->mode == USMC_SOCK_HANDSHAKE) {
		if (no_wait(s, flags)) {
			usmc_sock_unlock();
			errno = EAGAIN;
			return IO_ERR;
		}
		if (wait_handshake(s, USMC_INTR_RESTART)) {
			usmc_sock_unlock();
			return IO_ERR;
		}
	}
	*ps = s;
	if (s && s->mode == USMC_SOCK_SMCR)
		return IO_SMC;
	usmc_sock_kernel_mark(s, fd);
	usmc_sock_unlock();
	if (s && s->mode == USMC_SOCK_FAILED) {
		/* an accepted connection whose handshake failed was reset */
		errno = s->is_server && s->error != ENOTCONN &&
					failed_errno == ENOTCONN
				? ECONNRESET
				: failed_errno;
		return IO_ERR;
	}
	return IO_KERNEL;
}

/* io_wait is called with the lock held when the core would block a send or
 * receive that has moved |done| bytes so far. Returns 1 once it is worth
 * trying again, 0 when the caller should return |done| (> 0), or -1 with
 * the lock dropped and errno set (EAGAIN: nonblocking or timed out; EINTR:
 * a signal handler ended the wait; EBADF: the fd was closed meanwhile). */
static int io_wait(int fd, usmc_sock *s, int flags, uint64_t deadline,
		   size_t done, usmc_sig_hold *hold)
{
	int eno = EAGAIN, w;

	if (!no_wait(s, flags)) {
		/* a timeout makes any signal handler end the wait, as in the
		 * kernel's sock_intr_errno */
		w = usmc_wait_held(
			deadline,
			deadline ? USMC_INTR_ALWAYS : USMC_INTR_RESTART, hold);
		if (w == EINTR)
			eno = EINTR;
		else if (w == 0 && usmc_sock_get(fd) != s)
			eno = EBADF;
		else if (w == 0)
			return 1;
	}
	if (done && eno != EBADF)
		return 0;
	usmc_sock_unlock();
	errno = eno;
	return -1;
}

/* The SMC-R part of a send (|is_send|) or receive, lock held and dropped
 * on return: moves bytes through the core until done, waiting for data
 * or room as the socket's blocking mode and timeout say. A send moves all
 * of |len| when it may block; a receive returns what it got unless
 * MSG_WAITALL. Returns the bytes moved, or -1 with errno set when none. */
static ssize_t io_loop(int fd, usmc_sock *s, void *buf, size_t len, int flags,
		       int is_send)
{
	uint64_t tmo = is_send ? s->sndtimeo : s->rcvtimeo;
	uint64_t deadline = tmo ? usmc_rt_now() + tmo : 0;
	usmc_sig_hold hold = {0};
	size_t done = 0;
	ssize_t r;

	for (;;) {
		if (s->mode == USMC_SOCK_TCP) {
			/* fell back while waiting (usmc_sock_fallback_late):
			 * nothing had moved, so done is 0 */
			usmc_sock_unlock();
			usmc_sig_release(&hold);
			r = is_send ? usmc_real()->send(fd, buf, len, flags)
				    : usmc_real()->recv(fd, buf, len, flags);
			return r;
		}
		if (is_send)
			r = usmc_smc_write(s, (const uint8_t *)buf + done,
					   len - done);
		else
			r = usmc_smc_read(s, (uint8_t *)buf + done, len - done);
		if (r > 0 || (r == 0 && is_send)) {
			done += (size_t)r;
			if (done == len || (!is_send && !(flags & MSG_WAITALL)))
				break;
			continue;
		}
		/* a receive: end of stream, or nothing asked for */
		if (!is_send && (r == 0 || len == 0))
			break;
		if (r == USMC_ERR_WOULDBLOCK) {
			int w = io_wait(fd, s, flags, deadline, done, &hold);

			if (w < 0) {
				usmc_sig_release(&hold);
				return -1;
			}
			if (w == 0)
				break;
			continue;
		}
		if (done)
			break;
		usmc_sock_unlock();
		usmc_sig_release(&hold);
		errno = usmc_errno_from((int)r);
		/* as the kernel: EPIPE raises SIGPIPE unless MSG_NOSIGNAL */
		if (is_send && errno == EPIPE && !(flags & MSG_NOSIGNAL)) {
			pthread_kill(pthread_self(), SIGPIPE);
			errno = EPIPE;
		}
		return -1;
	}
	if (is_send)
		s->bytes_sent += done;
	else
		s->bytes_recv += done;
	usmc_sock_unlock();
	usmc_sig_release(&hold);
	return (ssize_t)done;
}

/* send and recv: the kernel's for the sockets it serves, io_loop for
 * SMC-R. */
static ssize_t io_call(int fd, void *buf, size_t len, int flags, int is_send)
{
	usmc_sock *s;
	ssize_t r;

	if (usmc_sock_lock())
		return -1;
	switch (io_begin(fd, flags, is_send ? EPIPE : ENOTCONN, &s)) {
	case IO_ERR:
		return -1;
	case IO_KERNEL:
		if (!is_send && s && !(flags & MSG_OOB) &&
		    __atomic_load_n(&s->decl_check, __ATOMIC_RELAXED) &&
		    usmc_hs_crossed_decline(s, fd, flags))
			return -1;
		r = is_send ? usmc_real()->send(fd, buf, len, flags)
			    : usmc_real()->recv(fd, buf, len, flags);
		/* once the kernel's for good, its own counts go on */
		if (r > 0 && s &&
		    !__atomic_load_n(&s->kernel, __ATOMIC_RELAXED))
			__atomic_fetch_add(is_send ? &s->bytes_sent
						   : &s->bytes_recv,
					   (uint64_t)r, __ATOMIC_RELAXED);
		return r;
	case IO_SMC:
		break;
	}
	if (flags & (is_send ? MSG_OOB : MSG_PEEK | MSG_OOB)) {
		usmc_sock_unlock();
		errno = EOPNOTSUPP;
		return -1;
	}
	if (!is_send && s->rd_shut) {
		usmc_sock_unlock();
		return 0;
	}
	return io_loop(fd, s, buf, len, flags, is_send);
}

ssize_t usmc_send(int fd, const void *buf, size_t len, int flags)
{
	return io_call(fd, (void *)buf, len, flags, 1);
}

ssize_t usmc_recv(int fd, void *buf, size_t len, int flags)
{
	return io_call(fd, buf, len, flags, 0);
}

ssize_t usmc_write(int fd, const void *buf, size_t len)
{
	return usmc_send(fd, buf, len, 0);
}

ssize_t usmc_read(int fd, void *buf, size_t len)
{
	return usmc_recv(fd, buf, len, 0);
}

int usmc_shutdown(int fd, int how)
{
	usmc_sock *s;
	int r;

	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	usmc_sock_use(s);
	if (s && s->mode == USMC_SOCK_HANDSHAKE && !s->app_nonblock) {
		wait_handshake(s, USMC_INTR_NONE);
		s = usmc_sock_get(
			fd); /* closed meanwhile: the kernel's EBADF */
	}
	if (!s || s->mode != USMC_SOCK_SMCR) {
		usmc_sock_unlock();
		return usmc_real()->shutdown(fd, how);
	}
	if (how != SHUT_WR && how != SHUT_RDWR && how != SHUT_RD) {
		usmc_sock_unlock();
		errno = EINVAL;
		return -1;
	}
	r = 0;
	if (how != SHUT_WR) {
		s->rd_shut = 1; /* reads return 0, as RCV_SHUTDOWN */
		usmc_epoll_sock_changed(s);
	}
	if (how != SHUT_RD)
		r = usmc_smc_shutdown_write(s);
	usmc_sock_unlock();
	if (r < 0) {
		errno = usmc_errno_from(r);
		return -1;
	}
	return 0;
}

void usmc_sock_close_at_exit(void)
{
	for (int fd = 0; fd < usmc_g.nsocks; fd++) {
		usmc_sock *s = usmc_g.socks[fd];

		if (s && s->fd == fd && s->mode == USMC_SOCK_SMCR && s->conn) {
			usmc_rt_log(USMC_LOG_DEBUG,
				    "fd %d: open at exit: closing over SMC-R",
				    fd);
			usmc_smc_close(s, 0);
		}
	}
}

/* Lock held: what closing |fd| means to usmc, short of the kernel close. */
void usmc_sock_close_record(int fd)
{
	usmc_sock *s;

	if (usmc_fd_flags(fd) & USMC_FDF_EPOLL)
		usmc_epoll_closed(fd);
	if (usmc_fdtab_drop(fd))
		return; /* another fd still names the socket */
	s = usmc_sock_get(fd);
	if (s && s->synopt && usmc_hs_synopt() && s->mode == USMC_SOCK_LISTEN)
		usmc_synopt_forget(usmc_hs_synopt(), fd);
	if (s) {
		if (s->mode == USMC_SOCK_LISTEN) {
			/* Children in handshake or queued go with it. */
			usmc_sock *c, *next;

			for (c = s->q_head; c; c = next) {
				int cfd = c->fd;

				next = c->q_next;
				usmc_sock_free(c);
				usmc_real()->close(cfd);
			}
			s->q_head = s->q_tail = NULL;
			for (int i = 0; i < usmc_g.nsocks; i++) {
				c = usmc_g.socks[i];
				if (c && c->lsock == s && !c->dead) {
					usmc_sock_free(c);
					usmc_real()->close(i);
				}
			}
		}
		if (s->mode == USMC_SOCK_SMCR && s->conn && !s->is_server)
			usmc_hs_short_note(s);
		if (s->mode == USMC_SOCK_SMCR && s->conn) {
			/* As the kernel's smc_close_stream_wait: give the
			 * send buffer up to 2 s to drain before closing. */
			uint64_t end = usmc_rt_now() + CLOSE_DRAIN_NS;

			while (!s->app_nonblock && usmc_sock_get(fd) == s &&
			       s->conn && usmc_smc_unsent(s) &&
			       !usmc_smc_error(s) && usmc_rt_now() < end)
				usmc_wait(end, USMC_INTR_NONE);
			if (usmc_sock_get(fd) == s && s->conn)
				usmc_smc_close(s, 1);
		}
		if (s->waiters) {
			/* accept() waiters free it when they wake */
			s->listen_closed = 1;
			usmc_loop_watch(s, 0);
			usmc_g.socks[fd] = NULL;
			usmc_fdflag_set(fd, USMC_FDF_SOCK, 0);
			usmc_sock_wake_all();
		} else {
			usmc_sock_free(s);
		}
	}
}

int usmc_close(int fd)
{
	if (!usmc_fd_flags(fd))
		return usmc_real()->close(fd);
	if (usmc_sock_lock())
		return -1;
	usmc_sock_close_record(fd);
	usmc_sock_unlock();
	return usmc_real()->close(fd);
}

int usmc_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	usmc_sock *s;

	if (level == SOL_SOCKET && name == SO_ERROR && val && len &&
	    *len >= sizeof(int)) {
		int e = -1;

		if (usmc_sock_lock())
			return -1;
		s = usmc_sock_get(fd);
		if (s && s->mode == USMC_SOCK_FAILED && !s->error_reported) {
			s->error_reported = 1;
			e = s->error;
		} else if (s && s->mode == USMC_SOCK_HANDSHAKE) {
			e = 0;
		}
		usmc_sock_unlock();
		if (e >= 0) {
			*(int *)val = e;
			*len = sizeof(int);
			return 0;
		}
	}
	return usmc_real()->getsockopt(fd, level, name, val, len);
}

int usmc_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	const struct timeval *tv = val;
	usmc_sock *s;
	uint64_t ns;

	if (usmc_real()->setsockopt(fd, level, name, val, len))
		return -1;
	if (level == IPPROTO_TCP && name == TCP_NODELAY && len >= sizeof(int) &&
	    !usmc_sock_lock()) {
		/* the kernel's for TCP; the core's autocorking for SMC-R */
		s = usmc_sock_get(fd);
		if (s) {
			s->nodelay = *(const int *)val != 0;
			usmc_smc_set_nodelay(s, s->nodelay);
		}
		usmc_sock_unlock();
		return 0;
	}
	/* The kernel keeps them for fallback sockets; SMC-R waits use ours. */
	if (level != SOL_SOCKET ||
	    (name != SO_RCVTIMEO && name != SO_SNDTIMEO) || len < sizeof(*tv) ||
	    usmc_sock_lock())
		return 0;
	ns = (uint64_t)tv->tv_sec * USMC_NS_PER_SEC +
	     (uint64_t)tv->tv_usec * 1000;
	s = usmc_sock_get(fd);
	if (s) {
		if (name == SO_RCVTIMEO)
			s->rcvtimeo = ns;
		else
			s->sndtimeo = ns;
	}
	usmc_sock_unlock();
	return 0;
}

int usmc_get_info(int fd, usmc_sock_info *info)
{
	usmc_sock *s;

	if (!info) {
		errno = EINVAL;
		return -1;
	}
	memset(info, 0, sizeof(*info));
	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	if (!s) {
		usmc_sock_unlock();
		if (usmc_real()->fcntl(fd, F_GETFD) < 0)
			return -1;
		info->mode = USMC_SOCK_UNMANAGED;
		return 0;
	}
	if (s->mode == USMC_SOCK_HANDSHAKE && s->hs == USMC_HS_UNCLAIMED &&
	    !s->lsock) {
		/* Asking for the path is a use: the answer is the final one,
		 * as after the kernel's accept (a nonblocking socket may
		 * still say handshake). */
		usmc_sock_use(s);
		if (!s->app_nonblock && wait_handshake(s, USMC_INTR_NONE) &&
		    errno == EBADF) {
			usmc_sock_unlock();
			return -1;
		}
	}
	info->mode = s->mode;
	info->is_server = s->is_server;
	info->fallback_code = s->fb_code;
	if (s->fb_code) {
		snprintf(info->fallback_name, sizeof(info->fallback_name), "%s",
			 usmc_decline_name(s->fb_code));
		snprintf(info->fallback_desc, sizeof(info->fallback_desc), "%s",
			 usmc_clc_decl_str(s->fb_code));
	}
	usmc_sock_detail(s, info->fallback_detail,
			 sizeof(info->fallback_detail));
	info->peer_diagnosis = s->peer_diag;
	snprintf(info->transport, sizeof(info->transport), "%s",
		 usmc_g.cfg.transport);
	info->device = -1;
	usmc_sock_bytes(s, &info->bytes_sent, &info->bytes_received);
	info->smc_version = s->smc_version;
	if (s->conn)
		usmc_smc_info(s, info);
	usmc_sock_unlock();
	return 0;
}

void usmc_get_stats(usmc_stats *stats)
{
	if (usmc_sock_lock()) {
		memset(stats, 0, sizeof(*stats));
		return;
	}
	*stats = usmc_g.stats;
	stats->link_groups = usmc_smc_lgr_count();
	stats->preload_reentries = usmc_reentry_count();
	usmc_smc_icrc_counts(&stats->icrc_inferred, &stats->icrc_dropped);
	usmc_sock_unlock();
}

int usmc_config_set(const char *key, const char *value)
{
	int r;

	if (usmc_sock_lock())
		return -1;
	r = usmc_config_apply(&usmc_g.cfg, key, value);
	if (!r && key && (!strcmp(key, "debug") || !strncmp(key, "log_", 4)))
		usmc_rt_log_configure(&usmc_g.cfg);
	usmc_sock_unlock();
	if (r) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int usmc_ioctl(int fd, unsigned long req, void *arg)
{
	usmc_sock *s;

	if ((req != FIONREAD && req != FIONBIO) || !arg)
		return usmc_real()->ioctl(fd, req, arg);
	if (req == FIONBIO)
		return usmc_fdtab_fionbio(fd, *(int *)arg != 0);
	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	usmc_sock_use(s);
	if (s && s->mode == USMC_SOCK_SMCR) {
		size_t n = usmc_smc_readable(s);

		*(int *)arg = n > INT32_MAX ? INT32_MAX : (int)n;
		usmc_sock_unlock();
		return 0;
	}
	usmc_sock_unlock();
	return usmc_real()->ioctl(fd, req, arg);
}
