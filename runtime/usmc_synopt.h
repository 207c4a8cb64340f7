/* SPDX-License-Identifier: MIT */
/*
 * SMC SYN-option negotiation (RFC 7609 via Linux's TCP option kind 254,
 * ExID 0xE2D4C3D9) for the TCP sockets usmc owns, with an eBPF sock_ops
 * program attached to the process's cgroup v2 directory.
 *
 * A Linux peer runs CLC only when the option went both ways: mark a socket
 * before connect() or listen(), then after the TCP handshake ask whether
 * the peer sent it. Sockets that are not marked keep plain TCP, byte for
 * byte. See docs/negotiation.md.
 *
 * Errors are negative errno values. Every call is thread-safe; the maps'
 * and link's fds are close-on-exec; nothing runs before usmc_synopt_init.
 */
#ifndef USMC_SYNOPT_H
#define USMC_SYNOPT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct usmc_synopt usmc_synopt;

/*
 * Loads the program and attaches it to this process's cgroup v2 directory
 * (found from /proc/self/mounts and /proc/self/cgroup), or takes the copy
 * of it another usmc process attached there, when one is. On failure returns
 * a negative errno (-EPERM no privilege, -ENOENT no cgroup v2 mount,
 * -EOPNOTSUPP built without eBPF, ...) and writes a one-line reason to
 * |err| so the caller can say it once and use explicit rules instead.
 */
int usmc_synopt_init(usmc_synopt **p, char *err, size_t errlen);

/*
 * The same, attached to |cgroup_dir| (a cgroup v2 directory) instead; or,
 * with USMC_SYNOPT_CGROUP_PRIVATE, to this process's own cgroup even where
 * no cgroup v2 mount is visible (under ip netns exec): it is then opened
 * through a private mount attached nowhere in the file system.
 */
#define USMC_SYNOPT_CGROUP_PRIVATE "private"
int usmc_synopt_init_cgroup(usmc_synopt **p, const char *cgroup_dir, char *err,
			    size_t errlen);

/* The cgroup directory the program is attached to. */
const char *usmc_synopt_cgroup(const usmc_synopt *s);

/* 1 if |s| uses the copy another usmc process attached to that cgroup
 * (one copy serves every usmc process there; the kernel takes at most 64
 * programs per cgroup), 0 if its own. */
int usmc_synopt_shared(const usmc_synopt *s);

/* A TCP socket not yet connected: its SYN will carry the option. */
int usmc_synopt_mark_connect(usmc_synopt *s, int fd);

/*
 * A bound TCP socket that is not listening yet: after listen(), SYN-ACKs
 * carry the option to clients whose SYN had it. Keyed by network
 * namespace, local address and port; undone by usmc_synopt_forget.
 */
int usmc_synopt_mark_listen(usmc_synopt *s, int fd);

/*
 * After the TCP handshake (connect() returned or POLLOUT, or accept() of a
 * marked listener returned it): 1 if the option went both ways, 0 if not,
 * -EINPROGRESS before the handshake finished, -ENOENT if the socket is
 * neither marked nor accepted from a marked listener.
 */
int usmc_synopt_peer_has_smc(usmc_synopt *s, int fd);

/* Before close(): drops what usmc_synopt knows about |fd| (a listener stops
 * being marked). Socket state goes with the socket anyway. */
void usmc_synopt_forget(usmc_synopt *s, int fd);

/* Detaches the program and frees |s|. NULL is fine. */
void usmc_synopt_del(usmc_synopt *s);

#ifdef __cplusplus
}
#endif

#endif /* USMC_SYNOPT_H */
