/* SPDX-License-Identifier: MIT */
/*
 * epoll over usmc sockets. An SMC-R socket's kernel fd is idle (its data
 * moves over RDMA), so the kernel cannot say when it is readable. Each
 * epoll fd that holds a usmc socket gets a shadow set: per fd, the app's
 * events and data and where its readiness comes from.
 *
 *  - "kernel" entries (plain TCP, fallback, fresh sockets, non-SMC
 *    listeners) are registered in the real epoll set with the app's own
 *    events and data: the kernel gives level, edge and one-shot semantics.
 *  - "user" entries (SMC-R, handshake, failed, SMC listeners) are not in
 *    the kernel set; epoll_wait computes their readiness from the runtime.
 *    Edge-triggered: reported when ready and the socket's readiness
 *    generation (rgen, bumped on every data, room, close or error event)
 *    moved since the last report, as the kernel reports on each wake-up.
 *
 * An SMC listener's entry is a user one (its queue holds the connections
 * whose handshake ended), but its kernel fd is in the real set too, under
 * a listener cookie (lk_sync): the kernel wakes the app's thread
 * for a new connection, and the app's accept() takes it (usmc_accept4)
 * with no hop through the progress thread, which stops accepting on it
 * (usmc_hs_listen_watch).
 *
 * An eventfd in the real set (with a per-process random cookie as its data)
 * is signalled on every readiness change, so a thread asleep in the kernel
 * epoll_wait wakes up. A socket that changes mode while registered (the
 * handshake ends in SMC-R or in TCP) moves between kernel and user on the
 * next epoll_wait or epoll_ctl (usmc_g.mode_gen says when to look).
 *
 * A set finds an fd's entry by hash, and epoll_wait looks only at its
 * candidates: user entries whose socket's readiness may have risen since
 * they were last looked at (added, modified, moved to user, or their
 * socket's rgen bumped: usmc_epoll_sock_changed), and level-triggered
 * ones still ready. So a wait costs what is ready, not what is
 * registered. An entry on an fd that is not its socket's own (a dup) is
 * always a candidate: the bump names the socket by its own fd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "usmc_real.h"
#include "usmc_rt.h"
#include "usmc_sock.h"

typedef struct ep_ent {
	int fd;
	uint32_t events;
	uint64_t data;
	int in_kernel;
	int disabled; /* EPOLLONESHOT fired */
	int gen_valid;
	uint32_t last_gen;
	int cand;  /* on the set's candidate list */
	int lkern; /* SMC listener: its fd is in the real set (lcookie) */
	struct ep_ent *next, *prev; /* all entries */
	struct ep_ent *hnext;	    /* hash chain */
	struct ep_ent *cnext, *cprev;
} ep_ent;

typedef struct ep_set {
	int epfd;
	int evfd;
	/* the shm device's fd in the kernel set (data dev_cookie) while its
	 * thread sleeps as the device's direct poller (dev_on: EPOLLIN;
	 * else events 0, idle); -1: not added */
	int dev_fd;
	int dev_on;
	int dev_poller; /* the direct poller sleeps in this set */
	uint64_t nid;	/* its notifier (usmc_notify_add) */
	int external;	/* waited on outside epoll_wait: always armed */
	uint64_t seen_gen;
	int dying; /* its epoll fd is being closed */
	ep_ent *ents;
	ep_ent **htab; /* by fd, hsize buckets (a power of 2) */
	unsigned int hsize, nents;
	ep_ent *cand, *ctail; /* candidates, in the order they came */
	/* deleted entries kept for the next EPOLL_CTL_ADD (by hnext): a
	 * server adds and deletes a socket per connection, and calloc/free
	 * cost more than the rest of the call (issue 11) */
	ep_ent *spare;
	unsigned int nspare;
	struct ep_set *next;
} ep_set;

#define EP_SPARE_MAX 64
#define LK_MAX	     8

static ep_set *sets;
static uint64_t cookie, dev_cookie;
/* a listener's kernel events: (lcookie << 32) | its fd. The top bit set and
 * not all ones: no user-space pointer, small integer or -1 an app might
 * use as its data */
static uint32_t lcookie;

static int is_lcookie(uint64_t data)
{
	return (uint32_t)(data >> 32) == lcookie;
}

static ep_set *set_find(int epfd)
{
	for (ep_set *e = sets; e; e = e->next)
		if (e->epfd == epfd)
			return e;
	return NULL;
}

static ep_ent **hslot(ep_set *set, int fd)
{
	return &set->htab[(unsigned int)fd & (set->hsize - 1)];
}

static ep_ent *ent_find(ep_set *set, int fd)
{
	if (!set->hsize)
		return NULL;
	for (ep_ent *e = *hslot(set, fd); e; e = e->hnext)
		if (e->fd == fd)
			return e;
	return NULL;
}

static void cand_add(ep_set *set, ep_ent *e)
{
	if (e->cand || e->in_kernel)
		return;
	e->cand = 1;
	e->cnext = NULL;
	e->cprev = set->ctail;
	if (set->ctail)
		set->ctail->cnext = e;
	else
		set->cand = e;
	set->ctail = e;
}

static void cand_del(ep_set *set, ep_ent *e)
{
	if (!e->cand)
		return;
	if (e->cprev)
		e->cprev->cnext = e->cnext;
	else
		set->cand = e->cnext;
	if (e->cnext)
		e->cnext->cprev = e->cprev;
	else
		set->ctail = e->cprev;
	e->cand = 0;
	e->cnext = e->cprev = NULL;
}

/* Doubles the table when it is full; 0, or -1 if it cannot grow (the
 * chains then just get longer). */
static int hgrow(ep_set *set)
{
	unsigned int n = set->hsize ? set->hsize * 2 : 64;
	ep_ent **t;

	if (set->nents < set->hsize)
		return 0;
	t = calloc(n, sizeof(*t));
	if (!t)
		return set->hsize ? 0 : -1;
	for (ep_ent *e = set->ents; e; e = e->next) {
		ep_ent **s = &t[(unsigned int)e->fd & (n - 1)];

		e->hnext = *s;
		*s = e;
	}
	free(set->htab);
	set->htab = t;
	set->hsize = n;
	return 0;
}

static int ent_link(ep_set *set, ep_ent *e)
{
	ep_ent **s;

	if (hgrow(set))
		return -1;
	s = hslot(set, e->fd);
	e->hnext = *s;
	*s = e;
	e->prev = NULL;
	e->next = set->ents;
	if (set->ents)
		set->ents->prev = e;
	set->ents = e;
	set->nents++;
	return 0;
}

static void lk_off(ep_set *set, ep_ent *e, int del);

static void ent_del(ep_set *set, ep_ent *ent)
{
	lk_off(set, ent, !set->dying);
	for (ep_ent **pp = hslot(set, ent->fd); *pp; pp = &(*pp)->hnext)
		if (*pp == ent) {
			*pp = ent->hnext;
			break;
		}
	if (ent->prev)
		ent->prev->next = ent->next;
	else
		set->ents = ent->next;
	if (ent->next)
		ent->next->prev = ent->prev;
	cand_del(set, ent);
	set->nents--;
	if (set->nspare < EP_SPARE_MAX) {
		ent->hnext = set->spare;
		set->spare = ent;
		set->nspare++;
	} else {
		free(ent);
	}
}

/* A zeroed entry: a spare one, else a new one. */
static ep_ent *ent_alloc(ep_set *set)
{
	ep_ent *e = set->spare;

	if (!e)
		return calloc(1, sizeof(*e));
	set->spare = e->hnext;
	set->nspare--;
	memset(e, 0, sizeof(*e));
	return e;
}

static void ent_unalloc(ep_set *set, ep_ent *e)
{
	e->hnext = set->spare;
	set->spare = e;
	set->nspare++;
}

static void spare_free(ep_set *set)
{
	while (set->spare) {
		ep_ent *e = set->spare;

		set->spare = e->hnext;
		free(e);
	}
	set->nspare = 0;
}

/* Readiness from user space for this socket's current mode? */
static int is_user(int fd)
{
	usmc_sock *s = usmc_sock_get(fd);

	return s && usmc_sock_revents(s, 0) >= 0;
}

/* Lock held: |e|'s listener fd leaves the real set (|del|: the set lives
 * on); the progress thread may accept on it again. */
static void lk_off(ep_set *set, ep_ent *e, int del)
{
	usmc_sock *s;

	if (!e->lkern)
		return;
	e->lkern = 0;
	if (del)
		usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_DEL, e->fd, NULL);
	s = usmc_sock_get(e->fd);
	if (s && s->ep_kern > 0) {
		s->ep_kern--;
		usmc_hs_listen_watch(s);
	}
}

/* Lock held: a user entry of an SMC listener gets its fd in the real set
 * (an entry that is no longer one, loses it). Level-triggered as the
 * app's entry is, so a backlog the app leaves (one accept per wake-up,
 * as nginx) keeps waking it; edge-triggered for an edge or one-shot
 * entry. |again|: the app changed its entry (EPOLL_CTL_MOD): the kernel
 * looks at the backlog afresh, as for the app's own entry. Where the add
 * fails (ENOSPC), the progress thread accepts for it, as before. */
static void lk_sync(ep_set *set, ep_ent *e, int again)
{
	usmc_sock *s = usmc_sock_get(e->fd);
	int want = !e->in_kernel && s && s->mode == USMC_SOCK_LISTEN &&
		   s->listen_smc && !s->listen_closed;
	struct epoll_event ev = {0};

	if (!want) {
		lk_off(set, e, 1);
		return;
	}
	if (e->lkern && !again)
		return;
	ev.events =
		EPOLLIN | (e->events & (EPOLLET | EPOLLONESHOT) ? EPOLLET : 0);
	ev.data.u64 = ((uint64_t)lcookie << 32) | (uint32_t)e->fd;
	if (e->lkern) {
		usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_MOD, e->fd, &ev);
		return;
	}
	if (usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_ADD, e->fd, &ev))
		return;
	e->lkern = 1;
	s->ep_kern++;
	usmc_hs_listen_watch(s);
}

static int kernel_add(int epfd, ep_ent *e)
{
	struct epoll_event ev = {0};

	ev.events = e->disabled ? (e->events & (EPOLLET | EPOLLONESHOT))
				: e->events;
	ev.data.u64 = e->data;
	return usmc_real()->epoll_ctl(epfd, EPOLL_CTL_ADD, e->fd, &ev);
}

/* Lock held: moves entries whose socket changed mode. */
static void set_sync(ep_set *set)
{
	if (set->seen_gen == usmc_g.mode_gen)
		return;
	set->seen_gen = usmc_g.mode_gen;
	for (ep_ent *e = set->ents; e; e = e->next) {
		int user = is_user(e->fd);

		if (user && e->in_kernel) {
			usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_DEL, e->fd,
					       NULL);
			e->in_kernel = 0;
			e->gen_valid = 0;
		} else if (!user && !e->in_kernel) {
			if (kernel_add(set->epfd, e) == 0 || errno == EEXIST) {
				cand_del(set, e);
				e->in_kernel = 1;
			}
		}
		lk_sync(set, e, 0);
		/* a mode change may have made it ready */
		cand_add(set, e);
	}
}

static ep_set *set_new(int epfd)
{
	struct epoll_event ev = {0};
	ep_set *set = calloc(1, sizeof(*set));

	if (!set) {
		errno = ENOMEM;
		return NULL;
	}
	while (!cookie)
		usmc_rt_rand((uint8_t *)&cookie, sizeof(cookie));
	while (!dev_cookie || dev_cookie == cookie)
		usmc_rt_rand((uint8_t *)&dev_cookie, sizeof(dev_cookie));
	while (!lcookie || lcookie == UINT32_MAX ||
	       lcookie == (uint32_t)(cookie >> 32) ||
	       lcookie == (uint32_t)(dev_cookie >> 32)) {
		usmc_rt_rand((uint8_t *)&lcookie, sizeof(lcookie));
		lcookie |= 0x80000000u;
	}
	set->epfd = epfd;
	set->dev_fd = -1;
	set->seen_gen = usmc_g.mode_gen;
	set->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (set->evfd < 0) {
		free(set);
		return NULL;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = cookie;
	/* also checks that |epfd| is an epoll fd */
	if (usmc_real()->epoll_ctl(epfd, EPOLL_CTL_ADD, set->evfd, &ev) ||
	    !(set->nid = usmc_notify_add(set->evfd, 0))) {
		int e = errno;

		usmc_real()->close(set->evfd);
		free(set);
		errno = e;
		return NULL;
	}
	set->next = sets;
	sets = set;
	usmc_fdflag_set(epfd, USMC_FDF_EPOLL, 1);
	return set;
}

/* Lock held: the set goes; |in_use|: its epoll fd stays open, so the
 * eventfd leaves the kernel set too. */
static void set_free(ep_set *set, int in_use)
{
	for (ep_set **pp = &sets; *pp; pp = &(*pp)->next)
		if (*pp == set) {
			*pp = set->next;
			break;
		}
	set->dying = !in_use;
	while (set->ents)
		ent_del(set, set->ents);
	spare_free(set);
	free(set->htab);
	if (in_use)
		usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_DEL, set->evfd,
				       NULL);
	if (in_use && set->dev_fd >= 0)
		usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_DEL, set->dev_fd,
				       NULL);
	usmc_notify_del(set->evfd);
	usmc_real()->close(set->evfd);
	usmc_fdflag_set(set->epfd, USMC_FDF_EPOLL, 0);
	free(set);
}

void usmc_epoll_closed(int epfd)
{
	ep_set *set = set_find(epfd);

	if (set)
		set_free(set, 0);
	usmc_fdflag_set(epfd, USMC_FDF_EPOLL, 0);
}

void usmc_epoll_fd_closed(int fd)
{
	for (ep_set *set = sets; set; set = set->next) {
		ep_ent *e = ent_find(set, fd);

		/* kernel entries go with the file, as the kernel does */
		if (e)
			ent_del(set, e);
	}
}

/*
 * |fd|'s socket is the kernel's for good (usmc_sock_kernel_mark): its
 * entries leave the shadow sets and stay in the kernel sets only, with
 * the app's events and data, where its epoll_ctl calls now go directly.
 * A set left with no entry goes with its eventfd: an epoll fd that holds
 * only the kernel's sockets is the kernel's, and epoll_wait on it is the
 * kernel's call alone. Returns -1 with errno if one entry could not go
 * into its kernel set: then every shadow entry stays (those added are
 * plain kernel entries, as set_sync makes them), and so must the fd.
 */
int usmc_epoll_kernel_fd(int fd)
{
	ep_set *set, *next;
	int err = 0;

	for (set = sets; set; set = set->next) {
		ep_ent *e = ent_find(set, fd);

		if (!e || e->in_kernel)
			continue;
		if (kernel_add(set->epfd, e) == 0 || errno == EEXIST)
			e->in_kernel = 1;
		else if (!err)
			err = errno;
	}
	if (err) {
		errno = err;
		return -1;
	}
	for (set = sets; set; set = next) {
		ep_ent *e = ent_find(set, fd);

		next = set->next;
		if (!e)
			continue;
		ent_del(set, e);
		if (!set->ents)
			set_free(set, 1);
	}
	return 0;
}

int usmc_epoll_create1(int flags)
{
	return epoll_create1(flags);
}

void usmc_epoll_external(int epfd)
{
	ep_set *set = set_find(epfd);

	if (set && !set->external) {
		set->external = 1;
		usmc_notify_arm(set->nid, 1);
		/* a socket may have become ready while the set was not armed
		 * (nothing was written for it then): the outside waiter looks
		 * once (epoll_wait), and sleeps on the set after that */
		usmc_notify_kick(set->nid);
	}
}

int usmc_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	ep_set *set;
	ep_ent *e;
	int r = 0, err = 0;

	/* an epoll set of usmc's in another set: woken from there */
	if ((usmc_fd_flags(fd) & USMC_FDF_EPOLL) && op != EPOLL_CTL_DEL &&
	    !usmc_rt_init()) {
		pthread_mutex_lock(&usmc_g.lock);
		usmc_epoll_external(fd);
		pthread_mutex_unlock(&usmc_g.lock);
	}
	if ((usmc_fd_flags(fd) & USMC_FDF_KERNEL) ||
	    (!(usmc_fd_flags(fd) & USMC_FDF_SOCK) &&
	     !(usmc_fd_flags(epfd) & USMC_FDF_EPOLL)))
		return usmc_real()->epoll_ctl(epfd, op, fd, ev);
	if (usmc_rt_init())
		return -1;
	pthread_mutex_lock(&usmc_g.lock);
	/* first: it may free this very set */
	usmc_sock_kernel_mark(usmc_sock_get(fd), fd);
	set = set_find(epfd);
	if (!usmc_sock_get(fd) || (usmc_fd_flags(fd) & USMC_FDF_KERNEL)) {
		/* not usmc's, or the kernel's for good: the kernel's,
		 * whatever was here before */
		if (set && (e = ent_find(set, fd))) {
			ent_del(set, e);
			if (!set->ents)
				set_free(set, 1);
		}
		pthread_mutex_unlock(&usmc_g.lock);
		return usmc_real()->epoll_ctl(epfd, op, fd, ev);
	}
	if ((op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD) && !ev) {
		err = EFAULT;
		goto out;
	}
	if (fd == epfd) {
		err = EINVAL;
		goto out;
	}
	if (!set && op == EPOLL_CTL_ADD && !(set = set_new(epfd))) {
		err = errno;
		goto out;
	}
	if (set)
		set_sync(set);
	e = set ? ent_find(set, fd) : NULL;
	if (op != EPOLL_CTL_DEL)
		usmc_sock_use(usmc_sock_get(fd));
	switch (op) {
	case EPOLL_CTL_ADD:
		if (e) {
			err = EEXIST;
			break;
		}
		e = ent_alloc(set);
		if (!e) {
			err = ENOMEM;
			break;
		}
		e->fd = fd;
		e->events = ev->events;
		e->data = ev->data.u64;
		if (!is_user(fd)) {
			if (kernel_add(epfd, e)) {
				err = errno;
				ent_unalloc(set, e);
				break;
			}
			e->in_kernel = 1;
		}
		if (ent_link(set, e)) {
			if (e->in_kernel)
				usmc_real()->epoll_ctl(epfd, EPOLL_CTL_DEL, fd,
						       NULL);
			err = ENOMEM;
			ent_unalloc(set, e);
			break;
		}
		lk_sync(set, e, 0);
		cand_add(set, e);
		break;
	case EPOLL_CTL_MOD:
		if (!e) {
			err = ENOENT;
			break;
		}
		if (e->in_kernel) {
			r = usmc_real()->epoll_ctl(epfd, EPOLL_CTL_MOD, fd, ev);
			if (r) {
				err = errno;
				break;
			}
		}
		e->events = ev->events;
		e->data = ev->data.u64;
		/* as the kernel: re-evaluated now, edge or not */
		e->disabled = 0;
		e->gen_valid = 0;
		lk_sync(set, e, 1);
		cand_add(set, e);
		break;
	case EPOLL_CTL_DEL:
		if (!e) {
			err = ENOENT;
			break;
		}
		if (e->in_kernel)
			usmc_real()->epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
		ent_del(set, e);
		if (!set->ents) {
			set_free(set, 1);
			set = NULL;
		}
		break;
	default:
		err = EINVAL;
	}
	/* an entry's readiness may be due now */
	if (!err && set)
		usmc_rt_notify();
out:
	pthread_mutex_unlock(&usmc_g.lock);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Lock held: readiness of one user entry to report now, or 0. */
static int ent_ready(ep_ent *e)
{
	usmc_sock *s;
	int re;

	if (e->in_kernel || e->disabled)
		return 0;
	s = usmc_sock_get(e->fd);
	if (!s)
		return 0;
	re = usmc_sock_revents(s, e->events);
	if (re <= 0)
		return 0;
	re &= (int)(e->events | EPOLLERR | EPOLLHUP);
	if (!re)
		return 0;
	if (e->events & EPOLLET) {
		if (e->gen_valid && e->last_gen == s->rgen)
			return 0;
		e->last_gen = s->rgen;
		e->gen_valid = 1;
	}
	if (e->events & EPOLLONESHOT)
		e->disabled = 1;
	return re;
}

/* Lock held: ready user entries into |out|, from the candidates only.
 * One that is not ready leaves them until its socket changes; an edge or
 * one-shot entry leaves once reported; a level one that was reported goes
 * to the end (still ready next time, as the kernel's), so a small |max|
 * does not starve the others. */
static int collect(ep_set *set, struct epoll_event *out, int max)
{
	ep_ent *e = set->cand, *stop = NULL;
	int n = 0;

	while (e && e != stop && n < max) {
		ep_ent *next = e->cnext;
		int re = ent_ready(e);
		usmc_sock *s = usmc_sock_get(e->fd);
		/* a dup's entry: its socket's bumps name another fd */
		int keep = s && s->fd != e->fd;

		if (re) {
			out[n].events = (uint32_t)re;
			out[n].data.u64 = e->data;
			n++;
			if (!(e->events & (EPOLLET | EPOLLONESHOT)))
				keep = 1;
		}
		if (!keep) {
			cand_del(set, e);
		} else if (re && e != set->ctail) {
			cand_del(set, e);
			cand_add(set, e);
			if (!stop)
				stop = e; /* the rest were looked at */
		}
		e = next;
	}
	return n;
}

/* Lock held: |s|'s readiness may have risen (its rgen moved): its entries
 * become candidates in every set. */
void usmc_epoll_sock_changed(usmc_sock *s)
{
	for (ep_set *set = sets; set; set = set->next) {
		ep_ent *e = ent_find(set, s->fd);

		if (e)
			cand_add(set, e);
	}
}

/* Lock held: the kernel woke |set| for listener entry |e|: its backlog may
 * hold a connection. */
static void lk_mark(ep_set *set, ep_ent *e)
{
	usmc_sock *s;

	if (!e || !e->lkern || !(s = usmc_sock_get(e->fd)) || s->ep_events)
		return;
	/* accepted here, in the app's thread, until one is queued: a TCP
	 * child at once, a CLC child once its handshake ends (the queue's
	 * new edge reports it). So the listener is readable when accept()
	 * has a connection to return, as the kernel's SMC listener, and
	 * accept() takes the rest of the backlog. */
	if (!s->q_head && usmc_hs_accept_some(s, INT_MAX, 1)) {
		/* an error (EMFILE) for accept() to tell */
		s->rgen++;
		usmc_epoll_sock_changed(s);
	}
	cand_add(set, e); /* a dup's entry too */
}

/* Lock held: the same for the listeners of |fd| (|n| of them; more than
 * LK_MAX: for all the set's listeners). */
static void lk_ready(ep_set *set, const int *fd, int n)
{
	if (n > LK_MAX) {
		for (ep_ent *e = set->ents; e; e = e->next)
			lk_mark(set, e);
		return;
	}
	for (int i = 0; i < n; i++)
		lk_mark(set, ent_find(set, fd[i]));
}

/* Lock held: |set|'s thread is about to sleep in the kernel. As the shm
 * device's direct poller (|idx| >= 0, device fd |fd|) it has that fd in
 * the kernel set, so a peer's doorbell wakes it and not the progress
 * thread; otherwise the entry, if any, is idle (events 0: the device is
 * another thread's, or the progress thread's), unless the poller sleeps
 * in this very set (two threads in one set's epoll_wait). Added once and
 * switched only when the role changes: a single-threaded event loop
 * makes no call for it after its first sleep. -1: the fd could not be
 * added or switched on. */
static int dev_arm(ep_set *set, int idx, int fd)
{
	struct epoll_event ev = {0};
	int on = idx >= 0;

	if (!on && set->dev_poller)
		return 0;

	ev.events = on ? EPOLLIN : 0;
	ev.data.u64 = dev_cookie;
	if (on && set->dev_fd != fd) {
		if (set->dev_fd >= 0)
			usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_DEL,
					       set->dev_fd, NULL);
		set->dev_fd = -1;
		if (usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_ADD, fd, &ev))
			return -1;
		set->dev_fd = fd;
		set->dev_on = 1;
		return 0;
	}
	if (set->dev_fd < 0 || set->dev_on == on)
		return 0;
	if (usmc_real()->epoll_ctl(set->epfd, EPOLL_CTL_MOD, set->dev_fd, &ev))
		return on ? -1 : 0;
	set->dev_on = on;
	return 0;
}

int usmc_epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout_ms,
		     const sigset_t *sigmask)
{
	uint64_t deadline = 0;

	if (!(usmc_fd_flags(epfd) & USMC_FDF_EPOLL))
		return usmc_real()->epoll_pwait(epfd, evs, max, timeout_ms,
						sigmask);
	if (max <= 0 || !evs) {
		errno = EINVAL;
		return -1;
	}
	if (timeout_ms > 0)
		deadline =
			usmc_rt_now() + (uint64_t)timeout_ms * USMC_NS_PER_MS;
	for (int drained = 0;;) {
		ep_set *set;
		int n = 0, r, k = 0, got = 0, dev = 0, t = timeout_ms,
		    spun = -1;
		int dp = -3, dfd = -1, e; /* -3: not asleep */
		/* listeners the kernel woke for (nl > LK_MAX: more) */
		int lfd[LK_MAX], nl = 0;
		uint64_t nid = 0;
		uint64_t t0;

		if (usmc_rt_init())
			return -1;
		if (deadline) {
			uint64_t now = usmc_rt_now();

			t = now >= deadline ? 0
					    : (int)((deadline - now +
						     USMC_NS_PER_MS - 1) /
						    USMC_NS_PER_MS);
		}
		pthread_mutex_lock(&usmc_g.lock);
		set = set_find(epfd);
		if (!set) {
			/* no usmc socket left in it (or never one) */
			pthread_mutex_unlock(&usmc_g.lock);
			return usmc_real()->epoll_pwait(epfd, evs, max, t,
							sigmask);
		}
		set_sync(set);
		n = collect(set, evs, max);
		/* nothing yet: a spin on the shm device before the sleep
		 * (the peer then rings no doorbell and the progress thread
		 * has no hand-off to make); a message seen, look again.
		 * Between its turns the thread's own mask holds: a signal
		 * only |sigmask| lets in is taken at the spin's zero-timeout
		 * ppoll under |sigmask|, at its first turn and every 128th,
		 * and then ends the call with EINTR (a message seen in the
		 * same turn waits for the next call). */
		if (!n && t != 0) {
			/* may sleep from here: readiness changes are written
			 * to the set's eventfd */
			nid = set->nid;
			usmc_notify_arm(nid, 1);
			spun = usmc_rt_shm_spin(epfd, sigmask, nid);
		}
		if (spun == 1 || spun == -2) {
			pthread_mutex_unlock(&usmc_g.lock);
			if (spun == 1)
				continue;
			errno = EINTR;
			return -1;
		}
		/* the spin dropped the lock: the set may have gone (its
		 * notifier with it), or been made anew */
		if (spun == 0 &&
		    ((set = set_find(epfd)) == NULL || set->nid != nid)) {
			pthread_mutex_unlock(&usmc_g.lock);
			continue;
		}
		/* to sleep: as the shm device's direct poller when no other
		 * thread is (docs/threads.md, "The direct poller") */
		if (!n && t != 0) {
			dp = usmc_rt_direct_enter(&dfd);
			if (dev_arm(set, dp, dfd) && dp >= 0) {
				/* no room for it (ENOSPC: max_user_watches):
				 * the progress thread's again, within the
				 * hand-back's 1 ms */
				usmc_rt_direct_leave(dp);
				dp = -2;
			}
			set->dev_poller |= dp >= 0;
		}
		pthread_mutex_unlock(&usmc_g.lock);
		/* a zero timeout's look after a drain: it ends the call (see
		 * below) */
		if (n == max || drained)
			return n;
		if (n)
			t = 0;
		t0 = spun == 0 ? usmc_rt_now() : 0;
		r = usmc_real()->epoll_pwait(epfd, evs + n, max - n, t,
					     n ? NULL : sigmask);
		e = errno;
		if (t0)
			usmc_rt_spin_learn(usmc_rt_now() - t0);
		for (int i = 0; i < r; i++) {
			if (evs[n + i].data.u64 == cookie) {
				got = 1;
				continue;
			}
			if (evs[n + i].data.u64 == dev_cookie) {
				dev = 1;
				continue;
			}
			if (is_lcookie(evs[n + i].data.u64)) {
				if (nl < LK_MAX)
					lfd[nl] = (int)(uint32_t)evs[n + i]
							  .data.u64;
				nl++;
				continue;
			}
			evs[n + k++] = evs[n + i];
		}
		if (got || dev || nl || dp != -3) {
			unsigned int idx;

			/* the set as it is now: it may have gone (its last
			 * usmc socket handed to the kernel) and its eventfd's
			 * number been reused */
			pthread_mutex_lock(&usmc_g.lock);
			/* awake: what this thread does next needs no write */
			usmc_notify_arm(nid, -1);
			set = set_find(epfd);
			/* the same set, not one made anew on the epoll fd */
			if (set && dp >= 0 && set->nid == nid)
				set->dev_poller = 0;
			if (set && got)
				usmc_notify_drain(set->evfd);
			if (set && nl)
				lk_ready(set, lfd, nl);
			/* the doorbell: the device's events here */
			if (dev && usmc_smc_shm_tp(&idx))
				usmc_rt_dev_ready(idx);
			if (dp != -3)
				usmc_rt_direct_leave(dp);
			pthread_mutex_unlock(&usmc_g.lock);
		}
		if (r < 0) {
			errno = e;
			return n ? n : -1;
		}
		if (n + k)
			return n + k;
		if (!(got || dev || nl))
			return 0;
		/* woken for a user socket or the device: look again. With a
		 * zero timeout too, once more, and only at the set: what
		 * changed between collect() and the drain wrote nothing (the
		 * eventfd was pending from an earlier change) or was drained
		 * unseen, and nothing would say it again (a loop that polls
		 * the epoll fd from outside slept on: test_runtime_shm_wake);
		 * what changes after the drain writes the eventfd again */
		if (t == 0)
			drained = 1;
	}
}

int usmc_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout_ms)
{
	return usmc_epoll_pwait(epfd, evs, max, timeout_ms, NULL);
}

/* After fork(), in the child: the epoll instances are shared with the
 * parent, so the child must not change them; it forgets its shadow sets
 * (their eventfds are the parent's too) and epoll becomes the kernel's. */
void usmc_epoll_fork_child(void)
{
	while (sets) {
		ep_set *set = sets;

		sets = set->next;
		/* the listeners' counts went with usmc_sock_fork_child */
		for (ep_ent *e = set->ents; e; e = e->next)
			e->lkern = 0;
		while (set->ents)
			ent_del(set, set->ents);
		spare_free(set);
		free(set->htab);
		usmc_fdflag_set(set->epfd, USMC_FDF_EPOLL, 0);
		usmc_real()->close(set->evfd);
		free(set);
	}
}
