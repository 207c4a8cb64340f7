/* SPDX-License-Identifier: MIT */
/*
 * The verbs backend: the device. Opened by the RoCEv2 GID of the local
 * address (or dev=/gid_index=), with a PD, one CQ for all its QPs (the
 * ops table polls one CQ per device), a completion channel and the async
 * event fd, both non-blocking and both in one epoll fd that get_fd hands
 * out. MRs are allocated here and registered with exactly the access the
 * caller asks.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "verbs_int.h"

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

int vb_device_count(void)
{
	struct ibv_device **l;
	int n = 0;

	l = ibv_get_device_list(&n);
	/* ENOSYS: a kernel without RDMA (no /sys/class/infiniband) */
	if (!l)
		return errno == ENOSYS ? 0 : usmc_verbs_err(errno);
	ibv_free_device_list(l);
	return n;
}

static struct ibv_context *open_by_name(const char *name)
{
	struct ibv_device **l = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;

	if (!l)
		return NULL;
	errno = ENODEV;
	for (int i = 0; l[i]; i++)
		if (!strcmp(ibv_get_device_name(l[i]), name)) {
			ctx = ibv_open_device(l[i]);
			break;
		}
	ibv_free_device_list(l);
	return ctx;
}

/* The netdev's MAC, for query_port (CLC carries it); zero if unknown. */
static void read_mac(const char *ndev, uint8_t mac[6])
{
	char path[128];
	unsigned int m[6];
	FILE *f;

	memset(mac, 0, 6);
	if (!ndev[0] || strchr(ndev, '/'))
		return;
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ndev);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
		   &m[5]) == 6)
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)m[i];
	fclose(f);
}

/* The GID entry itself, from the device: its bytes and that it is RoCEv2
 * (ibv_query_gid_ex, rdma-core 32 and later). */
static int check_gid(vb_dev *d)
{
	struct ibv_gid_entry e;
	char ifn[IF_NAMESIZE];
	int r;

	r = ibv_query_gid_ex(d->ctx, d->loc.port, d->loc.index, &e, 0);
	if (r) {
		d->pub.last_errno = r;
		return usmc_verbs_err(r);
	}
	if (e.gid_type != IBV_GID_TYPE_ROCE_V2)
		return USMC_ERR_NOTFOUND;
	memcpy(d->loc.gid, e.gid.raw, 16);
	if (!d->loc.ndev[0] && e.ndev_ifindex &&
	    if_indextoname(e.ndev_ifindex, ifn))
		snprintf(d->loc.ndev, sizeof(d->loc.ndev), "%s", ifn);
	return 0;
}

/* The largest inline payload an RC QP of this device takes: verbs has no
 * device attribute for it, so one QP is created and asked. */
static void probe_inline(vb_dev *d)
{
	struct ibv_qp_init_attr ia;
	struct ibv_qp *qp;

	memset(&ia, 0, sizeof(ia));
	ia.send_cq = ia.recv_cq = d->cq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = ia.cap.max_recv_wr = 1;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = 1;
	for (uint32_t want = VB_INLINE_PROBE; want; want /= 4) {
		ia.cap.max_inline_data = want;
		qp = ibv_create_qp(d->pd, &ia);
		if (qp) {
			d->max_inline = ia.cap.max_inline_data;
			ibv_destroy_qp(qp);
			return;
		}
	}
	d->max_inline = 0;
}

static void vb_close(usmc_tp *tp);

static int vb_open(const usmc_tp_config *cfg, usmc_tp **ptp)
{
	struct ibv_port_attr pa;
	struct epoll_event ev;
	vb_dev *d;
	int r;

	*ptp = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return USMC_ERR_NOMEM;
	d->pub.ops = &vb_ops;
	d->ep = -1;
	r = usmc_verbs_parse_opts(cfg->options, &d->opt);
	if (r)
		goto fail;
	if (d->opt.gid_index >= 0) {
		snprintf(d->loc.dev, sizeof(d->loc.dev), "%s", d->opt.dev);
		d->loc.port = d->opt.port ? d->opt.port : 1;
		d->loc.index = (uint32_t)d->opt.gid_index;
	} else {
		uint8_t gid[16];

		r = usmc_verbs_addr_gid(&cfg->local_addr, gid);
		if (r)
			goto fail;
		r = usmc_verbs_find_gid(VB_SYSFS_IB, gid, d->opt.dev,
					d->opt.port, cfg->ifname, &d->loc);
		if (r) {
			d->pub.last_errno = ENODEV;
			goto fail;
		}
	}
	d->ctx = open_by_name(d->loc.dev);
	if (!d->ctx) {
		r = USMC_ERR_NOTFOUND;
		goto fail_errno;
	}
	r = check_gid(d);
	if (r)
		goto fail;
	read_mac(d->loc.ndev, d->mac);
	if (ibv_query_device(d->ctx, &d->dattr) ||
	    ibv_query_port(d->ctx, (uint8_t)d->loc.port, &pa)) {
		r = USMC_ERR_TRANSPORT;
		goto fail_errno;
	}
	d->active_mtu = (uint8_t)pa.active_mtu;
	d->pd = ibv_alloc_pd(d->ctx);
	d->ch = d->pd ? ibv_create_comp_channel(d->ctx) : NULL;
	if (!d->ch) {
		r = USMC_ERR_TRANSPORT;
		goto fail_errno;
	}
	d->cqe = (int)(d->opt.cqe ? d->opt.cqe : VB_DEFAULT_CQE);
	if (d->dattr.max_cqe > 0 && d->cqe > d->dattr.max_cqe)
		d->cqe = d->dattr.max_cqe;
	d->cq = ibv_create_cq(d->ctx, d->cqe, NULL, d->ch, 0);
	if (!d->cq) {
		r = USMC_ERR_TRANSPORT;
		goto fail_errno;
	}
	/* the CQ may be larger than asked: what it holds is what it says */
	d->cqe = d->cq->cqe;
	if (set_nonblock(d->ch->fd) || set_nonblock(d->ctx->async_fd)) {
		r = USMC_ERR_TRANSPORT;
		goto fail_errno;
	}
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	if (d->ep < 0) {
		r = USMC_ERR_TRANSPORT;
		goto fail_errno;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->ch->fd, &ev) ||
	    epoll_ctl(d->ep, EPOLL_CTL_ADD, d->ctx->async_fd, &ev)) {
		r = USMC_ERR_TRANSPORT;
		goto fail_errno;
	}
	r = ibv_req_notify_cq(d->cq, 0);
	if (r) {
		d->pub.last_errno = r;
		r = usmc_verbs_err(r);
		goto fail;
	}
	d->cq_armed = 1;
	probe_inline(d);
	*ptp = &d->pub;
	return 0;
fail_errno:
	d->pub.last_errno = errno;
fail:
	vb_close(&d->pub);
	return r;
}

static void vb_close(usmc_tp *tp)
{
	vb_dev *d = vb_of(tp);

	for (uint32_t i = 0; i < d->nqps; i++)
		if (d->qps[i])
			vb_destroy_qp(&d->qps[i]->pub);
	for (uint32_t i = 0; i < d->mrs_cap; i++)
		if (d->mrs[i]) {
			ibv_dereg_mr(d->mrs[i]->mr);
			if (d->mrs[i]->maplen)
				munmap(d->mrs[i]->pub.addr, d->mrs[i]->maplen);
			free(d->mrs[i]);
		}
	if (d->cq)
		ibv_destroy_cq(d->cq);
	if (d->ch)
		ibv_destroy_comp_channel(d->ch);
	if (d->pd)
		ibv_dealloc_pd(d->pd);
	if (d->ctx)
		ibv_close_device(d->ctx);
	if (d->ep >= 0)
		close(d->ep);
	free(d->qps);
	free(d->mrs);
	usmc_tp_wcq_free(&d->bl);
	free(d);
}

static int vb_query_port(usmc_tp *tp, usmc_port_attr *a)
{
	vb_dev *d = vb_of(tp);
	struct ibv_port_attr pa;

	memset(a, 0, sizeof(*a));
	/* the port's MTU follows its netdev's (rxe): ask each time */
	if (!ibv_query_port(d->ctx, (uint8_t)d->loc.port, &pa))
		d->active_mtu = (uint8_t)pa.active_mtu;
	memcpy(a->gid, d->loc.gid, 16);
	memcpy(a->mac, d->mac, 6);
	a->active_mtu = d->active_mtu;
	a->max_inline_data = d->max_inline;
	a->max_qp_wr =
		d->dattr.max_qp_wr > 0 ? (uint32_t)d->dattr.max_qp_wr : 0;
	/* ROCE_V2_UDP_DPORT: the kernel's RNIC listens there, fixed */
	a->udp_port = 4791;
	snprintf(a->name, sizeof(a->name), "%.27s:%u", d->loc.dev,
		 d->loc.index);
	return 0;
}

static int vb_get_fd(usmc_tp *tp)
{
	return vb_of(tp)->ep;
}

/* ---- memory ----------------------------------------------------------- */

static uint32_t mr_hash(uint32_t k, uint32_t cap)
{
	return (k * 2654435761u) & (cap - 1);
}

vb_mr *vb_mr_by_lkey(vb_dev *d, uint32_t lkey)
{
	if (!d->mrs_cap)
		return NULL;
	for (uint32_t i = mr_hash(lkey, d->mrs_cap), n = 0; n < d->mrs_cap;
	     n++, i = (i + 1) & (d->mrs_cap - 1)) {
		if (!d->mrs[i])
			return NULL;
		if (d->mrs[i]->pub.lkey == lkey)
			return d->mrs[i];
	}
	return NULL;
}

static void mr_insert(vb_mr **t, uint32_t cap, vb_mr *m)
{
	uint32_t i = mr_hash(m->pub.lkey, cap);

	while (t[i])
		i = (i + 1) & (cap - 1);
	t[i] = m;
}

static int mr_add(vb_dev *d, vb_mr *m)
{
	if ((d->mrs_used + 1) * 2 > d->mrs_cap) {
		uint32_t cap = d->mrs_cap ? d->mrs_cap * 2 : 64;
		vb_mr **t = calloc(cap, sizeof(*t));

		if (!t)
			return USMC_ERR_NOMEM;
		for (uint32_t i = 0; i < d->mrs_cap; i++)
			if (d->mrs[i])
				mr_insert(t, cap, d->mrs[i]);
		free(d->mrs);
		d->mrs = t;
		d->mrs_cap = cap;
	}
	mr_insert(d->mrs, d->mrs_cap, m);
	d->mrs_used++;
	return 0;
}

static void mr_del(vb_dev *d, vb_mr *m)
{
	uint32_t i = mr_hash(m->pub.lkey, d->mrs_cap);

	while (d->mrs[i] != m)
		i = (i + 1) & (d->mrs_cap - 1);
	d->mrs[i] = NULL;
	d->mrs_used--;
	/* re-seat the entries after the hole (linear probing) */
	for (i = (i + 1) & (d->mrs_cap - 1); d->mrs[i];
	     i = (i + 1) & (d->mrs_cap - 1)) {
		vb_mr *x = d->mrs[i];

		d->mrs[i] = NULL;
		mr_insert(d->mrs, d->mrs_cap, x);
	}
}

/* An MR of |length| bytes: new memory when |addr| is NULL, else the
 * caller's (reg_mr), which free_mr then leaves alone (maplen 0). */
static int vb_mr_new(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		     usmc_tp_mr **pmr)
{
	vb_dev *d = vb_of(tp);
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096, len;
	int acc = 0, r;
	vb_mr *m;
	void *mem = addr;

	*pmr = NULL;
	if (!length || length > ((size_t)1 << 40) ||
	    (access & ~(USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE |
			USMC_ACCESS_REMOTE_READ)))
		return USMC_ERR_INVALID_ARGUMENT;
	/* verbs refuses REMOTE_WRITE without LOCAL_WRITE (ibv_reg_mr):
	 * granting more than asked is not this backend's call */
	if ((access & USMC_ACCESS_REMOTE_WRITE) &&
	    !(access & USMC_ACCESS_LOCAL_WRITE))
		return USMC_ERR_INVALID_ARGUMENT;
	if (access & USMC_ACCESS_LOCAL_WRITE)
		acc |= IBV_ACCESS_LOCAL_WRITE;
	if (access & USMC_ACCESS_REMOTE_WRITE)
		acc |= IBV_ACCESS_REMOTE_WRITE;
	if (access & USMC_ACCESS_REMOTE_READ)
		acc |= IBV_ACCESS_REMOTE_READ;
	len = addr ? length : (length + page - 1) & ~(page - 1);
	m = calloc(1, sizeof(*m));
	if (!m)
		return USMC_ERR_NOMEM;
	if (!addr) {
		mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			free(m);
			return USMC_ERR_NOMEM;
		}
		m->maplen = len;
	}
	m->mr = ibv_reg_mr(d->pd, mem, len, acc);
	if (!m->mr) {
		d->pub.last_errno = errno;
		if (m->maplen)
			munmap(mem, len);
		free(m);
		return usmc_verbs_err(d->pub.last_errno);
	}
	m->pub.tp = tp;
	m->pub.addr = mem;
	m->pub.length = len;
	/* ibv_reg_mr maps iova = the virtual address */
	m->pub.iova = (uint64_t)(uintptr_t)mem;
	m->pub.lkey = m->mr->lkey;
	m->pub.rkey = m->mr->rkey;
	m->pub.access = access;
	r = mr_add(d, m);
	if (r) {
		ibv_dereg_mr(m->mr);
		if (m->maplen)
			munmap(mem, len);
		free(m);
		return r;
	}
	*pmr = &m->pub;
	return 0;
}

static int vb_alloc_mr(usmc_tp *tp, size_t length, uint32_t access,
		       usmc_tp_mr **pmr)
{
	return vb_mr_new(tp, NULL, length, access, pmr);
}

/* The memory of another device's MR on this device's PD, as net/smc
 * registers a link group's buffers once per link (smcr_link_reg_buf):
 * this device's keys, the memory stays its owner's. */
static int vb_reg_mr(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		     usmc_tp_mr **pmr)
{
	return vb_mr_new(tp, addr, length, access, pmr);
}

static void vb_free_mr(usmc_tp_mr *pub)
{
	vb_dev *d = vb_of(pub->tp);
	vb_mr *m = (vb_mr *)pub;

	mr_del(d, m);
	ibv_dereg_mr(m->mr);
	if (m->maplen)
		munmap(m->pub.addr, m->maplen);
	free(m);
}

/* ---- completions kept back -------------------------------------------- */

int vb_backlog_push(vb_dev *d, const usmc_wc *wc)
{
	return usmc_tp_wcq_push(&d->bl, wc, 64) ? USMC_ERR_NOMEM : 0;
}

/* ---- async events ----------------------------------------------------- */

static int vb_get_async_event(usmc_tp *tp, usmc_tp_event *out)
{
	vb_dev *d = vb_of(tp);
	struct ibv_async_event ev;

	/* the fd is non-blocking: EAGAIN when none waits */
	while (!ibv_get_async_event(d->ctx, &ev)) {
		usmc_tp_event_type t;
		uint32_t qpn = 0;
		int keep = usmc_verbs_event(ev.event_type, &t);

		if (keep &&
		    (t == USMC_TP_EV_PORT_ACTIVE || t == USMC_TP_EV_PORT_ERR) &&
		    ev.element.port_num != (int)d->loc.port)
			keep = 0;
		if (keep && t == USMC_TP_EV_QP_FATAL) {
			vb_qp *q = vb_qp_by_num(d, ev.element.qp->qp_num);

			qpn = ev.element.qp->qp_num;
			if (q)
				vb_qp_set_err(q);
			else
				keep = 0; /* one being destroyed */
		}
		if (keep && t == USMC_TP_EV_DEVICE_FATAL) {
			d->dead = 1;
			for (uint32_t i = 0; i < d->nqps; i++)
				if (d->qps[i])
					vb_qp_set_err(d->qps[i]);
		}
		/* acknowledged at once: destroy_qp/destroy_cq wait for it */
		ibv_ack_async_event(&ev);
		if (keep) {
			memset(out, 0, sizeof(*out));
			out->type = t;
			out->qp_num = qpn;
			return 1;
		}
	}
	return 0;
}

int vb_hw_counter(usmc_tp *tp, const char *name, uint64_t *v)
{
	vb_dev *d;
	char path[256], line[64], *end;

	if (!tp || tp->ops != &vb_ops || !name || strchr(name, '/'))
		return USMC_ERR_INVALID_ARGUMENT;
	d = vb_of(tp);
	snprintf(path, sizeof(path), "%s/%s/ports/%u/hw_counters/%s",
		 VB_SYSFS_IB, d->loc.dev, d->loc.port, name);
	FILE *f = fopen(path, "re");

	if (!f)
		return USMC_ERR_NOTFOUND;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return USMC_ERR_NOTFOUND;
	}
	fclose(f);
	*v = strtoull(line, &end, 10);
	return end == line ? USMC_ERR_NOTFOUND : 0;
}

const usmc_tp_ops vb_ops = {
	.name = "verbs",
	.open = vb_open,
	.close = vb_close,
	.query_port = vb_query_port,
	.get_fd = vb_get_fd,
	.alloc_mr = vb_alloc_mr,
	.free_mr = vb_free_mr,
	.reg_mr = vb_reg_mr,
	.create_qp = vb_create_qp,
	.modify_qp = vb_modify_qp,
	.destroy_qp = vb_destroy_qp,
	.query_qp_state = vb_qp_state,
	.post_send = vb_post_send,
	.post_recv = vb_post_recv,
	.poll_cq = vb_poll_cq,
	/* no batch: a post rings the RNIC's doorbell itself, and verbs has
	 * no way to hold it; set_rx_hook/rx_inject: no wire in this
	 * process; now/wake_at: the RNIC keeps its own timers */
	.get_async_event = vb_get_async_event,
};
