/* SPDX-License-Identifier: MIT */
/*
 * Internal structures of the core state machines, shared by usmc_ctx.c,
 * usmc_lgr.c (link group), usmc_link.c (links, WR slots), usmc_llc_flow.c
 * (LLC flows), usmc_conn.c (CLC), usmc_tx.c, usmc_rx.c and usmc_close.c.
 * Not part of the API.
 */
#ifndef USMC_CORE_INT_H
#define USMC_CORE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "usmc_cdc.h"
#include "usmc_clc.h"
#include "usmc_core.h"
#include "usmc_llc.h"

/* <stdio.h> is banned in core/ (no I/O); only the formatters are used. */
int vsnprintf(char *restrict buf, size_t n, const char *restrict fmt,
	      va_list ap);

#define USMC_LINKS_MAX	     3	 /* SMC_LINKS_PER_LGR_MAX */
#define USMC_CONNS_MAX	     255 /* SMC_CONN_PER_LGR_MAX */
#define USMC_RMBE_MIN	     16384
#define USMC_LLC_WAIT_FIRST  (4 * USMC_NS_PER_SEC)  /* 2 * SMC_LLC_WAIT_TIME */
#define USMC_LGR_FREE_CLIENT (10 * USMC_NS_PER_SEC) /* extra client delay */
/* control messages waiting for a TX slot: a final CDC per connection plus
 * LLC answers */
#define USMC_CTRL_PEND_MAX   (USMC_CONNS_MAX + 16)
#define USMC_STREAM_WAIT     (2 * USMC_NS_PER_SEC)  /* SMC_MAX_STREAM_WAIT */
#define USMC_TERM_GRACE	     (100 * USMC_NS_PER_MS) /* last SENDs leave */
#define USMC_END_QUIET	     (50 * USMC_NS_PER_MS)  /* exit: peer quiet */
/* after our orderly DELETE_LINK ALL, for the peer's own: it comes at once
 * once its DELETE_RKEY is answered (usmc_llc_rx); a peer that is
 * gone or hung must not hold an exiting process long */
#define USMC_TERM_WAIT	     (500 * USMC_NS_PER_MS)
#define USMC_FAILOVER_GRACE  (10 * USMC_NS_PER_MS) /* dead link's CQ */

/* long (v2) LLC messages that may wait for a link's v2 buffer
 * (usmc_link_send_long): one ADD_LINK request or response goes per LLC
 * flow, so a few suffice */
#define USMC_LLC_LONG_PEND_MAX 4

/* Link states (enum smc_link_state) */
enum usmc_link_state {
	USMC_LNK_UNUSED,
	USMC_LNK_INACTIVE,
	USMC_LNK_ACTIVATING,
	USMC_LNK_ACTIVE,
};

/* wr_id layout: kind in the top byte, index below. */
#define USMC_WRID_TX	      1ull
#define USMC_WRID_RX	      2ull
#define USMC_WRID_WRITE	      3ull
#define USMC_WRID(kind, idx)  (((uint64_t)(kind) << 56) | (uint64_t)(idx))
#define USMC_WRID_KIND(wr_id) ((unsigned int)((wr_id) >> 56))
#define USMC_WRID_IDX(wr_id)  ((uint32_t)((wr_id)&0xffffffffu))

/* A registered buffer (RMB or sndbuf), pooled per link group. Its memory
 * is |mr|'s, registered with device dev_idx; dmr[d] registers the same
 * memory with device d when a link of the group is there (reg_mr), as
 * net/smc's buf_desc->mr[link_idx]. */
typedef struct usmc_buf {
	struct usmc_buf *next;
	usmc_mr mr;
	usmc_mr dmr[USMC_DEVICES_MAX];
	uint32_t size;
	int is_rmb;
	uint8_t dev_idx; /* the device |mr| is registered with */
	/* RMB: per link index, the link_id of the link on which the peer
	 * knows our rkey (from a CLC Accept/Confirm or a CONFIRM_RKEY), 0
	 * for none. A link id names one link for the lgr's life, so a link
	 * that went and one that came at its index do not match. */
	uint8_t peer_link_id[USMC_LINKS_MAX];
	/* SMC-D: not pooled nor registered; an RMB's mr.addr is its DMB's
	 * ring (DMB + 32), a sndbuf's is plain memory (usmc_smcd.c) */
	int smcd;
} usmc_buf;

/* |b|'s registration with device |dev|, or NULL. */
static inline const usmc_mr *usmc_buf_mr(const usmc_buf *b, unsigned int dev)
{
	if (dev == b->dev_idx)
		return &b->mr;
	return dev < USMC_DEVICES_MAX && b->dmr[dev].addr ? &b->dmr[dev] : NULL;
}

/* A peer RMB announced by CONFIRM_RKEY (or the CLC): its rkey and address
 * per link (index = link_idx), as net/smc's lgr->rtokens. */
typedef struct usmc_rtoken {
	int used;
	uint8_t has[USMC_LINKS_MAX];
	uint32_t rkey[USMC_LINKS_MAX];
	uint64_t vaddr[USMC_LINKS_MAX];
} usmc_rtoken;
#define USMC_RTOKENS_MAX USMC_CONNS_MAX /* SMC_RMBS_PER_LGR_MAX */

/* Steps of the ADD_LINK flow (smc_llc_srv_add_link, smc_llc_cli_add_link),
 * which holds the local flow while it runs. */
enum usmc_addlink_step {
	USMC_ADDL_NONE,
	USMC_ADDL_SRV_WAIT_RESP,  /* ADD_LINK req sent */
	USMC_ADDL_WAIT_CONT,	  /* v1 rkey exchange: peer's ADD_LINK_CONT */
	USMC_ADDL_SRV_WAIT_CLINK, /* CONFIRM_LINK req sent on the new link */
	USMC_ADDL_CLI_WAIT_CLINK, /* client: server's CONFIRM_LINK req */
};

/* What a TX slot carries, so its completion can be accounted. */
typedef struct usmc_tx_slot {
	int busy;
	usmc_conn *conn;     /* CDC: owner; NULL for LLC */
	uint64_t tx_sent;    /* CDC: sndbuf cursor covered by this CDC */
	uint16_t seq;	     /* CDC seqno */
	uint64_t rx_cons;    /* CDC: consumer cursor it carried */
	uint8_t close_flags; /* CDC conn_state flags it carried */
} usmc_tx_slot;

/* A long LLC message waiting for the link's v2 buffer, encoded. */
typedef struct usmc_llc_long {
	struct usmc_llc_long *next;
	uint32_t len;
	uint8_t msg[USMC_WR_BUF_V2_SIZE];
} usmc_llc_long;

/* A work request waiting for the caller (usmc_ctx_next_wr). A receive
 * carries only its wr_id: the buffer is built when it is pulled. */
typedef struct usmc_wrq_ent {
	usmc_wr_kind kind;
	usmc_wr wr;
} usmc_wrq_ent;

/* One queued local LLC request (a "local flow", run one at a time). */
typedef struct usmc_llc_req {
	struct usmc_llc_req *next;
	uint8_t type; /* SMC_LLC_* (v1 numbering) */
	/* ADD_LINK: 1 for the client's side of the server's request */
	int remote;
	usmc_conn *conn; /* CONFIRM_RKEY: the connection waiting for it */
	/* CONFIRM_RKEY, DELETE_RKEY: our RMB (buffers live as long as the
	 * lgr), announced with its rkey on each link */
	struct usmc_buf *buf;
	uint8_t link_id;     /* DELETE_LINK */
	uint32_t del_reason; /* DELETE_LINK */
} usmc_llc_req;

struct usmc_link {
	usmc_lgr *lgr;
	void *user;
	uint8_t link_id;  /* link_num on the wire, 1..255 */
	uint8_t link_idx; /* index in lgr->links */
	uint8_t dev_idx;  /* index in ctx->s.devices */
	int state;	  /* enum usmc_link_state */
	int qp_created, qp_rts;
	uint32_t qp_num, psn;
	/* peer side (from CLC, then CONFIRM_LINK) */
	uint32_t peer_qpn, peer_psn;
	uint8_t peer_gid[16], peer_mac[6];
	uint8_t path_mtu;
	/* WR buffers */
	usmc_mr tx_mr; /* send_wr slots of 48 bytes */
	usmc_mr rx_mr; /* recv_wr slots of 48 bytes */
	usmc_mr v2_mr; /* one v2 tx buffer + one shared v2 rx spill */
	usmc_tx_slot *slots;
	uint16_t nslots, slots_used;
	uint16_t nrecv;
	/* control messages waiting for a TX slot (a ring, sent in order); an
	 * entry with pend_long set stands for the next of llc_long, a long
	 * message that also waits for the v2 buffer */
	uint8_t llc_pend[USMC_CTRL_PEND_MAX][USMC_WR_TX_SIZE];
	uint8_t pend_long[USMC_CTRL_PEND_MAX];
	unsigned int pend_head, nllc_pend;
	usmc_llc_long *llc_long, *llc_long_tail;
	unsigned int nllc_long;
	/* the TX slot whose SEND reads the v2 buffer, until that SEND
	 * completes (or is dropped unposted); -1: the buffer is free
	 * (net/smc's wr_tx_v2_pend) */
	int v2_slot;
	/* the peer's device is the one of the group's other link
	 * (ASYMMETRIC_PEER), or this side's is (ASYMMETRIC_LOCAL) */
	int asym;
	/* being taken out of its group (link_clear): no longer found */
	int clearing;
	/* keepalive */
	usmc_tstamp last_rx;
	usmc_tstamp testlink_expiry; /* response due */
	/* failed over: its connections moved, it sends nothing; receive
	 * completions already on its CQ are still taken until then, when
	 * the peer is told and it is freed (usmc_failover.c) */
	usmc_tstamp gone_expiry;
	/* client: the TX slot of our first CONFIRM_LINK response, until its
	 * send completes (the server's RNIC has it); -1 once it did */
	int clink_resp_slot;
	/* connections moved here by a failover: log when the first of its
	 * send WRs is handed out (the data moving again) */
	int failover_first_wr;
	/* connections waiting for a TX slot */
	int waiters;
	unsigned int wake_rr;
	/* work requests for the caller, in post order (a ring). Every
	 * queued SEND holds a TX slot, at most two WRITEs go before each
	 * CDC SEND, and an RX buffer is queued once, so 3 * nslots + nrecv
	 * entries always suffice (wrq_lost marks the impossible overflow) */
	usmc_wrq_ent *wrq;
	unsigned int wrq_cap, wrq_head, wrq_len;
	int wrq_listed, wrq_lost;
	usmc_link *wrq_next; /* in ctx->wrq_links */
	/* counters for usmc_lgr_get_info: RDMA WRITE payload and send-queue
	 * WRs handed out (usmc_ctx_next_wr), receive completions and their
	 * bytes (usmc_link_on_wc) */
	uint64_t n_tx_bytes, n_tx_wrs, n_rx_bytes, n_rx_wrs;
};

/* A DMB an ended SMC-D connection left to its link group, |dirty| ring
 * bytes of it the peer may have written (cleared at reuse), and that
 * connection's sndbuf (NULL: none) */
typedef struct usmc_smcd_kept {
	struct usmc_smcd_kept *next;
	usmc_dmb dmb;
	size_t dirty;
	struct usmc_buf *sndbuf;
} usmc_smcd_kept;

struct usmc_lgr {
	usmc_ctx *ctx;
	usmc_lgr *next, *prev;
	uint32_t id;
	usmc_role role;
	int version; /* 1 or 2 */
	uint8_t peer_system_id[8];
	usmc_link *links[USMC_LINKS_MAX];
	usmc_conn *conns[USMC_CONNS_MAX + 1]; /* index = token & 0xff */
	unsigned int nconns;
	unsigned int conns_rr;
	uint8_t max_conns, max_links;
	uint8_t release; /* v2.1 negotiation result (0 for v1) */
	int terminating;
	/* we ended it orderly with DELETE_LINK ALL on this link, which stays
	 * to answer the peer's DELETE_RKEY and to see (and acknowledge) the
	 * peer's own DELETE_LINK ALL, sent by the kernel's smc_lgr_cleanup in
	 * either role, before its QPs go (usmc_llc_rx) */
	usmc_link *term_link;
	/* the peer ended it (its DELETE_LINK ALL): ours is only an answer */
	int peer_ended;
	/* SMC-R: the runtime saw the peer's process die (usmc_conn_peer_gone): not
	 * reused, nothing more is said to it, ended when its last connection
	 * goes */
	int peer_gone;
	int first_link_up; /* CONFIRM_LINK done */
	/* usmc_ctx_shutdown_idle found our own LLC request in flight: ended
	 * once that flow is done (usmc_lgr_end_if_idle) */
	int end_when_idle;
	/* local LLC flow */
	usmc_llc_req *llc_q, *llc_q_tail;
	usmc_llc_req *llc_cur;
	int llc_sent; /* llc_cur was sent; waiting for the response */
	usmc_tstamp llc_expiry;
	/* client: waiting for the server's CONFIRM_LINK request */
	usmc_tstamp confirm_link_expiry;
	/* idle link group deletion */
	usmc_tstamp free_expiry;
	/* buffer pool */
	usmc_buf *free_rmbs, *free_sndbufs;
	uint8_t next_link_id;
	/* connections with a failover validation pending (rx_valid_expiry) */
	unsigned int nvalid;
	/* the peer's RMBs (CONFIRM_RKEY, ADD_LINK_CONT / v2 ext) */
	usmc_rtoken *rtokens;
	/* the ADD_LINK flow (llc_cur is its request while it runs) */
	int addl_step;
	usmc_link *addl_link; /* the link the flow talks on */
	usmc_link *addl_new;  /* the link being added */
	/* server: a link was wanted while an ADD_LINK flow ran (a client's
	 * REQ_ADD_LINK, a device up): asked again when the flow ends */
	int addl_again;
	unsigned int addl_send_pos; /* v1: next conn slot to send rkeys of */
	unsigned int addl_nsend, addl_nrecv;
	/* a peer's ADD_LINK or DELETE_LINK request that came while a local
	 * flow ran (net/smc's delayed_event): handled when it ends */
	int delayed;
	uint8_t delayed_msg[USMC_WR_BUF_V2_SIZE];
	size_t delayed_len;
	usmc_link *delayed_link;
	/* v2 client: REQ_ADD_LINK sent, no ADD_LINK yet */
	usmc_tstamp req_add_expiry;
	/* SMC-D: no links; one lgr per (ISM device, peer gid and gid_ext),
	 * as the kernel's smcd lgr per (smcd, peer_gid) */
	int smcd;
	uint8_t ism_dev;
	uint8_t peer_dgid[16];
	/* DMBs of ended connections, kept for the next ones (the kernel's
	 * smc_buf_unuse: an SMC-D DMB stays registered); unregistered when
	 * the link group goes */
	usmc_smcd_kept *kept_dmbs;
	uint64_t n_dmb_reused; /* connections that took a kept DMB */
};

/* CLC states */
enum usmc_clc_state {
	USMC_CLC_NONE,
	USMC_CLC_CLI_WAIT_ACCEPT,
	USMC_CLC_CLI_WAIT_RKEY,	 /* non first contact: CONFIRM_RKEY in flight */
	USMC_CLC_CLI_WAIT_CLINK, /* first contact: Confirm sent, wait req */
	USMC_CLC_SRV_WAIT_PROPOSAL,
	USMC_CLC_SRV_WAIT_RKEY, /* CONFIRM_RKEY before Accept */
	USMC_CLC_SRV_WAIT_CONFIRM,
	USMC_CLC_SRV_WAIT_CLINK,   /* CONFIRM_LINK resp */
	USMC_CLC_WAIT_DECLINE,	   /* first link failed: the peer's Decline? */
	USMC_CLC_CLI_WAIT_ADDLINK, /* first link confirmed: ADD_LINK req? */
	USMC_CLC_CLI_ADDLINK_DECL, /* no ADD_LINK: the peer's Decline? */
	USMC_CLC_DONE,
};

struct usmc_conn {
	usmc_ctx *ctx;
	usmc_conn *next, *prev;
	void *user;
	usmc_conn_params params;
	usmc_conn_mode mode;
	int state; /* enum usmc_smc_state */
	int err;
	uint32_t fallback_reason, peer_diagnosis;

	/* CLC */
	int clc_state;
	usmc_tstamp clc_expiry;
	uint8_t clc_out[USMC_CLC_MAX_LEN];
	size_t clc_out_len, clc_out_off;
	int version; /* negotiated 1 or 2 */
	int first_contact;
	int clc_sent_any, clc_recv_any, peer_declined;
	int clc_written;      /* the runtime consumed some CLC bytes */
	uint32_t decl_reason; /* ours, if USMC_CLC_WAIT_DECLINE sees none */
	int addlink_late;     /* ADD_LINK window over on a dead link */
	uint8_t peer_system_id[8];
	uint8_t peer_gid[16], peer_mac[6];
	uint32_t peer_qpn, peer_psn;
	uint8_t peer_mtu;
	uint8_t eid[32];
	uint8_t release;

	/* SMC-R */
	usmc_lgr *lgr;
	usmc_link *link;
	uint32_t token, peer_token;
	usmc_buf *rmb, *sndbuf;
	/* the peer's RMB on each link (index = link_idx; has: known) */
	uint64_t peer_vaddr[USMC_LINKS_MAX];
	uint32_t peer_rkey[USMC_LINKS_MAX];
	uint8_t peer_rkey_has[USMC_LINKS_MAX];
	uint32_t peer_rmb_size;
	int rkey_pending;   /* CONFIRM_RKEY outstanding */
	int rkey_announced; /* peer knows our RMB: DELETE_RKEY on release */

	/* tx: byte counters since the start (sndbuf and peer RMBE offsets are
	 * these modulo the sizes, the wire wrap is the quotient) */
	uint64_t tx_prep, tx_sent, tx_fin;
	/* failover: tx_sent goes back to tx_fin; the peer's consumer may
	 * still name bytes up to the highest tx_sent before that */
	uint64_t tx_sent_max;
	uint16_t tx_seq_fin; /* seqno of the last CDC that completed */
	uint64_t peer_cons;  /* peer's consumer cursor (credit) */
	uint16_t tx_seq;
	unsigned int cdc_pend;
	int waiting_slot;
	int cons_upd_pending;	  /* send a pure CDC when possible */
	uint8_t close_flags_want; /* conn_state flags to send */
	uint8_t close_flags_sent; /* already sent (posted) */
	uint8_t close_flags_done; /* CDC with them completed */

	/* rx */
	uint64_t rx_prod, rx_cons, rx_cons_sent;
	uint16_t rx_seq;
	int rx_seq_valid;
	/* the peer's failover-validation CDC came: its CDCs on the dead link
	 * may still arrive late and are dropped as old (smc_cdc_msg_recv),
	 * its producer cursor may restart behind ours */
	int rx_failover_seen;
	/* its validation CDC named a CDC we have not taken yet: it may still
	 * wait on the dead link's CQ (the peer's RNIC had it); if rx_seq has
	 * not reached rx_valid_seq by rx_valid_expiry the connection aborts */
	uint16_t rx_valid_seq;
	usmc_tstamp rx_valid_expiry;
	uint8_t peer_prod_flags, peer_conn_flags;
	int app_closed;
	int nodelay;
	/* close: flags wait behind unsent data at most this long */
	usmc_tstamp close_expiry;
	int want_writable;
	int peer_shutdown_seen;

	/* SMC-D (usmc_smcd.c): mode stays USMC_MODE_SMCR inside the core,
	 * usmc_conn_get_mode says USMC_MODE_SMCD */
	int smcd;
	int offered_d;	      /* client: the Proposal offered SMC-D */
	int offered_r;	      /* ... and SMC-R */
	uint32_t smcd_decl;   /* server: why SMC-D could not be set up */
	unsigned int ism_dev; /* the ISM device */
	usmc_dmb dmb;	      /* our DMB: header at 0, the RMB ring at 32 */
	uint8_t peer_dgid[16];
	uint64_t peer_dmb_token;
	size_t peer_dmb_len;
	/* usmc_conn_peer_gone on an SMC-D connection: this connection's peer
	 * DMB or attachment is gone, not the link group's peer */
	int peer_dmb_gone;
	/* what the pulled ISM operations moved: data up to ism_moved, a CDC
	 * due (usmc_ctx_next_ism_op builds it from the cursors then) */
	uint64_t ism_moved;
	/* usmc_conn_attach_peer_dmb: the peer's ring, mapped here, where
	 * usmc_conn_write puts the bytes (NULL: the copy path). Bytes the
	 * ring had no room for wait in the sndbuf, [ism_moved, tx_prep),
	 * and go as ISM moves; that overflow opens only when the peer read
	 * nothing for USMC_SMCD_OVF_WAIT with the ring full (ovf_expiry,
	 * ovf_cons), so a stream stays single-copy while an application
	 * that writes before it reads gets the sndbuf's room too. */
	uint8_t *peer_ring;
	int ovf_open;
	usmc_tstamp ovf_expiry;
	uint64_t ovf_cons;
	int ism_cdc_due;
	uint8_t ism_pflags;
	int ism_listed;
	usmc_conn *ism_next;

	uint64_t bytes_sent, bytes_received;
	uint64_t n_tx_cdcs, n_rx_cdcs, n_writes, n_buf_full, n_peer_full;
	uint32_t n_failovers; /* moves to another link (smc_switch_conns) */
	int freed_by_ctx;
	int deleting; /* no events while usmc_conn_del runs */
};

struct usmc_ctx {
	usmc_callbacks cb;
	usmc_settings s;
	void *user;
	usmc_lgr *lgrs;
	usmc_conn *conns;
	uint32_t next_lgr_id;
	uint32_t token_gen;
	usmc_tstamp now; /* latest time passed in, for calls without one */
	unsigned int nclosewait; /* conns with a stream-wait timer */
	unsigned int novf;	 /* conns with an overflow timer (SMC-D) */
	unsigned int nhandshake; /* conns with a CLC timer: get_expiry scans
				  * connections only when there are any */
	/* links with work requests to pull, oldest first */
	usmc_link *wrq_links, *wrq_links_tail;
	/* a link on it went down with its port or device: no ADD_LINK there
	 * until usmc_ctx_device_up */
	uint8_t dev_down[USMC_DEVICES_MAX];
	/* SMC-D connections with ISM operations to pull, oldest first */
	usmc_conn *ism_head, *ism_tail;
};

/* The device a link's QP lives on, and the one a connection uses. */
static inline const usmc_device_info *usmc_link_dev(const usmc_link *l)
{
	return &l->lgr->ctx->s.devices[l->dev_idx];
}
static inline const usmc_device_info *usmc_conn_dev(const usmc_conn *c)
{
	return &c->ctx->s.devices[c->params.dev_idx];
}

/* memory and logging (usmc_ctx.c) */
void *usmc_mem_calloc(usmc_ctx *ctx, size_t n, size_t size);
void usmc_mem_free(usmc_ctx *ctx, void *p);
/* A buffer whose pages cost nothing until written (cb.buf_alloc). */
void *usmc_mem_buf_alloc(usmc_ctx *ctx, size_t size);
void usmc_mem_buf_free(usmc_ctx *ctx, void *p, size_t size);
void usmc_log(usmc_ctx *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static inline usmc_tstamp usmc_tmin(usmc_tstamp a, usmc_tstamp b)
{
	return a < b ? a : b;
}

/* The device callbacks, each called only through its wrapper here
 * (usmc_ctx.c), which maps any failure to USMC_ERR_CALLBACK_FAILURE, as
 * ngtcp2's conn_call_*. */
int usmc_ctx_call_alloc_mr(usmc_ctx *ctx, unsigned int dev_idx, size_t length,
			   uint32_t access, usmc_mr *mr);
/* Registers |mem|'s memory with |dev_idx| too (reg_mr): USMC_ERR_NOTSUP
 * without the callback. */
int usmc_ctx_call_reg_mr(usmc_ctx *ctx, unsigned int dev_idx,
			 const usmc_mr *mem, uint32_t access, usmc_mr *mr);
/* Frees |mr| if it holds memory, and clears it. */
void usmc_ctx_call_free_mr(usmc_ctx *ctx, usmc_mr *mr);
void usmc_ctx_call_rand(usmc_ctx *ctx, uint8_t *buf, size_t len);
int usmc_link_call_create_qp(usmc_link *link, usmc_link_qp_info *out);
int usmc_link_call_ready(usmc_link *link, const usmc_link_peer *peer,
			 int to_rts);
void usmc_link_call_destroy_qp(usmc_link *link);
void usmc_conn_call_event(usmc_conn *conn, usmc_conn_event ev);

/* link group (usmc_lgr.c) */
int usmc_lgr_create(usmc_ctx *ctx, usmc_role role, int version,
		    const uint8_t *peer_system_id, usmc_lgr **plgr);
void usmc_lgr_free(usmc_lgr *lgr);
/* If usmc_ctx_shutdown_idle asked for it and |lgr| has neither
 * connections nor an LLC request of ours in flight or queued, ends it
 * (DELETE_LINK ALL, orderly) USMC_END_QUIET after the peer's last LLC
 * request. */
void usmc_lgr_end_if_idle(usmc_lgr *lgr, usmc_tstamp ts);
void usmc_lgr_terminate(usmc_lgr *lgr, int err, uint32_t del_reason,
			usmc_tstamp ts);
usmc_lgr *usmc_lgr_find(usmc_ctx *ctx, usmc_role role, int version,
			unsigned int dev_idx, const uint8_t *peer_system_id,
			const uint8_t *peer_gid, const uint8_t *peer_mac,
			uint32_t peer_qpn);
usmc_link *usmc_lgr_first_link(usmc_lgr *lgr);
int usmc_lgr_add_conn(usmc_lgr *lgr, usmc_conn *conn);
usmc_conn *usmc_lgr_conn_by_token(usmc_lgr *lgr, uint32_t token);
void usmc_lgr_del_conn(usmc_lgr *lgr, usmc_conn *conn, usmc_tstamp ts);
int usmc_lgr_get_buf(usmc_lgr *lgr, unsigned int dev_idx, int is_rmb,
		     uint32_t size, usmc_buf **pbuf);
void usmc_lgr_put_buf(usmc_lgr *lgr, usmc_buf *buf);
/* The peer now knows RMB |b|'s rkey on |link| (the CLC named it there), or,
 * with |link| NULL, on every ACTIVE link it is registered for (a
 * CONFIRM_RKEY that succeeded). */
void usmc_lgr_buf_known(usmc_lgr *lgr, usmc_buf *b, const usmc_link *link);
/* Nonzero if the peer knows RMB |b| on |link| and on every other ACTIVE
 * link it is registered for: a connection reusing it needs no
 * CONFIRM_RKEY. */
int usmc_lgr_buf_peer_knows(const usmc_lgr *lgr, const usmc_buf *b,
			    const usmc_link *link);
/* Registers every buffer of |lgr| (in use and pooled) with device |dev|
 * (smcr_buf_map_lgr / smcr_buf_reg_lgr); 0 or an error. */
int usmc_lgr_reg_bufs(usmc_lgr *lgr, unsigned int dev);
/* Drops the buffers' registrations with |dev| when no link of |lgr| is
 * on it any more. */
void usmc_lgr_unreg_dev(usmc_lgr *lgr, unsigned int dev);
/* The peer's RMB |rkey| on link |idx|: records what CONFIRM_RKEY or the
 * CLC said, or (|new_idx| >= 0) its rkey and address on link |new_idx|
 * (smc_rtoken_set): every connection that writes to it learns it too.
 * Returns 0, USMC_ERR_INVALID_ARGUMENT (unknown) or USMC_ERR_LIMIT. */
int usmc_lgr_rtoken_add(usmc_lgr *lgr, unsigned int idx, uint32_t rkey,
			uint64_t vaddr);
int usmc_lgr_rtoken_set(usmc_lgr *lgr, unsigned int idx, uint32_t rkey,
			unsigned int new_idx, uint32_t new_rkey,
			uint64_t new_vaddr);
/* Forgets the peer's RMB |rkey| of link |idx|; 0 or
 * USMC_ERR_INVALID_ARGUMENT (unknown). */
int usmc_lgr_rtoken_del(usmc_lgr *lgr, unsigned int idx, uint32_t rkey);
/* A connection's peer RMB on its link (from the CLC): the others from the
 * rtokens CONFIRM_RKEY announced. */
void usmc_conn_set_peer_rmb(usmc_conn *conn, uint32_t rkey, uint64_t vaddr);
/* How many links of |lgr| are ACTIVE. */
unsigned int usmc_lgr_active_links(const usmc_lgr *lgr);
usmc_tstamp usmc_lgr_expiry(const usmc_lgr *lgr);
void usmc_lgr_handle_expiry(usmc_lgr *lgr, usmc_tstamp ts);

/* links (usmc_link.c) */
int usmc_link_create(usmc_lgr *lgr, unsigned int dev_idx, usmc_link **plink);
void usmc_link_free(usmc_link *link);
int usmc_link_ready(usmc_link *link, int to_rts);
/* TX slots: returns the slot index, or -1 when all are busy. */
int usmc_link_get_slot(usmc_link *link);
void usmc_link_put_slot(usmc_link *link, int idx);
uint8_t *usmc_link_slot_buf(usmc_link *link, int idx);
/* Queues the message in TX slot |idx| as a signaled, solicited SEND; _buf
 * sends another buffer (the v2 one) on the slot's account. */
void usmc_link_queue_slot(usmc_link *link, int idx);
void usmc_link_queue_slot_buf(usmc_link *link, int idx, const void *addr,
			      uint32_t len, uint32_t lkey);
/* Queues any send WR (the RDMA WRITEs before a CDC). */
void usmc_link_queue_send(usmc_link *link, const usmc_wr *wr);
int usmc_link_usable(const usmc_link *link);
/* Moves the connections of a dead link to a surviving one (failover);
 * called by usmc_link_down_why and for a peer's DELETE_LINK, before
 * the link is cleared. */
void usmc_link_switch_conns(usmc_link *dead, usmc_tstamp ts);
int usmc_link_send_raw(usmc_link *link, const uint8_t *msg);
/* Sends a v2 LLC message longer than 44 bytes from the link's v2 buffer,
 * or queues it behind the waiting control messages while the buffer or
 * every TX slot is busy. Returns 0, USMC_ERR_BUSY (USMC_LLC_LONG_PEND_MAX
 * wait already, or the ring is full: dropped), USMC_ERR_NOMEM, or the
 * codec's error. */
int usmc_link_send_long(usmc_link *link, const usmc_llc_msg *msg);
/* Drops the link's queued WRs and waiting control messages (its QP is
 * dead: nothing queued for it can be posted). */
void usmc_link_drop_queued(usmc_link *link);

/* failover (usmc_failover.c) */
/* The link is dead: move its connections to a surviving link, or end
 * the link group (usmc_link_down_why). */
void usmc_failover_link_down(usmc_link *link, usmc_link_down_reason why,
			     usmc_tstamp ts);
/* No usable link is left in |lgr|: connections that moved no data fall
 * back to TCP, the others are reset, the lgr is terminated. */
void usmc_failover_last_link(usmc_lgr *lgr, usmc_tstamp ts);
/* The failed-over links' grace (gone_expiry): the earliest, and the ones
 * due (DELETE_LINK to the peer, freed). */
usmc_tstamp usmc_failover_expiry(const usmc_lgr *lgr);
void usmc_failover_handle_expiry(usmc_lgr *lgr, usmc_tstamp ts);

/* LLC flows (usmc_llc_flow.c) */
uint8_t usmc_llc_version(const usmc_lgr *lgr);
int usmc_llc_send(usmc_link *link, const usmc_llc_msg *msg);
int usmc_llc_send_slot(usmc_link *link, const usmc_llc_msg *msg, int *pidx);
/* Sends a v2 message of any length without failing for a busy link: one
 * of 44 bytes through the control ring (usmc_link_send_raw), a longer one
 * through the v2 buffer (usmc_link_send_long). */
int usmc_llc_send_long(usmc_link *link, const usmc_llc_msg *msg);
int usmc_llc_queue(usmc_lgr *lgr, uint8_t type, usmc_conn *conn, usmc_buf *buf,
		   usmc_tstamp ts);
void usmc_llc_cancel_conn(usmc_lgr *lgr, usmc_conn *conn);
void usmc_llc_run(usmc_lgr *lgr, usmc_tstamp ts);
/* The peer's LLC message; on a link group we end (lgr->terminating, its
 * term_link), only a DELETE_RKEY request and DELETE_LINK are taken. */
void usmc_llc_rx(usmc_link *link, const uint8_t *buf, size_t len,
		 usmc_tstamp ts);
/* After the connections of |dead| moved to another link (or there were
 * none): the peer is told with DELETE_LINK (|reason|, SMC_LLC_DEL_*) on a
 * surviving link and |dead| is freed (smc_llc_delete_link /
 * smcr_link_clear). With no surviving link the lgr is terminated. */
void usmc_llc_link_gone(usmc_link *dead, uint32_t reason, usmc_tstamp ts);
/* Server: starts ADD_LINK if |lgr| has room for a link (queued behind
 * the local flow). Client v2: REQ_ADD_LINK for device |dev| (-1: none). */
void usmc_llc_want_link(usmc_lgr *lgr, int dev, usmc_tstamp ts);
/* The alternate device for a new link of |lgr| next to |link|'s, or -1
 * (smc_pnet_find_alt_roce). */
int usmc_llc_alt_dev(const usmc_lgr *lgr, const usmc_link *link);
usmc_tstamp usmc_llc_expiry(const usmc_lgr *lgr);
void usmc_llc_handle_expiry(usmc_lgr *lgr, usmc_tstamp ts);

/* CLC handshake (usmc_conn.c) */
void usmc_conn_event_raise(usmc_conn *conn, usmc_conn_event ev);
int usmc_conn_clc_queue(usmc_conn *conn, usmc_clc_msg *m);
void usmc_conn_established(usmc_conn *conn, usmc_tstamp ts);
/* 1 if |p| offers |ueid_cnt| user EIDs one of which is ours (copied to
 * |eid|) */
int usmc_conn_eid_match(const usmc_conn *conn, const usmc_clc_proposal *p,
			uint8_t *eid);

/* SMC-D (usmc_smcd.c) */
/* The ctx's ISM device for SMC-D, or -1 (none, no v2, no DMB callbacks). */
int usmc_smcd_dev(const usmc_ctx *ctx);
/* Client: adds the SMC-Dv2 offer to a v2 Proposal (typev2 set by the
 * caller). */
void usmc_smcd_propose(usmc_conn *conn, usmc_clc_proposal *p);
/* Server: SMC-D for this Proposal (smc_find_ism_v2_device_serv)? 1 when
 * it was chosen (the Accept is queued, or the handshake failed), 0 to go
 * on with SMC-R. */
int usmc_smcd_srv_proposal(usmc_conn *conn, const usmc_clc_msg *m,
			   usmc_tstamp ts);
void usmc_smcd_cli_accept(usmc_conn *conn, const usmc_clc_msg *m,
			  usmc_tstamp ts);
void usmc_smcd_srv_confirm(usmc_conn *conn, const usmc_clc_msg *m,
			   usmc_tstamp ts);
void usmc_smcd_tx_push(usmc_conn *conn);
/* usmc_conn_write for a connection with the peer's ring attached. */
usmc_ssize usmc_smcd_write(usmc_conn *conn, const uint8_t *data, size_t len,
			   usmc_tstamp ts);
size_t usmc_smcd_writable(const usmc_conn *conn);
void usmc_smcd_ovf_expired(usmc_conn *conn, usmc_tstamp ts);
/* The connection leaves its lgr: DMB and sndbuf freed, its pending ISM
 * operations dropped. */
void usmc_smcd_release(usmc_conn *conn);
/* Unregisters the DMBs |lgr| kept (usmc_lgr_free). */
void usmc_smcd_lgr_free(usmc_lgr *lgr);
/* Whether a CDC can still reach the peer. */
int usmc_conn_can_send(const usmc_conn *conn);
void usmc_conn_rkey_confirmed(usmc_conn *conn, int ok, usmc_tstamp ts);
void usmc_conn_link_confirmed(usmc_conn *conn, int ok, usmc_tstamp ts);
void usmc_conn_wait_decline(usmc_conn *conn, uint32_t reason, usmc_tstamp ts);
void usmc_conn_add_link_seen(usmc_conn *conn, usmc_tstamp ts);
void usmc_conn_release_smc(usmc_conn *conn, usmc_tstamp ts);
void usmc_conn_handshake_failed(usmc_conn *conn, int err, uint32_t reason,
				usmc_tstamp ts);
usmc_tstamp usmc_conn_expiry(const usmc_conn *conn);
void usmc_conn_clc_done(usmc_conn *conn);
void usmc_conn_handle_expiry(usmc_conn *conn, usmc_tstamp ts);

/* tx (usmc_tx.c) */
void usmc_tx_push(usmc_conn *conn);
void usmc_tx_cdc_done(usmc_conn *conn, const usmc_tx_slot *slot,
		      usmc_tstamp ts);
/* Sends a CDC with no new data (window update, close flags). */
void usmc_tx_cdc_ctrl(usmc_conn *conn);
void usmc_tx_flush_close(usmc_conn *conn);

/* rx (usmc_rx.c) */
void usmc_rx_cdc(usmc_link *link, const uint8_t *msg, size_t len,
		 usmc_tstamp ts);
void usmc_rx_consumer_update(usmc_conn *conn, int force);
/* SMC-D: takes the header re-read from the DMB as a CDC; 1 when it was
 * hostile and the connection aborted. */
int usmc_rx_apply(usmc_conn *conn, const usmc_cdc_msg *m, usmc_tstamp ts);

/* close (usmc_close.c) */
void usmc_close_peer_flags(usmc_conn *conn, uint8_t conn_flags, usmc_tstamp ts);
void usmc_close_abort_local(usmc_conn *conn, int err, int send_abort,
			    usmc_tstamp ts);
void usmc_close_progress(usmc_conn *conn, usmc_tstamp ts);
void usmc_close_timer(usmc_conn *conn, usmc_tstamp when);
void usmc_close_stream_wait_expired(usmc_conn *conn, usmc_tstamp ts);

#endif /* USMC_CORE_INT_H */
