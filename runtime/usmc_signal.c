/* SPDX-License-Identifier: MIT */
/*
 * Signals and EINTR. A kernel socket call that a signal handler interrupts
 * returns EINTR, or is restarted when the handler has SA_RESTART (and the
 * socket no SO_RCVTIMEO/SO_SNDTIMEO); poll, select and epoll always return
 * EINTR. usmc's blocking calls wait in poll(), which tells only that some
 * handler ran. To answer as the kernel would, handlers installed through
 * usmc_sigaction (the preload routes sigaction, signal and siginterrupt
 * here) run behind a trampoline that notes, per thread, whether the
 * handler had SA_RESTART. A handler usmc did not install is judged by the
 * flags of every installed handler (usmc_sig_decide).
 *
 * Synchronous fault signals are never trampolined: they do not interrupt
 * system calls, and their handlers (ASan, JITs) inspect the context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "usmc_real.h"
#include "usmc_rt.h"

__thread unsigned usmc_sig_seen __attribute__((tls_model("initial-exec")));

/* The app's handler for a signal. The trampoline may read it while
 * another thread changes it, so a sequence count guards the pair (odd:
 * being written). */
static struct sig_slot {
	unsigned seq;
	void *fn; /* sa_handler or sa_sigaction; NULL: not trampolined */
	int flags;
} slots[_NSIG];

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t sig_fork_once = PTHREAD_ONCE_INIT;
/* siginterrupt(sig, 1) was called: signal() installs without SA_RESTART */
static sigset_t intr_set;

static int trampolined(int sig)
{
	switch (sig) {
	case SIGSEGV:
	case SIGBUS:
	case SIGILL:
	case SIGFPE:
	case SIGTRAP:
	case SIGSYS:
	case SIGKILL:
	case SIGSTOP:
		return 0;
	}
	return sig > 0 && sig < _NSIG;
}

static void slot_read(int sig, void **fn, int *flags)
{
	struct sig_slot *s = &slots[sig];
	unsigned a, b;

	do {
		a = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		*fn = __atomic_load_n(&s->fn, __ATOMIC_RELAXED);
		*flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		b = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);
	} while ((a & 1) || a != b);
}

/* sig_lock held, signals blocked in this thread. */
static void slot_write(int sig, void *fn, int flags)
{
	struct sig_slot *s = &slots[sig];

	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&s->fn, fn, __ATOMIC_RELAXED);
	__atomic_store_n(&s->flags, flags, __ATOMIC_RELAXED);
	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_RELEASE);
}

/* In a vfork child this runs in the parent's memory, with the thread-local
 * storage of the parent's thread that called vfork: that thread is in no
 * usmc call (every blocking one resets usmc_sig_seen on entry), and the
 * handler's own calls reach libc (usmc_foreign_child). */
static void trampoline(int sig, siginfo_t *info, void *uc)
{
	int saved_in_runtime = usmc_in_runtime, flags;
	unsigned seen = usmc_sig_seen;
	void *fn;

	slot_read(sig, &fn, &flags);
	if (!fn)
		return; /* changed to SIG_DFL/SIG_IGN as it was delivered */
	seen |= (flags & SA_RESTART) ? USMC_SIG_RESTART : USMC_SIG_NORESTART;
	/* SA_RESETHAND: the kernel has reset the action; the slot stays, and
	 * a query sees SIG_DFL (the kernel no longer names the trampoline). */
	/* the handler's own calls are the app's, not usmc's */
	usmc_in_runtime = 0;
	if (flags & SA_SIGINFO)
		((void (*)(int, siginfo_t *, void *))fn)(sig, info, uc);
	else
		((void (*)(int))fn)(sig);
	usmc_in_runtime = saved_in_runtime;
	/* noted after the handler: a usmc call it makes starts afresh
	 * (lock_init), which must not erase this for the interrupted one */
	usmc_sig_seen = seen;
}

static int is_trampoline(const struct sigaction *k)
{
	return (k->sa_flags & SA_SIGINFO) && k->sa_sigaction == trampoline;
}

/* A fork while another thread holds sig_lock would leave the child a lock
 * nobody releases, and its next sigaction() would hang: the forking
 * thread takes it across fork(). Registered before the runtime's own
 * handler (rt_init_once calls usmc_signal_atfork_init first), so, prepare
 * handlers running in reverse order, usmc_g.lock is taken before sig_lock
 * as the lock order says (docs/threads.md). */
static void sig_fork_prepare(void)
{
	pthread_mutex_lock(&sig_lock);
}

static void sig_fork_release(void)
{
	pthread_mutex_unlock(&sig_lock);
}

static void sig_fork_init(void)
{
	pthread_atfork(sig_fork_prepare, sig_fork_release, sig_fork_release);
}

void usmc_signal_atfork_init(void)
{
	pthread_once(&sig_fork_once, sig_fork_init);
}

static void sig_lock_take(void)
{
	usmc_signal_atfork_init();
	pthread_mutex_lock(&sig_lock);
}

int usmc_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	struct sigaction k, kold;
	sigset_t all, mask;
	void *pfn, *nfn = NULL;
	int pflags, r, e;

	if (!trampolined(sig))
		return usmc_real()->sigaction(sig, act, old);
	if (act) {
		void *h = (act->sa_flags & SA_SIGINFO)
				  ? (void *)act->sa_sigaction
				  : (void *)act->sa_handler;

		if (h != (void *)SIG_DFL && h != (void *)SIG_IGN &&
		    h != (void *)trampoline)
			nfn = h;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &mask);
	sig_lock_take();
	slot_read(sig, &pfn, &pflags);
	if (nfn) {
		k = *act;
		k.sa_flags |= SA_SIGINFO;
		k.sa_sigaction = trampoline;
		slot_write(sig, nfn, act->sa_flags);
	}
	r = usmc_real()->sigaction(sig, act ? (nfn ? &k : act) : NULL, &kold);
	e = errno;
	if (r) {
		if (nfn)
			slot_write(sig, pfn, pflags);
	} else {
		if (act && !nfn)
			slot_write(sig, NULL, 0);
		if (old) {
			*old = kold;
			if (is_trampoline(&kold) && pfn) {
				old->sa_flags = pflags;
				if (pflags & SA_SIGINFO)
					old->sa_sigaction = (void (*)(
						int, siginfo_t *, void *))pfn;
				else
					old->sa_handler = (void (*)(int))pfn;
			}
		}
	}
	pthread_mutex_unlock(&sig_lock);
	pthread_sigmask(SIG_SETMASK, &mask, NULL);
	errno = e;
	return r;
}

static sighandler_t install(int sig, sighandler_t fn, int flags, int self_mask)
{
	struct sigaction act, old;

	memset(&act, 0, sizeof(act));
	act.sa_handler = fn;
	sigemptyset(&act.sa_mask);
	if (self_mask && sig > 0 && sig < _NSIG)
		sigaddset(&act.sa_mask, sig);
	act.sa_flags = flags;
	if (usmc_sigaction(sig, &act, &old))
		return SIG_ERR;
	return (old.sa_flags & SA_SIGINFO)
		       ? (sighandler_t)(void (*)(void))old.sa_sigaction
		       : old.sa_handler;
}

/* glibc's signal(): BSD semantics, restartable unless siginterrupt(sig, 1). */
sighandler_t usmc_signal(int sig, sighandler_t fn)
{
	int intr;

	if (sig <= 0 || sig >= _NSIG) {
		errno = EINVAL;
		return SIG_ERR;
	}
	sig_lock_take();
	intr = sigismember(&intr_set, sig) == 1;
	pthread_mutex_unlock(&sig_lock);
	return install(sig, fn, intr ? 0 : SA_RESTART, 1);
}

/* System V signal(): one-shot, not masked while it runs, not restartable. */
sighandler_t usmc_sysv_signal(int sig, sighandler_t fn)
{
	return install(sig, fn, SA_RESETHAND | SA_NODEFER, 0);
}

int usmc_siginterrupt(int sig, int flag)
{
	struct sigaction act;

	if (sig <= 0 || sig >= _NSIG || usmc_sigaction(sig, NULL, &act)) {
		errno = EINVAL;
		return -1;
	}
	sig_lock_take();
	if (flag) {
		sigaddset(&intr_set, sig);
		act.sa_flags &= ~SA_RESTART;
	} else {
		sigdelset(&intr_set, sig);
		act.sa_flags |= SA_RESTART;
	}
	pthread_mutex_unlock(&sig_lock);
	return usmc_sigaction(sig, &act, NULL);
}

/* A handler ran that usmc did not install (poll gave EINTR, no trampoline
 * noted it): assume the worst handler the process has installed. */
static unsigned unknown_handler(void)
{
	for (int sig = 1; sig < _NSIG; sig++) {
		struct sigaction k;

		if (!trampolined(sig) || usmc_real()->sigaction(sig, NULL, &k))
			continue;
		if (is_trampoline(&k) || k.sa_handler == SIG_DFL ||
		    k.sa_handler == SIG_IGN)
			continue;
		if (!(k.sa_flags & SA_RESTART))
			return USMC_SIG_NORESTART;
	}
	return USMC_SIG_RESTART;
}

/* The signals usmc_wait holds back while awake: all that trampolined()
 * passes (a fault signal must never be blocked). */
static sigset_t wait_set;
static pthread_once_t wait_set_once = PTHREAD_ONCE_INIT;

static void wait_set_init(void)
{
	sigemptyset(&wait_set);
	for (int sig = 1; sig < _NSIG; sig++)
		if (trampolined(sig))
			sigaddset(&wait_set, sig);
}

void usmc_sig_block(sigset_t *old)
{
	pthread_once(&wait_set_once, wait_set_init);
	pthread_sigmask(SIG_BLOCK, &wait_set, old);
}

void usmc_sig_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int usmc_sig_pending(const sigset_t *old)
{
	sigset_t pend;

	if (sigpending(&pend))
		return 0;
	for (int sig = 1; sig < _NSIG; sig++)
		if (sigismember(&wait_set, sig) == 1 &&
		    sigismember(&pend, sig) == 1 && sigismember(old, sig) != 1)
			return 1;
	return 0;
}

int usmc_sig_decide(int intr, int poll_eintr)
{
	if (intr == USMC_INTR_NONE)
		return 0;
	if (poll_eintr && !usmc_sig_seen)
		usmc_sig_seen |= unknown_handler();
	switch (intr) {
	case USMC_INTR_ALWAYS:
		return usmc_sig_seen != 0;
	case USMC_INTR_RESTART:
		return (usmc_sig_seen & USMC_SIG_NORESTART) != 0;
	}
	return 0;
}
