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
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/uio.h>
#include <limits.h>
#include <linux/close_range.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

#include "usmc_clc.h"
#include "usmc_conv.h"
#include "usmc_rt.h"
#include "usmc_synopt.h"

static const uint8_t smcr_eyecatcher[4] = {0xE2, 0xD4, 0xC3, 0xD9};

/* Retry interval while only part of a CLC header has arrived. */
#define PARTIAL_RECHECK_NS (2 * USMC_NS_PER_MS)
/* Guard against a peer that stalls mid-handshake: a little more than the
 * core's CLC_WAIT_TIME, after which connect fails as the kernel's does. */
#define HS_GUARD_NS	   (8 * USMC_NS_PER_SEC)
/*
 * Server timeouts, all shorter than a client's CLC_WAIT_TIME (6 s), so a
 * broken handshake ends on the server's own clock and never holds up a
 * good client for longer than that client waits:
 * - the rest of a Proposal whose eyecatcher has arrived;
 * - the whole exchange once the server answers (Accept to established);
 * - a wait behind a first contact with the same peer (server_begin).
 */
#define SRV_PROPOSAL_NS	   (2 * USMC_NS_PER_SEC)
#define SRV_HS_GUARD_NS	   (4 * USMC_NS_PER_SEC)
#define SRV_QUEUE_NS	   (2 * USMC_NS_PER_SEC)
/* How long an accepted connection whose Proposal is read waits for the
 * process that uses it before this process runs the handshake anyway: a
 * fork-per-connection server forks within it (usmc_sock_use). */
#define SRV_CLAIM_NS	   (1 * USMC_NS_PER_SEC)
/* How long an SMC-R connection outlives its peer's TCP close. A usmc peer
 * closes its TCP connection only after its SMC close flag has reached
 * us, so once the transport is drained the TCP close alone says
 * the peer died. A Linux peer shuts its clcsock down right after posting
 * its close CDC (smc_close_active), unordered: the grace covers that CDC
 * being lost once and resent after the QP timeout (134 ms), with slack,
 * and keeps detection well under 1 s. */
#define PEER_GONE_GRACE_NS (300 * USMC_NS_PER_MS)
/* SMC_MAX_STREAM_WAIT_TIMEOUT */
#define CLOSE_DRAIN_NS	   (2 * USMC_NS_PER_SEC)

/*
 * Readiness notifiers: eventfds of poll() callers that also wait for
 * kernel fds, and of usmc_epoll sets. Each is written once per change
 * while it is not drained (|pending|), so the data path costs one write
 * per wake-up, not per event.
 */
#define MAX_NOTIFIERS 256
static struct {
	int fd;
	int pending;
} notifiers[MAX_NOTIFIERS];
static int n_notifiers;

void usmc_rt_notify(void)
{
	uint64_t one = 1;

	for (int i = 0; i < n_notifiers; i++) {
		if (notifiers[i].pending)
			continue;
		notifiers[i].pending = 1;
		if (write(notifiers[i].fd, &one, sizeof(one)) < 0) {
			/* full counter: already signalled */
		}
	}
}

/* Lock held. */
int usmc_notify_add(int evfd)
{
	if (n_notifiers == MAX_NOTIFIERS) {
		errno = EMFILE;
		return -1;
	}
	notifiers[n_notifiers].fd = evfd;
	notifiers[n_notifiers].pending = 0;
	n_notifiers++;
	return 0;
}

/* Lock held. */
void usmc_notify_del(int evfd)
{
	for (int i = 0; i < n_notifiers; i++)
		if (notifiers[i].fd == evfd) {
			notifiers[i] = notifiers[--n_notifiers];
			return;
		}
}

/* Lock held: reads |evfd| and lets it be signalled again. */
void usmc_notify_drain(int evfd)
{
	uint64_t v;

	for (int i = 0; i < n_notifiers; i++)
		if (notifiers[i].fd == evfd)
			notifiers[i].pending = 0;
	if (read(evfd, &v, sizeof(v)) < 0) {
		/* not signalled */
	}
}

/*
 * Flags per fd, read without the lock by the preload's fast path: a
 * zero says "not usmc's", so read() of a file never takes the lock.
 * Chunks are never freed, so a reader never sees freed memory; a stale
 * flag only sends a call down the slower, still correct, path.
 */
#define FDF_CHUNK  4096
#define FDF_CHUNKS 1024
static uint8_t *fdflags[FDF_CHUNKS];

void usmc_fdflag_set(int fd, int flag, int on)
{
	uint8_t *c, *fresh;
	int ci = fd / FDF_CHUNK;

	if (fd < 0 || ci >= FDF_CHUNKS)
		return;
	c = __atomic_load_n(&fdflags[ci], __ATOMIC_ACQUIRE);
	if (!c) {
		if (!on)
			return;
		fresh = calloc(FDF_CHUNK, 1);
		if (!fresh)
			return;
		c = NULL;
		if (!__atomic_compare_exchange_n(&fdflags[ci], &c, fresh, 0,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			free(fresh);
		c = __atomic_load_n(&fdflags[ci], __ATOMIC_ACQUIRE);
	}
	if (on)
		__atomic_fetch_or(&c[fd % FDF_CHUNK], (uint8_t)flag,
				  __ATOMIC_RELEASE);
	else
		__atomic_fetch_and(&c[fd % FDF_CHUNK], (uint8_t)~flag,
				   __ATOMIC_RELEASE);
}

int usmc_fd_flags(int fd)
{
	uint8_t *c;
	int ci = fd / FDF_CHUNK;

	if (fd < 0)
		return 0;
	/* usmc manages no fd beyond the flag table (usmc_socket) */
	if (ci >= FDF_CHUNKS)
		return 0;
	c = __atomic_load_n(&fdflags[ci], __ATOMIC_ACQUIRE);
	return c ? __atomic_load_n(&c[fd % FDF_CHUNK], __ATOMIC_ACQUIRE) : 0;
}

usmc_sock *usmc_sock_get(int fd)
{
	if (fd < 0 || fd >= usmc_g.nsocks)
		return NULL;
	return usmc_g.socks[fd];
}

static void wake_all(void)
{
	usmc_rt_broadcast();
	usmc_rt_notify();
}

static void sock_free(usmc_sock *s);
static void server_begin(usmc_sock *s);
static void server_proposal_in(usmc_sock *s);

/*
 * Server handshakes (docs/runtime.md, "Handshake"):
 * - The progress thread accepts, and reads the whole Proposal before the
 *   connection is queued for accept(), each on its own timer: a client
 *   that sends part of one holds up nobody (the kernel's smc_listen_work
 *   also reads it before it takes smc_server_lgr_pending).
 * - The rest runs in the process that uses the connection (usmc_sock_use):
 *   a fork-per-connection server's child, not the parent that accepted.
 *   Nothing process-bound (QP, buffers) exists before that.
 * - As smc_server_lgr_pending, but per peer: while a handshake that may
 *   make the first contact with a peer runs, that peer's next ones wait
 *   (SRV_QUEUE_NS at most), so concurrent connections from one peer share
 *   one link group. Other peers' handshakes never wait.
 * Clients are not serialised: they send their Proposal at once, as the
 * kernel does.
 */
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

/* The server handshake in progress that may create the link group with
 * |peer_id| (first contact), other than |self|; NULL if none. */
static usmc_sock *fc_holder(const uint8_t peer_id[8], const usmc_sock *self)
{
	for (usmc_sock *h = usmc_g.hs_list; h; h = h->hs_next)
		if (h != self && h->fc_hold && !memcmp(h->peer_id, peer_id, 8))
			return h;
	return NULL;
}

/* |s| no longer may create a link group: the handshakes queued behind it
 * for the same peer go on (they join the new link group, or one of them
 * makes the first contact if this one failed). */
static void fc_release(usmc_sock *s)
{
	usmc_sock *todo = NULL, **tail = &todo;

	if (!s->fc_hold)
		return;
	s->fc_hold = 0;
	/* collect first: server_begin edits the list */
	for (usmc_sock *c = usmc_g.hs_list; c; c = c->hs_next)
		if (c->mode == USMC_SOCK_HANDSHAKE && c->hs == USMC_HS_QUEUED &&
		    !memcmp(c->peer_id, s->peer_id, 8)) {
			c->fc_next = NULL;
			*tail = c;
			tail = &c->fc_next;
		}
	while (todo) {
		usmc_sock *c = todo;

		todo = c->fc_next;
		c->fc_next = NULL;
		server_begin(c);
	}
}

/* Grows the table to hold |fd|. */
static int table_fit(int fd)
{
	if (fd >= FDF_CHUNK * FDF_CHUNKS)
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
static int slot_drop(int fd)
{
	usmc_sock *s = usmc_sock_get(fd);

	if (!s)
		return 0;
	usmc_epoll_fd_closed(fd);
	if (s->refs <= 1)
		return 0;
	usmc_g.socks[fd] = NULL;
	usmc_fdflag_set(fd, USMC_FDF_SOCK, 0);
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

static usmc_sock *sock_new(int fd)
{
	usmc_sock *s;

	if (table_fit(fd))
		return NULL;
	/* A record left by an fd closed behind our back is stale. */
	if (usmc_g.socks[fd] && !slot_drop(fd))
		sock_free(usmc_g.socks[fd]);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->fd = fd;
	s->fresh = 1;
	s->refs = 1;
	s->mode = USMC_SOCK_TCP;
	usmc_g.socks[fd] = s;
	usmc_fdflag_set(fd, USMC_FDF_SOCK, 1);
	usmc_stat_start();
	return s;
}

static void sock_free(usmc_sock *s)
{
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	if (s->conn)
		usmc_smc_conn_free(s);
	usmc_smc_forget(s);
	free(s->clc_buf);
	if (usmc_g.socks[s->fd] == s) {
		usmc_g.socks[s->fd] = NULL;
		usmc_fdflag_set(s->fd, USMC_FDF_SOCK, 0);
	}
	fc_release(s);
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

/*
 * The one place that decides whether a socket tries SMC: the rules
 * (docs/rules.md) by program, local and remote address and port (a
 * client's remote port, a listener's own port). A socket they say tcp to
 * is plain TCP and never writes or reads a CLC byte. Fills |why| when a
 * rule (not the default) decided tcp.
 */
static usmc_synopt *synopt_get(void);

static int rules_decide(const struct sockaddr_in *local,
			const struct sockaddr_in *remote, uint16_t port,
			char *why, size_t whylen)
{
	usmc_rule_net ln, rn;
	usmc_rule_query q = {program_invocation_short_name, NULL, NULL, port};
	char buf[256];
	int idx, v;

	if (local && local->sin_addr.s_addr != htonl(INADDR_ANY) &&
	    !usmc_rule_net_from_sa(&ln, local))
		q.local = &ln;
	if (remote && !usmc_rule_net_from_sa(&rn, remote))
		q.remote = &rn;
	/* With the SMC TCP option, offering SMC costs a peer that lacks it
	 * nothing (no CLC byte is sent), so every connection offers it, as
	 * smc_run does, unless smc rules (-p) narrow it to what they name;
	 * in explicit mode only what the rules name does. */
	usmc_g.cfg.rules.dflt_smc =
		synopt_get() != NULL && !usmc_rules_has_smc(&usmc_g.cfg.rules);
	v = usmc_rules_eval(&usmc_g.cfg.rules, &q, &idx);
	if (why && whylen)
		why[0] = '\0';
	if (idx >= 0 || usmc_g.cfg.rules.error) {
		usmc_rules_why(&usmc_g.cfg.rules, v, idx, buf, sizeof(buf));
		usmc_rt_log(1, "port %u: %s: %s", port, buf,
			    v == USMC_RULE_SMC	 ? "smc"
			    : v == USMC_RULE_TCP ? "tcp"
						 : "decided per connection");
		if (v == USMC_RULE_TCP && why)
			snprintf(why, whylen, "%.120s: tcp", buf);
	}
	return v;
}

/* A client's source address before connect: its bound one, or the
 * route's (only looked up when some rule names a local address). */
static int client_local(int fd, const struct sockaddr_in *to,
			struct sockaddr_in *out)
{
	socklen_t l = sizeof(*out);
	int u, r;

	if (getsockname(fd, (struct sockaddr *)out, &l) == 0 &&
	    out->sin_family == AF_INET &&
	    out->sin_addr.s_addr != htonl(INADDR_ANY))
		return 0;
	if (!usmc_rules_use_local(&usmc_g.cfg.rules))
		return -1;
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		return -1;
	l = sizeof(*out);
	r = connect(u, (const struct sockaddr *)to, sizeof(*to)) ||
	    getsockname(u, (struct sockaddr *)out, &l);
	close(u);
	return r ? -1 : 0;
}

/*
 * The SMC TCP option (docs/negotiation.md): loaded once, at the first
 * decision on a socket. Where it loads, CLC runs only when the option went
 * both ways, as with Linux, and connections no rule names offer SMC; where
 * it cannot, usmc says why once (debug) and the rules alone decide
 * (explicit mode).
 */
static pthread_once_t synopt_once = PTHREAD_ONCE_INIT;
static usmc_synopt *synopt;

static void synopt_init_once(void)
{
	char err[256] = "";
	int r;

	if (!usmc_g.cfg.synopt)
		return;
	if (usmc_g.cfg.cgroup[0])
		r = usmc_synopt_init_cgroup(&synopt, usmc_g.cfg.cgroup, err,
					    sizeof(err));
	else
		r = usmc_synopt_init(&synopt, err, sizeof(err));
	if (r < 0) {
		synopt = NULL;
		usmc_rt_log(1,
			    "SMC TCP option unavailable, explicit mode "
			    "(the rules alone decide): %s",
			    err);
		return;
	}
	usmc_rt_log(1, "SMC TCP option negotiation on (cgroup %s)",
		    usmc_synopt_cgroup(synopt));
}

static usmc_synopt *synopt_get(void)
{
	pthread_once(&synopt_once, synopt_init_once);
	return synopt;
}

/* After the TCP handshake of a marked socket: 1 if the peer did not send
 * the option (fall back, no CLC), 0 to go on with CLC. */
static int synopt_says_tcp(usmc_sock *s)
{
	int r;

	if (!s->synopt || !synopt)
		return 0;
	r = usmc_synopt_peer_has_smc(synopt, s->fd);
	if (r == 0) {
		usmc_sock_fallback(
			s, USMC_DECL_PEERNOSMC,
			s->rule_tcp    ? s->rule_why
			: s->is_server ? "peer's SYN had no SMC option"
				       : "peer's SYN-ACK had no SMC option");
		return 1;
	}
	if (r < 0)
		usmc_rt_log(1, "fd %d: SMC option state: %s; rules decide",
			    s->fd, strerror(-r));
	return 0;
}

static void set_fallback(usmc_sock *s, uint32_t code, const char *detail)
{
	s->mode = USMC_SOCK_TCP;
	s->fb_code = code;
	snprintf(s->fb_detail, sizeof(s->fb_detail), "%s", detail);
}

/* Queues an accepted child of listener |s->lsock| for accept(). */
static void listener_enqueue(usmc_sock *s)
{
	usmc_sock *l = s->lsock;

	s->q_next = NULL;
	if (l->q_tail)
		l->q_tail->q_next = s;
	else
		l->q_head = s;
	l->q_tail = s;
	l->q_len++;
	l->rgen++; /* a new edge for epoll on the listener */
	s->in_lq = 1;
}

/* Takes a queued child out of its listener's accept queue. */
static void listener_unlink(usmc_sock *s)
{
	usmc_sock *l = s->lsock, **pp, *prev = NULL;

	for (pp = &l->q_head; *pp; prev = *pp, pp = &(*pp)->q_next)
		if (*pp == s) {
			*pp = s->q_next;
			if (l->q_tail == s)
				l->q_tail = prev;
			l->q_len--;
			break;
		}
	s->q_next = NULL;
	s->in_lq = 0;
}

/* Called whenever a socket leaves USMC_SOCK_HANDSHAKE. */
void usmc_sock_hs_done(usmc_sock *s)
{
	usmc_sock *l = s->lsock;

	s->hs = USMC_HS_NONE;
	s->deadline = 0;
	s->rgen++;
	usmc_g.mode_gen++;
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	fc_release(s);
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
			if (s->in_lq)
				listener_unlink(s);
			if (!s->dead) {
				s->dead = 1;
				s->lsock = NULL;
				s->dead_next = dead_list;
				dead_list = s;
				usmc_loop_wake();
			}
		} else if (!s->in_lq) {
			listener_enqueue(s);
		}
	} else if (s->is_server && s->mode == USMC_SOCK_FAILED) {
		/* Accepted already: the app owns the fd and reads the error;
		 * the client sees the TCP connection end, as when the kernel
		 * drops a child whose handshake failed. */
		shutdown(s->fd, SHUT_RDWR);
	}
	usmc_stat_kick();
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

/* Creates the core's connection for a CLC exchange on |s|. Returns 1 if
 * the handshake already ended (fallback with the core's reason, or
 * failure), 0 if it goes on. */
static int hs_conn_start(usmc_sock *s, int is_server)
{
	char detail[128] = "";
	int r = usmc_smc_conn_start(s, is_server, detail, sizeof(detail));

	if (r > 0)
		usmc_sock_fallback(s, (uint32_t)r, detail);
	else if (r < 0)
		sock_fail(s, usmc_errno_from(r));
	return r != 0;
}

/* Starts the CLC exchange on a connected client socket. */
static void client_start_clc(usmc_sock *s)
{
	s->hs = USMC_HS_CLC;
	s->hs_guard = usmc_rt_now() + HS_GUARD_NS;
	s->deadline = s->hs_guard;
	usmc_hs_list_add(s);
	if (hs_conn_start(s, 0))
		return;
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
	while (s->mode == USMC_SOCK_HANDSHAKE &&
	       (s->hs == USMC_HS_CLC || s->hs == USMC_HS_PROPOSAL)) {
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
		if (s->hs == USMC_HS_PROPOSAL) {
			server_proposal_in(s);
			return;
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

/* Server: the client speaks CLC; read its whole Proposal, on a timer of
 * its own, before the connection is queued for accept(). */
static void server_read_proposal(usmc_sock *s)
{
	s->hs = USMC_HS_PROPOSAL;
	s->hs_guard = usmc_rt_now() + SRV_PROPOSAL_NS;
	s->deadline = s->hs_guard;
	usmc_loop_watch(s, EPOLLIN);
	clc_read(s);
	usmc_loop_rearm_timer();
}

/* Server: a whole first CLC message is in clc_buf. */
static void server_proposal_in(usmc_sock *s)
{
	uint8_t type = s->clc_buf[4];

	if (type == SMC_CLC_DECLINE) {
		/* The client declined first (e.g. it has no device): TCP,
		 * and no Decline back. */
		char d[128];

		s->peer_diag =
			s->clc_have >= 20 ? usmc_get_be32(s->clc_buf + 16) : 0;
		snprintf(d, sizeof(d), "peer declined: %s 0x%08x %s",
			 usmc_clc_decl_name(s->peer_diag), s->peer_diag,
			 usmc_clc_decl_str(s->peer_diag));
		usmc_sock_fallback(s, USMC_DECL_PEERDECL, d);
		return;
	}
	if (type != SMC_CLC_PROPOSAL || s->clc_have < SMC_CLC_HDR_LEN + 8) {
		/* As smc_clc_wait_msg on an unexpected type: no fallback is
		 * possible once CLC bytes were read; the child is dropped. */
		usmc_rt_log(0,
			    "fd %d: first CLC message is type %u, not a "
			    "Proposal",
			    s->fd, type);
		sock_fail(s, EPROTO);
		return;
	}
	memcpy(s->peer_id, s->clc_buf + SMC_CLC_HDR_LEN, 8);
	/* Nothing more to read until we answer: accept() may hand it out. */
	s->hs = USMC_HS_UNCLAIMED;
	usmc_loop_watch(s, 0);
	s->deadline = usmc_rt_now() + SRV_CLAIM_NS;
	listener_enqueue(s);
	usmc_loop_rearm_timer();
	wake_all();
}

/*
 * Server: runs the handshake of a connection whose Proposal is in clc_buf,
 * in this process. Waits (USMC_HS_QUEUED) while another handshake may be
 * making the first contact with the same peer, up to SRV_QUEUE_NS.
 */
static void server_begin(usmc_sock *s)
{
	uint64_t now = usmc_rt_now();

	if (s->hs != USMC_HS_QUEUED)
		s->queue_end = now + SRV_QUEUE_NS;
	if (now < s->queue_end && fc_holder(s->peer_id, s)) {
		s->hs = USMC_HS_QUEUED;
		s->deadline = s->queue_end;
		usmc_hs_list_add(s);
		usmc_loop_rearm_timer();
		return;
	}
	s->fc_hold = !usmc_smc_has_lgr(s->peer_id);
	s->hs = USMC_HS_CLC;
	s->hs_guard = now + SRV_HS_GUARD_NS;
	s->deadline = s->hs_guard;
	usmc_hs_list_add(s);
	if (hs_conn_start(s, 1))
		return;
	if (usmc_smc_clc_in(s, s->clc_buf, s->clc_have) < 0 &&
	    s->mode == USMC_SOCK_HANDSHAKE) {
		sock_fail(s, EPROTO);
		return;
	}
	s->clc_have = 0;
	if (s->mode != USMC_SOCK_HANDSHAKE)
		return;
	usmc_loop_watch(s,
			EPOLLIN | (usmc_smc_clc_flush(s) > 0 ? EPOLLOUT : 0));
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
				   s->rule_tcp ? s->rule_why
					       : "peer sent no CLC proposal");
		return;
	}
	if (n == 4) {
		server_read_proposal(s);
		return;
	}
	if (now >= s->deadline) {
		usmc_sock_fallback(s, USMC_DECL_PEERNOSMC,
				   s->rule_tcp ? s->rule_why
					       : "peer sent no CLC proposal");
		return;
	}
	if (n > 0) {
		/* A prefix of the eyecatcher: look again shortly. */
		usmc_loop_watch(s, 0);
		s->deadline = now + PARTIAL_RECHECK_NS;
	}
}

/* An accepted child of a listener whose smc rule names the peer: decide
 * now. A tcp child still reads a Proposal, if one comes, to decline it
 * (usmc_smc_conn_start), so the client falls back instead of waiting. */
static void child_rules(usmc_sock *c)
{
	struct sockaddr_in lo, pe;
	socklen_t l1 = sizeof(lo), l2 = sizeof(pe);

	if (getsockname(c->fd, (struct sockaddr *)&lo, &l1) ||
	    getpeername(c->fd, (struct sockaddr *)&pe, &l2) ||
	    rules_decide(&lo, &pe, c->port, c->rule_why, sizeof(c->rule_why)) !=
		    USMC_RULE_SMC) {
		c->rule_tcp = 1;
		if (!c->rule_why[0])
			snprintf(c->rule_why, sizeof(c->rule_why),
				 "no rule matched, default tcp");
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
		c->synopt = l->synopt;
		if (l->rules_maybe)
			child_rules(c);
		if (!synopt_says_tcp(c))
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
		char b;

		/* An event collected while the handshake ran (its last CLC
		 * bytes) can be handled after the switch to SMC-R: without
		 * EOF, an error or a hang-up the peer is still there. */
		if (!(events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) &&
		    recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK)) {
			usmc_rt_log(1,
				    "fd %d: stale event 0x%x on the idle TCP "
				    "connection: ignored",
				    s->fd, events);
			return;
		}
		/* The peer's TCP side closed. Whatever the peer's RNIC sent
		 * before is processed first: an orderly close is then seen. */
		usmc_loop_watch(s, 0);
		usmc_smc_on_tp_event();
		if (!s->conn || usmc_smc_peer_done(s))
			return;
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
		if (!synopt_says_tcp(s))
			client_start_clc(s);
		break;
	}
	case USMC_HS_WAIT_FIRST:
		server_peek_first(s, usmc_rt_now());
		break;
	case USMC_HS_PROPOSAL:
		clc_read(s);
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
		usmc_smc_on_tp_event();
		if (s->conn && !usmc_smc_peer_done(s)) {
			usmc_rt_log(1,
				    "fd %d: peer closed its TCP connection "
				    "without closing SMC-R: peer gone",
				    s->fd);
			usmc_smc_peer_gone(s);
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
	if (s->hs == USMC_HS_UNCLAIMED || s->hs == USMC_HS_QUEUED) {
		/* no owner showed up (or the first contact ahead of it took
		 * too long): run it here */
		s->deadline = 0;
		server_begin(s);
		return;
	}
	if (s->hs == USMC_HS_CLC || s->hs == USMC_HS_PROPOSAL) {
		if (now < s->hs_guard) {
			/* a partial header recheck */
			s->deadline = s->hs_guard;
			usmc_loop_watch(s, s->ep_events | EPOLLIN);
			clc_read(s);
			return;
		}
		if (s->hs == USMC_HS_PROPOSAL)
			usmc_rt_log(0,
				    "fd %d: client sent only part of its "
				    "Proposal in %d s: dropped",
				    s->fd,
				    (int)(SRV_PROPOSAL_NS / USMC_NS_PER_SEC));
		else
			usmc_rt_log(0, "fd %d: CLC handshake timed out", s->fd);
		sock_fail(s, ETIMEDOUT);
	}
}

/* Every call starts here: a handler that runs from now on, even while
 * the call waits for the lock, is one that interrupted this call. */
static int lock_init(void)
{
	usmc_sig_reset();
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
	/* beyond the per-fd flags the preload reads: a plain socket */
	if (fd >= FDF_CHUNK * FDF_CHUNKS)
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
	int fl, v = -1;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	if (!s || (!s->fresh && s->mode != USMC_SOCK_LISTEN)) {
		unlock();
		return listen(fd, backlog);
	}
	if (s->mode != USMC_SOCK_LISTEN &&
	    getsockname(fd, (struct sockaddr *)&sin, &slen) == 0 &&
	    sin.sin_family == AF_INET && sin.sin_port) {
		v = rules_decide(&sin, NULL, ntohs(sin.sin_port), s->rule_why,
				 sizeof(s->rule_why));
		if (v != USMC_RULE_TCP && synopt_get())
			/* before listen(): SYN-ACKs must carry the option */
			s->synopt = usmc_synopt_mark_listen(synopt, fd) == 0;
	}
	if (listen(fd, backlog)) {
		int e = errno;

		if (s->synopt && s->mode != USMC_SOCK_LISTEN) {
			usmc_synopt_forget(synopt, fd);
			s->synopt = 0;
		}
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
	slen = sizeof(sin);
	if (getsockname(fd, (struct sockaddr *)&sin, &slen) == 0 &&
	    sin.sin_family == AF_INET) {
		/* an unbound listener's port is known only now */
		if (v < 0)
			v = rules_decide(&sin, NULL, ntohs(sin.sin_port),
					 s->rule_why, sizeof(s->rule_why));
		s->port = ntohs(sin.sin_port);
		s->listen_smc = v != USMC_RULE_TCP;
		s->rules_maybe = v == USMC_RULE_MAYBE;
	}
	usmc_g.mode_gen++;
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

/*
 * Lock held. The process uses |s| (I/O, accept, poll, select or epoll).
 *
 * A listener: the progress thread accepts on an SMC listener from listen()
 * on; but across fork() only a listener with interest stays watched
 * (usmc_sock_fork_parent), and a child watches its inherited listeners
 * once it shows interest itself. So a prefork server's parent, which
 * listens and never accepts, leaves the connections to its workers, whose
 * runtimes run the handshakes.
 *
 * An accepted connection whose Proposal waits for its owner: this process
 * runs the handshake. So in a server that accepts and forks a child per
 * connection, the child that serves it owns the SMC-R connection, and the
 * parent only closes its fd.
 */
void usmc_sock_use(usmc_sock *s)
{
	if (!s)
		return;
	if (s->mode == USMC_SOCK_HANDSHAKE && s->hs == USMC_HS_UNCLAIMED &&
	    !s->lsock) {
		server_begin(s);
		return;
	}
	if (s->mode != USMC_SOCK_LISTEN || !s->listen_smc)
		return;
	s->listen_interest = 1;
	if (!s->listen_closed && !s->ep_events)
		usmc_loop_watch(s, EPOLLIN);
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
	uint64_t deadline;
	int cfd, err = 0;

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
		char d[128] = "";

		int emulate = s && is_listen && !s->app_nonblock;

		/* the reason, copied now: |s| may go once unlocked */
		if (is_listen && s->rule_why[0])
			snprintf(d, sizeof(d), "%s", s->rule_why);
		else if (is_listen)
			snprintf(d, sizeof(d), "port %u is not an SMC port",
				 port);

		unlock();
		cfd = accept4(fd, addr, len, flags);
		while (cfd < 0 && errno == EAGAIN && emulate) {
			/* inherited across fork: the kernel fd stayed
			 * nonblocking for the parent's progress thread */
			struct pollfd p = {.fd = fd, .events = POLLIN};

			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return -1;
			cfd = accept4(fd, addr, len, flags);
		}
		if (cfd >= 0 && is_listen) {
			pthread_mutex_lock(&usmc_g.lock);
			c = sock_new(cfd);
			if (c) {
				c->fresh = 0;
				c->is_server = 1;
				c->port = port;
				c->app_nonblock = !!(flags & SOCK_NONBLOCK);
				set_fallback(c, USMC_DECL_PEERNOSMC, d);
				usmc_g.stats.conns_fallback++;
				usmc_rt_log(1,
					    "fd %d: TCP fallback: %s 0x%08x %s",
					    cfd, usmc_decline_name(c->fb_code),
					    c->fb_code, d);
			}
			unlock();
		}
		return cfd;
	}
	usmc_sock_use(s);
	s->waiters++;
	/* as the kernel's accept: SO_RCVTIMEO bounds the wait (EAGAIN), and
	 * makes any signal handler end it */
	deadline = s->rcvtimeo ? usmc_rt_now() + s->rcvtimeo : 0;
	while (!s->q_head && !s->listen_closed && !err) {
		if (s->app_nonblock)
			err = EAGAIN;
		else
			err = usmc_wait(deadline, deadline ? USMC_INTR_ALWAYS
							   : USMC_INTR_RESTART);
		if (err == ETIMEDOUT)
			err = EAGAIN;
	}
	s->waiters--;
	if (s->listen_closed) {
		if (!s->waiters)
			free(s);
		unlock();
		errno = EBADF;
		return -1;
	}
	if (!s->q_head) {
		unlock();
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

/* Waits, lock held, until |s| leaves HANDSHAKE. Returns 0 or -1/errno:
 * EINTR as |intr| says (the handshake goes on), EBADF if the fd was closed
 * meanwhile, or the handshake's error. */
static int wait_handshake(usmc_sock *s, int intr)
{
	int fd = s->fd;

	while (usmc_sock_get(fd) == s && s->mode == USMC_SOCK_HANDSHAKE)
		if (usmc_wait(0, intr) == EINTR) {
			errno = EINTR;
			return -1;
		}
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
	int r, e, v;

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
				r = wait_handshake(s, USMC_INTR_RESTART);
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
	{
		struct sockaddr_in lo;
		const struct sockaddr_in *to = (const struct sockaddr_in *)addr;

		v = rules_decide(client_local(fd, to, &lo) ? NULL : &lo, to,
				 port, s->rule_why, sizeof(s->rule_why));
	}
	if (v != USMC_RULE_SMC) {
		char d[128];

		if (s->rule_why[0])
			snprintf(d, sizeof(d), "%s", s->rule_why);
		else
			snprintf(d, sizeof(d), "port %u is not an SMC port",
				 port);
		set_fallback(s, USMC_DECL_PEERNOSMC, d);
		usmc_g.stats.conns_fallback++;
		usmc_rt_log(1, "fd %d: TCP fallback: %s 0x%08x %s", fd,
			    usmc_decline_name(s->fb_code), s->fb_code, d);
		unlock();
		return connect(fd, addr, len);
	}
	s->mode = USMC_SOCK_HANDSHAKE;
	s->hs = USMC_HS_TCP_CONNECT;
	usmc_g.mode_gen++;
	if (synopt_get())
		s->synopt = usmc_synopt_mark_connect(synopt, fd) == 0;
	unlock();

	r = connect(fd, addr, len);
	e = errno;
	pthread_mutex_lock(&usmc_g.lock);
	usmc_sig_reset();
	if (usmc_sock_get(fd) != s) {
		unlock();
		errno = EBADF;
		return -1;
	}
	if (r && (e == EINPROGRESS || e == EINTR)) {
		/* Nonblocking, or a signal ended the wait (the kernel goes on
		 * connecting): the progress thread takes it from here. */
		usmc_hs_list_add(s);
		usmc_loop_watch(s, EPOLLOUT);
		unlock();
		errno = e;
		return -1;
	}
	if (r) {
		/* TCP itself failed: the socket is as the kernel left it. */
		s->mode = USMC_SOCK_TCP;
		s->hs = USMC_HS_NONE;
		s->fresh = 1;
		usmc_g.mode_gen++;
		unlock();
		errno = e;
		return -1;
	}
	if (synopt_says_tcp(s)) {
		unlock();
		return 0;
	}
	client_start_clc(s);
	if (s->app_nonblock && s->mode == USMC_SOCK_HANDSHAKE) {
		unlock();
		errno = EINPROGRESS;
		return -1;
	}
	r = wait_handshake(s, USMC_INTR_RESTART);
	unlock();
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
			unlock();
			errno = EAGAIN;
			return IO_ERR;
		}
		if (wait_handshake(s, USMC_INTR_RESTART)) {
			unlock();
			return IO_ERR;
		}
	}
	*ps = s;
	if (s && s->mode == USMC_SOCK_SMCR)
		return IO_SMC;
	unlock();
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
		   size_t done)
{
	int eno = EAGAIN, w;

	if (!no_wait(s, flags)) {
		/* a timeout makes any signal handler end the wait, as in the
		 * kernel's sock_intr_errno */
		w = usmc_wait(deadline,
			      deadline ? USMC_INTR_ALWAYS : USMC_INTR_RESTART);
		if (w == EINTR)
			eno = EINTR;
		else if (w == 0 && usmc_sock_get(fd) != s)
			eno = EBADF;
		else if (w == 0)
			return 1;
	}
	if (done && eno != EBADF)
		return 0;
	unlock();
	errno = eno;
	return -1;
}

ssize_t usmc_send(int fd, const void *buf, size_t len, int flags)
{
	usmc_sock *s;
	size_t done = 0;
	uint64_t deadline;
	ssize_t r;

	if (lock_init())
		return -1;
	switch (io_begin(fd, flags, EPIPE, &s)) {
	case IO_ERR:
		return -1;
	case IO_KERNEL:
		r = send(fd, buf, len, flags);
		if (r > 0 && s)
			__atomic_fetch_add(&s->bytes_sent, (uint64_t)r,
					   __ATOMIC_RELAXED);
		return r;
	case IO_SMC:
		break;
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
			int w = io_wait(fd, s, flags, deadline, done);

			if (w < 0)
				return -1;
			if (w == 0)
				break;
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
	switch (io_begin(fd, flags, ENOTCONN, &s)) {
	case IO_ERR:
		return -1;
	case IO_KERNEL:
		r = recv(fd, buf, len, flags);
		if (r > 0 && s)
			__atomic_fetch_add(&s->bytes_recv, (uint64_t)r,
					   __ATOMIC_RELAXED);
		return r;
	case IO_SMC:
		break;
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
			int w = io_wait(fd, s, flags, deadline, done);

			if (w < 0)
				return -1;
			if (w == 0)
				break;
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
	usmc_sock_use(s);
	if (s && s->mode == USMC_SOCK_HANDSHAKE && !s->app_nonblock) {
		wait_handshake(s, USMC_INTR_NONE);
		s = usmc_sock_get(
			fd); /* closed meanwhile: the kernel's EBADF */
	}
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

void usmc_sock_close_at_exit(void)
{
	for (int fd = 0; fd < usmc_g.nsocks; fd++) {
		usmc_sock *s = usmc_g.socks[fd];

		if (s && s->fd == fd && s->mode == USMC_SOCK_SMCR && s->conn) {
			usmc_rt_log(1,
				    "fd %d: open at exit: closing over SMC-R",
				    fd);
			usmc_smc_close(s, 0);
		}
	}
}

/* Lock held: what closing |fd| means to usmc, short of the kernel close. */
static void close_record(int fd)
{
	usmc_sock *s;

	if (usmc_fd_flags(fd) & USMC_FDF_EPOLL)
		usmc_epoll_closed(fd);
	if (slot_drop(fd))
		return; /* another fd still names the socket */
	s = usmc_sock_get(fd);
	if (s && s->synopt && synopt && s->mode == USMC_SOCK_LISTEN)
		usmc_synopt_forget(synopt, fd);
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
			wake_all();
		} else {
			sock_free(s);
		}
	}
}

int usmc_close(int fd)
{
	if (!usmc_fd_flags(fd))
		return close(fd);
	if (lock_init())
		return -1;
	close_record(fd);
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
		if (usmc_smc_peer_done(s))
			re |= POLLRDHUP;
		break;
	}
	default:
		return -1;
	}
	return re & (events | POLLERR | POLLHUP);
}

int usmc_sock_revents(usmc_sock *s, uint32_t events)
{
	return user_revents(s, (short)events);
}

/*
 * poll and ppoll: usmc's sockets are answered from user-space state, the
 * rest by the kernel in the same call; a blocking wait that includes
 * kernel fds (or a signal mask) sleeps in ppoll with an eventfd that every
 * readiness change of usmc's sockets signals.
 */
static int poll_impl(struct pollfd *fds, nfds_t nfds, int64_t timeout_ns,
		     const sigset_t *sigmask)
{
	struct pollfd *kfds = NULL;
	nfds_t *kidx = NULL;
	uint64_t deadline = 0;
	int ready, evfd = -1, ret = -1;

	if (lock_init())
		return -1;
	if (timeout_ns > 0)
		deadline = usmc_rt_now() + (uint64_t)timeout_ns;
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
		int kwait, nwait;

		ready = 0;
		for (nfds_t i = 0; i < nfds; i++) {
			usmc_sock *s = usmc_sock_get(fds[i].fd);
			int re;

			if (s)
				usmc_sock_use(s);
			re = s ? user_revents(s, fds[i].events) : -1;

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
		kwait = !(ready || timeout_ns == 0);
		if (nk == 0 && kwait && !sigmask) {
			/* Only user-space sockets: sleep until woken. */
			int w = usmc_wait(deadline, USMC_INTR_ALWAYS);

			if (w == ETIMEDOUT) {
				ret = 0;
				goto out_locked;
			}
			if (w == EINTR) {
				errno = EINTR;
				goto out_locked;
			}
			continue;
		}
		if (kwait && evfd < 0) {
			evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (evfd < 0)
				goto out_locked;
			if (usmc_notify_add(evfd)) {
				close(evfd);
				evfd = -1;
				goto out_locked;
			}
		}
		nwait = nk;
		if (kwait) {
			kfds[nk].fd = evfd;
			kfds[nk].events = POLLIN;
			kfds[nk].revents = 0;
			nwait++;
		}
		unlock();
		{
			struct timespec ts = {0, 0}, *tp = &ts;
			int r, e;

			if (kwait) {
				tp = NULL;
				if (deadline) {
					uint64_t now = usmc_rt_now();
					uint64_t left =
						now >= deadline
							? 0
							: deadline - now;

					ts.tv_sec = (time_t)(left /
							     USMC_NS_PER_SEC);
					ts.tv_nsec =
						(long)(left % USMC_NS_PER_SEC);
					tp = &ts;
				}
			}
			r = ppoll(kfds, (nfds_t)nwait, tp, sigmask);
			e = errno;
			pthread_mutex_lock(&usmc_g.lock);
			if (r < 0) {
				errno = e;
				goto out_locked;
			}
			if (kwait && kfds[nk].revents)
				usmc_notify_drain(evfd);
			for (nfds_t k = 0; k < nk; k++) {
				fds[kidx[k]].revents = kfds[k].revents;
				if (kfds[k].revents)
					ready++;
			}
			if (ready || !kwait ||
			    (deadline && usmc_rt_now() >= deadline)) {
				ret = ready;
				goto out_locked;
			}
		}
	}
out_locked:
	if (evfd >= 0) {
		usmc_notify_del(evfd);
		close(evfd);
	}
	unlock();
	free(kfds);
	free(kidx);
	return ret;
}

int usmc_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
	return poll_impl(fds, nfds,
			 timeout_ms < 0 ? -1
					: (int64_t)timeout_ms *
						  (int64_t)USMC_NS_PER_MS,
			 NULL);
}

int usmc_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
	       const sigset_t *sigmask)
{
	int64_t t = -1;

	if (ts) {
		if (ts->tv_sec < 0 || ts->tv_nsec < 0 ||
		    ts->tv_nsec >= (long)USMC_NS_PER_SEC) {
			errno = EINVAL;
			return -1;
		}
		t = (int64_t)ts->tv_sec * (int64_t)USMC_NS_PER_SEC +
		    ts->tv_nsec;
	}
	return poll_impl(fds, nfds, t, sigmask);
}

/* select and pselect over poll_impl: the sets become pollfds and back. */
int usmc_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		 const struct timespec *ts, const sigset_t *sigmask)
{
	struct pollfd *p;
	int n = 0, r, cnt = 0;

	if (nfds < 0 || nfds > FD_SETSIZE) {
		errno = EINVAL;
		return -1;
	}
	p = calloc((size_t)nfds + 1, sizeof(*p));
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	for (int fd = 0; fd < nfds; fd++) {
		short ev = 0;

		if (rd && FD_ISSET(fd, rd))
			ev |= POLLIN;
		if (wr && FD_ISSET(fd, wr))
			ev |= POLLOUT;
		if (ex && FD_ISSET(fd, ex))
			ev |= POLLPRI;
		if (!ev)
			continue;
		p[n].fd = fd;
		p[n].events = ev;
		n++;
	}
	r = usmc_ppoll(p, (nfds_t)n, ts, sigmask);
	if (r < 0) {
		free(p);
		return -1;
	}
	for (int i = 0; i < n; i++)
		if (p[i].revents & POLLNVAL) {
			free(p);
			errno = EBADF;
			return -1;
		}
	if (rd)
		FD_ZERO(rd);
	if (wr)
		FD_ZERO(wr);
	if (ex)
		FD_ZERO(ex);
	for (int i = 0; i < n; i++) {
		short re = p[i].revents;

		/* as the kernel's select: errors and hang-ups count as
		 * readable and writable */
		if (rd && (p[i].events & POLLIN) &&
		    (re & (POLLIN | POLLHUP | POLLERR))) {
			FD_SET(p[i].fd, rd);
			cnt++;
		}
		if (wr && (p[i].events & POLLOUT) &&
		    (re & (POLLOUT | POLLERR))) {
			FD_SET(p[i].fd, wr);
			cnt++;
		}
		if (ex && (p[i].events & POLLPRI) && (re & POLLPRI)) {
			FD_SET(p[i].fd, ex);
			cnt++;
		}
	}
	free(p);
	return cnt;
}

int usmc_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		struct timeval *tv)
{
	struct timespec ts, *tp = NULL;
	uint64_t start = 0;
	int r;

	if (tv) {
		if (tv->tv_sec < 0 || tv->tv_usec < 0) {
			errno = EINVAL;
			return -1;
		}
		ts.tv_sec = tv->tv_sec + tv->tv_usec / 1000000;
		ts.tv_nsec = (tv->tv_usec % 1000000) * 1000;
		tp = &ts;
		start = usmc_rt_now();
	}
	r = usmc_pselect(nfds, rd, wr, ex, tp, NULL);
	if (tv && r >= 0) {
		/* Linux select writes back the time left */
		uint64_t total = (uint64_t)ts.tv_sec * USMC_NS_PER_SEC +
				 (uint64_t)ts.tv_nsec;
		uint64_t used = usmc_rt_now() - start;
		uint64_t left = used >= total ? 0 : total - used;

		tv->tv_sec = (time_t)(left / USMC_NS_PER_SEC);
		tv->tv_usec = (suseconds_t)((left % USMC_NS_PER_SEC) / 1000);
	}
	return r;
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
	if (level == IPPROTO_TCP && name == TCP_NODELAY && len >= sizeof(int) &&
	    !lock_init()) {
		/* the kernel's for TCP; the core's autocorking for SMC-R */
		s = usmc_sock_get(fd);
		if (s) {
			s->nodelay = *(const int *)val != 0;
			usmc_smc_set_nodelay(s, s->nodelay);
		}
		unlock();
		return 0;
	}
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
	if (s->mode == USMC_SOCK_HANDSHAKE && s->hs == USMC_HS_UNCLAIMED &&
	    !s->lsock) {
		/* Asking for the path is a use: the answer is the final one,
		 * as after the kernel's accept (a nonblocking socket may
		 * still say handshake). */
		usmc_sock_use(s);
		if (!s->app_nonblock && wait_handshake(s, USMC_INTR_NONE) &&
		    errno == EBADF) {
			unlock();
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
	snprintf(info->fallback_detail, sizeof(info->fallback_detail), "%s",
		 s->fb_detail);
	info->peer_diagnosis = s->peer_diag;
	snprintf(info->transport, sizeof(info->transport), "%s",
		 usmc_g.cfg.transport);
	info->device = -1;
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

/* Vectored and message I/O. Fallback and plain sockets get the kernel
 * call itself; SMC-R gathers and scatters through usmc_send/usmc_recv. */
static int sock_mode(int fd)
{
	usmc_sock *s;
	int m;

	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	m = s ? (int)s->mode : USMC_SOCK_UNMANAGED;
	if (s && s->mode == USMC_SOCK_HANDSHAKE)
		m = USMC_SOCK_SMCR; /* usmc_send/recv wait or say EAGAIN */
	if (s && s->mode == USMC_SOCK_FAILED)
		m = USMC_SOCK_SMCR; /* they report the failure */
	unlock();
	return m;
}

static void count_bytes(int fd, ssize_t n, int sent)
{
	usmc_sock *s;

	if (n <= 0 || lock_init())
		return;
	s = usmc_sock_get(fd);
	if (s)
		__atomic_fetch_add(sent ? &s->bytes_sent : &s->bytes_recv,
				   (uint64_t)n, __ATOMIC_RELAXED);
	unlock();
}

ssize_t usmc_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t done = 0;

	if (sock_mode(fd) != USMC_SOCK_SMCR) {
		ssize_t r = sendmsg(fd, msg, flags);

		count_bytes(fd, r, 1);
		return r;
	}
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		const struct iovec *v = &msg->msg_iov[i];
		ssize_t r;

		if (!v->iov_len)
			continue;
		/* blocking: each part blocks until sent, as one kernel
		 * sendmsg would; nonblocking: stops at the first short part */
		r = usmc_send(fd, v->iov_base, v->iov_len, flags);
		if (r < 0)
			return done ? done : -1;
		done += r;
		if ((size_t)r < v->iov_len)
			break;
	}
	return done;
}

ssize_t usmc_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t done = 0;

	if (sock_mode(fd) != USMC_SOCK_SMCR) {
		ssize_t r = recvmsg(fd, msg, flags);

		count_bytes(fd, r, 0);
		return r;
	}
	/* a stream socket has no source address or control data here */
	msg->msg_namelen = 0;
	msg->msg_controllen = 0;
	msg->msg_flags = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		struct iovec *v = &msg->msg_iov[i];
		ssize_t r;

		if (!v->iov_len)
			continue;
		r = usmc_recv(fd, v->iov_base, v->iov_len,
			      done && !(flags & MSG_WAITALL)
				      ? flags | MSG_DONTWAIT
				      : flags);
		if (r < 0) {
			if (done)
				break;
			return -1;
		}
		done += r;
		if ((size_t)r < v->iov_len)
			break;
	}
	return done;
}

ssize_t usmc_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)iovcnt};

	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (sock_mode(fd) != USMC_SOCK_SMCR) {
		ssize_t r = writev(fd, iov, iovcnt);

		count_bytes(fd, r, 1);
		return r;
	}
	return usmc_sendmsg(fd, &m, 0);
}

ssize_t usmc_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)iovcnt};

	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (sock_mode(fd) != USMC_SOCK_SMCR) {
		ssize_t r = readv(fd, iov, iovcnt);

		count_bytes(fd, r, 0);
		return r;
	}
	return usmc_recvmsg(fd, &m, 0);
}

/* sendfile to an SMC-R socket: read the file, send it; what the socket
 * did not take is given back to the file position or |offset|. */
ssize_t usmc_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	char *buf;
	size_t done = 0;
	off_t pos = offset ? *offset : 0;

	if (sock_mode(out_fd) != USMC_SOCK_SMCR)
		return sendfile(out_fd, in_fd, offset, count);
	buf = malloc(65536);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	while (done < count) {
		size_t want = count - done < 65536 ? count - done : 65536;
		ssize_t n = offset ? pread(in_fd, buf, want, pos)
				   : read(in_fd, buf, want);
		ssize_t w;

		if (n <= 0) {
			if (n < 0 && !done) {
				free(buf);
				return -1;
			}
			break;
		}
		w = usmc_send(out_fd, buf, (size_t)n, done ? MSG_DONTWAIT : 0);
		if (w < 0)
			w = 0;
		if (w < n && !offset)
			lseek(in_fd, (off_t)(w - n), SEEK_CUR);
		pos += w;
		done += (size_t)w;
		if (w < n) {
			if (!done) {
				free(buf);
				return -1; /* errno from usmc_send */
			}
			break;
		}
	}
	free(buf);
	if (offset)
		*offset = pos;
	return (ssize_t)done;
}

int usmc_ioctl(int fd, unsigned long req, void *arg)
{
	usmc_sock *s;

	if ((req != FIONREAD && req != FIONBIO) || !arg)
		return ioctl(fd, req, arg);
	if (req == FIONBIO) {
		if (ioctl(fd, req, arg))
			return -1;
		return usmc_set_nonblock(fd, *(int *)arg != 0);
	}
	if (lock_init())
		return -1;
	s = usmc_sock_get(fd);
	usmc_sock_use(s);
	if (s && s->mode == USMC_SOCK_SMCR) {
		size_t n = usmc_smc_readable(s);

		*(int *)arg = n > INT32_MAX ? INT32_MAX : (int)n;
		unlock();
		return 0;
	}
	unlock();
	return ioctl(fd, req, arg);
}

/* Lock held: |newfd| names the same socket as |s|. */
static void slot_add(int newfd, usmc_sock *s)
{
	if (table_fit(newfd))
		return;
	usmc_g.socks[newfd] = s;
	s->refs++;
	usmc_fdflag_set(newfd, USMC_FDF_SOCK, 1);
}

/* dup family: the kernel makes the fd; usmc's record is shared, and an fd
 * that dup2/dup3 replaces is closed as close() would. */
static int dup_impl(int oldfd, int newfd, int flags, int cmd)
{
	usmc_sock *s;
	int r;

	if (lock_init())
		return -1;
	if (cmd < 0 && newfd != oldfd && usmc_fd_flags(newfd) &&
	    fcntl(oldfd, F_GETFD) >= 0)
		close_record(newfd);
	if (cmd >= 0)
		r = fcntl(oldfd, cmd, newfd);
	else if (newfd < 0)
		r = dup(oldfd);
	else if (flags < 0)
		r = dup2(oldfd, newfd);
	else
		r = dup3(oldfd, newfd, flags);
	if (r >= 0 && r != oldfd) {
		int e = errno;

		s = usmc_sock_get(oldfd);
		if (s && usmc_sock_get(r) != s) {
			if (usmc_sock_get(r) && !slot_drop(r))
				sock_free(usmc_sock_get(r));
			slot_add(r, s);
		}
		errno = e;
	}
	unlock();
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
	n_notifiers = 0;
	dead_list = NULL;
	usmc_g.hs_list = NULL;
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
			sock_free(s);
			close(i);
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
	    !lock_init()) {
		unsigned int hi = (unsigned int)usmc_g.nsocks;

		for (unsigned int fd = first; fd <= last && fd < hi; fd++)
			if (usmc_fd_flags((int)fd))
				close_record((int)fd);
		/* epoll fds beyond the socket table */
		for (unsigned int fd = hi > first ? hi : first;
		     fd <= last && fd < FDF_CHUNK * FDF_CHUNKS; fd++) {
			if (!fdflags[fd / FDF_CHUNK]) {
				fd = (fd / FDF_CHUNK + 1) * FDF_CHUNK - 1;
				continue;
			}
			if (usmc_fd_flags((int)fd))
				close_record((int)fd);
		}
		unlock();
	}
	return close_range(first, last, flags);
}
