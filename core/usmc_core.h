/* SPDX-License-Identifier: MIT */
/*
 * The sans-I/O SMC-R core: link groups, links, connections, and the state
 * machines that drive them (CLC handshake, LLC flows, CDC data path, close).
 *
 * The core never performs I/O. The runtime feeds it CLC bytes, work
 * completions, application reads and writes, and timer expiries (all with a
 * usmc_tstamp in nanoseconds). The core answers in two ways: work requests
 * are *pulled* by the caller after each call (usmc_ctx_next_wr, as
 * ngtcp2_conn_write_pkt), and the synchronous device operations (memory
 * registration, QP creation and moves) and connection events go through
 * usmc_callbacks.
 *
 * Threading: a usmc_ctx and everything under it are used by one thread at a
 * time; the runtime serialises. Callbacks run synchronously inside core
 * calls and must not re-enter the core for the same ctx, except for the
 * read-only getters (usmc_conn_get_*, usmc_conn_readable, ...) and
 * usmc_conn_clc_pending. See docs/core.md.
 *
 * Errors are negative USMC_ERR_* codes (usmc_err.h). A call that runs a
 * device callback returns USMC_ERR_CALLBACK_FAILURE when the callback
 * fails, whatever it returned.
 */
#ifndef USMC_CORE_H
#define USMC_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_err.h"
#include "usmc_wr.h"

typedef struct usmc_ctx usmc_ctx;
typedef struct usmc_lgr usmc_lgr;
typedef struct usmc_link usmc_link;
typedef struct usmc_conn usmc_conn;

/* Connection states: enum smc_state values as shown by smcss. */
enum usmc_smc_state {
	SMC_ACTIVE = 1,
	SMC_INIT = 2,
	SMC_CLOSED = 7,
	SMC_LISTEN = 10,
	SMC_PEERCLOSEWAIT1 = 20,
	SMC_PEERCLOSEWAIT2 = 21,
	SMC_APPCLOSEWAIT1 = 22,
	SMC_APPCLOSEWAIT2 = 23,
	SMC_APPFINCLOSEWAIT = 24,
	SMC_PEERFINCLOSEWAIT = 25,
	SMC_PEERABORTWAIT = 26,
	SMC_PROCESSABORT = 27,
};

/* Version bits for usmc_settings.smc_versions. */
#define USMC_VERSION_V1 (1u << 1)
#define USMC_VERSION_V2 (1u << 2)

/* Registered memory handed out by the transport (alloc_mr). |addr| is the
 * local address, |iova| what the peer uses as remote_addr. |handle| is the
 * transport's own object. */
typedef struct usmc_mr {
	void *addr;
	size_t length;
	uint64_t iova;
	uint32_t lkey, rkey;
	void *handle;
} usmc_mr;

/* What a device is (usmc_device_info.kind). */
enum usmc_device_kind {
	USMC_DEV_ROCE = 0, /* an RNIC port: SMC-R */
	/* an ISM-shaped device (transport shm): SMC-Dv2 in the shape of the
	 * kernel's loopback-ism, for peers on the same host */
	USMC_DEV_ISM = 1,
};

/* The local device (from usmc_tp_query_port): an RNIC port, or an ISM
 * device (kind USMC_DEV_ISM), whose gid is its 8-byte GID (big-endian:
 * the host identity, equal for every process that can reach the others'
 * DMBs) followed by the 8-byte gid_ext (big-endian: this device, one per
 * process), as SMC-Dv2.1 virtual ISM devices. */
typedef struct usmc_device_info {
	uint8_t gid[16];
	uint8_t mac[6];
	uint8_t active_mtu; /* enum usmc_ib_mtu */
	/* Devices of one ctx with the same non-empty pnet_id are alternates
	 * of each other (smc_pnet_find_alt_roce): a link group may add its
	 * second link on one. Blank or zero: none, no second link. */
	char pnet_id[16];
	uint8_t kind;  /* enum usmc_device_kind; 0 (RoCE) when left zero */
	uint16_t chid; /* ISM: CHID, 0 for SMC_LO_RESERVED_CHID 0xFFFF */
} usmc_device_info;

/* A DMB (Direct Memory Buffer) of an ISM device, from register_dmb: |len|
 * bytes at |addr|, zeroed; |token| names it to the peer (which attaches it
 * with the token) and is not 0; |handle| is the transport's object. */
typedef struct usmc_dmb {
	void *addr;
	size_t len;
	uint64_t token;
	void *handle;
} usmc_dmb;

/* Devices (RNIC ports) one context can use at once: a link group's links
 * may sit on different devices (RFC 7609 §2.1: redundancy wants two
 * RNICs), and a process may reach peers through several. */
#define USMC_DEVICES_MAX 8

/* User EIDs one context offers: SMC_MAX_UEID, what Linux lets one
 * configure (smc_clc_ueid_add); a Proposal may carry up to 8. */
#define USMC_UEID_MAX 4

typedef struct usmc_link_qp_info {
	uint32_t qp_num;
} usmc_link_qp_info;

/* What the runtime programs into a link's QP (link_ready). */
typedef struct usmc_link_peer {
	uint32_t qp_num, psn; /* dest_qp_num, rq_psn */
	uint8_t gid[16], mac[6];
	uint8_t path_mtu;   /* enum usmc_ib_mtu, min of both sides */
	uint32_t local_psn; /* sq_psn for RTS */
} usmc_link_peer;

typedef enum usmc_conn_event {
	USMC_EV_CLC_SEND,      /* CLC bytes pending: usmc_conn_clc_pending */
	USMC_EV_ESTABLISHED,   /* the SMC-R data path is up */
	USMC_EV_FALLBACK,      /* use the TCP socket; see fallback_reason */
	USMC_EV_READABLE,      /* data (or EOF) to read */
	USMC_EV_WRITABLE,      /* sndbuf space became free */
	USMC_EV_PEER_SHUTDOWN, /* peer done writing: reads return 0 after drain */
	USMC_EV_CLOSED, /* reached SMC_CLOSED; usmc_conn_del may follow */
	USMC_EV_ERROR,	/* aborted or failed: usmc_conn_error */
} usmc_conn_event;

/* Log levels for callbacks.log */
#define USMC_LOG_ERR   3
#define USMC_LOG_WARN  4
#define USMC_LOG_INFO  6
#define USMC_LOG_DEBUG 7

typedef struct usmc_callbacks {
	/* Memory for core objects (required). */
	void *(*malloc)(size_t size, void *user);
	void (*free)(void *ptr, void *user);
	void *(*calloc)(size_t n, size_t size, void *user);
	/* Optional: a buffer of |size| zero bytes whose pages take no
	 * memory until written (an SMC-D send buffer), and its release;
	 * without them calloc and free serve. */
	void *(*buf_alloc)(size_t size, void *user);
	void (*buf_free)(void *ptr, size_t size, void *user);
	/* Random bytes: PSNs, system id (required). */
	void (*rand)(uint8_t *buf, size_t len, void *user);
	/* Optional: one formatted line, no newline. */
	void (*log)(void *user, int level, const char *msg);
	/* Registered memory: RMBs, send buffers, WR slots (required).
	 * |access| is USMC_ACCESS_*. Returns 0 or non-zero on failure.
	 * The MR is registered with device |dev_idx| (the ctx's devices[])
	 * and only used there: a link's WR buffers on its own device, an
	 * RMB or sndbuf on the device of the connection it is taken for
	 * (pooled buffers are reused only on the device they were made
	 * for). Its rkey is what the peer writes to through that device,
	 * as net/smc keeps a buffer's mr[link_idx] per link. */
	int (*alloc_mr)(void *user, unsigned int dev_idx, size_t length,
			uint32_t access, usmc_mr *mr);
	void (*free_mr)(void *user, usmc_mr *mr);
	/* Optional: register |length| bytes at |addr| (memory of an MR from
	 * alloc_mr) with device |dev_idx| as well, so one RMB or sndbuf is
	 * reachable through the links of a link group on several devices
	 * (net/smc's buf_desc->mr[link_idx]). Freed with free_mr, which must
	 * then leave the memory alone. Without it a link group adds links
	 * only on the devices its buffers already live on (asymmetric). */
	int (*reg_mr)(void *user, unsigned int dev_idx, void *addr,
		      size_t length, uint32_t access, usmc_mr *mr);
	/* Queue pairs (required). link_create_qp returns an RC QP in INIT,
	 * so receives may be posted at once. link_ready moves it INIT->RTR
	 * (to_rts 0) or RTR->RTS (to_rts 1) with the attributes of the
	 * kernel's smc_ib_modify_qp_rtr/rts. Both return 0 or non-zero on
	 * failure. Work requests are not callbacks: see usmc_ctx_next_wr. */
	int (*link_create_qp)(void *user, usmc_link *link,
			      usmc_link_qp_info *out);
	int (*link_ready)(void *user, usmc_link *link,
			  const usmc_link_peer *peer, int to_rts);
	void (*link_destroy_qp)(void *user, usmc_link *link);
	/* Connection notifications (required). */
	void (*conn_event)(void *user, usmc_conn *conn, usmc_conn_event ev);
	/* ISM devices (required for SMC-D; without them no SMC-D is
	 * offered or chosen): the receive buffer of one SMC-D connection, a
	 * DMB of |len| bytes on device |dev_idx| for |conn| (the kernel's
	 * smcd_ops register_dmb), and its release. 0 or non-zero on
	 * failure. */
	int (*register_dmb)(void *user, unsigned int dev_idx, size_t len,
			    usmc_conn *conn, usmc_dmb *dmb);
	void (*unregister_dmb)(void *user, usmc_dmb *dmb);
	/* Optional: |dmb|, which an ended connection of |conn|'s link group
	 * left (same device, same peer device: |peer_gid|, gid and gid_ext,
	 * as the peer's CLC claimed it), is |conn|'s now (the
	 * kernel's smc_buf_get_slot finding an unused DMB): its signals go
	 * to |conn| from here on, none left from before. The core cleared
	 * its header and the ring bytes the peer wrote. 0, or non-zero if
	 * the transport cannot (its attacher let go of it): the core then
	 * unregisters it. Absent: a DMB goes with its connection. */
	int (*reuse_dmb)(void *user, usmc_conn *conn, const usmc_dmb *dmb,
			 const uint8_t peer_gid[16]);
} usmc_callbacks;

typedef struct usmc_settings {
	/* Per connection; rounded up to a power of two >= 16 KiB.
	 * Defaults 64 KiB each (net.smc.wmem / net.smc.rmem). */
	uint32_t sndbuf_size, rmb_size;
	/* The DMB (RMB) of an SMC-D connection: rounded up to a power of two
	 * from 16 KiB to 1 MiB (SMCD_DMBE_SIZES); 0 (the default): rmb_size.
	 * An ISM write is a copy with no completion, so a larger ring lets
	 * writer and reader copy at the same time. */
	uint32_t dmb_size;
	/* Peer ID for CLC: 2 random bytes + MAC (runtime fills; default
	 * derived from rand + device.mac). */
	uint8_t system_id[8];
	/* The devices known at creation (more with usmc_ctx_add_device); a
	 * connection names its own in usmc_conn_params.dev_idx. */
	usmc_device_info devices[USMC_DEVICES_MAX];
	unsigned int ndevices;
	/* USMC_VERSION_V1 | USMC_VERSION_V2 */
	unsigned int smc_versions;
	/* v2 user EIDs, 32 bytes each, blank padded, ueid_cnt of them (1 to
	 * USMC_UEID_MAX): all offered in a Proposal, any one accepted */
	char ueid[USMC_UEID_MAX][32];
	unsigned int ueid_cnt;
	/* v2 first-contact extension host name, blank padded */
	char hostname[32];
	/* CLC_WAIT_TIME 6 s, SMC_LLC_WAIT_TIME 2 s */
	usmc_duration clc_timeout, llc_timeout;
	/* TEST_LINK: sent after testlink_time without receiving anything on
	 * a link (0 off), the link is down when no answer came within
	 * testlink_wait. Defaults 1 s and 1 s, so a silent peer is noticed
	 * within 2 s (the kernel: 30 s and 2 s). */
	usmc_duration testlink_time, testlink_wait;
	/* An idle link group is freed after this (kernel: 600 s server,
	 * client +10 s so the server deletes first). */
	usmc_duration lgr_free_delay;
	/* TX WR slots per link (smcr_max_send_wr 16), RX buffers (48) */
	uint16_t send_wr, recv_wr;
	/* autocorking_size: 0 disables corking while a CDC is in flight */
	uint32_t autocorking_size;
	/* Nonzero (default): a released RMB stays known to the peer (no
	 * DELETE_RKEY), so the next connection that takes it from the link
	 * group's pool sends no CONFIRM_RKEY (docs/core.md, "Buffer
	 * reuse"). 0: as the kernel's smcr_buf_unuse, DELETE_RKEY at every
	 * release and CONFIRM_RKEY at every reuse. */
	int rmb_keep_rkey;
} usmc_settings;

/* usmc_settings_default fills |s| with the kernel defaults and no device;
 * the runtime then sets devices, system_id, ueid. */
void usmc_settings_default(usmc_settings *s);

/* Creates a context. Returns 0, USMC_ERR_INVALID_ARGUMENT (a required
 * callback or |s| missing, bad settings) or USMC_ERR_NOMEM. */
int usmc_ctx_new(usmc_ctx **pctx, const usmc_callbacks *cb,
		 const usmc_settings *s, void *user);
/* Adds a device after creation (devices open on demand). Returns its index
 * (>= 0), USMC_ERR_INVALID_ARGUMENT, or USMC_ERR_LIMIT when
 * USMC_DEVICES_MAX are in use. The first device also gives the system id
 * its MAC if the settings left it zero (smc_ib_define_local_systemid). */
int usmc_ctx_add_device(usmc_ctx *ctx, const usmc_device_info *dev);
/* The device at |idx|, or NULL. */
const usmc_device_info *usmc_ctx_get_device(const usmc_ctx *ctx,
					    unsigned int idx);
/* Frees everything, including connections the runtime did not delete
 * (their pointers become invalid); destroys QPs and frees MRs. */
void usmc_ctx_del(usmc_ctx *ctx);
/* Ends every link group now, telling each peer (DELETE_LINK ALL, program
 * initiated) so it does not wait for TEST_LINK to notice; open
 * connections are aborted (USMC_EV_ERROR, USMC_ERR_CONNABORTED). Keep
 * polling completions and timers until usmc_ctx_next_lgr() is NULL
 * (about 100 ms), then usmc_ctx_del. */
void usmc_ctx_shutdown(usmc_ctx *ctx, usmc_tstamp ts);
/* As usmc_ctx_shutdown, but only for link groups without connections
 * (a process that exits: open ones are left to their peers' detection
 * rather than cut off with data unread). One with an LLC request of ours
 * in flight or queued (a last DELETE_RKEY) ends when that flow is done, so
 * a peer's request that crossed it is answered first, and each ends only
 * once the peer has asked nothing for 50 ms (its own last DELETE_RKEY
 * follows its answer to ours). Returns how many it will end: keep polling
 * until usmc_ctx_next_lgr() is NULL (about 150 ms). */
int usmc_ctx_shutdown_idle(usmc_ctx *ctx, usmc_tstamp ts);
/* Earliest timer of all link groups and connections, or USMC_TSTAMP_NONE. */
usmc_tstamp usmc_ctx_get_expiry(const usmc_ctx *ctx);
/* Runs every timer due at |ts|. Returns 0. */
int usmc_ctx_handle_expiry(usmc_ctx *ctx, usmc_tstamp ts);

/* Work requests, pulled (ngtcp2's write_pkt model). No core call posts:
 * each queues the SENDs, RDMA WRITEs and receive buffers it wants on
 * their link, and the caller drains them after every core call (before it
 * sleeps, at least) and posts them to the link's QP in the order given.
 * Within a link the order is the wire order; across links it does not
 * matter. A WR pulled here refers to memory that stays registered until
 * the link is freed. */
typedef enum usmc_wr_kind {
	USMC_WRK_SEND = 1, /* |send| on the send queue (ibv_post_send) */
	USMC_WRK_RECV = 2, /* |recv| on the receive queue (ibv_post_recv) */
} usmc_wr_kind;

typedef struct usmc_link_wr {
	usmc_link *link;
	usmc_wr_kind kind;
	union {
		usmc_wr send;
		usmc_recv_wr recv;
	} wr;
} usmc_link_wr;

/* Takes the next work request of any link of |ctx| into |*out|. Returns 1
 * when |*out| holds one, 0 when none is left, USMC_ERR_INVALID_ARGUMENT
 * for a NULL argument. Calling it never raises events, except when a
 * link's queue overflowed (a hostile peer's cursors; cannot happen
 * otherwise): that link is then taken down here, after its queued WRs
 * were handed out, as usmc_link_post_failed would. */
int usmc_ctx_next_wr(usmc_ctx *ctx, usmc_link_wr *out);

/* Links: the runtime maps transport QPs to links and feeds completions. */
void usmc_link_set_user(usmc_link *l, void *p);
void *usmc_link_get_user(const usmc_link *l);
uint32_t usmc_link_get_id(const usmc_link *l);
usmc_lgr *usmc_link_get_lgr(const usmc_link *l);
/* The device (index in the ctx's devices) whose QP this link uses. */
unsigned int usmc_link_get_dev_idx(const usmc_link *l);
/* A completion of |link|'s QP. Returns 0, or USMC_ERR_INVALID_ARGUMENT for
 * a wr_id the link never posted. A failed completion takes the link down
 * (see usmc_link_down). */
int usmc_link_on_wc(usmc_link *link, const usmc_wc *wc, usmc_tstamp ts);
/* The caller could not post |wr_id| (from usmc_ctx_next_wr) on |link|:
 * |err| is the transport's error, for the log. The link's other queued
 * WRs are dropped and the link goes down as for usmc_link_down, from this
 * clean stack rather than inside the call that queued the WR. Returns 0,
 * or USMC_ERR_INVALID_ARGUMENT for a NULL link. */
int usmc_link_post_failed(usmc_link *link, uint64_t wr_id, int err,
			  usmc_tstamp ts);
/* Why a link went down; each logs "lgr %u link %u down: <reason>". */
typedef enum usmc_link_down_reason {
	USMC_LINK_DOWN_PORT,	     /* "port down" (PORT_ERR) */
	USMC_LINK_DOWN_QP_ERROR,     /* "qp error" (QP_FATAL, a failed WC) */
	USMC_LINK_DOWN_RETRIES,	     /* "retries exhausted" (RETRY_EXC_ERR) */
	USMC_LINK_DOWN_DEVICE_FATAL, /* "device fatal" */
	USMC_LINK_DOWN_TEST_LINK,    /* "test_link timeout" */
	USMC_LINK_DOWN_PEER_DELETED, /* "peer deleted" (its DELETE_LINK) */
	USMC_LINK_DOWN_POST_FAILED,  /* "post failed" */
} usmc_link_down_reason;
const char *usmc_link_down_reason_str(usmc_link_down_reason why);
/* The link (or its device) failed (smcr_link_down). Another ACTIVE link
 * of the link group takes its connections (docs/core.md "Failover"):
 * each resumes from its last confirmed cursor behind a
 * failover-validation CDC, the peer is told with DELETE_LINK on the
 * surviving link, the dead link is freed. With no link left the lgr is
 * terminated: a connection that has moved data gets USMC_EV_ERROR with
 * USMC_ERR_CONNRESET, one that has moved none falls back to TCP
 * (USMC_EV_FALLBACK after USMC_EV_ESTABLISHED, reason
 * SMC_CLC_DECL_NOACTLINK). Returns 0. usmc_link_down is
 * usmc_link_down_why(link, USMC_LINK_DOWN_PORT, ts). */
int usmc_link_down_why(usmc_link *link, usmc_link_down_reason why,
		       usmc_tstamp ts);
int usmc_link_down(usmc_link *link, usmc_tstamp ts);
/* Device |dev_idx| (or its port) is up again, or was added: every link
 * group that could use it for another link tries to (the server runs
 * ADD_LINK, a v2 client asks with REQ_ADD_LINK, a v1 client waits for the
 * server). */
void usmc_ctx_device_up(usmc_ctx *ctx, unsigned int dev_idx, usmc_tstamp ts);

typedef enum usmc_role { USMC_ROLE_CLIENT, USMC_ROLE_SERVER } usmc_role;

typedef struct usmc_conn_params {
	usmc_role role;
	/* local IPv4 address/prefix of the route device (host order) */
	struct {
		uint32_t addr;
		uint8_t prefix_len;
	} ipv4;
	uint32_t peer_ipv4;
	/* the local device this connection uses (the one behind the TCP
	 * connection's local address); a link group is only shared by
	 * connections on the same device, as smc_conn_create matches
	 * lnk->smcibdev */
	unsigned int dev_idx;
} usmc_conn_params;

/* Client: queues the Proposal (USMC_EV_CLC_SEND is raised). Server: waits
 * for the Proposal. Returns 0, USMC_ERR_INVALID_ARGUMENT (a NULL argument,
 * a bad role or prefix, |p->dev_idx| not a device of |ctx|),
 * USMC_ERR_NOMEM, or
 * USMC_ERR_INTERNAL (the Proposal could not be encoded). */
int usmc_conn_new(usmc_ctx *ctx, const usmc_conn_params *p, usmc_tstamp ts,
		  usmc_conn **pconn);
/* Releases the connection. If it is not closed yet it is aborted first
 * (the peer sees peer_conn_abort). */
void usmc_conn_del(usmc_conn *conn);
void usmc_conn_set_user(usmc_conn *c, void *p);
void *usmc_conn_get_user(const usmc_conn *c);

/* CLC over the TCP clcsock. The runtime peeks the 8-byte header and reads
 * exactly one whole message, so no application byte is ever consumed.
 * Returns 0 once the message was processed (even if it ended the handshake:
 * see the events), USMC_ERR_INVALID_STATE after the handshake is over. */
int usmc_conn_clc_recv(usmc_conn *conn, const uint8_t *msg, size_t len,
		       usmc_tstamp ts);
/* Bytes to send on the TCP connection; 0 and *plen = 0 when none. */
int usmc_conn_clc_pending(usmc_conn *conn, const uint8_t **pdata, size_t *plen);
void usmc_conn_clc_consume(usmc_conn *conn, size_t n);
/* The runtime decided not to use SMC. Records |decline_code|; queues a
 * Decline where the kernel would (not for PEERNOSMC, not after a peer's
 * Decline). A client Proposal that was not yet written (consumed) is
 * withdrawn first, so PEERNOSMC leaves nothing to send. */
int usmc_conn_fallback(usmc_conn *conn, uint32_t decline_code, usmc_tstamp ts);

typedef enum usmc_conn_mode {
	USMC_MODE_HANDSHAKE,
	USMC_MODE_SMCR,
	USMC_MODE_FALLBACK,
	USMC_MODE_SMCD, /* SMC-D over an ISM device (see "SMC-D" below) */
} usmc_conn_mode;
usmc_conn_mode usmc_conn_get_mode(const usmc_conn *conn);
/* SMC_CLC_DECL_* of the local fallback decision, 0 if none. */
uint32_t usmc_conn_fallback_reason(const usmc_conn *conn);
/* The peer's Decline code, 0 if none. */
uint32_t usmc_conn_peer_diagnosis(const usmc_conn *conn);
/* SMC_* state (enum usmc_smc_state). */
int usmc_conn_state(const usmc_conn *conn);
const char *usmc_conn_state_name(int state);

/*
 * SMC-D (USMC_MODE_SMCD): the data path of a connection on an ISM device,
 * in the shape of the kernel's loopback-ism (docs/core.md "SMC-D (shm)").
 * No link, no LLC, no work requests: each side's receive buffer is a DMB
 * (register_dmb) whose first 32 bytes are the CDC header (struct
 * smcd_cdc_msg, host-endian) and whose data ring follows at offset 32.
 * A sender moves data into the peer's DMB, then the header with a signal.
 *
 * Once USMC_EV_ESTABLISHED says USMC_MODE_SMCD, the runtime attaches the
 * peer's DMB (usmc_conn_get_peer_dmb) before it executes any of the
 * connection's ISM operations, and detaches it when the connection is
 * deleted. The usmc_conn_write/read/close calls are SMC-R's.
 */
typedef struct usmc_peer_dmb {
	uint8_t gid[16]; /* the peer device's gid and gid_ext (big-endian) */
	uint64_t token;	 /* its DMB's token: attach with this, once */
	size_t len;	 /* the DMB's length (header + ring) */
} usmc_peer_dmb;
/* 0 and |*out| for a connection whose peer DMB is known, else
 * USMC_ERR_INVALID_STATE (not SMC-D, or before the Accept/Confirm). */
int usmc_conn_get_peer_dmb(const usmc_conn *conn, usmc_peer_dmb *out);

typedef enum usmc_ism_op_kind {
	USMC_ISM_DATA = 1, /* |data| (the sndbuf), no signal */
	USMC_ISM_CDC = 2,  /* |hdr| (32 bytes) to offset 0, with signal */
} usmc_ism_op_kind;

/* One move_data into a peer's DMB. |offset| + |len| never exceeds the
 * DMB the peer announced. */
typedef struct usmc_ism_op {
	usmc_conn *conn;
	usmc_ism_op_kind kind;
	uint64_t peer_token; /* the peer DMB (usmc_conn_get_peer_dmb) */
	size_t offset;
	const uint8_t *data; /* USMC_ISM_DATA: |len| bytes of the sndbuf */
	size_t len;
	uint8_t hdr[32]; /* USMC_ISM_CDC: the header, |len| is 32 */
	int signal;	 /* raise the peer's DMB signal after the move */
} usmc_ism_op;

/* The runtime attached the peer's DMB and its |len| bytes are mapped in
 * this process at |addr|, where a store is what a move_data without
 * signal does (the transport says so: usmc_tp_rdmb.mapped; the kernel's
 * smc_ism_support_dmb_nocopy). From then on usmc_conn_write copies the
 * application's bytes straight into the peer's ring at the producer
 * cursor (the kernel's smcd_buf_attach), never past the peer's consumer
 * cursor (bytes it has not read stay intact), and the ISM operations
 * carry only the header: one copy per side. A write that finds the ring
 * full waits for the peer's reads; only if the peer read nothing for
 * 2 ms (a timer, usmc_ctx_get_expiry) does the connection's own sndbuf
 * take bytes too, moved by USMC_ISM_DATA operations as the peer makes
 * room, so a program that writes all before it reads still has the
 * buffer room of the copy path. The core never unmaps |addr|: the
 * runtime detaches it after usmc_conn_del. Call it once the peer DMB is
 * known, before the first write (an empty sndbuf). Returns 0,
 * USMC_ERR_INVALID_ARGUMENT (NULL, or |len| short of the DMB the peer
 * announced) or USMC_ERR_INVALID_STATE (not SMC-D, no peer DMB yet,
 * already attached, or bytes in the sndbuf); after an error the
 * connection goes on copying through its sndbuf. */
int usmc_conn_attach_peer_dmb(usmc_conn *conn, void *addr, size_t len);

/* Takes the next ISM operation of any SMC-D connection of |ctx|, as
 * usmc_ctx_next_wr does for work requests: call it after every core call
 * and execute each operation (move_data) before taking the next and
 * before the next core call; a connection's operations come in the order
 * they must land (its data, then the header). Returns 1 when |*out| holds
 * one, 0 when none is left, USMC_ERR_INVALID_ARGUMENT. Taking a CDC frees
 * the sndbuf space it covers, so it may raise USMC_EV_WRITABLE, and a
 * connection that was only waiting for it to go may be released (the
 * kernel's ISM write is synchronous: smcd_cdc_msg_send). */
int usmc_ctx_next_ism_op(usmc_ctx *ctx, usmc_ism_op *out);

/* The transport signalled |conn|'s DMB (the one register_dmb gave it,
 * named by |dmb_token|): the core re-reads the header at offset 0 and
 * takes the cursors and flags in it; several signals may be one call. A
 * header that is not a CDC, cursors that run backwards, past the ring or
 * past the window we granted abort the connection (USMC_EV_ERROR,
 * USMC_ERR_PROTO), as a token that is not the connection's does. Returns
 * 0, USMC_ERR_INVALID_ARGUMENT, USMC_ERR_INVALID_STATE (not SMC-D), or
 * USMC_ERR_PROTO when it aborted. */
int usmc_conn_on_dmb_signal(usmc_conn *conn, uint64_t dmb_token,
			    usmc_tstamp ts);

/* Data path (USMC_MODE_SMCR and USMC_MODE_SMCD). */
/* Bytes queued, or USMC_ERR_WOULDBLOCK (sndbuf full), USMC_ERR_PIPE
 * (after shutdown), USMC_ERR_CONNRESET / CONNABORTED. */
usmc_ssize usmc_conn_write(usmc_conn *conn, const uint8_t *data, size_t len,
			   usmc_tstamp ts);
/* Bytes, 0 = EOF, USMC_ERR_WOULDBLOCK, or the connection's error. */
usmc_ssize usmc_conn_read(usmc_conn *conn, uint8_t *buf, size_t len,
			  usmc_tstamp ts);
size_t usmc_conn_readable(const usmc_conn *conn);
size_t usmc_conn_writable(const usmc_conn *conn);
/* Bytes written by the application and not yet confirmed sent. */
size_t usmc_conn_unsent(const usmc_conn *conn);
/* TCP_NODELAY: never cork small writes behind an in-flight CDC (default
 * off: autocorking as net.smc.autocorking_size). */
void usmc_conn_set_nodelay(usmc_conn *conn, int on);
/* SHUT_WR: peer_done_writing once the sndbuf has drained. Returns 0,
 * USMC_ERR_INVALID_ARGUMENT, or USMC_ERR_INVALID_STATE when the connection
 * is not on SMC-R. */
int usmc_conn_shutdown_write(usmc_conn *conn, usmc_tstamp ts);
/* Orderly close (peer_conn_closed), or abort when unread data remains.
 * Both return 0 or USMC_ERR_INVALID_ARGUMENT; failures of the link show
 * later, as events. */
int usmc_conn_close(usmc_conn *conn, usmc_tstamp ts);
int usmc_conn_abort(usmc_conn *conn, usmc_tstamp ts);
/* The runtime learned that the peer's process is gone (its TCP connection
 * ended without an SMC close): as if the peer had sent an abort (data
 * already received is read first, then USMC_ERR_CONNRESET). The link group
 * is not reused and ends, without DELETE_LINK or DELETE_RKEY to the dead
 * peer, as soon as it has no connections left. On an SMC-D connection
 * (the ISM device's PEER_GONE of its DMB or attachment) only that
 * connection is concerned: its link group goes on. */
void usmc_conn_peer_gone(usmc_conn *conn, usmc_tstamp ts);
/* 1 once the close or abort flag this side owes has been sent and its CDC
 * completed (the peer's RNIC has it), or nothing can be sent any more. */
int usmc_conn_close_done(const usmc_conn *conn);
/* USMC_ERR_CONNRESET etc. after USMC_EV_ERROR, 0 otherwise. */
int usmc_conn_error(const usmc_conn *conn);

/* Cursor as on the wire: wrap:count. */
typedef struct usmc_conn_curs {
	uint16_t wrap;
	uint32_t count;
} usmc_conn_curs;

/* Statistics and debug view (smcss -d -R). */
typedef struct usmc_conn_info {
	usmc_conn_mode mode;
	usmc_role role;
	int state;
	int smc_version; /* 1 or 2, 0 before the Accept */
	uint32_t fallback_reason, peer_diagnosis;
	uint32_t lgr_id;
	uint8_t link_id;
	uint32_t local_token, peer_token;
	uint32_t sndbuf_size, rmb_size, peer_rmb_size;
	uint64_t bytes_sent, bytes_received;
	/* rx: peer's producer, our consumer; tx: our producer, peer's
	 * consumer; prep/sent/fin: sndbuf cursors */
	usmc_conn_curs rx_prod, rx_cons, tx_prod, tx_cons;
	usmc_conn_curs tx_prep, tx_sent, tx_fin;
	uint8_t peer_gid[16];
	uint32_t peer_qpn;
	uint16_t tx_seq, rx_seq; /* last CDC seqno sent / accepted */
	/* counters, as the kernel's SMC statistics: CDCs each way, RDMA
	 * WRITEs, writes that found the sndbuf full, pushes that found the
	 * peer's RMBE full */
	uint64_t tx_cdcs, rx_cdcs, tx_rdma_writes;
	uint64_t tx_buf_full, tx_peer_buf_full;
	uint8_t tx_conn_flags, rx_conn_flags; /* conn_state flags */
	/* times the connection moved to another link of its group
	 * (smc_switch_conns); link_id is the one it is on now */
	uint32_t failovers;
} usmc_conn_info;
void usmc_conn_get_info(const usmc_conn *conn, usmc_conn_info *info);

/* Link states (enum smc_link_state), usmc_lgr_info.links[].state. */
enum usmc_link_state_info {
	USMC_LINK_UNUSED = 0,
	USMC_LINK_INACTIVE,
	USMC_LINK_ACTIVATING,
	USMC_LINK_ACTIVE,
};
/* "UNUSED", "INACTIVE", "ACTIVATING", "ACTIVE"; "?" for another value. */
const char *usmc_link_state_name(int state);

/* Link group types (enum smc_lgr_type, as smcr linkgroup shows them). */
enum usmc_lgr_type {
	USMC_LGR_NONE = 0,	   /* no active link */
	USMC_LGR_SINGLE,	   /* one active link */
	USMC_LGR_SYMMETRIC,	   /* two, on two local and two peer RNICs */
	USMC_LGR_ASYMMETRIC_PEER,  /* two, the peer has one RNIC for both */
	USMC_LGR_ASYMMETRIC_LOCAL, /* two, this side has one RNIC for both */
};
/* "NONE", "SINGLE", "SYM", "ASYMP", "ASYML" (smcr's short names). */
const char *usmc_lgr_type_name(int type);

/* Link group view for tools (smcr linkgroup). */
typedef struct usmc_lgr_info {
	uint32_t id;
	usmc_role role;
	int smc_version;
	unsigned int nconns, nlinks;
	uint8_t peer_system_id[8];
	/* enum usmc_lgr_type, derived from the active links' local devices
	 * and peer GIDs (smcr_lgr_set_type's outcome) */
	int type;
	/* the links, nlinks of them (smcr linkgroup show-links) */
	struct {
		uint8_t link_id;
		uint8_t dev_idx; /* the local device: its GID is the device's */
		int active;	 /* state == USMC_LINK_ACTIVE */
		int state;	 /* enum usmc_link_state_info */
		uint32_t qp_num, peer_qpn;
		uint8_t peer_gid[16];
		/* counters since the link was made: RDMA WRITE payload
		 * bytes (the data) and send-queue WRs (WRITEs and SENDs)
		 * handed out, received messages (CDC, LLC) and their bytes.
		 * Data the peer writes into our RMBs never passes the
		 * receive queue: it shows in usmc_conn_info.bytes_received */
		uint64_t tx_bytes, rx_bytes, tx_wrs, rx_wrs;
	} links[3];
	/* SMC-D (smcd linkgroup): no links; the ISM device and the peer's
	 * gid and gid_ext */
	int smcd;
	uint8_t ism_dev;
	uint8_t peer_ism_gid[16];
	/* DMBs of ended connections it keeps for the next ones, and the
	 * connections that took one instead of registering a new DMB */
	unsigned int dmbs_kept;
	uint64_t dmbs_reused;
} usmc_lgr_info;
/* Iterates link groups: pass NULL to get the first. */
usmc_lgr *usmc_ctx_next_lgr(usmc_ctx *ctx, usmc_lgr *prev);
void usmc_lgr_get_info(const usmc_lgr *lgr, usmc_lgr_info *info);

#endif /* USMC_CORE_H */
