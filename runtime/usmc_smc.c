/* SPDX-License-Identifier: MIT */
/*
 * The runtime's side of the core and the transport: the device table (a
 * transport opened on a local address, on demand), the core callbacks
 * (memory, QPs, events), posting the work requests the core queues,
 * completion dispatch and timers. Everything here runs with usmc_g.lock
 * held, in whichever thread (app or progress) made the call.
 *
 * Core events raised inside a core call are only recorded (the core must
 * not be re-entered from a callback); smc_post() acts on them once the
 * core call has returned.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "usmc_clc.h"
#include "usmc_conv.h"
#include "usmc_real.h"
#include "usmc_rt.h"
#include "softroce.h"
#include "usmc_fault.h"
#include "usmc_transport.h"
#include "usmc_tp_core.h"
#ifdef USMC_HAVE_VERBS
#include "usmc_tp_verbs.h"
#include "usmc_tp_shm.h"
#endif

/* as the kernel's smc_ib_modify_qp_rtr/rts */
#define QP_TIMEOUT     15
#define QP_RETRY_CNT   7
#define QP_RNR_RETRY   7
#define QP_MIN_RNR_TMR 5

/* A closed socket's TCP connection, held open until its close flag has
 * reached the peer (usmc_smc_close). */
typedef struct tcp_hold {
	usmc_conn *conn; /* NULL once deleted */
	int fd;
	/* the socket's identity: if the application closed our fd number
	 * behind our back (close_range) and it was reused, it is not ours */
	dev_t dev;
	ino_t ino;
	uint64_t end;
} tcp_hold;

/* The close flag may wait behind data for the core's stream wait (2 s);
 * past that the core has sent an abort, or the link is gone. */
#define TCP_HOLD_NS (3 * USMC_NS_PER_SEC)

typedef struct rt_link {
	usmc_tp_qp *qp;
	usmc_link *link;
	uint32_t qpn;
	struct rt_link *next;
} rt_link;

/* A device: one transport opened on one local IPv4 address, on demand,
 * for the first connection that needs it (the rules may name the
 * transport, the TCP connection gives the address). Its index here is its
 * index in the core ctx (usmc_ctx_add_device), the dev_idx of its
 * connections and links. Completions are routed by (device, QPN). */
typedef struct rt_dev {
	char tp_name[32]; /* as configured: "softroce", "fault:softroce" */
	/* the options it was opened with: transport_options, a rule's */
	char tp_opts[USMC_TP_OPTS_MAX + USMC_RULE_OPTS];
	uint32_t addr;			/* network order */
	char ifname[16];		/* the interface of |addr| */
	char pnet_id[USMC_PNET_ID_LEN]; /* its pnet (USMC_PNET), zero: none */
	usmc_tp *tp;
	usmc_port_attr port;
	int fd;
	rt_link *links;
	uint64_t stray_wcs; /* completions of QPs no link has any more */
	int ism;	    /* the shm device: DMBs and signals, no QPs */
} rt_dev;

/* An SMC-D connection's transport objects: its DMB (register_dmb) and
 * its attachment of the peer's (attach_dmb). The transport's context for
 * both is |id|, never a pointer: a signal or PEER_GONE queued before the
 * connection went finds no entry rather than a reused address. */
typedef struct ism_ent {
	uint64_t id;
	usmc_conn *conn; /* NULL once deleted */
	unsigned int dev;
	usmc_tp_dmb *dmb;
	usmc_tp_rdmb *rdmb;
	/* 1: the peer is gone (move_data said so), 2: attach failed or too
	 * short: the connection is failed once the ISM pull is done */
	int fail;
	int failed; /* no more moves to the peer */
	struct ism_ent *next_c, *next_i;
} ism_ent;

#define ISM_HASH 1024

/* A device that did not open: the connections that need it decline with
 * NOSMCRDEV and |why|; the open is tried again after DEV_RETRY_NS (a
 * softroce port held by another process may be freed). Said once, at the
 * first failure. */
typedef struct rt_dev_fail {
	char tp_name[32];
	char tp_opts[USMC_TP_OPTS_MAX + USMC_RULE_OPTS];
	uint32_t addr;
	char why[160];
	uint64_t retry_at;
} rt_dev_fail;

#define DEV_FAILS_MAX 16
#define DEV_RETRY_NS  (1 * USMC_NS_PER_SEC)

typedef struct smc_state {
	rt_dev devs[USMC_DEVICES_MAX];
	unsigned int ndevs;
	rt_dev_fail fails[DEV_FAILS_MAX];
	unsigned int nfails;
	int table_full_said;
	uint8_t system_id[8];
	int have_system_id;
	usmc_ctx *ctx;
	usmc_settings settings;
	/* sockets with events raised during a core call */
	usmc_sock *pend;
	/* connections the app closed, to delete once the core is done */
	usmc_conn **orphans;
	size_t n_orphans, cap_orphans;
	/* connections the app closed whose close protocol is still running */
	size_t n_closing;
	tcp_hold *holds;
	size_t n_holds, cap_holds;
	/* distinct link group ids used */
	uint32_t lgr_seen[256];
	uint64_t n_lgr;
	uint64_t armed;
	/* the shm device: index, or -1 (not tried yet: shm_tried 0) */
	int shm_dev;
	int shm_tried;
	/* SMC-D connections' entries, by conn and by id */
	ism_ent *by_conn[ISM_HASH], *by_id[ISM_HASH];
	uint64_t ism_next_id;
	unsigned int ism_conns; /* entries with a connection (by_conn) */
} smc_state;

static smc_state smc = {.shm_dev = -1};

/* In a child after fork(), the parent's state as it was: kept, never
 * used (see usmc_smc_fork_child), one per generation of forks. */
typedef struct inherited_state {
	smc_state st;
	struct inherited_state *older;
} inherited_state;

static inherited_state *inherited;

void usmc_smc_forget(usmc_sock *s)
{
	usmc_sock **pp;

	if (!s->in_pend)
		return;
	for (pp = &smc.pend; *pp; pp = &(*pp)->pend_next)
		if (*pp == s) {
			*pp = s->pend_next;
			break;
		}
	s->in_pend = 0;
}

static void hold_release(const tcp_hold *h)
{
	struct stat st;

	if (fstat(h->fd, &st) == 0 && st.st_dev == h->dev &&
	    st.st_ino == h->ino)
		usmc_real()->close(h->fd);
}

/* In a child after fork(): the devices, their QPs and every connection
 * stay the parent's. Forget them without touching them (the child must
 * not read the shared device fds); devices open anew on first use.
 *
 * Their memory is not freed: tearing it down would run the transports'
 * close paths on what the parent still uses (shared DMBs, the device fds).
 * It is kept reachable instead, a copy of the pointers in |inherited|:
 * dropped, a child that exits without exec would hold the parent's
 * context and devices as "definitely lost" under valgrind, a false leak
 * (memcheck_test_runtime_shm_fork). The copy costs the child its pages
 * of this table; without memory for it the state is dropped as before. */
void usmc_smc_fork_child(void)
{
	inherited_state *in = malloc(sizeof(*in));

	if (in) {
		in->st = smc;
		in->st.holds = NULL; /* freed below */
		in->older = inherited;
		inherited = in;
	}
	memset(smc.devs, 0, sizeof(smc.devs));
	smc.ndevs = 0;
	smc.nfails = 0;
	smc.table_full_said = 0;
	smc.ctx = NULL;
	/* A new SMC instance: a peer that matched the parent's system id
	 * would offer the child the parent's link group (an Accept without
	 * first contact to the child's first contact: SYNCERR). */
	smc.have_system_id = 0;
	smc.pend = NULL;
	smc.orphans = NULL;
	smc.n_orphans = smc.cap_orphans = 0;
	smc.n_closing = 0;
	smc.armed = 0;
	/* the DMBs and attachments are the parent's (its device's) */
	smc.shm_dev = -1;
	smc.shm_tried = 0;
	memset(smc.by_conn, 0, sizeof(smc.by_conn));
	memset(smc.by_id, 0, sizeof(smc.by_id));
	/* the parent closes its held TCP connections when it is done */
	for (size_t i = 0; i < smc.n_holds; i++)
		hold_release(&smc.holds[i]);
	free(smc.holds);
	smc.holds = NULL;
	smc.n_holds = smc.cap_holds = 0;
}

int usmc_smc_clc_hdr_len(const uint8_t hdr[8])
{
	usmc_clc_hdr h;

	if (usmc_clc_hdr_peek(hdr, SMC_CLC_HDR_LEN, &h) < 0)
		return -1;
	if (h.length < SMC_CLC_HDR_LEN || h.length > USMC_CLC_BUF_MAX)
		return -1;
	return h.length;
}

uint64_t usmc_smc_lgr_count(void)
{
	return smc.n_lgr;
}

void usmc_smc_icrc_counts(uint64_t *inferred, uint64_t *dropped)
{
	*inferred = *dropped = 0;
	for (unsigned int i = 0; i < smc.ndevs; i++) {
		usmc_tp *tp = smc.devs[i].tp;
		usmc_softroce_stats st;

		/* fault:softroce: its inner device */
		if (!strncmp(smc.devs[i].tp_name, "fault", 5))
			tp = usmc_fault_inner(tp);
		if (tp && !usmc_softroce_get_stats(tp, &st)) {
			*inferred += st.rx_icrc_id;
			*dropped += st.drop_icrc;
		}
	}
}

int usmc_smc_dev_fd(unsigned int i)
{
	return i < smc.ndevs ? smc.devs[i].fd : -1;
}

static void system_id_init(const uint8_t *mac)
{
	static const uint8_t zero[6];

	if (smc.have_system_id)
		return;
	usmc_rt_rand(smc.system_id, 2);
	if (mac && memcmp(mac, zero, 6))
		memcpy(smc.system_id + 2, mac, 6);
	else
		usmc_rt_rand(smc.system_id + 2, 6);
	smc.have_system_id = 1;
}

/* Writes a CLC Decline ourselves: used when there is no device, so no
 * core context, yet the peer is waiting for a CLC message. */
static void send_decline(usmc_sock *s, uint32_t code, uint8_t version)
{
	usmc_clc_msg m;
	uint8_t buf[64];
	usmc_ssize n;

	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_DECLINE;
	m.hdr.version = version >= 2 ? 2 : 1;
	system_id_init(NULL);
	memcpy(m.u.decl.peer_id, smc.system_id, sizeof(m.u.decl.peer_id));
	m.u.decl.peer_diagnosis = code;
	m.u.decl.os_type = 2; /* as Linux */
	n = usmc_clc_encode(&m, buf, sizeof(buf));
	if (n <= 0 || usmc_real()->send(s->fd, buf, (size_t)n,
					MSG_DONTWAIT | MSG_NOSIGNAL) != n)
		/* the peer's doing (it reset, or reads nothing), once per
		 * connection: info */
		usmc_rt_log(USMC_LOG_INFO, "fd %d: could not send CLC Decline",
			    s->fd);
}

static void cb_free(void *ptr, void *user)
{
	(void)user;
	free(ptr);
}

static void *cb_malloc(size_t size, void *user)
{
	(void)user;
	return malloc(size);
}

static void *cb_calloc(size_t n, size_t size, void *user)
{
	(void)user;
	return calloc(n, size);
}

/* fresh anonymous pages: zero, and no memory until written */
static void *cb_buf_alloc(size_t size, void *user)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)user;
	return p == MAP_FAILED ? NULL : p;
}

static void cb_buf_free(void *ptr, size_t size, void *user)
{
	(void)user;
	munmap(ptr, size);
}

static void cb_rand(uint8_t *buf, size_t len, void *user)
{
	(void)user;
	usmc_rt_rand(buf, len);
}

/* Errors a peer can cause as often as it likes: the core's (an LLC
 * protocol violation, a hostile CDC, a failed link) and the handshake's
 * (usmc_hs.c: a bad CLC message, a peer that stalls). A subject (the
 * core line's "lgr N" / "link N" / "conn N", up to the first ':'; the
 * handshake's "peer ADDR") says its first at warn, the rest at info; and
 * all subjects together take at most ERR_BURST warn lines, one more
 * every ERR_REFILL_NS. Lock held (the core is called under it). */
#define ERR_KEYS      64
#define ERR_KEYLEN    48 /* "peer [IPv6 address]" */
#define ERR_BURST     10
#define ERR_REFILL_NS (6000 * USMC_NS_PER_MS)

static struct {
	char keys[ERR_KEYS][ERR_KEYLEN];
	unsigned int next; /* the slot to reuse: oldest first */
	int tokens;
	uint64_t refill_at;
} err_limit = {.tokens = ERR_BURST};

int usmc_smc_err_level(const char *subject, uint64_t now)
{
	char key[ERR_KEYLEN];
	size_t n = strlen(subject);
	uint64_t k;

	if (n >= sizeof(key))
		n = sizeof(key) - 1;
	memcpy(key, subject, n);
	key[n] = '\0';
	for (unsigned int i = 0; i < ERR_KEYS; i++)
		if (!strcmp(err_limit.keys[i], key))
			return USMC_LOG_INFO;
	memcpy(err_limit.keys[err_limit.next], key, n + 1);
	err_limit.next = (err_limit.next + 1) % ERR_KEYS;
	if (!err_limit.refill_at)
		err_limit.refill_at = now;
	k = (now - err_limit.refill_at) / ERR_REFILL_NS;
	if (k) {
		err_limit.tokens =
			k >= ERR_BURST ? ERR_BURST : err_limit.tokens + (int)k;
		if (err_limit.tokens > ERR_BURST)
			err_limit.tokens = ERR_BURST;
		err_limit.refill_at += k * ERR_REFILL_NS;
	}
	if (!err_limit.tokens)
		return USMC_LOG_INFO;
	err_limit.tokens--;
	return USMC_LOG_WARN;
}

int usmc_smc_core_err_level(const char *msg, uint64_t now)
{
	char key[ERR_KEYLEN];
	size_t n = strcspn(msg, ":");

	if (n >= sizeof(key))
		n = sizeof(key) - 1;
	memcpy(key, msg, n);
	key[n] = '\0';
	return usmc_smc_err_level(key, now);
}

void usmc_smc_core_log(int level, const char *msg)
{
	/* The core's warnings are about what a peer sent, unbounded in
	 * number: info, so that a peer never fills a program's stderr at
	 * the default level (warn). Its errors as above. */
	usmc_rt_log(level <= USMC_LOG_ERR
			    ? usmc_smc_core_err_level(msg, usmc_rt_now())
		    : level == USMC_LOG_WARN ? USMC_LOG_INFO
					     : USMC_LOG_DEBUG,
		    "core: %s", msg);
}

static void cb_log(void *user, int level, const char *msg)
{
	(void)user;
	usmc_smc_core_log(level, msg);
}

/* Each MR is registered with the one device the core names, whose QPs
 * use it and whose rkey the peer is given (docs/runtime.md, "Devices"). */
static int cb_alloc_mr(void *user, unsigned int dev_idx, size_t length,
		       uint32_t access, usmc_mr *mr)
{
	usmc_tp_mr *t;
	int r;

	(void)user;
	if (dev_idx >= smc.ndevs)
		return USMC_ERR_INTERNAL;
	r = usmc_tp_alloc_mr(smc.devs[dev_idx].tp, length, access, &t);
	if (r < 0)
		return r;
	usmc_tp_mr_to_core(t, mr);
	return 0;
}

/* The same memory registered with another device (second links). */
static int cb_reg_mr(void *user, unsigned int dev_idx, void *addr,
		     size_t length, uint32_t access, usmc_mr *mr)
{
	usmc_tp_mr *t;
	int r;

	(void)user;
	if (dev_idx >= smc.ndevs)
		return USMC_ERR_INTERNAL;
	r = usmc_tp_reg_mr(smc.devs[dev_idx].tp, addr, length, access, &t);
	if (r < 0)
		return r;
	usmc_tp_mr_to_core(t, mr);
	return 0;
}

static void cb_free_mr(void *user, usmc_mr *mr)
{
	(void)user;
	if (mr->handle)
		usmc_tp_free_mr(mr->handle);
	mr->handle = NULL;
}

static int cb_create_qp(void *user, usmc_link *link, usmc_link_qp_info *out)
{
	unsigned int d = usmc_link_get_dev_idx(link);
	usmc_qp_init_attr ia = {0};
	usmc_qp_attr qa = {0};
	rt_dev *dev;
	rt_link *rl;
	int r;

	(void)user;
	if (d >= smc.ndevs)
		return USMC_ERR_INTERNAL;
	dev = &smc.devs[d];
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return USMC_ERR_NOMEM;
	/* As net/smc: 3 send WRs per TX slot (room for 2 RDMA WRITEs per
	 * CDC), one receive WR per RX buffer. */
	ia.max_send_wr = 3u * smc.settings.send_wr;
	ia.max_recv_wr = smc.settings.recv_wr;
	ia.max_send_sge = 2;
	ia.max_recv_sge = 2;
	ia.context = link;
	r = usmc_tp_create_qp(dev->tp, &ia, &rl->qp);
	if (r < 0) {
		usmc_rt_log(USMC_LOG_ERR,
			    "device %u (%s): create_qp failed: %s", d,
			    dev->tp_name, usmc_strerror(r));
		free(rl);
		return r;
	}
	qa.qp_state = USMC_QPS_INIT;
	qa.qp_access_flags = USMC_ACCESS_LOCAL_WRITE | USMC_ACCESS_REMOTE_WRITE;
	r = usmc_tp_modify_qp(rl->qp, &qa);
	if (r < 0) {
		usmc_tp_destroy_qp(rl->qp);
		free(rl);
		return r;
	}
	rl->link = link;
	rl->qpn = usmc_tp_qp_num(rl->qp);
	rl->next = dev->links;
	dev->links = rl;
	usmc_link_set_user(link, rl);
	out->qp_num = rl->qpn;
	return 0;
}

static int cb_link_ready(void *user, usmc_link *link,
			 const usmc_link_peer *peer, int to_rts)
{
	rt_link *rl = usmc_link_get_user(link);
	usmc_qp_attr qa = {0};
	int r;

	(void)user;
	if (!rl)
		return USMC_ERR_INTERNAL;
	if (!to_rts || usmc_tp_qp_state(rl->qp) == USMC_QPS_INIT) {
		qa.qp_state = USMC_QPS_RTR;
		qa.path_mtu = peer->path_mtu;
		qa.dest_qp_num = peer->qp_num;
		qa.rq_psn = peer->psn;
		memcpy(qa.dgid, peer->gid, 16);
		memcpy(qa.dmac, peer->mac, 6);
		qa.hop_limit = 1;
		qa.min_rnr_timer = QP_MIN_RNR_TMR;
		r = usmc_tp_modify_qp(rl->qp, &qa);
		if (r < 0 || !to_rts)
			return r;
	}
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = USMC_QPS_RTS;
	qa.sq_psn = peer->local_psn;
	qa.timeout = QP_TIMEOUT;
	qa.retry_cnt = QP_RETRY_CNT;
	qa.rnr_retry = QP_RNR_RETRY;
	return usmc_tp_modify_qp(rl->qp, &qa);
}

static void cb_destroy_qp(void *user, usmc_link *link)
{
	rt_link *rl = usmc_link_get_user(link), **pp;
	unsigned int d = usmc_link_get_dev_idx(link);

	(void)user;
	if (!rl || d >= smc.ndevs)
		return;
	for (pp = &smc.devs[d].links; *pp; pp = &(*pp)->next)
		if (*pp == rl) {
			*pp = rl->next;
			break;
		}
	usmc_tp_destroy_qp(rl->qp);
	usmc_link_set_user(link, NULL);
	free(rl);
}

/* ---- SMC-D: DMBs, attachments, ISM operations (docs/runtime.md, "shm") */

static unsigned int hash_ptr(const void *p)
{
	uint64_t v = (uint64_t)(uintptr_t)p;

	return (unsigned int)((v >> 4) ^ (v >> 14)) % ISM_HASH;
}

static ism_ent *ent_by_conn(const usmc_conn *c)
{
	for (ism_ent *e = smc.by_conn[hash_ptr(c)]; e; e = e->next_c)
		if (e->conn == c)
			return e;
	return NULL;
}

static ism_ent *ent_by_id(uint64_t id)
{
	for (ism_ent *e = smc.by_id[id % ISM_HASH]; e; e = e->next_i)
		if (e->id == id)
			return e;
	return NULL;
}

static void ent_unlink_conn(ism_ent *e)
{
	ism_ent **pp;

	for (pp = &smc.by_conn[hash_ptr(e->conn)]; *pp; pp = &(*pp)->next_c)
		if (*pp == e) {
			*pp = e->next_c;
			smc.ism_conns--;
			break;
		}
	e->conn = NULL;
}

/* Frees |e| once its connection, DMB and attachment are all gone. */
static void ent_maybe_free(ism_ent *e)
{
	ism_ent **pp;

	if (e->conn || e->dmb || e->rdmb)
		return;
	for (pp = &smc.by_id[e->id % ISM_HASH]; *pp; pp = &(*pp)->next_i)
		if (*pp == e) {
			*pp = e->next_i;
			break;
		}
	free(e);
}

static int cb_register_dmb(void *user, unsigned int dev_idx, size_t len,
			   usmc_conn *conn, usmc_dmb *dmb)
{
	ism_ent *e;
	usmc_tp_dmb *t;
	int r;

	(void)user;
	if (dev_idx >= smc.ndevs || !smc.devs[dev_idx].ism || ent_by_conn(conn))
		return USMC_ERR_INTERNAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return USMC_ERR_NOMEM;
	e->id = ++smc.ism_next_id;
	r = usmc_tp_register_dmb(smc.devs[dev_idx].tp, len,
				 (void *)(uintptr_t)e->id, &t);
	if (r < 0) {
		free(e);
		return r;
	}
	e->conn = conn;
	e->dev = dev_idx;
	e->dmb = t;
	e->next_c = smc.by_conn[hash_ptr(conn)];
	smc.by_conn[hash_ptr(conn)] = e;
	smc.ism_conns++;
	e->next_i = smc.by_id[e->id % ISM_HASH];
	smc.by_id[e->id % ISM_HASH] = e;
	dmb->addr = t->addr;
	dmb->len = len;
	dmb->token = t->token;
	dmb->handle = t;
	return 0;
}

static void cb_unregister_dmb(void *user, usmc_dmb *dmb)
{
	usmc_tp_dmb *t = dmb->handle;
	ism_ent *e;

	(void)user;
	if (!t)
		return;
	e = ent_by_id((uint64_t)(uintptr_t)t->context);
	usmc_tp_unregister_dmb(t);
	dmb->handle = NULL;
	if (e && e->dmb == t) {
		e->dmb = NULL;
		ent_maybe_free(e);
	}
}

/* The core gives |conn| the DMB an ended connection of its link group
 * left: a new entry (a new id: a signal or PEER_GONE of the old
 * connection finds no entry), and the transport told the new context.
 * Only the shm device itself can (not through fault:shm). */
static int cb_reuse_dmb(void *user, usmc_conn *conn, const usmc_dmb *dmb,
			const uint8_t peer_gid[16])
{
	usmc_tp_dmb *t = dmb->handle;
	ism_ent *old, *e;
	int r;

	(void)user;
	old = t ? ent_by_id((uint64_t)(uintptr_t)t->context) : NULL;
	if (!old || old->dmb != t || ent_by_conn(conn))
		return USMC_ERR_INTERNAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return USMC_ERR_NOMEM;
	e->id = ++smc.ism_next_id;
	r = usmc_tp_shm_dmb_reuse(t, (void *)(uintptr_t)e->id, peer_gid);
	if (r) {
		usmc_rt_log(USMC_LOG_DEBUG, "device %u: no reuse of a DMB: %s",
			    old->dev, usmc_strerror(r));
		free(e);
		return r;
	}
	e->conn = conn;
	e->dev = old->dev;
	e->dmb = t;
	e->next_c = smc.by_conn[hash_ptr(conn)];
	smc.by_conn[hash_ptr(conn)] = e;
	smc.ism_conns++;
	e->next_i = smc.by_id[e->id % ISM_HASH];
	smc.by_id[e->id % ISM_HASH] = e;
	old->dmb = NULL;
	ent_maybe_free(old);
	return 0;
}

/* Attaches the peer's DMB of |e|'s connection (the core knows it from the
 * Accept or Confirm): 0, or -1 with e->fail set. */
static int ism_attach(ism_ent *e)
{
	usmc_peer_dmb pd;
	int r;

	if (e->rdmb)
		return 0;
	if (!e->conn || usmc_conn_get_peer_dmb(e->conn, &pd)) {
		e->fail = 2;
		return -1;
	}
	r = usmc_tp_attach_dmb(smc.devs[e->dev].tp, pd.gid, pd.token,
			       (void *)(uintptr_t)e->id, &e->rdmb);
	if (r < 0) {
		usmc_rt_log(USMC_LOG_ERR,
			    "device %u: attach of the peer's DMB: %s", e->dev,
			    usmc_strerror(r));
		e->rdmb = NULL;
		e->fail = 2;
		return -1;
	}
	/* the peer announced pd.len: a shorter mapping would refuse moves */
	if (e->rdmb->len < pd.len) {
		usmc_rt_log(USMC_LOG_WARN,
			    "device %u: the peer's DMB is %zu bytes, it "
			    "announced %zu",
			    e->dev, e->rdmb->len, pd.len);
		usmc_tp_detach_dmb(e->rdmb);
		e->rdmb = NULL;
		e->fail = 2;
		return -1;
	}
	return 0;
}

/* Fails the connections whose ISM operations could not be executed: the
 * peer is gone (ECONNRESET after the data already read) or its DMB could
 * not be attached (abort). Each is a core call of its own. Returns 1 if
 * one was made (more operations may follow). */
static int ism_fail_pending(void)
{
	int any = 0;

	for (unsigned int b = 0; b < ISM_HASH; b++)
		for (ism_ent *e = smc.by_conn[b]; e; e = e->next_c) {
			int f = e->fail;

			if (!f)
				continue;
			e->fail = 0;
			if (f == 1)
				usmc_conn_peer_gone(e->conn, usmc_rt_now());
			else
				usmc_conn_abort(e->conn, usmc_rt_now());
			any = 1;
		}
	return any;
}

/* Executes the ISM operations the last core call queued (the core pulls,
 * as for work requests), each before the next is taken. */
static void smc_drain_ism(void)
{
	usmc_ism_op op;
	int due;

	if (smc.shm_dev < 0 || !smc.ctx)
		return;
	do {
		due = 0;
		while (usmc_ctx_next_ism_op(smc.ctx, &op) == 1) {
			ism_ent *e = ent_by_conn(op.conn);
			int r;

			if (!e || e->failed)
				continue;
			if (ism_attach(e)) {
				e->failed = due = 1;
				continue;
			}
			r = usmc_tp_move_data(e->rdmb, op.offset,
					      op.kind == USMC_ISM_CDC ? op.hdr
								      : op.data,
					      op.len, op.signal);
			if (r < 0) {
				usmc_rt_log(USMC_LOG_DEBUG,
					    "device %u: move_data: %s", e->dev,
					    usmc_strerror(r));
				/* CONNRESET: the peer went; anything else
				 * is a move the core should never ask for */
				e->fail = r == USMC_ERR_CONNRESET ? 1 : 2;
				e->failed = due = 1;
			}
		}
	} while (due && ism_fail_pending());
}

/* The connection is being deleted: detach the peer's DMB (the core gives
 * its own DMB back through unregister_dmb). */
static void ism_conn_gone(usmc_conn *c)
{
	ism_ent *e = ent_by_conn(c);

	if (!e)
		return;
	ent_unlink_conn(e);
	if (e->rdmb)
		usmc_tp_detach_dmb(e->rdmb);
	e->rdmb = NULL;
	ent_maybe_free(e);
}

/* Posts the work requests the last core call queued (the core never
 * posts: usmc_ctx_next_wr), in their order. Called right after each
 * core call; a post the transport refuses goes back to the core as
 * usmc_link_post_failed, a core call of its own. */
static void smc_drain_wrs(void)
{
	usmc_link_wr w;

	while (smc.ctx && usmc_ctx_next_wr(smc.ctx, &w) == 1) {
		rt_link *rl = usmc_link_get_user(w.link);
		int recv = w.kind == USMC_WRK_RECV;
		int r = !rl    ? USMC_ERR_INTERNAL
			: recv ? usmc_tp_post_recv(rl->qp, &w.wr.recv)
			       : usmc_tp_post_send(rl->qp, &w.wr.send);

		if (r)
			usmc_link_post_failed(w.link,
					      recv ? w.wr.recv.wr_id
						   : w.wr.send.wr_id,
					      r, usmc_rt_now());
	}
	smc_drain_ism();
}

/* Returns 1 if |conn| was not an orphan yet. */
static int orphan_add(usmc_conn *conn)
{
	for (size_t i = 0; i < smc.n_orphans; i++)
		if (smc.orphans[i] == conn)
			return 0;
	if (smc.n_orphans == smc.cap_orphans) {
		size_t n = smc.cap_orphans ? smc.cap_orphans * 2 : 16;
		usmc_conn **o = realloc(smc.orphans, n * sizeof(*o));

		if (!o)
			return 1; /* leaks one conn until ctx teardown */
		smc.orphans = o;
		smc.cap_orphans = n;
	}
	smc.orphans[smc.n_orphans++] = conn;
	return 1;
}

/* The connection being deleted: its own last events are ignored. */
static usmc_conn *deleting;

static void conn_del(usmc_conn *c)
{
	for (size_t i = 0; i < smc.n_holds; i++)
		if (smc.holds[i].conn == c)
			smc.holds[i].conn = NULL;
	deleting = c;
	usmc_conn_del(c);
	deleting = NULL;
	smc_drain_wrs();
	ism_conn_gone(c);
	/* drop it from the orphans if it got there meanwhile */
	for (size_t i = 0; i < smc.n_orphans; i++)
		if (smc.orphans[i] == c)
			smc.orphans[i] = smc.orphans[--smc.n_orphans];
}

static void cb_conn_event(void *user, usmc_conn *conn, usmc_conn_event ev)
{
	usmc_sock *s = usmc_conn_get_user(conn);

	(void)user;
	if (conn == deleting)
		return;
	if (!s) {
		/* The app closed it; delete when the core is done. */
		if ((ev == USMC_EV_CLOSED || ev == USMC_EV_ERROR ||
		     ev == USMC_EV_FALLBACK) &&
		    orphan_add(conn) && smc.n_closing)
			smc.n_closing--;
		return;
	}
	s->ev |= 1u << ev;
	if (!s->in_pend) {
		s->in_pend = 1;
		s->pend_next = smc.pend;
		smc.pend = s;
	}
}

static const usmc_callbacks callbacks = {
	.malloc = cb_malloc,
	.free = cb_free,
	.calloc = cb_calloc,
	.buf_alloc = cb_buf_alloc,
	.buf_free = cb_buf_free,
	.rand = cb_rand,
	.log = cb_log,
	.alloc_mr = cb_alloc_mr,
	.reg_mr = cb_reg_mr,
	.free_mr = cb_free_mr,
	.link_create_qp = cb_create_qp,
	.link_ready = cb_link_ready,
	.link_destroy_qp = cb_destroy_qp,
	.conn_event = cb_conn_event,
	.register_dmb = cb_register_dmb,
	.unregister_dmb = cb_unregister_dmb,
	.reuse_dmb = cb_reuse_dmb,
};

static void note_lgr(uint32_t id)
{
	uint64_t n = smc.n_lgr < 256 ? smc.n_lgr : 256;

	if (!id)
		return;
	for (uint64_t i = 0; i < n; i++)
		if (smc.lgr_seen[i] == id)
			return;
	if (smc.n_lgr < 256)
		smc.lgr_seen[smc.n_lgr] = id;
	smc.n_lgr++;
}

static int sock_alive(usmc_sock *s)
{
	return usmc_sock_get(s->fd) == s;
}

/* Closes the held TCP connections whose close flag has reached the peer
 * (or that waited long enough). */
static void holds_check(void)
{
	uint64_t now = smc.n_holds ? usmc_rt_now() : 0;

	for (size_t i = 0; i < smc.n_holds;) {
		tcp_hold *h = &smc.holds[i];

		if (h->conn && !usmc_conn_close_done(h->conn) && now < h->end) {
			i++;
			continue;
		}
		hold_release(h);
		*h = smc.holds[--smc.n_holds];
	}
}

size_t usmc_smc_tcp_held(void)
{
	return smc.n_holds;
}

/* A quarter of an SMC-D ring, at least 16 KiB (smaller pieces cost more
 * in signals than the overlap gains); 0 when that is the whole ring. */
static uint32_t ism_piece(uint32_t ring)
{
	uint32_t q = ring / 4;

	if (q < 16384)
		q = 16384;
	return q < ring ? q : 0;
}

/* Acts on the events recorded during the last core call, after posting
 * its work requests. */
static void smc_post(void)
{
	int any = 0, notify = 0, listener = 0;

	smc_drain_wrs();
	while (smc.pend) {
		usmc_sock *s = smc.pend;
		uint32_t ev;

		smc.pend = s->pend_next;
		if (!s->in_pend)
			continue; /* freed meanwhile */
		s->in_pend = 0;
		ev = s->ev;
		s->ev = 0;
		any = 1;
		/* a handshake's end queues a child for accept; data and
		 * space on an established connection concern no listener */
		if (s->mode != USMC_SOCK_SMCR ||
		    (ev & (1u << USMC_EV_FALLBACK)))
			listener = 1;
		if (!s->conn || !sock_alive(s))
			continue;
		if (ev & ((1u << USMC_EV_READABLE) | (1u << USMC_EV_WRITABLE) |
			  (1u << USMC_EV_PEER_SHUTDOWN) |
			  (1u << USMC_EV_CLOSED) | (1u << USMC_EV_ERROR))) {
			s->rgen++;
			usmc_epoll_sock_changed(s);
			notify = 1;
		}
		if (ev & (1u << USMC_EV_CLC_SEND))
			if (usmc_smc_clc_flush(s) > 0 &&
			    s->mode == USMC_SOCK_HANDSHAKE)
				usmc_loop_watch(s, s->ep_events | EPOLLOUT);
		if (s->mode == USMC_SOCK_SMCR &&
		    (ev & (1u << USMC_EV_FALLBACK))) {
			/* the last link died before any data moved */
			usmc_sock_fallback_late(
				s, usmc_conn_fallback_reason(s->conn));
			notify = 1;
			continue;
		}
		if (s->mode != USMC_SOCK_HANDSHAKE)
			continue;
		if (ev & (1u << USMC_EV_ESTABLISHED)) {
			usmc_conn_info ci;

			usmc_conn_get_info(s->conn, &ci);
			/* SMC-D: the peer's DMB is attached now, before any
			 * data moves (usmc_conn_get_peer_dmb) */
			if (usmc_conn_get_mode(s->conn) == USMC_MODE_SMCD) {
				ism_ent *e = ent_by_conn(s->conn);

				/* a failed attach aborts the connection
				 * (ism_attach set e->fail); the drain alone
				 * would skip its operations and never say */
				if (e && !e->failed && ism_attach(e)) {
					e->failed = 1;
					if (ism_fail_pending())
						smc_drain_ism();
				} else if (e) {
					s->rx_piece = ism_piece(ci.rmb_size);
					s->tx_piece =
						ism_piece(ci.peer_rmb_size);
				}
				if (e && !e->failed && e->rdmb &&
				    e->rdmb->mapped) {
					/* single copy: the app's bytes go
					 * straight into the peer's ring; on
					 * refusal the core copies as before */
					int r = usmc_conn_attach_peer_dmb(
						s->conn, e->rdmb->addr,
						e->rdmb->len);

					if (r)
						usmc_rt_log(USMC_LOG_DEBUG,
							    "fd %d: sndbuf not "
							    "attached: %s",
							    s->fd,
							    usmc_strerror(r));
				}
			}
			s->mode = USMC_SOCK_SMCR;
			s->smc_version = ci.smc_version;
			note_lgr(ci.lgr_id);
			usmc_sock_hs_done(s);
		} else if (ev & (1u << USMC_EV_FALLBACK)) {
			uint32_t code = usmc_conn_fallback_reason(s->conn);
			char d[128];

			s->peer_diag = usmc_conn_peer_diagnosis(s->conn);
			if (s->peer_diag)
				snprintf(d, sizeof(d),
					 "peer declined: %s 0x%08x %s",
					 usmc_clc_decl_name(s->peer_diag),
					 s->peer_diag,
					 usmc_clc_decl_str(s->peer_diag));
			else
				snprintf(d, sizeof(d), "%s",
					 usmc_clc_decl_str(code));
			/* the core sent a Decline: the peer's may cross it */
			s->decl_check = code != USMC_DECL_PEERDECL &&
					code != USMC_DECL_PEERNOSMC;
			usmc_sock_fallback(s, code, d);
		} else if (ev & (1u << USMC_EV_ERROR)) {
			int e = usmc_errno_from(usmc_conn_error(s->conn));

			usmc_smc_conn_free(s);
			s->mode = USMC_SOCK_FAILED;
			s->error = e;
			usmc_sock_hs_done(s);
		}
	}
	while (smc.n_orphans) {
		usmc_conn *c = smc.orphans[--smc.n_orphans];

		conn_del(c);
		any = listener = 1;
	}
	if (smc.n_holds)
		holds_check();
	if (listener)
		usmc_rt_broadcast();
	else if (any)
		usmc_rt_wake_data();
	if (notify)
		usmc_rt_notify();
	if (usmc_smc_expiry() != smc.armed)
		usmc_loop_rearm_timer();
}

static int local_prefix_lookup(uint32_t addr_be, uint8_t *plen)
{
	struct ifaddrs *ifa, *i;
	int found = 0;

	*plen = 32;
	if (getifaddrs(&ifa))
		return -1;
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr_in *a, *m;
		uint32_t mask;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    !i->ifa_netmask)
			continue;
		a = (const struct sockaddr_in *)i->ifa_addr;
		m = (const struct sockaddr_in *)i->ifa_netmask;
		mask = ntohl(m->sin_addr.s_addr);
		/* 127.0.0.2 lives in lo's 127.0.0.1/8 */
		if (a->sin_addr.s_addr == addr_be ||
		    (!found && mask &&
		     ((ntohl(a->sin_addr.s_addr) ^ ntohl(addr_be)) & mask) ==
			     0)) {
			*plen = (uint8_t)__builtin_popcount(mask);
			found = 1;
			if (a->sin_addr.s_addr == addr_be)
				break;
		}
	}
	freeifaddrs(ifa);
	return found ? 0 : -1;
}

/* getifaddrs is two netlink dumps (links and addresses): about 100 us a
 * connection, as much as its TCP handshake. The kernel reads the prefix
 * from the netdev it already holds (smc_clc_prfx_set); the runtime keeps
 * what it found per local address for PREFIX_CACHE_NS, so a burst of
 * short connections pays one lookup a second. Under the runtime lock. */
#define PREFIX_CACHE_N	8
#define PREFIX_CACHE_NS (1000ULL * USMC_NS_PER_MS)

static struct {
	uint32_t addr_be;
	uint8_t plen;
	int found;
	uint64_t when; /* 0: empty */
} prefix_cache[PREFIX_CACHE_N];

static int local_prefix(uint32_t addr_be, uint8_t *plen)
{
	uint64_t now = usmc_rt_now();
	int slot = 0, r;

	for (int i = 0; i < PREFIX_CACHE_N; i++) {
		if (prefix_cache[i].when &&
		    prefix_cache[i].addr_be == addr_be &&
		    now - prefix_cache[i].when < PREFIX_CACHE_NS) {
			*plen = prefix_cache[i].plen;
			return prefix_cache[i].found ? 0 : -1;
		}
		if (prefix_cache[i].when < prefix_cache[slot].when)
			slot = i;
	}
	r = local_prefix_lookup(addr_be, plen);
	prefix_cache[slot].addr_be = addr_be;
	prefix_cache[slot].plen = *plen;
	prefix_cache[slot].found = r == 0;
	prefix_cache[slot].when = now ? now : 1;
	return r;
}

static void pad_blank(char *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

/* The interface that holds local IPv4 |addr_be| into |ifname|, and the
 * first IPv4 address of interface |want| into |*first_be| (either may be
 * NULL). 0 if what was asked for was found, else -1. */
static int if_lookup(uint32_t addr_be, char ifname[16], const char *want,
		     uint32_t *first_be)
{
	struct ifaddrs *ifa, *i;
	int found = 0;

	if (getifaddrs(&ifa))
		return -1;
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr_in *a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    !i->ifa_name)
			continue;
		a = (const struct sockaddr_in *)i->ifa_addr;
		if (ifname && a->sin_addr.s_addr == addr_be) {
			snprintf(ifname, 16, "%s", i->ifa_name);
			found = 1;
			break;
		}
		if (want && !strcmp(i->ifa_name, want)) {
			*first_be = a->sin_addr.s_addr;
			found = 1;
			break;
		}
	}
	freeifaddrs(ifa);
	return found ? 0 : -1;
}

/* What a transport says once (softroce: how it checks rxe's packets). */
static void tp_log(void *arg, int level, const char *msg)
{
	(void)arg;
	/* usmc_tp_config.log: 0 error (said once), 1 info */
	usmc_rt_log(level ? USMC_LOG_INFO : USMC_LOG_WARN, "%s", msg);
}

/* The core context, made with the first device (a RoCE device's MAC for
 * the system id, or none: random); 0 or an error. */
static int ctx_ensure(const uint8_t *mac)
{
	char host[64] = "";
	int r;

	if (smc.ctx)
		return 0;
	usmc_settings_default(&smc.settings);
	system_id_init(mac);
	memcpy(smc.settings.system_id, smc.system_id, 8);
	smc.settings.smc_versions = USMC_VERSION_V1 | USMC_VERSION_V2;
	smc.settings.testlink_time =
		(uint64_t)usmc_g.cfg.testlink_ms * USMC_NS_PER_MS;
	smc.settings.testlink_wait =
		(uint64_t)usmc_g.cfg.testlink_wait_ms * USMC_NS_PER_MS;
	smc.settings.dmb_size = usmc_g.cfg.dmb_size;
	if (usmc_g.cfg.ueid_cnt) {
		memcpy(smc.settings.ueid, usmc_g.cfg.ueid,
		       sizeof(smc.settings.ueid));
		smc.settings.ueid_cnt = usmc_g.cfg.ueid_cnt;
	} else {
		pad_blank(smc.settings.ueid[0], sizeof(smc.settings.ueid[0]),
			  USMC_UEID_DEFAULT);
		smc.settings.ueid_cnt = 1;
	}
	if (gethostname(host, sizeof(host) - 1) == 0)
		pad_blank(smc.settings.hostname, sizeof(smc.settings.hostname),
			  host);
	r = usmc_ctx_new(&smc.ctx, &callbacks, &smc.settings, NULL);
	if (r < 0)
		smc.ctx = NULL;
	return r < 0 ? r : 0;
}

/* Opens |name| with options |opts| on |local|, adds it to the core ctx
 * (made with the first device) as device smc.ndevs. 0, or -1 with |why|. */
static int dev_open(const char *name, const char *opts,
		    const struct sockaddr_in *local, char *why, size_t wlen)
{
	rt_dev *dev = &smc.devs[smc.ndevs];
	usmc_device_info di;
	usmc_tp_config cfg;
	int r, is_sr = !strcmp(name, "softroce");

	memset(&cfg, 0, sizeof(cfg));
	memcpy(&cfg.local_addr, local, sizeof(*local));
	cfg.udp_port = usmc_g.cfg.softroce_port;
	cfg.log = tp_log;
	cfg.options = *opts ? opts : NULL;
	memset(dev, 0, sizeof(*dev));
	r = usmc_tp_open(name, &cfg, &dev->tp);
	if (r < 0) {
		dev->tp = NULL;
		if (strstr(name, "softroce") && *usmc_softroce_option_error())
			/* transport_options or a rule's options */
			snprintf(why, wlen, "transport %s: options: %s", name,
				 usmc_softroce_option_error());
		else if (is_sr && *usmc_softroce_share_status())
			snprintf(why, wlen, "softroce: %s",
				 usmc_softroce_share_status());
#ifdef USMC_HAVE_VERBS
		else if (strstr(name, "verbs") && r == USMC_ERR_NOTSUP &&
			 *usmc_tp_verbs_load_error())
			/* libusmc-verbs.so, or the libibverbs it needs */
			snprintf(why, wlen, "transport %s: %s", name,
				 usmc_tp_verbs_load_error());
#endif
		else if (!strncmp(name, "fault", 5) && *usmc_fault_last_error())
			/* a fault schedule that does not parse runs nothing */
			snprintf(why, wlen, "transport %s: %s", name,
				 usmc_fault_last_error());
		else
			snprintf(why, wlen, "transport %s: open failed: %s",
				 name,
				 r != USMC_ERR_NOTFOUND || usmc_tp_find(name)
					 ? usmc_strerror(r)
					 : "no such transport");
		return -1;
	}
	if (is_sr && usmc_softroce_share_slot(dev->tp) < 0)
		usmc_rt_log(USMC_LOG_INFO,
			    "softroce holds UDP port %u alone (other usmc "
			    "processes on this address fall back): %s",
			    cfg.udp_port, usmc_softroce_share_status());
	r = usmc_tp_query_port(dev->tp, &dev->port);
	if (r < 0) {
		snprintf(why, wlen, "transport %s: query_port failed: %s", name,
			 usmc_strerror(r));
		goto fail;
	}
	memset(&di, 0, sizeof(di));
	memcpy(di.gid, dev->port.gid, 16);
	memcpy(di.mac, dev->port.mac, 6);
	di.active_mtu = dev->port.active_mtu;
	/* the interface's pnet: the core's alternates (smc_pnet_find_alt_roce) */
	if (!if_lookup(local->sin_addr.s_addr, dev->ifname, NULL, NULL)) {
		const char *pn = usmc_pnet_of(&usmc_g.cfg, dev->ifname);

		if (pn)
			memcpy(dev->pnet_id, pn, USMC_PNET_ID_LEN);
	}
	memcpy(di.pnet_id, dev->pnet_id, sizeof(di.pnet_id));
	r = ctx_ensure(dev->port.mac);
	if (r < 0) {
		snprintf(why, wlen, "core context: %s", usmc_strerror(r));
		goto fail;
	}
	r = usmc_ctx_add_device(smc.ctx, &di);
	if (r != (int)smc.ndevs) {
		snprintf(why, wlen, "core: device %u not added: %s", smc.ndevs,
			 usmc_strerror(r < 0 ? r : USMC_ERR_INTERNAL));
		goto fail;
	}
	snprintf(dev->tp_name, sizeof(dev->tp_name), "%s", name);
	snprintf(dev->tp_opts, sizeof(dev->tp_opts), "%s", opts);
	dev->addr = local->sin_addr.s_addr;
	dev->fd = usmc_tp_get_fd(dev->tp);
	smc.ndevs++;
	usmc_g.stats.transport_opens++;
	return 0;
fail:
	usmc_tp_close(dev->tp);
	dev->tp = NULL;
	return -1;
}

/* Opens the shm device beside the RoCE ones, once, for the first
 * connection (USMC_SHM, "set shm"), whether or not a RoCE device opens:
 * the core then offers SMC-Dv2 to every peer, and a peer on this host
 * takes it (docs/runtime.md, "shm"). One that does not open is said once;
 * SMC-R goes on without it. */
static void shm_ensure(void)
{
	rt_dev *dev;
	usmc_device_info di;
	usmc_tp_config cfg;
	const char *why = NULL;
	int r;

	if (!usmc_g.cfg.shm || smc.shm_tried)
		return;
	smc.shm_tried = 1;
	r = ctx_ensure(NULL);
	if (r < 0) {
		usmc_rt_log(USMC_LOG_WARN, "shm: not opened: core context: %s",
			    usmc_strerror(r));
		return;
	}
	if (smc.ndevs == USMC_DEVICES_MAX) {
		usmc_rt_log(USMC_LOG_WARN,
			    "shm: not opened: all %d devices in use",
			    USMC_DEVICES_MAX);
		return;
	}
	dev = &smc.devs[smc.ndevs];
	memset(dev, 0, sizeof(*dev));
	memset(&cfg, 0, sizeof(cfg));
	cfg.log = tp_log;
	r = usmc_tp_open("shm", &cfg, &dev->tp);
	if (r < 0) {
		dev->tp = NULL;
		usmc_rt_log(USMC_LOG_WARN, "shm: not opened (SMC-R only): %s",
			    usmc_strerror(r));
		return;
	}
	r = usmc_tp_query_port(dev->tp, &dev->port);
	if (r < 0) {
		why = "query_port";
		goto fail;
	}
	memset(&di, 0, sizeof(di));
	di.kind = USMC_DEV_ISM;
	memcpy(di.gid, dev->port.gid, 16);
	r = usmc_ctx_add_device(smc.ctx, &di);
	if (r != (int)smc.ndevs) {
		why = "core: device not added";
		r = r < 0 ? r : USMC_ERR_INTERNAL;
		goto fail;
	}
	snprintf(dev->tp_name, sizeof(dev->tp_name), "shm");
	dev->ism = 1;
	dev->fd = usmc_tp_get_fd(dev->tp);
	smc.shm_dev = (int)smc.ndevs++;
	usmc_g.stats.transport_opens++;
	usmc_rt_log(USMC_LOG_DEBUG,
		    "device %d: shm opened (SMC-D with peers on this host)",
		    smc.shm_dev);
	usmc_loop_rearm_timer(); /* the loop watches its fd */
	return;
fail:
	usmc_rt_log(USMC_LOG_WARN, "shm: not opened (SMC-R only): %s: %s", why,
		    usmc_strerror(r));
	usmc_tp_close(dev->tp);
	dev->tp = NULL;
}

static int dev_find(uint32_t a, const char *name, const char *opts)
{
	for (unsigned int i = 0; i < smc.ndevs; i++)
		if (!smc.devs[i].ism && smc.devs[i].addr == a &&
		    !strcmp(smc.devs[i].tp_name, name) &&
		    !strcmp(smc.devs[i].tp_opts, opts))
			return (int)i;
	return -1;
}

/* A device was added: the link groups that could add a link on it try
 * (the core decides, usmc_ctx_device_up). Only a device of a pnet can be
 * another's alternate. */
static void dev_added(unsigned int d)
{
	if (smc.ctx && smc.devs[d].pnet_id[0]) {
		usmc_ctx_device_up(smc.ctx, d, usmc_rt_now());
		smc_post();
	}
}

/* Device |d| opened on an interface of a pnet: open the same transport,
 * with the same options, on the first IPv4 address of each other
 * interface of that pnet, so the core has the alternates a link group's
 * second link needs (the kernel finds them by pnet id among the RoCE
 * devices it has). One that cannot open is said and skipped: the link
 * group keeps its one link. */
static void dev_open_alternates(unsigned int d)
{
	const usmc_rt_config *cfg = &usmc_g.cfg;
	char pn[USMC_PNET_ID_LEN + 1] = "";

	if (!smc.devs[d].pnet_id[0])
		return;
	memcpy(pn, smc.devs[d].pnet_id, USMC_PNET_ID_LEN);
	for (unsigned int i = 0; i < cfg->npnet; i++) {
		const usmc_pnet_if *e = &cfg->pnet[i];
		char name[32], opts[sizeof(smc.devs[0].tp_opts)];
		char as[INET_ADDRSTRLEN], why[160];
		struct sockaddr_in la;
		uint32_t a;

		if (memcmp(e->pnet_id, smc.devs[d].pnet_id, USMC_PNET_ID_LEN) ||
		    !strcmp(e->ifname, smc.devs[d].ifname))
			continue;
		if (if_lookup(0, NULL, e->ifname, &a)) {
			usmc_rt_log(USMC_LOG_INFO,
				    "pnet %s: interface %s has no IPv4 "
				    "address: no alternate of device %u on it",
				    pn, e->ifname, d);
			continue;
		}
		snprintf(name, sizeof(name), "%s", smc.devs[d].tp_name);
		snprintf(opts, sizeof(opts), "%s", smc.devs[d].tp_opts);
		if (dev_find(a, name, opts) >= 0)
			continue;
		inet_ntop(AF_INET, &a, as, sizeof(as));
		if (smc.ndevs == USMC_DEVICES_MAX) {
			usmc_rt_log(USMC_LOG_WARN,
				    "pnet %s: no alternate on %s (%s): all %d "
				    "devices in use",
				    pn, e->ifname, as, USMC_DEVICES_MAX);
			return;
		}
		memset(&la, 0, sizeof(la));
		la.sin_family = AF_INET;
		la.sin_addr.s_addr = a;
		if (dev_open(name, opts, &la, why, sizeof(why))) {
			usmc_rt_log(
				USMC_LOG_WARN,
				"pnet %s: alternate on %s (%s) not opened: %s",
				pn, e->ifname, as, why);
			continue;
		}
		usmc_rt_log(USMC_LOG_DEBUG,
			    "device %u: transport %s on %s (%s) opened, "
			    "alternate of device %u in pnet %s",
			    smc.ndevs - 1, name, as, e->ifname, d, pn);
		dev_added(smc.ndevs - 1);
	}
}

/* The device for a connection from |local| over transport |name| with
 * options |opts|: its index, or -NOSMCRDEV with |detail| (the reason it
 * cannot open). Devices differing only in options are distinct. */
static int dev_get(const char *name, const char *opts,
		   const struct sockaddr_in *local, char *detail, size_t dlen)
{
	uint32_t a = local->sin_addr.s_addr;
	char as[INET_ADDRSTRLEN], why[160];
	rt_dev_fail *f = NULL;
	uint64_t now;
	unsigned int i;
	int found = dev_find(a, name, opts);

	if (found >= 0)
		return found;
	inet_ntop(AF_INET, &local->sin_addr, as, sizeof(as));
	now = usmc_rt_now();
	for (i = 0; i < smc.nfails; i++)
		if (smc.fails[i].addr == a &&
		    !strcmp(smc.fails[i].tp_name, name) &&
		    !strcmp(smc.fails[i].tp_opts, opts))
			f = &smc.fails[i];
	if (f && now < f->retry_at) {
		snprintf(detail, dlen, "%s", f->why);
		return -(int)USMC_DECL_NOSMCRDEV;
	}
	if (smc.ndevs == USMC_DEVICES_MAX) {
		snprintf(detail, dlen,
			 "no device for %s over %s: all %d devices in use", as,
			 name, USMC_DEVICES_MAX);
		if (!smc.table_full_said)
			usmc_rt_log(USMC_LOG_WARN, "%s", detail);
		smc.table_full_said = 1;
		return -(int)USMC_DECL_NOSMCRDEV;
	}
	if (dev_open(name, opts, local, why, sizeof(why)) == 0) {
		rt_dev *d = &smc.devs[smc.ndevs - 1];

		if (f) /* it opens now: forget the failure */
			*f = smc.fails[--smc.nfails];
		usmc_rt_log(USMC_LOG_DEBUG,
			    "device %u: transport %s on %s opened (options "
			    "\"%s\", udp port %u, mtu enum %u)",
			    smc.ndevs - 1, name, as, opts, d->port.udp_port,
			    d->port.active_mtu);
		found = (int)smc.ndevs - 1;
		dev_added((unsigned int)found);
		dev_open_alternates((unsigned int)found);
		usmc_loop_rearm_timer(); /* the loop watches its fd */
		return found;
	}
	snprintf(detail, dlen, "%s", why);
	/* once per device; a retry that fails again only at debug level */
	usmc_rt_log(f ? USMC_LOG_DEBUG : USMC_LOG_WARN, "no device for %s: %s",
		    as, why);
	if (!f && smc.nfails < DEV_FAILS_MAX) {
		f = &smc.fails[smc.nfails++];
		snprintf(f->tp_name, sizeof(f->tp_name), "%s", name);
		snprintf(f->tp_opts, sizeof(f->tp_opts), "%s", opts);
		f->addr = a;
	}
	if (f) {
		snprintf(f->why, sizeof(f->why), "%s", why);
		f->retry_at = now + DEV_RETRY_NS;
	}
	return -(int)USMC_DECL_NOSMCRDEV;
}

/* The transport for a connection: the one its deciding smc rule names
 * (docs/rules.md, "transport"), else USMC_TRANSPORT; its options in
 * |opts|: USMC_TRANSPORT_OPTIONS, then the rule's "options" (a key given
 * in both: the rule's wins, being later). The rules are evaluated again
 * with the connection's real addresses. */
static const char *conn_transport(const usmc_sock *s,
				  const struct sockaddr_in *local,
				  const struct sockaddr_in *peer, char *opts,
				  size_t olen)
{
	const usmc_rules *rs = &usmc_g.cfg.rules;
	const usmc_rule *r;
	usmc_rule_net ln, rn;
	usmc_rule_query q = {program_invocation_short_name, NULL, NULL, s->port,
			     0};
	int idx;

	snprintf(opts, olen, "%s", usmc_g.cfg.transport_options);
	if (!usmc_rules_name_transport(rs))
		return usmc_g.cfg.transport;
	if (!usmc_rule_net_from_sa(&ln, local))
		q.local = &ln;
	if (!usmc_rule_net_from_sa(&rn, peer))
		q.remote = &rn;
	if (usmc_rules_eval(rs, &q, &idx, NULL) != USMC_RULE_SMC || idx < 0)
		return usmc_g.cfg.transport;
	r = &rs->v[idx];
	if (r->options[0])
		snprintf(opts, olen, "%s%s%s", usmc_g.cfg.transport_options,
			 usmc_g.cfg.transport_options[0] ? "," : "",
			 r->options);
	return r->transport[0] ? r->transport : usmc_g.cfg.transport;
}

int usmc_smc_conn_start(usmc_sock *s, int is_server, char *detail, size_t dlen)
{
	char opts[USMC_TP_OPTS_MAX + USMC_RULE_OPTS];
	const char *tp;
	struct sockaddr_in local, peer;
	usmc_conn_params p;
	int dev, r;

	if (usmc_sock_addr(s, 0, &local) || usmc_sock_addr(s, 1, &peer))
		return USMC_ERR_CONNRESET;
	if (is_server && s->rule_tcp) {
		/* a tcp rule for this peer: decline its Proposal */
		snprintf(detail, dlen, "%s", s->rule_why);
		send_decline(s, USMC_DECL_PEERNOSMC,
			     s->clc_buf ? s->clc_buf[7] >> 4 : 2);
		return USMC_DECL_PEERNOSMC;
	}
	tp = conn_transport(s, &local, &peer, opts, sizeof(opts));
	shm_ensure(); /* before the Proposal (or its answer) is made */
	dev = dev_get(tp, opts, &local, detail, dlen);
	if (dev < 0 && smc.shm_dev >= 0) {
		/* no RoCE device: SMC-D alone, which a peer on this host
		 * takes (the core offers SMC-R only on an RNIC) */
		usmc_rt_log(USMC_LOG_DEBUG,
			    "fd %d: no RoCE device (%s): SMC-D only", s->fd,
			    detail);
		dev = smc.shm_dev;
	}
	if (dev < 0) {
		/* No device: tell the peer, who is waiting for CLC. The
		 * server has read the whole Proposal already. */
		send_decline(s, (uint32_t)-dev,
			     is_server && s->clc_buf ? s->clc_buf[7] >> 4 : 2);
		return -dev;
	}
	memset(&p, 0, sizeof(p));
	p.role = is_server ? USMC_ROLE_SERVER : USMC_ROLE_CLIENT;
	p.ipv4.addr = ntohl(local.sin_addr.s_addr);
	local_prefix(local.sin_addr.s_addr, &p.ipv4.prefix_len);
	p.peer_ipv4 = ntohl(peer.sin_addr.s_addr);
	p.dev_idx = (unsigned int)dev;
	r = usmc_conn_new(smc.ctx, &p, usmc_rt_now(), &s->conn);
	if (r < 0) {
		s->conn = NULL;
		snprintf(detail, dlen, "core: %s", usmc_strerror(r));
		send_decline(s, USMC_DECL_INTERR, 2);
		return r == USMC_ERR_NOMEM ? (int)USMC_DECL_MEM
					   : (int)USMC_DECL_INTERR;
	}
	s->smc_dev = dev;
	usmc_conn_set_user(s->conn, s);
	if (s->nodelay)
		usmc_conn_set_nodelay(s->conn, 1);
	smc_post();
	return 0;
}

int usmc_smc_has_lgr(const uint8_t peer_id[8])
{
	usmc_lgr_info info;

	if (!smc.ctx)
		return 0;
	for (usmc_lgr *g = usmc_ctx_next_lgr(smc.ctx, NULL); g;
	     g = usmc_ctx_next_lgr(smc.ctx, g)) {
		usmc_lgr_get_info(g, &info);
		if (info.role != USMC_ROLE_SERVER ||
		    memcmp(info.peer_system_id, peer_id, 8))
			continue;
		if (info.smcd)
			return 1; /* no link: usable once it exists */
		for (unsigned int i = 0; i < info.nlinks && i < 3; i++)
			if (info.links[i].active)
				return 1;
	}
	return 0;
}

void usmc_smc_set_nodelay(usmc_sock *s, int on)
{
	if (s->conn) {
		usmc_conn_set_nodelay(s->conn, on);
		smc_post();
	}
}

int usmc_smc_clc_in(usmc_sock *s, const uint8_t *msg, size_t len)
{
	int r = usmc_conn_clc_recv(s->conn, msg, len, usmc_rt_now());

	smc_post();
	return r;
}

int usmc_smc_clc_flush(usmc_sock *s)
{
	const uint8_t *d;
	size_t n;

	if (!s->conn)
		return 0;
	while (usmc_conn_clc_pending(s->conn, &d, &n) >= 0 && n) {
		ssize_t w = usmc_real()->send(s->fd, d, n,
					      MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 1;
			/* a peer that reset, once per connection: info (the
			 * handshake's failure is logged, the app told) */
			usmc_rt_log(USMC_LOG_INFO, "fd %d: CLC send: %s", s->fd,
				    strerror(errno));
			return -1;
		}
		usmc_conn_clc_consume(s->conn, (size_t)w);
	}
	return 0;
}

int usmc_smc_decline(usmc_sock *s, uint32_t code)
{
	int r = usmc_conn_fallback(s->conn, code, usmc_rt_now());

	smc_post();
	return r;
}

void usmc_smc_conn_free(usmc_sock *s)
{
	usmc_conn *c = s->conn;

	if (!c)
		return;
	s->conn = NULL;
	usmc_conn_set_user(c, NULL);
	conn_del(c);
}

/* Posts made meanwhile on device |d| may leave in one syscall
 * (usmc_tp_batch). */
static void tp_batch(unsigned int d, int on)
{
	if (d < smc.ndevs)
		usmc_tp_batch(smc.devs[d].tp, on);
}

/* A connection's posts go to the device of its link, which after a
 * failover is another device of its pnet: batch them all. */
static void conn_batch(const usmc_sock *s, int on)
{
	unsigned int d0 = (unsigned int)s->smc_dev;

	if (d0 >= smc.ndevs)
		return;
	if (!smc.devs[d0].pnet_id[0]) {
		tp_batch(d0, on);
		return;
	}
	for (unsigned int d = 0; d < smc.ndevs; d++)
		if (!memcmp(smc.devs[d].pnet_id, smc.devs[d0].pnet_id,
			    USMC_PNET_ID_LEN))
			tp_batch(d, on);
}

/* SMC-D: a read or write of more than a piece goes in pieces, each a core
 * call whose cursor update (a header move and a signal) leaves before the
 * next piece is copied: the peer's writer gets the room the first piece
 * freed, or its reader the first piece, while we copy the rest. With one
 * copy each way and a ring no larger than the application's writes, the
 * two copies then overlap instead of taking turns. Returns the bytes
 * moved, else the first call's answer. */
static usmc_ssize ism_pieces(usmc_sock *s, uint8_t *rbuf, const uint8_t *wbuf,
			     size_t len, size_t piece)
{
	size_t done = 0;
	uint64_t now = usmc_rt_now(); /* a few microseconds for all pieces */
	usmc_ssize r;

	do {
		size_t n = len - done < piece ? len - done : piece;

		r = rbuf ? usmc_conn_read(s->conn, rbuf + done, n, now)
			 : usmc_conn_write(s->conn, wbuf + done, n, now);
		smc_post();
		if (r <= 0)
			break;
		done += (size_t)r;
		if ((size_t)r < n)
			break;
	} while (done < len && s->conn);
	return done ? (usmc_ssize)done : r;
}

usmc_ssize usmc_smc_read(usmc_sock *s, void *buf, size_t len)
{
	usmc_ssize r;

	if (s->rx_piece && len > s->rx_piece)
		return ism_pieces(s, buf, NULL, len, s->rx_piece);
	/* a consumer-cursor update goes out with whatever else is due */
	conn_batch(s, 1);
	r = usmc_conn_read(s->conn, buf, len, usmc_rt_now());
	smc_post();
	conn_batch(s, 0);
	return r;
}

usmc_ssize usmc_smc_write(usmc_sock *s, const void *buf, size_t len)
{
	usmc_ssize r;

	if (s->tx_piece && len > s->tx_piece)
		return ism_pieces(s, NULL, buf, len, s->tx_piece);
	/* the RDMA WRITE and the CDC behind it leave in one syscall */
	conn_batch(s, 1);
	r = usmc_conn_write(s->conn, buf, len, usmc_rt_now());
	smc_post();
	conn_batch(s, 0);
	return r;
}

size_t usmc_smc_readable(usmc_sock *s)
{
	return s->conn ? usmc_conn_readable(s->conn) : 0;
}

size_t usmc_smc_writable(usmc_sock *s)
{
	return s->conn ? usmc_conn_writable(s->conn) : 0;
}

size_t usmc_smc_unsent(usmc_sock *s)
{
	return s->conn ? usmc_conn_unsent(s->conn) : 0;
}

int usmc_smc_peer_done(usmc_sock *s)
{
	int st;

	if (!s->conn)
		return 1;
	st = usmc_conn_state(s->conn);
	return st == SMC_APPCLOSEWAIT1 || st == SMC_APPCLOSEWAIT2 ||
	       st == SMC_PEERCLOSEWAIT2 || st == SMC_APPFINCLOSEWAIT ||
	       st == SMC_CLOSED || st == SMC_PROCESSABORT ||
	       st == SMC_PEERABORTWAIT;
}

int usmc_smc_error(usmc_sock *s)
{
	return s->conn ? usmc_conn_error(s->conn) : 0;
}

int usmc_smc_shutdown_write(usmc_sock *s)
{
	int r = usmc_conn_shutdown_write(s->conn, usmc_rt_now());

	smc_post();
	return r;
}

/* Keeps |fd|'s TCP connection open on a private fd until |c|'s close flag
 * has completed. Without a free fd it is not held (the peer may then see
 * the TCP close first and take the usual grace). */
static void hold_tcp(usmc_conn *c, int fd)
{
	struct stat st;
	int dfd;

	if (usmc_conn_close_done(c))
		return;
	if (smc.n_holds == smc.cap_holds) {
		size_t n = smc.cap_holds ? smc.cap_holds * 2 : 8;
		tcp_hold *h = realloc(smc.holds, n * sizeof(*h));

		if (!h)
			return;
		smc.holds = h;
		smc.cap_holds = n;
	}
	/* never 0-2: a program may close and reopen its standard fds */
	dfd = usmc_real()->fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return;
	if (fstat(dfd, &st)) {
		usmc_real()->close(dfd);
		return;
	}
	smc.holds[smc.n_holds++] =
		(tcp_hold){.conn = c,
			   .fd = dfd,
			   .dev = st.st_dev,
			   .ino = st.st_ino,
			   .end = usmc_rt_now() + TCP_HOLD_NS};
}

int usmc_smc_close(usmc_sock *s, int hold)
{
	usmc_conn *c = s->conn;
	int r;

	r = usmc_conn_close(c, usmc_rt_now());
	if (hold && r >= 0 && usmc_conn_state(c) != SMC_CLOSED)
		hold_tcp(c, s->fd);
	/* The close protocol outlives the fd: the conn becomes an orphan,
	 * deleted on USMC_EV_CLOSED (or now, if already closed). */
	s->conn = NULL;
	usmc_conn_set_user(c, NULL);
	if (usmc_conn_state(c) == SMC_CLOSED || r < 0)
		orphan_add(c);
	else
		smc.n_closing++;
	smc_post();
	return r;
}

size_t usmc_smc_closing(void)
{
	return smc.n_closing;
}

int usmc_smc_abort(usmc_sock *s)
{
	int r = usmc_conn_abort(s->conn, usmc_rt_now());

	smc_post();
	return r;
}

void usmc_smc_peer_gone(usmc_sock *s)
{
	usmc_conn_peer_gone(s->conn, usmc_rt_now());
	smc_post();
}

void usmc_smc_exit_lgrs(uint64_t end)
{
	size_t n = 0;

	if (!smc.ctx)
		return;
	if (usmc_ctx_shutdown_idle(smc.ctx, usmc_rt_now()) <= 0)
		return;
	smc_post();
	/* the DELETE_LINKs leave once the peers have been quiet for 50 ms;
	 * each lgr is freed 100 ms after the peer's own DELETE_LINK ALL came
	 * back, or after the core's 500 ms wait for it (USMC_TERM_WAIT) */
	do {
		n = 0;
		for (usmc_lgr *l = usmc_ctx_next_lgr(smc.ctx, NULL); l;
		     l = usmc_ctx_next_lgr(smc.ctx, l))
			n++;
	} while (n && usmc_wait(end, USMC_INTR_NONE) != ETIMEDOUT);
}

void usmc_smc_info(usmc_sock *s, usmc_sock_info *info)
{
	usmc_conn_info ci;

	usmc_conn_get_info(s->conn, &ci);
	info->lgr_id = ci.lgr_id;
	info->link_id = ci.link_id;
	info->smcd = usmc_conn_get_mode(s->conn) == USMC_MODE_SMCD;
	if (ci.smc_version)
		info->smc_version = ci.smc_version;
	usmc_smc_dev_info(s, &info->device, info->transport,
			  sizeof(info->transport), info->device_addr,
			  info->local_gid);
}

/* The device of link |link_id| of link group |lgr_id|, or -1. */
static int link_dev(uint32_t lgr_id, uint8_t link_id)
{
	usmc_lgr_info li;

	for (usmc_lgr *g = smc.ctx ? usmc_ctx_next_lgr(smc.ctx, NULL) : NULL; g;
	     g = usmc_ctx_next_lgr(smc.ctx, g)) {
		usmc_lgr_get_info(g, &li);
		if (li.id != lgr_id)
			continue;
		for (unsigned int i = 0; i < li.nlinks && i < 3; i++)
			if (li.links[i].link_id == link_id)
				return li.links[i].dev_idx;
	}
	return -1;
}

int usmc_smc_dev_info(const usmc_sock *s, int *idx, char *tp, size_t tplen,
		      char addr[16], uint8_t gid[16])
{
	const rt_dev *d;
	usmc_conn_info ci;
	int di = s->smc_dev;

	if (!s->conn || s->smc_dev < 0 || (unsigned int)s->smc_dev >= smc.ndevs)
		return -1;
	if (usmc_conn_get_mode(s->conn) == USMC_MODE_SMCD) {
		const ism_ent *e = ent_by_conn(s->conn);

		/* SMC-D runs on the shm device, not on the RNIC the
		 * handshake was made for */
		if (e && e->dev < smc.ndevs)
			di = (int)e->dev;
	}
	/* the device of the link it is on now, once it has one */
	usmc_conn_get_info(s->conn, &ci);
	if (ci.link_id && !smc.devs[di].ism) {
		int ld = link_dev(ci.lgr_id, ci.link_id);

		if (ld >= 0 && (unsigned int)ld < smc.ndevs)
			di = ld;
	}
	d = &smc.devs[di];
	*idx = di;
	snprintf(tp, tplen, "%s", d->tp_name);
	inet_ntop(AF_INET, &d->addr, addr, 16);
	memcpy(gid, d->port.gid, 16);
	return 0;
}

static const char *role_name(usmc_role r)
{
	return r == USMC_ROLE_SERVER ? "server" : "client";
}

void usmc_smc_stat_links(void (*put)(const char *fmt, ...)
				 __attribute__((format(printf, 1, 2))))
{
	usmc_lgr_info li;

	for (usmc_lgr *g = smc.ctx ? usmc_ctx_next_lgr(smc.ctx, NULL) : NULL; g;
	     g = usmc_ctx_next_lgr(smc.ctx, g)) {
		usmc_lgr_get_info(g, &li);
		put("lgr\t%u\t%s\t%d\t%s\t%u\t%u\t"
		    "%02x%02x%02x%02x%02x%02x%02x%02x\n",
		    li.id, role_name(li.role), li.smc_version,
		    li.smcd ? "SMCD" : usmc_lgr_type_name(li.type), li.nconns,
		    li.nlinks, li.peer_system_id[0], li.peer_system_id[1],
		    li.peer_system_id[2], li.peer_system_id[3],
		    li.peer_system_id[4], li.peer_system_id[5],
		    li.peer_system_id[6], li.peer_system_id[7]);
		for (unsigned int i = 0; i < li.nlinks && i < 3; i++) {
			char dev[64] = "-", lgid[INET6_ADDRSTRLEN] = "-";
			char pgid[INET6_ADDRSTRLEN] = "-", q[4][24];
			unsigned int di = li.links[i].dev_idx;
			usmc_tp_qp_stats qs;
			const rt_link *rl = NULL;

			if (di < smc.ndevs) {
				const rt_dev *d = &smc.devs[di];
				char a[16];

				inet_ntop(AF_INET, &d->addr, a, sizeof(a));
				snprintf(dev, sizeof(dev), "%u:%s@%s", di,
					 d->tp_name, a);
				inet_ntop(AF_INET6, d->port.gid, lgid,
					  sizeof(lgid));
				for (rl = d->links; rl; rl = rl->next)
					if (rl->qpn == li.links[i].qp_num)
						break;
			}
			inet_ntop(AF_INET6, li.links[i].peer_gid, pgid,
				  sizeof(pgid));
			/* the transport's recovery counters, "-" where it
			 * keeps none (verbs, sim) or the QP is gone */
			if (rl && usmc_tp_query_qp_stats(rl->qp, &qs) == 0) {
				snprintf(q[0], sizeof(q[0]), "%" PRIu64,
					 qs.retransmits);
				snprintf(q[1], sizeof(q[1]), "%" PRIu64,
					 qs.nak_seq_rx);
				snprintf(q[2], sizeof(q[2]), "%" PRIu64,
					 qs.rnr_nak_rx);
				snprintf(q[3], sizeof(q[3]), "%" PRIu64,
					 qs.retry_timeouts);
			} else {
				for (int k = 0; k < 4; k++)
					snprintf(q[k], sizeof(q[k]), "-");
			}
			put("link\t%u\t%u\t%s\t%s\t%s\t%s\t%u\t%u\t%" PRIu64
			    "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64
			    "\t%s\t%s\t%s\t%s\n",
			    li.id, li.links[i].link_id,
			    usmc_link_state_name(li.links[i].state), dev, lgid,
			    pgid, li.links[i].qp_num, li.links[i].peer_qpn,
			    li.links[i].tx_bytes, li.links[i].rx_bytes,
			    li.links[i].tx_wrs, li.links[i].rx_wrs, q[0], q[1],
			    q[2], q[3]);
		}
	}
}

/* Async events (ibv_get_async_event's): a port or device that goes down,
 * or a QP in error, takes its links down (on this device only), each in a
 * core call of its own made here, after the completions' calls returned
 * (docs/core.md "Failover": another link takes the connections, or the
 * group ends). They are read right after a batch of completions
 * (usmc_tp_evs): a failed completion of a QP an event names takes its
 * link down with the event's reason. */
static void tp_event(unsigned int d, const usmc_tp_event *ev, uint64_t now)
{
	rt_dev *dev = &smc.devs[d];
	uint32_t qpns[256];
	size_t n = 0;
	rt_link *rl;

	/* a port coming up is news, not a problem */
	usmc_rt_log(ev->type == USMC_TP_EV_PORT_ACTIVE ? USMC_LOG_INFO
						       : USMC_LOG_WARN,
		    "device %u (%s): async event %s (QPN %u)", d, dev->tp_name,
		    usmc_tp_event_name(ev->type), ev->qp_num);
	if (ev->type == USMC_TP_EV_PORT_ACTIVE) {
		/* as smc_ib_port_event_work: the link groups that lost a link
		 * here may add one again */
		usmc_ctx_device_up(smc.ctx, d, now);
		smc_post();
		return;
	}
	for (rl = dev->links; rl && n < 256; rl = rl->next)
		if (ev->type != USMC_TP_EV_QP_FATAL || rl->qpn == ev->qp_num)
			qpns[n++] = rl->qpn;
	/* a link down may take other links with it: look each up */
	for (size_t i = 0; i < n; i++) {
		for (rl = dev->links; rl; rl = rl->next)
			if (rl->qpn == qpns[i])
				break;
		if (rl) {
			usmc_link_down_why(rl->link, usmc_tp_event_reason(ev),
					   now);
			smc_post();
		}
	}
}

static void tp_async_events(unsigned int d, const usmc_tp_evs *evs,
			    uint64_t now)
{
	usmc_tp_event ev;

	for (int i = 0; i < evs->n; i++)
		tp_event(d, &evs->ev[i], now);
	while (usmc_tp_get_async_event(smc.devs[d].tp, &ev) == 1)
		tp_event(d, &ev, now);
}

/* Takes the shm device's signals of our DMBs (the peer moved a header:
 * the core re-reads it). */
static void ism_signals(unsigned int d, int fast)
{
	rt_dev *dev = &smc.devs[d];
	usmc_wc wcs[32];
	int n;

	do {
		n = fast ? usmc_tp_shm_take(dev->tp, wcs, 32)
			 : usmc_tp_poll_cq(dev->tp, wcs, 32);
		if (n < 0) {
			usmc_rt_log(USMC_LOG_ERR,
				    "device %u (shm): poll_cq: %s", d,
				    usmc_strerror(n));
			break;
		}
		for (int i = 0; i < n; i++) {
			ism_ent *e = ent_by_id(wcs[i].wr_id);

			if (wcs[i].opcode != USMC_WC_DMB_SIGNAL || !e ||
			    !e->conn || !e->dmb)
				continue;
			usmc_conn_on_dmb_signal(e->conn, e->dmb->token,
						usmc_rt_now());
			smc_drain_wrs();
		}
	} while (n == 32);
	smc_post();
}

/* The shm device: its signals, then its events. PEER_GONE of a DMB or an
 * attachment fails the connection as a peer gone (ECONNRESET once the data
 * is read; nothing if its close had come, an orderly end). The signals a
 * peer set before it went are queued ahead of its PEER_GONE by the very
 * call that reads the event, so they are taken again before the events
 * act: a close flag moved just before the peer let go is an orderly
 * close, not a reset. */
static void ism_dev_event(unsigned int d)
{
	rt_dev *dev = &smc.devs[d];
	usmc_tp_event evs[16];
	int nev;

	ism_signals(d, 0);
	do {
		for (nev = 0; nev < 16 &&
			      usmc_tp_get_async_event(dev->tp, &evs[nev]) == 1;
		     nev++)
			;
		if (!nev)
			break;
		ism_signals(d, 0);
		for (int i = 0; i < nev; i++) {
			ism_ent *e;

			if (evs[i].type != USMC_TP_EV_PEER_GONE) {
				usmc_rt_log(USMC_LOG_WARN,
					    "device %u (shm): async event %s",
					    d, usmc_tp_event_name(evs[i].type));
				continue;
			}
			e = ent_by_id((uint64_t)(uintptr_t)evs[i].context);
			if (!e || !e->conn)
				continue;
			usmc_rt_log(USMC_LOG_DEBUG,
				    "device %u (shm): the peer of DMB %" PRIu64
				    " is gone",
				    d, e->id);
			e->failed = 1; /* its DMB may be gone: no more moves */
			usmc_conn_peer_gone(e->conn, usmc_rt_now());
			smc_post();
		}
	} while (nev == 16);
}

struct usmc_tp *usmc_smc_shm_tp(unsigned int *idx)
{
	if (smc.shm_dev < 0 || !smc.devs[smc.shm_dev].tp)
		return NULL;
	*idx = (unsigned int)smc.shm_dev;
	return smc.devs[smc.shm_dev].tp;
}

struct usmc_tp *usmc_smc_shm_tp_busy(unsigned int *idx)
{
	return smc.ism_conns ? usmc_smc_shm_tp(idx) : NULL;
}

void usmc_smc_shm_signals(void)
{
	if (smc.shm_dev >= 0 && smc.devs[smc.shm_dev].tp)
		ism_signals((unsigned int)smc.shm_dev, 1);
}

/* Completions of one QP that no link has any more, seen in a row. */
typedef struct {
	uint32_t qpn;
	usmc_wc_status status; /* the first one's */
	unsigned int n;
} stray_run;

static void stray_log(unsigned int d, stray_run *r)
{
	usmc_rt_log(USMC_LOG_DEBUG,
		    "device %u: %u completion%s for QPN %u, which no link has "
		    "(the first %s; %" PRIu64 " such on the device)",
		    d, r->n, r->n == 1 ? "" : "s", r->qpn,
		    usmc_wc_status_str(r->status), smc.devs[d].stray_wcs);
	r->n = 0;
}

void usmc_smc_on_dev_event(unsigned int d)
{
	usmc_wc wcs[32];
	stray_run stray;
	uint64_t now;
	usmc_tp_evs evs;
	rt_dev *dev;
	int n;

	if (d >= smc.ndevs)
		return;
	dev = &smc.devs[d];
	if (dev->ism) {
		ism_dev_event(d);
		return;
	}
	now = usmc_rt_now();
	/* ACKs, and what the completions make the core send, leave together */
	tp_batch(d, 1);
	evs.n = 0;
	stray.n = 0;
	do {
		n = usmc_tp_poll_cq(dev->tp, wcs, 32);
		if (n < 0) {
			usmc_rt_log(USMC_LOG_ERR, "device %u (%s): poll_cq: %s",
				    d, dev->tp_name, usmc_strerror(n));
			break;
		}
		if (n > 0)
			usmc_tp_evs_read(dev->tp, &evs);
		for (int i = 0; i < n; i++) {
			rt_link *rl;
			int why;

			/* QPNs are the device's own: look only among its
			 * links */
			for (rl = dev->links; rl; rl = rl->next)
				if (rl->qpn == wcs[i].qp_num)
					break;
			why = wcs[i].status != USMC_WC_SUCCESS
				      ? usmc_tp_evs_reason(&evs, wcs[i].qp_num)
				      : -1;
			if (rl && why >= 0) {
				usmc_link_down_why(rl->link,
						   (usmc_link_down_reason)why,
						   now);
				smc_drain_wrs();
				continue;
			}
			if (rl) {
				usmc_link_on_wc(rl->link, &wcs[i], now);
				smc_drain_wrs();
				continue;
			}
			/* a QP already destroyed (its flushes): no link's; a
			 * run of them for one QP is one line */
			dev->stray_wcs++;
			if (stray.n && stray.qpn != wcs[i].qp_num)
				stray_log(d, &stray);
			if (!stray.n++) {
				stray.qpn = wcs[i].qp_num;
				stray.status = wcs[i].status;
			}
		}
	} while (n == 32);
	if (stray.n)
		stray_log(d, &stray);
	smc_post();
	tp_async_events(d, &evs, now);
	tp_batch(d, 0);
}

void usmc_smc_on_tp_event(void)
{
	/* a device opened by a core call made here is polled too */
	for (unsigned int d = 0; d < smc.ndevs; d++)
		usmc_smc_on_dev_event(d);
}

uint64_t usmc_smc_expiry(void)
{
	uint64_t t = smc.ctx ? usmc_ctx_get_expiry(smc.ctx) : UINT64_MAX;

	for (size_t i = 0; i < smc.n_holds; i++)
		if (smc.holds[i].end < t)
			t = smc.holds[i].end;
	return t;
}

void usmc_smc_on_timer(uint64_t now)
{
	if (smc.ctx && usmc_ctx_get_expiry(smc.ctx) <= now) {
		usmc_ctx_handle_expiry(smc.ctx, now);
		smc_post();
	} else if (smc.n_holds) {
		holds_check();
	}
}

void usmc_smc_armed(uint64_t when)
{
	smc.armed = when;
}
