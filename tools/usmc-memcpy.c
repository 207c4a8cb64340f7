/* usmc-memcpy: single-core memcpy bandwidth, and with --pipe the
 * bandwidth of a ring between two cores. A stream through shared memory
 * is a copy into the peer's buffer and a copy out of it: one core's
 * memcpy is the ceiling the issue names (usmc-bench's "shm stream as a
 * fraction of memcpy"), and the pipe, the same two copies on two cores
 * with nothing else, is the ceiling such a stream can reach on this
 * machine. The manual is --help. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usmc_tool.h"
#include "usmc_tp_shm.h"

static void usage(FILE *f)
{
	fputs("NAME\n"
	      "    usmc-memcpy - single-core memcpy bandwidth\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    usmc-memcpy [--pipe] [-b BLOCK] [-s SPAN] [-t SECONDS] "
	      "[--json]\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    Copies one BLOCK-byte source buffer again and again into a\n"
	      "    SPAN-byte destination ring, BLOCK bytes at a time at the "
	      "next\n"
	      "    offset, on one thread for SECONDS, and prints the bytes "
	      "copied\n"
	      "    per second. The source stays in cache, as a sender's "
	      "message\n"
	      "    does; the ring is the size of a receive buffer. usmc-bench "
	      "uses\n"
	      "    it as the physical limit of a stream through shared "
	      "memory.\n"
	      "\n"
	      "    With --pipe, two threads on two CPUs (the first two this\n"
	      "    process may run on) move data through the SPAN-byte ring:\n"
	      "    a writer copies its BLOCK-byte source in as soon as BLOCK\n"
	      "    bytes are free and publishes its cursor, a reader copies\n"
	      "    each BLOCK out into a buffer of its own and publishes its\n"
	      "    cursor, each spinning while it waits. That is a stream\n"
	      "    through shared memory with no system call, lock or signal:\n"
	      "    what one can reach between two cores here, which is less\n"
	      "    than one core's memcpy because every cache line of the\n"
	      "    ring moves from the writer's core to the reader's. It\n"
	      "    prints the bytes the reader copied out per second.\n"
	      "\n"
	      "OPTIONS\n"
	      "        --pipe           the two-core ring above\n"
	      "    -b, --block N[K|M]   bytes per memcpy (default 64K)\n"
	      "    -s, --span N[K|M|G]  destination ring size, a multiple of\n"
	      "                         the block (default 1M)\n"
	      "    -t, --time SECONDS   run time, 0.05 to 600 (default 1)\n"
	      "        --json           one JSON object: block, span, bytes,\n"
	      "                         seconds, gbytes_per_s, gbps\n"
	      "    -h, --help           this text\n"
	      "        --version        the version, and exit\n"
	      "\n"
	      "OUTPUT\n"
	      "    Text: 'block:', 'span:', 'bytes:', 'seconds:', 'GB/s:' "
	      "(10^9\n"
	      "    bytes per second) and 'Gbit/s:'; with --pipe first "
	      "'mode: pipe'\n"
	      "    and 'cpus: A,B'. JSON: the same, with \"mode\" "
	      "(\"memcpy\" or\n"
	      "    \"pipe\") and, for a pipe, \"cpus\".\n"
	      "\n"
	      "EXIT STATUS\n"
	      "    0 success; 1 out of memory, or --pipe with fewer than two\n"
	      "    CPUs to run on; 2 usage error.\n",
	      f);
}

/* N[K|M|G], 1 byte to 16 GiB */
static size_t size_opt(const char *opt, const char *s)
{
	uint64_t v;

	if (usmc_tool_number(s, 1, 1, 1ULL << 34, &v))
		usmc_tool_usage_error("usmc-memcpy",
				      "bad %s '%s' (want N, NK, NM or NG, "
				      "up to 16G)",
				      opt, s);
	return (size_t)v;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --pipe: the ring's two cursors, each on a cache line of its own so that
 * publishing one does not take the other's line from its reader */
struct pipe {
	unsigned char *ring, *out; /* out: the reader's buffer */
	size_t block, span;
	_Alignas(64) _Atomic uint64_t prod;
	_Alignas(64) _Atomic uint64_t cons;
	_Alignas(64) _Atomic int stop;
	int cpu;
	unsigned char sum;
};

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *pipe_reader(void *arg)
{
	struct pipe *p = arg;
	unsigned char *buf = p->out;
	uint64_t c = 0;

	pin(p->cpu);
	while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
		uint64_t pr =
			atomic_load_explicit(&p->prod, memory_order_acquire);

		if (pr - c < p->block) {
			usmc_tp_shm_relax();
			continue;
		}
		memcpy(buf, p->ring + c % p->span, p->block);
		p->sum ^= buf[c / p->span % p->block];
		c += p->block;
		atomic_store_explicit(&p->cons, c, memory_order_release);
	}
	return NULL;
}

/* Runs the writer on this thread and the reader on another for |secs|
 * (a tenth more first, untimed); returns 0, the bytes read per second in
 * |*bps| and the time measured in |*secs|, else 1 with the reason said. */
static int run_pipe(size_t block, size_t span, double *secs, int *cpus,
		    double *bps)
{
	struct pipe p = {.block = block, .span = span};
	unsigned char *src = malloc(block);
	cpu_set_t set;
	pthread_t th;
	uint64_t w = 0, c0 = 0;
	double t0 = 0, t1;
	int n = 0, warm = 1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
			if (CPU_ISSET(i, &set))
				cpus[n++] = i;
	if (n < 2) {
		fprintf(stderr,
			"usmc-memcpy: --pipe needs two CPUs to run "
			"on, this process has %d\n",
			n);
		free(src);
		return 1;
	}
	/* page-aligned, as a DMB is (a 64 KiB ring from the heap, 16-byte
	 * aligned, ran at 40 % of this) */
	p.ring = aligned_alloc(4096, (span + 4095) / 4096 * 4096);
	p.out = malloc(block);
	if (!src || !p.ring || !p.out) {
		fprintf(stderr, "usmc-memcpy: out of memory\n");
		free(src);
		free(p.ring);
		free(p.out);
		return 1;
	}
	for (size_t i = 0; i < block; i++)
		src[i] = (unsigned char)(i * 131 + 7);
	memset(p.ring, 0, span);
	p.cpu = cpus[1];
	if (pthread_create(&th, NULL, pipe_reader, &p)) {
		fprintf(stderr, "usmc-memcpy: pthread_create failed\n");
		free(src);
		free(p.ring);
		free(p.out);
		return 1;
	}
	pin(cpus[0]);
	t1 = t0 = now();
	for (;;) {
		/* the clock every 64 blocks, as in the single-core loop */
		for (int i = 0; i < 64; i++) {
			while (w - atomic_load_explicit(&p.cons,
							memory_order_acquire) >
			       span - block)
				usmc_tp_shm_relax();
			memcpy(p.ring + w % span, src, block);
			w += block;
			atomic_store_explicit(&p.prod, w, memory_order_release);
		}
		t1 = now();
		if (warm && t1 - t0 >= *secs / 10) {
			warm = 0;
			t0 = t1;
			c0 = atomic_load_explicit(&p.cons,
						  memory_order_acquire);
		} else if (!warm && t1 - t0 >= *secs) {
			break;
		}
	}
	*bps = (double)(atomic_load_explicit(&p.cons, memory_order_acquire) -
			c0) /
	       (t1 - t0);
	*secs = t1 - t0;
	atomic_store_explicit(&p.stop, 1, memory_order_relaxed);
	pthread_join(th, NULL);
	free(src);
	free(p.ring);
	free(p.out);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"block", required_argument, NULL, 'b'},
		{"span", required_argument, NULL, 's'},
		{"time", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"pipe", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	size_t block = 64 << 10, span = 1 << 20, off = 0;
	double secs = 1, t0, t1;
	uint64_t bytes = 0;
	unsigned char *src, *dst, sum = 0;
	int json = 0, pipe_mode = 0, cpus[2], c;
	char *end;

	argv[0] = (char *)"usmc-memcpy"; /* getopt's messages name the tool */
	while ((c = getopt_long(argc, argv, "b:s:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			block = size_opt("--block", optarg);
			break;
		case 's':
			span = size_opt("--span", optarg);
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (end == optarg || *end ||
			    !(secs >= 0.05 && secs <= 600))
				usmc_tool_usage_error("usmc-memcpy",
						      "bad --time '%s' (want "
						      "0.05 to 600 seconds)",
						      optarg);
			break;
		case 'j':
			json = 1;
			break;
		case 'P':
			pipe_mode = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			usmc_tool_version("usmc-memcpy");
			return 0;
		default:
			usmc_tool_try("usmc-memcpy");
		}
	}
	if (optind != argc)
		usmc_tool_usage_error("usmc-memcpy", "unexpected argument '%s'",
				      argv[optind]);
	if (span < block || span % block)
		usmc_tool_usage_error("usmc-memcpy",
				      "the span (%zu) must be a multiple of "
				      "the block (%zu)",
				      span, block);
	if (pipe_mode && span < 2 * block)
		usmc_tool_usage_error("usmc-memcpy",
				      "--pipe: the span (%zu) must hold two "
				      "blocks (%zu)",
				      span, block);
	if (pipe_mode) {
		double bps;

		if (run_pipe(block, span, &secs, cpus, &bps))
			return 1;
		if (json)
			printf("{\"mode\":\"pipe\",\"cpus\":[%d,%d],"
			       "\"block\":%zu,\"span\":%zu,\"seconds\":%.6f,"
			       "\"gbytes_per_s\":%.3f,\"gbps\":%.3f}\n",
			       cpus[0], cpus[1], block, span, secs, bps / 1e9,
			       bps * 8 / 1e9);
		else
			printf("mode: pipe\ncpus: %d,%d\nblock: %zu\nspan: "
			       "%zu\nseconds: %.6f\nGB/s: %.3f\nGbit/s: "
			       "%.3f\n",
			       cpus[0], cpus[1], block, span, secs, bps / 1e9,
			       bps * 8 / 1e9);
		return 0;
	}
	src = malloc(block);
	dst = malloc(span);
	if (!src || !dst) {
		fprintf(stderr, "usmc-memcpy: out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < block; i++)
		src[i] = (unsigned char)(i * 131 + 7);
	/* Fault the ring in first: page faults are not the copy's cost. Then
	 * copy untimed for a tenth of the time: the first copies of a cold
	 * core run at half speed (clock ramp-up, caches). */
	memset(dst, 0, span);
	t0 = now();
	do {
		memcpy(dst + off, src, block);
		off = off + block == span ? 0 : off + block;
	} while (now() - t0 < secs / 10);
	t0 = now();
	do {
		/* Check the clock every 64 copies: a call per copy would
		 * show in small blocks. */
		for (int i = 0; i < 64; i++) {
			memcpy(dst + off, src, block);
			off += block;
			if (off == span)
				off = 0;
		}
		bytes += (uint64_t)block * 64;
		t1 = now();
	} while (t1 - t0 < secs);
	/* Read the destination so the copies cannot be dropped. */
	for (size_t i = 0; i < span; i += 4096)
		sum ^= dst[i];
	double gbs = (double)bytes / (t1 - t0) / 1e9;
	if (json)
		printf("{\"mode\":\"memcpy\",\"block\":%zu,\"span\":%zu,"
		       "\"bytes\":%llu,\"seconds\":"
		       "%.6f,"
		       "\"gbytes_per_s\":%.3f,\"gbps\":%.3f,\"check\":%u}\n",
		       block, span, (unsigned long long)bytes, t1 - t0, gbs,
		       gbs * 8, sum);
	else
		printf("block: %zu\nspan: %zu\nbytes: %llu\nseconds: "
		       "%.6f\nGB/s: %.3f\n"
		       "Gbit/s: %.3f\n",
		       block, span, (unsigned long long)bytes, t1 - t0, gbs,
		       gbs * 8);
	free(src);
	free(dst);
	return 0;
}
