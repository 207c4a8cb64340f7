/* SPDX-License-Identifier: MIT */
/*
 * CDC codec and cursor arithmetic tests. Golden vectors: every CDC message
 * of the Linux 6.1 captures (tests/vectors/cdc/, extracted by
 * tests/vectors/llc/extract.sh); the expected fields below were taken from
 * Wireshark's decode of the same frames (the .txt beside each capture), not
 * from this codec.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_cdc.h"
#include "usmc_test.h"

static const char *const captures[] = {
	"smcr-a-session",
	"smcr-b-lgr-reuse",
	"smcr-d-linkfail-eth0",
};

#define NCAPTURES (sizeof(captures) / sizeof(captures[0]))

struct cdc_expect {
	int cap;
	int frame;
	uint16_t seqno;
	uint32_t token;
	uint16_t prod_wrap;
	uint32_t prod_count;
	uint16_t cons_wrap;
	uint32_t cons_count;
	uint8_t prod_flags;
	uint8_t conn_state;
};

/* From Wireshark (tshark -V): Sequence Number, Alert Token, Producer window
 * wrap, Peer Producer Cursor, Consumer window wrap, Peer Consumer Cursor,
 * read/write status flags, Peer Connection State Flags. */
static const struct cdc_expect expect[] = {
	{0, 23, 0x0001, 0x00000001, 0x0000, 0x00000005, 0x0000, 0x00000000,
	 0x00, 0x00},
	{0, 26, 0x0001, 0x00000001, 0x0000, 0x00000005, 0x0000, 0x00000005,
	 0x00, 0x00},
	{0, 28, 0x0001, 0x00000001, 0x0000, 0x00000005, 0x0000, 0x00000005,
	 0x00, 0x00},
	{0, 34, 0x0002, 0x00000001, 0x0000, 0x0000000a, 0x0000, 0x00000005,
	 0x00, 0x00},
	{0, 38, 0x0002, 0x00000001, 0x0000, 0x0000000a, 0x0000, 0x0000000a,
	 0x00, 0x00},
	{0, 42, 0x0003, 0x00000001, 0x0000, 0x0000000f, 0x0000, 0x0000000a,
	 0x00, 0x00},
	{0, 46, 0x0003, 0x00000001, 0x0000, 0x0000000f, 0x0000, 0x0000000f,
	 0x00, 0x00},
	{0, 65, 0x0004, 0x00000001, 0x0000, 0x0000400f, 0x0000, 0x0000000f,
	 0x00, 0x00},
	{0, 118, 0x0005, 0x00000001, 0x0001, 0x0000000f, 0x0000, 0x0000000f,
	 0x80, 0x00},
	{0, 121, 0x0004, 0x00000001, 0x0000, 0x0000000f, 0x0001, 0x0000000f,
	 0x00, 0x00},
	{0, 188, 0x0006, 0x00000001, 0x0001, 0x0000400f, 0x0000, 0x0000000f,
	 0x00, 0x00},
	{0, 207, 0x0005, 0x00000001, 0x0001, 0x0000000f, 0x0001, 0x0000000f,
	 0x80, 0x00},
	{0, 231, 0x0007, 0x00000001, 0x0001, 0x0000900f, 0x0000, 0x0000000f,
	 0x00, 0x00},
	{0, 234, 0x0006, 0x00000001, 0x0001, 0x0000000f, 0x0001, 0x0000900f,
	 0x80, 0x00},
	{0, 235, 0x0008, 0x00000001, 0x0001, 0x0000900f, 0x0001, 0x0000000f,
	 0x00, 0x00},
	{0, 273, 0x0007, 0x00000001, 0x0001, 0x0000900f, 0x0001, 0x0000900f,
	 0x00, 0x00},
	{0, 277, 0x0009, 0x00000001, 0x0001, 0x0000900f, 0x0001, 0x0000900f,
	 0x00, 0x00},
	{0, 279, 0x000a, 0x00000001, 0x0001, 0x0000900f, 0x0001, 0x0000900f,
	 0x00, 0x80},
	{0, 282, 0x0008, 0x00000001, 0x0001, 0x0000900f, 0x0001, 0x0000900f,
	 0x00, 0x40},
	{0, 284, 0x000b, 0x00000001, 0x0001, 0x0000900f, 0x0001, 0x0000900f,
	 0x00, 0xc0},
	{1, 19, 0x0001, 0x00000002, 0x0000, 0x00000005, 0x0000, 0x00000000,
	 0x00, 0x00},
	{1, 24, 0x0001, 0x00000002, 0x0000, 0x00000005, 0x0000, 0x00000005,
	 0x00, 0x00},
	{1, 28, 0x0002, 0x00000002, 0x0000, 0x0000000a, 0x0000, 0x00000005,
	 0x00, 0x00},
	{1, 32, 0x0002, 0x00000002, 0x0000, 0x0000000a, 0x0000, 0x0000000a,
	 0x00, 0x00},
	{1, 36, 0x0003, 0x00000002, 0x0000, 0x0000000f, 0x0000, 0x0000000a,
	 0x00, 0x00},
	{1, 40, 0x0003, 0x00000002, 0x0000, 0x0000000f, 0x0000, 0x0000000f,
	 0x00, 0x00},
	{1, 43, 0x0004, 0x00000002, 0x0000, 0x0000000f, 0x0000, 0x0000000f,
	 0x00, 0x80},
	{1, 46, 0x0004, 0x00000002, 0x0000, 0x0000000f, 0x0000, 0x0000000f,
	 0x00, 0x40},
	{1, 48, 0x0005, 0x00000002, 0x0000, 0x0000000f, 0x0000, 0x0000000f,
	 0x00, 0xc0},
	{2, 21, 0x0001, 0x00000001, 0x0000, 0x000003e8, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 22, 0x0002, 0x00000001, 0x0000, 0x000003e8, 0x0000, 0x00000000,
	 0x00, 0x80},
	{2, 28, 0x0001, 0x00000001, 0x0000, 0x00000008, 0x0000, 0x000003e8,
	 0x00, 0x00},
	{2, 29, 0x0002, 0x00000001, 0x0000, 0x00000008, 0x0000, 0x000003e8,
	 0x00, 0x40},
	{2, 34, 0x0003, 0x00000001, 0x0000, 0x000003e8, 0x0000, 0x00000008,
	 0x00, 0xc0},
	{2, 88, 0x0001, 0x00000002, 0x0000, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 139, 0x0002, 0x00000002, 0x0001, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 144, 0x0001, 0x00000002, 0x0000, 0x00000000, 0x0001, 0x00000000,
	 0x00, 0x00},
	{2, 145, 0x0001, 0x00000002, 0x0000, 0x00000000, 0x0001, 0x00000000,
	 0x00, 0x00},
	{2, 212, 0x0003, 0x00000002, 0x0002, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 215, 0x0002, 0x00000002, 0x0000, 0x00000000, 0x0002, 0x00000000,
	 0x00, 0x00},
	{2, 234, 0x0004, 0x00000002, 0x0002, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 285, 0x0005, 0x00000002, 0x0003, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 287, 0x0003, 0x00000002, 0x0000, 0x00000000, 0x0003, 0x00000000,
	 0x00, 0x00},
	{2, 288, 0x0003, 0x00000002, 0x0000, 0x00000000, 0x0003, 0x00000000,
	 0x00, 0x00},
	{2, 308, 0x0006, 0x00000002, 0x0003, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 358, 0x0007, 0x00000002, 0x0004, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 361, 0x0004, 0x00000002, 0x0000, 0x00000000, 0x0004, 0x00000000,
	 0x00, 0x00},
	{2, 379, 0x0008, 0x00000002, 0x0004, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 430, 0x0009, 0x00000002, 0x0005, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 433, 0x0005, 0x00000002, 0x0000, 0x00000000, 0x0005, 0x00000000,
	 0x00, 0x00},
	{2, 434, 0x0005, 0x00000002, 0x0000, 0x00000000, 0x0005, 0x00000000,
	 0x00, 0x00},
	{2, 454, 0x000a, 0x00000002, 0x0005, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 505, 0x000b, 0x00000002, 0x0006, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 507, 0x0006, 0x00000002, 0x0000, 0x00000000, 0x0006, 0x00000000,
	 0x00, 0x00},
	{2, 526, 0x000c, 0x00000002, 0x0006, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 577, 0x000d, 0x00000002, 0x0007, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 579, 0x0007, 0x00000002, 0x0000, 0x00000000, 0x0007, 0x00000000,
	 0x00, 0x00},
	{2, 580, 0x0007, 0x00000002, 0x0000, 0x00000000, 0x0007, 0x00000000,
	 0x00, 0x00},
	{2, 599, 0x000e, 0x00000002, 0x0007, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 651, 0x000f, 0x00000002, 0x0008, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 653, 0x0008, 0x00000002, 0x0000, 0x00000000, 0x0008, 0x00000000,
	 0x00, 0x00},
	{2, 672, 0x0010, 0x00000002, 0x0008, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 723, 0x0011, 0x00000002, 0x0009, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 725, 0x0009, 0x00000002, 0x0000, 0x00000000, 0x0009, 0x00000000,
	 0x00, 0x00},
	{2, 726, 0x0009, 0x00000002, 0x0000, 0x00000000, 0x0009, 0x00000000,
	 0x00, 0x00},
	{2, 745, 0x0012, 0x00000002, 0x0009, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 797, 0x0013, 0x00000002, 0x000a, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 799, 0x000a, 0x00000002, 0x0000, 0x00000000, 0x000a, 0x00000000,
	 0x00, 0x00},
	{2, 817, 0x0014, 0x00000002, 0x000a, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 868, 0x0015, 0x00000002, 0x000b, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 871, 0x000b, 0x00000002, 0x0000, 0x00000000, 0x000b, 0x00000000,
	 0x00, 0x00},
	{2, 872, 0x000b, 0x00000002, 0x0000, 0x00000000, 0x000b, 0x00000000,
	 0x00, 0x00},
	{2, 891, 0x0016, 0x00000002, 0x000b, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 942, 0x0017, 0x00000002, 0x000c, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 945, 0x000c, 0x00000002, 0x0000, 0x00000000, 0x000c, 0x00000000,
	 0x00, 0x00},
	{2, 963, 0x0018, 0x00000002, 0x000c, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1014, 0x0019, 0x00000002, 0x000d, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1017, 0x000d, 0x00000002, 0x0000, 0x00000000, 0x000d, 0x00000000,
	 0x00, 0x00},
	{2, 1018, 0x000d, 0x00000002, 0x0000, 0x00000000, 0x000d, 0x00000000,
	 0x00, 0x00},
	{2, 1037, 0x001a, 0x00000002, 0x000d, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1088, 0x001b, 0x00000002, 0x000e, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1091, 0x000e, 0x00000002, 0x0000, 0x00000000, 0x000e, 0x00000000,
	 0x00, 0x00},
	{2, 1110, 0x001c, 0x00000002, 0x000e, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1160, 0x001d, 0x00000002, 0x000f, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1163, 0x000f, 0x00000002, 0x0000, 0x00000000, 0x000f, 0x00000000,
	 0x00, 0x00},
	{2, 1182, 0x001e, 0x00000002, 0x000f, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1232, 0x001f, 0x00000002, 0x0010, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1235, 0x0010, 0x00000002, 0x0000, 0x00000000, 0x0010, 0x00000000,
	 0x00, 0x00},
	{2, 1253, 0x0020, 0x00000002, 0x0010, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1304, 0x0021, 0x00000002, 0x0011, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1307, 0x0011, 0x00000002, 0x0000, 0x00000000, 0x0011, 0x00000000,
	 0x00, 0x00},
	{2, 1326, 0x0022, 0x00000002, 0x0011, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1377, 0x0023, 0x00000002, 0x0012, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1379, 0x0012, 0x00000002, 0x0000, 0x00000000, 0x0012, 0x00000000,
	 0x00, 0x00},
	{2, 1397, 0x0024, 0x00000002, 0x0012, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1448, 0x0025, 0x00000002, 0x0013, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1451, 0x0013, 0x00000002, 0x0000, 0x00000000, 0x0013, 0x00000000,
	 0x00, 0x00},
	{2, 1469, 0x0026, 0x00000002, 0x0013, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1520, 0x0027, 0x00000002, 0x0014, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1523, 0x0014, 0x00000002, 0x0000, 0x00000000, 0x0014, 0x00000000,
	 0x00, 0x00},
	{2, 1542, 0x0028, 0x00000002, 0x0014, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1592, 0x0029, 0x00000002, 0x0015, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1595, 0x0015, 0x00000002, 0x0000, 0x00000000, 0x0015, 0x00000000,
	 0x00, 0x00},
	{2, 1613, 0x002a, 0x00000002, 0x0015, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1664, 0x002b, 0x00000002, 0x0016, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1667, 0x0016, 0x00000002, 0x0000, 0x00000000, 0x0016, 0x00000000,
	 0x00, 0x00},
	{2, 1685, 0x002c, 0x00000002, 0x0016, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1736, 0x002d, 0x00000002, 0x0017, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1739, 0x0017, 0x00000002, 0x0000, 0x00000000, 0x0017, 0x00000000,
	 0x00, 0x00},
	{2, 1758, 0x002e, 0x00000002, 0x0017, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1808, 0x002f, 0x00000002, 0x0018, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1811, 0x0018, 0x00000002, 0x0000, 0x00000000, 0x0018, 0x00000000,
	 0x00, 0x00},
	{2, 1830, 0x0030, 0x00000002, 0x0018, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1880, 0x0031, 0x00000002, 0x0019, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1883, 0x0019, 0x00000002, 0x0000, 0x00000000, 0x0019, 0x00000000,
	 0x00, 0x00},
	{2, 1901, 0x0032, 0x00000002, 0x0019, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 1953, 0x0033, 0x00000002, 0x001a, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 1955, 0x001a, 0x00000002, 0x0000, 0x00000000, 0x001a, 0x00000000,
	 0x00, 0x00},
	{2, 1973, 0x0034, 0x00000002, 0x001a, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 2024, 0x0035, 0x00000002, 0x001b, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 2027, 0x001b, 0x00000002, 0x0000, 0x00000000, 0x001b, 0x00000000,
	 0x00, 0x00},
	{2, 2046, 0x0036, 0x00000002, 0x001b, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 2096, 0x0037, 0x00000002, 0x001c, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 2099, 0x001c, 0x00000002, 0x0000, 0x00000000, 0x001c, 0x00000000,
	 0x00, 0x00},
	{2, 2117, 0x0038, 0x00000002, 0x001c, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 2169, 0x0039, 0x00000002, 0x001d, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 2171, 0x001d, 0x00000002, 0x0000, 0x00000000, 0x001d, 0x00000000,
	 0x00, 0x00},
	{2, 2189, 0x003a, 0x00000002, 0x001d, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 2240, 0x003b, 0x00000002, 0x001e, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 2243, 0x001e, 0x00000002, 0x0000, 0x00000000, 0x001e, 0x00000000,
	 0x00, 0x00},
	{2, 2261, 0x003c, 0x00000002, 0x001e, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 2313, 0x003d, 0x00000002, 0x001f, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 2315, 0x001f, 0x00000002, 0x0000, 0x00000000, 0x001f, 0x00000000,
	 0x00, 0x00},
	{2, 2333, 0x003e, 0x00000002, 0x001f, 0x00004000, 0x0000, 0x00000000,
	 0x00, 0x00},
	{2, 2384, 0x003f, 0x00000002, 0x0020, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x00},
	{2, 2387, 0x0020, 0x00000002, 0x0000, 0x00000000, 0x0020, 0x00000000,
	 0x00, 0x00},
	{2, 2388, 0x0040, 0x00000002, 0x0020, 0x00000000, 0x0000, 0x00000000,
	 0x80, 0x80},
	{2, 2393, 0x0021, 0x00000002, 0x0000, 0x00000008, 0x0020, 0x00000000,
	 0x00, 0x00},
	{2, 2396, 0x0022, 0x00000002, 0x0000, 0x00000008, 0x0020, 0x00000000,
	 0x00, 0x40},
	{2, 2397, 0x0041, 0x00000002, 0x0020, 0x00000000, 0x0000, 0x00000008,
	 0x80, 0xc0},
};

#define NEXPECT (sizeof(expect) / sizeof(expect[0]))

static usmc_test_vec vecs[256];
static size_t nvecs;

/* Loads every "frame hex source" line of $USMC_VECTORS/cdc/<capture>.txt. */
static int load_vectors(void)
{
	int n;

	n = usmc_test_load_vecs("cdc", captures, NCAPTURES, vecs,
				sizeof(vecs) / sizeof(vecs[0]));
	if (n < 0)
		return -1;
	nvecs = (size_t)n;
	return 0;
}

static const usmc_test_vec *find_vec(int cap, int frame)
{
	return usmc_test_find_vec(vecs, nvecs, cap, frame);
}

/* Every captured CDC decodes to Wireshark's values and re-encodes to the
 * same 44 bytes; the table and the vector files cover the same frames. */
static void test_golden(void)
{
	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	USMC_ASSERT_EQ(nvecs, NEXPECT);
	USMC_ASSERT_EQ(NEXPECT, 140);
	for (size_t i = 0; i < NEXPECT; i++) {
		const struct cdc_expect *e = &expect[i];
		const usmc_test_vec *v = find_vec(e->cap, e->frame);
		usmc_cdc_msg m;
		uint8_t out[64];

		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		USMC_ASSERT_EQ(v->len, SMC_CDC_MSG_LEN);
		memset(&m, 0xa5, sizeof(m));
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, v->bytes, (size_t)v->len),
			       SMC_CDC_MSG_LEN);
		USMC_ASSERT_EQ(m.seqno, e->seqno);
		USMC_ASSERT_EQ(m.token, e->token);
		USMC_ASSERT_EQ(m.prod.wrap, e->prod_wrap);
		USMC_ASSERT_EQ(m.prod.count, e->prod_count);
		USMC_ASSERT_EQ(m.cons.wrap, e->cons_wrap);
		USMC_ASSERT_EQ(m.cons.count, e->cons_count);
		USMC_ASSERT_EQ(m.prod_flags, e->prod_flags);
		USMC_ASSERT_EQ(m.conn_state_flags, e->conn_state);
		/* the 64 KiB RMBs of these captures hold every cursor */
		USMC_ASSERT_EQ(usmc_cdc_curs_valid(&m.prod, 65536), 0);
		USMC_ASSERT_EQ(usmc_cdc_curs_valid(&m.cons, 65536), 0);

		memset(out, 0x5a, sizeof(out));
		USMC_ASSERT_EQ(usmc_cdc_encode(out, sizeof(out), &m),
			       SMC_CDC_MSG_LEN);
		USMC_ASSERT_MEM_EQ(out, v->bytes, SMC_CDC_MSG_LEN);
		/* nothing written past the message */
		USMC_ASSERT_EQ(out[SMC_CDC_MSG_LEN], 0x5a);
	}
}

/* Replays the a-session's CDCs per direction as a receiver would. The
 * README of the captures says the client sent three 5-byte messages and
 * 100 KiB, and the server echoed them: 15 + 102400 bytes each way, so
 * each side's producer cursor, and its consumer cursor (acking the
 * other's data), must add up to exactly that. */
static void test_session_replay(void)
{
	static const char *const hosts[] = {"10.9.0.1", "10.9.0.2"};
	/* CDCs per sender, as smcr-a-session.llc.txt lists them */
	static const int count[] = {9, 11};

	USMC_ASSERT_EQ_FATAL(load_vectors(), 0);
	for (size_t h = 0; h < 2; h++) {
		usmc_curs prod = {0, 0}, cons = {0, 0};
		const usmc_test_vec *first = NULL, *last = NULL;
		int64_t produced = 0, consumed = 0;
		uint16_t last_seq = 0;
		usmc_cdc_msg m;
		int n = 0;

		for (size_t i = 0; i < nvecs; i++) {
			usmc_curs old;

			if (vecs[i].cap != 0 || strcmp(vecs[i].src, hosts[h]))
				continue;
			USMC_ASSERT_EQ(usmc_cdc_decode(&m, vecs[i].bytes,
						       (size_t)vecs[i].len),
				       44);
			if (n++)
				CU_ASSERT(!usmc_cdc_seq_before(m.seqno,
							       last_seq));
			last_seq = m.seqno;
			old = prod;
			USMC_ASSERT_EQ(usmc_curs_update(&prod, &m.prod), 1);
			produced += usmc_curs_diff_large(65536, &old, &prod);
			old = cons;
			USMC_ASSERT_EQ(usmc_curs_update(&cons, &m.cons), 1);
			consumed += usmc_curs_diff_large(65536, &old, &cons);
			if (!first)
				first = &vecs[i];
			last = &vecs[i];
		}
		USMC_ASSERT_EQ(n, count[h]);
		USMC_ASSERT_EQ(produced, 15 + 102400);
		USMC_ASSERT_EQ(consumed, 15 + 102400);
		USMC_ASSERT_EQ(prod.wrap, 1);
		USMC_ASSERT_EQ(prod.count, 0x900f);
		USMC_ASSERT_EQ(cons.wrap, 1);
		USMC_ASSERT_EQ(cons.count, 0x900f);
		CU_ASSERT_PTR_NOT_NULL_FATAL(first);
		CU_ASSERT_PTR_NOT_NULL_FATAL(last);

		/* A late duplicate of the first CDC: its wrap-0 cursor would
		 * pass the cursor check (wrap 0 is taken as the rollover),
		 * so it is the seqno check that drops it. */
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, first->bytes, 44), 44);
		CU_ASSERT(usmc_cdc_seq_before(m.seqno, last_seq));
		/* The last CDC again: same seqno, not older; no bytes. */
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, last->bytes, 44), 44);
		CU_ASSERT(!usmc_cdc_seq_before(m.seqno, last_seq));
		{
			usmc_curs old = prod;

			USMC_ASSERT_EQ(usmc_curs_update(&prod, &m.prod), 1);
			USMC_ASSERT_EQ(usmc_curs_diff_large(65536, &old, &prod),
				       0);
		}
		/* An older cursor in the current wrap is ignored. */
		m.prod.count = 0x400f;
		USMC_ASSERT_EQ(usmc_curs_update(&prod, &m.prod), 0);
		USMC_ASSERT_EQ(prod.count, 0x900f);
	}
}

/* A CDC built byte by byte from the wire layout of the kernel's struct
 * smc_cdc_msg (net/smc/smc_cdc.h: 44 bytes on the wire). */
static void build_cdc(uint8_t *b)
{
	memset(b, 0, SMC_CDC_MSG_LEN);
	b[0] = 0xfe;
	b[1] = 44;
	b[2] = 0xbe; /* seqno 0xbeef */
	b[3] = 0xef;
	b[4] = 0x12; /* token 0x12345678 */
	b[5] = 0x34;
	b[6] = 0x56;
	b[7] = 0x78;
	b[10] = 0xff; /* prod wrap 0xfffe */
	b[11] = 0xfe;
	b[12] = 0x00; /* prod count 0x0007ffff */
	b[13] = 0x07;
	b[14] = 0xff;
	b[15] = 0xff;
	b[18] = 0x00; /* cons wrap 0x0001 */
	b[19] = 0x01;
	b[20] = 0x00; /* cons count 0x00012345 */
	b[21] = 0x01;
	b[22] = 0x23;
	b[23] = 0x45;
	b[24] = 0x80 | 0x10 | 0x08; /* write_blocked, upd_req, failover */
	b[25] = 0x80 | 0x20;	    /* done_writing, abort */
}

static void test_handbuilt(void)
{
	uint8_t b[SMC_CDC_MSG_LEN], out[SMC_CDC_MSG_LEN];
	usmc_cdc_msg m;

	build_cdc(b);
	USMC_ASSERT_EQ(usmc_cdc_decode(&m, b, sizeof(b)), 44);
	USMC_ASSERT_EQ(m.seqno, 0xbeef);
	USMC_ASSERT_EQ(m.token, 0x12345678);
	USMC_ASSERT_EQ(m.prod.wrap, 0xfffe);
	USMC_ASSERT_EQ(m.prod.count, 0x7ffff);
	USMC_ASSERT_EQ(m.cons.wrap, 1);
	USMC_ASSERT_EQ(m.cons.count, 0x12345);
	CU_ASSERT(m.prod_flags & USMC_CDC_WRITE_BLOCKED);
	CU_ASSERT(!(m.prod_flags & USMC_CDC_URG_DATA_PENDING));
	CU_ASSERT(!(m.prod_flags & USMC_CDC_URG_DATA_PRESENT));
	CU_ASSERT(m.prod_flags & USMC_CDC_CONS_CURS_UPD_REQ);
	CU_ASSERT(m.prod_flags & USMC_CDC_FAILOVER_VALIDATION);
	CU_ASSERT(m.conn_state_flags & USMC_CDC_PEER_DONE_WRITING);
	CU_ASSERT(!(m.conn_state_flags & USMC_CDC_PEER_CONN_CLOSED));
	CU_ASSERT(m.conn_state_flags & USMC_CDC_PEER_CONN_ABORT);
	/* 512 KiB RMBE holds count 0x7ffff, 256 KiB does not */
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&m.prod, 512 * 1024), 0);
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&m.prod, 256 * 1024),
		       USMC_ERR_BAD_OFFSET);
	USMC_ASSERT_EQ(usmc_cdc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, b, sizeof(b));

	/* A message longer than 44 bytes (a 48-byte receive slot) decodes
	 * the first 44. */
	{
		uint8_t big[48];

		memcpy(big, b, sizeof(b));
		memset(big + 44, 0xee, 4);
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, big, sizeof(big)), 44);
		USMC_ASSERT_EQ(m.token, 0x12345678);
	}
}

/* Reserved bytes are ignored on decode and zero on encode. */
static void test_reserved(void)
{
	uint8_t b[SMC_CDC_MSG_LEN], out[SMC_CDC_MSG_LEN], zero[SMC_CDC_MSG_LEN];
	usmc_cdc_msg m;

	build_cdc(b);
	memcpy(zero, b, sizeof(b));
	b[8] = b[9] = 0xff;   /* prod reserved */
	b[16] = b[17] = 0x11; /* cons reserved */
	memset(b + 26, 0x77, 18);
	USMC_ASSERT_EQ(usmc_cdc_decode(&m, b, sizeof(b)), 44);
	USMC_ASSERT_EQ(m.prod.wrap, 0xfffe);
	USMC_ASSERT_EQ(m.cons.wrap, 1);
	USMC_ASSERT_EQ(usmc_cdc_encode(out, sizeof(out), &m), 44);
	USMC_ASSERT_MEM_EQ(out, zero, sizeof(zero));
}

static void test_errors(void)
{
	uint8_t b[SMC_CDC_MSG_LEN], out[SMC_CDC_MSG_LEN];
	usmc_cdc_msg m;

	build_cdc(b);
	/* every truncation */
	for (size_t n = 0; n < SMC_CDC_MSG_LEN; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		memcpy(copy, b, n);
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, copy, n),
			       USMC_ERR_TRUNCATED);
		free(copy);
	}
	/* every other type byte */
	for (int t = 0; t < 256; t++) {
		if (t == 0xfe)
			continue;
		b[0] = (uint8_t)t;
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, b, sizeof(b)),
			       USMC_ERR_BAD_TYPE);
	}
	build_cdc(b);
	/* every other length byte */
	for (int l = 0; l < 256; l++) {
		if (l == 44)
			continue;
		b[1] = (uint8_t)l;
		USMC_ASSERT_EQ(usmc_cdc_decode(&m, b, sizeof(b)),
			       USMC_ERR_BAD_LENGTH);
	}
	build_cdc(b);
	memset(b + 4, 0, 4);
	USMC_ASSERT_EQ(usmc_cdc_decode(&m, b, sizeof(b)), USMC_ERR_BAD_VALUE);
	USMC_ASSERT_EQ(usmc_cdc_decode(NULL, b, sizeof(b)),
		       USMC_ERR_INVALID_ARGUMENT);

	build_cdc(b);
	USMC_ASSERT_EQ(usmc_cdc_decode(&m, b, sizeof(b)), 44);
	for (size_t cap = 0; cap < SMC_CDC_MSG_LEN; cap++)
		USMC_ASSERT_EQ(usmc_cdc_encode(out, cap, &m), USMC_ERR_NOBUF);
	m.token = 0;
	USMC_ASSERT_EQ(usmc_cdc_encode(out, sizeof(out), &m),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_cdc_encode(out, sizeof(out), NULL),
		       USMC_ERR_INVALID_ARGUMENT);
}

static usmc_curs C(uint16_t wrap, uint32_t count)
{
	usmc_curs c = {wrap, count};

	return c;
}

static void test_curs_add(void)
{
	const uint32_t size = 65536;
	usmc_curs c = C(0, 15);

	/* the a-session echo: 100 KiB after 15 bytes lands on (1, 0x900f) */
	usmc_curs_add(&c, size, 65536 - 15);
	USMC_ASSERT_EQ(c.wrap, 1);
	USMC_ASSERT_EQ(c.count, 0);
	usmc_curs_add(&c, size, 102400 - (65536 - 15));
	USMC_ASSERT_EQ(c.wrap, 1);
	USMC_ASSERT_EQ(c.count, 0x900f);
	/* landing exactly on the end wraps to count 0 */
	c = C(3, 65000);
	usmc_curs_add(&c, size, 536);
	USMC_ASSERT_EQ(c.wrap, 4);
	USMC_ASSERT_EQ(c.count, 0);
	/* one short of the end does not */
	c = C(3, 65000);
	usmc_curs_add(&c, size, 535);
	USMC_ASSERT_EQ(c.wrap, 3);
	USMC_ASSERT_EQ(c.count, 65535);
	/* a whole buffer: same count, next wrap */
	c = C(7, 1234);
	usmc_curs_add(&c, size, size);
	USMC_ASSERT_EQ(c.wrap, 8);
	USMC_ASSERT_EQ(c.count, 1234);
	/* 16-bit wrap rollover */
	c = C(0xffff, 65530);
	usmc_curs_add(&c, size, 10);
	USMC_ASSERT_EQ(c.wrap, 0);
	USMC_ASSERT_EQ(c.count, 4);
	/* 0 bytes and size 0 change nothing */
	c = C(5, 6);
	usmc_curs_add(&c, size, 0);
	usmc_curs_add(&c, 0, 100);
	USMC_ASSERT_EQ(c.wrap, 5);
	USMC_ASSERT_EQ(c.count, 6);
	/* largest RMBE (512 MiB, Linux's cap) */
	c = C(0, (512u << 20) - 1);
	usmc_curs_add(&c, 512u << 20, 512u << 20);
	USMC_ASSERT_EQ(c.wrap, 1);
	USMC_ASSERT_EQ(c.count, (512u << 20) - 1);
}

static void test_curs_diff(void)
{
	const uint32_t size = 65536;
	usmc_curs a, b;

	/* same wrap */
	a = C(2, 100);
	b = C(2, 4100);
	USMC_ASSERT_EQ(usmc_curs_diff(size, &a, &b), 4000);
	USMC_ASSERT_EQ(usmc_curs_comp(size, &a, &b), 4000);
	/* new behind old in the same wrap: diff clamps at 0, comp negative */
	USMC_ASSERT_EQ(usmc_curs_diff(size, &b, &a), 0);
	USMC_ASSERT_EQ(usmc_curs_comp(size, &b, &a), -4000);
	/* across one wrap */
	a = C(2, 65000);
	b = C(3, 464);
	USMC_ASSERT_EQ(usmc_curs_diff(size, &a, &b), 1000);
	USMC_ASSERT_EQ(usmc_curs_comp(size, &a, &b), 1000);
	USMC_ASSERT_EQ(usmc_curs_comp(size, &b, &a), -1000);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), 1000);
	/* full buffer: prod one wrap ahead of cons at the same count */
	a = C(4, 777);
	b = C(5, 777);
	USMC_ASSERT_EQ(usmc_curs_diff(size, &a, &b), (int32_t)size);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), (int32_t)size);
	/* empty */
	USMC_ASSERT_EQ(usmc_curs_diff(size, &a, &a), 0);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &a), 0);
	/* the capture's 100 KiB echo: (0,15) -> (1,0x900f) is 102400 bytes
	 * by the one-wrap formula; diff_large caps it at the buffer size */
	a = C(0, 15);
	b = C(1, 0x900f);
	USMC_ASSERT_EQ(usmc_curs_diff(size, &a, &b), 102400);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), (int32_t)size);
	/* diff_large over several wraps is capped at size */
	a = C(10, 0);
	b = C(13, 0);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), (int32_t)size);
	/* 16-bit rollover: 0xffff -> 0 is one wrap */
	a = C(0xffff, 65000);
	b = C(0, 464);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), 1000);
	/* rollover by two wraps is capped */
	b = C(1, 464);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), (int32_t)size);
	/* rollover, same count: exactly one buffer */
	b = C(0, 65000);
	USMC_ASSERT_EQ(usmc_curs_diff_large(size, &a, &b), (int32_t)size);
	/* large RMBE without overflow */
	a = C(0, 0);
	b = C(1, (512u << 20) - 1);
	USMC_ASSERT_EQ(usmc_curs_diff_large(512u << 20, &a, &b),
		       (int32_t)(512u << 20));
	USMC_ASSERT_EQ(usmc_curs_diff(512u << 20, &a, &b),
		       (int32_t)((1u << 30) - 1));
}

static void test_curs_update(void)
{
	usmc_curs local, peer;

	/* forward in the same wrap */
	local = C(1, 100);
	peer = C(1, 200);
	USMC_ASSERT_EQ(usmc_curs_update(&local, &peer), 1);
	USMC_ASSERT_EQ(local.wrap, 1);
	USMC_ASSERT_EQ(local.count, 200);
	/* same cursor again: applied (no change) */
	USMC_ASSERT_EQ(usmc_curs_update(&local, &peer), 1);
	USMC_ASSERT_EQ(local.count, 200);
	/* backwards in the same wrap: ignored */
	peer = C(1, 150);
	USMC_ASSERT_EQ(usmc_curs_update(&local, &peer), 0);
	USMC_ASSERT_EQ(local.wrap, 1);
	USMC_ASSERT_EQ(local.count, 200);
	/* older wrap: ignored even with a larger count */
	local = C(5, 10);
	peer = C(4, 60000);
	USMC_ASSERT_EQ(usmc_curs_update(&local, &peer), 0);
	USMC_ASSERT_EQ(local.wrap, 5);
	USMC_ASSERT_EQ(local.count, 10);
	/* next wrap with a smaller count: forward */
	peer = C(6, 3);
	USMC_ASSERT_EQ(usmc_curs_update(&local, &peer), 1);
	USMC_ASSERT_EQ(local.wrap, 6);
	USMC_ASSERT_EQ(local.count, 3);
	/* wrap 0 after 0xffff is the rollover, taken */
	local = C(0xffff, 65000);
	peer = C(0, 5);
	USMC_ASSERT_EQ(usmc_curs_update(&local, &peer), 1);
	USMC_ASSERT_EQ(local.wrap, 0);
	USMC_ASSERT_EQ(local.count, 5);
}

static void test_seq(void)
{
	CU_ASSERT(usmc_cdc_seq_before(1, 2));
	CU_ASSERT(!usmc_cdc_seq_before(2, 1));
	CU_ASSERT(!usmc_cdc_seq_before(7, 7));
	/* across the 16-bit wrap */
	CU_ASSERT(usmc_cdc_seq_before(0xffff, 0));
	CU_ASSERT(!usmc_cdc_seq_before(0, 0xffff));
	CU_ASSERT(usmc_cdc_seq_before(0xfff0, 0x0010));
	/* half the space apart: 0x8000 ahead counts as behind */
	CU_ASSERT(usmc_cdc_seq_before(0, 0x8000));
	CU_ASSERT(usmc_cdc_seq_before(0x8000, 0));
	/* 0x7fff ahead is still ahead */
	CU_ASSERT(usmc_cdc_seq_before(0, 0x7fff));
	CU_ASSERT(!usmc_cdc_seq_before(0x7fff, 0));
}

static void test_curs_valid(void)
{
	usmc_curs c = C(0, 0);

	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&c, 16384), 0);
	c.count = 16383;
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&c, 16384), 0);
	c.count = 16384;
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&c, 16384), USMC_ERR_BAD_OFFSET);
	c.count = UINT32_MAX;
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&c, 512u << 20),
		       USMC_ERR_BAD_OFFSET);
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(&c, 0), USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_cdc_curs_valid(NULL, 16384),
		       USMC_ERR_INVALID_ARGUMENT);
}

/* SMC-D's header, as struct smcd_cdc_msg lays it out: type 0xFE at 0, the
 * producer cursor at 8 (wrap u16, count u32, two flag bytes), the consumer
 * cursor at 16 with the sender's flags at 22/23, 8 reserved; host-endian.
 * The expected bytes are built here with the host's own stores. */
static void test_smcd_header(void)
{
	uint8_t b[40], want[32];
	uint16_t pw = 0x0102, cw = 0x0304;
	uint32_t pc = 0x0a0b0c0d, cc = 0x00001234;
	usmc_cdc_msg m, d;

	memset(&m, 0, sizeof(m));
	m.seqno = 9;	/* not on this wire */
	m.token = 0x77; /* nor this */
	m.prod.wrap = pw, m.prod.count = pc;
	m.cons.wrap = cw, m.cons.count = cc;
	m.prod_flags = USMC_CDC_WRITE_BLOCKED;
	m.conn_state_flags = USMC_CDC_PEER_DONE_WRITING;
	memset(want, 0, sizeof(want));
	want[0] = 0xfe;
	memcpy(want + 8, &pw, 2);
	memcpy(want + 10, &pc, 4);
	memcpy(want + 16, &cw, 2);
	memcpy(want + 18, &cc, 4);
	want[22] = 0x80;
	want[23] = 0x80;
	memset(b, 0xa5, sizeof(b));
	USMC_ASSERT_EQ(usmc_smcd_cdc_encode(b, sizeof(b), &m), 32);
	USMC_ASSERT_MEM_EQ(b, want, 32);
	USMC_ASSERT_EQ(b[32], 0xa5); /* nothing past the header */
	USMC_ASSERT_EQ(usmc_smcd_cdc_encode(b, 31, &m), USMC_ERR_NOBUF);
	USMC_ASSERT_EQ(usmc_smcd_cdc_decode(&d, want, 32), 32);
	USMC_ASSERT_EQ(d.prod.wrap, pw);
	USMC_ASSERT_EQ(d.prod.count, pc);
	USMC_ASSERT_EQ(d.cons.wrap, cw);
	USMC_ASSERT_EQ(d.cons.count, cc);
	USMC_ASSERT_EQ(d.prod_flags, USMC_CDC_WRITE_BLOCKED);
	USMC_ASSERT_EQ(d.conn_state_flags, USMC_CDC_PEER_DONE_WRITING);
	USMC_ASSERT_EQ(d.seqno, 0);
	USMC_ASSERT_EQ(d.token, 0);
	/* the producer's flag bytes are not the sender's: ignored */
	want[14] = 0xff, want[15] = 0xff;
	USMC_ASSERT_EQ(usmc_smcd_cdc_decode(&d, want, 32), 32);
	USMC_ASSERT_EQ(d.conn_state_flags, USMC_CDC_PEER_DONE_WRITING);
	USMC_ASSERT_EQ(usmc_smcd_cdc_decode(&d, want, 31), USMC_ERR_TRUNCATED);
	want[0] = 0; /* a DMB nobody wrote yet */
	USMC_ASSERT_EQ(usmc_smcd_cdc_decode(&d, want, 32), USMC_ERR_BAD_TYPE);
}

static CU_TestInfo codec_tests[] = {
	{"golden vectors", test_golden},
	{"a-session replay", test_session_replay},
	{"hand-built message", test_handbuilt},
	{"reserved bytes", test_reserved},
	{"errors", test_errors},
	{"SMC-D header", test_smcd_header},
	CU_TEST_INFO_NULL,
};

static CU_TestInfo curs_tests[] = {
	{"add", test_curs_add},	      {"diff", test_curs_diff},
	{"update", test_curs_update}, {"seqno", test_seq},
	{"valid", test_curs_valid},   CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {
		{"cdc codec", codec_tests},
		{"cdc cursors", curs_tests},
		{NULL, NULL},
	};

	return usmc_test_main(suites);
}
