/* SPDX-License-Identifier: MIT */
/*
 * The shm endpoint (transport/shm/): what it parses from a peer. Each
 * input is one record sent on a fresh connection to a live device's
 * endpoint; the device serves it through poll_cq. The owner must grant a
 * DMB exactly when the record is a well-formed ATTACH from this host with
 * the live, unspent token, and otherwise refuse or close; it must never
 * crash, leak an fd, or hand over memory for anything else.
 *
 * To reach the grant, the input is steered by its first byte: bit 0 puts
 * a valid magic and version, bit 1 the live token, bit 2 this host's gid
 * into the record (the rest of the input) when it is long enough.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "shm_int.h"
#include "usmc_tp_shm.h"
#include "usmc_transport.h"

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static usmc_tp *tp;
static usmc_tp_dmb *dmb;
static uint64_t host_gid;

static void teardown(void)
{
	usmc_tp_shm_stats st;

	usmc_tp_shm_get_stats(tp, &st);
	fprintf(stderr, "fuzz_shm: %llu grants, %llu refused, %llu malformed\n",
		(unsigned long long)st.grants, (unsigned long long)st.refused,
		(unsigned long long)st.bad_msgs);
	usmc_tp_close(tp); /* unlinks the endpoint */
}

static void setup(void)
{
	usmc_tp_config cfg;
	usmc_port_attr pa;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.options = "spin_us=0";
	rc = usmc_tp_open("shm", &cfg, &tp);
	if (rc) {
		fprintf(stderr, "SKIP: no shm device here (%s)\n",
			usmc_strerror(rc));
		exit(77);
	}
	atexit(teardown);
	CHECK(!usmc_tp_register_dmb(tp, 4096, NULL, &dmb));
	usmc_tp_query_port(tp, &pa);
	for (int i = 0; i < 8; i++)
		host_gid = host_gid << 8 | pa.gid[i];
}

static void serve(void)
{
	usmc_wc wc[4];

	for (int i = 0; i < 3; i++)
		CHECK(usmc_tp_poll_cq(tp, wc, 4) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t rec[256], rsp[64];
	union {
		char b[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} cb;
	usmc_tp_shm_stats before, after;
	struct sockaddr_un sa;
	usmc_shm_msg m, g;
	struct iovec iov;
	struct msghdr mh;
	size_t len;
	int fd, expect, granted = 0;
	ssize_t n;

	if (!tp)
		setup();
	if (!size)
		return 0;
	len = size - 1 < sizeof(rec) ? size - 1 : sizeof(rec);
	memcpy(rec, data + 1, len);
	if (len >= USMC_SHM_MSG_LEN) {
		uint32_t magic = USMC_SHM_MAGIC;

		if (data[0] & 1) {
			memcpy(rec, &magic, 4);
			rec[4] = USMC_SHM_VERSION;
		}
		if (data[0] & 2)
			memcpy(rec + 16, &dmb->token, 8);
		if (data[0] & 4)
			memcpy(rec + 32, &host_gid, 8);
	}
	expect = !usmc_shm_msg_decode(rec, len, &m) &&
		 m.type == USMC_SHM_ATTACH && m.gid == host_gid &&
		 m.token == dmb->token;
	usmc_tp_shm_get_stats(tp, &before);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s",
		 usmc_tp_shm_endpoint(tp));
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	CHECK(!connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
	CHECK(send(fd, rec, len, MSG_NOSIGNAL) == (ssize_t)len);
	serve();
	/* what came back: at most one record, a GRANT */
	for (;;) {
		struct cmsghdr *c;
		int nfds = 0;

		memset(&mh, 0, sizeof(mh));
		iov.iov_base = rsp;
		iov.iov_len = sizeof(rsp);
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof(cb.b);
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n <= 0)
			break;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			for (size_t i = 0;
			     i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			     i++) {
				int x;

				memcpy(&x, CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
				close(x);
				nfds++;
			}
		CHECK(!usmc_shm_msg_decode(rsp, (size_t)n, &g));
		CHECK(g.type == USMC_SHM_GRANT && g.nfds == nfds);
		if (g.status == USMC_SHM_OK) {
			CHECK(expect && !granted);
			CHECK(g.token == dmb->token && g.len == dmb->len &&
			      nfds == USMC_SHM_FDS_FIRST);
			granted = 1;
		} else {
			CHECK(g.status == USMC_SHM_REFUSED && nfds == 0);
		}
	}
	CHECK(granted == expect);
	close(fd);
	serve(); /* the HUP: the device closes its end */
	usmc_tp_shm_get_stats(tp, &after);
	CHECK(after.grants == before.grants + (uint64_t)granted);
	if (granted) {
		/* spent: a fresh DMB for the next input */
		usmc_tp_unregister_dmb(dmb);
		CHECK(!usmc_tp_register_dmb(tp, 4096, NULL, &dmb));
	}
	return 0;
}
