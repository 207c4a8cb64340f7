/* SPDX-License-Identifier: MIT */
/*
 * The library socket API. The fd is the kernel TCP socket; usmc_sock holds
 * what usmc adds to it. Sockets usmc does not manage (not AF_INET stream,
 * or fds it never saw) go straight to the kernel.
 *
 * Explicit mode: the rules (USMC_SMC_PORTS) say which ports speak SMC. A
 * client connecting elsewhere, or a server listening elsewhere, is plain TCP
 * and never writes or reads a CLC byte.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include "usmc_clc.h"
#include "usmc_conv.h"
#include "usmc_rt.h"

static const uint8_t smcr_eyecatcher[4] = {0xE2, 0xD4, 0xC3, 0xD9};

/* Retry interval while only part of a CLC header has arrived. */
#define PARTIAL_RECHECK_NS (2 * USMC_NS_PER_MS)
/* Guard against a peer that stalls mid-handshake: a little more than the
 * core's CLC_WAIT_TIME, after which connect fails as the kernel's does. */
#define HS_GUARD_NS	   (8 * USMC_NS_PER_SEC)
/* How long an SMC-R connection outlives its peer's TCP close. */
#define PEER_GONE_GRACE_NS (2 * USMC_NS_PER_SEC)
/* SMC_MAX_STREAM_WAIT_TIMEOUT */
#define CLOSE_DRAIN_NS	   (2 * USMC_NS_PER_SEC)

/* poll() callers that also wait for kernel fds get an eventfd each. */
#define MAX_POLL_WAITERS 64
static int poll_waiters[MAX_POLL_WAITERS];
static int n_poll_waiters;

usmc_sock *usmc_sock_get(int fd)
{
	if (fd < 0 || fd >= usmc_g.nsocks)
		return NULL;
	return usmc_g.socks[fd];
}

static void wake_all(void)
{
	uint64_t one = 1;

	usmc_rt_broadcast();
	for (int i = 0; i < n_poll_waiters; i++)
		if (write(poll_waiters[i], &one, sizeof(one)) < 0) {
			/* full counter: already signalled */
		}
}

static void sock_free(usmc_sock *s);
static void server_start_clc(usmc_sock *s);

/*
 * As the kernel's smc_server_lgr_pending: a server runs one CLC handshake
 * at a time, from reading the Proposal to ESTABLISHED or fallback, so the
 * second of two concurrent connections from a peer joins the link group
 * the first created instead of making its own first contact. Waiting
 * children leave their Proposal unread in the socket. (Clients are not
 * serialised: they send their Proposal at once, as the kernel does.)
 */
static usmc_sock *hs_owner;
static usmc_sock *dead_list;

void usmc_sock_reap(void)
{
	while (dead_list) {
		usmc_sock *s = dead_list;
		int fd = s->fd;

		dead_list = s->dead_next;
		sock_free(s);
		close(fd);
	}
}
static usmc_sock *hs_q_head, *hs_q_tail;

static void hs_release(usmc_sock *s)
{
	usmc_sock *next;

	if (hs_owner != s)
		return;
	hs_owner = NULL;
	next = hs_q_head;
	if (next) {
		hs_q_head = next->q_next;
		if (!hs_q_head)
			hs_q_tail = NULL;
		next->q_next = NULL;
		server_start_clc(next);
	}
}

static void hs_q_remove(usmc_sock *s)
{
	usmc_sock **pp, *prev = NULL;

	for (pp = &hs_q_head; *pp; prev = *pp, pp = &(*pp)->q_next)
		if (*pp == s) {
			*pp = s->q_next;
			if (hs_q_tail == s)
				hs_q_tail = prev;
			s->q_next = NULL;
			return;
		}
}

static usmc_sock *sock_new(int fd)
{
	usmc_sock *s;

	if (fd >= usmc_g.nsocks) {
		int n = usmc_g.nsocks ? usmc_g.nsocks : 256;
		usmc_sock **t;

		while (n <= fd)
			n *= 2;
		t = realloc(usmc_g.socks, (size_t)n * sizeof(*t));
		if (!t)
			return NULL;
		memset(t + usmc_g.nsocks, 0,
		       (size_t)(n - usmc_g.nsocks) * sizeof(*t));
		usmc_g.socks = t;
		usmc_g.nsocks = n;
	}
	/* A record left by an fd closed behind our back is stale. */
	if (usmc_g.socks[fd])
		sock_free(usmc_g.socks[fd]);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = fd;
	s->fresh = 1;
	s->mode = USMC_SOCK_TCP;
	usmc_g.socks[fd] = s;
	return s;
}

static void sock_free(usmc_sock *s)
{
	if (s->hs == USMC_HS_QUEUED)
		hs_q_remove(s);
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	if (s->conn)
		usmc_smc_conn_free(s);
	usmc_smc_forget(s);
	free(s->clc_buf);
	if (usmc_g.socks[s->fd] == s)
		usmc_g.socks[s->fd] = NULL;
	if (hs_owner == s)
		hs_release(s);
	free(s);
}

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

static int is_smc_port(uint16_t port)
{
	return usmc_g.cfg.smc_ports_set &&
	       usmc_portset_has(&usmc_g.cfg.smc_ports, port);
}

static void set_fallback(usmc_sock *s, uint32_t code, const char *detail)
{
	s->mode = USMC_SOCK_TCP;
	s->fb_code = code;
	snprintf(s->fb_detail, sizeof(s->fb_detail), "%s", detail);
}

/* Called whenever a socket leaves USMC_SOCK_HANDSHAKE. */
void usmc_sock_hs_done(usmc_sock *s)
{
	usmc_sock *l = s->lsock;

	s->hs = USMC_HS_NONE;
	s->deadline = 0;
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	hs_release(s);
	free(s->clc_buf);
	s->clc_buf = NULL;
	s->clc_have = s->clc_need = 0;
	if (s->mode == USMC_SOCK_TCP) {
		usmc_g.stats.conns_fallback++;
		usmc_rt_log(1, "fd %d: TCP fallback: %s 0x%08x %s", s->fd,
			    usmc_decline_name(s->fb_code), s->fb_code,
			    s->fb_detail);
	} else if (s->mode == USMC_SOCK_SMCR) {
		usmc_g.stats.conns_smcr++;
		usmc_rt_log(1, "fd %d: SMC-R established", s->fd);
		/* The idle TCP connection tells us when the peer process is
		 * gone (below). */
		usmc_loop_watch(s, EPOLLRDHUP);
	} else if (s->mode == USMC_SOCK_FAILED) {
		usmc_g.stats.conns_failed++;
		usmc_rt_log(1, "fd %d: SMC handshake failed: %s", s->fd,
			    strerror(s->error));
	}
	if (s->is_server && l) {
		if (s->mode == USMC_SOCK_FAILED || l->listen_closed) {
			/* As the kernel drops the child: the client sees
			 * the TCP connection close. */
			if (!s->dead) {
				s->dead = 1;
				s->lsock = NULL;
				s->dead_next = dead_list;
				dead_list = s;
				usmc_loop_wake();
			}
		} else {
			s->q_next = NULL;
			if (l->q_tail)
				l->q_tail->q_next = s;
			else
				l->q_head = s;
			l->q_tail = s;
			l->q_len++;
		}
	}
	wake_all();
}

void usmc_sock_fallback(usmc_sock *s, uint32_t code, const char *detail)
{
	if (s->conn)
		usmc_smc_conn_free(s);
	set_fallback(s, code, detail);
	usmc_sock_hs_done(s);
}

static void sock_fail(usmc_sock *s, int err)
{
	if (s->conn)
		usmc_smc_conn_free(s);
	s->mode = USMC_SOCK_FAILED;
	s->error = err;
	usmc_sock_hs_done(s);
}

/* Starts the CLC exchange on a connected client socket. */
static void client_start_clc(usmc_sock *s)
{
	char detail[128] = "";
	int r;

	s->hs = USMC_HS_CLC;
	s->hs_guard = usmc_rt_now() + HS_GUARD_NS;
	s->deadline = s->hs_guard;
	usmc_hs_list_add(s);
	r = usmc_smc_conn_start(s, 0, detail, sizeof(detail));
	if (r > 0) {
		usmc_sock_fallback(s, (uint32_t)r, detail);
		return;
	}
	if (r < 0) {
		sock_fail(s, usmc_errno_from(r));
		return;
	}
	if (s->mode == USMC_SOCK_HANDSHAKE)
		usmc_loop_watch(
			s,
			EPOLLIN | (usmc_smc_clc_flush(s) > 0 ? EPOLLOUT : 0));
	usmc_loop_rearm_timer();
}

/* Reads CLC messages as they arrive: MSG_PEEK of the 8-byte header, then
 * exactly that message, so no application byte is consumed. */
static void clc_read(usmc_sock *s)
{
	while (s->mode == USMC_SOCK_HANDSHAKE && s->hs == USMC_HS_CLC) {
		ssize_t n;

		if (!s->clc_need) {
			uint8_t hdr[SMC_CLC_HDR_LEN];
			int len;

			n = recv(s->fd, hdr, sizeof(hdr),
				 MSG_PEEK | MSG_DONTWAIT);
			if (n == 0) {
				usmc_rt_log(1,
					    "fd %d: peer closed during the "
					    "CLC handshake",
					    s->fd);
				sock_fail(s, ECONNRESET);
				return;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR)
					return;
				sock_fail(s, errno);
				return;
			}
			if ((size_t)n < sizeof(hdr)) {
				/* Wait for the rest without spinning on a
				 * level-triggered EPOLLIN. */
				usmc_loop_watch(s, s->ep_events & ~EPOLLIN);
				s->deadline =
					usmc_rt_now() + PARTIAL_RECHECK_NS;
				return;
			}
			len = usmc_smc_clc_hdr_len(hdr);
			if (len < 0) {
				usmc_rt_log(0,
					    "fd %d: peer sent a bad CLC header "
					    "(%02x %02x %02x %02x ...)",
					    s->fd, hdr[0], hdr[1], hdr[2],
					    hdr[3]);
				sock_fail(s, EPROTO);
				return;
			}
			if (!s->clc_buf)
				s->clc_buf = malloc(USMC_CLC_BUF_MAX);
			if (!s->clc_buf) {
				sock_fail(s, ENOMEM);
				return;
			}
			s->clc_need = (size_t)len;
			s->clc_have = 0;
		}
		n = recv(s->fd, s->clc_buf + s->clc_have,
			 s->clc_need - s->clc_have, MSG_DONTWAIT);
		if (n == 0) {
			sock_fail(s, ECONNRESET);
			return;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			sock_fail(s, errno);
			return;
		}
		s->clc_have += (size_t)n;
		if (s->clc_have < s->clc_need)
			return;
		s->clc_need = 0;
		if (!s->conn && s->is_server &&
		    s->clc_buf[4] == SMC_CLC_DECLINE) {
			/* The client declined first (e.g. it has no
			 * device): TCP, and no Decline back. */
			char d[128];

			s->peer_diag = s->clc_have >= 20
					       ? usmc_get_be32(s->clc_buf + 16)
					       : 0;
			snprintf(d, sizeof(d), "peer declined: %s 0x%08x %s",
				 usmc_clc_decl_name(s->peer_diag), s->peer_diag,
				 usmc_clc_decl_str(s->peer_diag));
			usmc_sock_fallback(s, USMC_DECL_PEERDECL, d);
			return;
		}
		if (!s->conn && s->is_server) {
			char detail[128] = "";
			int r = usmc_smc_conn_start(s, 1, detail,
						    sizeof(detail));

			if (r > 0) {
				usmc_sock_fallback(s, (uint32_t)r, detail);
				return;
			}
			if (r < 0) {
				sock_fail(s, usmc_errno_from(r));
				return;
			}
		}
		if (usmc_smc_clc_in(s, s->clc_buf, s->clc_have) < 0 &&
		    s->mode == USMC_SOCK_HANDSHAKE) {
			sock_fail(s, EPROTO);
			return;
		}
		s->clc_have = 0;
		if (s->mode == USMC_SOCK_HANDSHAKE && usmc_smc_clc_flush(s) > 0)
			usmc_loop_watch(s, s->ep_events | EPOLLOUT);
	}
}

/* Server: the client speaks CLC; read its Proposal when it is our turn. */
static void server_start_clc(usmc_sock *s)
{
	if (hs_owner && hs_owner != s) {
		s->hs = USMC_HS_QUEUED;
		s->deadline = 0;
		s->q_next = NULL;
		if (hs_q_tail)
			hs_q_tail->q_next = s;
		else
			hs_q_head = s;
		hs_q_tail = s;
		usmc_loop_watch(s, 0);
		return;
	}
	hs_owner = s;
	s->hs = USMC_HS_CLC;
	s->hs_guard = usmc_rt_now() + HS_GUARD_NS;
	s->deadline = s->hs_guard;
	usmc_loop_watch(s, EPOLLIN);
	clc_read(s);
	usmc_loop_rearm_timer();
}

/* Server, explicit mode: is the client speaking CLC? Decide on the first
 * four bytes, by MSG_PEEK, so a TCP client loses nothing. */
static void server_peek_first(usmc_sock *s, uint64_t now)
{
	uint8_t b[4];
	ssize_t n = recv(s->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		n = -2;
	if (n == 0 || n == -1 ||
	    (n > 0 && memcmp(b, smcr_eyecatcher, (size_t)n) != 0)) {
		/* EOF, error or another protocol: TCP, untouched. */
		usmc_sock_fallback(s, USMC_DECL_PEERNOSMC,
				   "peer sent no CLC proposal");
		return;
	}
	if (n == 4) {
		server_start_clc(s);
		return;
	}
	if (now >= s->deadline) {
		usmc_sock_fallback(s, USMC_DECL_PEERNOSMC,
				   "peer sent no CLC proposal");
		return;
	}
	if (n > 0) {
		/* A prefix of the eyecatcher: look again shortly. */
		usmc_loop_watch(s, 0);
		s->deadline = now + PARTIAL_RECHECK_NS;
	}
}

static void do_accepts(usmc_sock *l)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(l->fd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		usmc_sock *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				usmc_rt_log(0, "accept on fd %d: %s", l->fd,
					    strerror(errno));
			return;
		}
		c = sock_new(fd);
		if (!c) {
			close(fd);
			continue;
		}
		c->fresh = 0;
		c->is_server = 1;
		c->lsock = l;
		c->port = l->port;
		c->mode = USMC_SOCK_HANDSHAKE;
		c->hs = USMC_HS_WAIT_FIRST;
		c->wait_end = usmc_rt_now() +
			      (uint64_t)usmc_g.cfg.clc_wait_ms * USMC_NS_PER_MS;
		c->deadline = c->wait_end;
		usmc_hs_list_add(c);
		usmc_loop_watch(c, EPOLLIN);
		server_peek_first(c, usmc_rt_now());
	}
}

void usmc_sock_on_event(usmc_sock *s, uint32_t events)
{
	if (s->mode == USMC_SOCK_LISTEN) {
		do_accepts(s);
		return;
	}
	if (s->mode == USMC_SOCK_SMCR) {
		/* The peer's TCP side closed. An orderly SMC close may still
		 * be on its way over RDMA (the two paths are not ordered), so
		 * give it a grace period before aborting. */
		usmc_loop_watch(s, 0);
		s->deadline = usmc_rt_now() + PEER_GONE_GRACE_NS;
		usmc_hs_list_add(s);
		usmc_loop_rearm_timer();
		return;
	}
	if (s->mode != USMC_SOCK_HANDSHAKE)
		return;
	switch (s->hs) {
	case USMC_HS_TCP_CONNECT: {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len))
			err = errno;
		if (err) {
			/* The app reads the connect error itself. */
			s->error = err;
			s->mode = USMC_SOCK_FAILED;
			s->error_reported = 0;
			usmc_sock_hs_done(s);
			return;
		}
		usmc_loop_watch(s, 0);
		client_start_clc(s);
		break;
	}
	case USMC_HS_WAIT_FIRST:
		server_peek_first(s, usmc_rt_now());
		break;
	case USMC_HS_CLC:
		if ((events & EPOLLOUT) && usmc_smc_clc_flush(s) == 0)
			usmc_loop_watch(s, s->ep_events & ~EPOLLOUT);
		if (s->mode == USMC_SOCK_HANDSHAKE &&
		    (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			clc_read(s);
		break;
	default:
		break;
	}
}

void usmc_sock_on_deadline(usmc_sock *s, uint64_t now)
{
	if (s->mode == USMC_SOCK_SMCR) {
		s->deadline = 0;
		usmc_hs_list_del(s);
		if (s->conn && !usmc_smc_peer_done(s)) {
			usmc_rt_log(0,
				    "fd %d: peer closed its TCP connection "
				    "without closing SMC-R: aborting",
				    s->fd);
			usmc_smc_abort(s);
		}
		return;
	}
	if (s->mode != USMC_SOCK_HANDSHAKE)
		return;
	if (s->hs == USMC_HS_WAIT_FIRST) {
		s->deadline = s->wait_end;
		usmc_loop_watch(s, EPOLLIN);
		server_peek_first(s, now);
		return;
	}
	if (s->hs == USMC_HS_CLC) {
		if (now < s->hs_guard) {
			/* a partial header recheck */
			s->deadline = s->hs_guard;
			usmc_loop_watch(s, s->ep_events | EPOLLIN);
			clc_read(s);
			return;
		}
		usmc_rt_log(0, "fd %d: CLC handshake timed out", s->fd);
		sock_fail(s, ETIMEDOUT);
	}
}

static int lock_init(void)
{
	if (usmc_rt_init())
		return -1;
	pthread_mutex_lock(&usmc_g.lock);
	return 0;
}

static void unlock(void)
{
	pthread_mutex_unlock(&usmc_g.lock);
}

int usmc_socket(int domain, int type, int protocol)
{
	int fd;
	usmc_sock *s;

	if (usmc_rt_init())
		return -1;
	fd = socket(domain, type, protocol);
	if (fd < 0)
		return -1;
	/* SMC-R (v2 in particular) runs over IPv4 TCP only. */
	if (domain != AF_INET || (type & 0xf) != SOCK_STREAM ||
	    (protocol != 0 && protocol != IPPROTO_TCP))
		return fd;
	pthread_mutex_lock(&usmc_g.lock);
	s = sock_new(fd);
	if (s)
		s->app_nonblock = !!(type & SOCK_NONBLOCK);
	unlock();
	if (!s) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	return fd;
}

int usmc_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	return bind(fd, addr, len);
}

int usmc_listen(int fd, int backlog)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof(sin);
	usmc_sock *s;
	int fl;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || (!s->fresh && s->mode != USMC_SOCK_LISTEN)) {
		unlock();
		return listen(fd, backlog);
	}
	if (listen(fd, backlog)) {
		int e = errno;

		unlock();
		errno = e;
		return -1;
	}
	if (s->mode == USMC_SOCK_LISTEN) {
		unlock(); /* a second listen() only changes the backlog */
		return 0;
	}
	s->fresh = 0;
	s->mode = USMC_SOCK_LISTEN;
	if (getsockname(fd, (struct sockaddr *)&sin, &slen) == 0)
		s->port = ntohs(sin.sin_port);
	s->listen_smc = is_smc_port(s->port);
	if (s->listen_smc) {
		/* The progress thread accepts, so the kernel fd must never
		 * block it; the app's view stays in app_nonblock. */
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		usmc_loop_watch(s, EPOLLIN);
		usmc_rt_log(1, "fd %d: listening on SMC port %u", fd, s->port);
	}
	unlock();
	return 0;
}

/* Applies accept4 flags to a child the progress thread accepted with
 * SOCK_NONBLOCK | SOCK_CLOEXEC. */
static void child_flags(usmc_sock *c, int flags)
{
	int fl = fcntl(c->fd, F_GETFL);

	c->app_nonblock = !!(flags & SOCK_NONBLOCK);
	if (fl >= 0 && !c->app_nonblock)
		fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
	if (!(flags & SOCK_CLOEXEC))
		fcntl(c->fd, F_SETFD, 0);
}

int usmc_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	usmc_sock *s, *c;
	int cfd;

	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
		errno = EINVAL;
		return -1;
	}
	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || s->mode != USMC_SOCK_LISTEN || !s->listen_smc) {
		int is_listen = s && s->mode == USMC_SOCK_LISTEN;
		uint16_t port = s ? s->port : 0;

		unlock();
		cfd = accept4(fd, addr, len, flags);
		if (cfd >= 0 && is_listen) {
			char d[64];

			pthread_mutex_lock(&usmc_g.lock);
			c = sock_new(cfd);
			if (c) {
				snprintf(d, sizeof(d),
					 "port %u is not an SMC port", port);
				c->fresh = 0;
				c->is_server = 1;
				c->port = port;
				c->app_nonblock = !!(flags & SOCK_NONBLOCK);
				set_fallback(c, USMC_DECL_PEERNOSMC, d);
			}
			unlock();
		}
		return cfd;
	}
	s->waiters++;
	while (!s->q_head && !s->listen_closed) {
		if (s->app_nonblock) {
			s->waiters--;
			unlock();
			errno = EAGAIN;
			return -1;
		}
		usmc_cond_wait_until(0);
	}
	s->waiters--;
	if (s->listen_closed) {
		if (!s->waiters)
			free(s);
		unlock();
		errno = EBADF;
		return -1;
	}
	c = s->q_head;
	s->q_head = c->q_next;
	if (!s->q_head)
		s->q_tail = NULL;
	s->q_len--;
	c->q_next = NULL;
	c->lsock = NULL;
	cfd = c->fd;
	child_flags(c, flags);
	unlock();
	if (addr && len && getpeername(cfd, addr, len)) {
		/* The peer may already have gone: report it on first I/O. */
		memset(addr, 0, *len);
	}
	return cfd;
}

int usmc_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return usmc_accept4(fd, addr, len, 0);
}

/* Waits, lock held, until |s| leaves HANDSHAKE. Returns 0 or -1/errno. */
static int wait_handshake(usmc_sock *s)
{
	int fd = s->fd;

	while (usmc_sock_get(fd) == s && s->mode == USMC_SOCK_HANDSHAKE)
		usmc_cond_wait_until(0);
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

int usmc_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	usmc_sock *s;
	uint16_t port;
	int r, e;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || !addr || addr->sa_family != AF_INET ||
	    len < sizeof(struct sockaddr_in)) {
		unlock();
		return connect(fd, addr, len);
	}
	if (!s->fresh) {
		if (s->mode == USMC_SOCK_HANDSHAKE) {
			e = s->app_nonblock ? EALREADY : 0;
			if (!e) {
				r = wait_handshake(s);
				unlock();
				return r;
			}
		} else if (s->mode == USMC_SOCK_FAILED) {
			e = s->error_reported ? ECONNABORTED : s->error;
			s->error_reported = 1;
		} else if (s->mode == USMC_SOCK_TCP) {
			unlock();
			return connect(fd, addr, len);
		} else {
			e = EISCONN;
		}
		unlock();
		errno = e;
		return -1;
	}
	port = sockaddr_port(addr);
	s->fresh = 0;
	s->port = port;
	if (!is_smc_port(port)) {
		char d[64];

		snprintf(d, sizeof(d), "port %u is not an SMC port", port);
		set_fallback(s, USMC_DECL_PEERNOSMC, d);
		usmc_g.stats.conns_fallback++;
		unlock();
		return connect(fd, addr, len);
	}
	s->mode = USMC_SOCK_HANDSHAKE;
	s->hs = USMC_HS_TCP_CONNECT;
	unlock();

	r = connect(fd, addr, len);
	e = errno;
	pthread_mutex_lock(&usmc_g.lock);
	if (usmc_sock_get(fd) != s) {
		unlock();
		errno = EBADF;
		return -1;
	}
	if (r && e == EINPROGRESS) {
		/* Nonblocking: the progress thread takes it from here. */
		usmc_hs_list_add(s);
		usmc_loop_watch(s, EPOLLOUT);
		unlock();
		errno = EINPROGRESS;
		return -1;
	}
	if (r) {
		/* TCP itself failed: the socket is as the kernel left it. */
		s->mode = USMC_SOCK_TCP;
		s->hs = USMC_HS_NONE;
		s->fresh = 1;
		unlock();
		errno = e;
		return -1;
	}
	client_start_clc(s);
	if (s->app_nonblock && s->mode == USMC_SOCK_HANDSHAKE) {
		unlock();
		errno = EINPROGRESS;
		return -1;
	}
	r = wait_handshake(s);
	unlock();
	return r;
}

/* Lock held. Returns 1 if the caller must not block. */
static int no_wait(usmc_sock *s, int flags)
{
	return s->app_nonblock || (flags & MSG_DONTWAIT);
}

ssize_t usmc_send(int fd, const void *buf, size_t len, int flags)
{
	usmc_sock *s;
	size_t done = 0;
	uint64_t deadline;
	ssize_t r;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	while (s && s->mode == USMC_SOCK_HANDSHAKE) {
		if (no_wait(s, flags)) {
			unlock();
			errno = EAGAIN;
			return -1;
		}
		if (wait_handshake(s)) {
			unlock();
			return -1;
		}
	}
	if (!s || s->mode != USMC_SOCK_SMCR) {
		int failed = s && s->mode == USMC_SOCK_FAILED;

		unlock();
		if (failed) {
			errno = EPIPE;
			return -1;
		}
		r = send(fd, buf, len, flags);
		if (r > 0 && s)
			__atomic_fetch_add(&s->bytes_sent, (uint64_t)r,
					   __ATOMIC_RELAXED);
		return r;
	}
	if (flags & MSG_OOB) {
		unlock();
		errno = EOPNOTSUPP;
		return -1;
	}
	deadline = s->sndtimeo ? usmc_rt_now() + s->sndtimeo : 0;
	while (done < len || len == 0) {
		r = usmc_smc_write(s, (const uint8_t *)buf + done, len - done);
		if (r >= 0) {
			done += (size_t)r;
			if (len == 0)
				break;
			continue;
		}
		if (r == USMC_ERR_WOULDBLOCK) {
			if (no_wait(s, flags)) {
				if (done)
					break;
				unlock();
				errno = EAGAIN;
				return -1;
			}
			if (usmc_wait_io(deadline) == ETIMEDOUT) {
				if (done)
					break;
				unlock();
				errno = EAGAIN;
				return -1;
			}
			if (usmc_sock_get(fd) != s) {
				unlock();
				errno = EBADF;
				return -1;
			}
			continue;
		}
		if (done)
			break;
		unlock();
		errno = usmc_errno_from((int)r);
		/* as the kernel: EPIPE raises SIGPIPE unless MSG_NOSIGNAL */
		if (errno == EPIPE && !(flags & MSG_NOSIGNAL)) {
			pthread_kill(pthread_self(), SIGPIPE);
			errno = EPIPE;
		}
		return -1;
	}
	s->bytes_sent += done;
	unlock();
	return (ssize_t)done;
}

ssize_t usmc_recv(int fd, void *buf, size_t len, int flags)
{
	usmc_sock *s;
	size_t done = 0;
	uint64_t deadline;
	ssize_t r;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	while (s && s->mode == USMC_SOCK_HANDSHAKE) {
		if (no_wait(s, flags)) {
			unlock();
			errno = EAGAIN;
			return -1;
		}
		if (wait_handshake(s)) {
			unlock();
			return -1;
		}
	}
	if (!s || s->mode != USMC_SOCK_SMCR) {
		int failed = s && s->mode == USMC_SOCK_FAILED;

		unlock();
		if (failed) {
			errno = ENOTCONN;
			return -1;
		}
		r = recv(fd, buf, len, flags);
		if (r > 0 && s)
			__atomic_fetch_add(&s->bytes_recv, (uint64_t)r,
					   __ATOMIC_RELAXED);
		return r;
	}
	if (flags & (MSG_PEEK | MSG_OOB)) {
		unlock();
		errno = EOPNOTSUPP;
		return -1;
	}
	if (s->rd_shut) {
		unlock();
		return 0;
	}
	deadline = s->rcvtimeo ? usmc_rt_now() + s->rcvtimeo : 0;
	for (;;) {
		r = usmc_smc_read(s, (uint8_t *)buf + done, len - done);
		if (r > 0) {
			done += (size_t)r;
			if (done == len || !(flags & MSG_WAITALL))
				break;
			continue;
		}
		if (r == 0 || len == 0)
			break;
		if (r == USMC_ERR_WOULDBLOCK) {
			if (no_wait(s, flags)) {
				if (done)
					break;
				unlock();
				errno = EAGAIN;
				return -1;
			}
			if (usmc_wait_io(deadline) == ETIMEDOUT) {
				if (done)
					break;
				unlock();
				errno = EAGAIN;
				return -1;
			}
			if (usmc_sock_get(fd) != s) {
				unlock();
				errno = EBADF;
				return -1;
			}
			continue;
		}
		if (done)
			break;
		unlock();
		errno = usmc_errno_from((int)r);
		return -1;
	}
	s->bytes_recv += done;
	unlock();
	return (ssize_t)done;
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

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (s && s->mode == USMC_SOCK_HANDSHAKE && !s->app_nonblock)
		wait_handshake(s);
	if (!s || s->mode != USMC_SOCK_SMCR) {
		unlock();
		return shutdown(fd, how);
	}
	if (how != SHUT_WR && how != SHUT_RDWR && how != SHUT_RD) {
		unlock();
		errno = EINVAL;
		return -1;
	}
	r = 0;
	if (how != SHUT_WR)
		s->rd_shut = 1; /* reads return 0, as RCV_SHUTDOWN */
	if (how != SHUT_RD)
		r = usmc_smc_shutdown_write(s);
	unlock();
	if (r < 0) {
		errno = usmc_errno_from(r);
		return -1;
	}
	return 0;
}

int usmc_close(int fd)
{
	usmc_sock *s;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (s) {
		if (s->mode == USMC_SOCK_LISTEN) {
			/* Children in handshake or queued go with it. */
			usmc_sock *c, *next;

			for (c = s->q_head; c; c = next) {
				int cfd = c->fd;

				next = c->q_next;
				sock_free(c);
				close(cfd);
			}
			s->q_head = s->q_tail = NULL;
			for (int i = 0; i < usmc_g.nsocks; i++) {
				c = usmc_g.socks[i];
				if (c && c->lsock == s && !c->dead) {
					sock_free(c);
					close(i);
				}
			}
		}
		if (s->mode == USMC_SOCK_SMCR && s->conn) {
			/* As the kernel's smc_close_stream_wait: give the
			 * send buffer up to 2 s to drain before closing. */
			uint64_t end = usmc_rt_now() + CLOSE_DRAIN_NS;

			while (!s->app_nonblock && usmc_sock_get(fd) == s &&
			       s->conn && usmc_smc_unsent(s) &&
			       !usmc_smc_error(s) && usmc_rt_now() < end)
				usmc_wait_io(end);
			if (usmc_sock_get(fd) == s && s->conn)
				usmc_smc_close(s);
		}
		if (s->waiters) {
			/* accept() waiters free it when they wake */
			s->listen_closed = 1;
			usmc_loop_watch(s, 0);
			usmc_g.socks[fd] = NULL;
			wake_all();
		} else {
			sock_free(s);
		}
	}
	unlock();
	return close(fd);
}

/* Lock held: readiness of a socket usmc runs in user space, or -1 for
 * sockets the kernel answers for. */
static int user_revents(usmc_sock *s, short events)
{
	int re = 0;

	switch (s->mode) {
	case USMC_SOCK_LISTEN:
		if (!s->listen_smc)
			return -1;
		if (s->q_head)
			re |= POLLIN;
		break;
	case USMC_SOCK_HANDSHAKE:
		break;
	case USMC_SOCK_FAILED:
		re |= POLLOUT | POLLERR | POLLHUP;
		break;
	case USMC_SOCK_SMCR: {
		int err = usmc_smc_error(s);

		if (usmc_smc_readable(s) || usmc_smc_peer_done(s) || err ||
		    s->rd_shut)
			re |= POLLIN;
		if (usmc_smc_writable(s) || err)
			re |= POLLOUT;
		if (err)
			re |= POLLERR;
		if (usmc_smc_peer_done(s) && err)
			re |= POLLHUP;
		break;
	}
	default:
		return -1;
	}
	return re & (events | POLLERR | POLLHUP);
}

int usmc_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
	struct pollfd *kfds = NULL;
	nfds_t *kidx = NULL;
	uint64_t deadline = 0;
	int ready, evfd = -1, ret = -1;

	if (lock_init())
		return -1;
	if (timeout_ms > 0)
		deadline =
			usmc_rt_now() + (uint64_t)timeout_ms * USMC_NS_PER_MS;
	kfds = calloc(nfds + 1, sizeof(*kfds));
	kidx = calloc(nfds + 1, sizeof(*kidx));
	if (!kfds || !kidx) {
		free(kfds);
		free(kidx);
		unlock();
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		nfds_t nk = 0;
		int kwait;

		ready = 0;
		for (nfds_t i = 0; i < nfds; i++) {
			usmc_sock *s = usmc_sock_get(fds[i].fd);
			int re = s ? user_revents(s, fds[i].events) : -1;

			fds[i].revents = 0;
			if (re >= 0) {
				fds[i].revents = (short)re;
				if (re)
					ready++;
			} else {
				kfds[nk] = fds[i];
				kfds[nk].revents = 0;
				kidx[nk++] = i;
			}
		}
		kwait = (ready || timeout_ms == 0) ? 0 : -1;
		if (nk == 0 && !ready && timeout_ms != 0) {
			/* Only user-space sockets: sleep on the cond. */
			if (usmc_cond_wait_until(deadline) == ETIMEDOUT) {
				ret = 0;
				goto out_locked;
			}
			continue;
		}
		if (nk && kwait) {
			if (evfd < 0) {
				evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
				if (evfd < 0 ||
				    n_poll_waiters == MAX_POLL_WAITERS) {
					if (evfd >= 0)
						close(evfd);
					evfd = -1;
					errno = EMFILE;
					goto out_locked;
				}
				poll_waiters[n_poll_waiters++] = evfd;
			}
			kfds[nk].fd = evfd;
			kfds[nk].events = POLLIN;
			kfds[nk].revents = 0;
		}
		unlock();
		{
			int t = 0;
			int r;

			if (kwait) {
				t = -1;
				if (deadline) {
					uint64_t now = usmc_rt_now();

					t = now >= deadline
						    ? 0
						    : (int)((deadline - now +
							     999999) /
							    1000000);
				}
			}
			r = poll(kfds, nk + (nk && kwait ? 1 : 0), t);
			pthread_mutex_lock(&usmc_g.lock);
			if (r < 0)
				goto out_locked;
			if (nk && kwait && kfds[nk].revents) {
				uint64_t v;

				if (read(evfd, &v, sizeof(v)) < 0) {
					/* raced with another reader */
				}
			}
			for (nfds_t k = 0; k < nk; k++) {
				fds[kidx[k]].revents = kfds[k].revents;
				if (kfds[k].revents)
					ready++;
			}
			if (ready || t == 0) {
				ret = ready;
				goto out_locked;
			}
		}
	}
out_locked:
	if (evfd >= 0) {
		for (int i = 0; i < n_poll_waiters; i++)
			if (poll_waiters[i] == evfd) {
				poll_waiters[i] =
					poll_waiters[--n_poll_waiters];
				break;
			}
		close(evfd);
	}
	unlock();
	free(kfds);
	free(kidx);
	return ret;
}

int usmc_set_nonblock(int fd, int on)
{
	usmc_sock *s;
	int fl, keep_kernel_nb = 0;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (s) {
		s->app_nonblock = !!on;
		keep_kernel_nb = s->mode == USMC_SOCK_LISTEN && s->listen_smc;
	}
	unlock();
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -1;
	if (on || keep_kernel_nb)
		fl |= O_NONBLOCK;
	else
		fl &= ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
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
	if (cmd == F_SETFL) {
		if (fcntl(fd, F_GETFL) < 0)
			return -1;
		if (usmc_set_nonblock(fd, !!(arg & O_NONBLOCK)))
			return -1;
		r = fcntl(fd, F_GETFL);
		if (r < 0)
			return -1;
		r = (r & O_NONBLOCK) | (int)(arg & ~O_NONBLOCK);
		return fcntl(fd, F_SETFL, r);
	}
	if (cmd == F_GETFL) {
		r = fcntl(fd, F_GETFL);
		if (r < 0 || lock_init())
			return r;
		s = usmc_sock_get(fd);
		if (s)
			r = (r & ~O_NONBLOCK) |
			    (s->app_nonblock ? O_NONBLOCK : 0);
		unlock();
		return r;
	}
	return fcntl(fd, cmd, arg);
}

int usmc_getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	usmc_sock *s;

	if (level == SOL_SOCKET && name == SO_ERROR && val && len &&
	    *len >= sizeof(int)) {
		int e = -1;

		if (lock_init())
			return -1;
		s = usmc_sock_get(fd);
		if (s && s->mode == USMC_SOCK_FAILED && !s->error_reported) {
			s->error_reported = 1;
			e = s->error;
		} else if (s && s->mode == USMC_SOCK_HANDSHAKE) {
			e = 0;
		}
		unlock();
		if (e >= 0) {
			*(int *)val = e;
			*len = sizeof(int);
			return 0;
		}
	}
	return getsockopt(fd, level, name, val, len);
}

int usmc_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	const struct timeval *tv = val;
	usmc_sock *s;
	uint64_t ns;

	if (setsockopt(fd, level, name, val, len))
		return -1;
	/* The kernel keeps them for fallback sockets; SMC-R waits use ours. */
	if (level != SOL_SOCKET ||
	    (name != SO_RCVTIMEO && name != SO_SNDTIMEO) || len < sizeof(*tv) ||
	    lock_init())
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
	unlock();
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
	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (!s) {
		unlock();
		if (fcntl(fd, F_GETFD) < 0)
			return -1;
		info->mode = USMC_SOCK_UNMANAGED;
		return 0;
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
	snprintf(info->fallback_detail, sizeof(info->fallback_detail), "%s",
		 s->fb_detail);
	info->peer_diagnosis = s->peer_diag;
	snprintf(info->transport, sizeof(info->transport), "%s",
		 usmc_g.tp_name[0] ? usmc_g.tp_name : usmc_g.cfg.transport);
	info->bytes_sent = __atomic_load_n(&s->bytes_sent, __ATOMIC_RELAXED);
	info->bytes_received =
		__atomic_load_n(&s->bytes_recv, __ATOMIC_RELAXED);
	info->smc_version = s->smc_version;
	if (s->conn)
		usmc_smc_info(s, info);
	unlock();
	return 0;
}

void usmc_get_stats(usmc_stats *stats)
{
	if (lock_init()) {
		memset(stats, 0, sizeof(*stats));
		return;
	}
	*stats = usmc_g.stats;
	stats->link_groups = usmc_smc_lgr_count();
	unlock();
}

int usmc_config_set(const char *key, const char *value)
{
	int r;

	if (lock_init())
		return -1;
	r = usmc_config_apply(&usmc_g.cfg, key, value);
	unlock();
	if (r) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}
