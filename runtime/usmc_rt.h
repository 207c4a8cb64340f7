/* SPDX-License-Identifier: MIT */
/*
 * Runtime internals shared by the runtime sources. Not installed.
 *
 * Threads: one global lock (usmc_g.lock) serialises the fd table, the core
 * ctx and the transport; docs/threads.md gives every thread, lock, lock
 * order, thread-local and re-entry path.
 */
#ifndef USMC_RT_H
#define USMC_RT_H

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "usmc.h"
#include "usmc_err.h"
#include "usmc_core.h"
#include "usmc_rules.h"

/* SMC_CLC_DECL_* values the runtime itself produces. */
#define USMC_DECL_MEM	    0x01010000u
#define USMC_DECL_PEERNOSMC 0x03010000u
#define USMC_DECL_NOSMCRDEV 0x03030002u
#define USMC_DECL_PEERDECL  0x05000000u
#define USMC_DECL_INTERR    0x09990000u

/* usmc_parse_size parses "64M", "1k", "2G" (binary units). Returns 0 or -1. */
int usmc_parse_size(const char *s, uint64_t *out);

/* The shm DMB (dmb_size): the CLC's SMC-D sizes, 16 KiB to 1 MiB. A
 * larger ring speeds a stream (its writer fills while its reader drains)
 * but at 1 MiB slowed small messages (more cache lines cycle through);
 * 256 KiB was faster than 64 KiB at both, docs/runtime.md "shm". */
#define USMC_DMB_SIZE_MIN     (16u * 1024)
#define USMC_DMB_SIZE_MAX     (1024u * 1024)
#define USMC_DMB_SIZE_DEFAULT (256u * 1024)

/* Longest transport options string ("key=value,..."), with its NUL. */
#define USMC_TP_OPTS_MAX 256

/* The pnet table (USMC_PNET, "set pnet"): interface names with the pnet
 * id each belongs to, as the kernel's smc_pnet table. A device opened on
 * an interface of a pnet has the devices on the pnet's other interfaces
 * as alternates (docs/runtime.md, "pnet"). */
#define USMC_PNET_IFS_MAX 16
#define USMC_PNET_ID_LEN  16 /* SMC_MAX_PNETID_LEN */
typedef struct usmc_pnet_if {
	char ifname[16];		/* IFNAMSIZ, NUL terminated */
	char pnet_id[USMC_PNET_ID_LEN]; /* upper case, zero padded */
} usmc_pnet_if;

typedef struct usmc_rt_config {
	char transport[32];
	/* passed to every device the runtime opens (a rule's "options" go
	 * after them): USMC_TRANSPORT_OPTIONS, "set transport_options" */
	char transport_options[USMC_TP_OPTS_MAX];
	/* user EIDs offered and accepted (SMC-Rv2), blank padded upper
	 * case; ueid_cnt 0: the default USMC_UEID_DEFAULT */
	char ueid[USMC_UEID_MAX][32];
	unsigned int ueid_cnt;
	uint16_t softroce_port;
	int smc_ports_set;
	usmc_portset smc_ports;
	/* USMC_RULES, then USMC_SMC_PORTS (index rules_ports_at), then the
	 * config file (docs/rules.md) */
	usmc_rules rules;
	int rules_ports_at;
	int clc_wait_ms;
	/* TEST_LINK: idle time before one is sent (0: never) and how long
	 * its answer may take (usmc_settings.testlink_time/_wait) */
	int testlink_ms, testlink_wait_ms;
	int spin_us; /* usmc_wait's spin before it sleeps (usmc_loop.c) */
	/* the shm device's DMB per connection (usmc_settings.dmb_size) */
	uint32_t dmb_size;
	int debug;
	/* USMC_LOG_LEVEL / "set log_level": a USMC_LOG_* level, 0 = not set
	 * (then debug if |debug|, else warn) */
	int log_level;
	char log_file[256]; /* USMC_LOG_FILE / "set log_file"; "" = stderr */
	/* the config file whose rules and settings were read; "" = none */
	char conf_path[256];
	/* SMC TCP option by eBPF (usmc_synopt): 0 off (explicit rules only),
	 * 1 auto (when it loads) */
	int synopt;
	/* the shm device (SMC-D with same-host peers): 1 on, 0 off */
	int shm;
	char cgroup[256]; /* cgroup v2 dir to attach to; "" = our own */
	usmc_pnet_if pnet[USMC_PNET_IFS_MAX];
	unsigned int npnet; /* 0: no pnet, one link per link group */
	/* per-peer decision on short-lived connections (USMC_SHORTCONN) */
	usmc_shortconn shortconn;
} usmc_rt_config;

/* The pnet id of interface |ifname| in |cfg|'s table, or NULL. */
const char *usmc_pnet_of(const usmc_rt_config *cfg, const char *ifname);

/* Handshake sub-states of USMC_SOCK_HANDSHAKE. */
enum usmc_hs {
	USMC_HS_NONE = 0,
	USMC_HS_TCP_CONNECT, /* nonblocking TCP connect in progress */
	USMC_HS_WAIT_FIRST,  /* server: waiting for a CLC eyecatcher */
	USMC_HS_PROPOSAL,    /* server: reading the Proposal, before accept */
	USMC_HS_UNCLAIMED,   /* server: Proposal read; waits for the process
				that uses the socket (usmc_sock_use) */
	USMC_HS_CLC,	     /* CLC messages being exchanged */
	USMC_HS_QUEUED,	     /* server: waits for a first contact with the
				same peer to end (server_begin) */
};

#define USMC_CLC_BUF_MAX 4096

typedef struct usmc_sock usmc_sock;
struct usmc_sock {
	int fd;
	usmc_sock_mode mode;
	enum usmc_hs hs;
	int is_server;
	int app_nonblock;
	/* errno a failed handshake reports */
	int error;
	int error_reported;
	uint32_t fb_code;
	uint32_t peer_diag;
	/* fell back after sending a Decline: the first read looks for a
	 * crossed Decline of the peer's (usmc_hs_crossed_decline) */
	int decl_check;
	char fb_detail[128];
	usmc_conn *conn;
	/* CLC message being read: |clc_need| is its length once the header
	 * has been peeked, 0 before. */
	uint8_t *clc_buf;
	size_t clc_have, clc_need;
	uint64_t deadline;  /* ns, 0 = none: next timer of this socket */
	uint64_t wait_end;  /* server: end of the wait for a CLC byte */
	uint64_t hs_guard;  /* end of the whole CLC exchange */
	uint64_t queue_end; /* server: end of the wait in USMC_HS_QUEUED */
	/* server: the Proposal's sender (the lgr key), and whether this
	 * handshake may create the link group with it (first contact) */
	uint8_t peer_id[8];
	int fc_hold;
	usmc_sock *fc_next;  /* fc_release's work list */
	uint32_t ep_events;  /* events registered with the loop, 0 = none */
	uint16_t port;	     /* listener's port / client's remote port */
	uint64_t bytes_sent; /* both modes */
	uint64_t bytes_recv;
	/* handed to the kernel for good (usmc_sock_kernel_mark): its fds'
	 * data calls bypass usmc, so the byte counts go on from the
	 * kernel's, taken then (usmc_sock_bytes) */
	int kernel;
	int kernel_err; /* errno that kept its fd usmc's, logged once */
	uint64_t kbase_sent, kbase_recv;
	/* fell back before usmc moved a byte of its own (CLC) over its TCP
	 * connection: the kernel's counts are all the app's */
	int kclean;
	int smc_version;
	/* SMC-D: reads and writes longer than these go in pieces, each
	 * followed by its cursor update, so the peer copies while we do (a
	 * quarter of our ring, of the peer's); 0: in one piece */
	uint32_t rx_piece, tx_piece;
	int rd_shut; /* SHUT_RD on an SMC-R socket */
	/* SO_RCVTIMEO / SO_SNDTIMEO in ns, 0 = none */
	uint64_t rcvtimeo, sndtimeo;
	/* listener: completed children; child: link in that queue */
	usmc_sock *lsock;
	usmc_sock *q_head, *q_tail, *q_next;
	int q_len;
	int in_lq; /* child: in its listener's queue, not yet accepted */
	/* all handshaking sockets, for deadlines */
	usmc_sock *hs_prev, *hs_next;
	int in_hs_list;
	/* fresh: created, not yet connected or listening */
	int fresh;
	/* listener: usmc runs SMC on its accepted connections */
	int listen_smc;
	int listen_closed;
	int waiters;
	/* failed server child waiting to be closed (usmc_sock_reap) */
	int dead;
	usmc_sock *dead_next;
	/* conn events raised inside a core call, handled after it */
	uint32_t ev;
	int in_pend;
	usmc_sock *pend_next;
	/* fds naming this socket (dup): the table holds it at each */
	int refs;
	/* readiness generation: bumped whenever readiness may have grown
	 * (data, room, close, error, mode change); edge-triggered epoll */
	uint32_t rgen;
	int nodelay; /* TCP_NODELAY asked for: applied to the SMC-R conn */
	int synopt;  /* marked for the SMC SYN option */
	/* explicit-mode listener: usmc set TCP_SAVE_SYN, so each child's SYN
	 * says whether the client offered the SMC option */
	int save_syn;
	int listen_interest; /* accept/poll/epoll seen on this listener */
	/* SMC listener: app epoll entries whose set holds its kernel fd
	 * (usmc_epoll.c, listener cookie); kerr: an accept on the
	 * kernel's backlog failed (EMFILE), so it is readable for accept()
	 * to try again and tell; bwaiters: accept() calls asleep on it */
	int ep_kern;
	int kerr;
	int bwaiters;
	/* rules (docs/rules.md): a listener whose smc rule depends on the
	 * peer decides per connection; rule_tcp: a tcp rule matched, and
	 * rule_why says which */
	int rules_maybe;
	int rule_tcp;
	char rule_why[128];
	/* sent to TCP by a short-connection hold (usmc_hs_short_held: 1
	 * short SMC-R connections, 2 no SMC option): its detail is made from
	 * these when read (usmc_sock_detail), not per connection */
	int held;
	uint32_t held_addr;
	uint16_t held_port; /* network order */
	uint64_t held_left;
	/* with conn: the device it runs on (usmc_smc.c's table, the core's
	 * dev_idx) */
	int smc_dev;
	/* client offering SMC: its peer and when connect began, for the
	 * per-peer history noted at close (peer_addr 0: none) */
	uint32_t peer_addr;
	uint64_t t_connect;
	/* its addresses once they are fixed (usmc_sock_addr): the stat
	 * table and accept() would otherwise ask the kernel every time */
	struct sockaddr_in addr_local, addr_peer;
	uint8_t addr_local_ok, addr_peer_ok;
};

typedef struct usmc_rt {
	pthread_mutex_t lock;
	usmc_rt_config cfg;
	usmc_sock **socks;
	int nsocks;
	usmc_sock *hs_list;
	int epfd, timerfd, evfd;
	pthread_t thread;
	int thread_started;
	usmc_stats stats;
	/* bumped whenever a socket changes mode (usmc_epoll resyncs) */
	uint64_t mode_gen;
	/* clients: the recent SMC-R connections per peer (usmc_rules.h) */
	usmc_peerhist peerhist;
} usmc_rt;

extern usmc_rt usmc_g;

/* usmc_defaults.c */
uint64_t usmc_rt_now(void);
void usmc_rt_rand(uint8_t *buf, size_t len);
/* |src| into |dst| (of |len| > 0 bytes), cut to fit: snprintf's "%s"
 * without its formatting */
static inline void usmc_str_copy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}
/* One log line at |level| (USMC_LOG_ERR, _WARN, _INFO, _DEBUG: syslog
 * priorities, as the core's); docs/runtime.md "Logging". */
void usmc_rt_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* 1 if a line at |level| would be written: skip costly arguments. */
int usmc_rt_log_on(int level);
/* usmc_smc.c, lock held: logs a core line of the core's |level|, its
 * errors rate-limited per subject (docs/runtime.md "Logging"); the level
 * that limit gives the error |msg| (subject: up to its first ':') at
 * |now|; and the level it gives an error of |subject| (e.g. "peer ADDR")
 * at |now|: USMC_LOG_WARN or USMC_LOG_INFO. */
void usmc_smc_core_log(int level, const char *msg);
int usmc_smc_core_err_level(const char *msg, uint64_t now);
int usmc_smc_err_level(const char *subject, uint64_t now);
/* "error", "warn", "info", "debug" or a syslog number 3-7: the level, or
 * -1. */
int usmc_rt_log_level_parse(const char *s);
const char *usmc_rt_log_level_name(int level);
/* Takes the level and file of |cfg| (after usmc_config_load_env) and
 * writes the banner at debug. */
void usmc_rt_log_configure(const usmc_rt_config *cfg);
/* |fd|'s addresses for a log line: "LOCAL -> PEER" for a connection we
 * made, "LOCAL <- PEER" for one we accepted; "*" for an end not known. */
void usmc_rt_conn_str(int fd, int is_server, char *buf, size_t len);
/* "10.0.0.1:80" of |fd|'s local (|peer| 0) or remote end, or "*". */
void usmc_rt_addr_str(int fd, int peer, char *buf, size_t len);
void usmc_config_load_env(usmc_rt_config *cfg);
int usmc_config_apply(usmc_rt_config *cfg, const char *key, const char *value);
/* Checks transport options |o| for |transport| as the config does: 0, or
 * -1 with "option N (column C) ...: why" in |err|. */
int usmc_config_check_tp_options(const char *transport, const char *o,
				 char *err, size_t errlen);
/* Why the last usmc_config_apply refused its value ("" if no more is
 * known than that the value is bad). */
const char *usmc_config_error(void);

/* The UEID every usmc process offers unless told otherwise (ueid). */
#define USMC_UEID_DEFAULT "USMC-DEFAULT-UEID"

/* usmc_loop.c */
int usmc_rt_init(void); /* idempotent; starts the progress thread */
/* Lock held, by a usmc thread about to return (and take no usmc lock):
 * it is joined by usmc_thread_reap, which the fork prepare handler and
 * every thread start call (lock held), so no fork sees its teardown. */
void usmc_thread_ending(void);
void usmc_thread_reap(void);
/* getpid(), without a system call once the runtime started (fork resets it) */
pid_t usmc_rt_pid(void);
void usmc_loop_watch(usmc_sock *s, uint32_t events); /* 0 = stop */
void usmc_loop_rearm_timer(void);
void usmc_loop_wake(void);
void usmc_hs_list_add(usmc_sock *s);
void usmc_hs_list_del(usmc_sock *s);
/* How a wait treats a signal handler that runs meanwhile (usmc_signal.c). */
enum usmc_intr {
	USMC_INTR_NONE,	   /* keep waiting: close's drain, exit */
	USMC_INTR_RESTART, /* EINTR unless the handler has SA_RESTART */
	USMC_INTR_ALWAYS,  /* EINTR: poll/select, calls with a timeout */
};
/* OR'd into usmc_wait_held's |intr|: the waiter waits for the progress
 * thread (accept's queue), not for data, so it leaves the device fds to a
 * thread that does: a server's accept loop would otherwise take every
 * completion of its connection threads and wake them one hop later. */
#define USMC_WAIT_NODEV 0x100
/* Lock held (dropped while asleep). Blocks until woken by
 * usmc_rt_broadcast, until the transport may have progressed, or until
 * |deadline_ns| (0 = none). Returns 0 (look again), ETIMEDOUT, or EINTR as
 * |intr| says. */
int usmc_wait(uint64_t deadline_ns, int intr);
/* A blocking call's hold on its signals: a handler usmc did not install
 * leaves no trace, so one that ran while the caller looked between two
 * waits would be lost. The first usmc_wait_held blocks the signals and
 * they stay blocked across the caller's whole loop, let in only inside
 * the wait's ppoll, until usmc_sig_release (on every way out of the
 * loop). On the caller's stack, so a handler's own usmc call has its own. */
typedef struct usmc_sig_hold {
	int on;
	sigset_t old;
} usmc_sig_hold;
int usmc_wait_held(uint64_t deadline_ns, int intr, usmc_sig_hold *h);
void usmc_sig_release(usmc_sig_hold *h);
/* Wakes every thread in usmc_wait. Lock held. */
void usmc_rt_broadcast(void);
/* Wakes the threads in usmc_wait but those with USMC_WAIT_NODEV (accept):
 * for changes that cannot concern a listener. Lock held. */
void usmc_rt_wake_data(void);

/* usmc_signal.c: signal handlers seen by this thread since the blocking
 * call began; reset on entry to every call that may block. */
#define USMC_SIG_RESTART   1u
#define USMC_SIG_NORESTART 2u
extern __thread unsigned usmc_sig_seen
	__attribute__((tls_model("initial-exec")));
static inline void usmc_sig_reset(void)
{
	usmc_sig_seen = 0;
}
/* Registers sig_lock's fork handlers (once); before the runtime's own. */
void usmc_signal_atfork_init(void);
/* 1 if a wait in mode |intr| must end with EINTR; |poll_eintr|: poll()
 * just failed with EINTR. */
int usmc_sig_decide(int intr, int poll_eintr);
/* usmc_wait's mask: usmc_sig_block blocks the signals a handler may take
 * (*old: the mask before), usmc_sig_restore puts *old back;
 * usmc_sig_pending: one of them is pending that *old lets in. */
void usmc_sig_block(sigset_t *old);
void usmc_sig_restore(const sigset_t *old);
int usmc_sig_pending(const sigset_t *old);

/* usmc_hs.c, usmc_fdtab.c, usmc_socket.c (the socket layer):
 * progress-thread entry points, called with the lock held */
void usmc_sock_on_event(usmc_sock *s, uint32_t events);
void usmc_sock_on_deadline(usmc_sock *s, uint64_t now);
usmc_sock *usmc_sock_get(int fd);
void usmc_sock_fallback(usmc_sock *s, uint32_t code, const char *detail);
void usmc_sock_fallback_late(usmc_sock *s, uint32_t code);
void usmc_sock_hs_done(usmc_sock *s);
/* At exit: starts the SMC close of every SMC-R connection still open. */
void usmc_sock_close_at_exit(void);
/* Closes failed server children; frees are deferred to here so that no
 * socket disappears under a caller that still uses it. */
void usmc_sock_reap(void);

/* Lock held: a readiness notifier (usmc_poll.c); its id, or 0 with errno.
 * |armed|: a waiter count to start with; usmc_rt_notify writes only to
 * one that has waiters (usmc_notify_arm: +1 when a thread may sleep on
 * it, -1 when it is awake again). */
uint64_t usmc_notify_add(int evfd, int armed);
void usmc_notify_arm(uint64_t id, int delta);
/* Lock held: signals notifier |id| alone, as if a readiness had changed. */
void usmc_notify_kick(uint64_t id);
/* Lock held: epoll fd |epfd| is waited on from outside usmc_epoll_pwait
 * (in poll, select or another epoll set): its notifier is always armed. */
void usmc_epoll_external(int epfd);
void usmc_notify_del(int evfd);
void usmc_notify_drain(int evfd);
void usmc_epoll_closed(int epfd);
/* Signals every readiness notifier (usmc_notify_add, poll waiters). */
void usmc_rt_notify(void);
/* The lock-free per-fd flags (USMC_FDF_*, usmc.h). */
void usmc_fdflag_set(int fd, int flag, int on);
/* Lock held: marks |fd| USMC_FDF_KERNEL if its socket |s| is the
 * kernel's for good (usmc_fdtab.c). */
void usmc_sock_kernel_mark(usmc_sock *s, int fd);
/* usmc_hs.c: |s|'s fallback detail: fb_detail, or its hold's reason */
void usmc_sock_detail(const usmc_sock *s, char *out, size_t len);
/* Lock held: the bytes the application moved through |s|. */
void usmc_sock_bytes(usmc_sock *s, uint64_t *sent, uint64_t *recv);
/* Lock held: |s|'s local (|peer| 0) or peer address into |out|, from
 * the kernel the first time it is fixed, then from |s|. Returns 0, or -1
 * when it has none (not bound, not connected, gone, not IPv4). */
int usmc_sock_addr(usmc_sock *s, int peer, struct sockaddr_in *out);
/* usmc_epoll.c, lock held: |fd| leaves every shadow set for the kernel
 * set alone; a set left empty goes. -1 (errno) if it cannot: it stays. */
int usmc_epoll_kernel_fd(int fd);
/* usmc_epoll.c: a closed fd leaves every shadow set (lock held). */
void usmc_epoll_fd_closed(int fd);
/* Lock held: |s|'s rgen moved; its epoll entries are looked at again. */
void usmc_epoll_sock_changed(usmc_sock *s);
/* usmc_poll.c: readiness of a socket, lock held; -1: ask the kernel. */
int usmc_sock_revents(usmc_sock *s, uint32_t events);
/* The process uses |s| (I/O, poll, select, epoll, accept): an SMC
 * listener is accepted on from now on, and an accepted connection whose
 * handshake waits for its owner runs it in this process. Lock held. */
void usmc_sock_use(usmc_sock *s);

/*
 * usmc_smc.c: everything that touches the core and the transport. All
 * with the lock held. Handshake helpers return 0 or a decline code to fall
 * back with (detail filled in), or a negative USMC_ERR_* to fail.
 */
int usmc_smc_conn_start(usmc_sock *s, int is_server, char *detail, size_t dlen);
/* Feeds one whole CLC message. */
int usmc_smc_clc_in(usmc_sock *s, const uint8_t *msg, size_t len);
/* Writes pending CLC bytes; returns 1 if some remain (wait for POLLOUT). */
int usmc_smc_clc_flush(usmc_sock *s);
/* Makes the connection fall back locally (sends a Decline). */
int usmc_smc_decline(usmc_sock *s, uint32_t code);
void usmc_smc_conn_free(usmc_sock *s);
/* Drops |s| from the list of sockets with pending core events. */
void usmc_smc_forget(usmc_sock *s);
usmc_ssize usmc_smc_read(usmc_sock *s, void *buf, size_t len);
usmc_ssize usmc_smc_write(usmc_sock *s, const void *buf, size_t len);
size_t usmc_smc_readable(usmc_sock *s);
size_t usmc_smc_writable(usmc_sock *s);
/* Bytes written and not yet confirmed sent. */
size_t usmc_smc_unsent(usmc_sock *s);
/* 1 when the peer will send no more (reads return 0 after the data). */
int usmc_smc_peer_done(usmc_sock *s);
int usmc_smc_error(usmc_sock *s);
int usmc_smc_shutdown_write(usmc_sock *s);
/* |hold_tcp|: keep the TCP connection open, on an fd of usmc's own, until
 * the close flag's CDC has completed (docs/runtime.md, "A peer that goes
 * away"), so the peer never sees the TCP close before the SMC close. */
int usmc_smc_close(usmc_sock *s, int hold_tcp);
/* Connections the app closed whose close protocol is still running. */
size_t usmc_smc_closing(void);
int usmc_smc_abort(usmc_sock *s);
/* The peer's process is gone (its TCP connection ended without an SMC
 * close): the connection fails with ECONNRESET after its data is read. */
void usmc_smc_peer_gone(usmc_sock *s);
/* TCP connections held open by usmc_smc_close, still waiting. */
size_t usmc_smc_tcp_held(void);
/* At exit: ends the link groups left without connections (DELETE_LINK,
 * orderly) and waits up to |end| for them to go. */
void usmc_smc_exit_lgrs(uint64_t end);
void usmc_smc_set_nodelay(usmc_sock *s, int on);
/* after fork(), in the child (usmc_loop.c's atfork handler) */
void usmc_smc_fork_child(void);
void usmc_sock_fork_child(void);
void usmc_sock_fork_parent(void);
void usmc_epoll_fork_child(void);
/* The smc state to fill usmc_sock_info's lgr/link/version. */
void usmc_smc_info(usmc_sock *s, usmc_sock_info *info);
/* The device of |s|'s SMC connection (of the link it is on now, which a
 * failover may have moved): index, transport name, local address (dotted)
 * and GID; -1 when it has none. */
int usmc_smc_dev_info(const usmc_sock *s, int *idx, char *tp, size_t tplen,
		      char addr[16], uint8_t gid[16]);
/* usmc-stat's link lines (docs/stat.md): one "lgr" line per link group
 * of the process and one "link" line per link, through |put| (a printf
 * into the table). Lock held. */
void usmc_smc_stat_links(void (*put)(const char *fmt, ...)
				 __attribute__((format(printf, 1, 2))));
/* Loop hooks. Devices (usmc_smc.c) keep their index for the process's
 * life (a forked child starts with none): the completion fd of device
 * |i|, -1 past the last one; polling one device, or all of them. */
int usmc_smc_dev_fd(unsigned int i);
void usmc_smc_on_dev_event(unsigned int i);
/* The shm device and its index (usmc_wait's spin), or NULL. */
struct usmc_tp *usmc_smc_shm_tp(unsigned int *idx);
/* The same, only while an SMC-D connection is open: a spin for its signals
 * is worth it (a server whose clients all went to TCP has the device, with
 * link groups that linger, and nothing to spin for: issue 11). */
struct usmc_tp *usmc_smc_shm_tp_busy(unsigned int *idx);
/* The shm device's signals alone, after a spin saw one: no endpoint
 * service, no syscall (usmc_smc_on_dev_event does the rest). */
void usmc_smc_shm_signals(void);
/* Lock held (dropped meanwhile): a bounded spin on the shm device's signal
 * areas, as usmc_wait's, for a thread about to sleep elsewhere (epoll);
 * |kfd| >= 0 is looked at first, then every few microseconds, with
 * |sigmask| (the caller's epoll_pwait mask, or NULL) in force meanwhile.
 * 1: a signal was taken (look again), 0: nothing (or |kfd| readable),
 * -1: no spin, -2: a signal |sigmask| lets in was handled (EINTR). The
 * caller waits on notifier |nid| (usmc_notify_arm, 0: none); on 1 and -2
 * it no longer does, from before the signals were taken (it looks
 * itself: no write to read back). */
int usmc_rt_shm_spin(int kfd, const sigset_t *sigmask, uint64_t nid);
/* Lock held: the calling thread is about to sleep in the kernel
 * (epoll_wait, poll, select) with the shm device's fd in its set, and
 * runs the device's events itself when that fd wakes it
 * (usmc_rt_dev_ready): a peer's doorbell then wakes it directly, not the
 * progress thread, which would wake it in turn (docs/threads.md, "The
 * direct poller"). Returns the device's index, its fd in *fd; -1:
 * another thread waits on the devices (the progress thread then hands
 * them back at once when that one leaves); -2: no shm device. Once the
 * sleep ended, usmc_rt_direct_leave with what it returned. */
int usmc_rt_direct_enter(int *fd);
void usmc_rt_direct_leave(int dp);
/* Lock held: device |idx|'s fd was ready in an app thread's own kernel
 * wait: its events, inline (counted in usmc_stats.dev_wakes_app). */
void usmc_rt_dev_ready(unsigned int idx);
/* How long the sleep after a failed spin lasted (usmc_wait's spin_cold). */
void usmc_rt_spin_learn(uint64_t slept_ns);
void usmc_smc_on_tp_event(void);
uint64_t usmc_smc_expiry(void);
void usmc_smc_on_timer(uint64_t now);
/* The loop tells which expiry it armed the timerfd for. */
void usmc_smc_armed(uint64_t when);
/* Header check of a peeked CLC header: message length, or -1. */
int usmc_smc_clc_hdr_len(const uint8_t hdr[8]);
/* 1 if a link group with the peer of this system id is up (a Proposal
 * from it will not be first contact): an SMC-R one with an active link,
 * an SMC-D one as soon as it exists. */
int usmc_smc_has_lgr(const uint8_t peer_id[8]);
/* Number of distinct link groups the process has used. */
uint64_t usmc_smc_lgr_count(void);
/* softroce's ICRC counters summed over the process's devices: packets
 * taken with an inferred IPv4 ID (kernel rxe's), packets dropped. */
void usmc_smc_icrc_counts(uint64_t *inferred, uint64_t *dropped);
/* usmc_stat.c, lock held (a start joins an ended thread of usmc's,
 * usmc_thread_reap): publishes the socket table for usmc-stat
 * (docs/stat.md); starts its thread at a process's first socket, and
 * again when a socket comes or goes after it ended for having nothing to
 * watch. */
void usmc_stat_start(void);
/* Restarts an idle publisher of this process; nothing in a forked child
 * that has not published yet (its fork handler frees inherited sockets). */
void usmc_stat_wake(void);
/* A socket changed state: publish soon (lock held, cheap unless the
 * publisher must start again). */
void usmc_stat_kick(void);
/* usmc_err -> errno */
int usmc_errno_from(int err);

#endif /* USMC_RT_H */
