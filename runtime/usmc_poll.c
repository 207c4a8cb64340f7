/* SPDX-License-Identifier: MIT */
/*
 * poll, ppoll, select and pselect over usmc's sockets and the kernel's
 * fds in one call, and the readiness notifiers they share with
 * usmc_epoll.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

#include "usmc_real.h"
#include "usmc_sock.h"

/*
 * Readiness notifiers: eventfds of poll() callers that also wait for
 * kernel fds, and of usmc_epoll sets. Each is written once per change
 * while it is not drained (|pending|), so the data path costs one write
 * per wake-up, not per event; and only while a thread may sleep on it
 * (|armed|, a count: an epoll set's threads in epoll_wait, usmc_notify_arm).
 * An event loop's own send or recv changes its sockets' readiness: a
 * write there would only make its next epoll_wait read it back.
 */
#define MAX_NOTIFIERS 256
static struct {
	int fd;
	int pending;
	int armed;
	uint64_t id;
} notifiers[MAX_NOTIFIERS];
static int n_notifiers;
static uint64_t notify_ids;

static void notify_one(int i)
{
	uint64_t one = 1;

	notifiers[i].pending = 1;
	if (usmc_real()->write(notifiers[i].fd, &one, sizeof(one)) < 0) {
		/* full counter: already signalled */
	}
}

void usmc_rt_notify(void)
{
	for (int i = 0; i < n_notifiers; i++)
		if (!notifiers[i].pending && notifiers[i].armed > 0)
			notify_one(i);
}

/* Lock held: the index of notifier |id|, or -1 if it is gone. By id: the
 * notifier may be gone, and its fd's number taken by another, while its
 * thread slept. */
static int notify_index(uint64_t id)
{
	for (int i = 0; i < n_notifiers; i++)
		if (notifiers[i].id == id)
			return i;
	return -1;
}

/* Lock held. */
void usmc_notify_kick(uint64_t id)
{
	int i = notify_index(id);

	if (i >= 0 && !notifiers[i].pending)
		notify_one(i);
}

void usmc_notify_fork_child(void)
{
	n_notifiers = 0;
}

/* Lock held. */
uint64_t usmc_notify_add(int evfd, int armed)
{
	if (n_notifiers == MAX_NOTIFIERS) {
		errno = EMFILE;
		return 0;
	}
	notifiers[n_notifiers].fd = evfd;
	notifiers[n_notifiers].pending = 0;
	notifiers[n_notifiers].armed = armed;
	notifiers[n_notifiers].id = ++notify_ids;
	return notifiers[n_notifiers++].id;
}

/* Lock held. */
void usmc_notify_arm(uint64_t id, int delta)
{
	int i = notify_index(id);

	if (i >= 0)
		notifiers[i].armed += delta;
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
	if (usmc_real()->read(evfd, &v, sizeof(v)) < 0) {
		/* not signalled */
	}
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
		/* kerr: an app's accept on the backlog failed (usmc_epoll.c,
		 * the progress thread not accepting) and will again */
		if (s->q_head || (s->kerr && !s->ep_events))
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

/* Lock held: answers |fds| that are usmc's sockets from user-space state
 * and copies the others to |kfds| (their indexes in |kidx|, their count
 * in *nk) for the kernel. Returns the number of ready user-space fds. */
static int poll_scan(struct pollfd *fds, nfds_t nfds, struct pollfd *kfds,
		     nfds_t *kidx, nfds_t *nk)
{
	int ready = 0;

	*nk = 0;
	for (nfds_t i = 0; i < nfds; i++) {
		usmc_sock *s = usmc_sock_get(fds[i].fd);
		int re;

		if (s)
			usmc_sock_use(s);
		else if (usmc_fd_flags(fds[i].fd) & USMC_FDF_EPOLL)
			usmc_epoll_external(fds[i].fd);
		re = s ? user_revents(s, fds[i].events) : -1;
		/* an SMC listener nobody accepts on but the app (it is in
		 * an epoll set too): its backlog is the kernel's to watch,
		 * its queue wakes the notifier */
		if (re == 0 && s->mode == USMC_SOCK_LISTEN && !s->ep_events)
			re = -1;

		fds[i].revents = 0;
		if (re >= 0) {
			fds[i].revents = (short)re;
			if (re)
				ready++;
		} else {
			kfds[*nk] = fds[i];
			kfds[*nk].revents = 0;
			kidx[(*nk)++] = i;
		}
	}
	return ready;
}

/* Lock held, dropped while in the kernel: one ppoll over the |nk| kernel
 * fds of |kfds| and, when |kwait|, the notifier |evfd| (until |deadline|,
 * 0 = none; without |kwait| it does not block) and, as the shm device's
 * direct poller, its fd (|kfds| has room for both). Their answers go back
 * to |fds| through |kidx|, each ready one counted in *ready. Returns 0, or
 * -1 with errno set. */
static int poll_kernel(struct pollfd *fds, struct pollfd *kfds,
		       const nfds_t *kidx, nfds_t nk, int kwait, int evfd,
		       uint64_t deadline, const sigset_t *sigmask, int *ready)
{
	struct timespec ts = {0, 0}, *tp = &ts;
	nfds_t nwait = nk;
	int r, e, dp = -1, dfd = -1;

	if (kwait) {
		kfds[nk].fd = evfd;
		kfds[nk].events = POLLIN;
		kfds[nk].revents = 0;
		nwait++;
		/* a peer's doorbell wakes this thread, not the progress
		 * thread first (docs/threads.md, "The direct poller") */
		dp = usmc_rt_direct_enter(&dfd);
		if (dp >= 0) {
			kfds[nwait].fd = dfd;
			kfds[nwait].events = POLLIN;
			kfds[nwait].revents = 0;
			nwait++;
		}
	}
	usmc_sock_unlock();
	if (kwait) {
		tp = NULL;
		if (deadline) {
			uint64_t now = usmc_rt_now();
			uint64_t left = now >= deadline ? 0 : deadline - now;

			ts.tv_sec = (time_t)(left / USMC_NS_PER_SEC);
			ts.tv_nsec = (long)(left % USMC_NS_PER_SEC);
			tp = &ts;
		}
	}
	r = usmc_real()->ppoll(kfds, nwait, tp, sigmask);
	e = errno;
	pthread_mutex_lock(&usmc_g.lock);
	if (dp >= 0 && r > 0 && kfds[nk + 1].revents)
		usmc_rt_dev_ready((unsigned int)dp);
	if (kwait)
		usmc_rt_direct_leave(dp);
	if (r < 0) {
		errno = e;
		return -1;
	}
	if (kwait && kfds[nk].revents)
		usmc_notify_drain(evfd);
	for (nfds_t k = 0; k < nk; k++) {
		fds[kidx[k]].revents = kfds[k].revents;
		if (kfds[k].revents)
			(*ready)++;
	}
	return 0;
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
	usmc_sig_hold hold = {0};
	uint64_t deadline = 0;
	int ready, evfd = -1, ret = -1;

	if (usmc_sock_lock())
		return -1;
	if (timeout_ns > 0)
		deadline = usmc_rt_now() + (uint64_t)timeout_ns;
	/* the kernel fds, the notifier and the shm device's fd */
	kfds = calloc(nfds + 2, sizeof(*kfds));
	kidx = calloc(nfds + 1, sizeof(*kidx));
	if (!kfds || !kidx) {
		free(kfds);
		free(kidx);
		usmc_sock_unlock();
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		nfds_t nk;
		int kwait;

		ready = poll_scan(fds, nfds, kfds, kidx, &nk);
		kwait = !(ready || timeout_ns == 0);
		if (nk == 0 && kwait && !sigmask) {
			/* Only user-space sockets: sleep until woken. */
			int w = usmc_wait_held(deadline, USMC_INTR_ALWAYS,
					       &hold);

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
		if (nk == 0 && !kwait) {
			/* only user-space sockets, some ready (or a zero
			 * timeout): no kernel fd to look at */
			ret = ready;
			goto out_locked;
		}
		/* the kernel's ppoll below takes signals in the app's mask */
		usmc_sig_release(&hold);
		if (kwait && evfd < 0) {
			evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
			if (evfd < 0)
				goto out_locked;
			if (!usmc_notify_add(evfd, 1)) {
				usmc_real()->close(evfd);
				evfd = -1;
				goto out_locked;
			}
		}
		if (poll_kernel(fds, kfds, kidx, nk, kwait, evfd, deadline,
				sigmask, &ready))
			goto out_locked;
		if (ready || !kwait ||
		    (deadline && usmc_rt_now() >= deadline)) {
			ret = ready;
			goto out_locked;
		}
	}
out_locked:
	usmc_sig_release(&hold);
	if (evfd >= 0) {
		usmc_notify_del(evfd);
		usmc_real()->close(evfd);
	}
	usmc_sock_unlock();
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
