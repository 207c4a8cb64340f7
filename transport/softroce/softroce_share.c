/* SPDX-License-Identifier: MIT */
/*
 * One softroce UDP port for every process on an address, as one rxe device
 * serves every process of a host.
 *
 * Each process binds (address, port) with SO_REUSEPORT and claims a slot in
 * a BPF_MAP_TYPE_REUSEPORT_SOCKARRAY by storing its socket there; its QPNs
 * carry the slot in their top 7 bits. The SK_REUSEPORT program
 * (bpf/usmc_sr_share.bpf.c) sends each datagram to the socket of the slot
 * in its destination QPN and drops (and counts) the rest. The kernel takes
 * a socket out of the map when it closes, so a process that exits or is
 * killed frees its slot.
 *
 * The processes find the two maps through a file under /run/usmc named by
 * network namespace cookie, address and port, holding the map IDs; a
 * flock on it orders joins and leaves. Not a bpffs pin: `ip netns exec`
 * mounts a fresh /sys for each command, and every bpffs mount is an
 * instance of its own, so a pin there is seen by no other process. A stale
 * file is harmless: its IDs name no map any more (or one that is checked
 * for type, name and size), and then the maps are made anew. Every process
 * attaches its own copy of the program, over the same maps, so the group
 * never runs without one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "softroce_int.h"
#include "usmc_sr_share_bpf.h"

/* the program reads the slot where softroce.c puts it */
_Static_assert(USMC_SR_SLOT_SHIFT == SR_QPN_SPAN_BITS,
	       "QPN layout differs between softroce and its BPF program");

static char share_status[192];

const char *usmc_softroce_share_status(void)
{
	return share_status;
}

static void set_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(share_status, sizeof(share_status), fmt, ap);
	va_end(ap);
}

int usmc_softroce_share_slot(usmc_tp *tp)
{
	if (!tp || tp->ops != &usmc_tp_softroce_ops)
		return -1;
	return ((sr_dev *)tp)->share_slot;
}

static int bind_alone(sr_dev *d)
{
	socklen_t len = d->family == AF_INET6 ? sizeof(d->local.v6)
					      : sizeof(d->local.v4);

	if (bind(d->sock, &d->local.sa, len)) {
		d->pub.last_errno = errno;
		return errno == EADDRINUSE ? USMC_ERR_BUSY : USMC_ERR_TRANSPORT;
	}
	return 0;
}

#ifdef USMC_SR_NO_BPF

int sr_share_bind(sr_dev *d)
{
	int rc;

	d->share_slot = -1;
	set_status("%s", d->share_opt ? "built without eBPF (clang, libbpf)"
				      : "share=off");
	rc = bind_alone(d);
	if (rc == USMC_ERR_BUSY)
		set_status("UDP %u taken, unshareable: built without eBPF",
			   d->port);
	return rc;
}

void sr_share_close(sr_dev *d)
{
	if (d->sock >= 0)
		close(d->sock);
	d->sock = -1;
}

void sr_share_drops(sr_dev *d, uint64_t *qpn, uint64_t *shrt)
{
	(void)d;
	*qpn = *shrt = 0;
}

#else /* eBPF */

#include <arpa/inet.h>
#include "usmc_libbpf.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define SHARE_DIR "/run/usmc"

/* Generated from usmc_sr_share.bpf.o by transport/CMakeLists.txt. */
extern const unsigned char usmc_sr_share_bpf_obj[];
extern const size_t usmc_sr_share_bpf_obj_len;

static int quiet_print(enum libbpf_print_level level, const char *fmt,
		       va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

/* Opens and locks the file of d's port; a file the last leaver unlinked
 * while we waited for the lock is not ours: open the new one. */
static int lock_file(sr_dev *d)
{
	for (int tries = 0; tries < 8; tries++) {
		struct stat a, b;
		int fd =
			open(d->share_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX)) {
			int e = errno;

			close(fd);
			if (e == EINTR)
				continue;
			return -e;
		}
		if (!fstat(fd, &a) && !stat(d->share_path, &b) &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
			return fd;
		close(fd);
	}
	return -EAGAIN;
}

/* A map fd from an ID the file names, if it is still one of ours. */
static int map_by_id(uint32_t id, uint32_t type, const char *name, uint32_t max)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	int fd;

	if (!id)
		return -1;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != type ||
	    strcmp(info.name, name) || info.key_size != 4 ||
	    info.value_size != 8 || info.max_entries != max) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Files of ports whose processes all exited without closing (killed, or
 * gone with their network namespace) name maps that are gone: remove them
 * when making new maps, so /run/usmc does not fill up over many lab runs.
 * A file someone holds locked is left alone. */
static void gc_stale(const sr_dev *d)
{
	DIR *dir = opendir(SHARE_DIR);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		char path[sizeof(d->share_path)], buf[64];
		unsigned int id0 = 0, id1 = 0;
		ssize_t n;
		int fd, mfd;

		if (strncmp(de->d_name, "softroce-", 9) ||
		    (size_t)snprintf(path, sizeof(path), SHARE_DIR "/%s",
				     de->d_name) >= sizeof(path) ||
		    !strcmp(path, d->share_path))
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			close(fd);
			continue;
		}
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		buf[n > 0 ? n : 0] = 0;
		if (sscanf(buf, "%u %u", &id0, &id1) != 2)
			id0 = 0;
		mfd = map_by_id(id0, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
				"usmc_sr_socks", USMC_SR_SLOTS);
		if (mfd < 0)
			unlink(path);
		else
			close(mfd);
		close(fd);
	}
	closedir(dir);
}

static const char *bpf_why(int e)
{
	if (e == EPERM || e == EACCES)
		return "no eBPF privilege (CAP_BPF, NET_ADMIN, SYS_ADMIN)";
	return strerror(e);
}

/* Steps before bind; on failure nothing is bound and the caller binds
 * alone. Returns the loaded object, or NULL with the status set. */
static struct bpf_object *prepare(sr_dev *d, int lockfd, int *created)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = "usmc_sr_share");
	unsigned int ids[2] = {0, 0};
	char buf[64];
	struct bpf_object *obj;
	ssize_t n;
	int e;

	n = pread(lockfd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = 0;
		if (sscanf(buf, "%u %u", &ids[0], &ids[1]) != 2)
			ids[0] = ids[1] = 0;
	}
	d->share_socks_fd = map_by_id(ids[0], BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
				      "usmc_sr_socks", USMC_SR_SLOTS);
	d->share_drops_fd = map_by_id(ids[1], BPF_MAP_TYPE_ARRAY,
				      "usmc_sr_drops", USMC_SR_NDROPS);
	*created = d->share_socks_fd < 0 || d->share_drops_fd < 0;
	if (*created) {
		if (d->share_socks_fd >= 0)
			close(d->share_socks_fd);
		if (d->share_drops_fd >= 0)
			close(d->share_drops_fd);
		d->share_socks_fd = bpf_map_create(
			BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, "usmc_sr_socks", 4, 8,
			USMC_SR_SLOTS, NULL);
		e = errno;
		d->share_drops_fd =
			bpf_map_create(BPF_MAP_TYPE_ARRAY, "usmc_sr_drops", 4,
				       8, USMC_SR_NDROPS, NULL);
		if (d->share_drops_fd < 0)
			e = errno;
		if (d->share_socks_fd < 0 || d->share_drops_fd < 0) {
			set_status("reuseport map: %s", bpf_why(e));
			return NULL;
		}
		gc_stale(d);
	}
	obj = bpf_object__open_mem(usmc_sr_share_bpf_obj,
				   usmc_sr_share_bpf_obj_len, &oo);
	if (!obj) {
		set_status("cannot open the embedded BPF object: %s",
			   strerror(errno));
		return NULL;
	}
	if (bpf_map__reuse_fd(
		    bpf_object__find_map_by_name(obj, "usmc_sr_socks"),
		    d->share_socks_fd) ||
	    bpf_map__reuse_fd(
		    bpf_object__find_map_by_name(obj, "usmc_sr_drops"),
		    d->share_drops_fd)) {
		set_status("cannot use the shared maps: %s", strerror(errno));
		bpf_object__close(obj);
		return NULL;
	}
	e = bpf_object__load(obj);
	if (e) {
		set_status("the kernel refused the SK_REUSEPORT program "
			   "(needs Linux >= 4.19): %s",
			   bpf_why(-e));
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

static void drop_maps(sr_dev *d)
{
	if (d->share_socks_fd >= 0)
		close(d->share_socks_fd);
	if (d->share_drops_fd >= 0)
		close(d->share_drops_fd);
	d->share_socks_fd = d->share_drops_fd = -1;
}

int sr_share_bind(sr_dev *d)
{
	libbpf_print_fn_t old;
	struct bpf_object *obj = NULL;
	uint64_t cookie = 0, sk;
	socklen_t cl = sizeof(cookie);
	char ip[INET6_ADDRSTRLEN];
	int lockfd = -1, created = 0, one = 1, rc;
	uint32_t slot;

	d->share_slot = -1;
	d->share_socks_fd = d->share_drops_fd = -1;
	if (!d->share_opt) {
		set_status("share=off");
		goto alone;
	}
	if (getsockopt(d->sock, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &cl)) {
		set_status("no SO_NETNS_COOKIE (needs Linux >= 5.14): %s",
			   strerror(errno));
		goto alone;
	}
	if (mkdir(SHARE_DIR, 0700) && errno != EEXIST) {
		set_status("cannot create " SHARE_DIR ": %s", strerror(errno));
		goto alone;
	}
	inet_ntop(d->family,
		  d->family == AF_INET6 ? (const void *)&d->local.v6.sin6_addr
					: (const void *)&d->local.v4.sin_addr,
		  ip, sizeof(ip));
	snprintf(d->share_path, sizeof(d->share_path),
		 SHARE_DIR "/softroce-%llx-%s-%u", (unsigned long long)cookie,
		 ip, d->port);
	{
		char why[200];

		if (usmc_libbpf_load(why, sizeof(why))) {
			set_status("%s", why);
			goto alone;
		}
	}
	lockfd = lock_file(d);
	if (lockfd < 0) {
		set_status("cannot lock %s: %s", d->share_path,
			   strerror(-lockfd));
		goto alone;
	}
	old = libbpf_set_print(quiet_print);
	obj = prepare(d, lockfd, &created);
	libbpf_set_print(old);
	if (!obj)
		goto alone;

	setsockopt(d->sock, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	rc = bind_alone(d);
	if (rc) {
		if (rc == USMC_ERR_BUSY)
			set_status("UDP %u on %s is held by a process that "
				   "does not share it",
				   d->port, ip);
		goto fail;
	}
	/* the first free slot; EEXIST: another process holds that one */
	sk = (uint64_t)d->sock;
	rc = USMC_ERR_LIMIT;
	for (slot = 0; slot < USMC_SR_SLOTS; slot++) {
		if (!bpf_map_update_elem(d->share_socks_fd, &slot, &sk,
					 BPF_NOEXIST)) {
			rc = 0;
			break;
		}
		if (errno != EEXIST) {
			set_status("cannot claim a slot of UDP port %u: %s",
				   d->port, strerror(errno));
			rc = USMC_ERR_TRANSPORT;
			break;
		}
	}
	if (rc == USMC_ERR_LIMIT)
		set_status("all %u slots of UDP port %u on %s are taken",
			   USMC_SR_SLOTS, d->port, ip);
	if (rc)
		goto fail;
	{
		int pfd = bpf_program__fd(bpf_object__find_program_by_name(
			obj, "usmc_sr_select"));

		if (setsockopt(d->sock, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
			       &pfd, sizeof(pfd))) {
			set_status("cannot attach the SK_REUSEPORT program: %s",
				   strerror(errno));
			rc = USMC_ERR_TRANSPORT;
			goto fail;
		}
	}
	if (created) {
		struct bpf_map_info a, b;
		uint32_t la = sizeof(a), lb = sizeof(b);
		char buf[64];
		int n;

		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		bpf_obj_get_info_by_fd(d->share_socks_fd, &a, &la);
		bpf_obj_get_info_by_fd(d->share_drops_fd, &b, &lb);
		n = snprintf(buf, sizeof(buf), "%u %u\n", a.id, b.id);
		/* unrecorded, the next process would make maps of its own and
		 * its program would steer past ours */
		if (ftruncate(lockfd, 0) ||
		    pwrite(lockfd, buf, (size_t)n, 0) != n) {
			set_status("cannot write %s: %s", d->share_path,
				   strerror(errno));
			rc = USMC_ERR_TRANSPORT;
			goto fail;
		}
	}
	bpf_object__close(obj); /* the group holds the program */
	close(lockfd);
	d->share_slot = (int)slot;
	d->qpn_base = slot << USMC_SR_SLOT_SHIFT;
	share_status[0] = 0;
	return 0;

fail:
	bpf_object__close(obj);
	drop_maps(d);
	close(lockfd);
	return rc;
alone:
	if (obj) /* libbpf may not be loaded */
		bpf_object__close(obj);
	drop_maps(d);
	if (lockfd >= 0)
		close(lockfd);
	rc = bind_alone(d);
	if (rc == USMC_ERR_BUSY) {
		char why[sizeof(share_status)];

		snprintf(why, sizeof(why), "%s", share_status);
		set_status("UDP %u taken, unshareable: %s", d->port, why);
	}
	return rc;
}

void sr_share_close(sr_dev *d)
{
	int lockfd = -1;

	if (d->share_slot >= 0)
		lockfd = lock_file(d);
	/* closing takes the socket out of the map and the group */
	if (d->sock >= 0)
		close(d->sock);
	d->sock = -1;
	if (lockfd >= 0) {
		uint64_t v;
		uint32_t i;

		for (i = 0; i < USMC_SR_SLOTS; i++)
			if (!bpf_map_lookup_elem(d->share_socks_fd, &i, &v))
				break;
		if (i == USMC_SR_SLOTS)
			unlink(d->share_path);
		close(lockfd);
	}
	drop_maps(d);
	d->share_slot = -1;
}

void sr_share_drops(sr_dev *d, uint64_t *qpn, uint64_t *shrt)
{
	uint32_t k;

	*qpn = *shrt = 0;
	if (d->share_slot < 0)
		return;
	k = USMC_SR_DROP_QPN;
	bpf_map_lookup_elem(d->share_drops_fd, &k, qpn);
	k = USMC_SR_DROP_SHORT;
	bpf_map_lookup_elem(d->share_drops_fd, &k, shrt);
}

#endif
