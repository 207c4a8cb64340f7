/* SPDX-License-Identifier: MIT */
/*
 * RoCEv2 codec and ICRC against real packets: frames of the Linux 6.1 rxe
 * capture smcr-a-session.pcapng (IPv4 header onward), with the field values
 * tshark 4.0 decoded for them. The ICRC must equal the trailer rxe wrote.
 */
#include <stdlib.h>
#include <zlib.h>

#include "roce_hdr.h"
#include "usmc_conv.h"
#include "usmc_err.h"
#include "usmc_test.h"

struct expect {
	unsigned opcode, se, migreq, padcnt, tver, pkey, destqp, ackreq, psn;
	uint64_t reth_va;
	unsigned reth_rkey, reth_len, aeth_syndrome, aeth_msn;
	/* infiniband.invariant.crc (byte-swapped view); 0 when tshark's SMC
	 * dissector took the payload and did not show it */
	uint32_t ws_crc;
};

struct frame {
	int number;
	const char *hex;
	struct expect e;
};

/* tshark -r smcr-a-session.pcapng -T fields -e infiniband.bth.* ... */
static const struct frame frames[] = {
	{
		/* frame 13, opcode 4 */
		13,
		"4500005820b14000011144d00a0900010a090002c12112b7004400000480ff"
		"ff"
		"000000118014fd11212c000352540000000100000000000000000000ffff0a"
		"09"
		"00010000110100000101020000000000000000006aa5a508",
		{4, 1, 0, 0, 0, 65535, 0x000011, 1, 1375505, 0, 0, 0, 0, 0, 0},
	},
	{
		/* frame 14, opcode 17 */
		14,
		"450000303fd54000011125d40a0900020a090001c12112b7001c00001100ff"
		"ff"
		"000000110014fd111f0000016103a158",
		{17, 0, 0, 0, 0, 65535, 0x000011, 0, 1375505, 0, 0, 0, 31, 1,
		 0x6103a158},
	},
	{
		/* frame 17, opcode 4 */
		17,
		"4500008420bf4000011144960a0900010a090002c12112b7007000000480ff"
		"ff"
		"000000118014fd1222580000525400000001000000000000000000000000ff"
		"ff"
		"0a090001000012020356b2ef00000000000000008000000000000000000000"
		"00"
		"ffff0a09000100000000000000000100000003b60000058eff40b18c846700"
		"00"
		"77f3ee83",
		{4, 1, 0, 0, 0, 65535, 0x000011, 1, 1375506, 0, 0, 0, 0, 0, 0},
	},
	{
		/* frame 21, opcode 10 */
		21,
		"450000443fdc4000011125b90a0900020a090001c12112b7003000000a30ff"
		"ff"
		"00000011806ad1d9ff40b18c84670000000003b60000000570696e67300000"
		"00"
		"c1abb0c7",
		{10, 0, 0, 3, 0, 65535, 0x000011, 1, 7000537,
		 0xff40b18c84670000, 0x000003b6, 5, 0, 0, 0xc1abb0c7},
	},
	{
		/* frame 29, opcode 17 */
		29,
		"450000303fdf4000011125ca0a0900020a090001c12112b7001c00001100ff"
		"ff"
		"000000110014fd131f000003f471a648",
		{17, 0, 0, 0, 0, 65535, 0x000011, 0, 1375507, 0, 0, 0, 31, 3,
		 0xf471a648},
	},
	{
		/* frame 49, opcode 6 */
		49,
		"4500043c3ffb4000011121a20a0900020a090001c12112b7042800000600ff"
		"ff"
		"00000011006ad1dfff40b18c8467000f000003b60000400041424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494ac46b5e19",
		{6, 0, 0, 0, 0, 65535, 0x000011, 0, 7000543, 0xff40b18c8467000f,
		 0x000003b6, 16384, 0, 0, 0xc46b5e19},
	},
	{
		/* frame 50, opcode 7 */
		50,
		"4500042c3ffc4000011121b10a0900020a090001c12112b7041800000700ff"
		"ff"
		"00000011006ad1e04b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f50515253542f03fff4",
		{7, 0, 0, 0, 0, 65535, 0x000011, 0, 7000544, 0, 0, 0, 0, 0,
		 0x2f03fff4},
	},
	{
		/* frame 64, opcode 8 */
		64,
		"4500042c400a4000011121a30a0900020a090001c12112b7041800000800ff"
		"ff"
		"00000011806ad1ee55565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434416d76d28",
		{8, 0, 0, 0, 0, 65535, 0x000011, 1, 7000558, 0, 0, 0, 0, 0,
		 0x16d76d28},
	},
	{
		/* frame 115, opcode 8 */
		115,
		"45000420403b40000111217e0a0900020a090001c12112b7040c00000830ff"
		"ff"
		"00000011806ad21f4748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41000000f17751"
		"3c",
		{8, 0, 0, 3, 0, 65535, 0x000011, 1, 7000607, 0, 0, 0, 0, 0,
		 0xf177513c},
	},
	{
		/* frame 117, opcode 10 */
		117,
		"4500004c403c4000011125510a0900020a090001c12112b7003800000a10ff"
		"ff"
		"00000011806ad220ff40b18c84670000000003b60000000f42434445464748"
		"49"
		"4a4b4c4d4e4f5000c41a43e5",
		{10, 0, 0, 1, 0, 65535, 0x000011, 1, 7000608,
		 0xff40b18c84670000, 0x000003b6, 15, 0, 0, 0xc41a43e5},
	},
	{
		/* frame 121, opcode 4 */
		121,
		"4500005820e540000111449c0a0900010a090002c12112b7004400000480ff"
		"ff"
		"000000118014fd19fe2c000400000001000000000000000f00000001000000"
		"0f"
		"00000000000000000000000000000000000000003c72eb3a",
		{4, 1, 0, 0, 0, 65535, 0x000011, 1, 1375513, 0, 0, 0, 0, 0,
		 0x3c72eb3a},
	},
	{
		/* frame 122, opcode 6 */
		122,
		"4500043c20e64000011140b70a0900010a090002c12112b7042800000600ff"
		"ff"
		"000000110014fd1aff1cee3183b7000f000003850000fff141424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494ad1f8056b",
		{6, 0, 0, 0, 0, 65535, 0x000011, 0, 1375514, 0xff1cee3183b7000f,
		 0x00000385, 65521, 0, 0, 0xd1f8056b},
	},
	{
		/* frame 205, opcode 8 */
		205,
		"4500042021274000011140920a0900010a090002c12112b7040c00000830ff"
		"ff"
		"000000118014fd594748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41424344454647"
		"48"
		"494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d"
		"4e"
		"4f505152535455565758595a4142434445464748494a4b4c4d4e4f50515253"
		"54"
		"55565758595a4142434445464748494a4b4c4d4e4f50515253545556575859"
		"5a"
		"4142434445464748494a4b4c4d4e4f505152535455565758595a4142434445"
		"46"
		"4748494a4b4c4d4e4f505152535455565758595a4142434445464748494a4b"
		"4c"
		"4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f5051"
		"52"
		"535455565758595a4142434445464748494a4b4c4d4e4f5051525354555657"
		"58"
		"595a4142434445464748494a4b4c4d4e4f505152535455565758595a414243"
		"44"
		"45464748494a4b4c4d4e4f505152535455565758595a414243444546474849"
		"4a"
		"4b4c4d4e4f505152535455565758595a4142434445464748494a4b4c4d4e4f"
		"50"
		"5152535455565758595a4142434445464748494a4b4c4d4e4f505152535455"
		"56"
		"5758595a4142434445464748494a4b4c4d4e4f505152535455565758595a41"
		"42"
		"434445464748494a4b4c4d4e4f505152535455565758595a41000000a5922e"
		"9d",
		{8, 0, 0, 3, 0, 65535, 0x000011, 1, 1375577, 0, 0, 0, 0, 0,
		 0xa5922e9d},
	},
	{
		/* frame 206, opcode 10 */
		206,
		"4500004c21284000011144650a0900010a090002c12112b7003800000a10ff"
		"ff"
		"000000118014fd5aff1cee3183b70000000003850000000f42434445464748"
		"49"
		"4a4b4c4d4e4f50001f905b4f",
		{10, 0, 0, 1, 0, 65535, 0x000011, 1, 1375578,
		 0xff1cee3183b70000, 0x00000385, 15, 0, 0, 0x1f905b4f},
	},
	{
		/* frame 207, opcode 4 */
		207,
		"4500005821294000011144580a0900010a090002c12112b7004400000480ff"
		"ff"
		"000000118014fd5bfe2c000500000001000000010000000f00000001000000"
		"0f"
		"8000000000000000000000000000000000000000d396a6f4",
		{4, 1, 0, 0, 0, 65535, 0x000011, 1, 1375579, 0, 0, 0, 0, 0,
		 0xd396a6f4},
	},
};

#define NFRAMES (sizeof(frames) / sizeof(frames[0]))

static uint8_t pkt_buf[2048];

/* Loads frame |i|; returns the UDP payload length, sets *ip. */
static size_t load(size_t i, const uint8_t **ip)
{
	int n = usmc_test_hex(frames[i].hex, pkt_buf, sizeof(pkt_buf));

	CU_ASSERT_FATAL(n > 28);
	CU_ASSERT_FATAL(usmc_get_be16(pkt_buf + 2) == n);
	*ip = pkt_buf;
	return (size_t)usmc_get_be16(pkt_buf + 24) - 8;
}

static void test_decode_captured(void)
{
	CU_ASSERT_TRUE(NFRAMES >= 10);
	for (size_t i = 0; i < NFRAMES; i++) {
		const uint8_t *ip;
		size_t len = load(i, &ip);
		const struct expect *e = &frames[i].e;
		usmc_roce_pkt pkt;

		USMC_ASSERT_EQ_FATAL(usmc_roce_decode(ip + 28, len, &pkt), 0);
		USMC_ASSERT_EQ(pkt.opcode, e->opcode);
		USMC_ASSERT_EQ(pkt.se, e->se);
		USMC_ASSERT_EQ(pkt.migreq, e->migreq);
		USMC_ASSERT_EQ(pkt.padcnt, e->padcnt);
		USMC_ASSERT_EQ(pkt.tver, e->tver);
		USMC_ASSERT_EQ(pkt.pkey, e->pkey);
		USMC_ASSERT_EQ(pkt.dest_qpn, e->destqp);
		USMC_ASSERT_EQ(pkt.ackreq, e->ackreq);
		USMC_ASSERT_EQ(pkt.psn, e->psn);
		USMC_ASSERT_EQ(pkt.fecn, 0);
		USMC_ASSERT_EQ(pkt.becn, 0);
		if (pkt.flags & USMC_ROCE_F_RETH) {
			CU_ASSERT_EQUAL(pkt.reth_va, e->reth_va);
			USMC_ASSERT_EQ(pkt.reth_rkey, e->reth_rkey);
			USMC_ASSERT_EQ(pkt.reth_len, e->reth_len);
		}
		if (pkt.flags & USMC_ROCE_F_AETH) {
			USMC_ASSERT_EQ(pkt.aeth_syndrome, e->aeth_syndrome);
			USMC_ASSERT_EQ(pkt.aeth_msn, e->aeth_msn);
		}
		/* payload + pad + headers + ICRC account for every byte */
		USMC_ASSERT_EQ(pkt.hdr_len + pkt.payload_len + pkt.padcnt + 4,
			       len);
		USMC_ASSERT_EQ(pkt.hdr_len, usmc_roce_hdr_len(pkt.opcode));
		if (pkt.opcode == USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY)
			USMC_ASSERT_EQ(pkt.payload_len, pkt.reth_len);
		if (pkt.opcode == USMC_IB_OPCODE_RC_SEND_ONLY)
			/* an SMC-R LLC or CDC message */
			CU_ASSERT_TRUE(pkt.payload_len == 44 ||
				       pkt.payload_len >= 88);
		if (e->ws_crc)
			USMC_ASSERT_EQ(__builtin_bswap32(pkt.icrc), e->ws_crc);
	}
}

static void test_icrc_captured(void)
{
	for (size_t i = 0; i < NFRAMES; i++) {
		const uint8_t *ip;
		size_t len = load(i, &ip);
		uint32_t icrc, st;
		usmc_roce_pkt pkt;

		USMC_ASSERT_EQ_FATAL(usmc_roce_decode(ip + 28, len, &pkt), 0);
		icrc = usmc_roce_icrc_ipv4(ip, ip + 20, ip + 28, len - 4);
		if (icrc != pkt.icrc)
			fprintf(stderr, "frame %d: icrc %08x, wire %08x\n",
				frames[i].number, icrc, pkt.icrc);
		USMC_ASSERT_EQ(icrc, pkt.icrc);

		/* incremental form over a split payload */
		st = usmc_roce_icrc_start_ipv4(ip, ip + 20, ip + 28,
					       pkt.hdr_len);
		size_t rest = len - 4 - pkt.hdr_len, half = rest / 2;
		st = usmc_roce_icrc_update(st, ip + 28 + pkt.hdr_len, half);
		st = usmc_roce_icrc_update(st, ip + 28 + pkt.hdr_len + half,
					   rest - half);
		USMC_ASSERT_EQ(usmc_roce_icrc_final(st), pkt.icrc);

		/* masked fields do not change it, unmasked ones do */
		pkt_buf[1] ^= 0x10;	 /* TOS */
		pkt_buf[8] ^= 0x01;	 /* TTL */
		pkt_buf[26] ^= 0x55;	 /* UDP checksum */
		pkt_buf[28 + 4] ^= 0x80; /* FECN */
		USMC_ASSERT_EQ(
			usmc_roce_icrc_ipv4(ip, ip + 20, ip + 28, len - 4),
			pkt.icrc);
		pkt_buf[4] ^= 0x01; /* IP ID is covered */
		CU_ASSERT_NOT_EQUAL(
			usmc_roce_icrc_ipv4(ip, ip + 20, ip + 28, len - 4),
			pkt.icrc);
		pkt_buf[4] ^= 0x01;
		pkt_buf[28 + len - 5] ^= 0x01; /* last byte before ICRC */
		CU_ASSERT_NOT_EQUAL(
			usmc_roce_icrc_ipv4(ip, ip + 20, ip + 28, len - 4),
			pkt.icrc);
	}
}

/* Kernel rxe's packets carry pseudo-random IPv4 IDs: the ICRC computed as
 * softroce receives them (the header it builds, ID 0) differs, and the ID
 * recovered from the difference is the one on the wire. */
static void test_icrc_id_captured(void)
{
	int nonzero = 0;

	for (size_t i = 0; i < NFRAMES; i++) {
		const uint8_t *ip;
		size_t len = load(i, &ip);
		uint8_t iph[20], udph[8];
		uint16_t id = 0, wire_id = usmc_get_be16(ip + 4);
		uint32_t icrc = usmc_get_le32(ip + 28 + len - 4), c0;

		usmc_roce_ipv4_hdr(iph, ip + 12, ip + 16, len, 64);
		usmc_roce_udp_hdr(udph, usmc_get_be16(ip + 20),
				  usmc_get_be16(ip + 22), len);
		c0 = usmc_roce_icrc_ipv4(iph, udph, ip + 28, len - 4);
		USMC_ASSERT_EQ(usmc_roce_icrc_ipv4_id(c0, icrc, len, &id), 0);
		USMC_ASSERT_EQ(id, wire_id);
		nonzero += wire_id != 0;
		/* one flipped payload bit: no ID explains it */
		pkt_buf[28 + len - 5] ^= 0x04;
		c0 = usmc_roce_icrc_ipv4(iph, udph, ip + 28, len - 4);
		CU_ASSERT_NOT_EQUAL(usmc_roce_icrc_ipv4_id(c0, icrc, len, &id),
				    0);
		pkt_buf[28 + len - 5] ^= 0x04;
	}
	CU_ASSERT(nonzero > 0); /* the capture does have nonzero IDs */
}

static uint32_t ref_mulmod(uint32_t a, uint32_t b)
{
	uint32_t p = 0;

	for (int k = 31; k >= 0; k--) {
		if (a >> k & 1)
			p ^= b;
		b = (b & 1) ? (b >> 1) ^ 0xedb88320u : b >> 1;
	}
	return p;
}

/* x^-e * x^e = 1 for the powers of two and some others. */
static void test_gf2_xinv(void)
{
	uint32_t x2k = 0x40000000u; /* x */

	for (uint32_t k = 0; k < 24; k++) {
		USMC_ASSERT_EQ(ref_mulmod(usmc_roce_gf2_xinv(1u << k), x2k),
			       0x80000000u);
		x2k = ref_mulmod(x2k, x2k);
	}
	for (uint32_t e = 0; e < 3000; e += 7) {
		uint32_t xe = 0x80000000u;

		for (uint32_t j = 0; j < e; j++)
			xe = ref_mulmod(xe, 0x40000000u);
		USMC_ASSERT_EQ(ref_mulmod(usmc_roce_gf2_xinv(e), xe),
			       0x80000000u);
	}
}

/* Every length an RoCEv2 packet can have up to 4 KiB MTU, random IDs and
 * contents: the ID comes back; a flipped bit anywhere in what the ICRC
 * covers (but the ID) or in the ICRC itself is caught but for the 2^-16
 * the 16 ID bits leave, which the count bounds. */
static void test_icrc_id_solver(void)
{
	static uint8_t b[4200];
	uint8_t iph[20], udph[8];
	static const uint8_t sa[4] = {10, 1, 2, 3}, da[4] = {10, 1, 2, 4};
	uint64_t r = 0x243f6a8885a308d3ULL;
	unsigned long tries = 0, missed = 0;

	for (size_t len = 16; len <= sizeof(b); len += 1) {
		uint32_t icrc, c0;
		uint16_t id, got = 0;
		size_t bit;

		for (size_t i = 0; i < len; i++) {
			r = r * 6364136223846793005ULL + 1442695040888963407ULL;
			b[i] = (uint8_t)(r >> 56);
		}
		b[0] = 0x04; /* SEND ONLY, TVer 0 */
		id = (uint16_t)(r >> 20);
		if (len % 97 == 0)
			id = 0;
		usmc_roce_ipv4_hdr(iph, sa, da, len, 64);
		usmc_roce_udp_hdr(udph, 0xc000 + (uint16_t)len, 4791, len);
		c0 = usmc_roce_icrc_ipv4(iph, udph, b, len - 4);
		usmc_put_be16(iph + 4, id);
		icrc = usmc_roce_icrc_ipv4(iph, udph, b, len - 4);
		USMC_ASSERT_EQ_FATAL(
			usmc_roce_icrc_ipv4_id(c0, icrc, len, &got), 0);
		USMC_ASSERT_EQ_FATAL(got, id);
		/* one flipped bit: payload/header (recompute), or the ICRC */
		bit = (size_t)(r >> 8) % ((len - 4) * 8 + 32);
		if (bit / 8 == 4) /* BTH FECN/BECN/resv: masked */
			bit += 8;
		if (bit < (len - 4) * 8) {
			b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			usmc_put_be16(iph + 4, 0);
			c0 = usmc_roce_icrc_ipv4(iph, udph, b, len - 4);
		} else {
			icrc ^= 1u << (bit - (len - 4) * 8);
		}
		tries++;
		missed += usmc_roce_icrc_ipv4_id(c0, icrc, len, &got) == 0;
	}
	/* a single flipped bit: 4185 cases, at 2^-16 each none expected */
	USMC_ASSERT_EQ(missed, 0);
	USMC_ASSERT_EQ(tries, sizeof(b) - 15);
	/* lengths the solver refuses */
	USMC_ASSERT_EQ(usmc_roce_icrc_ipv4_id(0, 1, 15, &(uint16_t){0}), -1);
	USMC_ASSERT_EQ(usmc_roce_icrc_ipv4_id(0, 1, 70000, &(uint16_t){0}), -1);
}

/* Re-encoding the decoded fields gives the captured header bytes. */
static void test_reencode_captured(void)
{
	for (size_t i = 0; i < NFRAMES; i++) {
		const uint8_t *ip;
		size_t len = load(i, &ip);
		usmc_roce_pkt pkt;
		uint8_t hdr[USMC_ROCE_MAX_HDR_LEN];
		int n;

		USMC_ASSERT_EQ_FATAL(usmc_roce_decode(ip + 28, len, &pkt), 0);
		n = usmc_roce_encode_hdr(hdr, sizeof(hdr), &pkt);
		USMC_ASSERT_EQ_FATAL(n, pkt.hdr_len);
		USMC_ASSERT_MEM_EQ(hdr, ip + 28, (size_t)n);
		USMC_ASSERT_EQ(usmc_roce_encode_hdr(hdr, (size_t)n - 1, &pkt),
			       USMC_ERR_NOBUF);
	}
}

static void test_truncation(void)
{
	for (size_t i = 0; i < NFRAMES; i++) {
		const uint8_t *ip;
		size_t len = load(i, &ip);
		usmc_roce_pkt pkt;
		size_t hlen;

		USMC_ASSERT_EQ_FATAL(usmc_roce_decode(ip + 28, len, &pkt), 0);
		hlen = pkt.hdr_len;
		for (size_t l = 0; l < len; l++) {
			/* exact-size copy: any overread shows under ASan */
			uint8_t *copy = malloc(l ? l : 1);
			int rc;

			memcpy(copy, ip + 28, l);
			rc = usmc_roce_decode(copy, l, &pkt);
			if (l < hlen + 4)
				USMC_ASSERT_EQ(rc, USMC_ERR_TRUNCATED);
			else if (!(usmc_roce_opcode_flags(ip[28]) &
				   USMC_ROCE_F_PAYLOAD))
				USMC_ASSERT_EQ(rc, USMC_ERR_BAD_LENGTH);
			else if (l - hlen - 4 < ((ip[29] >> 4) & 3u))
				USMC_ASSERT_EQ(rc, USMC_ERR_BAD_LENGTH);
			else
				USMC_ASSERT_EQ(rc, 0);
			free(copy);
		}
	}
}

static void test_bad_fields(void)
{
	const uint8_t *ip;
	size_t len = load(0, &ip);
	uint8_t b[256];
	usmc_roce_pkt pkt;
	static const uint8_t bad_ops[] = {0x15, 0x18, 0x1c, 0x1d, 0x24,
					  0x64, 0x81, 0xe0, 0xff};

	memcpy(b, ip + 28, len);
	b[1] |= 0x01; /* TVer 1 */
	USMC_ASSERT_EQ(usmc_roce_decode(b, len, &pkt), USMC_ERR_BAD_VERSION);
	b[1] &= 0xf0;
	for (size_t i = 0; i < sizeof(bad_ops); i++) {
		b[0] = bad_ops[i];
		USMC_ASSERT_EQ(usmc_roce_decode(b, len, &pkt),
			       USMC_ERR_BAD_TYPE);
		CU_ASSERT_STRING_EQUAL(usmc_roce_opcode_name(bad_ops[i]),
				       "UNKNOWN");
		USMC_ASSERT_EQ(usmc_roce_hdr_len(bad_ops[i]), 0);
	}
	/* pad count larger than the payload: SEND ONLY with 2 bytes, pad 3 */
	b[0] = USMC_IB_OPCODE_RC_SEND_ONLY;
	b[1] = 0x30;
	USMC_ASSERT_EQ(usmc_roce_decode(b, 12 + 2 + 4, &pkt),
		       USMC_ERR_BAD_LENGTH);
	USMC_ASSERT_EQ(usmc_roce_decode(b, 12 + 3 + 4, &pkt), 0);
	USMC_ASSERT_EQ(pkt.payload_len, 0);
	/* an ACK with a payload */
	b[0] = USMC_IB_OPCODE_RC_ACKNOWLEDGE;
	b[1] = 0;
	USMC_ASSERT_EQ(usmc_roce_decode(b, 16 + 4, &pkt), 0);
	USMC_ASSERT_EQ(usmc_roce_decode(b, 16 + 4 + 4, &pkt),
		       USMC_ERR_BAD_LENGTH);
	/* encoder range checks */
	memset(&pkt, 0, sizeof(pkt));
	pkt.opcode = 0x15;
	USMC_ASSERT_EQ(usmc_roce_encode_hdr(b, sizeof(b), &pkt),
		       USMC_ERR_BAD_TYPE);
	pkt.opcode = USMC_IB_OPCODE_RC_SEND_ONLY;
	pkt.psn = 0x1000000;
	USMC_ASSERT_EQ(usmc_roce_encode_hdr(b, sizeof(b), &pkt),
		       USMC_ERR_BAD_VALUE);
	pkt.psn = 0;
	pkt.padcnt = 4;
	USMC_ASSERT_EQ(usmc_roce_encode_hdr(b, sizeof(b), &pkt),
		       USMC_ERR_BAD_VALUE);
}

static void test_opcode_table(void)
{
	static const struct {
		uint8_t op;
		const char *name;
		size_t hlen;
	} t[] = {
		{0x00, "RC_SEND_FIRST", 12},
		{0x04, "RC_SEND_ONLY", 12},
		{0x05, "RC_SEND_ONLY_WITH_IMMEDIATE", 16},
		{0x06, "RC_RDMA_WRITE_FIRST", 28},
		{0x07, "RC_RDMA_WRITE_MIDDLE", 12},
		{0x09, "RC_RDMA_WRITE_LAST_WITH_IMMEDIATE", 16},
		{0x0a, "RC_RDMA_WRITE_ONLY", 28},
		{0x0b, "RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE", 32},
		{0x0c, "RC_RDMA_READ_REQUEST", 28},
		{0x0e, "RC_RDMA_READ_RESPONSE_MIDDLE", 12},
		{0x10, "RC_RDMA_READ_RESPONSE_ONLY", 16},
		{0x11, "RC_ACKNOWLEDGE", 16},
		{0x12, "RC_ATOMIC_ACKNOWLEDGE", 24},
		{0x13, "RC_COMPARE_SWAP", 40},
		{0x17, "RC_SEND_ONLY_WITH_INVALIDATE", 16},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CU_ASSERT_STRING_EQUAL(usmc_roce_opcode_name(t[i].op),
				       t[i].name);
		USMC_ASSERT_EQ(usmc_roce_hdr_len(t[i].op), t[i].hlen);
	}
}

/* WRITE ONLY with immediate: RETH then ImmDt, round trip. */
static void test_roundtrip_write_imm(void)
{
	usmc_roce_pkt in, out;
	uint8_t b[64];
	int n;

	memset(&in, 0, sizeof(in));
	in.opcode = USMC_IB_OPCODE_RC_RDMA_WRITE_ONLY_WITH_IMMEDIATE;
	in.se = 1;
	in.padcnt = 2;
	in.pkey = 0xffff;
	in.dest_qpn = 0xabcdef;
	in.ackreq = 1;
	in.psn = 0xfffffe;
	in.reth_va = 0x0123456789abcdefULL;
	in.reth_rkey = 0xdeadbeef;
	in.reth_len = 2;
	in.imm = 0x11223344;
	n = usmc_roce_encode_hdr(b, sizeof(b), &in);
	USMC_ASSERT_EQ_FATAL(n, 32);
	USMC_ASSERT_EQ(b[28], 0x11);
	USMC_ASSERT_EQ(b[31], 0x44);
	memset(b + n, 0xaa, 2 + 2 + 4);
	USMC_ASSERT_EQ_FATAL(usmc_roce_decode(b, (size_t)n + 8, &out), 0);
	USMC_ASSERT_EQ(out.dest_qpn, in.dest_qpn);
	USMC_ASSERT_EQ(out.psn, in.psn);
	CU_ASSERT_EQUAL(out.reth_va, in.reth_va);
	USMC_ASSERT_EQ(out.reth_rkey, in.reth_rkey);
	USMC_ASSERT_EQ(out.imm, in.imm);
	USMC_ASSERT_EQ(out.payload_len, 2);
	CU_ASSERT_PTR_EQUAL(out.payload, b + 32);
	USMC_ASSERT_EQ(out.se, 1);
}

/* IPv6: oracle computed independently with Python's zlib.crc32 over
 * 8*0xff + masked IPv6/UDP/BTH + payload. */
static void test_icrc_ipv6(void)
{
	uint8_t b[256];
	int n = usmc_test_hex(
		"6abcdef100441140fd000000000000000000000000000001fd0000000000"
		"00000000000000000002c12312b7004412340480ffff000000118012345600"
		"01"
		"02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
		"21"
		"22232425262728292a2b",
		b, sizeof(b));

	USMC_ASSERT_EQ_FATAL(n, 40 + 8 + 12 + 44);
	USMC_ASSERT_EQ(usmc_roce_icrc_ipv6(b, b + 40, b + 48, 56), 0x2a2a65e2);
	b[7] = 1; /* hop limit is masked */
	b[1] = 0;
	USMC_ASSERT_EQ(usmc_roce_icrc_ipv6(b, b + 40, b + 48, 56), 0x2a2a65e2);
	b[8] ^= 1; /* source address is not */
	CU_ASSERT_NOT_EQUAL(usmc_roce_icrc_ipv6(b, b + 40, b + 48, 56),
			    0x2a2a65e2);
	b[8] ^= 1;

	/* the builder gives a header with the same ICRC */
	{
		uint8_t h[40];

		usmc_roce_ipv6_hdr(h, b + 8, b + 24, 56 + 4, 9);
		USMC_ASSERT_EQ(h[0] >> 4, 6);
		USMC_ASSERT_EQ(usmc_get_be16(h + 4), 8 + 56 + 4);
		USMC_ASSERT_EQ(h[6], 17);
		USMC_ASSERT_MEM_EQ(h + 4, b + 4, 3);
		USMC_ASSERT_EQ(usmc_roce_icrc_ipv6(h, b + 40, b + 48, 56),
			       0x2a2a65e2);
		USMC_ASSERT_EQ(usmc_roce_icrc_final(usmc_roce_icrc_update(
				       usmc_roce_icrc_start_ipv6(h, b + 40,
								 b + 48, 12),
				       b + 60, 44)),
			       0x2a2a65e2);
	}
}

/* Our IPv4/UDP header builders reproduce a captured header except for the
 * fields rxe fills differently (ID, TTL, checksum, UDP source port). */
static void test_ip_udp_builders(void)
{
	const uint8_t *ip;
	size_t len = load(0, &ip);
	uint8_t h[20], u[8];

	usmc_roce_ipv4_hdr(h, ip + 12, ip + 16, len, ip[8]);
	USMC_ASSERT_MEM_EQ(h, ip, 4);
	USMC_ASSERT_EQ(usmc_get_be16(h + 4), 0);
	USMC_ASSERT_MEM_EQ(h + 6, ip + 6, 4);
	USMC_ASSERT_MEM_EQ(h + 12, ip + 12, 8);
	usmc_roce_udp_hdr(u, usmc_get_be16(ip + 20), USMC_ROCE_UDP_PORT, len);
	USMC_ASSERT_MEM_EQ(u, ip + 20, 8);
}

static void test_psn_arith(void)
{
	CU_ASSERT_TRUE(usmc_psn_cmp(0, 0xffffff) > 0);
	CU_ASSERT_TRUE(usmc_psn_cmp(0xffffff, 0) < 0);
	CU_ASSERT_TRUE(usmc_psn_cmp(5, 5) == 0);
	CU_ASSERT_TRUE(usmc_psn_cmp(0x800000, 0) < 0);
	CU_ASSERT_TRUE(usmc_psn_cmp(0x7fffff, 0) > 0);
	USMC_ASSERT_EQ(usmc_psn_add(0xffffff, 2), 1);
}

/* The ICRC's CRC-32 (ISA-L where it loads) and our own tables' equal
 * zlib's for every size around the SIMD block sizes, every alignment, and
 * when chained. */
static void test_icrc_crc_matches_zlib(void)
{
	enum { MAX = 9000 };
	uint8_t *buf = malloc(MAX + 64);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	for (size_t i = 0; i < MAX + 64; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	for (size_t n = 0; n <= MAX; n += n < 600 ? 1 : 97) {
		for (size_t a = 0; a < 64; a += n < 600 ? 13 : 1) {
			uint32_t z =
				(uint32_t)crc32(0xdebb20e3u, buf + a, (uInt)n);
			uint32_t s =
				usmc_roce_icrc_update(0xdebb20e3u, buf + a, n);
			size_t h = n / 3;
			uint32_t c = usmc_roce_icrc_update(
				usmc_roce_icrc_update(0xdebb20e3u, buf + a, h),
				buf + a + h, n - h);

			uint32_t t = usmc_roce_crc32_table(
				usmc_roce_crc32_table(0xdebb20e3u, buf + a, h),
				buf + a + h, n - h);

			bad += s != z || c != z || t != z;
		}
	}
	USMC_ASSERT_EQ(bad, 0);
	USMC_ASSERT_EQ(usmc_roce_icrc_update(0, buf, 0), 0);
	USMC_ASSERT_EQ(usmc_roce_crc32_table(0, buf, 0), 0);
	fprintf(stderr, "[%s] ", usmc_roce_crc32_impl());
	free(buf);
}

/* Every single flipped bit of a full 4 KiB-MTU packet sent with a nonzero
 * ID, in what the ICRC covers from the BTH on (but the masked byte 4) and
 * in the ICRC itself, is refused: the first single-bit error an inferred
 * ID could explain lies 214135 bits (26 KB) after the ID. */
static void test_icrc_id_every_bit(void)
{
	static uint8_t b[4200];
	static const uint8_t sa[4] = {10, 1, 2, 3}, da[4] = {10, 1, 2, 4};
	uint8_t iph[20], udph[8];
	const size_t len = sizeof(b), nbits = (len - 4) * 8;
	uint32_t icrc, c0;
	unsigned long refused = 0;
	uint16_t id;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 151 + 3);
	b[0] = 0x04;
	usmc_roce_ipv4_hdr(iph, sa, da, len, 64);
	usmc_roce_udp_hdr(udph, 0xc001, 4791, len);
	usmc_put_be16(iph + 4, 0xbeef);
	icrc = usmc_roce_icrc_ipv4(iph, udph, b, len - 4);
	usmc_put_be16(iph + 4, 0);
	for (size_t bit = 0; bit < nbits + 32; bit++) {
		uint32_t carried = icrc;

		if (bit / 8 == 4)
			continue; /* FECN, BECN, resv: masked */
		if (bit < nbits)
			b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		else
			carried ^= 1u << (bit - nbits);
		c0 = usmc_roce_icrc_ipv4(iph, udph, b, len - 4);
		refused += usmc_roce_icrc_ipv4_id(c0, carried, len, &id) != 0;
		if (bit < nbits)
			b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	USMC_ASSERT_EQ(refused, nbits + 32 - 8);
	c0 = usmc_roce_icrc_ipv4(iph, udph, b, len - 4);
	USMC_ASSERT_EQ(usmc_roce_icrc_ipv4_id(c0, icrc, len, &id), 0);
	USMC_ASSERT_EQ(id, 0xbeef);
}

static CU_TestInfo tests[] = {
	{"ICRC CRC-32 equals zlib's, sizes and alignments",
	 test_icrc_crc_matches_zlib},
	{"decode captured rxe packets", test_decode_captured},
	{"ICRC of captured rxe packets", test_icrc_captured},
	{"IPv4 ID of captured rxe packets from their ICRC",
	 test_icrc_id_captured},
	{"x^-e modulo the CRC-32 polynomial", test_gf2_xinv},
	{"IPv4 ID solver: all lengths, random IDs, flipped bits",
	 test_icrc_id_solver},
	{"IPv4 ID solver: every single-bit error of a 4 KiB packet",
	 test_icrc_id_every_bit},
	{"re-encode captured headers", test_reencode_captured},
	{"every truncation rejected", test_truncation},
	{"bad TVer, opcode, pad", test_bad_fields},
	{"opcode table", test_opcode_table},
	{"WRITE ONLY with immediate round trip", test_roundtrip_write_imm},
	{"ICRC IPv6", test_icrc_ipv6},
	{"IPv4/UDP header builders", test_ip_udp_builders},
	{"PSN serial arithmetic", test_psn_arith},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	static const usmc_test_suite suites[] = {{"roce_hdr", tests},
						 {NULL, NULL}};

	return usmc_test_main(suites);
}
