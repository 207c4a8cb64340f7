/* SPDX-License-Identifier: MIT */
/*
 * Link groups with two links (RFC 7609 §4.6, net/smc smc_llc.c): the
 * server's ADD_LINK after the first CONFIRM_LINK, symmetric and
 * asymmetric, v1 (ADD_LINK_CONT) and v2 (rkeys in the extension), a
 * client with no alternate rejecting at once, CONFIRM_RKEY with an rkey
 * per link, DELETE_LINK of one link, and a hostile peer's ADD_LINK and
 * CONFIRM_RKEY. Nodes get two sim devices on one pnet.
 */
#include "usmc_core_int.h"
#include "usmc_core_test.h"
#include "usmc_llc.h"

#define MSEC USMC_NS_PER_MS

/* |ndev| devices; with |pnet| they are alternates of each other. */
static usmc_settings link_settings(unsigned int ndev, const char *pnet,
				   unsigned int versions)
{
	usmc_settings st = small_settings(16384);

	st.ndevices = ndev;
	for (unsigned int d = 0; d < ndev && pnet; d++)
		memcpy(st.devices[d].pnet_id, pnet, strlen(pnet));
	if (versions)
		st.smc_versions = versions;
	return st;
}

/* Core log lines, for the lines other tools parse (docs/core.md). */
static char logbuf[256][160];
static int nlog;

static void log_keep(void *arg, int node, int level, const char *msg)
{
	(void)arg;
	(void)level;
	if (nlog < 256)
		snprintf(logbuf[nlog++], sizeof(logbuf[0]), "%d %s", node, msg);
}

static int log_has(const char *line)
{
	for (int i = 0; i < nlog; i++)
		if (!strcmp(logbuf[i], line))
			return 1;
	return 0;
}

static usmc_lgr *first_lgr(usmc_sim_node *n, usmc_lgr_info *li)
{
	usmc_lgr *l = usmc_ctx_next_lgr(usmc_sim_node_ctx(n), NULL);

	memset(li, 0, sizeof(*li));
	if (l)
		usmc_lgr_get_info(l, li);
	return l;
}

static unsigned int active_links(usmc_sim_node *n)
{
	usmc_lgr_info li;
	unsigned int k = 0;

	if (!first_lgr(n, &li))
		return 0;
	for (unsigned int i = 0; i < li.nlinks; i++)
		k += li.links[i].active;
	return k;
}

/* Index in the trace of the first LLC message of base |type| from |from|
 * with the response flag |resp| (0 or 1), at or after |start|; -1. */
static int trace_llc(usmc_sim *sim, int from, uint8_t type, int resp,
		     size_t start)
{
	size_t n;
	const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);

	for (size_t i = start; i < n; i++)
		if (tr[i].from == from && (tr[i].msg[0] & 0x0f) == type &&
		    tr[i].msg[0] != 0xfe &&
		    !!(tr[i].msg[3] & SMC_LLC_FLAG_RESP) == resp)
			return (int)i;
	return -1;
}

/* Every link of both peers knows the other's RMB of each connection: the
 * rkey and address it announced for that link's device. */
static void check_rkeys(usmc_sim_ep *c, usmc_sim_ep *s)
{
	usmc_conn *cc = c->conn, *sc = s->conn;

	for (int k = 0; k < 2; k++) {
		usmc_conn *me = k ? sc : cc, *peer = k ? cc : sc;
		usmc_lgr *pl = peer->lgr;

		for (int i = 0; i < USMC_LINKS_MAX; i++) {
			usmc_link *ml = me->lgr->links[i];
			const usmc_mr *mr;

			if (!ml)
				continue;
			CU_ASSERT_TRUE_FATAL(me->peer_rkey_has[i]);
			/* the peer's link with the same id, its device */
			for (int j = 0; j < USMC_LINKS_MAX; j++) {
				usmc_link *pk = pl->links[j];

				if (!pk || pk->link_id != ml->link_id)
					continue;
				mr = usmc_buf_mr(peer->rmb, pk->dev_idx);
				CU_ASSERT_PTR_NOT_NULL_FATAL(mr);
				USMC_ASSERT_EQ(me->peer_rkey[i], mr->rkey);
				USMC_ASSERT_EQ(me->peer_vaddr[i], mr->iova);
			}
		}
	}
}

static void transfer(usmc_sim *sim, usmc_sim_ep *c, usmc_sim_ep *s,
		     uint32_t seed)
{
	static pump p1, p2;
	pump *ps[2] = {&p1, &p2};

	pump_init(&p1, c, s, 300000, seed, 7000);
	pump_init(&p2, s, c, 300000, seed + 1, 5000);
	USMC_ASSERT_EQ(pumps_run(sim, ps, 2, usmc_sim_now(sim) + 30 * SEC), 0);
	USMC_ASSERT_EQ(p1.bad + p2.bad, 0);
	USMC_ASSERT_EQ(p1.readn, 300000);
	USMC_ASSERT_EQ(p2.readn, 300000);
}

/* Both sides two devices on one pnet: the server adds link 2 on its
 * second device right after the first CONFIRM_LINK, the client takes it
 * on its second; v1 exchanges the rkeys in ADD_LINK_CONT, v2 in the
 * ADD_LINK extension; CONFIRM_LINK runs on the new link. */
static void symmetric(unsigned int versions, uint64_t seed)
{
	usmc_settings st = link_settings(2, "NET1", versions);
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s, *c2, *s2;
	usmc_lgr_info li;
	int v1 = versions == USMC_VERSION_V1, i, j;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	USMC_ASSERT_EQ(active_links(a), 2);
	USMC_ASSERT_EQ(active_links(b), 2);
	for (int k = 0; k < 2; k++) {
		first_lgr(k ? b : a, &li);
		USMC_ASSERT_EQ(li.smc_version, v1 ? 1 : 2);
		USMC_ASSERT_EQ(li.links[0].dev_idx, 0);
		USMC_ASSERT_EQ(li.links[1].dev_idx, 1);
		USMC_ASSERT_EQ(li.links[0].link_id, 1);
		USMC_ASSERT_EQ(li.links[1].link_id, 2);
	}
	/* ADD_LINK req (server) -> resp (client) [-> CONT <-> CONT] ->
	 * CONFIRM_LINK req -> resp, in that order */
	i = trace_llc(sim, 2, SMC_LLC_ADD_LINK, 0, 0);
	CU_ASSERT_TRUE_FATAL(i >= 0);
	j = trace_llc(sim, 1, SMC_LLC_ADD_LINK, 1, (size_t)i);
	CU_ASSERT_TRUE_FATAL(j > i);
	if (v1) {
		i = trace_llc(sim, 2, SMC_LLC_ADD_LINK_CONT, 0, (size_t)j);
		CU_ASSERT_TRUE_FATAL(i > j);
		j = trace_llc(sim, 1, SMC_LLC_ADD_LINK_CONT, 1, (size_t)i);
		CU_ASSERT_TRUE_FATAL(j > i);
	} else {
		USMC_ASSERT_EQ(trace_llc(sim, 2, SMC_LLC_ADD_LINK_CONT, 0, 0),
			       -1);
	}
	i = trace_llc(sim, 2, SMC_LLC_CONFIRM_LINK, 0, (size_t)j);
	CU_ASSERT_TRUE_FATAL(i > j);
	CU_ASSERT_TRUE(trace_llc(sim, 1, SMC_LLC_CONFIRM_LINK, 1, (size_t)i) >
		       i);
	check_rkeys(c, s);
	transfer(sim, c, s, (uint32_t)seed);

	/* a second connection: CONFIRM_RKEY carries the rkey of each link
	 * (link 2's in rtoken[1]), both ways */
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c2, &s2), 0);
	CU_ASSERT_TRUE_FATAL(established(c2) && established(s2));
	for (int from = 1; from <= 2; from++) {
		size_t n;
		const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);
		usmc_llc_msg m;

		i = trace_llc(sim, from, SMC_LLC_CONFIRM_RKEY, 0, 0);
		CU_ASSERT_TRUE_FATAL(i >= 0);
		USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&m, tr[i].msg, tr[i].len),
				     44);
		USMC_ASSERT_EQ(m.confirm_rkey.num_rkeys, 1);
		USMC_ASSERT_EQ(m.confirm_rkey.rtoken[1].link_id, 2);
		(void)n;
	}
	check_rkeys(c2, s2);
	transfer(sim, c2, s2, (uint32_t)seed + 7);
	usmc_sim_ep_del(c2);
	usmc_sim_ep_del(s2);
	usmc_sim_ep_del(c);
	usmc_sim_ep_del(s);
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	usmc_sim_del(sim);
}

static void test_symmetric_v2(void)
{
	symmetric(USMC_VERSION_V2, 200);
}

static void test_symmetric_v1(void)
{
	symmetric(USMC_VERSION_V1, 201);
}

/* One side with one device: the link group still gets its second link,
 * on the same device of that side (ASYMMETRIC_LOCAL there), when the
 * other has an alternate. |srv_two|: the server has two devices. */
static void asymmetric(int srv_two, unsigned int versions, uint64_t seed)
{
	usmc_settings s2 = link_settings(2, "NET1", versions);
	usmc_settings s1 = link_settings(1, "NET1", versions);
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a = usmc_sim_node_new(sim, srv_two ? &s1 : &s2);
	usmc_sim_node *b = usmc_sim_node_new(sim, srv_two ? &s2 : &s1);
	usmc_sim_ep *c, *s;
	usmc_lgr_info la, lb;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	USMC_ASSERT_EQ(active_links(a), 2);
	USMC_ASSERT_EQ(active_links(b), 2);
	first_lgr(a, &la);
	first_lgr(b, &lb);
	/* the one-device side has both links on device 0 */
	USMC_ASSERT_EQ(la.links[1].dev_idx, srv_two ? 0 : 1);
	USMC_ASSERT_EQ(lb.links[1].dev_idx, srv_two ? 1 : 0);
	check_rkeys(c, s);
	transfer(sim, c, s, (uint32_t)seed);
	usmc_sim_del(sim);
}

static void test_asymmetric(void)
{
	asymmetric(1, USMC_VERSION_V2, 210);
	asymmetric(0, USMC_VERSION_V2, 211);
	asymmetric(1, USMC_VERSION_V1, 212);
	asymmetric(0, USMC_VERSION_V1, 213);
}

/* A server whose transport cannot register a buffer with its second
 * device (no reg_mr) offers its own device instead (asymmetric): the
 * client still gets an ADD_LINK to answer, and takes it on its second. */
static void test_no_reg_mr(void)
{
	usmc_settings st = link_settings(2, "NET1", 0);
	usmc_sim *sim = usmc_sim_new(214);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_lgr_info la, lb;

	usmc_sim_node_set_reg_mr(b, 0);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	USMC_ASSERT_EQ(active_links(a), 2);
	USMC_ASSERT_EQ(active_links(b), 2);
	first_lgr(a, &la);
	first_lgr(b, &lb);
	USMC_ASSERT_EQ(lb.links[1].dev_idx, 0);
	USMC_ASSERT_EQ(la.links[1].dev_idx, 1);
	check_rkeys(c, s);
	transfer(sim, c, s, 214);
	usmc_sim_del(sim);
}

/* No alternate on either side (one device each, with or without a pnet
 * id): the server's ADD_LINK is rejected at once (NO_ALT_PATH in v1), the
 * client does not wait 2 s for anything, one link stays, and the offered
 * link's QP and registrations are gone. */
static void no_alternate(const char *pnet, unsigned int versions, uint64_t seed)
{
	usmc_settings st = link_settings(1, pnet, versions);
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_tstamp t0 = usmc_sim_now(sim);
	const usmc_sim_trace *tr;
	usmc_llc_msg m;
	size_t n;
	int i;

	USMC_ASSERT_EQ_FATAL(usmc_sim_connect(sim, a, b, &c, &s), 0);
	usmc_sim_run(sim, t0 + 100 * MSEC);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	i = trace_llc(sim, 1, SMC_LLC_ADD_LINK, 1, 0);
	CU_ASSERT_TRUE_FATAL(i >= 0);
	tr = usmc_sim_get_trace(sim, &n);
	USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&m, tr[i].msg, tr[i].len), 44);
	CU_ASSERT_TRUE(m.hdr.flags & SMC_LLC_FLAG_ADD_LNK_REJ);
	USMC_ASSERT_EQ(m.hdr.add_link_rej_rsn,
		       versions == USMC_VERSION_V1 ? 1 : 0);
	usmc_sim_run(sim, t0 + 3 * SEC);
	USMC_ASSERT_EQ(active_links(a), 1);
	USMC_ASSERT_EQ(active_links(b), 1);
	{
		usmc_lgr_info li;

		first_lgr(b, &li);
		USMC_ASSERT_EQ(li.nlinks, 1);
	}
	transfer(sim, c, s, (uint32_t)seed);
	usmc_sim_del(sim);
}

static void test_no_alternate(void)
{
	no_alternate("NET1", USMC_VERSION_V2, 220);
	no_alternate("NET1", USMC_VERSION_V1, 221);
	no_alternate(NULL, USMC_VERSION_V2, 222);
	no_alternate(NULL, USMC_VERSION_V1, 223);
}

static int forge(usmc_sim *sim, usmc_sim_ep *c, const usmc_llc_msg *m,
		 usmc_llc_msg *ans);

/* smcr-d-linkfail-eth0 #2426/#2428: DELETE_LINK v2 request, orderly,
 * link 2, LOST_PATH; #2430: the client's answer once it has cleared link
 * 2 itself, NOLNK. */
static const char kernel_del_link2_hex[] =
	"242c002002000100000000000000000000000000000000000000000000000000"
	"000000000000000000000000";
static const char kernel_del_nolnk2_hex[] =
	"242c00a002001000000000000000000000000000000000000000000000000000"
	"000000000000000000000000";
static uint8_t kernel_del_link2[44], kernel_del_nolnk2[44];

static void load_kernel_frames(void)
{
	USMC_ASSERT_EQ_FATAL(
		usmc_test_hex(kernel_del_link2_hex, kernel_del_link2, 44), 44);
	USMC_ASSERT_EQ_FATAL(
		usmc_test_hex(kernel_del_nolnk2_hex, kernel_del_nolnk2, 44),
		44);
}

/* A link of a two-link group goes down (its port): the peer is told with
 * DELETE_LINK on the other link, both clear it, the connection on the
 * surviving link goes on, and the server adds a link again, asymmetric
 * (the down device left out). When the device is back (usmc_ctx_device_up;
 * a v2 client asks with REQ_ADD_LINK) a symmetric link replaces the
 * asymmetric one, which is deleted with NO_ASYM_NEEDED. */
static void delete_one(int server_side, uint64_t seed)
{
	usmc_settings st = link_settings(2, "NET1", 0);
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_node *dn = server_side ? b : a;
	usmc_sim_ep *c, *s;
	usmc_lgr *lg;
	usmc_lgr_info li;
	usmc_llc_msg m;
	const usmc_sim_trace *tr;
	size_t n;
	int i;

	load_kernel_frames();
	nlog = 0;
	usmc_sim_set_log(sim, log_keep, NULL);
	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ_FATAL(active_links(a) + active_links(b), 4);
	lg = first_lgr(dn, &li);
	/* both ends say when each link is up, and on which device */
	for (int k = 0; k < 2; k++) {
		usmc_lgr_info lk;
		char want[96];

		first_lgr(k ? b : a, &lk);
		for (int d = 0; d < 2; d++) {
			snprintf(want, sizeof(want),
				 "%d lgr %u link %d up on device %d", k + 1,
				 lk.id, d + 1, d);
			CU_ASSERT_TRUE(log_has(want));
		}
	}
	usmc_sim_trace_clear(sim);
	/* the connection is on link 1; link 2 goes */
	USMC_ASSERT_EQ(usmc_link_down(lg->links[1], usmc_sim_now(sim)), 0);
	/* the DELETE_LINK leaves when the dead link's grace (10 ms) ends */
	usmc_sim_run(sim, usmc_sim_now(sim) + SEC);
	i = trace_llc(sim, server_side ? 2 : 1, SMC_LLC_DELETE_LINK, 0, 0);
	CU_ASSERT_TRUE_FATAL(i >= 0);
	tr = usmc_sim_get_trace(sim, &n);
	USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&m, tr[i].msg, tr[i].len), 44);
	USMC_ASSERT_EQ(m.delete_link.link_num, 2);
	USMC_ASSERT_EQ(m.delete_link.reason, SMC_LLC_DEL_LOST_PATH);
	CU_ASSERT_FALSE(m.hdr.flags & SMC_LLC_FLAG_DEL_LINK_ALL);
	{
		char want[96];

		snprintf(want, sizeof(want), "%d lgr %u link 2 down: port down",
			 server_side ? 2 : 1, li.id);
		CU_ASSERT_TRUE(log_has(want));
		snprintf(want, sizeof(want),
			 "%d lgr %u link 2 down: peer deleted",
			 server_side ? 1 : 2,
			 first_lgr(server_side ? a : b, &li) ? li.id : 0);
		CU_ASSERT_TRUE(log_has(want));
	}
	/* the bytes the kernel sent for the same deletion (smcr-d-linkfail
	 * #2426 client, #2428 server) */
	USMC_ASSERT_EQ(tr[i].len, 44);
	USMC_ASSERT_MEM_EQ(tr[i].msg, kernel_del_link2, 44);
	CU_ASSERT_TRUE(established(c) && established(s));
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	/* redundancy again: link 3, both of its ends' side of the down
	 * device on device 0 */
	USMC_ASSERT_EQ(active_links(a), 2);
	USMC_ASSERT_EQ(active_links(b), 2);
	first_lgr(dn, &li);
	USMC_ASSERT_EQ(li.nlinks, 2);
	for (unsigned int k = 0; k < li.nlinks; k++) {
		CU_ASSERT_TRUE(li.links[k].link_id != 2);
		USMC_ASSERT_EQ(li.links[k].dev_idx, 0);
	}
	check_rkeys(c, s);
	transfer(sim, c, s, (uint32_t)seed);
	/* the kernel server's own DELETE_LINK for link 2 after the client's
	 * (#2428): link 2 is gone, answered NOLNK byte for byte (#2430) */
	{
		usmc_llc_msg q, r;

		USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&q, kernel_del_link2, 44),
				     44);
		USMC_ASSERT_EQ_FATAL(forge(sim, c, &q, &r), 0);
		tr = usmc_sim_get_trace(sim, &n);
		i = trace_llc(sim, 1, SMC_LLC_DELETE_LINK, 1, 0);
		CU_ASSERT_TRUE_FATAL(i >= 0);
		USMC_ASSERT_MEM_EQ(tr[i].msg, kernel_del_nolnk2, 44);
		USMC_ASSERT_EQ(active_links(a), 2);
	}
	/* the device is back: link 4 on it, link 3 deleted */
	usmc_sim_trace_clear(sim);
	usmc_ctx_device_up(usmc_sim_node_ctx(dn), 1, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	if (!server_side)
		CU_ASSERT_TRUE(trace_llc(sim, 1, SMC_LLC_REQ_ADD_LINK, 0, 0) >=
			       0);
	i = trace_llc(sim, 2, SMC_LLC_DELETE_LINK, 0, 0);
	CU_ASSERT_TRUE_FATAL(i >= 0);
	tr = usmc_sim_get_trace(sim, &n);
	USMC_ASSERT_EQ_FATAL(usmc_llc_decode(&m, tr[i].msg, tr[i].len), 44);
	USMC_ASSERT_EQ(m.delete_link.link_num, 3);
	USMC_ASSERT_EQ(m.delete_link.reason, SMC_LLC_DEL_NO_ASYM_NEEDED);
	USMC_ASSERT_EQ(active_links(a), 2);
	USMC_ASSERT_EQ(active_links(b), 2);
	for (int k = 0; k < 2; k++) {
		first_lgr(k ? b : a, &li);
		USMC_ASSERT_EQ(li.nlinks, 2);
		USMC_ASSERT_EQ(li.links[0].link_id, 1);
		USMC_ASSERT_EQ(li.links[0].dev_idx, 0);
		USMC_ASSERT_EQ(li.links[1].link_id, 4);
		USMC_ASSERT_EQ(li.links[1].dev_idx, 1);
	}
	check_rkeys(c, s);
	transfer(sim, c, s, (uint32_t)seed + 3);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	usmc_sim_del(sim);
}

static void test_delete_one_link(void)
{
	delete_one(1, 230);
	delete_one(0, 231);
}

/* The client's device comes back while the server's ADD_LINK flow runs,
 * after the client took the link asymmetric on its surviving device: its
 * one REQ_ADD_LINK reaches the server mid-flow. The server adds a link
 * again once the flow ends, so a symmetric link on the device replaces
 * the asymmetric one (the fault matrix's "restore" case). */
static void test_device_up_during_add_link(void)
{
	usmc_settings st = link_settings(2, "NET1", 0);
	usmc_sim *sim = usmc_sim_new(232);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_lgr_info li;
	usmc_lgr *lg;
	usmc_tstamp end;
	int i;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	lg = first_lgr(a, &li);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ(usmc_link_down(lg->links[1], usmc_sim_now(sim)), 0);
	/* on until the client has answered the server's ADD_LINK */
	end = usmc_sim_now(sim) + SEC;
	while ((i = trace_llc(sim, 1, SMC_LLC_ADD_LINK, 1, 0)) < 0 &&
	       usmc_sim_now(sim) < end)
		usmc_sim_run(sim, usmc_sim_now(sim) + 10000);
	CU_ASSERT_TRUE_FATAL(i >= 0);
	/* mid-flow: the server has not had the CONFIRM_LINK response */
	USMC_ASSERT_EQ_FATAL(trace_llc(sim, 1, SMC_LLC_CONFIRM_LINK, 1, 0), -1);
	usmc_ctx_device_up(usmc_sim_node_ctx(a), 1, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	CU_ASSERT_TRUE(trace_llc(sim, 1, SMC_LLC_REQ_ADD_LINK, 0, 0) >= 0);
	i = trace_llc(sim, 2, SMC_LLC_DELETE_LINK, 0, 0);
	CU_ASSERT_TRUE_FATAL(i >= 0);
	/* symmetric again: one link on each device, on both ends */
	for (int k = 0; k < 2; k++) {
		int on[2] = {0, 0};

		first_lgr(k ? b : a, &li);
		USMC_ASSERT_EQ(li.nlinks, 2);
		for (unsigned int j = 0; j < li.nlinks && j < 2; j++)
			on[li.links[j].dev_idx & 1]++;
		USMC_ASSERT_EQ(on[0], 1);
		USMC_ASSERT_EQ(on[1], 1);
	}
	check_rkeys(c, s);
	transfer(sim, c, s, 232);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	usmc_sim_del(sim);
}

/* The last link going ends the group cleanly: the connection, which
 * moved a byte, gets ECONNRESET (docs/core.md "Failover"), the lgr goes. */
static void test_delete_last_link(void)
{
	usmc_settings st = link_settings(1, "NET1", 0);
	usmc_sim *sim = usmc_sim_new(240);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_lgr_info li;
	usmc_lgr *lg;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	USMC_ASSERT_EQ(usmc_conn_write(s->conn, (const uint8_t *)"x", 1,
				       usmc_sim_now(sim)),
		       1);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	lg = first_lgr(b, &li);
	USMC_ASSERT_EQ(usmc_link_down(lg->links[0], usmc_sim_now(sim)), 0);
	usmc_sim_run(sim, usmc_sim_now(sim) + 3 * SEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR], 1);
	USMC_ASSERT_EQ(usmc_conn_error(s->conn), USMC_ERR_CONNRESET);
	CU_ASSERT_PTR_NULL(usmc_ctx_next_lgr(usmc_sim_node_ctx(b), NULL));
	usmc_sim_del(sim);
}

/* The client's link toward the server (the one its server's QP talks
 * to): forged requests are sent from the server's end of it. */
static usmc_link *srv_link(usmc_sim_ep *c)
{
	usmc_conn_info ci;

	usmc_conn_get_info(c->conn, &ci);
	return usmc_sim_link_by_qpn(c->sim, ci.peer_qpn);
}

static int forge_mtu7;

/* Sends |m| as the server would and returns the client's answer (the
 * next LLC from node 1), decoded; 0 if there was one. */
static int forge(usmc_sim *sim, usmc_sim_ep *c, const usmc_llc_msg *m,
		 usmc_llc_msg *ans)
{
	uint8_t buf[512];
	usmc_ssize len = usmc_llc_encode(buf, sizeof(buf), m);
	const usmc_sim_trace *tr;
	size_t n;
	int i;

	if (len < 0)
		return -1;
	if (forge_mtu7)
		buf[32] = 0x07; /* out of range: the codec refuses to write */
	usmc_sim_trace_clear(sim);
	if (usmc_sim_inject_send(sim, srv_link(c), buf, (size_t)len))
		return -1;
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 100 * MSEC);
	tr = usmc_sim_get_trace(sim, &n);
	for (i = 0; i < (int)n; i++)
		if (tr[i].from == 1 && tr[i].msg[0] != 0xfe)
			break;
	if (i == (int)n)
		return -1;
	return usmc_llc_decode(ans, tr[i].msg, tr[i].len) < 0 ? -1 : 0;
}

/* A valid ADD_LINK request of a server at 10.7.0.9 for link |id|. */
static void add_link_req(usmc_llc_msg *m, int v2, uint8_t id)
{
	usmc_llc_msg_init(m, SMC_LLC_ADD_LINK, v2 ? 2 : 1, 0);
	memcpy(m->add_link.sender_mac, "\x02\x00\x0a\x07\x00\x09", 6);
	memcpy(m->add_link.sender_gid,
	       "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x07\x00\x09", 16);
	m->add_link.sender_qp_num = 0x345;
	m->add_link.link_num = id;
	m->add_link.qp_mtu = 3;
	m->add_link.initial_psn = 0x1234;
	if (v2)
		m->add_link.has_v2_ext = 1;
}

/* A hostile server's ADD_LINK requests to a client with an alternate:
 * each one it cannot take is rejected at once with NO_ALT_PATH (v1; v2
 * has no room for a reason), the first link keeps working; the valid
 * control request is accepted (so the checks are what rejected the
 * others; in v2 it carries the server's own GID as the client target
 * GID, as Linux fills it). MTU 7 is out of range (the codec's 1..5). */
static void bad_add_link(int v2, uint64_t seed)
{
	usmc_settings sc = link_settings(
		2, "NET1", v2 ? USMC_VERSION_V2 : USMC_VERSION_V1);
	usmc_settings ss = link_settings(1, NULL, sc.smc_versions);
	usmc_sim *sim = usmc_sim_new(seed);
	usmc_sim_node *a = usmc_sim_node_new(sim, &sc);
	usmc_sim_node *b = usmc_sim_node_new(sim, &ss);
	usmc_sim_ep *c, *s;
	usmc_llc_msg m, r;
	enum {
		UNKNOWN_DEV,
		ZERO_GID,
		MCAST_GID,
		NOT_V4,
		DUP_ID,
		ZERO_ID,
		MTU_RANGE,
		MTU_ZERO,
		VALID,
		NCASES
	};

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	USMC_ASSERT_EQ(active_links(a), 1);
	for (int k = 0; k < NCASES; k++) {
		int want_rej = k != VALID;

		if ((k == UNKNOWN_DEV || k == NOT_V4) && !v2)
			continue;
		add_link_req(&m, v2, 5);
		switch (k) {
		case UNKNOWN_DEV:
			memcpy(m.add_link.client_target_gid,
			       "\0\0\0\0\0\0\0\0\0\0\xff\xff\x0a\x05\x00\x01",
			       16);
			break;
		case ZERO_GID:
			memset(m.add_link.sender_gid, 0, 16);
			break;
		case MCAST_GID:
			m.add_link.sender_gid[0] = 0xff;
			break;
		case NOT_V4:
			m.add_link.sender_gid[0] = 0xfe;
			m.add_link.sender_gid[1] = 0x80;
			break;
		case DUP_ID:
			m.add_link.link_num = 1;
			break;
		case ZERO_ID:
			m.add_link.link_num = 0;
			break;
		case MTU_RANGE:
			forge_mtu7 = 1;
			break;
		case MTU_ZERO:
			m.add_link.qp_mtu = 0;
			break;
		case VALID:
			/* as Linux sends it: its own new GID as the target
			 * (smc_llc_fill_ext_v2), naming no device of ours */
			if (v2)
				memcpy(m.add_link.client_target_gid,
				       m.add_link.sender_gid, 16);
			break;
		default:
			break;
		}
		USMC_ASSERT_EQ_FATAL(forge(sim, c, &m, &r), 0);
		forge_mtu7 = 0;
		USMC_ASSERT_EQ(r.hdr.type, SMC_LLC_ADD_LINK);
		CU_ASSERT_TRUE(r.hdr.flags & SMC_LLC_FLAG_RESP);
		if (!!(r.hdr.flags & SMC_LLC_FLAG_ADD_LNK_REJ) != want_rej)
			fprintf(stderr,
				"bad_add_link v%d case %d: flags %02x\n",
				v2 ? 2 : 1, k, r.hdr.flags);
		USMC_ASSERT_EQ(!!(r.hdr.flags & SMC_LLC_FLAG_ADD_LNK_REJ),
			       want_rej);
		if (want_rej)
			USMC_ASSERT_EQ(r.hdr.add_link_rej_rsn,
				       v2 ? 0 : SMC_LLC_REJ_RSN_NO_ALT_PATH);
		else
			USMC_ASSERT_EQ(r.add_link.link_num, 5);
		CU_ASSERT_TRUE(established(c) && established(s));
	}
	/* the control's link never gets its CONFIRM_LINK: dropped after
	 * SMC_LLC_WAIT_FIRST_TIME, the server told (DELETE_LINK) */
	usmc_sim_trace_clear(sim);
	usmc_sim_run(sim, usmc_sim_now(sim) + 6 * SEC);
	{
		usmc_lgr_info li;

		first_lgr(a, &li);
		USMC_ASSERT_EQ(li.nlinks, 1);
	}
	CU_ASSERT_TRUE(trace_llc(sim, 1, SMC_LLC_DELETE_LINK, 0, 0) >= 0);
	USMC_ASSERT_EQ(c->ev[USMC_EV_ERROR] + s->ev[USMC_EV_ERROR], 0);
	transfer(sim, c, s, (uint32_t)seed);
	usmc_sim_del(sim);
}

/* A server's ADD_LINK that reaches the client while the client's own
 * local flow (here a DELETE_RKEY) waits for its answer is held, as the
 * kernel's delayed_event, and answered right after that answer. */
static void test_add_link_during_local_flow(void)
{
	usmc_settings sc = link_settings(2, "NET1", 0);
	usmc_settings ss = link_settings(1, NULL, 0);
	usmc_sim *sim = usmc_sim_new(255);
	usmc_sim_node *a = usmc_sim_node_new(sim, &sc);
	usmc_sim_node *b = usmc_sim_node_new(sim, &ss);
	usmc_sim_ep *c, *s;
	usmc_llc_msg m;
	uint8_t buf[128];
	usmc_ssize len;
	int del_resp, add_resp;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	add_link_req(&m, 1, 1); /* link id 1 is taken: a reject */
	len = usmc_llc_encode(buf, sizeof(buf), &m);
	CU_ASSERT_TRUE_FATAL(len > 0);
	usmc_sim_trace_clear(sim);
	/* the client's flow first, the server's request right behind */
	USMC_ASSERT_EQ_FATAL(usmc_llc_queue(c->conn->lgr, SMC_LLC_DELETE_RKEY,
					    NULL, c->conn->rmb,
					    usmc_sim_now(sim)),
			     0);
	CU_ASSERT_PTR_NOT_NULL(c->conn->lgr->llc_cur);
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_inject_send(sim, srv_link(c), buf, (size_t)len), 0);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + SEC);
	del_resp = trace_llc(sim, 2, SMC_LLC_DELETE_RKEY, 1, 0);
	add_resp = trace_llc(sim, 1, SMC_LLC_ADD_LINK, 1, 0);
	CU_ASSERT_TRUE_FATAL(del_resp >= 0 && add_resp >= 0);
	CU_ASSERT_TRUE(add_resp > del_resp);
	CU_ASSERT_PTR_NULL(c->conn->lgr->llc_cur);
	USMC_ASSERT_EQ(c->conn->lgr->delayed, 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_sim_del(sim);
}

static void test_bad_add_link(void)
{
	bad_add_link(1, 250);
	bad_add_link(0, 251);
}

/* CONFIRM_RKEY naming a link the receiver does not have is refused
 * (RKEY_NEG) and not stored: a DELETE_RKEY for its rkey is then unknown
 * too. A valid one is stored and its DELETE_RKEY known. */
static void test_bad_confirm_rkey(void)
{
	usmc_settings st = link_settings(1, NULL, 0);
	usmc_sim *sim = usmc_sim_new(260);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_llc_msg m, r;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	for (int k = 0; k < 2; k++) {
		usmc_llc_msg_init(&m, SMC_LLC_CONFIRM_RKEY, 2, 0);
		m.confirm_rkey.rtoken[0].rmb_key = 0x4242 + (uint32_t)k;
		m.confirm_rkey.rtoken[0].rmb_vaddr = 0x10000;
		if (k == 0) {
			m.confirm_rkey.num_rkeys = 1;
			m.confirm_rkey.rtoken[1].link_id = 9;
			m.confirm_rkey.rtoken[1].rmb_key = 0x99;
		}
		USMC_ASSERT_EQ_FATAL(forge(sim, c, &m, &r), 0);
		USMC_ASSERT_EQ(r.hdr.type, SMC_LLC_CONFIRM_RKEY);
		USMC_ASSERT_EQ(r.hdr.flags,
			       k == 0 ? SMC_LLC_FLAG_RESP |
						SMC_LLC_FLAG_RKEY_NEG
				      : SMC_LLC_FLAG_RESP);
		usmc_llc_msg_init(&m, SMC_LLC_DELETE_RKEY, 2, 0);
		m.delete_rkey.num_rkeys = 1;
		m.delete_rkey.rkey[0] = 0x4242 + (uint32_t)k;
		USMC_ASSERT_EQ_FATAL(forge(sim, c, &m, &r), 0);
		USMC_ASSERT_EQ(r.hdr.type, SMC_LLC_DELETE_RKEY);
		USMC_ASSERT_EQ(r.delete_rkey.err_mask, k == 0 ? 1 : 0);
	}
	/* the RMB the CLC announced (first contact) is known too */
	usmc_llc_msg_init(&m, SMC_LLC_DELETE_RKEY, 2, 0);
	m.delete_rkey.num_rkeys = 2;
	m.delete_rkey.rkey[0] = 0x5151;
	m.delete_rkey.rkey[1] = s->conn->rmb->mr.rkey;
	USMC_ASSERT_EQ_FATAL(forge(sim, c, &m, &r), 0);
	USMC_ASSERT_EQ(r.delete_rkey.err_mask, 1); /* v2: how many unknown */
	CU_ASSERT_TRUE(established(c) && established(s));
	transfer(sim, c, s, 260);
	usmc_sim_del(sim);
}

/* A silent peer on an idle link (the path cut: nothing arrives) is
 * declared dead within 2 s with the default TEST_LINK timing (1 s idle,
 * then 1 s for the answer), long before RC gives up (about 5 s); the
 * connection moved no data, so both ends go on over TCP. */
static void test_testlink_default(void)
{
	usmc_settings st = link_settings(1, NULL, 0);
	usmc_sim *sim = usmc_sim_new(270);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_tstamp t0;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	t0 = usmc_sim_now(sim);
	usmc_sim_set_link_down(a, b, 1);
	usmc_sim_run(sim, t0 + 1900 * MSEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_FALLBACK] + c->ev[USMC_EV_FALLBACK], 0);
	usmc_sim_run(sim, t0 + 2 * SEC + MSEC);
	USMC_ASSERT_EQ(s->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(c->ev[USMC_EV_FALLBACK], 1);
	USMC_ASSERT_EQ(s->ev[USMC_EV_ERROR] + c->ev[USMC_EV_ERROR], 0);
	usmc_sim_del(sim);
}

/* ---- long (v2) LLC messages and the link's one v2 buffer ---- */

/* The LLC messages node 1 sent since the trace was cleared, in order:
 * their trace indices; the count. */
static int llc_from_client(usmc_sim *sim, int *idx, int max)
{
	size_t n;
	const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);
	int k = 0;

	for (size_t i = 0; i < n && k < max; i++)
		if (tr[i].from == 1 && tr[i].msg[0] != 0xfe)
			idx[k++] = (int)i;
	return k;
}

/* Trace entry |i| is |m| as encoded, every byte and the length. */
static void trace_is(usmc_sim *sim, int i, const usmc_llc_msg *m)
{
	uint8_t want[USMC_WR_BUF_V2_SIZE];
	usmc_ssize len = usmc_llc_encode(want, sizeof(want), m);
	size_t n;
	const usmc_sim_trace *tr = usmc_sim_get_trace(sim, &n);

	CU_ASSERT_TRUE_FATAL(len >= 44 && len <= (usmc_ssize)sizeof(tr->msg));
	CU_ASSERT_TRUE_FATAL(i >= 0 && (size_t)i < n);
	if (tr[i].len != (uint32_t)len || memcmp(tr[i].msg, want, (size_t)len))
		fprintf(stderr, "trace %d: %s, %u bytes; want %s, %zd bytes\n",
			i, usmc_llc_type_name(tr[i].msg[0]), tr[i].len,
			usmc_llc_type_name(want[0]), len);
	USMC_ASSERT_EQ(tr[i].len, (uint32_t)len);
	USMC_ASSERT_MEM_EQ(tr[i].msg, want, (size_t)len);
}

/* The REQ_ADD_LINK a v2 client sends for its device |dev|. */
static void req_add_link_msg(usmc_sim_node *n, unsigned int dev,
			     usmc_llc_msg *m)
{
	usmc_llc_msg_init(m, SMC_LLC_REQ_ADD_LINK, 2, 0);
	m->req_add_link.gid_cnt = 1;
	memcpy(m->req_add_link.gid[0], usmc_sim_node_ctx(n)->s.devices[dev].gid,
	       16);
}

/* A v2 client (two devices on one pnet; the server has one without a
 * pnet id, so it adds no link of its own) answers a server's ADD_LINK
 * with the long v2 response, and its device 1 comes back before that
 * response reached the wire: its REQ_ADD_LINK must not be written over
 * the response still to be read from the v2 buffer. Both leave intact,
 * in order, byte for byte. */
static void test_long_then_req_add_link(void)
{
	usmc_settings sc = link_settings(2, "NET1", USMC_VERSION_V2);
	usmc_settings ss = link_settings(1, NULL, USMC_VERSION_V2);
	usmc_sim *sim = usmc_sim_new(280);
	usmc_sim_node *a = usmc_sim_node_new(sim, &sc);
	usmc_sim_node *b = usmc_sim_node_new(sim, &ss);
	usmc_ctx *ctx = usmc_sim_node_ctx(a);
	usmc_sim_ep *c, *s;
	usmc_llc_msg m, w;
	usmc_lgr *lg;
	usmc_link *nl;
	const usmc_mr *old_mr, *new_mr;
	uint8_t buf[128];
	usmc_ssize len;
	usmc_tstamp end;
	int idx[8];

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	lg = c->conn->lgr;
	add_link_req(&m, 1, 5);
	memcpy(m.add_link.client_target_gid, m.add_link.sender_gid, 16);
	len = usmc_llc_encode(buf, sizeof(buf), &m);
	CU_ASSERT_TRUE_FATAL(len > 44);
	usmc_sim_trace_clear(sim);
	USMC_ASSERT_EQ_FATAL(
		usmc_sim_inject_send(sim, srv_link(c), buf, (size_t)len), 0);
	/* until the client took the request (its answer is queued; the
	 * wire takes 10 us at least) */
	end = usmc_sim_now(sim) + SEC;
	while (!lg->llc_cur && usmc_sim_now(sim) < end)
		usmc_sim_run(sim, usmc_sim_now(sim) + 1000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lg->llc_cur);
	nl = lg->addl_new;
	CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
	USMC_ASSERT_EQ_FATAL(llc_from_client(sim, idx, 8), 0);
	usmc_ctx_device_up(ctx, 1, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 100 * MSEC);

	/* the answer, from what it must say: the new link on device 1, the
	 * rkey triple of the connection's RMB */
	usmc_llc_msg_init(&w, SMC_LLC_ADD_LINK, 2, SMC_LLC_FLAG_RESP);
	USMC_ASSERT_EQ(nl->dev_idx, 1);
	memcpy(w.add_link.sender_mac, ctx->s.devices[1].mac, 6);
	memcpy(w.add_link.sender_gid, ctx->s.devices[1].gid, 16);
	w.add_link.sender_qp_num = nl->qp_num;
	w.add_link.link_num = 5;
	w.add_link.qp_mtu = 3;
	w.add_link.initial_psn = nl->psn;
	w.add_link.has_v2_ext = 1;
	w.add_link.v2_direct = 1;
	memcpy(w.add_link.client_target_gid, ctx->s.devices[1].gid, 16);
	old_mr = usmc_buf_mr(c->conn->rmb, 0);
	new_mr = usmc_buf_mr(c->conn->rmb, 1);
	CU_ASSERT_TRUE_FATAL(old_mr && new_mr);
	w.add_link.num_rkeys = 1;
	w.add_link.rt[0].rmb_key = old_mr->rkey;
	w.add_link.rt[0].rmb_key_new = new_mr->rkey;
	w.add_link.rt[0].rmb_vaddr_new = new_mr->iova;
	USMC_ASSERT_EQ_FATAL(llc_from_client(sim, idx, 8), 2);
	trace_is(sim, idx[0], &w);
	req_add_link_msg(a, 1, &m);
	trace_is(sim, idx[1], &m);
	CU_ASSERT_TRUE(established(c) && established(s));
	usmc_sim_del(sim);
}

/* A TEST_LINK response with |tag| in its user data: a 44-byte control
 * message the server takes without answering. */
static void tl_resp(uint8_t tag, usmc_llc_msg *m, uint8_t *buf)
{
	usmc_llc_msg_init(m, SMC_LLC_TEST_LINK, 2, SMC_LLC_FLAG_RESP);
	for (int i = 0; i < 16; i++)
		m->test_link.user_data[i] = (uint8_t)(tag + i);
	USMC_ASSERT_EQ_FATAL(usmc_llc_encode(buf, 44, m), 44);
}

/* Every TX slot of the client's link is taken when its device comes
 * back: the REQ_ADD_LINK waits for a slot and leaves after the messages
 * that took them, instead of being dropped. */
static void test_req_add_link_slots_full(void)
{
	usmc_settings sc = link_settings(2, "NET1", USMC_VERSION_V2);
	usmc_settings ss = link_settings(1, NULL, USMC_VERSION_V2);
	usmc_sim *sim = usmc_sim_new(281);
	usmc_sim_node *a = usmc_sim_node_new(sim, &sc);
	usmc_sim_node *b = usmc_sim_node_new(sim, &ss);
	usmc_sim_ep *c, *s;
	usmc_llc_msg m;
	usmc_link *l;
	uint8_t buf[44];
	int idx[64], nslots;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	l = c->conn->link;
	nslots = l->nslots;
	CU_ASSERT_TRUE_FATAL(nslots + 1 <= 64);
	usmc_sim_trace_clear(sim);
	for (int i = 0; i < nslots; i++) {
		tl_resp((uint8_t)i, &m, buf);
		USMC_ASSERT_EQ_FATAL(usmc_link_send_raw(l, buf), 0);
	}
	USMC_ASSERT_EQ_FATAL(l->slots_used, l->nslots);
	usmc_ctx_device_up(usmc_sim_node_ctx(a), 1, usmc_sim_now(sim));
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 100 * MSEC);
	/* (then the rejection of the server's answer, an ADD_LINK without a
	 * QP: it has no pnet id) */
	CU_ASSERT_TRUE_FATAL(llc_from_client(sim, idx, 64) >= nslots + 1);
	for (int i = 0; i < nslots; i++) {
		tl_resp((uint8_t)i, &m, buf);
		trace_is(sim, idx[i], &m);
	}
	req_add_link_msg(a, 1, &m);
	trace_is(sim, idx[nslots], &m);
	usmc_sim_del(sim);
}

/* An ADD_LINK v2 response for link |id| with |nrk| rkey triples (72 or
 * 88 bytes): long, and the server drops it (no ADD_LINK flow of its). */
static void long_msg(uint8_t id, unsigned int nrk, usmc_llc_msg *m)
{
	add_link_req(m, 1, id);
	m->hdr.flags = SMC_LLC_FLAG_RESP;
	m->add_link.v2_direct = 1;
	m->add_link.num_rkeys = (uint16_t)nrk;
	for (unsigned int i = 0; i < nrk; i++) {
		m->add_link.rt[i].rmb_key = 0x1000u * id + i;
		m->add_link.rt[i].rmb_key_new = 0x2000u * id + i;
		m->add_link.rt[i].rmb_vaddr_new = 0x30000000ull * id + i;
	}
}

/* Long LLC messages queued on one link before any send completion: each
 * leaves from the v2 buffer only after the one before it completed, so
 * every one reaches the peer as it was sent, in order with the 44-byte
 * messages around it; with every TX slot taken nothing is dropped, up to
 * USMC_LLC_LONG_PEND_MAX waiting; the buffer is free again at the end. */
static void test_long_llc_queued(void)
{
	usmc_settings st = link_settings(1, NULL, USMC_VERSION_V2);
	usmc_sim *sim = usmc_sim_new(282);
	usmc_sim_node *a = usmc_sim_node_new(sim, &st);
	usmc_sim_node *b = usmc_sim_node_new(sim, &st);
	usmc_sim_ep *c, *s;
	usmc_llc_msg m;
	usmc_link *l;
	uint8_t buf[44];
	int idx[64], k, nslots;

	USMC_ASSERT_EQ_FATAL(sim_pair(sim, a, b, &c, &s), 0);
	CU_ASSERT_TRUE_FATAL(established(c) && established(s));
	l = c->conn->link;
	nslots = l->nslots;

	/* two long ones back to back, a free link */
	usmc_sim_trace_clear(sim);
	long_msg(7, 1, &m);
	USMC_ASSERT_EQ_FATAL(usmc_llc_send_long(l, &m), 0);
	long_msg(8, 0, &m);
	USMC_ASSERT_EQ_FATAL(usmc_llc_send_long(l, &m), 0);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 100 * MSEC);
	USMC_ASSERT_EQ_FATAL(llc_from_client(sim, idx, 64), 2);
	long_msg(7, 1, &m);
	trace_is(sim, idx[0], &m);
	long_msg(8, 0, &m);
	trace_is(sim, idx[1], &m);
	USMC_ASSERT_EQ(l->v2_slot, -1);

	/* every TX slot taken: long and short ones wait, in order, up to
	 * the bound */
	usmc_sim_trace_clear(sim);
	for (int i = 0; i < nslots; i++) {
		tl_resp((uint8_t)i, &m, buf);
		USMC_ASSERT_EQ_FATAL(usmc_link_send_raw(l, buf), 0);
	}
	for (int i = 0; i < USMC_LLC_LONG_PEND_MAX; i++) {
		long_msg((uint8_t)(10 + i), (unsigned int)i % 2, &m);
		USMC_ASSERT_EQ_FATAL(usmc_llc_send_long(l, &m), 0);
		tl_resp((uint8_t)(0x80 + i), &m, buf);
		USMC_ASSERT_EQ_FATAL(usmc_link_send_raw(l, buf), 0);
	}
	long_msg(30, 0, &m);
	USMC_ASSERT_EQ(usmc_llc_send_long(l, &m), USMC_ERR_BUSY);
	USMC_ASSERT_EQ(l->nllc_long, USMC_LLC_LONG_PEND_MAX);
	usmc_sim_run_idle(sim, usmc_sim_now(sim) + 100 * MSEC);
	k = llc_from_client(sim, idx, 64);
	USMC_ASSERT_EQ_FATAL(k, nslots + 2 * USMC_LLC_LONG_PEND_MAX);
	for (int i = 0; i < nslots; i++) {
		tl_resp((uint8_t)i, &m, buf);
		trace_is(sim, idx[i], &m);
	}
	for (int i = 0; i < USMC_LLC_LONG_PEND_MAX; i++) {
		long_msg((uint8_t)(10 + i), (unsigned int)i % 2, &m);
		trace_is(sim, idx[nslots + 2 * i], &m);
		tl_resp((uint8_t)(0x80 + i), &m, buf);
		trace_is(sim, idx[nslots + 2 * i + 1], &m);
	}
	USMC_ASSERT_EQ(l->v2_slot, -1);
	USMC_ASSERT_EQ(l->nllc_long, 0);
	USMC_ASSERT_EQ(l->nllc_pend, 0);
	CU_ASSERT_TRUE(established(c) && established(s));
	transfer(sim, c, s, 282);

	/* waiting long messages go with their link (the leak checker) */
	for (int i = 0; i < nslots; i++) {
		tl_resp((uint8_t)i, &m, buf);
		USMC_ASSERT_EQ_FATAL(usmc_link_send_raw(l, buf), 0);
	}
	long_msg(40, 1, &m);
	USMC_ASSERT_EQ_FATAL(usmc_llc_send_long(l, &m), 0);
	USMC_ASSERT_EQ(l->nllc_long, 1);
	usmc_sim_del(sim);
}

static CU_TestInfo link_tests[] = {
	{"symmetric_v2", test_symmetric_v2},
	{"symmetric_v1", test_symmetric_v1},
	{"asymmetric", test_asymmetric},
	{"no_reg_mr_asymmetric", test_no_reg_mr},
	{"no_alternate_rejected_at_once", test_no_alternate},
	{"delete_one_link", test_delete_one_link},
	{"device_up_during_add_link", test_device_up_during_add_link},
	{"delete_last_link", test_delete_last_link},
	{"bad_add_link", test_bad_add_link},
	{"add_link_during_local_flow", test_add_link_during_local_flow},
	{"bad_confirm_rkey", test_bad_confirm_rkey},
	{"testlink_default_2s", test_testlink_default},
	{"long_llc_then_req_add_link", test_long_then_req_add_link},
	{"req_add_link_slots_full", test_req_add_link_slots_full},
	{"long_llc_queued", test_long_llc_queued},
	CU_TEST_INFO_NULL,
};

int main(void)
{
	const usmc_test_suite suites[] = {{"core_links", link_tests},
					  {NULL, NULL}};

	return usmc_test_main(suites);
}
