/* SPDX-License-Identifier: MIT */
/*
 * The fd table: the usmc_sock record of each fd, the lock-free per-fd
 * flags the preload reads, dup and close_range, the fd flags (O_NONBLOCK
 * as the app sees it), and what fork() does to the table.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sockios.h>
#include <linux/tcp.h> /* tcpi_bytes_acked, which glibc's lacks */
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "usmc_real.h"
#include "usmc_sock.h"

/*
 * Flags per fd, read without the lock by the preload's fast path: a
 * zero says "not usmc's", so read() of a file never takes the lock.
 * Chunks are never freed, so a reader never sees freed memory; a stale
 * flag only sends a call down the slower, still correct, path.
 */
uint8_t *usmc_fdflags_tab[USMC_FDF_CHUNKS];

void usmc_fdflag_set(int fd, int flag, int on)
{
	uint8_t *c, *fresh;
	int ci = fd / USMC_FDF_CHUNK;

	if (fd < 0 || ci >= USMC_FDF_CHUNKS)
		return;
	c = __atomic_load_n(&usmc_fdflags_tab[ci], __ATOMIC_ACQUIRE);
	if (!c) {
		if (!on)
			return;
		fresh = calloc(USMC_FDF_CHUNK, 1);
		if (!fresh)
			return;
		c = NULL;
		if (!__atomic_compare_exchange_n(&usmc_fdflags_tab[ci], &c,
						 fresh, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			free(fresh);
		c = __atomic_load_n(&usmc_fdflags_tab[ci], __ATOMIC_ACQUIRE);
	}
	if (on)
		__atomic_fetch_or(&c[fd % USMC_FDF_CHUNK], (uint8_t)flag,
				  __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&c[fd % USMC_FDF_CHUNK], (uint8_t)~flag,
				   __ATOMIC_RELEASE);
}

int usmc_fd_flags(int fd)
{
	return usmc_fd_flags_inline(fd);
}

/* The kernel's counts of what the application moved through a TCP
 * socket: bytes written (sent once, not counting retransmissions, plus
 * those not sent yet) and read (received less what waits to be read; the
 * peer's FIN counts one in tcpi_bytes_received). Returns -1 if unknown. */
static int kernel_bytes(int fd, uint64_t *sent, uint64_t *recv)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	struct pollfd p = {.fd = fd, .events = POLLRDHUP};
	int inq = 0;

	memset(&ti, 0, sizeof(ti));
	if (usmc_real()->getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) ||
	    l < offsetof(struct tcp_info, tcpi_bytes_retrans) +
			    sizeof(ti.tcpi_bytes_retrans) ||
	    usmc_real()->ioctl(fd, SIOCINQ, &inq) ||
	    usmc_real()->poll(&p, 1, 0) < 0)
		return -1;
	*sent = ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans +
		ti.tcpi_notsent_bytes;
	*recv = ti.tcpi_bytes_received - (uint64_t)inq -
		((p.revents & POLLRDHUP) && ti.tcpi_bytes_received ? 1 : 0);
	return 0;
}

/*
 * Lock held. A connected plain TCP or fallback socket stays the kernel's
 * until it is closed: nothing of usmc's is left to do on its data path.
 * Its fd is marked USMC_FDF_KERNEL, so that the preload sends its data,
 * poll and epoll calls straight to libc, without the lock (docs/preload.md,
 * "Sockets usmc does not accelerate"). Not while it is fresh (connect or
 * listen may still make it usmc's), watched by the loop or queued on a
 * listener, or before its first read looked for a crossed Decline.
 */
void usmc_sock_kernel_mark(usmc_sock *s, int fd)
{
	if (!s || s->mode != USMC_SOCK_TCP || s->fresh || s->ep_events ||
	    s->in_hs_list || s->lsock || s->in_lq ||
	    __atomic_load_n(&s->decl_check, __ATOMIC_RELAXED) ||
	    (usmc_fd_flags(fd) & USMC_FDF_KERNEL) || usmc_sock_get(fd) != s)
		return;
	if (!s->kernel) {
		/* With no CLC byte and nothing counted yet, what the kernel
		 * counted so far is 0 (three system calls less a connection) */
		if (s->kclean &&
		    !__atomic_load_n(&s->bytes_sent, __ATOMIC_RELAXED) &&
		    !__atomic_load_n(&s->bytes_recv, __ATOMIC_RELAXED))
			s->kbase_sent = s->kbase_recv = 0;
		else if (kernel_bytes(fd, &s->kbase_sent, &s->kbase_recv))
			return;
		__atomic_store_n(&s->kernel, 1, __ATOMIC_RELAXED);
	}
	/* a shadow entry left behind would never be served again */
	if (usmc_epoll_kernel_fd(fd)) {
		if (s->kernel_err != errno)
			usmc_rt_log(USMC_LOG_ERR,
				    "fd %d: stays usmc's: its epoll entry "
				    "cannot move to the kernel set: %s",
				    fd, strerror(errno));
		s->kernel_err = errno;
		return;
	}
	usmc_fdflag_set(fd, USMC_FDF_KERNEL, 1);
}

void usmc_sock_bytes(usmc_sock *s, uint64_t *sent, uint64_t *recv)
{
	uint64_t ks, kr;

	*sent = __atomic_load_n(&s->bytes_sent, __ATOMIC_RELAXED);
	*recv = __atomic_load_n(&s->bytes_recv, __ATOMIC_RELAXED);
	if (s->kernel && kernel_bytes(s->fd, &ks, &kr) == 0) {
		*sent += ks - s->kbase_sent;
		*recv += kr - s->kbase_recv;
	}
}

int usmc_sock_addr(usmc_sock *s, int peer, struct sockaddr_in *out)
{
	struct sockaddr_in *c = peer ? &s->addr_peer : &s->addr_local;
	uint8_t *ok = peer ? &s->addr_peer_ok : &s->addr_local_ok;
	socklen_t l = sizeof(*out);
	int r;

	if (*ok) {
		*out = *c;
		return 0;
	}
	r = peer ? usmc_real()->getpeername(s->fd, (struct sockaddr *)out, &l)
		 : usmc_real()->getsockname(s->fd, (struct sockaddr *)out, &l);
	if (r || out->sin_family != AF_INET)
		return -1;
	/* fixed: a peer once connected; a local address once bound to a
	 * port and, but for a listener, to an address (connect binds
	 * both) */
	if (peer || (out->sin_port && !s->fresh &&
		     (s->mode == USMC_SOCK_LISTEN ||
		      out->sin_addr.s_addr != htonl(INADDR_ANY)))) {
		*c = *out;
		*ok = 1;
	}
	return 0;
}

usmc_sock *usmc_sock_get(int fd)
{
	if (fd < 0 || fd >= usmc_g.nsocks)
		return NULL;
	return usmc_g.socks[fd];
}

/* Grows the table to hold |fd|. */
static int table_fit(int fd)
{
	if (fd >= USMC_FDF_MAX)
		return -1;
	if (fd >= usmc_g.nsocks) {
		int n = usmc_g.nsocks ? usmc_g.nsocks : 256;
		usmc_sock **t;

		while (n <= fd)
			n *= 2;
		t = realloc(usmc_g.socks, (size_t)n * sizeof(*t));
		if (!t)
			return -1;
		memset(t + usmc_g.nsocks, 0,
		       (size_t)(n - usmc_g.nsocks) * sizeof(*t));
		usmc_g.socks = t;
		usmc_g.nsocks = n;
	}
	return 0;
}

/* Lock held: |fd| stops naming its socket; the socket goes with its last
 * fd (the kernel's file description with its last close). Returns 1 if
 * the socket lives on under another fd. */
int usmc_fdtab_drop(int fd)
{
	usmc_sock *s = usmc_sock_get(fd);

	if (!s)
		return 0;
	usmc_epoll_fd_closed(fd);
	if (s->refs <= 1)
		return 0;
	usmc_g.socks[fd] = NULL;
	usmc_fdflag_set(fd, USMC_FDF_SOCK | USMC_FDF_KERNEL, 0);
	s->refs--;
	if (s->fd == fd) {
		/* The loop's registration is keyed by this fd: move it. */
		uint32_t ev = s->ep_events;

		usmc_loop_watch(s, 0);
		for (int i = 0; i < usmc_g.nsocks; i++)
			if (usmc_g.socks[i] == s) {
				s->fd = i;
				break;
			}
		usmc_loop_watch(s, ev);
	}
	return 1;
}

usmc_sock *usmc_sock_new(int fd)
{
	usmc_sock *s;

	if (table_fit(fd))
		return NULL;
	/* A record left by an fd closed behind our back is stale. */
	if (usmc_g.socks[fd] && !usmc_fdtab_drop(fd))
		usmc_sock_free(usmc_g.socks[fd]);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = fd;
	s->fresh = 1;
	s->refs = 1;
	s->mode = USMC_SOCK_TCP;
	usmc_g.socks[fd] = s;
	usmc_fdflag_set(fd, USMC_FDF_KERNEL, 0);
	usmc_fdflag_set(fd, USMC_FDF_SOCK, 1);
	usmc_stat_start();
	return s;
}

void usmc_sock_free(usmc_sock *s)
{
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	if (s->conn)
		usmc_smc_conn_free(s);
	usmc_smc_forget(s);
	free(s->clc_buf);
	if (usmc_g.socks[s->fd] == s) {
		usmc_g.socks[s->fd] = NULL;
		usmc_fdflag_set(s->fd, USMC_FDF_SOCK | USMC_FDF_KERNEL, 0);
	}
	usmc_hs_fc_release(s);
	free(s);
	usmc_stat_wake(); /* its row goes, should the publisher be idle */
}

/* In the parent after fork() (lock held): SMC listeners it never used
 * stop being accepted on (their connections wait in the kernel backlog
 * for whichever process accepts). Accepted connections that wait for
 * their owner now wait for a use: the child may be the one that serves. */
void usmc_sock_fork_parent(void)
{
	for (int i = 0; i < usmc_g.nsocks; i++) {
		usmc_sock *s = usmc_g.socks[i];

		if (!s || s->fd != i)
			continue;
		if (s->mode == USMC_SOCK_LISTEN && s->listen_smc &&
		    !s->listen_interest && s->ep_events)
			usmc_loop_watch(s, 0);
		if (s->mode == USMC_SOCK_HANDSHAKE &&
		    s->hs == USMC_HS_UNCLAIMED && !s->lsock) {
			s->deadline = 0;
			usmc_hs_list_del(s);
		}
	}
}

/* The one path by which the app changes O_NONBLOCK on a usmc fd: the
 * kernel call (ioctl FIONBIO if |fionbio|, |arg| its on/off; else
 * F_SETFL with flags |arg|) and the record, both under the lock, so the
 * record changes only when the kernel took it (not on a bad fd) and no
 * other thread's change comes between. An SMC listener's kernel file
 * is never made blocking, not even for a moment: its progress thread
 * accepts on it, and app_nonblock alone says how the app's accept
 * waits. */
static int nonblock_apply(int fd, int fionbio, long arg)
{
	usmc_sock *s;
	int on, kernel_on, r;

	on = fionbio ? arg != 0 : !!(arg & O_NONBLOCK);
	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	kernel_on = on || (s && s->mode == USMC_SOCK_LISTEN && s->listen_smc);
	if (fionbio)
		r = usmc_real()->ioctl(fd, FIONBIO, &kernel_on);
	else
		r = usmc_real()->fcntl(fd, F_SETFL,
				       (int)(arg & ~O_NONBLOCK) |
					       (kernel_on ? O_NONBLOCK : 0));
	if (r == 0 && s)
		s->app_nonblock = on;
	usmc_sock_unlock();
	return r;
}

int usmc_fdtab_fionbio(int fd, int on)
{
	return nonblock_apply(fd, 1, on);
}

/* FIONBIO touches O_NONBLOCK alone: no F_GETFL/F_SETFL pair that
 * another thread's F_SETFL could come between. */
int usmc_set_nonblock(int fd, int on)
{
	return nonblock_apply(fd, 1, on);
}

int usmc_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;
	usmc_sock *s;
	int r;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if (cmd == F_SETFL)
		return nonblock_apply(fd, 0, arg);
	if (cmd == F_GETFL) {
		r = usmc_real()->fcntl(fd, F_GETFL);
		if (r < 0 || usmc_sock_lock())
			return r;
		s = usmc_sock_get(fd);
		/* The kernel's for good: the preload sends its fcntl calls
		 * on a marked fd straight to libc, so the file's own flag is
		 * the app's (a dup, unmarked until its first use, would
		 * otherwise read a stale app_nonblock). */
		if (s && __atomic_load_n(&s->kernel, __ATOMIC_RELAXED))
			s->app_nonblock = !!(r & O_NONBLOCK);
		else if (s)
			r = (r & ~O_NONBLOCK) |
			    (s->app_nonblock ? O_NONBLOCK : 0);
		usmc_sock_unlock();
		return r;
	}
	return usmc_real()->fcntl(fd, cmd, arg);
}

/* Lock held: |newfd| names the same socket as |s|. */
static void slot_add(int newfd, usmc_sock *s)
{
	if (table_fit(newfd))
		return;
	usmc_g.socks[newfd] = s;
	s->refs++;
	/* marked again on its first use (usmc_sock_kernel_mark) */
	usmc_fdflag_set(newfd, USMC_FDF_KERNEL, 0);
	usmc_fdflag_set(newfd, USMC_FDF_SOCK, 1);
}

/* dup family: the kernel makes the fd; usmc's record is shared, and an fd
 * that dup2/dup3 replaces is closed as close() would. */
static int dup_impl(int oldfd, int newfd, int flags, int cmd)
{
	usmc_sock *s;
	int r;

	if (usmc_sock_lock())
		return -1;
	if (cmd < 0 && newfd != oldfd && usmc_fd_flags(newfd) &&
	    usmc_real()->fcntl(oldfd, F_GETFD) >= 0)
		usmc_sock_close_record(newfd);
	if (cmd >= 0)
		r = usmc_real()->fcntl(oldfd, cmd, newfd);
	else if (newfd < 0)
		r = usmc_real()->dup(oldfd);
	else if (flags < 0)
		r = usmc_real()->dup2(oldfd, newfd);
	else
		r = usmc_real()->dup3(oldfd, newfd, flags);
	if (r >= 0 && r != oldfd) {
		int e = errno;

		s = usmc_sock_get(oldfd);
		if (s && usmc_sock_get(r) != s) {
			if (usmc_sock_get(r) && !usmc_fdtab_drop(r))
				usmc_sock_free(usmc_sock_get(r));
			slot_add(r, s);
		}
		errno = e;
	}
	usmc_sock_unlock();
	return r;
}

int usmc_dup(int oldfd)
{
	return dup_impl(oldfd, -1, -1, -1);
}

int usmc_dup2(int oldfd, int newfd)
{
	return dup_impl(oldfd, newfd, -1, -1);
}

int usmc_dup3(int oldfd, int newfd, int flags)
{
	return dup_impl(oldfd, newfd, flags, -1);
}

int usmc_fcntl_dupfd(int fd, int cmd, int minfd)
{
	return dup_impl(fd, minfd, -1, cmd);
}

/*
 * After fork(), in the child (the lock is held by this, the only, thread).
 * SMC-R connections and handshakes stay with the parent, whose process
 * owns the transport and the RDMA state: in the child they are failed
 * sockets (I/O gives ENOTCONN/EPIPE, close only closes the child's fd).
 * TCP and fallback sockets are kernel sockets and keep working. SMC
 * listeners accept plain TCP in the child (see docs/preload.md).
 */
void usmc_sock_fork_child(void)
{
	usmc_notify_fork_child();
	usmc_hs_fork_child();
	for (int i = 0; i < usmc_g.nsocks; i++) {
		usmc_sock *s = usmc_g.socks[i];

		if (!s || s->fd != i)
			continue;
		if (s->lsock || s->dead) {
			/* The parent's runtime accepted it and the app here
			 * never got it: close the child's copy, which would
			 * otherwise keep the connection open after the parent
			 * closes it. */
			s->conn = NULL;
			s->in_hs_list = 0;
			s->ep_events = 0;
			s->in_pend = 0;
			usmc_sock_free(s);
			usmc_real()->close(i);
			continue;
		}
		s->ep_events = 0; /* the loop's epoll set is the parent's */
		s->in_hs_list = 0;
		s->hs_prev = s->hs_next = NULL;
		s->in_pend = 0;
		s->ev = 0;
		s->deadline = 0;
		s->q_next = NULL;
		s->lsock = NULL;
		/* the marks are shared with the parent: leave them alone */
		s->synopt = 0;
		if (s->mode == USMC_SOCK_HANDSHAKE &&
		    s->hs == USMC_HS_UNCLAIMED) {
			/* Nothing of it is bound to the parent yet: whichever
			 * process uses it first runs the handshake. */
			continue;
		}
		if (s->mode == USMC_SOCK_SMCR ||
		    s->mode == USMC_SOCK_HANDSHAKE) {
			s->conn = NULL;
			s->clc_buf = NULL;
			s->fc_hold = 0;
			s->mode = USMC_SOCK_FAILED;
			s->hs = USMC_HS_NONE;
			s->error = ENOTCONN;
			s->error_reported = 1;
			snprintf(s->fb_detail, sizeof(s->fb_detail),
				 "SMC-R connection kept by the parent process");
		} else if (s->mode == USMC_SOCK_LISTEN) {
			/* the parent's queue is the parent's; the child accepts
			 * on its own once it shows interest (usmc_sock_use) */
			s->q_head = s->q_tail = NULL;
			s->q_len = 0;
			s->listen_interest = 0;
			/* the parent's epoll sets are forgotten here too */
			s->ep_kern = s->kerr = s->bwaiters = 0;
		}
	}
	usmc_g.mode_gen++;
}

/* close_range: usmc's fds in the range are closed as by usmc_close (the
 * kernel then closes them all); CLOSE_RANGE_CLOEXEC only marks. */
int usmc_close_range(unsigned int first, unsigned int last, int flags)
{
	/* a runtime never started has no fds of its own */
	if (!(flags & CLOSE_RANGE_CLOEXEC) &&
	    __atomic_load_n(&usmc_g.thread_started, __ATOMIC_RELAXED) &&
	    !usmc_sock_lock()) {
		unsigned int hi = (unsigned int)usmc_g.nsocks;

		for (unsigned int fd = first; fd <= last && fd < hi; fd++)
			if (usmc_fd_flags((int)fd))
				usmc_sock_close_record((int)fd);
		/* epoll fds beyond the socket table */
		for (unsigned int fd = hi > first ? hi : first;
		     fd <= last && fd < USMC_FDF_MAX; fd++) {
			if (!usmc_fdflags_tab[fd / USMC_FDF_CHUNK]) {
				fd = (fd / USMC_FDF_CHUNK + 1) *
					     USMC_FDF_CHUNK -
				     1;
				continue;
			}
			if (usmc_fd_flags((int)fd))
				usmc_sock_close_record((int)fd);
		}
		usmc_sock_unlock();
	}
	return usmc_real()->close_range(first, last, flags);
}
