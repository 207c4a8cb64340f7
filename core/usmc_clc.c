/* SPDX-License-Identifier: MIT */
/*
 * CLC codec. Every area is bounds-checked against the message length before
 * it is read; the areas must follow each other at exactly the offsets Linux
 * writes, so a message has one decoding and re-encodes to the same bytes.
 */
#include "usmc_clc.h"

#include <string.h>

#include "usmc_conv.h"

/* Offsets inside the SMC-D area (relative to its start at 40). */
#define SMCD_AREA_OFF	    40
#define SMCD_V2_EXT_OFF_END 12 /* v2_ext_offset counts from here */
/* The SMC-Dv2 extension offset counts from byte 8 of the v2 extension. */
#define V2_EXT_SMCD_OFF_END 8
#define PROP_MAX_LEN_V1	    (40 + 40 + 8 + 17 * 8 + 4)
#define PROP_MAX_LEN_V2	    (PROP_MAX_LEN_V1 + 40 + 32 * 8 + 48 + 10 * 8)
#define PROP_MIN_LEN_V1	    (40 + 8 + 4)
#define PROP_MIN_LEN_V2	    (40 + 40 + 4)
#define ACR_MAX_LEN_V2                                          \
	(SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 + SMC_CLC_FCE_LEN_V2X + \
	 SMC_CLC_GLE_HDR_LEN + USMC_CLC_MAX_GLE_GIDS * SMC_GID_SIZE)
#define ACD_MAX_LEN_V2 (SMCD_CLC_ACCEPT_CONFIRM_LEN_V2 + SMC_CLC_FCE_LEN_V2X)
#define ACR_V2_FIXED   104 /* up to the end of the v2 reserved bytes */

static bool eyecatcher_ok(uint32_t e)
{
	return e == SMC_EYECATCHER || e == SMCD_EYECATCHER;
}

static int version_layout_v2(uint8_t version)
{
	return version >= SMC_V2;
}

int usmc_clc_hdr_peek(const uint8_t *buf, size_t len, usmc_clc_hdr *hdr)
{
	uint16_t min, max;
	bool v2;

	if (!buf || !hdr)
		return USMC_ERR_INVALID_ARGUMENT;
	if (len < SMC_CLC_HDR_LEN)
		return USMC_ERR_TRUNCATED;
	memset(hdr, 0, sizeof(*hdr));
	hdr->eyecatcher = usmc_get_be32(buf);
	hdr->type = buf[4];
	hdr->length = usmc_get_be16(buf + 5);
	hdr->version = buf[7] >> 4;
	hdr->typev2 = (buf[7] >> 2) & 0x3;
	hdr->typev1 = buf[7] & 0x3;
	if (!eyecatcher_ok(hdr->eyecatcher))
		return USMC_ERR_BAD_EYECATCHER;
	if (hdr->version < SMC_V1)
		return USMC_ERR_BAD_VERSION;
	v2 = version_layout_v2(hdr->version);
	switch (hdr->type) {
	case SMC_CLC_PROPOSAL:
		min = v2 ? PROP_MIN_LEN_V2 : PROP_MIN_LEN_V1;
		max = v2 ? PROP_MAX_LEN_V2 : PROP_MAX_LEN_V1;
		break;
	case SMC_CLC_ACCEPT:
	case SMC_CLC_CONFIRM:
		if (hdr->typev1 == SMC_TYPE_R) {
			min = v2 ? SMCR_CLC_ACCEPT_CONFIRM_LEN_V2
				 : SMCR_CLC_ACCEPT_CONFIRM_LEN;
			max = v2 ? ACR_MAX_LEN_V2 : SMCR_CLC_ACCEPT_CONFIRM_LEN;
		} else if (hdr->typev1 == SMC_TYPE_D) {
			min = v2 ? SMCD_CLC_ACCEPT_CONFIRM_LEN_V2
				 : SMCD_CLC_ACCEPT_CONFIRM_LEN;
			max = v2 ? ACD_MAX_LEN_V2 : SMCD_CLC_ACCEPT_CONFIRM_LEN;
		} else {
			/* An Accept/Confirm must name exactly one type. */
			return USMC_ERR_BAD_VALUE;
		}
		break;
	case SMC_CLC_DECLINE:
		min = max = v2 ? SMC_CLC_DECLINE_LEN_V2 : SMC_CLC_DECLINE_LEN;
		break;
	default:
		return USMC_ERR_BAD_TYPE;
	}
	if (hdr->length < min || hdr->length > max)
		return USMC_ERR_BAD_LENGTH;
	return 0;
}

/* Proposal */

static int decode_proposal(const uint8_t *b, size_t n, usmc_clc_msg *msg)
{
	usmc_clc_proposal *p = &msg->u.prop;
	const usmc_clc_hdr *h = &msg->hdr;
	bool v2 = version_layout_v2(h->version);
	size_t end = n - SMC_CLC_TRL_LEN; /* where the trailer starts */
	size_t pos = SMC_CLC_PROPOSAL_BASE_LEN;
	uint16_t iparea_off, v2_ext_off = 0;

	memcpy(p->peer_id, b + 8, SMC_SYSTEMID_LEN);
	memcpy(p->gid, b + 16, SMC_GID_SIZE);
	memcpy(p->mac, b + 32, USMC_CLC_MAC_LEN);
	iparea_off = usmc_get_be16(b + 38);
	if (iparea_off != 0 && iparea_off != SMC_CLC_SMCD_AREA_LEN)
		return USMC_ERR_BAD_OFFSET;
	p->smcd_area = iparea_off == SMC_CLC_SMCD_AREA_LEN;
	if (!v2) {
		/* A v1 proposal offers something, with the IP area. */
		if (h->typev1 == SMC_TYPE_N)
			return USMC_ERR_BAD_VALUE;
		if (usmc_clc_smcd_indicated(h->typev1) && !p->smcd_area)
			return USMC_ERR_BAD_OFFSET;
	} else if (h->typev1 != SMC_TYPE_N && !p->smcd_area) {
		return USMC_ERR_BAD_OFFSET;
	}

	if (v2 || p->smcd_area) {
		if (pos + SMC_CLC_SMCD_AREA_LEN > end)
			return USMC_ERR_BAD_LENGTH;
		p->ism_gid = usmc_get_be64(b + pos);
		p->ism_chid = usmc_get_be16(b + pos + 8);
		if (v2)
			v2_ext_off = usmc_get_be16(b + pos + 10);
		memcpy(p->vendor_oui, b + pos + 12, 3);
		memcpy(p->vendor_exp_options, b + pos + 15, 5);
		pos += SMC_CLC_SMCD_AREA_LEN;
	}

	if (h->typev1 != SMC_TYPE_N) {
		if (pos + SMC_CLC_PREFIX_LEN > end)
			return USMC_ERR_BAD_LENGTH;
		p->ipv4_subnet = usmc_get_be32(b + pos);
		p->ipv4_prefix_len = b[pos + 4];
		p->ipv6_prefix_cnt = b[pos + 7];
		if (p->ipv4_prefix_len > 32)
			return USMC_ERR_BAD_VALUE;
		if (p->ipv6_prefix_cnt > SMC_CLC_MAX_V6_PREFIX)
			return USMC_ERR_BAD_COUNT;
		pos += SMC_CLC_PREFIX_LEN;
		if (pos + (size_t)p->ipv6_prefix_cnt * SMC_CLC_IPV6_PREFIX_LEN >
		    end)
			return USMC_ERR_BAD_LENGTH;
		for (unsigned int i = 0; i < p->ipv6_prefix_cnt; i++) {
			usmc_clc_ipv6_prefix *x = &p->ipv6_prefixes[i];

			memcpy(x->prefix, b + pos, 16);
			x->prefix_len = b[pos + 16];
			if (x->prefix_len > 128)
				return USMC_ERR_BAD_VALUE;
			pos += SMC_CLC_IPV6_PREFIX_LEN;
		}
	}

	if (v2 && h->typev2 != SMC_TYPE_N) {
		size_t ext = pos;
		uint16_t smcd_off;

		if (v2_ext_off != pos - SMCD_AREA_OFF - SMCD_V2_EXT_OFF_END)
			return USMC_ERR_BAD_OFFSET;
		if (pos + SMC_CLC_V2_EXT_LEN > end)
			return USMC_ERR_BAD_LENGTH;
		p->eid_cnt = b[ext];
		p->ism_gid_cnt = b[ext + 1];
		p->release = b[ext + 3] >> 4;
		p->seid = b[ext + 3] & 0x01;
		smcd_off = usmc_get_be16(b + ext + 6);
		memcpy(p->roce_gid, b + ext + 8, SMC_GID_SIZE);
		p->max_conns = b[ext + 24];
		p->max_links = b[ext + 25];
		p->feature_mask = usmc_get_be16(b + ext + 26);
		if (p->eid_cnt > SMC_CLC_MAX_UEID)
			return USMC_ERR_BAD_COUNT;
		if (usmc_clc_smcd_indicated(h->typev2)) {
			if (p->ism_gid_cnt > SMCD_CLC_MAX_V2_GID_ENTRIES)
				return USMC_ERR_BAD_COUNT;
			if (smcd_off != SMC_CLC_V2_EXT_LEN -
						V2_EXT_SMCD_OFF_END +
						p->eid_cnt * SMC_MAX_EID_LEN)
				return USMC_ERR_BAD_OFFSET;
		} else {
			if (p->ism_gid_cnt)
				return USMC_ERR_BAD_COUNT;
			if (smcd_off)
				return USMC_ERR_BAD_OFFSET;
		}
		pos += SMC_CLC_V2_EXT_LEN;
		if (pos + (size_t)p->eid_cnt * SMC_MAX_EID_LEN > end)
			return USMC_ERR_BAD_LENGTH;
		for (unsigned int i = 0; i < p->eid_cnt; i++) {
			memcpy(p->user_eids[i], b + pos, SMC_MAX_EID_LEN);
			pos += SMC_MAX_EID_LEN;
		}
		if (usmc_clc_smcd_indicated(h->typev2)) {
			if (pos + SMC_CLC_SMCD_V2_EXT_LEN +
				    (size_t)p->ism_gid_cnt *
					    SMC_CLC_SMCD_GID_CHID_LEN >
			    end)
				return USMC_ERR_BAD_LENGTH;
			memcpy(p->system_eid, b + pos, SMC_MAX_EID_LEN);
			pos += SMC_CLC_SMCD_V2_EXT_LEN;
			for (unsigned int i = 0; i < p->ism_gid_cnt; i++) {
				p->ism_gids[i].gid = usmc_get_be64(b + pos);
				p->ism_gids[i].chid =
					usmc_get_be16(b + pos + 8);
				pos += SMC_CLC_SMCD_GID_CHID_LEN;
			}
		}
	} else if (v2 && v2_ext_off) {
		/* No v2 extension offered, yet an offset to one. */
		return USMC_ERR_BAD_OFFSET;
	}

	if (pos != end)
		return USMC_ERR_BAD_LENGTH;
	return 0;
}

static size_t proposal_len(const usmc_clc_msg *msg)
{
	const usmc_clc_proposal *p = &msg->u.prop;
	const usmc_clc_hdr *h = &msg->hdr;
	bool v2 = version_layout_v2(h->version);
	size_t len = SMC_CLC_PROPOSAL_BASE_LEN + SMC_CLC_TRL_LEN;

	if (v2 || p->smcd_area)
		len += SMC_CLC_SMCD_AREA_LEN;
	if (h->typev1 != SMC_TYPE_N)
		len += SMC_CLC_PREFIX_LEN +
		       (size_t)p->ipv6_prefix_cnt * SMC_CLC_IPV6_PREFIX_LEN;
	if (v2 && h->typev2 != SMC_TYPE_N)
		len += SMC_CLC_V2_EXT_LEN +
		       (size_t)p->eid_cnt * SMC_MAX_EID_LEN;
	if (v2 && usmc_clc_smcd_indicated(h->typev2))
		len += SMC_CLC_SMCD_V2_EXT_LEN +
		       (size_t)p->ism_gid_cnt * SMC_CLC_SMCD_GID_CHID_LEN;
	return len;
}

static int check_proposal(const usmc_clc_msg *msg)
{
	const usmc_clc_proposal *p = &msg->u.prop;
	const usmc_clc_hdr *h = &msg->hdr;
	bool v2 = version_layout_v2(h->version);

	if (!v2 && h->typev1 == SMC_TYPE_N)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!v2 && usmc_clc_smcd_indicated(h->typev1) && !p->smcd_area)
		return USMC_ERR_INVALID_ARGUMENT;
	if (h->typev1 != SMC_TYPE_N &&
	    (p->ipv6_prefix_cnt > SMC_CLC_MAX_V6_PREFIX ||
	     p->ipv4_prefix_len > 32))
		return USMC_ERR_INVALID_ARGUMENT;
	for (unsigned int i = 0;
	     h->typev1 != SMC_TYPE_N && i < p->ipv6_prefix_cnt; i++)
		if (p->ipv6_prefixes[i].prefix_len > 128)
			return USMC_ERR_INVALID_ARGUMENT;
	if (v2 && h->typev2 != SMC_TYPE_N &&
	    (p->eid_cnt > SMC_CLC_MAX_UEID || p->release > 0xf))
		return USMC_ERR_INVALID_ARGUMENT;
	if (v2 && usmc_clc_smcd_indicated(h->typev2) &&
	    p->ism_gid_cnt > SMCD_CLC_MAX_V2_GID_ENTRIES)
		return USMC_ERR_INVALID_ARGUMENT;
	return 0;
}

static void encode_proposal(const usmc_clc_msg *msg, uint8_t *b)
{
	const usmc_clc_proposal *p = &msg->u.prop;
	const usmc_clc_hdr *h = &msg->hdr;
	bool v2 = version_layout_v2(h->version);
	bool smcd_area = v2 || p->smcd_area;
	uint8_t *w = b + 8;
	uint16_t iparea_off = 0;
	size_t prefix_len = 0;

	if (p->smcd_area || (v2 && h->typev1 != SMC_TYPE_N))
		iparea_off = SMC_CLC_SMCD_AREA_LEN;
	if (h->typev1 != SMC_TYPE_N)
		prefix_len =
			SMC_CLC_PREFIX_LEN +
			(size_t)p->ipv6_prefix_cnt * SMC_CLC_IPV6_PREFIX_LEN;

	w = usmc_put_bytes(w, p->peer_id, SMC_SYSTEMID_LEN);
	w = usmc_put_bytes(w, p->gid, SMC_GID_SIZE);
	w = usmc_put_bytes(w, p->mac, USMC_CLC_MAC_LEN);
	w = usmc_put_be16(w, iparea_off);
	if (smcd_area) {
		uint16_t v2_ext_off = 0;

		if (v2 && h->typev2 != SMC_TYPE_N)
			v2_ext_off =
				(uint16_t)(SMC_CLC_SMCD_AREA_LEN -
					   SMCD_V2_EXT_OFF_END + prefix_len);
		w = usmc_put_be64(w, p->ism_gid);
		w = usmc_put_be16(w, p->ism_chid);
		w = usmc_put_be16(w, v2_ext_off);
		w = usmc_put_bytes(w, p->vendor_oui, 3);
		w = usmc_put_bytes(w, p->vendor_exp_options, 5);
		w = usmc_put_zero(w, 20);
	}
	if (h->typev1 != SMC_TYPE_N) {
		w = usmc_put_be32(w, p->ipv4_subnet);
		w = usmc_put_u8(w, p->ipv4_prefix_len);
		w = usmc_put_zero(w, 2);
		w = usmc_put_u8(w, p->ipv6_prefix_cnt);
		for (unsigned int i = 0; i < p->ipv6_prefix_cnt; i++) {
			w = usmc_put_bytes(w, p->ipv6_prefixes[i].prefix, 16);
			w = usmc_put_u8(w, p->ipv6_prefixes[i].prefix_len);
		}
	}
	if (v2 && h->typev2 != SMC_TYPE_N) {
		bool d = usmc_clc_smcd_indicated(h->typev2);
		uint16_t smcd_off = 0;

		if (d)
			smcd_off = (uint16_t)(SMC_CLC_V2_EXT_LEN -
					      V2_EXT_SMCD_OFF_END +
					      p->eid_cnt * SMC_MAX_EID_LEN);
		w = usmc_put_u8(w, p->eid_cnt);
		w = usmc_put_u8(w, d ? p->ism_gid_cnt : 0);
		w = usmc_put_u8(w, 0);
		w = usmc_put_u8(w,
				(uint8_t)(p->release << 4 | (p->seid ? 1 : 0)));
		w = usmc_put_zero(w, 2);
		w = usmc_put_be16(w, smcd_off);
		w = usmc_put_bytes(w, p->roce_gid, SMC_GID_SIZE);
		w = usmc_put_u8(w, p->max_conns);
		w = usmc_put_u8(w, p->max_links);
		w = usmc_put_be16(w, p->feature_mask);
		w = usmc_put_zero(w, 12);
		for (unsigned int i = 0; i < p->eid_cnt; i++)
			w = usmc_put_bytes(w, p->user_eids[i], SMC_MAX_EID_LEN);
		if (d) {
			w = usmc_put_bytes(w, p->system_eid, SMC_MAX_EID_LEN);
			w = usmc_put_zero(w, 16);
			for (unsigned int i = 0; i < p->ism_gid_cnt; i++) {
				w = usmc_put_be64(w, p->ism_gids[i].gid);
				w = usmc_put_be16(w, p->ism_gids[i].chid);
			}
		}
	}
}

/* Accept / Confirm (SMC-R) */

/* Accept / Confirm (SMC-D): struct smcd_clc_msg_accept_confirm_common at
 * 8, then v1 12 reserved bytes, v2 d1 {chid, eid, gid_ext} and, with first
 * contact, the first-contact extension at 74 (36 or 52 bytes). No GID
 * list: that is SMC-R's. */

#define ACD_FIXED    32 /* header + the common part */
#define ACD_V2_FIXED 74 /* + chid, eid, gid_ext */

static void decode_fce(const uint8_t *b, size_t fce, bool v2x,
		       usmc_clc_accept_confirm *a)
{
	a->fce_v2x = v2x;
	a->v2_direct = b[fce] >> 7;
	a->os_type = b[fce + 1] >> 4;
	a->release = b[fce + 1] & 0x0f;
	memcpy(a->hostname, b + fce + 4, SMC_MAX_HOSTNAME_LEN);
	if (!v2x)
		return;
	a->max_conns = b[fce + 36];
	a->max_links = b[fce + 37];
	a->feature_mask = usmc_get_be16(b + fce + 38);
	a->vendor_exp_options = usmc_get_be32(b + fce + 40);
}

static uint8_t *encode_fce(uint8_t *w, const usmc_clc_accept_confirm *a,
			   bool v2x)
{
	w = usmc_put_u8(w, a->v2_direct ? 0x80 : 0);
	w = usmc_put_u8(w, (uint8_t)(a->os_type << 4 | a->release));
	w = usmc_put_zero(w, 2);
	w = usmc_put_bytes(w, a->hostname, SMC_MAX_HOSTNAME_LEN);
	if (!v2x)
		return w;
	w = usmc_put_u8(w, a->max_conns);
	w = usmc_put_u8(w, a->max_links);
	w = usmc_put_be16(w, a->feature_mask);
	w = usmc_put_be32(w, a->vendor_exp_options);
	return usmc_put_zero(w, 8);
}

static int decode_accept_confirm_d(const uint8_t *b, size_t n,
				   usmc_clc_msg *msg)
{
	usmc_clc_accept_confirm *a = &msg->u.ac;
	const usmc_clc_hdr *h = &msg->hdr;
	size_t body = n - SMC_CLC_TRL_LEN;

	a->d_gid = usmc_get_be64(b + 8);
	a->d_token = usmc_get_be64(b + 16);
	a->dmbe_idx = b[24];
	a->dmbe_size = b[25] >> 4;
	a->d_linkid = usmc_get_be32(b + 28);
	if (!a->d_token)
		return USMC_ERR_BAD_VALUE;
	if (!version_layout_v2(h->version))
		return n == SMCD_CLC_ACCEPT_CONFIRM_LEN ? 0
							: USMC_ERR_BAD_LENGTH;
	a->d_chid = usmc_get_be16(b + ACD_FIXED);
	memcpy(a->eid, b + ACD_FIXED + 2, SMC_MAX_EID_LEN);
	a->gid_ext = usmc_get_be64(b + ACD_FIXED + 2 + SMC_MAX_EID_LEN);
	if (!(h->typev2 & SMC_FIRST_CONTACT_MASK))
		return body == ACD_V2_FIXED ? 0 : USMC_ERR_BAD_LENGTH;
	if (body == ACD_V2_FIXED + SMC_CLC_FCE_LEN)
		decode_fce(b, ACD_V2_FIXED, false, a);
	else if (body == ACD_V2_FIXED + SMC_CLC_FCE_LEN_V2X)
		decode_fce(b, ACD_V2_FIXED, true, a);
	else
		return USMC_ERR_BAD_LENGTH;
	return 0;
}

static void encode_accept_confirm_d(const usmc_clc_msg *msg, uint8_t *b)
{
	const usmc_clc_accept_confirm *a = &msg->u.ac;
	const usmc_clc_hdr *h = &msg->hdr;
	uint8_t *w = b + 8;

	w = usmc_put_be64(w, a->d_gid);
	w = usmc_put_be64(w, a->d_token);
	w = usmc_put_u8(w, a->dmbe_idx);
	w = usmc_put_u8(w, (uint8_t)(a->dmbe_size << 4));
	w = usmc_put_zero(w, 2);
	w = usmc_put_be32(w, a->d_linkid);
	if (!version_layout_v2(h->version)) {
		usmc_put_zero(w, 12);
		return;
	}
	w = usmc_put_be16(w, a->d_chid);
	w = usmc_put_bytes(w, a->eid, SMC_MAX_EID_LEN);
	w = usmc_put_be64(w, a->gid_ext);
	if (h->typev2 & SMC_FIRST_CONTACT_MASK)
		encode_fce(w, a, a->fce_v2x);
}

static int decode_accept_confirm(const uint8_t *b, size_t n, usmc_clc_msg *msg)
{
	usmc_clc_accept_confirm *a = &msg->u.ac;
	const usmc_clc_hdr *h = &msg->hdr;
	size_t fce = ACR_V2_FIXED, fce_len = 0, gle = 0;

	if (h->typev1 == SMC_TYPE_D)
		return decode_accept_confirm_d(b, n, msg);
	memcpy(a->peer_id, b + 8, SMC_SYSTEMID_LEN);
	memcpy(a->gid, b + 16, SMC_GID_SIZE);
	memcpy(a->mac, b + 32, USMC_CLC_MAC_LEN);
	a->qpn = usmc_get_be24(b + 38);
	a->rmb_rkey = usmc_get_be32(b + 41);
	a->rmbe_idx = b[45];
	a->rmbe_alert_token = usmc_get_be32(b + 46);
	a->rmbe_size = b[50] >> 4;
	a->qp_mtu = b[50] & 0x0f;
	a->rmb_dma_addr = usmc_get_be64(b + 52);
	a->psn = usmc_get_be24(b + 61);
	if (!a->qpn || !a->rmbe_idx || !a->rmbe_alert_token)
		return USMC_ERR_BAD_VALUE;
	if (a->qp_mtu < USMC_CLC_MTU_256 || a->qp_mtu > USMC_CLC_MTU_4096)
		return USMC_ERR_BAD_VALUE;
	if (!version_layout_v2(h->version))
		return n == SMCR_CLC_ACCEPT_CONFIRM_LEN ? 0
							: USMC_ERR_BAD_LENGTH;

	memcpy(a->eid, b + 64, SMC_MAX_EID_LEN);
	if (!(h->typev2 & SMC_FIRST_CONTACT_MASK))
		return n == SMCR_CLC_ACCEPT_CONFIRM_LEN_V2
			       ? 0
			       : USMC_ERR_BAD_LENGTH;

	/* Linux's SMC-R first-contact extension is always the 52-byte v2x
	 * form, even at release 0 (only SMC-D release 0 uses 36 bytes), so
	 * a Confirm's GID list starts at a fixed offset. */
	fce_len = SMC_CLC_FCE_LEN_V2X;
	if (h->type == SMC_CLC_ACCEPT) {
		if (n != SMCR_CLC_ACCEPT_CONFIRM_LEN_V2 + fce_len)
			return USMC_ERR_BAD_LENGTH;
	} else {
		gle = fce + fce_len;
		if (gle + SMC_CLC_GLE_HDR_LEN + SMC_CLC_TRL_LEN > n)
			return USMC_ERR_BAD_LENGTH;
		if (b[gle] > USMC_CLC_MAX_GLE_GIDS)
			return USMC_ERR_BAD_COUNT;
		if (gle + SMC_CLC_GLE_HDR_LEN + (size_t)b[gle] * SMC_GID_SIZE +
			    SMC_CLC_TRL_LEN !=
		    n)
			return USMC_ERR_BAD_LENGTH;
	}
	decode_fce(b, fce, true, a);
	if (gle) {
		a->gid_cnt = b[gle];
		for (unsigned int i = 0; i < a->gid_cnt; i++)
			memcpy(a->gids[i],
			       b + gle + SMC_CLC_GLE_HDR_LEN + i * SMC_GID_SIZE,
			       SMC_GID_SIZE);
	}
	return 0;
}

static size_t accept_confirm_len(const usmc_clc_msg *msg)
{
	const usmc_clc_accept_confirm *a = &msg->u.ac;
	const usmc_clc_hdr *h = &msg->hdr;
	size_t len;

	if (h->typev1 == SMC_TYPE_D) {
		if (!version_layout_v2(h->version))
			return SMCD_CLC_ACCEPT_CONFIRM_LEN;
		len = SMCD_CLC_ACCEPT_CONFIRM_LEN_V2;
		if (h->typev2 & SMC_FIRST_CONTACT_MASK)
			len += a->fce_v2x ? SMC_CLC_FCE_LEN_V2X
					  : SMC_CLC_FCE_LEN;
		return len;
	}
	if (!version_layout_v2(h->version))
		return SMCR_CLC_ACCEPT_CONFIRM_LEN;
	len = SMCR_CLC_ACCEPT_CONFIRM_LEN_V2;
	if (h->typev2 & SMC_FIRST_CONTACT_MASK) {
		len += SMC_CLC_FCE_LEN_V2X;
		if (h->type == SMC_CLC_CONFIRM)
			len += SMC_CLC_GLE_HDR_LEN +
			       (size_t)a->gid_cnt * SMC_GID_SIZE;
	}
	return len;
}

static int check_accept_confirm(const usmc_clc_msg *msg)
{
	const usmc_clc_accept_confirm *a = &msg->u.ac;

	if (msg->hdr.typev1 == SMC_TYPE_D)
		return !a->d_token || a->dmbe_size > 0xf || a->os_type > 0xf ||
				       a->release > 0xf
			       ? USMC_ERR_INVALID_ARGUMENT
			       : 0;
	if (msg->hdr.typev1 != SMC_TYPE_R)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!a->qpn || a->qpn > 0xffffff || a->psn > 0xffffff || !a->rmbe_idx ||
	    !a->rmbe_alert_token || a->rmbe_size > 0xf ||
	    a->qp_mtu < USMC_CLC_MTU_256 || a->qp_mtu > USMC_CLC_MTU_4096 ||
	    a->os_type > 0xf || a->release > 0xf ||
	    a->gid_cnt > USMC_CLC_MAX_GLE_GIDS)
		return USMC_ERR_INVALID_ARGUMENT;
	return 0;
}

static void encode_accept_confirm(const usmc_clc_msg *msg, uint8_t *b)
{
	const usmc_clc_accept_confirm *a = &msg->u.ac;
	const usmc_clc_hdr *h = &msg->hdr;
	uint8_t *w = b + 8;

	if (h->typev1 == SMC_TYPE_D) {
		encode_accept_confirm_d(msg, b);
		return;
	}
	w = usmc_put_bytes(w, a->peer_id, SMC_SYSTEMID_LEN);
	w = usmc_put_bytes(w, a->gid, SMC_GID_SIZE);
	w = usmc_put_bytes(w, a->mac, USMC_CLC_MAC_LEN);
	w = usmc_put_be24(w, a->qpn);
	w = usmc_put_be32(w, a->rmb_rkey);
	w = usmc_put_u8(w, a->rmbe_idx);
	w = usmc_put_be32(w, a->rmbe_alert_token);
	w = usmc_put_u8(w, (uint8_t)(a->rmbe_size << 4 | a->qp_mtu));
	w = usmc_put_u8(w, 0);
	w = usmc_put_be64(w, a->rmb_dma_addr);
	w = usmc_put_u8(w, 0);
	w = usmc_put_be24(w, a->psn);
	if (!version_layout_v2(h->version))
		return;
	w = usmc_put_bytes(w, a->eid, SMC_MAX_EID_LEN);
	w = usmc_put_zero(w, 8);
	if (!(h->typev2 & SMC_FIRST_CONTACT_MASK))
		return;
	w = encode_fce(w, a, true);
	if (h->type == SMC_CLC_CONFIRM) {
		w = usmc_put_u8(w, a->gid_cnt);
		w = usmc_put_zero(w, 3);
		for (unsigned int i = 0; i < a->gid_cnt; i++)
			w = usmc_put_bytes(w, a->gids[i], SMC_GID_SIZE);
	}
}

/* Decline */

static int decode_decline(const uint8_t *b, size_t n, usmc_clc_msg *msg)
{
	usmc_clc_decline *d = &msg->u.decl;

	memcpy(d->peer_id, b + 8, SMC_SYSTEMID_LEN);
	d->peer_diagnosis = usmc_get_be32(b + 16);
	if (n == SMC_CLC_DECLINE_LEN_V2) {
		d->os_type = b[20] >> 4;
		for (unsigned int i = 0; i < 4; i++)
			d->diag_info[i] = usmc_get_be32(b + 24 + 4 * i);
	}
	return 0;
}

static void encode_decline(const usmc_clc_msg *msg, uint8_t *b)
{
	const usmc_clc_decline *d = &msg->u.decl;
	uint8_t *w = b + 8;

	w = usmc_put_bytes(w, d->peer_id, SMC_SYSTEMID_LEN);
	w = usmc_put_be32(w, d->peer_diagnosis);
	if (!version_layout_v2(msg->hdr.version)) {
		usmc_put_zero(w, 4);
		return;
	}
	w = usmc_put_u8(w, (uint8_t)(d->os_type << 4));
	w = usmc_put_zero(w, 3);
	for (unsigned int i = 0; i < 4; i++)
		w = usmc_put_be32(w, d->diag_info[i]);
}

usmc_ssize usmc_clc_decode(const uint8_t *buf, size_t len, usmc_clc_msg *msg)
{
	size_t n;
	int rc;

	if (!buf || !msg)
		return USMC_ERR_INVALID_ARGUMENT;
	memset(msg, 0, sizeof(*msg));
	rc = usmc_clc_hdr_peek(buf, len, &msg->hdr);
	if (rc)
		return rc;
	n = msg->hdr.length;
	if (len < n)
		return USMC_ERR_TRUNCATED;
	msg->trailer = usmc_get_be32(buf + n - SMC_CLC_TRL_LEN);
	if (!eyecatcher_ok(msg->trailer))
		return USMC_ERR_BAD_EYECATCHER;
	switch (msg->hdr.type) {
	case SMC_CLC_PROPOSAL:
		rc = decode_proposal(buf, n, msg);
		break;
	case SMC_CLC_ACCEPT:
	case SMC_CLC_CONFIRM:
		rc = decode_accept_confirm(buf, n, msg);
		break;
	default: /* SMC_CLC_DECLINE; usmc_clc_hdr_peek checked the type */
		rc = decode_decline(buf, n, msg);
		break;
	}
	return rc ? rc : (usmc_ssize)n;
}

static usmc_ssize check_and_len(const usmc_clc_msg *msg)
{
	const usmc_clc_hdr *h = &msg->hdr;
	size_t len;
	int rc;

	if (h->version < SMC_V1 || h->version > 0xf || h->typev1 > 3 ||
	    h->typev2 > 3)
		return USMC_ERR_INVALID_ARGUMENT;
	if ((h->eyecatcher && !eyecatcher_ok(h->eyecatcher)) ||
	    (msg->trailer && !eyecatcher_ok(msg->trailer)))
		return USMC_ERR_INVALID_ARGUMENT;
	switch (h->type) {
	case SMC_CLC_PROPOSAL:
		rc = check_proposal(msg);
		len = proposal_len(msg);
		break;
	case SMC_CLC_ACCEPT:
	case SMC_CLC_CONFIRM:
		rc = check_accept_confirm(msg);
		len = accept_confirm_len(msg);
		break;
	case SMC_CLC_DECLINE:
		rc = msg->u.decl.os_type > 0xf ? USMC_ERR_INVALID_ARGUMENT : 0;
		len = version_layout_v2(h->version) ? SMC_CLC_DECLINE_LEN_V2
						    : SMC_CLC_DECLINE_LEN;
		break;
	default:
		return USMC_ERR_INVALID_ARGUMENT;
	}
	if (rc)
		return rc;
	return (usmc_ssize)len;
}

usmc_ssize usmc_clc_encoded_len(const usmc_clc_msg *msg)
{
	if (!msg)
		return USMC_ERR_INVALID_ARGUMENT;
	return check_and_len(msg);
}

usmc_ssize usmc_clc_encode(const usmc_clc_msg *msg, uint8_t *out, size_t cap)
{
	const usmc_clc_hdr *h;
	uint32_t eye, trl;
	usmc_ssize len;
	size_t n;

	if (!msg || (!out && cap))
		return USMC_ERR_INVALID_ARGUMENT;
	len = check_and_len(msg);
	if (len < 0)
		return len;
	n = (size_t)len;
	if (cap < n)
		return USMC_ERR_NOBUF;
	h = &msg->hdr;
	eye = h->eyecatcher ? h->eyecatcher : SMC_EYECATCHER;
	trl = msg->trailer ? msg->trailer : eye;
	usmc_put_be32(out, eye);
	out[4] = h->type;
	usmc_put_be16(out + 5, (uint16_t)n);
	out[7] = (uint8_t)(h->version << 4 | h->typev2 << 2 | h->typev1);
	switch (h->type) {
	case SMC_CLC_PROPOSAL:
		encode_proposal(msg, out);
		break;
	case SMC_CLC_ACCEPT:
	case SMC_CLC_CONFIRM:
		encode_accept_confirm(msg, out);
		break;
	default:
		encode_decline(msg, out);
		break;
	}
	usmc_put_be32(out + n - SMC_CLC_TRL_LEN, trl);
	return len;
}

void usmc_clc_decline_init(usmc_clc_msg *msg, uint32_t code, uint8_t version,
			   const uint8_t *peer_id)
{
	if (!msg)
		return;
	memset(msg, 0, sizeof(*msg));
	msg->hdr.eyecatcher = SMC_EYECATCHER;
	msg->hdr.type = SMC_CLC_DECLINE;
	msg->hdr.version = version >= SMC_V2 ? SMC_V2 : SMC_V1;
	if (code == SMC_CLC_DECL_SYNCERR)
		msg->hdr.typev2 = SMC_FIRST_CONTACT_MASK;
	if (peer_id)
		memcpy(msg->u.decl.peer_id, peer_id, SMC_SYSTEMID_LEN);
	msg->u.decl.peer_diagnosis = code;
	if (msg->hdr.version == SMC_V2)
		msg->u.decl.os_type = SMC_CLC_OS_LINUX;
}

/* Buffer sizes */

uint8_t usmc_clc_compress_bufsize(uint64_t size, uint8_t max_comp)
{
	uint64_t units;
	uint8_t comp = 0;

	if (size <= SMC_BUF_MIN_SIZE)
		return 0;
	/* Round up to a power of two of 16 KiB units. */
	units = (size - 1) >> 14;
	while (units) {
		comp++;
		units >>= 1;
	}
	return comp < max_comp ? comp : max_comp;
}

uint32_t usmc_clc_uncompress_bufsize(uint8_t comp)
{
	return (uint32_t)1 << ((comp & 0x0f) + 14);
}

/* Decline codes */

static const struct decl_entry {
	uint32_t code;
	const char *name;
	const char *text;
} decl_table[] = {
	{SMC_CLC_DECL_MEM, "MEM", "insufficient memory resources"},
	{SMC_CLC_DECL_TIMEOUT_CL, "TIMEOUT_CL",
	 "timeout waiting for QP confirm link"},
	{SMC_CLC_DECL_TIMEOUT_AL, "TIMEOUT_AL",
	 "timeout waiting for QP add link"},
	{SMC_CLC_DECL_CNFERR, "CNFERR", "configuration error"},
	{SMC_CLC_DECL_PEERNOSMC, "PEERNOSMC", "peer did not indicate SMC"},
	{SMC_CLC_DECL_IPSEC, "IPSEC", "IPsec usage"},
	{SMC_CLC_DECL_NOSMCDEV, "NOSMCDEV", "no SMC device found (R or D)"},
	{SMC_CLC_DECL_NOSMCDDEV, "NOSMCDDEV", "no SMC-D device found"},
	{SMC_CLC_DECL_NOSMCRDEV, "NOSMCRDEV", "no SMC-R device found"},
	{SMC_CLC_DECL_NOISM2SUPP, "NOISM2SUPP",
	 "hardware has no ISMv2 support"},
	{SMC_CLC_DECL_NOV2EXT, "NOV2EXT", "peer sent no CLC v2 extension"},
	{SMC_CLC_DECL_NOV2DEXT, "NOV2DEXT",
	 "peer sent no CLC SMC-Dv2 extension"},
	{SMC_CLC_DECL_NOSEID, "NOSEID", "peer sent no SEID"},
	{SMC_CLC_DECL_NOSMCD2DEV, "NOSMCD2DEV", "no SMC-Dv2 device found"},
	{SMC_CLC_DECL_NOUEID, "NOUEID", "peer sent no UEID"},
	{SMC_CLC_DECL_RELEASEERR, "RELEASEERR",
	 "release version negotiation failed"},
	{SMC_CLC_DECL_MAXCONNERR, "MAXCONNERR",
	 "max connections negotiation failed"},
	{SMC_CLC_DECL_MAXLINKERR, "MAXLINKERR", "max links negotiation failed"},
	{SMC_CLC_DECL_MODEUNSUPP, "MODEUNSUPP",
	 "SMC modes do not match (R or D)"},
	{SMC_CLC_DECL_RMBE_EC, "RMBE_EC", "peer has eyecatcher in RMBE"},
	{SMC_CLC_DECL_OPTUNSUPP, "OPTUNSUPP", "fastopen sockopt not supported"},
	{SMC_CLC_DECL_DIFFPREFIX, "DIFFPREFIX", "IP prefix / subnet mismatch"},
	{SMC_CLC_DECL_GETVLANERR, "GETVLANERR",
	 "error getting VLAN id of IP device"},
	{SMC_CLC_DECL_ISMVLANERR, "ISMVLANERR",
	 "error registering VLAN id on ISM device"},
	{SMC_CLC_DECL_NOACTLINK, "NOACTLINK", "no active SMC-R link in lgr"},
	{SMC_CLC_DECL_NOSRVLINK, "NOSRVLINK",
	 "SMC-R link from server not found"},
	{SMC_CLC_DECL_VERSMISMAT, "VERSMISMAT", "SMC version mismatch"},
	{SMC_CLC_DECL_MAX_DMB, "MAX_DMB", "SMC-D DMB limit exceeded"},
	{SMC_CLC_DECL_NOROUTE, "NOROUTE",
	 "SMC-Rv2 connection: no route to peer"},
	{SMC_CLC_DECL_NOINDIRECT, "NOINDIRECT",
	 "SMC-Rv2 connection: indirect route mismatch"},
	{SMC_CLC_DECL_SYNCERR, "SYNCERR", "synchronization error"},
	{SMC_CLC_DECL_PEERDECL, "PEERDECL", "peer declined during handshake"},
	{SMC_CLC_DECL_INTERR, "INTERR", "internal error"},
	{SMC_CLC_DECL_ERR_RTOK, "ERR_RTOK", "rtoken handling failed"},
	{SMC_CLC_DECL_ERR_RDYLNK, "ERR_RDYLNK", "IB ready link failed"},
	{SMC_CLC_DECL_ERR_REGBUF, "ERR_REGBUF",
	 "registering RDMA buffers failed"},
	{SMC_CLC_DECL_TIMEOUT, "TIMEOUT", "timeout (legacy code)"},
	{SMC_CLC_DECL_TCL, "TCL",
	 "timeout waiting for QP confirm (legacy code)"},
	{SMC_CLC_DECL_REPLY, "REPLY",
	 "reply to a received decline (legacy code)"},
	{SMC_CLC_DECL_SEND, "SEND", "sending problem (legacy code)"},
	{SMC_CLC_DECL_INTERR_LEGACY, "INTERR_LEGACY",
	 "internal error (legacy code)"},
};

static const struct decl_entry *decl_find(uint32_t code)
{
	for (size_t i = 0; i < sizeof(decl_table) / sizeof(decl_table[0]); i++)
		if (decl_table[i].code == code)
			return &decl_table[i];
	return NULL;
}

const char *usmc_clc_decl_name(uint32_t code)
{
	const struct decl_entry *e = decl_find(code);

	return e ? e->name : "UNKNOWN";
}

const char *usmc_clc_decl_str(uint32_t code)
{
	const struct decl_entry *e = decl_find(code);

	return e ? e->text : "unknown decline code";
}

/* Server-side classification, following smc_listen_v2_check,
 * smc_clc_srv_v2x_features_validate and smc_listen_find_device for a
 * server with RoCE devices only. */

static void store_rc(uint32_t *rc, uint32_t code)
{
	if (!*rc)
		*rc = code;
}

static bool eid_match(const usmc_clc_proposal *p, const usmc_clc_srv_caps *caps,
		      uint8_t *eid)
{
	for (unsigned int i = 0; i < p->eid_cnt && i < SMC_CLC_MAX_UEID; i++)
		for (size_t j = 0; caps->ueids && j < caps->ueid_cnt; j++)
			if (!memcmp(p->user_eids[i], caps->ueids[j],
				    SMC_MAX_EID_LEN)) {
				memcpy(eid, p->user_eids[i], SMC_MAX_EID_LEN);
				return true;
			}
	return false;
}

uint32_t usmc_clc_srv_classify(const usmc_clc_msg *msg,
			       const usmc_clc_srv_caps *caps,
			       usmc_clc_srv_choice *out)
{
	const usmc_clc_proposal *p;
	const usmc_clc_hdr *h;
	bool v1_r, v1_d, v2_r = false, v2_d = false;
	uint32_t rc = SMC_CLC_DECL_PEERNOSMC, ini_rc = 0, prfx_rc = 0;

	if (!msg || !caps || !out || msg->hdr.type != SMC_CLC_PROPOSAL)
		return SMC_CLC_DECL_INTERR;
	memset(out, 0, sizeof(*out));
	p = &msg->u.prop;
	h = &msg->hdr;
	v1_r = usmc_clc_smcr_indicated(h->typev1);
	v1_d = usmc_clc_smcd_indicated(h->typev1);
	if (version_layout_v2(h->version)) {
		v2_r = usmc_clc_smcr_indicated(h->typev2);
		v2_d = usmc_clc_smcd_indicated(h->typev2);
	}
	/* v2 check; a decoded v2 offer always has its v2 extension. */
	if (v2_d) {
		v2_d = false; /* no ISM device here, v2 or otherwise */
		rc = SMC_CLC_DECL_NOISM2SUPP;
	}
	if (v2_r && !p->eid_cnt) {
		v2_r = false;
		rc = SMC_CLC_DECL_NOUEID;
	}
	if (!v1_r && !v1_d && !v2_r)
		return rc;

	out->release = p->release > SMC_RELEASE ? SMC_RELEASE : p->release;
	out->max_conns = SMC_CONN_PER_LGR_MAX;
	out->max_links = SMC_LINKS_ADD_LNK_MAX;
	if (v2_r && out->release >= SMC_RELEASE_1) {
		out->max_conns = p->max_conns < caps->max_conns
					 ? p->max_conns
					 : caps->max_conns;
		if (out->max_conns < SMC_CONN_PER_LGR_MIN)
			return SMC_CLC_DECL_MAXCONNERR;
		out->max_links = p->max_links < caps->max_links
					 ? p->max_links
					 : caps->max_links;
		if (out->max_links < SMC_LINKS_ADD_LNK_MIN)
			return SMC_CLC_DECL_MAXLINKERR;
	}

	/* Device search. */
	if (h->typev1 != SMC_TYPE_N && !caps->prefix_match) {
		prfx_rc = SMC_CLC_DECL_DIFFPREFIX;
		store_rc(&ini_rc, prfx_rc);
	}
	if (!prfx_rc && v1_d)
		store_rc(&ini_rc, SMC_CLC_DECL_NOSMCDDEV);
	/* Linux tests the raw typev2 bits here, even of a v1 header. */
	if (!v1_r && !usmc_clc_smcr_indicated(h->typev2))
		return ini_rc ? ini_rc : SMC_CLC_DECL_NOSMCDDEV;
	if (v2_r && eid_match(p, caps, out->eid)) {
		if (caps->smcr_v2) {
			out->version = SMC_V2;
			return 0;
		}
		store_rc(&ini_rc, SMC_CLC_DECL_NOSMCRDEV);
	}
	memset(out->eid, 0, sizeof(out->eid));
	if (prfx_rc)
		return prfx_rc;
	/* v1 reports a missing RoCE device as NOSMCDEV, unlike v2. */
	if (!v1_r || !caps->smcr_v1) {
		store_rc(&ini_rc, SMC_CLC_DECL_NOSMCDEV);
	} else {
		out->version = SMC_V1;
		out->release = 0;
		out->max_conns = SMC_CONN_PER_LGR_MAX;
		out->max_links = SMC_LINKS_ADD_LNK_MAX;
		return 0;
	}
	return ini_rc;
}

uint32_t usmc_clc_clnt_check_accept(const usmc_clc_msg *prop,
				    const usmc_clc_msg *accept,
				    usmc_clc_srv_choice *out)
{
	const usmc_clc_hdr *ph, *ah;
	const usmc_clc_accept_confirm *a;

	if (!prop || !accept || !out || prop->hdr.type != SMC_CLC_PROPOSAL ||
	    accept->hdr.type != SMC_CLC_ACCEPT)
		return SMC_CLC_DECL_INTERR;
	memset(out, 0, sizeof(*out));
	ph = &prop->hdr;
	ah = &accept->hdr;
	a = &accept->u.ac;
	/* smc_connect_check_aclc; usmc offers and decodes SMC-R only. */
	if (ah->typev1 != SMC_TYPE_R)
		return SMC_CLC_DECL_MODEUNSUPP;
	if (version_layout_v2(ah->version)) {
		if (!version_layout_v2(ph->version) ||
		    !usmc_clc_smcr_indicated(ph->typev2))
			return SMC_CLC_DECL_MODEUNSUPP;
		out->version = SMC_V2;
		memcpy(out->eid, a->eid, SMC_MAX_EID_LEN);
	} else {
		if (!usmc_clc_smcr_indicated(ph->typev1))
			return SMC_CLC_DECL_MODEUNSUPP;
		out->version = SMC_V1;
	}
	out->max_conns = SMC_CONN_PER_LGR_MAX;
	out->max_links = SMC_LINKS_ADD_LNK_MAX;
	if (out->version != SMC_V2 || !(ah->typev2 & SMC_FIRST_CONTACT_MASK))
		return 0;
	/* smc_clc_clnt_v2x_features_validate */
	out->release = a->release;
	if (out->release < SMC_RELEASE_1)
		return 0;
	if (a->max_links < SMC_LINKS_ADD_LNK_MIN ||
	    a->max_links > SMC_LINKS_ADD_LNK_MAX)
		return SMC_CLC_DECL_MAXLINKERR;
	if (a->max_conns < SMC_CONN_PER_LGR_MIN)
		return SMC_CLC_DECL_MAXCONNERR;
	out->max_links = a->max_links;
	out->max_conns = a->max_conns;
	return 0;
}

uint32_t usmc_clc_srv_check_confirm(const usmc_clc_srv_choice *agreed,
				    const usmc_clc_msg *confirm)
{
	const usmc_clc_accept_confirm *c;

	if (!agreed || !confirm || confirm->hdr.type != SMC_CLC_CONFIRM)
		return SMC_CLC_DECL_INTERR;
	c = &confirm->u.ac;
	if (!version_layout_v2(confirm->hdr.version) ||
	    !(confirm->hdr.typev2 & SMC_FIRST_CONTACT_MASK))
		return 0;
	if (c->release != agreed->release)
		return SMC_CLC_DECL_RELEASEERR;
	if (c->release < SMC_RELEASE_1)
		return 0;
	if (c->max_conns != agreed->max_conns)
		return SMC_CLC_DECL_MAXCONNERR;
	if (c->max_links != agreed->max_links)
		return SMC_CLC_DECL_MAXLINKERR;
	return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned int bits)
{
	unsigned int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes))
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		return !((a[bytes] ^ b[bytes]) & mask);
	}
	return true;
}

bool usmc_clc_prefix_match(const usmc_clc_proposal *prop,
			   const usmc_clc_local_prefix *local, size_t n)
{
	uint8_t subnet[4];

	if (!prop || (!local && n))
		return false;
	usmc_put_be32(subnet, prop->ipv4_subnet);
	for (size_t i = 0; i < n; i++) {
		const usmc_clc_local_prefix *l = &local[i];

		if (!prop->ipv6_prefix_cnt) {
			if (!l->is_v6 && l->prefix_len <= 32 &&
			    l->prefix_len == prop->ipv4_prefix_len &&
			    prefix_equal(l->addr, subnet, l->prefix_len))
				return true;
			continue;
		}
		for (unsigned int k = 0;
		     l->is_v6 && l->prefix_len <= 128 &&
		     k < prop->ipv6_prefix_cnt && k < SMC_CLC_MAX_V6_PREFIX;
		     k++) {
			const usmc_clc_ipv6_prefix *x = &prop->ipv6_prefixes[k];

			if (x->prefix_len == l->prefix_len &&
			    prefix_equal(l->addr, x->prefix, l->prefix_len))
				return true;
		}
	}
	return false;
}
