/* SPDX-License-Identifier: MIT */
/*
 * Vectored and message I/O (sendmsg, recvmsg, writev, readv) and
 * sendfile: the kernel's calls for the sockets it serves, and for SMC-R
 * one usmc_send/usmc_recv per part.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "usmc_real.h"
#include "usmc_sock.h"

static int sock_mode_rx(int fd, usmc_sock **check);

/* Vectored and message I/O. Fallback and plain sockets get the kernel
 * call itself; SMC-R gathers and scatters through usmc_send/usmc_recv. */
static int sock_mode(int fd)
{
	return sock_mode_rx(fd, NULL);
}

/* As sock_mode; for a read, *|check| is the fallback socket whose first
 * read looks for a crossed Decline (usmc_hs_crossed_decline), or NULL. */
static int sock_mode_rx(int fd, usmc_sock **check)
{
	usmc_sock *s;
	int m;

	if (check)
		*check = NULL;
	if (usmc_sock_lock())
		return -1;
	s = usmc_sock_get(fd);
	m = s ? (int)s->mode : USMC_SOCK_UNMANAGED;
	if (check && s && s->mode == USMC_SOCK_TCP && s->decl_check)
		*check = s;
	usmc_sock_kernel_mark(s, fd);
	if (s && s->mode == USMC_SOCK_HANDSHAKE)
		m = USMC_SOCK_SMCR; /* usmc_send/recv wait or say EAGAIN */
	if (s && s->mode == USMC_SOCK_FAILED)
		m = USMC_SOCK_SMCR; /* they report the failure */
	usmc_sock_unlock();
	return m;
}

static void count_bytes(int fd, ssize_t n, int sent)
{
	usmc_sock *s;

	if (n <= 0 || usmc_sock_lock())
		return;
	s = usmc_sock_get(fd);
	if (s && !s->kernel) /* else the kernel's counts go on */
		__atomic_fetch_add(sent ? &s->bytes_sent : &s->bytes_recv,
				   (uint64_t)n, __ATOMIC_RELAXED);
	usmc_sock_unlock();
}

ssize_t usmc_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t done = 0;

	if (sock_mode(fd) != USMC_SOCK_SMCR) {
		ssize_t r = usmc_real()->sendmsg(fd, msg, flags);

		count_bytes(fd, r, 1);
		return r;
	}
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		const struct iovec *v = &msg->msg_iov[i];
		ssize_t r;

		if (!v->iov_len)
			continue;
		/* blocking: each part blocks until sent, as one kernel
		 * sendmsg would; nonblocking: stops at the first short part */
		r = usmc_send(fd, v->iov_base, v->iov_len, flags);
		if (r < 0)
			return done ? done : -1;
		done += r;
		if ((size_t)r < v->iov_len)
			break;
	}
	return done;
}

ssize_t usmc_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t done = 0;
	usmc_sock *chk;

	if (sock_mode_rx(fd, &chk) != USMC_SOCK_SMCR) {
		ssize_t r;

		if (chk && !(flags & MSG_OOB) &&
		    usmc_hs_crossed_decline(chk, fd, flags))
			return -1;
		r = usmc_real()->recvmsg(fd, msg, flags);

		count_bytes(fd, r, 0);
		return r;
	}
	/* a stream socket has no source address or control data here */
	msg->msg_namelen = 0;
	msg->msg_controllen = 0;
	msg->msg_flags = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		struct iovec *v = &msg->msg_iov[i];
		ssize_t r;

		if (!v->iov_len)
			continue;
		r = usmc_recv(fd, v->iov_base, v->iov_len,
			      done && !(flags & MSG_WAITALL)
				      ? flags | MSG_DONTWAIT
				      : flags);
		if (r < 0) {
			if (done)
				break;
			return -1;
		}
		done += r;
		if ((size_t)r < v->iov_len)
			break;
	}
	return done;
}

ssize_t usmc_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)iovcnt};

	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (sock_mode(fd) != USMC_SOCK_SMCR) {
		ssize_t r = usmc_real()->writev(fd, iov, iovcnt);

		count_bytes(fd, r, 1);
		return r;
	}
	return usmc_sendmsg(fd, &m, 0);
}

ssize_t usmc_readv(int fd, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov,
			   .msg_iovlen = (size_t)iovcnt};
	usmc_sock *chk;

	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (sock_mode_rx(fd, &chk) != USMC_SOCK_SMCR) {
		ssize_t r;

		if (chk && usmc_hs_crossed_decline(chk, fd, 0))
			return -1;
		r = usmc_real()->readv(fd, iov, iovcnt);

		count_bytes(fd, r, 0);
		return r;
	}
	return usmc_recvmsg(fd, &m, 0);
}

/* sendfile to an SMC-R socket: read the file, send it; what the socket
 * did not take is given back to the file position or |offset|. */
ssize_t usmc_sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
	char *buf;
	size_t done = 0;
	off_t pos = offset ? *offset : 0;

	if (sock_mode(out_fd) != USMC_SOCK_SMCR)
		return usmc_real()->sendfile(out_fd, in_fd, offset, count);
	buf = malloc(65536);
	if (!buf) {
		errno = ENOMEM;
		return -1;
	}
	while (done < count) {
		size_t want = count - done < 65536 ? count - done : 65536;
		ssize_t n = offset ? pread(in_fd, buf, want, pos)
				   : usmc_real()->read(in_fd, buf, want);
		ssize_t w;

		if (n <= 0) {
			if (n < 0 && !done) {
				free(buf);
				return -1;
			}
			break;
		}
		w = usmc_send(out_fd, buf, (size_t)n, done ? MSG_DONTWAIT : 0);
		if (w < 0)
			w = 0;
		if (w < n && !offset)
			lseek(in_fd, (off_t)(w - n), SEEK_CUR);
		pos += w;
		done += (size_t)w;
		if (w < n) {
			if (!done) {
				free(buf);
				return -1; /* errno from usmc_send */
			}
			break;
		}
	}
	free(buf);
	if (offset)
		*offset = pos;
	return (ssize_t)done;
}
