/* SPDX-License-Identifier: MIT */
/*
 * Loader for the SYN-option sock_ops program (runtime/bpf/) and the calls
 * the runtime makes around socket set-up. The program's object file is
 * compiled at build time and embedded, so nothing is read from disk.
 */
#define _GNU_SOURCE /* vasprintf */
#include "usmc_synopt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef USMC_SYNOPT_NO_BPF

#include <limits.h>
#include <mntent.h>
#include <pthread.h>
#include <stdint.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <linux/mount.h>

#include "usmc_libbpf.h"

#include "usmc_real.h"
#include "usmc_synopt_bpf.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

/* Generated from usmc_synopt.bpf.o by runtime/bpf/CMakeLists.txt. */
extern const unsigned char usmc_synopt_bpf_obj[];
extern const size_t usmc_synopt_bpf_obj_len;

struct usmc_synopt {
	struct bpf_object *obj; /* NULL when sharing another's copy */
	struct bpf_link *link;
	int shared_link; /* a reference on another process's link, or -1 */
	int conn_fd;	 /* sk_storage: struct usmc_synopt_conn per socket */
	int listen_fd;	 /* hash: usmc_synopt_lkey -> count */
	pthread_mutex_t lock; /* listen counts are read-modify-write */
	char cgroup[256];
};

/* libbpf's print callback is process-wide: it is swapped in only while
 * init runs, under this lock, to keep libbpf quiet and keep its last
 * complaint for the one-line reason. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static char libbpf_last[160];
static int libbpf_verifier; /* libbpf_last holds the verifier's reason */

static int capture_print(enum libbpf_print_level level, const char *fmt,
			 va_list ap)
{
	char *msg = NULL, *line, *end, *prev = NULL;

	if (level == LIBBPF_DEBUG || vasprintf(&msg, fmt, ap) < 0)
		return 0;
	/* A verifier log is one message: what it refused is the line
	 * before "processed N insns". Otherwise keep the first warning. */
	for (line = msg; *line; line = end + (*end != '\0')) {
		end = line + strcspn(line, "\n");
		if (!strncmp(line, "processed ", 10) && prev)
			break;
		if (end > line)
			prev = line;
		if (!*end)
			break;
	}
	if (!strncmp(line, "processed ", 10) && prev) {
		line = prev;
	} else if (!libbpf_last[0]) {
		line = msg;
	} else {
		free(msg);
		return 0;
	}
	end = line + strcspn(line, "\n");
	*end = '\0';
	snprintf(libbpf_last, sizeof(libbpf_last), "%s", line);
	if (line != msg)
		libbpf_verifier = 1;
	free(msg);
	return 0;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* This process's cgroup v2 path ("/" for the root), from /proc/self/cgroup. */
static int own_cgroup_path(char *out, size_t outlen, char *err, size_t errlen)
{
	char line[PATH_MAX + 8];
	FILE *f;
	int n;

	f = fopen("/proc/self/cgroup", "re");
	if (!f) {
		set_err(err, errlen, "cannot read /proc/self/cgroup: %s",
			strerror(errno));
		return -errno;
	}
	n = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		n = (size_t)snprintf(out, outlen, "%s", line + 3) >= outlen
			    ? -ENAMETOOLONG
			    : 0;
		break;
	}
	fclose(f);
	if (n)
		set_err(err, errlen,
			"this process is in no cgroup v2 group "
			"(/proc/self/cgroup "
			"has no 0:: line)");
	return n;
}

/*
 * The process's own cgroup v2 directory: mount point + /proc/self/cgroup.
 * With |private_ok| and no cgroup v2 mount in sight (ip netns exec
 * remounts /sys), the directory is opened through a cgroup2 mount of our
 * own that is attached nowhere: the program's view of the file system does
 * not change, and the mount goes with the fd. Returns an open directory fd.
 */
static int find_cgroup(char *out, size_t outlen, int private_ok, char *err,
		       size_t errlen)
{
	char mnt[PATH_MAX] = "", buf[4096], path[PATH_MAX];
	struct mntent me, *m;
	int n, fs, mfd, fd;
	FILE *f;

	n = own_cgroup_path(path, sizeof(path), err, errlen);
	if (n)
		return n;
	f = setmntent("/proc/self/mounts", "re");
	if (!f) {
		set_err(err, errlen, "cannot read /proc/self/mounts: %s",
			strerror(errno));
		return -errno;
	}
	while ((m = getmntent_r(f, &me, buf, sizeof(buf))))
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(mnt, sizeof(mnt), "%s", m->mnt_dir);
			break;
		}
	endmntent(f);
	if (mnt[0]) {
		if ((size_t)snprintf(out, outlen, "%s%s", mnt,
				     strcmp(path, "/") ? path : "") >= outlen)
			return -ENAMETOOLONG;
		fd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			n = -errno;
			set_err(err, errlen, "cannot open cgroup %s: %s", out,
				strerror(-n));
		}
		return fd < 0 ? n : fd;
	}
	if (!private_ok) {
		set_err(err, errlen,
			"no cgroup v2 mount in this mount namespace (note: ip "
			"netns exec remounts /sys; USMC_CGROUP=private)");
		return -ENOENT;
	}
	fs = (int)syscall(SYS_fsopen, "cgroup2", FSOPEN_CLOEXEC);
	if (fs < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0)) {
		n = -errno;
		set_err(err, errlen,
			"no cgroup v2 mount in this mount namespace, and "
			"cannot make a private one: %s",
			strerror(-n));
		if (fs >= 0)
			usmc_real()->close(fs);
		return n;
	}
	mfd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
			   MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSUID |
				   MOUNT_ATTR_NODEV);
	n = -errno;
	usmc_real()->close(fs);
	if (mfd < 0) {
		set_err(err, errlen, "cannot mount cgroup v2 privately: %s",
			strerror(-n));
		return n;
	}
	fd = openat(mfd, path[1] ? path + 1 : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	n = -errno;
	usmc_real()->close(mfd);
	if (fd < 0) {
		set_err(err, errlen, "cannot open cgroup %s: %s", path,
			strerror(-n));
		return n;
	}
	if ((size_t)snprintf(out, outlen, "%s (private cgroup2 mount)", path) >=
	    outlen)
		out[0] = '\0'; /* only for messages */
	return fd;
}

void usmc_synopt_del(usmc_synopt *s)
{
	if (!s)
		return;
	bpf_link__destroy(s->link);
	bpf_object__close(s->obj);
	if (s->shared_link >= 0) {
		usmc_real()->close(s->shared_link);
		usmc_real()->close(s->conn_fd);
		usmc_real()->close(s->listen_fd);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The id of the cgroup |cg| (a cgroup v2 directory fd): its file handle. */
static int cgroup_id(int cg, uint64_t *id)
{
	union {
		struct file_handle fh;
		unsigned char b[sizeof(struct file_handle) + sizeof(uint64_t)];
	} h;
	int mnt;

	h.fh.handle_bytes = sizeof(uint64_t);
	if (name_to_handle_at(cg, "", &h.fh, &mnt, AT_EMPTY_PATH) ||
	    h.fh.handle_bytes != sizeof(uint64_t))
		return -1;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* Whether map |fd| is ours by name and shape. */
static int map_like(int fd, const struct bpf_map_info *ours)
{
	struct bpf_map_info mi;
	__u32 len = sizeof(mi);

	memset(&mi, 0, sizeof(mi));
	return !bpf_obj_get_info_by_fd(fd, &mi, &len) &&
	       mi.type == ours->type && mi.key_size == ours->key_size &&
	       mi.value_size == ours->value_size &&
	       mi.max_entries == ours->max_entries &&
	       mi.map_flags == ours->map_flags &&
	       !strncmp(mi.name, ours->name, sizeof(mi.name));
}

/*
 * The kernel runs at most 64 programs per cgroup and attach type
 * (BPF_CGROUP_MAX_PROGS; the 65th attach is refused with -E2BIG), and each
 * attached copy runs on every TCP socket of the cgroup. So a process first
 * looks for a copy of this very program (same tag, same maps) that another
 * usmc process linked to the same cgroup, and uses that copy's maps: marks
 * are per socket and listener keys per address, so one copy serves them
 * all. A reference on the link keeps it attached after its owner exits;
 * the last reference detaches it, so nothing outlives the processes that
 * use it. Finding it needs CAP_SYS_ADMIN (the *_get_fd_by_id calls);
 * without it, or with no copy there, the process attaches its own.
 * Returns 1 when sharing.
 */
static int share(usmc_synopt *s, int cg, int prog_fd)
{
	struct bpf_prog_info ours, pi;
	struct bpf_map_info mconn, mlisten;
	__u32 id = 0, len, maps[2] = {0, 0};
	uint64_t cgid;

	memset(&ours, 0, sizeof(ours));
	memset(&mconn, 0, sizeof(mconn));
	memset(&mlisten, 0, sizeof(mlisten));
	len = sizeof(ours);
	if (cgroup_id(cg, &cgid) ||
	    bpf_obj_get_info_by_fd(prog_fd, &ours, &len))
		return 0;
	len = sizeof(mconn);
	if (bpf_obj_get_info_by_fd(s->conn_fd, &mconn, &len))
		return 0;
	len = sizeof(mlisten);
	if (bpf_obj_get_info_by_fd(s->listen_fd, &mlisten, &len))
		return 0;
	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info li;
		int lfd, pfd, cfd = -1, mfd = -1, i;

		lfd = bpf_link_get_fd_by_id(id);
		if (lfd < 0) {
			if (errno == EPERM)
				return 0;
			continue; /* gone meanwhile */
		}
		memset(&li, 0, sizeof(li));
		len = sizeof(li);
		if (bpf_obj_get_info_by_fd(lfd, &li, &len) ||
		    li.type != BPF_LINK_TYPE_CGROUP ||
		    li.cgroup.cgroup_id != cgid ||
		    li.cgroup.attach_type != BPF_CGROUP_SOCK_OPS ||
		    (pfd = bpf_prog_get_fd_by_id(li.prog_id)) < 0) {
			usmc_real()->close(lfd);
			continue;
		}
		memset(&pi, 0, sizeof(pi));
		pi.nr_map_ids = 2;
		pi.map_ids = (__u64)(uintptr_t)maps;
		len = sizeof(pi);
		if (!bpf_obj_get_info_by_fd(pfd, &pi, &len) &&
		    !memcmp(pi.tag, ours.tag, sizeof(pi.tag)) &&
		    !strncmp(pi.name, ours.name, sizeof(pi.name)) &&
		    pi.nr_map_ids == 2) {
			for (i = 0; i < 2; i++) {
				int fd = bpf_map_get_fd_by_id(maps[i]);

				if (fd < 0)
					continue;
				if (cfd < 0 && map_like(fd, &mconn))
					cfd = fd;
				else if (mfd < 0 && map_like(fd, &mlisten))
					mfd = fd;
				else
					usmc_real()->close(fd);
			}
		}
		usmc_real()->close(pfd);
		if (cfd >= 0 && mfd >= 0) {
			s->shared_link = lfd;
			s->conn_fd = cfd;
			s->listen_fd = mfd;
			return 1;
		}
		if (cfd >= 0)
			usmc_real()->close(cfd);
		if (mfd >= 0)
			usmc_real()->close(mfd);
		usmc_real()->close(lfd);
	}
	return 0;
}

static int load(usmc_synopt *s, int cg, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "usmc_synopt");
	struct bpf_program *prog;
	int rc;

	s->obj = bpf_object__open_mem(usmc_synopt_bpf_obj,
				      usmc_synopt_bpf_obj_len, &oo);
	if (!s->obj) {
		rc = -errno;
		s->obj = NULL;
		set_err(err, errlen, "cannot open the embedded BPF object: %s",
			libbpf_last[0] ? libbpf_last : strerror(-rc));
		return rc;
	}
	rc = bpf_object__load(s->obj);
	if (rc) {
		if (rc == -EPERM || (rc == -EACCES && !libbpf_verifier))
			set_err(err, errlen,
				"no privilege to load eBPF (needs root, or "
				"CAP_BPF and CAP_NET_ADMIN): %s",
				strerror(-rc));
		else
			set_err(err, errlen,
				"the kernel refused the sock_ops program "
				"(needs "
				"Linux >= 5.15 with BPF TCP header options): "
				"%s",
				libbpf_last[0] ? libbpf_last : strerror(-rc));
		return rc;
	}
	s->conn_fd =
		bpf_object__find_map_fd_by_name(s->obj, "usmc_synopt_conn");
	s->listen_fd =
		bpf_object__find_map_fd_by_name(s->obj, "usmc_synopt_listen");
	prog = bpf_object__find_program_by_name(s->obj, "usmc_synopt");
	if (s->conn_fd < 0 || s->listen_fd < 0 || !prog) {
		set_err(err, errlen, "the embedded BPF object lacks its maps");
		return -EINVAL;
	}
	if (share(s, cg, bpf_program__fd(prog))) {
		/* the maps are the shared copy's now; ours go */
		bpf_object__close(s->obj);
		s->obj = NULL;
		return 0;
	}
	/* A link, not a plain attach: it goes away with the process (and
	 * with the last process that shares it). */
	s->link = bpf_program__attach_cgroup(prog, cg);
	rc = s->link ? 0 : -errno;
	if (!s->link) {
		set_err(err, errlen,
			"cannot attach sock_ops to cgroup %s: %s%s", s->cgroup,
			strerror(-rc),
			rc == -E2BIG ? " (the kernel's limit of 64 programs "
				       "per cgroup, and none of them usmc's "
				       "own to share)"
				     : "");
		return rc;
	}
	return 0;
}

int usmc_synopt_init_cgroup(usmc_synopt **p, const char *cgroup_dir, char *err,
			    size_t errlen)
{
	libbpf_print_fn_t old;
	usmc_synopt *s;
	int rc, cg;

	if (err && errlen)
		err[0] = '\0';
	if (!p)
		return -EINVAL;
	*p = NULL;
	if (usmc_libbpf_load(err, errlen))
		return -ENOSYS;
	s = calloc(1, sizeof(*s));
	if (!s) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->conn_fd = s->listen_fd = s->shared_link = -1;
	pthread_mutex_init(&s->lock, NULL);
	if (cgroup_dir && strcmp(cgroup_dir, USMC_SYNOPT_CGROUP_PRIVATE)) {
		if ((size_t)snprintf(s->cgroup, sizeof(s->cgroup), "%s",
				     cgroup_dir) >= sizeof(s->cgroup)) {
			set_err(err, errlen, "cgroup path too long");
			usmc_synopt_del(s);
			return -ENAMETOOLONG;
		}
		cg = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg < 0) {
			rc = -errno;
			set_err(err, errlen, "cannot open cgroup %s: %s",
				cgroup_dir, strerror(-rc));
			usmc_synopt_del(s);
			return rc;
		}
	} else {
		cg = find_cgroup(s->cgroup, sizeof(s->cgroup),
				 cgroup_dir != NULL, err, errlen);
		if (cg < 0) {
			usmc_synopt_del(s);
			return cg;
		}
	}
	pthread_mutex_lock(&init_lock);
	libbpf_last[0] = '\0';
	libbpf_verifier = 0;
	old = libbpf_set_print(capture_print);
	rc = load(s, cg, err, errlen);
	libbpf_set_print(old);
	pthread_mutex_unlock(&init_lock);
	usmc_real()->close(cg);
	if (rc) {
		usmc_synopt_del(s);
		return rc;
	}
	*p = s;
	return 0;
}

int usmc_synopt_init(usmc_synopt **p, char *err, size_t errlen)
{
	return usmc_synopt_init_cgroup(p, NULL, err, errlen);
}

const char *usmc_synopt_cgroup(const usmc_synopt *s)
{
	return s ? s->cgroup : "";
}

int usmc_synopt_shared(const usmc_synopt *s)
{
	return s && s->shared_link >= 0;
}

/* A TCP socket (v4 or v6) in state CLOSE: neither connecting nor
 * listening yet, so the mark is in time. */
static int check_fresh_tcp(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(int);
	int v;

	if (usmc_real()->getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len))
		return -errno;
	if (v != IPPROTO_TCP)
		return -EPROTONOSUPPORT;
	len = sizeof(int);
	if (usmc_real()->getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len))
		return -errno;
	if (v != AF_INET && v != AF_INET6)
		return -EAFNOSUPPORT;
	len = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (usmc_real()->getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len))
		return -errno;
	if (ti.tcpi_state != TCP_CLOSE)
		return -EISCONN;
	return 0;
}

int usmc_synopt_mark_connect(usmc_synopt *s, int fd)
{
	struct usmc_synopt_conn c = {.flags = USMC_SYNOPT_F_WANT};
	int rc;

	if (!s)
		return -EINVAL;
	rc = check_fresh_tcp(fd);
	if (rc)
		return rc;
	if (bpf_map_update_elem(s->conn_fd, &fd, &c, BPF_ANY))
		return -errno;
	return 0;
}

static int listen_key(int fd, struct usmc_synopt_lkey *k)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uint64_t cookie;

	memset(k, 0, sizeof(*k));
	if (usmc_real()->getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		k->port = ntohs(a->sin_port);
		if (a->sin_addr.s_addr != htonl(INADDR_ANY)) {
			k->addr[2] = htonl(0xffff);
			k->addr[3] = a->sin_addr.s_addr;
		}
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		k->port = ntohs(a->sin6_port);
		memcpy(k->addr, &a->sin6_addr, sizeof(k->addr));
	} else {
		return -EAFNOSUPPORT;
	}
	if (!k->port)
		return -EDESTADDRREQ; /* not bound: the port is not known yet */
	len = sizeof(cookie);
	if (usmc_real()->getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie,
				    &len))
		return -errno;
	k->netns = cookie;
	return 0;
}

int usmc_synopt_mark_listen(usmc_synopt *s, int fd)
{
	struct usmc_synopt_conn c = {.flags = USMC_SYNOPT_F_LISTEN};
	struct usmc_synopt_lkey k;
	uint32_t n = 0;
	int rc;

	if (!s)
		return -EINVAL;
	rc = check_fresh_tcp(fd);
	if (!rc)
		rc = listen_key(fd, &k);
	if (rc)
		return rc;
	/* The storage says "listener" so that forget() never drops the key
	 * for an accepted socket that shares the listener's address. */
	if (bpf_map_lookup_elem(s->conn_fd, &fd, &c) == 0 &&
	    (c.flags & USMC_SYNOPT_F_LISTEN))
		return 0;
	c.flags = USMC_SYNOPT_F_LISTEN;
	if (bpf_map_update_elem(s->conn_fd, &fd, &c, BPF_ANY))
		return -errno;
	pthread_mutex_lock(&s->lock);
	if (bpf_map_lookup_elem(s->listen_fd, &k, &n))
		n = 0;
	n++;
	rc = bpf_map_update_elem(s->listen_fd, &k, &n, BPF_ANY) ? -errno : 0;
	pthread_mutex_unlock(&s->lock);
	if (rc)
		bpf_map_delete_elem(s->conn_fd, &fd);
	return rc;
}

int usmc_synopt_peer_has_smc(usmc_synopt *s, int fd)
{
	struct usmc_synopt_conn c;

	if (!s)
		return -EINVAL;
	if (bpf_map_lookup_elem(s->conn_fd, &fd, &c))
		return errno == ENOENT ? -ENOENT : -errno;
	if (c.flags & USMC_SYNOPT_F_LISTEN)
		return -EINVAL;
	if (!(c.flags & USMC_SYNOPT_F_DONE))
		return -EINPROGRESS;
	return (c.flags & USMC_SYNOPT_F_SENT) && (c.flags & USMC_SYNOPT_F_PEER);
}

void usmc_synopt_forget(usmc_synopt *s, int fd)
{
	struct usmc_synopt_conn c;
	struct usmc_synopt_lkey k;
	uint32_t n;

	if (!s || bpf_map_lookup_elem(s->conn_fd, &fd, &c))
		return;
	if ((c.flags & USMC_SYNOPT_F_LISTEN) && !listen_key(fd, &k)) {
		pthread_mutex_lock(&s->lock);
		if (!bpf_map_lookup_elem(s->listen_fd, &k, &n)) {
			if (n > 1) {
				n--;
				bpf_map_update_elem(s->listen_fd, &k, &n,
						    BPF_EXIST);
			} else {
				bpf_map_delete_elem(s->listen_fd, &k);
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	bpf_map_delete_elem(s->conn_fd, &fd);
}

#else /* USMC_SYNOPT_NO_BPF: built without clang or libbpf */

struct usmc_synopt {
	int unused;
};

int usmc_synopt_init_cgroup(usmc_synopt **p, const char *cgroup_dir, char *err,
			    size_t errlen)
{
	(void)cgroup_dir;
	if (p)
		*p = NULL;
	if (err && errlen)
		snprintf(err, errlen,
			 "usmc was built without eBPF support (clang and "
			 "libbpf-dev were not found)");
	return -EOPNOTSUPP;
}

int usmc_synopt_init(usmc_synopt **p, char *err, size_t errlen)
{
	return usmc_synopt_init_cgroup(p, NULL, err, errlen);
}

const char *usmc_synopt_cgroup(const usmc_synopt *s)
{
	(void)s;
	return "";
}

int usmc_synopt_shared(const usmc_synopt *s)
{
	(void)s;
	return 0;
}

int usmc_synopt_mark_connect(usmc_synopt *s, int fd)
{
	(void)s;
	(void)fd;
	return -EOPNOTSUPP;
}

int usmc_synopt_mark_listen(usmc_synopt *s, int fd)
{
	(void)s;
	(void)fd;
	return -EOPNOTSUPP;
}

int usmc_synopt_peer_has_smc(usmc_synopt *s, int fd)
{
	(void)s;
	(void)fd;
	return -EOPNOTSUPP;
}

void usmc_synopt_forget(usmc_synopt *s, int fd)
{
	(void)s;
	(void)fd;
}

void usmc_synopt_del(usmc_synopt *s)
{
	(void)s;
}

#endif
