/* SPDX-License-Identifier: MIT */
/*
 * A hostile peer against live core state machines. Two contexts on the sim
 * fabric set up a connection; then the input is a program of operations:
 * forged SENDs (any LLC/CDC bytes) and structured CDCs into either
 * side's connection, application writes/reads/closes on both sides, time passing,
 * raw CLC messages into fresh server and client connections, and (each
 * side has two devices on one pnet, so link groups have two links) links
 * going down, devices coming back and long (v2) LLC messages. Whatever
 * happens, the core must not crash, leak, break its cursor invariants, or
 * make an RDMA access outside registered memory (the sim counts rkey,
 * bounds and lkey violations).
 */
#include <stdlib.h>
#include <string.h>

#include "usmc_cdc.h"
#include "usmc_core.h"
#include "usmc_core_int.h"
#include "usmc_sim.h"
#include "fuzz_input.h"

static uint32_t qpn[2]; /* [0]: the server's QP, [1]: the client's */
static int dir;		/* forge towards: 0 the client, 1 the server */

/* The QP a forged message leaves from: the victim's peer. */
static usmc_link *from_link(usmc_sim *sim)
{
	return usmc_sim_link_by_qpn(sim, qpn[dir]);
}

static void forge_cdc(usmc_sim *sim, usmc_conn *victim)
{
	usmc_conn_info ci;
	usmc_cdc_msg m;
	uint8_t buf[44];
	uint8_t sel = take();
	int16_t dseq = (int8_t)take();
	int32_t dprod = (int16_t)take16(), dcons = (int16_t)take16();
	uint32_t size;
	uint64_t prod, cons;

	usmc_conn_get_info(victim, &ci);
	size = ci.rmb_size ? ci.rmb_size : 16384;
	memset(&m, 0, sizeof(m));
	m.seqno = (uint16_t)(ci.rx_seq + dseq);
	m.token = (sel & 1) ? ci.local_token : ci.local_token ^ take();
	if (!m.token)
		m.token = 1;
	prod = (uint64_t)ci.rx_prod.wrap * size + ci.rx_prod.count;
	prod = (uint64_t)((int64_t)prod + dprod * (sel & 2 ? 64 : 1));
	m.prod.wrap = (uint16_t)(prod / size);
	m.prod.count = (uint32_t)(prod % size);
	if (sel & 4)
		m.prod.count += size; /* out of range */
	size = ci.peer_rmb_size ? ci.peer_rmb_size : 16384;
	cons = (uint64_t)ci.tx_cons.wrap * size + ci.tx_cons.count;
	cons = (uint64_t)((int64_t)cons + dcons);
	m.cons.wrap = (uint16_t)(cons / size);
	m.cons.count = (uint32_t)(cons % size);
	m.prod_flags = take();
	m.conn_state_flags = take();
	usmc_cdc_encode(buf, sizeof(buf), &m);
	usmc_sim_inject_send(sim, from_link(sim), buf, 44);
}

static void app_rw(usmc_sim *sim, usmc_conn *conn, int write, size_t n)
{
	static uint8_t buf[70000];

	if (n > sizeof(buf))
		n = sizeof(buf);
	if (write) {
		memset(buf, 0xa5, n);
		usmc_conn_write(conn, buf, n, usmc_sim_now(sim));
	} else {
		usmc_conn_read(conn, buf, n, usmc_sim_now(sim));
	}
}

/* Cursor and bookkeeping invariants of every connection and link: a
 * violation means hostile input corrupted state, so stop right there. */
static void check(usmc_ctx *ctx)
{
	for (usmc_conn *c = ctx->conns; c; c = c->next) {
		if (c->tx_fin > c->tx_sent || c->tx_sent > c->tx_prep ||
		    c->rx_cons > c->rx_prod || c->rx_cons_sent > c->rx_cons ||
		    c->peer_cons > c->tx_sent)
			abort();
		if (c->sndbuf && c->tx_prep - c->tx_fin > c->sndbuf->size)
			abort();
		if (c->rmb && c->rx_prod - c->rx_cons_sent > c->rmb->size)
			abort();
		if (c->peer_rmb_size &&
		    c->tx_sent - c->peer_cons > c->peer_rmb_size)
			abort();
		if (c->lgr && c->lgr->conns[c->token & 0xff] != c)
			abort();
		/* never on a link its group no longer has */
		if (c->lgr && c->link &&
		    c->lgr->links[c->link->link_idx] != c->link)
			abort();
	}
	for (usmc_lgr *l = ctx->lgrs; l; l = l->next) {
		unsigned int n = 0;

		for (int i = 1; i <= USMC_CONNS_MAX; i++)
			if (l->conns[i])
				n++;
		if (n != l->nconns)
			abort();
		for (int i = 0; i < USMC_LINKS_MAX; i++)
			if (l->links[i] &&
			    l->links[i]->slots_used > l->links[i]->nslots)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	usmc_sim *sim = usmc_sim_new(1);
	usmc_settings st;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s, *x = NULL;
	int steps = 0;

	fuzz_input_set(data, size);
	usmc_settings_default(&st);
	st.sndbuf_size = st.rmb_size = 16384;
	st.testlink_time = 5 * USMC_NS_PER_SEC;
	st.ndevices = 2;
	memcpy(st.devices[0].pnet_id, "FUZZ", 4);
	memcpy(st.devices[1].pnet_id, "FUZZ", 4);
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	if (!a || !b || usmc_sim_connect(sim, a, b, &c, &s))
		abort();
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * USMC_NS_PER_SEC);
	if (usmc_conn_get_mode(c->conn) != USMC_MODE_SMCR)
		abort();
	{
		usmc_conn_info ci;

		usmc_conn_get_info(c->conn, &ci);
		qpn[0] = ci.peer_qpn;
		usmc_conn_get_info(s->conn, &ci);
		qpn[1] = ci.peer_qpn;
	}
	while (left && steps++ < 64) {
		uint8_t op = take(), n;
		uint8_t raw[256];

		/* the top bit picks the victim of forged messages */
		dir = op >> 7;
		op = (uint8_t)((op & 0x7f) % 14);

		switch (op) {
		case 0: /* forged raw SEND into the client */
			n = take() % 100;
			for (uint8_t i = 0; i < n; i++)
				raw[i] = take();
			usmc_sim_inject_send(sim, from_link(sim), raw, n);
			break;
		case 1: /* forged 44-byte LLC into the client, type chosen */
			memset(raw, 0, 44);
			raw[0] = take();
			raw[1] = 44;
			raw[3] = take();
			for (int i = 4; i < 44 && left; i++)
				raw[i] = take();
			usmc_sim_inject_send(sim, from_link(sim), raw, 44);
			break;
		case 2:
			forge_cdc(sim, dir ? s->conn : c->conn);
			break;
		case 3:
			app_rw(sim, c->conn, 1, (size_t)take() * 97);
			break;
		case 4:
			app_rw(sim, s->conn, 1, (size_t)take() * 131);
			break;
		case 5:
			app_rw(sim, take() & 1 ? c->conn : s->conn, 0,
			       (size_t)take() * 211);
			break;
		case 6:
			usmc_sim_run(sim, usmc_sim_now(sim) +
						  (usmc_tstamp)take() * 100 *
							  USMC_NS_PER_MS);
			break;
		case 7: {
			usmc_conn *t = take() & 1 ? c->conn : s->conn;
			uint8_t k = take() % 3;

			if (k == 0)
				usmc_conn_shutdown_write(t, usmc_sim_now(sim));
			else if (k == 1)
				usmc_conn_close(t, usmc_sim_now(sim));
			else
				usmc_conn_abort(t, usmc_sim_now(sim));
			break;
		}
		case 8: /* raw CLC into a fresh server or client */
		case 9:
			if (usmc_sim_ep_single(sim, op == 8 ? b : a,
					       op == 8 ? USMC_ROLE_SERVER
						       : USMC_ROLE_CLIENT,
					       &x))
				break;
			n = take();
			for (uint8_t i = 0; i < n; i++)
				raw[i] = take();
			usmc_sim_clc_inject(x, raw, n);
			break;
		case 10: /* the next CLC message for that connection */
			n = take();
			for (uint8_t i = 0; i < n; i++)
				raw[i] = take();
			if (x)
				usmc_sim_clc_inject(x, raw, n);
			break;
		case 11: { /* a link of either side goes down */
			usmc_sim_node *nd = take() & 1 ? b : a;
			usmc_lgr *l =
				usmc_ctx_next_lgr(usmc_sim_node_ctx(nd), NULL);
			uint8_t i = take() % USMC_LINKS_MAX;

			if (l && l->links[i])
				usmc_link_down_why(
					l->links[i],
					(usmc_link_down_reason)(take() % 7),
					usmc_sim_now(sim));
			break;
		}
		case 12: /* a device of either side is up (again) */
			n = take();
			usmc_ctx_device_up(usmc_sim_node_ctx(n & 1 ? b : a),
					   (n >> 1) & 1, usmc_sim_now(sim));
			break;
		case 13: { /* forged v2 LLC of up to 255 bytes */
			uint8_t len = take();

			if (len < 44)
				len = 44;
			memset(raw, 0, sizeof(raw));
			raw[0] = (uint8_t)(0x20 | (take() & 0x0f));
			raw[1] = len; /* little-endian length, as Linux */
			raw[3] = take();
			for (int i = 4; i < len && left; i++)
				raw[i] = take();
			usmc_sim_inject_send(sim, from_link(sim), raw, len);
			break;
		}
		}
		usmc_sim_run_idle(sim, usmc_sim_now(sim) + USMC_NS_PER_SEC);
		check(usmc_sim_node_ctx(a));
		check(usmc_sim_node_ctx(b));
	}
	usmc_sim_run(sim, usmc_sim_now(sim) + 30 * USMC_NS_PER_SEC);
	if (usmc_sim_get_stats(sim)->access_errors)
		abort(); /* the core made an RDMA access it was not given */
	usmc_sim_del(sim);
	return 0;
}
