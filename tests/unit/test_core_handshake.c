/* SPDX-License-Identifier: MIT */
/*
 * CLC handshake and link group set-up over the sim fabric: first contact
 * (Proposal/Accept/Confirm, CONFIRM_LINK, ADD_LINK rejected), link group
 * reuse with CONFIRM_RKEY, v1 and v2 negotiation, declines and fallback,
 * CLC timeouts and malformed CLC.
 */
#include "usmc_clc.h"
#include "usmc_core_test.h"
#include "usmc_llc.h"

#define MSEC USMC_NS_PER_MS

/* The CLC messages in |buf| (several back to back): their types. */
static int clc_types(const uint8_t *buf, size_t len, uint8_t *types, int max,
		     usmc_clc_msg *last)
{
	int n = 0;

	while (len >= 8 && n < max) {
		usmc_clc_msg m;
		usmc_ssize k = usmc_clc_decode(buf, len, &m);

		if (k <= 0)
			return -1;
		types[n++] = m.hdr.type;
		if (last)
			*last = m;
		buf += k;
		len -= (size_t)k;
	}
	return n;
}

/* The conformance capture smcr-a-session, Linux 6.1 both ends: the
 * client's Proposal (frame 7: v2 only, UEID "SEEDTEST", no v1 area) and
 * the server's Accept (frame 9: v2, first contact, release 0). */
static const char linux_prop_hex[] =
	"e2d4c3d901009c2200000000000000000000000000000000000000000000"
	"0000000000000000000000000000000000000000001c0000000000000000"
	"000000000000000000000000000000000000000001000000000000000000"
	"0000000000000000ffff0a09000200000000000000000000000000000000"
	"534545445445535420202020202020202020202020202020202020202020"
	"2020e2d4c3d9";
static const char linux_acc_hex[] =
	"e2d4c3d90200a028eb1052540000000100000000000000000000ffff0a09"
	"0001525400000001000011000003b601000000012300ff40b18c84670000"
	"0014fd115345454454455354202020202020202020202020202020202020"
	"202020202020000000000000000080200000286e6f6e6529202020202020"
	"202020202020202020202020202020202020202000000000000000000000"
	"000000000000e2d4c3d9";

/* Settings whose UEID is the captures' "SEEDTEST" (blank padded). */
static void seedtest_settings(usmc_settings *st)
{
	usmc_settings_default(st);
	memset(st->ueid, ' ', sizeof(st->ueid));
	memcpy(st->ueid, "SEEDTEST", 8);
}

/* One endpoint of |role| on a new node with seedtest_settings. */
static usmc_sim_ep *seedtest_ep(usmc_sim *sim, usmc_role role)
{
	usmc_settings st;
	usmc_sim_ep *ep = NULL;

	seedtest_settings(&st);
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_ep_single(sim, usmc_sim_node_new(sim, &st), role, &ep),
		0);
	return ep;
}

/* How many Declines |ep| sent. */
static int sent_declines(const usmc_sim_ep *ep)
{
	uint8_t types[8];
	int n = clc_types(ep->clc_sent, ep->clc_sent_len, types, 8, NULL),
	    k = 0;

	for (int i = 0; i < n; i++)
		k += types[i] == SMC_CLC_DECLINE;
	return k;
}

/* Feeds |ep| a v2 Decline with |diag| from the peer with the 8-byte
 * |peer_id|; |d| is left holding it. */
static void inject_decline(usmc_sim_ep *ep, uint32_t diag, const char *peer_id,
			   usmc_clc_msg *d)
{
	uint8_t dbuf[64];
	usmc_ssize dn;

	usmc_clc_decline_init(d, diag, SMC_V2, (const uint8_t *)peer_id);
	dn = usmc_clc_encode(d, dbuf, sizeof(dbuf));
	CU_ASSERT_TRUE_FATAL(dn > 0);
	usmc_sim_clc_inject(ep, dbuf, (size_t)dn);
}

/* |ep| took the peer's Decline (diagnosis |diag|): it fell back with
 * PEERDECL at once and, run on to |until|, sent no Decline back and fell
 * back once. */
static void assert_took_decline(usmc_sim *sim, usmc_sim_ep *ep, uint32_t diag,
				usmc_tstamp until)
{
	USMC_ASSERT_EQ(usmc_conn_get_mode(ep->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(ep->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(ep->conn), diag);
	usmc_sim_run(sim, until);
	USMC_ASSERT_EQ(sent_declines(ep), 0);
	USMC_ASSERT_EQ(ep->ev[USMC_EV_FALLBACK], 1);
}

/* Index of the first trace entry from |node| with type byte |t| and
 * flags byte |f| at or after |from|; -1 if none. */
static int trace_find(usmc_sim *sim, int node, uint8_t t, uint8_t f, int from)
{
	size_t n;
	const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);

	for (size_t i = (size_t)from; i < n; i++)
		if (tr[i].from == node && tr[i].msg[0] == t &&
		    tr[i].msg[3] == f)
			return (int)i;
	return -1;
}

static void test_first_contact_v2(void)
{
	usmc_sim *sim = usmc_sim_new(1);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	uint8_t types[8];
	usmc_clc_msg m;
	usmc_conn_info ci, si;
	int i1, i2, i3, i4;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE(established(c));
	CU_ASSERT_TRUE(established(s));
	/* client sent Proposal then Confirm, server one Accept */
	USMC_ASSERT_EQ(clc_types(c->clc_sent, c->clc_sent_len, types, 8, &m),
		       2);
	USMC_ASSERT_EQ(types[0], SMC_CLC_PROPOSAL);
	USMC_ASSERT_EQ(types[1], SMC_CLC_CONFIRM);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
	CU_ASSERT_TRUE(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	USMC_ASSERT_EQ(m.u.ac.gid_cnt, 1);
	USMC_ASSERT_EQ(clc_types(s->clc_sent, s->clc_sent_len, types, 8, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_ACCEPT);
	CU_ASSERT_TRUE(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	USMC_ASSERT_EQ(m.u.ac.rmbe_idx, 1);
	USMC_ASSERT_EQ(usmc_clc_uncompress_bufsize(m.u.ac.rmbe_size), 65536);

	/* LLC as Linux: CONFIRM_LINK req (server), resp (client), ADD_LINK
	 * req (server), ADD_LINK reject (client), all v2 type numbers */
	i1 = trace_find(sim, 2, SMC_LLC_CONFIRM_LINK_V2, 0x03, 0);
	i2 = trace_find(sim, 1, SMC_LLC_CONFIRM_LINK_V2, 0x83, 0);
	i3 = trace_find(sim, 2, SMC_LLC_ADD_LINK_V2, 0x00, 0);
	i4 = trace_find(sim, 1, SMC_LLC_ADD_LINK_V2, 0xc0, 0);
	CU_ASSERT_TRUE(i1 >= 0 && i2 > i1 && i3 > i2 && i4 > i3);

	usmc_conn_get_info(c->conn, &ci);
	usmc_conn_get_info(s->conn, &si);
	USMC_ASSERT_EQ(ci.smc_version, 2);
	USMC_ASSERT_EQ(si.smc_version, 2);
	USMC_ASSERT_EQ(ci.peer_token, si.local_token);
	USMC_ASSERT_EQ(si.peer_token, ci.local_token);
	CU_ASSERT_NOT_EQUAL(ci.local_token, 0);
	USMC_ASSERT_EQ(ci.link_id, si.link_id);
	USMC_ASSERT_EQ(ci.lgr_id != 0, 1);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);

	/* a one-byte echo proves the path */
	{
		uint8_t x = 0x5a, y = 0;
		usmc_tstamp now = usmc_sim_now(sim);

		USMC_ASSERT_EQ(usmc_conn_write(c->conn, &x, 1, now), 1);
		usmc_sim_run_idle(sim, now + SEC);
		USMC_ASSERT_EQ(usmc_conn_readable(s->conn), 1);
		USMC_ASSERT_EQ(usmc_conn_read(s->conn, &y, 1, now), 1);
		USMC_ASSERT_EQ(y, 0x5a);
		CU_ASSERT_TRUE(s->ev[USMC_EV_READABLE] >= 1);
	}
	usmc_sim_del(sim);
}

static void test_first_contact_v1(void)
{
	usmc_sim *sim = usmc_sim_new(2);
	usmc_settings st;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;
	int i1, i3;

	usmc_settings_default(&st);
	st.smc_versions = USMC_VERSION_V1;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, NULL);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE(established(c));
	CU_ASSERT_TRUE(established(s));
	usmc_conn_get_info(c->conn, &ci);
	USMC_ASSERT_EQ(ci.smc_version, 1);
	i1 = trace_find(sim, 2, SMC_LLC_CONFIRM_LINK, 0x03, 0);
	i3 = trace_find(sim, 1, SMC_LLC_ADD_LINK, 0xc0, 0);
	CU_ASSERT_TRUE(i1 >= 0 && i3 > i1);
	usmc_sim_del(sim);
}

/* With rmb_keep_rkey 0 (the kernel's way), a second connection between
 * the same nodes reuses the link group and runs CONFIRM_RKEY both ways;
 * closing runs DELETE_RKEY. */
static void test_lgr_reuse(void)
{
	usmc_sim *sim = usmc_sim_new(3);
	usmc_settings st;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c1, *s1, *c2, *s2;
	usmc_conn_info i1, i2;
	uint8_t types[8];
	usmc_clc_msg m;
	size_t ntr;

	usmc_settings_default(&st);
	st.rmb_keep_rkey = 0;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c1, &s1), 0);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c2, &s2), 0);
	CU_ASSERT_TRUE(established(c2));
	CU_ASSERT_TRUE(established(s2));
	usmc_conn_get_info(c1->conn, &i1);
	usmc_conn_get_info(c2->conn, &i2);
	USMC_ASSERT_EQ(i1.lgr_id, i2.lgr_id);
	CU_ASSERT_NOT_EQUAL(i1.local_token, i2.local_token);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->qps, 2);
	/* Accept and Confirm without first contact */
	USMC_ASSERT_EQ(clc_types(s2->clc_sent, s2->clc_sent_len, types, 8, &m),
		       1);
	CU_ASSERT_FALSE(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	/* CONFIRM_RKEY req+resp from each side, no CONFIRM_LINK */
	CU_ASSERT_TRUE(trace_find(sim, 2, SMC_LLC_CONFIRM_RKEY_V2, 0, 0) >= 0);
	CU_ASSERT_TRUE(trace_find(sim, 1, SMC_LLC_CONFIRM_RKEY_V2, 0x80, 0) >=
		       0);
	CU_ASSERT_TRUE(trace_find(sim, 1, SMC_LLC_CONFIRM_RKEY_V2, 0, 0) >= 0);
	CU_ASSERT_TRUE(trace_find(sim, 2, SMC_LLC_CONFIRM_RKEY_V2, 0x80, 0) >=
		       0);
	CU_ASSERT_TRUE(trace_find(sim, 2, SMC_LLC_CONFIRM_LINK_V2, 0x03, 0) <
		       0);

	/* orderly close of the second: DELETE_RKEY both ways */
	usmc_sim_trace_clear(sim);
	usmc_conn_close(c2->conn, usmc_sim_now(sim));
	usmc_conn_close(s2->conn, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
	USMC_ASSERT_EQ(usmc_conn_state(c2->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_conn_state(s2->conn), SMC_CLOSED);
	CU_ASSERT_TRUE(trace_find(sim, 1, SMC_LLC_DELETE_RKEY_V2, 0, 0) >= 0);
	CU_ASSERT_TRUE(trace_find(sim, 2, SMC_LLC_DELETE_RKEY_V2, 0x80, 0) >=
		       0);
	CU_ASSERT_TRUE(trace_find(sim, 2, SMC_LLC_DELETE_RKEY_V2, 0, 0) >= 0);
	CU_ASSERT_TRUE(trace_find(sim, 1, SMC_LLC_DELETE_RKEY_V2, 0x80, 0) >=
		       0);
	usmc_sim_get_trace(sim, &ntr);
	CU_ASSERT_TRUE(ntr >= 6);

	/* a third connection takes the pooled buffers (no new MR) */
	{
		uint64_t mrs = usmc_sim_get_stats(sim)->mrs;
		usmc_sim_ep *c3, *s3;

		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c3, &s3), 0);
		CU_ASSERT_TRUE(established(c3));
		USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->mrs, mrs);
	}
	usmc_sim_del(sim);
}

static int trace_count(usmc_sim *sim, int node, uint8_t t)
{
	size_t n;
	const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);
	int k = 0;

	for (size_t i = 0; i < n; i++)
		k += tr[i].from == node && tr[i].msg[0] == t;
	return k;
}

/* Sends |n| bytes of a pattern seeded by |seed| from |w| to |r| and
 * checks every byte read. */
static void echo_bytes(usmc_sim *sim, usmc_sim_ep *w, usmc_sim_ep *r, size_t n,
		       unsigned int seed)
{
	uint8_t out[3000], in[3000];
	size_t got = 0;

	USMC_ASSERT_EQ_FATAL(n <= sizeof(out), 1);
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
	USMC_ASSERT_EQ_FATAL(
		usmc_conn_write(w->conn, out, n, usmc_sim_now(sim)),
		(usmc_ssize)n);
	for (int k = 0; k < 100 && got < n; k++) {
		usmc_ssize g;

		usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC / 10);
		g = usmc_conn_read(r->conn, in + got, n - got,
				   usmc_sim_now(sim));
		if (g > 0)
			got += (size_t)g;
	}
	USMC_ASSERT_EQ(got, n);
	USMC_ASSERT_EQ(memcmp(in, out, n), 0);
}

/* Short-lived connections on one link group (rmb_keep_rkey, the default):
 * a released RMB stays known to the peer, so after the first connection
 * that needed a new RMB (one CONFIRM_RKEY each way), N more sequential
 * connections send no CONFIRM_RKEY and no DELETE_RKEY, make no MR and no
 * QP, and each moves its bytes intact. The CLC still names the rkey, as
 * the kernel's smc_rtoken_add takes a known one again. */
static void test_lgr_reuse_keep_rkey(void)
{
	usmc_sim *sim = usmc_sim_new(31);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c1, *s1, *c, *s;
	uint64_t mrs, qps;
	enum { N = 8 };

	/* c1 holds the first RMBs: the next connection needs new ones */
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c1, &s1), 0);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ(trace_count(sim, 1, SMC_LLC_CONFIRM_RKEY_V2), 2);
	USMC_ASSERT_EQ(trace_count(sim, 2, SMC_LLC_CONFIRM_RKEY_V2), 2);
	echo_bytes(sim, c, s, 1000, 1);
	echo_bytes(sim, s, c, 2000, 2);
	usmc_conn_close(c->conn, usmc_sim_now(sim));
	usmc_conn_close(s->conn, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	usmc_sim_ep_del(c);
	usmc_sim_ep_del(s);
	usmc_sim_trace_clear(sim);
	mrs = usmc_sim_get_stats(sim)->mrs;
	qps = usmc_sim_get_stats(sim)->qps;

	for (int i = 0; i < N; i++) {
		usmc_conn_info ci, c1i;

		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
		CU_ASSERT_TRUE(established(c));
		CU_ASSERT_TRUE(established(s));
		usmc_conn_get_info(c->conn, &ci);
		usmc_conn_get_info(c1->conn, &c1i);
		USMC_ASSERT_EQ(ci.lgr_id, c1i.lgr_id);
		echo_bytes(sim, c, s, 100 + 300 * (size_t)i, 10 + i);
		echo_bytes(sim, s, c, 2900 - 200 * (size_t)i, 20 + i);
		usmc_conn_close(c->conn, usmc_sim_now(sim));
		usmc_conn_close(s->conn, usmc_sim_now(sim));
		usmc_sim_run_idle(sim, usmc_sim_now(sim) + 10 * SEC);
		USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
		USMC_ASSERT_EQ(usmc_conn_state(s->conn), SMC_CLOSED);
		usmc_sim_ep_del(c);
		usmc_sim_ep_del(s);
	}
	USMC_ASSERT_EQ(trace_count(sim, 1, SMC_LLC_CONFIRM_RKEY_V2), 0);
	USMC_ASSERT_EQ(trace_count(sim, 2, SMC_LLC_CONFIRM_RKEY_V2), 0);
	USMC_ASSERT_EQ(trace_count(sim, 1, SMC_LLC_DELETE_RKEY_V2), 0);
	USMC_ASSERT_EQ(trace_count(sim, 2, SMC_LLC_DELETE_RKEY_V2), 0);
	USMC_ASSERT_EQ(trace_count(sim, 2, SMC_LLC_CONFIRM_LINK_V2), 0);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->mrs, mrs);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->qps, qps);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	/* the first connection still works */
	echo_bytes(sim, c1, s1, 3000, 99);
	usmc_sim_del(sim);
}

/* A client with two devices: each connection's Proposal carries the GID
 * and MAC of the device it names, its link records that device, and a
 * link group is only reused by connections on the same device (as
 * smc_conn_create matches lnk->smcibdev). */
static void test_two_devices(void)
{
	usmc_sim *sim = usmc_sim_new(12);
	usmc_settings st;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c[3], *s[3];
	usmc_conn_info ci[3];
	usmc_lgr_info li;
	usmc_clc_msg m;
	uint8_t types[8];
	const usmc_device_info *d0, *d1;
	usmc_conn_params p;
	usmc_conn *bad;

	usmc_settings_default(&st);
	st.ndevices = 2;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, NULL);
	USMC_ASSERT_EQ_FATAL(a && b, 1);
	d0 = usmc_ctx_get_device(usmc_sim_node_ctx(a), 0);
	d1 = usmc_ctx_get_device(usmc_sim_node_ctx(a), 1);
	USMC_ASSERT_EQ_FATAL(d0 && d1, 1);
	CU_ASSERT_PTR_NULL(usmc_ctx_get_device(usmc_sim_node_ctx(a), 2));
	CU_ASSERT_NOT_EQUAL(memcmp(d0->gid, d1->gid, 16), 0);

	for (int i = 0; i < 3; i++) {
		usmc_sim_node_set_dev(a, i == 1 ? 1 : 0);
		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[i], &s[i]), 0);
		CU_ASSERT_TRUE(established(c[i]) && established(s[i]));
		usmc_conn_get_info(c[i]->conn, &ci[i]);
		USMC_ASSERT_EQ_FATAL(clc_types(c[i]->clc_sent,
					       c[i]->clc_sent_len, types, 8,
					       NULL) >= 1,
				     1);
		USMC_ASSERT_EQ_FATAL(usmc_clc_decode(c[i]->clc_sent,
						     c[i]->clc_sent_len,
						     &m) > 0,
				     1);
		USMC_ASSERT_EQ(m.hdr.type, SMC_CLC_PROPOSAL);
		USMC_ASSERT_EQ(
			memcmp(m.u.prop.gid, i == 1 ? d1->gid : d0->gid, 16),
			0);
		USMC_ASSERT_EQ(
			memcmp(m.u.prop.mac, i == 1 ? d1->mac : d0->mac, 6), 0);
		USMC_ASSERT_EQ(memcmp(m.u.prop.roce_gid,
				      i == 1 ? d1->gid : d0->gid, 16),
			       0);
	}
	/* devices 0 and 1: two link groups; the third joins the first */
	CU_ASSERT_NOT_EQUAL(ci[0].lgr_id, ci[1].lgr_id);
	USMC_ASSERT_EQ(ci[0].lgr_id, ci[2].lgr_id);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->qps, 4);
	for (usmc_lgr *g = usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL); g;
	     g = usmc_ctx_next_lgr(usmc_sim_node_ctx(a), g)) {
		usmc_lgr_get_info(g, &li);
		USMC_ASSERT_EQ(li.nlinks, 1);
		USMC_ASSERT_EQ(li.links[0].dev_idx, li.id == ci[1].lgr_id);
	}
	/* byte-exact data both ways on the second device's link group: the
	 * sim refuses an rkey made on another device than the QP's, so the
	 * client's RMB must be registered with device 1 (alloc_mr's dev_idx) */
	for (int dir = 0; dir < 2; dir++) {
		usmc_sim_ep *from = dir ? s[1] : c[1], *to = dir ? c[1] : s[1];
		uint8_t out[3000], in[3000];
		usmc_ssize n;

		for (size_t i = 0; i < sizeof(out); i++)
			out[i] = (uint8_t)(i * 7 + 1 + dir);
		USMC_ASSERT_EQ(usmc_conn_write(from->conn, out, sizeof(out),
					       usmc_sim_now(sim)),
			       (usmc_ssize)sizeof(out));
		usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
		n = usmc_conn_read(to->conn, in, sizeof(in), usmc_sim_now(sim));
		USMC_ASSERT_EQ(n, (usmc_ssize)sizeof(out));
		USMC_ASSERT_EQ(memcmp(in, out, sizeof(out)), 0);
	}
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->access_errors, 0);
	/* the server's own device counts too: the same client device to the
	 * server's second device is a new link group on both ends, although
	 * the peer's GID matches the first one */
	{
		usmc_sim_node *srv = usmc_sim_node_new(sim, &st);
		usmc_sim_ep *c4, *s4, *c5, *s5;
		usmc_conn_info i4, i5;

		USMC_ASSERT_EQ_FATAL(srv != NULL, 1);
		usmc_sim_node_set_dev(a, 0);
		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, srv, &c4, &s4), 0);
		usmc_sim_node_set_dev(srv, 1);
		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, srv, &c5, &s5), 0);
		CU_ASSERT_TRUE(established(c5) && established(s5));
		usmc_conn_get_info(s4->conn, &i4);
		usmc_conn_get_info(s5->conn, &i5);
		CU_ASSERT_NOT_EQUAL(i4.lgr_id, i5.lgr_id);
		/* two links on srv, one per device */
		USMC_ASSERT_EQ_FATAL(usmc_sim_node_link(srv, 1) != NULL, 1);
		USMC_ASSERT_EQ(
			usmc_link_get_dev_idx(usmc_sim_node_link(srv, 0)) +
				usmc_link_get_dev_idx(
					usmc_sim_node_link(srv, 1)),
			1);
	}
	/* a device the context does not have is refused */
	memset(&p, 0, sizeof(p));
	p.role = USMC_ROLE_CLIENT;
	p.dev_idx = 2;
	USMC_ASSERT_EQ(usmc_conn_new(usmc_sim_node_ctx(a), &p,
				     usmc_sim_now(sim), &bad),
		       USMC_ERR_INVALID_ARGUMENT);
	usmc_sim_del(sim);
}

/* Devices added after creation: indexes in order, the limit refused, and
 * the system id taken from the first device when it was left zero. */
static void test_add_device(void)
{
	usmc_sim *sim = usmc_sim_new(13);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_ctx *ctx = usmc_sim_node_ctx(a);
	usmc_device_info dv;
	int i;

	memset(&dv, 0, sizeof(dv));
	dv.mac[5] = 0x42;
	for (i = 1; i < USMC_DEVICES_MAX; i++)
		USMC_ASSERT_EQ(usmc_ctx_add_device(ctx, &dv), i);
	USMC_ASSERT_EQ(usmc_ctx_add_device(ctx, &dv), USMC_ERR_LIMIT);
	USMC_ASSERT_EQ(usmc_ctx_add_device(ctx, NULL),
		       USMC_ERR_INVALID_ARGUMENT);
	USMC_ASSERT_EQ(usmc_ctx_get_device(ctx, USMC_DEVICES_MAX - 1)->mac[5],
		       0x42);
	usmc_sim_del(sim);
}

/* Both nodes connect to each other: two link groups (role is part of the
 * match). */
static void test_lgr_per_role(void)
{
	usmc_sim *sim = usmc_sim_new(4);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c1, *s1, *c2, *s2;
	usmc_conn_info i1, i2;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c1, &s1), 0);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, b, a, &c2, &s2), 0);
	CU_ASSERT_TRUE(established(c2) && established(s2));
	usmc_conn_get_info(c1->conn, &i1);
	usmc_conn_get_info(s2->conn, &i2);
	CU_ASSERT_NOT_EQUAL(i1.lgr_id, i2.lgr_id);
	USMC_ASSERT_EQ(usmc_sim_get_stats(sim)->qps, 4);
	usmc_sim_del(sim);
}

/* Two clients on one server: one lgr per peer, data on both at once. */
static void test_three_nodes(void)
{
	usmc_sim *sim = usmc_sim_new(15);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *srv = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c1, *s1, *c2, *s2;
	usmc_conn_info i1, i2;
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};
	int nlgr = 0;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, srv, &c1, &s1), 0);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, b, srv, &c2, &s2), 0);
	CU_ASSERT_TRUE(established(c1) && established(c2));
	usmc_conn_get_info(s1->conn, &i1);
	usmc_conn_get_info(s2->conn, &i2);
	CU_ASSERT_NOT_EQUAL(i1.lgr_id, i2.lgr_id);
	for (usmc_lgr *l = usmc_ctx_next_lgr(usmc_sim_node_ctx(srv), NULL); l;
	     l = usmc_ctx_next_lgr(usmc_sim_node_ctx(srv), l)) {
		usmc_lgr_info li;

		usmc_lgr_get_info(l, &li);
		USMC_ASSERT_EQ(li.role, USMC_ROLE_SERVER);
		USMC_ASSERT_EQ(li.nconns, 1);
		USMC_ASSERT_EQ(li.nlinks, 1);
		USMC_ASSERT_EQ(li.smc_version, 2);
		USMC_ASSERT_EQ(li.links[0].link_id, 1);
		CU_ASSERT_TRUE(li.links[0].active);
		CU_ASSERT_TRUE(li.links[0].qp_num != 0 &&
			       li.links[0].peer_qpn != 0);
		nlgr++;
	}
	USMC_ASSERT_EQ(nlgr, 2);
	pump_init(&p1, c1, s1, 200000, 41, 7000);
	pump_init(&p2, s2, c2, 200000, 42, 7000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, usmc_sim_now(sim) + 60 * SEC), 0);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	usmc_sim_del(sim);
}

/* The Proposal a Linux 6.1 client sent in the conformance capture
 * (smcr-a-session frame 7: v2 only, UEID "SEEDTEST", no v1 area) gets a
 * v2 first-contact Accept from a usmc server with the same UEID, and a
 * Decline from one without it (v2 drops out, v1 was not offered: no
 * SMC device in common, as smc_listen_find_device ends). */
static void test_linux_proposal(void)
{
	uint8_t prop[256], types[4];
	int n = usmc_test_hex(linux_prop_hex, prop, sizeof(prop));
	usmc_sim *sim = usmc_sim_new(17);
	usmc_settings st;
	usmc_sim_node *b2;
	usmc_sim_ep *s, *s2;
	usmc_clc_msg m;

	USMC_ASSERT_EQ_FATAL(n, 156);
	seedtest_settings(&st); /* the UEID the Accept must carry */
	s = seedtest_ep(sim, USMC_ROLE_SERVER);
	usmc_sim_clc_inject(s, prop, (size_t)n);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(clc_types(s->clc_sent, s->clc_sent_len, types, 4, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_ACCEPT);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
	CU_ASSERT_TRUE(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	USMC_ASSERT_MEM_EQ(m.u.ac.eid, st.ueid, 32);
	USMC_ASSERT_EQ(m.u.ac.release, 0); /* the client is v2.0 */

	b2 = usmc_sim_node_new(sim, NULL); /* UEID "USMC" */
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, b2, USMC_ROLE_SERVER, &s2),
			     0);
	usmc_sim_clc_inject(s2, prop, (size_t)n);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s2->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s2->conn),
		       SMC_CLC_DECL_NOSMCDEV);
	USMC_ASSERT_EQ(clc_types(s2->clc_sent, s2->clc_sent_len, types, 4, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
	usmc_sim_del(sim);
}

/* The Accept a Linux 6.1 server sent in the capture (smcr-a-session
 * frame 9: v2, first contact, release 0) is answered with a v2
 * first-contact Confirm as the kernel client's: the negotiated EID, the
 * server's release, one GID in the list, the smaller QP MTU. */
static void test_linux_accept(void)
{
	uint8_t acc[256], types[4];
	int n = usmc_test_hex(linux_acc_hex, acc, sizeof(acc));
	usmc_sim *sim = usmc_sim_new(18);
	usmc_sim_ep *c;
	usmc_clc_msg in, m;

	CU_ASSERT_TRUE_FATAL(n > 108);
	USMC_ASSERT_EQ_FATAL(usmc_clc_decode(acc, (size_t)n, &in), n);
	c = seedtest_ep(sim, USMC_ROLE_CLIENT);
	c->clc_sent_len = 0; /* forget the Proposal */
	usmc_sim_clc_inject(c, acc, (size_t)n);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(clc_types(c->clc_sent, c->clc_sent_len, types, 4, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_CONFIRM);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V2);
	CU_ASSERT_TRUE(m.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	USMC_ASSERT_MEM_EQ(m.u.ac.eid, in.u.ac.eid, 32);
	USMC_ASSERT_EQ(m.u.ac.release, in.u.ac.release);
	USMC_ASSERT_EQ(m.u.ac.gid_cnt, 1);
	USMC_ASSERT_EQ(m.u.ac.qp_mtu, in.u.ac.qp_mtu < USMC_IB_MTU_1024
					      ? in.u.ac.qp_mtu
					      : USMC_IB_MTU_1024);
	USMC_ASSERT_EQ(m.u.ac.rmbe_idx, 1);
	/* no CONFIRM_LINK from this server: after 4 s the client looks
	 * 1 s more for the server's Decline (smcr_clnt_conf_first_link)
	 * before it declines TIMEOUT_CL itself */
	c->clc_sent_len = 0;
	usmc_sim_run(sim, usmc_sim_now(sim) + 4900 * MSEC);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(c->clc_sent_len, 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 100 * MSEC);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	USMC_ASSERT_EQ(clc_types(c->clc_sent, c->clc_sent_len, types, 4, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_TIMEOUT_CL);
	usmc_sim_del(sim);
}

/* As test_linux_accept, but the server's Decline comes within the
 * client's second after its CONFIRM_LINK wait: the client falls back
 * with PEERDECL and sends no Decline of its own (nothing crosses). */
static void test_linux_accept_peer_declines(void)
{
	uint8_t acc[256];
	int n = usmc_test_hex(linux_acc_hex, acc, sizeof(acc));
	usmc_sim *sim = usmc_sim_new(19);
	usmc_sim_ep *c;
	usmc_clc_msg d;

	c = seedtest_ep(sim, USMC_ROLE_CLIENT);
	usmc_sim_clc_inject(c, acc, (size_t)n);
	USMC_ASSERT_EQ_FATAL(usmc_conn_get_mode(c->conn), USMC_MODE_HANDSHAKE);
	c->clc_sent_len = 0; /* forget the Proposal and the Confirm */
	usmc_sim_run(sim, usmc_sim_now(sim) + 4500 * MSEC);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_HANDSHAKE);
	inject_decline(c, SMC_CLC_DECL_TIMEOUT_CL, "\x52\x54\0\0\0\1\0\0", &d);
	assert_took_decline(sim, c, SMC_CLC_DECL_TIMEOUT_CL,
			    usmc_sim_now(sim) + 5 * SEC);
	USMC_ASSERT_EQ(c->clc_sent_len, 0); /* no CLC message at all */
	usmc_sim_del(sim);
}

/* A well-formed SMC-Dv1 Accept (48 bytes) to an SMC-R Proposal: the
 * client declines MODEUNSUPP (smc_connect_check_aclc) instead of failing
 * the connection with EPROTO. */
static void test_accept_smcd_modeunsupp(void)
{
	static const char acc_hex[] =
		"e2d4c3d90200301900000000000000010000000000000002010100000000"
		"0000000000000000000000000000e2d4c3d9";
	uint8_t acc[64], types[4];
	int n = usmc_test_hex(acc_hex, acc, sizeof(acc));
	usmc_sim *sim = usmc_sim_new(24);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c;
	usmc_clc_msg m;

	USMC_ASSERT_EQ_FATAL(n, 48);
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_CLIENT, &c),
			     0);
	usmc_sim_clc_inject(c, acc, (size_t)n);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_MODEUNSUPP);
	USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(clc_types(c->clc_sent, c->clc_sent_len, types, 4, &m),
		       2);
	USMC_ASSERT_EQ(types[0], SMC_CLC_PROPOSAL);
	USMC_ASSERT_EQ(types[1], SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_MODEUNSUPP);
	usmc_sim_del(sim);
}

static void test_decline_smcd_only(void)
{
	usmc_sim *sim = usmc_sim_new(5);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *s;
	usmc_clc_msg m;
	uint8_t buf[256], types[4];
	usmc_ssize n;

	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, b, USMC_ROLE_SERVER, &s),
			     0);
	/* a v1 proposal that offers SMC-D only */
	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_PROPOSAL;
	m.hdr.version = SMC_V1;
	m.hdr.typev1 = SMC_TYPE_D;
	m.hdr.typev2 = SMC_TYPE_N;
	memcpy(m.u.prop.peer_id, "\x11\x22\x02\x00\x00\x00\x00\x09", 8);
	m.u.prop.smcd_area = true;
	m.u.prop.ism_gid = 0x1234;
	m.u.prop.ipv4_subnet = 0x0a000000;
	m.u.prop.ipv4_prefix_len = 24;
	n = usmc_clc_encode(&m, buf, sizeof(buf));
	CU_ASSERT_TRUE_FATAL(n > 0);
	usmc_sim_clc_inject(s, buf, (size_t)n);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(s->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_NOSMCDDEV);
	USMC_ASSERT_EQ(clc_types(s->clc_sent, s->clc_sent_len, types, 4, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_NOSMCDDEV);
	USMC_ASSERT_EQ(m.hdr.version, SMC_V1);
	usmc_sim_del(sim);
}

/* The server declines (v1 only, different subnet): the client falls back
 * with PEERDECL and keeps the server's diagnosis. */
static void test_client_gets_decline(void)
{
	usmc_sim *sim = usmc_sim_new(6);
	usmc_settings st;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_clc_msg m;
	uint8_t buf[64];
	usmc_ssize n;

	usmc_settings_default(&st);
	st.smc_versions = USMC_VERSION_V1;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_CLIENT, &c),
			     0);
	(void)b;
	(void)s;
	memset(&m, 0, sizeof(m));
	m.hdr.type = SMC_CLC_DECLINE;
	m.hdr.version = SMC_V1;
	m.u.decl.peer_diagnosis = SMC_CLC_DECL_DIFFPREFIX;
	n = usmc_clc_encode(&m, buf, sizeof(buf));
	CU_ASSERT_TRUE_FATAL(n > 0);
	usmc_sim_clc_inject(c, buf, (size_t)n);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c->conn),
		       SMC_CLC_DECL_DIFFPREFIX);
	/* nothing is sent back after a peer's decline */
	{
		uint8_t types[4];

		USMC_ASSERT_EQ(
			clc_types(c->clc_sent, c->clc_sent_len, types, 4, NULL),
			1);
		USMC_ASSERT_EQ(types[0], SMC_CLC_PROPOSAL);
	}
	usmc_sim_del(sim);
}

/* v1 only on both sides, different subnets: the server declines with
 * DIFFPREFIX (SMC-Rv1 needs one subnet), the client falls back with the
 * server's diagnosis; with v2 offered too the same pair goes v2. */
static void test_diffprefix(void)
{
	usmc_sim *sim = usmc_sim_new(7);
	usmc_settings st;
	usmc_sim_node *a, *b, *a2, *b2;
	usmc_sim_ep *c, *s;

	usmc_settings_default(&st);
	st.smc_versions = USMC_VERSION_V1;
	a = usmc_sim_node_new(sim, &st);
	b = usmc_sim_node_new(sim, &st);
	usmc_sim_node_set_ipv4(a, 0x0a010002, 24);
	usmc_sim_node_set_ipv4(b, 0x0a020003, 24);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_DIFFPREFIX);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c->conn),
		       SMC_CLC_DECL_DIFFPREFIX);
	/* no lgr was created for a declined proposal */
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));

	a2 = usmc_sim_node_new(sim, NULL);
	b2 = usmc_sim_node_new(sim, NULL);
	usmc_sim_node_set_ipv4(a2, 0x0a010002, 24);
	usmc_sim_node_set_ipv4(b2, 0x0a020003, 24);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a2, b2, &c, &s), 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_sim_del(sim);
}

static void set_ueids(usmc_settings *st, const char *const *ids, unsigned n)
{
	memset(st->ueid, ' ', sizeof(st->ueid));
	for (unsigned i = 0; i < n; i++)
		memcpy(st->ueid[i], ids[i], strlen(ids[i]));
	st->ueid_cnt = n;
}

/* UEID lists (smc_clc_send_proposal offers them all; smc_clc_match_eid
 * takes the first of the client's the server has): a shared one gives
 * SMC-Rv2 with that EID in the Accept; none shared gives SMC-Rv1 when
 * both offer it, a decline with NOSMCDEV when only v2 is offered (as
 * Linux: an EID mismatch stores no reason of its own), and DIFFPREFIX
 * when v1 cannot run either (different subnets). */
static void test_ueid_lists(void)
{
	static const char *const l1[] = {"LAB-A", "SHARED.1", "LAB-C"},
				 *const l2[] = {"LAB-B", "SHARED.1"},
				 *const l3[] = {"LAB-D"};
	usmc_sim *sim = usmc_sim_new(31);
	usmc_settings sa, sb;
	usmc_sim_node *a, *b;
	usmc_sim_ep *c, *s;
	usmc_conn_info ci;
	usmc_clc_msg m;
	uint8_t types[4], want[32];

	/* shared: v2, the Proposal carries all three, the Accept SHARED.1 */
	usmc_settings_default(&sa);
	usmc_settings_default(&sb);
	set_ueids(&sa, l1, 3);
	set_ueids(&sb, l2, 2);
	a = usmc_sim_node_new(sim, &sa);
	b = usmc_sim_node_new(sim, &sb);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_conn_get_info(c->conn, &ci);
	USMC_ASSERT_EQ(ci.smc_version, 2);
	USMC_ASSERT_EQ_FATAL(
		clc_types(c->clc_sent, c->clc_sent_len, types, 1, &m), 1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_PROPOSAL);
	USMC_ASSERT_EQ(m.u.prop.eid_cnt, 3);
	USMC_ASSERT_MEM_EQ(m.u.prop.user_eids[2], sa.ueid[2], 32);
	USMC_ASSERT_EQ_FATAL(
		clc_types(s->clc_sent, s->clc_sent_len, types, 1, &m), 1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_ACCEPT);
	memset(want, ' ', sizeof(want));
	memcpy(want, "SHARED.1", 8);
	USMC_ASSERT_MEM_EQ(m.u.ac.eid, want, 32);

	/* none shared, v1 and v2 offered: v1 */
	set_ueids(&sb, l3, 1);
	a = usmc_sim_node_new(sim, &sa);
	b = usmc_sim_node_new(sim, &sb);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_conn_get_info(s->conn, &ci);
	USMC_ASSERT_EQ(ci.smc_version, 1);

	/* none shared, v2 only: decline NOSMCDEV, both fall back */
	sa.smc_versions = sb.smc_versions = USMC_VERSION_V2;
	a = usmc_sim_node_new(sim, &sa);
	b = usmc_sim_node_new(sim, &sb);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_NOSMCDEV);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c->conn),
		       SMC_CLC_DECL_NOSMCDEV);

	/* none shared, v1 and v2 offered, different subnets: DIFFPREFIX */
	sa.smc_versions = sb.smc_versions = USMC_VERSION_V1 | USMC_VERSION_V2;
	a = usmc_sim_node_new(sim, &sa);
	b = usmc_sim_node_new(sim, &sb);
	usmc_sim_node_set_ipv4(a, 0x0a010002, 24);
	usmc_sim_node_set_ipv4(b, 0x0a020003, 24);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_DIFFPREFIX);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c->conn),
		       SMC_CLC_DECL_DIFFPREFIX);

	/* a context takes 1 to USMC_UEID_MAX of them */
	{
		static const char *const l4[] = {"A", "B", "C", "D"};

		set_ueids(&sa, l4, USMC_UEID_MAX);
		CU_ASSERT_PTR_NOT_NULL(usmc_sim_node_new(sim, &sa));
		sa.ueid_cnt = 0;
		CU_ASSERT_PTR_NULL(usmc_sim_node_new(sim, &sa));
		sa.ueid_cnt = USMC_UEID_MAX + 1;
		CU_ASSERT_PTR_NULL(usmc_sim_node_new(sim, &sa));
	}
	usmc_sim_del(sim);
}

/* Deleting a ctx with live connections, link groups and traffic in
 * flight frees everything. */
static void test_ctx_del_live(void)
{
	usmc_sim *sim = usmc_sim_new(14);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c[3], *s[3];
	uint8_t x[3000];

	memset(x, 1, sizeof(x));
	for (int i = 0; i < 3; i++)
		USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c[i], &s[i]), 0);
	usmc_conn_write(c[0]->conn, x, sizeof(x), usmc_sim_now(sim));
	usmc_conn_write(s[1]->conn, x, sizeof(x), usmc_sim_now(sim));
	usmc_sim_node_del(a);
	usmc_sim_node_del(b);
	USMC_ASSERT_EQ(usmc_sim_node_live_allocs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_allocs(b), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	usmc_sim_del(sim);
}

static void test_runtime_fallback(void)
{
	usmc_sim *sim = usmc_sim_new(8);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c;
	uint8_t types[4];
	usmc_clc_msg m;

	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_CLIENT, &c),
			     0);
	/* PEERNOSMC: nothing more on the wire */
	USMC_ASSERT_EQ(usmc_conn_fallback(c->conn, SMC_CLC_DECL_PEERNOSMC,
					  usmc_sim_now(sim)),
		       0);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERNOSMC);
	USMC_ASSERT_EQ(clc_types(c->clc_sent, c->clc_sent_len, types, 4, NULL),
		       1);
	USMC_ASSERT_EQ(usmc_conn_fallback(c->conn, SMC_CLC_DECL_MEM,
					  usmc_sim_now(sim)),
		       USMC_ERR_INVALID_STATE);
	usmc_sim_ep_del(c);

	/* any other reason is declined */
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_SERVER, &c),
			     0);
	USMC_ASSERT_EQ(usmc_conn_fallback(c->conn, SMC_CLC_DECL_IPSEC,
					  usmc_sim_now(sim)),
		       0);
	USMC_ASSERT_EQ(clc_types(c->clc_sent, c->clc_sent_len, types, 4, &m),
		       1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_IPSEC);
	usmc_sim_del(sim);
}

/* The runtime learns before writing the Proposal that SMC is off: the
 * Proposal is withdrawn; PEERNOSMC sends nothing, other reasons send only
 * a Decline (smc_connect_decline_fallback). */
static void test_fallback_before_proposal(void)
{
	usmc_sim *sim = usmc_sim_new(16);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_conn_params p;
	usmc_conn *conn;
	const uint8_t *d;
	size_t len;
	uint8_t types[4];
	usmc_clc_msg m;

	memset(&p, 0, sizeof(p));
	p.role = USMC_ROLE_CLIENT;
	p.ipv4.addr = 0x0a000001;
	p.ipv4.prefix_len = 24;
	USMC_ASSERT_EQ_FATAL(usmc_conn_new(usmc_sim_node_ctx(a), &p,
					   usmc_sim_now(sim), &conn),
			     0);
	usmc_conn_clc_pending(conn, &d, &len);
	CU_ASSERT_TRUE(len > 0);
	USMC_ASSERT_EQ(usmc_conn_fallback(conn, SMC_CLC_DECL_PEERNOSMC,
					  usmc_sim_now(sim)),
		       0);
	usmc_conn_clc_pending(conn, &d, &len);
	USMC_ASSERT_EQ(len, 0);
	usmc_conn_del(conn);

	USMC_ASSERT_EQ_FATAL(usmc_conn_new(usmc_sim_node_ctx(a), &p,
					   usmc_sim_now(sim), &conn),
			     0);
	USMC_ASSERT_EQ(usmc_conn_fallback(conn, SMC_CLC_DECL_NOSMCRDEV,
					  usmc_sim_now(sim)),
		       0);
	usmc_conn_clc_pending(conn, &d, &len);
	USMC_ASSERT_EQ(clc_types(d, len, types, 4, &m), 1);
	USMC_ASSERT_EQ(types[0], SMC_CLC_DECLINE);
	USMC_ASSERT_EQ(m.u.decl.peer_diagnosis, SMC_CLC_DECL_NOSMCRDEV);
	usmc_conn_del(conn);
	usmc_sim_del(sim);
}

static void test_clc_timeout(void)
{
	usmc_sim *sim = usmc_sim_new(9);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim);

	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_CLIENT, &c),
			     0);
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_SERVER, &s),
			     0);
	usmc_sim_run(sim, t0 + 6 * SEC - 1);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 0);
	usmc_sim_run(sim, t0 + 6 * SEC);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_TIMEOUT);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_TIMEOUT);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(usmc_conn_state(c->conn), SMC_CLOSED);
	USMC_ASSERT_EQ(usmc_ctx_get_expiry(usmc_sim_node_ctx(a)),
		       USMC_TSTAMP_NONE);
	usmc_sim_del(sim);
}

/* Malformed or unexpected CLC: EPROTO, no decline (smc_clc_wait_msg). */
static void test_clc_malformed(void)
{
	static const uint8_t garbage[12] = {0x47, 0x45, 0x54, 0x20, 0x2f, 0x20,
					    0x48, 0x54, 0x54, 0x50, 0x0d, 0x0a};
	usmc_sim *sim = usmc_sim_new(10);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *s, *c, *s2;
	uint8_t types[4];

	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, b, USMC_ROLE_SERVER, &s),
			     0);
	usmc_sim_clc_inject(s, garbage, sizeof(garbage));
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_PROTO);
	USMC_ASSERT_EQ(s->clc_sent_len, 0);

	/* the client's own Proposal echoed back: unexpected type */
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, a, USMC_ROLE_CLIENT, &c),
			     0);
	usmc_sim_clc_inject(c, c->clc_sent, c->clc_sent_len);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(c->conn), USMC_ERR_PROTO);

	/* a truncated proposal (length field lies) */
	USMC_ASSERT_EQ_FATAL(usmc_sim_ep_single(sim, b, USMC_ROLE_SERVER, &s2),
			     0);
	{
		uint8_t p[256];
		size_t n = c->clc_sent_len;

		memcpy(p, c->clc_sent, n);
		p[6] = (uint8_t)(p[6] - 17); /* shorter than its areas */
		usmc_sim_clc_inject(s2, p, n);
	}
	USMC_ASSERT_EQ(s2->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(
		clc_types(s2->clc_sent, s2->clc_sent_len, types, 4, NULL), 0);
	usmc_sim_del(sim);
}

/* The client never sees the CONFIRM_LINK request (its core is hung): the
 * server declines with TIMEOUT_CL, both fall back. */
static void test_confirm_link_timeout(void)
{
	usmc_sim *sim = usmc_sim_new(11);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;

	usmc_sim_set_blackhole(a, 1);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 10 * SEC);
	/* the server waits 2 s for the response and declines first; the
	 * client (4 s) takes the server's decline */
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	/* no link group is left behind once timers ran */
	usmc_sim_run(sim, usmc_sim_now(sim) + 10 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

/*
 * Every LLC packet lost both ways (fault:sim drop:rate=1 on both nodes):
 * CONFIRM_LINK times out at both ends, on the kernel's clocks. The server
 * waits 2 s for the response and 1 s more for a Decline before it sends
 * its own (3 s); the client waits 4 s for the request, so it takes the
 * server's Decline and sends none. Exactly one Decline in all, and no
 * CLC byte reaches an end after its own fallback.
 */
static void test_confirm_link_lost_both_ways(void)
{
	usmc_sim *sim = usmc_sim_new(21);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_fault_sched fa, fb;
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim);

	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("drop:rate=1", t0, &fa, NULL, 0), 0);
	fb = fa;
	usmc_sim_node_set_faults(a, &fa);
	usmc_sim_node_set_faults(b, &fb);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	/* past the server's 2 s: it is waiting for the client's Decline */
	usmc_sim_run(sim, t0 + 2500 * MSEC);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(sent_declines(s), 0);
	usmc_sim_run(sim, t0 + 3500 * MSEC);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	USMC_ASSERT_EQ(sent_declines(s), 1);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERDECL);
	usmc_sim_run(sim, t0 + 10 * SEC);
	USMC_ASSERT_EQ(sent_declines(c), 0);
	USMC_ASSERT_EQ(c->in_len, 0);
	USMC_ASSERT_EQ(s->in_len, 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK] + s->ev[USMC_EV_FALLBACK], 2);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	CU_ASSERT(usmc_sim_node_faults_fired(a) +
			  usmc_sim_node_faults_fired(b) >
		  0);
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_node_set_faults(b, NULL);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

/* The client declines the server's first-contact Accept with SYNCERR
 * (out of sync: it found no link group of that peer). The server drops the
 * link group it made and falls back with PEERDECL, sending no Decline of
 * its own back (ending the link group first used to answer with
 * ERR_RDYLNK, the fault matrix's decline-syncerr). */
static void test_server_takes_syncerr(void)
{
	uint8_t prop[256], types[4];
	int n = usmc_test_hex(linux_prop_hex, prop, sizeof(prop));
	usmc_sim *sim = usmc_sim_new(23);
	usmc_sim_ep *s;
	usmc_clc_msg d;

	s = seedtest_ep(sim, USMC_ROLE_SERVER);
	usmc_sim_clc_inject(s, prop, (size_t)n);
	USMC_ASSERT_EQ_FATAL(
		clc_types(s->clc_sent, s->clc_sent_len, types, 4, NULL), 1);
	USMC_ASSERT_EQ_FATAL(types[0], SMC_CLC_ACCEPT);
	inject_decline(s, SMC_CLC_DECL_SYNCERR, "\x02\0\0\0\0\x07\0\0", &d);
	CU_ASSERT_TRUE(d.hdr.typev2 & SMC_FIRST_CONTACT_MASK);
	assert_took_decline(sim, s, SMC_CLC_DECL_SYNCERR,
			    usmc_sim_now(sim) + 5 * SEC);
	usmc_sim_del(sim);
}

/* The server's CONFIRM_LINK wait ended and the client's Decline comes in
 * the second after: PEERDECL, and no Decline back (smc_listen_decline). */
static void test_server_takes_decline_in_wait(void)
{
	usmc_sim *sim = usmc_sim_new(22);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_fault_sched fb;
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim);
	usmc_clc_msg d;

	/* the server hears nothing over RDMA */
	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("drop:rate=1", t0, &fb, NULL, 0), 0);
	usmc_sim_node_set_faults(b, &fb);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	usmc_sim_run(sim, t0 + 2500 * MSEC);
	USMC_ASSERT_EQ_FATAL(usmc_conn_get_mode(s->conn), USMC_MODE_HANDSHAKE);
	inject_decline(s, SMC_CLC_DECL_TIMEOUT_CL, "\x02\0\0\0\0\x07\0\0", &d);
	assert_took_decline(sim, s, SMC_CLC_DECL_TIMEOUT_CL, t0 + 10 * SEC);
	usmc_sim_node_set_faults(b, NULL);
	usmc_sim_del(sim);
}

/*
 * The client's CONFIRM_LINK response never reaches the server (it hears
 * nothing over RDMA), as with a server whose ICRC check refuses the
 * client's packets. The server declines TIMEOUT_CL at 3 s; the client,
 * waiting 2 s for the ADD_LINK that cannot come and then 1 s for a
 * Decline (smcr_clnt_conf_first_link), takes it: both fall back, exactly
 * one Decline, the client was never established and no CLC byte reaches
 * either end's data.
 */
static void test_confirm_link_resp_lost(void)
{
	usmc_sim *sim = usmc_sim_new(23);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_fault_sched fb;
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim);

	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("drop:rate=1", t0, &fb, NULL, 0), 0);
	usmc_sim_node_set_faults(b, &fb);
	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	/* the client got the request, its response never arrived; the
	 * client is still waiting */
	usmc_sim_run(sim, t0 + 2500 * MSEC);
	CU_ASSERT_TRUE(trace_find(sim, 2, SMC_LLC_CONFIRM_LINK_V2, 0x03, 0) >=
		       0);
	USMC_ASSERT_EQ(trace_find(sim, 1, SMC_LLC_CONFIRM_LINK_V2, 0x83, 0),
		       -1);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_HANDSHAKE);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ESTABLISHED], 0);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_HANDSHAKE);
	usmc_sim_run(sim, t0 + 3500 * MSEC);
	USMC_ASSERT_EQ(usmc_conn_get_mode(s->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(s->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_FALLBACK);
	USMC_ASSERT_EQ(usmc_conn_fallback_reason(c->conn),
		       SMC_CLC_DECL_PEERDECL);
	USMC_ASSERT_EQ(usmc_conn_peer_diagnosis(c->conn),
		       SMC_CLC_DECL_TIMEOUT_CL);
	usmc_sim_run(sim, t0 + 10 * SEC);
	USMC_ASSERT_EQ(sent_declines(s), 1);
	USMC_ASSERT_EQ(sent_declines(c), 0);
	USMC_ASSERT_EQ(c->in_len, 0);
	USMC_ASSERT_EQ(s->in_len, 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ESTABLISHED] + s->ev[USMC_EV_ESTABLISHED],
		       0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK] + s->ev[USMC_EV_FALLBACK], 2);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	CU_ASSERT(usmc_sim_node_faults_fired(b) > 0);
	usmc_sim_node_set_faults(b, NULL);
	usmc_sim_run(sim, t0 + 20 * SEC);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

/* A usmc server sends its ADD_LINK as soon as it has the response, so the
 * client's wait for it ends at once: established within a few fabric
 * round trips, not after 2 s. */
static void test_add_link_ends_wait(void)
{
	usmc_sim *sim = usmc_sim_new(24);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim);

	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	usmc_sim_run(sim, t0 + 50 * MSEC);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ESTABLISHED], 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ESTABLISHED], 1);
	CU_ASSERT_TRUE(trace_find(sim, 1, SMC_LLC_ADD_LINK_V2, 0xc0, 0) >= 0);
	USMC_ASSERT_EQ(sent_declines(c) + sent_declines(s), 0);
	usmc_sim_del(sim);
}

static usmc_settings kernel_testlink_settings(void)
{
	usmc_settings st;

	usmc_settings_default(&st);
	st.testlink_time = 30 * SEC;
	st.testlink_wait = 2 * SEC;
	return st;
}

/* The server's ADD_LINK never reaches the client (all it receives is
 * dropped from the CONFIRM_LINK request on), but the server acknowledged
 * the response and declines nothing: as smcr_clnt_conf_first_link, the
 * client waits 2 s, looks 1 s for a Decline and goes on with one link,
 * sending none. */
static void test_add_link_lost(void)
{
	/* the kernel's TEST_LINK interval: the default's 1 s + 1 s would
	 * take the silent client's link down before its 3 s are over */
	usmc_settings st = kernel_testlink_settings();
	usmc_sim *sim = usmc_sim_new(25);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_fault_sched fa;
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim), t1;

	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	while (trace_find(sim, 2, SMC_LLC_CONFIRM_LINK_V2, 0x03, 0) < 0 &&
	       usmc_sim_now(sim) < t0 + SEC)
		usmc_sim_run(sim, usmc_sim_now(sim) + 1000);
	t1 = usmc_sim_now(sim);
	USMC_ASSERT_EQ_FATAL(
		usmc_fault_sched_parse("drop:rate=1", t1, &fa, NULL, 0), 0);
	usmc_sim_node_set_faults(a, &fa);
	usmc_sim_run(sim, t1 + 2900 * MSEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ESTABLISHED], 1);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ESTABLISHED], 0);
	usmc_sim_run(sim, t1 + 3100 * MSEC);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ESTABLISHED], 1);
	USMC_ASSERT_EQ(usmc_conn_get_mode(c->conn), USMC_MODE_SMCR);
	USMC_ASSERT_EQ(sent_declines(c) + sent_declines(s), 0);
	USMC_ASSERT_EQ(trace_find(sim, 2, SMC_LLC_ADD_LINK_V2, 0x00, 0), -1);
	CU_ASSERT(usmc_sim_node_faults_fired(a) > 0);
	usmc_sim_node_set_faults(a, NULL);
	usmc_sim_del(sim);
}

/* A Linux server's ADD_LINK v2 request is 88 bytes (with the v2
 * extension and one rkey): it spills past the 48-byte receive slot into
 * the shared v2 buffer, and the client still rejects it. */
static void test_add_link_v2_long(void)
{
	usmc_sim *sim = usmc_sim_new(13);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c, *s;
	static usmc_llc_msg m;
	uint8_t buf[256];
	usmc_ssize n;
	int i;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	usmc_sim_trace_clear(sim);
	usmc_llc_msg_init(&m, SMC_LLC_ADD_LINK, 2, 0);
	memcpy(m.add_link.sender_mac, "\x02\x00\x00\x00\x00\x07", 6);
	m.add_link.sender_gid[15] = 7;
	m.add_link.sender_qp_num = 0x99;
	m.add_link.link_num = 2;
	m.add_link.qp_mtu = USMC_IB_MTU_1024;
	m.add_link.initial_psn = 0x123456;
	m.add_link.has_v2_ext = 1;
	m.add_link.num_rkeys = 1;
	m.add_link.rt[0].rmb_key = 0x1111;
	m.add_link.rt[0].rmb_key_new = 0x2222;
	m.add_link.rt[0].rmb_vaddr_new = 0x3333;
	n = usmc_llc_encode(buf, sizeof(buf), &m);
	USMC_ASSERT_EQ_FATAL(n, 88);
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_inject_send(sim, usmc_sim_node_link(b, 0), buf, 88),
		0);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	i = trace_find(sim, 1, SMC_LLC_ADD_LINK_V2, 0xc0, 0);
	CU_ASSERT_TRUE(i >= 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_sim_del(sim);
}

/* First contact, a write, a second connection (reuse), orderly close of
 * the first, deletion of all, idle lgr deletion. With |fail_at| >= 0 that
 * allocation fails. Returns the allocations the run made. */
static long failmalloc_run(long fail_at)
{
	usmc_sim *sim = usmc_sim_new(12);
	usmc_sim_node *a = usmc_sim_node_new(sim, NULL);
	usmc_sim_node *b = usmc_sim_node_new(sim, NULL);
	usmc_sim_ep *c1 = NULL, *s1 = NULL, *c2 = NULL, *s2 = NULL;
	long base = usmc_sim_alloc_count(sim), n;
	uint8_t x[100];

	usmc_sim_fail_alloc_at(sim, fail_at);
	memset(x, 7, sizeof(x));
	if (!sim_pair(sim, a, b, &c1, &s1) &&
	    usmc_conn_get_mode(c1->conn) == USMC_MODE_SMCR)
		usmc_conn_write(c1->conn, x, sizeof(x), usmc_sim_now(sim));
	sim_pair(sim, a, b, &c2, &s2);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 30 * SEC);
	if (c1)
		usmc_conn_close(c1->conn, usmc_sim_now(sim));
	if (s1)
		usmc_conn_close(s1->conn, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 30 * SEC);
	/* every conn ended in some defined state */
	if (c2)
		CU_ASSERT_TRUE(usmc_conn_get_mode(c2->conn) !=
				       USMC_MODE_HANDSHAKE ||
			       usmc_conn_error(c2->conn) != 0);
	while (c1 || s1 || c2 || s2) {
		usmc_sim_ep **e = c1 ? &c1 : s1 ? &s1 : c2 ? &c2 : &s2;

		usmc_sim_ep_del(*e);
		*e = NULL;
	}
	usmc_sim_run(sim, usmc_sim_now(sim) + 700 * SEC);
	n = usmc_sim_alloc_count(sim) - base;
	/* idle link groups were deleted by their timers */
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(a), NULL));
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_mrs(b), 0);
	usmc_sim_node_del(a);
	usmc_sim_node_del(b);
	USMC_ASSERT_EQ(usmc_sim_node_live_allocs(a), 0);
	USMC_ASSERT_EQ(usmc_sim_node_live_allocs(b), 0);
	usmc_sim_del(sim);
	return n;
}

/* Every allocation of the scenario above fails once in turn: no crash,
 * every connection ends defined, nothing leaks. */
static void test_failmalloc(void)
{
	long total = failmalloc_run(-1);

	CU_ASSERT_TRUE(total > 20);
	for (long i = 0; i < total; i++)
		failmalloc_run(i);
}

static CU_TestInfo hs_tests[] = {
	{"first_contact_v2", test_first_contact_v2},
	{"first_contact_v1", test_first_contact_v1},
	{"lgr_reuse_confirm_rkey", test_lgr_reuse},
	{"lgr_reuse_keep_rkey", test_lgr_reuse_keep_rkey},
	{"lgr_per_role", test_lgr_per_role},
	{"two_devices", test_two_devices},
	{"add_device", test_add_device},
	{"three_nodes", test_three_nodes},
	{"linux_proposal", test_linux_proposal},
	{"linux_accept", test_linux_accept},
	{"server_takes_syncerr", test_server_takes_syncerr},
	{"linux_accept_peer_declines", test_linux_accept_peer_declines},
	{"decline_smcd_only", test_decline_smcd_only},
	{"accept_smcd_modeunsupp", test_accept_smcd_modeunsupp},
	{"client_gets_decline", test_client_gets_decline},
	{"diffprefix", test_diffprefix},
	{"ueid_lists", test_ueid_lists},
	{"ctx_del_live", test_ctx_del_live},
	{"runtime_fallback", test_runtime_fallback},
	{"fallback_before_proposal", test_fallback_before_proposal},
	{"clc_timeout", test_clc_timeout},
	{"clc_malformed", test_clc_malformed},
	{"confirm_link_timeout", test_confirm_link_timeout},
	{"confirm_link_lost_both_ways", test_confirm_link_lost_both_ways},
	{"server_takes_decline_in_wait", test_server_takes_decline_in_wait},
	{"confirm_link_resp_lost", test_confirm_link_resp_lost},
	{"add_link_ends_wait", test_add_link_ends_wait},
	{"add_link_lost", test_add_link_lost},
	{"add_link_v2_long", test_add_link_v2_long},
	{"failmalloc", test_failmalloc},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_handshake", hs_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
