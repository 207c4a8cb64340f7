/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the four parts of the socket layer, as af_smc.c's
 * parts: usmc_socket.c (the POSIX calls), usmc_hs.c (the handshake
 * driver), usmc_fdtab.c (the fd table, dup, fork) and usmc_poll.c (poll
 * and select). Not installed; the rest of the runtime uses usmc_rt.h.
 */
#ifndef USMC_SOCK_H
#define USMC_SOCK_H

#include "usmc_fdflags.h"
#include "usmc_rt.h"

/* Every call starts here: a handler that runs from now on, even while
 * the call waits for the lock, is one that interrupted this call. */
static inline int usmc_sock_lock(void)
{
	usmc_sig_reset();
	if (usmc_rt_init())
		return -1;
	pthread_mutex_lock(&usmc_g.lock);
	return 0;
}

static inline void usmc_sock_unlock(void)
{
	pthread_mutex_unlock(&usmc_g.lock);
}

/* Lock held: wakes every waiter, in usmc_wait and in poll/epoll. */
static inline void usmc_sock_wake_all(void)
{
	usmc_rt_broadcast();
	usmc_rt_notify();
}

/* usmc_fdtab.c, lock held: a new record for |fd|, or NULL; frees one. */
usmc_sock *usmc_sock_new(int fd);
void usmc_sock_free(usmc_sock *s);
/* |fd| stops naming its socket; returns 1 if the socket lives on under
 * another fd (dup), 0 if |fd| was its last. */
int usmc_fdtab_drop(int fd);
/* ioctl FIONBIO |on| on |fd|, recorded as the app's O_NONBLOCK only if
 * the kernel took it; an SMC listener's kernel file stays nonblocking
 * (its progress thread accepts). Takes the lock. */
int usmc_fdtab_fionbio(int fd, int on);

/* usmc_socket.c, lock held: what closing |fd| means to usmc, short of
 * the kernel close. */
void usmc_sock_close_record(int fd);

/* usmc_hs.c, lock held */
/* The rules' verdict (USMC_RULE_*) for a socket; fills |why| when a rule
 * decided tcp. */
/* Short-lived connections (docs/rules.md): nonzero if |to| is held to
 * TCP now (1 short connections, 2 no SMC option), for *left ms more;
 * usmc_hs_held_why says why in words; usmc_hs_short_note notes client
 * |s|'s SMC-R connection at its close. */
int usmc_hs_short_held(const struct sockaddr_in *to, uint64_t *left);
void usmc_hs_held_why(int held, uint32_t addr, uint16_t port, uint64_t left,
		      char *why, size_t whylen);
void usmc_hs_short_note(usmc_sock *s);
int usmc_hs_rules_decide(const struct sockaddr_in *local,
			 const struct sockaddr_in *remote, uint16_t port,
			 char *why, size_t whylen);
/* The SMC TCP option, loaded on first use; NULL in explicit mode. */
struct usmc_synopt *usmc_hs_synopt(void);
int usmc_hs_save_syn(int fd);
int usmc_hs_syn_has_smc(const uint8_t *syn, size_t len);
/* 1 if the peer did not send the SMC TCP option (fallen back, no CLC). */
int usmc_hs_synopt_says_tcp(usmc_sock *s);
void usmc_hs_set_fallback(usmc_sock *s, uint32_t code, const char *detail);
int usmc_hs_crossed_decline(usmc_sock *s, int fd, int flags);
/* Starts the CLC exchange on a connected client socket. */
void usmc_hs_client_start(usmc_sock *s);
/* Lock held: accepts one connection pending on SMC listener |l| and starts
 * its server side (queued for accept() once it is TCP or SMC-R). 1 if one
 * was taken, 0 if none is pending, -1 with accept4's errno. The progress
 * thread calls it, and, while it does not accept on the listener
 * (usmc_hs_listen_watch), the app's epoll_wait and accept(). */
int usmc_hs_accept_one(usmc_sock *l);
/* Lock held: up to |max| of them, or (|until_queued|) until one is queued
 * for accept(). 0, or -1 with accept4's errno (EMFILE, ENOBUFS), and then
 * kerr set until an accept on the backlog succeeds or finds it empty. */
int usmc_hs_accept_some(usmc_sock *l, int max, int until_queued);
/* Lock held: whether the progress thread accepts on SMC listener |s|: not
 * while an app's epoll set holds its kernel fd (ep_kern) and no accept()
 * blocks on it (bwaiters). Then the kernel wakes the app's own epoll_wait
 * for a new connection and its accept() takes it, with no thread hop. */
void usmc_hs_listen_watch(usmc_sock *s);
/* |s| no longer may make the first contact with its peer. */
void usmc_hs_fc_release(usmc_sock *s);
/* In the child after fork(): the parent's handshakes are not ours. */
void usmc_hs_fork_child(void);

/* usmc_poll.c: after fork(), the parent's notifiers are not ours. */
void usmc_notify_fork_child(void);

#endif /* USMC_SOCK_H */
