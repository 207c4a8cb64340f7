/* usmc-memcpy: single-core memcpy bandwidth. A stream through shared
 * memory is a copy into the peer's buffer and a copy out of it, so one
 * core's memcpy is its physical ceiling (usmc-bench's "shm stream as a
 * fraction of memcpy"). The manual is --help. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "usmc_tool.h"

static void usage(FILE *f)
{
	fputs("NAME\n"
	      "    usmc-memcpy - single-core memcpy bandwidth\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    usmc-memcpy [-b BLOCK] [-s SPAN] [-t SECONDS] [--json]\n"
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
	      "OPTIONS\n"
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
	      "    bytes per second) and 'Gbit/s:'.\n"
	      "\n"
	      "EXIT STATUS\n"
	      "    0 success; 1 out of memory; 2 usage error.\n",
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"block", required_argument, NULL, 'b'},
		{"span", required_argument, NULL, 's'},
		{"time", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	size_t block = 64 << 10, span = 1 << 20, off = 0;
	double secs = 1, t0, t1;
	uint64_t bytes = 0;
	unsigned char *src, *dst, sum = 0;
	int json = 0, c;
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
		printf("{\"block\":%zu,\"span\":%zu,\"bytes\":%llu,\"seconds\":"
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
