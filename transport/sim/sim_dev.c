/* SPDX-License-Identifier: MIT */
/*
 * The sim backend's ops table: devices, MRs and keys, QPs and their state
 * machine, posting with the caller errors softroce gives, and the CQ with
 * its eventfd. What happens between QPs is in sim_fabric.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sim_int.h"

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static sim_dev *dev_of(usmc_tp *tp)
{
	return (sim_dev *)tp;
}

static sim_dev *sim_dev_checked(usmc_tp *tp)
{
	return tp && tp->ops == &usmc_tp_sim_ops ? dev_of(tp) : NULL;
}

usmc_wc_opcode sim_send_wc_opcode(const usmc_wr *wr)
{
	return wr->opcode == USMC_WR_SEND ? USMC_WC_SEND : USMC_WC_RDMA_WRITE;
}

/* ---- completions and events ------------------------------------------ */

void sim_push_wc(sim_qp *q, uint64_t wr_id, usmc_wc_status st,
		 usmc_wc_opcode op, uint32_t byte_len, uint32_t imm,
		 uint32_t flags)
{
	sim_dev *d = q->d;
	usmc_wc wc = usmc_tp_wc_make(wr_id, st, op, byte_len, imm, flags,
				     q->pub.qp_num);

	if (usmc_tp_wcq_push(&d->cq, &wc, 256))
		return; /* cannot grow: lose it rather than crash */
	d->st.wcs++;
	if (st == USMC_WC_WR_FLUSH_ERR)
		d->st.flushed++;
	d->dirty = 1;
}

/* The eventfd is readable exactly while completions or events wait, or
 * a wake_at came due and poll_cq has not run since, so epoll stays
 * level-true. */
void sim_sync_efd(sim_dev *d)
{
	uint64_t v = 1;
	int want = d->cq.n || d->ev_count || d->woken;

	d->dirty = 0;
	if (want && !d->efd_set) {
		if (write(d->efd, &v, sizeof(v)) == sizeof(v))
			d->efd_set = 1;
	} else if (!want && d->efd_set) {
		if (read(d->efd, &v, sizeof(v)) == sizeof(v) || errno == EAGAIN)
			d->efd_set = 0;
	}
}

void sim_dev_event(sim_dev *d, usmc_tp_event_type t, uint32_t qpn)
{
	if (d->ev_count == SIM_EVQ) {
		d->st.events_lost++; /* verbs loses unread events too */
		return;
	}
	d->evq[(d->ev_head + d->ev_count++) % SIM_EVQ] =
		(usmc_tp_event){.type = t, .qp_num = qpn};
	d->st.events++;
	sim_sync_efd(d);
}

/* ---- options and open -------------------------------------------------- */

static int parse_options(sim_dev *d, const char *opts)
{
	const char *cur = opts;
	usmc_tp_opt o = {0};
	uint32_t x;

	while (usmc_tp_opt_next(opts, &cur, &o)) {
		if (!o.len)
			continue; /* a test fabric: ",,mtu=2048," is fine */
		if (usmc_tp_opt_u32(&o, &x))
			return USMC_ERR_INVALID_ARGUMENT;
		if (usmc_tp_opt_key_is(&o, "mtu")) {
			int e = 0;

			for (int m = USMC_IB_MTU_256; m <= USMC_IB_MTU_4096;
			     m++)
				if (usmc_ib_mtu_to_int(m) == x)
					e = m;
			if (!e)
				return USMC_ERR_INVALID_ARGUMENT;
			d->active_mtu = (uint8_t)e;
		} else if (usmc_tp_opt_key_is(&o, "latency")) {
			d->latency = x;
		} else if (usmc_tp_opt_key_is(&o, "jitter")) {
			d->jitter = x;
		} else if (usmc_tp_opt_key_is(&o, "gbps")) {
			d->gbps = x;
		} else {
			return USMC_ERR_INVALID_ARGUMENT;
		}
	}
	return 0;
}

/* GID as softroce derives it: IPv4-mapped, or the IPv6 address. */
static int gid_of(const struct sockaddr_storage *a, uint8_t gid[16],
		  int *family)
{
	static const uint8_t zero[16];

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)a;

		if (!s->sin_addr.s_addr)
			return -1;
		memcpy(gid, v4mapped, 12);
		memcpy(gid + 12, &s->sin_addr, 4);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;

		if (!memcmp(&s->sin6_addr, zero, 16))
			return -1;
		memcpy(gid, &s->sin6_addr, 16);
	} else {
		return -1;
	}
	*family = a->ss_family;
	return 0;
}

static int sim_open(const usmc_tp_config *cfg, usmc_tp **ptp)
{
	usmc_tp_sim_world *w = cfg ? cfg->backend_ctx : NULL;
	sim_dev *d;
	int rc;

	*ptp = NULL;
	if (!w || w->magic != SIM_WORLD_MAGIC || w->deleted)
		return USMC_ERR_INVALID_ARGUMENT;
	d = calloc(1, sizeof(*d));
	if (!d)
		return USMC_ERR_NOMEM;
	d->pub.ops = &usmc_tp_sim_ops;
	d->efd = -1;
	d->active_mtu = USMC_IB_MTU_1024;
	d->latency = SIM_DEFAULT_LAT;
	d->jitter = SIM_DEFAULT_JIT;
	d->gbps = SIM_DEFAULT_GBPS;
	d->port_up = 1;
	rc = parse_options(d, cfg->options);
	if (!rc && gid_of(&cfg->local_addr, d->gid, &d->family))
		rc = USMC_ERR_INVALID_ARGUMENT;
	for (sim_dev *o = w->devs; !rc && o; o = o->next)
		if (!memcmp(o->gid, d->gid, 16))
			rc = USMC_ERR_BUSY; /* one device per address */
	if (rc) {
		free(d);
		return rc;
	}
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->efd < 0) {
		d->pub.last_errno = errno;
		free(d);
		return USMC_ERR_TRANSPORT;
	}
	d->w = w;
	d->index = ++w->next_index;
	d->mac[0] = 0x02;
	memcpy(d->mac + 2, d->gid + 12, 4);
	snprintf(d->name, sizeof(d->name), "sim%d", d->index);
	d->next = w->devs;
	w->devs = d;
	w->ndevs++;
	*ptp = &d->pub;
	return 0;
}

static void qp_free(sim_qp *q)
{
	free(q->sq);
	free(q->rq);
	free(q->inline_buf);
	free(q);
}

static void sim_close(usmc_tp *tp)
{
	sim_dev *d = dev_of(tp);

	if (!d)
		return;
	while (d->qps) {
		sim_qp *q = d->qps;

		d->qps = q->next;
		sim_qp_hash_del(d->w, q);
		qp_free(q);
	}
	for (uint32_t i = 0; i < d->nmrs; i++)
		if (d->mrs[i]) {
			free(d->mrs[i]->pub.addr);
			free(d->mrs[i]);
		}
	free(d->mrs);
	usmc_tp_wcq_free(&d->cq);
	if (d->efd >= 0)
		close(d->efd);
	sim_world_detach(d->w, d);
	free(d);
}

static int sim_query_port(usmc_tp *tp, usmc_port_attr *a)
{
	sim_dev *d = dev_of(tp);

	memset(a, 0, sizeof(*a));
	memcpy(a->gid, d->gid, 16);
	memcpy(a->mac, d->mac, 6);
	a->active_mtu = d->active_mtu;
	a->max_inline_data = SIM_MAX_INLINE;
	a->max_qp_wr = SIM_MAX_QP_WR;
	memcpy(a->name, d->name, sizeof(d->name));
	return 0;
}

static int sim_get_fd(usmc_tp *tp)
{
	return dev_of(tp)->efd;
}

/* ---- memory ------------------------------------------------------------ */

/* Keys: the MR table index in the low 16 bits, seeded random high bits,
 * so a stale or guessed key misses. */
static sim_mr *mr_by_key(sim_dev *d, uint32_t key, int remote)
{
	uint32_t idx = key & 0xffff;
	sim_mr *m;

	if (idx >= d->nmrs || !(m = d->mrs[idx]))
		return NULL;
	return (remote ? m->pub.rkey : m->pub.lkey) == key ? m : NULL;
}

uint8_t *sim_sge_ptr(sim_dev *d, const usmc_sge *s, uint32_t need)
{
	sim_mr *m = mr_by_key(d, s->lkey, 0);
	uint64_t base;

	if (!m || (m->pub.access & need) != need)
		return NULL;
	base = (uint64_t)(uintptr_t)m->pub.addr;
	if (s->addr < base || s->addr - base > m->pub.length ||
	    s->length > m->pub.length - (s->addr - base))
		return NULL;
	return (uint8_t *)(uintptr_t)s->addr;
}

uint8_t *sim_rkey_ptr(sim_dev *d, uint32_t rkey, uint64_t va, uint64_t len)
{
	sim_mr *m = mr_by_key(d, rkey, 1);

	if (!m || !(m->pub.access & USMC_ACCESS_REMOTE_WRITE) ||
	    va < m->pub.iova || va - m->pub.iova > m->pub.length ||
	    len > m->pub.length - (va - m->pub.iova))
		return NULL;
	return (uint8_t *)m->pub.addr + (va - m->pub.iova);
}

/* An MR over |mem| (NULL: fresh zeroed pages, owned by the MR). */
static int sim_mr_new(usmc_tp *tp, void *mem, size_t length, uint32_t access,
		      usmc_tp_mr **pmr)
{
	sim_dev *d = dev_of(tp);
	size_t alloc = (length + 4095) & ~(size_t)4095;
	int foreign = mem != NULL;
	uint32_t idx;
	sim_mr *m;

	*pmr = NULL;
	if (d->dead)
		return USMC_ERR_TRANSPORT;
	if (!length || length > ((size_t)1 << 40))
		return USMC_ERR_INVALID_ARGUMENT;
	for (idx = 0; idx < d->nmrs && d->mrs[idx]; idx++)
		;
	if (idx == d->nmrs) {
		uint32_t n = d->nmrs ? d->nmrs * 2 : 16;
		sim_mr **t;

		if (n > 0x10000)
			return USMC_ERR_LIMIT;
		t = realloc(d->mrs, n * sizeof(*t));
		if (!t)
			return USMC_ERR_NOMEM;
		memset(t + d->nmrs, 0, (n - d->nmrs) * sizeof(*t));
		d->mrs = t;
		d->nmrs = n;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return USMC_ERR_NOMEM;
	if (!foreign) {
		if (posix_memalign(&mem, 4096, alloc)) {
			free(m);
			return USMC_ERR_NOMEM;
		}
		memset(mem, 0, alloc);
	}
	m->foreign = foreign;
	m->pub.tp = tp;
	m->pub.addr = mem;
	m->pub.length = length;
	/* an IOVA apart from the address (per device, page aligned), so a
	 * consumer that hands its peer a local address fails here */
	m->pub.iova = ((uint64_t)d->index << 49) | ((uint64_t)(idx + 1) << 32);
	if (length > 0xffffffffull)
		m->pub.iova = (uint64_t)(uintptr_t)mem;
	m->pub.access = access;
	do {
		m->pub.lkey = ((uint32_t)sim_rand(d->w) & 0xffff0000u) | idx;
		m->pub.rkey = ((uint32_t)sim_rand(d->w) & 0xffff0000u) | idx;
	} while (m->pub.lkey == m->pub.rkey);
	m->index = idx;
	d->mrs[idx] = m;
	*pmr = &m->pub;
	return 0;
}

static int sim_alloc_mr(usmc_tp *tp, size_t length, uint32_t access,
			usmc_tp_mr **pmr)
{
	return sim_mr_new(tp, NULL, length, access, pmr);
}

static int sim_reg_mr(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		      usmc_tp_mr **pmr)
{
	return sim_mr_new(tp, addr, length, access, pmr);
}

static void sim_free_mr(usmc_tp_mr *pub)
{
	sim_mr *m = (sim_mr *)pub;
	sim_dev *d;

	if (!m)
		return;
	d = dev_of(pub->tp);
	if (m->index < d->nmrs && d->mrs[m->index] == m)
		d->mrs[m->index] = NULL;
	if (!m->foreign)
		free(pub->addr);
	free(m);
}

/* ---- QPs --------------------------------------------------------------- */

static int qpn_taken(usmc_tp_sim_world *w, uint32_t qpn)
{
	if (sim_qp_find(w, qpn))
		return 1;
	/* nor while a completion naming it waits: a consumer maps them to
	 * its QPs by number */
	for (sim_dev *d = w->devs; d; d = d->next)
		if (usmc_tp_wcq_names(&d->cq, qpn))
			return 1;
	return 0;
}

/* Cyclic over the world, as rxe's QP pool: a number comes back only
 * after the whole range. */
static int qpn_alloc(usmc_tp_sim_world *w, uint32_t *qpn)
{
	for (uint32_t n = SIM_MIN_QPN; n < SIM_QPN_SPAN; n++) {
		uint32_t c = w->next_qpn;

		w->next_qpn = c + 1 < SIM_QPN_SPAN ? c + 1 : SIM_MIN_QPN;
		if (!qpn_taken(w, c)) {
			*qpn = c;
			return 0;
		}
	}
	return USMC_ERR_LIMIT;
}

static int sim_create_qp(usmc_tp *tp, const usmc_qp_init_attr *a,
			 usmc_tp_qp **pqp)
{
	sim_dev *d = dev_of(tp);
	sim_qp *q;
	int rc;

	*pqp = NULL;
	if (d->dead)
		return USMC_ERR_TRANSPORT;
	if (!a || !a->max_send_wr || !a->max_recv_wr ||
	    a->max_send_wr > SIM_MAX_QP_WR || a->max_recv_wr > SIM_MAX_QP_WR ||
	    a->max_send_sge > USMC_WR_MAX_SGE ||
	    a->max_recv_sge > USMC_WR_MAX_SGE ||
	    a->max_inline_data > SIM_MAX_INLINE)
		return USMC_ERR_INVALID_ARGUMENT;
	q = calloc(1, sizeof(*q));
	if (!q)
		return USMC_ERR_NOMEM;
	q->sq = calloc(a->max_send_wr, sizeof(*q->sq));
	q->rq = calloc(a->max_recv_wr, sizeof(*q->rq));
	if (a->max_inline_data)
		q->inline_buf =
			malloc((size_t)a->max_send_wr * a->max_inline_data);
	if (!q->sq || !q->rq || (a->max_inline_data && !q->inline_buf)) {
		qp_free(q);
		return USMC_ERR_NOMEM;
	}
	rc = qpn_alloc(d->w, &q->pub.qp_num);
	if (rc) {
		qp_free(q);
		return rc;
	}
	q->pub.tp = tp;
	q->d = d;
	q->cap = *a;
	q->pub.context = a->context;
	q->pub.state = USMC_QPS_RESET;
	q->sq_size = a->max_send_wr;
	q->rq_size = a->max_recv_wr;
	q->epoch = ++d->w->next_epoch;
	q->next = d->qps;
	d->qps = q;
	sim_qp_hash_add(d->w, q);
	*pqp = &q->pub;
	return 0;
}

static void new_epoch(sim_qp *q)
{
	q->epoch = ++q->d->w->next_epoch;
	q->wire_busy = 0;
}

void sim_qp_error(sim_qp *q, usmc_wc_status st)
{
	if (q->pub.state == USMC_QPS_ERR)
		return;
	q->pub.state = USMC_QPS_ERR;
	new_epoch(q);
	/* errors always complete, as verbs */
	for (int first = 1; q->sq_count; first = 0) {
		sim_swqe *w = &q->sq[q->sq_head];

		sim_push_wc(q, w->wr.wr_id, first ? st : USMC_WC_WR_FLUSH_ERR,
			    sim_send_wc_opcode(&w->wr), 0, 0, 0);
		q->sq_head = (q->sq_head + 1) % q->sq_size;
		q->sq_count--;
	}
	q->sq_sent = 0;
	while (q->rq_count) {
		sim_push_wc(q, q->rq[q->rq_head].wr.wr_id, USMC_WC_WR_FLUSH_ERR,
			    USMC_WC_RECV, 0, 0, 0);
		q->rq_head = (q->rq_head + 1) % q->rq_size;
		q->rq_count--;
	}
}

static int sim_modify_qp(usmc_tp_qp *pub, const usmc_qp_attr *a)
{
	sim_qp *q = (sim_qp *)pub;
	sim_dev *d = q->d;

	if (d->dead && a->qp_state != USMC_QPS_ERR &&
	    a->qp_state != USMC_QPS_RESET)
		return USMC_ERR_TRANSPORT;
	switch (a->qp_state) {
	case USMC_QPS_RESET:
		/* verbs: RESET discards the queues without completions */
		new_epoch(q);
		q->sq_head = q->sq_count = q->sq_sent = 0;
		q->rq_head = q->rq_count = 0;
		q->pub.state = USMC_QPS_RESET;
		return 0;
	case USMC_QPS_INIT:
		if (q->pub.state != USMC_QPS_RESET &&
		    q->pub.state != USMC_QPS_INIT)
			return USMC_ERR_INVALID_STATE;
		q->access = a->qp_access_flags;
		q->pub.state = USMC_QPS_INIT;
		return 0;
	case USMC_QPS_RTR:
		if (q->pub.state != USMC_QPS_INIT)
			return USMC_ERR_INVALID_STATE;
		if (!usmc_ib_mtu_to_int(a->path_mtu) ||
		    a->path_mtu > d->active_mtu || !a->dest_qp_num ||
		    a->dest_qp_num >= SIM_QPN_SPAN || a->rq_psn >= (1u << 24) ||
		    (d->family == AF_INET) != !memcmp(a->dgid, v4mapped, 12))
			return USMC_ERR_INVALID_ARGUMENT;
		q->path_mtu = a->path_mtu;
		q->dest_qpn = a->dest_qp_num;
		memcpy(q->dgid, a->dgid, 16);
		q->min_rnr_timer = a->min_rnr_timer & 0x1f;
		q->pub.state = USMC_QPS_RTR;
		return 0;
	case USMC_QPS_RTS:
		if (q->pub.state != USMC_QPS_RTR &&
		    q->pub.state != USMC_QPS_RTS)
			return USMC_ERR_INVALID_STATE;
		if (a->timeout > 31 || a->retry_cnt > 7 || a->rnr_retry > 7 ||
		    a->sq_psn >= (1u << 24))
			return USMC_ERR_INVALID_ARGUMENT;
		q->retry_cnt = a->retry_cnt;
		q->rnr_retry = a->rnr_retry;
		q->timeout_ns = a->timeout ? 4096ull << a->timeout : 0;
		q->retries_left = a->retry_cnt;
		q->rnr_left = a->rnr_retry;
		q->rto_shift = 0;
		q->pub.state = USMC_QPS_RTS;
		return 0;
	case USMC_QPS_ERR:
		sim_qp_error(q, USMC_WC_WR_FLUSH_ERR);
		sim_sync_efd(d);
		return 0;
	}
	return USMC_ERR_INVALID_ARGUMENT;
}

static void sim_destroy_qp(usmc_tp_qp *pub)
{
	sim_qp *q = (sim_qp *)pub;
	sim_dev *d;

	if (!q)
		return;
	d = q->d;
	/* outstanding WRs complete with WR_FLUSH_ERR under this QPN, which
	 * qpn_alloc hands out again only once they are polled */
	if (q->pub.state != USMC_QPS_RESET)
		sim_qp_error(q, USMC_WC_WR_FLUSH_ERR);
	for (sim_qp **pp = &d->qps; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	sim_qp_hash_del(d->w, q);
	qp_free(q);
	sim_sync_efd(d);
}

/* ---- posting ----------------------------------------------------------- */

static int sim_post_send(usmc_tp_qp *pub, const usmc_wr *wr)
{
	sim_qp *q = (sim_qp *)pub;
	sim_dev *d = q->d;
	uint64_t total = 0;
	uint32_t slot;
	sim_swqe *s;

	if (d->dead)
		return USMC_ERR_TRANSPORT;
	if (q->pub.state == USMC_QPS_ERR) {
		sim_push_wc(q, wr->wr_id, USMC_WC_WR_FLUSH_ERR,
			    sim_send_wc_opcode(wr), 0, 0, 0);
		sim_sync_efd(d);
		return 0;
	}
	if (q->pub.state != USMC_QPS_RTS)
		return USMC_ERR_INVALID_STATE;
	if (wr->opcode < USMC_WR_SEND ||
	    wr->opcode > USMC_WR_RDMA_WRITE_WITH_IMM ||
	    wr->num_sge > USMC_WR_MAX_SGE ||
	    (q->cap.max_send_sge && wr->num_sge > q->cap.max_send_sge))
		return USMC_ERR_INVALID_ARGUMENT;
	for (uint32_t i = 0; i < wr->num_sge; i++)
		total += wr->sg_list[i].length;
	if (total > SIM_MAX_MSG_SIZE)
		return USMC_ERR_INVALID_ARGUMENT;
	if (wr->send_flags & USMC_SEND_INLINE) {
		if (total > q->cap.max_inline_data)
			return USMC_ERR_INVALID_ARGUMENT;
	} else {
		for (uint32_t i = 0; i < wr->num_sge; i++)
			if (wr->sg_list[i].length &&
			    !sim_sge_ptr(d, &wr->sg_list[i], 0))
				return USMC_ERR_ACCESS;
	}
	if (q->sq_count == q->sq_size)
		return USMC_ERR_WOULDBLOCK;
	slot = (q->sq_head + q->sq_count) % q->sq_size;
	s = &q->sq[slot];
	s->wr = *wr;
	s->length = (uint32_t)total;
	s->ssn = q->next_ssn++;
	s->posted = d->w->now;
	if (wr->send_flags & USMC_SEND_INLINE) {
		/* inline data is taken now: the caller may reuse its buffer */
		uint8_t *dst =
			q->inline_buf + (size_t)slot * q->cap.max_inline_data;

		for (uint32_t i = 0; i < wr->num_sge; i++) {
			if (wr->sg_list[i].length)
				memcpy(dst,
				       (const void *)(uintptr_t)wr->sg_list[i]
					       .addr,
				       wr->sg_list[i].length);
			dst += wr->sg_list[i].length;
		}
	}
	q->sq_count++;
	d->st.posts++;
	sim_wire_kick(q);
	return 0;
}

static int sim_post_recv(usmc_tp_qp *pub, const usmc_recv_wr *wr)
{
	sim_qp *q = (sim_qp *)pub;
	uint64_t total = 0;
	sim_rwqe *r;

	if (q->d->dead)
		return USMC_ERR_TRANSPORT;
	if (q->pub.state == USMC_QPS_RESET)
		return USMC_ERR_INVALID_STATE;
	if (q->pub.state == USMC_QPS_ERR) {
		sim_push_wc(q, wr->wr_id, USMC_WC_WR_FLUSH_ERR, USMC_WC_RECV, 0,
			    0, 0);
		sim_sync_efd(q->d);
		return 0;
	}
	if (wr->num_sge > USMC_WR_MAX_SGE ||
	    (q->cap.max_recv_sge && wr->num_sge > q->cap.max_recv_sge))
		return USMC_ERR_INVALID_ARGUMENT;
	for (uint32_t i = 0; i < wr->num_sge; i++) {
		if (wr->sg_list[i].length &&
		    !sim_sge_ptr(q->d, &wr->sg_list[i],
				 USMC_ACCESS_LOCAL_WRITE))
			return USMC_ERR_ACCESS;
		total += wr->sg_list[i].length;
	}
	if (q->rq_count == q->rq_size)
		return USMC_ERR_WOULDBLOCK;
	r = &q->rq[(q->rq_head + q->rq_count) % q->rq_size];
	r->wr = *wr;
	r->length = total;
	q->rq_count++;
	return 0;
}

static int sim_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n)
{
	sim_dev *d = dev_of(tp);
	int k;

	d->woken = 0;
	k = usmc_tp_wcq_pop(&d->cq, wcs, n);
	sim_sync_efd(d);
	return k;
}

static int sim_get_async_event(usmc_tp *tp, usmc_tp_event *ev)
{
	sim_dev *d = dev_of(tp);

	if (!d->ev_count)
		return 0;
	*ev = d->evq[d->ev_head];
	d->ev_head = (d->ev_head + 1) % SIM_EVQ;
	d->ev_count--;
	sim_sync_efd(d);
	return 1;
}

/* ---- clock and rx hook (for a decorator) -------------------------------- */

static usmc_tstamp sim_now(usmc_tp *tp)
{
	return dev_of(tp)->w->now;
}

static void sim_wake(usmc_tp *tp, usmc_tstamp t)
{
	sim_wake_at(dev_of(tp), t);
}

static void sim_set_rx_hook(usmc_tp *tp, usmc_tp_rx_hook hook, void *arg)
{
	sim_dev *d = dev_of(tp);

	d->hook = hook;
	d->hook_arg = arg;
}

static void sim_inject(usmc_tp *tp, const usmc_tp_rx_pkt *pkt)
{
	sim_dev *d = dev_of(tp);

	if (d->dead || !d->port_up)
		return;
	sim_rx_inject(d, pkt);
	for (sim_dev *x = d->w->devs; x; x = x->next)
		if (x->dirty)
			sim_sync_efd(x);
}

/* ---- control ----------------------------------------------------------- */

usmc_tp_sim_world *usmc_tp_sim_world_of(usmc_tp *tp)
{
	sim_dev *d = sim_dev_checked(tp);

	return d ? d->w : NULL;
}

int usmc_tp_sim_port_set(usmc_tp *tp, int up)
{
	sim_dev *d = sim_dev_checked(tp);

	if (!d)
		return USMC_ERR_INVALID_ARGUMENT;
	if (d->dead)
		return USMC_ERR_INVALID_STATE;
	up = !!up;
	if (d->port_up == up)
		return 0;
	d->port_up = up;
	sim_dev_event(d, up ? USMC_TP_EV_PORT_ACTIVE : USMC_TP_EV_PORT_ERR, 0);
	return 0;
}

int usmc_tp_sim_kill(usmc_tp *tp)
{
	sim_dev *d = sim_dev_checked(tp);

	if (!d)
		return USMC_ERR_INVALID_ARGUMENT;
	if (d->dead)
		return 0;
	d->dead = 1;
	for (sim_qp *q = d->qps; q; q = q->next)
		sim_qp_error(q, USMC_WC_WR_FLUSH_ERR);
	sim_dev_event(d, USMC_TP_EV_DEVICE_FATAL, 0);
	return 0;
}

int usmc_tp_sim_path_set(usmc_tp *ta, usmc_tp *tb, int up)
{
	sim_dev *a = sim_dev_checked(ta), *b = sim_dev_checked(tb);
	usmc_tp_sim_world *w;

	if (!a || !b || a->w != b->w || a == b)
		return USMC_ERR_INVALID_ARGUMENT;
	w = a->w;
	for (sim_down **pp = &w->down; *pp;) {
		sim_down *x = *pp;

		if ((x->a == a && x->b == b) || (x->a == b && x->b == a)) {
			*pp = x->next;
			free(x);
		} else {
			pp = &x->next;
		}
	}
	if (!up) {
		sim_down *x = calloc(1, sizeof(*x));

		if (!x)
			return USMC_ERR_NOMEM;
		x->a = a;
		x->b = b;
		x->next = w->down;
		w->down = x;
	}
	return 0;
}

int usmc_tp_sim_get_stats(usmc_tp *tp, usmc_tp_sim_stats *st)
{
	sim_dev *d = sim_dev_checked(tp);

	if (!d || !st)
		return USMC_ERR_INVALID_ARGUMENT;
	*st = d->st;
	return 0;
}

const usmc_tp_ops usmc_tp_sim_ops = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.query_port = sim_query_port,
	.get_fd = sim_get_fd,
	.alloc_mr = sim_alloc_mr,
	.reg_mr = sim_reg_mr,
	.free_mr = sim_free_mr,
	.create_qp = sim_create_qp,
	.modify_qp = sim_modify_qp,
	.destroy_qp = sim_destroy_qp,
	.post_send = sim_post_send,
	.post_recv = sim_post_recv,
	.poll_cq = sim_poll_cq,
	.get_async_event = sim_get_async_event,
	.set_rx_hook = sim_set_rx_hook,
	.rx_inject = sim_inject,
	.now = sim_now,
	.wake_at = sim_wake,
};
