/* SPDX-License-Identifier: MIT */
/*
 * LLC flows against Linux: requests captured from the kernel 6.1 peer
 * (tests/conformance, smcr-a-session and smcr-b-lgr-reuse) are fed to
 * a usmc client over the sim fabric, and its answers must be the bytes the
 * kernel client answered with in the same capture.
 */
#include "usmc_clc.h"
#include "usmc_core_test.h"
#include "usmc_llc.h"

/* request (server -> client), the kernel client's answer */
static const struct {
	const char *name, *req, *resp;
} cases[] = {
	{"ADD_LINK_V2 (a #17 -> #19)",
	 "22580000525400000001000000000000000000000000ffff0a090001000012020356"
	 "b2ef0000000000000000800000000000000000000000ffff0a090001000000000000"
	 "00000100000003b60000058eff40b18c84670000",
	 "222c00c0525400000001000000000000000000000000ffff0a090001000012020356"
	 "b2ef0000000000000000"},
	{"CONFIRM_RKEY_V2 (b #7 -> #9)",
	 "262c000000000003b6ff40b18c8467000000000000000000000000000000000000000"
	 "0000000000000000000",
	 "262c008000000003b6ff40b18c8467000000000000000000000000000000000000000"
	 "0000000000000000000"},
	{"DELETE_RKEY_V2 (a #286 -> #292)",
	 "292c000001000000000003b6000000000000000000000000000000000000000000000"
	 "0000000000000000000",
	 "292c00800100000000000000000000000000000000000000000000000000000000000"
	 "0"
	 "000000000000000000"},
};

static void test_kernel_requests(void)
{
	usmc_sim *sim = usmc_sim_new(70);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c));
	usmc_conn_get_info(c->conn, &ci);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint8_t req[128], want[64];
		int nreq = usmc_test_hex(cases[k].req, req, sizeof(req));
		int nw = usmc_test_hex(cases[k].resp, want, sizeof(want));
		const usmc_sim_trace *tr;
		size_t n;

		CU_ASSERT_TRUE_FATAL(nreq >= 44 && nw == 44);
		usmc_sim_trace_clear(sim);
		USMC_ASSERT_EQ_FATAL(
			usmc_sim_inject_send(
				sim, usmc_sim_link_by_qpn(sim, ci.peer_qpn),
				req, (size_t)nreq),
			0);
		usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
		tr = usmc_sim_get_trace(sim, &n);
		/* the forged request, then the client's one answer */
		USMC_ASSERT_EQ_FATAL(n, 2);
		USMC_ASSERT_EQ(tr[1].from, 1);
		USMC_ASSERT_EQ(tr[1].len, 44);
		if (memcmp(tr[1].msg, want, 44))
			fprintf(stderr, "%s: answer differs\n", cases[k].name);
		USMC_ASSERT_MEM_EQ(tr[1].msg, want, 44);
	}
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_sim_del(sim);
}

/* A TEST_LINK request is echoed with the response flag. */
static void test_testlink_echo(void)
{
	usmc_sim *sim = usmc_sim_new(71);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;
	usmc_llc_msg m;
	uint8_t buf[44];
	const usmc_sim_trace *tr;
	size_t n;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	usmc_conn_get_info(c->conn, &ci);
	usmc_llc_msg_init(&m, SMC_LLC_TEST_LINK, 2, 0);
	for (int i = 0; i < 16; i++)
		m.test_link.user_data[i] = (uint8_t)(0xa0 + i);
	USMC_ASSERT_EQ_FATAL(usmc_llc_encode(buf, sizeof(buf), &m), 44);
	usmc_sim_trace_clear(sim);
	usmc_sim_inject_send(sim, usmc_sim_link_by_qpn(sim, ci.peer_qpn), buf,
			     44);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	tr = usmc_sim_get_trace(sim, &n);
	USMC_ASSERT_EQ_FATAL(n, 2);
	buf[3] |= SMC_LLC_FLAG_RESP;
	USMC_ASSERT_MEM_EQ(tr[1].msg, buf, 44);
	usmc_sim_del(sim);
}

/* The CONFIRM_LINK pair usmc sends matches the kernel's layout: flags,
 * link number 1, link user id lgr|link, max links 2, and (v2.0 peers) no
 * max_conns. */
static void test_confirm_link_layout(void)
{
	usmc_sim *sim = usmc_sim_new(72);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	const usmc_sim_trace *tr;
	usmc_llc_msg req, resp;
	usmc_conn_info si, ci;
	size_t n;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	tr = usmc_sim_get_trace(sim, &n);
	CU_ASSERT_TRUE_FATAL(n >= 2);
	USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&req, tr[0].msg, 44), 44);
	USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&resp, tr[1].msg, 44), 44);
	USMC_ASSERT_EQ(req.hdr.type, SMC_LLC_CONFIRM_LINK);
	USMC_ASSERT_EQ(req.hdr.flags, 0x03);
	USMC_ASSERT_EQ(resp.hdr.flags, 0x83);
	USMC_ASSERT_EQ(req.confirm_link.link_num, 1);
	USMC_ASSERT_EQ(resp.confirm_link.link_num, 1);
	usmc_conn_get_info(s->conn, &si);
	usmc_conn_get_info(c->conn, &ci);
	USMC_ASSERT_EQ(req.confirm_link.link_uid, si.lgr_id | 1);
	USMC_ASSERT_EQ(req.confirm_link.max_links, 2);
	/* usmc proposes v2.1, so max_conns is negotiated and announced */
	USMC_ASSERT_EQ(req.confirm_link.max_conns, 255);
	USMC_ASSERT_EQ(req.confirm_link.sender_qp_num, ci.peer_qpn);
	USMC_ASSERT_EQ(resp.confirm_link.sender_qp_num, si.peer_qpn);
	usmc_sim_del(sim);
}

/* The close the kernel did in smcr-a-session (#279, #282, #284): client
 * shutdown(SHUT_WR) -> CDC flags 0x80; server reads EOF and closes ->
 * 0x40; client closes -> 0xc0. Same CDCs, same order, same states. */
static void test_close_cdcs_as_kernel(void)
{
	usmc_sim *sim = usmc_sim_new(73);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	const usmc_sim_trace *tr;
	uint8_t buf[8];
	size_t n;
	int k = 0;
	static const struct {
		int from;
		uint8_t flags;
	} want[] = {{1, 0x80}, {2, 0x40}, {1, 0xc0}};

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	usmc_sim_trace_clear(sim);
	usmc_conn_shutdown_write(c->conn, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(
		usmc_conn_read(s->conn, buf, sizeof(buf), usmc_sim_now(sim)),
		0);
	usmc_conn_close(s->conn, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_APPFINCLOSEWAIT);
	usmc_conn_close(c->conn, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
	tr = usmc_sim_get_trace(sim, &n);
	for (size_t i = 0; i < n; i++) {
		if (tr[i].msg[0] != 0xfe)
			continue;
		CU_ASSERT_TRUE_FATAL(k < 3);
		USMC_ASSERT_EQ(tr[i].from, want[k].from);
		USMC_ASSERT_EQ(tr[i].msg[25], want[k].flags);
		k++;
	}
	USMC_ASSERT_EQ(k, 3);
	usmc_sim_del(sim);
}

/* DELETE_LINK for an unknown link is answered NOLNK and changes nothing;
 * for our only link it is answered and the lgr goes (no failover target);
 * DELETE_LINK ALL ends the lgr, answered with a DELETE_LINK ALL of ours (as
 * the kernel's smc_lgr_cleanup), which the forged sender's core answers in
 * turn. */
static void delete_link(int kind)
{
	usmc_sim *sim = usmc_sim_new(74 + (uint64_t)kind);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;
	usmc_llc_msg m, r;
	uint8_t buf[44];
	const usmc_sim_trace *tr;
	size_t n;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	usmc_conn_get_info(c->conn, &ci);
	usmc_llc_msg_init(&m, SMC_LLC_DELETE_LINK, 2,
			  kind == 2 ? SMC_LLC_FLAG_DEL_LINK_ALL |
					      SMC_LLC_FLAG_DEL_LINK_ORDERLY
				    : SMC_LLC_FLAG_DEL_LINK_ORDERLY);
	m.delete_link.link_num = kind == 0 ? 7 : (kind == 1 ? ci.link_id : 0);
	m.delete_link.reason = SMC_LLC_DEL_LOST_PATH;
	USMC_ASSERT_EQ_FATAL(usmc_llc_encode(buf, sizeof(buf), &m), 44);
	usmc_sim_trace_clear(sim);
	usmc_sim_inject_send(sim, usmc_sim_link_by_qpn(sim, ci.peer_qpn), buf,
			     44);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	tr = usmc_sim_get_trace(sim, &n);
	if (kind == 2) {
		USMC_ASSERT_EQ_FATAL(n, 3);
		USMC_ASSERT_EQ(tr[1].from, 1);
		USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&r, tr[1].msg, 44), 44);
		USMC_ASSERT_EQ(r.hdr.type, SMC_LLC_DELETE_LINK);
		USMC_ASSERT_EQ(r.hdr.flags, SMC_LLC_FLAG_DEL_LINK_ALL);
		USMC_ASSERT_EQ(r.delete_link.reason,
			       SMC_LLC_DEL_PROG_INIT_TERM);
	} else {
		CU_ASSERT_TRUE_FATAL(n >= 2);
		USMC_ASSERT_EQ(tr[1].from, 1);
		USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&r, tr[1].msg, 44), 44);
		USMC_ASSERT_EQ(r.hdr.type, SMC_LLC_DELETE_LINK);
		CU_ASSERT_TRUE(r.hdr.flags & SMC_LLC_FLAG_RESP);
		USMC_ASSERT_EQ(r.delete_link.reason,
			       kind == 0 ? SMC_LLC_DEL_NOLNK : 0);
	}
	if (kind == 0) {
		CU_ASSERT_TRUE(established(c));
		USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	} else if (kind == 1) {
		/* our only link, no data moved yet: TCP fallback */
		USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
		USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK], 1);
		USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
			       SMC_CLC_DECL_NOACTLINK);
		usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
		CU_ASSERT_PTR_NULL(
			usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	} else {
		USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
		USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_CONNABORTED);
		usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
		CU_ASSERT_PTR_NULL(
			usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	}
	usmc_sim_del(sim);
}

static void test_delete_link(void)
{
	for (int k = 0; k < 3; k++)
		delete_link(k);
}

static CU_TestInfo llc_tests[] = {
	{"kernel_requests_answered_identically", test_kernel_requests},
	{"testlink_echo", test_testlink_echo},
	{"confirm_link_layout", test_confirm_link_layout},
	{"close_cdcs_as_kernel", test_close_cdcs_as_kernel},
	{"delete_link", test_delete_link},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_llc", llc_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
