/* SPDX-License-Identifier: MIT */
/*
 * The handshake driver, as af_smc.c's smc_connect_work/smc_listen_work
 * part: the client's TCP connect and CLC start, the server's accept on
 * an SMC listener, the peek for a CLC eyecatcher, the Proposal read
 * before accept(), the claim of an unclaimed connection by the process
 * that uses it (fork servers), first-contact serialization per peer, the
 * SMC TCP option, and the rules' verdict. The CLC messages themselves are
 * the core's (usmc_smc.c feeds them).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "usmc_clc.h"
#include "usmc_conv.h"
#include "usmc_real.h"
#include "usmc_sock.h"
#include "usmc_synopt.h"

static const uint8_t smcr_eyecatcher[4] = {0xE2, 0xD4, 0xC3, 0xD9};

/* Retry interval while only part of a CLC header has arrived. */
#define PARTIAL_RECHECK_NS (2 * USMC_NS_PER_MS)
/* Guard against a peer that stalls mid-handshake, beyond the core's own
 * timers: a little more than its longest client path, an Accept at the
 * end of CLC_WAIT_TIME (6 s) and then the first link's 4 s CONFIRM_LINK
 * wait and 1 s look for a Decline. */
#define HS_GUARD_NS	   (12 * USMC_NS_PER_SEC)
/*
 * Server timeouts. The first two end before a client's CLC_WAIT_TIME
 * (6 s) for the Accept, so a broken start ends on the server's own clock
 * and never holds up a good client for longer than that client waits:
 * - the rest of a Proposal whose eyecatcher has arrived;
 * - a wait behind a first contact with the same peer (server_begin).
 * The guard of the whole exchange once the server answers (Accept to
 * established) is a little more than the core's longest server path:
 * CLC_WAIT_TIME for the Confirm, then the first link's 2 s CONFIRM_LINK
 * wait and 1 s look for a Decline (docs/negotiation.md).
 */
#define SRV_PROPOSAL_NS	   (2 * USMC_NS_PER_SEC)
#define SRV_HS_GUARD_NS	   (10 * USMC_NS_PER_SEC)
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
		usmc_sock_free(s);
		usmc_real()->close(fd);
	}
}

void usmc_hs_fork_child(void)
{
	dead_list = NULL;
	usmc_g.hs_list = NULL;
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

/* The handshake queued behind a first contact with |peer_id|, if any. */
static usmc_sock *fc_queued(const uint8_t peer_id[8])
{
	for (usmc_sock *c = usmc_g.hs_list; c; c = c->hs_next)
		if (c->mode == USMC_SOCK_HANDSHAKE && c->hs == USMC_HS_QUEUED &&
		    !memcmp(c->peer_id, peer_id, 8))
			return c;
	return NULL;
}

/* |s| no longer may create a link group: the handshakes queued behind it
 * for the same peer go on (they join the new link group, or one of them
 * makes the first contact if this one failed). One at a time, each looked
 * up anew: server_begin makes core calls whose events may end other
 * handshakes, and so release and begin queued ones in a nested call (an
 * SMC-D handshake ends within a core call). Once one holds the first
 * contact again the others stay queued behind it. */
void usmc_hs_fc_release(usmc_sock *s)
{
	uint8_t peer_id[8];
	usmc_sock *c;

	if (!s->fc_hold)
		return;
	s->fc_hold = 0;
	memcpy(peer_id, s->peer_id, sizeof(peer_id));
	while (!fc_holder(peer_id, NULL) && (c = fc_queued(peer_id)))
		server_begin(c);
}

/*
 * The one place that decides whether a socket tries SMC: the rules
 * (docs/rules.md) by program, local and remote address and port (a
 * client's remote port, a listener's own port). A socket they say tcp to
 * is plain TCP and never writes or reads a CLC byte. Fills |why| when a
 * rule (not the default) decided tcp.
 */

int usmc_hs_rules_decide(const struct sockaddr_in *local,
			 const struct sockaddr_in *remote, uint16_t port,
			 char *why, size_t whylen)
{
	usmc_rule_net ln, rn;
	usmc_rule_query q = {program_invocation_short_name, NULL, NULL, port,
			     0};
	char buf[256];
	int idx, v, by_default;

	if (local && local->sin_addr.s_addr != htonl(INADDR_ANY) &&
	    !usmc_rule_net_from_sa(&ln, local))
		q.local = &ln;
	if (remote && !usmc_rule_net_from_sa(&rn, remote))
		q.remote = &rn;
	/* With the SMC TCP option, offering SMC costs a peer that lacks it
	 * nothing (no CLC byte is sent), so every connection offers it, as
	 * smc_run does, unless smc rules (-p) narrow it to what they name;
	 * in explicit mode only what the rules name does. The option is
	 * loaded only when the verdict depends on it: a socket a tcp rule
	 * excludes costs no eBPF load (5 ms of CPU, mostly the kernel's). */
	v = usmc_rules_eval(&usmc_g.cfg.rules, &q, &idx, &by_default);
	/* without smc rules every verdict is TCP here; one the default took
	 * part in is SMC or MAYBE with the default SMC */
	if (by_default && !usmc_rules_has_smc(&usmc_g.cfg.rules) &&
	    usmc_hs_synopt()) {
		q.dflt_smc = 1;
		v = usmc_rules_eval(&usmc_g.cfg.rules, &q, &idx, NULL);
	}
	if (why && whylen)
		why[0] = '\0';
	if (idx >= 0 || usmc_g.cfg.rules.error) {
		usmc_rules_why(&usmc_g.cfg.rules, &q, v, idx, buf, sizeof(buf));
		usmc_rt_log(USMC_LOG_DEBUG, "port %u: %s: %s", port, buf,
			    v == USMC_RULE_SMC	 ? "smc"
			    : v == USMC_RULE_TCP ? "tcp"
						 : "decided per connection");
		if (v == USMC_RULE_TCP && why)
			snprintf(why, whylen, "%.120s: tcp", buf);
	}
	return v;
}

/* The kernel offers SMC on every connection its rules allow, however
 * short (smc_connect); a connection that moves a few bytes pays the CLC
 * exchange and the close protocol for nothing. usmc's clients remember
 * their recent SMC-R connections per peer and offer plain TCP to a peer
 * whose last ones were all short and small, for a while. */
int usmc_hs_short_held(const struct sockaddr_in *to, uint64_t *left)
{
	/* logged by usmc_connect, once per connection, with its fd */
	return usmc_peerhist_held(&usmc_g.peerhist, &usmc_g.cfg.shortconn,
				  to->sin_addr.s_addr, to->sin_port,
				  usmc_rt_now(), left);
}

/* Made when read (usmc-stat, usmc_get_info, the log), not for each held
 * connection: the formatting cost more than the rest of usmc's work on
 * one. */
void usmc_hs_held_why(int held, uint32_t addr, uint16_t port, uint64_t left,
		      char *why, size_t whylen)
{
	const usmc_shortconn *sc = &usmc_g.cfg.shortconn;
	struct in_addr in = {addr};
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &in, a, sizeof(a));
	if (held == 2)
		snprintf(why, whylen,
			 "peer %s:%u answered without the SMC option: TCP for "
			 "%llu ms more",
			 a, ntohs(port), (unsigned long long)left);
	else
		snprintf(why, whylen,
			 "peer %s:%u: its last %u SMC-R connections were short "
			 "(<= %llu B, <= %llu ms): TCP for %llu ms more",
			 a, ntohs(port), sc->n, (unsigned long long)sc->bytes,
			 (unsigned long long)sc->ms, (unsigned long long)left);
}

void usmc_sock_detail(const usmc_sock *s, char *out, size_t len)
{
	if (s->held)
		usmc_hs_held_why(s->held, s->held_addr, s->held_port,
				 s->held_left, out, len);
	else
		usmc_str_copy(out, len, s->fb_detail);
}

void usmc_hs_short_note(usmc_sock *s)
{
	uint64_t now = usmc_rt_now();
	struct in_addr in = {s->peer_addr};
	char a[INET_ADDRSTRLEN];

	if (!s->peer_addr || !s->t_connect)
		return;
	if (usmc_peerhist_note(&usmc_g.peerhist, &usmc_g.cfg.shortconn,
			       s->peer_addr, htons(s->port),
			       s->bytes_sent + s->bytes_recv,
			       now - s->t_connect, now)) {
		inet_ntop(AF_INET, &in, a, sizeof(a));
		usmc_rt_log(USMC_LOG_INFO,
			    "peer %s:%u: %u short SMC-R connections in a row: "
			    "TCP for the next %llu ms",
			    a, s->port, usmc_g.cfg.shortconn.n,
			    (unsigned long long)usmc_g.cfg.shortconn.hold_ms);
	}
	s->peer_addr = 0;
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
		usmc_rt_log(USMC_LOG_INFO,
			    "SMC TCP option unavailable, explicit mode "
			    "(the rules alone decide): %s",
			    err);
		return;
	}
	usmc_rt_log(USMC_LOG_INFO,
		    "SMC TCP option negotiation on (cgroup %s, %s)",
		    usmc_synopt_cgroup(synopt),
		    usmc_synopt_shared(synopt)
			    ? "the program another usmc process attached"
			    : "its own program");
}

usmc_synopt *usmc_hs_synopt(void)
{
	pthread_once(&synopt_once, synopt_init_once);
	return synopt;
}

/* Explicit mode (no SYN option of ours): asks the kernel to keep each
 * child's SYN (TCP_SAVE_SYN), unless the application already did (its
 * TCP_SAVED_SYN read would find it gone). Returns 1 if usmc set it. */
int usmc_hs_save_syn(int fd)
{
	int one = 1, v = 0;
	socklen_t l = sizeof(v);

	if (usmc_real()->getsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &v, &l) || v)
		return 0;
	return usmc_real()->setsockopt(fd, IPPROTO_TCP, TCP_SAVE_SYN, &one,
				       sizeof(one)) == 0;
}

/* |syn| is a saved SYN (IPv4 or IPv6 header, then TCP): 1 if its TCP
 * options hold the SMC option (kind 254, length 6, magic "SMCR" in EBCDIC,
 * as smc_parse_options looks for it), 0 if not, -1 if it cannot be read. */
int usmc_hs_syn_has_smc(const uint8_t *syn, size_t len)
{
	static const uint8_t magic[4] = {0xE2, 0xD4, 0xC3, 0xD9};
	size_t ip, doff, i;

	if (len < 1)
		return -1;
	if ((syn[0] >> 4) == 4) {
		ip = (size_t)(syn[0] & 0xf) * 4;
		if (ip < 20 || len < ip || syn[9] != IPPROTO_TCP)
			return -1;
	} else if ((syn[0] >> 4) == 6) {
		ip = 40; /* no extension headers in a SYN we accepted */
		if (len < ip || syn[6] != IPPROTO_TCP)
			return -1;
	} else {
		return -1;
	}
	if (len < ip + 20)
		return -1;
	doff = (size_t)(syn[ip + 12] >> 4) * 4;
	if (doff < 20 || len < ip + doff)
		return -1;
	for (i = ip + 20; i < ip + doff;) {
		uint8_t kind = syn[i], olen;

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= ip + doff)
			return -1;
		olen = syn[i + 1];
		if (olen < 2 || i + olen > ip + doff)
			return -1;
		if (kind == 254 && olen == 6 && !memcmp(syn + i + 2, magic, 4))
			return 1;
		i += olen;
	}
	return 0;
}

/* Explicit mode, server: the client's SYN carried the SMC option, which
 * our SYN-ACK could not echo, so it has fallen back already (as
 * smc_connect: PEERNOSMC) and will never send CLC: TCP at once instead of
 * waiting USMC_CLC_WAIT_MS for its first bytes. */
static int saved_syn_says_tcp(usmc_sock *c)
{
	uint8_t syn[512];
	socklen_t l = sizeof(syn);

	if (usmc_real()->getsockopt(c->fd, IPPROTO_TCP, TCP_SAVED_SYN, syn,
				    &l) ||
	    usmc_hs_syn_has_smc(syn, l) != 1)
		return 0;
	usmc_sock_fallback(c, USMC_DECL_PEERNOSMC,
			   c->rule_tcp ? c->rule_why
				       : "peer's SYN had the SMC option, which "
					 "explicit mode cannot answer");
	return 1;
}

/* After the TCP handshake of a marked socket: 1 if the peer did not send
 * the option (fall back, no CLC), 0 to go on with CLC. */
int usmc_hs_synopt_says_tcp(usmc_sock *s)
{
	int r;

	if (!s->synopt || !synopt)
		return 0;
	r = usmc_synopt_peer_has_smc(synopt, s->fd);
	if (r == 0) {
		/* its next connections go to TCP at once, for a while
		 * (usmc_peerhist_nosmc): a client's own connect then does it
		 * all, without the progress thread */
		if (!s->is_server && s->peer_addr &&
		    usmc_peerhist_nosmc(&usmc_g.peerhist, &usmc_g.cfg.shortconn,
					s->peer_addr, htons(s->port),
					usmc_rt_now())) {
			struct in_addr in = {s->peer_addr};
			char a[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &in, a, sizeof(a));
			usmc_rt_log(USMC_LOG_INFO,
				    "peer %s:%u has no SMC option: TCP for "
				    "the next %llu ms",
				    a, s->port,
				    (unsigned long long)
					    usmc_g.cfg.shortconn.hold_ms);
		}
		s->peer_addr = 0;
		s->kclean = 1; /* no CLC: it falls back before any */
		usmc_sock_fallback(
			s, USMC_DECL_PEERNOSMC,
			s->rule_tcp    ? s->rule_why
			: s->is_server ? "peer's SYN had no SMC option"
				       : "peer's SYN-ACK had no SMC option");
		return 1;
	}
	if (r < 0)
		usmc_rt_log(USMC_LOG_DEBUG,
			    "fd %d: SMC option state: %s; rules decide", s->fd,
			    strerror(-r));
	return 0;
}

void usmc_hs_set_fallback(usmc_sock *s, uint32_t code, const char *detail)
{
	s->mode = USMC_SOCK_TCP;
	s->fb_code = code;
	usmc_str_copy(s->fb_detail, sizeof(s->fb_detail), detail);
}

/* Peeks |need| bytes at the head of |fd|'s stream. Returns |need|, fewer
 * at the end of the stream, or -1 with errno (EAGAIN if they are not all
 * there on a nonblocking read). */
static ssize_t peek_head(int fd, uint8_t *b, size_t need, int nonblock)
{
	for (;;) {
		ssize_t n = usmc_real()->recv(
			fd, b, need,
			MSG_PEEK | (nonblock ? MSG_DONTWAIT : MSG_WAITALL));
		struct pollfd p = {.fd = fd, .events = POLLRDHUP};

		if (n < 0 || (size_t)n >= need || n == 0)
			return n;
		if (usmc_real()->poll(&p, 1, 0) == 1 &&
		    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return n; /* the rest never comes */
		if (nonblock) {
			errno = EAGAIN;
			return -1;
		}
		/* a blocking peek cut short (a signal): the rest of a
		 * message in flight comes within a round trip */
	}
}

/*
 * Called without the lock before the application's first read of a
 * socket that fell back after sending a Decline (s->decl_check). A peer
 * that declined before ours reached it (crossed Declines: another usmc,
 * or a peer on other clocks than the kernel's, docs/negotiation.md) has
 * its Decline at the head of the stream: it fell back when it sent it,
 * so nothing of its application's can come before. A whole CLC Decline
 * there is read and dropped; anything else ends the check untouched.
 * Returns 0 to go on with the read, or -1 with errno as the read would
 * have failed (EAGAIN, EINTR, ECONNRESET, ...).
 */
int usmc_hs_crossed_decline(usmc_sock *s, int fd, int flags)
{
	static const uint8_t decl[5] = {0xE2, 0xD4, 0xC3, 0xD9,
					SMC_CLC_DECLINE};
	uint8_t b[SMC_CLC_DECLINE_LEN_V2];
	int fl = usmc_real()->fcntl(fd, F_GETFL);
	int nonblock = (flags & MSG_DONTWAIT) || (fl >= 0 && (fl & O_NONBLOCK));
	ssize_t n;
	size_t len;

	/* at least one byte, blocking as the read would */
	n = usmc_real()->recv(fd, b, sizeof(decl),
			      MSG_PEEK | (nonblock ? MSG_DONTWAIT : 0));
	if (n < 0)
		return -1;
	if (n == 0 || memcmp(b, decl, (size_t)n))
		goto done;
	n = peek_head(fd, b, SMC_CLC_HDR_LEN, nonblock);
	if (n < 0)
		return -1;
	if (n < SMC_CLC_HDR_LEN || memcmp(b, decl, sizeof(decl)))
		goto done;
	len = usmc_get_be16(b + 5);
	if (len != SMC_CLC_DECLINE_LEN && len != SMC_CLC_DECLINE_LEN_V2)
		goto done;
	n = peek_head(fd, b, len, nonblock);
	if (n < 0)
		return -1;
	if ((size_t)n < len || memcmp(b + len - 4, smcr_eyecatcher, 4))
		goto done;
	n = usmc_real()->recv(fd, b, len, MSG_DONTWAIT);
	usmc_rt_log(USMC_LOG_DEBUG,
		    "fd %d: the peer's Decline (%s 0x%08x) crossed ours: "
		    "dropped, not handed to the application",
		    fd, usmc_clc_decl_name(usmc_get_be32(b + 16)),
		    usmc_get_be32(b + 16));
done:
	__atomic_store_n(&s->decl_check, 0, __ATOMIC_RELAXED);
	return 0;
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
	usmc_epoll_sock_changed(l);
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

/* "fd 22: SMC-R established 10.0.0.1:6379 <- 10.0.0.2:58208 (SMC-Rv2,
 * lgr 256 link 1)": where a connection went, for the operator. */
static void log_established(usmc_sock *s, int smcd, const char *addrs)
{
	usmc_conn_info ci = {0};
	usmc_peer_dmb pd;
	char more[64] = "";

	if (s->conn) {
		usmc_conn_get_info(s->conn, &ci);
		if (!smcd)
			snprintf(more, sizeof(more), ", lgr %u link %u",
				 ci.lgr_id, ci.link_id);
		else if (!usmc_conn_get_peer_dmb(s->conn, &pd))
			/* the peer's ISM device: its GID, as smc_diag's
			 * smcd_diag_dmbinfo.peer_gid */
			snprintf(more, sizeof(more),
				 ", lgr %u peer gid 0x%016llx", ci.lgr_id,
				 (unsigned long long)usmc_get_be64(pd.gid));
	}
	usmc_rt_log(USMC_LOG_INFO, "fd %d: %s established %s (SMC-%sv%d%s)",
		    s->fd, smcd ? "SMC-D" : "SMC-R", addrs, smcd ? "D" : "R",
		    s->smc_version, more);
}

/* Called whenever a socket leaves USMC_SOCK_HANDSHAKE. */
void usmc_sock_hs_done(usmc_sock *s)
{
	usmc_sock *l = s->lsock;
	char addrs[160] = "";

	s->hs = USMC_HS_NONE;
	s->deadline = 0;
	s->rgen++;
	usmc_epoll_sock_changed(s);
	usmc_g.mode_gen++;
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	usmc_hs_fc_release(s);
	free(s->clc_buf);
	s->clc_buf = NULL;
	s->clc_have = s->clc_need = 0;
	if (usmc_rt_log_on(USMC_LOG_INFO))
		usmc_rt_conn_str(s->fd, s->is_server, addrs, sizeof(addrs));
	if (s->mode == USMC_SOCK_TCP) {
		usmc_g.stats.conns_fallback++;
		usmc_rt_log(USMC_LOG_INFO,
			    "fd %d: TCP fallback %s: %s 0x%08x %s", s->fd,
			    addrs, usmc_decline_name(s->fb_code), s->fb_code,
			    s->fb_detail);
	} else if (s->mode == USMC_SOCK_SMCR) {
		int d = s->conn &&
			usmc_conn_get_mode(s->conn) == USMC_MODE_SMCD;

		usmc_g.stats.conns_smcr++;
		usmc_g.stats.conns_smcd += (uint64_t)d;
		if (usmc_rt_log_on(USMC_LOG_INFO))
			log_established(s, d, addrs);
		/* The idle TCP connection tells us when the peer process is
		 * gone (below). */
		usmc_loop_watch(s, EPOLLRDHUP);
	} else if (s->mode == USMC_SOCK_FAILED) {
		usmc_g.stats.conns_failed++;
		usmc_rt_log(USMC_LOG_INFO, "fd %d: SMC handshake failed %s: %s",
			    s->fd, addrs, strerror(s->error));
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
		usmc_real()->shutdown(s->fd, SHUT_RDWR);
	}
	usmc_stat_kick();
	usmc_sock_wake_all();
}

void usmc_sock_fallback(usmc_sock *s, uint32_t code, const char *detail)
{
	if (s->conn)
		usmc_smc_conn_free(s);
	usmc_hs_set_fallback(s, code, detail);
	usmc_sock_hs_done(s);
}

/* An established socket's link group lost its last link before any data
 * moved (docs/runtime.md "Failover"): it carries on over its TCP
 * connection, which has carried no byte of the application's. */
void usmc_sock_fallback_late(usmc_sock *s, uint32_t code)
{
	if (s->conn)
		usmc_smc_conn_free(s);
	usmc_hs_set_fallback(s, code, "no SMC-R link left, no data moved");
	s->deadline = 0;
	s->rgen++;
	usmc_epoll_sock_changed(s);
	usmc_g.mode_gen++;
	usmc_loop_watch(s, 0);
	usmc_hs_list_del(s);
	usmc_g.stats.conns_fallback++;
	if (usmc_rt_log_on(USMC_LOG_INFO)) {
		char addrs[160];

		usmc_rt_conn_str(s->fd, s->is_server, addrs, sizeof(addrs));
		usmc_rt_log(USMC_LOG_INFO,
			    "fd %d: TCP fallback after SMC-R %s: %s 0x%08x %s",
			    s->fd, addrs, usmc_decline_name(s->fb_code),
			    s->fb_code, s->fb_detail);
	}
	usmc_stat_kick();
	usmc_sock_wake_all();
}

/* A handshake error of the peer's making (a bad CLC message, a stall):
 * once per connection, as often as a peer likes, so limited per peer
 * address with the core's errors (usmc_smc_err_level): a peer's first at
 * warn, the rest at info. */
static void peer_err(usmc_sock *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void peer_err(usmc_sock *s, const char *fmt, ...)
{
	char msg[160], pe[64], subject[72];
	char *port;
	va_list ap;

	if (!usmc_rt_log_on(USMC_LOG_WARN))
		return; /* a level of error: neither warn nor info is written */
	usmc_rt_addr_str(s->fd, 1, pe, sizeof(pe));
	/* the subject is the address without its port: one peer, one
	 * subject, however many connections it makes */
	snprintf(subject, sizeof(subject), "peer %s", pe);
	port = strrchr(subject, ':');
	if (port && strcmp(pe, "*"))
		*port = '\0';
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	usmc_rt_log(usmc_smc_err_level(subject, usmc_rt_now()),
		    "fd %d: %s (peer %s)", s->fd, msg, pe);
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
void usmc_hs_client_start(usmc_sock *s)
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

			n = usmc_real()->recv(s->fd, hdr, sizeof(hdr),
					      MSG_PEEK | MSG_DONTWAIT);
			if (n == 0) {
				usmc_rt_log(USMC_LOG_DEBUG,
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
				peer_err(s,
					 "peer sent a bad CLC header "
					 "(%02x %02x %02x %02x ...)",
					 hdr[0], hdr[1], hdr[2], hdr[3]);
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
		n = usmc_real()->recv(s->fd, s->clc_buf + s->clc_have,
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
		peer_err(s, "first CLC message is type %u, not a Proposal",
			 type);
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
	usmc_sock_wake_all();
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
	/* SMC-D: the link group exists once the Proposal is answered (no
	 * link to confirm), so the next handshakes may join it now, as the
	 * kernel's smc_listen_work lets go of smc_server_lgr_pending for
	 * an ISM device right after the connection is made */
	if (s->fc_hold && usmc_smc_has_lgr(s->peer_id))
		usmc_hs_fc_release(s);
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
	ssize_t n =
		usmc_real()->recv(s->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);

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

	if (usmc_sock_addr(c, 0, &lo) || usmc_sock_addr(c, 1, &pe) ||
	    usmc_hs_rules_decide(&lo, &pe, c->port, c->rule_why,
				 sizeof(c->rule_why)) != USMC_RULE_SMC) {
		c->rule_tcp = 1;
		if (!c->rule_why[0])
			snprintf(c->rule_why, sizeof(c->rule_why),
				 "no rule matched, default tcp");
	}
}

int usmc_hs_accept_one(usmc_sock *l)
{
	struct sockaddr_in pe;
	socklen_t pl = sizeof(pe);
	int fd = usmc_real()->accept4(l->fd, (struct sockaddr *)&pe, &pl,
				      SOCK_NONBLOCK | SOCK_CLOEXEC);
	usmc_sock *c;

	if (fd < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	c = usmc_sock_new(fd);
	if (!c) {
		usmc_real()->close(fd);
		return 1;
	}
	c->fresh = 0;
	c->is_server = 1;
	c->lsock = l;
	c->port = l->port;
	if (pl == sizeof(pe) && pe.sin_family == AF_INET) {
		c->addr_peer = pe;
		c->addr_peer_ok = 1;
	}
	c->mode = USMC_SOCK_HANDSHAKE;
	c->hs = USMC_HS_WAIT_FIRST;
	c->wait_end = usmc_rt_now() +
		      (uint64_t)usmc_g.cfg.clc_wait_ms * USMC_NS_PER_MS;
	c->deadline = c->wait_end;
	usmc_hs_list_add(c);
	c->synopt = l->synopt;
	if (l->rules_maybe)
		child_rules(c);
	/* a child already known to be plain TCP is never watched
	 * (two epoll_ctl calls per connection, issue 11) */
	if (usmc_hs_synopt_says_tcp(c))
		return 1;
	if (l->save_syn && saved_syn_says_tcp(c))
		return 1;
	usmc_loop_watch(c, EPOLLIN);
	server_peek_first(c, usmc_rt_now());
	return 1;
}

int usmc_hs_accept_some(usmc_sock *l, int max, int until_queued)
{
	for (int i = 0; i < max && !(until_queued && l->q_head); i++) {
		int r = usmc_hs_accept_one(l);

		if (r > 0)
			continue;
		if (r == 0)
			break;
		if (errno != EINTR && errno != ECONNABORTED) {
			l->kerr = 1;
			return -1;
		}
	}
	l->kerr = 0;
	return 0;
}

static void do_accepts(usmc_sock *l)
{
	if (usmc_hs_accept_some(l, 64, 0))
		usmc_rt_log(USMC_LOG_ERR, "accept on fd %d: %s", l->fd,
			    strerror(errno));
}

void usmc_hs_listen_watch(usmc_sock *s)
{
	if (s->mode != USMC_SOCK_LISTEN || !s->listen_smc || s->listen_closed)
		return;
	usmc_loop_watch(s, s->ep_kern && !s->bwaiters ? 0 : EPOLLIN);
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
		    usmc_real()->recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <
			    0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK)) {
			usmc_rt_log(USMC_LOG_DEBUG,
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

		if (usmc_real()->getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err,
					    &len))
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
		if (!usmc_hs_synopt_says_tcp(s))
			usmc_hs_client_start(s);
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
			usmc_rt_log(USMC_LOG_DEBUG,
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
			peer_err(s,
				 "client sent only part of its Proposal in %d "
				 "s: dropped",
				 (int)(SRV_PROPOSAL_NS / USMC_NS_PER_SEC));
		else
			peer_err(s, "CLC handshake timed out");
		sock_fail(s, ETIMEDOUT);
	}
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
	usmc_hs_listen_watch(s);
}
