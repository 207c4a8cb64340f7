/* SPDX-License-Identifier: MIT */
/*
 * Runs a libFuzzer target without libFuzzer, so every fuzz target also runs
 * in the normal test suite (and under ASan/valgrind): each seed file in the
 * given directory, then a fixed number of seeded mutations of each seed
 * (bit flips, truncations, byte overwrites). Deterministic: same seed, same
 * inputs.
 * Usage: fuzz_X CORPUS_DIR [ITERATIONS]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return 0;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void mutate_and_run(const uint8_t *seed, size_t len, long iterations)
{
	uint8_t *buf = malloc(len + 64);

	for (long i = 0; i < iterations; i++) {
		size_t n = len;
		uint8_t *copy;

		memcpy(buf, seed, len);
		switch (rng() % 4) {
		case 0: /* truncate */
			n = len ? (size_t)(rng() % len) : 0;
			break;
		case 1: /* flip bits */
			for (int k = 0; k < 4 && len; k++)
				buf[rng() % len] ^=
					(uint8_t)(1u << (rng() % 8));
			break;
		case 2: /* overwrite bytes with extreme values */
			for (int k = 0; k < 3 && len; k++)
				buf[rng() % len] = (rng() & 1) ? 0xff : 0x00;
			break;
		default: /* extend with random bytes */
			for (int k = 0; k < 16; k++)
				buf[n++] = (uint8_t)rng();
			break;
		}
		/* An exact-size heap copy so ASan sees every overread. */
		copy = malloc(n ? n : 1);
		memcpy(copy, buf, n);
		LLVMFuzzerTestOneInput(copy, n);
		free(copy);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	static uint8_t seed[65536];
	long iterations = argc > 2 ? atol(argv[2]) : 2000;
	int nseeds = 0;
	DIR *d;
	struct dirent *e;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
		return 2;
	}
	d = opendir(argv[1]);
	if (!d) {
		perror(argv[1]);
		return 1;
	}
	while ((e = readdir(d))) {
		char path[4096];
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
		n = read_file(path, seed, sizeof(seed));
		LLVMFuzzerTestOneInput(seed, n);
		mutate_and_run(seed, n, iterations);
		nseeds++;
	}
	closedir(d);
	printf("%s: %d seeds, %ld mutations each, no crash\n", argv[0], nseeds,
	       iterations);
	return nseeds ? 0 : 1;
}
