/* SPDX-License-Identifier: MIT */
/*
 * The shm backend: an ISM-shaped device (the kernel's smcd_ops) whose DMBs
 * are memfds shared between two processes of one host (README.md here).
 *
 * - A device is an endpoint: a SOCK_SEQPACKET listener, mode 0600, named
 *   by its random gid_ext in a directory others cannot list.
 * - register_dmb makes a sealed memfd and a random token. attach_dmb
 *   connects to the owner's endpoint (one control connection per peer
 *   device, kept), sends the token; the owner checks the peer's uid and
 *   that the token names a live DMB never attached, spends it, and passes
 *   the memfd (on a connection's first grant also the signal area and its
 *   doorbell) with SCM_RIGHTS.
 * - move_data copies; a signal sets the DMB's slot bit in the connection's
 *   signal area and rings the doorbell (the owner's eventfd) only when the
 *   owner is not awake in poll_cq (Dekker on the area's |awake| word).
 * - The control connection's HUP is the peer's death: PEER_GONE for every
 *   DMB and attachment it carried.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shm_int.h"
#include "usmc_tp_wcq.h"
#include "usmc_tp_shm.h"

#define SHM_RUN_DIR	"/run/usmc"
#define SHM_DIR		"/run/usmc/shm"
#define SHM_XDG_SUBDIR	"usmc-shm"
#define SHM_SLOTS	8192 /* attachments per control connection */
#define SHM_WORDS	(SHM_SLOTS / 64)
#define SHM_SUMS	(SHM_WORDS / 64)
#define SHM_MAX_REFUSED 8    /* refusals before a connection is closed */
#define SHM_ATTACH_MS	5000 /* how long attach_dmb waits for the grant */
#define SHM_SPIN_US	20   /* default spin_us= */
#define SHM_SPIN_MIN_NS 2000
#define SHM_MAX_DMB	(1ull << 30)

/* One control connection's signal area: a page the owner creates and the
 * attacher maps. The attacher sets bits[slot] then the word's summary
 * bit; the owner takes the summary, then the words. |awake| is the
 * owner's: 1 while it is in poll_cq (and spinning), when a doorbell is
 * not needed. |rung|: the attacher's doorbell is rung and not yet read;
 * the attacher sets it, the owner clears it when it reads the doorbell
 * (an owner that has SHM_FEAT_RUNG in |feat|, set before the first
 * grant; an older owner leaves it 0, and every signal rings). Otherwise
 * on lines of their own: one writer each. */
#define SHM_FEAT_RUNG 1u
typedef struct shm_area {
	uint32_t awake;
	uint32_t feat;
	uint32_t rung;
	uint8_t pad0[52];
	uint64_t summary[SHM_SUMS];
	uint8_t pad1[64 - SHM_SUMS * 8];
	uint64_t bits[SHM_WORDS];
} shm_area;

#define SHM_AREA_LEN 4096
_Static_assert(sizeof(shm_area) <= SHM_AREA_LEN, "area fits a page");

enum { EP_LISTEN = 1, EP_BELL, EP_IN, EP_OUT };

typedef struct shm_dev shm_dev;
typedef struct shm_in shm_in;
typedef struct shm_out shm_out;

typedef struct shm_dmb {
	usmc_tp_dmb pub;
	struct shm_dmb *next;
	shm_dev *d;
	int fd; /* the memfd until the grant hands it over */
	size_t maplen;
	int spent;
	shm_in *peer; /* the attacher's connection, while attached */
	uint32_t slot;
} shm_dmb;

/* An attacher's control connection to our endpoint. */
struct shm_in {
	int kind; /* EP_IN */
	shm_in *next;
	int fd;
	int area_fd;
	shm_area *area;
	int area_sent;
	shm_dmb **slots;
	/* per slot: the token of a DMB we unregistered while attached, until
	 * the attacher's DETACH says it let go; the slot is not reused
	 * before (a signal it sets meanwhile is for the old DMB) */
	uint64_t *held;
	uint32_t nslots;
	uint64_t pend[SHM_WORDS]; /* taken from the area, not yet returned */
	uint32_t npend;
	uint32_t refused;
	pid_t pid; /* the attacher's process (SO_PEERCRED) */
};

/* A peer's DMB mapped here: one per grant, shared by the attachments of
 * its token (a DMB the owner gave to its next connection with us is
 * attached again while the last one may not have let go yet), and kept
 * while none uses it (|refs| 0: parked) until the owner unregisters it:
 * the next attach of that token takes it without a message or a mmap. */
typedef struct shm_rmap {
	struct shm_rmap *next;
	void *addr;
	size_t len, maplen;
	uint64_t token;
	uint32_t slot;
	uint32_t refs;
	int gone; /* UNREG read (and answered), or the owner is gone */
} shm_rmap;

typedef struct shm_rdmb {
	usmc_tp_rdmb pub;
	struct shm_rdmb *next;
	shm_out *peer;
	shm_rmap *map;
	int gone; /* PEER_GONE raised for it */
} shm_rdmb;

/* Our control connection to a peer device's endpoint. */
struct shm_out {
	int kind; /* EP_OUT */
	shm_out *next;
	uint64_t gid_ext;
	int fd;
	int bell;
	shm_area *area;
	shm_rdmb *rdmbs;
	shm_rmap *maps;
	pid_t pid; /* the listener's process (SO_PEERCRED) */
	int dead;
	int awaiting; /* attach_dmb reads the GRANT itself */
};

struct shm_dev {
	usmc_tp pub;
	shm_dev *next_proc;
	int kind_listen, kind_bell; /* epoll tags: EP_LISTEN, EP_BELL */
	uint64_t gid, gid_ext;
	uid_t uid;
	int lfd, epfd, bell;
	int bell_set; /* we rang our own doorbell for work left over */
	char dir[80];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	shm_dmb *dmbs;
	shm_in *ins;
	shm_out *outs;
	usmc_tp_event *evq;
	uint32_t ev_head, ev_n, ev_cap;
	/* signals of a connection that closed or a DMB that was detached,
	 * taken before they go: returned ahead of the areas' */
	usmc_tp_wcq late;
	uint64_t spin_max_ns, spin_ns, idle_since;
	int idle;    /* the last poll_cq found nothing (since idle_since) */
	int serving; /* re-entry guard of serve() */
	int polling; /* inside poll_cq, which takes the signals itself */
	usmc_tp_shm_stats st;
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
};

extern const usmc_tp_ops usmc_tp_shm_ops;

/* Every open device of the process: an attach to one of them is served
 * inline (its owner may be the caller's own thread, under the same lock). */
static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static shm_dev *proc_devs;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_hooks(void);

/* Signal areas a spinner may be reading without the caller's lock
 * (usmc_tp_shm_spin_arm) are unmapped only once no spinner is left: a
 * closed connection's area waits here meanwhile. Under proc_lock. */
typedef struct shm_zombie {
	struct shm_zombie *next;
	void *area;
} shm_zombie;
static int spin_pins;
static shm_zombie *zombies;

static shm_dev *dev_of(usmc_tp *tp)
{
	return (shm_dev *)tp;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void say(shm_dev *d, int level, const char *msg)
{
	if (d->log)
		d->log(d->log_arg, level, msg);
}

static size_t page_round(size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	return (len + pg - 1) / pg * pg;
}

static int err_of(int e)
{
	switch (e) {
	case ENOMEM:
	case EMFILE:
	case ENFILE:
		return USMC_ERR_NOMEM;
	case ENOENT:
	case ECONNREFUSED:
		return USMC_ERR_NOTFOUND;
	case EACCES:
	case EPERM:
		return USMC_ERR_ACCESS;
	case EAGAIN:
		return USMC_ERR_BUSY;
	default:
		return USMC_ERR_TRANSPORT;
	}
}

/* ---- events and the doorbell ------------------------------------------- */

static void ring_self(shm_dev *d)
{
	uint64_t one = 1;

	if (!d->bell_set && write(d->bell, &one, sizeof(one)) == sizeof(one))
		d->bell_set = 1;
}

static void raise_gone(shm_dev *d, void *context)
{
	if (d->ev_n == d->ev_cap) {
		uint32_t cap = d->ev_cap ? d->ev_cap * 2 : 16;
		usmc_tp_event *q = calloc(cap, sizeof(*q));

		if (!q)
			return; /* as verbs, an event nobody can hold is lost */
		for (uint32_t i = 0; i < d->ev_n; i++)
			q[i] = d->evq[(d->ev_head + i) % d->ev_cap];
		free(d->evq);
		d->evq = q;
		d->ev_cap = cap;
		d->ev_head = 0;
	}
	d->evq[(d->ev_head + d->ev_n++) % d->ev_cap] = (usmc_tp_event){
		.type = USMC_TP_EV_PEER_GONE, .context = context};
	ring_self(d);
}

/* ---- the owner's side of a control connection -------------------------- */

static int send_msg(int fd, const usmc_shm_msg *m, const int *fds, int nfds)
{
	uint8_t buf[USMC_SHM_MSG_LEN];
	union {
		char b[CMSG_SPACE(sizeof(int) * USMC_SHM_FDS_FIRST)];
		struct cmsghdr align;
	} cb;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh;

	usmc_shm_msg_encode(m, buf);
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds) {
		struct cmsghdr *c;

		memset(&cb, 0, sizeof(cb));
		mh.msg_control = cb.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) ==
			       (ssize_t)sizeof(buf)
		       ? 0
		       : -1;
}

static void take_in(shm_in *in);
static int any_signal(const shm_dev *d);
static int pending(const shm_dev *d);

static usmc_wc signal_wc(const shm_dmb *m)
{
	return usmc_tp_wc_make((uint64_t)(uintptr_t)m->pub.context,
			       USMC_WC_SUCCESS, USMC_WC_DMB_SIGNAL, 0, 0, 0, 0);
}

/* The signals |in| holds for its DMBs, into the late queue: a peer's last
 * write before it detached or died is still seen, ahead of PEER_GONE. */
static void in_flush(shm_dev *d, shm_in *in)
{
	take_in(in);
	for (uint32_t w = 0; in->npend && w < SHM_WORDS; w++) {
		if (!in->pend[w])
			continue;
		while (in->pend[w]) {
			uint32_t slot =
				w * 64 + (uint32_t)__builtin_ctzll(in->pend[w]);
			shm_dmb *m = slot < in->nslots ? in->slots[slot] : NULL;
			usmc_wc wc;

			in->pend[w] &= in->pend[w] - 1;
			if (!m)
				continue;
			wc = signal_wc(m);
			usmc_tp_wcq_push(&d->late, &wc, 16);
		}
		in->npend--;
	}
}

static void area_unmap(void *area)
{
	shm_zombie *z = NULL;

	pthread_mutex_lock(&proc_lock);
	if (spin_pins) {
		z = malloc(sizeof(*z));
		if (z) {
			z->area = area;
			z->next = zombies;
			zombies = z;
		}
		/* without memory the page stays mapped: a spinner reads it */
	} else {
		munmap(area, SHM_AREA_LEN);
	}
	pthread_mutex_unlock(&proc_lock);
}

/* A fork child has none of the parent's other threads: a spin one of
 * them had armed never ends there, so the child drops the pins and
 * unmaps what waited for them (fork_child, proc_lock held). */
static void spin_forget(void)
{
	shm_zombie *z = zombies;

	spin_pins = 0;
	zombies = NULL;
	while (z) {
		shm_zombie *next = z->next;

		munmap(z->area, SHM_AREA_LEN);
		free(z);
		z = next;
	}
}

static void in_close(shm_dev *d, shm_in *in)
{
	shm_in **pp;

	in_flush(d, in);
	for (uint32_t s = 0; s < in->nslots; s++) {
		shm_dmb *m = in->slots[s];

		if (m) {
			m->peer = NULL;
			raise_gone(d, m->pub.context);
		}
	}
	for (pp = &d->ins; *pp; pp = &(*pp)->next)
		if (*pp == in) {
			*pp = in->next;
			break;
		}
	/* out of the set first: a forked child may hold the socket open */
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, in->fd, NULL);
	close(in->fd);
	if (in->area)
		area_unmap(in->area);
	if (in->area_fd >= 0)
		close(in->area_fd);
	free(in->slots);
	free(in->held);
	free(in);
}

static int sealed_memfd(const char *name, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	/* sealed against shrinking: a peer that maps it cannot make our
	 * accesses fault (SIGBUS) by truncating it */
	if (ftruncate(fd, (off_t)len) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The connection's signal area, made on its first grant. */
static int in_area(shm_in *in)
{
	void *p;

	if (in->area)
		return 0;
	in->area_fd = sealed_memfd("usmc-shm-area", SHM_AREA_LEN);
	if (in->area_fd < 0)
		return -1;
	p = mmap(NULL, SHM_AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
		 in->area_fd, 0);
	if (p == MAP_FAILED) {
		close(in->area_fd);
		in->area_fd = -1;
		return -1;
	}
	in->area = p;
	in->area->feat = SHM_FEAT_RUNG;
	return 0;
}

static int in_slot(shm_in *in, uint32_t *slot)
{
	uint32_t s;

	for (s = 0; s < in->nslots; s++)
		if (!in->slots[s] && !in->held[s]) {
			*slot = s;
			return 0;
		}
	if (in->nslots == SHM_SLOTS)
		return -1;
	{
		uint32_t cap = in->nslots ? in->nslots * 2 : 16;
		shm_dmb **n = realloc(in->slots, cap * sizeof(*n));
		uint64_t *h;

		if (!n)
			return -1;
		memset(n + in->nslots, 0, (cap - in->nslots) * sizeof(*n));
		in->slots = n;
		h = realloc(in->held, cap * sizeof(*h));
		if (!h)
			return -1; /* |slots| grew; nslots says how far is valid */
		memset(h + in->nslots, 0, (cap - in->nslots) * sizeof(*h));
		in->held = h;
		in->nslots = cap;
	}
	*slot = s;
	return 0;
}

/* An ATTACH: grant the DMB |token| names if it is live and was never
 * attached; else refuse, and close a connection that keeps guessing. */
static int in_attach(shm_dev *d, shm_in *in, const usmc_shm_msg *req)
{
	usmc_shm_msg r = {
		.type = USMC_SHM_GRANT, .token = req->token, .gid = d->gid};
	int fds[USMC_SHM_FDS_FIRST];
	shm_dmb *m;
	uint32_t slot;

	for (m = d->dmbs; m; m = m->next)
		if (m->pub.token == req->token)
			break;
	if (!m || m->spent) {
		d->st.refused++;
		r.status = USMC_SHM_REFUSED;
		send_msg(in->fd, &r, NULL, 0);
		return ++in->refused >= SHM_MAX_REFUSED ? -1 : 0;
	}
	/* spent from here on, whether or not the grant arrives */
	m->spent = 1;
	if (in_area(in) || in_slot(in, &slot)) {
		r.status = USMC_SHM_NOSLOT;
		send_msg(in->fd, &r, NULL, 0);
		return 0;
	}
	r.slot = slot;
	r.len = m->pub.len;
	fds[0] = m->fd;
	r.nfds = USMC_SHM_FDS_DMB;
	if (!in->area_sent) {
		fds[1] = in->area_fd;
		fds[2] = d->bell;
		r.nfds = USMC_SHM_FDS_FIRST;
	}
	if (send_msg(in->fd, &r, fds, r.nfds))
		return -1;
	in->area_sent = 1;
	/* the memory stays mapped here; the fd is the peer's now */
	close(m->fd);
	m->fd = -1;
	m->peer = in;
	m->slot = slot;
	in->slots[slot] = m;
	d->st.grants++;
	return 0;
}

/* A DETACH: the attacher let go of slot |slot|: of a live DMB, or of
 * one we unregistered (its answer to our UNREG). In the second case
 * every signal it set for the old DMB came before this message: take
 * them out of the area and drop them, then the slot is free. */
static void in_detach(shm_dev *d, shm_in *in, const usmc_shm_msg *msg)
{
	shm_dmb *m = msg->slot < in->nslots ? in->slots[msg->slot] : NULL;

	if (!m && msg->slot < in->nslots && in->held[msg->slot] &&
	    in->held[msg->slot] == msg->token) {
		uint32_t w = msg->slot / 64;
		uint64_t bit = 1ull << (msg->slot % 64);

		take_in(in);
		if (in->pend[w] & bit) {
			in->pend[w] &= ~bit;
			if (!in->pend[w])
				in->npend--;
		}
		in->held[msg->slot] = 0;
		return;
	}
	if (!m || m->pub.token != msg->token)
		return;
	in_flush(d, in);
	in->slots[msg->slot] = NULL;
	m->peer = NULL;
	raise_gone(d, m->pub.context);
}

/* Reads what the connection holds; -1 when it is to be closed (HUP, or a
 * peer breaking the protocol). fds a peer sends are dropped by the kernel:
 * recv gives no room for them. */
static int in_service(shm_dev *d, shm_in *in)
{
	for (;;) {
		uint8_t buf[USMC_SHM_MSG_LEN + 1];
		usmc_shm_msg m;
		ssize_t n = recv(in->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (n == 0)
			return -1;
		if (usmc_shm_msg_decode(buf, (size_t)n, &m) ||
		    (m.type != USMC_SHM_ATTACH && m.type != USMC_SHM_DETACH) ||
		    (m.type == USMC_SHM_ATTACH && m.gid != d->gid)) {
			d->st.bad_msgs++;
			return -1;
		}
		if (m.type == USMC_SHM_DETACH)
			in_detach(d, in, &m);
		else if (in_attach(d, in, &m))
			return -1;
	}
}

static void accept_all(shm_dev *d)
{
	for (;;) {
		struct epoll_event ev;
		struct ucred cr;
		socklen_t cl = sizeof(cr);
		shm_in *in;
		int fd = accept4(d->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		/* the socket file is 0600 already; a peer of another uid
		 * (root, which passes any mode) is refused all the same */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) ||
		    cr.uid != d->uid) {
			d->st.refused++;
			close(fd);
			continue;
		}
		in = calloc(1, sizeof(*in));
		if (!in) {
			close(fd);
			continue;
		}
		in->kind = EP_IN;
		in->fd = fd;
		in->pid = cr.pid;
		in->area_fd = -1;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.ptr = in;
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(in);
			continue;
		}
		in->next = d->ins;
		d->ins = in;
	}
}

/* ---- the attacher's side ----------------------------------------------- */

/* Unmaps |p| (on the device's end: whether or not in use). */
static void rmap_free(shm_dev *d, shm_rmap *p)
{
	if (p->addr)
		munmap(p->addr, p->maplen);
	if (!p->refs)
		d->st.parked--;
	free(p);
}

static void out_gone(shm_dev *d, shm_out *o)
{
	if (o->dead)
		return;
	o->dead = 1;
	for (shm_rdmb *r = o->rdmbs; r; r = r->next)
		if (!r->gone) {
			r->gone = 1;
			raise_gone(d, r->pub.context);
		}
	for (shm_rmap **pp = &o->maps; *pp;) {
		shm_rmap *p = *pp;

		p->gone = 1;
		if (p->refs) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		rmap_free(d, p);
	}
	epoll_ctl(d->epfd, EPOLL_CTL_DEL, o->fd, NULL);
	close(o->fd);
	o->fd = -1;
}

static void out_free(shm_dev *d, shm_out *o)
{
	shm_out **pp;

	for (pp = &d->outs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	if (o->fd >= 0)
		close(o->fd);
	if (o->bell >= 0)
		close(o->bell);
	if (o->area)
		munmap(o->area, SHM_AREA_LEN);
	while (o->maps) {
		shm_rmap *p = o->maps;

		o->maps = p->next;
		rmap_free(d, p);
	}
	free(o);
}

/* An UNREG: the attachment is gone, and we answer with a DETACH, after
 * which we set its slot's bit no more (move_data sees |gone|): the owner
 * reuses the slot only then. An UNREG for an attachment we detached
 * already needs no answer: our DETACH crossed it. */
static void out_unreg(shm_dev *d, shm_out *o, const usmc_shm_msg *m)
{
	for (shm_rmap **pp = &o->maps; *pp; pp = &(*pp)->next) {
		shm_rmap *p = *pp;
		usmc_shm_msg a = {.type = USMC_SHM_DETACH,
				  .slot = p->slot,
				  .token = p->token,
				  .gid = d->gid};

		if (p->slot != m->slot || p->token != m->token || p->gone)
			continue;
		p->gone = 1;
		for (shm_rdmb *r = o->rdmbs; r; r = r->next)
			if (r->map == p && !r->gone) {
				r->gone = 1;
				raise_gone(d, r->pub.context);
			}
		send_msg(o->fd, &a, NULL, 0);
		if (!p->refs) {
			/* parked: nobody else lets go of it */
			*pp = p->next;
			rmap_free(d, p);
		}
		return;
	}
}

/* Reads UNREGs (and a GRANT, into |grant| if one is awaited); -1 on HUP
 * or a broken protocol. The fds of a GRANT go to |fds| (|*nfds|). */
static int out_read(shm_dev *d, shm_out *o, usmc_shm_msg *grant, int *fds,
		    int *nfds)
{
	for (;;) {
		uint8_t buf[USMC_SHM_MSG_LEN + 1];
		union {
			char b[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} cb;
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr mh;
		struct cmsghdr *c;
		usmc_shm_msg m;
		int got[8], ngot = 0, bad;
		ssize_t n;

		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
		n = recvmsg(o->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		if (n == 0)
			return -1;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) /
					   sizeof(int);

				for (size_t i = 0; i < k; i++) {
					int fd;

					memcpy(&fd,
					       CMSG_DATA(c) + i * sizeof(int),
					       sizeof(int));
					if (ngot < 8)
						got[ngot++] = fd;
					else
						close(fd);
				}
			}
		bad = usmc_shm_msg_decode(buf, (size_t)n, &m) ||
		      (mh.msg_flags & MSG_CTRUNC) || m.gid != d->gid ||
		      (m.type != USMC_SHM_GRANT && m.type != USMC_SHM_UNREG) ||
		      ngot != m.nfds || (m.type == USMC_SHM_GRANT && !grant);
		if (!bad && m.type == USMC_SHM_GRANT) {
			*grant = m;
			memcpy(fds, got, sizeof(int) * (size_t)ngot);
			*nfds = ngot;
			return 1;
		}
		for (int i = 0; i < ngot; i++)
			close(got[i]);
		if (bad) {
			d->st.bad_msgs++;
			return -1;
		}
		out_unreg(d, o, &m);
	}
}

static int out_connect(shm_dev *d, uint64_t gid_ext, shm_out **po)
{
	struct sockaddr_un sa;
	struct epoll_event ev;
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	shm_out *o;
	int fd, rc;

	for (o = d->outs; o; o = o->next)
		if (o->gid_ext == gid_ext && !o->dead) {
			*po = o;
			return 0;
		}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%016llx", d->dir,
		 (unsigned long long)gid_ext);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_of(errno);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		rc = err_of(errno);
		d->pub.last_errno = errno;
		close(fd);
		return rc;
	}
	/* the listener is of our uid too (a name in a shared directory is
	 * no proof) */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) ||
	    cr.uid != d->uid) {
		close(fd);
		return USMC_ERR_ACCESS;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		close(fd);
		return USMC_ERR_NOMEM;
	}
	o->kind = EP_OUT;
	o->gid_ext = gid_ext;
	o->pid = cr.pid;
	o->fd = fd;
	o->bell = -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLRDHUP;
	ev.data.ptr = o;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		free(o);
		return USMC_ERR_TRANSPORT;
	}
	o->next = d->outs;
	d->outs = o;
	*po = o;
	return 0;
}

/* ---- serving: the endpoint and the connections ------------------------- */

static void serve(shm_dev *d)
{
	struct epoll_event evs[32];
	int n, bell = 0;

	if (d->serving)
		return;
	d->serving = 1;
	while ((n = epoll_wait(d->epfd, evs, 32, 0)) > 0) {
		for (int i = 0; i < n; i++) {
			int *kind = evs[i].data.ptr;

			if (*kind == EP_LISTEN) {
				accept_all(d);
			} else if (*kind == EP_BELL) {
				uint64_t v;

				if (read(d->bell, &v, sizeof(v)) < 0 &&
				    errno != EAGAIN)
					d->pub.last_errno = errno;
				d->bell_set = 0;
				bell = 1;
				/* before the signals are taken (poll_cq, or
				 * the ring_self below): a peer that found
				 * |rung| set had set its bits before we clear
				 * it; one after the clear rings again */
				for (shm_in *in = d->ins; in; in = in->next)
					if (in->area &&
					    __atomic_load_n(&in->area->rung,
							    __ATOMIC_RELAXED))
						__atomic_store_n(
							&in->area->rung, 0,
							__ATOMIC_SEQ_CST);
			} else if (*kind == EP_IN) {
				shm_in *in = (shm_in *)kind;

				if (in_service(d, in))
					in_close(d, in);
			} else {
				shm_out *o = (shm_out *)kind;

				if (!o->awaiting && !o->dead &&
				    out_read(d, o, NULL, NULL, NULL))
					out_gone(d, o);
			}
		}
		if (n < 32)
			break;
	}
	d->serving = 0;
	/* Outside poll_cq (get_async_event, an attach's wait) the doorbell
	 * just read may have been a peer's signal, which only poll_cq takes:
	 * ring it again, or the owner sleeps on a signal nobody rings
	 * for (the peer saw it asleep and rang once). */
	if (bell && !d->polling && (any_signal(d) || pending(d) || d->ev_n))
		ring_self(d);
}

/* ---- device ------------------------------------------------------------ */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* The host GID: the kernel's boot and the endpoint directory's identity,
 * so two devices have the same one exactly when they run on one kernel
 * and reach each other's endpoints (README.md, "Identity"). */
static int host_gid(shm_dev *d)
{
	char boot[64];
	struct stat st;
	ssize_t n;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	uint64_t h = 0xcbf29ce484222325ull;

	if (fd < 0)
		return -1;
	n = read(fd, boot, sizeof(boot));
	close(fd);
	if (n <= 0 || stat(d->dir, &st))
		return -1;
	h = fnv(h, boot, (size_t)n);
	h = fnv(h, &st.st_dev, sizeof(st.st_dev));
	h = fnv(h, &st.st_ino, sizeof(st.st_ino));
	d->gid = h ? h : 1;
	return 0;
}

/* A directory for endpoints: ours, or root's, and not listable by others;
 * writable by others only with the sticky bit (nobody removes or replaces
 * another's endpoint). */
static int dir_ok(const char *dir, uid_t uid)
{
	struct stat st;

	if (lstat(dir, &st) || !S_ISDIR(st.st_mode))
		return 0;
	if (st.st_uid != uid && st.st_uid != 0)
		return 0;
	if (st.st_mode & (S_IRGRP | S_IROTH))
		return 0;
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
		return 0;
	return 1;
}

static int pick_dir(shm_dev *d, const char *opt_dir)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (opt_dir) {
		mkdir(opt_dir, 0700);
		if (!dir_ok(opt_dir, d->uid))
			return -1;
		snprintf(d->dir, sizeof(d->dir), "%s", opt_dir);
		return 0;
	}
	/* /run/usmc/shm, 1733 as a sticky /tmp that cannot be listed:
	 * every user's endpoints in one place, none enumerable */
	mkdir(SHM_RUN_DIR, 0755);
	if (!mkdir(SHM_DIR, 01733))
		chmod(SHM_DIR, 01733); /* past the umask */
	if (dir_ok(SHM_DIR, d->uid) && !access(SHM_DIR, W_OK | X_OK)) {
		snprintf(d->dir, sizeof(d->dir), "%s", SHM_DIR);
		return 0;
	}
	/* no /run/usmc/shm for us (not root, and nobody made it): the
	 * user's runtime directory, so only this user's processes meet */
	if (!xdg || !*xdg ||
	    (size_t)snprintf(d->dir, sizeof(d->dir), "%s/%s", xdg,
			     SHM_XDG_SUBDIR) >= sizeof(d->dir))
		return -1;
	mkdir(d->dir, 0700);
	if (!dir_ok(d->dir, d->uid))
		return -1;
	say(d, 1,
	    "shm: " SHM_DIR " not usable; endpoints in "
	    "$XDG_RUNTIME_DIR/" SHM_XDG_SUBDIR " (this user's peers only)");
	return 0;
}

/* Endpoints of processes that died without close (SIGKILL) stay behind
 * as socket files nobody listens on: whoever can list the directory (its
 * owner, root) removes those of its uid when it opens a device. The
 * directory is read once per open; the connects are to local sockets. */
static void sweep(shm_dev *d)
{
	DIR *dir = opendir(d->dir);
	struct dirent *de;
	int budget = 1024;

	if (!dir)
		return;
	while ((de = readdir(dir)) != NULL && budget-- > 0) {
		struct sockaddr_un sa;
		struct stat st;
		int fd;

		if (strlen(de->d_name) != 16 ||
		    strspn(de->d_name, "0123456789abcdef") != 16)
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%.16s", d->dir,
			 de->d_name);
		/* a new endpoint refuses too, between its bind and listen:
		 * only one a few seconds old is taken for dead */
		if (lstat(sa.sun_path, &st) || !S_ISSOCK(st.st_mode) ||
		    st.st_uid != d->uid || st.st_ctime + 5 > time(NULL))
			continue;
		fd = socket(AF_UNIX,
			    SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
		    errno == ECONNREFUSED)
			unlink(sa.sun_path);
		close(fd);
	}
	closedir(dir);
}

static int parse_options(const char *opts, char *dir, size_t dirlen,
			 uint32_t *spin_us)
{
	const char *cur = opts;
	usmc_tp_opt o;

	memset(&o, 0, sizeof(o));
	*spin_us = SHM_SPIN_US;
	dir[0] = 0;
	while (opts && usmc_tp_opt_next(opts, &cur, &o)) {
		if (usmc_tp_opt_key_is(&o, "spin_us") && o.val) {
			if (usmc_tp_opt_u32(&o, spin_us) || *spin_us > 1000)
				return -1;
		} else if (usmc_tp_opt_key_is(&o, "dir") && o.val &&
			   o.vlen > 0 && o.vlen < dirlen && o.val[0] == '/') {
			memcpy(dir, o.val, o.vlen);
			dir[o.vlen] = 0;
		} else {
			return -1;
		}
	}
	return 0;
}

static void shm_dev_close(usmc_tp *tp);

static int shm_dev_open(const usmc_tp_config *cfg, usmc_tp **ptp)
{
	struct sockaddr_un sa;
	struct epoll_event ev;
	char optdir[80];
	uint32_t spin_us;
	shm_dev *d;
	int rc = USMC_ERR_TRANSPORT;

	if (parse_options(cfg->options, optdir, sizeof(optdir), &spin_us))
		return USMC_ERR_INVALID_ARGUMENT;
	usmc_tp_shm_atfork_init();
	d = calloc(1, sizeof(*d));
	if (!d)
		return USMC_ERR_NOMEM;
	d->pub.ops = &usmc_tp_shm_ops;
	d->lfd = d->epfd = d->bell = -1;
	d->kind_listen = EP_LISTEN;
	d->kind_bell = EP_BELL;
	d->uid = geteuid();
	d->log = cfg->log;
	d->log_arg = cfg->log_arg;
	d->spin_max_ns = (uint64_t)spin_us * 1000;
	if (pick_dir(d, optdir[0] ? optdir : NULL) || host_gid(d)) {
		say(d, 0,
		    "shm: no endpoint directory (" SHM_DIR
		    " or $XDG_RUNTIME_DIR/" SHM_XDG_SUBDIR ")");
		rc = USMC_ERR_ACCESS;
		goto fail;
	}
	sweep(d);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (d->epfd < 0 || d->bell < 0 || d->lfd < 0)
		goto fail_errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	for (;;) {
		if (getrandom(&d->gid_ext, sizeof(d->gid_ext), 0) !=
		    sizeof(d->gid_ext))
			goto fail_errno;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%016llx", d->dir,
			 (unsigned long long)d->gid_ext);
		if (!bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		if (errno != EADDRINUSE)
			goto fail_errno;
	}
	memcpy(d->path, sa.sun_path, sizeof(d->path));
	/* 0600 before listen: until then nobody can connect */
	if (chmod(d->path, 0600) || listen(d->lfd, 128))
		goto fail_errno;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &d->kind_listen;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->lfd, &ev))
		goto fail_errno;
	ev.data.ptr = &d->kind_bell;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->bell, &ev))
		goto fail_errno;
	pthread_mutex_lock(&proc_lock);
	d->next_proc = proc_devs;
	proc_devs = d;
	pthread_mutex_unlock(&proc_lock);
	*ptp = &d->pub;
	return 0;
fail_errno:
	d->pub.last_errno = errno;
	rc = err_of(errno);
fail:
	shm_dev_close(&d->pub);
	return rc;
}

static void dmb_free(shm_dmb *m)
{
	if (m->pub.addr)
		munmap(m->pub.addr, m->maplen);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

/* ---- fork ---------------------------------------------------------------- */

/* Frees |d| and all it holds. |forked|: |d| is a forked child's copy,
 * whose fds and mappings are the parent's device's: let go of them
 * without a word to anyone (no message, no gone event, no epoll_ctl on
 * the epoll set shared with the parent, no unlink). */
static void dev_release(shm_dev *d, int forked)
{
	while (d->dmbs) {
		shm_dmb *m = d->dmbs;

		d->dmbs = m->next;
		dmb_free(m);
	}
	while (d->ins) {
		shm_in *in = d->ins;

		if (!forked) {
			for (uint32_t s = 0; s < in->nslots; s++)
				in->slots[s] = NULL;
			in_close(d, in);
			continue;
		}
		d->ins = in->next;
		close(in->fd);
		if (in->area)
			munmap(in->area, SHM_AREA_LEN);
		if (in->area_fd >= 0)
			close(in->area_fd);
		free(in->slots);
		free(in->held);
		free(in);
	}
	while (d->outs) {
		shm_out *o = d->outs;

		while (o->rdmbs) {
			shm_rdmb *r = o->rdmbs;

			o->rdmbs = r->next;
			free(r);
		}
		out_free(d, o);
	}
	if (d->lfd >= 0) {
		close(d->lfd);
		if (d->path[0] && !forked)
			unlink(d->path);
	}
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->bell >= 0)
		close(d->bell);
	free(d->evq);
	usmc_tp_wcq_free(&d->late);
	free(d);
}

static void fork_prepare(void)
{
	pthread_mutex_lock(&proc_lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&proc_lock);
}

/* In the child after fork(): the devices are the parent's. The child
 * keeps none of their fds, which would hold the parent's control
 * connections open past its death (its peers would never see HUP), nor
 * their mappings of the peers' memory. Handles the child still has into
 * them are dead; a device it opens is its own. */
static void fork_child(void)
{
	while (proc_devs) {
		shm_dev *d = proc_devs;

		proc_devs = d->next_proc;
		dev_release(d, 1);
	}
	spin_forget();
	pthread_mutex_unlock(&proc_lock);
}

static void fork_hooks(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void usmc_tp_shm_atfork_init(void)
{
	pthread_once(&fork_once, fork_hooks);
}

static void shm_dev_close(usmc_tp *tp)
{
	shm_dev *d = dev_of(tp);
	shm_dev **pp;

	pthread_mutex_lock(&proc_lock);
	for (pp = &proc_devs; *pp; pp = &(*pp)->next_proc)
		if (*pp == d) {
			*pp = d->next_proc;
			break;
		}
	pthread_mutex_unlock(&proc_lock);
	dev_release(d, 0);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static int shm_query_port(usmc_tp *tp, usmc_port_attr *attr)
{
	shm_dev *d = dev_of(tp);

	memset(attr, 0, sizeof(*attr));
	put_be64(attr->gid, d->gid);
	put_be64(attr->gid + 8, d->gid_ext);
	snprintf(attr->name, sizeof(attr->name), "shm");
	return 0;
}

static int shm_get_fd(usmc_tp *tp)
{
	return dev_of(tp)->epfd;
}

/* ---- DMBs ---------------------------------------------------------------- */

static int shm_register_dmb(usmc_tp *tp, size_t len, void *context,
			    usmc_tp_dmb **pdmb)
{
	shm_dev *d = dev_of(tp);
	shm_dmb *m, *o;
	void *p;

	if (!len || len > SHM_MAX_DMB)
		return USMC_ERR_INVALID_ARGUMENT;
	m = calloc(1, sizeof(*m));
	if (!m)
		return USMC_ERR_NOMEM;
	m->d = d;
	m->pub.tp = tp;
	m->pub.len = len;
	m->pub.context = context;
	m->maplen = page_round(len);
	/* the token is the secret of the grant: random, never 0, unique */
	do {
		if (getrandom(&m->pub.token, sizeof(m->pub.token), 0) !=
		    sizeof(m->pub.token)) {
			free(m);
			return USMC_ERR_TRANSPORT;
		}
		for (o = d->dmbs; o && o->pub.token != m->pub.token;
		     o = o->next)
			;
	} while (!m->pub.token || o);
	/* a memfd: no name anywhere in /dev/shm or another filesystem */
	m->fd = sealed_memfd("usmc-dmb", m->maplen);
	if (m->fd < 0) {
		d->pub.last_errno = errno;
		free(m);
		return err_of(d->pub.last_errno);
	}
	p = mmap(NULL, m->maplen, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (p == MAP_FAILED) {
		d->pub.last_errno = errno;
		close(m->fd);
		free(m);
		return USMC_ERR_NOMEM;
	}
	m->pub.addr = p;
	m->next = d->dmbs;
	d->dmbs = m;
	*pdmb = &m->pub;
	return 0;
}

static void shm_unregister_dmb(usmc_tp_dmb *dmb)
{
	shm_dmb *m = (shm_dmb *)dmb, **pp;
	shm_dev *d = m->d;

	for (pp = &d->dmbs; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	if (m->peer) {
		usmc_shm_msg u = {.type = USMC_SHM_UNREG,
				  .slot = m->slot,
				  .token = m->pub.token,
				  .gid = d->gid};

		/* held until the attacher's DETACH answers: it may set the
		 * slot's bit until it has read the UNREG */
		m->peer->slots[m->slot] = NULL;
		m->peer->held[m->slot] = m->pub.token;
		send_msg(m->peer->fd, &u, NULL, 0);
	}
	dmb_free(m);
}

/* Checks a memfd a peer handed us before mapping |len| of it: sealed
 * against shrinking (else it could make our writes SIGBUS) and that long. */
static int fd_mappable(int fd, size_t len)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_SHRINK) && !fstat(fd, &st) &&
	       S_ISREG(st.st_mode) && (uint64_t)st.st_size >= len;
}

/* Waits for the GRANT of our ATTACH on |o|, serving meanwhile our own
 * endpoint and, when the owner is a device of this process, its one. */
static int wait_grant(shm_dev *d, shm_out *o, usmc_shm_msg *g, int *fds,
		      int *nfds)
{
	uint64_t deadline = now_ns() + SHM_ATTACH_MS * 1000000ull;

	for (;;) {
		struct pollfd pf[2] = {{o->fd, POLLIN, 0},
				       {d->epfd, POLLIN, 0}};
		int rc;

		pthread_mutex_lock(&proc_lock);
		for (shm_dev *p = proc_devs; p; p = p->next_proc)
			if (p->gid_ext == o->gid_ext && p != d)
				serve(p);
		pthread_mutex_unlock(&proc_lock);
		rc = out_read(d, o, g, fds, nfds);
		if (rc)
			return rc;
		if (now_ns() > deadline)
			return USMC_ERR_TIMEOUT;
		if (poll(pf, 2, 1) > 0 && (pf[1].revents & POLLIN))
			serve(d);
	}
}

/* An attachment of |pm| for |context|. */
static int rdmb_new(shm_dev *d, shm_out *o, shm_rmap *pm, void *context,
		    usmc_tp_rdmb **prdmb)
{
	shm_rdmb *r = calloc(1, sizeof(*r));

	if (!r)
		return USMC_ERR_NOMEM;
	if (!pm->refs++)
		d->st.parked--;
	r->pub.tp = &d->pub;
	r->pub.addr = pm->addr;
	r->pub.len = pm->len;
	r->pub.token = pm->token;
	r->pub.context = context;
	/* shm_move_data is a memcpy into this very mapping */
	r->pub.mapped = 1;
	r->peer = o;
	r->map = pm;
	r->next = o->rdmbs;
	o->rdmbs = r;
	*prdmb = &r->pub;
	return 0;
}

static int shm_attach_dmb(usmc_tp *tp, const uint8_t peer_gid[16],
			  uint64_t token, void *context, usmc_tp_rdmb **prdmb)
{
	shm_dev *d = dev_of(tp);
	usmc_shm_msg req = {.type = USMC_SHM_ATTACH,
			    .token = token,
			    .gid = d->gid},
		     g;
	int fds[8], nfds = 0, rc;
	shm_rmap *pm;
	shm_out *o;
	size_t maplen;
	void *p;

	if (get_be64(peer_gid) != d->gid)
		return USMC_ERR_NOTFOUND; /* not on this host (or its dir) */
	if (!token)
		return USMC_ERR_INVALID_ARGUMENT;
	rc = out_connect(d, get_be64(peer_gid + 8), &o);
	if (rc)
		return rc;
	/* a token granted to us before, of a DMB the owner has not
	 * unregistered since (tokens are never reused for another DMB):
	 * the owner gave it to its next connection with us */
	for (pm = o->maps; pm; pm = pm->next)
		if (pm->token == token && !pm->gone) {
			rc = rdmb_new(d, o, pm, context, prdmb);
			d->st.reattached += !rc;
			return rc;
		}
	if (send_msg(o->fd, &req, NULL, 0)) {
		out_gone(d, o);
		return USMC_ERR_CONNRESET;
	}
	o->awaiting = 1;
	rc = wait_grant(d, o, &g, fds, &nfds);
	o->awaiting = 0;
	if (rc < 0) {
		/* a grant that comes late would be out of step */
		out_gone(d, o);
		return rc == -1 ? USMC_ERR_CONNRESET : rc;
	}
	if (g.token != token || g.status != USMC_SHM_OK) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return g.status == USMC_SHM_NOSLOT ? USMC_ERR_LIMIT
						   : USMC_ERR_ACCESS;
	}
	maplen = page_round(g.len);
	rc = USMC_ERR_PROTO;
	if (g.len > SHM_MAX_DMB || !fd_mappable(fds[0], maplen) ||
	    (nfds == USMC_SHM_FDS_FIRST) != !o->area ||
	    (nfds == USMC_SHM_FDS_FIRST && !fd_mappable(fds[1], SHM_AREA_LEN)))
		goto bad;
	if (nfds == USMC_SHM_FDS_FIRST) {
		p = mmap(NULL, SHM_AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fds[1], 0);
		if (p == MAP_FAILED)
			goto bad;
		o->area = p;
		o->bell = fds[2];
		fds[2] = -1;
		/* a doorbell never blocks us, whatever the owner does */
		fcntl(o->bell, F_SETFL, O_NONBLOCK);
	}
	pm = calloc(1, sizeof(*pm));
	if (!pm) {
		rc = USMC_ERR_NOMEM;
		goto bad;
	}
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (p == MAP_FAILED) {
		free(pm);
		rc = USMC_ERR_NOMEM;
		goto bad;
	}
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pm->addr = p;
	pm->len = g.len;
	pm->maplen = maplen;
	pm->token = token;
	pm->slot = g.slot;
	pm->next = o->maps;
	o->maps = pm;
	d->st.parked++; /* rdmb_new takes it */
	rc = rdmb_new(d, o, pm, context, prdmb);
	if (rc) {
		/* as an UNREG would: the owner frees the slot on DETACH */
		usmc_shm_msg a = {.type = USMC_SHM_DETACH,
				  .slot = pm->slot,
				  .token = token,
				  .gid = d->gid};

		send_msg(o->fd, &a, NULL, 0);
		o->maps = pm->next;
		rmap_free(d, pm);
	}
	return rc;
bad:
	d->st.bad_msgs++;
	for (int i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	out_gone(d, o);
	return rc;
}

static void shm_detach_dmb(usmc_tp_rdmb *rdmb)
{
	shm_rdmb *r = (shm_rdmb *)rdmb, **pp;
	shm_out *o = r->peer;
	shm_dev *d = dev_of(rdmb->tp);

	for (pp = &o->rdmbs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	/* the last user parks the map: the owner may give the DMB to its
	 * next connection with us, and its UNREG (answered then) frees it;
	 * a map the owner took back or the owner's death went is freed */
	if (!--r->map->refs) {
		d->st.parked++;
		if (r->map->gone) {
			shm_rmap **mp;

			for (mp = &o->maps; *mp != r->map; mp = &(*mp)->next)
				;
			*mp = r->map->next;
			rmap_free(d, r->map);
		}
	}
	free(r);
	if (o->dead && !o->rdmbs)
		out_free(d, o);
}

static int shm_move_data(usmc_tp_rdmb *rdmb, size_t offset, const void *data,
			 size_t len, int signal)
{
	shm_rdmb *r = (shm_rdmb *)rdmb;
	shm_area *a;
	uint32_t w;

	if (r->gone || r->map->gone)
		return USMC_ERR_CONNRESET;
	if (offset > r->pub.len || len > r->pub.len - offset)
		return USMC_ERR_ACCESS;
	if (len)
		memcpy((uint8_t *)r->pub.addr + offset, data, len);
	if (!signal)
		return 0;
	a = r->peer->area;
	w = r->map->slot / 64;
	/* bit, then summary; both seq_cst, and so is the read of |awake|:
	 * either the owner sees the bit after clearing |awake|, or we see
	 * it asleep and ring (Dekker) */
	__atomic_fetch_or(&a->bits[w], 1ull << (r->map->slot % 64),
			  __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&a->summary[w / 64], 1ull << (w % 64),
			  __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&a->awake, __ATOMIC_SEQ_CST)) {
		dev_of(rdmb->tp)->st.bells_saved++;
	} else if ((__atomic_load_n(&a->feat, __ATOMIC_RELAXED) &
		    SHM_FEAT_RUNG) &&
		   __atomic_exchange_n(&a->rung, 1, __ATOMIC_SEQ_CST)) {
		/* rung since the owner last read its doorbell: it reads
		 * it, then takes every bit set before (one wake-up for a
		 * burst of writes, such as a server's replies to many
		 * connections of one peer) */
		dev_of(rdmb->tp)->st.bells_saved++;
	} else {
		uint64_t one = 1;

		dev_of(rdmb->tp)->st.bells++;
		if (write(r->peer->bell, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			dev_of(rdmb->tp)->pub.last_errno = errno;
	}
	return 0;
}

/* ---- completions --------------------------------------------------------- */

static void set_awake(shm_dev *d, uint32_t v)
{
	for (shm_in *in = d->ins; in; in = in->next)
		if (in->area &&
		    __atomic_load_n(&in->area->awake, __ATOMIC_RELAXED) != v)
			__atomic_store_n(&in->area->awake, v, __ATOMIC_SEQ_CST);
}

/* Whether a signal waits in an area: a summary word is set. */
static int any_signal(const shm_dev *d)
{
	for (const shm_in *in = d->ins; in; in = in->next)
		if (in->area)
			for (int s = 0; s < SHM_SUMS; s++)
				if (__atomic_load_n(&in->area->summary[s],
						    __ATOMIC_SEQ_CST))
					return 1;
	return 0;
}

/* Moves the area's set bits into the connection's |pend|. */
static void take_in(shm_in *in)
{
	if (!in->area)
		return;
	for (int s = 0; s < SHM_SUMS; s++) {
		uint64_t sum;

		if (!__atomic_load_n(&in->area->summary[s], __ATOMIC_RELAXED))
			continue;
		sum = __atomic_exchange_n(&in->area->summary[s], 0,
					  __ATOMIC_ACQUIRE);
		while (sum) {
			int b = __builtin_ctzll(sum);
			uint32_t w = (uint32_t)(s * 64 + b);
			uint64_t v = __atomic_exchange_n(&in->area->bits[w], 0,
							 __ATOMIC_ACQUIRE);

			sum &= sum - 1;
			if (v && !in->pend[w])
				in->npend++;
			in->pend[w] |= v;
		}
	}
}

static void take_signals(shm_dev *d)
{
	for (shm_in *in = d->ins; in; in = in->next)
		take_in(in);
}

/* Up to |n| signals from |pend| as completions; a bit whose slot holds no
 * DMB (a peer's stray write) is dropped. */
static int emit(shm_dev *d, usmc_wc *wcs, int n)
{
	int got = usmc_tp_wcq_pop(&d->late, wcs, n);

	for (shm_in *in = d->ins; in && got < n; in = in->next)
		for (uint32_t w = 0; in->npend && w < SHM_WORDS && got < n;
		     w++) {
			if (!in->pend[w])
				continue;
			while (in->pend[w] && got < n) {
				int b = __builtin_ctzll(in->pend[w]);
				uint32_t slot = w * 64 + (uint32_t)b;
				shm_dmb *m = slot < in->nslots ? in->slots[slot]
							       : NULL;

				in->pend[w] &= in->pend[w] - 1;
				if (!m)
					continue;
				wcs[got++] = signal_wc(m);
			}
			if (!in->pend[w])
				in->npend--;
		}
	return got;
}

static int pending(const shm_dev *d)
{
	if (d->late.n)
		return 1;
	for (const shm_in *in = d->ins; in; in = in->next)
		if (in->npend)
			return 1;
	return 0;
}

/* Adaptive spin before the caller sleeps, as the kernel's halt polling
 * (kvm_vcpu_halt): the first poll_cq that finds nothing after some did
 * spins up to |spin_ns| for a signal, with the owner marked awake so that
 * no doorbell rings. When the next signal comes, the idle time so far
 * adapts the budget: within spin_us= a longer spin would have paid
 * (double it, from 2 us), beyond it spinning is waste (halve it, 0 below
 * 2 us). sched_yield every few rounds: on a 2-core machine the peer we
 * wait for may need this CPU. */
static int spin(shm_dev *d)
{
	uint64_t end = now_ns() + d->spin_ns;

	for (unsigned i = 1;; i++) {
		if (any_signal(d)) {
			d->st.spin_hits++;
			return 1;
		}
		if (i % 32 == 0) {
			sched_yield();
			if (now_ns() >= end)
				break;
		} else {
			usmc_tp_shm_relax();
		}
	}
	d->st.spin_misses++;
	return 0;
}

static void adapt(shm_dev *d, uint64_t idle_ns)
{
	if (idle_ns <= d->spin_ns)
		return;
	if (idle_ns <= d->spin_max_ns) {
		d->spin_ns = d->spin_ns ? d->spin_ns * 2 : SHM_SPIN_MIN_NS;
		if (d->spin_ns > d->spin_max_ns)
			d->spin_ns = d->spin_max_ns;
	} else {
		d->spin_ns /= 2;
		if (d->spin_ns < SHM_SPIN_MIN_NS)
			d->spin_ns = 0;
	}
}

static int shm_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n)
{
	shm_dev *d = dev_of(tp);
	uint64_t t0 = 0;
	int got;

	if (n <= 0)
		return 0;
	set_awake(d, 1);
	d->polling = 1;
	serve(d);
	d->polling = 0;
	take_signals(d);
	got = emit(d, wcs, n);
	if (!got && !d->ev_n && !d->idle && d->spin_ns && d->ins) {
		t0 = now_ns();
		if (spin(d)) {
			take_signals(d);
			got = emit(d, wcs, n);
		}
	}
	/* asleep from here: then look again, so that a signal set while
	 * we were awake is not left without a doorbell */
	set_awake(d, 0);
	if (any_signal(d)) {
		take_signals(d);
		got += emit(d, wcs + got, n - got);
	}
	if (pending(d) || any_signal(d) || d->ev_n)
		ring_self(d);
	if (got) {
		/* idle since an earlier call, or since this one's spin */
		uint64_t since = d->idle ? d->idle_since : t0;

		if (since && d->spin_max_ns)
			adapt(d, now_ns() - since);
		d->idle = 0;
	} else if (!d->idle) {
		d->idle = 1;
		d->idle_since = t0 ? t0 : now_ns();
	}
	d->st.signals += (uint64_t)got;
	return got;
}

static int shm_get_async_event(usmc_tp *tp, usmc_tp_event *ev)
{
	shm_dev *d = dev_of(tp);

	serve(d);
	if (!d->ev_n)
		return 0;
	*ev = d->evq[d->ev_head];
	d->ev_head = (d->ev_head + 1) % d->ev_cap;
	d->ev_n--;
	return 1;
}

/* ---- what an ISM device does not have ---------------------------------- */

static int shm_alloc_mr(usmc_tp *tp, size_t length, uint32_t access,
			usmc_tp_mr **pmr)
{
	(void)tp;
	(void)length;
	(void)access;
	*pmr = NULL;
	return USMC_ERR_NOTSUP;
}

static void shm_free_mr(usmc_tp_mr *mr)
{
	(void)mr;
}

static int shm_create_qp(usmc_tp *tp, const usmc_qp_init_attr *attr,
			 usmc_tp_qp **pqp)
{
	(void)tp;
	(void)attr;
	*pqp = NULL;
	return USMC_ERR_NOTSUP;
}

static int shm_modify_qp(usmc_tp_qp *qp, const usmc_qp_attr *attr)
{
	(void)qp;
	(void)attr;
	return USMC_ERR_NOTSUP;
}

static void shm_destroy_qp(usmc_tp_qp *qp)
{
	(void)qp;
}

static int shm_post_send(usmc_tp_qp *qp, const usmc_wr *wr)
{
	(void)qp;
	(void)wr;
	return USMC_ERR_NOTSUP;
}

static int shm_post_recv(usmc_tp_qp *qp, const usmc_recv_wr *wr)
{
	(void)qp;
	(void)wr;
	return USMC_ERR_NOTSUP;
}

/* ---- the backend's own API ---------------------------------------------- */

int usmc_tp_shm_get_stats(usmc_tp *tp, usmc_tp_shm_stats *st)
{
	if (!tp || tp->ops != &usmc_tp_shm_ops)
		return USMC_ERR_INVALID_ARGUMENT;
	*st = dev_of(tp)->st;
	return 0;
}

const char *usmc_tp_shm_endpoint(usmc_tp *tp)
{
	if (!tp || tp->ops != &usmc_tp_shm_ops)
		return NULL;
	return dev_of(tp)->path;
}

int usmc_tp_shm_dmb_reuse(usmc_tp_dmb *dmb, void *context,
			  const uint8_t peer_gid[16])
{
	shm_dmb *m = (shm_dmb *)dmb;
	shm_out *o;

	if (!dmb || !dmb->tp || dmb->tp->ops != &usmc_tp_shm_ops || !peer_gid)
		return USMC_ERR_INVALID_ARGUMENT;
	/* granted once and let go of (DETACH, the attacher's end): nobody
	 * can attach it again */
	if (m->spent && !m->peer)
		return USMC_ERR_CONNRESET;
	/* The holder keeps its mapping and may write it whenever it likes:
	 * the DMB may serve only a connection whose peer is the holder's
	 * process. A CLC's gid_ext is a claim anyone of our uid can make;
	 * our connection to that device's endpoint (the one we attach its
	 * DMBs through) says which process listens there (SO_PEERCRED, as
	 * the holder's connection to ours) */
	for (o = m->d->outs; o; o = o->next)
		if (o->gid_ext == get_be64(peer_gid + 8) && !o->dead)
			break;
	if (m->peer && (get_be64(peer_gid) != m->d->gid || !o ||
			o->pid != m->peer->pid || !o->pid))
		return USMC_ERR_ACCESS;
	if (m->peer) {
		/* a signal the last user's peer set and we did not return
		 * yet is not the new one's; one already returned (the late
		 * queue) carries the old context. Only this slot's bit is
		 * cleared: the others stay where a spinner looks (taking
		 * them here would hide them from it until the next poll_cq;
		 * a summary bit left over wakes it for nothing) */
		shm_in *in = m->peer;
		uint32_t w = m->slot / 64;
		uint64_t bit = 1ull << (m->slot % 64);

		if (in->area)
			__atomic_fetch_and(&in->area->bits[w], ~bit,
					   __ATOMIC_SEQ_CST);
		if (in->pend[w] & bit) {
			in->pend[w] &= ~bit;
			if (!in->pend[w])
				in->npend--;
		}
	}
	m->pub.context = context;
	m->d->st.reused++;
	return 0;
}

int usmc_tp_shm_spin_arm(usmc_tp *tp, usmc_tp_shm_spin *sp)
{
	shm_dev *d;
	int n = 0;

	sp->n = 0;
	sp->awake = 0;
	if (!tp || tp->ops != &usmc_tp_shm_ops)
		return USMC_ERR_INVALID_ARGUMENT;
	d = dev_of(tp);
	for (shm_in *in = d->ins; in; in = in->next) {
		if (!in->area)
			continue;
		if (n == USMC_TP_SHM_SPIN_AREAS)
			return 0; /* too many peers to watch: sleep */
		sp->area[n++] = in->area;
	}
	if (!n)
		return 0;
	pthread_mutex_lock(&proc_lock);
	spin_pins++;
	pthread_mutex_unlock(&proc_lock);
	/* seq_cst, as poll_cq's set_awake: the peer's move_data reads it
	 * after setting its bits */
	for (int i = 0; i < n; i++)
		__atomic_store_n(&((shm_area *)sp->area[i])->awake, 1,
				 __ATOMIC_SEQ_CST);
	sp->n = n;
	sp->awake = 1;
	d->st.spin_arms++; /* under the caller's lock, as the device's calls */
	return n;
}

int usmc_tp_shm_spin_seen(const usmc_tp_shm_spin *sp)
{
	for (int i = 0; i < sp->n; i++) {
		const shm_area *a = sp->area[i];

		for (int s = 0; s < SHM_SUMS; s++)
			if (__atomic_load_n(&a->summary[s], __ATOMIC_SEQ_CST))
				return 1;
	}
	return 0;
}

int usmc_tp_shm_spin_sleep(usmc_tp_shm_spin *sp)
{
	/* asleep, then look again (Dekker with move_data: either we see
	 * its bit, or it sees us asleep and rings the doorbell) */
	if (sp->awake) {
		for (int i = 0; i < sp->n; i++)
			__atomic_store_n(&((shm_area *)sp->area[i])->awake, 0,
					 __ATOMIC_SEQ_CST);
		sp->awake = 0;
	}
	return usmc_tp_shm_spin_seen(sp);
}

void usmc_tp_shm_spin_done(usmc_tp_shm_spin *sp)
{
	shm_zombie *z = NULL;

	if (!sp->n)
		return;
	usmc_tp_shm_spin_sleep(sp);
	sp->n = 0;
	pthread_mutex_lock(&proc_lock);
	if (--spin_pins == 0) {
		z = zombies;
		zombies = NULL;
	}
	pthread_mutex_unlock(&proc_lock);
	while (z) {
		shm_zombie *next = z->next;

		munmap(z->area, SHM_AREA_LEN);
		free(z);
		z = next;
	}
}

int usmc_tp_shm_take(usmc_tp *tp, usmc_wc *wcs, int n)
{
	shm_dev *d;
	int got;

	if (!tp || tp->ops != &usmc_tp_shm_ops)
		return USMC_ERR_INVALID_ARGUMENT;
	if (n <= 0)
		return 0;
	d = dev_of(tp);
	take_signals(d);
	got = emit(d, wcs, n);
	/* what is left over keeps the fd readable, as poll_cq does */
	if (pending(d) || d->ev_n)
		ring_self(d);
	if (got)
		d->idle = 0;
	d->st.signals += (uint64_t)got;
	return got;
}

const usmc_tp_ops usmc_tp_shm_ops = {
	.name = "shm",
	.open = shm_dev_open,
	.close = shm_dev_close,
	.query_port = shm_query_port,
	.get_fd = shm_get_fd,
	.alloc_mr = shm_alloc_mr,
	.free_mr = shm_free_mr,
	.create_qp = shm_create_qp,
	.modify_qp = shm_modify_qp,
	.destroy_qp = shm_destroy_qp,
	.post_send = shm_post_send,
	.post_recv = shm_post_recv,
	.poll_cq = shm_poll_cq,
	.get_async_event = shm_get_async_event,
	.register_dmb = shm_register_dmb,
	.unregister_dmb = shm_unregister_dmb,
	.attach_dmb = shm_attach_dmb,
	.detach_dmb = shm_detach_dmb,
	.move_data = shm_move_data,
};
