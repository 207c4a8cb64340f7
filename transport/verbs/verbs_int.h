/* SPDX-License-Identifier: MIT */
/*
 * The verbs backend's insides: a device (ibv_context, PD, one CQ with its
 * completion channel, the async fd, both behind one epoll fd), its MRs
 * (an lkey table, so posts are checked before the RNIC sees them) and its
 * RC QPs. Every QP keeps a ring per work queue: the RNIC gets the ring's
 * sequence number as wr_id, so a completion finds its WR (and the caller's
 * wr_id and opcode, which an error completion does not carry), and WRs
 * completed unsignaled are retired by the completion behind them.
 */
#ifndef USMC_VERBS_INT_H
#define USMC_VERBS_INT_H

#include <infiniband/verbs.h>
#include <stdint.h>

#include "usmc_tp_wcq.h"
#include "usmc_transport.h"

#define VB_SYSFS_IB	  "/sys/class/infiniband"
#define VB_DEFAULT_CQE	  16384
#define VB_INLINE_PROBE	  256
#define VB_DRAIN_MS	  1000
/* bit 63 of a wr_id given to the RNIC: a receive WR */
#define VB_WRID_RECV	  (1ull << 63)
#define VB_WRID_SEQ(wrid) ((wrid) & ~VB_WRID_RECV)

/* Options ("key=value,..."): see transport/verbs/README.md. */
typedef struct vb_opts {
	char dev[64];  /* dev=NAME: this ibv device only */
	uint32_t port; /* port=N: this port only (0: any) */
	int gid_index; /* gid_index=N: this GID (-1: by address) */
	uint32_t cqe;  /* cqe=N: CQ entries (0: VB_DEFAULT_CQE) */
} vb_opts;

int usmc_verbs_parse_opts(const char *s, vb_opts *o);

/* Where a RoCEv2 GID for an address lives. */
typedef struct vb_gid_loc {
	char dev[64];
	uint32_t port;
	uint32_t index;
	char ndev[32]; /* the netdev the GID belongs to ("" if unknown) */
	uint8_t gid[16];
} vb_gid_loc;

/* The GID of |addr| (IPv4-mapped for IPv4, as the kernel's RoCE GID
 * cache), or USMC_ERR_INVALID_ARGUMENT for another family. */
int usmc_verbs_addr_gid(const struct sockaddr_storage *addr, uint8_t gid[16]);

/* Searches |root| (laid out as /sys/class/infiniband: DEV/ports/N/gids/I,
 * DEV/ports/N/gid_attrs/types/I, .../ndevs/I) for a RoCEv2 GID equal to
 * |gid|, devices and ports in name order. |dev|, |port|, |ifname| narrow
 * the search when set (non-empty, non-zero). 0 and |out|, or
 * USMC_ERR_NOTFOUND. */
int usmc_verbs_find_gid(const char *root, const uint8_t gid[16],
			const char *dev, uint32_t port, const char *ifname,
			vb_gid_loc *out);

/* Completion status and async event mapping. */
usmc_wc_status usmc_verbs_wc_status(enum ibv_wc_status s);
/* 1 and |out| for an event the ops table carries, 0 for one it drops. */
int usmc_verbs_event(enum ibv_event_type t, usmc_tp_event_type *out);
/* An errno from a verb as a USMC_ERR_* code. */
int usmc_verbs_err(int err);

typedef struct vb_dev vb_dev;
typedef struct vb_qp vb_qp;

typedef struct vb_mr {
	usmc_tp_mr pub;
	struct ibv_mr *mr;
	size_t maplen;
} vb_mr;

typedef struct vb_ent {
	uint64_t wr_id;
	uint8_t opcode; /* usmc_wc_opcode */
	uint8_t soft;	/* never given to the RNIC: flushed here */
} vb_ent;

typedef struct vb_ring {
	vb_ent *e;
	uint32_t cap;
	uint64_t head, tail; /* sequence numbers: [head, tail) outstanding */
} vb_ring;

struct vb_qp {
	usmc_tp_qp pub;
	vb_dev *d;
	struct ibv_qp *qp;
	usmc_qp_init_attr cap;
	vb_ring sq, rq;
	/* RTS values, for an RTS -> RTS that would change them */
	uint32_t sq_psn;
	uint8_t timeout, retry_cnt, rnr_retry;
	uint32_t nsoft; /* soft entries in the rings */
};

struct vb_dev {
	usmc_tp pub;
	vb_opts opt;
	vb_gid_loc loc;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq;
	int cq_armed;
	int cqe;
	uint32_t cq_used; /* WRs of live QPs, which the CQ must hold */
	int ep;		  /* epoll: channel fd + async fd */
	int dead;	  /* DEVICE_FATAL seen */
	struct ibv_device_attr dattr;
	uint8_t mac[6];
	uint8_t active_mtu;
	uint32_t max_inline;
	/* QPs by slot, looked up by QPN */
	vb_qp **qps;
	uint32_t nqps;
	/* MRs by lkey: open addressing, power-of-two size */
	vb_mr **mrs;
	uint32_t mrs_cap, mrs_used;
	/* completions made here or drained ahead of time, returned first */
	usmc_tp_wcq bl;
	uint32_t nsoft; /* soft entries over all QPs */
};

static inline vb_dev *vb_of(usmc_tp *tp)
{
	return (vb_dev *)tp;
}

/* verbs_dev.c: the ops table, and what usmc_tp_verbs.h's
 * usmc_tp_verbs_device_count / _hw_counter reach through the module */
extern const usmc_tp_ops vb_ops;
int vb_device_count(void);
int vb_hw_counter(usmc_tp *tp, const char *name, uint64_t *v);
vb_mr *vb_mr_by_lkey(vb_dev *d, uint32_t lkey);
int vb_backlog_push(vb_dev *d, const usmc_wc *wc);

/* verbs_qp.c */
int vb_create_qp(usmc_tp *tp, const usmc_qp_init_attr *a, usmc_tp_qp **pqp);
int vb_modify_qp(usmc_tp_qp *qp, const usmc_qp_attr *a);
void vb_destroy_qp(usmc_tp_qp *qp);
usmc_qp_state vb_qp_state(const usmc_tp_qp *qp);
int vb_post_send(usmc_tp_qp *qp, const usmc_wr *wr);
int vb_post_recv(usmc_tp_qp *qp, const usmc_recv_wr *wr);
int vb_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n);
vb_qp *vb_qp_by_num(vb_dev *d, uint32_t qpn);
void vb_qp_set_err(vb_qp *q);

#endif /* USMC_VERBS_INT_H */
