/* SPDX-License-Identifier: MIT */
/*
 * The progress thread: one epoll over the clcsocks in handshake (and SMC
 * listeners), every device's completion fd, a timerfd for the core's and
 * the handshakes' deadlines, and an eventfd to be woken. It takes the global
 * lock for every piece of work and wakes the waiting app threads afterwards
 * (usmc_rt_broadcast), so those blocked in connect/accept/recv/send re-check
 * their condition.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "usmc_real.h"
#include "usmc_rt.h"
#include "usmc_tp_shm.h"

usmc_rt usmc_g = {
	/* adaptive: the lock is held briefly, and an app thread that polls
	 * the transport drops and retakes it in a tight loop; a waiter that
	 * spins a little gets it without a futex round trip each time */
	.lock = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
	.epfd = -1,
	.timerfd = -1,
	.evfd = -1,
};

/* epoll data: the high 32 bits say what the low 32 bits are (TAG_TP: the
 * device index). */
#define TAG_SOCK  1ULL
#define TAG_TIMER 2ULL
#define TAG_EVFD  3ULL
#define TAG_TP	  4ULL

/* initial-exec: the preload reads it on every call it hands to usmc */
__thread int usmc_in_runtime __attribute__((tls_model("initial-exec")));

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int atfork_done;
static int init_err;
/* The device fds in the epoll set, by device index (usmc_smc_dev_fd). */
static int tp_watched[USMC_DEVICES_MAX] = {-1, -1, -1, -1, -1, -1, -1, -1};
_Static_assert(USMC_DEVICES_MAX == 8, "tp_watched's initialiser");
/* The devices an app thread waits on itself, a bit per device index: a
 * direct poller in usmc_wait (every device), or a thread asleep in
 * epoll_wait, poll or select with the shm device's fd in its kernel set
 * (usmc_rt_direct_enter). At most one thread at a time. The progress
 * thread leaves those devices' fds to it (EPOLLONESHOT not re-armed: a
 * bit per device in tp_disarmed) until handback_at. */
static uint32_t direct_devs;
/* Threads asleep in epoll_wait or poll over usmc sockets without that
 * role (usmc_rt_direct_enter found it taken): a doorbell for their data
 * is the progress thread's until it takes the devices back. */
static int role_waiters;
static uint32_t tp_disarmed;
/* A device in tp_disarmed and not in direct_devs is taken back by the
 * progress thread at handback_at. A thread that waits again soon (a
 * blocking recv/send loop, an event loop) finds the fds still its own:
 * re-arming them at once had both threads wake, and fight for the lock,
 * on every packet. */
static uint64_t handback_at;
#define TP_HANDBACK_NS (1 * USMC_NS_PER_MS)
/* what the timerfd is set to; UINT64_MAX when disarmed or fired */
static uint64_t timer_armed = UINT64_MAX;
/* posted by the progress thread once it runs (progress_start) */
static sem_t progress_started;
/* The progress thread runs (it ends itself when idle: progress_idle). */
static int progress_running;
/* sockets registered in the loop's epoll set (s->ep_events != 0) */
static int n_watched;
/* How long the progress thread stays with nothing to do before it ends.
 * A process whose connections all went to the kernel (fallback, rules)
 * then has no thread of usmc's running (with the stat publisher's own
 * idle end, usmc_stat.c): the kernel takes a file reference on every fd
 * lookup of a process that shares its fd table with another thread
 * (fdget), about 25 ns per socket call here, which a single-threaded
 * process does not pay. */
#define PROGRESS_IDLE_MS 50

/* App threads wait in poll() on an eventfd of their own (a signal must be
 * able to end the wait, which a condition variable does not allow); the
 * waiters registered here are woken by usmc_rt_broadcast. Lock held. */
typedef struct waiter {
	int evfd;
	int pending; /* written since it last slept: no second write */
	int nodev;   /* waits with USMC_WAIT_NODEV: never polls the devices */
	struct waiter *next;
} waiter;

static waiter *waiters;
static __thread waiter self_waiter = {.evfd = -1};
static pthread_key_t waiter_key;
static pthread_once_t waiter_key_once = PTHREAD_ONCE_INIT;

static void wake_waiters(int pollers_only)
{
	uint64_t one = 1;

	for (waiter *w = waiters; w; w = w->next) {
		if (w->pending || (pollers_only && w->nodev))
			continue;
		/* atomic: a thread spinning on shm reads it unlocked */
		__atomic_store_n(&w->pending, 1, __ATOMIC_RELAXED);
		if (usmc_real()->write(w->evfd, &one, sizeof(one)) < 0) {
			/* counter full: a wake-up is pending anyway */
		}
	}
}

void usmc_rt_broadcast(void)
{
	wake_waiters(0);
}

void usmc_rt_wake_data(void)
{
	wake_waiters(1);
}

static void waiter_thread_exit(void *p)
{
	usmc_real()->close((int)(intptr_t)p - 1);
}

static void waiter_key_init(void)
{
	pthread_key_create(&waiter_key, waiter_thread_exit);
}

static int waiter_fd(void)
{
	waiter *w = &self_waiter;

	if (w->evfd < 0) {
		w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (w->evfd < 0)
			return -1;
		pthread_once(&waiter_key_once, waiter_key_init);
		pthread_setspecific(waiter_key,
				    (void *)(intptr_t)(w->evfd + 1));
	}
	return w->evfd;
}

static void tp_rearm(unsigned int i)
{
	struct epoll_event ev = {0};

	if (i >= USMC_DEVICES_MAX || tp_watched[i] < 0)
		return;
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.u64 = TAG_TP << 32 | i;
	usmc_real()->epoll_ctl(usmc_g.epfd, EPOLL_CTL_MOD, tp_watched[i], &ev);
}

/* Polls the devices the progress thread left to a direct poller that is
 * gone, and takes their fds back. */
static void tp_take_back(void)
{
	uint32_t m = tp_disarmed & ~direct_devs;

	tp_disarmed &= ~m;
	for (unsigned int i = 0; m; i++, m >>= 1)
		if (m & 1) {
			usmc_smc_on_dev_event(i);
			tp_rearm(i);
		}
}

static void *progress_main(void *arg);
static void progress_ensure(void);

/*
 * Which process owns the runtime's state (docs/preload.md, "fork"). The
 * connections, transport and progress thread are this process's; a child
 * must never act on them unless usmc's atfork child handler adopted it.
 *
 * owner_mark: one page, MADV_WIPEONFORK, set to 1 when the runtime starts
 * and by the atfork child handler. Any child made without CLONE_VM reads
 * zero there until adopted: a clone() child never is; fork()'s is at once.
 *
 * A CLONE_VM child (vfork) shares that page, and the very thread-local
 * storage of the thread that called vfork. The preload's vfork stub calls
 * usmc_vfork_enter first, which notes that thread's pid; while it is
 * noted, getpid() tells the child (another pid) from the parent once
 * vfork has returned (same pid: the note is dropped). A clone(CLONE_VM)
 * child without CLONE_VFORK runs beside its parent: that note stays.
 */
static volatile uint8_t *owner_mark;
static __thread pid_t vfork_parent __attribute__((tls_model("initial-exec")));
static __thread int vfork_keep __attribute__((tls_model("initial-exec")));

void usmc_vfork_enter(int concurrent)
{
	vfork_parent = getpid();
	vfork_keep |= concurrent;
}

int usmc_foreign_child(void)
{
	volatile uint8_t *mark;

	if (__builtin_expect(vfork_parent != 0, 0)) {
		if (getpid() != vfork_parent)
			return 1; /* in the vfork child: the note is shared */
		if (!vfork_keep)
			vfork_parent = 0;
	}
	mark = __atomic_load_n(&owner_mark, __ATOMIC_ACQUIRE);
	return mark && !*mark;
}

/* Once per process image (a forked child keeps the page). */
static void owner_mark_init(void)
{
	long sz = sysconf(_SC_PAGESIZE);
	void *p;

	if (owner_mark)
		return;
	p = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	/* Linux >= 4.14; without it clone() children go undetected */
	if (madvise(p, (size_t)sz, MADV_WIPEONFORK)) {
		usmc_rt_log(USMC_LOG_INFO,
			    "no MADV_WIPEONFORK (%s): a clone() child "
			    "would act on this process's connections",
			    strerror(errno));
		munmap(p, (size_t)sz);
		return;
	}
	*(volatile uint8_t *)p = 1;
	__atomic_store_n(&owner_mark, (volatile uint8_t *)p, __ATOMIC_RELEASE);
}

/*
 * usmc's threads end when idle (progress_main, usmc_stat.c) and are
 * joinable: one that has decided to end, under usmc_g.lock, may still be
 * in its teardown (TSD destructors, glibc's and the sanitizer's thread
 * exit), which frees and allocates. A fork then, under an allocator with
 * no fork handlers of its own (GCC 12's ASan), could leave the child a
 * lock that thread held. So the fork prepare handler and every start,
 * both under usmc_g.lock, first join the threads that ended: an ending
 * thread takes no usmc lock after its decision, so the join waits only
 * for its teardown. At most one of each kind is pending.
 */
static pthread_t ended[4];
static int n_ended;
static pid_t ended_pid; /* a child made without the fork handlers: none */

void usmc_thread_ending(void)
{
	if (n_ended < (int)(sizeof(ended) / sizeof(ended[0]))) {
		ended[n_ended++] = pthread_self();
		ended_pid = getpid();
	} else {
		pthread_detach(pthread_self());
	}
}

/* getpid() is a system call (glibc caches no pid): a process's sockets
 * ask it at socket() and close() (the usmc-stat publisher's). Cached once
 * the fork handlers that forget it are registered; a child they did not
 * run in is not adopted and never reaches the runtime (usmc_foreign_child). */
static pid_t rt_pid;

pid_t usmc_rt_pid(void)
{
	pid_t p = __atomic_load_n(&rt_pid, __ATOMIC_RELAXED);

	if (p)
		return p;
	p = getpid();
	if (__atomic_load_n(&atfork_done, __ATOMIC_ACQUIRE))
		__atomic_store_n(&rt_pid, p, __ATOMIC_RELAXED);
	return p;
}

void usmc_thread_reap(void)
{
	if (n_ended > 0 && ended_pid != getpid())
		n_ended = 0;
	while (n_ended > 0)
		pthread_join(ended[--n_ended], NULL);
}

/* The handlers run in the app's thread: usmc_in_runtime keeps their own
 * libc calls from being intercepted again (under the preload). */
static void atfork_prepare(void)
{
	usmc_in_runtime++;
	/* the child gets the tables in a consistent state */
	pthread_mutex_lock(&usmc_g.lock);
	/* and no thread of usmc's half torn down */
	usmc_thread_reap();
}

static void atfork_parent(void)
{
	if (usmc_g.thread_started)
		usmc_sock_fork_parent();
	pthread_mutex_unlock(&usmc_g.lock);
	usmc_in_runtime--;
}

/* The child has no progress thread and must not touch the parent's epoll
 * set, timer or transport: it forgets them and starts afresh on next use. */
static void atfork_child(void)
{
	__atomic_store_n(&rt_pid, 0, __ATOMIC_RELAXED);
	/* adopted: the page was wiped in the child; a note left by an
	 * earlier vfork of this thread names the parent's pid, not ours */
	if (owner_mark)
		*owner_mark = 1;
	vfork_parent = 0;
	vfork_keep = 0;
	if (!usmc_g.thread_started) {
		pthread_mutex_unlock(&usmc_g.lock);
		usmc_in_runtime--;
		return;
	}
	usmc_sock_fork_child();
	usmc_epoll_fork_child();
	usmc_smc_fork_child();
	usmc_real()->close(usmc_g.epfd);
	usmc_real()->close(usmc_g.timerfd);
	usmc_real()->close(usmc_g.evfd);
	usmc_g.epfd = usmc_g.timerfd = usmc_g.evfd = -1;
	/* the waiter eventfd is shared with the parent's thread */
	if (self_waiter.evfd >= 0) {
		usmc_real()->close(self_waiter.evfd);
		self_waiter.evfd = -1;
		pthread_setspecific(waiter_key, NULL);
	}
	waiters = NULL;
	usmc_g.thread_started = 0;
	progress_running = 0;
	n_watched = 0;
	for (int i = 0; i < USMC_DEVICES_MAX; i++)
		tp_watched[i] = -1;
	direct_devs = 0;
	role_waiters = 0;
	tp_disarmed = 0;
	timer_armed = UINT64_MAX;
	init_err = 0;
	init_once = (pthread_once_t)PTHREAD_ONCE_INIT;
	pthread_mutex_unlock(&usmc_g.lock);
	usmc_in_runtime--;
}

static FILE *stats_out(const char *v)
{
	if (!strcmp(v, "1"))
		return stderr;
	return fopen(v, "a");
}

/* The main lock, tried for up to 2 s: at exit it may be held for good by
 * the thread itself, when exit() came from a signal handler that
 * interrupted usmc. Returns 1 when taken; after one failure, 0 at once. */
static int lock_at_exit(void)
{
	static int stuck; /* stats_at_exit gave up: so would close_at_exit */
	uint64_t end = usmc_rt_now() + 2 * USMC_NS_PER_SEC;
	int locked;

	if (stuck)
		return 0;
	while (!(locked = !pthread_mutex_trylock(&usmc_g.lock)) &&
	       usmc_rt_now() < end)
		usmc_real()->poll(NULL, 0, 1);
	stuck = !locked;
	return locked;
}

/* USMC_STATS: the connection counts of this process, at exit. */
static void stats_at_exit(void)
{
	const char *v = getenv("USMC_STATS");
	usmc_stats st;
	FILE *f;

	/* a vfork or clone child that calls exit() runs this too: its counts
	 * are its parent's */
	if (!v || !*v || !strcmp(v, "0") || usmc_foreign_child())
		return;
	usmc_in_runtime++;
	if (!lock_at_exit()) {
		f = stats_out(v);
		if (f) {
			fprintf(f,
				"usmc[%d]: stats: unavailable (usmc was busy "
				"when the program exited)\n",
				(int)getpid());
			if (f != stderr)
				fclose(f);
		}
		usmc_in_runtime--;
		return;
	}
	/* as usmc_get_stats, with the lock already held */
	st = usmc_g.stats;
	st.link_groups = usmc_smc_lgr_count();
	st.preload_reentries = usmc_reentry_count();
	usmc_smc_icrc_counts(&st.icrc_inferred, &st.icrc_dropped);
	pthread_mutex_unlock(&usmc_g.lock);
	f = stats_out(v);
	if (f) {
		fprintf(f,
			"usmc[%d]: stats: smcr=%llu fallback=%llu failed=%llu "
			"link_groups=%llu smcd=%llu icrc_inferred=%llu "
			"icrc_dropped=%llu short_tcp=%llu "
			"dev_wakes_progress=%llu dev_wakes_app=%llu "
			"preload_reentries=%llu\n",
			(int)getpid(), (unsigned long long)st.conns_smcr,
			(unsigned long long)st.conns_fallback,
			(unsigned long long)st.conns_failed,
			(unsigned long long)st.link_groups,
			(unsigned long long)st.conns_smcd,
			(unsigned long long)st.icrc_inferred,
			(unsigned long long)st.icrc_dropped,
			(unsigned long long)st.conns_short_tcp,
			(unsigned long long)st.dev_wakes_progress,
			(unsigned long long)st.dev_wakes_app,
			(unsigned long long)st.preload_reentries);
		if (f != stderr)
			fclose(f);
	}
	usmc_in_runtime--;
}

/* At exit the kernel closes a process's sockets, and TCP sends what they
 * hold; nothing sends for a process that is gone from user space. So usmc
 * does it here: SMC-R connections the program left open are closed as by
 * close() (their data goes first, then the close flag), and every closing
 * connection gets the kernel's close-stream bound, 2 s, to finish the
 * close protocol. A destructor, so the program's own atexit handlers have
 * run and may still have used their sockets. The lock is only tried: a
 * program may exit from a signal handler that interrupted usmc. */
__attribute__((destructor)) static void close_at_exit(void)
{
	uint64_t end;

	/* a vfork child that calls exit() runs the destructors in its
	 * parent's memory; a clone() child's copy names the parent's
	 * connections: neither may close them */
	if (!usmc_g.thread_started || usmc_foreign_child())
		return;
	end = usmc_rt_now() + 2 * USMC_NS_PER_SEC;
	usmc_in_runtime++;
	if (lock_at_exit()) {
		usmc_sock_close_at_exit();
		while ((usmc_smc_closing() || usmc_smc_tcp_held()) &&
		       usmc_wait(end, USMC_INTR_NONE) != ETIMEDOUT)
			;
		/* then no link group outlives the process on its peers
		 * (they would keep it until TEST_LINK fails, 30 s); a peer
		 * answers at once, the bound is for one that does not */
		usmc_smc_exit_lgrs(usmc_rt_now() + USMC_NS_PER_SEC);
		pthread_mutex_unlock(&usmc_g.lock);
	}
	usmc_in_runtime--;
}

static void rt_init_once(void)
{
	struct epoll_event ev = {0};

	usmc_config_load_env(&usmc_g.cfg);
	usmc_rt_log_configure(&usmc_g.cfg);
	if (!atfork_done) {
		owner_mark_init();
		usmc_signal_atfork_init(); /* first: see usmc_signal.c */
		/* before ours too: its prepare handler takes proc_lock, which
		 * is taken inside usmc_g.lock (usmc_tp_shm.h) */
		usmc_tp_shm_atfork_init();
		pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
		atexit(stats_at_exit);
		/* after pthread_atfork: usmc_rt_pid caches from now on */
		__atomic_store_n(&atfork_done, 1, __ATOMIC_RELEASE);
	}
	usmc_g.epfd = epoll_create1(EPOLL_CLOEXEC);
	usmc_g.timerfd =
		timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	usmc_g.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (usmc_g.epfd < 0 || usmc_g.timerfd < 0 || usmc_g.evfd < 0) {
		init_err = errno;
		usmc_rt_log(USMC_LOG_ERR, "cannot create the event loop: %s",
			    strerror(init_err));
		return;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = TAG_TIMER << 32;
	usmc_real()->epoll_ctl(usmc_g.epfd, EPOLL_CTL_ADD, usmc_g.timerfd, &ev);
	ev.data.u64 = TAG_EVFD << 32;
	usmc_real()->epoll_ctl(usmc_g.epfd, EPOLL_CTL_ADD, usmc_g.evfd, &ev);

	/* The progress thread starts with its first work (progress_ensure):
	 * a process whose sockets never need it (rules say tcp) runs none. */
	usmc_g.thread_started = 1;
}

int usmc_rt_init(void)
{
	pthread_once(&init_once, rt_init_once);
	if (init_err) {
		errno = init_err;
		return -1;
	}
	return 0;
}

void usmc_loop_wake(void)
{
	uint64_t one = 1;

	if (usmc_real()->write(usmc_g.evfd, &one, sizeof(one)) < 0) {
		/* Counter full means a wake-up is already pending. */
	}
}

void usmc_loop_watch(usmc_sock *s, uint32_t events)
{
	struct epoll_event ev = {0};
	int op;

	if (events == s->ep_events)
		return;
	ev.events = events;
	ev.data.u64 = (TAG_SOCK << 32) | (uint32_t)s->fd;
	if (!events)
		op = EPOLL_CTL_DEL;
	else if (!s->ep_events)
		op = EPOLL_CTL_ADD;
	else
		op = EPOLL_CTL_MOD;
	if (usmc_real()->epoll_ctl(usmc_g.epfd, op, s->fd, &ev) &&
	    op != EPOLL_CTL_DEL)
		usmc_rt_log(USMC_LOG_ERR, "epoll_ctl(fd %d): %s", s->fd,
			    strerror(errno));
	n_watched += op == EPOLL_CTL_ADD ? 1 : op == EPOLL_CTL_DEL ? -1 : 0;
	s->ep_events = events;
	if (events)
		progress_ensure();
	else if (!n_watched && progress_running)
		usmc_loop_wake(); /* it may be idle now: let it look */
}

void usmc_hs_list_add(usmc_sock *s)
{
	if (s->in_hs_list)
		return;
	s->hs_prev = NULL;
	s->hs_next = usmc_g.hs_list;
	if (usmc_g.hs_list)
		usmc_g.hs_list->hs_prev = s;
	usmc_g.hs_list = s;
	s->in_hs_list = 1;
	progress_ensure(); /* its deadlines */
}

void usmc_hs_list_del(usmc_sock *s)
{
	if (!s->in_hs_list)
		return;
	if (s->hs_prev)
		s->hs_prev->hs_next = s->hs_next;
	else
		usmc_g.hs_list = s->hs_next;
	if (s->hs_next)
		s->hs_next->hs_prev = s->hs_prev;
	s->hs_prev = s->hs_next = NULL;
	s->in_hs_list = 0;
}

/* Keeps every device's fd in the epoll set as devices open. */
static void watch_tp_fds(void)
{
	for (unsigned int i = 0; i < USMC_DEVICES_MAX; i++) {
		int fd = usmc_smc_dev_fd(i);
		struct epoll_event ev = {0};

		if (fd == tp_watched[i]) {
			if (fd < 0)
				break; /* devices are never closed: the end */
			continue;
		}
		if (tp_watched[i] >= 0)
			usmc_real()->epoll_ctl(usmc_g.epfd, EPOLL_CTL_DEL,
					       tp_watched[i], NULL);
		tp_watched[i] = -1;
		tp_disarmed &= ~(1u << i);
		if (fd < 0)
			continue;
		ev.events = EPOLLIN | EPOLLONESHOT;
		ev.data.u64 = TAG_TP << 32 | i;
		if (usmc_real()->epoll_ctl(usmc_g.epfd, EPOLL_CTL_ADD, fd,
					   &ev) == 0)
			tp_watched[i] = fd;
		else
			usmc_rt_log(USMC_LOG_ERR,
				    "cannot watch device %u's fd: %s", i,
				    strerror(errno));
	}
}

void usmc_loop_rearm_timer(void)
{
	uint64_t next = usmc_smc_expiry();
	struct itimerspec its = {0};

	usmc_smc_armed(next);
	for (usmc_sock *s = usmc_g.hs_list; s; s = s->hs_next)
		if (s->deadline && s->deadline < next)
			next = s->deadline;
	if ((tp_disarmed & ~direct_devs) && handback_at < next)
		next = handback_at;
	watch_tp_fds();
	/* The data path moves deadlines on every packet, mostly later (the
	 * link's keepalive): a timer that fires early costs one wake-up, a
	 * syscall per packet costs more. So it only ever moves earlier. */
	if (next >= timer_armed && timer_armed != UINT64_MAX)
		return;
	timer_armed = next;
	if (next != UINT64_MAX || tp_watched[0] >= 0)
		progress_ensure();
	if (next != UINT64_MAX) {
		if (next == 0)
			next = 1; /* 0 would disarm */
		its.it_value.tv_sec = (time_t)(next / USMC_NS_PER_SEC);
		its.it_value.tv_nsec = (long)(next % USMC_NS_PER_SEC);
	}
	timerfd_settime(usmc_g.timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Returns whether a handshake deadline passed (the core's expiries wake
 * the waiters themselves, in smc_post). */
static int run_deadlines(void)
{
	uint64_t now = usmc_rt_now();
	usmc_sock *s, *next;
	int hit = 0;

	usmc_smc_on_timer(now);
	for (s = usmc_g.hs_list; s; s = next) {
		next = s->hs_next;
		if (s->deadline && s->deadline <= now) {
			usmc_sock_on_deadline(s, now);
			hit = 1;
		}
	}
	return hit;
}

/* Lock held: nothing for the progress thread to watch or time: no socket
 * in its epoll set, no handshake, no device (devices are never closed),
 * no timer armed. */
static int progress_idle(void)
{
	return !n_watched && !usmc_g.hs_list && tp_watched[0] < 0 &&
	       usmc_smc_dev_fd(0) < 0 && timer_armed == UINT64_MAX &&
	       !direct_devs && !tp_disarmed;
}

/* Starts the progress thread with every signal blocked, and waits until
 * it runs: its start-up (glibc's, and under ASan the sanitizer's thread
 * set-up) allocates, and must be over before the app goes on and perhaps
 * forks (nginx's master forks right after its first socket). An allocator
 * with no fork handlers (GCC 12's ASan runtime) would otherwise leave the
 * child a size class's lock, held for good. From then on the thread
 * allocates only under the lock. Called with the lock held
 * (progress_ensure), which the fork prepare handler also takes; the
 * thread posts before it takes the lock. Returns 0 or an errno. */
static int progress_start(void)
{
	sigset_t all, old;
	pthread_attr_t a;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	usmc_thread_reap();
	pthread_attr_init(&a);
	sem_init(&progress_started, 0, 0);
	err = pthread_create(&usmc_g.thread, &a, progress_main, NULL);
	while (!err && sem_wait(&progress_started) && errno == EINTR)
		;
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!err)
		progress_running = 1;
	return err;
}

/* Lock held: the progress thread has work; start it again if it ended
 * for being idle. */
static void progress_ensure(void)
{
	int err;

	if (progress_running || !usmc_g.thread_started)
		return;
	err = progress_start();
	if (err)
		usmc_rt_log(USMC_LOG_ERR,
			    "cannot start the progress thread: %s",
			    strerror(err));
}

static void *progress_main(void *arg)
{
	struct epoll_event evs[32];
	uint64_t buf;
	int bc;
	int idle = 0;

	(void)arg;
	usmc_in_runtime = 1;
	sem_post(&progress_started);
	for (;;) {
		int n = usmc_real()->epoll_wait(usmc_g.epfd, evs, 32,
						idle ? PROGRESS_IDLE_MS : -1);

		if (n == 0) {
			pthread_mutex_lock(&usmc_g.lock);
			if (progress_idle()) {
				/* progress_ensure starts another when work
				 * comes */
				progress_running = 0;
				usmc_thread_ending();
				pthread_mutex_unlock(&usmc_g.lock);
				return NULL;
			}
			idle = 0;
			pthread_mutex_unlock(&usmc_g.lock);
			continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			usmc_rt_log(USMC_LOG_ERR,
				    "progress thread: epoll_wait: %s",
				    strerror(errno));
			pthread_mutex_lock(&usmc_g.lock);
			usmc_thread_ending();
			pthread_mutex_unlock(&usmc_g.lock);
			return NULL;
		}
		pthread_mutex_lock(&usmc_g.lock);
		/* Completions and core timers wake the waiters themselves
		 * (smc_post) when a socket changed; a round of only those
		 * must not wake every blocked thread for nothing. */
		bc = 0;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64 >> 32;
			int fd = (int)(uint32_t)evs[i].data.u64;
			usmc_sock *s;

			switch (tag) {
			case TAG_SOCK:
				s = usmc_sock_get(fd);
				if (s && s->ep_events)
					usmc_sock_on_event(s, evs[i].events);
				bc = 1;
				break;
			case TAG_TIMER:
				timer_armed = UINT64_MAX;
				if (usmc_real()->read(usmc_g.timerfd, &buf,
						      sizeof(buf)) < 0) {
					/* spurious: the deadline moved */
				}
				bc |= run_deadlines();
				if ((tp_disarmed & ~direct_devs) &&
				    usmc_rt_now() >= handback_at)
					tp_take_back();
				break;
			case TAG_EVFD:
				if (usmc_real()->read(usmc_g.evfd, &buf,
						      sizeof(buf)) < 0) {
					/* already drained */
				}
				bc = 1;
				break;
			case TAG_TP:
				if ((unsigned int)fd >= USMC_DEVICES_MAX)
					break;
				usmc_g.stats.dev_wakes_progress++;
				if (direct_devs & (1u << fd)) {
					tp_disarmed |= 1u << fd;
					break;
				}
				usmc_smc_on_dev_event((unsigned int)fd);
				tp_rearm((unsigned int)fd);
				break;
			}
		}
		usmc_sock_reap();
		usmc_loop_rearm_timer();
		if (bc)
			usmc_rt_broadcast();
		idle = progress_idle();
		pthread_mutex_unlock(&usmc_g.lock);
	}
	return NULL;
}

/* A direct poller spins (USMC_SPIN_US) before it sleeps: a peer on the
 * same veth answers within tens of microseconds, and each datagram's
 * wake-up (WRITE, CDC, ACKs) otherwise costs a sleep and a context
 * switch on both ends. It yields between looks, so a peer on the same CPU
 * runs meanwhile. A thread whose sleep after a failed spin lasted long
 * (an idle connection) stops spinning until a sleep ends within the
 * budget again: an idle recv costs no CPU. */
static __thread int spin_cold;

static int spin(struct pollfd *p, nfds_t n)
{
	uint64_t budget = (uint64_t)usmc_g.cfg.spin_us * 1000, end;
	struct timespec zero = {0, 0};
	int r;

	if (!budget || spin_cold)
		return 0;
	end = usmc_rt_now() + budget;
	do {
		r = usmc_real()->ppoll(p, n, &zero, NULL);
		if (r)
			return r;
		sched_yield();
	} while (usmc_rt_now() < end);
	return 0;
}

static void spin_learn(uint64_t slept_ns)
{
	uint64_t budget = (uint64_t)usmc_g.cfg.spin_us * 1000;

	if (!spin_cold && slept_ns > 20 * budget)
		spin_cold = 1;
	else if (spin_cold && slept_ns <= budget)
		spin_cold = 0;
}

/* Spinning on the shm device's signal areas (docs/runtime.md "shm"): a
 * waiting direct poller marks itself awake in them (the peer's move_data
 * then rings no doorbell) and looks at their words with a pause between
 * looks, without the lock and without a system call; a signal is taken
 * inline (usmc_smc_shm_signals). The budget and spin_cold are spin()'s.
 * More runnable threads than CPUs (/proc/loadavg, looked at every
 * LOAD_NS per thread) means the peer, or whatever it waits for, may need
 * this CPU: the spin then yields every few looks. */
#define LOAD_NS (20 * USMC_NS_PER_MS)
static __thread uint64_t load_at;
static __thread int load_high;
/* the last time a spin's signals ran the device's whole event path (its
 * endpoint served); lock held */
static uint64_t shm_full_at;
#define SHM_FULL_NS (1 * USMC_NS_PER_MS)

static int loaded(uint64_t now)
{
	static int ncpu;
	char buf[128], *slash;
	ssize_t n;
	int fd;

	if (now - load_at < LOAD_NS && load_at)
		return load_high;
	load_at = now;
	if (!ncpu)
		ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return load_high = 0;
	n = usmc_real()->read(fd, buf, sizeof(buf) - 1);
	usmc_real()->close(fd);
	if (n <= 0)
		return load_high = 0;
	buf[n] = 0;
	/* "0.55 0.21 0.17 RUNNING/TOTAL LASTPID": RUNNING counts us */
	slash = strchr(buf, '/');
	if (!slash)
		return load_high = 0;
	while (slash > buf && slash[-1] != ' ')
		slash--;
	return load_high = atoi(slash) > (ncpu > 0 ? ncpu : 1);
}

/* 1: a signal seen; 0: none (|*pr| > 0: the other devices' fds, looked
 * at every 128 looks, are ready: a softroce connection of the same
 * thread is not kept waiting by a spin on shm). */
static int shm_spin(usmc_tp_shm_spin *sp, const waiter *w, struct pollfd *p,
		    nfds_t n, int *pr)
{
	uint64_t now = usmc_rt_now(),
		 end = now + (uint64_t)usmc_g.cfg.spin_us * 1000;
	unsigned int yield_every = loaded(now) ? 32 : 1024;

	for (unsigned int i = 1;; i++) {
		if (usmc_tp_shm_spin_seen(sp))
			return 1;
		/* woken for something else: ppoll returns at once */
		if (__atomic_load_n(&w->pending, __ATOMIC_RELAXED))
			return 0;
		if (i % 32 == 0 && usmc_rt_now() >= end)
			return 0;
		if (i % 128 == 0) {
			struct timespec zero = {0, 0};

			if ((*pr = usmc_real()->ppoll(p, n, &zero, NULL)) > 0)
				return 0;
			*pr = 0;
		}
		if (i % yield_every == 0)
			sched_yield();
		else
			usmc_tp_shm_relax();
	}
}

void usmc_rt_spin_learn(uint64_t slept_ns)
{
	spin_learn(slept_ns);
}

/* Lock held: the direct poller left (direct_devs cleared). The devices
 * the progress thread disarmed meanwhile go back to it at handback_at,
 * unless a thread waits on them again first; at once if a thread sleeps
 * in epoll_wait or poll without the role (its data must not wait for the
 * hand-back). A thread waiting in usmc_wait may take them now (what
 * changed a socket has woken its waiters in smc_post). */
static void direct_left(void)
{
	if (tp_disarmed && role_waiters) {
		tp_take_back();
	} else if (tp_disarmed) {
		handback_at = usmc_rt_now() + TP_HANDBACK_NS;
		/* a timer due sooner re-arms itself for handback_at */
		if (timer_armed > handback_at)
			usmc_loop_rearm_timer();
	}
	usmc_rt_wake_data();
}

int usmc_rt_direct_enter(int *fd)
{
	unsigned int idx;

	if (!usmc_smc_shm_tp(&idx) || (*fd = usmc_smc_dev_fd(idx)) < 0)
		return -2;
	if (direct_devs) {
		role_waiters++;
		return -1;
	}
	direct_devs = 1u << idx;
	return (int)idx;
}

void usmc_rt_direct_leave(int dp)
{
	if (dp == -1)
		role_waiters--;
	if (dp < 0)
		return;
	direct_devs = 0;
	direct_left();
}

void usmc_rt_dev_ready(unsigned int idx)
{
	unsigned int shm;

	usmc_g.stats.dev_wakes_app++;
	if (usmc_smc_shm_tp(&shm) && shm == idx)
		shm_full_at = usmc_rt_now(); /* its endpoint is served too */
	usmc_smc_on_dev_event(idx);
}

int usmc_rt_shm_spin(int kfd, const sigset_t *sigmask, uint64_t nid)
{
	usmc_tp_shm_spin sp = {.n = 0};
	usmc_tp *tp;
	unsigned int idx;
	uint64_t now, end;
	unsigned int yield_every;
	int hit = 0, intr = 0;

	if (!usmc_g.cfg.spin_us || spin_cold ||
	    !(tp = usmc_smc_shm_tp_busy(&idx)) ||
	    usmc_tp_shm_spin_arm(tp, &sp) <= 0)
		return -1;
	pthread_mutex_unlock(&usmc_g.lock);
	now = usmc_rt_now();
	end = now + (uint64_t)usmc_g.cfg.spin_us * 1000;
	yield_every = loaded(now) ? 32 : 1024;
	for (unsigned int i = 1; !hit; i++) {
		if ((hit = usmc_tp_shm_spin_seen(&sp)))
			break;
		if (i % 32 == 0 && usmc_rt_now() >= end)
			break;
		/* the caller's kernel fds (an epoll set): a look at once,
		 * before any yield (one ready already needs no spin, however
		 * busy the CPU), then every few microseconds. Under the
		 * caller's signal mask, as its sleep would be: a signal it
		 * lets in only while it waits is taken here, not after the
		 * spin (a spin that keeps seeing other connections' signals
		 * would never end). */
		if ((kfd >= 0 || sigmask) && (i == 1 || i % 128 == 0)) {
			struct pollfd p = {.fd = kfd, .events = POLLIN};
			struct timespec zero = {0, 0};
			int r = usmc_real()->ppoll(&p, 1, &zero, sigmask);

			if (r > 0)
				break;
			if (r < 0 && errno == EINTR) {
				intr = 1;
				break;
			}
		}
		if (i % yield_every == 0)
			sched_yield();
		else
			usmc_tp_shm_relax();
	}
	if (!hit)
		hit = usmc_tp_shm_spin_sleep(&sp);
	pthread_mutex_lock(&usmc_g.lock);
	usmc_tp_shm_spin_done(&sp);
	if (hit || intr)
		usmc_notify_arm(nid, -1);
	if (!hit)
		/* |kfd| ready or not: the caller's epoll_pwait says (1, look
		 * again, had it spin on a ready fd until its timeout) */
		return intr ? -2 : 0;
	now = usmc_rt_now();
	if (now - shm_full_at >= SHM_FULL_NS) {
		shm_full_at = now;
		usmc_smc_on_dev_event(idx);
	} else {
		usmc_smc_shm_signals();
	}
	return intr ? -2 : 1;
}

/*
 * The one place app threads block inside usmc. A waiting thread polls the
 * device fds itself when no other thread does, and runs the completions
 * it finds: the data path then needs no hop through the progress thread.
 * Timers stay with the progress thread.
 */
int usmc_wait_held(uint64_t deadline_ns, int intr, usmc_sig_hold *h)
{
	waiter *w = &self_waiter;
	struct pollfd p[USMC_DEVICES_MAX + 1];
	struct timespec ts, *tsp = NULL;
	sigset_t tmp;
	int n = 0, ms = -1, dp = 0, r, e, fd, pend = 0;
	int nodev = intr & USMC_WAIT_NODEV;
	int masked, hit = 0;
	uint64_t v;
	usmc_tp_shm_spin sp = {.n = 0};
	usmc_tp *shm_tp = NULL;
	unsigned int shm_i = 0;

	intr &= ~USMC_WAIT_NODEV;
	masked = intr != USMC_INTR_NONE;

	/* A handler that runs between the check below and the sleep would
	 * leave the wait unbounded (no EINTR from a poll it did not
	 * interrupt), and one usmc did not install is seen only as poll's
	 * EINTR. So from just before its first sleep the caller's signals
	 * stay blocked while it is awake, here and in its loop between
	 * waits (|h|), and are let in only inside ppoll, atomically, as the
	 * kernel checks signal_pending before it sleeps. A wait that ends
	 * in a spin never blocks them (no system call). */
	if (usmc_sig_decide(intr, 0))
		return EINTR;
	if (deadline_ns) {
		uint64_t now = usmc_rt_now();

		if (now >= deadline_ns)
			return ETIMEDOUT;
		ms = (int)((deadline_ns - now + USMC_NS_PER_MS - 1) /
			   USMC_NS_PER_MS);
	}
	/* p[0..dp-1] are devices 0..dp-1 */
	if (!direct_devs && !nodev)
		while (dp < USMC_DEVICES_MAX &&
		       (fd = usmc_smc_dev_fd((unsigned int)dp)) >= 0) {
			p[n].fd = fd;
			p[n++].events = POLLIN;
			dp++;
		}
	if (dp) {
		direct_devs = (1u << dp) - 1;
		/* bounded, in case a wake-up is lost to a race with fd
		 * changes (a device opened meanwhile) */
		if (ms < 0 || ms > 100)
			ms = 100;
	}
	if (waiter_fd() >= 0) {
		p[n].fd = w->evfd;
		p[n++].events = POLLIN;
		w->pending = 0;
		w->nodev = nodev;
		w->next = waiters;
		waiters = w;
	} else if (ms < 0 || ms > 10) {
		ms = 10; /* no eventfd to be woken by (EMFILE): look often */
	}
	for (int i = 0; i < n; i++)
		p[i].revents = 0;
	if (ms >= 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000L;
		tsp = &ts;
	}
	if (dp && usmc_g.cfg.spin_us && !spin_cold &&
	    (shm_tp = usmc_smc_shm_tp_busy(&shm_i)) && shm_i < (unsigned int)dp)
		usmc_tp_shm_spin_arm(shm_tp, &sp);
	pthread_mutex_unlock(&usmc_g.lock);
	r = 0;
	if (sp.n) {
		hit = shm_spin(&sp, w, p, (nfds_t)n, &r);
		/* asleep and a last look, whatever ended the spin: a signal
		 * set while we were awake rang no doorbell */
		if (!hit)
			hit = usmc_tp_shm_spin_sleep(&sp);
	} else if (dp) {
		r = spin(p, (nfds_t)n);
	}
	/* A spin that found its signal made no system call; only a thread
	 * that goes to sleep blocks the signals (and checks again). */
	if (r == 0 && !hit && masked && !h->on) {
		usmc_sig_block(&h->old);
		h->on = 1;
		if (usmc_sig_decide(intr, 0)) {
			r = -1;
			e = EINTR;
			goto woke;
		}
	}
	if (r == 0 && !hit) {
		uint64_t t0 = dp ? usmc_rt_now() : 0;

		r = usmc_real()->ppoll(p, (nfds_t)n, tsp,
				       masked ? &h->old : NULL);
		if (dp)
			spin_learn(usmc_rt_now() - t0);
	}
	e = errno;
woke:
	pthread_mutex_lock(&usmc_g.lock);
	usmc_tp_shm_spin_done(&sp);
	if (w->evfd >= 0) {
		for (waiter **pp = &waiters; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		if (w->pending &&
		    usmc_real()->read(w->evfd, &v, sizeof(v)) < 0) {
			/* nothing to drain */
		}
		w->pending = 0;
	}
	if (dp) {
		direct_devs = 0;
		/* the devices that have something; the others stay idle */
		for (int i = 0; i < dp; i++)
			if (r > 0 && p[i].revents) {
				usmc_g.stats.dev_wakes_app++;
				usmc_smc_on_dev_event((unsigned int)i);
			}
		if (hit) {
			uint64_t now = usmc_rt_now();

			/* the endpoint is served at least every SHM_FULL_NS
			 * (a peer's attach waits for it), whatever rang */
			if (now - shm_full_at >= SHM_FULL_NS) {
				shm_full_at = now;
				usmc_smc_on_dev_event(shm_i);
			} else {
				usmc_smc_shm_signals();
			}
		}
		direct_left();
	}
	if (masked && h->on) {
		/* one that came after ppoll returned is pending: let it run
		 * now (a trampoline notes it itself), then hold the rest
		 * back again */
		pend = !(r < 0 && e == EINTR) && usmc_sig_pending(&h->old);
		if (pend) {
			usmc_sig_restore(&h->old);
			usmc_sig_block(&tmp);
		}
	}
	if (usmc_sig_decide(intr, (r < 0 && e == EINTR) || pend))
		return EINTR;
	return 0;
}

int usmc_wait(uint64_t deadline_ns, int intr)
{
	usmc_sig_hold h = {0};
	int r = usmc_wait_held(deadline_ns, intr, &h);

	usmc_sig_release(&h);
	return r;
}

void usmc_sig_release(usmc_sig_hold *h)
{
	if (h->on) {
		h->on = 0;
		usmc_sig_restore(&h->old);
	}
}
