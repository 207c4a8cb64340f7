/* SPDX-License-Identifier: MIT */
/*
 * Byte-exact streams for the runtime tests: a position-dependent pattern
 * (a byte dropped, repeated or moved shows at once), a sender and a reader
 * that checks every byte, over usmc's calls or the kernel's.
 */
#ifndef USMC_STREAM_TEST_H
#define USMC_STREAM_TEST_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usmc.h"

/* Byte |i| of stream |seed|: varies with the offset's low and high bits, so
 * a shift by any amount below 128 KiB changes it. */
static inline uint8_t usmc_test_pat(uint64_t i, uint8_t seed)
{
	return (uint8_t)((i * 131 + (i >> 9) + seed) ^ (i >> 17));
}

typedef ssize_t (*usmc_test_io)(int fd, void *buf, size_t n, int flags);

static inline ssize_t usmc_test_usmc_send(int fd, void *b, size_t n, int f)
{
	return usmc_send(fd, b, n, f | MSG_NOSIGNAL);
}

static inline ssize_t usmc_test_usmc_recv(int fd, void *b, size_t n, int f)
{
	return usmc_recv(fd, b, n, f);
}

static inline ssize_t usmc_test_kernel_send(int fd, void *b, size_t n, int f)
{
	return send(fd, b, n, f | MSG_NOSIGNAL);
}

static inline ssize_t usmc_test_kernel_recv(int fd, void *b, size_t n, int f)
{
	return recv(fd, b, n, f);
}

/* Sends bytes 0..n-1 of stream |seed| in pieces of at most 4 KiB (so that
 * reads and writes straddle the RMB's wrap at odd places); 0, or -1 on an
 * error. */
static inline int usmc_test_send_pat(usmc_test_io tx, int fd, size_t n,
				     uint8_t seed)
{
	uint8_t buf[4096];
	size_t off = 0;

	while (off < n) {
		size_t k = n - off < sizeof(buf) ? n - off : sizeof(buf);
		ssize_t w;

		for (size_t i = 0; i < k; i++)
			buf[i] = usmc_test_pat(off + i, seed);
		w = tx(fd, buf, k, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* Reads stream |seed| to EOF. With |pause_us| > 0 it stops reading that
 * long once |pause_at| bytes are in (the sender then meets a full RMB).
 * Returns the byte count; -1 at the first wrong byte, said on stderr with
 * |who| and the read's first bytes (a CLC eyecatcher is e2 d4 c3 d9); -2 on
 * an error. */
static inline long usmc_test_recv_pat_pause(usmc_test_io rx, int fd,
					    uint8_t seed, const char *who,
					    long pause_at, unsigned pause_us)
{
	uint8_t buf[3000];
	long off = 0;

	for (;;) {
		ssize_t r;

		if (pause_us && pause_at >= 0 && off >= pause_at) {
			usleep(pause_us);
			pause_at = -1;
		}
		r = rx(fd, buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -2;
		if (r == 0)
			return off;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] !=
			    usmc_test_pat((uint64_t)off + (uint64_t)i, seed)) {
				fprintf(stderr,
					"%s: byte %ld differs; read "
					"starts",
					who, off + (long)i);
				for (ssize_t j = 0; j < r && j < 5; j++)
					fprintf(stderr, " %02x", buf[j]);
				fputc('\n', stderr);
				return -1;
			}
		off += r;
	}
}

static inline long usmc_test_recv_pat(usmc_test_io rx, int fd, uint8_t seed,
				      const char *who)
{
	return usmc_test_recv_pat_pause(rx, fd, seed, who, -1, 0);
}

#endif
