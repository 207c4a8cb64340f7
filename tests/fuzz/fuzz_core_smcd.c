/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer and a disorderly runtime against an SMC-D connection
 * (core/usmc_smcd.c). Two contexts with ISM devices (the harness of
 * tests/unit/usmc_smcd_harness.h) set up a connection; then the input is a
 * program: writes, reads, shutdowns, closes and aborts on either side,
 * ISM operations pulled late or early, signals delivered late,
 * coalesced or for a wrong token, forged DMB headers, time passing. The
 * first byte says which sides write straight into the peer's ring
 * (usmc_conn_attach_peer_dmb, the shm runtime's single-copy path).
 * Whatever happens, no ISM operation may leave the DMB it names, no
 * connection may report more readable bytes than its ring holds, a
 * direction nobody forged into must deliver exactly the writer's bytes,
 * and at the end every DMB must be given back.
 */
#include <stdlib.h>
#include <string.h>

/* a bad operation is printed before the abort */
#define SMCD_H_LOG(...) fprintf(stderr, __VA_ARGS__)
#include <stdio.h>

#include "usmc_smcd_harness.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RING (16384 - 32)

/* The byte at stream offset |i| of direction |d|. */
static uint8_t pat(int d, uint64_t i)
{
	return (uint8_t)((i * 131 + (i >> 9) * 7 + (uint64_t)d * 91) & 0xff);
}

typedef struct dir_state {
	uint64_t wrote, got;
	int forged; /* a header was forged into the reader's DMB */
} dir_state;

static dmb_ent *dmb_of(usmc_conn *c)
{
	for (int i = 0; i < MAX_DMBS; i++)
		if (dmbs[i].used && dmbs[i].conn == c)
			return &dmbs[i];
	return NULL;
}

static void forge(usmc_conn *c)
{
	usmc_conn_info ci;
	dmb_ent *e = dmb_of(c);
	uint8_t *h;
	uint8_t sel = take();
	int32_t dp = (int16_t)take16(), dc = (int16_t)take16();
	uint64_t prod, cons;
	uint16_t pw, cw;
	uint32_t pc, cc;

	if (!e)
		return;
	usmc_conn_get_info(c, &ci);
	/* near the cursors the connection holds, or anything */
	prod = (uint64_t)ci.rx_prod.wrap * RING + ci.rx_prod.count + dp;
	cons = (uint64_t)ci.tx_cons.wrap * RING + ci.tx_cons.count + dc;
	pw = (uint16_t)(prod / RING), pc = (uint32_t)(prod % RING);
	cw = (uint16_t)(cons / RING), cc = (uint32_t)(cons % RING);
	if (sel & 1)
		pc = (uint32_t)take16() * 3;
	if (sel & 2)
		pw = take16();
	h = e->d.addr;
	memset(h, 0, 32);
	h[0] = sel & 4 ? take() : 0xfe;
	memcpy(h + 8, &pw, 2);
	memcpy(h + 10, &pc, 4);
	memcpy(h + 16, &cw, 2);
	memcpy(h + 18, &cc, 4);
	h[22] = sel & 8 ? take() : 0;
	h[23] = sel & 16 ? take() : 0;
	e->signalled = 1;
}

static void check(usmc_conn *c)
{
	if (usmc_conn_readable(c) > RING)
		abort();
	if (bad_ops)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[40000];
	side s[2];
	usmc_conn *c[2];
	dir_state ds[2]; /* ds[i]: from side i to side 1 - i */
	usmc_clc_msg p, ac, cf;
	usmc_tstamp now = 1;

	fuzz_input_set(data, size);
	memset(ds, 0, sizeof(ds));
	bad_ops = 0;
	side_init(&s[0], 0x1111, 0xaaaa, 0, 16384);
	side_init(&s[1], 0x1111, 0xbbbb, 0, 16384);
	c[0] = conn_new(&s[0], USMC_ROLE_CLIENT);
	c[1] = conn_new(&s[1], USMC_ROLE_SERVER);
	clc_move(c[0], c[1], &p);
	clc_move(c[1], c[0], &ac);
	clc_move(c[0], c[1], &cf);
	if (usmc_conn_get_mode(c[0]) != USMC_MODE_SMCD ||
	    usmc_conn_get_mode(c[1]) != USMC_MODE_SMCD)
		abort();
	{
		uint8_t at = take();

		for (int i = 0; i < 2; i++)
			if ((at >> i) & 1 && attach_peer(c[i]))
				abort();
	}
	while (left) {
		uint8_t op = take();
		int i = op & 1, k = 1 - i;
		size_t n = (size_t)take16() % sizeof(buf) + 1;
		usmc_ssize r;

		switch ((op >> 1) % 12) {
		case 0:
		case 1: /* write */
			for (size_t j = 0; j < n; j++)
				buf[j] = pat(i, ds[i].wrote + j);
			r = usmc_conn_write(c[i], buf, n, now);
			if (r > 0)
				ds[i].wrote += (uint64_t)r;
			break;
		case 2:
		case 3: /* read */
			r = usmc_conn_read(c[i], buf, n, now);
			for (usmc_ssize j = 0; j < r && !ds[k].forged; j++)
				if (buf[j] != pat(k, ds[k].got + (uint64_t)j))
					abort();
			if (r > 0)
				ds[k].got += (uint64_t)r;
			if (!ds[k].forged && ds[k].got > ds[k].wrote)
				abort();
			break;
		case 4: /* the runtime pulls one side's operations */
			ism_drain(&s[i]);
			break;
		case 5:
			signals_deliver();
			break;
		case 6:
			forge(c[i]);
			ds[k].forged = 1;
			break;
		case 7:
			usmc_conn_shutdown_write(c[i], now);
			break;
		case 8:
			if (op & 0x80)
				usmc_conn_close(c[i], now);
			else if (op & 0x40)
				usmc_conn_abort(c[i], now);
			break;
		case 9: /* a signal naming another DMB */
			usmc_conn_on_dmb_signal(c[i], take16(), now);
			break;
		case 10:
			now += (usmc_tstamp)take16() * 100000;
			usmc_ctx_handle_expiry(s[0].ctx, now);
			usmc_ctx_handle_expiry(s[1].ctx, now);
			break;
		default: /* a well-behaved runtime step */
			settle(&s[0], c[0], &s[1], c[1]);
			break;
		}
		check(c[0]);
		check(c[1]);
	}
	/* the end: both close, everything is given back */
	usmc_conn_close(c[0], now);
	usmc_conn_close(c[1], now);
	settle(&s[0], c[0], &s[1], c[1]);
	now += 5 * USMC_NS_PER_SEC;
	usmc_ctx_handle_expiry(s[0].ctx, now);
	usmc_ctx_handle_expiry(s[1].ctx, now);
	settle(&s[0], c[0], &s[1], c[1]);
	check(c[0]);
	check(c[1]);
	side_fini(&s[0]);
	side_fini(&s[1]);
	if (ndmbs())
		abort();
	return 0;
}
