/* SPDX-License-Identifier: MIT */
/*
 * The usmc library socket API: SMC-R over a transport, with TCP fallback.
 *
 * The fd every call takes and returns IS the real kernel TCP socket; usmc
 * keeps per-fd state in a table indexed by fd. Calls on an fd usmc does not
 * manage behave exactly as the kernel call. POSIX conventions throughout:
 * -1 and errno on failure.
 *
 * Environment (read once, on first use):
 *   USMC_TRANSPORT      transport backend, default "softroce"
 *   USMC_SOFTROCE_PORT  RoCEv2 UDP port, default 4791
 *   USMC_SMC_PORTS      explicit mode: ports that speak SMC, e.g. "7070,8000-8010"
 *   USMC_RULES, USMC_CONF  rules: which sockets speak SMC (docs/rules.md)
 *   USMC_CLC_WAIT_MS    server: how long to wait for a first CLC byte (2000)
 *   USMC_LOG_LEVEL      error, warn (default), info, debug, or 3-7
 *   USMC_LOG_FILE       append the log to this file ("%p": the PID), not
 *                       stderr (docs/runtime.md, "Logging")
 *   USMC_DEBUG=1        log level debug
 *   USMC_STATS          at exit, print the process's connection counts to
 *                       stderr ("1") or append them to the file it names
 */
#ifndef USMC_H
#define USMC_H

#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

int usmc_socket(int domain, int type, int protocol);
int usmc_bind(int fd, const struct sockaddr *addr, socklen_t len);
int usmc_listen(int fd, int backlog);
int usmc_accept(int fd, struct sockaddr *addr, socklen_t *len);
int usmc_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int usmc_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t usmc_send(int fd, const void *buf, size_t len, int flags);
ssize_t usmc_recv(int fd, void *buf, size_t len, int flags);
ssize_t usmc_write(int fd, const void *buf, size_t len);
ssize_t usmc_read(int fd, void *buf, size_t len);
int usmc_shutdown(int fd, int how);
int usmc_close(int fd);
int usmc_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms);
/* F_GETFL / F_SETFL (O_NONBLOCK) are tracked; other commands pass through. */
int usmc_fcntl(int fd, int cmd, ...);
int usmc_set_nonblock(int fd, int on);
int usmc_getsockopt(int fd, int level, int name, void *val, socklen_t *len);
int usmc_setsockopt(int fd, int level, int name, const void *val,
		    socklen_t len);

/* Vectored, message and file I/O: the kernel's calls on plain and
 * fallback sockets; gathered / scattered over SMC-R. */
ssize_t usmc_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t usmc_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t usmc_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t usmc_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t usmc_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);
/* FIONREAD answers from the SMC-R receive buffer; FIONBIO is tracked as
 * O_NONBLOCK; anything else is the kernel's. */
int usmc_ioctl(int fd, unsigned long req, void *arg);
/* The new fd names the same usmc socket; one replaced by dup2/dup3 is
 * closed as by usmc_close. usmc_fcntl_dupfd: F_DUPFD / F_DUPFD_CLOEXEC. */
int usmc_dup(int oldfd);
int usmc_dup2(int oldfd, int newfd);
int usmc_dup3(int oldfd, int newfd, int flags);
int usmc_fcntl_dupfd(int fd, int cmd, int minfd);
/* close_range(2): usmc's fds in the range are closed as by usmc_close. */
int usmc_close_range(unsigned int first, unsigned int last, int flags);

/* Readiness over usmc and kernel fds together (see docs/preload.md). */
int usmc_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *ts,
	       const sigset_t *sigmask);
int usmc_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		struct timeval *tv);
int usmc_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
		 const struct timespec *ts, const sigset_t *sigmask);
/* epoll with level, edge and one-shot semantics for SMC-R sockets: a
 * shadow set per epoll fd (usmc_epoll.c). The epoll fd is the kernel's. */
int usmc_epoll_create1(int flags);
int usmc_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int usmc_epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout_ms);
int usmc_epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout_ms,
		     const sigset_t *sigmask);

/*
 * Signals. A blocking usmc call that a signal handler interrupts returns
 * EINTR, or goes on waiting when the handler has SA_RESTART, as the
 * kernel's call would: send/recv/accept/connect are restarted unless the
 * socket has SO_SNDTIMEO/SO_RCVTIMEO; poll, select and epoll_wait always
 * end with EINTR. usmc learns SA_RESTART from handlers installed through
 * these twins of sigaction(2), signal(2) (BSD semantics, as glibc's),
 * sysv_signal(3) and siginterrupt(3); the preload routes the libc calls
 * here. For a handler installed otherwise, a call ends with EINTR if any
 * installed handler lacks SA_RESTART (docs/runtime.md).
 */
int usmc_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
void (*usmc_signal(int sig, void (*handler)(int)))(int);
void (*usmc_sysv_signal(int sig, void (*handler)(int)))(int);
int usmc_siginterrupt(int sig, int flag);

/*
 * For interposers (the preload): nonzero if |fd| may be a usmc socket or
 * a usmc epoll fd; zero means "hand it to the kernel", read without a lock.
 * USMC_FDF_KERNEL: a usmc socket the kernel serves for good (connected
 * plain TCP or fallback): its data, poll, epoll, fcntl(F_GETFL/F_SETFL),
 * ioctl and shutdown calls may go to the kernel directly.
 */
#define USMC_FDF_SOCK	1
#define USMC_FDF_EPOLL	2
#define USMC_FDF_KERNEL 4
int usmc_fd_flags(int fd);

/*
 * For interposers: nonzero in a child that usmc has not adopted, whose
 * calls must all go to libc, for the connections are its parent's: a
 * vfork child (its parent's thread called usmc_vfork_enter first), or a
 * child made without CLONE_VM and without fork()'s pthread_atfork
 * handlers (clone). No system call unless usmc_vfork_enter was called.
 */
int usmc_foreign_child(void);

/*
 * For interposers: the calling thread is about to make a child that shares
 * its memory and thread pointer. |concurrent| 0: vfork, or clone with
 * CLONE_VM|CLONE_VFORK (the thread waits until the child execs or exits;
 * its next usmc call, one getpid, drops the note). 1: clone with CLONE_VM
 * alone, the child runs beside it: the note stays, and each of this
 * thread's calls into usmc pays a getpid from then on.
 */
void usmc_vfork_enter(int concurrent);

/*
 * Set (per thread) while usmc itself runs: the preload hands calls made
 * with it set straight to libc, so the runtime's own socket calls are not
 * intercepted again. The progress thread has it set for its whole life.
 */
extern __thread int usmc_in_runtime __attribute__((tls_model("initial-exec")));

/*
 * For interposers: a call from inside usmc reached the interposer and
 * usmc_in_runtime sent it back to libc. The runtime calls libc through a
 * table of its own (usmc_real.h), so this is a safety net that should
 * never fire: usmc_get_stats and USMC_STATS report the count.
 */
void usmc_reentry_note(void);

typedef enum usmc_sock_mode {
	USMC_SOCK_UNMANAGED = 0, /* not an fd usmc knows: plain kernel */
	USMC_SOCK_HANDSHAKE,	 /* TCP connect or CLC handshake running */
	USMC_SOCK_SMCR,		 /* data moves over RDMA */
	USMC_SOCK_TCP,		 /* plain TCP (fallback, or not an SMC port) */
	USMC_SOCK_LISTEN,	 /* listening */
	USMC_SOCK_FAILED,	 /* handshake failed; the socket is unusable */
} usmc_sock_mode;

typedef struct usmc_sock_info {
	usmc_sock_mode mode;
	int is_server;
	/* Why TCP is used (SMC_CLC_DECL_*), 0 when not in fallback. */
	uint32_t fallback_code;
	char fallback_name[24];
	char fallback_desc[64]; /* the code's meaning, as smcss prints it */
	char fallback_detail[128];
	/* Decline code the peer sent, 0 if none. */
	uint32_t peer_diagnosis;
	/* The transport of the connection's device once it has one, else
	 * the configured one (USMC_TRANSPORT). */
	char transport[32];
	uint32_t lgr_id;
	uint32_t link_id;
	int smc_version; /* 1 or 2 when SMCR */
	uint64_t bytes_sent;
	uint64_t bytes_received;
	/* The local device the SMC connection uses (docs/runtime.md,
	 * "Devices"): its index in the process's device table (-1: none),
	 * its local IPv4 address and its GID. */
	int device;
	char device_addr[16];
	uint8_t local_gid[16];
	/* mode USMC_SOCK_SMCR over an ISM device: SMC-D (transport "shm",
	 * a peer on this host), 0 for SMC-R */
	int smcd;
} usmc_sock_info;

int usmc_get_info(int fd, usmc_sock_info *info);

typedef struct usmc_stats {
	uint64_t link_groups;	  /* SMC link groups this process created */
	uint64_t conns_smcr;	  /* connections that reached SMCR */
	uint64_t conns_fallback;  /* connections that fell back to TCP */
	uint64_t conns_failed;	  /* handshakes that failed (no fallback) */
	uint64_t transport_opens; /* successful transport opens */
	/* calls the preload's re-entry guard sent back to libc */
	uint64_t preload_reentries;
	/* softroce devices: packets accepted with an IPv4 ID inferred from
	 * the ICRC (kernel rxe peers, a 16-bit check), and ICRC drops */
	uint64_t icrc_inferred;
	uint64_t icrc_dropped;
	/* connections offered plain TCP because their peer's recent SMC-R
	 * connections were all short and small (docs/rules.md,
	 * "Short-lived connections"); not counted as fallbacks */
	uint64_t conns_short_tcp;
	/* of conns_smcr, those that run SMC-D over shm */
	uint64_t conns_smcd;
	/* a device's fd (a peer's shm doorbell, softroce datagrams) woke
	 * the progress thread, which then wakes the app thread the data is
	 * for; or woke an app thread in its own wait (recv, epoll_wait,
	 * poll, select), which ran the device's events itself
	 * (docs/threads.md, "The direct poller") */
	uint64_t dev_wakes_progress;
	uint64_t dev_wakes_app;
} usmc_stats;

void usmc_get_stats(usmc_stats *stats);

/*
 * usmc_config_set overrides one setting from the environment; call before
 * the first socket. Keys: "transport", "transport_options", "ueid",
 * "pnet", "smc_ports", "softroce_port", "clc_wait_ms", "testlink_ms",
 * "testlink_wait_ms", "spin_us", "dmb_size", "shortconn", "debug",
 * "log_level", "log_file" (these three take effect at once). Returns 0,
 * or -1 with errno EINVAL.
 */
int usmc_config_set(const char *key, const char *value);

/* usmc_decline_name returns the kernel name of an SMC_CLC_DECL_* code
 * ("PEERNOSMC"), or "UNKNOWN". */
const char *usmc_decline_name(uint32_t code);

#ifdef __cplusplus
}
#endif

#endif /* USMC_H */
