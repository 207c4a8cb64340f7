/* SPDX-License-Identifier: MIT */
/*
 * usmc-decode: decode the SMC-R traffic in a pcap or pcapng capture with
 * usmc's own codecs: CLC messages in the TCP byte stream, LLC and CDC
 * messages in RoCEv2 SENDs, and every RoCEv2 header (with its ICRC checked
 * where the capture holds the whole packet). See usage() for the manual.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roce_hdr.h"
#include "usmc_cdc.h"
#include "usmc_clc.h"
#include "usmc_conv.h"
#include "usmc_err.h"
#include "usmc_json.h"
#include "usmc_llc.h"
#include "usmc_tool.h"

#define ETH_P_IPV4	0x0800
#define ETH_P_IPV6	0x86dd
#define IPPROTO_TCP_NUM 6
#define IPPROTO_UDP_NUM 17

#define DLT_EN10MB_NUM	    1
#define DLT_RAW_NUM	    12
#define DLT_RAW_OPENBSD_NUM 14
#define DLT_LINUX_SLL_NUM   113
#define LINKTYPE_RAW_NUM    101
#define LINKTYPE_IPV4_NUM   228
#define LINKTYPE_IPV6_NUM   229
#define DLT_LINUX_SLL2_NUM  276

/* TCP flows followed at once, and out-of-order segments kept per flow
 * while its CLC handshake is still being read. */
#define MAX_FLOWS   4096
#define MAX_PENDING 64

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    usmc-decode - decode SMC-R (CLC, LLC, CDC) and RoCEv2 "
		"traffic in a capture\n"
		"\n"
		"SYNOPSIS\n"
		"    usmc-decode [--json] [--roce-port N] [--quiet] FILE\n"
		"\n"
		"DESCRIPTION\n"
		"    Reads FILE (pcap or pcapng; Ethernet, Linux cooked SLL or "
		"SLL2, or raw IP;\n"
		"    IPv4 or IPv6) and decodes every SMC-R message in it with "
		"usmc's own codecs:\n"
		"    - CLC (Proposal, Accept, Confirm, Decline) in the TCP "
		"byte "
		"stream. Each\n"
		"      direction is reassembled; a CLC message is looked for "
		"at "
		"the start of\n"
		"      the stream and right after the previous CLC message (by "
		"its eyecatcher),\n"
		"      and may span segments. The first bytes that are not CLC "
		"end the search\n"
		"      on that stream (they are application data). SYN and "
		"SYN-ACK segments are\n"
		"      shown with whether they carry the SMC TCP option "
		"(kind 254, E2D4C3D9).\n"
		"    - RoCEv2 (UDP destination port 4791 unless --roce-port): "
		"the BTH (opcode,\n"
		"      QPN, PSN, AckReq), RETH (va, rkey, length) and AETH "
		"(syndrome, MSN).\n"
		"      The ICRC is checked when the capture holds the whole "
		"packet.\n"
		"    - LLC (v1 and v2) and CDC messages carried by RoCE SEND "
		"ONLY packets.\n"
		"    One line per message: frame number, time since the first "
		"frame,\n"
		"    source -> destination, protocol (TCP, CLC, RoCE, LLC, "
		"CDC), "
		"message type\n"
		"    and its key fields. A summary line ends the output.\n"
		"    Anything a codec rejects is reported as MALFORMED with "
		"the "
		"byte offset\n"
		"    (in the frame, or in the TCP stream for CLC) and the "
		"codec's error name.\n"
		"\n"
		"OPTIONS\n"
		"    --json           one JSON object per line instead of "
		"text; "
		"the last line\n"
		"                     is {\"summary\": {...}}\n"
		"    --roce-port N    UDP destination port of RoCEv2 "
		"(default 4791)\n"
		"    -q, --quiet      print only malformed messages, ICRC "
		"failures and the\n"
		"                     summary\n"
		"    -h, --help       this text\n"
		"    --version        the version, and exit\n"
		"\n"
		"EXIT STATUS\n"
		"    0  everything decoded and every checked ICRC matched\n"
		"    1  at least one malformed message or ICRC mismatch\n"
		"    2  usage error, or FILE cannot be read as a capture\n"
		"\n"
		"EXAMPLES\n"
		"    usmc-decode smcr-a-session.pcapng\n"
		"    usmc-decode --json --roce-port 47910 lab.pcap | jq "
		".type\n");
}

struct stats {
	unsigned long frames, clc, llc, cdc, roce, syn, syn_smc;
	unsigned long icrc_ok, icrc_bad, icrc_unchecked, malformed;
	unsigned long clc_type[5];
};

static struct {
	bool json, quiet;
	uint16_t roce_port;
	struct stats st;
	bool have_t0;
	struct timeval t0;
} g = {.roce_port = USMC_ROCE_UDP_PORT};

/* --- output: one record per message, as text or as a JSON object ------ */

struct rec {
	char buf[2048];
	size_t len;
	bool important; /* printed even with --quiet */
};

static void rec_add(struct rec *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rec_add(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->len >= sizeof(r->buf))
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->len, sizeof(r->buf) - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len += (size_t)n;
	if (r->len >= sizeof(r->buf))
		r->len = sizeof(r->buf) - 1;
}

static void rec_json_str(struct rec *r, const char *s)
{
	char ch[8];

	rec_add(r, "\"");
	while (usmc_json_char(&s, ch))
		rec_add(r, "%s", ch);
	rec_add(r, "\"");
}

struct pkt_ctx {
	unsigned long frame;
	double t;
	char src[INET6_ADDRSTRLEN + 8];
	char dst[INET6_ADDRSTRLEN + 8];
};

static void rec_begin(struct rec *r, const struct pkt_ctx *p, const char *proto,
		      const char *type)
{
	r->len = 0;
	r->important = false;
	if (g.json) {
		rec_add(r, "{\"frame\":%lu,\"time\":%.6f,\"src\":", p->frame,
			p->t);
		rec_json_str(r, p->src);
		rec_add(r, ",\"dst\":");
		rec_json_str(r, p->dst);
		rec_add(r, ",\"proto\":");
		rec_json_str(r, proto);
		rec_add(r, ",\"type\":");
		rec_json_str(r, type);
	} else {
		rec_add(r, "%6lu %11.6f %s -> %s %s %s", p->frame, p->t, p->src,
			p->dst, proto, type);
	}
}

/* A number field: decimal in both forms. */
static void rec_u(struct rec *r, const char *k, uint64_t v)
{
	if (g.json)
		rec_add(r, ",\"%s\":%" PRIu64, k, v);
	else
		rec_add(r, " %s=%" PRIu64, k, v);
}

/* A hex field: "0x..." string in JSON. */
static void rec_x(struct rec *r, const char *k, uint64_t v, int width)
{
	if (g.json)
		rec_add(r, ",\"%s\":\"0x%0*" PRIx64 "\"", k, width, v);
	else
		rec_add(r, " %s=0x%0*" PRIx64, k, width, v);
}

static void rec_s(struct rec *r, const char *k, const char *v)
{
	if (g.json) {
		rec_add(r, ",\"%s\":", k);
		rec_json_str(r, v);
	} else {
		rec_add(r, " %s=%s", k, v);
	}
}

static void rec_b(struct rec *r, const char *k, bool v)
{
	if (g.json)
		rec_add(r, ",\"%s\":%s", k, v ? "true" : "false");
	else if (v)
		rec_add(r, " %s", k);
}

static void rec_hex(struct rec *r, const char *k, const uint8_t *p, size_t n)
{
	char s[2 * 64 + 1];
	size_t i;

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * n] = '\0';
	rec_s(r, k, s);
}

static void rec_gid(struct rec *r, const char *k, const uint8_t gid[16])
{
	char s[INET6_ADDRSTRLEN];

	if (!inet_ntop(AF_INET6, gid, s, sizeof(s)))
		snprintf(s, sizeof(s), "?");
	rec_s(r, k, s);
}

static void rec_end(struct rec *r)
{
	if (g.json)
		rec_add(r, "}");
	if (!g.quiet || r->important)
		printf("%s\n", r->buf);
}

static void report_malformed(const struct pkt_ctx *p, const char *proto,
			     const char *where, uint64_t off, int err)
{
	struct rec r;

	g.st.malformed++;
	rec_begin(&r, p, proto, "MALFORMED");
	r.important = true;
	rec_s(&r, "where", where);
	rec_u(&r, "offset", off);
	rec_s(&r, "error", usmc_err_name(err));
	rec_s(&r, "reason", usmc_strerror(err));
	rec_end(&r);
}

/* --- CLC ---------------------------------------------------------------- */

static const char *clc_type_name(uint8_t t)
{
	switch (t) {
	case SMC_CLC_PROPOSAL:
		return "PROPOSAL";
	case SMC_CLC_ACCEPT:
		return "ACCEPT";
	case SMC_CLC_CONFIRM:
		return "CONFIRM";
	case SMC_CLC_DECLINE:
		return "DECLINE";
	}
	return "UNKNOWN";
}

static void print_clc(const struct pkt_ctx *p, const usmc_clc_msg *m,
		      uint64_t stream_off)
{
	struct rec r;
	const usmc_clc_hdr *h = &m->hdr;

	g.st.clc++;
	if (h->type < 5)
		g.st.clc_type[h->type]++;
	rec_begin(&r, p, "CLC", clc_type_name(h->type));
	rec_u(&r, "len", h->length);
	rec_u(&r, "version", h->version);
	rec_u(&r, "stream_offset", stream_off);
	switch (h->type) {
	case SMC_CLC_PROPOSAL: {
		const usmc_clc_proposal *pr = &m->u.prop;
		char a[INET_ADDRSTRLEN];
		uint32_t net = htonl(pr->ipv4_subnet);

		rec_u(&r, "typev1", h->typev1);
		rec_u(&r, "typev2", h->typev2);
		rec_hex(&r, "peer_id", pr->peer_id, sizeof(pr->peer_id));
		if (h->typev1 != SMC_TYPE_N) {
			inet_ntop(AF_INET, &net, a, sizeof(a));
			rec_s(&r, "ipv4_subnet", a);
			rec_u(&r, "prefix_len", pr->ipv4_prefix_len);
			rec_u(&r, "ipv6_prefixes", pr->ipv6_prefix_cnt);
		}
		if (h->version >= SMC_V2 && h->typev2 != SMC_TYPE_N) {
			rec_gid(&r, "rocev2_gid", pr->roce_gid);
			rec_u(&r, "ueids", pr->eid_cnt);
			rec_u(&r, "release", pr->release);
		}
		break;
	}
	case SMC_CLC_ACCEPT:
	case SMC_CLC_CONFIRM: {
		const usmc_clc_accept_confirm *ac = &m->u.ac;

		rec_b(&r, "first_contact",
		      (h->typev2 & SMC_FIRST_CONTACT_MASK) != 0);
		if (h->typev1 == SMC_TYPE_D) {
			/* SMC-D (loopback-ism shape): the sender's ISM GID and
			 * DMB; the token is the peer's key to the DMB, so only
			 * whether one is there is shown */
			rec_x(&r, "ism_gid", ac->d_gid, 16);
			rec_b(&r, "dmb_token", ac->d_token != 0);
			rec_u(&r, "dmb_size",
			      usmc_clc_uncompress_bufsize(ac->dmbe_size));
			rec_x(&r, "linkid", ac->d_linkid, 8);
			if (h->version >= SMC_V2) {
				rec_x(&r, "chid", ac->d_chid, 4);
				rec_x(&r, "gid_ext", ac->gid_ext, 16);
			}
			break;
		}
		rec_x(&r, "qpn", ac->qpn, 6);
		rec_x(&r, "rkey", ac->rmb_rkey, 8);
		rec_x(&r, "token", ac->rmbe_alert_token, 8);
		rec_u(&r, "rmbe_size",
		      usmc_clc_uncompress_bufsize(ac->rmbe_size));
		rec_u(&r, "mtu", ac->qp_mtu ? 128u << ac->qp_mtu : 0);
		rec_u(&r, "psn", ac->psn);
		rec_x(&r, "rmb_addr", ac->rmb_dma_addr, 16);
		rec_gid(&r, "gid", ac->gid);
		if (h->version >= SMC_V2 && ac->gid_cnt)
			rec_u(&r, "gid_list", ac->gid_cnt);
		break;
	}
	case SMC_CLC_DECLINE:
		rec_s(&r, "reason",
		      usmc_clc_decl_name(m->u.decl.peer_diagnosis));
		rec_x(&r, "code", m->u.decl.peer_diagnosis, 8);
		rec_b(&r, "out_of_sync",
		      (h->typev2 & SMC_FIRST_CONTACT_MASK) != 0);
		break;
	}
	rec_end(&r);
}

/* --- TCP reassembly, per direction ---------------------------------------- */

enum flow_mode {
	FLOW_CLC,  /* reading CLC messages at the stream's head */
	FLOW_DONE, /* application data or a gap: no more CLC here */
};

struct seg {
	uint32_t seq;
	uint32_t len;
	uint8_t *data;
};

struct flow {
	bool used;
	int af;
	uint8_t saddr[16], daddr[16];
	uint16_t sport, dport;
	bool have_isn;
	uint32_t isn;	   /* sequence number of stream byte 0 */
	uint32_t next_seq; /* next in-order byte */
	enum flow_mode mode;
	uint8_t buf[USMC_CLC_MAX_LEN + 8];
	size_t buf_len;
	uint64_t buf_off; /* stream offset of buf[0] */
	struct seg pending[MAX_PENDING];
	unsigned npending;
};

static struct flow *flows;
static unsigned nflows;

static bool seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static void flow_drop_pending(struct flow *f)
{
	for (unsigned i = 0; i < f->npending; i++)
		free(f->pending[i].data);
	f->npending = 0;
}

static struct flow *flow_get(int af, const uint8_t *sa, const uint8_t *da,
			     uint16_t sp, uint16_t dp, bool create)
{
	size_t alen = af == AF_INET ? 4 : 16;
	struct flow *f;

	for (unsigned i = 0; i < nflows; i++) {
		f = &flows[i];
		if (f->used && f->af == af && f->sport == sp &&
		    f->dport == dp && !memcmp(f->saddr, sa, alen) &&
		    !memcmp(f->daddr, da, alen))
			return f;
	}
	if (!create || nflows >= MAX_FLOWS)
		return NULL;
	f = &flows[nflows++];
	memset(f, 0, sizeof(*f));
	f->used = true;
	f->af = af;
	memcpy(f->saddr, sa, alen);
	memcpy(f->daddr, da, alen);
	f->sport = sp;
	f->dport = dp;
	f->mode = FLOW_CLC;
	return f;
}

static void flow_reset(struct flow *f, uint32_t isn)
{
	flow_drop_pending(f);
	f->have_isn = true;
	f->isn = isn;
	f->next_seq = isn;
	f->mode = FLOW_CLC;
	f->buf_len = 0;
	f->buf_off = 0;
}

/* Decode whatever whole CLC messages sit at the head of f->buf. */
static void flow_parse(struct flow *f, const struct pkt_ctx *p)
{
	while (f->mode == FLOW_CLC && f->buf_len > 0) {
		static const uint8_t smcr[4] = {0xe2, 0xd4, 0xc3, 0xd9};
		static const uint8_t smcd[4] = {0xe2, 0xd4, 0xc3, 0xc4};
		size_t n = f->buf_len < 4 ? f->buf_len : 4;
		usmc_clc_hdr h;
		usmc_clc_msg m;
		usmc_ssize rc;
		int err;

		if (memcmp(f->buf, smcr, n) && memcmp(f->buf, smcd, n)) {
			f->mode = FLOW_DONE; /* not CLC: application data */
			return;
		}
		if (f->buf_len < SMC_CLC_HDR_LEN)
			return;
		err = usmc_clc_hdr_peek(f->buf, f->buf_len, &h);
		if (err < 0) {
			report_malformed(p, "CLC", "tcp_stream", f->buf_off,
					 err);
			f->mode = FLOW_DONE;
			return;
		}
		if (f->buf_len < h.length)
			return;
		rc = usmc_clc_decode(f->buf, h.length, &m);
		if (rc < 0) {
			report_malformed(p, "CLC", "tcp_stream", f->buf_off,
					 (int)rc);
			f->mode = FLOW_DONE;
			return;
		}
		print_clc(p, &m, f->buf_off);
		memmove(f->buf, f->buf + h.length, f->buf_len - h.length);
		f->buf_len -= h.length;
		f->buf_off += h.length;
	}
}

/* Feed in-order stream bytes. */
static void flow_feed(struct flow *f, const struct pkt_ctx *p, const uint8_t *d,
		      uint32_t len)
{
	f->next_seq += len;
	while (len && f->mode == FLOW_CLC) {
		size_t room = sizeof(f->buf) - f->buf_len;
		size_t n = len < room ? len : room;

		if (n == 0) { /* cannot happen: hdr_peek bounds the length */
			f->mode = FLOW_DONE;
			break;
		}
		memcpy(f->buf + f->buf_len, d, n);
		f->buf_len += n;
		d += n;
		len -= (uint32_t)n;
		flow_parse(f, p);
	}
}

static void flow_segment(struct flow *f, const struct pkt_ctx *p, uint32_t seq,
			 const uint8_t *d, uint32_t len)
{
	if (!f->have_isn) /* capture began mid-stream: start here */
		flow_reset(f, seq);
	if (f->mode != FLOW_CLC || len == 0)
		return;
	/* Trim what we already have (retransmission, overlap). */
	if (seq_before(seq, f->next_seq)) {
		uint32_t skip = f->next_seq - seq;
		if (skip >= len)
			return;
		seq += skip;
		d += skip;
		len -= skip;
	}
	if (seq != f->next_seq) { /* a hole: keep it for later */
		if (f->npending >= MAX_PENDING) {
			flow_drop_pending(f);
			f->mode = FLOW_DONE;
			return;
		}
		struct seg *s = &f->pending[f->npending];
		s->data = malloc(len);
		if (!s->data) {
			f->mode = FLOW_DONE;
			return;
		}
		memcpy(s->data, d, len);
		s->seq = seq;
		s->len = len;
		f->npending++;
		return;
	}
	flow_feed(f, p, d, len);
	/* Segments that now fit at the head. */
	bool progress = true;
	while (progress && f->npending && f->mode == FLOW_CLC) {
		progress = false;
		for (unsigned i = 0; i < f->npending; i++) {
			struct seg *s = &f->pending[i];
			uint32_t end = s->seq + s->len;
			if (seq_before(f->next_seq, s->seq))
				continue;
			if (seq_before(f->next_seq, end)) {
				uint32_t skip = f->next_seq - s->seq;
				flow_feed(f, p, s->data + skip, s->len - skip);
			}
			free(s->data);
			*s = f->pending[--f->npending];
			progress = true;
			break;
		}
	}
	if (f->mode != FLOW_CLC)
		flow_drop_pending(f);
}

/* The SMC experimental option (kind 254, length 6, ExID E2D4C3D9). */
static bool tcp_has_smc_option(const uint8_t *opt, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t kind = opt[i];
		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= len || opt[i + 1] < 2 || i + opt[i + 1] > len)
			break;
		if (kind == 254 && opt[i + 1] >= 6 &&
		    usmc_get_be32(opt + i + 2) == SMC_EYECATCHER)
			return true;
		i += opt[i + 1];
	}
	return false;
}

static void handle_tcp(struct pkt_ctx *p, int af, const uint8_t *sa,
		       const uint8_t *da, const uint8_t *t, size_t len,
		       size_t frame_off)
{
	uint16_t sp, dp;
	uint32_t seq;
	size_t hl;
	uint8_t flags;
	struct flow *f;

	if (len < 20) {
		report_malformed(p, "TCP", "tcp_header", frame_off,
				 USMC_ERR_TRUNCATED);
		return;
	}
	sp = usmc_get_be16(t);
	dp = usmc_get_be16(t + 2);
	seq = usmc_get_be32(t + 4);
	hl = (size_t)(t[12] >> 4) * 4;
	flags = t[13];
	if (hl < 20 || hl > len) {
		report_malformed(p, "TCP", "tcp_header", frame_off,
				 USMC_ERR_BAD_LENGTH);
		return;
	}
	snprintf(p->src + strlen(p->src), 8, ":%u", sp);
	snprintf(p->dst + strlen(p->dst), 8, ":%u", dp);
	f = flow_get(af, sa, da, sp, dp, true);
	if (flags & 0x02) { /* SYN */
		bool smc = tcp_has_smc_option(t + 20, hl - 20);
		struct rec r;

		g.st.syn++;
		g.st.syn_smc += smc;
		rec_begin(&r, p, "TCP", (flags & 0x10) ? "SYN-ACK" : "SYN");
		rec_b(&r, "smc_option", smc);
		rec_end(&r);
		if (f)
			flow_reset(f, seq + 1);
		return;
	}
	if (f && len > hl)
		flow_segment(f, p, seq, t + hl, (uint32_t)(len - hl));
}

/* --- RoCEv2, LLC, CDC ------------------------------------------------------ */

static void print_cdc(const struct pkt_ctx *p, const usmc_cdc_msg *c,
		      uint32_t qpn)
{
	struct rec r;
	char fl[128] = "";

	g.st.cdc++;
	rec_begin(&r, p, "CDC", "CDC");
	rec_x(&r, "qpn", qpn, 6);
	rec_u(&r, "seq", c->seqno);
	rec_x(&r, "token", c->token, 8);
	if (g.json) {
		rec_u(&r, "prod_wrap", c->prod.wrap);
		rec_u(&r, "prod_count", c->prod.count);
		rec_u(&r, "cons_wrap", c->cons.wrap);
		rec_u(&r, "cons_count", c->cons.count);
	} else {
		rec_add(&r, " prod=%u:%u cons=%u:%u", c->prod.wrap,
			c->prod.count, c->cons.wrap, c->cons.count);
	}
	if (c->prod_flags & USMC_CDC_WRITE_BLOCKED)
		strcat(fl, ",write_blocked");
	if (c->prod_flags & USMC_CDC_URG_DATA_PENDING)
		strcat(fl, ",urg_pending");
	if (c->prod_flags & USMC_CDC_URG_DATA_PRESENT)
		strcat(fl, ",urg_present");
	if (c->prod_flags & USMC_CDC_CONS_CURS_UPD_REQ)
		strcat(fl, ",cons_upd_req");
	if (c->prod_flags & USMC_CDC_FAILOVER_VALIDATION)
		strcat(fl, ",failover_validation");
	if (c->conn_state_flags & USMC_CDC_PEER_DONE_WRITING)
		strcat(fl, ",done_writing");
	if (c->conn_state_flags & USMC_CDC_PEER_CONN_CLOSED)
		strcat(fl, ",closed");
	if (c->conn_state_flags & USMC_CDC_PEER_CONN_ABORT)
		strcat(fl, ",abort");
	rec_s(&r, "flags", fl[0] ? fl + 1 : "none");
	rec_end(&r);
}

static void print_llc(const struct pkt_ctx *p, const usmc_llc_msg *m,
		      uint8_t wire_type, uint32_t qpn)
{
	struct rec r;
	const usmc_llc_hdr *h = &m->hdr;

	g.st.llc++;
	rec_begin(&r, p, "LLC", usmc_llc_type_name(wire_type));
	rec_x(&r, "qpn", qpn, 6);
	rec_u(&r, "len", h->length);
	rec_b(&r, "resp", (h->flags & SMC_LLC_FLAG_RESP) != 0);
	switch (h->type) {
	case SMC_LLC_CONFIRM_LINK:
		rec_x(&r, "sender_qpn", m->confirm_link.sender_qp_num, 6);
		rec_u(&r, "link", m->confirm_link.link_num);
		rec_u(&r, "max_links", m->confirm_link.max_links);
		rec_gid(&r, "gid", m->confirm_link.sender_gid);
		break;
	case SMC_LLC_ADD_LINK:
		rec_b(&r, "reject", (h->flags & SMC_LLC_FLAG_ADD_LNK_REJ) != 0);
		rec_x(&r, "sender_qpn", m->add_link.sender_qp_num, 6);
		rec_u(&r, "link", m->add_link.link_num);
		rec_u(&r, "mtu", m->add_link.qp_mtu);
		rec_u(&r, "psn", m->add_link.initial_psn);
		if (m->add_link.has_v2_ext)
			rec_u(&r, "rkeys", m->add_link.num_rkeys);
		break;
	case SMC_LLC_ADD_LINK_CONT:
		rec_u(&r, "link", m->add_link_cont.link_num);
		rec_u(&r, "rkeys", m->add_link_cont.num_rkeys);
		break;
	case SMC_LLC_DELETE_LINK:
		rec_b(&r, "all", (h->flags & SMC_LLC_FLAG_DEL_LINK_ALL) != 0);
		rec_b(&r, "orderly",
		      (h->flags & SMC_LLC_FLAG_DEL_LINK_ORDERLY) != 0);
		rec_u(&r, "link", m->delete_link.link_num);
		rec_s(&r, "reason",
		      usmc_llc_del_reason_name(m->delete_link.reason));
		break;
	case SMC_LLC_REQ_ADD_LINK:
		rec_u(&r, "gids", m->req_add_link.gid_cnt);
		break;
	case SMC_LLC_CONFIRM_RKEY:
		rec_b(&r, "negative", (h->flags & SMC_LLC_FLAG_RKEY_NEG) != 0);
		rec_u(&r, "more", m->confirm_rkey.num_rkeys);
		rec_x(&r, "rkey", m->confirm_rkey.rtoken[0].rmb_key, 8);
		rec_x(&r, "vaddr", m->confirm_rkey.rtoken[0].rmb_vaddr, 16);
		break;
	case SMC_LLC_CONFIRM_RKEY_CONT:
		rec_u(&r, "rkeys", m->confirm_rkey_cont.num_rkeys);
		break;
	case SMC_LLC_DELETE_RKEY:
		rec_b(&r, "negative", (h->flags & SMC_LLC_FLAG_RKEY_NEG) != 0);
		rec_u(&r, "count", m->delete_rkey.num_rkeys);
		rec_x(&r, "rkey", m->delete_rkey.rkey[0], 8);
		break;
	case SMC_LLC_TEST_LINK:
		break;
	}
	rec_end(&r);
}

static void handle_send_payload(const struct pkt_ctx *p,
				const usmc_roce_pkt *rp, size_t frame_off)
{
	int cls = usmc_rx_msg_classify(rp->payload, rp->payload_len);

	if (cls == USMC_RX_MSG_CDC) {
		usmc_cdc_msg c;
		usmc_ssize rc =
			usmc_cdc_decode(&c, rp->payload, rp->payload_len);
		if (rc < 0)
			report_malformed(p, "CDC", "send_payload", frame_off,
					 (int)rc);
		else
			print_cdc(p, &c, rp->dest_qpn);
	} else if (cls == USMC_RX_MSG_LLC_V1 || cls == USMC_RX_MSG_LLC_V2) {
		static usmc_llc_msg m; /* large (ADD_LINK v2 rkeys) */
		usmc_ssize rc =
			usmc_llc_decode(&m, rp->payload, rp->payload_len);
		if (rc < 0)
			report_malformed(p, "LLC", "send_payload", frame_off,
					 (int)rc);
		else
			print_llc(p, &m, rp->payload[0], rp->dest_qpn);
	} else {
		report_malformed(p, "LLC", "send_payload", frame_off,
				 cls < 0 ? cls : USMC_ERR_BAD_TYPE);
	}
}

static void handle_roce(struct pkt_ctx *p, int af, const uint8_t *ip,
			size_t ip_hl, const uint8_t *udp, size_t udp_len,
			size_t captured, size_t frame_off)
{
	bool whole = captured >= udp_len;
	uint8_t tmp[USMC_ROCE_MAX_HDR_LEN + USMC_ROCE_ICRC_LEN];
	usmc_roce_pkt rp;
	struct rec r;
	int rc;
	const char *icrc = "unchecked";

	g.st.roce++;
	if (whole) {
		rc = usmc_roce_decode(udp + 8, udp_len - 8, &rp);
	} else {
		/* Cut by the snap length: decode the headers alone (pad
		 * cleared, a zero ICRC appended) and take the payload length
		 * from the UDP header. */
		size_t hl = captured >= 8 + USMC_ROCE_BTH_LEN
				    ? usmc_roce_hdr_len(udp[8])
				    : 0;
		g.st.icrc_unchecked++;
		if (hl == 0 || captured < 8 + hl)
			return; /* too little captured to say anything */
		memcpy(tmp, udp + 8, hl);
		tmp[1] &= (uint8_t)~0x30;
		memset(tmp + hl, 0, USMC_ROCE_ICRC_LEN);
		rc = usmc_roce_decode(tmp, hl + USMC_ROCE_ICRC_LEN, &rp);
		if (rc >= 0) {
			size_t pad = (udp[9] >> 4) & 3;
			size_t over = hl + pad + USMC_ROCE_ICRC_LEN;
			rp.padcnt = (uint8_t)pad;
			rp.payload = NULL;
			rp.payload_len =
				udp_len - 8 >= over ? udp_len - 8 - over : 0;
		}
	}
	if (rc < 0) {
		report_malformed(p, "RoCE", "udp_payload", frame_off + 8, rc);
		return;
	}
	if (whole) {
		uint32_t want;
		bool checkable = true;

		if (af == AF_INET && ip_hl == 20)
			want = usmc_roce_icrc_ipv4(ip, udp, udp + 8,
						   udp_len - 8 -
							   USMC_ROCE_ICRC_LEN);
		else if (af == AF_INET6)
			want = usmc_roce_icrc_ipv6(ip, udp, udp + 8,
						   udp_len - 8 -
							   USMC_ROCE_ICRC_LEN);
		else
			checkable = false; /* IPv4 options: rxe has none */
		if (!checkable) {
			g.st.icrc_unchecked++;
		} else if (want == rp.icrc) {
			g.st.icrc_ok++;
			icrc = "ok";
		} else {
			g.st.icrc_bad++;
			icrc = "BAD";
		}
	}
	rec_begin(&r, p, "RoCE", usmc_roce_opcode_name(rp.opcode));
	rec_x(&r, "qpn", rp.dest_qpn, 6);
	rec_u(&r, "psn", rp.psn);
	rec_b(&r, "ackreq", rp.ackreq != 0);
	if (rp.flags & USMC_ROCE_F_RETH) {
		rec_x(&r, "va", rp.reth_va, 16);
		rec_x(&r, "rkey", rp.reth_rkey, 8);
		rec_u(&r, "dmalen", rp.reth_len);
	}
	if (rp.flags & USMC_ROCE_F_AETH) {
		rec_x(&r, "syndrome", rp.aeth_syndrome, 2);
		rec_u(&r, "msn", rp.aeth_msn);
	}
	if (rp.flags & USMC_ROCE_F_IMMDT)
		rec_x(&r, "imm", rp.imm, 8);
	rec_u(&r, "payload", rp.payload_len);
	rec_s(&r, "icrc", icrc);
	if (whole && strcmp(icrc, "BAD") == 0) {
		rec_x(&r, "icrc_wire", rp.icrc, 8);
		r.important = true;
	}
	rec_end(&r);
	if (whole && (rp.opcode == USMC_IB_OPCODE_RC_SEND_ONLY ||
		      rp.opcode == USMC_IB_OPCODE_RC_SEND_ONLY_WITH_IMMEDIATE))
		handle_send_payload(p, &rp, frame_off + 8 + rp.hdr_len);
}

static void handle_udp(struct pkt_ctx *p, int af, const uint8_t *ip,
		       size_t ip_hl, const uint8_t *u, size_t caplen,
		       size_t wire_len, size_t frame_off)
{
	uint16_t sp, dp, ulen;

	if (caplen < 8)
		return;
	sp = usmc_get_be16(u);
	dp = usmc_get_be16(u + 2);
	ulen = usmc_get_be16(u + 4);
	if (dp != g.roce_port)
		return;
	snprintf(p->src + strlen(p->src), 8, ":%u", sp);
	snprintf(p->dst + strlen(p->dst), 8, ":%u", dp);
	if (ulen < 8 || ulen > wire_len) {
		report_malformed(p, "RoCE", "udp_header", frame_off,
				 USMC_ERR_BAD_LENGTH);
		return;
	}
	handle_roce(p, af, ip, ip_hl, u, ulen, caplen, frame_off);
}

/* --- link and network layers --------------------------------------------- */

static void handle_frame(const struct pcap_pkthdr *ph, const uint8_t *d,
			 int dlt)
{
	struct pkt_ctx p;
	size_t off = 0, caplen = ph->caplen;
	uint16_t etype = 0;

	g.st.frames++;
	if (!g.have_t0) {
		g.t0 = ph->ts;
		g.have_t0 = true;
	}
	memset(&p, 0, sizeof(p));
	p.frame = g.st.frames;
	p.t = (double)(ph->ts.tv_sec - g.t0.tv_sec) +
	      (double)(ph->ts.tv_usec - g.t0.tv_usec) / 1e6;

	switch (dlt) {
	case DLT_EN10MB_NUM:
		if (caplen < 14)
			return;
		off = 12;
		etype = usmc_get_be16(d + off);
		while ((etype == 0x8100 || etype == 0x88a8) &&
		       caplen >= off + 6) {
			off += 4;
			etype = usmc_get_be16(d + off);
		}
		off += 2;
		break;
	case DLT_LINUX_SLL_NUM:
		if (caplen < 16)
			return;
		etype = usmc_get_be16(d + 14);
		off = 16;
		break;
	case DLT_LINUX_SLL2_NUM:
		if (caplen < 20)
			return;
		etype = usmc_get_be16(d);
		off = 20;
		break;
	default: /* raw IP */
		if (caplen < 1)
			return;
		etype = (d[0] >> 4) == 6 ? ETH_P_IPV6 : ETH_P_IPV4;
		break;
	}
	const uint8_t *ip = d + off;
	size_t cap = caplen - off, wire = ph->len > off ? ph->len - off : 0;
	size_t hl, total;
	uint8_t proto;
	int af;

	if (etype == ETH_P_IPV4) {
		if (cap < 20 || (ip[0] >> 4) != 4)
			return;
		af = AF_INET;
		hl = (size_t)(ip[0] & 0x0f) * 4;
		total = usmc_get_be16(ip + 2);
		if (hl < 20 || total < hl || cap < hl)
			return;
		if (usmc_get_be16(ip + 6) & 0x3fff)
			return; /* fragments: neither SMC nor rxe sends them */
		proto = ip[9];
		inet_ntop(AF_INET, ip + 12, p.src, sizeof(p.src));
		inet_ntop(AF_INET, ip + 16, p.dst, sizeof(p.dst));
	} else if (etype == ETH_P_IPV6) {
		if (cap < 40 || (ip[0] >> 4) != 6)
			return;
		af = AF_INET6;
		hl = 40;
		total = 40 + (size_t)usmc_get_be16(ip + 4);
		proto = ip[6]; /* extension headers are not followed */
		inet_ntop(AF_INET6, ip + 8, p.src, sizeof(p.src));
		inet_ntop(AF_INET6, ip + 24, p.dst, sizeof(p.dst));
	} else {
		return;
	}
	/* Ethernet padding lies past the IP packet; a short capture before
	 * its end. */
	if (wire > total)
		wire = total;
	if (cap > total)
		cap = total;
	if (proto == IPPROTO_TCP_NUM) {
		/* TCP needs its whole segment; a cut one ends the stream. */
		if (cap < wire) {
			if (cap >= hl + 20) {
				struct flow *f = flow_get(
					af, ip + (af == AF_INET ? 12 : 8),
					ip + (af == AF_INET ? 16 : 24),
					usmc_get_be16(ip + hl),
					usmc_get_be16(ip + hl + 2), false);
				if (f &&
				    wire > hl + (size_t)(ip[hl + 12] >> 4) * 4)
					f->mode = FLOW_DONE;
			}
			return;
		}
		handle_tcp(&p, af, ip + (af == AF_INET ? 12 : 8),
			   ip + (af == AF_INET ? 16 : 24), ip + hl, cap - hl,
			   off + hl);
	} else if (proto == IPPROTO_UDP_NUM && cap >= hl && wire >= hl) {
		handle_udp(&p, af, ip, hl, ip + hl, cap - hl, wire - hl,
			   off + hl);
	}
}

static void print_summary(void)
{
	const struct stats *s = &g.st;

	if (g.json) {
		printf("{\"summary\":{\"frames\":%lu,\"clc\":%lu,"
		       "\"clc_proposal\":%lu,\"clc_accept\":%lu,"
		       "\"clc_confirm\":%lu,\"clc_decline\":%lu,\"llc\":%lu,"
		       "\"cdc\":%lu,\"roce\":%lu,\"syn\":%lu,\"syn_smc\":%lu,"
		       "\"icrc_ok\":%lu,\"icrc_bad\":%lu,"
		       "\"icrc_unchecked\":%lu,\"malformed\":%lu}}\n",
		       s->frames, s->clc, s->clc_type[1], s->clc_type[2],
		       s->clc_type[3], s->clc_type[4], s->llc, s->cdc, s->roce,
		       s->syn, s->syn_smc, s->icrc_ok, s->icrc_bad,
		       s->icrc_unchecked, s->malformed);
	} else {
		printf("summary: frames=%lu clc=%lu (proposal=%lu accept=%lu "
		       "confirm=%lu decline=%lu) llc=%lu cdc=%lu roce=%lu "
		       "syn=%lu syn_smc=%lu icrc_ok=%lu icrc_bad=%lu "
		       "icrc_unchecked=%lu malformed=%lu\n",
		       s->frames, s->clc, s->clc_type[1], s->clc_type[2],
		       s->clc_type[3], s->clc_type[4], s->llc, s->cdc, s->roce,
		       s->syn, s->syn_smc, s->icrc_ok, s->icrc_bad,
		       s->icrc_unchecked, s->malformed);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"roce-port", required_argument, NULL, 'p'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *ph;
	const u_char *data;
	pcap_t *pc;
	int c, dlt, rc;

	argv[0] = (char *)"usmc-decode"; /* getopt's messages name the tool */
	while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			g.json = true;
			break;
		case 'q':
			g.quiet = true;
			break;
		case 'p': {
			uint64_t v;

			if (usmc_tool_number(optarg, 0, 1, 65535, &v))
				usmc_tool_usage_error("usmc-decode",
						      "bad --roce-port '%s' "
						      "(want 1..65535)",
						      optarg);
			g.roce_port = (uint16_t)v;
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			usmc_tool_version("usmc-decode");
			return 0;
		default:
			usmc_tool_try("usmc-decode");
		}
	}
	if (optind != argc - 1)
		usmc_tool_usage_error("usmc-decode", "%s",
				      optind >= argc
					      ? "no capture file given"
					      : "only one capture file at a "
						"time");
	pc = pcap_open_offline(argv[optind], errbuf);
	if (!pc) {
		fprintf(stderr, "usmc-decode: %s: %s\n", argv[optind], errbuf);
		return 2;
	}
	dlt = pcap_datalink(pc);
	switch (dlt) {
	case DLT_EN10MB_NUM:
	case DLT_LINUX_SLL_NUM:
	case DLT_LINUX_SLL2_NUM:
	case DLT_RAW_NUM:
	case DLT_RAW_OPENBSD_NUM:
	case LINKTYPE_RAW_NUM:
	case LINKTYPE_IPV4_NUM:
	case LINKTYPE_IPV6_NUM:
		break;
	default:
		fprintf(stderr,
			"usmc-decode: %s: link type %d (%s) is not supported "
			"(Ethernet, Linux SLL/SLL2 or raw IP)\n",
			argv[optind], dlt,
			pcap_datalink_val_to_name(dlt)
				? pcap_datalink_val_to_name(dlt)
				: "unknown");
		pcap_close(pc);
		return 2;
	}
	flows = calloc(MAX_FLOWS, sizeof(*flows));
	if (!flows) {
		fprintf(stderr, "usmc-decode: out of memory\n");
		pcap_close(pc);
		return 2;
	}
	while ((rc = pcap_next_ex(pc, &ph, &data)) == 1)
		handle_frame(ph, data, dlt);
	int status = 0;
	if (rc == PCAP_ERROR) {
		fprintf(stderr, "usmc-decode: %s: after frame %lu: %s\n",
			argv[optind], g.st.frames, pcap_geterr(pc));
		status = 2;
	}
	/* A CLC message begun but never finished is reported, not dropped. */
	for (unsigned i = 0; i < nflows; i++) {
		struct flow *f = &flows[i];
		if (f->mode == FLOW_CLC && f->buf_len > 0) {
			struct pkt_ctx p = {.frame = g.st.frames};
			char a[INET6_ADDRSTRLEN];

			inet_ntop(f->af, f->saddr, a, sizeof(a));
			snprintf(p.src, sizeof(p.src), "%s:%u", a, f->sport);
			inet_ntop(f->af, f->daddr, a, sizeof(a));
			snprintf(p.dst, sizeof(p.dst), "%s:%u", a, f->dport);
			report_malformed(&p, "CLC", "end_of_capture",
					 f->buf_off, USMC_ERR_TRUNCATED);
		}
		flow_drop_pending(f);
	}
	print_summary();
	free(flows);
	pcap_close(pc);
	if (status)
		return status;
	return (g.st.malformed || g.st.icrc_bad) ? 1 : 0;
}
