/* SPDX-License-Identifier: MIT */
/*
 * CUnit glue shared by all test executables: asserts that print both values
 * (CU_ASSERT_EQUAL does not), hex-vector loading, and a main() helper so that
 * CUnit stays confined to this header.
 */
#ifndef USMC_TEST_H
#define USMC_TEST_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USMC_ASSERT_EQ(a, b)                                                  \
	do {                                                                  \
		long long usmc_a_ = (long long)(a), usmc_b_ = (long long)(b); \
		if (usmc_a_ != usmc_b_)                                       \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", \
				__FILE__, __LINE__, #a, usmc_a_, usmc_b_);    \
		CU_ASSERT_EQUAL(usmc_a_, usmc_b_);                            \
	} while (0)

#define USMC_ASSERT_EQ_FATAL(a, b)                                            \
	do {                                                                  \
		long long usmc_a_ = (long long)(a), usmc_b_ = (long long)(b); \
		if (usmc_a_ != usmc_b_)                                       \
			fprintf(stderr, "%s:%d: %s == %lld, expected %lld\n", \
				__FILE__, __LINE__, #a, usmc_a_, usmc_b_);    \
		CU_ASSERT_EQUAL_FATAL(usmc_a_, usmc_b_);                      \
	} while (0)

#define USMC_ASSERT_MEM_EQ(a, b, n)                                    \
	do {                                                           \
		int usmc_c_ = memcmp((a), (b), (n));                   \
		if (usmc_c_)                                           \
			fprintf(stderr, "%s:%d: %s differs from %s\n", \
				__FILE__, __LINE__, #a, #b);           \
		CU_ASSERT_EQUAL(usmc_c_, 0);                           \
	} while (0)

/* usmc_test_hex decodes |hex| (whitespace ignored) into |out|; returns the
 * number of bytes, or -1 on a bad digit or overflow. */
static inline int usmc_test_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex; hex++) {
		int v;

		if (isspace((unsigned char)*hex) || *hex == ':')
			continue;
		if (!isxdigit((unsigned char)*hex))
			return -1;
		v = isdigit((unsigned char)*hex) ? *hex - '0'
						 : (tolower(*hex) - 'a' + 10);
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (int)n : -1;
}

/* A message captured from a real Linux exchange: which capture it came
 * from, its frame number, its sender and its bytes. */
typedef struct usmc_test_vec {
	int cap;
	int frame;
	char src[16]; /* sender's IPv4 address */
	uint8_t bytes[128];
	int len;
} usmc_test_vec;

/* usmc_test_load_vecs reads every "frame hex source" line of
 * $USMC_VECTORS/<kind>/<capture>.txt for each of |captures| into |vecs|;
 * returns the number read, or -1 (with the reason on stderr). */
static inline int usmc_test_load_vecs(const char *kind,
				      const char *const *captures,
				      size_t ncaptures, usmc_test_vec *vecs,
				      size_t cap)
{
	const char *dir = getenv("USMC_VECTORS");
	size_t n = 0;

	if (!dir) {
		fprintf(stderr, "USMC_VECTORS is not set\n");
		return -1;
	}
	for (size_t c = 0; c < ncaptures; c++) {
		char path[1024], line[1024], hex[1024];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s/%s.txt", dir, kind,
			 captures[c]);
		f = fopen(path, "r");
		if (!f) {
			perror(path);
			return -1;
		}
		while (n < cap && fgets(line, sizeof(line), f)) {
			usmc_test_vec *v = &vecs[n];

			if (sscanf(line, "%d %1023s %15s", &v->frame, hex,
				   v->src) != 3)
				break;
			v->cap = (int)c;
			v->len = usmc_test_hex(hex, v->bytes, sizeof(v->bytes));
			n++;
		}
		fclose(f);
	}
	return (int)n;
}

/* usmc_test_find_vec returns frame |frame| of capture |cap|, or NULL. */
static inline const usmc_test_vec *
usmc_test_find_vec(const usmc_test_vec *vecs, size_t n, int cap, int frame)
{
	for (size_t i = 0; i < n; i++)
		if (vecs[i].cap == cap && vecs[i].frame == frame)
			return &vecs[i];
	return NULL;
}

/* How many lines of the file at |path| contain |needle|; -1 if it cannot
 * be read. */
static inline int usmc_test_count_lines(const char *path, const char *needle)
{
	char line[1024];
	FILE *f = fopen(path, "re");
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/* The directory usmc_test_stat_dir made, and the process that removes it. */
static inline char *usmc_test_stat_dir_path(pid_t **owner)
{
	static char dir[64];
	static pid_t pid;

	*owner = &pid;
	return dir;
}

static inline void usmc_test_stat_dir_rm(void)
{
	pid_t *owner;
	char *dir = usmc_test_stat_dir_path(&owner);

	if (*owner != getpid())
		return; /* a forked child's exit */
	/* a runtime thread may write a table while we empty it: retry */
	for (int round = 0; round < 100; round++) {
		DIR *d = opendir(dir);
		struct dirent *de;

		if (!d)
			return;
		while ((de = readdir(d)) != NULL) {
			char path[512];

			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		closedir(d);
		if (!rmdir(dir) || errno == ENOENT)
			return;
	}
}

/* usmc_test_stat_dir points USMC_STAT_DIR (docs/stat.md) at a directory
 * of this test's own, removed at exit with whatever its processes left
 * there (a forked child that _exit()s or is killed leaves its usmc-stat
 * table): the runtime's tables stay out of the shared /dev/shm. Call it
 * first in main(), before any fork or socket. */
static inline void usmc_test_stat_dir(void)
{
	pid_t *owner;
	char *dir = usmc_test_stat_dir_path(&owner);

	snprintf(dir, 64, "/tmp/usmc-test-stat.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("usmc_test_stat_dir: mkdtemp");
		setenv("USMC_STAT_DIR", "", 1); /* off rather than /dev/shm */
		return;
	}
	*owner = getpid();
	setenv("USMC_STAT_DIR", dir, 1);
	atexit(usmc_test_stat_dir_rm);
}

typedef struct usmc_test_suite {
	const char *name;
	CU_TestInfo *tests;
} usmc_test_suite;

/* The case the machine could not run (the last one if several); set by
 * usmc_test_skip. */
static inline const char **usmc_test_skipped(void)
{
	static const char *why;

	return &why;
}

/* usmc_test_skip: the calling case cannot run on this machine (|why| names
 * what is missing). CUnit would count its early return as a pass, so the
 * whole binary then exits 77 (ctest: Skipped) unless another case failed;
 * the other cases still run. */
static inline void usmc_test_skip(const char *why)
{
	fprintf(stderr, "  [SKIP: %s]\n", why);
	*usmc_test_skipped() = why;
}

/* usmc_test_main registers |suites| (terminated by a NULL name), runs them
 * and returns 1 if any assertion failed, 77 if a case was skipped
 * (usmc_test_skip), else 0. */
static inline int usmc_test_main(const usmc_test_suite *suites)
{
	unsigned int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (const usmc_test_suite *s = suites; s->name; s++) {
		CU_pSuite suite = CU_add_suite(s->name, NULL, NULL);

		for (CU_TestInfo *t = s->tests; t->pName; t++)
			CU_add_test(suite, t->pName, t->pTestFunc);
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	if (failed)
		return 1;
	if (*usmc_test_skipped()) {
		fprintf(stderr, "SKIP (exit 77): %s\n", *usmc_test_skipped());
		return 77;
	}
	return 0;
}

#endif /* USMC_TEST_H */
