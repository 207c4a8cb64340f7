/* SPDX-License-Identifier: MIT */
/*
 * Writes an SMC-D handshake made by two cores (client and server with ISM
 * devices on one host, the harness of usmc_smcd_harness.h) as text2pcap
 * input on stdout: the Proposal and Confirm outbound, the Accept inbound;
 * then, on stderr, the values the core holds (the DMB tokens through
 * usmc_conn_get_peer_dmb), for test_smcd_clc_tshark.sh to find in
 * tshark's decode.
 */
#include <stdio.h>

#define SMCD_H_CHECK(c)                                      \
	do {                                                 \
		if (!(c)) {                                  \
			fprintf(stderr, "failed: %s\n", #c); \
			exit(1);                             \
		}                                            \
	} while (0)
#include "usmc_smcd_harness.h"

static void dump(char dir, usmc_conn *c)
{
	const uint8_t *d;
	size_t n;

	usmc_conn_clc_pending(c, &d, &n);
	SMCD_H_CHECK(n > 0);
	printf("%c\n", dir);
	for (size_t i = 0; i < n; i++) {
		if (i % 16 == 0)
			printf("%s%06zx", i ? "\n" : "", i);
		printf(" %02x", d[i]);
	}
	printf("\n");
}

int main(void)
{
	side a, b;
	usmc_conn *ca, *cb;
	usmc_peer_dmb pa, pb;

	side_init(&a, 0x1111222233334444ull, 0xaaaa0000aaaa0001ull, 0, 65536);
	side_init(&b, 0x1111222233334444ull, 0xbbbb0000bbbb0002ull, 0, 65536);
	ca = conn_new(&a, USMC_ROLE_CLIENT);
	cb = conn_new(&b, USMC_ROLE_SERVER);
	dump('O', ca);
	clc_move(ca, cb, NULL);
	dump('I', cb);
	clc_move(cb, ca, NULL);
	dump('O', ca);
	clc_move(ca, cb, NULL);
	SMCD_H_CHECK(usmc_conn_get_peer_dmb(ca, &pa) == 0);
	SMCD_H_CHECK(usmc_conn_get_peer_dmb(cb, &pb) == 0);
	fprintf(stderr, "server_token 0x%016llx\nclient_token 0x%016llx\n",
		(unsigned long long)pa.token, (unsigned long long)pb.token);
	side_fini(&a);
	side_fini(&b);
	return 0;
}
