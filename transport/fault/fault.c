/* SPDX-License-Identifier: MIT */
/*
 * The fault decorator: a usmc_tp that wraps another (usmc_fault.h). QPs and
 * MRs are wrapped so that qp->tp and mr->tp lead back here; everything else
 * passes through. Where each fault acts:
 * - packet faults (drop, delay, duplicate, reorder, corrupt) act on
 *   received datagrams through the inner device's rx hook, before its
 *   checks: a corrupted byte fails the ICRC there, a dropped or late packet
 *   is recovered (or not) by its RC retransmission, as on a bad wire;
 * - fail-post, qp-error, port-down and device-fatal act here, with the
 *   async events verbs would raise (ibv_get_async_event);
 * - fail-reg-mr and fail-modify-qp make the verb return an error, as
 *   ibv_reg_mr or ibv_modify_qp failing would (no event);
 * - rewrite-llc changes the flags byte of an LLC message this end posts,
 *   in its send buffer before the inner device takes it: the peer gets
 *   what a buggy or hostile sender would have sent.
 * Time is the inner device's own clock when it has one (the optional ops
 * now and wake_at: sim's virtual clock), else CLOCK_MONOTONIC with a
 * timerfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "usmc_fault.h"
#include "usmc_fault_sched.h"

#define FL_EVQ	       64
#define FL_MAX_HELD    4096
#define FL_CTL_MAX     4096
#define FL_DEFAULT_CTL "/run/usmc/fault"

typedef struct fl_dev fl_dev;

typedef struct fl_qp {
	usmc_tp_qp pub;
	usmc_tp_qp *inner;
	fl_dev *d;
	struct fl_qp *next;
} fl_qp;

typedef struct fl_mr {
	usmc_tp_mr pub;
	usmc_tp_mr *inner;
} fl_mr;

/* ISM memory (shm), wrapped as MRs are so that dmb->tp leads back here. */
typedef struct fl_dmb {
	usmc_tp_dmb pub;
	usmc_tp_dmb *inner;
} fl_dmb;

typedef struct fl_rdmb {
	usmc_tp_rdmb pub;
	usmc_tp_rdmb *inner;
} fl_rdmb;

/* A received packet held back (delay, reorder) or to repeat (duplicate). */
typedef struct fl_held {
	struct fl_held *next;
	uint64_t at;
	int reorder; /* released early by the next packet that passes */
	struct sockaddr_storage src, dst;
	size_t len;
	uint8_t data[];
} fl_held;

struct fl_dev {
	usmc_tp pub;
	usmc_tp *inner;
	int epfd, tfd, efd, ctl;
	uint64_t timer_armed;
	usmc_fault_sched sched;
	fl_qp *qps;
	fl_held *held; /* by release time */
	uint32_t nheld;
	int port_down, dead, efd_set;
	int virt; /* the inner device has a clock of its own (now, wake_at) */
	int roce; /* its packets are RoCEv2 (softroce): in=payload works */
	char inner_name[32]; /* for messages */
	usmc_tp_event evq[FL_EVQ];
	uint32_t ev_head, ev_count;
	usmc_fault_stats st;
	char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static __thread char last_error[200];

static fl_dev *dev_of(usmc_tp *tp)
{
	return (fl_dev *)tp;
}

static fl_qp *qp_of(usmc_tp_qp *qp)
{
	return (fl_qp *)qp;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The decorator's time: the inner device's clock if it has one (sim's
 * virtual clock, so a timed schedule replays exactly), else monotonic. */
static uint64_t fl_now(const fl_dev *d)
{
	return d->virt ? d->inner->ops->now(d->inner) : now_ns();
}

const char *usmc_fault_last_error(void)
{
	return last_error;
}

/* ---- events and timer -------------------------------------------------- */

static void raise_event(fl_dev *d, usmc_tp_event_type t, uint32_t qpn)
{
	uint64_t one = 1;

	if (d->ev_count == FL_EVQ)
		return; /* verbs loses events too when nobody reads them */
	d->evq[(d->ev_head + d->ev_count++) % FL_EVQ] =
		(usmc_tp_event){.type = t, .qp_num = qpn};
	if (!d->efd_set && write(d->efd, &one, sizeof(one)) == sizeof(one))
		d->efd_set = 1;
}

static void rearm(fl_dev *d)
{
	uint64_t next = usmc_fault_sched_next(&d->sched);
	struct itimerspec its;

	if (d->held && d->held->at < next)
		next = d->held->at;
	if (next == d->timer_armed)
		return;
	if (d->virt) {
		/* on the inner clock: its alarm makes poll_cq due then */
		if (next != UINT64_MAX)
			d->inner->ops->wake_at(d->inner, next);
		d->timer_armed = next;
		return;
	}
	memset(&its, 0, sizeof(its));
	if (next != UINT64_MAX) {
		if (!next)
			next = 1;
		its.it_value.tv_sec = (time_t)(next / 1000000000ull);
		its.it_value.tv_nsec = (long)(next % 1000000000ull);
	}
	timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	d->timer_armed = next;
}

/* ---- faults at the device level ---------------------------------------- */

static void qp_to_err(fl_qp *q)
{
	usmc_qp_attr a;

	if (usmc_tp_qp_state(q->inner) == USMC_QPS_ERR)
		return;
	memset(&a, 0, sizeof(a));
	a.qp_state = USMC_QPS_ERR;
	/* the inner device flushes the QP's WRs, as a QP in error does */
	usmc_tp_modify_qp(q->inner, &a);
	q->d->st.qp_errors++;
	raise_event(q->d, USMC_TP_EV_QP_FATAL, q->pub.qp_num);
}

static void apply(fl_dev *d, const usmc_fault_clause *c, fl_qp *on_qp,
		  int port_up)
{
	fl_qp *q;

	switch (c->kind) {
	case USMC_FAULT_QP_ERROR:
		if (on_qp) {
			qp_to_err(on_qp);
			break;
		}
		for (q = d->qps; q; q = q->next)
			if (!c->has_qpn || q->pub.qp_num == c->qpn)
				qp_to_err(q);
		break;
	case USMC_FAULT_PORT_DOWN:
		if (port_up) {
			if (d->port_down && !d->dead) {
				d->port_down = 0;
				d->st.port_ups++;
				raise_event(d, USMC_TP_EV_PORT_ACTIVE, 0);
			}
		} else if (!d->port_down) {
			d->port_down = 1;
			d->st.port_downs++;
			raise_event(d, USMC_TP_EV_PORT_ERR, 0);
		}
		break;
	case USMC_FAULT_DEVICE_FATAL:
		if (d->dead)
			break;
		d->dead = 1;
		d->st.device_fatals++;
		for (q = d->qps; q; q = q->next) {
			usmc_qp_attr a;

			memset(&a, 0, sizeof(a));
			a.qp_state = USMC_QPS_ERR;
			usmc_tp_modify_qp(q->inner, &a);
		}
		raise_event(d, USMC_TP_EV_DEVICE_FATAL, 0);
		break;
	default:
		break;
	}
}

static void run_timed(fl_dev *d, uint64_t now)
{
	int i, up;

	while ((i = usmc_fault_sched_timed(&d->sched, now, &up)) >= 0)
		apply(d, &d->sched.c[i], NULL, up);
}

/* ---- packet faults (the inner device's rx hook) ----------------------- */

static fl_held *hold(fl_dev *d, const usmc_tp_rx_pkt *p, uint64_t at,
		     int reorder)
{
	fl_held *h, **pp;
	socklen_t sl;

	if (d->nheld >= FL_MAX_HELD)
		return NULL;
	h = malloc(sizeof(*h) + p->len);
	if (!h)
		return NULL;
	memset(h, 0, sizeof(*h));
	h->at = at;
	h->reorder = reorder;
	h->len = p->len;
	memcpy(h->data, p->data, p->len);
	sl = p->src->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					   : sizeof(struct sockaddr_in);
	memcpy(&h->src, p->src, sl);
	memcpy(&h->dst, p->dst, sl);
	for (pp = &d->held; *pp && (*pp)->at <= at; pp = &(*pp)->next)
		;
	h->next = *pp;
	*pp = h;
	d->nheld++;
	return h;
}

/* Held reorder packets go right after the packet now passing. */
static void release_reordered(fl_dev *d, uint64_t now)
{
	fl_held **pp = &d->held, *moved = NULL, **mt = &moved;

	while (*pp) {
		fl_held *h = *pp;

		if (h->reorder) {
			*pp = h->next;
			h->at = now;
			h->reorder = 0;
			h->next = NULL;
			*mt = h;
			mt = &h->next;
		} else {
			pp = &h->next;
		}
	}
	/* at |now| they sort before everything held for later */
	*mt = d->held;
	d->held = moved ? moved : d->held;
}

/* Where an RC RDMA WRITE packet's payload lies (IBA 9.2-9.4: BTH 12
 * bytes, then a 16-byte RETH on FIRST and ONLY, a 4-byte ImmDt on the
 * WITH_IMMEDIATE ones; PadCnt pad bytes and the 4-byte ICRC at the end):
 * what lands in the peer's RMB. Returns 1 with |*off| and |*n| when the
 * packet is one and carries any. */
static int write_payload(const usmc_tp_rx_pkt *p, size_t *off, size_t *n)
{
	size_t hdr = 12, tail;

	if (p->len < 16)
		return 0;
	switch (p->data[0]) {
	case 0x06: /* RDMA_WRITE_FIRST */
	case 0x0a: /* RDMA_WRITE_ONLY */
		hdr += 16;
		break;
	case 0x07: /* RDMA_WRITE_MIDDLE */
	case 0x08: /* RDMA_WRITE_LAST */
		break;
	case 0x09: /* RDMA_WRITE_LAST_WITH_IMMEDIATE */
		hdr += 4;
		break;
	case 0x0b: /* RDMA_WRITE_ONLY_WITH_IMMEDIATE */
		hdr += 20;
		break;
	default:
		return 0;
	}
	tail = 4 + ((p->data[1] >> 4) & 3);
	if (p->len <= hdr + tail)
		return 0;
	*off = hdr;
	*n = p->len - hdr - tail;
	return 1;
}

static int rx_hook(void *arg, usmc_tp_rx_pkt *p)
{
	fl_dev *d = arg;
	uint64_t now = fl_now(d);
	const usmc_fault_clause *c;
	size_t off = 0, n = 0;
	int i, payload;

	d->st.pkts++;
	if (d->dead || d->port_down) {
		d->st.dropped++;
		return 1;
	}
	payload = d->roce && write_payload(p, &off, &n);
	i = usmc_fault_sched_on(&d->sched, USMC_FAULT_ON_PKT, payload, 0, now);
	if (i < 0) {
		release_reordered(d, now);
		rearm(d);
		return 0;
	}
	c = &d->sched.c[i];
	switch (c->kind) {
	case USMC_FAULT_DROP:
		d->st.dropped++;
		return 1;
	case USMC_FAULT_CORRUPT:
		/* a byte behind the 12-byte BTH and before the ICRC (or,
		 * in=payload, of the WRITE payload: only such packets count
		 * for that clause): the headers still decode and the ICRC
		 * check fails */
		if (c->in == USMC_FAULT_IN_PAYLOAD) {
			p->data[off +
				(size_t)(usmc_fault_sched_rand(&d->sched) %
					 n)] ^= 0x5a;
			d->st.corrupted++;
		} else if (p->len > 16) {
			size_t pos =
				12 + (size_t)(usmc_fault_sched_rand(&d->sched) %
					      (p->len - 16));

			p->data[pos] ^= 0x5a;
			d->st.corrupted++;
		}
		release_reordered(d, now);
		rearm(d);
		return 0;
	case USMC_FAULT_DUPLICATE:
		if (hold(d, p, now, 0))
			d->st.duplicated++;
		release_reordered(d, now);
		rearm(d);
		return 0;
	case USMC_FAULT_DELAY:
		if (!hold(d, p, now + c->by_ns, 0))
			return 0;
		d->st.delayed++;
		rearm(d);
		return 1;
	case USMC_FAULT_REORDER:
		/* held until the next packet passes, or |by| at the latest */
		if (!hold(d, p, now + c->by_ns, 1))
			return 0;
		d->st.reordered++;
		rearm(d);
		return 1;
	default:
		return 0;
	}
}

static void release_due(fl_dev *d, uint64_t now)
{
	while (d->held && d->held->at <= now) {
		fl_held *h = d->held;
		usmc_tp_rx_pkt p = {h->data, h->len,
				    (const struct sockaddr *)&h->src,
				    (const struct sockaddr *)&h->dst};

		d->held = h->next;
		d->nheld--;
		if (!d->dead && !d->port_down)
			d->inner->ops->rx_inject(d->inner, &p);
		free(h);
	}
}

/* ---- control socket ---------------------------------------------------- */

static void ctl_open(fl_dev *d)
{
	static unsigned seq;
	const char *dir = getenv("USMC_FAULT_CTL_DIR");
	const char *off = getenv("USMC_FAULT_CTL");
	struct sockaddr_un sa;
	struct epoll_event ev;
	int n;

	if (off && !strcmp(off, "off"))
		return;
	if (!dir || !*dir)
		dir = FL_DEFAULT_CTL;
	mkdir("/run/usmc", 0755);
	mkdir(dir, 0755);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path),
		     "%s/usmc-fault.%d.%u.sock", dir, (int)getpid(),
		     __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return;
	d->ctl = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->ctl < 0)
		return;
	unlink(sa.sun_path);
	if (bind(d->ctl, (struct sockaddr *)&sa, sizeof(sa))) {
		close(d->ctl);
		d->ctl = -1;
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->ctl, &ev);
	memcpy(d->ctl_path, sa.sun_path, sizeof(d->ctl_path));
}

/* The answer to "stats": the counters, as key=value. */
static void stats_line(const fl_dev *d, char *out, size_t len)
{
	const usmc_fault_stats *s = &d->st;

	snprintf(out, len,
		 "pkts=%llu dropped=%llu delayed=%llu duplicated=%llu "
		 "reordered=%llu corrupted=%llu posts=%llu posts_failed=%llu "
		 "qp_errors=%llu port_downs=%llu port_ups=%llu "
		 "device_fatals=%llu mrs_failed=%llu modifies_failed=%llu "
		 "llc_rewritten=%llu",
		 (unsigned long long)s->pkts, (unsigned long long)s->dropped,
		 (unsigned long long)s->delayed,
		 (unsigned long long)s->duplicated,
		 (unsigned long long)s->reordered,
		 (unsigned long long)s->corrupted, (unsigned long long)s->posts,
		 (unsigned long long)s->posts_failed,
		 (unsigned long long)s->qp_errors,
		 (unsigned long long)s->port_downs,
		 (unsigned long long)s->port_ups,
		 (unsigned long long)s->device_fatals,
		 (unsigned long long)s->mrs_failed,
		 (unsigned long long)s->modifies_failed,
		 (unsigned long long)s->llc_rewritten);
}

static void ctl_drain(fl_dev *d)
{
	char buf[FL_CTL_MAX + 1], reply[512];
	struct sockaddr_un from;

	for (;;) {
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(d->ctl, buf, FL_CTL_MAX, 0,
				     (struct sockaddr *)&from, &fl);
		char err[200];

		if (n < 0)
			return;
		buf[n] = 0;
		if (!strcmp(buf, "stats"))
			stats_line(d, reply, sizeof(reply));
		else if (memchr(buf, 0, (size_t)n))
			snprintf(reply, sizeof(reply),
				 "error: a NUL byte in the schedule");
		else if (usmc_fault_add(&d->pub, buf, err, sizeof(err)))
			snprintf(reply, sizeof(reply), "error: %s", err);
		else
			snprintf(reply, sizeof(reply), "ok");
		if (!strcmp(reply, "ok"))
			d->st.ctl_msgs++;
		if (fl > sizeof(sa_family_t))
			sendto(d->ctl, reply, strlen(reply), MSG_DONTWAIT,
			       (struct sockaddr *)&from, fl);
	}
}

/* ---- device ------------------------------------------------------------ */

static int load_env_schedule(fl_dev *d, uint64_t now)
{
	const char *text = getenv("USMC_FAULT");
	const char *file = getenv("USMC_FAULT_FILE");
	char err[180];

	if (text && *text &&
	    usmc_fault_sched_parse(text, now, &d->sched, err, sizeof(err))) {
		snprintf(last_error, sizeof(last_error), "USMC_FAULT: %s", err);
		return USMC_ERR_INVALID_ARGUMENT;
	}
	if (file && *file) {
		usmc_fault_sched more;
		FILE *f = fopen(file, "r");
		char *buf;
		size_t n;

		if (!f) {
			snprintf(last_error, sizeof(last_error),
				 "USMC_FAULT_FILE %s: %s", file,
				 strerror(errno));
			return USMC_ERR_INVALID_ARGUMENT;
		}
		buf = calloc(1, 65537);
		n = buf ? fread(buf, 1, 65536, f) : 0;
		fclose(f);
		if (!buf)
			return USMC_ERR_NOMEM;
		if (n == 65536 || memchr(buf, 0, n)) {
			snprintf(last_error, sizeof(last_error),
				 "USMC_FAULT_FILE %s: not a schedule (NUL "
				 "byte or over 64 KiB)",
				 file);
			free(buf);
			return USMC_ERR_INVALID_ARGUMENT;
		}
		if (usmc_fault_sched_parse(buf, now, &more, err, sizeof(err))) {
			snprintf(last_error, sizeof(last_error),
				 "USMC_FAULT_FILE %s: %s", file, err);
			free(buf);
			return USMC_ERR_INVALID_ARGUMENT;
		}
		free(buf);
		if (usmc_fault_sched_merge(&d->sched, &more)) {
			snprintf(last_error, sizeof(last_error),
				 "USMC_FAULT and USMC_FAULT_FILE: more than "
				 "%d faults",
				 USMC_FAULT_MAX_CLAUSES);
			return USMC_ERR_INVALID_ARGUMENT;
		}
	}
	return 0;
}

static void fl_close(usmc_tp *tp);

/* Splits inner=NAME (into |name|), ctl=off and env=off (into |flags|)
 * off |opts|; the rest goes to |rest|. */
#define FL_NO_CTL 1
#define FL_NO_ENV 2
static int split_options(const char *opts, char *name, size_t nlen, char *rest,
			 size_t rlen, int *flags)
{
	const char *p = opts;
	size_t used = 0;

	snprintf(name, nlen, "softroce");
	rest[0] = 0;
	*flags = 0;
	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == 7 && !strncmp(p, "ctl=off", 7)) {
			*flags |= FL_NO_CTL;
		} else if (len == 7 && !strncmp(p, "env=off", 7)) {
			*flags |= FL_NO_ENV;
		} else if (len > 6 && !strncmp(p, "inner=", 6)) {
			if (len - 6 >= nlen)
				return USMC_ERR_INVALID_ARGUMENT;
			memcpy(name, p + 6, len - 6);
			name[len - 6] = 0;
		} else if (len) {
			if (used + len + 2 > rlen)
				return USMC_ERR_INVALID_ARGUMENT;
			if (used)
				rest[used++] = ',';
			memcpy(rest + used, p, len);
			used += len;
			rest[used] = 0;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

/* Packet faults need the inner device's wire, and in=payload its RoCEv2
 * packets: a schedule that asks for either where it is missing is refused
 * (at open and when clauses are added). */
static int check_hook(const fl_dev *d, const usmc_fault_sched *s, char *err,
		      size_t errlen)
{
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->c[i].kind <= USMC_FAULT_CORRUPT &&
		    !d->inner->ops->set_rx_hook) {
			if (err)
				snprintf(err, errlen,
					 "%s: inner %s has no packet hook",
					 usmc_fault_kind_name(s->c[i].kind),
					 d->inner_name);
			return USMC_ERR_NOTSUP;
		}
		if (s->c[i].kind == USMC_FAULT_CORRUPT &&
		    s->c[i].in == USMC_FAULT_IN_PAYLOAD && !d->roce) {
			if (err)
				snprintf(err, errlen,
					 "corrupt: in=payload needs RoCEv2 "
					 "packets (inner %s has none)",
					 d->inner_name);
			return USMC_ERR_NOTSUP;
		}
	}
	return 0;
}

static int fl_open(const usmc_tp_config *cfg, usmc_tp **ptp)
{
	char name[32], rest[512];
	usmc_tp_config icfg = *cfg;
	struct epoll_event ev;
	fl_dev *d;
	int rc, flags;

	last_error[0] = 0;
	if (split_options(cfg->options, name, sizeof(name), rest, sizeof(rest),
			  &flags)) {
		snprintf(last_error, sizeof(last_error),
			 "options: expected inner=NAME and the inner "
			 "device's options");
		return USMC_ERR_INVALID_ARGUMENT;
	}
	if (!strcmp(name, "fault") || !usmc_tp_find(name)) {
		snprintf(last_error, sizeof(last_error),
			 "inner=%s: no such transport to wrap", name);
		return USMC_ERR_INVALID_ARGUMENT;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return USMC_ERR_NOMEM;
	d->pub.ops = &usmc_tp_fault_ops;
	d->epfd = d->tfd = d->efd = d->ctl = -1;
	d->timer_armed = UINT64_MAX;
	icfg.options = rest[0] ? rest : NULL;
	rc = usmc_tp_open(name, &icfg, &d->inner);
	if (rc) {
		snprintf(last_error, sizeof(last_error), "inner %s: %s", name,
			 usmc_strerror(rc));
		free(d);
		return rc;
	}
	d->virt = d->inner->ops->now && d->inner->ops->wake_at;
	d->roce = !strcmp(name, "softroce");
	snprintf(d->inner_name, sizeof(d->inner_name), "%s", name);
	/* clauses are timed from now on the inner device's clock */
	rc = usmc_fault_sched_parse("", fl_now(d), &d->sched, NULL, 0);
	if (!rc && !(flags & FL_NO_ENV))
		rc = load_env_schedule(d, fl_now(d));
	if (rc) {
		usmc_tp_close(d->inner);
		free(d);
		return rc;
	}
	if (d->inner->ops->set_rx_hook && d->inner->ops->rx_inject)
		d->inner->ops->set_rx_hook(d->inner, rx_hook, d);
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->epfd < 0 || d->tfd < 0 || d->efd < 0)
		goto fail;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, usmc_tp_get_fd(d->inner), &ev) ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->tfd, &ev) ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->efd, &ev))
		goto fail;
	rc = check_hook(d, &d->sched, last_error, sizeof(last_error));
	if (rc) {
		fl_close(&d->pub);
		return rc;
	}
	if (!(flags & FL_NO_CTL))
		ctl_open(d);
	rearm(d);
	*ptp = &d->pub;
	return 0;
fail:
	d->pub.last_errno = errno;
	fl_close(&d->pub);
	return USMC_ERR_TRANSPORT;
}

static void fl_close(usmc_tp *tp)
{
	fl_dev *d = dev_of(tp);

	while (d->held) {
		fl_held *h = d->held;

		d->held = h->next;
		free(h);
	}
	if (d->inner)
		usmc_tp_close(d->inner);
	if (d->ctl >= 0) {
		close(d->ctl);
		unlink(d->ctl_path);
	}
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->tfd >= 0)
		close(d->tfd);
	if (d->efd >= 0)
		close(d->efd);
	free(d);
}

static int fl_query_port(usmc_tp *tp, usmc_port_attr *attr)
{
	return usmc_tp_query_port(dev_of(tp)->inner, attr);
}

static int fl_get_fd(usmc_tp *tp)
{
	return dev_of(tp)->epfd;
}

/* fail-reg-mr: this registration (reg_mr or alloc_mr) is refused. */
static int mr_refused(fl_dev *d)
{
	if (d->dead || usmc_fault_sched_on(&d->sched, USMC_FAULT_ON_REG_MR, -1,
					   0, fl_now(d)) < 0)
		return 0;
	d->st.mrs_failed++;
	return 1;
}

/* A decorator MR over the inner device's: |addr| NULL allocates
 * (alloc_mr), else registers |addr| (reg_mr; usmc_tp_reg_mr refused NULL). */
static int fl_mr_new(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		     usmc_tp_mr **pmr)
{
	usmc_tp *inner = dev_of(tp)->inner;
	fl_mr *m;
	int rc;

	if (mr_refused(dev_of(tp)))
		return USMC_ERR_NOMEM;
	m = calloc(1, sizeof(*m));
	if (!m)
		return USMC_ERR_NOMEM;
	rc = addr ? usmc_tp_reg_mr(inner, addr, length, access, &m->inner)
		  : usmc_tp_alloc_mr(inner, length, access, &m->inner);
	if (rc) {
		free(m);
		return rc;
	}
	m->pub = *m->inner;
	m->pub.tp = tp;
	*pmr = &m->pub;
	return 0;
}

static int fl_alloc_mr(usmc_tp *tp, size_t length, uint32_t access,
		       usmc_tp_mr **pmr)
{
	return fl_mr_new(tp, NULL, length, access, pmr);
}

static int fl_reg_mr(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		     usmc_tp_mr **pmr)
{
	return fl_mr_new(tp, addr, length, access, pmr);
}

static void fl_free_mr(usmc_tp_mr *mr)
{
	fl_mr *m = (fl_mr *)mr;

	usmc_tp_free_mr(m->inner);
	free(m);
}

static int fl_create_qp(usmc_tp *tp, const usmc_qp_init_attr *attr,
			usmc_tp_qp **pqp)
{
	fl_dev *d = dev_of(tp);
	fl_qp *q;
	int rc;

	if (d->dead)
		return USMC_ERR_TRANSPORT;
	q = calloc(1, sizeof(*q));
	if (!q)
		return USMC_ERR_NOMEM;
	rc = usmc_tp_create_qp(d->inner, attr, &q->inner);
	if (rc) {
		free(q);
		return rc;
	}
	q->pub.tp = tp;
	q->d = d;
	q->pub.context = attr->context;
	q->pub.qp_num = usmc_tp_qp_num(q->inner);
	q->pub.state = usmc_tp_qp_state(q->inner);
	q->next = d->qps;
	d->qps = q;
	*pqp = &q->pub;
	return 0;
}

static int fl_modify_qp(usmc_tp_qp *qp, const usmc_qp_attr *attr)
{
	fl_qp *q = qp_of(qp);

	if (q->d->dead && attr->qp_state != USMC_QPS_ERR &&
	    attr->qp_state != USMC_QPS_RESET)
		return USMC_ERR_TRANSPORT;
	/* fail-modify-qp: the QP stays where it is, as when ibv_modify_qp
	 * refuses an attribute */
	if ((attr->qp_state == USMC_QPS_RTR ||
	     attr->qp_state == USMC_QPS_RTS) &&
	    usmc_fault_sched_on(&q->d->sched, USMC_FAULT_ON_MODIFY_QP, -1,
				q->pub.qp_num, fl_now(q->d)) >= 0) {
		q->d->st.modifies_failed++;
		return USMC_ERR_TRANSPORT;
	}
	return usmc_tp_modify_qp(q->inner, attr);
}

static void fl_destroy_qp(usmc_tp_qp *qp)
{
	fl_qp *q = qp_of(qp), **pp;

	for (pp = &q->d->qps; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	usmc_tp_destroy_qp(q->inner);
	free(q);
}

/* The inner QP's state, whichever way it got there (an error completion,
 * a fault): the decorator keeps none of its own. */
static usmc_qp_state fl_query_qp_state(const usmc_tp_qp *qp)
{
	fl_qp *q = (fl_qp *)qp;

	q->pub.state = usmc_tp_qp_state(q->inner);
	return q->pub.state;
}

/* The inner QP's counters: the faults it lost packets to show there. */
static int fl_query_qp_stats(const usmc_tp_qp *qp, usmc_tp_qp_stats *st)
{
	return usmc_tp_query_qp_stats(((const fl_qp *)qp)->inner, st);
}

/* rewrite-llc: a SEND whose first bytes are an LLC header (type in byte
 * 0, flags in byte 3) that a clause matches gets its flags rewritten in
 * the sender's buffer, which is this process's memory (the sge's address). */
static void rewrite_llc(fl_dev *d, fl_qp *q, const usmc_wr *wr)
{
	const usmc_fault_clause *c;
	uint8_t *msg;
	int i;

	if (wr->opcode != USMC_WR_SEND || !wr->num_sge ||
	    wr->sg_list[0].length < 4 || !wr->sg_list[0].addr)
		return;
	msg = (uint8_t *)(uintptr_t)wr->sg_list[0].addr;
	i = usmc_fault_sched_on_llc(&d->sched, msg[0], msg[3], q->pub.qp_num,
				    fl_now(d));
	if (i < 0)
		return;
	c = &d->sched.c[i];
	msg[3] = (uint8_t)((msg[3] & ~c->clear_mask) | c->set_mask);
	d->st.llc_rewritten++;
}

static int fl_post_send(usmc_tp_qp *qp, const usmc_wr *wr)
{
	fl_qp *q = qp_of(qp);
	fl_dev *d = q->d;
	int i;

	d->st.posts++;
	if (!d->dead && !d->port_down) {
		i = usmc_fault_sched_on(&d->sched, USMC_FAULT_ON_POST,
					(int)wr->opcode, q->pub.qp_num,
					fl_now(d));
		if (i >= 0) {
			const usmc_fault_clause *c = &d->sched.c[i];

			if (c->kind == USMC_FAULT_FAIL_POST) {
				d->st.posts_failed++;
				return USMC_ERR_TRANSPORT;
			}
			apply(d, c, q, 0);
			rearm(d);
		}
	}
	/* a dead device or a port without link takes no work */
	if (d->dead || d->port_down) {
		d->st.posts_failed++;
		return USMC_ERR_TRANSPORT;
	}
	rewrite_llc(d, q, wr);
	return usmc_tp_post_send(q->inner, wr);
}

static int fl_post_recv(usmc_tp_qp *qp, const usmc_recv_wr *wr)
{
	fl_qp *q = qp_of(qp);

	if (q->d->dead)
		return USMC_ERR_TRANSPORT;
	return usmc_tp_post_recv(q->inner, wr);
}

static int fl_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n)
{
	fl_dev *d = dev_of(tp);
	uint64_t now = fl_now(d), exp;

	if (d->timer_armed != UINT64_MAX && now >= d->timer_armed) {
		if (!d->virt && read(d->tfd, &exp, sizeof(exp)) < 0 &&
		    errno != EAGAIN)
			d->pub.last_errno = errno;
		d->timer_armed = UINT64_MAX;
	}
	if (d->ctl >= 0)
		ctl_drain(d);
	run_timed(d, now);
	release_due(d, now);
	rearm(d);
	return usmc_tp_poll_cq(d->inner, wcs, n);
}

static void fl_batch(usmc_tp *tp, int on)
{
	usmc_tp_batch(dev_of(tp)->inner, on);
}

static int fl_get_async_event(usmc_tp *tp, usmc_tp_event *ev)
{
	fl_dev *d = dev_of(tp);
	uint64_t v;

	if (!d->ev_count) {
		if (d->efd_set && read(d->efd, &v, sizeof(v)) >= 0)
			d->efd_set = 0;
		return usmc_tp_get_async_event(d->inner, ev);
	}
	*ev = d->evq[d->ev_head];
	d->ev_head = (d->ev_head + 1) % FL_EVQ;
	d->ev_count--;
	return 1;
}

/* ---- ISM memory (shm): passed through; fail-reg-mr refuses a DMB too,
 * and a dead device or a port down moves no data --------------------------- */

static int fl_register_dmb(usmc_tp *tp, size_t len, void *context,
			   usmc_tp_dmb **pdmb)
{
	fl_dev *d = dev_of(tp);
	fl_dmb *m;
	int rc;

	if (!d->inner->ops->register_dmb)
		return USMC_ERR_NOTSUP;
	if (mr_refused(d))
		return USMC_ERR_NOMEM;
	m = calloc(1, sizeof(*m));
	if (!m)
		return USMC_ERR_NOMEM;
	rc = usmc_tp_register_dmb(d->inner, len, context, &m->inner);
	if (rc) {
		free(m);
		return rc;
	}
	m->pub = *m->inner;
	m->pub.tp = tp;
	*pdmb = &m->pub;
	return 0;
}

static void fl_unregister_dmb(usmc_tp_dmb *dmb)
{
	fl_dmb *m = (fl_dmb *)dmb;

	usmc_tp_unregister_dmb(m->inner);
	free(m);
}

static int fl_attach_dmb(usmc_tp *tp, const uint8_t peer_gid[16],
			 uint64_t token, void *context, usmc_tp_rdmb **prdmb)
{
	fl_dev *d = dev_of(tp);
	fl_rdmb *r;
	int rc;

	if (d->dead || d->port_down)
		return USMC_ERR_TRANSPORT;
	r = calloc(1, sizeof(*r));
	if (!r)
		return USMC_ERR_NOMEM;
	rc = usmc_tp_attach_dmb(d->inner, peer_gid, token, context, &r->inner);
	if (rc) {
		free(r);
		return rc;
	}
	r->pub = *r->inner;
	r->pub.tp = tp;
	/* every byte goes through fl_move_data, where the faults are */
	r->pub.mapped = 0;
	*prdmb = &r->pub;
	return 0;
}

static void fl_detach_dmb(usmc_tp_rdmb *rdmb)
{
	fl_rdmb *r = (fl_rdmb *)rdmb;

	usmc_tp_detach_dmb(r->inner);
	free(r);
}

static int fl_move_data(usmc_tp_rdmb *rdmb, size_t offset, const void *data,
			size_t len, int signal)
{
	fl_dev *d = dev_of(rdmb->tp);

	if (d->dead || d->port_down)
		return USMC_ERR_TRANSPORT;
	return usmc_tp_move_data(((fl_rdmb *)rdmb)->inner, offset, data, len,
				 signal);
}

/* ---- control API ------------------------------------------------------- */

int usmc_fault_set_sched(usmc_tp *tp, const usmc_fault_sched *s)
{
	fl_dev *d;
	int rc;

	if (!tp || tp->ops != &usmc_tp_fault_ops)
		return USMC_ERR_INVALID_ARGUMENT;
	d = dev_of(tp);
	if (!s)
		return usmc_fault_sched_parse("", fl_now(d), &d->sched, NULL,
					      0);
	rc = check_hook(d, s, NULL, 0);
	if (rc)
		return rc;
	d->sched = *s;
	rearm(d);
	return 0;
}

int usmc_fault_add(usmc_tp *tp, const char *text, char *err, size_t errlen)
{
	fl_dev *d;
	usmc_fault_sched more;
	int rc;

	if (!tp || tp->ops != &usmc_tp_fault_ops)
		return USMC_ERR_INVALID_ARGUMENT;
	d = dev_of(tp);
	rc = usmc_fault_sched_parse(text, fl_now(d), &more, err, errlen);
	if (rc)
		return rc;
	rc = check_hook(d, &more, err, errlen);
	if (rc)
		return rc;
	if (usmc_fault_sched_merge(&d->sched, &more)) {
		snprintf(err, errlen, "at most %d faults on a device",
			 USMC_FAULT_MAX_CLAUSES);
		return USMC_ERR_LIMIT;
	}
	rearm(d);
	return 0;
}

int usmc_fault_get_stats(usmc_tp *tp, usmc_fault_stats *st)
{
	const fl_dev *d;

	if (!tp || tp->ops != &usmc_tp_fault_ops)
		return USMC_ERR_INVALID_ARGUMENT;
	d = dev_of(tp);
	*st = d->st;
	st->fired = 0;
	for (uint32_t i = 0; i < d->sched.n; i++)
		st->fired += d->sched.c[i].fired;
	return 0;
}

uint64_t usmc_fault_now(usmc_tp *tp)
{
	return fl_now(dev_of(tp));
}

usmc_tp *usmc_fault_inner(usmc_tp *tp)
{
	return dev_of(tp)->inner;
}

const char *usmc_fault_ctl_path(usmc_tp *tp)
{
	return dev_of(tp)->ctl_path;
}

const usmc_tp_ops usmc_tp_fault_ops = {
	.name = "fault",
	.open = fl_open,
	.close = fl_close,
	.query_port = fl_query_port,
	.get_fd = fl_get_fd,
	.alloc_mr = fl_alloc_mr,
	.reg_mr = fl_reg_mr,
	.free_mr = fl_free_mr,
	.create_qp = fl_create_qp,
	.modify_qp = fl_modify_qp,
	.destroy_qp = fl_destroy_qp,
	.query_qp_state = fl_query_qp_state,
	.query_qp_stats = fl_query_qp_stats,
	.post_send = fl_post_send,
	.post_recv = fl_post_recv,
	.poll_cq = fl_poll_cq,
	.batch = fl_batch,
	.get_async_event = fl_get_async_event,
	.register_dmb = fl_register_dmb,
	.unregister_dmb = fl_unregister_dmb,
	.attach_dmb = fl_attach_dmb,
	.detach_dmb = fl_detach_dmb,
	.move_data = fl_move_data,
};
