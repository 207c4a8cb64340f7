/* SPDX-License-Identifier: MIT */
/*
 * The shm backend (transport/shm/README.md) between processes: DMBs
 * registered, attached and written both ways with signals, every byte
 * compared; writes past a DMB refused; third processes (a wrong token, a
 * spent token, another uid) that fail to get the memory while the right
 * peer gets it; a peer's SIGKILL seen as PEER_GONE, and no shared mapping
 * left after close; a fork while the device is in use: the child keeps
 * nothing of it, and the parent's death is still PEER_GONE while the
 * child lives; unregister and detach seen by the other side; the
 * same through the fault decorator. Children report through pipes and
 * their exit code (the step that failed); every wait is bounded.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm_int.h"
#include "usmc_fault.h"
#include "usmc_test.h"
#include "usmc_tp_shm.h"
#include "usmc_transport.h"

#define WAIT_MS 5000

/* What a side tells the other: its device's GID and a DMB's token. */
typedef struct who {
	uint8_t gid[16];
	uint64_t token;
	uint64_t token2;
} who;

/* Signals seen while serving, by context (small integers). */
static unsigned seen_sig[64];

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int open_shm(const char *name, usmc_tp **tp)
{
	usmc_tp_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	*tp = NULL;
	return usmc_tp_open(name, &cfg, tp);
}

/* One round of the device: completions into seen_sig. */
static void drive(usmc_tp *tp, int ms)
{
	struct pollfd pf = {usmc_tp_get_fd(tp), POLLIN, 0};
	usmc_wc wc[16];
	int n;

	poll(&pf, 1, ms);
	while ((n = usmc_tp_poll_cq(tp, wc, 16)) > 0)
		for (int i = 0; i < n; i++)
			if (wc[i].opcode == USMC_WC_DMB_SIGNAL &&
			    wc[i].wr_id < 64)
				seen_sig[wc[i].wr_id]++;
}

/* Waits until a signal of DMB context |ctx| came; 1 if it did. */
static int wait_signal(usmc_tp *tp, uintptr_t ctx)
{
	uint64_t end = ms_now() + WAIT_MS;

	while (!seen_sig[ctx] && ms_now() < end)
		drive(tp, 10);
	if (!seen_sig[ctx])
		return 0;
	seen_sig[ctx]--;
	return 1;
}

/* Waits for PEER_GONE events naming each of |ctx| (|n| of them). */
static int wait_gone(usmc_tp *tp, const uintptr_t *ctx, int n)
{
	uint64_t end = ms_now() + WAIT_MS;
	int got = 0, seen[8] = {0};
	usmc_tp_event ev;

	while (got < n && ms_now() < end) {
		drive(tp, 10);
		while (usmc_tp_get_async_event(tp, &ev) == 1)
			for (int i = 0; i < n; i++)
				if (ev.type == USMC_TP_EV_PEER_GONE &&
				    (uintptr_t)ev.context == ctx[i] &&
				    !seen[i]) {
					seen[i] = 1;
					got++;
				}
	}
	return got == n;
}

/* Reads |n| bytes from |fd| while serving |tp| (NULL: none). */
static int read_serving(int fd, void *buf, size_t n, usmc_tp *tp)
{
	uint64_t end = ms_now() + WAIT_MS;
	size_t done = 0;

	while (done < n && ms_now() < end) {
		struct pollfd pf[2] = {
			{fd, POLLIN, 0},
			{tp ? usmc_tp_get_fd(tp) : -1, POLLIN, 0}};
		ssize_t r;

		if (poll(pf, 2, 10) <= 0)
			continue;
		if (pf[1].revents)
			drive(tp, 0);
		if (!pf[0].revents)
			continue;
		r = read(fd, (uint8_t *)buf + done, n - done);
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return done == n ? 0 : -1;
}

static int write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write(fd, (const uint8_t *)buf + done, n - done);

		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

static void gid_of(usmc_tp *tp, uint8_t gid[16])
{
	usmc_port_attr pa;

	usmc_tp_query_port(tp, &pa);
	memcpy(gid, pa.gid, 16);
}

/* The test pattern: byte i of a message from |seed|. */
static uint8_t pat(unsigned seed, size_t i)
{
	return (uint8_t)(i * 131u + seed * 7u + (i >> 8));
}

/* Writes the SMC-D shape into |r|: data at 32, then the 32-byte header
 * at 0 with the signal. */
static int write_msg(usmc_tp_rdmb *r, unsigned seed, size_t dlen)
{
	uint8_t *buf = malloc(dlen);
	uint8_t hdr[32];
	int rc;

	for (size_t i = 0; i < dlen; i++)
		buf[i] = pat(seed, i + 32);
	for (size_t i = 0; i < 32; i++)
		hdr[i] = pat(seed, i);
	rc = usmc_tp_move_data(r, 32, buf, dlen, 0);
	if (!rc)
		rc = usmc_tp_move_data(r, 0, hdr, 32, 1);
	free(buf);
	return rc;
}

/* What |len| bytes of a DMB must hold after write_msg(seed, dlen). */
static void expect_msg(uint8_t *out, size_t len, unsigned seed, size_t dlen)
{
	memset(out, 0, len);
	for (size_t i = 0; i < 32 + dlen; i++)
		out[i] = pat(seed, i);
}

/* How many mappings of this process are shm's memfds. */
static int memfd_maps(void)
{
	return usmc_test_count_lines("/proc/self/maps", "memfd:usmc-");
}

static int child_status(pid_t pid)
{
	uint64_t end = ms_now() + 2 * WAIT_MS;
	int st;

	while (ms_now() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 128 + WTERMSIG(st);
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* A test's second process: |child|(rd, wr, arg) runs in a fork, its
 * return the exit status; the parent writes to it on *|to| and reads from
 * it on *|from|. Its pid, or -1. */
typedef int child_fn(int rd, int wr, const void *arg);

static pid_t spawn(child_fn *child, const void *arg, int *to, int *from)
{
	int p2c[2], c2p[2];
	pid_t pid;

	if (pipe(p2c))
		return -1;
	if (pipe(c2p)) {
		close(p2c[0]);
		close(p2c[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(p2c[1]);
		close(c2p[0]);
		_exit(child(p2c[0], c2p[1], arg));
	}
	close(p2c[0]);
	close(c2p[1]);
	if (pid < 0) {
		close(p2c[1]);
		close(c2p[0]);
		return -1;
	}
	*to = p2c[1];
	*from = c2p[0];
	return pid;
}

/* ---- register, attach, move_data both ways ------------------------------ */

#define LEN_P  70000 /* not a page multiple */
#define LEN_C  50000
#define DLEN_P 40000
#define DLEN_C 49000

typedef struct roundtrip_arg {
	const char *name;
	int unshared;
} roundtrip_arg;

static int roundtrip_child(int rd, int wr, const void *arg)
{
	const char *name = ((const roundtrip_arg *)arg)->name;
	int unshared = ((const roundtrip_arg *)arg)->unshared;
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	who me = {0}, peer;
	int rc[3];
	uint8_t tail[4] = {0xee, 0xee, 0xee, 0xee}, done;

	alarm(30);
	/* as ip netns exec (every usmc-lab command): a network and a mount
	 * namespace of its own, /run still the host's */
	if (unshared && unshare(CLONE_NEWNET | CLONE_NEWNS))
		return 9;
	if (open_shm(name, &tp))
		return 10;
	if (usmc_tp_register_dmb(tp, LEN_C, (void *)(uintptr_t)2, &m))
		return 11;
	gid_of(tp, me.gid);
	me.token = m->token;
	if (write_all(wr, &me, sizeof(me)) ||
	    read_serving(rd, &peer, sizeof(peer), tp))
		return 12;
	if (usmc_tp_attach_dmb(tp, peer.gid, peer.token, (void *)(uintptr_t)3,
			       &r))
		return 13;
	if (r->len != LEN_P || write_msg(r, 1, DLEN_P))
		return 14;
	/* past the end: refused whole, nothing written */
	rc[0] = usmc_tp_move_data(r, LEN_P - 2, tail, 4, 1);
	rc[1] = usmc_tp_move_data(r, SIZE_MAX, tail, 1, 0);
	rc[2] = usmc_tp_move_data(r, LEN_P, tail, 0, 0);
	if (write_all(wr, rc, sizeof(rc)))
		return 15;
	/* the parent's message into our DMB */
	if (!wait_signal(tp, 2))
		return 16;
	if (write_all(wr, m->addr, LEN_C))
		return 17;
	if (read_serving(rd, &done, 1, tp))
		return 18;
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
	return 0;
}

static void roundtrip(const char *name, int unshared)
{
	roundtrip_arg ra = {name, unshared};
	int to, from, rc[3];
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	usmc_tp_shm_stats st;
	uint8_t *got, *want, done = 1;
	who me = {0}, peer;
	pid_t pid;

	pid = spawn(roundtrip_child, &ra, &to, &from);
	CU_ASSERT_FATAL(pid > 0);
	USMC_ASSERT_EQ_FATAL(open_shm(name, &tp), 0);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(tp, LEN_P, (void *)(uintptr_t)1, &m), 0);
	USMC_ASSERT_EQ(m->len, LEN_P);
	gid_of(tp, me.gid);
	me.token = m->token;
	USMC_ASSERT_EQ(write_all(to, &me, sizeof(me)), 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &peer, sizeof(peer), tp), 0);
	USMC_ASSERT_MEM_EQ(peer.gid, me.gid, 8); /* one host */
	CU_ASSERT(memcmp(peer.gid + 8, me.gid + 8, 8) != 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(tp, peer.gid, peer.token,
						(void *)(uintptr_t)4, &r),
			     0);
	USMC_ASSERT_EQ(r->len, LEN_C);
	/* the child's message, and its refused writes */
	USMC_ASSERT_EQ_FATAL(read_serving(from, rc, sizeof(rc), tp), 0);
	USMC_ASSERT_EQ(rc[0], USMC_ERR_ACCESS);
	USMC_ASSERT_EQ(rc[1], USMC_ERR_ACCESS);
	USMC_ASSERT_EQ(rc[2], 0);
	USMC_ASSERT_EQ(wait_signal(tp, 1), 1);
	want = malloc(LEN_C > LEN_P ? LEN_C : LEN_P);
	got = malloc(LEN_C);
	expect_msg(want, LEN_P, 1, DLEN_P);
	USMC_ASSERT_MEM_EQ(m->addr, want, LEN_P);
	/* ours into the child's DMB; it sends the whole DMB back */
	USMC_ASSERT_EQ(write_msg(r, 2, DLEN_C), 0);
	USMC_ASSERT_EQ(read_serving(from, got, LEN_C, tp), 0);
	expect_msg(want, LEN_C, 2, DLEN_C);
	USMC_ASSERT_MEM_EQ(got, want, LEN_C);
	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	USMC_ASSERT_EQ(child_status(pid), 0);
	if (!strcmp(name, "shm")) {
		USMC_ASSERT_EQ(usmc_tp_shm_get_stats(tp, &st), 0);
		USMC_ASSERT_EQ(st.grants, 1);
		USMC_ASSERT_EQ(st.refused, 0);
		USMC_ASSERT_EQ(st.bad_msgs, 0);
		USMC_ASSERT_EQ(st.bells + st.bells_saved, 1);
	}
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
	USMC_ASSERT_EQ(memfd_maps(), 0);
	free(want);
	free(got);
	close(to);
	close(from);
}

static void test_roundtrip(void)
{
	roundtrip("shm", 0);
}

static void test_roundtrip_fault(void)
{
	roundtrip("fault:shm", 0);
}

static void test_roundtrip_netns(void)
{
	if (geteuid() != 0) {
		usmc_test_skip("a network namespace of its own needs root");
		return;
	}
	roundtrip("shm", 1);
}

/* ---- third processes --------------------------------------------------- */

/* The owner: two DMBs, tokens to the parent, serves until told; then its
 * counters, and whether /dev/shm holds any of its memfds. */
typedef struct owner_report {
	uint64_t refused, grants;
	int maps, in_dev_shm;
	char endpoint[108];
} owner_report;

/* The inodes of this process's shm memfd mappings (up to |cap|). */
static int memfd_inodes(unsigned long *ino, int cap)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (n < cap && fgets(line, sizeof(line), f)) {
		unsigned long i;

		if (strstr(line, "memfd:usmc-dmb") &&
		    sscanf(line, "%*s %*s %*s %*s %lu", &i) == 1)
			ino[n++] = i;
	}
	fclose(f);
	return n;
}

static int owner_child(int rd, int wr, const void *arg)
{
	owner_report rep;
	usmc_tp_shm_stats st;
	usmc_tp *tp;
	usmc_tp_dmb *m1, *m2;
	unsigned long ino[8];
	struct dirent *de;
	DIR *dir;
	who me = {0};
	uint8_t done;

	(void)arg;
	alarm(30);
	if (open_shm("shm", &tp) ||
	    usmc_tp_register_dmb(tp, 4096, (void *)(uintptr_t)1, &m1) ||
	    usmc_tp_register_dmb(tp, 4096, (void *)(uintptr_t)2, &m2))
		return 10;
	gid_of(tp, me.gid);
	me.token = m1->token;
	me.token2 = m2->token;
	if (write_all(wr, &me, sizeof(me)) || read_serving(rd, &done, 1, tp))
		return 11;
	memset(&rep, 0, sizeof(rep));
	usmc_tp_shm_get_stats(tp, &st);
	rep.refused = st.refused;
	rep.grants = st.grants;
	rep.maps = memfd_inodes(ino, 8);
	snprintf(rep.endpoint, sizeof(rep.endpoint), "%s",
		 usmc_tp_shm_endpoint(tp));
	/* no name of ours in /dev/shm: no entry is one of our memfds */
	dir = opendir("/dev/shm");
	while (dir && (de = readdir(dir)) != NULL) {
		char path[512];
		struct stat s;

		snprintf(path, sizeof(path), "/dev/shm/%s", de->d_name);
		if (!stat(path, &s))
			for (int i = 0; i < rep.maps; i++)
				if (s.st_ino == ino[i])
					rep.in_dev_shm++;
	}
	if (dir)
		closedir(dir);
	if (write_all(wr, &rep, sizeof(rep)))
		return 12;
	read_serving(rd, &done, 1, NULL);
	usmc_tp_close(tp);
	return 0;
}

enum { ATK_TOKEN, ATK_UID };

/* An attacker: its own device, the owner's GID and a token. As uid 65534
 * it also tries to list the endpoint directory and the owner's fds. */
static int attacker(int how, const who *o, uint64_t token, pid_t owner,
		    const char *dir, const char *endpoint)
{
	usmc_tp_rdmb *r = NULL;
	usmc_tp *tp;
	char path[64];
	int rc;

	alarm(30);
	if (how == ATK_UID) {
		struct sockaddr_un sa;
		int fd;

		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			return 20;
		if (opendir(dir) || errno != EACCES)
			return 21;
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)owner);
		if (opendir(path))
			return 22;
		snprintf(path, sizeof(path), "/proc/%d/map_files", (int)owner);
		if (opendir(path))
			return 23;
		/* the endpoint itself, named */
		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", endpoint);
		fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		if (fd < 0 ||
		    !connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    errno != EACCES)
			return 24;
		close(fd);
		/* a device of its own, where it can have one (not if
		 * /run/usmc is root's only and it has no runtime dir) */
		if (open_shm("shm", &tp))
			return 0;
	} else if (open_shm("shm", &tp)) {
		return 27;
	}
	rc = usmc_tp_attach_dmb(tp, o->gid, token, NULL, &r);
	usmc_tp_close(tp);
	if (!rc)
		return 25; /* it got the memory */
	return rc == USMC_ERR_ACCESS ? 0 : 26;
}

static void test_third_process(void)
{
	int to, from;
	owner_report rep;
	usmc_tp *tp;
	usmc_tp_rdmb *r1 = NULL, *r2 = NULL;
	char dir[108], ep[128], *slash;
	uint8_t done = 1;
	struct dirent *de;
	int listed = 0;
	DIR *dd;
	who o;
	pid_t owner, atk;

	owner = spawn(owner_child, NULL, &to, &from);
	CU_ASSERT_FATAL(owner > 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &o, sizeof(o), NULL), 0);
	USMC_ASSERT_EQ_FATAL(open_shm("shm", &tp), 0);
	snprintf(dir, sizeof(dir), "%s", usmc_tp_shm_endpoint(tp));
	slash = strrchr(dir, '/');
	*slash = 0;
	/* the owner's endpoint: its gid_ext in hex */
	snprintf(ep, sizeof(ep), "%s/", dir);
	for (int i = 0; i < 8; i++)
		snprintf(ep + strlen(ep), 3, "%02x", o.gid[8 + i]);

	/* a wrong token */
	atk = fork();
	if (atk == 0)
		_exit(attacker(ATK_TOKEN, &o, o.token ^ 1, owner, dir, ep));
	USMC_ASSERT_EQ(child_status(atk), 0);
	/* the peer, with the right one */
	USMC_ASSERT_EQ(usmc_tp_attach_dmb(tp, o.gid, o.token, NULL, &r1), 0);
	/* the right token, spent */
	atk = fork();
	if (atk == 0)
		_exit(attacker(ATK_TOKEN, &o, o.token, owner, dir, ep));
	USMC_ASSERT_EQ(child_status(atk), 0);
	/* another uid, with a token not yet spent */
	if (geteuid() == 0) {
		atk = fork();
		if (atk == 0)
			_exit(attacker(ATK_UID, &o, o.token2, owner, dir, ep));
		USMC_ASSERT_EQ(child_status(atk), 0);
	} else {
		usmc_test_skip("another uid needs root to setresuid to");
	}
	/* which was good: the peer gets it */
	USMC_ASSERT_EQ(usmc_tp_attach_dmb(tp, o.gid, o.token2, NULL, &r2), 0);

	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &rep, sizeof(rep), NULL), 0);
	USMC_ASSERT_EQ(rep.refused, 2);
	USMC_ASSERT_EQ(rep.grants, 2);
	USMC_ASSERT_EQ(rep.maps, 2);
	USMC_ASSERT_EQ(rep.in_dev_shm, 0);
	/* root lists the directory (as it could ptrace the owner anyway) */
	dd = opendir(dir);
	CU_ASSERT_PTR_NOT_NULL(dd);
	while (dd && (de = readdir(dd)) != NULL)
		if (!strcmp(de->d_name, strrchr(rep.endpoint, '/') + 1))
			listed = 1;
	if (dd)
		closedir(dd);
	USMC_ASSERT_EQ(listed, 1);
	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	USMC_ASSERT_EQ(child_status(owner), 0);
	if (r1)
		usmc_tp_detach_dmb(r1);
	if (r2)
		usmc_tp_detach_dmb(r2);
	usmc_tp_close(tp);
	close(to);
	close(from);
}

/* An owner of uid 65534 in a directory of its own; root, which passes the
 * socket's mode, connects with the right token and is refused by the
 * owner's uid check. */
static int uid_owner_child(int rd, int wr, const void *arg)
{
	const char *dir = arg;
	usmc_tp_shm_stats st;
	usmc_tp_config cfg;
	usmc_tp_dmb *m;
	usmc_tp *tp;
	char opts[160];
	who me = {0};
	uint8_t done;

	alarm(30);
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 10;
	memset(&cfg, 0, sizeof(cfg));
	snprintf(opts, sizeof(opts), "dir=%s", dir);
	cfg.options = opts;
	if (usmc_tp_open("shm", &cfg, &tp) ||
	    usmc_tp_register_dmb(tp, 4096, NULL, &m))
		return 11;
	gid_of(tp, me.gid);
	me.token = m->token;
	if (write_all(wr, &me, sizeof(me)) || read_serving(rd, &done, 1, tp))
		return 12;
	usmc_tp_shm_get_stats(tp, &st);
	if (write_all(wr, &st, sizeof(st)))
		return 13;
	usmc_tp_close(tp);
	return 0;
}

static void test_other_uid_refused(void)
{
	char dir[] = "/tmp/usmc-shm-test.XXXXXX";
	uint8_t rec[USMC_SHM_MSG_LEN], rsp[64], done = 1;
	usmc_shm_msg req = {.type = USMC_SHM_ATTACH};
	usmc_tp_shm_stats st;
	struct sockaddr_un sa;
	struct pollfd pf;
	int to, from, fd;
	who o;
	pid_t pid;

	if (geteuid() != 0) {
		usmc_test_skip("an owner of another uid needs root");
		return;
	}
	USMC_ASSERT_EQ_FATAL(mkdtemp(dir) != NULL, 1);
	USMC_ASSERT_EQ_FATAL(chown(dir, 65534, 65534), 0);
	pid = spawn(uid_owner_child, dir, &to, &from);
	CU_ASSERT_FATAL(pid > 0);
	if (read_serving(from, &o, sizeof(o), NULL)) {
		USMC_ASSERT_EQ(child_status(pid), 0);
		rmdir(dir);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/", dir);
	for (int i = 0; i < 8; i++)
		snprintf(sa.sun_path + strlen(sa.sun_path), 3, "%02x",
			 o.gid[8 + i]);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	USMC_ASSERT_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	req.token = o.token;
	for (int i = 0; i < 8; i++)
		req.gid = req.gid << 8 | o.gid[i];
	usmc_shm_msg_encode(&req, rec);
	/* closed without a grant: before our request (the owner checks at
	 * accept, and the send fails) or with it unread (a reset) */
	if (send(fd, rec, sizeof(rec), MSG_NOSIGNAL) < 0) {
		CU_ASSERT(errno == EPIPE || errno == ECONNRESET);
	} else {
		ssize_t r;

		pf = (struct pollfd){fd, POLLIN, 0};
		USMC_ASSERT_EQ(poll(&pf, 1, WAIT_MS), 1);
		r = recv(fd, rsp, sizeof(rsp), MSG_DONTWAIT);
		CU_ASSERT(r == 0 || (r < 0 && errno == ECONNRESET));
	}
	close(fd);
	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	USMC_ASSERT_EQ(read_serving(from, &st, sizeof(st), NULL), 0);
	USMC_ASSERT_EQ(st.refused, 1);
	USMC_ASSERT_EQ(st.grants, 0);
	USMC_ASSERT_EQ(child_status(pid), 0);
	USMC_ASSERT_EQ(rmdir(dir), 0); /* the endpoint went with close */
	close(to);
	close(from);
}

/* ---- a peer's death ----------------------------------------------------- */

static int victim_child(int rd, int wr, const void *arg)
{
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	who me = {0}, peer;
	uint8_t step = 1;

	(void)arg;
	alarm(30);
	if (open_shm("shm", &tp) || usmc_tp_register_dmb(tp, 8192, NULL, &m))
		return 10;
	gid_of(tp, me.gid);
	me.token = m->token;
	if (write_all(wr, &me, sizeof(me)) ||
	    read_serving(rd, &peer, sizeof(peer), tp) ||
	    usmc_tp_attach_dmb(tp, peer.gid, peer.token, NULL, &r) ||
	    write_all(wr, &step, 1) || read_serving(rd, &step, 1, tp))
		return 11;
	/* its last words, then it is killed before the parent polls */
	if (write_msg(r, 4, 4000) || write_all(wr, &step, 1))
		return 12;
	for (;;)
		drive(tp, 100);
}

static void test_peer_killed(void)
{
	int to, from;
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	uintptr_t ctx[2] = {5, 6};
	uint8_t step = 1, x = 1, want[8192];
	who me = {0}, peer;
	pid_t pid;
	int st;

	memset(seen_sig, 0, sizeof(seen_sig));
	pid = spawn(victim_child, NULL, &to, &from);
	CU_ASSERT_FATAL(pid > 0);
	USMC_ASSERT_EQ_FATAL(open_shm("shm", &tp), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_register_dmb(tp, 8192, (void *)ctx[0], &m),
			     0);
	gid_of(tp, me.gid);
	me.token = m->token;
	USMC_ASSERT_EQ(write_all(to, &me, sizeof(me)), 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &peer, sizeof(peer), tp), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(tp, peer.gid, peer.token,
						(void *)ctx[1], &r),
			     0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &step, 1, tp), 0);
	/* our DMB, the child's, and the signal area of each direction */
	USMC_ASSERT_EQ(memfd_maps(), 4);
	USMC_ASSERT_EQ(write_all(to, &step, 1), 0);
	/* not driving the device until the child is dead: its signal is
	 * still in the area when the connection's HUP comes */
	USMC_ASSERT_EQ_FATAL(read_serving(from, &step, 1, NULL), 0);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	USMC_ASSERT_EQ(wait_gone(tp, ctx, 2), 1);
	/* what it wrote before it died is there, and was signalled */
	USMC_ASSERT_EQ(seen_sig[5], 1);
	expect_msg(want, sizeof(want), 4, 4000);
	USMC_ASSERT_MEM_EQ(m->addr, want, sizeof(want));
	USMC_ASSERT_EQ(usmc_tp_move_data(r, 0, &x, 1, 1), USMC_ERR_CONNRESET);
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
	USMC_ASSERT_EQ(memfd_maps(), 0);
	close(to);
	close(from);
}

/* ---- fork with a device open ------------------------------------------- */

/* How many of this process's fds are |kind| ("socket:", "anon_inode:",
 * "/memfd:usmc-"): the targets of /proc/self/fd's links. */
static int fds_of(const char *kind)
{
	char path[300], tgt[128];
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL) {
		ssize_t l;

		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		l = readlink(path, tgt, sizeof(tgt) - 1);
		if (l <= 0)
			continue;
		tgt[l] = 0;
		n += !strncmp(tgt, kind, strlen(kind));
	}
	closedir(d);
	return n;
}

/* The forked child of a process with a device open: none of the parent's
 * device is left in it (no endpoint or connection socket, eventfd, epoll
 * set, memfd, mapping), and a device of its own opens. Then it lingers
 * (its parent is killed while it lives) until |hold| ends. */
static int fork_grandchild(int wr, int hold, const uint8_t parent_gid[16])
{
	usmc_tp *tp;
	usmc_tp_dmb *m;
	uint8_t gid[16], ok = 0, c;

	alarm(30);
	if (memfd_maps() || fds_of("socket:") || fds_of("anon_inode:") ||
	    fds_of("/memfd:usmc-"))
		ok = 20;
	else if (open_shm("shm", &tp) ||
		 usmc_tp_register_dmb(tp, 4096, NULL, &m))
		ok = 21;
	else {
		gid_of(tp, gid);
		if (!memcmp(gid + 8, parent_gid + 8, 8) || memfd_maps() != 1)
			ok = 22;
	}
	if (write_all(wr, &ok, 1))
		return 23;
	while (read(hold, &c, 1) < 0 && errno == EINTR)
		;
	return ok;
}

static int fork_owner(int rd, int wr, int gwr, int hold)
{
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	uint8_t want[4096];
	who me = {0}, peer;
	uint8_t step = 1;
	pid_t kid;

	alarm(30);
	if (open_shm("shm", &tp) || usmc_tp_register_dmb(tp, 4096, NULL, &m))
		return 10;
	gid_of(tp, me.gid);
	me.token = m->token;
	if (write_all(wr, &me, sizeof(me)) ||
	    read_serving(rd, &peer, sizeof(peer), tp) ||
	    usmc_tp_attach_dmb(tp, peer.gid, peer.token, NULL, &r))
		return 11;
	/* a child while the DMB, the attachment and both connections live */
	kid = fork();
	if (kid < 0)
		return 12;
	if (kid == 0)
		_exit(fork_grandchild(gwr, hold, me.gid));
	/* unaffected: the peer's message arrives, ours goes */
	if (write_all(wr, &step, 1) || !wait_signal(tp, 0))
		return 13;
	expect_msg(want, sizeof(want), 5, 2000);
	if (memcmp(m->addr, want, sizeof(want)))
		return 14;
	if (write_msg(r, 6, 3000) || write_all(wr, &step, 1))
		return 15;
	for (;;)
		drive(tp, 100);
}

/* A process with a device in use forks; its child keeps nothing of the
 * device, so the parent's SIGKILL, with the child still alive, is the
 * peer's PEER_GONE (the child's copies of the control connections would
 * otherwise keep them open), and no memory of the peer's stays mapped in
 * it. */
static void test_fork_child(void)
{
	int p2c[2], c2p[2], g[2], hold[2];
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	uintptr_t ctx[2] = {5, 6};
	uint8_t step, gst = 0xff, want[8192];
	who me = {0}, peer;
	pid_t pid;
	int st;

	memset(seen_sig, 0, sizeof(seen_sig));
	USMC_ASSERT_EQ_FATAL(pipe(p2c) | pipe(c2p) | pipe(g) | pipe(hold), 0);
	pid = fork();
	if (pid == 0) {
		close(p2c[1]);
		close(c2p[0]);
		close(g[0]);
		close(hold[1]);
		_exit(fork_owner(p2c[0], c2p[1], g[1], hold[0]));
	}
	close(p2c[0]);
	close(c2p[1]);
	close(g[1]);
	close(hold[0]);
	USMC_ASSERT_EQ_FATAL(open_shm("shm", &tp), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_register_dmb(tp, 8192, (void *)ctx[0], &m),
			     0);
	gid_of(tp, me.gid);
	me.token = m->token;
	USMC_ASSERT_EQ_FATAL(read_serving(c2p[0], &peer, sizeof(peer), tp), 0);
	USMC_ASSERT_EQ(write_all(p2c[1], &me, sizeof(me)), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(tp, peer.gid, peer.token,
						(void *)ctx[1], &r),
			     0);
	USMC_ASSERT_EQ_FATAL(read_serving(c2p[0], &step, 1, tp), 0);
	USMC_ASSERT_EQ(read_serving(g[0], &gst, 1, tp), 0);
	USMC_ASSERT_EQ(gst, 0);
	USMC_ASSERT_EQ(write_msg(r, 5, 2000), 0);
	USMC_ASSERT_EQ_FATAL(read_serving(c2p[0], &step, 1, tp), 0);
	USMC_ASSERT_EQ(wait_signal(tp, ctx[0]), 1);
	expect_msg(want, sizeof(want), 6, 3000);
	USMC_ASSERT_MEM_EQ(m->addr, want, sizeof(want));
	/* the parent dies, its child lives on */
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	USMC_ASSERT_EQ(wait_gone(tp, ctx, 2), 1);
	USMC_ASSERT_EQ(usmc_tp_move_data(r, 0, &step, 1, 1),
		       USMC_ERR_CONNRESET);
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
	USMC_ASSERT_EQ(memfd_maps(), 0);
	/* the child ends when its hold pipe closes */
	close(hold[1]);
	close(p2c[1]);
	close(c2p[0]);
	close(g[0]);
}

/* ---- a reused DMB stays with its holder's process ----------------------- */

/* The holder: attaches the parent's DMB, detaches it (parked: it still
 * maps it), and offers a DMB of its own for the parent to attach. */
static int holder_child(int rd, int wr, const void *arg)
{
	usmc_tp *h;
	usmc_tp_dmb *mh;
	usmc_tp_rdmb *rm;
	who me = {0}, owner;
	uint8_t done;

	(void)arg;
	alarm(30);
	if (open_shm("shm", &h) ||
	    usmc_tp_register_dmb(h, 512, (void *)(uintptr_t)1, &mh))
		return 10;
	if (read_serving(rd, &owner, sizeof(owner), h) ||
	    usmc_tp_attach_dmb(h, owner.gid, owner.token, NULL, &rm))
		return 11;
	usmc_tp_detach_dmb(rm);
	gid_of(h, me.gid);
	me.token = mh->token;
	if (write_all(wr, &me, sizeof(me)) || read_serving(rd, &done, 1, h))
		return 12;
	usmc_tp_close(h);
	return 0;
}

/* The owner's device |a| gives its DMB, held (parked) by another
 * process, to a new connection only if that connection's peer gid names
 * the holder's process: not a device of the owner's own process (which
 * any process of the uid could claim in a CLC), not a device the owner
 * has no connection to; the holder's device once the owner attached one
 * of its DMBs (its control connection says who listens there). */
static void test_reuse_holder(void)
{
	usmc_tp *a, *b;
	usmc_tp_dmb *m, *mb;
	usmc_tp_rdmb *rb, *rh;
	who me = {0}, holder;
	uint8_t gb[16], done = 1;
	int to, from;
	pid_t pid;

	USMC_ASSERT_EQ_FATAL(open_shm("shm", &a), 0);
	USMC_ASSERT_EQ_FATAL(open_shm("shm", &b), 0);
	gid_of(b, gb);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(a, 512, (void *)(uintptr_t)7, &m), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_register_dmb(b, 512, NULL, &mb), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(a, gb, mb->token, NULL, &rb),
			     0);
	pid = spawn(holder_child, NULL, &to, &from);
	CU_ASSERT_FATAL(pid > 0);
	gid_of(a, me.gid);
	me.token = m->token;
	USMC_ASSERT_EQ(write_all(to, &me, sizeof(me)), 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &holder, sizeof(holder), a), 0);
	/* b is ours: the same process, not the holder */
	USMC_ASSERT_EQ(usmc_tp_shm_dmb_reuse(m, (void *)(uintptr_t)8, gb),
		       USMC_ERR_ACCESS);
	/* the holder's device, before we have a connection to it */
	USMC_ASSERT_EQ(
		usmc_tp_shm_dmb_reuse(m, (void *)(uintptr_t)8, holder.gid),
		USMC_ERR_ACCESS);
	USMC_ASSERT_EQ(
		usmc_tp_attach_dmb(a, holder.gid, holder.token, NULL, &rh), 0);
	USMC_ASSERT_EQ(
		usmc_tp_shm_dmb_reuse(m, (void *)(uintptr_t)8, holder.gid), 0);
	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	USMC_ASSERT_EQ(child_status(pid), 0);
	close(to);
	close(from);
	usmc_tp_detach_dmb(rh);
	usmc_tp_detach_dmb(rb);
	usmc_tp_unregister_dmb(m);
	usmc_tp_unregister_dmb(mb);
	usmc_tp_close(b);
	usmc_tp_close(a);
	USMC_ASSERT_EQ(memfd_maps(), 0);
}

/* ---- two devices in one process ---------------------------------------- */

/* attach to a device of the same process (served inline), unregister and
 * detach seen by the other side, and what a caller gets wrong */
static void in_process(const char *name)
{
	usmc_tp *a, *b;
	usmc_tp_dmb *m1, *m2;
	usmc_tp_rdmb *r1, *r2, *r3 = NULL;
	uint8_t ga[16], gb[16], bad[16], want[512];
	uintptr_t gone_m2 = 8, gone_r1 = 9;

	memset(seen_sig, 0, sizeof(seen_sig));
	USMC_ASSERT_EQ_FATAL(open_shm(name, &a), 0);
	USMC_ASSERT_EQ_FATAL(open_shm(name, &b), 0);
	gid_of(a, ga);
	gid_of(b, gb);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(a, 512, (void *)(uintptr_t)7, &m1), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_register_dmb(a, 512, (void *)gone_m2, &m2),
			     0);
	CU_ASSERT(m1->token != m2->token);
	USMC_ASSERT_EQ(
		usmc_tp_attach_dmb(b, ga, m1->token, (void *)gone_r1, &r1), 0);
	USMC_ASSERT_EQ(usmc_tp_attach_dmb(b, ga, m2->token, NULL, &r2), 0);
	/* once only: a second device is refused; the device that holds it
	 * gets its own mapping again (the same memory, no second grant) */
	{
		usmc_tp *c;
		usmc_tp_shm_stats s0, s1;
		int shm = !usmc_tp_shm_get_stats(a, &s0);

		USMC_ASSERT_EQ_FATAL(open_shm(name, &c), 0);
		USMC_ASSERT_EQ(usmc_tp_attach_dmb(c, ga, m1->token, NULL, &r3),
			       USMC_ERR_ACCESS);
		usmc_tp_close(c);
		USMC_ASSERT_EQ(usmc_tp_attach_dmb(b, ga, m1->token, NULL, &r3),
			       0);
		CU_ASSERT(r3 && r3->addr == r1->addr && r3->len == r1->len);
		usmc_tp_detach_dmb(r3);
		if (shm) {
			usmc_tp_shm_get_stats(a, &s1);
			USMC_ASSERT_EQ(s1.grants, s0.grants);
		}
	}
	memcpy(bad, ga, 16);
	bad[0] ^= 1;
	USMC_ASSERT_EQ(usmc_tp_attach_dmb(b, bad, m1->token, NULL, &r3),
		       USMC_ERR_NOTFOUND);
	memcpy(bad, ga, 16);
	bad[15] ^= 1;
	USMC_ASSERT_EQ(usmc_tp_attach_dmb(b, bad, m1->token, NULL, &r3),
		       USMC_ERR_NOTFOUND);
	/* a write and its signal */
	USMC_ASSERT_EQ(write_msg(r1, 3, 400), 0);
	USMC_ASSERT_EQ(wait_signal(a, 7), 1);
	expect_msg(want, 512, 3, 400);
	USMC_ASSERT_MEM_EQ(m1->addr, want, 512);
	/* signals coalesce: two signals before a poll are one or two */
	USMC_ASSERT_EQ(usmc_tp_move_data(r1, 0, want, 1, 1), 0);
	USMC_ASSERT_EQ(usmc_tp_move_data(r1, 0, want, 1, 1), 0);
	USMC_ASSERT_EQ(wait_signal(a, 7), 1);
	/* a doorbell read by get_async_event (which serves the endpoint)
	 * is rung again while the signal waits for poll_cq: the owner's fd
	 * stays readable (it was eaten, and the owner slept on the signal) */
	{
		struct pollfd pf = {usmc_tp_get_fd(a), POLLIN, 0};
		usmc_tp_event ev;

		USMC_ASSERT_EQ(usmc_tp_move_data(r1, 0, want, 1, 1), 0);
		USMC_ASSERT_EQ(usmc_tp_get_async_event(a, &ev), 0);
		USMC_ASSERT_EQ(poll(&pf, 1, 0), 1);
		USMC_ASSERT_EQ(wait_signal(a, 7), 1);
	}
	/* the owner unregisters: the attacher hears of it */
	usmc_tp_unregister_dmb(m1);
	USMC_ASSERT_EQ(wait_gone(b, &gone_r1, 1), 1);
	USMC_ASSERT_EQ(usmc_tp_move_data(r1, 0, want, 1, 1),
		       USMC_ERR_CONNRESET);
	usmc_tp_detach_dmb(r1);
	/* the attacher detaches: its map is parked, the owner hears
	 * nothing; it gives the DMB to a new user (the core's next
	 * connection with the same peer), which the attacher attaches
	 * again with no message: a signal of the old user still in the
	 * area is not the new one's */
	{
		usmc_tp_shm_stats sa, sb;
		uintptr_t gone_r2 = 11;
		usmc_tp_event ev;
		int shm = !usmc_tp_shm_get_stats(a, &sa);

		USMC_ASSERT_EQ(usmc_tp_move_data(r2, 0, want, 1, 1), 0);
		usmc_tp_detach_dmb(r2);
		/* no DETACH: serving the endpoint (which get_async_event
		 * does, and which takes no signal) raises no PEER_GONE */
		usleep(20000);
		USMC_ASSERT_EQ(usmc_tp_get_async_event(a, &ev), 0);
		if (!shm) {
			/* through fault:shm no reuse: the DMB stays its own */
			USMC_ASSERT_EQ(usmc_tp_shm_dmb_reuse(
					       m2, (void *)(uintptr_t)10, gb),
				       USMC_ERR_INVALID_ARGUMENT);
			USMC_ASSERT_EQ(wait_signal(a, (uintptr_t)gone_m2), 1);
			usmc_tp_unregister_dmb(m2);
		} else {
			usmc_tp_dmb *mb;
			usmc_tp_rdmb *rb;

			usmc_tp_shm_get_stats(b, &sb);
			USMC_ASSERT_EQ(sb.parked, 1);
			/* only for a connection with the holder's process:
			 * a has no connection to b's endpoint yet to tell */
			USMC_ASSERT_EQ(usmc_tp_shm_dmb_reuse(
					       m2, (void *)(uintptr_t)10, gb),
				       USMC_ERR_ACCESS);
			USMC_ASSERT_EQ_FATAL(
				usmc_tp_register_dmb(b, 512, NULL, &mb), 0);
			USMC_ASSERT_EQ_FATAL(
				usmc_tp_attach_dmb(a, gb, mb->token, NULL, &rb),
				0);
			/* nor for another device's connection (a claim of
			 * a gid_ext nobody listens on) */
			memcpy(bad, gb, 16);
			bad[15] ^= 1;
			USMC_ASSERT_EQ(usmc_tp_shm_dmb_reuse(
					       m2, (void *)(uintptr_t)10, bad),
				       USMC_ERR_ACCESS);
			USMC_ASSERT_EQ(usmc_tp_shm_dmb_reuse(
					       m2, (void *)(uintptr_t)10, gb),
				       0);
			USMC_ASSERT_EQ(usmc_tp_attach_dmb(b, ga, m2->token,
							  (void *)gone_r2, &r2),
				       0);
			CU_ASSERT(r2->addr != NULL && r2->len == 512);
			for (int k = 0; k < 5; k++)
				drive(a, 2);
			USMC_ASSERT_EQ(seen_sig[gone_m2], 0);
			USMC_ASSERT_EQ(seen_sig[10], 0);
			USMC_ASSERT_EQ(write_msg(r2, 5, 300), 0);
			USMC_ASSERT_EQ(wait_signal(a, 10), 1);
			expect_msg(want, 512, 5, 300);
			USMC_ASSERT_MEM_EQ(m2->addr, want, 512);
			for (int k = 0; k < 5; k++)
				drive(a, 2);
			USMC_ASSERT_EQ(seen_sig[gone_m2], 0);
			USMC_ASSERT_EQ(seen_sig[10], 0);
			usmc_tp_shm_get_stats(a, &sa);
			usmc_tp_shm_get_stats(b, &sb);
			USMC_ASSERT_EQ(sa.grants, 2); /* m1 and m2, once */
			USMC_ASSERT_EQ(sa.reused, 1);
			USMC_ASSERT_EQ(sb.reattached, 2); /* r3, r2 again */
			USMC_ASSERT_EQ(sb.parked, 0);
			/* the owner's unregister frees the map, in use or
			 * parked */
			usmc_tp_unregister_dmb(m2);
			USMC_ASSERT_EQ(wait_gone(b, &gone_r2, 1), 1);
			usmc_tp_detach_dmb(r2);
			usmc_tp_shm_get_stats(b, &sb);
			USMC_ASSERT_EQ(sb.parked, 0);
			usmc_tp_detach_dmb(rb);
			usmc_tp_unregister_dmb(mb);
		}
	}
	USMC_ASSERT_EQ(usmc_tp_register_dmb(a, 0, NULL, &m1),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_tp_close(b);
	usmc_tp_close(a);
	USMC_ASSERT_EQ(memfd_maps(), 0);
}

static void test_in_process(void)
{
	in_process("shm");
}

static void test_in_process_fault(void)
{
	usmc_tp_dmb *m;
	usmc_tp *tp;
	char err[200];

	in_process("fault:shm");
	/* fail-reg-mr refuses exactly the 2nd DMB */
	USMC_ASSERT_EQ_FATAL(open_shm("fault:shm", &tp), 0);
	USMC_ASSERT_EQ(
		usmc_fault_add(tp, "fail-reg-mr:nth=2", err, sizeof(err)), 0);
	USMC_ASSERT_EQ(usmc_tp_register_dmb(tp, 64, NULL, &m), 0);
	usmc_tp_unregister_dmb(m);
	USMC_ASSERT_EQ(usmc_tp_register_dmb(tp, 64, NULL, &m), USMC_ERR_NOMEM);
	USMC_ASSERT_EQ(usmc_tp_register_dmb(tp, 64, NULL, &m), 0);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
}

/* Signals of |tp| so far, counted by context (1 or 2) into |sig|. */
static void take_sigs(usmc_tp *tp, unsigned sig[3])
{
	usmc_wc wc[16];
	int n;

	while ((n = usmc_tp_poll_cq(tp, wc, 16)) > 0)
		for (int i = 0; i < n; i++)
			if (wc[i].opcode == USMC_WC_DMB_SIGNAL)
				sig[wc[i].wr_id < 3 ? wc[i].wr_id : 0]++;
}

/* The owner unregisters a DMB while the attacher, which has not read the
 * UNREG yet, signals it; then registers another, which the attacher
 * attaches. The old DMB's slot must not be the new one's before the
 * attacher let go, or the new DMB gets the old one's signal (a zeroed
 * header taken for a CDC message). More rounds than a connection has
 * slots: the attacher's answer frees each one. */
static void slot_reuse(const char *name)
{
	enum { ROUNDS = 9000 };
	usmc_tp *a, *b;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	uint8_t ga[16];
	unsigned wrong = 0, lost = 0, bad_data = 0, no_gone = 0;

	USMC_ASSERT_EQ_FATAL(open_shm(name, &a), 0);
	USMC_ASSERT_EQ_FATAL(open_shm(name, &b), 0);
	gid_of(a, ga);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(a, 64, (void *)(uintptr_t)2, &m), 0);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_attach_dmb(b, ga, m->token, (void *)(uintptr_t)2, &r),
		0);
	for (uint64_t i = 0; i < ROUNDS; i++) {
		uintptr_t ctx = 1 + (uintptr_t)(i % 2), old = 3 - ctx;
		unsigned sig[3] = {0, 0, 0};
		usmc_tp_rdmb *r2;
		usmc_tp_event ev;
		uint64_t v = 0x5a5a000000000000ull | i;
		int gone = 0, rc;

		usmc_tp_unregister_dmb(m);
		/* b has not served its connection: the UNREG waits there */
		USMC_ASSERT_EQ_FATAL(usmc_tp_move_data(r, 0, &v, 8, 1), 0);
		USMC_ASSERT_EQ_FATAL(
			usmc_tp_register_dmb(a, 64, (void *)ctx, &m), 0);
		rc = usmc_tp_attach_dmb(b, ga, m->token, (void *)ctx, &r2);
		USMC_ASSERT_EQ_FATAL(rc, 0);
		while (usmc_tp_get_async_event(b, &ev) == 1)
			if (ev.type == USMC_TP_EV_PEER_GONE &&
			    (uintptr_t)ev.context == old)
				gone = 1;
		no_gone += !gone;
		USMC_ASSERT_EQ_FATAL(usmc_tp_move_data(r, 0, &v, 8, 1),
				     USMC_ERR_CONNRESET);
		usmc_tp_detach_dmb(r);
		r = r2;
		/* nothing signalled the new DMB yet, and the old one is gone */
		take_sigs(a, sig);
		wrong += sig[1] + sig[2] + sig[0];
		/* its own signal, once, with its data */
		USMC_ASSERT_EQ_FATAL(usmc_tp_move_data(r, 0, &v, 8, 1), 0);
		memset(sig, 0, sizeof(sig));
		take_sigs(a, sig);
		lost += sig[ctx] != 1;
		wrong += sig[old] + sig[0];
		bad_data += memcmp(m->addr, &v, 8) != 0;
	}
	USMC_ASSERT_EQ(wrong, 0);
	USMC_ASSERT_EQ(lost, 0);
	USMC_ASSERT_EQ(bad_data, 0);
	USMC_ASSERT_EQ(no_gone, 0);
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(b);
	usmc_tp_close(a);
	USMC_ASSERT_EQ(memfd_maps(), 0);
}

static void test_slot_reuse(void)
{
	slot_reuse("shm");
}

static void test_slot_reuse_fault(void)
{
	slot_reuse("fault:shm");
}

/* A sleeping owner is rung once per wake-up: three signals of two DMBs
 * before it reads its doorbell are one eventfd write; both DMBs' signals
 * are taken on that wake-up, and the next signal rings again. */
static void test_doorbell_once(void)
{
	usmc_tp *a, *b;
	usmc_tp_dmb *m1, *m2;
	usmc_tp_rdmb *r1, *r2;
	usmc_tp_shm_stats st0, st;
	uint8_t ga[16];
	unsigned sig[3] = {0, 0, 0};
	struct pollfd pf;
	uint64_t v = 0x0123456789abcdefull;

	USMC_ASSERT_EQ_FATAL(open_shm("shm", &a), 0);
	USMC_ASSERT_EQ_FATAL(open_shm("shm", &b), 0);
	gid_of(a, ga);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(a, 64, (void *)(uintptr_t)1, &m1), 0);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(a, 64, (void *)(uintptr_t)2, &m2), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(b, ga, m1->token, NULL, &r1),
			     0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(b, ga, m2->token, NULL, &r2),
			     0);
	take_sigs(a, sig); /* asleep from here, its doorbell read */
	pf = (struct pollfd){usmc_tp_get_fd(a), POLLIN, 0};
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_shm_get_stats(b, &st0), 0);
	USMC_ASSERT_EQ(usmc_tp_move_data(r1, 0, &v, 8, 1), 0);
	USMC_ASSERT_EQ(usmc_tp_move_data(r2, 8, &v, 8, 1), 0);
	USMC_ASSERT_EQ(usmc_tp_move_data(r1, 16, &v, 8, 1), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_shm_get_stats(b, &st), 0);
	USMC_ASSERT_EQ(st.bells - st0.bells, 1);
	USMC_ASSERT_EQ(st.bells_saved - st0.bells_saved, 2);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 1);
	take_sigs(a, sig);
	USMC_ASSERT_EQ(sig[1], 1);
	USMC_ASSERT_EQ(sig[2], 1);
	USMC_ASSERT_EQ(sig[0], 0);
	USMC_ASSERT_EQ(memcmp((uint8_t *)m1->addr + 16, &v, 8), 0);
	USMC_ASSERT_EQ(memcmp((uint8_t *)m2->addr + 8, &v, 8), 0);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 0);
	/* read and cleared: the next signal rings */
	USMC_ASSERT_EQ(usmc_tp_move_data(r2, 0, &v, 8, 1), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_shm_get_stats(b, &st), 0);
	USMC_ASSERT_EQ(st.bells - st0.bells, 2);
	USMC_ASSERT_EQ(poll(&pf, 1, 0), 1);
	take_sigs(a, sig);
	USMC_ASSERT_EQ(sig[2], 2);
	usmc_tp_detach_dmb(r1);
	usmc_tp_detach_dmb(r2);
	usmc_tp_unregister_dmb(m1);
	usmc_tp_unregister_dmb(m2);
	usmc_tp_close(b);
	usmc_tp_close(a);
}

/* ---- the endpoint ------------------------------------------------------- */

static void test_endpoint(void)
{
	usmc_tp_ops none;
	usmc_tp fake = {&none, 0};
	usmc_tp_config cfg;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	usmc_port_attr pa;
	char path[108], *slash;
	uint8_t gid[16] = {0};
	struct stat st;
	usmc_tp *tp;

	USMC_ASSERT_EQ_FATAL(open_shm("shm", &tp), 0);
	USMC_ASSERT_EQ(usmc_tp_query_port(tp, &pa), 0);
	USMC_ASSERT_EQ(strcmp(pa.name, "shm"), 0);
	snprintf(path, sizeof(path), "%s", usmc_tp_shm_endpoint(tp));
	/* a socket only its user may connect to, named by gid_ext */
	USMC_ASSERT_EQ_FATAL(lstat(path, &st), 0);
	CU_ASSERT(S_ISSOCK(st.st_mode));
	USMC_ASSERT_EQ(st.st_mode & 0777, 0600);
	slash = strrchr(path, '/');
	{
		char hex[17];

		for (int i = 0; i < 8; i++)
			snprintf(hex + 2 * i, 3, "%02x", pa.gid[8 + i]);
		USMC_ASSERT_EQ(strcmp(slash + 1, hex), 0);
	}
	/* in a directory others may not list */
	*slash = 0;
	USMC_ASSERT_EQ(stat(path, &st), 0);
	USMC_ASSERT_EQ(st.st_mode & (S_IRGRP | S_IROTH), 0);
	if (st.st_mode & S_IWOTH)
		CU_ASSERT(st.st_mode & S_ISVTX);
	*slash = '/';
	/* no RDMA on it */
	USMC_ASSERT_EQ(usmc_tp_create_qp(tp, &(usmc_qp_init_attr){0},
					 &(usmc_tp_qp *){NULL}),
		       USMC_ERR_NOTSUP);
	usmc_tp_close(tp);
	USMC_ASSERT_EQ(lstat(path, &st), -1);
	/* options */
	memset(&cfg, 0, sizeof(cfg));
	cfg.options = "spin_us=abc";
	USMC_ASSERT_EQ(usmc_tp_open("shm", &cfg, &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	cfg.options = "nope=1";
	USMC_ASSERT_EQ(usmc_tp_open("shm", &cfg, &tp),
		       USMC_ERR_INVALID_ARGUMENT);
	cfg.options = "spin_us=0";
	USMC_ASSERT_EQ(usmc_tp_open("shm", &cfg, &tp), 0);
	usmc_tp_close(tp);
	/* a device without the ISM ops */
	memset(&none, 0, sizeof(none));
	USMC_ASSERT_EQ(usmc_tp_register_dmb(&fake, 64, NULL, &m),
		       USMC_ERR_NOTSUP);
	USMC_ASSERT_EQ(usmc_tp_attach_dmb(&fake, gid, 1, NULL, &r),
		       USMC_ERR_NOTSUP);
}

/* ---- the spin API: sleep and wake-up transitions ------------------------ */

#define HAMMER_ROUNDS	20000
#define HAMMER_SLEEP_MS 2000

/* What a hammering side counts: waits that a spin ended, waits that slept
 * and a doorbell woke, and the step that failed (0: none). */
typedef struct hammer_res {
	unsigned hits, woken, fail;
} hammer_res;

/* Waits for the peer's round |want| in our DMB |m| (8 bytes at 32, then a
 * 32-byte header at 0 with the signal): spin_arm, a spin of a random
 * number of looks (none a quarter of the time), spin_sleep, then a sleep
 * on the device's fd. A signal the peer set after we went to sleep must
 * ring the doorbell: a sleep that runs out (HAMMER_SLEEP_MS) is a lost
 * wake-up. The signal is then taken (usmc_tp_shm_take after a spin,
 * poll_cq after a sleep), and the round's bytes compared. */
static unsigned hammer_wait(usmc_tp *tp, usmc_tp_dmb *m, uint64_t want,
			    unsigned *rnd, hammer_res *res)
{
	usmc_tp_shm_spin sp;
	struct pollfd pf = {usmc_tp_get_fd(tp), POLLIN, 0};
	uint64_t end = ms_now() + HAMMER_SLEEP_MS, v;
	unsigned looks = rand_r(rnd) % 4 ? (unsigned)rand_r(rnd) % 400 : 0;
	int hit = 0, got = 0;
	usmc_wc wc[4];

	if (usmc_tp_shm_spin_arm(tp, &sp) != 1)
		return 1;
	for (unsigned i = 0; i < looks && !hit; i++)
		hit = usmc_tp_shm_spin_seen(&sp);
	if (!hit && rand_r(rnd) % 8 == 0)
		sched_yield(); /* a wider window before the sleep */
	if (!hit)
		hit = usmc_tp_shm_spin_sleep(&sp);
	hit ? res->hits++ : res->woken++;
	while (!got) {
		int n;

		if (!hit) {
			int ms = (int)(end - ms_now());

			if (ms <= 0 || poll(&pf, 1, ms) != 1) {
				usmc_tp_shm_spin_done(&sp);
				return 2; /* the doorbell never rang */
			}
		}
		n = hit ? usmc_tp_shm_take(tp, wc, 4)
			: usmc_tp_poll_cq(tp, wc, 4);
		if (n < 0)
			return 3;
		for (int i = 0; i < n; i++)
			got += wc[i].opcode == USMC_WC_DMB_SIGNAL &&
			       wc[i].wr_id == (uintptr_t)m->context;
		if (hit && !got) {
			usmc_tp_shm_spin_done(&sp);
			return 4; /* a spin saw a signal take did not return */
		}
	}
	usmc_tp_shm_spin_done(&sp);
	memcpy(&v, (uint8_t *)m->addr + 32, 8);
	if (v != want)
		return 5;
	for (size_t i = 0; i < 32; i++)
		if (((uint8_t *)m->addr)[i] != pat((unsigned)want, i))
			return 6;
	return 0;
}

/* The two arranged waits before the hammer (its rounds say nothing
 * certain about which way a signal went: that depends on the
 * scheduling): the owner tells the peer, by the pipe, that it is armed
 * (|asleep| 0: awake, spinning) or armed and back asleep (1), and only
 * then does the peer signal. Awake, the spin must see the signal and the
 * peer must have rung no doorbell (bells_saved); asleep, the doorbell
 * must ring (the device's fd readable) and poll_cq return the signal.
 * Nothing has rung yet on a fresh pair, so no earlier unread doorbell
 * saves the ring either. */
static unsigned arranged_wait(usmc_tp *tp, usmc_tp_dmb *m, uint64_t want,
			      int rd, int wr, int asleep)
{
	usmc_tp_shm_spin sp;
	struct pollfd pf = {usmc_tp_get_fd(tp), POLLIN, 0};
	usmc_wc wc[4];
	uint64_t v;
	uint8_t b = 0;
	int n, got = 0;

	if (usmc_tp_shm_spin_arm(tp, &sp) != 1)
		return 20;
	if (asleep && usmc_tp_shm_spin_sleep(&sp)) {
		usmc_tp_shm_spin_done(&sp);
		return 21; /* a signal before the peer was told to send */
	}
	/* no attach is under way: a plain read, which takes no signal */
	if (write_all(wr, &b, 1) || read(rd, &b, 1) != 1) {
		usmc_tp_shm_spin_done(&sp);
		return 22;
	}
	if (!asleep) {
		if (!usmc_tp_shm_spin_seen(&sp)) {
			usmc_tp_shm_spin_done(&sp);
			return 23; /* sent before the read, not seen */
		}
		n = usmc_tp_shm_take(tp, wc, 4);
	} else {
		if (poll(&pf, 1, WAIT_MS) != 1) {
			usmc_tp_shm_spin_done(&sp);
			return 24; /* the doorbell did not ring */
		}
		n = usmc_tp_poll_cq(tp, wc, 4);
	}
	usmc_tp_shm_spin_done(&sp);
	for (int i = 0; i < n; i++)
		got += wc[i].opcode == USMC_WC_DMB_SIGNAL &&
		       wc[i].wr_id == (uintptr_t)m->context;
	if (got != 1)
		return 25;
	memcpy(&v, (uint8_t *)m->addr + 32, 8);
	if (v != want)
		return 26;
	for (size_t i = 0; i < 32; i++)
		if (((uint8_t *)m->addr)[i] != pat((unsigned)want, i))
			return 27;
	return 0;
}

/* One byte from |fd| while serving |tp|'s endpoint (a peer's attach)
 * with get_async_event, which leaves signals to poll_cq: read_serving's
 * poll_cq would take a round's signal. */
static int read_byte(int fd, usmc_tp *tp)
{
	struct pollfd pf = {fd, POLLIN, 0};
	uint64_t end = ms_now() + WAIT_MS;
	usmc_tp_event ev;
	uint8_t b;

	while (ms_now() < end) {
		while (usmc_tp_get_async_event(tp, &ev) == 1)
			;
		if (poll(&pf, 1, 1) == 1)
			return read(fd, &b, 1) == 1 ? 0 : -1;
	}
	return -1;
}

static int hammer_send(usmc_tp_rdmb *r, uint64_t round)
{
	uint8_t hdr[32];

	for (size_t i = 0; i < 32; i++)
		hdr[i] = pat((unsigned)round, i);
	if (usmc_tp_move_data(r, 32, &round, 8, 0))
		return 1;
	return usmc_tp_move_data(r, 0, hdr, 32, 1) ? 1 : 0;
}

/* One side: odd rounds are the parent's to send, even the child's. */
static void hammer_side(usmc_tp *tp, usmc_tp_dmb *m, usmc_tp_rdmb *r, int first,
			unsigned seed, hammer_res *res)
{
	unsigned rnd = seed;

	for (uint64_t k = 1; k <= 2 * HAMMER_ROUNDS && !res->fail; k++) {
		if ((k % 2 == 1) == first)
			res->fail = hammer_send(r, k) ? 10 : 0;
		else
			res->fail = hammer_wait(tp, m, k, &rnd, res);
	}
}

static int hammer_child(int rd, int wr, const void *arg)
{
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	who me = {0}, peer;
	hammer_res res = {0};
	uint8_t done;

	(void)arg;
	alarm(60);
	if (open_shm("shm", &tp) ||
	    usmc_tp_register_dmb(tp, 4096, (void *)(uintptr_t)2, &m))
		return 10;
	gid_of(tp, me.gid);
	me.token = m->token;
	if (write_all(wr, &me, sizeof(me)) ||
	    read_serving(rd, &peer, sizeof(peer), tp))
		return 11;
	if (usmc_tp_attach_dmb(tp, peer.gid, peer.token, (void *)(uintptr_t)3,
			       &r))
		return 12;
	/* both attached before the rounds (each side's spin needs its area) */
	if (write_all(wr, &me, 1) || read_byte(rd, tp))
		return 13;
	res.fail = arranged_wait(tp, m, 1, rd, wr, 0);
	if (!res.fail)
		res.fail = arranged_wait(tp, m, 2, rd, wr, 1);
	/* their outcome; the parent's first round would overwrite the
	 * second's bytes before they were compared */
	done = (uint8_t)res.fail;
	if (write_all(wr, &done, 1))
		return 15;
	if (!res.fail)
		hammer_side(tp, m, r, 0, 2, &res);
	if (write_all(wr, &res, sizeof(res)) || read_serving(rd, &done, 1, tp))
		return 14;
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
	return 0;
}

/* Two processes ping-pong 20000 round trips through the spin API, each
 * wait ending at a random point of arm, spin, sleep and wake-up, so that
 * the peer's signal lands before the spin, during it, between the
 * owner's going asleep and its last look, and during its sleep. No wait
 * may need longer than HAMMER_SLEEP_MS (a lost wake-up hangs), every
 * round's bytes are compared. First, two arranged waits (arranged_wait)
 * in which the signal must find the owner awake (no doorbell), then
 * asleep (the doorbell), whatever the scheduling. */
static void test_spin_hammer(void)
{
	int to, from;
	usmc_tp *tp;
	usmc_tp_dmb *m;
	usmc_tp_rdmb *r;
	usmc_tp_shm_stats st;
	usmc_tp_shm_spin sp;
	who me = {0}, peer;
	hammer_res res = {0}, cres = {0};
	uint8_t done = 1;
	pid_t pid;

	pid = spawn(hammer_child, NULL, &to, &from);
	CU_ASSERT_FATAL(pid > 0);
	USMC_ASSERT_EQ_FATAL(open_shm("shm", &tp), 0);
	/* no area yet: nothing to spin on */
	USMC_ASSERT_EQ(usmc_tp_shm_spin_arm(tp, &sp), 0);
	USMC_ASSERT_EQ_FATAL(
		usmc_tp_register_dmb(tp, 4096, (void *)(uintptr_t)1, &m), 0);
	gid_of(tp, me.gid);
	me.token = m->token;
	USMC_ASSERT_EQ(write_all(to, &me, sizeof(me)), 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &peer, sizeof(peer), tp), 0);
	USMC_ASSERT_EQ_FATAL(usmc_tp_attach_dmb(tp, peer.gid, peer.token,
						(void *)(uintptr_t)4, &r),
			     0);
	USMC_ASSERT_EQ_FATAL(read_byte(from, tp), 0);
	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	/* the arranged waits: the child awake, then asleep */
	for (int asleep = 0; asleep < 2; asleep++) {
		usmc_tp_shm_stats st0;
		uint8_t b;

		USMC_ASSERT_EQ_FATAL(read(from, &b, 1), 1);
		USMC_ASSERT_EQ(usmc_tp_shm_get_stats(tp, &st0), 0);
		USMC_ASSERT_EQ(hammer_send(r, (uint64_t)asleep + 1), 0);
		USMC_ASSERT_EQ(usmc_tp_shm_get_stats(tp, &st), 0);
		USMC_ASSERT_EQ(st.bells_saved - st0.bells_saved,
			       (uint64_t)!asleep);
		USMC_ASSERT_EQ(st.bells - st0.bells, (uint64_t)asleep);
		USMC_ASSERT_EQ(write_all(to, &b, 1), 0);
	}
	USMC_ASSERT_EQ_FATAL(read(from, &done, 1), 1);
	USMC_ASSERT_EQ(done, 0); /* the child's side of them */
	if (!done)
		hammer_side(tp, m, r, 1, 1, &res);
	USMC_ASSERT_EQ(res.fail, 0);
	USMC_ASSERT_EQ_FATAL(read_serving(from, &cres, sizeof(cres), tp), 0);
	USMC_ASSERT_EQ(cres.fail, 0);
	USMC_ASSERT_EQ(write_all(to, &done, 1), 0);
	USMC_ASSERT_EQ(child_status(pid), 0);
	USMC_ASSERT_EQ(res.hits + res.woken, HAMMER_ROUNDS);
	USMC_ASSERT_EQ(cres.hits + cres.woken, HAMMER_ROUNDS);
	USMC_ASSERT_EQ(usmc_tp_shm_get_stats(tp, &st), 0);
	/* our signals, the two arranged ones too: each either found the
	 * child awake or rang. How the hammer's split between spin and
	 * doorbell is the scheduler's: that both ways work, the arranged
	 * waits show. */
	USMC_ASSERT_EQ(st.bells + st.bells_saved, HAMMER_ROUNDS + 2);
	printf("\n  spin hammer: parent %u spin, %u woken; child %u spin, %u "
	       "woken; bells %llu, saved %llu\n",
	       res.hits, res.woken, cres.hits, cres.woken,
	       (unsigned long long)st.bells,
	       (unsigned long long)st.bells_saved);
	usmc_tp_detach_dmb(r);
	usmc_tp_unregister_dmb(m);
	usmc_tp_close(tp);
	USMC_ASSERT_EQ(memfd_maps(), 0);
	close(to);
	close(from);
}

static CU_TestInfo shm_tests[] = {
	{"endpoint: 0600 socket named by gid_ext, unlisted dir", test_endpoint},
	{"two processes: attach, move_data, signal both ways; bounds",
	 test_roundtrip},
	{"the same over fault:shm", test_roundtrip_fault},
	{"the same with the peer in a netns and mount ns of its own",
	 test_roundtrip_netns},
	{"third processes: wrong token, spent token, other uid",
	 test_third_process},
	{"root, past the socket's mode, refused by the owner's uid check",
	 test_other_uid_refused},
	{"SIGKILL of the peer: PEER_GONE, nothing mapped after close",
	 test_peer_killed},
	{"fork: the child keeps nothing of the device; parent unaffected",
	 test_fork_child},
	{"one process: inline attach, unregister and detach seen",
	 test_in_process},
	{"the same over fault:shm; fail-reg-mr refuses a DMB",
	 test_in_process_fault},
	{"reuse: a DMB another process holds only for that process's gid",
	 test_reuse_holder},
	{"unregister while the peer signals: no slot reused before it let go",
	 test_slot_reuse},
	{"the same over fault:shm", test_slot_reuse_fault},
	{"doorbell: a sleeping owner is rung once per wake-up",
	 test_doorbell_once},
	{"spin API: 20000 round trips over every sleep/wake transition",
	 test_spin_hammer},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"shm", shm_tests},
		{NULL, NULL},
	};

	signal(SIGPIPE, SIG_IGN);
	return usmc_test_main(suites);
}
